//! Every op's VJP rule against central finite differences in f64 on the reference interpreter,
//! and the gradient of whole lowered training graphs the same way.

mod common;

use kiln::diag::Span;
use kiln::interp::{self, Bindings};
use kiln::ir::graph::{Graph, Init, ParamInfo, ValueId};
use kiln::ir::op::{BinaryOp, Op, PoolKind, ReduceKind, UnaryOp, infer_type};
use kiln::ir::recurrence::{self, Cell, CellKind};
use kiln::ir::shape::{DType, Dim, Shape, TensorType};
use kiln::ir::window::{Padding, Window};
use kiln::ir::{autodiff, lower, verify};
use kiln::program::Fit;
use kiln::settings::{Activation, Loss};
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
    check_op_with(name, param_shapes, range, Vec::new(), |g, p, _| build(g, p));
}

/// A graph input the op reads besides the parameters (a condition, indices, the step counter),
/// with its value.
struct Fed {
    name: &'static str,
    ty: TensorType,
    value: ArrayD<f64>,
}

fn fed(name: &'static str, ty: TensorType, value: ArrayD<f64>) -> Fed {
    Fed { name, ty, value }
}

/// `check_op` with extra inputs, passed to `build` after the parameters.
fn check_op_with(
    name: &str,
    param_shapes: &[&[usize]],
    range: (f64, f64),
    extra: Vec<Fed>,
    build: impl Fn(&mut Graph, &[ValueId], &[ValueId]) -> ValueId,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(name.len() as u64 * 7919);
    let mut graph = Graph::new(name);
    let params: Vec<ValueId> = param_shapes
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            graph.param(
                ParamInfo {
                    regularizer: None,
                    trainable: true,
                    name: format!("p{i}"),
                    shape: Shape::fixed(shape),
                    init: Init::Zeros,
                },
                None,
            )
        })
        .collect();
    let extra_values: Vec<ValueId> = extra
        .iter()
        .map(|f| graph.input(f.name, f.ty.clone(), None))
        .collect();
    let y = build(&mut graph, &params, &extra_values);
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

    let mut inputs: Vec<ArrayD<f64>> = extra.into_iter().map(|f| f.value).collect();
    inputs.push(random(&mut rng, &y_shape.resolve(1), -1.0, 1.0));
    let bindings = Bindings {
        inputs,
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
    // Non-trainable parameters have no gradient: each gradient names its parameter.
    for (gradient, analytic) in graph.gradients.iter().zip(&result.gradients) {
        let p = gradient.param;
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
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt => (0.5, 2.0),
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
        if op.is_comparison() {
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
fn comparisons_have_no_gradient() {
    for op in BinaryOp::ALL.into_iter().filter(|op| op.is_comparison()) {
        comparison_has_no_gradient(op);
    }
}

fn comparison_has_no_gradient(op: BinaryOp) {
    let mut graph = Graph::new(op.name());
    let p = graph.param(
        ParamInfo {
            regularizer: None,
            trainable: true,
            name: "p".into(),
            shape: Shape::fixed(&[2]),
            init: Init::Zeros,
        },
        None,
    );
    let zero = graph.constant(0.0, None);
    let mask = graph.binary(op, p, zero, None);
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
        loss_options: Default::default(),
        optimizer: kiln::settings::optimizer::with_lr(&kiln::settings::optimizer::SGD, 0.01),
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
        (
            vec![Activation::Relu, Activation::Softmax],
            Loss::CategoricalCrossentropy,
        ),
        (
            vec![Activation::Tanh, Activation::Linear],
            Loss::MeanAbsoluteError,
        ),
        (vec![Activation::Tanh, Activation::Linear], Loss::Huber),
    ];
    let widths = [5, 6, 4, 3];
    for (activations, loss) in cases {
        let widths = &widths[widths.len() - activations.len() - 1..];
        let model = kiln::check::dense_stack("m", widths, &activations);
        let mut graph = lower::lower_training(&model.forward, &fit(loss).objective());
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

// ── The op set of issue 7 ───────────────────────────────────────────────────────────────────

fn array(shape: &[usize], data: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap()
}

fn i32_input(shape: &[usize]) -> TensorType {
    TensorType {
        dtype: DType::I32,
        shape: Shape::fixed(shape),
    }
}

#[test]
fn parameterized_activations_on_both_sides_of_zero() {
    for alpha in [0.2f32, 1.0, 1.7] {
        check_op(
            &format!("leaky_relu{alpha}"),
            &[&[3, 4]],
            (-2.0, 2.0),
            |g, p| g.add(Op::LeakyRelu { alpha }, &[p[0]], None),
        );
        check_op(&format!("elu{alpha}"), &[&[3, 4]], (-2.0, 2.0), |g, p| {
            g.add(Op::Elu { alpha }, &[p[0]], None)
        });
    }
}

#[test]
fn select_routes_each_branch_and_broadcasts() {
    // Conditions of 0, 1, -2 and NaN (NaN counts as true).
    let cond = array(
        &[3, 4],
        &[
            0.0,
            1.0,
            -2.0,
            f64::NAN,
            1.0,
            0.0,
            0.0,
            1.0,
            f64::NAN,
            0.0,
            3.0,
            0.0,
        ],
    );
    let patterns: [(&[usize], &[usize]); 4] = [
        (&[3, 4], &[3, 4]),
        (&[4], &[3, 1]),
        (&[], &[3, 4]),
        (&[1, 4], &[]),
    ];
    for (a, b) in patterns {
        check_op_with(
            &format!("select{a:?}{b:?}"),
            &[a, b],
            (-1.0, 1.0),
            vec![fed(
                "cond",
                TensorType::f32(Shape::fixed(&[3, 4])),
                cond.clone(),
            )],
            |g, p, x| g.select(x[0], p[0], p[1], None),
        );
    }
    // A row condition broadcast over columns, and one value in both branches.
    check_op_with(
        "select_row_cond_same_value",
        &[&[3, 4]],
        (-1.0, 1.0),
        vec![fed(
            "cond",
            TensorType::f32(Shape::fixed(&[3, 1])),
            array(&[3, 1], &[1.0, 0.0, 1.0]),
        )],
        |g, p, x| {
            let t = g.unary(UnaryOp::Tanh, p[0], None);
            g.select(x[0], p[0], t, None)
        },
    );
}

#[test]
fn dropout_gradient_uses_the_forward_mask() {
    for (rate, step) in [(0.5f32, 3.0), (0.1, 1.0), (0.9, 17.0), (0.0, 2.0)] {
        check_op_with(
            &format!("dropout{rate}@{step}"),
            &[&[4, 5]],
            (-1.0, 1.0),
            vec![
                fed(
                    "step",
                    TensorType::f32(Shape::scalar()),
                    array(&[], &[step]),
                ),
                // A rank's slice of a batch, from global row 5 (`ir::dropout::FIRST_ROW`).
                fed(
                    "first_row",
                    TensorType::f32(Shape::scalar()),
                    array(&[], &[5.0]),
                ),
            ],
            |g, p, x| {
                // Through a nonlinearity, so the gradient depends on which elements were kept.
                let d = g.dropout(p[0], x[0], rate, 42, None);
                g.binary(BinaryOp::Mul, d, d, None)
            },
        );
    }
}

#[test]
fn dropout_keeps_about_one_minus_rate_and_changes_with_step_and_seed() {
    use kiln::ir::dropout::{Key, threshold};
    let n = 20_000u32;
    for rate in [0.1f32, 0.5, 0.8] {
        let t = threshold(rate);
        let kept = (0..n).filter(|&i| Key::new(7, 1).keep(i, t)).count() as f64 / n as f64;
        assert!(
            (kept - (1.0 - f64::from(rate))).abs() < 0.015,
            "rate {rate}: kept {kept}"
        );
    }
    let t = threshold(0.5);
    let mask = |seed: u64, step: u32| -> Vec<bool> {
        (0..256).map(|i| Key::new(seed, step).keep(i, t)).collect()
    };
    assert_eq!(mask(7, 3), mask(7, 3));
    assert_ne!(mask(7, 3), mask(7, 4));
    assert_ne!(mask(7, 3), mask(8, 3));
    assert_ne!(mask(7, 3), mask(7 + (1 << 32), 3));
    assert!((0..n).all(|i| Key::new(1, 1).keep(i, threshold(0.0))));
}

#[test]
fn transpose_reshape_slice_concat() {
    for perm in [vec![1, 0, 2], vec![2, 0, 1], vec![0, 2, 1], vec![2, 1, 0]] {
        check_op(
            &format!("transpose{perm:?}"),
            &[&[2, 3, 4]],
            (-1.0, 1.0),
            |g, p| {
                let t = g.transpose(p[0], &perm, None);
                g.unary(UnaryOp::Tanh, t, None)
            },
        );
    }
    for shape in [&[6, 4][..], &[24], &[4, 3, 2], &[1, 24, 1]] {
        check_op(
            &format!("reshape{shape:?}"),
            &[&[2, 3, 4]],
            (-1.0, 1.0),
            |g, p| {
                let r = g.reshape(p[0], &Shape::fixed(shape), None);
                g.binary(BinaryOp::Mul, r, r, None)
            },
        );
    }
    for (axis, start, end) in [(0, 1, 3), (1, 0, 2), (2, 2, 4), (2, 0, 4), (1, 1, 2)] {
        check_op(
            &format!("slice{axis}:{start}..{end}"),
            &[&[3, 3, 4]],
            (-1.0, 1.0),
            |g, p| {
                let s = g.slice(p[0], axis, start, end, None);
                g.unary(UnaryOp::Sigmoid, s, None)
            },
        );
    }
    for axis in 0..3 {
        let mut b = vec![2, 3, 4];
        b[axis] = 1;
        let b: &[usize] = &b;
        check_op(
            &format!("concat{axis}"),
            &[&[2, 3, 4], b],
            (-1.0, 1.0),
            |g, p| {
                let c = g.concat(&[p[0], p[1], p[0]], axis, None);
                g.binary(BinaryOp::Mul, c, c, None)
            },
        );
    }
    check_op("concat_single", &[&[2, 3]], (-1.0, 1.0), |g, p| {
        g.concat(&[p[0]], 1, None)
    });
}

#[test]
fn gather_and_scatter_add_with_repeats_and_out_of_range_indices() {
    // Row 1 twice, an index past the end and a negative one (zeros, no gradient).
    let indices = array(&[2, 3], &[1.0, 4.0, 1.0, 0.0, 5.0, -1.0]);
    check_op_with(
        "gather",
        &[&[5, 3]],
        (-1.0, 1.0),
        vec![fed("ids", i32_input(&[2, 3]), indices.clone())],
        |g, p, x| {
            let rows = g.gather(p[0], x[0], None);
            g.binary(BinaryOp::Mul, rows, rows, None)
        },
    );
    check_op_with(
        "gather_rank1_table",
        &[&[5]],
        (-1.0, 1.0),
        vec![fed("ids", i32_input(&[2, 3]), indices.clone())],
        |g, p, x| g.gather(p[0], x[0], None),
    );
    check_op_with(
        "scatter_add",
        &[&[2, 3, 4]],
        (-1.0, 1.0),
        vec![fed("ids", i32_input(&[2, 3]), indices)],
        |g, p, x| {
            let sums = g.add(Op::ScatterAdd { rows: 5 }, &[p[0], x[0]], None);
            g.binary(BinaryOp::Mul, sums, sums, None)
        },
    );
}

#[test]
fn mean_reductions_over_any_axes() {
    for (axes, keep) in [
        (vec![0], false),
        (vec![1], false),
        (vec![2], false),
        (vec![0, 2], false),
        (vec![1, 2], true),
        (vec![0, 1, 2], false),
    ] {
        check_op(
            &format!("mean{axes:?}{keep}"),
            &[&[2, 3, 4]],
            (-1.0, 1.0),
            |g, p| {
                let sq = g.binary(BinaryOp::Mul, p[0], p[0], None);
                g.reduce(ReduceKind::Mean, sq, &axes, keep, None)
            },
        );
    }
    // An inner-axis sum and max without kept dims (their gradient reshapes back).
    check_op("sum_inner", &[&[2, 3, 4]], (-1.0, 1.0), |g, p| {
        g.reduce(ReduceKind::Sum, p[0], &[1], false, None)
    });
    check_op("max_inner", &[&[2, 3, 4]], (-1.0, 1.0), |g, p| {
        g.reduce(ReduceKind::Max, p[0], &[2], false, None)
    });
}

#[test]
fn batched_matmul_and_dense_on_a_sequence() {
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let a: &[usize] = if ta { &[2, 4, 3] } else { &[2, 3, 4] };
        let b3: &[usize] = if tb { &[2, 5, 4] } else { &[2, 4, 5] };
        let b2: &[usize] = if tb { &[5, 4] } else { &[4, 5] };
        for b in [b3, b2] {
            check_op(
                &format!("bmm{ta}{tb}{}", b.len()),
                &[a, b],
                (-1.0, 1.0),
                |g, p| {
                    g.add(
                        Op::MatMul {
                            transpose_a: ta,
                            transpose_b: tb,
                        },
                        &[p[0], p[1]],
                        None,
                    )
                },
            );
        }
    }
    // Rank 4 with a shared right operand.
    check_op("bmm4", &[&[2, 2, 3, 4], &[4, 2]], (-1.0, 1.0), |g, p| {
        g.add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            },
            &[p[0], p[1]],
            None,
        )
    });
}

/// Ops on values with a batch dimension: a mean over the batch divides by the runtime batch
/// size, and the reshapes of a convolutional model's flatten and of an image input.
#[test]
fn batch_dimension_reshapes_and_means() {
    let batch = 3;
    let bd = |dims: &[usize]| {
        let mut d = vec![Dim::Batch];
        d.extend(dims.iter().map(|&n| Dim::Fixed(n)));
        Shape(d)
    };
    let mut graph = Graph::new("batched");
    let x = graph.input("x", TensorType::f32(bd(&[2, 2, 3])), None);
    let w = graph.param(
        ParamInfo {
            regularizer: None,
            trainable: true,
            name: "w".into(),
            shape: Shape::fixed(&[2, 2, 3]),
            init: Init::Zeros,
        },
        None,
    );
    let k = graph.param(
        ParamInfo {
            regularizer: None,
            trainable: true,
            name: "k".into(),
            shape: Shape::fixed(&[12, 2]),
            init: Init::Zeros,
        },
        None,
    );
    let h = graph.binary(BinaryOp::Mul, x, w, None);
    let flat = graph.reshape(h, &bd(&[12]), None); // [B,2,2,3] → [B,12]
    let y = graph.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        },
        &[flat, k],
        None,
    );
    let image = graph.reshape(y, &bd(&[1, 2, 1]), None); // [B,2] → [B,1,2,1]
    let act = graph.unary(UnaryOp::Gelu, image, None);
    let loss = graph.reduce(ReduceKind::Mean, act, &[0, 1, 2, 3], false, None);
    graph.outputs.push(("loss".into(), loss));
    assert!(autodiff::differentiate(&mut graph, loss).is_empty());
    assert!(
        verify::verify(&graph).is_empty(),
        "{:?}",
        verify::verify(&graph)
    );
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let bindings = Bindings {
        inputs: vec![random(&mut rng, &[batch, 2, 2, 3], -1.0, 1.0)],
        params: vec![
            random(&mut rng, &[2, 2, 3], -1.0, 1.0),
            random(&mut rng, &[12, 2], -1.0, 1.0),
        ],
        states: vec![],
    };
    check_gradients("batched", &graph, &bindings, batch);
}

