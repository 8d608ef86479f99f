//! A REPL session: the definitions, tensor variables and trained weights that persist from one
//! entry to the next, and the evaluation of each entry through the same pipeline as `kiln run`
//! (checked, lowered, optimized, compiled, run). Nothing here prints or reads a terminal; the
//! REPL front end (`src/cli/repl.rs`) does, and hands file contents in.
//!
//! The definitions are kept as source text, each piece from the entry or file it came from, and
//! checked together as one program whenever they change; diagnostics point back into the piece
//! (and the entry) they are about.

pub mod format;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::check::expression::{self, Expression, Feed, Query, Shown, Variable};
use crate::check::types::type_text;
use crate::codegen::{self, CodegenConfig};
use crate::diag::{self, Diagnostic, Piece, Span};
use crate::driver::{self, Event, RunError, Workspace};
use crate::ir::graph::Graph;
use crate::ir::shape::TensorType;
use crate::ir::{lower, passes, print};
use crate::program::CheckedProgram;
use crate::runtime::data::DataError;
use crate::runtime::init;
use crate::syntax::{self, ast, token};

/// A text the session read: an entry typed at the prompt or a loaded file.
#[derive(Debug)]
struct Text {
    name: String,
    text: String,
}

/// One definition: `text[range]` of the entry or file it came from.
#[derive(Clone, Debug)]
struct Definition {
    /// The name it defines; a `fit` is keyed by its model (`fit m`).
    key: String,
    source: Rc<Text>,
    range: Range<usize>,
}

/// Diagnostics with the texts they point into, ready to render.
#[derive(Debug, Default)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    /// (file name, its text, the range used, where the range sits in the combined text)
    pieces: Vec<(Rc<Text>, Range<usize>, usize)>,
}

impl Report {
    pub fn render(&self, color: bool) -> String {
        let pieces: Vec<Piece> = self
            .pieces
            .iter()
            .map(|(text, range, at)| Piece {
                name: &text.name,
                text: &text.text,
                range: range.clone(),
                at: *at,
            })
            .collect();
        diag::render_pieces(&self.diagnostics, &pieces, color)
    }

    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Why an entry did nothing.
#[derive(Debug)]
pub enum Failure {
    /// The entry (or what it would make of the session) does not check.
    Program(Report),
    /// A data or checkpoint file could not be read or written.
    Data(DataError),
    /// A command was used wrongly.
    Usage(String),
}

/// What an entry produced: text to show, and warnings.
#[derive(Debug, Default)]
pub struct Answer {
    pub text: String,
    pub warnings: Report,
}

/// A tensor the session holds.
#[derive(Clone, Debug)]
struct Stored {
    variable: Variable,
    values: Vec<f32>,
}

/// A program put together from pieces, with the map back to them.
struct Combined {
    text: String,
    pieces: Vec<(Rc<Text>, Range<usize>, usize)>,
}

impl Combined {
    fn report(&self, diagnostics: Vec<Diagnostic>) -> Report {
        Report {
            diagnostics,
            pieces: self.pieces.clone(),
        }
    }
}

pub struct Session {
    definitions: Vec<Definition>,
    variables: Vec<Stored>,
    workspace: Workspace,
    /// The definitions, checked.
    program: CheckedProgram,
    /// Where relative data and checkpoint paths start: the folder of the last loaded file.
    base_dir: PathBuf,
    /// Where the next `randn` without a seed starts: a script gives the same numbers each run.
    seed: u64,
    entries: usize,
}

/// Keywords that start a definition or statement rather than an expression.
fn starts_an_item(text: &str) -> bool {
    use token::Token;
    token::lex(text)
        .tokens
        .first()
        .is_some_and(|(_, token, _)| token.starts_item() || *token == Token::Let)
}

/// The name an item defines, and the noun for it; `None` for statements.
fn defines(item: &ast::Item) -> Option<(String, &'static str, Span)> {
    Some(match item {
        ast::Item::Data(d) => (d.name.name.clone(), "data", d.span),
        ast::Item::Let(l) => (l.name.name.clone(), "constant", l.span),
        ast::Item::Model(m) => (m.name.name.clone(), "model", m.span),
        ast::Item::Layer(l) => (l.name.name.clone(), "layer", l.span),
        ast::Item::Fn(f) => (f.name.name.clone(), "fn", f.span),
        ast::Item::Fit(f) => (format!("fit {}", f.model.name), "fit", f.span),
        ast::Item::Action(_) | ast::Item::Error(_) => return None,
    })
}

fn item_span(item: &ast::Item) -> Span {
    match item {
        ast::Item::Action(a) => a.span,
        ast::Item::Error(span) => *span,
        other => defines(other).map(|(_, _, span)| span).unwrap_or_default(),
    }
}

impl Session {
    /// An empty session; relative paths start at `base_dir`.
    pub fn new(base_dir: &Path) -> Session {
        Session {
            definitions: Vec::new(),
            variables: Vec::new(),
            workspace: Workspace::default(),
            program: CheckedProgram::default(),
            base_dir: base_dir.to_path_buf(),
            seed: 0,
            entries: 0,
        }
    }

