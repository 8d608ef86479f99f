//! The docs cannot drift: every ```kiln block in docs/*.md and README.md must pass `kiln check`
//! (warnings allowed), and every ```kiln-error CODE block must fail with that code.

use std::path::Path;

struct Block {
    file: String,
    line: usize,
    tag: String,
    text: String,
}

fn blocks() -> Vec<Block> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut current: Option<Block> = None;
        for (i, line) in text.lines().enumerate() {
            match (&mut current, line.strip_prefix("```")) {
                (None, Some(tag)) => {
                    current = Some(Block {
                        file: file.display().to_string(),
                        line: i + 1,
                        tag: tag.trim().to_string(),
                        text: String::new(),
                    })
                }
                (Some(_), Some(_)) => out.push(current.take().unwrap()),
                (Some(block), None) => {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
                (None, None) => {}
            }
        }
    }
    out
}

#[test]
fn every_kiln_block_in_the_docs_checks() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for block in blocks() {
        if block.tag == "kiln" {
            checked += 1;
            if let Err(diagnostics) = kiln::driver::check_source(&block.text) {
                failures.push(format!(
                    "{}:{}: {}",
                    block.file,
                    block.line,
                    diagnostics
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        } else if let Some(code) = block.tag.strip_prefix("kiln-error ") {
            checked += 1;
            match kiln::driver::check_source(&block.text) {
                Err(diagnostics) if diagnostics.iter().any(|d| d.code == code.trim()) => {}
                _ => failures.push(format!("{}:{}: expected {code}", block.file, block.line)),
            }
        }
    }
    assert!(checked >= 8, "only {checked} kiln blocks found in the docs");
    assert!(
        failures.is_empty(),
        "doc examples that do not check:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_program_in_programs_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "model") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(d) = kiln::driver::check_source(&text) {
                panic!(
                    "{}: {:?}",
                    path.display(),
                    d.iter().map(|d| d.to_string()).collect::<Vec<_>>()
                );
            }
        }
    }
}

/// Every table of built-ins in the docs is the one their definitions write (the same tables
/// `kiln explain NAME` reads), not a copy that can fall behind them.
#[test]
fn the_builtin_tables_are_written_from_the_definitions() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md");
    let page = std::fs::read_to_string(path).unwrap();
    let missing: Vec<String> = kiln::explain::builtin_tables()
        .into_iter()
        // Followed by a blank line, so a row the definitions no longer write cannot linger.
        .filter(|(_, table)| !page.contains(&format!("{table}\n")))
        .map(|(kind, table)| format!("the {kind} table, as the definitions write it:\n{table}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/language.md should hold {}",
        missing.join("\n")
    );
}

/// `kiln fmt` is the layout the docs teach: every ```kiln block is already in it.
#[test]
fn every_kiln_block_in_the_docs_is_formatted() {
    let mut failures = Vec::new();
    for block in blocks() {
        if block.tag != "kiln" {
            continue;
        }
        match kiln::syntax::format::format(&block.text) {
            Ok(formatted) if formatted == block.text => {}
            Ok(formatted) => {
                let diff = similar::TextDiff::from_lines(&block.text, &formatted)
                    .unified_diff()
                    .to_string();
                failures.push(format!(
                    "{}:{}: not formatted:\n{diff}",
                    block.file, block.line
                ));
            }
            Err(diagnostics) => {
                failures.push(format!("{}:{}: {diagnostics:?}", block.file, block.line))
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
