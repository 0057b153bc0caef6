//! The reader proper: source text to [`Datum`]s.
//!
//! # Design
//!
//! The reader is a hand-written scanner driven by an **explicit stack** of open constructs
//! (lists, dicts, quote sugar, reader macros, datum comments) instead of Rust recursion, so no
//! input can overflow the Rust stack. On top of that, nesting is limited to [`MAX_DEPTH`]
//! levels: the data it produces is a tree that every consumer (printer, evaluator, `Drop`)
//! walks recursively, so unbounded nesting would only move the stack overflow downstream.
//!
//! Every failure is a [`Diagnostic`]; the reader never panics and never indexes the source at a
//! position that is not a character boundary.
//!
//! # Lexical rules (decisions on top of `sx-language.md` §1)
//!
//! * Whitespace is anything [`char::is_whitespace`] accepts, plus U+FEFF (byte-order mark).
//! * A *token* (symbol, keyword, number, literal) is a maximal run of characters that are not
//!   whitespace and not one of the delimiters `(` `)` `[` `]` `{` `}` `"` `;` `'` `` ` `` `,`.
//!   So `a'b` reads as the symbol `a` followed by `'b`, and `"x"y` as a string followed by a
//!   symbol. Control characters inside a token are an error.
//! * A token that parses fully as a number is a number, otherwise it is a symbol: `1+`, `->`,
//!   `...`, `+`, `-`, `a/b` and `1/x` are symbols. Numbers are
//!   * integers `[+-]?[0-9]+`; one too big for `i64` reads as a float;
//!   * floats `[+-]?(digits.digits? | .digits | digits)` with an optional exponent
//!     `[eE][+-]?digits` (at least a `.` or an exponent), e.g. `1.5 1e3 -2.5e-3 .5 1.`,
//!     plus `+inf.0 -inf.0 +nan.0 -nan.0`;
//!   * rationals `[+-]?digits/digits`, reduced; a whole one reads as an integer (`4/2` → `2`);
//!     a zero denominator is an error; one whose reduced parts do not fit `i64` reads as a float.
//! * `true`, `false`, `nil` are literals; `:name` is a keyword (`:` alone is an error).
//! * Strings accept raw newlines and any Unicode; escapes are `\" \\ \n \t \r \0 \uXXXX`
//!   (exactly four hex digits; a UTF-16 surrogate pair `\uD83D\uDE00` is combined, a lone
//!   surrogate is an error). Raw strings `#|...|` end at the first `|`.
//! * Characters: `#\` takes the next character whatever it is (`#\(`, `#\ `, `#\;`); if further
//!   token characters follow, the whole run is a name: one of the names in §1 or `xHH..` (1–6 hex
//!   digits).
//! * `#name datum` is a reader macro; `name` is a token. `#` followed by anything else
//!   (whitespace, a bracket, end of input) is an error.
//! * Quote sugar reads as two-element lists headed by the symbols `quote`, `quasiquote`,
//!   `unquote`, `splice-unquote` (`#'x` is `(quote x)`); the head symbol's span covers the
//!   sugar characters.
//! * Dict literals keep keys as read (a keyword key stays a keyword here; the evaluator turns it
//!   into a string).

use crate::{Datum, DatumKind, Diagnostic, Span};

/// Maximum nesting depth of lists, dicts, quote sugar, reader macros and datum comments.
/// Deeper input yields the diagnostic "nesting too deep (more than 1000 levels)".
pub const MAX_DEPTH: usize = 1000;

/// Reads every top-level datum of `src`.
///
/// Returns the data in source order, or the first [`Diagnostic`] encountered. Comments and
/// datum comments (`#;x`) produce nothing.
///
/// # Errors
///
/// The first malformed construct, as a [`Diagnostic`] whose span lies within `src`.
///
/// ```
/// let data = sx_syntax::parse("(+ 1 2) ; sum\n:k").unwrap();
/// assert_eq!(data.len(), 2);
/// ```
pub fn parse(src: &str) -> Result<Vec<Datum>, Diagnostic> {
    let mut reader = Reader::new(src)?;
    let mut out = Vec::new();
    while let Some(d) = reader.read()? {
        out.push(d);
    }
    Ok(out)
}

