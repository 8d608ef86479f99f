//! Integer inputs end to end: token ids from NPZ, NPY and CSV files feed a model whose input is
//! `i32[B, T]` (or `i32[B, 1]` from a `[samples]` array) through `kiln run` — training with a ragged last batch and
//! `validation_split`, `evaluate` and `predict` — and data an integer input cannot take fails
//! with a message naming the file and the value.

use std::path::Path;
use std::process::Output;

mod common;

use common::kiln;

use ndarray::{Array1, Array2};
use ndarray_npy::{NpzWriter, WriteNpyExt};

fn scratch(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("kiln-tokens-{test}-"))
        .tempdir()
        .unwrap()
}

fn write_npy<A: WriteNpyExt>(path: &Path, array: &A) {
    array
        .write_npy(std::fs::File::create(path).unwrap())
        .unwrap();
}

const SAMPLES: usize = 103;
const LENGTH: usize = 6;

/// 103 sequences of 6 ids in 0..8 from a fixed linear congruential stream; the label is 1 when
/// id 3 appears. 103 samples in batches of 16 leave a ragged last batch (7, or 2 after a 0.2
/// validation split keeps 82).
fn sequences() -> (Array2<i64>, Array1<i64>) {
    let mut state: u64 = 12345;
    let mut x = Array2::<i64>::zeros((SAMPLES, LENGTH));
    for v in x.iter_mut() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *v = ((state >> 33) % 8) as i64;
    }
    let y = x.map_axis(ndarray::Axis(1), |row| {
        i64::from(row.iter().any(|&t| t == 3))
    });
    (x, y)
}

fn csv_text(x: &Array2<i64>, y: &Array1<i64>) -> String {
    let mut text = String::from("t1,t2,t3,t4,t5,t6,label\n");
    for (row, label) in x.rows().into_iter().zip(y) {
        let cells: Vec<String> = row.iter().map(i64::to_string).collect();
        text.push_str(&format!("{},{label}\n", cells.join(",")));
    }
    text
}

/// A program training `model m(tokens: i32[B, 6])` on `data d = SOURCE`, then `extra`.
fn program(source: &str, settings: &str, extra: &str) -> String {
    format!(
        "data d = {source}\n\
         model m(tokens: i32[B, 6]) -> f32[B, 2] {{\n    embedding(8, 4)\n    \
         global_average_pooling1d()\n    dense(2, softmax)\n}}\n\
         fit m on d {{\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.05)\n    \
         metrics [accuracy]\n    epochs 40\n    batch 16\n{settings}}}\n{extra}"
    )
}

