//! `predict MODEL on DATA to PATH`: the model's output for every sample, written as CSV or NPY
//! (by the path's extension). With data loading and checkpoints, the runtime's only file access.
//!
//! For a classifier (a softmax output, or any model trained with
//! `sparse_categorical_crossentropy`) the output is the class probabilities — Keras's
//! `model.predict` — and the predicted class is their argmax (the first on ties):
//!
//! * CSV: a header `prob_0,…,prob_{K-1},class`, then one row per sample in data order. For
//!   text data (`text_csv`), whose classes have names, one more column named as the data's
//!   label column (e.g. `topic`; `class_name` if that is `class`) holds the class's name.
//! * NPY: `PATH` holds the probabilities as `float32 [samples, K]`, and `STEM_classes.npy`
//!   beside it the predicted classes as `int64 [samples]`.
//!
//! For a regression model the output is written as it is: CSV columns `output_0,…`, or one
//! `float32 [samples, M]` array, and no classes.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use ndarray_npy::WriteNpyExt;

use super::data::DataError;
use super::train::argmax;
use crate::settings::PredictFormat;

/// Predictions for a data set, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    pub samples: usize,
    /// Values per sample: classes, or output width.
    pub width: usize,
    /// Probabilities (classifiers) or outputs (regression), `[samples, width]`.
    pub values: Vec<f32>,
    /// The argmax of each row, for classifiers.
    pub classes: Option<Vec<i64>>,
    /// For classes with names (text labels): the CSV column they go in (the data's label
    /// column), and each class's name.
    pub class_names: Option<(String, Vec<String>)>,
}

impl Predictions {
    /// From the forward pass's scores. `logits`: the scores are logits of a softmax output, so
    /// each row is turned into probabilities; `classifier`: each row gets a predicted class.
    pub fn from_scores(scores: Vec<f32>, width: usize, logits: bool, classifier: bool) -> Self {
        let width = width.max(1);
        let samples = scores.len() / width;
        let mut values = scores;
        if logits {
            for row in values.chunks_exact_mut(width) {
                softmax_in_place(row);
            }
        }
        let classes = classifier.then(|| {
            values
                .chunks_exact(width)
                .map(|row| argmax(row) as i64)
                .collect()
        });
        Predictions {
            samples,
            width,
            values,
            classes,
            class_names: None,
        }
    }

    /// The CSV text (see the module comment).
    pub fn to_csv(&self) -> String {
        let prefix = if self.classes.is_some() {
            "prob"
        } else {
            "output"
        };
        let mut header: Vec<String> = (0..self.width).map(|i| format!("{prefix}_{i}")).collect();
        if self.classes.is_some() {
            header.push("class".to_string());
        }
        let names = self.class_names.as_ref().filter(|_| self.classes.is_some());
        if let Some((column, _)) = names {
            // A label column called `class` would repeat the index column's name.
            header.push(
                if column == "class" {
                    "class_name"
                } else {
                    column
                }
                .to_string(),
            );
        }
        let mut out = header.join(",") + "\n";
        for (index, row) in self.values.chunks_exact(self.width).enumerate() {
            let mut cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            if let Some(classes) = &self.classes {
                cells.push(classes[index].to_string());
                if let Some((_, names)) = names {
                    // An output beyond the named classes has only its index.
                    let class = classes[index] as usize;
                    cells.push(names.get(class).map_or(class.to_string(), |n| csv_cell(n)));
                }
            }
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// A CSV cell holding `text`: quoted when it holds a comma, quote or line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Softmax of one row, in f64 for accuracy, with the maximum subtracted for stability.
fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let exps: Vec<f64> = row.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    for (v, e) in row.iter_mut().zip(exps) {
        *v = (e / sum) as f32;
    }
}

/// Where the predicted classes go for NPY output: `STEM_classes.npy` beside `path`.
pub fn classes_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}_classes.npy"))
}

/// Writes the predictions to `path` (and, for NPY classifiers, the classes beside it).
pub fn write(
    path: &Path,
    format: PredictFormat,
    predictions: &Predictions,
) -> Result<(), DataError> {
    let failed = |path: &Path, e: &dyn std::fmt::Display| {
        DataError::new(
            &path.display().to_string(),
            format!("cannot write the predictions: {e}"),
        )
    };
    match format {
        PredictFormat::Csv => {
            std::fs::write(path, predictions.to_csv()).map_err(|e| failed(path, &e))
        }
        PredictFormat::Npy => {
            let values = Array2::from_shape_vec(
                (predictions.samples, predictions.width),
                predictions.values.clone(),
            )
            .map_err(|e| failed(path, &e))?;
            let file = std::fs::File::create(path).map_err(|e| failed(path, &e))?;
            values
                .write_npy(std::io::BufWriter::new(file))
                .map_err(|e| failed(path, &e))?;
            if let Some(classes) = &predictions.classes {
                let classes_path = classes_path(path);
                let file =
                    std::fs::File::create(&classes_path).map_err(|e| failed(&classes_path, &e))?;
                Array1::from_vec(classes.clone())
                    .write_npy(std::io::BufWriter::new(file))
                    .map_err(|e| failed(&classes_path, &e))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_become_probabilities_and_classes() {
        let p = Predictions::from_scores(vec![0.0, 0.0, 1.0, 3.0, 1.0, 1.0], 3, true, true);
        assert_eq!(p.samples, 2);
        for row in p.values.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert_eq!(p.classes, Some(vec![2, 0]));
        let csv = p.to_csv();
        assert!(csv.starts_with("prob_0,prob_1,prob_2,class\n"), "{csv}");
        assert!(csv.lines().nth(1).unwrap().ends_with(",2"), "{csv}");
    }

    #[test]
    fn named_classes_get_a_column_of_names() {
        let mut p = Predictions::from_scores(vec![0.0, 5.0, 5.0, 0.0], 2, true, true);
        p.class_names = Some(("topic".into(), vec!["art".into(), "a, b".into()]));
        let csv = p.to_csv();
        assert!(csv.starts_with("prob_0,prob_1,class,topic\n"), "{csv}");
        assert!(csv.contains(",1,\"a, b\"\n"), "{csv}");
        assert!(csv.ends_with(",0,art\n"), "{csv}");
    }

    #[test]
    fn regression_outputs_are_written_as_they_are() {
        let p = Predictions::from_scores(vec![1.5, -2.0], 1, false, false);
        assert_eq!(p.to_csv(), "output_0\n1.5\n-2\n");
    }
}
