//! Shape checking: resolves names, fills in defaults and checks every tensor shape.
//!
//! The checker reads the AST and produces a `program::CheckedProgram` or diagnostics. It reports
//! as many independent errors as it can, and stays quiet about anything that depends on a part
//! that already failed (a broken model is not also "unknown" to the `fit` that uses it).

mod actions;
mod args;
mod builtins;
mod data;
mod definitions;
mod describe;
mod elab;
pub mod expression;
mod fit;
mod generate;
mod model;
mod prompt;
pub mod types;
mod value;

use crate::diag::{Diagnostic, Span};
use crate::program::*;
use crate::settings::Activation;
use crate::syntax::ast;

use crate::suggest;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

pub use describe::describe;

/// The built-in layers, functions and initializers, each defined once (`builtins/`): their
/// names for the REPL's completion, and docs/language.md's tables.
pub use builtins::initializers::docs_table as initializers_table;
pub use builtins::{
    ArgHint, activation_names, argument_hints, functions_table, initializer_names, layers_table,
    names as builtin_names,
};

pub use prompt::CONSTRUCTORS;

/// The candidate closest to a misspelled `name`, for "did you mean" (the REPL's commands too).
pub fn closest_name<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    suggest::closest(name, candidates.iter().copied())
}
pub const SETTINGS: [&str; 16] = [
    "loss",
    "optimizer",
    "metrics",
    "epochs",
    "batch",
    "seed",
    "shuffle",
    "validation",
    "validation_split",
    "initial_epoch",
    "callbacks",
    "standardize",
    "class_weight",
    "shuffle_split",
    "stratify",
    "test_split",
];
/// Checks a parsed program. `None` iff any error was reported; warnings may accompany `Some`.
pub fn check(program: &ast::Program) -> (Option<CheckedProgram>, Vec<Diagnostic>) {
    let mut checker = Checker::new(program);
    checker.items(program);
    checker.unused_definitions();
    checker.unused_data();
    checker.finish()
}

/// Checks a parsed program as far as it goes, for editors: the models, data sets and fits that
/// checked even when others did not (a model with an error in it is left out), and every
/// diagnostic. `check` is this with the program withheld on any error.
pub fn check_partial(program: &ast::Program) -> (CheckedProgram, Vec<Diagnostic>) {
    let mut checker = Checker::new(program);
    checker.items(program);
    checker.unused_definitions();
    checker.unused_data();
    checker.finish_partial()
}

/// A sequential stack of dense layers, checked from source like any program: `widths`
/// holds the input width and then each layer's units. For tests and benchmarks.
pub fn dense_stack(name: &str, widths: &[usize], activations: &[Activation]) -> Model {
    assert_eq!(
        widths.len(),
        activations.len() + 1,
        "one activation per layer"
    );
    let layers: Vec<String> = activations
        .iter()
        .zip(&widths[1..])
        .map(|(a, units)| format!("    dense({units}, {})\n", a.name()))
        .collect();
    let source = format!(
        "model {name}(x: f32[B, {}]) -> f32[B, {}] {{\n{}}}\n",
        widths[0],
        widths[widths.len() - 1],
        layers.concat()
    );
    let (program, parse_errors) = crate::syntax::parse(&source);
    assert!(parse_errors.is_empty(), "{parse_errors:?}");
    let (checked, diags) = check(&program);
    let checked = checked.unwrap_or_else(|| panic!("dense_stack: {diags:?}"));
    checked.models.into_iter().next().expect("one model")
}

impl Checker {
    fn new(program: &ast::Program) -> Checker {
        Checker {
            lenient: program
                .items
                .iter()
                .any(|item| matches!(item, ast::Item::Error(_))),
            ..Checker::default()
        }
    }

    /// Every item of the program, in the order that lets each see what it uses.
    fn items(&mut self, program: &ast::Program) {
        // Definitions first, in order (a `let` may use the ones above it), so models can use
        // any layer or function wherever it is written.
        for item in &program.items {
            match item {
                ast::Item::Data(data) => self.data(data),
                ast::Item::Let(binding) => self.constant(binding),
                ast::Item::Layer(layer) => self.layer_definition(layer),
                ast::Item::Fn(function) => self.fn_definition(function),
                // Actions are checked after the fits, in `actions`.
                ast::Item::Model(_)
                | ast::Item::Fit(_)
                | ast::Item::Action(_)
                | ast::Item::Error(_) => {}
            }
        }
        for item in &program.items {
            if let ast::Item::Model(model) = item {
                self.model(model);
            }
        }
        for item in &program.items {
            if let ast::Item::Fit(fit) = item {
                let before = self.fits.len();
                self.fit(fit);
                if self.fits.len() > before && !self.trainable(fit, before) {
                    self.fits.pop();
                }
            }
        }
        self.actions(&program.items);
    }

