//! The built-in functions and layers of the language, each checked against the shapes it is
//! given and lowered to IR ops on the spot. A function whose first argument is a tensor, called
//! without one (`flatten()`, `dropout(0.5)`, `leaky_relu(alpha: 0.1)`), is a layer waiting for
//! its input — which is how sequential model bodies use them.

use super::elab::Elab;
use super::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::{Init, ParamInfo, ValueId};
use crate::ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use crate::ir::shape::{DType, Dim, Shape};
use crate::syntax::ast;
use std::rc::Rc;

/// Every built-in name, for lookup and "did you mean".
pub const NAMES: &[&str] = &[
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "abs",
    "softplus",
    "gelu",
    "square",
    "softmax",
    "log_softmax",
    "leaky_relu",
    "elu",
    "maximum",
    "minimum",
    "pow",
    "greater",
    "less",
    "greater_equal",
    "less_equal",
    "equal",
    "not_equal",
    "where",
    "sum",
    "mean",
    "max",
    "reshape",
    "flatten",
    "transpose",
    "concat",
    "slice",
    "matmul",
    "dropout",
    "grad",
    "dense",
    "embedding",
];

/// Layers with parameters: constructors, never called on a tensor directly.
const LAYERS: &[&str] = &["dense", "embedding"];

/// Keras's initializer names, for `param NAME: TYPE = INIT`.
pub const INITIALIZERS: &[&str] = &[
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "zeros",
    "ones",
    "normal",
    "uniform",
    "constant",
];

fn params_of(name: &str) -> &'static [&'static str] {
    match name {
        "softmax" | "log_softmax" => &["x", "axis"],
        "leaky_relu" | "elu" => &["x", "alpha"],
        "maximum" | "minimum" | "pow" | "greater" | "less" | "greater_equal" | "less_equal"
        | "equal" | "not_equal" | "matmul" => &["a", "b"],
        "where" => &["condition", "a", "b"],
        "sum" | "mean" | "max" => &["x", "axis", "keepdims"],
        "reshape" => &["x", "shape"],
        "transpose" => &["x", "perm"],
        "concat" => &["values", "axis"],
        "slice" => &["x", "axis", "start", "end"],
        "dropout" => &["x", "rate", "seed"],
        "dense" => &["units", "activation", "use_bias"],
        "embedding" => &["input_dim", "output_dim"],
        "grad" => &["f", "wrt"],
        _ => &["x"],
    }
}

fn unary_op(name: &str) -> Option<UnaryOp> {
    Some(match name {
        "relu" => UnaryOp::Relu,
        "sigmoid" => UnaryOp::Sigmoid,
        "tanh" => UnaryOp::Tanh,
        "exp" => UnaryOp::Exp,
        "log" => UnaryOp::Log,
        "sqrt" => UnaryOp::Sqrt,
        "rsqrt" => UnaryOp::Rsqrt,
        "abs" => UnaryOp::Abs,
        "softplus" => UnaryOp::Softplus,
        "gelu" => UnaryOp::Gelu,
        _ => return None,
    })
}

fn binary_op(name: &str) -> Option<BinaryOp> {
    Some(match name {
        "maximum" => BinaryOp::Max,
        "minimum" => BinaryOp::Min,
        "pow" => BinaryOp::Pow,
        "greater" => BinaryOp::Greater,
        "less" => BinaryOp::Less,
        "greater_equal" => BinaryOp::GreaterEqual,
        "less_equal" => BinaryOp::LessEqual,
        "equal" => BinaryOp::Equal,
        "not_equal" => BinaryOp::NotEqual,
        _ => return None,
    })
}