/// Random shapes and broadcasting patterns: size-1 axes, scalars, a value used twice.
mod random_shapes {
    use super::*;
    use proptest::prelude::*;

    /// A shape of rank 0..=3 with extents 1..=3, and a shape broadcastable with it (some axes
    /// set to 1, some leading axes dropped).
    fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        prop::collection::vec(1usize..=3, 0..=3).prop_flat_map(|full| {
            let rank = full.len();
            (
                Just(full),
                prop::collection::vec(any::<bool>(), rank),
                0..=rank,
            )
                .prop_map(|(full, ones, drop)| {
                    let other: Vec<usize> = full
                        .iter()
                        .zip(&ones)
                        .map(|(&n, &one)| if one { 1 } else { n })
                        .skip(drop)
                        .collect();
                    (full, other)
                })
        })
    }

    fn op_strategy() -> impl Strategy<Value = BinaryOp> {
        prop::sample::select(
            BinaryOp::ALL
                .into_iter()
                .filter(|op| !op.is_comparison())
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn binary_ops_broadcast((a, b) in broadcast_pair(), op in op_strategy(), swap in any::<bool>()) {
            let (a, b) = if swap { (b, a) } else { (a, b) };
            check_op(&format!("prop_{}{a:?}{b:?}", op.name()), &[&a, &b], (0.5, 2.0), |g, p| {
                // The first operand is used twice: in the op and again in the sum.
                let y = g.binary(op, p[0], p[1], None);
                g.binary(BinaryOp::Add, y, p[0], None)
            });
        }

        #[test]
        fn select_broadcasts((a, b) in broadcast_pair(), swap in any::<bool>(), bits in any::<u16>()) {
            let (a, b) = if swap { (b, a) } else { (a, b) };
            let full = Shape::fixed(&a).broadcast(&Shape::fixed(&b)).unwrap().resolve(1);
            let n: usize = full.iter().product();
            let cond: Vec<f64> = (0..n).map(|i| f64::from((bits >> (i % 16)) & 1)).collect();
            check_op_with(
                &format!("prop_select{a:?}{b:?}"),
                &[&a, &b],
                (-1.0, 1.0),
                vec![fed("cond", TensorType::f32(Shape::fixed(&full)), array(&full, &cond))],
                |g, p, x| g.select(x[0], p[0], p[1], None),
            );
        }

        #[test]
        fn transpose_of_random_rank(dims in prop::collection::vec(1usize..=3, 1..=4), seed in any::<u64>()) {
            let mut perm: Vec<usize> = (0..dims.len()).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in (1..perm.len()).rev() {
                perm.swap(i, rng.random_range(0..=i));
            }
            check_op(&format!("prop_transpose{dims:?}{perm:?}"), &[&dims], (-1.0, 1.0), |g, p| {
                let t = g.transpose(p[0], &perm, None);
                g.binary(BinaryOp::Mul, t, t, None)
            });
        }
    }
}

