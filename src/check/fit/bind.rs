//! A call of a loss, metric, schedule or callback bound against its definition
//! (`settings::def`): each argument checked as its parameter's kind says, defaults for the rest,
//! then the definition builds the checked value. Nothing here names a particular built-in.

use super::super::Checker;
use super::super::args::Aliases;
use crate::diag::Diagnostic;
use crate::settings::def::{Def, Param, ParamKind, Value};
use crate::syntax::ast;

impl Checker {
    /// `callee(args)` (all of `expr`) against `def`. Every argument is read, so each bad one is
    /// reported; a check across arguments runs only when each passed its own.
    pub(super) fn bind_def<T, F>(
        &mut self,
        def: &Def<T, F>,
        callee: &ast::Ident,
        args: &[ast::Arg],
        expr: &ast::Expr,
    ) -> Option<T> {
        let names = def.param_names();
        let bound = self.bind(callee, args, &names, Aliases::Keras);
        let mut ok = bound.ok;
        let mut values = Vec::with_capacity(def.params.len());
        for (slot, param) in def.params.iter().enumerate() {
            let value = match (bound.get(slot), &param.default) {
                (Some(e), _) => self.param_value(def.name, param, e),
                (None, Some(default)) => Some(default.clone()),
                (None, None) => {
                    if bound.ok {
                        self.missing(callee, param.name);
                    }
                    None
                }
            };
            match value {
                Some(value) => values.push(value),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        match (def.build)(&values) {
            Ok(value) => Some(value),
            Err(problem) => {
                let at = (problem.at)
                    .and_then(|name| names.iter().position(|n| *n == name))
                    .and_then(|slot| bound.get(slot));
                let span = at.map_or(expr.span, |e| e.span);
                let mut d =
                    Diagnostic::error("E0303", problem.message).primary(span, problem.label);
                if let Some(note) = problem.note {
                    d = d.note(note);
                }
                self.error(d);
                None
            }
        }
    }

    /// One argument, read as its kind says (`callee` names the call in messages).
    fn param_value(&mut self, callee: &str, param: &Param, e: &ast::Expr) -> Option<Value> {
        let what = format!("`{}`", param.name);
        match param.kind {
            ParamKind::Bool => self.boolean(e, &what).map(Value::Bool),
            ParamKind::Positive => self.positive_f32(e, &what).map(Value::F32),
            ParamKind::Fraction => self.fraction(e, &what).map(Value::F32),
            ParamKind::Factor => {
                let f = self.fraction(e, &what)?;
                if f == 0.0 {
                    self.error(
                        Diagnostic::error("E0303", format!("{what} must be a number in (0, 1)"))
                            .primary(e.span, "a factor of 0 would stop training"),
                    );
                    return None;
                }
                Some(Value::F32(f))
            }
            ParamKind::NonNegative => self.non_negative(e, &what).map(Value::F64),
            ParamKind::PositiveInt => self.positive_int(e, &what).map(|n| Value::Int(n as u64)),
            ParamKind::Count => self.seed_value(e, &what).map(Value::Int),
            ParamKind::Monitor => self.string(e, &what).map(|s| Value::Str(s.into())),
            ParamKind::CheckpointPath => {
                let path = self.string(e, "the checkpoint path")?;
                self.checkpoint_path(e.span, &path, &format!("`{callee}`"))?;
                Some(Value::Str(path.into()))
            }
            ParamKind::Steps => {
                let steps = self.list(e, &what, "a list of numbers", None, |c, e| {
                    c.seed_value(e, "a boundary")
                })?;
                Some(Value::Ints(steps.into_iter().map(|(x, _)| x).collect()))
            }
            ParamKind::Rates => {
                let rates = self.list(e, &what, "a list of numbers", None, |c, e| {
                    c.positive_f32(e, "a learning rate")
                })?;
                Some(Value::F32s(rates.into_iter().map(|(x, _)| x).collect()))
            }
        }
    }
}
