//! Checkpoints in safetensors, the format PyTorch and Hugging Face use: one `F32` tensor per
//! parameter, named as the graph names it (`dense.kernel`, `dense.bias`, `dense_1.kernel`, …,
//! Keras's layer names), and the optimizer's state alongside under `optimizer.` (Adam's
//! `optimizer.dense.kernel.m` and `…v`), with the step count in the file's metadata, so training
//! resumes exactly where it stopped.
//!
//! With data loading, this is the runtime's only file access. Writes are atomic: the bytes go to a
//! temporary file in the same folder, which is flushed and then renamed over the target, so a
//! crash mid-save leaves the previous checkpoint (or none), never a torn one. Nothing here prints:
//! file problems are [`DataError`]s naming the file; a checkpoint that does not fit the model is
//! one diagnostic per mismatched tensor, naming it.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::data::category::CategoryColumn;
use super::data::{DataError, TableVocabulary, TextVocabulary};
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::{ParamInfo, StateInfo};
use crate::settings::{TextSplit, TextStandardize};

/// The prefix of optimizer-state tensors, keeping them apart from the model's parameters.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";
/// The standardization statistics (`fit … { standardize true }`): `preprocessing.mean` and
/// `preprocessing.std`, one value per feature.
pub const PREPROCESSING_PREFIX: &str = "preprocessing.";

/// A named `f32` tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The optimizer's state: which optimizer, how many updates it has made, and its slots (named
/// as the graph names its states, e.g. `dense.kernel.m`, without the `optimizer.` prefix).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// `sgd` or `adam`.
    pub kind: String,
    /// Updates made so far (Keras's `optimizer.iterations`); the next update is step + 1.
    pub step: u64,
    pub slots: Vec<Tensor>,
}

/// What a checkpoint file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model's name when it was saved (informational).
    pub model: String,
    /// Epochs trained when it was saved, when known.
    pub epoch: Option<usize>,
    pub params: Vec<Tensor>,
    pub optimizer: Option<OptimizerState>,
    /// Per-feature mean and standard deviation the model's inputs are standardized with.
    pub standardization: Option<(Vec<f32>, Vec<f32>)>,
    /// The vocabulary and class names of the text it was trained on (`text_csv`), in the
    /// metadata: `text.tokens` and `text.classes` as JSON arrays of strings, `text.split` and
    /// `text.standardize` as Keras names them.
    pub text: Option<TextVocabulary>,
    /// The categories and class names of the CSV it was trained on, in the metadata:
    /// `table.features` (feature columns read), `table.encoding`, `table.columns` (a JSON array
    /// of `{"name", "position", "values"}`), and `table.label` with `table.classes` for a label
    /// column of names.
    pub table: Option<TableVocabulary>,
    /// Tensors whose element type is not F32 (name, shape, type), read but not usable:
    /// matching them against the model reports each by name.
    pub other_dtypes: Vec<(String, Vec<usize>, String)>,
}

/// The values as little-endian bytes, or an error when the memory is not there (a checkpoint's
/// size is the model's: encoding one aborted after training, before anything was saved).
fn le_bytes(values: &[f32]) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(std::mem::size_of_val(values))
        .map_err(|_| out_of_memory(std::mem::size_of_val(values)))?;
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    Ok(bytes)
}

fn out_of_memory(bytes: usize) -> String {
    format!(
        "out of memory: {} more are needed to encode the checkpoint",
        super::memory::gib(bytes as u128)
    )
}

/// The checkpoint as safetensors bytes.
pub fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, String> {
    encode_with(checkpoint, &[])
}

