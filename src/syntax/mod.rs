//! Syntax: the logos lexer (`token`), the lalrpop grammar (`grammar/kiln.lalrpop`), the AST and
//! its printer. Knows nothing about shapes or what a name means.

pub mod ast;
pub mod format;
mod parser;
pub mod print;
pub mod token;

use crate::diag::Diagnostic;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused)]
    grammar,
    "/kiln.rs"
);

/// Parses a whole program. Never panics: returns whatever could be read plus diagnostics.
pub fn parse(source: &str) -> (ast::Program, Vec<Diagnostic>) {
    parser::parse(source)
}

/// Parses one expression (an entry at the REPL prompt).
pub fn parse_expr(source: &str) -> (Option<ast::Expr>, Vec<Diagnostic>) {
    parser::parse_expr(source)
}

/// The stable text form of the AST printed by `kiln dump --stage parse`.
pub fn print_ast(program: &ast::Program) -> String {
    print::print_program(program)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const SEED: &str = include_str!("../../programs/seed.model");
    /// Programs using the rest of the language, mutated too.
    const MORE: [&str; 7] = [
        include_str!("../../tests/golden/check/ok/user_layer.model"),
        include_str!("../../tests/golden/check/ok/builtins.model"),
        include_str!("../../tests/golden/check/ok/functional.model"),
        include_str!("../../tests/golden/check/ok/images.model"),
        include_str!("../../tests/golden/check/ok/grad.model"),
        include_str!("../../tests/golden/check/ok/losses.model"),
        include_str!("../../tests/golden/check/ok/initializers.model"),
    ];

    /// A tiny deterministic xorshift so the fuzz test needs no dependency.
    pub(crate) struct XorShift(pub(crate) u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    pub(crate) fn mutate(rng: &mut XorShift, source: &str) -> String {
        const PIECES: [&str; 33] = [
            "layer",
            "fn",
            "let",
            "param",
            "forward",
            "grad",
            "0",
            "-1",
            "B",
            "x",
            "*",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            ",",
            ":",
            ";",
            "\n",
            "-",
            "@",
            "\"",
            "#",
            "é",
            "dense",
            "fit",
            "model",
            "data",
            "99999999999999999999999",
            "1e999",
            "0.5",
        ];
        let mut bytes: Vec<char> = source.chars().collect();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    for (i, c) in piece.chars().enumerate() {
                        bytes.insert(at + i, c);
                    }
                }
                _ => {
                    let end = (at + rng.below(20)).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
        bytes.into_iter().collect()
    }

    #[test]
    fn never_panics_on_mutated_or_random_input() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..400 {
            let source = mutate(&mut rng, SEED);
            let (program, _) = parse(&source);
            let _ = print_ast(&program);
            // What formats formats again to itself.
            if let Ok(formatted) = format::format(&source) {
                assert_eq!(
                    format::format(&formatted).as_ref(),
                    Ok(&formatted),
                    "{source:?}"
                );
            }
            let _ = crate::check::check(&program);
            // Whatever checks must also lower, differentiate and verify without panicking.
            let _ = crate::driver::dump("step", "fuzz.model", &source);
        }
        for seed in MORE {
            for _ in 0..120 {
                let source = mutate(&mut rng, seed);
                let (program, _) = parse(&source);
                let _ = print_ast(&program);
                let _ = crate::driver::dump("step", "fuzz.model", &source);
            }
        }
        for _ in 0..100 {
            let len = rng.below(200);
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
            let source = String::from_utf8_lossy(&bytes);
            let (program, _) = parse(&source);
            let _ = crate::check::check(&program);
        }
        for source in [
            "",
            "\n\n",
            "}",
            "(((",
            "model",
            "fit a on b {",
            "data x = -",
            "\"",
            "#",
        ] {
            let (program, _) = parse(source);
            let _ = crate::check::check(&program);
        }
    }

    #[test]
    fn seed_program_parses_cleanly() {
        let (program, diagnostics) = parse(SEED);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(program.items.len(), 3);
        // Also behind the byte-order mark some editors write.
        let (with_bom, diagnostics) = parse(&format!("\u{feff}{SEED}"));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(with_bom.items.len(), 3);
    }

    #[test]
    fn every_error_has_a_span_inside_the_source() {
        let source = "model m(x f32[B, 4]) -> {\n dense(8 relu\n}\n\"open";
        let (_, diagnostics) = parse(source);
        assert!(!diagnostics.is_empty());
        for d in &diagnostics {
            for label in &d.labels {
                assert!(label.span.start <= label.span.end && label.span.end <= source.len());
            }
        }
    }

    /// Every way of nesting an expression `depth` deep, as a whole `let`.
    fn nested_sources(depth: usize) -> Vec<(&'static str, String)> {
        let list = format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
        let calls = format!("{}1{}", "f(".repeat(depth - 1), ")".repeat(depth - 1));
        let tuples = format!("{}1{}", "(1, ".repeat(depth - 1), ")".repeat(depth - 1));
        vec![
            (
                "minus signs",
                format!("let n = {}1\n", "-".repeat(depth - 1)),
            ),
            (
                "a sum",
                format!("let n = {}\n", vec!["1"; depth].join(" + ")),
            ),
            (
                "a product",
                format!("let n = {}\n", vec!["2"; depth].join(" * ")),
            ),
            ("lists", format!("let n = {list}\n")),
            ("calls", format!("let n = {calls}\n")),
            ("tuples", format!("let n = {tuples}\n")),
        ]
    }

    #[test]
    fn nesting_stops_at_the_limit_with_an_error() {
        let limit = parser::MAX_NESTING as usize;
        for (what, source) in nested_sources(limit) {
            let (_, diagnostics) = parse(&source);
            assert!(
                diagnostics.iter().all(|d| d.code != "E0008"),
                "{what} {limit} deep: {diagnostics:?}"
            );
        }
        for (what, source) in nested_sources(limit + 1) {
            let (_, diagnostics) = parse(&source);
            let codes: Vec<_> = diagnostics.iter().map(|d| d.code).collect();
            assert_eq!(codes, ["E0008"], "{what} {} deep", limit + 1);
        }
        // Far past the limit: an error, not a stack overflow on this test thread's small stack
        // (building, checking or dropping a tree this deep would overflow it).
        for (what, source) in nested_sources(100_000) {
            let (program, diagnostics) = parse(&source);
            assert!(diagnostics.iter().any(|d| d.code == "E0008"), "{what}");
            let _ = crate::check::check(&program);
        }
        let (_, diagnostics) = parse_expr(&format!("{}1", "-".repeat(100_000)));
        assert!(diagnostics.iter().any(|d| d.code == "E0008"));
    }

    #[test]
    fn a_run_of_unclosed_delimiters_is_three_errors_and_a_count() {
        let (_, diagnostics) = parse(&format!("let a = {}\n", "([".repeat(500)));
        let unclosed: Vec<_> = diagnostics.iter().filter(|d| d.code == "E0006").collect();
        assert_eq!(unclosed.len(), 3, "{unclosed:?}");
        let notes: Vec<&String> = unclosed.iter().flat_map(|d| &d.notes).collect();
        assert_eq!(
            notes,
            ["997 more delimiters opened before them are unclosed too"]
        );
        let (_, diagnostics) = parse("let a = ((\n");
        assert_eq!(diagnostics.iter().filter(|d| d.code == "E0006").count(), 2);
        assert!(diagnostics.iter().all(|d| d.notes.is_empty()));
    }

    #[test]
    fn long_runs_of_minuses_or_brackets_stop_parsing_at_once() {
        // An error after a long run made the parser's recovery quadratic in the run's length.
        let started = std::time::Instant::now();
        for source in [
            format!(
                "let a = x{}y z{}w\n",
                "-".repeat(20_000),
                "-".repeat(20_000)
            ),
            format!("let a = {}y z\n", "[".repeat(20_000)),
        ] {
            let (_, diagnostics) = parse(&source);
            assert!(
                diagnostics.iter().any(|d| d.code == "E0008"),
                "{diagnostics:?}"
            );
        }
        let (_, diagnostics) = parse_expr(&format!("x{}y z", "-".repeat(20_000)));
        assert!(diagnostics.iter().any(|d| d.code == "E0008"));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_closer_that_closes_many_reports_three_and_a_count() {
        // `]` matches the outer `[` and closes the thousand `(` inside it (each was an E0006).
        let (_, diagnostics) = parse(&format!("let a = [{}]\n", "(".repeat(1000)));
        let unclosed: Vec<_> = diagnostics.iter().filter(|d| d.code == "E0006").collect();
        assert_eq!(unclosed.len(), 3, "{unclosed:?}");
        let notes: Vec<&String> = unclosed.iter().flat_map(|d| &d.notes).collect();
        assert_eq!(
            notes,
            ["997 more delimiters opened before them are unclosed too"]
        );
    }
}
