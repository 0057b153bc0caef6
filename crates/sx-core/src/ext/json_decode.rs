//! `json-decode`: JSON text (RFC 8259) to SX values.
//!
//! Objects become dicts (keys in document order; a repeated key keeps its
//! first position and its last value), arrays lists, strings strings,
//! `true`/`false`/`null` true/false/nil. A number without a fraction or
//! exponent is an integer (a float when it does not fit in 64 bits; `-0`
//! is 0); any other number is a float.
//!
//! Errors read `json-decode: WHAT at N`, N the 0-based position in code
//! points of the offending character (or of the end of the input). The
//! grammar is strict: no comments, trailing commas, single quotes, leading
//! zeros, `+`, `NaN`, unescaped control characters in strings, or text
//! after the value. Whitespace is space, tab, newline and carriage return.
//! A `\u` escape of a lone surrogate decodes to U+FFFD. Nesting deeper than
//! 512 arrays/objects is an error.

use super::def;
use crate::error::{Error, Result};
use crate::heap::DictMap;
use crate::prims::PrimDef;
use crate::rt::Rt;
use crate::value::Value;
use std::rc::Rc;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 512;

pub fn primitives() -> Vec<PrimDef> {
    vec![def("json-decode", 1, Some(1), true, |rt, a| {
        let s = rt.expect_str("json-decode", a[0])?;
        decode(rt, &s)
    })]
}

