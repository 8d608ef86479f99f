//! Losses, each defined once: name, arguments with Keras's defaults, what labels and output it
//! reads, its canonical text, and its arithmetic — written against a `LossBuilder`, which
//! `ir::lower` implements over the graph (as optimizers' updates are written against an
//! `UpdateBuilder`), so this module imports nothing from `ir`.

use super::Activation;
use super::arithmetic::{Arithmetic, Var};
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

/// What a loss reads, and its arithmetic.
pub struct LossFacts {
    pub labels: Labels,
    /// Builds the mean loss over the batch and the per-sample scores whose argmax is the
    /// predicted class (the output itself for a regression loss).
    pub lower: fn(LossOptions, &mut dyn LossBuilder) -> Lowered,
    /// For the docs' table.
    pub labels_doc: &'static str,
    pub output_doc: &'static str,
}

/// A loss's two results (IR values, to `ir::lower`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lowered {
    pub loss: Var,
    pub scores: Var,
}

/// The arithmetic a loss is written in. Values are created in the order the rule asks for them
/// (the order is part of the IR text, `kiln dump --stage ir`).
/// A loss's inputs and the structured ops it needs, beside the shared arithmetic.
pub trait LossBuilder: Arithmetic {
    /// The logits: the input of the model's final softmax or sigmoid, or its output when it has
    /// none or the fit says `from_logits`.
    fn logits(&mut self) -> Var;
    /// The model's output as it is.
    fn output(&mut self) -> Var;
    /// The width of the output's last axis (the classes of a classifier).
    fn width(&self) -> usize;
    /// The batch size as a number.
    fn batch(&mut self) -> Var;
    /// The integer class labels `i32[B]`.
    fn class_labels(&mut self) -> Var;
    /// The real-valued targets `f32[B, width]`.
    fn targets(&mut self) -> Var;
    /// `f32[B, classes]`: 1 at each label's class.
    fn one_hot(&mut self, labels: Var, classes: usize) -> Var;
    fn log_softmax(&mut self, x: Var) -> Var;
    fn softplus(&mut self, x: Var) -> Var;
    /// The sum of every element, a scalar.
    fn sum_all(&mut self, x: Var) -> Var;
    /// Entries `start..end` of `axis`.
    fn slice(&mut self, x: Var, axis: usize, start: usize, end: usize) -> Var;
    fn concat(&mut self, parts: &[Var], axis: usize) -> Var;
    /// Per-sample terms `x` (`[B, k]`) times each sample's weight (its class's `class_weight`),
    /// as Keras weighs a loss before its sum over the batch; `x` itself when the fit weighs none.
    fn weigh(&mut self, x: Var) -> Var;
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
    def::find(LOSSES, def::AliasOf::Loss, name)
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
                d.name_doc(def::AliasOf::Loss),
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
        lower: categorical,
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

/// The facts of a regression loss whose per-element error is `lower`'s.
const fn targets(lower: fn(LossOptions, &mut dyn LossBuilder) -> Lowered) -> LossFacts {
    LossFacts {
        lower,
        labels: Labels::Targets,
        labels_doc: "real-valued targets",
        output_doc: "the targets' shape",
    }
}

/// Cross-entropy of the label's class: `−Σ one_hot · log_softmax(logits) / B`, computed from the
/// logits in the stable form, as Keras does.
fn categorical(_: LossOptions, b: &mut dyn LossBuilder) -> Lowered {
    let batch = b.batch();
    let logits = b.logits();
    let labels = b.class_labels();
    let log_probs = b.log_softmax(logits);
    let classes = b.width();
    let one_hot = b.one_hot(labels, classes);
    let picked = b.mul(one_hot, log_probs);
    let picked = b.weigh(picked);
    let total = b.sum_all(picked);
    let negated = b.neg(total);
    let loss = b.div(negated, batch);
    Lowered {
        loss,
        scores: logits,
    }
}

/// Binary cross-entropy of one logit per sample.
fn binary(_: LossOptions, b: &mut dyn LossBuilder) -> Lowered {
    let batch = b.batch();
    let logits = b.logits();
    // y ∈ {0, 1} as f32[B, 1]: column 1 of the label's one-hot row.
    let labels = b.class_labels();
    let one_hot = b.one_hot(labels, 2);
    let y = b.slice(one_hot, 1, 1, 2);
    // -[y log σ(l) + (1-y) log(1-σ(l))] = softplus(l) - y·l, stable for any l.
    let soft = b.softplus(logits);
    let yl = b.mul(y, logits);
    let per_sample = b.sub(soft, yl);
    let per_sample = b.weigh(per_sample);
    let total = b.sum_all(per_sample);
    let loss = b.div(total, batch);
    // Scores [0, l]: the argmax is class 1 exactly when σ(l) > 0.5, so class metrics
    // (accuracy and the rest) read a binary output like a two-class one.
    let zero = b.constant(0.0);
    let zeros = b.mul(logits, zero);
    let scores = b.concat(&[zeros, logits], 1);
    Lowered { loss, scores }
}

/// The mean over samples and outputs of `per_element(output − targets)`.
fn regression(
    options: LossOptions,
    b: &mut dyn LossBuilder,
    per_element: fn(LossOptions, &mut dyn LossBuilder, Var) -> Var,
) -> Lowered {
    let batch = b.batch();
    let output = b.output();
    let targets = b.targets();
    let error = b.sub(output, targets);
    let per_element = per_element(options, b, error);
    let per_element = b.weigh(per_element);
    let total = b.sum_all(per_element);
    let per_sample = b.div(total, batch);
    let width = b.width() as f32;
    let width = b.constant(width);
    let loss = b.div(per_sample, width);
    Lowered {
        loss,
        scores: output,
    }
}

pub static SPARSE_CATEGORICAL_CROSSENTROPY: LossDef = Def {
    name: "sparse_categorical_crossentropy",
    doc: "cross-entropy of the label's probability (Keras's `SparseCategoricalCrossentropy`)",
    params: &[FROM_LOGITS],
    build: |v| class_loss(Loss::SparseCategoricalCrossentropy, v),
    values: logits_value,
    facts: classes(true),
};

pub static CATEGORICAL_CROSSENTROPY: LossDef = Def {
    name: "categorical_crossentropy",
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
    doc: "cross-entropy of one probability per sample",
    params: &[FROM_LOGITS],
    build: |v| class_loss(Loss::BinaryCrossentropy, v),
    values: logits_value,
    facts: LossFacts {
        lower: binary,
        labels_doc: "classes 0 and 1",
        output_doc: "`f32[B, 1]`, ending in `sigmoid`",
        ..classes(false)
    },
};

pub static MEAN_SQUARED_ERROR: LossDef = Def {
    name: "mean_squared_error",
    doc: "the mean of the squared errors over samples and outputs",
    params: &[],
    build: |_| Ok((Loss::MeanSquaredError, LossOptions::default())),
    values: |_| vec![],
    facts: targets(|o, b| regression(o, b, |_, b, e| b.mul(e, e))),
};

pub static MEAN_ABSOLUTE_ERROR: LossDef = Def {
    name: "mean_absolute_error",
    doc: "the mean of the absolute errors over samples and outputs",
    params: &[],
    build: |_| Ok((Loss::MeanAbsoluteError, LossOptions::default())),
    values: |_| vec![],
    facts: targets(|o, b| regression(o, b, |_, b, e| b.abs(e))),
};

pub static HUBER: LossDef = Def {
    name: "huber",
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
    facts: targets(|o, b| regression(o, b, huber)),
};

/// Keras's Huber: `½·min(|e|, δ)² + δ·(|e| − min(|e|, δ))`.
fn huber(options: LossOptions, b: &mut dyn LossBuilder, error: Var) -> Var {
    let delta = b.constant(options.delta);
    let half = b.constant(0.5);
    let abs = b.abs(error);
    let quadratic = b.min(abs, delta);
    let linear = b.sub(abs, quadratic);
    let squared = b.mul(quadratic, quadratic);
    let inner = b.mul(half, squared);
    let outer = b.mul(delta, linear);
    b.add(inner, outer)
}
