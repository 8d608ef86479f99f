//! `model NAME(INPUTS) -> OUTPUTS { BODY }`: the signature, then the body run symbolically.
//!
//! A body line that evaluates to a layer or function is applied to the value flowing through
//! the model (the sequential style: `dense(64, relu)`); a line that evaluates to a tensor becomes
//! that value (the functional style: `x + h`); `let` names an intermediate value. What flows out
//! of the last line is the model's result, checked against the declared output types.

use super::elab::Elab;
use crate::program::*;

use super::types::{DimEnv, type_text};
use super::value::*;
use super::*;
use crate::diag::Diagnostic;
use crate::ir::op::Op;
use crate::ir::shape::{Dim, Shape, TensorType};
use crate::syntax::ast;

impl Checker {
    pub(super) fn model(&mut self, decl: &ast::ModelDecl) {
        let fresh = self.declare(&decl.name, Kind::Model);
        let mut el = Elab::new(self, &decl.name.name);
        let Some((batch, inputs)) = signature(&mut el, decl) else {
            return;
        };
        el.batch = batch.clone();
        if decl.body.is_empty() {
            el.error(
                Diagnostic::error("E0205", format!("model `{}` has no layers", decl.name.name))
                    .primary(decl.name.span, "this model is empty")
                    .help("add a layer such as `dense(10, softmax)`"),
            );
            return;
        }
        el.push_scope(false);
        let mut current: Option<(Value, Span)> = match inputs.as_slice() {
            [(_, t, span)] => Some((Value::Tensor(*t), *span)),
            _ => None,
        };
        for (name, t, span) in &inputs {
            el.bind(name, Value::Tensor(*t), *span, None);
        }
        let mut ok = true;
        for stmt in &decl.body {
            match stmt {
                ast::Stmt::Let(binding) => ok &= el.let_stmt(binding),
                ast::Stmt::Expr(expr) => {
                    let value = el.eval(expr);
                    match flow(&mut el, value, expr.span, current.as_ref()) {
                        Some(next) => current = Some((next, expr.span)),
                        None => {
                            ok = false;
                            // Later layer lines have nothing to apply to; stay quiet about it.
                            current = Some((Value::Error, expr.span));
                        }
                    }
                }
                ast::Stmt::Error(_) => ok = false,
            }
        }
        el.pop_scope();
        if !ok {
            return;
        }
        let Some((result, result_span)) = current else {
            return;
        };
        let Some(outputs) = outputs(&mut el, decl, result, result_span) else {
            return;
        };
        let Elab {
            mut graph,
            rows,
            types,
            ..
        } = el;
        let declared: Vec<TensorType> = outputs.iter().map(|t| graph.ty(t.id).clone()).collect();
        let named: Vec<(String, _)> = if outputs.len() == 1 {
            vec![("output".to_string(), outputs[0].id)]
        } else {
            outputs
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("output_{}", i + 1), t.id))
                .collect()
        };
        graph.outputs = named;
        if !sizes_fit(self, &graph, &batch) {
            return;
        }
        unreachable_params(self, &graph);
        one_unit_softmax(self, &graph, &decl.name.name);
        let input_types: Vec<(String, TensorType)> = inputs
            .iter()
            .map(|(name, t, _)| (name.clone(), graph.ty(t.id).clone()))
            .collect();
        if !fresh {
            return;
        }
        let input_features = types::per_sample(&input_types[0].1.shape);
        let output_features = match declared[0].shape.dims().last() {
            Some(&Dim::Fixed(n)) => n,
            _ => 1,
        };
        self.models.push(Model {
            name: decl.name.name.clone(),
            span: decl.span,
            batch_symbol: batch.clone(),
            inputs: input_types,
            outputs: declared,
            input_features,
            output_features,
            forward: graph,
            summary: rows,
            types,
        });
        self.model_info.push(ModelInfo {
            input_type_span: decl.params[0].ty.as_ref().map_or(decl.span, |t| t.span),
            output_type_span: decl.outputs[0].span,
            batch_symbol: batch,
        });
        self.set_index(&decl.name.name, self.models.len() - 1);
    }
}

/// A model input: its name, its tensor and the declaration's span.
type Input = (String, Tensor, Span);

