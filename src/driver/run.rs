//! The statement runner: executes a checked program's statements in order (`fit`, `evaluate`,
//! `predict`, `save`, `load`), keeping each model's weights and optimizer state between them in
//! a `Workspace`, and reports what happens as `Event`s. The pipeline stages it calls are in
//! `driver` (the parent module).

mod generate;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::codegen::{self, CodegenConfig, CompiledStep};
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::Graph;
use crate::ir::shape::{DType, Shape};
use crate::program::{Action, CheckedProgram, Fit};
use crate::runtime::checkpoint::{self, Checkpoint, OptimizerState};
use crate::runtime::data::{
    self, DataError, Dataset, Standardization, TableVocabulary, Tabular, TextVocabulary, Vocabulary,
};
use crate::runtime::distributed::{self, Collective, Communication, SplitStep};
use crate::runtime::evaluate::{Evaluation, Evaluator};
use crate::runtime::init;
use crate::runtime::predict::{self, Predictions};
use crate::runtime::train::{self, EpochReport};
use crate::settings::{
    Activation, DataSource, Loss, Metric, Optimizer, PredictFormat, Training, Validation,
};

use super::{
    GraphStage, Timings, check_source_timed, compile_step, inference_graph, training_graph_timed,
};

/// What happens while a program runs, for the CLI (or a test) to show.
pub enum Event<'a> {
    /// A fit is about to train.
    FitStarted {
        model: &'a str,
        /// The model's summary table (layers, output shapes, parameter counts, totals).
        summary: String,
        data: &'a str,
        samples: usize,
        params: usize,
        /// Source to ready-to-train native code, stage by stage.
        timings: &'a Timings,
        /// Reading and checking the data (and the validation data).
        load_time: Duration,
        /// The validation data's name (the data set, or `validation_split`) and sample count.
        validation: Option<(&'a str, usize)>,
        /// For time-series validation data: the mean absolute error of the naive forecast
        /// (each window's last value) on it, the baseline its `val_mae` is read against.
        baseline: Option<f64>,
        /// Epochs already trained (`initial_epoch`) and updates already made (from a loaded
        /// optimizer state or an earlier fit), when training resumes.
        resumed: Option<(usize, u64)>,
    },
    /// A training step has run (after every step: for live progress).
    Step(&'a train::Progress),
    Epoch(&'a EpochReport),
    /// The user stopped a fit (Ctrl-C at the REPL) after `step` steps of `epoch` (1-based);
    /// the weights keep those updates.
    Interrupted {
        model: &'a str,
        epoch: usize,
        step: usize,
    },
    /// A fit has finished, before the statements after it run.
    Trained(&'a FitOutcome),
    /// Early stopping ended a fit after this epoch (1-based).
    StoppedEarly {
        model: &'a str,
        epoch: usize,
    },
    /// `load` (or `--load`/`--init`) read a checkpoint; `steps`: the optimizer state's update
    /// count when it was restored too.
    Loaded {
        model: &'a str,
        path: &'a Path,
        steps: Option<u64>,
    },
    /// `save` or a `checkpoint` callback wrote a checkpoint (`epoch`: after that epoch).
    Saved {
        model: &'a str,
        path: &'a Path,
        epoch: Option<usize>,
    },
    /// `evaluate` measured loss and metrics.
    Evaluated {
        model: &'a str,
        data: &'a str,
        evaluation: &'a Evaluation,
        /// For a time series: the naive forecast's mean absolute error on the same windows.
        baseline: Option<f64>,
    },
    /// `predict` wrote the outputs for `samples` samples (to `path`, unless it is empty: then
    /// nothing was written, and showing `predictions` is the caller's job).
    Predicted {
        model: &'a str,
        data: &'a str,
        path: &'a Path,
        samples: usize,
        predictions: &'a Predictions,
    },
    /// `generate` wrote `text`: the prompt and the tokens drawn after it.
    Generated {
        model: &'a str,
        text: &'a str,
    },
}

/// The result of one `fit`.
#[derive(Clone, Debug)]
pub struct FitOutcome {
    pub model: String,
    pub history: Vec<EpochReport>,
    /// Short hash of the final weights (equal hashes: identical weights).
    pub weights_hash: String,
    pub final_params: Vec<Vec<f32>>,
    /// The epoch (1-based) after which early stopping ended training.
    pub stopped_early: Option<usize>,
    /// Where a training step's time went, measured after training (`RunOptions::profile`).
    pub profile: Option<train::StepProfile>,
    /// Loss and metrics of the final weights on the `test_split` samples, which neither trained
    /// nor validated.
    pub test: Option<Evaluation>,
    /// The gradient exchange of a data-parallel fit (`run_distributed`).
    pub communication: Option<Communication>,
}

/// Why a run stopped.
#[derive(Debug)]
pub enum RunError {
    /// The program does not compile, or a checkpoint does not fit it; render against the
    /// source.
    Program(Vec<Diagnostic>),
    /// A data, checkpoint or prediction file could not be read or written.
    Data(DataError),
}

/// How `kiln run` starts, beyond the program: checkpoints named on the command line (both
/// apply to the model of the program's first `fit`, or its only model, before anything runs),
/// the thread count and profiling.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--load FILE`: weights, and the optimizer state when the file has it, to resume training.
    pub load: Option<PathBuf>,
    /// `--init FILE`: initial weights only; the optimizer starts fresh.
    pub init: Option<PathBuf>,
    /// `--threads N`: threads every compiled step (training, validation, evaluate, predict)
    /// splits its large matrix products over. `None`: each step's own default (one, unless a
    /// product is large; see `CompiledStep::threads`). Results do not depend on it.
    pub threads: Option<usize>,
    /// `--profile`: after each fit, measure where a step's time goes (`FitOutcome::profile`).
    pub profile: bool,
    /// `--check-numerics`: after every step, check the weights and optimizer state too, not
    /// only the loss, and stop at the first step that leaves one of them NaN or infinite.
    pub check_numerics: bool,
}

/// A model's weights and optimizer state between statements.
#[derive(Clone, Debug)]
pub(super) struct ModelState {
    /// In the graph's parameter order.
    pub(super) params: Vec<Vec<f32>>,
    optimizer: Option<OptimizerState>,
    /// Epochs trained, when known (recorded in checkpoints).
    epoch: Option<usize>,
    /// The statistics its inputs are standardized with (`standardize true`).
    pub(super) standardization: Option<Standardization>,
    /// The vocabulary and class names of the text it was trained on (`text_csv`), which every
    /// later text it sees is vectorized with.
    text: Option<TextVocabulary>,
    /// The categories and class names of the CSV it was trained on, which every later CSV it
    /// sees is encoded with.
    table: Option<TableVocabulary>,
}

/// Runs a program: every `fit`, `evaluate`, `predict`, `save` and `load` in program order.
/// `base_dir` is where relative paths start (the program's folder).
pub fn run(
    source: &str,
    base_dir: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<FitOutcome>, RunError> {
    run_with(source, base_dir, &RunOptions::default(), on_event)
}

/// `run` with checkpoints from the command line.
pub fn run_with(
    source: &str,
    base_dir: &Path,
    options: &RunOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<FitOutcome>, RunError> {
    run_on(source, base_dir, options, None, on_event)
}

/// `run_with` as one rank of a data-parallel job (`kiln run --distributed`): every rank runs the
/// same program on the same data, each fit trains across the ranks
/// (`runtime::distributed`), and only rank 0 writes checkpoints, saved models and predictions.
/// Every rank reports the same events; the caller shows rank 0's.
pub fn run_distributed(
    source: &str,
    base_dir: &Path,
    options: &RunOptions,
    collective: &dyn Collective,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<FitOutcome>, RunError> {
    run_on(source, base_dir, options, Some(collective), on_event)
}

fn run_on<'e>(
    source: &str,
    base_dir: &Path,
    options: &RunOptions,
    collective: Option<&'e dyn Collective>,
    on_event: &'e mut dyn FnMut(Event),
) -> Result<Vec<FitOutcome>, RunError> {
    let mut front_end = Timings::default();
    let checked = check_source_timed(source, &mut front_end).map_err(RunError::Program)?;
    let program = &checked.program;
    let mut workspace = Workspace::default();
    let mut runner = Runner {
        program,
        source,
        base_dir,
        states: &mut workspace.states,
        interrupt: None,
        on_event,
        threads: options.threads,
        profile: options.profile,
        check_numerics: options.check_numerics,
        collective,
    };
    for (path, resume) in [(&options.init, false), (&options.load, true)] {
        let Some(path) = path else { continue };
        let model = program
            .fits
            .first()
            .map(|fit| fit.model)
            .or_else(|| (program.models.len() == 1).then_some(0))
            .ok_or_else(|| {
                RunError::Program(vec![
                    Diagnostic::error(
                        "E0407",
                        format!(
                            "--{} needs a model: the program has no `fit` and {} models",
                            if resume { "load" } else { "init" },
                            program.models.len()
                        ),
                    )
                    .help("checkpoints from the command line go to the model of the first `fit`"),
                ])
            })?;
        runner.load(model, path, None, resume)?;
    }
    runner.actions(&program.actions, &front_end)
}

/// Model weights, optimizer states and standardization statistics that outlive one run of a
/// program: `run` starts with an empty one; the REPL keeps one across its entries, so a model
/// trained by one entry is evaluated, trained further or inspected by the next.
#[derive(Default)]
pub struct Workspace {
    pub(super) states: HashMap<String, ModelState>,
    /// Set (by a signal handler) to stop the running fit after its current step.
    interrupt: Option<Arc<AtomicBool>>,
}

impl Workspace {
    /// Fits stop after their current step when `flag` is set (the REPL's Ctrl-C handler sets
    /// it); the caller clears it.
    pub fn interrupt_with(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    /// Forgets a model's weights (it was redefined: the old ones may not fit it).
    pub fn forget(&mut self, model: &str) {
        self.states.remove(model);
    }

    /// A model's weights in its graph's parameter order, once trained or loaded.
    pub fn weights(&self, model: &str) -> Option<&[Vec<f32>]> {
        self.states.get(model).map(|s| s.params.as_slice())
    }
}

/// Runs `actions` of a checked program (in order) against the weights in `workspace`. `source`
/// is the program's text (bundles keep the source of the model they save).
pub fn run_actions(
    program: &CheckedProgram,
    source: &str,
    actions: &[Action],
    base_dir: &Path,
    workspace: &mut Workspace,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<FitOutcome>, RunError> {
    let mut runner = Runner {
        program,
        source,
        base_dir,
        states: &mut workspace.states,
        interrupt: workspace.interrupt.clone(),
        threads: None,
        profile: false,
        check_numerics: false,
        collective: None,
        on_event,
    };
    runner.actions(actions, &Timings::default())
}

impl Runner<'_, '_> {
    fn actions(
        &mut self,
        actions: &[Action],
        front_end: &Timings,
    ) -> Result<Vec<FitOutcome>, RunError> {
        let (program, base_dir, runner) = (self.program, self.base_dir, self);
        let mut outcomes = Vec::new();
        for action in actions {
            match action {
                Action::Fit(index) => {
                    let outcome = runner.fit(&program.fits[*index], front_end)?;
                    (runner.on_event)(Event::Trained(&outcome));
                    if let Some(evaluation) = &outcome.test {
                        (runner.on_event)(Event::Evaluated {
                            model: &outcome.model,
                            data: "test_split",
                            evaluation,
                            baseline: None,
                        });
                    }
                    outcomes.push(outcome);
                }
                Action::Load { model, path, span } => {
                    let path = data::resolve(path, base_dir);
                    runner.load(*model, &path, Some(*span), true)?;
                }
                Action::Save {
                    model,
                    path,
                    bundle,
                    ..
                } => {
                    let path = data::resolve(path, base_dir);
                    match bundle {
                        None => runner.save(*model, &path)?,
                        Some(items) => runner.save_bundle(*model, &path, items)?,
                    }
                }
                Action::Evaluate {
                    model, data, fit, ..
                } => runner.evaluate(*model, *data, &program.fits[*fit])?,
                Action::Predict {
                    model,
                    data,
                    fit,
                    path,
                    format,
                    ..
                } => {
                    // An empty path writes nothing (`Event::Predicted` carries the values).
                    let path = if path.is_empty() {
                        PathBuf::new()
                    } else {
                        data::resolve(path, base_dir)
                    };
                    runner.predict(*model, *data, fit.map(|f| &program.fits[f]), &path, *format)?;
                }
                Action::Generate {
                    model,
                    fit,
                    prompt,
                    length,
                    temperature,
                    seed,
                    ..
                } => {
                    let request = generate::Request {
                        prompt,
                        length: *length,
                        temperature: *temperature,
                        seed: *seed,
                    };
                    let fit = fit.map(|f| &program.fits[f]);
                    let text = runner.generate(*model, fit, &request)?;
                    (runner.on_event)(Event::Generated {
                        model: &program.models[*model].name,
                        text: &text,
                    });
                }
            }
        }
        Ok(outcomes)
    }
}

/// The state of a running program.
pub(super) struct Runner<'p, 'e> {
    pub(super) program: &'p CheckedProgram,
    /// The program's text.
    pub(super) source: &'p str,
    pub(super) base_dir: &'p Path,
    /// By model name.
    pub(super) states: &'e mut HashMap<String, ModelState>,
    pub(super) interrupt: Option<Arc<AtomicBool>>,
    pub(super) on_event: &'e mut dyn FnMut(Event),
    /// `RunOptions::threads`, applied to every step compiled.
    pub(super) threads: Option<usize>,
    pub(super) profile: bool,
    pub(super) check_numerics: bool,
    /// The ranks of a data-parallel run (`run_distributed`): every fit trains across them, and
    /// only rank 0 writes files.
    pub(super) collective: Option<&'e dyn Collective>,
}

/// E0410: training met a NaN or infinite loss and stopped.
fn non_finite_loss(nan: &train::NonFiniteLoss, fit: &Fit, model: &str) -> Diagnostic {
    let what = match &nan.value {
        None => format!("the loss was {}", nan.loss),
        Some(name) => format!(
            "`{name}` held a non-finite value (the loss was {:.4})",
            nan.loss
        ),
    };
    let d = Diagnostic::error(
        "E0410",
        format!(
            "training `{model}` stopped: {what} at epoch {}, step {} of {}",
            nan.epoch, nan.step, nan.steps
        ),
    )
    .primary(fit.span, "while training this fit");
    // Where it began, when replaying the step in the interpreter found it.
    let d = match &nan.source {
        Some(source) => {
            let ranges: Vec<String> = source
                .inputs
                .iter()
                .map(|(lo, hi)| format!("[{lo:.4e}, {hi:.4e}]"))
                .collect();
            let what = |place: &str| {
                if ranges.is_empty() {
                    format!(
                        "`{}` already held {} when this step began: the previous step's update \
                         made it so (`kiln run --check-numerics` stops at that step)",
                        source.op, source.value
                    )
                } else {
                    format!(
                        "the first non-finite value ({}) arises {place}: `{}` of inputs in {}",
                        source.value,
                        source.op,
                        ranges.join(" and ")
                    )
                }
            };
            match source.span {
                Some(span) if span != fit.span => d.secondary(span, what("here")),
                _ => d.note(what("in the loss")),
            }
        }
        None => d.note(
            "replaying the step in the interpreter (float32 rounding) stayed finite, so the \
             source could not be named",
        ),
    };
    d.note(
        "nothing was saved after the last finite epoch: checkpoints already written are kept, \
         and the model's weights are left as they were before this fit",
    )
    .help(
        "non-finite values usually come from too high a learning rate, unscaled inputs \
         (`scale`, `standardize`), a loss that does not fit the outputs, or an op where it has \
         no derivative (`sqrt` or `log` at 0)",
    )
}

/// E0842: a copy of trained weights or state could not be allocated.
fn copy_failed(bytes: u128, what: &str, fit: &Fit, model: &str) -> Diagnostic {
    Diagnostic::error("E0842", format!("out of memory after training `{model}`"))
        .primary(
            fit.span,
            format!(
                "copying `{what}` out of the training step needs {}, which is not available",
                crate::runtime::memory::gib(bytes)
            ),
        )
        .note("the trained weights are lost; checkpoints written during training are kept")
        .help("free memory, or train a smaller model")
}

/// E0841: the fit's estimated memory is more than the process may use.
fn out_of_memory(
    needed: &crate::program::memory::Estimate,
    available: &crate::runtime::memory::Available,
    fit: &Fit,
    model: &str,
) -> Diagnostic {
    use crate::runtime::memory::gib;
    let largest: Vec<String> = needed
        .largest
        .iter()
        .map(|(name, ty, bytes)| format!("`{name}` {ty} ({})", gib(*bytes)))
        .collect();
    Diagnostic::error("E0841", format!("not enough memory to train `{model}`"))
        .primary(
            fit.span,
            format!(
                "training needs about {}; {} is available",
                gib(needed.total()),
                gib(available.bytes)
            ),
        )
        .note(format!(
            "the largest tensors: {}; the step holds {} values for each parameter (the weight, its \
         gradient and the optimizer's state)",
            largest.join(", "),
            needed.per_parameter
        ))
        .note(format!("the estimate: {}", needed.breakdown()))
        .note(format!("available: {}", available.source))
        .help("use fewer or smaller layers, a smaller batch, or an optimizer with less state (sgd)")
}

/// E0880: the ranks of a data-parallel run are not training the same thing.
fn ranks_disagree(fingerprints: &[u64], fit: &Fit, model: &str) -> Diagnostic {
    let differ: Vec<String> = (fingerprints.iter().enumerate())
        .filter(|&(_, h)| *h != fingerprints[0])
        .map(|(rank, _)| rank.to_string())
        .collect();
    Diagnostic::error(
        "E0880",
        format!(
            "the ranks of this distributed run do not agree on what `{model}` trains: rank{} {} \
             differ{} from rank 0",
            if differ.len() == 1 { "" } else { "s" },
            differ.join(", "),
            if differ.len() == 1 { "s" } else { "" },
        ),
    )
    .primary(
        fit.span,
        "every rank must train this fit on the same program and data",
    )
    .note(
        "each rank compares a hash of the compiled training step, the training data, the \
         batch, epochs and seed, and the starting weights before the first step",
    )
    .help(
        "run one program file and one copy of the data on every rank (the same path on a shared \
         file system, or identical copies), with the same --load/--init",
    )
}

/// E0881: after a distributed fit the ranks hold different weights (a bug in Kiln or in the MPI
/// library, never the program's fault).
fn ranks_diverged(hashes: &[u64], fit: &Fit, model: &str) -> Diagnostic {
    let list: Vec<String> = (hashes.iter().enumerate())
        .map(|(rank, h)| format!("rank {rank}: {h:016x}"))
        .collect();
    Diagnostic::error(
        "E0881",
        format!(
            "the ranks of this distributed run ended `{model}`'s training with different weights"
        ),
    )
    .primary(fit.span, "trained across the ranks here")
    .note(format!("weights hashes: {}", list.join(", ")))
    .help("this is a bug in Kiln's data-parallel training or the MPI library; please report it")
}

pub(super) fn program_error(d: Diagnostic) -> RunError {
    RunError::Program(vec![d])
}

fn codegen_error(fit: &Fit, e: impl std::fmt::Display) -> RunError {
    program_error(
        Diagnostic::error("E0901", format!("code generation failed: {e}"))
            .primary(fit.span, "while compiling this fit's evaluation pass"),
    )
}

/// Named tensors from a graph's parameter list and their values.
/// Values named as checkpoint tensors, each copied (fallibly: the copies are the model's size).
fn named(
    infos: &[(String, Vec<usize>)],
    values: &[Vec<f32>],
) -> Result<Vec<checkpoint::Tensor>, crate::buffer::AllocError> {
    infos
        .iter()
        .zip(values)
        .map(|((name, shape), values)| {
            Ok(checkpoint::Tensor {
                name: name.clone(),
                shape: shape.clone(),
                values: crate::buffer::try_copy(values)?,
            })
        })
        .collect()
}

/// Values named as checkpoint tensors, moved.
fn named_owned(infos: &[(String, Vec<usize>)], values: Vec<Vec<f32>>) -> Vec<checkpoint::Tensor> {
    infos
        .iter()
        .zip(values)
        .map(|((name, shape), values)| checkpoint::Tensor {
            name: name.clone(),
            shape: shape.clone(),
            values,
        })
        .collect()
}

/// A save that ran out of memory copying the weights into the checkpoint.
fn save_out_of_memory(path: &Path, e: crate::buffer::AllocError) -> DataError {
    DataError::new(
        &path.display().to_string(),
        format!(
            "out of memory: copying the weights to save needs {} more; nothing was written",
            crate::runtime::memory::gib(e.bytes)
        ),
    )
}

impl Runner<'_, '_> {
    /// A compiled step with the run's thread count, when one was given.
    /// Whether this process writes files: always, except on the ranks after the first of a
    /// data-parallel run, which compute the same results.
    fn writes_files(&self) -> bool {
        self.collective.is_none_or(|c| c.rank() == 0)
    }

    fn threaded(&self, mut step: CompiledStep) -> CompiledStep {
        if let Some(threads) = self.threads {
            step.set_threads(threads);
        }
        step
    }

    /// An evaluator for `forward` with the run's thread count.
    fn evaluator(&self, forward: &Graph, batch: usize, fit: &Fit) -> Result<Evaluator, RunError> {
        let mut evaluator = Evaluator::new(forward, batch).map_err(|e| codegen_error(fit, e))?;
        if let Some(threads) = self.threads {
            evaluator.set_threads(threads);
        }
        Ok(evaluator)
    }

    /// The fit that stands for `model` when no statement names one: its first `fit`, or Keras's
    /// defaults with the loss its output suggests (only the forward pass is used).
    pub(super) fn some_fit(&self, model: usize) -> Fit {
        some_fit(self.program, model)
    }

    /// The forward pass as evaluation and prediction run it: dropout is the identity there.
    fn forward(&self, fit: &Fit) -> Result<Graph, RunError> {
        inference_graph(self.program, fit).map_err(program_error)
    }

    /// The model's current weights: as trained or loaded, else freshly initialised from the seed
    /// of its first `fit` (Keras builds a model with its initial weights before any `fit`).
    fn weights(&mut self, model: usize) -> Result<&mut ModelState, RunError> {
        let name = self.program.models[model].name.clone();
        if !self.states.contains_key(&name) {
            let fit = self.some_fit(model);
            let graph = self.forward(&fit)?;
            self.states.insert(
                name.clone(),
                ModelState {
                    params: init::initial_params(&graph, fit.seed),
                    optimizer: None,
                    epoch: None,
                    standardization: None,
                    text: None,
                    table: None,
                },
            );
        }
        Ok(self.states.get_mut(&name).expect("inserted above"))
    }

    fn load(
        &mut self,
        model: usize,
        path: &Path,
        span: Option<Span>,
        with_optimizer: bool,
    ) -> Result<(), RunError> {
        let saved = checkpoint::read(path).map_err(RunError::Data)?;
        let steps = self.install(
            model,
            saved,
            &path.display().to_string(),
            span,
            with_optimizer,
        )?;
        (self.on_event)(Event::Loaded {
            model: &self.program.models[model].name,
            path,
            steps,
        });
        Ok(())
    }

    /// Checks `saved` against `model` and makes it the model's state; `origin` names where it
    /// came from. Returns the optimizer's update count when its state was restored too.
    pub(super) fn install(
        &mut self,
        model: usize,
        saved: Checkpoint,
        origin: &str,
        span: Option<Span>,
        with_optimizer: bool,
    ) -> Result<Option<u64>, RunError> {
        let graph = self.forward(&self.some_fit(model))?;
        let name = &self.program.models[model].name;
        let params = checkpoint::match_params(&saved, &graph.params, name, origin, span)
            .map_err(RunError::Program)?;
        let origin = origin.to_string();
        let named = (graph.params.iter())
            .map(|p| p.name.as_str())
            .zip(params.iter().map(Vec::as_slice));
        checkpoint::check_weights(named, &origin).map_err(RunError::Data)?;
        if let Some((mean, std)) = &saved.standardization {
            let m = &self.program.models[model];
            // As `standardize true` is for a fit (E0324): ids are not standardized.
            if m.inputs[0].1.dtype != DType::F32 {
                return Err(RunError::Data(DataError::new(
                    &origin,
                    format!(
                        "the checkpoint standardizes its inputs, but model '{}' takes integer \
                         token ids, which are not standardized",
                        m.name
                    ),
                )));
            }
            let features = m.input_features;
            checkpoint::check_standardization(mean, std, features, &origin)
                .map_err(RunError::Data)?;
        }
        if let Some(text) = &saved.text {
            let m = &self.program.models[model];
            let integer = m.inputs[0].1.dtype == DType::I32;
            checkpoint::check_text(text, integer, m.output_features, &m.name, &origin)
                .map_err(RunError::Data)?;
        }
        if let Some(table) = &saved.table {
            let m = &self.program.models[model];
            table
                .check_model(m.input_features, m.output_features.max(2), &m.name, &origin)
                .map_err(RunError::Data)?;
        }
        // Only state that will be used is checked: `--init` starts a fresh optimizer.
        let optimizer = saved.optimizer.filter(|_| with_optimizer);
        if let Some(state) = &optimizer {
            checkpoint::check_optimizer_state(state, &origin).map_err(RunError::Data)?;
        }
        let steps = optimizer.as_ref().map(|o| o.step);
        self.states.insert(
            name.clone(),
            ModelState {
                params,
                optimizer,
                epoch: saved.epoch,
                standardization: saved
                    .standardization
                    .map(|(mean, std)| Standardization { mean, std }),
                text: saved.text,
                table: saved.table,
            },
        );
        Ok(steps)
    }

    fn save(&mut self, model: usize, path: &Path) -> Result<(), RunError> {
        let saved = self.checkpoint(model, path)?;
        if self.writes_files() {
            checkpoint::write(path, &saved).map_err(RunError::Data)?;
        }
        (self.on_event)(Event::Saved {
            model: &saved.model,
            path,
            epoch: None,
        });
        Ok(())
    }

    /// `save MODEL to "NAME.kiln"`: the model's source (the program's `items`) with its
    /// weights and preprocessing, re-checked first so that a bundle that would not open is
    /// never written.
    fn save_bundle(&mut self, model: usize, path: &Path, items: &[Span]) -> Result<(), RunError> {
        let source = super::bundle::source_of(self.source, items);
        let weights = Checkpoint {
            optimizer: None,
            ..self.checkpoint(model, path)?
        };
        let bundle = crate::runtime::bundle::Bundle {
            source,
            kiln_version: env!("CARGO_PKG_VERSION").to_string(),
            weights,
        };
        super::bundle::open_decoded(bundle.clone(), &path.display().to_string())?;
        if self.writes_files() {
            crate::runtime::bundle::write(path, &bundle).map_err(RunError::Data)?;
        }
        (self.on_event)(Event::Saved {
            model: &bundle.weights.model,
            path,
            epoch: None,
        });
        Ok(())
    }

    /// The model's current state as a checkpoint to write to `path`: copies made fallibly, so
    /// that running out of memory is an error naming the file, never an abort.
    fn checkpoint(&mut self, model: usize, path: &Path) -> Result<Checkpoint, RunError> {
        let graph = self.forward(&self.some_fit(model))?;
        let infos: Vec<(String, Vec<usize>)> = graph
            .params
            .iter()
            .map(|p| (p.name.clone(), p.shape.resolve(0)))
            .collect();
        let name = self.program.models[model].name.clone();
        let state = self.weights(model)?;
        let out_of_memory = |e| RunError::Data(save_out_of_memory(path, e));
        let optimizer = match &state.optimizer {
            None => None,
            Some(o) => Some(OptimizerState {
                kind: o.kind.clone(),
                step: o.step,
                slots: (o.slots.iter())
                    .map(|t| {
                        Ok(checkpoint::Tensor {
                            name: t.name.clone(),
                            shape: t.shape.clone(),
                            values: crate::buffer::try_copy(&t.values)?,
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map_err(out_of_memory)?,
            }),
        };
        Ok(Checkpoint {
            model: name,
            epoch: state.epoch,
            params: named(&infos, &state.params).map_err(out_of_memory)?,
            optimizer,
            standardization: (state.standardization.as_ref())
                .map(|s| (s.mean.clone(), s.std.clone())),
            text: state.text.clone(),
            table: state.table.clone(),
            other_dtypes: Vec::new(),
        })
    }

    /// Loads a data set for `fit`'s loss and checks it against the model: text is vectorized
    /// with the model's vocabulary (`kept`), else (when `adapt` says so) one adapted to its
    /// training samples; a CSV's categories and class names likewise, adapted to the rows the
    /// fit's splits leave for training. What was adapted or kept is returned with the data.
    fn prepared_data(
        &self,
        index: usize,
        fit: &Fit,
        kept: &Learned,
        adapt: Option<Vocabulary>,
        labels_required: bool,
    ) -> Result<(Dataset, Learned), RunError> {
        let set = &self.program.data[index];
        let model = &self.program.models[fit.model];
        let (loaded, learned) = match &set.source {
            DataSource::Text(_) => {
                let vocabulary = match (&kept.text, adapt) {
                    (Some(kept), _) => Vocabulary::Keep(kept),
                    (None, Some(adapt)) => adapt,
                    (None, None) => {
                        return Err(RunError::Data(DataError::new(
                            &set.name,
                            format!(
                                "model '{}' has no text vocabulary yet: fit it on text data, or \
                                 load a checkpoint saved after such a fit, before using it on \
                                 `{}`",
                                model.name, set.name
                            ),
                        )));
                    }
                };
                let (loaded, vocabulary) =
                    data::load_text(set, self.base_dir, fit.loss, vocabulary, labels_required)
                        .map_err(RunError::Data)?;
                let learned = Learned {
                    text: Some(vocabulary),
                    table: None,
                };
                (loaded, learned)
            }
            source => {
                let origin = match source {
                    DataSource::Csv { path, .. } => {
                        data::resolve(path, self.base_dir).display().to_string()
                    }
                    _ => set.name.clone(),
                };
                let training =
                    |labels: &data::Labels, rows: usize| training_rows(fit, labels, rows, &origin);
                let tabular = match (&kept.table, adapt) {
                    (Some(kept), _) => Tabular::Keep(Some(kept)),
                    (None, Some(_)) => Tabular::Adapt(&training),
                    (None, None) => Tabular::Keep(None),
                };
                let input = model.inputs[0].1.dtype;
                let (loaded, table) = data::load_tabular(
                    set,
                    self.base_dir,
                    fit.loss,
                    input,
                    tabular,
                    labels_required,
                )
                .map_err(RunError::Data)?;
                (loaded, Learned { text: None, table })
            }
        };
        data::check_against_model(&loaded, model, fit.loss).map_err(|mut e| {
            // The width of encoded categories is known only now: say where it comes from.
            if let Some(table) = learned.table.as_ref().filter(|t| !t.columns.is_empty())
                && loaded.features != model.input_features
            {
                e.message
                    .push_str(&format!(" (the data's features: {})", table.describe()));
            }
            RunError::Data(e)
        })?;
        Ok((loaded, learned))
    }

    /// What `model` has learned from data so far.
    fn learned(&self, model: usize) -> Learned {
        let name = &self.program.models[model].name;
        let state = self.states.get(name);
        Learned {
            text: state.and_then(|s| s.text.clone()),
            table: state.and_then(|s| s.table.clone()),
        }
    }

    /// `data` for evaluation or prediction: text and categories with the model's vocabulary.
    fn data_for_model(
        &mut self,
        model: usize,
        index: usize,
        fit: &Fit,
        labels_required: bool,
    ) -> Result<(Dataset, Learned), RunError> {
        let kept = self.learned(model);
        self.prepared_data(index, fit, &kept, None, labels_required)
    }

    pub(super) fn evaluate(
        &mut self,
        model: usize,
        data: usize,
        fit: &Fit,
    ) -> Result<(), RunError> {
        let (mut set, _) = self.data_for_model(model, data, fit, true)?;
        if let Some(statistics) = &self.weights(model)?.standardization {
            statistics.apply(&mut set);
        }
        let graph = self.forward(fit)?;
        let mut evaluator = self.evaluator(&graph, fit.batch.min(set.samples).max(1), fit)?;
        let collective = self.collective;
        let state = self.weights(model)?;
        let params: Vec<&[f32]> = state.params.iter().map(Vec::as_slice).collect();
        let Some(evaluation) = evaluation(collective, &mut evaluator, &params, &set, fit) else {
            // Another rank than 0 of a distributed run: its share is in rank 0's numbers.
            return Ok(());
        };
        (self.on_event)(Event::Evaluated {
            model: &self.program.models[model].name,
            data: &self.program.data[data].name,
            evaluation: &evaluation,
            baseline: set.naive_mae(),
        });
        Ok(())
    }

    pub(super) fn predict(
        &mut self,
        model: usize,
        data: usize,
        fit: Option<&Fit>,
        path: &Path,
        format: PredictFormat,
    ) -> Result<(), RunError> {
        let assumed = fit.is_none();
        let fit = fit.cloned().unwrap_or_else(|| self.some_fit(model));
        // Without a `fit`, the loss assumed from the output only decides how the data's labels
        // are read, which prediction ignores: sources holding class labels and nothing else are
        // read as such.
        let mut reading = fit.clone();
        if assumed
            && !fit.loss.uses_classes()
            && matches!(
                self.program.data[data].source,
                DataSource::Synthetic { .. } | DataSource::Idx { .. }
            )
        {
            reading.loss = Loss::SparseCategoricalCrossentropy;
        }
        let (mut set, learned) = self.data_for_model(model, data, &reading, false)?;
        if let Some(statistics) = &self.weights(model)?.standardization {
            statistics.apply(&mut set);
        }
        let graph = self.forward(&fit)?;
        let mut evaluator = self.evaluator(&graph, fit.batch.min(set.samples).max(1), &fit)?;
        let collective = self.collective;
        let state = self.weights(model)?;
        let params: Vec<&[f32]> = state.params.iter().map(Vec::as_slice).collect();
        let scores = match collective {
            None => evaluator.scores(&params, &set),
            Some(collective) => {
                match distributed::scores(&mut evaluator, &params, &set, collective) {
                    Some(scores) => scores,
                    // Another rank than 0: rank 0 writes its share of the predictions.
                    None => return Ok(()),
                }
            }
        };
        let m = &self.program.models[model];
        let reading = ScoresReading::of(m, &fit);
        let mut predictions =
            Predictions::from_scores(scores, reading.width, reading.logits, reading.classifier);
        // `text_windows` labels are token ids, not class names.
        if let (Some(text), DataSource::Text(source)) =
            (learned.text, &self.program.data[data].source)
            && source.windows.is_none()
        {
            predictions.class_names = Some((source.label.clone(), text.classes));
        }
        if let Some(classes) = learned.table.and_then(|t| t.classes) {
            predictions.class_names = Some(classes);
        }
        if !path.as_os_str().is_empty() && self.writes_files() {
            predict::write(path, format, &predictions).map_err(RunError::Data)?;
        }
        (self.on_event)(Event::Predicted {
            model: &m.name,
            data: &self.program.data[data].name,
            path,
            samples: predictions.samples,
            predictions: &predictions,
        });
        Ok(())
    }

    /// Check, build and compile the step, load and check the data, set the weights (and the
    /// optimizer state when it is this optimizer's), train.
    fn fit(&mut self, fit: &Fit, front_end: &Timings) -> Result<FitOutcome, RunError> {
        let program = self.program;
        let model = &program.models[fit.model];
        let data_set = &program.data[fit.data];

        let loading = Instant::now();
        // Text and categories keep the model's vocabulary, else adapt one to the samples it
        // trains on.
        let kept = self.learned(fit.model);
        let adapt = Vocabulary::Adapt {
            validation_split: match fit.validation {
                Some(Validation::Split(fraction)) => Some(fraction),
                _ => None,
            },
        };
        let (dataset, learned) = self.prepared_data(fit.data, fit, &kept, Some(adapt), true)?;
        let text = learned.text.or(kept.text);
        let table = learned.table.or(kept.table);
        let kept = Learned {
            text: text.clone(),
            table: table.clone(),
        };
        let (dataset, held_out, mut test) = split_for_fit(dataset, fit).map_err(RunError::Data)?;
        // Keras's validation_data / validation_split, evaluated by a forward-only graph.
        let validation = match (fit.validation, held_out) {
            (Some(Validation::Data(index)), _) => {
                let (loaded, _) = self.prepared_data(index, fit, &kept, None, true)?;
                Some((program.data[index].name.as_str(), loaded))
            }
            (_, Some(held_out)) => Some(("validation_split", held_out)),
            (_, None) => None,
        };
        // Keras's Normalization: statistics of the training samples only (after the split),
        // kept with the model, applied to everything it sees.
        let standardization = self
            .states
            .get(&model.name)
            .and_then(|s| s.standardization.clone())
            .or_else(|| {
                fit.training.standardize.then(|| {
                    let mut statistics = Standardization::of(&dataset);
                    // Categories are left as they are (Keras's `FeatureSpace` normalizes
                    // numeric features only).
                    if let Some(table) = &table {
                        statistics.leave(&table.category_features());
                    }
                    statistics
                })
            });
        let (mut dataset, mut validation) = (dataset, validation);
        if let Some(statistics) = &standardization {
            statistics.apply(&mut dataset);
            if let Some((_, held_out)) = validation.as_mut() {
                statistics.apply(held_out);
            }
            if let Some(test) = test.as_mut() {
                statistics.apply(test);
            }
        }
        let load_time = loading.elapsed();

        // No batch is larger than the data, so buffers are never sized beyond it.
        let max_batch = fit.batch.min(dataset.samples).max(1);
        // Before the step's arena is allocated and an epoch is spent: a model that cannot fit
        // in memory is refused now, not after training with nothing saved.
        let needed = crate::program::memory::estimate(model, fit, max_batch);
        if let Some(available) = crate::runtime::memory::available()
            && needed.total() > available.bytes
        {
            return Err(program_error(out_of_memory(
                &needed,
                &available,
                fit,
                &model.name,
            )));
        }
        let mut timings = front_end.clone();
        let graph = training_graph_timed(program, fit, GraphStage::Optimized, &mut timings)
            .map_err(program_error)?;
        let step = timings
            .measure("codegen", || compile_step(&graph, fit, max_batch))
            .map_err(program_error)?;
        let mut step = self.threaded(step);
        let split = match self.collective {
            None => None,
            Some(collective) => Some(self.split_step(fit, max_batch, collective.ranks())?),
        };
        let evaluator = match &validation {
            None => None,
            Some((_, held_out)) => {
                let forward = self.forward(fit)?;
                Some(self.evaluator(&forward, fit.batch.min(held_out.samples).max(1), fit)?)
            }
        };

        // Weights as trained or loaded, else initialised from this fit's seed.
        let state = match self.states.get(&model.name) {
            Some(state) => state.clone(),
            None => ModelState {
                params: init::initial_params(&graph, fit.seed),
                optimizer: None,
                epoch: None,
                standardization: None,
                text: None,
                table: None,
            },
        };
        for (index, values) in state.params.iter().enumerate() {
            step.param_mut(index).copy_from_slice(values);
        }
        let kind = fit.optimizer.def.name;
        let restored = state
            .optimizer
            .as_ref()
            .and_then(|o| Some((o.step, checkpoint::match_states(o, kind, &graph.states)?)));
        let steps_done = match restored {
            Some((steps, slots)) => {
                for (index, values) in slots.iter().enumerate() {
                    step.state_mut(index).copy_from_slice(values);
                }
                steps
            }
            None => {
                for (index, info) in graph.states.iter().enumerate() {
                    step.state_mut(index).fill(info.init);
                }
                0
            }
        };
        if let Some(collective) = self.collective {
            let params: Vec<&[f32]> = (0..graph.params.len()).map(|i| step.param(i)).collect();
            let text = crate::ir::print::print(&graph, None);
            let own = distributed::fingerprint(&text, &dataset, fit, &params);
            let all = collective.all_gather(own);
            if all.iter().any(|&h| h != all[0]) {
                return Err(program_error(ranks_disagree(&all, fit, &model.name)));
            }
        }
        let resumed = (fit.training.initial_epoch > 0 || steps_done > 0)
            .then_some((fit.training.initial_epoch, steps_done));
        (self.on_event)(Event::FitStarted {
            model: &model.name,
            summary: crate::program::summary::summary(model, Some(&fit.optimizer)),
            data: &data_set.name,
            samples: dataset.samples,
            params: graph.params.iter().map(|p| p.shape.numel(0)).sum(),
            timings: &timings,
            load_time,
            validation: validation.as_ref().map(|(name, set)| (*name, set.samples)),
            baseline: validation.as_ref().and_then(|(_, set)| set.naive_mae()),
            resumed,
        });
        let mut observer = FitObserver {
            graph: &graph,
            model: &model.name,
            kind,
            evaluator,
            validation: validation.as_ref().map(|(_, set)| set),
            metrics: &fit.metrics,
            base_dir: self.base_dir,
            standardization: standardization.as_ref(),
            text: text.as_ref(),
            table: table.as_ref(),
            interrupt: self.interrupt.as_deref(),
            on_event: &mut *self.on_event,
            collective: self.collective,
        };
        let checks = if self.check_numerics {
            train::Checks::EveryValue
        } else {
            train::Checks::Loss
        };
        let (trained, communication) = match (self.collective, split) {
            (Some(collective), Some((gradients_graph, update_graph, gradients, update))) => {
                let mut split = SplitStep {
                    gradients,
                    gradients_graph: &gradients_graph,
                    update,
                    update_graph: &update_graph,
                };
                let (trained, communication) = distributed::train(
                    &mut step,
                    &graph,
                    &mut split,
                    &dataset,
                    fit,
                    steps_done,
                    collective,
                    &mut observer,
                )
                .map_err(RunError::Data)?;
                (trained, Some(communication))
            }
            _ => {
                let trained = train::train(
                    &mut step,
                    &graph,
                    &dataset,
                    fit,
                    steps_done,
                    checks,
                    &mut observer,
                )
                .map_err(RunError::Data)?;
                (trained, None)
            }
        };
        if let Some(nan) = trained.non_finite {
            // The model keeps the weights it had before this fit: the last step's update came
            // from a non-finite loss, and nothing after this may save or use it.
            return Err(program_error(non_finite_loss(&nan, fit, &model.name)));
        }
        if let Some((epoch, step)) = trained.interrupted {
            (self.on_event)(Event::Interrupted {
                model: &model.name,
                epoch,
                step,
            });
        }
        if let Some(epoch) = trained.stopped_early {
            (self.on_event)(Event::StoppedEarly {
                model: &model.name,
                epoch,
            });
        }
        if let Some(collective) = self.collective {
            // What the design promises, checked once per fit: every rank holds the same bits.
            let params: Vec<&[f32]> = (0..graph.params.len()).map(|i| step.param(i)).collect();
            let own = u64::from_str_radix(&train::weights_hash(&params), 16).unwrap_or(0);
            let all = collective.all_gather(own);
            if all.iter().any(|&h| h != all[0]) {
                return Err(program_error(ranks_diverged(&all, fit, &model.name)));
            }
        }
        // Copies sized by the model: a failure is a diagnostic (it aborted, losing the run).
        let copy = |values: &[f32], what: &str| {
            crate::buffer::try_copy(values)
                .map_err(|e| program_error(copy_failed(e.bytes, what, fit, &model.name)))
        };
        let final_params: Vec<Vec<f32>> = (0..graph.params.len())
            .map(|i| copy(step.param(i), &graph.params[i].name))
            .collect::<Result<_, _>>()?;
        let slots: Vec<Vec<f32>> = (0..graph.states.len())
            .map(|i| copy(step.state(i), &graph.states[i].name))
            .collect::<Result<_, _>>()?;
        let kept_params: Vec<Vec<f32>> = final_params
            .iter()
            .zip(&graph.params)
            .map(|(values, param)| copy(values, &param.name))
            .collect::<Result<_, _>>()?;
        let state_infos: Vec<(String, Vec<usize>)> = graph
            .states
            .iter()
            .map(|s| (s.name.clone(), s.shape.resolve(0)))
            .collect();
        self.states.insert(
            model.name.clone(),
            ModelState {
                params: kept_params,
                optimizer: Some(OptimizerState {
                    kind: kind.to_string(),
                    step: trained.steps,
                    slots: named_owned(&state_infos, slots),
                }),
                epoch: trained.history.last().map(|r| r.epoch).or(state.epoch),
                standardization,
                text,
                table,
            },
        );
        let profile = if self.profile {
            Some(self.profile_step(&graph, fit, &step, &dataset, trained.steps)?)
        } else {
            None
        };
        let slices: Vec<&[f32]> = final_params.iter().map(Vec::as_slice).collect();
        let test = match &test {
            None => None,
            Some(set) => {
                let forward = self.forward(fit)?;
                let mut evaluator =
                    self.evaluator(&forward, fit.batch.min(set.samples).max(1), fit)?;
                evaluation(self.collective, &mut evaluator, &slices, set, fit)
            }
        };
        Ok(FitOutcome {
            model: model.name.clone(),
            history: trained.history,
            weights_hash: train::weights_hash(&slices),
            final_params,
            stopped_early: trained.stopped_early,
            profile,
            test,
            communication,
        })
    }

    /// The step split for data-parallel training over `ranks` ranks: forward and backward pass
    /// for the largest shard of a batch of `max_batch`, and the optimizer update alone.
    #[allow(clippy::type_complexity)]
    fn split_step(
        &self,
        fit: &Fit,
        max_batch: usize,
        ranks: usize,
    ) -> Result<(Graph, Graph, CompiledStep, CompiledStep), RunError> {
        let (gradients_graph, update_graph) =
            super::split_graphs(self.program, fit).map_err(program_error)?;
        let shard = distributed::shard(max_batch, ranks, 0).len().max(1);
        let gradients =
            self.threaded(compile_step(&gradients_graph, fit, shard).map_err(program_error)?);
        let update = self.threaded(compile_step(&update_graph, fit, 1).map_err(program_error)?);
        Ok((gradients_graph, update_graph, gradients, update))
    }

    /// `--profile`: one epoch of the trained step, timed whole and kernel by kernel, on two
    /// fresh compilations (ordinary and instrumented) holding copies of the trained weights and
    /// optimizer state, so the fit's results are untouched.
    fn profile_step(
        &self,
        graph: &Graph,
        fit: &Fit,
        trained: &CompiledStep,
        dataset: &Dataset,
        steps_done: u64,
    ) -> Result<train::StepProfile, RunError> {
        let max_batch = fit.batch.min(dataset.samples).max(1);
        let config = CodegenConfig { max_batch };
        let mut plain = compile_step(graph, fit, max_batch).map_err(program_error)?;
        let mut profiled = codegen::compile_profiled(graph, &config).map_err(|e| {
            program_error(
                Diagnostic::error("E0901", format!("code generation failed: {e}"))
                    .primary(fit.span, "while compiling this fit's profiled step"),
            )
        })?;
        for step in [&mut plain, &mut profiled] {
            step.set_threads(trained.threads());
            for index in 0..graph.params.len() {
                step.param_mut(index).copy_from_slice(trained.param(index));
            }
            for index in 0..graph.states.len() {
                step.state_mut(index).copy_from_slice(trained.state(index));
            }
        }
        Ok(train::profile(
            &mut plain,
            &mut profiled,
            graph,
            dataset,
            fit,
            steps_done,
        ))
    }
}

/// What a model learns from data besides its weights: a text vocabulary with class names
/// (`text_csv`), a CSV's categories and class names.
#[derive(Clone, Debug, Default)]
struct Learned {
    text: Option<TextVocabulary>,
    table: Option<TableVocabulary>,
}

/// The fit's splits of its data: `test_split`'s samples leave first, so neither training nor
/// validation sees them, then `validation_split`'s (Keras's last fraction, or reordered by
/// `shuffle_split` and `stratify`). Returns the training, held-out validation and test samples.
fn split_for_fit(
    dataset: Dataset,
    fit: &Fit,
) -> Result<(Dataset, Option<Dataset>, Option<Dataset>), DataError> {
    let (shuffle, stratify) = (fit.training.shuffle_split, fit.training.stratify);
    let hold_out = |set: Dataset, fraction: f64| {
        if shuffle || stratify {
            set.split_off_validation_reordered(fraction, fit.seed, shuffle, stratify)
        } else {
            set.split_off_validation(fraction)
        }
    };
    let (dataset, test) = match fit.training.test_split {
        None => (dataset, None),
        Some(fraction) => {
            let (rest, test) = hold_out(dataset, fraction)?;
            (rest, Some(test))
        }
    };
    match fit.validation {
        Some(Validation::Split(fraction)) => {
            let (train, held_out) = hold_out(dataset, fraction)?;
            Ok((train, Some(held_out), test))
        }
        _ => Ok((dataset, None, test)),
    }
}

/// The rows of a data set of `rows` samples labelled `labels` that `fit` trains on: its splits
/// run over the row numbers, so a vocabulary adapted to them never sees a held-out row.
fn training_rows(
    fit: &Fit,
    labels: &data::Labels,
    rows: usize,
    origin: &str,
) -> Result<Vec<usize>, DataError> {
    let numbers: Vec<i32> = (0..rows).map(|r| r as i32).collect();
    let x = crate::buffer::Buffer::from_slice(&numbers)
        .map_err(|e| DataError::new(origin, format!("out of memory: {} bytes", e.bytes)))?;
    let set = Dataset {
        samples: rows,
        features: 1,
        shape: None,
        x: data::Features::I32(x),
        labels: labels.clone(),
        origin: origin.to_string(),
        labels_origin: origin.to_string(),
        last_values: None,
        weights: None,
    };
    let (training, _, _) = split_for_fit(set, fit)?;
    Ok(match &training.x {
        data::Features::I32(rows) => rows.iter().map(|&r| r as usize).collect(),
        data::Features::F32(_) => Vec::new(),
    })
}

/// What the epoch loop sees of the driver: validation, events and checkpoint files.
struct FitObserver<'a> {
    graph: &'a Graph,
    model: &'a str,
    kind: &'static str,
    evaluator: Option<Evaluator>,
    validation: Option<&'a Dataset>,
    metrics: &'a [Metric],
    base_dir: &'a Path,
    standardization: Option<&'a Standardization>,
    text: Option<&'a TextVocabulary>,
    table: Option<&'a TableVocabulary>,
    interrupt: Option<&'a AtomicBool>,
    on_event: &'a mut dyn FnMut(Event),
    /// The ranks validation is shared among, in a distributed run.
    collective: Option<&'a dyn Collective>,
}

/// `evaluator`'s loss and metrics of `params` on `set`; in a distributed run shared among the
/// ranks and `None` on every rank but 0.
fn evaluation(
    collective: Option<&dyn Collective>,
    evaluator: &mut Evaluator,
    params: &[&[f32]],
    set: &Dataset,
    fit: &Fit,
) -> Option<Evaluation> {
    match collective {
        None => Some(evaluator.evaluate(params, set, &fit.metrics)),
        Some(collective) => distributed::evaluate(evaluator, params, set, &fit.metrics, collective),
    }
}

impl train::Observer for FitObserver<'_> {
    fn validate(&mut self, step: &CompiledStep) -> Option<Evaluation> {
        let (evaluator, held_out) = (self.evaluator.as_mut()?, self.validation?);
        let params: Vec<&[f32]> = (0..self.graph.params.len())
            .map(|i| step.param(i))
            .collect();
        match self.collective {
            None => Some(evaluator.evaluate(&params, held_out, self.metrics)),
            Some(collective) => {
                distributed::evaluate(evaluator, &params, held_out, self.metrics, collective)
            }
        }
    }

    fn progress(&mut self, progress: &train::Progress) {
        (self.on_event)(Event::Step(progress));
    }

    fn epoch(&mut self, report: &EpochReport) {
        (self.on_event)(Event::Epoch(report));
    }

    fn interrupted(&mut self) -> bool {
        self.interrupt
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    fn save(
        &mut self,
        path: &str,
        step: &CompiledStep,
        steps: u64,
        epoch: usize,
    ) -> Result<(), DataError> {
        let graph = self.graph;
        let path = data::resolve(path, self.base_dir);
        let tensor = |name: &str, shape: &Shape, values: &[f32]| {
            Ok(checkpoint::Tensor {
                name: name.to_string(),
                shape: shape.resolve(0),
                values: crate::buffer::try_copy(values)
                    .map_err(|e| save_out_of_memory(&path, e))?,
            })
        };
        let params = (graph.params.iter().enumerate())
            .map(|(i, p)| tensor(&p.name, &p.shape, step.param(i)))
            .collect::<Result<_, DataError>>()?;
        let slots = (graph.states.iter().enumerate())
            .map(|(i, s)| tensor(&s.name, &s.shape, step.state(i)))
            .collect::<Result<_, DataError>>()?;
        checkpoint::write(
            &path,
            &Checkpoint {
                model: self.model.to_string(),
                epoch: Some(epoch),
                params,
                optimizer: Some(OptimizerState {
                    kind: self.kind.to_string(),
                    step: steps,
                    slots,
                }),
                standardization: self
                    .standardization
                    .map(|s| (s.mean.clone(), s.std.clone())),
                text: self.text.cloned(),
                table: self.table.cloned(),
                other_dtypes: Vec::new(),
            },
        )?;
        (self.on_event)(Event::Saved {
            model: self.model,
            path: &path,
            epoch: Some(epoch),
        });
        Ok(())
    }
}

/// The fit a model's predictions are read as: its first `fit`, else one assumed from its output
/// (a softmax output is a classifier, anything else a regression), as Keras builds a model's
/// weights before any `fit`.
pub(super) fn some_fit(program: &CheckedProgram, model: usize) -> Fit {
    if let Some(fit) = program.fits.iter().find(|f| f.model == model) {
        return fit.clone();
    }
    let m = &program.models[model];
    Fit {
        span: m.span,
        model,
        data: 0,
        loss: if m.output_activation() == Activation::Softmax {
            Loss::SparseCategoricalCrossentropy
        } else {
            Loss::MeanSquaredError
        },
        optimizer: Optimizer::new(&crate::settings::optimizer::ADAM, &[]),
        metrics: Vec::new(),
        epochs: 1,
        batch: 32,
        seed: 0,
        shuffle: true,
        validation: None,
        training: Training::default(),
        loss_options: Default::default(),
    }
}

/// How `predict` reads a model's `scores` output (and `kiln build`'s library its output).
pub(super) struct ScoresReading {
    /// Values per sample.
    pub width: usize,
    /// The scores are logits, turned into probabilities by a softmax over each row.
    pub logits: bool,
    /// Each sample gets a class, the argmax of its row.
    pub classifier: bool,
}

impl ScoresReading {
    pub(super) fn of(model: &crate::program::Model, fit: &Fit) -> ScoresReading {
        // Binary cross-entropy scores are [0, logit], two per sample: softmax of them is
        // [1 − σ, σ], the two classes' probabilities.
        let binary = fit.loss == Loss::BinaryCrossentropy;
        ScoresReading {
            width: if binary { 2 } else { model.output_features },
            logits: (model.output_activation() == Activation::Softmax
                && !fit.loss_options.from_logits)
                || binary,
            classifier: fit.loss.uses_classes(),
        }
    }
}
