//! `kiln export`: the ONNX file of a bundle, loaded and run by tract (a pure-Rust ONNX runtime,
//! independent of Kiln), gives the probabilities `kiln predict` gives on the same data, to 1e-5
//! relative: the seed MLP, an MNIST-shaped MLP with standardized inputs and dropout, small
//! convnets (2-D and 1-D convolution, pooling, normalization, reshaping layers), and recurrent
//! and attention layers (ONNX's `LSTM`, `GRU` and `RNN` ops, a causal softmax).

mod common;

use common::{kiln, kiln_ok, path, scratch, text};
use std::path::Path;
use tract_onnx::prelude::*;

/// `rows` samples of `features` values in [-2, 2) and a class label below `classes`, as CSV
/// with a header, from a fixed linear congruential sequence.
fn samples_csv(rows: usize, features: usize, classes: usize) -> (String, Vec<f32>) {
    let mut state = 0x2545_f491_u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let header: Vec<String> = (0..features).map(|i| format!("f{i}")).collect();
    let mut csv = format!("{},label\n", header.join(","));
    let mut values = Vec::new();
    for row in 0..rows {
        let x: Vec<f32> = (0..features).map(|_| next() * 4.0 - 2.0).collect();
        let cells: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        csv.push_str(&format!("{},{}\n", cells.join(","), row % classes));
        values.extend(x);
    }
    (csv, values)
}

