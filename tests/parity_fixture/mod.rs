//! The parity fixtures (`tests/fixtures/parity/`, and through [`networks`]
//! `tests/fixtures/parity_cnn/` and `tests/fixtures/parity_seq/`; see `docs/parity.md`): data,
//! batch order and initial weights shared by the peers' runs, and a [`Trainer`] that runs a
//! program's compiled step on them. Used by `tests/parity.rs`, `tests/optimizers.rs`,
//! `tests/parity_cnn.rs` and `tests/parity_seq.rs` (each uses part of it).
#![allow(dead_code)]

pub mod networks;

use std::fs;
use std::path::{Path, PathBuf};

use kiln::codegen::{self, CodegenConfig, CompiledStep};
use kiln::driver::{self, GraphStage};
use kiln::ir::graph::{Graph, Slot};
use kiln::ir::lower;
use kiln::ir::optimizer::STEP;
use kiln::ir::shape::DType;
use kiln::program::Fit;
use kiln::settings::Loss;
use serde_json::Value;

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

fn words(name: &str) -> Vec<[u8; 4]> {
    words_in(&fixture_dir(), name)
}

fn words_in(dir: &Path, name: &str) -> Vec<[u8; 4]> {
    let bytes = fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        bytes.len() % 4,
        0,
        "{name}: not a whole number of 4-byte values"
    );
    bytes
        .chunks_exact(4)
        .map(|c| c.try_into().unwrap())
        .collect()
}

fn f32s(name: &str) -> Vec<f32> {
    words(name).into_iter().map(f32::from_le_bytes).collect()
}

fn i32s(name: &str) -> Vec<i32> {
    words(name).into_iter().map(i32::from_le_bytes).collect()
}

/// A raw little-endian f32 file of the fixture in `dir`.
pub fn f32s_in(dir: &Path, name: &str) -> Vec<f32> {
    words_in(dir, name)
        .into_iter()
        .map(f32::from_le_bytes)
        .collect()
}

/// A raw little-endian i32 file of the fixture in `dir`.
pub fn i32s_in(dir: &Path, name: &str) -> Vec<i32> {
    words_in(dir, name)
        .into_iter()
        .map(i32::from_le_bytes)
        .collect()
}

pub fn usize_of(meta: &Value, key: &str) -> usize {
    meta[key]
        .as_u64()
        .unwrap_or_else(|| panic!("meta.json: {key}")) as usize
}

pub struct Fixture {
    pub meta: Value,
    pub features: Vec<f32>,
    pub labels: Vec<i32>,
    pub order: Vec<i32>,
    pub weights: Vec<f32>,
}

impl Fixture {
    pub fn load() -> Fixture {
        let text = fs::read_to_string(fixture_dir().join("meta.json")).unwrap();
        Fixture {
            meta: serde_json::from_str(&text).unwrap(),
            features: f32s("features.f32"),
            labels: i32s("labels.i32"),
            order: i32s("order.i32"),
            weights: f32s("weights.f32"),
        }
    }

    pub fn losses(&self, peer: &str) -> Vec<f64> {
        self.meta["losses"][peer]
            .as_array()
            .unwrap_or_else(|| panic!("meta.json: no losses for {peer}"))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    }
}

/// A program's compiled training step, built through the real front end (`driver::check_source`
/// → `driver::training_graph` → `codegen::compile`) as the runtime builds it, with its optimizer
/// state at its initial values; weights are set and read by parameter name.
pub struct Trainer {
    pub fit: Fit,
    pub graph: Graph,
    pub step: CompiledStep,
    batch: usize,
    x_slot: usize,
    label_slot: usize,
    /// Plain SGD does not count steps.
    step_slot: Option<usize>,
    lr_slot: usize,
}