/// Calls built-in `name`.
pub fn call(el: &mut Elab, name: &'static str, args: Vec<ArgValue>, span: Span) -> Value {
    if super::prompt::CONSTRUCTORS.contains(&name) {
        return el.construct(name, args, span);
    }
    let params = params_of(name);
    let args = if el.prompt.is_some() {
        literal_args(el, params, args)
    } else {
        args
    };
    let tensor_first = params[0] == "x";
    let has_tensor = match args.first() {
        Some(ArgValue {
            name: None, value, ..
        }) => matches!(value, Value::Tensor(_)),
        _ => args
            .iter()
            .any(|a| a.name.as_ref().is_some_and(|n| n.name == "x")),
    };
    if LAYERS.contains(&name) || (tensor_first && !has_tensor) {
        // Validate the configuration now, so mistakes point at the configuring call.
        let config: Vec<&str> = if LAYERS.contains(&name) {
            params.to_vec()
        } else {
            params[1..].to_vec()
        };
        let positional = args.iter().filter(|a| a.name.is_none()).count();
        if tensor_first && positional > config.len() {
            let arg = &args[0];
            el.error(
                Diagnostic::error("E0303", format!("`{name}` takes a tensor first"))
                    .primary(arg.span, format!("found {}", arg.value.kind_name()))
                    .help(format!(
                        "on a line of its own, `{name}` applies to the value flowing through the model; `dense(64, {name})` makes it a layer's activation"
                    )),
            );
            return Value::Error;
        }
        let Some(slots) = el.bind_args(name, args.clone(), &config) else {
            return Value::Error;
        };
        if !valid_config(el, name, slots, span) {
            return Value::Error;
        }
        return Value::Func(Func::Layer(Rc::new(LayerInstance {
            kind: LayerKind::Builtin { name, args },
            span,
            built: Default::default(),
        })));
    }
    let Some(slots) = el.bind_args(name, args, params) else {
        return Value::Error;
    };
    let mut slots: Vec<Option<ArgValue>> = slots;
    let mut take = |i: usize| slots.get_mut(i).and_then(Option::take);
    let first = take(0);
    let Some(first) = first else {
        el.missing(name, params[0], span);
        return Value::Error;
    };
    let result = if let Some(op) = unary_op(name) {
        tensor_arg(el, &first).map(|x| el.unary(op, x, span))
    } else if let Some(op) = binary_op(name) {
        let Some(second) = take(1) else {
            el.missing(name, params[1], span);
            return Value::Error;
        };
        let (Some(a), Some(b)) = (
            el.operand(&first.value, first.span),
            el.operand(&second.value, second.span),
        ) else {
            return Value::Error;
        };
        el.elementwise(op, &[(a, first.span), (b, second.span)], span, name)
            .map(|id| el.tensor(id, span))
    } else {
        match name {
            "linear" => tensor_arg(el, &first).map(Value::Tensor),
            "square" => tensor_arg(el, &first).and_then(|x| {
                el.elementwise(
                    BinaryOp::Mul,
                    &[(x, first.span), (x, first.span)],
                    span,
                    "square",
                )
                .map(|id| el.tensor(id, span))
            }),
            "softmax" | "log_softmax" => {
                let axis = take(1);
                softmax(el, name, &first, axis, span)
            }
            "leaky_relu" | "elu" => {
                let default = if name == "elu" { 1.0 } else { 0.2 };
                let alpha = number_arg(el, take(1), default);
                match (tensor_arg(el, &first), alpha) {
                    (Some(x), Some(alpha)) => {
                        let alpha = alpha as f32;
                        let op = if name == "elu" {
                            Op::Elu { alpha }
                        } else {
                            Op::LeakyRelu { alpha }
                        };
                        el.add(op, &[x.id], span).map(|id| el.tensor(id, span))
                    }
                    _ => None,
                }
            }
            "where" => {
                let (Some(b), Some(c)) = (take(1), take(2)) else {
                    el.missing(name, "a and b", span);
                    return Value::Error;
                };
                select(el, &first, &b, &c, span)
            }
            "sum" | "mean" | "max" => {
                let (axis, keepdims) = (take(1), take(2));
                reduce(el, name, &first, axis, keepdims, span)
            }
            "reshape" => {
                let Some(shape) = take(1) else {
                    el.missing(name, "shape", span);
                    return Value::Error;
                };
                reshape(el, &first, &shape, span)
            }
            "flatten" => flatten(el, &first, span),
            "transpose" => {
                let perm = take(1);
                transpose(el, &first, perm, span)
            }
            "concat" => {
                let axis = take(1);
                concat(el, &first, axis, span)
            }
            "slice" => {
                let (axis, start, end) = (take(1), take(2), take(3));
                slice(el, &first, axis, start, end, span)
            }
            "matmul" => {
                let Some(second) = take(1) else {
                    el.missing(name, "b", span);
                    return Value::Error;
                };
                match (tensor_arg(el, &first), tensor_arg(el, &second)) {
                    (Some(a), Some(b)) => el
                        .matmul((a, first.span), (b, second.span), span)
                        .map(|id| el.tensor(id, span)),
                    _ => None,
                }
            }
            "dropout" => {
                let (rate, seed) = (take(1), take(2));
                dropout(el, &first, rate, seed, span)
            }
            "grad" => {
                let wrt = match take(1) {
                    None => Some(0),
                    Some(arg) => match arg.value {
                        Value::Int(n) if n >= 0 => Some(n as usize),
                        ref other => {
                            el.wrong_kind(other, arg.span, "an argument position (0, 1, …)");
                            None
                        }
                    },
                };
                match (&first.value, wrt) {
                    (Value::Func(_), Some(wrt)) => {
                        Some(Value::Func(Func::Grad(Box::new(first.value.clone()), wrt)))
                    }
                    (other, Some(_)) => {
                        el.wrong_kind(other, first.span, "a function, e.g. `grad(loss_fn)`");
                        None
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    };
    result.unwrap_or(Value::Error)
}

/// Checks a layer's scalar configuration where it is written, so a mistake is reported even
/// when an earlier error stops the layer from being applied.
fn valid_config(el: &mut Elab, name: &str, slots: Vec<Option<ArgValue>>, span: Span) -> bool {
    let mut slots = slots.into_iter();
    match name {
        "dense" => positive(el, slots.next().flatten(), name, "units", span).is_some(),
        "embedding" => {
            let a = positive(el, slots.next().flatten(), name, "input_dim", span);
            let b = positive(el, slots.next().flatten(), name, "output_dim", span);
            a.is_some() && b.is_some()
        }
        "dropout" => match slots.next().flatten() {
            None => {
                el.missing(name, "rate", span);
                false
            }
            Some(rate) => dropout_rate(el, &rate).is_some(),
        },
        _ => true,
    }
}

fn dropout_rate(el: &mut Elab, arg: &ArgValue) -> Option<f64> {
    let rate = number_arg(el, Some(arg.clone()), 0.0)?;
    if (0.0..1.0).contains(&rate) {
        return Some(rate);
    }
    el.error(
        Diagnostic::error("E0303", "`rate` must be in [0, 1)")
            .primary(arg.span, format!("found {rate}"))
            .help("the fraction of inputs to drop, e.g. `dropout(0.5)`"),
    );
    None
}

/// At the prompt, lists of numbers given for a tensor parameter are tensor literals:
/// `relu([-1, 2])`, `maximum(x, [0, 1])`.
fn literal_args(el: &mut Elab, params: &[&str], args: Vec<ArgValue>) -> Vec<ArgValue> {
    let mut position = 0;
    args.into_iter()
        .map(|mut arg| {
            let param = match &arg.name {
                Some(name) => Some(name.name.as_str()),
                None => {
                    position += 1;
                    params.get(position - 1).copied()
                }
            };
            if matches!(param, Some("x" | "a" | "b" | "condition")) {
                arg.value = el.tensor_literal(arg.value, arg.span);
            }
            arg
        })
        .collect()
}

fn tensor_arg(el: &mut Elab, arg: &ArgValue) -> Option<Tensor> {
    match &arg.value {
        Value::Tensor(t) => el.float_tensor(*t, arg.span),
        other => {
            el.wrong_kind(other, arg.span, "a tensor");
            None
        }
    }
}

fn number_arg(el: &mut Elab, arg: Option<ArgValue>, default: f64) -> Option<f64> {
    match arg {
        None => Some(default),
        Some(arg) => match arg.value.as_number() {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                el.wrong_kind(&arg.value, arg.span, "a number");
                None
            }
        },
    }
}

fn int_arg(el: &mut Elab, arg: &ArgValue) -> Option<i64> {
    match arg.value {
        Value::Int(n) => Some(n),
        ref other => {
            el.wrong_kind(other, arg.span, "a whole number");
            None
        }
    }
}

/// A possibly negative axis (`-1` is the last) checked against `rank`.
fn axis(el: &mut Elab, arg: &ArgValue, x: Tensor, rank: usize) -> Option<usize> {
    let n = int_arg(el, arg)?;
    let resolved = if n < 0 { rank as i64 + n } else { n };
    if (0..rank as i64).contains(&resolved) {
        return Some(resolved as usize);
    }
    let text = el.text(x);
    el.error(
        Diagnostic::error("E0214", format!("axis {n} is out of range for {text}"))
            .primary(
                arg.span,
                format!(
                    "a tensor of rank {rank} has axes 0..{} (or -{rank}..-1)",
                    rank.saturating_sub(1)
                ),
            )
            .secondary(x.origin, format!("this is {text}")),
    );
    None
}

fn batch_axis_error(el: &mut Elab, what: &str, span: Span, x: Tensor) {
    let text = el.text(x);
    el.error(
        Diagnostic::error("E0215", format!("{what} cannot use the batch dimension"))
            .primary(span, format!("this would touch `{}`", el.batch))
            .secondary(x.origin, format!("this is {text}"))
            .note("samples are independent: the batch dimension stays first and whole"),
    );
}

fn softmax(
    el: &mut Elab,
    name: &str,
    x: &ArgValue,
    axis_arg: Option<ArgValue>,
    span: Span,
) -> Option<Value> {
    let t = tensor_arg(el, x)?;
    let rank = el.ty(t).shape.rank();
    if rank == 0 {
        el.wrong_kind(&x.value, x.span, "a tensor with at least one dimension");
        return None;
    }
    if let Some(arg) = axis_arg {
        let a = axis(el, &arg, t, rank)?;
        if a != rank - 1 {
            el.error(
                Diagnostic::error("E0214", format!("`{name}` works along the last axis"))
                    .primary(arg.span, format!("axis {a} of {rank}"))
                    .help("transpose the axis to the end first"),
            );
            return None;
        }
    }
    let op = if name == "softmax" {
        Op::Softmax
    } else {
        Op::LogSoftmax
    };
    el.add(op, &[t.id], span).map(|id| el.tensor(id, span))
}

fn select(el: &mut Elab, cond: &ArgValue, a: &ArgValue, b: &ArgValue, span: Span) -> Option<Value> {
    let c = el.operand(&cond.value, cond.span)?;
    let x = el.operand(&a.value, a.span)?;
    let y = el.operand(&b.value, b.span)?;
    let shapes = [
        el.ty(c).shape.clone(),
        el.ty(x).shape.clone(),
        el.ty(y).shape.clone(),
    ];
    if shapes[0]
        .broadcast(&shapes[1])
        .and_then(|s| s.broadcast(&shapes[2]))
        .is_none()
    {
        let texts = [el.text(c), el.text(x), el.text(y)];
        el.error(
            Diagnostic::error("E0209", "`where` needs shapes that broadcast")
                .primary(span, "these shapes do not broadcast")
                .secondary(cond.span, format!("this is {}", texts[0]))
                .secondary(a.span, format!("this is {}", texts[1]))
                .secondary(b.span, format!("this is {}", texts[2])),
        );
        return None;
    }
    el.add(Op::Select, &[c.id, x.id, y.id], span)
        .map(|id| el.tensor(id, span))
}

fn reduce(
    el: &mut Elab,
    name: &str,
    x: &ArgValue,
    axis_arg: Option<ArgValue>,
    keepdims: Option<ArgValue>,
    span: Span,
) -> Option<Value> {
    let t = tensor_arg(el, x)?;
    let rank = el.ty(t).shape.rank();
    let mut axes = match &axis_arg {
        None => (0..rank).collect(),
        Some(arg) => match &arg.value {
            Value::List(items) => {
                let mut out = Vec::new();
                for item in items {
                    let item = ArgValue {
                        name: None,
                        value: item.clone(),
                        span: arg.span,
                    };
                    out.push(axis(el, &item, t, rank)?);
                }
                out
            }
            _ => vec![axis(el, arg, t, rank)?],
        },
    };
    axes.sort_unstable();
    let before = axes.len();
    axes.dedup();
    if axes.len() != before {
        el.error(
            Diagnostic::error("E0214", "an axis is listed twice")
                .primary(axis_arg.map_or(span, |a| a.span), "repeated axis"),
        );
        return None;
    }
    let keep_dims = match keepdims {
        None => false,
        Some(arg) => match arg.value {
            Value::Bool(b) => b,
            ref other => {
                el.wrong_kind(other, arg.span, "`true` or `false`");
                return None;
            }
        },
    };
    let kind = match name {
        "sum" => ReduceKind::Sum,
        "mean" => ReduceKind::Mean,
        _ => ReduceKind::Max,
    };
    el.add(
        Op::Reduce {
            kind,
            axes,
            keep_dims,
        },
        &[t.id],
        span,
    )
    .map(|id| el.tensor(id, span))
}

/// `reshape(x, [7, 7, 64])`: the target excludes the batch dimension when `x` has one (as
/// Keras's `Reshape`); one entry may be `-1`, inferred from the element count.
fn reshape(el: &mut Elab, x: &ArgValue, shape: &ArgValue, span: Span) -> Option<Value> {
    let t = tensor_arg(el, x)?;
    let from = el.ty(t).shape.clone();
    let Value::List(items) = &shape.value else {
        el.wrong_kind(
            &shape.value,
            shape.span,
            "a list of sizes such as `[7, 7, 64]`",
        );
        return None;
    };
    let total = super::types::per_sample(&from);
    let mut dims = Vec::new();
    let mut infer = None;
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Int(-1) if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            Value::Int(n) if *n > 0 && *n as u64 <= super::types::MAX_DIM as u64 => {
                dims.push(*n as usize)
            }
            Value::Int(-1) => {
                el.error(
                    Diagnostic::error("E0303", "only one size of a reshape can be -1")
                        .primary(shape.span, "more than one -1")
                        .help("give every size but one"),
                );
                return None;
            }
            other => {
                el.wrong_kind(other, shape.span, "positive sizes (and at most one -1)");
                return None;
            }
        }
    }
    let known: usize = dims.iter().fold(1usize, |a, &b| a.saturating_mul(b));
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            let text = el.text(t);
            el.error(
                Diagnostic::error(
                    "E0212",
                    format!("cannot infer the `-1` in a reshape of {text}"),
                )
                .primary(
                    shape.span,
                    format!("{total} elements per sample are not a multiple of {known}"),
                )
                .secondary(t.origin, format!("this is {text}")),
            );
            return None;
        }
        dims[i] = total / known;
    }
    let count: usize = dims.iter().fold(1usize, |a, &b| a.saturating_mul(b));
    if count != total {
        let text = el.text(t);
        let batch = if from.has_batch() { " per sample" } else { "" };
        el.error(
            Diagnostic::error("E0212", format!("reshape must keep the number of elements: {text} has {total}{batch}, the target {count}"))
                .primary(shape.span, format!("{count} elements"))
                .secondary(t.origin, format!("this is {text}"))
                .help(if from.has_batch() {
                    "the target shape leaves out the batch dimension, which is kept".to_string()
                } else {
                    format!("pick sizes whose product is {total}")
                }),
        );
        return None;
    }
    let mut target: Vec<Dim> = Vec::new();
    if from.has_batch() {
        if from.dims()[0] != Dim::Batch {
            batch_axis_error(el, "reshape", span, t);
            return None;
        }
        target.push(Dim::Batch);
    }
    target.extend(dims.into_iter().map(Dim::Fixed));
    reshape_to(el, t, Shape(target), span)
}

