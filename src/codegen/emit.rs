//! Cranelift emission: turns the schedule and memory plan into one function
//! `step(arena: *mut f32, iarena: *mut i32, batch: i64)`. Buffers are addressed as constant
//! offsets from the arena bases (so the CLIF text is stable), inner loops run on `f32x4` with a
//! scalar tail, and matrix products either run a register-blocked kernel emitted here
//! (`matmul`, small shapes) or call the `gemm` crate through `kiln_sgemm`.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, ConstantData, Endianness, FuncRef, InstBuilder, InstructionData,
    MemFlagsData, Opcode, Type, Value, types,
};
use cranelift_frontend::FunctionBuilder;

use super::CodegenError;
use super::kernel::loops::{Access, Extent, LoopSpec, Plan};
use super::kernel::memory::{Buf, MemoryPlan};
use super::kernel::schedule::{Kernel, Schedule};
use super::recurrence::{ScanOp, cell_code};
use super::window::{WindowOp, plane_args};
use crate::ir::recurrence::CellKind;
use crate::ir::{BinaryOp, Dim, Graph, Op, PoolKind, ReduceKind, UnaryOp, ValueId};

mod adam;
pub(super) mod matmul;

const V4: Type = types::F32X4;

/// The block length of long sums (a multiple of 4): sums up to this long are added in order,
/// longer ones block by block (docs/language.md, "Numerics").
pub const SUM_BLOCK: usize = 4096;

fn err(message: impl Into<String>) -> CodegenError {
    CodegenError {
        message: message.into(),
    }
}

/// How a vector loop finishes the elements a whole vector does not cover.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// One element at a time.
    Scalar,
    /// One more vector over the last four (see [`Emitter::vector_loop_with`]).
    Overlap,
}

/// Profile labels that replace the default ones, by timing-site index.
pub type SiteLabels = Vec<(usize, String)>;

pub struct Helpers {
    pub gemm: FuncRef,
    /// `kiln_window`, the windowed ops (`codegen/window.rs`).
    pub window: FuncRef,
    /// `kiln_recurrence`, the scans (`codegen/recurrence.rs`).
    pub recurrence: FuncRef,
    pub logf: FuncRef,
    pub powf: FuncRef,
    /// `kiln_adam`, when the host runs the native update (see `codegen/adam.rs`).
    pub adam: Option<FuncRef>,
    /// `kiln_profile_mark(site)`, called after each kernel of a profiled step (see
    /// `profile.rs`); `None` for the ordinary step, which then has no calls between kernels.
    pub mark: Option<FuncRef>,
}

pub struct Emitter<'f, 'g> {
    pub b: FunctionBuilder<'f>,
    pub graph: &'g Graph,
    pub sched: &'g Schedule,
    pub mem: &'g MemoryPlan,
    pub helpers: Helpers,
    arena: Value,
    iarena: Value,
    batch: Value,
    batch_f: Value,
    /// Whether the host has FMA (without it, a vector `fma` becomes four libcalls).
    fma: bool,
    users: Vec<usize>,
}

/// A matrix product's sizes and operand strides (in elements), as `kiln_sgemm` takes them.
#[derive(Clone, Copy)]
struct GemmDims {
    m: Value,
    n: Value,
    k: Value,
    a_rs: Value,
    a_cs: Value,
    b_rs: Value,
    b_cs: Value,
}

impl GemmDims {
    /// `kiln_sgemm`'s arguments for `rows` rows of the product (`m`, or a batch stacked tall).
    fn args(&self, rows: Value, dst: Value, a: Value, b: Value) -> [Value; 10] {
        let GemmDims {
            n,
            k,
            a_rs,
            a_cs,
            b_rs,
            b_cs,
            ..
        } = *self;
        [rows, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs]
    }
}

fn ro() -> MemFlagsData {
    MemFlagsData::new().with_notrap().with_readonly()
}
fn rw() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}
fn lanes() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

impl<'f, 'g> Emitter<'f, 'g> {
    /// Sets up the entry block; `declare` then `finish` the body.
    pub fn new(
        mut b: FunctionBuilder<'f>,
        graph: &'g Graph,
        sched: &'g Schedule,
        mem: &'g MemoryPlan,
        helpers: Helpers,
        fma: bool,
    ) -> Emitter<'f, 'g> {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let batch_f = b.ins().fcvt_from_uint(types::F32, params[2]);
        Emitter {
            b,
            graph,
            sched,
            mem,
            helpers,
            arena: params[0],
            iarena: params[1],
            batch: params[2],
            batch_f,
            fma,
            users: graph.users().iter().map(Vec::len).collect(),
        }
    }

