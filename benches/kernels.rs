//! Kiln's memory-bound kernels alone (`cargo bench --bench kernels`), each as a compiled step of
//! a graph that holds only that kernel, next to a plain Rust loop doing the same arithmetic in
//! the same run (built with the bench profile, i.e. `opt-level = 3`, auto-vectorized for the
//! baseline x86-64 target: 128-bit SSE, like Kiln's `f32x4` loops). Throughput is in bytes
//! (criterion's `Throughput::Bytes`, shown as GiB/s): the bytes each kernel must read and write
//! at least once, counted the same way for both. Read the ratio between the two rows of a
//! group, not the absolute figures (the machine is shared).
//!
//! - `elementwise`: `y = relu(x·1.5 + b) − 0.5·x` over f32[B, N] (x read, y written).
//! - `softmax_ce`: logits `z = x + b` over f32[B, C] with integer labels, the mean
//!   sparse-categorical cross-entropy and its gradient with respect to `b` (Σ over the batch of
//!   `softmax(z) − onehot`, / B): forward and backward as the training step runs them.
//! - `adam`: Keras's Adam update over every parameter, gradient and moment of a model, as one
//!   flat loop (p, g, m, v read; p, m, v written).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kiln::codegen::{self, CodegenConfig, CompiledStep};
use kiln::ir::graph::{Gradient, Graph, Init, ParamInfo, ValueId};
use kiln::ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use kiln::ir::shape::{DType, Dim, Shape, TensorType};
use kiln::ir::{autodiff, optimizer, passes};
use kiln::settings::Optimizer;
use kiln::settings::optimizer::ArgValue;

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i + seed) * 7919) % 997) as f32 / 997.0 - 0.5)
        .collect()
}

fn batch_shape(dims: &[usize]) -> Shape {
    let mut d = vec![Dim::Batch];
    d.extend(dims.iter().map(|&n| Dim::Fixed(n)));
    Shape(d)
}

/// The graph after the optimization passes (as a training step is compiled), compiled.
fn compile(graph: &Graph, max_batch: usize) -> (Graph, CompiledStep) {
    let graph = passes::optimize(graph).unwrap();
    let step = codegen::compile(&graph, &CodegenConfig { max_batch }).unwrap();
    (graph, step)
}

/// Copies `values` into the f32 input called `name`.
fn fill(graph: &Graph, step: &mut CompiledStep, name: &str, batch: usize, values: &[f32]) {
    let index = graph.inputs.iter().position(|i| i.name == name).unwrap();
    step.input_f32_mut(index, batch).copy_from_slice(values);
}

// ── Elementwise chain ─────────────────────────────────────────────────────────────────────

fn elementwise(c: &mut Criterion) {
    let mut group = c.benchmark_group("elementwise");
    for (batch, n) in [(32, 64), (256, 1024)] {
        let mut g = Graph::new("elementwise");
        let x = g.input("x", TensorType::f32(batch_shape(&[n])), None);
        let b = g.input("b", TensorType::f32(Shape::fixed(&[n])), None);
        let scale = g.constant(1.5, None);
        let half = g.constant(0.5, None);
        let scaled = g.binary(BinaryOp::Mul, x, scale, None);
        let shifted = g.binary(BinaryOp::Add, scaled, b, None);
        let relu = g.unary(UnaryOp::Relu, shifted, None);
        let damped = g.binary(BinaryOp::Mul, x, half, None);
        let y = g.binary(BinaryOp::Sub, relu, damped, None);
        g.outputs.push(("y".into(), y));
        let (graph, mut step) = compile(&g, batch);
        let (xs, bs) = (values(batch * n, 1), values(n, 2));
        fill(&graph, &mut step, "x", batch, &xs);
        fill(&graph, &mut step, "b", batch, &bs);
        step.run(batch);
        let mut ys = vec![0.0f32; batch * n];
        rust_elementwise(&xs, &bs, &mut ys);
        for (a, b) in step.output("y", batch).unwrap().iter().zip(&ys) {
            // Kiln fuses x·1.5 + b into one FMA: the last bit may differ.
            assert!((a - b).abs() <= 1e-6, "same arithmetic: {a} vs {b}");
        }

        let shape = format!("{batch}x{n}");
        group.throughput(Throughput::Bytes((2 * 4 * batch * n) as u64));
        group.bench_function(BenchmarkId::new("kiln", &shape), |bench| {
            bench.iter(|| step.run(batch))
        });
        group.bench_function(BenchmarkId::new("rust_loop", &shape), |bench| {
            bench.iter(|| rust_elementwise(&xs, &bs, std::hint::black_box(&mut ys)))
        });
    }
    group.finish();
}

