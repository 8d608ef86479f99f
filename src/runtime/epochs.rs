//! The one epoch loop every fit runs, in one process (`train`) or split across ranks
//! (`distributed`): which epochs run, each epoch's sample order, each step's count and learning
//! rate (schedule, then callbacks), the epoch's loss and training metrics, the stop at the first
//! non-finite loss, validation, the callbacks' decisions (stop, save, new rate, best weights)
//! and the best weights restored at the end. How one step runs on a batch, and who validates
//! and decides, is the `Steps` the caller passes.

use std::time::Instant;

use super::callbacks::{Callbacks, Decision};
use super::data::{DataError, Dataset, Labels};
use super::metrics::Metrics;
use super::train::{
    self, EpochReport, NonFiniteLoss, NonFiniteSource, Observer, Progress, Trained, copy,
};
use crate::codegen::CompiledStep;
use crate::ir::graph::Graph;
use crate::program::Fit;

/// How a fit's steps run. `step` is the whole compiled step: it holds the weights and optimizer
/// state whenever the loop reads them (validation, checkpoints, the best-weights snapshot).
pub(super) trait Steps {
    /// Runs the `t`-th update, at rate `lr`, on the global batch `rows`; returns the batch loss.
    fn run(&mut self, step: &mut CompiledStep, rows: &[usize], t: u64, lr: f32) -> f64;

    /// The last global batch's output scores, its `rows` rows in order, where this process
    /// tallies the training metrics (`None` elsewhere).
    fn scores<'a>(&'a self, step: &'a CompiledStep, rows: usize) -> Option<&'a [f32]>;

    /// An epoch is about to start its steps.
    fn epoch_started(&mut self, _step: &CompiledStep) -> Result<(), DataError> {
        Ok(())
    }

    /// The epoch's steps are over (all of them, or up to a non-finite loss): `step` must hold
    /// the weights and optimizer state from here on.
    fn epoch_ended(&mut self, _step: &mut CompiledStep) {}

    /// After a step whose loss is finite: a weight or optimizer state that is not, by name,
    /// where such values are checked.
    fn non_finite_value(&self, _step: &CompiledStep) -> Option<String> {
        None
    }

    /// Where the first non-finite value of the epoch's last step began, where that is looked for.
    fn non_finite_source(
        &mut self,
        _step: &mut CompiledStep,
        _epoch: &EpochSoFar,
    ) -> Option<NonFiniteSource> {
        None
    }

    /// Whether this process runs the callbacks and writes their checkpoints (rank 0).
    fn decides(&self) -> bool {
        true
    }

    /// The deciding process's decision, on this process.
    fn agree(&self, decision: Decision) -> Decision {
        decision
    }

    /// Whether the observer may stop training between steps (not when other processes would
    /// go on without this one).
    fn interruptible(&self) -> bool {
        true
    }
}

/// An epoch's steps so far, the last one's loss not finite: what replaying it needs.
pub(super) struct EpochSoFar<'a> {
    /// Each step's rows, the failing one last.
    pub batches: Vec<&'a [usize]>,
    /// Updates made before the epoch.
    pub first_count: u64,
    /// Each step's learning rate.
    pub rates: &'a [f32],
}

