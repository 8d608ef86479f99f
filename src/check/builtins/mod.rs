//! The built-in layers and functions of the language, each defined once as a `BuiltinDef`: its
//! name, its arguments in positional order with Keras's defaults, a documentation line, the
//! parameters a layer creates, and how it is applied (building IR through the elaborator as it
//! proves shapes). Lookup, "did you mean", the REPL's completion, the summary's layer names and
//! docs/language.md's tables (`layers_table`, `functions_table`, checked by `tests/docs.rs`)
//! all read `BUILTINS`; binding, configuration checks and partial application below are
//! generic over it.
//!
//! The definitions live under `check/` because applying one builds the forward graph through
//! `Elab`. One file per family — `layers.rs` (layers with parameters), `functions.rs`
//! (activations and tensor functions), `initializers.rs` (`param … = INIT`) — keeps each
//! definition next to the code it names, and the registry is the one list: adding a layer is a
//! `BuiltinDef` in its family's file and its entry in `BUILTINS`.
//!
//! A function whose first argument is its tensor `x`, called without one (`flatten()`,
//! `dropout(0.5)`, `leaky_relu(alpha: 0.1)`), is a layer waiting for its input — which is how
//! sequential model bodies use them.

mod attention;
mod bidirectional;
mod convolution;
mod functions;
pub mod initializers;
mod layers;
mod normalization;
mod pooling;
mod recurrent;
mod regularizers;
mod reshaping;
mod spatial;

use super::args::Aliases;
use super::elab::Elab;
use super::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::{ParamInfo, ValueId};
use crate::ir::op::{BinaryOp, UnaryOp};
use crate::ir::shape::Shape;
use std::rc::Rc;

pub use initializers::initializer;

/// Every built-in layer and function, in the order the docs list them.
pub static BUILTINS: &[&BuiltinDef] = &[
    &functions::LINEAR,
    &functions::RELU,
    &functions::SIGMOID,
    &functions::TANH,
    &functions::EXP,
    &functions::LOG,
    &functions::SQRT,
    &functions::RSQRT,
    &functions::ABS,
    &functions::SOFTPLUS,
    &functions::GELU,
    &functions::SQUARE,
    &functions::SOFTMAX,
    &functions::LOG_SOFTMAX,
    &functions::LEAKY_RELU,
    &functions::ELU,
    &functions::MAXIMUM,
    &functions::MINIMUM,
    &functions::POW,
    &functions::GREATER,
    &functions::LESS,
    &functions::GREATER_EQUAL,
    &functions::LESS_EQUAL,
    &functions::EQUAL,
    &functions::NOT_EQUAL,
    &functions::WHERE,
    &functions::SUM,
    &functions::MEAN,
    &functions::MAX,
    &functions::RESHAPE,
    &functions::FLATTEN,
    &functions::TRANSPOSE,
    &functions::CONCAT,
    &functions::SLICE,
    &functions::MATMUL,
    &functions::DROPOUT,
    &functions::GRAD,
    &layers::DENSE,
    &layers::EMBEDDING,
    &convolution::CONV1D,
    &convolution::CONV2D,
    &pooling::MAX_POOLING1D,
    &pooling::MAX_POOLING2D,
    &pooling::AVERAGE_POOLING1D,
    &pooling::AVERAGE_POOLING2D,
    &pooling::GLOBAL_MAX_POOLING1D,
    &pooling::GLOBAL_MAX_POOLING2D,
    &pooling::GLOBAL_AVERAGE_POOLING1D,
    &pooling::GLOBAL_AVERAGE_POOLING2D,
    &reshaping::ZERO_PADDING1D,
    &reshaping::ZERO_PADDING2D,
    &reshaping::UP_SAMPLING1D,
    &reshaping::UP_SAMPLING2D,
    &normalization::BATCH_NORMALIZATION,
    &normalization::LAYER_NORMALIZATION,
    &recurrent::SIMPLE_RNN,
    &recurrent::LSTM,
    &recurrent::GRU,
    &bidirectional::BIDIRECTIONAL,
    &attention::MULTI_HEAD_ATTENTION,
];

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static BuiltinDef> {
    BUILTINS.iter().copied().find(|d| d.name == name)
}