/// Reads the first datum of `src`, or `None` if `src` holds only whitespace and comments.
///
/// Only the text up to the end of the first datum is examined: whatever follows it (see the
/// datum's `span.end`) is not checked, so `parse_one("1 )")` is `Ok(Some(1))`.
///
/// # Errors
///
/// A [`Diagnostic`] if the text up to the end of the first datum is malformed.
pub fn parse_one(src: &str) -> Result<Option<Datum>, Diagnostic> {
    Reader::new(src)?.read()
}

/// A position in the source: byte offset plus 1-based line and column (in code points).
#[derive(Clone, Copy, Debug)]
struct Pos {
    offset: usize,
    line: u32,
    col: u32,
}

/// An open construct waiting for more input.
#[derive(Debug)]
enum Frame {
    /// `(`, `[` or `{`, with the items read so far.
    Seq {
        open: char,
        close: char,
        start: Pos,
        items: Vec<Datum>,
    },
    /// Quote sugar: waits for one datum, then becomes `(head datum)`.
    Quote {
        head: &'static str,
        sugar: &'static str,
        start: Pos,
        sugar_span: Span,
    },
    /// `#name`: waits for one datum, then becomes a reader macro.
    Macro { name: String, start: Pos },
    /// `#;`: waits for one datum and drops it.
    DatumComment { start: Pos },
}

impl Frame {
    fn start(&self) -> Pos {
        match self {
            Frame::Seq { start, .. }
            | Frame::Quote { start, .. }
            | Frame::Macro { start, .. }
            | Frame::DatumComment { start } => *start,
        }
    }

    /// How the construct is written, for messages: `'`, `,@`, `#;`, `reader macro '#foo'`.
    fn describe_prefix(&self) -> String {
        match self {
            Frame::Seq { open, .. } => format!("'{open}'"),
            Frame::Quote { sugar, .. } => format!("'{sugar}'"),
            Frame::Macro { name, .. } => format!("reader macro '#{name}'"),
            Frame::DatumComment { .. } => "'#;'".to_string(),
        }
    }
}

/// The reader state: a cursor over the source plus the stack of open constructs.
struct Reader<'a> {
    src: &'a str,
    pos: Pos,
    stack: Vec<Frame>,
}

/// Characters that end a token (besides whitespace).
fn is_delimiter(c: char) -> bool {
    is_space(c)
        || matches!(
            c,
            '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';' | '\'' | '`' | ','
        )
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// Converts a byte offset to `u32`. [`Reader::new`] rejects sources longer than `u32::MAX`
/// bytes, so this never saturates in practice.
fn off32(offset: usize) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
}

fn diag(message: impl Into<String>, span: Span) -> Diagnostic {
    Diagnostic {
        message: message.into(),
        span,
    }
}

fn at(p: Pos) -> String {
    format!("{}:{}", p.line, p.col)
}

impl<'a> Reader<'a> {
    fn new(src: &'a str) -> Result<Self, Diagnostic> {
        if u32::try_from(src.len()).is_err() {
            return Err(diag(
                "input too large (the reader accepts at most 4 GiB)",
                Span {
                    start: 0,
                    end: 0,
                    line: 1,
                    col: 1,
                },
            ));
        }
        Ok(Reader {
            src,
            pos: Pos {
                offset: 0,
                line: 1,
                col: 1,
            },
            stack: Vec::new(),
        })
    }

    // ----- cursor -------------------------------------------------------------------------

