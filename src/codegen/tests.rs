//! JIT results against a straightforward f64 reference evaluator of the IR (`reference` below),
//! on small hand-built graphs covering every op, broadcast patterns, ragged batches and a whole
//! MLP training step with Adam.

use super::*;
use crate::ir::graph::{Init, ParamInfo, Slot, Update};
use crate::ir::{BinaryOp, Dim, Op, ReduceKind, Shape, TensorType, UnaryOp, ValueId};

// ── Reference ───────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Debug)]
struct T {
    shape: Vec<usize>,
    data: Vec<f64>,
}

/// Flat index into `in_shape` of element `flat` of `out_shape`, NumPy broadcasting.
fn bcast_index(out_shape: &[usize], in_shape: &[usize], flat: usize) -> usize {
    let r = out_shape.len();
    let lead = r - in_shape.len();
    let mut idx = vec![0; r];
    let mut rem = flat;
    for d in (0..r).rev() {
        idx[d] = rem % out_shape[d];
        rem /= out_shape[d];
    }
    let mut off = 0;
    for (k, &n) in in_shape.iter().enumerate() {
        let i = if n == 1 { 0 } else { idx[lead + k] };
        off = off * n + i;
    }
    off
}

struct Feed {
    inputs: Vec<Vec<f64>>,
    params: Vec<Vec<f64>>,
    states: Vec<Vec<f64>>,
}

fn reference(g: &Graph, batch: usize, feed: &Feed) -> Vec<T> {
    let mut vals: Vec<T> = Vec::new();
    for node in &g.nodes {
        let shape = node.ty.shape.resolve(batch);
        let numel: usize = shape.iter().product();
        let arg = |i: usize| &vals[node.inputs[i].index()];
        let data: Vec<f64> = match &node.op {
            Op::Input { index } => feed.inputs[*index].clone(),
            Op::Param { index } => feed.params[*index].clone(),
            Op::State { index } => feed.states[*index].clone(),
            Op::Const { value } => vec![*value as f64],
            Op::BatchSize => vec![batch as f64],
            Op::Broadcast => {
                let a = arg(0);
                (0..numel)
                    .map(|i| a.data[bcast_index(&shape, &a.shape, i)])
                    .collect()
            }
            Op::Unary(op) => arg(0)
                .data
                .iter()
                .map(|&x| match op {
                    UnaryOp::Neg => -x,
                    UnaryOp::Exp => x.exp(),
                    UnaryOp::Log => x.ln(),
                    UnaryOp::Sqrt => x.sqrt(),
                    UnaryOp::Relu => x.max(0.0),
                    UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                    UnaryOp::Tanh => x.tanh(),
                    // The newer ops by the interpreter's definition.
                    op => crate::interp::unary(*op, x),
                })
                .collect(),
            Op::Binary(op) => {
                let (a, b) = (arg(0), arg(1));
                (0..numel)
                    .map(|i| {
                        let x = a.data[bcast_index(&shape, &a.shape, i)];
                        let y = b.data[bcast_index(&shape, &b.shape, i)];
                        match op {
                            BinaryOp::Add => x + y,
                            BinaryOp::Sub => x - y,
                            BinaryOp::Mul => x * y,
                            BinaryOp::Div => x / y,
                            BinaryOp::Pow => x.powf(y),
                            BinaryOp::Max => x.max(y),
                            BinaryOp::Greater => f64::from(x > y),
                            op => crate::interp::binary(*op, x, y),
                        }
                    })
                    .collect()
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let (a, b) = (arg(0), arg(1));
                let (m, n) = (shape[0], shape[1]);
                let k = if *transpose_a { a.shape[0] } else { a.shape[1] };
                let at = |i: usize, p: usize| {
                    if *transpose_a {
                        a.data[p * a.shape[1] + i]
                    } else {
                        a.data[i * a.shape[1] + p]
                    }
                };
                let bt = |p: usize, j: usize| {
                    if *transpose_b {
                        b.data[j * b.shape[1] + p]
                    } else {
                        b.data[p * b.shape[1] + j]
                    }
                };
                (0..m * n)
                    .map(|ij| (0..k).map(|p| at(ij / n, p) * bt(p, ij % n)).sum())
                    .collect()
            }
            Op::Reduce { kind, axes, .. } => {
                let a = arg(0);
                let init = match kind {
                    ReduceKind::Sum | ReduceKind::Mean => 0.0,
                    ReduceKind::Max => f64::NEG_INFINITY,
                };
                let mut out = vec![init; numel];
                let kept: Vec<usize> = (0..a.shape.len()).filter(|d| !axes.contains(d)).collect();
                for (i, &x) in a.data.iter().enumerate() {
                    let mut idx = vec![0; a.shape.len()];
                    let mut rem = i;
                    for d in (0..a.shape.len()).rev() {
                        idx[d] = rem % a.shape[d];
                        rem /= a.shape[d];
                    }
                    let o = kept.iter().fold(0, |o, &d| o * a.shape[d] + idx[d]);
                    out[o] = match kind {
                        ReduceKind::Sum | ReduceKind::Mean => out[o] + x,
                        ReduceKind::Max => out[o].max(x),
                    };
                }
                if *kind == ReduceKind::Mean {
                    let count = (a.data.len() / numel.max(1)) as f64;
                    out.iter_mut().for_each(|o| *o /= count);
                }
                out
            }
            Op::Softmax | Op::LogSoftmax => {
                let a = arg(0);
                let w = *shape.last().unwrap();
                let mut out = Vec::new();
                for row in a.data.chunks(w) {
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let s: f64 = row.iter().map(|x| (x - m).exp()).sum();
                    for x in row {
                        out.push(if matches!(node.op, Op::Softmax) {
                            (x - m).exp() / s
                        } else {
                            x - m - s.ln()
                        });
                    }
                }
                out
            }
            Op::OneHot { classes } => {
                let a = arg(0);
                let mut out = vec![0.0; numel];
                for (i, &l) in a.data.iter().enumerate() {
                    if l >= 0.0 && (l as usize) < *classes {
                        out[i * classes + l as usize] = 1.0;
                    }
                }
                out
            }
            // The full op set is checked against the interpreter in `tests/jit_ops.rs`.
            op => panic!("this reference does not model {}", op.name()),
        };
        assert_eq!(data.len(), numel, "reference: {}", node.op.name());
        vals.push(T { shape, data });
    }
    vals
}

