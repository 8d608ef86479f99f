//! What an editor asks of a buffer, answered without I/O: diagnostics (the same check as `kiln
//! check`), hover (the type of the value under the cursor, a layer's output and parameters, a
//! built-in's signature and doc line from its one definition), inlay hints (each model line's
//! output shape, as the summary table has it), go to definition and references, completion
//! (from the definition registries, by context), document symbols and formatting
//! (`syntax::format`). The language server in `cli/lsp.rs` speaks the protocol and converts;
//! everything here is in byte offsets of the buffer, with `LineIndex` for the protocol's
//! line/UTF-16 positions.

mod complete;
mod hover;
mod names;

pub use complete::{Completion, CompletionKind};
pub use hover::{Hover, InlayHint};
pub use names::{Symbol, SymbolKind};

use crate::diag::{Diagnostic, Span};
use crate::driver::{self, Analyzed};

/// One analysed version of a buffer. Building it parses and checks; every query after is a
/// look-up.
pub struct Analysis {
    source: String,
    analyzed: Analyzed,
    lines: LineIndex,
    names: names::Names,
}

impl Analysis {
    pub fn new(source: &str) -> Analysis {
        let analyzed = driver::analyze(source);
        let names = names::Names::new(&analyzed.ast);
        Analysis {
            source: source.to_string(),
            lines: LineIndex::new(source),
            names,
            analyzed,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn lines(&self) -> &LineIndex {
        &self.lines
    }

    /// What `kiln check` reports: its errors when there are any, else its warnings.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.analyzed.diagnostics
    }

    pub fn hover(&self, offset: usize) -> Option<Hover> {
        hover::hover(self, offset)
    }

    pub fn inlay_hints(&self) -> Vec<InlayHint> {
        hover::inlay_hints(self)
    }

    /// Where the name at `offset` is defined.
    pub fn definition(&self, offset: usize) -> Option<Span> {
        self.names.definition(offset)
    }

    /// Every use of the name at `offset` (and its definition, if `declaration`).
    pub fn references(&self, offset: usize, declaration: bool) -> Vec<Span> {
        self.names.references(offset, declaration)
    }

    pub fn completions(&self, offset: usize) -> Vec<Completion> {
        complete::completions(self, offset)
    }

    pub fn symbols(&self) -> Vec<Symbol> {
        names::symbols(&self.analyzed.ast)
    }

    /// The buffer in `kiln fmt`'s layout; `None` when it does not parse (or is already so).
    pub fn formatted(&self) -> Option<String> {
        crate::syntax::format::format(&self.source)
            .ok()
            .filter(|f| *f != self.source)
    }
}

/// A position as the language server protocol counts it: zero-based line, and UTF-16 code
/// units into the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

/// Byte offsets ↔ protocol positions.
pub struct LineIndex {
    /// The byte offset of each line's start.
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let character = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.encode_utf16().count());
        Position {
            line: line as u32,
            character: character as u32,
        }
    }

    /// The byte offset of `position`, clamped to its line (and the text).
    pub fn offset(&self, position: Position) -> usize {
        let Some(&start) = self.starts.get(position.line as usize) else {
            return self.text.len();
        };
        let end = self
            .starts
            .get(position.line as usize + 1)
            .map_or(self.text.len(), |&next| next - 1);
        let mut units = 0;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= position.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }

    pub fn range(&self, span: Span) -> (Position, Position) {
        (self.position(span.start), self.position(span.end))
    }
}

/// The identifier around `offset` (touching it on either side), with its span.
fn word_at(source: &str, offset: usize) -> Option<(&str, Span)> {
    let offset = char_boundary(source, offset);
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let start = source[..offset]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_word(c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = source[offset..]
        .char_indices()
        .find(|&(_, c)| !is_word(c))
        .map_or(source.len(), |(i, _)| offset + i);
    let word = &source[start..end];
    (!word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()))
        .then_some((word, Span::new(start, end)))
}

/// `offset` moved back onto a character boundary of `source` (and into it).
fn char_boundary(source: &str, offset: usize) -> usize {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests;
