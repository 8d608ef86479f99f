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

/// The optimized step computes what the unoptimized one does: the interpreter runs both on the
/// same random values for models like the seed program.
#[cfg(test)]
mod equivalence {
    use ndarray::{ArrayD, IxDyn};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{MAX_ROUNDS, eliminate_common_subexpressions, eliminate_dead_code, simplify};
    use crate::diag::Span;
    use crate::driver::{GraphStage, training_graph};
    use crate::interp::{self, Bindings};
    use crate::ir::graph::Graph;
    use crate::ir::op::Op;
    use crate::ir::optimizer::STEP;
    use crate::ir::shape::DType;
    use crate::program::{CheckedProgram, Fit};
    use crate::settings::{Activation, Loss, Optimizer};

    fn adam() -> Optimizer {
        Optimizer::new(&crate::settings::optimizer::ADAM, &[])
    }

    fn program(
        widths: &[usize],
        activations: &[Activation],
        loss: Loss,
        opt: Optimizer,
    ) -> CheckedProgram {
        CheckedProgram {
            data: vec![],
            models: vec![crate::check::dense_stack("m", widths, activations)],
            fits: vec![Fit {
                span: Span::default(),
                model: 0,
                data: 0,
                loss,
                loss_options: Default::default(),
                optimizer: opt,
                metrics: vec![],
                epochs: 1,
                batch: 8,
                seed: 1,
                shuffle: true,
                validation: None,
                training: Default::default(),
            }],
            actions: vec![],
        }
    }

    fn random_bindings(graph: &Graph, classes: usize, batch: usize, seed: u64) -> Bindings {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut random = |shape: &[usize], lo: f64, hi: f64| {
            let n = shape.iter().product();
            let values = (0..n).map(|_| rng.random_range(lo..hi)).collect();
            ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
        };
        let inputs = graph
            .inputs
            .iter()
            .map(|input| {
                let shape = input.ty.shape.resolve(batch);
                if input.name == STEP {
                    ArrayD::from_elem(IxDyn(&[]), 3.0)
                } else if input.ty.dtype == DType::I32 {
                    random(&shape, 0.0, classes as f64).mapv(f64::floor)
                } else {
                    random(&shape, -2.0, 2.0)
                }
            })
            .collect();
        let params = graph
            .params
            .iter()
            .map(|p| random(&p.shape.resolve(0), -0.5, 0.5))
            .collect();
        let states = graph
            .states
            .iter()
            .map(|s| random(&s.shape.resolve(0), 0.0, 0.01))
            .collect();
        Bindings {
            inputs,
            params,
            states,
        }
    }

    /// `tolerance` is (relative, absolute).
    fn assert_close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>, tolerance: (f64, f64)) {
        assert_eq!(a.shape(), b.shape(), "{what}: shape");
        for (i, (&x, &y)) in a.iter().zip(b.iter()).enumerate() {
            let same = x == y
                || (x.is_nan() && y.is_nan())
                || (x - y).abs() <= tolerance.0 * x.abs().max(y.abs()) + tolerance.1;
            assert!(same, "{what}[{i}]: {x} before the passes, {y} after");
        }
    }

    /// Everything one step produces agrees between the two graphs.
    fn assert_same_step(
        label: &str,
        before: &Graph,
        after: &Graph,
        classes: usize,
        tolerance: (f64, f64),
    ) {
        for (batch, seed) in [(8, 1), (3, 2)] {
            let bindings = random_bindings(before, classes, batch, seed);
            let a = interp::step(before, &bindings, batch).unwrap();
            let b = interp::step(after, &bindings, batch).unwrap();
            let label = format!("{label} batch {batch}");
            assert_eq!(a.outputs.len(), b.outputs.len());
            for ((name, x), (_, y)) in a.outputs.iter().zip(&b.outputs) {
                assert_close(&format!("{label} output {name}"), x, y, tolerance);
            }
            let pairs = [
                ("grad", &a.gradients, &b.gradients),
                ("param", &a.params, &b.params),
                ("state", &a.states, &b.states),
            ];
            for (kind, xs, ys) in pairs {
                assert_eq!(xs.len(), ys.len());
                for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                    assert_close(&format!("{label} {kind} #{i}"), x, y, tolerance);
                }
            }
        }
    }

    fn constants(graph: &Graph) -> Vec<u32> {
        graph
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Const { value } => Some(value.to_bits()),
                _ => None,
            })
            .collect()
    }

    fn check(widths: &[usize], activations: &[Activation], loss: Loss, opt: Optimizer) {
        let label = format!("{widths:?} {loss:?}/{opt:?}");
        let program = program(widths, activations, loss, opt);
        let fit = &program.fits[0];
        let classes = *widths.last().unwrap();
        let before = training_graph(&program, fit, GraphStage::Step).unwrap();
        let after = training_graph(&program, fit, GraphStage::Optimized).unwrap();
        assert!(after.nodes.len() <= before.nodes.len());

        // Without folding the passes only drop identities and duplicates: the same f64 values.
        let mut exact = before.clone();
        for _ in 0..MAX_ROUNDS {
            exact = eliminate_dead_code(&eliminate_common_subexpressions(&simplify(&exact)));
        }
        assert_same_step(
            &format!("{label} without fold"),
            &before,
            &exact,
            classes,
            (1e-9, 0.0),
        );

        // Folding computes constants in f32 like the JIT, where the interpreter would use f64
        // (e.g. `1 / 3` for a mean over three columns): a new constant may differ by one f32
        // rounding, so then the bar is f32's precision (with an absolute floor for values that
        // cancel, like Adam's moments).
        let old = constants(&before);
        let rounded = constants(&after).iter().any(|c| !old.contains(c));
        let tolerance = if rounded { (1e-6, 1e-9) } else { (1e-9, 0.0) };
        assert_same_step(&label, &before, &after, classes, tolerance);
    }

    #[test]
    fn seed_model_with_adam() {
        use Activation::{Relu, Softmax};
        check(
            &[32, 64, 64, 10],
            &[Relu, Relu, Softmax],
            Loss::SparseCategoricalCrossentropy,
            adam(),
        );
    }

    #[test]
    fn every_activation_loss_and_optimizer() {
        use Activation::{Linear, Relu, Sigmoid, Softmax, Tanh};
        for loss in [Loss::SparseCategoricalCrossentropy, Loss::MeanSquaredError] {
            let sgd = crate::settings::optimizer::with_lr(&crate::settings::optimizer::SGD, 0.05);
            for opt in [sgd, adam()] {
                check(
                    &[5, 7, 6, 4, 3],
                    &[Sigmoid, Tanh, Relu, Linear],
                    loss,
                    opt.clone(),
                );
                check(&[4, 6, 3], &[Tanh, Softmax], loss, opt.clone());
                check(&[3, 4, 1], &[Sigmoid, Linear], loss, opt);
            }
        }
    }
}
