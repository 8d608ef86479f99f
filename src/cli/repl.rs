//! `kiln repl`: the interactive front end of `session::Session`. On a terminal, a rustyline
//! editor (history kept across sessions, multi-line entries while a bracket is open, tab
//! completion, Ctrl-C cancels the entry, Ctrl-D leaves); otherwise entries are read from
//! standard input and results printed without prompts or colour, so sessions can be scripted.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kiln::diag::clip_message;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper, Highlighter, Hinter};

use kiln::driver;
use kiln::session::{self, Answer, Failure, Session};

use super::{LiveBar, show_event, use_color};

const HELP: &str = "\
Type an expression to see its value, or a definition (let, fn, layer, model, data, fit) to
keep it. A statement (fit, evaluate, predict, save, load) runs at once. An open bracket
continues the entry on the next line.

  :type EXPR             the type of EXPR, without running it
  :ir EXPR               the IR of EXPR, as checked and as optimized
  :grad EXPR wrt NAME    the gradient of the scalar EXPR with respect to variable NAME
  :load FILE             define everything in a .model file (its statements do not run)
  :summary MODEL         the model's layers, output shapes and parameter counts
  :fit MODEL [K V]...    run the model's fit, with settings replaced: :fit mlp epochs 1
  :weights MODEL [NAME]  the model's parameters, or one parameter's values
  :dump STAGE            `kiln dump` of the session's definitions (parse, check, ir, ...)
  :help                  this text
  :quit                  leave (or Ctrl-D)";

const COMMANDS: &[&str] = &[
    ":type", ":ir", ":grad", ":load", ":summary", ":fit", ":weights", ":dump", ":help", ":quit",
];

const KEYWORDS: &[&str] = &[
    "let", "fn", "layer", "model", "data", "fit", "evaluate", "predict", "generate", "save",
    "load", "on", "to", "from", "param", "forward", "true", "false", "wrt",
];

pub fn repl(echo: bool) -> Result<(), String> {
    let session = Session::new(Path::new("."));
    if std::io::stdin().is_terminal() && !echo {
        interactive(session)
    } else {
        scripted(session, echo)
    }
}

/// What an entry did: shown, or failed (the message is already printed).
enum Outcome {
    Done,
    Failed,
    Quit,
}

/// Where results and errors go. In a transcript (`--echo`) both go to standard output, so
/// they stay in order with the entries.
struct Output {
    color: bool,
    transcript: bool,
}

impl Output {
    fn result(&self, text: &str) {
        if !text.is_empty() {
            super::write_stdout(format_args!("{}\n", text.trim_end()));
        }
    }

    fn error(&self, text: &str) {
        if self.transcript {
            self.result(text);
        } else {
            eprintln!("{}", text.trim_end());
        }
    }
}

fn interactive(mut session: Session) -> Result<(), String> {
    // While an entry runs, Ctrl-C stops a fit after its current step instead of ending the
    // session (while typing, the editor reads Ctrl-C as a key and drops the entry).
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .map_err(|e| format!("error: cannot handle Ctrl-C: {e}"))?;
    session.interrupt_with(interrupt.clone());
    let mut editor: Editor<ReplHelper, DefaultHistory> =
        Editor::new().map_err(|e| format!("error: cannot start the line editor: {e}"))?;
    editor.set_helper(Some(ReplHelper::default()));
    let history = history_path();
    if let Some(path) = &history {
        // A first session has no history yet.
        let _ = editor.load_history(path);
    }
    let output = Output {
        color: use_color(),
        transcript: false,
    };
    println!(
        "kiln {} REPL: :help for commands, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match editor.readline(">>> ") {
            Ok(entry) => {
                if entry.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(entry.as_str());
                interrupt.store(false, Ordering::Relaxed);
                if let Outcome::Quit = handle(&mut session, &entry, &output) {
                    break;
                }
                if let Some(helper) = editor.helper_mut() {
                    helper.names = session.names();
                    helper.models = session.models();
                }
            }
            // Ctrl-C drops the entry being typed, as in Python.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => return Err(format!("error: cannot read the entry: {error}")),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

/// `KILN_HISTORY`, else `~/.kiln_history`.
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KILN_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kiln_history"))
}

/// Entries from standard input, one per line unless a bracket is open. Exits non-zero if any
/// entry failed, so a script's mistakes are noticed.
fn scripted(mut session: Session, echo: bool) -> Result<(), String> {
    let output = Output {
        color: false,
        transcript: echo,
    };
    let mut failed = false;
    let mut entry = String::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("error: cannot read standard input: {e}"))?;
        if echo {
            let prompt = if entry.is_empty() { ">>> " } else { "... " };
            output.result(&format!("{prompt}{line}"));
        }
        if !entry.is_empty() {
            entry.push('\n');
        }
        entry.push_str(&line);
        if !session::is_complete(&entry) {
            continue;
        }
        let text = std::mem::take(&mut entry);
        if text.trim().is_empty() {
            continue;
        }
        match handle(&mut session, &text, &output) {
            Outcome::Done => {}
            Outcome::Failed => failed = true,
            Outcome::Quit => break,
        }
    }
    if !entry.trim().is_empty() {
        output.error("error: the input ended inside an entry: a bracket is never closed");
        failed = true;
    }
    if failed { Err(String::new()) } else { Ok(()) }
}

