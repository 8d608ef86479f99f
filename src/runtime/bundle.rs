//! `.kiln` bundles: a trained model in one file that runs without its program. A bundle is a
//! safetensors file (so any safetensors reader can list its weights) whose metadata adds:
//!
//! - `kiln.bundle`: the bundle format's version ([`FORMAT_VERSION`]); another version is refused,
//!   never guessed at;
//! - `kiln.version`: the Kiln that wrote it, for the message when the format differs;
//! - `kiln.source`: the model's definition as source (the `model` item with every top-level
//!   `let`, `layer`, `fn` and `data` item and the `fit` that trained it, in program order), which
//!   the checker re-checks to rebuild the same forward graph: the definition stays the one the
//!   language defines, not a second serialization of the IR that could drift from it;
//! - `kiln.checksum`: CRC-32 of every other metadata entry (sorted) and the tensor bytes, so a
//!   changed byte anywhere is reported as corruption rather than run.
//!
//! The weights, standardization statistics, text vocabulary (with its class names) and CSV
//! categories and class names are a checkpoint's (`runtime::checkpoint`), without the optimizer's
//! state: a bundle is for inference.

use std::path::Path;

use super::checkpoint::{self, Checkpoint};
use super::data::DataError;

/// The bundle format this Kiln writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const VERSION_KEY: &str = "kiln.bundle";
const KILN_KEY: &str = "kiln.version";
const SOURCE_KEY: &str = "kiln.source";
const CHECKSUM_KEY: &str = "kiln.checksum";

/// What a bundle holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    /// The source that defines the model (see the module's documentation).
    pub source: String,
    /// The Kiln version that wrote it.
    pub kiln_version: String,
    /// The model's name, weights, standardization statistics and text vocabulary; no optimizer
    /// state.
    pub weights: Checkpoint,
}

/// The checksum's stand-in while the checksum is computed: as long as a real one, so the header
/// keeps its layout.
const UNSIGNED: &str = "00000000";

/// CRC-32 of the whole file with the checksum's value replaced by `UNSIGNED`: header (tensor
/// names, types, shapes, offsets, metadata) and data alike. `None` when the header does not hold
/// `checksum` where it should.
fn checksum(bytes: &[u8], header_end: usize, checksum: &str) -> Option<String> {
    let entry = format!("\"{CHECKSUM_KEY}\":\"{checksum}\"");
    let header = bytes.get(8..header_end)?;
    let at = 8 + header
        .windows(entry.len())
        .position(|window| window == entry.as_bytes())?;
    let value = at + entry.len() - 1 - checksum.len();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..value]);
    hasher.update(UNSIGNED.as_bytes());
    hasher.update(&bytes[value + checksum.len()..]);
    Some(format!("{:08x}", hasher.finalize()))
}

/// The bundle as bytes.
pub fn encode(bundle: &Bundle) -> Result<Vec<u8>, String> {
    let weights = Checkpoint {
        optimizer: None,
        ..bundle.weights.clone()
    };
    let mut extra = vec![
        (VERSION_KEY.to_string(), FORMAT_VERSION.to_string()),
        (KILN_KEY.to_string(), bundle.kiln_version.clone()),
        (SOURCE_KEY.to_string(), bundle.source.clone()),
    ];
    // Encoded once with a stand-in checksum to hash, then again with the real one in its place
    // (metadata is written sorted, so nothing else moves).
    extra.push((CHECKSUM_KEY.to_string(), UNSIGNED.to_string()));
    let unsigned = checkpoint::encode_with(&weights, &extra)?;
    let (_, header_end) =
        checkpoint::metadata(&unsigned, "the bundle").map_err(|e| e.message.clone())?;
    let sum = checksum(&unsigned, header_end, UNSIGNED)
        .ok_or_else(|| "the checksum entry is missing from the header".to_string())?;
    extra.last_mut().expect("pushed above").1 = sum;
    checkpoint::encode_with(&weights, &extra)
}

