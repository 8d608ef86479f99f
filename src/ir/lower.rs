//! Lowering: a checked model and its `fit` settings become the forward graph of one training
//! step — the model's layers, then the loss — with every node remembering its source span.

use super::graph::{Graph, Init, ParamInfo, ValueId};
use super::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use super::shape::{DType, Dim, Shape, TensorType};
use crate::check::program::{Activation, Fit, LayerKind, Loss, Model};
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

/// The forward pass and loss of `model` under `fit`.
pub fn lower_training(model: &Model, fit: &Fit) -> Graph {
    let mut graph = Graph::new(format!("{}_train", model.name));
    let batch_features = Shape(vec![Dim::Batch, Dim::Fixed(model.input_features)]);
    let x = graph.input(FEATURES, TensorType::f32(batch_features), Some(model.span));
    let forward = lower_layers(&mut graph, model, x);
    let (loss, scores) = lower_loss(&mut graph, model, fit, forward);
    graph.outputs.push((LOSS.to_string(), loss));
    graph.outputs.push((SCORES.to_string(), scores));
    graph
}

/// What the layers produce: the final value, and for a softmax output also its logits (the loss
/// reads them directly for numerical stability).
struct Forward {
    output: ValueId,
    logits: Option<ValueId>,
}

fn lower_layers(graph: &mut Graph, model: &Model, mut h: ValueId) -> Forward {
    let mut logits = None;
    for layer in &model.layers {
        let span = Some(layer.span);
        match layer.kind {
            LayerKind::Dense {
                in_features,
                units,
                activation,
            } => {
                let kernel = graph.param(
                    ParamInfo {
                        name: format!("{}.kernel", layer.name),
                        shape: Shape::fixed(&[in_features, units]),
                        init: Init::GlorotUniform {
                            fan_in: in_features,
                            fan_out: units,
                        },
                    },
                    span,
                );
                let bias = graph.param(
                    ParamInfo {
                        name: format!("{}.bias", layer.name),
                        shape: Shape::fixed(&[units]),
                        init: Init::Zeros,
                    },
                    span,
                );
                let product = graph.add(
                    Op::MatMul {
                        transpose_a: false,
                        transpose_b: false,
                    },
                    &[h, kernel],
                    span,
                );
                let z = graph.binary(BinaryOp::Add, product, bias, span);
                logits = (activation == Activation::Softmax).then_some(z);
                h = activate(graph, activation, z, span);
            }
        }
    }
    Forward { output: h, logits }
}

fn activate(graph: &mut Graph, activation: Activation, z: ValueId, span: Option<Span>) -> ValueId {
    match activation {
        Activation::Linear => z,
        Activation::Relu => graph.unary(UnaryOp::Relu, z, span),
        Activation::Sigmoid => graph.unary(UnaryOp::Sigmoid, z, span),
        Activation::Tanh => graph.unary(UnaryOp::Tanh, z, span),
        Activation::Softmax => graph.add(Op::Softmax, &[z], span),
    }
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
