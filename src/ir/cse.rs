//! Common-subexpression elimination: nodes computing the same op (attributes and constant bits
//! included) on the same inputs with the same type are merged into the first of them. Autodiff
//! and the optimizer emit many such duplicates — `const 1.0` per rule, `dy * x` for both operands
//! of `x * x`.

use std::collections::HashMap;

use super::graph::{Graph, ValueId};
use super::op::{BinaryOp, LeafKind, Op, OpKind};
use super::shape::TensorType;

/// What makes two nodes the same computation.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    /// The op with its attributes; constants by their bits, so `0.0` and `-0.0` (and NaNs with
    /// different payloads) stay apart.
    op: String,
    inputs: Vec<ValueId>,
    ty: TensorType,
}

/// Merges duplicate computations; the first occurrence (and its span) is kept.
pub fn eliminate_common_subexpressions(graph: &Graph) -> Graph {
    let mut seen: HashMap<Key, ValueId> = HashMap::new();
    graph.rebuild(|out, node| {
        // Inputs, parameters and states name distinct slots: never merged.
        if node.op.kind() == OpKind::Leaf(LeafKind::Buffer) {
            return out.push_node(node);
        }
        let op = match node.op {
            Op::Const { value } => format!("const {:08x}", value.to_bits()),
            ref op => format!("{op:?}"),
        };
        let mut inputs = node.inputs.clone();
        // IEEE addition, multiplication and (in)equality are commutative, so `a + b` and
        // `b + a` are one value.
        if matches!(
            node.op,
            Op::Binary(BinaryOp::Add | BinaryOp::Mul | BinaryOp::Equal | BinaryOp::NotEqual)
        ) {
            inputs.sort();
        }
        let key = Key {
            op,
            inputs,
            ty: node.ty.clone(),
        };
        if let Some(&existing) = seen.get(&key) {
            return existing;
        }
        let value = out.push_node(node);
        seen.insert(key, value);
        value
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::UnaryOp;
    use crate::ir::shape::Shape;
    use crate::ir::verify::verify;

    fn input(graph: &mut Graph, name: &str) -> ValueId {
        graph.input(name, TensorType::f32(Shape::fixed(&[2])), None)
    }

    #[test]
    fn merges_equal_constants_and_equal_ops() {
        let mut graph = Graph::new("g");
        let x = input(&mut graph, "x");
        let one = graph.constant(1.0, None);
        let one_again = graph.constant(1.0, None);
        let a = graph.binary(BinaryOp::Sub, x, one, None);
        let b = graph.binary(BinaryOp::Sub, x, one_again, None);
        let sum = graph.binary(BinaryOp::Add, a, b, None);
        graph.outputs.push(("y".into(), sum));
        graph.outputs.push(("b".into(), b));
        let merged = eliminate_common_subexpressions(&graph);
        assert!(verify(&merged).is_empty());
        // x, 1.0, x - 1, (x - 1) + (x - 1)
        assert_eq!(merged.nodes.len(), 4);
        assert_eq!(merged.nodes[3].inputs, vec![ValueId(2), ValueId(2)]);
        assert_eq!(merged.output("b"), Some(ValueId(2)));
        assert_eq!(merged.output("y"), Some(ValueId(3)));
    }

    #[test]
    fn keeps_different_constants_attributes_and_leaves_apart() {
        let mut graph = Graph::new("g");
        let x = input(&mut graph, "x");
        let y = input(&mut graph, "y");
        let zero = graph.constant(0.0, None);
        let minus_zero = graph.constant(-0.0, None);
        let a = graph.binary(BinaryOp::Sub, x, y, None);
        let b = graph.binary(BinaryOp::Sub, y, x, None);
        let e = graph.unary(UnaryOp::Exp, x, None);
        let t = graph.unary(UnaryOp::Tanh, x, None);
        for (i, v) in [zero, minus_zero, a, b, e, t].into_iter().enumerate() {
            graph.outputs.push((format!("o{i}"), v));
        }
        let merged = eliminate_common_subexpressions(&graph);
        assert_eq!(merged, graph);
    }

    #[test]
    fn commutative_ops_merge_with_swapped_operands() {
        let mut graph = Graph::new("g");
        let x = input(&mut graph, "x");
        let y = input(&mut graph, "y");
        let a = graph.binary(BinaryOp::Mul, x, y, None);
        let b = graph.binary(BinaryOp::Mul, y, x, None);
        let d = graph.binary(BinaryOp::Sub, a, b, None);
        graph.gradients.clear();
        graph.outputs.push(("d".into(), d));
        let merged = eliminate_common_subexpressions(&graph);
        assert_eq!(merged.nodes.len(), 4);
        assert_eq!(merged.nodes[3].inputs, vec![ValueId(2), ValueId(2)]);
    }
}
