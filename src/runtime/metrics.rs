//! Metrics accumulated over the batches of an epoch or an evaluation, as Keras reports them at
//! the end: accuracy, top-k accuracy, precision, recall, F1 and ROC AUC for classifiers; mean
//! absolute and squared error for regression. Each batch adds its outputs; `finish` gives the
//! values in the order the `fit` lists the metrics, `per_class` each class's precision, recall
//! and F1 for the history.

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
    /// For `auc`: its confusion counts.
    auc: Option<RocCounts>,
}

/// Keras's `AUC` state: how many positive and negative predictions exceed each threshold, kept
/// as a histogram over the gaps between thresholds (entry `k`: predictions above exactly `k` of
/// them), so each prediction costs one binary search.
struct RocCounts {
    /// Ascending: just below 0, `i / (n − 1)` for `i` in `1..n − 1`, just above 1 (float32, as
    /// Keras compares them).
    thresholds: Vec<f32>,
    positives: Vec<u64>,
    negatives: Vec<u64>,
    binary: bool,
}

/// Keras's `backend.epsilon()`.
const EPSILON: f64 = 1e-7;

impl RocCounts {
    fn new(n: usize, binary: bool) -> RocCounts {
        let mut thresholds = vec![(0.0 - EPSILON) as f32];
        thresholds.extend((1..n - 1).map(|i| (i as f64 / (n - 1) as f64) as f32));
        thresholds.push((1.0 + EPSILON) as f32);
        RocCounts {
            thresholds,
            positives: vec![0; n + 1],
            negatives: vec![0; n + 1],
            binary,
        }
    }

    fn add(&mut self, probability: f32, positive: bool) {
        let above = self.thresholds.partition_point(|&t| t < probability);
        let counts = if positive {
            &mut self.positives
        } else {
            &mut self.negatives
        };
        counts[above] += 1;
    }

    /// The trapezoidal sum over the ROC points, threshold by threshold (Keras's
    /// `summation_method="interpolation"` for the ROC curve).
    fn area(&self) -> f64 {
        let n = self.thresholds.len();
        // Predictions above threshold i: those above more than i thresholds.
        let above = |counts: &[u64]| -> Vec<f64> {
            (0..n)
                .map(|i| counts[i + 1..].iter().sum::<u64>() as f64)
                .collect()
        };
        let (tp, fp) = (above(&self.positives), above(&self.negatives));
        let p: u64 = self.positives.iter().sum();
        let q: u64 = self.negatives.iter().sum();
        let rate = |x: f64, total: u64| if total == 0 { 0.0 } else { x / total as f64 };
        (0..n - 1)
            .map(|i| {
                let (tpr, tpr_next) = (rate(tp[i], p), rate(tp[i + 1], p));
                let (fpr, fpr_next) = (rate(fp[i], q), rate(fp[i + 1], q));
                (fpr - fpr_next) * (tpr + tpr_next) / 2.0
            })
            .sum()
    }
}

/// Keras's `FBetaScore` with β = 1 from one class's counts, `[true positives, predicted,
/// actual]`, with its epsilons.
fn f1(counts: &[usize; 3]) -> f64 {
    let [tp, predicted, actual] = counts.map(|c| c as f64);
    let precision = tp / (predicted + EPSILON);
    let recall = tp / (actual + EPSILON);
    2.0 * precision * recall / (precision + recall + EPSILON)
}

/// The class probabilities of one row of scores: the softmax of a classifier's logits (for a
/// binary classifier's `[0, logit]`, class 1's is the sigmoid of the logit).
fn probabilities(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = row.iter().map(|&s| f64::from(s - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / total) as f32).collect()
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
            auc: metrics.iter().find_map(|m| match *m {
                Metric::Auc { thresholds, binary } => Some(RocCounts::new(thresholds, binary)),
                _ => None,
            }),
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
        let per_class = (self.metrics.iter()).any(|m| {
            matches!(
                m,
                Metric::Precision { .. } | Metric::Recall { .. } | Metric::F1Score { .. }
            )
        });
        let top_k = (self.metrics.iter()).any(|m| matches!(m, Metric::TopKAccuracy { .. }));
        if per_class && self.per_class.len() < classes {
            self.per_class.resize(classes, [0; 3]);
        }
        for (row, label) in scores.chunks_exact(classes).zip(labels) {
            let predicted = argmax(row);
            let label = label as usize;
            if let Some(roc) = &mut self.auc {
                let p = probabilities(row);
                if roc.binary {
                    roc.add(p.get(1).copied().unwrap_or(0.0), label == 1);
                } else {
                    for (class, &p) in p.iter().enumerate() {
                        roc.add(p, class == label);
                    }
                }
            }
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
                    Metric::F1Score { binary: true } => f1(&class_1),
                    // Keras's macro average is over every class of the output.
                    Metric::F1Score { binary: false } => {
                        let n = self.per_class.len().max(1) as f64;
                        self.per_class.iter().map(f1).sum::<f64>() / n
                    }
                    Metric::Auc { .. } => self.auc.as_ref().map_or(0.0, RocCounts::area),
                    Metric::MeanAbsoluteError => self.abs_error / values,
                    Metric::MeanSquaredError => self.sq_error / values,
                };
                (metric.display_name(), value)
            })
            .collect()
    }
}

