//! NumPy data: `npy(features: "x.npy", labels: "y.npy")` reads two `.npy` files,
//! `npz("d.npz", features: "x", labels: "y")` two arrays of one archive (read with
//! ndarray-npy).
//!
//! Features are any numeric array `[samples, ...]`: each sample's values, flattened in C order,
//! become its features (so `[N, 28, 28]` images give 784 features), converted to f32; the
//! dimensions after the first are the samples' shape, which decides the model inputs they feed. Labels
//! are `[samples]` integers (or whole-valued floats) for sparse categorical cross-entropy, and
//! `[samples]` or `[samples, M]` numbers for mean squared error. Features must be finite.
//!
//! For an `i32` input (token ids) the features array must have an integer type (int8 to int64,
//! uint8 to uint64, or bool) with every value within i32, and may be `[samples]` (one id per
//! sample, for `i32[B, 1]`); it is never scaled.

use std::io::Read;
use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, ReadableElement};

use super::{DataError, Dataset, Features, Labels};
use crate::settings::Loss;

/// An array read whatever its element type, as f64 values with its shape.
struct Numbers {
    shape: Vec<usize>,
    values: Vec<f64>,
    /// Whether the file held integers (or booleans).
    integers: bool,
}

fn convert<T: Copy>(
    array: ArrayD<T>,
    to_f64: impl Fn(T) -> f64,
    integers: bool,
) -> Result<Numbers, String> {
    let mut values = Vec::new();
    values.try_reserve_exact(array.len()).map_err(|_| {
        format!(
            "its {} values need {} bytes as numbers, more memory than can be allocated",
            array.len(),
            array.len() as u128 * 8
        )
    })?;
    // Iteration is in logical (C) order whatever the file's memory order.
    values.extend(array.iter().map(|&v| to_f64(v)));
    Ok(Numbers {
        shape: array.shape().to_vec(),
        values,
        integers,
    })
}

/// Tries each element type NumPy data commonly has.
fn read_any(bytes: &[u8]) -> Result<Numbers, String> {
    fn read<T: ReadableElement>(bytes: &[u8]) -> Result<ArrayD<T>, ndarray_npy::ReadNpyError> {
        ArrayD::<T>::read_npy(bytes)
    }
    let mut first_error = None;
    macro_rules! attempt {
        ($t:ty, $integers:expr) => {
            match read::<$t>(bytes) {
                Ok(array) => return convert(array, |v| v as f64, $integers),
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        };
    }
    attempt!(f32, false);
    attempt!(f64, false);
    attempt!(u8, true);
    attempt!(i64, true);
    attempt!(i32, true);
    attempt!(u16, true);
    attempt!(i16, true);
    attempt!(i8, true);
    attempt!(u32, true);
    attempt!(u64, true);
    if let Ok(array) = read::<bool>(bytes) {
        return convert(array, |v| f64::from(u8::from(v)), true);
    }
    Err(first_error.unwrap_or_default())
}

fn read_file(path: &Path) -> Result<Numbers, DataError> {
    let origin = path.display().to_string();
    let bytes = super::read_regular(path, &origin, "the file")?;
    parse(&bytes, &origin)
}

fn parse(bytes: &[u8], origin: &str) -> Result<Numbers, DataError> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err(DataError::new(
            origin,
            "not a NumPy .npy array: the file does not start with \\x93NUMPY",
        ));
    }
    // The header's shape is compared with the bytes there are before anything is allocated for
    // it: a small file claiming a huge array is an error, not an allocation that aborts.
    if let Some(header) = Header::parse(bytes)
        && header
            .data_bytes()
            .is_none_or(|n| n > header.available as u128)
    {
        return Err(DataError::new(
            origin,
            format!(
                "the header says shape ({}) of `{}`, {}, but the file holds {} bytes of data",
                header
                    .shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                header.descr,
                header
                    .data_bytes()
                    .map_or("more bytes than can be counted".to_string(), |n| format!(
                        "{n} bytes"
                    )),
                header.available
            ),
        ));
    }
    read_any(bytes).map_err(|e| {
        DataError::new(
            origin,
            format!("cannot read the array ({e}); expected a numeric .npy array"),
        )
    })
}

/// What a `.npy` header claims: the array's shape and element type, and the bytes after it.
struct Header {
    shape: Vec<u64>,
    descr: String,
    /// Bytes of the file after the header.
    available: usize,
}

