//! A stable, indented print of the AST: one node per line, each with its span as `@start..end`.

use super::ast::*;
use crate::diag::Span;
use std::fmt::Write;

pub fn print_program(program: &Program) -> String {
    let mut p = Printer::default();
    for item in &program.items {
        p.item(item);
    }
    p.out
}

#[derive(Default)]
struct Printer {
    out: String,
    depth: usize,
}

impl Printer {
    fn line(&mut self, text: &str, span: Span) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        // Writing into a String cannot fail.
        let _ = writeln!(self.out, "{text} @{}..{}", span.start, span.end);
    }

    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        self.depth += 1;
        f(self);
        self.depth -= 1;
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Data(data) => {
                self.line(&format!("data {}", data.name.name), data.span);
                self.nested(|p| {
                    p.ident("name", &data.name);
                    p.expr(&data.value);
                });
            }
            Item::Model(model) => {
                self.line(&format!("model {}", model.name.name), model.span);
                self.nested(|p| {
                    p.ident("name", &model.name);
                    for param in &model.params {
                        p.line(&format!("param {}", param.name.name), param.span);
                        p.nested(|p| {
                            p.ident("name", &param.name);
                            p.ty(&param.ty);
                        });
                    }
                    p.line("output", model.output.span);
                    p.nested(|p| p.ty(&model.output));
                    for stmt in &model.body {
                        match stmt {
                            Stmt::Expr(expr) => p.expr(expr),
                            Stmt::Error(span) => p.line("error", *span),
                        }
                    }
                });
            }
            Item::Fit(fit) => {
                self.line(
                    &format!("fit {} on {}", fit.model.name, fit.data.name),
                    fit.span,
                );
                self.nested(|p| {
                    p.ident("model", &fit.model);
                    p.ident("data", &fit.data);
                    for setting in &fit.settings {
                        match setting {
                            Setting::Pair { key, value, span } => {
                                p.line(&format!("setting {}", key.name), *span);
                                p.nested(|p| {
                                    p.ident("key", key);
                                    p.expr(value);
                                });
                            }
                            Setting::Error(span) => p.line("error", *span),
                        }
                    }
                });
            }
            Item::Error(span) => self.line("error", *span),
        }
    }

    fn ident(&mut self, role: &str, ident: &Ident) {
        self.line(&format!("{role} {}", ident.name), ident.span);
    }

    fn ty(&mut self, ty: &TypeExpr) {
        let dims: Vec<String> = ty
            .dims
            .iter()
            .map(|dim| match &dim.kind {
                DimKind::Literal(n) => n.to_string(),
                DimKind::Symbol(s) => s.clone(),
                DimKind::Error => "<error>".to_string(),
            })
            .collect();
        self.line(
            &format!("type {}[{}]", ty.dtype.name, dims.join(", ")),
            ty.span,
        );
    }

    fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Int(n) => self.line(&format!("int {n}"), expr.span),
            ExprKind::Float(x) => self.line(&format!("float {x:?}"), expr.span),
            ExprKind::Str(s) => self.line(&format!("string {s:?}"), expr.span),
            ExprKind::Bool(b) => self.line(&format!("bool {b}"), expr.span),
            ExprKind::Name(name) => self.line(&format!("name {name}"), expr.span),
            ExprKind::Error => self.line("error", expr.span),
            ExprKind::List(items) => {
                self.line("list", expr.span);
                self.nested(|p| items.iter().for_each(|item| p.expr(item)));
            }
            ExprKind::Call { callee, args } => {
                self.line("call", expr.span);
                self.nested(|p| {
                    p.expr(callee);
                    for arg in args {
                        match &arg.name {
                            Some(name) => p.line(&format!("arg {}", name.name), arg.span),
                            None => p.line("arg", arg.span),
                        }
                        p.nested(|p| p.expr(&arg.value));
                    }
                });
            }
            ExprKind::Unary { op, operand } => {
                let text = match op {
                    UnaryOp::Neg => "neg",
                };
                self.line(text, expr.span);
                self.nested(|p| p.expr(operand));
            }
            ExprKind::Binary { op, lhs, rhs } => {
                self.line(&format!("binary {}", op.symbol()), expr.span);
                self.nested(|p| {
                    p.expr(lhs);
                    p.expr(rhs);
                });
            }
        }
    }
}
