//! `synthetic_classification`: features and labels drawn from a seeded generator (see the
//! parent module for the definition).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::*;
use crate::settings::Loss;

pub(super) fn synthetic(
    samples: usize,
    features: usize,
    classes: usize,
    seed: u64,
    loss: Loss,
) -> Result<Dataset, DataError> {
    let origin = format!("synthetic_classification(seed {seed})");
    if !loss.uses_classes() {
        return Err(DataError::new(
            &origin,
            format!(
                "synthetic_classification makes integer class labels, which {} cannot use; \
                 use sparse_categorical_crossentropy",
                loss.name()
            ),
        ));
    }
    for (name, value) in [
        ("samples", samples),
        ("features", features),
        ("classes", classes),
    ] {
        if value == 0 {
            return Err(DataError::new(
                &origin,
                format!("{name} must be at least 1, found 0"),
            ));
        }
    }
    if classes > i32::MAX as usize {
        return Err(DataError::new(
            &origin,
            format!("classes must be at most {}, found {classes}", i32::MAX),
        ));
    }
    let Some(len) = samples.checked_mul(features) else {
        return Err(DataError::new(
            &origin,
            format!("{samples} samples × {features} features is too large"),
        ));
    };

    let Some(weights) = features.checked_mul(classes) else {
        return Err(DataError::new(
            &origin,
            format!("{features} features × {classes} classes is too large"),
        ));
    };
    let mut w: Vec<f32> = reserve(weights, &origin, "its labelling weights")?;
    let mut x = zeroed_features(len, &origin)?;
    let mut labels: Vec<i32> = reserve(samples, &origin, "its labels")?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    w.extend((0..weights).map(|_| rng.sample::<f32, _>(StandardNormal)));
    x.iter_mut()
        .for_each(|v| *v = rng.sample::<f32, _>(StandardNormal));

    let mut scores = vec![0.0f32; classes];
    for row in x.chunks_exact(features) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        for (&xi, w_row) in row.iter().zip(w.chunks_exact(classes)) {
            for (s, &wij) in scores.iter_mut().zip(w_row) {
                *s += xi * wij;
            }
        }
        let mut best = 0;
        for (k, &s) in scores.iter().enumerate().skip(1) {
            if s > scores[best] {
                best = k;
            }
        }
        labels.push(best as i32);
    }

    Ok(Dataset {
        samples,
        features,
        shape: None,
        x: Features::F32(x),
        labels: Labels::Classes(labels),
        labels_origin: origin.clone(),
        last_values: None,
        weights: None,
        origin,
    })
}
