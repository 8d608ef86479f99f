//! Keras's `Normalization` adapted to the training data: per-feature statistics and their use.

use super::*;

/// Per-feature mean and standard deviation, as Keras's `Normalization` layer adapts them:
/// population statistics (divided by n), computed in f64; a standard deviation below 1e-7
/// (a constant feature) counts as 1e-7, Keras's epsilon floor.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardization {
    /// The statistics of `dataset`'s features (float ones: the checker refuses `standardize`
    /// for an integer input, E0324, whose ids are not quantities).
    pub fn of(dataset: &Dataset) -> Standardization {
        let width = dataset.features;
        let n = dataset.samples.max(1) as f64;
        let x = dataset.x.as_f32().unwrap_or_default();
        let mut sum = vec![0.0f64; width];
        for row in x.chunks_exact(width.max(1)) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let mut squares = vec![0.0f64; width];
        for row in x.chunks_exact(width.max(1)) {
            for ((s, &v), m) in squares.iter_mut().zip(row).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        Standardization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: squares
                .iter()
                .map(|s| (s / n).sqrt().max(1e-7) as f32)
                .collect(),
        }
    }

    /// Leaves the features at `positions` as they are (mean 0, standard deviation 1).
    pub fn leave(&mut self, positions: &[usize]) {
        for &at in positions {
            if at < self.mean.len() {
                self.mean[at] = 0.0;
                self.std[at] = 1.0;
            }
        }
    }

    /// `(x − mean) / std` for every feature of `dataset`, which must have as many float
    /// features.
    pub fn apply(&self, dataset: &mut Dataset) {
        let width = self.mean.len().max(1);
        let Features::F32(x) = &mut dataset.x else {
            return;
        };
        for row in x.chunks_exact_mut(width) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}
