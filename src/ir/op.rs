//! Every IR op, defined in one place: its name and attributes in printed IR, its shape rule and
//! its kind (`OpKind`: what code generation needs to know to schedule it). The interpreter
//! (`interp`) gives each op its meaning, `ir::autodiff` its vector-Jacobian product, and `codegen`
//! its native code.

use super::recurrence::{Cell, CellKind};
use super::shape::{DType, Dim, Shape, TensorType};
use super::window::Window;

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
    /// `x` where `x > 0`, else `alpha * x` (Keras `LeakyReLU`; NaN stays NaN).
    LeakyRelu {
        alpha: f32,
    },
    /// `x` where `x > 0`, else `alpha * (exp(x) - 1)` (Keras `ELU`).
    Elu {
        alpha: f32,
    },
    /// `(cond, a, b)`, all three broadcast together: `a` where `cond != 0`, else `b`. A NaN
    /// condition is not equal to zero, so it selects `a`.
    Select,
    /// Inverted dropout of `x` (input 0) at training step `step` (input 1, the f32 scalar step
    /// counter) for a batch whose first row is global row `first_row` (input 2, an f32 scalar,
    /// `ir::dropout::FIRST_ROW`): each element is kept with probability `1 - rate` and scaled by
    /// `1 / (1 - rate)`, else zeroed. The mask is a pure function of `(seed, step, flat element
    /// index + first_row · row length)` (`ir::dropout`), so the backward pass, the interpreter
    /// and the JIT all see the same mask without storing it, and a slice of a batch (a rank's,
    /// in data-parallel training) the mask of those rows of the whole batch.
    Dropout {
        rate: f32,
        seed: u64,
    },
    /// `(in_training, in_inference)`: the first in a training step, the second in evaluation
    /// and prediction, where `lower::for_inference` puts it in this node's place (batch
    /// normalization's batch statistics and moving statistics). As an op it is the first input.
    InTraining,

    // ── Structured ──────────────────────────────────────────────────────────────────────────
    /// `op(a) @ op(b)`, where `op` transposes the last two axes when the flag is set. Rank-2
    /// operands are one product; rank ≥ 3 operands with equal leading dimensions are a batch of
    /// products; a rank-2 right operand is shared by every product of a rank ≥ 3 left operand
    /// (`[B, T, K] @ [K, N] → [B, T, N]`, Keras `Dense` on a sequence).
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// `(a f32[R.., M], b f32[R.., N])` → `f32[M, N]`: `Σ_r a[r]ᵀ b[r]` over every leading
    /// position `r` (the batch included), i.e. `aᵀ·b` with both flattened to rows. The kernel
    /// gradient of a layer applied at many positions (`dense` on a sequence, a convolution's
    /// patches), as one product whose depth is every row, not a batch of products summed after.
    Contract,
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
    /// Softmax of each row `i` of the last two axes (queries × keys) over its first `i + 1`
    /// entries (all of them when `i` is past the last key), zero after them: attention that
    /// sees no later position (Keras's `use_causal_mask`, whose mask is the lower triangle
    /// from the top left corner, also when there are more or fewer keys than queries).
    CausalSoftmax,
    /// `i32[..]` class indices → `f32[.., classes]` rows with a single 1 (all zero when the
    /// index is out of range).
    OneHot {
        classes: usize,
    },
    /// Permutes the axes: output axis `i` is input axis `perm[i]`.
    Transpose {
        perm: Vec<usize>,
    },
    /// The same elements in the same row-major order under the node's own shape (like
    /// `Broadcast`, the target is the node's type). Element counts must agree; the batch
    /// dimension, if present, is the leading dimension on both sides (`shape::reshape_rule`).
    Reshape,
    /// Elements `start..end` (step 1) of `axis`, which may not be the batch axis.
    Slice {
        axis: usize,
        start: usize,
        end: usize,
    },
    /// Joins one or more inputs along `axis`; every other dimension agrees.
    Concat {
        axis: usize,
    },
    /// `(table f32[V, D..], indices i32[I..]) → f32[I.., D..]`: row `indices[i]` of the table for
    /// every index. An index outside `0..V` gives a row of zeros (like `one_hot`).
    Gather,
    /// `(updates f32[I.., D..], indices i32[I..]) → f32[rows, D..]`: zeros, with every update row
    /// added into row `indices[i]` (repeated indices accumulate; out-of-range indices are
    /// dropped). The adjoint of `Gather`.
    ScatterAdd {
        rows: usize,
    },
    /// Sliding-window patches (im2col; PyTorch's `unfold`): `f32[B, S.., C]` → `f32[B, O..,
    /// K·C]`, where `O` are the window's output positions and each row holds the `K` taps of its
    /// window in row-major order, each tap's `C` channels together, zeros where a tap falls in
    /// the padding. A convolution is these rows times its kernel `[K·C, filters]` (`ir::window`).
    Unfold {
        window: Window,
    },
    /// The adjoint of `Unfold` (col2im; PyTorch's `fold`): `f32[B, O.., K·C]` → `f32[B, S..,
    /// C]` for spatial sizes `input`, every element added into the position it was read from
    /// (overlapping windows accumulate; padding taps are dropped).
    Fold {
        window: Window,
        input: Vec<usize>,
    },
    /// Pooling over each window per channel: `f32[B, S.., C]` → `f32[B, O.., C]`. Padded
    /// positions take no part: never the maximum, not counted in the mean (as Keras).
    Pool {
        kind: PoolKind,
        window: Window,
    },
    /// The gradient of `Pool`: `(x f32[B, S.., C], y f32[B, O.., C], dy f32[B, O.., C])` →
    /// `f32[B, S.., C]`, where `y` is the pooling of `x`. Max pooling routes each window's `dy` to
    /// the first tap in row-major order whose `x` equals the window's maximum `y` (PyTorch's
    /// rule; ties are rare after a ReLU, and tied zeros get no gradient through it anyway); mean
    /// pooling spreads it evenly over the window's positions inside the input (`x` and `y` only
    /// give the shapes).
    PoolGrad {
        kind: PoolKind,
        window: Window,
    },
    /// A scan over the time axis with carried state (`ir::recurrence`): `(xw f32[B, T, G·U],
    /// recurrent kernel f32[U, G·U], [GRU: recurrent bias f32[G·U]])` → the tape `f32[B, T,
    /// width]`, each row the step's hidden state followed by what the reverse scan reads. The
    /// state starts at zero.
    Recurrence {
        cell: Cell,
    },
    /// The reverse scan: `(tape, recurrent kernel, d tape)` → `f32[B, T, grad_width]`, the
    /// gradient of each step's pre-activations (`ir::recurrence`). Only the hidden and cell
    /// states' blocks of `d tape` are read: the gates' blocks are the op's own, which layers
    /// never expose.
    RecurrenceGrad {
        cell: Cell,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Max,
    Mean,
}

