//! The reference interpreter: an ndarray implementation of every IR op, in f64. It is the living
//! definition of what each op means — the JIT is tested against it and gradients are tested
//! against finite differences on it. Training never runs here.

mod recurrence;
mod window;

use ndarray::{ArrayD, ArrayViewD, Axis, Dimension, IxDyn, Slice, Zip};

use crate::ir::dropout;
use crate::ir::graph::{Graph, Slot};
use crate::ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use crate::ir::recurrence::CellKind;

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
    evaluate_rounded(graph, bindings, batch, false)
}

/// `evaluate` with every node's values rounded to f32 as they are computed, so that what
/// overflows (or underflows) in the compiled step's float32 arithmetic does here too: what
/// `first_non_finite` searches when training meets a non-finite loss.
pub fn evaluate_f32(
    graph: &Graph,
    bindings: &Bindings,
    batch: usize,
) -> Result<Vec<ArrayD<f64>>, String> {
    evaluate_rounded(graph, bindings, batch, true)
}

/// The first node (in the graph's order) holding a NaN or infinite value.
pub fn first_non_finite(values: &[ArrayD<f64>]) -> Option<usize> {
    values.iter().position(|v| v.iter().any(|x| !x.is_finite()))
}

fn evaluate_rounded(
    graph: &Graph,
    bindings: &Bindings,
    batch: usize,
    to_f32: bool,
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
            Op::LeakyRelu { alpha } => arg(0).mapv(|x| leaky_relu(f64::from(*alpha), x)),
            Op::Elu { alpha } => arg(0).mapv(|x| elu(f64::from(*alpha), x)),
            Op::Select => {
                let c = broadcast(arg(0), &shape, i)?;
                let a = broadcast(arg(1), &shape, i)?;
                let b = broadcast(arg(2), &shape, i)?;
                Zip::from(&c)
                    .and(&a)
                    .and(&b)
                    .map_collect(|&c, &a, &b| select(c, a, b))
            }
            Op::Dropout { rate, seed } => {
                let step = step_counter(scalar(arg(1)));
                let key = dropout::Key::new(*seed, step);
                let threshold = dropout::threshold(*rate);
                let scale = f64::from(dropout::scale(*rate));
                let x = arg(0).as_standard_layout();
                let row_len = dropout::row_len(graph.shape(node.inputs[0]));
                let offset = dropout::offset(step_counter(scalar(arg(2))), row_len);
                let data = x
                    .iter()
                    .enumerate()
                    .map(|(k, &x)| {
                        if key.keep((k as u32).wrapping_add(offset), threshold) {
                            x * scale
                        } else {
                            0.0
                        }
                    })
                    .collect();
                ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| e.to_string())?
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => matmul(arg(0), arg(1), *transpose_a, *transpose_b, &shape, i)?,
            Op::Reduce {
                kind,
                axes,
                keep_dims,
            } => reduce(arg(0), *kind, axes, *keep_dims),
            Op::Softmax => softmax(arg(0), false),
            Op::CausalSoftmax => causal_softmax(arg(0)),
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
            Op::InTraining => broadcast(arg(0), &shape, i)?,
            Op::Contract => contract(arg(0), arg(1), &shape)?,
            Op::Unfold { window } => window::unfold(window, arg(0), &shape)?,
            Op::Fold { window, .. } => window::fold(window, arg(0), &shape)?,
            Op::Pool { kind, window } => window::pool(*kind, window, arg(0), &shape)?,
            Op::PoolGrad { kind, window } => {
                window::pool_grad(*kind, window, arg(0), arg(1), arg(2))?
            }
            Op::Recurrence { cell } => {
                let bias = (cell.kind == CellKind::Gru).then(|| arg(2));
                let mask = cell.masked.then(|| arg(node.inputs.len() - 1));
                recurrence::forward(cell, arg(0), arg(1), bias, mask, &shape)?
            }
            Op::RecurrenceGrad { cell } => {
                let mask = cell.masked.then(|| arg(3));
                recurrence::backward(cell, arg(0), arg(1), arg(2), mask, &shape)?
            }
            Op::Transpose { perm } => arg(0).view().permuted_axes(IxDyn(perm)).to_owned(),
            Op::Reshape => arg(0)
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(&shape))
                .map_err(|e| format!("%{i}: reshape: {e}"))?,
            Op::Slice { axis, start, end } => arg(0)
                .slice_axis(Axis(*axis), Slice::from(*start..*end))
                .to_owned(),
            Op::Concat { axis } => {
                let parts: Vec<ArrayViewD<f64>> = node
                    .inputs
                    .iter()
                    .map(|v| values[v.index()].view())
                    .collect();
                ndarray::concatenate(Axis(*axis), &parts).map_err(|e| format!("%{i}: {e}"))?
            }
            Op::Gather => {
                let (table, indices) = (arg(0), arg(1));
                let rows = table.shape()[0];
                let width: usize = table.shape()[1..].iter().product();
                let table = table.as_standard_layout();
                let table = table.as_slice().expect("standard layout");
                let mut data = Vec::with_capacity(indices.len() * width);
                for &index in indices.as_standard_layout().iter() {
                    match row_index(index, rows) {
                        Some(r) => data.extend_from_slice(&table[r * width..(r + 1) * width]),
                        None => data.extend(std::iter::repeat_n(0.0, width)),
                    }
                }
                ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| e.to_string())?
            }
            Op::ScatterAdd { rows } => {
                let (updates, indices) = (arg(0), arg(1));
                let width: usize = shape[1..].iter().product();
                let updates = updates.as_standard_layout();
                let updates = updates.as_slice().expect("standard layout");
                let mut data = vec![0.0; rows * width];
                for (k, &index) in indices.as_standard_layout().iter().enumerate() {
                    if let Some(r) = row_index(index, *rows) {
                        let row = &updates[k * width..(k + 1) * width];
                        for (out, &u) in data[r * width..(r + 1) * width].iter_mut().zip(row) {
                            *out += u;
                        }
                    }
                }
                ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| e.to_string())?
            }
        };
        // Every value row-major, whatever layout a view-based op left it in.
        let value = if value.is_standard_layout() {
            value
        } else {
            value.as_standard_layout().into_owned()
        };
        if value.shape() != shape.as_slice() {
            return Err(format!(
                "%{i} ({}): computed shape {:?}, expected {shape:?}",
                node.op.name(),
                value.shape()
            ));
        }
        let value = if to_f32 {
            value.mapv(|x| f64::from(x as f32))
        } else {
            value
        };
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

