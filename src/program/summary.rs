//! The Keras-style model summary (`kiln check --summary`, `kiln dump --stage check`): each layer
//! with its output shape (batch symbolic) and parameter count, then the totals — parameters
//! (and how many of them are non-trainable), optimizer state (for the trainable ones), and
//! activation memory as a function of the batch size.

use super::Model;
use crate::ir::shape::{per_sample, type_text};
use crate::settings::Optimizer;
use std::fmt::Write;

pub fn summary(model: &Model, optimizer: Option<&Optimizer>) -> String {
    let b = model.batch_symbol.as_str();
    let inputs: Vec<String> = model
        .inputs
        .iter()
        .map(|(name, ty)| format!("{name}: {}", type_text(ty, b)))
        .collect();
    let outputs: Vec<String> = model.outputs.iter().map(|t| type_text(t, b)).collect();
    let outputs = if outputs.len() == 1 {
        outputs[0].clone()
    } else {
        format!("({})", outputs.join(", "))
    };
    let mut rows: Vec<[String; 3]> = model
        .inputs
        .iter()
        .map(|(name, ty)| {
            [
                cell(format!("{name} (input)")),
                cell(type_text(ty, b)),
                "0".to_string(),
            ]
        })
        .collect();
    for row in &model.summary {
        let shapes: Vec<String> = row.outputs.iter().map(|t| type_text(t, b)).collect();
        rows.push([
            cell(format!("{} ({})", row.name, row.kind)),
            cell(shapes.join(", ")),
            thousands(row.params),
        ]);
    }
    let header = [
        "layer (kind)".to_string(),
        "output shape".to_string(),
        "params".to_string(),
    ];
    let w0 = rows
        .iter()
        .chain([&header])
        .map(|r| r[0].len())
        .max()
        .unwrap_or(0);
    let w1 = rows
        .iter()
        .chain([&header])
        .map(|r| r[1].len())
        .max()
        .unwrap_or(0);
    let w2 = rows
        .iter()
        .chain([&header])
        .map(|r| r[2].len())
        .max()
        .unwrap_or(0);
    let rule = "─".repeat(w0 + w1 + w2 + 4);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "model {}({}) -> {outputs}",
        model.name,
        inputs.join(", ")
    );
    let _ = writeln!(
        out,
        "  {:w0$}  {:w1$}  {:>w2$}",
        header[0], header[1], header[2]
    );
    let _ = writeln!(out, "  {rule}");
    for [name, shape, params] in &rows {
        let _ = writeln!(out, "  {name:w0$}  {shape:w1$}  {params:>w2$}");
    }
    let _ = writeln!(out, "  {rule}");
    let params = model.param_count();
    let trainable = model.trainable_param_count();
    // Keras's summary counts non-trainable weights in the total and names them apart.
    let fixed = match params - trainable {
        0 => String::new(),
        n => format!(", of which {} non-trainable", thousands(n)),
    };
    let _ = writeln!(
        out,
        "  parameters       {} ({}){fixed}",
        thousands(params),
        bytes(params as f64 * 4.0)
    );
    if let Some(optimizer) = optimizer {
        let name = optimizer.state_text();
        let state = optimizer.state_count(trainable);
        let _ = writeln!(
            out,
            "  optimizer state  {} ({}; {name})",
            thousands(state),
            bytes(state as f64 * 4.0)
        );
    }
    let activations = activation_floats(model);
    let _ = writeln!(
        out,
        "  activations      {} per sample ({} × {b}, forward pass)",
        thousands(activations),
        bytes(activations as f64 * 4.0)
    );
    out
}

/// f32 values per sample the forward pass computes (every non-leaf node that has the batch
/// dimension; reshapes share their input's buffer).
pub(super) fn activation_floats(model: &Model) -> usize {
    model
        .forward
        .nodes
        .iter()
        .filter(|n| !n.op.is_leaf() && n.ty.shape.has_batch() && !n.op.is_view())
        .map(|n| per_sample(&n.ty.shape))
        .fold(0usize, usize::saturating_add)
}

/// A table cell as printed: names and shapes come from the program and may be any length, but
/// a padding width past 65,535 is out of `format!`'s range (a 150 KB layer name panicked).
fn cell(text: String) -> String {
    const MAX: usize = 100;
    match text.char_indices().nth(MAX) {
        None => text,
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn bytes(n: f64) -> String {
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else {
        format!("{:.1} GiB", n / (1024.0 * 1024.0 * 1024.0))
    }
}
