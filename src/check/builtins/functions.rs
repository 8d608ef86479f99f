//! The built-in activations and tensor functions: each definition, then how it is applied.

use super::{Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, rate, tensor_arg};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::ValueId;
use crate::ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use crate::ir::shape::{Dim, Shape};

pub(super) const X: ArgDef = ArgDef {
    name: "x",
    kind: ArgKind::Tensor,
    default: ArgDefault::Required,
    doc: "",
};
const A: ArgDef = ArgDef { name: "a", ..X };
const B: ArgDef = ArgDef { name: "b", ..X };
/// Along the last axis only; the argument exists so that Keras's `axis=-1` reads as written.
const LAST_AXIS: ArgDef = ArgDef {
    name: "axis",
    kind: ArgKind::Axis,
    default: ArgDefault::Int(-1),
    doc: "the last axis only",
};
const REDUCE_ARGS: &[ArgDef] = &[
    X,
    ArgDef {
        name: "axis",
        kind: ArgKind::Axes,
        default: ArgDefault::Computed("all axes"),
        doc: "",
    },
    ArgDef {
        name: "keepdims",
        kind: ArgKind::Bool,
        default: ArgDefault::Bool(false),
        doc: "",
    },
];

const fn unary(name: &'static str, doc: &'static str, op: UnaryOp) -> BuiltinDef {
    BuiltinDef {
        name,
        doc,
        args: &[X],
        params: &[],
        apply: Apply::Unary(op),
    }
}

const fn binary(name: &'static str, doc: &'static str, op: BinaryOp) -> BuiltinDef {
    BuiltinDef {
        name,
        doc,
        args: &[A, B],
        params: &[],
        apply: Apply::Binary(op),
    }
}