    /// The checked program, unless an error was reported; and every diagnostic.
    fn finish(self) -> (Option<CheckedProgram>, Vec<Diagnostic>) {
        let failed = self.diags.iter().any(Diagnostic::is_error);
        let (checked, diags) = self.finish_partial();
        (if failed { None } else { Some(checked) }, diags)
    }

    fn finish_partial(self) -> (CheckedProgram, Vec<Diagnostic>) {
        let checked = CheckedProgram {
            data: self.data,
            models: self.models,
            fits: self.fits,
            actions: self.actions,
        };
        (checked, self.diags)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Model,
    Layer,
    Function,
    Constant,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Data => "a data set",
            Kind::Model => "a model",
            Kind::Layer => "a layer",
            Kind::Function => "a function",
            Kind::Constant => "a constant",
        }
    }
}

struct Entry {
    kind: Kind,
    span: Span,
    /// Index into the checked data or models; `None` when the declaration had errors.
    index: Option<usize>,
}

/// Source locations kept beside a checked data set, for errors that involve it later.
struct DataInfo {
    name_span: Span,
    features_span: Span,
    classes_span: Span,
    /// Where the source's `scale` is given, when it is.
    scale_span: Option<Span>,
    used: bool,
}

struct ModelInfo {
    input_type_span: Span,
    output_type_span: Span,
    batch_symbol: String,
}

#[derive(Default)]
struct Checker {
    diags: Vec<Diagnostic>,
    /// Some item failed to parse: a name it might have declared must not be called unknown.
    lenient: bool,
    /// Checking a REPL session's definitions (some messages read differently there).
    prompt: bool,
    names: HashMap<String, Entry>,
    data: Vec<DataSet>,
    data_info: Vec<DataInfo>,
    models: Vec<Model>,
    model_info: Vec<ModelInfo>,
    fits: Vec<Fit>,
    actions: Vec<Action>,
    /// Top-level `let` values (numbers, strings, lists of them).
    consts: HashMap<String, value::Value>,
    fns: HashMap<String, Rc<ast::FnDecl>>,
    user_layers: HashMap<String, Rc<ast::LayerDecl>>,
    /// Definitions some model used (the rest get an "unused" warning).
    used_defs: HashSet<String>,
}

impl Checker {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// Registers a top-level name; reports a duplicate and returns false if it is taken.
    fn declare(&mut self, name: &ast::Ident, kind: Kind) -> bool {
        if let Some(previous) = self.names.get(&name.name) {
            let first = previous.span;
            self.error(
                Diagnostic::error(
                    "E0101",
                    format!("the name `{}` is defined twice", name.name),
                )
                .primary(name.span, "defined again here")
                .secondary(first, "first defined here")
                .help("data sets, models, layers, functions and constants share one namespace; rename one of them"),
            );
            return false;
        }
        self.names.insert(
            name.name.clone(),
            Entry {
                kind,
                span: name.span,
                index: None,
            },
        );
        true
    }

    /// What `fit` can feed today: one input (the data's features, reshaped to the input's
    /// shape: floats, or whole numbers for an `i32` input) and one `[B, M]` output (compared
    /// with labels or targets).
    fn trainable(&mut self, decl: &ast::FitDecl, index: usize) -> bool {
        let model = &self.models[self.fits[index].model];
        let b = &model.batch_symbol;
        let Some((span, detail)) = self.unfeedable(self.fits[index].model) else {
            return true;
        };
        self.error(
            Diagnostic::error("E0312", format!("`fit` cannot train `{}`", model.name))
                .primary(decl.model.span, "this model")
                .secondary(span, detail)
                .note(format!("data sets supply one feature tensor per sample and one label or target row, so `fit` trains models with one input (f32, or i32 token ids) and one output of shape [{b}, M]"))
                .help("check, summarize and dump other models; train a single-input, single-output model"),
        );
        false
    }

