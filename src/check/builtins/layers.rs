//! The built-in layers with parameters: each definition, then how it is applied.

use super::initializers::{GLOROT_UNIFORM, UNIFORM, ZEROS};
use super::{
    Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, ParamDef, check_shared_width,
    create_params, find, size,
};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::ValueId;
use crate::ir::op::{BinaryOp, Op};
use crate::ir::shape::{DType, Dim, Shape};
use std::rc::Rc;

/// Keras's `Dense`.
pub static DENSE: BuiltinDef = BuiltinDef {
    name: "dense",
    doc: "Keras's `Dense`: `activation(x @ kernel + bias)` over the last axis (`f32[B, T, K]` → `f32[B, T, units]`)",
    args: &[
        ArgDef {
            name: "units",
            kind: ArgKind::Size,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "activation",
            kind: ArgKind::Function,
            default: ArgDefault::Computed("linear"),
            doc: "any function of one tensor, or a built-in's name as a string",
        },
        ArgDef {
            name: "use_bias",
            kind: ArgKind::Bool,
            default: ArgDefault::Bool(true),
            doc: "",
        },
    ],
    params: &[
        ParamDef {
            name: "kernel",
            init_arg: "kernel_initializer",
            reg_arg: "kernel_regularizer",
            shape: "f32[in, units]",
            init: &GLOROT_UNIFORM,
            when: "",
            trainable: true,
        },
        ParamDef {
            name: "bias",
            init_arg: "bias_initializer",
            reg_arg: "bias_regularizer",
            shape: "f32[units]",
            init: &ZEROS,
            when: "with `use_bias`",
            trainable: true,
        },
    ],
    apply: Apply::Layer(dense),
};

/// Keras's `Embedding`.
pub static EMBEDDING: BuiltinDef = BuiltinDef {
    name: "embedding",
    doc: "Keras's `Embedding`: integer indices `i32[...]` pick rows of a table",
    args: &[
        ArgDef {
            name: "input_dim",
            kind: ArgKind::Size,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "output_dim",
            kind: ArgKind::Size,
            default: ArgDefault::Required,
            doc: "",
        },
        ArgDef {
            name: "mask_zero",
            kind: ArgKind::Bool,
            default: ArgDefault::Bool(false),
            doc: "index 0 is padding: the output carries a mask, which the recurrent layers and `global_average_pooling1d` honour",
        },
    ],
    params: &[ParamDef {
        name: "embeddings",
        init_arg: "embeddings_initializer",
        reg_arg: "embeddings_regularizer",
        shape: "f32[input_dim, output_dim]",
        init: &UNIFORM,
        when: "",
        trainable: true,
    }],
    apply: Apply::Layer(embedding),
};

fn dense(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    mut args: Args,
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<Value> {
    let units = size(el, args.take("units"), "dense", "units", layer.span)?;
    let activation = args.take("activation");
    let use_bias = args.flag(el, "use_bias")?;
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
    let shapes = [Some(vec![fan_in, units]), use_bias.then(|| vec![units])];
    let params = create_params(el, layer, &DENSE, &mut args, &shapes, layer.span)?;
    let kernel = *params.first()?;
    check_shared_width(el, layer, (x, span), kernel, fan_in)?;
    let kernel = Tensor {
        id: kernel,
        origin: layer.span,
    };
    let mut z = el.matmul((x, xspan), (kernel, layer.span), span)?;
    if let Some(&bias) = params.get(1) {
        z = el.add(Op::Binary(BinaryOp::Add), &[z, bias], span)?;
    }
    let out = activate(el, activation, z, span)?;
    if let Value::Tensor(t) = &out {
        el.carry_mask(x.id, t.id);
    }
    Some(out)
}

/// `activation(z)` for a layer's `activation` argument (a function, or a built-in's name as a
/// string); `z` itself when there is none.
pub(super) fn activate(
    el: &mut Elab,
    activation: Option<ArgValue>,
    z: ValueId,
    span: Span,
) -> Option<Value> {
    let z = Value::Tensor(Tensor {
        id: z,
        origin: span,
    });
    match activation {
        None => Some(z),
        Some(arg) => {
            let f = match &arg.value {
                Value::Str(name) => match find(name) {
                    Some(builtin) => Value::Func(Func::Builtin(builtin.name)),
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

fn embedding(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    mut args: Args,
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<Value> {
    let input_dim = size(
        el,
        args.take("input_dim"),
        "embedding",
        "input_dim",
        layer.span,
    )?;
    let output_dim = size(
        el,
        args.take("output_dim"),
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
    let mask_zero = args.flag(el, "mask_zero")?;
    let shapes = [Some(vec![input_dim, output_dim])];
    let params = create_params(el, layer, &EMBEDDING, &mut args, &shapes, layer.span)?;
    let table = *params.first()?;
    let out = el.add(Op::Gather, &[table, x.id], span)?;
    if mask_zero {
        let mask = padding_mask(el, x.id, input_dim, span)?;
        el.set_mask(out, mask);
    }
    Some(el.tensor(out, span))
}

/// Keras's `mask_zero` mask of indices `i32[B, T, ..]`: `f32[B, T, ..]`, 0 where the index is
/// 0 and 1 elsewhere, gathered from a constant column (0 for row 0, 1 for the rest) as the
/// embedding gathers its rows, so that it needs no integer comparison.
fn padding_mask(el: &mut Elab, ids: ValueId, input_dim: usize, span: Span) -> Option<ValueId> {
    let zero = el.constant(0.0, span);
    let mut rows = vec![el.add_broadcast(zero.id, Shape::fixed(&[1, 1]), span)?];
    if input_dim > 1 {
        let one = el.constant(1.0, span);
        rows.push(el.add_broadcast(one.id, Shape::fixed(&[input_dim - 1, 1]), span)?);
    }
    let column = el.add(Op::Concat { axis: 0 }, &rows, span)?;
    let picked = el.add(Op::Gather, &[column, ids], span)?;
    let shape = el.graph.shape(ids).clone();
    el.add_reshape(picked, shape, span)
}
