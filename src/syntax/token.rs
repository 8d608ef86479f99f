//! The lexer: logos turns text into raw tokens; `lex` then balances delimiters and decides which
//! newlines separate statements, so the grammar stays small and LALR(1).

use crate::diag::{Diagnostic, Span};
use logos::Logos;

/// Skips a comment's text up to the newline (which stays a token).
fn skip_comment(lex: &mut logos::Lexer<Raw>) -> logos::Skip {
    let rest = lex.remainder();
    lex.bump(rest.find('\n').unwrap_or(rest.len()));
    logos::Skip
}

/// Takes a string's text up to its closing quote (true) or to the end of the line (false).
fn string(lex: &mut logos::Lexer<Raw>) -> bool {
    let rest = lex.remainder();
    match rest.find(['"', '\n']) {
        Some(end) if rest.as_bytes()[end] == b'"' => {
            lex.bump(end + 1);
            true
        }
        end => {
            lex.bump(end.unwrap_or(rest.len()));
            false
        }
    }
}

/// What logos recognises. Payloads are read from the slice later, so lexing never fails on values.
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(skip r"[ \t\r\f]+")]
enum Raw {
    /// A comment, to the end of the line. Comments and strings are scanned by callbacks, not
    /// patterns: logos's states for a multi-byte character call each other, and without
    /// optimization (a debug build) 16,000 `é` in a comment overflowed the stack.
    #[token("#", skip_comment)]
    Comment,
    #[token("data")]
    Data,
    #[token("model")]
    Model,
    #[token("fit")]
    Fit,
    #[token("on")]
    On,
    #[token("layer")]
    Layer,
    #[token("fn")]
    Fn,
    #[token("let")]
    Let,
    #[token("param")]
    ParamKw,
    #[token("forward")]
    Forward,
    #[token("evaluate")]
    Evaluate,
    #[token("predict")]
    Predict,
    #[token("generate")]
    Generate,
    #[token("save")]
    Save,
    #[token("load")]
    Load,
    #[token("to")]
    To,
    #[token("from")]
    From,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[regex("[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    #[regex("[0-9]+")]
    Int,
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?")]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+")]
    Float,
    /// A string; `false` when the line ends before its closing quote.
    #[token("\"", string)]
    Str(bool),
    #[token("\n")]
    Newline,
    #[token(";")]
    Semi,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("=")]
    Eq,
    #[token("->")]
    Arrow,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("@")]
    At,
}

/// The tokens the grammar consumes.
#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Data,
    Model,
    Fit,
    On,
    Layer,
    Fn,
    Let,
    ParamKw,
    Forward,
    Evaluate,
    Predict,
    Generate,
    Save,
    Load,
    To,
    From,
    True,
    False,
    Ident(String),
    Int(u64),
    Float(f64),
    Str(String),
    /// A number literal that does not fit; already reported, parsed as an error expression.
    BadNumber,
    /// A statement separator inside `{ }` (a newline or `;`).
    Nl,
    /// An item separator at the top level (a newline or `;`).
    TopNl,
    /// A `;` inside `( )` or `[ ]`, where it is never valid.
    Semi,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Eq,
    Arrow,
    Plus,
    Minus,
    Star,
    Slash,
    At,
}

impl Token {
    /// Keywords that only ever start a top-level item: a delimiter still open before one was
    /// never closed, and a line break before one always ends the previous item.
    pub fn starts_item(&self) -> bool {
        matches!(
            self,
            Token::Data
                | Token::Model
                | Token::Layer
                | Token::Fn
                | Token::Fit
                | Token::Evaluate
                | Token::Predict
                | Token::Generate
                | Token::Save
                | Token::Load
        )
    }
}

pub type Spanned = (usize, Token, usize);

/// The lexer's output.
pub struct Lexed {
    pub tokens: Vec<Spanned>,
    pub diagnostics: Vec<Diagnostic>,
    /// From an unclosed delimiter to where it was closed for it: parse errors in here are
    /// consequences of the missing closer and are not reported again.
    pub unclosed: Vec<Span>,
}

