//! The fixtures of named networks against PyTorch (`tests/fixtures/parity_cnn/`,
//! `tests/fixtures/parity_seq/`; see `docs/parity.md`): one data set and batch order, and per
//! network its Kiln program, its parameters by name, initial weights, and each peer's per-step
//! losses and final weights. Loading a network gives a [`Trainer`] holding its initial weights;
//! [`compare_losses`] holds its losses to the peers'.

use std::fs;
use std::path::PathBuf;

use kiln::settings::Optimizer;
use kiln::settings::optimizer::{self, ArgValue};
use serde_json::Value;

use super::{Trainer, agreement, f32s_in, i32s_in, usize_of};

pub struct Networks {
    pub dir: PathBuf,
    pub meta: Value,
    /// Every sample's model input, row-major: `[samples, ...]`, one sample's values after another.
    pub inputs: Vec<f32>,
    pub labels: Vec<i32>,
    pub order: Vec<i32>,
}

impl Networks {
    /// Loads the fixture in `dir`: its `meta.json`, the samples from `inputs` (f32, or token ids
    /// in a `.i32` file; each shaped as `meta.json`'s `sample_shape` list), `labels.i32` and
    /// `order.i32`.
    pub fn load(dir: PathBuf, inputs: &str, sample_shape: &str) -> Networks {
        let text = fs::read_to_string(dir.join("meta.json")).unwrap();
        let meta: Value = serde_json::from_str(&text).unwrap();
        // Token ids (`.i32`) are held as f32, whole numbers and exact, like other inputs.
        let values = if inputs.ends_with(".i32") {
            i32s_in(&dir, inputs)
                .into_iter()
                .map(|id| id as f32)
                .collect()
        } else {
            f32s_in(&dir, inputs)
        };
        let fixture = Networks {
            inputs: values,
            labels: i32s_in(&dir, "labels.i32"),
            order: i32s_in(&dir, "order.i32"),
            meta,
            dir,
        };
        let samples = usize_of(&fixture.meta, "samples");
        let per_sample: usize = numbers(&fixture.meta[sample_shape])
            .iter()
            .map(|&d| d as usize)
            .product();
        assert_eq!(fixture.inputs.len(), samples * per_sample, "{inputs}");
        assert_eq!(fixture.labels.len(), samples);
        assert_eq!(
            fixture.order.len(),
            fixture.steps() * fixture.batch(),
            "order.i32"
        );
        fixture
    }

    pub fn batch(&self) -> usize {
        usize_of(&self.meta, "batch")
    }

    pub fn steps(&self) -> usize {
        usize_of(&self.meta, "steps")
    }

    pub fn network(&self, net: &str) -> &Value {
        let value = &self.meta["networks"][net];
        assert!(value.is_object(), "meta.json: no network {net}");
        value
    }

    pub fn peer(&self, net: &str, peer: &str) -> &Value {
        let value = &self.network(net)["peers"][peer];
        assert!(value.is_object(), "meta.json: no {peer} run of {net}");
        value
    }

    pub fn losses(&self, net: &str, peer: &str) -> Vec<f64> {
        numbers(&self.peer(net, peer)["losses"])
    }

    /// A peer's weights after the last step (the f64 run's rounded to f32), by parameter name.
    pub fn final_weights(&self, net: &str, peer: &str) -> Vec<(String, Vec<f32>)> {
        let file = self.peer(net, peer)["final_weights"].as_str().unwrap();
        split(self.network(net), &f32s_in(&self.dir, file))
    }

    /// Checks and compiles `net`'s program (from `meta.json`; its fit must be the fixture's
    /// Adam and batch, its input one fixture sample) and loads the fixture's initial weights by
    /// parameter name: every parameter of the step must be in the fixture and every fixture
    /// parameter in the step (as a parameter or a state).
    pub fn trainer(&self, net: &str) -> Trainer {
        let network = self.network(net);
        let source = network["program"].as_str().unwrap();
        let mut trainer = Trainer::new(source, self.batch());
        assert_eq!(
            trainer.fit.optimizer,
            expected_optimizer(&self.meta),
            "{net}: the program's optimizer is not the fixture's"
        );
        let input = &trainer.graph.inputs[0].ty.shape;
        assert_eq!(
            trainer.input_width(),
            self.inputs.len() / self.labels.len(),
            "{net}: the model's input {input:?} is not a fixture sample"
        );
        let initial = network["initial_weights"].as_str().unwrap();
        let weights = split(network, &f32s_in(&self.dir, initial));
        for param in &trainer.graph.params {
            assert!(
                weights.iter().any(|(name, _)| *name == param.name),
                "{net}: the step's parameter {} is not in the fixture",
                param.name
            );
        }
        for (name, values) in &weights {
            trainer.set(name, values);
        }
        trainer
    }
}

