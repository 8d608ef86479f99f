//! Evaluation: the loss and metrics of given weights on a data set, as Keras's
//! `model.evaluate(x, y)` computes them and as `fit` reports them for `validation_data`
//! (`val_loss`, `val_accuracy`).
//!
//! It runs a forward-only graph (forward pass and loss, `driver::GraphStage::Forward`), compiled
//! once, in batches over the samples in order. The weights are copied in before each evaluation;
//! the graph's parameters are in the same order as the training step's, since both are lowered
//! from the same model. Nothing here prints.

use std::ops::Range;

use super::data::{Dataset, Labels};
use super::distributed::shard;
use super::metrics::Metrics;
use super::train::{feed_features, feed_weights};
use crate::codegen::{self, CodegenConfig, CodegenError, CompiledStep};
use crate::ir::graph::Graph;
use crate::ir::lower;
use crate::settings::Metric;

/// Loss and metrics over a whole data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the samples (each batch weighted by its size).
    pub loss: f64,
    /// In the order the `fit` lists them, named as Keras shows them (`accuracy`).
    pub metrics: Vec<(&'static str, f64)>,
    /// Each class's precision, recall and F1 (`precision_class_0`, …), for the history.
    pub per_class: Vec<(String, f64)>,
    pub samples: usize,
}

/// A compiled forward pass ready to evaluate weights on data.
pub struct Evaluator {
    forward: CompiledStep,
    params: usize,
    features: usize,
    labels: Option<usize>,
    targets: Option<usize>,
    /// The sample-weight input, when the fit weighs samples.
    weights: Option<usize>,
    batch: usize,
    /// Values of `scores` per sample.
    width: usize,
}

impl Evaluator {
    /// Compiles `forward` (a graph with inputs `x` and `labels` or `targets`, and outputs `loss`
    /// and `scores`) for batches of up to `batch` samples.
    pub fn new(forward: &Graph, batch: usize) -> Result<Evaluator, CodegenError> {
        let find = |name: &str| forward.inputs.iter().position(|i| i.name == name);
        let features = find(lower::FEATURES).ok_or_else(|| CodegenError {
            message: "the evaluation graph has no feature input".into(),
        })?;
        let batch = batch.max(1);
        Ok(Evaluator {
            forward: codegen::compile(forward, &CodegenConfig { max_batch: batch })?,
            params: forward.params.len(),
            features,
            labels: find(lower::LABELS),
            targets: find(lower::TARGETS),
            weights: find(lower::SAMPLE_WEIGHTS),
            batch,
            width: forward
                .output(lower::SCORES)
                .map_or(0, |scores| forward.shape(scores).numel(1)),
        })
    }

    /// Threads the forward pass's large matrix products are split over (results do not
    /// depend on it; see `CompiledStep::set_threads`).
    pub fn set_threads(&mut self, threads: usize) {
        self.forward.set_threads(threads);
    }

    /// The forward pass's `scores` output for every sample of `dataset`, row-major (logits for
    /// a softmax model, the output otherwise), with `params` (in the graph's parameter order).
    pub fn scores(&mut self, params: &[&[f32]], dataset: &Dataset) -> Vec<f32> {
        let mut scores = Vec::new();
        self.batches(
            params,
            dataset,
            0..dataset.samples,
            &mut |forward, rows, _| {
                if let Some(batch) = forward.output(lower::SCORES, rows) {
                    scores.extend_from_slice(batch);
                }
            },
        );
        scores
    }

    /// Values of `scores` per sample.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The samples of a set of `samples` that part `part` of `parts` evaluates when the work is
    /// shared: a contiguous run of whole batches (the first `batches mod parts` parts one batch
    /// more), so that every batch is the one a single evaluation runs and its loss the same bits.
    pub fn share(&self, samples: usize, parts: usize, part: usize) -> Range<usize> {
        let batches = shard(samples.div_ceil(self.batch), parts, part);
        (batches.start * self.batch).min(samples)..(batches.end * self.batch).min(samples)
    }

    /// Each batch's loss, then every score, of `rows` (a `share`): what one part sends for
    /// `from_parts`.
    pub fn part(&mut self, params: &[&[f32]], dataset: &Dataset, rows: Range<usize>) -> Vec<f32> {
        let batches = rows.len().div_ceil(self.batch);
        let mut part = Vec::with_capacity(batches + rows.len() * self.width);
        part.resize(batches, f32::NAN);
        let mut batch = 0;
        self.batches(params, dataset, rows, &mut |forward, rows, _| {
            if let Some(loss) = forward.output(lower::LOSS, rows) {
                part[batch] = loss[0];
            }
            batch += 1;
            if let Some(scores) = forward.output(lower::SCORES, rows) {
                part.extend_from_slice(scores);
            }
        });
        part
    }

    /// How many values `part` returns for `rows`.
    pub fn part_len(&self, rows: &Range<usize>) -> usize {
        rows.len().div_ceil(self.batch) + rows.len() * self.width
    }