/// Every built-in's name, for "did you mean" and completion.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|d| d.name).collect()
}

pub struct BuiltinDef {
    pub name: &'static str,
    /// One line for the docs' table.
    pub doc: &'static str,
    /// In positional order.
    pub args: &'static [ArgDef],
    /// The parameters a layer creates on its first application, in order (`Apply::Layer` only).
    pub params: &'static [ParamDef],
    pub apply: Apply,
}

/// How a built-in is applied, which also says how it is called.
pub enum Apply {
    /// A layer with parameters: a call configures it, and applying the configured layer to its
    /// input creates the parameters once (`create_params`) and reuses them after.
    Layer(BuildLayer),
    /// A layer applied to one to `inputs.len()` tensors (named in `inputs`, the later ones
    /// optional), such as attention's query, value and key.
    LayerOf {
        inputs: &'static [&'static str],
        build: BuildLayerOf,
    },
    /// An elementwise op on its tensor `x`.
    Unary(UnaryOp),
    /// An elementwise op on two broadcast operands `a` and `b`.
    Binary(BinaryOp),
    /// A function of its tensor `x` first (and configuration after).
    OnTensor(fn(&mut Elab, Args, Span) -> Option<Value>),
    /// A function of all its arguments, never partially applied.
    Function(fn(&mut Elab, Args, Span) -> Option<Value>),
}

/// Applies a configured layer to its input (`(tensor, span)`) at `span`.
pub type BuildLayer =
    fn(&mut Elab, &Rc<LayerInstance>, Args, (Tensor, Span), Span) -> Option<Value>;

/// Applies a configured layer of several inputs (at least one, at most its `inputs`).
pub type BuildLayerOf =
    fn(&mut Elab, &Rc<LayerInstance>, Args, &[(Tensor, Span)], Span) -> Option<Value>;

pub struct ArgDef {
    pub name: &'static str,
    pub kind: ArgKind,
    pub default: ArgDefault,
    /// For the docs' table (and the help of a misconfigured argument).
    pub doc: &'static str,
}

/// What an argument takes. `Tensor` arguments are tensor literals at the prompt, and `Size` and
/// `Rate` need no tensor to check, so they are checked where a layer is configured (a mistake is
/// reported even when an earlier error stops the layer from being applied); the rest are
/// checked when the function is applied, with the tensor's shape.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Tensor,
    /// A list of tensors.
    Tensors,
    /// A positive whole number.
    Size,
    /// A number in [0, 1).
    Rate,
    Number,
    Bool,
    /// A whole number, zero or more.
    Count,
    /// An axis; negative ones count from the end.
    Axis,
    /// An axis or a list of axes.
    Axes,
    /// A whole number; negative ones count from the end.
    Index,
    /// A list of sizes.
    Sizes,
    /// A function (or a built-in's name as a string).
    Function,
    /// A positive whole number for every spatial axis, or a list (or tuple) of one per axis.
    PerAxis,
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// Zeros to add: a whole number for every side, or per spatial axis (the layer says how).
    Pads,
}

#[derive(Clone, Copy)]
pub enum ArgDefault {
    Required,
    Number(f64),
    Int(i64),
    Bool(bool),
    /// Worked out by the function when left out, as the text says (`all axes`).
    Computed(&'static str),
}

/// A parameter a layer creates: named `LAYER.NAME`, initialized by a built-in initializer with
/// its defaults over the shape the layer works out.
pub struct ParamDef {
    pub name: &'static str,
    /// The layer's argument that picks another initializer (Keras's `kernel_initializer`),
    /// given by name only.
    pub init_arg: &'static str,
    /// The layer's argument that puts a penalty on it (Keras's `kernel_regularizer`); empty
    /// for a parameter training does not differentiate.
    pub reg_arg: &'static str,
    /// For the docs: `f32[in, units]`.
    pub shape: &'static str,
    pub init: &'static initializers::InitializerDef,
    /// For the docs: when the layer creates it, if not always.
    pub when: &'static str,
    /// Whether training updates it through the gradient (Keras's trainable weights); the
    /// others, such as batch normalization's moving statistics, are updated by the layer.
    pub trainable: bool,
}

/// A call's arguments bound to the definition's, in its order.
pub struct Args {
    def: &'static BuiltinDef,
    slots: Vec<Option<ArgValue>>,
}

impl Args {
    fn position(&self, name: &str) -> usize {
        self.def
            .arg_names()
            .iter()
            .position(|a| *a == name)
            .unwrap_or_else(|| panic!("internal error: `{}` has no `{name}`", self.def.name))
    }

