//! Diagnostics are plain data — code, severity, message, labelled spans, notes, help — produced by
//! every stage and rendered only at the edge (CLI, REPL, golden tests) with ariadne.

use std::fmt;

mod window;

pub use window::clip_message;

/// A byte range in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    /// The primary label marks the offending expression; secondary ones say where things came from.
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, e.g. `E0101`. Codes are never reused for a different meaning.
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn primary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// A one-line form for contexts without source text (logs, test failures).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{kind}[{}]: {}", self.code, self.message)
    }
}

pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// How many diagnostics `render` shows; the rest are counted in one closing line.
pub const MAX_RENDERED: usize = 50;

/// Renders diagnostics against their source with ariadne. `color` is false for golden tests,
/// pipes and `NO_COLOR`. Returns text; the caller decides where it goes.
pub fn render(diagnostics: &[Diagnostic], file_name: &str, source: &str, color: bool) -> String {
    let whole = Piece {
        name: file_name,
        text: source,
        range: 0..source.len(),
        at: 0,
    };
    render_pieces(diagnostics, &[whole], color)
}

/// A piece of a text that was put together from several (the REPL checks its definitions, each
/// from its own entry or file, as one program): `text[range]` of the file `name` sits at byte
/// `at` of the combined text.
#[derive(Clone, Debug)]
pub struct Piece<'a> {
    pub name: &'a str,
    pub text: &'a str,
    pub range: std::ops::Range<usize>,
    pub at: usize,
}

