//! `recurrence` and `recurrence_grad` as plain loops over samples and steps, calling the cells'
//! arithmetic (`ir::recurrence`) in f64: the definition the native kernel is checked against.

use ndarray::{ArrayD, IxDyn};

use crate::ir::recurrence::{Cell, CellKind};

fn flat(x: &ArrayD<f64>) -> Vec<f64> {
    x.as_standard_layout().iter().copied().collect()
}

/// `rec[j] = Σ_i h[i] · kernel[i, j]` (+ `bias[j]`), the recurrent product of one sample.
fn recurrent_product(h: Option<&[f64]>, kernel: &[f64], bias: Option<&[f64]>, rec: &mut [f64]) {
    let width = rec.len();
    for (j, r) in rec.iter_mut().enumerate() {
        *r = bias.map_or(0.0, |b| b[j]);
    }
    if let Some(h) = h {
        for (i, &hi) in h.iter().enumerate() {
            for (j, r) in rec.iter_mut().enumerate() {
                *r += hi * kernel[i * width + j];
            }
        }
    }
}

/// Whether the mask (if any) skips the step at flat position `at` (`b · steps + t`).
fn skipped(mask: Option<&[f64]>, at: usize) -> bool {
    mask.is_some_and(|m| m[at] == 0.0)
}

/// The tape of a scan over `xw` `[B, T, G·U]` (`shape` is the tape's).
pub fn forward(
    cell: &Cell,
    xw: &ArrayD<f64>,
    kernel: &ArrayD<f64>,
    bias: Option<&ArrayD<f64>>,
    mask: Option<&ArrayD<f64>>,
    shape: &[usize],
) -> Result<ArrayD<f64>, String> {
    let (batch, steps, width) = (shape[0], shape[1], shape[2]);
    let (u, gw) = (cell.units, cell.gate_width());
    let (xw, kernel, bias, mask) = (flat(xw), flat(kernel), bias.map(flat), mask.map(flat));
    let mut tape = vec![0.0; batch * steps * width];
    let mut rec = vec![0.0; gw];
    for b in 0..batch {
        for k in 0..steps {
            let t = cell.step(k, steps);
            let previous: Option<Vec<f64>> = cell.previous(t, steps).map(|p| {
                let at = (b * steps + p) * width;
                tape[at..at + width].to_vec()
            });
            recurrent_product(
                previous.as_deref().map(|p| &p[..u]),
                &kernel,
                bias.as_deref(),
                &mut rec,
            );
            let x = &xw[(b * steps + t) * gw..][..gw];
            let at = (b * steps + t) * width;
            if skipped(mask.as_deref(), b * steps + t) {
                Cell::skip(previous.as_deref(), &mut tape[at..at + width]);
                continue;
            }
            cell.forward(x, &mut rec, previous.as_deref(), &mut tape[at..at + width]);
        }
    }
    ArrayD::from_shape_vec(IxDyn(shape), tape).map_err(|e| e.to_string())
}

/// The reverse scan: each step's pre-activation gradients from the tape and its gradient
/// (`shape` is the result's).
pub fn backward(
    cell: &Cell,
    tape: &ArrayD<f64>,
    kernel: &ArrayD<f64>,
    dtape: &ArrayD<f64>,
    mask: Option<&ArrayD<f64>>,
    shape: &[usize],
) -> Result<ArrayD<f64>, String> {
    let (batch, steps, grad_width) = (shape[0], shape[1], shape[2]);
    let (u, gw, width) = (cell.units, cell.gate_width(), cell.tape_width());
    let (tape, kernel, dtape, mask) = (flat(tape), flat(kernel), flat(dtape), mask.map(flat));
    let mut grad = vec![0.0; batch * steps * grad_width];
    let (mut dh, mut dc) = (vec![0.0; u], vec![0.0; u]);
    for b in 0..batch {
        // What flows to the previous step: through the recurrent product, directly (GRU), and
        // through the cell state (LSTM).
        let (mut via_rec, mut via_h, mut via_c) = (vec![0.0; u], vec![0.0; u], vec![0.0; u]);
        for k in (0..steps).rev() {
            let t = cell.step(k, steps);
            let at = (b * steps + t) * width;
            for j in 0..u {
                dh[j] = dtape[at + j] + via_rec[j] + via_h[j];
                dc[j] = match cell.cell_state() {
                    Some(c) => dtape[at + c.start + j] + via_c[j],
                    None => 0.0,
                };
            }
            let previous = cell
                .previous(t, steps)
                .map(|p| &tape[(b * steps + p) * width..][..width]);
            let out = &mut grad[(b * steps + t) * grad_width..][..grad_width];
            if skipped(mask.as_deref(), b * steps + t) {
                Cell::skip_backward(&dh, &dc, out, &mut via_h, &mut via_c);
                via_rec.fill(0.0);
                continue;
            }
            cell.backward(
                &tape[at..at + width],
                previous,
                &dh,
                &dc,
                out,
                &mut via_h,
                &mut via_c,
            );
            // d rec · Uᵀ.
            for (i, v) in via_rec.iter_mut().enumerate() {
                *v = (0..gw)
                    .map(|j| out[cell.recurrent_grad_index(j)] * kernel[i * gw + j])
                    .sum();
            }
            if cell.kind != CellKind::Lstm {
                via_c.fill(0.0);
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(shape), grad).map_err(|e| e.to_string())
}
