//! CSV files: a small hand-written reader whose messages name line and column (see the parent
//! module for what it accepts).

use std::path::Path;

use std::collections::HashMap;

use super::category::{self, CategoryColumn, TableVocabulary, Tabular};
use super::*;
use crate::settings::{CategoryEncoding, Fill, LabelColumn, Loss};

/// Which columns are not features: the label's, and a column of per-sample weights.
#[derive(Clone, Copy)]
pub(super) struct Columns<'a> {
    pub label: &'a LabelColumn,
    pub weight: Option<&'a LabelColumn>,
    /// The feature columns in order; `None`: every other column.
    pub features: Option<&'a [LabelColumn]>,
    pub fill: Fill,
    /// Feature columns of categories, and how they become features.
    pub categorical: &'a [LabelColumn],
    pub encoding: CategoryEncoding,
    /// False for prediction: a label column named in the source but missing from the file's
    /// header is no error (the file is read as `label: none`).
    pub labels_required: bool,
}

/// One non-blank line of the file, split into trimmed cells.
#[derive(Clone, Copy)]
struct Row<'a> {
    /// 1-based line number in the file.
    line: usize,
    cells: Cells<'a>,
}

/// A row's cells, as slices of the table's text.
#[derive(Clone, Copy)]
struct Cells<'a> {
    text: &'a str,
    /// Where each cell ends in `text`.
    ends: &'a [u32],
}

impl<'a> Cells<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, col: usize) -> &'a str {
        let start = col.checked_sub(1).map_or(0, |c| self.ends[c] as usize);
        &self.text[start..self.ends[col] as usize]
    }
}

impl std::ops::Index<usize> for Cells<'_> {
    type Output = str;

    fn index(&self, col: usize) -> &str {
        self.get(col)
    }
}

/// The file's rows, their cells stored end to end in one string. A `String` per cell took
/// about 40 bytes for a 2-byte cell (a 22 MB file peaked at 854 MB); here a cell costs its
/// bytes and four more, and every allocation is fallible.
#[derive(Default)]
struct Table {
    text: String,
    /// Each cell's end, counted from its row's start in `text`.
    ends: Vec<u32>,
    /// Each row's line number, its start in `text` and its first cell in `ends`.
    rows: Vec<(usize, usize, usize)>,
}

impl Table {
    fn push(&mut self, line: usize, cells: &[String]) -> Result<(), AllocError> {
        let bytes: usize = cells.iter().map(String::len).sum();
        let too_large = |bytes: usize| AllocError {
            bytes: bytes as u128,
        };
        // A single row past 4 GiB is past any memory this could run in.
        u32::try_from(bytes).map_err(|_| too_large(bytes))?;
        self.text
            .try_reserve(bytes)
            .map_err(|_| too_large(self.text.len() + bytes))?;
        self.ends
            .try_reserve(cells.len())
            .map_err(|_| too_large((self.ends.len() + cells.len()) * 4))?;
        self.rows
            .try_reserve(1)
            .map_err(|_| too_large((self.rows.len() + 1) * 24))?;
        let start = self.text.len();
        self.rows.push((line, start, self.ends.len()));
        for cell in cells {
            self.text.push_str(cell);
            self.ends.push((self.text.len() - start) as u32);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn get(&self, index: usize) -> Option<Row<'_>> {
        let &(line, start, first) = self.rows.get(index)?;
        let (end, last) = self
            .rows
            .get(index + 1)
            .map_or((self.text.len(), self.ends.len()), |&(_, s, f)| (s, f));
        Some(Row {
            line,
            cells: Cells {
                text: &self.text[start..end],
                ends: &self.ends[first..last],
            },
        })
    }

    fn first(&self) -> Option<Row<'_>> {
        self.get(0)
    }

    fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn load_csv(
    path: &Path,
    columns: Columns,
    header: bool,
    delimiter: char,
    loss: Loss,
    integers: bool,
    tabular: Tabular,
) -> Result<(Dataset, Option<TableVocabulary>), DataError> {
    let origin = path.display().to_string();
    let bytes = super::read_regular(path, &origin, "the file")?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            return Err(DataError::at_line(
                &origin,
                line,
                "the file is not valid UTF-8 text; expected a CSV file of numbers",
            ));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse_csv(
        text, &origin, columns, header, delimiter, loss, integers, tabular,
    )
}

/// The file's lines, whatever ends them: `\n`, `\r\n`, or a lone `\r` (classic Mac files, which
/// `str::lines` reads as one line).
pub(super) fn csv_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match rest.as_bytes().get(end) {
            Some(b'\r') if rest.as_bytes().get(end + 1) == Some(&b'\n') => 2,
            Some(_) => 1,
            None => 0,
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

#[allow(clippy::too_many_arguments)]
fn parse_csv(
    text: &str,
    origin: &str,
    wanted: Columns,
    header: bool,
    delimiter: char,
    loss: Loss,
    integers: bool,
    tabular: Tabular,
) -> Result<(Dataset, Option<TableVocabulary>), DataError> {
    let (mut rows, mut header_row) = (Table::default(), None);
    let mut blank = true;
    for (index, line) in csv_lines(text).enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = index + 1;
        let cells = split_line(line, delimiter)
            .map_err(|message| DataError::at_line(origin, line_no, message))?;
        if header && blank {
            header_row = Some((line_no, cells));
        } else {
            rows.push(line_no, &cells)
                .map_err(|e| too_large(origin, "its cells", e))?;
        }
        blank = false;
    }
    if blank {
        return Err(DataError::new(
            origin,
            "the file is empty; expected rows of comma-separated numbers",
        ));
    }

    let header_line = header_row.as_ref().map(|(line, _)| *line);
    let names: Option<Vec<String>> = header_row.map(|(_, cells)| cells);
    let Some(first) = rows.first() else {
        return Err(DataError::new(
            origin,
            "the file has a header row but no data rows",
        ));
    };
    let columns = names.as_ref().map_or(first.cells.len(), Vec::len);
    if columns < 2 && wanted.label != &LabelColumn::None {
        return Err(DataError::at_line(
            origin,
            header_line.unwrap_or(first.line),
            format!(
                "found {columns} column; expected at least 2 (one or more features and a label)"
            ),
        ));
    }
    // `label: none`: no label column; every sample's label is a placeholder 0, which only
    // `predict` reads data of (the checker sees to that), and it ignores labels.
    let label_col = match wanted.label {
        LabelColumn::None => None,
        // Prediction reads a file without the label column as unlabelled, as `text_csv` does.
        LabelColumn::Name(name)
            if !wanted.labels_required && names.as_ref().is_some_and(|n| !n.contains(name)) =>
        {
            None
        }
        label => Some(label_column(
            "label",
            label,
            names.as_deref(),
            header_line,
            columns,
            origin,
        )?),
    };
    let weight_col = match wanted.weight {
        None => None,
        Some(weight) => Some(label_column(
            "weight",
            weight,
            names.as_deref(),
            header_line,
            columns,
            origin,
        )?),
    };
    if let Some(label) = label_col
        && weight_col == Some(label)
    {
        return Err(DataError::new(
            origin,
            format!("the weight column is the label column (column {label})"),
        ));
    }
    // The feature columns, in the order the program lists them (else every other column).
    let feature_cols: Vec<usize> = match wanted.features {
        None => (0..columns)
            .filter(|&c| Some(c) != label_col && Some(c) != weight_col)
            .collect(),
        Some(listed) => {
            let mut cols = Vec::with_capacity(listed.len());
            for column in listed {
                let col = label_column(
                    "feature",
                    column,
                    names.as_deref(),
                    header_line,
                    columns,
                    origin,
                )?;
                if Some(col) == label_col || Some(col) == weight_col || cols.contains(&col) {
                    return Err(DataError::new(
                        origin,
                        format!(
                            "feature column {col} is the label column, the weight column or \
                             listed twice"
                        ),
                    ));
                }
                cols.push(col);
            }
            cols
        }
    };
    if feature_cols.is_empty() {
        return Err(DataError::new(
            origin,
            "the file has a label and a weight column but no feature columns",
        ));
    }
    // The categorical columns: each one of the feature columns, by its place among them.
    let mut categories: Vec<(usize, String)> = Vec::new();
    for column in wanted.categorical {
        let col = label_column(
            "categorical",
            column,
            names.as_deref(),
            header_line,
            columns,
            origin,
        )?;
        let Some(position) = feature_cols.iter().position(|&c| c == col) else {
            return Err(DataError::new(
                origin,
                format!(
                    "categorical column {}{} is not a feature column",
                    col + 1,
                    names
                        .as_ref()
                        .map(|n| format!(" ('{}')", clip(&n[col])))
                        .unwrap_or_default()
                ),
            ));
        };
        let name = names
            .as_ref()
            .map_or_else(|| col.to_string(), |n| n[col].clone());
        if categories.iter().any(|(p, _)| *p == position) {
            return Err(DataError::new(
                origin,
                format!("categorical column '{}' is listed twice", clip(&name)),
            ));
        }
        categories.push((position, name));
    }
    categories.sort_by_key(|(position, _)| *position);
    for row in rows.iter() {
        if row.cells.len() != columns {
            return Err(DataError::at_line(
                origin,
                row.line,
                format!(
                    "expected {columns} columns, found {}{}",
                    row.cells.len(),
                    if header {
                        " (the header has that many)"
                    } else {
                        " (the first row has that many)"
                    }
                ),
            ));
        }
    }
    let column_name = |col: usize| {
        names
            .as_ref()
            .map(|n| format!(" (column '{}')", clip(&n[col])))
            .unwrap_or_default()
    };
    let kept = match tabular {
        Tabular::Keep(kept) => Some(kept),
        Tabular::Adapt(_) => None,
    };

    if let Some(None) = kept
        && !categories.is_empty()
    {
        return Err(DataError::new(
            origin,
            "the model has no vocabulary of categories yet: fit it on data with these \
             `categorical` columns, or load a checkpoint saved after such a fit, first",
        ));
    }
    // Labels and weights first: the training rows a vocabulary is adapted to depend on them.
    let label_cells = |col: usize| rows.iter().map(move |r| r.cells.get(col));
    // A label column of names: the model's class names, else those of every row.
    let class_names: Option<(String, Vec<String>)> = match (label_col, kept) {
        (_, Some(kept)) => kept.and_then(|k| k.classes.clone()),
        (Some(_), _) if !loss.uses_classes() => None,
        (None, _) => None,
        (Some(col), None) if category::holds_names(label_cells(col)) => Some((
            names
                .as_ref()
                .map_or_else(|| "class_name".to_string(), |n| n[col].clone()),
            category::class_names(label_cells(col)),
        )),
        (Some(_), None) => None,
    };
    let class_names = class_names.filter(|_| loss.uses_classes());
    let class_index: Option<HashMap<&str, i32>> = class_names.as_ref().map(|(_, names)| {
        (names.iter().enumerate())
            .map(|(i, n)| (n.as_str(), i as i32))
            .collect()
    });
    let mut classes = Vec::new();
    let mut targets = Vec::new();
    let mut weights = Vec::new();
    for row in rows.iter() {
        let at_cell =
            |col: usize, message: String| DataError::at_cell(origin, row.line, col + 1, message);
        let empty = |col: usize| {
            at_cell(
                col,
                format!("empty cell{}; expected a number", column_name(col)),
            )
        };
        match label_col {
            None => {
                classes.push(0);
                targets.push(0.0);
            }
            Some(label_col) => {
                let cell = &row.cells[label_col];
                if cell.is_empty() {
                    return Err(empty(label_col));
                }
                if let (Some(index), Some((_, names))) = (&class_index, &class_names) {
                    let class = index.get(cell).ok_or_else(|| {
                        at_cell(
                            label_col,
                            format!(
                                "class '{}' is not one of the model's classes ({})",
                                clip(cell),
                                listed(names)
                            ),
                        )
                    })?;
                    classes.push(*class);
                } else if loss.uses_classes() {
                    classes.push(parse_class(cell, loss).map_err(|mut message| {
                        if kept.is_some() && cell.parse::<f64>().is_err() {
                            message.push_str(
                                " (the model has no class names: it was trained on class numbers)",
                            );
                        }
                        at_cell(label_col, message)
                    })?);
                } else {
                    let value =
                        parse_number(cell).map_err(|message| at_cell(label_col, message))?;
                    if !value.is_finite() {
                        return Err(at_cell(
                            label_col,
                            format!("target '{}' is not a finite number", clip(cell)),
                        ));
                    }
                    targets.push(value);
                }
            }
        }
        if let Some(col) = weight_col {
            let cell = &row.cells[col];
            if cell.is_empty() {
                return Err(empty(col));
            }
            let weight = parse_weight(cell)
                .map_err(|message| at_cell(col, format!("{message}{}", column_name(col))))?;
            weights.push(weight);
        }
    }
    let labels = match loss.uses_classes() {
        true => Labels::Classes(classes),
        false => Labels::Targets {
            width: 1,
            values: targets,
        },
    };

    // The categories' vocabularies: the model's, else the training rows'.
    let columns_of = |position: usize| feature_cols[position];
    let vocabulary: Option<TableVocabulary> = match (tabular, kept) {
        (_, Some(Some(kept))) => {
            let learned: Vec<(usize, &str)> = (kept.columns.iter())
                .map(|c| (c.position, c.name.as_str()))
                .collect();
            let listed: Vec<(usize, &str)> =
                categories.iter().map(|(p, n)| (*p, n.as_str())).collect();
            // Without categories, only the class names carry over; the width is checked against
            // the model as for any data.
            let other_layout = !learned.is_empty() && kept.features != feature_cols.len();
            if learned != listed || other_layout {
                let names = |c: &[(usize, &str)]| {
                    if c.is_empty() {
                        "none".to_string()
                    } else {
                        let quoted: Vec<String> =
                            c.iter().map(|(_, n)| format!("'{}'", clip(n))).collect();
                        quoted.join(", ")
                    }
                };
                return Err(DataError::new(
                    origin,
                    format!(
                        "the model's categorical columns are {} among {} feature columns, but \
                         this data's are {} among {}; read it with the same `features` and \
                         `categorical`",
                        names(&learned),
                        kept.features,
                        names(&listed),
                        feature_cols.len()
                    ),
                ));
            }
            Some(TableVocabulary {
                classes: class_names,
                ..kept.clone()
            })
        }
        (Tabular::Keep(_), _) => class_names.map(|classes| TableVocabulary {
            features: feature_cols.len(),
            columns: Vec::new(),
            encoding: wanted.encoding,
            classes: Some(classes),
        }),
        (Tabular::Adapt(training), _) => {
            let training = if categories.is_empty() {
                Vec::new()
            } else {
                training(&labels, rows.len())?
            };
            let columns: Vec<CategoryColumn> = (categories.iter())
                .map(|(position, name)| {
                    let col = columns_of(*position);
                    let cells = training
                        .iter()
                        .filter_map(|&r| rows.get(r))
                        .map(|r| r.cells.get(col));
                    CategoryColumn::adapt(name.clone(), *position, cells)
                })
                .collect();
            (!columns.is_empty() || class_names.is_some()).then_some(TableVocabulary {
                features: feature_cols.len(),
                columns,
                encoding: wanted.encoding,
                classes: class_names,
            })
        }
    };
    let encoded: Vec<Option<(HashMap<&str, usize>, usize)>> = (0..feature_cols.len())
        .map(|position| {
            let vocabulary = vocabulary.as_ref()?;
            let column = vocabulary.columns.iter().find(|c| c.position == position)?;
            Some((column.index(), column.width(vocabulary.encoding)))
        })
        .collect();
    let features = vocabulary
        .as_ref()
        .filter(|v| !v.columns.is_empty())
        .map_or(feature_cols.len(), TableVocabulary::width);

    // Every row was checked to hold `columns` cells above.
    let len = rows.len() * features;
    let mut x = if integers {
        Features::I32(zeroed_features(len, origin)?)
    } else {
        Features::F32(zeroed_features(len, origin)?)
    };
    let mut stored = 0;
    // Where each missing feature was (its index in `x`, its column) when the program fills
    // them; filled once the columns' means are known.
    let mut gaps: Vec<(usize, usize)> = Vec::new();
    for row in rows.iter() {
        let at_cell =
            |col: usize, message: String| DataError::at_cell(origin, row.line, col + 1, message);
        let empty = |col: usize| {
            at_cell(
                col,
                format!("empty cell{}; expected a number", column_name(col)),
            )
        };
        for (position, &col) in feature_cols.iter().enumerate() {
            let cell = &row.cells[col];
            if let Some((index, width)) = &encoded[position] {
                let missing = super::timeseries::is_missing(cell);
                if missing && wanted.fill == Fill::Reject {
                    return Err(at_cell(
                        col,
                        format!(
                            "missing category '{}'{}; say how to fill gaps (`missing: \"mean\"` \
                             or a number makes it [UNK])",
                            clip(cell),
                            column_name(col)
                        ),
                    ));
                }
                let value = if missing {
                    category::UNKNOWN
                } else {
                    index.get(cell).copied().unwrap_or(category::UNKNOWN)
                };
                let encoding = vocabulary.as_ref().map(|v| v.encoding);
                let (at, one) = match encoding {
                    Some(CategoryEncoding::Index) => (stored, value),
                    _ => (stored + value, 1),
                };
                match &mut x {
                    Features::F32(x) => x[at] = one as f32,
                    Features::I32(x) => x[at] = one as i32,
                }
                stored += width;
                continue;
            }
            if super::timeseries::is_missing(cell) {
                if matches!(x, Features::I32(_)) && wanted.fill != Fill::Reject {
                    return Err(at_cell(
                        col,
                        format!(
                            "missing token id{}: token ids cannot be filled in",
                            column_name(col)
                        ),
                    ));
                }
                match wanted.fill {
                    Fill::Reject if cell.is_empty() => return Err(empty(col)),
                    Fill::Reject => {
                        return Err(at_cell(
                            col,
                            format!(
                                "missing value '{}'{}; expected a number (or say how to \
                                 fill gaps: `missing: \"mean\"` or `missing: 0`)",
                                clip(cell),
                                column_name(col)
                            ),
                        ));
                    }
                    Fill::Constant(value) => {
                        if let Features::F32(x) = &mut x {
                            x[stored] = value;
                        }
                    }
                    Fill::Mean => gaps.push((stored, col)),
                }
                stored += 1;
                continue;
            }
            // A word in a column of numbers is most often a column of categories.
            let not_a_number = |message: String| {
                let hint = if cell.parse::<f64>().is_err() && cell.chars().any(char::is_alphabetic)
                {
                    "; a column of categories? list it in `categorical: [...]`"
                } else {
                    ""
                };
                at_cell(col, format!("{message}{}{hint}", column_name(col)))
            };
            let x = match &mut x {
                Features::I32(ids) => {
                    let value: f64 = cell.parse().map_err(|_| {
                        not_a_number(format!("cannot read '{}' as a number", clip(cell)))
                    })?;
                    ids[stored] = token_id(value).map_err(|why| {
                        at_cell(
                            col,
                            format!(
                                "feature value '{}'{} is {why}",
                                clip(cell),
                                column_name(col)
                            ),
                        )
                    })?;
                    stored += 1;
                    continue;
                }
                Features::F32(x) => x,
            };
            let value = parse_number(cell).map_err(not_a_number)?;
            if !value.is_finite() {
                return Err(at_cell(
                    col,
                    format!(
                        "feature value '{}'{} is not finite; expected a finite number",
                        clip(cell),
                        column_name(col)
                    ),
                ));
            }
            x[stored] = value;
            stored += 1;
        }
    }
    if let Features::F32(x) = &mut x {
        fill_means(x, features, &gaps, origin, names.as_deref())?;
    }

    Ok((
        Dataset {
            samples: rows.len(),
            features,
            shape: None,
            x,
            labels,
            origin: origin.to_string(),
            labels_origin: origin.to_string(),
            last_values: None,
            weights: weight_col.map(|_| weights),
        },
        vocabulary,
    ))
}

/// Names as a message lists them: the first ten, then how many more.
fn listed(names: &[String]) -> String {
    let mut text: Vec<String> = names
        .iter()
        .take(10)
        .map(|n| format!("'{}'", clip(n)))
        .collect();
    if names.len() > 10 {
        text.push(format!("and {} more", names.len() - 10));
    }
    text.join(", ")
}

/// Puts in each gap (`(index in x, column)`) the mean of its column's other values, as
/// scikit-learn's `SimpleImputer(strategy="mean")` does; a column with no value to average is
/// an error.
fn fill_means(
    x: &mut [f32],
    features: usize,
    gaps: &[(usize, usize)],
    origin: &str,
    names: Option<&[String]>,
) -> Result<(), DataError> {
    if gaps.is_empty() {
        return Ok(());
    }
    let mut missing = vec![false; x.len()];
    for &(at, _) in gaps {
        missing[at] = true;
    }
    let mut sums = vec![(0.0f64, 0usize); features];
    for (i, (&v, &gap)) in x.iter().zip(&missing).enumerate() {
        if !gap {
            sums[i % features].0 += f64::from(v);
            sums[i % features].1 += 1;
        }
    }
    for &(at, col) in gaps {
        let (sum, count) = sums[at % features];
        if count == 0 {
            let name = names.map_or(String::new(), |n| format!(" ('{}')", clip(&n[col])));
            return Err(DataError::new(
                origin,
                format!(
                    "column {}{name} has no values, so `missing: \"mean\"` has no mean to fill it with",
                    col + 1
                ),
            ));
        }
        x[at] = (sum / count as f64) as f32;
    }
    Ok(())
}

/// A sample's weight: a finite number zero or more, as Keras's `sample_weight` must be.
fn parse_weight(cell: &str) -> Result<f32, String> {
    let value = parse_number(cell)?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "sample weight '{}' must be a finite number zero or more",
            clip(cell)
        ))
    }
}

