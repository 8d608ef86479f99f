//! Data-parallel training: the epoch loop every fit runs (`epochs`), with each global batch
//! split across ranks and the gradients summed between the backward pass and the optimizer
//! update.
//!
//! Every rank holds the whole data set and the same weights, draws the same epoch order
//! (`train::shuffle`), and takes its own contiguous slice of each global batch (`shard`). It
//! runs the step's forward and backward pass on that slice (a step compiled without the
//! update), the ranks combine the gradients with `Collective::weighted_sum` — each rank's
//! gradient weighted by its share of the batch, summed in rank order in f64 and rounded once,
//! so every rank receives the same bits — and every rank then runs the same optimizer update
//! (a step compiled from the update alone) on the same sum. The weights therefore stay
//! bit-identical on every rank after every step. Rank 0 alone validates and decides the
//! callbacks; the decision is broadcast. The transport (MPI) is behind `Collective`, so this
//! module builds and is tested without it.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::callbacks::Decision;
use super::data::{DataError, Dataset, Labels};
use super::epochs::{self, Steps};
use super::evaluate::{Evaluation, Evaluator};
use super::train::{self, InputSlots, Observer, Trained};
use crate::codegen::CompiledStep;
use crate::ir::graph::{Graph, Slot};
use crate::ir::{lower, optimizer};
use crate::program::Fit;
use crate::settings::Metric;

/// What data-parallel training needs from the processes it runs on. Every method is a
/// collective: every rank calls it, in the same order, with buffers of the same length.
pub trait Collective {
    /// This process's rank, `0..ranks()`.
    fn rank(&self) -> usize;
    fn ranks(&self) -> usize;
    /// Replaces `values` on every rank with `Σ_r weights[r] · values_r` (`values_r` being rank
    /// `r`'s) for the first `weighted` elements and `Σ_r values_r` for the rest, each element
    /// summed in rank order in f64 and rounded to f32 once, so that every rank gets the same
    /// bits whatever the transport. (An element only one rank sets, the others leaving 0,
    /// arrives unchanged in the unweighted part.)
    fn weighted_sum(&self, values: &mut [f32], weights: &[f64], weighted: usize);
    /// Every rank's `value`, in rank order.
    fn all_gather(&self, value: u64) -> Vec<u64>;
    /// Rank 0's `values` on every rank.
    fn broadcast(&self, values: &mut [f64]);
    /// On rank 0, every rank's `values` (rank `r` sending `counts[r]`) one after the other in
    /// rank order; empty on the others.
    fn gather(&self, values: &[f32], counts: &[usize]) -> Vec<f32>;
}

/// The only process: what the loop does without MPI (and what its tests run on).
#[derive(Debug, Default)]
pub struct Alone;

impl Collective for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn ranks(&self) -> usize {
        1
    }
    fn weighted_sum(&self, values: &mut [f32], weights: &[f64], weighted: usize) {
        for v in &mut values[..weighted] {
            *v = (weights[0] * f64::from(*v)) as f32;
        }
    }
    fn all_gather(&self, value: u64) -> Vec<u64> {
        vec![value]
    }
    fn broadcast(&self, _values: &mut [f64]) {}
    fn gather(&self, values: &[f32], _counts: &[usize]) -> Vec<f32> {
        values.to_vec()
    }
}

