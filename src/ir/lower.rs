//! Lowering: a checked model and its `fit` settings become the forward graph of one training
//! step — the model's layers, then the loss — with every node remembering its source span.

use super::graph::{Graph, ValueId};
use super::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use super::shape::{DType, Dim, Shape, TensorType};
use crate::diag::Span;
use crate::settings::{Loss, LossOptions};

/// Name of the graph input holding integer class labels.
pub const LABELS: &str = "labels";
/// Name of the graph input holding regression targets.
pub const TARGETS: &str = "targets";
/// Name of the graph input holding the features.
pub const FEATURES: &str = "x";
/// Output: the mean loss over the batch.
pub const LOSS: &str = "loss";
/// Output: per-sample scores whose argmax is the predicted class (the logits when the model ends
/// in softmax, since softmax does not change the argmax and need not be computed to train).
pub const SCORES: &str = "scores";

/// What a `fit` trains a model for: its loss, with the loss's options and the span of the `fit`.
#[derive(Clone, Copy, Debug)]
pub struct Objective {
    pub loss: Loss,
    pub options: LossOptions,
    pub span: Span,
}

/// The forward pass and loss: a model's forward graph (built by the checker) with its first
/// input renamed to the runtime's feature input, then the loss.
pub fn lower_training(forward: &Graph, objective: &Objective) -> Graph {
    let mut graph = forward.clone();
    graph.name = format!("{}_train", forward.name);
    graph.outputs.clear();
    if let Some(input) = graph.inputs.first_mut() {
        input.name = FEATURES.to_string();
    }
    let output = forward.outputs[0].1;
    // A softmax (sigmoid) output is read as probabilities; the loss reads the logits before it
    // for stability — unless the fit says the output already is logits.
    let logits = match graph.node(output).op {
        Op::Softmax | Op::Unary(UnaryOp::Sigmoid) if !objective.options.from_logits => {
            graph.node(output).inputs.first().copied()
        }
        _ => None,
    };
    let forward = Forward { output, logits };
    let (loss, scores) = lower_loss(&mut graph, objective, forward);
    graph.outputs.push((LOSS.to_string(), loss));
    graph.outputs.push((SCORES.to_string(), scores));
    graph
}

/// The graph evaluation and prediction run: dropout is the identity outside training (Keras's
/// `training=False`), so each dropout node is replaced by its input.
pub fn without_dropout(graph: &Graph) -> Graph {
    graph.rebuild(|out, node| match node.op {
        Op::Dropout { .. } => node.inputs[0],
        _ => out.push_node(node),
    })
}

/// What the model produces: the final value, and for a softmax output also its logits.
struct Forward {
    output: ValueId,
    logits: Option<ValueId>,
}

/// Returns (mean loss, scores). A softmax or sigmoid output is read as probabilities, and the
/// loss is computed from the logits before it in the numerically stable form (log-softmax,
/// softplus), as Keras does; with `from_logits` the output itself is the logits.
fn lower_loss(graph: &mut Graph, objective: &Objective, forward: Forward) -> (ValueId, ValueId) {
    let span = Some(objective.span);
    // The classes of a classifier, the width of a regression target (Keras: a rank-1 output is
    // one value per sample).
    let output_features = match graph.ty(forward.output).shape.dims().last() {
        Some(&Dim::Fixed(n)) => n,
        _ => 1,
    };
    let batch = graph.batch_size(span);
    let logits = forward.logits.unwrap_or(forward.output);
    match objective.loss {
        Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy => {
            let labels = class_labels(graph, span);
            let log_probs = graph.add(Op::LogSoftmax, &[logits], span);
            let one_hot = graph.add(
                Op::OneHot {
                    classes: output_features,
                },
                &[labels],
                span,
            );
            let picked = graph.binary(BinaryOp::Mul, one_hot, log_probs, span);
            let total = sum_all(graph, picked, span);
            let negated = graph.unary(UnaryOp::Neg, total, span);
            let loss = graph.binary(BinaryOp::Div, negated, batch, span);
            (loss, logits)
        }
        Loss::BinaryCrossentropy => {
            // y ∈ {0, 1} as f32[B, 1]: column 1 of the label's one-hot row.
            let labels = class_labels(graph, span);
            let one_hot = graph.add(Op::OneHot { classes: 2 }, &[labels], span);
            let y = graph.slice(one_hot, 1, 1, 2, span);
            // -[y log σ(l) + (1-y) log(1-σ(l))] = softplus(l) - y·l, stable for any l.
            let soft = graph.unary(UnaryOp::Softplus, logits, span);
            let yl = graph.binary(BinaryOp::Mul, y, logits, span);
            let per_sample = graph.binary(BinaryOp::Sub, soft, yl, span);
            let total = sum_all(graph, per_sample, span);
            let loss = graph.binary(BinaryOp::Div, total, batch, span);
            // Scores [0, l]: the argmax is class 1 exactly when σ(l) > 0.5, so class metrics
            // (accuracy and the rest) read a binary output like a two-class one.
            let zero = graph.constant(0.0, span);
            let zeros = graph.binary(BinaryOp::Mul, logits, zero, span);
            let scores = graph.concat(&[zeros, logits], 1, span);
            (loss, scores)
        }
        Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Huber => {
            let shape = Shape(vec![Dim::Batch, Dim::Fixed(output_features)]);
            let targets = graph.input(TARGETS, TensorType::f32(shape), span);
            let error = graph.binary(BinaryOp::Sub, forward.output, targets, span);
            let per_element = match objective.loss {
                Loss::MeanSquaredError => graph.binary(BinaryOp::Mul, error, error, span),
                Loss::MeanAbsoluteError => graph.unary(UnaryOp::Abs, error, span),
                _ => {
                    // Keras's Huber: ½·min(|e|, δ)² + δ·(|e| − min(|e|, δ)).
                    let delta = graph.constant(objective.options.delta, span);
                    let half = graph.constant(0.5, span);
                    let abs = graph.unary(UnaryOp::Abs, error, span);
                    let quadratic = graph.binary(BinaryOp::Min, abs, delta, span);
                    let linear = graph.binary(BinaryOp::Sub, abs, quadratic, span);
                    let squared = graph.binary(BinaryOp::Mul, quadratic, quadratic, span);
                    let inner = graph.binary(BinaryOp::Mul, half, squared, span);
                    let outer = graph.binary(BinaryOp::Mul, delta, linear, span);
                    graph.binary(BinaryOp::Add, inner, outer, span)
                }
            };
            let total = sum_all(graph, per_element, span);
            let per_sample = graph.binary(BinaryOp::Div, total, batch, span);
            let width = graph.constant(output_features as f32, span);
            let loss = graph.binary(BinaryOp::Div, per_sample, width, span);
            (loss, forward.output)
        }
    }
}

/// The integer class-label input `i32[B]`.
fn class_labels(graph: &mut Graph, span: Option<Span>) -> ValueId {
    graph.input(
        LABELS,
        TensorType {
            dtype: DType::I32,
            shape: Shape(vec![Dim::Batch]),
        },
        span,
    )
}

fn sum_all(graph: &mut Graph, x: ValueId, span: Option<Span>) -> ValueId {
    let axes = (0..graph.shape(x).rank()).collect();
    graph.add(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes,
            keep_dims: false,
        },
        &[x],
        span,
    )
}
