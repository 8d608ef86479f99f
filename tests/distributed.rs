//! `mpirun -n N kiln run --distributed`: every rank holds the same weights, resuming equals an
//! uninterrupted run, and a rank that fails or disagrees ends the job with a message — never a
//! hang. Needs Open MPI's `mpirun` (`cargo test --features mpi --test distributed`).
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small classifier, so that a run takes a second or two, with validation and the callbacks
/// whose decisions rank 0 broadcasts.
const PROGRAM: &str = "\
data train = synthetic_classification(samples: 1000, features: 16, classes: 4, seed: 3)

model m(x: f32[B, 16]) -> f32[B, 4] {
    dense(32, relu)
    dense(4, softmax)
}

fit m on train {
    loss             sparse_categorical_crossentropy
    optimizer        adam(lr: 0.01)
    metrics          [accuracy]
    EPOCHS
    batch            50
    seed             5
    shuffle          true
    validation_split 0.2
    callbacks        [reduce_lr_on_plateau(patience: 1), early_stopping(patience: 3)]
}
";

fn program(epochs: &str, after: &str) -> String {
    format!("{}{after}", PROGRAM.replace("EPOCHS", epochs))
}

fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-distributed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

/// `mpirun` with the given application contexts (`-n N kiln run --distributed ARGS`, joined by
/// `:`), bounded by `timeout` so that a hang fails the test instead of stalling it.
fn mpirun(dir: &Path, contexts: &[(usize, Vec<String>)]) -> Output {
    let mut args: Vec<String> = [
        "-s",
        "KILL",
        "300",
        "mpirun",
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
    ]
    .map(String::from)
    .to_vec();
    for (index, (ranks, command)) in contexts.iter().enumerate() {
        if index > 0 {
            args.push(":".into());
        }
        args.extend(["-n".to_string(), ranks.to_string()]);
        args.extend(command.iter().cloned());
    }
    Command::new("timeout")
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("timeout and mpirun (Open MPI) are installed")
}

