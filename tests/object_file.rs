//! The seed model's training step compiled into an object file (`codegen::compile_object`, the
//! same emitter as the JIT) defines the exported step and refers to exactly the runtime support
//! it calls, each undefined symbol the target of a relocation.

use std::collections::BTreeSet;

use kiln::codegen::{self, CodegenConfig};
use kiln::driver::{self, GraphStage};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SymbolKind};

#[test]
fn seed_step_compiles_into_an_object_file_with_its_support_symbols() {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/seed.model"),
    )
    .unwrap();
    let checked = driver::check_source(&source).unwrap();
    let program = &checked.program;
    let fit = &program.fits[0];
    let graph = driver::training_graph(program, fit, GraphStage::Optimized).unwrap();
    let bytes = codegen::compile_object(
        &graph,
        &CodegenConfig {
            max_batch: fit.batch,
        },
    )
    .unwrap();

    let file = object::File::parse(&*bytes).unwrap();
    let step = file
        .symbols()
        .find(|s| s.name() == Ok(codegen::STEP_SYMBOL))
        .expect("the step symbol");
    assert!(step.is_definition() && step.is_global(), "{step:?}");
    assert_eq!(step.kind(), SymbolKind::Text);
    assert!(step.size() > 0);

    let undefined: BTreeSet<&str> = file
        .symbols()
        .filter(|s| s.is_undefined())
        .map(|s| s.name().unwrap())
        .filter(|name| !name.is_empty())
        .collect();
    // Seed has large products (`kiln_sgemm`), a log-softmax (`kiln_logf`), Adam's bias
    // corrections βᵗ (`kiln_powf`) and, where the host has AVX2 and FMA, the native Adam update
    // (the condition `codegen/adam.rs`'s `available` checks).
    let mut expected = BTreeSet::from(["kiln_sgemm", "kiln_logf", "kiln_powf"]);
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        expected.insert("kiln_adam");
    }
    assert_eq!(undefined, expected);

    let relocated: BTreeSet<&str> = file
        .sections()
        .flat_map(|section| section.relocations().collect::<Vec<_>>())
        .filter_map(|(_, reloc)| match reloc.target() {
            RelocationTarget::Symbol(index) => file.symbol_by_index(index).ok(),
            _ => None,
        })
        .filter(|s| s.is_undefined())
        .map(|s| s.name().unwrap())
        .collect();
    assert_eq!(relocated, expected, "every import is called");
}
