//! NumPy data end to end: `npy` and `npz` sources written by ndarray-npy (the format NumPy
//! reads and writes), training through `kiln run`, arrays feeding models that take their
//! samples' shape, and corrupted copies failing with a message naming the file.

use std::path::Path;
use std::process::{Command, Output};

use ndarray::{Array1, Array3, Axis};
use ndarray_npy::{NpzWriter, WriteNpyExt};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn scratch(test: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("kiln-npy-{test}-"))
        .tempdir()
        .unwrap()
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
    let scratch_dir = scratch("ok");
    let dir = scratch_dir.path();
    let (x, y) = images();
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("y.npy"), &y);
    let out = run(
        dir,
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
    let mut huge = y.mapv(|v| v as f64);
    huge[0] = 1e300;
    write_npy(&dir.join("huge.npy"), &huge);
    write_npy(&dir.join("empty_x.npy"), &Array3::<f64>::zeros((0, 2, 2)));
    write_npy(&dir.join("empty_y.npy"), &Array1::<i64>::zeros(0));
    // A small file whose header claims a huge array.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 4), }";
    let mut claim = b"\x93NUMPY\x01\x00".to_vec();
    let padded = format!("{header:<117}\n");
    claim.extend_from_slice(&(padded.len() as u16).to_le_bytes());
    claim.extend_from_slice(padded.as_bytes());
    claim.extend_from_slice(&[0u8; 64]);
    std::fs::write(dir.join("claim.npy"), &claim).unwrap();
    let mut npz = NpzWriter::new(std::fs::File::create(dir.join("d.npz")).unwrap());
    npz.add_array("pixels", &x.mapv(|v| v as u8)).unwrap();
    npz.add_array("digits", &y.mapv(|v| v as i32)).unwrap();
    npz.finish().unwrap();
    let out = run(
        dir,
        "npz(\"d.npz\", features: \"pixels\", labels: \"digits\", scale: 255)",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Trained m"));
}

/// The 2×2 images feed a model taking `f32[B, 2, 2]` or `f32[B, 2, 2, 1]`, and an array with
/// its channel axis already (`[40, 2, 2, 1]`) that shape; other layouts of the four values are
/// messages naming both shapes.
#[test]
fn arrays_feed_their_own_shape_and_a_channel_axis() {
    let scratch_dir = scratch("shapes");
    let dir = scratch_dir.path();
    let (x, y) = images();
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("x4.npy"), &x.clone().insert_axis(Axis(3)));
    write_npy(&dir.join("y.npy"), &y);
    let run = |features: &str, input: &str| {
        let file = dir.join("image.model");
        let source = format!(
            "data d = npy(\"{features}\", \"y.npy\", scale: 255)\n\
             model m(x: {input}) -> f32[B, 4] {{\n    flatten()\n    dense(8, relu)\n    \
             dense(4, softmax)\n}}\n\
             fit m on d {{\n    loss sparse_categorical_crossentropy\n    \
             optimizer adam(lr: 0.05)\n    metrics [accuracy]\n    epochs 30\n    batch 8\n}}\n\
             evaluate m on d\n"
        );
        std::fs::write(&file, source).unwrap();
        kiln(&["run", "-q", &file.display().to_string()])
    };
    for (features, input) in [
        ("x.npy", "f32[B, 2, 2]"),
        ("x.npy", "f32[B, 2, 2, 1]"),
        ("x4.npy", "f32[B, 2, 2, 1]"),
        ("x4.npy", "f32[B, 4]"),
    ] {
        let out = run(features, input);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{features} {input}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("Evaluated m on d: 40 samples"), "{stdout}");
    }
    for (features, input, expected) in [
        (
            "x.npy",
            "f32[B, 4, 1]",
            "x.npy: the data's samples have shape [2, 2], but model 'm' takes input x: \
             f32[B, 4, 1]: as many values, laid out differently; samples of shape [2, 2] feed \
             f32[B, 4], f32[B, 2, 2] or f32[B, 2, 2, 1]",
        ),
        (
            "x4.npy",
            "f32[B, 1, 2, 2]",
            "x4.npy: the data's samples have shape [2, 2, 1], but model 'm' takes input x: \
             f32[B, 1, 2, 2]",
        ),
        (
            "x.npy",
            "f32[B, 3, 3, 1]",
            "x.npy: the data has 4 features per sample (shape [2, 2]), but model 'm' takes \
             input x: f32[B, 3, 3, 1]; samples of shape [2, 2] feed f32[B, 4]",
        ),
    ] {
        let out = run(features, input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{features} {input}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{features} {input}: expected `{expected}` in {stderr}"
        );
    }
}

