//! String buffers: a mutable, growable string for building text in
//! amortised O(1) per append. Type "string-buffer", printed `<string-buffer>`.
//!
//! Decisions where the contract is silent:
//! * `make-string-buffer` takes an optional initial content.
//! * `string-buffer-append!` takes one or more values; strings are appended
//!   as is, anything else by its display form (what `str` would produce, so
//!   nil appends nothing and a char its own text); it returns the buffer.
//! * `string-buffer-length` counts code points.
//! * `string-buffer-clear!` empties a buffer and returns it.

use super::{def, ext_mut, ext_ref};
use crate::error::{type_error, Result};
use crate::heap::{ExternObj, Obj, Tracer};
use crate::prims::PrimDef;
use crate::print::display;
use crate::rt::Rt;
use crate::value::Value;

const V: Option<usize> = None;

/// The text of a string buffer and its length in code points.
#[derive(Debug, Default)]
pub struct StringBufferObj {
    pub text: String,
    pub chars: usize,
}

impl StringBufferObj {
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count();
    }
}

impl ExternObj for StringBufferObj {
    fn trace(&self, _t: &mut Tracer) {}
    fn type_name(&self) -> &str {
        "string-buffer"
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn length(&self) -> Option<usize> {
        Some(self.chars)
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

fn expect_buf<'a>(rt: &'a Rt, name: &str, v: Value) -> Result<&'a StringBufferObj> {
    ext_ref::<StringBufferObj>(rt, v)
        .ok_or_else(|| type_error(name, "string-buffer", rt.type_name(v)))
}

/// The display text of a value: strings as they are.
fn text_of(rt: &Rt, v: Value) -> String {
    match rt.as_str(v) {
        Some(s) => s.s.to_string(),
        None => display(rt, v),
    }
}

pub fn primitives() -> Vec<PrimDef> {
    vec![
        def("make-string-buffer", 0, Some(1), false, |rt, a| {
            let mut b = StringBufferObj::default();
            if let Some(v) = a.first() {
                b.push(&text_of(rt, *v));
            }
            Ok(rt.heap.alloc(Obj::Extern(Box::new(b))))
        }),
        def("string-buffer?", 1, Some(1), true, |rt, a| {
            Ok(Value::bool(ext_ref::<StringBufferObj>(rt, a[0]).is_some()))
        }),
        def("string-buffer-append!", 2, V, false, |rt, a| {
            expect_buf(rt, "string-buffer-append!", a[0])?;
            let parts: Vec<String> = a[1..].iter().map(|v| text_of(rt, *v)).collect();
            if let Some(b) = ext_mut::<StringBufferObj>(rt, a[0]) {
                for p in &parts {
                    b.push(p);
                }
            }
            Ok(a[0])
        }),
        def("string-buffer->string", 1, Some(1), true, |rt, a| {
            let s = expect_buf(rt, "string-buffer->string", a[0])?.text.clone();
            Ok(rt.string(s))
        }),
        def("string-buffer-length", 1, Some(1), true, |rt, a| {
            let n = expect_buf(rt, "string-buffer-length", a[0])?.chars;
            Ok(rt.int(n as i64))
        }),
        def("string-buffer-clear!", 1, Some(1), false, |rt, a| {
            expect_buf(rt, "string-buffer-clear!", a[0])?;
            if let Some(b) = ext_mut::<StringBufferObj>(rt, a[0]) {
                b.text.clear();
                b.chars = 0;
            }
            Ok(a[0])
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::{call, err};

    #[test]
    fn appends_display_forms_and_counts_code_points() {
        let mut rt = Rt::new();
        let defs = primitives();
        let b = call(&mut rt, &defs, "make-string-buffer", &[]).expect("buffer");
        let (s, n, l) = (rt.str("é"), rt.int(42), rt.list(vec![]));
        let l2 = {
            let x = rt.str("x");
            rt.list(vec![x, l])
        };
        call(
            &mut rt,
            &defs,
            "string-buffer-append!",
            &[b, s, n, Value::NIL, Value::char('c'), l2],
        )
        .expect("append");
        let out = call(&mut rt, &defs, "string-buffer->string", &[b]).expect("text");
        assert_eq!(
            rt.as_str(out).map(|s| s.s.to_string()),
            Some("é42c(x ())".to_string())
        );
        let len = call(&mut rt, &defs, "string-buffer-length", &[b]).expect("len");
        assert_eq!(len.as_fixnum(), Some(10));
        let one = rt.int(1);
        assert_eq!(
            err(call(&mut rt, &defs, "string-buffer-append!", &[one, s])),
            "string-buffer-append!: expected string-buffer, got number"
        );
    }
}
