//! Reverse-mode autodiff on the IR. Walking the graph backwards from the loss, each op's
//! vector-Jacobian product (`vjp`, one rule per op in one table) emits ordinary IR, so the
//! backward pass is optimized and compiled exactly like the forward pass.

use super::graph::{Gradient, Graph, ValueId};
use super::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use super::shape::{Dim, Shape};
use crate::diag::Span;

/// Appends ∂loss/∂param for every parameter to `graph` (recorded in `graph.gradients`).
/// Returns the indices of parameters the loss does not depend on: their gradient is zero.
pub fn differentiate(graph: &mut Graph, loss: ValueId) -> Vec<usize> {
    let forward_len = graph.nodes.len();
    let needs_grad = depends_on_params(graph);
    let mut adjoint: Vec<Option<ValueId>> = vec![None; forward_len];
    adjoint[loss.index()] = Some(graph.constant(1.0, graph.node(loss).span));

    for index in (0..forward_len).rev() {
        let Some(dy) = adjoint[index] else { continue };
        let node = graph.nodes[index].clone();
        if node.op.is_leaf() {
            continue;
        }
        let wanted: Vec<bool> = node.inputs.iter().map(|i| needs_grad[i.index()]).collect();
        if !wanted.contains(&true) {
            continue;
        }
        let y = ValueId(index as u32);
        let contributions = vjp(graph, &node.op, &node.inputs, &wanted, y, dy, node.span);
        for (&input, contribution) in node.inputs.iter().zip(contributions) {
            let Some(contribution) = contribution else {
                continue;
            };
            // A value used more than once accumulates the gradient of every use.
            adjoint[input.index()] = Some(match adjoint[input.index()] {
                None => contribution,
                Some(previous) => graph.binary(BinaryOp::Add, previous, contribution, node.span),
            });
        }
    }

    let mut unreachable = Vec::new();
    for param in 0..graph.params.len() {
        let adjoint = graph
            .param_value(param)
            .and_then(|value| adjoint[value.index()]);
        let value = match adjoint {
            Some(value) => value,
            None => {
                unreachable.push(param);
                let zero = graph.constant(0.0, None);
                let shape = graph.params[param].shape.clone();
                graph.broadcast(zero, &shape, None)
            }
        };
        graph.gradients.push(Gradient { param, value });
    }
    unreachable
}

/// Which values depend on a parameter (only those need an adjoint).
fn depends_on_params(graph: &Graph) -> Vec<bool> {
    let mut needs = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        needs[i] = matches!(node.op, Op::Param { .. })
            || node.inputs.iter().any(|input| needs[input.index()]);
    }
    needs
}

