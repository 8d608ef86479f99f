//! Reading call arguments and literal values, with one diagnostic per problem.

use super::Checker;
use super::elab::Elab;
use super::value::Value;
use crate::diag::{Diagnostic, Span};
use crate::settings::def::{self, AliasOf};
use crate::suggest;
use crate::syntax::ast::{Arg, BinaryOp, Expr, ExprKind, Ident, UnaryOp};

/// Arguments bound to parameter slots; `ok` is false when binding reported an error.
pub struct Bound<'a> {
    pub slots: Vec<Option<&'a Expr>>,
    /// The parameters the arguments were bound to, for "needs `path`".
    pub params: Vec<String>,
    pub ok: bool,
}

impl Bound<'_> {
    pub fn get(&self, slot: usize) -> Option<&Expr> {
        self.slots.get(slot).copied().flatten()
    }
}

impl Checker {
    /// `expr` with every name of a number, string or boolean constant (a top-level `let`) replaced
    /// by its value, at the name's span: the settings of `fit` and the arguments of data sources
    /// are read as literals, and a constant stands for one there as it does in a model.
    pub(super) fn with_constants(&mut self, expr: &Expr) -> Expr {
        let literal = |kind: ExprKind| Expr::new(kind, expr.span);
        // A value as the literal that reads as it; a negative number as the parser writes one,
        // a negation of its magnitude.
        let as_literal = |value: &Value| {
            let negated = |kind: ExprKind| {
                let operand = Box::new(literal(kind));
                literal(ExprKind::Unary {
                    op: UnaryOp::Neg,
                    operand,
                })
            };
            Some(match value {
                Value::Int(n) if *n < 0 => negated(ExprKind::Int(n.unsigned_abs())),
                Value::Int(n) => literal(ExprKind::Int(n.unsigned_abs())),
                Value::Float(x) if *x < 0.0 => negated(ExprKind::Float(-x)),
                Value::Float(x) => literal(ExprKind::Float(*x)),
                Value::Bool(b) => literal(ExprKind::Bool(*b)),
                Value::Str(text) => literal(ExprKind::Str(text.clone())),
                _ => return None,
            })
        };
        match &expr.kind {
            ExprKind::Name(name) => {
                let Some(value) = self.consts.get(name).and_then(as_literal) else {
                    return expr.clone();
                };
                self.used_defs.insert(name.clone());
                value
            }
            ExprKind::List(items) => {
                let items = items.iter().map(|e| self.with_constants(e)).collect();
                literal(ExprKind::List(items))
            }
            ExprKind::Tuple(items) => {
                let items = items.iter().map(|e| self.with_constants(e)).collect();
                literal(ExprKind::Tuple(items))
            }
            ExprKind::Call { callee, args } => {
                let args = (args.iter())
                    .map(|arg| Arg {
                        value: self.with_constants(&arg.value),
                        ..arg.clone()
                    })
                    .collect();
                literal(ExprKind::Call {
                    callee: callee.clone(),
                    args,
                })
            }
            // Arithmetic on numbers (`2 * 16`, `epochs_per_stage * 3`) is evaluated as a `let`
            // would evaluate it, and stands for its value.
            ExprKind::Binary { .. } if self.is_numeric_arithmetic(expr) => {
                let value = Elab::new(self, "setting").eval(expr);
                as_literal(&value).unwrap_or_else(|| expr.clone())
            }
            // A double negation (`-n` of a negative `n`, or `--3`) is the positive literal: the
            // readers below call any negation negative.
            ExprKind::Unary { op, operand } => match self.with_constants(operand) {
                Expr {
                    kind:
                        ExprKind::Unary {
                            op: UnaryOp::Neg,
                            operand: inner,
                        },
                    ..
                } if *op == UnaryOp::Neg => literal(inner.kind),
                operand => literal(ExprKind::Unary {
                    op: *op,
                    operand: Box::new(operand),
                }),
            },
            _ => expr.clone(),
        }
    }

    /// Whether `expr` is `+ - * /` and negation over number literals and number constants only:
    /// evaluating it can report nothing but the arithmetic's own errors.
    fn is_numeric_arithmetic(&self, expr: &Expr) -> bool {
        match &expr.kind {
            ExprKind::Int(_) | ExprKind::Float(_) => true,
            ExprKind::Name(name) => {
                matches!(self.consts.get(name), Some(Value::Int(_) | Value::Float(_)))
            }
            ExprKind::Unary { operand, .. } => self.is_numeric_arithmetic(operand),
            ExprKind::Binary { op, lhs, rhs } => {
                *op != BinaryOp::MatMul
                    && self.is_numeric_arithmetic(lhs)
                    && self.is_numeric_arithmetic(rhs)
            }
            _ => false,
        }
    }
}

