//! Kiln's own code allocates nothing in a training step: buffers are planned once at compile
//! time. A counting global allocator (this test binary's own) proves it for the seed model's step
//! at the full batch size and at a ragged last batch, with every matrix product emitted by
//! Cranelift. With the default policy the products of these shapes call the `gemm` crate, which
//! allocates packing scratch on every call (about 14 allocations per seed step); making that path
//! allocation-free is open work (issue 6), so it is not claimed here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kiln::check::program::{Activation, CheckedProgram, Fit, Loss, Model, Optimizer};
use kiln::codegen::{self, CodegenConfig, MatmulPolicy};
use kiln::diag::Span;
use kiln::driver::{self, GraphStage};
use kiln::runtime::init;

struct Counting;

// Per thread, so tests running in parallel do not count each other's allocations.
thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn count() {
    // `try_with`: the allocator may run while this thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call unchanged to the system allocator; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// With every matrix product emitted in Cranelift (no `gemm` call), whatever the default policy.
#[test]
fn a_training_step_with_emitted_matmuls_does_not_allocate() {
    assert_no_allocation(MatmulPolicy::Cranelift);
}

fn assert_no_allocation(policy: MatmulPolicy) {
    let model = Model::dense_stack(
        "classifier",
        &[32, 64, 64, 10],
        &[Activation::Relu, Activation::Relu, Activation::Softmax],
    );
    let fit = Fit {
        span: Span::default(),
        model: 0,
        data: 0,
        loss: Loss::SparseCategoricalCrossentropy,
        loss_options: Default::default(),
        optimizer: Optimizer::Adam {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        },
        metrics: vec![],
        epochs: 1,
        batch: 32,
        seed: 0,
        shuffle: true,
        validation: None,
        training: Default::default(),
    };
    let program = CheckedProgram {
        data: vec![],
        models: vec![model],
        fits: vec![fit.clone()],
        actions: vec![],
    };
    let graph = driver::training_graph(&program, &fit, GraphStage::Step).unwrap();
    let mut step = codegen::compile_with(&graph, &CodegenConfig { max_batch: 32 }, policy).unwrap();
    for (i, values) in init::initial_params(&graph, 1).iter().enumerate() {
        step.param_mut(i).copy_from_slice(values);
    }
    let step_input = graph.inputs.iter().position(|i| i.name == "step").unwrap();

    for batch in [32, 7] {
        step.input_f32_mut(step_input, batch)[0] = 1.0;
        step.run(batch); // warm-up: anything lazily initialised (e.g. in gemm) happens here
        let before = allocations();
        for t in 2..50 {
            step.input_f32_mut(step_input, batch)[0] = t as f32;
            step.run(batch);
        }
        let allocations = allocations() - before;
        assert_eq!(
            allocations, 0,
            "{allocations} allocations in 48 steps at batch {batch}"
        );
    }
}
