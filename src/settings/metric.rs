//! Metrics, each defined once: name, arguments with Keras's defaults, what labels it needs,
//! which way it improves, and its documentation line. Accumulating one over a data set is the
//! runtime's (`runtime/metrics.rs`, one arm per metric): it shares counts between metrics
//! (accuracy and precision read the same argmax), which a per-metric function would not.

use super::def::{self, Def, ParamKind, Text, Value};
use super::loss::{Labels, Loss};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// `accuracy` with integer labels: argmax of the output equals the label.
    SparseCategoricalAccuracy,
    /// `top_k_accuracy(k)`: the label is among the `k` highest outputs (Keras's
    /// `SparseTopKCategoricalAccuracy`, default k 5).
    TopKAccuracy { k: usize },
    /// `precision`: with `binary` (binary cross-entropy), correct predictions of class 1 over
    /// all predictions of it (Keras's `Precision()`, threshold 0.5); else per class, averaged
    /// over the classes that occur in the labels or the predictions (macro average).
    Precision { binary: bool },
    /// `recall`: with `binary`, correct predictions of class 1 over all samples of it (Keras's
    /// `Recall()`); else per class, macro-averaged like `precision`.
    Recall { binary: bool },
    /// `auc`: Keras's `AUC()`: the area under the ROC curve from the counts at
    /// `num_thresholds` thresholds evenly spaced over [0, 1], by the trapezoidal rule
    /// (`summation_method="interpolation"`); a softmax classifier's probabilities count as one
    /// binary prediction per sample and class (Keras's `multi_label=False` on one-hot labels).
    Auc { thresholds: usize, binary: bool },
    /// `f1_score`: the harmonic mean of precision and recall: with `binary`, of class 1 (Keras's
    /// `F1Score(threshold=0.5)` on one sigmoid output); else the macro average over classes
    /// (`F1Score(average="macro")`). The history also records each class's.
    F1Score { binary: bool },
    /// `mae`: mean absolute error over samples and outputs (regression).
    MeanAbsoluteError,
    /// `mse`: mean squared error over samples and outputs (regression).
    MeanSquaredError,
}

pub type MetricDef = Def<Metric, MetricFacts>;

pub struct MetricFacts {
    /// It compares predicted classes with class labels (else real outputs with targets).
    pub needs_classes: bool,
    /// Larger is better (Keras's `mode: "auto"` for a callback monitoring it).
    pub maximize: bool,
}

/// Every metric, in the order the docs list them.
pub static METRICS: &[&MetricDef] = &[
    &ACCURACY,
    &TOP_K_ACCURACY,
    &PRECISION,
    &RECALL,
    &F1_SCORE,
    &AUC,
    &MAE,
    &MSE,
];

pub fn find(name: &str) -> Option<&'static MetricDef> {
    def::find(METRICS, def::AliasOf::Metric, name)
}

pub fn names() -> Vec<&'static str> {
    def::names(METRICS)
}

impl Metric {
    pub fn def(self) -> &'static MetricDef {
        match self {
            Metric::SparseCategoricalAccuracy => &ACCURACY,
            Metric::TopKAccuracy { .. } => &TOP_K_ACCURACY,
            Metric::Precision { .. } => &PRECISION,
            Metric::Recall { .. } => &RECALL,
            Metric::F1Score { .. } => &F1_SCORE,
            Metric::Auc { .. } => &AUC,
            Metric::MeanAbsoluteError => &MAE,
            Metric::MeanSquaredError => &MSE,
        }
    }

    /// The metric as it reads the labels `loss` trains on: Keras resolves a binary classifier's
    /// `precision` and `recall` to class 1, as it resolves `accuracy` by the loss.
    pub fn for_loss(self, loss: Loss) -> Metric {
        let binary = matches!(
            loss.def().facts.labels,
            Labels::Classes {
                per_class: false,
                ..
            }
        );
        match self {
            Metric::Precision { .. } => Metric::Precision { binary },
            Metric::Recall { .. } => Metric::Recall { binary },
            Metric::F1Score { .. } => Metric::F1Score { binary },
            Metric::Auc { thresholds, .. } => Metric::Auc { thresholds, binary },
            other => other,
        }
    }

    /// Whether the metric compares predicted classes with class labels.
    pub fn needs_classes(self) -> bool {
        self.def().facts.needs_classes
    }

    /// The name shown in training output (Keras shows `accuracy`).
    pub fn display_name(self) -> &'static str {
        self.def().name
    }
}

/// The metrics' table in docs/language.md (`tests/docs.rs`).
pub fn docs_table() -> String {
    def::table(
        &[
            "Metric",
            "Losses",
            "Value",
            "Arguments, with Keras's defaults",
        ],
        METRICS,
        |d| {
            let losses = if d.facts.needs_classes {
                "class losses"
            } else {
                "regression losses"
            };
            vec![
                d.name_doc(def::AliasOf::Metric),
                losses.to_string(),
                d.doc.to_string(),
                d.params_doc(),
            ]
        },
    )
}

