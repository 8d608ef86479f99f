//! `kiln explain CODE`: a longer explanation of each diagnostic, with a program that causes it.
//! A test checks that every code the compiler can emit is explained here and that every example
//! really produces its code, so the explanations cannot drift from the compiler.

pub struct Explanation {
    pub code: &'static str,
    pub title: &'static str,
    pub text: &'static str,
    /// A program that produces this diagnostic (none for run-time and internal codes).
    pub example: Option<&'static str>,
}

impl Explanation {
    pub fn render(&self) -> String {
        let mut out = format!("{}: {}\n\n{}\n", self.code, self.title, self.text.trim());
        if let Some(example) = self.example {
            out.push_str("\nFor example:\n\n");
            for line in example.trim_end().lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

pub fn find(code: &str) -> Option<&'static Explanation> {
    EXPLANATIONS.iter().find(|e| e.code == code)
}

/// Every kind of built-in with the table its definitions write (docs/language.md holds the same
/// tables: `tests/docs.rs`).
pub fn builtin_tables() -> [(&'static str, String); 11] {
    [
        ("layer", crate::check::layers_table()),
        ("function", crate::check::functions_table()),
        ("initializer", crate::check::initializers_table()),
        ("regularizer", crate::settings::regularizer::docs_table()),
        ("loss", crate::settings::loss::docs_table()),
        ("metric", crate::settings::metric::docs_table()),
        ("optimizer", crate::settings::optimizer::docs_table()),
        (
            "learning-rate schedule",
            crate::settings::schedule::docs_table(),
        ),
        ("callback", crate::settings::callback::docs_table()),
        ("data source", crate::settings::data_source::docs_table()),
        ("alias", crate::settings::def::aliases_table()),
    ]
}

/// `kiln explain NAME` for a built-in: its row of its kind's table, as text. A row's first cell
/// names the built-in and its aliases, each in backticks (`` `mean_squared_error` (`mse`) ``).
/// A name that is several things (`mse`: a loss's alias and a metric) gets each.
pub fn builtin(name: &str) -> Option<String> {
    let found: Vec<String> = builtin_catalog()
        .into_iter()
        .filter(|entry| entry.name == name)
        .map(|entry| entry.text)
        .collect();
    (!found.is_empty()).then(|| found.join("\n"))
}

/// One name `builtin` explains: the kind of built-in it is and its text.
pub struct CatalogEntry {
    pub name: String,
    /// `layer`, `function`, `loss`, `optimizer`, …, as the tables name their kind.
    pub kind: &'static str,
    pub text: String,
}

/// Every name `builtin` explains (aliases included), with its text, from the tables the
/// definitions write: what an editor's completion documents each candidate with.
pub fn builtin_catalog() -> Vec<CatalogEntry> {
    let mut out = Vec::new();
    for (kind, table) in builtin_tables() {
        let mut lines = table.lines();
        let Some(header) = lines.next().map(cells) else {
            continue;
        };
        for row in lines.skip(1) {
            for name in row_names(row) {
                let mut text = format!("`{name}`: a built-in {kind}\n");
                for (heading, cell) in header.iter().zip(cells(row)).skip(1) {
                    text.push_str(&format!("\n{heading}: {cell}\n"));
                }
                out.push(CatalogEntry {
                    name: name.to_string(),
                    kind,
                    text,
                });
            }
        }
    }
    out
}

/// The names `builtin` explains, for "did you mean" (aliases included).
pub fn builtin_names() -> Vec<String> {
    builtin_tables()
        .iter()
        .flat_map(|(_, table)| table.lines().skip(2).map(row_names).collect::<Vec<_>>())
        .flatten()
        .map(str::to_string)
        .collect()
}

/// The backticked names in a row's first cell.
fn row_names(row: &str) -> Vec<&str> {
    let first = cells(row).first().copied().unwrap_or("");
    first.split('`').skip(1).step_by(2).collect()
}

fn cells(row: &str) -> Vec<&str> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split(" | ").map(str::trim).collect()
}

/// A small model around a body, for examples.
macro_rules! model {
    ($body:literal) => {
        concat!("model m(x: f32[B, 4]) -> f32[B, 2] {\n", $body, "}\n")
    };
}

pub const EXPLANATIONS: &[Explanation] = &[
    Explanation {
        code: "E0001",
        title: "unexpected token",
        text: "The parser expected something else at this point; the label lists what it could \
               have accepted. Parsing resumes at the next line of the same block, so later \
               mistakes are still reported.",
        example: Some("model m(x f32[B, 4]) -> f32[B, 2] {\n    dense(2)\n}\n"),
    },
    Explanation {
        code: "E0002",
        title: "unknown character",
        text: "A character that is not part of any token, such as `$` or `%`. Runs of unknown \
               characters are reported once.",
        example: Some("let n = 4 $ 2\n"),
    },
    Explanation {
        code: "E0003",
        title: "unterminated string",
        text: "A string starts with `\"` but the line ends before the closing `\"`. Strings \
               cannot span lines.",
        example: Some("data d = csv(\"iris.csv)\n"),
    },
    Explanation {
        code: "E0004",
        title: "number out of range",
        text: "An integer larger than 18446744073709551615, or a decimal number that is not \
               finite (such as `1e999`).",
        example: Some("let n = 99999999999999999999\n"),
    },
    Explanation {
        code: "E0005",
        title: "unexpected end of file",
        text: "The file ends in the middle of an item, e.g. after `data d =`.",
        example: Some("data d =\n"),
    },
    Explanation {
        code: "E0006",
        title: "unclosed delimiter",
        text: "A `(`, `[` or `{` is never closed. The compiler closes it at the next item \
               keyword (`data`, `let`, `model`, `layer`, `fn`, `fit`, …) or at the end of the \
               file, and does not report the errors the missing closer caused.",
        example: Some("model m(x: f32[B, 4]) -> f32[B, 2] {\n    dense(2\n}\n"),
    },
    Explanation {
        code: "E0007",
        title: "unmatched closing delimiter",
        text: "A `)`, `]` or `}` with nothing open to close. It is skipped.",
        example: Some("let n = 4)\n"),
    },
    Explanation {
        code: "E0008",
        title: "expression nested too deeply",
        text: "An expression nested more than 200 deep: brackets within brackets, minus signs \
               on minus signs, or a chain of operators so long that its innermost term is 200 \
               operations down. Split it with `let` bindings or write a `fn`.",
        example: Some(concat!(
            "let n = ",
            "----------------------------------------------------------------------------------------------------",
            "-----------------------------------------------------------------------------------------------------",
            "1\n"
        )),
    },
    Explanation {
        code: "E0101",
        title: "name defined twice",
        text: "Data sets, models, layers, functions and top-level constants share one \
               namespace, and each name is defined once. Inside a layer, configuration, \
               parameter and input names must also differ.",
        example: Some("let n = 4\nlet n = 5\n"),
    },
    Explanation {
        code: "E0102",
        title: "unknown model",
        text: "A `fit` (or `evaluate`, `predict`, `save`, `load`) names a model that is not \
               defined. The help suggests the closest name.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            "fit clasifier on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0103",
        title: "unknown data set",
        text: "A `fit` names a data set (after `on`, or in `validation`) that is not defined.",
        example: Some(concat!(
            model!("    dense(2, softmax)\n"),
            "fit m on train { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0105",
        title: "unknown activation",
        text: "An activation given as a string names no built-in function. Write activations \
               as names (`relu`), not strings; any function of one tensor works, including \
               your own `fn`s.",
        example: Some(model!("    dense(2, \"rleu\")\n")),
    },
    Explanation {
        code: "E0106",
        title: "unknown data source",
        text: "`data NAME = SOURCE(...)` names a source that does not exist. Sources: \
               synthetic_classification, csv, idx.",
        example: Some("data d = cvs(\"iris.csv\")\n"),
    },
    Explanation {
        code: "E0107",
        title: "unknown loss",
        text: "The `loss` setting of a `fit` names no loss.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d { loss sparse_categorical_crossentropi }\n"
        )),
    },
    Explanation {
        code: "E0108",
        title: "unknown optimizer",
        text: "The `optimizer` setting of a `fit` names no optimizer.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adma(lr: 0.01)\n}\n"
        )),
    },
    Explanation {
        code: "E0109",
        title: "unknown metric",
        text: "An entry of the `metrics` list names no metric.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    metrics [acuracy]\n}\n"
        )),
    },
    Explanation {
        code: "E0110",
        title: "unknown fit setting",
        text: "A line of a `fit` block starts with a key that is not a setting.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    epoch 3\n}\n"
        )),
    },
    Explanation {
        code: "E0111",
        title: "no such argument",
        text: "A call names an argument the function, layer or data source does not take. The \
               note lists the arguments it does take.",
        example: Some(model!("    dense(2, activaton: relu)\n")),
    },
    Explanation {
        code: "E0112",
        title: "wrong kind of name",
        text: "A name refers to the wrong kind of thing, e.g. a data set where a model is \
               expected.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit d on m { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0113",
        title: "unknown name",
        text: "An expression uses a name that is not defined where it is used: not a local \
               `let`, an input or parameter, a top-level constant, function or layer, or a \
               built-in. A function or layer body sees its own parameters and the top level, \
               not the model that uses it.",
        example: Some(model!("    dense(2, rleu)\n")),
    },
    Explanation {
        code: "E0114",
        title: "not callable",
        text: "Something that is not a function or layer is called with arguments, e.g. a \
               tensor or a number.",
        example: Some(model!("    let h = x(2)\n    dense(2)(h)\n")),
    },
    Explanation {
        code: "E0115",
        title: "endless recursion",
        text: "Functions and layers are expanded where they are used (that is how the compiler \
               sees through them), so a function that calls itself would expand forever.",
        example: Some(concat!("fn f(x) = f(x)\n", model!("    f\n    dense(2)\n"))),
    },
    Explanation {
        code: "E0116",
        title: "unknown initializer",
        text: "A layer parameter's initializer is not one of Keras's: glorot_uniform, \
               glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, zeros, ones, \
               normal(std, mean), uniform(limit), constant(value), or a number.",
        example: Some(concat!(
            "layer scale(n: int) {\n    param s: f32[n] = glorot\n    forward(x: f32[B, n]) -> f32[B, n] { x * s }\n}\n",
            model!("    scale(4)\n    dense(2)\n")
        )),
    },
    Explanation {
        code: "E0117",
        title: "unknown callback",
        text: "A `fit`'s `callbacks` list names something that is not a callback. The callbacks \
               are Keras's: early_stopping(monitor, min_delta, patience, restore_best_weights), \
               checkpoint(path, monitor, save_best_only) and reduce_lr_on_plateau(monitor, \
               factor, patience, min_delta, min_lr).",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    callbacks [early_stoping()]\n}\n"
        )),
    },
    Explanation {
        code: "E0118",
        title: "unknown learning-rate schedule",
        text: "An optimizer's `lr` is a call that is not a schedule. The schedules are Keras's: \
               exponential_decay(initial_learning_rate, decay_steps, decay_rate, staircase), \
               piecewise_constant_decay(boundaries, values) and \
               cosine_decay(initial_learning_rate, decay_steps, alpha).",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: cosine(0.01))\n}\n"
        )),
    },
    Explanation {
        code: "E0201",
        title: "bad model input type",
        text: "A model input is written `NAME: f32[B, ...]`: element type f32 (or i32 for \
               indices), a symbolic batch dimension first, then the sizes of one sample, which \
               must be known (numbers, constants or arithmetic on them).",
        example: Some("model m(x: f32[32]) -> f32[B, 2] {\n    dense(2)\n}\n"),
    },
    Explanation {
        code: "E0202",
        title: "model without input",
        text: "A model takes at least one input.",
        example: Some("model m() -> f32[B, 2] {\n    dense(2)\n}\n"),
    },
    Explanation {
        code: "E0204",
        title: "output does not match the declared type",
        text: "What flows out of the model's last line differs from the declared output type. \
               The labels show what the last layer produces and what the model declares; the \
               help suggests the change (the units of the last dense layer, or a missing \
               `flatten()`).",
        example: Some(model!("    dense(3, softmax)\n")),
    },
    Explanation {
        code: "E0205",
        title: "empty model",
        text: "A model body needs at least one line.",
        example: Some("model m(x: f32[B, 4]) -> f32[B, 4] {\n}\n"),
    },
    Explanation {
        code: "E0206",
        title: "data width differs from the model input",
        text: "A synthetic data set declares a different number of features than the model \
               takes per sample. Features of other sources are checked when the data loads.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 5, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0207",
        title: "classes differ from the model output",
        text: "With sparse categorical cross-entropy, the model outputs one score per class, so \
               its output width must equal the data's number of classes.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 3)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0208",
        title: "batch dimensions differ",
        text: "All inputs of a model use the same symbol for the batch dimension.",
        example: Some("model m(x: f32[B, 4], y: f32[N, 4]) -> f32[B, 4] {\n    x + y\n}\n"),
    },
    Explanation {
        code: "E0209",
        title: "shapes do not broadcast",
        text: "An elementwise operator (`+ - * /`, `maximum`, `where`, …) combines shapes \
               NumPy-style: dimensions are matched from the right and each pair must be equal \
               or one of them 1. The labels show each operand's type and where it came from.",
        example: Some(model!("    let h = dense(3)(x)\n    dense(2)(x + h)\n")),
    },
    Explanation {
        code: "E0210",
        title: "matrix product shapes do not agree",
        text: "`a @ b` needs the last dimension of `a` to equal the second-to-last of `b`. The \
               same rule applies inside `dense`, and to a layer applied twice (it shares its \
               weights, so both inputs need the same width). When the operand looks \
               transposed, the help says so.",
        example: Some(concat!(
            "layer proj(n: int) {\n    param w: f32[n, 4] = glorot_uniform\n    forward(x: f32[B, 4]) -> f32[B, n] { x @ w }\n}\n",
            "model m(x: f32[B, 4]) -> f32[B, 2] {\n    proj(2)\n}\n"
        )),
    },
    Explanation {
        code: "E0211",
        title: "value does not match its declared type",
        text: "An argument of a function or layer, a result, or a `let` with a type annotation \
               has a different type than declared. Symbols in declared types (`B`, `n`) bind to \
               what they first meet and must agree after that.",
        example: Some(concat!(
            "fn double(x: f32[B, 3]) = x * 2\n",
            model!("    double\n    dense(2)\n")
        )),
    },
    Explanation {
        code: "E0212",
        title: "reshape changes the element count",
        text: "`reshape(x, shape)` keeps every element: the product of the target sizes equals \
               the elements of one sample (the batch dimension is kept and not written). One \
               size may be -1, inferred from the rest.",
        example: Some(model!("    reshape([3, 2])\n    flatten()\n    dense(2)\n")),
    },
    Explanation {
        code: "E0213",
        title: "concat shapes do not line up",
        text: "`concat([a, b], axis)` joins tensors along one axis; every other dimension must \
               be equal.",
        example: Some(model!(
            "    let h = reshape(x, [2, 2])\n    dense(2)(concat([x, h]))\n"
        )),
    },
    Explanation {
        code: "E0214",
        title: "axis out of range",
        text: "An axis argument (of `sum`, `mean`, `max`, `concat`, `slice`, `transpose`, \
               `softmax`) is outside the tensor's rank, repeated, or a slice is outside its \
               axis. Negative axes count from the end.",
        example: Some(model!("    let s = sum(x, axis: 2)\n    dense(2)(x)\n")),
    },
    Explanation {
        code: "E0215",
        title: "batch dimension misused",
        text: "Samples are independent, so the batch dimension stays first and whole: it \
               cannot be sliced, concatenated along, transposed away, or used in a parameter's \
               shape.",
        example: Some(model!("    dense(2)(slice(x, 0, 0, 1))\n")),
    },
    Explanation {
        code: "E0216",
        title: "unknown dimension",
        text: "A dimension in a declared type names a symbol nothing binds (model inputs and \
               parameter shapes must be fully known), or its arithmetic does not give a \
               positive whole number.",
        example: Some("model m(x: f32[B, N]) -> f32[B, 2] {\n    dense(2)\n}\n"),
    },
    Explanation {
        code: "E0218",
        title: "wrong number of outputs",
        text: "A model or function declares a different number of results than its body \
               produces. Several results are written as a tuple `(a, b)`.",
        example: Some("model m(x: f32[B, 4]) -> (f32[B, 4], f32[B, 2]) {\n    dense(2)\n}\n"),
    },
    Explanation {
        code: "E0219",
        title: "no single value flows into a layer",
        text: "A body line that is a layer (`dense(64, relu)`) is applied to the value the \
               previous line produced. With several inputs, or after a line producing a tuple, \
               there is no single value: apply the layer explicitly, `dense(64)(x)`.",
        example: Some("model m(x: f32[B, 4], y: f32[B, 4]) -> f32[B, 2] {\n    dense(2)\n}\n"),
    },
    Explanation {
        code: "E0220",
        title: "integer tensor in arithmetic",
        text: "`i32` tensors hold indices (for `embedding`); arithmetic and most layers need \
               `f32`. And `embedding` needs `i32` indices.",
        example: Some("model m(x: i32[B, 4]) -> f32[B, 2] {\n    dense(2)\n}\n"),
    },
    Explanation {
        code: "E0221",
        title: "body without a result",
        text: "A function or `forward` body ends with its result expression; a body whose last \
               line is a `let` has none.",
        example: Some(concat!(
            "fn f(x) {\n    let y = x * 2\n}\n",
            model!("    f\n    dense(2)\n")
        )),
    },
    Explanation {
        code: "E0222",
        title: "bad type",
        text: "A type names no element type (`f32`, `i32`) or scalar kind (`int`, `float`, \
               `bool`, `str`), a parameter is not an f32 tensor, or a layer's configuration is \
               declared as a tensor.",
        example: Some(concat!(
            "layer l(n: f32[4]) {\n    forward(x: f32[B, 4]) -> f32[B, 4] { x }\n}\n",
            model!("    dense(2)\n")
        )),
    },
    Explanation {
        code: "E0223",
        title: "layer without one forward",
        text: "A `layer` says what it computes in exactly one `forward(...) { ... }`.",
        example: Some("layer l(n: int) {\n    param w: f32[n]\n}\n"),
    },
    Explanation {
        code: "E0224",
        title: "grad of a non-scalar function",
        text: "`grad(f)` differentiates a function with one number as its result (as JAX's \
               `grad` does). Reduce the result first, e.g. with `sum`.",
        example: Some(concat!(
            "fn square(x) = x * x\n",
            model!("    let g = grad(square)(x)\n    dense(2)(g)\n")
        )),
    },
    Explanation {
        code: "E0225",
        title: "image data cannot feed the model input's shape",
        text: "Data whose samples have a shape of their own (IDX images, NumPy arrays) feeds a \
               model input of the flat vector of their values, their own shape, or that shape \
               with a trailing channel axis of 1, as Keras lays images out (channels last): \
               28×28 images feed `f32[B, 784]`, `f32[B, 28, 28]` or `f32[B, 28, 28, 1]`. Other \
               layouts of the same values, such as channels first (`f32[B, 1, 28, 28]`), are \
               refused. The checker knows that IDX images have two dimensions; their sizes, and \
               NumPy arrays' shapes, are checked when the data loads.",
        example: Some(concat!(
            "data d = idx(images: \"images.gz\", labels: \"labels.gz\")\n",
            "model m(x: f32[B, 1, 28, 28]) -> f32[B, 10] {\n    flatten()\n    dense(10, softmax)\n}\n",
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0226",
        title: "window larger than its input",
        text: "A convolution or pooling window must fit the input at least once: with \
               `padding: \"valid\"` (the default) a window spanning `k` positions (its size, \
               stretched by `dilation_rate`) needs at least `k` positions along every spatial \
               axis. Use a smaller window, `padding: \"same\"`, or fewer pooling layers before \
               it.",
        example: Some(
            "model m(x: f32[B, 4, 4, 1]) -> f32[B, 2] {\n    conv2d(8, 5)\n    flatten()\n    dense(2)\n}\n",
        ),
    },
    Explanation {
        code: "E0227",
        title: "convolution or pooling on a tensor that is not channels-last",
        text: "`conv2d`, the 2-D pooling layers and their kin take a batch of images laid out \
               as Keras lays them out, channels last: `f32[B, height, width, channels]`; the \
               1-D layers take `f32[B, steps, channels]`. A grayscale image needs its channel \
               axis of 1: declare the input `f32[B, 28, 28, 1]`, or reshape to it first.",
        example: Some(
            "model m(x: f32[B, 28, 28]) -> f32[B, 2] {\n    conv2d(8, 3)\n    flatten()\n    dense(2)\n}\n",
        ),
    },
    Explanation {
        code: "E0228",
        title: "a recurrent layer configured in a way it does not support",
        text: "`simple_rnn`, `lstm` and `gru` take `tanh`, `sigmoid`, `relu` or `linear` as \
               `activation` and `recurrent_activation`: the reverse scan computes each one's \
               derivative from the stored activation, which these allow. `gru` implements \
               Keras's default `reset_after: true` (the form cuDNN and PyTorch use) only.",
        example: Some(
            "model m(x: f32[B, 10, 4]) -> f32[B, 8] {\n    lstm(8, activation: softplus)\n}\n",
        ),
    },
    Explanation {
        code: "E0229",
        title: "a recurrent layer on a tensor that is not a batch of sequences",
        text: "`simple_rnn`, `lstm` and `gru` read `f32[B, steps, features]`, Keras's \
               `[batch, timesteps, features]`: token ids go through `embedding` first; a series \
               of single values needs its feature axis of 1 (`f32[B, 52, 1]`).",
        example: Some("model m(x: f32[B, 52]) -> f32[B, 8] {\n    lstm(8)\n}\n"),
    },
    Explanation {
        code: "E0230",
        title: "`bidirectional` around something other than a forward recurrent layer",
        text: "`bidirectional(layer)` is Keras's `Bidirectional`: it runs a configured \
               `simple_rnn`, `lstm` or `gru` forwards and a copy of it with `go_backwards: true` \
               backwards, so the layer it wraps is one of those three, configured inside the call \
               (`bidirectional(lstm(64))`), and runs forwards (Keras rejects a wrapped layer with \
               `go_backwards: true` too, since both copies would then run backwards).",
        example: Some(
            "model m(x: f32[B, 10, 4]) -> f32[B, 16] {\n    bidirectional(dense(8))\n}\n",
        ),
    },
    Explanation {
        code: "E0231",
        title: "an unknown `merge_mode` of `bidirectional`",
        text: "The two directions' results are joined on the last axis (`\"concat\"`, the \
               default), added (`\"sum\"`), multiplied (`\"mul\"`) or averaged (`\"ave\"`). \
               Keras's `merge_mode: None`, which returns both results apart, has no counterpart: \
               a layer has one result; concatenate and `slice` the halves instead.",
        example: Some(
            "model m(x: f32[B, 10, 4]) -> f32[B, 8] {\n    bidirectional(gru(8), merge_mode: \"max\")\n}\n",
        ),
    },
    Explanation {
        code: "E0232",
        title: "attention's key and value of different lengths",
        text: "`multi_head_attention(...)(query, value, key)` weighs each step of the value by \
               how well the key at the same step matches the query, so the key and the value \
               need the same number of steps (their widths may differ). Leave the key out to \
               use the value as its own key, as Keras does.",
        example: Some(
            "model m(x: f32[B, 24]) -> f32[B, 24] {\n    let q = reshape([4, 6])(x)\n    let v = reshape([3, 8])(x)\n    let k = reshape([2, 12])(x)\n    flatten(multi_head_attention(2, 3)(q, v, k))\n}\n",
        ),
    },
    Explanation {
        code: "E0330",
        title: "`generate` from something that is not a text",
        text: "`generate MODEL from TEXT` starts from a string written in double quotes: its \
               tokens (made as the model's vocabulary makes them) are the first ids the model \
               reads, and the generated text continues it.",
        example: Some(concat!(
            "model m(x: i32[B, 8]) -> f32[B, 20] {\n    embedding(20, 4)\n    lstm(8)\n    dense(20, softmax)\n}\n",
            "generate m from 42\n"
        )),
    },
    Explanation {
        code: "E0331",
        title: "an unknown or repeated option of `generate`",
        text: "`generate` takes `length` (tokens to draw, 100 by default), `temperature` (1.0) \
               and `seed` (0), each at most once, written as a name and a value after the \
               text: `generate m from \"The \" length 200 temperature 0.8 seed 1`.",
        example: Some(concat!(
            "model m(x: i32[B, 8]) -> f32[B, 20] {\n    embedding(20, 4)\n    lstm(8)\n    dense(20, softmax)\n}\n",
            "generate m from \"a\" lenght 10\n"
        )),
    },
    Explanation {
        code: "E0332",
        title: "a `generate` option with a value it cannot take",
        text: "`length` is a positive whole number of tokens, `seed` a whole number ≥ 0, and \
               `temperature` a number ≥ 0: the scores are divided by it before the draw, so \
               below 1 the likely tokens grow likelier, above 1 the draw evens out, and 0 \
               always takes the likeliest token.",
        example: Some(concat!(
            "model m(x: i32[B, 8]) -> f32[B, 20] {\n    embedding(20, 4)\n    lstm(8)\n    dense(20, softmax)\n}\n",
            "generate m from \"a\" length 0\n"
        )),
    },
    Explanation {
        code: "E0333",
        title: "`generate` with a model that is not a language model",
        text: "A language model reads a window of token ids `i32[B, T]` (one input) and scores \
               every token of its vocabulary `f32[B, V]` (one output), as a model trained on \
               `text_windows` data does; `generate` feeds it the last `T` ids and draws the next \
               token from its scores.",
        example: Some(concat!(
            "model m(x: f32[B, 4]) -> f32[B, 3] {\n    dense(3, softmax)\n}\n",
            "generate m from \"a\"\n"
        )),
    },
    Explanation {
        code: "E0301",
        title: "fit without loss",
        text: "Every `fit` names its loss; there is no default (as in Keras's `compile`).",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d { epochs 2 }\n"
        )),
    },
    Explanation {
        code: "E0302",
        title: "setting given twice",
        text: "Each `fit` setting appears at most once.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    epochs 2\n    epochs 3\n}\n"
        )),
    },
    Explanation {
        code: "E0303",
        title: "value of the wrong kind or out of range",
        text: "A value has the wrong kind (a string where a number is expected, a number where \
               a tensor is expected) or is out of range (`epochs 0`, `lr: -1`, `dropout(1.5)`).",
        example: Some(model!("    dense(2.5)\n")),
    },
    Explanation {
        code: "E0304",
        title: "missing argument",
        text: "A required argument is missing, e.g. `dense()` without its units.",
        example: Some(model!("    dense()\n")),
    },
    Explanation {
        code: "E0305",
        title: "too many arguments",
        text: "A call has more positional arguments than the callee takes, gives one argument \
               twice, or applies a layer to the wrong number of inputs.",
        example: Some(model!("    dense(2, relu, true, 4)\n")),
    },
    Explanation {
        code: "E0306",
        title: "positional argument after a named one",
        text: "Once an argument is named, the ones after it must be named too (as in Python).",
        example: Some(model!("    dense(units: 2, relu)\n")),
    },
    Explanation {
        code: "E0307",
        title: "a class metric without class labels",
        text: "`accuracy`, `top_k_accuracy`, `precision`, `recall`, `f1_score` and `auc` compare \
               predicted and true classes, so they need a classification loss.",
        example: Some(concat!(
            "data d = csv(\"houses.csv\")\n",
            model!("    dense(2)\n"),
            "fit m on d {\n    loss mean_squared_error\n    metrics [accuracy]\n}\n"
        )),
    },
    Explanation {
        code: "E0308",
        title: "regression loss on class labels",
        text: "`mean_squared_error` needs real-valued targets, but synthetic and IDX data have \
               integer class labels.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "fit m on d { loss mean_squared_error }\n"
        )),
    },
    Explanation {
        code: "E0309",
        title: "not supported here",
        text: "Valid syntax in a place that does not accept it: e.g. a number as a model line, \
               a tensor in a top-level `let`, or an operator where a data source is expected.",
        example: Some(model!("    42\n")),
    },
    Explanation {
        code: "E0310",
        title: "label column by name without a header",
        text: "A CSV label column can be named only when the file has a header row.",
        example: Some(concat!(
            "data d = csv(\"iris.csv\", label: \"species\", header: false)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0311",
        title: "validation given twice",
        text: "A `fit` sets both `validation` (a data set) and `validation_split` (a fraction \
               of the training data); keep one.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            "data t = synthetic_classification(samples: 10, features: 4, classes: 2, seed: 1)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    validation t\n    validation_split 0.2\n}\n"
        )),
    },
    Explanation {
        code: "E0312",
        title: "fit cannot train this model",
        text: "Data sets supply one feature tensor (f32, or i32 token ids) and one label or \
               target row per sample, so `fit` trains models with one input and one `[B, M]` \
               output. Models with several inputs or outputs can be checked, summarized and \
               dumped.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            "model m(x: f32[B, 4]) -> (f32[B, 2], f32[B, 2]) {\n    let h = dense(2)(x)\n    (h, h)\n}\n",
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0320",
        title: "loss reads probabilities, model outputs raw scores",
        text: "As in Keras, the cross-entropies read the model's output as probabilities unless \
               `from_logits: true` is given. A model that does not end in softmax (sigmoid for \
               binary cross-entropy) outputs raw scores, which such a loss would misread; end \
               the model in softmax, or say the output is logits.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0321",
        title: "softmax applied twice",
        text: "With `from_logits: true` the loss applies softmax (or sigmoid) itself, so a model \
               that already ends in one would have it applied twice — training still runs in \
               Keras, but on the wrong function.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d { loss sparse_categorical_crossentropy(from_logits: true) }\n"
        )),
    },
    Explanation {
        code: "E0322",
        title: "loss and output disagree",
        text: "Binary cross-entropy scores one probability per sample: it needs an output of \
               width 1 (ending in sigmoid) and data with two classes. The categorical \
               cross-entropies need a softmax output, not a sigmoid.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, sigmoid)\n"),
            "fit m on d { loss binary_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0323",
        title: "data that cannot feed an integer input",
        text: "A model whose input is `i32` (token ids for `embedding`) reads whole numbers as \
               they are: from a CSV file of whole numbers, or an integer NumPy array (`npy`, \
               `npz`). `synthetic_classification`, `idx` and `timeseries_csv` supply f32 \
               features, and `scale` \
               would divide the ids, so neither can feed such an input.",
        example: Some(concat!(
            "data d = npz(\"tokens.npz\", scale: 255)\n",
            "model m(x: i32[B, 6]) -> f32[B, 2] {\n    embedding(100, 4)\n    flatten()\n    dense(2, softmax)\n}\n",
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0324",
        title: "standardize on an integer input",
        text: "`standardize true` shifts and scales every feature by the training data's mean \
               and standard deviation; token ids are row numbers of an embedding's table, not \
               quantities, so a model with an `i32` input cannot standardize them.",
        example: Some(concat!(
            "data d = npz(\"tokens.npz\")\n",
            "model m(x: i32[B, 6]) -> f32[B, 2] {\n    embedding(100, 4)\n    flatten()\n    dense(2, softmax)\n}\n",
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    standardize true\n}\n"
        )),
    },
    Explanation {
        code: "E0325",
        title: "a class loss on a time series",
        text: "A `timeseries_csv` sample's target is a value of the series (the one \
               `target_offset` steps after the window), a real number: forecasting it is \
               regression. Train with `mean_squared_error` (or `mae`), not a classification loss.",
        example: Some(concat!(
            "data d = timeseries_csv(\"co2.csv\", column: \"co2\", sequence_length: 8)\n",
            "model m(x: f32[B, 8]) -> f32[B, 2] {\n    dense(2, softmax)\n}\n",
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0327",
        title: "text data that does not fit the model's input",
        text: "`text_csv` turns each text into `output_sequence_length` token ids, so it feeds \
               an `i32[B, T]` input whose `T` is that length, as Keras's `TextVectorization` \
               feeds an `Embedding`. Declare the input `i32` with that length, or change \
               `output_sequence_length` to the input's length.",
        example: Some(concat!(
            "data d = text_csv(\"texts.csv\", output_sequence_length: 20)\n",
            "model m(x: f32[B, 20]) -> f32[B, 2] {\n    dense(2, softmax)\n}\n",
            "fit m on d { loss sparse_categorical_crossentropy }\n"
        )),
    },
    Explanation {
        code: "E0326",
        title: "time-series windows that do not fit the model's input",
        text: "Each `timeseries_csv` sample is a window of `sequence_length` values, which feeds \
               an input `f32[B, sequence_length]` or, for a `conv1d` over time, \
               `f32[B, sequence_length, 1]` (Keras's `[batch, timesteps, features]`); with \
               `features` listing F columns, `f32[B, sequence_length · F]` or \
               `f32[B, sequence_length, F]`. Declare one of them, or change `sequence_length`.",
        example: Some(concat!(
            "data d = timeseries_csv(\"co2.csv\", column: \"co2\", sequence_length: 52)\n",
            "model m(x: f32[B, 12]) -> f32[B, 1] {\n    dense(1)\n}\n",
            "fit m on d { loss mean_squared_error }\n"
        )),
    },
    Explanation {
        code: "E0313",
        title: "a callback monitors something the fit does not report",
        text: "A callback's `monitor` must be `loss`, one of the fit's metrics, or `val_` and one \
               of those. The `val_` values exist only with validation data: add `validation \
               DATA` or `validation_split 0.2`, or monitor `loss`. (Keras only warns and does \
               nothing in this case.)",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    callbacks [early_stopping(monitor: \"val_loss\")]\n}\n"
        )),
    },
    Explanation {
        code: "E0314",
        title: "reduce_lr_on_plateau with a learning-rate schedule",
        text: "reduce_lr_on_plateau sets the optimizer's learning rate, which a schedule also \
               sets at every step; Keras refuses the combination too. Use a constant `lr` with \
               the callback, or the schedule alone.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer sgd(lr: cosine_decay(0.1, decay_steps: 100))\n    callbacks [reduce_lr_on_plateau(monitor: \"loss\")]\n}\n"
        )),
    },
    Explanation {
        code: "E0315",
        title: "a regression metric with class labels",
        text: "`mae` and `mse` measure how far real-valued outputs are from real-valued targets; \
               with `sparse_categorical_crossentropy` the labels are classes. Use `accuracy`, \
               `top_k_accuracy`, `precision` or `recall` for a classifier.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    metrics [mae]\n}\n"
        )),
    },
    Explanation {
        code: "E0401",
        title: "a checkpoint path must end in .safetensors",
        text: "Checkpoints (`save`, `load`, the `checkpoint` callback, `--load`, `--init`) are \
               safetensors files, the format PyTorch and Hugging Face use; the path says so. \
               `save` also writes a bundle (the model, its weights and preprocessing in one \
               file, for `kiln predict`) to a path ending in .kiln.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "save m to \"weights.bin\"\n"
        )),
    },
    Explanation {
        code: "E0402",
        title: "predict writes .csv or .npy",
        text: "`predict MODEL on DATA to PATH` chooses the format from the extension: `.csv` \
               (probabilities and class per row) or `.npy` (a float32 array, and the classes in \
               STEM_classes.npy).",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d { loss sparse_categorical_crossentropy }\npredict m on d to \"p.txt\"\n"
        )),
    },
    Explanation {
        code: "E0403",
        title: "evaluate needs a fit",
        text: "`evaluate` reports the loss and metrics of a model's `fit` (the nearest one before \
               it, else the first after it). A model that no `fit` trains has no loss to \
               evaluate; `predict`, `save` and `load` work without one.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2)\n"),
            "evaluate m on d\n"
        )),
    },
    Explanation {
        code: "E0404",
        title: "the checkpoint lacks a parameter",
        text: "While loading a checkpoint into a model (when the program runs), a parameter of \
               the model, such as `dense_2.kernel`, has no tensor in the file: it was saved from \
               a different model. Every mismatch is reported at once.",
        example: None,
    },
    Explanation {
        code: "E0405",
        title: "a checkpoint tensor has the wrong shape",
        text: "While loading a checkpoint, a tensor named like one of the model's parameters has \
               a different shape (e.g. a layer's units changed since it was saved).",
        example: None,
    },
    Explanation {
        code: "E0406",
        title: "the checkpoint has a tensor the model does not",
        text: "While loading a checkpoint, a weight tensor in the file is not a parameter of the \
               model (optimizer state, under `optimizer.`, is exempt): it was saved from a \
               different model.",
        example: None,
    },
    Explanation {
        code: "E0408",
        title: "a checkpoint tensor is not float32",
        text: "While loading a checkpoint, a parameter's tensor holds another element type (F16, \
               BF16, F64, …). Kiln trains in float32; convert the tensor before saving it (in \
               PyTorch, `tensor.float()`).",
        example: None,
    },
    Explanation {
        code: "E0409",
        title: "predict cannot run this model",
        text: "A data set supplies one feature tensor per sample (f32, or i32 token ids) and \
               `predict` writes one row of outputs per sample, so it runs models with one input \
               and one `[B, M]` output, the models `fit` can train.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            "model m(a: f32[B, 4], b: f32[B, 4]) -> f32[B, 2] {\n    dense(2)(a + b)\n}\n",
            "predict m on d to \"p.csv\"\n"
        )),
    },
    Explanation {
        code: "E0407",
        title: "no model for --load or --init",
        text: "`--load` and `--init` load into the model of the program's first `fit`, or its \
               only model; a program with neither has no model to load into.",
        example: None,
    },
    Explanation {
        code: "E0410",
        title: "training stopped on a NaN or infinite loss",
        text: "Training stops at the first batch whose loss is not a finite number, as Keras's \
               `TerminateOnNaN` does, and the run exits with an error naming the epoch and step. \
               No callback runs for that epoch, so no checkpoint of the diverged weights is \
               written (earlier ones are kept), and the model keeps the weights it had before \
               the `fit`. The error also points at the line where the first non-finite value \
               arose (found by replaying the epoch to that step and running it in the \
               interpreter with float32 rounding), with the range of that op's inputs. The usual \
               causes are too high a learning rate, inputs far from unit scale (use `scale` or \
               `standardize`), or a loss that does not fit the outputs.",
        example: None,
    },
    Explanation {
        code: "E0860",
        title: "not a regularizer",
        text: "A built-in layer's `kernel_regularizer`, `bias_regularizer`, \
               `embeddings_regularizer`, `gamma_regularizer` or `beta_regularizer` must name one \
               of Keras's regularizers, by name, as a string or called with its factors: \
               `l1(l1: 0.01)`, `l2(l2: 0.01)`, `l1_l2(l1: 0.01, l2: 0.01)` (also `L1`, `L2`, \
               `L1L2`). A factor is a number zero or more. The penalty is added to the loss \
               training minimizes and reports, as in Keras.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax, kernel_regularizer: l3(0.01))\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n}\n"
        )),
    },
    Explanation {
        code: "E0861",
        title: "two kinds of gradient clipping",
        text: "An optimizer takes at most one of `clipnorm` (each gradient scaled to at most \
               that L2 norm), `global_clipnorm` (all gradients scaled together) and `clipvalue` \
               (each value clipped), as Keras allows only one.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(clipnorm: 1.0, clipvalue: 0.5)\n}\n"
        )),
    },
    Explanation {
        code: "E0862",
        title: "class_weight without classes",
        text: "`class_weight` multiplies each training sample's loss by its class's weight \
               (Keras's `class_weight`), so it needs a loss that trains on class labels \
               (`sparse_categorical_crossentropy`, `categorical_crossentropy`, \
               `binary_crossentropy`). A regression loss's targets have no classes.",
        example: Some(concat!(
            "data d = csv(\"points.csv\")\n",
            "model m(x: f32[B, 4]) -> f32[B, 1] {\n    dense(1)\n}\n",
            "fit m on d {\n    loss mean_squared_error\n    class_weight [1.0, 2.0]\n}\n"
        )),
    },
    Explanation {
        code: "E0863",
        title: "class_weight of the wrong length",
        text: "`class_weight` lists one weight per class, class 0 first: as many as the model's \
               output gives classes with the fit's loss (its width for a softmax output, two for \
               a one-unit sigmoid with `binary_crossentropy`).",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    class_weight [1.0, 2.0, 3.0]\n}\n"
        )),
    },
    Explanation {
        code: "E0864",
        title: "the weight column is the label column",
        text: "A CSV's `weight` column holds each sample's weight in the loss (Keras's \
               `sample_weight`), so it cannot be the column of labels: name the column that \
               holds the weights. (When the label is the last column by default and the weight \
               is given by index, the loader reports the same when it reads the file.)",
        example: Some(concat!(
            "data d = csv(\"points.csv\", label: \"y\", weight: \"y\")\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n}\n"
        )),
    },
    Explanation {
        code: "E0865",
        title: "a feature column listed twice, or a label or weight column",
        text: "A csv's `features` lists the columns that become the features, in order: each \
               at most once, and neither the label column nor the weight column (those are not \
               features).",
        example: Some(concat!(
            "data d = csv(\"points.csv\", label: \"y\", features: [\"a\", \"y\"])\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n}\n"
        )),
    },
    Explanation {
        code: "E0866",
        title: "data without labels",
        text: "A csv read with `label: none` has no label column (every column but a weight \
               column is a feature): it is data for `predict`. Training, validation and \
               `evaluate` compare the model's outputs with labels, so they need a data set \
               with a label column.",
        example: Some(concat!(
            "data d = csv(\"new.csv\", label: none)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n}\n"
        )),
    },
    Explanation {
        code: "E0868",
        title: "a categorical column that is not a feature column, or listed twice",
        text: "A csv's `categorical` lists the feature columns whose values are categories \
               (strings such as island names): each becomes features as `encoding` says, its \
               vocabulary built from the training rows (Keras's `StringLookup`). So each must be \
               a feature column — among the `features` when they are listed, and neither the \
               label nor the weight column — and listed once. (A column given by name where the \
               features are given by index, or the other way round, is checked when the file is \
               read.) A label column of names needs no `categorical`: its names become classes.",
        example: Some(concat!(
            "data d = csv(\"penguins.csv\", label: \"species\", features: [\"mass\"], \
             categorical: [\"island\"])\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n}\n"
        )),
    },
    Explanation {
        code: "E0869",
        title: "`encoding` without categorical columns",
        text: "A csv's `encoding` (`\"one_hot\"` or `\"index\"`) says how its `categorical` \
               columns become features; without any, it has nothing to encode. List the columns \
               of categories in `categorical`, or remove `encoding`.",
        example: Some(concat!(
            "data d = csv(\"penguins.csv\", label: \"species\", encoding: \"index\")\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n}\n"
        )),
    },
    Explanation {
        code: "E0867",
        title: "shuffle_split, stratify or test_split where they cannot apply",
        text: "`shuffle_split true` shuffles the samples (with the fit's seed) before \
               `validation_split` (or `test_split`) holds out its fraction, and `stratify true` \
               holds out that fraction of each class, as scikit-learn's `train_test_split` does. \
               Both need a `validation_split` or `test_split`; none of the three applies to \
               `timeseries_csv` (which validates on the latest windows) or `text_csv` (whose \
               vocabulary is adapted to the first rows); `stratify` needs a class loss.",
        example: Some(concat!(
            "data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n",
            model!("    dense(2, softmax)\n"),
            "fit m on d {\n    loss sparse_categorical_crossentropy\n    stratify true\n}\n"
        )),
    },
    Explanation {
        code: "E0820",
        title: "a layer has no ONNX form",
        text: "`kiln export M.kiln -o M.onnx` writes the model's inference graph op by op in \
               ONNX opset 17. Every op the built-in layers use for inference has an ONNX form; \
               an op that does not (mean pooling over a dilated window, which ONNX's \
               AveragePool supports only from opset 19, a gradient computed inside the model, \
               a recurrent layer reading a `mask_zero` mask or using activations other than \
               ONNX's defaults) stops the export with this error, naming the layer it comes from. The \
               bundle itself still runs with `kiln predict`.",
        example: None,
    },
    Explanation {
        code: "E0821",
        title: "a layer cannot be built into a library",
        text: "`kiln build M.kiln -o DIR` compiles the model's inference graph ahead of time into \
               a C library that links against nothing but libc and libm. Dense, convolution, \
               pooling, normalization and attention layers, activations, dropout (the identity) \
               and the element-wise and reshaping ops compile into the library's own code, with \
               C counterparts of Kiln's matrix product and windowed kernels built with it. The \
               recurrent layers (`simple_rnn`, `lstm`, `gru`) run a native scan inside Kiln \
               (`kiln_recurrence`), and a gradient computed inside a model (`grad`) the windowed \
               ops' gradients; neither has a counterpart in the library, and a model using one \
               is refused with this error, naming the layer. `kiln export` writes such a model \
               as ONNX, and `kiln predict` runs the bundle.",
        example: None,
    },
    Explanation {
        code: "E0822",
        title: "a model that is not one feature tensor in, one row out",
        text: "A library built by `kiln build` has one entry point, `NAME_predict(ctx, x, batch, \
               y)`: `x` holds f32 features, one row per sample, and `y` receives one row of \
               values per sample, as `kiln predict` reads a data file and writes its \
               predictions. A model with several inputs, an integer input (token or category \
               ids, which the data's vocabulary would have to produce) or an output that is not \
               one `[batch, M]` tensor does not fit that shape and is refused.",
        example: None,
    },
    Explanation {
        code: "E0840",
        title: "a tensor too large for any machine",
        text: "A tensor of the model holds more than 2^45 elements per sample (128 TiB of f32, \
               the whole address space of a 64-bit process), or so many that the product of its \
               dimensions overflows. No memory could hold it, so the model is refused when it is \
               checked rather than counted wrongly. A dimension is usually far larger than \
               intended, or a `flatten` multiplies several large ones.",
        example: Some(
            "model m(x: f32[B, 2097152, 2097152, 2097152, 4]) -> f32[B, 3] {\n    flatten()\n    dense(3, softmax)\n}\n",
        ),
    },
    Explanation {
        code: "E0841",
        title: "not enough memory to train the model",
        text: "Before a fit compiles its step, Kiln estimates the memory training will need from \
               the model's sizes: the weights, their gradients and the optimizer's state in the \
               step, activations and their gradients for one batch, and the copies of weights \
               and state kept between epochs and after training. It compares that with what the \
               process may use: the smaller of the machine's available memory (MemAvailable in \
               /proc/meminfo) and what an address-space limit (RLIMIT_AS, set by `ulimit -v` or \
               `prlimit --as`) leaves. When the estimate is larger the fit is refused at once, \
               naming the largest tensors, instead of training and then failing to save. Use \
               fewer or smaller layers, a smaller batch, or an optimizer with less state.",
        example: None,
    },
    Explanation {
        code: "E0842",
        title: "out of memory after training",
        text: "Copying the trained weights or optimizer state out of the training step failed \
               for lack of memory (other programs took it during training, since the estimate \
               behind E0841 passed). The run stops with this error instead of aborting; \
               checkpoints written by callbacks during training are kept. During training the \
               same failure (copying the weights at the start of an epoch, or the best weights) \
               and encoding a checkpoint are reported as errors too.",
        example: None,
    },
    Explanation {
        code: "E0880",
        title: "the ranks of a distributed run disagree",
        text: "`mpirun -n N kiln run --distributed FILE` trains one model on N processes, each \
               running the same program on the same data and taking its slice of every batch. \
               Before the first step every rank hashes what it is about to train — the compiled \
               training step, the training data (its size and every value), the batch, epochs \
               and seed, and the starting weights — and the ranks compare the hashes. When one \
               differs (another version of the program or of the data on one machine, a \
               different --load or --init) every rank stops with this error instead of training \
               a model that is no model at all. Give every rank the same files: one path on a \
               shared file system, or identical copies at the same path on each machine.",
        example: None,
    },
    Explanation {
        code: "E0881",
        title: "the ranks ended a distributed fit with different weights",
        text: "Data-parallel training sums the gradients of all ranks in one fixed order and \
               every rank applies the same update to the same sum, so every rank holds the same \
               bits after every step. After each distributed fit the ranks compare a hash of \
               their weights; if they differ, that promise was broken by a bug in Kiln or in the \
               MPI library, not by the program. Please report it with the program and the \
               mpirun line.",
        example: None,
    },
    Explanation {
        code: "E0900",
        title: "internal compiler error",
        text: "A compiler stage produced something the next stage rejects (e.g. the IR \
               verifier found a problem after a pass). This is a bug in Kiln: please report it \
               with the program that caused it.",
        example: None,
    },
    Explanation {
        code: "E0901",
        title: "cannot compile to native code",
        text: "Code generation failed, usually because the program's sizes are too large to \
               plan memory for (e.g. a layer with billions of units).",
        example: None,
    },
    Explanation {
        code: "W0101",
        title: "unused data set",
        text: "A data set is declared but no `fit` (or other statement) uses it.",
        example: Some("data d = synthetic_classification(samples: 10, features: 4, classes: 2)\n"),
    },
    Explanation {
        code: "W0102",
        title: "unused binding",
        text: "A `let` inside a model or function defines a value nothing reads. Name it with a \
               leading underscore to keep it without the warning.",
        example: Some(model!("    let unused = dense(3)(x)\n    dense(2)\n")),
    },
    Explanation {
        code: "W0103",
        title: "unused layer parameter",
        text: "A layer declares a parameter its `forward` never reads. It does not reach the \
               loss, so its gradient is zero and training never changes it.",
        example: Some(concat!(
            "layer l(n: int) {\n    param w: f32[n, n]\n    param b: f32[n] = zeros\n    forward(x: f32[B, n]) -> f32[B, n] { x @ w }\n}\n",
            model!("    l(4)\n    dense(2)\n")
        )),
    },
    Explanation {
        code: "W0106",
        title: "parameter does not reach the output",
        text: "A layer's parameters feed nothing the model returns (typically a layer whose \
               result is unused). Their gradient is zero, so training never changes them.",
        example: Some(model!("    let _unused = dense(3)(x)\n    dense(2)\n")),
    },
    Explanation {
        code: "W0107",
        title: "softmax over one unit",
        text: "The model's output is a softmax over a last axis of one unit. Softmax divides \
               each score's exponential by the sum over the axis, so over one unit it is 1.0 \
               for every input: the model cannot learn anything. Two classes take \
               `dense(1, sigmoid)` with `binary_crossentropy` (or `dense(2, softmax)`), a \
               real-valued target `dense(1)` with `mean_squared_error`.",
        example: Some("model m(x: f32[B, 4]) -> f32[B, 1] {\n    dense(1, softmax)\n}\n"),
    },
    Explanation {
        code: "W0108",
        title: "a layer drops a padding mask",
        text: "`embedding(..., mask_zero: true)` marks padded steps, and the layers that \
               support masking skip them (the recurrent layers, attention, \
               `global_average_pooling1d`) or pass the mask on (`dense`, `dropout`, \
               `layer_normalization`, activations, arithmetic). Any other built-in (`conv1d`, \
               `flatten`, `reshape`, `global_max_pooling1d`, …) neither reads nor keeps it, so \
               from there on padded steps count as data, as in Keras, which warns \
               \"this layer does not support masking and will therefore destroy the mask \
               information\". Read the mask before such a layer, or leave out `mask_zero` if \
               the padding should count.",
        example: Some(
            "model m(tokens: i32[B, 6]) -> f32[B, 2] {\n    embedding(10, 4, mask_zero: true)\n    flatten\n    dense(2, softmax)\n}\n",
        ),
    },
    Explanation {
        code: "W0104",
        title: "layer after softmax",
        text: "A layer reads the output of a softmax. Softmax turns scores into probabilities \
               and belongs on the last layer; a layer after it usually means the softmax is on \
               the wrong line.",
        example: Some(model!("    dense(4, softmax)\n    dense(2, softmax)\n")),
    },
    Explanation {
        code: "W0105",
        title: "unused definition",
        text: "A top-level layer, function or constant no model uses. Layers and functions are \
               checked where they are used, so an unused one has not been checked.",
        example: Some(concat!("fn twice(x) = x * 2\n", model!("    dense(2)\n"))),
    },
];