fn reshape_to(el: &mut Elab, t: Tensor, shape: Shape, span: Span) -> Option<Value> {
    let ty = crate::ir::shape::TensorType {
        dtype: el.ty(t).dtype,
        shape,
    };
    let id = el.graph.push_node(crate::ir::graph::Node {
        op: Op::Reshape,
        inputs: vec![t.id],
        ty,
        span: Some(span),
    });
    Some(el.tensor(id, span))
}

/// `flatten(x)`: everything but the batch dimension in one axis, as Keras's `Flatten`.
fn flatten(el: &mut Elab, x: &ArgValue, span: Span) -> Option<Value> {
    let t = tensor_arg(el, x)?;
    let from = el.ty(t).shape.clone();
    let total = super::types::per_sample(&from);
    let shape = if from.has_batch() {
        if from.dims()[0] != Dim::Batch {
            batch_axis_error(el, "flatten", span, t);
            return None;
        }
        Shape(vec![Dim::Batch, Dim::Fixed(total)])
    } else {
        Shape::fixed(&[total])
    };
    if shape == from {
        return Some(Value::Tensor(t));
    }
    reshape_to(el, t, shape, span)
}

fn transpose(el: &mut Elab, x: &ArgValue, perm_arg: Option<ArgValue>, span: Span) -> Option<Value> {
    let t = tensor_arg(el, x)?;
    let from = el.ty(t).shape.clone();
    let rank = from.rank();
    let perm: Vec<usize> = match &perm_arg {
        None if from.has_batch() => {
            // Reversing would move the batch: swap the last two axes instead (the usual intent).
            if rank < 3 {
                let text = el.text(t);
                el.error(
                    Diagnostic::error(
                        "E0215",
                        format!("transposing {text} would move the batch dimension"),
                    )
                    .primary(span, "transposes every axis")
                    .secondary(t.origin, format!("this is {text}"))
                    .help("transpose the parameter instead, or give `perm`"),
                );
                return None;
            }
            let mut p: Vec<usize> = (0..rank).collect();
            p.swap(rank - 1, rank - 2);
            p
        }
        None => (0..rank).rev().collect(),
        Some(arg) => {
            let Value::List(items) = &arg.value else {
                el.wrong_kind(&arg.value, arg.span, "a list of axes such as `[0, 2, 1]`");
                return None;
            };
            let mut p = Vec::new();
            for item in items {
                let item = ArgValue {
                    name: None,
                    value: item.clone(),
                    span: arg.span,
                };
                p.push(axis(el, &item, t, rank)?);
            }
            let mut sorted = p.clone();
            sorted.sort_unstable();
            if sorted != (0..rank).collect::<Vec<_>>() {
                el.error(
                    Diagnostic::error(
                        "E0214",
                        format!("`perm` must list each of the {rank} axes once"),
                    )
                    .primary(arg.span, "not a permutation"),
                );
                return None;
            }
            if from.has_batch() && p[0] != 0 {
                batch_axis_error(el, "transpose", arg.span, t);
                return None;
            }
            p
        }
    };
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Some(Value::Tensor(t));
    }
    el.add(Op::Transpose { perm }, &[t.id], span)
        .map(|id| el.tensor(id, span))
}

