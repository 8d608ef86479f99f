//! Glue between the lexer, the generated parser and diagnostics.

use super::ast::{BinaryOp, Expr, ExprKind, Program};
use super::grammar::{ExprParser, ProgramParser};
use super::token::{Token, lex};
use crate::diag::{Diagnostic, Span};
use lalrpop_util::{ErrorRecovery, ParseError};

pub fn parse(source: &str) -> (Program, Vec<Diagnostic>) {
    let (program, diagnostics) = parse_with(source, |recovered, tokens| {
        ProgramParser::new().parse(recovered, tokens)
    });
    (program.unwrap_or_default(), diagnostics)
}

/// One expression (a REPL entry).
pub fn parse_expr(source: &str) -> (Option<Expr>, Vec<Diagnostic>) {
    parse_with(source, |recovered, tokens| {
        ExprParser::new().parse(recovered, tokens)
    })
}

type Recovered = Vec<ErrorRecovery<usize, Token, Limit>>;
type Spanned = Result<(usize, Token, usize), Limit>;

/// Lexes, runs a generated parser, and turns every error into a diagnostic.
fn parse_with<T>(
    source: &str,
    run: impl FnOnce(
        &mut Recovered,
        std::vec::IntoIter<Spanned>,
    ) -> Result<T, ParseError<usize, Token, Limit>>,
) -> (Option<T>, Vec<Diagnostic>) {
    let lexed = lex(source);
    let mut diagnostics = lexed.diagnostics;
    if let Some(span) = far_too_deep(&lexed.tokens) {
        // Parsing stops at a nesting limit anyway; here it stops before the parser holds the
        // run on its stack, where recovering from a later error was quadratic (`x - - … y z`
        // with 20,000 minuses took 15 s).
        diagnostics.push(convert(
            ParseError::User {
                error: Limit::Nesting(span),
            },
            source.len(),
        ));
        return (None, diagnostics);
    }
    let mut recovered: Recovered = Vec::new();
    let tokens: Vec<Spanned> = lexed.tokens.into_iter().map(Ok).collect();
    let result = run(&mut recovered, tokens.into_iter());
    let mut errors: Vec<_> = recovered.into_iter().map(|r| r.error).collect();
    let parsed = match result {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    for error in errors {
        let diagnostic = convert(error, source.len());
        let at = diagnostic.labels.first().map_or(0, |l| l.span.start);
        // A missing closer was already reported; what it confused is not a new mistake.
        if lexed.unclosed.iter().any(|r| r.start <= at && at <= r.end) {
            continue;
        }
        diagnostics.push(diagnostic);
    }
    diagnostics.sort_by_key(|d| d.labels.first().map(|l| l.span.start).unwrap_or(0));
    (parsed, diagnostics)
}

/// The deepest expression the parser accepts. The stages after it walk expressions
/// recursively; this bound (Python's parser stops at 200 nested brackets) keeps them within a
/// thread's stack, however the nesting is written (`-----x`, `1 + 1 + … + 1`, `[[[…]]]`).
pub const MAX_NESTING: u32 = 200;

/// The span of a run of tokens that can only parse nested past twice `MAX_NESTING`: that many
/// minuses in a row (each after the first is a unary minus around the rest) or brackets open at
/// once. Shorter runs are left to the grammar's own check (`nested`), which is exact.
fn far_too_deep(tokens: &[(usize, Token, usize)]) -> Option<Span> {
    let bound = 2 * MAX_NESTING as usize;
    let (mut minuses, mut open) = (Vec::<usize>::new(), Vec::<usize>::new());
    for &(start, ref token, end) in tokens {
        match token {
            Token::Minus => minuses.push(start),
            _ => minuses.clear(),
        }
        match token {
            Token::LParen | Token::LBracket => open.push(start),
            Token::RParen | Token::RBracket => {
                open.pop();
            }
            _ => {}
        }
        if minuses.len() > bound {
            return Some(Span::new(minuses[0], end));
        }
        if open.len() > bound {
            return Some(Span::new(open[0], end));
        }
    }
    None
}

/// A limit of the parser's, the one error that stops it (lexical problems are diagnostics
/// already, and syntax errors are recovered from).
#[derive(Clone, Debug, PartialEq)]
pub enum Limit {
    /// An expression more than `MAX_NESTING` deep: its span.
    Nesting(Span),
}

/// `expr`, unless it is nested past `MAX_NESTING`; called from the grammar for every
/// expression with sub-expressions.
pub(crate) fn nested(expr: Expr) -> Result<Expr, ParseError<usize, Token, Limit>> {
    if expr.depth > MAX_NESTING {
        Err(ParseError::User {
            error: Limit::Nesting(expr.span),
        })
    } else {
        Ok(expr)
    }
}

/// Builds `lhs op rhs`; called from the grammar.
pub(crate) fn binary(l: usize, r: usize, op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::new(
        ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        Span::new(l, r),
    )
}

fn convert(error: ParseError<usize, Token, Limit>, end: usize) -> Diagnostic {
    match error {
        ParseError::InvalidToken { location } => Diagnostic::error("E0001", "invalid token")
            .primary(Span::new(location, location), "here"),
        ParseError::UnrecognizedEof { location, expected } => {
            let at = Span::new(location.min(end), location.min(end));
            Diagnostic::error("E0005", "unexpected end of file")
                .primary(at, format!("expected {}", describe_expected(&expected)))
        }
        ParseError::UnrecognizedToken {
            token: (l, token, r),
            expected,
        } => Diagnostic::error("E0001", format!("unexpected {}", describe_token(&token))).primary(
            Span::new(l, r),
            format!("expected {}", describe_expected(&expected)),
        ),
        ParseError::ExtraToken {
            token: (l, token, r),
        } => Diagnostic::error("E0001", format!("unexpected {}", describe_token(&token)))
            .primary(Span::new(l, r), "expected the end of the file"),
        ParseError::User {
            error: Limit::Nesting(span),
        } => Diagnostic::error(
            "E0008",
            format!("expression nested more than {MAX_NESTING} deep"),
        )
        .primary(span, "this is too deeply nested")
        .note("split it with `let` bindings or a `fn`"),
    }
}

fn describe_token(token: &Token) -> String {
    match token {
        Token::Ident(name) => format!("name `{name}`"),
        Token::Int(n) => format!("number `{n}`"),
        Token::Float(x) => format!("number `{x:?}`"),
        Token::Str(s) => format!("string \"{s}\""),
        Token::BadNumber => "number".to_string(),
        Token::Nl | Token::TopNl => "end of line".to_string(),
        other => format!("`{}`", token_text(other)),
    }
}

fn token_text(token: &Token) -> &'static str {
    match token {
        Token::Data => "data",
        Token::Model => "model",
        Token::Fit => "fit",
        Token::On => "on",
        Token::Layer => "layer",
        Token::Fn => "fn",
        Token::Let => "let",
        Token::ParamKw => "param",
        Token::Forward => "forward",
        Token::Evaluate => "evaluate",
        Token::Predict => "predict",
        Token::Save => "save",
        Token::Load => "load",
        Token::To => "to",
        Token::From => "from",
        Token::True => "true",
        Token::False => "false",
        Token::Semi => ";",
        Token::LParen => "(",
        Token::RParen => ")",
        Token::LBracket => "[",
        Token::RBracket => "]",
        Token::LBrace => "{",
        Token::RBrace => "}",
        Token::Comma => ",",
        Token::Colon => ":",
        Token::Eq => "=",
        Token::Arrow => "->",
        Token::Plus => "+",
        Token::Minus => "-",
        Token::Star => "*",
        Token::Slash => "/",
        Token::At => "@",
        _ => "token",
    }
}

/// Turns lalrpop's terminal names into words, folding every expression start into one phrase.
fn describe_expected(expected: &[String]) -> String {
    const EXPR_START: [&str; 10] = [
        "Name",
        "Int",
        "Float",
        "Str",
        "BadNumber",
        "\"true\"",
        "\"false\"",
        "\"(\"",
        "\"[\"",
        "\"-\"",
    ];
    let is_expr = EXPR_START.iter().all(|t| expected.iter().any(|e| e == t));
    let mut words: Vec<String> = Vec::new();
    if is_expr {
        words.push("an expression".to_string());
    }
    for name in expected {
        if is_expr && EXPR_START.contains(&name.as_str()) {
            continue;
        }
        let word = match name.as_str() {
            "Name" => "a name".to_string(),
            "Int" => "an integer".to_string(),
            "Float" => "a number".to_string(),
            "Str" => "a string".to_string(),
            "BadNumber" => continue,
            "Nl" | "TopNl" => "a new line".to_string(),
            quoted => format!("`{}`", quoted.trim_matches('"')),
        };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    match words.len() {
        0 => "something else".to_string(),
        1 => words.remove(0),
        _ => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {}", words.join(", "), last)
        }
    }
}
