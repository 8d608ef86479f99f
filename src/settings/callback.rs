//! Keras's callbacks, each defined once: name, arguments with Keras's defaults and checks, what
//! it does (for the docs), and its canonical text. What each decides after an epoch is the
//! runtime's (`runtime/callbacks.rs`, one arm per callback): it keeps counters across epochs
//! and acts on the epoch loop, which this module cannot see.

use super::def::{self, Def, ParamKind, Value, optional, positional};
use super::metric::METRICS;
use std::borrow::Cow;

/// The quantity a callback watches: `loss`, a metric, or their `val_` forms.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    /// As written, e.g. `val_loss`, `accuracy`.
    pub name: String,
    /// Whether larger is better (Keras's `mode: "auto"`: accuracy, precision and recall grow).
    pub maximize: bool,
}

impl Monitor {
    /// A monitor with Keras's `mode: "auto"`: the metrics that grow as they improve
    /// (accuracy, precision, recall) are maximised, everything else (losses, errors) minimised.
    pub fn named(name: &str) -> Monitor {
        let maximize = METRICS
            .iter()
            .any(|m| m.facts.maximize && name.ends_with(m.name));
        Monitor {
            name: name.to_string(),
            maximize,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Callback {
    /// Keras's `EarlyStopping`. Defaults: monitor val_loss, min_delta 0, patience 0,
    /// restore_best_weights false.
    EarlyStopping {
        monitor: Monitor,
        min_delta: f64,
        patience: usize,
        restore_best_weights: bool,
    },
    /// Keras's `ModelCheckpoint` (weights and optimizer state). Defaults: monitor val_loss,
    /// save_best_only false.
    Checkpoint {
        path: String,
        monitor: Monitor,
        save_best_only: bool,
    },
    /// Keras's `ReduceLROnPlateau`. Defaults: monitor val_loss, factor 0.1, patience 10,
    /// min_delta 1e-4, min_lr 0 (cooldown 0).
    ReduceLrOnPlateau {
        monitor: Monitor,
        factor: f64,
        patience: usize,
        min_delta: f64,
        min_lr: f64,
    },
}

pub type CallbackDef = Def<Callback, CallbackFacts>;

pub struct CallbackFacts {
    /// It sets the learning rate between epochs (so it cannot be combined with a schedule).
    pub sets_lr: bool,
}

/// Every callback, in the order the docs list them.
pub static CALLBACKS: &[&CallbackDef] = &[&EARLY_STOPPING, &CHECKPOINT, &REDUCE_LR_ON_PLATEAU];

pub fn find(name: &str) -> Option<&'static CallbackDef> {
    def::find(CALLBACKS, def::AliasOf::Callback, name)
}

pub fn names() -> Vec<&'static str> {
    def::names(CALLBACKS)
}

impl Callback {
    pub fn def(&self) -> &'static CallbackDef {
        match self {
            Callback::EarlyStopping { .. } => &EARLY_STOPPING,
            Callback::Checkpoint { .. } => &CHECKPOINT,
            Callback::ReduceLrOnPlateau { .. } => &REDUCE_LR_ON_PLATEAU,
        }
    }

    /// Every argument, defaults included, so the resolved settings can be read off.
    pub fn text(&self) -> String {
        self.def().text(self)
    }

    pub fn monitor(&self) -> &Monitor {
        match self {
            Callback::EarlyStopping { monitor, .. }
            | Callback::Checkpoint { monitor, .. }
            | Callback::ReduceLrOnPlateau { monitor, .. } => monitor,
        }
    }
}

/// The callbacks' table in docs/language.md (`tests/docs.rs`).
pub fn docs_table() -> String {
    def::table(
        &[
            "Callback",
            "What it does",
            "Arguments in positional order, with Keras's defaults",
        ],
        CALLBACKS,
        |d| {
            vec![
                d.name_doc(def::AliasOf::Callback),
                d.doc.to_string(),
                d.params_doc(),
            ]
        },
    )
}

const MONITOR: def::Param = optional(
    "monitor",
    ParamKind::Monitor,
    Value::Str(Cow::Borrowed("val_loss")),
    "`loss`, a metric, or either with `val_`",
);