// ── Harness ─────────────────────────────────────────────────────────────────────────────────

/// A small deterministic generator (tests do not depend on `rand`'s API).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f32 {
        (lo + (hi - lo) * self.next()) as f32
    }
}

fn close(got: f32, want: f64) -> bool {
    close_in(got, want, 0.0)
}

/// Relative 1e-4, plus an absolute floor of 1e-4 of the tensor's largest magnitude (`scale`):
/// f32 sums with cancellation (gradients over a batch) cannot match f64 element by element.
fn close_in(got: f32, want: f64, scale: f64) -> bool {
    let (g, w) = (got as f64, want);
    if w.is_nan() {
        return g.is_nan();
    }
    if w.is_infinite() {
        return g == w;
    }
    (g - w).abs() <= 1e-4 * (w.abs() + scale) + 1e-6
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want
        .iter()
        .filter(|w| w.is_finite())
        .fold(0.0f64, |m, w| m.max(w.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            close_in(g, w, scale),
            "{what}[{i}]: jit {g} vs reference {w}"
        );
    }
}

/// Fills every input, parameter and state with random values (states non-negative, labels in
/// `0..classes`, scalar inputs 1..5), runs the JIT for `steps` steps and compares every output,
/// gradient and update against the reference.
fn check(g: &Graph, max_batch: usize, batch: usize, steps: usize, seed: u64) -> CompiledStep {
    check_with(g, MatmulPolicy::Auto, max_batch, batch, steps, seed)
}

fn check_with(
    g: &Graph,
    policy: MatmulPolicy,
    max_batch: usize,
    batch: usize,
    steps: usize,
    seed: u64,
) -> CompiledStep {
    let mut rng = Lcg(seed);
    let mut step = compile_with(g, &CodegenConfig { max_batch }, policy).expect("compiles");
    let mut params: Vec<Vec<f64>> = Vec::new();
    for (i, p) in g.params.iter().enumerate() {
        let vals: Vec<f32> = (0..p.shape.numel(1))
            .map(|_| rng.uniform(-1.0, 1.0))
            .collect();
        step.param_mut(i).copy_from_slice(&vals);
        params.push(vals.iter().map(|&x| x as f64).collect());
    }
    let mut states: Vec<Vec<f64>> = Vec::new();
    for (i, s) in g.states.iter().enumerate() {
        let vals: Vec<f32> = (0..s.shape.numel(max_batch))
            .map(|_| rng.uniform(0.0, 0.5))
            .collect();
        step.state_mut(i).copy_from_slice(&vals);
        states.push(vals.iter().map(|&x| x as f64).collect());
    }
    for s in 0..steps {
        let mut inputs = Vec::new();
        for (i, info) in g.inputs.iter().enumerate() {
            let n = info.ty.shape.numel(batch);
            match info.ty.dtype {
                DType::F32 => {
                    let vals: Vec<f32> = if info.ty.shape.rank() == 0 {
                        vec![(s + 1) as f32]
                    } else {
                        (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect()
                    };
                    step.input_f32_mut(i, batch).copy_from_slice(&vals);
                    inputs.push(vals.iter().map(|&x| x as f64).collect());
                }
                DType::I32 => {
                    // Classes from the one_hot that reads this input; one label out of range.
                    let classes = g
                        .nodes
                        .iter()
                        .find_map(|n| match n.op {
                            Op::OneHot { classes } => Some(classes),
                            _ => None,
                        })
                        .unwrap_or(3);
                    let mut vals: Vec<i32> = (0..n)
                        .map(|_| (rng.next() * classes as f64) as i32)
                        .collect();
                    if n > 2 {
                        vals[1] = classes as i32;
                    }
                    step.input_i32_mut(i, batch).copy_from_slice(&vals);
                    inputs.push(vals.iter().map(|&x| x as f64).collect());
                }
            }
        }
        let feed = Feed {
            inputs,
            params: params.clone(),
            states: states.clone(),
        };
        let want = reference(g, batch, &feed);
        step.run(batch);
        for (name, v) in &g.outputs {
            let got = step.output(name, batch).expect("output");
            assert_close(
                &format!("step {s} output {name}"),
                got,
                &want[v.index()].data,
            );
        }
        for gr in &g.gradients {
            let got = step.gradient(gr.param);
            assert_close(
                &format!("step {s} gradient {}", gr.param),
                got,
                &want[gr.value.index()].data,
            );
        }
        for u in &g.updates {
            let w = &want[u.value.index()].data;
            match u.target {
                Slot::Param(p) => {
                    assert_close(&format!("step {s} param {p}"), step.param(p), w);
                    params[p] = step.param(p).iter().map(|&x| x as f64).collect();
                }
                Slot::State(st) => {
                    assert_close(&format!("step {s} state {st}"), step.state(st), w);
                    states[st] = step.state(st).iter().map(|&x| x as f64).collect();
                }
            }
        }
    }
    step
}

fn bn(n: usize) -> Shape {
    Shape(vec![Dim::Batch, Dim::Fixed(n)])
}

fn param(g: &mut Graph, name: &str, dims: &[usize]) -> ValueId {
    g.param(
        ParamInfo {
            regularizer: None,
            trainable: true,
            name: name.into(),
            shape: Shape::fixed(dims),
            init: Init::Zeros,
        },
        None,
    )
}

fn out(g: &mut Graph, v: ValueId) {
    let name = format!("o{}", g.outputs.len());
    g.outputs.push((name, v));
}

// ── Tests ───────────────────────────────────────────────────────────────────────────────────

#[test]
fn unary_ops_with_ragged_batch() {
    for op in UnaryOp::ALL {
        let mut g = Graph::new("unary");
        let x = g.input("x", TensorType::f32(bn(7)), None);
        // log and sqrt get positive arguments.
        let arg = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt) {
            let sq = g.binary(BinaryOp::Mul, x, x, None);
            let c = g.constant(0.25, None);
            g.binary(BinaryOp::Add, sq, c, None)
        } else {
            x
        };
        let y = g.unary(op, arg, None);
        out(&mut g, y);
        check(&g, 5, 3, 1, 1);
        check(&g, 5, 5, 1, 2);
    }
}