/// `render` for diagnostics whose spans are in a combined text: each label is shown in the
/// piece it falls in, under that piece's file name and line numbers.
pub fn render_pieces(diagnostics: &[Diagnostic], pieces: &[Piece], color: bool) -> String {
    use ariadne::{Color, Config, Label as AriadneLabel, Report, ReportKind};

    // A span's file and its range in that file (clamped to the piece).
    let locate = |span: Span| -> (String, std::ops::Range<usize>) {
        let piece = pieces
            .iter()
            .find(|p| p.at <= span.start && span.start <= p.at + p.range.len())
            .or(pieces.last());
        match piece {
            Some(p) => {
                let start = p.range.start + (span.start - p.at.min(span.start));
                let end = p.range.start + (span.end.saturating_sub(p.at)).min(p.range.len());
                let end = end.min(p.text.len());
                (p.name.to_string(), start.min(end)..end)
            }
            None => (String::new(), 0..0),
        }
    };
    let mut files: Vec<(String, String)> = Vec::new();
    for piece in pieces {
        if !files.iter().any(|(name, _)| name == piece.name) {
            files.push((piece.name.to_string(), piece.text.to_string()));
        }
    }
    let mut out = Vec::new();
    // As compilers do, only the first ones: past them a file is usually broken throughout, and
    // each report repeats its source line (16,000 errors on one long line took 37 s).
    let (shown, rest) = diagnostics.split_at(diagnostics.len().min(MAX_RENDERED));
    for diagnostic in shown {
        let kind = match diagnostic.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        // Each label in its file, in source order: ariadne starts a new snippet whenever a
        // label's line goes backwards.
        let mut labels: Vec<(&Label, (String, std::ops::Range<usize>))> = diagnostic
            .labels
            .iter()
            .map(|label| (label, locate(label.span)))
            .collect();
        labels.sort_by_key(|(label, _)| label.span.start);
        let primary = labels
            .iter()
            .position(|(label, _)| label.primary)
            .or((!labels.is_empty()).then_some(0));
        // Long lines become windows around their labels, and the labels move into them.
        let mut sources = files.clone();
        let mut clipped_note = None;
        for (name, text) in &mut sources {
            // The primary label first: a long line is windowed around the first label on it.
            let ranges: Vec<_> = (primary.iter().copied())
                .chain(0..labels.len())
                .map(|index| &labels[index].1)
                .filter(|(file, _)| file == name)
                .map(|(_, range)| range.clone())
                .collect();
            let Some(windowed) = window::clip(text, &ranges) else {
                continue;
            };
            for (index, (_, (file, range))) in labels.iter_mut().enumerate() {
                if file != name {
                    continue;
                }
                if Some(index) == primary {
                    clipped_note = window::note(text, range.start);
                }
                *range = windowed.map(range.start)..windowed.map(range.end);
            }
            *text = windowed.text;
        }
        let anchor = match primary {
            Some(index) => labels[index].1.clone(),
            None => (pieces.first().map_or("", |p| p.name).to_string(), 0..0),
        };
        let mut report = Report::build(kind, anchor)
            .with_config(
                Config::default()
                    .with_color(color)
                    .with_index_type(ariadne::IndexType::Byte),
            )
            .with_code(diagnostic.code)
            .with_message(window::clip_message(&diagnostic.message));
        for (label, range) in labels {
            let color = if label.primary {
                Color::Red
            } else {
                Color::Blue
            };
            report = report.with_label(
                AriadneLabel::new(range)
                    .with_message(window::clip_message(&label.message))
                    .with_color(color),
            );
        }
        if let Some(note) = clipped_note {
            report = report.with_note(note);
        }
        for note in &diagnostic.notes {
            report = report.with_note(window::clip_message(note));
        }
        if let Some(help) = &diagnostic.help {
            report = report.with_help(window::clip_message(help));
        }
        // Writing into a Vec cannot fail.
        let _ = report.finish().write(ariadne::sources(sources), &mut out);
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if !rest.is_empty() {
        let errors = rest.iter().filter(|d| d.is_error()).count();
        let count = |n: usize, what: &str| match n {
            0 => None,
            1 => Some(format!("1 more {what}")),
            n => Some(format!("{n} more {what}s")),
        };
        let more: Vec<String> = [
            count(errors, "error"),
            count(rest.len() - errors, "warning"),
        ]
        .into_iter()
        .flatten()
        .collect();
        text.push_str(&format!(
            "… and {} not shown (the first {MAX_RENDERED} are); fix these and check again\n",
            more.join(" and ")
        ));
    }
    text
}

fn clamp(span: Span, source: &str) -> Span {
    let end = span.end.min(source.len());
    Span::new(span.start.min(end), end)
}

/// Diagnostics as JSON for editors and tools (`kiln check --format json`): one object per
/// diagnostic with its code, severity, message, file, 1-based line and column (in characters)
/// of the primary label, byte span, every label, notes and help.
pub fn to_json(diagnostics: &[Diagnostic], file_name: &str, source: &str) -> serde_json::Value {
    let position = |offset: usize| {
        let offset = offset.min(source.len());
        let before = &source[..source.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    };
    // Capped as `render` is: a file can hold millions of errors (a run of `}`), and each
    // entry's position is found from the start of the source.
    let (shown, rest) = diagnostics.split_at(diagnostics.len().min(MAX_RENDERED));
    let mut items: Vec<serde_json::Value> = shown
        .iter()
        .map(|d| {
            let anchor = d
                .labels
                .iter()
                .find(|l| l.primary)
                .or(d.labels.first())
                .map(|l| clamp(l.span, source))
                .unwrap_or_default();
            let (line, column) = position(anchor.start);
            let labels: Vec<serde_json::Value> = d
                .labels
                .iter()
                .map(|l| {
                    let span = clamp(l.span, source);
                    let (line, column) = position(span.start);
                    serde_json::json!({
                        "message": l.message,
                        "primary": l.primary,
                        "line": line,
                        "column": column,
                        "span": { "start": span.start, "end": span.end },
                    })
                })
                .collect();
            serde_json::json!({
                "code": d.code,
                "severity": match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                "message": d.message,
                "file": file_name,
                "line": line,
                "column": column,
                "span": { "start": anchor.start, "end": anchor.end },
                "labels": labels,
                "notes": d.notes,
                "help": d.help,
            })
        })
        .collect();
    if !rest.is_empty() {
        let errors = rest.iter().filter(|d| d.is_error()).count();
        // One closing entry, with no code, counting what was left out.
        items.push(serde_json::json!({
            "code": null,
            "severity": "note",
            "message": format!(
                "{} more diagnostics not shown (the first {MAX_RENDERED} are)",
                rest.len()
            ),
            "file": file_name,
            "omitted": { "errors": errors, "warnings": rest.len() - errors },
        }));
    }
    serde_json::Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_holds_the_first_diagnostics_and_counts_the_rest() {
        let source = "x ".repeat(60);
        let many: Vec<Diagnostic> = (0..60)
            .map(|i| {
                let d = if i < 55 {
                    Diagnostic::error("E0001", "not part of the language")
                } else {
                    Diagnostic::warning("W0101", "unused")
                };
                d.primary(Span::new(2 * i, 2 * i + 1), "here")
            })
            .collect();
        let json = to_json(&many, "f.model", &source);
        let items = json.as_array().unwrap();
        assert_eq!(items.len(), MAX_RENDERED + 1);
        assert_eq!(items[MAX_RENDERED]["omitted"]["errors"], 5);
        assert_eq!(items[MAX_RENDERED]["omitted"]["warnings"], 5);
        assert!(items[MAX_RENDERED]["code"].is_null());
    }

    #[test]
    fn only_the_first_diagnostics_are_rendered_and_the_rest_counted() {
        let source = "$ ".repeat(60);
        let many: Vec<Diagnostic> = (0..60)
            .map(|i| {
                let d = if i < 58 {
                    Diagnostic::error("E0001", "not part of the language")
                } else {
                    Diagnostic::warning("W0101", "unused")
                };
                d.primary(Span::new(2 * i, 2 * i + 1), "here")
            })
            .collect();
        let text = render(&many, "f.model", &source, false);
        assert_eq!(text.matches("[E0001] Error").count(), MAX_RENDERED);
        assert!(
            text.ends_with(
                "… and 8 more errors and 2 more warnings not shown (the first 50 are); fix \
                 these and check again\n"
            ),
            "{text}"
        );
    }
}
