//! Splitting the matrix products and the windowed ops over threads does not change a single bit
//! of training: the `mnist`-shaped MLP (784 → 256 → 256 → 10, batch 64, whose products are
//! large enough to be split) and a convnet (whose patches, pooling and their gradients are split
//! by samples) trained for a few steps with one thread and with two end with identical losses,
//! parameters and optimizer state, at the full batch and at a ragged one.

mod common;

use kiln::codegen::{self, CodegenConfig, CompiledStep};
use kiln::ir::graph::Graph;
use kiln::ir::shape::DType;
use kiln::runtime::init;

const BATCH: usize = 64;

fn graph() -> Graph {
    common::classifier_step(&[784, 256, 256, 10], BATCH)
}

/// Trains `steps` steps at `rows` rows with `threads` threads; returns every loss and the final
/// parameters and optimizer state.
fn train(graph: &Graph, threads: usize, rows: usize, steps: usize) -> Vec<Vec<f32>> {
    let mut step = codegen::compile(graph, &CodegenConfig { max_batch: BATCH }).expect("compiles");
    step.set_threads(threads);
    assert_eq!(step.threads(), threads);
    for (i, values) in init::initial_params(graph, 3).iter().enumerate() {
        step.param_mut(i).copy_from_slice(values);
    }
    let mut losses = Vec::new();
    for t in 0..steps {
        fill_inputs(graph, &mut step, rows, t);
        step.run(rows);
        losses.push(step.output("loss", rows).expect("a loss output").to_vec());
    }
    let mut out = losses;
    out.extend((0..graph.params.len()).map(|i| step.param(i).to_vec()));
    out.extend((0..graph.states.len()).map(|i| step.state(i).to_vec()));
    out
}

fn fill_inputs(graph: &Graph, step: &mut CompiledStep, rows: usize, t: usize) {
    for (index, input) in graph.inputs.iter().enumerate() {
        if input.name == "step" {
            step.input_f32_mut(index, rows)[0] = (t + 1) as f32;
        } else if input.ty.dtype == DType::I32 {
            for (i, label) in step.input_i32_mut(index, rows).iter_mut().enumerate() {
                *label = ((i * 7 + t) % 10) as i32;
            }
        } else {
            for (i, x) in step.input_f32_mut(index, rows).iter_mut().enumerate() {
                *x = ((i * 7919 + t * 31) % 997) as f32 / 997.0 - 0.5;
            }
        }
    }
}

/// A convnet's optimized step at `BATCH`: every windowed op large enough to split.
fn convnet() -> Graph {
    let source = "
data d = synthetic_classification(samples: 64, features: 784, classes: 10)
model m(x: f32[B, 784]) -> f32[B, 10] {
    reshape([28, 28, 1])
    conv2d(8, 3, relu)
    max_pooling2d(2)
    conv2d(16, 3, relu, padding: \"same\")
    average_pooling2d(2)
    flatten()
    dense(10, softmax)
}
fit m on d {
    loss      sparse_categorical_crossentropy
    optimizer adam
    batch     64
}
";
    common::first_fit_graph(source, kiln::driver::GraphStage::Optimized)
}

#[test]
fn one_and_two_threads_train_bit_identically() {
    for graph in [graph(), convnet()] {
        for rows in [BATCH, 37] {
            same_with_one_and_two_threads(&graph, rows);
        }
    }
}

fn same_with_one_and_two_threads(graph: &Graph, rows: usize) {
    let one = train(graph, 1, rows, 4);
    let two = train(graph, 2, rows, 4);
    assert_eq!(one.len(), two.len());
    for (i, (a, b)) in one.iter().zip(&two).enumerate() {
        assert!(
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{}, rows {rows}: value {i} differs between 1 and 2 threads",
            graph.name
        );
    }
}