impl Header {
    /// The header of a `.npy` file (versions 1 to 3), or `None` when it cannot be read; the
    /// array reader then reports what is wrong.
    fn parse(bytes: &[u8]) -> Option<Header> {
        let major = *bytes.get(6)?;
        let (len, start): (usize, usize) = match major {
            1 => (
                u16::from_le_bytes(bytes.get(8..10)?.try_into().ok()?) as usize,
                10,
            ),
            2 | 3 => (
                u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?) as usize,
                12,
            ),
            _ => return None,
        };
        let end = start.checked_add(len)?;
        let text = std::str::from_utf8(bytes.get(start..end)?).ok()?;
        let field = |key: &str| {
            let at = text.find(&format!("'{key}'"))? + key.len() + 2;
            Some(text[at..].trim_start().strip_prefix(':')?.trim_start())
        };
        let shape_text = field("shape")?.strip_prefix('(')?;
        let shape = shape_text[..shape_text.find(')')?]
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| d.parse().ok())
            .collect::<Option<Vec<u64>>>()?;
        let descr_text = field("descr")?.strip_prefix('\'')?;
        let descr = descr_text[..descr_text.find('\'')?].to_string();
        Some(Header {
            shape,
            descr,
            available: bytes.len() - end,
        })
    }

    /// The bytes the array needs (`None` past u128, or for an element type without a size).
    fn data_bytes(&self) -> Option<u128> {
        let digits: String = self.descr.chars().filter(char::is_ascii_digit).collect();
        let item: u128 = if self.descr.ends_with("b1") || self.descr == "|b1" {
            1
        } else {
            digits.parse().ok()?
        };
        self.shape
            .iter()
            .try_fold(item, |n, &d| n.checked_mul(u128::from(d)))
    }
}

/// `weights`: a `.npy` file of each sample's weight (Keras's `sample_weight`), when given.
pub fn load_npy(
    features: &Path,
    labels: &Path,
    weights: Option<&Path>,
    scale: f32,
    loss: Loss,
    integers: bool,
) -> Result<Dataset, DataError> {
    let x = read_file(features)?;
    let y = read_file(labels)?;
    let mut set = assemble(
        x,
        &features.display().to_string(),
        y,
        &labels.display().to_string(),
        scale,
        loss,
        integers,
    )?;
    if let Some(path) = weights {
        let w = read_file(path)?;
        set.weights = Some(sample_weights(w, &path.display().to_string(), set.samples)?);
    }
    Ok(set)
}

/// Each sample's weight from an array `[samples]` (or `[samples, 1]`): finite numbers zero or
/// more, as Keras's `sample_weight` must be.
fn sample_weights(w: Numbers, origin: &str, samples: usize) -> Result<Vec<f32>, DataError> {
    if !(w.shape == [samples] || w.shape == [samples, 1]) {
        return Err(DataError::new(
            origin,
            format!(
                "the weights array has shape {:?}; expected [{samples}] (one weight per sample)",
                w.shape
            ),
        ));
    }
    (w.values.iter().enumerate())
        .map(|(i, &v)| {
            let weight = v as f32;
            if weight.is_finite() && weight >= 0.0 {
                Ok(weight)
            } else {
                Err(DataError::new(
                    origin,
                    format!(
                        "sample {}'s weight is {v}; weights must be finite numbers zero or more",
                        i + 1
                    ),
                ))
            }
        })
        .collect()
}

/// `weights`: the name of an array of each sample's weight (Keras's `sample_weight`), when
/// given.
pub fn load_npz(
    path: &Path,
    features: &str,
    labels: &str,
    weights: Option<&str>,
    scale: f32,
    loss: Loss,
    integers: bool,
) -> Result<Dataset, DataError> {
    let origin = path.display().to_string();
    let file = super::open_regular(path, &origin, "the file")?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| DataError::new(&origin, format!("not a NumPy .npz archive: {e}")))?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let mut array = |name: &str| -> Result<(Numbers, String), DataError> {
        let entry_origin = format!("{origin} [{name}]");
        // np.savez stores `x` as `x.npy`; accept either spelling.
        let stored = [name.to_string(), format!("{name}.npy")]
            .into_iter()
            .find(|n| names.contains(n))
            .ok_or_else(|| {
                let available: Vec<&str> =
                    names.iter().map(|n| n.trim_end_matches(".npy")).collect();
                DataError::new(
                    &origin,
                    format!(
                        "the archive has no array `{name}`; it has: {}",
                        available.join(", ")
                    ),
                )
            })?;
        // The raw entry is parsed like a .npy file, so every element type works.
        let cannot =
            |e: String| DataError::new(&entry_origin, format!("cannot read the array: {e}"));
        let entry = archive
            .by_name(&stored)
            .map_err(|e| cannot(e.to_string()))?;
        // The size the archive declares is reserved (fallibly) and is all that is read: a small
        // archive inflating to more than the memory left is an error, not an abort.
        let declared = entry.size();
        let len = usize::try_from(declared).map_err(|_| {
            let bytes = declared.into();
            super::too_large(
                &entry_origin,
                "the array",
                crate::buffer::AllocError { bytes },
            )
        })?;
        let mut bytes = super::reserve(len, &entry_origin, "the array")?;
        entry
            .take(declared)
            .read_to_end(&mut bytes)
            .map_err(|e| cannot(e.to_string()))?;
        Ok((parse(&bytes, &entry_origin)?, entry_origin))
    };
    let (x, x_origin) = array(features)?;
    let (y, y_origin) = array(labels)?;
    let w = weights.map(&mut array).transpose()?;
    let mut set = assemble(x, &x_origin, y, &y_origin, scale, loss, integers)?;
    if let Some((w, w_origin)) = w {
        set.weights = Some(sample_weights(w, &w_origin, set.samples)?);
    }
    Ok(set)
}

