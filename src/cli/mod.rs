//! `kiln run | check | predict | evaluate | export | build | dump | explain | repl | fmt | lsp`: argument parsing, reading files, and showing results. With data
//! loading, the only code that touches files or the terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;
mod distributed;
mod fmt;
mod lsp;
mod repl;

use kiln::diag::{self, Diagnostic};
use kiln::driver::{self, Event, RunError};
use kiln::runtime::history;
use kiln::runtime::train::EpochReport;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Compile and train neural-network models written in the .model language"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check, compile and train every `fit` in a program.
    Run {
        /// The .model file.
        file: PathBuf,
        /// Print the time spent in each compiler stage and in loading data.
        #[arg(long)]
        timings: bool,
        /// Print only the final results, not the per-epoch lines.
        #[arg(long, short)]
        quiet: bool,
        /// Write per-epoch loss and metrics to FILE: `.csv` or `.json`.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// Draw loss and metric curves (training and validation) to FILE, an .svg image.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Resume from a checkpoint (.safetensors): weights, and the optimizer state when the
        /// file has it, for the model of the first `fit`.
        #[arg(long, value_name = "FILE")]
        load: Option<PathBuf>,
        /// Start from the weights in a checkpoint (.safetensors), with a fresh optimizer.
        #[arg(long, value_name = "FILE", conflicts_with = "load")]
        init: Option<PathBuf>,
        /// Split large matrix products over N threads (1 to 256) in training, validation,
        /// evaluate and predict. Default: one thread, unless a product is large enough to gain
        /// from two. Results are bit-identical whatever N.
        // Negative numbers are taken as values so that `--threads -1` says what is wrong with it.
        #[arg(
            long,
            value_name = "N",
            allow_negative_numbers = true,
            value_parser = clap::value_parser!(u16).range(1..=256)
        )]
        threads: Option<u16>,
        /// After each fit, time one more epoch of the trained step (on copies of its weights)
        /// and print where a step's time goes: the whole step, each fused kernel, and forward,
        /// backward and optimizer update.
        #[arg(long)]
        profile: bool,
        /// After every training step, check every weight and optimizer state for NaN and
        /// infinities, not only the loss (slower); stop at the first step that leaves one and
        /// name the op where it began.
        #[arg(long)]
        check_numerics: bool,
        /// Train data-parallel as one rank of an MPI job (`mpirun -n N kiln run --distributed
        /// FILE`): each batch is split across the ranks and their gradients summed, so every
        /// rank holds the same weights; rank 0 alone prints and writes files. Needs kiln built
        /// with `--features mpi` (docs/distributed.md).
        #[arg(long)]
        distributed: bool,
    },
    /// Check a program's names and shapes without loading any data; exits 1 on errors. Given
    /// a .kiln bundle, checks the bundle (format, checksum, source, weights).
    Check {
        /// The .model file, or a .kiln bundle.
        file: PathBuf,
        /// Also print each model's summary: layers, output shapes, parameter counts, memory.
        #[arg(long)]
        summary: bool,
        /// How to report diagnostics: `text` (rendered, on stderr) or `json` (on stdout).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run a bundle's model (`save MODEL to "NAME.kiln"`) on a data file and write its
    /// predictions: CSV on standard output, or to -o FILE (.csv or .npy).
    Predict {
        /// The .kiln bundle.
        bundle: PathBuf,
        /// The data: read as the model's training data was (a CSV file for models trained on
        /// synthetic, IDX or NumPy data).
        data: PathBuf,
        /// Where to write the predictions: .csv or .npy.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Evaluate a bundle's model on a labelled data file with the loss and metrics of the fit
    /// that trained it.
    Evaluate {
        /// The .kiln bundle.
        bundle: PathBuf,
        /// The data, read as the model's training data was.
        data: PathBuf,
    },
    /// Write a bundle's inference graph as an ONNX model (opset 17), for ONNX Runtime and
    /// other ONNX readers.
    Export {
        /// The .kiln bundle.
        bundle: PathBuf,
        /// The .onnx file to write.
        #[arg(short, long, value_name = "FILE.onnx")]
        output: PathBuf,
    },
    /// Compile a bundle's model ahead of time into a C library: `DIR/libNAME.a`,
    /// `DIR/libNAME.so` and `DIR/NAME.h` (links with the system's `cc`).
    Build {
        /// The .kiln bundle.
        bundle: PathBuf,
        /// The folder to write the libraries and the header to (created if missing).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// The prefix of the library's C names (`NAME_predict`, `libNAME.a`); the model's name
        /// by default.
        #[arg(long)]
        name: Option<String>,
        /// The rows one call of the compiled model runs at once (the arena is sized for them);
        /// `NAME_predict` takes any batch and runs it in pieces of this size.
        #[arg(long, default_value_t = driver::DEFAULT_MAX_BATCH)]
        max_batch: usize,
    },
    /// Explain a diagnostic code (e.g. `kiln explain E0210`) with an example, or a built-in
    /// layer, function, initializer, loss, metric, optimizer, schedule, callback or data source
    /// (e.g. `kiln explain rmsprop`).
    Explain {
        /// The code, e.g. E0210 (case-insensitive; `0210` also works), or a built-in's name.
        code: String,
    },
    /// An interactive session: evaluate tensor expressions, define functions, layers and
    /// models, ask for gradients, load and train programs. Reads entries from standard input
    /// when it is not a terminal.
    Repl {
        /// Write a transcript: each entry after a `>>> ` prompt, then its result or error, all on
        /// standard output (for scripted sessions and documentation).
        #[arg(long)]
        echo: bool,
    },
    /// Rewrite .model files in the canonical layout (indentation, spacing, aligned `fit`
    /// settings; comments and line breaks kept).
    Fmt {
        /// The .model files (a folder: every .model file under it).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing: list the files that are not formatted and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// A language server over standard input and output, for editors: diagnostics, hover
    /// (shapes, layers, built-ins), inlay hints, definitions, references, completion, symbols
    /// and formatting (docs/editors.md).
    Lsp,
    /// Print one stage of the compiler's work on a program.
    Dump {
        /// parse, check, ir, grad, step, opt, passes, kernels or clif.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(driver::STAGES.iter().map(|(name, _)| *name)))]
        stage: String,
        /// The .model file.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            file,
            timings,
            quiet,
            history,
            plot,
            load,
            init,
            threads,
            profile,
            check_numerics,
            distributed,
        } => run(
            &file,
            &RunOptions {
                timings,
                quiet,
                history,
                plot,
                load,
                init,
                threads: threads.map(usize::from),
                profile,
                check_numerics,
                distributed,
            },
        ),
        Command::Check {
            file,
            summary,
            format,
        } => check(&file, summary, format),
        Command::Predict {
            bundle,
            data,
            output,
        } => predict(&bundle, &data, output.as_deref()),
        Command::Evaluate { bundle, data } => evaluate(&bundle, &data),
        Command::Export { bundle, output } => export(&bundle, &output),
        Command::Build {
            bundle,
            output,
            name,
            max_batch,
        } => build_library(&bundle, &output, name.as_deref(), max_batch),
        Command::Explain { code } => explain(&code),
        Command::Dump { stage, file } => dump(&stage, &file),
        Command::Repl { echo } => repl::repl(echo),
        Command::Fmt { files, check } => fmt::fmt(&files, check),
        Command::Lsp => lsp::lsp(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `println!` that ends the process quietly when stdout is closed (`kiln run … | head`), as a
/// command killed by SIGPIPE would, instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

fn write_stdout(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {error}");
        }
        std::process::exit(if error.kind() == std::io::ErrorKind::BrokenPipe {
            0
        } else {
            1
        });
    }
}

/// A program's text and how to name it in messages.
struct SourceFile {
    name: String,
    text: String,
}

fn read(path: &Path) -> Result<SourceFile, String> {
    let text = read_source(path).map_err(|e| format!("error: {e}"))?;
    Ok(SourceFile {
        name: path.display().to_string(),
        text,
    })
}

/// A program file's text; a file that is not UTF-8 is an error saying where it stops being so.
pub(crate) fn read_source(path: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        format!(
            "cannot read `{}`: line {line}, column {column} (byte {}) is not UTF-8 text; \
             programs are UTF-8",
            path.display(),
            valid.len() + 1
        )
    })
}

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
fn use_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn render(diagnostics: &[Diagnostic], file: &SourceFile) -> String {
    diag::render(diagnostics, &file.name, &file.text, use_color())
}