#[test]
fn unary_special_values() {
    let mut g = Graph::new("special");
    let x = g.input("x", TensorType::f32(bn(8)), None);
    for op in [UnaryOp::Exp, UnaryOp::Sigmoid, UnaryOp::Tanh, UnaryOp::Log] {
        let y = g.unary(op, x, None);
        out(&mut g, y);
    }
    let mut step = compile(&g, &CodegenConfig { max_batch: 1 }).unwrap();
    let xs = [-100.0, -20.0, -1e-3, 0.0, 1e-4, 0.6, 30.0, 100.0f32];
    step.input_f32_mut(0, 1).copy_from_slice(&xs);
    step.run(1);
    let o: Vec<Vec<f32>> = (0..4)
        .map(|i| step.output(&format!("o{i}"), 1).unwrap().to_vec())
        .collect();
    for (i, &x) in xs.iter().enumerate() {
        let x64 = x as f64;
        assert!(close(o[0][i], if x64 < -87.4 { 0.0 } else { x64.exp() }) || x > 88.0);
        assert!(close(o[1][i], 1.0 / (1.0 + (-x64).exp())), "sigmoid({x})");
        assert!(close(o[2][i], x64.tanh()), "tanh({x}) = {}", o[2][i]);
    }
    assert_eq!(o[0][7], f32::INFINITY);
    assert!(o[3][0].is_nan());
    assert_eq!(o[3][3], f32::NEG_INFINITY);
}

#[test]
fn binary_ops_and_broadcast_patterns() {
    let mut g = Graph::new("binary");
    let x = g.input("x", TensorType::f32(bn(6)), None);
    let c = g.input(
        "c",
        TensorType::f32(Shape(vec![Dim::Batch, Dim::Fixed(1)])),
        None,
    );
    let r = param(&mut g, "r", &[6]);
    let s = param(&mut g, "s", &[]);
    let two = g.constant(2.0, None);
    for op in BinaryOp::ALL {
        // [B,N] op [N], [N] op [B,N], [B,N] op [B,1], [B,N] op scalar
        let a = if op == BinaryOp::Pow {
            let sq = g.binary(BinaryOp::Mul, x, x, None);
            g.binary(BinaryOp::Add, sq, two, None)
        } else {
            x
        };
        for (p, q) in [(a, r), (r, a), (a, c), (a, s), (c, r)] {
            let (p, q) = if op == BinaryOp::Pow && p == r {
                (q, p)
            } else {
                (p, q)
            };
            let y = g.binary(op, p, q, None);
            out(&mut g, y);
        }
    }
    let sq = g.binary(BinaryOp::Pow, x, two, None);
    out(&mut g, sq);
    let half = g.constant(0.5, None);
    let ax = g.unary(UnaryOp::Relu, x, None);
    let rt = g.binary(BinaryOp::Pow, ax, half, None);
    out(&mut g, rt);
    let bs = g.batch_size(None);
    let d = g.binary(BinaryOp::Div, x, bs, None);
    out(&mut g, d);
    check(&g, 6, 4, 1, 3);
    check(&g, 6, 1, 1, 4);
}

#[test]
fn explicit_broadcast_and_scalar_outputs() {
    let mut g = Graph::new("bcast");
    let x = g.input("x", TensorType::f32(bn(3)), None);
    let s = param(&mut g, "s", &[]);
    let r = param(&mut g, "r", &[3]);
    let sb = g.broadcast(s, &bn(3), None);
    let rb = g.broadcast(r, &bn(3), None);
    let y = g.binary(BinaryOp::Mul, sb, x, None);
    let z = g.binary(BinaryOp::Add, y, rb, None);
    out(&mut g, z);
    out(&mut g, rb); // a stored broadcast
    let k = g.constant(4.5, None);
    out(&mut g, k); // a constant output
    let bs = g.batch_size(None);
    out(&mut g, bs);
    let e = g.unary(UnaryOp::Exp, s, None);
    let e2 = g.binary(BinaryOp::Mul, e, s, None);
    out(&mut g, e2); // a scalar chain
    check(&g, 4, 2, 1, 5);
}

#[test]
fn reductions() {
    let mut g = Graph::new("reduce");
    let x = g.input("x", TensorType::f32(bn(9)), None);
    let e = g.unary(UnaryOp::Exp, x, None);
    for kind in [ReduceKind::Sum, ReduceKind::Max, ReduceKind::Mean] {
        for (axes, keep) in [
            (vec![0], false),
            (vec![1], false),
            (vec![1], true),
            (vec![0, 1], false),
            (vec![0], true),
        ] {
            let v = if kind == ReduceKind::Sum {
                let inner = g.unary(UnaryOp::Tanh, x, None); // fused producer
                g.add(
                    Op::Reduce {
                        kind,
                        axes,
                        keep_dims: keep,
                    },
                    &[inner],
                    None,
                )
            } else {
                g.add(
                    Op::Reduce {
                        kind,
                        axes,
                        keep_dims: keep,
                    },
                    &[x],
                    None,
                )
            };
            out(&mut g, v);
        }
    }
    // A stored producer read by two reductions.
    let s0 = g.add(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![1],
            keep_dims: true,
        },
        &[e],
        None,
    );
    let d = g.binary(BinaryOp::Div, e, s0, None);
    out(&mut g, d);
    check(&g, 5, 5, 1, 6);
    check(&g, 5, 2, 1, 7);
    // Size-1 dimensions.
    let mut g = Graph::new("reduce1");
    let x = g.input("x", TensorType::f32(bn(1)), None);
    let v = g.add(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![0],
            keep_dims: false,
        },
        &[x],
        None,
    );
    out(&mut g, v);
    check(&g, 3, 1, 1, 8);
}

/// Row widths around the vector width and the 16-column blocks of column reductions.
const WIDTHS: &[usize] = &[1, 3, 4, 5, 7, 9, 10, 16, 20, 37, 64];

