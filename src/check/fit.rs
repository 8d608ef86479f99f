//! `fit MODEL on DATA { SETTINGS }`: loss, optimizer, metrics, training settings, and
//! whether the model, the data and the loss agree.

use super::args::found;
use super::program::*;
use super::*;
use crate::diag::Diagnostic;
use crate::diag::Span;
use crate::syntax::ast;
use std::collections::HashMap;

impl Checker {
    // ----- fit -----

    pub(super) fn fit(&mut self, decl: &ast::FitDecl) {
        let model = self.lookup(&decl.model, Kind::Model);
        let data = self.lookup(&decl.data, Kind::Data);
        let head = Span::new(decl.span.start, decl.data.span.end);

        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut broken = false;
        let mut loss = None;
        let mut loss_span = head;
        let mut optimizer = Some(Optimizer::Adam {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        });
        let mut metrics = Some(Vec::new());
        let mut metric_spans = Vec::new();
        let mut epochs = Some(1);
        let mut batch = Some(32);
        let mut seed = Some(0);
        let mut shuffle = Some(true);
        // (data set index or split fraction, span of the key); `None` after an error.
        let mut validation_data: Option<Option<(usize, Span, Span)>> = Some(None);
        let mut validation_split: Option<Option<(f64, Span)>> = Some(None);
        let mut loss_given = false;
        for setting in &decl.settings {
            let (key, value) = match setting {
                ast::Setting::Pair { key, value, .. } => (key, value),
                ast::Setting::Error(_) => {
                    broken = true;
                    continue;
                }
            };
            let Some(known) = SETTINGS.iter().find(|s| **s == key.name) else {
                let d = Diagnostic::error("E0110", format!("unknown setting `{}`", key.name))
                    .primary(key.span, "not a fit setting");
                let d = with_suggestion(d, &key.name, SETTINGS).note(
                    "settings: loss, optimizer, metrics, epochs, batch, seed, shuffle, \
                         validation, validation_split",
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
                "optimizer" => optimizer = self.optimizer(value),
                "metrics" => metrics = self.metrics(value, &mut metric_spans),
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
        let mut ok = self.compatible(decl, model, data, loss, loss_span, &metrics, &metric_spans);
        ok &= self.loss_fits_output(model, loss, loss_options, loss_span);
        if let Some((Validation::Data(index), span)) = validation {
            ok &= self.data_fits_model(model, index, span, loss, loss_span);
        }
        if !ok {
            return;
        }
        self.fits.push(Fit {
            span: decl.span,
            model,
            data,
            loss,
            loss_options,
            optimizer,
            metrics,
            epochs,
            batch,
            seed,
            shuffle,
            validation: validation.map(|(v, _)| v),
        });
    }

    /// `validation NAME`: a data set, looked up like the one after `on`.
    fn validation_data(&mut self, expr: &ast::Expr) -> Option<usize> {
        match &expr.kind {
            ast::ExprKind::Name(name) => {
                let before = self.diags.len();
                let index = self.lookup(
                    &ast::Ident {
                        name: name.clone(),
                        span: expr.span,
                    },
                    Kind::Data,
                );
                // A model named here: the help for `fit MODEL on DATA` does not fit.
                for d in &mut self.diags[before..] {
                    if d.code == "E0112" {
                        d.help = Some("`validation` names the data set to evaluate on".into());
                    }
                }
                index
            }
            ast::ExprKind::Error => None,
            _ => {
                self.error(
                    Diagnostic::error("E0303", "`validation` must name a data set")
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help("declare `data test = ...` and write `validation test`"),
                );
                None
            }
        }
    }

    /// Cross-checks the model, the data and the loss; reports every mismatch.
    #[allow(clippy::too_many_arguments)]
    fn compatible(
        &mut self,
        decl: &ast::FitDecl,
        model: usize,
        data: usize,
        loss: Loss,
        loss_span: Span,
        metrics: &[Metric],
        metric_spans: &[Span],
    ) -> bool {
        let mut ok = true;
        if !loss.uses_classes() {
            for (metric, span) in metrics.iter().zip(metric_spans) {
                if *metric == Metric::SparseCategoricalAccuracy {
                    ok = false;
                    self.error(
                        Diagnostic::error("E0307", "`accuracy` needs class labels")
                            .primary(*span, "accuracy compares predicted and true classes")
                            .secondary(loss_span, "but this loss trains on real-valued targets")
                            .help("remove `accuracy`, or use `sparse_categorical_crossentropy`"),
                    );
                }
            }
        }
        ok &= self.data_fits_model(model, data, decl.data.span, loss, loss_span);
        ok
    }

    /// What the checker knows statically about a data set, against the model and the loss:
    /// synthetic data declares its features and classes; synthetic and IDX data have class
    /// labels. `use_span` is where the fit names the data set.
    fn data_fits_model(
        &mut self,
        model: usize,
        data: usize,
        use_span: Span,
        loss: Loss,
        loss_span: Span,
    ) -> bool {
        let mut ok = true;
        let m = &self.models[model];
        let info = &self.model_info[model];
        let (model_name, input, output, b) = (
            m.name.clone(),
            m.input_features,
            m.output_features,
            info.batch_symbol.clone(),
        );
        let (input_span, output_span) = (info.input_type_span, info.output_type_span);
        let data_name = self.data[data].name.clone();
        let d_info = &self.data_info[data];
        let (features_span, classes_span) = (d_info.features_span, d_info.classes_span);
        let has_classes = matches!(
            self.data[data].source,
            DataSource::Synthetic { .. } | DataSource::Idx { .. }
        );
        if has_classes && !loss.uses_classes() {
            ok = false;
            self.error(
                Diagnostic::error(
                    "E0308",
                    format!("`{}` cannot train on class labels", loss.name()),
                )
                .primary(loss_span, "this loss needs real-valued targets")
                .secondary(use_span, format!("`{data_name}` has integer class labels"))
                .help("use `loss sparse_categorical_crossentropy` for classification data"),
            );
        }
        if let DataSource::Synthetic {
            features, classes, ..
        } = self.data[data].source
        {
            if features != input {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0206",
                        format!("`{data_name}` has {features} features but `{model_name}` takes {input}"),
                    )
                    .primary(use_span, format!("this data has {features} features per sample"))
                    .secondary(features_span, format!("`{data_name}` declares {features} features"))
                    .secondary(input_span, format!("`{model_name}` takes f32[{b}, {input}]"))
                    .help(format!(
                        "make `features` {input}, or change the model's input to f32[{b}, {features}]"
                    )),
                );
            }
            if loss == Loss::BinaryCrossentropy && classes != 2 {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0322",
                        format!(
                            "binary_crossentropy needs two classes, but `{data_name}` has {classes}"
                        ),
                    )
                    .primary(use_span, format!("this data has {classes} classes"))
                    .secondary(
                        classes_span,
                        format!("`{data_name}` declares {classes} classes"),
                    )
                    .secondary(loss_span, "this loss tells two classes apart")
                    .help("use `sparse_categorical_crossentropy` with one output per class"),
                );
            }
            if matches!(
                loss,
                Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy
            ) && classes != output
            {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0207",
                        format!("`{data_name}` has {classes} classes but `{model_name}` outputs {output}"),
                    )
                    .primary(use_span, format!("this data has {classes} classes"))
                    .secondary(classes_span, format!("`{data_name}` declares {classes} classes"))
                    .secondary(output_span, format!("`{model_name}` outputs f32[{b}, {output}]"))
                    .help(format!(
                        "sparse_categorical_crossentropy needs one output per class: make the output f32[{b}, {classes}]"
                    )),
                );
            }
        }
        ok
    }

    /// `loss NAME` or `loss NAME(from_logits: true)`, `loss huber(delta: 2.0)`.
    fn loss(&mut self, expr: &ast::Expr) -> Option<(Loss, LossOptions)> {
        let (callee, call_args): (ast::Ident, &[ast::Arg]) = match &expr.kind {
            ast::ExprKind::Name(name) => (
                ast::Ident {
                    name: name.clone(),
                    span: expr.span,
                },
                &[],
            ),
            _ => self.call_parts(expr, "a loss such as `sparse_categorical_crossentropy`")?,
        };
        let loss = match callee.name.as_str() {
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy,
            "categorical_crossentropy" => Loss::CategoricalCrossentropy,
            "binary_crossentropy" => Loss::BinaryCrossentropy,
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            "mean_absolute_error" | "mae" => Loss::MeanAbsoluteError,
            "huber" => Loss::Huber,
            other => {
                let d = Diagnostic::error("E0107", format!("unknown loss `{other}`"))
                    .primary(callee.span, "not a loss");
                let d = with_suggestion(d, other, LOSSES)
                    .note(format!("losses: {}", LOSSES.join(", ")));
                self.error(d);
                return None;
            }
        };
        let mut options = LossOptions::default();
        if loss.uses_classes() {
            let b = self.bind(&callee, call_args, &["from_logits"]);
            if let Some(e) = b.get(0) {
                options.from_logits = self.boolean(e, "`from_logits`")?;
            }
            b.ok.then_some((loss, options))
        } else if loss == Loss::Huber {
            let b = self.bind(&callee, call_args, &["delta"]);
            if let Some(e) = b.get(0) {
                options.delta = self.positive_f32(e, "`delta`")?;
            }
            b.ok.then_some((loss, options))
        } else {
            let b = self.bind(&callee, call_args, &[]);
            b.ok.then_some((loss, options))
        }
    }

    /// The loss against what the model's output is: probabilities (a softmax or sigmoid at the
    /// end) or raw scores, and its width.
    fn loss_fits_output(
        &mut self,
        model: usize,
        loss: Loss,
        options: LossOptions,
        loss_span: Span,
    ) -> bool {
        let m = &self.models[model];
        if m.inputs.len() != 1 || m.outputs.len() != 1 || m.outputs[0].shape.rank() != 2 {
            // `fit` cannot train it at all (E0312, reported after this).
            return true;
        }
        let output_span = self.model_info[model].output_type_span;
        let ends_in = m.output_activation();
        let (name, b, width) = (m.name.clone(), m.batch_symbol.clone(), m.output_features);
        let wanted = match loss {
            Loss::SparseCategoricalCrossentropy | Loss::CategoricalCrossentropy => {
                Activation::Softmax
            }
            Loss::BinaryCrossentropy => Activation::Sigmoid,
            _ => return true,
        };
        if loss == Loss::BinaryCrossentropy && width != 1 {
            self.error(
                Diagnostic::error("E0322", format!("binary_crossentropy needs one output, but `{name}` has {width}"))
                    .primary(loss_span, "this loss scores one probability per sample")
                    .secondary(output_span, format!("`{name}` outputs f32[{b}, {width}]"))
                    .help("end the model with `dense(1, sigmoid)`, or use `sparse_categorical_crossentropy` with one output per class"),
            );
            return false;
        }
        let other = if wanted == Activation::Softmax {
            Activation::Sigmoid
        } else {
            Activation::Softmax
        };
        if ends_in == other {
            self.error(
                Diagnostic::error(
                    "E0322",
                    format!(
                        "`{}` expects a {} output, but `{name}` ends in {}",
                        loss.name(),
                        wanted.name(),
                        other.name()
                    ),
                )
                .primary(
                    loss_span,
                    format!("this loss reads {} probabilities", wanted.name()),
                )
                .secondary(output_span, format!("`{name}` ends in {}", other.name()))
                .help(format!("end the model with `{}`", wanted.name())),
            );
            return false;
        }
        match (options.from_logits, ends_in == wanted) {
            (true, true) => {
                self.error(
                    Diagnostic::error(
                        "E0321",
                        format!(
                            "`{name}` ends in {} but the loss applies it again",
                            wanted.name()
                        ),
                    )
                    .primary(
                        loss_span,
                        format!(
                            "`from_logits: true` applies {} inside the loss",
                            wanted.name()
                        ),
                    )
                    .secondary(
                        output_span,
                        format!("`{name}` already ends in {}", wanted.name()),
                    )
                    .help(format!(
                        "remove `from_logits: true`, or end the model without {}",
                        wanted.name()
                    )),
                );
                false
            }
            (false, false) => {
                self.error(
                    Diagnostic::error(
                        "E0320",
                        format!(
                            "`{}` reads probabilities, but `{name}` outputs raw scores",
                            loss.name()
                        ),
                    )
                    .primary(loss_span, "this loss expects probabilities")
                    .secondary(
                        output_span,
                        format!("`{name}` does not end in {}", wanted.name()),
                    )
                    .help(format!(
                        "end the model with `{}`, or write `{}(from_logits: true)`",
                        wanted.name(),
                        loss.name()
                    )),
                );
                false
            }
            _ => true,
        }
    }

    fn optimizer(&mut self, expr: &ast::Expr) -> Option<Optimizer> {
        let (callee, call_args): (ast::Ident, &[ast::Arg]) = match &expr.kind {
            ast::ExprKind::Name(name) => (
                ast::Ident {
                    name: name.clone(),
                    span: expr.span,
                },
                &[],
            ),
            _ => self.call_parts(expr, "an optimizer such as `adam(lr: 0.001)`")?,
        };
        match callee.name.as_str() {
            "sgd" => {
                let b = self.bind(&callee, call_args, &["lr"]);
                let lr = b
                    .get(0)
                    .map_or(Some(0.01), |e| self.positive_f32(e, "`lr`"));
                Some(Optimizer::Sgd { lr: lr? }).filter(|_| b.ok)
            }
            "adam" => {
                let b = self.bind(&callee, call_args, &["lr", "beta1", "beta2", "eps"]);
                let lr = b
                    .get(0)
                    .map_or(Some(0.001), |e| self.positive_f32(e, "`lr`"));
                let beta1 = b.get(1).map_or(Some(0.9), |e| self.fraction(e, "`beta1`"));
                let beta2 = b
                    .get(2)
                    .map_or(Some(0.999), |e| self.fraction(e, "`beta2`"));
                let eps = b
                    .get(3)
                    .map_or(Some(1e-7), |e| self.positive_f32(e, "`eps`"));
                match (b.ok, lr, beta1, beta2, eps) {
                    (true, Some(lr), Some(beta1), Some(beta2), Some(eps)) => {
                        Some(Optimizer::Adam {
                            lr,
                            beta1,
                            beta2,
                            eps,
                        })
                    }
                    _ => None,
                }
            }
            other => {
                let d = Diagnostic::error("E0108", format!("unknown optimizer `{other}`"))
                    .primary(callee.span, "not an optimizer");
                let d = with_suggestion(d, other, OPTIMIZERS).note("optimizers: sgd, adam");
                self.error(d);
                None
            }
        }
    }

    fn metrics(&mut self, expr: &ast::Expr, spans: &mut Vec<Span>) -> Option<Vec<Metric>> {
        let ast::ExprKind::List(items) = &expr.kind else {
            if expr.kind != ast::ExprKind::Error {
                self.error(
                    Diagnostic::error("E0303", "`metrics` must be a list")
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help("write `metrics [accuracy]`"),
                );
            }
            return None;
        };
        let mut metrics = Some(Vec::new());
        for item in items {
            let metric = match self.name_value(item, "a metric such as `accuracy`") {
                Some(name) if name == "accuracy" => Some(Metric::SparseCategoricalAccuracy),
                Some(other) => {
                    let d = Diagnostic::error("E0109", format!("unknown metric `{other}`"))
                        .primary(item.span, "not a metric");
                    let d = with_suggestion(d, &other, METRICS).note("metrics: accuracy");
                    self.error(d);
                    None
                }
                None => None,
            };
            match (metric, metrics.as_mut()) {
                (Some(metric), Some(list)) => {
                    list.push(metric);
                    spans.push(item.span);
                }
                _ => metrics = None,
            }
        }
        metrics
    }
}
