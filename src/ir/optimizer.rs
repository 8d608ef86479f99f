//! The optimizer update as IR: new values for every parameter and optimizer state, appended to
//! the graph after the gradients, so it is fused and compiled with the rest of the step. The
//! rules themselves are the optimizers' definitions in `settings::optimizer`; this module gives
//! them the graph to write into.

use std::collections::HashMap;

use super::builder::{OnGraph, id, var};
use super::graph::{Graph, Slot, StateInfo, Update, ValueId};
use super::op::{BinaryOp, ReduceKind, UnaryOp};
use super::shape::{Shape, TensorType};
use crate::diag::Span;
use crate::settings::optimizer::{Optimizer, State, UpdateBuilder, Var};

/// Name of the scalar graph input holding Adam's 1-based step count `t`.
pub const STEP: &str = "step";

/// Name of the scalar graph input holding the learning rate of this step. It is an input, not a
/// constant, so schedules and `reduce_lr_on_plateau` change it between steps without recompiling;
/// the runtime sets it before every step (to the optimizer's `lr` when nothing changes it).
pub const LR: &str = "lr";

/// Appends the update for `optimizer` (gradients must already be in `graph.gradients`): the
/// optimizer's own rule (`settings::optimizer`), run against the graph.
pub fn append_update(graph: &mut Graph, optimizer: &Optimizer, span: Option<Span>) {
    clip_gradients(graph, optimizer, span);
    let mut builder = GraphUpdate {
        graph,
        span,
        weight_decay: optimizer.args.optional("weight_decay"),
        decayed: HashMap::new(),
        lr: None,
    };
    (optimizer.def.update)(&optimizer.args, &mut builder);
}

/// Name of the input holding the gradient of parameter `param` in `update_graph`.
pub fn gradient_input(param: usize) -> String {
    format!("gradient.{param}")
}

/// The optimizer update alone, for data-parallel training (`runtime::distributed`): the
/// parameters of `training` (same order), the gradient of each of its differentiated
/// parameters as an input (`gradient_input`), and the update `append_update` would append to
/// `training`, so its states are those of the whole step, in the same order. Each rank computes
/// gradients on its shard with the forward and backward pass, the ranks sum them, then every
/// rank runs this with the same sum.
pub fn update_graph(training: &Graph, optimizer: &Optimizer, span: Option<Span>) -> Graph {
    let mut graph = Graph::new(format!("{}.update", training.name));
    for info in &training.params {
        graph.param(info.clone(), span);
    }
    for gradient in &training.gradients {
        let shape = training.params[gradient.param].shape.clone();
        let value = graph.input(
            &gradient_input(gradient.param),
            TensorType::f32(shape),
            span,
        );
        graph.gradients.push(super::graph::Gradient {
            param: gradient.param,
            value,
        });
    }
    append_update(&mut graph, optimizer, span);
    graph
}

