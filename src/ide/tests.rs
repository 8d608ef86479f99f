use super::*;

const CNN: &str = include_str!("../../programs/mnist_cnn.model");
const CO2: &str = include_str!("../../programs/co2.model");
const RESIDUAL: &str = include_str!("../../programs/digits_residual.model");

fn at(source: &str, needle: &str) -> usize {
    source
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in the source"))
}

#[test]
fn hover_on_a_layer_line_shows_its_output_and_parameters() {
    let analysis = Analysis::new(CNN);
    let hover = analysis.hover(at(CNN, "conv2d(32") + 2).unwrap();
    assert!(
        hover.markdown.contains("conv2d -> f32[B, 26, 26, 32]"),
        "{}",
        hover.markdown
    );
    assert!(
        hover.markdown.contains("320 parameters"),
        "{}",
        hover.markdown
    );
    // The built-in's signature and doc line, from its definition.
    assert!(
        hover.markdown.contains("a built-in layer"),
        "{}",
        hover.markdown
    );
}

#[test]
fn hover_on_a_value_shows_its_type() {
    let analysis = Analysis::new(CO2);
    let offset = at(CO2, "let hidden") + 5;
    let hover = analysis.hover(offset).unwrap();
    assert!(
        hover.markdown.contains("hidden: f32[B, 32]"),
        "{}",
        hover.markdown
    );
    let hover = analysis.hover(at(CO2, "x - last") + 5).unwrap();
    assert!(
        hover.markdown.contains("last: f32[B, 1]"),
        "{}",
        hover.markdown
    );
}

#[test]
fn inlay_hints_give_each_model_line_its_shape() {
    let analysis = Analysis::new(CNN);
    let labels: Vec<String> = analysis
        .inlay_hints()
        .into_iter()
        .map(|h| h.label)
        .collect();
    assert_eq!(
        labels,
        [
            "f32[B, 26, 26, 32]  (320 params)",
            "f32[B, 13, 13, 32]",
            "f32[B, 11, 11, 64]  (18,496 params)",
            "f32[B, 5, 5, 64]",
            "f32[B, 1600]",
            "f32[B, 1600]",
            "f32[B, 10]  (16,010 params)",
        ]
    );
}

#[test]
fn definitions_and_references_follow_the_checkers_scopes() {
    let analysis = Analysis::new(RESIDUAL);
    // `hidden` in `dense(hidden, swish)` is the top-level `let`.
    let used = at(RESIDUAL, "dense(hidden") + 7;
    let def = analysis.definition(used).unwrap();
    assert_eq!(&RESIDUAL[def.start..def.end], "hidden");
    assert_eq!(def.start, at(RESIDUAL, "let hidden") + 4);
    let refs = analysis.references(used, true);
    assert_eq!(refs.len(), 3, "{refs:?}");
    // A layer's own `units` inside its types, and its `param w` in `forward`.
    let w = at(RESIDUAL, "x @ w") + 4;
    assert_eq!(
        analysis.definition(w).unwrap().start,
        at(RESIDUAL, "param w") + 6
    );
    // The model named by a fit.
    let fit = at(RESIDUAL, "fit net") + 4;
    assert_eq!(
        analysis.definition(fit).unwrap().start,
        at(RESIDUAL, "model net") + 6
    );
}

#[test]
fn completion_after_a_layers_activation_position_offers_activations() {
    let source = "model m(x: f32[B, 4]) -> f32[B, 2] {\n    dense(64, \n}\n";
    let analysis = Analysis::new(source);
    let offset = at(source, "dense(64, ") + "dense(64, ".len();
    let labels: Vec<String> = analysis
        .completions(offset)
        .into_iter()
        .map(|c| c.label)
        .collect();
    for expected in ["relu", "softmax", "sigmoid", "leaky_relu", "activation:"] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected}: {labels:?}"
        );
    }
    assert!(
        !labels.iter().any(|l| l == "dense" || l == "adam"),
        "{labels:?}"
    );
}

#[test]
fn completion_in_a_fit_offers_settings_then_their_values() {
    let source = "fit m on d {\n    lo\n    optimizer ad\n}\n";
    let analysis = Analysis::new(source);
    let labels = |offset| -> Vec<String> {
        analysis
            .completions(offset)
            .into_iter()
            .map(|c| c.label)
            .collect()
    };
    assert_eq!(labels(at(source, "lo") + 2), ["loss"]);
    let optimizers = labels(at(source, "ad\n") + 2);
    assert!(optimizers.contains(&"adam".to_string()), "{optimizers:?}");
    assert!(optimizers.contains(&"adamw".to_string()), "{optimizers:?}");
}

