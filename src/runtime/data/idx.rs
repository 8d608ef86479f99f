//! IDX files, MNIST's format: a big-endian header, then raw unsigned bytes.
//!
//! * images: magic `0x00000803`, then `count`, `rows`, `cols` as big-endian `u32`, then
//!   `count · rows · cols` bytes, one image after another, row by row;
//! * labels: magic `0x00000801`, then `count`, then `count` bytes.
//!
//! A file that starts with the gzip magic bytes `1f 8b` is decompressed first (`flate2`), so the
//! `.gz` files MNIST is distributed as load directly. Each image is `rows · cols` features, row
//! by row, divided by the data set's `scale`; its shape `[rows, cols]` decides the model inputs
//! it feeds. Every problem is a [`DataError`] naming the file.

use std::io::Read;
use std::path::Path;

use super::{DataError, Dataset, Features, Labels, plural};

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Loads an images file and a labels file into one data set; features are `pixel / scale`.
pub fn load_idx(images: &Path, labels: &Path, scale: f32) -> Result<Dataset, DataError> {
    let images_origin = images.display().to_string();
    let labels_origin = labels.display().to_string();
    let image_bytes = read_file(images, &images_origin, IMAGES_MAGIC, "unsigned-byte images")?;
    let label_bytes = read_file(labels, &labels_origin, LABELS_MAGIC, "unsigned-byte labels")?;
    let (count, rows, cols, pixels) = parse_images(&image_bytes, &images_origin)?;
    let classes = parse_labels(&label_bytes, &labels_origin)?;
    if classes.len() != count {
        return Err(DataError::new(
            &images_origin,
            format!(
                "the images file holds {count} image{} but the labels file {labels_origin} holds \
                 {} label{}; expected one label per image",
                plural(count),
                classes.len(),
                plural(classes.len())
            ),
        ));
    }
    let mut x = super::zeroed_features(pixels.len(), &images_origin)?;
    let mut labels = super::reserve::<i32>(classes.len(), &labels_origin, "its labels")?;
    labels.extend(classes.iter().map(|&c| i32::from(c)));
    for (x, &p) in x.iter_mut().zip(pixels) {
        *x = f32::from(p) / scale;
    }
    Ok(Dataset {
        samples: count,
        features: rows * cols,
        shape: Some(vec![rows, cols]),
        x: Features::F32(x),
        labels: Labels::Classes(labels),
        origin: images_origin,
        labels_origin,
        last_values: None,
        weights: None,
    })
}

/// Reads a file, decompressing it when it starts with the gzip magic bytes. `magic` is the
/// header the file must start with, which bounds how far a compressed file is inflated.
fn read_file(path: &Path, origin: &str, magic: u32, what: &str) -> Result<Vec<u8>, DataError> {
    let bytes = super::read_regular(path, origin, "the file")?;
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes);
    }
    gunzip(&bytes, origin, magic, what)
}

/// Inflates the header, then at most the data it promises and one byte more: a 1 MB file that
/// inflates to gigabytes is refused after the promised bytes, not after holding them all.
fn gunzip(bytes: &[u8], origin: &str, magic: u32, what: &str) -> Result<Vec<u8>, DataError> {
    let broken = |e: std::io::Error| {
        DataError::new(
            origin,
            format!("the file starts like gzip data (1f 8b) but cannot be decompressed: {e}"),
        )
    };
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    let header_len = 4 * header_words(magic);
    (&mut decoder)
        .take(header_len as u64)
        .read_to_end(&mut out)
        .map_err(broken)?;
    // A header that does not parse is reported by the parser, from the bytes read so far.
    let Ok(words) = header(&out, origin, magic, what) else {
        return Ok(out);
    };
    let promised = promised_bytes(&words);
    let limit = u64::try_from(promised).unwrap_or(u64::MAX);
    (&mut decoder)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(broken)?;
    let mut extra = [0u8; 1];
    if decoder.read(&mut extra).map_err(broken)? > 0 {
        return Err(DataError::new(
            origin,
            format!(
                "the header promises {promised} bytes of data, but the file decompresses to more \
                 than that"
            ),
        ));
    }
    Ok(out)
}

/// The number of `u32` words in the header of an IDX file with this magic number.
fn header_words(magic: u32) -> usize {
    1 + (magic & 0xff) as usize
}

/// The bytes of data a header's sizes promise (in u128: three u32 factors can pass u64's range).
fn promised_bytes(words: &[u32]) -> u128 {
    words[1..].iter().map(|&w| u128::from(w)).product()
}

