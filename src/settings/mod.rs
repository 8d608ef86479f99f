//! The settings vocabulary: what a program's data sources, losses, metrics, optimizers,
//! schedules and callbacks mean once checked. The checker produces these values; lowering, the
//! optimizer update and the runtime consume them. It sits below all three and imports none of
//! them.

pub mod arithmetic;
pub mod callback;
pub mod data_source;
pub mod def;
pub mod loss;
pub mod metric;
pub mod optimizer;
pub mod regularizer;
pub mod schedule;

pub use callback::{Callback, Monitor};
pub use loss::{Loss, LossOptions};
pub use metric::Metric;
pub use optimizer::Optimizer;
pub use schedule::Schedule;

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
        /// A column of per-sample weights (Keras's `sample_weight`), not a feature: each
        /// sample's loss is multiplied by its weight. Default: none.
        weight: Option<LabelColumn>,
        /// The feature columns, in this order; `None`: every column but the label's and the
        /// weight's, in file order.
        features: Option<Vec<LabelColumn>>,
        /// What a missing feature cell (empty, `NA`, `NaN`) becomes. Default: an error.
        fill: Fill,
        /// Feature columns of strings whose values are categories (Keras's `StringLookup`),
        /// each becoming `encoding`'s features; the vocabulary is built from the training rows.
        /// Default: none.
        categorical: Vec<LabelColumn>,
        /// How a categorical column becomes features. Default: one-hot.
        encoding: CategoryEncoding,
    },
    /// A pair of IDX files (MNIST's format, gzip-compressed or not): unsigned-byte images of
    /// shape `[rows, cols]` (`rows · cols` features, row by row), and unsigned-byte class labels.
    Idx {
        /// As written in the program, like `Csv::path`.
        images: String,
        labels: String,
        /// Every feature is divided by this (255 maps pixels to [0, 1]). Default: 1.
        scale: f32,
    },
    /// NumPy `.npy` files: features `[samples, ...]` (each sample's values row-major, its shape
    /// the array's dimensions after the first) and labels
    /// `[samples]` (classes) or `[samples]`/`[samples, M]` (targets).
    Npy {
        features: String,
        labels: String,
        scale: f32,
        /// A `.npy` file of each sample's weight in the loss (Keras's `sample_weight`).
        weights: Option<String>,
    },
    /// A NumPy `.npz` archive with the features and labels arrays under the given names.
    Npz {
        path: String,
        features: String,
        labels: String,
        scale: f32,
        /// The name of an array of each sample's weight in the loss (Keras's `sample_weight`).
        weights: Option<String>,
    },
    /// Windows over CSV columns, as Keras's `timeseries_dataset_from_array`: window `i`
    /// holds the `features` columns' values at rows `s, s + r, …, s + (sequence_length − 1)·r` with
    /// `s = i · sequence_stride` and `r = sampling_rate`, and its target is the value
    /// `target_offset` rows after the window's last, in `column`. Rows are time steps, in file
    /// order.
    Timeseries {
        path: String,
        /// A header name or zero-based index (`LabelColumn::Last` is never produced).
        column: LabelColumn,
        sequence_length: usize,
        target_offset: usize,
        sequence_stride: usize,
        sampling_rate: usize,
        missing: Missing,
        delimiter: char,
        /// The columns whose values make each step of a window, in order (`[column]` unless
        /// the program lists others); never empty.
        features: Vec<LabelColumn>,
    },
    /// Keras's `TextVectorization` over a CSV column of raw text, with class names in another
    /// column (see `runtime::data::text`).
    Text(TextSource),
}

/// What a CSV's missing feature cell (empty, `NA`, `NaN`) becomes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    /// Loading stops at the first one, naming its line and column (the default).
    Reject,
    /// The mean of the column's other cells in the same file (scikit-learn's
    /// `SimpleImputer(strategy="mean")`).
    Mean,
    /// This number.
    Constant(f32),
}

/// How a CSV's categorical column becomes features, as Keras's `StringLookup` output modes:
/// index 0 is `[UNK]` (a value the training rows never held), then the vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CategoryEncoding {
    /// One feature per index, 1 for the value's and 0 elsewhere (`output_mode="one_hot"`).
    #[default]
    OneHot,
    /// One feature, the value's index (`output_mode="int"`), for an embedding.
    Index,
}

impl CategoryEncoding {
    pub const ALL: [CategoryEncoding; 2] = [CategoryEncoding::OneHot, CategoryEncoding::Index];

    pub fn name(self) -> &'static str {
        match self {
            CategoryEncoding::OneHot => "one_hot",
            CategoryEncoding::Index => "index",
        }
    }

    pub fn from_name(name: &str) -> Option<CategoryEncoding> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// What a time series' missing cell (empty, `NA`, `NaN`) becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Loading stops at the first one, naming its line (the default).
    Reject,
    /// The last value before it (pandas's `ffill`); a series cannot start with a gap.
    Previous,
    /// The straight line between the values on either side, by row; a series cannot start or
    /// end with a gap.
    Interpolate,
}