impl PoolKind {
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Max => "max",
            PoolKind::Mean => "mean",
        }
    }
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
    Abs,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// `log(1 + exp(x))`, computed as `log1p(exp(-|x|)) + max(x, 0)` so it never overflows.
    Softplus,
    /// The exact GELU `x · Φ(x) = x/2 · (1 + erf(x/√2))` (Keras `approximate=False`, PyTorch's
    /// default).
    Gelu,
    /// The error function (GELU's gradient is built on it).
    Erf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `a ^ b`.
    Pow,
    /// `b` where `b > a`, else `a`.
    Max,
    /// `b` where `b < a`, else `a`.
    Min,
    /// 1.0 where `a > b`, else 0.0 (NaN compares false).
    Greater,
    /// The comparisons give 1.0 or 0.0 like `Greater`; a NaN operand compares false except
    /// under `NotEqual`, where it compares true (IEEE).
    Less,
    GreaterEqual,
    LessEqual,
    Equal,
    NotEqual,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    Sum,
    Max,
    /// The sum divided by the number of reduced elements (the runtime batch size included when
    /// the batch axis is reduced).
    Mean,
}

/// What kind of computation an op is (`Op::kind`). Code generation is organised by kind:
/// elementwise ops fuse into loops, reductions take their producers, and each structured kind
/// has a kernel of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// No computation of its own.
    Leaf(LeafKind),
    /// Element `i` is computed from element `i` of its (broadcast) inputs alone, so the op can
    /// be computed inside any loop over its shape, such as its consumer's.
    Elementwise(ElementwiseKind),
    /// A loop over its input's shape folding the reduced axes (`reduce_*`); its elementwise
    /// producers are computed inside that loop.
    Reduction,
    /// A kernel of its own that reads whole rows or reorders elements.
    Structured(StructuredKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    /// A tensor in memory (`input`, `param`, `state`).
    Buffer,
    /// A scalar known to every loop (`const`, `batch_size`), materialized where it is read.
    Scalar,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementwiseKind {
    /// Arithmetic on the input elements only.
    Map,
    /// Reads its input at a stretched index: an index map, stored only if a reader needs memory.
    Broadcast,
    /// Also depends on the element's flat index in the op's own shape (`dropout`'s mask).
    Indexed,
    /// Computed from `i32` class labels, not from f32 producers (`one_hot`).
    Labels,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructuredKind {
    /// A matrix product; an elementwise consumer of its shape can run as its epilogue.
    MatMul,
    /// Softmax-like over whole rows of the last axis (max, sum of exp, scale).
    RowSoftmax,
    /// Moves elements without computing: a strided copy. With `same_order` (reshape) the output
    /// is the input's elements in the same order, so it may share the input's buffer.
    Copy { same_order: bool },
    /// Joins its inputs along an axis, one loop per input.
    Concat,
    /// Rows addressed by integer indices (`gather`, `scatter_add`).
    Rows,
    /// Sliding windows over spatial axes (`unfold`, `fold`, `pool`, `pool_grad`).
    Window,
    /// A loop over time steps with carried state (`recurrence`, `recurrence_grad`).
    Scan,
}

impl UnaryOp {
    pub const ALL: [UnaryOp; 12] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Abs,
        UnaryOp::Rsqrt,
        UnaryOp::Softplus,
        UnaryOp::Gelu,
        UnaryOp::Erf,
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
            UnaryOp::Abs => "abs",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Gelu => "gelu",
            UnaryOp::Erf => "erf",
        }
    }
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 13] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Greater,
        BinaryOp::Less,
        BinaryOp::GreaterEqual,
        BinaryOp::LessEqual,
        BinaryOp::Equal,
        BinaryOp::NotEqual,
    ];

    /// Whether the op is a comparison (a 1.0/0.0 result, no gradient).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Greater
                | BinaryOp::Less
                | BinaryOp::GreaterEqual
                | BinaryOp::LessEqual
                | BinaryOp::Equal
                | BinaryOp::NotEqual
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Greater => "greater",
            BinaryOp::Less => "less",
            BinaryOp::GreaterEqual => "greater_equal",
            BinaryOp::LessEqual => "less_equal",
            BinaryOp::Equal => "equal",
            BinaryOp::NotEqual => "not_equal",
        }
    }
}

