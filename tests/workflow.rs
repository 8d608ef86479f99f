//! The fit / evaluate / predict / save / load workflow through the `kiln` binary: checkpoints
//! that round-trip and resume exactly, bad checkpoints as messages, callbacks and schedules
//! doing what Keras's do, and predictions written as CSV and NPY.

mod common;

use common::{kiln, path, scratch, text};
use std::path::Path;

/// Runs `kiln run ARGS… FILE`, asserts success, returns stdout.
fn run_ok(dir: &Path, file: &str, args: &[&str]) -> String {
    let program = path(dir, file);
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push(&program);
    let out = kiln(&all);
    assert!(
        out.status.success(),
        "{file}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a program that must fail; returns stderr.
fn run_err(dir: &Path, file: &str, args: &[&str]) -> String {
    let program = path(dir, file);
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push(&program);
    let out = kiln(&all);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The weights hash on the `Trained …` line.
fn weights(stdout: &str) -> String {
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with("Trained"))
        .unwrap_or_else(|| panic!("no Trained line: {stdout}"));
    line.rsplit("(weights ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string()
}

const DATA_AND_MODEL: &str = "data train = synthetic_classification(samples: 600, features: 6, classes: 3, seed: 1)\n\
    data test = synthetic_classification(samples: 200, features: 6, classes: 3, seed: 1)\n\
    model m(x: f32[B, 6]) -> f32[B, 3] {\n    dense(12, relu)\n    dense(3, softmax)\n}\n";

fn program(fit_settings: &str, after: &str) -> String {
    format!(
        "{DATA_AND_MODEL}fit m on train {{\n    loss sparse_categorical_crossentropy\n    \
         metrics [accuracy]\n    seed 5\n{fit_settings}}}\n{after}"
    )
}

#[test]
fn resumed_training_equals_uninterrupted_training() {
    let optimizers = [
        "adam",
        "sgd(lr: 0.1)",
        "sgd(lr: 0.1, momentum: 0.9, nesterov: true)",
        "adam(lr: 0.01, profile: torch)",
        "rmsprop(momentum: 0.5, centered: true)",
        "adamw(weight_decay: 0.01)",
        "adagrad(lr: 0.05)",
        // Its momentum product is a scalar state that must resume too.
        "nadam",
    ];
    for def in kiln::settings::optimizer::OPTIMIZERS {
        assert!(
            optimizers
                .iter()
                .any(|o| o.split('(').next() == Some(def.name)),
            "`{}` is not resumed here",
            def.name
        );
    }
    for (index, optimizer) in optimizers.into_iter().enumerate() {
        let settings = |extra: &str| format!("    optimizer {optimizer}\n{extra}");
        let dir = scratch(
            &format!("resume-{index}"),
            &[
                ("straight.model", &program(&settings("    epochs 4\n"), "")),
                (
                    "first.model",
                    &program(
                        &settings("    epochs 2\n"),
                        "save m to \"half.safetensors\"\n",
                    ),
                ),
                (
                    "second.model",
                    &program(&settings("    epochs 4\n    initial_epoch 2\n"), ""),
                ),
                (
                    "in_program.model",
                    &program(&settings("    epochs 4\n    initial_epoch 2\n"), "").replace(
                        "fit m on train",
                        "load m from \"half.safetensors\"\nfit m on train",
                    ),
                ),
            ],
        );
        let straight = weights(&run_ok(&dir, "straight.model", &["-q"]));
        run_ok(&dir, "first.model", &["-q"]);
        let half = path(&dir, "half.safetensors");
        let resumed = run_ok(&dir, "second.model", &["--load", &half]);
        assert!(
            resumed.contains("resuming after epoch 2"),
            "{optimizer}: {resumed}"
        );
        assert!(resumed.contains("Epoch 3/4"), "{resumed}");
        assert!(!resumed.contains("Epoch 2/4"), "{resumed}");
        assert_eq!(
            weights(&resumed),
            straight,
            "{optimizer}: --load resumes exactly"
        );
        let in_program = run_ok(&dir, "in_program.model", &[]);
        assert_eq!(
            weights(&in_program),
            straight,
            "{optimizer}: `load` resumes exactly"
        );
        // --init takes the weights but not the optimizer state (nor, for Adam, its step count).
        let init = run_ok(&dir, "second.model", &["--init", &half]);
        if optimizer != "sgd(lr: 0.1)" {
            assert_ne!(
                weights(&init),
                straight,
                "{optimizer}: a fresh optimizer state differs"
            );
        }
    }
}

#[test]
fn save_then_load_round_trips_the_weights() {
    let dir = scratch(
        "roundtrip",
        &[
            (
                "save.model",
                &program(
                    "    epochs 2\n",
                    "save m to \"w.safetensors\"\nevaluate m on test\n",
                ),
            ),
            (
                // No fit before the evaluate: the loaded weights are evaluated as they are.
                "load.model",
                &format!(
                    "{}load m from \"w.safetensors\"\nevaluate m on test\nsave m to \"again.safetensors\"\n",
                    program("    epochs 2\n", "")
                        .replace("fit m on train", "fit m on test")
                        .replace("data train = synthetic_classification(samples: 600, features: 6, classes: 3, seed: 1)\n", "")
                ),
            ),
        ],
    );
    let saved = run_ok(&dir, "save.model", &[]);
    let loaded = run_ok(&dir, "load.model", &[]);
    let evaluated = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("Evaluated m on test"))
            .unwrap_or_else(|| panic!("{out}"))
            .to_string()
    };
    // The program order is `fit`, `load`, `evaluate`: the loaded weights replace the trained ones.
    assert_eq!(evaluated(&saved), evaluated(&loaded));
    let a = std::fs::read(dir.join("w.safetensors")).unwrap();
    let b = std::fs::read(dir.join("again.safetensors")).unwrap();
    assert!(a == b, "saving loaded weights writes the same bytes");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn bad_checkpoints_are_reported() {
    let dir = scratch(
        "badckpt",
        &[
            (
                "save.model",
                &program("    epochs 1\n", "save m to \"w.safetensors\"\n"),
            ),
            ("run.model", &program("    epochs 1\n", "")),
        ],
    );
    run_ok(&dir, "save.model", &["-q"]);
    let good = std::fs::read(dir.join("w.safetensors")).unwrap();

    // A wider model: every parameter of the second layer has the wrong shape, by name.
    let wider = program("    epochs 1\n", "").replace("dense(12, relu)", "dense(13, relu)");
    std::fs::write(dir.join("wider.model"), wider).unwrap();
    let w = path(&dir, "w.safetensors");
    let stderr = run_err(&dir, "wider.model", &["--load", &w]);
    assert!(stderr.contains("E0405"), "{stderr}");
    assert!(
        stderr.contains("`dense.kernel` has shape [6, 12]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`dense_1.kernel` has shape [12, 3]"),
        "{stderr}"
    );
    assert!(stderr.contains("`dense.bias` has shape [12]"), "{stderr}");

    // A model with a third layer: the checkpoint lacks its tensors.
    let deeper = program("    epochs 1\n", "")
        .replace("dense(3, softmax)", "dense(3, relu)\n    dense(3, softmax)")
        .replace(
            "fit m on train",
            "load m from \"w.safetensors\"\nfit m on train",
        );
    std::fs::write(dir.join("deeper.model"), deeper).unwrap();
    let stderr = run_err(&dir, "deeper.model", &[]);
    assert!(stderr.contains("E0404"), "{stderr}");
    assert!(stderr.contains("no tensor `dense_2.kernel`"), "{stderr}");
    assert!(
        stderr.contains("load m from"),
        "points at the statement: {stderr}"
    );

    // A parameter saved as float64 (as NumPy defaults to): reported by name and type.
    let f64_bytes: Vec<u8> = (0..36).flat_map(|i| (i as f64).to_le_bytes()).collect();
    let f32_bytes: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let tensors = [
        (
            "dense.kernel",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![3, 12], &f64_bytes)
                .unwrap(),
        ),
        (
            "dense.bias",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![12], &f32_bytes)
                .unwrap(),
        ),
    ];
    std::fs::write(
        dir.join("f64.safetensors"),
        safetensors::serialize(tensors, None).unwrap(),
    )
    .unwrap();
    let stderr = run_err(
        &dir,
        "run.model",
        &["--load", &path(&dir, "f64.safetensors")],
    );
    assert!(stderr.contains("E0408"), "{stderr}");
    assert!(
        stderr.contains("`dense.kernel` holds F64 values"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no tensor `dense_1.kernel`"),
        "every problem: {stderr}"
    );

    // An Adam second moment edited to a negative value: its square root would make the loss NaN.
    let mut edited = kiln::runtime::checkpoint::decode(&good, "w").unwrap();
    let optimizer = edited
        .optimizer
        .as_mut()
        .expect("saved after fit: Adam's state");
    let v = optimizer
        .slots
        .iter_mut()
        .find(|t| t.name == "dense.bias.v")
        .unwrap();
    v.values[2] = -0.5;
    std::fs::write(
        dir.join("negative_v.safetensors"),
        kiln::runtime::checkpoint::encode(&edited).unwrap(),
    )
    .unwrap();
    let stderr = run_err(
        &dir,
        "run.model",
        &["--load", &path(&dir, "negative_v.safetensors")],
    );
    assert!(
        stderr.contains("tensor `optimizer.dense.bias.v` holds -0.5 at index 2"),
        "{stderr}"
    );
    // `--init` takes only the weights, so it does not judge the optimizer state it ignores.
    run_ok(
        &dir,
        "run.model",
        &["--init", &path(&dir, "negative_v.safetensors")],
    );

    // A NaN weight is refused whichever way it is loaded.
    let mut nan = kiln::runtime::checkpoint::decode(&good, "w").unwrap();
    nan.params[0].values[1] = f32::NAN;
    std::fs::write(
        dir.join("nan.safetensors"),
        kiln::runtime::checkpoint::encode(&nan).unwrap(),
    )
    .unwrap();
    for flag in ["--init", "--load"] {
        let stderr = run_err(&dir, "run.model", &[flag, &path(&dir, "nan.safetensors")]);
        assert!(
            stderr.contains("holds NaN at index 1; weights must be finite numbers"),
            "{flag}: {stderr}"
        );
    }

    // Truncated, and not a checkpoint at all.
    std::fs::write(dir.join("cut.safetensors"), &good[..good.len() / 2]).unwrap();
    std::fs::write(dir.join("junk.safetensors"), "not a checkpoint").unwrap();
    for name in ["cut.safetensors", "junk.safetensors"] {
        let stderr = run_err(&dir, "run.model", &["--load", &path(&dir, name)]);
        assert!(stderr.contains(name), "{stderr}");
        assert!(stderr.contains("truncated or corrupt"), "{stderr}");
    }

    // Flags: missing file, wrong extension, both --load and --init.
    let stderr = run_err(
        &dir,
        "run.model",
        &["--load", &path(&dir, "none.safetensors")],
    );
    assert!(stderr.contains("no such file"), "{stderr}");
    let stderr = run_err(&dir, "run.model", &["--init", &path(&dir, "run.model")]);
    assert!(stderr.contains("must end in .safetensors"), "{stderr}");
    let out = kiln(&["run", "--load", &w, "--init", &w, &path(&dir, "run.model")]);
    assert_eq!(out.status.code(), Some(2), "clap rejects the pair");
}

#[test]
fn early_stopping_stops_and_checkpoint_keeps_the_best() {
    // A learning rate this large makes the validation loss rise after the first epochs.
    let settings = "    optimizer sgd(lr: 4.0)\n    epochs 30\n    validation test\n    \
                    callbacks [early_stopping(patience: 2), checkpoint(\"best.safetensors\", save_best_only: true)]\n";
    let dir = scratch(
        "early",
        &[(
            "m.model",
            &program(
                settings,
                "load m from \"best.safetensors\"\nevaluate m on test\n",
            ),
        )],
    );
    let history = path(&dir, "h.csv");
    let out = run_ok(&dir, "m.model", &["--history", &history]);
    let csv = std::fs::read_to_string(&history).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|c| c.parse().unwrap()).collect())
        .collect();
    // Columns: epoch, loss, accuracy, val_loss, val_accuracy, seconds.
    let val_loss: Vec<f64> = rows.iter().map(|r| r[3]).collect();
    // Keras's rule with patience 2: stop at the second epoch in a row without a new best.
    let mut best = f64::INFINITY;
    let mut wait = 0;
    let mut expected_stop = None;
    for (epoch, &loss) in val_loss.iter().enumerate() {
        wait += 1;
        if loss < best {
            best = loss;
            wait = 0;
        } else if wait >= 2 && epoch > 0 {
            expected_stop = Some(epoch + 1);
            break;
        }
    }
    let stopped = expected_stop.unwrap_or_else(|| panic!("never stops: {val_loss:?}"));
    assert!(stopped < 30, "{val_loss:?}");
    assert_eq!(rows.len(), stopped, "{out}");
    assert!(
        out.contains(&format!("Epoch {stopped}: early stopping")),
        "{out}"
    );
    // The checkpoint holds the best epoch's weights: evaluating them gives the best val_loss.
    let evaluated = out
        .lines()
        .find(|l| l.starts_with("Evaluated"))
        .unwrap_or_else(|| panic!("{out}"));
    let printed = format!("loss: {:.4}", best);
    assert!(evaluated.contains(&printed), "{evaluated} vs best {best}");
}

