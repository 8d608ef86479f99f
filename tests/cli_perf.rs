//! `kiln run --threads N` and `kiln run --profile`: bad values are usage errors, the thread
//! count does not change a bit of training, and the profile reports measured, positive times for
//! the whole step, each phase and each kernel.

mod common;

use common::{Scratch, kiln, path, scratch, text};
use std::process::Output;

/// A scratch folder holding `m.model`, and the program's path.
fn program(test: &str, source: &str) -> (Scratch, String) {
    let dir = scratch(test, &[("m.model", source)]);
    let program = path(&dir, "m.model");
    (dir, program)
}

/// Big enough that its matrix products are split over threads (64×256×256 multiply-adds is
/// over `gemm::PARALLEL_MIN_MACS`), with validation, `evaluate` and `predict`, which compile
/// steps of their own.
const WIDE: &str = "data train = synthetic_classification(samples: 512, features: 256, classes: 10, seed: 1)\n\
    data test = synthetic_classification(samples: 128, features: 256, classes: 10, seed: 2)\n\
    model m(x: f32[B, 256]) -> f32[B, 10] {\n    dense(256, relu)\n    dense(10, softmax)\n}\n\
    fit m on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam\n    \
    metrics [accuracy]\n    epochs 2\n    batch 64\n    validation test\n}\n\
    evaluate m on test\n\
    predict m on test to \"p.csv\"\n";

/// The `(weights …)` hash and the rest of the output without times.
fn results(out: &Output) -> (String, Vec<String>) {
    let stdout = text(&out.stdout);
    let hash = stdout
        .split("(weights ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no weights hash in: {stdout}"))
        .to_string();
    let evaluated = stdout
        .lines()
        .filter(|l| l.starts_with("Evaluated") || l.contains("val_loss"))
        // Without the times: only the `name: value` parts.
        .map(|l| {
            l.split(" - ")
                .filter(|part| part.contains(": "))
                .collect::<Vec<_>>()
                .join(" - ")
        })
        .collect();
    (hash, evaluated)
}

#[test]
fn one_and_two_threads_train_to_the_same_bits() {
    let (_dir, path) = program("threads", WIDE);
    let one = kiln(&["run", "--threads", "1", &path]);
    assert!(one.status.success(), "{}", text(&one.stderr));
    let two = kiln(&["run", "--threads", "2", "--profile", &path]);
    assert!(two.status.success(), "{}", text(&two.stderr));
    // The profile reports the thread count the trained step ran with: the flag reached it.
    assert!(
        text(&two.stdout).contains("batch 64, 2 threads"),
        "{}",
        text(&two.stdout)
    );
    let (hash1, evaluated1) = results(&one);
    let (hash2, evaluated2) = results(&two);
    assert_eq!(hash1, hash2, "final weights differ between 1 and 2 threads");
    // Validation and `evaluate` ran on their own compiled steps, with the same thread count.
    assert_eq!(evaluated1.len(), 4, "{evaluated1:?}");
    assert_eq!(evaluated1, evaluated2);
}

#[test]
fn a_bad_thread_count_is_a_usage_error() {
    for bad in ["0", "two", "-1", "1000", ""] {
        let out = kiln(&["run", "--threads", bad, "programs/seed.model"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--threads {bad:?}: {stderr}");
        assert!(stderr.contains("--threads"), "--threads {bad:?}: {stderr}");
        assert!(out.stdout.is_empty(), "--threads {bad:?} must not train");
    }
    let out = kiln(&["run", "--help"]);
    assert!(text(&out.stdout).contains("--threads <N>"));
    assert!(text(&out.stdout).contains("--profile"));
}

/// The number after `label` on the first line that contains it.
fn number_after(stdout: &str, label: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no `{label}` line in: {stdout}"));
    let rest = &line[line.find(label).unwrap() + label.len()..];
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{label}` in `{line}`"))
}

#[test]
fn profile_reports_measured_times_per_step_phase_and_kernel() {
    let (_dir, path) = program(
        "profile",
        "data d = synthetic_classification(samples: 640, features: 32, classes: 10, seed: 7)\n\
         model m(x: f32[B, 32]) -> f32[B, 10] {\n    dense(64, relu)\n    dense(64, relu)\n    \
         dense(10, softmax)\n}\n\
         fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam\n    \
         epochs 1\n    batch 32\n}\n",
    );
    let plain = kiln(&["run", &path]);
    let out = kiln(&["run", "--profile", &path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "Profile of m: mean times per step over one more epoch (20 steps of batch 32, 1 thread)"
        ),
        "{stdout}"
    );
    // Profiling happens after training, on copies: the fit's results are those of a plain run.
    assert_eq!(results(&plain).0, results(&out).0);
    assert!(!text(&plain.stdout).contains("Profile"));
    for label in [
        "training step (one native call, as trained)",
        "copying the batch into the step's inputs",
        "sum of the kernels' times",
    ] {
        assert!(number_after(&stdout, label) > 0.0, "{label}: {stdout}");
    }
    let kernels = stdout
        .lines()
        .find(|l| l.contains("instrumented step (a timer after each of "))
        .and_then(|l| l.split("each of ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no kernel count in: {stdout}"));
    assert!(kernels >= 7, "{stdout}");
    // Three dense layers: forward and backward matrix products, and an Adam update loop.
    for phase in ["forward", "backward", "update"] {
        assert!(
            number_after(&stdout, &format!("  {phase} ")) > 0.0,
            "{phase}: {stdout}"
        );
    }
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains(" kernel "))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), kernels, "{stdout}");
    assert!(rows.iter().any(|r| r.contains("matmul")), "{stdout}");
    // Adam's update: the native 256-bit code where the host has AVX2 and FMA, else the loop.
    #[cfg(target_arch = "x86_64")]
    let native =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let native = false;
    let update = if native {
        "update adam [" // e.g. `update adam [2570] (Keras form, native 256-bit code)`
    } else {
        "update loop ["
    };
    assert!(rows.iter().any(|r| r.contains(update)), "{stdout}");
    assert!(rows.iter().any(|r| r.contains("line 3")), "{stdout}");
    let total: f64 = rows
        .iter()
        .map(|r| {
            let fields: Vec<&str> = r.split_whitespace().collect();
            let percent = fields.iter().position(|f| f.ends_with('%')).unwrap();
            fields[percent - 1].parse::<f64>().unwrap()
        })
        .sum();
    assert!(
        (total - number_after(&stdout, "sum of the kernels' times")).abs()
            < 0.01 * rows.len() as f64,
        "{stdout}"
    );
}
