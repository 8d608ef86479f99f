//! `recurrence` and `recurrence_grad` as native code the JIT'd step calls (`kiln_recurrence`):
//! the scan's loop over time steps, each step one matrix product through the step's GEMM (split
//! over the step's threads when large; the recurrent kernel packed once per scan, see
//! `gemm::ConstantRhs`) and the cell's arithmetic from `ir::recurrence`, the
//! same definition the interpreter runs. The loop lives here, not in emitted code, so compile
//! time does not grow with the sequence length.

use super::gemm::{ConstantRhs, sgemm_constant_rhs};
use crate::ir::recurrence::{Activation, Cell, CellKind, Real};

/// Which direction `kiln_recurrence` runs (its first argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub(crate) enum ScanOp {
    Forward = 0,
    Backward = 1,
}

const KINDS: [CellKind; 3] = [CellKind::SimpleRnn, CellKind::Lstm, CellKind::Gru];

fn index_of<T: PartialEq>(all: &[T], x: &T) -> i64 {
    all.iter().position(|a| a == x).unwrap_or(0) as i64
}

/// The cell without its width, as one integer argument.
pub(crate) fn cell_code(cell: &Cell) -> i64 {
    index_of(&KINDS, &cell.kind)
        | index_of(&Activation::ALL, &cell.activation) << 4
        | index_of(&Activation::ALL, &cell.recurrent_activation) << 8
        | i64::from(cell.reverse) << 12
        | i64::from(cell.masked) << 16
}

fn cell_from_code(code: i64, units: usize) -> Option<Cell> {
    let field = |shift: u32| ((code >> shift) & 0xf) as usize;
    Some(Cell {
        kind: *KINDS.get(field(0))?,
        units,
        activation: *Activation::ALL.get(field(4))?,
        recurrent_activation: *Activation::ALL.get(field(8))?,
        reverse: field(12) == 1,
        masked: field(16) == 1,
    })
}

/// Floats of scratch a scan of `cell` needs at `batch` samples: the forward pass's recurrent
/// product, or the reverse pass's copy of it and the gradients carried between steps; then
/// the recurrent kernel packed once for the scan's products (`ConstantRhs`).
pub(crate) fn scratch_len(cell: &Cell, batch: usize) -> usize {
    carried_len(cell, batch) + packed_kernel_len(cell)
}

fn carried_len(cell: &Cell, batch: usize) -> usize {
    batch * (cell.gate_width() + 5 * cell.units)
}

/// The packed kernel `U` (`[units, gw]`, forward) or `Uᵀ` (backward), whichever is larger.
fn packed_kernel_len(cell: &Cell) -> usize {
    let (u, gw) = (cell.units, cell.gate_width());
    ConstantRhs::buffer_len(gw, u).max(ConstantRhs::buffer_len(u, gw))
}

