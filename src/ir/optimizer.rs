//! The optimizer update as IR: new values for every parameter and optimizer state, appended to
//! the graph after the gradients, so it is fused and compiled with the rest of the step.

use super::graph::{Graph, Slot, StateInfo, Update, ValueId};
use super::op::{BinaryOp, UnaryOp};
use super::shape::{Shape, TensorType};
use crate::check::program::Optimizer;
use crate::diag::Span;

/// Name of the scalar graph input holding Adam's 1-based step count `t`.
pub const STEP: &str = "step";

/// Name of the scalar graph input holding the learning rate of this step. It is an input, not a
/// constant, so schedules and `reduce_lr_on_plateau` change it between steps without recompiling;
/// the runtime sets it before every step (to the optimizer's `lr` when nothing changes it).
pub const LR: &str = "lr";

/// Appends the update for `optimizer` (gradients must already be in `graph.gradients`).
pub fn append_update(graph: &mut Graph, optimizer: &Optimizer, span: Option<Span>) {
    match *optimizer {
        Optimizer::Sgd { lr: _ } => {
            let lr = graph.input(LR, TensorType::f32(Shape::scalar()), span);
            for gradient in graph.gradients.clone() {
                let p = param(graph, gradient.param);
                let step = graph.binary(BinaryOp::Mul, lr, gradient.value, span);
                let value = graph.binary(BinaryOp::Sub, p, step, span);
                write(graph, Slot::Param(gradient.param), value);
            }
        }
        Optimizer::SgdMomentum {
            lr: _,
            momentum,
            nesterov,
        } => {
            use BinaryOp::{Add, Mul, Sub};
            let lr = graph.input(LR, TensorType::f32(Shape::scalar()), span);
            let mu = graph.constant(momentum, span);
            for gradient in graph.gradients.clone() {
                let g = gradient.value;
                let shape = graph.params[gradient.param].shape.clone();
                let name = graph.params[gradient.param].name.clone();
                let (v_index, v) = state(graph, format!("{name}.momentum"), &shape, span);
                // Keras: v = momentum · v − lr · g; p += v, or (nesterov) p += momentum · v − lr · g.
                let decayed = graph.binary(Mul, mu, v, span);
                let scaled = graph.binary(Mul, lr, g, span);
                let v_new = graph.binary(Sub, decayed, scaled, span);
                let p = param(graph, gradient.param);
                let delta = if nesterov {
                    let ahead = graph.binary(Mul, mu, v_new, span);
                    graph.binary(Sub, ahead, scaled, span)
                } else {
                    v_new
                };
                let p_new = graph.binary(Add, p, delta, span);
                write(graph, Slot::State(v_index), v_new);
                write(graph, Slot::Param(gradient.param), p_new);
            }
        }
        Optimizer::Adam {
            lr: _,
            beta1,
            beta2,
            eps,
        }
        | Optimizer::AdamTorch {
            lr: _,
            beta1,
            beta2,
            eps,
        } => {
            let torch = matches!(optimizer, Optimizer::AdamTorch { .. });
            use BinaryOp::{Add, Div, Mul, Pow, Sub};
            // Keras's form: alpha = lr · sqrt(1 − β2^t) / (1 − β1^t), computed once per step.
            let t = graph.step_input(span);
            let one = graph.constant(1.0, span);
            let b1 = graph.constant(beta1, span);
            let b2 = graph.constant(beta2, span);
            let b1_t = graph.binary(Pow, b1, t, span);
            let b2_t = graph.binary(Pow, b2, t, span);
            let bias1 = graph.binary(Sub, one, b1_t, span);
            let bias2 = graph.binary(Sub, one, b2_t, span);
            let root = graph.unary(UnaryOp::Sqrt, bias2, span);
            let lr = graph.input(LR, TensorType::f32(Shape::scalar()), span);
            // PyTorch divides m by (1 − β1^t) and sqrt(v) by sqrt(1 − β2^t) before adding ε:
            // alpha = lr / (1 − β1^t), and the root is kept for the denominator.
            let (alpha, root_bias2) = if torch {
                (graph.binary(Div, lr, bias1, span), Some(root))
            } else {
                let scaled = graph.binary(Mul, lr, root, span);
                (graph.binary(Div, scaled, bias1, span), None)
            };
            let b2_value = b2;
            let one_minus_b1 = graph.constant(1.0 - beta1, span);
            let one_minus_b2 = graph.constant(1.0 - beta2, span);
            let eps = graph.constant(eps, span);

            for gradient in graph.gradients.clone() {
                let g = gradient.value;
                let shape = graph.params[gradient.param].shape.clone();
                let name = graph.params[gradient.param].name.clone();
                let (m_index, m) = state(graph, format!("{name}.m"), &shape, span);
                let (v_index, v) = state(graph, format!("{name}.v"), &shape, span);
                // m += (g − m)(1 − β1); v += (g² − v)(1 − β2): Keras's exact arithmetic.
                let dm = graph.binary(Sub, g, m, span);
                let dm = graph.binary(Mul, dm, one_minus_b1, span);
                let m_new = graph.binary(Add, m, dm, span);
                let g2 = graph.binary(Mul, g, g, span);
                let v_new = if torch {
                    // PyTorch: v · β2 + (1 − β2) · g² (addcmul).
                    let kept = graph.binary(Mul, v, b2_value, span);
                    let added = graph.binary(Mul, g2, one_minus_b2, span);
                    graph.binary(Add, kept, added, span)
                } else {
                    let dv = graph.binary(Sub, g2, v, span);
                    let dv = graph.binary(Mul, dv, one_minus_b2, span);
                    graph.binary(Add, v, dv, span)
                };
                // p −= (m · alpha) / (sqrt(v) + ε); torch: sqrt(v) / sqrt(1 − β2^t) + ε.
                let numerator = graph.binary(Mul, m_new, alpha, span);
                let root_v = graph.unary(UnaryOp::Sqrt, v_new, span);
                let root_v = match root_bias2 {
                    Some(root) => graph.binary(Div, root_v, root, span),
                    None => root_v,
                };
                let denominator = graph.binary(Add, root_v, eps, span);
                let step = graph.binary(Div, numerator, denominator, span);
                let p = param(graph, gradient.param);
                let p_new = graph.binary(Sub, p, step, span);
                write(graph, Slot::State(m_index), m_new);
                write(graph, Slot::State(v_index), v_new);
                write(graph, Slot::Param(gradient.param), p_new);
            }
        }
    }
}