pub fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("meta.json: not a list: {value}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// A weights file's values per parameter, in `meta.json`'s order.
pub fn split(network: &Value, values: &[f32]) -> Vec<(String, Vec<f32>)> {
    assert_eq!(values.len(), usize_of(network, "weights"));
    network["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let (offset, len) = (usize_of(p, "offset"), usize_of(p, "len"));
            let shape = numbers(&p["shape"]);
            assert_eq!(shape.iter().product::<f64>() as usize, len);
            let name = p["name"].as_str().unwrap().to_string();
            (name, values[offset..offset + len].to_vec())
        })
        .collect()
}

/// Adam as the peers ran it, in Keras's form.
pub fn expected_optimizer(meta: &Value) -> Optimizer {
    let adam = &meta["adam"];
    let number = |key: &str| ArgValue::Number(adam[key].as_f64().unwrap());
    Optimizer::new(
        &optimizer::ADAM,
        &[
            ("lr", number("lr")),
            ("beta1", number("beta1")),
            ("beta2", number("beta2")),
            ("eps", number("eps")),
            ("profile", ArgValue::Choice("keras")),
        ],
    )
}

/// Which of a fixture's runs a test holds Kiln to.
pub struct Peers<'a> {
    /// PyTorch in float32: matched at every step until it leaves `tolerance` of `exact`.
    pub peer: &'a str,
    /// The same in float64: matched at every step.
    pub exact: &'a str,
    /// Printed, not asserted.
    pub references: &'a [&'a str],
    /// Largest relative difference per step.
    pub tolerance: f64,
}

/// Compares Kiln's per-step losses with the peer and the exact run (asserted) and the references
/// (printed), and checks that training moved: the loss fell at least half as far as the peer's.
/// Returns, for each run, the largest absolute difference between its final weights and the
/// trainer's, with the parameter where it is.
pub fn compare_losses(
    fixture: &Networks,
    net: &str,
    kiln: &[f64],
    trainer: &Trainer,
    runs: &Peers,
) -> Vec<(String, f32, String)> {
    let Peers {
        peer: peer_name,
        exact: exact_name,
        references,
        tolerance,
    } = *runs;
    assert!(
        kiln.iter().all(|l| l.is_finite()),
        "{net}: non-finite loss: {kiln:?}"
    );
    // How long the float32 peer stays within the tolerance of its own float64 run.
    let (peer, exact) = (
        fixture.losses(net, peer_name),
        fixture.losses(net, exact_name),
    );
    let horizon = peer
        .iter()
        .zip(&exact)
        .position(|(p, e)| (p - e).abs() / e.abs() > tolerance)
        .unwrap_or(peer.len());
    println!(
        "{net}: {peer_name} stays within {tolerance:e} of {exact_name} for {horizon} of {} steps",
        peer.len()
    );
    let names: Vec<&str> = [peer_name, exact_name]
        .into_iter()
        .chain(references.iter().copied().filter(|r| *r != exact_name))
        .collect();
    let mut failure = None;
    for &name in &names {
        let theirs = fixture.losses(net, name);
        let steps = if name == peer_name {
            horizon
        } else {
            kiln.len()
        };
        let a = agreement(&kiln[..steps], &theirs[..steps]);
        let s = a.worst_step - 1;
        let line = format!(
            "{net} vs {name} over {steps} steps: max relative difference {:.2e} at step {} \
             (Kiln {:.7}, peer {:.7}); means differ by {:.2e} relative",
            a.worst, a.worst_step, kiln[s], theirs[s], a.mean
        );
        println!("{line}");
        if [peer_name, exact_name].contains(&name) && a.worst > tolerance {
            failure = Some(line);
        }
    }
    let finals = names
        .iter()
        .map(|&peer| {
            let (worst, name) = fixture
                .final_weights(net, peer)
                .iter()
                .map(|(name, theirs)| {
                    let ours = trainer.values(name);
                    let d = ours
                        .iter()
                        .zip(theirs)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    (d, name.clone())
                })
                .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
            println!("{net} final weights vs {peer}: max absolute difference {worst:.2e} ({name})");
            (peer.to_string(), worst, name)
        })
        .collect();
    if let Some(line) = failure {
        panic!("per-step tolerance {tolerance:e}: {line}");
    }
    let theirs = fixture.losses(net, peer_name);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let n = kiln.len();
    let fell = mean(&kiln[..10]) - mean(&kiln[n - 10..]);
    let peer_fell = mean(&theirs[..10]) - mean(&theirs[n - 10..]);
    assert!(
        fell > 0.5 * peer_fell && peer_fell > 0.0,
        "{net}: the loss fell by {fell} over the run, the peer's by {peer_fell}"
    );
    finals
}

/// Trains `trainer` on every batch of the fixture in order: each step's loss.
pub fn train_all(fixture: &Networks, trainer: &mut Trainer) -> Vec<f64> {
    fixture
        .order
        .chunks_exact(fixture.batch())
        .enumerate()
        .map(|(t, rows)| trainer.run_step(t + 1, &fixture.inputs, &fixture.labels, rows))
        .collect()
}
