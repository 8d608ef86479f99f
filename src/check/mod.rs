//! Shape checking: resolves names, fills in defaults and checks every tensor shape.
pub mod program;
