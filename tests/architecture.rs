//! The rules of `docs/ARCHITECTURE.md`, checked on the source (in the manner of rust-analyzer's
//! tidy tests): each failure names the file and line that breaks a rule.
//!
//! Test code (`tests.rs` files and everything after a file's `#[cfg(test)]`) is exempt: tests may
//! reach across stages to build what they check.

use std::fs;
use std::path::{Path, PathBuf};

/// The library's top-level modules from the bottom up. A module may use modules of its own layer
/// or below, never above.
const LAYERS: &[&[&str]] = &[
    &["diag", "buffer", "suggest"],
    &["syntax"],
    &["settings"],
    // `ir::fold` evaluates constants with the interpreter's scalar functions, and the interpreter
    // gives the IR's ops their meaning: one layer.
    &["ir", "interp"],
    &["program"],
    &["check", "codegen"],
    &["runtime"],
    &["driver", "explain"],
    &["session", "ide"],
    &["cli"],
];

/// Uses that break the layer order on purpose, with the reason (kept empty where possible).
const ALLOWED_UPWARD: &[(&str, &str, &str)] = &[];

/// Where `Op::` may appear: the IR, its interpreter, the code generator, and the checker, which
/// builds each model's forward graph (and `program`, which reads a model's output op to know
/// whether it ends in softmax or sigmoid). The runtime, the driver, the REPL and the CLI never
/// name an op; they ask the op's kind.
const OP_USERS: &[&str] = &["ir", "interp", "codegen", "check", "program/mod.rs"];

/// Only these touch the terminal.
const PRINTERS: &[&str] = &["cli", "main.rs"];

/// `unsafe` only where JIT code is called or buffers are handed to it.
const UNSAFE_FILES: &[&str] = &[
    "codegen/mod.rs",
    "codegen/gemm.rs",
    "codegen/adam.rs",
    "codegen/window.rs",
    "codegen/recurrence.rs",
];

struct Line {
    /// Relative to `src/`, with `/` separators.
    file: String,
    number: usize,
    text: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every non-test line of every file under `src/`, comments dropped; a `use` written over
/// several lines comes as one, at its first line. The item after a `#[cfg(test)]` (a test
/// module, a test-only helper) is skipped, up to its closing brace or semicolon.
fn lines() -> Vec<Line> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if file.ends_with("/tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let code: Vec<&str> = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect();
        let mut i = 0;
        while i < code.len() {
            if code[i].trim_start().starts_with("#[cfg(test)]") {
                i = end_of_item(&code, i + 1);
                continue;
            }
            let trimmed = code[i].trim_start();
            let mut joined = code[i].to_string();
            let start = i;
            if (trimmed.starts_with("use ") || trimmed.starts_with("pub use "))
                && !trimmed.contains(';')
            {
                while i + 1 < code.len() && !joined.contains(';') {
                    i += 1;
                    joined.push_str(code[i].trim());
                }
            }
            out.push(Line {
                file: file.clone(),
                number: start + 1,
                text: joined,
            });
            i += 1;
        }
    }
    out
}

/// The line after the item that starts at or after `from`: its braces balanced, or its `;`.
fn end_of_item(code: &[&str], from: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    for (i, line) in code.iter().enumerate().skip(from) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
            return i + 1;
        }
    }
    code.len()
}