/// The big-endian `u32` at word `index` of the header.
fn word(bytes: &[u8], index: usize) -> u32 {
    let at = 4 * index;
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the magic number and that the header is complete; returns the header's words.
fn header(bytes: &[u8], origin: &str, magic: u32, what: &str) -> Result<Vec<u32>, DataError> {
    let words = header_words(magic);
    if bytes.len() >= 4 {
        let found = word(bytes, 0);
        if found != magic {
            let hint = match found {
                IMAGES_MAGIC => " (this is an IDX images file)",
                LABELS_MAGIC => " (this is an IDX labels file)",
                _ => "",
            };
            return Err(DataError::new(
                origin,
                format!(
                    "wrong magic number 0x{found:08x}{hint}; expected 0x{magic:08x}, the start of \
                     an IDX file of {what}"
                ),
            ));
        }
    }
    if bytes.len() < 4 * words {
        return Err(DataError::new(
            origin,
            format!(
                "truncated file: an IDX header of {what} needs {} bytes, found {}",
                4 * words,
                bytes.len()
            ),
        ));
    }
    Ok((0..words).map(|i| word(bytes, i)).collect())
}

/// The data after a header of `header_len` bytes, which must be exactly `expected` bytes long.
fn body<'a>(
    bytes: &'a [u8],
    header_len: usize,
    expected: u128,
    origin: &str,
    promise: &str,
) -> Result<&'a [u8], DataError> {
    let found = (bytes.len() - header_len) as u128;
    if found < expected {
        return Err(DataError::new(
            origin,
            format!(
                "truncated file: the header promises {promise}, {expected} bytes of data; found \
                 {found}"
            ),
        ));
    }
    if found > expected {
        return Err(DataError::new(
            origin,
            format!(
                "the header promises {promise}, {expected} bytes of data, but the file has {} \
                 more byte{} after them",
                found - expected,
                plural((found - expected) as usize)
            ),
        ));
    }
    Ok(&bytes[header_len..])
}

/// Parses an images file: (count, rows, cols, pixels).
/// The pixels are borrowed from `bytes`: a copy would double a large file's memory.
pub fn parse_images<'a>(
    bytes: &'a [u8],
    origin: &str,
) -> Result<(usize, usize, usize, &'a [u8]), DataError> {
    let words = header(bytes, origin, IMAGES_MAGIC, "unsigned-byte images")?;
    let (count, rows, cols) = (words[1], words[2], words[3]);
    if rows == 0 || cols == 0 {
        return Err(DataError::new(
            origin,
            format!("the header gives images of {rows}×{cols} pixels; expected at least 1×1"),
        ));
    }
    let expected = promised_bytes(&words);
    let promise = format!(
        "{count} image{} of {rows}×{cols} pixels",
        plural(count as usize)
    );
    let pixels = body(bytes, 16, expected, origin, &promise)?;
    Ok((count as usize, rows as usize, cols as usize, pixels))
}

