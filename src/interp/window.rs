//! The windowed ops (`unfold`, `fold`, `pool`, `pool_grad`) as plain loops over their geometry
//! (`ir::window::Plane`): the definition the native kernels are checked against.

use ndarray::{ArrayD, IxDyn};

use crate::ir::op::PoolKind;
use crate::ir::window::{Plane, Window};

/// The plane of a windowed op whose channels-last input (or, for `fold`, output) is `shape`.
fn plane(window: &Window, shape: &[usize]) -> Plane {
    let rank = shape.len();
    window.plane(shape[0], &shape[1..rank - 1], shape[rank - 1])
}

fn flat(x: &ArrayD<f64>) -> Vec<f64> {
    x.as_standard_layout().iter().copied().collect()
}

fn array(shape: &[usize], data: Vec<f64>) -> Result<ArrayD<f64>, String> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| e.to_string())
}

/// Calls `visit(output position, tap, input position or None)` for every output position and
/// tap of every sample, positions counted over the whole batch (in channel groups).
fn each_tap(p: &Plane, mut visit: impl FnMut(usize, usize, Option<usize>)) {
    let [oh, ow] = p.output;
    let [kh, kw] = p.size;
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let position = (b * oh + oy) * ow + ox;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let source = p
                            .source((oy, ox), (ky, kx))
                            .map(|(y, x)| (b * p.input[0] + y) * p.input[1] + x);
                        visit(position, ky * kw + kx, source);
                    }
                }
            }
        }
    }
}

pub fn unfold(window: &Window, x: &ArrayD<f64>, shape: &[usize]) -> Result<ArrayD<f64>, String> {
    let p = plane(window, x.shape());
    let (c, taps) = (p.channels, p.taps());
    let x = flat(x);
    let mut out = vec![0.0; shape.iter().product()];
    each_tap(&p, |position, tap, source| {
        if let Some(s) = source {
            let dst = (position * taps + tap) * c;
            out[dst..dst + c].copy_from_slice(&x[s * c..(s + 1) * c]);
        }
    });
    array(shape, out)
}

pub fn fold(window: &Window, cols: &ArrayD<f64>, shape: &[usize]) -> Result<ArrayD<f64>, String> {
    let p = plane(window, shape);
    let (c, taps) = (p.channels, p.taps());
    let cols = flat(cols);
    let mut out = vec![0.0; shape.iter().product()];
    each_tap(&p, |position, tap, source| {
        if let Some(s) = source {
            let src = (position * taps + tap) * c;
            for k in 0..c {
                out[s * c + k] += cols[src + k];
            }
        }
    });
    array(shape, out)
}

/// For every output position and channel, the window's value: the maximum (the first in tap
/// order among equals) or the mean over the taps inside the input; and for every position, how
/// many of its taps are inside the input.
fn pooled(kind: PoolKind, p: &Plane, x: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let c = p.channels;
    let positions = p.batch * p.output[0] * p.output[1];
    let mut value = vec![
        match kind {
            PoolKind::Max => f64::NEG_INFINITY,
            PoolKind::Mean => 0.0,
        };
        positions * c
    ];
    let mut count = vec![0; positions];
    each_tap(p, |position, _, source| {
        let Some(s) = source else { return };
        count[position] += 1;
        let first = count[position] == 1;
        for k in 0..c {
            let (v, at) = (x[s * c + k], position * c + k);
            match kind {
                // `>` keeps the first maximum; a NaN is taken once and then kept.
                PoolKind::Max => {
                    if first || v > value[at] || v.is_nan() && !value[at].is_nan() {
                        value[at] = v;
                    }
                }
                PoolKind::Mean => value[at] += v,
            }
        }
    });
    if kind == PoolKind::Mean {
        for (at, v) in value.iter_mut().enumerate() {
            *v /= count[at / c].max(1) as f64;
        }
    }
    (value, count)
}

pub fn pool(
    kind: PoolKind,
    window: &Window,
    x: &ArrayD<f64>,
    shape: &[usize],
) -> Result<ArrayD<f64>, String> {
    let p = plane(window, x.shape());
    let (value, _) = pooled(kind, &p, &flat(x));
    array(shape, value)
}

pub fn pool_grad(
    kind: PoolKind,
    window: &Window,
    x: &ArrayD<f64>,
    y: &ArrayD<f64>,
    dy: &ArrayD<f64>,
) -> Result<ArrayD<f64>, String> {
    let p = plane(window, x.shape());
    let c = p.channels;
    let (_, count) = pooled(kind, &p, &flat(x));
    let (x_flat, y, dy) = (flat(x), flat(y), flat(dy));
    let mut dx = vec![0.0; x.len()];
    // Max: whether each window's channel has had its gradient routed (to its first maximum).
    let mut routed = vec![false; dy.len()];
    each_tap(&p, |position, _, source| {
        let Some(s) = source else { return };
        for k in 0..c {
            let (at, from) = (position * c + k, s * c + k);
            match kind {
                PoolKind::Max => {
                    let (v, max) = (x_flat[from], y[at]);
                    if !routed[at] && (v == max || v.is_nan() && max.is_nan()) {
                        routed[at] = true;
                        dx[from] += dy[at];
                    }
                }
                PoolKind::Mean => dx[from] += dy[at] / count[position] as f64,
            }
        }
    });
    array(x.shape(), dx)
}
