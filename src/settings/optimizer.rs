//! Optimizers, each defined once: its name, its arguments with Keras's defaults and the checks on
//! them, a documentation line, the state it keeps, and its update rule. The checker binds a call
//! against `args`, `kiln dump --stage check` prints the canonical form, the summary counts the
//! state, checkpoints name it, and `ir::optimizer` builds the update as IR by running `update`
//! against the graph — all from the entry in `OPTIMIZERS`. Adding an optimizer is one entry.

use std::fmt;

pub use super::arithmetic::{Arithmetic, Var};
use super::def::{self, AliasOf};

/// Every built-in optimizer, in the order the docs list them.
pub static OPTIMIZERS: &[&OptimizerDef] = &[&SGD, &ADAM, &RMSPROP, &ADAMW, &ADAGRAD, &NADAM];

/// The optimizer called `name` (a name or an alias, `settings::def::ALIASES`).
pub fn find(name: &str) -> Option<&'static OptimizerDef> {
    let name = def::canonical(AliasOf::Optimizer, name);
    OPTIMIZERS.iter().copied().find(|d| d.name == name)
}

/// `def` with learning rate `lr` and its other defaults.
pub fn with_lr(def: &'static OptimizerDef, lr: f64) -> Optimizer {
    Optimizer::new(def, &[("lr", ArgValue::Number(lr))])
}

/// The names of every optimizer, for "did you mean" and completion.
pub fn names() -> Vec<&'static str> {
    OPTIMIZERS.iter().map(|d| d.name).collect()
}

pub struct OptimizerDef {
    pub name: &'static str,
    /// One line for the docs' table and `explain`.
    pub doc: &'static str,
    /// In positional order.
    pub args: &'static [ArgDef],
    /// Defaults that depend on other arguments (adam's `eps` under `profile: torch`), applied
    /// to the arguments the program did not give (`given` names those it did).
    pub resolve: fn(&mut Args, given: &[&str]),
    /// The state roles whose values are non-negative by construction (averages or sums of
    /// squares, whose square roots divide each update): a checkpoint holding a negative one is
    /// rejected.
    pub non_negative: &'static [&'static str],
    /// Builds the update of every parameter from its gradient.
    pub update: fn(&Args, &mut dyn UpdateBuilder),
}

pub struct ArgDef {
    pub name: &'static str,
    pub kind: ArgKind,
    pub default: ArgValue,
    /// For the docs' table, and the help of a wrong `Choice`.
    pub doc: &'static str,
    /// Whether the canonical form (`kiln dump --stage check`) writes the argument.
    pub shown: fn(&Args) -> bool,
}

/// How an argument is checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArgKind {
    /// A positive number, or a learning-rate schedule (then the value is its rate at step 0).
    LearningRate,
    /// A number in [0, 1).
    Fraction,
    /// A number greater than zero.
    Positive,
    /// A number zero or greater.
    NonNegative,
    Bool,
    /// One of these names.
    Choice(&'static [&'static str]),
    /// A gradient-clipping bound: a number greater than zero, or `none` (off, Keras's `None`).
    Clip,
    /// Keras's `weight_decay` on an optimizer that has it off by default: a number zero or
    /// greater, or `none` (off, Keras's `None`).
    Decay,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArgValue {
    /// As written (the update casts it to f32 where Keras casts it to the variable's dtype:
    /// Keras computes `1 - beta_2` in double precision first).
    Number(f64),
    Bool(bool),
    Choice(&'static str),
    /// Keras's `None`: the argument is off.
    Off,
}

impl fmt::Display for ArgValue {
    /// Debug formatting of f32 is the shortest round-trip form (`0.001`, `1e-7`): stable, exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgValue::Number(x) => write!(f, "{:?}", *x as f32),
            ArgValue::Bool(b) => write!(f, "{b}"),
            ArgValue::Choice(c) => write!(f, "{c}"),
            ArgValue::Off => write!(f, "none"),
        }
    }
}

/// An optimizer's argument values, in the order of its `args`.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    names: Vec<&'static str>,
    values: Vec<ArgValue>,
}

