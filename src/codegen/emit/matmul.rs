//! Matrix products: the choice between the `gemm` crate and a kernel emitted in Cranelift, and
//! that kernel.
//!
//! The Cranelift kernel is register-blocked: a 4×8 tile of the output lives in eight `f32x4`
//! accumulators while the `k` loop broadcasts one element of A per row (`splat`) and multiplies
//! it into two vectors of one row of B (`fma`). Edges: rows beyond a multiple of 4 (every row
//! of a batch-1 product) run a 1×32 tile (eight accumulators, so the adds' latency is hidden:
//! a library whose every product was this kernel ran a batch-1 MNIST MLP in 16 µs instead of
//! 30 µs with the 1×8 tile it had before, the seed model in 0.5 µs instead of 1.3 µs), then 1×8; columns beyond a multiple of 8 run 4-wide and
//! then scalar tiles. The tile shape never changes a result: each output element is its own
//! sum over `k` in order. A is read through its
//! strides (either transpose); B must have unit column stride, so a transposed B is first copied
//! into a scratch buffer the memory plan reserves. Nothing is allocated at run time.
//!
//! The products are `fmul` + `fadd`, not `fma`: Cranelift's x64 backend only emits
//! `vfmadd213`/`vfmadd132`, which overwrite a multiplicand, so every `fma` costs a register copy
//! and the accumulators are shuffled at every loop back-edge; separate 3-operand AVX multiply
//! and add (which Zen 4 issues on different pipes) measured ~1.3x faster (kernel/gemm ratio in
//! the same run ~0.31 with `fma`, ~0.40 with multiply + add).
//!
//! Measured against `gemm` (`matmul_crossover` in the codegen tests, interleaved, release, Zen 4
//! shared core), the kernel reaches 15–28 GFLOP/s while `gemm` reaches 35–90 GFLOP/s already at
//! the seed model's 32×64×32; the kernel only wins on tiny products (8×8×8: 4.4x, 4×10×4: 13x;
//! 16×16×16: 0.73x). Hence `CRANELIFT_MAX_FLOPS`: everything larger calls `gemm`.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{BlockArg, InstBuilder, Type, Value, types};

use super::{Emitter, V4, rw};
use crate::codegen::kernel::memory::Buf;
use crate::codegen::kernel::products::Geometry;
use crate::ir::{Dim, ValueId};

/// Rows of the register tile.
const MR: usize = 4;
/// Columns of the register tile (two `f32x4`).
const NR: usize = 8;
/// Columns of the one-row tile for the rows beyond a multiple of `MR` (eight `f32x4`).
const NR_WIDE: usize = 32;

const FUSED: bool = false;
/// Steps of `k` per loop iteration (a power of two). 1: unrolling by 2 measured no faster, and
/// Cranelift's scheduler then hoists all the iteration's loads to the top and spills.
const K_UNROLL: usize = 1;

fn fixed(d: Dim) -> usize {
    match d {
        Dim::Fixed(n) => n,
        Dim::Batch => unreachable!("checked by Geometry::emittable"),
    }
}

/// Pointers and strides (bytes) of one product, as the tiles see them.
struct Operands {
    a: Value,
    b: Value,
    c: Value,
    m: Value,
    k: Value,
    n: usize,
    a_rs: i32,
    a_cs: i64,
    b_rs: i64,
}

