//! Lowering: a checked model and its `fit` settings become the forward graph of one training
//! step — the model's layers, then the loss — with every node remembering its source span.

use super::builder::{OnGraph, id, var};
use super::graph::{Graph, ValueId};
use super::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use super::shape::{DType, Dim, Shape, TensorType};
use crate::diag::Span;
use crate::settings::loss::LossBuilder;
use crate::settings::optimizer::Var;
use crate::settings::{Loss, LossOptions};

/// Name of the graph input holding integer class labels.
pub const LABELS: &str = "labels";
/// Name of the graph input holding regression targets.
pub const TARGETS: &str = "targets";
/// Name of the graph input holding each sample's weight `f32[B, 1]` (Keras's `sample_weight`),
/// present when the fit's data has a weight column.
pub const SAMPLE_WEIGHTS: &str = "sample_weights";
/// Name of the graph input holding the features.
pub const FEATURES: &str = "x";
/// Output: the mean loss over the batch.
pub const LOSS: &str = "loss";
/// Output: per-sample scores whose argmax is the predicted class (the logits when the model ends
/// in softmax, since softmax does not change the argmax and need not be computed to train).
pub const SCORES: &str = "scores";

/// What a `fit` trains a model for: its loss, with the loss's options and the span of the `fit`.
#[derive(Clone, Debug)]
pub struct Objective {
    pub loss: Loss,
    pub options: LossOptions,
    pub span: Span,
    /// Keras's `class_weight`: each sample's loss times its class's entry (one per class), in
    /// training only (evaluation lowers without it, as Keras reports validation unweighted).
    pub class_weight: Option<Vec<f32>>,
    /// Each sample's loss times its weight from the data (the `SAMPLE_WEIGHTS` input).
    pub sample_weight: bool,
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
    let loss = add_penalties(&mut graph, loss, Some(objective.span));
    graph.outputs.push((LOSS.to_string(), loss));
    graph.outputs.push((SCORES.to_string(), scores));
    graph
}

/// The graph evaluation and prediction run (Keras's `training=False`): dropout is the identity,
/// each `in_training` node takes its inference value, and the updates a training step makes to
/// non-trainable weights (batch normalization's moving statistics) are dropped.
pub fn for_inference(graph: &Graph) -> Graph {
    let mut inference = graph.rebuild(|out, node| match node.op {
        Op::Dropout { .. } => node.inputs[0],
        Op::InTraining => {
            let (train, infer) = (node.inputs[0], node.inputs[1]);
            if out.ty(infer) == out.ty(train) {
                infer
            } else {
                let shape = out.shape(train).clone();
                out.broadcast(infer, &shape, node.span)
            }
        }
        _ => out.push_node(node),
    });
    inference.updates.clear();
    inference
}

/// The loss plus every regularized parameter's penalty, `l1 · Σ|w| + l2 · Σw²`, as Keras adds
/// `model.losses` to the loss it trains on and reports (in evaluation too).
fn add_penalties(graph: &mut Graph, loss: ValueId, span: Option<Span>) -> ValueId {
    let mut total = loss;
    for index in 0..graph.params.len() {
        let Some(r) = graph.params[index].regularizer else {
            continue;
        };
        let Some(w) = graph.param_value(index) else {
            continue;
        };
        for (factor, l1) in [(r.l1, true), (r.l2, false)] {
            if factor == 0.0 {
                continue;
            }
            let term = if l1 {
                graph.unary(UnaryOp::Abs, w, span)
            } else {
                graph.binary(BinaryOp::Mul, w, w, span)
            };
            let sum = sum_all(graph, term, span);
            let factor = graph.constant(factor, span);
            let penalty = graph.binary(BinaryOp::Mul, factor, sum, span);
            total = graph.binary(BinaryOp::Add, total, penalty, span);
        }
    }
    total
}

/// What the model produces: the final value, and for a softmax output also its logits.
struct Forward {
    output: ValueId,
    logits: Option<ValueId>,
}

/// Returns (mean loss, scores). A softmax or sigmoid output is read as probabilities, and the
/// loss is computed from the logits before it in the numerically stable form (log-softmax,
/// softplus), as Keras does; with `from_logits` the output itself is the logits. The loss's
/// arithmetic is its definition's (`settings::loss`), run against the graph.
fn lower_loss(graph: &mut Graph, objective: &Objective, forward: Forward) -> (ValueId, ValueId) {
    let span = Some(objective.span);
    // The classes of a classifier, the width of a regression target (Keras: a rank-1 output is
    // one value per sample).
    let width = match graph.ty(forward.output).shape.dims().last() {
        Some(&Dim::Fixed(n)) => n,
        _ => 1,
    };
    let batch = graph.batch_size(span);
    let mut builder = LossGraph {
        graph,
        span,
        forward,
        width,
        batch,
        class_weight: objective.class_weight.as_deref(),
        sample_weight: objective.sample_weight,
        weights: None,
    };
    let lower = objective.loss.def().facts.lower;
    let lowered = lower(objective.options, &mut builder);
    (id(lowered.loss), id(lowered.scores))
}