impl Missing {
    pub fn name(self) -> &'static str {
        match self {
            Missing::Reject => "reject",
            Missing::Previous => "previous",
            Missing::Interpolate => "interpolate",
        }
    }

    pub fn from_name(name: &str) -> Option<Missing> {
        [Missing::Reject, Missing::Previous, Missing::Interpolate]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// A `text_csv` or `text_windows` source: which columns, and how text becomes token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextSource {
    /// As written in the program, like `Csv::path`.
    pub path: String,
    /// The header name of the text column. Default: `text`.
    pub text: String,
    /// The header name of the class-name column. Default: `label`. Prediction reads files
    /// without it.
    pub label: String,
    /// The vocabulary's size including padding (id 0) and `[UNK]` (id 1), as Keras counts it;
    /// `None`: every token of the training text. At least 2.
    pub max_tokens: Option<usize>,
    /// Every sample is padded with 0 or truncated to this many ids.
    pub output_sequence_length: usize,
    pub split: TextSplit,
    pub standardize: TextStandardize,
    /// `text_windows`: the file is plain text read as windows of `output_sequence_length` ids
    /// this many tokens apart, each labelled with the next token's id (`text` and `label` are
    /// empty). `None`: `text_csv`.
    pub windows: Option<usize>,
}

/// Keras's `split`: what a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextSplit {
    /// Runs of non-whitespace (Keras's `"whitespace"`, the default).
    Whitespace,
    /// Every character, spaces included (Keras's `"character"`).
    Character,
}

/// Keras's `standardize`: what is done to the text before it is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextStandardize {
    LowerAndStripPunctuation,
    Lower,
    StripPunctuation,
    None,
}

impl TextSplit {
    pub const ALL: [TextSplit; 2] = [TextSplit::Whitespace, TextSplit::Character];

    pub fn name(self) -> &'static str {
        match self {
            TextSplit::Whitespace => "whitespace",
            TextSplit::Character => "character",
        }
    }

    pub fn from_name(name: &str) -> Option<TextSplit> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl TextStandardize {
    pub const ALL: [TextStandardize; 4] = [
        TextStandardize::LowerAndStripPunctuation,
        TextStandardize::Lower,
        TextStandardize::StripPunctuation,
        TextStandardize::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TextStandardize::LowerAndStripPunctuation => "lower_and_strip_punctuation",
            TextStandardize::Lower => "lower",
            TextStandardize::StripPunctuation => "strip_punctuation",
            TextStandardize::None => "none",
        }
    }

    pub fn from_name(name: &str) -> Option<TextStandardize> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl DataSource {
    /// Whether the data gives each sample a weight in the loss (Keras's `sample_weight`): a
    /// CSV's `weight` column, a NumPy source's `weights` array.
    pub fn has_sample_weights(&self) -> bool {
        match self {
            DataSource::Csv { weight, .. } => weight.is_some(),
            DataSource::Npy { weights, .. } | DataSource::Npz { weights, .. } => weights.is_some(),
            DataSource::Synthetic { .. }
            | DataSource::Idx { .. }
            | DataSource::Timeseries { .. }
            | DataSource::Text(_) => false,
        }
    }

    /// The rank of each sample's shape when it is known before the data loads: IDX images are
    /// `[rows, cols]`. A NumPy array's shape is known once it loads; CSV rows and synthetic
    /// vectors have no shape of their own (they feed any input with as many elements).
    pub fn sample_rank(&self) -> Option<usize> {
        match self {
            DataSource::Idx { .. } => Some(2),
            DataSource::Synthetic { .. }
            | DataSource::Csv { .. }
            | DataSource::Npy { .. }
            | DataSource::Npz { .. }
            | DataSource::Timeseries { .. }
            | DataSource::Text(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last column (the default).
    Last,
    /// Zero-based column index.
    Index(usize),
    /// A header name; requires `header: true`.
    Name(String),
    /// No label column (`label: none`, a CSV's only): data for `predict`, every column (but a
    /// weight column) a feature.
    None,
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
    /// The fit's data has a `weight` column: the loss weighs each sample by it (Keras's
    /// `sample_weight`), in training and in validation (whose data may lack one: then every
    /// sample weighs 1).
    pub sample_weight: bool,
    /// `validation_split` after shuffling the samples with the fit's seed (scikit-learn's
    /// `train_test_split(shuffle=True)`; Keras holds out the last samples). Default false.
    pub shuffle_split: bool,
    /// `validation_split` class by class, so each class keeps its share in both parts
    /// (`train_test_split(stratify=y)`). Default false.
    pub stratify: bool,
    /// A fraction in (0, 1) of the samples held out before training and validation (after
    /// `shuffle_split`, per class with `stratify`), evaluated once training ends. Default none.
    pub test_split: Option<f64>,
    /// Keras's `class_weight`: one weight per class, each sample's loss in training multiplied
    /// by its class's. `None`: every sample counts once.
    pub class_weight: Option<Vec<f32>>,
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
