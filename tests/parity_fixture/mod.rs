//! The parity fixture (`tests/fixtures/parity/`, see `docs/parity.md`): data, batch order and
//! initial weights shared by the peers' runs, and a loop that trains a program's compiled step on
//! them. Used by `tests/parity.rs` and `tests/optimizers.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use kiln::codegen::{self, CodegenConfig};
use kiln::driver::{self, GraphStage};
use kiln::ir::lower;
use kiln::ir::optimizer::STEP;
use kiln::program::Fit;
use kiln::settings::Loss;
use serde_json::Value;

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

fn words(name: &str) -> Vec<[u8; 4]> {
    let bytes = fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
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

    #[allow(dead_code)] // `tests/parity.rs` reads the peers' losses; `tests/optimizers.rs` not
    pub fn losses(&self, peer: &str) -> Vec<f64> {
        self.meta["losses"][peer]
            .as_array()
            .unwrap_or_else(|| panic!("meta.json: no losses for {peer}"))
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
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
    let checked = driver::check_source(source).unwrap_or_else(|d| panic!("{d:?}"));
    let program = &checked.program;
    let fit = &program.fits[0];
    assert_eq!(fit.loss, Loss::SparseCategoricalCrossentropy);
    assert_eq!(fit.batch, batch);
    let graph = driver::training_graph(program, fit, GraphStage::Optimized).unwrap();
    let mut step = codegen::compile(&graph, &CodegenConfig { max_batch: batch }).unwrap();

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
            let param = &graph.params[index];
            assert!(
                param.name.ends_with(which) && param.shape.numel(0) == len,
                "parameter {index} is {} {:?}, expected the {which} of layer {layer} ({len} values)",
                param.name,
                param.shape
            );
            step.param_mut(index)
                .copy_from_slice(&fixture.weights[offset..offset + len]);
            offset += len;
        }
    }
    assert_eq!(
        offset,
        fixture.weights.len(),
        "weights.f32 has extra values"
    );
    for (index, state) in graph.states.iter().enumerate() {
        step.state_mut(index).fill(state.init); // as the runtime starts a fresh optimizer
    }

    let find = |name: &str| graph.inputs.iter().position(|input| input.name == name);
    let slot = |name: &str| find(name).unwrap_or_else(|| panic!("no input {name}"));
    let (x_slot, label_slot) = (slot(lower::FEATURES), slot(lower::LABELS));
    // Plain SGD does not count steps.
    let step_slot = find(STEP);
    let lr_slot = slot(kiln::ir::optimizer::LR);
    let mut losses = Vec::with_capacity(steps);
    for (t, rows) in fixture.order.chunks_exact(batch).enumerate() {
        let x = step.input_f32_mut(x_slot, batch);
        for (dst, &row) in x.chunks_exact_mut(features).zip(rows) {
            let row = row as usize;
            dst.copy_from_slice(&fixture.features[row * features..(row + 1) * features]);
        }
        let labels = step.input_i32_mut(label_slot, batch);
        for (dst, &row) in labels.iter_mut().zip(rows) {
            *dst = fixture.labels[row as usize];
        }
        if let Some(step_slot) = step_slot {
            step.input_f32_mut(step_slot, batch)[0] = (t + 1) as f32; // Adam's t counts from 1
        }
        step.input_f32_mut(lr_slot, batch)[0] = fit.optimizer.lr(); // the runtime sets it every step
        step.run(batch);
        losses.push(f64::from(step.output(lower::LOSS, batch).unwrap()[0]));
    }
    (fit.clone(), losses)
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