/// The checkpoint as safetensors bytes, with `extra` metadata entries beside its own (a
/// bundle's source, version and checksum).
pub fn encode_with(checkpoint: &Checkpoint, extra: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = checkpoint
        .params
        .iter()
        .map(|t| Ok((t.name.clone(), t.shape.clone(), le_bytes(&t.values)?)))
        .collect::<Result<_, String>>()?;
    let mut metadata = HashMap::from([
        ("format".to_string(), "kiln".to_string()),
        ("model".to_string(), checkpoint.model.clone()),
    ]);
    metadata.extend(extra.iter().cloned());
    if let Some(epoch) = checkpoint.epoch {
        metadata.insert("epoch".to_string(), epoch.to_string());
    }
    if let Some((mean, std)) = &checkpoint.standardization {
        for (name, values) in [("mean", mean), ("std", std)] {
            tensors.push((
                format!("{PREPROCESSING_PREFIX}{name}"),
                vec![values.len()],
                le_bytes(values)?,
            ));
        }
    }
    if let Some(text) = &checkpoint.text {
        let json = |items: &[String]| serde_json::Value::from(items.to_vec()).to_string();
        metadata.insert("text.tokens".to_string(), json(&text.tokens));
        metadata.insert("text.classes".to_string(), json(&text.classes));
        metadata.insert("text.split".to_string(), text.split.name().to_string());
        metadata.insert(
            "text.standardize".to_string(),
            text.standardize.name().to_string(),
        );
    }
    if let Some(table) = &checkpoint.table {
        metadata.extend(table_metadata(table));
    }
    if let Some(optimizer) = &checkpoint.optimizer {
        metadata.insert("optimizer".to_string(), optimizer.kind.clone());
        metadata.insert("step".to_string(), optimizer.step.to_string());
        for slot in &optimizer.slots {
            tensors.push((
                format!("{OPTIMIZER_PREFIX}{}", slot.name),
                slot.shape.clone(),
                le_bytes(&slot.values)?,
            ));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| format!("tensor `{name}`: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    // `serialize` builds the file in one vector it allocates infallibly: make sure that much is
    // there first (with the header's few kilobytes to spare), so a failure is an error.
    let data: usize = tensors.iter().map(|(_, _, bytes)| bytes.len()).sum();
    let room = data.saturating_add(1 << 20);
    Vec::<u8>::new()
        .try_reserve_exact(room)
        .map_err(|_| out_of_memory(room))?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())?;
    Ok(sorted_metadata(bytes))
}

/// The metadata in sorted key order: `serialize` writes it in hash-map order, which changes from
/// run to run, and the same weights should give the same file. The header keeps its length (the
/// same keys and values, reordered), so the data offsets stay valid.
fn sorted_metadata(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(length) = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .and_then(|n| usize::try_from(n).ok())
    else {
        return bytes;
    };
    let Some(header) = bytes.get(8..8 + length) else {
        return bytes;
    };
    let Ok(serde_json::Value::Object(mut header_map)) =
        serde_json::from_slice::<serde_json::Value>(header)
    else {
        return bytes;
    };
    if let Some(serde_json::Value::Object(metadata)) = header_map.get_mut("__metadata__") {
        let mut entries: Vec<(String, serde_json::Value)> =
            std::mem::take(metadata).into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        metadata.extend(entries);
    }
    let Ok(mut text) = serde_json::to_vec(&serde_json::Value::Object(header_map)) else {
        return bytes;
    };
    // The crate pads the header with spaces to a multiple of 8 bytes; keep that padding.
    if text.len() <= length {
        text.resize(length, b' ');
        bytes[8..8 + length].copy_from_slice(&text);
    }
    bytes
}

/// The metadata of safetensors bytes, and where the tensor data starts.
pub fn metadata(bytes: &[u8], origin: &str) -> Result<(HashMap<String, String>, usize), DataError> {
    let (length, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
        DataError::new(
            origin,
            format!("not a valid safetensors file ({e}); the file may be truncated or corrupt"),
        )
    })?;
    Ok((header.metadata().clone().unwrap_or_default(), 8 + length))
}

/// Reads safetensors bytes. `origin` names the file in messages.
pub fn decode(bytes: &[u8], origin: &str) -> Result<Checkpoint, DataError> {
    let error = |message: String| DataError::new(origin, message);
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| {
        error(format!(
            "not a valid safetensors file ({e}); the file may be truncated or corrupt"
        ))
    })?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| error(format!("not a valid safetensors file ({e})")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let mut params = Vec::new();
    let mut slots = Vec::new();
    let (mut mean, mut std) = (None, None);
    let mut other_dtypes = Vec::new();
    let mut names: Vec<&str> = tensors.names();
    names.sort_unstable();
    for name in names {
        let view = tensors
            .tensor(name)
            .map_err(|e| error(format!("tensor `{name}`: {e}")))?;
        let values = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            // Kept empty: matching against the model reports the dtype by name.
            _ => Vec::new(),
        };
        let tensor = Tensor {
            name: name.to_string(),
            shape: view.shape().to_vec(),
            values,
        };
        if view.dtype() != Dtype::F32 {
            if name.starts_with(PREPROCESSING_PREFIX) {
                return Err(error(format!(
                    "tensor `{name}` holds {:?} values; standardization statistics are F32",
                    view.dtype()
                )));
            }
            other_dtypes.push((
                name.to_string(),
                view.shape().to_vec(),
                format!("{:?}", view.dtype()),
            ));
            continue;
        }
        if let Some(statistic) = name.strip_prefix(PREPROCESSING_PREFIX) {
            match statistic {
                "mean" => mean = Some(tensor.values),
                "std" => std = Some(tensor.values),
                _ => {
                    return Err(error(format!(
                        "unknown preprocessing tensor `{name}`; expected preprocessing.mean and \
                         preprocessing.std"
                    )));
                }
            }
            continue;
        }
        match name.strip_prefix(OPTIMIZER_PREFIX) {
            Some(slot) => slots.push(Tensor {
                name: slot.to_string(),
                ..tensor
            }),
            None => params.push(tensor),
        }
    }
    let number = |key: &str| -> Result<Option<u64>, DataError> {
        metadata
            .get(key)
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    error(format!(
                        "the metadata's `{key}` is `{text}`; expected a whole number"
                    ))
                })
            })
            .transpose()
    };
    let step = number("step")?;
    // Training adds one per update; a count this high is not one a run wrote.
    if let Some(step) = step.filter(|&s| s > MAX_STEP) {
        return Err(error(format!(
            "the metadata's `step` is {step}; expected at most {MAX_STEP} updates"
        )));
    }
    let epoch = number("epoch")?.map(|e| e as usize);
    let optimizer = match (metadata.get("optimizer"), step) {
        (Some(kind), Some(step)) => Some(OptimizerState {
            kind: kind.clone(),
            step,
            slots,
        }),
        _ if !slots.is_empty() => {
            return Err(error(
                "the file has optimizer tensors but no `optimizer` and `step` in its metadata"
                    .to_string(),
            ));
        }
        _ => None,
    };
    let standardization = match (mean, std) {
        (Some(mean), Some(std)) if mean.len() == std.len() => Some((mean, std)),
        (None, None) => None,
        _ => {
            return Err(error(
                "preprocessing.mean and preprocessing.std must both be present, with one value \
                 per feature"
                    .to_string(),
            ));
        }
    };
    let text = text_vocabulary(&metadata, origin)?;
    let table = table_vocabulary(&metadata, origin)?;
    Ok(Checkpoint {
        model: metadata.get("model").cloned().unwrap_or_default(),
        epoch,
        params,
        optimizer,
        standardization,
        text,
        table,
        other_dtypes,
    })
}

