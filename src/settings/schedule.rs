//! Keras's learning-rate schedules, each defined once: name, arguments with Keras's names and
//! defaults, the checks across them, the documented rate, its canonical text — and the rate
//! itself (`Schedule::rate`, which the runtime calls before every step).

use super::def::{self, Def, ParamKind, Problem, Value, optional, positional, required};

/// Keras's learning-rate schedules, evaluated at the optimizer's 0-based step count.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// `initial · rate^(step / decay_steps)` (`staircase`: the exponent rounded down).
    ExponentialDecay {
        initial: f64,
        decay_steps: u64,
        decay_rate: f64,
        staircase: bool,
    },
    /// `values[i]` while `step <= boundaries[i]`, `values[last]` after the last boundary.
    PiecewiseConstant {
        boundaries: Vec<u64>,
        values: Vec<f64>,
    },
    /// `initial · ((1 − alpha) · ½(1 + cos(π · min(step, decay_steps) / decay_steps)) + alpha)`.
    CosineDecay {
        initial: f64,
        decay_steps: u64,
        alpha: f64,
    },
}

pub type ScheduleDef = Def<Schedule>;

/// Every schedule, in the order the docs list them.
pub static SCHEDULES: &[&ScheduleDef] =
    &[&EXPONENTIAL_DECAY, &PIECEWISE_CONSTANT_DECAY, &COSINE_DECAY];

pub fn find(name: &str) -> Option<&'static ScheduleDef> {
    def::find(SCHEDULES, def::AliasOf::Schedule, name)
}

pub fn names() -> Vec<&'static str> {
    def::names(SCHEDULES)
}

impl Schedule {
    pub fn def(&self) -> &'static ScheduleDef {
        match self {
            Schedule::ExponentialDecay { .. } => &EXPONENTIAL_DECAY,
            Schedule::PiecewiseConstant { .. } => &PIECEWISE_CONSTANT_DECAY,
            Schedule::CosineDecay { .. } => &COSINE_DECAY,
        }
    }

    /// The canonical text: `cosine_decay(0.01, decay_steps: 100, alpha: 0.0)`.
    pub fn text(&self) -> String {
        self.def().text(self)
    }

    /// The learning rate for the update at 0-based `step` (Keras passes `optimizer.iterations`,
    /// the number of updates already made).
    pub fn rate(&self, step: u64) -> f64 {
        match self {
            Schedule::ExponentialDecay {
                initial,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut exponent = step as f64 / *decay_steps as f64;
                if *staircase {
                    exponent = exponent.floor();
                }
                initial * decay_rate.powf(exponent)
            }
            Schedule::PiecewiseConstant { boundaries, values } => {
                let index = boundaries
                    .iter()
                    .position(|&b| step <= b)
                    .unwrap_or(boundaries.len());
                values[index]
            }
            Schedule::CosineDecay {
                initial,
                decay_steps,
                alpha,
            } => {
                let progress = step.min(*decay_steps) as f64 / *decay_steps as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                initial * ((1.0 - alpha) * cosine + alpha)
            }
        }
    }
}

/// The schedules' table in docs/language.md (`tests/docs.rs`).
pub fn docs_table() -> String {
    def::table(
        &[
            "Schedule",
            "Rate at step `s`",
            "Arguments in positional order (Keras's names), with Keras's defaults",
        ],
        SCHEDULES,
        |d| {
            vec![
                d.name_doc(def::AliasOf::Schedule),
                d.doc.to_string(),
                d.params_doc(),
            ]
        },
    )
}

/// The initial rate, written first without its name.
const INITIAL: def::Param = positional("initial_learning_rate", ParamKind::Positive, "positive");

const DECAY_STEPS: def::Param = required(
    "decay_steps",
    ParamKind::PositiveInt,
    "a positive whole number",
);

pub static EXPONENTIAL_DECAY: ScheduleDef = Def {
    name: "exponential_decay",
    doc: "`initial · decay_rate^(s / decay_steps)`; with `staircase: true` the exponent is \
          rounded down",
    params: &[
        INITIAL,
        DECAY_STEPS,
        required("decay_rate", ParamKind::Positive, "positive"),
        optional("staircase", ParamKind::Bool, Value::Bool(false), ""),
    ],
    build: |v| {
        Ok(Schedule::ExponentialDecay {
            initial: v[0].number(),
            decay_steps: v[1].int(),
            decay_rate: v[2].number(),
            staircase: v[3].flag(),
        })
    },
    values: |s| match s {
        Schedule::ExponentialDecay {
            initial,
            decay_steps,
            decay_rate,
            staircase,
        } => vec![
            Value::F32(*initial as f32),
            Value::Int(*decay_steps),
            Value::F32(*decay_rate as f32),
            Value::Bool(*staircase),
        ],
        _ => unreachable!("exponential_decay's values of another schedule"),
    },
    facts: (),
};

pub static PIECEWISE_CONSTANT_DECAY: ScheduleDef = Def {
    name: "piecewise_constant_decay",
    doc: "`values[0]` while `s <= boundaries[0]`, `values[i]` while `s <= boundaries[i]`, the \
          last value after the last boundary (a step schedule)",
    params: &[
        positional("boundaries", ParamKind::Steps, "a list of increasing steps"),
        positional(
            "values",
            ParamKind::Rates,
            "a list of positive rates, one more than `boundaries`",
        ),
    ],
    build: |v| {
        let boundaries = v[0].ints().to_vec();
        let values: Vec<f64> = v[1].f32s().iter().map(|&x| f64::from(x)).collect();
        if values.len() != boundaries.len() + 1 {
            return Err(Problem {
                at: Some("values"),
                message: "`values` must hold one more rate than `boundaries`".into(),
                label: format!(
                    "{} values for {} boundaries",
                    values.len(),
                    boundaries.len()
                ),
                note: Some(
                    "values[0] applies up to boundaries[0], the last after the last boundary"
                        .into(),
                ),
            });
        }
        if boundaries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Problem {
                at: None,
                message: "`boundaries` must increase".into(),
                label: "steps out of order".into(),
                note: None,
            });
        }
        Ok(Schedule::PiecewiseConstant { boundaries, values })
    },
    values: |s| match s {
        Schedule::PiecewiseConstant { boundaries, values } => vec![
            Value::Ints(boundaries.clone()),
            Value::F32s(values.iter().map(|&v| v as f32).collect()),
        ],
        _ => unreachable!("piecewise_constant_decay's values of another schedule"),
    },
    facts: (),
};

pub static COSINE_DECAY: ScheduleDef = Def {
    name: "cosine_decay",
    doc: "`initial · ((1 − alpha) · ½(1 + cos(π · min(s, decay_steps) / decay_steps)) + alpha)`",
    params: &[
        INITIAL,
        DECAY_STEPS,
        optional("alpha", ParamKind::Fraction, Value::F32(0.0), "in [0, 1)"),
    ],
    build: |v| {
        Ok(Schedule::CosineDecay {
            initial: v[0].number(),
            decay_steps: v[1].int(),
            alpha: v[2].number(),
        })
    },
    values: |s| match s {
        Schedule::CosineDecay {
            initial,
            decay_steps,
            alpha,
        } => vec![
            Value::F32(*initial as f32),
            Value::Int(*decay_steps),
            Value::F32(*alpha as f32),
        ],
        _ => unreachable!("cosine_decay's values of another schedule"),
    },
    facts: (),
};
