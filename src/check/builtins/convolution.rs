//! Keras's `Conv1D` and `Conv2D`: the input's patches (`unfold`) times the kernel reshaped to a
//! matrix, plus the bias, through the activation — so a convolution is trained by the same matrix
//! products, epilogues and gradients as `dense`.

use super::initializers::{GLOROT_UNIFORM, ZEROS};
use super::layers::activate;
use super::spatial::{PADDINGS, check_fits, padding, per_axis, spatial_input};
use super::{
    Apply, ArgDef, ArgDefault, ArgKind, Args, BuiltinDef, ParamDef, SharedMismatch, create_params,
    shared_mismatch, size,
};
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::op::{BinaryOp, Op};
use crate::ir::shape::{Dim, Shape};
use crate::ir::window::Window;
use std::rc::Rc;

const fn args(rank_doc: &'static str) -> [ArgDef; 7] {
    [
        ArgDef {
            name: "filters",
            kind: ArgKind::Size,
            default: ArgDefault::Required,
            doc: "output channels",
        },
        ArgDef {
            name: "kernel_size",
            kind: ArgKind::PerAxis,
            default: ArgDefault::Required,
            doc: rank_doc,
        },
        ArgDef {
            name: "activation",
            kind: ArgKind::Function,
            default: ArgDefault::Computed("linear"),
            doc: "any function of one tensor, or a built-in's name as a string",
        },
        ArgDef {
            name: "strides",
            kind: ArgKind::PerAxis,
            default: ArgDefault::Int(1),
            doc: "",
        },
        ArgDef {
            name: "padding",
            kind: ArgKind::Choice(PADDINGS),
            default: ArgDefault::Computed("\"valid\""),
            doc: "",
        },
        ArgDef {
            name: "dilation_rate",
            kind: ArgKind::PerAxis,
            default: ArgDefault::Int(1),
            doc: "not with strides > 1, as in Keras",
        },
        ArgDef {
            name: "use_bias",
            kind: ArgKind::Bool,
            default: ArgDefault::Bool(true),
            doc: "",
        },
    ]
}

static CONV1D_ARGS: [ArgDef; 7] = args("the window's length");
static CONV2D_ARGS: [ArgDef; 7] = args("the window's (height, width)");

const fn params(kernel: &'static str) -> [ParamDef; 2] {
    [
        ParamDef {
            name: "kernel",
            init_arg: "kernel_initializer",
            reg_arg: "kernel_regularizer",
            shape: kernel,
            init: &GLOROT_UNIFORM,
            when: "",
            trainable: true,
        },
        ParamDef {
            name: "bias",
            init_arg: "bias_initializer",
            reg_arg: "bias_regularizer",
            shape: "f32[filters]",
            init: &ZEROS,
            when: "with `use_bias`",
            trainable: true,
        },
    ]
}

static CONV1D_PARAMS: [ParamDef; 2] = params("f32[kernel_size, in, filters]");
static CONV2D_PARAMS: [ParamDef; 2] = params("f32[kh, kw, in, filters]");

/// Keras's `Conv1D`.
pub static CONV1D: BuiltinDef = BuiltinDef {
    name: "conv1d",
    doc: "Keras's `Conv1D`: a convolution over the steps of `f32[B, steps, channels]` → `f32[B, steps', filters]`",
    args: &CONV1D_ARGS,
    params: &CONV1D_PARAMS,
    apply: Apply::Layer(conv1d),
};

/// Keras's `Conv2D`.
pub static CONV2D: BuiltinDef = BuiltinDef {
    name: "conv2d",
    doc: "Keras's `Conv2D`: a convolution over `f32[B, height, width, channels]` → `f32[B, height', width', filters]`",
    args: &CONV2D_ARGS,
    params: &CONV2D_PARAMS,
    apply: Apply::Layer(conv2d),
};

fn conv1d(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    args: Args,
    x: (Tensor, Span),
    span: Span,
) -> Option<Value> {
    convolution(el, layer, args, x, span, 1)
}

fn conv2d(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    args: Args,
    x: (Tensor, Span),
    span: Span,
) -> Option<Value> {
    convolution(el, layer, args, x, span, 2)
}

fn convolution(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    mut args: Args,
    (x, xspan): (Tensor, Span),
    span: Span,
    rank: usize,
) -> Option<Value> {
    let def = args.def;
    let name = def.name;
    let filters = size(el, args.take("filters"), name, "filters", layer.span)?;
    let kernel_size = per_axis(el, &mut args, "kernel_size", None, rank, layer.span)?;
    let strides = per_axis(
        el,
        &mut args,
        "strides",
        Some(&vec![1; rank]),
        rank,
        layer.span,
    )?;
    let dilation = per_axis(
        el,
        &mut args,
        "dilation_rate",
        Some(&vec![1; rank]),
        rank,
        layer.span,
    )?;
    let padding = padding(el, &mut args)?;
    let activation = args.take("activation");
    let use_bias = args.flag(el, "use_bias")?;
    if strides.iter().any(|&s| s > 1) && dilation.iter().any(|&d| d > 1) {
        el.error(
            Diagnostic::error(
                "E0303",
                format!("`{name}` takes strides > 1 or dilation_rate > 1, not both"),
            )
            .primary(layer.span, "both given here")
            .help("as in Keras: a dilated convolution moves one step at a time"),
        );
        return None;
    }
    let (spatial, channels) = spatial_input(el, name, rank, (x, xspan), span)?;
    let window = Window::new(&spatial, &kernel_size, &strides, &dilation, padding);
    check_fits(el, name, &window, &spatial, (x, xspan), span)?;

    let taps = window.taps();
    let mut kernel_shape = kernel_size.clone();
    kernel_shape.extend([channels, filters]);
    let shapes = [Some(kernel_shape.clone()), use_bias.then(|| vec![filters])];
    let params = create_params(el, layer, def, &mut args, &shapes, layer.span)?;
    let kernel = *params.first()?;
    let built = el.graph.shape(kernel).clone();
    if built != Shape::fixed(&kernel_shape) {
        let built_channels = built.numel(1) / (taps * filters).max(1);
        let mismatch = SharedMismatch {
            built: format!("{built_channels} channels"),
            here: format!("{channels} channels here"),
            parameter: format!("its kernel is f32{built}"),
            agree_in: "channels",
        };
        shared_mismatch(el, layer, x, span, mismatch);
        return None;
    }

    // A 1x1 window with stride 1 reads each position alone: the input already is its patches.
    let pointwise = taps == 1 && strides.iter().all(|&s| s == 1);
    let patches = if pointwise {
        x.id
    } else {
        el.add(Op::Unfold { window }, &[x.id], span)?
    };
    let matrix = el.add_reshape(
        kernel,
        Shape::fixed(&[taps * channels, filters]),
        layer.span,
    )?;
    let mut z = el.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        },
        &[patches, matrix],
        span,
    )?;
    if let Some(&bias) = params.get(1) {
        z = el.add(Op::Binary(BinaryOp::Add), &[z, bias], span)?;
    }
    debug_assert!(el.graph.shape(z).dims().first() == Some(&Dim::Batch));
    activate(el, activation, z, span)
}
