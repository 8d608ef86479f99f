//! Helpers shared by the integration tests: running the `kiln` binary in scratch folders, and
//! the training step of a dense classifier.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use kiln::diag::Span;
use kiln::driver::{self, GraphStage};
use kiln::ir::graph::Graph;
use kiln::program::{CheckedProgram, Fit};
use kiln::settings::{Activation, Loss, Optimizer};

/// The training graph of `source`'s first `fit`, lowered to `until`; the source must check.
pub fn first_fit_graph(source: &str, until: GraphStage) -> Graph {
    let checked = driver::check_source(source).unwrap_or_else(|d| panic!("{d:?}"));
    let program = &checked.program;
    driver::training_graph(program, &program.fits[0], until).unwrap()
}

/// Runs the `kiln` binary from the crate's root, without colour.
pub fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs `kiln args…`, which must succeed, and returns its standard output.
pub fn kiln_ok(args: &[&str]) -> String {
    let out = kiln(args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch folder holding `files` (name, contents), unique to the test binary and the test,
/// removed with everything in it when the test drops it (a failing test's folder goes too; the
/// assertion messages carry what a failure needs).
pub fn scratch(test: &str, files: &[(&str, &str)]) -> Scratch {
    let binary = env!("CARGO_CRATE_NAME");
    let dir = tempfile::Builder::new()
        .prefix(&format!("kiln-{binary}-{test}-"))
        .tempdir()
        .unwrap();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    Scratch(dir)
}

/// A temporary folder, deleted on drop; reads as its path.
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

pub fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The training step (`GraphStage::Step`) of a dense stack of `widths`, relu between layers and
/// softmax at the end, fitted with sparse categorical cross-entropy and Keras's default Adam.
pub fn classifier_step(widths: &[usize], batch: usize) -> Graph {
    let activations: Vec<Activation> = (2..widths.len())
        .map(|_| Activation::Relu)
        .chain([Activation::Softmax])
        .collect();
    let model = kiln::check::dense_stack("classifier", widths, &activations);
    let fit = Fit {
        span: Span::default(),
        model: 0,
        data: 0,
        loss: Loss::SparseCategoricalCrossentropy,
        loss_options: Default::default(),
        optimizer: Optimizer::new(&kiln::settings::optimizer::ADAM, &[]),
        metrics: vec![],
        epochs: 1,
        batch,
        seed: 0,
        shuffle: true,
        validation: None,
        training: Default::default(),
    };
    let program = CheckedProgram {
        data: vec![],
        models: vec![model],
        fits: vec![fit.clone()],
        actions: vec![],
    };
    driver::training_graph(&program, &fit, GraphStage::Step).unwrap()
}
