//! Every IR op, defined in one place: its name in printed IR and its shape rule. The interpreter
//! (`interp`) gives each op its meaning, `ir::autodiff` its vector-Jacobian product, and `codegen`
//! its native code.

use super::shape::{DType, Dim, Shape, TensorType};

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    // ── Leaves ──────────────────────────────────────────────────────────────────────────────
    /// A tensor fed at every step (`Graph::inputs[index]`): features, labels, the step count.
    Input {
        index: usize,
    },
    /// A trainable parameter (`Graph::params[index]`).
    Param {
        index: usize,
    },
    /// Optimizer state (`Graph::states[index]`), e.g. Adam's moments.
    State {
        index: usize,
    },
    /// A scalar constant.
    Const {
        value: f32,
    },
    /// The runtime batch size as an f32 scalar (the divisor of a batch mean).
    BatchSize,

    // ── Elementwise (inputs broadcast NumPy-style to the node's shape) ────────────────────────
    Unary(UnaryOp),
    Binary(BinaryOp),
    /// Stretches the input to the node's shape (NumPy rules).
    Broadcast,

    // ── Structured ──────────────────────────────────────────────────────────────────────────
    /// `op(a) @ op(b)` for rank-2 operands, where `op` transposes when the flag is set.
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// Reduction over `axes` (sorted, distinct); reduced axes are dropped unless `keep_dims`.
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        keep_dims: bool,
    },
    /// Softmax along the last axis.
    Softmax,
    /// Log-softmax along the last axis (numerically stable: `x - max - log Σ exp(x - max)`).
    LogSoftmax,
    /// `i32[..]` class indices → `f32[.., classes]` rows with a single 1 (all zero when the
    /// index is out of range).
    OneHot {
        classes: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Relu,
    Sigmoid,
    Tanh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `a ^ b`.
    Pow,
    Max,
    /// 1.0 where `a > b`, else 0.0 (NaN compares false).
    Greater,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    Sum,
    Max,
}

impl UnaryOp {
    pub const ALL: [UnaryOp; 7] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
        }
    }
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Max,
        BinaryOp::Greater,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Max => "max",
            BinaryOp::Greater => "greater",
        }
    }
}

impl ReduceKind {
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "sum",
            ReduceKind::Max => "max",
        }
    }
}

impl Op {
    /// The op's name in printed IR.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::State { .. } => "state",
            Op::Const { .. } => "const",
            Op::BatchSize => "batch_size",
            Op::Unary(op) => op.name(),
            Op::Binary(op) => op.name(),
            Op::Broadcast => "broadcast",
            Op::MatMul { .. } => "matmul",
            Op::Reduce { kind, .. } => match kind {
                ReduceKind::Sum => "reduce_sum",
                ReduceKind::Max => "reduce_max",
            },
            Op::Softmax => "softmax",
            Op::LogSoftmax => "log_softmax",
            Op::OneHot { .. } => "one_hot",
        }
    }

    pub fn is_leaf(&self) -> bool {
        matches!(
            self,
            Op::Input { .. }
                | Op::Param { .. }
                | Op::State { .. }
                | Op::Const { .. }
                | Op::BatchSize
        )
    }

    /// Elementwise ops can be fused into the loop that consumes them.
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_) | Op::Broadcast)
    }

    /// How many inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input { .. }
            | Op::Param { .. }
            | Op::State { .. }
            | Op::Const { .. }
            | Op::BatchSize => 0,
            Op::Unary(_)
            | Op::Broadcast
            | Op::Reduce { .. }
            | Op::Softmax
            | Op::LogSoftmax
            | Op::OneHot { .. } => 1,
            Op::Binary(_) | Op::MatMul { .. } => 2,
        }
    }
}

/// The shape rule of every non-leaf op except `Broadcast` (whose target shape is given): the
/// output type from the input types, or why the inputs do not fit.
pub fn infer_type(op: &Op, inputs: &[&TensorType]) -> Result<TensorType, String> {
    if inputs.len() != op.arity() {
        return Err(format!(
            "{} takes {} inputs, got {}",
            op.name(),
            op.arity(),
            inputs.len()
        ));
    }
    let float = |i: usize| -> Result<&TensorType, String> {
        let t = inputs[i];
        if t.dtype == DType::F32 {
            Ok(t)
        } else {
            Err(format!("{} expects f32 operands, got {t}", op.name()))
        }
    };
    match op {
        Op::Input { .. }
        | Op::Param { .. }
        | Op::State { .. }
        | Op::Const { .. }
        | Op::BatchSize
        | Op::Broadcast => Err(format!("{} has no shape rule of its own", op.name())),
        Op::Unary(_) | Op::Softmax | Op::LogSoftmax => {
            let t = float(0)?;
            if matches!(op, Op::Softmax | Op::LogSoftmax) && t.shape.rank() == 0 {
                return Err(format!("{} needs at least one axis", op.name()));
            }
            Ok(t.clone())
        }
        Op::Binary(_) => {
            let (a, b) = (float(0)?, float(1)?);
            a.shape
                .broadcast(&b.shape)
                .map(TensorType::f32)
                .ok_or_else(|| format!("cannot broadcast {} with {}", a.shape, b.shape))
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let (a, b) = (float(0)?, float(1)?);
            if a.shape.rank() != 2 || b.shape.rank() != 2 {
                return Err(format!("matmul needs rank-2 operands, got {a} and {b}"));
            }
            let (m, ka) = oriented(&a.shape, *transpose_a);
            let (kb, n) = oriented(&b.shape, *transpose_b);
            if ka != kb {
                return Err(format!(
                    "matmul inner dimensions differ: {ka} and {kb} ({a} @ {b})"
                ));
            }
            Ok(TensorType::f32(Shape(vec![m, n])))
        }
        Op::Reduce {
            axes, keep_dims, ..
        } => {
            let t = float(0)?;
            let sorted = axes.windows(2).all(|w| w[0] < w[1]);
            if !sorted || axes.iter().any(|&a| a >= t.shape.rank()) {
                return Err(format!("bad reduction axes {axes:?} for {t}"));
            }
            let dims = t
                .shape
                .dims()
                .iter()
                .enumerate()
                .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
                    (false, _) => Some(d),
                    (true, true) => Some(Dim::Fixed(1)),
                    (true, false) => None,
                })
                .collect();
            Ok(TensorType::f32(Shape(dims)))
        }
        Op::OneHot { classes } => {
            let t = inputs[0];
            if t.dtype != DType::I32 {
                return Err(format!("one_hot expects i32 class indices, got {t}"));
            }
            let mut dims = t.shape.0.clone();
            dims.push(Dim::Fixed(*classes));
            Ok(TensorType::f32(Shape(dims)))
        }
    }
}

/// (rows, cols) of a rank-2 shape, transposed if asked.
fn oriented(shape: &Shape, transpose: bool) -> (Dim, Dim) {
    let (r, c) = (shape.0[0], shape.0[1]);
    if transpose { (c, r) } else { (r, c) }
}
