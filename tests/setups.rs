//! Training setups against a hand-written reference, as `tests/optimizers.rs` checks the
//! optimizers: weight regularizers, gradient clipping and class weights. A softmax classifier of
//! one dense layer is trained a few steps by its compiled step (through the real front end) and
//! by a float64 transcription of Keras's formulas below; every step's loss and the final weights
//! must agree.

mod parity_fixture;

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
    class_weight: Option<[f64; CLASSES]>,
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
            let w = s.class_weight.map_or(1.0, |cw| cw[label]);
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
            *v = s.momentum * *v - s.lr * g;
            *p += *v;
        }
    }
    (losses, kernel, bias)
}

/// Trains `source` from the same weights on the same batches: each step's loss, the final kernel
/// and bias.
fn kiln(source: &str) -> (Vec<f64>, Vec<f32>, Vec<f32>) {
    let (x, y) = data();
    let (kernel, bias) = initial();
    let mut trainer = Trainer::new(source, BATCH);
    trainer.set("dense.kernel", &kernel);
    trainer.set("dense.bias", &bias);
    let losses = (0..STEPS)
        .map(|step| {
            let rows: Vec<i32> = (0..BATCH)
                .map(|i| ((step % 2) * BATCH + i) as i32)
                .collect();
            trainer.run_step(step + 1, &x, &y, &rows)
        })
        .collect();
    let kernel = trainer.values("dense.kernel").to_vec();
    let bias = trainer.values("dense.bias").to_vec();
    (losses, kernel, bias)
}

fn agree(what: &str, setup: Setup, source: &str) {
    let (want_losses, want_kernel, want_bias) = reference(setup);
    let (losses, kernel, bias) = kiln(source);
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