impl Emitter<'_, '_> {
    /// `a*b + c` as a multiply and an add (see the module comment for why not `fma`).
    fn madd(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.fma && FUSED {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }

    pub(super) fn buf_ptr(&mut self, buf: Buf) -> Value {
        let o = self.buf_offset(buf);
        self.addr(buf, o)
    }

    /// Emits `node` (a matmul) as a Cranelift kernel writing its buffer.
    pub(super) fn emitted_matmul(&mut self, node: ValueId) -> Result<(), super::CodegenError> {
        let g = Geometry::of(self.graph, node).expect("a matmul node");
        let inputs = self.graph.node(node).inputs.clone();
        let c = self.buf_ptr(self.plan().home(node)?);
        let a = self.buf_ptr(self.plan().home(inputs[0])?);
        let b_in = self.buf_ptr(self.plan().home(inputs[1])?);
        let m = self.dim(g.m);
        let k = self.dim(g.k);
        let n = fixed(g.n);
        let b = if g.b_cs == Dim::Fixed(1) {
            b_in
        } else {
            let pack = self
                .mem
                .scratch
                .ok_or_else(|| super::err("no packing scratch"))?;
            let dst = self.buf_ptr(Buf::F32(pack));
            self.pack_transposed(b_in, fixed(g.b_cs), dst, k, n);
            dst
        };
        let ops = Operands {
            a,
            b,
            c,
            m,
            k,
            n,
            a_rs: (fixed(g.a_rs) * 4) as i32,
            a_cs: (fixed(g.a_cs) * 4) as i64,
            b_rs: (n * 4) as i64,
        };
        // Blocks of MR rows, column block by column block; then the rows beyond a multiple of
        // MR (all of them at batch 1, where the product is a matrix-vector product) one at a
        // time with a wider tile, so that more accumulators hide the adds' latency. Every
        // output element is still its own sum over `k` in order, so the tile shape does not
        // change a result.
        let m4 = self.b.ins().band_imm_s(ops.m, !(MR as i64 - 1));
        let zero = self.iconst(0);
        self.column_blocks(&ops, zero, m4, MR, &[NR]);
        self.column_blocks(&ops, m4, ops.m, 1, &[NR_WIDE, NR]);
        Ok(())
    }

    /// Rows `from..to` in tiles of `rows`, over all columns: blocks of the first width that
    /// fits, each a multiple of 4, then one vector of 4, then single columns.
    fn column_blocks(
        &mut self,
        ops: &Operands,
        from: Value,
        to: Value,
        rows: usize,
        widths: &[usize],
    ) {
        let n = ops.n;
        let mut j = 0;
        for &width in widths {
            let blocks = (n - j) / width;
            if blocks > 0 {
                let start = j;
                let nb = self.iconst(blocks as i64);
                self.counted_loop(nb, &mut |e, jb| {
                    let jv = e.b.ins().imul_imm_s(jb, (width * 4) as i64);
                    let jv = e.b.ins().iadd_imm_s(jv, (start * 4) as i64);
                    e.columns(ops, jv, from, to, rows, width / 4, V4);
                });
                j += blocks * width;
            }
        }
        if n - j >= 4 {
            let jv = self.iconst((j * 4) as i64);
            self.columns(ops, jv, from, to, rows, 1, V4);
            j += 4;
        }
        for jj in j..n {
            let jv = self.iconst((jj * 4) as i64);
            self.columns(ops, jv, from, to, rows, 1, types::F32);
        }
    }

    /// `dst[p*n + j] = src[j*stride + p]` for `p < k`, `j < n`.
    fn pack_transposed(&mut self, src: Value, stride: usize, dst: Value, k: Value, n: usize) {
        let nv = self.iconst(n as i64);
        self.counted_loop(nv, &mut |e, j| {
            let s = e.b.ins().imul_imm_s(j, (stride * 4) as i64);
            let s = e.b.ins().iadd(src, s);
            let d = e.b.ins().ishl_imm_u(j, 2);
            let d = e.b.ins().iadd(dst, d);
            e.counted_loop(k, &mut |e, p| {
                let sp = e.b.ins().ishl_imm_u(p, 2);
                let sp = e.b.ins().iadd(s, sp);
                let x = e.b.ins().load(types::F32, rw(), sp, 0);
                let dp = e.b.ins().imul_imm_s(p, (n * 4) as i64);
                let dp = e.b.ins().iadd(d, dp);
                e.b.ins().store(rw(), x, dp, 0);
            });
        });
    }

    /// Rows `from..to` (a multiple of `rows` apart) of the output columns starting at byte
    /// offset `j`, `nv` values of `ty` wide, in tiles of `rows` rows.
    #[allow(clippy::too_many_arguments)]
    fn columns(
        &mut self,
        ops: &Operands,
        j: Value,
        from: Value,
        to: Value,
        rows: usize,
        nv: usize,
        ty: Type,
    ) {
        let b = self.b.ins().iadd(ops.b, j);
        let c = self.b.ins().iadd(ops.c, j);
        let header = self.b.create_block();
        let body = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        self.b.ins().jump(header, &[BlockArg::from(from)]);
        self.b.switch_to_block(header);
        let i = self.b.block_params(header)[0];
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, to);
        self.b.ins().brif(more, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        self.tile(ops, i, b, c, rows, nv, ty);
        let i1 = self.b.ins().iadd_imm_s(i, rows as i64);
        self.b.ins().jump(header, &[BlockArg::from(i1)]);
        self.b.switch_to_block(exit);
    }

    /// One `rows × nv·lanes` tile at row `i`: accumulate over `k`, then store.
    #[allow(clippy::too_many_arguments)]
    fn tile(
        &mut self,
        ops: &Operands,
        i: Value,
        b: Value,
        c: Value,
        rows: usize,
        nv: usize,
        ty: Type,
    ) {
        let lane_bytes = ty.bytes() as i32;
        let a_row = self.b.ins().imul_imm_s(i, ops.a_rs as i64);
        let a = self.b.ins().iadd(ops.a, a_row);
        let c_row = self.b.ins().imul_imm_s(i, (ops.n * 4) as i64);
        let c = self.b.ins().iadd(c, c_row);

        let count = rows * nv;
        let zero = self.iconst(0);
        let z = self.fconst(ty, 0.0);
        let mut state = vec![zero, a, b];
        state.extend(std::iter::repeat_n(z, count));
        // `K_UNROLL` steps of k per iteration, then the remainder one at a time.
        let mut phases = vec![(ops.k, 1)];
        if K_UNROLL > 1 {
            let k_main = self.b.ins().band_imm_s(ops.k, !(K_UNROLL as i64 - 1));
            phases.insert(0, (k_main, K_UNROLL));
        }
        for (limit, unroll) in phases {
            let header = self.b.create_block();
            let body = self.b.create_block();
            let exit = self.b.create_block();
            self.b.append_block_param(header, types::I64); // p
            self.b.append_block_param(header, types::I64); // &a[i, p]
            self.b.append_block_param(header, types::I64); // &b[p, j]
            for _ in 0..count {
                self.b.append_block_param(header, ty);
            }
            let args: Vec<BlockArg> = state.iter().map(|&v| BlockArg::from(v)).collect();
            self.b.ins().jump(header, &args);

            self.b.switch_to_block(header);
            state = self.b.block_params(header).to_vec();
            let more = self.b.ins().icmp(IntCC::UnsignedLessThan, state[0], limit);
            self.b.ins().brif(more, body, &[], exit, &[]);

            self.b.switch_to_block(body);
            let (pa, pb) = (state[1], state[2]);
            let mut accs = state[3..].to_vec();
            for u in 0..unroll {
                let b_off = u as i32 * ops.b_rs as i32;
                let a_off = u as i32 * ops.a_cs as i32;
                let bv: Vec<Value> = (0..nv)
                    .map(|v| {
                        let off = b_off + v as i32 * lane_bytes;
                        self.b.ins().load(ty, rw(), pb, off)
                    })
                    .collect();
                for r in 0..rows {
                    let off = a_off + r as i32 * ops.a_rs;
                    let x = self.b.ins().load(types::F32, rw(), pa, off);
                    let x = if ty.is_vector() {
                        self.b.ins().splat(ty, x)
                    } else {
                        x
                    };
                    for (v, &bvv) in bv.iter().enumerate() {
                        accs[r * nv + v] = self.madd(x, bvv, accs[r * nv + v]);
                    }
                }
            }
            let p1 = self.b.ins().iadd_imm_s(state[0], unroll as i64);
            let pa1 = self.b.ins().iadd_imm_s(pa, ops.a_cs * unroll as i64);
            let pb1 = self.b.ins().iadd_imm_s(pb, ops.b_rs * unroll as i64);
            let mut args = vec![BlockArg::from(p1), BlockArg::from(pa1), BlockArg::from(pb1)];
            args.extend(accs.into_iter().map(BlockArg::from));
            self.b.ins().jump(header, &args);
            self.b.switch_to_block(exit);
        }
        let accs = &state[3..];
        let row_bytes = (ops.n * 4) as i32;
        for r in 0..rows {
            for v in 0..nv {
                let off = r as i32 * row_bytes + v as i32 * lane_bytes;
                self.b.ins().store(rw(), accs[r * nv + v], c, off);
            }
        }
    }
}
