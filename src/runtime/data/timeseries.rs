//! `timeseries_csv`: windows over CSV columns, as Keras's `timeseries_dataset_from_array`.
//!
//! The file has a header row; every other non-blank row is one time step, in file order (dates
//! are not read, so a skipped date is not noticed). A cell that is empty, `NA`, `N/A` or `NaN`
//! (any case) is missing, and the `missing` rule decides what it becomes, column by column.
//! Window `i` starts at row `s = i · sequence_stride` and holds rows
//! `s, s + r, …, s + (sequence_length − 1)·r` (`r = sampling_rate`), each row's `features`
//! values in order (row-major `[sequence_length, features]`); its target is `column`'s value
//! `target_offset` rows after the window's last. There is a window for every start whose target
//! lies in the series, so the last window is the one whose target is at or before the last row.

use std::path::Path;

use super::csv::{csv_lines, label_column, parse_number, split_line};
use super::*;
use crate::settings::{LabelColumn, Missing};

/// How to cut windows from a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Windows {
    pub sequence_length: usize,
    pub target_offset: usize,
    pub sequence_stride: usize,
    pub sampling_rate: usize,
}

pub(super) fn load_timeseries(
    path: &Path,
    column: &LabelColumn,
    features: &[LabelColumn],
    windows: Windows,
    missing: Missing,
    delimiter: char,
) -> Result<Dataset, DataError> {
    let origin = path.display().to_string();
    let bytes = super::read_regular(path, &origin, "the file")?;
    let text = String::from_utf8(bytes).map_err(|_| {
        DataError::new(
            &origin,
            "the file is not valid UTF-8 text; expected a CSV file",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let columns: Vec<&LabelColumn> = std::iter::once(column).chain(features).collect();
    let (values, lines) = read_columns(text, &origin, &columns, delimiter)?;
    let mut filled = values
        .iter()
        .map(|v| fill(v, &lines, missing, &origin))
        .collect::<Result<Vec<_>, _>>()?;
    let target = filled.remove(0);
    cut(&target, &filled, windows, &origin)
}

/// One column's cells, `None` where a value is missing.
type Column = Vec<Option<f32>>;

/// Each column's cells as numbers (`None` where missing) and the line each row came from.
fn read_columns(
    text: &str,
    origin: &str,
    columns: &[&LabelColumn],
    delimiter: char,
) -> Result<(Vec<Column>, Vec<usize>), DataError> {
    let mut rows = csv_lines(text)
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            split_line(line, delimiter)
                .map(|cells| (index + 1, cells))
                .map_err(|message| DataError::at_line(origin, index + 1, message))
        });
    let Some(header) = rows.next() else {
        return Err(DataError::new(
            origin,
            "the file is empty; expected a header row and one row per time step",
        ));
    };
    let (header_line, names) = header?;
    // The first column is the target (`column`), the rest the features.
    let at = columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let what = if i == 0 { "column" } else { "features" };
            label_column(
                what,
                column,
                Some(&names),
                Some(header_line),
                names.len(),
                origin,
            )
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let (mut values, mut lines) = (vec![Vec::new(); at.len()], Vec::new());
    for row in rows {
        let (line, cells) = row?;
        for (&at, values) in at.iter().zip(&mut values) {
            let name = clip(&names[at]);
            let Some(cell) = cells.get(at) else {
                return Err(DataError::at_line(
                    origin,
                    line,
                    format!(
                        "found {} cell{}, so no column '{name}' (column {})",
                        cells.len(),
                        plural(cells.len()),
                        at + 1
                    ),
                ));
            };
            let value = if is_missing(cell) {
                None
            } else {
                let value = parse_number(cell).map_err(|message| {
                    DataError::at_cell(origin, line, at + 1, format!("{message} (column '{name}')"))
                })?;
                if !value.is_finite() {
                    return Err(DataError::at_cell(
                        origin,
                        line,
                        at + 1,
                        format!("'{}' (column '{name}') is not a finite number", clip(cell)),
                    ));
                }
                Some(value)
            };
            values.push(value);
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(DataError::new(
            origin,
            "the file has a header row but no data rows",
        ));
    }
    Ok((values, lines))
}

/// Whether a cell stands for a missing value: empty, `NA`, `N/A` or `NaN`, in any case.
pub(super) fn is_missing(cell: &str) -> bool {
    ["", "na", "n/a", "nan"]
        .iter()
        .any(|m| cell.eq_ignore_ascii_case(m))
}

/// The series with its missing values filled by `rule`; `lines[i]` is row `i`'s line.
fn fill(
    values: &[Option<f32>],
    lines: &[usize],
    rule: Missing,
    origin: &str,
) -> Result<Vec<f32>, DataError> {
    let gap =
        |at: usize, why: &str| DataError::at_line(origin, lines[at], format!("missing value{why}"));
    let mut series = Vec::with_capacity(values.len());
    for (at, value) in values.iter().enumerate() {
        let filled = match (value, rule) {
            (Some(v), _) => *v,
            (None, Missing::Reject) => {
                return Err(gap(
                    at,
                    "; fill gaps with `missing: \"previous\"` or `missing: \"interpolate\"`",
                ));
            }
            (None, Missing::Previous) => match series.last() {
                Some(&previous) => previous,
                None => return Err(gap(at, " at the start of the series: nothing precedes it")),
            },
            (None, Missing::Interpolate) => {
                let (Some(&before), Some(after)) =
                    (series.last(), values[at..].iter().position(Option::is_some))
                else {
                    let end = if at == 0 { "start" } else { "end" };
                    return Err(gap(
                        at,
                        &format!(
                            " at the {end} of the series: interpolation needs a value on each side"
                        ),
                    ));
                };
                // The straight line from the value before the gap (row at − 1) to the next
                // one (row at + after), evaluated at this row, in f64.
                let next = f64::from(values[at + after].unwrap_or_default());
                let t = 1.0 / (after as f64 + 1.0);
                (f64::from(before) + (next - f64::from(before)) * t) as f32
            }
        };
        series.push(filled);
    }
    Ok(series)
}

/// The windows over the `features` series and their targets from `series` (see the module's
/// documentation); every series is as long as `series`.
fn cut(
    series: &[f32],
    features: &[Vec<f32>],
    w: Windows,
    origin: &str,
) -> Result<Dataset, DataError> {
    // Rows from a window's start to its target.
    let span = (w.sequence_length - 1) * w.sampling_rate + w.target_offset;
    if span >= series.len() {
        return Err(DataError::new(
            origin,
            format!(
                "the series has {} value{}, but one window and its target span {} (sequence_length \
                 {}, sampling_rate {}, target_offset {}); shorten the window or use a longer series",
                series.len(),
                plural(series.len()),
                span + 1,
                w.sequence_length,
                w.sampling_rate,
                w.target_offset
            ),
        ));
    }
    let samples = (series.len() - 1 - span) / w.sequence_stride + 1;
    let width = features.len();
    let mut x = zeroed_features(samples * w.sequence_length * width, origin)?;
    let mut targets = Vec::with_capacity(samples);
    let mut last_values = Vec::with_capacity(samples);
    for (i, window) in x.chunks_exact_mut(w.sequence_length * width).enumerate() {
        let start = i * w.sequence_stride;
        for (k, step) in window.chunks_exact_mut(width).enumerate() {
            for (v, feature) in step.iter_mut().zip(features) {
                *v = feature[start + k * w.sampling_rate];
            }
        }
        // The target column's value at the window's last step, whether or not it is a feature.
        last_values.push(series[start + span - w.target_offset]);
        targets.push(series[start + span]);
    }
    // One value a step: the flat window, as the checker's inputs [L] and [L, 1] read it.
    let shape = if width == 1 {
        vec![w.sequence_length]
    } else {
        vec![w.sequence_length, width]
    };
    Ok(Dataset {
        samples,
        features: w.sequence_length * width,
        shape: Some(shape),
        x: Features::F32(x),
        labels: Labels::Targets {
            width: 1,
            values: targets,
        },
        origin: origin.to_string(),
        labels_origin: origin.to_string(),
        last_values: Some(last_values),
        weights: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(
        sequence_length: usize,
        target_offset: usize,
        stride: usize,
        rate: usize,
    ) -> Windows {
        Windows {
            sequence_length,
            target_offset,
            sequence_stride: stride,
            sampling_rate: rate,
        }
    }

    fn series(n: usize) -> Vec<f32> {
        (0..n).map(|v| v as f32).collect()
    }

    /// Windows of `series` itself, the default `features: [column]`.
    fn cut(series: &[f32], w: Windows, origin: &str) -> Result<Dataset, DataError> {
        super::cut(series, &[series.to_vec()], w, origin)
    }

    fn targets(d: &Dataset) -> Vec<f32> {
        match &d.labels {
            Labels::Targets { values, .. } => values.clone(),
            Labels::Classes(_) => panic!("targets expected"),
        }
    }

    #[test]
    fn windows_and_targets_follow_keras() {
        // Keras: timeseries_dataset_from_array(data[:-1], data[3:], sequence_length=3) over
        // 0..10: windows [0 1 2] … [6 7 8], targets 3 … 9.
        let d = cut(&series(10), windows(3, 1, 1, 1), "s").unwrap();
        assert_eq!(d.samples, 7);
        assert_eq!(d.shape, Some(vec![3]));
        assert_eq!(&d.x.as_f32().unwrap()[..6], &[0., 1., 2., 1., 2., 3.]);
        assert_eq!(&d.x.as_f32().unwrap()[18..], &[6., 7., 8.]);
        assert_eq!(targets(&d), vec![3., 4., 5., 6., 7., 8., 9.]);
        assert_eq!(d.last_values, Some(vec![2., 3., 4., 5., 6., 7., 8.]));
    }

    #[test]
    fn offsets_strides_and_sampling_rates() {
        // Target 3 steps after the window's last value.
        let d = cut(&series(10), windows(2, 3, 1, 1), "s").unwrap();
        assert_eq!(d.samples, 6);
        assert_eq!(targets(&d), vec![4., 5., 6., 7., 8., 9.]);
        // Windows start every 3 rows; the last start whose target fits is 6 (7, target 9)…
        let d = cut(&series(10), windows(2, 2, 3, 1), "s").unwrap();
        assert_eq!(d.x.as_f32().unwrap(), &[0., 1., 3., 4., 6., 7.]);
        assert_eq!(targets(&d), vec![3., 6., 9.]);
        // …and a series one row shorter loses that window.
        let d = cut(&series(9), windows(2, 2, 3, 1), "s").unwrap();
        assert_eq!(targets(&d), vec![3., 6.]);
        // Every other row within a window.
        let d = cut(&series(10), windows(3, 1, 1, 2), "s").unwrap();
        assert_eq!(&d.x.as_f32().unwrap()[..6], &[0., 2., 4., 1., 3., 5.]);
        assert_eq!(targets(&d), vec![5., 6., 7., 8., 9.]);
    }

    #[test]
    fn the_last_window_ends_one_offset_before_the_series() {
        let d = cut(&series(5), windows(4, 1, 1, 1), "s").unwrap();
        assert_eq!(d.samples, 1);
        assert_eq!(targets(&d), vec![4.]);
        let e = cut(&series(4), windows(4, 1, 1, 1), "co2.csv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "co2.csv: the series has 4 values, but one window and its target span 5 \
             (sequence_length 4, sampling_rate 1, target_offset 1); shorten the window or use a \
             longer series"
        );
    }

    fn read(text: &str, missing: Missing) -> Result<Vec<f32>, DataError> {
        let column = LabelColumn::Name("v".into());
        let (values, lines) = read_columns(text, "t.csv", &[&column], ',')?;
        fill(&values[0], &lines, missing, "t.csv")
    }

    #[test]
    fn missing_values_are_rejected_with_their_line_or_filled() {
        let text = "date,v\n1,1\n2,\n\n3,NA\n4,4\n5,nan\n6,6\n";
        assert_eq!(
            read(text, Missing::Reject).unwrap_err().to_string(),
            "t.csv: line 3: missing value; fill gaps with `missing: \"previous\"` or \
             `missing: \"interpolate\"`"
        );
        assert_eq!(
            read(text, Missing::Previous).unwrap(),
            vec![1., 1., 1., 4., 4., 6.]
        );
        assert_eq!(
            read(text, Missing::Interpolate).unwrap(),
            vec![1., 2., 3., 4., 5., 6.]
        );
        assert_eq!(
            read("v\nN/A\n2\n", Missing::Previous)
                .unwrap_err()
                .to_string(),
            "t.csv: line 2: missing value at the start of the series: nothing precedes it"
        );
        assert_eq!(
            read("v\n1\n2\nNaN\n", Missing::Interpolate)
                .unwrap_err()
                .to_string(),
            "t.csv: line 4: missing value at the end of the series: interpolation needs a \
             value on each side"
        );
    }

    #[test]
    fn bad_cells_and_columns_are_named() {
        assert_eq!(
            read("date,v\n1,2\n2,x\n", Missing::Reject)
                .unwrap_err()
                .to_string(),
            "t.csv: line 3, column 2: cannot read 'x' as a number (column 'v')"
        );
        assert_eq!(
            read("date,v\n1,2\n2\n", Missing::Reject)
                .unwrap_err()
                .to_string(),
            "t.csv: line 3: found 1 cell, so no column 'v' (column 2)"
        );
        assert_eq!(
            read("date,co2\n1,2\n", Missing::Reject)
                .unwrap_err()
                .to_string(),
            "t.csv: line 1: no column named 'v' in the header; the columns are 'date', 'co2'"
        );
        assert_eq!(
            read("date,v\n", Missing::Reject).unwrap_err().to_string(),
            "t.csv: the file has a header row but no data rows"
        );
    }

    #[test]
    fn validation_split_holds_out_the_latest_windows() {
        let d = cut(&series(10), windows(3, 1, 1, 1), "s").unwrap();
        let (train, validation) = d.split_off_validation(0.3).unwrap();
        // floor(7 · 0.7) = 4 windows train (targets 3–6); the 3 latest validate.
        assert_eq!(targets(&train), vec![3., 4., 5., 6.]);
        assert_eq!(train.last_values, Some(vec![2., 3., 4., 5.]));
        assert_eq!(targets(&validation), vec![7., 8., 9.]);
        assert_eq!(
            validation.x.as_f32().unwrap(),
            &[4., 5., 6., 5., 6., 7., 6., 7., 8.]
        );
        assert_eq!(validation.last_values, Some(vec![6., 7., 8.]));
        // "Same as last step" is off by one on every window of 0, 1, 2, …
        assert_eq!(validation.naive_mae(), Some(1.0));
        let d = cut(&[1., 4., 2., 2., 7.], windows(2, 1, 1, 1), "s").unwrap();
        // Targets 2, 2, 7 against last values 4, 2, 2.
        assert_eq!(d.naive_mae(), Some(7.0 / 3.0));
    }

    #[test]
    fn several_feature_columns_make_each_step() {
        let text = "day,a,b\n0,1,10\n1,2,\n2,3,30\n3,4,40\n4,5,50\n";
        let (a, b) = (LabelColumn::Name("a".into()), LabelColumn::Index(2));
        let (values, lines) = read_columns(text, "t.csv", &[&a, &a, &b], ',').unwrap();
        let filled: Vec<Vec<f32>> = values
            .iter()
            .map(|v| fill(v, &lines, Missing::Interpolate, "t.csv").unwrap())
            .collect();
        assert_eq!(filled[2], vec![10., 20., 30., 40., 50.]);
        // Target `a`, features `a` and `b`: windows of 2 steps × 2 values.
        let d = super::cut(&filled[0], &filled[1..], windows(2, 2, 1, 1), "t.csv").unwrap();
        assert_eq!(d.shape, Some(vec![2, 2]));
        assert_eq!((d.samples, d.features), (2, 4));
        assert_eq!(d.x.as_f32().unwrap(), &[1., 10., 2., 20., 2., 20., 3., 30.]);
        assert_eq!(targets(&d), vec![4., 5.]);
        // The naive forecast is the target column's last value, here `a` at the window's end.
        assert_eq!(d.last_values, Some(vec![2., 3.]));
        // A target that is not a feature still gives the naive forecast its own last value.
        let d = super::cut(&filled[2], &filled[..1], windows(2, 1, 1, 1), "t.csv").unwrap();
        assert_eq!(d.shape, Some(vec![2]));
        assert_eq!(targets(&d), vec![30., 40., 50.]);
        assert_eq!(d.last_values, Some(vec![20., 30., 40.]));
    }
}