/// Trains epochs `fit.training.initial_epoch + 1 ..= fit.epochs` on `dataset`, starting from the
/// parameters and optimizer state already in `step`, `steps_done` updates into training. Each
/// epoch's order comes from `(fit.seed, epoch)` (`train::shuffle`), so a resumed run sees the
/// same batches as an uninterrupted one.
pub(super) fn run(
    step: &mut CompiledStep,
    graph: &Graph,
    dataset: &Dataset,
    fit: &Fit,
    steps_done: u64,
    steps: &mut dyn Steps,
    observer: &mut dyn Observer,
) -> Result<Trained, DataError> {
    let mut order: Vec<usize> = (0..dataset.samples).collect();
    // Epochs `first..=last`: none when `initial_epoch` is already `epochs` or past it (either
    // may be any number up to u64::MAX, so no `+ 1` before that is known).
    let (first, last) = if fit.training.initial_epoch < fit.epochs {
        (fit.training.initial_epoch + 1, fit.epochs)
    } else {
        (1, 0)
    };
    // Grown epoch by epoch: `epochs` may be far more than early stopping lets run.
    let mut history = Vec::new();
    let mut step_count = steps_done;
    let schedule = fit.training.schedule.as_ref();
    let mut lr = fit.optimizer.lr();
    let reports_lr =
        schedule.is_some() || fit.training.callbacks.iter().any(|c| c.def().facts.sets_lr);
    let mut callbacks = Callbacks::new(&fit.training.callbacks);
    let mut best_weights: Option<Vec<Vec<f32>>> = None;
    let snapshot = |step: &CompiledStep| -> Result<Vec<Vec<f32>>, DataError> {
        (0..graph.params.len())
            .map(|i| copy(step.param(i), "the best weights"))
            .collect()
    };
    let mut stopped_early = None;
    let mut interrupted = None;
    let mut non_finite = None;
    let steps_per_epoch = dataset.samples.div_ceil(fit.batch);

    for epoch in first..=last {
        let started = Instant::now();
        if fit.shuffle {
            train::shuffle(&mut order, fit.seed, epoch);
        }
        steps.epoch_started(step)?;
        // The rate of each of the epoch's steps, to replay it up to a non-finite loss.
        let first_count = step_count;
        let mut rates = Vec::with_capacity(steps_per_epoch);
        let mut loss_sum = 0.0f64;
        let mut tally = Metrics::new(&fit.metrics);
        let (mut done, mut seen) = (0usize, 0usize);
        for rows in order.chunks(fit.batch) {
            if let Some(schedule) = schedule {
                // Keras evaluates the schedule at the number of updates already made.
                lr = schedule.rate(step_count) as f32;
            }
            step_count += 1;
            rates.push(lr);
            let loss = steps.run(step, rows, step_count, lr);
            let value = if loss.is_finite() {
                steps.non_finite_value(step)
            } else {
                None
            };
            if !loss.is_finite() || value.is_some() {
                let so_far = EpochSoFar {
                    batches: order.chunks(fit.batch).take(done + 1).collect(),
                    first_count,
                    rates: &rates,
                };
                let source = steps.non_finite_source(step, &so_far);
                non_finite = Some(NonFiniteLoss {
                    epoch,
                    step: done + 1,
                    steps: steps_per_epoch,
                    loss,
                    value,
                    source,
                });
                break;
            }
            loss_sum += loss * rows.len() as f64;
            if !fit.metrics.is_empty()
                && let Some(scores) = steps.scores(step, rows.len())
            {
                tally_batch(&mut tally, scores, dataset, rows);
            }
            done += 1;
            seen += rows.len();
            observer.progress(&Progress {
                epoch,
                epochs: fit.epochs,
                step: done,
                steps: steps_per_epoch,
                loss: loss_sum / seen as f64,
                seconds: started.elapsed().as_secs_f64(),
            });
            if steps.interruptible() && observer.interrupted() {
                interrupted = Some((epoch, done));
                break;
            }
        }
        steps.epoch_ended(step);
        if interrupted.is_some() || non_finite.is_some() {
            // Keras on KeyboardInterrupt: the weights stay as the last step left them. After a
            // non-finite loss no callback runs, so no checkpoint of those weights is written.
            break;
        }
        let metrics = tally.finish();
        let seconds = started.elapsed().as_secs_f64();
        let mut report = EpochReport {
            epoch,
            epochs: fit.epochs,
            loss: loss_sum / dataset.samples.max(1) as f64,
            metrics,
            per_class: tally.per_class(),
            seconds,
            steps: done,
            learning_rate: None,
            validation: observer.validate(step),
        };
        let decision = if steps.decides() {
            callbacks.on_epoch_end(epoch - 1, &report, lr)
        } else {
            Decision::default()
        };
        let decision = steps.agree(decision);
        if decision.snapshot {
            best_weights = Some(snapshot(step)?);
        }
        if let Some(new) = decision.lr {
            lr = new;
        }
        if reports_lr {
            report.learning_rate = Some(f64::from(lr));
        }
        observer.epoch(&report);
        if steps.decides() {
            for path in &decision.save {
                observer.save(path, step, step_count, epoch)?;
            }
        }
        history.push(report);
        if decision.stop {
            stopped_early = Some(epoch);
            break;
        }
    }
    // Decided from the settings alone, so every rank knows it.
    if callbacks.restores_best_weights()
        && interrupted.is_none()
        && non_finite.is_none()
        && let Some(best) = best_weights
    {
        for (index, values) in best.iter().enumerate() {
            step.param_mut(index).copy_from_slice(values);
        }
    }
    Ok(Trained {
        history,
        steps: step_count,
        stopped_early,
        interrupted,
        non_finite,
    })
}

/// Adds a global batch's scores (its rows in order) to the tally.
fn tally_batch(tally: &mut Metrics, scores: &[f32], dataset: &Dataset, rows: &[usize]) {
    match &dataset.labels {
        Labels::Classes(labels) => {
            tally.add_classes(scores, rows.len(), rows.iter().map(|&r| labels[r]));
        }
        Labels::Targets { width, values } => {
            for (output, &r) in scores.chunks_exact(*width).zip(rows) {
                tally.add_targets(output, &values[r * width..(r + 1) * width]);
            }
        }
    }
}
