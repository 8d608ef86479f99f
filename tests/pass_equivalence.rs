//! The optimization passes keep a training step's meaning: every output, gradient and update of
//! the step agrees on the interpreter before and after them, for every activation, loss and
//! optimizer (exactly without constant folding; to f32 rounding with it). An integration test,
//! since it builds its steps through the checker and the driver, which sit above `ir`. (Moved from
//! `ir/passes.rs`'s own tests.)

use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kiln::diag::Span;
use kiln::driver::{GraphStage, training_graph};
use kiln::interp::{self, Bindings};
use kiln::ir::cse::eliminate_common_subexpressions;
use kiln::ir::dce::eliminate_dead_code;
use kiln::ir::graph::Graph;
use kiln::ir::op::Op;
use kiln::ir::optimizer::STEP;
use kiln::ir::passes::MAX_ROUNDS;
use kiln::ir::shape::DType;
use kiln::ir::simplify::simplify;
use kiln::program::{CheckedProgram, Fit};
use kiln::settings::{Activation, Loss, Optimizer};

fn adam() -> Optimizer {
    Optimizer::new(&kiln::settings::optimizer::ADAM, &[])
}

fn program(
    widths: &[usize],
    activations: &[Activation],
    loss: Loss,
    opt: Optimizer,
) -> CheckedProgram {
    CheckedProgram {
        data: vec![],
        models: vec![kiln::check::dense_stack("m", widths, activations)],
        fits: vec![Fit {
            span: Span::default(),
            model: 0,
            data: 0,
            loss,
            loss_options: Default::default(),
            optimizer: opt,
            metrics: vec![],
            epochs: 1,
            batch: 8,
            seed: 1,
            shuffle: true,
            validation: None,
            training: Default::default(),
        }],
        actions: vec![],
    }
}

fn random_bindings(graph: &Graph, classes: usize, batch: usize, seed: u64) -> Bindings {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut random = |shape: &[usize], lo: f64, hi: f64| {
        let n = shape.iter().product();
        let values = (0..n).map(|_| rng.random_range(lo..hi)).collect();
        ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
    };
    let inputs = graph
        .inputs
        .iter()
        .map(|input| {
            let shape = input.ty.shape.resolve(batch);
            if input.name == STEP {
                ArrayD::from_elem(IxDyn(&[]), 3.0)
            } else if input.ty.dtype == DType::I32 {
                random(&shape, 0.0, classes as f64).mapv(f64::floor)
            } else {
                random(&shape, -2.0, 2.0)
            }
        })
        .collect();
    let params = graph
        .params
        .iter()
        .map(|p| random(&p.shape.resolve(0), -0.5, 0.5))
        .collect();
    let states = graph
        .states
        .iter()
        .map(|s| random(&s.shape.resolve(0), 0.0, 0.01))
        .collect();
    Bindings {
        inputs,
        params,
        states,
    }
}

/// `tolerance` is (relative, absolute).
fn assert_close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>, tolerance: (f64, f64)) {
    assert_eq!(a.shape(), b.shape(), "{what}: shape");
    for (i, (&x, &y)) in a.iter().zip(b.iter()).enumerate() {
        let same = x == y
            || (x.is_nan() && y.is_nan())
            || (x - y).abs() <= tolerance.0 * x.abs().max(y.abs()) + tolerance.1;
        assert!(same, "{what}[{i}]: {x} before the passes, {y} after");
    }
}

/// Everything one step produces agrees between the two graphs.
fn assert_same_step(
    label: &str,
    before: &Graph,
    after: &Graph,
    classes: usize,
    tolerance: (f64, f64),
) {
    for (batch, seed) in [(8, 1), (3, 2)] {
        let bindings = random_bindings(before, classes, batch, seed);
        let a = interp::step(before, &bindings, batch).unwrap();
        let b = interp::step(after, &bindings, batch).unwrap();
        let label = format!("{label} batch {batch}");
        assert_eq!(a.outputs.len(), b.outputs.len());
        for ((name, x), (_, y)) in a.outputs.iter().zip(&b.outputs) {
            assert_close(&format!("{label} output {name}"), x, y, tolerance);
        }
        let pairs = [
            ("grad", &a.gradients, &b.gradients),
            ("param", &a.params, &b.params),
            ("state", &a.states, &b.states),
        ];
        for (kind, xs, ys) in pairs {
            assert_eq!(xs.len(), ys.len());
            for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                assert_close(&format!("{label} {kind} #{i}"), x, y, tolerance);
            }
        }
    }
}

fn constants(graph: &Graph) -> Vec<u32> {
    graph
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::Const { value } => Some(value.to_bits()),
            _ => None,
        })
        .collect()
}

fn check(widths: &[usize], activations: &[Activation], loss: Loss, opt: Optimizer) {
    let label = format!("{widths:?} {loss:?}/{opt:?}");
    let program = program(widths, activations, loss, opt);
    let fit = &program.fits[0];
    let classes = *widths.last().unwrap();
    let before = training_graph(&program, fit, GraphStage::Step).unwrap();
    let after = training_graph(&program, fit, GraphStage::Optimized).unwrap();
    assert!(after.nodes.len() <= before.nodes.len());

    // Without folding the passes only drop identities and duplicates: the same f64 values.
    let mut exact = before.clone();
    for _ in 0..MAX_ROUNDS {
        exact = eliminate_dead_code(&eliminate_common_subexpressions(&simplify(&exact)));
    }
    assert_same_step(
        &format!("{label} without fold"),
        &before,
        &exact,
        classes,
        (1e-9, 0.0),
    );

    // Folding computes constants in f32 like the JIT, where the interpreter would use f64
    // (e.g. `1 / 3` for a mean over three columns): a new constant may differ by one f32
    // rounding, so then the bar is f32's precision (with an absolute floor for values that
    // cancel, like Adam's moments).
    let old = constants(&before);
    let rounded = constants(&after).iter().any(|c| !old.contains(c));
    let tolerance = if rounded { (1e-6, 1e-9) } else { (1e-9, 0.0) };
    assert_same_step(&label, &before, &after, classes, tolerance);
}

#[test]
fn seed_model_with_adam() {
    use Activation::{Relu, Softmax};
    check(
        &[32, 64, 64, 10],
        &[Relu, Relu, Softmax],
        Loss::SparseCategoricalCrossentropy,
        adam(),
    );
}

#[test]
fn every_activation_loss_and_optimizer() {
    use Activation::{Linear, Relu, Sigmoid, Softmax, Tanh};
    for loss in [Loss::SparseCategoricalCrossentropy, Loss::MeanSquaredError] {
        let sgd = kiln::settings::optimizer::with_lr(&kiln::settings::optimizer::SGD, 0.05);
        for opt in [sgd, adam()] {
            check(
                &[5, 7, 6, 4, 3],
                &[Sigmoid, Tanh, Relu, Linear],
                loss,
                opt.clone(),
            );
            check(&[4, 6, 3], &[Tanh, Softmax], loss, opt.clone());
            check(&[3, 4, 1], &[Sigmoid, Linear], loss, opt);
        }
    }
}
