//! `text_windows` and `generate` end to end: a tiny character model learns a repeating text,
//! continues it from a prompt, draws the same text again from the same seed, and draws it the
//! same after its weights and vocabulary went through a checkpoint.

mod common;

use common::{kiln, scratch, text};

/// "hello world. " forty times: each character follows from the few before it.
fn corpus() -> String {
    "hello world. ".repeat(40)
}

const MODEL: &str = "\
data d = text_windows(\"t.txt\", sequence_length: 6)

model m(x: i32[B, 6]) -> f32[B, 12] {
    embedding(12, 8, mask_zero: true)
    lstm(24)
    dense(12, softmax)
}
";

fn run(dir: &std::path::Path, name: &str, source: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, source).unwrap();
    let out = kiln(&["run", "-q", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The texts `generate` printed, in order (each the line after "Generated from m:").
fn generated(stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    (lines.iter().enumerate())
        .filter(|(_, l)| l.starts_with("Generated from m:"))
        .map(|(i, _)| lines[i + 1].to_string())
        .collect()
}

#[test]
fn a_character_model_continues_its_text_and_draws_the_same_from_a_seed() {
    let dir = scratch("generate", &[("t.txt", &corpus())]);
    let train = format!(
        "{MODEL}
fit m on d {{
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 0.02)
    epochs    30
    batch     32
    seed      3
}}

generate m from \"hello w\" length 20 temperature 0 seed 1
generate m from \"wor\" length 30 temperature 0.7 seed 5
generate m from \"wor\" length 30 temperature 0.7 seed 5
save m to \"m.safetensors\"
"
    );
    let texts = generated(&run(&dir, "train.model", &train));
    assert_eq!(texts.len(), 3, "{texts:?}");
    // The likeliest characters continue the text: the prompt, then 20 characters.
    assert_eq!(texts[0], "hello world. hello world. h", "{texts:?}");
    // A seed draws the same text every time; the prompt, then 30 characters.
    assert_eq!(texts[1], texts[2]);
    assert_eq!(texts[1].chars().count(), 3 + 30, "{texts:?}");
    assert!(texts[1].starts_with("wor"));
    assert!(
        texts[1].chars().all(|c| "helo wrd.".contains(c)),
        "{texts:?}"
    );
    // The vocabulary is kept in the checkpoint: a program that only loads it generates the same.
    let load = format!(
        "{MODEL}
load m from \"m.safetensors\"
generate m from \"wor\" length 30 temperature 0.7 seed 5
"
    );
    assert_eq!(
        generated(&run(&dir, "load.model", &load)),
        [texts[1].clone()]
    );
}

#[test]
fn generate_needs_a_vocabulary() {
    let dir = scratch("untrained", &[("t.txt", &corpus())]);
    let file = dir.join("m.model");
    std::fs::write(
        &file,
        format!("{MODEL}\ngenerate m from \"hel\" length 5\n"),
    )
    .unwrap();
    let out = kiln(&["run", "-q", &file.display().to_string()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("model 'm' has no text vocabulary to generate with"),
        "{}",
        text(&out.stderr)
    );
}