/// "found ..." wording for a value of the wrong kind.
pub fn found(expr: &Expr) -> &'static str {
    match &expr.kind {
        ExprKind::Int(_) => "a whole number",
        ExprKind::Float(_) => "a decimal number",
        ExprKind::Str(_) => "a string",
        ExprKind::Bool(_) => "a boolean",
        ExprKind::Name(_) => "a name",
        ExprKind::List(_) => "a list",
        ExprKind::Tuple(_) => "a tuple",
        ExprKind::Call { .. } => "a call",
        ExprKind::Unary { .. } => "a negated value",
        ExprKind::Binary { .. } => "an operator expression",
        ExprKind::Error => "an invalid expression",
    }
}

/// Whether a call's arguments may be written with their aliases.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Aliases {
    /// Settings' calls and initializers: Keras's argument names too.
    Keras,
    /// Layers and functions: one spelling each.
    None,
}

/// Where a call's arguments land: `slots[i]` is the index of the argument bound to parameter
/// `i`; `errors` has one diagnostic per argument that could not be bound, in argument order.
pub(super) struct Binding {
    pub slots: Vec<Option<usize>>,
    pub errors: Vec<Diagnostic>,
}

/// Binds arguments, each given as its name (if any) and span, to `params`: positional ones in
/// order, then named ones. The one binder for both the checker (AST arguments) and elaboration
/// (evaluated arguments), so their diagnostics cannot drift apart. With `aliases`, a name may
/// be an argument's alias (`learning_rate` for `lr`, `settings::def::ALIASES`). The last
/// `named_only` parameters take named arguments only (a layer's initializers).
pub(super) fn bind_slots<'n>(
    callee: &str,
    args: impl IntoIterator<Item = (Option<&'n Ident>, Span)>,
    params: &[&str],
    named_only: usize,
    aliases: Aliases,
) -> Binding {
    let mut binding = Binding {
        slots: vec![None; params.len()],
        errors: Vec::new(),
    };
    let (by_position, by_name) = params.split_at(params.len() - named_only);
    let mut positional = 0;
    let mut named_seen = false;
    for (index, (name, span)) in args.into_iter().enumerate() {
        let slot = match name {
            None => {
                if named_seen {
                    binding.errors.push(
                        Diagnostic::error("E0306", "positional argument after a named one")
                            .primary(span, "give this argument a name")
                            .help(format!("`{callee}` takes {}", params.join(", "))),
                    );
                    continue;
                }
                positional += 1;
                if positional > by_position.len() {
                    let n = by_position.len();
                    let mut note = match n {
                        0 => format!("`{callee}` takes no arguments"),
                        _ => format!(
                            "`{callee}` takes at most {n} argument{}: {}",
                            if n == 1 { "" } else { "s" },
                            by_position.join(", ")
                        ),
                    };
                    if !by_name.is_empty() {
                        note.push_str(&format!(" (and by name: {})", by_name.join(", ")));
                    }
                    binding.errors.push(
                        Diagnostic::error("E0305", format!("too many arguments to `{callee}`"))
                            .primary(span, "unexpected argument")
                            .note(note),
                    );
                    continue;
                }
                positional - 1
            }
            Some(name) => {
                named_seen = true;
                let wanted = match aliases {
                    Aliases::Keras => def::canonical(AliasOf::Argument, &name.name),
                    Aliases::None => &name.name,
                };
                match params.iter().position(|p| *p == wanted) {
                    Some(slot) => slot,
                    None => {
                        let mut d = Diagnostic::error(
                            "E0111",
                            format!("`{callee}` has no argument `{}`", name.name),
                        )
                        .primary(name.span, "unknown argument")
                        .note(format!("`{callee}` takes {}", params.join(", ")));
                        let candidates = match aliases {
                            Aliases::Keras => def::with_aliases(AliasOf::Argument, params),
                            Aliases::None => params.to_vec(),
                        };
                        if let Some(best) = suggest::closest(&name.name, candidates) {
                            d = d.help(format!("did you mean `{best}`?"));
                        }
                        binding.errors.push(d);
                        continue;
                    }
                }
            }
        };
        if binding.slots[slot].is_some() {
            let mut d = Diagnostic::error("E0305", format!("`{}` is given twice", params[slot]))
                .primary(span, "given again here");
            if let Some(name) = name.filter(|n| n.name != params[slot]) {
                d = d.note(format!(
                    "`{}` is another name for `{}`",
                    name.name, params[slot]
                ));
            }
            binding.errors.push(d);
            continue;
        }
        binding.slots[slot] = Some(index);
    }
    binding
}

