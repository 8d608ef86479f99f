//! Metrics accumulated over the batches of an epoch or an evaluation, as Keras reports them at
//! the end: accuracy, top-k accuracy, macro precision and recall for classifiers; mean absolute
//! and squared error for regression. Each batch adds its outputs; `finish` gives the values in
//! the order the `fit` lists the metrics.

use super::train::argmax;
use crate::settings::Metric;

/// Running counts for a list of metrics.
pub struct Metrics {
    metrics: Vec<Metric>,
    samples: usize,
    correct: usize,
    /// Per top-k metric (in `metrics` order): samples whose label is among the k best.
    top_k: Vec<usize>,
    /// Per class: [true positives, predicted, actual].
    per_class: Vec<[usize; 3]>,
    abs_error: f64,
    sq_error: f64,
    values: usize,
}

impl Metrics {
    pub fn new(metrics: &[Metric]) -> Metrics {
        Metrics {
            metrics: metrics.to_vec(),
            samples: 0,
            correct: 0,
            top_k: vec![0; metrics.len()],
            per_class: Vec::new(),
            abs_error: 0.0,
            sq_error: 0.0,
            values: 0,
        }
    }

    /// A batch of classifier scores (`[rows, classes]`, row-major) and each row's label.
    pub fn add_classes(&mut self, scores: &[f32], rows: usize, labels: impl Iterator<Item = i32>) {
        let classes = scores.len() / rows.max(1);
        if classes == 0 {
            return;
        }
        // Per-class counts and top-k only for the metrics that read them: a step of a small
        // model takes microseconds, and this tally runs after every one.
        let per_class = (self.metrics.iter())
            .any(|m| matches!(m, Metric::Precision { .. } | Metric::Recall { .. }));
        let top_k = (self.metrics.iter()).any(|m| matches!(m, Metric::TopKAccuracy { .. }));
        if per_class && self.per_class.len() < classes {
            self.per_class.resize(classes, [0; 3]);
        }
        for (row, label) in scores.chunks_exact(classes).zip(labels) {
            let predicted = argmax(row);
            let label = label as usize;
            self.samples += 1;
            self.correct += usize::from(predicted == label);
            if per_class {
                if predicted == label {
                    self.per_class[label][0] += 1;
                }
                self.per_class[predicted][1] += 1;
                if let Some(counts) = self.per_class.get_mut(label) {
                    counts[2] += 1;
                }
            }
            if !top_k {
                continue;
            }
            for (slot, metric) in self.metrics.iter().enumerate() {
                if let Metric::TopKAccuracy { k } = metric {
                    // The label is among the k best when fewer than k scores beat it (Keras's
                    // in_top_k; ties count in the label's favour).
                    let score = row.get(label).copied().unwrap_or(f32::NEG_INFINITY);
                    let better = row.iter().filter(|&&s| s > score).count();
                    if better < *k {
                        self.top_k[slot] += 1;
                    }
                }
            }
        }
    }

    /// A batch of regression outputs and targets, both `[rows, width]` row-major.
    pub fn add_targets(&mut self, outputs: &[f32], targets: &[f32]) {
        for (&o, &t) in outputs.iter().zip(targets) {
            let error = f64::from(o) - f64::from(t);
            self.abs_error += error.abs();
            self.sq_error += error * error;
        }
        self.values += outputs.len().min(targets.len());
    }

