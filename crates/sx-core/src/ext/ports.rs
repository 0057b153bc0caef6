//! String ports: input ports reading the chars of a string, output ports
//! accumulating text. Type "port", printed `<port>`; the end of input is the
//! eof object (`Value::EOF`, type "eof", printed `#<eof>`).
//!
//! Decisions where the contract is silent:
//! * reading from or writing to a closed port raises `NAME: port is
//!   closed`; `close-port` is idempotent and returns nil; `get-output-string`
//!   still returns the text of a closed output port.
//! * a port of the wrong direction raises `NAME: expected input port, got
//!   output port` (and vice versa); a non-port `NAME: expected input port,
//!   got TYPE`.
//! * `write-string`/`write-char` take the port as their *second* argument
//!   (R7RS order); without a port they write to standard output.
//!   `write-string` needs a string, `write-char` a char. Both return nil.
//! * `read-line` returns the text up to the next newline (not included; a
//!   `\r` before it is dropped), or the eof object at the end.
//! * `read-string k port` returns up to k chars, or eof when none are left.

use super::{def, ext_mut, ext_ref};
use crate::error::{type_error, Error, Result};
use crate::heap::{ExternObj, Obj, Tracer};
use crate::prims::PrimDef;
use crate::rt::Rt;
use crate::value::Value;

#[derive(Debug)]
pub enum PortKind {
    Input { chars: Vec<char>, pos: usize },
    Output { buf: String },
}

/// A string port.
#[derive(Debug)]
pub struct PortObj {
    pub kind: PortKind,
    pub open: bool,
}

impl ExternObj for PortObj {
    fn trace(&self, _t: &mut Tracer) {}
    fn type_name(&self) -> &str {
        "port"
    }
    crate::extern_any!();
}

impl PortObj {
    fn direction(&self) -> &'static str {
        match self.kind {
            PortKind::Input { .. } => "input port",
            PortKind::Output { .. } => "output port",
        }
    }
}

fn port_ref(rt: &Rt, v: Value) -> Option<&PortObj> {
    ext_ref::<PortObj>(rt, v)
}

/// What a wrong argument is called in a type error: the port's direction
/// or the `type-of` name.
fn describe(rt: &Rt, v: Value) -> String {
    match port_ref(rt, v) {
        Some(p) => p.direction().to_string(),
        None => rt.type_of(v),
    }
}

/// Check `v` is an open port of the wanted direction.
fn check(rt: &Rt, name: &str, v: Value, input: bool, must_be_open: bool) -> Result<()> {
    let want = if input { "input port" } else { "output port" };
    match port_ref(rt, v) {
        Some(p) if matches!(p.kind, PortKind::Input { .. }) == input => {
            if must_be_open && !p.open {
                Err(Error::Msg(format!("{name}: port is closed")))
            } else {
                Ok(())
            }
        }
        _ => Err(type_error(name, want, &describe(rt, v))),
    }
}

fn input_mut<'a>(rt: &'a mut Rt, name: &str, v: Value) -> Result<(&'a [char], &'a mut usize)> {
    check(rt, name, v, true, true)?;
    match ext_mut::<PortObj>(rt, v) {
        Some(PortObj {
            kind: PortKind::Input { chars, pos },
            ..
        }) => Ok((chars.as_slice(), pos)),
        _ => Err(Error::Msg(format!("{name}: expected input port"))),
    }
}

fn output_mut<'a>(rt: &'a mut Rt, name: &str, v: Value) -> Result<&'a mut String> {
    check(rt, name, v, false, true)?;
    match ext_mut::<PortObj>(rt, v) {
        Some(PortObj {
            kind: PortKind::Output { buf },
            ..
        }) => Ok(buf),
        _ => Err(Error::Msg(format!("{name}: expected output port"))),
    }
}

/// Append `text` to the output port `port`, with the errors of the port
/// primitives named `name` (for hosts adding an optional port argument to
/// `display`, `write`, `newline`, ...).
pub fn write_to_port(rt: &mut Rt, name: &str, port: Value, text: &str) -> Result<()> {
    output_mut(rt, name, port)?.push_str(text);
    Ok(())
}

/// Write `text` to `port` (or standard output when absent).
fn write_text(rt: &mut Rt, name: &str, text: &str, port: Option<Value>) -> Result<Value> {
    match port {
        Some(p) => output_mut(rt, name, p)?.push_str(text),
        None => {
            use std::io::Write;
            let _ = write!(rt.out, "{text}");
        }
    }
    Ok(Value::NIL)
}

