//! The checked program: what the shape checker hands to lowering. Every name is resolved, every
//! default is filled in, every shape is known (the batch dimension stays symbolic), and every item
//! keeps the span of the source that produced it.

use crate::diag::Span;
use crate::ir::graph::Graph;
use crate::ir::op::{Op, UnaryOp};
use crate::ir::shape::TensorType;

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
        super::summary::summary(&self.models[index], optimizer)
    }
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
    /// `save MODEL to PATH`: weights and optimizer state as safetensors.
    Save {
        model: usize,
        path: String,
        span: Span,
    },
    /// `load MODEL from PATH`: weights (and optimizer state, when the file has it).
    Load {
        model: usize,
        path: String,
        span: Span,
    },
}

/// The file format `predict` writes, from the path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictFormat {
    Csv,
    Npy,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataSet {
    pub name: String,
    pub span: Span,
    pub source: DataSource,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// Features ~ N(0, 1); labels = argmax(x · W) for a random W ~ N(0, 1) of shape
    /// [features, classes], all drawn from `seed` (the peer benchmark scripts' definition).
    Synthetic {
        samples: usize,
        features: usize,
        classes: usize,
        seed: u64,
    },
    /// A CSV file; every column but the label column is a feature.
    Csv {
        /// As written in the program: relative paths are resolved against the program's folder
        /// by the runtime, which is the only place that touches files.
        path: String,
        label: LabelColumn,
        /// Whether the first row is a header. Default: true.
        header: bool,
        /// Every feature is divided by this (e.g. 16 for 0–16 pixels). Default: 1.
        scale: f32,
        /// The character between cells. Default: `,`.
        delimiter: char,
    },
    /// A pair of IDX files (MNIST's format, gzip-compressed or not): unsigned-byte images,
    /// flattened to `rows · cols` features, and unsigned-byte class labels.
    Idx {
        /// As written in the program, like `Csv::path`.
        images: String,
        labels: String,
        /// Every feature is divided by this (255 maps pixels to [0, 1]). Default: 1.
        scale: f32,
    },
    /// NumPy `.npy` files: features `[samples, ...]` (flattened per sample) and labels
    /// `[samples]` (classes) or `[samples]`/`[samples, M]` (targets).
    Npy {
        features: String,
        labels: String,
        scale: f32,
    },
    /// A NumPy `.npz` archive with the features and labels arrays under the given names.
    Npz {
        path: String,
        features: String,
        labels: String,
        scale: f32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last column (the default).
    Last,
    /// Zero-based column index.
    Index(usize),
    /// A header name; requires `header: true`.
    Name(String),
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
    /// A sequential stack of dense layers, checked from source like any program: `widths`
    /// holds the input width and then each layer's units. For tests and benchmarks.
    pub fn dense_stack(name: &str, widths: &[usize], activations: &[Activation]) -> Model {
        assert_eq!(
            widths.len(),
            activations.len() + 1,
            "one activation per layer"
        );
        let layers: Vec<String> = activations
            .iter()
            .zip(&widths[1..])
            .map(|(a, units)| format!("    dense({units}, {})\n", a.name()))
            .collect();
        let source = format!(
            "model {name}(x: f32[B, {}]) -> f32[B, {}] {{\n{}}}\n",
            widths[0],
            widths[widths.len() - 1],
            layers.concat()
        );
        let (program, parse_errors) = crate::syntax::parse(&source);
        assert!(parse_errors.is_empty(), "{parse_errors:?}");
        let (checked, diags) = super::check(&program);
        let checked = checked.unwrap_or_else(|| panic!("dense_stack: {diags:?}"));
        checked.models.into_iter().next().expect("one model")
    }

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

    /// Number of trainable values.
    pub fn param_count(&self) -> usize {
        self.forward
            .params
            .iter()
            .map(|p| super::types::per_sample(&p.shape))
            .fold(0usize, usize::saturating_add)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
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

/// The `fit` settings beyond Keras's basic `fit()` arguments. `Default` is what a `fit` gets
/// when it sets none of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Training {
    /// Keras's `initial_epoch`: the number of epochs already trained; training runs epochs
    /// `initial_epoch + 1 ..= epochs`. Default 0.
    pub initial_epoch: usize,
    /// In the order written; they run in that order after every epoch.
    pub callbacks: Vec<Callback>,
    /// The optimizer's learning rate as a function of the step; `None`: the constant `lr`.
    pub schedule: Option<Schedule>,
    /// Standardize every feature with the mean and standard deviation of the training data
    /// (Keras's `Normalization` layer adapted to it), applied to validation, evaluation and
    /// prediction data too. Default false.
    pub standardize: bool,
}

/// The quantity a callback watches: `loss`, a metric, or their `val_` forms.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    /// As written, e.g. `val_loss`, `accuracy`.
    pub name: String,
    /// Whether larger is better (Keras's `mode: "auto"`: accuracy, precision and recall grow).
    pub maximize: bool,
}

impl Monitor {
    /// A monitor with Keras's `mode: "auto"`: accuracy, precision and recall are maximised,
    /// everything else (losses, errors) minimised.
    pub fn named(name: &str) -> Monitor {
        let maximize = ["accuracy", "precision", "recall"]
            .iter()
            .any(|m| name.ends_with(m));
        Monitor {
            name: name.to_string(),
            maximize,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Callback {
    /// Keras's `EarlyStopping`. Defaults: monitor val_loss, min_delta 0, patience 0,
    /// restore_best_weights false.
    EarlyStopping {
        monitor: Monitor,
        min_delta: f64,
        patience: usize,
        restore_best_weights: bool,
    },
    /// Keras's `ModelCheckpoint` (weights and optimizer state). Defaults: monitor val_loss,
    /// save_best_only false.
    Checkpoint {
        path: String,
        monitor: Monitor,
        save_best_only: bool,
    },
    /// Keras's `ReduceLROnPlateau`. Defaults: monitor val_loss, factor 0.1, patience 10,
    /// min_delta 1e-4, min_lr 0 (cooldown 0).
    ReduceLrOnPlateau {
        monitor: Monitor,
        factor: f64,
        patience: usize,
        min_delta: f64,
        min_lr: f64,
    },
}

/// Keras's learning-rate schedules, evaluated at the optimizer's 0-based step count.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// `initial · rate^(step / decay_steps)` (`staircase`: the exponent rounded down).
    ExponentialDecay {
        initial: f64,
        decay_steps: u64,
        decay_rate: f64,
        staircase: bool,
    },
    /// `values[i]` while `step <= boundaries[i]`, `values[last]` after the last boundary.
    PiecewiseConstant {
        boundaries: Vec<u64>,
        values: Vec<f64>,
    },
    /// `initial · ((1 − alpha) · ½(1 + cos(π · min(step, decay_steps) / decay_steps)) + alpha)`.
    CosineDecay {
        initial: f64,
        decay_steps: u64,
        alpha: f64,
    },
}

impl Schedule {
    /// The learning rate for the update at 0-based `step` (Keras passes `optimizer.iterations`,
    /// the number of updates already made).
    pub fn rate(&self, step: u64) -> f64 {
        match self {
            Schedule::ExponentialDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut exponent = step as f64 / *decay_steps as f64;
                if *staircase {
                    exponent = exponent.floor();
                }
                initial * decay_rate.powf(exponent)
            }
            Schedule::PiecewiseConstant { boundaries, values } => {
                let index = boundaries
                    .iter()
                    .position(|&b| step <= b)
                    .unwrap_or(boundaries.len());
                values[index]
            }
            Schedule::CosineDecay {
                initial,
                decay_steps,
                alpha,
            } => {
                let progress = step.min(*decay_steps) as f64 / *decay_steps as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                initial * ((1.0 - alpha) * cosine + alpha)
            }
        }
    }
}

/// Keras's `validation_data` / `validation_split`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Validation {
    /// Another data set: index into `CheckedProgram::data`.
    Data(usize),
    /// The last fraction of the training samples (before shuffling), held out from training;
    /// in (0, 1).
    Split(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Labels are integer class indices `i32[B]`; the model outputs `f32[B, classes]`.
    SparseCategoricalCrossentropy,
    /// The same with the labels one-hot encoded (Keras takes one-hot targets; Kiln's data sets
    /// hold class indices, which lowering one-hot encodes).
    CategoricalCrossentropy,
    /// Labels 0 or 1; the model outputs `f32[B, 1]` (a sigmoid, or logits).
    BinaryCrossentropy,
    /// Targets are `f32[B, M]`, the same shape as the model's output.
    MeanSquaredError,
    MeanAbsoluteError,
    /// Quadratic within `delta` of the target, linear beyond (Keras's `Huber`).
    Huber,
}

impl Loss {
    pub fn name(self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber => "huber",
        }
    }

    /// Whether the loss trains on integer class labels (else on real-valued targets).
    pub fn uses_classes(self) -> bool {
        matches!(
            self,
            Loss::SparseCategoricalCrossentropy
                | Loss::CategoricalCrossentropy
                | Loss::BinaryCrossentropy
        )
    }

    /// How many classes the labels may name for a model with `outputs` output units.
    pub fn classes(self, outputs: usize) -> usize {
        match self {
            Loss::BinaryCrossentropy => 2,
            _ => outputs,
        }
    }
}

/// A loss's arguments, Keras's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossOptions {
    /// The model's output is logits, not probabilities. Default false (Keras).
    pub from_logits: bool,
    /// Huber's threshold. Default 1.0 (Keras).
    pub delta: f32,
}