    /// Fits stop after their current step when `flag` is set (Ctrl-C at the prompt).
    pub fn interrupt_with(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.workspace.interrupt_with(flag);
    }

    /// Every name the session knows (definitions and variables), for completion.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .definitions
            .iter()
            .filter(|d| !d.key.starts_with("fit "))
            .map(|d| d.key.clone())
            .chain(self.variables.iter().map(|v| v.variable.name.clone()))
            .collect();
        names.sort();
        names
    }

    /// The models defined, for `:summary` and `:fit`.
    pub fn models(&self) -> Vec<String> {
        self.program.models.iter().map(|m| m.name.clone()).collect()
    }

    fn next_entry(&mut self, text: &str) -> Rc<Text> {
        self.entries += 1;
        Rc::new(Text {
            name: format!("entry {}", self.entries),
            text: text.to_string(),
        })
    }

    /// One entry typed at the prompt: a definition, a statement, or an expression to evaluate.
    pub fn entry(
        &mut self,
        text: &str,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Answer, Failure> {
        // Blank, or only comments (a pasted or scripted session has them): nothing to do.
        if text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#')
        }) {
            return Ok(Answer::default());
        }
        let source = self.next_entry(text);
        if !starts_an_item(text) {
            return self.show(&source);
        }
        let (ast, diagnostics) = syntax::parse(text);
        if diag::has_errors(&diagnostics) {
            return Err(Failure::Program(single(&source).report(diagnostics)));
        }
        if let [ast::Item::Let(binding)] = ast.items.as_slice()
            && let Some(answer) = self.tensor_let(&source, binding)?
        {
            return Ok(answer);
        }
        self.items(&source, &ast, true, on_event)
    }

    /// `:load FILE`: the file's definitions join the session (its statements do not run);
    /// relative paths now start at its folder.
    pub fn load(&mut self, name: &str, text: &str, dir: &Path) -> Result<Answer, Failure> {
        let source = Rc::new(Text {
            name: name.to_string(),
            text: text.to_string(),
        });
        let (ast, diagnostics) = syntax::parse(text);
        if diag::has_errors(&diagnostics) {
            return Err(Failure::Program(single(&source).report(diagnostics)));
        }
        let previous = std::mem::replace(&mut self.base_dir, dir.to_path_buf());
        let result = self.items(&source, &ast, false, &mut |_| {});
        if result.is_err() {
            self.base_dir = previous;
        }
        result
    }

    /// Definitions join the session (replacing ones of the same name) if the result checks;
    /// with `run`, the entry's statements (and `fit`s) then run.
    fn items(
        &mut self,
        source: &Rc<Text>,
        ast: &ast::Program,
        run: bool,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Answer, Failure> {
        let mut definitions = self.definitions.clone();
        let mut statements = Vec::new();
        let mut lines = Vec::new();
        let mut skipped = 0;
        for item in &ast.items {
            let span = item_span(item);
            match defines(item) {
                Some((key, noun, _)) => {
                    let replaced = definitions.iter().position(|d| d.key == key);
                    let definition = Definition {
                        key: key.clone(),
                        source: source.clone(),
                        range: span.start..span.end,
                    };
                    match replaced {
                        Some(i) => {
                            definitions.remove(i);
                            lines.push(format!("redefined {noun} {}", display_key(&key)));
                        }
                        None => lines.push(format!("defined {noun} {}", display_key(&key))),
                    }
                    definitions.push(definition);
                    if noun == "fit" && run {
                        statements.push(span.start..span.end);
                    }
                }
                None if run => statements.push(span.start..span.end),
                None => skipped += 1,
            }
        }
        // A variable and a definition cannot share a name: the new definition wins.
        let shadowed: Vec<String> = definitions
            .iter()
            .filter(|d| self.variables.iter().any(|v| v.variable.name == d.key))
            .map(|d| d.key.clone())
            .collect();
        let extra: Vec<(Rc<Text>, Range<usize>)> = statements
            .iter()
            .filter(|range| {
                // A `fit` is already among the definitions.
                !definitions
                    .iter()
                    .any(|d| Rc::ptr_eq(&d.source, source) && d.range == **range)
            })
            .map(|range| (source.clone(), range.clone()))
            .collect();
        let combined = assemble(&definitions, &extra);
        let (whole, diagnostics) = syntax::parse(&combined.text);
        let (checked, mut check_diagnostics) = crate::check::expression::check_definitions(&whole);
        let mut all = diagnostics;
        all.append(&mut check_diagnostics);
        let Some(program) = checked.filter(|_| !diag::has_errors(&all)) else {
            all.retain(Diagnostic::is_error);
            return Err(Failure::Program(combined.report(all)));
        };
        let warnings = combined.report(within(all, &combined, source));
        self.forget_changed(&definitions, &program);
        self.variables
            .retain(|v| !shadowed.contains(&v.variable.name));
        self.definitions = definitions;
        self.program = program;
        if skipped > 0 {
            lines.push(format!(
                "skipped {skipped} statement{} (evaluate, predict, save, load): type them at the prompt to run them",
                if skipped == 1 { "" } else { "s" }
            ));
        }
        let mut answer = Answer {
            text: lines.join("\n"),
            warnings,
        };
        if !statements.is_empty() {
            let actions = self.actions_in(&combined, source, &statements);
            let outcome = driver::run_actions(
                &self.program,
                &combined.text,
                &actions,
                &self.base_dir,
                &mut self.workspace,
                on_event,
            );
            match outcome {
                Ok(_) => {}
                Err(RunError::Program(diagnostics)) => {
                    return Err(Failure::Program(combined.report(diagnostics)));
                }
                Err(RunError::Data(error)) => return Err(Failure::Data(error)),
            }
            // A statement's output is its events; a fit's "defined" line would repeat it.
            if ast
                .items
                .iter()
                .all(|i| defines(i).is_none_or(|(_, n, _)| n == "fit"))
            {
                answer.text.clear();
            }
        }
        Ok(answer)
    }

    /// The checked actions that come from `ranges` of `source` (in the combined text).
    fn actions_in(
        &self,
        combined: &Combined,
        source: &Rc<Text>,
        ranges: &[Range<usize>],
    ) -> Vec<crate::program::Action> {
        use crate::program::Action;
        let inside = |span: Span| {
            combined.pieces.iter().any(|(text, range, at)| {
                Rc::ptr_eq(text, source)
                    && ranges.contains(range)
                    && *at <= span.start
                    && span.start < at + range.len()
            })
        };
        self.program
            .actions
            .iter()
            .filter(|action| {
                let span = match action {
                    Action::Fit(index) => self.program.fits[*index].span,
                    Action::Evaluate { span, .. }
                    | Action::Predict { span, .. }
                    | Action::Save { span, .. }
                    | Action::Load { span, .. }
                    | Action::Generate { span, .. } => *span,
                };
                inside(span)
            })
            .cloned()
            .collect()
    }

    /// Forgets the weights of models that are gone, were redefined, or whose parameters
    /// changed (a layer they use was redefined).
    fn forget_changed(&mut self, definitions: &[Definition], program: &CheckedProgram) {
        let same_text = |name: &str| {
            let find = |list: &[Definition]| {
                list.iter()
                    .find(|d| d.key == name)
                    .map(|d| (Rc::as_ptr(&d.source), d.range.clone()))
            };
            find(&self.definitions) == find(definitions)
        };
        let forget: Vec<String> =
            self.program
                .models
                .iter()
                .filter(|old| {
                    !same_text(&old.name)
                        || !program.models.iter().any(|new| {
                            new.name == old.name && new.forward.params == old.forward.params
                        })
                })
                .map(|old| old.name.clone())
                .collect();
        for name in forget {
            self.workspace.forget(&name);
        }
    }

    /// `let NAME = EXPR` whose value is a tensor: a variable. `None` when the value is not a
    /// tensor (the `let` is then a definition, like one in a file).
    fn tensor_let(
        &mut self,
        source: &Rc<Text>,
        binding: &ast::LetStmt,
    ) -> Result<Option<Answer>, Failure> {
        let name = binding.name.name.clone();
        let declared = binding.ty.as_ref().map(|ty| (ty, name.as_str()));
        let range = binding.value.span.start..binding.value.span.end;
        let (evaluated, warnings) = self.evaluate(source, range, None, declared)?;
        let Some((expression, values)) = evaluated else {
            return Ok(None);
        };
        let Shown::Tensor(output) = &expression.value else {
            return Ok(None);
        };
        let Some((ty, data)) = values.get(output).cloned() else {
            return Ok(None);
        };
        if self.definitions.iter().any(|d| d.key == name) {
            // The definition becomes a variable: whatever used it must still check.
            let remaining: Vec<Definition> = self
                .definitions
                .iter()
                .filter(|d| d.key != name)
                .cloned()
                .collect();
            let combined = assemble(&remaining, &[]);
            let (ast, _) = syntax::parse(&combined.text);
            let (checked, diagnostics) = crate::check::expression::check_definitions(&ast);
            let Some(program) = checked else {
                let errors = diagnostics
                    .into_iter()
                    .filter(Diagnostic::is_error)
                    .collect();
                return Err(Failure::Program(combined.report(errors)));
            };
            self.forget_changed(&remaining, &program);
            self.definitions = remaining;
            self.program = program;
        }
        self.seed = expression.next_seed;
        let text = format!("{name}: {}", type_text(&ty, "B"));
        self.variables.retain(|v| v.variable.name != name);
        self.variables.push(Stored {
            variable: Variable { name, ty },
            values: data,
        });
        Ok(Some(Answer { text, warnings }))
    }

    /// An expression entry: its value, computed.
    fn show(&mut self, source: &Rc<Text>) -> Result<Answer, Failure> {
        let (evaluated, warnings) = self.evaluate(source, 0..source.text.len(), None, None)?;
        let Some((expression, values)) = evaluated else {
            return Ok(Answer::default());
        };
        self.seed = expression.next_seed;
        Ok(Answer {
            text: shown_text(&expression.value, &values),
            warnings,
        })
    }

    /// `:type EXPR`: the value's type, without running it.
    pub fn type_of(&mut self, text: &str) -> Result<Answer, Failure> {
        let source = self.next_entry(text);
        let (expression, warnings) = self.check_expression(&source, 0..text.len(), None, None)?;
        Ok(Answer {
            text: type_only(&expression.value, &expression.graph),
            warnings,
        })
    }

    /// `:ir EXPR`: the expression's graph as checked, then as optimized and compiled.
    pub fn ir(&mut self, text: &str) -> Result<Answer, Failure> {
        let source = self.next_entry(text);
        let (expression, warnings) = self.check_expression(&source, 0..text.len(), None, None)?;
        let optimized = optimized(&expression.graph).map_err(|d| self.internal(&source, d))?;
        Ok(Answer {
            text: format!(
                "{}── optimized ──\n{}",
                print::print(&expression.graph, None),
                print::print(&optimized, None)
            ),
            warnings,
        })
    }

    /// `:grad EXPR wrt NAME`: the gradient of the scalar `EXPR` with respect to the tensor
    /// variable `NAME`, its value and its (optimized) IR.
    pub fn grad(&mut self, text: &str) -> Result<Answer, Failure> {
        let source = self.next_entry(text);
        let Some(at) = text.rfind(" wrt ") else {
            return Err(Failure::Usage(
                "usage: :grad EXPR wrt NAME, e.g. `:grad sum(x * x) wrt x`".into(),
            ));
        };
        let name_start = at + " wrt ".len();
        let name = text[name_start..].trim();
        let offset =
            name_start + (text[name_start..].len() - text[name_start..].trim_start().len());
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(Failure::Usage(format!(
                "`{name}` is not a variable name; usage: :grad EXPR wrt NAME"
            )));
        }
        let wrt = ast::Ident {
            name: name.to_string(),
            span: Span::new(offset, offset + name.len()),
        };
        let (evaluated, warnings) = self.evaluate(&source, 0..at, Some(&wrt), None)?;
        let Some((expression, values)) = evaluated else {
            return Ok(Answer::default());
        };
        self.seed = expression.next_seed;
        let optimized = optimized(&expression.graph).map_err(|d| self.internal(&source, d))?;
        let gradient = shown_text(&Shown::Tensor(expression::GRAD.into()), &values);
        Ok(Answer {
            text: format!(
                "value: {}\n∂/∂{name}: {gradient}\n── IR ──\n{}",
                shown_text(&expression.value, &values),
                print::print(&optimized, None).trim_end()
            ),
            warnings,
        })
    }

    /// `:summary MODEL`: the Keras-style table.
    pub fn summary(&self, model: &str) -> Result<Answer, Failure> {
        let (index, _) = self.model(model)?;
        Ok(Answer {
            text: self.program.summary(index).trim_end().to_string(),
            warnings: Report::default(),
        })
    }

    /// `:fit MODEL [SETTING VALUE]…`: runs the model's `fit` with some settings replaced
    /// (`:fit mlp epochs 1`); training continues from the weights the model has.
    pub fn fit(&mut self, args: &str, on_event: &mut dyn FnMut(Event)) -> Result<Answer, Failure> {
        let mut words = top_level_words(args).into_iter();
        let Some(model) = words.next() else {
            return Err(Failure::Usage(
                "usage: :fit MODEL [SETTING VALUE]…, e.g. `:fit mlp epochs 1`".into(),
            ));
        };
        self.model(model)?;
        let key = format!("fit {model}");
        let Some(fit) = self.definitions.iter().find(|d| d.key == key) else {
            return Err(Failure::Usage(format!(
                "model `{model}` has no `fit`; write one first: `fit {model} on DATA {{ loss … }}`"
            )));
        };
        let original = &fit.source.text[fit.range.clone()];
        let (ast, _) = syntax::parse(original);
        let Some(ast::Item::Fit(decl)) = ast.items.first() else {
            return Err(Failure::Usage(format!(
                "the `fit` of `{model}` did not parse"
            )));
        };
        let rest: Vec<&str> = words.collect();
        if !rest.len().is_multiple_of(2) {
            return Err(Failure::Usage(
                "settings come in pairs: `:fit mlp epochs 1 batch 64`".into(),
            ));
        }
        let overrides: Vec<(&str, &str)> = rest.chunks(2).map(|p| (p[0], p[1])).collect();
        let mut settings: Vec<String> = Vec::new();
        for setting in &decl.settings {
            if let ast::Setting::Pair { key, span, .. } = setting
                && !overrides.iter().any(|(k, _)| *k == key.name)
            {
                settings.push(original[span.start..span.end].to_string());
            }
        }
        settings.extend(overrides.iter().map(|(k, v)| format!("{k} {v}")));
        let text = format!(
            "fit {} on {} {{\n    {}\n}}",
            decl.model.name,
            decl.data.name,
            settings.join("\n    ")
        );
        // The replaced settings run once; the stored `fit` keeps its own.
        let source = self.next_entry(&text);
        let (ast, diagnostics) = syntax::parse(&text);
        if diag::has_errors(&diagnostics) {
            return Err(Failure::Program(single(&source).report(diagnostics)));
        }
        let stored = (self.definitions.clone(), self.program.clone());
        let answer = self.items(&source, &ast, true, on_event);
        (self.definitions, self.program) = stored;
        answer
    }

    /// `:weights MODEL [NAME]`: the model's parameters, or one parameter's values.
    pub fn weights(&self, args: &str) -> Result<Answer, Failure> {
        let mut words = args.split_whitespace();
        let Some(model) = words.next() else {
            return Err(Failure::Usage("usage: :weights MODEL [PARAMETER]".into()));
        };
        let (_, m) = self.model(model)?;
        let params = &m.forward.params;
        let values = self.workspace.weights(model);
        let Some(wanted) = words.next() else {
            let state = if values.is_some() {
                "trained or loaded"
            } else {
                "not trained yet: initialized when first used"
            };
            let mut lines = vec![format!("{model} ({state}):")];
            for p in params {
                let shape: Vec<String> = p.shape.resolve(0).iter().map(usize::to_string).collect();
                lines.push(format!("  {}: f32[{}]", p.name, shape.join(", ")));
            }
            return Ok(Answer {
                text: lines.join("\n"),
                warnings: Report::default(),
            });
        };
        let Some(index) = params.iter().position(|p| p.name == wanted) else {
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            return Err(Failure::Usage(format!(
                "`{model}` has no parameter `{wanted}`; it has: {}",
                names.join(", ")
            )));
        };
        let shape = params[index].shape.resolve(0);
        let initial;
        let data = match values {
            Some(values) => &values[index],
            None => {
                let seed = self
                    .program
                    .fits
                    .iter()
                    .find(|f| self.program.models[f.model].name == model)
                    .map_or(0, |f| f.seed);
                initial = init::initial_params(&m.forward, seed);
                &initial[index]
            }
        };
        let ty = format!(
            "f32[{}]",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Answer {
            text: format!("{ty}\n{}", format::tensor(&shape, data)),
            warnings: Report::default(),
        })
    }

    /// `:dump STAGE`: `kiln dump` of the session's definitions as one program.
    pub fn dump(&self, stage: &str) -> Result<Answer, Failure> {
        let combined = assemble(&self.definitions, &[]);
        driver::dump(stage, "session", &combined.text)
            .map(|text| Answer {
                text: text.trim_end().to_string(),
                warnings: Report::default(),
            })
            .map_err(|e| Failure::Usage(e.trim_end().to_string()))
    }

    fn model(&self, name: &str) -> Result<(usize, &crate::program::Model), Failure> {
        if name.is_empty() {
            return Err(Failure::Usage(format!(
                "name a model; the models are: {}",
                self.models().join(", ")
            )));
        }
        self.program
            .models
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == name)
            .ok_or_else(|| {
                let models = self.models();
                Failure::Usage(if models.is_empty() {
                    format!("no model `{name}`: the session has no models yet (define one, or :load a file)")
                } else {
                    format!("no model `{name}`; the models are: {}", models.join(", "))
                })
            })
    }

    fn internal(&self, source: &Rc<Text>, d: Diagnostic) -> Failure {
        Failure::Program(single(source).report(vec![d]))
    }

    /// Checks the expression `source.text[range]` against the definitions; diagnostics in the
    /// entry's terms.
    fn check_expression(
        &self,
        source: &Rc<Text>,
        range: Range<usize>,
        wrt: Option<&ast::Ident>,
        declared: Option<(&ast::TypeExpr, &str)>,
    ) -> Result<(Expression, Report), Failure> {
        // The entry goes after the definitions; parsed behind as many spaces, its spans are
        // already in the combined text's terms.
        let combined = assemble(&self.definitions, &[(source.clone(), 0..source.text.len())]);
        let entry_at = combined.text.len() - source.text.len() - 2;
        let (ast, _) = syntax::parse(&combined.text[..entry_at]);
        let padded = format!(
            "{}{}",
            " ".repeat(entry_at + range.start),
            &source.text[range]
        );
        let (expr, diagnostics) = syntax::parse_expr(&padded);
        let expr = match expr {
            Some(expr) if !diag::has_errors(&diagnostics) => expr,
            _ => return Err(Failure::Program(combined.report(diagnostics))),
        };
        let wrt = wrt.map(|w| ast::Ident {
            name: w.name.clone(),
            span: Span::new(w.span.start + entry_at, w.span.end + entry_at),
        });
        let variables: Vec<Variable> = self.variables.iter().map(|v| v.variable.clone()).collect();
        // The declared type's spans move with the entry, like the expression's.
        let declared = declared.map(|(ty, name)| (shift_type(ty, entry_at), name));
        let query = Query {
            expr: &expr,
            variables: &variables,
            seed: self.seed,
            wrt: wrt.as_ref(),
            declared: declared.as_ref().map(|(ty, name)| (ty, *name)),
        };
        let (expression, diagnostics) = expression::expression(&ast, &query);
        match expression {
            Some(expression) => Ok((expression, combined.report(diagnostics))),
            None => {
                let errors = diagnostics
                    .into_iter()
                    .filter(Diagnostic::is_error)
                    .collect();
                Err(Failure::Program(combined.report(errors)))
            }
        }
    }

    /// Checks and runs an expression: its outputs' types and values by output name. `None`
    /// value when the expression has no tensor to compute.
    #[allow(clippy::type_complexity)]
    fn evaluate(
        &self,
        source: &Rc<Text>,
        range: Range<usize>,
        wrt: Option<&ast::Ident>,
        declared: Option<(&ast::TypeExpr, &str)>,
    ) -> Result<
        (
            Option<(Expression, HashMap<String, (TensorType, Vec<f32>)>)>,
            Report,
        ),
        Failure,
    > {
        let (expression, warnings) = self.check_expression(source, range, wrt, declared)?;
        let values = self
            .run(&expression)
            .map_err(|d| self.internal(source, d))?;
        Ok((Some((expression, values)), warnings))
    }

    /// Optimizes, compiles and runs an expression's graph.
    fn run(
        &self,
        expression: &Expression,
    ) -> Result<HashMap<String, (TensorType, Vec<f32>)>, Diagnostic> {
        let mut values = HashMap::new();
        if expression.graph.outputs.is_empty() {
            return Ok(values);
        }
        let graph = optimized(&expression.graph)?;
        let mut step = codegen::compile(&graph, &CodegenConfig { max_batch: 1 })
            .map_err(|e| Diagnostic::error("E0901", format!("code generation failed: {e}")))?;
        // Layers applied at the prompt (`dense(3)(x)`) start from their initializers.
        for (index, values) in init::initial_params(&graph, self.seed).iter().enumerate() {
            step.param_mut(index).copy_from_slice(values);
        }
        for (index, feed) in expression.feeds.iter().enumerate() {
            let values = match feed {
                Feed::Variable(v) => &self.variables[*v].values,
                Feed::Constant(values) => values,
            };
            step.input_f32_mut(index, 1).copy_from_slice(values);
        }
        step.run(1);
        for (name, value) in &graph.outputs {
            let ty = graph.ty(*value).clone();
            let data = step
                .output(name, 1)
                .map(<[f32]>::to_vec)
                .unwrap_or_default();
            values.insert(name.clone(), (ty, data));
        }
        Ok(values)
    }
}

