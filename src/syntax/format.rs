//! `kiln fmt`: the one canonical layout of a `.model` file.
//!
//! The formatter works on the lexer's tokens, not on the syntax tree, so that it keeps what the
//! tree forgets: comments, blank lines and where the author broke a long line. It decides
//! everything else: indentation (four spaces per brace; a continuation line inside parentheses
//! lines up after the opening one, as the example programs write `idx(images: …,` over two
//! lines), the spacing between tokens, one blank line at most, and the alignment the examples
//! use — a `fit`'s values in one column, and the `=` of consecutive `data` items and of a layer's
//! consecutive `param`s. A file that does not parse is left alone: its diagnostics come back.
//!
//! Formatting never changes a program's meaning (the tokens and their order are kept, only the
//! space between them changes) and is idempotent; `tests/format.rs` checks both over every
//! `.model` in the repository.

use super::token::{self, Token};
use crate::diag::{self, Diagnostic};

/// How many spaces one level of braces indents.
pub const INDENT: usize = 4;

/// `source` in the canonical layout, or the parse errors that keep it from being formatted.
pub fn format(source: &str) -> Result<String, Vec<Diagnostic>> {
    let (_, diagnostics) = super::parse(source);
    if diag::has_errors(&diagnostics) {
        return Err(diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect());
    }
    let lexed = token::lex(source);
    let lines = physical_lines(source, &lexed.tokens);
    let aligns = alignment(&lines);
    Ok(render(&lines, &aligns))
}

/// Whether `source` is already formatted (false too when it does not parse).
pub fn is_formatted(source: &str) -> bool {
    format(source).is_ok_and(|formatted| formatted == source)
}

#[derive(Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    token: &'a Token,
}

/// One line of the source: its tokens, and the comment that ends it, if any (a comment-only line
/// has no tokens).
struct Line<'a> {
    tokens: Vec<Tok<'a>>,
    comment: Option<&'a str>,
    /// The spaces the author left before a trailing comment (kept, so hand-aligned comments stay
    /// aligned; at least one).
    comment_gap: usize,
    /// Whether a blank line separates this line from the one before.
    blank_before: bool,
}

fn physical_lines<'a>(source: &'a str, tokens: &'a [token::Spanned]) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let mut current = Line {
        tokens: Vec::new(),
        comment: None,
        comment_gap: 0,
        blank_before: false,
    };
    let mut newlines = 0;
    let mut pos = if source.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let mut gap = |from: usize, to: usize, lines: &mut Vec<Line<'a>>, current: &mut Line<'a>| {
        // Between tokens there is only layout: spaces, comments and line breaks.
        let text = &source[from..to];
        let mut rest = text;
        let mut spaces = 0;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('\n') {
                let finished = std::mem::replace(
                    current,
                    Line {
                        tokens: Vec::new(),
                        comment: None,
                        comment_gap: 0,
                        blank_before: false,
                    },
                );
                if finished.tokens.is_empty() && finished.comment.is_none() {
                    newlines += 1;
                } else {
                    lines.push(finished);
                    newlines = 1;
                }
                current.blank_before = newlines > 1;
                spaces = 0;
                rest = after;
            } else if rest.starts_with('#') {
                let end = rest.find('\n').unwrap_or(rest.len());
                current.comment = Some(rest[..end].trim_end());
                current.comment_gap = spaces.max(1);
                rest = &rest[end..];
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                spaces += 1;
                rest = &rest[c.len_utf8()..];
            }
        }
    };
    for (start, token, end) in tokens {
        let text = &source[*start..*end];
        // Line breaks come from the gaps; zero-width tokens are the lexer's (only in files that
        // do not parse, which never get here).
        if text.is_empty() || text == "\n" {
            continue;
        }
        gap(pos, *start, &mut lines, &mut current);
        current.tokens.push(Tok { text, token });
        pos = *end;
    }
    gap(pos, source.len(), &mut lines, &mut current);
    if !current.tokens.is_empty() || current.comment.is_some() {
        lines.push(current);
    }
    if let Some(first) = lines.first_mut() {
        first.blank_before = false;
    }
    lines
}

/// What a brace opens, which decides the alignment inside it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    Top,
    Fit,
    Layer,
    Other,
}