/// The VJP table: given `dy = ∂loss/∂y` for `y = op(inputs)`, the contribution to each input's
/// adjoint (`None` where the op is not differentiable in that input, or `wanted` says the input
/// needs no gradient — so no dead backward code is emitted).
fn vjp(
    g: &mut Graph,
    op: &Op,
    inputs: &[ValueId],
    wanted: &[bool],
    y: ValueId,
    dy: ValueId,
    span: Option<Span>,
) -> Vec<Option<ValueId>> {
    use BinaryOp::{Div, Greater, Mul, Sub};
    match op {
        Op::Input { .. }
        | Op::Param { .. }
        | Op::State { .. }
        | Op::Const { .. }
        | Op::BatchSize => {
            vec![]
        }
        Op::Unary(unary) => {
            let x = inputs[0];
            let dx = match unary {
                UnaryOp::Neg => g.unary(UnaryOp::Neg, dy, span),
                // d exp(x) = exp(x) = y
                UnaryOp::Exp => g.binary(Mul, dy, y, span),
                UnaryOp::Log => g.binary(Div, dy, x, span),
                // d sqrt(x) = 1 / (2 sqrt(x)) = 0.5 / y
                UnaryOp::Sqrt => {
                    let half = g.constant(0.5, span);
                    let scaled = g.binary(Mul, dy, half, span);
                    g.binary(Div, scaled, y, span)
                }
                // The mask reads the output, which stays materialized for the next layer anyway.
                UnaryOp::Relu => {
                    let zero = g.constant(0.0, span);
                    let mask = g.binary(Greater, y, zero, span);
                    g.binary(Mul, dy, mask, span)
                }
                // σ' = σ (1 - σ)
                UnaryOp::Sigmoid => {
                    let one = g.constant(1.0, span);
                    let complement = g.binary(Sub, one, y, span);
                    let slope = g.binary(Mul, y, complement, span);
                    g.binary(Mul, dy, slope, span)
                }
                // tanh' = 1 - tanh²
                UnaryOp::Tanh => {
                    let one = g.constant(1.0, span);
                    let squared = g.binary(Mul, y, y, span);
                    let slope = g.binary(Sub, one, squared, span);
                    g.binary(Mul, dy, slope, span)
                }
            };
            vec![Some(dx)]
        }
        Op::Binary(binary) => {
            let (a, b) = (inputs[0], inputs[1]);
            let mut contributions = vec![None, None];
            for (side, slot) in contributions.iter_mut().enumerate() {
                if !wanted[side] {
                    continue;
                }
                let Some(d) = binary_vjp(g, *binary, side, a, b, y, dy, span) else {
                    continue;
                };
                let shape = g.shape(inputs[side]).clone();
                *slot = Some(sum_to(g, d, &shape, span));
            }
            contributions
        }
        Op::Broadcast => {
            let shape = g.shape(inputs[0]).clone();
            vec![Some(sum_to(g, dy, &shape, span))]
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let (a, b) = (inputs[0], inputs[1]);
            let mm = |g: &mut Graph, l: ValueId, r: ValueId, ta: bool, tb: bool| {
                g.add(
                    Op::MatMul {
                        transpose_a: ta,
                        transpose_b: tb,
                    },
                    &[l, r],
                    span,
                )
            };
            // C = op(A) op(B); each case moves the transposes so no transpose is materialized.
            let da = match (transpose_a, transpose_b) {
                (false, false) => (dy, b, false, true),
                (false, true) => (dy, b, false, false),
                (true, false) => (b, dy, false, true),
                (true, true) => (b, dy, true, true),
            };
            let db = match (transpose_a, transpose_b) {
                (false, false) => (a, dy, true, false),
                (false, true) => (dy, a, true, false),
                (true, false) => (a, dy, false, false),
                (true, true) => (dy, a, true, true),
            };
            [da, db]
                .into_iter()
                .zip(wanted)
                .map(|((l, r, ta, tb), &want)| want.then(|| mm(g, l, r, ta, tb)))
                .collect()
        }
        Op::Reduce {
            kind,
            axes,
            keep_dims,
        } => {
            let x = inputs[0];
            let x_shape = g.shape(x).clone();
            let dy_spread = expand_reduced(g, dy, &x_shape, axes, *keep_dims, span);
            let dx = match kind {
                ReduceKind::Sum => dy_spread,
                // Every element equal to the maximum receives the gradient.
                ReduceKind::Max => {
                    let y_spread = expand_reduced(g, y, &x_shape, axes, *keep_dims, span);
                    let below = g.binary(Greater, y_spread, x, span);
                    let one = g.constant(1.0, span);
                    let is_max = g.binary(Sub, one, below, span);
                    g.binary(Mul, dy_spread, is_max, span)
                }
            };
            vec![Some(dx)]
        }
        // dx = y ⊙ (dy − Σ dy ⊙ y)
        Op::Softmax => {
            let weighted = g.binary(Mul, dy, y, span);
            let total = sum_last_axis(g, weighted, span);
            let centered = g.binary(Sub, dy, total, span);
            vec![Some(g.binary(Mul, y, centered, span))]
        }
        // dx = dy − softmax(x) Σ dy, with softmax(x) = exp(y)
        Op::LogSoftmax => {
            let probs = g.unary(UnaryOp::Exp, y, span);
            let total = sum_last_axis(g, dy, span);
            let spread = g.binary(Mul, probs, total, span);
            vec![Some(g.binary(Sub, dy, spread, span))]
        }
        Op::OneHot { .. } => vec![None],
    }
}

