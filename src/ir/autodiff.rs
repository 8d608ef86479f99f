//! Reverse-mode autodiff on the IR. Walking the graph backwards from the loss, each op's
//! vector-Jacobian product (`vjp`, one rule per op in one table) emits ordinary IR, so the
//! backward pass is optimized and compiled exactly like the forward pass.

use super::graph::{Gradient, Graph, ValueId};
use super::op::{BinaryOp, Op, PoolKind, ReduceKind, UnaryOp};
use super::recurrence::{Cell, CellKind};
use super::shape::{Dim, Shape};
use crate::diag::Span;

/// Appends ∂loss/∂param for every trainable parameter to `graph` (recorded in
/// `graph.gradients`). Returns the indices of those the loss does not depend on: their gradient
/// is zero.
pub fn differentiate(graph: &mut Graph, loss: ValueId) -> Vec<usize> {
    let trainable: Vec<bool> = graph.params.iter().map(|p| p.trainable).collect();
    let needs_grad = depends_on(
        graph,
        |op| matches!(op, Op::Param { index } if trainable[*index]),
        &[],
    );
    let adjoint = backward(graph, loss, &needs_grad);
    let mut unreachable = Vec::new();
    for param in (0..graph.params.len()).filter(|&p| trainable[p]) {
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

/// ∂y/∂x for each `x` in `wrt`, appended to `graph`, for a scalar `y` (what the language's
/// `grad` computes). A value `y` does not depend on gets a zero gradient of its shape.
pub fn gradient(graph: &mut Graph, y: ValueId, wrt: &[ValueId]) -> Vec<ValueId> {
    let needs_grad = depends_on(graph, |_| false, wrt);
    let adjoint = backward(graph, y, &needs_grad);
    wrt.iter()
        .map(|&x| match adjoint[x.index()] {
            Some(value) => value,
            None => {
                let span = graph.node(x).span;
                let zero = graph.constant(0.0, span);
                let shape = graph.shape(x).clone();
                graph.broadcast(zero, &shape, span)
            }
        })
        .collect()
}

/// Walks the graph backwards from `y` (seeded with 1), accumulating each value's adjoint where
/// `needs_grad` says one is wanted.
fn backward(graph: &mut Graph, y: ValueId, needs_grad: &[bool]) -> Vec<Option<ValueId>> {
    let forward_len = graph.nodes.len();
    let mut adjoint: Vec<Option<ValueId>> = vec![None; forward_len];
    adjoint[y.index()] = Some(graph.constant(1.0, graph.node(y).span));
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
        let value = ValueId(index as u32);
        let contributions = vjp(graph, &node.op, &node.inputs, &wanted, value, dy, node.span);
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
    adjoint
}

/// Which values depend on a source — a node whose op `is_source` says so, or one of `values` —
/// (only those need an adjoint).
fn depends_on(graph: &Graph, is_source: impl Fn(&Op) -> bool, values: &[ValueId]) -> Vec<bool> {
    let mut needs = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        needs[i] = is_source(&node.op)
            || values.iter().any(|v| v.index() == i)
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
                UnaryOp::Relu => match routed_from_max_pool(g, y, dy) {
                    // Max pooling's gradient lands only where x equals its window's maximum,
                    // so masking the pooled gradient by `max > 0` is the same as masking the
                    // routed one by `x > 0` (NaN and infinities included): the mask works on
                    // the pooled tensor, a quarter of the size for 2×2 windows, and the full
                    // tensor is written once instead of three times.
                    Some((op, pooled, dy_pooled)) => {
                        let zero = g.constant(0.0, span);
                        let mask = g.binary(Greater, pooled, zero, span);
                        let masked = g.binary(Mul, dy_pooled, mask, span);
                        g.add(op, &[y, pooled, masked], span)
                    }
                    None => {
                        let zero = g.constant(0.0, span);
                        let mask = g.binary(Greater, y, zero, span);
                        g.binary(Mul, dy, mask, span)
                    }
                },
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
                // |x|' = sign(x), 0 at 0 (PyTorch's choice).
                UnaryOp::Abs => {
                    let zero = g.constant(0.0, span);
                    let pos = g.binary(Greater, x, zero, span);
                    let neg = g.binary(BinaryOp::Less, x, zero, span);
                    let sign = g.binary(Sub, pos, neg, span);
                    g.binary(Mul, dy, sign, span)
                }
                // d x^(-1/2) = -x^(-3/2) / 2 = -y³ / 2
                UnaryOp::Rsqrt => {
                    let square = g.binary(Mul, y, y, span);
                    let cube = g.binary(Mul, square, y, span);
                    let minus_half = g.constant(-0.5, span);
                    let slope = g.binary(Mul, minus_half, cube, span);
                    g.binary(Mul, dy, slope, span)
                }
                // softplus' = σ
                UnaryOp::Softplus => {
                    let slope = g.unary(UnaryOp::Sigmoid, x, span);
                    g.binary(Mul, dy, slope, span)
                }
                // erf' = 2/√π · exp(-x²)
                UnaryOp::Erf => {
                    let density = gaussian(g, x, -1.0, span);
                    let c = g.constant(std::f32::consts::FRAC_2_SQRT_PI, span);
                    let slope = g.binary(Mul, c, density, span);
                    g.binary(Mul, dy, slope, span)
                }
                // (x Φ(x))' = Φ(x) + x φ(x), Φ(x) = (1 + erf(x/√2))/2, φ(x) = exp(-x²/2)/√(2π)
                UnaryOp::Gelu => {
                    let c = g.constant(std::f32::consts::FRAC_1_SQRT_2, span);
                    let scaled = g.binary(Mul, x, c, span);
                    let erf = g.unary(UnaryOp::Erf, scaled, span);
                    let half = g.constant(0.5, span);
                    let half_erf = g.binary(Mul, half, erf, span);
                    let cdf = g.binary(BinaryOp::Add, half, half_erf, span);
                    let density = gaussian(g, x, -0.5, span);
                    let norm = g.constant(0.398_942_3, span); // 1/√(2π)
                    let pdf = g.binary(Mul, norm, density, span);
                    let x_pdf = g.binary(Mul, x, pdf, span);
                    let slope = g.binary(BinaryOp::Add, cdf, x_pdf, span);
                    g.binary(Mul, dy, slope, span)
                }
            };
            vec![Some(dx)]
        }
        // slope 1 where x > 0, else alpha
        Op::LeakyRelu { alpha } => {
            let zero = g.constant(0.0, span);
            let positive = g.binary(Greater, inputs[0], zero, span);
            let alpha = g.constant(*alpha, span);
            let scaled = g.binary(Mul, dy, alpha, span);
            vec![Some(g.select(positive, dy, scaled, span))]
        }
        // slope 1 where x > 0, else alpha·exp(x) = y + alpha
        Op::Elu { alpha } => {
            let zero = g.constant(0.0, span);
            let positive = g.binary(Greater, inputs[0], zero, span);
            let alpha = g.constant(*alpha, span);
            let slope = g.binary(BinaryOp::Add, y, alpha, span);
            let scaled = g.binary(Mul, dy, slope, span);
            vec![Some(g.select(positive, dy, scaled, span))]
        }
        // The condition gets no gradient; each branch gets dy where it was chosen.
        Op::Select => {
            let cond = inputs[0];
            let zero = g.constant(0.0, span);
            let mut contributions = vec![None, None, None];
            for side in [1, 2] {
                if !wanted[side] {
                    continue;
                }
                let d = if side == 1 {
                    g.select(cond, dy, zero, span)
                } else {
                    g.select(cond, zero, dy, span)
                };
                let shape = g.shape(inputs[side]).clone();
                contributions[side] = Some(sum_to(g, d, &shape, span));
            }
            contributions
        }
        // Dropout is linear in x with a mask fixed by (seed, step, index): its adjoint is the
        // same dropout applied to dy, which re-derives the identical mask.
        Op::Dropout { .. } => {
            let dx = g.add(op.clone(), &[dy, inputs[1], inputs[2]], span);
            vec![Some(dx), None, None]
        }
        Op::Transpose { perm } => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            vec![Some(g.transpose(dy, &inverse, span))]
        }
        Op::Reshape => {
            let shape = g.shape(inputs[0]).clone();
            vec![Some(g.reshape(dy, &shape, span))]
        }
        // Zeros around dy where the slice cut the input.
        Op::Slice { axis, start, end } => {
            let x_shape = g.shape(inputs[0]).clone();
            let Dim::Fixed(n) = x_shape.0[*axis] else {
                unreachable!("the shape rule forbids slicing the batch axis")
            };
            let zeros = |g: &mut Graph, len: usize| {
                let mut dims = x_shape.0.clone();
                dims[*axis] = Dim::Fixed(len);
                let zero = g.constant(0.0, span);
                g.broadcast(zero, &Shape(dims), span)
            };
            let mut parts = Vec::new();
            if *start > 0 {
                parts.push(zeros(g, *start));
            }
            parts.push(dy);
            if *end < n {
                parts.push(zeros(g, n - end));
            }
            let dx = if parts.len() == 1 {
                dy
            } else {
                g.concat(&parts, *axis, span)
            };
            vec![Some(dx)]
        }
        Op::Concat { axis } => {
            let total = inputs.len();
            let mut offset = 0;
            let mut contributions = Vec::with_capacity(total);
            for (k, &input) in inputs.iter().enumerate() {
                let Dim::Fixed(len) = g.shape(input).0[*axis] else {
                    unreachable!("the shape rule forbids concatenating along the batch axis")
                };
                contributions.push(wanted[k].then(|| {
                    if total == 1 {
                        dy
                    } else {
                        g.slice(dy, *axis, offset, offset + len, span)
                    }
                }));
                offset += len;
            }
            contributions
        }
        // The adjoint of picking rows is adding into them; indices get no gradient.
        Op::Gather => {
            let Dim::Fixed(rows) = g.shape(inputs[0]).0[0] else {
                unreachable!("the shape rule needs a fixed table length")
            };
            let dx = g.add(Op::ScatterAdd { rows }, &[dy, inputs[1]], span);
            vec![Some(dx), None]
        }
        Op::ScatterAdd { .. } => vec![Some(g.gather(dy, inputs[1], span)), None],
        // Training follows its first input; the inference value plays no part in a step.
        Op::InTraining => vec![Some(dy), None],
        // `unfold` and `fold` are each other's adjoints (both linear).
        Op::Unfold { window } => {
            let dims = g.shape(inputs[0]).dims().to_vec();
            let input = fixed_spatial(&dims);
            let fold = Op::Fold {
                window: window.clone(),
                input,
            };
            vec![Some(g.add(fold, &[dy], span))]
        }
        Op::Fold { window, .. } => {
            let unfold = Op::Unfold {
                window: window.clone(),
            };
            vec![Some(g.add(unfold, &[dy], span))]
        }
        Op::Pool { kind, window } => {
            let grad = Op::PoolGrad {
                kind: *kind,
                window: window.clone(),
            };
            vec![Some(g.add(grad, &[inputs[0], y, dy], span))]
        }
        // Routing depends on x only piecewise-constantly, so x gets no gradient. Mean pooling's
        // gradient is linear in dy, with mean pooling as its adjoint; max pooling's second
        // derivative (a gather at each window's maximum) is not implemented, and `grad` through
        // it treats dy as a constant.
        Op::PoolGrad { kind, window } => match kind {
            PoolKind::Mean => {
                let pool = Op::Pool {
                    kind: PoolKind::Mean,
                    window: window.clone(),
                };
                vec![None, None, Some(g.add(pool, &[dy], span))]
            }
            PoolKind::Max => vec![None, None, None],
        },
        Op::Recurrence { cell } => recurrence_vjp(g, cell, inputs, y, dy, span),
        // Second derivatives through a scan are not implemented: `grad` through one treats its
        // gradient as a constant.
        Op::RecurrenceGrad { .. } => vec![None; inputs.len()],
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
            let (ra, rb) = (g.shape(a).rank(), g.shape(b).rank());
            if rb == ra {
                return [da, db]
                    .into_iter()
                    .zip(wanted)
                    .map(|((l, r, ta, tb), &want)| want.then(|| mm(g, l, r, ta, tb)))
                    .collect();
            }
            // A rank-2 right operand shared by a batch of products.
            let lead = ra - 2;
            let dx_a = wanted[0].then(|| {
                if *transpose_a {
                    // dA = (dC op(B)ᵀ)ᵀ per product: the batch stays on the left.
                    let product = mm(g, dy, b, false, !transpose_b);
                    let mut perm: Vec<usize> = (0..lead).collect();
                    perm.extend([lead + 1, lead]);
                    g.transpose(product, &perm, span)
                } else {
                    let (l, r, ta, tb) = da;
                    mm(g, l, r, ta, tb)
                }
            });
            // dB sums every product's contribution: one product over all rows (`contract`)
            // when A is not transposed, else a batch of products summed after.
            let dx_b = wanted[1].then(|| match (transpose_a, transpose_b) {
                (false, false) => g.add(Op::Contract, &[a, dy], span),
                (false, true) => g.add(Op::Contract, &[dy, a], span),
                (true, _) => {
                    let (l, r, ta, tb) = db;
                    let products = mm(g, l, r, ta, tb);
                    let axes: Vec<usize> = (0..lead).collect();
                    g.reduce(ReduceKind::Sum, products, &axes, false, span)
                }
            });
            vec![dx_a, dx_b]
        }
        // C = aᵀ·b over rows: dA = b·dCᵀ and dB = a·dC, row by row.
        Op::Contract => {
            let (a, b) = (inputs[0], inputs[1]);
            let da = wanted[0].then(|| {
                g.add(
                    Op::MatMul {
                        transpose_a: false,
                        transpose_b: true,
                    },
                    &[b, dy],
                    span,
                )
            });
            let db = wanted[1].then(|| {
                g.add(
                    Op::MatMul {
                        transpose_a: false,
                        transpose_b: false,
                    },
                    &[a, dy],
                    span,
                )
            });
            vec![da, db]
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
                ReduceKind::Mean => {
                    let dims: Vec<Dim> = axes.iter().map(|&a| x_shape.0[a]).collect();
                    let fixed: usize = dims
                        .iter()
                        .map(|d| match d {
                            Dim::Fixed(n) => *n,
                            Dim::Batch => 1,
                        })
                        .product();
                    let inverse = g.constant(1.0 / fixed as f32, span);
                    let mut spread = g.binary(Mul, dy_spread, inverse, span);
                    if dims.contains(&Dim::Batch) {
                        let batch = g.batch_size(span);
                        spread = g.binary(Div, spread, batch, span);
                    }
                    spread
                }
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
        // dx = y ⊙ (dy − Σ dy ⊙ y); the causal form's masked entries are 0 in y, and so in dx.
        Op::Softmax | Op::CausalSoftmax => {
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

/// `exp(k·x²)`, the Gaussian shape in the gradients of `erf` and `gelu`.
fn gaussian(g: &mut Graph, x: ValueId, k: f32, span: Option<Span>) -> ValueId {
    let square = g.binary(BinaryOp::Mul, x, x, span);
    let k = g.constant(k, span);
    let exponent = g.binary(BinaryOp::Mul, k, square, span);
    g.unary(UnaryOp::Exp, exponent, span)
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
        // The gradient goes to the larger (for min, the smaller) operand; ties go to `a`.
        (BinaryOp::Max | BinaryOp::Min, side) => {
            let beats = if op == BinaryOp::Max {
                Greater
            } else {
                BinaryOp::Less
            };
            let b_wins = g.binary(beats, b, a, span);
            let mask = if side == 0 {
                let one = g.constant(1.0, span);
                g.binary(Sub, one, b_wins, span)
            } else {
                b_wins
            };
            g.binary(Mul, dy, mask, span)
        }
        (Greater | BinaryOp::Less, _)
        | (BinaryOp::GreaterEqual | BinaryOp::LessEqual, _)
        | (BinaryOp::Equal | BinaryOp::NotEqual, _) => return None,
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
    // otherwise the reduced axes come back as size-1 axes first.
    let leading = axes.iter().enumerate().all(|(i, &a)| i == a);
    let value = if keep_dims || leading {
        value
    } else {
        let kept = Shape(
            x_shape
                .0
                .iter()
                .enumerate()
                .map(|(i, &d)| if axes.contains(&i) { Dim::Fixed(1) } else { d })
                .collect(),
        );
        g.reshape(value, &kept, span)
    };
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

/// The gradients of a scan's inputs: the reverse scan gives each step's pre-activation gradient
/// (`d xw`); the recurrent kernel's is one product over every step of the previous hidden states
/// with the recurrent product's gradient (`contract`), and the GRU's recurrent bias its sum.
fn recurrence_vjp(
    g: &mut Graph,
    cell: &Cell,
    inputs: &[ValueId],
    tape: ValueId,
    dy: ValueId,
    span: Option<Span>,
) -> Vec<Option<ValueId>> {
    let kernel = inputs[1];
    let mut grad_inputs = vec![tape, kernel, dy];
    // A masked scan's reverse reads the same mask, the forward op's last input.
    grad_inputs.extend(cell.masked.then(|| inputs[inputs.len() - 1]));
    let grad = g.add(
        Op::RecurrenceGrad { cell: cell.clone() },
        &grad_inputs,
        span,
    );
    let (u, gw) = (cell.units, cell.gate_width());
    let (dxw, drec) = match cell.kind {
        CellKind::Gru => {
            let dxw = g.slice(grad, 2, 0, gw, span);
            let gates = g.slice(grad, 2, 0, 2 * u, span);
            let candidate = g.slice(grad, 2, gw, gw + u, span);
            (dxw, g.concat(&[gates, candidate], 2, span))
        }
        CellKind::SimpleRnn | CellKind::Lstm => (grad, grad),
    };
    // Each step's previous hidden state: the tape's states shifted one step against the scan's
    // direction, zero where the scan starts.
    let dims = g.shape(tape).0.clone();
    let Dim::Fixed(steps) = dims[1] else {
        unreachable!("the shape rule needs a fixed step count")
    };
    let hidden = g.slice(tape, 2, 0, u, span);
    let zero = g.constant(0.0, span);
    let first = g.broadcast(
        zero,
        &Shape(vec![dims[0], Dim::Fixed(1), Dim::Fixed(u)]),
        span,
    );
    let previous = match (steps, cell.reverse) {
        (1, _) => first,
        (_, false) => {
            let earlier = g.slice(hidden, 1, 0, steps - 1, span);
            g.concat(&[first, earlier], 1, span)
        }
        (_, true) => {
            let later = g.slice(hidden, 1, 1, steps, span);
            g.concat(&[later, first], 1, span)
        }
    };
    let dkernel = g.add(Op::Contract, &[previous, drec], span);
    let mut contributions = vec![Some(dxw), Some(dkernel)];
    if cell.kind == CellKind::Gru {
        contributions.push(Some(g.reduce(ReduceKind::Sum, drec, &[0, 1], false, span)));
    }
    if cell.masked {
        contributions.push(None);
    }
    contributions
}

/// When `dy` (the adjoint of `y`) is max pooling's gradient over `y` alone, that op with the
/// pooled value and the pooled gradient.
fn routed_from_max_pool(g: &Graph, y: ValueId, dy: ValueId) -> Option<(Op, ValueId, ValueId)> {
    let node = g.node(dy);
    match (&node.op, node.inputs.as_slice()) {
        (
            Op::PoolGrad {
                kind: PoolKind::Max,
                ..
            },
            &[x, pooled, dy_pooled],
        ) if x == y => Some((node.op.clone(), pooled, dy_pooled)),
        _ => None,
    }
}

/// The spatial sizes of a `[batch, spatial.., channels]` shape (fixed by the windowed ops' shape
/// rule).
fn fixed_spatial(dims: &[Dim]) -> Vec<usize> {
    dims[1..dims.len() - 1]
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n,
            Dim::Batch => unreachable!("the windowed ops' shape rule needs fixed spatial sizes"),
        })
        .collect()
}
