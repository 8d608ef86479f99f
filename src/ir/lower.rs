//! Lowering: a checked model and its `fit` settings become the forward graph of one training
//! step — the model's layers, then the loss — with every node remembering its source span.

use super::graph::{Graph, ValueId};
use super::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use super::shape::{DType, Dim, Shape, TensorType};
use crate::check::program::{Fit, Loss, Model};
use crate::diag::Span;

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

/// The forward pass and loss of `model` under `fit`: the model's forward graph (built by the
/// checker) with its first input renamed to the runtime's feature input, then the loss.
pub fn lower_training(model: &Model, fit: &Fit) -> Graph {
    let mut graph = model.forward.clone();
    graph.name = format!("{}_train", model.name);
    graph.outputs.clear();
    if let Some(input) = graph.inputs.first_mut() {
        input.name = FEATURES.to_string();
    }
    let output = model.forward.outputs[0].1;
    // A softmax output is read as probabilities; the loss reads its logits for stability.
    let logits = match graph.node(output).op {
        Op::Softmax => graph.node(output).inputs.first().copied(),
        _ => None,
    };
    let forward = Forward { output, logits };
    let (loss, scores) = lower_loss(&mut graph, model, fit, forward);
    graph.outputs.push((LOSS.to_string(), loss));
    graph.outputs.push((SCORES.to_string(), scores));
    graph
}

/// What the model produces: the final value, and for a softmax output also its logits.
struct Forward {
    output: ValueId,
    logits: Option<ValueId>,
}

/// Returns (mean loss, scores).
fn lower_loss(graph: &mut Graph, model: &Model, fit: &Fit, forward: Forward) -> (ValueId, ValueId) {
    let span = Some(fit.span);
    let batch = graph.batch_size(span);
    match fit.loss {
        Loss::SparseCategoricalCrossentropy => {
            let labels = graph.input(
                LABELS,
                TensorType {
                    dtype: DType::I32,
                    shape: Shape(vec![Dim::Batch]),
                },
                span,
            );
            // A softmax output is read as probabilities, so the loss is -log softmax(logits)[label],
            // computed as log_softmax for stability; any other output is read as logits.
            let logits = forward.logits.unwrap_or(forward.output);
            let log_probs = graph.add(Op::LogSoftmax, &[logits], span);
            let one_hot = graph.add(
                Op::OneHot {
                    classes: model.output_features,
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
        Loss::MeanSquaredError => {
            let shape = Shape(vec![Dim::Batch, Dim::Fixed(model.output_features)]);
            let targets = graph.input(TARGETS, TensorType::f32(shape), span);
            let error = graph.binary(BinaryOp::Sub, forward.output, targets, span);
            let squared = graph.binary(BinaryOp::Mul, error, error, span);
            let total = sum_all(graph, squared, span);
            let per_sample = graph.binary(BinaryOp::Div, total, batch, span);
            let width = graph.constant(model.output_features as f32, span);
            let loss = graph.binary(BinaryOp::Div, per_sample, width, span);
            (loss, forward.output)
        }
    }
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
