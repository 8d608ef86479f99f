//! The settings vocabulary: what a program's data sources, losses, metrics, optimizers,
//! schedules and callbacks mean once checked. The checker produces these values; lowering, the
//! optimizer update and the runtime consume them. It sits below all three and imports none of
//! them.

pub mod data_source;
pub mod optimizer;

pub use optimizer::Optimizer;

/// The file format `predict` writes, from the path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictFormat {
    Csv,
    Npy,
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