    fn rest(&self) -> &'a str {
        self.src.get(self.pos.offset..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.rest().chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos.offset += c.len_utf8();
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.col = 1;
        } else {
            self.pos.col = self.pos.col.saturating_add(1);
        }
        Some(c)
    }

    fn slice(&self, from: Pos) -> &'a str {
        self.src.get(from.offset..self.pos.offset).unwrap_or("")
    }

    /// The span from `start` to the current position.
    fn span_from(&self, start: Pos) -> Span {
        Span {
            start: off32(start.offset),
            end: off32(self.pos.offset),
            line: start.line,
            col: start.col,
        }
    }

    /// The span from `start` to the end of the input.
    fn span_to_eof(&self, start: Pos) -> Span {
        Span {
            start: off32(start.offset),
            end: off32(self.src.len()),
            line: start.line,
            col: start.col,
        }
    }

    /// Skips whitespace and `;` comments.
    fn skip_atmosphere(&mut self) {
        while let Some(c) = self.peek() {
            if is_space(c) {
                self.bump();
            } else if c == ';' {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    // ----- the driver ---------------------------------------------------------------------

    /// Reads the next top-level datum; `None` at end of input.
    fn read(&mut self) -> Result<Option<Datum>, Diagnostic> {
        self.stack.clear();
        loop {
            self.skip_atmosphere();
            let start = self.pos;
            let Some(c) = self.peek() else {
                return match self.stack.last() {
                    None => Ok(None),
                    Some(frame) => Err(self.eof_error(frame)),
                };
            };
            let datum = match c {
                '(' | '[' | '{' => {
                    self.bump();
                    let close = match c {
                        '(' => ')',
                        '[' => ']',
                        _ => '}',
                    };
                    self.push(
                        Frame::Seq {
                            open: c,
                            close,
                            start,
                            items: Vec::new(),
                        },
                        start,
                    )?;
                    continue;
                }
                ')' | ']' | '}' => {
                    self.bump();
                    self.close(c, start)?
                }
                '\'' | '`' | ',' => {
                    self.bump();
                    let (head, sugar) = match c {
                        '\'' => ("quote", "'"),
                        '`' => ("quasiquote", "`"),
                        _ if self.peek() == Some('@') => {
                            self.bump();
                            ("splice-unquote", ",@")
                        }
                        _ => ("unquote", ","),
                    };
                    let sugar_span = self.span_from(start);
                    self.push(
                        Frame::Quote {
                            head,
                            sugar,
                            start,
                            sugar_span,
                        },
                        start,
                    )?;
                    continue;
                }
                '#' => match self.read_dispatch(start)? {
                    Some(d) => d,
                    None => continue,
                },
                '"' => self.read_string(start)?,
                _ => self.read_token(start)?,
            };
            if let Some(done) = self.complete(datum) {
                return Ok(Some(done));
            }
        }
    }

    /// Opens a construct, enforcing [`MAX_DEPTH`].
    fn push(&mut self, frame: Frame, start: Pos) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(diag(
                format!("nesting too deep (more than {MAX_DEPTH} levels)"),
                self.span_from(start),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Hands a finished datum to the innermost open construct. Returns the datum when it is a
    /// complete top-level form.
    fn complete(&mut self, mut d: Datum) -> Option<Datum> {
        loop {
            match self.stack.last_mut() {
                None => return Some(d),
                Some(Frame::Seq { items, .. }) => {
                    items.push(d);
                    return None;
                }
                Some(Frame::DatumComment { .. }) => {
                    self.stack.pop();
                    return None;
                }
                Some(Frame::Quote { .. } | Frame::Macro { .. }) => {
                    let Some(frame) = self.stack.pop() else {
                        return Some(d);
                    };
                    let start = frame.start();
                    let span = Span {
                        start: off32(start.offset),
                        end: d.span.end,
                        line: start.line,
                        col: start.col,
                    };
                    let kind = match frame {
                        Frame::Quote {
                            head, sugar_span, ..
                        } => DatumKind::List(vec![
                            Datum {
                                kind: DatumKind::Symbol(head.to_string()),
                                span: sugar_span,
                            },
                            d,
                        ]),
                        Frame::Macro { name, .. } => DatumKind::ReaderMacro(name, Box::new(d)),
                        // Unreachable: matched above. Keep the datum rather than panic.
                        Frame::Seq { .. } | Frame::DatumComment { .. } => return Some(d),
                    };
                    d = Datum { kind, span };
                }
            }
        }
    }

    /// Handles a closing bracket `c` that starts at `start` (already consumed).
    fn close(&mut self, c: char, start: Pos) -> Result<Datum, Diagnostic> {
        let here = self.span_from(start);
        match self.stack.last() {
            None => Err(diag(format!("unexpected '{c}'"), here)),
            Some(Frame::Seq {
                open,
                close,
                start: open_at,
                ..
            }) if *close != c => Err(diag(
                format!(
                    "mismatched '{c}': expected '{close}' to close '{open}' opened at {}",
                    at(*open_at)
                ),
                here,
            )),
            Some(Frame::Seq { .. }) => {
                let Some(Frame::Seq {
                    open,
                    start: open_at,
                    items,
                    ..
                }) = self.stack.pop()
                else {
                    return Err(diag(format!("unexpected '{c}'"), here));
                };
                let span = self.span_from(open_at);
                if open != '{' {
                    return Ok(Datum {
                        kind: DatumKind::List(items),
                        span,
                    });
                }
                if items.len() % 2 != 0 {
                    let key_span = items.last().map_or(here, |k| k.span);
                    return Err(diag(
                        format!(
                            "missing value for key in dict literal opened at {}",
                            at(open_at)
                        ),
                        key_span,
                    ));
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Ok(Datum {
                    kind: DatumKind::Dict(pairs),
                    span,
                })
            }
            Some(frame) => Err(diag(
                format!(
                    "expected a datum after {} at {}, found '{c}'",
                    frame.describe_prefix(),
                    at(frame.start())
                ),
                here,
            )),
        }
    }

    /// The diagnostic for end of input while `frame` is still open.
    fn eof_error(&self, frame: &Frame) -> Diagnostic {
        match frame {
            Frame::Seq { open, start, .. } => {
                let mut span = self.span_to_eof(*start);
                span.end = span.start.saturating_add(1);
                diag(format!("unclosed '{open}' opened at {}", at(*start)), span)
            }
            Frame::Quote { sugar_span, .. } => diag(
                format!(
                    "expected a datum after {} at {}, found end of input",
                    frame.describe_prefix(),
                    at(frame.start())
                ),
                *sugar_span,
            ),
            Frame::Macro { start, .. } | Frame::DatumComment { start } => diag(
                format!(
                    "expected a datum after {} at {}, found end of input",
                    frame.describe_prefix(),
                    at(*start)
                ),
                self.span_to_eof(*start),
            ),
        }
    }

    // ----- `#` dispatch -------------------------------------------------------------------

    /// Reads what follows `#`. Returns a datum for atoms (`#\c`, `#|..|`) and `None` when it
    /// opened a construct (`#;`, `#'`, `#name`).
    fn read_dispatch(&mut self, start: Pos) -> Result<Option<Datum>, Diagnostic> {
        match self.peek2() {
            Some(';') => {
                self.bump();
                self.bump();
                self.push(Frame::DatumComment { start }, start)?;
                Ok(None)
            }
            Some('\'') => {
                self.bump();
                self.bump();
                let sugar_span = self.span_from(start);
                self.push(
                    Frame::Quote {
                        head: "quote",
                        sugar: "#'",
                        start,
                        sugar_span,
                    },
                    start,
                )?;
                Ok(None)
            }
            Some('\\') => self.read_char(start).map(Some),
            Some('|') => self.read_raw_string(start).map(Some),
            Some(c) if !is_delimiter(c) && !c.is_control() => {
                self.bump();
                let name_start = self.pos;
                while let Some(c) = self.peek() {
                    if is_delimiter(c) {
                        break;
                    }
                    if c.is_control() {
                        return Err(self.control_char_error(c));
                    }
                    self.bump();
                }
                let name = self.slice(name_start).to_string();
                self.push(Frame::Macro { name, start }, start)?;
                Ok(None)
            }
            _ => {
                self.bump();
                Err(diag(
                    "expected a reader macro name, '\\', '|', ';' or ''' after '#'",
                    self.span_from(start),
                ))
            }
        }
    }

    /// Reads `#\c`, `#\name` or `#\xHH`.
    fn read_char(&mut self, start: Pos) -> Result<Datum, Diagnostic> {
        self.bump(); // '#'
        self.bump(); // '\'
        let Some(first) = self.bump() else {
            return Err(diag(
                "expected a character after '#\\'",
                self.span_from(start),
            ));
        };
        let name_start_offset = self.pos.offset - first.len_utf8();
        if !is_delimiter(first) {
            while let Some(c) = self.peek() {
                if is_delimiter(c) {
                    break;
                }
                self.bump();
            }
        }
        let name = self
            .src
            .get(name_start_offset..self.pos.offset)
            .unwrap_or("");
        let span = self.span_from(start);
        let c = if name.chars().count() == 1 {
            first
        } else if let Some(c) = named_char(name) {
            c
        } else if let Some(hex) = name.strip_prefix('x').filter(|h| is_hex(h) && h.len() <= 6) {
            let code = u32::from_str_radix(hex, 16).unwrap_or(u32::MAX);
            match char::from_u32(code) {
                Some(c) => c,
                None => {
                    return Err(diag(
                        format!("invalid character code '#\\{name}' (not a Unicode scalar value)"),
                        span,
                    ))
                }
            }
        } else {
            return Err(diag(
                format!("unknown character name '#\\{}'", name.escape_debug()),
                span,
            ));
        };
        Ok(Datum {
            kind: DatumKind::Char(c),
            span,
        })
    }

    /// Reads a raw string `#|...|` (no escapes).
    fn read_raw_string(&mut self, start: Pos) -> Result<Datum, Diagnostic> {
        self.bump(); // '#'
        self.bump(); // '|'
        let body_start = self.pos;
        loop {
            match self.peek() {
                None => {
                    return Err(diag(
                        format!("unterminated raw string starting at {}", at(start)),
                        self.span_to_eof(start),
                    ))
                }
                Some('|') => break,
                Some(_) => {
                    self.bump();
                }
            }
        }
        let body = self.slice(body_start).to_string();
        self.bump(); // '|'
        Ok(Datum {
            kind: DatumKind::Str(body),
            span: self.span_from(start),
        })
    }

    // ----- strings ------------------------------------------------------------------------

    fn unterminated_string(&self, start: Pos) -> Diagnostic {
        diag(
            format!("unterminated string starting at {}", at(start)),
            self.span_to_eof(start),
        )
    }

    /// Reads a `"..."` string with escapes.
    fn read_string(&mut self, start: Pos) -> Result<Datum, Diagnostic> {
        self.bump(); // '"'
        let mut s = String::new();
        loop {
            // Copy the run of plain characters in one go.
            let rest = self.rest();
            let run = rest.find(['"', '\\']).unwrap_or(rest.len());
            if run > 0 {
                let plain = rest.get(..run).unwrap_or("");
                s.push_str(plain);
                for _ in plain.chars() {
                    self.bump();
                }
            }
            let esc_start = self.pos;
            match self.bump() {
                None => return Err(self.unterminated_string(start)),
                Some('"') => break,
                Some(_backslash) => {
                    let c = match self.bump() {
                        None => return Err(self.unterminated_string(start)),
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('0') => '\0',
                        Some('u') => self.read_unicode_escape(start, esc_start)?,
                        Some(other) => {
                            return Err(diag(
                                format!(
                                    "unknown escape '\\{}' in string (known: \\\" \\\\ \\n \\t \\r \\0 \\uXXXX)",
                                    other.escape_debug()
                                ),
                                self.span_from(esc_start),
                            ))
                        }
                    };
                    s.push(c);
                }
            }
        }
        Ok(Datum {
            kind: DatumKind::Str(s),
            span: self.span_from(start),
        })
    }

    /// Reads the four hex digits of a `\u` escape (the `\u` is consumed).
    fn read_hex4(&mut self, start: Pos, esc_start: Pos) -> Result<u32, Diagnostic> {
        let mut code = 0u32;
        for _ in 0..4 {
            match self.peek() {
                None => return Err(self.unterminated_string(start)),
                Some(c) => match c.to_digit(16) {
                    Some(d) => {
                        self.bump();
                        code = code * 16 + d;
                    }
                    None => {
                        return Err(diag(
                            "invalid unicode escape: expected 4 hex digits after '\\u'",
                            self.span_from(esc_start),
                        ))
                    }
                },
            }
        }
        Ok(code)
    }

    /// Reads the rest of a `\uXXXX` escape, combining a UTF-16 surrogate pair.
    fn read_unicode_escape(&mut self, start: Pos, esc_start: Pos) -> Result<char, Diagnostic> {
        let hi = self.read_hex4(start, esc_start)?;
        let lone = |r: &Self, code: u32| {
            diag(
                format!("invalid unicode escape: unpaired surrogate \\u{code:04X}"),
                r.span_from(esc_start),
            )
        };
        if (0xDC00..=0xDFFF).contains(&hi) {
            return Err(lone(self, hi));
        }
        if (0xD800..=0xDBFF).contains(&hi) {
            if !self.rest().starts_with("\\u") {
                return Err(lone(self, hi));
            }
            let low_start = self.pos;
            self.bump();
            self.bump();
            let lo = self.read_hex4(start, low_start)?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err(lone(self, hi));
            }
            let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return char::from_u32(code).ok_or_else(|| lone(self, hi));
        }
        char::from_u32(hi).ok_or_else(|| lone(self, hi))
    }

    // ----- tokens -------------------------------------------------------------------------

    fn control_char_error(&self, c: char) -> Diagnostic {
        let mut span = self.span_from(self.pos);
        span.end = off32(self.pos.offset + c.len_utf8());
        diag(
            format!("unexpected control character U+{:04X}", c as u32),
            span,
        )
    }

    /// Reads a token and classifies it: literal, keyword, number or symbol.
    fn read_token(&mut self, start: Pos) -> Result<Datum, Diagnostic> {
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                break;
            }
            if c.is_control() {
                return Err(self.control_char_error(c));
            }
            self.bump();
        }
        let text = self.slice(start);
        let span = self.span_from(start);
        let kind = match text {
            "true" => DatumKind::Bool(true),
            "false" => DatumKind::Bool(false),
            "nil" => DatumKind::Nil,
            _ => {
                if let Some(name) = text.strip_prefix(':') {
                    if name.is_empty() {
                        return Err(diag("expected a keyword name after ':'", span));
                    }
                    DatumKind::Keyword(name.to_string())
                } else {
                    match parse_number(text) {
                        Some(Ok(kind)) => kind,
                        Some(Err(message)) => return Err(diag(message, span)),
                        None => DatumKind::Symbol(text.to_string()),
                    }
                }
            }
        };
        Ok(Datum { kind, span })
    }
}

/// The characters named in §1 of the language contract.
fn named_char(name: &str) -> Option<char> {
    Some(match name {
        "space" => ' ',
        "newline" => '\n',
        "tab" => '\t',
        "return" => '\r',
        "nul" | "null" => '\0',
        "escape" | "altmode" => '\u{1b}',
        "delete" | "rubout" => '\u{7f}',
        "backspace" => '\u{8}',
        _ => return None,
    })
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn count_digits(b: &[u8], from: usize) -> usize {
    b.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|c| c.is_ascii_digit()).count()
    })
}