#[test]
fn column_and_row_reductions_at_every_width() {
    for &w in WIDTHS {
        let mut g = Graph::new("widths");
        let x = g.input("x", TensorType::f32(bn(w)), None);
        let y = g.input("y", TensorType::f32(bn(1)), None);
        let b = param(&mut g, "b", &[w]);
        // A producer with a leaf broadcast along the columns and one along the rows.
        let xy = g.binary(BinaryOp::Mul, x, y, None);
        let xyb = g.binary(BinaryOp::Add, xy, b, None);
        for kind in [ReduceKind::Sum, ReduceKind::Max, ReduceKind::Mean] {
            for axis in [0, 1] {
                let v = g.reduce(kind, xyb, &[axis], false, None);
                out(&mut g, v);
            }
        }
        // Elementwise rows (the last four again as a tail) and softmaxes.
        let e = g.unary(UnaryOp::Exp, xyb, None);
        out(&mut g, e);
        let s = g.add(Op::Softmax, &[x], None);
        out(&mut g, s);
        let l = g.add(Op::LogSoftmax, &[x], None);
        out(&mut g, l);
        check(&g, 6, 6, 1, 40 + w as u64);
        check(&g, 6, 3, 1, 80 + w as u64);
    }
}

/// A sum in the emitted loop's order: four lanes over whole vectors, the lanes folded pairwise,
/// then the remaining elements one by one.
fn vector_then_scalar_sum(xs: &[f32]) -> f32 {
    let whole = xs.len() / 4 * 4;
    let mut lanes = [0.0f32; 4];
    for chunk in xs[..whole].chunks_exact(4) {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let folded = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    xs[whole..].iter().fold(folded, |a, &v| a + v)
}

#[test]
fn reductions_add_in_the_order_of_a_scalar_loop() {
    // Column sums fold rows 0, 1, 2, ... from zero; row sums fold lane-wise vectors, then the
    // lanes, then the remaining columns one by one. Either way the same bits as a loop written
    // that way, whatever the tail.
    let (rows, mut lcg) = (7, Lcg(99));
    for &w in WIDTHS {
        let mut g = Graph::new("order");
        let x = g.input("x", TensorType::f32(bn(w)), None);
        let columns = g.reduce(ReduceKind::Sum, x, &[0], false, None);
        out(&mut g, columns);
        let row_sums = g.reduce(ReduceKind::Sum, x, &[1], false, None);
        out(&mut g, row_sums);
        let mut step = compile(&g, &CodegenConfig { max_batch: rows }).unwrap();
        // Values of mixed magnitude, so that a different order would round differently.
        let xs: Vec<f32> = (0..rows * w)
            .map(|i| lcg.uniform(-1.0, 1.0) * [1.0, 1e-3, 1e3][i % 3])
            .collect();
        step.input_f32_mut(0, rows).copy_from_slice(&xs);
        step.run(rows);
        let want_columns: Vec<f32> = (0..w)
            .map(|c| (0..rows).fold(0.0f32, |a, r| a + xs[r * w + c]))
            .collect();
        let want_rows: Vec<f32> = xs.chunks_exact(w).map(vector_then_scalar_sum).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(step.output("o0", rows).unwrap()),
            bits(&want_columns),
            "column sums, width {w}"
        );
        assert_eq!(
            bits(step.output("o1", rows).unwrap()),
            bits(&want_rows),
            "row sums, width {w}"
        );
    }
    // A length known only at run time (the batch): the overlapping tail folds its lanes by
    // comparing indices, and fewer than four elements take the scalar loop.
    let mut g = Graph::new("order_batch");
    let x = g.input("x", TensorType::f32(Shape(vec![Dim::Batch])), None);
    let total = g.reduce(ReduceKind::Sum, x, &[0], false, None);
    out(&mut g, total);
    let mut step = compile(&g, &CodegenConfig { max_batch: 11 }).unwrap();
    for batch in 1..=11 {
        let xs: Vec<f32> = (0..batch)
            .map(|i| lcg.uniform(-1.0, 1.0) * [1.0, 1e-3, 1e3][i % 3])
            .collect();
        step.input_f32_mut(0, batch).copy_from_slice(&xs);
        step.run(batch);
        let want = vector_then_scalar_sum(&xs);
        assert_eq!(
            step.output("o0", batch).unwrap()[0].to_bits(),
            want.to_bits(),
            "sum of {batch}"
        );
    }
}

