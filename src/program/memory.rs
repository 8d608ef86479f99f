//! How much memory a fit needs, estimated from the checked program alone (the sizes `--summary`
//! prints), so that a model too large for the machine is refused before training starts instead
//! of aborting after it, with nothing saved (issue 20: two `dense(10000)` layers under a 4 GB
//! address limit trained an epoch, then died copying their weights).

use super::summary::{activation_floats, bytes};
use super::{Fit, Model};
use crate::ir::shape::per_sample;

/// Bytes per value: weights, gradients, optimizer state and activations are all f32.
const F32: u128 = 4;

/// A fit's estimated peak memory, in bytes, by what holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The compiled step's arena: weights, their gradients, the optimizer's state.
    pub weights: u128,
    /// Activations and their gradients for one batch of `batch` samples.
    pub activations: u128,
    /// Copies of the weights and optimizer state the runner keeps beside the step (the epoch's
    /// start for replaying a non-finite step, the trained state kept after the fit, and the
    /// weights handed back).
    pub copies: u128,
    pub batch: usize,
    /// The largest parameters: name, type text, bytes of the value alone.
    pub largest: Vec<(String, String, u128)>,
    /// How many copies of each parameter the step holds (itself, its gradient, each state role).
    pub per_parameter: usize,
}

impl Estimate {
    pub fn total(&self) -> u128 {
        self.weights + self.activations + self.copies
    }

    /// One line for `kiln check --summary`: the estimate of training `model` on `data` with
    /// batches of `batch` (the data set's size, which may make the last batch smaller, is not
    /// known until the run).
    pub fn summary_line(&self, model: &str, data: &str) -> String {
        format!(
            "fit {model} on {data}: training needs about {} ({})",
            bytes(self.total() as f64),
            self.breakdown()
        )
    }

    /// The breakdown in words, for a diagnostic's notes.
    pub fn breakdown(&self) -> String {
        format!(
            "weights, gradients and optimizer state {}; activations and their gradients for a \
             batch of {} {}; copies of weights and state kept between epochs and after training \
             {}",
            bytes(self.weights as f64),
            self.batch,
            bytes(self.activations as f64),
            bytes(self.copies as f64)
        )
    }
}

/// The estimate for training `model` as `fit` says, with batches of at most `max_batch`.
pub fn estimate(model: &Model, fit: &Fit, max_batch: usize) -> Estimate {
    let params: u128 = model
        .forward
        .params
        .iter()
        .map(|p| per_sample(&p.shape) as u128)
        .sum();
    let trainable: u128 = model
        .forward
        .params
        .iter()
        .filter(|p| p.trainable)
        .map(|p| per_sample(&p.shape) as u128)
        .sum();
    let roles = fit
        .optimizer
        .state_count(1)
        .saturating_sub(fit.optimizer.state_count(0));
    let state = trainable * roles as u128;
    let activations = activation_floats(model) as u128 * max_batch as u128;
    let mut largest: Vec<(String, String, u128)> = model
        .forward
        .params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                crate::ir::shape::type_text(
                    &crate::ir::shape::TensorType::f32(p.shape.clone()),
                    "B",
                ),
                per_sample(&p.shape) as u128 * F32,
            )
        })
        .collect();
    largest.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    largest.truncate(3);
    // Beside the step, the runner holds the weights the fit started from, and then either
    // (during an epoch) a copy of the epoch's start, to replay a non-finite step from, and a
    // checkpoint callback's save (the tensors, their bytes, the file's bytes), or (after
    // training) the trained weights and state copied out of the step and the weights handed back.
    let saves = fit
        .training
        .callbacks
        .iter()
        .any(|c| matches!(c, crate::settings::Callback::Checkpoint { .. }));
    let during = (params + state) + if saves { 3 * (params + state) } else { 0 };
    let after = 2 * params + state;
    Estimate {
        weights: (params + trainable + state) * F32,
        activations: 2 * activations * F32,
        copies: (params + during.max(after)) * F32,
        batch: max_batch,
        largest,
        per_parameter: 2 + roles,
    }
}