/// Parses `text` as a number literal. `None` means "not a number" (the token is a symbol);
/// `Some(Err(message))` is a malformed number that must be reported.
pub(crate) fn parse_number(text: &str) -> Option<Result<DatumKind, String>> {
    match text {
        "+inf.0" => return Some(Ok(DatumKind::Float(f64::INFINITY))),
        "-inf.0" => return Some(Ok(DatumKind::Float(f64::NEG_INFINITY))),
        "+nan.0" | "-nan.0" => return Some(Ok(DatumKind::Float(f64::NAN))),
        _ => {}
    }
    let b = text.as_bytes();
    let mut i = 0;
    let negative = b.first() == Some(&b'-');
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let int_start = i;
    let int_digits = count_digits(b, i);
    i += int_digits;

    // Rational n/d.
    if b.get(i) == Some(&b'/') {
        let den_digits = count_digits(b, i + 1);
        if int_digits == 0 || den_digits == 0 || i + 1 + den_digits != b.len() {
            return None;
        }
        let num = text.get(int_start..i)?;
        let den = text.get(i + 1..)?;
        return Some(rational(negative, num, den));
    }

    let mut is_float = false;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        is_float = true;
        frac_digits = count_digits(b, i + 1);
        i += 1 + frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        is_float = true;
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = count_digits(b, i);
        if exp_digits == 0 {
            return None;
        }
        i += exp_digits;
    }
    if i != b.len() {
        return None;
    }
    if !is_float {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Ok(DatumKind::Int(n)));
        }
    }
    // The grammar above is a subset of what `f64::from_str` accepts.
    text.parse::<f64>().ok().map(|f| Ok(DatumKind::Float(f)))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Converts a magnitude and sign to `i64` if it fits.