/// The lines whose columns line up with their neighbours'.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Align {
    None,
    /// A fit setting: its value starts in the column after the longest key.
    FitValue,
    /// A `data` item's `=`.
    DataEq,
    /// A layer's `param … =`.
    ParamEq,
}

/// Tokens after which a line break continues the statement (as the lexer decides).
fn continues(token: &Token) -> bool {
    matches!(
        token,
        Token::LBrace
            | Token::Comma
            | Token::Colon
            | Token::Eq
            | Token::Arrow
            | Token::Plus
            | Token::Minus
            | Token::Star
            | Token::Slash
            | Token::At
            | Token::On
            | Token::To
            | Token::From
    )
}

fn is_semi(tok: &Tok) -> bool {
    tok.text == ";"
}

/// How each line aligns and the extra spaces it gets to line up with its neighbours.
fn alignment(lines: &[Line]) -> Vec<(Align, usize)> {
    // First which lines align, and the width of what comes before the aligned column.
    let mut kinds = Vec::with_capacity(lines.len());
    let mut stack: Vec<Option<Block>> = Vec::new(); // None for ( and [
    let mut previous: Option<&Token> = None;
    let mut statement_first: Option<&Token> = None;
    let mut boundary = true;
    for line in lines {
        let block = match stack.last() {
            None => Some(Block::Top),
            Some(frame) => *frame,
        };
        let first = line.tokens.first();
        let starts =
            boundary && first.is_some_and(|f| !matches!(f.token, Token::RBrace | Token::LBrace));
        let mut kind = (Align::None, 0);
        if starts && let (Some(block), Some(first)) = (block, first) {
            let simple = !line
                .tokens
                .iter()
                .any(|t| is_semi(t) || matches!(t.token, Token::LBrace | Token::RBrace));
            let eq = line
                .tokens
                .iter()
                .position(|t| matches!(t.token, Token::Eq));
            kind = match (block, first.token, eq) {
                (Block::Fit, Token::Ident(_), _) if simple && line.tokens.len() > 1 => {
                    (Align::FitValue, width(first.text))
                }
                (Block::Top, Token::Data, Some(eq)) if simple => {
                    (Align::DataEq, width(&spaced(&line.tokens[..eq])))
                }
                (Block::Layer, Token::ParamKw, Some(eq)) if simple => {
                    (Align::ParamEq, width(&spaced(&line.tokens[..eq])))
                }
                _ => (Align::None, 0),
            };
        }
        // Inside a statement: a line within its brackets or after a token that continues it.
        let continuation = !boundary && first.is_some_and(|f| !matches!(f.token, Token::RBrace));
        kinds.push((kind, line.tokens.is_empty(), continuation));
        for tok in &line.tokens {
            if boundary && !matches!(tok.token, Token::LBrace) {
                statement_first = Some(tok.token);
                boundary = false;
            }
            match tok.token {
                Token::LBrace => {
                    stack.push(Some(block_kind(statement_first)));
                    boundary = true;
                }
                Token::LParen | Token::LBracket => stack.push(None),
                Token::RParen | Token::RBracket => {
                    stack.pop();
                }
                Token::RBrace => {
                    stack.pop();
                    boundary = true;
                }
                _ if is_semi(tok) => boundary = true,
                _ => {}
            }
            previous = Some(tok.token);
        }
        if !line.tokens.is_empty()
            && stack.last().is_none_or(Option::is_some)
            && previous.is_some_and(|p| !continues(p))
        {
            boundary = true;
        }
    }
    // Then runs of lines of one kind, broken by a blank line or any other statement; the
    // continuation lines of a statement and comment lines stay in the run.
    let mut out: Vec<(Align, usize)> = kinds.iter().map(|k| (k.0.0, 0)).collect();
    let mut i = 0;
    while i < lines.len() {
        let ((align, _), _, _) = kinds[i];
        if align == Align::None {
            i += 1;
            continue;
        }
        let mut members = vec![i];
        let mut j = i + 1;
        while j < lines.len() && !lines[j].blank_before {
            let ((kind, _), comment_only, continuation) = kinds[j];
            if kind == align {
                members.push(j);
            } else if !(continuation || comment_only) {
                break;
            }
            j += 1;
        }
        let widest = members.iter().map(|&m| kinds[m].0.1).max().unwrap_or(0);
        for &m in &members {
            out[m].1 = widest - kinds[m].0.1;
        }
        i = j;
    }
    out
}

