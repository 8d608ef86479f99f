//! The IR verifier: runs between stages and checks what every later stage relies on — SSA order,
//! arities, types against the shape rules, and that every root and update is well-formed.

use super::graph::{Graph, Slot};
use super::op::{Op, infer_type};
use super::shape::{DType, TensorType, reshape_rule};

/// Returns every problem found (empty when the graph is well-formed).
pub fn verify(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let at = format!("%{i} ({})", node.op.name());
        if !node.op.takes_inputs(node.inputs.len()) {
            problems.push(format!(
                "{at}: expects {} inputs, has {}",
                node.op.arity_text(),
                node.inputs.len()
            ));
            continue;
        }
        if let Some(bad) = node.inputs.iter().find(|v| v.index() >= i) {
            problems.push(format!("{at}: uses %{} before it is defined", bad.0));
            continue;
        }
        let expected: Result<TensorType, String> = match &node.op {
            Op::Input { index } => graph
                .inputs
                .get(*index)
                .map(|input| input.ty.clone())
                .ok_or_else(|| format!("no input #{index}")),
            Op::Param { index } => graph
                .params
                .get(*index)
                .map(|p| TensorType::f32(p.shape.clone()))
                .ok_or_else(|| format!("no parameter #{index}")),
            Op::State { index } => graph
                .states
                .get(*index)
                .map(|s| TensorType::f32(s.shape.clone()))
                .ok_or_else(|| format!("no state #{index}")),
            Op::Const { .. } | Op::BatchSize => Ok(TensorType::f32(super::shape::Shape::scalar())),
            Op::Broadcast => {
                let input = graph.ty(node.inputs[0]);
                if input.shape.broadcasts_to(&node.ty.shape) && input.dtype == node.ty.dtype {
                    Ok(node.ty.clone())
                } else {
                    Err(format!("cannot broadcast {input} to {}", node.ty))
                }
            }
            Op::Reshape => {
                let input = graph.ty(node.inputs[0]);
                if input.dtype != node.ty.dtype {
                    Err(format!(
                        "reshape changes the type of {input} to {}",
                        node.ty
                    ))
                } else {
                    reshape_rule(&input.shape, &node.ty.shape).map(|()| node.ty.clone())
                }
            }
            op => {
                let types: Vec<&TensorType> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
                infer_type(op, &types)
            }
        };
        match expected {
            Ok(ty) if ty == node.ty => {}
            Ok(ty) => problems.push(format!(
                "{at}: recorded type {} but its rule gives {ty}",
                node.ty
            )),
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    let defined = |v: super::graph::ValueId| v.index() < graph.nodes.len();
    for (name, value) in &graph.outputs {
        if !defined(*value) {
            problems.push(format!("output {name} refers to undefined %{}", value.0));
        }
    }
    for gradient in &graph.gradients {
        let Some(param) = graph.params.get(gradient.param) else {
            problems.push(format!(
                "gradient of undefined parameter #{}",
                gradient.param
            ));
            continue;
        };
        if !defined(gradient.value) {
            problems.push(format!(
                "grad {} refers to undefined %{}",
                param.name, gradient.value.0
            ));
        } else if graph.ty(gradient.value) != &TensorType::f32(param.shape.clone()) {
            problems.push(format!(
                "grad {} has type {}, the parameter is f32{}",
                param.name,
                graph.ty(gradient.value),
                param.shape
            ));
        }
    }
    for update in &graph.updates {
        let (name, shape) = match update.target {
            Slot::Param(i) => match graph.params.get(i) {
                Some(p) => (&p.name, &p.shape),
                None => {
                    problems.push(format!("update of undefined parameter #{i}"));
                    continue;
                }
            },
            Slot::State(i) => match graph.states.get(i) {
                Some(s) => (&s.name, &s.shape),
                None => {
                    problems.push(format!("update of undefined state #{i}"));
                    continue;
                }
            },
        };
        if !defined(update.value) {
            problems.push(format!(
                "update {name} refers to undefined %{}",
                update.value.0
            ));
        } else if graph.ty(update.value).shape != *shape || graph.dtype(update.value) != DType::F32
        {
            problems.push(format!(
                "update {name} has type {}, the slot is f32{shape}",
                graph.ty(update.value)
            ));
        }
    }
    problems
}
