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

    /// Whether `name` calls this definition of kind `of` (its name or an alias).
    pub fn is_called(&self, of: AliasOf, name: &str) -> bool {
        self.name == canonical(of, name)
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
    pub fn name_doc(&self, of: AliasOf) -> String {
        name_doc(of, self.name)
    }
}

/// The names of `defs` (not their aliases), for listings and completion.
pub fn names<T, F>(defs: &[&Def<T, F>]) -> Vec<&'static str> {
    defs.iter().map(|d| d.name).collect()
}

/// The definition of kind `of` that `name` calls.
pub fn find<T, F>(
    defs: &[&'static Def<T, F>],
    of: AliasOf,
    name: &str,
) -> Option<&'static Def<T, F>> {
    defs.iter().copied().find(|d| d.is_called(of, name))
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

/// What an alias names: a built-in of a kind, an argument of a call of one, or a `fit` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasOf {
    Optimizer,
    Loss,
    Metric,
    Schedule,
    Callback,
    Initializer,
    Regularizer,
    /// An argument of an optimizer, loss, metric, schedule, callback or initializer (not of a
    /// layer or a user's function: their arguments keep one spelling).
    Argument,
    /// A `fit` setting.
    Setting,
}

impl AliasOf {
    fn text(self) -> &'static str {
        match self {
            AliasOf::Optimizer => "optimizer",
            AliasOf::Loss => "loss",
            AliasOf::Metric => "metric",
            AliasOf::Schedule => "schedule",
            AliasOf::Callback => "callback",
            AliasOf::Initializer => "initializer",
            AliasOf::Regularizer => "regularizer",
            AliasOf::Argument => "argument",
            AliasOf::Setting => "`fit` setting",
        }
    }
}

/// Another spelling accepted for a name: `alias` means `name` wherever a name of kind `of` is
/// read. `dump --stage check` and the summary print `name`.
pub struct Alias {
    pub of: AliasOf,
    pub alias: &'static str,
    pub name: &'static str,
}

const fn alias(of: AliasOf, alias: &'static str, name: &'static str) -> Alias {
    Alias { of, alias, name }
}