/// Rank `rank`'s rows of a batch of `len` rows over `ranks` ranks: contiguous slices in rank
/// order, the first `len % ranks` one row longer. A short last batch (Keras's, when the data
/// does not divide by `batch`) is split the same way, so with fewer rows than ranks some
/// ranks get none and contribute nothing to that step.
pub fn shard(len: usize, ranks: usize, rank: usize) -> Range<usize> {
    let (base, extra) = (len / ranks, len % ranks);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// `Evaluator::evaluate` shared among the ranks: each runs the forward pass on its `share` of
/// whole batches, and rank 0 gathers every batch's loss and every sample's scores in rank order
/// and tallies them batch by batch as one process does — the same numbers to the bit. `None` on
/// the other ranks.
pub fn evaluate(
    evaluator: &mut Evaluator,
    params: &[&[f32]],
    dataset: &Dataset,
    metrics: &[Metric],
    collective: &dyn Collective,
) -> Option<Evaluation> {
    let parts = gather_parts(evaluator, params, dataset, collective)?;
    Some(evaluator.from_parts(&parts, collective.ranks(), dataset, metrics))
}

/// `Evaluator::scores` shared among the ranks as `evaluate` is: every sample's scores in order
/// on rank 0, `None` on the others.
pub fn scores(
    evaluator: &mut Evaluator,
    params: &[&[f32]],
    dataset: &Dataset,
    collective: &dyn Collective,
) -> Option<Vec<f32>> {
    let parts = gather_parts(evaluator, params, dataset, collective)?;
    Some(evaluator.scores_from_parts(&parts, collective.ranks(), dataset.samples))
}

/// Every rank's `Evaluator::part`, in rank order, on rank 0.
fn gather_parts(
    evaluator: &mut Evaluator,
    params: &[&[f32]],
    dataset: &Dataset,
    collective: &dyn Collective,
) -> Option<Vec<f32>> {
    let (rank, ranks) = (collective.rank(), collective.ranks());
    let counts: Vec<usize> = (0..ranks)
        .map(|r| evaluator.part_len(&evaluator.share(dataset.samples, ranks, r)))
        .collect();
    let rows = evaluator.share(dataset.samples, ranks, rank);
    let part = evaluator.part(params, dataset, rows);
    let parts = collective.gather(&part, &counts);
    (rank == 0).then_some(parts)
}

/// The step split in two for data-parallel training: forward and backward pass (no update), and
/// the optimizer update alone (`ir::optimizer::update_graph`).
pub struct SplitStep<'a> {
    pub gradients: CompiledStep,
    pub gradients_graph: &'a Graph,
    pub update: CompiledStep,
    pub update_graph: &'a Graph,
}

/// Where each value of the summed buffer comes from.
struct Layout {
    /// (parameter, range) of each trainable parameter's gradient.
    gradients: Vec<(usize, Range<usize>)>,
    /// (parameter, range) of each non-trainable parameter the forward pass updates (batch
    /// normalization's moving statistics): their new values are averaged over the ranks,
    /// weighted as the gradients are.
    statistics: Vec<(usize, Range<usize>)>,
    /// Per batch normalization whose moving statistics move once a step: the spread between
    /// the ranks' batch means that the moving variance gets (`Spread`).
    spreads: Vec<Spread>,
    /// The batch loss.
    loss: usize,
    /// The output scores of the global batch's rows, each rank writing its own rows (for the
    /// training metrics: they travel with the gradients instead of in a collective of their
    /// own, which cost more than the exchange), and the width of a row; empty without metrics.
    scores: Range<usize>,
    width: usize,
    len: usize,
}

impl Layout {
    /// `rows`: the largest global batch; `metrics`: whether the fit tallies training metrics.
    fn of(graph: &Graph, rows: usize, metrics: bool) -> Layout {
        let mut at = 0;
        let mut take = |param: usize| {
            let len = graph.params[param].shape.numel(0);
            at += len;
            (param, at - len..at)
        };
        let gradients = graph.gradients.iter().map(|g| take(g.param)).collect();
        let mut statistics: Vec<(usize, Range<usize>)> = Vec::new();
        for update in &graph.updates {
            if let Slot::Param(param) = update.target
                && !statistics.iter().any(|(p, _)| *p == param)
            {
                statistics.push(take(param));
            }
        }
        let width = match graph.output(lower::SCORES) {
            Some(scores) if metrics => graph.shape(scores).numel(1),
            _ => 0,
        };
        let range = |param: usize| statistics.iter().find(|(p, _)| *p == param).map(|(_, r)| r);
        let mut spreads = Vec::new();
        for moving in &graph.moving_statistics {
            if let (Some(mean), Some(variance)) = (range(moving.mean), range(moving.variance)) {
                let len = mean.len();
                spreads.push(Spread {
                    mean: (moving.mean, mean.clone()),
                    variance: variance.clone(),
                    squares: at..at + len,
                    // The graph's constant, an f32.
                    take: f64::from((1.0 - moving.momentum) as f32),
                });
                at += len;
            }
        }
        let loss = at;
        let scores = loss + 1..loss + 1 + rows * width;
        Layout {
            gradients,
            statistics,
            spreads,
            loss,
            len: scores.end,
            scores,
            width,
        }
    }
}