pub static LINEAR: BuiltinDef = BuiltinDef {
    name: "linear",
    doc: "the identity (Keras's `linear` activation)",
    args: &[X],
    params: &[],
    apply: Apply::OnTensor(linear),
};
pub static RELU: BuiltinDef = unary("relu", "elementwise `max(x, 0)`", UnaryOp::Relu);
pub static SIGMOID: BuiltinDef = unary(
    "sigmoid",
    "elementwise `1 / (1 + exp(-x))`",
    UnaryOp::Sigmoid,
);
pub static TANH: BuiltinDef = unary("tanh", "elementwise hyperbolic tangent", UnaryOp::Tanh);
pub static EXP: BuiltinDef = unary("exp", "elementwise `e^x`", UnaryOp::Exp);
pub static LOG: BuiltinDef = unary("log", "elementwise natural logarithm", UnaryOp::Log);
pub static SQRT: BuiltinDef = unary("sqrt", "elementwise square root", UnaryOp::Sqrt);
pub static RSQRT: BuiltinDef = unary("rsqrt", "elementwise `1 / sqrt(x)`", UnaryOp::Rsqrt);
pub static ABS: BuiltinDef = unary("abs", "elementwise absolute value", UnaryOp::Abs);
pub static SOFTPLUS: BuiltinDef = unary(
    "softplus",
    "elementwise `log(1 + exp(x))`, overflow-free",
    UnaryOp::Softplus,
);
pub static GELU: BuiltinDef = unary(
    "gelu",
    "elementwise GELU, the exact erf form (Keras's `approximate=False`)",
    UnaryOp::Gelu,
);
pub static SQUARE: BuiltinDef = BuiltinDef {
    name: "square",
    doc: "elementwise `x * x`",
    args: &[X],
    params: &[],
    apply: Apply::OnTensor(square),
};
pub static SOFTMAX: BuiltinDef = BuiltinDef {
    name: "softmax",
    doc: "softmax along the last axis (another axis is E0214: transpose first)",
    args: &[X, LAST_AXIS],
    params: &[],
    apply: Apply::OnTensor(softmax),
};
pub static LOG_SOFTMAX: BuiltinDef = BuiltinDef {
    name: "log_softmax",
    doc: "the logarithm of `softmax`, computed stably",
    args: &[X, LAST_AXIS],
    params: &[],
    apply: Apply::OnTensor(log_softmax),
};
pub static LEAKY_RELU: BuiltinDef = BuiltinDef {
    name: "leaky_relu",
    doc: "elementwise `x` where positive, else `alpha * x` (Keras's `keras.activations` default)",
    args: &[
        X,
        ArgDef {
            name: "alpha",
            kind: ArgKind::Number,
            default: ArgDefault::Number(0.2),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(leaky_relu),
};
pub static ELU: BuiltinDef = BuiltinDef {
    name: "elu",
    doc: "elementwise `x` where positive, else `alpha * (exp(x) - 1)` (Keras's `keras.activations` default)",
    args: &[
        X,
        ArgDef {
            name: "alpha",
            kind: ArgKind::Number,
            default: ArgDefault::Number(1.0),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(elu),
};
pub static MAXIMUM: BuiltinDef = binary(
    "maximum",
    "elementwise maximum, NumPy broadcasting",
    BinaryOp::Max,
);
pub static MINIMUM: BuiltinDef = binary(
    "minimum",
    "elementwise minimum, NumPy broadcasting",
    BinaryOp::Min,
);
pub static POW: BuiltinDef = binary(
    "pow",
    "elementwise `a^b`, NumPy broadcasting",
    BinaryOp::Pow,
);
pub static GREATER: BuiltinDef =
    binary("greater", "1.0 where `a > b`, else 0.0", BinaryOp::Greater);
pub static LESS: BuiltinDef = binary("less", "1.0 where `a < b`, else 0.0", BinaryOp::Less);
pub static GREATER_EQUAL: BuiltinDef = binary(
    "greater_equal",
    "1.0 where `a >= b`, else 0.0",
    BinaryOp::GreaterEqual,
);
pub static LESS_EQUAL: BuiltinDef = binary(
    "less_equal",
    "1.0 where `a <= b`, else 0.0",
    BinaryOp::LessEqual,
);
pub static EQUAL: BuiltinDef = binary("equal", "1.0 where `a == b`, else 0.0", BinaryOp::Equal);
pub static NOT_EQUAL: BuiltinDef = binary(
    "not_equal",
    "1.0 where `a != b`, else 0.0",
    BinaryOp::NotEqual,
);
pub static WHERE: BuiltinDef = BuiltinDef {
    name: "where",
    doc: "`a` where `condition` is not 0, else `b`; the three broadcast",
    args: &[
        ArgDef {
            name: "condition",
            ..X
        },
        A,
        B,
    ],
    params: &[],
    apply: Apply::Function(select),
};
pub static SUM: BuiltinDef = BuiltinDef {
    name: "sum",
    doc: "the sum over `axis`",
    args: REDUCE_ARGS,
    params: &[],
    apply: Apply::OnTensor(sum),
};
pub static MEAN: BuiltinDef = BuiltinDef {
    name: "mean",
    doc: "the mean over `axis`",
    args: REDUCE_ARGS,
    params: &[],
    apply: Apply::OnTensor(mean),
};
pub static MAX: BuiltinDef = BuiltinDef {
    name: "max",
    doc: "the maximum over `axis`",
    args: REDUCE_ARGS,
    params: &[],
    apply: Apply::OnTensor(max),
};
pub static RESHAPE: BuiltinDef = BuiltinDef {
    name: "reshape",
    doc: "same elements, new shape (Keras's `Reshape`); `shape` leaves out the batch dimension; one entry may be `-1` (E0212)",
    args: &[
        X,
        ArgDef {
            name: "shape",
            kind: ArgKind::Sizes,
            default: ArgDefault::Required,
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(reshape),
};
pub static FLATTEN: BuiltinDef = BuiltinDef {
    name: "flatten",
    doc: "everything but the batch dimension in one axis (Keras's `Flatten`)",
    args: &[X],
    params: &[],
    apply: Apply::OnTensor(flatten),
};
pub static TRANSPOSE: BuiltinDef = BuiltinDef {
    name: "transpose",
    doc: "permute axes; the batch dimension stays first (E0215)",
    args: &[
        X,
        ArgDef {
            name: "perm",
            kind: ArgKind::Axes,
            default: ArgDefault::Computed(
                "reversed, or the last two swapped when x has a batch dimension",
            ),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(transpose),
};
pub static CONCAT: BuiltinDef = BuiltinDef {
    name: "concat",
    doc: "join tensors along an axis; the other dimensions must agree (E0213)",
    args: &[
        ArgDef {
            name: "values",
            kind: ArgKind::Tensors,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "axis",
            kind: ArgKind::Axis,
            default: ArgDefault::Int(-1),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::Function(concat),
};
pub static SLICE: BuiltinDef = BuiltinDef {
    name: "slice",
    doc: "entries `start..end` (end exclusive) of a non-batch axis",
    args: &[
        X,
        ArgDef {
            name: "axis",
            kind: ArgKind::Axis,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "start",
            kind: ArgKind::Index,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "end",
            kind: ArgKind::Index,
            default: ArgDefault::Required,
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(slice),
};
pub static MATMUL: BuiltinDef = BuiltinDef {
    name: "matmul",
    doc: "the same as `a @ b`",
    args: &[A, B],
    params: &[],
    apply: Apply::Function(matmul),
};
pub static DROPOUT: BuiltinDef = BuiltinDef {
    name: "dropout",
    doc: "during training, zero each value with probability `rate` and scale the rest by `1/(1-rate)` (inverted dropout, as Keras); the mask depends on `(seed, step, position)` only, so runs reproduce; identity when evaluating",
    args: &[
        X,
        ArgDef {
            name: "rate",
            kind: ArgKind::Rate,
            default: ArgDefault::Required,
            doc: "the fraction of inputs to drop",
        },
        ArgDef {
            name: "seed",
            kind: ArgKind::Count,
            default: ArgDefault::Int(0),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(dropout),
};
pub static GRAD: BuiltinDef = BuiltinDef {
    name: "grad",
    doc: "a function: the gradient of `f` (a function with a scalar result, e.g. ending in `sum`) with respect to its argument number `wrt`, the other arguments held fixed (E0224 when `f`'s result is not a scalar); built by the same autodiff that trains models, so a model using it trains through the second derivative",
    args: &[
        ArgDef {
            name: "f",
            kind: ArgKind::Function,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "wrt",
            kind: ArgKind::Count,
            default: ArgDefault::Int(0),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::Function(grad),
};

// ----- how they are applied -----

fn linear(el: &mut Elab, mut args: Args, _span: Span) -> Option<Value> {
    let x = args.take("x")?;
    tensor_arg(el, &x).map(Value::Tensor)
}

fn square(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let first = args.take("x")?;
    let x = tensor_arg(el, &first)?;
    el.elementwise(
        BinaryOp::Mul,
        &[(x, first.span), (x, first.span)],
        span,
        "square",
    )
    .map(|id| el.tensor(id, span))
}

fn softmax(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    along_last_axis(el, Op::Softmax, args, span)
}

fn log_softmax(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    along_last_axis(el, Op::LogSoftmax, args, span)
}

fn leaky_relu(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let x = args.take("x")?;
    let alpha = args.number(el, "alpha");
    let (x, alpha) = (tensor_arg(el, &x)?, alpha?);
    el.add(
        Op::LeakyRelu {
            alpha: alpha as f32,
        },
        &[x.id],
        span,
    )
    .map(|id| el.tensor(id, span))
}

fn elu(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let x = args.take("x")?;
    let alpha = args.number(el, "alpha");
    let (x, alpha) = (tensor_arg(el, &x)?, alpha?);
    el.add(
        Op::Elu {
            alpha: alpha as f32,
        },
        &[x.id],
        span,
    )
    .map(|id| el.tensor(id, span))
}

fn sum(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    reduce(el, ReduceKind::Sum, args, span)
}

fn mean(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    reduce(el, ReduceKind::Mean, args, span)
}

fn max(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    reduce(el, ReduceKind::Max, args, span)
}

fn matmul(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let first = args.take("a")?;
    let Some(second) = args.take("b") else {
        el.missing("matmul", "b", span);
        return None;
    };
    match (tensor_arg(el, &first), tensor_arg(el, &second)) {
        (Some(a), Some(b)) => el
            .matmul((a, first.span), (b, second.span), span)
            .map(|id| el.tensor(id, span)),
        _ => None,
    }
}

fn grad(el: &mut Elab, mut args: Args, _span: Span) -> Option<Value> {
    let first = args.take("f")?;
    let wrt = args.count(el, "wrt", "an argument position (0, 1, …)");
    match (&first.value, wrt) {
        (Value::Func(_), Some(wrt)) => Some(Value::Func(Func::Grad(
            Box::new(first.value.clone()),
            wrt as usize,
        ))),
        (other, Some(_)) => {
            el.wrong_kind(other, first.span, "a function, e.g. `grad(loss_fn)`");
            None
        }
        _ => None,
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
pub(super) fn axis(el: &mut Elab, arg: &ArgValue, x: Tensor, rank: usize) -> Option<usize> {
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

pub(super) fn batch_axis_error(el: &mut Elab, what: &str, span: Span, x: Tensor) {
    let text = el.text(x);
    el.error(
        Diagnostic::error("E0215", format!("{what} cannot use the batch dimension"))
            .primary(span, format!("this would touch `{}`", el.batch))
            .secondary(x.origin, format!("this is {text}"))
            .note("samples are independent: the batch dimension stays first and whole"),
    );
}

/// `softmax` and `log_softmax`: along the last axis, which `axis` may name.
fn along_last_axis(el: &mut Elab, op: Op, mut args: Args, span: Span) -> Option<Value> {
    let name = args.def.name;
    let x = &args.take("x")?;
    let axis_arg = args.take("axis");
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
    el.add(op, &[t.id], span).map(|id| el.tensor(id, span))
}

fn select(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let cond = &args.take("condition")?;
    let (Some(a), Some(b)) = (args.take("a"), args.take("b")) else {
        el.missing("where", "a and b", span);
        return None;
    };
    let (a, b) = (&a, &b);
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

fn reduce(el: &mut Elab, kind: ReduceKind, mut args: Args, span: Span) -> Option<Value> {
    let x = &args.take("x")?;
    let axis_arg = args.take("axis");
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
    let keep_dims = args.flag(el, "keepdims")?;
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
fn reshape(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let x = &args.take("x")?;
    let Some(shape) = &args.take("shape") else {
        el.missing("reshape", "shape", span);
        return None;
    };
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
    let total = crate::check::types::per_sample(&from);
    let mut dims = Vec::new();
    let mut infer = None;
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Int(-1) if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            Value::Int(n) if *n > 0 && *n as u64 <= crate::check::types::MAX_DIM as u64 => {
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
    let id = el.add_reshape(t.id, shape, span)?;
    Some(el.tensor(id, span))
}

/// `flatten(x)`: everything but the batch dimension in one axis, as Keras's `Flatten`.
fn flatten(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let x = &args.take("x")?;
    let t = tensor_arg(el, x)?;
    let from = el.ty(t).shape.clone();
    let total = crate::check::types::per_sample(&from);
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

fn transpose(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let x = &args.take("x")?;
    let perm_arg = args.take("perm");
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

fn concat(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let values = &args.take("values")?;
    let axis_arg = args.take("axis");
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

fn slice(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let x = &args.take("x")?;
    let (axis_arg, start, end) = (args.take("axis"), args.take("start"), args.take("end"));
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

fn dropout(el: &mut Elab, mut args: Args, span: Span) -> Option<Value> {
    let x = &args.take("x")?;
    let t = tensor_arg(el, x)?;
    let rate = rate(el, args.def, &args.def.args[1], args.take("rate"), span)?;
    let seed = args.count(el, "seed", "a non-negative whole number")?;
    if rate == 0.0 {
        return Some(Value::Tensor(t));
    }
    let step = el.step_input(span);
    let first_row = el.graph.first_row_input(Some(span));
    let out = el.add(
        Op::Dropout {
            rate: rate as f32,
            seed,
        },
        &[t.id, step, first_row],
        span,
    )?;
    el.carry_mask(t.id, out);
    Some(el.tensor(out, span))
}