impl Default for LossOptions {
    fn default() -> LossOptions {
        LossOptions {
            from_logits: false,
            delta: 1.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `p -= lr * g`. Default lr 0.01 (Keras).
    Sgd { lr: f32 },
    /// Keras's SGD with `momentum > 0`: `v = momentum · v − lr · g`, then `p += v`, or with
    /// `nesterov`, `p += momentum · v − lr · g`.
    SgdMomentum {
        lr: f32,
        momentum: f32,
        nesterov: bool,
    },
    /// `adam(profile: torch)`: PyTorch's Adam, with ε added after the bias correction:
    /// `p −= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)`; eps default 1e-8.
    AdamTorch {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
    /// Keras's Adam: `m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
    /// p -= lr · sqrt(1-b2^t)/(1-b1^t) · m / (sqrt(v) + eps)`.
    /// Defaults: lr 0.001, beta1 0.9, beta2 0.999, eps 1e-7.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

impl Optimizer {
    /// The initial learning rate (a schedule, if any, takes over from it).
    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Sgd { lr }
            | Optimizer::SgdMomentum { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::AdamTorch { lr, .. } => lr,
        }
    }

    /// Adam with `adam(profile: torch)`'s ε placement (`torch`) or Keras's.
    pub fn adam(torch: bool, lr: f32, beta1: f32, beta2: f32, eps: f32) -> Optimizer {
        if torch {
            Optimizer::AdamTorch {
                lr,
                beta1,
                beta2,
                eps,
            }
        } else {
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// `accuracy` with integer labels: argmax of the output equals the label.
    SparseCategoricalAccuracy,
    /// `top_k_accuracy(k)`: the label is among the `k` highest outputs (Keras's
    /// `SparseTopKCategoricalAccuracy`, default k 5).
    TopKAccuracy { k: usize },
    /// `precision`: per class, correct predictions of it over all predictions of it, averaged
    /// over the classes that occur in the labels or the predictions (macro average).
    Precision,
    /// `recall`: per class, correct predictions of it over all samples of it, macro-averaged
    /// like `precision`.
    Recall,
    /// `mae`: mean absolute error over samples and outputs (regression).
    MeanAbsoluteError,
    /// `mse`: mean squared error over samples and outputs (regression).
    MeanSquaredError,
}

impl Metric {
    /// Whether the metric compares predicted classes with class labels.
    pub fn needs_classes(self) -> bool {
        !matches!(self, Metric::MeanAbsoluteError | Metric::MeanSquaredError)
    }
}

impl Metric {
    /// The name shown in training output (Keras shows `accuracy`).
    pub fn display_name(self) -> &'static str {
        match self {
            Metric::SparseCategoricalAccuracy => "accuracy",
            Metric::TopKAccuracy { .. } => "top_k_accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::MeanAbsoluteError => "mae",
            Metric::MeanSquaredError => "mse",
        }
    }
}