impl Args {
    fn position(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("internal error: no optimizer argument `{name}`"))
    }

    pub fn get(&self, name: &str) -> ArgValue {
        self.values[self.position(name)]
    }

    pub fn set(&mut self, name: &str, value: ArgValue) {
        let i = self.position(name);
        self.values[i] = value;
    }

    /// The value as an f32 constant of the step.
    pub fn number(&self, name: &str) -> f32 {
        self.exact(name) as f32
    }

    /// The value as written, for arithmetic Keras does in double precision before casting.
    pub fn exact(&self, name: &str) -> f64 {
        match self.get(name) {
            ArgValue::Number(x) => x,
            other => panic!("internal error: `{name}` is {other:?}, not a number"),
        }
    }

    /// A number, or `None` when the argument is off.
    pub fn optional(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            ArgValue::Off => None,
            _ => Some(self.exact(name)),
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), ArgValue::Bool(true))
    }

    pub fn choice(&self, name: &str) -> &'static str {
        match self.get(name) {
            ArgValue::Choice(c) => c,
            other => panic!("internal error: `{name}` is {other:?}, not a choice"),
        }
    }
}

/// A checked optimizer: which one, and its arguments.
#[derive(Clone)]
pub struct Optimizer {
    pub def: &'static OptimizerDef,
    pub args: Args,
}

impl PartialEq for Optimizer {
    fn eq(&self, other: &Optimizer) -> bool {
        self.def.name == other.def.name && self.args == other.args
    }
}

impl fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Optimizer {
    /// The canonical form: `adam(lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-7)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self
            .def
            .args
            .iter()
            .zip(&self.args.values)
            .filter(|(arg, _)| (arg.shown)(&self.args))
            .map(|(arg, value)| format!("{}: {value}", arg.name))
            .collect();
        write!(f, "{}({})", self.def.name, shown.join(", "))
    }
}

impl Optimizer {
    /// `def` with `values` for the named arguments and defaults for the rest (resolved as when
    /// a program leaves them out).
    pub fn new(def: &'static OptimizerDef, values: &[(&str, ArgValue)]) -> Optimizer {
        let mut args = def.default_args();
        let given: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
        for &(name, value) in values {
            args.set(name, value);
        }
        (def.resolve)(&mut args, &given);
        Optimizer { def, args }
    }

    /// The initial learning rate (a schedule, if any, takes over from it).
    pub fn lr(&self) -> f32 {
        self.args.number("lr")
    }

    /// The state the update keeps, found by running the rule once (so nothing restates it).
    pub fn state(&self) -> StateCensus {
        let mut census = StateCensus::default();
        (self.def.update)(&self.args, &mut census);
        census
    }

    /// What the summary says of the state: `adam: m and v`, `nadam: m, v and u_product`, `sgd`.
    pub fn state_text(&self) -> String {
        let state = self.state();
        let names: Vec<&str> = state
            .roles
            .iter()
            .chain(&state.scalars)
            .map(String::as_str)
            .collect();
        match names.split_last() {
            None => self.def.name.to_string(),
            Some((last, [])) => format!("{}: {last}", self.def.name),
            Some((last, rest)) => format!("{}: {} and {last}", self.def.name, rest.join(", ")),
        }
    }

    /// State values for parameters of `params` values in all.
    pub fn state_count(&self, params: usize) -> usize {
        let state = self.state();
        params
            .saturating_mul(state.roles.len())
            .saturating_add(state.scalars.len())
    }
}

/// The optimizers' table in docs/language.md, written from the definitions (`tests/docs.rs`
/// checks that the page holds exactly this).
pub fn docs_table() -> String {
    let mut out = String::from(
        "| Optimizer | What it is | Arguments in positional order, with Keras's defaults |\n\
         |---|---|---|\n",
    );
    for def in OPTIMIZERS {
        let args: Vec<String> = def
            .args
            .iter()
            .map(|a| match a.doc {
                "" => format!("`{}: {}`", a.name, a.default),
                doc => format!("`{}: {}` ({doc})", a.name, a.default),
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            def::name_doc(AliasOf::Optimizer, def.name),
            def.doc,
            args.join(", ")
        ));
    }
    out
}

impl OptimizerDef {
    pub fn default_args(&self) -> Args {
        Args {
            names: self.args.iter().map(|a| a.name).collect(),
            values: self.args.iter().map(|a| a.default).collect(),
        }
    }
}

