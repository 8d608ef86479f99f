//! The windowed ops (`unfold`, `fold`, `max_pool`/`mean_pool` and their gradients) as native
//! code the JIT'd step calls (`kiln_window`). They move data rather than compute — a
//! convolution's arithmetic is the matrix product over `unfold`'s patches — so each is a copy
//! or accumulation loop over contiguous runs of channels, which the compiler vectorizes.
//!
//! Every loop computes what `interp/window.rs` defines, with the same order of accumulation per
//! element (taps in row-major order), so results agree to f32 rounding of the same sums.

use super::gemm;
use crate::ir::window::Plane;

/// Which op `kiln_window` runs (its first argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub(crate) enum WindowOp {
    Unfold = 0,
    Fold = 1,
    MaxPool = 2,
    MeanPool = 3,
    MaxPoolGrad = 4,
    MeanPoolGrad = 5,
}

impl WindowOp {
    fn from_code(code: i64) -> Option<WindowOp> {
        [
            WindowOp::Unfold,
            WindowOp::Fold,
            WindowOp::MaxPool,
            WindowOp::MeanPool,
            WindowOp::MaxPoolGrad,
            WindowOp::MeanPoolGrad,
        ]
        .into_iter()
        .find(|op| *op as i64 == code)
    }

    /// Elements of (input, pooled value and its gradient, output) per sample.
    fn lengths(self, p: &Plane) -> (usize, usize, usize) {
        match self {
            WindowOp::Unfold => (p.input_len(), 0, p.unfolded_len()),
            WindowOp::Fold => (p.unfolded_len(), 0, p.input_len()),
            WindowOp::MaxPool | WindowOp::MeanPool => (p.input_len(), 0, p.pooled_len()),
            WindowOp::MaxPoolGrad | WindowOp::MeanPoolGrad => {
                (p.input_len(), p.pooled_len(), p.input_len())
            }
        }
    }
}

/// The geometry as `kiln_window` receives it: thirteen sizes after the batch.
pub(crate) fn plane_args(p: &Plane) -> [i64; 13] {
    [
        p.input[0],
        p.input[1],
        p.channels,
        p.output[0],
        p.output[1],
        p.size[0],
        p.size[1],
        p.strides[0],
        p.strides[1],
        p.dilation[0],
        p.dilation[1],
        p.pad_before[0],
        p.pad_before[1],
    ]
    .map(|x| x as i64)
}

/// Runs `op` over `batch` samples: `x` is the first input, `y` and `dy` the pooled value and its
/// gradient (pooling gradients only; otherwise ignored), `dst` the output. Called only by JIT'd steps, with buffers the
/// memory plan sized for this geometry.
#[allow(clippy::too_many_arguments)]
pub(crate) extern "C" fn kiln_window(
    op: i64,
    x: *const f32,
    y: *const f32,
    dy: *const f32,
    dst: *mut f32,
    batch: i64,
    ih: i64,
    iw: i64,
    channels: i64,
    oh: i64,
    ow: i64,
    kh: i64,
    kw: i64,
    sh: i64,
    sw: i64,
    dh: i64,
    dw: i64,
    ph: i64,
    pw: i64,
) {
    let u = |v: i64| v.max(0) as usize;
    let p = Plane {
        batch: u(batch),
        input: [u(ih), u(iw)],
        channels: u(channels),
        output: [u(oh), u(ow)],
        size: [u(kh), u(kw)],
        strides: [u(sh), u(sw)],
        dilation: [u(dh), u(dw)],
        pad_before: [u(ph), u(pw)],
    };
    let Some(op) = WindowOp::from_code(op) else {
        return;
    };
    let whole = Part {
        op,
        plane: p,
        x,
        y,
        dy,
        dst,
    };
    let (x_len, _, out_len) = op.lengths(&p);
    let threads = gemm::current_threads().min(p.batch);
    if threads <= 1 || p.batch * (x_len + out_len) < PARALLEL_MIN_ELEMENTS {
        whole.run();
        return;
    }
    // Whole samples per thread: each writes its own samples' outputs.
    let per_thread = p.batch.div_ceil(threads);
    gemm::spread_window(threads, &|t| {
        let start = (t * per_thread).min(p.batch);
        whole.samples(start, per_thread.min(p.batch - start))
    });
}

