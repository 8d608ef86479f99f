//! `fit MODEL on DATA { SETTINGS }`: loss, optimizer, metrics, training settings, and
//! whether the model, the data and the loss agree.

use super::args::found;
use super::*;
use crate::diag::Diagnostic;
use crate::diag::Span;
use crate::program::*;
use crate::settings::optimizer::{self, ArgDef, ArgKind, ArgValue};
use crate::settings::*;
use crate::syntax::ast;
use std::collections::HashMap;

impl Checker {
    // ----- fit -----

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
        // Keras's `compile()` default.
        let mut optimizer = Some(Optimizer::new(&optimizer::ADAM, &[]));
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
        for setting in &decl.settings {
            let (key, value) = match setting {
                ast::Setting::Pair { key, value, .. } => (key, value),
                ast::Setting::Error(_) => {
                    broken = true;
                    continue;
                }
            };
            let Some(known) = SETTINGS.iter().find(|s| **s == key.name) else {
                let d = unknown(
                    "E0110",
                    "setting",
                    key,
                    "not a fit setting",
                    &SETTINGS,
                    "settings: loss, optimizer, metrics, epochs, batch, seed, shuffle, \
                         validation, validation_split, initial_epoch, callbacks, standardize",
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
                "standardize" => standardize = self.boolean(value, "`standardize`"),
                "metrics" => {
                    metrics = self.list(
                        value,
                        "`metrics`",
                        "a list",
                        Some("write `metrics [accuracy]`"),
                        Self::metric,
                    )
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
        let (Some(schedule), Some(initial_epoch), Some(callbacks), Some(standardize)) =
            (schedule, initial_epoch, callbacks, standardize)
        else {
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
            if let (Callback::ReduceLrOnPlateau { .. }, Some(_)) = (callback, &schedule) {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0314",
                        "`reduce_lr_on_plateau` cannot change a learning-rate schedule",
                    )
                    .primary(*span, "this callback sets the learning rate")
                    .help("use a constant `lr` with `reduce_lr_on_plateau`, or drop the callback"),
                );
            }
        }
        ok &= self.compatible(decl, model, data, loss, loss_span, &metrics, &metric_spans);
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
            training: Training {
                initial_epoch: initial_epoch.map_or(0, |(n, _)| n),
                callbacks: callbacks.into_iter().map(|(c, _)| c).collect(),
                schedule,
                standardize,
            },
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
        let mut listed: HashMap<&str, Span> = HashMap::new();
        for (metric, span) in metrics.iter().zip(metric_spans) {
            let name = metric.display_name();
            // Reports and the history name a metric's values by its name.
            if let Some(&first) = listed.get(name) {
                ok = false;
                self.error(
                    Diagnostic::error("E0303", format!("`{name}` is listed twice in `metrics`"))
                        .primary(*span, "listed again here")
                        .secondary(first, "first listed here")
                        .help("each metric is reported once, under its name; list it once"),
                );
            } else {
                listed.insert(name, *span);
            }
            if !loss.uses_classes() && metric.needs_classes() {
                ok = false;
                self.error(
                    Diagnostic::error("E0307", format!("`{name}` needs class labels"))
                        .primary(*span, format!("{name} compares predicted and true classes"))
                        .secondary(loss_span, "but this loss trains on real-valued targets")
                        .help(format!(
                            "remove `{name}` (`mae` and `mse` measure regression), or use \
                             `sparse_categorical_crossentropy`"
                        )),
                );
            }
            if loss.uses_classes() && !metric.needs_classes() {
                ok = false;
                self.error(
                    Diagnostic::error("E0315", format!("`{name}` needs real-valued targets"))
                        .primary(*span, format!("{name} measures the error of real outputs"))
                        .secondary(loss_span, "but this loss trains on class labels")
                        .help("use `accuracy`, `top_k_accuracy`, `precision` or `recall`"),
                );
            }
        }
        ok &= self.data_fits_model(model, data, decl.data.span, loss, loss_span);
        ok
    }

    /// What the checker knows statically about a data set, against the model and the loss:
    /// synthetic data declares its features and classes; synthetic and IDX data have class
    /// labels. `use_span` is where the fit names the data set.
    pub(super) fn data_fits_model(
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
        let (callee, call_args) =
            self.name_or_call(expr, "a loss such as `sparse_categorical_crossentropy`")?;
        let loss = match callee.name.as_str() {
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy,
            "categorical_crossentropy" => Loss::CategoricalCrossentropy,
            "binary_crossentropy" => Loss::BinaryCrossentropy,
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            "mean_absolute_error" | "mae" => Loss::MeanAbsoluteError,
            "huber" => Loss::Huber,
            _ => {
                let listing = format!("losses: {}", LOSSES.join(", "));
                self.error(unknown(
                    "E0107",
                    "loss",
                    &callee,
                    "not a loss",
                    &LOSSES,
                    listing,
                ));
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

    /// The optimizer, and its learning-rate schedule when `lr` is one: the call bound against
    /// the optimizer's definition (`settings::optimizer`), each argument checked as it says.
    fn optimizer(&mut self, expr: &ast::Expr) -> Option<(Optimizer, Option<Schedule>)> {
        let (callee, call_args) =
            self.name_or_call(expr, "an optimizer such as `adam(lr: 0.001)`")?;
        let Some(def) = optimizer::find(&callee.name) else {
            let names = optimizer::names();
            self.error(unknown(
                "E0108",
                "optimizer",
                &callee,
                "not an optimizer",
                &names,
                format!("optimizers: {}", names.join(", ")),
            ));
            return None;
        };
        let params: Vec<&str> = def.args.iter().map(|a| a.name).collect();
        let bound = self.bind(&callee, call_args, &params);
        let mut args = def.default_args();
        let mut ok = bound.ok;
        let mut schedule = None;
        // Choices first: they may change other arguments' defaults, and are reported first.
        let is_choice = |i: &usize| matches!(def.args[*i].kind, ArgKind::Choice(_));
        let order = (0..def.args.len())
            .filter(is_choice)
            .chain((0..def.args.len()).filter(|i| !is_choice(i)));
        for i in order {
            let Some(e) = bound.get(i) else { continue };
            let arg = &def.args[i];
            let what = format!("`{}`", arg.name);
            // Numbers are kept as written; the checks are on their f32 values.
            let exact = |x: f32| ArgValue::Number(Self::number(e).unwrap_or(f64::from(x)));
            let value = match arg.kind {
                ArgKind::LearningRate => self.learning_rate(Some(e), 0.0).map(|(lr, s)| {
                    let value = if s.is_some() {
                        f64::from(lr)
                    } else {
                        Self::number(e).unwrap_or(f64::from(lr))
                    };
                    schedule = s;
                    ArgValue::Number(value)
                }),
                ArgKind::Fraction => self.fraction(e, &what).map(exact),
                ArgKind::Positive => self.positive_f32(e, &what).map(exact),
                ArgKind::NonNegative => self.non_negative(e, &what).map(ArgValue::Number),
                ArgKind::Bool => self.boolean(e, &what).map(ArgValue::Bool),
                ArgKind::Choice(options) => self.choice(e, arg, options).map(ArgValue::Choice),
            };
            match value {
                Some(value) => args.set(arg.name, value),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let given: Vec<bool> = (0..def.args.len())
            .map(|i| bound.get(i).is_some())
            .collect();
        (def.resolve)(&mut args, &given);
        Some((Optimizer { def, args }, schedule))
    }

    /// A name among `options` (`profile: torch`).
    fn choice(
        &mut self,
        expr: &ast::Expr,
        arg: &ArgDef,
        options: &'static [&'static str],
    ) -> Option<&'static str> {
        if let ast::ExprKind::Name(name) = &expr.kind
            && let Some(option) = options.iter().find(|o| *o == name)
        {
            return Some(option);
        }
        let listed: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
        let expected = match listed.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        self.error(
            Diagnostic::error("E0303", format!("`{}` must be {expected}", arg.name))
                .primary(expr.span, format!("found {}", found(expr)))
                .help(arg.doc),
        );
        None
    }

    /// An optimizer's `lr`: a positive number, or a schedule call. For a schedule, the `lr`
    /// recorded in the optimizer is its rate at step 0.
    fn learning_rate(
        &mut self,
        expr: Option<&ast::Expr>,
        default: f32,
    ) -> Option<(f32, Option<Schedule>)> {
        let Some(expr) = expr else {
            return Some((default, None));
        };
        if !matches!(expr.kind, ast::ExprKind::Call { .. }) {
            return self.positive_f32(expr, "`lr`").map(|lr| (lr, None));
        }
        let schedule = self.schedule(expr)?;
        Some((schedule.rate(0) as f32, Some(schedule)))
    }

    /// `exponential_decay(...)`, `piecewise_constant_decay(...)` or `cosine_decay(...)`, with
    /// Keras's argument names and defaults.
    fn schedule(&mut self, expr: &ast::Expr) -> Option<Schedule> {
        let (callee, args) = self.call_parts(expr, "a learning rate or a schedule")?;
        match callee.name.as_str() {
            "exponential_decay" => {
                let b = self.bind(
                    &callee,
                    args,
                    &[
                        "initial_learning_rate",
                        "decay_steps",
                        "decay_rate",
                        "staircase",
                    ],
                );
                let initial = self
                    .required(&b, 0, &callee)
                    .and_then(|e| self.positive_f32(e, "`initial_learning_rate`"));
                let decay_steps = self
                    .required(&b, 1, &callee)
                    .and_then(|e| self.positive_int(e, "`decay_steps`"));
                let decay_rate = self
                    .required(&b, 2, &callee)
                    .and_then(|e| self.positive_f32(e, "`decay_rate`"));
                let staircase = b
                    .get(3)
                    .map_or(Some(false), |e| self.boolean(e, "`staircase`"));
                match (b.ok, initial, decay_steps, decay_rate, staircase) {
                    (true, Some(initial), Some(steps), Some(rate), Some(staircase)) => {
                        Some(Schedule::ExponentialDecay {
                            initial: f64::from(initial),
                            decay_steps: steps as u64,
                            decay_rate: f64::from(rate),
                            staircase,
                        })
                    }
                    _ => None,
                }
            }
            "cosine_decay" => {
                let b = self.bind(
                    &callee,
                    args,
                    &["initial_learning_rate", "decay_steps", "alpha"],
                );
                let initial = self
                    .required(&b, 0, &callee)
                    .and_then(|e| self.positive_f32(e, "`initial_learning_rate`"));
                let decay_steps = self
                    .required(&b, 1, &callee)
                    .and_then(|e| self.positive_int(e, "`decay_steps`"));
                let alpha = b.get(2).map_or(Some(0.0), |e| self.fraction(e, "`alpha`"));
                match (b.ok, initial, decay_steps, alpha) {
                    (true, Some(initial), Some(steps), Some(alpha)) => {
                        Some(Schedule::CosineDecay {
                            initial: f64::from(initial),
                            decay_steps: steps as u64,
                            alpha: f64::from(alpha),
                        })
                    }
                    _ => None,
                }
            }
            "piecewise_constant_decay" => {
                let b = self.bind(&callee, args, &["boundaries", "values"]);
                let boundaries = self.required(&b, 0, &callee).and_then(|e| {
                    self.number_list(e, "`boundaries`", |c, e| {
                        c.seed_value(e, "a boundary").map(|n| n as f64)
                    })
                });
                let values_expr = self.required(&b, 1, &callee);
                let values = values_expr.and_then(|e| {
                    self.number_list(e, "`values`", |c, e| {
                        c.positive_f32(e, "a learning rate").map(f64::from)
                    })
                });
                let (true, Some(boundaries), Some(values), Some(values_expr)) =
                    (b.ok, boundaries, values, values_expr)
                else {
                    return None;
                };
                let boundaries: Vec<u64> = boundaries.iter().map(|&b| b as u64).collect();
                if values.len() != boundaries.len() + 1 {
                    self.error(
                        Diagnostic::error(
                            "E0303",
                            "`values` must hold one more rate than `boundaries`",
                        )
                        .primary(
                            values_expr.span,
                            format!(
                                "{} values for {} boundaries",
                                values.len(),
                                boundaries.len()
                            ),
                        )
                        .note("values[0] applies up to boundaries[0], the last after the last boundary"),
                    );
                    return None;
                }
                if boundaries.windows(2).any(|w| w[0] >= w[1]) {
                    self.error(
                        Diagnostic::error("E0303", "`boundaries` must increase")
                            .primary(expr.span, "steps out of order"),
                    );
                    return None;
                }
                Some(Schedule::PiecewiseConstant { boundaries, values })
            }
            _ => {
                self.error(unknown(
                    "E0118",
                    "learning-rate schedule",
                    &callee,
                    "not a schedule",
                    &SCHEDULES,
                    "schedules: exponential_decay, piecewise_constant_decay, cosine_decay",
                ));
                None
            }
        }
    }

    /// A list of numbers, each read by `item`.
    fn number_list(
        &mut self,
        expr: &ast::Expr,
        what: &str,
        item: impl Fn(&mut Self, &ast::Expr) -> Option<f64>,
    ) -> Option<Vec<f64>> {
        let list = self.list(expr, what, "a list of numbers", None, item)?;
        Some(list.into_iter().map(|(x, _)| x).collect())
    }

    /// `[a, b, ...]`, each item read by `item` and kept with its span. Every item is read, so
    /// each bad one is reported; the list is `None` if any was bad.
    fn list<T>(
        &mut self,
        expr: &ast::Expr,
        what: &str,
        expected: &str,
        help: Option<&str>,
        item: impl Fn(&mut Self, &ast::Expr) -> Option<T>,
    ) -> Option<Vec<(T, Span)>> {
        let ast::ExprKind::List(items) = &expr.kind else {
            if expr.kind != ast::ExprKind::Error {
                let mut d = Diagnostic::error("E0303", format!("{what} must be {expected}"))
                    .primary(expr.span, format!("found {}", found(expr)));
                if let Some(help) = help {
                    d = d.help(help);
                }
                self.error(d);
            }
            return None;
        };
        let items: Vec<Option<(T, Span)>> = items
            .iter()
            .map(|e| item(self, e).map(|x| (x, e.span)))
            .collect();
        items.into_iter().collect()
    }

    /// One entry of `callbacks [early_stopping(...), checkpoint("best.safetensors"), ...]`.
    fn callback(&mut self, expr: &ast::Expr) -> Option<Callback> {
        let (callee, args) =
            self.name_or_call(expr, "a callback such as `early_stopping(patience: 3)`")?;
        let monitor = |c: &mut Self, e: Option<&ast::Expr>| match e {
            None => Some(Monitor::named("val_loss")),
            Some(e) => c.string(e, "`monitor`").map(|s| Monitor::named(&s)),
        };
        let non_negative = |c: &mut Self, e: Option<&ast::Expr>, what: &str, default: f64| match e {
            None => Some(default),
            Some(e) => c.non_negative(e, what),
        };
        let count = |c: &mut Self, e: Option<&ast::Expr>, what: &str, default: usize| match e {
            None => Some(default),
            Some(e) => c
                .seed_value(e, what)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        };
        match callee.name.as_str() {
            "early_stopping" => {
                let b = self.bind(
                    &callee,
                    args,
                    &["monitor", "min_delta", "patience", "restore_best_weights"],
                );
                let m = monitor(self, b.get(0));
                let min_delta = non_negative(self, b.get(1), "`min_delta`", 0.0);
                let patience = count(self, b.get(2), "`patience`", 0);
                let restore = b
                    .get(3)
                    .map_or(Some(false), |e| self.boolean(e, "`restore_best_weights`"));
                match (b.ok, m, min_delta, patience, restore) {
                    (true, Some(monitor), Some(min_delta), Some(patience), Some(restore)) => {
                        Some(Callback::EarlyStopping {
                            monitor,
                            min_delta,
                            patience,
                            restore_best_weights: restore,
                        })
                    }
                    _ => None,
                }
            }
            "checkpoint" => {
                let b = self.bind(&callee, args, &["path", "monitor", "save_best_only"]);
                let path = self.required(&b, 0, &callee).and_then(|e| {
                    let path = self.string(e, "the checkpoint path")?;
                    self.checkpoint_path(e.span, &path, "`checkpoint`")?;
                    Some(path)
                });
                let m = monitor(self, b.get(1));
                let best_only = b
                    .get(2)
                    .map_or(Some(false), |e| self.boolean(e, "`save_best_only`"));
                match (b.ok, path, m, best_only) {
                    (true, Some(path), Some(monitor), Some(save_best_only)) => {
                        Some(Callback::Checkpoint {
                            path,
                            monitor,
                            save_best_only,
                        })
                    }
                    _ => None,
                }
            }
            "reduce_lr_on_plateau" => {
                let b = self.bind(
                    &callee,
                    args,
                    &["monitor", "factor", "patience", "min_delta", "min_lr"],
                );
                let m = monitor(self, b.get(0));
                let factor = b.get(1).map_or(Some(0.1), |e| {
                    let f = self.fraction(e, "`factor`")?;
                    if f == 0.0 {
                        return self.fraction_zero(e);
                    }
                    Some(f64::from(f))
                });
                let patience = count(self, b.get(2), "`patience`", 10);
                let min_delta = non_negative(self, b.get(3), "`min_delta`", 1e-4);
                let min_lr = non_negative(self, b.get(4), "`min_lr`", 0.0);
                match (b.ok, m, factor, patience, min_delta, min_lr) {
                    (
                        true,
                        Some(monitor),
                        Some(factor),
                        Some(patience),
                        Some(min_delta),
                        Some(min_lr),
                    ) => Some(Callback::ReduceLrOnPlateau {
                        monitor,
                        factor,
                        patience,
                        min_delta,
                        min_lr,
                    }),
                    _ => None,
                }
            }
            _ => {
                self.error(unknown(
                    "E0117",
                    "callback",
                    &callee,
                    "not a callback",
                    &CALLBACKS,
                    "callbacks: early_stopping, checkpoint, reduce_lr_on_plateau",
                ));
                None
            }
        }
    }

    fn fraction_zero(&mut self, expr: &ast::Expr) -> Option<f64> {
        self.error(
            Diagnostic::error("E0303", "`factor` must be a number in (0, 1)")
                .primary(expr.span, "a factor of 0 would stop training"),
        );
        None
    }

    /// A callback's monitor must be something the fit reports.
    fn monitor_known(
        &mut self,
        callback: &Callback,
        span: Span,
        metrics: &[Metric],
        has_validation: bool,
    ) -> bool {
        let monitor = match callback {
            Callback::EarlyStopping { monitor, .. }
            | Callback::Checkpoint { monitor, .. }
            | Callback::ReduceLrOnPlateau { monitor, .. } => monitor,
        };
        let mut reported = vec!["loss".to_string()];
        reported.extend(metrics.iter().map(|m| m.display_name().to_string()));
        if has_validation {
            let validation: Vec<String> = reported.iter().map(|n| format!("val_{n}")).collect();
            reported.extend(validation);
        }
        if reported.contains(&monitor.name) {
            return true;
        }
        let mut d = Diagnostic::error(
            "E0313",
            format!("the fit does not report `{}`", monitor.name),
        )
        .primary(span, format!("this callback monitors `{}`", monitor.name))
        .note(format!("this fit reports: {}", reported.join(", ")));
        if monitor.name.starts_with("val_") && !has_validation {
            d = d.help(
                "`val_` values need validation data: add `validation DATA` or \
                 `validation_split 0.2`, or monitor `loss`",
            );
        }
        self.error(d);
        false
    }

    /// One metric: a name, or `top_k_accuracy(k: 5)`.
    fn metric(&mut self, item: &ast::Expr) -> Option<Metric> {
        let (callee, args) = self.name_or_call(item, "a metric such as `accuracy`")?;
        let plain = |metric: Metric| (args.is_empty()).then_some(metric);
        let metric = match callee.name.as_str() {
            "accuracy" => plain(Metric::SparseCategoricalAccuracy),
            "precision" => plain(Metric::Precision),
            "recall" => plain(Metric::Recall),
            "mae" => plain(Metric::MeanAbsoluteError),
            "mse" => plain(Metric::MeanSquaredError),
            "top_k_accuracy" => {
                let b = self.bind(&callee, args, &["k"]);
                let k = b.get(0).map_or(Some(5), |e| self.positive_int(e, "`k`"));
                return match (b.ok, k) {
                    (true, Some(k)) => Some(Metric::TopKAccuracy { k }),
                    _ => None,
                };
            }
            _ => {
                self.error(unknown(
                    "E0109",
                    "metric",
                    &callee,
                    "not a metric",
                    &METRICS,
                    "metrics: accuracy, top_k_accuracy(k), precision, recall, mae, mse",
                ));
                return None;
            }
        };
        if metric.is_none() {
            self.error(
                Diagnostic::error("E0305", format!("`{}` takes no arguments", callee.name))
                    .primary(item.span, "arguments given here"),
            );
        }
        metric
    }
}