/// The loss gradient `c·one_hot − e·c` has two products an `fma` could absorb; the one by the
/// one-hot is exact, so `e·c` is the one fused, rounded once with the difference (`c = −1/6`, a
/// ragged batch's `−1/B`, is not a power of two, so rounding `e·c` on its own would show).
#[cfg(target_arch = "x86_64")]
#[test]
fn the_fused_product_is_the_one_that_rounds() {
    let mut g = Graph::new("fma_choice");
    let labels = TensorType {
        dtype: DType::I32,
        shape: Shape(vec![Dim::Batch]),
    };
    let labels = g.input("labels", labels, None);
    let c = g.input("c", TensorType::f32(Shape::scalar()), None);
    let e = g.input("e", TensorType::f32(bn(3)), None);
    let one_hot = g.add(Op::OneHot { classes: 3 }, &[labels], None);
    let spread = g.broadcast(c, &bn(3), None);
    let target = g.binary(BinaryOp::Mul, spread, one_hot, None);
    let scaled = g.binary(BinaryOp::Mul, e, spread, None);
    let gradient = g.binary(BinaryOp::Sub, target, scaled, None);
    out(&mut g, gradient);
    let rows = 6;
    let mut step = compile(&g, &CodegenConfig { max_batch: rows }).unwrap();
    let mut lcg = Lcg(5);
    let label_values: Vec<i32> = (0..rows as i32).map(|r| r % 3).collect();
    let c_value = -1.0f32 / 6.0;
    let e_values: Vec<f32> = (0..rows * 3).map(|_| lcg.uniform(0.0, 1.0)).collect();
    step.input_i32_mut(0, rows).copy_from_slice(&label_values);
    step.input_f32_mut(1, rows).copy_from_slice(&[c_value]);
    step.input_f32_mut(2, rows).copy_from_slice(&e_values);
    step.run(rows);
    let fma = std::arch::is_x86_feature_detected!("fma");
    let want: Vec<u32> = e_values
        .iter()
        .enumerate()
        .map(|(i, &e)| {
            let target = if label_values[i / 3] as usize == i % 3 {
                c_value
            } else {
                0.0
            };
            let gradient = if fma {
                (-e).mul_add(c_value, target)
            } else {
                target - e * c_value
            };
            gradient.to_bits()
        })
        .collect();
    let got: Vec<u32> = step
        .output("o0", rows)
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn softmax_rows_are_stable() {
    let mut g = Graph::new("softmax");
    let x = g.input("x", TensorType::f32(bn(5)), None);
    let s = g.add(Op::Softmax, &[x], None);
    let l = g.add(Op::LogSoftmax, &[x], None);
    out(&mut g, s);
    out(&mut g, l);
    check(&g, 4, 3, 1, 9);
    let mut step = compile(&g, &CodegenConfig { max_batch: 2 }).unwrap();
    let xs = [1e4, -1e4, 0.0, 1e4, 5.0, -1e4, -1e4, -1e4, -1e4, -1e4f32];
    step.input_f32_mut(0, 2).copy_from_slice(&xs);
    step.run(2);
    let sm = step.output("o0", 2).unwrap().to_vec();
    let lsm = step.output("o1", 2).unwrap().to_vec();
    assert!(
        sm.iter().chain(&lsm).all(|v| v.is_finite()),
        "{sm:?} {lsm:?}"
    );
    assert!((sm[0] - 0.5).abs() < 1e-6 && (sm[3] - 0.5).abs() < 1e-6);
    assert!((sm[5] - 0.2).abs() < 1e-6);
    assert!((lsm[0] + std::f32::consts::LN_2).abs() < 1e-5);
    assert!((lsm[1] + 2e4 + std::f32::consts::LN_2).abs() < 1.0);
}

#[test]
fn matmul_transposes_and_epilogue() {
    let mut g = Graph::new("matmul");
    let x = g.input("x", TensorType::f32(bn(3)), None);
    let y = g.input("y", TensorType::f32(bn(4)), None);
    let w = param(&mut g, "w", &[3, 4]);
    let wt = param(&mut g, "wt", &[4, 3]);
    let b = param(&mut g, "b", &[4]);
    for (ta, tb, lhs, rhs) in [
        (false, false, x, w),
        (false, true, x, wt),
        (true, false, x, y),
        (true, true, w, wt),
    ] {
        let m = g.add(
            Op::MatMul {
                transpose_a: ta,
                transpose_b: tb,
            },
            &[lhs, rhs],
            None,
        );
        out(&mut g, m);
    }
    // x @ w + b, relu: the matmul's epilogue.
    let m = g.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        },
        &[x, w],
        None,
    );
    let z = g.binary(BinaryOp::Add, m, b, None);
    let h = g.unary(UnaryOp::Relu, z, None);
    out(&mut g, h);
    let text = schedule_text(&g).unwrap();
    assert!(text.contains("matmul+epilogue"), "{text}");
    for policy in [MatmulPolicy::Gemm, MatmulPolicy::Cranelift] {
        check_with(&g, policy, 6, 6, 1, 10);
        check_with(&g, policy, 6, 1, 1, 11);
    }
}

/// The emitted matmul kernel at odd shapes (tile edges in every direction), every transpose
/// combination, with fixed shapes and with the batch as `m` (or as `k` for a transposed A).
#[test]
fn cranelift_matmul_odd_shapes() {
    let sizes = [1, 3, 5, 17, 33];
    let mut rng = Lcg(3);
    for &m in &sizes {
        // 45 and 70 columns: the one-row tile's blocks of 32, then 8, 4 and single columns.
        for &n in sizes.iter().chain(&[45, 70]) {
            for &k in &sizes {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    let mut g = Graph::new("mm");
                    let a_dims = if ta { [k, m] } else { [m, k] };
                    let b_dims = if tb { [n, k] } else { [k, n] };
                    let a = param(&mut g, "a", &a_dims);
                    let b = param(&mut g, "b", &b_dims);
                    let c = g.add(
                        Op::MatMul {
                            transpose_a: ta,
                            transpose_b: tb,
                        },
                        &[a, b],
                        None,
                    );
                    out(&mut g, c);
                    let cfg = CodegenConfig { max_batch: 1 };
                    let mut step = compile_with(&g, &cfg, MatmulPolicy::Cranelift).unwrap();
                    let av: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
                    let bv: Vec<f32> = (0..k * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
                    step.param_mut(0).copy_from_slice(&av);
                    step.param_mut(1).copy_from_slice(&bv);
                    step.run(1);
                    let at = |i: usize, p: usize| av[if ta { p * m + i } else { i * k + p }];
                    let bt = |p: usize, j: usize| bv[if tb { j * k + p } else { p * n + j }];
                    let want: Vec<f64> = (0..m * n)
                        .map(|ij| {
                            let (i, j) = (ij / n, ij % n);
                            (0..k).map(|p| at(i, p) as f64 * bt(p, j) as f64).sum()
                        })
                        .collect();
                    let what = format!("{m}x{n}x{k} ta={ta} tb={tb}");
                    assert_close(&what, step.output("o0", 1).unwrap(), &want);
                }
            }
        }
    }
    // Batch-sized m and k, ragged batches, all four transposes.
    for (m, n) in [(3, 17), (33, 5)] {
        let mut g = Graph::new("mmb");
        let x = g.input("x", TensorType::f32(bn(m)), None);
        let y = g.input("y", TensorType::f32(bn(n)), None);
        let w = param(&mut g, "w", &[m, n]);
        let wt = param(&mut g, "wt", &[n, m]);
        for (ta, tb, lhs, rhs) in [
            (false, false, x, w),
            (false, true, x, wt),
            (true, false, x, y),
            (true, true, w, wt),
        ] {
            let c = g.add(
                Op::MatMul {
                    transpose_a: ta,
                    transpose_b: tb,
                },
                &[lhs, rhs],
                None,
            );
            out(&mut g, c);
        }
        for batch in [1, 5, 17, 33] {
            check_with(&g, MatmulPolicy::Cranelift, 33, batch, 1, batch as u64);
        }
    }
}

