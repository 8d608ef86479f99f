//! Dead-code elimination: drops every node that no output, gradient or update depends on (for
//! example the softmax of a model's output while training, where the loss reads the logits).
//! Leaves that name inputs, parameters and state stay, so their slots keep a node.

use super::graph::{Graph, ValueId};
use super::op::{LeafKind, OpKind};

pub fn eliminate_dead_code(graph: &Graph) -> Graph {
    let mut live = vec![false; graph.nodes.len()];
    for root in graph.roots() {
        live[root.index()] = true;
    }
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        // Slots stay: their indices name the graph's inputs, parameters and states.
        if node.op.kind() == OpKind::Leaf(LeafKind::Buffer) {
            live[i] = true;
        }
        if live[i] {
            for input in &node.inputs {
                live[input.index()] = true;
            }
        }
    }

    // A dropped node's stand-in is never read: only dead nodes use dead values, and roots are live.
    const DROPPED: ValueId = ValueId(u32::MAX);
    let mut index = 0;
    graph.rebuild(|out, node| {
        let keep = live[index];
        index += 1;
        if keep { out.push_node(node) } else { DROPPED }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::UnaryOp;
    use crate::ir::shape::{Shape, TensorType};

    #[test]
    fn removes_what_no_root_reads_and_renumbers_the_rest() {
        let mut graph = Graph::new("g");
        let x = graph.input("x", TensorType::f32(Shape::fixed(&[2])), None);
        let dead = graph.unary(UnaryOp::Exp, x, None);
        let _dead_too = graph.unary(UnaryOp::Neg, dead, None);
        let live = graph.unary(UnaryOp::Tanh, x, None);
        graph.outputs.push(("y".into(), live));
        let pruned = eliminate_dead_code(&graph);
        assert_eq!(pruned.nodes.len(), 2);
        assert_eq!(pruned.output("y"), Some(ValueId(1)));
        assert_eq!(pruned.nodes[1].inputs, vec![ValueId(0)]);
        assert!(crate::ir::verify::verify(&pruned).is_empty());
    }
}