/// Parses a labels file: one byte per sample, borrowed from `bytes`.
pub fn parse_labels<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a [u8], DataError> {
    let words = header(bytes, origin, LABELS_MAGIC, "unsigned-byte labels")?;
    let count = words[1];
    let promise = format!("{count} label{}", plural(count as usize));
    body(bytes, 8, promised_bytes(&words), origin, &promise)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file in the temp folder, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &[u8]) -> TempFile {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "kiln-idx-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).expect("write temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn images_file(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for w in [IMAGES_MAGIC, count, rows, cols] {
            bytes.extend_from_slice(&w.to_be_bytes());
        }
        bytes.extend_from_slice(pixels);
        bytes
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for w in [LABELS_MAGIC, labels.len() as u32] {
            bytes.extend_from_slice(&w.to_be_bytes());
        }
        bytes.extend_from_slice(labels);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Three 2×3 images and their labels.
    fn sample() -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..18).map(|i| (i * 15) as u8).collect();
        (images_file(3, 2, 3, &pixels), labels_file(&[7, 0, 9]))
    }

    fn load(images: &[u8], labels: &[u8], scale: f32) -> Result<Dataset, DataError> {
        let (images, labels) = (TempFile::new(images), TempFile::new(labels));
        load_idx(&images.0, &labels.0, scale)
    }

    fn error(images: &[u8], labels: &[u8]) -> String {
        match load(images, labels, 1.0) {
            Ok(data) => panic!("expected an error, loaded {data:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_contains(text: &str, needle: &str) {
        assert!(text.contains(needle), "expected {needle:?} in {text:?}");
    }

    #[test]
    fn plain_and_gzipped_files_load_the_same() {
        let (images, labels) = sample();
        let plain = load(&images, &labels, 255.0).unwrap();
        assert_eq!(plain.samples, 3);
        assert_eq!(plain.features, 6);
        assert_eq!(plain.shape, Some(vec![2, 3]));
        assert_eq!(plain.x.len(), 18);
        let x = plain.x.as_f32().unwrap();
        assert_eq!(x[1], 15.0 / 255.0);
        assert_eq!(x[17], 1.0);
        assert_eq!(plain.labels, Labels::Classes(vec![7, 0, 9]));
        let zipped = load(&gzip(&images), &gzip(&labels), 255.0).unwrap();
        assert_eq!((&zipped.x, &zipped.labels), (&plain.x, &plain.labels));
        let mixed = load(&gzip(&images), &labels, 1.0).unwrap();
        assert_eq!(mixed.x.as_f32().unwrap()[17], 255.0);
    }

    #[test]
    fn missing_file() {
        let (_, labels) = sample();
        let labels = TempFile::new(&labels);
        let e = load_idx(Path::new("/nonexistent-kiln/images.gz"), &labels.0, 1.0)
            .unwrap_err()
            .to_string();
        assert_contains(&e, "/nonexistent-kiln/images.gz: cannot read the file");
    }

    #[test]
    fn wrong_magic_numbers() {
        let (images, labels) = sample();
        // The files swapped: each magic number is named.
        let e = error(&labels, &images);
        assert_contains(
            &e,
            "wrong magic number 0x00000801 (this is an IDX labels file); expected 0x00000803",
        );
        let e = error(&images, &images);
        assert_contains(
            &e,
            "wrong magic number 0x00000803 (this is an IDX images file)",
        );
        assert_contains(
            &e,
            "expected 0x00000801, the start of an IDX file of unsigned-byte labels",
        );
        let mut bad = images.clone();
        bad[3] = 0x0d; // float data: not supported
        assert_contains(
            &error(&bad, &labels),
            "wrong magic number 0x0000080d; expected 0x00000803",
        );
        // Text is not IDX either.
        assert_contains(
            &error(b"hello world, not idx", &labels),
            "wrong magic number",
        );
    }

    #[test]
    fn truncated_files() {
        let (images, labels) = sample();
        let e = error(&images[..images.len() - 5], &labels);
        assert_contains(
            &e,
            "truncated file: the header promises 3 images of 2×3 pixels, 18 bytes of data; found 13",
        );
        let e = error(&images, &labels[..9]);
        assert_contains(&e, "the header promises 3 labels, 3 bytes of data; found 1");
        let e = error(&images[..10], &labels);
        assert_contains(
            &e,
            "an IDX header of unsigned-byte images needs 16 bytes, found 10",
        );
        let e = error(&[], &labels);
        assert_contains(&e, "needs 16 bytes, found 0");
        let mut long = images.clone();
        long.push(0);
        assert_contains(
            &error(&long, &labels),
            "the file has 1 more byte after them",
        );
        // A header whose size passes u64's range (it used to wrap to a small number).
        let huge = images_file(u32::MAX, u32::MAX, u32::MAX, &[0; 4]);
        assert_contains(
            &error(&huge, &labels),
            "79228162458924105385300197375 bytes of data; found 4",
        );
    }

    #[test]
    fn count_mismatch() {
        let (images, _) = sample();
        let labels = labels_file(&[1, 2]);
        let e = error(&images, &labels);
        assert_contains(&e, "the images file holds 3 images but the labels file");
        assert_contains(&e, "holds 2 labels; expected one label per image");
    }

    #[test]
    fn corrupt_gzip() {
        let (images, labels) = sample();
        let zipped = gzip(&images);
        let e = error(&zipped[..zipped.len() / 2], &labels);
        assert_contains(
            &e,
            "starts like gzip data (1f 8b) but cannot be decompressed",
        );
        let mut garbled = zipped.clone();
        for b in &mut garbled[12..20] {
            *b ^= 0x5a;
        }
        let e = error(&garbled, &labels);
        assert_contains(&e, "cannot be decompressed");
    }

    #[test]
    fn gzip_inflating_past_its_header_stops_there() {
        // 3 images of 2×3 pixels promised, 4 MiB of zeros after them: the inflation stops one
        // byte past the promise (a 1 MB file inflating to 1 GiB used 2.2 GB before).
        let (mut images, labels) = sample();
        images.extend(std::iter::repeat_n(0u8, 4 << 20));
        let e = error(&gzip(&images), &labels);
        assert_contains(
            &e,
            "the header promises 18 bytes of data, but the file decompresses to more than that",
        );
        let (images, labels) = sample();
        let mut long = labels.clone();
        long.push(1);
        let e = error(&gzip(&images), &gzip(&long));
        assert_contains(
            &e,
            "the header promises 3 bytes of data, but the file decompresses",
        );
        // A truncated header inside gzip is reported as a truncated header.
        let e = error(&gzip(&images[..10]), &labels);
        assert_contains(&e, "needs 16 bytes, found 10");
    }

    #[test]
    fn mnist_files_in_programs() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/data/mnist");
        let data = load_idx(
            &base.join("t10k-images-idx3-ubyte.gz"),
            &base.join("t10k-labels-idx1-ubyte.gz"),
            255.0,
        )
        .unwrap();
        assert_eq!((data.samples, data.features), (2000, 784));
        assert_eq!(data.shape, Some(vec![28, 28]));
        assert!(
            data.x
                .as_f32()
                .unwrap()
                .iter()
                .all(|v| (0.0..=1.0).contains(v))
        );
        let Labels::Classes(labels) = &data.labels else {
            panic!("class labels")
        };
        for class in 0..10 {
            assert!(labels.iter().filter(|&&l| l == class).count() > 100);
        }
    }
}