    /// Why a data set cannot feed model `index` (`fit`, `evaluate` and `predict` pass it one
    /// feature tensor, f32 or i32, and read one `[B, M]` output): the declaration's span and
    /// what is wrong with it, or `None` when it can.
    fn unfeedable(&self, index: usize) -> Option<(Span, String)> {
        let model = &self.models[index];
        let info = &self.model_info[index];
        let b = &model.batch_symbol;
        if model.inputs.len() != 1 {
            Some((
                info.input_type_span,
                format!("`{}` has {} inputs", model.name, model.inputs.len()),
            ))
        } else if model.outputs.len() != 1 {
            Some((
                info.output_type_span,
                format!("`{}` has {} outputs", model.name, model.outputs.len()),
            ))
        } else if model.outputs[0].shape.rank() != 2 {
            Some((
                info.output_type_span,
                format!(
                    "`{}` outputs {}",
                    model.name,
                    types::type_text(&model.outputs[0], b)
                ),
            ))
        } else {
            None
        }
    }

    fn set_index(&mut self, name: &str, index: usize) {
        if let Some(entry) = self.names.get_mut(name) {
            entry.index = Some(index);
        }
    }

    fn lookup(&mut self, name: &ast::Ident, kind: Kind) -> Option<usize> {
        match self.names.get(&name.name) {
            Some(entry) if entry.kind == kind => {
                let index = entry.index;
                if let (Kind::Data, Some(i)) = (kind, index) {
                    self.data_info[i].used = true;
                }
                index
            }
            Some(entry) => {
                let span = entry.span;
                let found = entry.kind.noun();
                self.error(
                    Diagnostic::error(
                        "E0112",
                        format!("`{}` is {found}, not {}", name.name, kind.noun()),
                    )
                    .primary(name.span, format!("expected {}", kind.noun()))
                    .secondary(span, format!("`{}` is defined here", name.name))
                    .help("write `fit MODEL on DATA`"),
                );
                None
            }
            None => {
                if self.lenient {
                    return None;
                }
                let (code, what) = match kind {
                    Kind::Data => ("E0103", "data set"),
                    Kind::Model => ("E0102", "model"),
                    Kind::Layer | Kind::Function | Kind::Constant => ("E0113", "name"),
                };
                let candidates: Vec<&str> = self
                    .names
                    .iter()
                    .filter(|(_, e)| e.kind == kind)
                    .map(|(n, _)| n.as_str())
                    .collect();
                let mut sorted = candidates;
                sorted.sort_unstable();
                let d = Diagnostic::error(code, format!("unknown {what} `{}`", name.name))
                    .primary(name.span, format!("no {what} with this name"));
                let d = with_suggestion(d, &name.name, sorted);
                self.error(d);
                None
            }
        }
    }
    fn unused_data(&mut self) {
        if self.lenient {
            return;
        }
        for (data, info) in self.data.iter().zip(&self.data_info) {
            if !info.used {
                self.diags.push(
                    Diagnostic::warning("W0101", format!("data set `{}` is never used", data.name))
                        .primary(info.name_span, "declared here")
                        .help(format!(
                            "train on it with `fit MODEL on {}`, or remove it",
                            data.name
                        )),
                );
            }
        }
    }
}

/// "unknown loss `x`": the name, a "did you mean" when one is close, and what there is.
fn unknown(
    code: &'static str,
    what: &str,
    name: &ast::Ident,
    label: &str,
    known: &[&str],
    listing: impl Into<String>,
) -> Diagnostic {
    let d = Diagnostic::error(code, format!("unknown {what} `{}`", name.name))
        .primary(name.span, label);
    with_suggestion(d, &name.name, known.iter().copied()).note(listing)
}