fn concat(
    el: &mut Elab,
    values: &ArgValue,
    axis_arg: Option<ArgValue>,
    span: Span,
) -> Option<Value> {
    let items = match &values.value {
        Value::List(items) | Value::Tuple(items) => items.clone(),
        other => {
            el.wrong_kind(other, values.span, "a list of tensors such as `[a, b]`");
            return None;
        }
    };
    let mut tensors = Vec::new();
    for item in &items {
        let arg = ArgValue {
            name: None,
            value: item.clone(),
            span: values.span,
        };
        tensors.push(tensor_arg(el, &arg)?);
    }
    let Some(&first) = tensors.first() else {
        el.wrong_kind(&values.value, values.span, "at least one tensor");
        return None;
    };
    let rank = el.ty(first).shape.rank();
    let a = match &axis_arg {
        Some(arg) => axis(el, arg, first, rank)?,
        None if rank > 0 => rank - 1,
        None => {
            el.wrong_kind(
                &values.value,
                values.span,
                "tensors with at least one dimension",
            );
            return None;
        }
    };
    let base = el.ty(first).shape.clone();
    if base.dims()[a] == Dim::Batch {
        batch_axis_error(el, "concat", axis_arg.map_or(span, |s| s.span), first);
        return None;
    }
    for &t in &tensors[1..] {
        let shape = el.ty(t).shape.clone();
        let same = shape.rank() == rank
            && (0..rank).all(|i| i == a || shape.dims()[i] == base.dims()[i])
            && matches!(shape.dims()[a], Dim::Fixed(_));
        if !same {
            let (ta, tb) = (el.text(first), el.text(t));
            el.error(
                Diagnostic::error("E0213", format!("`concat` along axis {a} needs the other dimensions equal, found {ta} and {tb}"))
                    .primary(values.span, "these do not line up")
                    .secondary(first.origin, format!("this is {ta}"))
                    .secondary(t.origin, format!("this is {tb}")),
            );
            return None;
        }
    }
    if tensors.len() == 1 {
        return Some(Value::Tensor(first));
    }
    let ids: Vec<ValueId> = tensors.iter().map(|t| t.id).collect();
    el.add(Op::Concat { axis: a }, &ids, span)
        .map(|id| el.tensor(id, span))
}

