//! `fit MODEL on DATA { SETTINGS }`: reads each setting (this file), then checks the whole.
//! One module per job: `bind.rs` binds a call against a definition in `settings` (losses,
//! metrics, schedules, callbacks); `loss.rs`, `optimizer.rs`, `schedule.rs`, `callback.rs`,
//! `metric.rs` read those settings; `settings.rs` the plain ones; `agree.rs` checks that the
//! model, the data and the loss agree.

mod agree;
mod bind;
mod callback;
mod loss;
mod metric;
mod optimizer;
mod schedule;
mod settings;

use super::*;
use crate::diag::Diagnostic;
use crate::diag::Span;
use crate::program::*;
use crate::settings::def::{self, AliasOf};
use crate::settings::optimizer as optimizers;
use crate::settings::*;
use crate::syntax::ast;
use std::collections::HashMap;

impl Checker {
    pub(super) fn fit(&mut self, decl: &ast::FitDecl) {
        let settings = (decl.settings.iter())
            .map(|setting| match setting {
                ast::Setting::Pair { key, value, span } => ast::Setting::Pair {
                    key: key.clone(),
                    value: self.with_constants(value),
                    span: *span,
                },
                other => other.clone(),
            })
            .collect();
        let decl = &ast::FitDecl {
            settings,
            ..decl.clone()
        };
        let model = self.lookup(&decl.model, Kind::Model);
        let data = self.lookup(&decl.data, Kind::Data);
        let head = Span::new(decl.span.start, decl.data.span.end);

        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut broken = false;
        let mut loss = None;
        let mut loss_span = head;
        // Kiln's default optimizer (Keras's `compile()` defaults to rmsprop).
        let mut optimizer = Some(Optimizer::new(&optimizers::ADAM, &[]));
        let mut metrics = Some(Vec::new());
        let mut epochs = Some(1);
        let mut batch = Some(32);
        let mut seed = Some(0);
        let mut shuffle = Some(true);
        // (data set index or split fraction, span of the key); `None` after an error.
        let mut validation_data: Option<Option<(usize, Span, Span)>> = Some(None);
        let mut validation_split: Option<Option<(f64, Span)>> = Some(None);
        let mut loss_given = false;
        let mut schedule = Some(None);
        let mut initial_epoch = Some(None);
        let mut callbacks = Some(Vec::new());
        let mut standardize = Some(false);
        let mut standardize_span = head;
        let mut class_weight: Option<Option<(Vec<f32>, Span)>> = Some(None);
        // (value, span of the setting) of `shuffle_split` and `stratify`.
        let mut split_order = [Some((false, head)), Some((false, head))];
        let mut test_split: Option<Option<(f64, Span)>> = Some(None);
        for setting in &decl.settings {
            let (key, value) = match setting {
                ast::Setting::Pair { key, value, .. } => (key, value),
                ast::Setting::Error(_) => {
                    broken = true;
                    continue;
                }
            };
            let name = def::canonical(AliasOf::Setting, &key.name);
            let Some(known) = SETTINGS.iter().find(|s| **s == name) else {
                let d = unknown(
                    "E0110",
                    "setting",
                    key,
                    "not a fit setting",
                    &def::with_aliases(AliasOf::Setting, &SETTINGS),
                    "settings: loss, optimizer, metrics, epochs, batch, seed, shuffle, \
                         validation, validation_split, initial_epoch, callbacks, standardize, \
                         class_weight, shuffle_split, stratify, test_split",
                );
                self.error(d);
                broken = true;
                continue;
            };
            if let Some(first) = seen.get(known) {
                let first = *first;
                self.error(
                    Diagnostic::error("E0302", format!("`{known}` is set twice"))
                        .primary(key.span, "set again here")
                        .secondary(first, "first set here")
                        .help("remove one of them"),
                );
                continue;
            }
            seen.insert(known, key.span);
            match *known {
                "loss" => {
                    loss_given = true;
                    loss_span = value.span;
                    loss = self.loss(value);
                }
                "optimizer" => match self.optimizer(value) {
                    Some((o, s)) => {
                        optimizer = Some(o);
                        schedule = Some(s);
                    }
                    None => optimizer = None,
                },
                "initial_epoch" => {
                    initial_epoch = self
                        .seed_value(value, "`initial_epoch`")
                        .and_then(|n| usize::try_from(n).ok())
                        .map(|n| Some((n, value.span)))
                }
                "callbacks" => {
                    callbacks = self.list(
                        value,
                        "`callbacks`",
                        "a list",
                        Some("write `callbacks [early_stopping(patience: 3)]`"),
                        Self::callback,
                    )
                }
                "standardize" => {
                    standardize = self.boolean(value, "`standardize`");
                    standardize_span = Span::new(key.span.start, value.span.end);
                }
                "metrics" => {
                    metrics = self.list(
                        value,
                        "`metrics`",
                        "a list",
                        Some("write `metrics [accuracy]`"),
                        Self::metric,
                    )
                }
                "class_weight" => {
                    class_weight = self
                        .list(
                            value,
                            "`class_weight`",
                            "a list with one weight per class",
                            Some("write `class_weight [1.0, 5.0]`: class 0 counts once, class 1 five times"),
                            |c, e| c.non_negative_f32(e, "a class weight").map(|w| w as f32),
                        )
                        .map(|ws| Some((ws.into_iter().map(|(w, _)| w).collect(), value.span)))
                }
                "shuffle_split" | "stratify" => {
                    let slot = usize::from(*known == "stratify");
                    let span = Span::new(key.span.start, value.span.end);
                    split_order[slot] = self
                        .boolean(value, &format!("`{known}`"))
                        .map(|b| (b, span));
                }
                "test_split" => {
                    test_split = self
                        .split_fraction(value, "`test_split`")
                        .map(|f| Some((f, Span::new(key.span.start, value.span.end))))
                }
                "epochs" => epochs = self.positive_int(value, "`epochs`"),
                "batch" => batch = self.positive_int(value, "`batch`"),
                "seed" => seed = self.seed_value(value, "`seed`"),
                "shuffle" => shuffle = self.boolean(value, "`shuffle`"),
                "validation" => {
                    validation_data = self
                        .validation_data(value)
                        .map(|i| Some((i, key.span, value.span)))
                }
                _ => {
                    validation_split = self
                        .split_fraction(value, "`validation_split`")
                        .map(|f| Some((f, key.span)))
                }
            }
        }
        if !loss_given && !broken {
            self.error(
                Diagnostic::error("E0301", "`fit` needs a loss")
                    .primary(head, "no `loss` setting")
                    .help("add a line such as `loss sparse_categorical_crossentropy`"),
            );
        }
        let validation = match (validation_data, validation_split) {
            (Some(Some((_, data_span, _))), Some(Some((_, split_span)))) => {
                self.error(
                    Diagnostic::error("E0311", "`validation` and `validation_split` are both set")
                        .primary(split_span, "a split of the training data")
                        .secondary(data_span, "and a separate validation data set")
                        .help("keep one of them"),
                );
                None
            }
            (Some(Some((index, _, span))), Some(None)) => {
                Some(Some((Validation::Data(index), span)))
            }
            (Some(None), Some(Some((fraction, span)))) => {
                Some(Some((Validation::Split(fraction), span)))
            }
            (Some(None), Some(None)) => Some(None),
            _ => None,
        };
        let (Some(model), Some(data), Some((loss, loss_options)), Some(validation)) =
            (model, data, loss, validation)
        else {
            return;
        };
        let (Some(optimizer), Some(metrics), Some(epochs), Some(batch), Some(seed), Some(shuffle)) =
            (optimizer, metrics, epochs, batch, seed, shuffle)
        else {
            return;
        };
        let (
            Some(schedule),
            Some(initial_epoch),
            Some(callbacks),
            Some(standardize),
            Some(class_weight),
        ) = (
            schedule,
            initial_epoch,
            callbacks,
            standardize,
            class_weight,
        )
        else {
            return;
        };
        let [
            Some((shuffle_split, shuffle_span)),
            Some((stratify, stratify_span)),
        ] = split_order
        else {
            return;
        };
        let Some(test_split) = test_split else {
            return;
        };
        let (metrics, metric_spans): (Vec<Metric>, Vec<Span>) = metrics.into_iter().unzip();
        let mut ok = true;
        if let Some((initial, span)) = initial_epoch
            && initial > epochs
        {
            ok = false;
            self.error(
                Diagnostic::error("E0303", "`initial_epoch` must be at most `epochs`")
                    .primary(span, format!("{initial} epochs already trained"))
                    .note(format!(
                        "`epochs` is the number of the last epoch ({epochs}), not how many more \
                         to train, as in Keras"
                    )),
            );
        }
        let has_validation = validation.is_some();
        for (callback, span) in &callbacks {
            ok &= self.monitor_known(callback, *span, &metrics, has_validation);
            let name = callback.def().name;
            if callback.def().facts.sets_lr && schedule.is_some() {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0314",
                        format!("`{name}` cannot change a learning-rate schedule"),
                    )
                    .primary(*span, "this callback sets the learning rate")
                    .help(format!(
                        "use a constant `lr` with `{name}`, or drop the callback"
                    )),
                );
            }
        }
        if !self.labelled(data, decl.data.span) {
            return;
        }
        ok &= self.compatible(decl, model, data, loss, loss_span, &metrics, &metric_spans);
        ok &= self.loss_fits_output(model, loss, loss_options, loss_span);
        ok &= !standardize || self.standardizable(model, standardize_span);
        if let Some((weights, span)) = &class_weight {
            ok &= self.class_weight_fits(model, loss, weights, *span);
        }
        for (on, span, name) in [
            (shuffle_split, shuffle_span, "shuffle_split"),
            (stratify, stratify_span, "stratify"),
        ] {
            if on {
                let split =
                    matches!(validation, Some((Validation::Split(_), _))) || test_split.is_some();
                ok &= self.split_order_fits(name, split, data, loss, span);
            }
        }
        if let Some((_, span)) = test_split {
            ok &= self.split_order_fits("test_split", true, data, loss, span);
        }
        if let Some((Validation::Data(index), span)) = validation {
            ok &= self.data_fits_model(model, index, span, loss, loss_span);
        }
        if !ok {
            return;
        }
        let sample_weight = self.data[data].source.has_sample_weights();
        self.fits.push(Fit {
            span: decl.span,
            model,
            data,
            loss,
            loss_options,
            optimizer,
            metrics: metrics.into_iter().map(|m| m.for_loss(loss)).collect(),
            epochs,
            batch,
            seed,
            shuffle,
            validation: validation.map(|(v, _)| v),
            training: Training {
                initial_epoch: initial_epoch.map_or(0, |(n, _)| n),
                callbacks: callbacks.into_iter().map(|(c, _)| c).collect(),
                schedule,
                standardize,
                class_weight: class_weight.map(|(w, _)| w),
                sample_weight,
                shuffle_split,
                stratify,
                test_split: test_split.map(|(f, _)| f),
            },
        });
    }
}
