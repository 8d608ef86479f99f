//! `text_csv`: Keras's `TextVectorization` (output mode `int`) over a CSV column of raw text,
//! and class names from another column.
//!
//! * Standardization, as Keras's: `lower` lower-cases (Unicode); `strip_punctuation` removes
//!   every ASCII punctuation character (Keras's pattern, the apostrophe included: "don't"
//!   becomes "dont").
//! * Tokens: runs of non-whitespace (`whitespace`), or every character, spaces included
//!   (`character`).
//! * The vocabulary: id 0 is padding, id 1 `[UNK]`, then the `max_tokens − 2` most frequent
//!   tokens of the *training* samples (after a `validation_split`, the samples before it), most
//!   frequent first, equal counts in byte order of the token (so the vocabulary depends only on
//!   the text, not on the order of rows). A token outside it is 1.
//! * Each sample's ids are truncated to `output_sequence_length`, or padded with 0 after them.
//! * Classes: the label column's distinct names in byte order (`"art" < "computers" < …`,
//!   `"10" < "2"`); a label's class is its index. They are taken from every row of the file a
//!   fit trains on, held-out rows included, so a class seen only there still has an id.
//!
//! The vocabulary and class names stay with the model (and its checkpoints), and evaluation and
//! prediction on other files use them: a token they never saw is `[UNK]`, a class name they
//! do not know is an error naming the line.

use std::collections::HashMap;
use std::path::Path;

use super::csv::{closest, csv_lines, split_line};
use super::*;
use crate::settings::{TextSource, TextSplit, TextStandardize};

/// What a model keeps of the text it was trained on: the vocabulary and the class names, and
/// how text was made into tokens, which data vectorized with it must share.
#[derive(Clone, Debug, PartialEq)]
pub struct TextVocabulary {
    /// The tokens with ids 2, 3, …; 0 (padding) and 1 (`[UNK]`) are implicit.
    pub tokens: Vec<String>,
    /// Class names in byte order; a label's class is its index.
    pub classes: Vec<String>,
    pub split: TextSplit,
    pub standardize: TextStandardize,
}

/// The id of a token outside the vocabulary (Keras's `[UNK]`).
pub const UNKNOWN: i32 = 1;

/// The rows of a text CSV file: each sample's text and, when the file has the column, its
/// class name, with the line each came from.
#[derive(Clone, Debug, PartialEq)]
pub struct TextRows {
    pub origin: String,
    pub texts: Vec<String>,
    pub labels: Option<Vec<String>>,
    pub lines: Vec<usize>,
}

/// Lower-cases and/or strips ASCII punctuation, as `standardize` says.
pub fn standardize(text: &str, how: TextStandardize) -> String {
    let (lower, strip) = match how {
        TextStandardize::LowerAndStripPunctuation => (true, true),
        TextStandardize::Lower => (true, false),
        TextStandardize::StripPunctuation => (false, true),
        TextStandardize::None => (false, false),
    };
    let text = if lower {
        text.to_lowercase()
    } else {
        text.to_string()
    };
    if strip {
        text.chars().filter(|c| !c.is_ascii_punctuation()).collect()
    } else {
        text
    }
}

/// The standardized text's tokens.
pub fn tokens(text: &str, split: TextSplit, how: TextStandardize) -> Vec<String> {
    let text = standardize(text, how);
    match split {
        TextSplit::Whitespace => text.split_whitespace().map(str::to_string).collect(),
        TextSplit::Character => text.chars().map(String::from).collect(),
    }
}

impl TextVocabulary {
    /// Keras's `adapt`: the most frequent tokens of `texts` (ties in byte order), at most
    /// `max_tokens − 2` of them; `classes`, the distinct names of `labels`.
    pub fn adapt(
        texts: &[String],
        labels: &[String],
        max_tokens: Option<usize>,
        split: TextSplit,
        standardize: TextStandardize,
    ) -> TextVocabulary {
        let tokens = texts
            .iter()
            .flat_map(|text| tokens(text, split, standardize));
        Self::adapt_tokens(tokens, labels, max_tokens, split, standardize)
    }

