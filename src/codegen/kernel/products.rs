//! Which matrix products run as a small emitted kernel and which call the GEMM library, and the
//! scratch the emitted kernel needs (the crossover was measured: see `emit/matmul.rs`).

use crate::ir::{Dim, Graph, Op, ValueId};

/// How matrix products are compiled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulPolicy {
    /// Small products as emitted Cranelift kernels, large ones through `gemm` (the crossover
    /// was measured; see `emit/matmul.rs`).
    #[default]
    Auto,
    /// Every product through `gemm`.
    Gemm,
    /// Every product whose row strides and width are fixed as a Cranelift kernel.
    Cranelift,
}

/// Products of at most this many multiply-adds (`m·n·k` at `max_batch`) use the Cranelift
/// kernel under `MatmulPolicy::Auto`.
pub const CRANELIFT_MAX_FLOPS: usize = 2048;

/// `dst[m×n] = op(a)[m×k] @ op(b)[k×n]` with the operands' row and column strides (elements).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    pub m: Dim,
    pub n: Dim,
    pub k: Dim,
    pub a_rs: Dim,
    pub a_cs: Dim,
    pub b_rs: Dim,
    pub b_cs: Dim,
}

impl Geometry {
    pub fn of(graph: &Graph, node: ValueId) -> Option<Geometry> {
        let n = graph.node(node);
        let Op::MatMul {
            transpose_a,
            transpose_b,
        } = n.op
        else {
            return None;
        };
        let sa = graph.shape(n.inputs[0]).dims();
        let sb = graph.shape(n.inputs[1]).dims();
        // Batched products always go through `gemm` (`Emitter::batched_matmul`).
        if sa.len() != 2 || sb.len() != 2 {
            return None;
        }
        let one = Dim::Fixed(1);
        let (m, k, a_rs, a_cs) = if transpose_a {
            (sa[1], sa[0], one, sa[1])
        } else {
            (sa[0], sa[1], sa[1], one)
        };
        let (n, b_rs, b_cs) = if transpose_b {
            (sb[0], one, sb[1])
        } else {
            (sb[1], sb[1], one)
        };
        Some(Geometry {
            m,
            n,
            k,
            a_rs,
            a_cs,
            b_rs,
            b_cs,
        })
    }

    /// The kernel needs a compile-time `n` and compile-time strides; `m` and `k` may be the batch.
    fn emittable(&self) -> bool {
        [self.n, self.a_rs, self.a_cs, self.b_rs, self.b_cs]
            .iter()
            .all(|d| matches!(d, Dim::Fixed(_)))
    }

    fn flops(&self, max_batch: usize) -> usize {
        let d = |d: Dim| match d {
            Dim::Batch => max_batch,
            Dim::Fixed(n) => n,
        };
        d(self.m) * d(self.n) * d(self.k)
    }

    /// Floats of packing scratch the Cranelift kernel needs (a transposed B, as `k×n`).
    pub fn pack_len(&self, max_batch: usize) -> usize {
        if self.b_cs == Dim::Fixed(1) {
            return 0;
        }
        let d = |d: Dim| match d {
            Dim::Batch => max_batch,
            Dim::Fixed(n) => n,
        };
        d(self.k) * d(self.n)
    }
}

/// Whether the product `node` runs as a kernel the backend emits itself (else it calls the GEMM).
pub fn emitted(graph: &Graph, node: ValueId, max_batch: usize, policy: MatmulPolicy) -> bool {
    let Some(g) = Geometry::of(graph, node) else {
        return false;
    };
    match policy {
        MatmulPolicy::Gemm => false,
        MatmulPolicy::Cranelift => g.emittable(),
        MatmulPolicy::Auto => g.emittable() && g.flops(max_batch) <= CRANELIFT_MAX_FLOPS,
    }
}
