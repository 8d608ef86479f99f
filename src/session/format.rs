//! Tensors as text, the way NumPy's `print` shows them: nested brackets, one row per line,
//! values aligned on the decimal point with the fewest digits that tell them apart (at most 8
//! decimals), scientific notation when magnitudes are far apart, and large tensors (over 1000
//! elements) shown by their first and last three entries on each axis.

/// Above this many elements a tensor is summarized (NumPy's `threshold`).
const THRESHOLD: usize = 1000;
/// Entries kept at each end of a summarized axis (NumPy's `edgeitems`).
const EDGE: usize = 3;
/// Rows wrap at this width (NumPy's `linewidth`).
const WIDTH: usize = 75;
/// Decimals at most (NumPy's `precision`).
const PRECISION: usize = 8;

/// `data` (row-major) of the given shape as NumPy prints it.
pub fn tensor(shape: &[usize], data: &[f32]) -> String {
    let summarize = data.len() > THRESHOLD;
    let shown = shown_indices(shape, summarize);
    let values: Vec<f32> = shown.iter().map(|&i| data[i]).collect();
    let style = Style::of(&values);
    let texts: Vec<String> = values.iter().map(|&x| style.format(x)).collect();
    let width = texts.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    let mut next = texts.into_iter();
    let mut out = String::new();
    write_axis(&mut out, shape, 0, summarize, width, &mut next);
    out
}

/// Flat indices of the elements shown, in order.
fn shown_indices(shape: &[usize], summarize: bool) -> Vec<usize> {
    let mut indices = vec![0usize];
    for &n in shape {
        let kept = kept(n, summarize);
        indices = indices
            .iter()
            .flat_map(|&base| kept.iter().map(move |&i| base * n + i))
            .collect();
    }
    indices
}

/// The positions shown along an axis of length `n`.
fn kept(n: usize, summarize: bool) -> Vec<usize> {
    if summarize && n > 2 * EDGE {
        (0..EDGE).chain(n - EDGE..n).collect()
    } else {
        (0..n).collect()
    }
}

fn write_axis(
    out: &mut String,
    shape: &[usize],
    depth: usize,
    summarize: bool,
    width: usize,
    next: &mut impl Iterator<Item = String>,
) {
    if depth == shape.len() {
        out.push_str(&format!("{:>width$}", next.next().unwrap_or_default()));
        return;
    }
    let n = shape[depth];
    let kept = kept(n, summarize);
    let elided = kept.len() < n;
    out.push('[');
    let innermost = depth + 1 == shape.len();
    // Column where this row's entries start, for wrapping.
    let indent = depth + 1;
    let mut line = indent;
    for (k, _) in kept.iter().enumerate() {
        if k > 0 {
            if innermost {
                out.push(' ');
                line += 1;
            } else {
                // Sub-arrays: one newline per axis below, then align under the bracket.
                let newlines = shape.len() - depth - 1;
                out.push_str(&"\n".repeat(newlines));
                out.push_str(&" ".repeat(indent));
            }
        }
        if elided && k == EDGE {
            if innermost {
                out.push_str("... ");
                line += 4;
            } else {
                out.push_str("...");
                out.push_str(&"\n".repeat(shape.len() - depth - 1));
                out.push_str(&" ".repeat(indent));
            }
        }
        if innermost {
            if line + width + 1 > WIDTH && k > 0 {
                // Drop the separating space before the break, as NumPy does.
                out.pop();
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                line = indent;
            }
            out.push_str(&format!("{:>width$}", next.next().unwrap_or_default()));
            line += width;
        } else {
            write_axis(out, shape, depth + 1, summarize, width, next);
        }
    }
    out.push(']');
}

/// How every shown value of a tensor is written.
enum Style {
    /// Whole numbers: `3.`.
    Whole,
    /// Fixed point, decimal points aligned: integer part width, decimals.
    Fixed { decimals: usize },
    /// `1.2345e-05`, with this many decimals.
    Scientific { decimals: usize },
}

