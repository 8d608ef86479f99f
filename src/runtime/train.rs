//! Training in one process: each batch gathered into the compiled step's input buffers (with the
//! step count and this step's learning rate) and one native call per batch, under the epoch loop
//! of `epochs` (order, loss and metrics, callbacks); the epoch replayed in the interpreter to
//! name where a non-finite loss began. Also the epoch loop's vocabulary (reports, progress, the
//! observer it reports to — it never prints) and `profile`.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::data::{DataError, Dataset, Features, Labels};
use super::epochs::{self, EpochSoFar, Steps};
use super::evaluate::Evaluation;
use crate::codegen::{CompiledStep, KernelInfo};
use crate::ir::graph::Graph;
use crate::ir::{lower, optimizer};
use crate::program::Fit;

/// One epoch's results, as Keras shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// Mean loss over the epoch's samples (each batch weighted by its size, as Keras does).
    pub loss: f64,
    pub metrics: Vec<(&'static str, f64)>,
    /// Each class's precision, recall and F1 (`precision_class_0`, …), for the history.
    pub per_class: Vec<(String, f64)>,
    pub seconds: f64,
    pub steps: usize,
    /// The learning rate at the end of the epoch, when a schedule or `reduce_lr_on_plateau`
    /// changes it (Keras logs `learning_rate` then).
    pub learning_rate: Option<f64>,
    /// Loss and metrics on the validation data after the epoch (Keras's `val_loss`, `val_…`),
    /// when the fit has validation data. Not included in `seconds`.
    pub validation: Option<Evaluation>,
}

impl EpochReport {
    pub fn micros_per_step(&self) -> f64 {
        self.seconds * 1e6 / self.steps.max(1) as f64
    }
}

/// Where each per-step tensor lives among the graph's inputs.
pub(super) struct InputSlots {
    features: usize,
    labels: Option<usize>,
    targets: Option<usize>,
    weights: Option<usize>,
    step: Option<usize>,
    lr: Option<usize>,
    /// The global index of the batch's first row (dropout's masks).
    first_row: Option<usize>,
}

impl InputSlots {
    pub(super) fn of(graph: &Graph) -> InputSlots {
        let find = |name: &str| graph.inputs.iter().position(|i| i.name == name);
        InputSlots {
            features: find(lower::FEATURES).expect("a training graph has features"),
            labels: find(lower::LABELS),
            targets: find(lower::TARGETS),
            weights: find(lower::SAMPLE_WEIGHTS),
            step: find(optimizer::STEP),
            lr: find(optimizer::LR),
            first_row: find(crate::ir::dropout::FIRST_ROW),
        }
    }
}

/// Where an epoch is, after each step (for a live progress bar).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// Steps done in this epoch, and how many it has.
    pub step: usize,
    pub steps: usize,
    /// Mean loss over the epoch's samples so far.
    pub loss: f64,
    pub seconds: f64,
}

/// What the epoch loop asks of its caller.
pub trait Observer {
    /// A step has run. Called after every step, so it must be cheap.
    fn progress(&mut self, _progress: &Progress) {}
    /// Loss and metrics of the step's current weights on the validation data, if any.
    fn validate(&mut self, step: &CompiledStep) -> Option<Evaluation>;
    /// An epoch has ended (after validation and callbacks).
    fn epoch(&mut self, report: &EpochReport);
    /// Whether the user asked training to stop (Ctrl-C at the REPL). Asked after every step,
    /// so it must be cheap.
    fn interrupted(&mut self) -> bool {
        false
    }
    /// A `checkpoint` callback asks for the current weights and optimizer state at `path`;
    /// `steps` updates made so far, `epoch` epochs trained.
    fn save(
        &mut self,
        path: &str,
        step: &CompiledStep,
        steps: u64,
        epoch: usize,
    ) -> Result<(), DataError>;
}

/// How a fit's training ended.
#[derive(Clone, Debug)]
pub struct Trained {
    pub history: Vec<EpochReport>,
    /// Updates made, counting those before the fit (Keras's `optimizer.iterations`).
    pub steps: u64,
    /// The epoch (1-based) after which early stopping ended training.
    pub stopped_early: Option<usize>,
    /// The epoch (1-based) and step in it after which the user stopped training; that epoch
    /// is not in `history`, its updates are in the weights.
    pub interrupted: Option<(usize, usize)>,
    /// Where the loss stopped being a finite number, which ended training (Keras's
    /// `TerminateOnNaN`, always on): that epoch is not in `history`, no callback saw it, and the
    /// weights hold that step's update (made from a non-finite loss), so they are not to be used.
    pub non_finite: Option<NonFiniteLoss>,
}