fn check(path: &Path, summary: bool, format: Format) -> Result<(), String> {
    if is_bundle(path) {
        if format == Format::Json {
            return Err(
                "error: --format json reports a program's diagnostics; a bundle has none to report"
                    .to_string(),
            );
        }
        let open = open_bundle(path)?;
        if summary {
            say!("{}", open.summary());
        }
        say!(
            "{}: ok (model '{}', written by Kiln {})",
            path.display(),
            open.model_name(),
            open.kiln_version
        );
        return Ok(());
    }
    let file = read(path)?;
    let result = driver::check_source(&file.text);
    if format == Format::Json {
        let diagnostics = match &result {
            Ok(checked) => &checked.warnings,
            Err(diagnostics) => diagnostics,
        };
        let json = diag::to_json(diagnostics, &file.name, &file.text);
        say!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return result.map(|_| ()).map_err(|_| String::new());
    }
    match result {
        Ok(checked) => {
            eprint!("{}", render(&checked.warnings, &file));
            if summary {
                for index in 0..checked.program.models.len() {
                    say!("{}", checked.program.summary(index));
                }
                // What each fit will need, as `kiln run` checks it against the machine (E0841).
                let program = &checked.program;
                for fit in &program.fits {
                    let model = &program.models[fit.model];
                    let needed = kiln::program::memory::estimate(model, fit, fit.batch);
                    say!(
                        "{}",
                        needed.summary_line(&model.name, &program.data[fit.data].name)
                    );
                }
            }
            say!("{}: ok", file.name);
            Ok(())
        }
        Err(diagnostics) => Err(render(&diagnostics, &file)),
    }
}