/// `op(a) @ op(b)` for one product or a batch of them (see `Op::MatMul`).
fn matmul(
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    transpose_a: bool,
    transpose_b: bool,
    shape: &[usize],
    node: usize,
) -> Result<ArrayD<f64>, String> {
    let as_matrices =
        |v: &ArrayD<f64>, transpose: bool| -> Result<Vec<ndarray::Array2<f64>>, String> {
            let r = v.ndim();
            let (rows, cols) = (v.shape()[r - 2], v.shape()[r - 1]);
            let v = v.as_standard_layout();
            let v = v
                .view()
                .into_shape_with_order((v.len() / (rows * cols).max(1), rows, cols))
                .map_err(|e| format!("%{node}: matmul operand: {e}"))?;
            Ok(v.outer_iter()
                .map(|m| {
                    if transpose {
                        m.t().to_owned()
                    } else {
                        m.to_owned()
                    }
                })
                .collect())
        };
    let (a, b) = (as_matrices(a, transpose_a)?, as_matrices(b, transpose_b)?);
    let mut data = Vec::with_capacity(shape.iter().product());
    for (i, a) in a.iter().enumerate() {
        // A single right matrix is shared by every left one.
        let b = if b.len() == 1 { &b[0] } else { &b[i] };
        data.extend(a.dot(b).iter().copied());
    }
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| format!("%{node}: matmul: {e}"))
}

