//! "Did you mean" by edit distance: the one distance every suggestion uses (names in programs,
//! built-ins, REPL commands, CSV header names).

/// The candidate closest to `name`, if it is close enough to be a plausible typo (at most a third
/// of the name's length, at least 1, ignoring case).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    closest_within(name, candidates, |_| limit)
}

/// Names longer than this get no suggestion, and are never suggested: nobody mistypes a
/// 100 KB name, and comparing two of them costs the product of their lengths (a 100 KB label
/// name against a 100 KB CSV header took 29 s).
pub const MAX_SUGGESTED_CHARS: usize = 128;

/// The candidate closest to `name` ignoring case (an exact match but for case is distance 0),
/// within `limit(candidate)` edits.
pub fn closest_within<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    limit: impl Fn(&str) -> usize,
) -> Option<&'a str> {
    let short = |s: &str| s.chars().nth(MAX_SUGGESTED_CHARS).is_none();
    if !short(name) {
        return None;
    }
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name && short(candidate))
        .filter_map(|candidate| {
            let limit = limit(candidate);
            distance_at_most(&lower, &candidate.to_lowercase(), limit).map(|d| (d, candidate))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions (`rleu` → `relu`).
pub fn distance(a: &str, b: &str) -> usize {
    distance_at_most(a, b, usize::MAX).expect("no limit")
}

/// The distance when it is at most `limit`, else `None`. Three rows of the table, and a length
/// difference beyond the limit is rejected before any work, so a long name costs little.
pub fn distance_at_most(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
            row_min = row_min.min(best);
        }
        // Every later cell is at least its row's minimum.
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    Some(previous[b.len()]).filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_typos_only() {
        let acts = ["relu", "sigmoid", "tanh", "softmax", "linear"];
        assert_eq!(closest("rleu", acts), Some("relu"));
        assert_eq!(closest("sofmax", acts), Some("softmax"));
        assert_eq!(closest("Relu", acts), Some("relu"));
        assert_eq!(closest("gelu_approx", acts), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn the_limit_cuts_work_short_without_changing_answers() {
        let words = [
            "relu", "rleu", "kitten", "sitting", "", "abcdef", "fedcba", "ca", "abc",
        ];
        for a in words {
            for b in words {
                let d = distance(a, b);
                for limit in 0..8 {
                    assert_eq!(
                        distance_at_most(a, b, limit),
                        Some(d).filter(|&d| d <= limit)
                    );
                }
            }
        }
        let long = "x".repeat(100_000);
        assert_eq!(distance_at_most(&long, "relu", 3), None);
    }

    #[test]
    fn long_names_get_no_suggestion() {
        let at_bound = "q".repeat(MAX_SUGGESTED_CHARS);
        let typo = format!("{}z", &at_bound[1..]);
        assert_eq!(closest(&typo, [at_bound.as_str()]), Some(at_bound.as_str()));
        // One past the bound, either way round: no suggestion, and no quadratic work.
        let long = "q".repeat(100_000);
        let long_typo = format!("{}z", &long[1..]);
        let started = std::time::Instant::now();
        assert_eq!(closest(&long_typo, [long.as_str()]), None);
        assert_eq!(closest("qq", [long.as_str()]), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
