//! `log(softmax(z))` → `log_softmax(z)`. A cross-entropy written on softmax probabilities
//! (`-Σ y log p` with `p = softmax(z)`) otherwise takes the log of probabilities that underflow
//! to 0 for confident logits (giving -inf and NaN gradients), and differentiates through the
//! full softmax Jacobian. The fused form is exact for any logits (`z - max - log Σ exp(z -
//! max)`) and its gradient is `dy - softmax(z) Σ dy`. Lowering runs this before autodiff so the
//! backward pass is built from the stable form; it is also in the optimization pipeline.

use super::graph::{Graph, Node};
use super::op::{Op, UnaryOp};

/// Replaces every `log` of a `softmax` by a `log_softmax` of the softmax's input. The softmax
/// stays for its other users; dead-code elimination removes it when there are none.
pub fn fuse_log_softmax(graph: &Graph) -> Graph {
    graph.rebuild(|out, node| {
        if node.op == Op::Unary(UnaryOp::Log) {
            let inner = out.node(node.inputs[0]);
            if inner.op == Op::Softmax {
                let logits = inner.inputs[0];
                return out.push_node(Node {
                    op: Op::LogSoftmax,
                    inputs: vec![logits],
                    ..node
                });
            }
        }
        out.push_node(node)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::{self, Bindings};
    use crate::ir::autodiff::differentiate;
    use crate::ir::dce::eliminate_dead_code;
    use crate::ir::graph::{Init, ParamInfo};
    use crate::ir::op::{BinaryOp, ReduceKind};
    use crate::ir::shape::{Shape, TensorType};
    use crate::ir::verify::verify;
    use ndarray::{ArrayD, IxDyn};

    /// `-Σ onehot ⊙ log(softmax(z))` over logits `z` of ±1e4.
    fn cross_entropy() -> Graph {
        let mut g = Graph::new("ce");
        let z = g.param(
            ParamInfo {
                regularizer: None,
                trainable: true,
                name: "z".into(),
                shape: Shape::fixed(&[2, 3]),
                init: Init::Zeros,
            },
            None,
        );
        let y = g.input("y", TensorType::f32(Shape::fixed(&[2, 3])), None);
        let p = g.add(Op::Softmax, &[z], None);
        let logp = g.unary(UnaryOp::Log, p, None);
        let picked = g.binary(BinaryOp::Mul, y, logp, None);
        let total = g.reduce(ReduceKind::Sum, picked, &[0, 1], false, None);
        let loss = g.unary(UnaryOp::Neg, total, None);
        g.outputs.push(("loss".into(), loss));
        g
    }

    #[test]
    fn rewrites_log_of_softmax_and_the_softmax_dies() {
        let fused = eliminate_dead_code(&fuse_log_softmax(&cross_entropy()));
        assert!(verify(&fused).is_empty());
        assert!(fused.nodes.iter().any(|n| n.op == Op::LogSoftmax));
        assert!(!fused.nodes.iter().any(|n| n.op == Op::Softmax));
        assert!(!fused.nodes.iter().any(|n| n.op == Op::Unary(UnaryOp::Log)));
    }

    #[test]
    fn confident_logits_keep_a_finite_loss_and_gradient() {
        let run = |graph: &Graph| {
            let mut graph = graph.clone();
            let loss = graph.output("loss").unwrap();
            differentiate(&mut graph, loss);
            let z = [1e4, -1e4, 0.0, -1e4, 1e4, 5.0];
            let y = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
            let bindings = Bindings {
                inputs: vec![ArrayD::from_shape_vec(IxDyn(&[2, 3]), y.to_vec()).unwrap()],
                params: vec![ArrayD::from_shape_vec(IxDyn(&[2, 3]), z.to_vec()).unwrap()],
                states: vec![],
            };
            interp::step(&graph, &bindings, 1).unwrap()
        };
        let naive = run(&cross_entropy());
        assert!(!naive.output("loss").unwrap()[IxDyn(&[])].is_finite());
        let fused = run(&fuse_log_softmax(&cross_entropy()));
        let loss = fused.output("loss").unwrap()[IxDyn(&[])];
        assert!((loss - 4e4).abs() < 1e-6, "{loss}");
        // ∂loss/∂z = softmax(z) - y
        let expected = [1.0, -1.0, 0.0, -1.0, 1.0, 0.0];
        for (g, e) in fused.gradients[0].iter().zip(expected) {
            assert!((g - e).abs() < 1e-9, "{g} vs {e}");
        }
    }
}