    /// `adapt` over tokens already made from the text.
    pub fn adapt_tokens(
        tokens: impl IntoIterator<Item = String>,
        labels: &[String],
        max_tokens: Option<usize>,
        split: TextSplit,
        standardize: TextStandardize,
    ) -> TextVocabulary {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for token in tokens {
            *counts.entry(token).or_default() += 1;
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
        ranked.sort_by(|(a, m), (b, n)| n.cmp(m).then_with(|| a.cmp(b)));
        let keep = max_tokens.map_or(ranked.len(), |n| n.saturating_sub(2));
        ranked.truncate(keep);
        let mut classes = labels.to_vec();
        classes.sort();
        classes.dedup();
        TextVocabulary {
            tokens: ranked.into_iter().map(|(token, _)| token).collect(),
            classes,
            split,
            standardize,
        }
    }

    /// `text`'s ids, padded with 0 or truncated to `length`.
    pub fn ids(&self, text: &str, length: usize, index: &HashMap<&str, i32>) -> Vec<i32> {
        let mut ids: Vec<i32> = tokens(text, self.split, self.standardize)
            .iter()
            .take(length)
            .map(|t| index.get(t.as_str()).copied().unwrap_or(UNKNOWN))
            .collect();
        ids.resize(length, 0);
        ids
    }

    /// Token → id.
    pub fn index(&self) -> HashMap<&str, i32> {
        (self.tokens.iter().enumerate())
            .map(|(i, t)| (t.as_str(), i as i32 + 2))
            .collect()
    }

    /// Why data described by `source` (read from `origin`) cannot be vectorized with this
    /// vocabulary, if it cannot: it must make tokens the same way, and its `max_tokens` must
    /// hold the vocabulary.
    pub fn check_source(&self, source: &TextSource, origin: &str) -> Result<(), DataError> {
        let differs = |what: &str, kept: &str, data: &str| {
            DataError::new(
                origin,
                format!(
                    "the model's vocabulary was built with {what} \"{kept}\", but this data \
                     uses \"{data}\"; text must be tokenized as the model was trained (set \
                     `{what}: \"{kept}\"`)"
                ),
            )
        };
        if self.split != source.split {
            return Err(differs("split", self.split.name(), source.split.name()));
        }
        if self.standardize != source.standardize {
            return Err(differs(
                "standardize",
                self.standardize.name(),
                source.standardize.name(),
            ));
        }
        if let Some(max_tokens) = source.max_tokens
            && self.tokens.len() + 2 > max_tokens
        {
            return Err(DataError::new(
                origin,
                format!(
                    "the model's vocabulary has {} tokens with padding and [UNK], more than this \
                     data's max_tokens {max_tokens}; set max_tokens to at least {0}, or remove it",
                    self.tokens.len() + 2
                ),
            ));
        }
        Ok(())
    }
}

/// Reads the text column and, when present, the label column of a CSV file with a header row.
/// `labels_required`: a missing label column is an error (training and evaluation), else the
/// rows have no labels (prediction).
pub fn read_rows(
    path: &Path,
    source: &TextSource,
    labels_required: bool,
) -> Result<TextRows, DataError> {
    let origin = path.display().to_string();
    let text = read_text(path)?;
    parse_rows(&text, &origin, source, labels_required)
}

/// A UTF-8 text file's contents, without a byte-order mark.
pub fn read_text(path: &Path) -> Result<String, DataError> {
    let origin = path.display().to_string();
    let bytes = read_regular(path, &origin, "the file")?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        DataError::at_line(&origin, line, "the file is not valid UTF-8 text")
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// How many windows of `length` tokens, `stride` apart, a text of `tokens` tokens holds, each
/// with a next token after it.
pub fn window_count(tokens: usize, length: usize, stride: usize) -> usize {
    match tokens.checked_sub(length + 1) {
        Some(room) => room / stride.max(1) + 1,
        None => 0,
    }
}

/// `text_windows`: every window of `length` tokens starting a multiple of `stride` into
/// `tokens`, labelled with the id of the token after it.
pub fn windows(
    tokens: &[String],
    vocabulary: &TextVocabulary,
    (length, stride): (usize, usize),
    origin: &str,
) -> Result<Dataset, DataError> {
    let count = window_count(tokens.len(), length, stride);
    if count == 0 {
        return Err(DataError::new(
            origin,
            format!(
                "the text holds {} tokens, too few for one window of {length} and the token \
                 after it",
                tokens.len()
            ),
        ));
    }
    let index = vocabulary.index();
    let ids: Vec<i32> = tokens
        .iter()
        .map(|t| index.get(t.as_str()).copied().unwrap_or(UNKNOWN))
        .collect();
    let mut x = Buffer::zeroed(count * length).map_err(|e| too_large(origin, "its windows", e))?;
    let mut labels = Vec::with_capacity(count);
    for (w, row) in x.chunks_exact_mut(length).enumerate() {
        let start = w * stride;
        row.copy_from_slice(&ids[start..start + length]);
        labels.push(ids[start + length]);
    }
    Ok(Dataset {
        samples: count,
        features: length,
        shape: None,
        x: Features::I32(x),
        labels: Labels::Classes(labels),
        origin: origin.to_string(),
        labels_origin: origin.to_string(),
        last_values: None,
        weights: None,
    })
}

/// The text a generated id stands for: `""` for padding, `[UNK]`, or its token.
impl TextVocabulary {
    pub fn token(&self, id: usize) -> &str {
        match id {
            0 => "",
            1 => "[UNK]",
            _ => self.tokens.get(id - 2).map_or("[UNK]", String::as_str),
        }
    }
}

fn parse_rows(
    text: &str,
    origin: &str,
    source: &TextSource,
    labels_required: bool,
) -> Result<TextRows, DataError> {
    let mut lines = csv_lines(text)
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(DataError::new(
            origin,
            format!(
                "the file is empty; expected a header row naming the `{}` column",
                source.text
            ),
        ));
    };
    let names = split_line(header, ',').map_err(|m| DataError::at_line(origin, header_line, m))?;
    let column = |name: &str, what: &str| -> Result<usize, DataError> {
        names.iter().position(|n| n == name).ok_or_else(|| {
            let listed: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            let mut message = format!(
                "no {what} column named '{name}' in the header; the columns are {}",
                listed.join(", ")
            );
            if let Some(close) = closest(name, &names) {
                message.push_str(&format!("; did you mean '{close}'?"));
            }
            DataError::at_line(origin, header_line, message)
        })
    };
    let text_at = column(&source.text, "text")?;
    let label_at = match column(&source.label, "label") {
        Ok(at) => Some(at),
        Err(e) if labels_required => return Err(e),
        Err(_) => None,
    };
    let mut rows = TextRows {
        origin: origin.to_string(),
        texts: Vec::new(),
        labels: label_at.map(|_| Vec::new()),
        lines: Vec::new(),
    };
    for (line, content) in lines {
        let cells = split_line(content, ',').map_err(|m| DataError::at_line(origin, line, m))?;
        if cells.len() != names.len() {
            return Err(DataError::at_line(
                origin,
                line,
                format!(
                    "the row has {} cell{}, but the header names {} column{} (a text with \
                     commas must be in double quotes)",
                    cells.len(),
                    plural(cells.len()),
                    names.len(),
                    plural(names.len())
                ),
            ));
        }
        let empty = |at: usize, what: &str| {
            DataError::at_cell(
                origin,
                line,
                at + 1,
                format!("the {what} cell is empty; every sample needs one"),
            )
        };
        if cells[text_at].is_empty() {
            return Err(empty(text_at, "text"));
        }
        rows.texts.push(cells[text_at].clone());
        if let (Some(at), Some(labels)) = (label_at, rows.labels.as_mut()) {
            if cells[at].is_empty() {
                return Err(empty(at, "label"));
            }
            labels.push(cells[at].clone());
        }
        rows.lines.push(line);
    }
    Ok(rows)
}

/// The rows as a data set of `output_sequence_length` ids per sample and class labels
/// (`Classes` of 0 when the file has no labels: prediction reads none).
pub fn vectorize(
    rows: &TextRows,
    vocabulary: &TextVocabulary,
    length: usize,
) -> Result<Dataset, DataError> {
    let index = vocabulary.index();
    let mut ids = Buffer::zeroed(rows.texts.len() * length)
        .map_err(|e| too_large(&rows.origin, "its token ids", e))?;
    for (row, text) in ids.chunks_exact_mut(length.max(1)).zip(&rows.texts) {
        row.copy_from_slice(&vocabulary.ids(text, length, &index));
    }
    let classes = match &rows.labels {
        None => vec![0; rows.texts.len()],
        Some(labels) => (labels.iter().zip(&rows.lines))
            .map(|(name, &line)| {
                vocabulary
                    .classes
                    .binary_search(name)
                    .map(|class| class as i32)
                    .map_err(|_| {
                        DataError::at_line(
                            &rows.origin,
                            line,
                            format!(
                                "label '{name}' is not one of the model's classes ({})",
                                vocabulary.classes.join(", ")
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Dataset {
        samples: rows.texts.len(),
        features: length,
        shape: None,
        x: Features::I32(ids),
        labels: Labels::Classes(classes),
        origin: rows.origin.clone(),
        labels_origin: rows.origin.clone(),
        last_values: None,
        weights: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(max_tokens: Option<usize>, length: usize) -> TextSource {
        TextSource {
            path: "t.csv".to_string(),
            text: "text".to_string(),
            label: "topic".to_string(),
            max_tokens,
            output_sequence_length: length,
            split: TextSplit::Whitespace,
            standardize: TextStandardize::LowerAndStripPunctuation,
            windows: None,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn standardization_lowers_and_strips_ascii_punctuation() {
        let s = "Don't PANIC! (42), Zoë-Ünïcode.";
        assert_eq!(
            standardize(s, TextStandardize::LowerAndStripPunctuation),
            "dont panic 42 zoëünïcode"
        );
        assert_eq!(
            standardize(s, TextStandardize::Lower),
            "don't panic! (42), zoë-ünïcode."
        );
        assert_eq!(
            standardize(s, TextStandardize::StripPunctuation),
            "Dont PANIC 42 ZoëÜnïcode"
        );
        assert_eq!(standardize(s, TextStandardize::None), s);
    }

    #[test]
    fn tokens_are_words_or_characters() {
        let how = TextStandardize::LowerAndStripPunctuation;
        assert_eq!(
            tokens("  Hello,\tworld  again ", TextSplit::Whitespace, how),
            strings(&["hello", "world", "again"])
        );
        assert_eq!(
            tokens("Ab, c", TextSplit::Character, how),
            strings(&["a", "b", " ", "c"])
        );
    }

    #[test]
    fn vocabulary_is_most_frequent_first_ties_in_byte_order() {
        let texts = strings(&["b a c", "c b d", "c e"]);
        let v = TextVocabulary::adapt(
            &texts,
            &strings(&["x", "y", "x"]),
            None,
            TextSplit::Whitespace,
            TextStandardize::None,
        );
        // c: 3, b: 2, then a, d, e once each in byte order.
        assert_eq!(v.tokens, strings(&["c", "b", "a", "d", "e"]));
        assert_eq!(v.classes, strings(&["x", "y"]));
        // max_tokens counts padding and [UNK]: 4 keeps two tokens.
        let v = TextVocabulary::adapt(
            &texts,
            &[],
            Some(4),
            TextSplit::Whitespace,
            TextStandardize::None,
        );
        assert_eq!(v.tokens, strings(&["c", "b"]));
        // Row order does not change it.
        let reversed: Vec<String> = texts.iter().rev().cloned().collect();
        let w = TextVocabulary::adapt(
            &reversed,
            &[],
            Some(4),
            TextSplit::Whitespace,
            TextStandardize::None,
        );
        assert_eq!(v, w);
    }

    #[test]
    fn unknown_tokens_are_one_and_samples_are_padded_or_truncated() {
        let v = TextVocabulary::adapt(
            &strings(&["the cat", "the dog"]),
            &[],
            None,
            TextSplit::Whitespace,
            TextStandardize::LowerAndStripPunctuation,
        );
        assert_eq!(v.tokens, strings(&["the", "cat", "dog"]));
        let index = v.index();
        assert_eq!(v.ids("The bird!", 4, &index), vec![2, UNKNOWN, 0, 0]);
        assert_eq!(v.ids("dog cat the dog the", 3, &index), vec![4, 3, 2]);
        assert_eq!(v.ids("...", 2, &index), vec![0, 0]);
    }

    #[test]
    fn rows_read_quoted_text_and_optional_labels() {
        let csv = "text,topic\n\"Hi, there\",b\nbye,a\n";
        let rows = parse_rows(csv, "t.csv", &source(None, 3), true).unwrap();
        assert_eq!(rows.texts, strings(&["Hi, there", "bye"]));
        assert_eq!(rows.labels, Some(strings(&["b", "a"])));
        assert_eq!(rows.lines, vec![2, 3]);
        let v = TextVocabulary::adapt(
            &rows.texts,
            rows.labels.as_deref().unwrap(),
            None,
            TextSplit::Whitespace,
            TextStandardize::LowerAndStripPunctuation,
        );
        let set = vectorize(&rows, &v, 3).unwrap();
        assert_eq!(set.labels, Labels::Classes(vec![1, 0]));
        // Prediction reads a file with no label column.
        let rows = parse_rows("text\nhello\n", "n.csv", &source(None, 3), false).unwrap();
        assert_eq!(rows.labels, None);
        assert_eq!(
            vectorize(&rows, &v, 3).unwrap().labels,
            Labels::Classes(vec![0])
        );
    }

    #[test]
    fn bad_rows_are_errors_naming_the_place() {
        let err = |csv: &str, labels: bool| {
            parse_rows(csv, "t.csv", &source(None, 3), labels)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("txt,topic\na,b\n", true),
            "t.csv: line 1: no text column named 'text' in the header; the columns are 'txt', \
             'topic'; did you mean 'txt'?"
        );
        assert_eq!(
            err("text\na\n", true),
            "t.csv: line 1: no label column named 'topic' in the header; the columns are 'text'"
        );
        assert_eq!(
            err("text,topic\n\"\",b\n", true),
            "t.csv: line 2, column 1: the text cell is empty; every sample needs one"
        );
        assert_eq!(
            err("text,topic\na,b\nc,d,e\n", true),
            "t.csv: line 3: the row has 3 cells, but the header names 2 columns (a text with \
             commas must be in double quotes)"
        );
        let rows = parse_rows("text,topic\na,zzz\n", "e.csv", &source(None, 3), true).unwrap();
        let v = TextVocabulary::adapt(
            &[],
            &strings(&["x", "y"]),
            None,
            TextSplit::Whitespace,
            TextStandardize::None,
        );
        assert_eq!(
            vectorize(&rows, &v, 3).unwrap_err().to_string(),
            "e.csv: line 2: label 'zzz' is not one of the model's classes (x, y)"
        );
    }

    #[test]
    fn a_vocabulary_must_tokenize_as_the_data_does() {
        let v = TextVocabulary::adapt(
            &strings(&["a b c"]),
            &[],
            None,
            TextSplit::Whitespace,
            TextStandardize::LowerAndStripPunctuation,
        );
        assert!(v.check_source(&source(None, 3), "d.csv").is_ok());
        let mut chars = source(None, 3);
        chars.split = TextSplit::Character;
        assert_eq!(
            v.check_source(&chars, "d.csv").unwrap_err().to_string(),
            "d.csv: the model's vocabulary was built with split \"whitespace\", but this data \
             uses \"character\"; text must be tokenized as the model was trained (set `split: \
             \"whitespace\"`)"
        );
        assert_eq!(
            v.check_source(&source(Some(4), 3), "d.csv")
                .unwrap_err()
                .to_string(),
            "d.csv: the model's vocabulary has 5 tokens with padding and [UNK], more than this \
             data's max_tokens 4; set max_tokens to at least 5, or remove it"
        );
    }
}
