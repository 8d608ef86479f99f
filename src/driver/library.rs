//! `kiln build`: a bundle's model as a C library. This module makes the library's parts in
//! memory — the object file of the compiled inference graph with the weights
//! (`codegen::library`), the C wrapper that gives it an API, and the header — and the CLI writes
//! them and links them with the system's `cc` into `libNAME.a` and `libNAME.so`.
//!
//! The library computes what `kiln predict` writes, from the same numbers: the graph is the one
//! `predict` runs (`inference_graph`, the model's scores), the wrapper divides raw features by
//! the data's `scale` and standardizes them with the training statistics in `predict`'s f32
//! arithmetic, and turns logits into probabilities with `predict`'s softmax (in double, over
//! libm's `exp`, which is what Rust's `f64::exp` calls). Only the larger matrix products
//! differ: the library's `kiln_sgemm` is C (`codegen/library_support.c`) adding each sum in
//! order, where `predict`'s splits `k` into blocks with FMAs, so the last bits differ.

use std::fmt::Write;

use crate::codegen::CodegenConfig;
use crate::codegen::library::{self, LibraryError, LibraryObject};
use crate::diag::Diagnostic;
use crate::ir::{DType, Dim, dce, lower};
use crate::settings::DataSource;

use super::bundle::{OpenBundle, source_for};
use super::inference_graph;
use super::run::{RunError, ScoresReading, program_error, some_fit};

/// The largest batch one call of the step runs by default; `NAME_predict` takes any batch and
/// runs it in pieces of at most this many rows.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// A library's parts, for the CLI to write and link.
pub struct NativeLibrary {
    /// The C prefix of every name (`NAME_predict`, `libNAME.a`).
    pub name: String,
    /// `NAME.h`.
    pub header: String,
    /// The C wrapper (`NAME_kiln.c`): the API over the step.
    pub wrapper: String,
    /// The compiled step and weights (`NAME_kiln.o`).
    pub object: Vec<u8>,
    /// The C source of the runtime support the step calls, compiled for this machine.
    pub support: &'static str,
    /// The symbols the shared library exports.
    pub exports: Vec<String>,
    pub features: usize,
    pub outputs: usize,
}

/// Whether `name` can prefix C identifiers: an identifier, and not a keyword.
pub fn is_c_identifier(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
        "union", "unsigned", "void", "volatile", "while", "bool", "true", "false",
    ];
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}

/// The library of the bundled model, its names prefixed with `name`, stepping at most
/// `max_batch` rows at a time. E0821: a layer whose kernel the library cannot hold; E0822: a
/// model that is not one f32 feature tensor in, one row of values per sample out.
pub fn build_library(
    open: &OpenBundle,
    name: &str,
    max_batch: usize,
    origin: &str,
) -> Result<NativeLibrary, RunError> {
    let program = &open.program;
    let model = &program.models[open.model];
    let fit = some_fit(program, open.model);
    let unfit = |why: String| {
        RunError::Program(vec![
            Diagnostic::error(
                "E0822",
                format!(
                    "the model '{}' cannot be built into a library: {why}",
                    model.name
                ),
            )
            .primary(model.span, "this model")
            .note(
                "a library's `NAME_predict` takes one f32 feature tensor, a row per sample, \
                 and writes one row of values per sample, as `kiln predict` reads a data file",
            ),
        ])
    };
    if model.inputs.len() != 1 {
        return Err(unfit(format!("it has {} inputs", model.inputs.len())));
    }
    if model.inputs[0].1.dtype != DType::F32 {
        return Err(unfit(
            "its input holds integer ids (token or category ids), not f32 features".into(),
        ));
    }
    if model.outputs.len() != 1 || model.outputs[0].shape.rank() != 2 {
        return Err(unfit("its output is not one [batch, M] tensor".into()));
    }

    let mut graph = inference_graph(program, &fit).map_err(program_error)?;
    // Only the scores: the loss (and the labels it reads) is dead code here.
    graph.outputs.retain(|(name, _)| name == lower::SCORES);
    let graph = dce::eliminate_dead_code(&graph);
    let reading = ScoresReading::of(model, &fit);
    let outputs = match graph.output(lower::SCORES).map(|v| graph.shape(v).dims()) {
        Some([Dim::Batch, Dim::Fixed(n)]) => *n,
        _ => return Err(unfit("its scores are not one row per sample".into())),
    };
    let state = open.state();
    let compiled = library::compile_library(
        &graph,
        &state.params,
        lower::FEATURES,
        lower::SCORES,
        name,
        &CodegenConfig {
            max_batch: max_batch.max(1),
        },
    )
    .map_err(|e| match e {
        LibraryError::Unsupported { op, span } => {
            let what = super::bundle::layer_of(model, span);
            let d = Diagnostic::error(
                "E0821",
                format!(
                    "{what} cannot be built into a library: it computes `{op}`, whose kernel is \
                     native code inside Kiln that a library does not carry"
                ),
            )
            .note(
                "`kiln build` compiles dense, convolution, pooling, normalization and attention \
                 layers and the element-wise and reshaping ops; recurrent layers \
                 (`kiln_recurrence`) and the windowed ops' gradients run native kernels of \
                 Kiln's runtime that have no counterpart in the library",
            )
            .help("`kiln export` writes the model as ONNX, and `kiln predict` runs the bundle");
            let d = match span {
                Some(span) => d.primary(span, "this cannot be in a library"),
                None => d,
            };
            RunError::Program(vec![d])
        }
        LibraryError::Codegen(e) => RunError::Program(vec![Diagnostic::error(
            "E0901",
            format!("code generation failed: {e}"),
        )]),
    })?;

    let standardization = state.standardization.as_ref().map(|s| (&s.mean, &s.std));
    let scale = feature_scale(open);
    let features = model.input_features;
    let layout = Layout {
        name,
        features,
        outputs,
        max_batch: max_batch.max(1),
        scale,
        standardized: standardization.is_some(),
        reading: &reading,
        compiled: &compiled,
    };
    let exports = ["init", "predict", "free", "version"]
        .iter()
        .map(|f| format!("{name}_{f}"))
        .collect();
    Ok(NativeLibrary {
        name: name.to_string(),
        header: header(&layout, &model.name, &model.inputs[0].1, origin),
        wrapper: wrapper(&layout, standardization),
        object: compiled.object.clone(),
        support: library::SUPPORT_C,
        exports,
        features,
        outputs,
    })
}