/// Lexes `source` into grammar tokens plus diagnostics for what could not be lexed.
pub fn lex(source: &str) -> Lexed {
    let mut state = Balancer::default();
    let mut lexer = Raw::lexer(source);
    // A byte-order mark some editors write first is not part of the program.
    if source.starts_with('\u{feff}') {
        lexer.bump('\u{feff}'.len_utf8());
    }
    let mut bad_char: Option<Span> = None;
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        let raw = match result {
            Ok(raw) => raw,
            Err(()) => {
                // Merge runs of unknown characters into one diagnostic.
                bad_char = Some(match bad_char {
                    Some(prev) if prev.end == span.start => prev.join(span),
                    Some(prev) => {
                        state.diagnostics.push(unknown_char(prev, source));
                        span
                    }
                    None => span,
                });
                continue;
            }
        };
        if let Some(prev) = bad_char.take() {
            state.diagnostics.push(unknown_char(prev, source));
        }
        let slice = lexer.slice();
        let token = match raw {
            Raw::Data => Token::Data,
            Raw::Model => Token::Model,
            Raw::Fit => Token::Fit,
            Raw::On => Token::On,
            Raw::Layer => Token::Layer,
            Raw::Fn => Token::Fn,
            Raw::Let => Token::Let,
            Raw::ParamKw => Token::ParamKw,
            Raw::Forward => Token::Forward,
            Raw::Evaluate => Token::Evaluate,
            Raw::Predict => Token::Predict,
            Raw::Generate => Token::Generate,
            Raw::Save => Token::Save,
            Raw::Load => Token::Load,
            Raw::To => Token::To,
            Raw::From => Token::From,
            Raw::True => Token::True,
            Raw::False => Token::False,
            Raw::Ident => Token::Ident(slice.to_string()),
            Raw::Int => match slice.parse::<u64>() {
                Ok(value) => Token::Int(value),
                Err(_) => {
                    state.diagnostics.push(
                        Diagnostic::error("E0004", "integer literal is too large")
                            .primary(span, "does not fit in 64 bits")
                            .note(format!("the largest integer is {}", u64::MAX)),
                    );
                    Token::BadNumber
                }
            },
            Raw::Float => match slice.parse::<f64>() {
                Ok(value) if value.is_finite() => Token::Float(value),
                _ => {
                    state.diagnostics.push(
                        Diagnostic::error("E0004", "number literal is out of range")
                            .primary(span, "this number is not finite"),
                    );
                    Token::BadNumber
                }
            },
            Raw::Comment => continue,
            Raw::Str(true) => Token::Str(slice[1..slice.len() - 1].to_string()),
            Raw::Str(false) => {
                state.unterminated_string = Some(span.start);
                state.diagnostics.push(
                    Diagnostic::error("E0003", "unterminated string")
                        .primary(span, "this string has no closing `\"`")
                        .help("strings end on the same line with `\"`"),
                );
                Token::Str(slice[1..].to_string())
            }
            Raw::Newline => {
                state.newline(span, false);
                continue;
            }
            Raw::Semi => {
                state.newline(span, true);
                continue;
            }
            Raw::LParen => Token::LParen,
            Raw::RParen => Token::RParen,
            Raw::LBracket => Token::LBracket,
            Raw::RBracket => Token::RBracket,
            Raw::LBrace => Token::LBrace,
            Raw::RBrace => Token::RBrace,
            Raw::Comma => Token::Comma,
            Raw::Colon => Token::Colon,
            Raw::Eq => Token::Eq,
            Raw::Arrow => Token::Arrow,
            Raw::Plus => Token::Plus,
            Raw::Minus => Token::Minus,
            Raw::Star => Token::Star,
            Raw::Slash => Token::Slash,
            Raw::At => Token::At,
        };
        state.token(span, token);
    }
    if let Some(prev) = bad_char.take() {
        state.diagnostics.push(unknown_char(prev, source));
    }
    state.close_all(Span::new(source.len(), source.len()));
    Lexed {
        tokens: state.tokens,
        diagnostics: state.diagnostics,
        unclosed: state.unclosed,
    }
}

fn unknown_char(span: Span, source: &str) -> Diagnostic {
    let text = source.get(span.start..span.end).unwrap_or("?");
    Diagnostic::error(
        "E0002",
        format!("unknown character `{}`", text.escape_debug()),
    )
    .primary(span, "not part of the language")
}

#[derive(Default)]
struct Balancer {
    tokens: Vec<Spanned>,
    diagnostics: Vec<Diagnostic>,
    /// Open delimiters, innermost last: the opening token and its span.
    open: Vec<(Token, Span)>,
    /// A separator seen but not yet emitted: decided when the next token arrives.
    pending: Option<Span>,
    unclosed: Vec<Span>,
    /// Where the last unterminated string began: it may have swallowed a closing delimiter.
    unterminated_string: Option<usize>,
}

impl Balancer {
    fn newline(&mut self, span: Span, semicolon: bool) {
        match self.open.last() {
            Some((Token::LParen | Token::LBracket, _)) => {
                // Newlines inside parentheses are whitespace; a `;` there is a real error.
                if semicolon {
                    self.push(span, Token::Semi);
                }
            }
            _ => {
                if self.pending.is_none() {
                    self.pending = Some(span);
                }
            }
        }
    }