impl Style {
    fn of(values: &[f32]) -> Style {
        let finite: Vec<f64> = values
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| f64::from(x))
            .collect();
        let max = finite.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let min_nonzero = finite
            .iter()
            .filter(|x| **x != 0.0)
            .fold(f64::INFINITY, |m, x| m.min(x.abs()));
        if finite.iter().all(|x| x.fract() == 0.0) && max < 1e8 {
            return Style::Whole;
        }
        if max >= 1e8 || min_nonzero < 1e-4 || max / min_nonzero > 1e3 {
            // The f32's own shortest digits (NumPy prints float32 `1e-06` as `1.e-06`).
            let decimals = values
                .iter()
                .filter(|x| x.is_finite())
                .map(|x| digits_after_point(&format!("{x:e}")).min(PRECISION))
                .max()
                .unwrap_or(0);
            return Style::Scientific { decimals };
        }
        let decimals = finite
            .iter()
            .map(|x| digits_after_point(&format!("{:.*}", PRECISION, x)))
            .max()
            .unwrap_or(0);
        Style::Fixed { decimals }
    }

    fn format(&self, x: f32) -> String {
        if x.is_nan() {
            return "nan".into();
        }
        if x.is_infinite() {
            return if x > 0.0 { "inf".into() } else { "-inf".into() };
        }
        match *self {
            Style::Whole => format!("{x:.0}."),
            Style::Fixed { decimals } => {
                // The value's own shortest digits, padded with spaces to the common width.
                let own = trim(&format!("{x:.PRECISION$}"));
                let have = own.len() - own.find('.').map_or(own.len(), |p| p + 1);
                format!("{own}{}", " ".repeat(decimals.saturating_sub(have)))
            }
            Style::Scientific { decimals } => {
                let text = format!("{x:.decimals$e}");
                let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
                let exponent: i32 = exponent.parse().unwrap_or(0);
                let sign = if exponent < 0 { '-' } else { '+' };
                let mantissa = if mantissa.contains('.') {
                    mantissa.to_string()
                } else {
                    format!("{mantissa}.")
                };
                format!("{mantissa}e{sign}{:02}", exponent.abs())
            }
        }
    }
}

/// Drops trailing zeros of a decimal, keeping the point: `0.50000000` → `0.5`, `2.000` → `2.`.
fn trim(text: &str) -> String {
    if !text.contains('.') {
        return format!("{text}.");
    }
    text.trim_end_matches('0').to_string()
}

/// Significant decimals of a formatted number (`0.25000000` → 2, `1.50000000e-05` → 1).
fn digits_after_point(text: &str) -> usize {
    let mantissa = text.split('e').next().unwrap_or(text);
    let trimmed = trim(mantissa);
    trimmed.len() - trimmed.find('.').map_or(trimmed.len(), |p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_print_with_a_point() {
        assert_eq!(
            tensor(&[2, 2], &[1.0, 2.0, 3.0, 4.0]),
            "[[1. 2.]\n [3. 4.]]"
        );
        assert_eq!(tensor(&[], &[3.0]), "3.");
        assert_eq!(tensor(&[3], &[-1.0, 10.0, 0.0]), "[-1. 10.  0.]");
    }

    #[test]
    fn decimals_align_on_the_point() {
        assert_eq!(tensor(&[2], &[0.5, 0.25]), "[0.5  0.25]");
        assert_eq!(tensor(&[2], &[1.5, -12.25]), "[  1.5  -12.25]");
        assert_eq!(tensor(&[1], &[0.1]), "[0.1]");
    }

    #[test]
    fn far_apart_magnitudes_use_scientific_notation() {
        assert_eq!(tensor(&[2], &[1e-5, 1.0]), "[1.e-05 1.e+00]");
        assert_eq!(tensor(&[1], &[1.5e9]), "[1.5e+09]");
    }

    #[test]
    fn special_values() {
        assert_eq!(
            tensor(&[3], &[f32::NAN, f32::INFINITY, 1.0]),
            "[nan inf  1.]"
        );
    }

    #[test]
    fn large_tensors_are_summarized() {
        let data: Vec<f32> = (0..2000).map(|i| i as f32).collect();
        assert_eq!(
            tensor(&[2000], &data),
            "[   0.    1.    2. ... 1997. 1998. 1999.]"
        );
        let data: Vec<f32> = (0..1600).map(|i| i as f32).collect();
        let text = tensor(&[40, 40], &data);
        assert!(text.starts_with("[[   0.    1.    2. ...   37.   38.   39.]\n"));
        assert!(text.contains("\n ...\n"));
        assert!(text.ends_with(" 1597. 1598. 1599.]]"));
    }

    #[test]
    fn long_rows_wrap() {
        let data: Vec<f32> = (0..30).map(|i| i as f32 + 0.5).collect();
        let text = tensor(&[30], &data);
        assert!(text.lines().all(|l| l.len() <= WIDTH), "{text}");
        assert!(text.lines().count() > 1);
        assert!(text.lines().skip(1).all(|l| l.starts_with(' ')));
    }

    #[test]
    fn three_axes_separate_blocks_with_a_blank_line() {
        let data: Vec<f32> = (0..8).map(|i| i as f32).collect();
        assert_eq!(
            tensor(&[2, 2, 2], &data),
            "[[[0. 1.]\n  [2. 3.]]\n\n [[4. 5.]\n  [6. 7.]]]"
        );
    }
}
