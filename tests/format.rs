//! `kiln fmt`: golden before/after files (`tests/fmt/NAME.model` → `NAME.formatted`;
//! `BLESS=1` rewrites them), idempotence over every `.model` in the repository, formatting
//! never changing a program's meaning, the repository's programs staying formatted, and the
//! command's `--check`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use kiln::syntax::format::format;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.model` under the repository's own folders (not `target/`), sorted.
fn every_model() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, out);
                }
            } else if name.ends_with(".model") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root(), &mut out);
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

#[test]
fn before_and_after() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let mut failures = Vec::new();
    let mut count = 0;
    for path in every_model() {
        if !relative(&path).starts_with("tests/fmt/") {
            continue;
        }
        count += 1;
        let source = fs::read_to_string(&path).unwrap();
        let formatted = format(&source).unwrap_or_else(|d| panic!("{}: {d:?}", relative(&path)));
        let expected_path = path.with_extension("formatted");
        if bless {
            fs::write(&expected_path, &formatted).unwrap();
        } else if fs::read_to_string(&expected_path).unwrap_or_default() != formatted {
            failures.push(format!(
                "{}:\n{}",
                relative(&path),
                similar::TextDiff::from_lines(
                    fs::read_to_string(&expected_path).unwrap_or_default(),
                    &formatted
                )
                .unified_diff()
                .header("expected", "actual")
            ));
        }
    }
    assert!(count >= 2);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn formatting_is_idempotent_on_every_model_in_the_repository() {
    let mut formatted_files = 0;
    for path in every_model() {
        let source = fs::read_to_string(&path).unwrap();
        // Files that do not parse (the parse-error goldens) are refused, never changed.
        let Ok(once) = format(&source) else {
            continue;
        };
        formatted_files += 1;
        let twice = format(&once).unwrap_or_else(|d| panic!("{}: {d:?}", relative(&path)));
        assert_eq!(once, twice, "{}: formatting twice differs", relative(&path));
    }
    assert!(
        formatted_files > 100,
        "only {formatted_files} files formatted"
    );
}

/// The checked program and the IR of every golden `ok` case are the same before and after.
#[test]
fn formatting_never_changes_a_programs_meaning() {
    let mut compared = 0;
    for path in every_model() {
        let name = relative(&path);
        if !(name.starts_with("tests/golden/") && name.contains("/ok/")) {
            continue;
        }
        let source = fs::read_to_string(&path).unwrap();
        let formatted = format(&source).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        for stage in ["check", "ir"] {
            let before = kiln::driver::dump(stage, &name, &source).map(without_locations);
            let after = kiln::driver::dump(stage, &name, &formatted).map(without_locations);
            assert_eq!(before, after, "{name}: `dump --stage {stage}` changed");
        }
        compared += 1;
    }
    assert!(compared > 30, "only {compared} golden cases compared");
}

/// The IR printer ends each node's line with where it came from (`# 12:5`); blank lines move
/// those, and only those.
fn without_locations(text: String) -> String {
    text.lines()
        .map(|line| match line.rsplit_once(" # ") {
            Some((node, at))
                if at.split(':').count() == 2
                    && at.split(':').all(|n| n.parse::<usize>().is_ok()) =>
            {
                node.trim_end()
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// programs/, the golden corpus and the formatter's own expectations are kept formatted (the
/// docs' examples are checked in tests/docs.rs). `parse/ok/layout.model` is the exception: it
/// exists to show the parser the layouts the formatter removes.
#[test]
fn the_repositorys_programs_are_formatted() {
    let mut unformatted = Vec::new();
    for path in every_model() {
        let name = relative(&path);
        if name.starts_with("tests/fmt/") || name == "tests/golden/parse/ok/layout.model" {
            continue;
        }
        let source = fs::read_to_string(&path).unwrap();
        if format(&source).is_ok_and(|formatted| formatted != source) {
            unformatted.push(name);
        }
    }
    assert!(
        unformatted.is_empty(),
        "run `kiln fmt` on: {}",
        unformatted.join(" ")
    );
}

#[test]
fn fmt_check_names_unformatted_files_and_fmt_rewrites_them() {
    let tidy = fs::read_to_string(root().join("programs/iris.model")).unwrap();
    let dir = common::scratch(
        "fmt",
        &[
            ("tidy.model", &tidy),
            (
                "messy.model",
                "model m(x:f32[B,4])->f32[B,2]{dense(2,softmax)}\n",
            ),
            ("broken.model", "model m(x: f32[B, 4] -> {\n"),
        ],
    );
    let path = |name: &str| dir.join(name).display().to_string();
    let out = common::kiln(&["fmt", "--check", &path("tidy.model"), &path("messy.model")]);
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not formatted: ") && stderr.contains("messy.model"),
        "{stderr}"
    );
    assert!(!stderr.contains("tidy.model"), "{stderr}");
    // --check changed nothing.
    let messy = fs::read_to_string(dir.join("messy.model")).unwrap();
    assert!(messy.starts_with("model m(x:f32"));

    let out = common::kiln(&["fmt", &path("tidy.model"), &path("messy.model")]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    assert_eq!(
        fs::read_to_string(dir.join("messy.model")).unwrap(),
        "model m(x: f32[B, 4]) -> f32[B, 2] { dense(2, softmax) }\n"
    );
    assert_eq!(fs::read_to_string(dir.join("tidy.model")).unwrap(), tidy);
    let out = common::kiln(&["fmt", "--check", &path("messy.model")]);
    assert!(out.status.success());

    // A file that does not parse: its errors, a non-zero exit, and the file left alone.
    let out = common::kiln(&["fmt", &path("broken.model")]);
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("E0") && stderr.contains("does not parse"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(dir.join("broken.model")).unwrap(),
        "model m(x: f32[B, 4] -> {\n"
    );
    // A folder stands for the .model files under it: here only the unparsable one is left.
    let out = common::kiln(&["fmt", "--check", &dir.display().to_string()]);
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("broken.model") && !stderr.contains("not formatted: "),
        "{stderr}"
    );
    let out = common::kiln(&["fmt", "--check", "programs"]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let out = common::kiln(&["fmt", &path("missing.model")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out.stderr).contains("cannot read"));
}