fn rust_elementwise(x: &[f32], b: &[f32], y: &mut [f32]) {
    for (xr, yr) in x.chunks_exact(b.len()).zip(y.chunks_exact_mut(b.len())) {
        for ((&x, &b), y) in xr.iter().zip(b).zip(yr) {
            *y = (x * 1.5 + b).max(0.0) - x * 0.5;
        }
    }
}

// ── Softmax with cross-entropy, forward and backward ──────────────────────────────────────

fn softmax_ce(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax_ce");
    for (batch, classes) in [(32, 10), (256, 1024)] {
        let mut g = Graph::new("softmax_ce");
        let x = g.input("x", TensorType::f32(batch_shape(&[classes])), None);
        let labels = g.input(
            "labels",
            TensorType {
                dtype: DType::I32,
                shape: batch_shape(&[]),
            },
            None,
        );
        let b = g.param(
            ParamInfo {
                regularizer: None,
                trainable: true,
                name: "b".into(),
                shape: Shape::fixed(&[classes]),
                init: Init::Zeros,
            },
            None,
        );
        let logits = g.binary(BinaryOp::Add, x, b, None);
        let log_probs = g.add(Op::LogSoftmax, &[logits], None);
        let one_hot = g.add(Op::OneHot { classes }, &[labels], None);
        let picked = g.binary(BinaryOp::Mul, one_hot, log_probs, None);
        let total = g.reduce(ReduceKind::Sum, picked, &[0, 1], false, None);
        let negated = g.unary(UnaryOp::Neg, total, None);
        let rows = g.batch_size(None);
        let loss = g.binary(BinaryOp::Div, negated, rows, None);
        g.outputs.push(("loss".into(), loss));
        autodiff::differentiate(&mut g, loss);
        let (graph, mut step) = compile(&g, batch);
        let xs = values(batch * classes, 3);
        let ls: Vec<i32> = (0..batch).map(|i| ((i * 7) % classes) as i32).collect();
        let bs = values(classes, 4);
        fill(&graph, &mut step, "x", batch, &xs);
        let slot = graph
            .inputs
            .iter()
            .position(|i| i.name == "labels")
            .unwrap();
        step.input_i32_mut(slot, batch).copy_from_slice(&ls);
        step.param_mut(0).copy_from_slice(&bs);
        step.run(batch);
        let mut grad = vec![0.0f32; classes];
        let mut scratch = vec![0.0f32; classes];
        let loss_rust = rust_softmax_ce(&xs, &ls, &bs, &mut scratch, &mut grad);
        let loss_kiln = step.output("loss", batch).unwrap()[0];
        assert!((loss_kiln - loss_rust).abs() < 1e-4 * loss_rust.abs().max(1.0));
        for (a, b) in step.gradient(0).iter().zip(&grad) {
            assert!((a - b).abs() < 1e-5, "gradient {a} vs {b}");
        }

        let shape = format!("{batch}x{classes}");
        // Logits read once, labels read, the bias and its gradient once each.
        group.throughput(Throughput::Bytes(
            (4 * (batch * classes + batch + 2 * classes)) as u64,
        ));
        group.bench_function(BenchmarkId::new("kiln", &shape), |bench| {
            bench.iter(|| step.run(batch))
        });
        group.bench_function(BenchmarkId::new("rust_loop", &shape), |bench| {
            bench.iter(|| {
                rust_softmax_ce(&xs, &ls, &bs, &mut scratch, std::hint::black_box(&mut grad))
            })
        });
    }
    group.finish();
}

/// The mean cross-entropy of `softmax(x + b)` against `labels`, and its gradient with respect
/// to `b`, in two passes over each row (max, then exp and sum) plus one to write the gradient.
fn rust_softmax_ce(x: &[f32], labels: &[i32], b: &[f32], z: &mut [f32], grad: &mut [f32]) -> f32 {
    let classes = b.len();
    let rows = labels.len() as f32;
    grad.fill(0.0);
    let mut loss = 0.0f32;
    for (row, &label) in x.chunks_exact(classes).zip(labels) {
        let mut max = f32::NEG_INFINITY;
        for ((z, &x), &b) in z.iter_mut().zip(row).zip(b) {
            *z = x + b;
            max = max.max(*z);
        }
        let mut sum = 0.0f32;
        for z in z.iter_mut() {
            *z = (*z - max).exp();
            sum += *z;
        }
        let label = label as usize;
        loss -= (z[label] / sum).ln();
        let inv = 1.0 / (sum * rows);
        for (g, &e) in grad.iter_mut().zip(z.iter()) {
            *g += e * inv;
        }
        grad[label] -= 1.0 / rows;
    }
    loss / rows
}