fn kiln(args: &[&str]) -> Vec<String> {
    let mut command = vec![
        env!("CARGO_BIN_EXE_kiln").to_string(),
        "run".into(),
        "--distributed".into(),
    ];
    command.extend(args.iter().map(|a| a.to_string()));
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run_ok(dir: &Path, ranks: usize, args: &[&str]) -> String {
    let output = mpirun(dir, &[(ranks, kiln(args))]);
    let text = text(&output);
    assert!(output.status.success(), "{ranks} ranks {args:?}: {text}");
    text
}

/// The hash of the `Trained` line, after checking it was compared on every rank.
fn weights(text: &str, ranks: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Trained ")).collect();
    assert_eq!(lines.len(), 1, "rank 0 alone reports:\n{text}");
    let line = lines[0];
    assert!(
        line.ends_with(&format!(", the same on all {ranks} ranks)")),
        "{line}"
    );
    let at = line.find("(weights ").unwrap() + "(weights ".len();
    line[at..at + 16].to_string()
}

#[test]
fn every_rank_holds_the_same_weights_and_rank_0_alone_writes() {
    let dir = scratch(
        "same",
        &[(
            "m.model",
            &program("epochs 4", "save m to \"m.safetensors\"\n"),
        )],
    );
    for ranks in [2, 3] {
        let out = run_ok(&dir, ranks, &["m.model", "--history", "h.csv"]);
        weights(&out, ranks);
        assert_eq!(out.matches("Epoch 4/4").count(), 1, "{out}");
        assert!(out.contains("val_loss"), "{out}");
        assert!(dir.join("m.safetensors").is_file());
        let history = std::fs::read_to_string(dir.join("h.csv")).unwrap();
        assert_eq!(history.lines().count(), 5, "{history}");
    }
}

#[test]
fn a_last_batch_shorter_than_the_ranks_leaves_some_ranks_idle() {
    // 800 training samples in batches of 47: the last batch has 1 row, so on 3 ranks two
    // of them contribute nothing to that step.
    let short = program("epochs 2", "").replace("batch            50", "batch            47");
    let dir = scratch("short", &[("m.model", &short)]);
    let out = run_ok(&dir, 3, &["m.model"]);
    weights(&out, 3);
    assert!(out.contains("18/18"), "{out}");
}

#[test]
fn the_seed_program_trains_identically_on_two_and_three_ranks() {
    let seed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/seed.model"))
            .unwrap()
            .replace("epochs    5", "epochs    1");
    let dir = scratch("seed", &[("seed.model", &seed)]);
    for ranks in [2, 3] {
        weights(&run_ok(&dir, ranks, &["seed.model", "-q"]), ranks);
    }
}

#[test]
fn one_rank_trains_the_weights_of_a_plain_run() {
    // The step split in two (gradients, then the update on their sum) computes what the fused
    // step computes: with one rank the sum is the gradient itself.
    let dir = scratch("one", &[("m.model", &program("epochs 3", ""))]);
    let plain = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["run", "-q", "m.model"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let plain = text(&plain);
    let at = plain.find("(weights ").unwrap() + "(weights ".len();
    assert_eq!(
        weights(&run_ok(&dir, 1, &["m.model", "-q"]), 1),
        &plain[at..at + 16]
    );
}

#[test]
fn resuming_under_mpi_equals_an_uninterrupted_run() {
    let dir = scratch(
        "resume",
        &[
            ("straight.model", &program("epochs 4", "")),
            (
                "first.model",
                &program("epochs 2", "save m to \"half.safetensors\"\n"),
            ),
            (
                "second.model",
                &program("epochs 4\n    initial_epoch 2", ""),
            ),
        ],
    );
    let straight = weights(&run_ok(&dir, 2, &["straight.model"]), 2);
    run_ok(&dir, 2, &["first.model"]);
    let resumed = run_ok(&dir, 2, &["second.model", "--load", "half.safetensors"]);
    assert!(resumed.contains("resuming after epoch 2"), "{resumed}");
    assert_eq!(weights(&resumed, 2), straight);
}

#[test]
fn ranks_with_different_programs_or_data_stop_with_e0880() {
    let other_data = program("epochs 2", "").replace("classes: 4, seed: 3", "classes: 4, seed: 4");
    let dir = scratch(
        "mismatch",
        &[
            ("a.model", &program("epochs 2", "")),
            ("b.model", &program("epochs 3", "")),
            // Same shapes, other values.
            ("c.model", &other_data),
        ],
    );
    for other in ["b.model", "c.model"] {
        let output = mpirun(&dir, &[(1, kiln(&["a.model"])), (1, kiln(&[other]))]);
        let text = text(&output);
        assert!(!output.status.success(), "{text}");
        assert!(text.contains("E0880"), "{text}");
        assert!(text.contains("rank 1 differs from rank 0"), "{text}");
    }
}

#[test]
fn a_rank_that_fails_ends_every_rank() {
    // Rank 1 cannot read its data while rank 0 trains: rank 1 reports and aborts the job.
    let dir = scratch(
        "fails",
        &[
            ("a.model", &program("epochs 50", "")),
            (
                "b.model",
                &program("epochs 50", "").replace(
                    "synthetic_classification(samples: 1000, features: 16, classes: 4, seed: 3)",
                    "csv(\"missing.csv\", label: \"y\")",
                ),
            ),
        ],
    );
    let output = mpirun(&dir, &[(1, kiln(&["a.model"])), (1, kiln(&["b.model"]))]);
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("rank 1 of 2: error"), "{text}");
    assert!(text.contains("missing.csv"), "{text}");
}

#[test]
fn a_rank_that_is_killed_ends_every_rank() {
    // No callbacks: nothing stops training before the kill.
    let endless = program("epochs 100000", "").replace(
        "    callbacks        [reduce_lr_on_plateau(patience: 1), early_stopping(patience: 3)]\n",
        "",
    );
    let dir = scratch("killed", &[("m.model", &endless)]);
    // Rank 1 dies (SIGKILL) in the middle of training; rank 0 is waiting for its gradients.
    let mut killed = vec![
        "timeout".to_string(),
        "-s".into(),
        "KILL".into(),
        "3".into(),
    ];
    killed.extend(kiln(&["m.model", "-q"]));
    let output = mpirun(&dir, &[(1, kiln(&["m.model", "-q"])), (1, killed)]);
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(!text.contains("Trained m"), "{text}");
}

/// `kiln run ARGS` in one process, which must succeed.
fn single_ok(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("run")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = text(&output);
    assert!(output.status.success(), "{args:?}: {text}");
    text
}

/// The `val_…` columns of a `--history` CSV, as written.
fn validation_columns(history: &str) -> Vec<Vec<String>> {
    let mut lines = history.lines().map(|l| l.split(',').collect::<Vec<_>>());
    let header = lines.next().unwrap();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].starts_with("val_"))
        .collect();
    assert!(keep.len() >= 4, "{header:?}");
    lines
        .map(|row| keep.iter().map(|&i| row[i].to_string()).collect())
        .collect()
}

