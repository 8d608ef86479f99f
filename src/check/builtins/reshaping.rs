//! Keras's `ZeroPadding1D/2D` and `UpSampling1D/2D` over channels-last batches, built from
//! existing ops: padding joins blocks of zeros on each side (`concat` of a broadcast zero, whose
//! gradient is a slice), and nearest-neighbour upsampling repeats each position by reshaping it
//! to an axis of size 1 and broadcasting that axis (whose gradient is a sum over the copies).
//! They have no parameters, so a call without the tensor is a layer (`zero_padding2d(1)`).

use super::functions::X;
use super::spatial::{per_axis, spatial_input};
use super::{Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, tensor_arg};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::op::Op;
use crate::ir::shape::{Dim, Shape};

/// Keras's `ZeroPadding1D`.
pub static ZERO_PADDING1D: BuiltinDef = BuiltinDef {
    name: "zero_padding1d",
    doc: "Keras's `ZeroPadding1D`: zeros before and after the steps of `f32[B, steps, C]`",
    args: &[
        X,
        ArgDef {
            name: "padding",
            kind: ArgKind::Pads,
            default: ArgDefault::Int(1),
            doc: "the same on both sides, or `(before, after)`",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(zero_padding1d),
};

/// Keras's `ZeroPadding2D`.
pub static ZERO_PADDING2D: BuiltinDef = BuiltinDef {
    name: "zero_padding2d",
    doc: "Keras's `ZeroPadding2D`: rows of zeros above and below, columns left and right of `f32[B, H, W, C]`",
    args: &[
        X,
        ArgDef {
            name: "padding",
            kind: ArgKind::Pads,
            default: ArgDefault::Int(1),
            doc: "the same on all sides, `(height, width)` each on both sides, or `((top, bottom), (left, right))`",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(zero_padding2d),
};

/// Keras's `UpSampling1D`.
pub static UP_SAMPLING1D: BuiltinDef = BuiltinDef {
    name: "up_sampling1d",
    doc: "Keras's `UpSampling1D`: each step of `f32[B, steps, C]` repeated `size` times",
    args: &[
        X,
        ArgDef {
            name: "size",
            kind: ArgKind::PerAxis,
            default: ArgDefault::Int(2),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(up_sampling1d),
};

/// Keras's `UpSampling2D`.
pub static UP_SAMPLING2D: BuiltinDef = BuiltinDef {
    name: "up_sampling2d",
    doc: "Keras's `UpSampling2D`: each row and column of `f32[B, H, W, C]` repeated `size` times (nearest neighbour)",
    args: &[
        X,
        ArgDef {
            name: "size",
            kind: ArgKind::PerAxis,
            default: ArgDefault::Int(2),
            doc: "",
        },
        ArgDef {
            name: "interpolation",
            kind: ArgKind::Choice(&["nearest"]),
            default: ArgDefault::Computed("\"nearest\""),
            doc: "",
        },
    ],
    params: &[],
    apply: Apply::OnTensor(up_sampling2d),
};

/// Keras's other interpolations, which Kiln does not have.
const UNSUPPORTED_INTERPOLATIONS: &[&str] =
    &["bilinear", "bicubic", "lanczos3", "lanczos5", "area"];

fn zero_padding1d(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    zero_padding(el, args, span, 1)
}

fn zero_padding2d(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    zero_padding(el, args, span, 2)
}

fn up_sampling1d(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    up_sampling(el, args, span, 1)
}

fn up_sampling2d(el: &mut Elab, args: Args, span: Span) -> Option<Value> {
    up_sampling(el, args, span, 2)
}

/// `padding` as `(before, after)` per spatial axis, in Keras's forms: one number for every side;
/// in 1-D a pair `(before, after)`; in 2-D a pair `(height, width)`, each on both sides, or a
/// pair of pairs `((top, bottom), (left, right))`.
fn pads(el: &mut Elab, args: &mut Args, rank: usize) -> Option<Vec<(usize, usize)>> {
    let Some(arg) = args.take("padding") else {
        return Some(vec![(1, 1); rank]);
    };
    let count = |v: &Value| match v {
        Value::Int(n) if *n >= 0 && *n <= u32::MAX as i64 => Some(*n as usize),
        _ => None,
    };
    let pair = |v: &Value| match v {
        Value::List(items) | Value::Tuple(items) if items.len() == 2 => {
            Some((count(&items[0])?, count(&items[1])?))
        }
        _ => None,
    };
    let parsed = match (&arg.value, rank) {
        (Value::List(items) | Value::Tuple(items), 1) if items.len() == 2 => {
            pair(&arg.value).map(|p| vec![p])
        }
        (Value::List(items) | Value::Tuple(items), _) if items.len() == rank => items
            .iter()
            .map(|item| count(item).map(|n| (n, n)).or_else(|| pair(item)))
            .collect(),
        (single, _) => count(single).map(|n| vec![(n, n); rank]),
    };
    if parsed.is_none() {
        let name = args.def.name;
        let (forms, example) = if rank == 1 {
            ("a whole number >= 0 or a pair (before, after)", "(1, 2)")
        } else {
            (
                "a whole number >= 0, a pair (height, width), or ((top, bottom), (left, right))",
                "((1, 1), (2, 2))",
            )
        };
        let found = match (&arg.value, first_wrong(&arg.value)) {
            (_, Some(Value::Int(n))) => n.to_string(),
            (_, Some(other)) => other.kind_name().to_string(),
            (Value::List(items) | Value::Tuple(items), None) => format!("{} values", items.len()),
            (other, None) => other.kind_name().to_string(),
        };
        el.error(
            Diagnostic::error("E0303", format!("`padding` of `{name}` takes {forms}"))
                .primary(arg.span, format!("found {found}"))
                .help(format!("for example `{name}(padding: {example})`")),
        );
    }
    parsed
}

/// The first item, at any depth, that is not a whole number >= 0 or a list of them.
fn first_wrong(value: &Value) -> Option<&Value> {
    match value {
        Value::Int(n) if *n >= 0 => None,
        Value::List(items) | Value::Tuple(items) => items.iter().find_map(first_wrong),
        other => Some(other),
    }
}

fn zero_padding(el: &mut Elab, mut args: Args, span: Span, rank: usize) -> Option<Value> {
    let name = args.def.name;
    let x = args.take("x")?;
    let pads = pads(el, &mut args, rank)?;
    let t = tensor_arg(el, &x)?;
    spatial_input(el, name, rank, (t, x.span), span)?;
    let mut y = t.id;
    for (k, &(before, after)) in pads.iter().enumerate() {
        let axis = k + 1;
        let mut parts = Vec::new();
        for (side, len) in [(0, before), (1, after)] {
            if len == 0 {
                continue;
            }
            let mut dims = el.graph.shape(y).dims().to_vec();
            dims[axis] = Dim::Fixed(len);
            let zero = el.constant(0.0, span).id;
            let zeros = el.add_broadcast(zero, Shape(dims), span)?;
            parts.push((side, zeros));
        }
        if parts.is_empty() {
            continue;
        }
        let mut inputs: Vec<_> = parts.iter().filter(|p| p.0 == 0).map(|p| p.1).collect();
        inputs.push(y);
        inputs.extend(parts.iter().filter(|p| p.0 == 1).map(|p| p.1));
        y = el.add(Op::Concat { axis }, &inputs, span)?;
    }
    Some(el.tensor(y, span))
}

fn up_sampling(el: &mut Elab, mut args: Args, span: Span, rank: usize) -> Option<Value> {
    let name = args.def.name;
    let x = args.take("x")?;
    let sizes = per_axis(el, &mut args, "size", Some(&vec![2; rank]), rank, span)?;
    if rank == 2
        && let Some(arg) = args.take("interpolation")
    {
        match &arg.value {
            Value::Str(s) if s == "nearest" => {}
            Value::Str(s) if UNSUPPORTED_INTERPOLATIONS.contains(&s.as_str()) => {
                el.error(
                    Diagnostic::error(
                        "E0303",
                        format!("`{name}` has only `interpolation: \"nearest\"`; \"{s}\" is not supported"),
                    )
                    .primary(arg.span, format!("\"{s}\" interpolation"))
                    .help("nearest repeats each value; a convolution after it can smooth the result"),
                );
                return None;
            }
            other => {
                let found = match other {
                    Value::Str(s) => format!("\"{s}\""),
                    other => other.kind_name().to_string(),
                };
                el.error(
                    Diagnostic::error(
                        "E0303",
                        format!("`interpolation` of `{name}` is \"nearest\""),
                    )
                    .primary(arg.span, format!("found {found}")),
                );
                return None;
            }
        }
    }
    let t = tensor_arg(el, &x)?;
    let (spatial, channels) = spatial_input(el, name, rank, (t, x.span), span)?;
    if sizes.iter().all(|&s| s == 1) {
        return Some(Value::Tensor(t));
    }
    // [B, S1, 1, S2, 1, C] → broadcast [B, S1, s1, S2, s2, C] → [B, S1·s1, S2·s2, C].
    let mut split = vec![Dim::Batch];
    let mut repeated = vec![Dim::Batch];
    let mut out = vec![Dim::Batch];
    for (&n, &s) in spatial.iter().zip(&sizes) {
        let Some(len) = n.checked_mul(s).filter(|&len| len <= u32::MAX as usize) else {
            el.error(
                Diagnostic::error("E0303", format!("`{name}` would make an axis of {n} × {s}"))
                    .primary(span, "too large"),
            );
            return None;
        };
        split.extend([Dim::Fixed(n), Dim::Fixed(1)]);
        repeated.extend([Dim::Fixed(n), Dim::Fixed(s)]);
        out.push(Dim::Fixed(len));
    }
    for dims in [&mut split, &mut repeated, &mut out] {
        dims.push(Dim::Fixed(channels));
    }
    let y = el.add_reshape(t.id, Shape(split), span)?;
    let y = el.add_broadcast(y, Shape(repeated), span)?;
    let y = el.add_reshape(y, Shape(out), span)?;
    Some(el.tensor(y, span))
}