/// A CSV's categories and class names as metadata entries.
fn table_metadata(table: &TableVocabulary) -> Vec<(String, String)> {
    let columns: Vec<serde_json::Value> = (table.columns.iter())
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "position": c.position,
                "values": c.values,
            })
        })
        .collect();
    let mut entries = vec![
        ("table.features".to_string(), table.features.to_string()),
        (
            "table.encoding".to_string(),
            table.encoding.name().to_string(),
        ),
        (
            "table.columns".to_string(),
            serde_json::Value::from(columns).to_string(),
        ),
    ];
    if let Some((label, classes)) = &table.classes {
        entries.push(("table.label".to_string(), label.clone()));
        entries.push((
            "table.classes".to_string(),
            serde_json::Value::from(classes.clone()).to_string(),
        ));
    }
    entries
}

/// The CSV categories and class names in a checkpoint's metadata, if it has them, checked as
/// the loader builds them: positions in order among the features, distinct values, class names
/// distinct and sorted.
fn table_vocabulary(
    metadata: &HashMap<String, String>,
    origin: &str,
) -> Result<Option<TableVocabulary>, DataError> {
    let error = |message: String| DataError::new(origin, message);
    let keys = ["table.features", "table.encoding", "table.columns"];
    let values: Vec<Option<&String>> = keys.iter().map(|k| metadata.get(*k)).collect();
    let label = (metadata.get("table.label"), metadata.get("table.classes"));
    if values.iter().all(Option::is_none) && label == (None, None) {
        return Ok(None);
    }
    let [Some(features), Some(encoding), Some(columns)] = values[..] else {
        return Err(error(format!(
            "the metadata holds part of a table vocabulary; it needs all of {}",
            keys.join(", ")
        )));
    };
    let features: usize = features.parse().map_err(|_| {
        error(format!(
            "the metadata's `table.features` is `{features}`; expected a whole number"
        ))
    })?;
    let encoding = crate::settings::CategoryEncoding::from_name(encoding).ok_or_else(|| {
        error(format!(
            "the metadata's `table.encoding` \"{encoding}\" is unknown"
        ))
    })?;
    let not_columns = || {
        error(
            "the metadata's `table.columns` is not a JSON array of {\"name\", \"position\", \
             \"values\"} objects"
                .to_string(),
        )
    };
    let parsed: Vec<serde_json::Value> =
        serde_json::from_str(columns).map_err(|_| not_columns())?;
    let columns: Vec<CategoryColumn> = (parsed.iter())
        .map(|c| {
            let name = c.get("name")?.as_str()?.to_string();
            let position = usize::try_from(c.get("position")?.as_u64()?).ok()?;
            let values = (c.get("values")?.as_array()?.iter())
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()?;
            Some(CategoryColumn {
                name,
                position,
                values,
            })
        })
        .collect::<Option<_>>()
        .ok_or_else(not_columns)?;
    if columns.windows(2).any(|w| w[0].position >= w[1].position)
        || columns.iter().any(|c| c.position >= features)
    {
        return Err(error(format!(
            "the metadata's `table.columns` must be in order of position, each below \
             `table.features` ({features})"
        )));
    }
    for column in &columns {
        let mut seen = std::collections::HashSet::new();
        if let Some(bad) = column
            .values
            .iter()
            .find(|v| v.is_empty() || !seen.insert(*v))
        {
            return Err(error(format!(
                "the category {bad:?} of column '{}' is empty or repeated; each index needs its \
                 own value",
                column.name
            )));
        }
    }
    let classes = match label {
        (None, None) => None,
        (Some(label), Some(classes)) => {
            let classes: Vec<String> = serde_json::from_str(classes).map_err(|_| {
                error("the metadata's `table.classes` is not a JSON array of strings".to_string())
            })?;
            if classes.windows(2).any(|w| w[0] >= w[1]) {
                return Err(error(
                    "the class names in `table.classes` must be distinct and in sorted order"
                        .to_string(),
                ));
            }
            Some((label.clone(), classes))
        }
        _ => {
            return Err(error(
                "the metadata needs both `table.label` and `table.classes`, or neither".to_string(),
            ));
        }
    };
    Ok(Some(TableVocabulary {
        features,
        columns,
        encoding,
        classes,
    }))
}

