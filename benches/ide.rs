//! The language server's work on a 2,000-line program (`cargo bench --bench ide`): analysing a
//! buffer (parse and check, what every change costs), then hover, completion and inlay hints on
//! the analysis (what each request costs). The bound: a hover answered in under 50 ms.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kiln::ide::Analysis;

/// A program of `models` residual classifiers, each trained by its own `fit`: 20 lines each.
fn program(models: usize) -> String {
    let mut out = String::from(
        "data d = synthetic_classification(samples: 100, features: 32, classes: 10)\n\n",
    );
    for i in 0..models {
        out.push_str(&format!(
            "# Classifier {i}: three dense layers with a skip connection.
model m{i}(x: f32[B, 32]) -> f32[B, 10] {{
    let h = dense(64, relu)(x)
    let g = dense(64, relu)(h) + h
    let k = dropout(g, 0.25)
    let s = dense(32, tanh)(k)
    dense(10, softmax)(s)
}}

fit m{i} on d {{
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 0.001)
    metrics   [accuracy]
    epochs    1
    batch     32
    seed      {i}
}}

evaluate m{i} on d

"
        ));
    }
    out
}

fn ide(c: &mut Criterion) {
    let source = program(100);
    let lines = source.lines().count();
    assert!(lines >= 2000, "{lines} lines");
    let analysis = Analysis::new(&source);
    assert!(
        analysis.diagnostics().iter().all(|d| !d.is_error()),
        "{:?}",
        analysis.diagnostics()
    );
    let layer = source.rfind("dense(32, tanh)").unwrap() + 2;
    let hover = analysis.hover(layer).expect("a hover");
    assert!(hover.markdown.contains("f32[B, 32]"), "{}", hover.markdown);
    let typing = source.rfind("dense(64, ").unwrap() + "dense(64, ".len();

    let mut group = c.benchmark_group(format!("ide_{lines}_lines"));
    group.bench_function("analysis", |b| b.iter(|| Analysis::new(black_box(&source))));
    group.bench_function("hover", |b| b.iter(|| analysis.hover(black_box(layer))));
    group.bench_function("analysis_then_hover", |b| {
        b.iter(|| Analysis::new(black_box(&source)).hover(layer))
    });
    group.bench_function("completion", |b| {
        b.iter(|| analysis.completions(black_box(typing)))
    });
    group.bench_function("inlay_hints", |b| b.iter(|| analysis.inlay_hints()));
    group.finish();
}

criterion_group!(benches, ide);
criterion_main!(benches);
