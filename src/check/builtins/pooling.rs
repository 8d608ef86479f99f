//! Keras's pooling layers: over windows (`max_pooling2d`, `average_pooling1d`, …) and over all
//! positions (`global_average_pooling2d`, …). They have no parameters: each is a function of
//! its tensor, and a call without one is a layer waiting for it (`max_pooling2d(2)`).

use super::functions::X;
use super::spatial::{PADDINGS, check_fits, padding, per_axis, spatial_input};
use super::{Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, tensor_arg};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::Span;
use crate::ir::graph::ValueId;
use crate::ir::op::{BinaryOp, Op, PoolKind, ReduceKind};
use crate::ir::shape::Dim;
use crate::ir::window::Window;

static WINDOW_ARGS: [ArgDef; 4] = [
    X,
    ArgDef {
        name: "pool_size",
        kind: ArgKind::PerAxis,
        default: ArgDefault::Int(2),
        doc: "",
    },
    ArgDef {
        name: "strides",
        kind: ArgKind::PerAxis,
        default: ArgDefault::Computed("pool_size"),
        doc: "",
    },
    ArgDef {
        name: "padding",
        kind: ArgKind::Choice(PADDINGS),
        default: ArgDefault::Computed("\"valid\""),
        doc: "",
    },
];

static GLOBAL_ARGS: [ArgDef; 2] = [
    X,
    ArgDef {
        name: "keepdims",
        kind: ArgKind::Bool,
        default: ArgDefault::Bool(false),
        doc: "keep the pooled axes with size 1",
    },
];

/// A pooling layer: `window` (`pool`) or `global` pooling of `kind` over `rank` spatial axes.
macro_rules! pooling {
    ($static:ident, $name:literal, $doc:literal, $args:ident, $how:ident, $kind:expr, $rank:literal) => {
        pub static $static: BuiltinDef = BuiltinDef {
            name: $name,
            doc: $doc,
            args: &$args,
            params: &[],
            apply: Apply::OnTensor(|el, args, span| $how(el, args, span, $kind, $rank)),
        };
    };
}

pooling!(
    MAX_POOLING1D,
    "max_pooling1d",
    "Keras's `MaxPooling1D`: the maximum of each window of steps, per channel",
    WINDOW_ARGS,
    pool,
    PoolKind::Max,
    1
);
pooling!(
    MAX_POOLING2D,
    "max_pooling2d",
    "Keras's `MaxPooling2D`: the maximum of each window, per channel (the gradient goes to the window's first maximum)",
    WINDOW_ARGS,
    pool,
    PoolKind::Max,
    2
);
pooling!(
    AVERAGE_POOLING1D,
    "average_pooling1d",
    "Keras's `AveragePooling1D`: the mean of each window of steps, per channel",
    WINDOW_ARGS,
    pool,
    PoolKind::Mean,
    1
);
pooling!(
    AVERAGE_POOLING2D,
    "average_pooling2d",
    "Keras's `AveragePooling2D`: the mean of each window, per channel (padding not counted)",
    WINDOW_ARGS,
    pool,
    PoolKind::Mean,
    2
);
pooling!(
    GLOBAL_MAX_POOLING1D,
    "global_max_pooling1d",
    "Keras's `GlobalMaxPooling1D`: `f32[B, steps, C]` → `f32[B, C]`, the maximum over all steps",
    GLOBAL_ARGS,
    global,
    ReduceKind::Max,
    1
);
pooling!(
    GLOBAL_MAX_POOLING2D,
    "global_max_pooling2d",
    "Keras's `GlobalMaxPooling2D`: `f32[B, H, W, C]` → `f32[B, C]`, the maximum over all positions",
    GLOBAL_ARGS,
    global,
    ReduceKind::Max,
    2
);
pooling!(
    GLOBAL_AVERAGE_POOLING1D,
    "global_average_pooling1d",
    "Keras's `GlobalAveragePooling1D`: `f32[B, steps, C]` → `f32[B, C]`, the mean over all steps",
    GLOBAL_ARGS,
    global,
    ReduceKind::Mean,
    1
);
pooling!(
    GLOBAL_AVERAGE_POOLING2D,
    "global_average_pooling2d",
    "Keras's `GlobalAveragePooling2D`: `f32[B, H, W, C]` → `f32[B, C]`, the mean over all positions",
    GLOBAL_ARGS,
    global,
    ReduceKind::Mean,
    2
);

fn pool(el: &mut Elab, mut args: Args, span: Span, kind: PoolKind, rank: usize) -> Option<Value> {
    let name = args.def.name;
    let x = args.take("x")?;
    let size = per_axis(el, &mut args, "pool_size", Some(&vec![2; rank]), rank, span)?;
    let strides = per_axis(el, &mut args, "strides", Some(&size), rank, span)?;
    let padding = padding(el, &mut args)?;
    let t = tensor_arg(el, &x)?;
    let (spatial, _) = spatial_input(el, name, rank, (t, x.span), span)?;
    let window = Window::new(&spatial, &size, &strides, &vec![1; rank], padding);
    check_fits(el, name, &window, &spatial, (t, x.span), span)?;
    let id = el.add(Op::Pool { kind, window }, &[t.id], span)?;
    Some(el.tensor(id, span))
}

fn global(
    el: &mut Elab,
    mut args: Args,
    span: Span,
    kind: ReduceKind,
    rank: usize,
) -> Option<Value> {
    let name = args.def.name;
    let x = args.take("x")?;
    let keep_dims = args.flag(el, "keepdims")?;
    let t = tensor_arg(el, &x)?;
    spatial_input(el, name, rank, (t, x.span), span)?;
    // Only the average honours the mask (Keras's `GlobalMaxPooling1D` drops it).
    let mask = if rank == 1 && kind == ReduceKind::Mean {
        el.mask_of(t.id)
    } else {
        None
    };
    if let Some(mask) = mask {
        return masked_mean(el, t.id, mask, keep_dims, span);
    }
    let op = Op::Reduce {
        kind,
        axes: (1..=rank).collect(),
        keep_dims,
    };
    let id = el.add(op, &[t.id], span)?;
    Some(el.tensor(id, span))
}

/// Keras's `GlobalAveragePooling1D` of a masked `x f32[B, T, C]`: the mean over the steps the
/// mask `f32[B, T]` keeps. A wholly padded sequence averages to 0 (Keras divides 0 by 0).
fn masked_mean(
    el: &mut Elab,
    x: ValueId,
    mask: ValueId,
    keep_dims: bool,
    span: Span,
) -> Option<Value> {
    let mut column = el.graph.shape(mask).clone();
    column.0.push(Dim::Fixed(1));
    let mask = el.add_reshape(mask, column, span)?;
    let kept = el.add(Op::Binary(BinaryOp::Mul), &[x, mask], span)?;
    let sum = |el: &mut Elab, v: ValueId| {
        let op = Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![1],
            keep_dims,
        };
        el.add(op, &[v], span)
    };
    let total = sum(el, kept)?;
    let count = sum(el, mask)?;
    let one = el.constant(1.0, span);
    let count = el.add(Op::Binary(BinaryOp::Max), &[count, one.id], span)?;
    let mean = el.add(Op::Binary(BinaryOp::Div), &[total, count], span)?;
    Some(el.tensor(mean, span))
}
