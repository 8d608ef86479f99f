//! The runtime support the generated step calls, as one table: each symbol's name, its
//! Cranelift signature and its address in this process. The JIT registers every entry with its
//! module; `translate` imports the entries the emitter calls; an object file (`compile_object`)
//! refers to them by name as undefined symbols for the deployment's link to resolve.
//!
//! The functions stay `pub(crate) extern "C"` without `#[unsafe(no_mangle)]`: the JIT is handed
//! their addresses, so nothing links against their names. A library built by `kiln build`
//! (`library.rs`) links C stand-ins for `kiln_sgemm`, `kiln_window` (its forward ops),
//! `kiln_logf` and `kiln_powf` (`library_support.c`); a model whose step would call the others
//! is refused there.

use cranelift_codegen::ir::{AbiParam, Signature, Type, types};
use cranelift_codegen::isa::CallConv;

use super::{adam, gemm, profile, recurrence, window};

/// A parameter or result type, spelled independently of the target's pointer width.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg {
    Ptr,
    I64,
    F32,
}

/// One function the generated code may call.
pub(crate) struct Symbol {
    pub name: &'static str,
    pub params: &'static [Arg],
    pub returns: &'static [Arg],
    /// The implementation in this process, for the JIT.
    pub address: *const u8,
}

impl Symbol {
    pub fn signature(&self, call_conv: CallConv, ptr: Type) -> Signature {
        let ty = |a: &Arg| match a {
            Arg::Ptr => ptr,
            Arg::I64 => types::I64,
            Arg::F32 => types::F32,
        };
        let mut sig = Signature::new(call_conv);
        sig.params
            .extend(self.params.iter().map(|a| AbiParam::new(ty(a))));
        sig.returns
            .extend(self.returns.iter().map(|a| AbiParam::new(ty(a))));
        sig
    }
}

use Arg::{F32, I64, Ptr};

/// `gemm::kiln_sgemm(m, n, k, dst, a, a_rs, a_cs, b, b_rs, b_cs)`.
pub(crate) const SGEMM: Symbol = Symbol {
    name: "kiln_sgemm",
    params: &[I64, I64, I64, Ptr, Ptr, I64, I64, Ptr, I64, I64],
    returns: &[],
    address: gemm::kiln_sgemm as *const u8,
};

/// `adam::kiln_adam(arena, n, p, g, m, v, alpha, root, c1, c2, b2, eps)`.
pub(crate) const ADAM: Symbol = Symbol {
    name: "kiln_adam",
    params: &[Ptr, I64, I64, I64, I64, I64, I64, I64, F32, F32, F32, F32],
    returns: &[],
    address: adam::kiln_adam as *const u8,
};

/// `window::kiln_window(op, x, y, dy, dst, batch, ih, iw, c, oh, ow, kh, kw, sh, sw, dh, dw, ph,
/// pw)`.
pub(crate) const WINDOW: Symbol = Symbol {
    name: "kiln_window",
    params: &[
        I64, Ptr, Ptr, Ptr, Ptr, I64, I64, I64, I64, I64, I64, I64, I64, I64, I64, I64, I64, I64,
        I64,
    ],
    returns: &[],
    address: window::kiln_window as *const u8,
};

/// `recurrence::kiln_recurrence(op, cell, units, batch, steps, a, kernel, c, mask, dst,
/// scratch)`.
pub(crate) const RECURRENCE: Symbol = Symbol {
    name: "kiln_recurrence",
    params: &[I64, I64, I64, I64, I64, Ptr, Ptr, Ptr, Ptr, Ptr, Ptr],
    returns: &[],
    address: recurrence::kiln_recurrence as *const u8,
};

pub(crate) const LOGF: Symbol = Symbol {
    name: "kiln_logf",
    params: &[F32],
    returns: &[F32],
    address: kiln_logf as *const u8,
};

pub(crate) const POWF: Symbol = Symbol {
    name: "kiln_powf",
    params: &[F32, F32],
    returns: &[F32],
    address: kiln_powf as *const u8,
};

/// `profile::kiln_profile_mark(site)`, called only by a profiled step.
pub(crate) const PROFILE_MARK: Symbol = Symbol {
    name: "kiln_profile_mark",
    params: &[I64],
    returns: &[],
    address: profile::kiln_profile_mark as *const u8,
};

/// Every symbol, in the order `translate` declares the ones it uses (which fixes their ids in
/// the module, and so the names `kiln dump --stage clif` shows).
pub(crate) const SYMBOLS: [&Symbol; 7] = [
    &SGEMM,
    &ADAM,
    &WINDOW,
    &RECURRENCE,
    &LOGF,
    &POWF,
    &PROFILE_MARK,
];

// `ln` and `powf` as Rust computes them; the emitter calls them once per lane.
extern "C" fn kiln_logf(x: f32) -> f32 {
    x.ln()
}

extern "C" fn kiln_powf(x: f32, y: f32) -> f32 {
    x.powf(y)
}
