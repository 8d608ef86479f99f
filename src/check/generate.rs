//! `generate MODEL from TEXT length N temperature T seed S`: text from a language model trained
//! on `text_windows` (or loaded with its vocabulary), one token at a time. Checks the prompt,
//! the options and that the model reads a window of token ids and scores every token.

use super::*;
use crate::diag::Diagnostic;
use crate::ir::shape::{DType, Dim};
use crate::program::Action;
use crate::syntax::ast;

/// `generate`'s options with their defaults, in the order the docs list them.
pub const OPTIONS: [(&str, &str); 3] = [("length", "100"), ("temperature", "1.0"), ("seed", "0")];

impl Checker {
    pub(super) fn generate(
        &mut self,
        decl: &ast::ActionDecl,
        model: usize,
        fit: Option<usize>,
    ) -> Option<Action> {
        let prompt = match decl.path.as_ref().map(|e| (&e.kind, e.span)) {
            Some((ast::ExprKind::Str(text), _)) => Some(text.clone()),
            Some((ast::ExprKind::Error, _)) | None => None,
            Some((_, span)) => {
                self.error(
                    Diagnostic::error("E0330", "`generate` starts from a text in double quotes")
                        .primary(span, "not a string")
                        .help("e.g. `generate m from \"The \" length 200`"),
                );
                None
            }
        };
        let (mut length, mut temperature, mut seed) = (Some(100), Some(1.0), Some(0));
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in &decl.options {
            let known = OPTIONS.iter().map(|(n, _)| *n);
            let Some(option) = known.clone().find(|n| *n == name.name) else {
                let mut d =
                    Diagnostic::error("E0331", format!("`generate` has no option `{}`", name.name))
                        .primary(name.span, "unknown option");
                if let Some(close) = crate::suggest::closest(&name.name, known) {
                    d = d.help(format!("did you mean `{close}`?"));
                }
                self.error(d.note("its options are `length`, `temperature` and `seed`"));
                continue;
            };
            if seen.contains(&option) {
                self.error(
                    Diagnostic::error("E0331", format!("`{option}` is given twice"))
                        .primary(name.span, "given again here"),
                );
                continue;
            }
            seen.push(option);
            let number = match &value.kind {
                ast::ExprKind::Int(n) => Some(*n as f64),
                ast::ExprKind::Float(x) => Some(*x),
                _ => None,
            };
            let whole = matches!(value.kind, ast::ExprKind::Int(_));
            let (ok, expected) = match option {
                "length" => (
                    whole && number.is_some_and(|n| n >= 1.0),
                    "a positive whole number of tokens",
                ),
                "temperature" => (
                    number.is_some_and(|t| t >= 0.0),
                    "a number ≥ 0 (0 always takes the likeliest token)",
                ),
                _ => (whole, "a whole number ≥ 0"),
            };
            if !ok {
                if value.kind != ast::ExprKind::Error {
                    let found = match number {
                        Some(n) => format!("found {n}"),
                        None => format!("found {}", super::args::found(value)),
                    };
                    self.error(
                        Diagnostic::error(
                            "E0332",
                            format!("`{option}` of `generate` must be {expected}"),
                        )
                        .primary(value.span, found),
                    );
                }
                match option {
                    "length" => length = None,
                    "temperature" => temperature = None,
                    _ => seed = None,
                }
                continue;
            }
            let number = number.unwrap_or_default();
            match option {
                "length" => length = Some(number as usize),
                "temperature" => temperature = Some(number),
                _ => seed = Some(number as u64),
            }
        }
        let model_ok = self.generates(decl, model);
        Some(Action::Generate {
            model,
            fit,
            prompt: prompt?,
            length: length?,
            temperature: temperature?,
            seed: seed?,
            span: decl.span,
        })
        .filter(|_| model_ok)
    }

    /// Whether `model` reads a window of token ids `i32[B, T]` and scores the next token
    /// `f32[B, V]`; else E0333.
    fn generates(&mut self, decl: &ast::ActionDecl, index: usize) -> bool {
        let model = &self.models[index];
        let b = &model.batch_symbol;
        let input_ok = matches!(
            &model.inputs[..],
            [(_, t)] if t.dtype == DType::I32
                && matches!(t.shape.dims(), [Dim::Batch, Dim::Fixed(_)])
        );
        let output_ok = matches!(
            &model.outputs[..],
            [t] if matches!(t.shape.dims(), [Dim::Batch, Dim::Fixed(_)])
        );
        if input_ok && output_ok {
            return true;
        }
        let info = &self.model_info[index];
        let (span, what) = if input_ok {
            (info.output_type_span, "its output")
        } else {
            (info.input_type_span, "its input")
        };
        let name = model.name.clone();
        self.error(
            Diagnostic::error("E0333", format!("`generate` cannot run `{name}`"))
                .primary(decl.model.span, "this model")
                .secondary(span, format!("{what} is not what a language model has"))
                .note(format!(
                    "a language model reads a window of token ids `i32[{b}, T]` and scores every \
                     token of its vocabulary `f32[{b}, V]`, as a model trained on `text_windows` does"
                )),
        );
        false
    }
}
