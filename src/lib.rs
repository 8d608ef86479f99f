//! Kiln: a compiler for a small language that describes neural-network models and their training.
//!
//! The pipeline, in order (see `driver` for the one function that runs it as a flat list):
//!
//! ```text
//! source ─syntax─▶ AST ─check─▶ checked program ─ir::lower─▶ forward IR ─ir::autodiff─▶ IR with
//! backward ─ir::optimizer─▶ training-step IR ─ir::passes─▶ optimized IR ─codegen::kernel─▶
//! kernels, memory plan, loop specs ─codegen::emit─▶ native code ─runtime─▶ training
//!                                   └── interp: the ndarray reference interpreter (the oracle)
//! ```
//!
//! Below the stages: `settings` (what a program's built-ins mean: one definition each) and
//! `program` (the checked program the later stages read). The modules import downwards only
//! (`docs/ARCHITECTURE.md`, checked by `tests/architecture.rs`).
//!
//! The library never prints and never touches the terminal; only the CLI (`src/main.rs`,
//! `src/cli/`) and the runtime's loaders and writers (`runtime::{data, checkpoint, predict}`)
//! touch files.

pub mod buffer;
pub mod check;
pub mod codegen;
pub mod diag;
pub mod driver;
pub mod explain;
pub mod ide;
pub mod interp;
pub mod ir;
pub mod program;
pub mod runtime;
pub mod session;
pub mod settings;
pub mod suggest;
pub mod syntax;
