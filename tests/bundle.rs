//! `.kiln` bundles through the `kiln` binary: `save … to "m.kiln"` writes one file that
//! `kiln predict`, `kiln evaluate` and `kiln check --summary` run without the program, with the
//! same results as the program's own statements; damaged bundles and data that does not fit
//! are clear errors.

mod common;

use common::{kiln, kiln_ok, path, scratch, text};
use std::path::Path;

/// 60 flowers-like rows: 4 features and a class (0, 1, 2) that depends on them, with a header.
fn flowers_csv() -> String {
    let mut csv = String::from("a,b,c,d,species\n");
    for i in 0..60 {
        let class = i % 3;
        let x = |k: usize| ((i * 7 + k * 13) % 10) as f32 / 10.0 + class as f32 * (k as f32 + 1.0);
        csv.push_str(&format!("{},{},{},{},{class}\n", x(0), x(1), x(2), x(3)));
    }
    csv
}

/// A classifier with standardized inputs, a constant and a second model beside it.
const PROGRAM: &str = "# flowers\n\
data flowers = csv(\"flowers.csv\", label: \"species\")\n\
let width = 8\n\
model other(x: f32[B, 4]) -> f32[B, 1] { dense(1) }\n\
model flower(x: f32[B, 4]) -> f32[B, 3] {\n    dense(width, relu)\n    dense(3, softmax)\n}\n\
fit flower on flowers {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.05)\n    \
metrics [accuracy]\n    epochs 5\n    batch 16\n    seed 2\n    standardize true\n}\n\
evaluate flower on flowers\n\
predict flower on flowers to \"program.csv\"\n\
save flower to \"flower.kiln\"\n";

