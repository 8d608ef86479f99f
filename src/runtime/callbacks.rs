//! Keras's callbacks, run after every epoch in the order the `fit` lists them: early stopping,
//! checkpoints and reducing the learning rate on a plateau. Each follows Keras 3's code (the
//! comparisons, when `wait` counts, the first-epoch rules), so a Keras user's expectations hold.
//! The callbacks decide; the epoch loop acts (stops, saves, restores, sets the rate).

use super::train::EpochReport;
use crate::settings::{Callback, Monitor};

/// What the callbacks want done after an epoch.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Stop training after this epoch (early stopping).
    pub stop: bool,
    /// Write a checkpoint to each of these paths.
    pub save: Vec<String>,
    /// The learning rate from now on (reduce_lr_on_plateau).
    pub lr: Option<f32>,
    /// Take a snapshot of the weights now: they are the best so far (restore_best_weights).
    pub snapshot: bool,
}

struct State {
    callback: Callback,
    best: f64,
    wait: usize,
    /// Early stopping with restore_best_weights has taken its first snapshot.
    snapshot_taken: bool,
}

/// The callbacks of one fit and their counters.
pub struct Callbacks {
    states: Vec<State>,
}

/// `report`'s value of `monitor`: `loss`, a metric, `val_loss` or `val_` + a metric.
pub fn monitored(report: &EpochReport, name: &str) -> Option<f64> {
    if name == "loss" {
        return Some(report.loss);
    }
    if let Some(name) = name.strip_prefix("val_") {
        let validation = report.validation.as_ref()?;
        if name == "loss" {
            return Some(validation.loss);
        }
        return validation
            .metrics
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v);
    }
    report
        .metrics
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, v)| v)
}

fn worst(monitor: &Monitor) -> f64 {
    if monitor.maximize {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    }
}

/// Keras's comparison: `current` beats `best` by more than `min_delta`.
fn improves(monitor: &Monitor, current: f64, best: f64, min_delta: f64) -> bool {
    if monitor.maximize {
        current - min_delta > best
    } else {
        current + min_delta < best
    }
}

impl Callbacks {
    pub fn new(callbacks: &[Callback]) -> Callbacks {
        Callbacks {
            states: callbacks
                .iter()
                .map(|callback| {
                    let monitor = callback.monitor();
                    State {
                        best: worst(monitor),
                        callback: callback.clone(),
                        wait: 0,
                        snapshot_taken: false,
                    }
                })
                .collect(),
        }
    }

    /// Whether early stopping restores the best weights when training ends (Keras 3 restores
    /// them whether or not training stopped early).
    pub fn restores_best_weights(&self) -> bool {
        self.states.iter().any(|s| {
            matches!(
                s.callback,
                Callback::EarlyStopping {
                    restore_best_weights: true,
                    ..
                }
            )
        })
    }