fn scalar(x: &ArrayD<f64>) -> f64 {
    x.iter().next().copied().unwrap_or(f64::NAN)
}

/// The step counter as the integer the dropout mask is keyed on: truncated and saturated like
/// Cranelift's `fcvt_to_uint_sat` (NaN and negatives give 0).
pub fn step_counter(step: f64) -> u32 {
    step as u32
}

/// A gather/scatter index as a row, or `None` when it is outside `0..rows`.
fn row_index(index: f64, rows: usize) -> Option<usize> {
    (index >= 0.0 && index < rows as f64).then_some(index as usize)
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
        // A NaN stays NaN (Keras, PyTorch).
        UnaryOp::Relu => {
            if x <= 0.0 {
                0.0
            } else {
                x
            }
        }
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        // `x.max(0.0)` would turn NaN into 0; the log1p term carries it.
        UnaryOp::Softplus => (-x.abs()).exp().ln_1p() + if x > 0.0 { x } else { 0.0 },
        // x Φ(x) with Φ(x) = erfc(-x/√2)/2, accurate in the left tail too.
        UnaryOp::Gelu => 0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2),
        UnaryOp::Erf => libm::erf(x),
    }
}

pub fn leaky_relu(alpha: f64, x: f64) -> f64 {
    if x > 0.0 { x } else { alpha * x }
}

pub fn elu(alpha: f64, x: f64) -> f64 {
    if x > 0.0 { x } else { alpha * x.exp_m1() }
}

pub fn select(c: f64, a: f64, b: f64) -> f64 {
    if c != 0.0 { a } else { b }
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
        BinaryOp::Min => {
            if b < a {
                b
            } else {
                a
            }
        }
        BinaryOp::Greater => f64::from(u8::from(a > b)),
        BinaryOp::Less => f64::from(u8::from(a < b)),
        BinaryOp::GreaterEqual => f64::from(u8::from(a >= b)),
        BinaryOp::LessEqual => f64::from(u8::from(a <= b)),
        BinaryOp::Equal => f64::from(u8::from(a == b)),
        BinaryOp::NotEqual => f64::from(u8::from(a != b)),
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
            ReduceKind::Mean => {
                let n = out.shape()[axis] as f64;
                out.sum_axis(Axis(axis)) / n
            }
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

/// Softmax of row `i` (of the last two axes) over its first `i + 1` entries, zeros after.
fn causal_softmax(x: &ArrayD<f64>) -> ArrayD<f64> {
    let mut out = x.as_standard_layout().into_owned();
    let width = x.shape()[x.ndim() - 1];
    let queries = x.shape()[x.ndim() - 2].max(1);
    let last = Axis(x.ndim() - 1);
    for (r, mut row) in out.lanes_mut(last).into_iter().enumerate() {
        let seen = (r % queries + 1).min(width);
        let max = row
            .iter()
            .take(seen)
            .fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f64 = row.iter().take(seen).map(|&v| (v - max).exp()).sum();
        for (j, v) in row.iter_mut().enumerate() {
            *v = if j < seen {
                (*v - max).exp() / sum
            } else {
                0.0
            };
        }
    }
    out
}

/// `aᵀ·b` with both flattened to rows of their last axis.
fn contract(a: &ArrayD<f64>, b: &ArrayD<f64>, shape: &[usize]) -> Result<ArrayD<f64>, String> {
    let (m, n) = (shape[0], shape[1]);
    let rows = a.len().checked_div(m).unwrap_or(0);
    let a = a.as_standard_layout();
    let b = b.as_standard_layout();
    let a = ndarray::ArrayView2::from_shape((rows, m), a.as_slice().expect("standard layout"))
        .map_err(|e| e.to_string())?;
    let b = ndarray::ArrayView2::from_shape((rows, n), b.as_slice().expect("standard layout"))
        .map_err(|e| e.to_string())?;
    Ok(a.t().dot(&b).into_dyn())
}
