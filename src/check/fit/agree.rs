//! Whether the model, the data and the loss of a fit agree: what the checker knows statically
//! of a data set (its features and classes) against the model's input and output and the
//! loss's labels.

use super::super::Checker;
use crate::check::types;
use crate::diag::{Diagnostic, Span};
use crate::ir::shape::DType;
use crate::settings::loss::{Labels, Loss};
use crate::settings::{DataSource, Metric, data_source};
use crate::syntax::ast;

impl Checker {
    /// Cross-checks the model, the data, the loss and the metrics; reports every mismatch.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compatible(
        &mut self,
        decl: &ast::FitDecl,
        model: usize,
        data: usize,
        loss: Loss,
        loss_span: Span,
        metrics: &[Metric],
        metric_spans: &[Span],
    ) -> bool {
        let mut ok = self.metrics_fit_loss(loss, loss_span, metrics, metric_spans);
        ok &= self.data_fits_model(model, data, decl.data.span, loss, loss_span);
        ok
    }

    /// What the checker knows statically about a data set, against the model and the loss:
    /// synthetic data declares its features and classes; IDX images have two dimensions;
    /// synthetic and IDX data have class labels. `use_span` is where the fit names the data set.
    pub(in crate::check) fn data_fits_model(
        &mut self,
        model: usize,
        data: usize,
        use_span: Span,
        loss: Loss,
        loss_span: Span,
    ) -> bool {
        if !self.labelled(data, use_span) {
            return false;
        }
        let mut ok = self.sample_shape_fits(model, data, use_span);
        ok &= self.integer_input_fits(model, data, use_span);
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
            DataSource::Synthetic { .. } | DataSource::Idx { .. } | DataSource::Text(_)
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
        if let DataSource::Timeseries {
            sequence_length,
            ref features,
            ..
        } = self.data[data].source
        {
            let width = features.len();
            if loss.uses_classes() {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0325",
                        format!(
                            "`{}` cannot train on `{data_name}`'s real-valued targets",
                            loss.name()
                        ),
                    )
                    .primary(loss_span, "this loss needs class labels")
                    .secondary(
                        use_span,
                        format!("`{data_name}` is a time series: each target is a value of it"),
                    )
                    .help("forecasting is regression: use `loss mean_squared_error` (or `mae`)"),
                );
            }
            let shape = self.models[model].input_sample_shape();
            // One value a step: the flat window, or Keras's [timesteps, features] with 1 feature.
            // Several: the flat window, or [timesteps, features].
            let fits = if width == 1 {
                [vec![sequence_length], vec![sequence_length, 1]]
            } else {
                [vec![sequence_length * width], vec![sequence_length, width]]
            };
            if !fits.contains(&shape) {
                ok = false;
                let windows = fits.map(|s| data_source::input_text(&s, &b));
                let declared = data_source::input_text(&shape, &b);
                let what = if width == 1 {
                    format!("{sequence_length} values")
                } else {
                    format!("{sequence_length} steps of {width} features")
                };
                self.error(
                    Diagnostic::error(
                        "E0326",
                        format!(
                            "`{data_name}`'s windows of {what} cannot feed `{model_name}`'s input \
                             {declared}"
                        ),
                    )
                    .primary(use_span, format!("each sample is {what}"))
                    .secondary(
                        features_span,
                        format!("`{data_name}` sets sequence_length {sequence_length}"),
                    )
                    .secondary(input_span, format!("`{model_name}` takes {declared}"))
                    .help(format!(
                        "declare the input {} or {}, or change `sequence_length`",
                        windows[0], windows[1]
                    )),
                );
            }
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
            let per_class = match loss.def().facts.labels {
                Labels::Classes { per_class, .. } => Some(per_class),
                Labels::Targets => None,
            };
            if per_class == Some(false) && classes != 2 {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0322",
                        format!(
                            "{} needs two classes, but `{data_name}` has {classes}",
                            loss.name()
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
            if per_class == Some(true) && classes != output {
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

    /// `standardize true` for model `model`: its input must be f32, since token ids are labels of
    /// rows, not quantities to center and scale. `span`: the setting.
    pub(in crate::check) fn standardizable(&mut self, model: usize, span: Span) -> bool {
        let m = &self.models[model];
        let Some((_, input)) = m.inputs.first() else {
            return true;
        };
        if input.dtype != DType::I32 {
            return true;
        }
        let info = &self.model_info[model];
        let declared = types::type_text(input, &info.batch_symbol);
        let d = Diagnostic::error(
            "E0324",
            format!("`standardize` cannot apply to `{}`'s integer input", m.name),
        )
        .primary(span, "standardizing shifts and scales every feature")
        .secondary(
            info.input_type_span,
            format!("`{}` takes {declared}", m.name),
        )
        .help("remove `standardize true`: token ids index an embedding's rows as they are");
        self.error(d);
        false
    }

    /// Whether data set `data` has labels, as training and evaluation need (E0866 for a csv
    /// with `label: none`, which only `predict` reads). `span`: where it is used.
    pub(in crate::check) fn labelled(&mut self, data: usize, span: Span) -> bool {
        let set = &self.data[data];
        if !matches!(
            &set.source,
            DataSource::Csv {
                label: crate::settings::LabelColumn::None,
                ..
            }
        ) {
            return true;
        }
        let name = set.name.clone();
        let declared = set.span;
        self.error(
            Diagnostic::error("E0866", format!("`{name}` has no labels"))
                .primary(span, "training and evaluation compare outputs with labels")
                .secondary(declared, "declared with `label: none`")
                .help("use data with a label column here; `label: none` data is for `predict`"),
        );
        false
    }

    /// `shuffle_split` or `stratify` (`name`, set at `span`): they reorder a `validation_split`
    /// (the fit must have one), of rows (not of a time series' windows, which validate on the
    /// latest, nor of text, whose vocabulary comes from the first rows), and `stratify` groups
    /// by class (a class loss). E0867 otherwise.
    pub(in crate::check) fn split_order_fits(
        &mut self,
        name: &str,
        split: bool,
        data: usize,
        loss: Loss,
        span: Span,
    ) -> bool {
        let why = if !split {
            Some(
                "it reorders the samples before a `validation_split` or `test_split`, and this \
                 fit has neither"
                    .to_string(),
            )
        } else if matches!(
            self.data[data].source,
            DataSource::Timeseries { .. } | DataSource::Text(_)
        ) {
            Some(
                "time-series windows validate on the latest, and text's vocabulary is adapted \
                 to the first rows, so their split stays in file order (and has no test split)"
                    .to_string(),
            )
        } else if name == "stratify" && !loss.uses_classes() {
            Some(format!(
                "`{}` trains on real-valued targets, which have no classes",
                loss.name()
            ))
        } else {
            None
        };
        let Some(why) = why else { return true };
        self.error(
            Diagnostic::error("E0867", format!("`{name}` cannot apply here"))
                .primary(span, "this setting")
                .note(why),
        );
        false
    }

    /// `class_weight` for a fit of `model` with `loss`: a class loss (E0862), and one weight
    /// per class the loss reads from the model's output (E0863). `span`: the list.
    pub(in crate::check) fn class_weight_fits(
        &mut self,
        model: usize,
        loss: Loss,
        weights: &[f32],
        span: Span,
    ) -> bool {
        if !loss.uses_classes() {
            self.error(
                Diagnostic::error("E0862", "`class_weight` needs class labels")
                    .primary(span, "one weight per class")
                    .note(format!(
                        "`{}` trains on real-valued targets, which have no classes",
                        loss.name()
                    ))
                    .help("remove `class_weight`, or train a classifier with a class loss"),
            );
            return false;
        }
        let classes = loss.classes(self.models[model].output_features);
        if weights.len() == classes {
            return true;
        }
        let name = self.models[model].name.clone();
        self.error(
            Diagnostic::error(
                "E0863",
                format!(
                    "`class_weight` has {} weight{} for {classes} classes",
                    weights.len(),
                    if weights.len() == 1 { "" } else { "s" }
                ),
            )
            .primary(span, format!("expected {classes}, one per class in order"))
            .note(format!(
                "with `{}`, `{name}`'s output gives {classes} classes",
                loss.name()
            ))
            .help("list the weight of class 0 first, then class 1, and so on"),
        );
        false
    }

    /// Whether the data set can feed the model's input when it is `i32` (token ids): only from
    /// a CSV or NumPy file of whole numbers (synthetic and IDX features are floats), taken as
    /// they are, so without a `scale`.
    pub(in crate::check) fn integer_input_fits(
        &mut self,
        model: usize,
        data: usize,
        use_span: Span,
    ) -> bool {
        let m = &self.models[model];
        let Some((_, input)) = m.inputs.first() else {
            return true;
        };
        if let DataSource::Text(text) = &self.data[data].source {
            return self.text_input_fits(model, data, text.output_sequence_length, use_span);
        }
        if input.dtype != DType::I32 {
            return true;
        }
        let b = &self.model_info[model].batch_symbol;
        let declared = types::type_text(input, b);
        let input_span = self.model_info[model].input_type_span;
        let (model_name, data_name) = (&m.name, &self.data[data].name);
        let floats = match &self.data[data].source {
            DataSource::Synthetic { .. } => Some("synthetic_classification"),
            DataSource::Idx { .. } => Some("idx"),
            DataSource::Timeseries { .. } => Some("timeseries_csv"),
            DataSource::Csv { .. }
            | DataSource::Npy { .. }
            | DataSource::Npz { .. }
            | DataSource::Text(_) => None,
        };
        let d = if let Some(source) = floats {
            Diagnostic::error(
                "E0323",
                format!("`{data_name}` holds f32 features, which cannot feed `{model_name}`'s integer input"),
            )
            .primary(use_span, format!("`{source}` supplies f32 features"))
            .secondary(input_span, format!("`{model_name}` takes {declared}"))
            .help("read token ids from a CSV file of whole numbers or an integer NumPy array (`npy`, `npz`)")
        } else if let Some(scale_span) = self.data_info[data].scale_span {
            Diagnostic::error(
                "E0323",
                format!("`{data_name}` scales its features, but `{model_name}` takes integer ids"),
            )
            .primary(scale_span, "`scale` divides every feature")
            .secondary(use_span, format!("`{data_name}` feeds `{model_name}` here"))
            .secondary(input_span, format!("`{model_name}` takes {declared}"))
            .help("remove `scale`: token ids are read as they are")
        } else {
            return true;
        };
        self.error(d);
        false
    }

    /// Text data supplies `output_sequence_length` token ids per sample: it feeds an
    /// `i32[B, length]` input and nothing else.
    fn text_input_fits(
        &mut self,
        model: usize,
        data: usize,
        length: usize,
        use_span: Span,
    ) -> bool {
        let m = &self.models[model];
        let Some((_, input)) = m.inputs.first() else {
            return true;
        };
        if input.dtype == DType::I32 && m.input_sample_shape() == [length] {
            return true;
        }
        let info = &self.model_info[model];
        let b = &info.batch_symbol;
        let declared = types::type_text(input, b);
        let (model_name, data_name) = (&m.name, &self.data[data].name);
        // `text_windows` calls the length `sequence_length`.
        let setting = match &self.data[data].source {
            DataSource::Text(text) if text.windows.is_some() => "sequence_length",
            _ => "output_sequence_length",
        };
        let d = Diagnostic::error(
            "E0327",
            format!("`{data_name}` supplies i32[{b}, {length}] token ids, but `{model_name}` takes {declared}"),
        )
        .primary(use_span, format!("`{data_name}` is text with {setting} {length}"))
        .secondary(info.input_type_span, format!("`{model_name}` takes {declared}"))
        .help(format!(
            "declare the input as `i32[{b}, {length}]`, or set `{setting}` to the input's length"
        ));
        self.error(d);
        false
    }

    /// Whether samples whose shape has a rank known before loading (IDX images: `[rows, cols]`)
    /// could feed the model's input under `data_source::image_inputs`; their sizes, and NumPy
    /// arrays' shapes, are checked when the data loads.
    pub(in crate::check) fn sample_shape_fits(
        &mut self,
        model: usize,
        data: usize,
        use_span: Span,
    ) -> bool {
        let Some(rank) = self.data[data].source.sample_rank() else {
            return true;
        };
        let input = self.models[model].input_sample_shape();
        if data_source::rank_could_feed(rank, &input) {
            return true;
        }
        let m = &self.models[model];
        let b = &self.model_info[model].batch_symbol;
        let input_span = self.model_info[model].input_type_span;
        let (model_name, data_name) = (&m.name, &self.data[data].name);
        let declared = data_source::input_text(&input, b);
        // Without its axes of 1, `[1, 28, 28]` is the image the user meant.
        let image: Vec<usize> = input.iter().copied().filter(|&n| n != 1).collect();
        let help = match image[..] {
            [rows, cols] => format!(
                "write {}: one channel axis, last, as Keras lays images out",
                data_source::input_text(&[rows, cols, 1], b)
            ),
            _ => format!(
                "an IDX image has one value per pixel: write f32[{b}, rows, cols, 1] \
                 (f32[{b}, 28, 28, 1] for MNIST)"
            ),
        };
        let d = Diagnostic::error(
            "E0225",
            format!("`{data_name}` holds IDX images, which cannot feed `{model_name}`'s input {declared}"),
        )
        .primary(use_span, "IDX images are [rows, cols] per sample")
        .secondary(input_span, format!("`{model_name}` takes {declared}"))
        .help(help)
        .note(format!(
            "images of rows × cols pixels feed f32[{b}, rows · cols], f32[{b}, rows, cols] or \
             f32[{b}, rows, cols, 1]; their sizes are checked when the data loads"
        ));
        self.error(d);
        false
    }
}
