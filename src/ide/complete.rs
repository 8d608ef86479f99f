//! Completion by context, from the definition registries (no list of its own): inside a
//! built-in's call its arguments (the activations where it takes a function, as `dense(64, `
//! does; the initializers for `kernel_initializer:`), a fit's settings and each setting's
//! values (losses, optimizers, metrics, callbacks, data sets), data sources after `data NAME =`,
//! initializers after `param … =`, and in a body the layers, functions and the program's own
//! names. Each built-in is documented by its row of the docs' tables (`explain`).

use super::{Analysis, char_boundary};
use crate::check;
use crate::explain::{self, CatalogEntry};
use crate::settings;
use crate::syntax::ast::Item;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    Layer,
    Function,
    Initializer,
    Setting,
    /// A loss, metric, optimizer, schedule, callback or data source.
    Builtin,
    Argument,
    Keyword,
    /// A name the program defines.
    Name,
    Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub label: String,
    pub kind: CompletionKind,
    /// What it is, in a few words (`layer`, `loss`, `argument of dense`).
    pub detail: String,
    /// Markdown.
    pub documentation: Option<String>,
    /// The text to insert (an argument's name with `: ` after it).
    pub insert: String,
}

const KEYWORDS: &[&str] = &[
    "data", "let", "model", "layer", "fn", "fit", "evaluate", "predict", "generate", "save", "load",
];

/// The call `(` the cursor is in: the callee, which argument (by position, or by name when one
/// is written), and whether the argument so far is empty.
struct CallContext<'a> {
    callee: &'a str,
    position: usize,
    named: Option<&'a str>,
    empty: bool,
}

/// Scans back from `end` over balanced brackets to the innermost unclosed `(` of this
/// statement; `None` at an unclosed `{`, `}`, `[` or the start.
fn call_context(before: &str) -> Option<CallContext<'_>> {
    let bytes = before.as_bytes();
    let mut depth = 0usize;
    let mut commas = 0;
    let mut last_separator = before.len();
    for i in (0..bytes.len()).rev() {
        match bytes[i] {
            b')' | b']' => depth += 1,
            b'(' | b'[' if depth > 0 => depth -= 1,
            b'(' => {
                let head =
                    before[..i].trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
                let callee = &before[head.len()..i];
                let arg = before[if commas == 0 { i + 1 } else { last_separator }..].trim();
                let named = arg.strip_suffix(':').map(str::trim).filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                return (!callee.is_empty()).then_some(CallContext {
                    callee,
                    position: commas,
                    named,
                    empty: arg.is_empty(),
                });
            }
            b'[' | b'{' | b'}' => return None,
            b',' if depth == 0 => {
                if commas == 0 {
                    last_separator = i + 1;
                }
                commas += 1;
            }
            _ => {}
        }
    }
    None
}

struct Catalog(&'static [CatalogEntry]);

/// `explain::builtin`'s text for `name` (each kind it is), from the cached catalog.
pub(super) fn builtin_doc(name: &str) -> Option<String> {
    let texts: Vec<&str> = catalog()
        .0
        .iter()
        .filter(|e| e.name == name)
        .map(|e| e.text.as_str())
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// The built-ins' documentation, written once from the definitions' tables.
fn catalog() -> Catalog {
    static CATALOG: std::sync::OnceLock<Vec<CatalogEntry>> = std::sync::OnceLock::new();
    Catalog(CATALOG.get_or_init(explain::builtin_catalog))
}

impl Catalog {
    fn item(&self, name: &str, kind: CompletionKind) -> Completion {
        let entry = self.0.iter().find(|e| e.name == name);
        Completion {
            label: name.to_string(),
            kind,
            detail: entry.map_or(String::new(), |e| e.kind.to_string()),
            documentation: entry.map(|e| e.text.clone()),
            insert: name.to_string(),
        }
    }

    fn items(&self, names: &[&str], kind: CompletionKind) -> Vec<Completion> {
        names.iter().map(|n| self.item(n, kind)).collect()
    }
}

fn argument(name: &str, of: &str) -> Completion {
    Completion {
        label: format!("{name}:"),
        kind: CompletionKind::Argument,
        detail: format!("argument of {of}"),
        documentation: None,
        insert: format!("{name}: "),
    }
}

fn plain(label: &str, kind: CompletionKind, detail: &str) -> Completion {
    Completion {
        label: label.to_string(),
        kind,
        detail: detail.to_string(),
        documentation: None,
        insert: label.to_string(),
    }
}

pub(super) fn completions(analysis: &Analysis, offset: usize) -> Vec<Completion> {
    let source = analysis.source();
    let offset = char_boundary(source, offset);
    let word_start = source[..offset]
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
        .len();
    let prefix = &source[word_start..offset];
    let before = &source[..word_start];
    let catalog = catalog();
    let mut out = candidates(analysis, before, word_start, &catalog);
    out.retain(|c| c.label.starts_with(prefix) || c.insert.starts_with(prefix));
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.label.clone()));
    out
}