/// What an update rule reads and writes beside the shared arithmetic (`settings::arithmetic`).
/// `ir::optimizer` implements it over the graph, so the rule is compiled and fused with the rest
/// of the step; values are created in the order the rule asks for them.
pub trait UpdateBuilder: Arithmetic {
    /// This step's learning rate (a runtime input: schedules change it without recompiling).
    fn lr(&mut self) -> Var;
    /// The 1-based number of this update (Adam's `t`).
    fn step(&mut self) -> Var;
    /// The trainable parameters that have a gradient: `(parameter index, gradient)`.
    fn gradients(&mut self) -> Vec<(usize, Var)>;
    fn param(&mut self, index: usize) -> Var;
    /// A new state tensor shaped like parameter `index`, named `PARAM.role`, starting at `init`.
    fn param_state(&mut self, index: usize, role: &str, init: f32) -> State;
    /// A new scalar state shared by every parameter, named `name`, starting at `init`.
    fn scalar_state(&mut self, name: &str, init: f32) -> State;
    /// After the step, parameter `index` holds `value`.
    fn set_param(&mut self, index: usize, value: Var);
    /// After the step, `state` holds `value`.
    fn set_state(&mut self, state: State, value: Var);
}

/// What an update rule keeps: per-parameter roles (`m`, `v`) and shared scalars (`u_product`),
/// in the order the rule creates them. Collected by running the rule on one parameter with no
/// arithmetic behind it.
#[derive(Debug, Default, PartialEq)]
pub struct StateCensus {
    pub roles: Vec<String>,
    pub scalars: Vec<String>,
}

impl Arithmetic for StateCensus {
    fn constant(&mut self, _: f32) -> Var {
        Var(0)
    }
    fn neg(&mut self, x: Var) -> Var {
        x
    }
    fn abs(&mut self, x: Var) -> Var {
        x
    }
    fn sqrt(&mut self, x: Var) -> Var {
        x
    }
    fn add(&mut self, a: Var, _: Var) -> Var {
        a
    }
    fn sub(&mut self, a: Var, _: Var) -> Var {
        a
    }
    fn mul(&mut self, a: Var, _: Var) -> Var {
        a
    }
    fn div(&mut self, a: Var, _: Var) -> Var {
        a
    }
    fn pow(&mut self, a: Var, _: Var) -> Var {
        a
    }
    fn min(&mut self, a: Var, _: Var) -> Var {
        a
    }
}

impl UpdateBuilder for StateCensus {
    fn lr(&mut self) -> Var {
        Var(0)
    }
    fn step(&mut self) -> Var {
        Var(0)
    }
    fn gradients(&mut self) -> Vec<(usize, Var)> {
        vec![(0, Var(0))]
    }
    fn param(&mut self, _: usize) -> Var {
        Var(0)
    }
    fn param_state(&mut self, _: usize, role: &str, _: f32) -> State {
        self.roles.push(role.to_string());
        State {
            index: 0,
            value: Var(0),
        }
    }
    fn scalar_state(&mut self, name: &str, _: f32) -> State {
        self.scalars.push(name.to_string());
        State {
            index: 0,
            value: Var(0),
        }
    }
    fn set_param(&mut self, _: usize, _: Var) {}
    fn set_state(&mut self, _: State, _: Var) {}
}

/// A state tensor of the update: its index among the graph's states and its current value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub index: usize,
    pub value: Var,
}

fn always(_: &Args) -> bool {
    true
}

fn no_resolve(_: &mut Args, _: &[&str]) {}

const fn lr(default: f64) -> ArgDef {
    ArgDef {
        name: "lr",
        kind: ArgKind::LearningRate,
        default: ArgValue::Number(default),
        doc: "positive, or a schedule",
        shown: always,
    }
}

const fn number(name: &'static str, kind: ArgKind, default: f64, doc: &'static str) -> ArgDef {
    ArgDef {
        name,
        kind,
        default: ArgValue::Number(default),
        doc,
        shown: always,
    }
}

/// Keras's decoupled weight decay, `p −= p · weight_decay · lr` on every trainable parameter
/// before the update (its `_apply_weight_decay`): by name, off by default on every optimizer
/// but `adamw` (whose own `weight_decay` is the same argument with Keras's default, 0.004).
/// `ir::optimizer` applies it: the rules read the decayed parameter.
const WEIGHT_DECAY: ArgDef = ArgDef {
    name: "weight_decay",
    kind: ArgKind::Decay,
    default: ArgValue::Off,
    doc: "by name; each parameter decays by `p · weight_decay · lr` before the update",
    shown: |a| a.optional("weight_decay").is_some(),
};

