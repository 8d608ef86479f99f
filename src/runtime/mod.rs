//! The runtime: data loading, seeded initialisation, the epoch loop that drives a compiled
//! training step, callbacks, checkpoints and predictions. `data`, `checkpoint` and `predict`
//! are, with the CLI, the only code that touches files (and `memory`, which reads /proc).

pub mod bundle;
pub mod callbacks;
pub mod checkpoint;
pub mod data;
pub mod distributed;
mod epochs;
pub mod evaluate;
pub mod history;
pub mod init;
pub mod memory;
pub mod metrics;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod plot;
pub mod predict;
pub mod train;