/// What the epoch loop checks for NaN and infinities after every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// The batch loss (free: it is already computed). Keras's `TerminateOnNaN`.
    Loss,
    /// The loss, every weight and every optimizer state (`kiln run --check-numerics`): a
    /// gradient can turn weights non-finite while the loss that step is still a number.
    EveryValue,
}

/// The first step whose batch loss (or, under `Checks::EveryValue`, a weight or optimizer
/// state after it) was NaN or infinite.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteLoss {
    /// 1-based.
    pub epoch: usize,
    /// 1-based, within the epoch.
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    /// The weight or optimizer state that was not finite, when the loss was.
    pub value: Option<String>,
    /// Where the first non-finite value arose, found by replaying the epoch up to that step and
    /// running it in the interpreter with float32 rounding; `None` when the interpreter's
    /// float32 emulation stays finite (the compiled step's own rounding differs in the last bits).
    pub source: Option<NonFiniteSource>,
}

/// The first IR node whose value is NaN or infinite in the failing step.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteSource {
    /// The op as printed IR names it, with its attributes; for a weight or optimizer state
    /// already non-finite when the step began, its name (and `inputs` is empty).
    pub op: String,
    pub span: Option<crate::diag::Span>,
    /// The first non-finite value it produced.
    pub value: f64,
    /// The smallest and largest value of each input.
    pub inputs: Vec<(f64, f64)>,
}

/// The sample order of `epoch` (1-based): a permutation drawn from `(seed, epoch)` alone, so a
/// run resumed at any epoch sees the same batches as an uninterrupted one without replaying the
/// shuffles before it (`initial_epoch 1000000000000` replayed one per skipped epoch, for days).
pub fn shuffle(order: &mut [usize], seed: u64, epoch: usize) {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    // A separate stream from weight initialisation, which uses the same seed; each epoch is its
    // own ChaCha stream of that key.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5348_5546_464c_4521);
    rng.set_stream(epoch as u64);
    order.shuffle(&mut rng);
}

/// Trains epochs `fit.training.initial_epoch + 1 ..= fit.epochs` on `dataset` in this process
/// (`epochs::run`), starting from the parameters and optimizer state already in `step`,
/// `steps_done` updates into training.
pub fn train(
    step: &mut CompiledStep,
    graph: &Graph,
    dataset: &Dataset,
    fit: &Fit,
    steps_done: u64,
    checks: Checks,
    observer: &mut dyn Observer,
) -> Result<Trained, DataError> {
    let mut steps = OneProcess {
        graph,
        slots: InputSlots::of(graph),
        dataset,
        checks,
        epoch_start: None,
    };
    epochs::run(step, graph, dataset, fit, steps_done, &mut steps, observer)
}

/// Each step one native call of the whole compiled step, on the whole batch.
struct OneProcess<'a> {
    graph: &'a Graph,
    slots: InputSlots,
    dataset: &'a Dataset,
    checks: Checks,
    /// What the epoch started from, to replay it up to a step whose loss is not finite (one
    /// copy of the weights per epoch).
    epoch_start: Option<Snapshot>,
}

impl Steps for OneProcess<'_> {
    fn run(&mut self, step: &mut CompiledStep, rows: &[usize], t: u64, lr: f32) -> f64 {
        gather(step, &self.slots, self.dataset, (rows, 0), t, lr);
        step.run(rows.len());
        step.output(lower::LOSS, rows.len())
            .map_or(f64::NAN, |v| f64::from(v[0]))
    }

    fn scores<'a>(&'a self, step: &'a CompiledStep, rows: usize) -> Option<&'a [f32]> {
        step.output(lower::SCORES, rows)
    }

    fn epoch_started(&mut self, step: &CompiledStep) -> Result<(), DataError> {
        self.epoch_start = Some(Snapshot::of(step, self.graph)?);
        Ok(())
    }

    fn non_finite_value(&self, step: &CompiledStep) -> Option<String> {
        match self.checks {
            Checks::EveryValue => non_finite_value(step, self.graph),
            Checks::Loss => None,
        }
    }

    fn non_finite_source(
        &mut self,
        step: &mut CompiledStep,
        epoch: &EpochSoFar,
    ) -> Option<NonFiniteSource> {
        let replay = Replay {
            graph: self.graph,
            slots: &self.slots,
            dataset: self.dataset,
            batches: &epoch.batches,
            first_count: epoch.first_count,
            rates: epoch.rates,
        };
        replay.source(step, self.epoch_start.as_ref()?)
    }
}