    /// The argument given for `name`, if any.
    pub fn take(&mut self, name: &str) -> Option<ArgValue> {
        let i = self.position(name);
        self.slots[i].take()
    }

    fn default(&self, name: &str) -> ArgDefault {
        self.def.args[self.position(name)].default
    }

    /// A number argument, or its default.
    pub fn number(&mut self, el: &mut Elab, name: &str) -> Option<f64> {
        match (self.take(name), self.default(name)) {
            (None, ArgDefault::Number(x)) => Some(x),
            (arg, _) => number_arg(el, arg, 0.0),
        }
    }

    /// A `true`/`false` argument, or its default.
    pub fn flag(&mut self, el: &mut Elab, name: &str) -> Option<bool> {
        match (self.take(name), self.default(name)) {
            (None, ArgDefault::Bool(b)) => Some(b),
            (None, _) => Some(false),
            (Some(arg), _) => match arg.value {
                Value::Bool(b) => Some(b),
                ref other => {
                    el.wrong_kind(other, arg.span, "`true` or `false`");
                    None
                }
            },
        }
    }

    /// A whole number zero or more (`expected` says what it is when it is not), or its default.
    pub fn count(&mut self, el: &mut Elab, name: &str, expected: &str) -> Option<u64> {
        match (self.take(name), self.default(name)) {
            (None, ArgDefault::Int(n)) => Some(n as u64),
            (None, _) => Some(0),
            (Some(arg), _) => match arg.value {
                Value::Int(n) if n >= 0 => Some(n as u64),
                ref other => {
                    el.wrong_kind(other, arg.span, expected);
                    None
                }
            },
        }
    }
}

impl BuiltinDef {
    /// Its arguments, then a layer's initializer and regularizer arguments.
    fn arg_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.args.iter().map(|a| a.name).collect();
        names.extend(self.init_args());
        names
    }

