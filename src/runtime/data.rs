//! Data loading: turns a checked `data` declaration into feature and label arrays in memory.
//!
//! This is the only library module that touches files (the CLI is the other place). It never
//! prints: every problem comes back as a [`DataError`] whose message names the file, and for text
//! files the line and column, what was found and what was expected.
//!
//! The sources:
//!
//! * `synthetic_classification(samples, features, classes, seed)`: a `ChaCha8Rng` seeded with
//!   `seed` first draws `W: [features, classes]` ~ N(0, 1) row by row, then
//!   `x: [samples, features]` ~ N(0, 1) row by row; the label of a sample is the argmax over classes
//!   of `x · W` (ties go to the lowest index). The same definition as the peer benchmark scripts,
//!   though not the same random stream as NumPy's.
//! * CSV files: a small hand-written reader (the format we accept is simple and the error messages
//!   need line and column numbers, which a hand-written reader gives directly; no extra crate).
//!   Comma delimiter unless `delimiter` says otherwise; cells are trimmed; blank lines are
//!   skipped; a cell may be wrapped in double quotes (`""` inside stands for one quote); a UTF-8
//!   byte-order mark is ignored; lines end in `\n`, `\r\n` or a lone `\r`. Every column but the label
//!   column is a feature, in file order.
//!
//! * IDX files (MNIST's format, gzip-compressed or not): see [`idx`].
//! * NumPy `.npy` files and `.npz` archives: see [`npy`].
//!
//! Line and column numbers in messages are 1-based; a column number counts cells (fields), not
//! characters. CSV and IDX sources divide every feature by their `scale` (default 1) as they load;
//! labels are never scaled.
//!
//! A model whose input is `i32` (token ids for `embedding`) gets integer features: CSV cells
//! must be whole numbers and NumPy arrays of an integer type, every value within i32, and
//! nothing is scaled (the checker refuses `scale` and `standardize` for such inputs). Ids an
//! embedding's table has no row for are refused by [`check_against_model`].

use std::fmt;
use std::path::{Path, PathBuf};

use crate::buffer::{AllocError, Buffer};
use crate::ir::shape::DType;
use crate::program::{DataSet, Model};
use crate::settings::{DataSource, Loss, data_source};

pub mod category;
mod csv;
pub mod idx;
pub mod npy;
mod split;
mod standardize;
mod synthetic;
pub mod text;
mod timeseries;

pub use category::{TableVocabulary, Tabular};
use csv::load_csv;
pub use standardize::Standardization;
use synthetic::synthetic;
pub use text::TextVocabulary;

/// A data set loaded into memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub samples: usize,
    pub features: usize,
    /// Each sample's shape when the source gives it one (IDX images' `[rows, cols]`, a NumPy
    /// array's dimensions after the first), which decides the model inputs it feeds
    /// (`settings::data_source::image_inputs`); `None` for CSV rows and synthetic vectors, which
    /// feed any input of `features` elements.
    pub shape: Option<Vec<usize>>,
    /// Row-major [samples, features]; a large one on huge pages (see `crate::buffer`), since
    /// training reads its rows in shuffled order.
    pub x: Features,
    pub labels: Labels,
    /// Where it came from, for messages: the file path, or e.g. "synthetic_classification(seed 7)".
    pub origin: String,
    /// Where its labels came from: `origin`, unless they are a file of their own (npy, IDX).
    pub labels_origin: String,
    /// A time series' windows' last values, one per sample, as loaded (before `standardize`):
    /// the naive forecast "the same as the last value seen", which [`Dataset::naive_mae`]
    /// scores. `None` for other sources.
    pub last_values: Option<Vec<f32>>,
    /// Each sample's weight in the loss (a CSV's `weight` column or a NumPy weights array,
    /// Keras's `sample_weight`);
    /// `None`: every sample weighs 1.
    pub weights: Option<Vec<f32>>,
}

impl Dataset {
    /// The mean absolute error of the naive forecast (each window's last value predicts its
    /// target; Keras's time-series tutorial's baseline), in f64, for a time series.
    pub fn naive_mae(&self) -> Option<f64> {
        let last = self.last_values.as_ref()?;
        let Labels::Targets { width: 1, values } = &self.labels else {
            return None;
        };
        let sum: f64 = values
            .iter()
            .zip(last)
            .map(|(&t, &p)| (f64::from(t) - f64::from(p)).abs())
            .sum();
        Some(sum / values.len().max(1) as f64)
    }
}

/// A data set's features, in the element type of the model input they feed.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// For an `f32` input.
    F32(Buffer<f32>),
    /// Whole numbers for an `i32` input (token ids).
    I32(Buffer<i32>),
}

impl Features {
    pub fn dtype(&self) -> DType {
        match self {
            Features::F32(_) => DType::F32,
            Features::I32(_) => DType::I32,
        }
    }

    /// The values of every sample.
    pub fn len(&self) -> usize {
        match self {
            Features::F32(x) => x.len(),
            Features::I32(x) => x.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The float features, or `None` for integer ones.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Features::F32(x) => Some(x),
            Features::I32(_) => None,
        }
    }

    /// Values `at..` as features of their own; these keep `..at`.
    fn split_off(&mut self, at: usize) -> Result<Features, AllocError> {
        fn split<T: bytemuck::Pod>(x: &mut Buffer<T>, at: usize) -> Result<Buffer<T>, AllocError> {
            let tail = Buffer::from_slice(&x[at..])?;
            x.truncate(at);
            Ok(tail)
        }
        Ok(match self {
            Features::F32(x) => Features::F32(split(x, at)?),
            Features::I32(x) => Features::I32(split(x, at)?),
        })
    }
}

#[cfg(test)]
impl PartialEq<Vec<f32>> for Features {
    fn eq(&self, other: &Vec<f32>) -> bool {
        self.as_f32() == Some(other.as_slice())
    }
}

/// The labels of a data set, one entry (or row) per sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// Integer class indices, for sparse categorical cross-entropy.
    Classes(Vec<i32>),
    /// Row-major [samples, width] regression targets, for mean squared error.
    Targets { width: usize, values: Vec<f32> },
}

impl Labels {
    /// The number of samples these labels cover.
    pub fn samples(&self) -> usize {
        match self {
            Labels::Classes(classes) => classes.len(),
            Labels::Targets { width, values } => {
                if *width == 0 {
                    0
                } else {
                    values.len() / width
                }
            }
        }
    }
}

/// A problem with the data: what it came from, where in it (for text files), and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    /// The file path, or the synthetic source's description.
    pub origin: String,
    /// 1-based line of a text file, when the problem sits on one line.
    pub line: Option<usize>,
    /// 1-based column (cell number) within that line.
    pub column: Option<usize>,
    /// What was found and what was expected.
    pub message: String,
}

