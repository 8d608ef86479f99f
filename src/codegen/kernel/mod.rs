//! The kernel layer, between the IR and a backend: the optimized step grouped into fused kernels
//! (`schedule`), every stored value's place in one arena (`memory`), each kernel's loop nest as a
//! description (`loops`), and which matrix products run as emitted kernels (`products`). Nothing
//! here knows Cranelift (`tests/architecture.rs`); `codegen::emit` turns these into code.

pub mod loops;
pub mod memory;
pub mod products;
pub mod schedule;
