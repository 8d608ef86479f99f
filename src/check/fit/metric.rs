//! `metrics [...]`: each name or call bound against the metric's definition
//! (`settings::metric`), and the metrics against the loss.

use super::super::{Checker, unknown};
use crate::diag::{Diagnostic, Span};
use crate::settings::Loss;
use crate::settings::def::{AliasOf, with_aliases};
use crate::settings::metric::{self, METRICS, Metric};
use crate::syntax::ast;
use std::collections::HashMap;

impl Checker {
    /// One metric: a name, or `top_k_accuracy(k: 5)`.
    pub(super) fn metric(&mut self, item: &ast::Expr) -> Option<Metric> {
        let (callee, args) = self.name_or_call(item, "a metric such as `accuracy`")?;
        let Some(def) = metric::find(&callee.name) else {
            // A metric's arguments are listed with it: most take none.
            let listing: Vec<String> = METRICS
                .iter()
                .map(|d| match d.params {
                    [] => d.name.to_string(),
                    _ => format!("{}({})", d.name, d.param_names().join(", ")),
                })
                .collect();
            self.error(unknown(
                "E0109",
                "metric",
                &callee,
                "not a metric",
                &with_aliases(AliasOf::Metric, &metric::names()),
                format!("metrics: {}", listing.join(", ")),
            ));
            return None;
        };
        if def.params.is_empty() && !args.is_empty() {
            self.error(
                Diagnostic::error("E0305", format!("`{}` takes no arguments", callee.name))
                    .primary(item.span, "arguments given here"),
            );
            return None;
        }
        self.bind_def(def, &callee, args, item)
    }

    /// Each metric listed once, and reading the labels the loss trains on.
    pub(super) fn metrics_fit_loss(
        &mut self,
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
                            "remove `{name}` ({} measure regression), or use \
                             `sparse_categorical_crossentropy`",
                            metric_list(false, "and")
                        )),
                );
            }
            if loss.uses_classes() && !metric.needs_classes() {
                ok = false;
                self.error(
                    Diagnostic::error("E0315", format!("`{name}` needs real-valued targets"))
                        .primary(*span, format!("{name} measures the error of real outputs"))
                        .secondary(loss_span, "but this loss trains on class labels")
                        .help(format!("use {}", metric_list(true, "or"))),
                );
            }
        }
        ok
    }
}

/// The metrics that read class labels (or real targets): `` `a`, `b` or `c` ``.
fn metric_list(classes: bool, conjunction: &str) -> String {
    let names: Vec<String> = METRICS
        .iter()
        .filter(|d| d.facts.needs_classes == classes)
        .map(|d| format!("`{}`", d.name))
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", rest.join(", ")),
        None => String::new(),
    }
}