fn candidates(
    analysis: &Analysis,
    before: &str,
    offset: usize,
    catalog: &Catalog,
) -> Vec<Completion> {
    let user_fns = || -> Vec<Completion> {
        analysis
            .analyzed
            .ast
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Fn(f) => Some(plain(&f.name.name, CompletionKind::Name, "fn")),
                _ => None,
            })
            .collect()
    };
    if let Some(call) = call_context(before) {
        if let Some(hints) = check::argument_hints(call.callee) {
            let hint = match call.named {
                Some(name) => hints.iter().find(|(n, _)| *n == name).map(|(_, h)| *h),
                None if call.empty => hints.get(call.position).map(|(_, h)| *h),
                None => None,
            };
            let mut out = match hint {
                Some(check::ArgHint::Function) => {
                    let mut items =
                        catalog.items(&check::activation_names(), CompletionKind::Function);
                    items.extend(user_fns());
                    items
                }
                Some(check::ArgHint::Initializer) => {
                    catalog.items(&check::initializer_names(), CompletionKind::Initializer)
                }
                Some(check::ArgHint::Choice(choices)) => choices
                    .iter()
                    .map(|c| plain(&format!("\"{c}\""), CompletionKind::Value, "choice"))
                    .collect(),
                _ => Vec::new(),
            };
            if call.named.is_none() {
                out.extend(hints.iter().map(|(n, _)| argument(n, call.callee)));
            }
            return out;
        }
        // A user layer's configuration or a function's parameters, by name.
        let user = analysis.analyzed.ast.items.iter().find_map(|i| match i {
            Item::Layer(l) if l.name.name == call.callee => Some(&l.params),
            Item::Fn(f) if f.name.name == call.callee => Some(&f.body.params),
            _ => None,
        });
        if let Some(params) = user {
            if call.named.is_some() {
                return Vec::new();
            }
            return params
                .iter()
                .map(|p| argument(&p.name.name, call.callee))
                .collect();
        }
        // A setting's built-in: its arguments, and for a learning rate the schedules.
        let params: Option<Vec<&str>> = settings::optimizer::find(call.callee)
            .map(|d| d.args.iter().map(|a| a.name).collect())
            .or_else(|| {
                settings::loss::find(call.callee).map(|d| d.params.iter().map(|p| p.name).collect())
            })
            .or_else(|| {
                settings::metric::find(call.callee)
                    .map(|d| d.params.iter().map(|p| p.name).collect())
            })
            .or_else(|| {
                settings::schedule::find(call.callee)
                    .map(|d| d.params.iter().map(|p| p.name).collect())
            })
            .or_else(|| {
                settings::callback::find(call.callee)
                    .map(|d| d.params.iter().map(|p| p.name).collect())
            })
            .or_else(|| {
                settings::data_source::find(call.callee)
                    .map(|d| d.params.iter().map(|p| p.name).collect())
            });
        if let Some(params) = params {
            if call
                .named
                .is_some_and(|n| n == "lr" || n == "learning_rate")
            {
                return catalog.items(&settings::schedule::names(), CompletionKind::Builtin);
            }
            if call.named.is_none() {
                return params.iter().map(|n| argument(n, call.callee)).collect();
            }
            return Vec::new();
        }
    }
    let line = before.rsplit('\n').next().unwrap_or_default().trim_start();
    let words: Vec<&str> = line
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let item = analysis
        .analyzed
        .ast
        .items
        .iter()
        .position(|i| i.span().start <= offset && offset <= i.span().end);
    // The text decides, as the block being typed may not parse yet.
    let in_fit = open_brace_line(before).is_some_and(|l| l.trim_start().starts_with("fit "));
    let data_names = || -> Vec<Completion> {
        analysis
            .analyzed
            .ast
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Data(d) => Some(plain(&d.name.name, CompletionKind::Name, "data")),
                _ => None,
            })
            .collect()
    };
    let model_names = || -> Vec<Completion> {
        analysis
            .analyzed
            .ast
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Model(m) => Some(plain(&m.name.name, CompletionKind::Name, "model")),
                _ => None,
            })
            .collect()
    };
    if in_fit {
        return match words.first() {
            None => check::SETTINGS
                .iter()
                .map(|s| plain(s, CompletionKind::Setting, "fit setting"))
                .collect(),
            Some(&"loss") => catalog.items(&settings::loss::names(), CompletionKind::Builtin),
            Some(&"optimizer") => {
                catalog.items(&settings::optimizer::names(), CompletionKind::Builtin)
            }
            Some(&"metrics") => catalog.items(&settings::metric::names(), CompletionKind::Builtin),
            Some(&"callbacks") => {
                catalog.items(&settings::callback::names(), CompletionKind::Builtin)
            }
            Some(&"validation") => data_names(),
            Some(&("shuffle" | "standardize")) => vec![
                plain("true", CompletionKind::Value, "bool"),
                plain("false", CompletionKind::Value, "bool"),
            ],
            Some(_) => Vec::new(),
        };
    }
    match words.as_slice() {
        [] if open_brace_line(before).is_none() => {
            return KEYWORDS
                .iter()
                .map(|k| plain(k, CompletionKind::Keyword, "keyword"))
                .collect();
        }
        ["data", _] if line.trim_end().ends_with('=') => {
            return catalog.items(&settings::data_source::names(), CompletionKind::Builtin);
        }
        ["param", ..] if line.trim_end().ends_with('=') => {
            return catalog.items(&check::initializer_names(), CompletionKind::Initializer);
        }
        ["fit" | "evaluate" | "predict" | "generate" | "save" | "load"] => return model_names(),
        ["fit" | "evaluate" | "predict", _, "on"] => return data_names(),
        _ => {}
    }
    // In a body: layers, functions, the program's definitions and the item's own names.
    let builtins = check::builtin_names();
    let mut out: Vec<Completion> = builtins
        .iter()
        .map(|name| {
            let kind = if check::argument_hints(name)
                .is_some_and(|h| h.iter().any(|(_, h)| *h == check::ArgHint::Initializer))
            {
                CompletionKind::Layer
            } else {
                CompletionKind::Function
            };
            catalog.item(name, kind)
        })
        .collect();
    if let Some(item) = item {
        out.extend(
            analysis
                .names
                .locals(item, offset)
                .map(|n| plain(n, CompletionKind::Name, "local")),
        );
    }
    out.extend(
        analysis
            .names
            .top_level()
            .map(|n| plain(n, CompletionKind::Name, "definition")),
    );
    out.push(plain("let", CompletionKind::Keyword, "keyword"));
    out
}

/// The line holding the innermost `{` that `before` leaves unclosed, if any.
fn open_brace_line(before: &str) -> Option<&str> {
    let mut depth = 0usize;
    for (i, c) in before.char_indices().rev() {
        match c {
            '}' => depth += 1,
            '{' if depth > 0 => depth -= 1,
            '{' => {
                let start = before[..i].rfind('\n').map_or(0, |n| n + 1);
                return Some(&before[start..i]);
            }
            _ => {}
        }
    }
    None
}