#[test]
fn schedules_set_the_rate_of_every_step() {
    // 600 samples at batch 100: 6 steps per epoch. exponential_decay halves every 6 steps, so
    // the rate after epoch e (e·6 updates made, the next at step e·6) is 0.1 · 0.5^e.
    let dir = scratch(
        "schedule",
        &[
            (
                "exp.model",
                &program(
                    "    batch 100\n    epochs 3\n    optimizer sgd(lr: exponential_decay(0.1, decay_steps: 6, decay_rate: 0.5))\n",
                    "",
                ),
            ),
            (
                "piecewise.model",
                &program(
                    "    batch 100\n    epochs 3\n    optimizer sgd(lr: piecewise_constant_decay([6, 12], [0.1, 0.05, 0.025]))\n",
                    "",
                ),
            ),
            (
                "constant.model",
                &program(
                    "    batch 100\n    epochs 3\n    optimizer sgd(lr: 0.1)\n",
                    "",
                ),
            ),
            (
                "plateau.model",
                &program(
                    "    batch 100\n    epochs 3\n    optimizer sgd(lr: 0.1)\n    callbacks [reduce_lr_on_plateau(monitor: \"loss\", factor: 0.5, patience: 0, min_delta: 100)]\n",
                    "",
                ),
            ),
        ],
    );
    let rates = |file: &str| -> Vec<f64> {
        let history = path(&dir, &format!("{file}.csv"));
        run_ok(&dir, file, &["-q", "--history", &history]);
        let csv = std::fs::read_to_string(&history).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let column = header.iter().position(|c| *c == "learning_rate").unwrap();
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(column).unwrap().parse().unwrap())
            .collect()
    };
    // The rate of the last step of each epoch: steps 5, 11, 17.
    let exp = rates("exp.model");
    for (e, rate) in exp.iter().enumerate() {
        let step = 6 * e + 5;
        let expected = 0.1 * 0.5f64.powf(step as f64 / 6.0);
        assert!(
            (rate - expected).abs() < 1e-7,
            "epoch {e}: {rate} vs {expected}"
        );
    }
    // piecewise: steps 0..=6 at 0.1, 7..=12 at 0.05, then 0.025 (the last step of each epoch: 5,
    // 11, 17).
    let piecewise = rates("piecewise.model");
    assert_eq!(piecewise.len(), 3);
    for (rate, expected) in piecewise.iter().zip([0.1, 0.05, 0.025]) {
        assert!((rate - expected).abs() < 1e-7, "{piecewise:?}");
    }
    // reduce_lr_on_plateau with a min_delta no epoch can beat: halved after every epoch but the
    // first (which improves on infinity).
    let plateau = rates("plateau.model");
    for (rate, expected) in plateau.iter().zip([0.1, 0.05, 0.025]) {
        assert!((rate - expected).abs() < 1e-7, "{plateau:?}");
    }
    // A schedule changes training: its weights differ from the constant rate's.
    let constant = weights(&run_ok(&dir, "constant.model", &["-q"]));
    let decayed = weights(&run_ok(&dir, "exp.model", &["-q"]));
    assert_ne!(constant, decayed);
}