impl Trainer {
    /// Checks `source` (panicking with its diagnostics if it does not check) and compiles the
    /// training step of its first `fit`, which must train with sparse categorical cross-entropy
    /// in batches of `batch`.
    pub fn new(source: &str, batch: usize) -> Trainer {
        let checked = driver::check_source(source).unwrap_or_else(|d| panic!("{d:?}"));
        let program = &checked.program;
        let fit = &program.fits[0];
        assert_eq!(fit.loss, Loss::SparseCategoricalCrossentropy);
        assert_eq!(fit.batch, batch);
        let graph = driver::training_graph(program, fit, GraphStage::Optimized).unwrap();
        let mut step = codegen::compile(&graph, &CodegenConfig { max_batch: batch }).unwrap();
        for (index, state) in graph.states.iter().enumerate() {
            step.state_mut(index).fill(state.init); // as the runtime starts a fresh optimizer
        }
        let find = |name: &str| graph.inputs.iter().position(|input| input.name == name);
        let slot = |name: &str| find(name).unwrap_or_else(|| panic!("no input {name}"));
        Trainer {
            fit: fit.clone(),
            batch,
            x_slot: slot(lower::FEATURES),
            label_slot: slot(lower::LABELS),
            step_slot: find(STEP),
            lr_slot: slot(kiln::ir::optimizer::LR),
            graph,
            step,
        }
    }

    /// Values per sample of the model's input (784 for `f32[B, 28, 28, 1]`).
    pub fn input_width(&self) -> usize {
        self.graph.inputs[self.x_slot].ty.shape.numel(1)
    }

    /// The parameter (or, failing that, the state) called `name`: its slot and element count.
    pub fn find(&self, name: &str) -> Option<(Slot, usize)> {
        let graph = &self.graph;
        if let Some(i) = graph.params.iter().position(|p| p.name == name) {
            return Some((Slot::Param(i), graph.params[i].shape.numel(1)));
        }
        let i = graph.states.iter().position(|s| s.name == name)?;
        Some((Slot::State(i), graph.states[i].shape.numel(1)))
    }

    fn slot(&self, name: &str) -> Slot {
        let Some((slot, _)) = self.find(name) else {
            let params: Vec<_> = self.graph.params.iter().map(|p| &p.name).collect();
            panic!("the step has no parameter {name}; its parameters: {params:?}")
        };
        slot
    }

    /// The current values of the parameter (or state) `name`.
    pub fn values(&self, name: &str) -> &[f32] {
        match self.slot(name) {
            Slot::Param(i) => self.step.param(i),
            Slot::State(i) => self.step.state(i),
        }
    }

    /// Sets the parameter (or state) `name`; `values` must have its element count.
    pub fn set(&mut self, name: &str, values: &[f32]) {
        let target = match self.slot(name) {
            Slot::Param(i) => self.step.param_mut(i),
            Slot::State(i) => self.step.state_mut(i),
        };
        assert_eq!(
            target.len(),
            values.len(),
            "{name}: the step holds {} values, the fixture {}",
            target.len(),
            values.len()
        );
        target.copy_from_slice(values);
    }

    /// Runs training step `t` (counting from 1, as Adam's `step` input does) on the samples
    /// `rows` of `features` (`input_width()` values per sample, row-major) and `labels`: the
    /// batch's loss from this step's forward pass, before its update.
    pub fn run_step(&mut self, t: usize, features: &[f32], labels: &[i32], rows: &[i32]) -> f64 {
        let (batch, width) = (self.batch, self.input_width());
        assert_eq!(rows.len(), batch);
        assert_eq!(features.len(), labels.len() * width, "features per sample");
        if self.graph.inputs[self.x_slot].ty.dtype == DType::I32 {
            // Token ids, held as f32 (whole numbers, exact) with the other fixtures' inputs.
            let x = self.step.input_i32_mut(self.x_slot, batch);
            for (dst, &row) in x.chunks_exact_mut(width).zip(rows) {
                let row = row as usize;
                for (d, &id) in dst
                    .iter_mut()
                    .zip(&features[row * width..(row + 1) * width])
                {
                    *d = id as i32;
                }
            }
        } else {
            let x = self.step.input_f32_mut(self.x_slot, batch);
            for (dst, &row) in x.chunks_exact_mut(width).zip(rows) {
                let row = row as usize;
                dst.copy_from_slice(&features[row * width..(row + 1) * width]);
            }
        }
        let y = self.step.input_i32_mut(self.label_slot, batch);
        for (dst, &row) in y.iter_mut().zip(rows) {
            *dst = labels[row as usize];
        }
        if let Some(step_slot) = self.step_slot {
            self.step.input_f32_mut(step_slot, batch)[0] = t as f32;
        }
        // The runtime sets the learning rate every step.
        self.step.input_f32_mut(self.lr_slot, batch)[0] = self.fit.optimizer.lr();
        self.step.run(batch);
        f64::from(self.step.output(lower::LOSS, batch).unwrap()[0])
    }
}