/// Windowed ops over fewer elements (inputs and outputs) than this run on the calling thread:
/// waking a worker costs more than the split saves.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// Some samples of one windowed op, by pointers into the step's arena: what a thread runs.
#[derive(Clone, Copy)]
pub(crate) struct Part {
    op: WindowOp,
    /// The geometry, `batch` being this part's samples.
    plane: Plane,
    x: *const f32,
    y: *const f32,
    dy: *const f32,
    dst: *mut f32,
}

// SAFETY: a `Part` is only sent to a worker for the duration of one `kiln_window` call, which
// waits for the worker before returning; the parts of one call write disjoint samples.
unsafe impl Send for Part {}

impl Part {
    /// `count` samples from sample `start`.
    fn samples(&self, start: usize, count: usize) -> Part {
        let (x_len, dy_len, out_len) = self.op.lengths(&self.plane);
        let pooled = |ptr: *const f32| ptr.wrapping_add(start * dy_len);
        Part {
            plane: Plane {
                batch: count,
                ..self.plane
            },
            x: self.x.wrapping_add(start * x_len),
            y: pooled(self.y),
            dy: pooled(self.dy),
            dst: self.dst.wrapping_add(start * out_len),
            ..*self
        }
    }

    pub(crate) fn run(&self) {
        let p = &self.plane;
        let (x_len, dy_len, out_len) = self.op.lengths(p);
        // SAFETY: `kiln_window`'s arena pointers (buffers planned for these shapes at
        // `max_batch` >= batch), offset to whole samples, hold this part's samples of the
        // lengths above; outputs never overlap inputs (the memory plan keeps a kernel's inputs
        // alive while it writes), parts write disjoint samples, and `y`, `dy` are only read
        // by the pooling gradients, which pass real buffers.
        let (x, y, dy, out) = unsafe {
            let pooled = |ptr: *const f32| {
                if dy_len == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(ptr, p.batch * dy_len)
                }
            };
            (
                std::slice::from_raw_parts(self.x, p.batch * x_len),
                pooled(self.y),
                pooled(self.dy),
                std::slice::from_raw_parts_mut(self.dst, p.batch * out_len),
            )
        };
        run(self.op, p, x, y, dy, out);
    }
}

