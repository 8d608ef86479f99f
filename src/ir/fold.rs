//! Constant folding: an elementwise op whose inputs are all scalar constants becomes a constant,
//! e.g. the `1 / 1` of a mean over one output column. (Dropout is never folded: its mask
//! depends on the runtime step counter.)

use super::graph::{Graph, Node};
use super::op::{BinaryOp, Op, UnaryOp};
use crate::interp;

/// Replaces every elementwise op on scalar constants by its value.
pub fn fold_constants(graph: &Graph) -> Graph {
    graph.rebuild(|out, node| {
        let value = fold(out, &node);
        match value {
            Some(value) => out.push_node(Node {
                op: Op::Const { value },
                inputs: Vec::new(),
                ..node
            }),
            None => out.push_node(node),
        }
    })
}

/// The value of `node` when it is a scalar elementwise op on constants.
fn fold(graph: &Graph, node: &Node) -> Option<f32> {
    if node.ty.shape.rank() != 0 {
        return None;
    }
    let args: Option<Vec<f32>> = node
        .inputs
        .iter()
        .map(|&v| match graph.node(v).op {
            Op::Const { value } => Some(value),
            _ => None,
        })
        .collect();
    let args = args?;
    let arg = |i: usize| f64::from(args[i]);
    match node.op {
        Op::Unary(op) => Some(unary(op, args[0])),
        Op::Binary(op) => Some(binary(op, args[0], args[1])),
        Op::LeakyRelu { alpha } => Some(interp::leaky_relu(f64::from(alpha), arg(0)) as f32),
        Op::Elu { alpha } => Some(interp::elu(f64::from(alpha), arg(0)) as f32),
        Op::Select => Some(interp::select(arg(0), arg(1), arg(2)) as f32),
        _ => None,
    }
}

/// The interpreter's definition of the op, in f64, rounded once to f32. For `+ − × ÷` and `sqrt`
/// that is exactly f32 arithmetic (f64 has more than twice f32's precision, so rounding twice
/// cannot differ from rounding once); transcendental ops are correctly rounded from f64. Reusing
/// the interpreter keeps one definition per op.
fn unary(op: UnaryOp, x: f32) -> f32 {
    interp::unary(op, f64::from(x)) as f32
}

fn binary(op: BinaryOp, a: f32, b: f32) -> f32 {
    interp::binary(op, f64::from(a), f64::from(b)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::shape::{Shape, TensorType};
    use crate::ir::verify::verify;

    #[test]
    fn folds_chains_of_scalar_constants() {
        let mut graph = Graph::new("g");
        let one = graph.constant(1.0, None);
        let b1 = graph.constant(0.9, None);
        let diff = graph.binary(BinaryOp::Sub, one, b1, None);
        let root = graph.unary(UnaryOp::Sqrt, diff, None);
        graph.outputs.push(("y".into(), root));
        let folded = fold_constants(&graph);
        assert!(verify(&folded).is_empty());
        let y = folded.output("y").unwrap();
        assert_eq!(
            folded.node(y).op,
            Op::Const {
                value: (1.0f32 - 0.9f32).sqrt()
            }
        );
        assert!(folded.node(y).inputs.is_empty());
    }

    #[test]
    fn leaves_ops_on_runtime_values_and_non_scalars() {
        let mut graph = Graph::new("g");
        let x = graph.input("x", TensorType::f32(Shape::fixed(&[2])), None);
        let batch = graph.batch_size(None);
        let two = graph.constant(2.0, None);
        let a = graph.binary(BinaryOp::Mul, x, two, None);
        let b = graph.binary(BinaryOp::Div, two, batch, None);
        let c = graph.broadcast(two, &Shape::fixed(&[2]), None);
        let d = graph.unary(UnaryOp::Exp, c, None);
        for v in [a, b, d] {
            graph.outputs.push((format!("{}", v.0), v));
        }
        assert_eq!(fold_constants(&graph), graph);
    }

    #[test]
    fn matches_f32_arithmetic_and_nan_rules() {
        let (a, b) = (0.1f32, 0.7f32);
        assert_eq!(binary(BinaryOp::Add, a, b), a + b);
        assert_eq!(binary(BinaryOp::Sub, a, b), a - b);
        assert_eq!(binary(BinaryOp::Mul, a, b), a * b);
        assert_eq!(binary(BinaryOp::Div, a, b), a / b);
        assert_eq!(unary(UnaryOp::Sqrt, b), b.sqrt());
        assert_eq!(binary(BinaryOp::Greater, f32::NAN, 0.0), 0.0);
        assert!(binary(BinaryOp::Max, f32::NAN, 0.0).is_nan());
        assert!(unary(UnaryOp::Log, -1.0).is_nan());
        assert_eq!(unary(UnaryOp::Relu, -3.0), 0.0);
        assert!(unary(UnaryOp::Relu, f32::NAN).is_nan());
        assert_eq!(unary(UnaryOp::Relu, -0.0).to_bits(), 0.0f32.to_bits());
    }
}