/// Runs one scan over `batch` samples of `steps` steps. Forward: `a` is `xw`, `c` the GRU's
/// recurrent bias (else unused), `dst` the tape. Backward: `a` is the tape, `c` its gradient,
/// `dst` the pre-activation gradients. `kernel` is the recurrent kernel; `mask` the mask
/// `[batch, steps]` of a masked cell (else unused); `scratch` holds `scratch_len` floats.
#[allow(clippy::too_many_arguments)]
pub(crate) extern "C" fn kiln_recurrence(
    op: i64,
    code: i64,
    units: i64,
    batch: i64,
    steps: i64,
    a: *const f32,
    kernel: *const f32,
    c: *const f32,
    mask: *const f32,
    dst: *mut f32,
    scratch: *mut f32,
) {
    let (units, batch, steps) = (
        units.max(0) as usize,
        batch.max(0) as usize,
        steps.max(0) as usize,
    );
    let Some(cell) = cell_from_code(code, units) else {
        return;
    };
    let (gw, width) = (cell.gate_width(), cell.tape_width());
    let gru = cell.kind == CellKind::Gru;
    // The JIT'd step passes arena pointers to buffers the memory plan sized for these shapes at
    // `max_batch` >= batch (`xw` or the tape and its gradient `[batch, steps, ..]`, the kernel
    // `[units, gw]`, the GRU's bias `[gw]`, a masked cell's mask `[batch, steps]`, the output,
    // and `scratch_len` floats of scratch); the output and scratch overlap no input (a
    // kernel's inputs stay alive while it writes, and the scratch region is the plan's own).
    // SAFETY: as said above, for the kernel, the mask and the scratch.
    let (kernel, mask, scratch) = unsafe {
        (
            std::slice::from_raw_parts(kernel, units * gw),
            cell.masked
                .then(|| std::slice::from_raw_parts(mask, batch * steps)),
            std::slice::from_raw_parts_mut(scratch, scratch_len(&cell, batch)),
        )
    };
    if op == ScanOp::Forward as i64 {
        // SAFETY: as above.
        let (xw, bias, tape) = unsafe {
            (
                std::slice::from_raw_parts(a, batch * steps * gw),
                gru.then(|| std::slice::from_raw_parts(c, gw)),
                std::slice::from_raw_parts_mut(dst, batch * steps * width),
            )
        };
        let forward = Forward {
            cell: &cell,
            batch,
            steps,
            xw,
            kernel,
            bias,
            mask,
        };
        #[cfg(target_arch = "x86_64")]
        if super::adam::available() {
            // SAFETY: the host has AVX2 and FMA (checked above), all this is compiled for.
            unsafe { forward.run_avx2(tape, scratch) };
            return;
        }
        forward.run(tape, scratch);
    } else {
        // SAFETY: as above.
        let (tape, dtape, grad) = unsafe {
            (
                std::slice::from_raw_parts(a, batch * steps * width),
                std::slice::from_raw_parts(c, batch * steps * width),
                std::slice::from_raw_parts_mut(dst, batch * steps * cell.grad_width()),
            )
        };
        let backward = Backward {
            cell: &cell,
            batch,
            steps,
            tape,
            kernel,
            dtape,
            mask,
        };
        #[cfg(target_arch = "x86_64")]
        if super::adam::available() {
            // SAFETY: the host has AVX2 and FMA (checked above), all this is compiled for.
            unsafe { backward.run_avx2(grad, scratch) };
            return;
        }
        backward.run(grad, scratch);
    }
}

/// A forward scan's operands.
struct Forward<'a> {
    cell: &'a Cell,
    batch: usize,
    steps: usize,
    xw: &'a [f32],
    kernel: &'a [f32],
    bias: Option<&'a [f32]>,
    mask: Option<&'a [f32]>,
}

impl Forward<'_> {
    /// `run`, compiled for 256-bit vectors and FMA (the cells' loops are written to vectorize).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, tape: &mut [f32], scratch: &mut [f32]) {
        self.run(tape, scratch)
    }

    #[inline(always)]
    fn run(&self, tape: &mut [f32], scratch: &mut [f32]) {
        let Forward {
            cell,
            batch,
            steps,
            xw,
            kernel,
            bias,
            mask,
        } = *self;
        scan_forward(cell, batch, steps, xw, kernel, bias, mask, tape, scratch);
    }
}

/// A reverse scan's operands.
struct Backward<'a> {
    cell: &'a Cell,
    batch: usize,
    steps: usize,
    tape: &'a [f32],
    kernel: &'a [f32],
    dtape: &'a [f32],
    mask: Option<&'a [f32]>,
}

impl Backward<'_> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2(&self, grad: &mut [f32], scratch: &mut [f32]) {
        self.run(grad, scratch)
    }

    #[inline(always)]
    fn run(&self, grad: &mut [f32], scratch: &mut [f32]) {
        let Backward {
            cell,
            batch,
            steps,
            tape,
            kernel,
            dtape,
            mask,
        } = *self;
        scan_backward(cell, batch, steps, tape, kernel, dtape, mask, grad, scratch);
    }
}

