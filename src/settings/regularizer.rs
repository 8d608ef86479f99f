//! Weight regularizers (Keras's `l1`, `l2`, `l1_l2`), each defined once: name, factors with
//! Keras's defaults, documentation line. A built-in layer's `kernel_regularizer` (and the like)
//! is checked against these definitions (`check::builtins`), the checked value rides on the
//! parameter (`ir::graph::ParamInfo`), and lowering adds its penalty to the loss as Keras adds
//! `model.losses` to the loss it reports (`ir::lower`).

use std::fmt;

use super::def::{self, AliasOf};

/// A checked regularizer: the penalty `l1 · Σ|w| + l2 · Σw²` of the weights it is on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularizer {
    pub def: &'static RegularizerDef,
    pub l1: f32,
    pub l2: f32,
}

pub struct RegularizerDef {
    pub name: &'static str,
    /// One line for the docs' table and `explain`.
    pub doc: &'static str,
    /// Its factors in positional order (`l1`, `l2`) with Keras's defaults.
    pub factors: &'static [(&'static str, f32)],
}

impl PartialEq for RegularizerDef {
    fn eq(&self, other: &RegularizerDef) -> bool {
        self.name == other.name
    }
}

impl fmt::Debug for RegularizerDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

/// Every regularizer, in the order the docs list them.
pub static REGULARIZERS: &[&RegularizerDef] = &[&L1, &L2, &L1_L2];

/// Keras's `L1(l1=0.01)`.
pub static L1: RegularizerDef = RegularizerDef {
    name: "l1",
    doc: "`l1 · Σ|w|` (Keras's `L1`)",
    factors: &[("l1", 0.01)],
};

/// Keras's `L2(l2=0.01)`.
pub static L2: RegularizerDef = RegularizerDef {
    name: "l2",
    doc: "`l2 · Σw²` (Keras's `L2`; no ½)",
    factors: &[("l2", 0.01)],
};

/// Keras's `l1_l2(l1=0.01, l2=0.01)`, the factors Keras gives the string `"l1_l2"`.
pub static L1_L2: RegularizerDef = RegularizerDef {
    name: "l1_l2",
    doc: "`l1 · Σ|w| + l2 · Σw²` (Keras's `L1L2`)",
    factors: &[("l1", 0.01), ("l2", 0.01)],
};

/// The regularizer called `name` (a name or an alias, `settings::def::ALIASES`).
pub fn find(name: &str) -> Option<&'static RegularizerDef> {
    let name = def::canonical(AliasOf::Regularizer, name);
    REGULARIZERS.iter().copied().find(|d| d.name == name)
}

pub fn names() -> Vec<&'static str> {
    REGULARIZERS.iter().map(|d| d.name).collect()
}

impl RegularizerDef {
    /// The regularizer with `given` factors (one per `factors`, `None` for the default).
    pub fn with(&'static self, given: &[Option<f32>]) -> Regularizer {
        let mut r = Regularizer {
            def: self,
            l1: 0.0,
            l2: 0.0,
        };
        for (i, &(name, default)) in self.factors.iter().enumerate() {
            let value = given.get(i).copied().flatten().unwrap_or(default);
            match name {
                "l1" => r.l1 = value,
                _ => r.l2 = value,
            }
        }
        r
    }

    /// `l1_l2(l1: 0.01, l2: 0.01)`: for the docs.
    pub fn doc_with_defaults(&self) -> String {
        let factors: Vec<String> = (self.factors.iter())
            .map(|(name, value)| format!("{name}: {value:?}"))
            .collect();
        format!("{}({})", self.name, factors.join(", "))
    }
}

impl fmt::Display for Regularizer {
    /// The canonical form: `l2(l2: 0.001)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let factors: Vec<String> = (self.def.factors.iter())
            .map(|&(name, _)| {
                let value = if name == "l1" { self.l1 } else { self.l2 };
                format!("{name}: {value:?}")
            })
            .collect();
        write!(f, "{}({})", self.def.name, factors.join(", "))
    }
}

/// The regularizers' table in docs/language.md (`tests/docs.rs`).
pub fn docs_table() -> String {
    let mut out = String::from(
        "| Regularizer | What it adds to the loss | Arguments in positional order, with Keras's defaults |\n\
         |---|---|---|\n",
    );
    for d in REGULARIZERS {
        let factors: Vec<String> = (d.factors.iter())
            .map(|(name, value)| format!("`{name}: {value:?}`"))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            def::name_doc(AliasOf::Regularizer, d.name),
            d.doc,
            factors.join(", ")
        ));
    }
    out
}