/// The first parameter or optimizer state holding a NaN or infinity, by name.
fn non_finite_value(step: &CompiledStep, graph: &Graph) -> Option<String> {
    let params = (0..graph.params.len())
        .find(|&i| step.param(i).iter().any(|v| !v.is_finite()))
        .map(|i| graph.params[i].name.clone());
    params.or_else(|| {
        (0..graph.states.len())
            .find(|&i| step.state(i).iter().any(|v| !v.is_finite()))
            .map(|i| graph.states[i].name.clone())
    })
}

/// A compiled step's parameters and optimizer state.
struct Snapshot {
    params: Vec<Vec<f32>>,
    states: Vec<Vec<f32>>,
}

impl Snapshot {
    fn of(step: &CompiledStep, graph: &Graph) -> Result<Snapshot, DataError> {
        let what = "the weights at the start of the epoch";
        Ok(Snapshot {
            params: (0..graph.params.len())
                .map(|i| copy(step.param(i), what))
                .collect::<Result<_, _>>()?,
            states: (0..graph.states.len())
                .map(|i| copy(step.state(i), what))
                .collect::<Result<_, _>>()?,
        })
    }

    fn restore(&self, step: &mut CompiledStep) {
        for (i, values) in self.params.iter().enumerate() {
            step.param_mut(i).copy_from_slice(values);
        }
        for (i, values) in self.states.iter().enumerate() {
            step.state_mut(i).copy_from_slice(values);
        }
    }
}

/// A copy of weights or state during training, or the error when the memory is not there.
pub(super) fn copy(values: &[f32], what: &str) -> Result<Vec<f32>, DataError> {
    crate::buffer::try_copy(values).map_err(|e| {
        DataError::new(
            "training",
            format!(
                "out of memory: copying {what} needs {} more",
                super::memory::gib(e.bytes)
            ),
        )
    })
}

/// An epoch's steps up to one whose loss was not finite, to find where that began.
struct Replay<'a> {
    graph: &'a Graph,
    slots: &'a InputSlots,
    dataset: &'a Dataset,
    /// Each step's rows, the failing one last.
    batches: &'a [&'a [usize]],
    /// Updates made before the epoch.
    first_count: u64,
    rates: &'a [f32],
}

impl Replay<'_> {
    /// Reruns the steps before the failing one from the epoch's start (the compiled step is
    /// deterministic, so this reaches the same weights), then runs the failing step in the
    /// interpreter with float32 rounding and names its first non-finite node. Leaves `step`
    /// holding the weights before the failing step.
    fn source(&self, step: &mut CompiledStep, start: &Snapshot) -> Option<NonFiniteSource> {
        start.restore(step);
        let (last, before) = self.batches.split_last()?;
        for (k, rows) in before.iter().enumerate() {
            let t = self.first_count + k as u64 + 1;
            gather(step, self.slots, self.dataset, (rows, 0), t, self.rates[k]);
            step.run(rows.len());
        }
        let k = before.len();
        let t = self.first_count + k as u64 + 1;
        gather(step, self.slots, self.dataset, (last, 0), t, self.rates[k]);
        let batch = last.len();
        let graph = self.graph;
        let array = |dims: Vec<usize>, values: Vec<f64>| {
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&dims), values).ok()
        };
        let mut inputs = Vec::new();
        for (index, info) in graph.inputs.iter().enumerate() {
            let dims = info.ty.shape.resolve(batch);
            let values: Vec<f64> = match info.ty.dtype {
                crate::ir::DType::F32 => step
                    .input_f32_mut(index, batch)
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
                crate::ir::DType::I32 => step
                    .input_i32_mut(index, batch)
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
            };
            inputs.push(array(dims, values)?);
        }
        let leaves = |values: &[Vec<f32>], shapes: Vec<Vec<usize>>| -> Option<Vec<_>> {
            values
                .iter()
                .zip(shapes)
                .map(|(v, dims)| array(dims, v.iter().map(|&x| f64::from(x)).collect()))
                .collect()
        };
        let now = Snapshot::of(step, graph).ok()?;
        let bindings = crate::interp::Bindings {
            inputs,
            params: leaves(
                &now.params,
                graph
                    .params
                    .iter()
                    .map(|p| p.shape.resolve(batch))
                    .collect(),
            )?,
            states: leaves(
                &now.states,
                graph
                    .states
                    .iter()
                    .map(|s| s.shape.resolve(batch))
                    .collect(),
            )?,
        };
        let values = crate::interp::evaluate_f32(graph, &bindings, batch).ok()?;
        let at = crate::interp::first_non_finite(&values)?;
        let node = &graph.nodes[at];
        let range = |v: &ndarray::ArrayD<f64>| {
            v.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        };
        // A weight or state that is already non-finite: the previous step's update made it so.
        let op = match graph.slot_name(crate::ir::ValueId(at as u32)) {
            Some(name) => name.to_string(),
            None => format!("{}{}", node.op.name(), node.op.attributes()),
        };
        Some(NonFiniteSource {
            op,
            span: node.span,
            value: values[at]
                .iter()
                .copied()
                .find(|x| !x.is_finite())
                .unwrap_or(f64::NAN),
            inputs: node
                .inputs
                .iter()
                .map(|i| range(&values[i.index()]))
                .collect(),
        })
    }
}