/// Trains `source` (the seed program, possibly with another optimizer line) with its compiled
/// step on the fixture's batches, from the fixture's initial weights: the program's fit and each
/// step's loss (before that step's update).
pub fn train(fixture: &Fixture, source: &str) -> (Fit, Vec<f64>) {
    let meta = &fixture.meta;
    let (samples, features) = (usize_of(meta, "samples"), usize_of(meta, "features"));
    let (batch, steps) = (usize_of(meta, "batch"), usize_of(meta, "steps"));
    assert_eq!(fixture.features.len(), samples * features);
    assert_eq!(fixture.labels.len(), samples);
    assert_eq!(fixture.order.len(), steps * batch);

    // The real front end on the real program.
    let mut trainer = Trainer::new(source, batch);
    assert_eq!(trainer.input_width(), features);
    let graph = &trainer.graph;

    // Weights: kernel [in, out] then bias [out] per dense layer, in layer order — the order and
    // layouts of the graph's parameters (checked by name and shape).
    let widths: Vec<usize> = meta["widths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(graph.params.len(), 2 * (widths.len() - 1));
    let mut offset = 0;
    for (layer, pair) in widths.windows(2).enumerate() {
        for (index, which, len) in [
            (2 * layer, "kernel", pair[0] * pair[1]),
            (2 * layer + 1, "bias", pair[1]),
        ] {
            let param = &trainer.graph.params[index];
            assert!(
                param.name.ends_with(which) && param.shape.numel(0) == len,
                "parameter {index} is {} {:?}, expected the {which} of layer {layer} ({len} values)",
                param.name,
                param.shape
            );
            trainer
                .step
                .param_mut(index)
                .copy_from_slice(&fixture.weights[offset..offset + len]);
            offset += len;
        }
    }
    assert_eq!(
        offset,
        fixture.weights.len(),
        "weights.f32 has extra values"
    );

    let losses = fixture
        .order
        .chunks_exact(batch)
        .enumerate()
        .map(|(t, rows)| trainer.run_step(t + 1, &fixture.features, &fixture.labels, rows))
        .collect();
    (trainer.fit, losses)
}

/// Largest per-step relative difference (with its step, 1-based) and the relative difference
/// of the means.
pub struct Agreement {
    pub worst: f64,
    pub worst_step: usize,
    pub mean: f64,
}

pub fn agreement(kiln: &[f64], peer: &[f64]) -> Agreement {
    assert_eq!(kiln.len(), peer.len(), "step counts differ");
    let relative = |a: f64, b: f64| (a - b).abs() / b.abs();
    let (worst_step, worst) = kiln
        .iter()
        .zip(peer)
        .map(|(&a, &b)| relative(a, b))
        .enumerate()
        .fold(
            (0, 0.0),
            |best, (i, r)| if r > best.1 { (i, r) } else { best },
        );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Agreement {
        worst,
        worst_step: worst_step + 1,
        mean: relative(mean(kiln), mean(peer)),
    }
}
