//! The driver: runs the pipeline stages as a flat list. Every entry point — `kiln check`,
//! `kiln dump`, `kiln run`, the golden tests — goes through these functions, so they all see the
//! same compiler. `run` executes a program's statements with these stages.

mod bundle;
mod library;
mod run;

pub use bundle::{BundleAction, OpenBundle, export_onnx, open as open_bundle, run_bundle};

pub use library::{DEFAULT_MAX_BATCH, NativeLibrary, build_library, is_c_identifier};

pub use run::{
    Event, FitOutcome, RunError, RunOptions, Workspace, run, run_actions, run_distributed, run_with,
};

use std::time::{Duration, Instant};

use crate::codegen::{self, CodegenConfig, CompiledStep};
use crate::diag::{self, Diagnostic};
use crate::ir::graph::Graph;
use crate::ir::{autodiff, dce, lower, optimizer, passes, print, verify};
use crate::program::{CheckedProgram, Fit};
use crate::{check, syntax};

/// The stages `kiln dump` can show, in pipeline order.
pub const STAGES: &[(&str, &str)] = &[
    ("parse", "the syntax tree, with source spans"),
    (
        "check",
        "the checked program: layers, shapes, parameter counts, resolved settings",
    ),
    ("ir", "the forward pass and loss as tensor IR"),
    (
        "grad",
        "the IR with the backward pass appended by reverse-mode autodiff",
    ),
    (
        "step",
        "the whole training step: forward, backward and optimizer update",
    ),
    ("opt", "the training step after the optimization passes"),
    (
        "passes",
        "the training step after each optimization pass, under the pass's name",
    ),
    ("kernels", "the step grouped into fused kernels"),
    ("clif", "the Cranelift IR of the compiled step"),
];

/// A checked program and the warnings found on the way.
pub struct Checked {
    pub program: CheckedProgram,
    pub warnings: Vec<Diagnostic>,
}

/// Wall-clock time of each compiler stage, in pipeline order (`kiln run --timings`).
#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub stages: Vec<(&'static str, Duration)>,
}

impl Timings {
    /// Runs one stage and records how long it took.
    pub fn measure<T>(&mut self, stage: &'static str, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let value = work();
        self.stages.push((stage, started.elapsed()));
        value
    }

    pub fn total(&self) -> Duration {
        self.stages.iter().map(|&(_, time)| time).sum()
    }
}

/// Source → checked program: lex, parse, check. On failure, the errors; even when parsing fails
/// the checker runs on what parsed, so one run reports syntax and name errors together.
pub fn check_source(source: &str) -> Result<Checked, Vec<Diagnostic>> {
    check_source_timed(source, &mut Timings::default())
}

/// `check_source`, recording the time of each stage.
pub fn check_source_timed(source: &str, timings: &mut Timings) -> Result<Checked, Vec<Diagnostic>> {
    let (ast, mut diagnostics) = timings.measure("parse", || syntax::parse(source));
    let parsed = !diag::has_errors(&diagnostics);
    let (program, check_diagnostics) = timings.measure("check", || check::check(&ast));
    diagnostics.extend(check_diagnostics);
    match program {
        Some(program) if parsed && !diag::has_errors(&diagnostics) => Ok(Checked {
            program,
            warnings: diagnostics,
        }),
        _ => {
            diagnostics.retain(Diagnostic::is_error);
            Err(diagnostics)
        }
    }
}

/// What an editor shows for a buffer (`ide`): the syntax tree, whatever checked, and the
/// diagnostics `kiln check` reports for the same text.
pub struct Analyzed {
    pub ast: syntax::ast::Program,
    /// The models, data sets and fits that checked, even when others failed.
    pub program: CheckedProgram,
    pub diagnostics: Vec<Diagnostic>,
}

/// Source → `Analyzed`, by the same parse and check as `check_source`: its diagnostics are
/// `check_source`'s errors when there are any, else its warnings.
pub fn analyze(source: &str) -> Analyzed {
    let (ast, mut diagnostics) = syntax::parse(source);
    let (program, check_diagnostics) = check::check_partial(&ast);
    diagnostics.extend(check_diagnostics);
    if diag::has_errors(&diagnostics) {
        diagnostics.retain(Diagnostic::is_error);
    }
    Analyzed {
        ast,
        program,
        diagnostics,
    }
}

/// How far `training_graph` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GraphStage {
    /// Forward pass and loss.
    Forward,
    /// Plus the backward pass.
    Gradients,
    /// Plus the optimizer update: the whole training step.
    Step,
    /// The whole step after the optimization passes: what gets compiled.
    Optimized,
}

/// Checked fit → training-step IR: lower, differentiate, append the optimizer update, then
/// optimize (or, before `Optimized`, only drop dead code); the verifier runs after each.
pub fn training_graph(
    program: &CheckedProgram,
    fit: &Fit,
    until: GraphStage,
) -> Result<Graph, Diagnostic> {
    training_graph_timed(program, fit, until, &mut Timings::default())
}

/// `training_graph`, recording the time of each stage.
pub fn training_graph_timed(
    program: &CheckedProgram,
    fit: &Fit,
    until: GraphStage,
    timings: &mut Timings,
) -> Result<Graph, Diagnostic> {
    let model = &program.models[fit.model];
    let mut graph = timings.measure("lower", || {
        lower::lower_training(&model.forward, &fit.objective())
    });
    verified(&graph, "lowering")?;
    if until >= GraphStage::Gradients {
        let loss = graph
            .output(lower::LOSS)
            .expect("lowering always produces a loss");
        timings.measure("autodiff", || autodiff::differentiate(&mut graph, loss));
        verified(&graph, "autodiff")?;
    }
    if until >= GraphStage::Step {
        timings.measure("optimizer", || {
            optimizer::append_update(&mut graph, &fit.optimizer, Some(fit.span))
        });
        verified(&graph, "the optimizer update")?;
    }
    if until >= GraphStage::Optimized {
        return timings
            .measure("passes", || passes::optimize(&graph))
            .map_err(|problems| verifier_error("the optimization passes", problems));
    }
    let graph = dce::eliminate_dead_code(&graph);
    verified(&graph, "dead-code elimination")?;
    Ok(graph)
}

