//! End to end: the example programs train through the whole pipeline (JIT-compiled step) to the
//! accuracy a Keras user would expect, and the same seed gives bit-identical weights.

use std::path::Path;

use kiln::driver::{self, FitOutcome};

fn train(program: &str) -> Vec<FitOutcome> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs")
        .join(program);
    let source = std::fs::read_to_string(&path).unwrap();
    match driver::run(&source, path.parent().unwrap(), &mut |_| {}) {
        Ok(outcomes) => outcomes,
        Err(driver::RunError::Program(d)) => panic!("{program}: {d:?}"),
        Err(driver::RunError::Data(e)) => panic!("{program}: {e}"),
    }
}

fn final_accuracy(outcome: &FitOutcome) -> f64 {
    let last = outcome.history.last().unwrap();
    last.metrics
        .iter()
        .find(|(name, _)| *name == "accuracy")
        .map(|&(_, value)| value)
        .unwrap()
}

#[test]
fn seed_model_reaches_90_percent_and_repeats_exactly() {
    let first = train("seed.model");
    let accuracy = final_accuracy(&first[0]);
    assert!(accuracy >= 0.9, "seed.model: training accuracy {accuracy}");
    let losses: Vec<f64> = first[0].history.iter().map(|r| r.loss).collect();
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "loss falls every epoch: {losses:?}"
    );

    let second = train("seed.model");
    assert_eq!(first[0].weights_hash, second[0].weights_hash);
    assert_eq!(first[0].final_params, second[0].final_params);
}

#[test]
fn iris_reaches_90_percent() {
    let outcome = train("iris.model");
    let accuracy = final_accuracy(&outcome[0]);
    assert!(accuracy >= 0.9, "iris.model: training accuracy {accuracy}");
}