/// Every optimizer takes Keras's gradient clipping (at most one of the three, as Keras
/// allows), applied to the gradients before its update (`ir::optimizer`).
pub const CLIP_ARGS: [&str; 3] = ["clipnorm", "clipvalue", "global_clipnorm"];

const fn clip(name: &'static str, doc: &'static str, shown: fn(&Args) -> bool) -> ArgDef {
    ArgDef {
        name,
        kind: ArgKind::Clip,
        default: ArgValue::Off,
        doc,
        shown,
    }
}

const CLIPNORM: ArgDef = clip(
    "clipnorm",
    "by name; each gradient scaled to at most this L2 norm",
    |a| a.optional("clipnorm").is_some(),
);
const CLIPVALUE: ArgDef = clip(
    "clipvalue",
    "by name; each gradient value clipped to [−clipvalue, clipvalue]",
    |a| a.optional("clipvalue").is_some(),
);
const GLOBAL_CLIPNORM: ArgDef = clip(
    "global_clipnorm",
    "by name; all gradients scaled together to at most this L2 norm",
    |a| a.optional("global_clipnorm").is_some(),
);

/// Adam's family shares these, with Keras's defaults.
const BETA1: ArgDef = number("beta1", ArgKind::Fraction, 0.9, "in [0, 1)");
const BETA2: ArgDef = number("beta2", ArgKind::Fraction, 0.999, "in [0, 1)");
const EPS: ArgDef = number("eps", ArgKind::Positive, 1e-7, "positive");

// ── sgd ─────────────────────────────────────────────────────────────────────────────────────

/// Keras's SGD: `p -= lr · g`; with `momentum > 0`, `v = momentum · v − lr · g`, then `p += v`,
/// or with `nesterov`, `p += momentum · v − lr · g`.
pub static SGD: OptimizerDef = OptimizerDef {
    name: "sgd",
    doc: "stochastic gradient descent, with optional (Nesterov) momentum",
    args: &[
        lr(0.01),
        ArgDef {
            shown: has_momentum,
            ..number("momentum", ArgKind::Fraction, 0.0, "in [0, 1)")
        },
        ArgDef {
            name: "nesterov",
            kind: ArgKind::Bool,
            default: ArgValue::Bool(false),
            doc: "",
            shown: has_momentum,
        },
        WEIGHT_DECAY,
        CLIPNORM,
        CLIPVALUE,
        GLOBAL_CLIPNORM,
    ],
    resolve: no_resolve,
    non_negative: &[],
    update: sgd_update,
};

// Keras: with momentum 0 (nesterov or not) the update is plain SGD.
fn has_momentum(args: &Args) -> bool {
    args.number("momentum") != 0.0
}

fn sgd_update(args: &Args, b: &mut dyn UpdateBuilder) {
    let lr = b.lr();
    if !has_momentum(args) {
        for (index, g) in b.gradients() {
            let p = b.param(index);
            let step = b.mul(lr, g);
            let p_new = b.sub(p, step);
            b.set_param(index, p_new);
        }
        return;
    }
    let mu = b.constant(args.number("momentum"));
    for (index, g) in b.gradients() {
        let v = b.param_state(index, "momentum", 0.0);
        let decayed = b.mul(mu, v.value);
        let scaled = b.mul(lr, g);
        let v_new = b.sub(decayed, scaled);
        let p = b.param(index);
        let delta = if args.flag("nesterov") {
            let ahead = b.mul(mu, v_new);
            b.sub(ahead, scaled)
        } else {
            v_new
        };
        let p_new = b.add(p, delta);
        b.set_state(v, v_new);
        b.set_param(index, p_new);
    }
}

// ── adam ────────────────────────────────────────────────────────────────────────────────────

/// Keras's Adam: `m += (g − m)(1 − β1)`, `v += (g² − v)(1 − β2)`,
/// `p −= lr · sqrt(1 − β2^t)/(1 − β1^t) · m / (sqrt(v) + eps)`. With `profile: torch`,
/// PyTorch's form: ε is added after the bias correction,
/// `p −= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)`, `v = β2 · v + (1 − β2) · g²`.
pub static ADAM: OptimizerDef = OptimizerDef {
    name: "adam",
    doc: "Adam, in Keras's form (or PyTorch's with `profile: torch`)",
    args: &[
        lr(0.001),
        BETA1,
        BETA2,
        number(
            "eps",
            ArgKind::Positive,
            1e-7,
            "positive; `1e-8` with `profile: torch`",
        ),
        ArgDef {
            name: "profile",
            kind: ArgKind::Choice(&["keras", "torch"]),
            default: ArgValue::Choice("keras"),
            doc: "`torch` adds eps after the bias correction, as PyTorch does; `keras` (the \
                  default) before",
            shown: |args| args.choice("profile") != "keras",
        },
        WEIGHT_DECAY,
        CLIPNORM,
        CLIPVALUE,
        GLOBAL_CLIPNORM,
    ],
    // PyTorch's default eps is 1e-8, Keras's 1e-7.
    resolve: |args, given| {
        if !given.contains(&"eps") && args.choice("profile") == "torch" {
            args.set("eps", ArgValue::Number(1e-8));
        }
    },
    non_negative: &["v"],
    update: adam_update,
};