impl Metrics {
    /// Each class's precision, recall and F1 (for those of the fit's metrics that are
    /// macro-averaged over classes), named `precision_class_0`, …: Keras's per-class values
    /// (`F1Score(average=None)`, `Precision(class_id=…)`), for the history.
    pub fn per_class(&self) -> Vec<(String, f64)> {
        let fraction = |num: usize, den: usize| {
            if den == 0 {
                0.0
            } else {
                num as f64 / den as f64
            }
        };
        let mut out = Vec::new();
        for metric in &self.metrics {
            for (class, c) in self.per_class.iter().enumerate() {
                let value = match metric {
                    Metric::Precision { binary: false } => fraction(c[0], c[1]),
                    Metric::Recall { binary: false } => fraction(c[0], c[2]),
                    Metric::F1Score { binary: false } => f1(c),
                    _ => break,
                };
                out.push((format!("{}_class_{class}", metric.display_name()), value));
            }
        }
        out
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

    /// Binary scores `[0, logit]` for the probabilities `p`.
    fn binary_scores(p: &[f64]) -> Vec<f32> {
        p.iter()
            .flat_map(|&p| [0.0, (p / (1.0 - p)).ln() as f32])
            .collect()
    }

    fn auc_of(scores: &[f32], rows: usize, labels: &[i32], binary: bool) -> f64 {
        let auc = Metric::Auc {
            thresholds: 200,
            binary,
        };
        let mut m = Metrics::new(&[auc]);
        m.add_classes(scores, rows, labels.iter().copied());
        m.finish()[0].1
    }

    /// Keras's AUC is the exact ROC area when no positive and negative share a gap between
    /// thresholds: pairs (pos, neg) ranked right are (0.9, 0.8), (0.9, 0.2), (0.3, 0.2) of 4.
    #[test]
    fn auc_is_the_roc_area_at_keras_thresholds() {
        let scores = binary_scores(&[0.9, 0.8, 0.3, 0.2]);
        let got = auc_of(&scores, 4, &[1, 0, 1, 0], true);
        assert!((got - 0.75).abs() < 1e-12, "{got}");
        // A perfect ranking, and the reverse.
        assert!((auc_of(&scores, 4, &[1, 1, 0, 0], true) - 1.0).abs() < 1e-12);
        assert!(auc_of(&scores, 4, &[0, 0, 1, 1], true).abs() < 1e-12);
        // A positive and a negative between the same two thresholds (100/199 ≈ 0.5025 and
        // 99/199) count half, as the trapezoid between the two ROC points does in Keras.
        let scores = binary_scores(&[0.5001, 0.5002]);
        assert!((auc_of(&scores, 2, &[1, 0], true) - 0.5).abs() < 1e-12);
    }

    /// A softmax classifier's AUC counts each class's probability against the one-hot label
    /// (Keras's AUC on one-hot labels, multi_label=False): 6 predictions here.
    #[test]
    fn multiclass_auc_flattens_one_hot_labels() {
        // Logits whose softmax rows are [0.7, 0.2, 0.1] and [0.1, 0.6, 0.3].
        let rows = [[0.7f64, 0.2, 0.1], [0.1, 0.6, 0.3]];
        let scores: Vec<f32> = rows.iter().flatten().map(|p| p.ln() as f32).collect();
        // Labels 0 and 2: positives 0.7 and 0.3; negatives 0.2, 0.1, 0.1, 0.6. Pairs ranked
        // right: 0.7 beats all 4, 0.3 beats 0.2, 0.1, 0.1 → 7 of 8.
        let got = auc_of(&scores, 2, &[0, 2], false);
        assert!((got - 7.0 / 8.0).abs() < 1e-9, "{got}");
    }

    /// Keras's F1Score: 2·P·R / (P + R) with its epsilons; macro over every class.
    #[test]
    fn f1_score_and_per_class_values_match_a_hand_count() {
        let metrics = [
            Metric::F1Score { binary: false },
            Metric::Precision { binary: false },
        ];
        let mut m = Metrics::new(&metrics);
        // Predictions 0, 1, 1, 2; labels 0, 1, 2, 0 (as above): per class precision 1, 1/2, 0
        // and recall 1/2, 1, 0, so F1 2/3, 2/3, 0.
        let scores = [
            0.9, 0.05, 0.05, //
            0.1, 0.8, 0.1, //
            0.2, 0.5, 0.3, //
            0.3, 0.1, 0.6,
        ];
        m.add_classes(&scores, 4, [0, 1, 2, 0].into_iter());
        let f1 = m.finish()[0].1;
        assert!((f1 - 4.0 / 9.0).abs() < 1e-6, "{f1}");
        let per_class = m.per_class();
        let names: Vec<&str> = per_class.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "f1_score_class_0",
                "f1_score_class_1",
                "f1_score_class_2",
                "precision_class_0",
                "precision_class_1",
                "precision_class_2"
            ]
        );
        let values: Vec<f64> = per_class.iter().map(|&(_, v)| v).collect();
        for (got, want) in values
            .iter()
            .zip([2.0 / 3.0, 2.0 / 3.0, 0.0, 1.0, 0.5, 0.0])
        {
            assert!((got - want).abs() < 1e-6, "{values:?}");
        }
        // Binary: class 1 only (TP 2 of 3 predicted, 3 actual → 2/3), no per-class entries.
        let logits = [2.0, 0.5, 1.0, -1.0, 0.0, -3.0];
        let scores: Vec<f32> = logits.iter().flat_map(|&l| [0.0, l]).collect();
        let mut m = Metrics::new(&[Metric::F1Score { binary: true }]);
        m.add_classes(&scores, 6, [1, 1, 0, 1, 0, 0].into_iter());
        assert!((m.finish()[0].1 - 2.0 / 3.0).abs() < 1e-6);
        assert!(m.per_class().is_empty());
    }

    #[test]
    fn regression_metrics() {
        let mut m = Metrics::new(&[Metric::MeanAbsoluteError, Metric::MeanSquaredError]);
        m.add_targets(&[1.0, 2.0], &[0.0, 4.0]);
        assert_eq!(m.finish(), [("mae", 1.5), ("mse", 2.5)]);
    }
}
