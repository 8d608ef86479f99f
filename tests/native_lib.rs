//! `kiln build`: a bundle compiled into a C library. The C example (`examples/c/predict.c`) is
//! compiled with `cc` against the static and the shared library and run on held-out data; every
//! output must equal `kiln predict`'s to 1e-6 relative (the library's larger matrix products add
//! each sum in order, `kiln predict`'s `kiln_sgemm` in blocks with FMAs), exactly where both run
//! the emitted Cranelift kernel, and every predicted class must be the same. `NAME_predict`
//! allocates nothing, and two contexts run in two threads at once. The libraries need
//! nothing beyond libc and libm; the Rust example (`examples/rust/`, its own cargo project)
//! links the static library and prints the same. Models the library cannot hold are refused by
//! name.

mod common;

use common::{kiln, kiln_ok, path, scratch, text};
use std::path::Path;
use std::process::Command;

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `rows` samples of `features` values in [-lo, lo + width) and a class label below `classes`,
/// as CSV with a header, from a fixed linear congruential sequence.
fn samples_csv(rows: usize, features: usize, classes: usize, lo: f32, width: f32) -> String {
    let mut state = 0x9e37_79b9_u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let header: Vec<String> = (0..features).map(|i| format!("f{i}")).collect();
    let mut csv = format!("{},label\n", header.join(","));
    for row in 0..rows {
        let cells: Vec<String> = (0..features)
            .map(|_| (lo + next() * width).to_string())
            .collect();
        csv.push_str(&format!("{},{}\n", cells.join(","), row % classes));
    }
    csv
}

/// The rows of a predictions CSV (`prob_0,…,class`): the values and the class.
fn rows(csv: &str) -> Vec<(Vec<f32>, String)> {
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let values = header.split(',').filter(|c| c.starts_with("prob_")).count();
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let probabilities = cells[..values].iter().map(|c| c.parse().unwrap()).collect();
            (probabilities, cells[values].to_string())
        })
        .collect()
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/c/predict.c")
        .display()
        .to_string()
}

/// Builds `m.kiln` in `dir` as the library `classifier`, compiles the C example against its
/// static and shared libraries, runs both on `test.csv` and compares with `kiln predict`;
/// returns the largest relative difference.
fn library_matches_predict(dir: &Path, extra: &[&str]) -> f32 {
    let bundle = path(dir, "m.kiln");
    let out = path(dir, "out");
    let mut args = vec!["build", &bundle, "-o", &out, "--name", "classifier"];
    args.extend(extra);
    let said = kiln_ok(&args);
    assert!(said.contains("libclassifier.a"), "{said}");
    for file in ["libclassifier.a", "libclassifier.so", "classifier.h"] {
        assert!(dir.join("out").join(file).is_file(), "{file}");
    }
    kiln_ok(&[
        "predict",
        &bundle,
        &path(dir, "test.csv"),
        "-o",
        &path(dir, "p.csv"),
    ]);
    let expected = rows(&std::fs::read_to_string(dir.join("p.csv")).unwrap());

    let static_exe = path(dir, "predict_static");
    run(Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", &example(), "-I", &out])
        .arg(dir.join("out/libclassifier.a"))
        .args(["-lm", "-o", &static_exe]));
    let shared_exe = path(dir, "predict_shared");
    run(Command::new("cc")
        .args(["-O2", &example(), "-I", &out, "-L", &out, "-lclassifier"])
        .arg(format!("-Wl,-rpath,{out}"))
        .args(["-lm", "-o", &shared_exe]));
    let from_static = run(Command::new(&static_exe).arg(dir.join("test.csv")));
    let from_shared = run(Command::new(&shared_exe).arg(dir.join("test.csv")));
    assert_eq!(from_static, from_shared, "the two libraries agree");

    let found = rows(&from_static);
    assert_eq!(found.len(), expected.len());
    let mut worst = 0.0f32;
    for (i, ((a, class_a), (b, class_b))) in found.iter().zip(&expected).enumerate() {
        assert_eq!(class_a, class_b, "sample {i}: {a:?} vs kiln predict {b:?}");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            let relative = (x - y).abs() / x.abs().max(y.abs()).max(f32::MIN_POSITIVE);
            assert!(
                relative <= 1e-6,
                "sample {i}: library {x}, kiln predict {y} (relative {relative:e})"
            );
            worst = worst.max(relative);
        }
    }
    worst
}