/// Binary cross-entropy on a sigmoid output, against finite differences and against its
/// textbook value `-[y log σ(l) + (1-y) log(1-σ(l))]`.
#[test]
fn binary_crossentropy_graph() {
    let model = kiln::check::dense_stack("m", &[3, 4, 1], &[Activation::Tanh, Activation::Sigmoid]);
    let mut graph =
        lower::lower_training(&model.forward, &fit(Loss::BinaryCrossentropy).objective());
    let loss_value = graph.output("loss").unwrap();
    assert!(autodiff::differentiate(&mut graph, loss_value).is_empty());
    assert!(verify::verify(&graph).is_empty());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let batch = 4;
    let inputs: Vec<ArrayD<f64>> = graph
        .inputs
        .iter()
        .map(|input| {
            let shape = input.ty.shape.resolve(batch);
            match input.name.as_str() {
                "labels" => random(&mut rng, &shape, 0.0, 2.0).mapv(f64::floor),
                _ => random(&mut rng, &shape, -1.0, 1.0),
            }
        })
        .collect();
    let params: Vec<ArrayD<f64>> = graph
        .params
        .iter()
        .map(|p| random(&mut rng, &p.shape.resolve(0), -0.8, 0.8))
        .collect();
    let bindings = Bindings {
        inputs: inputs.clone(),
        params: params.clone(),
        states: vec![],
    };
    let result = interp::step(&graph, &bindings, batch).unwrap();
    let loss = result
        .output("loss")
        .unwrap()
        .iter()
        .next()
        .copied()
        .unwrap();
    // The same value from the sigmoid probabilities, computed directly.
    let x = &inputs[0];
    let (w1, b1, w2, b2) = (&params[0], &params[1], &params[2], &params[3]);
    let labels = &inputs[1];
    let mut expected = 0.0;
    for i in 0..batch {
        let mut logit = b2[[0]];
        for j in 0..4 {
            let mut h = b1[[j]];
            for k in 0..3 {
                h += x[[i, k]] * w1[[k, j]];
            }
            logit += h.tanh() * w2[[j, 0]];
        }
        let p = 1.0 / (1.0 + (-logit).exp());
        let y = labels[[i]];
        expected -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
    }
    expected /= batch as f64;
    assert!((loss - expected).abs() < 1e-9, "{loss} vs {expected}");
}