/// The spread between the ranks' batch means, for one batch normalization. A rank's moving mean
/// after its step is `M·m + mean_r·(1 − m)` from the moving mean `M` every rank holds, so
/// `d_r = moved_r − M = (mean_r − M)·(1 − m)`; the sum gives `d̄ = Σ w_r d_r` and, from the
/// squares each rank sends, `Σ w_r d_r²`. The variance of the whole batch is the ranks' mean
/// variance plus `Σ w_r (mean_r − mean)²`, so the moving variance gets
/// `(1 − m) · Σ w_r (mean_r − mean)² = (Σ w_r d_r² − d̄²) / (1 − m)` added to the weighted sum
/// of the ranks' moved variances.
struct Spread {
    /// The moving mean's parameter and its range in the buffer.
    mean: (usize, Range<usize>),
    variance: Range<usize>,
    /// Where each rank's `d_r²` goes.
    squares: Range<usize>,
    /// `1 − momentum`.
    take: f64,
}

/// How a distributed fit went, beyond `Trained`.
#[derive(Clone, Debug, Default)]
pub struct Communication {
    /// The ranks that trained.
    pub ranks: usize,
    /// Time in `weighted_sum` (the gradient exchange) over the whole fit, and its steps.
    pub exchange: Duration,
    pub steps: usize,
    /// Values (f32) each step exchanged.
    pub values: usize,
}

/// `train::train` across `collective`'s ranks, under the same epoch loop (`epochs::run`).
/// `step` (the whole step, holding the weights and optimizer state) is what validation,
/// checkpoints and the caller read: the split steps start from it and it is brought up to date
/// after every epoch. Only rank 0 validates, runs the callbacks and saves; the others follow
/// its broadcast decision.
#[allow(clippy::too_many_arguments)]
pub fn train(
    step: &mut CompiledStep,
    graph: &Graph,
    split: &mut SplitStep,
    dataset: &Dataset,
    fit: &Fit,
    steps_done: u64,
    collective: &dyn Collective,
    observer: &mut dyn Observer,
) -> Result<(Trained, Communication), DataError> {
    let layout = Layout::of(
        split.gradients_graph,
        fit.batch.min(dataset.samples),
        !fit.metrics.is_empty(),
    );
    let update_inputs: Vec<Option<usize>> = layout
        .gradients
        .iter()
        .map(|(param, _)| {
            let name = optimizer::gradient_input(*param);
            split
                .update_graph
                .inputs
                .iter()
                .position(|i| i.name == name)
        })
        .collect();
    let find = |name: &str| {
        split
            .update_graph
            .inputs
            .iter()
            .position(|i| i.name == name)
    };
    let (update_step, update_lr) = (find(optimizer::STEP), find(optimizer::LR));
    load(step, graph, split);
    // Sized by the model: reserved fallibly, as the step's arena is (issue 20).
    let mut exchanged = Vec::new();
    exchanged.try_reserve_exact(layout.len).map_err(|_| {
        DataError::new(
            "training",
            format!(
                "out of memory: the gradient exchange needs {} more",
                super::memory::gib(layout.len as u128 * 4)
            ),
        )
    })?;
    exchanged.resize(layout.len, 0.0f32);
    let ranks = collective.ranks();
    let mut steps = Shards {
        graph,
        slots: InputSlots::of(split.gradients_graph),
        split,
        dataset,
        collective,
        update_inputs,
        update_step,
        update_lr,
        communication: Communication {
            ranks,
            values: layout.len,
            ..Communication::default()
        },
        layout,
        exchanged,
        weights: Vec::with_capacity(ranks),
    };
    let trained = epochs::run(step, graph, dataset, fit, steps_done, &mut steps, observer)?;
    Ok((trained, steps.communication))
}

/// Each step's global batch split across the ranks, the gradients exchanged between the
/// backward pass and the update.
struct Shards<'a, 'b> {
    graph: &'a Graph,
    slots: InputSlots,
    split: &'a mut SplitStep<'b>,
    dataset: &'a Dataset,
    collective: &'a dyn Collective,
    layout: Layout,
    /// The update step's input for each gradient (`None`: the optimized update does not read it).
    update_inputs: Vec<Option<usize>>,
    update_step: Option<usize>,
    update_lr: Option<usize>,
    /// The buffer every step exchanges (`Layout`), made once.
    exchanged: Vec<f32>,
    /// Each rank's share of a batch, refilled per step in place.
    weights: Vec<f64>,
    communication: Communication,
}

