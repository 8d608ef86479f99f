//! Algebraic simplification: identities that autodiff and lowering leave behind — `x * 1`,
//! `1 * x`, `x + 0`, `0 + x`, `x - 0`, `x / 1` become `x`, and `neg(neg(x))` becomes `x`; an
//! identity transpose, a reshape to the same shape, a whole-axis slice and a one-input concat
//! become `x`; chains of transposes and of reshapes collapse into one.
//! A sum over the classes of `c · one_hot(labels)`, with `c` the same in every class, is `c`:
//! the class-label gradient of cross-entropy (`−1/B` per sample), whose row sum the log-softmax
//! gradient needs, costs no kernel. It is exact — one addend is `c` and the others are zeros —
//! because every label lies in `0..classes` (the runtime rejects a data set with any other), and
//! differs only where `c` is infinite (`∞ · 0` made the sum NaN).
//! A constant seen through a `broadcast` counts. `x * 0` is left alone: it is NaN, not 0, when x
//! is NaN or infinite. `x + 0` turns a `-0.0` into `+0.0`; dropping it keeps the sign, which no
//! op here can observe except through division by zero.

use super::graph::{Graph, Node, ValueId};
use super::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use super::shape::{Dim, reshape_rule};

/// Applies the identities once over the whole graph (chains collapse in one run because inputs
/// are already simplified when a node is visited).
pub fn simplify(graph: &Graph) -> Graph {
    graph.rebuild(|out, node| match identity_operand(out, &node) {
        Some(x) => stand_in(out, x, node),
        None => {
            // A collapsed chain may itself be an identity (a transpose and its inverse).
            let node = collapse_chain(out, node);
            match identity_operand(out, &node) {
                Some(x) => stand_in(out, x, node),
                None => out.push_node(node),
            }
        }
    })
}

/// `transpose(transpose(x, p), q)` → `transpose(x, p∘q)` and `reshape(reshape(x))` →
/// `reshape(x)`: one data movement instead of two (the inner one dies if unused).
fn collapse_chain(graph: &Graph, node: Node) -> Node {
    if !matches!(node.op, Op::Transpose { .. } | Op::Reshape) {
        return node;
    }
    let inner = graph.node(node.inputs[0]);
    match (&node.op, &inner.op) {
        (Op::Transpose { perm: outer }, Op::Transpose { perm: first }) => Node {
            // Output axis i is the inner result's axis outer[i], which is x's first[outer[i]].
            op: Op::Transpose {
                perm: outer.iter().map(|&i| first[i]).collect(),
            },
            inputs: inner.inputs.clone(),
            ..node
        },
        (Op::Reshape, Op::Reshape)
            if reshape_rule(&graph.ty(inner.inputs[0]).shape, &node.ty.shape).is_ok() =>
        {
            Node {
                inputs: inner.inputs.clone(),
                ..node
            }
        }
        _ => node,
    }
}

/// The operand the node is equal to, if an identity applies.
fn identity_operand(graph: &Graph, node: &Node) -> Option<ValueId> {
    let is = |v: ValueId, c: f32| graph.constant_value(v) == Some(c);
    match node.op {
        Op::Binary(op) => {
            let (a, b) = (node.inputs[0], node.inputs[1]);
            match op {
                BinaryOp::Mul if is(b, 1.0) => Some(a),
                BinaryOp::Mul if is(a, 1.0) => Some(b),
                BinaryOp::Add if is(b, 0.0) => Some(a),
                BinaryOp::Add if is(a, 0.0) => Some(b),
                BinaryOp::Sub if is(b, 0.0) => Some(a),
                BinaryOp::Div if is(b, 1.0) => Some(a),
                _ => None,
            }
        }
        Op::Unary(UnaryOp::Neg) => {
            let inner = graph.node(node.inputs[0]);
            (inner.op == Op::Unary(UnaryOp::Neg)).then(|| inner.inputs[0])
        }
        // Moves that move nothing.
        Op::Transpose { ref perm } if perm.iter().enumerate().all(|(i, &p)| i == p) => {
            Some(node.inputs[0])
        }
        Op::Reshape if graph.ty(node.inputs[0]) == &node.ty => Some(node.inputs[0]),
        Op::Concat { .. } if node.inputs.len() == 1 => Some(node.inputs[0]),
        // A training step takes the training value (`Op::InTraining`'s meaning).
        Op::InTraining => Some(node.inputs[0]),
        Op::Slice { axis, start, end }
            if start == 0 && graph.shape(node.inputs[0]).0[axis] == Dim::Fixed(end) =>
        {
            Some(node.inputs[0])
        }
        Op::Reduce {
            kind: ReduceKind::Sum,
            ref axes,
            ..
        } => one_hot_row_sum(graph, node.inputs[0], axes),
        _ => None,
    }
}

