//! The stable text form of a graph, behind `kiln dump --stage ir|grad` and the golden tests.

use std::fmt::Write;

use super::graph::{Graph, Slot};
use super::op::Op;

/// Prints `graph`. With `source`, each node is followed by the `line:col` of the `.model` text it
/// came from.
pub fn print(graph: &Graph, source: Option<&str>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_graph(&mut out, graph, source);
    out
}

fn write_graph(out: &mut String, graph: &Graph, source: Option<&str>) -> std::fmt::Result {
    writeln!(out, "graph {} {{", graph.name)?;
    for input in &graph.inputs {
        writeln!(out, "  input {}: {}", input.name, input.ty)?;
    }
    for param in &graph.params {
        writeln!(
            out,
            "  param {}: f32{} = {}",
            param.name, param.shape, param.init
        )?;
    }
    for state in &graph.states {
        writeln!(out, "  state {}: f32{} = zeros", state.name, state.shape)?;
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut line = format!("  %{i} = {}", node_text(graph, &node.op));
        for (k, input) in node.inputs.iter().enumerate() {
            line.push_str(if k == 0 { " " } else { ", " });
            write!(line, "%{}", input.0)?;
        }
        write!(line, " : {}", node.ty)?;
        if let (Some(span), Some(source)) = (node.span, source) {
            let (l, c) = line_col(source, span.start);
            let pad = 56usize.saturating_sub(line.chars().count());
            write!(line, "{:pad$}  # {l}:{c}", "")?;
        }
        writeln!(out, "{line}")?;
    }
    for (name, value) in &graph.outputs {
        writeln!(out, "  output {name} = %{}", value.0)?;
    }
    for gradient in &graph.gradients {
        let name = &graph.params[gradient.param].name;
        writeln!(out, "  grad {name} = %{}", gradient.value.0)?;
    }
    for update in &graph.updates {
        let name = match update.target {
            Slot::Param(i) => format!("param {}", graph.params[i].name),
            Slot::State(i) => format!("state {}", graph.states[i].name),
        };
        writeln!(out, "  update {name} = %{}", update.value.0)?;
    }
    writeln!(out, "}}")
}

/// The op with its attributes, e.g. `matmul.tn`, `reduce_sum[axes=0]`, `param dense.kernel`.
fn node_text(graph: &Graph, op: &Op) -> String {
    match op {
        Op::Input { index } => format!("input {}", graph.inputs[*index].name),
        Op::Param { index } => format!("param {}", graph.params[*index].name),
        Op::State { index } => format!("state {}", graph.states[*index].name),
        _ => format!("{}{}", op.name(), op.attributes()),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::op::ReduceKind;
    use crate::ir::shape::{DType, Dim, Shape, TensorType};

    #[test]
    fn attributes_of_the_full_op_set() {
        let mut g = Graph::new("g");
        let x = g.input(
            "x",
            TensorType::f32(Shape(vec![Dim::Batch, Dim::Fixed(4)])),
            None,
        );
        let ids = g.input(
            "ids",
            TensorType {
                dtype: DType::I32,
                shape: Shape::fixed(&[3]),
            },
            None,
        );
        let step = g.step_input(None);
        assert_eq!(
            g.step_input(None),
            step,
            "one step input, however often asked for"
        );
        let l = g.add(Op::LeakyRelu { alpha: 0.2 }, &[x], None);
        let d = g.dropout(l, step, 0.5, 7, None);
        let t = g.transpose(d, &[1, 0], None);
        let s = g.slice(t, 0, 1, 3, None);
        let c = g.concat(&[s, s], 0, None);
        let r = g.reshape(
            d,
            &Shape(vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(2)]),
            None,
        );
        let m = g.reduce(ReduceKind::Mean, r, &[0], false, None);
        let table = g.reshape(m, &Shape::fixed(&[4]), None);
        let rows = g.gather(table, ids, None);
        let sums = g.add(Op::ScatterAdd { rows: 5 }, &[rows, ids], None);
        for v in [c, sums] {
            g.outputs.push((format!("o{}", v.0), v));
        }
        let text = print(&g, None);
        for line in [
            "%3 = leaky_relu[alpha=0.2] %0 : f32[B, 4]",
            "%5 = dropout[rate=0.5, seed=7] %3, %2, %4 : f32[B, 4]",
            "%6 = transpose[perm=1,0] %5 : f32[4, B]",
            "%7 = slice[axis=0, 1..3] %6 : f32[2, B]",
            "%8 = concat[axis=0] %7, %7 : f32[4, B]",
            "%9 = reshape %5 : f32[B, 2, 2]",
            "%10 = reduce_mean[axes=0] %9 : f32[2, 2]",
            "%12 = gather %11, %1 : f32[3]",
            "%13 = scatter_add[rows=5] %12, %1 : f32[5]",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }
}
