//! The `kiln` binary: exit codes and messages for everything a user can get wrong, and the happy
//! paths of `check` and `dump`.

mod common;

use common::{kiln, path, scratch, text};
use std::path::Path;
use std::process::Command;

#[test]
fn check_accepts_the_example_programs() {
    for program in ["programs/seed.model", "programs/iris.model"] {
        let out = kiln(&["check", program]);
        assert!(out.status.success(), "{program}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("ok"));
    }
}

#[test]
fn check_reports_a_shape_error_with_its_line_and_exits_1() {
    let dir = scratch(
        "shape",
        &[(
            "bad.model",
            "data d = synthetic_classification(samples: 10, features: 4, classes: 3)\n\
             model m(x: f32[B, 4]) -> f32[B, 3] {\n    dense(8, relu)\n    dense(5, softmax)\n}\n\
             fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam\n}\n",
        )],
    );
    let out = kiln(&["check", &path(&dir, "bad.model")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("f32[B, 5]"), "{stderr}");
    assert!(stderr.contains("f32[B, 3]"), "{stderr}");
    assert!(stderr.contains(":4:"), "points at line 4: {stderr}");
}

#[test]
fn a_missing_file_is_a_message_not_a_panic() {
    for command in ["check", "run"] {
        let out = kiln(&[command, "no/such/file.model"]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("cannot read `no/such/file.model`"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

/// A program that is not UTF-8 says where; one behind a byte-order mark reads as without it.
#[test]
fn program_encodings() {
    let dir = scratch("encodings", &[]);
    std::fs::write(dir.join("latin1.model"), b"let n = 4\nlet m = \xe9 n\n").unwrap();
    std::fs::write(dir.join("bom.model"), "\u{feff}let n = 4\nlet _m = n\n").unwrap();
    let out = kiln(&["check", &path(&dir, "latin1.model")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 2, column 9 (byte 19) is not UTF-8 text"),
        "{stderr}"
    );
    let out = kiln(&["check", &path(&dir, "bom.model")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn an_unknown_stage_or_flag_is_a_usage_error() {
    let out = kiln(&["dump", "--stage", "nope", "programs/seed.model"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("possible values"));
    let out = kiln(&["run", "--frobnicate", "programs/seed.model"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dump_prints_every_stage_of_the_seed_model() {
    for stage in ["parse", "check", "ir", "grad", "step", "kernels", "clif"] {
        let out = kiln(&["dump", "--stage", stage, "programs/seed.model"]);
        assert!(out.status.success(), "{stage}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{stage}: empty output");
    }
    let grad = text(&kiln(&["dump", "--stage", "grad", "programs/seed.model"]).stdout);
    assert!(grad.contains("grad dense.kernel"), "{grad}");
    assert!(grad.contains("matmul.tn"), "{grad}");
}

const IRIS_LIKE: &str = "data d = csv(\"flowers.csv\", label: \"species\")\n\
    model m(x: f32[B, 4]) -> f32[B, 3] {\n    dense(8, relu)\n    dense(3, softmax)\n}\n\
    fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam\n    epochs 1\n}\n";

#[test]
fn bad_data_is_reported_with_file_and_line() {
    let cases = [
        ("missing", None, "flowers.csv"),
        (
            "ragged",
            Some("a,b,c,d,species\n1,2,3,4,0\n1,2,3,0\n"),
            "line 3",
        ),
        ("text", Some("a,b,c,d,species\n1,2,x,4,0\n"), "column 3"),
        ("width", Some("a,b,c,species\n1,2,3,0\n"), "3 features"),
        ("class", Some("a,b,c,d,species\n1,2,3,4,7\n"), "7"),
    ];
    for (name, csv, expected) in cases {
        let mut files = vec![("m.model", IRIS_LIKE)];
        if let Some(csv) = csv {
            files.push(("flowers.csv", csv));
        }
        let dir = scratch(name, &files);
        let out = kiln(&["run", &path(&dir, "m.model")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected `{expected}` in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn run_trains_and_prints_keras_style_lines() {
    let csv: String = std::iter::once("a,b,c,d,species\n".to_string())
        .chain((0..40).map(|i| format!("{},{},0.5,0.5,{}\n", i % 3, (i * 7) % 5, i % 3)))
        .collect();
    let dir = scratch("happy", &[("m.model", IRIS_LIKE), ("flowers.csv", &csv)]);
    let out = kiln(&["run", &path(&dir, "m.model")]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("Epoch 1/1"), "{stdout}");
    assert!(stdout.contains("2/2 - "), "{stdout}");
    assert!(stdout.contains("µs/step - loss: "), "{stdout}");
    assert!(stdout.contains("(weights "), "{stdout}");
}

#[test]
fn timings_list_every_compiler_stage() {
    let out = kiln(&["run", "--timings", "programs/iris.model"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for stage in [
        "parse",
        "check",
        "lower",
        "autodiff",
        "optimizer",
        "passes",
        "codegen",
    ] {
        assert!(
            stdout.contains(&format!("{stage} ")),
            "no {stage} in: {stdout}"
        );
    }
    assert!(stdout.contains("to native code; loading data"), "{stdout}");
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // 3,000 epochs print far more than a pipe buffers (64 KiB), so writes meet the closed pipe.
    let csv = "a,b,c,d,species\n1,2,3,4,0\n4,3,2,1,1\n";
    let program = IRIS_LIKE.replace("epochs 1", "epochs 3000");
    let dir = scratch("pipe", &[("m.model", &program), ("flowers.csv", csv)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["run", &path(&dir, "m.model")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the rest of the output meets a closed pipe, as with `| head -1`.
    let out = child.wait_with_output().unwrap();
    assert!(first.starts_with("model m(x: f32[B, 4])"), "{first}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn absurd_sizes_are_messages_not_crashes() {
    let csv = "a,b,c,d,species\n1,2,3,4,0\n4,3,2,1,1\n";
    // A batch larger than the data trains in one batch: buffers are sized for the data.
    let big_batch = IRIS_LIKE.replace("epochs 1", "epochs 1\n    batch 2000000000");
    // A layer whose buffers no machine holds is a diagnostic, before any allocation: the
    // memory estimate (E0841) where /proc tells what is available, else the arena's (E0901).
    let huge_layer = IRIS_LIKE.replace("dense(8, relu)", "dense(4000000000, relu)");
    let dir = scratch(
        "absurd",
        &[
            ("batch.model", &big_batch),
            ("layer.model", &huge_layer),
            ("flowers.csv", csv),
        ],
    );
    let out = kiln(&["run", &path(&dir, "batch.model")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1/1 - "),
        "{}",
        text(&out.stdout)
    );

    let out = kiln(&["run", &path(&dir, "layer.model")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        (stderr.contains("E0841") || stderr.contains("E0901")) && stderr.contains("GiB"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Counts a user may write that no run reaches: epochs for early stopping to cut short, an
/// `initial_epoch` past them, samples no memory holds. Messages or runs, never crashes or hangs.
#[test]
fn huge_counts_are_runs_or_messages() {
    let data = "data d = synthetic_classification(samples: 50, features: 4, classes: 3)\n\
                model m(x: f32[B, 4]) -> f32[B, 3] {\n    dense(3, softmax)\n}\n";
    let fit = |settings: &str| {
        format!("{data}fit m on d {{\n    loss sparse_categorical_crossentropy\n{settings}}}\n")
    };
    let dir = scratch(
        "huge_counts",
        &[
            (
                "early.model",
                &fit(
                    "    epochs 18446744073709551615\n    callbacks [early_stopping(monitor: \"loss\", patience: 2)]\n",
                ),
            ),
            (
                "resumed.model",
                &fit("    epochs 1000000000000\n    initial_epoch 1000000000000\n"),
            ),
            (
                "at_the_end.model",
                &fit("    epochs 18446744073709551615\n    initial_epoch 18446744073709551615\n"),
            ),
            (
                "samples.model",
                &data
                    .replace("samples: 50", "samples: 1000000000000000")
                    .replace("data d", "data big")
                    .replace(
                        "}\n",
                        "}\nfit m on big { loss sparse_categorical_crossentropy }\n",
                    ),
            ),
        ],
    );
    let out = kiln(&["run", "-q", &path(&dir, "early.model")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Trained m for"),
        "{}",
        text(&out.stdout)
    );
    // Nothing left to train: done at once (it used to replay a shuffle per epoch already done).
    for done in ["resumed.model", "at_the_end.model"] {
        // (`initial_epoch + 1` wrapped to 0 at u64::MAX, and training never ended.)
        let out = kiln(&["run", "-q", &path(&dir, done)]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("Trained m for 0 epochs"),
            "{done}: {}",
            text(&out.stdout)
        );
    }
    let out = kiln(&["run", "-q", &path(&dir, "samples.model")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("more memory than can be allocated"),
        "{stderr}"
    );
}

/// `predict` on a model no `fit` trains reads class-labelled data whatever the model's output
/// (the loss assumed for a linear output would read targets) and writes its raw outputs.
#[test]
fn predict_without_a_fit_reads_any_data() {
    let dir = scratch(
        "predict_no_fit",
        &[(
            "p.model",
            "data d = synthetic_classification(samples: 5, features: 4, classes: 3)\n\
             model m(x: f32[B, 4]) -> f32[B, 3] {\n    dense(3)\n}\n\
             predict m on d to \"p.csv\"\n",
        )],
    );
    let out = kiln(&["run", &path(&dir, "p.model")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    assert!(
        written.starts_with("output_0,output_1,output_2\n"),
        "{written}"
    );
    assert_eq!(written.lines().count(), 6, "{written}");
}

#[test]
fn quiet_and_history() {
    let csv: String = std::iter::once("a,b,c,d,species\n".to_string())
        .chain((0..40).map(|i| format!("{},{},0.5,0.5,{}\n", i % 3, (i * 7) % 5, i % 3)))
        .collect();
    let program = IRIS_LIKE.replace("epochs 1", "epochs 3\n    metrics [accuracy]");
    let dir = scratch("history", &[("m.model", &program), ("flowers.csv", &csv)]);

    let history_csv = path(&dir, "h.csv");
    let out = kiln(&[
        "run",
        "--quiet",
        "--history",
        &history_csv,
        &path(&dir, "m.model"),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        stdout.lines().count(),
        1,
        "--quiet prints only the result: {stdout}"
    );
    assert!(stdout.starts_with("Trained m for 3 epochs"), "{stdout}");
    let written = std::fs::read_to_string(&history_csv).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "model,epoch,loss,accuracy,seconds");
    assert_eq!(lines.len(), 4, "{written}");
    assert!(lines[3].starts_with("m,3,"), "{written}");

    let history_json = path(&dir, "h.json");
    let out = kiln(&[
        "run",
        "-q",
        "--history",
        &history_json,
        &path(&dir, "m.model"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(&history_json).unwrap();
    assert!(json.contains("\"model\": \"m\""), "{json}");
    assert!(json.contains("\"loss\": ["), "{json}");

    let out = kiln(&[
        "run",
        "--history",
        &path(&dir, "h.txt"),
        &path(&dir, "m.model"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(".csv or .json"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty(), "nothing trains on a bad flag");
}

/// Times vary from run to run; everything else of the plain (non-terminal) output is fixed.
fn without_times(text: &str, dir: &Path) -> String {
    let text = text.replace(&dir.display().to_string(), "DIR");
    text.lines()
        .map(|line| {
            let line = match (line.find("(compiled in "), line.find(" ms)")) {
                (Some(start), Some(end)) if start < end => {
                    format!("{}(compiled in T ms){}", &line[..start], &line[end + 4..])
                }
                _ => line.to_string(),
            };
            line.split(" - ")
                .map(|part| {
                    if part.ends_with("µs/step") {
                        "Tµs/step".to_string()
                    } else if part.ends_with('s')
                        && part[..part.len() - 1]
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == '.')
                    {
                        "Ts".to_string()
                    } else {
                        part.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" - ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn plain_output_is_one_line_per_epoch() {
    let program = "data train = synthetic_classification(samples: 300, features: 4, classes: 3, seed: 1)\n\
        data test = synthetic_classification(samples: 100, features: 4, classes: 3, seed: 2)\n\
        model m(x: f32[B, 4]) -> f32[B, 3] {\n    dense(8, relu)\n    dense(3, softmax)\n}\n\
        fit m on train {\n    loss sparse_categorical_crossentropy\n    optimizer sgd(lr: 0.5)\n    \
        metrics [accuracy]\n    epochs 3\n    batch 64\n    validation test\n    \
        callbacks [reduce_lr_on_plateau(factor: 0.5, patience: 1, min_delta: 1), checkpoint(\"best.safetensors\", save_best_only: true)]\n}\n\
        save m to \"m.safetensors\"\nevaluate m on test\n";
    let dir = scratch("plain", &[("m.model", program)]);
    let out = kiln(&["run", &path(&dir, "m.model")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Note the validation data comes from another seed, hence another labelling rule: val_loss
    // rises after epoch 1, so `save_best_only` saves once.
    let expected = "\
model m(x: f32[B, 4]) -> f32[B, 3]
  layer (kind)     output shape  params
  ─────────────────────────────────────
  x (input)        f32[B, 4]          0
  dense (dense)    f32[B, 8]         40
  dense_1 (dense)  f32[B, 3]         27
  ─────────────────────────────────────
  parameters       67 (268 B)
  optimizer state  0 (0 B; sgd)
  activations      33 per sample (132 B × B, forward pass)
Training m on train: 300 samples, 67 parameters, validating on test: 100 samples (compiled in T ms)
Epoch 1/3
5/5 - Ts - Tµs/step - loss: 0.8763 - accuracy: 0.5600 - val_loss: 1.2511 - val_accuracy: 0.6100 - learning_rate: 0.5000
Epoch 1: saved m to DIR/best.safetensors
Epoch 2/3
5/5 - Ts - Tµs/step - loss: 0.6489 - accuracy: 0.7933 - val_loss: 1.4365 - val_accuracy: 0.5400 - learning_rate: 0.2500
Epoch 3/3
5/5 - Ts - Tµs/step - loss: 0.5301 - accuracy: 0.8367 - val_loss: 1.4947 - val_accuracy: 0.5200 - learning_rate: 0.1250
Trained m for 3 epochs: loss: 0.5301 - accuracy: 0.8367 - val_loss: 1.4947 - val_accuracy: 0.5200 - learning_rate: 0.1250 (weights HASH)
Saved m to DIR/m.safetensors
Evaluated m on test: 100 samples - loss: 1.4947 - accuracy: 0.5200
";
    let actual = without_times(&text(&out.stdout), &dir);
    let actual = match actual.split_once("(weights ") {
        Some((before, after)) => {
            let rest = after.split_once(')').map_or("", |(_, rest)| rest);
            format!("{before}(weights HASH){rest}")
        }
        None => actual,
    };
    assert_eq!(actual, expected, "\n{actual}");
    assert!(
        !text(&out.stdout).contains('\r'),
        "no bar redraws in a pipe"
    );
}

#[test]
fn check_summary_prints_the_layer_table() {
    let out = kiln(&["check", "--summary", "programs/seed.model"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for expected in [
        "model classifier(x: f32[B, 32]) -> f32[B, 10]",
        "dense_2 (dense)",
        "f32[B, 64]",
        "4,160",
        "parameters       6,922",
        "optimizer state  13,844",
        "fit classifier on train: training needs about 346.9 KiB (weights, gradients and \
         optimizer state 108.2 KiB; activations and their gradients for a batch of 32 103.5 KiB; \
         copies of weights and state kept between epochs and after training 135.2 KiB)",
        "programs/seed.model: ok",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
}

#[test]
fn check_format_json_reports_diagnostics_with_positions() {
    let dir = scratch(
        "json",
        &[(
            "bad.model",
            "model m(x: f32[B, 4]) -> f32[B, 2] {\n    dense(8, rleu)\n    dense(2)\n}\n",
        )],
    );
    let out = kiln(&["check", "--format", "json", &path(&dir, "bad.model")]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &json[0];
    assert_eq!(first["code"], "E0113");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["line"], 2);
    assert_eq!(first["column"], 14);
    assert_eq!(first["span"]["start"], 50);
    assert_eq!(first["span"]["end"], 54);
    assert_eq!(first["help"], "did you mean `relu`?");
    assert_eq!(first["labels"][0]["primary"], true);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let ok = kiln(&["check", "--format", "json", "programs/seed.model"]);
    assert!(ok.status.success());
    assert_eq!(text(&ok.stdout).trim(), "[]");
}

#[test]
fn explain_prints_an_explanation_and_rejects_unknown_codes() {
    let out = kiln(&["explain", "e0210"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("E0210: matrix product shapes do not agree"),
        "{stdout}"
    );
    assert!(stdout.contains("For example:"), "{stdout}");
    assert!(kiln(&["explain", "0209"]).status.success());

    let bad = kiln(&["explain", "E9999"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("no diagnostic code or built-in is called `E9999`"));
}

/// `kiln explain NAME` reads a built-in's definition (the row its kind's table writes).
#[test]
fn explain_describes_built_ins_from_their_definitions() {
    for (name, kind, says) in [
        ("rmsprop", "optimizer", "`rho: 0.9`"),
        ("dense", "layer", "`units`"),
        ("csv", "data source", "`delimiter`"),
        ("glorot_uniform", "initializer", ""),
        ("mean_squared_error", "loss", "targets"),
        // An alias finds its built-in's row.
        ("mse", "loss", "targets"),
    ] {
        let out = kiln(&["explain", name]);
        assert!(out.status.success(), "{name}");
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with(&format!("`{name}`: a built-in {kind}")),
            "{stdout}"
        );
        assert!(stdout.contains(says), "{stdout}");
    }
    let typo = kiln(&["explain", "rmsporp"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(text(&typo.stderr).contains("did you mean `rmsprop`?"));
}

/// Whole-number regression targets with a classification loss are called real-valued targets,
/// with the loss that trains on them, not "class label 151 … labels must lie in 0..2".
#[test]
fn regression_targets_with_a_class_loss_point_at_mean_squared_error() {
    let rows: String = (0..40)
        .map(|i| format!("{}.5,{}\n", i % 7, 25 + 8 * i))
        .collect();
    let dir = scratch(
        "regression_targets",
        &[
            ("scores.csv", &format!("a,y\n{rows}")),
            (
                "p.model",
                "data d = csv(\"scores.csv\", label: \"y\")\n\
                 model m(x: f32[B, 1]) -> f32[B, 1] {\n    dense(1, sigmoid)\n}\n\
                 fit m on d { loss binary_crossentropy }\n",
            ),
        ],
    );
    let out = kiln(&["run", &path(&dir, "p.model")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "the labels look like real-valued targets (40 different values from 25 to 337; \
             sample 1 has 25), but binary_crossentropy is a classification loss, whose labels \
             must be 0 or 1; for real-valued targets use `loss mean_squared_error`"
        ),
        "{stderr}"
    );
}

#[test]
fn output_follows_the_program_order() {
    // Each fit's result line comes before the output of the statements after it.
    let source = "\
data d = synthetic_classification(samples: 64, features: 4, classes: 2)
model m(x: f32[B, 4]) -> f32[B, 2] {
    dense(2, softmax)
}
fit m on d {
    loss sparse_categorical_crossentropy
    epochs 2
}
save m to \"m.safetensors\"
evaluate m on d
fit m on d {
    loss sparse_categorical_crossentropy
    epochs 1
}
predict m on d to \"p.csv\"
";
    let dir = scratch("order", &[("m.model", source)]);
    let out = kiln(&["run", "--quiet", &path(&dir, "m.model")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let kinds: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["Trained", "Evaluated", "Trained", "Predicted"],
        "{stdout}"
    );
}