fn signed(negative: bool, magnitude: u128) -> Option<i64> {
    if negative {
        // -(2^63) fits in i64; negating in i128 cannot overflow.
        i128::try_from(magnitude)
            .ok()
            .and_then(|m| i64::try_from(-m).ok())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Approximates a (possibly huge) decimal digit string as `mantissa * 10^exponent`.
fn approx_decimal(digits: &str) -> (f64, i64) {
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return (0.0, 0);
    }
    let head = digits.get(..digits.len().min(17)).unwrap_or("1");
    let mantissa = head.parse::<f64>().unwrap_or(1.0);
    let exponent = i64::try_from(digits.len() - head.len()).unwrap_or(i64::MAX);
    (mantissa, exponent)
}

/// Builds the value of the rational literal `[-]num/den` (digit strings).
fn rational(negative: bool, num: &str, den: &str) -> Result<DatumKind, String> {
    if den.bytes().all(|b| b == b'0') {
        return Err("division by zero in rational literal".to_string());
    }
    let as_float = || {
        if let (Ok(n), Ok(d)) = (num.parse::<f64>(), den.parse::<f64>()) {
            if n.is_finite() && d.is_finite() {
                return DatumKind::Float(if negative { -(n / d) } else { n / d });
            }
        }
        let (nm, ne) = approx_decimal(num);
        let (dm, de) = approx_decimal(den);
        let exp = i32::try_from((ne - de).clamp(-800, 800)).unwrap_or(0);
        let q = (nm / dm) * 10f64.powi(exp);
        DatumKind::Float(if negative { -q } else { q })
    };
    let (Ok(n), Ok(d)) = (num.parse::<u128>(), den.parse::<u128>()) else {
        return Ok(as_float());
    };
    let g = gcd(n, d);
    let (n, d) = (n / g, d / g);
    let value = match (signed(negative, n), i64::try_from(d)) {
        (Some(n), Ok(1)) => DatumKind::Int(n),
        (Some(n), Ok(d)) => DatumKind::Rational(n, d),
        _ => {
            #[allow(clippy::cast_precision_loss)] // Deliberate: too big for i64, read as float.
            let q = n as f64 / d as f64;
            DatumKind::Float(if negative { -q } else { q })
        }
    };
    Ok(value)
}
