//! Readers for the plain fit settings: `validation`, and lists.

use super::super::args::found;
use super::super::{Checker, Kind};
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast;

impl Checker {
    /// `validation NAME`: a data set, looked up like the one after `on`.
    pub(super) fn validation_data(&mut self, expr: &ast::Expr) -> Option<usize> {
        match &expr.kind {
            ast::ExprKind::Name(name) => {
                let before = self.diags.len();
                let index = self.lookup(
                    &ast::Ident {
                        name: name.clone(),
                        span: expr.span,
                    },
                    Kind::Data,
                );
                // A model named here: the help for `fit MODEL on DATA` does not fit.
                for d in &mut self.diags[before..] {
                    if d.code == "E0112" {
                        d.help = Some("`validation` names the data set to evaluate on".into());
                    }
                }
                index
            }
            ast::ExprKind::Error => None,
            _ => {
                self.error(
                    Diagnostic::error("E0303", "`validation` must name a data set")
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help("declare `data test = ...` and write `validation test`"),
                );
                None
            }
        }
    }

    /// `[a, b, ...]`, each item read by `item` and kept with its span. Every item is read, so
    /// each bad one is reported; the list is `None` if any was bad.
    pub(super) fn list<T>(
        &mut self,
        expr: &ast::Expr,
        what: &str,
        expected: &str,
        help: Option<&str>,
        item: impl Fn(&mut Self, &ast::Expr) -> Option<T>,
    ) -> Option<Vec<(T, Span)>> {
        let ast::ExprKind::List(items) = &expr.kind else {
            if expr.kind != ast::ExprKind::Error {
                let mut d = Diagnostic::error("E0303", format!("{what} must be {expected}"))
                    .primary(expr.span, format!("found {}", found(expr)));
                if let Some(help) = help {
                    d = d.help(help);
                }
                self.error(d);
            }
            return None;
        };
        let items: Vec<Option<(T, Span)>> = items
            .iter()
            .map(|e| item(self, e).map(|x| (x, e.span)))
            .collect();
        items.into_iter().collect()
    }
}