impl Checker {
    /// Splits `name(args)` (or reports that `expr` is not a call of a plain name).
    pub(super) fn call_parts<'a>(
        &mut self,
        expr: &'a Expr,
        expected: &str,
    ) -> Option<(Ident, &'a [Arg])> {
        if let ExprKind::Call { callee, args } = &expr.kind
            && let ExprKind::Name(name) = &callee.kind
        {
            let ident = Ident {
                name: name.clone(),
                span: callee.span,
            };
            return Some((ident, args));
        }
        if expr.kind != ExprKind::Error {
            let d = self.unsupported(expr, expected);
            self.error(d);
        }
        None
    }

    /// `name` or `name(args)`: a setting's value where a bare name is a call without arguments.
    /// A string names it too (`loss "binary_crossentropy"`), as Keras's `compile` takes one.
    pub(super) fn name_or_call<'a>(
        &mut self,
        expr: &'a Expr,
        expected: &str,
    ) -> Option<(Ident, &'a [Arg])> {
        match &expr.kind {
            ExprKind::Name(name) | ExprKind::Str(name) => Some((
                Ident {
                    name: name.clone(),
                    span: expr.span,
                },
                &[],
            )),
            _ => self.call_parts(expr, expected),
        }
    }

    pub(super) fn unsupported(&self, expr: &Expr, expected: &str) -> Diagnostic {
        let (code, message) = match &expr.kind {
            ExprKind::Binary { .. } | ExprKind::Unary { .. } => {
                ("E0309", "operators are not supported here yet".to_string())
            }
            _ => ("E0309", format!("expected {expected}")),
        };
        Diagnostic::error(code, message).primary(expr.span, format!("found {}", found(expr)))
    }

    /// Binds positional and named arguments to `params` in order.
    pub(super) fn bind<'a>(
        &mut self,
        callee: &Ident,
        args: &'a [Arg],
        params: &[&str],
        aliases: Aliases,
    ) -> Bound<'a> {
        self.bind_named(callee, args, params, 0, aliases)
    }

    /// `bind`, with the last `named_only` parameters given by name only (as Keras's `**kwargs`).
    pub(super) fn bind_named<'a>(
        &mut self,
        callee: &Ident,
        args: &'a [Arg],
        params: &[&str],
        named_only: usize,
        aliases: Aliases,
    ) -> Bound<'a> {
        let binding = bind_slots(
            &callee.name,
            args.iter().map(|a| (a.name.as_ref(), a.span)),
            params,
            named_only,
            aliases,
        );
        let ok = binding.errors.is_empty();
        for d in binding.errors {
            self.error(d);
        }
        Bound {
            slots: binding
                .slots
                .into_iter()
                .map(|i| i.map(|i| &args[i].value))
                .collect(),
            params: params.iter().map(|p| p.to_string()).collect(),
            ok,
        }
    }

    /// The argument in `slot`, or an error naming the missing parameter.
    pub(super) fn required<'a>(
        &mut self,
        bound: &Bound<'a>,
        slot: usize,
        callee: &Ident,
    ) -> Option<&'a Expr> {
        let value = bound.slots.get(slot).copied().flatten();
        if value.is_none() && bound.ok {
            let param = bound.params.get(slot).map_or("an argument", String::as_str);
            self.missing(callee, param);
        }
        value
    }

    /// A required argument `param` not given to `callee`.
    pub(super) fn missing(&mut self, callee: &Ident, param: &str) {
        self.error(
            Diagnostic::error("E0304", format!("`{}` needs `{param}`", callee.name))
                .primary(callee.span, format!("missing `{param}`")),
        );
    }

    pub(super) fn positive_int(&mut self, expr: &Expr, what: &str) -> Option<usize> {
        match &expr.kind {
            ExprKind::Int(n) => match usize::try_from(*n) {
                Ok(0) => self.bad_value(expr, what, "a positive integer", "this is zero"),
                Ok(n) => Some(n),
                Err(_) => self.bad_value(expr, what, "a positive integer", "too large"),
            },
            ExprKind::Unary {
                op: UnaryOp::Neg, ..
            } => self.bad_value(expr, what, "a positive integer", "this is negative"),
            _ => self.wrong_kind(expr, what, "a positive integer"),
        }
    }

    pub(super) fn seed_value(&mut self, expr: &Expr, what: &str) -> Option<u64> {
        match &expr.kind {
            ExprKind::Int(n) => Some(*n),
            ExprKind::Unary {
                op: UnaryOp::Neg, ..
            } => self.bad_value(expr, what, "a non-negative integer", "this is negative"),
            _ => self.wrong_kind(expr, what, "a non-negative integer"),
        }
    }

    pub(super) fn boolean(&mut self, expr: &Expr, what: &str) -> Option<bool> {
        match &expr.kind {
            ExprKind::Bool(b) => Some(*b),
            _ => self.wrong_kind(expr, what, "`true` or `false`"),
        }
    }

    pub(super) fn string(&mut self, expr: &Expr, what: &str) -> Option<String> {
        match &expr.kind {
            ExprKind::Str(s) => Some(s.clone()),
            _ => self.wrong_kind(expr, what, "a string"),
        }
    }

    pub(super) fn number(expr: &Expr) -> Option<f64> {
        match &expr.kind {
            // Precision loss is fine: these become f32 hyper-parameters.
            ExprKind::Int(n) => Some(*n as f64),
            ExprKind::Float(x) => Some(*x),
            _ => None,
        }
    }

    pub(super) fn positive_f32(&mut self, expr: &Expr, what: &str) -> Option<f32> {
        if let ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } = expr.kind
        {
            return self.bad_value(expr, what, "a positive number", "this is negative");
        }
        let Some(x) = Self::number(expr) else {
            return self.wrong_kind(expr, what, "a positive number");
        };
        let y = x as f32;
        if x > 0.0 && y > 0.0 && y.is_finite() {
            Some(y)
        } else {
            self.bad_value(expr, what, "a positive number", "out of range")
        }
    }

    /// A number `>= 0`, e.g. a callback's `min_delta`.
    pub(super) fn non_negative(&mut self, expr: &Expr, what: &str) -> Option<f64> {
        if let ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } = expr.kind
        {
            return self.bad_value(expr, what, "a number >= 0", "this is negative");
        }
        let Some(x) = Self::number(expr) else {
            return self.wrong_kind(expr, what, "a number >= 0");
        };
        if x.is_finite() {
            Some(x)
        } else {
            self.bad_value(expr, what, "a number >= 0", "out of range")
        }
    }

    /// A number `>= 0` that a step uses as an f32 constant (a weight decay): it must fit one.
    pub(super) fn non_negative_f32(&mut self, expr: &Expr, what: &str) -> Option<f64> {
        let x = self.non_negative(expr, what)?;
        if (x as f32).is_finite() {
            Some(x)
        } else {
            self.bad_value(expr, what, "a number >= 0", "out of range")
        }
    }

    /// A number in [0, 1), e.g. Adam's betas.
    pub(super) fn fraction(&mut self, expr: &Expr, what: &str) -> Option<f32> {
        if let ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } = expr.kind
        {
            return self.bad_value(expr, what, "a number in [0, 1)", "this is negative");
        }
        let Some(x) = Self::number(expr) else {
            return self.wrong_kind(expr, what, "a number in [0, 1)");
        };
        let y = x as f32;
        if (0.0..1.0).contains(&y) {
            Some(y)
        } else {
            self.bad_value(expr, what, "a number in [0, 1)", "out of range")
        }
    }

    /// A number in (0, 1), e.g. `validation_split`.
    pub(super) fn split_fraction(&mut self, expr: &Expr, what: &str) -> Option<f64> {
        if let ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } = expr.kind
        {
            return self.bad_value(expr, what, "a number between 0 and 1", "this is negative");
        }
        let Some(x) = Self::number(expr) else {
            return self.wrong_kind(expr, what, "a number between 0 and 1");
        };
        if x > 0.0 && x < 1.0 {
            Some(x)
        } else {
            self.bad_value(expr, what, "a number between 0 and 1", "out of range")
        }
    }

    fn wrong_kind<T>(&mut self, expr: &Expr, what: &str, expected: &str) -> Option<T> {
        if expr.kind != ExprKind::Error {
            self.error(
                Diagnostic::error("E0303", format!("{what} must be {expected}"))
                    .primary(expr.span, format!("found {}", found(expr))),
            );
        }
        None
    }

    fn bad_value<T>(&mut self, expr: &Expr, what: &str, expected: &str, label: &str) -> Option<T> {
        self.error(
            Diagnostic::error("E0303", format!("{what} must be {expected}"))
                .primary(expr.span, label),
        );
        None
    }
}