    /// Runs every callback after epoch `epoch` (0-based, counted from the start of training as
    /// Keras counts it, so `initial_epoch` counts too) with the current learning rate `lr`.
    pub fn on_epoch_end(&mut self, epoch: usize, report: &EpochReport, lr: f32) -> Decision {
        let mut decision = Decision::default();
        let mut lr = lr;
        for state in &mut self.states {
            match &state.callback {
                Callback::EarlyStopping {
                    monitor,
                    min_delta,
                    patience,
                    restore_best_weights,
                } => {
                    let Some(current) = monitored(report, &monitor.name) else {
                        continue;
                    };
                    if *restore_best_weights && !state.snapshot_taken {
                        state.snapshot_taken = true;
                        decision.snapshot = true;
                    }
                    state.wait += 1;
                    if improves(monitor, current, state.best, *min_delta) {
                        state.best = current;
                        state.wait = 0;
                        if *restore_best_weights {
                            decision.snapshot = true;
                        }
                        continue;
                    }
                    if state.wait >= *patience && epoch > 0 {
                        decision.stop = true;
                    }
                }
                Callback::Checkpoint {
                    path,
                    monitor,
                    save_best_only,
                } => {
                    if !save_best_only {
                        decision.save.push(path.clone());
                        continue;
                    }
                    let Some(current) = monitored(report, &monitor.name) else {
                        continue;
                    };
                    if improves(monitor, current, state.best, 0.0) {
                        state.best = current;
                        decision.save.push(path.clone());
                    }
                }
                Callback::ReduceLrOnPlateau {
                    monitor,
                    factor,
                    patience,
                    min_delta,
                    min_lr,
                } => {
                    let Some(current) = monitored(report, &monitor.name) else {
                        continue;
                    };
                    // Keras's cooldown defaults to 0, so there is never a cooldown period.
                    if improves(monitor, current, state.best, *min_delta) {
                        state.best = current;
                        state.wait = 0;
                    } else {
                        state.wait += 1;
                        if state.wait >= *patience {
                            let old = f64::from(lr);
                            if old > f64::from(*min_lr as f32) {
                                lr = (old * factor).max(*min_lr) as f32;
                                decision.lr = Some(lr);
                            }
                            state.wait = 0;
                        }
                    }
                }
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::evaluate::Evaluation;

    fn report(val_loss: f64) -> EpochReport {
        EpochReport {
            epoch: 1,
            epochs: 10,
            loss: 1.0,
            metrics: vec![("accuracy", 0.5)],
            per_class: Vec::new(),
            seconds: 0.0,
            steps: 1,
            learning_rate: None,
            validation: Some(Evaluation {
                loss: val_loss,
                metrics: vec![("accuracy", 0.5)],
                per_class: Vec::new(),
                samples: 1,
            }),
        }
    }

    fn early(patience: usize, min_delta: f64) -> Callback {
        Callback::EarlyStopping {
            monitor: Monitor::named("val_loss"),
            min_delta,
            patience,
            restore_best_weights: false,
        }
    }

    /// The epoch (0-based) at which training stops for a run of `val_loss` values.
    fn stops_at(callback: Callback, losses: &[f64]) -> Option<usize> {
        let mut callbacks = Callbacks::new(&[callback]);
        losses
            .iter()
            .enumerate()
            .find(|&(epoch, &loss)| callbacks.on_epoch_end(epoch, &report(loss), 0.1).stop)
            .map(|(epoch, _)| epoch)
    }

    #[test]
    fn early_stopping_follows_keras() {
        // patience 0: the first epoch without improvement stops.
        assert_eq!(stops_at(early(0, 0.0), &[1.0, 0.9, 0.95, 0.5]), Some(2));
        // Never on the first epoch, even when it cannot improve on anything.
        assert_eq!(stops_at(early(0, 0.0), &[f64::INFINITY, 2.0]), None);
        // patience 2: two epochs in a row without improvement.
        assert_eq!(
            stops_at(early(2, 0.0), &[1.0, 1.1, 0.9, 1.0, 1.0, 0.1]),
            Some(4)
        );
        // min_delta: an improvement smaller than it does not count.
        assert_eq!(stops_at(early(0, 0.05), &[1.0, 0.97]), Some(1));
    }

    #[test]
    fn checkpoint_saves_only_improvements_when_asked() {
        let mut callbacks = Callbacks::new(&[Callback::Checkpoint {
            path: "best.safetensors".into(),
            monitor: Monitor::named("val_accuracy"),
            save_best_only: true,
        }]);
        let mut saved = Vec::new();
        for (epoch, accuracy) in [0.5, 0.7, 0.6, 0.8].into_iter().enumerate() {
            let mut r = report(1.0);
            r.validation.as_mut().unwrap().metrics[0].1 = accuracy;
            if !callbacks.on_epoch_end(epoch, &r, 0.1).save.is_empty() {
                saved.push(epoch);
            }
        }
        assert_eq!(saved, [0, 1, 3]);
    }

    /// A NaN never improves (Keras's comparisons are false for it too): a first epoch that is
    /// NaN writes no "best" checkpoint, and the first number after it does.
    #[test]
    fn a_nan_epoch_is_never_the_best() {
        let mut callbacks = Callbacks::new(&[Callback::Checkpoint {
            path: "best.safetensors".into(),
            monitor: Monitor::named("val_loss"),
            save_best_only: true,
        }]);
        let saved: Vec<usize> = [f64::NAN, 2.0, f64::NAN, 1.0]
            .into_iter()
            .enumerate()
            .filter(|&(epoch, loss)| {
                let mut r = report(1.0);
                r.validation.as_mut().unwrap().loss = loss;
                !callbacks.on_epoch_end(epoch, &r, 0.1).save.is_empty()
            })
            .map(|(epoch, _)| epoch)
            .collect();
        assert_eq!(saved, [1, 3]);
    }

    #[test]
    fn reduce_lr_multiplies_by_factor_after_patience_epochs() {
        let mut callbacks = Callbacks::new(&[Callback::ReduceLrOnPlateau {
            monitor: Monitor::named("val_loss"),
            factor: 0.5,
            patience: 2,
            min_delta: 1e-4,
            min_lr: 0.03,
        }]);
        let mut lr = 0.1f32;
        let mut rates = Vec::new();
        for (epoch, loss) in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0].into_iter().enumerate() {
            if let Some(new) = callbacks.on_epoch_end(epoch, &report(loss), lr).lr {
                lr = new;
            }
            rates.push(lr);
        }
        // Epoch 0 improves on infinity; epochs 1-2 wait, then halve; 3-4 wait, then the floor.
        assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03]);
    }
}