/// The adjoint contribution of a binary op to operand `side` (0 = a, 1 = b), before
/// unbroadcasting; `None` where the op has no gradient.
#[allow(clippy::too_many_arguments)]
fn binary_vjp(
    g: &mut Graph,
    op: BinaryOp,
    side: usize,
    a: ValueId,
    b: ValueId,
    y: ValueId,
    dy: ValueId,
    span: Option<Span>,
) -> Option<ValueId> {
    use BinaryOp::{Add, Div, Greater, Mul, Sub};
    Some(match (op, side) {
        (Add, _) | (Sub, 0) => dy,
        (Sub, _) => g.unary(UnaryOp::Neg, dy, span),
        (Mul, 0) => g.binary(Mul, dy, b, span),
        (Mul, _) => g.binary(Mul, dy, a, span),
        (Div, 0) => g.binary(Div, dy, b, span),
        // d(a/b)/db = -a/b² = -y/b
        (Div, _) => {
            let ratio = g.binary(Div, y, b, span);
            let scaled = g.binary(Mul, dy, ratio, span);
            g.unary(UnaryOp::Neg, scaled, span)
        }
        // d(a^b)/da = b a^(b-1)
        (BinaryOp::Pow, 0) => {
            let one = g.constant(1.0, span);
            let exponent = g.binary(Sub, b, one, span);
            let power = g.binary(BinaryOp::Pow, a, exponent, span);
            let slope = g.binary(Mul, b, power, span);
            g.binary(Mul, dy, slope, span)
        }
        // d(a^b)/db = a^b ln a
        (BinaryOp::Pow, _) => {
            let log_a = g.unary(UnaryOp::Log, a, span);
            let slope = g.binary(Mul, y, log_a, span);
            g.binary(Mul, dy, slope, span)
        }
        // The gradient goes to the larger operand; ties go to `a`.
        (BinaryOp::Max, side) => {
            let b_wins = g.binary(Greater, b, a, span);
            let mask = if side == 0 {
                let one = g.constant(1.0, span);
                g.binary(Sub, one, b_wins, span)
            } else {
                b_wins
            };
            g.binary(Mul, dy, mask, span)
        }
        (Greater, _) => return None,
    })
}

/// Sums `dy` over the axes along which a value of `target` shape was broadcast (the adjoint of
/// NumPy broadcasting).
fn sum_to(g: &mut Graph, dy: ValueId, target: &Shape, span: Option<Span>) -> ValueId {
    let shape = g.shape(dy).clone();
    if &shape == target {
        return dy;
    }
    let leading = shape.rank() - target.rank();
    let stretched: Vec<usize> = (leading..shape.rank())
        .filter(|&i| target.0[i - leading] == Dim::Fixed(1) && shape.0[i] != Dim::Fixed(1))
        .collect();
    let mut value = dy;
    if !stretched.is_empty() {
        value = g.add(
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: stretched,
                keep_dims: true,
            },
            &[value],
            span,
        );
    }
    if leading > 0 {
        value = g.add(
            Op::Reduce {
                kind: ReduceKind::Sum,
                axes: (0..leading).collect(),
                keep_dims: false,
            },
            &[value],
            span,
        );
    }
    value
}

/// Broadcasts a reduction's result back over the reduced axes of `x_shape`.
fn expand_reduced(
    g: &mut Graph,
    value: ValueId,
    x_shape: &Shape,
    axes: &[usize],
    keep_dims: bool,
    span: Option<Span>,
) -> ValueId {
    // Without kept dims only a reduction over leading axes lines up under NumPy broadcasting;
    // lowering only builds such reductions (a general `reshape` op arrives with the full op set).
    let leading = axes.iter().enumerate().all(|(i, &a)| i == a);
    assert!(
        keep_dims || leading,
        "internal compiler error: gradient of a reduction over inner axes {axes:?} without keep_dims"
    );
    g.broadcast(value, x_shape, span)
}

fn sum_last_axis(g: &mut Graph, x: ValueId, span: Option<Span>) -> ValueId {
    let last = g.shape(x).rank() - 1;
    g.add(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![last],
            keep_dims: true,
        },
        &[x],
        span,
    )
}