fn with_suggestion<'a>(
    d: Diagnostic,
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Diagnostic {
    match suggest::closest(name, candidates) {
        Some(best) => d.help(format!("did you mean `{best}`?")),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::*;
    use crate::syntax::parse;

    fn check_source(source: &str) -> (Option<CheckedProgram>, Vec<Diagnostic>) {
        let (ast, diagnostics) = parse(source);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        check(&ast)
    }

    /// A binary classifier's precision and recall are Keras's, of class 1; a multi-class
    /// one's the macro average.
    #[test]
    fn precision_and_recall_resolve_by_the_loss() {
        let program = |loss: &str, classes: usize| {
            let width = if loss == "binary_crossentropy" {
                1
            } else {
                classes
            };
            let end = if width == 1 { "sigmoid" } else { "softmax" };
            format!(
                "data d = synthetic_classification(samples: 10, features: 4, classes: {classes})\n\
                 model m(x: f32[B, 4]) -> f32[B, {width}] {{ dense({width}, {end}) }}\n\
                 fit m on d {{ loss {loss}\n metrics [precision, Recall()] }}\n"
            )
        };
        let metrics = |source: String| {
            let (checked, diagnostics) = check_source(&source);
            let checked = checked.unwrap_or_else(|| panic!("{diagnostics:?}"));
            checked.fits[0].metrics.clone()
        };
        assert_eq!(
            metrics(program("binary_crossentropy", 2)),
            [
                Metric::Precision { binary: true },
                Metric::Recall { binary: true }
            ]
        );
        assert_eq!(
            metrics(program("sparse_categorical_crossentropy", 3)),
            [
                Metric::Precision { binary: false },
                Metric::Recall { binary: false }
            ]
        );
    }

    /// Constants stand for their values in fit settings, signs included.
    #[test]
    fn fit_settings_read_constants_and_their_signs() {
        let source = "let n = -3\nlet rate = -0.5\n\
             data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n\
             model m(x: f32[B, 4]) -> f32[B, 2] {\n    dense(2, softmax)\n}\n\
             fit m on d {\n    loss sparse_categorical_crossentropy\n    epochs -n\n    \
             batch --4\n    optimizer sgd(lr: -rate)\n}\n";
        let (checked, diagnostics) = check_source(source);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let fit = &checked.expect("checks").fits[0];
        assert_eq!((fit.epochs, fit.batch), (3, 4));
        assert_eq!(fit.optimizer.lr(), 0.5);
        let (_, diagnostics) = check_source(&source.replace("epochs -n", "epochs n"));
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["`epochs` must be a positive integer"]);
    }

    #[test]
    fn every_defined_data_source_is_checked() {
        for def in crate::settings::data_source::DATA_SOURCES {
            let (_, diagnostics) = check_source(&format!("data d = {}()\n", def.name));
            assert!(
                diagnostics.iter().all(|d| d.code != "E0900"),
                "{}: {diagnostics:?}",
                def.name
            );
        }
    }

    #[test]
    fn seed_program_checks_with_keras_defaults() {
        let (checked, diagnostics) = check_source(include_str!("../../programs/seed.model"));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let checked = checked.expect("checks");
        let model = &checked.models[0];
        assert_eq!((model.input_features, model.output_features), (32, 10));
        let names: Vec<&str> = model.summary.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["dense", "dense_1", "dense_2"]);
        assert_eq!(model.output_activation(), Activation::Softmax);
        let fit = &checked.fits[0];
        assert_eq!(
            fit.optimizer,
            Optimizer::new(&crate::settings::optimizer::ADAM, &[])
        );
        assert_eq!(
            (fit.epochs, fit.batch, fit.seed, fit.shuffle),
            (5, 32, 7, true)
        );
        assert_eq!(fit.metrics, [Metric::SparseCategoricalAccuracy]);
    }

    #[test]
    fn iris_program_checks() {
        let (checked, diagnostics) = check_source(include_str!("../../programs/iris.model"));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let checked = checked.expect("checks");
        assert_eq!(
            checked.data[0].source,
            DataSource::Csv {
                path: "data/iris.csv".into(),
                label: LabelColumn::Name("species".into()),
                header: true,
                scale: 1.0,
                delimiter: ',',
                weight: None,
                features: None,
                fill: Fill::Reject,
                categorical: Vec::new(),
                encoding: Default::default(),
            }
        );
    }

    #[test]
    fn huge_values_are_errors_not_panics() {
        let source = "data d = synthetic_classification(18446744073709551615, 4, 2, 18446744073709551615)\n\
                      model m(x: f32[B, 18446744073709551615]) -> f32[B, 2] { dense(2) }\n\
                      fit m on d { loss sparse_categorical_crossentropy; epochs 18446744073709551615 }";
        let (_, diagnostics) = check_source(source);
        assert!(diagnostics.iter().all(|d| d.code.starts_with('E')));
    }
}