/// Runs one entry or command and shows its result.
fn handle(session: &mut Session, entry: &str, output: &Output) -> Outcome {
    let trimmed = entry.trim();
    let mut bar = (!output.transcript && std::io::stdout().is_terminal()).then(LiveBar::default);
    let mut on_event = |event: driver::Event| show_event(event, false, false, &mut bar);
    let result = match trimmed.strip_prefix(':') {
        None => session.entry(entry, &mut on_event),
        Some(command) => {
            let command = without_comment(command);
            let (name, rest) = command
                .split_once(char::is_whitespace)
                .unwrap_or((command, ""));
            let rest = rest.trim();
            match name {
                "q" | "quit" | "exit" => return Outcome::Quit,
                "help" | "h" | "?" => Ok(text_answer(HELP)),
                "type" | "t" => session.type_of(rest),
                "ir" => session.ir(rest),
                "grad" => session.grad(rest),
                "summary" => session.summary(rest),
                "fit" => session.fit(rest, &mut on_event),
                "weights" => session.weights(rest),
                "dump" => session.dump(rest),
                "load" => load(session, rest),
                other => Err(Failure::Usage(unknown_command(other))),
            }
        }
    };
    match result {
        Ok(answer) => {
            if !answer.warnings.is_empty() {
                output.error(&answer.warnings.render(output.color));
            }
            output.result(&answer.text);
            Outcome::Done
        }
        Err(failure) => {
            output.error(&match failure {
                Failure::Program(report) => report.render(output.color),
                // Messages quote the entry's names, which may be megabytes long.
                Failure::Data(error) => format!("error: {}", clip_message(&error.to_string())),
                Failure::Usage(message) => format!("error: {}", clip_message(&message)),
            });
            Outcome::Failed
        }
    }
}

fn text_answer(text: &str) -> Answer {
    Answer {
        text: text.to_string(),
        ..Answer::default()
    }
}

fn unknown_command(name: &str) -> String {
    // A mistyped command is short; a long one is quoted by its start.
    let name = match name.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_string(),
    };
    let name = name.as_str();
    let names: Vec<&str> = COMMANDS.iter().map(|c| &c[1..]).collect();
    match kiln::check::closest_name(name, &names) {
        Some(best) => {
            format!("unknown command `:{name}`; did you mean `:{best}`? (:help lists them)")
        }
        None => format!("unknown command `:{name}`; :help lists the commands"),
    }
}

/// A command line without its comment: from a `#` at the start or after a space, as in
/// programs (`:fit mlp epochs 1  # a quick look`). A `#` inside a word (`:load run#2.model`)
/// stays.
fn without_comment(command: &str) -> &str {
    let mut previous = ' ';
    for (i, c) in command.char_indices() {
        if c == '#' && previous.is_whitespace() {
            return &command[..i];
        }
        previous = c;
    }
    command
}

/// `:load FILE`: the REPL reads the file; the session takes its definitions.
fn load(session: &mut Session, path: &str) -> Result<Answer, Failure> {
    if path.is_empty() {
        return Err(Failure::Usage("usage: :load FILE.model".into()));
    }
    let path = Path::new(path);
    let text = super::read_source(path).map_err(Failure::Usage)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    session.load(&path.display().to_string(), &text, dir)
}

/// Completion of commands, names, keywords and built-ins; multi-line entries.
#[derive(Default, Helper, Highlighter, Hinter)]
struct ReplHelper {
    names: Vec<String>,
    models: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        let pool: Vec<&str> = if word.starts_with(':') && start == 0 {
            COMMANDS.to_vec()
        } else if [":summary ", ":fit ", ":weights "]
            .iter()
            .any(|c| before.trim_start().starts_with(c))
        {
            self.models.iter().map(String::as_str).collect()
        } else if before.trim_start().starts_with(":dump ") {
            driver::STAGES.iter().map(|(name, _)| *name).collect()
        } else {
            self.names
                .iter()
                .map(String::as_str)
                .chain(KEYWORDS.iter().copied())
                .chain(kiln::check::builtin_names())
                .chain(kiln::check::CONSTRUCTORS.iter().copied())
                .chain(kiln::settings::optimizer::names())
                .chain(kiln::settings::data_source::names())
                .chain(kiln::settings::loss::names())
                .chain(kiln::settings::metric::names())
                .chain(kiln::settings::schedule::names())
                .chain(kiln::settings::callback::names())
                .collect()
        };
        let mut matches: Vec<Pair> = pool
            .into_iter()
            .filter(|candidate| candidate.starts_with(word))
            .map(|candidate| Pair {
                display: candidate.to_string(),
                replacement: candidate.to_string(),
            })
            .collect();
        matches.sort_by(|a, b| a.display.cmp(&b.display));
        matches.dedup_by(|a, b| a.display == b.display);
        Ok((start, matches))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if session::is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}
