//! The arithmetic that built-ins' rules are written in (an optimizer's update, a loss): values
//! are handles, and whoever implements `Arithmetic` decides what they are. `ir` implements it over
//! the graph, once for every rule (`ir::builder`), so a rule written here is compiled and fused
//! with the rest of the step.

/// A value in the rule being built (an IR node, to `ir`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(pub usize);

pub trait Arithmetic {
    fn constant(&mut self, value: f32) -> Var;
    fn neg(&mut self, x: Var) -> Var;
    fn abs(&mut self, x: Var) -> Var;
    fn sqrt(&mut self, x: Var) -> Var;
    fn add(&mut self, a: Var, b: Var) -> Var;
    fn sub(&mut self, a: Var, b: Var) -> Var;
    fn mul(&mut self, a: Var, b: Var) -> Var;
    fn div(&mut self, a: Var, b: Var) -> Var;
    fn pow(&mut self, a: Var, b: Var) -> Var;
    fn min(&mut self, a: Var, b: Var) -> Var;
}