/// Which products the memory plan sends to the emitted kernel by default: only tiny ones.
#[test]
fn tiny_products_are_emitted_larger_ones_call_gemm() {
    let auto = |g: &Graph, max_batch| {
        let (_, plan) = prepare(g, &CodegenConfig { max_batch }, MatmulPolicy::Auto).unwrap();
        plan.emitted_matmuls.len()
    };
    let (g, batch) = product_graph(4, 10, 4, false, false);
    assert_eq!(auto(&g, batch), 1);
    let (g, batch) = product_graph(32, 64, 32, false, false);
    assert_eq!(auto(&g, batch), 0);
    let (_, plan) = prepare(
        &mlp_adam(32, &[64, 64], 10),
        &CodegenConfig { max_batch: 32 },
        MatmulPolicy::Cranelift,
    )
    .unwrap();
    assert!(plan.emitted_matmuls.len() >= 5 && plan.scratch.is_some());
}

/// The training step of a `din → hidden (relu) → classes (softmax)` classifier under sparse
/// cross-entropy and Adam, built by the real pipeline (lower, autodiff, optimizer).
fn mlp_adam(din: usize, hidden: &[usize], classes: usize) -> Graph {
    mlp(
        din,
        hidden,
        classes,
        crate::settings::optimizer::with_lr(&crate::settings::optimizer::ADAM, 0.01),
    )
}

/// `mlp_adam` with another optimizer.
fn mlp(
    din: usize,
    hidden: &[usize],
    classes: usize,
    optimizer: crate::settings::Optimizer,
) -> Graph {
    use crate::driver::{self, GraphStage};
    use crate::program::{CheckedProgram, Fit};
    use crate::settings::{Activation, Loss};
    let widths: Vec<usize> = std::iter::once(din)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(classes))
        .collect();
    let mut activations = vec![Activation::Relu; hidden.len()];
    activations.push(Activation::Softmax);
    let fit = Fit {
        span: crate::diag::Span::default(),
        model: 0,
        data: 0,
        loss: Loss::SparseCategoricalCrossentropy,
        loss_options: Default::default(),
        optimizer,
        metrics: vec![],
        epochs: 1,
        batch: 8,
        seed: 0,
        shuffle: true,
        validation: None,
        training: Default::default(),
    };
    let program = CheckedProgram {
        data: vec![],
        models: vec![crate::check::dense_stack("mlp", &widths, &activations)],
        fits: vec![fit.clone()],
        actions: vec![],
    };
    driver::training_graph(&program, &fit, GraphStage::Step).expect("a valid training graph")
}

#[test]
fn mlp_adam_training_steps() {
    let g = mlp_adam(6, &[8], 5);
    check(&g, 7, 7, 3, 12);
    check(&g, 7, 3, 2, 13);
    check(&g, 7, 1, 1, 14);
}

#[test]
fn adam_update_collapses_into_one_loop() {
    let g = mlp_adam(32, &[64, 64], 10);
    let text = schedule_text(&g).unwrap();
    let loops = text
        .lines()
        .filter(|l| l.starts_with("update loop"))
        .count();
    assert_eq!(loops, 1, "{text}");
    let total: usize = g.params.iter().map(|p| p.shape.numel(1)).sum();
    assert!(text.contains(&format!("loop [{total}]")), "{text}");
    check(&g, 32, 32, 2, 15);
}

/// Deterministic parameters, optimizer state and inputs, then `steps` steps of `batch`.
fn run_filled(step: &mut CompiledStep, g: &Graph, batch: usize, steps: usize) {
    for i in 0..g.params.len() {
        let len = step.param(i).len();
        let values: Vec<f32> = (0..len)
            .map(|j| ((j * 31 + i) % 17) as f32 / 17.0 - 0.5)
            .collect();
        step.param_mut(i).copy_from_slice(&values);
    }
    for i in 0..g.states.len() {
        for (j, x) in step.state_mut(i).iter_mut().enumerate() {
            *x = ((j * 7 + i) % 11) as f32 / 110.0;
        }
    }
    for (index, input) in g.inputs.iter().enumerate() {
        if input.ty.dtype == DType::I32 {
            for (j, label) in step.input_i32_mut(index, batch).iter_mut().enumerate() {
                *label = (j % 3) as i32;
            }
        } else if input.ty.shape.rank() == 0 {
            step.input_f32_mut(index, batch)[0] = if input.name == "lr" { 0.01 } else { 1.0 };
        } else {
            for (j, x) in step.input_f32_mut(index, batch).iter_mut().enumerate() {
                *x = ((j * 13) % 7) as f32 / 7.0 - 0.25;
            }
        }
    }
    for _ in 0..steps {
        step.run(batch);
    }
}

/// The native Adam update (256-bit, split over threads for large models) gives the bits of the
/// emitted Cranelift loop, in Keras's and PyTorch's forms, with ragged tails, on 1 and 2 threads.
#[test]
fn native_adam_update_matches_the_emitted_loop_bit_for_bit() {
    use crate::settings::Optimizer;
    use crate::settings::optimizer::{ADAM, ArgValue};
    let lr = ("lr", ArgValue::Number(0.01));
    let keras = Optimizer::new(&ADAM, &[lr]);
    let torch = Optimizer::new(&ADAM, &[lr, ("profile", ArgValue::Choice("torch"))]);
    let config = CodegenConfig { max_batch: 8 };
    // 95 parameters (an odd tail), and 39,818 (above `adam::PARALLEL_MIN_PARAMS`).
    for (din, hidden) in [(6, 8), (300, 128)] {
        for optimizer in [&keras, &torch] {
            let g = mlp(din, &[hidden], 10, optimizer.clone());
            let clif = clif_text(&g, &config).unwrap();
            assert_eq!(
                clif.contains("call fn3("),
                super::adam::available(),
                "the native update is called where the host runs it"
            );
            let mut emitted = compile_emitted_update(&g, &config).unwrap();
            run_filled(&mut emitted, &g, 8, 3);
            for threads in [1, 2] {
                let mut native = compile(&g, &config).unwrap();
                native.set_threads(threads);
                run_filled(&mut native, &g, 8, 3);
                for i in 0..g.params.len() {
                    assert_eq!(native.param(i), emitted.param(i), "parameter {i}");
                }
                for i in 0..g.states.len() {
                    assert_eq!(native.state(i), emitted.state(i), "state {i}");
                }
            }
        }
    }
}