/// Decode a complete JSON text.
pub fn decode(rt: &mut Rt, text: &str) -> Result<Value> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value(rt, 0)?;
    p.ws();
    if p.i < p.b.len() {
        return Err(p.err_here("unexpected trailing characters"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    /// Code-point position of byte offset `at`.
    fn pos(&self, at: usize) -> usize {
        let at = at.min(self.s.len());
        self.s.as_bytes()[..at]
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count()
    }

    fn err_at(&self, what: &str, at: usize) -> Error {
        Error::Msg(format!("json-decode: {what} at {}", self.pos(at)))
    }

    /// An error about the character at the cursor (or the end of input).
    fn err_here(&self, what: &str) -> Error {
        if self.i >= self.b.len() {
            return self.err_at("unexpected end of input", self.i);
        }
        self.err_at(what, self.i)
    }

    fn unexpected(&self) -> Error {
        match self.s.get(self.i..).and_then(|r| r.chars().next()) {
            Some(c) => self.err_at(&format!("unexpected character {c:?}"), self.i),
            None => self.err_at("unexpected end of input", self.i),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self, rt: &mut Rt, depth: usize) -> Result<Value> {
        match self.peek() {
            None => Err(self.err_here("")),
            Some(b'{') => self.object(rt, depth + 1),
            Some(b'[') => self.array(rt, depth + 1),
            Some(b'"') => {
                let s = self.string()?;
                Ok(rt.string(s))
            }
            Some(b't') => self.literal("true", Value::TRUE),
            Some(b'f') => self.literal("false", Value::FALSE),
            Some(b'n') => self.literal("null", Value::NIL),
            Some(b'-' | b'0'..=b'9') => self.number(rt),
            Some(_) => Err(self.unexpected()),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value> {
        let start = self.i;
        for (k, want) in word.bytes().enumerate() {
            match self.b.get(start + k) {
                Some(c) if *c == want => {}
                None => {
                    self.i = self.b.len();
                    return Err(self.err_here(""));
                }
                Some(_) => return Err(self.err_at("invalid literal", start)),
            }
        }
        self.i = start + word.len();
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self, rt: &mut Rt) -> Result<Value> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err_at("invalid number", start)),
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            integral = false;
            if self.digits() == 0 {
                return Err(self.err_at("invalid number", start));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            integral = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err_at("invalid number", start));
            }
        }
        let text = &self.s[start..self.i];
        if integral {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(rt.int(n));
            }
        }
        match text.parse::<f64>() {
            Ok(f) => Ok(rt.float(f)),
            Err(_) => Err(self.err_at("invalid number", start)),
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let start = self.i;
        let mut n = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                None => return Err(self.err_here("")),
                Some(c) => (c as char).to_digit(16),
            };
            match d {
                Some(d) => n = n * 16 + d,
                None => return Err(self.err_at("invalid unicode escape", start - 2)),
            }
            self.i += 1;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        // The cursor is on the opening quote.
        self.i += 1;
        let mut out = String::new();
        loop {
            let run = self.i;
            while matches!(self.peek(), Some(c) if c != b'"' && c != b'\\' && c >= 0x20) {
                self.i += 1;
            }
            out.push_str(&self.s[run..self.i]);
            match self.peek() {
                None => return Err(self.err_here("")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let esc = self.i;
                    self.i += 1;
                    let c = match self.peek() {
                        None => return Err(self.err_here("")),
                        Some(c) => c,
                    };
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                // A high surrogate: combine with a following low one.
                                if self.b.get(self.i) == Some(&b'\\')
                                    && self.b.get(self.i + 1) == Some(&b'u')
                                {
                                    let save = self.i;
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if (0xDC00..0xE000).contains(&lo) {
                                        char::from_u32(
                                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00),
                                        )
                                    } else {
                                        self.i = save;
                                        None
                                    }
                                } else {
                                    None
                                }
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(c.unwrap_or('\u{FFFD}'));
                        }
                        _ => return Err(self.err_at("invalid escape", esc)),
                    }
                }
                Some(_) => return Err(self.err_at("control character in string", self.i)),
            }
        }
    }

    fn array(&mut self, rt: &mut Rt, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err_at("nesting too deep", self.i));
        }
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(rt.list(items));
        }
        loop {
            self.ws();
            items.push(self.value(rt, depth)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(rt.list(items));
                }
                _ => return Err(self.err_here("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, rt: &mut Rt, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err_at("nesting too deep", self.i));
        }
        self.i += 1;
        let mut map = DictMap::default();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(rt.dict(map));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err_here("expected string key"));
            }
            let key: Rc<str> = Rc::from(self.string()?);
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err_here("expected ':'"));
            }
            self.i += 1;
            self.ws();
            let v = self.value(rt, depth)?;
            map.insert(key, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(rt.dict(map));
                }
                _ => return Err(self.err_here("expected ',' or '}'")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::inspect;

    fn ok(src: &str) -> String {
        let mut rt = Rt::new();
        match decode(&mut rt, src) {
            Ok(v) => inspect(&rt, v),
            Err(Error::Msg(m)) => format!("ERR {m}"),
            Err(Error::Raise(_)) => "ERR raise".into(),
        }
    }

    #[test]
    fn decodes_documents() {
        assert_eq!(
            ok(r#"{"a": [1, 2.5, -0, 1e2], "b": {"c": null, "d": true}}"#),
            "{:a (1 2.5 0 100.0) :b {:c nil :d true}}"
        );
        assert_eq!(ok(r#""\u00e9\ud83d\ude00\n""#), "\"é😀\\n\"");
        assert_eq!(ok(r#""\ud800x""#), "\"\u{FFFD}x\"");
        assert_eq!(ok("99999999999999999999"), "1e20");
        assert_eq!(ok(r#"{"a":1,"b":2,"a":3}"#), "{:a 3 :b 2}");
    }

    #[test]
    fn errors_name_the_position_in_code_points() {
        assert_eq!(ok(""), "ERR json-decode: unexpected end of input at 0");
        assert_eq!(ok("[1,]"), "ERR json-decode: unexpected character ']' at 3");
        assert_eq!(
            ok(r#"["é" x]"#),
            "ERR json-decode: expected ',' or ']' at 5"
        );
        assert_eq!(
            ok("01"),
            "ERR json-decode: unexpected trailing characters at 1"
        );
        assert_eq!(ok("1."), "ERR json-decode: invalid number at 0");
        assert_eq!(ok("tru"), "ERR json-decode: unexpected end of input at 3");
        assert_eq!(ok("trux"), "ERR json-decode: invalid literal at 0");
        assert_eq!(ok(r#""a\qb""#), "ERR json-decode: invalid escape at 2");
        assert_eq!(
            ok("\"a\nb\""),
            "ERR json-decode: control character in string at 2"
        );
        assert_eq!(ok("{1:2}"), "ERR json-decode: expected string key at 1");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(ok(&deep), "ERR json-decode: nesting too deep at 512");
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(!ok(&fine).starts_with("ERR"));
    }
}