/// Whether a path names a bundle (`.kiln`).
fn is_bundle(path: &Path) -> bool {
    kiln::program::is_bundle_path(&path.to_string_lossy())
}

/// A bundle's problems as the CLI shows them: file errors as one line, diagnostics rendered
/// against the bundle's source.
fn bundle_error(error: RunError, source: &str, bundle: &Path) -> String {
    match error {
        RunError::Program(diagnostics) => render(
            &diagnostics,
            &SourceFile {
                name: format!("{} (bundled source)", bundle.display()),
                text: source.to_string(),
            },
        ),
        RunError::Data(error) => format!("error: {error}"),
    }
}

fn open_bundle(path: &Path) -> Result<driver::OpenBundle, String> {
    if !is_bundle(path) {
        return Err(format!(
            "error: `{}`: bundles are .kiln files (written by `save MODEL to \"NAME.kiln\"`)",
            path.display()
        ));
    }
    driver::open_bundle(path).map_err(|e| bundle_error(e, "", path))
}

fn predict(bundle: &Path, data: &Path, output: Option<&Path>) -> Result<(), String> {
    if let Some(output) = output {
        let named_right = output
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("npy"));
        if !named_right {
            return Err(format!(
                "error: -o `{}`: predictions are written as CSV or NPY; the name must end in \
                 .csv or .npy",
                output.display()
            ));
        }
        output_folder_exists("output", output)?;
    }
    let mut open = open_bundle(bundle)?;
    let action = driver::BundleAction::Predict(output.unwrap_or(Path::new("")));
    driver::run_bundle(&mut open, data, action, &mut |event| {
        show_event(event, false, false, &mut None)
    })
    .map_err(|e| bundle_error(e, &open.source, bundle))
}