/// Keras's gradient clipping, before any optimizer's update (its `_clip_gradients`): with
/// `clipnorm`, each gradient times `c / max(‖g‖, c)`; with `global_clipnorm`, every gradient
/// times `c / max(‖all‖, c)`, the norm taken over all of them together; with `clipvalue`, each
/// value clipped to `[−c, c]`. The checker allows one of the three. The clipped values replace
/// the gradients the rule reads.
fn clip_gradients(graph: &mut Graph, optimizer: &Optimizer, span: Option<Span>) {
    let args = &optimizer.args;
    let bound =
        |g: &mut Graph, name: &str| (args.optional(name)).map(|c| g.constant(c as f32, span));
    let squares = |g: &mut Graph, v: ValueId| {
        let square = g.binary(BinaryOp::Mul, v, v, span);
        let axes: Vec<usize> = (0..g.shape(v).rank()).collect();
        g.reduce(ReduceKind::Sum, square, &axes, false, span)
    };
    // `x · c / max(norm, c)`: x itself while the norm is within the bound.
    let scaled = |g: &mut Graph, x: ValueId, norm: ValueId, c: ValueId| {
        let over = g.binary(BinaryOp::Max, norm, c, span);
        let times = g.binary(BinaryOp::Mul, x, c, span);
        g.binary(BinaryOp::Div, times, over, span)
    };
    let count = graph.gradients.len();
    if let Some(c) = bound(graph, "clipnorm") {
        for i in 0..count {
            let g = graph.gradients[i].value;
            let sum = squares(graph, g);
            let norm = graph.unary(UnaryOp::Sqrt, sum, span);
            graph.gradients[i].value = scaled(graph, g, norm, c);
        }
    } else if let Some(c) = bound(graph, "global_clipnorm") {
        let mut total = None;
        for i in 0..count {
            let sum = squares(graph, graph.gradients[i].value);
            total = Some(match total {
                None => sum,
                Some(t) => graph.binary(BinaryOp::Add, t, sum, span),
            });
        }
        let Some(total) = total else { return };
        let norm = graph.unary(UnaryOp::Sqrt, total, span);
        let over = graph.binary(BinaryOp::Max, norm, c, span);
        let scale = graph.binary(BinaryOp::Div, c, over, span);
        for i in 0..count {
            let g = graph.gradients[i].value;
            graph.gradients[i].value = graph.binary(BinaryOp::Mul, g, scale, span);
        }
    } else if let Some(c) = bound(graph, "clipvalue") {
        let low = graph.unary(UnaryOp::Neg, c, span);
        for i in 0..count {
            let g = graph.gradients[i].value;
            let floor = graph.binary(BinaryOp::Max, g, low, span);
            graph.gradients[i].value = graph.binary(BinaryOp::Min, floor, c, span);
        }
    }
}

/// The update rule's arithmetic as IR nodes.
struct GraphUpdate<'g> {
    graph: &'g mut Graph,
    span: Option<Span>,
    /// Keras's decoupled weight decay (`weight_decay`, every optimizer's argument): the rule
    /// reads each parameter as `p − p · weight_decay · lr`, Keras's `_apply_weight_decay`
    /// before the update.
    weight_decay: Option<f64>,
    /// Each parameter's decayed value, made once however often the rule reads it.
    decayed: HashMap<usize, ValueId>,
    /// The learning rate's input, made once.
    lr: Option<ValueId>,
}

impl OnGraph for GraphUpdate<'_> {
    fn graph(&mut self) -> &mut Graph {
        self.graph
    }

    fn span(&self) -> Option<Span> {
        self.span
    }
}

impl GraphUpdate<'_> {
    fn new_state(&mut self, name: String, shape: Shape, init: f32) -> State {
        let index = self.graph.states.len();
        let value = self.graph.state(StateInfo { name, shape, init }, self.span);
        State {
            index,
            value: var(value),
        }
    }
}