pub fn primitives() -> Vec<PrimDef> {
    vec![
        def("open-input-string", 1, Some(1), false, |rt, a| {
            let s = rt.expect_str("open-input-string", a[0])?;
            let port = PortObj {
                kind: PortKind::Input {
                    chars: s.chars().collect(),
                    pos: 0,
                },
                open: true,
            };
            Ok(rt.heap.alloc(Obj::Extern(Box::new(port))))
        }),
        def("open-output-string", 0, Some(0), false, |rt, _a| {
            let port = PortObj {
                kind: PortKind::Output { buf: String::new() },
                open: true,
            };
            Ok(rt.heap.alloc(Obj::Extern(Box::new(port))))
        }),
        def("get-output-string", 1, Some(1), true, |rt, a| {
            check(rt, "get-output-string", a[0], false, false)?;
            let text = match port_ref(rt, a[0]) {
                Some(PortObj {
                    kind: PortKind::Output { buf },
                    ..
                }) => buf.clone(),
                _ => String::new(),
            };
            Ok(rt.string(text))
        }),
        def("port?", 1, Some(1), true, |rt, a| {
            Ok(Value::bool(port_ref(rt, a[0]).is_some()))
        }),
        def("input-port?", 1, Some(1), true, |rt, a| {
            Ok(Value::bool(matches!(
                port_ref(rt, a[0]),
                Some(PortObj {
                    kind: PortKind::Input { .. },
                    ..
                })
            )))
        }),
        def("output-port?", 1, Some(1), true, |rt, a| {
            Ok(Value::bool(matches!(
                port_ref(rt, a[0]),
                Some(PortObj {
                    kind: PortKind::Output { .. },
                    ..
                })
            )))
        }),
        def("read-char", 1, Some(1), false, |rt, a| {
            let (chars, pos) = input_mut(rt, "read-char", a[0])?;
            Ok(match chars.get(*pos) {
                Some(c) => {
                    *pos += 1;
                    Value::char(*c)
                }
                None => Value::EOF,
            })
        }),
        def("peek-char", 1, Some(1), false, |rt, a| {
            let (chars, pos) = input_mut(rt, "peek-char", a[0])?;
            Ok(chars.get(*pos).map_or(Value::EOF, |c| Value::char(*c)))
        }),
        def("read-line", 1, Some(1), false, |rt, a| {
            let (chars, pos) = input_mut(rt, "read-line", a[0])?;
            if *pos >= chars.len() {
                return Ok(Value::EOF);
            }
            let rest = &chars[*pos..];
            let (line, used) = match rest.iter().position(|c| *c == '\n') {
                Some(i) => (&rest[..i], i + 1),
                None => (rest, rest.len()),
            };
            let line = line.strip_suffix(&['\r']).unwrap_or(line);
            let text: String = line.iter().collect();
            *pos += used;
            Ok(rt.string(text))
        }),
        def("read-string", 2, Some(2), false, |rt, a| {
            let k = rt.expect_int("read-string", a[0])?;
            if k < 0 {
                return Err(Error::Msg(format!(
                    "read-string: count must be non-negative, got {k}"
                )));
            }
            let (chars, pos) = input_mut(rt, "read-string", a[1])?;
            if *pos >= chars.len() && k > 0 {
                return Ok(Value::EOF);
            }
            let end = (*pos).saturating_add(k as usize).min(chars.len());
            let text: String = chars[*pos..end].iter().collect();
            *pos = end;
            Ok(rt.string(text))
        }),
        def("write-string", 1, Some(2), false, |rt, a| {
            let s = rt.expect_str("write-string", a[0])?;
            write_text(rt, "write-string", &s, a.get(1).copied())
        }),
        def("write-char", 1, Some(2), false, |rt, a| {
            let c = super::chars::expect_char(rt, "write-char", a[0])?;
            write_text(
                rt,
                "write-char",
                c.encode_utf8(&mut [0; 4]),
                a.get(1).copied(),
            )
        }),
        def("close-port", 1, Some(1), false, |rt, a| {
            match ext_mut::<PortObj>(rt, a[0]) {
                Some(p) => {
                    p.open = false;
                    Ok(Value::NIL)
                }
                None => Err(type_error("close-port", "port", rt.type_name(a[0]))),
            }
        }),
        def("eof-object", 0, Some(0), true, |_rt, _a| Ok(Value::EOF)),
        def("eof-object?", 1, Some(1), true, |_rt, a| {
            Ok(Value::bool(a[0] == Value::EOF))
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::{call, err};

    #[test]
    fn reads_chars_then_eof_and_refuses_after_close() {
        let mut rt = Rt::new();
        let defs = primitives();
        let s = rt.str("hé");
        let p = call(&mut rt, &defs, "open-input-string", &[s]).expect("port");
        assert_eq!(
            call(&mut rt, &defs, "read-char", &[p]).ok(),
            Some(Value::char('h'))
        );
        assert_eq!(
            call(&mut rt, &defs, "peek-char", &[p]).ok(),
            Some(Value::char('é'))
        );
        assert_eq!(
            call(&mut rt, &defs, "read-char", &[p]).ok(),
            Some(Value::char('é'))
        );
        assert_eq!(
            call(&mut rt, &defs, "read-char", &[p]).ok(),
            Some(Value::EOF)
        );
        call(&mut rt, &defs, "close-port", &[p]).expect("close");
        assert_eq!(
            err(call(&mut rt, &defs, "read-char", &[p])),
            "read-char: port is closed"
        );
    }

    #[test]
    fn direction_errors_name_the_direction() {
        let mut rt = Rt::new();
        let defs = primitives();
        let out = call(&mut rt, &defs, "open-output-string", &[]).expect("port");
        assert_eq!(
            err(call(&mut rt, &defs, "read-char", &[out])),
            "read-char: expected input port, got output port"
        );
        let n = rt.int(3);
        assert_eq!(
            err(call(&mut rt, &defs, "read-char", &[n])),
            "read-char: expected input port, got number"
        );
    }
}
