//! Diagnostics are plain data — code, severity, message, labelled spans, notes, help — produced by
//! every stage and rendered only at the edge (CLI, REPL, golden tests) with ariadne.

use std::fmt;

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

/// Renders diagnostics against their source with ariadne. `color` is false for golden tests,
/// pipes and `NO_COLOR`. Returns text; the caller decides where it goes.
pub fn render(diagnostics: &[Diagnostic], file_name: &str, source: &str, color: bool) -> String {
    use ariadne::{Color, Config, Label as AriadneLabel, Report, ReportKind, Source};

    let mut out = Vec::new();
    for diagnostic in diagnostics {
        let kind = match diagnostic.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let anchor = diagnostic
            .labels
            .iter()
            .find(|label| label.primary)
            .or(diagnostic.labels.first())
            .map(|label| clamp(label.span, source))
            .unwrap_or_default();
        let mut report = Report::build(kind, (file_name, anchor.start..anchor.end))
            .with_config(
                Config::default()
                    .with_color(color)
                    .with_index_type(ariadne::IndexType::Byte),
            )
            .with_code(diagnostic.code)
            .with_message(&diagnostic.message);
        // In source order: ariadne starts a new snippet whenever a label's line goes backwards.
        let mut labels: Vec<&Label> = diagnostic.labels.iter().collect();
        labels.sort_by_key(|label| label.span.start);
        for label in labels {
            let span = clamp(label.span, source);
            let color = if label.primary {
                Color::Red
            } else {
                Color::Blue
            };
            report = report.with_label(
                AriadneLabel::new((file_name, span.start..span.end))
                    .with_message(&label.message)
                    .with_color(color),
            );
        }
        for note in &diagnostic.notes {
            report = report.with_note(note);
        }
        if let Some(help) = &diagnostic.help {
            report = report.with_help(help);
        }
        // Writing into a Vec cannot fail.
        let _ = report
            .finish()
            .write((file_name, Source::from(source)), &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Keeps a span inside the source so rendering never indexes out of bounds.
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
    let items: Vec<serde_json::Value> = diagnostics
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
    serde_json::Value::Array(items)
}