impl Steps for Shards<'_, '_> {
    fn run(&mut self, _step: &mut CompiledStep, rows: &[usize], t: u64, lr: f32) -> f64 {
        let (rank, ranks) = (self.collective.rank(), self.collective.ranks());
        let (split, layout, exchanged) = (&mut *self.split, &self.layout, &mut self.exchanged);
        let slice = shard(rows.len(), ranks, rank);
        let mine = &rows[slice.clone()];
        exchanged.fill(0.0);
        if !mine.is_empty() {
            let at = (mine, slice.start);
            train::gather(&mut split.gradients, &self.slots, self.dataset, at, t, lr);
            split.gradients.run(mine.len());
            for (param, range) in &layout.gradients {
                exchanged[range.clone()].copy_from_slice(split.gradients.gradient(*param));
            }
            for (param, range) in &layout.statistics {
                exchanged[range.clone()].copy_from_slice(split.gradients.param(*param));
            }
            // The update step holds the moving means every rank started the step from.
            for spread in &layout.spreads {
                let (param, ref mean) = spread.mean;
                let before = split.update.param(param);
                for (j, &from) in before.iter().enumerate() {
                    let d = f64::from(exchanged[mean.start + j]) - f64::from(from);
                    exchanged[spread.squares.start + j] = (d * d) as f32;
                }
            }
            exchanged[layout.loss] = split
                .gradients
                .output(lower::LOSS, mine.len())
                .map_or(f32::NAN, |v| v[0]);
            if layout.width > 0
                && let Some(scores) = split.gradients.output(lower::SCORES, mine.len())
            {
                let at = layout.scores.start + slice.start * layout.width;
                exchanged[at..at + scores.len()].copy_from_slice(scores);
            }
        }
        // The gradient of the mean loss over the global batch: each rank's mean over its
        // rows, weighted by its share of the rows.
        self.weights.clear();
        self.weights.extend(
            (0..ranks).map(|r| shard(rows.len(), ranks, r).len() as f64 / rows.len() as f64),
        );
        let exchange = Instant::now();
        self.collective
            .weighted_sum(exchanged, &self.weights, layout.scores.start);
        self.communication.exchange += exchange.elapsed();
        self.communication.steps += 1;
        // With one rank contributing there is no spread (and adding a rounding of zero would
        // move one rank's bits off one process's).
        if self.weights.iter().filter(|&&w| w > 0.0).count() > 1 {
            for spread in layout.spreads.iter().filter(|s| s.take > 0.0) {
                let (param, ref mean) = spread.mean;
                let before = split.update.param(param);
                for j in 0..mean.len() {
                    let d = f64::from(exchanged[mean.start + j]) - f64::from(before[j]);
                    let spread_sq =
                        (f64::from(exchanged[spread.squares.start + j]) - d * d).max(0.0);
                    let variance = &mut exchanged[spread.variance.start + j];
                    *variance = (f64::from(*variance) + spread_sq / spread.take) as f32;
                }
            }
        }
        // A gradient the optimized update does not read has no input.
        for ((_, range), input) in layout.gradients.iter().zip(&self.update_inputs) {
            if let Some(input) = *input {
                split
                    .update
                    .input_f32_mut(input, 1)
                    .copy_from_slice(&exchanged[range.clone()]);
            }
        }
        for (param, range) in &layout.statistics {
            split.gradients.param_mut(*param)[..].copy_from_slice(&exchanged[range.clone()]);
            split.update.param_mut(*param)[..].copy_from_slice(&exchanged[range.clone()]);
        }
        if let Some(slot) = self.update_step {
            split.update.input_f32_mut(slot, 1)[0] = t as f32;
        }
        if let Some(slot) = self.update_lr {
            split.update.input_f32_mut(slot, 1)[0] = lr;
        }
        split.update.run(1);
        for (param, _) in &layout.gradients {
            let (from, to) = (&split.update, &mut split.gradients);
            to.param_mut(*param).copy_from_slice(from.param(*param));
        }
        f64::from(exchanged[layout.loss])
    }