    /// The arguments given by name only, kept as written until the layer is applied: those
    /// that pick its parameters' initializers (`kernel_initializer`), then those that put a
    /// penalty on them (`kernel_regularizer`).
    pub fn init_args(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        let regs = self
            .params
            .iter()
            .map(|p| p.reg_arg)
            .filter(|r| !r.is_empty());
        for name in self.params.iter().map(|p| p.init_arg).chain(regs) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Takes its tensor first, so that calling it without one configures a layer.
    fn tensor_first(&self) -> bool {
        matches!(self.apply, Apply::Unary(_) | Apply::OnTensor(_))
    }

    pub fn is_layer(&self) -> bool {
        matches!(self.apply, Apply::Layer(_) | Apply::LayerOf { .. })
    }

    /// The most tensors a configured layer is applied to.
    fn most_inputs(&self) -> usize {
        match self.apply {
            Apply::LayerOf { inputs, .. } => inputs.len(),
            _ => 1,
        }
    }
}

/// Calls built-in `name`.
pub fn call(el: &mut Elab, name: &'static str, args: Vec<ArgValue>, span: Span) -> Value {
    if super::prompt::CONSTRUCTORS.contains(&name) {
        return el.construct(name, args, span);
    }
    let def = find(name).unwrap_or_else(|| panic!("internal error: no built-in `{name}`"));
    let params = def.arg_names();
    let args = if el.prompt.is_some() {
        literal_args(el, def, args)
    } else {
        args
    };
    let has_tensor = match args.first() {
        Some(ArgValue {
            name: None, value, ..
        }) => matches!(value, Value::Tensor(_)),
        _ => args
            .iter()
            .any(|a| a.name.as_ref().is_some_and(|n| n.name == "x")),
    };
    if def.is_layer() || (def.tensor_first() && !has_tensor) {
        return configure(el, def, args, span);
    }
    let Some(slots) = el.bind_args(name, args, &params, Aliases::None) else {
        return Value::Error;
    };
    if slots[0].is_none() {
        el.missing(name, params[0], span);
        return Value::Error;
    }
    // A masked tensor given to a function that neither reads nor keeps the mask (W0108).
    let first = match &slots[0] {
        Some(ArgValue {
            value: Value::Tensor(t),
            ..
        }) if matches!(def.apply, Apply::OnTensor(_)) => Some(t.id),
        _ => None,
    };
    let reads = el.mask_reads();
    let mut args = Args { def, slots };
    let result = match def.apply {
        Apply::Unary(op) => args
            .take(params[0])
            .and_then(|first| tensor_arg(el, &first))
            .map(|x| {
                let y = el.unary(op, x, span);
                if let Value::Tensor(t) = &y {
                    el.carry_mask(x.id, t.id);
                }
                y
            }),
        Apply::Binary(op) => binary(el, op, args, span),
        Apply::OnTensor(f) | Apply::Function(f) => f(el, args, span),
        Apply::Layer(_) | Apply::LayerOf { .. } => None,
    };
    let result = result.unwrap_or(Value::Error);
    if let Some(x) = first {
        el.dropped_mask(name, x, &result, reads, span);
    }
    result
}

/// A layer, or a function without its tensor: binds and checks the configuration now, so
/// mistakes point at the configuring call.
fn configure(el: &mut Elab, def: &'static BuiltinDef, args: Vec<ArgValue>, span: Span) -> Value {
    let name = def.name;
    let config = if def.is_layer() {
        def.args
    } else {
        &def.args[1..]
    };
    let positional = args.iter().filter(|a| a.name.is_none()).count();
    if def.tensor_first() && positional > config.len() {
        let arg = &args[0];
        el.error(
            Diagnostic::error("E0303", format!("`{name}` takes a tensor first"))
                .primary(arg.span, format!("found {}", arg.value.kind_name()))
                .help(format!(
                    "on a line of its own, `{name}` applies to the value flowing through the model; `dense(64, {name})` makes it a layer's activation"
                )),
        );
        return Value::Error;
    }
    let mut names: Vec<&str> = config.iter().map(|a| a.name).collect();
    names.extend(def.init_args());
    let named_only = def.init_args().len();
    let Some(slots) = el.bind_args_named(name, args.clone(), &names, named_only, Aliases::None)
    else {
        return Value::Error;
    };
    let mut ok = true;
    for (arg, slot) in config.iter().zip(slots) {
        // An optional size or rate left out is the layer's default (`value_dim` is `key_dim`).
        let optional = !matches!(arg.default, ArgDefault::Required);
        ok &= match arg.kind {
            ArgKind::Size if slot.is_none() && optional => true,
            ArgKind::Size => size(el, slot, name, arg.name, span).is_some(),
            ArgKind::Rate if slot.is_none() && optional => true,
            ArgKind::Rate => rate(el, def, arg, slot, span).is_some(),
            _ => true,
        };
    }
    if !ok {
        return Value::Error;
    }
    Value::Func(Func::Layer(Rc::new(LayerInstance {
        kind: LayerKind::Builtin { name, args },
        span,
        built: Default::default(),
    })))
}

fn binary(el: &mut Elab, op: BinaryOp, mut args: Args, span: Span) -> Option<Value> {
    let [a, b] = [args.def.args[0].name, args.def.args[1].name];
    let name = args.def.name;
    let first = args.take(a)?;
    let Some(second) = args.take(b) else {
        el.missing(name, b, span);
        return None;
    };
    let (Some(x), Some(y)) = (
        el.operand(&first.value, first.span),
        el.operand(&second.value, second.span),
    ) else {
        return None;
    };
    el.elementwise(op, &[(x, first.span), (y, second.span)], span, name)
        .map(|id| el.tensor(id, span))
}

/// Applies a configured built-in layer to its inputs.
pub fn apply_layer(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    name: &'static str,
    args: &[ArgValue],
    inputs: Vec<(Tensor, Span)>,
    span: Span,
) -> Value {
    let def = find(name).unwrap_or_else(|| panic!("internal error: no built-in `{name}`"));
    let most = def.most_inputs();
    if inputs.len() > most {
        let takes = match def.apply {
            Apply::LayerOf { inputs, .. } => format!(
                "1 to {most} inputs ({})",
                inputs
                    .iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => "one input".to_string(),
        };
        el.error(
            Diagnostic::error(
                "E0305",
                format!("`{name}` takes {takes}, {} given", inputs.len()),
            )
            .primary(span, "applied here"),
        );
        return Value::Error;
    }
    let (x, xspan) = inputs[0];
    let bind = |el: &mut Elab| {
        el.bind_args_named(
            name,
            args.to_vec(),
            &def.arg_names(),
            def.init_args().len(),
            Aliases::None,
        )
    };
    let reads = el.mask_reads();
    let built = match def.apply {
        Apply::Layer(build) => bind(el).map(|slots| {
            build(el, layer, Args { def, slots }, (x, xspan), span).unwrap_or(Value::Error)
        }),
        Apply::LayerOf { build, .. } => bind(el).map(|slots| {
            build(el, layer, Args { def, slots }, &inputs, span).unwrap_or(Value::Error)
        }),
        _ => None,
    };
    if matches!(def.apply, Apply::Layer(_) | Apply::LayerOf { .. }) {
        let result = built.unwrap_or(Value::Error);
        el.dropped_mask(name, x.id, &result, reads, span);
        return result;
    }
    let mut call_args = vec![ArgValue {
        name: None,
        value: Value::Tensor(x),
        span: xspan,
    }];
    call_args.extend(args.iter().cloned());
    let value = call(el, name, call_args, span);
    if layer.built.borrow().is_none() {
        let layer_name = el.layer_name(name);
        *layer.built.borrow_mut() = Some(Built {
            name: layer_name,
            params: Vec::new(),
        });
    }
    value
}

/// Creates a layer's parameters on its first application (those of `def.params` given a
/// shape, each initialized by its initializer argument, else its default initializer); later
/// applications share them. `None` when an initializer argument was reported.
fn create_params(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    def: &BuiltinDef,
    args: &mut Args,
    shapes: &[Option<Vec<usize>>],
    span: Span,
) -> Option<Vec<ValueId>> {
    create_named_params(el, layer, def, args, shapes, span, None)
}

/// `create_params` with the layer's name given (`None`: a fresh Keras-style name).
fn create_named_params(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    def: &BuiltinDef,
    args: &mut Args,
    shapes: &[Option<Vec<usize>>],
    span: Span,
    name: Option<String>,
) -> Option<Vec<ValueId>> {
    if let Some(built) = layer.built.borrow().as_ref() {
        return Some(built.params.clone());
    }
    let mut inits = Vec::new();
    for (param, shape) in def.params.iter().zip(shapes) {
        // (An argument is taken only by a parameter the layer creates: the LSTM has two ways to
        // start its bias, and `bias_initializer` belongs to the one in use.)
        let Some(shape) = shape else { continue };
        let given = args.take(param.init_arg);
        let penalty = match param.reg_arg {
            "" => None,
            name => args.take(name),
        };
        let init = match given {
            None => param.init.with_defaults(shape),
            Some(arg) => init_arg(el, arg, shape)?,
        };
        let regularizer = match penalty {
            None => None,
            Some(arg) => Some(regularizer_arg(el, arg)?),
        };
        inits.push((param, shape, init, regularizer));
    }
    let layer_name = name.unwrap_or_else(|| el.layer_name(def.name));
    let params: Vec<ValueId> = inits
        .into_iter()
        .map(|(param, shape, init, regularizer)| {
            el.graph.param(
                ParamInfo {
                    name: format!("{layer_name}.{}", param.name),
                    shape: Shape::fixed(shape),
                    init,
                    trainable: param.trainable,
                    regularizer,
                },
                Some(span),
            )
        })
        .collect();
    *layer.built.borrow_mut() = Some(Built {
        name: layer_name,
        params: params.clone(),
    });
    Some(params)
}

/// A `*_initializer` argument, kept as written (`Elab::eval_builtin_args`).
fn init_arg(el: &mut Elab, arg: ArgValue, shape: &[usize]) -> Option<crate::ir::graph::Init> {
    match arg.value {
        Value::Initializer(expr) => initializer(el, Some(&expr), shape),
        other => {
            el.wrong_kind(&other, arg.span, "an initializer such as `he_normal`");
            None
        }
    }
}

/// A `*_regularizer` argument, kept as written like an initializer's.
fn regularizer_arg(
    el: &mut Elab,
    arg: ArgValue,
) -> Option<crate::settings::regularizer::Regularizer> {
    match arg.value {
        Value::Initializer(expr) => regularizers::regularizer(el, &expr),
        other => {
            el.wrong_kind(&other, arg.span, "a regularizer such as `l2(0.01)`");
            None
        }
    }
}

/// What a shared layer was built for (`"64 features"`), what it meets now, and its parameter.
pub(super) struct SharedMismatch {
    pub built: String,
    pub here: String,
    pub parameter: String,
    /// What the inputs must agree in: `width`, `channels`.
    pub agree_in: &'static str,
}

/// E0210: a layer applied a second time to an input its parameters were not built for.
pub(super) fn shared_mismatch(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    x: Tensor,
    span: Span,
    m: SharedMismatch,
) {
    let text = el.text(x);
    let name = layer
        .built
        .borrow()
        .as_ref()
        .map(|b| b.name.clone())
        .unwrap_or_default();
    el.error(
        Diagnostic::error(
            "E0210",
            format!(
                "layer `{name}` was built for {} and is applied to {text}",
                m.built
            ),
        )
        .primary(span, m.here)
        .secondary(layer.span, m.parameter)
        .help(format!(
            "a layer applied twice shares its weights, so its inputs must have the same {}",
            m.agree_in
        )),
    );
}

/// E0210 unless a layer's `kernel`, whose first axis is the input width it was built for, fits
/// an input `x` of width `fan_in` (a shared layer meeting a second, wider input).
pub(super) fn check_shared_width(
    el: &mut Elab,
    layer: &Rc<LayerInstance>,
    (x, span): (Tensor, Span),
    kernel: ValueId,
    fan_in: usize,
) -> Option<()> {
    let built_in = match el.graph.shape(kernel).dims().first() {
        Some(&crate::ir::shape::Dim::Fixed(n)) if n != fan_in => n,
        _ => return Some(()),
    };
    let mismatch = SharedMismatch {
        built: format!("{built_in} features"),
        here: format!("{fan_in} features here"),
        parameter: format!("its kernel is {}", el.graph.ty(kernel)),
        agree_in: "width",
    };
    shared_mismatch(el, layer, x, span, mismatch);
    None
}

/// At the prompt, lists of numbers given for a tensor argument are tensor literals:
/// `relu([-1, 2])`, `maximum(x, [0, 1])`.
fn literal_args(el: &mut Elab, def: &BuiltinDef, args: Vec<ArgValue>) -> Vec<ArgValue> {
    let mut position = 0;
    args.into_iter()
        .map(|mut arg| {
            let param = match &arg.name {
                Some(name) => def.args.iter().find(|a| a.name == name.name),
                None => {
                    position += 1;
                    def.args.get(position - 1)
                }
            };
            if param.is_some_and(|p| p.kind == ArgKind::Tensor) {
                arg.value = el.tensor_literal(arg.value, arg.span);
            }
            arg
        })
        .collect()
}

fn tensor_arg(el: &mut Elab, arg: &ArgValue) -> Option<Tensor> {
    match &arg.value {
        Value::Tensor(t) => el.float_tensor(*t, arg.span),
        other => {
            el.wrong_kind(other, arg.span, "a tensor");
            None
        }
    }
}

fn number_arg(el: &mut Elab, arg: Option<ArgValue>, default: f64) -> Option<f64> {
    match arg {
        None => Some(default),
        Some(arg) => match arg.value.as_number() {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                el.wrong_kind(&arg.value, arg.span, "a number");
                None
            }
        },
    }
}

/// A `Size` argument: a positive whole number (`missing` when left out).
fn size(
    el: &mut Elab,
    arg: Option<ArgValue>,
    callee: &str,
    param: &str,
    span: Span,
) -> Option<usize> {
    let Some(arg) = arg else {
        el.missing(callee, param, span);
        return None;
    };
    match arg.value {
        Value::Int(n) if n > 0 && n <= u32::MAX as i64 => Some(n as usize),
        ref other => {
            let found = match other {
                Value::Int(n) => format!("found {n}"),
                other => format!("found {}", other.kind_name()),
            };
            el.error(
                Diagnostic::error(
                    "E0303",
                    format!("`{param}` must be a positive whole number"),
                )
                .primary(arg.span, found),
            );
            None
        }
    }
}

/// A `Rate` argument: a number in [0, 1) (`missing` when left out).
fn rate(
    el: &mut Elab,
    def: &BuiltinDef,
    param: &ArgDef,
    arg: Option<ArgValue>,
    span: Span,
) -> Option<f64> {
    let Some(arg) = arg else {
        el.missing(def.name, param.name, span);
        return None;
    };
    let rate = number_arg(el, Some(arg.clone()), 0.0)?;
    if (0.0..1.0).contains(&rate) {
        return Some(rate);
    }
    el.error(
        Diagnostic::error("E0303", format!("`{}` must be in [0, 1)", param.name))
            .primary(arg.span, format!("found {rate}"))
            .help(format!(
                "{}, e.g. `{}`",
                param.doc,
                rate_example(def, param)
            )),
    );
    None
}

/// `dropout(0.5)` for a rate given first, `multi_head_attention(…, dropout: 0.5)` otherwise.
fn rate_example(def: &BuiltinDef, param: &ArgDef) -> String {
    let first = def.args.iter().find(|a| a.kind != ArgKind::Tensor);
    match first {
        Some(a) if a.name == param.name => format!("{}(0.5)", def.name),
        _ => format!("{}(…, {}: 0.5)", def.name, param.name),
    }
}

impl ArgKind {
    /// For the docs: what the argument takes, when the name alone does not say.
    fn describe(self) -> String {
        let text = match self {
            ArgKind::Tensor => "",
            ArgKind::Tensors => "a list of tensors",
            ArgKind::Size => "a positive whole number",
            ArgKind::Rate => "in [0, 1)",
            ArgKind::Number => "",
            ArgKind::Bool => "",
            ArgKind::Count => "a whole number >= 0",
            ArgKind::Axis => "an axis, negative from the end",
            ArgKind::Axes => "an axis or a list of axes",
            ArgKind::Index => "a whole number, negative from the end",
            ArgKind::Sizes => "a list of sizes",
            ArgKind::Function => "",
            ArgKind::PerAxis => "a positive whole number, or one per spatial axis",
            ArgKind::Pads => "a whole number >= 0",
            ArgKind::Choice([only]) => return format!("\"{only}\" only"),
            ArgKind::Choice(choices) => {
                let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
                return format!(
                    "{} or {}",
                    quoted[..quoted.len() - 1].join(", "),
                    quoted[quoted.len() - 1]
                );
            }
        };
        text.to_string()
    }
}

impl std::fmt::Display for ArgDefault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgDefault::Required => write!(f, "required"),
            ArgDefault::Number(x) => write!(f, "{x:?}"),
            ArgDefault::Int(n) => write!(f, "{n}"),
            ArgDefault::Bool(b) => write!(f, "{b}"),
            ArgDefault::Computed(text) => write!(f, "{text}"),
        }
    }
}

