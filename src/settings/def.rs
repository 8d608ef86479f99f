//! The shape every loss, metric, learning-rate schedule and callback definition shares: a name,
//! its arguments in positional order with Keras's defaults and the check each gets, a
//! documentation line, how the checked value is built from the arguments, and how it is written
//! back (`kiln dump --stage check`). The checker binds a call against `params` generically; the
//! docs' tables, "did you mean" and the REPL's completion read the same entries.
//!
//! (Optimizers have their own, older shape in `optimizer.rs`: their value *is* the definition
//! and its arguments. These kinds keep an enum as the checked value, because the runtime
//! matches on metrics and callbacks for the part that needs its state, and tests name them.)

use std::borrow::Cow;
use std::fmt;

/// One built-in of a kind: `T` is the checked value (`Loss`, `Schedule`, …), `F` the facts
/// only that kind has (a loss's labels, whether a metric grows when it improves).
pub struct Def<T: 'static, F: 'static = ()> {
    pub name: &'static str,
    /// Other names accepted for it (`mse` for `mean_squared_error`); not suggested.
    pub aliases: &'static [&'static str],
    /// One line for the docs' table.
    pub doc: &'static str,
    /// In positional order.
    pub params: &'static [Param],
    /// The checked value from arguments that each passed their own check (in `params` order);
    /// a check across arguments fails with a `Problem`.
    pub build: fn(&[Value]) -> Result<T, Problem>,
    /// A checked value's arguments, in `params` order: the inverse of `build`, for the
    /// canonical text.
    pub values: fn(&T) -> Vec<Value>,
    pub facts: F,
}

pub struct Param {
    pub name: &'static str,
    pub kind: ParamKind,
    /// `None`: required.
    pub default: Option<Value>,
    /// For the docs' table.
    pub doc: &'static str,
    /// How the canonical text writes it.
    pub text: Text,
}

/// How an argument is checked (each reads as the checker's reader of that name does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Bool,
    /// A number greater than zero, kept as an f32 (a hyper-parameter of the step).
    Positive,
    /// A number in [0, 1), as an f32.
    Fraction,
    /// A number in (0, 1), as an f32: 0 is reported on its own (a factor that stops training).
    Factor,
    /// A number zero or greater, kept as written.
    NonNegative,
    /// A whole number greater than zero.
    PositiveInt,
    /// A whole number zero or greater.
    Count,
    /// The name of a quantity the fit reports (a string: `"val_loss"`).
    Monitor,
    /// A `.safetensors` path (a string).
    CheckpointPath,
    /// A list of whole numbers zero or greater (step counts).
    Steps,
    /// A list of positive numbers (learning rates), as f32s.
    Rates,
}

/// How the canonical text writes an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    /// `name: value`.
    Named,
    /// The value alone (it is first, as it is usually written).
    Positional,
    /// `name: value`, only when it is not the default.
    Changed,
    /// Not at all.
    Hidden,
}

/// An argument's value. Numbers checked as f32 stay f32, so their text is the shortest form
/// that reads back to the same f32.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    F32(f32),
    F64(f64),
    Int(u64),
    Bool(bool),
    Str(Cow<'static, str>),
    Ints(Vec<u64>),
    F32s(Vec<f32>),
}

impl Value {
    /// Either kind of number, as an f64 (an f32 widened exactly).
    pub fn number(&self) -> f64 {
        match self {
            Value::F32(x) => f64::from(*x),
            Value::F64(x) => *x,
            other => panic!("internal error: {other:?} is not a number"),
        }
    }

    pub fn f32(&self) -> f32 {
        match self {
            Value::F32(x) => *x,
            other => panic!("internal error: {other:?} is not an f32"),
        }
    }

    pub fn int(&self) -> u64 {
        match self {
            Value::Int(n) => *n,
            other => panic!("internal error: {other:?} is not a whole number"),
        }
    }

    /// A count as a `usize`, saturating (a patience beyond any run is the same as `usize::MAX`).
    pub fn count(&self) -> usize {
        usize::try_from(self.int()).unwrap_or(usize::MAX)
    }

