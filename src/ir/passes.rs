//! The optimization pipeline: a list of named graph-to-graph passes run in order, round after
//! round, until a whole round changes nothing. The verifier checks the graph after every pass in
//! debug builds and tests (and the final graph always), so a broken rewrite is caught at the pass
//! that made it.

use super::cse::eliminate_common_subexpressions;
use super::dce::eliminate_dead_code;
use super::fold::fold_constants;
use super::graph::Graph;
use super::simplify::simplify;
use super::softmax_ce::fuse_log_softmax;
use super::verify::verify;

/// A pass: a whole graph in, a rewritten graph out.
pub type Pass = fn(&Graph) -> Graph;

/// The passes in the order each round runs them. Simplifying first exposes constants to fold
/// and duplicates to merge; dead-code elimination last sweeps up what the others orphaned.
pub const PASSES: &[(&str, Pass)] = &[
    ("simplify", simplify),
    ("softmax_ce", fuse_log_softmax),
    ("fold", fold_constants),
    ("cse", eliminate_common_subexpressions),
    ("dce", eliminate_dead_code),
];

/// Rounds after which the pipeline stops even without a fixed point. Each pass only removes or
/// replaces nodes, so real graphs settle in two or three.
pub const MAX_ROUNDS: usize = 8;

/// Runs the pipeline to a fixed point. `Err` holds the verifier's problems, each prefixed with
/// the pass after which it was found.
pub fn optimize(graph: &Graph) -> Result<Graph, Vec<String>> {
    run(graph, |_, _| {})
}

/// Like `optimize`, but returns the graph after every pass run, labelled with the pass's name
/// (and the round, from the second on). The last round is the one that changed nothing.
pub fn optimize_traced(graph: &Graph) -> Result<Vec<(String, Graph)>, Vec<String>> {
    let mut trace = Vec::new();
    run(graph, |label, graph| trace.push((label, graph.clone())))?;
    Ok(trace)
}

fn run(graph: &Graph, mut after_pass: impl FnMut(String, &Graph)) -> Result<Graph, Vec<String>> {
    let mut current = graph.clone();
    for round in 1..=MAX_ROUNDS {
        let mut changed = false;
        for &(name, pass) in PASSES {
            let next = pass(&current);
            if cfg!(debug_assertions) {
                checked(&next, name)?;
            }
            changed |= next != current;
            let label = if round == 1 {
                name.to_string()
            } else {
                format!("{name} (round {round})")
            };
            after_pass(label, &next);
            current = next;
        }
        if !changed {
            break;
        }
    }
    checked(&current, "the optimization passes")?;
    Ok(current)
}

fn checked(graph: &Graph, after: &str) -> Result<(), Vec<String>> {
    let problems = verify(graph);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems
            .into_iter()
            .map(|p| format!("after {after}: {p}"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::graph::{Node, ValueId};
    use crate::ir::op::{BinaryOp, Op};
    use crate::ir::shape::{Shape, TensorType};

    /// `(x * 1 + (1 - 1)) * (x * 1)`: simplify, fold and CSE each leave work for the next round.
    fn example() -> Graph {
        let mut graph = Graph::new("g");
        let x = graph.input("x", TensorType::f32(Shape::fixed(&[2])), None);
        let one = graph.constant(1.0, None);
        let one_again = graph.constant(1.0, None);
        let a = graph.binary(BinaryOp::Mul, x, one, None);
        let zero = graph.binary(BinaryOp::Sub, one, one_again, None);
        let b = graph.binary(BinaryOp::Add, a, zero, None);
        let c = graph.binary(BinaryOp::Mul, x, one_again, None);
        let y = graph.binary(BinaryOp::Mul, b, c, None);
        graph.outputs.push(("y".into(), y));
        graph
    }

    #[test]
    fn reaches_the_fixed_point() {
        let optimized = optimize(&example()).unwrap();
        assert_eq!(optimized.nodes.len(), 2);
        assert_eq!(optimized.nodes[1].op, Op::Binary(BinaryOp::Mul));
        assert_eq!(optimized.nodes[1].inputs, vec![ValueId(0), ValueId(0)]);
        assert_eq!(optimize(&optimized).unwrap(), optimized);
    }

    #[test]
    fn traces_every_pass_and_ends_on_an_unchanged_round() {
        let trace = optimize_traced(&example()).unwrap();
        assert_eq!(trace.len() % PASSES.len(), 0);
        assert_eq!(trace[0].0, "simplify");
        assert_eq!(trace[PASSES.len()].0, "simplify (round 2)");
        let last = &trace[trace.len() - 1].1;
        assert_eq!(*last, trace[trace.len() - PASSES.len() - 1].1);
        assert_eq!(*last, optimize(&example()).unwrap());
    }

    #[test]
    fn a_graph_that_does_not_verify_is_an_error() {
        let mut graph = example();
        // A recorded type its shape rule disagrees with: the passes carry it along and the
        // verifier reports it after the first one (debug builds, which verify after every
        // pass) or after the pipeline (release builds).
        let id = ValueId(graph.nodes.len() as u32);
        graph.nodes.push(Node {
            op: Op::Binary(BinaryOp::Sub),
            inputs: vec![ValueId(0), ValueId(0)],
            ty: TensorType::f32(Shape::fixed(&[3])),
            span: None,
        });
        graph.outputs.push(("bad".into(), id));
        let problems = optimize(&graph).unwrap_err();
        let after = if cfg!(debug_assertions) {
            "after simplify: "
        } else {
            "after the optimization passes: "
        };
        assert!(problems[0].starts_with(after), "{problems:?}");
    }
}
