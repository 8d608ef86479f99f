//! NumPy data end to end: `npy` and `npz` sources written by ndarray-npy (the format NumPy
//! reads and writes), training through `kiln run`, and corrupted copies failing with a message
//! naming the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{Array1, Array3};
use ndarray_npy::{NpzWriter, WriteNpyExt};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-npy-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 40 samples of 2×2 "images" whose class is the brightest quadrant.
fn images() -> (Array3<f64>, Array1<i64>) {
    let mut x = Array3::<f64>::zeros((40, 2, 2));
    let mut y = Array1::<i64>::zeros(40);
    for i in 0..40 {
        let class = i % 4;
        for q in 0..4 {
            x[[i, q / 2, q % 2]] = if q == class {
                200.0
            } else {
                (i * 7 % 50) as f64
            };
        }
        y[i] = class as i64;
    }
    (x, y)
}

fn write_npy<A: WriteNpyExt>(path: &Path, array: &A) {
    array
        .write_npy(std::fs::File::create(path).unwrap())
        .unwrap();
}

fn program(source: &str) -> String {
    format!(
        "data d = {source}\n\
         model m(x: f32[B, 4]) -> f32[B, 4] {{\n    dense(8, relu)\n    dense(4, softmax)\n}}\n\
         fit m on d {{\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.05)\n    \
         metrics [accuracy]\n    epochs 30\n    batch 8\n}}\n"
    )
}

fn run(dir: &Path, source: &str) -> Output {
    let file = dir.join("m.model");
    std::fs::write(&file, program(source)).unwrap();
    kiln(&["run", "-q", &file.display().to_string()])
}

#[test]
fn npy_and_npz_train() {
    let dir = scratch("ok");
    let (x, y) = images();
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("y.npy"), &y);
    let out = run(
        &dir,
        "npy(features: \"x.npy\", labels: \"y.npy\", scale: 255)",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accuracy: f64 = stdout
        .split("accuracy: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(accuracy >= 0.9, "{stdout}");

    // The same data as uint8 features and int32 labels in an archive, as np.savez writes it.
    let mut npz = NpzWriter::new(std::fs::File::create(dir.join("d.npz")).unwrap());
    npz.add_array("pixels", &x.mapv(|v| v as u8)).unwrap();
    npz.add_array("digits", &y.mapv(|v| v as i32)).unwrap();
    npz.finish().unwrap();
    let out = run(
        &dir,
        "npz(\"d.npz\", features: \"pixels\", labels: \"digits\", scale: 255)",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Trained m"));
}

#[test]
fn bad_numpy_files_are_messages() {
    let dir = scratch("bad");
    let (x, y) = images();
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("y.npy"), &y);
    let bytes = std::fs::read(dir.join("x.npy")).unwrap();
    std::fs::write(dir.join("cut.npy"), &bytes[..bytes.len() - 9]).unwrap();
    std::fs::write(dir.join("junk.npy"), "0,1,2\n").unwrap();
    write_npy(
        &dir.join("short.npy"),
        &y.slice(ndarray::s![..39]).to_owned(),
    );
    let mut nan = x.clone();
    nan[[3, 1, 0]] = f64::NAN;
    write_npy(&dir.join("nan.npy"), &nan);
    write_npy(
        &dir.join("seven.npy"),
        &y.mapv(|v| if v == 3 { 7 } else { v }),
    );
    write_npy(&dir.join("half.npy"), &y.mapv(|v| v as f64 + 0.5));
    let mut npz = NpzWriter::new(std::fs::File::create(dir.join("d.npz")).unwrap());
    npz.add_array("x", &x).unwrap();
    npz.finish().unwrap();

    let cases = [
        (
            "npy(\"cut.npy\", \"y.npy\")",
            "cut.npy: cannot read the array",
        ),
        (
            "npy(\"junk.npy\", \"y.npy\")",
            "junk.npy: not a NumPy .npy array",
        ),
        (
            "npy(\"missing.npy\", \"y.npy\")",
            "missing.npy: cannot read the file",
        ),
        (
            "npy(\"x.npy\", \"short.npy\")",
            "short.npy: the labels array has shape [39]",
        ),
        (
            "npy(\"nan.npy\", \"y.npy\")",
            "nan.npy: sample 4, feature 3 is NaN",
        ),
        (
            "npy(\"x.npy\", \"seven.npy\")",
            "class label 7, but model 'm' outputs 4",
        ),
        ("npy(\"x.npy\", \"half.npy\")", "sample 1 has label 0.5"),
        (
            "npz(\"d.npz\", labels: \"y\")",
            "d.npz: the archive has no array `y`; it has: x",
        ),
        ("npz(\"x.npy\")", "x.npy: not a NumPy .npz archive"),
    ];
    for (source, expected) in cases {
        let out = run(&dir, source);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{source}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{source}: expected `{expected}` in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