impl ReduceKind {
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "sum",
            ReduceKind::Max => "max",
            ReduceKind::Mean => "mean",
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
            Op::LeakyRelu { .. } => "leaky_relu",
            Op::Elu { .. } => "elu",
            Op::Select => "select",
            Op::Dropout { .. } => "dropout",
            Op::InTraining => "in_training",
            Op::MatMul { .. } => "matmul",
            Op::Contract => "contract",
            Op::Reduce { kind, .. } => match kind {
                ReduceKind::Sum => "reduce_sum",
                ReduceKind::Max => "reduce_max",
                ReduceKind::Mean => "reduce_mean",
            },
            Op::Softmax => "softmax",
            Op::LogSoftmax => "log_softmax",
            Op::CausalSoftmax => "causal_softmax",
            Op::OneHot { .. } => "one_hot",
            Op::Transpose { .. } => "transpose",
            Op::Reshape => "reshape",
            Op::Slice { .. } => "slice",
            Op::Concat { .. } => "concat",
            Op::Gather => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Unfold { .. } => "unfold",
            Op::Fold { .. } => "fold",
            Op::Pool { kind, .. } => match kind {
                PoolKind::Max => "max_pool",
                PoolKind::Mean => "mean_pool",
            },
            Op::PoolGrad { kind, .. } => match kind {
                PoolKind::Max => "max_pool_grad",
                PoolKind::Mean => "mean_pool_grad",
            },
            Op::Recurrence { .. } => "recurrence",
            Op::RecurrenceGrad { .. } => "recurrence_grad",
        }
    }

    /// What kind of computation the op is: the one list that the scheduler, the memory plan and
    /// the emitter consult, so that a new op declares its kind here (the match has no catch-all)
    /// instead of being guessed at elsewhere.
    pub fn kind(&self) -> OpKind {
        use ElementwiseKind::{Broadcast, Indexed, Labels, Map};
        use StructuredKind::{Concat, Copy, MatMul, RowSoftmax, Rows, Scan, Window};
        match self {
            Op::Input { .. } | Op::Param { .. } | Op::State { .. } => {
                OpKind::Leaf(LeafKind::Buffer)
            }
            Op::Const { .. } | Op::BatchSize => OpKind::Leaf(LeafKind::Scalar),
            Op::Unary(_)
            | Op::Binary(_)
            | Op::LeakyRelu { .. }
            | Op::Elu { .. }
            | Op::Select
            | Op::InTraining => OpKind::Elementwise(Map),
            Op::Broadcast => OpKind::Elementwise(Broadcast),
            Op::Dropout { .. } => OpKind::Elementwise(Indexed),
            Op::OneHot { .. } => OpKind::Elementwise(Labels),
            Op::Reduce { .. } => OpKind::Reduction,
            Op::MatMul { .. } | Op::Contract => OpKind::Structured(MatMul),
            Op::Softmax | Op::LogSoftmax | Op::CausalSoftmax => OpKind::Structured(RowSoftmax),
            Op::Reshape => OpKind::Structured(Copy { same_order: true }),
            Op::Transpose { .. } | Op::Slice { .. } => {
                OpKind::Structured(Copy { same_order: false })
            }
            Op::Concat { .. } => OpKind::Structured(Concat),
            Op::Gather | Op::ScatterAdd { .. } => OpKind::Structured(Rows),
            Op::Unfold { .. } | Op::Fold { .. } | Op::Pool { .. } | Op::PoolGrad { .. } => {
                OpKind::Structured(Window)
            }
            Op::Recurrence { .. } | Op::RecurrenceGrad { .. } => OpKind::Structured(Scan),
        }
    }

    /// Whether the op only renames its input's elements (a reshape): nothing is computed, and
    /// the output may share the input's memory.
    pub fn is_view(&self) -> bool {
        self.kind() == OpKind::Structured(StructuredKind::Copy { same_order: true })
    }

    pub fn is_leaf(&self) -> bool {
        matches!(self.kind(), OpKind::Leaf(_))
    }

    /// Elementwise ops are computed per element inside a loop over their shape.
    pub fn is_elementwise(&self) -> bool {
        matches!(self.kind(), OpKind::Elementwise(_))
    }

    /// Which input holds `i32` indices, for the ops that read integers.
    pub fn integer_input(&self) -> Option<usize> {
        match self {
            Op::OneHot { .. } => Some(0),
            Op::Gather | Op::ScatterAdd { .. } => Some(1),
            Op::Input { .. }
            | Op::Param { .. }
            | Op::State { .. }
            | Op::Const { .. }
            | Op::BatchSize
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Broadcast
            | Op::LeakyRelu { .. }
            | Op::Elu { .. }
            | Op::Select
            | Op::Dropout { .. }
            | Op::InTraining
            | Op::MatMul { .. }
            | Op::Contract
            | Op::Reduce { .. }
            | Op::Softmax
            | Op::LogSoftmax
            | Op::CausalSoftmax
            | Op::Transpose { .. }
            | Op::Reshape
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Unfold { .. }
            | Op::Fold { .. }
            | Op::Pool { .. }
            | Op::PoolGrad { .. }
            | Op::Recurrence { .. }
            | Op::RecurrenceGrad { .. } => None,
        }
    }

    /// The attributes printed after the op's name (`.tn`, `[axes=0]`, ` 1.0`), empty when it has
    /// none. Slot leaves (`input`, `param`, `state`) print their slot's name instead, which only
    /// the graph knows (`ir::print`).
    pub fn attributes(&self) -> String {
        let list = |xs: &[usize]| {
            xs.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Op::Const { value } => format!(" {value:?}"),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => match (transpose_a, transpose_b) {
                (false, false) => String::new(),
                (a, b) => format!(
                    ".{}{}",
                    if *a { 't' } else { 'n' },
                    if *b { 't' } else { 'n' }
                ),
            },
            Op::Reduce {
                axes, keep_dims, ..
            } => {
                let keep = if *keep_dims { ", keep_dims" } else { "" };
                format!("[axes={}{keep}]", list(axes))
            }
            Op::OneHot { classes } => format!("[classes={classes}]"),
            Op::LeakyRelu { alpha } | Op::Elu { alpha } => format!("[alpha={alpha:?}]"),
            Op::Dropout { rate, seed } => format!("[rate={rate:?}, seed={seed}]"),
            Op::Transpose { perm } => format!("[perm={}]", list(perm)),
            Op::Slice { axis, start, end } => format!("[axis={axis}, {start}..{end}]"),
            Op::Concat { axis } => format!("[axis={axis}]"),
            Op::ScatterAdd { rows } => format!("[rows={rows}]"),
            Op::Unfold { window } | Op::Pool { window, .. } | Op::PoolGrad { window, .. } => {
                format!("[{window}]")
            }
            Op::Fold { window, input } => {
                let input: Vec<String> = input.iter().map(usize::to_string).collect();
                format!("[{window}, into {}]", input.join("x"))
            }
            Op::Recurrence { cell } | Op::RecurrenceGrad { cell } => format!("[{cell}]"),
            Op::Input { .. }
            | Op::Param { .. }
            | Op::State { .. }
            | Op::BatchSize
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Broadcast
            | Op::Select
            | Op::InTraining
            | Op::Contract
            | Op::Softmax
            | Op::LogSoftmax
            | Op::CausalSoftmax
            | Op::Reshape
            | Op::Gather => String::new(),
        }
    }

    /// How many inputs the op takes; `None` for `concat`, which takes one or more.
    pub fn arity(&self) -> Option<usize> {
        Some(match self {
            Op::Input { .. }
            | Op::Param { .. }
            | Op::State { .. }
            | Op::Const { .. }
            | Op::BatchSize => 0,
            Op::Unary(_)
            | Op::Broadcast
            | Op::LeakyRelu { .. }
            | Op::Elu { .. }
            | Op::Reduce { .. }
            | Op::Softmax
            | Op::LogSoftmax
            | Op::CausalSoftmax
            | Op::OneHot { .. }
            | Op::Transpose { .. }
            | Op::Reshape
            | Op::Slice { .. }
            | Op::Unfold { .. }
            | Op::Fold { .. }
            | Op::Pool { .. } => 1,
            Op::Binary(_)
            | Op::MatMul { .. }
            | Op::Contract
            | Op::InTraining
            | Op::Gather
            | Op::ScatterAdd { .. } => 2,
            Op::Select | Op::PoolGrad { .. } | Op::Dropout { .. } => 3,
            Op::Recurrence { cell } => cell.inputs(),
            Op::RecurrenceGrad { cell } => cell.grad_inputs(),
            Op::Concat { .. } => return None,
        })
    }

    /// Whether the op can take `n` inputs.
    pub fn takes_inputs(&self, n: usize) -> bool {
        match self.arity() {
            Some(arity) => n == arity,
            None => n >= 1,
        }
    }

    /// The arity as text for messages (`"2"`, `"1 or more"`).
    pub fn arity_text(&self) -> String {
        match self.arity() {
            Some(arity) => arity.to_string(),
            None => "1 or more".to_string(),
        }
    }
}