    /// The evaluation of the whole of `dataset` from every part (`share` of `parts`) in order,
    /// tallied batch by batch as `evaluate` does, so it is the same to the bit.
    pub fn from_parts(
        &self,
        parts: &[f32],
        parts_count: usize,
        dataset: &Dataset,
        metrics: &[Metric],
    ) -> Evaluation {
        let mut tally = Tally::new(dataset, metrics);
        let mut at = 0;
        for part in 0..parts_count {
            let rows = self.share(dataset.samples, parts_count, part);
            let batches = rows.len().div_ceil(self.batch);
            let (losses, scores) = parts[at..at + self.part_len(&rows)].split_at(batches);
            for (k, loss) in losses.iter().enumerate() {
                let start = rows.start + k * self.batch;
                let len = self.batch.min(rows.end - start);
                let first = (start - rows.start) * self.width;
                let scores = &scores[first..first + len * self.width];
                tally.add(f64::from(*loss), len, start, Some(scores));
            }
            at += self.part_len(&rows);
        }
        tally.finish()
    }

    /// The scores of the whole of `dataset` from every part in order (`part` less the losses).
    pub fn scores_from_parts(&self, parts: &[f32], parts_count: usize, samples: usize) -> Vec<f32> {
        let mut scores = Vec::with_capacity(samples * self.width);
        let mut at = 0;
        for part in 0..parts_count {
            let rows = self.share(samples, parts_count, part);
            let batches = rows.len().div_ceil(self.batch);
            scores.extend_from_slice(&parts[at + batches..at + self.part_len(&rows)]);
            at += self.part_len(&rows);
        }
        scores
    }

    /// Runs the forward pass over `rows` of `dataset` in batches from the first, handing each
    /// run to `each` with its row count and first row.
    fn batches(
        &mut self,
        params: &[&[f32]],
        dataset: &Dataset,
        rows: Range<usize>,
        each: &mut dyn FnMut(&CompiledStep, usize, usize),
    ) {
        assert_eq!(params.len(), self.params, "one slice per parameter");
        for (index, values) in params.iter().enumerate() {
            self.forward.param_mut(index).copy_from_slice(values);
        }
        let mut start = rows.start;
        while start < rows.end {
            let rows = self.batch.min(rows.end - start);
            let end = start + rows;
            feed_features(&mut self.forward, self.features, dataset, start..end);
            match &dataset.labels {
                Labels::Classes(classes) => {
                    if let Some(slot) = self.labels {
                        self.forward
                            .input_i32_mut(slot, rows)
                            .copy_from_slice(&classes[start..end]);
                    }
                }
                Labels::Targets { width, values } => {
                    if let Some(slot) = self.targets {
                        self.forward
                            .input_f32_mut(slot, rows)
                            .copy_from_slice(&values[start * width..end * width]);
                    }
                }
            }
            if let Some(slot) = self.weights {
                feed_weights(&mut self.forward, slot, dataset, start..end);
            }
            self.forward.run(rows);
            each(&self.forward, rows, start);
            start = end;
        }
    }

    /// Evaluates `params` (in the graph's parameter order) on every sample of `dataset`, which
    /// has been checked against the model.
    pub fn evaluate(
        &mut self,
        params: &[&[f32]],
        dataset: &Dataset,
        metrics: &[Metric],
    ) -> Evaluation {
        let mut tally = Tally::new(dataset, metrics);
        self.batches(
            params,
            dataset,
            0..dataset.samples,
            &mut |forward, rows, start| {
                let loss = forward
                    .output(lower::LOSS, rows)
                    .map_or(f64::NAN, |v| f64::from(v[0]));
                tally.add(loss, rows, start, forward.output(lower::SCORES, rows));
            },
        );
        tally.finish()
    }
}

/// An evaluation's sums over the batches so far.
struct Tally<'a> {
    dataset: &'a Dataset,
    loss_sum: f64,
    metrics: Metrics,
}

