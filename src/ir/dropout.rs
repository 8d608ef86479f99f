//! The dropout mask, part of what `Op::Dropout` means: a counter-based generator, so the mask of
//! element `k` at a step is a pure function of `(seed, step, k)`. Integer arithmetic only, which
//! the code generator repeats exactly, so the interpreter and native code drop the same elements.
//! Both read it from here.

use super::shape::{Dim, Shape};

/// Chris Wellons's `lowbias32` integer hash: every output bit depends on every input bit.
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Multiplier spreading consecutive indices apart before hashing (2^32 / φ).
pub const SPREAD: u32 = 0x9e37_79b1;

/// The two words derived from the seed alone (compile-time constants in the JIT).
pub fn seed_words(seed: u64) -> (u32, u32) {
    let (lo, hi) = (seed as u32, (seed >> 32) as u32);
    let s0 = mix(lo ^ mix(hi ^ 0x85eb_ca6b));
    (s0, mix(s0 ^ 0x9e37_79b9))
}

/// The name of the training step's input holding the global index of its batch's first row
/// (an f32 scalar, 0 in one process): element `k` of a slice of a batch that starts at global
/// row `first_row` draws the mask of element `k + first_row · row_len` of the whole batch
/// (`offset`), so ranks that each run a slice drop what one process drops.
pub const FIRST_ROW: &str = "first_row";

/// The element-index offset of a slice whose first row is global row `first_row`, rows of
/// `row_len` elements (wrapping, as the indices do).
pub fn offset(first_row: u32, row_len: usize) -> u32 {
    first_row.wrapping_mul(row_len as u32)
}

/// The length of a row of a dropped tensor of `shape`: its elements per sample when its first
/// axis is the batch, else 0 — a tensor without a batch axis (a parameter) is the same on every
/// slice of the batch, and so is its mask.
pub fn row_len(shape: &Shape) -> usize {
    match shape.0.first() {
        Some(Dim::Batch) => shape.numel(1),
        _ => 0,
    }
}

/// The per-step key, then the per-element bits.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub step_key: u32,
    pub s1: u32,
}

impl Key {
    pub fn new(seed: u64, step: u32) -> Key {
        let (s0, s1) = seed_words(seed);
        Key {
            step_key: mix(step ^ s0),
            s1,
        }
    }

    pub fn bits(self, index: u32) -> u32 {
        mix(mix(index.wrapping_mul(SPREAD).wrapping_add(self.step_key)) ^ self.s1)
    }

    /// Whether element `index` is kept: its top 31 bits, as a non-negative i32, reach the
    /// threshold (a signed compare, which SIMD has).
    pub fn keep(self, index: u32, threshold: i32) -> bool {
        (self.bits(index) >> 1) as i32 >= threshold
    }
}

/// `rate · 2^31`: a 31-bit value below it is dropped, so an element survives with
/// probability `1 - rate` (to within 2^-31).
pub fn threshold(rate: f32) -> i32 {
    (f64::from(rate) * f64::from(1u32 << 31)).round() as i32
}

/// The factor kept elements are scaled by, `1 / (1 - rate)` rounded to f32 (what the JIT
/// multiplies by).
pub fn scale(rate: f32) -> f32 {
    (1.0 / (1.0 - f64::from(rate))) as f32
}