fn evaluate(bundle: &Path, data: &Path) -> Result<(), String> {
    let mut open = open_bundle(bundle)?;
    driver::run_bundle(
        &mut open,
        data,
        driver::BundleAction::Evaluate,
        &mut |event| show_event(event, false, false, &mut None),
    )
    .map_err(|e| bundle_error(e, &open.source, bundle))
}

fn export(bundle: &Path, output: &Path) -> Result<(), String> {
    let named_right = output
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if !named_right {
        return Err(format!(
            "error: -o `{}`: the file is ONNX; the name must end in .onnx",
            output.display()
        ));
    }
    output_folder_exists("output", output)?;
    let open = open_bundle(bundle)?;
    let bytes = driver::export_onnx(&open).map_err(|e| bundle_error(e, &open.source, bundle))?;
    std::fs::write(output, &bytes)
        .map_err(|e| format!("error: cannot write `{}`: {e}", output.display()))?;
    say!(
        "Exported {} to {} (ONNX opset {}, {} bytes)",
        open.model_name(),
        output.display(),
        kiln::codegen::onnx::OPSET,
        bytes.len()
    );
    Ok(())
}

fn build_library(
    bundle: &Path,
    output: &Path,
    name: Option<&str>,
    max_batch: usize,
) -> Result<(), String> {
    let built = build::build(bundle, output, name, max_batch)?;
    let files: Vec<String> = (built.files.iter())
        .map(|f| {
            let size = std::fs::metadata(f).map_or(0, |m| m.len());
            format!("{} ({size} bytes)", f.display())
        })
        .collect();
    say!("Built {} into {}", built.model, files.join(", "));
    Ok(())
}

fn explain(code: &str) -> Result<(), String> {
    let wanted = code.trim().to_ascii_uppercase();
    let wanted = if wanted.chars().all(|c| c.is_ascii_digit()) {
        format!("E{wanted}")
    } else {
        wanted
    };
    match kiln::explain::find(&wanted) {
        Some(explanation) => {
            say!("{}", explanation.render());
            Ok(())
        }
        None => match kiln::explain::builtin(code.trim()) {
            Some(text) => {
                say!("{text}");
                Ok(())
            }
            None => {
                let names = kiln::explain::builtin_names();
                let close = kiln::suggest::closest(code.trim(), names.iter().map(String::as_str))
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                Err(format!(
                    "error: no diagnostic code or built-in is called `{code}`{close} (codes look \
                     like E0210 or W0101, see docs/diagnostics.md; built-ins like `dense` or `adam`)"
                ))
            }
        },
    }
}

fn dump(stage: &str, path: &Path) -> Result<(), String> {
    let file = read(path)?;
    let text = driver::dump(stage, &file.name, &file.text).map_err(|e| e.trim_end().to_string())?;
    write_stdout(format_args!("{text}"));
    Ok(())
}

/// How `kiln run` shows and records its work.
struct RunOptions {
    timings: bool,
    quiet: bool,
    history: Option<PathBuf>,
    plot: Option<PathBuf>,
    load: Option<PathBuf>,
    init: Option<PathBuf>,
    threads: Option<usize>,
    profile: bool,
    check_numerics: bool,
    distributed: bool,
}

/// `--load`/`--init` must name a safetensors file that exists; checked before anything runs.
fn checkpoint_flag(flag: &str, path: &Path) -> Result<(), String> {
    let named_right = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    if !named_right {
        return Err(format!(
            "error: --{flag} `{}`: checkpoints are safetensors files; the name must end in \
             .safetensors",
            path.display()
        ));
    }
    if !path.is_file() {
        return Err(format!(
            "error: --{flag} `{}`: no such file",
            path.display()
        ));
    }
    Ok(())
}