/// The graph as a `LossBuilder`: each value is a node, added with the `fit`'s span.
struct LossGraph<'g> {
    graph: &'g mut Graph,
    span: Option<Span>,
    forward: Forward,
    width: usize,
    batch: ValueId,
    class_weight: Option<&'g [f32]>,
    sample_weight: bool,
    /// Each sample's weight `[B, 1]`, built on first use.
    weights: Option<ValueId>,
}

impl LossGraph<'_> {
    /// `[B, 1]`: each sample's weight from the data (the `SAMPLE_WEIGHTS` input) times its
    /// class's weight, as Keras multiplies `sample_weight` by `class_weight`.
    fn sample_weights(&mut self) -> Option<ValueId> {
        if self.weights.is_some() {
            return self.weights;
        }
        let by_class = self.class_weight.map(|c| self.class_weights(c));
        let from_data = self.sample_weight.then(|| {
            let shape = Shape(vec![Dim::Batch, Dim::Fixed(1)]);
            (self.graph).input(SAMPLE_WEIGHTS, TensorType::f32(shape), self.span)
        });
        self.weights = match (by_class, from_data) {
            (Some(a), Some(b)) => Some(self.graph.binary(BinaryOp::Mul, a, b, self.span)),
            (a, b) => a.or(b),
        };
        self.weights
    }

    /// `[B, 1]`: `1 + Σ_c (class_weight[c] − 1) · one_hot(label)[c]`, the label's class weight
    /// (a class whose weight is 1 adds nothing), built from the one-hot labels since the graph
    /// has scalar constants only.
    fn class_weights(&mut self, class_weight: &[f32]) -> ValueId {
        let span = self.span;
        let labels = class_labels(self.graph, span);
        let one_hot = self.graph.add(
            Op::OneHot {
                classes: class_weight.len(),
            },
            &[labels],
            span,
        );
        let mut w = self.graph.constant(1.0, span);
        for (c, &weight) in class_weight.iter().enumerate() {
            if weight == 1.0 {
                continue;
            }
            let column = self.graph.slice(one_hot, 1, c, c + 1, span);
            let extra = self.graph.constant(weight - 1.0, span);
            let term = self.graph.binary(BinaryOp::Mul, column, extra, span);
            w = self.graph.binary(BinaryOp::Add, w, term, span);
        }
        w
    }
}

impl OnGraph for LossGraph<'_> {
    fn graph(&mut self) -> &mut Graph {
        self.graph
    }

    fn span(&self) -> Option<Span> {
        self.span
    }
}

impl LossBuilder for LossGraph<'_> {
    fn logits(&mut self) -> Var {
        var(self.forward.logits.unwrap_or(self.forward.output))
    }

    fn output(&mut self) -> Var {
        var(self.forward.output)
    }

    fn width(&self) -> usize {
        self.width
    }

    fn batch(&mut self) -> Var {
        var(self.batch)
    }

    fn class_labels(&mut self) -> Var {
        var(class_labels(self.graph, self.span))
    }

    fn targets(&mut self) -> Var {
        let shape = Shape(vec![Dim::Batch, Dim::Fixed(self.width)]);
        var(self.graph.input(TARGETS, TensorType::f32(shape), self.span))
    }

    fn one_hot(&mut self, labels: Var, classes: usize) -> Var {
        var(self
            .graph
            .add(Op::OneHot { classes }, &[id(labels)], self.span))
    }

    fn log_softmax(&mut self, x: Var) -> Var {
        var(self.graph.add(Op::LogSoftmax, &[id(x)], self.span))
    }

    fn softplus(&mut self, x: Var) -> Var {
        var(self.graph.unary(UnaryOp::Softplus, id(x), self.span))
    }

    fn sum_all(&mut self, x: Var) -> Var {
        var(sum_all(self.graph, id(x), self.span))
    }

    fn slice(&mut self, x: Var, axis: usize, start: usize, end: usize) -> Var {
        var(self.graph.slice(id(x), axis, start, end, self.span))
    }

    fn concat(&mut self, parts: &[Var], axis: usize) -> Var {
        let parts: Vec<ValueId> = parts.iter().map(|&p| id(p)).collect();
        var(self.graph.concat(&parts, axis, self.span))
    }

    fn weigh(&mut self, x: Var) -> Var {
        match self.sample_weights() {
            None => x,
            Some(w) => var(self.graph.binary(BinaryOp::Mul, id(x), w, self.span)),
        }
    }
}

/// The integer class-label input `i32[B]` (one input, however many readers ask for it).
fn class_labels(graph: &mut Graph, span: Option<Span>) -> ValueId {
    if let Some(labels) = graph.input_value(LABELS) {
        return labels;
    }
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