/// The profiled step computes exactly what the ordinary one does (the timer calls touch no
/// buffer), times one site per kernel and update loop, and only it has timers.
#[test]
fn profiled_step_is_bit_identical_and_times_every_kernel() {
    let g = mlp_adam(32, &[64, 64], 10);
    let config = CodegenConfig { max_batch: 16 };
    let mut plain = compile(&g, &config).unwrap();
    let mut profiled = compile_profiled(&g, &config).unwrap();
    assert!(plain.kernel_times().is_none());
    for step in [&mut plain, &mut profiled] {
        run_filled(step, &g, 16, 3);
    }
    for i in 0..g.params.len() {
        assert_eq!(plain.param(i), profiled.param(i), "parameter {i}");
    }
    for i in 0..g.states.len() {
        assert_eq!(plain.state(i), profiled.state(i), "state {i}");
    }
    let (sites, totals, runs) = profiled.kernel_times().unwrap();
    assert_eq!(runs, 3);
    assert_eq!(sites.len(), totals.len());
    let text = schedule_text(&g).unwrap();
    // Kernels that emit code (not the per-parameter update groups), then the update loops.
    let kernels = text
        .lines()
        .filter(|l| !(l.starts_with('k') && l.contains(": update ")))
        .count();
    assert_eq!(
        sites.len(),
        kernels,
        "one site per kernel and loop:\n{text}"
    );
    assert!(totals.iter().any(|t| !t.is_zero()));
    for phase in [Phase::Forward, Phase::Backward, Phase::Update] {
        assert!(
            sites.iter().any(|s| s.phase == phase),
            "{phase:?}: {sites:?}"
        );
    }
    assert_eq!(sites.last().unwrap().phase, Phase::Update);
    // The update loop the native Adam update replaces is labelled as such.
    assert_eq!(
        sites.last().unwrap().label.contains("native 256-bit code"),
        super::adam::available(),
        "{sites:?}"
    );
    profiled.reset_kernel_times();
    let (_, totals, runs) = profiled.kernel_times().unwrap();
    assert_eq!(runs, 0);
    assert!(totals.iter().all(|t| t.is_zero()));
}

#[test]
fn clif_text_is_stable() {
    let g = mlp_adam(4, &[3], 2);
    let cfg = CodegenConfig { max_batch: 8 };
    let a = clif_text(&g, &cfg).unwrap();
    let b = clif_text(&g, &cfg).unwrap();
    assert_eq!(a, b);
    assert!(a.contains("f32x4") && a.contains("call"), "{a}");
}

#[test]
fn unsupported_graphs_are_errors() {
    let mut g = Graph::new("bad");
    let x = g.input("x", TensorType::f32(bn(2)), None);
    out(&mut g, x);
    let e = compile(&g, &CodegenConfig { max_batch: 0 });
    assert!(e.is_err());
    let mut g = Graph::new("bad2");
    let p = param(&mut g, "p", &[2]);
    let two = g.constant(2.0, None);
    let v = g.binary(BinaryOp::Mul, p, two, None);
    g.updates.push(Update {
        target: Slot::Param(0),
        value: v,
    });
    g.updates.push(Update {
        target: Slot::Param(0),
        value: p,
    });
    let e = compile(&g, &CodegenConfig { max_batch: 1 }).err().unwrap();
    assert!(e.message.contains("twice"), "{e}");
}

