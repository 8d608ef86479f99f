//! Initial parameter values, drawn from a seeded RNG so the same seed gives the same weights.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::ir::graph::{Graph, Init};

/// Values for every parameter of `graph`, in parameter order.
pub fn initial_params(graph: &Graph, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    graph
        .params
        .iter()
        .map(|param| {
            let len = param.shape.numel(0);
            let uniform = |rng: &mut ChaCha8Rng, limit: f64| -> Vec<f32> {
                let limit = limit as f32;
                (0..len).map(|_| rng.random_range(-limit..limit)).collect()
            };
            match param.init {
                Init::Zeros => vec![0.0; len],
                Init::Constant { value } => vec![value; len],
                Init::GlorotUniform { fan_in, fan_out } => {
                    uniform(&mut rng, (6.0 / (fan_in + fan_out) as f64).sqrt())
                }
                Init::HeUniform { fan_in } => uniform(&mut rng, (6.0 / fan_in as f64).sqrt()),
                Init::LecunUniform { fan_in } => uniform(&mut rng, (3.0 / fan_in as f64).sqrt()),
                Init::GlorotNormal { fan_in, fan_out } => {
                    truncated(&mut rng, len, 2.0 / (fan_in + fan_out) as f64)
                }
                Init::HeNormal { fan_in } => truncated(&mut rng, len, 2.0 / fan_in as f64),
                Init::LecunNormal { fan_in } => truncated(&mut rng, len, 1.0 / fan_in as f64),
                Init::Normal { mean, std } => (0..len)
                    .map(|_| mean + std * rng.sample::<f32, _>(StandardNormal))
                    .collect(),
                Init::Uniform { min, max } if min < max && (max - min).is_finite() => {
                    (0..len).map(|_| rng.random_range(min..max)).collect()
                }
                // A range wider than f32 holds (`uniform(limit: 2e38)`), drawn in f64.
                Init::Uniform { min, max } if min < max => (0..len)
                    .map(|_| {
                        let (min, max) = (f64::from(min), f64::from(max));
                        (min + (max - min) * rng.random::<f64>()) as f32
                    })
                    .collect(),
                Init::Uniform { min, .. } => vec![min; len],
                Init::Orthogonal { gain } => {
                    let cols = match param.shape.dims().last() {
                        Some(crate::ir::shape::Dim::Fixed(last)) if *last > 0 => *last,
                        _ => 1,
                    };
                    orthogonal(&mut rng, len / cols, cols, gain)
                }
                Init::UnitForgetBias { units } => (0..len)
                    .map(|i| {
                        if (units..2 * units).contains(&i) {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `gain` times a `rows × cols` matrix with orthonormal columns (rows ≥ cols) or rows, as
/// Keras draws it: the Q of a normal matrix's QR decomposition, signed so that R's diagonal is
/// positive (Gram–Schmidt gives that sign), transposed when there are fewer rows than columns.
fn orthogonal(rng: &mut ChaCha8Rng, rows: usize, cols: usize, gain: f32) -> Vec<f32> {
    let (n, m) = (rows.max(cols), rows.min(cols));
    // Column-major `n × m`: column j is a[j*n..(j+1)*n].
    let mut a: Vec<f64> = (0..n * m).map(|_| rng.sample(StandardNormal)).collect();
    for j in 0..m {
        // Twice, for orthogonality in floating point ("twice is enough").
        for _ in 0..2 {
            for k in 0..j {
                let dot: f64 = (0..n).map(|i| a[k * n + i] * a[j * n + i]).sum();
                for i in 0..n {
                    a[j * n + i] -= dot * a[k * n + i];
                }
            }
        }
        let norm = (0..n).map(|i| a[j * n + i].powi(2)).sum::<f64>().sqrt();
        for i in 0..n {
            a[j * n + i] /= norm.max(f64::MIN_POSITIVE);
        }
    }
    let gain = f64::from(gain);
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // Q is n × m; the parameter is Q (rows ≥ cols) or Qᵀ.
            let q = if rows >= cols {
                a[c * n + r]
            } else {
                a[r * n + c]
            };
            out[r * cols + c] = (gain * q) as f32;
        }
    }
    out
}

/// Keras's variance-scaling truncated normal: N(0, σ²) redrawn outside ±2σ, with σ chosen so
/// the truncated distribution has the requested variance.
fn truncated(rng: &mut ChaCha8Rng, len: usize, variance: f64) -> Vec<f32> {
    // Standard deviation of a unit normal truncated to [-2, 2].
    const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;
    let std = variance.sqrt() / TRUNCATED_STD;
    (0..len)
        .map(|_| {
            loop {
                let z: f64 = rng.sample(StandardNormal);
                if z.abs() <= 2.0 {
                    break (z * std) as f32;
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::graph::ParamInfo;
    use crate::ir::shape::Shape;

    #[test]
    fn glorot_values_lie_within_the_limit_and_repeat_per_seed() {
        let mut graph = Graph::new("g");
        graph.param(
            ParamInfo {
                regularizer: None,
                trainable: true,
                name: "w".into(),
                shape: Shape::fixed(&[32, 64]),
                init: Init::GlorotUniform {
                    fan_in: 32,
                    fan_out: 64,
                },
            },
            None,
        );
        graph.param(
            ParamInfo {
                regularizer: None,
                trainable: true,
                name: "b".into(),
                shape: Shape::fixed(&[64]),
                init: Init::Zeros,
            },
            None,
        );
        let values = initial_params(&graph, 7);
        let limit = (6.0f32 / 96.0).sqrt();
        assert_eq!(values[0].len(), 32 * 64);
        assert!(values[0].iter().all(|v| v.abs() <= limit));
        assert!(values[0].iter().any(|v| v.abs() > limit * 0.9));
        assert!(values[1].iter().all(|&v| v == 0.0));
        assert_eq!(values, initial_params(&graph, 7));
        assert_ne!(values, initial_params(&graph, 8));
    }

    /// A uniform range wider than f32 can subtract (`uniform(limit: 2e38)`) draws within it.
    #[test]
    fn a_uniform_range_past_f32s_width_draws_within_it() {
        let mut graph = Graph::new("g");
        let (min, max) = (-2e38f32, 3e38f32);
        graph.param(
            ParamInfo {
                regularizer: None,
                trainable: true,
                name: "w".into(),
                shape: Shape::fixed(&[1000]),
                init: Init::Uniform { min, max },
            },
            None,
        );
        let values = &initial_params(&graph, 3)[0];
        assert!(
            values
                .iter()
                .all(|v| v.is_finite() && (min..=max).contains(v))
        );
        assert!(values.iter().any(|&v| v < min / 2.0) && values.iter().any(|&v| v > max / 2.0));
    }
}