/// `c` when `summed`, reduced over `axes`, is `broadcast(c) · one_hot(labels)` (either order)
/// summed over its class axis and `c` does not vary along that axis.
fn one_hot_row_sum(graph: &Graph, summed: ValueId, axes: &[usize]) -> Option<ValueId> {
    let product = graph.node(summed);
    let class_axis = product.ty.shape.rank().checked_sub(1)?;
    if product.op != Op::Binary(BinaryOp::Mul) || axes != [class_axis] {
        return None;
    }
    let (a, b) = (product.inputs[0], product.inputs[1]);
    let spread = match (&graph.node(a).op, &graph.node(b).op) {
        (Op::OneHot { .. }, Op::Broadcast) => graph.node(b),
        (Op::Broadcast, Op::OneHot { .. }) => graph.node(a),
        _ => return None,
    };
    let c = spread.inputs[0];
    let same_in_every_class = match graph.shape(c).0.as_slice() {
        [] => true,
        dims => dims.len() == product.ty.shape.rank() && dims[class_axis] == Dim::Fixed(1),
    };
    same_in_every_class.then_some(c)
}

/// `x` in place of `node`: as it is when the types agree, broadcast when the node was bigger
/// (`x + broadcast(0)`), otherwise the node stays.
fn stand_in(out: &mut Graph, x: ValueId, node: Node) -> ValueId {
    let ty = out.ty(x);
    if *ty == node.ty {
        x
    } else if ty.dtype == node.ty.dtype && ty.shape.broadcasts_to(&node.ty.shape) {
        out.push_node(Node {
            op: Op::Broadcast,
            inputs: vec![x],
            ..node
        })
    } else {
        out.push_node(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::dce::eliminate_dead_code;
    use crate::ir::shape::{Shape, TensorType};
    use crate::ir::verify::verify;

    fn graph_with_x() -> (Graph, ValueId) {
        let mut graph = Graph::new("g");
        let x = graph.input("x", TensorType::f32(Shape::fixed(&[3])), None);
        (graph, x)
    }

    #[test]
    fn removes_identities() {
        use BinaryOp::{Add, Div, Mul, Sub};
        let (mut graph, x) = graph_with_x();
        let one = graph.constant(1.0, None);
        let zero = graph.constant(0.0, None);
        let mut v = x;
        for (op, c, const_first) in [
            (Mul, one, false),
            (Mul, one, true),
            (Add, zero, false),
            (Add, zero, true),
            (Sub, zero, false),
            (Div, one, false),
        ] {
            v = if const_first {
                graph.binary(op, c, v, None)
            } else {
                graph.binary(op, v, c, None)
            };
        }
        let n = graph.unary(UnaryOp::Neg, v, None);
        let nn = graph.unary(UnaryOp::Neg, n, None);
        graph.outputs.push(("y".into(), nn));
        let simple = simplify(&graph);
        assert!(verify(&simple).is_empty());
        assert_eq!(simple.output("y"), Some(x));
        assert_eq!(eliminate_dead_code(&simple).nodes.len(), 1);
    }

    #[test]
    fn leaves_non_identities_alone() {
        use BinaryOp::{Div, Mul, Sub};
        let (mut graph, x) = graph_with_x();
        let one = graph.constant(1.0, None);
        let zero = graph.constant(0.0, None);
        let a = graph.binary(Mul, x, zero, None);
        let b = graph.binary(Sub, zero, x, None);
        let c = graph.binary(Div, one, x, None);
        let d = graph.unary(UnaryOp::Neg, x, None);
        for v in [a, b, c, d] {
            graph.outputs.push((format!("{}", v.0), v));
        }
        assert_eq!(simplify(&graph), graph);
    }

    #[test]
    fn a_broadcasting_identity_becomes_a_broadcast() {
        let mut graph = Graph::new("g");
        let s = graph.input("s", TensorType::f32(Shape::fixed(&[3])), None);
        let zero = graph.constant(0.0, None);
        let zeros = graph.broadcast(zero, &Shape::fixed(&[2, 3]), None);
        let y = graph.binary(BinaryOp::Add, s, zeros, None);
        let ones = {
            let one = graph.constant(1.0, None);
            graph.broadcast(one, &Shape::fixed(&[2, 3]), None)
        };
        let z = graph.binary(BinaryOp::Mul, ones, s, None);
        graph.outputs.push(("y".into(), y));
        graph.outputs.push(("z".into(), z));
        let simple = simplify(&graph);
        assert!(verify(&simple).is_empty());
        for name in ["y", "z"] {
            let node = simple.node(simple.output(name).unwrap());
            assert_eq!(node.op, Op::Broadcast);
            assert_eq!(node.inputs, vec![s]);
            assert_eq!(node.ty.shape, Shape::fixed(&[2, 3]));
        }
    }

    #[test]
    fn collapses_transpose_and_reshape_chains() {
        let mut graph = Graph::new("g");
        let x = graph.input("x", TensorType::f32(Shape::fixed(&[2, 3, 4])), None);
        let t1 = graph.transpose(x, &[1, 2, 0], None); // [3, 4, 2]
        let t2 = graph.transpose(t1, &[2, 0, 1], None); // back to [2, 3, 4]
        let t3 = graph.transpose(t1, &[1, 0, 2], None); // [4, 3, 2]
        let r1 = graph.reshape(x, &Shape::fixed(&[6, 4]), None);
        let r2 = graph.reshape(r1, &Shape::fixed(&[24]), None);
        let r3 = graph.reshape(r2, &Shape::fixed(&[2, 3, 4]), None);
        let whole = graph.slice(x, 1, 0, 3, None);
        let single = graph.concat(&[x], 0, None);
        for (name, v) in [
            ("t2", t2),
            ("t3", t3),
            ("r2", r2),
            ("r3", r3),
            ("whole", whole),
            ("single", single),
        ] {
            graph.outputs.push((name.into(), v));
        }
        let simple = eliminate_dead_code(&simplify(&graph));
        assert!(verify(&simple).is_empty(), "{:?}", verify(&simple));
        let x = simple.input_value("x").unwrap();
        for name in ["t2", "r3", "whole", "single"] {
            assert_eq!(simple.output(name), Some(x), "{name}");
        }
        let t3 = simple.node(simple.output("t3").unwrap());
        assert_eq!(
            t3.op,
            Op::Transpose {
                perm: vec![2, 1, 0]
            }
        );
        assert_eq!(t3.inputs, vec![x]);
        let r2 = simple.node(simple.output("r2").unwrap());
        assert_eq!((&r2.op, &r2.inputs), (&Op::Reshape, &vec![x]));
    }

    /// `Σ_class broadcast(c) · one_hot(labels)` over `classes` 3, `c` of shape `c_dims`, summed
    /// over `axes`.
    fn one_hot_sum(c_dims: &[usize], axes: &[usize], keep_dims: bool) -> Graph {
        use crate::ir::shape::DType;
        let mut graph = Graph::new("g");
        let labels = TensorType {
            dtype: DType::I32,
            shape: Shape::fixed(&[4]),
        };
        let labels = graph.input("labels", labels, None);
        let c = graph.input("c", TensorType::f32(Shape::fixed(c_dims)), None);
        let one_hot = graph.add(Op::OneHot { classes: 3 }, &[labels], None);
        let spread = graph.broadcast(c, &Shape::fixed(&[4, 3]), None);
        let picked = graph.binary(BinaryOp::Mul, spread, one_hot, None);
        let total = graph.reduce(ReduceKind::Sum, picked, axes, keep_dims, None);
        graph.outputs.push(("total".into(), total));
        graph
    }

    #[test]
    fn a_class_sum_of_a_scaled_one_hot_is_the_scale() {
        use crate::interp::{self, Bindings};
        use ndarray::{ArrayD, IxDyn};
        for (c_dims, keep_dims) in [(vec![], true), (vec![], false), (vec![4, 1], true)] {
            let graph = one_hot_sum(&c_dims, &[1], keep_dims);
            let simple = eliminate_dead_code(&simplify(&graph));
            assert!(verify(&simple).is_empty(), "{:?}", verify(&simple));
            assert!(
                !simple
                    .nodes
                    .iter()
                    .any(|n| matches!(n.op, Op::OneHot { .. } | Op::Reduce { .. })),
                "{c_dims:?}"
            );
            let count: usize = c_dims.iter().product();
            let c: Vec<f64> = (0..count).map(|i| -0.25 - 0.5 * i as f64).collect();
            let bindings = Bindings {
                inputs: vec![
                    ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.0, 2.0, 1.0, 2.0]).unwrap(),
                    ArrayD::from_shape_vec(IxDyn(&c_dims), c).unwrap(),
                ],
                params: vec![],
                states: vec![],
            };
            let total = |g: &Graph| {
                interp::step(g, &bindings, 4)
                    .unwrap()
                    .output("total")
                    .cloned()
            };
            assert_eq!(total(&simple), total(&graph), "{c_dims:?}");
        }
    }

    #[test]
    fn a_one_hot_sum_that_is_not_the_scale_stays() {
        // `c` varies along the classes, or the sum runs over the samples.
        for (c_dims, axes) in [(vec![3], vec![1]), (vec![], vec![0]), (vec![], vec![0, 1])] {
            let graph = one_hot_sum(&c_dims, &axes, true);
            assert_eq!(simplify(&graph), graph, "{c_dims:?} {axes:?}");
        }
    }
}
