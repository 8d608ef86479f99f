//! Keras's recurrent layers (`SimpleRNN`, `LSTM`, `GRU`), each a scan over the time axis
//! (`Op::Recurrence`, `ir::recurrence`): the input projection for every step is one product
//! outside the loop, the recurrence is the op, and the hidden states are the first block of its
//! tape.

use super::initializers::{GLOROT_UNIFORM, ORTHOGONAL, UNIT_FORGET_BIAS, ZEROS};
use super::{
    Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, ParamDef, check_shared_width,
    create_named_params, size,
};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::op::{BinaryOp, Op};
use crate::ir::recurrence::{Activation, Cell, CellKind};
use crate::ir::shape::{Dim, Shape};
use std::rc::Rc;

const UNITS: ArgDef = ArgDef {
    name: "units",
    kind: ArgKind::Size,
    default: ArgDefault::Required,
    doc: "",
};
const ACTIVATION: ArgDef = ArgDef {
    name: "activation",
    kind: ArgKind::Function,
    default: ArgDefault::Computed("tanh"),
    doc: "`tanh`, `sigmoid`, `relu` or `linear`",
};
const RECURRENT_ACTIVATION: ArgDef = ArgDef {
    name: "recurrent_activation",
    kind: ArgKind::Function,
    default: ArgDefault::Computed("sigmoid"),
    doc: "the gates': `sigmoid`, `tanh`, `relu` or `linear`",
};
const USE_BIAS: ArgDef = ArgDef {
    name: "use_bias",
    kind: ArgKind::Bool,
    default: ArgDefault::Bool(true),
    doc: "",
};
const RETURN_SEQUENCES: ArgDef = ArgDef {
    name: "return_sequences",
    kind: ArgKind::Bool,
    default: ArgDefault::Bool(false),
    doc: "every step's hidden state `f32[B, T, units]`, not only the last `f32[B, units]`",
};
const GO_BACKWARDS: ArgDef = ArgDef {
    name: "go_backwards",
    kind: ArgKind::Bool,
    default: ArgDefault::Bool(false),
    doc: "run from the last step to the first; a returned sequence is in that order",
};
const KERNEL: ParamDef = ParamDef {
    name: "kernel",
    init_arg: "kernel_initializer",
    reg_arg: "kernel_regularizer",
    shape: "f32[features, gates·units]",
    init: &GLOROT_UNIFORM,
    when: "",
    trainable: true,
};
const RECURRENT_KERNEL: ParamDef = ParamDef {
    name: "recurrent_kernel",
    init_arg: "recurrent_initializer",
    reg_arg: "recurrent_regularizer",
    shape: "f32[units, gates·units]",
    init: &ORTHOGONAL,
    when: "",
    trainable: true,
};
const BIAS: ParamDef = ParamDef {
    name: "bias",
    init_arg: "bias_initializer",
    reg_arg: "bias_regularizer",
    shape: "f32[gates·units]",
    init: &ZEROS,
    when: "with `use_bias`",
    trainable: true,
};

/// Keras's `SimpleRNN`.
pub static SIMPLE_RNN: BuiltinDef = BuiltinDef {
    name: "simple_rnn",
    doc: "Keras's `SimpleRNN` over `f32[B, T, features]`: `h = activation(x·kernel + h·recurrent_kernel + bias)` at each step",
    args: &[UNITS, ACTIVATION, USE_BIAS, RETURN_SEQUENCES, GO_BACKWARDS],
    params: &[KERNEL, RECURRENT_KERNEL, BIAS],
    apply: Apply::Layer(|el, layer, args, x, span| {
        recurrent(el, layer, &SIMPLE_RNN, args, x, span, &Direction::ALONE)
    }),
};

/// Keras's `LSTM`.
pub static LSTM: BuiltinDef = BuiltinDef {
    name: "lstm",
    doc: "Keras's `LSTM` over `f32[B, T, features]`, gates `i, f, c, o` in Keras's order: `c = f·c + i·activation(z_c)`, `h = o·activation(c)`",
    args: &[
        UNITS,
        ACTIVATION,
        RECURRENT_ACTIVATION,
        USE_BIAS,
        RETURN_SEQUENCES,
        GO_BACKWARDS,
        ArgDef {
            name: "unit_forget_bias",
            kind: ArgKind::Bool,
            default: ArgDefault::Bool(true),
            doc: "start the forget gate's bias at 1 (the rest at 0)",
        },
    ],
    params: &[
        KERNEL,
        RECURRENT_KERNEL,
        ParamDef {
            name: "bias",
            init_arg: "bias_initializer",
            reg_arg: "bias_regularizer",
            shape: "f32[4·units]",
            init: &UNIT_FORGET_BIAS,
            when: "with `use_bias` and `unit_forget_bias`",
            trainable: true,
        },
        ParamDef {
            when: "with `use_bias`, without `unit_forget_bias`",
            ..BIAS
        },
    ],
    apply: Apply::Layer(|el, layer, args, x, span| {
        recurrent(el, layer, &LSTM, args, x, span, &Direction::ALONE)
    }),
};