fn run(dir: &Path, source: &str) -> Output {
    let file = dir.join("m.model");
    std::fs::write(&file, source).unwrap();
    kiln(&["run", "-q", &file.display().to_string()])
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `name: ` in the last line that has one.
fn last_value(stdout: &str, name: &str) -> f64 {
    let at = stdout.rfind(&format!("{name}: ")).unwrap() + name.len() + 2;
    stdout[at..]
        .split([' ', '\n'])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn weights(stdout: &str) -> &str {
    let at = stdout.rfind("weights ").unwrap() + 8;
    &stdout[at..at + 16]
}

#[test]
fn token_ids_train_from_npz_with_a_validation_split_then_evaluate_and_predict() {
    let scratch_dir = scratch("npz");
    let dir = scratch_dir.path();
    let (x, y) = sequences();
    // int64, as NumPy's default integer type, in an archive; the same ids as uint8 in .npy.
    let mut npz = NpzWriter::new(std::fs::File::create(dir.join("d.npz")).unwrap());
    npz.add_array("x", &x).unwrap();
    npz.add_array("y", &y).unwrap();
    npz.finish().unwrap();
    write_npy(&dir.join("x8.npy"), &x.mapv(|v| v as u8));
    write_npy(&dir.join("x16.npy"), &x.mapv(|v| v as u16));
    write_npy(&dir.join("y.npy"), &y.mapv(|v| v as i32));
    let source = program(
        "npz(\"d.npz\")",
        "    validation_split 0.2\n",
        "data bytes = npy(\"x8.npy\", \"y.npy\")\n\
         data words = npy(\"x16.npy\", \"y.npy\")\n\
         evaluate m on d\n\
         predict m on d to \"p.csv\"\n\
         predict m on bytes to \"q.csv\"\n\
         evaluate m on words\n",
    );
    let stdout = succeeded(&run(dir, &source));
    assert!(last_value(&stdout, "val_accuracy") >= 0.9, "{stdout}");
    assert!(
        stdout.contains("Evaluated m on d: 103 samples - loss: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("Evaluated m on words: 103 samples - loss: "),
        "{stdout}"
    );
    assert!(last_value(&stdout, "accuracy") >= 0.9, "{stdout}");
    let p = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    let q = std::fs::read_to_string(dir.join("q.csv")).unwrap();
    assert_eq!(p.lines().count(), 1 + SAMPLES, "{p}");
    assert_eq!(p, q, "int64 and uint8 ids predict alike");
    // Predicted classes agree with the labels for most sequences.
    let classes: Vec<i64> = p
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let right = classes.iter().zip(&y).filter(|(a, b)| a == b).count();
    assert!(right >= 90, "{right} of 103 right:\n{p}");
}

/// The same ids from a CSV file and an NPZ archive train the same weights, bit for bit.
#[test]
fn token_ids_from_csv_train_as_from_npz() {
    let scratch_dir = scratch("csv");
    let dir = scratch_dir.path();
    let (x, y) = sequences();
    std::fs::write(dir.join("d.csv"), csv_text(&x, &y)).unwrap();
    let mut npz = NpzWriter::new(std::fs::File::create(dir.join("d.npz")).unwrap());
    npz.add_array("x", &x.mapv(|v| v as i32)).unwrap();
    npz.add_array("y", &y).unwrap();
    npz.finish().unwrap();
    let from_csv = succeeded(&run(dir, &program("csv(\"d.csv\")", "", "")));
    let from_npz = succeeded(&run(dir, &program("npz(\"d.npz\")", "", "")));
    assert!(last_value(&from_csv, "accuracy") >= 0.9, "{from_csv}");
    assert_eq!(weights(&from_csv), weights(&from_npz));
}

/// One id per sample: a `[samples]` array feeds `i32[B, 1]` (a model input has a dimension
/// after the batch, E0201).
#[test]
fn one_token_per_sample_feeds_an_input_of_one_id() {
    let scratch_dir = scratch("vector");
    let dir = scratch_dir.path();
    let ids = Array1::from_iter((0..60i32).map(|i| i * 5 % 8));
    write_npy(&dir.join("x.npy"), &ids);
    write_npy(&dir.join("y.npy"), &ids.mapv(|t| i32::from(t == 3)));
    let source = "data d = npy(\"x.npy\", \"y.npy\")\n\
         model m(t: i32[B, 1]) -> f32[B, 2] {\n    embedding(8, 4)\n    flatten()\n    \
         dense(2, softmax)\n}\n\
         fit m on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.05)\n    \
         metrics [accuracy]\n    epochs 30\n    batch 16\n}\n";
    let stdout = succeeded(&run(dir, source));
    assert_eq!(last_value(&stdout, "accuracy"), 1.0, "{stdout}");
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn data_an_integer_input_cannot_take_is_an_error_naming_the_value() {
    let scratch_dir = scratch("errors");
    let dir = scratch_dir.path();
    let at = |name: &str| dir.join(name).display().to_string();
    let (x, y) = sequences();
    write_npy(&dir.join("y.npy"), &y);

    // A cell that is no whole number, with its line and column.
    let text = {
        let mut lines: Vec<String> = csv_text(&x, &y).lines().map(String::from).collect();
        lines[2] = "1,2.5,0,0,0,0,1".into();
        lines.join("\n") + "\n"
    };
    std::fs::write(dir.join("bad.csv"), text).unwrap();
    let e = failed(&run(dir, &program("csv(\"bad.csv\")", "", "")));
    assert!(
        e.contains(&format!(
            "{}: line 3, column 2: feature value '2.5' (column 't2') is not a whole number; an \
             i32 input takes integer ids",
            at("bad.csv")
        )),
        "{e}"
    );

    // A float array, even of whole values.
    write_npy(&dir.join("floats.npy"), &x.mapv(|v| v as f32));
    let e = failed(&run(
        dir,
        &program("npy(\"floats.npy\", \"y.npy\")", "", ""),
    ));
    assert!(
        e.contains(&format!(
            "{}: the features array holds floats, but an i32 input takes an integer array \
             (int32, int64, uint8, uint16, …); convert it with `x.astype(np.int32)`",
            at("floats.npy")
        )),
        "{e}"
    );

    // A value past i32, with its sample and position.
    let mut huge = x.clone();
    huge[[1, 3]] = 3_000_000_000;
    write_npy(&dir.join("huge.npy"), &huge);
    let e = failed(&run(dir, &program("npy(\"huge.npy\", \"y.npy\")", "", "")));
    assert!(
        e.contains(&format!(
            "{}: sample 2, position 4 is 3000000000, outside i32's range (-2147483648 to \
             2147483647)",
            at("huge.npy")
        )),
        "{e}"
    );

    // Ids the embedding's table has no row for, caught when the data loads (Keras raises).
    for (id, name) in [(8, "eight.npy"), (-1, "negative.npy")] {
        let mut outside = x.clone();
        outside[[4, 0]] = id;
        write_npy(&dir.join(name), &outside);
        let source = program(&format!("npy(\"{name}\", \"y.npy\")"), "", "");
        let e = failed(&run(dir, &source));
        assert!(
            e.contains(&format!(
                "{}: sample 5, position 1 is token id {id}, but model 'm' embeds its input in a \
                 table of 8 rows (input_dim 8); token ids must lie in 0..8",
                at(name)
            )),
            "{e}"
        );
    }
}

/// `embedding(mask_zero: true)` through compiled attention and recurrent layers: padded keys get
/// no attention and padded steps carry the state over, so a sequence padded at the end and the
/// same sequence padded at the start predict the same (self-attention without positions, a
/// stacked LSTM, then a GRU running backwards).
#[test]
fn masked_padding_does_not_change_a_recurrent_prediction() {
    let scratch_dir = scratch("mask");
    let dir = scratch_dir.path();
    let (x, y) = sequences();
    // Each sequence's first 2..=5 ids, made non-zero, padded with 0 at the end or the start.
    let mut post = Array2::<i64>::zeros((SAMPLES, LENGTH));
    let mut pre = Array2::<i64>::zeros((SAMPLES, LENGTH));
    for (i, row) in x.rows().into_iter().enumerate() {
        let len = 2 + i % 4;
        for (t, &v) in row.iter().take(len).enumerate() {
            post[[i, t]] = v % 7 + 1;
            pre[[i, LENGTH - len + t]] = v % 7 + 1;
        }
    }
    write_npy(&dir.join("post.npy"), &post.mapv(|v| v as i32));
    write_npy(&dir.join("pre.npy"), &pre.mapv(|v| v as i32));
    write_npy(&dir.join("y.npy"), &y.mapv(|v| v as i32));
    let source = "data post = npy(\"post.npy\", \"y.npy\")\n\
         data pre = npy(\"pre.npy\", \"y.npy\")\n\
         model m(tokens: i32[B, 6]) -> f32[B, 2] {\n    embedding(8, 4, mask_zero: true)\n    \
         multi_head_attention(2, 4)\n    lstm(5, return_sequences: true)\n    gru(3, go_backwards: true)\n    dense(2, softmax)\n}\n\
         fit m on post {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.05)\n    \
         epochs 3\n    batch 16\n}\n\
         predict m on post to \"post.csv\"\n\
         predict m on pre to \"pre.csv\"\n";
    succeeded(&run(dir, source));
    let read = |name: &str| -> Vec<f64> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .skip(1)
            .flat_map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (post, pre) = (read("post.csv"), read("pre.csv"));
    assert_eq!(post.len(), pre.len());
    for (i, (a, b)) in post.iter().zip(&pre).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6,
            "value {i}: padded at the end {a}, at the start {b}"
        );
    }
}