/// Windows that exercise every part of the geometry: non-overlapping, overlapping with `same`
/// padding, strided and dilated with uneven padding, and one spatial axis.
fn windows() -> Vec<(Window, Vec<usize>)> {
    vec![
        (
            Window::new(&[4, 6], &[2, 2], &[2, 2], &[1, 1], Padding::Valid),
            vec![2, 4, 6, 3],
        ),
        (
            Window::new(&[5, 4], &[3, 3], &[1, 1], &[1, 1], Padding::Same),
            vec![2, 5, 4, 2],
        ),
        (
            Window::new(&[7, 6], &[2, 3], &[2, 1], &[2, 2], Padding::Same),
            vec![1, 7, 6, 2],
        ),
        (
            Window::new(&[9], &[3], &[2], &[1], Padding::Same),
            vec![2, 9, 3],
        ),
    ]
}

#[test]
fn unfold_fold_and_pooling_in_every_geometry() {
    for (k, (window, x_shape)) in windows().into_iter().enumerate() {
        let unfold = Op::Unfold {
            window: window.clone(),
        };
        check_op(&format!("unfold{k}"), &[&x_shape], (-1.0, 1.0), |g, p| {
            let u = g.add(unfold.clone(), &[p[0]], None);
            g.binary(BinaryOp::Mul, u, u, None)
        });
        let x_type = TensorType::f32(Shape::fixed(&x_shape));
        let cols = infer_type(&unfold, &[&x_type]).unwrap().shape.resolve(1);
        let spatial = x_shape[1..x_shape.len() - 1].to_vec();
        let fold = Op::Fold {
            window: window.clone(),
            input: spatial,
        };
        check_op(&format!("fold{k}"), &[&cols], (-1.0, 1.0), |g, p| {
            let f = g.add(fold.clone(), &[p[0]], None);
            g.binary(BinaryOp::Mul, f, f, None)
        });
        for kind in [PoolKind::Max, PoolKind::Mean] {
            let pool = Op::Pool {
                kind,
                window: window.clone(),
            };
            check_op(
                &format!("{}_pool{k}", kind.name()),
                &[&x_shape],
                (-1.0, 1.0),
                |g, p| {
                    let y = g.add(pool.clone(), &[p[0]], None);
                    g.binary(BinaryOp::Mul, y, y, None)
                },
            );
        }
        // Mean pooling's gradient is linear in dy and differentiable in it.
        let pooled = infer_type(
            &Op::Pool {
                kind: PoolKind::Mean,
                window: window.clone(),
            },
            &[&x_type],
        )
        .unwrap()
        .shape
        .resolve(1);
        let x_value = random(
            &mut ChaCha8Rng::seed_from_u64(k as u64),
            &x_shape,
            -1.0,
            1.0,
        );
        check_op_with(
            &format!("mean_pool_grad{k}"),
            &[&pooled],
            (-1.0, 1.0),
            vec![fed("x", x_type.clone(), x_value)],
            |g, p, x| {
                let grad = Op::PoolGrad {
                    kind: PoolKind::Mean,
                    window: window.clone(),
                };
                let mean = Op::Pool {
                    kind: PoolKind::Mean,
                    window: window.clone(),
                };
                let y = g.add(mean, &[x[0]], None);
                let dx = g.add(grad, &[x[0], y, p[0]], None);
                g.binary(BinaryOp::Mul, dx, dx, None)
            },
        );
    }
}