#[test]
fn symbols_outline_the_program() {
    let analysis = Analysis::new(RESIDUAL);
    let names: Vec<String> = analysis.symbols().into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "digits",
            "hidden",
            "residual",
            "swish",
            "net",
            "fit net on digits"
        ]
    );
}

#[test]
fn positions_count_utf16_units() {
    let index = LineIndex::new("a\n# é𝄞x\nb");
    let x = "a\n# é𝄞".len();
    let p = index.position(x);
    assert_eq!((p.line, p.character), (1, 5));
    assert_eq!(index.offset(p), x);
    assert_eq!(
        index.offset(Position {
            line: 9,
            character: 0
        }),
        "a\n# é𝄞x\nb".len()
    );
}

/// Diagnostics are `kiln check`'s, golden case by golden case.
#[test]
fn diagnostics_are_what_kiln_check_reports() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut sources: Vec<String> = Vec::new();
    for stage in std::fs::read_dir(root).unwrap() {
        for outcome in ["ok", "err"] {
            let dir = stage.as_ref().unwrap().path().join(outcome);
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "model") {
                    sources.push(std::fs::read_to_string(path).unwrap());
                }
            }
        }
    }
    assert!(sources.len() > 100, "{} golden cases", sources.len());
    let more = [CNN, CO2, "data x = \n"];
    for source in sources.iter().map(String::as_str).chain(more) {
        let expected = match crate::driver::check_source(source) {
            Ok(checked) => checked.warnings,
            Err(errors) => errors,
        };
        assert_eq!(Analysis::new(source).diagnostics(), expected.as_slice());
    }
}

/// The front end's fuzz corpus (the syntax tests' mutations of real programs) through every
/// query at random places: answers or nothing, never a panic.
#[test]
fn never_panics_on_mutated_programs() {
    use crate::syntax::tests::{XorShift, mutate};
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for seed in [
        CNN,
        CO2,
        RESIDUAL,
        include_str!("../../tests/golden/check/ok/builtins.model"),
    ] {
        for _ in 0..60 {
            let source = mutate(&mut rng, seed);
            let analysis = Analysis::new(&source);
            let _ = analysis.inlay_hints();
            let _ = analysis.symbols();
            let _ = analysis.formatted();
            for _ in 0..4 {
                let offset = rng.below(source.len() + 2);
                let _ = analysis.hover(offset);
                let _ = analysis.completions(offset);
                let _ = analysis.references(offset, true);
                let position = analysis.lines().position(offset);
                assert!(analysis.lines().offset(position) <= source.len());
            }
        }
    }
}

#[test]
fn completion_knows_arguments_sources_initializers_and_schedules() {
    let layer = "layer scaled(units: int, factor: float = 2.0) {\n    forward(x) { x }\n}\nmodel m(x: f32[B, 4]) -> f32[B, 4] {\n    scaled(\n}\n";
    let cases: [(&str, &str, &[&str]); 6] = [
        (layer, "    scaled(", &["units:", "factor:"]),
        (
            "data d = ",
            "data d = ",
            &["csv", "idx", "synthetic_classification"],
        ),
        (
            "fit m on d {\n    optimizer adam(\n}\n",
            "adam(",
            &["lr:", "beta1:"],
        ),
        (
            "fit m on d {\n    optimizer adam(lr: \n}\n",
            "lr: ",
            &["cosine_decay"],
        ),
        (
            "model m(x: f32[B, 4]) -> f32[B, 2] {\n    dense(2, kernel_initializer: \n}\n",
            "kernel_initializer: ",
            &["he_normal", "glorot_uniform", "zeros"],
        ),
        (
            "model m(x: f32[B, 4, 4, 1]) -> f32[B, 2] {\n    conv2d(2, 3, padding: \n}\n",
            "padding: ",
            &["\"same\"", "\"valid\""],
        ),
    ];
    for (source, after, expected) in cases {
        let analysis = Analysis::new(source);
        let offset = at(source, after) + after.len();
        let labels: Vec<String> = analysis
            .completions(offset)
            .into_iter()
            .map(|c| c.label)
            .collect();
        for e in expected {
            assert!(
                labels.iter().any(|l| l == e),
                "{source:?}: {e} not in {labels:?}"
            );
        }
    }
}