/// The top-level module a file belongs to (`ir/op.rs` → `ir`, `lib.rs` → `lib`).
fn module_of(file: &str) -> &str {
    let first = file.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules a line names through `crate::`, groups (`crate::{check, ir::op}`)
/// included.
fn crate_paths(text: &str) -> Vec<&str> {
    let ident_end = |rest: &str| {
        rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())
    };
    let mut out = Vec::new();
    for (at, m) in text.match_indices("crate::") {
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + m.len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(&rest[..ident_end(rest)]);
            continue;
        };
        // Top-level items of the group: the first name of each.
        let mut depth = 0;
        let mut item_start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && (c.is_alphanumeric() || c == '_') => {
                    out.push(&group[i..i + ident_end(&group[i..])]);
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    out.retain(|m| !m.is_empty() && *m != "self");
    out
}

/// Whether the line names the IR's `Op` (not the syntax tree's `BinaryOp` or `UnaryOp`).
fn names_an_op(text: &str) -> bool {
    text.match_indices("Op::")
        .any(|(at, _)| !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

fn in_any(file: &str, places: &[&str]) -> bool {
    places.iter().any(|p| file == *p || module_of(file) == *p)
}

fn report(what: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{what}:\n{}\n(see docs/ARCHITECTURE.md)",
        failures.join("\n")
    );
}

#[test]
fn every_module_has_a_layer() {
    let mut failures = Vec::new();
    for line in lines() {
        let module = module_of(&line.file);
        if !["lib", "main"].contains(&module) && layer_of(module).is_none() {
            failures.push(format!(
                "src/{}: module `{module}` is in no layer",
                line.file
            ));
        }
    }
    failures.dedup();
    report("modules missing from LAYERS", failures);
}

#[test]
fn no_module_uses_one_above_it() {
    let mut failures = Vec::new();
    for line in lines() {
        let module = module_of(&line.file);
        let Some(layer) = layer_of(module) else {
            continue;
        };
        for used in crate_paths(&line.text) {
            let Some(used_layer) = layer_of(used) else {
                continue;
            };
            let allowed = ALLOWED_UPWARD
                .iter()
                .any(|(file, target, _)| *file == line.file && *target == used);
            if used_layer > layer && !allowed {
                failures.push(format!(
                    "src/{}:{}: `{module}` uses `{used}`, which is above it: {}",
                    line.file,
                    line.number,
                    line.text.trim()
                ));
            }
        }
    }
    report("imports against the layer order", failures);
}

#[test]
fn only_the_ir_and_its_consumers_match_on_ops() {
    let failures = lines()
        .into_iter()
        .filter(|l| names_an_op(&l.text) && !in_any(&l.file, OP_USERS))
        .map(|l| format!("src/{}:{}: {}", l.file, l.number, l.text.trim()))
        .collect();
    report("ops named outside the IR's consumers", failures);
}

#[test]
fn the_library_never_prints() {
    let failures = lines()
        .into_iter()
        .filter(|l| {
            ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("]
                .iter()
                .any(|m| l.text.contains(m))
                && !in_any(&l.file, PRINTERS)
        })
        .map(|l| format!("src/{}:{}: {}", l.file, l.number, l.text.trim()))
        .collect();
    report("printing outside the CLI", failures);
}

#[test]
fn unsafe_only_where_native_code_is_called() {
    let failures = lines()
        .into_iter()
        .filter(|l| l.text.contains("unsafe") && !UNSAFE_FILES.contains(&l.file.as_str()))
        .map(|l| format!("src/{}:{}: {}", l.file, l.number, l.text.trim()))
        .collect();
    report("`unsafe` outside the code generator's calls", failures);
}

#[test]
fn every_unsafe_block_says_why_it_is_sound() {
    let mut failures = Vec::new();
    for file in UNSAFE_FILES {
        let text = fs::read_to_string(src().join(file)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !code.contains("unsafe {") {
                continue;
            }
            // The comment may sit a few lines above (after an attribute or a `let`).
            let justified = lines[i.saturating_sub(6)..=i]
                .iter()
                .any(|l| l.contains("SAFETY:"));
            if !justified {
                failures.push(format!("src/{file}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    report("`unsafe` blocks without a `// SAFETY:` comment", failures);
}

#[test]
fn the_rules_see_a_violation() {
    // The scanner itself: a planted upward use and a planted op match are found.
    assert_eq!(
        crate_paths("use crate::check::program::Fit; x(crate::ir::op)"),
        ["check", "ir"]
    );
    assert_eq!(
        crate_paths("use crate::{check, ir::{op, graph}, runtime};"),
        ["check", "ir", "runtime"]
    );
    let code = ["#[cfg(test)]", "mod tests;", "use crate::check;"];
    assert_eq!(end_of_item(&code, 1), 2);
    let code = [
        "#[cfg(test)]",
        "fn helper() {",
        "    x { }",
        "}",
        "use crate::check;",
    ];
    assert_eq!(end_of_item(&code, 1), 4);
    assert!(layer_of("runtime") > layer_of("check"));
    assert!(!in_any("runtime/train.rs", OP_USERS));
    assert!(names_an_op("n.op != Op::Reshape") && !names_an_op("BinaryOp::Add => \"+\""));
    assert!(in_any("codegen/emit/matmul.rs", OP_USERS));
}

#[test]
fn the_kernel_layer_knows_no_backend() {
    // Scheduling, the memory plan and the loop specs are shared by every backend (the JIT and
    // object files today); only `codegen::emit` and the module drivers speak Cranelift.
    let failures = lines()
        .into_iter()
        .filter(|l| l.file.starts_with("codegen/kernel/") && l.text.contains("cranelift_"))
        .map(|l| format!("src/{}:{}: {}", l.file, l.number, l.text.trim()))
        .collect();
    report("Cranelift in the kernel layer", failures);
}

#[test]
fn only_the_cli_and_the_runtime_loaders_touch_files() {
    const FILE_USERS: &[&str] = &[
        "cli",
        "main.rs",
        "runtime/checkpoint.rs",
        "runtime/predict.rs",
        // Reads /proc for the memory a fit may use.
        "runtime/memory.rs",
    ];
    let failures = lines()
        .into_iter()
        .filter(|l| {
            ["std::fs", "fs::", "File::"]
                .iter()
                .any(|m| l.text.contains(m))
                && !in_any(&l.file, FILE_USERS)
                && !l.file.starts_with("runtime/data")
        })
        .map(|l| format!("src/{}:{}: {}", l.file, l.number, l.text.trim()))
        .collect();
    report(
        "files touched outside the CLI and the runtime's loaders and writers",
        failures,
    );
}

#[test]
fn the_editor_analysis_does_no_io_and_knows_no_protocol() {
    // `ide` answers in byte offsets and its own types; `cli/lsp.rs` owns stdio and the protocol.
    let failures = lines()
        .into_iter()
        .filter(|l| {
            l.file.starts_with("ide/")
                && ["std::io", "lsp_types", "lsp_server", "stdin", "stdout"]
                    .iter()
                    .any(|m| l.text.contains(m))
        })
        .map(|l| format!("src/{}:{}: {}", l.file, l.number, l.text.trim()))
        .collect();
    report("I/O or protocol types in src/ide/", failures);
}
