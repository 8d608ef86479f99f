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
            Item::Let(binding) => self.let_stmt(binding),
            Item::Model(model) => {
                self.line(&format!("model {}", model.name.name), model.span);
                self.nested(|p| {
                    p.ident("name", &model.name);
                    p.params(&model.params);
                    for output in &model.outputs {
                        p.line("output", output.span);
                        p.nested(|p| p.ty(output));
                    }
                    p.block(&model.body);
                });
            }
            Item::Layer(layer) => {
                self.line(&format!("layer {}", layer.name.name), layer.span);
                self.nested(|p| {
                    p.ident("name", &layer.name);
                    p.params(&layer.params);
                    for member in &layer.members {
                        match member {
                            LayerMember::Param {
                                name,
                                ty,
                                init,
                                span,
                            } => {
                                p.line(&format!("param {}", name.name), *span);
                                p.nested(|p| {
                                    p.ident("name", name);
                                    p.ty(ty);
                                    if let Some(init) = init {
                                        p.expr(init);
                                    }
                                });
                            }
                            LayerMember::Forward(body) => {
                                p.line("forward", body.span);
                                p.nested(|p| p.fn_body(body));
                            }
                            LayerMember::Error(span) => p.line("error", *span),
                        }
                    }
                });
            }
            Item::Fn(function) => {
                self.line(&format!("fn {}", function.name.name), function.span);
                self.nested(|p| {
                    p.ident("name", &function.name);
                    p.fn_body(&function.body);
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
            Item::Action(action) => {
                self.line(
                    &format!("{} {}", action.kind.keyword(), action.model.name),
                    action.span,
                );
                self.nested(|p| {
                    p.ident("model", &action.model);
                    if let Some(data) = &action.data {
                        p.ident("data", data);
                    }
                    if let Some(path) = &action.path {
                        p.expr(path);
                    }
                    for (name, value) in &action.options {
                        p.ident("option", name);
                        p.expr(value);
                    }
                });
            }
            Item::Error(span) => self.line("error", *span),
        }
    }

    fn params(&mut self, params: &[Param]) {
        for param in params {
            self.line(&format!("param {}", param.name.name), param.span);
            self.nested(|p| {
                p.ident("name", &param.name);
                if let Some(ty) = &param.ty {
                    p.ty(ty);
                }
                if let Some(default) = &param.default {
                    p.line("default", default.span);
                    p.nested(|p| p.expr(default));
                }
            });
        }
    }

    fn fn_body(&mut self, body: &FnBody) {
        self.params(&body.params);
        for output in body.outputs.iter().flatten() {
            self.line("output", output.span);
            self.nested(|p| p.ty(output));
        }
        self.block(&body.body);
    }

    fn block(&mut self, body: &[Stmt]) {
        for stmt in body {
            match stmt {
                Stmt::Let(binding) => self.let_stmt(binding),
                Stmt::Expr(expr) => self.expr(expr),
                Stmt::Error(span) => self.line("error", *span),
            }
        }
    }

    fn let_stmt(&mut self, binding: &LetStmt) {
        self.line(&format!("let {}", binding.name.name), binding.span);
        self.nested(|p| {
            p.ident("name", &binding.name);
            if let Some(ty) = &binding.ty {
                p.ty(ty);
            }
            p.expr(&binding.value);
        });
    }

    fn ident(&mut self, role: &str, ident: &Ident) {
        self.line(&format!("{role} {}", ident.name), ident.span);
    }

    fn ty(&mut self, ty: &TypeExpr) {
        let text = match &ty.dims {
            Some(dims) => {
                let dims: Vec<String> = dims.iter().map(dim_text).collect();
                format!("type {}[{}]", ty.dtype.name, dims.join(", "))
            }
            None => format!("type {}", ty.dtype.name),
        };
        self.line(&text, ty.span);
    }

    fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Int(n) => self.line(&format!("int {n}"), expr.span),
            ExprKind::Float(x) => self.line(&format!("float {x:?}"), expr.span),
            ExprKind::Str(s) => self.line(&format!("string {s:?}"), expr.span),
            ExprKind::Bool(b) => self.line(&format!("bool {b}"), expr.span),
            ExprKind::Name(name) => self.line(&format!("name {name}"), expr.span),
            ExprKind::Error => self.line("error", expr.span),
            ExprKind::Tuple(items) => {
                self.line("tuple", expr.span);
                self.nested(|p| items.iter().for_each(|item| p.expr(item)));
            }
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

/// A dimension as written, with the parentheses its structure needs.
pub fn dim_text(dim: &Dim) -> String {
    match &dim.kind {
        DimKind::Literal(n) => n.to_string(),
        DimKind::Symbol(s) => s.clone(),
        DimKind::Binary { op, lhs, rhs } => {
            let wrap = |d: &Dim| match (&d.kind, op) {
                (
                    DimKind::Binary {
                        op: BinaryOp::Add | BinaryOp::Sub,
                        ..
                    },
                    BinaryOp::Mul | BinaryOp::Div,
                ) => format!("({})", dim_text(d)),
                _ => dim_text(d),
            };
            format!("{} {} {}", wrap(lhs), op.symbol(), wrap(rhs))
        }
        DimKind::Error => "<error>".to_string(),
    }
}