    /// The metrics' values, named as Keras shows them.
    pub fn finish(&self) -> Vec<(&'static str, f64)> {
        let samples = self.samples.max(1) as f64;
        let values = self.values.max(1) as f64;
        // Macro average over the classes that occur in the labels or the predictions; a class
        // never predicted has precision 0 (scikit-learn's zero_division=0).
        let macro_average = |ratio: &dyn Fn(&[usize; 3]) -> f64| {
            let present: Vec<&[usize; 3]> = self
                .per_class
                .iter()
                .filter(|c| c[1] > 0 || c[2] > 0)
                .collect();
            if present.is_empty() {
                return 0.0;
            }
            present.iter().map(|c| ratio(c)).sum::<f64>() / present.len() as f64
        };
        let class_1 = self.per_class.get(1).copied().unwrap_or([0; 3]);
        let fraction = |num: usize, den: usize| {
            if den == 0 {
                0.0
            } else {
                num as f64 / den as f64
            }
        };
        self.metrics
            .iter()
            .enumerate()
            .map(|(slot, metric)| {
                let value = match metric {
                    Metric::SparseCategoricalAccuracy => self.correct as f64 / samples,
                    Metric::TopKAccuracy { .. } => self.top_k[slot] as f64 / samples,
                    // Keras's binary Precision()/Recall(): class 1 alone, 0 when nothing
                    // counts (its divide_no_nan).
                    Metric::Precision { binary: true } => fraction(class_1[0], class_1[1]),
                    Metric::Recall { binary: true } => fraction(class_1[0], class_1[2]),
                    Metric::Precision { binary: false } => macro_average(&|c| fraction(c[0], c[1])),
                    Metric::Recall { binary: false } => macro_average(&|c| fraction(c[0], c[2])),
                    Metric::MeanAbsoluteError => self.abs_error / values,
                    Metric::MeanSquaredError => self.sq_error / values,
                };
                (metric.display_name(), value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics_match_a_hand_count() {
        let mut m = Metrics::new(&[
            Metric::SparseCategoricalAccuracy,
            Metric::TopKAccuracy { k: 2 },
            Metric::Precision { binary: false },
            Metric::Recall { binary: false },
        ]);
        // Predictions: 0, 1, 1, 2; labels: 0, 1, 2, 0.
        let scores = [
            0.9, 0.05, 0.05, //
            0.1, 0.8, 0.1, //
            0.2, 0.5, 0.3, //
            0.3, 0.1, 0.6,
        ];
        m.add_classes(&scores[..6], 2, [0, 1].into_iter());
        m.add_classes(&scores[6..], 2, [2, 0].into_iter());
        let values: Vec<f64> = m.finish().iter().map(|&(_, v)| v).collect();
        assert_eq!(values[0], 0.5);
        // Top 2: rows 1, 2 and 3 have the label among their two best; row 4's label 0 (0.3) is
        // second after 0.6.
        assert_eq!(values[1], 1.0);
        // Precision per class: 0: 1/1, 1: 1/2, 2: 0/1 → 0.5. Recall: 0: 1/2, 1: 1/1, 2: 0/1.
        assert!((values[2] - 0.5).abs() < 1e-12);
        assert!((values[3] - 0.5).abs() < 1e-12);
    }

    /// Binary cross-entropy's scores are `[0, logit]` per sample: class 1 when the logit is
    /// above 0 (a probability above 0.5). Keras's `Precision()`/`Recall()` count class 1 only.
    #[test]
    fn binary_precision_and_recall_count_class_1_as_keras_does() {
        let binary = [
            Metric::Precision { binary: true },
            Metric::Recall { binary: true },
        ];
        let macro_ = [
            Metric::Precision { binary: false },
            Metric::Recall { binary: false },
        ];
        // Logits → predictions 1, 1, 1, 0, 0, 0 (σ(0) = 0.5 is not above 0.5: class 0);
        // labels 1, 1, 0, 1, 0, 0. Class 1: TP 2, predicted 3, actual 3.
        let logits = [2.0, 0.5, 1.0, -1.0, 0.0, -3.0];
        let scores: Vec<f32> = logits.iter().flat_map(|&l| [0.0, l]).collect();
        let labels = [1, 1, 0, 1, 0, 0];
        let values = |metrics: &[Metric]| -> Vec<f64> {
            let mut m = Metrics::new(metrics);
            m.add_classes(&scores, 6, labels.into_iter());
            m.finish().iter().map(|&(_, v)| v).collect()
        };
        assert_eq!(values(&binary), [2.0 / 3.0, 2.0 / 3.0]);
        // The macro average also counts class 0: TP 2, predicted 3, actual 3 → the same 2/3
        // here, so a lopsided case tells them apart: every prediction 0.
        assert_eq!(values(&macro_), [2.0 / 3.0, 2.0 / 3.0]);
        let mut m = Metrics::new(&[binary[0], binary[1], macro_[0], macro_[1]]);
        m.add_classes(&[0.0, -1.0, 0.0, -1.0, 0.0, -1.0], 3, [1, 0, 0].into_iter());
        // Class 1: TP 0, predicted 0, actual 1 → 0 and 0. Macro: class 0 precision 2/3, recall
        // 1; class 1 precision 0, recall 0 → 1/3 and 1/2.
        let got: Vec<f64> = m.finish().iter().map(|&(_, v)| v).collect();
        assert_eq!(got, [0.0, 0.0, 1.0 / 3.0, 0.5]);
    }

    #[test]
    fn regression_metrics() {
        let mut m = Metrics::new(&[Metric::MeanAbsoluteError, Metric::MeanSquaredError]);
        m.add_targets(&[1.0, 2.0], &[0.0, 4.0]);
        assert_eq!(m.finish(), [("mae", 1.5), ("mse", 2.5)]);
    }
}