#[test]
fn max_pooling_routes_to_the_first_maximum_of_a_tie() {
    // Two windows of 2x2 over one channel: the first all equal, the second with its maximum
    // last. The first window's gradient goes to its first tap only.
    let window = Window::new(&[2, 4], &[2, 2], &[2, 2], &[1, 1], Padding::Valid);
    let x = array(&[1, 2, 4, 1], &[1.0, 1.0, 0.0, 2.0, 1.0, 1.0, 1.0, 3.0]);
    let dy = array(&[1, 1, 2, 1], &[10.0, 20.0]);
    let mut graph = Graph::new("tie");
    let xv = graph.input("x", TensorType::f32(Shape::fixed(&[1, 2, 4, 1])), None);
    let dyv = graph.input("dy", TensorType::f32(Shape::fixed(&[1, 1, 2, 1])), None);
    let pooled = graph.add(
        Op::Pool {
            kind: PoolKind::Max,
            window: window.clone(),
        },
        &[xv],
        None,
    );
    let grad = graph.add(
        Op::PoolGrad {
            kind: PoolKind::Max,
            window,
        },
        &[xv, pooled, dyv],
        None,
    );
    graph.outputs.push(("dx".into(), grad));
    let bindings = Bindings {
        inputs: vec![x, dy],
        params: vec![],
        states: vec![],
    };
    let result = interp::step(&graph, &bindings, 1).unwrap();
    let dx: Vec<f64> = result.output("dx").unwrap().iter().copied().collect();
    assert_eq!(dx, [10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 20.0]);
}