// ── Adam over the flat parameter buffer ───────────────────────────────────────────────────

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-7;
const LR: f32 = 1e-3;

/// The parameters of a dense network of `widths`: each layer's kernel and bias.
fn dense_params(widths: &[usize]) -> Vec<Vec<usize>> {
    widths
        .windows(2)
        .flat_map(|w| [vec![w[0], w[1]], vec![w[1]]])
        .collect()
}

fn adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam");
    for (name, widths) in [
        ("seed", vec![32, 64, 64, 10]),
        ("wide", vec![1024, 1024, 1024, 10]),
    ] {
        let shapes = dense_params(&widths);
        let mut g = Graph::new("adam");
        let mut grads: Vec<ValueId> = Vec::new();
        for (i, dims) in shapes.iter().enumerate() {
            g.param(
                ParamInfo {
                    regularizer: None,
                    trainable: true,
                    name: format!("p{i}"),
                    shape: Shape::fixed(dims),
                    init: Init::Zeros,
                },
                None,
            );
            grads.push(g.input(&format!("g{i}"), TensorType::f32(Shape::fixed(dims)), None));
        }
        for (param, &value) in grads.iter().enumerate() {
            g.gradients.push(Gradient { param, value });
        }
        optimizer::append_update(
            &mut g,
            &Optimizer::new(
                &kiln::settings::optimizer::ADAM,
                &[
                    ("lr", ArgValue::Number(f64::from(LR))),
                    ("beta1", ArgValue::Number(f64::from(BETA1))),
                    ("beta2", ArgValue::Number(f64::from(BETA2))),
                    ("eps", ArgValue::Number(f64::from(EPS))),
                ],
            ),
            None,
        );
        let (graph, mut step) = compile(&g, 1);
        let total: usize = shapes.iter().map(|d| d.iter().product::<usize>()).sum();
        let (mut p, gr) = (values(total, 5), values(total, 6));
        let (mut m, mut v) = (vec![0.0f32; total], vec![0.0f32; total]);
        let mut offset = 0;
        for (i, dims) in shapes.iter().enumerate() {
            let len: usize = dims.iter().product();
            step.param_mut(i).copy_from_slice(&p[offset..offset + len]);
            fill(
                &graph,
                &mut step,
                &format!("g{i}"),
                1,
                &gr[offset..offset + len],
            );
            offset += len;
        }
        fill(&graph, &mut step, optimizer::STEP, 1, &[1.0]);
        fill(&graph, &mut step, optimizer::LR, 1, &[LR]);
        step.run(1);
        rust_adam(&mut p, &gr, &mut m, &mut v, 1);
        let mut offset = 0;
        for (i, dims) in shapes.iter().enumerate() {
            let len: usize = dims.iter().product();
            for (a, b) in step.param(i).iter().zip(&p[offset..offset + len]) {
                assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "p{i}: {a} vs {b}");
            }
            offset += len;
        }

        let label = format!("{name}_{total}_params");
        // p, g, m, v read; p, m, v written.
        group.throughput(Throughput::Bytes((7 * 4 * total) as u64));
        group.bench_function(BenchmarkId::new("kiln", &label), |bench| {
            bench.iter(|| step.run(1))
        });
        group.bench_function(BenchmarkId::new("rust_loop", &label), |bench| {
            bench.iter(|| rust_adam(std::hint::black_box(&mut p), &gr, &mut m, &mut v, 1))
        });
    }
    group.finish();
}

/// Keras's Adam step `t` over flat buffers, with Kiln's arithmetic order.
fn rust_adam(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], t: i32) {
    let alpha = LR * (1.0 - BETA2.powi(t)).sqrt() / (1.0 - BETA1.powi(t));
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += (g - *m) * (1.0 - BETA1);
        *v += (g * g - *v) * (1.0 - BETA2);
        *p -= *m * alpha / (v.sqrt() + EPS);
    }
}

criterion_group! {
    name = kernels;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20);
    targets = elementwise, softmax_ce, adam
}
criterion_main!(kernels);
