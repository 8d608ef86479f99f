//! A built-in layer's `*_regularizer` argument, read against the regularizers' definitions
//! (`settings::regularizer`): a name, a string (`"l2"`, with Keras's default factors) or a call
//! with factors (`l2(0.001)`, `l1_l2(l1: 0.01, l2: 0.001)`).

use super::number_arg;
use crate::check::args::Aliases;
use crate::check::elab::Elab;
use crate::diag::Diagnostic;
use crate::settings::def::{self, AliasOf};
use crate::settings::regularizer::{self, Regularizer};
use crate::syntax::ast;

/// The regularizer `expr` writes; E0860 when it is none, or a factor is not a number zero or
/// more (Keras refuses a negative factor too).
pub fn regularizer(el: &mut Elab, expr: &ast::Expr) -> Option<Regularizer> {
    let (name, args): (&str, &[ast::Arg]) = match &expr.kind {
        ast::ExprKind::Name(name) | ast::ExprKind::Str(name) => (name, &[]),
        ast::ExprKind::Call { callee, args } => match &callee.kind {
            ast::ExprKind::Name(name) => (name, args.as_slice()),
            _ => ("", &[]),
        },
        _ => ("", &[]),
    };
    if name.is_empty() {
        el.error(
            Diagnostic::error("E0860", "expected a regularizer")
                .primary(
                    expr.span,
                    format!("found {}", crate::check::args::found(expr)),
                )
                .help("write a regularizer's name, such as `l2`, or call one, such as `l2(0.001)`"),
        );
        return None;
    }
    let Some(def) = regularizer::find(name) else {
        let names = regularizer::names();
        let mut d = Diagnostic::error("E0860", format!("unknown regularizer `{name}`"))
            .primary(expr.span, "not a regularizer")
            .note(format!("regularizers: {}", names.join(", ")));
        if let Some(best) =
            crate::suggest::closest(name, def::with_aliases(AliasOf::Regularizer, &names))
        {
            d = d.help(format!("did you mean `{best}`?"));
        }
        el.error(d);
        return None;
    };
    let params: Vec<&str> = def.factors.iter().map(|(name, _)| *name).collect();
    let evaluated = el.eval_args(args);
    let slots = el.bind_args(def.name, evaluated, &params, Aliases::Keras)?;
    let mut factors = Vec::new();
    for (slot, factor) in slots.into_iter().zip(&params) {
        factors.push(match slot {
            None => None,
            Some(arg) => {
                let span = arg.span;
                let x = number_arg(el, Some(arg), 0.0)? as f32;
                if !(x.is_finite() && x >= 0.0) {
                    el.error(
                        Diagnostic::error(
                            "E0860",
                            format!("`{}`'s `{factor}` must be a number zero or more", def.name),
                        )
                        .primary(span, format!("{x} is not"))
                        .help("the factor multiplies the penalty added to the loss"),
                    );
                    return None;
                }
                Some(x)
            }
        });
    }
    Some(def.with(&factors))
}
