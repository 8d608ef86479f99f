//! Losses, each defined once: name, arguments with Keras's defaults, what labels and output it
//! reads, and its canonical text. Its arithmetic is IR, so it lives in `ir/lower.rs` (one arm
//! per loss), which this module cannot import.

use super::Activation;
use super::def::{self, Def, ParamKind, Text, Value, optional};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Labels are integer class indices `i32[B]`; the model outputs `f32[B, classes]`.
    SparseCategoricalCrossentropy,
    /// The same with the labels one-hot encoded (Keras takes one-hot targets; Kiln's data sets
    /// hold class indices, which lowering one-hot encodes).
    CategoricalCrossentropy,
    /// Labels 0 or 1; the model outputs `f32[B, 1]` (a sigmoid, or logits).
    BinaryCrossentropy,
    /// Targets are `f32[B, M]`, the same shape as the model's output.
    MeanSquaredError,
    MeanAbsoluteError,
    /// Quadratic within `delta` of the target, linear beyond (Keras's `Huber`).
    Huber,
}

/// A loss's arguments, Keras's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossOptions {
    /// The model's output is logits, not probabilities. Default false (Keras).
    pub from_logits: bool,
    /// Huber's threshold. Default 1.0 (Keras).
    pub delta: f32,
}

impl Default for LossOptions {
    fn default() -> LossOptions {
        LossOptions {
            from_logits: false,
            delta: 1.0,
        }
    }
}

/// A checked `loss` setting.
pub type LossCall = (Loss, LossOptions);

pub type LossDef = Def<LossCall, LossFacts>;

/// What a loss reads.
pub struct LossFacts {
    pub labels: Labels,
    /// For the docs' table.
    pub labels_doc: &'static str,
    pub output_doc: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labels {
    /// Integer class labels, scored from probabilities that `activation` gives (or from
    /// logits); `per_class`: one output per class, else one output for two classes.
    Classes {
        activation: Activation,
        per_class: bool,
    },
    /// Real-valued targets shaped like the output.
    Targets,
}

/// Every loss, in the order the docs list them.
pub static LOSSES: &[&LossDef] = &[
    &SPARSE_CATEGORICAL_CROSSENTROPY,
    &CATEGORICAL_CROSSENTROPY,
    &BINARY_CROSSENTROPY,
    &MEAN_SQUARED_ERROR,
    &MEAN_ABSOLUTE_ERROR,
    &HUBER,
];

/// The loss `name` calls (a name or an alias).
pub fn find(name: &str) -> Option<&'static LossDef> {
    def::find(LOSSES, name)
}

pub fn names() -> Vec<&'static str> {
    def::names(LOSSES)
}

impl Loss {
    pub fn def(self) -> &'static LossDef {
        match self {
            Loss::SparseCategoricalCrossentropy => &SPARSE_CATEGORICAL_CROSSENTROPY,
            Loss::CategoricalCrossentropy => &CATEGORICAL_CROSSENTROPY,
            Loss::BinaryCrossentropy => &BINARY_CROSSENTROPY,
            Loss::MeanSquaredError => &MEAN_SQUARED_ERROR,
            Loss::MeanAbsoluteError => &MEAN_ABSOLUTE_ERROR,
            Loss::Huber => &HUBER,
        }
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Whether the loss trains on integer class labels (else on real-valued targets).
    pub fn uses_classes(self) -> bool {
        matches!(self.def().facts.labels, Labels::Classes { .. })
    }

    /// How many classes the labels may name for a model with `outputs` output units.
    pub fn classes(self, outputs: usize) -> usize {
        match self.def().facts.labels {
            Labels::Classes {
                per_class: false, ..
            } => 2,
            _ => outputs,
        }
    }

    /// The canonical text: `huber(delta: 1.0)`, `binary_crossentropy(from_logits: true)`.
    pub fn text(self, options: LossOptions) -> String {
        self.def().text(&(self, options))
    }
}

