//! The SSA graph: nodes in topological order (a node's inputs always come before it), each with
//! its op, inputs, type, and the source span it came from.

use super::op::{BinaryOp, Op, ReduceKind, UnaryOp, infer_type};
use super::shape::{DType, Shape, TensorType, reshape_rule};
use crate::diag::Span;

/// An SSA value: the index of the node that defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub ty: TensorType,
    /// The `.model` source this node came from (the layer, the loss setting, …).
    pub span: Option<Span>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputInfo {
    pub name: String,
    pub ty: TensorType,
}

/// How a parameter's initial values are drawn (Keras's initializers; the `*_normal` ones draw
/// from a normal truncated at two standard deviations, as Keras's variance scaling does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)) (Keras's default kernel init).
    GlorotUniform {
        fan_in: usize,
        fan_out: usize,
    },
    /// Truncated normal with variance 2 / (fan_in + fan_out).
    GlorotNormal {
        fan_in: usize,
        fan_out: usize,
    },
    /// U(-limit, limit) with limit = sqrt(6 / fan_in).
    HeUniform {
        fan_in: usize,
    },
    /// Truncated normal with variance 2 / fan_in.
    HeNormal {
        fan_in: usize,
    },
    /// U(-limit, limit) with limit = sqrt(3 / fan_in).
    LecunUniform {
        fan_in: usize,
    },
    /// Truncated normal with variance 1 / fan_in.
    LecunNormal {
        fan_in: usize,
    },
    Zeros,
    Constant {
        value: f32,
    },
    /// N(mean, std²), not truncated (Keras's `RandomNormal`).
    Normal {
        mean: f32,
        std: f32,
    },
    /// U(min, max) (Keras's `RandomUniform`).
    Uniform {
        min: f32,
        max: f32,
    },
    /// `gain` times a random matrix with orthonormal rows or columns, over the parameter as
    /// `[elements / last, last]` (Keras's `Orthogonal`).
    Orthogonal {
        gain: f32,
    },
    /// Zeros but for ones in `units..2·units`: an LSTM's forget-gate bias (Keras's
    /// `unit_forget_bias`).
    UnitForgetBias {
        units: usize,
    },
}

