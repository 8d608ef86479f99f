//! Keras's `Bidirectional` over a recurrent layer: the layer runs forwards and a copy of it
//! backwards (`go_backwards` flipped) over the same sequence, each with its own weights named as
//! Keras 3 names them (`bidirectional.forward_lstm.kernel`, `bidirectional.backward_lstm.kernel`),
//! and the two results are merged. A returned sequence of the backward copy is flipped back into
//! time order first, as Keras does, so that both halves of a step describe the same position.

use super::recurrent::{Direction, RECURRENT, recurrent};
use super::{Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef};
use crate::check::args::Aliases;
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::ValueId;
use crate::ir::op::{BinaryOp, Op};
use crate::ir::shape::Dim;
use std::rc::Rc;

const MERGE_MODES: &[&str] = &["concat", "sum", "mul", "ave"];

pub static BIDIRECTIONAL: BuiltinDef = BuiltinDef {
    name: "bidirectional",
    doc: "Keras's `Bidirectional`: a recurrent layer run forwards and a copy of it backwards over the same sequence, the results merged (`f32[B, 2·units]` concatenated); weights `bidirectional.forward_lstm.kernel`, `bidirectional.backward_lstm.kernel`, … as Keras 3 names them",
    args: &[
        ArgDef {
            name: "layer",
            kind: ArgKind::Function,
            default: ArgDefault::Required,
            doc: "a configured `simple_rnn`, `lstm` or `gru`, such as `lstm(64, return_sequences: true)`",
        },
        ArgDef {
            name: "merge_mode",
            kind: ArgKind::Choice(MERGE_MODES),
            default: ArgDefault::Computed("\"concat\""),
            doc: "how the two directions' results combine: joined on the last axis, added, multiplied or averaged",
        },
    ],
    params: &[],
    apply: Apply::Layer(bidirectional),
};

#[derive(Clone, Copy)]
enum Merge {
    Concat,
    Sum,
    Mul,
    Ave,
}

