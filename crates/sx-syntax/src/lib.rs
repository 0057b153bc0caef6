//! The SX reader: turns source text into [`Datum`]s carrying source [`Span`]s.
//!
//! Architecture invariant: this crate knows nothing about the runtime heap; it
//! produces plain Rust data. It never panics: any input yields either data or a
//! [`Diagnostic`] with a line and column.

pub mod printer;
mod reader;

pub use reader::{parse, parse_one, MAX_DEPTH};

/// A region of source text. `line` and `col` are 1-based and refer to `start`;
/// columns count Unicode code points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Byte offset of the first character.
    pub start: u32,
    /// Byte offset one past the last character.
    pub end: u32,
    pub line: u32,
    pub col: u32,
}

/// One read datum.
#[derive(Clone, Debug, PartialEq)]
pub struct Datum {
    pub kind: DatumKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DatumKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// An exact rational, already reduced, denominator > 1 (a whole rational reads as `Int`).
    Rational(i64, i64),
    Str(String),
    Char(char),
    Symbol(String),
    /// A keyword, without the leading colon.
    Keyword(String),
    /// `( ... )` or `[ ... ]`; quote sugar also reads as a list (`'x` = `(quote x)`).
    List(Vec<Datum>),
    /// `{ k v ... }` in source order.
    Dict(Vec<(Datum, Datum)>),
    /// `#name datum`: an extensible reader macro, resolved by the runtime.
    ReaderMacro(String, Box<Datum>),
}

impl std::fmt::Display for Datum {
    /// The readable form, as [`printer::print`] writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        printer::write_datum(&mut out, self);
        f.write_str(&out)
    }
}

/// A reader error with the place it refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.span.line, self.span.col, self.message)
    }
}

impl std::error::Error for Diagnostic {}
