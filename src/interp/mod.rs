//! The reference interpreter: an ndarray implementation of every IR op, in f64. It is the living
//! definition of what each op means — the JIT is tested against it and gradients are tested
//! against finite differences on it. Training never runs here.

use ndarray::{ArrayD, Axis, Dimension, IxDyn, Zip};

use crate::ir::graph::{Graph, Slot};
use crate::ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};

/// Values for a graph's leaves. Integer inputs (class labels) are held as whole f64s.
#[derive(Clone, Debug)]
pub struct Bindings {
    pub inputs: Vec<ArrayD<f64>>,
    pub params: Vec<ArrayD<f64>>,
    pub states: Vec<ArrayD<f64>>,
}

/// Everything one step produces.
#[derive(Clone, Debug)]
pub struct StepResult {
    pub outputs: Vec<(String, ArrayD<f64>)>,
    /// ∂loss/∂param, in parameter order.
    pub gradients: Vec<ArrayD<f64>>,
    /// Parameters and states after the updates.
    pub params: Vec<ArrayD<f64>>,
    pub states: Vec<ArrayD<f64>>,
}

impl StepResult {
    pub fn output(&self, name: &str) -> Option<&ArrayD<f64>> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Evaluates every node; returns the value of each, in node order.
pub fn evaluate(
    graph: &Graph,
    bindings: &Bindings,
    batch: usize,
) -> Result<Vec<ArrayD<f64>>, String> {
    let mut values: Vec<ArrayD<f64>> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let shape = node.ty.shape.resolve(batch);
        let arg = |k: usize| &values[node.inputs[k].index()];
        let value = match &node.op {
            Op::Input { index } => leaf(&bindings.inputs, *index, &shape, "input")?,
            Op::Param { index } => leaf(&bindings.params, *index, &shape, "parameter")?,
            Op::State { index } => leaf(&bindings.states, *index, &shape, "state")?,
            Op::Const { value } => ArrayD::from_elem(IxDyn(&[]), f64::from(*value)),
            Op::BatchSize => ArrayD::from_elem(IxDyn(&[]), batch as f64),
            Op::Unary(op) => arg(0).mapv(|x| unary(*op, x)),
            Op::Binary(op) => {
                let a = broadcast(arg(0), &shape, i)?;
                let b = broadcast(arg(1), &shape, i)?;
                Zip::from(&a)
                    .and(&b)
                    .map_collect(|&a, &b| binary(*op, a, b))
            }
            Op::Broadcast => broadcast(arg(0), &shape, i)?,
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let (a, b) = (as_matrix(arg(0), i)?, as_matrix(arg(1), i)?);
                let a = if *transpose_a { a.reversed_axes() } else { a };
                let b = if *transpose_b { b.reversed_axes() } else { b };
                // Row-major like every other value, whatever layout `dot` chose for transposed views.
                a.dot(&b).as_standard_layout().into_owned().into_dyn()
            }
            Op::Reduce {
                kind,
                axes,
                keep_dims,
            } => reduce(arg(0), *kind, axes, *keep_dims),
            Op::Softmax => softmax(arg(0), false),
            Op::LogSoftmax => softmax(arg(0), true),
            Op::OneHot { classes } => {
                let mut out = ArrayD::zeros(IxDyn(&shape));
                for (index, &label) in arg(0).indexed_iter() {
                    let class = label as i64;
                    if (0..*classes as i64).contains(&class) {
                        let mut at: Vec<usize> = index.slice().to_vec();
                        at.push(class as usize);
                        out[IxDyn(&at)] = 1.0;
                    }
                }
                out
            }
        };
        if value.shape() != shape.as_slice() {
            return Err(format!(
                "%{i} ({}): computed shape {:?}, expected {shape:?}",
                node.op.name(),
                value.shape()
            ));
        }
        values.push(value);
    }
    Ok(values)
}

/// Runs one whole step: outputs, gradients, and the parameters and states after the update.
pub fn step(graph: &Graph, bindings: &Bindings, batch: usize) -> Result<StepResult, String> {
    let values = evaluate(graph, bindings, batch)?;
    let mut params = bindings.params.clone();
    let mut states = bindings.states.clone();
    for update in &graph.updates {
        let value = values[update.value.index()].clone();
        match update.target {
            Slot::Param(i) => params[i] = value,
            Slot::State(i) => states[i] = value,
        }
    }
    Ok(StepResult {
        outputs: graph
            .outputs
            .iter()
            .map(|(name, v)| (name.clone(), values[v.index()].clone()))
            .collect(),
        gradients: graph
            .gradients
            .iter()
            .map(|g| values[g.value.index()].clone())
            .collect(),
        params,
        states,
    })
}

fn leaf(
    values: &[ArrayD<f64>],
    index: usize,
    shape: &[usize],
    what: &str,
) -> Result<ArrayD<f64>, String> {
    let value = values
        .get(index)
        .ok_or_else(|| format!("no value bound for {what} #{index}"))?;
    if value.shape() != shape {
        return Err(format!(
            "{what} #{index} has shape {:?}, the graph expects {shape:?}",
            value.shape()
        ));
    }
    Ok(value.clone())
}

fn as_matrix(v: &ArrayD<f64>, node: usize) -> Result<ndarray::ArrayView2<'_, f64>, String> {
    v.view()
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|e| format!("%{node}: matmul operand is not a matrix: {e}"))
}

fn broadcast(x: &ArrayD<f64>, shape: &[usize], node: usize) -> Result<ArrayD<f64>, String> {
    x.broadcast(IxDyn(shape))
        .map(|view| view.to_owned())
        .ok_or_else(|| format!("%{node}: cannot broadcast {:?} to {shape:?}", x.shape()))
}

pub fn unary(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
    }
}

pub fn binary(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Max => {
            if b > a {
                b
            } else {
                a
            }
        }
        BinaryOp::Greater => {
            if a > b {
                1.0
            } else {
                0.0
            }
        }
    }
}

fn reduce(x: &ArrayD<f64>, kind: ReduceKind, axes: &[usize], keep_dims: bool) -> ArrayD<f64> {
    let mut out = x.clone();
    // Highest axis first so the remaining indices stay valid.
    for &axis in axes.iter().rev() {
        out = match kind {
            ReduceKind::Sum => out.sum_axis(Axis(axis)),
            ReduceKind::Max => out.fold_axis(Axis(axis), f64::NEG_INFINITY, |&m, &v| {
                if v > m || v.is_nan() { v } else { m }
            }),
        };
        if keep_dims {
            out.insert_axis_inplace(Axis(axis));
        }
    }
    out
}

/// Softmax (or log-softmax) along the last axis, shifted by the row maximum.
fn softmax(x: &ArrayD<f64>, log: bool) -> ArrayD<f64> {
    let mut out = x.clone();
    let last = Axis(x.ndim() - 1);
    for mut row in out.lanes_mut(last) {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f64 = row.iter().map(|&v| (v - max).exp()).sum();
        let log_sum = sum.ln();
        row.mapv_inplace(|v| {
            if log {
                v - max - log_sum
            } else {
                (v - max).exp() / sum
            }
        });
    }
    out
}
