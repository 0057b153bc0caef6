//! Printing values: `inspect` (readable) and `display` (what `str` concatenates).

use crate::heap::{Obj, Shape};
use crate::rt::Rt;
use crate::value::Value;
use std::fmt::Write;

const MAX_DEPTH: usize = 2000;

/// The readable form of section 4: strings quoted, `nil`, `(1 2 3)`, `{:x 1}`.
pub fn inspect(rt: &Rt, v: Value) -> String {
    let mut out = String::new();
    write_value(rt, v, true, &mut out, &mut Vec::new());
    out
}

/// The display form: strings without quotes, `nil` as the empty string.
pub fn display(rt: &Rt, v: Value) -> String {
    let mut out = String::new();
    display_into(rt, v, &mut out);
    out
}

/// Append the display form of `v` to `out` (what `str` does for each
/// argument): integers and strings without going through a formatter.
pub fn display_into(rt: &Rt, v: Value, out: &mut String) {
    if let Some(n) = v.as_fixnum() {
        out.push_str(itoa::Buffer::new().format(n));
        return;
    }
    if v.is_nil() {
        return;
    }
    if let Some(Obj::Str(s)) = rt.heap.get(v) {
        out.push_str(&s.s);
        return;
    }
    write_value(rt, v, false, out, &mut Vec::new());
}

/// Shortest round-trip float text; whole floats keep `.0`.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "+nan.0".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+inf.0".into() } else { "-inf.0".into() };
    }
    let s = format!("{f:?}");
    // Debug gives e.g. "1e21" or "1.5e-7": keep as is; ensure a '.' or 'e'.
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn is_identifier_like(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' || c == '-' && s.len() > 1 => {}
        _ => return false,
    }
    s.chars().all(|c| c.is_alphanumeric() || "-_?!*<>=+./&~%".contains(c))
}

pub fn write_string_literal(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub fn char_name(c: char) -> Option<&'static str> {
    Some(match c {
        ' ' => "space",
        '\n' => "newline",
        '\t' => "tab",
        '\r' => "return",
        '\0' => "nul",
        '\u{1b}' => "escape",
        '\u{7f}' => "delete",
        '\u{8}' => "backspace",
        _ => return None,
    })
}

/// `path` holds the containers being printed (outermost first): a
/// container that contains itself prints `#<cycle>` instead of looping.
fn write_value(rt: &Rt, v: Value, readable: bool, out: &mut String, path: &mut Vec<Value>) {
    if path.len() > MAX_DEPTH {
        out.push_str("...");
        return;
    }
    if v.is_heap() && path.contains(&v) {
        out.push_str("#<cycle>");
        return;
    }
    if let Some(n) = v.as_fixnum() {
        out.push_str(itoa::Buffer::new().format(n));
        return;
    }
    if v.is_nil() {
        out.push_str("nil");
        return;
    }
    if v == Value::TRUE {
        out.push_str("true");
        return;
    }
    if v == Value::FALSE {
        out.push_str("false");
        return;
    }
    if let Some(id) = v.as_symbol() {
        out.push_str(rt.syms.name(id));
        return;
    }
    if let Some(id) = v.as_keyword() {
        if readable {
            out.push(':');
        }
        out.push_str(rt.syms.name(id));
        return;
    }
    if let Some(c) = v.as_char() {
        if readable {
            out.push_str("#\\");
            match char_name(c) {
                Some(n) => out.push_str(n),
                None => out.push(c),
            }
        } else {
            out.push(c);
        }
        return;
    }
    if v.as_prim().is_some() {
        out.push_str("<primitive>");
        return;
    }
    if v == Value::EOF {
        out.push_str("#<eof>");
        return;
    }
    if v == Value::UNBOUND {
        out.push_str("#<unbound>");
        return;
    }
    match rt.heap.get(v) {
        None => out.push_str("#<freed>"),
        Some(Obj::Free(_)) => out.push_str("#<freed>"),
        Some(Obj::Float(f)) => out.push_str(&format_float(*f)),
        Some(Obj::Int(n)) => {
            let _ = write!(out, "{n}");
        }
        Some(Obj::Rational(n, d)) => {
            let _ = write!(out, "{n}/{d}");
        }
        Some(Obj::Str(s)) => {
            if readable {
                write_string_literal(&s.s, out);
            } else {
                out.push_str(&s.s);
            }
        }
        Some(Obj::List(l)) => {
            out.push('(');
            for (i, item) in l.to_vec().into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                path.push(v);
                write_value(rt, item, readable, out, path);
                path.pop();
            }
            out.push(')');
        }
        Some(Obj::Dict(d)) => {
            out.push('{');
            for (i, (k, val)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if is_identifier_like(k) {
                    out.push(':');
                    out.push_str(k);
                } else {
                    write_string_literal(k, out);
                }
                out.push(' ');
                path.push(v);
                write_value(rt, *val, readable, out, path);
                path.pop();
            }
            out.push('}');
        }
        Some(Obj::Lambda(c)) => match c.code.name() {
            Some(n) => {
                let _ = write!(out, "<lambda {n}>");
            }
            None => out.push_str("<lambda>"),
        },
        Some(Obj::Macro(c)) => match c.code.name() {
            Some(n) => {
                let _ = write!(out, "<macro {n}>");
            }
            None => out.push_str("<macro>"),
        },
        Some(Obj::Env(_)) | Some(Obj::Env3 { .. }) => out.push_str("<env>"),
        Some(Obj::Extern(e)) => match e.shape() {
            Shape::Ctor(name, fields) => {
                out.push('(');
                out.push_str(&name);
                for f in fields {
                    out.push(' ');
                    path.push(v);
                    write_value(rt, f, true, out, path);
                    path.pop();
                }
                out.push(')');
            }
            Shape::Seq { open, close, items } => {
                out.push_str(open);
                for (i, x) in items.into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    path.push(v);
                    write_value(rt, x, readable, out, path);
                    path.pop();
                }
                out.push_str(close);
            }
            Shape::Text(t) => out.push_str(&t),
            Shape::Opaque => {
                let _ = write!(out, "<{}>", e.type_name());
            }
        },
    }
}
