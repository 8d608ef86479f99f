//! `kiln repl`: scripted sessions as golden transcripts, and the interactive editor driven
//! through a pseudo-terminal.
//!
//! Each `tests/golden/repl/*.txt` is a transcript: lines after `>>> ` or `... ` are the entries,
//! the rest is what `kiln repl --echo` printed. The test feeds the entries to the binary and
//! compares its transcript with the file; `BLESS=1 cargo test --test repl` rewrites them.
//! Timings (which vary from run to run) are replaced by `<time>` on both sides.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `kiln repl` (with `--echo` for a transcript) in the project folder on `input`.
fn repl(input: &str, echo: bool) -> (String, String, bool) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command.arg("repl");
    if echo {
        command.arg("--echo");
    }
    let mut child = command
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("kiln reads its input");
    let output = child.wait_with_output().expect("kiln finishes");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

/// Numbers that depend on the machine's speed, replaced so transcripts compare.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.to_string();
        if let Some(at) = line.find("(compiled in ") {
            line = format!("{}(compiled in <time>)", &line[..at]);
        }
        // `10/10 - 0.001s - 22.0µs/step - loss: …`
        if let Some(at) = line.find("µs/step") {
            let prefix_end = line[..at].find(" - ").unwrap_or(0);
            line = format!(
                "{} - <time>{}",
                &line[..prefix_end],
                &line[at + "µs/step".len()..]
            );
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn entries(transcript: &str) -> String {
    transcript
        .lines()
        .filter_map(|line| line.strip_prefix(">>> ").or(line.strip_prefix("... ")))
        .chain(std::iter::once(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn golden_transcripts() {
    let dir = root().join("tests/golden/repl");
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden/repl exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no transcripts in {}", dir.display());
    let mut failures = Vec::new();
    for path in &paths {
        let expected = std::fs::read_to_string(path).expect("readable transcript");
        let (stdout, stderr, _) = repl(&entries(&expected), true);
        assert!(stderr.is_empty(), "{}: stderr: {stderr}", path.display());
        let got = normalize(&stdout);
        if bless {
            std::fs::write(path, &got).expect("writable");
        } else if normalize(&expected) != got {
            let expected = normalize(&expected);
            let diff = similar::TextDiff::from_lines(&expected, &got)
                .unified_diff()
                .header("expected", "got")
                .to_string();
            failures.push(format!("{}:\n{diff}", name(path)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

#[test]
fn scripted_sessions_print_results_without_prompts() {
    let (stdout, stderr, ok) = repl("let x = [1, 2]\nsum(x * x)\n", false);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "x: f32[2]\nf32[]\n5.\n");
    assert!(stderr.is_empty());
    // Comment lines, as a script has them, are nothing to do (they were E0005).
    let (stdout, stderr, ok) = repl(
        "# squares\nlet x = [3]  # one\n  # done\nsum(x * x)\n",
        false,
    );
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "x: f32[1]\nf32[]\n9.\n");
}

#[test]
fn errors_go_to_stderr_and_the_exit_code_says_a_script_failed() {
    let (stdout, stderr, ok) = repl("nope + 1\n1 + 2\n", false);
    assert!(!ok);
    assert_eq!(stdout, "3\n", "the session goes on after an error");
    assert!(stderr.contains("E0113"), "{stderr}");
    assert!(stderr.contains("unknown name `nope`"), "{stderr}");
}

#[test]
fn an_unclosed_entry_at_the_end_of_input_is_an_error() {
    let (_, stderr, ok) = repl("fn f(x) = (x +\n", false);
    assert!(!ok);
    assert!(stderr.contains("bracket is never closed"), "{stderr}");
}

/// The interactive editor on a pseudo-terminal: a multi-line entry, history recall, tab
/// completion, Ctrl-C, an error followed by a correct entry, Ctrl-D.
#[cfg(unix)]
#[test]
fn interactive_editor_on_a_terminal() {
    use expectrl::{ControlCode, Expect, Regex};
    use std::time::Duration;

    let scratch = tempfile::Builder::new()
        .prefix("kiln-repl-history-")
        .tempdir()
        .unwrap();
    let history = scratch.path().join("history");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .arg("repl")
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env("KILN_HISTORY", &history)
        .env("TERM", "xterm");
    let mut session = expectrl::Session::spawn(command).expect("a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session.expect(">>> ").expect("a prompt");

    // An error, then the session goes on.
    session.send_line("undefined_name * 2").unwrap();
    session.expect("unknown name `undefined_name`").unwrap();
    session.expect(">>> ").unwrap();

    // A multi-line entry: the open brace continues it.
    session.send_line("fn cube(v) {").unwrap();
    session.send_line("    v * v * v").unwrap();
    session.send_line("}").unwrap();
    session.expect("defined fn cube").unwrap();
    session.expect(">>> ").unwrap();

    // Completion: `cu` + Tab completes to the function just defined.
    session.send("cu").unwrap();
    session.send("\t").unwrap();
    session.send_line("([1, 2])").unwrap();
    session.expect(Regex(r"\[1\. +8\.\]")).unwrap();
    session.expect(">>> ").unwrap();

    // History: Up recalls the previous entry.
    session.send("\x1b[A").unwrap();
    session.send_line("").unwrap();
    session.expect(Regex(r"\[1\. +8\.\]")).unwrap();
    session.expect(">>> ").unwrap();

    // Ctrl-C drops a half-typed entry.
    session.send("1 + ").unwrap();
    session.send(ControlCode::EndOfText).unwrap();
    session.expect(">>> ").unwrap();
    session.send_line("40 + 2").unwrap();
    session.expect("42").unwrap();
    session.expect(">>> ").unwrap();

    // Ctrl-D leaves, and the history is saved for the next session.
    session.send(ControlCode::EndOfTransmission).unwrap();
    session.expect(expectrl::Eof).unwrap();
    let saved = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(saved.contains("40 + 2"), "history file: {saved}");
}

/// Ctrl-C at the prompt sets the session's interrupt flag: a running fit stops after its
/// current step and keeps the updates it made.
#[test]
fn an_interrupted_fit_stops_after_a_step_and_keeps_its_weights() {
    use kiln::driver::Event;
    use kiln::session::Session;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut session = Session::new(&root());
    let text = std::fs::read_to_string(root().join("programs/iris.model")).expect("iris");
    session
        .load("programs/iris.model", &text, &root().join("programs"))
        .map_err(|f| format!("{f:?}"))
        .expect("iris loads");
    let before = session.weights("iris dense.bias").expect("weights").text;
    let flag = Arc::new(AtomicBool::new(false));
    session.interrupt_with(flag.clone());
    flag.store(true, Ordering::Relaxed);
    let mut events = Vec::new();
    let mut epochs = 0;
    session
        .fit("iris", &mut |event| match event {
            Event::Interrupted { epoch, step, .. } => events.push((epoch, step)),
            Event::Epoch(_) => epochs += 1,
            _ => {}
        })
        .map_err(|f| format!("{f:?}"))
        .expect("the fit runs");
    assert_eq!(events, vec![(1, 1)], "stopped after the first step");
    assert_eq!(epochs, 0, "the unfinished epoch is not reported");
    let after = session.weights("iris dense.bias").expect("weights").text;
    assert_ne!(before, after, "the step's update is kept");
}
