//! Data-parallel training's epoch loop (`runtime::distributed`) without MPI: on one rank
//! (`Alone`) the step split in two — gradients, then the update on their sum — trains exactly
//! the weights of the fused step, with callbacks, validation, a schedule, gradient clipping and
//! batch normalization's moving statistics. The MPI runs are `tests/distributed.rs`.

use std::path::Path;

use kiln::driver::{self, RunOptions};
use kiln::runtime::distributed::{Alone, shard};

const PROGRAM: &str = "\
data train = synthetic_classification(samples: 500, features: 8, classes: 3, seed: 3)

model m(x: f32[B, 8]) -> f32[B, 3] {
    dense(16, relu)
    batch_normalization()
    dropout(0.2)
    dense(3, softmax)
}

fit m on train {
    loss             sparse_categorical_crossentropy
    optimizer        OPTIMIZER
    metrics          [accuracy]
    epochs           4
    batch            48
    seed             5
    validation_split 0.2
    callbacks        [reduce_lr_on_plateau(patience: 1), early_stopping(patience: 2)]
}
";

fn hashes(source: &str, distributed: bool) -> Vec<String> {
    let options = RunOptions::default();
    let dir = Path::new(".");
    let outcomes = if distributed {
        driver::run_distributed(source, dir, &options, &Alone, &mut |_| {})
    } else {
        driver::run_with(source, dir, &options, &mut |_| {})
    };
    let outcomes = outcomes.unwrap_or_else(|_| panic!("runs:\n{source}"));
    outcomes.iter().map(|o| o.weights_hash.clone()).collect()
}

#[test]
fn one_rank_trains_the_weights_of_the_fused_step() {
    for optimizer in [
        "adam(lr: 0.01)",
        "sgd(lr: 0.05, momentum: 0.9, global_clipnorm: 0.5)",
        "rmsprop(clipvalue: 0.1)",
    ] {
        let source = PROGRAM.replace("OPTIMIZER", optimizer);
        assert_eq!(hashes(&source, true), hashes(&source, false), "{optimizer}");
    }
}

#[test]
fn a_short_last_batch_is_split_like_any_other() {
    // 500 samples, 400 after validation: batches of 48, the last of 16, over 3 ranks.
    assert_eq!(
        (0..3).map(|r| shard(16, 3, r)).collect::<Vec<_>>(),
        [0..6, 6..11, 11..16]
    );
    // Fewer rows than ranks: the last ranks get none.
    assert_eq!(
        (0..4).map(|r| shard(2, 4, r).len()).collect::<Vec<_>>(),
        [1, 1, 0, 0]
    );
}

#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_without_the_mpi_feature_says_how_to_build_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["run", "--distributed", "programs/seed.model"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--features mpi"), "{stderr}");
    assert!(output.stdout.is_empty());
}