#[test]
fn in_training_differentiates_its_training_value() {
    check_op("in_training", &[&[2, 3], &[3]], (-1.0, 1.0), |g, p| {
        // The inference value gets no gradient; p1 reaches the loss another way too.
        let t = g.binary(BinaryOp::Mul, p[0], p[0], None);
        let y = g.add(Op::InTraining, &[t, p[1]], None);
        g.binary(BinaryOp::Mul, y, p[1], None)
    });
}

#[test]
fn contract_sums_products_over_every_row() {
    check_op(
        "contract_rank2",
        &[&[5, 3], &[5, 4]],
        (-1.0, 1.0),
        |g, p| g.add(Op::Contract, &[p[0], p[1]], None),
    );
    check_op(
        "contract_rank4",
        &[&[2, 3, 2, 3], &[2, 3, 2, 4]],
        (-1.0, 1.0),
        |g, p| {
            let c = g.add(Op::Contract, &[p[0], p[1]], None);
            g.binary(BinaryOp::Mul, c, c, None)
        },
    );
}

// ── Normalization and padding layers, through the checker ──────────────────────────────────

fn random_bindings(graph: &Graph, batch: usize, seed: u64) -> Bindings {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let inputs = graph
        .inputs
        .iter()
        .map(|input| {
            let shape = input.ty.shape.resolve(batch);
            match input.name.as_str() {
                "labels" => random(&mut rng, &shape, 0.0, 3.0).mapv(f64::floor),
                _ => random(&mut rng, &shape, -1.0, 1.0),
            }
        })
        .collect();
    // Variances must stay positive: the moving ones start in [0.5, 1.5].
    let params = graph
        .params
        .iter()
        .map(|p| match p.name.ends_with("moving_variance") {
            true => random(&mut rng, &p.shape.resolve(1), 0.5, 1.5),
            false => random(&mut rng, &p.shape.resolve(1), -0.5, 0.5),
        })
        .collect();
    Bindings {
        inputs,
        params,
        states: vec![],
    }
}

const NORMALIZED_CONVNET: &str = "
data d = synthetic_classification(samples: 16, features: 48, classes: 3)

model m(x: f32[B, 48]) -> f32[B, 3] {
    reshape([4, 4, 3])
    zero_padding2d(((1, 0), (0, 1)))
    conv2d(4, 2)
    batch_normalization()
    relu
    up_sampling2d((1, 2))
    batch_normalization(axis: 1, momentum: 0.5, scale: false)
    layer_normalization()
    reshape([4, 32])
    zero_padding1d((0, 1))
    up_sampling1d(2)
    layer_normalization(axis: 1, center: false)
    flatten()
    dense(3, softmax)
}

fit m on d {
    loss      sparse_categorical_crossentropy
    optimizer sgd(lr: 0.1)
}
";

/// A whole training step through batch normalization (batch statistics, differentiated through
/// the mean and variance), layer normalization, padding and upsampling, against finite
/// differences; the moving statistics get no gradient.
#[test]
fn normalization_layers_in_a_whole_training_graph() {
    let graph = common::first_fit_graph(NORMALIZED_CONVNET, kiln::driver::GraphStage::Gradients);
    let batch = 3;
    let bindings = random_bindings(&graph, batch, 5);
    let trainable = graph.params.iter().filter(|p| p.trainable).count();
    assert_eq!(graph.gradients.len(), trainable);
    assert_eq!(
        graph.params.len() - trainable,
        4,
        "two layers' moving statistics"
    );
    check_gradients("normalized convnet", &graph, &bindings, batch);
}