/// Splits one line at commas, trimming each cell and unwrapping double-quoted cells.
pub(super) fn split_line(line: &str, delimiter: char) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        // Skip leading whitespace of the cell (but not a tab that delimits).
        while chars
            .peek()
            .is_some_and(|&c| c.is_whitespace() && c != delimiter)
        {
            chars.next();
        }
        let mut cell = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        cell.push('"');
                    }
                    Some('"') => break,
                    Some(c) => cell.push(c),
                    None => {
                        return Err(format!(
                            "cell {} opens a quote that the line never closes",
                            cells.len() + 1
                        ));
                    }
                }
            }
            while chars.peek().is_some_and(|&c| c != delimiter) {
                let c = chars.next().unwrap_or(' ');
                if !c.is_whitespace() {
                    return Err(format!(
                        "cell {} has text after its closing quote; expected the delimiter {:?}",
                        cells.len() + 1,
                        delimiter
                    ));
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == delimiter {
                    break;
                }
                cell.push(c);
                chars.next();
            }
            cell.truncate(cell.trim_end().len());
        }
        cells.push(cell.trim().to_string());
        match chars.next() {
            Some(c) if c == delimiter => continue,
            _ => break,
        }
    }
    Ok(cells)
}

pub(super) fn parse_number(cell: &str) -> Result<f32, String> {
    cell.parse::<f32>()
        .map_err(|_| format!("cannot read '{}' as a number", clip(cell)))
}