/// `op` on slices holding whole batches, with 256-bit vectors where the host has them.
pub(crate) fn run(op: WindowOp, p: &Plane, x: &[f32], y: &[f32], dy: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::adam::available() {
        // SAFETY: the host has AVX2 and FMA (checked above), all `run_avx2` is compiled for.
        unsafe { run_avx2(op, p, x, y, dy, out) };
        return;
    }
    run_portable(op, p, x, y, dy, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2(op: WindowOp, p: &Plane, x: &[f32], y: &[f32], dy: &[f32], out: &mut [f32]) {
    run_portable(op, p, x, y, dy, out)
}

/// The loops, written so that LLVM vectorizes them to the widest vectors the caller enables.
#[inline(always)]
fn run_portable(op: WindowOp, p: &Plane, x: &[f32], y: &[f32], dy: &[f32], out: &mut [f32]) {
    let (x_len, dy_len, out_len) = op.lengths(p);
    for b in 0..p.batch {
        let x = &x[b * x_len..(b + 1) * x_len];
        let y = &y[b * dy_len..(b + 1) * dy_len];
        let dy = &dy[b * dy_len..(b + 1) * dy_len];
        let out = &mut out[b * out_len..(b + 1) * out_len];
        match op {
            WindowOp::Unfold => unfold(p, x, out),
            WindowOp::Fold => fold(p, x, out),
            WindowOp::MaxPool => max_pool(p, x, out),
            WindowOp::MeanPool => mean_pool(p, x, out),
            WindowOp::MaxPoolGrad => max_pool_grad(p, x, y, dy, out),
            WindowOp::MeanPoolGrad => mean_pool_grad(p, dy, out),
        }
    }
}

/// Calls `visit(output position, tap, input position or None)` for every output position of one
/// sample and every tap of its window, taps in row-major order.
#[inline(always)]
fn each_tap(p: &Plane, mut visit: impl FnMut(usize, usize, Option<usize>)) {
    let [oh, ow] = p.output;
    let [kh, kw] = p.size;
    for oy in 0..oh {
        for ox in 0..ow {
            let position = oy * ow + ox;
            for ky in 0..kh {
                for kx in 0..kw {
                    let source = p
                        .source((oy, ox), (ky, kx))
                        .map(|(y, x)| y * p.input[1] + x);
                    visit(position, ky * kw + kx, source);
                }
            }
        }
    }
}

#[inline(always)]
fn unfold(p: &Plane, x: &[f32], out: &mut [f32]) {
    let (c, taps) = (p.channels, p.taps());
    let kw = p.size[1];
    let contiguous_row = p.dilation[1] == 1;
    let [oh, ow] = p.output;
    for oy in 0..oh {
        for ox in 0..ow {
            let position = oy * ow + ox;
            for ky in 0..p.size[0] {
                let row = (position * taps + ky * kw) * c;
                let row = &mut out[row..row + kw * c];
                // A whole row of taps inside the input is one contiguous run of the input.
                let first = p.source((oy, ox), (ky, 0));
                let last = p.source((oy, ox), (ky, kw - 1));
                if contiguous_row && let (Some((y, x0)), Some(_)) = (first, last) {
                    let start = (y * p.input[1] + x0) * c;
                    copy(row, &x[start..start + kw * c]);
                    continue;
                }
                for kx in 0..kw {
                    let dst = &mut row[kx * c..(kx + 1) * c];
                    match p.source((oy, ox), (ky, kx)) {
                        Some((y, xx)) => {
                            let s = (y * p.input[1] + xx) * c;
                            copy(dst, &x[s..s + c]);
                        }
                        None => dst.fill(0.0),
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)`, inlined: the runs are short (a few channels), where a call to
/// `memcpy` costs more than the copy.
#[inline(always)]
fn copy(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

#[inline(always)]
fn add_into(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

#[inline(always)]
fn fold(p: &Plane, cols: &[f32], out: &mut [f32]) {
    let (c, taps) = (p.channels, p.taps());
    out.fill(0.0);
    each_tap(p, |position, tap, source| {
        if let Some(s) = source {
            let at = (position * taps + tap) * c;
            add_into(&mut out[s * c..(s + 1) * c], &cols[at..at + c]);
        }
    });
}

/// Whether `v` replaces the running maximum `best`: when greater, or when it is the first NaN
/// (so a NaN propagates, as in the interpreter).
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    (v > best || v.is_nan()) && !best.is_nan()
}

#[inline(always)]
fn max_pool(p: &Plane, x: &[f32], out: &mut [f32]) {
    let c = p.channels;
    let mut seen = usize::MAX;
    each_tap(p, |position, _, source| {
        let Some(s) = source else { return };
        let dst = &mut out[position * c..(position + 1) * c];
        let src = &x[s * c..(s + 1) * c];
        if seen != position {
            seen = position;
            copy(dst, src);
            return;
        }
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = if beats(v, *d) { v } else { *d };
        }
    });
}

/// The number of taps of `position`'s window inside the input.
#[inline(always)]
fn inside(p: &Plane, position: usize) -> usize {
    let (oy, ox) = (position / p.output[1], position % p.output[1]);
    let mut n = 0;
    for ky in 0..p.size[0] {
        for kx in 0..p.size[1] {
            n += usize::from(p.source((oy, ox), (ky, kx)).is_some());
        }
    }
    n
}

#[inline(always)]
fn mean_pool(p: &Plane, x: &[f32], out: &mut [f32]) {
    let c = p.channels;
    out.fill(0.0);
    each_tap(p, |position, _, source| {
        if let Some(s) = source {
            add_into(
                &mut out[position * c..(position + 1) * c],
                &x[s * c..(s + 1) * c],
            );
        }
    });
    for position in 0..p.output[0] * p.output[1] {
        let n = inside(p, position).max(1) as f32;
        for v in &mut out[position * c..(position + 1) * c] {
            *v /= n;
        }
    }
}

/// Channels handled together by max pooling's gradient: one chunk of a window's maxima and of
/// its gradient still to route stay in registers while the window's taps stream past.
const CHUNK: usize = 16;

#[inline(always)]
fn max_pool_grad(p: &Plane, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let c = p.channels;
    let [oh, ow] = p.output;
    let [kh, kw] = p.size;
    // Windows that do not overlap write each input element at most once: every tap is assigned
    // (the gradient at the maximum, zero elsewhere), and only what no window covers needs
    // clearing first. Overlapping windows accumulate into a cleared gradient.
    let disjoint = (0..2).all(|axis| p.strides[axis] >= p.size[axis]);
    let covered = disjoint
        && p.pad_before == [0, 0]
        && (0..2).all(|axis| p.output[axis] * p.strides[axis] == p.input[axis]);
    if !covered {
        dx.fill(0.0);
    }
    let offset = |(oy, ox), (ky, kx)| {
        p.source((oy, ox), (ky, kx))
            .map(|(y, x)| (y * p.input[1] + x) * c)
    };
    for oy in 0..oh {
        for ox in 0..ow {
            for start in (0..c).step_by(CHUNK) {
                let width = CHUNK.min(c - start);
                // A whole chunk is a fixed-size copy (a register load); only a last, narrower
                // chunk pays for a copy of run-time length.
                let chunk = |buffer: &[f32], at: usize| match buffer[at + start..].first_chunk() {
                    Some(whole) if width == CHUNK => *whole,
                    _ => {
                        let mut v = [0.0f32; CHUNK];
                        copy(&mut v[..width], &buffer[at + start..at + start + width]);
                        v
                    }
                };
                let best = chunk(y, (oy * ow + ox) * c);
                // Routed to the first tap holding it (a NaN maximum: the first NaN).
                let mut g = chunk(dy, (oy * ow + ox) * c);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let Some(at) = offset((oy, ox), (ky, kx)) else {
                            continue;
                        };
                        let v = chunk(x, at);
                        let mut routed = [0.0f32; CHUNK];
                        for k in 0..CHUNK {
                            let hit = v[k] == best[k] || (v[k].is_nan() && best[k].is_nan());
                            routed[k] = if hit { g[k] } else { 0.0 };
                            g[k] = if hit { 0.0 } else { g[k] };
                        }
                        let dst = &mut dx[at + start..at + start + width];
                        if disjoint && width == CHUNK {
                            dst.copy_from_slice(&routed);
                        } else if disjoint {
                            copy(dst, &routed[..width]);
                        } else {
                            add_into(dst, &routed[..width]);
                        }
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn mean_pool_grad(p: &Plane, dy: &[f32], dx: &mut [f32]) {
    let c = p.channels;
    dx.fill(0.0);
    let mut seen = (usize::MAX, 1.0);
    each_tap(p, |position, _, source| {
        let Some(s) = source else { return };
        if seen.0 != position {
            seen = (position, inside(p, position).max(1) as f32);
        }
        let n = seen.1;
        for (d, &g) in dx[s * c..(s + 1) * c]
            .iter_mut()
            .zip(&dy[position * c..(position + 1) * c])
        {
            *d += g / n;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::window::{Padding, Window};

    /// Times each op on the `mnist_cnn` shapes (`cargo test --release --lib window_speed --
    /// --ignored --nocapture`); a measurement, not a check.
    #[test]
    #[ignore]
    fn window_speed() {
        let cases = [
            ("pool 26x26x32", vec![26, 26], 32, vec![2, 2], vec![2, 2]),
            ("pool 11x11x64", vec![11, 11], 64, vec![2, 2], vec![2, 2]),
            ("conv 28x28x1", vec![28, 28], 1, vec![3, 3], vec![1, 1]),
            ("conv 13x13x32", vec![13, 13], 32, vec![3, 3], vec![1, 1]),
        ];
        for (name, spatial, c, size, strides) in cases {
            let window = Window::new(&spatial, &size, &strides, &[1, 1], Padding::Valid);
            let p = window.plane(128, &spatial, c);
            let x: Vec<f32> = (0..p.batch * p.input_len())
                .map(|i| (i % 97) as f32)
                .collect();
            let ops: &[WindowOp] = if size == [2, 2] {
                &[WindowOp::MaxPool, WindowOp::MaxPoolGrad]
            } else {
                &[WindowOp::Unfold, WindowOp::Fold]
            };
            for &op in ops {
                let (xl, dl, ol) = op.lengths(&p);
                let input: Vec<f32> = x.iter().cycle().take(p.batch * xl).copied().collect();
                let dy = vec![1.0f32; p.batch * dl];
                let mut pooled = vec![0.0f32; p.batch * dl];
                if op == WindowOp::MaxPoolGrad {
                    run(WindowOp::MaxPool, &p, &input, &[], &[], &mut pooled);
                }
                let mut out = vec![0.0f32; p.batch * ol];
                let mut best = f64::MAX;
                for _ in 0..20 {
                    let t = std::time::Instant::now();
                    run(op, &p, &input, &pooled, &dy, &mut out);
                    best = best.min(t.elapsed().as_secs_f64());
                }
                eprintln!("{name} {op:?}: {:.0} µs", best * 1e6);
            }
        }
    }
}
