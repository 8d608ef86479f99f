//! `timeseries_csv` through `kiln`: a tiny forecaster trains on windows of a CSV column with a
//! gap filled, prints the naive forecast's MAE on the chronological validation split and on
//! `evaluate`, and every way the source can be wrong is a message with a non-zero exit.

mod common;

use common::{kiln, path, scratch, text};

/// A straight line, 0.5 a row, with the rows at index 10 and 11 missing (an empty cell and
/// `NA`); interpolation restores them exactly, so every step is 0.5 and so is the naive
/// forecast's error.
fn series(rows: usize) -> String {
    let mut csv = String::from("day,level\n");
    for i in 0..rows {
        match i {
            10 => csv.push_str("10,\n"),
            11 => csv.push_str("11,NA\n"),
            _ => csv.push_str(&format!("{i},{}\n", 0.5 * i as f64)),
        }
    }
    csv
}

const FORECAST: &str = "\
data d = timeseries_csv(\"level.csv\", column: \"level\", sequence_length: 8, missing: \"interpolate\")
model m(x: f32[B, 8, 1]) -> f32[B, 1] {
    flatten()
    dense(1)
}
fit m on d {
    loss mean_squared_error
    metrics [mae]
    epochs 2
    batch 16
    validation_split 0.25
}
evaluate m on d
";

#[test]
fn a_forecaster_trains_and_prints_the_naive_baseline() {
    let csv = series(100);
    let dir = scratch("ts-train", &[("m.model", FORECAST), ("level.csv", &csv)]);
    let out = kiln(&["run", &path(&dir, "m.model")]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    // 100 rows give 92 windows of 8 with a next value; floor(92 · 0.75) = 69 train, and the
    // 23 latest validate.
    assert!(
        stdout.contains(
            "Training m on d: 69 samples, 9 parameters, validating on validation_split: 23 samples"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Naive forecast (each window's last value) on the validation windows: mae 0.5000\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("val_mae: "), "{stdout}");
    assert!(
        stdout.contains("Evaluated m on d: 92 samples - loss: "),
        "{stdout}"
    );
    assert!(
        stdout.contains(" - naive forecast mae: 0.5000\n"),
        "{stdout}"
    );
}

/// Several columns per step: `[sequence_length, features]` samples, and the naive forecast
/// still reads the target column.
#[test]
fn feature_columns_feed_timesteps_by_features() {
    let program = FORECAST
        .replace("missing:", "features: [\"level\", 0], missing:")
        .replace("f32[B, 8, 1]", "f32[B, 8, 2]");
    let csv = series(100);
    let dir = scratch("ts-features", &[("m.model", &program), ("level.csv", &csv)]);
    let out = kiln(&["run", &path(&dir, "m.model")]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("Training m on d: 69 samples, 17 parameters"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" - naive forecast mae: 0.5000\n"),
        "{stdout}"
    );
}

/// `(what, program change, csv, message)`: each run fails with exit 1 and the message.
#[test]
fn bad_series_are_messages_naming_the_line() {
    let short = series(8);
    let gap = series(40);
    let text_cell = "day,level\n0,1\n1,two\n2,3\n";
    let leading = "day,level\n0,\n1,2\n2,3\n";
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "column",
            "column: \"levle\"",
            &gap,
            "level.csv: line 1: no column named 'levle' in the header; the columns are 'day', \
             'level'; did you mean 'level'?",
        ),
        (
            "gap",
            "column: \"level\"",
            &gap,
            "level.csv: line 12: missing value; fill gaps with `missing: \"previous\"` or \
             `missing: \"interpolate\"`",
        ),
        (
            "short",
            "column: \"level\", missing: \"previous\"",
            &short,
            "level.csv: the series has 8 values, but one window and its target span 9 \
             (sequence_length 8, sampling_rate 1, target_offset 1); shorten the window or use a \
             longer series",
        ),
        (
            "text",
            "column: 1",
            text_cell,
            "level.csv: line 3, column 2: cannot read 'two' as a number (column 'level')",
        ),
        (
            "leading",
            "column: \"level\", missing: \"interpolate\"",
            leading,
            "level.csv: line 2: missing value at the start of the series: interpolation needs a \
             value on each side",
        ),
    ];
    for (name, args, csv, message) in cases {
        let program = format!(
            "data d = timeseries_csv(\"level.csv\", {args}, sequence_length: 8)\n\
             model m(x: f32[B, 8]) -> f32[B, 1] {{ dense(1) }}\n\
             fit m on d {{ loss mean_squared_error }}\n"
        );
        let dir = scratch(
            &format!("ts-{name}"),
            &[("m.model", &program), ("level.csv", csv)],
        );
        let out = kiln(&["run", &path(&dir, "m.model")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: expected `{message}` in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

/// What the checker refuses before any file is read.
#[test]
fn misfits_are_refused_when_checking() {
    let cases = [
        (
            "rule",
            "sequence_length: 8, missing: \"zero\"",
            "f32[B, 8]",
            "mean_squared_error",
            "[E0303] Error: `missing` must be \"reject\", \"previous\" or \"interpolate\"",
        ),
        (
            "loss",
            "sequence_length: 8",
            "f32[B, 8]",
            "sparse_categorical_crossentropy",
            "[E0325] Error: `sparse_categorical_crossentropy` cannot train on `d`'s real-valued \
             targets",
        ),
        (
            "shape",
            "sequence_length: 52",
            "f32[B, 8]",
            "mean_squared_error",
            "[E0326] Error: `d`'s windows of 52 values cannot feed `m`'s input f32[B, 8]",
        ),
        (
            "steps",
            "sequence_length: 8, features: [\"level\", \"day\"]",
            "f32[B, 8]",
            "mean_squared_error",
            "[E0326] Error: `d`'s windows of 8 steps of 2 features cannot feed `m`'s input \
             f32[B, 8]",
        ),
        (
            "list",
            "sequence_length: 8, features: \"day\"",
            "f32[B, 8]",
            "mean_squared_error",
            "[E0303] Error: `features` must be a list of columns",
        ),
        (
            "stride",
            "sequence_length: 8, sequence_stride: 0",
            "f32[B, 8]",
            "mean_squared_error",
            "`sequence_stride` must be a positive integer",
        ),
        (
            "ids",
            "sequence_length: 8",
            "i32[B, 8]",
            "mean_squared_error",
            "[E0323] Error: `d` holds f32 features, which cannot feed `m`'s integer input",
        ),
    ];
    for (name, args, input, loss, message) in cases {
        let embed = if input.starts_with("i32") {
            "    embedding(10, 2)\n"
        } else {
            ""
        };
        let program = format!(
            "data d = timeseries_csv(\"level.csv\", column: \"level\", {args})\n\
             model m(x: {input}) -> f32[B, 1] {{\n{embed}    flatten()\n    dense(1)\n}}\n\
             fit m on d {{ loss {loss} }}\n"
        );
        let dir = scratch(&format!("ts-check-{name}"), &[("m.model", &program)]);
        let out = kiln(&["check", &path(&dir, "m.model")]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: expected `{message}` in: {stderr}"
        );
    }
}