impl<'a> Tally<'a> {
    fn new(dataset: &'a Dataset, metrics: &[Metric]) -> Tally<'a> {
        Tally {
            dataset,
            loss_sum: 0.0,
            metrics: Metrics::new(metrics),
        }
    }

    /// The batch of `rows` samples from `start`: its mean loss and its scores.
    fn add(&mut self, loss: f64, rows: usize, start: usize, scores: Option<&[f32]>) {
        self.loss_sum += loss * rows as f64;
        if let Some(scores) = scores {
            match &self.dataset.labels {
                Labels::Classes(classes) => {
                    self.metrics.add_classes(
                        scores,
                        rows,
                        classes[start..start + rows].iter().copied(),
                    );
                }
                Labels::Targets { width, values } => {
                    self.metrics
                        .add_targets(scores, &values[start * width..(start + rows) * width]);
                }
            }
        }
    }

    fn finish(self) -> Evaluation {
        let samples = self.dataset.samples.max(1) as f64;
        Evaluation {
            loss: self.loss_sum / samples,
            metrics: self.metrics.finish(),
            per_class: self.metrics.per_class(),
            samples: self.dataset.samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::{self, GraphStage};
    use crate::ir::shape::DType;
    use crate::runtime::{data, init};
    use std::path::Path;

    const PROGRAM: &str = "data d = synthetic_classification(samples: 103, features: 5, classes: 3, seed: 2)\n\
                           model m(x: f32[B, 5]) -> f32[B, 3] { dense(8, relu); dense(3, softmax) }\n\
                           fit m on d { loss sparse_categorical_crossentropy; metrics [accuracy] }\n";

    /// Loss and accuracy of the initial weights, by hand from the parameters.
    fn reference(params: &[Vec<f32>], dataset: &Dataset) -> (f64, f64) {
        let (w1, b1, w2, b2) = (&params[0], &params[1], &params[2], &params[3]);
        let Labels::Classes(labels) = &dataset.labels else {
            panic!()
        };
        let (mut loss, mut correct) = (0.0f64, 0usize);
        let x = dataset.x.as_f32().unwrap();
        for (row, &label) in x.chunks_exact(5).zip(labels) {
            let h: Vec<f64> = (0..8)
                .map(|j| {
                    let z = (0..5)
                        .map(|i| f64::from(row[i] * w1[i * 8 + j]))
                        .sum::<f64>();
                    (z + f64::from(b1[j])).max(0.0)
                })
                .collect();
            let z: Vec<f64> = (0..3)
                .map(|k| {
                    (0..8).map(|j| h[j] * f64::from(w2[j * 3 + k])).sum::<f64>() + f64::from(b2[k])
                })
                .collect();
            let max = z.iter().cloned().fold(f64::MIN, f64::max);
            let log_sum = z.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
            loss += log_sum - z[label as usize];
            let best = (0..3).fold(0, |b, k| if z[k] > z[b] { k } else { b });
            correct += usize::from(best == label as usize);
        }
        let n = dataset.samples as f64;
        (loss / n, correct as f64 / n)
    }

    /// The forward graph of `PROGRAM`, its initial weights, its data and its metrics.
    fn initial_weights_on_the_data() -> (Graph, Vec<Vec<f32>>, Dataset, Vec<Metric>) {
        let checked = driver::check_source(PROGRAM).unwrap_or_else(|d| panic!("{d:?}"));
        let program = &checked.program;
        let fit = &program.fits[0];
        let dataset = data::load(&program.data[0], Path::new("."), fit.loss, DType::F32).unwrap();
        let forward = driver::training_graph(program, fit, GraphStage::Forward).unwrap();
        let params = init::initial_params(&forward, 3);
        (forward, params, dataset, fit.metrics.clone())
    }

    #[test]
    fn evaluation_matches_a_hand_computation_for_any_batch_size() {
        let (forward, params, dataset, metrics) = initial_weights_on_the_data();
        let slices: Vec<&[f32]> = params.iter().map(Vec::as_slice).collect();
        let (loss, accuracy) = reference(&params, &dataset);
        for batch in [1, 7, 32, 103, 500] {
            let mut evaluator = Evaluator::new(&forward, batch).unwrap();
            let result = evaluator.evaluate(&slices, &dataset, &metrics);
            assert_eq!(result.samples, 103);
            assert!(
                (result.loss - loss).abs() < 1e-4,
                "batch {batch}: {} vs {loss}",
                result.loss
            );
            let [(name, value)] = result.metrics[..] else {
                panic!("{:?}", result.metrics)
            };
            assert_eq!(name, "accuracy");
            // f32 against f64: at most one near-tie may flip.
            assert!(
                (value - accuracy).abs() <= 1.0 / 103.0,
                "batch {batch}: {value} vs {accuracy}"
            );
        }
    }

    #[test]
    fn evaluation_and_scores_from_shared_parts_are_those_of_one_evaluation() {
        let (forward, params, dataset, metrics) = initial_weights_on_the_data();
        let slices: Vec<&[f32]> = params.iter().map(Vec::as_slice).collect();
        for batch in [1, 7, 32, 103, 500] {
            let mut evaluator = Evaluator::new(&forward, batch).unwrap();
            let whole = evaluator.evaluate(&slices, &dataset, &metrics);
            let scores = evaluator.scores(&slices, &dataset);
            for parts in 1..5 {
                let mut gathered = Vec::new();
                for part in 0..parts {
                    let rows = evaluator.share(dataset.samples, parts, part);
                    assert!(rows.is_empty() || rows.start.is_multiple_of(evaluator.batch));
                    let values = evaluator.part(&slices, &dataset, rows.clone());
                    assert_eq!(values.len(), evaluator.part_len(&rows));
                    gathered.extend(values);
                }
                let shared = evaluator.from_parts(&gathered, parts, &dataset, &metrics);
                assert_eq!(shared, whole, "batch {batch}, {parts} parts");
                assert_eq!(
                    evaluator.scores_from_parts(&gathered, parts, dataset.samples),
                    scores
                );
            }
        }
    }
}
