//! The REPL's entries, checked. A definition entry is checked as part of the session's program;
//! an expression entry is elaborated against the program's definitions and the session's tensor
//! variables into a graph whose outputs are the expression's tensors — the same graph a model's
//! body would give, so it is optimized, compiled and run by the same pipeline.

use super::Checker;
use super::elab::Elab;
use super::prompt::Prompt;
use super::value::{Func, LayerKind, Value};
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::{Graph, ValueId};
use crate::program::CheckedProgram;
use crate::syntax::ast;

/// A tensor the session holds from an earlier entry (`let x = randn(3, 4)`).
#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub ty: crate::ir::shape::TensorType,
}

/// What to feed an input of an expression's graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Feed {
    /// The session variable with this index.
    Variable(usize),
    /// A tensor constant's values (a literal, `zeros(…)`, `randn(…)`).
    Constant(Vec<f32>),
}

/// A checked expression: its graph, what to feed the graph's inputs, and the shape of its value.
#[derive(Clone, Debug)]
pub struct Expression {
    /// Outputs: one per tensor in the value (`value`, or `value0`, `value1`, … for a tuple),
    /// and `grad` when a gradient was asked for.
    pub graph: Graph,
    /// By graph input index.
    pub feeds: Vec<Feed>,
    pub value: Shown,
    /// The seed the next entry's `randn` starts from.
    pub next_seed: u64,
}

/// An expression's value with its tensors named by graph output.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Tensor(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    List(Vec<Shown>),
    Tuple(Vec<Shown>),
    Function(String),
    Layer(String),
}

/// The output that holds `:grad`'s gradient.
pub const GRAD: &str = "grad";

/// Checks a session's definitions as `check` does, without the warnings about unused
/// definitions and data: at the prompt, defining things for later is the point.
pub fn check_definitions(program: &ast::Program) -> (Option<CheckedProgram>, Vec<Diagnostic>) {
    let mut checker = Checker::new(program);
    checker.prompt = true;
    checker.items(program);
    checker.finish()
}

/// An expression to check at the prompt, and what else the entry asks of it.
pub struct Query<'a> {
    pub expr: &'a ast::Expr,
    /// The session's tensor variables.
    pub variables: &'a [Variable],
    /// Where `randn` without a seed starts.
    pub seed: u64,
    /// `:grad … wrt NAME`: also differentiate the (scalar) value with respect to this variable.
    pub wrt: Option<&'a ast::Ident>,
    /// `let NAME: TYPE = …`: the type the value must have.
    pub declared: Option<(&'a ast::TypeExpr, &'a str)>,
}

/// Checks an expression against `program`'s definitions and the session's variables.
pub fn expression(program: &ast::Program, query: &Query) -> (Option<Expression>, Vec<Diagnostic>) {
    let Query {
        expr,
        variables,
        seed,
        wrt,
        declared,
    } = *query;
    let mut checker = Checker::new(program);
    checker.prompt = true;
    checker.items(program);
    if checker.diags.iter().any(Diagnostic::is_error) {
        return (None, checker.diags);
    }
    let mut el = Elab::new(&mut checker, "prompt");
    el.prompt = Some(Prompt {
        variables: variables.to_vec(),
        next_seed: seed,
        ..Prompt::default()
    });
    el.push_scope(false);
    let value = el.eval(expr);
    // A list of numbers is shown as a tensor; a list holding tensors stays a list.
    let mut value = if numbers_only(&value) {
        el.tensor_literal(value, expr.span)
    } else {
        value
    };
    if let Some((ty, name)) = declared {
        let mut env = super::types::DimEnv::default();
        if !el.check_declared(&value, expr.span, ty, &mut env, &format!("`{name}`")) {
            value = Value::Error;
        }
    }
    let gradient = wrt.and_then(|wrt| gradient(&mut el, &value, expr.span, wrt));
    el.pop_scope();
    let mut outputs = Vec::new();
    let tensors = count_tensors(&value);
    let shown = show(&value, tensors, &mut outputs);
    let mut graph = std::mem::replace(&mut el.graph, Graph::new("prompt"));
    let prompt = el.prompt.take().unwrap_or_default();
    graph.outputs = outputs;
    if let Some(gradient) = gradient {
        graph.outputs.push((GRAD.to_string(), gradient));
    }
    let failed = matches!(value, Value::Error)
        || (wrt.is_some() && gradient.is_none())
        || checker.diags.iter().any(Diagnostic::is_error);
    let expression = (!failed).then_some(Expression {
        graph,
        feeds: prompt.feeds,
        value: shown,
        next_seed: prompt.next_seed,
    });
    (expression, checker.diags)
}