#[test]
fn validation_evaluate_predict_and_test_split_shared_among_ranks_equal_one_process() {
    // Validation (200 samples: 4 batches of 50 and one of 1), the test split (101: 3 batches),
    // `evaluate` and `predict` (389: 8 batches) split into runs of whole batches that 2 and 3
    // ranks do not share evenly. The learning rate is so small that no weight moves (biases
    // leave zero by ~1e-30, which no output can see), so every run evaluates the weights a single
    // process does: the numbers must be the same to the last digit written.
    let source = "\
data train = synthetic_classification(samples: 1003, features: 16, classes: 4, seed: 3)
data fresh = synthetic_classification(samples: 389, features: 16, classes: 4, seed: 9)

model m(x: f32[B, 16]) -> f32[B, 4] {
    dense(32, relu)
    dense(4, softmax)
}

fit m on train {
    loss             sparse_categorical_crossentropy
    optimizer        sgd(lr: 1e-30)
    metrics          [accuracy, auc, f1_score]
    epochs           2
    batch            50
    seed             5
    validation_split 0.2
    test_split       0.1
}

evaluate m on fresh
predict m on fresh to \"p.csv\"
";
    let dir = scratch("evaluate", &[("m.model", source)]);
    let reported = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("Evaluated ") || l.starts_with("Predicted "))
            .map(String::from)
            .collect()
    };
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let one = single_ok(&dir, &["m.model", "-q", "--history", "h.csv"]);
    let (one_history, one_predictions) = (read("h.csv"), read("p.csv"));
    assert_eq!(reported(&one).len(), 3, "{one}");
    for ranks in [2, 3] {
        std::fs::remove_file(dir.join("p.csv")).unwrap();
        let out = run_ok(&dir, ranks, &["m.model", "-q", "--history", "h.csv"]);
        assert_eq!(reported(&out), reported(&one), "{ranks} ranks");
        assert_eq!(
            validation_columns(&read("h.csv")),
            validation_columns(&one_history),
            "{ranks} ranks"
        );
        assert_eq!(read("p.csv"), one_predictions, "{ranks} ranks");
    }
}

/// The weights of a checkpoint (optimizer state left out), by name.
fn checkpoint_weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut weights: Vec<(String, Vec<f32>)> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("optimizer."))
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

/// The largest `max |Δw| / max |w|` over the tensors of two checkpoints of one model.
fn largest_relative_difference(a: &Path, b: &Path) -> f64 {
    let (a, b) = (checkpoint_weights(a), checkpoint_weights(b));
    assert_eq!(a.len(), b.len());
    let mut worst = 0.0f64;
    for ((name, x), (other, y)) in a.iter().zip(&b) {
        assert_eq!((name, x.len()), (other, y.len()));
        let scale = x.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
        let difference = x
            .iter()
            .zip(y)
            .fold(0.0f64, |m, (v, w)| m.max(f64::from((v - w).abs())));
        worst = worst.max(difference / scale.max(f64::MIN_POSITIVE));
    }
    worst
}