/// The losses' table in docs/language.md (`tests/docs.rs`).
pub fn docs_table() -> String {
    def::table(
        &[
            "Loss",
            "What it is",
            "Labels",
            "Model output",
            "Arguments, with Keras's defaults",
        ],
        LOSSES,
        |d| {
            vec![
                d.name_doc(),
                d.doc.to_string(),
                d.facts.labels_doc.to_string(),
                d.facts.output_doc.to_string(),
                d.params_doc(),
            ]
        },
    )
}

const FROM_LOGITS: def::Param = def::Param {
    name: "from_logits",
    kind: ParamKind::Bool,
    default: Some(Value::Bool(false)),
    doc: "the output is logits, not probabilities",
    text: Text::Changed,
};

/// A class loss reads `from_logits`.
fn class_loss(loss: Loss, values: &[Value]) -> Result<LossCall, def::Problem> {
    let options = LossOptions {
        from_logits: values[0].flag(),
        ..LossOptions::default()
    };
    Ok((loss, options))
}

fn logits_value(&(_, options): &LossCall) -> Vec<Value> {
    vec![Value::Bool(options.from_logits)]
}

const fn classes(softmax: bool) -> LossFacts {
    LossFacts {
        labels: Labels::Classes {
            activation: if softmax {
                Activation::Softmax
            } else {
                Activation::Sigmoid
            },
            per_class: softmax,
        },
        labels_doc: "integer classes",
        output_doc: "`f32[B, classes]`, ending in `softmax`",
    }
}

const TARGETS: LossFacts = LossFacts {
    labels: Labels::Targets,
    labels_doc: "real-valued targets",
    output_doc: "the targets' shape",
};

pub static SPARSE_CATEGORICAL_CROSSENTROPY: LossDef = Def {
    name: "sparse_categorical_crossentropy",
    aliases: &[],
    doc: "cross-entropy of the label's probability (Keras's `SparseCategoricalCrossentropy`)",
    params: &[FROM_LOGITS],
    build: |v| class_loss(Loss::SparseCategoricalCrossentropy, v),
    values: logits_value,
    facts: classes(true),
};

pub static CATEGORICAL_CROSSENTROPY: LossDef = Def {
    name: "categorical_crossentropy",
    aliases: &[],
    doc: "the same, with the labels one-hot encoded for the loss",
    params: &[FROM_LOGITS],
    build: |v| class_loss(Loss::CategoricalCrossentropy, v),
    values: logits_value,
    facts: LossFacts {
        labels_doc: "integer classes (one-hot encoded for the loss)",
        ..classes(true)
    },
};

pub static BINARY_CROSSENTROPY: LossDef = Def {
    name: "binary_crossentropy",
    aliases: &[],
    doc: "cross-entropy of one probability per sample",
    params: &[FROM_LOGITS],
    build: |v| class_loss(Loss::BinaryCrossentropy, v),
    values: logits_value,
    facts: LossFacts {
        labels_doc: "classes 0 and 1",
        output_doc: "`f32[B, 1]`, ending in `sigmoid`",
        ..classes(false)
    },
};

pub static MEAN_SQUARED_ERROR: LossDef = Def {
    name: "mean_squared_error",
    aliases: &["mse"],
    doc: "the mean of the squared errors over samples and outputs",
    params: &[],
    build: |_| Ok((Loss::MeanSquaredError, LossOptions::default())),
    values: |_| vec![],
    facts: TARGETS,
};

pub static MEAN_ABSOLUTE_ERROR: LossDef = Def {
    name: "mean_absolute_error",
    aliases: &["mae"],
    doc: "the mean of the absolute errors over samples and outputs",
    params: &[],
    build: |_| Ok((Loss::MeanAbsoluteError, LossOptions::default())),
    values: |_| vec![],
    facts: TARGETS,
};

pub static HUBER: LossDef = Def {
    name: "huber",
    aliases: &[],
    doc: "quadratic within `delta` of the target, linear beyond (Keras's `Huber`)",
    params: &[optional(
        "delta",
        ParamKind::Positive,
        Value::F32(1.0),
        "positive",
    )],
    build: |v| {
        let options = LossOptions {
            delta: v[0].f32(),
            ..LossOptions::default()
        };
        Ok((Loss::Huber, options))
    },
    values: |&(_, options)| vec![Value::F32(options.delta)],
    facts: TARGETS,
};
