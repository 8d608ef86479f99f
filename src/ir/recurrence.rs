//! The recurrent cells (`simple_rnn`, `lstm`, `gru`): what `Op::Recurrence` and
//! `Op::RecurrenceGrad` mean, written once over [`Real`] so that the interpreter (f64) and the
//! native kernel (f32, `codegen/recurrence.rs`) run the same arithmetic.
//!
//! A recurrence is a scan over the time axis with carried state. Its input projection
//! `xw = x·W + b` for every step is one matrix product outside the loop; the loop computes, for
//! each step `t` in processing order, `rec = h_{t-1}·U (+ recurrent bias)` and the cell's gates
//! from `xw[t]` and `rec`. It writes a *tape* `[B, T, width]` holding the new hidden state first
//! and then what the reverse scan needs (the cell state and the gate activations), so that the
//! backward pass reads stored activations instead of recomputing them. Rows of the tape stay
//! aligned with the input's time positions whichever way the scan runs.
//!
//! The reverse scan (`RecurrenceGrad`) produces, per step, the gradient of the pre-activations
//! (`d xw`), from which the autodiff rule gets the kernel gradient as one product over every
//! step (`contract` of the previous states with it) instead of one per step.

use std::fmt;
use std::ops::{Add, Div, Mul, Sub};

/// A cell: which recurrence, its width and activations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cell {
    pub kind: CellKind,
    pub units: usize,
    /// The state activation (Keras `activation`, `tanh` by default).
    pub activation: Activation,
    /// The gates' activation (Keras `recurrent_activation`, `sigmoid`); unused by `simple_rnn`.
    pub recurrent_activation: Activation,
    /// Whether the scan runs from the last time step to the first (Keras `go_backwards`).
    pub reverse: bool,
    /// Whether the op reads a mask `f32[B, T]` (1 keeps a step, 0 skips it) as its last input:
    /// a skipped step carries the state over unchanged (Keras's `mask_zero`).
    pub masked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellKind {
    SimpleRnn,
    /// Gates `i, f, c, o` in Keras's order.
    Lstm,
    /// Keras's GRU with `reset_after: true` (its default, and cuDNN's and PyTorch's form): gates
    /// `z, r, h`, the reset gate applied to the recurrent product plus its own bias.
    Gru,
}

/// The activations a cell may use: each one's derivative is a function of its output, so the
/// reverse scan needs only the stored activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    Tanh,
    Sigmoid,
    Relu,
    Linear,
}

impl Activation {
    pub const ALL: [Activation; 4] = [
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Relu,
        Activation::Linear,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Linear => "linear",
        }
    }

    /// Applies the activation to every element, one loop per activation.
    #[inline(always)]
    pub fn apply_all<R: Real>(self, xs: &mut [R]) {
        match self {
            Activation::Tanh => xs.iter_mut().for_each(|x| *x = x.tanh()),
            Activation::Sigmoid => xs
                .iter_mut()
                .for_each(|x| *x = R::ONE / (R::ONE + (R::ZERO - *x).exp())),
            Activation::Relu => xs.iter_mut().for_each(|x| {
                if *x <= R::ZERO {
                    *x = R::ZERO
                }
            }),
            Activation::Linear => {}
        }
    }

    /// `out[k]` = the derivative where the activation is `ys[k]`, one loop per activation.
    #[inline(always)]
    pub fn slope_all<R: Real>(self, ys: &[R], out: &mut [R]) {
        let pairs = out.iter_mut().zip(ys);
        match self {
            Activation::Tanh => pairs.for_each(|(d, &y)| *d = R::ONE - y * y),
            Activation::Sigmoid => pairs.for_each(|(d, &y)| *d = y * (R::ONE - y)),
            Activation::Relu => {
                pairs.for_each(|(d, &y)| *d = if y > R::ZERO { R::ONE } else { R::ZERO })
            }
            Activation::Linear => pairs.for_each(|(d, _)| *d = R::ONE),
        }
    }
}

