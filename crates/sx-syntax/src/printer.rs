//! The printer: [`Datum`]s back to readable source text.
//!
//! For every datum the reader produces, [`crate::parse`]`(&print(d))` yields `d` again (spans
//! aside; NaN compares unequal to itself, so compare floats by bits or with `is_nan`). The
//! output is canonical rather than a copy of the original text:
//!
//! * lists print with parentheses (`[a b]` prints as `(a b)`) and quote sugar in longhand
//!   (`'x` prints as `(quote x)`);
//! * strings are always `"..."` with the reader's escapes; control characters become `\uXXXX`;
//! * floats always contain a `.` or an exponent (`2.0`, `1e20`, `1.5e-7`) and the special
//!   values print as `+inf.0`, `-inf.0`, `+nan.0`, which the reader accepts;
//! * characters print as `#\a`, by name (`#\space`, `#\newline`, ...) or as `#\xHH`
//!   for other whitespace and control characters.
//!
//! Symbols and keywords print verbatim, so a symbol whose name is not a valid token (one made
//! at run time from an arbitrary string) does not re-read as itself.

use std::fmt::Write as _;

use crate::{Datum, DatumKind};

/// Prints `d` as readable source.
///
/// ```
/// let d = sx_syntax::parse_one("{:a [1 2.0] :b \"x\\n\"}").unwrap().unwrap();
/// assert_eq!(sx_syntax::printer::print(&d), "{:a (1 2.0) :b \"x\\n\"}");
/// ```
#[must_use]
pub fn print(d: &Datum) -> String {
    let mut out = String::new();
    write_datum(&mut out, d);
    out
}

/// Appends the readable form of `d` to `out`.
///
/// Recursion depth equals the datum's nesting depth, which the reader bounds by
/// [`crate::MAX_DEPTH`].
pub fn write_datum(out: &mut String, d: &Datum) {
    match &d.kind {
        DatumKind::Nil => out.push_str("nil"),
        DatumKind::Bool(true) => out.push_str("true"),
        DatumKind::Bool(false) => out.push_str("false"),
        DatumKind::Int(n) => out.push_str(&n.to_string()),
        DatumKind::Float(f) => out.push_str(&format_float(*f)),
        DatumKind::Rational(n, d) => {
            out.push_str(&n.to_string());
            out.push('/');
            out.push_str(&d.to_string());
        }
        DatumKind::Str(s) => write_string_literal(out, s),
        DatumKind::Char(c) => write_char_literal(out, *c),
        DatumKind::Symbol(s) => out.push_str(s),
        DatumKind::Keyword(k) => {
            out.push(':');
            out.push_str(k);
        }
        DatumKind::List(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_datum(out, item);
            }
            out.push(')');
        }
        DatumKind::Dict(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_datum(out, k);
                out.push(' ');
                write_datum(out, v);
            }
            out.push('}');
        }
        DatumKind::ReaderMacro(name, inner) => {
            out.push('#');
            out.push_str(name);
            out.push(' ');
            write_datum(out, inner);
        }
    }
}

/// Formats a float so that it re-reads as the same float: the shortest round-trip digits,
/// always with a `.` or an exponent (`2.0`, `0.1`, `1e20`, `5e-324`); `+inf.0`, `-inf.0` and
/// `+nan.0` for the special values.
#[must_use]
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "+nan.0".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+inf.0" } else { "-inf.0" }.to_string();
    }
    // `Debug` prints the shortest representation that round-trips, switching to exponent
    // notation for very large and very small magnitudes.
    let mut s = format!("{f:?}");
    if !s.contains(['.', 'e', 'E']) {
        s.push_str(".0");
    }
    s
}

/// Appends `s` as a `"..."` string literal, escaping `"`, `\`, newline, tab, return, NUL and
/// (as `\uXXXX`) every other control character.
pub fn write_string_literal(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            // All control characters are in the BMP, so four digits suffice.
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `c` as a character literal: `#\a`, `#\space`, `#\newline`, `#\tab`, `#\return`,
/// `#\nul`, `#\escape`, `#\delete`, `#\backspace`, or `#\xHH` for other whitespace and
/// control characters.
pub fn write_char_literal(out: &mut String, c: char) {
    out.push_str("#\\");
    match c {
        ' ' => out.push_str("space"),
        '\n' => out.push_str("newline"),
        '\t' => out.push_str("tab"),
        '\r' => out.push_str("return"),
        '\0' => out.push_str("nul"),
        '\u{1b}' => out.push_str("escape"),
        '\u{7f}' => out.push_str("delete"),
        '\u{8}' => out.push_str("backspace"),
        c if c.is_control() || c.is_whitespace() || c == '\u{feff}' => {
            let _ = write!(out, "x{:x}", u32::from(c));
        }
        c => out.push(c),
    }
}
