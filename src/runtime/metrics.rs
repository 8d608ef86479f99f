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
        let per_class =
            (self.metrics.iter()).any(|m| matches!(m, Metric::Precision | Metric::Recall));
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
                    Metric::Precision => macro_average(&|c| fraction(c[0], c[1])),
                    Metric::Recall => macro_average(&|c| fraction(c[0], c[2])),
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
            Metric::Precision,
            Metric::Recall,
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

    #[test]
    fn regression_metrics() {
        let mut m = Metrics::new(&[Metric::MeanAbsoluteError, Metric::MeanSquaredError]);
        m.add_targets(&[1.0, 2.0], &[0.0, 4.0]);
        assert_eq!(m.finish(), [("mae", 1.5), ("mse", 2.5)]);
    }
}
