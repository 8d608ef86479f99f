//! `kiln explain`: every diagnostic code the compiler emits is explained, and every example in
//! an explanation really produces its code.

use kiln::driver;
use kiln::explain::{EXPLANATIONS, find};
use std::path::Path;

/// Codes written as string literals (`"E0210"`) anywhere under `src/`.
fn codes_in_source() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("explain.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let bytes = text.as_bytes();
                for i in 0..bytes.len().saturating_sub(6) {
                    let candidate = &bytes[i..i + 7];
                    if candidate[0] == b'"'
                        && (candidate[1] == b'E' || candidate[1] == b'W')
                        && candidate[2..6].iter().all(u8::is_ascii_digit)
                        && candidate[6] == b'"'
                    {
                        out.push(String::from_utf8_lossy(&candidate[1..6]).into_owned());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_code_in_the_compiler_is_explained() {
    let missing: Vec<String> = codes_in_source()
        .into_iter()
        .filter(|code| find(code).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without an explanation: {missing:?}"
    );
}

#[test]
fn every_example_produces_its_code() {
    for explanation in EXPLANATIONS {
        let Some(example) = explanation.example else {
            continue;
        };
        let diagnostics = match driver::check_source(example) {
            Ok(checked) => checked.warnings,
            Err(diagnostics) => diagnostics,
        };
        assert!(
            diagnostics.iter().any(|d| d.code == explanation.code),
            "the example for {} produced {:?}\n{example}",
            explanation.code,
            diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn codes_are_unique_and_rendered_with_their_example() {
    let mut codes: Vec<&str> = EXPLANATIONS.iter().map(|e| e.code).collect();
    codes.sort_unstable();
    let before = codes.len();
    codes.dedup();
    assert_eq!(before, codes.len(), "a code is explained twice");
    let text = find("E0210").unwrap().render();
    assert!(text.starts_with("E0210: matrix product shapes do not agree"));
    assert!(text.contains("For example:\n\n    layer proj"));
}