/// Dropout is the identity outside training; then the optimization passes.
fn optimized(graph: &Graph) -> Result<Graph, Diagnostic> {
    passes::optimize(&lower::for_inference(graph)).map_err(|problems| {
        Diagnostic::error(
            "E0900",
            "internal compiler error: the expression's IR does not verify",
        )
        .note(problems.join("\n"))
    })
}

fn display_key(key: &str) -> &str {
    key.strip_prefix("fit ").unwrap_or(key)
}

/// A declared type re-read behind `by` spaces, so its spans are in the combined text's terms.
fn shift_type(ty: &ast::TypeExpr, by: usize) -> ast::TypeExpr {
    let mut ty = ty.clone();
    let moved = |span: Span| Span::new(span.start + by, span.end + by);
    ty.span = moved(ty.span);
    ty.dtype.span = moved(ty.dtype.span);
    if let Some(dims) = &mut ty.dims {
        for dim in dims {
            shift_dim(dim, by);
        }
    }
    ty
}

fn shift_dim(dim: &mut ast::Dim, by: usize) {
    dim.span = Span::new(dim.span.start + by, dim.span.end + by);
    if let ast::DimKind::Binary { lhs, rhs, .. } = &mut dim.kind {
        shift_dim(lhs, by);
        shift_dim(rhs, by);
    }
}