/// The text vocabulary in a checkpoint's metadata, if it has one, checked as `adapt` builds
/// one: distinct non-empty tokens, class names distinct and in byte order.
fn text_vocabulary(
    metadata: &HashMap<String, String>,
    origin: &str,
) -> Result<Option<TextVocabulary>, DataError> {
    let keys = [
        "text.tokens",
        "text.classes",
        "text.split",
        "text.standardize",
    ];
    let values: Vec<Option<&String>> = keys.iter().map(|k| metadata.get(*k)).collect();
    if values.iter().all(Option::is_none) {
        return Ok(None);
    }
    let error = |message: String| DataError::new(origin, message);
    let [Some(tokens), Some(classes), Some(split), Some(standardize)] = values[..] else {
        return Err(error(format!(
            "the metadata holds part of a text vocabulary; it needs all of {}",
            keys.join(", ")
        )));
    };
    let strings = |key: &str, text: &str| -> Result<Vec<String>, DataError> {
        serde_json::from_str(text).map_err(|_| {
            error(format!(
                "the metadata's `{key}` is not a JSON array of strings"
            ))
        })
    };
    let tokens = strings("text.tokens", tokens)?;
    let classes = strings("text.classes", classes)?;
    let split = TextSplit::from_name(split).ok_or_else(|| {
        error(format!(
            "the metadata's `text.split` \"{split}\" is unknown"
        ))
    })?;
    let standardize = TextStandardize::from_name(standardize).ok_or_else(|| {
        error(format!(
            "the metadata's `text.standardize` \"{standardize}\" is unknown"
        ))
    })?;
    let mut seen = std::collections::HashSet::new();
    if let Some(bad) = tokens.iter().find(|t| t.is_empty() || !seen.insert(*t)) {
        return Err(error(format!(
            "the vocabulary's token {bad:?} is empty or repeated; each id needs its own token"
        )));
    }
    if classes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(error(
            "the class names in `text.classes` must be distinct and in sorted order".to_string(),
        ));
    }
    Ok(Some(TextVocabulary {
        tokens,
        classes,
        split,
        standardize,
    }))
}