/// f32 as the native cells compute it: `exp` and `tanh` as the code generator emits them
/// (Cephes' range reduction and polynomials, ~1 ulp), branch-free so that loops over a gate's
/// block vectorize.
impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;

    // The Cephes coefficients are kept as published.
    #[allow(clippy::excessive_precision)]
    #[inline(always)]
    fn exp(self) -> f32 {
        let x = self;
        let xc = x.clamp(-87.336_54, 88.376_26);
        let n = (xc * std::f32::consts::LOG2_E + 0.5).floor();
        let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut y = 1.987_569_1e-4f32;
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            5.000_000_1e-1,
        ] {
            y = y * r + c;
        }
        let y = y * (r * r) + r + 1.0;
        let pow2n = f32::from_bits(((n as i32 + 127) as u32) << 23);
        let res = y * pow2n;
        let res = if x < -87.336_54 { 0.0 } else { res };
        let res = if x > 88.72 { f32::INFINITY } else { res };
        if x.is_nan() { x } else { res }
    }

    #[allow(clippy::excessive_precision)]
    #[inline(always)]
    fn tanh(self) -> f32 {
        let x = self;
        let ax = x.abs();
        let big = (1.0 - 2.0 / (Real::exp(2.0 * ax) + 1.0)).copysign(x);
        let z = x * x;
        let mut p = -5.704_988_7e-3f32;
        for c in [
            2.063_908_9e-2,
            -5.373_971_6e-2,
            1.333_144_2e-1,
            -3.333_328_2e-1,
        ] {
            p = p * z + c;
        }
        let small = p * z * x + x;
        if ax < 0.625 { small } else { big }
    }
}

/// The recurrent kernel `b` of a scan's products `m×n×k` (`b_t`: read transposed), packed once
/// into `buffer` for all of them.
struct Recurrent<'a> {
    b: &'a [f32],
    b_rs: isize,
    b_cs: isize,
    packed: ConstantRhs,
}

impl<'a> Recurrent<'a> {
    fn pack(mnk: (usize, usize, usize), b: &'a [f32], b_t: bool, buffer: &mut [f32]) -> Self {
        let (_, n, k) = mnk;
        assert!(b.len() >= n * k);
        let (b_rs, b_cs) = if b_t {
            (1, k as isize)
        } else {
            (n as isize, 1)
        };
        // SAFETY: `b` holds the `k×n` operand (checked above); `b` and `buffer` are borrowed
        // for as long as the result is used.
        let packed = unsafe { ConstantRhs::pack(mnk, b.as_ptr(), b_rs, b_cs, buffer) };
        Recurrent {
            b,
            b_rs,
            b_cs,
            packed,
        }
    }

    /// `dst[m×n] = a·b` through the step's GEMM, `a` rows `a_rs` apart.
    fn product(&self, (m, n, k): (usize, usize, usize), dst: &mut [f32], a: &[f32], a_rs: usize) {
        assert!(dst.len() >= m * n && (m == 0 || a.len() >= (m - 1) * a_rs + k));
        // SAFETY: the slices hold the operands (checked above and in `pack`), `dst` is
        // borrowed mutably so overlaps neither, and `packed` was packed from `b` for this shape.
        unsafe {
            sgemm_constant_rhs(
                (m, n, k),
                dst.as_mut_ptr(),
                a.as_ptr(),
                a_rs as isize,
                1,
                self.b.as_ptr(),
                self.b_rs,
                self.b_cs,
                self.packed,
            )
        };
    }
}

