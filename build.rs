//! Generates the LALR parser from `grammar/kiln.lalrpop` into OUT_DIR.

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rerun-if-changed=grammar");
    lalrpop::Configuration::new()
        .set_in_dir("grammar")
        .set_out_dir(out_dir)
        .process()
        .expect("grammar/kiln.lalrpop must build");
}
