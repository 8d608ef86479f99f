//! What the convolution and pooling layers share: reading per-axis sizes (`3` or `(3, 3)`) and
//! `padding`, and checking that the input is a channels-last batch with the layer's number of
//! spatial axes and that the window fits it.

use super::Args;
use crate::check::elab::Elab;
use crate::check::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::shape::Dim;
use crate::ir::window::{Padding, Window};

/// Keras's `padding` values.
pub const PADDINGS: &[&str] = &["valid", "same"];

/// A `PerAxis` argument: one positive whole number for all `rank` axes, or a list or tuple of
/// `rank` of them; `default` when left out (`None`: required).
pub fn per_axis(
    el: &mut Elab,
    args: &mut Args,
    name: &str,
    default: Option<&[usize]>,
    rank: usize,
    span: Span,
) -> Option<Vec<usize>> {
    let layer = args.def.name;
    let Some(arg) = args.take(name) else {
        return match default {
            Some(sizes) => Some(sizes.to_vec()),
            None => {
                el.missing(layer, name, span);
                None
            }
        };
    };
    let positive = |v: &Value| match v {
        Value::Int(n) if *n > 0 && *n <= u32::MAX as i64 => Some(*n as usize),
        _ => None,
    };
    let sizes = match &arg.value {
        Value::List(items) | Value::Tuple(items) if items.len() == rank => {
            items.iter().map(positive).collect::<Option<Vec<usize>>>()
        }
        single => positive(single).map(|n| vec![n; rank]),
    };
    if sizes.is_none() {
        let example = if rank == 1 { "3" } else { "3` or `(3, 3)" };
        el.error(
            Diagnostic::error(
                "E0303",
                format!(
                    "`{name}` of `{layer}` takes a positive whole number{}",
                    if rank == 1 {
                        String::new()
                    } else {
                        format!(" or {rank} of them")
                    }
                ),
            )
            .primary(arg.span, format!("found {}", describe(&arg.value)))
            .help(format!("for example `{name}: {example}`")),
        );
    }
    sizes
}

fn describe(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::List(items) | Value::Tuple(items) => format!("{} values", items.len()),
        other => other.kind_name().to_string(),
    }
}

/// The `padding` argument (default `"valid"`).
pub fn padding(el: &mut Elab, args: &mut Args) -> Option<Padding> {
    let Some(arg) = args.take("padding") else {
        return Some(Padding::Valid);
    };
    if let Value::Str(text) = &arg.value
        && let Some(padding) = Padding::parse(text)
    {
        return Some(padding);
    }
    el.error(
        Diagnostic::error(
            "E0303",
            format!("`padding` of `{}` is \"valid\" or \"same\"", args.def.name),
        )
        .primary(arg.span, format!("found {}", describe(&arg.value)))
        .help("\"valid\" keeps the window inside the input; \"same\" pads so that the output has ceil(input / strides) positions"),
    );
    None
}

/// The spatial sizes and channel count of `x`, which must be `f32[B, S.., C]` with `rank`
/// spatial axes of fixed size.
pub fn spatial_input(
    el: &mut Elab,
    layer: &str,
    rank: usize,
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<(Vec<usize>, usize)> {
    let x = el.float_tensor(x, xspan)?;
    let dims = el.ty(x).shape.dims().to_vec();
    let fixed: Option<Vec<usize>> = dims
        .get(1..)
        .unwrap_or_default()
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Some(*n),
            Dim::Batch => None,
        })
        .collect();
    match fixed {
        Some(mut sizes) if dims.len() == rank + 2 && dims[0] == Dim::Batch => {
            let channels = sizes.pop().unwrap_or(0);
            Some((sizes, channels))
        }
        _ => {
            let text = el.text(x);
            let expected = match rank {
                1 => "f32[B, steps, channels]",
                _ => "f32[B, height, width, channels]",
            };
            let d = Diagnostic::error(
                "E0227",
                format!("`{layer}` takes a batch of shape {expected}, found {text}"),
            )
            .primary(span, "applied here")
            .secondary(xspan, format!("this is {text}"))
            .help(match (rank, &dims[..]) {
                (2, [Dim::Batch, Dim::Fixed(h), Dim::Fixed(w)]) => format!(
                    "a grayscale image needs its channel axis: declare the input `f32[B, {h}, {w}, 1]`, or `reshape(x, [{h}, {w}, 1])` first"
                ),
                (1, [Dim::Batch, Dim::Fixed(n)]) => format!(
                    "a sequence of single values needs its channel axis: `reshape(x, [{n}, 1])` first"
                ),
                _ => format!("channels come last, as in Keras: {expected}"),
            });
            let d = el.with_origin(d, x, xspan);
            el.error(d);
            None
        }
    }
}

/// Checks that the window fits every spatial axis, naming the sizes when it does not.
pub fn check_fits(
    el: &mut Elab,
    layer: &str,
    window: &Window,
    spatial: &[usize],
    (x, xspan): (Tensor, Span),
    span: Span,
) -> Option<()> {
    for (axis, &size) in spatial.iter().enumerate() {
        if window.output_len(axis, size).is_some() {
            continue;
        }
        let text = el.text(x);
        let axis_name = match (spatial.len(), axis) {
            (1, _) => "steps",
            (_, 0) => "height",
            _ => "width",
        };
        let reach = window.span(axis);
        let dilated = if window.dilation[axis] > 1 {
            format!(
                " ({} taps, dilation {})",
                window.size[axis], window.dilation[axis]
            )
        } else {
            String::new()
        };
        let d = Diagnostic::error(
            "E0226",
            format!(
                "`{layer}`'s window spans {reach}{dilated} but the input's {axis_name} is {size}"
            ),
        )
        .primary(span, format!("a window of {reach} does not fit {size}"))
        .secondary(xspan, format!("this is {text}"))
        .help("use a smaller window, `padding: \"same\"`, or a larger input");
        let d = el.with_origin(d, x, xspan);
        el.error(d);
        return None;
    }
    Some(())
}