const CLASSES: MetricFacts = MetricFacts {
    needs_classes: true,
    maximize: true,
};

const REGRESSION: MetricFacts = MetricFacts {
    needs_classes: false,
    maximize: false,
};

pub static ACCURACY: MetricDef = Def {
    name: "accuracy",
    doc: "the fraction of samples whose highest output (the first, on ties) is the label, or for \
          binary cross-entropy whose probability is on the label's side of 0.5: Keras resolves \
          `accuracy` to the sparse categorical or binary variant by the loss, and so does Kiln",
    params: &[],
    build: |_| Ok(Metric::SparseCategoricalAccuracy),
    values: |_| vec![],
    facts: CLASSES,
};

pub static TOP_K_ACCURACY: MetricDef = Def {
    name: "top_k_accuracy",
    doc: "the fraction whose label is among the `k` highest outputs (fewer than `k` outputs \
          above the label's, so ties count for the label, as Keras's `in_top_k`; Keras's \
          `SparseTopKCategoricalAccuracy`)",
    // Reports and the history name the metric without its `k`.
    params: &[def::Param {
        name: "k",
        kind: ParamKind::PositiveInt,
        default: Some(Value::Int(5)),
        doc: "a positive whole number",
        text: Text::Hidden,
    }],
    build: |v| Ok(Metric::TopKAccuracy { k: v[0].count() }),
    values: |m| match m {
        Metric::TopKAccuracy { k } => vec![Value::Int(*k as u64)],
        _ => unreachable!("top_k_accuracy's values of another metric"),
    },
    facts: CLASSES,
};

pub static PRECISION: MetricDef = Def {
    name: "precision",
    doc: "for `binary_crossentropy`, (correct predictions of class 1) / (predictions of class \
          1), a probability above 0.5 predicting class 1 (Keras's `Precision()`); for the other \
          class losses, the macro average over classes of (correct predictions of the class) / \
          (predictions of the class)",
    params: &[],
    build: |_| Ok(Metric::Precision { binary: false }),
    values: |_| vec![],
    facts: CLASSES,
};

pub static RECALL: MetricDef = Def {
    name: "recall",
    doc: "for `binary_crossentropy`, (correct predictions of class 1) / (samples of class 1) \
          (Keras's `Recall()`); for the other class losses, the macro average over classes of \
          (correct predictions of the class) / (samples of the class)",
    params: &[],
    build: |_| Ok(Metric::Recall { binary: false }),
    values: |_| vec![],
    facts: CLASSES,
};

pub static F1_SCORE: MetricDef = Def {
    name: "f1_score",
    doc: "the harmonic mean of precision and recall, `2·P·R / (P + R)`: for \
          `binary_crossentropy` of class 1 at threshold 0.5 (Keras's `F1Score(threshold=0.5)`), \
          for the other class losses the macro average of each class's (Keras's \
          `F1Score(average=\"macro\")`); `--history` records each class's too \
          (`f1_score_class_0`, …, Keras's `average=None`)",
    params: &[],
    build: |_| Ok(Metric::F1Score { binary: false }),
    values: |_| vec![],
    facts: CLASSES,
};

pub static AUC: MetricDef = Def {
    name: "auc",
    doc: "the area under the ROC curve (Keras's `AUC()`): true and false positive rates at \
          `num_thresholds` thresholds over [0, 1] (the first just below 0, the last just above \
          1), summed by the trapezoidal rule; a sigmoid output's probability, or each class's \
          softmax probability against a one-hot label",
    // Reports and the history name the metric without its thresholds.
    params: &[def::Param {
        name: "num_thresholds",
        kind: ParamKind::PositiveInt,
        default: Some(Value::Int(200)),
        doc: "a whole number above 1",
        text: Text::Hidden,
    }],
    build: |v| {
        let thresholds = v[0].count();
        if thresholds < 2 {
            return Err(def::Problem {
                at: Some("num_thresholds"),
                message: "`auc` needs at least 2 thresholds".into(),
                label: format!("{thresholds} threshold"),
                note: Some("Keras's AUC requires num_thresholds > 1; its default is 200".into()),
            });
        }
        Ok(Metric::Auc {
            thresholds,
            binary: false,
        })
    },
    values: |m| match m {
        Metric::Auc { thresholds, .. } => vec![Value::Int(*thresholds as u64)],
        _ => unreachable!("auc's values of another metric"),
    },
    facts: CLASSES,
};

pub static MAE: MetricDef = Def {
    name: "mae",
    doc: "mean absolute error over samples and outputs",
    params: &[],
    build: |_| Ok(Metric::MeanAbsoluteError),
    values: |_| vec![],
    facts: REGRESSION,
};

pub static MSE: MetricDef = Def {
    name: "mse",
    doc: "mean squared error over samples and outputs (equal to the loss)",
    params: &[],
    build: |_| Ok(Metric::MeanSquaredError),
    values: |_| vec![],
    facts: REGRESSION,
};
