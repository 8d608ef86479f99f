//! Keras's `MultiHeadAttention`: a query sequence attends to a value sequence (and its key,
//! by default the value; the value by default the query, which is self-attention), written with
//! the IR's batched products, softmax and dropout, so that it is differentiated and fused like
//! any other code. Its weights have Keras's layout (`query.kernel [features, heads, key_dim]`,
//! …, `attention_output.kernel [heads, value_dim, features]`), so checkpoints carry Keras's
//! arrays.

use super::initializers::{GLOROT_UNIFORM, ZEROS};
use super::{
    Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, ParamDef, check_shared_width,
    create_params, size,
};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::ValueId;
use crate::ir::op::{BinaryOp, Op};
use crate::ir::shape::{Dim, Shape};
use std::rc::Rc;

const fn kernel(name: &'static str, init_arg: &'static str, shape: &'static str) -> ParamDef {
    ParamDef {
        name,
        init_arg,
        reg_arg: "kernel_regularizer",
        shape,
        init: &GLOROT_UNIFORM,
        when: "",
        trainable: true,
    }
}

const fn bias(name: &'static str, init_arg: &'static str, shape: &'static str) -> ParamDef {
    ParamDef {
        name,
        init_arg,
        reg_arg: "bias_regularizer",
        shape,
        init: &ZEROS,
        when: "with `use_bias`",
        trainable: true,
    }
}

/// Keras's `MultiHeadAttention`, applied to a query and optionally a value and a key.
pub static MULTI_HEAD_ATTENTION: BuiltinDef = BuiltinDef {
    name: "multi_head_attention",
    doc: "Keras's `MultiHeadAttention`, applied as `(query)` (self-attention) or `(query, value)` or `(query, value, key)`, sequences `f32[B, T, features]`, `f32[B, S, value_features]`, `f32[B, S, key_features]`: each head's `softmax(q·kᵀ / √key_dim)·v`, the heads joined by an output projection back to the query's `features`",
    args: &[
        ArgDef {
            name: "num_heads",
            kind: ArgKind::Size,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "key_dim",
            kind: ArgKind::Size,
            default: ArgDefault::Required,
            doc: "each head's query and key width",
        },
        ArgDef {
            name: "value_dim",
            kind: ArgKind::Size,
            default: ArgDefault::Computed("key_dim"),
            doc: "each head's value width",
        },
        ArgDef {
            name: "dropout",
            kind: ArgKind::Rate,
            default: ArgDefault::Number(0.0),
            doc: "on the attention weights, in training",
        },
        ArgDef {
            name: "use_bias",
            kind: ArgKind::Bool,
            default: ArgDefault::Bool(true),
            doc: "",
        },
        ArgDef {
            name: "use_causal_mask",
            kind: ArgKind::Bool,
            default: ArgDefault::Bool(false),
            doc: "each position attends to itself and earlier ones only (a language model's decoder)",
        },
        ArgDef {
            name: "seed",
            kind: ArgKind::Count,
            default: ArgDefault::Int(0),
            doc: "of the dropout mask",
        },
    ],
    params: &[
        kernel(
            "query.kernel",
            "kernel_initializer",
            "f32[features, num_heads, key_dim]",
        ),
        bias("query.bias", "bias_initializer", "f32[num_heads, key_dim]"),
        kernel(
            "key.kernel",
            "kernel_initializer",
            "f32[key_features, num_heads, key_dim]",
        ),
        bias("key.bias", "bias_initializer", "f32[num_heads, key_dim]"),
        kernel(
            "value.kernel",
            "kernel_initializer",
            "f32[value_features, num_heads, value_dim]",
        ),
        bias(
            "value.bias",
            "bias_initializer",
            "f32[num_heads, value_dim]",
        ),
        kernel(
            "attention_output.kernel",
            "kernel_initializer",
            "f32[num_heads, value_dim, features]",
        ),
        bias("attention_output.bias", "bias_initializer", "f32[features]"),
    ],
    apply: Apply::LayerOf {
        inputs: &["query", "value", "key"],
        build: multi_head_attention,
    },
};

