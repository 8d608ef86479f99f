//! `optimizer NAME(...)`: the call bound against the optimizer's definition
//! (`settings::optimizer`).

use super::super::Checker;
use super::super::args::{Aliases, found};
use super::super::unknown;
use crate::diag::Diagnostic;
use crate::settings::def::{AliasOf, with_aliases};
use crate::settings::optimizer::{self, ArgDef, ArgKind, ArgValue};
use crate::settings::*;
use crate::syntax::ast;

impl Checker {
    /// The optimizer, and its learning-rate schedule when `lr` is one: the call bound against
    /// the optimizer's definition (`settings::optimizer`), each argument checked as it says.
    pub(super) fn optimizer(&mut self, expr: &ast::Expr) -> Option<(Optimizer, Option<Schedule>)> {
        let (callee, call_args) =
            self.name_or_call(expr, "an optimizer such as `adam(lr: 0.001)`")?;
        let Some(def) = optimizer::find(&callee.name) else {
            let names = optimizer::names();
            self.error(unknown(
                "E0108",
                "optimizer",
                &callee,
                "not an optimizer",
                &with_aliases(AliasOf::Optimizer, &names),
                format!("optimizers: {}", names.join(", ")),
            ));
            return None;
        };
        let params: Vec<&str> = def.args.iter().map(|a| a.name).collect();
        // Clipping and weight decay are Keras's keyword arguments: by name only.
        let named_only = (def.args.iter())
            .filter(|a| matches!(a.kind, ArgKind::Clip | ArgKind::Decay))
            .count();
        let bound = self.bind_named(&callee, call_args, &params, named_only, Aliases::Keras);
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
                ArgKind::NonNegative => self.non_negative_f32(e, &what).map(ArgValue::Number),
                ArgKind::Bool => self.boolean(e, &what).map(ArgValue::Bool),
                ArgKind::Choice(options) => self.choice(e, arg, options).map(ArgValue::Choice),
                ArgKind::Clip => match &e.kind {
                    ast::ExprKind::Name(n) if n == "none" => Some(ArgValue::Off),
                    _ => self.positive_f32(e, &what).map(exact),
                },
                ArgKind::Decay => match &e.kind {
                    ast::ExprKind::Name(n) if n == "none" => Some(ArgValue::Off),
                    _ => self.non_negative_f32(e, &what).map(ArgValue::Number),
                },
            };
            match value {
                Some(value) => args.set(arg.name, value),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let clips: Vec<&ast::Expr> = (def.args.iter().enumerate())
            .filter(|(i, arg)| {
                arg.kind == ArgKind::Clip
                    && args.get(arg.name) != ArgValue::Off
                    && bound.get(*i).is_some()
            })
            .filter_map(|(i, _)| bound.get(i))
            .collect();
        if let [first, second, ..] = clips.as_slice() {
            self.error(
                Diagnostic::error(
                    "E0861",
                    format!("`{}` takes one kind of gradient clipping, not two", def.name),
                )
                .primary(second.span, "a second bound")
                .secondary(first.span, "the first")
                .help("keep one of `clipnorm`, `clipvalue` and `global_clipnorm`, as Keras allows only one"),
            );
            return None;
        }
        let given: Vec<&str> = (def.args.iter().enumerate())
            .filter(|(i, _)| bound.get(*i).is_some())
            .map(|(_, arg)| arg.name)
            .collect();
        (def.resolve)(&mut args, &given);
        Some((Optimizer { def, args }, schedule))
    }

    /// A name among `options` (`profile: torch`).
    pub(super) fn choice(
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
    pub(super) fn learning_rate(
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
}
