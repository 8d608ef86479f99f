//! The checked program: what the checker hands to the stages after it (lowering, the runtime,
//! the driver). Every name is resolved, every default is filled in, every shape is known (the
//! batch dimension stays symbolic), and every item keeps the span of the source that produced it.
//! Each model is a typed forward IR graph; the settings are `crate::settings` values.

pub mod memory;
pub mod summary;

use crate::diag::Span;
use crate::ir::graph::Graph;
use crate::ir::op::{Op, UnaryOp};
use crate::ir::shape::{Dim, TensorType};
use crate::settings::*;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckedProgram {
    pub data: Vec<DataSet>,
    pub models: Vec<Model>,
    pub fits: Vec<Fit>,
    /// What runs, in program order: every `fit` (as `Action::Fit(index into fits)`) and every
    /// `evaluate`, `predict`, `save` and `load`.
    pub actions: Vec<Action>,
}

impl CheckedProgram {
    /// Model `index`'s summary table, with the optimizer state of its first `fit`.
    pub fn summary(&self, index: usize) -> String {
        let optimizer = self
            .fits
            .iter()
            .find(|f| f.model == index)
            .map(|f| &f.optimizer);
        summary::summary(&self.models[index], optimizer)
    }
}

/// A bundle's file extension (`runtime::bundle`), by which `save` chooses its format.
pub const BUNDLE_EXTENSION: &str = "kiln";

/// Whether `path` names a bundle rather than a checkpoint.
pub fn is_bundle_path(path: &str) -> bool {
    std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(BUNDLE_EXTENSION))
}

/// One statement that does something when the program runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Index into `CheckedProgram::fits`.
    Fit(usize),
    /// `evaluate MODEL on DATA`: loss and metrics of the current weights, with the loss and
    /// metrics of `fit` (the model's nearest `fit` before it, else its first one after).
    Evaluate {
        model: usize,
        data: usize,
        fit: usize,
        span: Span,
    },
    /// `predict MODEL on DATA to PATH`: per-sample outputs written as CSV or NPY.
    Predict {
        model: usize,
        data: usize,
        /// The fit whose loss decides how the data's labels are read; `None` when no `fit`
        /// trains the model (then labels are read as classes for a softmax output, as targets
        /// otherwise).
        fit: Option<usize>,
        path: String,
        format: PredictFormat,
        span: Span,
    },
    /// `save MODEL to PATH`: weights and optimizer state as safetensors, or, for a `.kiln`
    /// path, a bundle (`runtime::bundle`).
    Save {
        model: usize,
        path: String,
        /// For a bundle: the spans of the items whose source defines the model, in program
        /// order (every top-level `let`, `layer`, `fn` and `data`, the model, and the `fit` that
        /// gives its loss and metrics, if any).
        bundle: Option<Vec<Span>>,
        span: Span,
    },
    /// `load MODEL from PATH`: weights (and optimizer state, when the file has it).
    Load {
        model: usize,
        path: String,
        span: Span,
    },
    /// `generate MODEL from PROMPT length N temperature T seed S`: `length` tokens sampled one
    /// at a time from the model's scores of the next token, each at `temperature`, with the
    /// model's text vocabulary.
    Generate {
        model: usize,
        /// The fit that stands for the model's forward pass (`None`: no `fit` trains it).
        fit: Option<usize>,
        prompt: String,
        length: usize,
        temperature: f64,
        seed: u64,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataSet {
    pub name: String,
    pub span: Span,
    pub source: DataSource,
}

/// A checked model: its forward pass as an IR graph (inputs, parameters with their initializers,
/// and one output per declared result), built by the checker while it proved every shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: String,
    pub span: Span,
    /// The model's own name for its batch dimension (`B`), for messages and summaries.
    pub batch_symbol: String,
    /// Inputs in declaration order: name and type (the batch dimension is `Dim::Batch`).
    pub inputs: Vec<(String, TensorType)>,
    /// Declared results, in order.
    pub outputs: Vec<TensorType>,
    /// Elements per sample of the first input: the feature count data must supply.
    pub input_features: usize,
    /// Last dimension of the first output (the classes of a classifier).
    pub output_features: usize,
    /// Inputs are the model's inputs (plus `step` when dropout needs it); outputs are named
    /// `output` (or `output_1`, `output_2`, … for several).
    pub forward: Graph,
    /// One row per layer application (Keras's `model.summary()`).
    pub summary: Vec<SummaryRow>,
    /// The type of every tensor-valued expression and binding in the model's source, in the
    /// order the checker proved them: a side table for editors (hover), read by no later stage.
    /// A user layer's or function's body appears once per use, with the types it met there.
    pub types: Vec<(Span, TensorType)>,
}

