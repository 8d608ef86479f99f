//! Links `libclassifier.a` from `KILN_LIB_DIR` (the `-o` folder of `kiln build`; `out` at the
//! repository's root by default) and turns the header's sizes into Rust constants.

use std::path::PathBuf;

fn main() {
    let dir = std::env::var("KILN_LIB_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../out"),
        PathBuf::from,
    );
    println!("cargo:rerun-if-env-changed=KILN_LIB_DIR");
    let header = dir.join("classifier.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("libclassifier.a").display()
    );
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=classifier");
    println!("cargo:rustc-link-lib=m");

    // `#define CLASSIFIER_FEATURES 32` → `pub const FEATURES: usize = 32;`
    let text = std::fs::read_to_string(&header).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `kiln build m.kiln -o DIR` and set KILN_LIB_DIR=DIR)",
            header.display()
        )
    });
    let mut constants = String::new();
    for name in ["FEATURES", "OUTPUTS", "IS_CLASSIFIER"] {
        let define = format!("#define CLASSIFIER_{name} ");
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(&define))
            .unwrap_or_else(|| panic!("{} has no {define}", header.display()));
        constants.push_str(&format!("pub const {name}: usize = {};\n", value.trim()));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sizes.rs");
    std::fs::write(out, constants).unwrap();
}