impl DataError {
    pub fn new(origin: &str, message: impl Into<String>) -> DataError {
        DataError {
            origin: origin.to_string(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn at_line(origin: &str, line: usize, message: impl Into<String>) -> DataError {
        DataError {
            line: Some(line),
            ..DataError::new(origin, message)
        }
    }

    fn at_cell(origin: &str, line: usize, column: usize, message: impl Into<String>) -> DataError {
        DataError {
            line: Some(line),
            column: Some(column),
            ..DataError::new(origin, message)
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for DataError {}

/// Loads a data set. Relative CSV paths are resolved against `base_dir` (the program's folder).
/// `loss` decides how labels are read: class indices for sparse categorical cross-entropy,
/// float targets for mean squared error; `input` (the model input's element type) how features
/// are: floats, or whole numbers for an `i32` input.
pub fn load(
    data: &DataSet,
    base_dir: &Path,
    loss: Loss,
    input: DType,
) -> Result<Dataset, DataError> {
    load_tabular(data, base_dir, loss, input, Tabular::ALL_ROWS, true).map(|(set, _)| set)
}

/// `load`, with a CSV's categories and class names from `tabular` (adapted to the data, or the
/// model's), returned with the data when the source has either. `labels_required`: false for
/// prediction, which reads a CSV file without its label column as unlabelled.
pub fn load_tabular(
    data: &DataSet,
    base_dir: &Path,
    loss: Loss,
    input: DType,
    tabular: Tabular,
    labels_required: bool,
) -> Result<(Dataset, Option<TableVocabulary>), DataError> {
    let (dataset, vocabulary) = load_source(data, base_dir, loss, input, tabular, labels_required)?;
    // Sources check their values as they read them; dividing by a tiny `scale` can still
    // overflow (`scale: 1e-38` turns 10 into inf), which would train to NaN.
    if let Features::F32(x) = &dataset.x
        && let Some(at) = x.iter().position(|v| !v.is_finite())
    {
        let features = dataset.features.max(1);
        let scale = match &data.source {
            DataSource::Csv { scale, .. }
            | DataSource::Idx { scale, .. }
            | DataSource::Npy { scale, .. }
            | DataSource::Npz { scale, .. } => format!(" after dividing by `scale` ({scale:e})"),
            DataSource::Synthetic { .. } | DataSource::Timeseries { .. } | DataSource::Text(_) => {
                String::new()
            }
        };
        return Err(DataError::new(
            &dataset.origin,
            format!(
                "sample {}, feature {} is {}{scale}; features must stay finite (choose a larger \
                 `scale`)",
                at / features + 1,
                at % features + 1,
                x[at]
            ),
        ));
    }
    // A file can declare zero rows (npy, IDX); training or scoring nothing would report a
    // loss of 0.
    if dataset.samples == 0 {
        return Err(DataError::new(
            &dataset.origin,
            "the data set has no samples; it needs at least one",
        ));
    }
    Ok((dataset, vocabulary))
}

fn load_source(
    data: &DataSet,
    base_dir: &Path,
    loss: Loss,
    input: DType,
    tabular: Tabular,
    labels_required: bool,
) -> Result<(Dataset, Option<TableVocabulary>), DataError> {
    if let DataSource::Csv {
        path,
        label,
        header,
        scale,
        delimiter,
        weight,
        features,
        fill,
        categorical,
        encoding,
    } = &data.source
    {
        let path = resolve(path, base_dir);
        let columns = csv::Columns {
            label,
            weight: weight.as_ref(),
            features: features.as_deref(),
            fill: *fill,
            categorical,
            encoding: *encoding,
            labels_required,
        };
        let integers = input == DType::I32;
        let (mut data, vocabulary) =
            load_csv(&path, columns, *header, *delimiter, loss, integers, tabular)?;
        // The checker refuses `scale` for an integer input (E0323). Categories are not
        // quantities: their features are not scaled.
        if let Features::F32(x) = &mut data.x
            && *scale != 1.0
        {
            let mut scaled = vec![true; data.features];
            for at in vocabulary
                .iter()
                .flat_map(TableVocabulary::category_features)
            {
                scaled[at] = false;
            }
            for row in x.chunks_exact_mut(data.features.max(1)) {
                for (v, _) in row.iter_mut().zip(&scaled).filter(|(_, s)| **s) {
                    *v /= scale;
                }
            }
        }
        return Ok((data, vocabulary));
    }
    load_other(data, base_dir, loss, input).map(|set| (set, None))
}

/// Every source but CSV's, which keep no vocabulary.
fn load_other(
    data: &DataSet,
    base_dir: &Path,
    loss: Loss,
    input: DType,
) -> Result<Dataset, DataError> {
    let integers = input == DType::I32;
    match &data.source {
        DataSource::Synthetic {
            samples,
            features,
            classes,
            seed,
        } => {
            let data = synthetic(*samples, *features, *classes, *seed, loss)?;
            floats_only(data, integers)
        }
        // Read above, with the caller's vocabulary; here with one adapted to every row.
        DataSource::Csv { .. } => {
            load_source(data, base_dir, loss, input, Tabular::ALL_ROWS, true).map(|(set, _)| set)
        }
        DataSource::Idx {
            images,
            labels,
            scale,
        } => {
            let data = idx::load_idx(
                &resolve(images, base_dir),
                &resolve(labels, base_dir),
                *scale,
            )?;
            if !loss.uses_classes() {
                return Err(DataError::new(
                    &data.origin,
                    format!(
                        "IDX labels are integer classes, which {} cannot use; use \
                         sparse_categorical_crossentropy",
                        loss.name()
                    ),
                ));
            }
            floats_only(data, integers)
        }
        DataSource::Npy {
            features,
            labels,
            scale,
            weights,
        } => npy::load_npy(
            &resolve(features, base_dir),
            &resolve(labels, base_dir),
            weights.as_ref().map(|w| resolve(w, base_dir)).as_deref(),
            *scale,
            loss,
            integers,
        ),
        DataSource::Text(_) => {
            if !integers {
                // The checker refuses text for an f32 input (E0325).
                return Err(DataError::new(
                    &data.name,
                    "text supplies i32 token ids, which cannot feed an f32 input",
                ));
            }
            let adapt = Vocabulary::Adapt {
                validation_split: None,
            };
            load_text(data, base_dir, loss, adapt, true).map(|(set, _)| set)
        }
        DataSource::Npz {
            path,
            features,
            labels,
            scale,
            weights,
        } => npy::load_npz(
            &resolve(path, base_dir),
            features,
            labels,
            weights.as_deref(),
            *scale,
            loss,
            integers,
        ),
        DataSource::Timeseries {
            path,
            column,
            sequence_length,
            target_offset,
            sequence_stride,
            sampling_rate,
            missing,
            delimiter,
            features,
        } => {
            let windows = timeseries::Windows {
                sequence_length: *sequence_length,
                target_offset: *target_offset,
                sequence_stride: *sequence_stride,
                sampling_rate: *sampling_rate,
            };
            let path = resolve(path, base_dir);
            let data = timeseries::load_timeseries(
                &path, column, features, windows, *missing, *delimiter,
            )?;
            // The checker refuses class losses for a time series (E0325); this keeps that true
            // for callers that skip it.
            if loss.uses_classes() {
                return Err(DataError::new(
                    &data.origin,
                    format!(
                        "a time series' targets are real values, which {} cannot use; use \
                         mean_squared_error",
                        loss.name()
                    ),
                ));
            }
            floats_only(data, integers)
        }
    }
}

/// Where a text source's vocabulary comes from.
#[derive(Clone, Copy, Debug)]
pub enum Vocabulary<'a> {
    /// Built from the training samples: every row, or those before a `validation_split` of
    /// this fraction (the rows `Dataset::split_off_validation` keeps for training).
    Adapt { validation_split: Option<f64> },
    /// The model's, from an earlier fit or a checkpoint.
    Keep(&'a TextVocabulary),
}

/// Loads a `text_csv` data set as token ids (see [`text`]), with the vocabulary it was
/// vectorized with. `labels_required`: false for prediction, which reads files without a label
/// column.
pub fn load_text(
    data: &DataSet,
    base_dir: &Path,
    loss: Loss,
    vocabulary: Vocabulary,
    labels_required: bool,
) -> Result<(Dataset, TextVocabulary), DataError> {
    let DataSource::Text(source) = &data.source else {
        return Err(DataError::new(&data.name, "not a text data source"));
    };
    let path = resolve(&source.path, base_dir);
    let origin = path.display().to_string();
    if labels_required && !loss.uses_classes() {
        return Err(DataError::new(
            &origin,
            format!(
                "text labels are class names, which {} cannot use; use                  sparse_categorical_crossentropy",
                loss.name()
            ),
        ));
    }
    if let Some(stride) = source.windows {
        return load_windows(source, &path, vocabulary, stride);
    }
    let rows = text::read_rows(&path, source, labels_required)?;
    let vocabulary = match vocabulary {
        Vocabulary::Keep(kept) => {
            kept.check_source(source, &origin)?;
            kept.clone()
        }
        Vocabulary::Adapt { validation_split } => {
            let training = validation_split.map_or(rows.texts.len(), |f| {
                split::training_samples(rows.texts.len(), f)
            });
            TextVocabulary::adapt(
                &rows.texts[..training],
                rows.labels.as_deref().unwrap_or_default(),
                source.max_tokens,
                source.split,
                source.standardize,
            )
        }
    };
    let set = text::vectorize(&rows, &vocabulary, source.output_sequence_length)?;
    Ok((set, vocabulary))
}

/// `text_windows`: the file's tokens as windows labelled with the next token, the vocabulary
/// built from the tokens the training windows cover (those before a `validation_split`).
fn load_windows(
    source: &crate::settings::TextSource,
    path: &Path,
    vocabulary: Vocabulary,
    stride: usize,
) -> Result<(Dataset, TextVocabulary), DataError> {
    let origin = path.display().to_string();
    let length = source.output_sequence_length;
    let tokens = text::tokens(&text::read_text(path)?, source.split, source.standardize);
    let vocabulary = match vocabulary {
        Vocabulary::Keep(kept) => {
            kept.check_source(source, &origin)?;
            kept.clone()
        }
        Vocabulary::Adapt { validation_split } => {
            let count = text::window_count(tokens.len(), length, stride);
            let training = validation_split.map_or(count, |f| split::training_samples(count, f));
            // The training windows and their next tokens.
            let end = match training {
                0 => 0,
                n => (n - 1) * stride + length + 1,
            };
            TextVocabulary::adapt_tokens(
                tokens[..end.min(tokens.len())].iter().cloned(),
                &[],
                source.max_tokens,
                source.split,
                source.standardize,
            )
        }
    };
    let set = text::windows(&tokens, &vocabulary, (length, stride), &origin)?;
    Ok((set, vocabulary))
}

/// Synthetic and IDX features are floats (scaled pixels); the checker refuses them for an
/// integer input (E0323), and this keeps that true for callers that skip it.
fn floats_only(data: Dataset, integers: bool) -> Result<Dataset, DataError> {
    if integers {
        return Err(DataError::new(
            &data.origin,
            "this source supplies f32 features, which cannot feed an i32 input; use a CSV or \
             NumPy file of whole numbers",
        ));
    }
    Ok(data)
}

/// The `i32` a token id read as `value` is, or why it is none: a whole number within i32.
pub(crate) fn token_id(value: f64) -> Result<i32, &'static str> {
    if value.fract() != 0.0 || !value.is_finite() {
        Err("not a whole number; an i32 input takes integer ids")
    } else if !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&value) {
        Err("outside i32's range (-2147483648 to 2147483647)")
    } else {
        Ok(value as i32)
    }
}

/// Checks the loaded data against the model before training: feature width equals the model's
/// input width, and samples with a shape of their own feed the input's shape
/// (`data_source::image_inputs`); class labels lie in `0..model.output_features` (sparse
/// categorical cross-entropy); target width equals the output width (mean squared error).
pub fn check_against_model(dataset: &Dataset, model: &Model, loss: Loss) -> Result<(), DataError> {
    let origin = &dataset.origin;
    let input = || {
        format!(
            "{}: {}",
            model.inputs[0].0,
            crate::ir::shape::type_text(&model.inputs[0].1, &model.batch_symbol)
        )
    };
    // What shaped samples feed, for the messages below.
    let feeds = |shape: &[usize]| {
        format!(
            "; samples of shape {shape:?} feed {}",
            data_source::image_inputs_text(shape, &model.batch_symbol)
        )
    };
    if dataset.features != model.input_features {
        let (each, suggestion) = match &dataset.shape {
            Some(shape) => (format!(" (shape {shape:?})"), feeds(shape)),
            None => (String::new(), String::new()),
        };
        return Err(DataError::new(
            origin,
            format!(
                "the data has {} feature{} per sample{each}, but model '{}' takes input \
                 {}{suggestion}",
                dataset.features,
                plural(dataset.features),
                model.name,
                input()
            ),
        ));
    }
    if let Some(shape) = &dataset.shape
        && !data_source::image_inputs(shape).contains(&model.input_sample_shape())
    {
        return Err(DataError::new(
            origin,
            format!(
                "the data's samples have shape {shape:?}, but model '{}' takes input {}: as \
                 many values, laid out differently{}",
                model.name,
                input(),
                feeds(shape)
            ),
        ));
    }
    let dtype = model.inputs[0].1.dtype;
    if dataset.x.dtype() != dtype {
        return Err(DataError::new(
            origin,
            format!(
                "the data was read as {} features, but model '{}' takes input {}",
                dataset.x.dtype().name(),
                model.name,
                input()
            ),
        ));
    }
    // Keras raises for an id its table has no row for; the gather would read zeros.
    if let (Features::I32(ids), Some(rows)) = (&dataset.x, model.token_rows())
        && let Some(at) = ids.iter().position(|&id| id < 0 || id as usize >= rows)
    {
        let features = dataset.features.max(1);
        return Err(DataError::new(
            origin,
            format!(
                "sample {}, position {} is token id {}, but model '{}' embeds its input in a \
                 table of {rows} rows (input_dim {rows}); token ids must lie in 0..{rows}",
                at / features + 1,
                at % features + 1,
                ids[at],
                model.name,
            ),
        ));
    }
    let labels_origin = &dataset.labels_origin;
    match (&dataset.labels, loss.uses_classes()) {
        (Labels::Classes(classes), true) => {
            let outputs = loss.classes(model.output_features);
            if let Some((sample, &class)) = classes
                .iter()
                .enumerate()
                .find(|&(_, &class)| class < 0 || class as usize >= outputs)
            {
                let distinct: std::collections::BTreeSet<i32> = classes.iter().copied().collect();
                let (low, high) = (distinct.first(), distinct.last());
                let (low, high) = (low.copied().unwrap_or(0), high.copied().unwrap_or(0));
                // A regression target, not class labels: many more values than classes, or
                // several values that all lie beyond the classes (classes count from 0).
                let (n, k) = (distinct.len(), outputs.max(2));
                if (n > 20 && n > 2 * k) || (low as usize >= k && n > k) {
                    return Err(DataError::new(
                        labels_origin,
                        format!(
                            "the labels look like real-valued targets ({} different values from \
                             {low} to {high}; sample {} has {class}), but {} is a classification \
                             loss, whose labels must be {}; for real-valued targets use \
                             `loss mean_squared_error` and end the model in a linear \
                             `dense({})`",
                            distinct.len(),
                            sample + 1,
                            loss.name(),
                            class_range(outputs),
                            model.output_features
                        ),
                    ));
                }
                return Err(DataError::new(
                    labels_origin,
                    format!(
                        "sample {} has class label {class}, but model '{}' {} (labels must be {})",
                        sample + 1,
                        model.name,
                        match (outputs, model.output_features) {
                            (2, 1) => "outputs one probability, for classes 0 and 1".to_string(),
                            (1, _) => "outputs 1 class".to_string(),
                            (n, _) => format!("outputs {n} classes"),
                        },
                        class_range(outputs)
                    ),
                ));
            }
            Ok(())
        }
        (Labels::Targets { width, .. }, false) => {
            if *width != model.output_features {
                return Err(DataError::new(
                    labels_origin,
                    format!(
                        "the data has {width} target{} per sample, but model '{}' outputs \
                         f32[B, {}]; {} needs them to match",
                        plural(*width),
                        model.name,
                        model.output_features,
                        loss.name()
                    ),
                ));
            }
            Ok(())
        }
        (Labels::Targets { .. }, true) => Err(DataError::new(
            labels_origin,
            format!(
                "the data has float targets, but {} needs integer class labels",
                loss.name()
            ),
        )),
        (Labels::Classes(_), false) => Err(DataError::new(
            labels_origin,
            format!(
                "the data has integer class labels, but {} needs float targets",
                loss.name()
            ),
        )),
    }
}

/// The labels `classes` classes take, in words: `0`, `0 or 1`, `0 to 9`.
pub fn class_range(classes: usize) -> String {
    match classes {
        0 | 1 => "0".to_string(),
        2 => "0 or 1".to_string(),
        n => format!("0 to {}", n - 1),
    }
}

/// A cell, name or value from a user's file as an error message quotes it: whole when short,
/// else its start and its length (a 50 MB cell was echoed whole into one error line).
pub(crate) fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    const SHOWN: usize = 48;
    match text.char_indices().nth(SHOWN + 16) {
        None => text.into(),
        Some(_) => {
            let end = text
                .char_indices()
                .nth(SHOWN)
                .map_or(text.len(), |(i, _)| i);
            format!("{}… ({} characters)", &text[..end], text.chars().count()).into()
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Opens a file to read, if it is a regular file: a FIFO would block forever and a device might
/// never end. `what` names the file in messages (`the file`, `the checkpoint`).
pub fn open_regular(path: &Path, origin: &str, what: &str) -> Result<std::fs::File, DataError> {
    let cannot = |e: std::io::Error| DataError::new(origin, format!("cannot read {what}: {e}"));
    let kind = std::fs::metadata(path).map_err(cannot)?.file_type();
    if !kind.is_file() {
        let found = if kind.is_dir() {
            "a folder"
        } else {
            "not a regular file (a pipe or a device)"
        };
        return Err(DataError::new(
            origin,
            format!("cannot read {what}: it is {found}"),
        ));
    }
    std::fs::File::open(path).map_err(cannot)
}

/// `open_regular`, then the whole file.
pub fn read_regular(path: &Path, origin: &str, what: &str) -> Result<Vec<u8>, DataError> {
    use std::io::Read;
    let mut file = open_regular(path, origin, what)?;
    let cannot = |e: std::io::Error| DataError::new(origin, format!("cannot read {what}: {e}"));
    let len = file.metadata().map_err(cannot)?.len();
    // Room for the whole file first, fallibly: a file larger than the memory left is an error
    // naming it, not an abort inside `read_to_end`.
    let len = usize::try_from(len)
        .map_err(|_| too_large(origin, what, AllocError { bytes: len.into() }))?;
    let mut bytes = reserve(len, origin, what)?;
    file.read_to_end(&mut bytes).map_err(cannot)?;
    Ok(bytes)
}

pub fn resolve(path: &str, base_dir: &Path) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

// ---------------------------------------------------------------------------------------------
// Synthetic classification data

/// An empty vector with room for `len` values, or an error naming `what` when the memory is not
/// there (a data set declared far larger than the machine is a user's mistake, not a crash).
fn reserve<T>(len: usize, origin: &str, what: &str) -> Result<Vec<T>, DataError> {
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| {
        let bytes = len as u128 * std::mem::size_of::<T>() as u128;
        too_large(origin, what, AllocError { bytes })
    })?;
    Ok(values)
}

/// `len` zeroed features, or the error naming what needed them.
pub(crate) fn zeroed_features<T: bytemuck::Pod>(
    len: usize,
    origin: &str,
) -> Result<Buffer<T>, DataError> {
    Buffer::zeroed(len).map_err(|e| too_large(origin, "its samples", e))
}

fn too_large(origin: &str, what: &str, error: AllocError) -> DataError {
    DataError::new(
        origin,
        format!(
            "{} bytes are needed for {what}, more memory than can be allocated",
            error.bytes
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use crate::settings::LabelColumn;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn synthetic_set(samples: usize, features: usize, classes: usize, seed: u64) -> DataSet {
        DataSet {
            name: "train".into(),
            span: Span::default(),
            source: DataSource::Synthetic {
                samples,
                features,
                classes,
                seed,
            },
        }
    }

    fn csv_set(path: &str, label: LabelColumn, header: bool) -> DataSet {
        DataSet {
            name: "train".into(),
            span: Span::default(),
            source: DataSource::Csv {
                path: path.into(),
                label,
                header,
                scale: 1.0,
                delimiter: ',',
                weight: None,
                features: None,
                fill: crate::settings::Fill::Reject,
                categorical: Vec::new(),
                encoding: Default::default(),
            },
        }
    }

    /// A CSV file in the temp folder, removed when dropped.
    struct TempCsv(PathBuf);

    impl TempCsv {
        fn new(contents: &str) -> TempCsv {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "kiln-data-test-{}-{}.csv",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).expect("write temp csv");
            TempCsv(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for TempCsv {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn load_text(
        contents: &str,
        label: LabelColumn,
        header: bool,
        loss: Loss,
    ) -> Result<Dataset, DataError> {
        let file = TempCsv::new(contents);
        load(
            &csv_set(file.path(), label, header),
            Path::new("/"),
            loss,
            DType::F32,
        )
    }

    fn error_text(contents: &str, label: LabelColumn, header: bool, loss: Loss) -> String {
        match load_text(contents, label, header, loss) {
            Ok(data) => panic!("expected an error, loaded {data:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_contains(text: &str, needle: &str) {
        assert!(text.contains(needle), "expected {needle:?} in {text:?}");
    }

    const SCCE: Loss = Loss::SparseCategoricalCrossentropy;
    const MSE: Loss = Loss::MeanSquaredError;

    /// `net(x: f32[B, inputs]) -> f32[B, outputs]`, a softmax over `x @ kernel`, built with the
    /// IR's builders (the checker, which would build it from source, sits above the runtime).
    fn model(inputs: usize, outputs: usize) -> Model {
        use crate::ir::graph::{Graph, Init, ParamInfo};
        use crate::ir::op::Op;
        use crate::ir::shape::{Dim, Shape, TensorType};
        let input = TensorType::f32(Shape(vec![Dim::Batch, Dim::Fixed(inputs)]));
        let output = TensorType::f32(Shape(vec![Dim::Batch, Dim::Fixed(outputs)]));
        let mut forward = Graph::new("net");
        let x = forward.input("x", input.clone(), None);
        let kernel = ParamInfo {
            regularizer: None,
            trainable: true,
            name: "dense.kernel".into(),
            shape: Shape::fixed(&[inputs, outputs]),
            init: Init::Zeros,
        };
        let w = forward.param(kernel, None);
        let matmul = Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        };
        let logits = forward.add(matmul, &[x, w], None);
        let probabilities = forward.add(Op::Softmax, &[logits], None);
        forward.outputs.push(("output".into(), probabilities));
        Model {
            name: "net".into(),
            span: Span::default(),
            batch_symbol: "B".into(),
            inputs: vec![("x".into(), input)],
            outputs: vec![output],
            input_features: inputs,
            output_features: outputs,
            forward,
            summary: vec![],
            types: vec![],
        }
    }

    /// A pipe as a data path would block forever on its read; a folder is no file either.
    #[cfg(unix)]
    #[test]
    fn a_pipe_or_a_folder_is_not_a_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("data.csv");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let set = csv_set(fifo.to_str().unwrap(), LabelColumn::Last, true);
            let e = load(&set, Path::new("/"), SCCE, DType::F32)
                .unwrap_err()
                .to_string();
            assert_contains(&e, "it is not a regular file (a pipe or a device)");
        }
        let set = csv_set(dir.path().to_str().unwrap(), LabelColumn::Last, true);
        let e = load(&set, Path::new("/"), SCCE, DType::F32)
            .unwrap_err()
            .to_string();
        assert_contains(&e, "cannot read the file: it is a folder");
    }

    #[test]
    fn a_scale_that_overflows_the_features_is_an_error() {
        let file = TempCsv::new("a,b,label\n1,2,0\n10,3,1\n");
        let mut set = csv_set(file.path(), LabelColumn::Last, true);
        if let DataSource::Csv { scale, .. } = &mut set.source {
            *scale = 1e-38;
        }
        let e = load(&set, Path::new("/"), SCCE, DType::F32)
            .unwrap_err()
            .to_string();
        assert_contains(
            &e,
            "sample 2, feature 1 is inf after dividing by `scale` (1e-38)",
        );
    }

    #[test]
    fn csv_lines_end_in_newlines_crlf_or_lone_carriage_returns() {
        for text in [
            "a,label\n1,0\n2,1\n",
            "a,label\r\n1,0\r\n2,1\r\n",
            "a,label\r1,0\r2,1\r",
        ] {
            let data = load_text(text, LabelColumn::Last, true, SCCE).unwrap();
            assert_eq!((data.samples, data.features), (2, 1), "{text:?}");
        }
        // Line numbers count lone carriage returns as line ends too.
        let e = error_text("a,label\r1,0\rx,1\r", LabelColumn::Last, true, SCCE);
        assert_contains(&e, "line 3");
    }

    #[test]
    fn synthetic_is_deterministic_per_seed() {
        let a = load(
            &synthetic_set(500, 8, 4, 7),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap();
        let b = load(
            &synthetic_set(500, 8, 4, 7),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap();
        let c = load(
            &synthetic_set(500, 8, 4, 8),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a.x, c.x);
        assert_eq!(a.samples, 500);
        assert_eq!(a.features, 8);
        assert_eq!(a.x.len(), 500 * 8);
        assert_eq!(a.origin, "synthetic_classification(seed 7)");
    }

    #[test]
    fn synthetic_labels_in_range_and_varied() {
        let data = load(
            &synthetic_set(2000, 32, 10, 7),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap();
        let Labels::Classes(labels) = &data.labels else {
            panic!("expected class labels");
        };
        assert_eq!(labels.len(), 2000);
        assert!(labels.iter().all(|&l| (0..10).contains(&l)));
        let mut counts = [0usize; 10];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert!(counts.iter().filter(|&&n| n > 0).count() >= 5, "{counts:?}");
        assert!(counts.iter().all(|&n| n < 2000));
        // Roughly standard normal features.
        let x = data.x.as_f32().unwrap();
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / x.len() as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        check_against_model(&data, &model(32, 10), SCCE).unwrap();
    }

    #[test]
    fn synthetic_label_is_argmax_of_x_times_w() {
        // Redraw W and x the documented way and compare.
        let (samples, features, classes, seed) = (50, 3, 4, 11);
        let data = load(
            &synthetic_set(samples, features, classes, seed),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w: Vec<f32> = (0..features * classes)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let x: Vec<f32> = (0..samples * features)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        assert_eq!(data.x, x);
        let Labels::Classes(labels) = &data.labels else {
            panic!()
        };
        for s in 0..samples {
            let score = |k: usize| {
                (0..features)
                    .map(|f| x[s * features + f] * w[f * classes + k])
                    .sum::<f32>()
            };
            let best = (0..classes)
                .max_by(|&a, &b| score(a).partial_cmp(&score(b)).unwrap().then(b.cmp(&a)))
                .unwrap();
            assert_eq!(labels[s] as usize, best);
        }
    }

    #[test]
    fn synthetic_rejects_mse_and_zero_sizes() {
        let e = load(&synthetic_set(10, 4, 3, 1), Path::new("."), MSE, DType::F32).unwrap_err();
        assert_contains(&e.to_string(), "mean_squared_error");
        let e = load(
            &synthetic_set(10, 4, 0, 1),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap_err();
        assert_contains(&e.to_string(), "classes must be at least 1");
        // More than an address space holds: an error, not an abort.
        let e = load(
            &synthetic_set(usize::MAX, 1, 3, 1),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap_err();
        assert_contains(&e.to_string(), "more memory than can be allocated");
        let e = load(
            &synthetic_set(10, usize::MAX, 3, 1),
            Path::new("."),
            SCCE,
            DType::F32,
        )
        .unwrap_err();
        assert_contains(&e.to_string(), "is too large");
    }

    #[test]
    fn csv_small_file() {
        let data = load_text(
            "a, b ,label\n1,2,0\n\n  3.5 , -4e1 , 2.0 \r\n\"5\",6,1\n",
            LabelColumn::Last,
            true,
            SCCE,
        )
        .unwrap();
        assert_eq!(data.samples, 3);
        assert_eq!(data.features, 2);
        assert_eq!(data.x, vec![1.0, 2.0, 3.5, -40.0, 5.0, 6.0]);
        assert_eq!(data.labels, Labels::Classes(vec![0, 2, 1]));
    }

    #[test]
    fn csv_label_by_index_and_name_and_no_header() {
        let text = "y,a,b\n1,2,3\n0,5,6\n";
        let by_index = load_text(text, LabelColumn::Index(0), true, SCCE).unwrap();
        let by_name = load_text(text, LabelColumn::Name("y".into()), true, SCCE).unwrap();
        assert_eq!(
            (&by_index.x, &by_index.labels),
            (&by_name.x, &by_name.labels)
        );
        assert_eq!(by_name.x, vec![2.0, 3.0, 5.0, 6.0]);
        assert_eq!(by_name.labels, Labels::Classes(vec![1, 0]));
        let no_header = load_text("1,2,3\n4,5,6\n", LabelColumn::Index(1), false, MSE).unwrap();
        assert_eq!(no_header.x, vec![1.0, 3.0, 4.0, 6.0]);
        assert_eq!(
            no_header.labels,
            Labels::Targets {
                width: 1,
                values: vec![2.0, 5.0]
            }
        );
        check_against_model(&no_header, &model(2, 1), MSE).unwrap();
    }

    #[test]
    fn csv_relative_path_resolves_against_base_dir() {
        let file = TempCsv::new("a,y\n1,0\n");
        let name = file.0.file_name().unwrap().to_str().unwrap();
        let data = load(
            &csv_set(name, LabelColumn::Last, true),
            &std::env::temp_dir(),
            SCCE,
            DType::F32,
        )
        .unwrap();
        assert_eq!(data.samples, 1);
        assert_eq!(data.origin, file.0.display().to_string());
    }

    #[test]
    fn csv_iris() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
        let data = load(
            &csv_set("data/iris.csv", LabelColumn::Name("species".into()), true),
            &base,
            SCCE,
            DType::F32,
        )
        .unwrap();
        assert_eq!(data.samples, 150);
        assert_eq!(data.features, 4);
        assert_eq!(data.x.len(), 600);
        assert_eq!(&data.x.as_f32().unwrap()[..4], &[5.1, 3.5, 1.4, 0.2]);
        let Labels::Classes(labels) = &data.labels else {
            panic!()
        };
        for class in 0..3 {
            assert_eq!(labels.iter().filter(|&&l| l == class).count(), 50);
        }
        check_against_model(&data, &model(4, 3), SCCE).unwrap();
        let e = check_against_model(&data, &model(4, 2), SCCE).unwrap_err();
        assert_contains(
            &e.to_string(),
            "class label 2, but model 'net' outputs 2 classes",
        );
        assert_contains(&e.to_string(), "iris.csv");
    }

    #[test]
    fn csv_missing_file() {
        let e = load(
            &csv_set("no/such/file.csv", LabelColumn::Last, true),
            Path::new("/nonexistent-kiln"),
            SCCE,
            DType::F32,
        )
        .unwrap_err()
        .to_string();
        assert_contains(&e, "/nonexistent-kiln/no/such/file.csv");
        assert_contains(&e, "cannot read the file");
        assert_contains(&e, "No such file or directory");
    }

    #[test]
    fn csv_empty_and_header_only() {
        assert_contains(
            &error_text("", LabelColumn::Last, true, SCCE),
            "the file is empty",
        );
        assert_contains(
            &error_text("\n  \n", LabelColumn::Last, false, SCCE),
            "the file is empty",
        );
        assert_contains(
            &error_text("a,b\n\n", LabelColumn::Last, true, SCCE),
            "no data rows",
        );
    }

    #[test]
    fn csv_ragged_rows() {
        let text = "a,b,c,d,y\n1,2,3,4,0\n\n1,2,3,4,1\n1,2,3,4,1\n1,2,3,4,0\n1,2,3,4\n";
        let e = error_text(text, LabelColumn::Last, true, SCCE);
        assert_contains(&e, "line 7: expected 5 columns, found 4");
    }

    #[test]
    fn csv_non_numeric_cell() {
        let mut text = String::from("a,b,c,y\n");
        for _ in 0..10 {
            text.push_str("1,2,3,0\n");
        }
        text.push_str("1,2,abc,0\n");
        let e = error_text(&text, LabelColumn::Last, true, SCCE);
        assert_contains(&e, "line 12, column 3: cannot read 'abc' as a number");
        assert_contains(&e, "(column 'c')");
        let e = error_text("1,,2\n", LabelColumn::Last, false, SCCE);
        assert_contains(&e, "line 1, column 2: empty cell");
    }

    #[test]
    fn csv_non_finite_features() {
        // NaN is how pandas writes a gap: a missing value, which the program may fill.
        let e = error_text("a,y\n1,0\nNaN,1\n", LabelColumn::Last, true, SCCE);
        assert_contains(&e, "line 3, column 1: missing value 'NaN'");
        assert_contains(&e, "missing: \"mean\"");
        let e = error_text("a,y\n1,0\n2,1\ninf,1\n", LabelColumn::Last, true, SCCE);
        assert_contains(&e, "line 4, column 1: feature value 'inf'");
        let e = error_text("a,y\n1,inf\n", LabelColumn::Last, true, MSE);
        assert_contains(&e, "line 2, column 2: target 'inf' is not a finite number");
    }

    #[test]
    fn csv_bad_class_labels() {
        // A fraction is a real-valued target: said so, with the loss that trains on one.
        let e = error_text("a,y\n1,0\n2,1.5\n", LabelColumn::Last, true, SCCE);
        assert_contains(
            &e,
            "line 3, column 2: label '1.5' is a real number, but sparse_categorical_crossentropy \
             is a classification loss, whose labels must be 0, 1, 2, …; for real-valued targets \
             use `loss mean_squared_error`",
        );
        let e = error_text("a,y\n1,-1\n", LabelColumn::Last, true, SCCE);
        assert_contains(
            &e,
            "line 2, column 2: class label '-1' is not a non-negative integer; \
             sparse_categorical_crossentropy needs class labels 0, 1, 2, …",
        );
        // The message names the loss the fit uses.
        let bce = Loss::BinaryCrossentropy;
        let e = error_text("a,y\n1,0.5\n", LabelColumn::Last, true, bce);
        assert_contains(
            &e,
            "label '0.5' is a real number, but binary_crossentropy is a classification loss, \
             whose labels must be 0 or 1",
        );
        // A column of names is classes; one of numbers and names is neither.
        let e = error_text("a,y\n1,0\n2,cat\n", LabelColumn::Last, true, SCCE);
        assert_contains(
            &e,
            "line 3, column 2: cannot read class label 'cat' as a number",
        );
        let data = load_text("a,y\n1,cat\n2,ant\n", LabelColumn::Last, true, SCCE).unwrap();
        assert_eq!(data.labels, Labels::Classes(vec![1, 0]));
        // "2.0" is a fine class label.
        let data = load_text("a,y\n1,2.0\n", LabelColumn::Last, true, SCCE).unwrap();
        assert_eq!(data.labels, Labels::Classes(vec![2]));
    }

    #[test]
    fn csv_unknown_label_name() {
        let text = "sepal_length,sepal_width,species\n1,2,0\n";
        let e = error_text(text, LabelColumn::Name("specie".into()), true, SCCE);
        assert_contains(&e, "no column named 'specie'");
        assert_contains(&e, "'sepal_length', 'sepal_width', 'species'");
        assert_contains(&e, "did you mean 'species'?");
        let e = error_text(text, LabelColumn::Name("colour".into()), true, SCCE);
        assert!(!e.contains("did you mean"), "{e}");
        let e = error_text("1,2,0\n", LabelColumn::Name("species".into()), false, SCCE);
        assert_contains(&e, "without a header row");
    }

    #[test]
    fn csv_label_index_out_of_range() {
        let e = error_text("a,b,y\n1,2,0\n", LabelColumn::Index(3), true, SCCE);
        assert_contains(
            &e,
            "label column index 3 is out of range: the file has 3 columns",
        );
    }

    #[test]
    fn csv_single_column_and_bad_quotes() {
        let e = error_text("y\n1\n", LabelColumn::Last, true, SCCE);
        assert_contains(&e, "expected at least 2");
        let e = error_text("\"1,2\n", LabelColumn::Last, false, SCCE);
        assert_contains(&e, "line 1: cell 1 opens a quote");
    }

    #[test]
    fn check_against_model_mismatches() {
        let data = load_text("a,b,y\n1,2,0\n3,4,1\n", LabelColumn::Last, true, SCCE).unwrap();
        let e = check_against_model(&data, &model(3, 2), SCCE)
            .unwrap_err()
            .to_string();
        assert_contains(
            &e,
            "the data has 2 features per sample, but model 'net' takes input x: f32[B, 3]",
        );
        let e = check_against_model(&data, &model(2, 2), MSE)
            .unwrap_err()
            .to_string();
        assert_contains(&e, "mean_squared_error needs float targets");
        let targets = load_text("a,b,y\n1,2,0.5\n", LabelColumn::Last, true, MSE).unwrap();
        let e = check_against_model(&targets, &model(2, 3), MSE)
            .unwrap_err()
            .to_string();
        assert_contains(&e, "1 target per sample, but model 'net' outputs f32[B, 3]");
        let e = check_against_model(&targets, &model(2, 1), SCCE)
            .unwrap_err()
            .to_string();
        assert_contains(&e, "needs integer class labels");
    }

    /// Class ranges are written in words, and whole-number targets that are no classes (a
    /// regression target such as a disease-progression score) are called what they are.
    #[test]
    fn out_of_range_labels_say_what_they_look_like() {
        let bce = Loss::BinaryCrossentropy;
        let error = |text: &str, outputs: usize, loss: Loss| {
            let data = load_text(text, LabelColumn::Last, true, loss).unwrap();
            check_against_model(&data, &model(1, outputs), loss)
                .unwrap_err()
                .message
        };
        assert_eq!(
            error("a,y\n1,0\n2,2\n", 1, bce),
            "sample 2 has class label 2, but model 'net' outputs one probability, for classes 0 \
             and 1 (labels must be 0 or 1)"
        );
        assert_eq!(
            error("a,y\n1,0\n2,10\n", 10, SCCE),
            "sample 2 has class label 10, but model 'net' outputs 10 classes (labels must be 0 \
             to 9)"
        );
        assert_eq!(
            error("a,y\n1,0\n2,1\n", 1, SCCE),
            "sample 2 has class label 1, but model 'net' outputs 1 class (labels must be 0)"
        );
        let scores: String = (0..30).map(|i| format!("{i},{}\n", 25 + 11 * i)).collect();
        assert_eq!(
            error(&format!("a,y\n{scores}"), 1, bce),
            "the labels look like real-valued targets (30 different values from 25 to 344; \
             sample 1 has 25), but binary_crossentropy is a classification loss, whose labels \
             must be 0 or 1; for real-valued targets use `loss mean_squared_error` and end the \
             model in a linear `dense(1)`"
        );
        // A few values all beyond the classes: targets too (wine-quality scores 3 to 8).
        let e = error("a,y\n1,3\n2,5\n3,8\n", 1, bce);
        assert!(e.starts_with("the labels look like real-valued targets (3 different values"));
    }

    /// `model(features, outputs)` with its input declared as `f32[B, sample...]` (only the
    /// declaration: `check_against_model` reads no further).
    fn model_taking(sample: &[usize], outputs: usize) -> Model {
        use crate::ir::shape::{Dim, Shape, TensorType};
        let mut model = model(sample.iter().product(), outputs);
        let dims = std::iter::once(Dim::Batch).chain(sample.iter().map(|&n| Dim::Fixed(n)));
        model.inputs[0].1 = TensorType::f32(Shape(dims.collect()));
        model
    }

    #[test]
    fn shaped_samples_feed_the_flat_own_and_channel_last_inputs_only() {
        // Two 2×3 "images", as IDX or npy data loads them.
        let images = Dataset {
            samples: 2,
            features: 6,
            shape: Some(vec![2, 3]),
            x: Features::F32(Buffer::from_slice(&[0.0; 12]).unwrap()),
            labels: Labels::Classes(vec![0, 1]),
            origin: "images.idx".into(),
            labels_origin: "labels.idx".into(),
            last_values: None,
            weights: None,
        };
        for sample in [&[6][..], &[2, 3], &[2, 3, 1]] {
            check_against_model(&images, &model_taking(sample, 2), SCCE).unwrap();
        }
        for sample in [&[3, 2][..], &[1, 2, 3], &[6, 1], &[2, 3, 1, 1]] {
            let e = check_against_model(&images, &model_taking(sample, 2), SCCE)
                .unwrap_err()
                .to_string();
            assert_contains(
                &e,
                "images.idx: the data's samples have shape [2, 3], but model",
            );
            assert_contains(
                &e,
                "as many values, laid out differently; samples of shape [2, 3] feed f32[B, 6], \
                 f32[B, 2, 3] or f32[B, 2, 3, 1]",
            );
        }
        let e = check_against_model(&images, &model_taking(&[2, 2], 2), SCCE)
            .unwrap_err()
            .to_string();
        assert_contains(
            &e,
            "the data has 6 features per sample (shape [2, 3]), but model 'net' takes input x: \
             f32[B, 2, 2]; samples of shape [2, 3] feed f32[B, 6]",
        );
        // An array with its channel axis already feeds that shape.
        let channels = Dataset {
            shape: Some(vec![2, 3, 1]),
            ..images.clone()
        };
        check_against_model(&channels, &model_taking(&[2, 3, 1], 2), SCCE).unwrap();
        assert!(check_against_model(&channels, &model_taking(&[2, 3], 2), SCCE).is_err());
        // CSV rows have no shape of their own: any input with as many values, as before.
        let rows = Dataset {
            shape: None,
            ..images
        };
        for sample in [&[6][..], &[3, 2], &[1, 2, 3]] {
            check_against_model(&rows, &model_taking(sample, 2), SCCE).unwrap();
        }
    }

    #[test]
    fn csv_scale_divides_features_not_labels() {
        let file = TempCsv::new("a,b,y\n16,8,3\n0,4,1\n");
        let mut set = csv_set(file.path(), LabelColumn::Last, true);
        if let DataSource::Csv { scale, .. } = &mut set.source {
            *scale = 16.0;
        }
        let data = load(&set, Path::new("/"), SCCE, DType::F32).unwrap();
        assert_eq!(data.x, vec![1.0, 0.5, 0.0, 0.25]);
        assert_eq!(data.labels, Labels::Classes(vec![3, 1]));
    }

    #[test]
    fn csv_delimiters() {
        for (delimiter, text) in [
            (';', "a;b;y\n1.5; 2;1\n3;4;0\n"),
            ('\t', "a\tb\ty\n1.5\t2\t1\n3\t4\t0\n"),
        ] {
            let file = TempCsv::new(text);
            let mut set = csv_set(file.path(), LabelColumn::Last, true);
            if let DataSource::Csv { delimiter: d, .. } = &mut set.source {
                *d = delimiter;
            }
            let data = load(&set, Path::new("/"), SCCE, DType::F32).unwrap();
            assert_eq!(data.x, vec![1.5, 2.0, 3.0, 4.0], "{delimiter:?}");
            assert_eq!(data.labels, Labels::Classes(vec![1, 0]));
        }
        // With the default comma, a semicolon file is one column.
        let e = error_text("a;b;y\n1;2;1\n", LabelColumn::Last, true, SCCE);
        assert_contains(&e, "at least 2");
    }

    #[test]
    fn csv_digits() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
        let mut set = csv_set("data/digits.csv", LabelColumn::Last, true);
        if let DataSource::Csv { scale, .. } = &mut set.source {
            *scale = 16.0;
        }
        let data = load(&set, &base, SCCE, DType::F32).unwrap();
        assert_eq!((data.samples, data.features), (1797, 64));
        assert!(
            data.x
                .as_f32()
                .unwrap()
                .iter()
                .all(|v| (0.0..=1.0).contains(v))
        );
        check_against_model(&data, &model(64, 10), SCCE).unwrap();
    }

    #[test]
    fn validation_split_takes_the_last_samples() {
        let data = load_text(
            "a,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n7,0\n",
            LabelColumn::Last,
            true,
            SCCE,
        )
        .unwrap();
        // Keras: split_at = floor(7 · 0.8) = 5.
        let (train, validation) = data.clone().split_off_validation(0.2).unwrap();
        assert_eq!((train.samples, validation.samples), (5, 2));
        assert_eq!(train.x, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(validation.x, vec![6.0, 7.0]);
        assert_eq!(validation.labels, Labels::Classes(vec![1, 0]));
        assert_eq!(train.labels.samples(), 5);
        let (train, validation) = data.clone().split_off_validation(0.5).unwrap();
        assert_eq!((train.samples, validation.samples), (3, 4));
        // In f64 as Keras: floor(10 · (1 - 0.2)) = 8, not 7.
        let ten = load_text(
            &format!("a,y\n{}", "1,0\n".repeat(10)),
            LabelColumn::Last,
            true,
            SCCE,
        )
        .unwrap();
        let (train, _) = ten.split_off_validation(0.2).unwrap();
        assert_eq!(train.samples, 8);
        let e = data.split_off_validation(1e-20).unwrap_err().to_string();
        assert_contains(
            &e,
            "validation_split 1e-20 of 7 samples leaves 7 for training and 0",
        );
        let one = load_text("a,y\n1,0\n", LabelColumn::Last, true, SCCE).unwrap();
        let e = one.split_off_validation(0.5).unwrap_err().to_string();
        assert_contains(
            &e,
            "validation_split 0.5 of 1 sample leaves 0 for training and 1 for validation",
        );
        let targets = load_text("a,y\n1,0.5\n2,1.5\n", LabelColumn::Last, true, MSE).unwrap();
        let (train, validation) = targets.split_off_validation(0.5).unwrap();
        assert_eq!(
            validation.labels,
            Labels::Targets {
                width: 1,
                values: vec![1.5]
            }
        );
        assert_eq!(train.x, vec![1.0]);
    }

    #[test]
    fn display_forms() {
        let e = DataError::at_cell("f.csv", 3, 2, "bad");
        assert_eq!(e.to_string(), "f.csv: line 3, column 2: bad");
        let e = DataError::at_line("f.csv", 3, "bad");
        assert_eq!(e.to_string(), "f.csv: line 3: bad");
        let e = DataError::new("f.csv", "bad");
        assert_eq!(e.to_string(), "f.csv: bad");
    }
}