/// Keras's `GRU` (with `reset_after`, its default).
pub static GRU: BuiltinDef = BuiltinDef {
    name: "gru",
    doc: "Keras's `GRU` over `f32[B, T, features]` with `reset_after` (Keras's default, cuDNN's and PyTorch's form), gates `z, r, h`: `h = z·h + (1 − z)·activation(x·W_h + r·(h·U_h + b_h))`",
    args: &[
        UNITS,
        ACTIVATION,
        RECURRENT_ACTIVATION,
        USE_BIAS,
        RETURN_SEQUENCES,
        GO_BACKWARDS,
        ArgDef {
            name: "reset_after",
            kind: ArgKind::Bool,
            default: ArgDefault::Bool(true),
            doc: "only `true` (the reset gate after the recurrent product)",
        },
    ],
    params: &[
        KERNEL,
        RECURRENT_KERNEL,
        ParamDef {
            shape: "f32[2, 3·units] (input bias, recurrent bias)",
            ..BIAS
        },
    ],
    apply: Apply::Layer(|el, layer, args, x, span| {
        recurrent(el, layer, &GRU, args, x, span, &Direction::ALONE)
    }),
};

/// The batch, step count and width of a sequence `f32[B, steps, features]` a layer reads; else
/// E0229 with `help`.
pub(super) fn sequence(
    el: &mut Elab,
    x: Tensor,
    name: &str,
    span: Span,
    help: &str,
) -> Option<(Dim, usize, usize)> {
    if let [batch, Dim::Fixed(steps), Dim::Fixed(features)] = el.ty(x).shape.dims()
        && *steps > 0
    {
        return Some((*batch, *steps, *features));
    }
    let text = el.text(x);
    el.error(
        Diagnostic::error(
            "E0229",
            format!("`{name}` needs a sequence f32[B, steps, features], found {text}"),
        )
        .primary(span, "applied here")
        .secondary(x.origin, format!("this is {text}"))
        .help(help.to_string()),
    );
    None
}

/// An activation argument as a cell's activation: a function or its name, one of those whose
/// derivative the reverse scan computes from the stored output.
fn cell_activation(
    el: &mut Elab,
    layer: &str,
    arg: Option<ArgValue>,
    default: Activation,
) -> Option<Activation> {
    let Some(arg) = arg else {
        return Some(default);
    };
    let name = match &arg.value {
        Value::Str(name) => Some(name.as_str()),
        Value::Func(Func::Builtin(name)) => Some(*name),
        _ => None,
    };
    if let Some(a) = Activation::ALL.into_iter().find(|a| Some(a.name()) == name) {
        return Some(a);
    }
    let names: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
    el.error(
        Diagnostic::error(
            "E0228",
            format!("`{layer}` cannot use this activation"),
        )
        .primary(arg.span, "not one of the recurrent activations")
        .note(format!(
            "a recurrent layer's activations are one of {}: the reverse scan computes each one's derivative from its stored output",
            names.join(", ")
        )),
    );
    None
}

/// How a recurrent layer is applied: alone, or as one direction of `bidirectional`.
pub(super) struct Direction {
    /// The layer's name in its parameters' names (`bidirectional.forward_lstm`); `None`: its
    /// own Keras-style name (`lstm`, `lstm_1`, …).
    pub name: Option<String>,
    /// Whether a returned sequence is flipped from the order the scan ran in (Keras's
    /// `Bidirectional` flips its backward layer's).
    pub flip: bool,
}

impl Direction {
    const ALONE: Direction = Direction {
        name: None,
        flip: false,
    };
}

/// The recurrent layers' definitions, and each one's cell.
pub(super) const RECURRENT: [(&BuiltinDef, CellKind); 3] = [
    (&SIMPLE_RNN, CellKind::SimpleRnn),
    (&LSTM, CellKind::Lstm),
    (&GRU, CellKind::Gru),
];