fn bidirectional(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    mut args: Args,
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<Value> {
    let Some(given) = args.take("layer") else {
        el.missing("bidirectional", "layer", span);
        return None;
    };
    let (def, inner_args, inner_span) = wrapped(el, &given)?;
    let merge = merge_mode(el, args.take("merge_mode"))?;
    let slots = el.bind_args_named(
        def.name,
        inner_args.clone(),
        &def.arg_names(),
        def.init_args().len(),
        Aliases::None,
    )?;
    // The backward copy is the layer with `go_backwards: true`, as Keras makes it; Keras
    // rejects a wrapped layer that already runs backwards, since both copies would.
    let at = def.arg_names().iter().position(|n| *n == "go_backwards")?;
    if let Some(arg) = &slots[at]
        && !matches!(arg.value, Value::Bool(false))
    {
        el.error(
            Diagnostic::error(
                "E0230",
                "`bidirectional` wraps a recurrent layer that runs forwards",
            )
            .primary(
                arg.span,
                "the backward copy is this layer with `go_backwards: true`",
            )
            .help("leave `go_backwards` out: `bidirectional` runs the layer both ways"),
        );
        return None;
    }
    let mut backward_slots = slots.clone();
    backward_slots[at] = Some(ArgValue {
        name: None,
        value: Value::Bool(true),
        span: inner_span,
    });
    // Each direction is a layer of its own; applied again, the wrapper shares both halves of
    // its weights (the halves have the same parameters in the same order).
    let shared = layer.built.borrow().clone();
    let (outer, names, prebuilt) = match &shared {
        Some(built) => {
            let (f, b) = built.params.split_at(built.params.len() / 2);
            (
                built.name.clone(),
                [None, None],
                [Some(f.to_vec()), Some(b.to_vec())],
            )
        }
        None => {
            let inner = el.layer_name(def.name);
            let outer = el.layer_name(BIDIRECTIONAL.name);
            let names = [
                Some(format!("{outer}.forward_{inner}")),
                Some(format!("{outer}.backward_{inner}")),
            ];
            (outer, names, [None, None])
        }
    };
    let mut outputs = Vec::new();
    let mut params = Vec::new();
    for (i, slots) in [slots, backward_slots].into_iter().enumerate() {
        let instance = Rc::new(LayerInstance {
            kind: LayerKind::Builtin {
                name: def.name,
                args: inner_args.clone(),
            },
            span: inner_span,
            built: std::cell::RefCell::new(prebuilt[i].clone().map(|params| Built {
                name: outer.clone(),
                params,
            })),
        });
        let direction = Direction {
            name: names[i].clone(),
            flip: i == 1,
        };
        let out = recurrent(
            el,
            &instance,
            def,
            Args { def, slots },
            (x, xspan),
            span,
            &direction,
        )?;
        let Value::Tensor(out) = out else {
            return None;
        };
        outputs.push(out.id);
        params.extend(
            instance
                .built
                .borrow()
                .iter()
                .flat_map(|b| b.params.clone()),
        );
    }
    let mut merged = merge_outputs(el, merge, outputs[0], outputs[1], span)?;
    if let Some(mask) = el.mask_of(outputs[0]) {
        // Keras's `Bidirectional` turns on its layers' `zero_output_for_mask`: a returned
        // sequence is 0 at padded steps (in either direction, and so after any merge).
        let mut column = el.graph.shape(mask).clone();
        column.0.push(Dim::Fixed(1));
        let column = el.add_reshape(mask, column, span)?;
        merged = el.add(Op::Binary(BinaryOp::Mul), &[merged, column], span)?;
        el.set_mask(merged, mask);
    }
    if shared.is_none() {
        *layer.built.borrow_mut() = Some(Built {
            name: outer,
            params,
        });
    }
    Some(el.tensor(merged, span))
}

/// The recurrent layer `bidirectional` wraps: its definition, configuration and span; else
/// E0230.
fn wrapped(el: &mut Elab, given: &ArgValue) -> Option<(&'static BuiltinDef, Vec<ArgValue>, Span)> {
    if let Value::Func(Func::Layer(inner)) = &given.value
        && let LayerKind::Builtin { name, args } = &inner.kind
        && let Some((def, _)) = RECURRENT.iter().find(|(d, _)| d.name == *name)
    {
        return Some((def, args.clone(), inner.span));
    }
    if !matches!(given.value, Value::Error) {
        el.error(
            Diagnostic::error(
                "E0230",
                "`bidirectional` wraps a recurrent layer: `simple_rnn`, `lstm` or `gru`",
            )
            .primary(given.span, format!("found {}", describe(&given.value)))
            .help("configure the layer inside the call: `bidirectional(lstm(64))`"),
        );
    }
    None
}

fn describe(value: &Value) -> String {
    match value {
        Value::Func(Func::Layer(inner)) => match &inner.kind {
            LayerKind::Builtin { name, .. } => format!("a `{name}` layer"),
            LayerKind::User { name, .. } => format!("the user layer `{name}`"),
        },
        Value::Func(Func::Builtin(name)) => format!("`{name}` without its configuration"),
        other => other.kind_name().to_string(),
    }
}

/// `merge_mode`, `"concat"` when left out; else E0231.
fn merge_mode(el: &mut Elab, given: Option<ArgValue>) -> Option<Merge> {
    let Some(given) = given else {
        return Some(Merge::Concat);
    };
    if let Value::Str(text) = &given.value {
        let modes = [Merge::Concat, Merge::Sum, Merge::Mul, Merge::Ave];
        if let Some(i) = MERGE_MODES.iter().position(|m| m == text) {
            return Some(modes[i]);
        }
    }
    el.error(
        Diagnostic::error(
            "E0231",
            "`merge_mode` of `bidirectional` is \"concat\", \"sum\", \"mul\" or \"ave\"",
        )
        .primary(given.span, "not one of the merge modes")
        .help("a layer has one result here, so Keras's `merge_mode: None` (both results apart) has no counterpart: concatenate and `slice` them"),
    );
    None
}

fn merge_outputs(
    el: &mut Elab,
    merge: Merge,
    forward: ValueId,
    backward: ValueId,
    span: Span,
) -> Option<ValueId> {
    let pair = [forward, backward];
    match merge {
        Merge::Concat => {
            let axis = el.graph.shape(forward).rank() - 1;
            el.add(Op::Concat { axis }, &pair, span)
        }
        Merge::Sum => el.add(Op::Binary(BinaryOp::Add), &pair, span),
        Merge::Mul => el.add(Op::Binary(BinaryOp::Mul), &pair, span),
        Merge::Ave => {
            let sum = el.add(Op::Binary(BinaryOp::Add), &pair, span)?;
            let half = el.constant(0.5, span);
            el.add(Op::Binary(BinaryOp::Mul), &[sum, half.id], span)
        }
    }
}