/// A layer in the summary table.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Keras-style unique name, e.g. `dense_1`; parameters are named `dense_1.kernel`.
    pub name: String,
    /// What it is: `dense`, `flatten`, a user layer's name.
    pub kind: String,
    pub outputs: Vec<TensorType>,
    /// Parameters created by this layer (a shared layer counts once).
    pub params: usize,
    pub span: Span,
}

impl Model {
    /// How losses and metrics read the first output: the op that produced it.
    pub fn output_activation(&self) -> Activation {
        let Some(&(_, output)) = self.forward.outputs.first() else {
            return Activation::Linear;
        };
        match self.forward.node(output).op {
            Op::Softmax => Activation::Softmax,
            Op::Unary(UnaryOp::Sigmoid) => Activation::Sigmoid,
            Op::Unary(UnaryOp::Relu) => Activation::Relu,
            Op::Unary(UnaryOp::Tanh) => Activation::Tanh,
            _ => Activation::Linear,
        }
    }

    /// The first input's dimensions after the batch: the shape of one sample it takes.
    pub fn input_sample_shape(&self) -> Vec<usize> {
        let Some((_, ty)) = self.inputs.first() else {
            return Vec::new();
        };
        (ty.shape.dims().iter())
            .filter_map(|d| match d {
                Dim::Fixed(n) => Some(*n),
                Dim::Batch => None,
            })
            .collect()
    }

    /// The rows of the smallest table the first input indexes directly (an `embedding`'s
    /// `input_dim`), when it is an integer input some gather reads: ids outside `0..rows` would
    /// read a row of zeros, so the runtime refuses them when the data loads.
    pub fn token_rows(&self) -> Option<usize> {
        let graph = &self.forward;
        let input = graph
            .nodes
            .iter()
            .position(|n| n.op == Op::Input { index: 0 })?;
        (graph.nodes.iter())
            .filter(|n| n.op == Op::Gather && n.inputs.get(1).map(|v| v.index()) == Some(input))
            .filter_map(|n| match graph.ty(n.inputs[0]).shape.dims().first() {
                Some(Dim::Fixed(rows)) => Some(*rows),
                _ => None,
            })
            .min()
    }

    /// Number of parameter values, trainable or not (Keras's "Total params").
    pub fn param_count(&self) -> usize {
        self.count_params(|_| true)
    }

    /// Number of values the gradient trains (the rest, such as batch normalization's moving
    /// statistics, are updated by their layer).
    pub fn trainable_param_count(&self) -> usize {
        self.count_params(|p| p.trainable)
    }

    fn count_params(&self, counted: impl Fn(&crate::ir::graph::ParamInfo) -> bool) -> usize {
        self.forward
            .params
            .iter()
            .filter(|p| counted(p))
            .map(|p| crate::ir::shape::per_sample(&p.shape))
            .fold(0usize, usize::saturating_add)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub span: Span,
    /// Index into `CheckedProgram::models`.
    pub model: usize,
    /// Index into `CheckedProgram::data`.
    pub data: usize,
    pub loss: Loss,
    pub loss_options: LossOptions,
    pub optimizer: Optimizer,
    pub metrics: Vec<Metric>,
    /// Default 1 (Keras).
    pub epochs: usize,
    /// Default 32 (Keras).
    pub batch: usize,
    /// Seed for weight initialisation and shuffling. Default 0.
    pub seed: u64,
    /// Reshuffle the training samples every epoch. Default true (Keras).
    pub shuffle: bool,
    /// Data to evaluate loss and metrics on after every epoch. Default: none.
    pub validation: Option<Validation>,
    /// Resumption, callbacks and the learning-rate schedule.
    pub training: Training,
}

impl Fit {
    /// What lowering needs of this fit: the loss it trains for.
    pub fn objective(&self) -> crate::ir::lower::Objective {
        crate::ir::lower::Objective {
            loss: self.loss,
            options: self.loss_options,
            span: self.span,
            class_weight: self.training.class_weight.clone(),
            sample_weight: self.training.sample_weight,
        }
    }
}
