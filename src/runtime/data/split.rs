//! Keras's `validation_split`: the last part of a data set held out for validation.

use super::*;

impl Dataset {
    /// Keras's `validation_split`: the last `fraction` of the samples, in file order, become
    /// the validation set: the first `floor(samples · (1 - fraction))` train, the rest validate,
    /// computed in `f64` exactly as Keras does. Both parts must keep at least one sample. For a
    /// time series, whose windows are in time order, this holds out the latest windows: a
    /// chronological split, as forecasting needs.
    pub fn split_off_validation(self, fraction: f64) -> Result<(Dataset, Dataset), DataError> {
        let split_at = training_samples(self.samples, fraction);
        self.split_off_at(split_at, fraction)
    }

    /// The first `split_at` samples train, the rest validate (`fraction` for messages).
    fn split_off_at(
        mut self,
        split_at: usize,
        fraction: f64,
    ) -> Result<(Dataset, Dataset), DataError> {
        let samples = self.samples;
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

impl Dataset {
    /// `validation_split` after reordering the samples (scikit-learn's `train_test_split`):
    /// with `shuffle`, in an order drawn from `seed`; with `stratify`, class by class, so that
    /// each class keeps its share — the first `floor(n_c · (1 − fraction))` of each class's
    /// samples train and the rest validate. Both parts keep the file's relative order otherwise.
    pub fn split_off_validation_reordered(
        self,
        fraction: f64,
        seed: u64,
        shuffle: bool,
        stratify: bool,
    ) -> Result<(Dataset, Dataset), DataError> {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let mut order: Vec<usize> = (0..self.samples).collect();
        if shuffle {
            // A stream of its own: initialisation and the epochs' shuffles use the same seed.
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5350_4c49_5421);
            order.shuffle(&mut rng);
        }
        let (mut training, mut validation) = (Vec::new(), Vec::new());
        match (&self.labels, stratify) {
            (Labels::Classes(classes), true) => {
                let count = classes.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
                let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); count];
                for &row in &order {
                    by_class[classes[row] as usize].push(row);
                }
                for rows in by_class {
                    let keep = training_samples(rows.len(), fraction);
                    training.extend_from_slice(&rows[..keep]);
                    validation.extend_from_slice(&rows[keep..]);
                }
            }
            _ => {
                let keep = training_samples(order.len(), fraction);
                training.extend_from_slice(&order[..keep]);
                validation.extend_from_slice(&order[keep..]);
            }
        }
        if training.is_empty() || validation.is_empty() {
            return self.split_off_validation(fraction);
        }
        let reordered = self.reordered(training.iter().chain(&validation).copied())?;
        let at = training.len();
        reordered.split_off_at(at, fraction)
    }

    /// The samples in the order `rows` lists them.
    fn reordered(self, rows: impl Iterator<Item = usize> + Clone) -> Result<Dataset, DataError> {
        let width = self.features;
        let too_large = |e| too_large(&self.origin, "its samples", e);
        let x = match &self.x {
            Features::F32(x) => {
                let mut out = Buffer::zeroed(x.len()).map_err(too_large)?;
                for (dst, row) in out.chunks_exact_mut(width.max(1)).zip(rows.clone()) {
                    dst.copy_from_slice(&x[row * width..(row + 1) * width]);
                }
                Features::F32(out)
            }
            Features::I32(x) => {
                let mut out = Buffer::zeroed(x.len()).map_err(too_large)?;
                for (dst, row) in out.chunks_exact_mut(width.max(1)).zip(rows.clone()) {
                    dst.copy_from_slice(&x[row * width..(row + 1) * width]);
                }
                Features::I32(out)
            }
        };
        let labels = match &self.labels {
            Labels::Classes(c) => Labels::Classes(rows.clone().map(|r| c[r]).collect()),
            Labels::Targets { width, values } => Labels::Targets {
                width: *width,
                values: rows
                    .clone()
                    .flat_map(|r| values[r * width..(r + 1) * width].iter().copied())
                    .collect(),
            },
        };
        let pick = |v: &Option<Vec<f32>>| v.as_ref().map(|v| rows.clone().map(|r| v[r]).collect());
        Ok(Dataset {
            x,
            labels,
            weights: pick(&self.weights),
            last_values: pick(&self.last_values),
            ..self
        })
    }
}

/// How many of `samples` train under `validation_split` `fraction`: the first
/// `floor(samples · (1 - fraction))`, computed in `f64` exactly as Keras does.
pub fn training_samples(samples: usize, fraction: f64) -> usize {
    (((samples as f64) * (1.0 - fraction)).floor() as usize).min(samples)
}
