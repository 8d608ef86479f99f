//! Recognizing Adam's update loop, to call the native 256-bit update (`codegen/adam.rs`)
//! instead of emitting it.
//!
//! The match is structural and exact: the loop must be one flat run over the parameters whose
//! three stores are the new parameter, first moment and second moment in Keras's or PyTorch's
//! form as `ir/optimizer.rs` builds them, every product the Cranelift loop would fuse into an
//! `fma` must be one it can fuse (so the native arithmetic, written with those fusions, is the
//! loop's), and the buffers must be disjoint. Anything else keeps the emitted loop.

use cranelift_codegen::ir::{FuncRef, InstBuilder, types};

use super::{Emitter, Extent, LoopSpec};
use crate::codegen::kernel::memory::Buf;
use crate::ir::{BinaryOp, Dim, Op, UnaryOp, ValueId};

/// Element offsets and constants of one recognized update loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct AdamLoop {
    n: usize,
    p: usize,
    g: usize,
    m: usize,
    v: usize,
    alpha: usize,
    /// PyTorch's form: the offset of `√(1 − β2^t)`.
    root: Option<usize>,
    c1: f32,
    c2: f32,
    b2: f32,
    eps: f32,
}

impl AdamLoop {
    /// What `kiln run --profile` calls this loop.
    pub(super) fn profile_label(&self) -> String {
        let form = if self.root.is_some() {
            "PyTorch"
        } else {
            "Keras"
        };
        format!(
            "update adam [{}] ({form} form, native 256-bit code)",
            self.n
        )
    }
}

impl Emitter<'_, '_> {
    /// The loop's offsets and constants if `spec` is Adam's update.
    pub(super) fn adam_loop(&self, spec: &LoopSpec) -> Option<AdamLoop> {
        let [Dim::Fixed(n)] = spec.dims[..] else {
            return None;
        };
        if spec.stores.len() != 3
            || !spec.labels.is_empty()
            || !spec.indices.is_empty()
            || spec.reduce.is_some()
        {
            return None;
        }
        let stored = |v: ValueId| {
            spec.stores
                .iter()
                .find(|s| s.0 == v)
                .and_then(|(_, a)| full(&a.buf, &a.strides))
        };
        let (p_new, parts, m_new, v_new) = spec.stores.iter().find_map(|&(p_new, _)| {
            let (parts, m_new, v_new) = self.adam_parts(spec, n, p_new)?;
            Some((p_new, parts, m_new, v_new))
        })?;
        // Updated in place: each store goes where its old value is read from.
        if stored(p_new)? != parts.p || stored(m_new)? != parts.m || stored(v_new)? != parts.v {
            return None;
        }
        let ranges = [parts.p, parts.g, parts.m, parts.v];
        let scalars = [Some(parts.alpha), parts.root];
        let overlaps = |a: usize, b: usize| a < b + n && b < a + n;
        for (i, &a) in ranges.iter().enumerate() {
            if ranges[i + 1..].iter().any(|&b| overlaps(a, b))
                || scalars.iter().flatten().any(|&s| a <= s && s < a + n)
            {
                return None;
            }
        }
        Some(parts)
    }

    /// Matches `p_new = p − (m_new · alpha) / (√v_new + ε)` (or PyTorch's `√v_new / root + ε`)
    /// with its moments; returns the parts and the moments' values.
    fn adam_parts(
        &self,
        spec: &LoopSpec,
        n: usize,
        p_new: ValueId,
    ) -> Option<(AdamLoop, ValueId, ValueId)> {
        let m = Match { e: self, spec };
        let (p, step) = m.binary(p_new, BinaryOp::Sub)?;
        let (num, den) = m.binary(step, BinaryOp::Div)?;
        let (m_new, alpha) = m.binary(num, BinaryOp::Mul)?;
        let (root_v, eps) = m.binary(den, BinaryOp::Add)?;
        let eps = m.constant(eps)?;
        let (root, v_new) = match m.binary(root_v, BinaryOp::Div) {
            Some((sqrt, root)) => (Some(m.scalar(root)?), m.unary(sqrt, UnaryOp::Sqrt)?),
            None => (None, m.unary(root_v, UnaryOp::Sqrt)?),
        };
        // m_new = m + (g − m)·c1: fma(g − m, c1, m).
        let (m_old, dm) = m.binary(m_new, BinaryOp::Add)?;
        let (diff, c1) = m.fused(dm)?;
        let (g, m_again) = m.binary(diff, BinaryOp::Sub)?;
        if m_again != m_old {
            return None;
        }
        let c1 = m.constant(c1)?;
        let (v_old, c2, b2) = if root.is_none() {
            // Keras: v_new = v + (g·g − v)·c2: fma(fma(g, g, −v), c2, v).
            let (v_old, dv) = m.binary(v_new, BinaryOp::Add)?;
            let (diff, c2) = m.fused(dv)?;
            let (g2, v_again) = m.binary(diff, BinaryOp::Sub)?;
            if v_again != v_old || m.fused(g2)? != (g, g) {
                return None;
            }
            (v_old, m.constant(c2)?, 0.0)
        } else {
            // PyTorch: v_new = v·β2 + (g·g)·c2: fma(v, β2, (g·g)·c2).
            let (kept, added) = m.binary(v_new, BinaryOp::Add)?;
            let (v_old, b2) = m.fused(kept)?;
            let (g2, c2) = m.binary(added, BinaryOp::Mul)?;
            if m.binary(g2, BinaryOp::Mul)? != (g, g) {
                return None;
            }
            (v_old, m.constant(c2)?, m.constant(b2)?)
        };
        let parts = AdamLoop {
            n,
            p: m.full(p)?,
            g: m.full(g)?,
            m: m.full(m_old)?,
            v: m.full(v_old)?,
            alpha: m.scalar(alpha)?,
            root,
            c1,
            c2,
            b2,
            eps,
        };
        Some((parts, m_new, v_new))
    }

