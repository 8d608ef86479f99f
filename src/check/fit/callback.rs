//! `callbacks [...]`: each call bound against the callback's definition
//! (`settings::callback`), and its monitor checked against what the fit reports.

use super::super::{Checker, unknown};
use crate::diag::{Diagnostic, Span};
use crate::settings::Metric;
use crate::settings::callback::{self, Callback};
use crate::settings::def::{AliasOf, with_aliases};
use crate::syntax::ast;

impl Checker {
    /// One entry of `callbacks [early_stopping(...), checkpoint("best.safetensors"), ...]`.
    pub(super) fn callback(&mut self, expr: &ast::Expr) -> Option<Callback> {
        let (callee, args) =
            self.name_or_call(expr, "a callback such as `early_stopping(patience: 3)`")?;
        let Some(def) = callback::find(&callee.name) else {
            let names = callback::names();
            self.error(unknown(
                "E0117",
                "callback",
                &callee,
                "not a callback",
                &with_aliases(AliasOf::Callback, &names),
                format!("callbacks: {}", names.join(", ")),
            ));
            return None;
        };
        self.bind_def(def, &callee, args, expr)
    }

    /// A callback's monitor must be something the fit reports.
    pub(super) fn monitor_known(
        &mut self,
        callback: &Callback,
        span: Span,
        metrics: &[Metric],
        has_validation: bool,
    ) -> bool {
        let monitor = callback.monitor();
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
}
