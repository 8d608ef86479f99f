//! Keras's `validation_split`: the last part of a data set held out for validation.

use super::*;

impl Dataset {
    /// Keras's `validation_split`: the last `fraction` of the samples, in file order, become
    /// the validation set: the first `floor(samples · (1 - fraction))` train, the rest validate,
    /// computed in `f64` exactly as Keras does. Both parts must keep at least one sample. For a
    /// time series, whose windows are in time order, this holds out the latest windows: a
    /// chronological split, as forecasting needs.
    pub fn split_off_validation(mut self, fraction: f64) -> Result<(Dataset, Dataset), DataError> {
        let samples = self.samples;
        let split_at = training_samples(samples, fraction);
        if split_at == 0 || split_at == samples {
            return Err(DataError::new(
                &self.origin,
                format!(
                    "validation_split {fraction:?} of {samples} sample{} leaves {} for training \
                     and {} for validation; each needs at least one",
                    plural(samples),
                    split_at,
                    samples - split_at
                ),
            ));
        }
        let x = (self.x)
            .split_off(split_at * self.features)
            .map_err(|e| too_large(&self.origin, "its validation samples", e))?;
        let labels = match &mut self.labels {
            Labels::Classes(classes) => Labels::Classes(classes.split_off(split_at)),
            Labels::Targets { width, values } => Labels::Targets {
                width: *width,
                values: values.split_off(split_at * *width),
            },
        };
        let last_values = self.last_values.as_mut().map(|v| v.split_off(split_at));
        let weights = self.weights.as_mut().map(|w| w.split_off(split_at));
        let validation = Dataset {
            samples: samples - split_at,
            features: self.features,
            shape: self.shape.clone(),
            x,
            labels,
            origin: format!("{} (validation split)", self.origin),
            labels_origin: format!("{} (validation split)", self.labels_origin),
            last_values,
            weights,
        };
        self.samples = split_at;
        Ok((self, validation))
    }
}

/// How many of `samples` train under `validation_split` `fraction`: the first
/// `floor(samples · (1 - fraction))`, computed in `f64` exactly as Keras does.
pub fn training_samples(samples: usize, fraction: f64) -> usize {
    (((samples as f64) * (1.0 - fraction)).floor() as usize).min(samples)
}