/// The shape rule of every non-leaf op except `Broadcast` and `Reshape` (whose target shapes are
/// given; see `Shape::broadcasts_to` and `shape::reshape_rule`): the output type from the input
/// types, or why the inputs do not fit.
pub fn infer_type(op: &Op, inputs: &[&TensorType]) -> Result<TensorType, String> {
    if !op.takes_inputs(inputs.len()) {
        return Err(format!(
            "{} takes {} inputs, got {}",
            op.name(),
            op.arity_text(),
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
        | Op::Broadcast
        | Op::Reshape => Err(format!("{} has no shape rule of its own", op.name())),
        Op::Unary(_) | Op::LeakyRelu { .. } | Op::Elu { .. } | Op::Softmax | Op::LogSoftmax => {
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
        Op::Select => {
            let (c, a, b) = (float(0)?, float(1)?, float(2)?);
            c.shape
                .broadcast(&a.shape)
                .and_then(|s| s.broadcast(&b.shape))
                .map(TensorType::f32)
                .ok_or_else(|| {
                    format!(
                        "cannot broadcast {}, {} and {} together",
                        c.shape, a.shape, b.shape
                    )
                })
        }
        Op::InTraining => {
            let (train, infer) = (float(0)?, float(1)?);
            if !infer.shape.broadcasts_to(&train.shape) {
                return Err(format!(
                    "in_training's inference value {infer} does not broadcast to {train}"
                ));
            }
            Ok(train.clone())
        }
        Op::Unfold { window } => {
            let (spatial, channels) = windowed(op, window, float(0)?)?;
            let dims = window_output(window, inputs[0], &spatial)?;
            Ok(with_channels(inputs[0], dims, window.taps() * channels))
        }
        Op::Fold { window, input } => {
            let t = float(0)?;
            let (given, width) = windowed(op, window, t)?;
            if input.len() != window.rank() || width % window.taps() != 0 {
                return Err(format!("fold into {input:?} does not fit {t}"));
            }
            let expected = window_output(window, t, input)?;
            if expected != given {
                return Err(format!(
                    "fold of {t} into {input:?} expects {expected:?} window positions"
                ));
            }
            Ok(with_channels(t, input.clone(), width / window.taps()))
        }
        Op::Pool { window, .. } => {
            let t = float(0)?;
            let (spatial, channels) = windowed(op, window, t)?;
            let dims = window_output(window, t, &spatial)?;
            Ok(with_channels(t, dims, channels))
        }
        Op::PoolGrad { kind, window } => {
            let (x, y, dy) = (float(0)?, float(1)?, float(2)?);
            let pooled = infer_type(
                &Op::Pool {
                    kind: *kind,
                    window: window.clone(),
                },
                &[x],
            )?;
            if pooled.shape != dy.shape || pooled.shape != y.shape {
                return Err(format!(
                    "{}'s pooled value {y} and its gradient {dy} should both be {pooled}",
                    op.name()
                ));
            }
            Ok(x.clone())
        }
        Op::Recurrence { cell } => {
            let (xw, kernel) = (float(0)?, float(1)?);
            let (batch, steps) = sequence(op, xw, cell.gate_width())?;
            let expected = Shape::fixed(&[cell.units, cell.gate_width()]);
            if kernel.shape != expected {
                return Err(format!(
                    "{}'s recurrent kernel should be {expected}, got {kernel}",
                    cell.kind.name()
                ));
            }
            if cell.kind == CellKind::Gru && float(2)?.shape != Shape::fixed(&[cell.gate_width()]) {
                return Err(format!(
                    "gru's recurrent bias should be [{}], got {}",
                    cell.gate_width(),
                    inputs[2]
                ));
            }
            scan_mask(cell, inputs, batch, steps)?;
            Ok(TensorType::f32(Shape(vec![
                batch,
                Dim::Fixed(steps),
                Dim::Fixed(cell.tape_width()),
            ])))
        }
        Op::RecurrenceGrad { cell } => {
            let (tape, kernel, dtape) = (float(0)?, float(1)?, float(2)?);
            let (batch, steps) = sequence(op, tape, cell.tape_width())?;
            if dtape.shape != tape.shape
                || kernel.shape != Shape::fixed(&[cell.units, cell.gate_width()])
            {
                return Err(format!(
                    "recurrence_grad needs a tape, its kernel and the tape's gradient, got {tape}, {kernel} and {dtape}"
                ));
            }
            scan_mask(cell, inputs, batch, steps)?;
            Ok(TensorType::f32(Shape(vec![
                batch,
                Dim::Fixed(steps),
                Dim::Fixed(cell.grad_width()),
            ])))
        }
        Op::CausalSoftmax => {
            let t = float(0)?;
            match t.shape.dims() {
                [.., Dim::Fixed(rows), Dim::Fixed(cols)] if *rows > 0 && *cols > 0 => Ok(t.clone()),
                _ => Err(format!(
                    "causal_softmax needs fixed last two axes (queries × keys), got {t}"
                )),
            }
        }
        Op::Dropout { rate, .. } => {
            let (x, step, first_row) = (float(0)?, float(1)?, float(2)?);
            if !(0.0..1.0).contains(rate) {
                return Err(format!("dropout rate {rate} is not in [0, 1)"));
            }
            if step.shape.rank() != 0 {
                return Err(format!(
                    "dropout's step counter must be a scalar, got {step}"
                ));
            }
            if first_row.shape.rank() != 0 {
                return Err(format!(
                    "dropout's first row must be a scalar, got {first_row}"
                ));
            }
            Ok(x.clone())
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let (a, b) = (float(0)?, float(1)?);
            let (ra, rb) = (a.shape.rank(), b.shape.rank());
            if ra < 2 || rb < 2 {
                return Err(format!(
                    "matmul needs operands of rank 2 or more, got {a} and {b}"
                ));
            }
            let lead = &a.shape.0[..ra - 2];
            if rb != 2 && (rb != ra || b.shape.0[..rb - 2] != *lead) {
                return Err(format!(
                    "batched matmul needs equal leading dimensions (or a rank-2 right operand), \
                     got {a} @ {b}"
                ));
            }
            let (m, ka) = oriented(&a.shape, *transpose_a);
            let (kb, n) = oriented(&b.shape, *transpose_b);
            if ka != kb {
                return Err(format!(
                    "matmul inner dimensions differ: {ka} and {kb} ({a} @ {b})"
                ));
            }
            let mut dims = lead.to_vec();
            dims.extend([m, n]);
            Ok(TensorType::f32(Shape(dims)))
        }
        Op::Contract => {
            let (a, b) = (float(0)?, float(1)?);
            let (da, db) = (a.shape.dims(), b.shape.dims());
            let rank = da.len();
            if rank < 2 || db.len() != rank || da[..rank - 1] != db[..rank - 1] {
                return Err(format!(
                    "contract needs operands of equal rank >= 2 with equal leading dimensions, got {a} and {b}"
                ));
            }
            match (da[rank - 1], db[rank - 1]) {
                (Dim::Fixed(m), Dim::Fixed(n)) => Ok(TensorType::f32(Shape::fixed(&[m, n]))),
                _ => Err(format!(
                    "contract needs fixed last dimensions, got {a} and {b}"
                )),
            }
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
        Op::Transpose { perm } => {
            let t = float(0)?;
            let mut seen = vec![false; perm.len()];
            let valid = perm.len() == t.shape.rank()
                && perm
                    .iter()
                    .all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
            if !valid {
                return Err(format!("{perm:?} is not a permutation of the axes of {t}"));
            }
            Ok(TensorType::f32(Shape(
                perm.iter().map(|&p| t.shape.0[p]).collect(),
            )))
        }
        Op::Slice { axis, start, end } => {
            let t = float(0)?;
            let Some(&dim) = t.shape.0.get(*axis) else {
                return Err(format!("slice axis {axis} is out of range for {t}"));
            };
            let Dim::Fixed(n) = dim else {
                return Err(format!("slice cannot cut the batch axis of {t}"));
            };
            if start > end || *end > n {
                return Err(format!(
                    "slice {start}..{end} is out of range for axis {axis} of {t}"
                ));
            }
            let mut dims = t.shape.0.clone();
            dims[*axis] = Dim::Fixed(end - start);
            Ok(TensorType::f32(Shape(dims)))
        }
        Op::Concat { axis } => {
            let first = float(0)?;
            let rank = first.shape.rank();
            if *axis >= rank {
                return Err(format!("concat axis {axis} is out of range for {first}"));
            }
            let mut total = 0;
            for i in 0..inputs.len() {
                let t = float(i)?;
                let same_elsewhere = t.shape.rank() == rank
                    && (0..rank).all(|d| d == *axis || t.shape.0[d] == first.shape.0[d]);
                if !same_elsewhere {
                    return Err(format!(
                        "concat along axis {axis} needs equal other dimensions, got {first} and {t}"
                    ));
                }
                match t.shape.0[*axis] {
                    Dim::Fixed(n) => total += n,
                    Dim::Batch => {
                        return Err(format!("concat cannot join along the batch axis of {t}"));
                    }
                }
            }
            let mut dims = first.shape.0.clone();
            dims[*axis] = Dim::Fixed(total);
            Ok(TensorType::f32(Shape(dims)))
        }
        Op::Gather => {
            let (table, indices) = (float(0)?, inputs[1]);
            if indices.dtype != DType::I32 {
                return Err(format!("gather expects i32 indices, got {indices}"));
            }
            match table.shape.0.first() {
                Some(Dim::Fixed(_)) => {}
                _ => {
                    return Err(format!(
                        "gather needs a table with a fixed first dimension, got {table}"
                    ));
                }
            }
            let mut dims = indices.shape.0.clone();
            dims.extend_from_slice(&table.shape.0[1..]);
            Ok(TensorType::f32(Shape(dims)))
        }
        Op::ScatterAdd { rows } => {
            let (updates, indices) = (float(0)?, inputs[1]);
            if indices.dtype != DType::I32 {
                return Err(format!("scatter_add expects i32 indices, got {indices}"));
            }
            let k = indices.shape.rank();
            if updates.shape.rank() < k || updates.shape.0[..k] != indices.shape.0[..] {
                return Err(format!(
                    "scatter_add updates {updates} do not start with the indices' shape {}",
                    indices.shape
                ));
            }
            let mut dims = vec![Dim::Fixed(*rows)];
            dims.extend_from_slice(&updates.shape.0[k..]);
            Ok(TensorType::f32(Shape(dims)))
        }
    }
}

/// The batch dimension and step count of a `[B, T, width]` sequence.
fn sequence(op: &Op, t: &TensorType, width: usize) -> Result<(Dim, usize), String> {
    match t.shape.dims() {
        [batch, Dim::Fixed(steps), Dim::Fixed(w)] if *w == width && *steps > 0 => {
            Ok((*batch, *steps))
        }
        _ => Err(format!(
            "{} needs a [batch, steps, {width}] sequence, got {t}",
            op.name()
        )),
    }
}

/// A masked scan's mask, its last input: `f32[batch, steps]`.
fn scan_mask(cell: &Cell, inputs: &[&TensorType], batch: Dim, steps: usize) -> Result<(), String> {
    if !cell.masked {
        return Ok(());
    }
    let mask = inputs[inputs.len() - 1];
    let expected = TensorType::f32(Shape(vec![batch, Dim::Fixed(steps)]));
    if *mask != expected {
        return Err(format!(
            "a masked scan's mask should be {expected}, got {mask}"
        ));
    }
    Ok(())
}

/// The fixed spatial sizes and channel count of a windowed op's channels-last input.
fn windowed(op: &Op, window: &Window, t: &TensorType) -> Result<(Vec<usize>, usize), String> {
    if !window.is_well_formed() {
        return Err(format!("{} has a malformed window {window:?}", op.name()));
    }
    let dims = t.shape.dims();
    if dims.len() != window.rank() + 2 {
        return Err(format!(
            "{} over {} spatial axes needs a rank-{} [batch, spatial.., channels] input, got {t}",
            op.name(),
            window.rank(),
            window.rank() + 2
        ));
    }
    let fixed: Option<Vec<usize>> = dims[1..]
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Some(*n),
            Dim::Batch => None,
        })
        .collect();
    let Some(mut fixed) = fixed else {
        return Err(format!(
            "{} needs fixed spatial and channel sizes, got {t}",
            op.name()
        ));
    };
    let channels = fixed.pop().unwrap_or(0);
    Ok((fixed, channels))
}

/// The window's output positions over spatial sizes `input`.
fn window_output(window: &Window, t: &TensorType, input: &[usize]) -> Result<Vec<usize>, String> {
    (0..window.rank())
        .map(|axis| {
            window.output_len(axis, input[axis]).ok_or_else(|| {
                format!(
                    "a window spanning {} does not fit axis {} of {t} (size {}, padded {:?})",
                    window.span(axis),
                    axis + 1,
                    input[axis],
                    window.padding[axis]
                )
            })
        })
        .collect()
}

/// `[t's batch dimension, spatial.., channels]`.
fn with_channels(t: &TensorType, spatial: Vec<usize>, channels: usize) -> TensorType {
    let mut dims = vec![t.shape.0[0]];
    dims.extend(spatial.into_iter().map(Dim::Fixed));
    dims.push(Dim::Fixed(channels));
    TensorType::f32(Shape(dims))
}

/// (rows, cols) of the last two axes, transposed if asked.
fn oriented(shape: &Shape, transpose: bool) -> (Dim, Dim) {
    let rank = shape.rank();
    let (r, c) = (shape.0[rank - 2], shape.0[rank - 1]);
    if transpose { (c, r) } else { (r, c) }
}