/// Checks a checkpoint's text vocabulary against the model it loads into: token ids feed an
/// integer input, and each class needs an output.
pub fn check_text(
    text: &TextVocabulary,
    integer_input: bool,
    outputs: usize,
    model: &str,
    origin: &str,
) -> Result<(), DataError> {
    if !integer_input {
        return Err(DataError::new(
            origin,
            format!(
                "the checkpoint holds a text vocabulary, but model '{model}' takes f32 \
                 features, not token ids"
            ),
        ));
    }
    if text.classes.len() > outputs {
        return Err(DataError::new(
            origin,
            format!(
                "the checkpoint's text has {} classes, but model '{model}' has {outputs} \
                 output{}",
                text.classes.len(),
                if outputs == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

/// Checks optimizer state about to be used (`--load`, `load`; not `--init`, which starts a fresh
/// optimizer) as training would use it: every value finite, and the roles its optimizer says are
/// non-negative (Adam's second moments `….v`, RMSprop's `….velocity`, Adagrad's
/// `….accumulator`: averages or sums of squares) not negative, since their square roots divide
/// each update (a negative one made the first step's loss NaN).
pub fn check_optimizer_state(state: &OptimizerState, origin: &str) -> Result<(), DataError> {
    let slots = &state.slots;
    let kind = state.kind.as_str();
    let roles = crate::settings::optimizer::find(kind).map_or(&[][..], |def| def.non_negative);
    for slot in slots {
        let second_moment = roles.iter().any(|role| {
            slot.name
                .strip_suffix(role)
                .is_some_and(|p| p.ends_with('.'))
        });
        let bad = slot
            .values
            .iter()
            .position(|v| !v.is_finite() || (second_moment && *v < 0.0));
        if let Some(index) = bad {
            let value = slot.values[index];
            let expected = if second_moment {
                format!(
                    "{} keeps averages or sums of squares there: finite and not negative",
                    kind
                )
            } else {
                "optimizer state must be finite numbers".to_string()
            };
            return Err(DataError::new(
                origin,
                format!(
                    "tensor `{OPTIMIZER_PREFIX}{}` holds {value:?} at index {index}; {expected}",
                    slot.name
                ),
            ));
        }
    }
    Ok(())
}

/// The largest update count a checkpoint may hold: 2^53, the last whole number an `f64` (which
/// learning-rate schedules are evaluated in) counts exactly, and far from wrapping a `u64`.
pub const MAX_STEP: u64 = 1 << 53;

/// Checks standardization statistics read from `origin` against a model taking `features`
/// values per sample: one mean and one standard deviation per feature, every mean finite and
/// Checks loaded weights: every value finite (a NaN weight trains to a NaN loss, or with `relu`
/// to a silently dead unit).
pub fn check_weights<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    origin: &str,
) -> Result<(), DataError> {
    for (name, values) in params {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(DataError::new(
                origin,
                format!(
                    "tensor `{name}` holds {:?} at index {index}; weights must be finite numbers",
                    values[index]
                ),
            ));
        }
    }
    Ok(())
}

/// every deviation finite and positive (computed statistics are floored at 1e-7).
pub fn check_standardization(
    mean: &[f32],
    std: &[f32],
    features: usize,
    origin: &str,
) -> Result<(), DataError> {
    if mean.len() != features || std.len() != features {
        return Err(DataError::new(
            origin,
            format!(
                "preprocessing.mean and preprocessing.std hold {} and {} values, but the model \
                 takes {features} feature{} per sample; they need one value per feature",
                mean.len(),
                std.len(),
                if features == 1 { "" } else { "s" }
            ),
        ));
    }
    if let Some(i) = mean.iter().position(|m| !m.is_finite()) {
        return Err(DataError::new(
            origin,
            format!("preprocessing.mean of feature {} is {}", i + 1, mean[i]),
        ));
    }
    // A subnormal deviation (1e-45) divides features into infinities; `standardize` itself
    // never writes one below 1e-7.
    if let Some(i) = std.iter().position(|s| !(s.is_normal() && *s > 0.0)) {
        return Err(DataError::new(
            origin,
            format!(
                "preprocessing.std of feature {} is {}; a standard deviation must be a positive \
                 finite number of at least {:e}",
                i + 1,
                // Tiny values in exponent form (Display writes 1e-45 with 45 digits).
                if std[i] != 0.0 && std[i].abs() < 1e-6 {
                    format!("{:e}", std[i])
                } else {
                    std[i].to_string()
                },
                f32::MIN_POSITIVE
            ),
        ));
    }
    Ok(())
}

/// Reads and decodes a checkpoint file.
pub fn read(path: &Path) -> Result<Checkpoint, DataError> {
    let origin = path.display().to_string();
    let bytes = super::data::read_regular(path, &origin, "the checkpoint")?;
    decode(&bytes, &origin)
}

/// Writes a checkpoint atomically: a temporary file beside `path` with an unpredictable name,
/// created exclusively (so a planted link is never followed), flushed to disk, then renamed over
/// it, and the folder flushed so the rename survives a crash. Temporary files that a killed run
/// left beside `path` are removed first.
pub fn write(path: &Path, checkpoint: &Checkpoint) -> Result<(), DataError> {
    let origin = path.display().to_string();
    let bytes =
        encode(checkpoint).map_err(|e| DataError::new(&origin, format!("cannot encode: {e}")))?;
    write_bytes(path, &bytes, "the checkpoint")
}

/// Writes `bytes` to `path` atomically, as `write` does; `what` names the file in messages.
pub fn write_bytes(path: &Path, bytes: &[u8], what: &str) -> Result<(), DataError> {
    let origin = path.display().to_string();
    let error = |message: String| DataError::new(&origin, message);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".to_string());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = format!(".{file_name}.");
    remove_leftovers(dir, &prefix);
    let written = (|| {
        let mut file = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(dir)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        // The rename is durable once the folder is; not every file system can sync a folder.
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    written.map_err(|e| error(format!("cannot write {what}: {e}")))
}

/// Removes `PREFIX*.tmp` files in `dir`: the temporary files of saves to the same path that were
/// killed before their rename. Best effort: one that cannot be removed is left.
fn remove_leftovers(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_leftover = name.starts_with(prefix) && name.ends_with(".tmp");
        // Only plain files: never follow or remove a link someone planted.
        if is_leftover && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The checkpoint's parameters in the order of `params`, after checking every name, shape and
/// dtype. Each problem is one diagnostic naming the tensor; `span` is the `load` statement when
/// there is one, `origin` the file.
pub fn match_params(
    checkpoint: &Checkpoint,
    params: &[ParamInfo],
    model: &str,
    origin: &str,
    span: Option<Span>,
) -> Result<Vec<Vec<f32>>, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let at = |d: Diagnostic| match span {
        Some(span) => d.primary(span, format!("loading `{origin}`")),
        None => d.note(format!("loading `{origin}` (--load/--init)")),
    };
    let mut values = Vec::new();
    for param in params {
        let expected = param.shape.resolve(0);
        if let Some((_, _, dtype)) = checkpoint
            .other_dtypes
            .iter()
            .find(|(name, _, _)| *name == param.name)
        {
            problems.push(at(Diagnostic::error(
                "E0408",
                format!(
                    "`{}` holds {dtype} values in the checkpoint; Kiln's parameters are F32",
                    param.name
                ),
            )
            .help(
                "convert the tensor to float32 before saving, e.g. `tensor.float()` in PyTorch",
            )));
            continue;
        }
        match checkpoint.params.iter().find(|t| t.name == param.name) {
            None => problems.push(at(Diagnostic::error(
                "E0404",
                format!(
                    "the checkpoint has no tensor `{}`, a parameter of `{model}` of shape {expected:?}",
                    param.name
                ),
            )
            .help("was the checkpoint saved from a different model?"))),
            Some(tensor) if tensor.shape != expected => problems.push(at(Diagnostic::error(
                "E0405",
                format!(
                    "`{}` has shape {:?} in the checkpoint but {expected:?} in `{model}`",
                    param.name, tensor.shape
                ),
            ))),
            Some(tensor) => values.push(tensor.values.clone()),
        }
    }
    for tensor in &checkpoint.params {
        if !params.iter().any(|p| p.name == tensor.name) {
            problems.push(at(Diagnostic::error(
                "E0406",
                format!(
                    "the checkpoint has a tensor `{}` of shape {:?}, which is not a parameter of `{model}`",
                    tensor.name, tensor.shape
                ),
            )
            .note(format!(
                "`{model}` has: {}",
                params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            ))));
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// The optimizer slots in the order of `states`, when the saved state is for the same optimizer
/// with the same slots and shapes; `None` otherwise (training then starts a fresh optimizer).
pub fn match_states(
    state: &OptimizerState,
    kind: &str,
    states: &[StateInfo],
) -> Option<Vec<Vec<f32>>> {
    // Before optimizers were defined in one table, SGD with momentum was saved as `sgd_momentum`;
    // its velocity tensors still tell it apart from plain SGD.
    let saved = match state.kind.as_str() {
        "sgd_momentum" => "sgd",
        saved => saved,
    };
    if saved != kind || state.slots.len() != states.len() {
        return None;
    }
    states
        .iter()
        .map(|info| {
            state
                .slots
                .iter()
                .find(|t| t.name == info.name && t.shape == info.shape.resolve(0))
                .map(|t| t.values.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::graph::Init;
    use crate::ir::shape::Shape;

    fn sample() -> Checkpoint {
        Checkpoint {
            model: "m".into(),
            epoch: Some(2),
            params: vec![
                Tensor {
                    name: "dense.kernel".into(),
                    shape: vec![2, 3],
                    values: vec![1.0, -2.5, 3.0, 0.1, f32::MIN_POSITIVE, -0.0],
                },
                Tensor {
                    name: "dense.bias".into(),
                    shape: vec![3],
                    values: vec![0.5, 0.25, 0.125],
                },
            ],
            optimizer: Some(OptimizerState {
                kind: "adam".into(),
                step: 17,
                slots: vec![Tensor {
                    name: "dense.bias.m".into(),
                    shape: vec![3],
                    values: vec![1e-8, 2e-8, 3e-8],
                }],
            }),
            standardization: Some((vec![0.5, -1.0], vec![2.0, 1e-7])),
            text: None,
            table: None,
            other_dtypes: Vec::new(),
        }
    }

    fn info(name: &str, shape: &[usize]) -> ParamInfo {
        ParamInfo {
            regularizer: None,
            trainable: true,
            name: name.into(),
            shape: Shape::fixed(shape),
            init: Init::Zeros,
        }
    }

    #[test]
    fn round_trip_keeps_every_bit() {
        let checkpoint = sample();
        let bytes = encode(&checkpoint).unwrap();
        for _ in 0..8 {
            assert!(
                encode(&checkpoint).unwrap() == bytes,
                "the same bytes every time"
            );
        }
        let mut back = decode(&bytes, "x").unwrap();
        back.params.sort_by(|a, b| b.name.cmp(&a.name));
        assert_eq!(back, checkpoint);
    }

    #[test]
    fn round_trip_keeps_the_categories_and_class_names() {
        let mut checkpoint = sample();
        checkpoint.table = Some(TableVocabulary {
            features: 3,
            columns: vec![CategoryColumn {
                name: "island, \"north\"".into(),
                position: 1,
                values: vec!["Biscoe".into(), "Dream".into()],
            }],
            encoding: crate::settings::CategoryEncoding::Index,
            classes: Some(("species".into(), vec!["Adelie".into(), "Gentoo".into()])),
        });
        let mut back = decode(&encode(&checkpoint).unwrap(), "x").unwrap();
        back.params.sort_by(|a, b| b.name.cmp(&a.name));
        assert_eq!(back, checkpoint);
        let table = checkpoint.table.as_ref().unwrap();
        assert_eq!(
            table.check_model(3, 1, "m", "w").unwrap_err().to_string(),
            "w: the checkpoint has 2 class names, but model 'm' has 1 class"
        );
        assert_eq!(
            table.check_model(4, 2, "m", "w").unwrap_err().to_string(),
            "w: the checkpoint's categories make 3 features per sample (2 numeric, 'island, \
             \"north\"' as its index), but model 'm' takes 4"
        );
        // Metadata a run did not write.
        let metadata = |entries: &[(&str, &str)]| -> HashMap<String, String> {
            (entries.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let err = |entries: &[(&str, &str)]| {
            table_vocabulary(&metadata(entries), "w")
                .unwrap_err()
                .message
        };
        let good = [
            ("table.features", "2"),
            ("table.encoding", "one_hot"),
            (
                "table.columns",
                "[{\"name\": \"a\", \"position\": 0, \"values\": [\"x\"]}]",
            ),
        ];
        assert!(table_vocabulary(&metadata(&good), "w").unwrap().is_some());
        assert!(err(&good[..2]).contains("part of a table vocabulary"));
        let mut bad = good;
        bad[2].1 = "[{\"name\": \"a\", \"position\": 2, \"values\": [\"x\"]}]";
        assert!(err(&bad).contains("each below `table.features` (2)"));
        bad[2].1 = "[{\"name\": \"a\", \"position\": 0, \"values\": [\"x\", \"x\"]}]";
        assert!(err(&bad).contains("\"x\" of column 'a' is empty or repeated"));
        bad[2].1 = "[{\"name\": 1}]";
        assert!(err(&bad).contains("is not a JSON array of"));
        bad[1].1 = "two_hot";
        assert!(err(&bad).contains("`table.encoding` \"two_hot\" is unknown"));
        let mut labelled = good.to_vec();
        labelled.push(("table.label", "y"));
        assert!(err(&labelled).contains("both `table.label` and `table.classes`"));
        labelled.push(("table.classes", "[\"b\", \"a\"]"));
        assert!(err(&labelled).contains("distinct and in sorted order"));
    }

    #[test]
    fn round_trip_keeps_the_text_vocabulary() {
        let mut checkpoint = sample();
        checkpoint.standardization = None;
        checkpoint.text = Some(TextVocabulary {
            tokens: vec!["the".into(), "\"quoted\", comma".into(), "zoë".into()],
            classes: vec!["art".into(), "computers".into()],
            split: TextSplit::Character,
            standardize: TextStandardize::Lower,
        });
        let mut back = decode(&encode(&checkpoint).unwrap(), "x").unwrap();
        back.params.sort_by(|a, b| b.name.cmp(&a.name));
        assert_eq!(back, checkpoint);
        let vocabulary = checkpoint.text.as_ref().unwrap();
        assert_eq!(
            check_text(vocabulary, true, 1, "m", "w.safetensors")
                .unwrap_err()
                .to_string(),
            "w.safetensors: the checkpoint's text has 2 classes, but model 'm' has 1 output"
        );
        assert_eq!(
            check_text(vocabulary, false, 2, "m", "w.safetensors")
                .unwrap_err()
                .to_string(),
            "w.safetensors: the checkpoint holds a text vocabulary, but model 'm' takes f32 \
             features, not token ids"
        );
        // Metadata a run did not write.
        let mut metadata: HashMap<String, String> = [
            ("text.tokens", "[\"a\", \"a\"]"),
            ("text.classes", "[]"),
            ("text.split", "whitespace"),
            ("text.standardize", "none"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let err = |m: &HashMap<String, String>| text_vocabulary(m, "w").unwrap_err().to_string();
        assert_eq!(
            err(&metadata),
            "w: the vocabulary's token \"a\" is empty or repeated; each id needs its own token"
        );
        metadata.insert("text.classes".into(), "[\"b\", \"a\"]".into());
        metadata.insert("text.tokens".into(), "[\"a\"]".into());
        assert_eq!(
            err(&metadata),
            "w: the class names in `text.classes` must be distinct and in sorted order"
        );
        metadata.remove("text.split");
        assert_eq!(
            err(&metadata),
            "w: the metadata holds part of a text vocabulary; it needs all of text.tokens, \
             text.classes, text.split, text.standardize"
        );
    }

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let bytes = encode(&sample()).unwrap();
        for cut in [0, 4, 8, 20, bytes.len() - 1] {
            let e = decode(&bytes[..cut], "w.safetensors").unwrap_err();
            assert!(e.to_string().starts_with("w.safetensors: "), "{e}");
            assert!(e.message.contains("truncated or corrupt"), "{e}");
        }
        assert!(decode(b"hello, this is not a checkpoint", "x").is_err());
    }

    #[test]
    fn every_mismatch_is_reported_by_name() {
        let checkpoint = sample();
        let params = [
            info("dense.kernel", &[3, 2]),
            info("dense_1.kernel", &[3, 1]),
        ];
        let problems = match_params(&checkpoint, &params, "m", "w.safetensors", None).unwrap_err();
        let codes: Vec<&str> = problems.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["E0405", "E0404", "E0406"]);
        assert!(problems[0].message.contains("`dense.kernel`"));
        assert!(problems[1].message.contains("`dense_1.kernel`"));
        assert!(problems[2].message.contains("`dense.bias`"));
    }

    #[test]
    fn an_update_count_past_the_limit_is_an_error() {
        let mut checkpoint = sample();
        checkpoint.optimizer.as_mut().unwrap().step = MAX_STEP;
        assert!(decode(&encode(&checkpoint).unwrap(), "w").is_ok());
        checkpoint.optimizer.as_mut().unwrap().step = u64::MAX;
        let e = decode(&encode(&checkpoint).unwrap(), "w").unwrap_err();
        assert!(e.message.contains("`step` is 18446744073709551615"), "{e}");
    }

    #[test]
    fn optimizer_state_must_be_finite_and_second_moments_not_negative() {
        let with_slot = |name: &str, values: Vec<f32>| {
            let mut checkpoint = sample();
            checkpoint.optimizer.as_mut().unwrap().slots = vec![Tensor {
                name: name.into(),
                shape: vec![values.len()],
                values,
            }];
            let decoded = decode(&encode(&checkpoint).unwrap(), "w").map_err(|e| e.message)?;
            check_optimizer_state(decoded.optimizer.as_ref().unwrap(), "w").map_err(|e| e.message)
        };
        assert!(with_slot("dense.bias.m", vec![-1.0, 0.0, 2.0]).is_ok());
        assert!(with_slot("dense.bias.v", vec![0.0, 1e-30, 2.0]).is_ok());
        for (name, values, expected) in [
            (
                "dense.bias.v",
                vec![0.0, -1e-9, 2.0],
                "tensor `optimizer.dense.bias.v` holds -1e-9 at index 1; adam keeps averages or \
                 sums of squares there: finite and not negative",
            ),
            (
                "dense.bias.v",
                vec![f32::INFINITY],
                "tensor `optimizer.dense.bias.v` holds inf at index 0",
            ),
            (
                "dense.bias.m",
                vec![1.0, 2.0, f32::NAN],
                "tensor `optimizer.dense.bias.m` holds NaN at index 2; optimizer state must be \
                 finite numbers",
            ),
        ] {
            let message = with_slot(name, values).unwrap_err();
            assert!(message.starts_with(expected), "{message}");
        }
        // Each optimizer says which of its roles are squares: RMSprop's velocity, Adagrad's
        // accumulator (the role must be the name's last part).
        let with_kind = |kind: &str, name: &str| {
            let mut checkpoint = sample();
            let state = checkpoint.optimizer.as_mut().unwrap();
            state.kind = kind.into();
            state.slots = vec![Tensor {
                name: name.into(),
                shape: vec![1],
                values: vec![-1.0],
            }];
            let decoded = decode(&encode(&checkpoint).unwrap(), "w").map_err(|e| e.message)?;
            check_optimizer_state(decoded.optimizer.as_ref().unwrap(), "w").map_err(|e| e.message)
        };
        assert!(with_kind("rmsprop", "dense.bias.velocity").is_err());
        assert!(with_kind("adagrad", "dense.bias.accumulator").is_err());
        assert!(with_kind("adagrad", "dense.bias.v").is_ok());
        assert!(with_kind("rmsprop", "dense.bias.momentum").is_ok());
        assert!(with_kind("adam", "dense.bias.mv").is_ok());
    }

    /// Saves never follow a planted link and never leave a temporary file; a killed save's
    /// leftovers go at the next save to the same path.
    #[cfg(unix)]
    #[test]
    fn writes_are_safe_and_clean_up_after_killed_saves() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.safetensors");
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "keep me").unwrap();
        // A link where the old scheme's temporary file was (predictable: pid-named).
        let planted = dir
            .path()
            .join(format!(".m.safetensors.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let leftover = dir.path().join(".m.safetensors.4242.tmp");
        std::fs::write(&leftover, "half a checkpoint").unwrap();

        write(&target, &sample()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(decode(&std::fs::read(&target).unwrap(), "m").is_ok());
        assert!(
            !leftover.exists(),
            "a killed save's temporary file is removed"
        );
        assert!(planted.is_symlink(), "a link is never followed nor removed");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn standardization_must_fit_the_model() {
        let check = |mean: &[f32], std: &[f32]| {
            check_standardization(mean, std, 2, "w.safetensors").map_err(|e| e.to_string())
        };
        assert_eq!(check(&[0.5, -1.0], &[2.0, 1e-7]), Ok(()));
        for (mean, std, expected) in [
            (
                &[0.5][..],
                &[2.0][..],
                "hold 1 and 1 values, but the model takes 2 features",
            ),
            (&[], &[], "hold 0 and 0 values"),
            (
                &[0.5, f32::NAN],
                &[2.0, 1.0],
                "preprocessing.mean of feature 2 is NaN",
            ),
            (
                &[0.5, 1.0],
                &[0.0, 1.0],
                "preprocessing.std of feature 1 is 0;",
            ),
            (
                &[0.5, 1.0],
                &[1.0, -2.0],
                "preprocessing.std of feature 2 is -2;",
            ),
            (
                &[0.5, -1.0],
                &[2.0, 1e-45],
                "preprocessing.std of feature 2 is 1e-45; a standard deviation must be a positive \
                 finite number of at least 1.1754944e-38",
            ),
            (&[0.5, 1.0], &[1.0, f32::INFINITY], "feature 2 is inf;"),
        ] {
            let e = check(mean, std).unwrap_err();
            assert!(
                e.starts_with("w.safetensors: ") && e.contains(expected),
                "{e}"
            );
        }
    }

    #[test]
    fn statistics_that_are_not_f32_are_an_error() {
        use safetensors::tensor::{Dtype, TensorView};
        let bytes = [0u8; 8];
        let view = TensorView::new(Dtype::I32, vec![2], &bytes).unwrap();
        let file = safetensors::serialize([("preprocessing.mean", view)], None).unwrap();
        let e = decode(&file, "w").unwrap_err();
        assert!(e.message.contains("holds I32 values"), "{e}");
    }
}
