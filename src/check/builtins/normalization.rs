//! Keras's `BatchNormalization` and `LayerNormalization`, written with the IR's arithmetic
//! (means, `rsqrt`, broadcasting), so that they are differentiated and fused like any other code.
//!
//! Batch normalization is the one layer whose training and inference differ beyond dropout: in a
//! training step it normalizes by the batch's statistics and moves its moving statistics toward
//! them (updates of its non-trainable parameters, applied at the end of the step with the
//! optimizer's); evaluation and prediction normalize by the moving statistics (`Op::InTraining`).

use super::functions::{axis, batch_axis_error};
use super::initializers::{ONES, ZEROS};
use super::{
    Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, ParamDef, SharedMismatch, create_params,
    shared_mismatch,
};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::{MovingStatistics, Slot, Update, ValueId};
use crate::ir::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use crate::ir::shape::{Dim, Shape};
use std::rc::Rc;

const AXIS: ArgDef = ArgDef {
    name: "axis",
    kind: ArgKind::Axis,
    default: ArgDefault::Int(-1),
    doc: "the features' axis, not the batch's",
};
const EPSILON: ArgDef = ArgDef {
    name: "epsilon",
    kind: ArgKind::Number,
    default: ArgDefault::Number(0.001),
    doc: "added to the variance, > 0",
};
const CENTER: ArgDef = ArgDef {
    name: "center",
    kind: ArgKind::Bool,
    default: ArgDefault::Bool(true),
    doc: "add `beta`",
};
const SCALE: ArgDef = ArgDef {
    name: "scale",
    kind: ArgKind::Bool,
    default: ArgDefault::Bool(true),
    doc: "multiply by `gamma`",
};
const GAMMA: ParamDef = ParamDef {
    name: "gamma",
    init_arg: "gamma_initializer",
    reg_arg: "gamma_regularizer",
    shape: "f32[features]",
    init: &ONES,
    when: "with `scale`",
    trainable: true,
};
const BETA: ParamDef = ParamDef {
    name: "beta",
    init_arg: "beta_initializer",
    reg_arg: "beta_regularizer",
    shape: "f32[features]",
    init: &ZEROS,
    when: "with `center`",
    trainable: true,
};

/// Keras's `BatchNormalization`.
pub static BATCH_NORMALIZATION: BuiltinDef = BuiltinDef {
    name: "batch_normalization",
    doc: "Keras's `BatchNormalization`: `(x - mean) / sqrt(variance + epsilon) * gamma + beta` per feature of `axis`; in training the batch's mean and (biased) variance over every other axis, which also move the moving statistics (`moving = moving * momentum + batch * (1 - momentum)`); in evaluation and prediction the moving statistics",
    args: &[
        AXIS,
        ArgDef {
            name: "momentum",
            kind: ArgKind::Number,
            default: ArgDefault::Number(0.99),
            doc: "of the moving statistics, in [0, 1]",
        },
        EPSILON,
        CENTER,
        SCALE,
    ],
    params: &[
        GAMMA,
        BETA,
        ParamDef {
            name: "moving_mean",
            init_arg: "moving_mean_initializer",
            reg_arg: "",
            shape: "f32[features]",
            init: &ZEROS,
            when: "non-trainable",
            trainable: false,
        },
        ParamDef {
            name: "moving_variance",
            init_arg: "moving_variance_initializer",
            reg_arg: "",
            shape: "f32[features]",
            init: &ONES,
            when: "non-trainable",
            trainable: false,
        },
    ],
    apply: Apply::Layer(batch_normalization),
};

/// Keras's `LayerNormalization`.
pub static LAYER_NORMALIZATION: BuiltinDef = BuiltinDef {
    name: "layer_normalization",
    doc: "Keras's `LayerNormalization`: `(x - mean) / sqrt(variance + epsilon) * gamma + beta` with each sample's mean and (biased) variance over `axis`; the same in training and inference",
    args: &[AXIS, EPSILON, CENTER, SCALE],
    params: &[GAMMA, BETA],
    apply: Apply::Layer(layer_normalization),
};

/// A normalization's configuration and where its features lie in `x`.
struct Normalized {
    x: ValueId,
    /// The features' axis.
    axis: usize,
    features: usize,
    rank: usize,
    epsilon: f64,
    center: bool,
    scale: bool,
}