/// The per-step scalars of Adam's bias correction: `1 − β1^t`, `sqrt(1 − β2^t)`, and the
/// learning rate.
struct BiasCorrection {
    b2: Var,
    bias1: Var,
    root: Var,
    lr: Var,
}

fn bias_correction(args: &Args, b: &mut dyn UpdateBuilder) -> BiasCorrection {
    let t = b.step();
    let one = b.constant(1.0);
    let b1 = b.constant(args.number("beta1"));
    let b2 = b.constant(args.number("beta2"));
    let b1_t = b.pow(b1, t);
    let b2_t = b.pow(b2, t);
    let bias1 = b.sub(one, b1_t);
    let bias2 = b.sub(one, b2_t);
    let root = b.sqrt(bias2);
    let lr = b.lr();
    BiasCorrection {
        b2,
        bias1,
        root,
        lr,
    }
}

/// Keras's moving average `x += (value − x) · (1 − β)`.
fn moving_average(b: &mut dyn UpdateBuilder, x: Var, value: Var, one_minus_beta: Var) -> Var {
    let dx = b.sub(value, x);
    let dx = b.mul(dx, one_minus_beta);
    b.add(x, dx)
}

fn adam_update(args: &Args, b: &mut dyn UpdateBuilder) {
    let torch = args.choice("profile") == "torch";
    // Keras's form: alpha = lr · sqrt(1 − β2^t) / (1 − β1^t), computed once per step.
    let BiasCorrection {
        b2,
        bias1,
        root,
        lr,
    } = bias_correction(args, b);
    // PyTorch divides m by (1 − β1^t) and sqrt(v) by sqrt(1 − β2^t) before adding ε:
    // alpha = lr / (1 − β1^t), and the root is kept for the denominator.
    let (alpha, root_bias2) = if torch {
        (b.div(lr, bias1), Some(root))
    } else {
        let scaled = b.mul(lr, root);
        (b.div(scaled, bias1), None)
    };
    // In f32, where Keras subtracts in double precision and casts: `1 - 0.999` is 0.00099998713
    // here, 0.001 in Keras, which is most of `adam`'s 7e-6 distance from Keras after 200 steps
    // (docs/parity.md). Kept: changing it changes every trained Adam model's bits.
    let one_minus_b1 = b.constant(1.0 - args.number("beta1"));
    let one_minus_b2 = b.constant(1.0 - args.number("beta2"));
    let eps = b.constant(args.number("eps"));
    for (index, g) in b.gradients() {
        let m = b.param_state(index, "m", 0.0);
        let v = b.param_state(index, "v", 0.0);
        // m += (g − m)(1 − β1); v += (g² − v)(1 − β2): Keras's exact arithmetic.
        let m_new = moving_average(b, m.value, g, one_minus_b1);
        let g2 = b.mul(g, g);
        let v_new = if torch {
            // PyTorch: v · β2 + (1 − β2) · g² (addcmul).
            let kept = b.mul(v.value, b2);
            let added = b.mul(g2, one_minus_b2);
            b.add(kept, added)
        } else {
            moving_average(b, v.value, g2, one_minus_b2)
        };
        // p −= (m · alpha) / (sqrt(v) + ε); torch: sqrt(v) / sqrt(1 − β2^t) + ε.
        let numerator = b.mul(m_new, alpha);
        let root_v = b.sqrt(v_new);
        let root_v = match root_bias2 {
            Some(root) => b.div(root_v, root),
            None => root_v,
        };
        let denominator = b.add(root_v, eps);
        let step = b.div(numerator, denominator);
        let p = b.param(index);
        let p_new = b.sub(p, step);
        b.set_state(m, m_new);
        b.set_state(v, v_new);
        b.set_param(index, p_new);
    }
}

