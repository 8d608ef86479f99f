//! Long source lines shown as a window around the labels on them. ariadne prints every labelled
//! line whole, so one diagnostic on a 1 MB line printed 1 MB (and fifty of them, fifty). A source
//! with a line past `MAX_LINE` bytes is rewritten for each diagnostic: each long line becomes
//! `…` + about `CONTEXT` bytes either side of its first label + `…`, and label offsets are
//! mapped into the rewritten text. Line numbers are kept, since only line contents change.

use std::ops::Range;

/// Lines longer than this many bytes are clipped.
pub const MAX_LINE: usize = 240;
/// Bytes shown before a label's start and after its end (a long label is cut to `MAX_LINE`).
const CONTEXT: usize = 80;
const ELLIPSIS: &str = "…";

/// A source text with its long lines clipped, and how offsets in the original map into it.
pub struct Windowed {
    pub text: String,
    /// Per line of the original: its byte range there, where it starts in `text`, and the
    /// window kept (`None` for a line kept whole).
    lines: Vec<LineMap>,
}

struct LineMap {
    old: Range<usize>,
    new_start: usize,
    window: Option<(Range<usize>, usize)>,
}

/// `text` with every line longer than `MAX_LINE` clipped around the first of `labels` (byte
/// ranges in `text`) on it, or `None` when no line is that long.
pub fn clip(text: &str, labels: &[Range<usize>]) -> Option<Windowed> {
    if !text.split('\n').any(|line| line.len() > MAX_LINE) {
        return None;
    }
    let mut out = String::new();
    let mut lines = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        let old = start..start + content.len();
        let new_start = out.len();
        let window = (content.len() > MAX_LINE).then(|| {
            let focus = labels
                .iter()
                .find(|l| l.start >= old.start && l.start <= old.end)
                .map_or(0..0, |l| {
                    l.start - old.start..l.end.min(old.end) - old.start
                });
            let from = content.floor_char_boundary(focus.start.saturating_sub(CONTEXT));
            let to = (focus.end.max(focus.start + 1) + CONTEXT).min(from + MAX_LINE);
            let to = content.ceil_char_boundary(to.min(content.len()));
            let prefix = if from > 0 { ELLIPSIS } else { "" };
            out.push_str(prefix);
            out.push_str(&content[from..to]);
            if to < content.len() {
                out.push_str(ELLIPSIS);
            }
            (from..to, prefix.len())
        });
        if window.is_none() {
            out.push_str(content);
        }
        out.push_str(&line[content.len()..]);
        lines.push(LineMap {
            old,
            new_start,
            window,
        });
        start += line.len();
    }
    Some(Windowed { text: out, lines })
}

/// Most characters a message, label, note or help is rendered with: they quote names from the
/// source, and a 1 MB name in an error was printed whole.
pub const MAX_MESSAGE: usize = 400;

/// `text` whole when short, else its start and how long it was.
pub fn clip_message(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_MESSAGE) {
        None => text.into(),
        Some((end, _)) => {
            let end = text.floor_char_boundary(end - 1);
            format!(
                "{}… ({} characters in all)",
                &text[..end],
                text.chars().count()
            )
            .into()
        }
    }
}

/// When the line holding byte `offset` of `text` is clipped: what the clipped view hides, the
/// line's length and the real column (the header's column counts within the window).
pub fn note(text: &str, offset: usize) -> Option<String> {
    let offset = text.floor_char_boundary(offset.min(text.len()));
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (end - start > MAX_LINE).then(|| {
        format!(
            "line {} is {} characters long and shown around the error, at its column {}",
            text[..start].matches('\n').count() + 1,
            text[start..end].chars().count(),
            text[start..offset].chars().count() + 1
        )
    })
}

impl Windowed {
    /// Where byte `offset` of the original text is in the clipped one (an offset outside a
    /// line's window moves to the window's nearer edge).
    pub fn map(&self, offset: usize) -> usize {
        let at = self
            .lines
            .partition_point(|line| line.old.start <= offset)
            .saturating_sub(1);
        let Some(line) = self.lines.get(at) else {
            return offset;
        };
        // The newline after a line, and the end of the text, follow the line's new content.
        let within = offset - line.old.start;
        match &line.window {
            None => line.new_start + within,
            Some((window, prefix)) => {
                let kept = within.clamp(window.start, window.end) - window.start;
                let past_end = offset > line.old.end;
                let suffix = if window.end < line.old.len() {
                    ELLIPSIS.len()
                } else {
                    0
                };
                if past_end {
                    line.new_start + prefix + window.len() + suffix + (offset - line.old.end)
                } else if offset == line.old.end {
                    line.new_start + prefix + window.len() + suffix
                } else {
                    line.new_start + prefix + kept
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one label per test is the usual diagnostic
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_clipped() {
        assert_eq!(clip_message("unexpected name `x`"), "unexpected name `x`");
        let long = format!("unexpected name `{}`", "é".repeat(5000));
        let clipped = clip_message(&long);
        assert!(clipped.ends_with("… (5018 characters in all)"), "{clipped}");
        assert!(clipped.chars().count() < MAX_MESSAGE + 30);
    }

    #[test]
    fn short_texts_are_left_alone() {
        assert!(clip("let a = 1\nlet b = 2\n", &[4..5]).is_none());
    }

    #[test]
    fn a_long_line_is_a_window_around_its_label() {
        let long = format!("let a = {}$ + 1", "x".repeat(10_000));
        let text = format!("model m\n{long}\nlet b = 2\n");
        let at = text.find('$').unwrap();
        let w = clip(&text, &[at..at + 1]).unwrap();
        let lines: Vec<&str> = w.text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "model m");
        assert_eq!(lines[2], "let b = 2");
        assert!(
            lines[1].starts_with("…xxx") && lines[1].ends_with("$ + 1"),
            "{}",
            lines[1]
        );
        assert!(lines[1].len() < MAX_LINE);
        let mapped = w.map(at);
        assert_eq!(&w.text[mapped..mapped + 1], "$");
        // Offsets on later lines keep pointing at the same text.
        let b = text.find("b =").unwrap();
        assert_eq!(&w.text[w.map(b)..w.map(b) + 3], "b =");
        assert_eq!(w.map(text.len()), w.text.len());
    }

    #[test]
    fn windows_respect_characters_and_long_labels() {
        let text = format!("{}é{}", "é".repeat(500), "ü".repeat(500));
        let at = text.find("éü").unwrap();
        // A label over the whole line keeps one window of at most MAX_LINE bytes.
        let w = clip(&text, &[0..text.len()]).unwrap();
        assert!(w.text.len() <= MAX_LINE + 2 * ELLIPSIS.len() + 2);
        let w = clip(&text, &[at..at + 4]).unwrap();
        let mapped = w.map(at);
        assert_eq!(&w.text[mapped..mapped + 4], "éü");
        assert_eq!(w.map(text.len()), w.text.len());
    }
}