/// One product `op(a) @ op(b)` shaped like those of a dense layer's training step at batch `m`
/// (or `k` for a transposed A): the operand with a batch dimension is an input.
fn product_graph(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> (Graph, usize) {
    let mut g = Graph::new("product");
    let (a, b, batch) = match (ta, tb) {
        (false, false) => {
            let a = g.input("a", TensorType::f32(bn(k)), None);
            (a, param(&mut g, "b", &[k, n]), m)
        }
        (false, true) => {
            let a = g.input("a", TensorType::f32(bn(k)), None);
            (a, param(&mut g, "b", &[n, k]), m)
        }
        (true, false) => {
            let a = g.input("a", TensorType::f32(bn(m)), None);
            let b = g.input("b", TensorType::f32(bn(n)), None);
            (a, b, k)
        }
        (true, true) => (param(&mut g, "a", &[k, m]), param(&mut g, "b", &[n, k]), 1),
    };
    let c = g.add(
        Op::MatMul {
            transpose_a: ta,
            transpose_b: tb,
        },
        &[a, b],
        None,
    );
    out(&mut g, c);
    (g, batch)
}

fn seconds_per_run(step: &mut CompiledStep, batch: usize, reps: usize) -> f64 {
    let t = std::time::Instant::now();
    for _ in 0..reps {
        step.run(batch);
    }
    t.elapsed().as_secs_f64() / reps as f64
}

/// The measurement behind `CRANELIFT_MAX_FLOPS`: each product of the seed and mnist training
/// steps through gemm and through the emitted kernel, interleaved, best of several rounds; then
/// whole steps. `cargo test --release --lib matmul_crossover -- --ignored --nocapture`.
#[test]
#[ignore]
fn matmul_crossover() {
    #[rustfmt::skip]
    let shapes = [
        (32, 64, 32, false, false), (32, 64, 64, false, false), (32, 10, 64, false, false),
        (32, 64, 64, false, true), (32, 64, 10, false, true),
        (32, 64, 32, true, false), (64, 64, 32, true, false), (64, 10, 32, true, false),
        (64, 256, 784, false, false), (64, 256, 256, false, false), (64, 10, 256, false, false),
        (64, 256, 256, false, true), (64, 256, 10, false, true),
        (784, 256, 64, true, false), (256, 256, 64, true, false), (256, 10, 64, true, false),
        (128, 128, 128, false, false), (64, 128, 128, false, false), (64, 64, 128, false, false),
        (7, 64, 32, false, false), (7, 10, 64, false, false), (7, 64, 64, false, true),
        (8, 8, 8, false, false), (16, 16, 16, false, false), (4, 10, 4, false, false),
    ];
    let policies = [MatmulPolicy::Gemm, MatmulPolicy::Cranelift];
    let mut steps: Vec<Vec<(CompiledStep, usize)>> = Vec::new();
    for &(m, n, k, ta, tb) in &shapes {
        let (g, batch) = product_graph(m, n, k, ta, tb);
        let cfg = CodegenConfig { max_batch: batch };
        steps.push(
            policies
                .iter()
                .map(|&p| (compile_with(&g, &cfg, p).unwrap(), batch))
                .collect(),
        );
    }
    let mut best = vec![[f64::MAX; 2]; shapes.len()];
    for _ in 0..15 {
        for (s, &(m, n, k, ..)) in shapes.iter().enumerate() {
            let reps = (2_000_000 / (m * n * k)).clamp(3, 2000);
            for p in 0..2 {
                let (step, batch) = &mut steps[s][p];
                let t = seconds_per_run(step, *batch, reps);
                best[s][p] = best[s][p].min(t);
            }
        }
    }
    println!("shape (m×n×k)      flops   gemm GFLOP/s  cranelift GFLOP/s  cranelift/gemm");
    for (s, &(m, n, k, ta, tb)) in shapes.iter().enumerate() {
        let f = 2.0 * (m * n * k) as f64;
        let name = format!(
            "{m}{}×{n}{}×{k}",
            if ta { "ᵀ" } else { "" },
            if tb { "ᵀ" } else { "" }
        );
        println!(
            "{name:<18} {:>8} {:>10.1} {:>14.1} {:>14.2}",
            m * n * k,
            f / best[s][0] / 1e9,
            f / best[s][1] / 1e9,
            best[s][0] / best[s][1]
        );
    }

    // Whole training steps, from source.
    for (widths, batch) in [([32, 64, 64, 10], 32), ([784, 256, 256, 10], 64)] {
        let src = format!(
            "data d = synthetic_classification(samples: 100, features: {}, classes: 10)\n\
             model m(x: f32[B, {}]) -> f32[B, 10] {{\n    dense({}, relu)\n    dense({}, relu)\n    \
             dense(10, softmax)\n}}\nfit m on d {{\n    loss sparse_categorical_crossentropy\n    \
             optimizer adam\n    batch {batch}\n}}\n",
            widths[0], widths[0], widths[1], widths[2]
        );
        let checked = crate::driver::check_source(&src).unwrap();
        let fit = &checked.program.fits[0];
        let g =
            crate::driver::training_graph(&checked.program, fit, crate::driver::GraphStage::Step)
                .unwrap();
        let cfg = CodegenConfig { max_batch: batch };
        let pols = [
            MatmulPolicy::Gemm,
            MatmulPolicy::Auto,
            MatmulPolicy::Cranelift,
        ];
        let mut compiled: Vec<CompiledStep> = pols
            .iter()
            .map(|&p| {
                let mut s = compile_with(&g, &cfg, p).unwrap();
                for (i, v) in crate::runtime::init::initial_params(&g, 0)
                    .iter()
                    .enumerate()
                {
                    s.param_mut(i).copy_from_slice(v);
                }
                if let Some(i) = g.inputs.iter().position(|i| i.name == "step") {
                    s.input_f32_mut(i, batch)[0] = 1.0;
                }
                s
            })
            .collect();
        let mut best = [f64::MAX; 3];
        let reps = if batch == 32 { 2000 } else { 50 };
        for _ in 0..15 {
            for (p, s) in compiled.iter_mut().enumerate() {
                best[p] = best[p].min(seconds_per_run(s, batch, reps));
            }
        }
        println!(
            "step {widths:?} batch {batch}: gemm {:.2} µs, auto {:.2} µs, cranelift {:.2} µs; \
             gemm/auto {:.2}",
            best[0] * 1e6,
            best[1] * 1e6,
            best[2] * 1e6,
            best[0] / best[1]
        );
    }
}

#[test]
fn reshapes_share_their_input_buffer_except_for_parameters() {
    let mut g = Graph::new("alias");
    let x = g.input("x", TensorType::f32(bn(16)), None);
    let image = g.reshape(
        x,
        &Shape(vec![Dim::Batch, Dim::Fixed(4), Dim::Fixed(4)]),
        None,
    );
    let t = g.unary(UnaryOp::Tanh, image, None);
    let flat = g.reshape(t, &bn(16), None);
    let p = param(&mut g, "p", &[16]);
    let p2 = g.reshape(p, &Shape::fixed(&[4, 4]), None);
    let y = g.binary(BinaryOp::Mul, flat, p, None);
    let z = g.binary(BinaryOp::Mul, t, p2, None);
    out(&mut g, y);
    out(&mut g, z);
    let (_, plan) = prepare(&g, &CodegenConfig { max_batch: 4 }, MatmulPolicy::Auto).unwrap();
    assert_eq!(plan.home[&image], plan.home[&x]);
    assert_eq!(plan.home[&flat], plan.home[&t]);
    assert_ne!(plan.home[&p2], plan.home[&p]);
}

/// The JIT's erf and gelu on a fine grid against the f64 definitions: the rational erf is
/// within 4e-7 absolute (its own error is 6.5e-8; the rest is f32 evaluation).
#[test]
fn erf_and_gelu_precision() {
    let n = 4001;
    let mut g = Graph::new("erf");
    let x = g.input("x", TensorType::f32(Shape::fixed(&[n])), None);
    let e = g.unary(UnaryOp::Erf, x, None);
    let ge = g.unary(UnaryOp::Gelu, x, None);
    out(&mut g, e);
    out(&mut g, ge);
    let mut step = compile(&g, &CodegenConfig { max_batch: 1 }).unwrap();
    let xs: Vec<f32> = (0..n).map(|i| (i as f32 - 2000.0) / 250.0).collect();
    step.input_f32_mut(0, 1).copy_from_slice(&xs);
    step.run(1);
    let (erf, gelu) = (step.output("o0", 1).unwrap(), step.output("o1", 1).unwrap());
    for (i, &x) in xs.iter().enumerate() {
        let x = f64::from(x);
        let want = crate::interp::unary(UnaryOp::Erf, x);
        assert!(
            (f64::from(erf[i]) - want).abs() < 4e-7,
            "erf({x}) = {}",
            erf[i]
        );
        let want = crate::interp::unary(UnaryOp::Gelu, x);
        let tolerance = 4e-7 * x.abs().max(1.0);
        assert!(
            (f64::from(gelu[i]) - want).abs() < tolerance,
            "gelu({x}) = {}",
            gelu[i]
        );
    }
}
