//! The JIT against the reference interpreter on the same inputs: forward output, loss, every
//! gradient, and the parameters and optimizer state after one update — for the seed model and for
//! variants covering every activation, both losses and both optimizers, at the full batch size
//! and at a smaller (ragged last) batch.

use kiln::codegen::{self, CodegenConfig};
use kiln::diag::Span;
use kiln::driver::{self, GraphStage};
use kiln::interp::{self, Bindings};
use kiln::ir::graph::Graph;
use kiln::ir::lower;
use kiln::ir::optimizer::STEP;
use kiln::ir::shape::DType;
use kiln::program::{Fit, Model};
use kiln::runtime::init;
use kiln::settings::optimizer;
use kiln::settings::{Activation, Loss, Optimizer};
use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model(widths: &[usize], activations: &[Activation]) -> Model {
    kiln::check::dense_stack("m", widths, activations)
}

fn fit(loss: Loss, optimizer: Optimizer, batch: usize) -> Fit {
    Fit {
        span: Span::default(),
        model: 0,
        data: 0,
        loss,
        loss_options: Default::default(),
        optimizer,
        metrics: vec![],
        epochs: 1,
        batch,
        seed: 1,
        shuffle: true,
        validation: None,
        training: Default::default(),
    }
}

fn close(what: &str, jit: &[f32], reference: &ArrayD<f64>) {
    let reference = reference.as_standard_layout();
    let reference = reference.as_slice().unwrap();
    assert_eq!(jit.len(), reference.len(), "{what}: length");
    for (i, (&a, &b)) in jit.iter().zip(reference).enumerate() {
        let (a, b) = (f64::from(a), b);
        let tolerance = 1e-4 * a.abs().max(b.abs()) + 1e-6;
        assert!(
            (a - b).abs() <= tolerance,
            "{what}[{i}]: JIT {a}, interpreter {b}"
        );
    }
}

/// Compiles the whole step, runs it once at `batch`, runs the interpreter on the same values,
/// and compares everything the step produces.
fn compare(model: &Model, fit: &Fit, batch: usize) {
    let program = kiln::program::CheckedProgram {
        data: vec![],
        models: vec![model.clone()],
        fits: vec![fit.clone()],
        actions: vec![],
    };
    let graph: Graph = driver::training_graph(&program, fit, GraphStage::Optimized).unwrap();
    let mut step = codegen::compile(
        &graph,
        &CodegenConfig {
            max_batch: fit.batch,
        },
    )
    .unwrap();

    let mut rng = ChaCha8Rng::seed_from_u64(batch as u64);
    let params = init::initial_params(&graph, 5);
    // Optimizer state mid-training (not zero), so every term of the update is exercised.
    let states: Vec<Vec<f32>> = graph
        .states
        .iter()
        .map(|s| {
            (0..s.shape.numel(0))
                .map(|_| rng.random_range(0.0..0.01))
                .collect()
        })
        .collect();
    let mut inputs = Vec::new();
    for (index, input) in graph.inputs.iter().enumerate() {
        let len = input.ty.shape.numel(batch);
        let values: Vec<f32> = if input.name == STEP {
            vec![3.0]
        } else if input.ty.dtype == DType::I32 {
            let classes = fit.loss.classes(model.output_features) as i32;
            let labels: Vec<i32> = (0..len).map(|_| rng.random_range(0..classes)).collect();
            step.input_i32_mut(index, batch).copy_from_slice(&labels);
            labels.iter().map(|&l| l as f32).collect()
        } else {
            (0..len).map(|_| rng.random_range(-2.0..2.0)).collect()
        };
        if input.ty.dtype == DType::F32 {
            step.input_f32_mut(index, batch).copy_from_slice(&values);
        }
        inputs.push(array(&values, &input.ty.shape.resolve(batch)));
    }
    for (i, values) in params.iter().enumerate() {
        step.param_mut(i).copy_from_slice(values);
    }
    for (i, values) in states.iter().enumerate() {
        step.state_mut(i).copy_from_slice(values);
    }
    let bindings = Bindings {
        inputs,
        params: params
            .iter()
            .zip(&graph.params)
            .map(|(v, p)| array(v, &p.shape.resolve(0)))
            .collect(),
        states: states
            .iter()
            .zip(&graph.states)
            .map(|(v, s)| array(v, &s.shape.resolve(0)))
            .collect(),
    };
    let reference = interp::step(&graph, &bindings, batch).unwrap();

    step.run(batch);
    let label = format!("{:?}/{:?} batch {batch}", fit.loss, fit.optimizer);
    for name in [lower::LOSS, lower::SCORES] {
        close(
            &format!("{label} output {name}"),
            step.output(name, batch).unwrap(),
            reference.output(name).unwrap(),
        );
    }
    for (i, gradient) in reference.gradients.iter().enumerate() {
        close(
            &format!("{label} grad {}", graph.params[i].name),
            step.gradient(i),
            gradient,
        );
    }
    for (i, value) in reference.params.iter().enumerate() {
        close(
            &format!("{label} updated {}", graph.params[i].name),
            step.param(i),
            value,
        );
    }
    for (i, value) in reference.states.iter().enumerate() {
        close(
            &format!("{label} updated {}", graph.states[i].name),
            step.state(i),
            value,
        );
    }
}