/// Two disjoint rows of one buffer: `(buf[read..read + len], &mut buf[write..write + len])`.
fn row_pair(buf: &mut [f32], read: usize, write: usize, len: usize) -> (&[f32], &mut [f32]) {
    if read < write {
        let (head, tail) = buf.split_at_mut(write);
        (&head[read..read + len], &mut tail[..len])
    } else {
        let (head, tail) = buf.split_at_mut(read);
        (&tail[..len], &mut head[write..write + len])
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scan_forward(
    cell: &Cell,
    batch: usize,
    steps: usize,
    xw: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    mask: Option<&[f32]>,
    tape: &mut [f32],
    scratch: &mut [f32],
) {
    let (u, gw, width) = (cell.units, cell.gate_width(), cell.tape_width());
    let (scratch, pack_buffer) = scratch.split_at_mut(carried_len(cell, batch));
    let recurrent = Recurrent::pack((batch, gw, u), kernel, false, pack_buffer);
    let rec = &mut scratch[..batch * gw];
    for k in 0..steps {
        let t = cell.step(k, steps);
        let previous = cell.previous(t, steps);
        match previous {
            // Each sample's previous hidden state is the start of its tape row at `p`.
            Some(p) => recurrent.product((batch, gw, u), rec, &tape[p * width..], steps * width),
            None => rec.fill(0.0),
        }
        if let Some(bias) = bias {
            for row in rec.chunks_exact_mut(gw) {
                row.iter_mut().zip(bias).for_each(|(r, b)| *r += b);
            }
        }
        for b in 0..batch {
            let x = &xw[(b * steps + t) * gw..][..gw];
            let r = &mut rec[b * gw..][..gw];
            let at = (b * steps + t) * width;
            let skip = mask.is_some_and(|m| m[b * steps + t] == 0.0);
            match previous {
                Some(p) => {
                    let (prev, out) = row_pair(tape, (b * steps + p) * width, at, width);
                    if skip {
                        Cell::skip(Some(prev), out);
                    } else {
                        cell.forward(x, r, Some(prev), out);
                    }
                }
                None if skip => Cell::skip(None, &mut tape[at..at + width]),
                None => cell.forward(x, r, None, &mut tape[at..at + width]),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scan_backward(
    cell: &Cell,
    batch: usize,
    steps: usize,
    tape: &[f32],
    kernel: &[f32],
    dtape: &[f32],
    mask: Option<&[f32]>,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let (u, gw, width, grad_width) = (
        cell.units,
        cell.gate_width(),
        cell.tape_width(),
        cell.grad_width(),
    );
    let (scratch, pack_buffer) = scratch.split_at_mut(carried_len(cell, batch));
    let recurrent = Recurrent::pack((batch, u, gw), kernel, true, pack_buffer);
    let (drec, rest) = scratch.split_at_mut(batch * gw);
    let (via_rec, rest) = rest.split_at_mut(batch * u);
    let (via_h, rest) = rest.split_at_mut(batch * u);
    let (via_c, rest) = rest.split_at_mut(batch * u);
    let (dh, rest) = rest.split_at_mut(u);
    let dc = &mut rest[..u];
    via_rec.fill(0.0);
    via_h.fill(0.0);
    via_c.fill(0.0);
    let gru = cell.kind == CellKind::Gru;
    for k in (0..steps).rev() {
        let t = cell.step(k, steps);
        let previous = cell.previous(t, steps);
        for b in 0..batch {
            let at = (b * steps + t) * width;
            let carried = b * u..(b + 1) * u;
            for j in 0..u {
                dh[j] = dtape[at + j] + via_rec[carried.start + j] + via_h[carried.start + j];
                dc[j] = match cell.cell_state() {
                    Some(c) => dtape[at + c.start + j] + via_c[carried.start + j],
                    None => 0.0,
                };
            }
            let prev = previous.map(|p| &tape[(b * steps + p) * width..][..width]);
            let out = &mut grad[(b * steps + t) * grad_width..][..grad_width];
            if mask.is_some_and(|m| m[b * steps + t] == 0.0) {
                // The zero gradient row also zeroes this sample's `d rec · Uᵀ` below.
                Cell::skip_backward(
                    dh,
                    dc,
                    out,
                    &mut via_h[carried.clone()],
                    &mut via_c[carried],
                );
            } else {
                cell.backward(
                    &tape[at..at + width],
                    prev,
                    dh,
                    dc,
                    out,
                    &mut via_h[carried.clone()],
                    &mut via_c[carried],
                );
            }
            if gru {
                let d = &mut drec[b * gw..][..gw];
                for (j, x) in d.iter_mut().enumerate() {
                    *x = out[cell.recurrent_grad_index(j)];
                }
            }
        }
        // What reaches the previous step through the recurrent product: d rec · Uᵀ.
        if previous.is_some() {
            if gru {
                recurrent.product((batch, u, gw), via_rec, drec, gw);
            } else {
                recurrent.product(
                    (batch, u, gw),
                    via_rec,
                    &grad[t * grad_width..],
                    steps * grad_width,
                );
            }
        }
    }
}