/// A file written after training goes into a folder that exists now, so that a mistyped path
/// fails before the run rather than after it.
fn output_folder_exists(flag: &str, file: &Path) -> Result<(), String> {
    let folder = file.parent().filter(|p| !p.as_os_str().is_empty());
    match folder {
        Some(folder) if !folder.is_dir() => Err(format!(
            "error: --{flag} `{}`: the folder `{}` does not exist",
            file.display(),
            folder.display()
        )),
        _ => Ok(()),
    }
}

/// The format `--history` writes, from the file's extension.
enum HistoryFormat {
    Csv,
    Json,
}

fn history_format(path: &Path) -> Result<HistoryFormat, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok(HistoryFormat::Csv),
        Some(e) if e.eq_ignore_ascii_case("json") => Ok(HistoryFormat::Json),
        _ => Err(format!(
            "error: --history `{}`: the file name must end in .csv or .json",
            path.display()
        )),
    }
}

fn run(path: &Path, options: &RunOptions) -> Result<(), String> {
    // Flags are checked before anything runs, so a typo does not cost a training run.
    let history_format = options.history.as_deref().map(history_format).transpose()?;
    if let Some(plot) = &options.plot
        && !plot
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        return Err(format!(
            "error: --plot `{}`: the image is SVG; the file name must end in .svg",
            plot.display()
        ));
    }
    for (flag, file) in [("history", &options.history), ("plot", &options.plot)] {
        if let Some(file) = file {
            output_folder_exists(flag, file)?;
        }
    }
    if let Some(load) = &options.load {
        checkpoint_flag("load", load)?;
    }
    if let Some(init) = &options.init {
        checkpoint_flag("init", init)?;
    }
    let file = read(path)?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let run_options = driver::RunOptions {
        load: options.load.clone(),
        init: options.init.clone(),
        threads: options.threads,
        profile: options.profile,
        check_numerics: options.check_numerics,
    };
    let ranks = if options.distributed {
        Some(distributed::start()?)
    } else {
        None
    };
    // Every rank of a distributed run trains the same weights; rank 0 speaks for them.
    let speaks = ranks.as_ref().is_none_or(|r| r.rank() == 0);
    // A live bar only on a terminal; in a pipe or a log, one plain line per epoch.
    let mut bar = (!options.quiet && std::io::stdout().is_terminal()).then(LiveBar::default);
    // Each fit's result line prints when the fit ends, before the statements after it.
    let mut on_event = |event: Event| match event {
        _ if !speaks => {}
        Event::Trained(outcome) => {
            say_trained(outcome);
            if options.timings
                && let Some(exchange) = &outcome.communication
            {
                say_exchange(exchange);
            }
        }
        event => show_event(event, options.quiet, options.timings, &mut bar),
    };
    let result = match &ranks {
        None => driver::run_with(&file.text, base_dir, &run_options, &mut on_event),
        Some(ranks) => driver::run_distributed(
            &file.text,
            base_dir,
            &run_options,
            ranks.collective(),
            &mut on_event,
        ),
    };
    let failure = |e| match e {
        RunError::Program(diagnostics) => render(&diagnostics, &file),
        RunError::Data(error) => format!("error: {error}"),
    };
    let outcomes = match (result, &ranks) {
        (Ok(outcomes), _) => outcomes,
        (Err(e), Some(ranks)) => ranks.fail(&failure(e)),
        (Err(e), None) => return Err(failure(e)),
    };
    if !speaks {
        return Ok(());
    }
    if let (Some(history_path), Some(format)) = (&options.history, history_format) {
        let fits: Vec<(&str, &[EpochReport])> = outcomes
            .iter()
            .map(|o| (o.model.as_str(), o.history.as_slice()))
            .collect();
        let text = match format {
            HistoryFormat::Csv => history::to_csv(&fits),
            HistoryFormat::Json => history::to_json(&fits),
        };
        std::fs::write(history_path, text).map_err(|e| {
            format!(
                "error: cannot write history to `{}`: {e}",
                history_path.display()
            )
        })?;
    }
    if let Some(plot_path) = &options.plot {
        let fits: Vec<(&str, &[EpochReport])> = outcomes
            .iter()
            .map(|o| (o.model.as_str(), o.history.as_slice()))
            .collect();
        let image = kiln::runtime::plot::svg(&fits)
            .map_err(|e| format!("error: --plot `{}`: {e}", plot_path.display()))?;
        std::fs::write(plot_path, image).map_err(|e| {
            format!(
                "error: cannot write the plot to `{}`: {e}",
                plot_path.display()
            )
        })?;
    }
    for outcome in &outcomes {
        if let Some(profile) = &outcome.profile {
            print_profile(&outcome.model, profile, &file.text);
        }
    }
    Ok(())
}

