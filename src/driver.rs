//! The driver: runs the pipeline stages as a flat list.

use crate::{check, diag, syntax};

/// What `kiln dump --stage parse|check` prints, and what golden tests compare. Ok(text) when the
/// stage succeeded, Err(rendered diagnostics without colour) when it did not.
pub fn dump_front_end(stage: &str, file_name: &str, source: &str) -> Result<String, String> {
    let render = |diags: &[diag::Diagnostic]| diag::render(diags, file_name, source, false);
    let (ast, parse_diags) = syntax::parse(source);
    if stage == "parse" {
        return if diag::has_errors(&parse_diags) {
            Err(render(&parse_diags))
        } else {
            Ok(syntax::print_ast(&ast))
        };
    }
    if stage != "check" {
        return Err(format!(
            "unknown front-end stage `{stage}` (expected parse or check)\n"
        ));
    }
    if diag::has_errors(&parse_diags) {
        // Still check what parsed, so one run reports syntax and name errors together.
        let (_, check_diags) = check::check(&ast);
        let mut all = parse_diags;
        all.extend(check_diags);
        return Err(render(&all));
    }
    let (checked, mut diags) = check::check(&ast);
    match checked {
        Some(program) => {
            let mut text = check::describe(&program);
            if !diags.is_empty() {
                text.push('\n');
                text.push_str(&render(&diags));
            }
            Ok(text)
        }
        None => {
            diags.retain(diag::Diagnostic::is_error);
            Err(render(&diags))
        }
    }
}

/// Dispatches `kiln dump --stage …`; for now only the front-end stages exist.
pub fn dump(stage: &str, file_name: &str, source: &str) -> Result<String, String> {
    dump_front_end(stage, file_name, source)
}