/// Reads the inputs: each `NAME: f32[B, ...]` with the same symbolic batch dimension first and
/// every other dimension known. Returns the batch symbol and the input tensors.
fn signature(el: &mut Elab, decl: &ast::ModelDecl) -> Option<(String, Vec<Input>)> {
    if decl.params.is_empty() {
        el.error(
            Diagnostic::error("E0202", format!("model `{}` has no input", decl.name.name))
                .primary(decl.name.span, "no inputs declared")
                .help("declare an input such as `(x: f32[B, 32])`"),
        );
        return None;
    }
    let shape_help = "a model input is written like `f32[B, 32]` or `f32[B, 28, 28]`: a symbolic batch dimension, then the sizes of one sample";
    let mut batch: Option<(String, Span)> = None;
    let mut inputs = Vec::new();
    let mut ok = true;
    for param in &decl.params {
        let Some(ty) = &param.ty else {
            el.error(
                Diagnostic::error(
                    "E0201",
                    format!("the input `{}` needs a type", param.name.name),
                )
                .primary(param.name.span, "no type")
                .help(shape_help),
            );
            ok = false;
            continue;
        };
        if let Some(default) = &param.default {
            el.error(
                Diagnostic::error("E0201", "a model input cannot have a default")
                    .primary(default.span, "remove this"),
            );
            ok = false;
            continue;
        }
        let dtype = match types::dtype_of(&ty.dtype.name) {
            Some(d) => d,
            None => {
                el.error(
                    Diagnostic::error("E0201", "a model input has element type f32 or i32")
                        .primary(ty.dtype.span, format!("found `{}`", ty.dtype.name))
                        .help(shape_help),
                );
                ok = false;
                continue;
            }
        };
        let dims = match &ty.dims {
            Some(dims) if dims.len() >= 2 => dims,
            _ => {
                let count = ty.dims.as_ref().map_or(0, Vec::len);
                el.error(
                    Diagnostic::error(
                        "E0201",
                        "a model input needs a batch dimension and at least one more",
                    )
                    .primary(
                        ty.span,
                        format!(
                            "this type has {count} dimension{}",
                            if count == 1 { "" } else { "s" }
                        ),
                    )
                    .help(shape_help),
                );
                ok = false;
                continue;
            }
        };
        if dims.iter().any(|d| d.kind == ast::DimKind::Error) {
            ok = false;
            continue;
        }
        let symbol = match &dims[0].kind {
            ast::DimKind::Symbol(s) if el.number_in_scope(s).is_none() => s.clone(),
            _ => {
                el.error(
                    Diagnostic::error(
                        "E0201",
                        "the first dimension of a model input must be symbolic",
                    )
                    .primary(dims[0].span, "a fixed batch size")
                    .help(shape_help),
                );
                ok = false;
                continue;
            }
        };
        match &batch {
            Some((b, bspan)) if *b != symbol => {
                el.error(
                    Diagnostic::error("E0208", "the inputs' batch dimensions differ")
                        .primary(dims[0].span, format!("`{symbol}` here"))
                        .secondary(
                            *bspan,
                            format!("the first input's batch dimension is `{b}`"),
                        )
                        .help(format!("use `{b}` for every input")),
                );
                ok = false;
                continue;
            }
            Some(_) => {}
            None => batch = Some((symbol.clone(), dims[0].span)),
        }
        let mut env = DimEnv::default();
        env.symbols.insert(symbol.clone(), Dim::Batch);
        let mut shape = vec![Dim::Batch];
        for dim in &dims[1..] {
            match el.eval_dim(dim, &mut env) {
                Some(Dim::Fixed(n)) => shape.push(Dim::Fixed(n)),
                Some(Dim::Batch) => {
                    el.error(
                        Diagnostic::error(
                            "E0201",
                            "the batch dimension comes first, and only once",
                        )
                        .primary(dim.span, format!("`{symbol}` again"))
                        .help(shape_help),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        if !ok {
            continue;
        }
        let tensor_type = TensorType {
            dtype,
            shape: Shape(shape),
        };
        let id = el
            .graph
            .input(&param.name.name, tensor_type, Some(param.span));
        inputs.push((
            param.name.name.clone(),
            Tensor {
                id,
                origin: ty.span,
            },
            param.span,
        ));
    }
    if !ok {
        return None;
    }
    Some((batch?.0, inputs))
}

/// One body line: a layer or function is applied to the flowing value; a tensor replaces it.
fn flow(el: &mut Elab, value: Value, span: Span, current: Option<&(Value, Span)>) -> Option<Value> {
    match value {
        Value::Tensor(_) => Some(value),
        Value::Tuple(ref items) if items.iter().all(|v| matches!(v, Value::Tensor(_))) => {
            Some(value)
        }
        Value::Func(_) if matches!(current, Some((Value::Error, _))) => None,
        Value::Func(func) => {
            let Some((Value::Tensor(input), input_span)) = current else {
                let detail = match current {
                    None => "this model has several inputs, so no single value flows into a layer",
                    Some(_) => "the previous line did not produce a single tensor",
                };
                el.error(
                    Diagnostic::error("E0219", "a layer here needs a single value to apply to")
                        .primary(span, detail)
                        .help("apply it explicitly: `let h = dense(64, relu)(x)`"),
                );
                return None;
            };
            if el.graph.node(input.id).op == Op::Softmax {
                el.ck.diags.push(
                    Diagnostic::warning("W0104", "a layer after a softmax")
                        .primary(span, "this layer reads probabilities")
                        .secondary(*input_span, "this line ends in softmax")
                        .help("softmax belongs on the last layer; use `linear` or `relu` here"),
                );
            }
            // A bare function (`relu`) becomes a layer so it appears in the summary.
            let layer = match func {
                Func::Layer(layer) => layer,
                Func::Builtin(name) => std::rc::Rc::new(LayerInstance {
                    kind: LayerKind::Builtin {
                        name,
                        args: Vec::new(),
                    },
                    span,
                    built: Default::default(),
                }),
                other => {
                    let value = el.call(
                        Value::Func(other),
                        span,
                        vec![ArgValue {
                            name: None,
                            value: Value::Tensor(*input),
                            span: *input_span,
                        }],
                        span,
                    );
                    return (!matches!(value, Value::Error)).then_some(value);
                }
            };
            let value = el.apply_layer(&layer, vec![(*input, *input_span)], span);
            (!matches!(value, Value::Error)).then_some(value)
        }
        Value::Error => None,
        other => {
            el.error(
                Diagnostic::error("E0309", "a model line must be a layer or a tensor")
                    .primary(span, format!("found {}", other.kind_name()))
                    .help("write a layer such as `dense(64, relu)` or an expression of tensors"),
            );
            None
        }
    }
}

/// Checks what flows out against the declared outputs.
fn outputs(el: &mut Elab, decl: &ast::ModelDecl, result: Value, span: Span) -> Option<Vec<Tensor>> {
    let produced: Vec<Tensor> = match &result {
        Value::Tensor(t) => vec![*t],
        Value::Tuple(items) => items
            .iter()
            .filter_map(|v| match v {
                Value::Tensor(t) => Some(*t),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    if produced.len() != decl.outputs.len() {
        el.error(
            Diagnostic::error(
                "E0218",
                format!(
                    "model `{}` declares {} output{} but its body produces {}",
                    decl.name.name,
                    decl.outputs.len(),
                    if decl.outputs.len() == 1 { "" } else { "s" },
                    produced.len()
                ),
            )
            .primary(
                span,
                format!(
                    "{} value{} here",
                    produced.len(),
                    if produced.len() == 1 { "" } else { "s" }
                ),
            )
            .secondary(decl.outputs[0].span, "declared here")
            .help("end the body with a tuple `(a, b)` for several outputs"),
        );
        return None;
    }
    let mut env = DimEnv::default();
    env.symbols.insert(el.batch.clone(), Dim::Batch);
    let mut ok = true;
    // Output types are fully known, like inputs: numbers, constants and the batch symbol.
    for ty in &decl.outputs {
        for (i, dim) in ty.dims.iter().flatten().enumerate() {
            let ast::DimKind::Symbol(symbol) = &dim.kind else {
                continue;
            };
            if *symbol == el.batch || el.number_in_scope(symbol).is_some() {
                continue;
            }
            ok = false;
            let b = el.batch.clone();
            el.error(if i == 0 {
                Diagnostic::error(
                    "E0208",
                    "the output's batch dimension differs from the input's",
                )
                .primary(dim.span, format!("`{symbol}` here"))
                .secondary(
                    decl.params[0].ty.as_ref().map_or(decl.span, |t| t.span),
                    format!("the input's batch dimension is `{b}`"),
                )
                .help(format!("use `{b}`, the batch dimension of the input"))
            } else {
                Diagnostic::error(
                    "E0216",
                    format!("the dimension `{symbol}` is not known here"),
                )
                .primary(dim.span, "a model's output sizes must be known")
                .help(format!("write a number, or declare `let {symbol} = ...`"))
            });
        }
    }
    if !ok {
        return None;
    }
    for (t, ty) in produced.iter().zip(&decl.outputs) {
        let before = el.ck.diags.len();
        if !el.check_declared(&Value::Tensor(*t), span, ty, &mut env, "the model's output") {
            ok = false;
            // Say which layer produced the value and suggest the fix.
            let have = el.ty(*t).clone();
            let text = type_text(&have, &el.batch);
            if let Some(d) = el.ck.diags.get_mut(before) {
                d.code = "E0204";
                d.message =
                    "the model's last layer does not produce its declared output".to_string();
                let written: Vec<String> = ty
                    .dims
                    .iter()
                    .flatten()
                    .map(crate::syntax::print::dim_text)
                    .collect();
                d.labels = vec![crate::diag::Label {
                    span: ty.span,
                    message: format!(
                        "the model declares {}[{}]",
                        ty.dtype.name,
                        written.join(", ")
                    ),
                    primary: false,
                }];
                d.labels.insert(
                    0,
                    crate::diag::Label {
                        span: t.origin,
                        message: format!("this layer produces {text}"),
                        primary: true,
                    },
                );
                if let (Some(ast::DimKind::Literal(want)), Some(Dim::Fixed(_))) = (
                    ty.dims.as_ref().and_then(|d| d.last()).map(|d| &d.kind),
                    have.shape.dims().last(),
                ) && have.shape.rank() == ty.dims.as_ref().map_or(0, Vec::len)
                {
                    d.help = Some(format!(
                        "change the units of the last dense layer to {want}"
                    ));
                } else if have.shape.rank() > 2 && ty.dims.as_ref().map_or(0, Vec::len) == 2 {
                    d.help = Some("insert `flatten()` before the last dense layer".into());
                }
            }
        }
    }
    ok.then_some(produced)
}

/// E0840 for the first tensor whose size per sample is past `types::MAX_ELEMENTS` (or overflows
/// a machine word): such a model has no size that memory could be planned or counted in.
fn sizes_fit(ck: &mut Checker, graph: &crate::ir::graph::Graph, batch: &str) -> bool {
    let oversized = graph.nodes.iter().find(|node| {
        node.ty
            .shape
            .checked_numel(1)
            .is_none_or(|n| n > types::MAX_ELEMENTS)
    });
    let Some(node) = oversized else {
        return true;
    };
    let dims: Vec<String> = node
        .ty
        .shape
        .dims()
        .iter()
        .filter_map(|d| match d {
            Dim::Fixed(n) => Some(n.to_string()),
            Dim::Batch => None,
        })
        .collect();
    let elements = node
        .ty
        .shape
        .dims()
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n as u128,
            Dim::Batch => 1,
        })
        .try_fold(1u128, |a, b| a.checked_mul(b))
        .map_or_else(|| "more than 2^128".to_string(), |n| n.to_string());
    let per = if node.ty.shape.has_batch() {
        " per sample"
    } else {
        ""
    };
    ck.diags.push(
        Diagnostic::error("E0840", "a tensor too large for any machine")
            .primary(
                node.span.unwrap_or_default(),
                format!(
                    "this is {}, {} = {elements} elements{per}",
                    type_text(&node.ty, batch),
                    dims.join(" × ")
                ),
            )
            .note(format!(
                "a tensor may hold at most 2^45 elements{per} (128 TiB of f32, a whole 64-bit \
                 address space)"
            ))
            .help("check the dimensions: one of them is probably far larger than intended"),
    );
    false
}

/// W0106 for parameters the outputs do not depend on: training would give them a zero
/// gradient and never change them.
fn unreachable_params(ck: &mut Checker, graph: &crate::ir::graph::Graph) {
    let mut reached = vec![false; graph.nodes.len()];
    for (_, output) in &graph.outputs {
        reached[output.index()] = true;
    }
    for index in (0..graph.nodes.len()).rev() {
        if reached[index] {
            for input in &graph.nodes[index].inputs {
                reached[input.index()] = true;
            }
        }
    }
    for (index, node) in graph.nodes.iter().enumerate() {
        if let (Op::Param { index: param }, false) = (&node.op, reached[index]) {
            let name = &graph.params[*param].name;
            ck.diags.push(
                Diagnostic::warning(
                    "W0106",
                    format!("parameter `{name}` does not reach the model's output"),
                )
                .primary(node.span.unwrap_or_default(), "created here")
                .note("its gradient is zero, so training never changes it")
                .help("use the layer's result, or remove the layer"),
            );
        }
    }
}

/// An output that is a softmax over one unit is 1 whatever the input (W0107): a classifier
/// with a unit too few, or a regression model with a classifier's last layer.
fn one_unit_softmax(ck: &mut Checker, graph: &crate::ir::Graph, model: &str) {
    for &(_, output) in &graph.outputs {
        let node = graph.node(output);
        let one_unit = node.ty.shape.dims().last() == Some(&Dim::Fixed(1));
        if node.op != Op::Softmax || !one_unit {
            continue;
        }
        let Some(span) = node.span else { continue };
        ck.diags.push(
            Diagnostic::warning(
                "W0107",
                format!("`{model}` ends in a softmax over one unit"),
            )
            .primary(span, "a softmax of one value is always 1.0")
            .note("softmax makes several scores into probabilities that sum to 1")
            .help(
                "for two classes end in `dense(1, sigmoid)` with `binary_crossentropy`; for \
                     N classes, `dense(N, softmax)`; for a real-valued target, `dense(1)` with \
                     `mean_squared_error`",
            ),
        );
    }
}
