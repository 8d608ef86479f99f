//! Categories in CSV files: Keras's `StringLookup` over a feature column of strings, and class
//! names in a label column.
//!
//! * A categorical column's vocabulary is its distinct values in the *training* rows (those the
//!   fit's `test_split` and `validation_split` leave for training), the most frequent first and
//!   equal counts in byte order of the value (as `text_csv`'s tokens: the vocabulary depends on
//!   the values, not the order of the rows). Index 0 is `[UNK]`, a value the training rows never
//!   held (Keras's one OOV index, `num_oov_indices=1`), then the vocabulary from 1.
//! * `encoding: "one_hot"` makes a column `vocabulary + 1` features, `[UNK]`'s first (Keras's
//!   `output_mode="one_hot"`); `"index"` one feature, the index (`output_mode="int"`).
//! * A missing cell (empty, `NA`, `NaN`) is an error unless the source's `missing` fills gaps:
//!   then it is `[UNK]`.
//! * Class names: a label column none of whose cells is a number holds class names; its classes
//!   are the distinct names in byte order (scikit-learn's `LabelEncoder`; `text_csv`'s rule),
//!   taken from every row of the file a fit trains on, held-out rows included.
//!
//! The vocabulary stays with the model, in checkpoints and bundles, so that evaluation and
//! prediction on other files encode them the same way.

use std::collections::HashMap;

use super::*;
use crate::settings::CategoryEncoding;

/// What a model keeps of the CSV it was trained on: each categorical column's vocabulary and
/// the class names of a label column of names.
#[derive(Clone, Debug, PartialEq)]
pub struct TableVocabulary {
    /// The feature columns read, numeric and categorical: before encoding, a sample has this
    /// many.
    pub features: usize,
    /// In the order of their positions.
    pub columns: Vec<CategoryColumn>,
    pub encoding: CategoryEncoding,
    /// The label column's name and its class names in byte order, when it holds names.
    pub classes: Option<(String, Vec<String>)>,
}

/// One categorical column.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryColumn {
    /// Its header name, or its zero-based index as text in a file without a header.
    pub name: String,
    /// Its place among the feature columns read (0-based).
    pub position: usize,
    /// The values with indices 1, 2, …; index 0 is `[UNK]`.
    pub values: Vec<String>,
}

/// The index of a value outside the vocabulary (Keras's `[UNK]`).
pub const UNKNOWN: usize = 0;

impl CategoryColumn {
    /// The vocabulary of `cells`: distinct non-missing values, the most frequent first, equal
    /// counts in byte order.
    pub fn adapt<'a>(
        name: String,
        position: usize,
        cells: impl Iterator<Item = &'a str>,
    ) -> CategoryColumn {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for cell in cells.filter(|c| !super::timeseries::is_missing(c)) {
            *counts.entry(cell).or_default() += 1;
        }
        let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
        ranked.sort_by(|(a, m), (b, n)| n.cmp(m).then_with(|| a.cmp(b)));
        CategoryColumn {
            name,
            position,
            values: ranked.into_iter().map(|(v, _)| v.to_string()).collect(),
        }
    }

    /// Value → index.
    pub fn index(&self) -> HashMap<&str, usize> {
        (self.values.iter().enumerate())
            .map(|(i, v)| (v.as_str(), i + 1))
            .collect()
    }

    /// The features it becomes.
    pub fn width(&self, encoding: CategoryEncoding) -> usize {
        match encoding {
            CategoryEncoding::OneHot => self.values.len() + 1,
            CategoryEncoding::Index => 1,
        }
    }
}

impl TableVocabulary {
    /// Features per sample once encoded.
    pub fn width(&self) -> usize {
        let encoded: usize = self.columns.iter().map(|c| c.width(self.encoding)).sum();
        self.features - self.columns.len() + encoded
    }

    /// Each feature column's first encoded feature and how many it becomes, in column order.
    fn layout(&self) -> Vec<(usize, usize)> {
        let mut at = 0;
        (0..self.features)
            .map(|position| {
                let width = (self.columns.iter())
                    .find(|c| c.position == position)
                    .map_or(1, |c| c.width(self.encoding));
                at += width;
                (at - width, width)
            })
            .collect()
    }

    /// The encoded features that come from categories (not scaled, and one-hot ones not
    /// standardized).
    pub fn category_features(&self) -> Vec<usize> {
        let layout = self.layout();
        (self.columns.iter())
            .flat_map(|c| {
                let (start, width) = layout[c.position];
                start..start + width
            })
            .collect()
    }

    /// What a sample's features are, for a message about their number: "3 numeric, 'island'
    /// as 4 (3 values and [UNK]), 'sex' as 3 (2 values and [UNK])".
    pub fn describe(&self) -> String {
        let numeric = self.features - self.columns.len();
        let mut parts = vec![format!("{numeric} numeric")];
        for column in &self.columns {
            parts.push(match self.encoding {
                CategoryEncoding::OneHot => format!(
                    "'{}' one-hot as {} ({} value{} and [UNK])",
                    clip(&column.name),
                    column.width(self.encoding),
                    column.values.len(),
                    if column.values.len() == 1 { "" } else { "s" }
                ),
                CategoryEncoding::Index => format!("'{}' as its index", clip(&column.name)),
            });
        }
        parts.join(", ")
    }

    /// Checks a vocabulary read from a checkpoint against the model it loads into: the encoded
    /// width is the model's input width, and each class has an output.
    pub fn check_model(
        &self,
        input_features: usize,
        classes: usize,
        model: &str,
        origin: &str,
    ) -> Result<(), DataError> {
        if !self.columns.is_empty() && self.width() != input_features {
            return Err(DataError::new(
                origin,
                format!(
                    "the checkpoint's categories make {} features per sample ({}), but model \
                     '{model}' takes {input_features}",
                    self.width(),
                    self.describe()
                ),
            ));
        }
        if let Some((_, names)) = &self.classes
            && names.len() > classes
        {
            return Err(DataError::new(
                origin,
                format!(
                    "the checkpoint has {} class names, but model '{model}' has {classes} \
                     class{}",
                    names.len(),
                    if classes == 1 { "" } else { "es" }
                ),
            ));
        }
        Ok(())
    }
}

/// The rows of a data set that train, given its labels and its number of rows.
pub type TrainingRows<'a> = &'a dyn Fn(&Labels, usize) -> Result<Vec<usize>, DataError>;

/// Where a CSV source's categories and class names come from.
#[derive(Clone, Copy)]
pub enum Tabular<'a> {
    /// Adapted to this data: class names from every row, each categorical column's vocabulary
    /// from the rows the function picks as training rows, given the labels and the number of
    /// rows (the fit's splits, run over row numbers).
    Adapt(TrainingRows<'a>),
    /// The model's, from an earlier fit or a checkpoint; `None`: it has none.
    Keep(Option<&'a TableVocabulary>),
}

impl Tabular<'_> {
    /// Every row trains.
    pub const ALL_ROWS: Tabular<'static> = Tabular::Adapt(&|_, rows| Ok((0..rows).collect()));
}

/// `cells` holds class names rather than class numbers: none of them reads as a number.
pub(super) fn holds_names<'a>(mut cells: impl Iterator<Item = &'a str>) -> bool {
    cells.all(|c| c.is_empty() || c.parse::<f64>().is_err())
}

/// The distinct names of `cells` in byte order.
pub(super) fn class_names<'a>(cells: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = cells
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}
