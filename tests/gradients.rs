//! Every op's VJP rule against central finite differences in f64 on the reference interpreter,
//! and the gradient of whole lowered training graphs the same way.

use kiln::check::program::{Activation, Fit, Loss, Model, Optimizer};
use kiln::diag::Span;
use kiln::interp::{self, Bindings};
use kiln::ir::graph::{Graph, Init, ParamInfo, ValueId};
use kiln::ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use kiln::ir::shape::{Shape, TensorType};
use kiln::ir::{autodiff, lower, verify};
use ndarray::{ArrayD, IxDyn};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const H: f64 = 1e-6;

fn random(rng: &mut ChaCha8Rng, shape: &[usize], low: f64, high: f64) -> ArrayD<f64> {
    let n = shape.iter().product();
    let data = (0..n).map(|_| rng.random_range(low..high)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

/// Builds `loss = Σ op(params) ⊙ w` for a random weighting `w`, differentiates it, and compares
/// every parameter's gradient with central differences.
fn check_op(
    name: &str,
    param_shapes: &[&[usize]],
    range: (f64, f64),
    build: impl Fn(&mut Graph, &[ValueId]) -> ValueId,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(name.len() as u64 * 7919);
    let mut graph = Graph::new(name);
    let params: Vec<ValueId> = param_shapes
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            graph.param(
                ParamInfo {
                    name: format!("p{i}"),
                    shape: Shape::fixed(shape),
                    init: Init::Zeros,
                },
                None,
            )
        })
        .collect();
    let y = build(&mut graph, &params);
    let y_shape = graph.shape(y).clone();
    let w = graph.input("w", TensorType::f32(y_shape.clone()), None);
    let weighted = graph.binary(BinaryOp::Mul, y, w, None);
    let loss = graph.add(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: (0..y_shape.rank()).collect(),
            keep_dims: false,
        },
        &[weighted],
        None,
    );
    graph.outputs.push(("loss".into(), loss));
    let unreachable = autodiff::differentiate(&mut graph, loss);
    assert!(unreachable.is_empty(), "{name}: unreachable params");
    let problems = verify::verify(&graph);
    assert!(problems.is_empty(), "{name}: {problems:?}");

    let bindings = Bindings {
        inputs: vec![random(&mut rng, &y_shape.resolve(1), -1.0, 1.0)],
        params: param_shapes
            .iter()
            .map(|s| random(&mut rng, s, range.0, range.1))
            .collect(),
        states: vec![],
    };
    check_gradients(name, &graph, &bindings, 1);
}

fn loss_at(graph: &Graph, bindings: &Bindings, batch: usize) -> f64 {
    let result = interp::step(graph, bindings, batch).unwrap();
    result.output("loss").unwrap()[IxDyn(&[])]
}

fn check_gradients(name: &str, graph: &Graph, bindings: &Bindings, batch: usize) {
    let result = interp::step(graph, bindings, batch).unwrap();
    for (p, analytic) in result.gradients.iter().enumerate() {
        for index in 0..analytic.len() {
            let mut plus = bindings.clone();
            plus.params[p].as_slice_mut().unwrap()[index] += H;
            let mut minus = bindings.clone();
            minus.params[p].as_slice_mut().unwrap()[index] -= H;
            let numeric =
                (loss_at(graph, &plus, batch) - loss_at(graph, &minus, batch)) / (2.0 * H);
            let got = analytic.as_slice().unwrap()[index];
            let scale = numeric.abs().max(got.abs()).max(1.0);
            assert!(
                (numeric - got).abs() / scale < 1e-6,
                "{name}: ∂loss/∂p{p}[{index}] = {got} by autodiff, {numeric} by finite differences"
            );
        }
    }
}

#[test]
fn unary_ops() {
    for op in UnaryOp::ALL {
        // Positive inputs keep log and sqrt defined; relu's kink at 0 is avoided by the range.
        let range = match op {
            UnaryOp::Log | UnaryOp::Sqrt => (0.5, 2.0),
            UnaryOp::Relu => (0.1, 1.0),
            _ => (-2.0, 2.0),
        };
        check_op(op.name(), &[&[3, 4]], range, |g, p| g.unary(op, p[0], None));
    }
    // relu on negative inputs: zero gradient.
    check_op("relu_negative", &[&[2, 3]], (-1.0, -0.1), |g, p| {
        g.unary(UnaryOp::Relu, p[0], None)
    });
}

#[test]
fn binary_ops_with_broadcasting() {
    let patterns: [(&[usize], &[usize]); 5] = [
        (&[3, 4], &[3, 4]),
        (&[3, 4], &[4]),
        (&[3, 4], &[3, 1]),
        (&[3, 4], &[]),
        (&[1, 4], &[3, 1]),
    ];
    for op in BinaryOp::ALL {
        if op == BinaryOp::Greater {
            continue; // piecewise constant: no gradient to check
        }
        for (a, b) in patterns {
            // Positive operands keep pow and div well-defined.
            let name = format!("{}{a:?}{b:?}", op.name());
            check_op(&name, &[a, b], (0.5, 2.0), |g, p| {
                g.binary(op, p[0], p[1], None)
            });
        }
    }
}