impl UpdateBuilder for GraphUpdate<'_> {
    fn lr(&mut self) -> Var {
        let span = self.span;
        var(*(self.lr)
            .get_or_insert_with(|| self.graph.input(LR, TensorType::f32(Shape::scalar()), span)))
    }

    fn step(&mut self) -> Var {
        var(self.graph.step_input(self.span))
    }

    fn gradients(&mut self) -> Vec<(usize, Var)> {
        self.graph
            .gradients
            .iter()
            .map(|g| (g.param, var(g.value)))
            .collect()
    }

    fn param(&mut self, index: usize) -> Var {
        let p = self
            .graph
            .param_value(index)
            .expect("internal compiler error: every parameter has a node");
        let Some(weight_decay) = self.weight_decay else {
            return var(p);
        };
        if let Some(&decayed) = self.decayed.get(&index) {
            return var(decayed);
        }
        let span = self.span;
        let lr = id(self.lr());
        let decay = self.graph.constant(weight_decay as f32, span);
        let times = self.graph.binary(BinaryOp::Mul, p, decay, span);
        let times = self.graph.binary(BinaryOp::Mul, times, lr, span);
        let decayed = self.graph.binary(BinaryOp::Sub, p, times, span);
        self.decayed.insert(index, decayed);
        var(decayed)
    }

    fn param_state(&mut self, index: usize, role: &str, init: f32) -> State {
        let param = &self.graph.params[index];
        let (name, shape) = (format!("{}.{role}", param.name), param.shape.clone());
        self.new_state(name, shape, init)
    }

    fn scalar_state(&mut self, name: &str, init: f32) -> State {
        self.new_state(name.to_string(), Shape::scalar(), init)
    }

    fn set_param(&mut self, index: usize, value: Var) {
        self.graph.updates.push(Update {
            target: Slot::Param(index),
            value: id(value),
        });
    }

    fn set_state(&mut self, state: State, value: Var) {
        self.graph.updates.push(Update {
            target: Slot::State(state.index),
            value: id(value),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{self, Bindings};
    use crate::ir::graph::{Gradient, Init, ParamInfo};
    use crate::settings::optimizer::{ADAM, ArgValue, SGD};
    use ndarray::{ArrayD, IxDyn};

    /// One update of a parameter `p` with gradient `g` (an input), run on the interpreter:
    /// the parameter and states after it.
    fn update(optimizer: Optimizer, p: f64, g: f64, states: &[f64], t: f64, lr: f64) -> Vec<f64> {
        let mut graph = Graph::new("u");
        graph.param(
            ParamInfo {
                regularizer: None,
                trainable: true,
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
            states: (states.iter().zip(&graph.states))
                .map(|(&s, info)| match info.shape.rank() {
                    0 => scalar(s),
                    _ => vector(s),
                })
                .collect(),
        };
        let result = interp::step(&graph, &bindings, 1).unwrap();
        std::iter::once(result.params[0][[0]])
            .chain(
                result
                    .states
                    .iter()
                    .map(|s| s.iter().copied().next().unwrap_or(0.0)),
            )
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-6 * y.abs().max(1e-3), "{a:?} vs {b:?}");
        }
    }

    /// Keras's `_apply_weight_decay` before every optimizer's update: one step with
    /// `weight_decay` is the step without it from the decayed parameter `p − p · wd · lr`.
    #[test]
    fn weight_decay_decays_the_parameter_before_every_optimizers_update() {
        use crate::settings::optimizer::OPTIMIZERS;
        let (p, g, lr, wd, t) = (0.8f64, 0.3f64, 0.1f64, 0.05f64, 2.0f64);
        for def in OPTIMIZERS {
            let decay = |value| Optimizer::new(def, &[("weight_decay", value)]);
            let off = if def.name == "adamw" {
                ArgValue::Number(0.0)
            } else {
                ArgValue::Off
            };
            let states = vec![0.5; decay(off).state_count(1)];
            let decayed = update(decay(ArgValue::Number(wd)), p, g, &states, t, lr);
            let from_decayed = update(decay(off), p - p * wd * lr, g, &states, t, lr);
            close(&decayed, &from_decayed);
            let plain = update(decay(off), p, g, &states, t, lr);
            assert!(
                (plain[0] - decayed[0]).abs() > 1e-4,
                "{}: weight_decay changed nothing",
                def.name
            );
        }
    }

    #[test]
    fn momentum_and_nesterov_follow_keras() {
        let (lr, mu, p, g, v) = (0.1f64, 0.9f64, 1.0f64, 0.5f64, 0.2f64);
        let v_new = mu * v - lr * g;
        let sgd = |nesterov| {
            let momentum = ("momentum", ArgValue::Number(0.9));
            Optimizer::new(&SGD, &[momentum, ("nesterov", ArgValue::Bool(nesterov))])
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
            let profile = if torch { "torch" } else { "keras" };
            let eps = ("eps", ArgValue::Number(1e-3));
            Optimizer::new(&ADAM, &[eps, ("profile", ArgValue::Choice(profile))])
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
