//! Micro-benchmarks of compiled training steps (`cargo bench --bench step`): one JIT'd step of
//! the seed model (32 → 64 → 64 → 10, Adam, batch 32) and of the `mnist` workload's MLP
//! (784 → 256 → 256 → 10, batch 64), reported per step and as GFLOP/s of the 6·B·Σ(in·out)
//! multiply-adds a training step performs (the peers' definition; peak on one Zen 4 core with
//! 256-bit FMA is ~117 GFLOP/s). The `wide` workload's step (1024 → 1024 → 1024 → 10, batch 256)
//! runs with one thread and with two. Also the time to compile the seed step from source.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln::codegen::{self, CodegenConfig, CompiledStep, MatmulPolicy};
use kiln::driver::{self, GraphStage};
use kiln::ir::optimizer;
use kiln::ir::shape::DType;
use kiln::runtime::init;

fn program(widths: &[usize], batch: usize) -> String {
    let hidden: String = widths[1..widths.len() - 1]
        .iter()
        .map(|w| format!("    dense({w}, relu)\n"))
        .collect();
    let (n, m) = (widths[0], widths[widths.len() - 1]);
    format!(
        "data d = synthetic_classification(samples: 1000, features: {n}, classes: {m})\n\
         model m(x: f32[B, {n}]) -> f32[B, {m}] {{\n{hidden}    dense({m}, softmax)\n}}\n\
         fit m on d {{\n    loss sparse_categorical_crossentropy\n    optimizer adam\n    batch {batch}\n}}\n"
    )
}

fn compiled(source: &str) -> (CompiledStep, usize) {
    compiled_with(source, MatmulPolicy::Auto)
}

fn compiled_with(source: &str, policy: MatmulPolicy) -> (CompiledStep, usize) {
    let checked = driver::check_source(source).unwrap();
    let fit = &checked.program.fits[0];
    let graph = driver::training_graph(&checked.program, fit, GraphStage::Step).unwrap();
    let mut step = codegen::compile_with(
        &graph,
        &CodegenConfig {
            max_batch: fit.batch,
        },
        policy,
    )
    .unwrap();
    for (i, values) in init::initial_params(&graph, 0).iter().enumerate() {
        step.param_mut(i).copy_from_slice(values);
    }
    for (index, input) in graph.inputs.iter().enumerate() {
        // The optimizer's step counter and learning rate are scalar inputs the runtime sets
        // every step; filled like the features they made Adam's update NaN from the first step
        // on, and every later step ran on NaNs.
        if input.name == optimizer::STEP {
            step.input_f32_mut(index, fit.batch)[0] = 1.0;
        } else if input.name == optimizer::LR {
            step.input_f32_mut(index, fit.batch)[0] = 0.001;
        } else if input.ty.dtype == DType::I32 {
            for (i, label) in step.input_i32_mut(index, fit.batch).iter_mut().enumerate() {
                *label = (i % 10) as i32;
            }
        } else {
            for (i, x) in step.input_f32_mut(index, fit.batch).iter_mut().enumerate() {
                *x = ((i * 7919) % 997) as f32 / 997.0 - 0.5;
            }
        }
    }
    (step, fit.batch)
}

/// The step as compiled by default, and with every matrix product as an emitted Cranelift
/// kernel (allocation-free; see `codegen::MatmulPolicy`).
fn bench_step(c: &mut Criterion, name: &str, widths: &[usize], batch: usize) {
    let source = program(widths, batch);
    let (mut step, batch) = compiled(&source);
    let (mut emitted, _) = compiled_with(&source, MatmulPolicy::Cranelift);
    let macs: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements((6 * batch * macs) as u64));
    group.bench_function("train_step", |b| b.iter(|| step.run(batch)));
    group.bench_function("train_step_cranelift_matmul", |b| {
        b.iter(|| emitted.run(batch))
    });
    group.finish();
}

/// The step with its matrix products on one thread and on two (bit-identical results).
fn bench_threads(c: &mut Criterion, name: &str, widths: &[usize], batch: usize) {
    let source = program(widths, batch);
    let (mut step, batch) = compiled(&source);
    let macs: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.throughput(Throughput::Elements((6 * batch * macs) as u64));
    for threads in [1, 2] {
        step.set_threads(threads);
        group.bench_function(format!("train_step_{threads}_threads"), |b| {
            b.iter(|| step.run(batch))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_step(c, "seed", &[32, 64, 64, 10], 32);
    bench_step(c, "mnist", &[784, 256, 256, 10], 64);
    bench_threads(c, "wide", &[1024, 1024, 1024, 10], 256);
    let source = program(&[32, 64, 64, 10], 32);
    c.bench_function("compile_seed_step", |b| b.iter(|| compiled(&source)));
}

criterion_group! {
    name = step;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(step);