/// A text on its own.
fn single(source: &Rc<Text>) -> Combined {
    Combined {
        text: source.text.clone(),
        pieces: vec![(source.clone(), 0..source.text.len(), 0)],
    }
}

/// The definitions, then `extra`, as one program text.
fn assemble(definitions: &[Definition], extra: &[(Rc<Text>, Range<usize>)]) -> Combined {
    let mut text = String::new();
    let mut pieces = Vec::new();
    let all = definitions
        .iter()
        .map(|d| (&d.source, &d.range))
        .chain(extra.iter().map(|(s, r)| (s, r)));
    for (source, range) in all {
        pieces.push((source.clone(), range.clone(), text.len()));
        text.push_str(&source.text[range.clone()]);
        text.push_str("\n\n");
    }
    Combined { text, pieces }
}

/// Warnings about the entry itself (not the definitions checked with it).
fn within(diagnostics: Vec<Diagnostic>, combined: &Combined, source: &Rc<Text>) -> Vec<Diagnostic> {
    diagnostics
        .into_iter()
        .filter(|d| {
            let Some(label) = d.labels.iter().find(|l| l.primary) else {
                return false;
            };
            combined.pieces.iter().any(|(text, range, at)| {
                Rc::ptr_eq(text, source)
                    && *at <= label.span.start
                    && label.span.start <= at + range.len()
            })
        })
        .collect()
}