/// The features of an `i32` input: an integer array whose values all fit in i32.
fn token_ids(
    x: &Numbers,
    origin: &str,
    features: usize,
) -> Result<crate::buffer::Buffer<i32>, DataError> {
    if !x.integers {
        return Err(DataError::new(
            origin,
            "the features array holds floats, but an i32 input takes an integer array (int32, \
             int64, uint8, uint16, …); convert it with `x.astype(np.int32)`",
        ));
    }
    let mut ids = super::zeroed_features(x.values.len(), origin)?;
    for ((index, &v), id) in x.values.iter().enumerate().zip(ids.iter_mut()) {
        *id = super::token_id(v).map_err(|why| {
            DataError::new(
                origin,
                format!(
                    "sample {}, position {} is {}, {why}",
                    index / features.max(1) + 1,
                    index % features.max(1) + 1,
                    number_text(v)
                ),
            )
        })?;
    }
    Ok(ids)
}

/// A value as a message shows it: whole numbers as such, others in Rust's shortest form, which
/// turns to exponent notation for huge ones (`1e300`, not three hundred digits).
fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v}")
    } else {
        format!("{v:?}")
    }
}

/// Features and labels into a data set, checking counts, shapes and values; `integers`: the
/// features feed an `i32` input.
fn assemble(
    x: Numbers,
    x_origin: &str,
    y: Numbers,
    y_origin: &str,
    scale: f32,
    loss: Loss,
    integers: bool,
) -> Result<Dataset, DataError> {
    let Some(&samples) = x.shape.first() else {
        return Err(DataError::new(
            x_origin,
            "the features array is a scalar; expected [samples, features...]",
        ));
    };
    // One token id per sample is a sample of its own: `[samples]` feeds `i32[B, 1]`.
    if x.shape.len() < 2 && !integers {
        return Err(DataError::new(
            x_origin,
            format!(
                "the features array has shape {:?}; expected [samples, features...] (at least \
                 two dimensions)",
                x.shape
            ),
        ));
    }
    let features: usize = x.shape[1..].iter().product();
    let y_samples = y.shape.first().copied().unwrap_or(0);
    if y_samples != samples || y.shape.is_empty() {
        return Err(DataError::new(
            y_origin,
            format!(
                "the labels array has shape {:?} but the features hold {samples} samples; \
                 expected one label per sample",
                y.shape
            ),
        ));
    }
    let values = if integers {
        Features::I32(token_ids(&x, x_origin, features)?)
    } else {
        let mut values = super::zeroed_features(x.values.len(), x_origin)?;
        for ((index, &v), value) in x.values.iter().enumerate().zip(values.iter_mut()) {
            if !(v as f32).is_finite() {
                return Err(DataError::new(
                    x_origin,
                    format!(
                        "sample {}, feature {} is {}; features must be finite numbers within \
                         f32's range",
                        index / features.max(1) + 1,
                        index % features.max(1) + 1,
                        number_text(v)
                    ),
                ));
            }
            *value = (v as f32) / scale;
        }
        Features::F32(values)
    };
    let labels = if loss.uses_classes() {
        {
            if y.shape.len() != 1 {
                return Err(DataError::new(
                    y_origin,
                    format!(
                        "the labels array has shape {:?}; {} needs one class index per sample, \
                         shape [{samples}]",
                        y.shape,
                        loss.name()
                    ),
                ));
            }
            let mut classes = Vec::with_capacity(samples);
            for (index, &v) in y.values.iter().enumerate() {
                if v.fract() != 0.0 || !(0.0..=f64::from(i32::MAX)).contains(&v) {
                    return Err(DataError::new(
                        y_origin,
                        format!(
                            "sample {} has label {}; expected a class index (a whole number \
                             from 0){}",
                            index + 1,
                            number_text(v),
                            if y.integers {
                                ""
                            } else {
                                " — the array holds floats"
                            }
                        ),
                    ));
                }
                classes.push(v as i32);
            }
            Labels::Classes(classes)
        }
    } else {
        {
            let width = y.shape[1..].iter().product::<usize>().max(1);
            if let Some(index) = y.values.iter().position(|v| !(*v as f32).is_finite()) {
                return Err(DataError::new(
                    y_origin,
                    format!(
                        "sample {}, target {} is {}; targets must be finite numbers within \
                         f32's range",
                        index / width + 1,
                        index % width + 1,
                        number_text(y.values[index])
                    ),
                ));
            }
            Labels::Targets {
                width,
                values: y.values.iter().map(|&v| v as f32).collect(),
            }
        }
    };
    Ok(Dataset {
        samples,
        features,
        shape: Some(x.shape[1..].to_vec()),
        x: values,
        labels,
        origin: x_origin.to_string(),
        labels_origin: y_origin.to_string(),
        last_values: None,
        weights: None,
    })
}