/// `name: default` (or `name` when required), with what it takes and its doc in parentheses.
fn arg_docs(args: &[ArgDef]) -> String {
    let docs: Vec<String> = args
        .iter()
        .map(|a| {
            let head = match a.default {
                ArgDefault::Required => format!("`{}`", a.name),
                default => format!("`{}: {default}`", a.name),
            };
            let kind = a.kind.describe();
            let notes: Vec<&str> = [kind.as_str(), a.doc]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            match notes.as_slice() {
                [] => head,
                notes => format!("{head} ({})", notes.join("; ")),
            }
        })
        .collect();
    docs.join(", ")
}

/// The built-in layers' table in docs/language.md, written from the definitions (`tests/docs.rs`
/// checks that the page holds exactly this).
pub fn layers_table() -> String {
    let mut out = String::from(
        "| Layer | What it is | Arguments in positional order (required unless a default is given) | Parameters it creates |\n\
         |---|---|---|---|\n",
    );
    for def in BUILTINS.iter().filter(|d| d.is_layer()) {
        let params: Vec<String> = def
            .params
            .iter()
            .map(|p| {
                let when = match p.when {
                    "" => String::new(),
                    when => format!(" ({when})"),
                };
                format!(
                    "`{}: {}` {}{when}",
                    p.name,
                    p.shape,
                    p.init.doc_with_defaults()
                )
            })
            .collect();
        let mut inits: Vec<String> = def
            .params
            .iter()
            .map(|p| {
                let init = p.init.doc_with_defaults();
                format!("`{}: {init}` (an initializer, by name)", p.init_arg)
            })
            .collect();
        inits.extend(
            (def.params.iter())
                .filter(|p| !p.reg_arg.is_empty())
                .map(|p| format!("`{}: none` (a regularizer, by name)", p.reg_arg)),
        );
        let mut args = vec![arg_docs(def.args)];
        args.extend(inits);
        // A wrapper (`bidirectional`) creates no parameters of its own: its layer's do.
        let params = match params.join(", ") {
            none if none.is_empty() => "those of its layer".to_string(),
            some => some,
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            def.name,
            def.doc,
            args.join(", "),
            params
        ));
    }
    out
}