/// With `--timings`, a distributed fit's gradient exchange per step.
fn say_exchange(exchange: &kiln::runtime::distributed::Communication) {
    let steps = exchange.steps.max(1) as f64;
    say!(
        "Gradient exchange: {:.3} ms per step ({} values, {:.1} KiB), {} steps",
        exchange.exchange.as_secs_f64() * 1e3 / steps,
        exchange.values,
        exchange.values as f64 * 4.0 / 1024.0,
        exchange.steps
    );
}

/// `Trained m for 3 epochs: loss: … (weights HASH)`: a fit's result, even with `--quiet`.
fn say_trained(outcome: &driver::FitOutcome) {
    // A distributed fit has compared the hash on every rank (E0881 otherwise).
    let hash = match &outcome.communication {
        Some(c) => format!(
            "{}, the same on all {} ranks",
            outcome.weights_hash, c.ranks
        ),
        None => outcome.weights_hash.clone(),
    };
    match outcome.history.last() {
        Some(last) => say!(
            "Trained {} for {} epoch{}: {} (weights {hash})",
            outcome.model,
            outcome.history.len(),
            if outcome.history.len() == 1 { "" } else { "s" },
            metrics_text(last),
        ),
        // `initial_epoch` at or past `epochs` (nothing to train, as in Keras), or
        // interrupted within the first epoch.
        None => say!("Trained {} for 0 epochs (weights {hash})", outcome.model),
    }
}

