//! Syntax: the logos lexer (`token`), the lalrpop grammar (`grammar/kiln.lalrpop`), the AST and
//! its printer. Knows nothing about shapes or what a name means.

pub mod ast;
mod parser;
mod print;
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

/// The stable text form of the AST printed by `kiln dump --stage parse`.
pub fn print_ast(program: &ast::Program) -> String {
    print::print_program(program)
}