pub(super) fn recurrent(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    def: &'static BuiltinDef,
    mut args: Args,
    (x, xspan): (Tensor, Span),
    span: Span,
    direction: &Direction,
) -> Option<Value> {
    let name = def.name;
    let kind = RECURRENT
        .iter()
        .find(|(d, _)| d.name == name)
        .map(|&(_, kind)| kind)?;
    let units = size(el, args.take("units"), name, "units", layer.span)?;
    let activation = cell_activation(el, name, args.take("activation"), Activation::Tanh)?;
    let recurrent_activation = match kind {
        CellKind::SimpleRnn => Activation::Sigmoid,
        _ => cell_activation(
            el,
            name,
            args.take("recurrent_activation"),
            Activation::Sigmoid,
        )?,
    };
    let use_bias = args.flag(el, "use_bias")?;
    let return_sequences = args.flag(el, "return_sequences")?;
    let reverse = args.flag(el, "go_backwards")?;
    let forget_bias = kind == CellKind::Lstm && args.flag(el, "unit_forget_bias")?;
    if kind == CellKind::Gru {
        let given = args.take("reset_after");
        if let Some(ArgValue {
            value: Value::Bool(false),
            span: at,
            ..
        }) = given
        {
            el.error(
                Diagnostic::error("E0228", "`gru` supports only `reset_after: true`")
                    .primary(at, "the older GRU form is not implemented")
                    .help("leave `reset_after` out: `true` is Keras's default"),
            );
            return None;
        }
    }
    // Keras's mask (`embedding(mask_zero: true)`): padded steps carry the state over.
    let mask = el.mask_of(x.id).filter(|&m| el.graph.shape(m).rank() == 2);
    let cell = Cell {
        kind,
        units,
        activation,
        recurrent_activation,
        reverse,
        masked: mask.is_some(),
    };
    let x = el.float_tensor(x, xspan)?;
    let (_, steps, features) = sequence(
        el,
        x,
        name,
        span,
        "a recurrent layer reads a batch of sequences: tokens through `embedding`, or features per time step",
    )?;
    let gw = cell.gate_width();
    let bias_shape = match kind {
        CellKind::Gru => vec![2, gw],
        _ => vec![gw],
    };
    let shapes = [
        Some(vec![features, gw]),
        Some(vec![units, gw]),
        (use_bias && (kind != CellKind::Lstm || forget_bias)).then(|| bias_shape.clone()),
        (use_bias && kind == CellKind::Lstm && !forget_bias).then_some(bias_shape),
    ];
    let params = create_named_params(
        el,
        layer,
        def,
        &mut args,
        &shapes[..def.params.len()],
        layer.span,
        direction.name.clone(),
    )?;
    let (kernel, recurrent_kernel) = (*params.first()?, *params.get(1)?);
    check_shared_width(el, layer, (x, span), kernel, features)?;
    let kernel = Tensor {
        id: kernel,
        origin: layer.span,
    };
    let mut xw = el.matmul((x, xspan), (kernel, layer.span), span)?;
    let mut inputs = vec![recurrent_kernel];
    match (params.get(2), kind) {
        (Some(&bias), CellKind::Gru) => {
            // Row 0 is added to the input projection, row 1 to the recurrent product.
            let row = |el: &mut Elab, r: usize| {
                let sliced = el.add(
                    Op::Slice {
                        axis: 0,
                        start: r,
                        end: r + 1,
                    },
                    &[bias],
                    span,
                )?;
                el.add_reshape(sliced, Shape::fixed(&[gw]), span)
            };
            let input_bias = row(el, 0)?;
            xw = el.add(Op::Binary(BinaryOp::Add), &[xw, input_bias], span)?;
            inputs.push(row(el, 1)?);
        }
        (Some(&bias), _) => xw = el.add(Op::Binary(BinaryOp::Add), &[xw, bias], span)?,
        (None, CellKind::Gru) => {
            let zero = el.constant(0.0, span);
            inputs.push(el.add_broadcast(zero.id, Shape::fixed(&[gw]), span)?);
        }
        (None, _) => {}
    }
    inputs.insert(0, xw);
    inputs.extend(mask);
    let tape = el.add(Op::Recurrence { cell: cell.clone() }, &inputs, span)?;
    let states = el.add(
        Op::Slice {
            axis: 2,
            start: 0,
            end: units,
        },
        &[tape],
        span,
    )?;
    // The tape's rows follow the input's time positions; Keras returns them in processing
    // order, and the last state is the one processed last.
    let step = |el: &mut Elab, t: usize| {
        el.add(
            Op::Slice {
                axis: 1,
                start: t,
                end: t + 1,
            },
            &[states],
            span,
        )
    };
    let out = match (return_sequences, reverse != direction.flip) {
        (true, false) => states,
        (true, true) if steps == 1 => states,
        (true, true) => {
            let reversed: Option<Vec<_>> = (0..steps).rev().map(|t| step(el, t)).collect();
            el.add(Op::Concat { axis: 1 }, &reversed?, span)?
        }
        (false, _) => {
            let last = step(el, if reverse { 0 } else { steps - 1 })?;
            let batch = el.graph.shape(states).0[0];
            el.add_reshape(last, Shape(vec![batch, Dim::Fixed(units)]), span)?
        }
    };
    if let (Some(mask), true) = (mask, return_sequences) {
        // Keras passes the mask on as it came, even when `go_backwards` reversed the sequence.
        el.set_mask(out, mask);
    }
    Some(el.tensor(out, span))
}
