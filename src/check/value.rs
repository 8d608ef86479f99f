//! What an expression evaluates to while the checker elaborates a model: numbers and strings
//! (layer configuration, dimensions), tensors (nodes of the model's forward graph, with the
//! type the checker proved), and callables (built-in functions, layers, user `fn`s and `layer`s).

use crate::diag::Span;
use crate::ir::graph::ValueId;
use crate::syntax::ast::{self, Ident};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Debug)]
pub enum Value {
    Tensor(Tensor),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Func(Func),
    /// A built-in layer's `*_initializer` argument as written (`he_normal`,
    /// `random_normal(stddev: 0.01)`), read as an initializer when the layer knows the
    /// parameter's shape (`builtins::initializers::initializer`).
    Initializer(Rc<ast::Expr>),
    /// An expression that already failed and was reported: it absorbs follow-on errors.
    Error,
}

/// A value of the forward graph. `origin` is the source that produced it, for labels such as
/// "this layer produces f32[B, 64]".
#[derive(Clone, Copy, Debug)]
pub struct Tensor {
    pub id: ValueId,
    pub origin: Span,
}

#[derive(Clone, Debug)]
pub enum Func {
    /// A built-in function or layer constructor, by name (`relu`, `dense`, `reshape`).
    Builtin(&'static str),
    /// A configured layer (`dense(64, relu)`, `residual(64)`): applying it to a tensor creates
    /// its parameters the first time and reuses them after (Keras's weight sharing).
    Layer(Rc<LayerInstance>),
    /// A user `fn`, by name.
    UserFn(String),
    /// A user `layer` before configuration, by name.
    UserLayer(String),
    /// `grad(f, wrt: i)`: the gradient of the scalar-valued `f` with respect to its `i`-th
    /// argument, a function taking the same arguments.
    Grad(Box<Value>, usize),
}

#[derive(Debug)]
pub struct LayerInstance {
    pub kind: LayerKind,
    /// The call that configured it.
    pub span: Span,
    /// Set on first application: the Keras-style name and the created parameter nodes.
    pub built: RefCell<Option<Built>>,
}

#[derive(Clone, Debug)]
pub struct Built {
    pub name: String,
    pub params: Vec<ValueId>,
}

#[derive(Clone, Debug)]
pub enum LayerKind {
    /// A built-in: `dense`, or a tensor function waiting for its tensor (`flatten()`,
    /// `dropout(0.5)`), with the arguments given so far.
    Builtin {
        name: &'static str,
        args: Vec<ArgValue>,
    },
    /// A user `layer` with its configuration bound by name.
    User {
        name: String,
        config: Vec<(String, Value)>,
    },
}

/// An evaluated call argument.
#[derive(Clone, Debug)]
pub struct ArgValue {
    pub name: Option<Ident>,
    pub value: Value,
    pub span: Span,
}

impl Value {
    /// "found ..." wording for a value of the wrong kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Tensor(_) => "a tensor",
            Value::Int(_) => "a whole number",
            Value::Float(_) => "a decimal number",
            Value::Bool(_) => "a boolean",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Tuple(_) => "a tuple",
            Value::Func(Func::Layer(_)) => "a layer",
            Value::Func(Func::UserLayer(_)) => "a layer definition",
            Value::Func(_) => "a function",
            Value::Initializer(_) => "an initializer",
            Value::Error => "an invalid value",
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }
}