/// In a step the moving statistics move toward the batch's (Keras's formula, biased variance);
/// in inference the layer normalizes by them instead.
#[test]
fn batch_normalization_moves_its_statistics_and_uses_them_in_inference() {
    let source = "
data d = synthetic_classification(samples: 16, features: 3, classes: 3)

model m(x: f32[B, 3]) -> f32[B, 3] {
    batch_normalization(momentum: 0.9, epsilon: 0.01)
}

fit m on d {
    loss      sparse_categorical_crossentropy(from_logits: true)
    optimizer sgd
}
";
    let graph = common::first_fit_graph(source, kiln::driver::GraphStage::Forward);
    let names: Vec<&str> = graph.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "batch_normalization.gamma",
            "batch_normalization.beta",
            "batch_normalization.moving_mean",
            "batch_normalization.moving_variance"
        ]
    );
    let batch = 4;
    let bindings = random_bindings(&graph, batch, 9);
    let x = &bindings.inputs[0];
    let [gamma, beta, moving_mean, moving_variance] = &bindings.params[..] else {
        unreachable!()
    };
    let result = interp::step(&graph, &bindings, batch).unwrap();
    for c in 0..3 {
        let column: Vec<f64> = (0..batch).map(|i| x[[i, c]]).collect();
        let mean = column.iter().sum::<f64>() / batch as f64;
        let variance = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / batch as f64;
        let moved_mean = moving_mean[[c]] * 0.9 + mean * (1.0 - 0.9f32 as f64);
        let moved_variance = moving_variance[[c]] * 0.9 + variance * (1.0 - 0.9f32 as f64);
        assert!((result.params[2][[c]] - moved_mean).abs() < 1e-6);
        assert!((result.params[3][[c]] - moved_variance).abs() < 1e-6);
        // The gradient-trained parameters are the optimizer's to change, not the layer's.
        assert_eq!(result.params[0][[c]], gamma[[c]]);
        for i in 0..batch {
            let train =
                (x[[i, c]] - mean) / (variance + 0.01f32 as f64).sqrt() * gamma[[c]] + beta[[c]];
            assert!((result.output("scores").unwrap()[[i, c]] - train).abs() < 1e-5);
        }
    }

    let forward = lower::for_inference(&graph);
    assert!(forward.updates.is_empty());
    let values = interp::evaluate(&forward, &bindings, batch).unwrap();
    let scores = &values[forward.output("scores").unwrap().index()];
    for c in 0..3 {
        for i in 0..batch {
            let inferred = (x[[i, c]] - moving_mean[[c]])
                / (moving_variance[[c]] + 0.01f32 as f64).sqrt()
                * gamma[[c]]
                + beta[[c]];
            assert!((scores[[i, c]] - inferred).abs() < 1e-5);
        }
    }
}

#[test]
fn relu_then_max_pooling_masks_the_pooled_gradient() {
    for (k, (window, x_shape)) in windows().into_iter().enumerate() {
        check_op(
            &format!("relu_max_pool{k}"),
            &[&x_shape],
            (-1.0, 1.0),
            |g, p| {
                let r = g.unary(UnaryOp::Relu, p[0], None);
                let pool = Op::Pool {
                    kind: PoolKind::Max,
                    window: window.clone(),
                };
                let y = g.add(pool, &[r], None);
                g.binary(BinaryOp::Mul, y, y, None)
            },
        );
    }
}

// ── Recurrence: the scan and its reverse scan ──────────────────────────────────────────────

fn cells() -> Vec<Cell> {
    use recurrence::Activation::{Linear, Relu, Sigmoid, Tanh};
    let cell = |kind, activation, recurrent_activation, reverse| Cell {
        kind,
        units: 3,
        activation,
        recurrent_activation,
        reverse,
        masked: false,
    };
    vec![
        cell(CellKind::SimpleRnn, Tanh, Sigmoid, false),
        cell(CellKind::SimpleRnn, Relu, Sigmoid, true),
        cell(CellKind::Lstm, Tanh, Sigmoid, false),
        cell(CellKind::Lstm, Tanh, Sigmoid, true),
        cell(CellKind::Lstm, Linear, Tanh, false),
        cell(CellKind::Gru, Tanh, Sigmoid, false),
        cell(CellKind::Gru, Sigmoid, Sigmoid, true),
    ]
}

/// The readable part of a tape: the hidden states, and the LSTM's cell states.
fn states(g: &mut Graph, cell: &Cell, tape: ValueId) -> ValueId {
    let end = cell.cell_state().map_or(cell.units, |c| c.end);
    g.slice(tape, 2, 0, end, None)
}

#[test]
fn recurrence_in_every_cell_and_direction() {
    for cell in cells() {
        let (gw, u) = (cell.gate_width(), cell.units);
        let (xw, kernel, bias) = ([2, 4, gw], [u, gw], [gw]);
        let mut shapes: Vec<&[usize]> = vec![&xw, &kernel];
        if cell.kind == CellKind::Gru {
            shapes.push(&bias);
        }
        let name = format!("recurrence {cell}");
        check_op(&name, &shapes, (-1.0, 1.0), |g, p| {
            let tape = g.add(Op::Recurrence { cell: cell.clone() }, p, None);
            states(g, &cell, tape)
        });
    }
}

/// A few hundred steps: the reverse scan carries the gradient all the way back to the kernel
/// (the step inputs are fed, so that finite differences stay cheap).
#[test]
fn recurrence_over_a_long_sequence() {
    for kind in [CellKind::Lstm, CellKind::Gru] {
        let cell = Cell {
            kind,
            units: 2,
            activation: recurrence::Activation::Tanh,
            recurrent_activation: recurrence::Activation::Sigmoid,
            reverse: false,
            masked: false,
        };
        let (gw, steps) = (cell.gate_width(), 300);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let xw = random(&mut rng, &[1, steps, gw], -1.0, 1.0);
        let xw = fed("xw", TensorType::f32(Shape::fixed(&[1, steps, gw])), xw);
        let (kernel, bias) = ([2, gw], [gw]);
        let mut shapes: Vec<&[usize]> = vec![&kernel];
        if kind == CellKind::Gru {
            shapes.push(&bias);
        }
        check_op_with(
            &format!("long {cell}"),
            &shapes,
            (-1.0, 1.0),
            vec![xw],
            |g, p, x| {
                let mut inputs = vec![x[0]];
                inputs.extend_from_slice(p);
                let tape = g.add(Op::Recurrence { cell: cell.clone() }, &inputs, None);
                states(g, &cell, tape)
            },
        );
    }
}