/// Shows what happens while a program runs: Keras-style lines, a live bar on a terminal.
fn show_event(event: Event, quiet: bool, show_timings: bool, bar: &mut Option<LiveBar>) {
    match event {
        Event::FitStarted {
            model,
            summary,
            data,
            samples,
            params,
            timings,
            load_time,
            validation,
            baseline,
            resumed,
        } => {
            if quiet {
                return;
            }
            let validation = validation
                .map(|(name, count)| format!(", validating on {name}: {count} samples"))
                .unwrap_or_default();
            let resumed = resumed
                .map(|(epoch, steps)| format!(", resuming after epoch {epoch} and {steps} steps"))
                .unwrap_or_default();
            say!("{}", summary.trim_end());
            say!(
                "Training {model} on {data}: {samples} samples, {params} parameters{validation}\
             {resumed} (compiled in {:.1} ms)",
                millis(timings.total())
            );
            // The number a forecast's val_mae has to beat.
            if let Some(mae) = baseline {
                say!(
                    "Naive forecast (each window's last value) on the validation windows: mae {}",
                    number(mae)
                );
            }
            if show_timings {
                let stages: Vec<String> = timings
                    .stages
                    .iter()
                    .map(|(stage, time)| format!("{stage} {:.2}", millis(*time)))
                    .collect();
                say!(
                    "Timings (ms): {} = {:.2} to native code; loading data {:.2}",
                    stages.join(", "),
                    millis(timings.total()),
                    millis(load_time)
                );
            }
        }
        Event::Step(progress) => {
            if let Some(bar) = bar.as_mut() {
                bar.update(progress);
            }
        }
        Event::Epoch(report) if !quiet => {
            if let Some(bar) = bar.as_mut() {
                bar.finish();
            }
            print_epoch(report);
        }
        Event::Epoch(_) => {}
        Event::StoppedEarly { epoch, .. } if !quiet => {
            say!("Epoch {epoch}: early stopping")
        }
        Event::StoppedEarly { .. } => {}
        // `kiln run` prints each fit's result line (`say_trained`); the REPL shows its epochs.
        Event::Trained(_) => {}
        Event::Interrupted { model, epoch, step } => {
            if let Some(bar) = bar.as_mut() {
                bar.finish();
            }
            say!(
                "Interrupted {model} in epoch {epoch} after {step} steps: the weights keep those updates"
            );
        }
        Event::Loaded { model, path, steps } if !quiet => match steps {
            Some(steps) => say!(
                "Loaded {model} from {} (weights and optimizer state after {steps} steps)",
                path.display()
            ),
            None => say!("Loaded {model} from {} (weights)", path.display()),
        },
        Event::Loaded { .. } => {}
        Event::Saved { model, path, epoch } if !quiet => match epoch {
            Some(epoch) => say!("Epoch {epoch}: saved {model} to {}", path.display()),
            None => say!("Saved {model} to {}", path.display()),
        },
        Event::Saved { .. } => {}
        // Results of evaluate and predict are what the user asked for: shown even with --quiet.
        Event::Evaluated {
            model,
            data,
            evaluation,
            baseline,
        } => {
            let mut parts = vec![format!("loss: {}", number(evaluation.loss))];
            for (name, value) in &evaluation.metrics {
                parts.push(format!("{name}: {}", number(*value)));
            }
            if let Some(mae) = baseline {
                parts.push(format!("naive forecast mae: {}", number(mae)));
            }
            say!(
                "Evaluated {model} on {data}: {} samples - {}",
                evaluation.samples,
                parts.join(" - ")
            );
        }
        // No path: the predictions themselves are the output (`kiln predict` without -o).
        Event::Predicted {
            path, predictions, ..
        } if path.as_os_str().is_empty() => write_stdout(format_args!("{}", predictions.to_csv())),
        Event::Predicted {
            model,
            data,
            path,
            samples,
            ..
        } => say!(
            "Predicted {model} on {data}: {samples} samples written to {}",
            path.display()
        ),
        // The text itself is the statement's result, shown even with `-q`.
        Event::Generated { model, text } => {
            say!("Generated from {model}:");
            write_stdout(format_args!("{text}\n"));
        }
    }
}