/// What `kiln predict` divides a data file's features by: the training data's `scale`.
fn feature_scale(open: &OpenBundle) -> f32 {
    let trained_on = open
        .fit
        .map(|f| &open.program.data[open.program.fits[f].data].source);
    match source_for(trained_on, std::path::Path::new("")) {
        DataSource::Csv { scale, .. }
        | DataSource::Idx { scale, .. }
        | DataSource::Npy { scale, .. }
        | DataSource::Npz { scale, .. } => scale,
        _ => 1.0,
    }
}

/// What the header and the wrapper are written from.
struct Layout<'a> {
    name: &'a str,
    features: usize,
    outputs: usize,
    max_batch: usize,
    scale: f32,
    standardized: bool,
    reading: &'a ScoresReading,
    compiled: &'a LibraryObject,
}

/// An f32 as a C expression with exactly its value (a bit pattern turned back into a float
/// would need a union; a decimal with 9 significant digits round-trips).
fn c_float(v: f32) -> String {
    if v.is_finite() {
        format!("{v:.8e}f")
    } else if v.is_nan() {
        "NAN".into()
    } else if v > 0.0 {
        "INFINITY".into()
    } else {
        "(-INFINITY)".into()
    }
}

fn header(layout: &Layout, model: &str, input: &crate::ir::TensorType, origin: &str) -> String {
    let n = layout.name;
    let u = n.to_ascii_uppercase();
    let what = if layout.reading.classifier {
        format!(
            "the {} class probabilities (what `kiln predict` writes as prob_0…prob_{}); the \
             predicted class is their argmax, the first on ties",
            layout.outputs,
            layout.outputs.saturating_sub(1)
        )
    } else if layout.reading.logits {
        "probabilities (a softmax over the row)".to_string()
    } else {
        "the model's outputs (what `kiln predict` writes as output_0…)".to_string()
    };
    let preprocessing = match (layout.scale != 1.0, layout.standardized) {
        (false, false) => {
            "The features go in as they are (the model was trained on them so).".to_string()
        }
        (true, false) => format!(
            "The library divides each feature by {u}_SCALE, as reading the training data did, \
             so pass the values as the data file holds them."
        ),
        (false, true) => "The library standardizes each feature with the training data's mean \
                          and standard deviation, so pass raw values."
            .to_string(),
        (true, true) => format!(
            "The library divides each feature by {u}_SCALE and then standardizes it with the \
             training data's mean and standard deviation, so pass the values as the data file \
             holds them."
        ),
    };
    let shape = (input.shape.dims().iter())
        .map(|d| match d {
            Dim::Batch => "batch".to_string(),
            Dim::Fixed(k) => k.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let notes = [
        format!(
            "{n}.h: the Kiln model `{model}` as a C library (lib{n}.a, lib{n}.so), generated by \
             `kiln build` (Kiln {}) from {origin}.",
            env!("CARGO_PKG_VERSION")
        ),
        String::new(),
        format!("Link:   cc app.c -I DIR DIR/lib{n}.a -lm   (static)"),
        format!("        cc app.c -I DIR -L DIR -l{n} -lm   (shared: needs libc and libm only)"),
        "The code is compiled for the CPU features of the machine that ran `kiln build` (like \
         -march=native): rebuild the library for another machine."
            .to_string(),
        String::new(),
        format!(
            "Input:  {u}_FEATURES floats per sample, the samples one after another (the model's \
             input is [{shape}], row-major). {preprocessing}"
        ),
        format!("Output: {u}_OUTPUTS floats per sample: {what}."),
        String::new(),
        format!("Use:    {n}_ctx *ctx = {n}_init();   once; NULL when out of memory"),
        format!(
            "        {n}_predict(ctx, x, batch, y);   any batch >= 0; 0, or -1 for bad arguments"
        ),
        format!("        {n}_free(ctx);"),
        format!(
            "A context owns every buffer the model needs ({u}_ARENA_BYTES, a copy of the weights \
             included), allocated by {n}_init; {n}_predict allocates nothing and runs on the \
             calling thread. Contexts are independent: use one per thread (a context must not be \
             used by two threads at once)."
        ),
    ];
    let mut h = String::from("/*\n");
    for note in &notes {
        for line in wrap(note, 92) {
            h.push_str(&format!(" * {line}\n").replace(" * \n", " *\n"));
        }
    }
    let _ = write!(
        h,
        " */
#ifndef {u}_H
#define {u}_H

#include <stdint.h>

#ifdef __cplusplus
extern \"C\" {{
#endif

#define {u}_MODEL \"{model}\"
#define {u}_FEATURES {features}
#define {u}_OUTPUTS {outputs}
#define {u}_IS_CLASSIFIER {classifier}
#define {u}_SCALE {scale}
#define {u}_STANDARDIZED {standardized}
/* Rows the compiled step runs at once; larger batches run in pieces of this size. */
#define {u}_MAX_BATCH {max_batch}
#define {u}_ARENA_BYTES {arena}

typedef struct {n}_ctx {n}_ctx;

{n}_ctx *{n}_init(void);
int {n}_predict({n}_ctx *ctx, const float *x, int64_t batch, float *y);
void {n}_free({n}_ctx *ctx);
/* The Kiln version that built the library. */
const char *{n}_version(void);

#ifdef __cplusplus
}}
#endif

#endif
",
        features = layout.features,
        outputs = layout.outputs,
        classifier = u8::from(layout.reading.classifier),
        scale = c_float(layout.scale),
        standardized = u8::from(layout.standardized),
        max_batch = layout.max_batch,
        arena = arena_bytes(layout.compiled),
    );
    h
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    if text.len() <= width {
        return vec![text.to_string()];
    }
    // `Input:` and `Output:` paragraphs continue under their text.
    let indent = if text.starts_with("Input:") || text.starts_with("Output:") {
        8
    } else {
        0
    };
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.trim().is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            line = " ".repeat(indent);
        }
        if !line.trim().is_empty() {
            line.push(' ');
            if indent > 0 && lines.is_empty() && line.len() < indent {
                line = format!("{line:indent$}");
            }
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// The f32 arena in bytes, rounded up to the 64-byte alignment it is allocated with.
fn arena_bytes(compiled: &LibraryObject) -> usize {
    (compiled.f32_len * 4).div_ceil(64).max(1) * 64
}

fn wrapper(layout: &Layout, standardization: Option<(&Vec<f32>, &Vec<f32>)>) -> String {
    let n = layout.name;
    let u = n.to_ascii_uppercase();
    let c = layout.compiled;
    let mut params: Vec<String> = (c.params.iter())
        .map(|(offset, len)| format!("{{{offset}, {len}}}"))
        .collect();
    // C has no empty initializer list; a model without weights copies nothing.
    if params.is_empty() {
        params.push("{0, 0}".into());
    }
    let floats = |values: &[f32]| {
        values
            .iter()
            .map(|v| c_float(*v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut prepare = String::new();
    if layout.scale != 1.0 {
        prepare.push_str(&format!("            v /= {};\n", c_float(layout.scale)));
    }
    let mut statistics = String::new();
    if let Some((mean, std)) = standardization {
        statistics = format!(
            "static const float mean[{f}] = {{{}}};\nstatic const float stdev[{f}] = {{{}}};\n",
            floats(mean),
            floats(std),
            f = layout.features,
        );
        prepare.push_str("            v = (v - mean[j]) / stdev[j];\n");
    }
    let finish = if layout.reading.logits {
        format!(
            "        for (int64_t r = 0; r < rows; r++)\n            softmax_row(ys + r * {u}_OUTPUTS);\n"
        )
    } else {
        String::new()
    };
    format!(
        "/* Generated by `kiln build`: the C API of lib{n} over the compiled step. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include \"{n}.h\"

#define API __attribute__((visibility(\"default\")))

/* The compiled inference graph: reads the features and writes the output at fixed offsets of
   the arena (planned for {u}_MAX_BATCH rows), for `batch` rows. */
void {step}(float *arena, int32_t *iarena, int64_t batch);
/* Every parameter's values, one after another, read-only. */
extern const float {weights}[];

static const struct {{ size_t offset, len; }} params[] = {{{params}}};
{statistics}
struct {n}_ctx {{
    void *block; /* the arena's allocation */
    float *arena; /* its first 64-byte boundary */
    int32_t *iarena;
}};

API const char *{n}_version(void) {{ return \"{version}\"; }}

API void {n}_free({n}_ctx *ctx) {{
    if (!ctx) return;
    free(ctx->block);
    free(ctx->iarena);
    free(ctx);
}}

API {n}_ctx *{n}_init(void) {{
    {n}_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    /* calloc: a large arena comes from fresh pages, zero without being written here. */
    ctx->block = calloc(1, {u}_ARENA_BYTES + 64);
    ctx->iarena = calloc({i32_len}, sizeof(int32_t));
    if (!ctx->block || !ctx->iarena) {{
        {n}_free(ctx);
        return NULL;
    }}
    ctx->arena = (float *)(((uintptr_t)ctx->block + 63) & ~(uintptr_t)63);
    const float *w = {weights};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {{
        memcpy(ctx->arena + params[i].offset, w, params[i].len * sizeof(float));
        w += params[i].len;
    }}
    return ctx;
}}

/* `kiln predict`'s softmax: the largest score subtracted in float, exp and the sum in double. */
static void softmax_row(float *row) {{
    float max = -INFINITY;
    for (int j = 0; j < {u}_OUTPUTS; j++) max = fmaxf(max, row[j]);
    double e[{u}_OUTPUTS];
    double sum = 0.0;
    for (int j = 0; j < {u}_OUTPUTS; j++) {{
        e[j] = exp((double)(row[j] - max));
        sum += e[j];
    }}
    for (int j = 0; j < {u}_OUTPUTS; j++) row[j] = (float)(e[j] / sum);
}}

API int {n}_predict({n}_ctx *ctx, const float *x, int64_t batch, float *y) {{
    if (!ctx || batch < 0 || (batch > 0 && (!x || !y))) return -1;
    for (int64_t start = 0; start < batch; start += {u}_MAX_BATCH) {{
        int64_t rows = batch - start < {u}_MAX_BATCH ? batch - start : {u}_MAX_BATCH;
        const float *xs = x + start * {u}_FEATURES;
        float *in = ctx->arena + {input};
        for (int64_t r = 0; r < rows; r++) {{
            for (int j = 0; j < {u}_FEATURES; j++) {{
                float v = xs[r * {u}_FEATURES + j];
{prepare}                in[r * {u}_FEATURES + j] = v;
            }}
        }}
        {step}(ctx->arena, ctx->iarena, rows);
        float *ys = y + start * {u}_OUTPUTS;
        memcpy(ys, ctx->arena + {output}, (size_t)rows * {u}_OUTPUTS * sizeof(float));
{finish}    }}
    return 0;
}}
",
        step = c.step_symbol,
        weights = c.weights_symbol,
        params = params.join(", "),
        version = env!("CARGO_PKG_VERSION"),
        i32_len = c.i32_len.max(1),
        input = c.input,
        output = c.output,
    )
}
