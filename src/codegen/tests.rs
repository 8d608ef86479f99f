//! JIT results against straightforward reference computations.

use super::*;
use crate::ir::graph::{Init, ParamInfo};
use crate::ir::{BinaryOp, Dim, Shape, TensorType};

fn bn(n: usize) -> Shape {
    Shape(vec![Dim::Batch, Dim::Fixed(n)])
}

#[test]
fn add_broadcast_row() {
    let mut g = Graph::new("t");
    let x = g.input("x", TensorType::f32(bn(5)), None);
    let b = g.param(
        ParamInfo {
            name: "b".into(),
            shape: Shape::fixed(&[5]),
            init: Init::Zeros,
        },
        None,
    );
    let y = g.binary(BinaryOp::Add, x, b, None);
    g.outputs.push(("output".into(), y));
    let mut step = compile(&g, &CodegenConfig { max_batch: 4 }).unwrap();
    let xs: Vec<f32> = (0..15).map(|i| i as f32).collect();
    step.input_f32_mut(0, 3).copy_from_slice(&xs);
    step.param_mut(0).copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    step.run(3);
    let out = step.output("output", 3).unwrap();
    for i in 0..15 {
        assert_eq!(out[i], xs[i] + (i % 5 + 1) as f32);
    }
}
