//! `grad` in the language: the gradient of a user function, built as IR by the same autodiff
//! that trains models, checked against the derivative worked out by hand.

use kiln::driver;
use kiln::interp::{self, Bindings};
use ndarray::{ArrayD, IxDyn};

fn forward(source: &str, x: &[f64], shape: &[usize]) -> ArrayD<f64> {
    let checked = driver::check_source(source).unwrap_or_else(|d| panic!("{d:?}"));
    let graph = &checked.program.models[0].forward;
    let bindings = Bindings {
        inputs: vec![ArrayD::from_shape_vec(IxDyn(shape), x.to_vec()).unwrap()],
        params: vec![],
        states: vec![],
    };
    let values = interp::evaluate(graph, &bindings, shape[0]).unwrap();
    values[graph.outputs[0].1.index()].clone()
}

#[test]
fn gradient_of_a_user_function() {
    // d/dx Σ (x³/3 + sin-free softplus(x)) = x² + sigmoid(x)
    let source = "\
fn energy(x) = sum(x * x * x / 3 + softplus(x))
model m(x: f32[B, 3]) -> f32[B, 3] {
    grad(energy)(x)
}
";
    let x = [0.5, -1.0, 2.0, 0.0, 3.0, -0.25];
    let out = forward(source, &x, &[2, 3]);
    for (got, &x) in out.iter().zip(&x) {
        let want = x * x + 1.0 / (1.0 + (-x).exp());
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
}

#[test]
fn gradient_with_respect_to_a_chosen_argument() {
    // f(a, b) = Σ a·b²: ∂f/∂b = 2·a·b
    let source = "\
fn f(a, b) = sum(a * b * b)
model m(x: f32[B, 2]) -> f32[B, 2] {
    grad(f, wrt: 1)(x + 1, x)
}
";
    let x = [1.0, 2.0, -3.0, 0.5];
    let out = forward(source, &x, &[2, 2]);
    for (got, &x) in out.iter().zip(&x) {
        let want = 2.0 * (x + 1.0) * x;
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
}

#[test]
fn grad_of_a_non_scalar_function_is_an_error() {
    let source = "\
fn square(x) = x * x
model m(x: f32[B, 2]) -> f32[B, 2] {
    grad(square)(x)
}
";
    let diagnostics = driver::check_source(source).err().unwrap();
    assert_eq!(diagnostics[0].code, "E0224");
}