/// The probability columns of `kiln predict`'s CSV, row by row.
fn probabilities(csv: &str) -> Vec<f32> {
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let columns = header.split(',').filter(|c| c.starts_with("prob_")).count();
    lines
        .flat_map(|l| {
            l.split(',')
                .take(columns)
                .map(|c| c.parse::<f32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs the ONNX file on `x` (`shape`: the batch first) with tract.
fn run_onnx(file: &Path, shape: &[usize], x: Vec<f32>) -> Vec<f32> {
    let model = tract_onnx::onnx()
        .model_for_path(file)
        .unwrap()
        .with_input_fact(0, f32::fact(shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(shape, &x).unwrap();
    let outputs = model.run(tvec!(input.into_tvalue())).unwrap();
    let view = outputs[0].to_plain_array_view::<f32>().unwrap();
    view.iter().copied().collect()
}

/// Trains `program` (which saves `m.kiln`), predicts `rows` generated samples with the bundle,
/// exports it, runs the ONNX file on the same samples and compares; returns the largest
/// relative difference.
fn exported_matches_predict(test: &str, program: &str, sample: &[usize], classes: usize) -> f32 {
    let dir = scratch(test, &[("p.model", program)]);
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let rows = 24;
    let features: usize = sample.iter().product();
    let (csv, x) = samples_csv(rows, features, classes);
    std::fs::write(dir.join("test.csv"), csv).unwrap();
    let bundle = path(&dir, "m.kiln");
    kiln_ok(&[
        "predict",
        &bundle,
        &path(&dir, "test.csv"),
        "-o",
        &path(&dir, "p.csv"),
    ]);
    let expected = probabilities(&std::fs::read_to_string(dir.join("p.csv")).unwrap());
    let said = kiln_ok(&["export", &bundle, "-o", &path(&dir, "m.onnx")]);
    assert!(said.contains("ONNX opset 17"), "{said}");
    let shape: Vec<usize> = std::iter::once(rows)
        .chain(sample.iter().copied())
        .collect();
    let found = run_onnx(&dir.join("m.onnx"), &shape, x);
    assert_eq!(found.len(), expected.len());
    let mut worst = 0.0f32;
    for (i, (a, b)) in found.iter().zip(&expected).enumerate() {
        let relative = (a - b).abs() / a.abs().max(b.abs()).max(f32::MIN_POSITIVE);
        assert!(
            relative <= 1e-5,
            "{test}: element {i}: ONNX {a}, kiln predict {b} (relative {relative:e})"
        );
        worst = worst.max(relative);
    }
    worst
}

#[test]
fn the_seed_mlp_exports() {
    let program = "data train = synthetic_classification(samples: 256, features: 32, classes: 10, seed: 7)\n\
        model classifier(x: f32[B, 32]) -> f32[B, 10] {\n    dense(64, relu)\n    dense(64, relu)\n    dense(10, softmax)\n}\n\
        fit classifier on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.001)\n    epochs 2\n    seed 7\n}\n\
        save classifier to \"m.kiln\"\n";
    exported_matches_predict("seed", program, &[32], 10);
}

#[test]
fn an_mnist_shaped_mlp_with_standardized_inputs_and_dropout_exports() {
    let program = "data train = synthetic_classification(samples: 128, features: 784, classes: 10, seed: 3)\n\
        model mlp(x: f32[B, 28, 28, 1]) -> f32[B, 10] {\n    flatten()\n    dense(128, relu)\n    dropout(0.2)\n    dense(10, softmax)\n}\n\
        fit mlp on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.001)\n    epochs 1\n    seed 3\n    standardize true\n}\n\
        save mlp to \"m.kiln\"\n";
    exported_matches_predict("mnist", program, &[28, 28, 1], 10);
}

#[test]
fn a_small_convnet_exports() {
    let program = "data train = synthetic_classification(samples: 64, features: 64, classes: 4, seed: 5)\n\
        model convnet(x: f32[B, 8, 8, 1]) -> f32[B, 4] {\n    conv2d(4, 3, relu, padding: \"same\")\n    \
        batch_normalization()\n    max_pooling2d(2)\n    zero_padding2d(1)\n    \
        conv2d(6, 3, relu, strides: 2)\n    up_sampling2d(2)\n    average_pooling2d(2, padding: \"same\")\n    \
        flatten()\n    layer_normalization()\n    dense(4, softmax)\n}\n\
        fit convnet on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 2\n    batch 16\n    seed 5\n}\n\
        save convnet to \"m.kiln\"\n";
    exported_matches_predict("convnet", program, &[8, 8, 1], 4);
}

#[test]
fn a_sequence_convnet_exports() {
    let program = "data train = synthetic_classification(samples: 64, features: 24, classes: 3, seed: 9)\n\
        model seq(x: f32[B, 12, 2]) -> f32[B, 3] {\n    conv1d(5, 3, tanh, dilation_rate: 2, padding: \"same\")\n    \
        max_pooling1d(2, strides: 1)\n    zero_padding1d(1)\n    conv1d(4, 2, gelu)\n    \
        global_average_pooling1d()\n    dense(3, softmax)\n}\n\
        fit seq on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 2\n    batch 16\n    seed 9\n}\n\
        save seq to \"m.kiln\"\n";
    exported_matches_predict("conv1d", program, &[12, 2], 3);
}

#[test]
fn recurrent_and_attention_layers_export() {
    let program = "data train = synthetic_classification(samples: 64, features: 24, classes: 3, seed: 4)\n\
        model seq(x: f32[B, 6, 4]) -> f32[B, 3] {\n    \
        let a = x + multi_head_attention(2, 3, use_causal_mask: true)(x)\n    \
        let h = lstm(5, return_sequences: true)(a)\n    \
        let g = bidirectional(gru(4, return_sequences: true), merge_mode: \"sum\")(h)\n    \
        let r = simple_rnn(3, go_backwards: true)(g)\n    \
        dense(3, softmax)(concat([r, lstm(2, go_backwards: true)(x)]))\n}\n\
        fit seq on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 2\n    batch 16\n    seed 4\n}\n\
        save seq to \"m.kiln\"\n";
    exported_matches_predict("recurrent", program, &[6, 4], 3);
}

/// Cross-attention: 6 queries attend to 4 keys of another sequence, causally (a rectangular
/// causal mask) and not.
#[test]
fn cross_attention_exports() {
    let program = "data train = synthetic_classification(samples: 64, features: 24, classes: 3, seed: 4)\n\
        model seq(x: f32[B, 6, 4]) -> f32[B, 3] {\n    \
        let v = slice(dense(5)(x), axis: 1, start: 1, end: 5)\n    \
        let a = x + multi_head_attention(2, 3, use_causal_mask: true)(x, v)\n    \
        let b = multi_head_attention(2, 3, value_dim: 2)(a, v, dense(3)(v))\n    \
        dense(3, softmax)(flatten(b))\n}\n\
        fit seq on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 2\n    batch 16\n    seed 4\n}\n\
        save seq to \"m.kiln\"\n";
    exported_matches_predict("cross_attention", program, &[6, 4], 3);
}

#[test]
fn an_op_without_an_onnx_form_is_named() {
    // The gradient of max pooling, inside the model: Kiln's own kernel, no ONNX op.
    let program = "fn peak(h) = sum(max_pooling1d(h))\n\
        model m(x: f32[B, 8, 2]) -> f32[B, 3] {\n    let g = grad(peak)(x)\n    dense(3, softmax)(flatten(g))\n}\n\
        save m to \"m.kiln\"\n";
    let dir = scratch("unsupported", &[("p.model", program)]);
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let out = kiln(&["export", &path(&dir, "m.kiln"), "-o", &path(&dir, "m.onnx")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[E0820]") && stderr.contains("`max_pool_grad`"),
        "{stderr}"
    );
    // Pointing at the source it came from, in the bundled source.
    assert!(
        stderr.contains("fn peak(h) = sum(max_pooling1d(h))"),
        "{stderr}"
    );
    assert!(!dir.join("m.onnx").exists());
    let out = kiln(&["export", &path(&dir, "m.kiln"), "-o", &path(&dir, "m.txt")]);
    assert!(text(&out.stderr).contains("must end in .onnx"));
}

#[test]
fn an_embedding_model_exports_with_integer_inputs() {
    // Token ids 0–7 in six columns; the label is whether id 7 occurs.
    let mut csv = String::from("t0,t1,t2,t3,t4,t5,label\n");
    let mut ids = Vec::new();
    for row in 0..40usize {
        let tokens: Vec<i32> = (0..6)
            .map(|k| ((row * 5 + k * 3 + row / 7) % 8) as i32)
            .collect();
        let label = usize::from(tokens.contains(&7));
        let cells: Vec<String> = tokens.iter().map(i32::to_string).collect();
        csv.push_str(&format!("{},{label}\n", cells.join(",")));
        ids.extend(tokens);
    }
    let program = "data d = csv(\"tokens.csv\", label: \"label\")\n\
        model m(tokens: i32[B, 6]) -> f32[B, 2] {\n    embedding(8, 4)\n    global_average_pooling1d()\n    dense(2, softmax)\n}\n\
        fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.05)\n    epochs 3\n    batch 8\n    seed 1\n}\n\
        save m to \"m.kiln\"\n";
    let dir = scratch("embedding", &[("p.model", program), ("tokens.csv", &csv)]);
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let bundle = path(&dir, "m.kiln");
    let predicted = kiln_ok(&["predict", &bundle, &path(&dir, "tokens.csv")]);
    let expected = probabilities(&predicted);
    kiln_ok(&["export", &bundle, "-o", &path(&dir, "m.onnx")]);
    let model = tract_onnx::onnx()
        .model_for_path(dir.join("m.onnx"))
        .unwrap()
        .with_input_fact(0, i32::fact([40, 6]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[40, 6], &ids).unwrap();
    let outputs = model.run(tvec!(input.into_tvalue())).unwrap();
    let found: Vec<f32> = (outputs[0].to_plain_array_view::<f32>().unwrap())
        .iter()
        .copied()
        .collect();
    assert_eq!(found.len(), expected.len());
    for (i, (a, b)) in found.iter().zip(&expected).enumerate() {
        let relative = (a - b).abs() / a.abs().max(b.abs()).max(f32::MIN_POSITIVE);
        assert!(relative <= 1e-5, "element {i}: ONNX {a}, kiln predict {b}");
    }
}

/// A masked scan (ONNX's recurrent ops skip only trailing padding) and activations other than
/// ONNX's defaults are not exported; the error names them.
#[test]
fn recurrences_onnx_cannot_express_are_named() {
    for (layer, named) in [
        (
            "embedding(8, 4, mask_zero: true)\n    lstm(3)",
            "a masked recurrence",
        ),
        (
            "embedding(8, 4)\n    simple_rnn(3, activation: relu)",
            "activations other than ONNX's defaults",
        ),
    ] {
        let program = format!(
            "model m(t: i32[B, 5]) -> f32[B, 2] {{\n    {layer}\n    dense(2, softmax)\n}}\n\
             save m to \"m.kiln\"\n"
        );
        let dir = scratch("recurrent_unsupported", &[("p.model", &program)]);
        kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
        let out = kiln(&["export", &path(&dir, "m.kiln"), "-o", &path(&dir, "m.onnx")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("[E0820]") && stderr.contains(named),
            "{stderr}"
        );
    }
}