/// Reads bundle bytes; `origin` names the file in messages.
pub fn decode(bytes: &[u8], origin: &str) -> Result<Bundle, DataError> {
    let error = |message: String| DataError::new(origin, message);
    let (metadata, header_end) = checkpoint::metadata(bytes, origin).map_err(|e| {
        error(format!(
            "not a Kiln bundle: {}",
            e.message.replace("not a valid", "it is not a valid")
        ))
    })?;
    let Some(version) = metadata.get(VERSION_KEY) else {
        return Err(error(format!(
            "not a Kiln bundle: its metadata has no `{VERSION_KEY}` entry (a checkpoint? `load` \
             reads checkpoints into a program; bundles are written by `save MODEL to \
             \"NAME.kiln\"`)"
        )));
    };
    let written_by = metadata
        .get(KILN_KEY)
        .map_or_else(|| "an unknown Kiln".to_string(), |v| format!("Kiln {v}"));
    if version != &FORMAT_VERSION.to_string() {
        return Err(error(format!(
            "the bundle is in format version {version} (written by {written_by}); this Kiln \
             ({}) reads format version {FORMAT_VERSION}: re-save the model with this version",
            env!("CARGO_PKG_VERSION")
        )));
    }
    match metadata.get(CHECKSUM_KEY) {
        Some(found) => {
            let expected = checksum(bytes, header_end, found);
            if expected.as_ref() != Some(found) {
                return Err(error(format!(
                    "the bundle is corrupt: its checksum is {found}, but its contents hash to \
                     {} (the file was truncated or changed after it was written)",
                    expected.as_deref().unwrap_or("something else")
                )));
            }
        }
        None => {
            return Err(error(format!(
                "the bundle is corrupt: its metadata has no `{CHECKSUM_KEY}` entry"
            )));
        }
    }
    let Some(source) = metadata.get(SOURCE_KEY) else {
        return Err(error(format!(
            "the bundle is incomplete: its metadata has no `{SOURCE_KEY}` (the model's source)"
        )));
    };
    let weights = checkpoint::decode(bytes, origin)?;
    if weights.optimizer.is_some() {
        return Err(error(
            "the bundle holds optimizer state; bundles hold only what inference needs".to_string(),
        ));
    }
    Ok(Bundle {
        source: source.clone(),
        kiln_version: metadata.get(KILN_KEY).cloned().unwrap_or_default(),
        weights,
    })
}

/// Reads and decodes a bundle file.
pub fn read(path: &Path) -> Result<Bundle, DataError> {
    let origin = path.display().to_string();
    let bytes = super::data::read_regular(path, &origin, "the bundle")?;
    decode(&bytes, &origin)
}

/// Writes a bundle atomically (as checkpoints are written).
pub fn write(path: &Path, bundle: &Bundle) -> Result<(), DataError> {
    let bytes = encode(bundle)
        .map_err(|e| DataError::new(&path.display().to_string(), format!("cannot encode: {e}")))?;
    checkpoint::write_bytes(path, &bytes, "the bundle")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::checkpoint::Tensor;

    fn bundle() -> Bundle {
        Bundle {
            source: "model m(x: [B, 2]) -> [B, 1] { x |> dense(1) }\n".to_string(),
            kiln_version: "0.1.0".to_string(),
            weights: Checkpoint {
                model: "m".to_string(),
                epoch: Some(3),
                params: vec![Tensor {
                    name: "dense.kernel".to_string(),
                    shape: vec![2, 1],
                    values: vec![0.5, -1.25],
                }],
                optimizer: None,
                standardization: Some((vec![1.0, 2.0], vec![0.5, 4.0])),
                text: None,
                table: None,
                other_dtypes: Vec::new(),
            },
        }
    }

    #[test]
    fn a_bundle_round_trips() {
        let bytes = encode(&bundle()).unwrap();
        assert_eq!(decode(&bytes, "m.kiln").unwrap(), bundle());
        // The same bundle gives the same bytes.
        assert_eq!(bytes, encode(&bundle()).unwrap());
    }

    #[test]
    fn every_changed_byte_is_caught() {
        let bytes = encode(&bundle()).unwrap();
        for at in (0..bytes.len()).step_by(3) {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= 0x10;
            assert!(decode(&corrupt, "m.kiln").is_err(), "byte {at} changed");
        }
    }

    #[test]
    fn truncated_bundles_are_refused() {
        let bytes = encode(&bundle()).unwrap();
        for length in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let error = decode(&bytes[..length], "m.kiln").unwrap_err();
            assert!(
                error.message.contains("corrupt") || error.message.contains("truncated"),
                "{length}: {}",
                error.message
            );
        }
    }

    #[test]
    fn another_format_version_is_named() {
        let weights = bundle().weights;
        let extra = [
            (VERSION_KEY.to_string(), "99".to_string()),
            (KILN_KEY.to_string(), "9.0.0".to_string()),
        ];
        let bytes = checkpoint::encode_with(&weights, &extra).unwrap();
        let message = decode(&bytes, "m.kiln").unwrap_err().message;
        assert!(message.contains("format version 99"), "{message}");
        assert!(message.contains("Kiln 9.0.0"), "{message}");
    }

    #[test]
    fn a_checkpoint_is_not_a_bundle() {
        let bytes = checkpoint::encode(&bundle().weights).unwrap();
        let message = decode(&bytes, "m.kiln").unwrap_err().message;
        assert!(message.contains("not a Kiln bundle"), "{message}");
    }
}