fn slice(
    el: &mut Elab,
    x: &ArgValue,
    axis_arg: Option<ArgValue>,
    start: Option<ArgValue>,
    end: Option<ArgValue>,
    span: Span,
) -> Option<Value> {
    let t = tensor_arg(el, x)?;
    let shape = el.ty(t).shape.clone();
    let (Some(axis_arg), Some(start), Some(end)) = (axis_arg, start, end) else {
        el.missing("slice", "axis, start and end", span);
        return None;
    };
    let a = axis(el, &axis_arg, t, shape.rank())?;
    let Dim::Fixed(size) = shape.dims()[a] else {
        batch_axis_error(el, "slice", axis_arg.span, t);
        return None;
    };
    let (s, e) = (int_arg(el, &start)?, int_arg(el, &end)?);
    let resolve = |n: i64| if n < 0 { size as i64 + n } else { n };
    let (s, e) = (resolve(s), resolve(e));
    if !(0 <= s && s < e && e <= size as i64) {
        let text = el.text(t);
        el.error(
            Diagnostic::error(
                "E0214",
                format!("slice {s}..{e} is not inside axis {a} of {text}"),
            )
            .primary(
                start.span.join(end.span),
                format!("axis {a} has {size} entries; need 0 <= start < end <= {size}"),
            )
            .secondary(t.origin, format!("this is {text}")),
        );
        return None;
    }
    el.add(
        Op::Slice {
            axis: a,
            start: s as usize,
            end: e as usize,
        },
        &[t.id],
        span,
    )
    .map(|id| el.tensor(id, span))
}