/// `:grad EXPR wrt NAME`: ∂value/∂NAME, built by the autodiff that trains models.
fn gradient(el: &mut Elab, value: &Value, span: Span, wrt: &ast::Ident) -> Option<ValueId> {
    let Value::Tensor(y) = value else {
        if !matches!(value, Value::Error) {
            el.wrong_kind(value, span, "a tensor to differentiate");
        }
        return None;
    };
    let x = match el.prompt_name(&wrt.name, wrt.span) {
        Some(Value::Tensor(x)) => x,
        _ => {
            let names: Vec<String> = el
                .prompt
                .iter()
                .flat_map(|p| p.variables.iter().map(|v| v.name.clone()))
                .collect();
            let mut d = Diagnostic::error(
                "E0113",
                format!("`{}` is not a tensor variable of the session", wrt.name),
            )
            .primary(wrt.span, "differentiate with respect to this");
            d = match crate::suggest::closest(&wrt.name, names.iter().map(String::as_str)) {
                Some(best) => d.help(format!("did you mean `{best}`?")),
                None => d.help(format!("define it first: `let {} = randn(3)`", wrt.name)),
            };
            el.error(d);
            return None;
        }
    };
    if el.ty(*y).shape.rank() != 0 {
        let text = el.text(*y);
        el.error(
            Diagnostic::error(
                "E0224",
                format!("a gradient needs a scalar, and this expression is {text}"),
            )
            .primary(span, format!("this is {text}"))
            .help("reduce it to one number first, e.g. `sum(…)` or `mean(…)`"),
        );
        return None;
    }
    Some(crate::ir::autodiff::gradient(&mut el.graph, y.id, &[x.id])[0])
}

fn numbers_only(value: &Value) -> bool {
    match value {
        Value::List(items) => items.iter().all(numbers_only),
        Value::Int(_) | Value::Float(_) => true,
        _ => false,
    }
}

fn count_tensors(value: &Value) -> usize {
    match value {
        Value::Tensor(_) => 1,
        Value::List(items) | Value::Tuple(items) => items.iter().map(count_tensors).sum(),
        _ => 0,
    }
}

/// The value with each tensor made a graph output: `value` when it is the only one.
fn show(value: &Value, tensors: usize, outputs: &mut Vec<(String, ValueId)>) -> Shown {
    let items = |items: &[Value], outputs: &mut Vec<(String, ValueId)>| {
        items.iter().map(|v| show(v, tensors, outputs)).collect()
    };
    match value {
        Value::Tensor(t) => {
            let name = if tensors == 1 {
                "value".to_string()
            } else {
                format!("value{}", outputs.len())
            };
            outputs.push((name.clone(), t.id));
            Shown::Tensor(name)
        }
        Value::Int(n) => Shown::Int(*n),
        Value::Float(x) => Shown::Float(*x),
        Value::Bool(b) => Shown::Bool(*b),
        Value::Str(s) => Shown::Str(s.clone()),
        Value::List(values) => Shown::List(items(values, outputs)),
        Value::Tuple(values) => Shown::Tuple(items(values, outputs)),
        Value::Func(Func::Builtin(name)) => Shown::Function(name.to_string()),
        Value::Func(Func::UserFn(name)) => Shown::Function(name.clone()),
        Value::Func(Func::Grad(f, wrt)) => {
            let inner = match show(f, tensors, outputs) {
                Shown::Function(name) | Shown::Layer(name) => name,
                _ => "…".to_string(),
            };
            Shown::Function(format!("grad({inner}, wrt: {wrt})"))
        }
        Value::Func(Func::UserLayer(name)) => Shown::Layer(name.clone()),
        Value::Func(Func::Layer(layer)) => Shown::Layer(match &layer.kind {
            LayerKind::Builtin { name, .. } => name.to_string(),
            LayerKind::User { name, .. } => name.clone(),
        }),
        // Only a layer's argument holds an initializer, never a value shown.
        Value::Initializer(_) | Value::Error => Shown::Str(String::new()),
    }
}