// ── rmsprop ─────────────────────────────────────────────────────────────────────────────────

/// Keras's RMSprop: `velocity = ρ · velocity + (1 − ρ) · g²`; centered, also
/// `average = ρ · average + (1 − ρ) · g` and the denominator `velocity − average² + ε`, else
/// `velocity + ε`; `increment = lr · g / sqrt(denominator)`; with momentum,
/// `buffer = momentum · buffer + increment` and `p −= buffer`, else `p −= increment`.
pub static RMSPROP: OptimizerDef = OptimizerDef {
    name: "rmsprop",
    doc: "RMSprop: steps scaled by a moving average of squared gradients",
    args: &[
        lr(0.001),
        number("rho", ArgKind::Fraction, 0.9, "in [0, 1)"),
        number("momentum", ArgKind::Fraction, 0.0, "in [0, 1)"),
        EPS,
        ArgDef {
            name: "centered",
            kind: ArgKind::Bool,
            default: ArgValue::Bool(false),
            doc: "normalize by the gradients' variance instead of their second moment",
            shown: always,
        },
        WEIGHT_DECAY,
        CLIPNORM,
        CLIPVALUE,
        GLOBAL_CLIPNORM,
    ],
    resolve: no_resolve,
    non_negative: &["velocity"],
    update: rmsprop_update,
};

fn rmsprop_update(args: &Args, b: &mut dyn UpdateBuilder) {
    let lr = b.lr();
    // Keras multiplies by `rho` cast to f32 and by `1 - rho` computed in double, then cast.
    let rho = b.constant(args.number("rho"));
    let one_minus_rho = b.constant((1.0 - args.exact("rho")) as f32);
    let eps = b.constant(args.number("eps"));
    let momentum = (args.number("momentum") > 0.0).then(|| b.constant(args.number("momentum")));
    let centered = args.flag("centered");
    for (index, g) in b.gradients() {
        let velocity = b.param_state(index, "velocity", 0.0);
        let buffer = momentum.map(|_| b.param_state(index, "momentum", 0.0));
        let average = centered.then(|| b.param_state(index, "average_gradient", 0.0));
        let kept = b.mul(rho, velocity.value);
        let g2 = b.mul(g, g);
        let added = b.mul(one_minus_rho, g2);
        let velocity_new = b.add(kept, added);
        b.set_state(velocity, velocity_new);
        let denominator = match average {
            Some(average) => {
                let kept = b.mul(rho, average.value);
                let added = b.mul(one_minus_rho, g);
                let average_new = b.add(kept, added);
                b.set_state(average, average_new);
                let square = b.mul(average_new, average_new);
                let variance = b.sub(velocity_new, square);
                b.add(variance, eps)
            }
            None => b.add(velocity_new, eps),
        };
        let scaled = b.mul(lr, g);
        let root = b.sqrt(denominator);
        let increment = b.div(scaled, root);
        let p = b.param(index);
        let delta = match (momentum, buffer) {
            (Some(momentum), Some(buffer)) => {
                let kept = b.mul(momentum, buffer.value);
                let buffer_new = b.add(kept, increment);
                b.set_state(buffer, buffer_new);
                buffer_new
            }
            _ => increment,
        };
        let p_new = b.sub(p, delta);
        b.set_param(index, p_new);
    }
}

// ── adamw ───────────────────────────────────────────────────────────────────────────────────

/// Keras's AdamW: decoupled weight decay, `p −= p · weight_decay · lr` on every parameter
/// (kernels and biases, as Keras applies it by default; `ir::optimizer` applies it, as for every
/// optimizer's `weight_decay`), then Adam's update of the decayed parameter in Keras's form,
/// with `1 − β` computed as Keras does.
pub static ADAMW: OptimizerDef = OptimizerDef {
    name: "adamw",
    doc: "Adam with decoupled weight decay (Loshchilov and Hutter), in Keras's form",
    args: &[
        lr(0.001),
        number("weight_decay", ArgKind::NonNegative, 0.004, ">= 0"),
        BETA1,
        BETA2,
        EPS,
        CLIPNORM,
        CLIPVALUE,
        GLOBAL_CLIPNORM,
    ],
    resolve: no_resolve,
    non_negative: &["v"],
    update: adamw_update,
};

