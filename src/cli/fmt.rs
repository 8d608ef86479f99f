//! `kiln fmt FILE...`: rewrites files in the canonical layout (`syntax::format`), or with
//! `--check` names those that are not in it. A folder stands for every `.model` file under it.

use std::path::{Path, PathBuf};

use kiln::syntax::format;

use super::{read, render};

/// `path`, or every `.model` under it when it is a folder, in name order.
fn model_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("error: cannot read `{}`: {e}", path.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            model_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "model") {
            out.push(path);
        }
    }
    Ok(())
}

pub fn fmt(paths: &[PathBuf], check: bool) -> Result<(), String> {
    let mut files = Vec::new();
    for path in paths {
        model_files(path, &mut files)?;
    }
    let mut unformatted = Vec::new();
    let mut failed = false;
    for path in &files {
        let file = match read(path) {
            Ok(file) => file,
            Err(message) => {
                eprintln!("{message}");
                failed = true;
                continue;
            }
        };
        let formatted = match format::format(&file.text) {
            Ok(formatted) => formatted,
            Err(diagnostics) => {
                // A file that does not parse cannot be laid out; say why and go on.
                eprint!("{}", render(&diagnostics, &file));
                eprintln!("error: `{}` does not parse; not formatted", file.name);
                failed = true;
                continue;
            }
        };
        if formatted == file.text {
            continue;
        }
        if check {
            unformatted.push(file.name);
        } else if let Err(error) = std::fs::write(path, formatted) {
            eprintln!("error: cannot write `{}`: {error}", file.name);
            failed = true;
        }
    }
    if !unformatted.is_empty() {
        for name in &unformatted {
            eprintln!("not formatted: {name}");
        }
        return Err(format!(
            "error: {} file{} not formatted; run `kiln fmt` on {}",
            unformatted.len(),
            if unformatted.len() == 1 {
                " is"
            } else {
                "s are"
            },
            if unformatted.len() == 1 { "it" } else { "them" },
        ));
    }
    if failed {
        return Err(String::new());
    }
    Ok(())
}