fn multi_head_attention(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    mut args: Args,
    inputs: &[(Tensor, Span)],
    span: Span,
) -> Option<Value> {
    let name = MULTI_HEAD_ATTENTION.name;
    let heads = size(el, args.take("num_heads"), name, "num_heads", layer.span)?;
    let key_dim = size(el, args.take("key_dim"), name, "key_dim", layer.span)?;
    let value_dim = match args.take("value_dim") {
        None => key_dim,
        given => size(el, given, name, "value_dim", layer.span)?,
    };
    let rate = args.number(el, "dropout")?;
    let use_bias = args.flag(el, "use_bias")?;
    let causal = args.flag(el, "use_causal_mask")?;
    let seed = args.count(el, "seed", "a non-negative whole number")?;
    // Keras's `call(query, value, key=None)`: the value is the query when not given (Kiln's
    // self-attention), the key the value.
    let query = inputs[0];
    let value_given = inputs.get(1).copied();
    let key_given = inputs.get(2).copied();
    let read = |el: &mut Elab, (t, tspan): (Tensor, Span)| -> Option<Sequence> {
        let t = el.float_tensor(t, tspan)?;
        let (batch, steps, features) = super::recurrent::sequence(
            el,
            t,
            name,
            tspan,
            "attention reads a batch of sequences, such as an embedding's output",
        )?;
        Some(Sequence {
            x: t,
            span: tspan,
            batch,
            steps,
            features,
        })
    };
    let q = read(el, query)?;
    let v = match value_given {
        Some(v) => read(el, v)?,
        None => q,
    };
    let k = match key_given {
        Some(k) => read(el, k)?,
        None => v,
    };
    if k.steps != v.steps {
        let (ktext, vtext) = (el.text(k.x), el.text(v.x));
        el.error(
            Diagnostic::error(
                "E0232",
                format!(
                    "`{name}`'s key has {} steps and its value {}: each key is the key of one value",
                    k.steps, v.steps
                ),
            )
            .primary(k.span, format!("the key is {ktext}"))
            .secondary(v.span, format!("the value is {vtext}"))
            .help("give the key and the value the same number of steps, or leave the key out (it is then the value)"),
        );
        return None;
    }
    let (batch, steps, features) = (q.batch, q.steps, q.features);
    let with_bias = |shape: Vec<usize>| use_bias.then_some(shape);
    let shapes = [
        Some(vec![features, heads, key_dim]),
        with_bias(vec![heads, key_dim]),
        Some(vec![k.features, heads, key_dim]),
        with_bias(vec![heads, key_dim]),
        Some(vec![v.features, heads, value_dim]),
        with_bias(vec![heads, value_dim]),
        Some(vec![heads, value_dim, features]),
        with_bias(vec![features]),
    ];
    let params = create_params(
        el,
        layer,
        &MULTI_HEAD_ATTENTION,
        &mut args,
        &shapes,
        layer.span,
    )?;
    // A shared layer meets the widths it was built for: query, key and value each.
    check_shared_width(el, layer, (q.x, q.span), params[0], features)?;
    check_shared_width(el, layer, (k.x, k.span), params[2], k.features)?;
    check_shared_width(el, layer, (v.x, v.span), params[4], v.features)?;
    // The parameters in order, the biases only with `use_bias`.
    let mut next = params.into_iter();
    let mut take = |present: bool| if present { next.next() } else { None };
    let (wq, bq) = (take(true)?, take(use_bias));
    let (wk, bk) = (take(true)?, take(use_bias));
    let (wv, bv) = (take(true)?, take(use_bias));
    let (wo, bo) = (take(true)?, take(use_bias));

    // [B, T, features] · [features, heads·width] (+ bias) → [B, heads, T, width].
    let project = |el: &mut Elab, s: &Sequence, w: ValueId, b: Option<ValueId>, width: usize| {
        let flat = el.add_reshape(w, Shape::fixed(&[s.features, heads * width]), span)?;
        let mut z = el.add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            },
            &[s.x.id, flat],
            span,
        )?;
        if let Some(b) = b {
            let b = el.add_reshape(b, Shape::fixed(&[heads * width]), span)?;
            z = el.add(Op::Binary(BinaryOp::Add), &[z, b], span)?;
        }
        let split = el.add_reshape(
            z,
            Shape(vec![
                batch,
                Dim::Fixed(s.steps),
                Dim::Fixed(heads),
                Dim::Fixed(width),
            ]),
            span,
        )?;
        el.add(
            Op::Transpose {
                perm: vec![0, 2, 1, 3],
            },
            &[split],
            span,
        )
    };
    let queries = project(el, &q, wq, bq, key_dim)?;
    let keys = project(el, &k, wk, bk, key_dim)?;
    let values = project(el, &v, wv, bv, value_dim)?;
    // Keras scales the queries before the product.
    let scale = el.constant(1.0 / (key_dim as f64).sqrt(), span);
    let queries = el.add(Op::Binary(BinaryOp::Mul), &[queries, scale.id], span)?;
    let scores = el.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: true,
        },
        &[queries, keys],
        span,
    )?;
    let softmax = if causal {
        Op::CausalSoftmax
    } else {
        Op::Softmax
    };
    // Keras's padding masks (`embedding(mask_zero: true)`): query `i` attends to key `j` only
    // when the query, the value and the key at those steps are all real. As Keras 3's masked
    // softmax: a masked score is -1e9 before the softmax and its weight 0 after it, so a padded
    // query's row is all 0.
    let distinct_key = key_given.is_some_and(|(key, _)| key.id != v.x.id);
    let pairs = attention_mask(
        el,
        AttentionMasks {
            query: sequence_mask(el, &q),
            value: sequence_mask(el, &v),
            key: if distinct_key {
                sequence_mask(el, &k)
            } else {
                None
            },
        },
        (batch, steps, v.steps),
        span,
    )?;
    let scores = match pairs {
        Some(pairs) => {
            let kept = el.add(Op::Binary(BinaryOp::Mul), &[scores, pairs], span)?;
            let one = el.constant(1.0, span);
            let dropped = el.add(Op::Binary(BinaryOp::Sub), &[pairs, one.id], span)?;
            let large = el.constant(1e9, span);
            let floor = el.add(Op::Binary(BinaryOp::Mul), &[dropped, large.id], span)?;
            el.add(Op::Binary(BinaryOp::Add), &[kept, floor], span)?
        }
        None => scores,
    };
    let mut weights = el.add(softmax, &[scores], span)?;
    if let Some(pairs) = pairs {
        weights = el.add(Op::Binary(BinaryOp::Mul), &[weights, pairs], span)?;
    }
    if rate > 0.0 {
        let step = el.step_input(span);
        let first_row = el.graph.first_row_input(Some(span));
        weights = el.add(
            Op::Dropout {
                rate: rate as f32,
                seed,
            },
            &[weights, step, first_row],
            span,
        )?;
    }
    let attended = el.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        },
        &[weights, values],
        span,
    )?;
    // [B, heads, T, value_dim] → [B, T, heads·value_dim] · [heads·value_dim, features].
    let joined = el.add(
        Op::Transpose {
            perm: vec![0, 2, 1, 3],
        },
        &[attended],
        span,
    )?;
    let joined = el.add_reshape(
        joined,
        Shape(vec![
            batch,
            Dim::Fixed(steps),
            Dim::Fixed(heads * value_dim),
        ]),
        span,
    )?;
    let wo = el.add_reshape(wo, Shape::fixed(&[heads * value_dim, features]), span)?;
    let mut out = el.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        },
        &[joined, wo],
        span,
    )?;
    if let Some(bo) = bo {
        out = el.add(Op::Binary(BinaryOp::Add), &[out, bo], span)?;
    }
    // The result keeps the query's mask, as Keras's does.
    el.carry_mask(q.x.id, out);
    Some(el.tensor(out, span))
}