fn dropout(
    el: &mut Elab,
    x: &ArgValue,
    rate: Option<ArgValue>,
    seed: Option<ArgValue>,
    span: Span,
) -> Option<Value> {
    let t = tensor_arg(el, x)?;
    let Some(rate_arg) = rate else {
        el.missing("dropout", "rate", span);
        return None;
    };
    let rate = dropout_rate(el, &rate_arg)?;
    let seed = match seed {
        None => 0,
        Some(arg) => match arg.value {
            Value::Int(n) if n >= 0 => n as u64,
            ref other => {
                el.wrong_kind(other, arg.span, "a non-negative whole number");
                return None;
            }
        },
    };
    if rate == 0.0 {
        return Some(Value::Tensor(t));
    }
    let step = el.step_input(span);
    el.add(
        Op::Dropout {
            rate: rate as f32,
            seed,
        },
        &[t.id, step],
        span,
    )
    .map(|id| el.tensor(id, span))
}

// ----- layers -----

/// Applies a configured built-in layer to its inputs.
pub fn apply_layer(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    name: &'static str,
    args: &[ArgValue],
    inputs: Vec<(Tensor, Span)>,
    span: Span,
) -> Value {
    if inputs.len() != 1 {
        el.error(
            Diagnostic::error(
                "E0305",
                format!("`{name}` takes one input, {} given", inputs.len()),
            )
            .primary(span, "applied here"),
        );
        return Value::Error;
    }
    let (x, xspan) = inputs[0];
    let result = match name {
        "dense" => dense(el, layer, args, x, xspan, span),
        "embedding" => embedding(el, layer, args, x, xspan, span),
        _ => {
            let mut call_args = vec![ArgValue {
                name: None,
                value: Value::Tensor(x),
                span: xspan,
            }];
            call_args.extend(args.iter().cloned());
            let value = call(el, name, call_args, span);
            if layer.built.borrow().is_none() {
                let layer_name = el.layer_name(name);
                *layer.built.borrow_mut() = Some(Built {
                    name: layer_name,
                    params: Vec::new(),
                });
            }
            Some(value)
        }
    };
    result.unwrap_or(Value::Error)
}

fn config_slots(el: &mut Elab, name: &str, args: &[ArgValue]) -> Option<Vec<Option<ArgValue>>> {
    el.bind_args(name, args.to_vec(), params_of(name))
}

fn positive(
    el: &mut Elab,
    arg: Option<ArgValue>,
    layer: &str,
    param: &str,
    span: Span,
) -> Option<usize> {
    let Some(arg) = arg else {
        el.missing(layer, param, span);
        return None;
    };
    match arg.value {
        Value::Int(n) if n > 0 && n <= u32::MAX as i64 => Some(n as usize),
        ref other => {
            let found = match other {
                Value::Int(n) => format!("found {n}"),
                other => format!("found {}", other.kind_name()),
            };
            el.error(
                Diagnostic::error(
                    "E0303",
                    format!("`{param}` must be a positive whole number"),
                )
                .primary(arg.span, found),
            );
            None
        }
    }
}

