//! The tensor IR: one op set (`op`), an SSA graph (`graph`), a verifier and a stable printer.
//! Lowering turns a checked model into a forward graph; autodiff appends the backward pass as IR;
//! the optimizer update is IR too; `passes` optimizes the result (simplify, log-softmax fusion,
//! fold, CSE, DCE).

pub mod autodiff;
pub mod builder;
pub mod cse;
pub mod dce;
pub mod dropout;
pub mod fold;
pub mod graph;
pub mod lower;
pub mod op;
pub mod optimizer;
pub mod passes;
pub mod print;
pub mod recurrence;
pub mod shape;
pub mod simplify;
pub mod softmax_ce;
pub mod verify;
pub mod window;

pub use graph::{Graph, ValueId};
pub use op::{
    BinaryOp, ElementwiseKind, LeafKind, Op, OpKind, PoolKind, ReduceKind, StructuredKind, UnaryOp,
};
pub use shape::{DType, Dim, Shape, TensorType};