/// A masked scan (`mask_zero`): padded steps at the start, in the middle and at the end of
/// the sequences, in both directions; the gradient flows past the skipped steps unchanged.
#[test]
fn masked_recurrence_in_every_cell_and_direction() {
    let mask = ndarray::arr2(&[[0.0, 1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0, 0.0]]).into_dyn();
    for cell in cells() {
        let cell = Cell {
            masked: true,
            ..cell
        };
        let (gw, u) = (cell.gate_width(), cell.units);
        let (xw, kernel, bias) = ([2, 5, gw], [u, gw], [gw]);
        let mut shapes: Vec<&[usize]> = vec![&xw, &kernel];
        if cell.kind == CellKind::Gru {
            shapes.push(&bias);
        }
        let fed_mask = fed("mask", TensorType::f32(Shape::fixed(&[2, 5])), mask.clone());
        check_op_with(
            &format!("masked recurrence {cell}"),
            &shapes,
            (-1.0, 1.0),
            vec![fed_mask],
            |g, p, m| {
                let mut inputs = p.to_vec();
                inputs.push(m[0]);
                let tape = g.add(Op::Recurrence { cell: cell.clone() }, &inputs, None);
                states(g, &cell, tape)
            },
        );
    }
}

const SEQUENCE_LAYERS: &str = "
data d = synthetic_classification(samples: 16, features: 24, classes: 3)

model m(x: f32[B, 24]) -> f32[B, 3] {
    let s = reshape([4, 6])(x)
    let a = s + multi_head_attention(2, 3, value_dim: 2)(s)
    let n = layer_normalization()(a)
    let h = lstm(3, return_sequences: true)(n)
    let g = gru(2, go_backwards: true)(h)
    let r = simple_rnn(2)(n)
    dense(3, softmax)(concat([g, r]))
}

fit m on d {
    loss      sparse_categorical_crossentropy
    optimizer sgd
}
";

/// A whole training step through self-attention (a residual around it), layer normalization and
/// the three recurrent layers from source, against finite differences.
#[test]
fn attention_and_recurrent_layers_in_a_whole_training_graph() {
    let graph = common::first_fit_graph(SEQUENCE_LAYERS, kiln::driver::GraphStage::Gradients);
    let names: Vec<&str> = graph.params.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"multi_head_attention.attention_output.kernel"));
    assert!(names.contains(&"gru.bias") && names.contains(&"lstm.recurrent_kernel"));
    let batch = 2;
    let bindings = random_bindings(&graph, batch, 9);
    check_gradients("sequence layers", &graph, &bindings, batch);
}

/// Cross-attention from source (a query of 4 steps attends to a value of 3 and a key of 3 of
/// other widths, under the causal mask), against finite differences.
#[test]
fn cross_attention_in_a_whole_training_graph() {
    let source = "
data d = synthetic_classification(samples: 16, features: 24, classes: 3)

model m(x: f32[B, 24]) -> f32[B, 3] {
    let q = reshape([4, 6])(x)
    let v = reshape([3, 8])(x)
    let k = dense(5)(v)
    let a = multi_head_attention(2, 3, value_dim: 2, use_causal_mask: true)(q, v, k)
    dense(3, softmax)(flatten(a))
}

fit m on d {
    loss      sparse_categorical_crossentropy
    optimizer sgd
}
";
    let graph = common::first_fit_graph(source, kiln::driver::GraphStage::Gradients);
    let batch = 2;
    let bindings = random_bindings(&graph, batch, 11);
    check_gradients("cross attention", &graph, &bindings, batch);
}

#[test]
fn causal_softmax_normalizes_each_row_over_the_positions_up_to_it() {
    check_op("causal_softmax", &[&[2, 4, 4]], (-2.0, 2.0), |g, p| {
        g.add(Op::CausalSoftmax, &[p[0]], None)
    });
    for shape in [[2, 3, 5], [2, 5, 2]] {
        check_op(
            "causal_softmax between more or fewer keys",
            &[&shape],
            (-2.0, 2.0),
            |g, p| g.add(Op::CausalSoftmax, &[p[0]], None),
        );
    }
    // Row i holds i + 1 probabilities summing to 1, then zeros.
    let mut graph = Graph::new("causal");
    let x = graph.input("x", TensorType::f32(Shape::fixed(&[3, 3])), None);
    let y = graph.add(Op::CausalSoftmax, &[x], None);
    graph.outputs.push(("y".into(), y));
    let bindings = Bindings {
        inputs: vec![array(
            &[3, 3],
            &[5.0, 9.0, 9.0, 1.0, 1.0, 9.0, 0.0, 0.0, 0.0],
        )],
        params: vec![],
        states: vec![],
    };
    let y = interp::step(&graph, &bindings, 1)
        .unwrap()
        .output("y")
        .unwrap()
        .clone();
    let third = 1.0 / 3.0;
    let expected = [1.0, 0.0, 0.0, 0.5, 0.5, 0.0, third, third, third];
    for (got, want) in y.iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{y}");
    }
}