    fn plan(&self) -> Plan<'g> {
        Plan {
            graph: self.graph,
            sched: self.sched,
            mem: self.mem,
        }
    }

    pub fn signature_params(ptr: Type) -> Vec<AbiParam> {
        vec![
            AbiParam::new(ptr),
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
        ]
    }

    /// Emits the whole step; returns the number of profiling marks emitted (0 unless
    /// `helpers.mark` is set) and, for the update loops that call the native Adam update, their
    /// site index with a profile label saying so.
    pub fn emit_all(
        mut self,
        target: cranelift_codegen::isa::TargetFrontendConfig,
    ) -> Result<(usize, SiteLabels), CodegenError> {
        let groups = self.plan().update_runs();
        let mut sites = 0i64;
        for k in 0..self.sched.kernels.len() {
            match self.sched.kernels[k].clone() {
                Kernel::Elementwise { root, matmul, .. } => {
                    if let Some(m) = matmul {
                        self.matmul(m)?;
                    }
                    let dims = self.graph.shape(root).0.clone();
                    let access = self.plan().access(root, &dims)?;
                    let spec = self
                        .plan()
                        .spec(dims, vec![(root, access)], None, &[root])?;
                    self.loop_nest(&spec)?;
                }
                Kernel::MatMul { node } => self.matmul(node)?,
                Kernel::Reduce { node, .. } => self.reduce(node)?,
                Kernel::Softmax { node } => self.softmax(node)?,
                Kernel::Copy { node } => self.copy(node)?,
                Kernel::Concat { node } => self.concat(node)?,
                Kernel::Rows { node } => self.rows(node)?,
                Kernel::Window { node } => self.window(node)?,
                Kernel::Scan { node } => self.scan(node)?,
                Kernel::Update { .. } => continue,
            }
            self.mark(&mut sites);
        }
        let mut native = Vec::new();
        for spec in groups? {
            match self.helpers.adam.zip(self.adam_loop(&spec)) {
                Some((f, adam)) => {
                    self.call_adam(f, &adam);
                    native.push((sites as usize, adam.profile_label()));
                }
                None => self.loop_nest(&spec)?,
            }
            self.mark(&mut sites);
        }
        self.b.ins().return_(&[]);
        self.b.seal_all_blocks();
        self.b.finalize(target);
        Ok((sites as usize, native))
    }

    /// In a profiled step, a call that ends timing site `sites` (and counts it).
    fn mark(&mut self, sites: &mut i64) {
        if let Some(mark) = self.helpers.mark {
            let site = self.iconst(*sites);
            self.b.ins().call(mark, &[site]);
            *sites += 1;
        }
    }

    // ── Values ─────────────────────────────────────────────────────────────────────────────

    fn iconst(&mut self, x: i64) -> Value {
        self.b.ins().iconst(types::I64, x)
    }

    fn extent(&mut self, e: Extent) -> Value {
        let mut v = self.iconst(e.fixed as i64);
        for _ in 0..e.batch_pow {
            v = self.b.ins().imul(v, self.batch);
        }
        v
    }

    fn dim(&mut self, d: Dim) -> Value {
        self.extent(Extent::of(d))
    }

    fn fconst(&mut self, ty: Type, x: f32) -> Value {
        let s = self.b.ins().f32const(x);
        if ty.is_vector() {
            self.b.ins().splat(ty, s)
        } else {
            s
        }
    }

    /// Inputs are never written during a step, so their loads may move freely.
    fn load_flags(&self, v: ValueId) -> MemFlagsData {
        if matches!(self.graph.node(v).op, Op::Input { .. }) {
            ro()
        } else {
            rw()
        }
    }

    /// Byte address of element `index` of the arena `buf` lives in.
    fn addr(&mut self, buf: Buf, index: Value) -> Value {
        let base = match buf {
            Buf::F32(_) => self.arena,
            Buf::I32(_) => self.iarena,
        };
        let bytes = self.b.ins().ishl_imm_u(index, 2);
        self.b.ins().iadd(base, bytes)
    }

    fn buf_offset(&mut self, buf: Buf) -> Value {
        match buf {
            Buf::F32(o) | Buf::I32(o) => self.iconst(o as i64),
        }
    }

    /// Byte address of the first element of `v`'s home buffer.
    fn home_addr(&mut self, v: ValueId) -> Result<Value, CodegenError> {
        let buf = self.plan().home(v)?;
        let o = self.buf_offset(buf);
        Ok(self.addr(buf, o))
    }

    /// `c ? a : b` with a float comparison mask, for scalars or vectors.
    fn select(&mut self, cc: FloatCC, x: Value, y: Value, a: Value, b: Value) -> Value {
        let c = self.b.ins().fcmp(cc, x, y);
        if self.b.func.dfg.value_type(a).is_vector() {
            let m = self.b.ins().bitcast(V4, lanes(), c);
            self.b.ins().bitselect(m, a, b)
        } else {
            self.b.ins().select(c, a, b)
        }
    }

    /// The i32x4 vector [0, 1, 2, 3].
    fn iota(&mut self) -> Value {
        let bytes: Vec<u8> = (0..4i32).flat_map(|l| l.to_le_bytes()).collect();
        let lanes = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
        self.b.ins().vconst(types::I32X4, lanes)
    }

    /// max(a, b) in the form the x64 backend lowers to one `maxps`.
    fn max(&mut self, a: Value, b: Value) -> Value {
        self.select(FloatCC::LessThan, b, a, a, b)
    }

    fn combine(&mut self, kind: ReduceKind, a: Value, b: Value) -> Value {
        match kind {
            // A mean accumulates its sum; the reduce kernel scales it afterwards.
            ReduceKind::Sum | ReduceKind::Mean => self.b.ins().fadd(a, b),
            ReduceKind::Max => self.max(a, b),
        }
    }

    fn horizontal(&mut self, kind: ReduceKind, v: Value) -> Value {
        let l: Vec<Value> = (0..4u8).map(|i| self.b.ins().extractlane(v, i)).collect();
        let a = self.combine(kind, l[0], l[1]);
        let b = self.combine(kind, l[2], l[3]);
        self.combine(kind, a, b)
    }

    fn identity(kind: ReduceKind) -> f32 {
        match kind {
            ReduceKind::Sum | ReduceKind::Mean => 0.0,
            ReduceKind::Max => f32::NEG_INFINITY,
        }
    }

    /// Calls a scalar `f32 -> f32` (or two-argument) helper per lane.
    fn call_lanes(&mut self, f: FuncRef, args: &[Value]) -> Value {
        let ty = self.b.func.dfg.value_type(args[0]);
        if !ty.is_vector() {
            let call = self.b.ins().call(f, args);
            return self.b.inst_results(call)[0];
        }
        let mut out = self.fconst(V4, 0.0);
        for lane in 0..4u8 {
            let scalars: Vec<Value> = args
                .iter()
                .map(|&a| self.b.ins().extractlane(a, lane))
                .collect();
            let call = self.b.ins().call(f, &scalars);
            let r = self.b.inst_results(call)[0];
            out = self.b.ins().insertlane(out, r, lane);
        }
        out
    }

    // The Cephes coefficients are kept as published.
    #[allow(clippy::excessive_precision)]
    /// expf by range reduction and a degree-5 polynomial (Cephes), exact to ~1 ulp.
    fn exp(&mut self, x: Value) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        let ity = if ty.is_vector() {
            types::I32X4
        } else {
            types::I32
        };
        let hi = self.fconst(ty, 88.376_26);
        let lo = self.fconst(ty, -87.336_54);
        let xc = self.select(FloatCC::GreaterThan, x, hi, hi, x);
        let xc = self.select(FloatCC::LessThan, xc, lo, lo, xc);
        let log2e = self.fconst(ty, std::f32::consts::LOG2_E);
        let half = self.fconst(ty, 0.5);
        let fx = self.b.ins().fmul(xc, log2e);
        let fx = self.b.ins().fadd(fx, half);
        let n = self.b.ins().floor(fx);
        let c1 = self.fconst(ty, 0.693_359_4);
        let c2 = self.fconst(ty, -2.121_944_4e-4);
        let t = self.b.ins().fmul(n, c1);
        let r = self.b.ins().fsub(xc, t);
        let t = self.b.ins().fmul(n, c2);
        let r = self.b.ins().fsub(r, t);
        let z = self.b.ins().fmul(r, r);
        let coeffs = [
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            5.000_000_1e-1,
        ];
        let mut y = self.fconst(ty, coeffs[0]);
        for &c in &coeffs[1..] {
            let cv = self.fconst(ty, c);
            let m = self.b.ins().fmul(y, r);
            y = self.b.ins().fadd(m, cv);
        }
        let y = self.b.ins().fmul(y, z);
        let y = self.b.ins().fadd(y, r);
        let one = self.fconst(ty, 1.0);
        let y = self.b.ins().fadd(y, one);
        let ni = self.b.ins().fcvt_to_sint_sat(ity, n);
        let bias = if ty.is_vector() {
            let s = self.b.ins().iconst(types::I32, 127);
            self.b.ins().splat(ity, s)
        } else {
            self.b.ins().iconst(types::I32, 127)
        };
        let e = self.b.ins().iadd(ni, bias);
        let e = self.b.ins().ishl_imm_u(e, 23);
        let pow2n = self.b.ins().bitcast(ty, lanes(), e);
        let res = self.b.ins().fmul(y, pow2n);
        let zero = self.fconst(ty, 0.0);
        let inf = self.fconst(ty, f32::INFINITY);
        let res = self.select(FloatCC::LessThan, x, lo, zero, res);
        let big = self.fconst(ty, 88.72);
        self.select(FloatCC::GreaterThan, x, big, inf, res)
    }

    #[allow(clippy::excessive_precision)]
    /// tanh: a polynomial near zero (Cephes), `1 - 2/(exp(2|x|)+1)` elsewhere.
    fn tanh(&mut self, x: Value) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        let ax = self.b.ins().fabs(x);
        let two = self.fconst(ty, 2.0);
        let one = self.fconst(ty, 1.0);
        let e = self.b.ins().fmul(ax, two);
        let e = self.exp(e);
        let d = self.b.ins().fadd(e, one);
        let q = self.b.ins().fdiv(two, d);
        let big = self.b.ins().fsub(one, q);
        // x64 has no vector fcopysign: or the sign bit of x into the (non-negative) result.
        let big = if ty.is_vector() {
            let sign_mask = self.fconst(ty, -0.0);
            let sign = self.b.ins().band(x, sign_mask);
            self.b.ins().bor(big, sign)
        } else {
            self.b.ins().fcopysign(big, x)
        };
        let z = self.b.ins().fmul(x, x);
        let coeffs = [
            -5.704_988_7e-3,
            2.063_908_9e-2,
            -5.373_971_6e-2,
            1.333_144_2e-1,
            -3.333_328_2e-1,
        ];
        let mut p = self.fconst(ty, coeffs[0]);
        for &c in &coeffs[1..] {
            let cv = self.fconst(ty, c);
            let m = self.b.ins().fmul(p, z);
            p = self.b.ins().fadd(m, cv);
        }
        let p = self.b.ins().fmul(p, z);
        let p = self.b.ins().fmul(p, x);
        let small = self.b.ins().fadd(p, x);
        let limit = self.fconst(ty, 0.625);
        self.select(FloatCC::LessThan, ax, limit, small, big)
    }

    fn unary(&mut self, op: UnaryOp, x: Value) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        match op {
            UnaryOp::Neg => self.b.ins().fneg(x),
            UnaryOp::Exp => self.exp(x),
            UnaryOp::Log => self.call_lanes(self.helpers.logf, &[x]),
            UnaryOp::Sqrt => self.b.ins().sqrt(x),
            // `x <= 0 ? 0 : x`: ordered, so a NaN compares false and flows through, as in
            // Keras and PyTorch (with `max(x, 0)` it became 0 and hid a diverged layer).
            UnaryOp::Relu => {
                let zero = self.fconst(ty, 0.0);
                self.select(FloatCC::LessThanOrEqual, x, zero, zero, x)
            }
            UnaryOp::Sigmoid => {
                let n = self.b.ins().fneg(x);
                let e = self.exp(n);
                let one = self.fconst(ty, 1.0);
                let d = self.b.ins().fadd(e, one);
                self.b.ins().fdiv(one, d)
            }
            UnaryOp::Tanh => self.tanh(x),
            UnaryOp::Abs => self.b.ins().fabs(x),
            // A full-precision reciprocal, not the 12-bit `rsqrtps` estimate.
            UnaryOp::Rsqrt => {
                let one = self.fconst(ty, 1.0);
                let r = self.b.ins().sqrt(x);
                self.b.ins().fdiv(one, r)
            }
            UnaryOp::Softplus => self.softplus(x),
            UnaryOp::Gelu => {
                // x/2 · (1 + erf(x/√2))
                let c = self.fconst(ty, std::f32::consts::FRAC_1_SQRT_2);
                let s = self.b.ins().fmul(x, c);
                let e = self.erf(s);
                let one = self.fconst(ty, 1.0);
                let t = self.b.ins().fadd(one, e);
                let half = self.fconst(ty, 0.5);
                let h = self.b.ins().fmul(x, half);
                self.b.ins().fmul(h, t)
            }
            UnaryOp::Erf => self.erf(x),
        }
    }

    /// `log1p(exp(-|x|)) + max(x, 0)`: no overflow for large |x|, and exact to f32 rounding
    /// where `exp(-|x|)` is tiny (log1p by the `log(u) · t / (u - 1)` correction).
    fn softplus(&mut self, x: Value) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        let ax = self.b.ins().fabs(x);
        let n = self.b.ins().fneg(ax);
        let t = self.exp(n);
        let one = self.fconst(ty, 1.0);
        let u = self.b.ins().fadd(one, t);
        let d = self.b.ins().fsub(u, one);
        let log_u = self.call_lanes(self.helpers.logf, &[u]);
        let ratio = self.b.ins().fdiv(t, d);
        let corrected = self.b.ins().fmul(log_u, ratio);
        // u == 1 exactly: log1p(t) = t to f32 precision (and 0/0 is avoided).
        let zero = self.fconst(ty, 0.0);
        let log1p = self.select(FloatCC::Equal, d, zero, t, corrected);
        // max(x, 0) that lets NaN through the log1p term: x > 0 ? x : 0.
        let pos = self.select(FloatCC::GreaterThan, x, zero, x, zero);
        self.b.ins().fadd(log1p, pos)
    }

    // Eigen's coefficients, kept as published.
    #[allow(clippy::excessive_precision)]
    /// erf as an odd rational function on [-4, 4] (Eigen's `generic_fast_erf_float`); outside,
    /// erf is ±1 in f32. The approximation is within 6.5e-8 of erf; evaluated in f32 the result
    /// is within 3.2e-7 (2.4e-7 with FMA), worst near |x| ≈ 3.3 where erf is almost ±1.
    fn erf(&mut self, x: Value) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        let hi = self.fconst(ty, 4.0);
        let lo = self.fconst(ty, -4.0);
        let xc = self.select(FloatCC::GreaterThan, x, hi, hi, x);
        let xc = self.select(FloatCC::LessThan, xc, lo, lo, xc);
        let x2 = self.b.ins().fmul(xc, xc);
        let horner = |e: &mut Self, coeffs: &[f32]| {
            let mut p = e.fconst(ty, coeffs[0]);
            for &c in &coeffs[1..] {
                let cv = e.fconst(ty, c);
                // One rounding per step where the host has FMA (2.4e-7 worst case instead of
                // 3.2e-7 over [-6, 6]).
                p = if e.fma {
                    e.b.ins().fma(p, x2, cv)
                } else {
                    let m = e.b.ins().fmul(p, x2);
                    e.b.ins().fadd(m, cv)
                };
            }
            p
        };
        let p = horner(
            self,
            &[
                -2.72614225801306e-10,
                2.77068142495902e-08,
                -2.10102402082508e-06,
                -5.69250639462346e-05,
                -7.34990630326855e-04,
                -2.95459980854025e-03,
                -1.60960333262415e-02,
            ],
        );
        let p = self.b.ins().fmul(xc, p);
        let q = horner(
            self,
            &[
                -1.45660718464996e-05,
                -2.13374055278905e-04,
                -1.68282697438203e-03,
                -7.37332916720468e-03,
                -1.42647390514189e-02,
            ],
        );
        let r = self.b.ins().fdiv(p, q);
        // Beyond ±3.9, erf rounds to ±1 in f32: exactly, so that 1 + erf(-∞) is 0 (and
        // gelu(-∞) is NaN, as in the interpreter) rather than a rounding residue.
        let one = self.fconst(ty, 1.0);
        let minus_one = self.fconst(ty, -1.0);
        let edge = self.fconst(ty, 3.9);
        let neg_edge = self.fconst(ty, -3.9);
        let r = self.select(FloatCC::GreaterThan, x, edge, one, r);
        self.select(FloatCC::LessThan, x, neg_edge, minus_one, r)
    }

    fn binary(&mut self, op: BinaryOp, a: Value, b: Value, exponent: Option<f32>) -> Value {
        let ty = self.b.func.dfg.value_type(a);
        match op {
            BinaryOp::Add => self.b.ins().fadd(a, b),
            BinaryOp::Sub => self.b.ins().fsub(a, b),
            BinaryOp::Mul => self.b.ins().fmul(a, b),
            BinaryOp::Div => self.b.ins().fdiv(a, b),
            // b > a ? b : a, the interpreter's rule (NaN in `a` propagates, in `b` does not);
            // relu and reductions use the `maxps` form of `max` instead.
            BinaryOp::Max => self.select(FloatCC::GreaterThan, b, a, b, a),
            // b < a ? b : a, the interpreter's rule (NaN in `a` propagates, in `b` does not).
            BinaryOp::Min => self.select(FloatCC::LessThan, b, a, b, a),
            BinaryOp::Greater
            | BinaryOp::Less
            | BinaryOp::GreaterEqual
            | BinaryOp::LessEqual
            | BinaryOp::Equal
            | BinaryOp::NotEqual => {
                // Cranelift's ordered compares are false on NaN; `NotEqual` is unordered-or-
                // not-equal, true on NaN, as IEEE has it.
                let cc = match op {
                    BinaryOp::Greater => FloatCC::GreaterThan,
                    BinaryOp::Less => FloatCC::LessThan,
                    BinaryOp::GreaterEqual => FloatCC::GreaterThanOrEqual,
                    BinaryOp::LessEqual => FloatCC::LessThanOrEqual,
                    BinaryOp::Equal => FloatCC::Equal,
                    _ => FloatCC::NotEqual,
                };
                let one = self.fconst(ty, 1.0);
                let zero = self.fconst(ty, 0.0);
                self.select(cc, a, b, one, zero)
            }
            BinaryOp::Pow => match exponent {
                Some(1.0) => a,
                Some(2.0) => self.b.ins().fmul(a, a),
                Some(0.5) => self.b.ins().sqrt(a),
                _ => self.call_lanes(self.helpers.powf, &[a, b]),
            },
        }
    }

    /// `ir::dropout::mix` on i32 or i32x4 values.
    fn mix(&mut self, x: Value) -> Value {
        let mut x = x;
        for (shift, mul) in [
            (16, Some(0x7feb_352d_u32)),
            (15, Some(0x846c_a68b)),
            (16, None),
        ] {
            let s = self.b.ins().ushr_imm_u(x, shift);
            x = self.b.ins().bxor(x, s);
            if let Some(m) = mul {
                x = self.int_mul(x, m);
            }
        }
        x
    }

    fn int_const(&mut self, ty: Type, c: u32) -> Value {
        let s = self.b.ins().iconst(types::I32, i64::from(c as i32));
        if ty.is_vector() {
            self.b.ins().splat(ty, s)
        } else {
            s
        }
    }

    fn int_mul(&mut self, x: Value, c: u32) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        let c = self.int_const(ty, c);
        self.b.ins().imul(x, c)
    }

    /// Inverted dropout of `x` at element indices `index`, the mask computed exactly as
    /// `ir::dropout::Key` computes it (integer arithmetic, so the two agree bit for bit).
    /// After `x`: the step counter, the batch's first row and the length of a row of `x`.
    fn dropout(
        &mut self,
        rate: f32,
        seed: u64,
        x: Value,
        (step, first_row, row_len): (Value, Value, usize),
        index: Value,
    ) -> Value {
        use crate::ir::dropout;
        let ty = self.b.func.dfg.value_type(x);
        let ity = self.b.func.dfg.value_type(index);
        // The per-step key, from the scalar step counter (saturating like the interpreter).
        let (step, first_row) = if ty.is_vector() {
            (
                self.b.ins().extractlane(step, 0),
                self.b.ins().extractlane(first_row, 0),
            )
        } else {
            (step, first_row)
        };
        let (s0, s1) = dropout::seed_words(seed);
        let t = self.b.ins().fcvt_to_uint_sat(types::I32, step);
        let s0v = self.int_const(types::I32, s0);
        let t = self.b.ins().bxor(t, s0v);
        let key = self.mix(t);
        // `(index + first_row · row_len) · SPREAD + key`: the offset folds into the key.
        let first_row = self.b.ins().fcvt_to_uint_sat(types::I32, first_row);
        let offset = self.int_mul(first_row, (row_len as u32).wrapping_mul(dropout::SPREAD));
        let key = self.b.ins().iadd(key, offset);
        let key = if ity.is_vector() {
            self.b.ins().splat(ity, key)
        } else {
            key
        };
        let h = self.int_mul(index, dropout::SPREAD);
        let h = self.b.ins().iadd(h, key);
        let h = self.mix(h);
        let s1v = self.int_const(ity, s1);
        let h = self.b.ins().bxor(h, s1v);
        let h = self.mix(h);
        let h = self.b.ins().ushr_imm_u(h, 1);
        let threshold = self.int_const(ity, dropout::threshold(rate) as u32);
        let keep = self
            .b
            .ins()
            .icmp(IntCC::SignedGreaterThanOrEqual, h, threshold);
        let scale = self.fconst(ty, dropout::scale(rate));
        let scaled = self.b.ins().fmul(x, scale);
        if ty.is_vector() {
            let m = self.b.ins().bitcast(V4, lanes(), keep);
            self.b.ins().band(m, scaled)
        } else {
            let zero = self.fconst(ty, 0.0);
            self.b.ins().select(keep, scaled, zero)
        }
    }

    /// A product computed only for this sum (so fusing it loses nothing).
    fn fusable_mul(&self, v: ValueId, memo: &HashMap<ValueId, Value>) -> bool {
        !memo.contains_key(&v) && self.fuses_into_fma(v)
    }

    /// Whether the product `v` is fused into the `fma` of the one sum that uses it: the host
    /// has FMA, nothing else reads `v`, and it is not stored. (The native Adam update relies on
    /// this rule to reproduce the loop's arithmetic, `emit/adam.rs`.)
    fn fuses_into_fma(&self, v: ValueId) -> bool {
        self.fma
            && self.users[v.index()] == 1
            && matches!(self.graph.node(v).op, Op::Binary(BinaryOp::Mul))
            && !self.mem.home.contains_key(&v)
    }

    /// Evaluates `v` at the current element; `memo` holds loaded leaves and computed values.
    fn eval(
        &mut self,
        v: ValueId,
        ty: Type,
        memo: &mut HashMap<ValueId, Value>,
        labels: &HashMap<ValueId, Value>,
        class: Value,
    ) -> Value {
        if let Some(&x) = memo.get(&v) {
            return x;
        }
        let node = self.graph.node(v);
        let x = match &node.op {
            Op::Const { value } => self.fconst(ty, *value),
            Op::BatchSize => {
                if ty.is_vector() {
                    self.b.ins().splat(ty, self.batch_f)
                } else {
                    self.batch_f
                }
            }
            Op::Broadcast => self.eval(node.inputs[0], ty, memo, labels, class),
            Op::Unary(op) => {
                let a = self.eval(node.inputs[0], ty, memo, labels, class);
                self.unary(*op, a)
            }
            Op::Binary(op @ (BinaryOp::Add | BinaryOp::Sub))
                if self.fusable_mul(node.inputs[0], memo)
                    || self.fusable_mul(node.inputs[1], memo) =>
            {
                // a*b ± c and c - a*b as one fma.
                let (l, r) = (node.inputs[0], node.inputs[1]);
                let sub = *op == BinaryOp::Sub;
                // A product by a one-hot is exact (`c·1`, `c·0`), so when both sides are
                // products the other one is fused, where the single rounding counts.
                let by_one_hot = |v: ValueId| {
                    let inputs = &self.graph.node(v).inputs;
                    inputs
                        .iter()
                        .any(|&i| matches!(self.graph.node(i).op, Op::OneHot { .. }))
                };
                let left = self.fusable_mul(l, memo)
                    && !(by_one_hot(l) && self.fusable_mul(r, memo) && !by_one_hot(r));
                let (mul, other, negate_mul) = if left { (l, r, false) } else { (r, l, sub) };
                let m = self.graph.node(mul);
                let x = self.eval(m.inputs[0], ty, memo, labels, class);
                let y = self.eval(m.inputs[1], ty, memo, labels, class);
                let c = self.eval(other, ty, memo, labels, class);
                let x = if negate_mul { self.b.ins().fneg(x) } else { x };
                let c = if sub && !negate_mul {
                    self.b.ins().fneg(c)
                } else {
                    c
                };
                self.b.ins().fma(x, y, c)
            }
            Op::Binary(op) => {
                let a = self.eval(node.inputs[0], ty, memo, labels, class);
                let b = self.eval(node.inputs[1], ty, memo, labels, class);
                let exponent = match self.graph.node(node.inputs[1]).op {
                    Op::Const { value } => Some(value),
                    _ => None,
                };
                self.binary(*op, a, b, exponent)
            }
            Op::LeakyRelu { alpha } => {
                let x = self.eval(node.inputs[0], ty, memo, labels, class);
                let a = self.fconst(ty, *alpha);
                let ax = self.b.ins().fmul(x, a);
                let zero = self.fconst(ty, 0.0);
                self.select(FloatCC::GreaterThan, x, zero, x, ax)
            }
            Op::Elu { alpha } => {
                let x = self.eval(node.inputs[0], ty, memo, labels, class);
                let e = self.exp(x);
                let one = self.fconst(ty, 1.0);
                let em1 = self.b.ins().fsub(e, one);
                let a = self.fconst(ty, *alpha);
                let neg = self.b.ins().fmul(a, em1);
                let zero = self.fconst(ty, 0.0);
                self.select(FloatCC::GreaterThan, x, zero, x, neg)
            }
            Op::Select => {
                let c = self.eval(node.inputs[0], ty, memo, labels, class);
                let a = self.eval(node.inputs[1], ty, memo, labels, class);
                let b = self.eval(node.inputs[2], ty, memo, labels, class);
                let zero = self.fconst(ty, 0.0);
                // `NotEqual` is unordered: a NaN condition selects `a`, as in the interpreter.
                self.select(FloatCC::NotEqual, c, zero, a, b)
            }
            Op::InTraining => self.eval(node.inputs[0], ty, memo, labels, class),
            Op::Dropout { rate, seed } => {
                let x = self.eval(node.inputs[0], ty, memo, labels, class);
                let step = self.eval(node.inputs[1], ty, memo, labels, class);
                let first_row = self.eval(node.inputs[2], ty, memo, labels, class);
                let row_len = crate::ir::dropout::row_len(self.graph.shape(node.inputs[0]));
                self.dropout(*rate, *seed, x, (step, first_row, row_len), labels[&v])
            }
            // Copy kernels load the input with the strides that make the op; see `copy`.
            Op::Transpose { .. } | Op::Slice { .. } | Op::Reshape => {
                self.eval(node.inputs[0], ty, memo, labels, class)
            }
            Op::OneHot { .. } => {
                let label = labels[&v];
                let c = self.b.ins().icmp(IntCC::Equal, class, label);
                let one = self.fconst(ty, 1.0);
                if ty.is_vector() {
                    let m = self.b.ins().bitcast(V4, lanes(), c);
                    self.b.ins().band(m, one)
                } else {
                    let zero = self.fconst(ty, 0.0);
                    self.b.ins().select(c, one, zero)
                }
            }
            // Loaded from memory or computed by kernels of their own: `spec` never asks for
            // them. Listed rather than `_` so that a new op cannot miss its scalar code.
            Op::Input { .. }
            | Op::Param { .. }
            | Op::State { .. }
            | Op::MatMul { .. }
            | Op::Contract
            | Op::Reduce { .. }
            | Op::Softmax
            | Op::LogSoftmax
            | Op::CausalSoftmax
            | Op::Concat { .. }
            | Op::Gather
            | Op::ScatterAdd { .. }
            | Op::Unfold { .. }
            | Op::Fold { .. }
            | Op::Pool { .. }
            | Op::PoolGrad { .. }
            | Op::Recurrence { .. }
            | Op::RecurrenceGrad { .. } => self.fconst(ty, f32::NAN),
        };
        memo.insert(v, x);
        x
    }

    // ── Loops ──────────────────────────────────────────────────────────────────────────────

    /// `for i in 0..n { body(i) }` over i64 counters.
    fn counted_loop(&mut self, n: Value, body: &mut dyn FnMut(&mut Self, Value)) {
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        let zero = self.iconst(0);
        self.b.ins().jump(header, &[BlockArg::from(zero)]);
        self.b.switch_to_block(header);
        let i = self.b.block_params(header)[0];
        let c = self.b.ins().icmp(IntCC::UnsignedLessThan, i, n);
        self.b.ins().brif(c, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.ins().jump(header, &[BlockArg::from(next)]);
        self.b.switch_to_block(exit);
    }

    /// A vectorized loop over `0..n`: `body(j, ty, acc)` runs for 4 lanes at a time, then for
    /// the scalar tail. Sums longer than `SUM_BLOCK` are blocked (see `vector_loop_with`). With `acc = Some(kind)` the body's results are folded into one scalar.
    fn vector_loop(
        &mut self,
        n: Value,
        acc: Option<ReduceKind>,
        body: &mut dyn FnMut(&mut Self, Value, Type) -> Option<Value>,
    ) -> Option<Value> {
        self.vector_loop_with(n, acc, Tail::Scalar, body)
    }

    /// [`Self::vector_loop`] with a choice of tail. `Tail::Overlap` (for `n >= 4`) runs the
    /// body once more for the last four elements, `n - 4 .. n`, instead of one at a time, and
    /// folds only the lanes not covered yet, in order (the same result as the scalar tail). The
    /// elements both passes cover are computed and stored again, which is harmless when the
    /// body only stores what it computes from buffers it does not write. A 10-wide row (a
    /// 10-class output) then takes three vector passes instead of two vector and two scalar
    /// ones, each scalar pass as long as a vector one (an `exp` is 30 instructions).
    fn vector_loop_with(
        &mut self,
        n: Value,
        acc: Option<ReduceKind>,
        tail: Tail,
        body: &mut dyn FnMut(&mut Self, Value, Type) -> Option<Value>,
    ) -> Option<Value> {
        // With `n` known, only the tail that runs is emitted: none for a multiple of four, the
        // overlapping vector alone when there are four to take. Otherwise the overlapping vector
        // when `n >= 4` at run time, else the scalar loop.
        let known = self.constant(n);
        let overlaps = tail == Tail::Overlap;
        let overlap = overlaps && known.is_none_or(|c| c >= 4 && c % 4 != 0);
        let scalar = known.is_none_or(|c| c % 4 != 0 && !(overlaps && c >= 4));
        let vh = self.b.create_block();
        let vb = self.b.create_block();
        let vx = self.b.create_block();
        let fin = self.b.create_block();
        self.b.append_block_param(vh, types::I64);
        if acc.is_some() {
            self.b.append_block_param(vh, V4);
            self.b.append_block_param(fin, types::F32);
        }
        let n4 = self.b.ins().band_imm_s(n, !3);
        let zero = self.iconst(0);
        let mut args = vec![BlockArg::from(zero)];
        if let Some(kind) = acc {
            args.push(BlockArg::from(self.fconst(V4, Self::identity(kind))));
        }
        self.b.ins().jump(vh, &args);

        self.b.switch_to_block(vh);
        let p = self.b.block_params(vh).to_vec();
        let c = self.b.ins().icmp(IntCC::UnsignedLessThan, p[0], n4);
        self.b.ins().brif(c, vb, &[], vx, &[]);
        self.b.switch_to_block(vb);
        match acc {
            Some(kind @ (ReduceKind::Sum | ReduceKind::Mean))
                if known.is_none_or(|c| c > SUM_BLOCK as u64) =>
            {
                // Blocked summation: each block of SUM_BLOCK elements is summed from zero in
                // its own vector accumulator, then added to the running total, so rounding
                // grows with the block count and block length, not with n (a sum of ten
                // million 0.1s lost 2.4%). One block is the sequential sum to the bit
                // (0 + a == a), so sums up to SUM_BLOCK long keep the order parity relies on.
                let (ih, ib, ix) = (
                    self.b.create_block(),
                    self.b.create_block(),
                    self.b.create_block(),
                );
                self.b.append_block_param(ih, types::I64);
                self.b.append_block_param(ih, V4);
                let limit = self.b.ins().iadd_imm_s(p[0], SUM_BLOCK as i64);
                let end = self.b.ins().umin(limit, n4);
                let start = [
                    BlockArg::from(p[0]),
                    BlockArg::from(self.fconst(V4, Self::identity(kind))),
                ];
                self.b.ins().jump(ih, &start);
                self.b.switch_to_block(ih);
                let q = self.b.block_params(ih).to_vec();
                let more = self.b.ins().icmp(IntCC::UnsignedLessThan, q[0], end);
                self.b.ins().brif(more, ib, &[], ix, &[]);
                self.b.switch_to_block(ib);
                let r = body(self, q[0], V4).expect("reducing body returns a value");
                let next = self.b.ins().iadd_imm_s(q[0], 4);
                let a = self.combine(kind, q[1], r);
                self.b
                    .ins()
                    .jump(ih, &[BlockArg::from(next), BlockArg::from(a)]);
                self.b.switch_to_block(ix);
                let total = self.combine(kind, p[1], q[1]);
                self.b
                    .ins()
                    .jump(vh, &[BlockArg::from(q[0]), BlockArg::from(total)]);
            }
            _ => {
                let r = body(self, p[0], V4);
                let next = self.b.ins().iadd_imm_s(p[0], 4);
                let mut args = vec![BlockArg::from(next)];
                if let Some(kind) = acc {
                    let a = self.combine(kind, p[1], r.expect("reducing body returns a value"));
                    args.push(BlockArg::from(a));
                }
                self.b.ins().jump(vh, &args);
            }
        }

        self.b.switch_to_block(vx);
        let folded = acc.map(|kind| self.horizontal(kind, p[1]));
        let done: Vec<BlockArg> = folded.into_iter().map(BlockArg::from).collect();
        let th = scalar.then(|| {
            let th = self.b.create_block();
            self.b.append_block_param(th, types::I64);
            if acc.is_some() {
                self.b.append_block_param(th, types::F32);
            }
            th
        });
        let mut to_scalar = vec![BlockArg::from(p[0])];
        to_scalar.extend(folded.map(BlockArg::from));
        if overlap {
            // n - 4 .. n once more, when some are left and there are four to take.
            let ob = self.b.create_block();
            match (known, th) {
                (Some(_), _) => {
                    self.b.ins().jump(ob, &[]);
                }
                (None, Some(th)) => {
                    let check = self.b.create_block();
                    let left = self.b.ins().icmp(IntCC::UnsignedLessThan, p[0], n);
                    self.b.ins().brif(left, check, &[], fin, &done);
                    self.b.switch_to_block(check);
                    let wide = self
                        .b
                        .ins()
                        .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, n, 4);
                    self.b.ins().brif(wide, ob, &[], th, &to_scalar);
                }
                (None, None) => unreachable!("an unknown length keeps the scalar tail"),
            }
            self.b.switch_to_block(ob);
            let j = self.b.ins().iadd_imm_s(n, -4);
            let r = body(self, j, V4);
            let mut out = Vec::new();
            if let (Some(kind), Some(mut total)) = (acc, folded) {
                // Fold the lanes not covered yet (elements p[0]..n) one by one, in order: the
                // same sum, to the bit, as the scalar tail.
                let r = r.expect("reducing body returns a value");
                let first_new = known.map(|c| 4 - c % 4);
                for lane in 1..4u8 {
                    if first_new.is_some_and(|f| u64::from(lane) < f) {
                        continue;
                    }
                    let x = self.b.ins().extractlane(r, lane);
                    let with = self.combine(kind, total, x);
                    total = if first_new.is_some() {
                        with
                    } else {
                        let at = self.b.ins().iadd_imm_s(j, i64::from(lane));
                        let new = self
                            .b
                            .ins()
                            .icmp(IntCC::UnsignedGreaterThanOrEqual, at, p[0]);
                        self.b.ins().select(new, with, total)
                    };
                }
                out.push(BlockArg::from(total));
            }
            self.b.ins().jump(fin, &out);
        } else if let Some(th) = th {
            self.b.ins().jump(th, &to_scalar);
        } else {
            self.b.ins().jump(fin, &done);
        }

        if let Some(th) = th {
            let tb = self.b.create_block();
            let tx = self.b.create_block();
            self.b.switch_to_block(th);
            let q = self.b.block_params(th).to_vec();
            let c = self.b.ins().icmp(IntCC::UnsignedLessThan, q[0], n);
            self.b.ins().brif(c, tb, &[], tx, &[]);
            self.b.switch_to_block(tb);
            let r = body(self, q[0], types::F32);
            let next = self.b.ins().iadd_imm_s(q[0], 1);
            let mut args = vec![BlockArg::from(next)];
            if let Some(kind) = acc {
                let a = self.combine(kind, q[1], r.expect("reducing body returns a value"));
                args.push(BlockArg::from(a));
            }
            self.b.ins().jump(th, &args);
            self.b.switch_to_block(tx);
            let out: Vec<BlockArg> = q.get(1).map(|&a| BlockArg::from(a)).into_iter().collect();
            self.b.ins().jump(fin, &out);
        }
        self.b.switch_to_block(fin);
        acc.map(|_| self.b.block_params(fin)[0])
    }

    /// The value of `v` when it is an integer constant.
    fn constant(&self, v: Value) -> Option<u64> {
        let inst = self.b.func.dfg.value_def(v).inst()?;
        match self.b.func.dfg.insts[inst] {
            InstructionData::UnaryImm {
                opcode: Opcode::Iconst,
                imm,
            } => u64::try_from(imm.bits()).ok(),
            _ => None,
        }
    }

    fn loop_nest(&mut self, spec: &LoopSpec) -> Result<(), CodegenError> {
        // Reductions accumulate into an output filled with the identity first.
        if let Some((kind, _, out)) = &spec.reduce {
            let kept: Vec<Dim> = spec
                .dims
                .iter()
                .zip(&out.strides)
                .filter(|(_, s)| **s != Extent::ZERO)
                .map(|(d, _)| *d)
                .collect();
            let n = self.extent(Extent::product(&kept));
            let base = self.buf_offset(out.buf);
            let buf = out.buf;
            let id = Self::identity(*kind);
            self.vector_loop(n, None, &mut |e, j, ty| {
                let at = e.b.ins().iadd(base, j);
                let a = e.addr(buf, at);
                let x = e.fconst(ty, id);
                e.b.ins().store(rw(), x, a, 0);
                None
            });
        }
        // Accesses in one list: leaves, labels, stores, reduction output.
        let mut accesses: Vec<&Access> = spec.leaves.iter().map(|l| &l.1).collect();
        accesses.extend(spec.labels.iter().map(|l| &l.1));
        accesses.extend(spec.indices.iter().map(|l| &l.1));
        accesses.extend(spec.stores.iter().map(|s| &s.1));
        accesses.extend(spec.reduce.iter().map(|r| &r.2));
        let offs: Vec<Value> = accesses.iter().map(|a| self.buf_offset(a.buf)).collect();
        let accesses: Vec<Access> = accesses.into_iter().cloned().collect();
        self.nest(spec, &accesses, 0, offs);
        Ok(())
    }

    fn nest(&mut self, spec: &LoopSpec, acc: &[Access], d: usize, offs: Vec<Value>) {
        let r = spec.dims.len();
        if r == 0 {
            let dummy = self.iconst(0);
            self.body(
                spec,
                acc,
                &offs,
                &[],
                dummy,
                types::F32,
                &HashMap::new(),
                &HashMap::new(),
            );
            return;
        }
        if d + 1 == r {
            return self.inner(spec, acc, offs);
        }
        let n = self.dim(spec.dims[d]);
        let strides: Vec<Value> = acc.iter().map(|a| self.extent(a.strides[d])).collect();
        self.counted_loop(n, &mut |e, i| {
            let inner: Vec<Value> = offs
                .iter()
                .zip(&strides)
                .map(|(&o, &s)| {
                    let m = e.b.ins().imul(i, s);
                    e.b.ins().iadd(o, m)
                })
                .collect();
            e.nest(spec, acc, d + 1, inner);
        });
    }

    /// The innermost loop: loads that do not move along it are hoisted, the rest is vectorized.
    fn inner(&mut self, spec: &LoopSpec, acc: &[Access], offs: Vec<Value>) {
        let r = spec.dims.len();
        let n = self.dim(spec.dims[r - 1]);
        let nl = spec.leaves.len();
        let mut fixed_s: HashMap<ValueId, Value> = HashMap::new();
        let mut fixed_v: HashMap<ValueId, Value> = HashMap::new();
        for (k, (v, a)) in spec.leaves.iter().enumerate() {
            if a.strides[r - 1] == Extent::ZERO {
                let addr = self.addr(a.buf, offs[k]);
                let flags = self.load_flags(*v);
                let x = self.b.ins().load(types::F32, flags, addr, 0);
                fixed_s.insert(*v, x);
                let s = self.b.ins().splat(V4, x);
                fixed_v.insert(*v, s);
            }
        }
        let mut labels_s = HashMap::new();
        let mut labels_v = HashMap::new();
        for (k, (v, a)) in spec.labels.iter().enumerate() {
            let addr = self.addr(a.buf, offs[nl + k]);
            let x = self.b.ins().load(types::I32, ro(), addr, 0);
            labels_s.insert(*v, x);
            let s = self.b.ins().splat(types::I32X4, x);
            labels_v.insert(*v, s);
        }
        // Inner strides other than 0 and 1 (transposed and sliced reads) step by a multiple.
        let steps: Vec<Option<Value>> = acc
            .iter()
            .map(|a| {
                let s = a.strides[r - 1];
                (s != Extent::ZERO && s != Extent::ONE).then(|| self.extent(s))
            })
            .collect();
        let red_inner = spec
            .reduce
            .as_ref()
            .filter(|(_, _, out)| out.strides[r - 1] == Extent::ZERO)
            .map(|(kind, _, _)| *kind);
        // The last four again instead of a scalar tail, when recomputing an element cannot
        // change what was stored (see `vector_loop_with`): nothing is accumulated into memory,
        // and no store lands in a buffer the loop reads (the memory plan never gives a kernel's
        // output the space of its inputs; only an in-place epilogue or update shares one).
        let stores_apart = spec
            .stores
            .iter()
            .all(|(_, s)| spec.leaves.iter().all(|(_, l)| l.buf != s.buf));
        let idempotent = spec.reduce.is_none() || red_inner.is_some();
        let tail = if stores_apart && idempotent {
            Tail::Overlap
        } else {
            Tail::Scalar
        };
        let total = self.vector_loop_with(n, red_inner, tail, &mut |e, j, ty| {
            let (fixed, labels) = if ty.is_vector() {
                (&fixed_v, &labels_v)
            } else {
                (&fixed_s, &labels_s)
            };
            let offs_j: Vec<Value> = offs
                .iter()
                .zip(acc)
                .zip(&steps)
                .map(|((&o, a), step)| {
                    if a.strides[r - 1] == Extent::ZERO {
                        o
                    } else if let Some(step) = step {
                        let m = e.b.ins().imul(j, *step);
                        e.b.ins().iadd(o, m)
                    } else {
                        e.b.ins().iadd(o, j)
                    }
                })
                .collect();
            e.body(spec, acc, &offs_j, &steps, j, ty, fixed, labels)
        });
        if let (Some(kind), Some(total)) = (red_inner, total) {
            let out = &spec.reduce.as_ref().expect("reduction").2;
            let addr = self.addr(out.buf, offs[acc.len() - 1]);
            let old = self.b.ins().load(types::F32, rw(), addr, 0);
            let x = self.combine(kind, old, total);
            self.b.ins().store(rw(), x, addr, 0);
        }
    }

    /// One element (or 4): load what moves, evaluate, store; returns the value to fold when the
    /// innermost dimension is reduced.
    #[allow(clippy::too_many_arguments)]
    fn body(
        &mut self,
        spec: &LoopSpec,
        acc: &[Access],
        offs: &[Value],
        steps: &[Option<Value>],
        j: Value,
        ty: Type,
        fixed: &HashMap<ValueId, Value>,
        labels: &HashMap<ValueId, Value>,
    ) -> Option<Value> {
        let r = spec.dims.len();
        let mut memo = fixed.clone();
        let mut labels = labels.clone();
        for (k, (v, a)) in spec.leaves.iter().enumerate() {
            if !memo.contains_key(v) {
                let flags = self.load_flags(*v);
                let x = match steps.get(k).copied().flatten() {
                    // A strided read: one lane at a time.
                    Some(step) if ty.is_vector() => {
                        let mut x = self.fconst(V4, 0.0);
                        let mut at = offs[k];
                        for lane in 0..4u8 {
                            let addr = self.addr(a.buf, at);
                            let s = self.b.ins().load(types::F32, flags, addr, 0);
                            x = self.b.ins().insertlane(x, s, lane);
                            at = self.b.ins().iadd(at, step);
                        }
                        x
                    }
                    _ => {
                        let addr = self.addr(a.buf, offs[k]);
                        self.b.ins().load(ty, flags, addr, 0)
                    }
                };
                memo.insert(*v, x);
            }
        }
        // Flat element indices of dropout nodes, one per lane.
        let first_index = spec.leaves.len() + spec.labels.len();
        for (k, (v, a)) in spec.indices.iter().enumerate() {
            let i = self.b.ins().ireduce(types::I32, offs[first_index + k]);
            let moves = r > 0 && a.strides[r - 1] != Extent::ZERO;
            let x = if !ty.is_vector() {
                i
            } else {
                let s = self.b.ins().splat(types::I32X4, i);
                if moves {
                    let iota = self.iota();
                    self.b.ins().iadd(s, iota)
                } else {
                    s
                }
            };
            labels.insert(*v, x);
        }
        if r == 0 {
            // No loop: label loads happen here.
            for (k, (v, a)) in spec.labels.iter().enumerate() {
                let addr = self.addr(a.buf, offs[spec.leaves.len() + k]);
                let x = self.b.ins().load(types::I32, ro(), addr, 0);
                labels.insert(*v, x);
            }
        }
        let class = if spec.labels.is_empty() {
            j
        } else {
            let j32 = self.b.ins().ireduce(types::I32, j);
            if ty.is_vector() {
                // Class index per lane: splat(j) + [0, 1, 2, 3].
                let lanes = self.iota();
                let s = self.b.ins().splat(types::I32X4, j32);
                self.b.ins().iadd(s, lanes)
            } else {
                j32
            }
        };
        let first_store = first_index + spec.indices.len();
        let values: Vec<Value> = spec
            .stores
            .iter()
            .map(|(v, _)| self.eval(*v, ty, &mut memo, &labels, class))
            .collect();
        for (k, x) in values.into_iter().enumerate() {
            let a = &acc[first_store + k];
            let addr = self.addr(a.buf, offs[first_store + k]);
            self.b.ins().store(rw(), x, addr, 0);
        }
        let (kind, v, out) = spec.reduce.as_ref()?;
        let x = self.eval(*v, ty, &mut memo, &labels, class);
        if r > 0 && out.strides[r - 1] == Extent::ZERO {
            return Some(x);
        }
        let addr = self.addr(out.buf, offs[acc.len() - 1]);
        let old = self.b.ins().load(ty, rw(), addr, 0);
        let y = self.combine(*kind, old, x);
        self.b.ins().store(rw(), y, addr, 0);
        None
    }

    // ── Structured kernels ─────────────────────────────────────────────────────────────────

    fn reduce(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let Op::Reduce { kind, axes, .. } = &n.op else {
            return Err(err("reduce kernel on a non-reduce node"));
        };
        let input = n.inputs[0];
        let dims = self.graph.shape(input).0.clone();
        // Output strides: the contiguous strides of the kept dimensions, 0 on reduced ones.
        let strides = (0..dims.len())
            .map(|d| {
                if axes.contains(&d) {
                    Extent::ZERO
                } else {
                    let after: Vec<Dim> = (d + 1..dims.len())
                        .filter(|e| !axes.contains(e))
                        .map(|e| dims[e])
                        .collect();
                    Extent::product(&after)
                }
            })
            .collect();
        let out = Access {
            buf: self.plan().home(node)?,
            strides,
        };
        let kind = *kind;
        let reduced: Vec<Dim> = axes.iter().map(|&a| dims[a]).collect();
        let kept: Vec<Dim> = (0..dims.len())
            .filter(|d| !axes.contains(d))
            .map(|d| dims[d])
            .collect();
        let buf = out.buf;
        let spec = self
            .plan()
            .spec(dims, Vec::new(), Some((kind, input, out)), &[])?;
        if !self.column_reduce(&spec) {
            self.loop_nest(&spec)?;
        }
        if kind == ReduceKind::Mean {
            // The sums, divided by the number of reduced elements (known only at run time when
            // the batch axis is reduced).
            let count = self.extent(Extent::product(&reduced));
            let count = self.b.ins().fcvt_from_uint(types::F32, count);
            let one = self.b.ins().f32const(1.0);
            let inverse = self.b.ins().fdiv(one, count);
            let n = self.extent(Extent::product(&kept));
            let base = self.buf_offset(buf);
            self.vector_loop(n, None, &mut |e, j, ty| {
                let at = e.b.ins().iadd(base, j);
                let a = e.addr(buf, at);
                let x = e.b.ins().load(ty, rw(), a, 0);
                let k = if ty.is_vector() {
                    e.b.ins().splat(ty, inverse)
                } else {
                    inverse
                };
                let y = e.b.ins().fmul(x, k);
                e.b.ins().store(rw(), y, a, 0);
                None
            });
        }
        Ok(())
    }

    /// A reduction over the rows of a `[R, C]` loop with `C` known (a bias gradient: the column
    /// sums of `[B, units]`) as blocks of 16 columns whose four vector accumulators stay in
    /// registers while every row is added, then 4-column blocks and single columns. The generic
    /// nest instead loads, combines and stores each output vector once per row. Each output
    /// still folds the rows in order from the identity: the same sums, bit for bit.
    /// Returns false (emitting nothing) for any other reduction.
    fn column_reduce(&mut self, spec: &LoopSpec) -> bool {
        let Some((kind, value, out)) = &spec.reduce else {
            return false;
        };
        let (kind, value) = (*kind, *value);
        let Some(&Dim::Fixed(cols)) = spec.dims.get(1) else {
            return false;
        };
        let unit_or_zero = |e: Extent| e == Extent::ONE || e == Extent::ZERO;
        if spec.dims.len() != 2
            || !spec.stores.is_empty()
            || !spec.labels.is_empty()
            || !spec.indices.is_empty()
            || out.strides[0] != Extent::ZERO
            || out.strides[1] != Extent::ONE
            || !spec.leaves.iter().all(|(_, a)| unit_or_zero(a.strides[1]))
        {
            return false;
        }
        let rows = self.dim(spec.dims[0]);
        let leaves: Vec<(ValueId, Buf, Value, bool)> = spec
            .leaves
            .iter()
            .map(|(v, a)| {
                let base = self.buf_offset(a.buf);
                (*v, a.buf, base, a.strides[1] == Extent::ONE)
            })
            .collect();
        let row_steps: Vec<Value> = spec
            .leaves
            .iter()
            .map(|(_, a)| self.extent(a.strides[0]))
            .collect();
        let out_buf = out.buf;
        let out_base = self.buf_offset(out_buf);
        // One block: `count` accumulators of type `ty` for the columns from `first`.
        let block = |e: &mut Self, first: Value, ty: Type, count: usize| {
            let width = if ty.is_vector() { 4 } else { 1 };
            let header = e.b.create_block();
            let body = e.b.create_block();
            let exit = e.b.create_block();
            e.b.append_block_param(header, types::I64);
            for _ in 0..count {
                e.b.append_block_param(header, ty);
            }
            let zero = e.iconst(0);
            let identity = e.fconst(ty, Self::identity(kind));
            let mut args = vec![BlockArg::from(zero)];
            args.extend((0..count).map(|_| BlockArg::from(identity)));
            e.b.ins().jump(header, &args);
            e.b.switch_to_block(header);
            let params = e.b.block_params(header).to_vec();
            let more = e.b.ins().icmp(IntCC::UnsignedLessThan, params[0], rows);
            e.b.ins().brif(more, body, &[], exit, &[]);
            e.b.switch_to_block(body);
            let r = params[0];
            let starts: Vec<Value> = leaves
                .iter()
                .zip(&row_steps)
                .map(|(&(_, _, base, _), &step)| {
                    let m = e.b.ins().imul(r, step);
                    e.b.ins().iadd(base, m)
                })
                .collect();
            let mut next = vec![BlockArg::from(e.b.ins().iadd_imm_s(r, 1))];
            for q in 0..count {
                let column = e.b.ins().iadd_imm_s(first, (q * width) as i64);
                let mut memo = HashMap::new();
                for (&(v, buf, _, moves), &start) in leaves.iter().zip(&starts) {
                    let x = if moves {
                        let at = e.b.ins().iadd(start, column);
                        let a = e.addr(buf, at);
                        let flags = e.load_flags(v);
                        e.b.ins().load(ty, flags, a, 0)
                    } else {
                        let a = e.addr(buf, start);
                        let flags = e.load_flags(v);
                        let x = e.b.ins().load(types::F32, flags, a, 0);
                        if ty.is_vector() {
                            e.b.ins().splat(ty, x)
                        } else {
                            x
                        }
                    };
                    memo.insert(v, x);
                }
                let x = e.eval(value, ty, &mut memo, &HashMap::new(), column);
                let acc = e.combine(kind, params[1 + q], x);
                next.push(BlockArg::from(acc));
            }
            e.b.ins().jump(header, &next);
            e.b.switch_to_block(exit);
            for q in 0..count {
                let at = e.b.ins().iadd_imm_s(first, (q * width) as i64);
                let at = e.b.ins().iadd(out_base, at);
                let a = e.addr(out_buf, at);
                e.b.ins().store(rw(), params[1 + q], a, 0);
            }
        };
        const BLOCK: usize = 16;
        let blocks = self.iconst((cols / BLOCK) as i64);
        self.counted_loop(blocks, &mut |e, i| {
            let first = e.b.ins().imul_imm_s(i, BLOCK as i64);
            block(e, first, V4, BLOCK / 4);
        });
        let mut first = cols / BLOCK * BLOCK;
        if cols % BLOCK >= 4 {
            let start = self.iconst(first as i64);
            block(self, start, V4, cols % BLOCK / 4);
            first += cols % BLOCK / 4 * 4;
        }
        for column in first..cols {
            let start = self.iconst(column as i64);
            block(self, start, types::F32, 1);
        }
        true
    }

    /// Contiguous (row-major) strides of `dims`.
    fn contiguous(dims: &[Dim]) -> Vec<Extent> {
        (0..dims.len())
            .map(|d| Extent::product(&dims[d + 1..]))
            .collect()
    }

    /// `transpose`, `slice` and unaliased `reshape`: a loop over the output reading the input
    /// through strides (a permutation of its own, an offset start, or flat order).
    fn copy(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let input = n.inputs[0];
        let out_buf = self.plan().home(node)?;
        let in_home = self.mem.home.get(&input).copied();
        if in_home == Some(out_buf) {
            return Ok(()); // a reshape sharing its input's buffer
        }
        let out_dims = n.ty.shape.0.clone();
        let in_dims = self.graph.shape(input).0.clone();
        let in_strides = Self::contiguous(&in_dims);
        let (dims, read_strides, start) = match &n.op {
            Op::Transpose { perm } => {
                let strides = perm.iter().map(|&p| in_strides[p]).collect();
                (out_dims.clone(), strides, 0)
            }
            Op::Slice { axis, start, .. } => {
                let step = in_strides[*axis];
                if step.batch_pow > 0 {
                    return Err(err(format!(
                        "%{}: slice of an axis before the batch axis",
                        node.0
                    )));
                }
                (out_dims.clone(), in_strides.clone(), start * step.fixed)
            }
            Op::Reshape => {
                // Both sides are row-major with the batch (if any) leading: copy flat rows.
                let rest = Dim::Fixed(n.ty.shape.numel(1));
                let dims = if n.ty.shape.has_batch() {
                    vec![Dim::Batch, rest]
                } else {
                    vec![rest]
                };
                let strides = Self::contiguous(&dims);
                (dims, strides, 0)
            }
            _ => return Err(err("copy kernel on a non-copy node")),
        };
        let out_strides = if matches!(n.op, Op::Reshape) {
            Self::contiguous(&dims)
        } else {
            Self::contiguous(&out_dims)
        };
        let mut spec = LoopSpec {
            dims,
            stores: vec![(
                node,
                Access {
                    buf: out_buf,
                    strides: out_strides,
                },
            )],
            ..LoopSpec::default()
        };
        match (in_home, &self.graph.node(input).op) {
            (Some(Buf::F32(o)), _) => spec.leaves.push((
                input,
                Access {
                    buf: Buf::F32(o + start),
                    strides: read_strides,
                },
            )),
            (None, Op::Const { .. }) => {}
            _ => {
                return Err(err(format!(
                    "%{}: {} of a value without an f32 buffer",
                    node.0,
                    n.op.name()
                )));
            }
        }
        self.loop_nest(&spec)
    }

    /// `concat`: each input copied (or computed, for a broadcast) into its part of the output.
    fn concat(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let Op::Concat { axis } = n.op else {
            return Err(err("concat kernel on a non-concat node"));
        };
        let out_dims = n.ty.shape.0.clone();
        let out_strides = Self::contiguous(&out_dims);
        let step = out_strides[axis];
        if step.batch_pow > 0 {
            return Err(err(format!(
                "%{}: concat along an axis before the batch axis",
                node.0
            )));
        }
        let Buf::F32(base) = self.plan().home(node)? else {
            return Err(err("concat into an integer buffer"));
        };
        let mut offset = 0;
        for &input in &n.inputs {
            let dims = self.graph.shape(input).0.clone();
            let store = Access {
                buf: Buf::F32(base + offset * step.fixed),
                strides: out_strides.clone(),
            };
            let spec = self
                .plan()
                .spec(dims.clone(), vec![(input, store)], None, &[])?;
            self.loop_nest(&spec)?;
            offset += match dims[axis] {
                Dim::Fixed(k) => k,
                Dim::Batch => return Err(err("concat along the batch axis")),
            };
        }
        Ok(())
    }

    /// `gather` (rows of a table, zeros for an out-of-range index) and `scatter_add` (rows added
    /// into a zeroed output, out-of-range indices dropped).
    fn rows(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let (values, indices) = (n.inputs[0], n.inputs[1]);
        let gather = match n.op {
            Op::Gather => true,
            Op::ScatterAdd { .. } => false,
            ref op => return Err(err(format!("%{}: rows kernel on {}", node.0, op.name()))),
        };
        let index_dims = self.graph.shape(indices).0.clone();
        let out_dims = n.ty.shape.0.clone();
        // Row width: the dimensions after the index (or row) dimensions.
        let width_dims = if gather {
            self.graph.shape(values).0[1..].to_vec()
        } else {
            out_dims[1..].to_vec()
        };
        let table_rows = match if gather {
            self.graph.shape(values).0[0]
        } else {
            out_dims[0]
        } {
            Dim::Fixed(r) => r,
            Dim::Batch => return Err(err("a table with a batch of rows")),
        };
        let (Buf::F32(vo), Buf::I32(io), Buf::F32(oo)) = (
            self.plan().home(values)?,
            self.plan().home(indices)?,
            self.plan().home(node)?,
        ) else {
            return Err(err(format!("%{}: {} buffers", node.0, n.op.name())));
        };
        let count = self.extent(Extent::product(&index_dims));
        let width = self.extent(Extent::product(&width_dims));
        let rows = self.iconst(table_rows as i64);
        let (vbase, ibase, obase) = (
            self.iconst(vo as i64),
            self.iconst(io as i64),
            self.iconst(oo as i64),
        );
        if !gather {
            let total = self.extent(Extent::product(&out_dims));
            self.vector_loop(total, None, &mut |e, j, ty| {
                let at = e.b.ins().iadd(obase, j);
                let a = e.addr(Buf::F32(oo), at);
                let zero = e.fconst(ty, 0.0);
                e.b.ins().store(rw(), zero, a, 0);
                None
            });
        }
        self.counted_loop(count, &mut |e, i| {
            let at = e.b.ins().iadd(ibase, i);
            let a = e.addr(Buf::I32(io), at);
            let index = e.b.ins().load(types::I32, ro(), a, 0);
            let index = e.b.ins().sextend(types::I64, index);
            // Unsigned compare: a negative index is a huge one, out of range too.
            let in_range = e.b.ins().icmp(IntCC::UnsignedLessThan, index, rows);
            let zero = e.iconst(0);
            let row = e.b.ins().select(in_range, index, zero);
            let table_row = e.b.ins().imul(row, width);
            let item_row = e.b.ins().imul(i, width);
            let (src, dst) = if gather {
                (
                    e.b.ins().iadd(vbase, table_row),
                    e.b.ins().iadd(obase, item_row),
                )
            } else {
                (
                    e.b.ins().iadd(vbase, item_row),
                    e.b.ins().iadd(obase, table_row),
                )
            };
            e.vector_loop(width, None, &mut |e, j, ty| {
                let s = e.b.ins().iadd(src, j);
                let sa = e.addr(Buf::F32(vo), s);
                let x = e.b.ins().load(ty, rw(), sa, 0);
                let zero = e.fconst(ty, 0.0);
                let x = e.b.ins().select(in_range, x, zero);
                let d = e.b.ins().iadd(dst, j);
                let da = e.addr(Buf::F32(oo), d);
                let y = if gather {
                    x
                } else {
                    let old = e.b.ins().load(ty, rw(), da, 0);
                    e.b.ins().fadd(old, x)
                };
                e.b.ins().store(rw(), y, da, 0);
                None
            });
        });
        Ok(())
    }

    /// A windowed op: one call to `kiln_window` with the op's geometry.
    fn window(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let (code, window, geometry_of) = match &n.op {
            Op::Unfold { window } => (WindowOp::Unfold, window, n.inputs[0]),
            Op::Fold { window, .. } => (WindowOp::Fold, window, node),
            Op::Pool { kind, window } => (
                match kind {
                    PoolKind::Max => WindowOp::MaxPool,
                    PoolKind::Mean => WindowOp::MeanPool,
                },
                window,
                n.inputs[0],
            ),
            Op::PoolGrad { kind, window } => (
                match kind {
                    PoolKind::Max => WindowOp::MaxPoolGrad,
                    PoolKind::Mean => WindowOp::MeanPoolGrad,
                },
                window,
                n.inputs[0],
            ),
            op => return Err(err(format!("%{}: window kernel on {}", node.0, op.name()))),
        };
        // The geometry over the channels-last tensor on the op's spatial side.
        let dims = self.graph.shape(geometry_of).0.clone();
        let fixed: Vec<usize> = dims[1..]
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => Ok(*n),
                Dim::Batch => Err(err("a window over a batch-sized axis")),
            })
            .collect::<Result<_, _>>()?;
        let (channels, spatial) = fixed
            .split_last()
            .ok_or_else(|| err("a window over a scalar"))?;
        let plane = window.plane(0, spatial, *channels);
        let x = self.home_addr(n.inputs[0])?;
        // The pooled value and its gradient, for the pooling gradients (else unused).
        let (y, dy) = match n.inputs[..] {
            [_, y, dy] => (self.home_addr(y)?, self.home_addr(dy)?),
            _ => (x, x),
        };
        let dst = self.home_addr(node)?;
        let mut args = vec![self.iconst(code as i64), x, y, dy, dst, self.batch];
        for size in plane_args(&plane) {
            args.push(self.iconst(size));
        }
        self.b.ins().call(self.helpers.window, &args);
        Ok(())
    }

    /// A scan: one call to `kiln_recurrence`, which loops over the time steps.
    fn scan(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let (op, cell) = match &n.op {
            Op::Recurrence { cell } => (ScanOp::Forward, cell),
            Op::RecurrenceGrad { cell } => (ScanOp::Backward, cell),
            op => return Err(err(format!("%{}: scan kernel on {}", node.0, op.name()))),
        };
        let Dim::Fixed(steps) = self.graph.shape(node).0[1] else {
            return Err(err("a scan over a batch-sized axis"));
        };
        let scratch = self
            .mem
            .scratch
            .ok_or_else(|| err("no scratch for a scan"))?;
        let a = self.home_addr(n.inputs[0])?;
        let kernel = self.home_addr(n.inputs[1])?;
        // The GRU's recurrent bias (forward) or the tape's gradient (backward); else unused.
        let c = match (op, cell.kind) {
            (ScanOp::Backward, _) | (ScanOp::Forward, CellKind::Gru) => {
                self.home_addr(n.inputs[2])?
            }
            (ScanOp::Forward, _) => a,
        };
        // A masked scan's mask is its last input.
        let mask = match (cell.masked, n.inputs.last()) {
            (true, Some(&mask)) => self.home_addr(mask)?,
            _ => a,
        };
        let dst = self.home_addr(node)?;
        let scratch = self.buf_ptr(Buf::F32(scratch));
        let args = [
            self.iconst(op as i64),
            self.iconst(cell_code(cell)),
            self.iconst(cell.units as i64),
            self.batch,
            self.iconst(steps as i64),
            a,
            kernel,
            c,
            mask,
            dst,
            scratch,
        ];
        self.b.ins().call(self.helpers.recurrence, &args);
        Ok(())
    }

    /// The sizes and operand strides of `op(a)·op(b)` for `a` `ra×ca` and `b` `rb×cb`: row and
    /// column strides express the transposes, so nothing is copied.
    fn gemm_dims(
        &mut self,
        (ra, ca): (Value, Value),
        (rb, cb): (Value, Value),
        transpose_a: bool,
        transpose_b: bool,
    ) -> GemmDims {
        let one = self.iconst(1);
        let (m, k, a_rs, a_cs) = if transpose_a {
            (ca, ra, one, ca)
        } else {
            (ra, ca, ca, one)
        };
        let (n, b_rs, b_cs) = if transpose_b {
            (rb, one, cb)
        } else {
            (cb, cb, one)
        };
        GemmDims {
            m,
            n,
            k,
            a_rs,
            a_cs,
            b_rs,
            b_cs,
        }
    }

    fn matmul(&mut self, node: ValueId) -> Result<(), CodegenError> {
        if self.mem.emitted_matmuls.contains(&node) {
            return self.emitted_matmul(node);
        }
        let n = self.graph.node(node);
        let (transpose_a, transpose_b) = match n.op {
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => (transpose_a, transpose_b),
            Op::Contract => return self.contract(node),
            _ => return Err(err("matmul kernel on a non-matmul node")),
        };
        let (a, b) = (n.inputs[0], n.inputs[1]);
        let (sa, sb) = (self.graph.shape(a).0.clone(), self.graph.shape(b).0.clone());
        if sa.len() > 2 {
            return self.batched_matmul(node, transpose_a, transpose_b);
        }
        let (ra, ca) = (self.dim(sa[0]), self.dim(sa[1]));
        let (rb, cb) = (self.dim(sb[0]), self.dim(sb[1]));
        let g = self.gemm_dims((ra, ca), (rb, cb), transpose_a, transpose_b);
        let dst = self.home_addr(node)?;
        let pa = self.home_addr(a)?;
        let pb = self.home_addr(b)?;
        let args = g.args(g.m, dst, pa, pb);
        self.b.ins().call(self.helpers.gemm, &args);
        Ok(())
    }

    /// `aᵀ·b` over all rows: one product whose depth is every row of both operands.
    fn contract(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let (a, b) = (n.inputs[0], n.inputs[1]);
        let sa = self.graph.shape(a).0.clone();
        let sb = self.graph.shape(b).0.clone();
        let (Some(&Dim::Fixed(m)), Some(&Dim::Fixed(width))) = (sa.last(), sb.last()) else {
            return Err(err("contract over unsized rows"));
        };
        let rows = self.extent(Extent::product(&sa[..sa.len() - 1]));
        let (m, width) = (self.iconst(m as i64), self.iconst(width as i64));
        let one = self.iconst(1);
        // A row-major [rows, m] read transposed, times a row-major [rows, width].
        let g = GemmDims {
            m,
            n: width,
            k: rows,
            a_rs: one,
            a_cs: m,
            b_rs: width,
            b_cs: one,
        };
        let dst = self.home_addr(node)?;
        let pa = self.home_addr(a)?;
        let pb = self.home_addr(b)?;
        let args = g.args(g.m, dst, pa, pb);
        self.b.ins().call(self.helpers.gemm, &args);
        Ok(())
    }

    /// A batch of products: with a shared rank-2 right operand and no transposed left one, the
    /// batch is one tall product (rows of consecutive items are consecutive); otherwise one
    /// `gemm` call per item.
    fn batched_matmul(
        &mut self,
        node: ValueId,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let (a, b) = (n.inputs[0], n.inputs[1]);
        let (sa, sb) = (self.graph.shape(a).0.clone(), self.graph.shape(b).0.clone());
        let (la, lb) = (sa.len(), sb.len());
        let lead = self.extent(Extent::product(&sa[..la - 2]));
        let (ra, ca) = (self.dim(sa[la - 2]), self.dim(sa[la - 1]));
        let (rb, cb) = (self.dim(sb[lb - 2]), self.dim(sb[lb - 1]));
        let g = self.gemm_dims((ra, ca), (rb, cb), transpose_a, transpose_b);
        let dst = self.home_addr(node)?;
        let pa = self.home_addr(a)?;
        let pb = self.home_addr(b)?;
        let gemm = self.helpers.gemm;
        if lb == 2 && !transpose_a {
            let rows = self.b.ins().imul(lead, g.m);
            let args = g.args(rows, dst, pa, pb);
            self.b.ins().call(gemm, &args);
            return Ok(());
        }
        // Item sizes in bytes.
        let a_item = self.b.ins().imul(ra, ca);
        let a_item = self.b.ins().ishl_imm_u(a_item, 2);
        let b_item = if lb == 2 {
            self.iconst(0)
        } else {
            let x = self.b.ins().imul(rb, cb);
            self.b.ins().ishl_imm_u(x, 2)
        };
        let c_item = self.b.ins().imul(g.m, g.n);
        let c_item = self.b.ins().ishl_imm_u(c_item, 2);
        self.counted_loop(lead, &mut |e, i| {
            let oa = e.b.ins().imul(i, a_item);
            let ob = e.b.ins().imul(i, b_item);
            let oc = e.b.ins().imul(i, c_item);
            let pa = e.b.ins().iadd(pa, oa);
            let pb = e.b.ins().iadd(pb, ob);
            let pc = e.b.ins().iadd(dst, oc);
            let args = g.args(g.m, pc, pa, pb);
            e.b.ins().call(gemm, &args);
        });
        Ok(())
    }

    fn softmax(&mut self, node: ValueId) -> Result<(), CodegenError> {
        let n = self.graph.node(node);
        let (log, causal) = match n.op {
            Op::Softmax => (false, false),
            Op::LogSoftmax => (true, false),
            Op::CausalSoftmax => (false, true),
            ref op => return Err(err(format!("%{}: softmax kernel on {}", node.0, op.name()))),
        };
        let input = n.inputs[0];
        let dims = self.graph.shape(node).0.clone();
        let (rows_dims, last) = dims.split_at(dims.len() - 1);
        let rows = self.extent(Extent::product(rows_dims));
        let w = self.dim(last[0]);
        let (ib, ob) = (self.plan().home(input)?, self.plan().home(node)?);
        let (io, oo) = (self.buf_offset(ib), self.buf_offset(ob));
        let full = w;
        // A causal softmax's rows per matrix (the queries; the keys are the row's width).
        let matrix_rows = match dims[..] {
            [.., Dim::Fixed(m), _] => m.max(1) as i64,
            _ => 1,
        };
        self.counted_loop(rows, &mut |e, r| {
            let row = e.b.ins().imul(r, full);
            let ir = e.b.ins().iadd(io, row);
            let or = e.b.ins().iadd(oo, row);
            // Causal: row `i` (of the last two axes) over its first `i + 1` entries (all of a
            // row past the width), zeros after.
            let w = if causal {
                let m = e.iconst(matrix_rows);
                let i = e.b.ins().urem(r, m);
                let next = e.b.ins().iadd_imm_s(i, 1);
                let seen = e.b.ins().umin(next, full);
                let rest = e.b.ins().isub(full, seen);
                let after = e.b.ins().iadd(or, seen);
                e.vector_loop_with(rest, None, Tail::Scalar, &mut |e, j, ty| {
                    let at = e.b.ins().iadd(after, j);
                    let a = e.addr(ob, at);
                    let zero = e.fconst(ty, 0.0);
                    e.b.ins().store(rw(), zero, a, 0);
                    None
                });
                seen
            } else {
                full
            };
            let load = |e: &mut Self, j: Value, ty: Type| {
                let at = e.b.ins().iadd(ir, j);
                let a = e.addr(ib, at);
                e.b.ins().load(ty, rw(), a, 0)
            };
            let mx = e
                .vector_loop_with(w, Some(ReduceKind::Max), Tail::Overlap, &mut |e, j, ty| {
                    Some(load(e, j, ty))
                })
                .expect("max");
            // The sum's loop stores softmax's exponentials, from the input.
            let sum_tail = if log || ib != ob {
                Tail::Overlap
            } else {
                Tail::Scalar
            };
            let sum = e
                .vector_loop_with(w, Some(ReduceKind::Sum), sum_tail, &mut |e, j, ty| {
                    let x = load(e, j, ty);
                    let m = if ty.is_vector() {
                        e.b.ins().splat(ty, mx)
                    } else {
                        mx
                    };
                    let d = e.b.ins().fsub(x, m);
                    let y = e.exp(d);
                    if !log {
                        let at = e.b.ins().iadd(or, j);
                        let a = e.addr(ob, at);
                        e.b.ins().store(rw(), y, a, 0);
                    }
                    Some(y)
                })
                .expect("sum");
            // softmax: scale by 1/sum; log-softmax: subtract log sum.
            let k = if log {
                let call = e.b.ins().call(e.helpers.logf, &[sum]);
                e.b.inst_results(call)[0]
            } else {
                let one = e.b.ins().f32const(1.0);
                e.b.ins().fdiv(one, sum)
            };
            // Log-softmax recomputes from the input, so its last four may be written twice
            // (not in place); softmax scales its own output in place, so once only.
            let tail = if log && ib != ob {
                Tail::Overlap
            } else {
                Tail::Scalar
            };
            e.vector_loop_with(w, None, tail, &mut |e, j, ty| {
                let kv = if ty.is_vector() {
                    e.b.ins().splat(ty, k)
                } else {
                    k
                };
                let at = e.b.ins().iadd(or, j);
                let a = e.addr(ob, at);
                let y = if log {
                    // (x - max) - log(sum): exact when x is the max, even for huge logits.
                    let x = load(e, j, ty);
                    let m = if ty.is_vector() {
                        e.b.ins().splat(ty, mx)
                    } else {
                        mx
                    };
                    let d = e.b.ins().fsub(x, m);
                    e.b.ins().fsub(d, kv)
                } else {
                    let x = e.b.ins().load(ty, rw(), a, 0);
                    e.b.ins().fmul(x, kv)
                };
                e.b.ins().store(rw(), y, a, 0);
                None
            });
        });
        Ok(())
    }
}