/// The built-in functions' table in docs/language.md, likewise.
pub fn functions_table() -> String {
    let mut out = String::from(
        "| Function | What it does | Arguments in positional order (required unless a default is given) |\n\
         |---|---|---|\n",
    );
    for def in BUILTINS.iter().filter(|d| !d.is_layer()) {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            def.name,
            def.doc,
            arg_docs(def.args)
        ));
    }
    out
}

/// What an editor offers for one of a built-in's arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgHint {
    /// A function of one tensor: an activation.
    Function,
    /// An initializer, by name.
    Initializer,
    /// One of these strings.
    Choice(&'static [&'static str]),
    Other,
}

/// Built-in `name`'s arguments in positional order (its initializer arguments after them, by
/// name only), with what each takes; `None` for a name that is no built-in.
pub fn argument_hints(name: &str) -> Option<Vec<(&'static str, ArgHint)>> {
    let def = find(name)?;
    let args = def.args.iter().map(|a| {
        let hint = match a.kind {
            ArgKind::Function => ArgHint::Function,
            ArgKind::Choice(choices) => ArgHint::Choice(choices),
            _ => ArgHint::Other,
        };
        (a.name, hint)
    });
    let inits = def
        .params
        .iter()
        .map(|p| (p.init_arg, ArgHint::Initializer));
    Some(args.chain(inits).collect())
}

/// The built-ins that work as an activation: functions of one tensor whose other arguments all
/// have defaults (`relu`, `softmax`, `leaky_relu`), as `dense(64, …)` takes them.
pub fn activation_names() -> Vec<&'static str> {
    BUILTINS
        .iter()
        .filter(|d| {
            !d.is_layer()
                && d.args
                    .first()
                    .is_some_and(|a| matches!(a.kind, ArgKind::Tensor))
                && d.args[1..]
                    .iter()
                    .all(|a| !matches!(a.default, ArgDefault::Required))
                && !matches!(d.apply, Apply::Function(_))
        })
        .map(|d| d.name)
        .collect()
}

/// Every built-in initializer's name (`param w: f32[4, 4] = he_normal`).
pub fn initializer_names() -> Vec<&'static str> {
    initializers::INITIALIZERS.iter().map(|d| d.name).collect()
}
