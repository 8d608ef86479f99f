//! Hover and inlay hints: read from the checked program's side tables (`Model::types`, the type
//! of every tensor-valued expression and binding; `Model::summary`, each layer application's
//! output and parameters) and from the built-ins' one definition each (`explain`'s catalog, the
//! rows of the docs tables the definitions write).

use super::{Analysis, word_at};
use crate::diag::Span;
use crate::ir::shape::{TensorType, shape_text, type_text};
use crate::program::summary::thousands;
use crate::program::{Model, SummaryRow};
use crate::syntax::ast::{Item, Stmt};

/// What hovering at a position shows: Markdown, and the source it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Hover {
    pub markdown: String,
    pub span: Span,
}

/// A label shown after a model line: its output shape (and the parameters its layers create).
#[derive(Clone, Debug, PartialEq)]
pub struct InlayHint {
    pub offset: usize,
    pub label: String,
}

fn contains(span: Span, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

fn len(span: Span) -> usize {
    span.end - span.start
}

/// A typed expression: the model it is in, its source, its type.
type Typed<'a> = (&'a Model, Span, &'a TensorType);

/// The innermost typed expression and the innermost layer application at `offset`, over every
/// model (a user layer's body is typed in the models that use it).
fn innermost(
    models: &[Model],
    offset: usize,
) -> (Option<Typed<'_>>, Option<(&Model, &SummaryRow)>) {
    let mut ty: Option<Typed> = None;
    let mut row: Option<(&Model, &SummaryRow)> = None;
    for model in models {
        for (span, t) in &model.types {
            if contains(*span, offset) && ty.is_none_or(|(_, s, _)| len(*span) < len(s)) {
                ty = Some((model, *span, t));
            }
        }
        for r in &model.summary {
            if contains(r.span, offset) && row.is_none_or(|(_, best)| len(r.span) < len(best.span))
            {
                row = Some((model, r));
            }
        }
    }
    (ty, row)
}

fn row_text(model: &Model, row: &SummaryRow) -> String {
    let outputs: Vec<String> = row
        .outputs
        .iter()
        .map(|t| type_text(t, &model.batch_symbol))
        .collect();
    let name = if row.name == row.kind {
        row.name.clone()
    } else {
        format!("{} ({})", row.name, row.kind)
    };
    let params = match row.params {
        0 => "no parameters".to_string(),
        1 => "1 parameter".to_string(),
        n => format!("{} parameters", thousands(n)),
    };
    // Each parameter the layer created, by the name checkpoints give it (`dense_1.kernel`).
    let prefix = format!("{}.", row.name);
    let weights: Vec<String> = model
        .forward
        .params
        .iter()
        .filter(|p| p.name.starts_with(&prefix))
        .map(|p| {
            let fixed = if p.trainable { "" } else { " (not trained)" };
            format!(
                "- `{}: f32{}`{fixed}",
                p.name,
                shape_text(&p.shape, &model.batch_symbol)
            )
        })
        .collect();
    let weights = if weights.is_empty() {
        String::new()
    } else {
        format!(":\n{}", weights.join("\n"))
    };
    format!(
        "```kiln\n{name} -> {}\n```\n{params}{weights}",
        outputs.join(", ")
    )
}

pub(super) fn hover(analysis: &Analysis, offset: usize) -> Option<Hover> {
    let source = analysis.source();
    let models = &analysis.analyzed.program.models;
    let word = word_at(source, offset);
    let (ty, row) = innermost(models, offset);
    let mut parts = Vec::new();
    let mut span = word.map(|(_, s)| s);
    // The layer when it is as specific as the typed expression (a layer line, or the call
    // that applies it), else the expression's type.
    match (ty, row) {
        (ty, Some((model, row)))
            if ty.is_none_or(|(_, s, _)| s.start <= row.span.start && row.span.end <= s.end) =>
        {
            parts.push(row_text(model, row));
            span = span.or(Some(row.span));
        }
        (Some((model, at, t)), _) => {
            let text = source.get(at.start..at.end).unwrap_or_default();
            let label = if text.chars().count() > 40 || text.contains('\n') {
                String::new()
            } else {
                format!("{text}: ")
            };
            parts.push(format!(
                "```kiln\n{label}{}\n```",
                type_text(t, &model.batch_symbol)
            ));
            span = Some(at);
        }
        _ => {}
    }
    if let Some((name, _)) = word {
        if let Some(doc) = super::complete::builtin_doc(name)
            && !analysis.names.is_defined(name)
        {
            parts.push(doc);
        } else if let Some(text) = definition_text(analysis, offset)
            // Not the definition itself when its type is already shown.
            && (parts.is_empty() || analysis.names.definition(offset) != word.map(|(_, s)| s))
        {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(Hover {
        markdown: parts.join("\n\n---\n\n"),
        span: span?,
    })
}

/// For a user definition with no type at the cursor: a model's signature and parameter count,
/// or the first line of the item that defines the name.
fn definition_text(analysis: &Analysis, offset: usize) -> Option<String> {
    let def = analysis.names.definition(offset)?;
    let source = analysis.source();
    let ast = &analysis.analyzed.ast;
    let item = ast.items.iter().find(|i| {
        let s = i.span();
        s.start <= def.start && def.end <= s.end
    })?;
    if let Item::Model(decl) = item
        && decl.name.span == def
        && let Some(model) = analysis
            .analyzed
            .program
            .models
            .iter()
            .find(|m| m.name == decl.name.name)
    {
        let inputs: Vec<String> = model
            .inputs
            .iter()
            .map(|(n, t)| format!("{n}: {}", type_text(t, &model.batch_symbol)))
            .collect();
        let outputs: Vec<String> = model
            .outputs
            .iter()
            .map(|t| type_text(t, &model.batch_symbol))
            .collect();
        return Some(format!(
            "```kiln\nmodel {}({}) -> {}\n```\n{} layers, {} parameters",
            model.name,
            inputs.join(", "),
            outputs.join(", "),
            model.summary.len(),
            thousands(model.param_count())
        ));
    }
    // The line the definition is on, as written.
    let line_start = source[..def.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[def.start..]
        .find('\n')
        .map_or(source.len(), |i| def.start + i);
    Some(format!(
        "```kiln\n{}\n```",
        source[line_start..line_end].trim()
    ))
}

/// One hint after each model line: the shape of what it produces (a `let`'s value, a layer
/// line's output), with the parameters its layers create.
pub(super) fn inlay_hints(analysis: &Analysis) -> Vec<InlayHint> {
    let mut hints = Vec::new();
    for item in &analysis.analyzed.ast.items {
        let Item::Model(decl) = item else {
            continue;
        };
        let Some(model) = analysis
            .analyzed
            .program
            .models
            .iter()
            .find(|m| m.name == decl.name.name && m.span == decl.span)
        else {
            continue;
        };
        for stmt in &decl.body {
            let (span, typed) = match stmt {
                Stmt::Let(binding) => (binding.span, binding.name.span),
                Stmt::Expr(expr) => (expr.span, expr.span),
                Stmt::Error(_) => continue,
            };
            let rows: Vec<&SummaryRow> = model
                .summary
                .iter()
                .filter(|r| span.start <= r.span.start && r.span.end <= span.end)
                .collect();
            let ty = model
                .types
                .iter()
                .rev()
                .find(|(s, _)| *s == typed)
                .map(|(_, t)| type_text(t, &model.batch_symbol))
                .or_else(|| {
                    let outputs = &rows.last()?.outputs;
                    let texts: Vec<String> = outputs
                        .iter()
                        .map(|t| type_text(t, &model.batch_symbol))
                        .collect();
                    Some(texts.join(", "))
                });
            let Some(ty) = ty else {
                continue;
            };
            let params: usize = rows.iter().map(|r| r.params).sum();
            let label = if params > 0 {
                format!("{ty}  ({} params)", thousands(params))
            } else {
                ty
            };
            hints.push(InlayHint {
                offset: span.end,
                label,
            });
        }
    }
    hints
}