    /// Calls `kiln_adam` for the recognized loop.
    pub(super) fn call_adam(&mut self, f: FuncRef, a: &AdamLoop) {
        let offset = |e: &mut Self, x: usize| e.iconst(x as i64);
        let args = [
            self.arena,
            offset(self, a.n),
            offset(self, a.p),
            offset(self, a.g),
            offset(self, a.m),
            offset(self, a.v),
            offset(self, a.alpha),
            self.iconst(a.root.map_or(-1, |r| r as i64)),
            self.fconst(types::F32, a.c1),
            self.fconst(types::F32, a.c2),
            self.fconst(types::F32, a.b2),
            self.fconst(types::F32, a.eps),
        ];
        self.b.ins().call(f, &args);
    }
}

/// The element offset of a buffer read or written contiguously along the flat loop.
fn full(buf: &Buf, strides: &[Extent]) -> Option<usize> {
    match (buf, strides) {
        (Buf::F32(o), [s]) if *s == Extent::ONE => Some(*o),
        _ => None,
    }
}

/// Structural matching over a loop's values, seen as the emitted loop evaluates them.
struct Match<'a, 'f, 'g> {
    e: &'a Emitter<'f, 'g>,
    spec: &'a LoopSpec,
}

impl Match<'_, '_, '_> {
    fn leaf(&self, v: ValueId) -> Option<&super::Access> {
        self.spec.leaves.iter().find(|l| l.0 == v).map(|l| &l.1)
    }

    /// `v`'s operands if it is computed in the loop as `op`.
    fn binary(&self, v: ValueId, op: BinaryOp) -> Option<(ValueId, ValueId)> {
        if self.leaf(v).is_some() {
            return None;
        }
        let node = self.e.graph.node(v);
        (node.op == Op::Binary(op)).then(|| (node.inputs[0], node.inputs[1]))
    }

    fn unary(&self, v: ValueId, op: UnaryOp) -> Option<ValueId> {
        if self.leaf(v).is_some() {
            return None;
        }
        let node = self.e.graph.node(v);
        (node.op == Op::Unary(op)).then(|| node.inputs[0])
    }

    /// A product the emitted loop fuses into the `fma` of the sum that uses it.
    fn fused(&self, v: ValueId) -> Option<(ValueId, ValueId)> {
        let operands = self.binary(v, BinaryOp::Mul)?;
        self.e.fuses_into_fma(v).then_some(operands)
    }

    /// A constant, through broadcasts.
    fn constant(&self, v: ValueId) -> Option<f32> {
        if self.leaf(v).is_some() {
            return None;
        }
        let node = self.e.graph.node(v);
        match node.op {
            Op::Const { value } => Some(value),
            Op::Broadcast => self.constant(node.inputs[0]),
            _ => None,
        }
    }

    /// The offset of a scalar read by every element, through broadcasts.
    fn scalar(&self, v: ValueId) -> Option<usize> {
        match self.leaf(v) {
            Some(a) => match (&a.buf, &a.strides[..]) {
                (Buf::F32(o), [s]) if *s == Extent::ZERO => Some(*o),
                _ => None,
            },
            None => {
                let node = self.e.graph.node(v);
                (node.op == Op::Broadcast).then_some(())?;
                self.scalar(node.inputs[0])
            }
        }
    }

    /// The offset of a buffer read contiguously along the loop.
    fn full(&self, v: ValueId) -> Option<usize> {
        self.leaf(v).and_then(|a| full(&a.buf, &a.strides))
    }
}