/// Reads `axis`, `epsilon`, `center` and `scale`, and checks that `axis` is a fixed axis of `x`
/// other than the batch's.
fn configure(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    args: &mut Args,
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<Normalized> {
    let name = args.def.name;
    let epsilon = args.number(el, "epsilon")?;
    if epsilon <= 0.0 {
        el.error(
            Diagnostic::error(
                "E0303",
                format!("`epsilon` of `{name}` must be more than 0"),
            )
            .primary(layer.span, format!("epsilon is {epsilon}"))
            .help("it keeps the division away from zero; Keras's default is 0.001"),
        );
        return None;
    }
    let center = args.flag(el, "center")?;
    let scale = args.flag(el, "scale")?;
    let axis_arg = args.take("axis");
    let x = el.float_tensor(x, xspan)?;
    let dims = el.ty(x).shape.dims().to_vec();
    let rank = dims.len();
    if rank == 0 {
        el.wrong_kind(&Value::Tensor(x), xspan, "a tensor with a features axis");
        return None;
    }
    let a = match &axis_arg {
        Some(arg) => axis(el, arg, x, rank)?,
        None => rank - 1,
    };
    match dims[a] {
        Dim::Fixed(features) => Some(Normalized {
            x: x.id,
            axis: a,
            features,
            rank,
            epsilon,
            center,
            scale,
        }),
        Dim::Batch => {
            let at = axis_arg.map_or(span, |arg| arg.span);
            batch_axis_error(el, &format!("`{name}`'s features"), at, x);
            None
        }
    }
}

/// The layer's parameters (created on its first application), in `def.params`' order with
/// `None` for those it does not have; a shared layer must meet the same number of features.
fn parameters(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    def: &'static BuiltinDef,
    args: &mut Args,
    n: &Normalized,
    x: Tensor,
    span: Span,
) -> Option<Vec<Option<ValueId>>> {
    let has: Vec<bool> = def
        .params
        .iter()
        .map(|p| match p.name {
            "gamma" => n.scale,
            "beta" => n.center,
            _ => true,
        })
        .collect();
    let shapes: Vec<Option<Vec<usize>>> =
        has.iter().map(|&h| h.then(|| vec![n.features])).collect();
    let mut created = create_params(el, layer, def, args, &shapes, layer.span)?.into_iter();
    let params: Vec<Option<ValueId>> = has
        .iter()
        .map(|&h| if h { created.next() } else { None })
        .collect();
    let built = params
        .iter()
        .flatten()
        .next()
        .map(|&p| el.graph.shape(p).clone());
    if let Some(built) = built
        && built != Shape::fixed(&[n.features])
    {
        let mismatch = SharedMismatch {
            built: format!("{} features", built.numel(1)),
            here: format!("{} features here", n.features),
            parameter: format!("its parameters are f32{built}"),
            agree_in: "features",
        };
        shared_mismatch(el, layer, x, span, mismatch);
        return None;
    }
    Some(params)
}

/// A per-feature vector `f32[features]` shaped to broadcast against `x`: features last already
/// do; another axis needs trailing axes of size 1.
fn per_feature(el: &mut Elab, n: &Normalized, v: ValueId, span: Span) -> Option<ValueId> {
    let trailing = n.rank - 1 - n.axis;
    if trailing == 0 {
        return Some(v);
    }
    let mut dims = vec![n.features];
    dims.extend(std::iter::repeat_n(1, trailing));
    el.add_reshape(v, Shape::fixed(&dims), span)
}

fn binary(el: &mut Elab, op: BinaryOp, a: ValueId, b: ValueId, span: Span) -> Option<ValueId> {
    el.add(Op::Binary(op), &[a, b], span)
}

/// `(x - mean) * rsqrt(variance + epsilon) * gamma + beta`, with `mean` and `variance` already
/// shaped to broadcast against `x`; `gamma` and `beta` are per feature.
fn normalize(
    el: &mut Elab,
    n: &Normalized,
    (mean, variance): (ValueId, ValueId),
    (gamma, beta): (Option<ValueId>, Option<ValueId>),
    span: Span,
) -> Option<ValueId> {
    let centered = binary(el, BinaryOp::Sub, n.x, mean, span)?;
    let epsilon = el.constant(n.epsilon, span).id;
    let shifted = binary(el, BinaryOp::Add, variance, epsilon, span)?;
    let mut factor = el.add(Op::Unary(UnaryOp::Rsqrt), &[shifted], span)?;
    if let Some(gamma) = gamma {
        let gamma = per_feature(el, n, gamma, span)?;
        factor = binary(el, BinaryOp::Mul, factor, gamma, span)?;
    }
    let mut y = binary(el, BinaryOp::Mul, centered, factor, span)?;
    if let Some(beta) = beta {
        let beta = per_feature(el, n, beta, span)?;
        y = binary(el, BinaryOp::Add, y, beta, span)?;
    }
    Some(y)
}

fn batch_normalization(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    mut args: Args,
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<Value> {
    let momentum = args.number(el, "momentum")?;
    if !(0.0..=1.0).contains(&momentum) {
        el.error(
            Diagnostic::error(
                "E0303",
                "`momentum` of `batch_normalization` must be in [0, 1]",
            )
            .primary(layer.span, format!("momentum is {momentum}"))
            .help("the weight the moving statistics keep at each step; Keras's default is 0.99"),
        );
        return None;
    }
    let n = configure(el, layer, &mut args, (x, xspan), span)?;
    let params = parameters(el, layer, &BATCH_NORMALIZATION, &mut args, &n, x, span)?;
    let [gamma, beta, Some(moving_mean), Some(moving_variance)] = params[..] else {
        return None;
    };

    // The batch's statistics over every axis but the features' (Keras's `ops.moments`), the
    // variance as the mean square of the centered values.
    let others: Vec<usize> = (0..n.rank).filter(|&a| a != n.axis).collect();
    let reduce = Op::Reduce {
        kind: ReduceKind::Mean,
        axes: others.clone(),
        keep_dims: false,
    };
    let batch_mean = el.add(reduce.clone(), &[n.x], span)?;
    let shaped_mean = per_feature(el, &n, batch_mean, span)?;
    let centered = binary(el, BinaryOp::Sub, n.x, shaped_mean, span)?;
    let squares = binary(el, BinaryOp::Mul, centered, centered, span)?;
    let batch_variance = el.add(reduce, &[squares], span)?;

    let mean = el.add(Op::InTraining, &[batch_mean, moving_mean], span)?;
    let variance = el.add(Op::InTraining, &[batch_variance, moving_variance], span)?;
    let mean = per_feature(el, &n, mean, span)?;
    let variance = per_feature(el, &n, variance, span)?;
    let y = normalize(el, &n, (mean, variance), (gamma, beta), span)?;

    let moved_before = |el: &Elab, param: ValueId| {
        let Op::Param { index } = el.graph.node(param).op else {
            return None;
        };
        Some((
            index,
            el.graph
                .updates
                .iter()
                .any(|u| u.target == Slot::Param(index)),
        ))
    };
    let (Some((mean, again)), Some((variance, _))) = (
        moved_before(el, moving_mean),
        moved_before(el, moving_variance),
    ) else {
        unreachable!("internal error: a layer's parameter is an `Op::Param`");
    };
    move_toward(el, moving_mean, batch_mean, momentum, span)?;
    move_toward(el, moving_variance, batch_variance, momentum, span)?;
    // A layer applied twice moves its statistics twice a step: not the one-step form.
    let statistics = &mut el.graph.moving_statistics;
    statistics.retain(|s| s.mean != mean);
    if !again {
        statistics.push(MovingStatistics {
            mean,
            variance,
            momentum,
        });
    }
    Some(el.tensor(y, span))
}

/// Adds the training step's update `moving = moving * momentum + batch * (1 - momentum)` (Keras's
/// form). A layer applied twice moves its statistics twice, the second time from the first's
/// result, as Keras's two assignments do.
fn move_toward(
    el: &mut Elab,
    moving: ValueId,
    batch: ValueId,
    momentum: f64,
    span: Span,
) -> Option<()> {
    let Op::Param { index } = el.graph.node(moving).op else {
        unreachable!("internal error: a layer's parameter is an `Op::Param`");
    };
    let target = Slot::Param(index);
    let earlier = el.graph.updates.iter().position(|u| u.target == target);
    let from = earlier.map_or(moving, |i| el.graph.updates[i].value);
    let keep = el.constant(momentum, span).id;
    let take = el.constant(1.0 - momentum, span).id;
    let kept = binary(el, BinaryOp::Mul, from, keep, span)?;
    let taken = binary(el, BinaryOp::Mul, batch, take, span)?;
    let value = binary(el, BinaryOp::Add, kept, taken, span)?;
    match earlier {
        Some(i) => el.graph.updates[i].value = value,
        None => el.graph.updates.push(Update { target, value }),
    }
    Some(())
}

fn layer_normalization(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    mut args: Args,
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<Value> {
    let n = configure(el, layer, &mut args, (x, xspan), span)?;
    let params = parameters(el, layer, &LAYER_NORMALIZATION, &mut args, &n, x, span)?;
    let [gamma, beta] = params[..] else {
        return None;
    };
    // Each sample's statistics over the features, kept as an axis of size 1 to broadcast back.
    let reduce = Op::Reduce {
        kind: ReduceKind::Mean,
        axes: vec![n.axis],
        keep_dims: true,
    };
    let mean = el.add(reduce.clone(), &[n.x], span)?;
    let centered = binary(el, BinaryOp::Sub, n.x, mean, span)?;
    let squares = binary(el, BinaryOp::Mul, centered, centered, span)?;
    let variance = el.add(reduce, &[squares], span)?;
    let y = normalize(el, &n, (mean, variance), (gamma, beta), span)?;
    el.carry_mask(x.id, y);
    Some(el.tensor(y, span))
}
