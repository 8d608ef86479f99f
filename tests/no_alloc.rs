//! A training step allocates nothing: Kiln's buffers, and the matrix products' packing buffers
//! and worker threads, are planned once when the step is compiled. A counting global allocator
//! (this test binary's own) proves it around `CompiledStep::run` for the seed model's step, the
//! `mnist` workload's MLP and a narrow layer whose ragged batch would prefer its product the
//! other way round (see `gemm::transposes_output`), at the full batch size and at a ragged last
//! batch: with the default policy (small products emitted by Cranelift, the others through
//! Kiln's GEMM driver), with every product emitted by Cranelift, and with the products split
//! over two threads.
//!
//! The count is global, not per thread, so that the GEMM workers' allocations would count too;
//! hence the one `#[test]`: nothing else in this binary runs while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use kiln::codegen::{self, CodegenConfig, MatmulPolicy};
use kiln::runtime::init;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

// SAFETY: forwards every call unchanged to the system allocator; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SEED: &[usize] = &[32, 64, 64, 10];
const MNIST: &[usize] = &[784, 256, 256, 10];
const NARROW: &[usize] = &[32, 6];

#[test]
fn a_training_step_does_not_allocate() {
    // (widths, batch, policy, threads)
    let cases: &[(&[usize], usize, MatmulPolicy, Option<usize>)] = &[
        (SEED, 32, MatmulPolicy::Auto, None),
        (SEED, 32, MatmulPolicy::Cranelift, None),
        (SEED, 32, MatmulPolicy::Gemm, None),
        (MNIST, 64, MatmulPolicy::Auto, None),
        (MNIST, 64, MatmulPolicy::Auto, Some(1)),
        (MNIST, 64, MatmulPolicy::Auto, Some(2)),
        // Planned at 16 rows, the forward 16×6×32 product is computed untransposed; at the
        // ragged 7 it would be transposed, which needs more packing scratch than was planned.
        (NARROW, 16, MatmulPolicy::Gemm, None),
    ];
    for &(widths, batch, policy, threads) in cases {
        let allocations = allocations_per_steps(widths, batch, policy, threads);
        assert_eq!(
            allocations, 0,
            "{widths:?} batch {batch}, {policy:?}, threads {threads:?}: {allocations} allocations"
        );
    }
}

/// Allocations during 48 steps at the full batch and 48 at a ragged one, after one warm-up each.
fn allocations_per_steps(
    widths: &[usize],
    batch: usize,
    policy: MatmulPolicy,
    threads: Option<usize>,
) -> usize {
    let graph = common::classifier_step(widths, batch);
    let config = CodegenConfig { max_batch: batch };
    let mut step = codegen::compile_with(&graph, &config, policy).unwrap();
    if let Some(threads) = threads {
        step.set_threads(threads);
    }
    for (i, values) in init::initial_params(&graph, 1).iter().enumerate() {
        step.param_mut(i).copy_from_slice(values);
    }
    let step_input = graph.inputs.iter().position(|i| i.name == "step").unwrap();

    let mut total = 0;
    for rows in [batch, batch / 4 + 3] {
        step.input_f32_mut(step_input, rows)[0] = 1.0;
        step.run(rows); // warm-up: anything a first call initialises lazily happens here
        let before = allocations();
        for t in 2..50 {
            step.input_f32_mut(step_input, rows)[0] = t as f32;
            step.run(rows);
        }
        total += allocations() - before;
    }
    total
}