/// The step stores `value` into `target` once it has run.
fn write(graph: &mut Graph, target: Slot, value: ValueId) {
    graph.updates.push(Update { target, value });
}

fn param(graph: &Graph, index: usize) -> ValueId {
    graph
        .param_value(index)
        .expect("internal compiler error: every parameter has a node")
}

fn state(graph: &mut Graph, name: String, shape: &Shape, span: Option<Span>) -> (usize, ValueId) {
    let index = graph.states.len();
    let value = graph.state(
        StateInfo {
            name,
            shape: shape.clone(),
        },
        span,
    );
    (index, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{self, Bindings};
    use crate::ir::graph::{Gradient, Init, ParamInfo};
    use ndarray::{ArrayD, IxDyn};

    /// One update of a parameter `p` with gradient `g` (an input), run on the interpreter:
    /// the parameter and states after it.
    fn update(optimizer: Optimizer, p: f64, g: f64, states: &[f64], t: f64, lr: f64) -> Vec<f64> {
        let mut graph = Graph::new("u");
        graph.param(
            ParamInfo {
                name: "w".into(),
                shape: Shape::fixed(&[1]),
                init: Init::Zeros,
            },
            None,
        );
        let gradient = graph.input("g", TensorType::f32(Shape::fixed(&[1])), None);
        graph.gradients.push(Gradient {
            param: 0,
            value: gradient,
        });
        append_update(&mut graph, &optimizer, None);
        let scalar = |v: f64| ArrayD::from_elem(IxDyn(&[]), v);
        let vector = |v: f64| ArrayD::from_elem(IxDyn(&[1]), v);
        let inputs = graph
            .inputs
            .iter()
            .map(|i| match i.name.as_str() {
                "g" => vector(g),
                LR => scalar(lr),
                _ => scalar(t),
            })
            .collect();
        let bindings = Bindings {
            inputs,
            params: vec![vector(p)],
            states: states.iter().map(|&s| vector(s)).collect(),
        };
        let result = interp::step(&graph, &bindings, 1).unwrap();
        std::iter::once(result.params[0][[0]])
            .chain(result.states.iter().map(|s| s[[0]]))
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6 * y.abs().max(1e-3), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn momentum_and_nesterov_follow_keras() {
        let (lr, mu, p, g, v) = (0.1f64, 0.9f64, 1.0f64, 0.5f64, 0.2f64);
        let v_new = mu * v - lr * g;
        let sgd = |nesterov| Optimizer::SgdMomentum {
            lr: 0.0,
            momentum: 0.9,
            nesterov,
        };
        close(
            &update(sgd(false), p, g, &[v], 1.0, lr),
            &[p + v_new, v_new],
        );
        close(
            &update(sgd(true), p, g, &[v], 1.0, lr),
            &[p + mu * v_new - lr * g, v_new],
        );
    }

    #[test]
    fn torch_profile_adds_eps_after_bias_correction() {
        let (lr, b1, b2, eps, t) = (0.01f64, 0.9f64, 0.999f64, 1e-3f64, 3.0f64);
        let (p, g, m, v) = (1.0f64, 0.5f64, 0.1f64, 0.01f64);
        let m_new = m + (g - m) * (1.0 - b1);
        let v_new = v * b2 + (1.0 - b2) * g * g;
        let (c1, c2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
        let torch = p - lr / c1 * m_new / (v_new.sqrt() / c2.sqrt() + eps);
        let keras = p - lr * c2.sqrt() / c1 * m_new / (v_new.sqrt() + eps);
        let adam = |torch| {
            let (lr, beta1, beta2, eps) = (0.0, 0.9, 0.999, 1e-3);
            Optimizer::adam(torch, lr, beta1, beta2, eps)
        };
        close(
            &update(adam(true), p, g, &[m, v], t, lr),
            &[torch, m_new, v_new],
        );
        close(
            &update(adam(false), p, g, &[m, v], t, lr),
            &[keras, m_new, v_new],
        );
        // The two differ measurably with a large eps.
        assert!((torch - keras).abs() > 1e-5);
    }
}
