//! Top-level definitions models draw on: `let` constants, user `layer`s and `fn`s. Layers and
//! functions are checked where they are used (with the shapes they are used with); here they are
//! registered and their structure is checked.

use super::elab::Elab;
use super::value::{Func, Value};
use super::*;
use crate::diag::Diagnostic;
use crate::syntax::ast;

impl Checker {
    /// `let NAME = EXPR` at the top level: a number, string, boolean, list or function.
    pub(super) fn constant(&mut self, binding: &ast::LetStmt) {
        let fresh = self.declare(&binding.name, Kind::Constant);
        let mut el = Elab::new(self, "constant");
        let value = el.eval(&binding.value);
        let storable = |v: &Value| {
            matches!(
                v,
                Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Str(_)
            ) || matches!(
                v,
                Value::Func(Func::Builtin(_) | Func::UserFn(_) | Func::UserLayer(_))
            )
        };
        let ok = match &value {
            Value::List(items) => items.iter().all(storable),
            Value::Error => return,
            other => storable(other),
        };
        if !ok {
            let kind = value.kind_name();
            self.error(
                Diagnostic::error("E0309", format!("a top-level `let` cannot hold {kind}"))
                    .primary(binding.value.span, format!("this is {kind}"))
                    .help(if self.prompt {
                        "at the prompt, `let` keeps a tensor, or a number, string, boolean, list or function name"
                    } else {
                        "top-level `let`s hold numbers, strings, booleans, lists and function names; tensors and configured layers live inside a model"
                    }),
            );
            return;
        }
        if let Some(ty) = &binding.ty {
            let mut el = Elab::new(self, "constant");
            let mut env = types::DimEnv::default();
            if !el.check_declared(
                &value,
                binding.value.span,
                ty,
                &mut env,
                &format!("`{}`", binding.name.name),
            ) {
                return;
            }
        }
        if fresh {
            self.consts.insert(binding.name.name.clone(), value);
        }
    }

    pub(super) fn layer_definition(&mut self, decl: &ast::LayerDecl) {
        let fresh = self.declare(&decl.name, Kind::Layer);
        let forwards: Vec<&ast::FnBody> = decl
            .members
            .iter()
            .filter_map(|m| match m {
                ast::LayerMember::Forward(body) => Some(body),
                _ => None,
            })
            .collect();
        let mut ok = true;
        match forwards.as_slice() {
            [] => {
                ok = false;
                self.error(
                    Diagnostic::error("E0223", format!("layer `{}` has no `forward`", decl.name.name))
                        .primary(decl.name.span, "declared here")
                        .help("add `forward(x: f32[B, N]) -> f32[B, M] { ... }` saying what the layer computes"),
                );
            }
            [_] => {}
            [first, rest @ ..] => {
                ok = false;
                let mut d = Diagnostic::error(
                    "E0223",
                    format!("layer `{}` has more than one `forward`", decl.name.name),
                )
                .primary(rest[0].span, "another `forward`")
                .secondary(first.span, "the first one");
                d = d.help("keep one `forward`");
                self.error(d);
            }
        }
        // Configuration, parameter and input names share the layer's scope.
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let params = decl.params.iter().map(|p| (&p.name, p.ty.as_ref()));
        let members = decl.members.iter().filter_map(|m| match m {
            ast::LayerMember::Param { name, .. } => Some((name, None)),
            _ => None,
        });
        for (name, ty) in params.chain(members) {
            if let Some(first) = seen.insert(&name.name, name.span) {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0101",
                        format!(
                            "`{}` is defined twice in layer `{}`",
                            name.name, decl.name.name
                        ),
                    )
                    .primary(name.span, "defined again here")
                    .secondary(first, "first defined here"),
                );
            }
            if let Some(ty) = ty
                && ty.dims.is_some()
            {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0222",
                        "a layer's configuration is made of numbers, not tensors",
                    )
                    .primary(ty.span, "a tensor type")
                    .help("declare it `int`, `float` or `bool`; tensors come in through `forward`"),
                );
            }
        }
        if fresh && ok {
            self.user_layers
                .insert(decl.name.name.clone(), Rc::new(decl.clone()));
        }
    }

    pub(super) fn fn_definition(&mut self, decl: &ast::FnDecl) {
        let fresh = self.declare(&decl.name, Kind::Function);
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for param in &decl.body.params {
            if let Some(first) = seen.insert(&param.name.name, param.name.span) {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0101",
                        format!(
                            "`{}` is a parameter of `{}` twice",
                            param.name.name, decl.name.name
                        ),
                    )
                    .primary(param.name.span, "defined again here")
                    .secondary(first, "first defined here"),
                );
            }
        }
        if fresh && ok {
            self.fns
                .insert(decl.name.name.clone(), Rc::new(decl.clone()));
        }
    }

    /// W0105 for layers, functions and constants no model used.
    pub(super) fn unused_definitions(&mut self) {
        if self.lenient || self.diags.iter().any(Diagnostic::is_error) {
            return;
        }
        let mut unused: Vec<(Span, String, Kind)> = self
            .names
            .iter()
            .filter(|(name, e)| {
                matches!(e.kind, Kind::Layer | Kind::Function | Kind::Constant)
                    && !self.used_defs.contains(*name)
                    && !name.starts_with('_')
            })
            .map(|(name, e)| (e.span, name.clone(), e.kind))
            .collect();
        unused.sort_by_key(|(span, _, _)| span.start);
        for (span, name, kind) in unused {
            let noun = match kind {
                Kind::Layer => "layer",
                Kind::Function => "function",
                _ => "constant",
            };
            let mut d = Diagnostic::warning("W0105", format!("{noun} `{name}` is never used"))
                .primary(span, "defined here")
                .help(format!("use it, remove it, or name it `_{name}`"));
            if kind != Kind::Constant {
                d = d.note("layers and functions are checked where a model uses them, so this one has not been checked");
            }
            self.diags.push(d);
        }
    }
}
