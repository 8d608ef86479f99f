//! Adam's parameter update as native code the JIT'd step calls (`kiln_adam`), with 256-bit
//! vectors and, for large models, on the step's worker threads.
//!
//! Every other loop of the step is Cranelift's, which emits 128-bit vectors only. Adam's update
//! is bound by the divider (a square root and a division per parameter), and the divider takes
//! a 256-bit `vsqrtps`/`vdivps` about as fast as a 128-bit one: measured on Zen 4, the update of
//! `mnist`'s 269k parameters took 258 µs as a Cranelift loop, 18% of the step. The emitter
//! recognizes the update loop the optimizer lowering builds (`emit/adam.rs`) and calls this
//! instead; anything else, and hosts without AVX2 and FMA, keep the Cranelift loop.
//!
//! The arithmetic is the Cranelift loop's, operation for operation, including the products it
//! fuses into `fma`, so both give the same bits (a codegen test compares them), and splitting
//! the parameters over threads changes no result (each element is computed alone).

use super::gemm;

/// Parameters below this count are updated on the calling thread: waking a worker costs more
/// than the split saves.
pub(crate) const PARALLEL_MIN_PARAMS: usize = 1 << 15;

/// Adam's per-step constants, as the update loop reads them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Constants {
    /// `lr · √(1 − β2^t) / (1 − β1^t)` (Keras's form) or `lr / (1 − β1^t)` (PyTorch's).
    pub alpha: f32,
    /// PyTorch's form: `√(1 − β2^t)`, dividing `√v` before ε is added; `None` in Keras's.
    pub root: Option<f32>,
    /// `1 − β1`.
    pub c1: f32,
    /// `1 − β2`.
    pub c2: f32,
    /// `β2` (PyTorch's form only).
    pub b2: f32,
    pub eps: f32,
}

/// A range of parameters with their gradients and moments, updated in place.
#[derive(Clone, Copy)]
pub(crate) struct Chunk {
    p: *mut f32,
    g: *const f32,
    m: *mut f32,
    v: *mut f32,
    len: usize,
    k: Constants,
}

// SAFETY: a `Chunk` is only sent to a worker for the duration of one `kiln_adam` call, which
// waits for the worker before returning; the chunks of one call cover disjoint ranges.
unsafe impl Send for Chunk {}

impl Chunk {
    /// The chunk of `len` elements starting `start` elements into this one.
    fn part(&self, start: usize, len: usize) -> Chunk {
        // SAFETY: start + len <= self.len, so every pointer stays inside its buffer.
        unsafe {
            Chunk {
                p: self.p.add(start),
                g: self.g.add(start),
                m: self.m.add(start),
                v: self.v.add(start),
                len,
                k: self.k,
            }
        }
    }

    pub(crate) fn run(&self) {
        // SAFETY: the four ranges are disjoint buffers of the arena, `len` elements each, that
        // nothing else reads or writes during the call (`kiln_adam`'s contract).
        let (p, g, m, v) = unsafe {
            (
                std::slice::from_raw_parts_mut(self.p, self.len),
                std::slice::from_raw_parts(self.g, self.len),
                std::slice::from_raw_parts_mut(self.m, self.len),
                std::slice::from_raw_parts_mut(self.v, self.len),
            )
        };
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the host has AVX2 and FMA (checked above).
            unsafe { update_avx2(p, g, m, v, &self.k) };
            return;
        }
        update(p, g, m, v, &self.k);
    }
}

/// Whether this host runs the 256-bit update (the emitter only calls `kiln_adam` when it does).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn update_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &Constants) {
    update(p, g, m, v, k)
}

/// The update, written so that LLVM vectorizes it to the widest vectors the caller enables.
/// `mul_add` is a fused multiply-add exactly where the Cranelift loop fuses one.
#[inline(always)]
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &Constants) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let Constants {
        alpha,
        c1,
        c2,
        b2,
        eps,
        ..
    } = *k;
    match k.root {
        None => {
            for i in 0..n {
                let m1 = (g[i] - m[i]).mul_add(c1, m[i]);
                let v1 = g[i].mul_add(g[i], -v[i]).mul_add(c2, v[i]);
                p[i] -= (m1 * alpha) / (v1.sqrt() + eps);
                m[i] = m1;
                v[i] = v1;
            }
        }
        Some(root) => {
            for i in 0..n {
                let m1 = (g[i] - m[i]).mul_add(c1, m[i]);
                let v1 = v[i].mul_add(b2, g[i] * g[i] * c2);
                p[i] -= (m1 * alpha) / (v1.sqrt() / root + eps);
                m[i] = m1;
                v[i] = v1;
            }
        }
    }
}

/// Adam's update for JIT code: `n` parameters at element offset `p` of `arena`, their
/// gradients at `g`, moments at `m` and `v`; the scalars `alpha` and (PyTorch's form, `root`
/// ≥ 0) `root` are read from the arena at those offsets.
#[allow(clippy::too_many_arguments)]
pub(crate) extern "C" fn kiln_adam(
    arena: *mut f32,
    n: i64,
    p: i64,
    g: i64,
    m: i64,
    v: i64,
    alpha: i64,
    root: i64,
    c1: f32,
    c2: f32,
    b2: f32,
    eps: f32,
) {
    let at = |offset: i64| offset.max(0) as usize;
    // SAFETY: only called from the JIT'd step with offsets of buffers the memory plan placed in
    // the arena: the parameters, gradients and moments are `n` elements each and disjoint
    // (`emit/adam.rs` checks), `alpha` and `root` single scalars.
    let chunk = unsafe {
        Chunk {
            p: arena.add(at(p)),
            g: arena.add(at(g)),
            m: arena.add(at(m)),
            v: arena.add(at(v)),
            len: at(n),
            k: Constants {
                alpha: *arena.add(at(alpha)),
                root: (root >= 0).then(|| *arena.add(at(root))),
                c1,
                c2,
                b2,
                eps,
            },
        }
    };
    let threads = gemm::current_threads();
    if threads <= 1 || chunk.len < PARALLEL_MIN_PARAMS {
        chunk.run();
        return;
    }
    // Slabs of whole cache lines, one per thread.
    let step = chunk.len.div_ceil(threads).next_multiple_of(16);
    let part = |t: usize| {
        let start = (t * step).min(chunk.len);
        chunk.part(start, step.min(chunk.len - start))
    };
    gemm::spread_update(threads, &part);
}