/// The training step split for data-parallel training (`runtime::distributed`): the forward
/// and backward pass with the gradients as results, and the optimizer update alone, taking them
/// as inputs (`optimizer::update_graph`); both optimized.
pub fn split_graphs(program: &CheckedProgram, fit: &Fit) -> Result<(Graph, Graph), Diagnostic> {
    let gradients = training_graph(program, fit, GraphStage::Gradients)?;
    let update = optimizer::update_graph(&gradients, &fit.optimizer, Some(fit.span));
    verified(&update, "the optimizer update")?;
    let optimize = |graph: &Graph| {
        passes::optimize(graph)
            .map_err(|problems| verifier_error("the optimization passes", problems))
    };
    Ok((optimize(&gradients)?, optimize(&update)?))
}

/// The forward pass and loss as evaluation and prediction run them (`lower::for_inference`),
/// without the fit's `class_weight`: Keras weighs only the training loss by class.
pub fn inference_graph(program: &CheckedProgram, fit: &Fit) -> Result<Graph, Diagnostic> {
    let model = &program.models[fit.model];
    let objective = lower::Objective {
        class_weight: None,
        ..fit.objective()
    };
    let graph = lower::lower_training(&model.forward, &objective);
    verified(&graph, "lowering")?;
    let graph = dce::eliminate_dead_code(&graph);
    verified(&graph, "dead-code elimination")?;
    Ok(lower::for_inference(&graph))
}

/// The verifier between stages: a failure is a compiler bug, reported rather than run.
fn verified(graph: &Graph, after: &str) -> Result<(), Diagnostic> {
    let problems = verify::verify(graph);
    if problems.is_empty() {
        return Ok(());
    }
    Err(verifier_error(after, problems))
}

fn verifier_error(after: &str, problems: Vec<String>) -> Diagnostic {
    Diagnostic::error(
        "E0900",
        format!("internal compiler error: the IR after {after} does not verify"),
    )
    .note(problems.join("\n"))
}

/// Training-step IR → native code whose buffers hold batches of up to `max_batch` samples.
pub fn compile_step(
    graph: &Graph,
    fit: &Fit,
    max_batch: usize,
) -> Result<CompiledStep, Diagnostic> {
    codegen::compile(graph, &CodegenConfig { max_batch }).map_err(|e| {
        Diagnostic::error("E0901", format!("code generation failed: {e}"))
            .primary(fit.span, "while compiling this training step")
    })
}

/// What `kiln dump --stage STAGE` prints for the first `fit` of the program. `Err` holds the
/// rendered diagnostics (without colour) when the program does not get that far.
pub fn dump(stage: &str, file_name: &str, source: &str) -> Result<String, String> {
    let render = |diagnostics: &[Diagnostic]| diag::render(diagnostics, file_name, source, false);
    if !STAGES.iter().any(|(name, _)| *name == stage) {
        let names: Vec<&str> = STAGES.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "unknown stage `{stage}`; the stages are: {}\n",
            names.join(", ")
        ));
    }
    if stage == "parse" {
        let (ast, diagnostics) = syntax::parse(source);
        if diag::has_errors(&diagnostics) {
            return Err(render(&diagnostics));
        }
        return Ok(syntax::print_ast(&ast));
    }
    let checked = check_source(source).map_err(|d| render(&d))?;
    let warnings = if checked.warnings.is_empty() {
        String::new()
    } else {
        format!("\n{}", render(&checked.warnings))
    };
    if stage == "check" {
        return Ok(format!("{}{warnings}", check::describe(&checked.program)));
    }
    let Some(fit) = checked.program.fits.first() else {
        return Err(
            "the program has no `fit` statement, so there is no training step to show\n"
                .to_string(),
        );
    };
    let until = match stage {
        "ir" => GraphStage::Forward,
        "grad" => GraphStage::Gradients,
        "step" | "passes" => GraphStage::Step,
        _ => GraphStage::Optimized,
    };
    let graph = training_graph(&checked.program, fit, until).map_err(|d| render(&[d]))?;
    if stage == "passes" {
        let trace = passes::optimize_traced(&graph)
            .map_err(|problems| render(&[verifier_error("the optimization passes", problems)]))?;
        return Ok(format!("{}{warnings}", passes_text(&trace, &graph, source)));
    }
    let config = CodegenConfig {
        max_batch: fit.batch,
    };
    let text = match stage {
        "kernels" => codegen::schedule_text(&graph).map_err(|e| format!("{e}\n"))?,
        "clif" => codegen::clif_text(&graph, &config).map_err(|e| format!("{e}\n"))?,
        _ => print::print(&graph, Some(source)),
    };
    Ok(format!("{text}{warnings}"))
}

/// Each pass's result under its name; a pass that changed nothing says so instead of repeating
/// the graph.
fn passes_text(trace: &[(String, Graph)], input: &Graph, source: &str) -> String {
    let mut text = String::new();
    let mut previous = input;
    for (name, graph) in trace {
        if graph == previous {
            text.push_str(&format!("── after {name}: unchanged ──\n"));
        } else {
            text.push_str(&format!("── after {name} ──\n"));
            text.push_str(&print::print(graph, Some(source)));
        }
        previous = graph;
    }
    text
}