    pub fn flag(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            other => panic!("internal error: {other:?} is not a boolean"),
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Value::Str(s) => s,
            other => panic!("internal error: {other:?} is not a string"),
        }
    }

    pub fn ints(&self) -> &[u64] {
        match self {
            Value::Ints(v) => v,
            other => panic!("internal error: {other:?} is not a list of whole numbers"),
        }
    }

    pub fn f32s(&self) -> &[f32] {
        match self {
            Value::F32s(v) => v,
            other => panic!("internal error: {other:?} is not a list of numbers"),
        }
    }
}

impl fmt::Display for Value {
    /// Debug formatting of floats is the shortest round-trip form (`0.001`, `1e-7`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::F32(x) => write!(f, "{x:?}"),
            Value::F64(x) => write!(f, "{x:?}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Ints(v) => write!(f, "{v:?}"),
            Value::F32s(v) => write!(f, "{v:?}"),
        }
    }
}

/// A check across arguments that failed (each argument alone was fine).
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The argument to point at; `None`: the whole call.
    pub at: Option<&'static str>,
    pub message: String,
    pub label: String,
    pub note: Option<String>,
}

impl<T, F> Def<T, F> {
    pub fn param_names(&self) -> Vec<&'static str> {
        self.params.iter().map(|p| p.name).collect()
    }

    /// Whether `name` calls this definition (its name or an alias).
    pub fn is_called(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }

    /// The canonical form: `cosine_decay(0.01, decay_steps: 100, alpha: 0.0)`, or the bare name
    /// when no argument is written.
    pub fn text(&self, value: &T) -> String {
        let values = (self.values)(value);
        let shown: Vec<String> = self
            .params
            .iter()
            .zip(&values)
            .filter_map(|(p, v)| match p.text {
                Text::Named => Some(format!("{}: {v}", p.name)),
                Text::Positional => Some(v.to_string()),
                Text::Changed if p.default.as_ref() != Some(v) => Some(format!("{}: {v}", p.name)),
                Text::Changed | Text::Hidden => None,
            })
            .collect();
        if shown.is_empty() {
            self.name.to_string()
        } else {
            format!("{}({})", self.name, shown.join(", "))
        }
    }

    /// The docs' cell for the arguments: `` `x` (positive), `alpha: 0.0` ``, or `none`.
    pub fn params_doc(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                let head = match &p.default {
                    None => format!("`{}`", p.name),
                    Some(d) => format!("`{}: {d}`", p.name),
                };
                match p.doc {
                    "" => head,
                    doc => format!("{head} ({doc})"),
                }
            })
            .collect();
        if params.is_empty() {
            "none".to_string()
        } else {
            params.join(", ")
        }
    }

    /// The docs' cell for the name: `` `mean_squared_error` (`mse`) ``.
    pub fn name_doc(&self) -> String {
        let mut out = format!("`{}`", self.name);
        for alias in self.aliases {
            out.push_str(&format!(" (`{alias}`)"));
        }
        out
    }
}

/// The names of `defs` (not their aliases), for "did you mean", listings and completion.
pub fn names<T, F>(defs: &[&Def<T, F>]) -> Vec<&'static str> {
    defs.iter().map(|d| d.name).collect()
}

/// The definition `name` calls.
pub fn find<T, F>(defs: &[&'static Def<T, F>], name: &str) -> Option<&'static Def<T, F>> {
    defs.iter().copied().find(|d| d.is_called(name))
}

/// A table's header and its rows, one per definition.
pub fn table<T, F>(
    header: &[&str],
    defs: &[&Def<T, F>],
    row: impl Fn(&Def<T, F>) -> Vec<String>,
) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for def in defs {
        out.push_str(&format!("| {} |\n", row(def).join(" | ")));
    }
    out
}

/// A required argument.
pub const fn required(name: &'static str, kind: ParamKind, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        default: None,
        doc,
        text: Text::Named,
    }
}

/// A required argument the canonical text writes without its name.
pub const fn positional(name: &'static str, kind: ParamKind, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        default: None,
        doc,
        text: Text::Positional,
    }
}

/// An argument with a default.
pub const fn optional(
    name: &'static str,
    kind: ParamKind,
    default: Value,
    doc: &'static str,
) -> Param {
    Param {
        name,
        kind,
        default: Some(default),
        doc,
        text: Text::Named,
    }
}