/// One input of attention: the sequence and its sizes.
#[derive(Clone, Copy)]
struct Sequence {
    x: Tensor,
    span: Span,
    batch: Dim,
    steps: usize,
    features: usize,
}

/// The padding masks (`f32[B, steps]`) attention's inputs carry.
struct AttentionMasks {
    query: Option<ValueId>,
    value: Option<ValueId>,
    key: Option<ValueId>,
}

fn sequence_mask(el: &Elab, s: &Sequence) -> Option<ValueId> {
    el.mask_of(s.x.id)
        .filter(|&m| el.graph.shape(m).rank() == 2)
}

/// Which (query, key) pairs attend, as Keras 3's `_compute_attention_mask` without the causal
/// part: `query[b, i] · value[b, j] · key[b, j]` of the masks present, shaped to broadcast over
/// `f32[B, heads, T, S]` (`f32[B, 1, T, 1]` for a query mask alone). `Some(None)` when no input
/// is masked.
fn attention_mask(
    el: &mut Elab,
    masks: AttentionMasks,
    (batch, queries, keys): (Dim, usize, usize),
    span: Span,
) -> Option<Option<ValueId>> {
    let shape = |rows: usize, cols: usize| {
        Shape(vec![
            batch,
            Dim::Fixed(1),
            Dim::Fixed(rows),
            Dim::Fixed(cols),
        ])
    };
    let mut pairs = match masks.query {
        Some(m) => Some(el.add_reshape(m, shape(queries, 1), span)?),
        None => None,
    };
    for m in [masks.value, masks.key].into_iter().flatten() {
        let m = el.add_reshape(m, shape(1, keys), span)?;
        pairs = Some(match pairs {
            Some(p) => el.add(Op::Binary(BinaryOp::Mul), &[p, m], span)?,
            None => m,
        });
    }
    Some(pairs)
}
