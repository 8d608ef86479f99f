//! Every optimizer against a hand-written reference: the seed model trained for 200 steps from
//! the parity fixture's initial weights and batches, each step's loss within 1e-5 relative of a
//! float64 NumPy run of Keras 3's update formula for that optimizer
//! (`bench/parity/make_optimizer_fixtures.py` writes `tests/fixtures/parity/optimizers.json`;
//! see `docs/parity.md`).

mod parity_fixture;

use parity_fixture::{Fixture, agreement, fixture_dir};
use serde_json::Value;

const STEP_TOLERANCE: f64 = 1e-5;

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn every_optimizer_follows_its_keras_formula_for_200_steps() {
    let fixture = Fixture::load();
    let text = std::fs::read_to_string(fixture_dir().join("optimizers.json")).unwrap();
    let references: Value = serde_json::from_str(&text).unwrap();
    let seed = include_str!("../programs/seed.model");
    let mut failures = Vec::new();
    let mut seen = Vec::new();
    for reference in references["optimizers"].as_array().unwrap() {
        let line = reference["optimizer"].as_str().unwrap();
        let source = seed.replace("optimizer adam(lr: 0.001)", &format!("optimizer {line}"));
        assert_ne!(source, seed, "the seed program's optimizer line moved");
        let (fit, kiln) = parity_fixture::train(&fixture, &source);
        seen.push(fit.optimizer.def.name);
        let f64_run = numbers(&reference["float64"]);
        let f32_run = numbers(&reference["float32"]);
        let a = agreement(&kiln, &f64_run);
        let b = agreement(&kiln, &f32_run);
        let s = a.worst_step - 1;
        let report = format!(
            "{line}: vs float64 max {:.2e} at step {} (Kiln {:.7}, reference {:.7}), means \
             {:.2e}; vs float32 max {:.2e}",
            a.worst, a.worst_step, kiln[s], f64_run[s], a.mean, b.worst
        );
        println!("{report}");
        if a.worst > STEP_TOLERANCE {
            failures.push(report);
        }
        // Training moved, so the comparison covered real updates.
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (first, last) = (mean(&kiln[..20]), mean(&kiln[kiln.len() - 20..]));
        assert!(
            last < 0.98 * first,
            "{line}: the loss did not fall ({first} → {last})"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for def in kiln::settings::optimizer::OPTIMIZERS {
        assert!(
            seen.contains(&def.name),
            "`{}` has no reference run in optimizers.json",
            def.name
        );
    }
}
