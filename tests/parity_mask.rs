//! Keras's masking (issue 17): `embedding(mask_zero: true)` through the recurrent layers,
//! self-attention and `global_average_pooling1d`, held to Keras 3 on padded token sequences
//! (padding at the end, at the start, in the middle, none), and `bidirectional` with its merge
//! modes and Keras 3's weight names. From the same weights, the model's output, the loss and the
//! gradient of every weight (the embedding's included) agree with what Keras computes. The
//! cross-attention networks attend from one sequence to another (and a third as the key).
//!
//! The fixture `tests/fixtures/parity_mask/fixture.json` is written once by
//! `bench/parity/make_mask_fixture.py`; the reference interpreter runs Kiln's side here (the
//! compiled scan is held to the interpreter in `tests/jit_ops.rs`).

use std::path::Path;

use kiln::driver::{self, GraphStage};
use kiln::interp::{self, Bindings};
use kiln::ir::graph::Graph;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// Keras runs in float32; the interpreter in float64.
const TOLERANCE: f64 = 2e-5;

fn fixture() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity_mask/fixture.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        v => vec![v.as_f64().unwrap()],
    }
}

fn close(what: &str, kiln: &[f64], keras: &[f64]) {
    let worst = kiln
        .iter()
        .zip(keras)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("{what}: largest difference {worst:e}");
    assert_eq!(kiln.len(), keras.len(), "{what}: sizes");
    for (i, (a, b)) in kiln.iter().zip(keras).enumerate() {
        assert!(
            (a - b).abs() <= TOLERANCE * (1.0 + b.abs()),
            "{what}[{i}]: Kiln {a}, Keras {b}"
        );
    }
}

fn check(net: &str) {
    let fixture = fixture();
    let network = &fixture["networks"][net];
    // The cross-attention networks read their own, longer rows of ids.
    let ids = numbers(network.get("ids").unwrap_or(&fixture["ids"]));
    let labels = numbers(&fixture["labels"]);
    let batch = labels.len();
    let source = format!(
        "{}\ndata d = npy(features: \"ids.npy\", labels: \"labels.npy\")\n\n\
         fit {net} on d {{\n    loss sparse_categorical_crossentropy\n    batch {batch}\n}}\n",
        network["program"].as_str().unwrap()
    );
    let checked = driver::check_source(&source).unwrap_or_else(|d| panic!("{d:?}"));
    let program = &checked.program;
    let weights = network["weights"].as_array().unwrap();
    let bind = |graph: &Graph| {
        assert_eq!(graph.params.len(), weights.len(), "{net}: parameter count");
        let params = graph
            .params
            .iter()
            .map(|p| {
                let w = weights
                    .iter()
                    .find(|w| w["name"] == p.name.as_str())
                    .unwrap_or_else(|| panic!("{net}: no weight {} in the fixture", p.name));
                let shape: Vec<usize> = numbers(&w["shape"]).iter().map(|&d| d as usize).collect();
                ArrayD::from_shape_vec(IxDyn(&shape), numbers(&w["values"])).unwrap()
            })
            .collect();
        let inputs = graph
            .inputs
            .iter()
            .map(|input| {
                let shape = input.ty.shape.resolve(batch);
                let values = match input.name.as_str() {
                    "x" => ids.clone(),
                    "labels" => labels.clone(),
                    other => panic!("{net}: an input {other} the test does not feed"),
                };
                ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap()
            })
            .collect();
        Bindings {
            inputs,
            params,
            states: Vec::new(),
        }
    };
    let forward = &program.models[0].forward;
    let output = interp::step(forward, &bind(forward), batch).unwrap();
    let output = output.output("output").expect("the model's output");
    close(
        &format!("{net} output"),
        &output.iter().copied().collect::<Vec<_>>(),
        &numbers(&network["output"]),
    );
    let graph = driver::training_graph(program, &program.fits[0], GraphStage::Gradients).unwrap();
    let result = interp::step(&graph, &bind(&graph), batch).unwrap();
    let loss = result
        .output("loss")
        .unwrap()
        .iter()
        .copied()
        .next()
        .unwrap();
    close(
        &format!("{net} loss"),
        &[loss],
        &[network["loss"].as_f64().unwrap()],
    );
    for g in &graph.gradients {
        let name = &graph.params[g.param].name;
        let w = weights.iter().find(|w| w["name"] == name.as_str()).unwrap();
        let kiln = &result.gradients[graph
            .gradients
            .iter()
            .position(|x| x.param == g.param)
            .unwrap()];
        close(
            &format!("{net} gradient of {name}"),
            &kiln.iter().copied().collect::<Vec<_>>(),
            &numbers(&w["gradient"]),
        );
    }
}

#[test]
fn masked_lstm_then_backward_gru_match_keras() {
    check("lstm_gru");
}

#[test]
fn masked_simple_rnn_and_average_pooling_match_keras() {
    check("rnn_pool");
}

/// Two `bidirectional` layers on masked sequences: Keras's weight names, the backward copy's
/// sequence flipped back into time order, padded steps 0 in a returned sequence (Keras's
/// `Bidirectional` sets `zero_output_for_mask`), and `merge_mode: "sum"`.
#[test]
fn masked_bidirectional_layers_match_keras() {
    check("bi_mask");
}

/// `bidirectional`'s `mul` and `ave` merges, without a mask.
#[test]
fn bidirectional_merge_modes_match_keras() {
    check("bi_modes");
}

/// Self-attention on masked sequences: padded keys get no weight, a padded query's row of
/// weights is 0 (Keras 3's masked softmax), and the result keeps the mask for the pooling.
#[test]
fn masked_attention_matches_keras() {
    check("attention_mask");
}

/// The padding mask together with the causal one, then a masked LSTM.
#[test]
fn masked_causal_attention_matches_keras() {
    check("attention_causal");
}

/// Cross-attention (Keras's `mha(query, value)`): 7 unmasked queries attend to a masked value of
/// 17 steps; padded keys get no weight.
#[test]
fn masked_cross_attention_matches_keras() {
    check("cross");
}

/// A separate key (`mha(query, value, key)`) of another width whose own mask applies, `value_dim`,
/// and the causal mask between 7 queries and 17 keys (Keras's lower triangle from the top left:
/// the later keys are never seen), then an LSTM. Some queries see only padded keys: their
/// weights are 0 (Keras's masked softmax; see the fixture's generator).
#[test]
fn cross_attention_with_a_masked_key_and_causal_mask_matches_keras() {
    check("cross_key_causal");
}

/// The causal mask between 17 masked queries and 5 keys (the last queries see every key); the
/// padded queries' rows, flattened into the dense layer, are the output projection's bias.
#[test]
fn causal_cross_attention_to_fewer_keys_matches_keras() {
    check("causal_fewer_keys");
}
