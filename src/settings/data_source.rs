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
        doc: "a CSV file: every column but the label column is a feature (columns of strings as \
              `categorical`, a label column of names as classes)",
        params: &[
            required("path", "string"),
            optional(
                "label",
                "column name (string) or zero-based index (integer), or `none` (unlabelled, for `predict`)",
                "the last column",
            ),
            optional("header", "`true`/`false`", "`true`"),
            SCALE,
            optional("delimiter", "one character, or `\"tab\"`", "`\",\"`"),
            optional(
                "weight",
                "column name or index: each sample's weight in the loss (Keras's `sample_weight`), not a feature",
                "none",
            ),
            optional(
                "features",
                "a list of column names or indices: the features, in this order",
                "every other column",
            ),
            optional(
                "missing",
                "`\"reject\"`, `\"mean\"` (the column's mean) or a number: what an empty, `NA` or `NaN` feature cell becomes",
                "`\"reject\"`",
            ),
            optional(
                "categorical",
                "a list of feature columns (names or indices) holding categories such as strings: each becomes `encoding`'s features, its vocabulary built from the training rows (Keras's `StringLookup`)",
                "none",
            ),
            optional(
                "encoding",
                "`\"one_hot\"` (a feature per category and one for `[UNK]`) or `\"index\"` (one feature, the category's index; `[UNK]` is 0)",
                "`\"one_hot\"`",
            ),
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
            optional(
                "weights",
                "string: a `.npy` file of each sample's weight in the loss (Keras's `sample_weight`)",
                "none",
            ),
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
            optional(
                "weights",
                "the name of an array of each sample's weight in the loss (Keras's `sample_weight`)",
                "none",
            ),
        ],
    },
    DataSourceDef {
        name: "timeseries_csv",
        doc: "windows over CSV columns, as Keras's `timeseries_dataset_from_array`: each sample \
              is `sequence_length` steps, its target `column`'s value `target_offset` steps after \
              the window's last",
        params: &[
            required("path", "string"),
            required(
                "column",
                "the target's column: name (string) or zero-based index (integer); the file has \
                 a header row",
            ),
            required("sequence_length", "positive integer: steps per window"),
            optional(
                "target_offset",
                "positive integer: steps from a window's last value to its target",
                "`1`",
            ),
            optional(
                "sequence_stride",
                "positive integer: steps between the starts of successive windows",
                "`1`",
            ),
            optional(
                "sampling_rate",
                "positive integer: steps between the values within a window",
                "`1`",
            ),
            optional(
                "missing",
                "`\"reject\"`, `\"previous\"` or `\"interpolate\"`: what an empty, `NA` or `NaN` cell means",
                "`\"reject\"`",
            ),
            optional("delimiter", "one character, or `\"tab\"`", "`\",\"`"),
            optional(
                "features",
                "list of column names or indices: the values of each step of a window",
                "`[column]`",
            ),
        ],
    },
    DataSourceDef {
        name: "text_csv",
        doc: "a CSV column of raw text turned into token ids as Keras's `TextVectorization` does \
              (vocabulary from the training samples), and a column of class names",
        params: &[
            required("path", "string"),
            optional("text", "the text column's name", "`\"text\"`"),
            optional(
                "label",
                "the class-name column's name (prediction reads files without it)",
                "`\"label\"`",
            ),
            optional(
                "max_tokens",
                "integer ≥ 2: the vocabulary's size, padding and `[UNK]` included",
                "every token of the training text",
            ),
            required(
                "output_sequence_length",
                "positive integer: ids per sample, the model input's length",
            ),
            optional(
                "split",
                "`\"whitespace\"` or `\"character\"`",
                "`\"whitespace\"`",
            ),
            optional(
                "standardize",
                "`\"lower_and_strip_punctuation\"`, `\"lower\"`, `\"strip_punctuation\"` or \
                 `\"none\"`",
                "`\"lower_and_strip_punctuation\"`",
            ),
        ],
    },
    DataSourceDef {
        name: "text_windows",
        doc: "a plain text file as overlapping windows of token ids, each labelled with the id of \
              the token after it: a language model's data (vocabulary from the training \
              windows, kept with the model as `text_csv`'s is)",
        params: &[
            required("path", "string"),
            required(
                "sequence_length",
                "positive integer: ids per window, the model input's length",
            ),
            optional(
                "sequence_stride",
                "positive integer: tokens between the starts of successive windows",
                "`1`",
            ),
            optional(
                "max_tokens",
                "integer ≥ 2: the vocabulary's size, padding and `[UNK]` included (the model's \
                 output width)",
                "every token of the training text",
            ),
            optional(
                "split",
                "`\"character\"` or `\"whitespace\"`",
                "`\"character\"`",
            ),
            optional(
                "standardize",
                "`\"none\"`, `\"lower\"`, `\"strip_punctuation\"` or \
                 `\"lower_and_strip_punctuation\"`",
                "`\"none\"`",
            ),
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

/// The per-sample shapes of a model input that samples of shape `sample` feed, in the order
/// messages suggest them. A sample's values are row-major, so any layout of them would read the
/// same bytes, but only these mean the same pixels, Keras's channels-last way: the flat vector
/// (how every source fed a model before images), the samples' own shape (`[28, 28]` for IDX
/// images, an npy array's dimensions after the first), and that shape with a trailing channel
/// axis of 1 (`[28, 28, 1]`, what `np.expand_dims(x, -1)` gives a Keras user). `[1, 28, 28]` or
/// `[14, 56]` would silently scramble rows and columns for a convolution, so they are refused.
pub fn image_inputs(sample: &[usize]) -> Vec<Vec<usize>> {
    let mut shapes = vec![vec![sample.iter().product()]];
    for shape in [sample.to_vec(), [sample, &[1]].concat()] {
        if !shapes.contains(&shape) {
            shapes.push(shape);
        }
    }
    shapes
}

/// Whether samples whose shape has `rank` dimensions, sizes not yet known, could feed an input
/// of per-sample shape `input` under `image_inputs`: what the checker knows of IDX images,
/// always `[rows, cols]`, before they load.
pub fn rank_could_feed(rank: usize, input: &[usize]) -> bool {
    input.len() == 1 || input.len() == rank || (input.len() == rank + 1 && input.last() == Some(&1))
}

/// `f32[B, 784], f32[B, 28, 28] or f32[B, 28, 28, 1]`: the inputs `image_inputs` accepts, as
/// messages write them with the model's batch symbol.
pub fn image_inputs_text(sample: &[usize], batch: &str) -> String {
    let shapes: Vec<String> = image_inputs(sample)
        .iter()
        .map(|s| input_text(s, batch))
        .collect();
    match shapes.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => shapes.join(""),
    }
}

/// `f32[B, 28, 28, 1]` for per-sample dimensions `[28, 28, 1]`.
pub fn input_text(sample: &[usize], batch: &str) -> String {
    let dims: Vec<String> = std::iter::once(batch.to_string())
        .chain(sample.iter().map(usize::to_string))
        .collect();
    format!("f32[{}]", dims.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_feed_flat_own_and_channel_last_shapes() {
        assert_eq!(
            image_inputs(&[28, 28]),
            vec![vec![784], vec![28, 28], vec![28, 28, 1]]
        );
        // An array with its channel axis already: its own shape, and one more axis of 1 (Keras
        // expands a missing trailing axis of 1 too).
        assert_eq!(
            image_inputs(&[28, 28, 1]),
            vec![vec![784], vec![28, 28, 1], vec![28, 28, 1, 1]]
        );
        // Flat samples: the flat vector is their own shape.
        assert_eq!(image_inputs(&[5]), vec![vec![5], vec![5, 1]]);
        assert_eq!(
            image_inputs_text(&[28, 28], "B"),
            "f32[B, 784], f32[B, 28, 28] or f32[B, 28, 28, 1]"
        );
        assert_eq!(image_inputs_text(&[1], "N"), "f32[N, 1] or f32[N, 1, 1]");
    }

    #[test]
    fn rank_could_feed_agrees_with_image_inputs() {
        for input in [&[784][..], &[28, 28], &[28, 28, 1], &[4, 196]] {
            assert!(rank_could_feed(2, input), "{input:?}");
        }
        for input in [&[1, 28, 28][..], &[28, 28, 3], &[28, 28, 1, 1], &[]] {
            assert!(!rank_could_feed(2, input), "{input:?}");
        }
        for sample in [[28, 28], [4, 7], [1, 1]] {
            for input in image_inputs(&sample) {
                assert!(rank_could_feed(2, &input), "{sample:?} {input:?}");
            }
        }
    }
}