#[test]
fn mnist_on_two_and_three_ranks_stays_within_the_documented_bound_of_one_process() {
    // programs/mnist.model shortened: one epoch on its 2,000 held-out images (1,500 training,
    // 500 validating: 24 steps of 64), so that the test takes seconds.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/data/mnist");
    let mnist =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/mnist.model"))
            .unwrap();
    let train = "data train = idx(images: \"data/mnist/train-images-idx3-ubyte.gz\",\n                 labels: \"data/mnist/train-labels-idx1-ubyte.gz\", scale: 255)\n";
    assert!(
        mnist.contains(train),
        "programs/mnist.model changed: update this test"
    );
    let short = mnist
        .replace(train, "")
        .replace("\"data/mnist/", &format!("\"{}/", data.display()))
        .replace("fit mlp on train {", "fit mlp on test {")
        .replace("epochs     5", "epochs     1")
        .replace("validation test", "validation_split 0.25")
        + "save mlp to \"w.safetensors\"\n";
    assert!(short.contains("epochs     1") && short.contains("validation_split"));
    let dir = scratch("mnist", &[("m.model", &short)]);
    // The bound docs/distributed.md states for this run (measured: 6.5e-7 on 2 ranks, 4.3e-6
    // on 3).
    within_bound_of_one_process(&dir, &[2, 3], 1e-4);
}

/// Trains `dir/m.model` (which saves `w.safetensors`) in one process and on each number of
/// `ranks`: every rank's weights hash the same (compared after the fit, E0881 otherwise), and
/// each tensor differs from one process's by at most `bound` of its largest value.
fn within_bound_of_one_process(dir: &Path, ranks: &[usize], bound: f64) {
    single_ok(dir, &["m.model", "-q"]);
    std::fs::rename(dir.join("w.safetensors"), dir.join("one.safetensors")).unwrap();
    for &ranks in ranks {
        weights(&run_ok(dir, ranks, &["m.model", "-q"]), ranks);
        let relative =
            largest_relative_difference(&dir.join("one.safetensors"), &dir.join("w.safetensors"));
        assert!(relative <= bound, "{ranks} ranks: {relative:e}");
    }
}

#[test]
fn dropout_draws_the_masks_of_one_process_on_any_number_of_ranks() {
    // Each rank's slice of a batch draws the masks of those rows of the whole batch
    // (`ir::dropout::FIRST_ROW`), so 1, 2 and 3 ranks train what one process trains, up to the
    // rounding of the gradient sum; with the masks drawn per slice they differed by whole units.
    let source = "\
data train = synthetic_classification(samples: 400, features: 16, classes: 4, seed: 3)

model m(x: f32[B, 16]) -> f32[B, 4] {
    dense(64, relu)
    dropout(0.5)
    dense(4, softmax)
}

fit m on train {
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 0.01)
    epochs    2
    batch     50
    seed      5
}

save m to \"w.safetensors\"
";
    let dir = scratch("dropout", &[("m.model", source)]);
    within_bound_of_one_process(&dir, &[1, 2, 3], 1e-4);
}

#[test]
fn batch_normalization_moving_statistics_are_those_of_the_whole_batch() {
    // One step of one batch of 60 rows, momentum 0: the moving statistics become the batch's
    // mean and variance. The learning rate moves no weight, so every run normalizes the same
    // values; the ranks' variances plus the spread between their means give the variance of
    // the whole batch (without the spread, 2 and 3 ranks were 3% and 6% low).
    let source = "\
data train = synthetic_classification(samples: 60, features: 8, classes: 3, seed: 3)

model m(x: f32[B, 8]) -> f32[B, 3] {
    dense(16)
    batch_normalization(momentum: 0.0)
    dense(3, softmax)
}

fit m on train {
    loss      sparse_categorical_crossentropy
    optimizer sgd(lr: 1e-30)
    epochs    1
    batch     60
    shuffle   false
    seed      5
}

save m to \"w.safetensors\"
";
    let dir = scratch("moving", &[("m.model", source)]);
    single_ok(&dir, &["m.model", "-q"]);
    let one = checkpoint_weights(&dir.join("w.safetensors"));
    for ranks in [1, 2, 3] {
        weights(&run_ok(&dir, ranks, &["m.model", "-q"]), ranks);
        let spread = checkpoint_weights(&dir.join("w.safetensors"));
        for ((name, a), (_, b)) in one.iter().zip(&spread) {
            if !name.contains("moving") {
                continue;
            }
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                    "{ranks} ranks, {name}: {x} against {y}"
                );
            }
        }
    }
}