    fn scores<'a>(&'a self, _step: &'a CompiledStep, rows: usize) -> Option<&'a [f32]> {
        let layout = &self.layout;
        (self.decides() && layout.width > 0)
            .then(|| &self.exchanged[layout.scores.start..][..rows * layout.width])
    }

    fn epoch_ended(&mut self, step: &mut CompiledStep) {
        store(step, self.graph, self.split);
    }

    fn decides(&self) -> bool {
        self.collective.rank() == 0
    }

    /// Rank 0's decision on every rank: stop, the new learning rate and the snapshot travel;
    /// the paths to save stay on rank 0, the only rank that writes.
    fn agree(&self, decision: Decision) -> Decision {
        let mut message = [
            f64::from(u8::from(decision.stop)),
            decision.lr.map_or(f64::NAN, f64::from),
            f64::from(u8::from(decision.snapshot)),
        ];
        self.collective.broadcast(&mut message);
        Decision {
            stop: message[0] != 0.0,
            lr: (!message[1].is_nan()).then_some(message[1] as f32),
            snapshot: message[2] != 0.0,
            save: decision.save,
        }
    }

    /// Ctrl-C goes to `mpirun`, which ends the job: a rank that stopped alone would leave the
    /// others waiting in the exchange.
    fn interruptible(&self) -> bool {
        false
    }
}

/// The whole step's weights and optimizer state into the split steps.
fn load(step: &CompiledStep, graph: &Graph, split: &mut SplitStep) {
    for index in 0..graph.params.len() {
        split
            .gradients
            .param_mut(index)
            .copy_from_slice(step.param(index));
        split
            .update
            .param_mut(index)
            .copy_from_slice(step.param(index));
    }
    for index in 0..graph.states.len() {
        split
            .update
            .state_mut(index)
            .copy_from_slice(step.state(index));
    }
}

/// The split steps' weights and optimizer state back into the whole step.
fn store(step: &mut CompiledStep, graph: &Graph, split: &SplitStep) {
    for index in 0..graph.params.len() {
        step.param_mut(index)
            .copy_from_slice(split.gradients.param(index));
    }
    for index in 0..graph.states.len() {
        step.state_mut(index)
            .copy_from_slice(split.update.state(index));
    }
}

/// A hash of what every rank must agree on before training: the compiled graph's text, the
/// training data (sizes and every value), the fit's batch, epochs and seed, and the starting
/// weights. Ranks that differ would not be training one model.
pub fn fingerprint(graph_text: &str, dataset: &Dataset, fit: &Fit, params: &[&[f32]]) -> u64 {
    let mut hash = Fnv::default();
    hash.bytes(graph_text.as_bytes());
    for n in [
        dataset.samples as u64,
        dataset.features as u64,
        fit.batch as u64,
        fit.epochs as u64,
        fit.seed,
    ] {
        hash.word(n);
    }
    match &dataset.x {
        super::data::Features::F32(x) => x.iter().for_each(|v| hash.word(v.to_bits().into())),
        super::data::Features::I32(x) => x.iter().for_each(|&v| hash.word(v as u64)),
    }
    match &dataset.labels {
        Labels::Classes(labels) => labels.iter().for_each(|&l| hash.word(l as u64)),
        Labels::Targets { values, .. } => {
            values.iter().for_each(|v| hash.word(v.to_bits().into()));
        }
    }
    for weight in dataset.weights.iter().flatten() {
        hash.word(weight.to_bits().into());
    }
    for value in params.iter().flat_map(|p| p.iter()) {
        hash.word(value.to_bits().into());
    }
    hash.0
}

/// FNV-1a, over bytes or whole words (a word per value keeps hashing a data set fast).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn word(&mut self, word: u64) {
        self.0 ^= word;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.word(b.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order() {
        for len in 0..20 {
            for ranks in 1..6 {
                let mut next = 0;
                for rank in 0..ranks {
                    let range = shard(len, ranks, rank);
                    assert_eq!(range.start, next);
                    assert!(range.len() == len / ranks || range.len() == len / ranks + 1);
                    next = range.end;
                }
                assert_eq!(next, len);
            }
        }
        assert_eq!(shard(5, 3, 0), 0..2);
        assert_eq!(shard(5, 3, 2), 4..5);
        assert_eq!(shard(1, 3, 2), 1..1);
    }
}