/// An expression's value as text: tensors as their type, then NumPy-style values.
fn shown_text(shown: &Shown, values: &HashMap<String, (TensorType, Vec<f32>)>) -> String {
    match shown {
        Shown::Tensor(name) => match values.get(name) {
            Some((ty, data)) => {
                let shape = ty.shape.resolve(1);
                format!("{}\n{}", type_text(ty, "B"), format::tensor(&shape, data))
            }
            None => "(no value)".into(),
        },
        Shown::List(items) | Shown::Tuple(items) => {
            let (open, close) = if matches!(shown, Shown::List(_)) {
                ("[", "]")
            } else {
                ("(", ")")
            };
            let parts: Vec<String> = items.iter().map(|i| shown_text(i, values)).collect();
            if parts.iter().any(|p| p.contains('\n')) {
                // One part per block, numbered as indexing would count them.
                let numbered: Vec<String> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, part)| format!("[{i}] {part}"))
                    .collect();
                numbered.join("\n")
            } else {
                format!("{open}{}{close}", parts.join(", "))
            }
        }
        other => scalar_text(other),
    }
}

fn scalar_text(shown: &Shown) -> String {
    match shown {
        Shown::Int(n) => n.to_string(),
        Shown::Float(x) => format!("{x:?}"),
        Shown::Bool(b) => b.to_string(),
        Shown::Str(s) => format!("{s:?}"),
        Shown::Function(name) => format!("<function {name}>"),
        Shown::Layer(name) => format!("<layer {name}>"),
        Shown::Tensor(_) | Shown::List(_) | Shown::Tuple(_) => String::new(),
    }
}