fn block_kind(statement_first: Option<&Token>) -> Block {
    match statement_first {
        Some(Token::Fit) => Block::Fit,
        Some(Token::Layer) => Block::Layer,
        _ => Block::Other,
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Tokens joined with the canonical spacing, as on one line with nothing before them.
fn spaced(tokens: &[Tok]) -> String {
    let mut out = String::new();
    let mut previous: Option<Tok> = None;
    let mut unary = false;
    for tok in tokens {
        if let Some(prev) = previous
            && space_between(prev, unary, *tok)
        {
            out.push(' ');
        }
        unary = matches!(tok.token, Token::Minus) && is_unary(previous.map(|p| p.token));
        out.push_str(tok.text);
        previous = Some(*tok);
    }
    out
}

/// Whether a `-` after `previous` negates (rather than subtracts); right after a fit setting's
/// key it negates too (`lr -0.1`), which the caller knows.
fn is_unary(previous: Option<&Token>) -> bool {
    !matches!(
        previous,
        Some(
            Token::Ident(_)
                | Token::Int(_)
                | Token::Float(_)
                | Token::Str(_)
                | Token::True
                | Token::False
                | Token::BadNumber
                | Token::RParen
                | Token::RBracket
        )
    )
}

/// Whether one space separates `prev` and `next` on a line (`prev_unary`: `prev` is a unary
/// minus). After a fit setting's key there is always one, which the caller knows.
fn space_between(prev: Tok, prev_unary: bool, next: Tok) -> bool {
    if prev_unary {
        return false;
    }
    if matches!(
        next.token,
        Token::RParen | Token::RBracket | Token::Comma | Token::Colon
    ) || is_semi(&next)
    {
        return false;
    }
    if matches!(prev.token, Token::LParen | Token::LBracket) {
        return false;
    }
    match next.token {
        // A call, a type's dimensions, a layer's `forward(…)`.
        Token::LParen => !matches!(
            prev.token,
            Token::Ident(_) | Token::RParen | Token::RBracket | Token::Forward
        ),
        Token::LBracket => !matches!(prev.token, Token::Ident(_)),
        _ => true,
    }
}

/// A bracket open at the current position while rendering.
struct Frame {
    /// The indentation of the line that opened it: its closer on a line of its own goes there.
    opener_indent: usize,
    /// Where the lines inside start.
    content: usize,
    /// Whether it is a brace (statements inside) rather than `(` or `[` (one expression).
    brace: bool,
    block: Block,
}

fn render(lines: &[Line], aligns: &[(Align, usize)]) -> String {
    let mut out = String::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut previous: Option<Tok> = None;
    let mut previous_unary = false;
    let mut boundary = true;
    let mut statement_first: Option<&Token> = None;
    for (line, &(align, pad)) in lines.iter().zip(aligns) {
        if line.blank_before {
            out.push('\n');
        }
        let inner = stack.last().map_or(0, |f| f.content);
        let Some(first) = line.tokens.first() else {
            // A comment on a line of its own sits where the next statement would.
            push_indent(&mut out, inner);
            out.push_str(line.comment.unwrap_or_default());
            out.push('\n');
            continue;
        };
        let in_brace = stack.last().is_none_or(|f| f.brace);
        let indent = match first.token {
            Token::RBrace | Token::RParen | Token::RBracket => {
                stack.last().map_or(0, |f| f.opener_indent)
            }
            // A statement continued after `=`, an operator or a comma outside brackets.
            _ if in_brace && !boundary && !matches!(first.token, Token::LBrace) => inner + INDENT,
            _ => inner,
        };
        let mut text = String::new();
        let mut after_key = false;
        let mut eq_padded = false;
        for (at, tok) in line.tokens.iter().enumerate() {
            let is_key =
                boundary && block_at(&stack) == Block::Fit && matches!(tok.token, Token::Ident(_));
            if boundary && !matches!(tok.token, Token::LBrace) {
                statement_first = Some(tok.token);
                boundary = false;
            }
            if at > 0
                && let Some(prev) = previous
            {
                if after_key {
                    let extra = if at == 1 && align == Align::FitValue {
                        pad
                    } else {
                        0
                    };
                    push_indent(&mut text, 1 + extra);
                } else {
                    if matches!(tok.token, Token::Eq)
                        && !eq_padded
                        && matches!(align, Align::DataEq | Align::ParamEq)
                    {
                        push_indent(&mut text, pad);
                        eq_padded = true;
                    }
                    if space_between(prev, previous_unary, *tok) {
                        text.push(' ');
                    }
                }
            }
            let unary = matches!(tok.token, Token::Minus)
                && (after_key || is_unary(previous.map(|p| p.token)));
            after_key = is_key;
            text.push_str(tok.text);
            let last_on_line = at + 1 == line.tokens.len();
            match tok.token {
                Token::LBrace => {
                    stack.push(Frame {
                        opener_indent: indent,
                        content: indent + INDENT,
                        brace: true,
                        block: block_kind(statement_first),
                    });
                    boundary = true;
                }
                Token::LParen | Token::LBracket => stack.push(Frame {
                    opener_indent: indent,
                    content: if last_on_line {
                        indent + INDENT
                    } else {
                        indent + width(&text)
                    },
                    brace: false,
                    block: Block::Other,
                }),
                Token::RParen | Token::RBracket => {
                    stack.pop();
                }
                Token::RBrace => {
                    stack.pop();
                    boundary = true;
                }
                _ if is_semi(tok) => boundary = true,
                _ => {}
            }
            previous = Some(*tok);
            previous_unary = unary;
        }
        push_indent(&mut out, indent);
        out.push_str(&text);
        if let Some(comment) = line.comment {
            push_indent(&mut out, line.comment_gap);
            out.push_str(comment);
        }
        out.push('\n');
        // A line break in a brace ends the statement unless its last token continues it.
        if stack.last().is_none_or(|f| f.brace) && previous.is_some_and(|p| !continues(p.token)) {
            boundary = true;
        }
    }
    out
}

fn block_at(stack: &[Frame]) -> Block {
    match stack.last() {
        None => Block::Top,
        Some(frame) if frame.brace => frame.block,
        Some(_) => Block::Other,
    }
}

fn push_indent(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(source: &str) -> String {
        format(source).unwrap_or_else(|d| panic!("{d:?}"))
    }

    #[test]
    fn spacing_and_indentation_are_canonical() {
        let source = "model  m( x:f32[B,4] )->f32[B , 2]{\n  let h=dense( 8,relu )(x)\n      dense(2,softmax)(-h*2)\n}\n";
        assert_eq!(
            fmt(source),
            "model m(x: f32[B, 4]) -> f32[B, 2] {\n    let h = dense(8, relu)(x)\n    dense(2, softmax)(-h * 2)\n}\n"
        );
    }

    #[test]
    fn fit_values_line_up_and_comments_stay() {
        let source =
            "# head\n\n\n\nfit m on d {\n  loss mse # why\n  validation_split 0.2\n  lr -0.1\n}\n";
        assert_eq!(
            fmt(source),
            "# head\n\nfit m on d {\n    loss             mse # why\n    validation_split 0.2\n    lr               -0.1\n}\n"
        );
    }

    #[test]
    fn continuation_lines_line_up_after_their_bracket() {
        let source = "data train = idx(images: \"a\",\n labels: \"b\")\ndata test = idx(images: \"c\",\n labels: \"d\")\n";
        assert_eq!(
            fmt(source),
            "data train = idx(images: \"a\",\n                 labels: \"b\")\ndata test  = idx(images: \"c\",\n                 labels: \"d\")\n"
        );
        let hanging = "data a = f(\nx: 1,\n)\n";
        assert_eq!(fmt(hanging), "data a = f(\n    x: 1,\n)\n");
    }

    #[test]
    fn a_file_that_does_not_parse_is_refused() {
        let errors = format("model m(x: f32[B, 4] -> {\n").unwrap_err();
        assert!(errors.iter().all(Diagnostic::is_error) && !errors.is_empty());
    }
}