/// The symbols the libraries leave to the system: only libc's and libm's.
fn only_libc_and_libm(dir: &Path) {
    let shared = dir.join("out/libclassifier.so");
    let needed = run(Command::new("ldd").arg(&shared));
    for line in needed.lines() {
        let library = line.split_whitespace().next().unwrap_or("");
        assert!(
            [
                "linux-vdso",
                "libc.so",
                "libm.so",
                "/lib64/ld-linux",
                "ld-linux"
            ]
            .iter()
            .any(|ok| library.starts_with(ok)),
            "{shared:?} needs {line}"
        );
    }
    let undefined = run(Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(&shared));
    for line in undefined.lines() {
        let symbol = line.split_whitespace().last().unwrap_or("");
        // Versioned symbols come from glibc; the unversioned weak ones are the C runtime's.
        let system = symbol.contains("@GLIBC_")
            || ["__gmon_start__", "_ITM_", "__cxa_finalize"]
                .iter()
                .any(|s| symbol.starts_with(s));
        assert!(system, "{shared:?} leaves `{symbol}` undefined");
    }
    let exported = run(Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&shared));
    let names: Vec<&str> = exported
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    for api in [
        "classifier_init",
        "classifier_predict",
        "classifier_free",
        "classifier_version",
    ] {
        assert!(names.contains(&api), "{api} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("kiln")),
        "internal symbols stay hidden: {names:?}"
    );

    // The archive: whatever one member leaves undefined, another defines or libc/libm has.
    let archive = run(Command::new("nm").arg(dir.join("out/libclassifier.a")));
    let defined: Vec<&str> = archive
        .lines()
        .filter(|l| !l.trim_start().starts_with('U'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    const SYSTEM: &[&str] = &[
        "_GLOBAL_OFFSET_TABLE_",
        "calloc",
        "free",
        "memcpy",
        "memset",
        "exp",
        "fmaxf",
        "logf",
        "powf",
    ];
    for line in archive.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("U") {
            let symbol = words.next().unwrap();
            assert!(
                defined.contains(&symbol) || SYSTEM.contains(&symbol),
                "libclassifier.a leaves `{symbol}` undefined"
            );
        }
    }
}

#[test]
fn the_seed_mlp_as_a_c_library_gives_what_kiln_predict_gives() {
    let program = "data train = synthetic_classification(samples: 512, features: 32, classes: 10, seed: 7)\n\
        model classifier(x: f32[B, 32]) -> f32[B, 10] {\n    dense(64, relu)\n    dense(64, relu)\n    dense(10, softmax)\n}\n\
        fit classifier on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.001)\n    epochs 3\n    seed 7\n}\n\
        save classifier to \"m.kiln\"\n";
    let csv = samples_csv(300, 32, 10, -2.0, 4.0);
    let dir = scratch("seed", &[("p.model", program), ("test.csv", &csv)]);
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let worst = library_matches_predict(&dir, &[]);
    eprintln!("seed: largest relative difference {worst:e}");
    only_libc_and_libm(&dir);

    // No allocation per call; one context per thread.
    std::fs::write(dir.join("threads.c"), THREADS_C).unwrap();
    let threads_exe = path(&dir, "threads");
    run(Command::new("cc")
        .args([
            "-O2",
            "-pthread",
            &path(&dir, "threads.c"),
            "-I",
            &path(&dir, "out"),
        ])
        .arg(dir.join("out/libclassifier.a"))
        .args(["-lm", "-o", &threads_exe]));
    assert_eq!(run(&mut Command::new(&threads_exe)), "ok\n");

    // The Rust example links the static library through its build script and prints the same.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rust/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let from_rust = run(Command::new(cargo)
        .args(["run", "-q", "--offline", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(dir.join("target"))
        .arg("--")
        .arg(dir.join("test.csv"))
        .env("KILN_LIB_DIR", dir.join("out")));
    let from_c = run(Command::new(path(&dir, "predict_static")).arg(dir.join("test.csv")));
    let (rust_rows, c_rows) = (rows(&from_rust), rows(&from_c));
    assert_eq!(rust_rows.len(), 300);
    assert_eq!(
        rust_rows, c_rows,
        "the Rust and C examples print the same values"
    );
    // The header names the sizes.
    let header = std::fs::read_to_string(dir.join("out/classifier.h")).unwrap();
    for define in [
        "#define CLASSIFIER_FEATURES 32",
        "#define CLASSIFIER_OUTPUTS 10",
        "#define CLASSIFIER_IS_CLASSIFIER 1",
    ] {
        assert!(header.contains(define), "{define} in\n{header}");
    }
}

#[test]
fn scaled_and_standardized_inputs_and_dropout_run_inside_the_library_in_pieces() {
    // Features 0–100 divided by `scale` and standardized; dropout is the identity. A batch of
    // 150 rows runs as pieces of 16 (`--max-batch`), the last one ragged.
    let train = samples_csv(200, 20, 3, 0.0, 100.0);
    let test = samples_csv(150, 20, 3, 0.0, 100.0);
    let program = "data train = csv(\"train.csv\", label: \"label\", scale: 10)\n\
        model mlp(x: f32[B, 20]) -> f32[B, 3] {\n    dense(32, tanh)\n    dropout(0.3)\n    dense(16, relu)\n    dense(3, softmax)\n}\n\
        fit mlp on train {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 3\n    batch 16\n    seed 2\n    standardize true\n}\n\
        save mlp to \"m.kiln\"\n";
    let dir = scratch(
        "preprocessing",
        &[
            ("p.model", program),
            ("train.csv", &train),
            ("test.csv", &test),
        ],
    );
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let worst = library_matches_predict(&dir, &["--max-batch", "16"]);
    eprintln!("preprocessing: largest relative difference {worst:e}");
    let header = std::fs::read_to_string(dir.join("out/classifier.h")).unwrap();
    assert!(
        header.contains("#define CLASSIFIER_STANDARDIZED 1"),
        "{header}"
    );
    assert!(
        header.contains("#define CLASSIFIER_SCALE 1.00000000e1f"),
        "{header}"
    );
    assert!(
        header.contains("#define CLASSIFIER_MAX_BATCH 16"),
        "{header}"
    );
}

#[test]
fn where_the_same_kernels_run_the_library_is_bit_identical() {
    // Products of at most `CRANELIFT_MAX_FLOPS` multiply-adds at the batch size are the emitted
    // Cranelift kernel in `kiln predict` (batch 16: the fit's) and in a library stepping 16
    // rows at a time; the preprocessing and the softmax are the same operations, so every
    // probability must be the same float.
    let train = samples_csv(64, 4, 3, -3.0, 6.0);
    let test = samples_csv(53, 4, 3, -3.0, 6.0);
    let program = "data d = csv(\"train.csv\", label: \"label\")\n\
        model tiny(x: f32[B, 4]) -> f32[B, 3] {\n    dense(8, relu)\n    dense(3, softmax)\n}\n\
        fit tiny on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.05)\n    epochs 5\n    batch 16\n    seed 4\n    standardize true\n}\n\
        save tiny to \"m.kiln\"\n";
    let dir = scratch(
        "identical",
        &[
            ("p.model", program),
            ("train.csv", &train),
            ("test.csv", &test),
        ],
    );
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let worst = library_matches_predict(&dir, &["--max-batch", "16"]);
    assert_eq!(worst, 0.0, "bit-identical");
}

/// A C program that counts every allocation (interposing malloc and its kin), checks that
/// `classifier_predict` makes none after `classifier_init`, and runs two contexts in two
/// threads at once, each of which must give the single-threaded results bit for bit.
const THREADS_C: &str = r#"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "classifier.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static atomic_long allocations;
void *malloc(size_t n) { allocations++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { allocations++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { allocations++; return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { allocations++; return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    allocations++;
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
void free(void *p) { __libc_free(p); }

#define SAMPLES 150
static float x[SAMPLES * CLASSIFIER_FEATURES];
static float expected[SAMPLES * CLASSIFIER_OUTPUTS];

static void *worker(void *arg) {
    classifier_ctx *ctx = arg;
    static _Thread_local float y[SAMPLES * CLASSIFIER_OUTPUTS];
    for (int round = 0; round < 40; round++) {
        int64_t batch = 1 + (round * 37) % SAMPLES;
        if (classifier_predict(ctx, x, batch, y) != 0) return "predict failed";
        if (memcmp(y, expected, sizeof(float) * batch * CLASSIFIER_OUTPUTS) != 0)
            return "a thread's results differ";
    }
    return NULL;
}

int main(void) {
    for (int i = 0; i < SAMPLES * CLASSIFIER_FEATURES; i++) x[i] = (float)((i * 7919) % 2000) / 500.0f - 2.0f;
    classifier_ctx *a = classifier_init(), *b = classifier_init();
    if (!a || !b) return 1;
    long before = allocations;
    for (int64_t batch = 0; batch <= SAMPLES; batch += 7)
        if (classifier_predict(a, x, batch, expected) != 0) return 2;
    if (classifier_predict(a, x, SAMPLES, expected) != 0) return 2;
    if (allocations != before) {
        printf("allocations during predict: %ld\n", allocations - before);
        return 3;
    }
    if (classifier_predict(NULL, x, 1, expected) != -1 || classifier_predict(a, x, -1, expected) != -1)
        return 4;
    pthread_t ta, tb;
    void *ra, *rb;
    pthread_create(&ta, NULL, worker, a);
    pthread_create(&tb, NULL, worker, b);
    pthread_join(ta, &ra);
    pthread_join(tb, &rb);
    if (ra || rb) {
        printf("%s\n", ra ? (char *)ra : (char *)rb);
        return 5;
    }
    classifier_free(a);
    classifier_free(b);
    printf("ok\n");
    return 0;
}
"#;

#[test]
fn attention_and_normalization_layers_build() {
    // Self-attention's batched products go through the library's `kiln_sgemm` with strided
    // operands; layer normalization, gelu and batch normalization's moving statistics inline.
    let test = samples_csv(90, 24, 3, -1.0, 2.0);
    let program = "data d = csv(\"test.csv\", label: \"label\")\n\
        layer block(heads, width) {\n    forward(x) {\n        layer_normalization()(x + multi_head_attention(heads, width)(x))\n    }\n}\n\
        model att(x: f32[B, 6, 4]) -> f32[B, 3] {\n    block(2, 4)\n    global_average_pooling1d()\n    dense(8, gelu)\n    batch_normalization()\n    dense(3, softmax)\n}\n\
        fit att on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 3\n    batch 16\n    seed 1\n}\n\
        save att to \"m.kiln\"\n";
    let dir = scratch("attention", &[("p.model", program), ("test.csv", &test)]);
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let worst = library_matches_predict(&dir, &[]);
    eprintln!("attention: largest relative difference {worst:e}");
}

#[test]
fn cross_attention_builds() {
    // A query of 6 steps attends to 4 steps of another sequence, causally (a rectangular causal
    // softmax, emitted by the same code as the JIT's) and through a separate key.
    let test = samples_csv(90, 24, 3, -1.0, 2.0);
    let program = "data d = csv(\"test.csv\", label: \"label\")\n\
        model att(x: f32[B, 6, 4]) -> f32[B, 3] {\n    \
        let v = slice(dense(5)(x), axis: 1, start: 2, end: 6)\n    \
        let a = x + multi_head_attention(2, 3, use_causal_mask: true)(x, v)\n    \
        let b = multi_head_attention(2, 3, value_dim: 2)(a, v, dense(3)(v))\n    \
        dense(3, softmax)(global_average_pooling1d(b))\n}\n\
        fit att on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 3\n    batch 16\n    seed 1\n}\n\
        save att to \"m.kiln\"\n";
    let dir = scratch(
        "cross_attention",
        &[("p.model", program), ("test.csv", &test)],
    );
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let worst = library_matches_predict(&dir, &[]);
    eprintln!("cross attention: largest relative difference {worst:e}");
}

#[test]
fn convnets_build_with_their_windowed_ops_in_c() {
    // 2-D: `same` padding and strides, batch and layer normalization, max and average pooling,
    // zero padding, upsampling; 1-D: dilation, gelu, global pooling.
    for (test, program, features) in [
        (
            "conv2d",
            "data d = csv(\"test.csv\", label: \"label\")\n\
             model convnet(x: f32[B, 8, 8, 1]) -> f32[B, 4] {\n    conv2d(4, 3, relu, padding: \"same\")\n    \
             batch_normalization()\n    max_pooling2d(2)\n    zero_padding2d(1)\n    \
             conv2d(6, 3, relu, strides: 2)\n    up_sampling2d(2)\n    average_pooling2d(2, padding: \"same\")\n    \
             flatten()\n    layer_normalization()\n    dense(4, softmax)\n}\n\
             fit convnet on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 2\n    batch 16\n    seed 5\n}\n\
             save convnet to \"m.kiln\"\n",
            64,
        ),
        (
            "conv1d",
            "data d = csv(\"test.csv\", label: \"label\")\n\
             model seq(x: f32[B, 12, 2]) -> f32[B, 4] {\n    conv1d(5, 3, tanh, dilation_rate: 2, padding: \"same\")\n    \
             max_pooling1d(2, strides: 1)\n    zero_padding1d(1)\n    conv1d(4, 2, gelu)\n    \
             global_average_pooling1d()\n    dense(4, softmax)\n}\n\
             fit seq on d {\n    loss sparse_categorical_crossentropy\n    optimizer adam(lr: 0.01)\n    epochs 2\n    batch 16\n    seed 9\n}\n\
             save seq to \"m.kiln\"\n",
            24,
        ),
    ] {
        let test_csv = samples_csv(80, features, 4, 0.0, 1.0);
        let dir = scratch(test, &[("p.model", program), ("test.csv", &test_csv)]);
        kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
        let worst = library_matches_predict(&dir, &[]);
        eprintln!("{test}: largest relative difference {worst:e}");
    }
}

#[test]
fn a_recurrent_layer_is_refused_naming_it() {
    let program = "model rnn(x: f32[B, 6, 3]) -> f32[B, 2] {\n    lstm(4)\n    dense(2, softmax)\n}\n\
        save rnn to \"m.kiln\"\n";
    let dir = scratch("recurrent", &[("p.model", program)]);
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let out = kiln(&["build", &path(&dir, "m.kiln"), "-o", &path(&dir, "out")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[E0821]")
            && stderr.contains("layer `lstm")
            && stderr.contains("recurrence"),
        "{stderr}"
    );
    assert!(stderr.contains("lstm(4)"), "{stderr}");
    assert!(!dir.join("out").exists());
}

#[test]
fn integer_inputs_and_bad_names_are_refused() {
    let program = "model m(tokens: i32[B, 6]) -> f32[B, 2] {\n    embedding(8, 4)\n    global_average_pooling1d()\n    dense(2, softmax)\n}\n\
        save m to \"m.kiln\"\n";
    let dir = scratch("integers", &[("p.model", program)]);
    kiln_ok(&["run", "-q", &path(&dir, "p.model")]);
    let out = kiln(&["build", &path(&dir, "m.kiln"), "-o", &path(&dir, "out")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("[E0822]") && stderr.contains("integer ids"),
        "{stderr}"
    );
    let out = kiln(&[
        "build",
        &path(&dir, "m.kiln"),
        "-o",
        &path(&dir, "out"),
        "--name",
        "int",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot prefix C names"), "{stderr}");
}
