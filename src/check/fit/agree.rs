//! Whether the model, the data and the loss of a fit agree: what the checker knows statically
//! of a data set (its features and classes) against the model's input and output and the
//! loss's labels.

use super::super::Checker;
use crate::diag::{Diagnostic, Span};
use crate::settings::loss::{Labels, Loss};
use crate::settings::{DataSource, Metric};
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
    /// synthetic data declares its features and classes; synthetic and IDX data have class
    /// labels. `use_span` is where the fit names the data set.
    pub(in crate::check) fn data_fits_model(
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
}
