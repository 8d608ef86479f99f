//! `settings::arithmetic` over the graph: the one implementation of the arithmetic that
//! optimizers' updates and losses are written in. Each value is a node, created in the order the
//! rule asks for it, with the rule's source span.

use super::graph::{Graph, ValueId};
use super::op::{BinaryOp, UnaryOp};
use crate::diag::Span;
use crate::settings::arithmetic::{Arithmetic, Var};

/// A rule's builder that writes into a graph.
pub trait OnGraph {
    fn graph(&mut self) -> &mut Graph;
    fn span(&self) -> Option<Span>;
}

pub fn var(value: ValueId) -> Var {
    Var(value.0 as usize)
}

pub fn id(v: Var) -> ValueId {
    ValueId(v.0 as u32)
}

fn unary<B: OnGraph + ?Sized>(b: &mut B, op: UnaryOp, x: Var) -> Var {
    let span = b.span();
    var(b.graph().unary(op, id(x), span))
}

fn binary<B: OnGraph + ?Sized>(b: &mut B, op: BinaryOp, x: Var, y: Var) -> Var {
    let span = b.span();
    var(b.graph().binary(op, id(x), id(y), span))
}

impl<B: OnGraph> Arithmetic for B {
    fn constant(&mut self, value: f32) -> Var {
        let span = self.span();
        var(self.graph().constant(value, span))
    }

    fn neg(&mut self, x: Var) -> Var {
        unary(self, UnaryOp::Neg, x)
    }

    fn abs(&mut self, x: Var) -> Var {
        unary(self, UnaryOp::Abs, x)
    }

    fn sqrt(&mut self, x: Var) -> Var {
        unary(self, UnaryOp::Sqrt, x)
    }

    fn add(&mut self, a: Var, b: Var) -> Var {
        binary(self, BinaryOp::Add, a, b)
    }

    fn sub(&mut self, a: Var, b: Var) -> Var {
        binary(self, BinaryOp::Sub, a, b)
    }

    fn mul(&mut self, a: Var, b: Var) -> Var {
        binary(self, BinaryOp::Mul, a, b)
    }

    fn div(&mut self, a: Var, b: Var) -> Var {
        binary(self, BinaryOp::Div, a, b)
    }

    fn pow(&mut self, a: Var, b: Var) -> Var {
        binary(self, BinaryOp::Pow, a, b)
    }

    fn min(&mut self, a: Var, b: Var) -> Var {
        binary(self, BinaryOp::Min, a, b)
    }
}
