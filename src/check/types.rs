//! Declared tensor types against the shapes the checker computes: dimension symbols are bound by
//! unification (`B` to the batch, `in` to whatever width flows in), names of numbers in scope
//! (`units`) and arithmetic (`7 * 7 * 64`) evaluate to literals, and a conflict names both
//! sources.

use crate::ir::shape::{DType, Dim};
pub use crate::ir::shape::{per_sample, shape_text, type_text};
use crate::syntax::ast::{self, BinaryOp, DimKind};
use std::collections::HashMap;

/// The largest size of one dimension (larger ones are user mistakes, and products of them
/// would overflow).
pub const MAX_DIM: usize = u32::MAX as usize;

/// The most elements one tensor may hold per sample: 2^45 f32 values are 128 TiB, the whole
/// address space of an x86-64 process. Past it a product of dimensions is no size at all (it
/// used to saturate at 2^64 − 1 and pass); below it, whether the memory is there is for the run
/// to measure.
pub const MAX_ELEMENTS: usize = 1 << 45;

/// Symbol bindings while one signature is matched.
#[derive(Default, Debug, Clone)]
pub struct DimEnv {
    pub symbols: HashMap<String, Dim>,
}

/// Why a declared dimension could not be evaluated.
pub enum DimError {
    /// A symbol neither bound nor a number in scope, where it cannot be inferred.
    Unknown(String),
    /// Arithmetic involving the batch dimension, or a result that is not a positive integer.
    Arithmetic(String),
}

/// Evaluates one declared dimension. `number` looks a name up among numbers in scope;
/// `actual` is the dimension the value really has, which binds an unbound symbol.
pub fn eval_dim(
    dim: &ast::Dim,
    env: &mut DimEnv,
    number: &dyn Fn(&str) -> Option<i64>,
    actual: Option<Dim>,
) -> Result<Dim, DimError> {
    match &dim.kind {
        DimKind::Literal(n) => usize::try_from(*n)
            .ok()
            .filter(|&n| n > 0 && n <= MAX_DIM)
            .map(Dim::Fixed)
            .ok_or_else(|| {
                DimError::Arithmetic(format!(
                    "`{n}` is not a usable dimension (sizes are 1 to 4294967295)"
                ))
            }),
        DimKind::Symbol(s) => {
            if let Some(n) = number(s) {
                return usize::try_from(n)
                    .ok()
                    .filter(|&n| n > 0 && n <= MAX_DIM)
                    .map(Dim::Fixed)
                    .ok_or_else(|| {
                        DimError::Arithmetic(format!("`{s}` is {n}, not a positive size"))
                    });
            }
            if let Some(bound) = env.symbols.get(s) {
                return Ok(*bound);
            }
            match actual {
                Some(actual) => {
                    env.symbols.insert(s.clone(), actual);
                    Ok(actual)
                }
                None => Err(DimError::Unknown(s.clone())),
            }
        }
        DimKind::Binary { op, lhs, rhs } => {
            let a = eval_dim(lhs, env, number, None)?;
            let b = eval_dim(rhs, env, number, None)?;
            let (Dim::Fixed(a), Dim::Fixed(b)) = (a, b) else {
                return Err(DimError::Arithmetic(
                    "arithmetic on the batch dimension is not supported".into(),
                ));
            };
            let value = match op {
                BinaryOp::Add => a.checked_add(b),
                BinaryOp::Sub => a.checked_sub(b),
                BinaryOp::Mul => a.checked_mul(b),
                BinaryOp::Div => (b != 0 && a % b == 0).then(|| a / b),
                BinaryOp::MatMul => None,
            };
            value
                .filter(|&v| v > 0 && v <= MAX_DIM)
                .map(Dim::Fixed)
                .ok_or_else(|| {
                    DimError::Arithmetic(format!(
                        "{a} {} {b} is not a positive whole size",
                        op.symbol()
                    ))
                })
        }
        DimKind::Error => Err(DimError::Arithmetic("invalid dimension".into())),
    }
}

pub fn dtype_of(name: &str) -> Option<DType> {
    match name {
        "f32" => Some(DType::F32),
        "i32" => Some(DType::I32),
        _ => None,
    }
}
