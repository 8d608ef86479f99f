//! Initial parameter values, drawn from a seeded RNG so the same seed gives the same weights.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ir::graph::{Graph, Init};

/// Values for every parameter of `graph`, in parameter order.
pub fn initial_params(graph: &Graph, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    graph
        .params
        .iter()
        .map(|param| {
            let len = param.shape.numel(0);
            match param.init {
                Init::Zeros => vec![0.0; len],
                Init::GlorotUniform { fan_in, fan_out } => {
                    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
                    (0..len).map(|_| rng.random_range(-limit..limit)).collect()
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
}