    fn token(&mut self, span: Span, token: Token) {
        match token {
            // Item keywords only start items: a still-open delimiter before one was never closed.
            ref token if token.starts_item() && !self.open.is_empty() => {
                self.close_all(span);
                self.pending = Some(Span::new(span.start, span.start));
            }
            _ => {}
        }
        self.flush_pending(&token);
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                self.open.push((token.clone(), span));
                self.push(span, token);
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                let opener = opener_of(&token);
                match self.open.iter().rposition(|(open, _)| *open == opener) {
                    Some(index) => {
                        self.close_to(index + 1, span);
                        self.open.pop();
                        self.push(span, token);
                    }
                    None => {
                        self.diagnostics.push(
                            Diagnostic::error(
                                "E0007",
                                format!("unmatched `{}`", delimiter_text(&token)),
                            )
                            .primary(span, "nothing to close here"),
                        );
                    }
                }
            }
            _ => self.push(span, token),
        }
    }

    /// Emits the pending separator unless the layout makes it meaningless.
    fn flush_pending(&mut self, next: &Token) {
        let Some(span) = self.pending.take() else {
            return;
        };
        if matches!(next, Token::RBrace | Token::LBrace) {
            return;
        }
        let Some((_, last, _)) = self.tokens.last() else {
            return;
        };
        let continues = matches!(
            last,
            Token::LBrace
                | Token::Nl
                | Token::TopNl
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
        );
        // An item keyword always starts a new item, even after a dangling `=` or operator.
        let starts_item = next.starts_item();
        if continues && !starts_item {
            return;
        }
        let separator = if self.open.is_empty() {
            Token::TopNl
        } else {
            Token::Nl
        };
        self.push(span, separator);
    }

    /// Closes the innermost open delimiter at `at`; `report` says whether it gets an E0006.
    fn close_innermost_reporting(&mut self, at: Span, report: bool) {
        if let Some((opener, open_span)) = self.open.pop() {
            let closer = closer_of(&opener);
            self.unclosed.push(Span::new(open_span.start, at.start));
            let swallowed = self
                .unterminated_string
                .is_some_and(|start| start > open_span.start);
            if report && !swallowed {
                self.diagnostics.push(
                    Diagnostic::error("E0006", format!("unclosed `{}`", delimiter_text(&opener)))
                        .primary(open_span, "opened here")
                        .secondary(
                            at,
                            format!("expected `{}` before this", delimiter_text(&closer)),
                        ),
                );
            }
            self.pending = None;
            self.push(Span::new(at.start, at.start), closer);
        }
    }

    /// Closes everything still open at `at`.
    fn close_all(&mut self, at: Span) {
        self.close_to(0, at);
    }

    /// Closes the open delimiters at `at` until `depth` remain (a closer that matches an outer
    /// opener closes those inside it; an item keyword or the end closes all). The innermost
    /// `MAX_UNCLOSED_REPORTED` each get an E0006 and the last of those a count of the rest: a
    /// line of a thousand `[` is one mistake, not a thousand diagnostics.
    fn close_to(&mut self, depth: usize, at: Span) {
        const MAX_UNCLOSED_REPORTED: usize = 3;
        let before = self.diagnostics.len();
        let mut closed = 0;
        while self.open.len() > depth {
            self.close_innermost_reporting(at, closed < MAX_UNCLOSED_REPORTED);
            closed += 1;
        }
        let unreported = closed.saturating_sub(MAX_UNCLOSED_REPORTED);
        if unreported > 0 && self.diagnostics.len() > before {
            let last = self.diagnostics.pop().expect("just checked");
            self.diagnostics.push(last.note(format!(
                "{unreported} more delimiter{} opened before {} unclosed too",
                if unreported == 1 { "" } else { "s" },
                if unreported == 1 { "it is" } else { "them are" },
            )));
        }
    }

    fn push(&mut self, span: Span, token: Token) {
        self.tokens.push((span.start, token, span.end));
    }
}

fn opener_of(closer: &Token) -> Token {
    match closer {
        Token::RParen => Token::LParen,
        Token::RBracket => Token::LBracket,
        _ => Token::LBrace,
    }
}

fn closer_of(opener: &Token) -> Token {
    match opener {
        Token::LParen => Token::RParen,
        Token::LBracket => Token::RBracket,
        _ => Token::RBrace,
    }
}

fn delimiter_text(token: &Token) -> &'static str {
    match token {
        Token::LParen => "(",
        Token::RParen => ")",
        Token::LBracket => "[",
        Token::RBracket => "]",
        Token::LBrace => "{",
        _ => "}",
    }
}