#[test]
fn predict_writes_probabilities_and_classes() {
    let dir = scratch(
        "predict",
        &[(
            "m.model",
            &program(
                "    epochs 5\n    optimizer adam(lr: 0.01)\n",
                "evaluate m on test\npredict m on test to \"p.csv\"\npredict m on test to \"p.npy\"\n",
            ),
        )],
    );
    let out = run_ok(&dir, "m.model", &[]);
    assert!(
        out.contains("Predicted m on test: 200 samples written to"),
        "{out}"
    );
    let csv = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("prob_0,prob_1,prob_2,class"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 200);
    for row in &rows {
        let sum: f64 = row[..3].iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{row:?}");
        let best = (0..3).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        assert_eq!(row[3], best as f64, "{row:?}");
    }
    // NPY: probabilities [200, 3] as float32 and classes [200] as int64, readable by NumPy
    // (checked here through the header NumPy writes and reads).
    let npy = std::fs::read(dir.join("p.npy")).unwrap();
    assert_eq!(&npy[..6], b"\x93NUMPY");
    let header = text(&npy[10..128.min(npy.len())]);
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'shape': (200, 3)"), "{header}");
    let classes = std::fs::read(dir.join("p_classes.npy")).unwrap();
    let header = text(&classes[10..100]);
    assert!(header.contains("'descr': '<i8'"), "{header}");
    assert!(header.contains("'shape': (200,)"), "{header}");
    // The accuracy `evaluate` reports is that of the predicted classes.
    let evaluated = out.lines().find(|l| l.starts_with("Evaluated")).unwrap();
    let accuracy: f64 = evaluated
        .rsplit("accuracy: ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(accuracy > 0.8, "{evaluated}");
}

/// A binary classifier's predictions: both classes' probabilities (`[1 − σ, σ]`) and the class,
/// one row per sample (its scores are two per sample, `[0, logit]`; it wrote two rows each).
#[test]
fn predict_after_binary_cross_entropy_writes_one_row_per_sample() {
    let dir = scratch(
        "predict_binary",
        &[
            ("bin.csv", "a,b,y\n0.1,0.9,0\n0.8,0.3,1\n0.7,0.1,1\n"),
            (
                "m.model",
                "data t = csv(\"bin.csv\")\n\
                 model m(x: f32[B, 2]) -> f32[B, 1] {\n    dense(1, sigmoid)\n}\n\
                 fit m on t {\n    loss binary_crossentropy\n}\n\
                 predict m on t to \"p.csv\"\n",
            ),
        ],
    );
    let out = run_ok(&dir, "m.model", &[]);
    assert!(out.contains("Predicted m on t: 3 samples written"), "{out}");
    let csv = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("prob_0,prob_1,class"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3, "{csv}");
    for row in &rows {
        assert!((row[0] + row[1] - 1.0).abs() < 1e-6, "{row:?}");
        assert_eq!(row[2], if row[1] > 0.5 { 1.0 } else { 0.0 }, "{row:?}");
    }
}

#[test]
fn action_and_callback_mistakes_are_diagnostics() {
    let cases = [
        ("predict m on test to \"p.txt\"\n", "", "E0402"),
        ("save m to \"w.bin\"\n", "", "E0401"),
        ("evaluate m on nothing\n", "", "E0103"),
        ("", "    callbacks [early_stopping()]\n", "E0313"),
        ("", "    callbacks [early_stoping()]\n", "E0117"),
        (
            "",
            "    validation test\n    optimizer adam(lr: cosine_decay(0.01, decay_steps: 10))\n    callbacks [reduce_lr_on_plateau()]\n",
            "E0314",
        ),
        ("", "    optimizer adam(lr: cosine(0.01))\n", "E0118"),
        ("", "    epochs 2\n    initial_epoch 3\n", "E0303"),
        ("", "    metrics [mse]\n", "E0315"),
        ("", "    metrics [top_k_accuracy(k: 0)]\n", "E0303"),
        ("", "    metrics [recal]\n", "E0109"),
        ("", "    optimizer adam(profile: pytorch)\n", "E0303"),
        ("", "    optimizer sgd(momentum: 1.5)\n", "E0303"),
    ];
    for (index, (after, settings, code)) in cases.into_iter().enumerate() {
        let mut source = program(settings, after);
        if settings.contains("metrics") {
            source = source.replace("    metrics [accuracy]\n", "");
        }
        let dir = scratch(&format!("mistake{index}"), &[("m.model", &source)]);
        let out = kiln(&["check", &path(&dir, "m.model")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{code}: {stderr}");
        assert!(stderr.contains(code), "expected {code}: {stderr}");
    }
    // A model no fit trains cannot be evaluated: there is no loss.
    let dir = scratch(
        "noloss",
        &[(
            "m.model",
            &format!("{DATA_AND_MODEL}evaluate m on test\npredict m on train to \"p.csv\"\n"),
        )],
    );
    let out = kiln(&["check", &path(&dir, "m.model")]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("E0403"), "{stderr}");
}

#[test]
fn metrics_for_classifiers_and_regression() {
    let csv: String = std::iter::once("a,b,y\n".to_string())
        .chain((0..60).map(|i| {
            let (a, b) = ((i % 7) as f64 / 7.0, (i % 5) as f64 / 5.0);
            format!("{a},{b},{}\n", 2.0 * a - b)
        }))
        .collect();
    let regression = "data d = csv(\"r.csv\")\n\
        model r(x: f32[B, 2]) -> f32[B, 1] {\n    dense(1)\n}\n\
        fit r on d {\n    loss mean_squared_error\n    metrics [mae, mse]\n    epochs 2\n}\n";
    let classifier = program(
        "    epochs 2\n    metrics [top_k_accuracy(k: 3), precision, recall]\n",
        "",
    )
    .replace("    metrics [accuracy]\n", "");
    let dir = scratch(
        "metrics",
        &[
            ("r.csv", &csv),
            ("r.model", regression),
            ("c.model", &classifier),
        ],
    );
    let history = path(&dir, "r.json");
    run_ok(&dir, "r.model", &["-q", "--history", &history]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    // mse as a metric is the loss (both the mean over samples and outputs of the squared error).
    for (loss, mse) in json[0]["loss"]
        .as_array()
        .unwrap()
        .iter()
        .zip(json[0]["mse"].as_array().unwrap())
    {
        let (loss, mse) = (loss.as_f64().unwrap(), mse.as_f64().unwrap());
        assert!((loss - mse).abs() < 1e-5 * loss.max(1.0), "{loss} vs {mse}");
    }
    let mae = json[0]["mae"][1].as_f64().unwrap();
    let mse = json[0]["mse"][1].as_f64().unwrap();
    assert!(
        mae > 0.0 && mae * mae <= mse + 1e-9,
        "mae² <= mse: {mae} {mse}"
    );

    let history = path(&dir, "c.json");
    run_ok(&dir, "c.model", &["-q", "--history", &history]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    // With 3 classes, the label is always among the top 3.
    assert_eq!(json[0]["top_k_accuracy"][1].as_f64(), Some(1.0));
    for name in ["precision", "recall"] {
        let value = json[0][name][1].as_f64().unwrap();
        assert!(value > 0.0 && value <= 1.0, "{name}: {value}");
    }
}

#[test]
fn plot_draws_the_curves_as_svg() {
    let dir = scratch(
        "plot",
        &[(
            "m.model",
            &program("    epochs 3\n    validation test\n", ""),
        )],
    );
    let svg = path(&dir, "curves.svg");
    run_ok(&dir, "m.model", &["-q", "--plot", &svg]);
    let image = std::fs::read_to_string(&svg).unwrap();
    assert!(image.starts_with("<svg"), "{}", &image[..60]);
    for title in ["m: loss", "m: accuracy", "training", "validation"] {
        assert!(image.contains(title), "no {title}");
    }
    let out = kiln(&[
        "run",
        "--plot",
        &path(&dir, "curves.png"),
        &path(&dir, "m.model"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("must end in .svg"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty(), "nothing trains on a bad flag");
    for (flag, extension) in [("--plot", "svg"), ("--history", "csv")] {
        let file = path(&dir, &format!("no_such_folder/out.{extension}"));
        let out = kiln(&["run", flag, &file, &path(&dir, "m.model")]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("no_such_folder` does not exist"),
            "{}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).is_empty(), "nothing trains on a bad flag");
    }
}

#[test]
fn standardize_uses_training_statistics_everywhere() {
    // Two features on very different scales; the class is which one is larger after scaling.
    let row = |i: usize| {
        let (a, b) = ((i * 37 % 100) as f64, (i * 53 % 100) as f64);
        format!(
            "{},{},{}\n",
            1000.0 + a * 10.0,
            b * 0.01,
            usize::from(a > b)
        )
    };
    let train: String = std::iter::once("a,b,y\n".to_string())
        .chain((0..200).map(row))
        .collect();
    let test: String = std::iter::once("a,b,y\n".to_string())
        .chain((200..260).map(row))
        .collect();
    let model = "data train = csv(\"train.csv\")\ndata test = csv(\"test.csv\")\n\
        model m(x: f32[B, 2]) -> f32[B, 2] {\n    dense(16, relu)\n    dense(2, softmax)\n}\n";
    let fit = |standardize: bool| {
        format!(
            "{model}fit m on train {{\n    loss sparse_categorical_crossentropy\n    \
             optimizer adam(lr: 0.01)\n    metrics [accuracy]\n    epochs 40\n    \
             validation test\n    standardize {standardize}\n}}\n\
             evaluate m on test\nsave m to \"m.safetensors\"\n"
        )
    };
    let reload = format!("{model}load m from \"m.safetensors\"\npredict m on test to \"p.csv\"\n");
    let dir = scratch(
        "standardize",
        &[
            ("train.csv", &train),
            ("test.csv", &test),
            ("plain.model", &fit(false)),
            ("standard.model", &fit(true)),
            ("reload.model", &reload),
        ],
    );
    let accuracy = |out: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with("Evaluated")).unwrap();
        line.rsplit("accuracy: ").next().unwrap().parse().unwrap()
    };
    let plain = accuracy(&run_ok(&dir, "plain.model", &["-q"]));
    let standard = accuracy(&run_ok(&dir, "standard.model", &["-q"]));
    assert!(standard >= 0.9, "standardized: {standard}");
    assert!(standard > plain, "standardize helps: {standard} vs {plain}");
    // The checkpoint carries the statistics: a program without `standardize` that loads it
    // predicts as well as the fit evaluated.
    run_ok(&dir, "reload.model", &["-q"]);
    let csv = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    let labels: Vec<usize> = (200..260)
        .map(|i| usize::from((i * 37 % 100) > (i * 53 % 100)))
        .collect();
    let correct = csv
        .lines()
        .skip(1)
        .zip(&labels)
        .filter(|(line, label)| line.ends_with(&format!(",{label}")))
        .count();
    assert!(
        (correct as f64 / 60.0 - standard).abs() < 1e-4,
        "{correct}/60 vs {standard}"
    );
}

#[test]
fn a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint() {
    // Gradient descent on y = 3x with too large a step: the loss grows about a hundredfold per
    // step (one step per epoch) until it overflows.
    let rows: String = (0..8)
        .map(|i| format!("{},{}\n", 2.0 + i as f64 * 0.1, 6.0 + i as f64 * 0.3))
        .collect();
    let source = "\
data d = csv(\"d.csv\", label: \"y\")
model m(x: f32[B, 1]) -> f32[B, 1] {
    dense(1)
}
fit m on d {
    loss      mean_squared_error
    optimizer sgd(lr: 1.0)
    epochs    100
    batch     8
    shuffle   false
    callbacks [checkpoint(\"last.safetensors\", monitor: \"loss\")]
}
save m to \"after.safetensors\"
";
    let data = format!("x,y\n{rows}");
    let dir = scratch("nan", &[("m.model", source), ("d.csv", &data)]);
    let program = path(&dir, "m.model");
    let out = kiln(&["run", &program]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let finite_epochs = stdout.lines().filter(|l| l.starts_with("1/1 - ")).count();
    assert!(finite_epochs >= 3, "{stdout}");
    assert!(
        stderr.contains(&format!(
            "[E0410] Error: training `m` stopped: the loss was inf at epoch {}, step 1 of 1",
            finite_epochs + 1
        )) || stderr.contains(&format!(
            "[E0410] Error: training `m` stopped: the loss was NaN at epoch {}, step 1 of 1",
            finite_epochs + 1
        )),
        "{stdout}{stderr}"
    );
    assert!(
        !stdout.contains("loss: NaN") && !stdout.contains("loss: inf"),
        "{stdout}"
    );
    // The statement after the fit never ran; the checkpoint holds the last finite epoch.
    assert!(!dir.join("after.safetensors").exists());
    let saved = kiln::runtime::checkpoint::read(&dir.join("last.safetensors")).unwrap();
    assert!(
        saved
            .params
            .iter()
            .all(|t| t.values.iter().all(|v| v.is_finite())),
        "the checkpoint holds non-finite weights"
    );
}

#[test]
fn a_non_finite_loss_is_traced_to_the_layer_where_it_began() {
    // exp of a dense layer's output: with inputs near 100 it overflows float32 at once.
    let rows: String = (0..8).map(|i| format!("{},{}\n", 90 + i, i % 2)).collect();
    let source = "\
data d = csv(\"d.csv\", label: \"y\")
model m(x: f32[B, 1]) -> f32[B, 2] {
    dense(4, exp)
    dense(2, softmax)
}
fit m on d {
    loss      sparse_categorical_crossentropy
    epochs    3
    batch     4
    seed      1
}
";
    let data = format!("x,y\n{rows}");
    let dir = scratch("nan-source", &[("m.model", source), ("d.csv", &data)]);
    let out = kiln(&["run", &path(&dir, "m.model")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("at epoch 1, step 1 of 2"),
        "the first step overflows: {stderr}"
    );
    assert!(
        stderr.contains("the first non-finite value (inf) arises here: `exp` of inputs in"),
        "{stderr}"
    );
    // The label sits on the layer's line.
    let label = stderr
        .lines()
        .position(|l| l.contains("arises here"))
        .unwrap();
    let layer = stderr
        .lines()
        .position(|l| l.contains("dense(4, exp)"))
        .unwrap();
    assert!(layer < label, "{stderr}");
}

#[test]
fn check_numerics_catches_weights_that_turn_non_finite_while_the_loss_stays_finite() {
    // sqrt after relu: a unit at exactly 0 has an infinite derivative, so the first update makes
    // a kernel NaN while that step's loss is still a number.
    let rows: String = (0..16)
        .map(|i| {
            format!(
                "{},{},{}\n",
                (i * 7) % 5 - 2,
                f64::from((i * 3) % 4) - 1.5,
                i % 2
            )
        })
        .collect();
    let source = "\
data d = csv(\"d.csv\", label: \"y\")
model m(x: f32[B, 2]) -> f32[B, 2] {
    dense(8, relu)
    sqrt
    dense(2, softmax)
}
fit m on d {
    loss      sparse_categorical_crossentropy
    epochs    3
    batch     8
    seed      3
}
";
    let data = format!("a,b,y\n{rows}");
    let dir = scratch("check-numerics", &[("m.model", source), ("d.csv", &data)]);
    let program = path(&dir, "m.model");
    // Without the flag only the loss is checked: the next step's is NaN, and the error says
    // the kernel was already NaN when it began.
    let out = kiln(&["run", &program]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the loss was NaN at epoch 1, step 2 of 2")
            && stderr.contains("`dense.kernel` already held NaN when this step began"),
        "{stderr}"
    );
    let out = kiln(&["run", "--check-numerics", &program]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("training `m` stopped: `dense.kernel` held a non-finite value (the loss was")
            && stderr.contains("at epoch 1, step 1 of 2"),
        "{stderr}"
    );
    // The gradient of sqrt at 0, labelled on the `sqrt` line.
    let label = stderr
        .lines()
        .position(|l| l.contains("arises here: `div`"));
    let line = stderr
        .lines()
        .position(|l| l.trim_end().ends_with("│         sqrt"));
    assert!(
        matches!((line, label), (Some(l), Some(a)) if l < a),
        "{stderr}"
    );
}