/// `:type`: tensors by type, other values by kind.
fn type_only(shown: &Shown, graph: &Graph) -> String {
    match shown {
        Shown::Tensor(name) => graph
            .output(name)
            .map(|v| type_text(graph.ty(v), "B"))
            .unwrap_or_default(),
        Shown::List(items) | Shown::Tuple(items) => {
            let parts: Vec<String> = items.iter().map(|i| type_only(i, graph)).collect();
            match shown {
                Shown::List(_) => format!("[{}]", parts.join(", ")),
                _ => format!("({})", parts.join(", ")),
            }
        }
        Shown::Int(_) => "int".into(),
        Shown::Float(_) => "float".into(),
        Shown::Bool(_) => "bool".into(),
        Shown::Str(_) => "string".into(),
        Shown::Function(name) => format!("function {name}"),
        Shown::Layer(name) => format!("layer {name}"),
    }
}

/// Whether an entry is complete: every bracket opened is closed (outside strings and
/// comments). An open `(`, `[` or `{` continues the entry on the next line.
pub fn is_complete(text: &str) -> bool {
    let mut depth: i64 = 0;
    for line in text.lines() {
        let mut in_string = false;
        for c in line.chars() {
            match c {
                '"' => in_string = !in_string,
                '#' if !in_string => break,
                '(' | '[' | '{' if !in_string => depth += 1,
                ')' | ']' | '}' if !in_string => depth -= 1,
                _ => {}
            }
        }
    }
    depth <= 0
}

/// `text` split at whitespace outside brackets, so that a setting's value may hold spaces
/// (`optimizer sgd(lr: 0.1)`, `metrics [accuracy, top_k_accuracy]`).
fn top_level_words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if let Some(from) = start.take() {
                words.push(&text[from..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(from) = start {
        words.push(&text[from..]);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::top_level_words;

    #[test]
    fn settings_split_at_spaces_outside_brackets() {
        assert_eq!(
            top_level_words(
                "  mlp optimizer sgd(lr: 0.1, momentum: 0.9)\tmetrics [a, b] epochs 2 "
            ),
            [
                "mlp",
                "optimizer",
                "sgd(lr: 0.1, momentum: 0.9)",
                "metrics",
                "[a, b]",
                "epochs",
                "2"
            ]
        );
        assert_eq!(top_level_words("m x)) y ("), ["m", "x))", "y", "("]);
        assert!(top_level_words(" ").is_empty());
    }
}