fn array(values: &[f32], shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), values.iter().map(|&v| f64::from(v)).collect()).unwrap()
}

fn adam() -> Optimizer {
    Optimizer::new(&optimizer::ADAM, &[])
}

#[test]
fn seed_model_step_matches_the_interpreter_at_full_and_ragged_batch() {
    let seed = model(
        &[32, 64, 64, 10],
        &[Activation::Relu, Activation::Relu, Activation::Softmax],
    );
    let fit = fit(Loss::SparseCategoricalCrossentropy, adam(), 32);
    compare(&seed, &fit, 32);
    compare(&seed, &fit, 7);
    compare(&seed, &fit, 1);
}

#[test]
fn every_activation_loss_and_optimizer() {
    let m = model(
        &[5, 7, 6, 4, 3],
        &[
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
            Activation::Linear,
        ],
    );
    for loss in [Loss::SparseCategoricalCrossentropy, Loss::MeanSquaredError] {
        for optimizer in [optimizer::with_lr(&optimizer::SGD, 0.1), adam()] {
            let fit = fit(loss, optimizer, 16);
            compare(&m, &fit, 16);
            compare(&m, &fit, 5);
        }
    }
}

#[test]
fn softmax_output_with_mean_squared_error() {
    let m = model(&[4, 6, 3], &[Activation::Tanh, Activation::Softmax]);
    compare(&m, &fit(Loss::MeanSquaredError, adam(), 8), 8);
}

/// A program written with the whole language — a user layer and function, a residual
/// connection, dropout, reshapes, slices and concatenation — compiles to a step that agrees with
/// the interpreter like a plain dense stack does.
#[test]
fn language_features_step_matches_the_interpreter() {
    let source = "\
layer residual(units: int) {
    param w: f32[units, units] = he_normal
    param b: f32[units] = zeros
    forward(x: f32[B, units]) -> f32[B, units] {
        x + relu(x @ w + b)
    }
}
fn swish(x) = x * sigmoid(x)
model net(x: f32[B, 2, 6]) -> f32[B, 3] {
    let flat = flatten(x)
    let h = dense(8, swish)(flat)
    let d = dropout(h, 0.25, seed: 3)
    let r = residual(8)(d)
    let parts = concat([slice(r, 1, 0, 4), gelu(slice(r, 1, 4, 8)), mean(x, axis: 1)], axis: -1)
    let t = transpose(reshape(parts, [2, 7]))
    dense(3, softmax)(elu(flatten(t)) + leaky_relu(concat([sum(t, axis: 2), max(t, axis: 2)]), alpha: 0.1))
}
data d = synthetic_classification(samples: 64, features: 12, classes: 3)
fit net on d { loss sparse_categorical_crossentropy }
";
    let checked = driver::check_source(source).unwrap_or_else(|d| panic!("{d:?}"));
    let fit = Fit {
        model: 0,
        ..fit(Loss::SparseCategoricalCrossentropy, adam(), 16)
    };
    let net = &checked.program.models[checked.program.fits[0].model];
    compare(net, &fit, 16);
    compare(net, &fit, 5);
}

#[test]
fn every_loss_matches_the_interpreter() {
    let probabilities = model(&[4, 6, 3], &[Activation::Tanh, Activation::Softmax]);
    let binary = model(&[4, 6, 1], &[Activation::Relu, Activation::Sigmoid]);
    let linear = model(&[4, 6, 3], &[Activation::Tanh, Activation::Linear]);
    let cases = [
        (&probabilities, Loss::CategoricalCrossentropy),
        (&binary, Loss::BinaryCrossentropy),
        (&linear, Loss::MeanAbsoluteError),
        (&linear, Loss::Huber),
    ];
    for (m, loss) in cases {
        let fit = fit(loss, adam(), 16);
        compare(m, &fit, 16);
        compare(m, &fit, 5);
    }
    // Logits: the output itself is read as logits.
    let logits_fit = Fit {
        loss_options: kiln::settings::LossOptions {
            from_logits: true,
            delta: 1.0,
        },
        ..fit(Loss::BinaryCrossentropy, adam(), 8)
    };
    let binary_logits = model(&[4, 6, 1], &[Activation::Relu, Activation::Linear]);
    compare(&binary_logits, &logits_fit, 8);
}

/// A model that calls `grad` trains through a second derivative; the JIT agrees with the
/// interpreter on it too.
#[test]
fn grad_in_a_model_matches_the_interpreter() {
    let source = "\
fn energy(h) = sum(softplus(h) * h)
model m(x: f32[B, 4]) -> f32[B, 3] {
    let h = dense(8, tanh)(x)
    dense(3, softmax)(grad(energy)(h))
}
";
    let checked = driver::check_source(source).unwrap_or_else(|d| panic!("{d:?}"));
    let fit = Fit {
        model: 0,
        ..fit(Loss::SparseCategoricalCrossentropy, adam(), 8)
    };
    compare(&checked.program.models[0], &fit, 8);
    compare(&checked.program.models[0], &fit, 3);
}