/// Where one training step's time goes (`kiln run --profile`), as mean times per step over one
/// epoch of batches.
#[derive(Clone, Debug)]
pub struct StepProfile {
    /// Steps measured (one epoch: every sample once, in order) and their batch size.
    pub steps: usize,
    pub batch: usize,
    /// Threads the step's large matrix products were split over.
    pub threads: usize,
    /// The step as it trains: one native call, no timers inside.
    pub step: Duration,
    /// Copying a batch's rows into the step's inputs (part of every training step's time,
    /// outside the native call).
    pub gather: Duration,
    /// The same step compiled with a timer call after every kernel.
    pub profiled_step: Duration,
    /// Each kernel of the profiled step (in execution order) and its time.
    pub kernels: Vec<(KernelInfo, Duration)>,
}

/// Measures `plain` (a step compiled as for training) and `profiled` (the same graph from
/// `codegen::compile_profiled`), both holding the same weights and optimizer state, over one
/// epoch of `dataset` in order, interleaved batch by batch so both see the same machine. Both
/// steps train on as they run (the caller passes copies); a few warm-up steps are not counted.
pub fn profile(
    plain: &mut CompiledStep,
    profiled: &mut CompiledStep,
    graph: &Graph,
    dataset: &Dataset,
    fit: &Fit,
    steps_done: u64,
) -> StepProfile {
    let slots = InputSlots::of(graph);
    let lr = fit.optimizer.lr();
    let order: Vec<usize> = (0..dataset.samples).collect();
    let batches: Vec<&[usize]> = order.chunks(fit.batch.max(1)).collect();
    // Warm-up: caches, branch predictors and the gemm workers settle before timing starts.
    let mut t = steps_done;
    for rows in batches.iter().take(WARM_UP_STEPS) {
        t += 1;
        for step in [&mut *plain, &mut *profiled] {
            gather(step, &slots, dataset, (rows, 0), t, lr);
            step.run(rows.len());
            step.rest_threads();
        }
    }
    profiled.reset_kernel_times();
    let (mut step_time, mut gather_time, mut profiled_time) = Default::default();
    for rows in &batches {
        t += 1;
        let started = Instant::now();
        gather(plain, &slots, dataset, (rows, 0), t, lr);
        let gathered = Instant::now();
        plain.run(rows.len());
        let ran = Instant::now();
        // Each step's workers park while the other step runs (see `rest_threads`).
        plain.rest_threads();
        gather(profiled, &slots, dataset, (rows, 0), t, lr);
        let profiled_started = Instant::now();
        profiled.run(rows.len());
        let profiled_ran = Instant::now();
        profiled.rest_threads();
        gather_time += gathered - started;
        step_time += ran - gathered;
        profiled_time += profiled_ran - profiled_started;
    }
    let steps = batches.len().max(1);
    let per_step = |total: Duration| total / steps as u32;
    let kernels = match profiled.kernel_times() {
        Some((sites, totals, _)) => sites
            .iter()
            .cloned()
            .zip(totals.iter().map(|&t| per_step(t)))
            .collect(),
        None => Vec::new(),
    };
    StepProfile {
        steps: batches.len(),
        batch: fit.batch,
        threads: plain.threads(),
        step: per_step(step_time),
        gather: per_step(gather_time),
        profiled_step: per_step(profiled_time),
        kernels,
    }
}

/// Steps run before a profile starts timing.
const WARM_UP_STEPS: usize = 5;