fn adamw_update(args: &Args, b: &mut dyn UpdateBuilder) {
    let BiasCorrection {
        bias1, root, lr, ..
    } = bias_correction(args, b);
    let scaled = b.mul(lr, root);
    let alpha = b.div(scaled, bias1);
    // Keras: `(g - m) * (1 - beta_1)` with `1 - beta_1` subtracted in double and cast.
    let one_minus_b1 = b.constant((1.0 - args.exact("beta1")) as f32);
    let one_minus_b2 = b.constant((1.0 - args.exact("beta2")) as f32);
    let eps = b.constant(args.number("eps"));
    for (index, g) in b.gradients() {
        let m = b.param_state(index, "m", 0.0);
        let v = b.param_state(index, "v", 0.0);
        // Decayed by `ir::optimizer` (Keras's `_apply_weight_decay`: p − p · wd · lr).
        let p = b.param(index);
        let m_new = moving_average(b, m.value, g, one_minus_b1);
        let g2 = b.mul(g, g);
        let v_new = moving_average(b, v.value, g2, one_minus_b2);
        let numerator = b.mul(m_new, alpha);
        let root_v = b.sqrt(v_new);
        let denominator = b.add(root_v, eps);
        let step = b.div(numerator, denominator);
        let p_new = b.sub(p, step);
        b.set_state(m, m_new);
        b.set_state(v, v_new);
        b.set_param(index, p_new);
    }
}

// ── adagrad ─────────────────────────────────────────────────────────────────────────────────

/// Keras's Adagrad: `accumulator += g²` (starting at `initial_accumulator_value`), then
/// `p −= lr · g / sqrt(accumulator + eps)`.
pub static ADAGRAD: OptimizerDef = OptimizerDef {
    name: "adagrad",
    doc: "Adagrad: steps scaled by the sum of all squared gradients so far",
    args: &[
        lr(0.001),
        number(
            "initial_accumulator_value",
            ArgKind::NonNegative,
            0.1,
            ">= 0: where every accumulator starts",
        ),
        EPS,
        WEIGHT_DECAY,
        CLIPNORM,
        CLIPVALUE,
        GLOBAL_CLIPNORM,
    ],
    resolve: no_resolve,
    non_negative: &["accumulator"],
    update: adagrad_update,
};

fn adagrad_update(args: &Args, b: &mut dyn UpdateBuilder) {
    let lr = b.lr();
    let eps = b.constant(args.number("eps"));
    let start = args.number("initial_accumulator_value");
    for (index, g) in b.gradients() {
        let accumulator = b.param_state(index, "accumulator", start);
        let g2 = b.mul(g, g);
        let sum = b.add(accumulator.value, g2);
        let scaled = b.mul(lr, g);
        let shifted = b.add(sum, eps);
        let root = b.sqrt(shifted);
        let step = b.div(scaled, root);
        let p = b.param(index);
        let p_new = b.sub(p, step);
        b.set_state(accumulator, sum);
        b.set_param(index, p_new);
    }
}

// ── nadam ───────────────────────────────────────────────────────────────────────────────────

/// Keras's Nadam (Adam with Nesterov momentum, Dozat's momentum schedule): with
/// `u_t = β1 · (1 − ½ · 0.96^t)` and `Π_t` the product of `u_1 … u_t` (a scalar state, kept as
/// Keras keeps `u_product`), `m` and `v` as Adam's,
/// `m̂ = u_{t+1} · m / (1 − Π_t · u_{t+1}) + (1 − u_t) · g / (1 − Π_t)`, `v̂ = v / (1 − β2^t)`,
/// `p −= lr · m̂ / (sqrt(v̂) + eps)`.
pub static NADAM: OptimizerDef = OptimizerDef {
    name: "nadam",
    doc: "Adam with Nesterov momentum, in Keras's form",
    args: &[
        lr(0.001),
        BETA1,
        BETA2,
        EPS,
        WEIGHT_DECAY,
        CLIPNORM,
        CLIPVALUE,
        GLOBAL_CLIPNORM,
    ],
    resolve: no_resolve,
    non_negative: &["v"],
    update: nadam_update,
};