/// Every alias, in the order the docs list them: Keras's spellings (its class names, its
/// argument and `fit` names, the strings its `compile` takes) and Kiln's short names.
pub static ALIASES: &[Alias] = &[
    alias(AliasOf::Optimizer, "SGD", "sgd"),
    alias(AliasOf::Optimizer, "Adam", "adam"),
    alias(AliasOf::Optimizer, "RMSprop", "rmsprop"),
    alias(AliasOf::Optimizer, "AdamW", "adamw"),
    alias(AliasOf::Optimizer, "Adagrad", "adagrad"),
    alias(AliasOf::Optimizer, "Nadam", "nadam"),
    alias(AliasOf::Argument, "learning_rate", "lr"),
    alias(AliasOf::Argument, "beta_1", "beta1"),
    alias(AliasOf::Argument, "beta_2", "beta2"),
    alias(AliasOf::Argument, "epsilon", "eps"),
    alias(AliasOf::Argument, "filepath", "path"),
    alias(AliasOf::Argument, "stddev", "std"),
    alias(
        AliasOf::Loss,
        "SparseCategoricalCrossentropy",
        "sparse_categorical_crossentropy",
    ),
    alias(
        AliasOf::Loss,
        "CategoricalCrossentropy",
        "categorical_crossentropy",
    ),
    alias(AliasOf::Loss, "BinaryCrossentropy", "binary_crossentropy"),
    alias(AliasOf::Loss, "MeanSquaredError", "mean_squared_error"),
    alias(AliasOf::Loss, "mse", "mean_squared_error"),
    alias(AliasOf::Loss, "MeanAbsoluteError", "mean_absolute_error"),
    alias(AliasOf::Loss, "mae", "mean_absolute_error"),
    alias(AliasOf::Loss, "Huber", "huber"),
    alias(
        AliasOf::Metric,
        "SparseTopKCategoricalAccuracy",
        "top_k_accuracy",
    ),
    alias(AliasOf::Metric, "Precision", "precision"),
    alias(AliasOf::Metric, "Recall", "recall"),
    alias(AliasOf::Metric, "F1Score", "f1_score"),
    alias(AliasOf::Metric, "AUC", "auc"),
    alias(AliasOf::Metric, "MeanAbsoluteError", "mae"),
    alias(AliasOf::Metric, "mean_absolute_error", "mae"),
    alias(AliasOf::Metric, "MeanSquaredError", "mse"),
    alias(AliasOf::Metric, "mean_squared_error", "mse"),
    alias(AliasOf::Schedule, "ExponentialDecay", "exponential_decay"),
    alias(
        AliasOf::Schedule,
        "PiecewiseConstantDecay",
        "piecewise_constant_decay",
    ),
    alias(AliasOf::Schedule, "CosineDecay", "cosine_decay"),
    alias(AliasOf::Callback, "EarlyStopping", "early_stopping"),
    alias(AliasOf::Callback, "ModelCheckpoint", "checkpoint"),
    alias(
        AliasOf::Callback,
        "ReduceLROnPlateau",
        "reduce_lr_on_plateau",
    ),
    alias(AliasOf::Initializer, "GlorotUniform", "glorot_uniform"),
    alias(AliasOf::Initializer, "GlorotNormal", "glorot_normal"),
    alias(AliasOf::Initializer, "HeUniform", "he_uniform"),
    alias(AliasOf::Initializer, "HeNormal", "he_normal"),
    alias(AliasOf::Initializer, "LecunUniform", "lecun_uniform"),
    alias(AliasOf::Initializer, "LecunNormal", "lecun_normal"),
    alias(AliasOf::Initializer, "Zeros", "zeros"),
    alias(AliasOf::Initializer, "Ones", "ones"),
    alias(AliasOf::Initializer, "RandomNormal", "normal"),
    alias(AliasOf::Initializer, "random_normal", "normal"),
    alias(AliasOf::Initializer, "RandomUniform", "uniform"),
    alias(AliasOf::Initializer, "random_uniform", "uniform"),
    alias(AliasOf::Initializer, "Constant", "constant"),
    alias(AliasOf::Regularizer, "L1", "l1"),
    alias(AliasOf::Regularizer, "L2", "l2"),
    alias(AliasOf::Regularizer, "L1L2", "l1_l2"),
    alias(AliasOf::Setting, "batch_size", "batch"),
];

/// The name `name` stands for among names of kind `of`: the canonical name of an alias, else
/// `name` itself.
pub fn canonical(of: AliasOf, name: &str) -> &str {
    ALIASES
        .iter()
        .find(|a| a.of == of && a.alias == name)
        .map_or(name, |a| a.name)
}

/// The aliases of kind `of` for `name`.
pub fn aliases_of(of: AliasOf, name: &str) -> impl Iterator<Item = &'static str> {
    ALIASES
        .iter()
        .filter(move |a| a.of == of && a.name == name)
        .map(|a| a.alias)
}

/// `names` with the aliases of kind `of` that stand for one of them: the candidates for "did
/// you mean" (names first, so a tie suggests Kiln's spelling).
pub fn with_aliases<'a>(of: AliasOf, names: &[&'a str]) -> Vec<&'a str> {
    let aliases = ALIASES
        .iter()
        .filter(|a| a.of == of && names.contains(&a.name))
        .map(|a| a.alias);
    names.iter().copied().chain(aliases).collect()
}

/// A table's cell for a name: `` `mean_squared_error` (`MeanSquaredError`, `mse`) ``.
pub fn name_doc(of: AliasOf, name: &str) -> String {
    let aliases: Vec<String> = aliases_of(of, name).map(|a| format!("`{a}`")).collect();
    match aliases.as_slice() {
        [] => format!("`{name}`"),
        _ => format!("`{name}` ({})", aliases.join(", ")),
    }
}

/// The table in docs/language.md of the argument and setting aliases (`tests/docs.rs`); the
/// other kinds' tables list a built-in's aliases beside its name.
pub fn aliases_table() -> String {
    let mut out = String::from("| Also accepted | Kiln's name | For |\n|---|---|---|\n");
    let named = |a: &&Alias| matches!(a.of, AliasOf::Argument | AliasOf::Setting);
    for a in ALIASES.iter().filter(named) {
        out.push_str(&format!(
            "| `{}` | `{}` | {} |\n",
            a.alias,
            a.name,
            a.of.text()
        ));
    }
    out
}
