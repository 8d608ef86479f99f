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
                graph.updates.push(Update {
                    target: Slot::Param(gradient.param),
                    value,
                });
            }
        }
        Optimizer::Adam {
            lr: _,
            beta1,
            beta2,
            eps,
        } => {
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
            let scaled = graph.binary(Mul, lr, root, span);
            let alpha = graph.binary(Div, scaled, bias1, span);
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
                let dv = graph.binary(Sub, g2, v, span);
                let dv = graph.binary(Mul, dv, one_minus_b2, span);
                let v_new = graph.binary(Add, v, dv, span);
                // p −= (m · alpha) / (sqrt(v) + ε)
                let numerator = graph.binary(Mul, m_new, alpha, span);
                let root_v = graph.unary(UnaryOp::Sqrt, v_new, span);
                let denominator = graph.binary(Add, root_v, eps, span);
                let step = graph.binary(Div, numerator, denominator, span);
                let p = param(graph, gradient.param);
                let p_new = graph.binary(Sub, p, step, span);
                graph.updates.push(Update {
                    target: Slot::State(m_index),
                    value: m_new,
                });
                graph.updates.push(Update {
                    target: Slot::State(v_index),
                    value: v_new,
                });
                graph.updates.push(Update {
                    target: Slot::Param(gradient.param),
                    value: p_new,
                });
            }
        }
    }
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
