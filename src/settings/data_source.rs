//! Data sources, each described once: its name, its arguments in positional order with their
//! defaults, and its documentation. The checker binds a `data` declaration's call against these
//! parameters (and names a missing one from them), "did you mean" and the REPL's completion read
//! the names, and docs/language.md's table is written from them (`tests/docs.rs`). What a source
//! means once checked is a `DataSource` value; the runtime loads it.

pub struct DataSourceDef {
    pub name: &'static str,
    /// One line for the docs' table.
    pub doc: &'static str,
    /// In positional order.
    pub params: &'static [Param],
}

pub struct Param {
    pub name: &'static str,
    /// What the argument must be.
    pub kind: &'static str,
    /// The default as the docs write it; `None` when the argument is required.
    pub default: Option<&'static str>,
}

const fn required(name: &'static str, kind: &'static str) -> Param {
    Param {
        name,
        kind,
        default: None,
    }
}

const fn optional(name: &'static str, kind: &'static str, default: &'static str) -> Param {
    Param {
        name,
        kind,
        default: Some(default),
    }
}

const SCALE: Param = optional(
    "scale",
    "positive number: every feature is divided by it",
    "`1`",
);

/// Every data source, in the order the docs list them.
pub static DATA_SOURCES: &[DataSourceDef] = &[
    DataSourceDef {
        name: "synthetic_classification",
        doc: "features ~ N(0, 1), labels `argmax(x · W)` for a random `W`, all from `seed`",
        params: &[
            required("samples", "positive integer"),
            required("features", "positive integer"),
            required("classes", "positive integer"),
            optional("seed", "non-negative integer", "`0`"),
        ],
    },
    DataSourceDef {
        name: "csv",
        doc: "a CSV file: every column but the label column is a feature",
        params: &[
            required("path", "string"),
            optional(
                "label",
                "column name (string) or zero-based index (integer)",
                "the last column",
            ),
            optional("header", "`true`/`false`", "`true`"),
            SCALE,
            optional("delimiter", "one character, or `\"tab\"`", "`\",\"`"),
        ],
    },
    DataSourceDef {
        name: "idx",
        doc: "a pair of IDX files (MNIST's format, gzip-compressed or not)",
        params: &[
            required("images", "string: the IDX images file"),
            required("labels", "string: the IDX labels file"),
            SCALE,
        ],
    },
    DataSourceDef {
        name: "npy",
        doc: "NumPy `.npy` files of features and labels",
        params: &[
            required("features", "string: a `.npy` file"),
            required("labels", "string: a `.npy` file"),
            SCALE,
        ],
    },
    DataSourceDef {
        name: "npz",
        doc: "a NumPy `.npz` archive holding the features and labels arrays",
        params: &[
            required("path", "string: a `.npz` archive"),
            optional("features", "the features array's name", "`\"x\"`"),
            optional("labels", "the labels array's name", "`\"y\"`"),
            SCALE,
        ],
    },
];

/// The data source called `name`.
pub fn find(name: &str) -> Option<&'static DataSourceDef> {
    DATA_SOURCES.iter().find(|d| d.name == name)
}

/// The names of every data source, for "did you mean" and completion.
pub fn names() -> Vec<&'static str> {
    DATA_SOURCES.iter().map(|d| d.name).collect()
}

impl DataSourceDef {
    pub fn param_names(&self) -> Vec<&'static str> {
        self.params.iter().map(|p| p.name).collect()
    }
}

/// The data sources' table in docs/language.md, written from the definitions.
pub fn docs_table() -> String {
    let mut out = String::from(
        "| Source | What it is | Arguments in positional order (or named) |\n\
         |---|---|---|\n",
    );
    for def in DATA_SOURCES {
        let params: Vec<String> = def
            .params
            .iter()
            .map(|p| match p.default {
                None => format!("`{}` ({})", p.name, p.kind),
                Some(default) => format!("`{}` ({}; default {default})", p.name, p.kind),
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            def.name,
            def.doc,
            params.join(", ")
        ));
    }
    out
}
