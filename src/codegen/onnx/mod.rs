//! ONNX export: an inference graph (`ir::lower::for_inference`) as an ONNX model (opset 17),
//! translated op by op.
//!
//! Why op by op rather than layer by layer: the IR is where every layer has already become a
//! handful of ops with exact semantics (the interpreter defines them), so one rule per op covers
//! every layer, user-defined layers and functions included, and a new layer needs no exporter
//! change unless it brings a new op. The price is a graph that reads as Kiln's ops rather than
//! as Keras layers: a convolution is its im2col (`unfold`, written as an ONNX `Conv` whose
//! constant kernel picks each tap, so zero padding, strides and dilation are ONNX's own) followed
//! by a `MatMul` with the kernel, not one `Conv` node.
//!
//! Layout: Kiln is channels-last (`[B, H, W, C]`), ONNX's `Conv` and pooling channels-first;
//! each windowed op is wrapped in the two `Transpose`s that convert, and everything else keeps
//! Kiln's layout, so the file's inputs and outputs have the model's own shapes. The batch
//! dimension is symbolic (`batch`); where an op needs its value (`Expand`, a batch mean) it is
//! read from the first input's shape.
//!
//! The standardization statistics a model was trained with (`standardize true`) become the
//! graph's first two ops, so the file takes raw features as `kiln predict` does.

pub mod proto;

use prost::Message;

use crate::diag::Span;
use crate::ir::graph::Graph;
use crate::ir::op::{BinaryOp, Op, PoolKind, ReduceKind, UnaryOp};
use crate::ir::recurrence::{Activation, Cell, CellKind};
use crate::ir::shape::{DType, Dim, TensorType};
use crate::ir::window::Window;
use proto::*;

/// The opset the file declares.
pub const OPSET: i64 = 17;
/// ONNX IR version 8 goes with opset 17.
const IR_VERSION: i64 = 8;
/// The name of the symbolic batch dimension.
pub const BATCH: &str = "batch";

/// What to export.
pub struct Export<'a> {
    /// The model's name (the graph's).
    pub name: &'a str,
    /// The inference graph.
    pub graph: &'a Graph,
    /// Each parameter's values, in `graph.params` order.
    pub params: &'a [Vec<f32>],
    /// Per-feature mean and standard deviation of the first input.
    pub standardization: Option<(&'a [f32], &'a [f32])>,
    /// Recorded as the file's `producer_version`.
    pub kiln_version: &'a str,
}

/// An op with no ONNX form, and the source it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported {
    pub op: String,
    pub span: Option<Span>,
}