/// Copies the batch's rows into the step's input buffers. `first_row`: where the rows start in
/// the global batch (0 unless they are a rank's slice of it).
pub(super) fn gather(
    step: &mut CompiledStep,
    slots: &InputSlots,
    dataset: &Dataset,
    (rows, first_row): (&[usize], usize),
    t: u64,
    lr: f32,
) {
    let batch = rows.len();
    feed_features(step, slots.features, dataset, rows.iter().copied());
    match &dataset.labels {
        Labels::Classes(labels) => {
            if let Some(slot) = slots.labels {
                let dst = step.input_i32_mut(slot, batch);
                for (dst, &row) in dst.iter_mut().zip(rows) {
                    *dst = labels[row];
                }
            }
        }
        Labels::Targets { width, values } => {
            if let Some(slot) = slots.targets {
                let dst = step.input_f32_mut(slot, batch);
                for (dst, &row) in dst.chunks_exact_mut(*width).zip(rows) {
                    dst.copy_from_slice(&values[row * width..(row + 1) * width]);
                }
            }
        }
    }
    if let Some(slot) = slots.weights {
        feed_weights(step, slot, dataset, rows.iter().copied());
    }
    if let Some(slot) = slots.step {
        step.input_f32_mut(slot, batch)[0] = t as f32;
    }
    if let Some(slot) = slots.lr {
        step.input_f32_mut(slot, batch)[0] = lr;
    }
    if let Some(slot) = slots.first_row {
        step.input_f32_mut(slot, batch)[0] = first_row as f32;
    }
}

/// Copies the weights of `rows`, in that order, into the step's sample-weight input; a data set
/// without a weight column (a validation set of its own) weighs every sample 1.
pub(super) fn feed_weights(
    step: &mut CompiledStep,
    slot: usize,
    dataset: &Dataset,
    rows: impl ExactSizeIterator<Item = usize>,
) {
    let dst = step.input_f32_mut(slot, rows.len());
    match &dataset.weights {
        Some(weights) => (dst.iter_mut().zip(rows)).for_each(|(d, row)| *d = weights[row]),
        None => dst.fill(1.0),
    }
}

/// Copies the features of `rows`, in that order, into the step's feature input (f32, or i32
/// token ids).
pub(super) fn feed_features(
    step: &mut CompiledStep,
    slot: usize,
    dataset: &Dataset,
    rows: impl ExactSizeIterator<Item = usize>,
) {
    fn copy<T: Copy>(dst: &mut [T], src: &[T], width: usize, rows: impl Iterator<Item = usize>) {
        for (dst, row) in dst.chunks_exact_mut(width).zip(rows) {
            dst.copy_from_slice(&src[row * width..(row + 1) * width]);
        }
    }
    let (batch, width) = (rows.len(), dataset.features);
    match &dataset.x {
        Features::F32(x) => copy(step.input_f32_mut(slot, batch), x, width, rows),
        Features::I32(x) => copy(step.input_i32_mut(slot, batch), x, width, rows),
    }
}

pub fn argmax(values: &[f32]) -> usize {
    // The first index of the largest value (a NaN never wins), as selects rather than a branch:
    // which score wins is unpredictable, and mispredicted branches made the accuracy tally a
    // few percent of a small model's training time.
    let mut best = 0;
    let mut best_value = values.first().copied().unwrap_or(0.0);
    for (i, &v) in values.iter().enumerate().skip(1) {
        let better = v > best_value;
        best = if better { i } else { best };
        best_value = if better { v } else { best_value };
    }
    best
}

/// A short FNV-1a hash of parameter bits: two runs with equal hashes trained identical weights.
pub fn weights_hash(params: &[&[f32]]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for value in params.iter().flat_map(|p| p.iter()) {
        for byte in value.to_bits().to_le_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:016x}", hash)
}

#[cfg(test)]
mod tests {
    use super::{argmax, shuffle};

    #[test]
    fn argmax_takes_the_first_largest_and_skips_nan() {
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[0.5]), 0);
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), 1);
        assert_eq!(argmax(&[-1.0, f32::NAN, -0.5, f32::NAN]), 2);
        // A NaN first is never beaten (no value compares greater than it).
        assert_eq!(argmax(&[f32::NAN, 1.0, 2.0]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(argmax(&[-0.0, 0.0]), 0);
    }

    #[test]
    fn each_epochs_order_depends_on_seed_and_epoch_only() {
        let order = |seed: u64, epoch: usize| {
            let mut order = vec![7; 50];
            shuffle(&mut order, seed, epoch);
            order
        };
        let first = order(3, 1);
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>(), "a permutation");
        assert_eq!(order(3, 1), first, "whatever came before");
        assert_ne!(order(3, 2), first);
        assert_ne!(order(4, 1), first);
        // A far epoch costs what the first does.
        assert_eq!(order(3, usize::MAX).len(), 50);
    }
}
