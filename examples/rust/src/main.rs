//! Runs a model built by `kiln build` (named `classifier`; `kiln build --name classifier` names
//! any model so) on a CSV file from Rust and prints what `kiln predict` prints:
//!
//! ```text
//! kiln build m.kiln -o out
//! KILN_LIB_DIR=$PWD/out cargo run --release --manifest-path examples/rust/Cargo.toml -- data.csv
//! ```

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

mod sizes {
    include!(concat!(env!("OUT_DIR"), "/sizes.rs"));
}

/// The library's context: opaque, owned through `Model`.
#[repr(C)]
struct Ctx {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn classifier_init() -> *mut Ctx;
    fn classifier_predict(ctx: *mut Ctx, x: *const f32, batch: i64, y: *mut f32) -> c_int;
    fn classifier_free(ctx: *mut Ctx);
    fn classifier_version() -> *const c_char;
}

/// One context of the library: its own buffers, used by one thread at a time (`&mut self`).
struct Model(*mut Ctx);

impl Model {
    fn new() -> Option<Model> {
        // SAFETY: `classifier_init` takes nothing and returns a fresh context or null.
        let ctx = unsafe { classifier_init() };
        (!ctx.is_null()).then_some(Model(ctx))
    }

    /// The outputs of `x`'s samples (`sizes::FEATURES` values each), `sizes::OUTPUTS` each.
    fn predict(&mut self, x: &[f32]) -> Vec<f32> {
        assert_eq!(x.len() % sizes::FEATURES, 0, "whole samples");
        let batch = x.len() / sizes::FEATURES;
        let mut y = vec![0.0f32; batch * sizes::OUTPUTS];
        // SAFETY: `x` holds `batch` samples and `y` room for `batch` rows of outputs, as the
        // header asks; the context is this `Model`'s, borrowed mutably for the call.
        let status =
            unsafe { classifier_predict(self.0, x.as_ptr(), batch as i64, y.as_mut_ptr()) };
        assert_eq!(status, 0, "classifier_predict");
        y
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the context came from `classifier_init` and is freed once.
        unsafe { classifier_free(self.0) }
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: kiln-model-example DATA.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // A header, then each sample's features first (further columns, such as a label, ignored).
    let x: Vec<f32> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .flat_map(|l| {
            let cells: Vec<f32> = l.split(',').map(|c| c.trim().parse().unwrap()).collect();
            cells[..sizes::FEATURES].to_vec()
        })
        .collect();

    let mut model = Model::new().expect("out of memory");
    let y = model.predict(&x);
    // SAFETY: the version is a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(classifier_version()) };
    eprintln!("library built by Kiln {}", version.to_string_lossy());

    let prefix = if sizes::IS_CLASSIFIER == 1 {
        "prob"
    } else {
        "output"
    };
    let mut header: Vec<String> = (0..sizes::OUTPUTS)
        .map(|k| format!("{prefix}_{k}"))
        .collect();
    if sizes::IS_CLASSIFIER == 1 {
        header.push("class".into());
    }
    println!("{}", header.join(","));
    for row in y.chunks_exact(sizes::OUTPUTS) {
        // Rust prints the shortest text that reads back as the same f32, as `kiln predict` does.
        let mut cells: Vec<String> = row.iter().map(f32::to_string).collect();
        if sizes::IS_CLASSIFIER == 1 {
            let best = (0..row.len()).fold(0, |b, k| if row[k] > row[b] { k } else { b });
            cells.push(best.to_string());
        }
        println!("{}", cells.join(","));
    }
}