fn nadam_update(args: &Args, b: &mut dyn UpdateBuilder) {
    let t = b.step();
    let one = b.constant(1.0);
    let half = b.constant(0.5);
    let decay = b.constant(0.96);
    let b1 = b.constant(args.number("beta1"));
    let b2 = b.constant(args.number("beta2"));
    // u_t = β1 · (1 − 0.5 · 0.96^t), and u_{t+1}.
    let momentum_at = |b: &mut dyn UpdateBuilder, step: Var| {
        let power = b.pow(decay, step);
        let halved = b.mul(half, power);
        let kept = b.sub(one, halved);
        b.mul(b1, kept)
    };
    let u_t = momentum_at(b, t);
    let next = b.add(t, one);
    let u_next = momentum_at(b, next);
    // Keras updates `u_product` once per step, before the variables: (Π · β1) · (1 − ½ 0.96^t).
    let product = b.scalar_state("u_product", 1.0);
    let power = b.pow(decay, t);
    let halved = b.mul(half, power);
    let kept = b.sub(one, halved);
    let scaled = b.mul(product.value, b1);
    let product_t = b.mul(scaled, kept);
    b.set_state(product, product_t);
    let product_next = b.mul(product_t, u_next);
    let b2_t = b.pow(b2, t);
    let bias2 = b.sub(one, b2_t);
    let m_bias = b.sub(one, product_next);
    let g_bias = b.sub(one, product_t);
    let g_weight = b.sub(one, u_t);
    let lr = b.lr();
    // Keras's Nadam casts β to f32 before `1 - beta_1` (unlike Adam and AdamW, which subtract
    // the Python floats).
    let one_minus_b1 = b.constant(1.0 - args.number("beta1"));
    let one_minus_b2 = b.constant(1.0 - args.number("beta2"));
    let eps = b.constant(args.number("eps"));
    for (index, g) in b.gradients() {
        let m = b.param_state(index, "m", 0.0);
        let v = b.param_state(index, "v", 0.0);
        let m_new = moving_average(b, m.value, g, one_minus_b1);
        let g2 = b.mul(g, g);
        let v_new = moving_average(b, v.value, g2, one_minus_b2);
        let m_term = b.mul(u_next, m_new);
        let m_term = b.div(m_term, m_bias);
        let g_term = b.mul(g_weight, g);
        let g_term = b.div(g_term, g_bias);
        let m_hat = b.add(m_term, g_term);
        let v_hat = b.div(v_new, bias2);
        let numerator = b.mul(m_hat, lr);
        let root = b.sqrt(v_hat);
        let denominator = b.add(root, eps);
        let step = b.div(numerator, denominator);
        let p = b.param(index);
        let p_new = b.sub(p, step);
        b.set_state(m, m_new);
        b.set_state(v, v_new);
        b.set_param(index, p_new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_canonical_forms() {
        let adam = Optimizer::new(&ADAM, &[]);
        assert_eq!(
            adam.to_string(),
            "adam(lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-7)"
        );
        let torch = Optimizer::new(&ADAM, &[("profile", ArgValue::Choice("torch"))]);
        assert_eq!(
            torch.to_string(),
            "adam(lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, profile: torch)"
        );
        assert_eq!(Optimizer::new(&SGD, &[]).to_string(), "sgd(lr: 0.01)");
        let momentum = Optimizer::new(&SGD, &[("momentum", ArgValue::Number(0.9))]);
        assert_eq!(
            momentum.to_string(),
            "sgd(lr: 0.01, momentum: 0.9, nesterov: false)"
        );
        assert_eq!(momentum.state_text(), "sgd: momentum");
        assert_eq!(adam.state_text(), "adam: m and v");
        assert_eq!(adam.state_count(10), 20);
        // The state is found by running the rule, whatever it depends on.
        let centered = Optimizer::new(
            &RMSPROP,
            &[
                ("momentum", ArgValue::Number(0.5)),
                ("centered", ArgValue::Bool(true)),
            ],
        );
        assert_eq!(
            centered.state_text(),
            "rmsprop: velocity, momentum and average_gradient"
        );
        assert_eq!(
            Optimizer::new(&RMSPROP, &[]).state_text(),
            "rmsprop: velocity"
        );
        let nadam = Optimizer::new(&NADAM, &[]);
        assert_eq!(nadam.state_text(), "nadam: m, v and u_product");
        assert_eq!(nadam.state_count(10), 21);
    }

    #[test]
    fn names_are_unique_and_every_optimizer_has_a_learning_rate() {
        let mut names = names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OPTIMIZERS.len());
        for def in OPTIMIZERS {
            assert_eq!(def.args[0].name, "lr", "{}", def.name);
            assert!(!def.doc.is_empty());
        }
    }
}
