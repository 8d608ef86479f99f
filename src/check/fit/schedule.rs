//! A learning-rate schedule (`optimizer adam(lr: cosine_decay(...))`): the call bound against
//! the schedule's definition (`settings::schedule`).

use super::super::{Checker, unknown};
use crate::settings::def::{AliasOf, with_aliases};
use crate::settings::schedule::{self, Schedule};
use crate::syntax::ast;

impl Checker {
    /// A schedule call, with Keras's argument names and defaults.
    pub(super) fn schedule(&mut self, expr: &ast::Expr) -> Option<Schedule> {
        let (callee, args) = self.call_parts(expr, "a learning rate or a schedule")?;
        let Some(def) = schedule::find(&callee.name) else {
            let names = schedule::names();
            self.error(unknown(
                "E0118",
                "learning-rate schedule",
                &callee,
                "not a schedule",
                &with_aliases(AliasOf::Schedule, &names),
                format!("schedules: {}", names.join(", ")),
            ));
            return None;
        };
        self.bind_def(def, &callee, args, expr)
    }
}