/// The ONNX model's bytes.
pub fn export(export: &Export) -> Result<Vec<u8>, Unsupported> {
    let mut writer = Writer::new(export.graph);
    writer.translate(export)?;
    let graph = export.graph;
    let output = (graph.outputs.iter())
        .map(|(name, value)| value_info(name, graph.ty(*value)))
        .collect();
    let mut nodes = writer.nodes;
    // Graph outputs are named as Kiln names them: an Identity from the value to the name.
    for (name, value) in &graph.outputs {
        nodes.push(node(
            "Identity",
            &[&writer.names[value.index()]],
            name,
            vec![],
        ));
    }
    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "kiln".to_string(),
        producer_version: export.kiln_version.to_string(),
        doc_string: format!("the inference graph of model '{}'", export.name),
        graph: Some(GraphProto {
            node: nodes,
            name: export.name.to_string(),
            initializer: writer.initializers,
            input: writer.inputs,
            output,
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    Ok(model.encode_to_vec())
}

fn value_info(name: &str, ty: &TensorType) -> ValueInfoProto {
    let dim = (ty.shape.dims().iter())
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Batch => dimension::Value::DimParam(BATCH.to_string()),
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: elem_type(ty.dtype),
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

fn elem_type(dtype: DType) -> i32 {
    match dtype {
        DType::F32 => data_type::FLOAT,
        DType::I32 => data_type::INT32,
    }
}

fn node(op_type: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: output.to_string(),
        op_type: op_type.to_string(),
        attribute,
        doc_string: String::new(),
    }
}

fn ints(name: &str, values: impl IntoIterator<Item = i64>) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        ints: values.into_iter().collect(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        i: value,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        s: value.as_bytes().to_vec(),
        r#type: attribute_type::STRING,
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        f: value,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn f32_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type::FLOAT,
        name: name.to_string(),
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn i64_tensor(name: &str, dims: &[usize], values: &[i64]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type::INT64,
        name: name.to_string(),
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Builds the node list: one or more ONNX nodes per IR node, each IR value named `v{index}`.
struct Writer<'g> {
    graph: &'g Graph,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    /// The ONNX name of each IR value.
    names: Vec<String>,
    /// Fresh names for intermediate values.
    next: usize,
    /// The batch size as an int64 `[1]` tensor, once some op needed it.
    batch: Option<String>,
}

impl<'g> Writer<'g> {
    fn new(graph: &'g Graph) -> Self {
        Writer {
            graph,
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            names: vec![String::new(); graph.nodes.len()],
            next: 0,
            batch: None,
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Adds a node with a fresh output name; returns the name.
    fn op(&mut self, op_type: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let output = self.fresh(&op_type.to_ascii_lowercase());
        self.nodes.push(node(op_type, inputs, &output, attributes));
        output
    }

    fn constant_i64(&mut self, dims: &[usize], values: &[i64]) -> String {
        let name = self.fresh("const");
        self.initializers.push(i64_tensor(&name, dims, values));
        name
    }

    fn constant_f32(&mut self, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh("const");
        self.initializers.push(f32_tensor(&name, dims, values));
        name
    }

    /// The runtime batch size as an int64 `[1]` tensor, read from the first input with a batch
    /// dimension.
    fn batch(&mut self) -> String {
        if let Some(batch) = &self.batch {
            return batch.clone();
        }
        let graph = self.graph;
        let source = (graph.nodes.iter().enumerate())
            .find(|(_, n)| {
                matches!(n.op, Op::Input { .. }) && n.ty.shape.dims().first() == Some(&Dim::Batch)
            })
            .map(|(i, _)| self.names[i].clone())
            .unwrap_or_default();
        let shape = self.op("Shape", &[&source], vec![]);
        let (start, end) = (self.constant_i64(&[1], &[0]), self.constant_i64(&[1], &[1]));
        let batch = self.op("Slice", &[&shape, &start, &end], vec![]);
        self.batch = Some(batch.clone());
        batch
    }

    /// A shape as an int64 tensor for `Expand`: the batch dimension read at run time.
    fn shape_tensor(&mut self, dims: &[Dim]) -> String {
        if !dims.contains(&Dim::Batch) {
            let fixed: Vec<i64> = dims.iter().map(|d| d.resolve(0) as i64).collect();
            return self.constant_i64(&[fixed.len()], &fixed);
        }
        let batch = self.batch();
        let parts: Vec<String> = (dims.iter())
            .map(|d| match d {
                Dim::Batch => batch.clone(),
                Dim::Fixed(n) => self.constant_i64(&[1], &[*n as i64]),
            })
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.op("Concat", &parts, vec![int("axis", 0)])
    }

    fn translate(&mut self, export: &Export) -> Result<(), Unsupported> {
        let graph = self.graph;
        let live = live_nodes(graph);
        for (index, n) in graph.nodes.iter().enumerate() {
            if !live[index] {
                continue;
            }
            let unsupported = |what: &str| Unsupported {
                op: what.to_string(),
                span: n.span,
            };
            let operands: Vec<String> = (n.inputs.iter())
                .map(|v| self.names[v.index()].clone())
                .collect();
            let input = |k: usize| operands[k].clone();
            let shape = n.ty.shape.dims();
            let name = match &n.op {
                Op::Input { index: i } => {
                    let info = &graph.inputs[*i];
                    self.inputs.push(value_info(&info.name, &info.ty));
                    match export.standardization.filter(|_| *i == 0) {
                        None => info.name.clone(),
                        Some((mean, std)) => {
                            let sample: Vec<usize> = info.ty.shape.resolve(1)[1..].to_vec();
                            let mean = self.constant_f32(&sample, mean);
                            let std = self.constant_f32(&sample, std);
                            let centred = self.op("Sub", &[&info.name, &mean], vec![]);
                            self.op("Div", &[&centred, &std], vec![])
                        }
                    }
                }
                Op::Param { index: i } => {
                    let info = &graph.params[*i];
                    let name = info.name.clone();
                    let dims = info.shape.resolve(0);
                    self.initializers
                        .push(f32_tensor(&name, &dims, &export.params[*i]));
                    name
                }
                Op::Const { value } => self.constant_f32(&[], &[*value]),
                Op::BatchSize => {
                    let batch = self.batch();
                    let scalar = self.constant_i64(&[0], &[]);
                    let batch = self.op("Reshape", &[&batch, &scalar], vec![]);
                    self.op("Cast", &[&batch], vec![int("to", data_type::FLOAT as i64)])
                }
                Op::Unary(unary) => {
                    let x = input(0);
                    match unary {
                        UnaryOp::Neg => self.op("Neg", &[&x], vec![]),
                        UnaryOp::Exp => self.op("Exp", &[&x], vec![]),
                        UnaryOp::Log => self.op("Log", &[&x], vec![]),
                        UnaryOp::Sqrt => self.op("Sqrt", &[&x], vec![]),
                        UnaryOp::Relu => self.op("Relu", &[&x], vec![]),
                        UnaryOp::Sigmoid => self.op("Sigmoid", &[&x], vec![]),
                        UnaryOp::Tanh => self.op("Tanh", &[&x], vec![]),
                        UnaryOp::Abs => self.op("Abs", &[&x], vec![]),
                        UnaryOp::Erf => self.op("Erf", &[&x], vec![]),
                        UnaryOp::Softplus => self.op("Softplus", &[&x], vec![]),
                        UnaryOp::Rsqrt => {
                            let root = self.op("Sqrt", &[&x], vec![]);
                            self.op("Reciprocal", &[&root], vec![])
                        }
                        // Opset 17 has no Gelu: x/2 · (1 + erf(x/√2)).
                        UnaryOp::Gelu => {
                            let scale = self.constant_f32(&[], &[std::f32::consts::FRAC_1_SQRT_2]);
                            let scaled = self.op("Mul", &[&x, &scale], vec![]);
                            let erf = self.op("Erf", &[&scaled], vec![]);
                            let one = self.constant_f32(&[], &[1.0]);
                            let sum = self.op("Add", &[&erf, &one], vec![]);
                            let half = self.constant_f32(&[], &[0.5]);
                            let halved = self.op("Mul", &[&x, &half], vec![]);
                            self.op("Mul", &[&halved, &sum], vec![])
                        }
                    }
                }
                Op::Binary(binary) => {
                    let (a, b) = (input(0), input(1));
                    let compare = |w: &mut Self, op: &str| {
                        let truth = w.op(op, &[&a, &b], vec![]);
                        w.op("Cast", &[&truth], vec![int("to", data_type::FLOAT as i64)])
                    };
                    match binary {
                        BinaryOp::Add => self.op("Add", &[&a, &b], vec![]),
                        BinaryOp::Sub => self.op("Sub", &[&a, &b], vec![]),
                        BinaryOp::Mul => self.op("Mul", &[&a, &b], vec![]),
                        BinaryOp::Div => self.op("Div", &[&a, &b], vec![]),
                        BinaryOp::Pow => self.op("Pow", &[&a, &b], vec![]),
                        BinaryOp::Max => self.op("Max", &[&a, &b], vec![]),
                        BinaryOp::Min => self.op("Min", &[&a, &b], vec![]),
                        BinaryOp::Greater => compare(self, "Greater"),
                        BinaryOp::Less => compare(self, "Less"),
                        BinaryOp::GreaterEqual => compare(self, "GreaterOrEqual"),
                        BinaryOp::LessEqual => compare(self, "LessOrEqual"),
                        BinaryOp::Equal => compare(self, "Equal"),
                        BinaryOp::NotEqual => {
                            let equal = self.op("Equal", &[&a, &b], vec![]);
                            let truth = self.op("Not", &[&equal], vec![]);
                            self.op("Cast", &[&truth], vec![int("to", data_type::FLOAT as i64)])
                        }
                    }
                }
                Op::Broadcast => {
                    let target = self.shape_tensor(shape);
                    self.op("Expand", &[&input(0), &target], vec![])
                }
                Op::LeakyRelu { alpha } => self.op("LeakyRelu", &[&input(0)], vec![float("alpha", *alpha)]),
                Op::Elu { alpha } => self.op("Elu", &[&input(0)], vec![float("alpha", *alpha)]),
                // A NaN condition is not equal to zero, so it selects `a`, as in Kiln.
                Op::Select => {
                    let zero = self.constant_f32(&[], &[0.0]);
                    let is_zero = self.op("Equal", &[&input(0), &zero], vec![]);
                    let condition = self.op("Not", &[&is_zero], vec![]);
                    self.op("Where", &[&condition, &input(1), &input(2)], vec![])
                }
                Op::MatMul {
                    transpose_a,
                    transpose_b,
                } => {
                    let mut operands = [input(0), input(1)];
                    for (k, transposed) in [*transpose_a, *transpose_b].into_iter().enumerate() {
                        if transposed {
                            let rank = graph.ty(n.inputs[k]).shape.rank();
                            let mut perm: Vec<i64> = (0..rank as i64).collect();
                            perm.swap(rank - 2, rank - 1);
                            operands[k] = self.op("Transpose", &[&operands[k]], vec![ints("perm", perm)]);
                        }
                    }
                    self.op("MatMul", &[&operands[0], &operands[1]], vec![])
                }
                Op::Reduce {
                    kind,
                    axes,
                    keep_dims,
                } => {
                    let axes_i64: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
                    let keep = int("keepdims", i64::from(*keep_dims));
                    match kind {
                        // Opset 13 moved ReduceSum's axes to an input; the others follow in 18.
                        ReduceKind::Sum => {
                            let axes = self.constant_i64(&[axes_i64.len()], &axes_i64);
                            self.op("ReduceSum", &[&input(0), &axes], vec![keep])
                        }
                        ReduceKind::Mean => self.op("ReduceMean", &[&input(0)], vec![ints("axes", axes_i64), keep]),
                        ReduceKind::Max => self.op("ReduceMax", &[&input(0)], vec![ints("axes", axes_i64), keep]),
                    }
                }
                Op::Softmax => self.op("Softmax", &[&input(0)], vec![int("axis", -1)]),
                Op::LogSoftmax => self.op("LogSoftmax", &[&input(0)], vec![int("axis", -1)]),
                Op::OneHot { classes } => {
                    let depth = self.constant_i64(&[], &[*classes as i64]);
                    let values = self.constant_f32(&[2], &[0.0, 1.0]);
                    self.op("OneHot", &[&input(0), &depth, &values], vec![int("axis", -1)])
                }
                Op::Transpose { perm } => self.op(
                    "Transpose",
                    &[&input(0)],
                    vec![ints("perm", perm.iter().map(|&p| p as i64))],
                ),
                // The batch, when there is one, leads on both sides: -1 lets ONNX infer it.
                Op::Reshape => {
                    let dims: Vec<i64> = (shape.iter())
                        .map(|d| match d {
                            Dim::Batch => -1,
                            Dim::Fixed(n) => *n as i64,
                        })
                        .collect();
                    let target = self.constant_i64(&[dims.len()], &dims);
                    self.op("Reshape", &[&input(0), &target], vec![])
                }
                Op::Slice { axis, start, end } => {
                    let starts = self.constant_i64(&[1], &[*start as i64]);
                    let ends = self.constant_i64(&[1], &[*end as i64]);
                    let axes = self.constant_i64(&[1], &[*axis as i64]);
                    self.op("Slice", &[&input(0), &starts, &ends, &axes], vec![])
                }
                Op::Concat { axis } => {
                    let parts: Vec<String> = (0..n.inputs.len()).map(input).collect();
                    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                    self.op("Concat", &parts, vec![int("axis", *axis as i64)])
                }
                Op::Gather => self.op("Gather", &[&input(0), &input(1)], vec![int("axis", 0)]),
                Op::Unfold { window } => {
                    let channels = graph.ty(n.inputs[0]).shape.dims().last().map_or(1, |d| d.resolve(1));
                    self.unfold(&input(0), window, channels)
                }
                Op::Pool { kind, window } => self.pool(&input(0), *kind, window).map_err(|()| {
                    unsupported("mean pooling with a dilated window (ONNX's AveragePool has dilations from opset 19)")
                })?,
                Op::State { .. } => return Err(unsupported("optimizer state")),
                Op::Dropout { .. } | Op::InTraining => {
                    return Err(unsupported(n.op.name()));
                }
                Op::Contract | Op::ScatterAdd { .. } | Op::Fold { .. } | Op::PoolGrad { .. } => {
                    return Err(unsupported(n.op.name()));
                }
                Op::Recurrence { cell } => {
                    if cell.masked {
                        // ONNX's recurrent ops skip only padding at the end (`sequence_lens`).
                        return Err(unsupported("a masked recurrence (`mask_zero`)"));
                    }
                    if !reads_hidden_states_only(graph, index, cell.units) {
                        return Err(unsupported("a recurrence's gate activations"));
                    }
                    let steps = shape.get(1).map_or(1, |d| d.resolve(1));
                    self.recurrence(cell, &operands, steps)
                        .map_err(|()| {
                            unsupported("a recurrent layer with activations other than ONNX's defaults (`tanh`, gates `sigmoid`)")
                        })?
                }
                Op::CausalSoftmax => self.causal_softmax(&input(0), shape),
                Op::RecurrenceGrad { .. } => return Err(unsupported(n.op.name())),
            };
            self.names[index] = name;
        }
        Ok(())
    }

    /// A scan as ONNX's `RNN`, `LSTM` or `GRU` over the precomputed input projection `xw`: the
    /// op's input weights are a constant 0/1 matrix that picks `xw`'s gate blocks in ONNX's
    /// order (LSTM: `i, o, f, c` from Keras's `i, f, c, o`; the GRU's `z, r, h` and the simple
    /// RNN's one block are in the same order), its recurrent weights the recurrent kernel
    /// transposed (rows in ONNX's gate order), the GRU's bias `[0, recurrent bias]` with
    /// `linear_before_reset` (Keras's `reset_after`). The result is the hidden states `[B, T,
    /// units]`, the tape's first block, in time order in either direction as the tape is.
    /// `Err` for activations other than ONNX's defaults. `steps`: the sequence's length.
    fn recurrence(&mut self, cell: &Cell, operands: &[String], steps: usize) -> Result<String, ()> {
        let (u, gw) = (cell.units, cell.gate_width());
        // ONNX's defaults (sigmoid gates, tanh otherwise) only: runtimes differ in which
        // `activations` they honour (tract ignores them), so a file naming others would not
        // compute what Kiln does everywhere.
        let gates_default =
            cell.kind == CellKind::SimpleRnn || cell.recurrent_activation == Activation::Sigmoid;
        if cell.activation != Activation::Tanh || !gates_default {
            return Err(());
        }
        let op_type = match cell.kind {
            CellKind::SimpleRnn => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        };
        // Row `r` of ONNX's gate order reads column `keras[r]` of Kiln's.
        let keras: Vec<usize> = match cell.kind {
            CellKind::Lstm => [0, 3, 1, 2]
                .iter()
                .flat_map(|&block| block * u..(block + 1) * u)
                .collect(),
            _ => (0..gw).collect(),
        };
        let mut pick = vec![0.0f32; gw * gw];
        for (r, &c) in keras.iter().enumerate() {
            pick[r * gw + c] = 1.0;
        }
        let w = self.constant_f32(&[1, gw, gw], &pick);
        let mut steps_first = self.op("Transpose", &[&operands[0]], vec![ints("perm", [1, 0, 2])]);
        // A scan that runs backwards reads the steps reversed and runs forwards (runtimes
        // differ on the order of a reverse op's `Y`); its states are reversed back after.
        let backwards = cell.reverse.then(|| {
            let t = steps as i64;
            let order: Vec<i64> = (0..t).rev().collect();
            self.constant_i64(&[order.len()], &order)
        });
        if let Some(order) = &backwards {
            steps_first = self.op("Gather", &[&steps_first, order], vec![int("axis", 0)]);
        }
        let transposed = self.op("Transpose", &[&operands[1]], vec![ints("perm", [1, 0])]);
        let rows = if cell.kind == CellKind::Lstm {
            let order: Vec<i64> = keras.iter().map(|&c| c as i64).collect();
            let order = self.constant_i64(&[gw], &order);
            self.op("Gather", &[&transposed, &order], vec![int("axis", 0)])
        } else {
            transposed
        };
        let r_shape = self.constant_i64(&[3], &[1, gw as i64, u as i64]);
        let r = self.op("Reshape", &[&rows, &r_shape], vec![]);
        let input_bias = self.constant_f32(&[gw], &vec![0.0; gw]);
        let recurrent_bias = match cell.kind {
            CellKind::Gru => operands[2].clone(),
            _ => self.constant_f32(&[gw], &vec![0.0; gw]),
        };
        let both = self.op(
            "Concat",
            &[&input_bias, &recurrent_bias],
            vec![int("axis", 0)],
        );
        let b_shape = self.constant_i64(&[2], &[1, 2 * gw as i64]);
        let b = self.op("Reshape", &[&both, &b_shape], vec![]);
        let mut attributes = vec![int("hidden_size", u as i64), string("direction", "forward")];
        if cell.kind == CellKind::Gru {
            attributes.push(int("linear_before_reset", 1));
        }
        // Y `[T, 1, B, units]` → `[B, T, units]`.
        let y = self.op(op_type, &[&steps_first, &w, &r, &b], attributes);
        let directions = self.constant_i64(&[1], &[1]);
        let mut states = self.op("Squeeze", &[&y, &directions], vec![]);
        if let Some(order) = &backwards {
            states = self.op("Gather", &[&states, order], vec![int("axis", 0)]);
        }
        Ok(self.op("Transpose", &[&states], vec![ints("perm", [1, 0, 2])]))
    }

    /// `causal_softmax` over the last two axes `[.., T, T]`: a constant added first, 0 on and
    /// below the diagonal and -1e30 above it (exactly 0 after `exp`), then `Softmax`.
    fn causal_softmax(&mut self, x: &str, shape: &[Dim]) -> String {
        let t = shape.last().map_or(1, |d| d.resolve(1));
        let rows = shape
            .len()
            .checked_sub(2)
            .map_or(1, |a| shape[a].resolve(1));
        let mask: Vec<f32> = (0..rows * t)
            .map(|k| if k % t > k / t { -1e30 } else { 0.0 })
            .collect();
        let mask = self.constant_f32(&[rows, t], &mask);
        let masked = self.op("Add", &[x, &mask], vec![]);
        self.op("Softmax", &[&masked], vec![int("axis", -1)])
    }

    /// `x` channels-last → channels-first (`to_first`) or back, for a tensor of `rank`.
    fn relayout(&mut self, x: &str, rank: usize, to_first: bool) -> String {
        let perm: Vec<i64> = if to_first {
            [0, rank as i64 - 1]
                .into_iter()
                .chain(1..rank as i64 - 1)
                .collect()
        } else {
            std::iter::once(0)
                .chain(2..rank as i64)
                .chain([1])
                .collect()
        };
        self.op("Transpose", &[x], vec![ints("perm", perm)])
    }

    /// The window's `kernel_shape`, `strides`, `dilations` and `pads` attributes.
    fn window_attributes(window: &Window, dilations: bool) -> Vec<AttributeProto> {
        let to_i64 = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
        let pads: Vec<i64> = (window.padding.iter().map(|p| p.0 as i64))
            .chain(window.padding.iter().map(|p| p.1 as i64))
            .collect();
        let mut attributes = vec![
            ints("kernel_shape", to_i64(&window.size)),
            ints("strides", to_i64(&window.strides)),
            ints("pads", pads),
        ];
        if dilations {
            attributes.push(ints("dilations", to_i64(&window.dilation)));
        }
        attributes
    }

    /// im2col as a `Conv` with a constant 0/1 kernel: output channel `k·C + c` is tap `k`
    /// (row-major over the window) of input channel `c`, which is `unfold`'s order. Each output
    /// is one input value times 1 plus zeros, so the values are exact.
    fn unfold(&mut self, x: &str, window: &Window, channels: usize) -> String {
        let rank = window.rank() + 2;
        let first = self.relayout(x, rank, true);
        let taps = window.taps();
        let mut kernel = vec![0.0f32; taps * channels * channels * taps];
        // Kernel layout [taps·C (out), C (in), size..]: the window's positions flatten
        // row-major, so tap k is flat position k.
        for k in 0..taps {
            for c in 0..channels {
                let out = k * channels + c;
                kernel[(out * channels + c) * taps + k] = 1.0;
            }
        }
        let dims: Vec<usize> = [taps * channels, channels]
            .into_iter()
            .chain(window.size.iter().copied())
            .collect();
        let kernel = self.constant_f32(&dims, &kernel);
        let patches = self.op(
            "Conv",
            &[&first, &kernel],
            Self::window_attributes(window, true),
        );
        self.relayout(&patches, rank, false)
    }

    fn pool(&mut self, x: &str, kind: PoolKind, window: &Window) -> Result<String, ()> {
        let rank = window.rank() + 2;
        let first = self.relayout(x, rank, true);
        let pooled = match kind {
            PoolKind::Max => self.op("MaxPool", &[&first], Self::window_attributes(window, true)),
            PoolKind::Mean => {
                if window.dilation.iter().any(|&d| d != 1) {
                    return Err(());
                }
                // Padded positions are not counted, as in Kiln (and Keras).
                let mut attributes = Self::window_attributes(window, false);
                attributes.push(int("count_include_pad", 0));
                self.op("AveragePool", &[&first], attributes)
            }
        };
        Ok(self.relayout(&pooled, rank, false))
    }
}

/// The nodes the outputs depend on.
/// Whether every reader of node `index` (a recurrence) takes only the hidden states, the tape's
/// first `units` values along its last axis, which is all the exported op computes.
fn reads_hidden_states_only(graph: &Graph, index: usize, units: usize) -> bool {
    (graph.nodes.iter())
        .filter(|n| n.inputs.iter().any(|v| v.index() == index))
        .all(|n| matches!(n.op, Op::Slice { axis: 2, start: 0, end } if end <= units))
}

fn live_nodes(graph: &Graph) -> Vec<bool> {
    let mut live = vec![false; graph.nodes.len()];
    for (_, value) in &graph.outputs {
        live[value.index()] = true;
    }
    for index in (0..graph.nodes.len()).rev() {
        if live[index] {
            for input in &graph.nodes[index].inputs {
                live[input.index()] = true;
            }
        }
    }
    live
}