fn parse_class(raw: &str, loss: Loss) -> Result<i32, String> {
    let cell = clip(raw);
    let classes = if loss == Loss::BinaryCrossentropy {
        "0 or 1"
    } else {
        "0, 1, 2, …"
    };
    let not_class = || {
        format!(
            "class label '{}' is not a non-negative integer; {} needs class labels {classes}",
            clip(&cell),
            loss.name(),
        )
    };
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("cannot read class label '{}' as a number", clip(&cell)))?;
    // A fraction is a measurement, not a class: say so, and what trains on one.
    if value.is_finite() && value.fract() != 0.0 {
        return Err(format!(
            "label '{}' is a real number, but {} is a classification loss, whose labels \
             must be {classes}; for real-valued targets use `loss mean_squared_error`",
            clip(&cell),
            loss.name()
        ));
    }
    if !value.is_finite() || value < 0.0 || value.fract() != 0.0 || value > i32::MAX as f64 {
        return Err(not_class());
    }
    Ok(value as i32)
}

/// The zero-based index of the column `label` names; `what` names the argument in messages
/// (`label` for `csv`, `column` for `timeseries_csv`).
pub(super) fn label_column(
    what: &str,
    label: &LabelColumn,
    names: Option<&[String]>,
    header_line: Option<usize>,
    columns: usize,
    origin: &str,
) -> Result<usize, DataError> {
    match label {
        LabelColumn::Last => Ok(columns - 1),
        LabelColumn::None => Err(DataError::new(
            origin,
            format!("the {what} column cannot be `none`"),
        )),
        LabelColumn::Index(index) => {
            if *index < columns {
                Ok(*index)
            } else {
                Err(DataError::new(
                    origin,
                    format!(
                        "{what} column index {index} is out of range: the file has {columns} \
                         columns, numbered 0..{}",
                        columns - 1
                    ),
                ))
            }
        }
        LabelColumn::Name(name) => {
            let Some(names) = names else {
                return Err(DataError::new(
                    origin,
                    format!(
                        "the label column is named '{}', but the file is read without a \
                         header row (header: false); name it by index instead, or set header: true",
                        clip(name)
                    ),
                ));
            };
            if let Some(index) = names.iter().position(|n| n == name) {
                return Ok(index);
            }
            // A header of thousands of columns is named by its first few.
            const LISTED: usize = 20;
            let mut listed = names
                .iter()
                .take(LISTED)
                .map(|n| format!("'{}'", clip(n)))
                .collect::<Vec<_>>()
                .join(", ");
            if names.len() > LISTED {
                listed.push_str(&format!(" and {} more", names.len() - LISTED));
            }
            let mut message = format!(
                "no column named '{}' in the header; the columns are {listed}",
                clip(name)
            );
            if let Some(close) = closest(name, names) {
                message.push_str(&format!("; did you mean '{close}'?"));
            }
            Err(DataError {
                line: header_line,
                ..DataError::new(origin, message)
            })
        }
    }
}

/// The header name closest to `name`, if it is close enough to be a likely typo.
pub(super) fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    crate::suggest::closest_within(name, names.iter().map(String::as_str), |n| {
        2.max(n.chars().count() / 3)
    })
}