impl CellKind {
    pub fn name(self) -> &'static str {
        match self {
            CellKind::SimpleRnn => "simple_rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    /// Gate blocks of width `units` in the kernels.
    pub fn gates(self) -> usize {
        match self {
            CellKind::SimpleRnn => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

impl Cell {
    /// Width of the pre-activations (`x·W`, `h·U`): one block per gate.
    pub fn gate_width(&self) -> usize {
        self.kind.gates() * self.units
    }

    /// Width of a tape row: `[h]` (simple RNN), `[h, c, i, f, g, o]` (LSTM), `[h, z, r, n,
    /// h·U_h + b_h]` (GRU).
    pub fn tape_width(&self) -> usize {
        self.units
            * match self.kind {
                CellKind::SimpleRnn => 1,
                CellKind::Lstm => 6,
                CellKind::Gru => 5,
            }
    }

    /// Where the cell state sits in a tape row (LSTM only).
    pub fn cell_state(&self) -> Option<std::ops::Range<usize>> {
        (self.kind == CellKind::Lstm).then(|| self.units..2 * self.units)
    }

    /// Width of a gradient row: `d xw` (the gate pre-activations), and for the GRU one more
    /// block, the gradient of the recurrent candidate `h·U_h + b_h` (which differs from the
    /// input's by the reset gate).
    pub fn grad_width(&self) -> usize {
        match self.kind {
            CellKind::Gru => 4 * self.units,
            CellKind::SimpleRnn | CellKind::Lstm => self.gate_width(),
        }
    }

    /// Inputs of `Op::Recurrence`: `xw`, the recurrent kernel, the GRU's recurrent bias, and
    /// the mask when `masked`.
    pub fn inputs(&self) -> usize {
        let bias = usize::from(self.kind == CellKind::Gru);
        2 + bias + usize::from(self.masked)
    }

    /// Inputs of `Op::RecurrenceGrad`: the tape, the recurrent kernel, the tape's gradient, and
    /// the mask when `masked`.
    pub fn grad_inputs(&self) -> usize {
        3 + usize::from(self.masked)
    }

    /// The time step processed `k`-th of `steps`.
    pub fn step(&self, k: usize, steps: usize) -> usize {
        if self.reverse { steps - 1 - k } else { k }
    }

    /// The step processed before `t`, if any.
    pub fn previous(&self, t: usize, steps: usize) -> Option<usize> {
        if self.reverse {
            (t + 1 < steps).then_some(t + 1)
        } else {
            t.checked_sub(1)
        }
    }

    /// One forward step for one sample: from the input projection `xw` and the recurrent
    /// product `rec` (both `gate_width`; `rec` with the GRU's recurrent bias added, and used as
    /// scratch), the previous tape row (`None` at the first step: zero state), writes the
    /// step's tape row. Each activation runs over a whole block, so that the loops vectorize.
    #[inline(always)]
    pub fn forward<R: Real>(&self, xw: &[R], rec: &mut [R], previous: Option<&[R]>, out: &mut [R]) {
        let u = self.units;
        let (act, gate) = (self.activation, self.recurrent_activation);
        let prev = |j: usize| previous.map_or(R::ZERO, |p| p[j]);
        match self.kind {
            CellKind::SimpleRnn => {
                for j in 0..u {
                    out[j] = xw[j] + rec[j];
                }
                act.apply_all(&mut out[..u]);
            }
            CellKind::Lstm => {
                for (r, &x) in rec.iter_mut().zip(xw) {
                    *r = *r + x;
                }
                let (ifg, o) = rec.split_at_mut(3 * u);
                let (i_f, g) = ifg.split_at_mut(2 * u);
                gate.apply_all(i_f);
                act.apply_all(g);
                gate.apply_all(o);
                for j in 0..u {
                    let (i, f, g, o) = (i_f[j], i_f[u + j], g[j], o[j]);
                    let c = f * prev(u + j) + i * g;
                    out[j] = c;
                    out[u + j] = c;
                    out[2 * u + j] = i;
                    out[3 * u + j] = f;
                    out[4 * u + j] = g;
                    out[5 * u + j] = o;
                }
                act.apply_all(&mut out[..u]);
                for j in 0..u {
                    out[j] = out[5 * u + j] * out[j];
                }
            }
            CellKind::Gru => {
                for j in 0..2 * u {
                    rec[j] = rec[j] + xw[j];
                }
                gate.apply_all(&mut rec[..2 * u]);
                for j in 0..u {
                    let (r, hr) = (rec[u + j], rec[2 * u + j]);
                    out[3 * u + j] = xw[2 * u + j] + r * hr;
                }
                act.apply_all(&mut out[3 * u..4 * u]);
                for j in 0..u {
                    let (z, r, hr, n) = (rec[j], rec[u + j], rec[2 * u + j], out[3 * u + j]);
                    out[j] = z * prev(j) + (R::ONE - z) * n;
                    out[u + j] = z;
                    out[2 * u + j] = r;
                    out[4 * u + j] = hr;
                }
            }
        }
    }

    /// A masked step for one sample: the state carries over, so the tape row is the previous
    /// one (zero at the first step). With `return_sequences` the step's output is then the
    /// carried one, as Keras's (`zero_output_for_mask` is false for its recurrent layers).
    pub fn skip<R: Real>(previous: Option<&[R]>, out: &mut [R]) {
        match previous {
            Some(p) => out.copy_from_slice(p),
            None => out.fill(R::ZERO),
        }
    }

    /// The reverse of a masked step: no gradient for its pre-activations, and the hidden and
    /// cell states' gradients (`dh`, `dc`, what reached the step) pass to the previous step
    /// whole, through `carry_h` and `carry_c`.
    pub fn skip_backward<R: Real>(
        dh: &[R],
        dc: &[R],
        grad: &mut [R],
        carry_h: &mut [R],
        carry_c: &mut [R],
    ) {
        grad.fill(R::ZERO);
        carry_h.copy_from_slice(dh);
        carry_c.copy_from_slice(dc);
    }

    /// One reverse step for one sample. `row` is the step's tape row and `previous` the one
    /// before it (`None`: zero state); `dh` is the gradient reaching the step's hidden state
    /// (from the tape's readers and the next step) and `dc` the cell state's (LSTM). Writes the
    /// gradient row `grad` (`grad_width`), and returns through `carry` what passes to the
    /// previous step *besides* `d rec · Uᵀ`: the cell state's gradient (LSTM, into `carry_c`)
    /// and the GRU's direct path `dh · z` (into `carry_h`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn backward<R: Real>(
        &self,
        row: &[R],
        previous: Option<&[R]>,
        dh: &[R],
        dc: &[R],
        grad: &mut [R],
        carry_h: &mut [R],
        carry_c: &mut [R],
    ) {
        let u = self.units;
        let (act, gate) = (self.activation, self.recurrent_activation);
        let prev = |j: usize| previous.map_or(R::ZERO, |p| p[j]);
        // Each block's slopes first, one loop per activation (so that the loops vectorize),
        // then the products in place.
        match self.kind {
            CellKind::SimpleRnn => {
                act.slope_all(&row[..u], &mut grad[..u]);
                for j in 0..u {
                    grad[j] = grad[j] * dh[j];
                    carry_h[j] = R::ZERO;
                }
            }
            CellKind::Lstm => {
                // `carry_h` holds activation(c) and `carry_c` its slope until they are written.
                carry_h[..u].copy_from_slice(&row[u..2 * u]);
                act.apply_all(&mut carry_h[..u]);
                act.slope_all(&carry_h[..u], &mut carry_c[..u]);
                gate.slope_all(&row[2 * u..4 * u], &mut grad[..2 * u]);
                act.slope_all(&row[4 * u..5 * u], &mut grad[2 * u..3 * u]);
                gate.slope_all(&row[5 * u..6 * u], &mut grad[3 * u..4 * u]);
                for j in 0..u {
                    let (i, f, g, o) = (
                        row[2 * u + j],
                        row[3 * u + j],
                        row[4 * u + j],
                        row[5 * u + j],
                    );
                    let ac = carry_h[j];
                    let dc = dc[j] + dh[j] * o * carry_c[j];
                    grad[j] = grad[j] * dc * g;
                    grad[u + j] = grad[u + j] * dc * prev(u + j);
                    grad[2 * u + j] = grad[2 * u + j] * dc * i;
                    grad[3 * u + j] = grad[3 * u + j] * dh[j] * ac;
                    carry_h[j] = R::ZERO;
                    carry_c[j] = dc * f;
                }
            }
            CellKind::Gru => {
                gate.slope_all(&row[u..3 * u], &mut grad[..2 * u]);
                act.slope_all(&row[3 * u..4 * u], &mut grad[2 * u..3 * u]);
                for j in 0..u {
                    let (z, r, n, hr) =
                        (row[u + j], row[2 * u + j], row[3 * u + j], row[4 * u + j]);
                    let dn = dh[j] * (R::ONE - z) * grad[2 * u + j];
                    grad[j] = grad[j] * dh[j] * (prev(j) - n);
                    grad[u + j] = grad[u + j] * dn * hr;
                    grad[2 * u + j] = dn;
                    grad[3 * u + j] = dn * r;
                    carry_h[j] = dh[j] * z;
                }
            }
        }
    }

    /// Element `j` of the recurrent product's gradient in a gradient row: the row itself,
    /// except the GRU's candidate block, which is the extra block at the end.
    pub fn recurrent_grad_index(&self, j: usize) -> usize {
        match self.kind {
            CellKind::Gru if j >= 2 * self.units => j + self.units,
            _ => j,
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.units)?;
        if self.activation != Activation::Tanh {
            write!(f, ", {}", self.activation.name())?;
        }
        if self.kind != CellKind::SimpleRnn && self.recurrent_activation != Activation::Sigmoid {
            write!(f, ", gates {}", self.recurrent_activation.name())?;
        }
        if self.reverse {
            write!(f, ", reverse")?;
        }
        if self.masked {
            write!(f, ", masked")?;
        }
        Ok(())
    }
}

/// The arithmetic the cells are written in: f64 in the interpreter, f32 in native code.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn exp(self) -> Self;
    fn tanh(self) -> Self;
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    fn tanh(self) -> f64 {
        f64::tanh(self)
    }
}