fn fails(args: &[&str]) -> String {
    let out = kiln(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Trains PROGRAM in `dir`; returns `kiln run`'s output.
fn trained(dir: &Path) -> String {
    std::fs::write(dir.join("flowers.csv"), flowers_csv()).unwrap();
    std::fs::write(dir.join("p.model"), PROGRAM).unwrap();
    kiln_ok(&["run", "-q", &path(dir, "p.model")])
}

#[test]
fn a_bundle_predicts_and_evaluates_as_its_program_did() {
    let dir = scratch("same", &[]);
    let run = trained(&dir);
    let bundle = path(&dir, "flower.kiln");
    let data = path(&dir, "flowers.csv");
    // The same probabilities and classes, byte for byte, on stdout and in a file.
    let program = std::fs::read_to_string(dir.join("program.csv")).unwrap();
    assert_eq!(kiln_ok(&["predict", &bundle, &data]), program);
    let out = path(&dir, "bundle.csv");
    let said = kiln_ok(&["predict", &bundle, &data, "-o", &out]);
    assert!(said.contains("60 samples written to"), "{said}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), program);
    // The same loss and metrics (standardized with the training statistics).
    let evaluated = kiln_ok(&["evaluate", &bundle, &data]);
    let numbers = |line: &str| line.split_once(" samples - ").unwrap().1.to_string();
    let in_program = run.lines().find(|l| l.starts_with("Evaluated")).unwrap();
    assert_eq!(
        numbers(evaluated.trim()),
        numbers(in_program),
        "{run}\n{evaluated}"
    );
    let summary = kiln_ok(&["check", "--summary", &bundle]);
    assert!(summary.contains("dense_1 (dense)"), "{summary}");
    assert!(summary.contains("parameters       67"), "{summary}");
    assert!(summary.contains("ok (model 'flower'"), "{summary}");
}

#[test]
fn the_bundle_keeps_only_what_defines_its_model() {
    let dir = scratch("source", &[]);
    trained(&dir);
    let bundle = kiln::runtime::bundle::read(&dir.join("flower.kiln")).unwrap();
    let source = &bundle.source;
    assert!(source.starts_with("data flowers = csv("), "{source}");
    for kept in ["let width = 8", "model flower(", "fit flower on flowers"] {
        assert!(source.contains(kept), "{kept}: {source}");
    }
    for dropped in ["model other", "evaluate", "predict", "save", "# flowers"] {
        assert!(!source.contains(dropped), "{dropped}: {source}");
    }
    assert!(bundle.weights.optimizer.is_none());
    assert!(bundle.weights.standardization.is_some());
    // The same weights give the same file.
    let first = std::fs::read(dir.join("flower.kiln")).unwrap();
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    assert_eq!(std::fs::read(dir.join("flower.kiln")).unwrap(), first);
}

#[test]
fn damaged_bundles_are_errors_that_say_so() {
    let dir = scratch("damaged", &[]);
    trained(&dir);
    let bytes = std::fs::read(dir.join("flower.kiln")).unwrap();
    let data = path(&dir, "flowers.csv");
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).unwrap();
        path(&dir, name)
    };
    // A changed weight.
    let mut changed = bytes.clone();
    let last = changed.len() - 3;
    changed[last] ^= 0x40;
    let message = fails(&["predict", &write("changed.kiln", &changed), &data]);
    assert!(message.contains("the bundle is corrupt"), "{message}");
    // Cut short, in the data and in the header.
    for (name, length) in [("short.kiln", bytes.len() - 100), ("stub.kiln", 6)] {
        let message = fails(&["evaluate", &write(name, &bytes[..length]), &data]);
        assert!(
            message.contains("truncated") && message.contains(name),
            "{message}"
        );
    }
    // A checkpoint named like a bundle.
    std::fs::write(
        dir.join("c.model"),
        PROGRAM.replace("\"flower.kiln\"", "\"c.safetensors\""),
    )
    .unwrap();
    kiln_ok(&["run", "-q", &path(&dir, "c.model")]);
    std::fs::copy(dir.join("c.safetensors"), dir.join("c.kiln")).unwrap();
    let message = fails(&["check", &path(&dir, "c.kiln")]);
    assert!(message.contains("not a Kiln bundle"), "{message}");
    // Another format version.
    let mut future = kiln::runtime::bundle::read(&dir.join("flower.kiln")).unwrap();
    future.kiln_version = "9.9.9".to_string();
    let encoded = kiln::runtime::bundle::encode(&future).unwrap();
    let (from, to) = (b"\"kiln.bundle\":\"1\"", b"\"kiln.bundle\":\"7\"");
    let at = (encoded.windows(from.len()))
        .position(|w| w == from)
        .unwrap();
    let mut other = encoded.clone();
    other[at..at + to.len()].copy_from_slice(to);
    let message = fails(&["check", &write("future.kiln", &other)]);
    assert!(
        message.contains("format version 7 (written by Kiln 9.9.9)"),
        "{message}"
    );
    // Not a bundle at all.
    let message = fails(&["predict", &path(&dir, "p.model"), &data]);
    assert!(message.contains("bundles are .kiln files"), "{message}");
}

#[test]
fn data_that_does_not_fit_the_bundled_model_is_named() {
    let dir = scratch("width", &[]);
    trained(&dir);
    let bundle = path(&dir, "flower.kiln");
    let narrow: String = flowers_csv()
        .lines()
        .map(|l| l.split_once(',').unwrap().1.to_string() + "\n")
        .collect();
    std::fs::write(dir.join("narrow.csv"), narrow).unwrap();
    let message = fails(&["predict", &bundle, &path(&dir, "narrow.csv")]);
    assert!(
        message.contains(
            "the data has 3 features per sample, but model 'flower' takes input x: f32[B, 4]"
        ),
        "{message}"
    );
    let message = fails(&["evaluate", &bundle, &path(&dir, "missing.csv")]);
    assert!(message.contains("missing.csv"), "{message}");
    let message = fails(&[
        "predict",
        &bundle,
        &path(&dir, "flowers.csv"),
        "-o",
        "x.txt",
    ]);
    assert!(message.contains("must end in .csv or .npy"), "{message}");
}

#[test]
fn a_model_saved_without_a_fit_predicts_but_cannot_evaluate() {
    let dir = scratch("unfitted", &[("flowers.csv", &flowers_csv())]);
    std::fs::write(
        dir.join("u.model"),
        "model m(x: f32[B, 4]) -> f32[B, 3] { dense(3, softmax) }\nsave m to \"m.kiln\"\n",
    )
    .unwrap();
    kiln_ok(&["run", "-q", &path(&dir, "u.model")]);
    let bundle = path(&dir, "m.kiln");
    let predicted = kiln_ok(&["predict", &bundle, &path(&dir, "flowers.csv")]);
    assert_eq!(predicted.lines().count(), 61, "{predicted}");
    let message = fails(&["evaluate", &bundle, &path(&dir, "flowers.csv")]);
    assert!(message.contains("`evaluate` needs a loss"), "{message}");
}