#[test]
fn greater_has_no_gradient() {
    let mut graph = Graph::new("greater");
    let p = graph.param(
        ParamInfo {
            name: "p".into(),
            shape: Shape::fixed(&[2]),
            init: Init::Zeros,
        },
        None,
    );
    let zero = graph.constant(0.0, None);
    let mask = graph.binary(BinaryOp::Greater, p, zero, None);
    let loss = graph.add(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![0],
            keep_dims: false,
        },
        &[mask],
        None,
    );
    let unreachable = autodiff::differentiate(&mut graph, loss);
    assert_eq!(
        unreachable,
        vec![0],
        "a parameter seen only through `greater` gets no gradient"
    );
    assert!(verify::verify(&graph).is_empty());
}

#[test]
fn matmul_in_every_orientation() {
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let a: &[usize] = if ta { &[4, 3] } else { &[3, 4] };
        let b: &[usize] = if tb { &[5, 4] } else { &[4, 5] };
        check_op(&format!("matmul{ta}{tb}"), &[a, b], (-1.0, 1.0), |g, p| {
            g.add(
                Op::MatMul {
                    transpose_a: ta,
                    transpose_b: tb,
                },
                &[p[0], p[1]],
                None,
            )
        });
    }
}

#[test]
fn reductions_broadcast_and_rows() {
    let reduce = |kind, axes: Vec<usize>, keep_dims| {
        move |g: &mut Graph, p: &[ValueId]| {
            g.add(
                Op::Reduce {
                    kind,
                    axes: axes.clone(),
                    keep_dims,
                },
                &[p[0]],
                None,
            )
        }
    };
    check_op(
        "sum0",
        &[&[3, 4]],
        (-1.0, 1.0),
        reduce(ReduceKind::Sum, vec![0], false),
    );
    check_op(
        "sum1k",
        &[&[3, 4]],
        (-1.0, 1.0),
        reduce(ReduceKind::Sum, vec![1], true),
    );
    check_op(
        "sum01",
        &[&[3, 4]],
        (-1.0, 1.0),
        reduce(ReduceKind::Sum, vec![0, 1], false),
    );
    check_op(
        "max1k",
        &[&[3, 4]],
        (-1.0, 1.0),
        reduce(ReduceKind::Max, vec![1], true),
    );
    check_op(
        "max0",
        &[&[3, 4]],
        (-1.0, 1.0),
        reduce(ReduceKind::Max, vec![0], false),
    );
    check_op("broadcast", &[&[4]], (-1.0, 1.0), |g, p| {
        g.broadcast(p[0], &Shape::fixed(&[3, 4]), None)
    });
    check_op("softmax", &[&[3, 5]], (-2.0, 2.0), |g, p| {
        g.add(Op::Softmax, &[p[0]], None)
    });
    check_op("log_softmax", &[&[3, 5]], (-2.0, 2.0), |g, p| {
        g.add(Op::LogSoftmax, &[p[0]], None)
    });
}

#[test]
fn a_value_used_twice_accumulates_both_gradients() {
    check_op("reuse", &[&[3, 4]], (-1.0, 1.0), |g, p| {
        let square = g.binary(BinaryOp::Mul, p[0], p[0], None);
        let tanh = g.unary(UnaryOp::Tanh, p[0], None);
        g.binary(BinaryOp::Add, square, tanh, None)
    });
}

fn fit(loss: Loss) -> Fit {
    Fit {
        span: Span::default(),
        model: 0,
        data: 0,
        loss,
        optimizer: Optimizer::Sgd { lr: 0.01 },
        metrics: vec![],
        epochs: 1,
        batch: 4,
        seed: 0,
        shuffle: true,
        validation: None,
        training: Default::default(),
    }
}

/// The whole lowered forward pass and loss, differentiated, against finite differences.
#[test]
fn whole_training_graphs() {
    let cases = [
        (
            vec![Activation::Relu, Activation::Tanh, Activation::Softmax],
            Loss::SparseCategoricalCrossentropy,
        ),
        (
            vec![Activation::Sigmoid, Activation::Linear],
            Loss::SparseCategoricalCrossentropy,
        ),
        (
            vec![Activation::Tanh, Activation::Linear],
            Loss::MeanSquaredError,
        ),
    ];
    let widths = [5, 6, 4, 3];
    for (activations, loss) in cases {
        let widths = &widths[widths.len() - activations.len() - 1..];
        let model = Model::dense_stack("m", widths, &activations);
        let mut graph = lower::lower_training(&model, &fit(loss));
        let loss_value = graph.output("loss").unwrap();
        assert!(autodiff::differentiate(&mut graph, loss_value).is_empty());
        assert!(verify::verify(&graph).is_empty());

        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let batch = 3;
        let inputs = graph
            .inputs
            .iter()
            .map(|input| {
                let shape = input.ty.shape.resolve(batch);
                match input.name.as_str() {
                    "labels" => {
                        random(&mut rng, &shape, 0.0, model.output_features as f64).mapv(f64::floor)
                    }
                    _ => random(&mut rng, &shape, -1.0, 1.0),
                }
            })
            .collect();
        let params = graph
            .params
            .iter()
            .map(|p| random(&mut rng, &p.shape.resolve(batch), -0.5, 0.5))
            .collect();
        let bindings = Bindings {
            inputs,
            params,
            states: vec![],
        };
        check_gradients(
            &format!("{activations:?} {loss:?}"),
            &graph,
            &bindings,
            batch,
        );
    }
}
