//! Training setups against a hand-written reference, as `tests/optimizers.rs` checks the
//! optimizers: weight regularizers, gradient clipping and class weights. A softmax classifier of
//! one dense layer is trained a few steps by its compiled step (through the real front end) and
//! by a float64 transcription of Keras's formulas below; every step's loss and the final weights
//! must agree.

mod parity_fixture;

mod common;

use kiln::ir::lower;
use parity_fixture::Trainer;

const FEATURES: usize = 4;
const CLASSES: usize = 3;
const BATCH: usize = 4;
const STEPS: usize = 6;

/// Eight samples whose batches alternate (rows 0–3, then 4–7).
fn data() -> (Vec<f32>, Vec<i32>) {
    let features = (0..8 * FEATURES)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    let labels = vec![0, 2, 1, 2, 1, 0, 2, 2];
    (features, labels)
}

fn initial() -> (Vec<f32>, Vec<f32>) {
    let kernel = (0..FEATURES * CLASSES)
        .map(|i| ((i * 13 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let bias = vec![0.1, -0.2, 0.0];
    (kernel, bias)
}

/// What the reference applies: Keras's formulas for each piece.
#[derive(Default, Clone, Copy)]
struct Setup {
    kernel_l1: f64,
    kernel_l2: f64,
    bias_l1: f64,
    bias_l2: f64,
    lr: f64,
    momentum: f64,
    clipnorm: Option<f64>,
    clipvalue: Option<f64>,
    global_clipnorm: Option<f64>,
    /// Keras's decoupled `weight_decay`: `p −= p · wd · lr` before the update.
    weight_decay: Option<f64>,
    class_weight: Option<[f64; CLASSES]>,
    /// Per-sample weights, one per sample of `data()`.
    sample_weight: Option<[f64; 8]>,
}

/// The setup's program: `layer` is the dense layer's call, `optimizer` and `extra` go in the fit.
fn program(layer: &str, optimizer: &str, extra: &str) -> String {
    format!(
        "data train = synthetic_classification(samples: 8, features: {FEATURES}, classes: {CLASSES}, seed: 1)\n\
         model m(x: f32[B, {FEATURES}]) -> f32[B, {CLASSES}] {{\n    {layer}\n}}\n\
         fit m on train {{\n    loss sparse_categorical_crossentropy\n    optimizer {optimizer}\n    \
         batch {BATCH}\n    {extra}\n}}\n"
    )
}

/// Each step's loss and the final kernel and bias, by Keras's formulas in float64: the batch's
/// weighted cross-entropy (`Σ wᵢ·ceᵢ / B`) plus the penalties, its gradient, clipping, then SGD
/// with momentum (`v = μv − lr·g`, `p += v`).
fn reference(s: Setup) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (x, y) = data();
    let (k, b) = initial();
    let mut kernel: Vec<f64> = k.iter().map(|&v| f64::from(v)).collect();
    let mut bias: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
    let (mut vk, mut vb) = (vec![0.0; kernel.len()], vec![0.0; bias.len()]);
    let sign = |v: f64| (v > 0.0) as i32 as f64 - (v < 0.0) as i32 as f64;
    let mut losses = Vec::new();
    for step in 0..STEPS {
        let rows: Vec<usize> = (0..BATCH).map(|i| (step % 2) * BATCH + i).collect();
        let mut loss = 0.0;
        let mut gk = vec![0.0; kernel.len()];
        let mut gb = vec![0.0; bias.len()];
        for &r in &rows {
            let xr: Vec<f64> = (0..FEATURES)
                .map(|f| f64::from(x[r * FEATURES + f]))
                .collect();
            let z: Vec<f64> = (0..CLASSES)
                .map(|c| {
                    bias[c]
                        + (0..FEATURES)
                            .map(|f| xr[f] * kernel[f * CLASSES + c])
                            .sum::<f64>()
                })
                .collect();
            let max = z.iter().cloned().fold(f64::MIN, f64::max);
            let total: f64 = z.iter().map(|v| (v - max).exp()).sum();
            let p: Vec<f64> = z.iter().map(|v| (v - max).exp() / total).collect();
            let label = y[r] as usize;
            let w = s.class_weight.map_or(1.0, |cw| cw[label])
                * s.sample_weight.map_or(1.0, |sw| sw[r]);
            loss += -w * p[label].ln() / BATCH as f64;
            for c in 0..CLASSES {
                let dz = w * (p[c] - (c == label) as i32 as f64) / BATCH as f64;
                gb[c] += dz;
                for f in 0..FEATURES {
                    gk[f * CLASSES + c] += xr[f] * dz;
                }
            }
        }
        for (g, &w) in gk.iter_mut().zip(&kernel) {
            loss += s.kernel_l1 * w.abs() + s.kernel_l2 * w * w;
            *g += s.kernel_l1 * sign(w) + 2.0 * s.kernel_l2 * w;
        }
        for (g, &w) in gb.iter_mut().zip(&bias) {
            loss += s.bias_l1 * w.abs() + s.bias_l2 * w * w;
            *g += s.bias_l1 * sign(w) + 2.0 * s.bias_l2 * w;
        }
        losses.push(loss);
        let norm = |g: &[f64]| g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if let Some(c) = s.clipnorm {
            for g in [&mut gk, &mut gb] {
                let scale = c / norm(g).max(c);
                g.iter_mut().for_each(|v| *v *= scale);
            }
        }
        if let Some(c) = s.global_clipnorm {
            let all = (norm(&gk).powi(2) + norm(&gb).powi(2)).sqrt();
            let scale = c / all.max(c);
            gk.iter_mut().chain(gb.iter_mut()).for_each(|v| *v *= scale);
        }
        if let Some(c) = s.clipvalue {
            (gk.iter_mut().chain(gb.iter_mut())).for_each(|v| *v = v.clamp(-c, c));
        }
        for (p, (v, g)) in (kernel.iter_mut().chain(bias.iter_mut()))
            .zip(vk.iter_mut().chain(vb.iter_mut()).zip(gk.iter().chain(&gb)))
        {
            if let Some(wd) = s.weight_decay {
                *p -= *p * wd * s.lr;
            }
            *v = s.momentum * *v - s.lr * g;
            *p += *v;
        }
    }
    (losses, kernel, bias)
}

/// Trains `source` from the same weights on the same batches: each step's loss, the final kernel
/// and bias.
fn kiln(source: &str, sample_weight: Option<[f64; 8]>) -> (Vec<f64>, Vec<f32>, Vec<f32>) {
    let (x, y) = data();
    let (kernel, bias) = initial();
    let mut trainer = Trainer::new(source, BATCH);
    trainer.set("dense.kernel", &kernel);
    trainer.set("dense.bias", &bias);
    let weights_slot = (trainer.graph.inputs.iter()).position(|i| i.name == lower::SAMPLE_WEIGHTS);
    assert_eq!(weights_slot.is_some(), sample_weight.is_some());
    let losses = (0..STEPS)
        .map(|step| {
            let rows: Vec<i32> = (0..BATCH)
                .map(|i| ((step % 2) * BATCH + i) as i32)
                .collect();
            // The runtime feeds each batch's weights as it feeds its labels.
            if let (Some(slot), Some(weights)) = (weights_slot, sample_weight) {
                let dst = trainer.step.input_f32_mut(slot, BATCH);
                for (d, &r) in dst.iter_mut().zip(&rows) {
                    *d = weights[r as usize] as f32;
                }
            }
            trainer.run_step(step + 1, &x, &y, &rows)
        })
        .collect();
    let kernel = trainer.values("dense.kernel").to_vec();
    let bias = trainer.values("dense.bias").to_vec();
    (losses, kernel, bias)
}

fn agree(what: &str, setup: Setup, source: &str) {
    let (want_losses, want_kernel, want_bias) = reference(setup);
    let (losses, kernel, bias) = kiln(source, setup.sample_weight);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1e-2);
    for (step, (a, b)) in losses.iter().zip(&want_losses).enumerate() {
        assert!(close(*a, *b), "{what}: step {} loss {a} vs {b}", step + 1);
    }
    let weights = kernel.iter().chain(&bias).map(|&v| f64::from(v));
    let want = want_kernel.iter().chain(&want_bias);
    for (i, (a, b)) in weights.zip(want).enumerate() {
        assert!(close(a, *b), "{what}: weight {i} {a} vs {b}");
    }
    // The reference without the setup differs, so the comparison saw it act.
    let plain = reference(Setup {
        lr: setup.lr,
        momentum: setup.momentum,
        ..Setup::default()
    });
    let moved = (plain.1.iter().chain(&plain.2))
        .zip(want_kernel.iter().chain(&want_bias))
        .any(|(a, b)| (a - b).abs() > 1e-4);
    assert!(moved, "{what}: the setup changed nothing");
}

#[test]
fn regularizers_add_keras_penalties_to_loss_and_gradient() {
    let setup = Setup {
        kernel_l2: 0.05,
        bias_l1: 0.02,
        lr: 0.5,
        ..Setup::default()
    };
    let source = program(
        "dense(3, softmax, kernel_regularizer: l2(0.05), bias_regularizer: L1(l1: 0.02))",
        "sgd(lr: 0.5)",
        "",
    );
    agree("l2 kernel, l1 bias", setup, &source);
    let setup = Setup {
        kernel_l1: 0.01,
        kernel_l2: 0.01,
        bias_l2: 0.3,
        lr: 0.2,
        momentum: 0.9,
        ..Setup::default()
    };
    let source = program(
        "dense(3, softmax, kernel_regularizer: \"l1_l2\", bias_regularizer: l2(0.3))",
        "sgd(lr: 0.2, momentum: 0.9)",
        "",
    );
    agree("l1_l2 kernel, l2 bias, momentum", setup, &source);
}

#[test]
fn gradient_clipping_follows_keras() {
    let base = Setup {
        lr: 0.5,
        momentum: 0.9,
        ..Setup::default()
    };
    let layer = "dense(3, softmax)";
    agree(
        "clipnorm",
        Setup {
            clipnorm: Some(0.1),
            ..base
        },
        &program(layer, "sgd(lr: 0.5, momentum: 0.9, clipnorm: 0.1)", ""),
    );
    agree(
        "global_clipnorm",
        Setup {
            global_clipnorm: Some(0.15),
            ..base
        },
        &program(
            layer,
            "sgd(lr: 0.5, momentum: 0.9, global_clipnorm: 0.15)",
            "",
        ),
    );
    agree(
        "clipvalue",
        Setup {
            clipvalue: Some(0.02),
            ..base
        },
        &program(layer, "sgd(lr: 0.5, momentum: 0.9, clipvalue: 0.02)", ""),
    );
    // Clipping with a regularizer: the penalty's gradient is clipped with the loss's.
    agree(
        "clipnorm with l2",
        Setup {
            clipnorm: Some(0.1),
            kernel_l2: 0.1,
            ..base
        },
        &program(
            "dense(3, softmax, kernel_regularizer: l2(0.1))",
            "sgd(lr: 0.5, momentum: 0.9, clipnorm: 0.1)",
            "",
        ),
    );
}

/// Keras 3's `weight_decay` on any optimizer: each parameter decays by `p · wd · lr` before
/// the update (after clipping, which acts on the gradients only), without entering the loss.
#[test]
fn weight_decay_follows_keras() {
    let layer = "dense(3, softmax)";
    agree(
        "sgd weight_decay",
        Setup {
            lr: 0.5,
            momentum: 0.9,
            weight_decay: Some(0.2),
            ..Setup::default()
        },
        &program(layer, "sgd(lr: 0.5, momentum: 0.9, weight_decay: 0.2)", ""),
    );
    agree(
        "weight_decay with clipnorm and l2",
        Setup {
            lr: 0.5,
            momentum: 0.9,
            weight_decay: Some(0.2),
            clipnorm: Some(0.1),
            kernel_l2: 0.01,
            ..Setup::default()
        },
        &program(
            "dense(3, softmax, kernel_regularizer: l2(0.01))",
            "sgd(lr: 0.5, momentum: 0.9, weight_decay: 0.2, clipnorm: 0.1)",
            "",
        ),
    );
}

#[test]
fn class_weight_weighs_each_samples_loss_by_its_class() {
    let setup = Setup {
        class_weight: Some([1.0, 4.0, 0.5]),
        lr: 0.5,
        momentum: 0.9,
        ..Setup::default()
    };
    let source = program(
        "dense(3, softmax)",
        "sgd(lr: 0.5, momentum: 0.9)",
        "class_weight [1.0, 4, 0.5]",
    );
    agree("class_weight", setup, &source);
    // With a regularizer and clipping, all three together.
    let setup = Setup {
        kernel_l2: 0.02,
        clipvalue: Some(0.05),
        ..setup
    };
    let source = program(
        "dense(3, softmax, kernel_regularizer: l2(0.02))",
        "sgd(lr: 0.5, momentum: 0.9, clipvalue: 0.05)",
        "class_weight [1.0, 4, 0.5]",
    );
    agree("class_weight, l2 and clipvalue", setup, &source);
}

/// Keras weighs only the training loss by class: evaluation, validation and prediction run the
/// same graph as without `class_weight`, while training's differs.
#[test]
fn class_weight_leaves_evaluation_unweighted() {
    use kiln::driver::{self, GraphStage};
    let graphs = |extra: &str| {
        let source = program("dense(3, softmax)", "sgd", extra);
        let checked = driver::check_source(&source).unwrap_or_else(|d| panic!("{d:?}"));
        let (program, fit) = (&checked.program, &checked.program.fits[0]);
        (
            driver::inference_graph(program, fit).unwrap(),
            driver::training_graph(program, fit, GraphStage::Forward).unwrap(),
        )
    };
    let (weighted_eval, weighted_train) = graphs("class_weight [2, 1, 1]");
    // A comment as long as the setting, so that the fit's span (which every loss node records)
    // is the same.
    let (plain_eval, plain_train) = graphs(&format!("# {}", "x".repeat(20)));
    assert_eq!(weighted_eval, plain_eval);
    assert_ne!(weighted_train, plain_train);
}

/// A data set's `weight` column (Keras's `sample_weight`) weighs each sample's loss, times its
/// class's weight when both are given, as Keras multiplies them.
#[test]
fn sample_weights_from_the_data_weigh_each_samples_loss() {
    let weights = [1.0, 0.0, 2.5, 1.0, 0.5, 3.0, 1.0, 0.25];
    let csv = |extra: &str| {
        program("dense(3, softmax)", "sgd(lr: 0.5, momentum: 0.9)", extra).replace(
            "synthetic_classification(samples: 8, features: 4, classes: 3, seed: 1)",
            "csv(\"d.csv\", label: \"y\", weight: \"w\")",
        )
    };
    let setup = Setup {
        sample_weight: Some(weights),
        lr: 0.5,
        momentum: 0.9,
        ..Setup::default()
    };
    agree("sample weights", setup, &csv(""));
    let setup = Setup {
        class_weight: Some([2.0, 1.0, 0.5]),
        ..setup
    };
    agree(
        "sample and class weights",
        setup,
        &csv("class_weight [2, 1, 0.5]"),
    );
}

/// A CSV of 40 rows: two features and a class label 0–2, with a weight column `w` (each
/// `weight`) when one is given.
fn weighted_csv(weight: Option<&str>) -> String {
    let mut text = String::from(if weight.is_some() {
        "a,y,w,b\n"
    } else {
        "a,y,b\n"
    });
    for i in 0..40 {
        let (a, b) = ((i * 7 % 13) as f32 / 13.0, (i * 5 % 11) as f32 / 11.0);
        let w = weight.map_or(String::new(), |w| format!("{w},"));
        text.push_str(&format!("{a},{},{w}{b}\n", i % 3));
    }
    text
}

/// End to end from a file: the weight column is not a feature, the validation split keeps its
/// rows' weights, and a fit that weighs samples weighs `evaluate` too (Keras's
/// `evaluate(sample_weight=…)`): every weight 2 doubles the loss of the same rows unweighted.
#[test]
fn a_weight_column_trains_and_weighs_evaluation() {
    use kiln::driver::{self, Event};
    let dir = common::scratch(
        "weights",
        &[
            ("w2.csv", &weighted_csv(Some("2"))),
            ("plain.csv", &weighted_csv(None)),
        ],
    );
    let source = "data weighted = csv(\"w2.csv\", label: \"y\", weight: \"w\")\n\
                  data plain = csv(\"plain.csv\", label: 1)\n\
                  model m(x: f32[B, 2]) -> f32[B, 3] {\n    dense(3, softmax)\n}\n\
                  fit m on weighted {\n    loss sparse_categorical_crossentropy\n    \
                  validation_split 0.25\n    epochs 2\n}\n\
                  evaluate m on weighted\nevaluate m on plain\n";
    let mut losses = Vec::new();
    let outcomes = driver::run(source, &dir, &mut |event| {
        if let Event::Evaluated { evaluation, .. } = event {
            losses.push(evaluation.loss);
        }
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let history = &outcomes[0].history;
    assert!(history.iter().all(|e| e.loss.is_finite()));
    assert_eq!(history[0].validation.as_ref().unwrap().samples, 10);
    assert_eq!(losses.len(), 2);
    assert!(
        (losses[0] - 2.0 * losses[1]).abs() < 1e-5 * losses[1],
        "{losses:?}"
    );
}

/// A weight that is not a number zero or more is an error naming its line and column; so is a
/// weight column that turns out to be the label column.
#[test]
fn bad_weights_are_data_errors_naming_the_cell() {
    use kiln::driver::{self, RunError};
    let mut lines: Vec<String> = weighted_csv(Some("1")).lines().map(String::from).collect();
    lines[5] = "0.5,1,-0.5,0.25".to_string();
    let bad = lines.join("\n") + "\n";
    let dir = common::scratch(
        "bad_weights",
        &[("bad.csv", &bad), ("ok.csv", &weighted_csv(Some("1")))],
    );
    let run = |data: &str| {
        let source = format!(
            "data d = {data}\nmodel m(x: f32[B, 2]) -> f32[B, 3] {{\n    dense(3, softmax)\n}}\n\
             fit m on d {{\n    loss sparse_categorical_crossentropy\n}}\n"
        );
        match driver::run(&source, &dir, &mut |_| {}) {
            Err(RunError::Data(e)) => e.to_string(),
            Err(RunError::Program(d)) => panic!("{d:?}"),
            Ok(_) => panic!("{data} trained"),
        }
    };
    let message = run("csv(\"bad.csv\", label: \"y\", weight: \"w\")");
    assert!(
        message.contains("line 6") && message.contains("column 3") && message.contains("-0.5"),
        "{message}"
    );
    let message = run("csv(\"ok.csv\", weight: 3)");
    assert!(
        message.contains("weight column is the label column"),
        "{message}"
    );
}