const fn min_delta(default: f64) -> def::Param {
    optional(
        "min_delta",
        ParamKind::NonNegative,
        Value::F64(default),
        ">= 0",
    )
}

const fn patience(default: u64) -> def::Param {
    optional(
        "patience",
        ParamKind::Count,
        Value::Int(default),
        "epochs without improvement",
    )
}

fn monitor(value: &Value) -> Monitor {
    Monitor::named(value.text())
}

fn monitor_value(monitor: &Monitor) -> Value {
    Value::Str(Cow::Owned(monitor.name.clone()))
}

pub static EARLY_STOPPING: CallbackDef = Def {
    name: "early_stopping",
    doc: "Stops training after the epoch at which `monitor` has not improved by more than \
          `min_delta` for `patience` epochs in a row (never after the first epoch). With \
          `restore_best_weights: true` the weights of the best epoch are restored when training \
          ends, stopped early or not (Keras 3). Prints `Epoch N: early stopping`.",
    params: &[
        MONITOR,
        min_delta(0.0),
        patience(0),
        optional(
            "restore_best_weights",
            ParamKind::Bool,
            Value::Bool(false),
            "",
        ),
    ],
    build: |v| {
        Ok(Callback::EarlyStopping {
            monitor: monitor(&v[0]),
            min_delta: v[1].number(),
            patience: v[2].count(),
            restore_best_weights: v[3].flag(),
        })
    },
    values: |c| match c {
        Callback::EarlyStopping {
            monitor,
            min_delta,
            patience,
            restore_best_weights,
        } => vec![
            monitor_value(monitor),
            Value::F64(*min_delta),
            Value::Int(*patience as u64),
            Value::Bool(*restore_best_weights),
        ],
        _ => unreachable!("early_stopping's values of another callback"),
    },
    facts: CallbackFacts { sets_lr: false },
};

pub static CHECKPOINT: CallbackDef = Def {
    name: "checkpoint",
    doc: "Writes a checkpoint (weights and optimizer state, below) after every epoch, or with \
          `save_best_only: true` only when `monitor` improves on its best so far. Relative paths \
          start at the program's folder.",
    params: &[
        positional("path", ParamKind::CheckpointPath, "a `.safetensors` file"),
        MONITOR,
        optional("save_best_only", ParamKind::Bool, Value::Bool(false), ""),
    ],
    build: |v| {
        Ok(Callback::Checkpoint {
            path: v[0].text().to_string(),
            monitor: monitor(&v[1]),
            save_best_only: v[2].flag(),
        })
    },
    values: |c| match c {
        Callback::Checkpoint {
            path,
            monitor,
            save_best_only,
        } => vec![
            Value::Str(Cow::Owned(path.clone())),
            monitor_value(monitor),
            Value::Bool(*save_best_only),
        ],
        _ => unreachable!("checkpoint's values of another callback"),
    },
    facts: CallbackFacts { sets_lr: false },
};

pub static REDUCE_LR_ON_PLATEAU: CallbackDef = Def {
    name: "reduce_lr_on_plateau",
    doc: "When `monitor` has not improved by more than `min_delta` for `patience` epochs, \
          multiplies the learning rate by `factor`, not below `min_lr` (Keras's `cooldown` is \
          0). Cannot be combined with a schedule (E0314).",
    params: &[
        MONITOR,
        optional("factor", ParamKind::Factor, Value::F64(0.1), "in (0, 1)"),
        patience(10),
        min_delta(1e-4),
        optional("min_lr", ParamKind::NonNegative, Value::F64(0.0), ">= 0"),
    ],
    build: |v| {
        Ok(Callback::ReduceLrOnPlateau {
            monitor: monitor(&v[0]),
            factor: v[1].number(),
            patience: v[2].count(),
            min_delta: v[3].number(),
            min_lr: v[4].number(),
        })
    },
    values: |c| match c {
        Callback::ReduceLrOnPlateau {
            monitor,
            factor,
            patience,
            min_delta,
            min_lr,
        } => vec![
            monitor_value(monitor),
            Value::F64(*factor),
            Value::Int(*patience as u64),
            Value::F64(*min_delta),
            Value::F64(*min_lr),
        ],
        _ => unreachable!("reduce_lr_on_plateau's values of another callback"),
    },
    facts: CallbackFacts { sets_lr: true },
};