impl std::fmt::Display for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Init::GlorotUniform { fan_in, fan_out } => {
                write!(f, "glorot_uniform(fan_in: {fan_in}, fan_out: {fan_out})")
            }
            Init::GlorotNormal { fan_in, fan_out } => {
                write!(f, "glorot_normal(fan_in: {fan_in}, fan_out: {fan_out})")
            }
            Init::HeUniform { fan_in } => write!(f, "he_uniform(fan_in: {fan_in})"),
            Init::HeNormal { fan_in } => write!(f, "he_normal(fan_in: {fan_in})"),
            Init::LecunUniform { fan_in } => write!(f, "lecun_uniform(fan_in: {fan_in})"),
            Init::LecunNormal { fan_in } => write!(f, "lecun_normal(fan_in: {fan_in})"),
            Init::Zeros => write!(f, "zeros"),
            Init::Constant { value } => write!(f, "constant({value:?})"),
            Init::Normal { mean, std } => write!(f, "normal(mean: {mean:?}, std: {std:?})"),
            Init::Uniform { min, max } => write!(f, "uniform({min:?}, {max:?})"),
            Init::Orthogonal { gain } => write!(f, "orthogonal(gain: {gain:?})"),
            Init::UnitForgetBias { units } => write!(f, "unit_forget_bias(units: {units})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// `layer.param`, e.g. `dense_1.kernel` (Keras's naming).
    pub name: String,
    /// Always fully known (parameters never depend on the batch size).
    pub shape: Shape,
    pub init: Init,
    /// Whether training differentiates it and the optimizer updates it. Keras's non-trainable
    /// weights (batch normalization's moving statistics) are updated by the graph's own
    /// `updates` instead, and are saved and loaded like any parameter.
    pub trainable: bool,
    /// The penalty on its values that lowering adds to the loss (a built-in layer's
    /// `kernel_regularizer` and the like).
    pub regularizer: Option<crate::settings::regularizer::Regularizer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StateInfo {
    /// e.g. `dense_1.kernel.m`.
    pub name: String,
    pub shape: Shape,
    /// Every element's value before the first update (Adagrad's accumulator starts at 0.1).
    pub init: f32,
}

/// Where an update writes: the new value replaces the old one after the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Param(usize),
    State(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub target: Slot,
    pub value: ValueId,
}

/// A batch normalization's moving statistics: non-trainable parameters its `updates` move toward
/// each training batch's mean and variance, `moving · momentum + batch · (1 − momentum)`, once
/// per step. Data-parallel training reads this to give the moving variance the spread between
/// the ranks' batch means (`runtime::distributed`).
#[derive(Clone, Debug, PartialEq)]
pub struct MovingStatistics {
    pub mean: usize,
    pub variance: usize,
    pub momentum: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    pub param: usize,
    pub value: ValueId,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub inputs: Vec<InputInfo>,
    pub params: Vec<ParamInfo>,
    pub states: Vec<StateInfo>,
    /// Named results read by the runtime after a step: `loss`, `output`.
    pub outputs: Vec<(String, ValueId)>,
    /// ∂loss/∂param for every parameter, filled in by autodiff.
    pub gradients: Vec<Gradient>,
    /// Writes applied at the end of a step (the optimizer update).
    pub updates: Vec<Update>,
    /// The batch normalizations whose moving statistics `updates` move once per step.
    pub moving_statistics: Vec<MovingStatistics>,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    pub fn node(&self, value: ValueId) -> &Node {
        &self.nodes[value.index()]
    }

    pub fn ty(&self, value: ValueId) -> &TensorType {
        &self.node(value).ty
    }

    pub fn shape(&self, value: ValueId) -> &Shape {
        &self.node(value).ty.shape
    }

    /// The name of the parameter or optimizer state `value` reads, if it is one.
    pub fn slot_name(&self, value: ValueId) -> Option<&str> {
        match self.node(value).op {
            Op::Param { index } => Some(&self.params[index].name),
            Op::State { index } => Some(&self.states[index].name),
            _ => None,
        }
    }

    pub fn output(&self, name: &str) -> Option<ValueId> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, value)| value)
    }

    fn push(
        &mut self,
        op: Op,
        inputs: Vec<ValueId>,
        ty: TensorType,
        span: Option<Span>,
    ) -> ValueId {
        let id = ValueId(u32::try_from(self.nodes.len()).expect("IR graph exceeds u32 nodes"));
        self.nodes.push(Node {
            op,
            inputs,
            ty,
            span,
        });
        id
    }

    // ── Builders. Lowering and autodiff only build well-typed graphs from checked programs, so
    // a shape-rule failure here is a compiler bug, not a user error: it panics with the rule's
    // message. The verifier re-checks every graph independently.

    /// Adds a non-leaf op, inferring its type.
    pub fn add(&mut self, op: Op, inputs: &[ValueId], span: Option<Span>) -> ValueId {
        let types: Vec<&TensorType> = inputs.iter().map(|&v| self.ty(v)).collect();
        let ty = infer_type(&op, &types)
            .unwrap_or_else(|e| panic!("internal compiler error building {}: {e}", op.name()));
        self.push(op, inputs.to_vec(), ty, span)
    }

    pub fn input(&mut self, name: &str, ty: TensorType, span: Option<Span>) -> ValueId {
        let index = self.inputs.len();
        self.inputs.push(InputInfo {
            name: name.to_string(),
            ty: ty.clone(),
        });
        self.push(Op::Input { index }, Vec::new(), ty, span)
    }

    pub fn param(&mut self, info: ParamInfo, span: Option<Span>) -> ValueId {
        let index = self.params.len();
        let ty = TensorType::f32(info.shape.clone());
        self.params.push(info);
        self.push(Op::Param { index }, Vec::new(), ty, span)
    }

    pub fn state(&mut self, info: StateInfo, span: Option<Span>) -> ValueId {
        let index = self.states.len();
        let ty = TensorType::f32(info.shape.clone());
        self.states.push(info);
        self.push(Op::State { index }, Vec::new(), ty, span)
    }

    /// The node that reads parameter `index` (added by `param`).
    pub fn param_value(&self, index: usize) -> Option<ValueId> {
        self.find_leaf(&Op::Param { index })
    }

    pub fn state_value(&self, index: usize) -> Option<ValueId> {
        self.find_leaf(&Op::State { index })
    }

    pub fn input_value(&self, name: &str) -> Option<ValueId> {
        let index = self.inputs.iter().position(|i| i.name == name)?;
        self.find_leaf(&Op::Input { index })
    }

    fn find_leaf(&self, op: &Op) -> Option<ValueId> {
        self.nodes
            .iter()
            .position(|n| &n.op == op)
            .map(|i| ValueId(i as u32))
    }

    pub fn constant(&mut self, value: f32, span: Option<Span>) -> ValueId {
        self.push(
            Op::Const { value },
            Vec::new(),
            TensorType::f32(Shape::scalar()),
            span,
        )
    }

    pub fn batch_size(&mut self, span: Option<Span>) -> ValueId {
        self.push(
            Op::BatchSize,
            Vec::new(),
            TensorType::f32(Shape::scalar()),
            span,
        )
    }

    pub fn unary(&mut self, op: UnaryOp, x: ValueId, span: Option<Span>) -> ValueId {
        self.add(Op::Unary(op), &[x], span)
    }

    pub fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId, span: Option<Span>) -> ValueId {
        self.add(Op::Binary(op), &[a, b], span)
    }

    /// Stretches `x` to `shape`; a no-op when it already has that shape.
    pub fn broadcast(&mut self, x: ValueId, shape: &Shape, span: Option<Span>) -> ValueId {
        let ty = self.ty(x);
        if &ty.shape == shape {
            return x;
        }
        assert!(
            ty.shape.broadcasts_to(shape),
            "internal compiler error: cannot broadcast {ty} to {shape}"
        );
        let out = TensorType {
            dtype: ty.dtype,
            shape: shape.clone(),
        };
        self.push(Op::Broadcast, vec![x], out, span)
    }

    /// `x` with the same elements under `shape` (row-major order kept); a no-op when it already
    /// has that shape. The shapes must satisfy `shape::reshape_rule`.
    pub fn reshape(&mut self, x: ValueId, shape: &Shape, span: Option<Span>) -> ValueId {
        let ty = self.ty(x);
        if &ty.shape == shape {
            return x;
        }
        if let Err(e) = reshape_rule(&ty.shape, shape) {
            panic!("internal compiler error: {e}");
        }
        let out = TensorType {
            dtype: ty.dtype,
            shape: shape.clone(),
        };
        self.push(Op::Reshape, vec![x], out, span)
    }

    /// Permutes the axes of `x` (output axis `i` is input axis `perm[i]`).
    pub fn transpose(&mut self, x: ValueId, perm: &[usize], span: Option<Span>) -> ValueId {
        self.add(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            &[x],
            span,
        )
    }

    /// Elements `start..end` of `axis`.
    pub fn slice(
        &mut self,
        x: ValueId,
        axis: usize,
        start: usize,
        end: usize,
        span: Option<Span>,
    ) -> ValueId {
        self.add(Op::Slice { axis, start, end }, &[x], span)
    }

    /// Joins `parts` along `axis`.
    pub fn concat(&mut self, parts: &[ValueId], axis: usize, span: Option<Span>) -> ValueId {
        self.add(Op::Concat { axis }, parts, span)
    }

    /// `a` where `cond != 0`, else `b` (all three broadcast together).
    pub fn select(&mut self, cond: ValueId, a: ValueId, b: ValueId, span: Option<Span>) -> ValueId {
        self.add(Op::Select, &[cond, a, b], span)
    }

    /// Rows of `table` picked by the i32 `indices`.
    pub fn gather(&mut self, table: ValueId, indices: ValueId, span: Option<Span>) -> ValueId {
        self.add(Op::Gather, &[table, indices], span)
    }

    /// The f32 scalar step-counter input (`optimizer::STEP`, 1-based, fed every step), created
    /// on first use. Dropout and Adam share it, so whichever asks first defines it.
    pub fn step_input(&mut self, span: Option<Span>) -> ValueId {
        self.scalar_input(super::optimizer::STEP, span)
    }

    /// The f32 scalar input `name`, created on first use.
    fn scalar_input(&mut self, name: &str, span: Option<Span>) -> ValueId {
        match self.input_value(name) {
            Some(input) => input,
            None => self.input(name, TensorType::f32(Shape::scalar()), span),
        }
    }

    /// The f32 scalar input holding the global index of the batch's first row
    /// (`dropout::FIRST_ROW`), created on first use.
    pub fn first_row_input(&mut self, span: Option<Span>) -> ValueId {
        self.scalar_input(super::dropout::FIRST_ROW, span)
    }

    /// Inverted dropout of `x`; `step` is the step-counter input (`step_input`).
    pub fn dropout(
        &mut self,
        x: ValueId,
        step: ValueId,
        rate: f32,
        seed: u64,
        span: Option<Span>,
    ) -> ValueId {
        let first_row = self.first_row_input(span);
        self.add(Op::Dropout { rate, seed }, &[x, step, first_row], span)
    }

    /// Reduction of `x` over `axes` (sorted, distinct).
    pub fn reduce(
        &mut self,
        kind: ReduceKind,
        x: ValueId,
        axes: &[usize],
        keep_dims: bool,
        span: Option<Span>,
    ) -> ValueId {
        self.add(
            Op::Reduce {
                kind,
                axes: axes.to_vec(),
                keep_dims,
            },
            &[x],
            span,
        )
    }

    /// Rebuilds the graph node by node, the common shape of every rewriting pass. `rewrite` gets
    /// the graph built so far and a node whose inputs are already renamed into it, and returns the
    /// value standing for that node (usually `push_node`, or an existing value it is replaced by).
    /// Outputs, gradients and updates follow the renaming.
    pub fn rebuild(&self, mut rewrite: impl FnMut(&mut Graph, Node) -> ValueId) -> Graph {
        let mut out = Graph {
            nodes: Vec::with_capacity(self.nodes.len()),
            ..self.clone()
        };
        let mut renamed: Vec<ValueId> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let mut node = node.clone();
            for input in &mut node.inputs {
                *input = renamed[input.index()];
            }
            renamed.push(rewrite(&mut out, node));
        }
        let map = |v: ValueId| renamed[v.index()];
        for (_, value) in &mut out.outputs {
            *value = map(*value);
        }
        for gradient in &mut out.gradients {
            gradient.value = map(gradient.value);
        }
        for update in &mut out.updates {
            update.value = map(update.value);
        }
        out
    }

    /// Appends a node as it is (its type is trusted; the verifier checks it).
    pub fn push_node(&mut self, node: Node) -> ValueId {
        self.push(node.op, node.inputs, node.ty, node.span)
    }

    /// The scalar value of a constant, seen through broadcasts of it.
    pub fn constant_value(&self, v: ValueId) -> Option<f32> {
        match self.node(v).op {
            Op::Const { value } => Some(value),
            Op::Broadcast => self.constant_value(self.node(v).inputs[0]),
            _ => None,
        }
    }

    /// Users of every value, in node order.
    pub fn users(&self) -> Vec<Vec<ValueId>> {
        let mut users = vec![Vec::new(); self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for &input in &node.inputs {
                users[input.index()].push(ValueId(i as u32));
            }
        }
        users
    }

    /// Values that leave the graph: outputs, gradients and updates.
    pub fn roots(&self) -> Vec<ValueId> {
        self.outputs
            .iter()
            .map(|&(_, v)| v)
            .chain(self.gradients.iter().map(|g| g.value))
            .chain(self.updates.iter().map(|u| u.value))
            .collect()
    }

    /// Whether a value is an f32 scalar constant equal to `value`.
    pub fn is_const(&self, v: ValueId, value: f32) -> bool {
        matches!(self.node(v).op, Op::Const { value: c } if c == value)
    }

    pub fn dtype(&self, v: ValueId) -> DType {
        self.ty(v).dtype
    }
}
