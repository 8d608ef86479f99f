//! The runtime: data loading, seeded initialisation, and the epoch loop that drives a compiled
//! training step. `data` is, with the CLI, the only code that touches files.

pub mod data;
pub mod evaluate;
pub mod history;
pub mod init;
pub mod train;