/// Creates a layer's parameters on its first application; later applications share them.
fn params_once(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    base: &str,
    specs: Vec<(&str, Vec<usize>, Init)>,
    span: Span,
) -> Vec<ValueId> {
    if let Some(built) = layer.built.borrow().as_ref() {
        return built.params.clone();
    }
    let layer_name = el.layer_name(base);
    let params: Vec<ValueId> = specs
        .into_iter()
        .map(|(param, shape, init)| {
            el.graph.param(
                ParamInfo {
                    name: format!("{layer_name}.{param}"),
                    shape: Shape::fixed(&shape),
                    init,
                },
                Some(span),
            )
        })
        .collect();
    *layer.built.borrow_mut() = Some(Built {
        name: layer_name,
        params: params.clone(),
    });
    params
}

/// Keras's `Dense`: `activation(x @ kernel + bias)` over the last axis, kernel glorot_uniform,
/// bias zeros.
fn dense(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    args: &[ArgValue],
    x: Tensor,
    xspan: Span,
    span: Span,
) -> Option<Value> {
    let slots = config_slots(el, "dense", args)?;
    let mut slots = slots.into_iter();
    let units = positive(el, slots.next().flatten(), "dense", "units", layer.span)?;
    let activation = slots.next().flatten();
    let use_bias = match slots.next().flatten() {
        None => true,
        Some(arg) => match arg.value {
            Value::Bool(b) => b,
            ref other => {
                el.wrong_kind(other, arg.span, "`true` or `false`");
                return None;
            }
        },
    };
    let x = el.float_tensor(x, xspan)?;
    let shape = el.ty(x).shape.clone();
    let Some(&Dim::Fixed(fan_in)) = shape.dims().last() else {
        let text = el.text(x);
        el.error(
            Diagnostic::error(
                "E0210",
                format!("`dense` needs a fixed feature dimension, found {text}"),
            )
            .primary(span, "applied here")
            .secondary(x.origin, format!("this is {text}"))
            .help("a dense layer works on the last axis; its size must be known"),
        );
        return None;
    };
    if shape.rank() < 2 {
        let text = el.text(x);
        el.error(
            Diagnostic::error(
                "E0210",
                format!("`dense` needs a batch of samples, found {text}"),
            )
            .primary(span, "applied here")
            .secondary(x.origin, format!("this is {text}")),
        );
        return None;
    }
    let mut specs = vec![(
        "kernel",
        vec![fan_in, units],
        Init::GlorotUniform {
            fan_in,
            fan_out: units,
        },
    )];
    if use_bias {
        specs.push(("bias", vec![units], Init::Zeros));
    }
    let params = params_once(el, layer, "dense", specs, layer.span);
    let kernel = *params.first()?;
    if let Some(&Dim::Fixed(built_in)) = el.graph.shape(kernel).dims().first()
        && built_in != fan_in
    {
        let text = el.text(x);
        let name = layer
            .built
            .borrow()
            .as_ref()
            .map(|b| b.name.clone())
            .unwrap_or_default();
        el.error(
            Diagnostic::error(
                "E0210",
                format!(
                    "layer `{name}` was built for {built_in} features and is applied to {text}"
                ),
            )
            .primary(span, format!("{fan_in} features here"))
            .secondary(
                layer.span,
                format!("its kernel is f32[{built_in}, {units}]"),
            )
            .help(
                "a layer applied twice shares its weights, so its inputs must have the same width",
            ),
        );
        return None;
    }
    let kernel = Tensor {
        id: kernel,
        origin: layer.span,
    };
    let mut z = el.matmul((x, xspan), (kernel, layer.span), span)?;
    if let Some(&bias) = params.get(1) {
        z = el.add(Op::Binary(BinaryOp::Add), &[z, bias], span)?;
    }
    let z = Value::Tensor(Tensor {
        id: z,
        origin: span,
    });
    match activation {
        None => Some(z),
        Some(arg) => {
            let f = match &arg.value {
                Value::Str(name) => match NAMES.iter().find(|n| **n == name.as_str()) {
                    Some(builtin) => Value::Func(Func::Builtin(builtin)),
                    None => {
                        el.error(
                            Diagnostic::error("E0105", format!("unknown activation \"{name}\""))
                                .primary(arg.span, "not a built-in function")
                                .help("write the activation's name without quotes, e.g. `relu`"),
                        );
                        return None;
                    }
                },
                Value::Func(_) => arg.value.clone(),
                other => {
                    el.wrong_kind(other, arg.span, "an activation function such as `relu`");
                    return None;
                }
            };
            let value = el.call(
                f,
                arg.span,
                vec![ArgValue {
                    name: None,
                    value: z,
                    span,
                }],
                span,
            );
            match value {
                Value::Tensor(t) => Some(Value::Tensor(Tensor {
                    id: t.id,
                    origin: span,
                })),
                Value::Error => None,
                other => {
                    el.wrong_kind(&other, arg.span, "an activation that returns a tensor");
                    None
                }
            }
        }
    }
}

