//! Golden tests: every `tests/golden/<stage>/{ok,err}/*.model` is run through
//! `kiln::driver::dump(stage, …)` and compared with the `.out` file beside it.
//! `BLESS=1 cargo test --test golden` rewrites the expectations.

use std::fs;
use std::path::{Path, PathBuf};

const KNOWN_STAGES: [&str; 9] = [
    "parse", "check", "ir", "grad", "step", "opt", "passes", "kernels", "clif",
];

#[test]
fn golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let mut failures = Vec::new();
    let mut count = 0;
    for stage_dir in sorted_entries(&root) {
        if !stage_dir.is_dir() {
            continue;
        }
        let stage = file_name(&stage_dir);
        // REPL transcripts are sessions, not programs: tests/repl.rs runs them.
        if stage == "repl" {
            continue;
        }
        if !KNOWN_STAGES.contains(&stage.as_str()) {
            failures.push(format!("unknown stage directory tests/golden/{stage}"));
            continue;
        }
        for outcome in ["ok", "err"] {
            let dir = stage_dir.join(outcome);
            if !dir.is_dir() {
                continue;
            }
            for path in sorted_entries(&dir) {
                if path.extension().is_none_or(|e| e != "model") {
                    continue;
                }
                count += 1;
                if let Err(message) = run_case(&stage, outcome, &path, bless) {
                    failures.push(message);
                }
            }
        }
    }
    assert!(count > 0, "no golden cases found under {}", root.display());
    if !failures.is_empty() {
        panic!(
            "{} of {count} golden cases failed:\n\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

fn run_case(stage: &str, outcome: &str, path: &Path, bless: bool) -> Result<(), String> {
    let name = format!("{stage}/{outcome}/{}", file_name(path));
    let source = fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let result = kiln::driver::dump(stage, &name, &source);
    let (succeeded, actual) = match result {
        Ok(text) => (true, text),
        Err(text) => (false, text),
    };
    let expected_path = path.with_extension("out");
    let mut problems = Vec::new();
    if succeeded != (outcome == "ok") {
        let got = if succeeded { "succeeded" } else { "failed" };
        problems.push(format!(
            "{name}: expected the stage to {outcome} but it {got}"
        ));
    }
    if bless {
        fs::write(&expected_path, &actual).map_err(|e| format!("{name}: cannot bless: {e}"))?;
    } else {
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .header("expected", "actual")
                .to_string();
            problems.push(format!(
                "{name}: output differs (BLESS=1 to accept)\n{diff}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