/// `--profile`: the measured times of one step, whole and kernel by kernel.
fn print_profile(model: &str, p: &kiln::runtime::train::StepProfile, source: &str) {
    let micros = |t: std::time::Duration| t.as_secs_f64() * 1e6;
    let kernels_total: f64 = p.kernels.iter().map(|(_, t)| micros(*t)).sum();
    let share = |t: f64| {
        if kernels_total > 0.0 {
            100.0 * t / kernels_total
        } else {
            0.0
        }
    };
    say!(
        "Profile of {model}: mean times per step over one more epoch ({} steps of batch {}, {} \
         thread{}), run after training on copies of the trained weights",
        p.steps,
        p.batch,
        p.threads,
        if p.threads == 1 { "" } else { "s" }
    );
    say!(
        "  {:<58} {:>10.2} µs",
        "training step (one native call, as trained)",
        micros(p.step)
    );
    say!(
        "  {:<58} {:>10.2} µs",
        "copying the batch into the step's inputs",
        micros(p.gather)
    );
    say!(
        "  {:<58} {:>10.2} µs",
        format!(
            "instrumented step (a timer after each of {} kernels)",
            p.kernels.len()
        ),
        micros(p.profiled_step)
    );
    say!(
        "  {:<58} {:>10.2} µs",
        "  sum of the kernels' times",
        kernels_total
    );
    say!("  {:<58} {:>10} {:>7}", "phase", "µs/step", "share");
    for phase in [
        kiln::codegen::Phase::Forward,
        kiln::codegen::Phase::Backward,
        kiln::codegen::Phase::Update,
    ] {
        let time: f64 = p
            .kernels
            .iter()
            .filter(|(k, _)| k.phase == phase)
            .map(|(_, t)| micros(*t))
            .sum();
        say!(
            "  {:<58} {:>10.2} {:>6.1}%",
            phase.name(),
            time,
            share(time)
        );
    }
    say!(
        "  {:<4} {:<53} {:<8} {:>10} {:>7}  source",
        "#",
        "kernel",
        "phase",
        "µs/step",
        "share"
    );
    for (index, (kernel, time)) in p.kernels.iter().enumerate() {
        let line = kernel
            .span
            .map(|span| {
                let before = source.get(..span.start).unwrap_or(source);
                let line = before.matches('\n').count() + 1;
                format!("line {line}")
            })
            .unwrap_or_default();
        say!(
            "  {:<4} {:<53} {:<8} {:>10.2} {:>6.1}%  {line}",
            index,
            kernel.label,
            kernel.phase.name(),
            micros(*time),
            share(micros(*time))
        );
    }
}

fn millis(time: std::time::Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

/// Keras's live progress bar for the running epoch: steps done, elapsed time, µs per step and
/// the running loss, redrawn by indicatif at most a few times a second.
#[derive(Default)]
struct LiveBar {
    bar: Option<indicatif::ProgressBar>,
}

impl LiveBar {
    fn update(&mut self, progress: &kiln::runtime::train::Progress) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(progress.steps as u64);
            let style = indicatif::ProgressStyle::with_template(
                "Epoch {prefix} {pos}/{len} [{bar:30}] {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("{}/{}", progress.epoch, progress.epochs));
            bar
        });
        bar.set_position(progress.step as u64);
        // Formatting the message costs more than a small step: refresh it every 16 steps.
        if progress.step % 16 == 1 || progress.step == progress.steps {
            bar.set_message(format!(
                "{:.1}s - {:.1}µs/step - loss: {}",
                progress.seconds,
                progress.seconds * 1e6 / progress.step.max(1) as f64,
                number(progress.loss)
            ));
        }
    }

    /// The epoch has ended: the bar gives way to the epoch's final line.
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Keras's per-epoch line: `Epoch 1/5` then `1875/1875 - 0.050s - 26.3µs/step - loss: … - accuracy: …`.
fn print_epoch(report: &EpochReport) {
    say!("Epoch {}/{}", report.epoch, report.epochs);
    say!(
        "{steps}/{steps} - {:.3}s - {:.1}µs/step - {}",
        report.seconds,
        report.micros_per_step(),
        metrics_text(report),
        steps = report.steps,
    );
}

fn metrics_text(report: &EpochReport) -> String {
    let mut parts = vec![format!("loss: {}", number(report.loss))];
    for (name, value) in &report.metrics {
        parts.push(format!("{name}: {}", number(*value)));
    }
    if let Some(validation) = &report.validation {
        parts.push(format!("val_loss: {}", number(validation.loss)));
        for (name, value) in &validation.metrics {
            parts.push(format!("val_{name}: {}", number(*value)));
        }
    }
    if let Some(rate) = report.learning_rate {
        parts.push(format!("learning_rate: {}", number(rate)));
    }
    parts.join(" - ")
}

/// Keras's progress-bar number format: four decimals, or four significant digits in scientific
/// notation for magnitudes up to 1e-3 (so a small learning rate does not print as 0.0000).
fn number(value: f64) -> String {
    if value.abs() > 1e-3 || value == 0.0 {
        format!("{value:.4}")
    } else {
        format!("{value:.4e}")
    }
}