/// Keras's `Embedding`: integer indices `i32[...]` pick rows of a `[input_dim, output_dim]`
/// table (uniform in ±0.05, Keras's default).
fn embedding(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    args: &[ArgValue],
    x: Tensor,
    xspan: Span,
    span: Span,
) -> Option<Value> {
    let slots = config_slots(el, "embedding", args)?;
    let mut slots = slots.into_iter();
    let input_dim = positive(
        el,
        slots.next().flatten(),
        "embedding",
        "input_dim",
        layer.span,
    )?;
    let output_dim = positive(
        el,
        slots.next().flatten(),
        "embedding",
        "output_dim",
        layer.span,
    )?;
    if el.ty(x).dtype != DType::I32 {
        let text = el.text(x);
        el.error(
            Diagnostic::error(
                "E0220",
                format!("`embedding` takes integer indices, found {text}"),
            )
            .primary(xspan, format!("this is {text}"))
            .help("declare the input as `i32[...]`"),
        );
        return None;
    }
    let specs = vec![(
        "embeddings",
        vec![input_dim, output_dim],
        Init::Uniform {
            min: -0.05,
            max: 0.05,
        },
    )];
    let params = params_once(el, layer, "embedding", specs, layer.span);
    let table = *params.first()?;
    el.add(Op::Gather, &[table, x.id], span)
        .map(|id| el.tensor(id, span))
}

/// `param w: f32[...] = INIT`: Keras's initializers; the default is glorot_uniform.
pub fn initializer(el: &mut Elab, expr: Option<&ast::Expr>, shape: &[usize]) -> Option<Init> {
    let (fan_in, fan_out) = fans(shape);
    let Some(expr) = expr else {
        return Some(Init::GlorotUniform { fan_in, fan_out });
    };
    let (name, args): (&str, &[ast::Arg]) = match &expr.kind {
        ast::ExprKind::Name(name) => (name, &[]),
        ast::ExprKind::Call { callee, args } => match &callee.kind {
            ast::ExprKind::Name(name) => (name, args.as_slice()),
            _ => ("", &[]),
        },
        ast::ExprKind::Int(_) | ast::ExprKind::Float(_) | ast::ExprKind::Unary { .. } => {
            let value = el.eval(expr);
            return match value.as_number() {
                Some(v) => Some(Init::Constant { value: v as f32 }),
                None => {
                    el.wrong_kind(&value, expr.span, "an initializer");
                    None
                }
            };
        }
        _ => ("", &[]),
    };
    let params: &[&str] = match name {
        "normal" => &["std", "mean"],
        "uniform" => &["limit"],
        "constant" => &["value"],
        _ => &[],
    };
    let evaluated = el.eval_args(args);
    let slots = el.bind_args(name, evaluated, params)?;
    let mut numbers = Vec::new();
    for slot in slots {
        numbers.push(match slot {
            None => None,
            Some(arg) => {
                let span = arg.span;
                let x = number_arg(el, Some(arg), 0.0)? as f32;
                if !x.is_finite() {
                    el.error(
                        Diagnostic::error(
                            "E0303",
                            format!("`{name}`'s arguments must lie within f32's range (±3.4e38)"),
                        )
                        .primary(span, "too large for f32"),
                    );
                    return None;
                }
                Some(x)
            }
        });
    }
    let get = |i: usize, default: f32| numbers.get(i).copied().flatten().unwrap_or(default);
    Some(match name {
        "glorot_uniform" => Init::GlorotUniform { fan_in, fan_out },
        "glorot_normal" => Init::GlorotNormal { fan_in, fan_out },
        "he_uniform" => Init::HeUniform { fan_in },
        "he_normal" => Init::HeNormal { fan_in },
        "lecun_uniform" => Init::LecunUniform { fan_in },
        "lecun_normal" => Init::LecunNormal { fan_in },
        "zeros" => Init::Zeros,
        "ones" => Init::Constant { value: 1.0 },
        "constant" => Init::Constant { value: get(0, 0.0) },
        "normal" => Init::Normal {
            mean: get(1, 0.0),
            std: get(0, 0.05),
        },
        "uniform" => {
            let limit = get(0, 0.05);
            Init::Uniform {
                min: -limit,
                max: limit,
            }
        }
        other => {
            let mut d = Diagnostic::error("E0116", format!("unknown initializer `{other}`"))
                .primary(expr.span, "not an initializer")
                .note(format!("initializers: {}", INITIALIZERS.join(", ")));
            if let Some(best) = crate::suggest::closest(other, INITIALIZERS.iter().copied()) {
                d = d.help(format!("did you mean `{best}`?"));
            }
            el.error(d);
            return None;
        }
    })
}

/// Keras's fan computation: a matrix `[in, out]`; a vector is its own fan in and out; higher
/// ranks multiply the receptive field (all but the last two axes) in.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [i, o] => (*i, *o),
        _ => {
            let receptive: usize = shape[..shape.len() - 2]
                .iter()
                .fold(1usize, |a, &b| a.saturating_mul(b));
            (
                shape[shape.len() - 2].saturating_mul(receptive),
                shape[shape.len() - 1].saturating_mul(receptive),
            )
        }
    }
}