#[test]
fn bad_numpy_files_are_messages() {
    let scratch_dir = scratch("bad");
    let dir = scratch_dir.path();
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
    let mut huge = y.mapv(|v| v as f64);
    huge[0] = 1e300;
    write_npy(&dir.join("huge.npy"), &huge);
    write_npy(&dir.join("empty_x.npy"), &Array3::<f64>::zeros((0, 2, 2)));
    write_npy(&dir.join("empty_y.npy"), &Array1::<i64>::zeros(0));
    // A small file whose header claims a huge array.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 4), }";
    let mut claim = b"\x93NUMPY\x01\x00".to_vec();
    let padded = format!("{header:<117}\n");
    claim.extend_from_slice(&(padded.len() as u16).to_le_bytes());
    claim.extend_from_slice(padded.as_bytes());
    claim.extend_from_slice(&[0u8; 64]);
    std::fs::write(dir.join("claim.npy"), &claim).unwrap();
    let mut npz = NpzWriter::new(std::fs::File::create(dir.join("d.npz")).unwrap());
    npz.add_array("x", &x).unwrap();
    npz.finish().unwrap();

    let cases = [
        (
            "npy(\"cut.npy\", \"y.npy\")",
            "cut.npy: the header says shape (40, 2, 2) of `<f8`, 1280 bytes, but the file holds \
             1271 bytes of data",
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
            "seven.npy: sample 4 has class label 7, but model 'm' outputs 4",
        ),
        ("npy(\"x.npy\", \"huge.npy\")", "sample 1 has label 1e300;"),
        (
            "npy(\"empty_x.npy\", \"empty_y.npy\")",
            "empty_x.npy: the data set has no samples",
        ),
        ("npy(\"x.npy\", \"half.npy\")", "sample 1 has label 0.5"),
        (
            "npz(\"d.npz\", labels: \"y\")",
            "d.npz: the archive has no array `y`; it has: x",
        ),
        ("npz(\"x.npy\")", "x.npy: not a NumPy .npz archive"),
        (
            "npy(\"claim.npy\", \"y.npy\")",
            "claim.npy: the header says shape (1000000000000, 4) of `<f4`, 16000000000000 bytes, \
             but the file holds 64 bytes of data",
        ),
    ];
    for (source, expected) in cases {
        let out = run(dir, source);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{source}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{source}: expected `{expected}` in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Regression targets are checked like features: a NaN (or a value past f32's range) is an
/// error naming the targets file, not a NaN loss.
#[test]
fn targets_that_are_not_finite_are_messages() {
    let scratch_dir = scratch("targets");
    let dir = scratch_dir.path();
    let (x, _) = images();
    let mut targets = ndarray::Array2::<f64>::zeros((40, 4));
    targets[[2, 1]] = f64::NAN;
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("t.npy"), &targets);
    targets[[2, 1]] = 1e39;
    write_npy(&dir.join("big.npy"), &targets);
    for (labels, expected) in [
        ("t.npy", "t.npy: sample 3, target 2 is NaN"),
        ("big.npy", "big.npy: sample 3, target 2 is 1e39"),
    ] {
        let file = dir.join("r.model");
        let source = format!(
            "data d = npy(\"x.npy\", \"{labels}\")\n\
             model m(x: f32[B, 4]) -> f32[B, 4] {{\n    dense(4)\n}}\n\
             fit m on d {{\n    loss mean_squared_error\n    epochs 1\n}}\n"
        );
        std::fs::write(&file, source).unwrap();
        let out = kiln(&["run", "-q", &file.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{labels}: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in {stderr}"
        );
    }
}

/// The weights of a trained run, from its last line.
fn weights_hash(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = text
        .find("(weights ")
        .expect("a Trained line with the weights' hash");
    text[at..].lines().next().unwrap().to_string()
}

/// `weights`: each sample's weight in the loss (Keras's `sample_weight`) from a `.npy` file or
/// an archive's array, the same training as a CSV `weight` column with those numbers; a
/// weights array that is not one finite number zero or more per sample is an error naming it.
#[test]
fn sample_weights_from_numpy_arrays_train_as_a_weight_column_does() {
    let dir = scratch("weights");
    let (x, y) = images();
    let flat = x.clone().into_shape_with_order((40, 4)).unwrap();
    let w = Array1::from_iter((0..40).map(|i| [0.5, 2.0, 1.0, 0.0][i % 4] + i as f64 / 40.0));
    write_npy(&dir.path().join("x.npy"), &flat);
    write_npy(&dir.path().join("y.npy"), &y);
    write_npy(&dir.path().join("w.npy"), &w);
    let mut npz = NpzWriter::new(std::fs::File::create(dir.path().join("d.npz")).unwrap());
    npz.add_array("x", &flat).unwrap();
    npz.add_array("y", &y).unwrap();
    npz.add_array("w", &w).unwrap();
    npz.add_array("short", &w.slice(ndarray::s![..39]).to_owned())
        .unwrap();
    npz.add_array("negative", &w.mapv(|v| v - 1.0)).unwrap();
    npz.finish().unwrap();
    let mut csv = String::from("a,b,c,d,w,y\n");
    for i in 0..40 {
        let row: Vec<String> = flat.row(i).iter().map(|v| v.to_string()).collect();
        csv.push_str(&format!("{},{},{}\n", row.join(","), w[i], y[i]));
    }
    std::fs::write(dir.path().join("d.csv"), csv).unwrap();

    let column = weights_hash(&run(
        dir.path(),
        "csv(\"d.csv\", label: \"y\", weight: \"w\")",
    ));
    let npy = weights_hash(&run(
        dir.path(),
        "npy(features: \"x.npy\", labels: \"y.npy\", weights: \"w.npy\")",
    ));
    let npz = weights_hash(&run(dir.path(), "npz(\"d.npz\", weights: \"w\")"));
    let unweighted = weights_hash(&run(dir.path(), "npz(\"d.npz\")"));
    assert_eq!(npy, column);
    assert_eq!(npz, column);
    assert_ne!(unweighted, column);

    let error = |source: &str| {
        let out = run(dir.path(), source);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = error("npz(\"d.npz\", weights: \"short\")");
    assert!(
        e.contains("d.npz [short]: the weights array has shape [39]; expected [40]"),
        "{e}"
    );
    let e = error("npz(\"d.npz\", weights: \"negative\")");
    assert!(
        e.contains("d.npz [negative]: sample 1's weight is -0.5; weights must be finite"),
        "{e}"
    );
    let e = error("npz(\"d.npz\", weights: \"weight\")");
    assert!(e.contains("the archive has no array `weight`"), "{e}");
}
