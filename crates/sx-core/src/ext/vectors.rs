//! Vectors: mutable, fixed-length sequences with O(1) indexed access.
//! Type "vector"; printed `#(1 2 3)`; `equal?` compares elements.
//!
//! Decisions where the contract is silent:
//! * `make-vector`'s default fill is nil; the length must be a
//!   non-negative integer no larger than 100 000 000.
//! * an index that is not an integer is a type error
//!   (`vector-ref: expected integer, got string`); an integer outside
//!   `0..length` raises `vector-ref: index 5 out of range for length 3`.
//! * `vector->list`, `vector-copy` and `vector-fill!` take optional
//!   `start`/`end` (R7RS): `0 <= start <= end <= length`, else the same
//!   out-of-range error or `NAME: start S is greater than end E`.
//! * `vector-set!` and `vector-fill!` return nil.
//! * `list->vector` of nil is the empty vector; `vector-append` joins
//!   vectors into a new one.

use super::{def, ext_mut, ext_ref, range_args};
use crate::error::{type_error, Error, Result};
use crate::heap::{ExternObj, Obj, Shape, Tracer};
use crate::prims::PrimDef;
use crate::rt::Rt;
use crate::value::Value;

const V: Option<usize> = None;
/// Largest length `make-vector` accepts.
pub const MAX_VECTOR_LEN: i64 = 100_000_000;

/// A vector's elements.
#[derive(Debug, Default)]
pub struct VectorObj {
    pub items: Vec<Value>,
}

impl ExternObj for VectorObj {
    fn trace(&self, t: &mut Tracer) {
        t.mark_all(&self.items);
    }
    fn type_name(&self) -> &str {
        "vector"
    }
    crate::extern_any!();
    fn shape(&self) -> Shape {
        Shape::Seq {
            open: "#(",
            close: ")",
            items: self.items.clone(),
        }
    }
}

/// Allocate a vector holding `items`.
pub fn new_vector(rt: &mut Rt, items: Vec<Value>) -> Value {
    rt.heap.alloc(Obj::Extern(Box::new(VectorObj { items })))
}

/// The elements of `v` if it is a vector.
pub fn vector_items(rt: &Rt, v: Value) -> Option<&[Value]> {
    ext_ref::<VectorObj>(rt, v).map(|o| o.items.as_slice())
}

fn expect_vec<'a>(rt: &'a Rt, name: &str, v: Value) -> Result<&'a VectorObj> {
    ext_ref::<VectorObj>(rt, v).ok_or_else(|| type_error(name, "vector", rt.type_name(v)))
}

fn expect_vec_mut<'a>(rt: &'a mut Rt, name: &str, v: Value) -> Result<&'a mut VectorObj> {
    if ext_ref::<VectorObj>(rt, v).is_none() {
        return Err(type_error(name, "vector", rt.type_name(v)));
    }
    ext_mut::<VectorObj>(rt, v).ok_or_else(|| Error::msg(format!("{name}: expected vector")))
}

/// An index argument checked against `len`.
fn index(rt: &Rt, name: &str, v: Value, len: usize) -> Result<usize> {
    let i = rt.expect_int(name, v)?;
    if i < 0 || i as u64 >= len as u64 {
        return Err(Error::Msg(format!(
            "{name}: index {i} out of range for length {len}"
        )));
    }
    Ok(i as usize)
}

pub fn primitives() -> Vec<PrimDef> {
    vec![
        def("make-vector", 1, Some(2), false, p_make_vector),
        def("vector", 0, V, false, |rt, a| {
            Ok(new_vector(rt, a.to_vec()))
        }),
        def("vector?", 1, Some(1), true, |rt, a| {
            Ok(Value::bool(ext_ref::<VectorObj>(rt, a[0]).is_some()))
        }),
        def("vector-length", 1, Some(1), true, |rt, a| {
            let n = expect_vec(rt, "vector-length", a[0])?.items.len();
            Ok(rt.int(n as i64))
        }),
        def("vector-ref", 2, Some(2), true, |rt, a| {
            let v = expect_vec(rt, "vector-ref", a[0])?;
            let i = index(rt, "vector-ref", a[1], v.items.len())?;
            Ok(v.items[i])
        }),
        def("vector-set!", 3, Some(3), false, |rt, a| {
            let len = expect_vec(rt, "vector-set!", a[0])?.items.len();
            let i = index(rt, "vector-set!", a[1], len)?;
            expect_vec_mut(rt, "vector-set!", a[0])?.items[i] = a[2];
            Ok(Value::NIL)
        }),
        def("vector->list", 1, Some(3), true, |rt, a| {
            let v = expect_vec(rt, "vector->list", a[0])?;
            let (s, e) = range_args(
                rt,
                "vector->list",
                v.items.len(),
                a.get(1).copied(),
                a.get(2).copied(),
            )?;
            let items = v.items[s..e].to_vec();
            Ok(rt.list(items))
        }),
        def("list->vector", 1, Some(1), false, |rt, a| {
            let items = rt.expect_list("list->vector", a[0])?;
            Ok(new_vector(rt, items))
        }),
        def("vector-fill!", 2, Some(4), false, |rt, a| {
            let len = expect_vec(rt, "vector-fill!", a[0])?.items.len();
            let (s, e) = range_args(
                rt,
                "vector-fill!",
                len,
                a.get(2).copied(),
                a.get(3).copied(),
            )?;
            expect_vec_mut(rt, "vector-fill!", a[0])?.items[s..e].fill(a[1]);
            Ok(Value::NIL)
        }),
        def("vector-copy", 1, Some(3), false, |rt, a| {
            let v = expect_vec(rt, "vector-copy", a[0])?;
            let (s, e) = range_args(
                rt,
                "vector-copy",
                v.items.len(),
                a.get(1).copied(),
                a.get(2).copied(),
            )?;
            let items = v.items[s..e].to_vec();
            Ok(new_vector(rt, items))
        }),
        def("vector-append", 0, V, false, |rt, a| {
            let mut items = Vec::new();
            for v in a {
                items.extend_from_slice(&expect_vec(rt, "vector-append", *v)?.items);
            }
            Ok(new_vector(rt, items))
        }),
    ]
}

fn p_make_vector(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let n = rt.expect_int("make-vector", a[0])?;
    if n < 0 {
        return Err(Error::Msg(format!(
            "make-vector: length must be non-negative, got {n}"
        )));
    }
    if n > MAX_VECTOR_LEN {
        return Err(Error::Msg(format!(
            "make-vector: length {n} is too large (at most {MAX_VECTOR_LEN})"
        )));
    }
    let fill = a.get(1).copied().unwrap_or(Value::NIL);
    Ok(new_vector(rt, vec![fill; n as usize]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::{call, err};
    use crate::heap::{Roots, Tracer};
    use crate::print::inspect;

    struct R(Vec<Value>);
    impl Roots for R {
        fn trace_roots(&self, t: &mut Tracer) {
            t.mark_all(&self.0);
        }
    }

    #[test]
    fn prints_and_indexes() {
        let mut rt = Rt::new();
        let defs = primitives();
        let (a, b) = (rt.int(1), rt.str("x"));
        let v = call(&mut rt, &defs, "vector", &[a, b]).expect("vector");
        assert_eq!(inspect(&rt, v), "#(1 \"x\")");
        let five = rt.int(5);
        assert_eq!(
            err(call(&mut rt, &defs, "vector-ref", &[v, five])),
            "vector-ref: index 5 out of range for length 2"
        );
    }

    #[test]
    fn elements_survive_collection() {
        let mut rt = Rt::new();
        let s = rt.str("kept");
        let v = new_vector(&mut rt, vec![s]);
        rt.heap.collect(&R(vec![v]));
        assert_eq!(
            vector_items(&rt, v).map(|i| inspect(&rt, i[0])),
            Some("\"kept\"".to_string())
        );
    }

    #[test]
    fn make_vector_rejects_bad_lengths() {
        let mut rt = Rt::new();
        let defs = primitives();
        let neg = rt.int(-1);
        assert_eq!(
            err(call(&mut rt, &defs, "make-vector", &[neg])),
            "make-vector: length must be non-negative, got -1"
        );
        let huge = rt.int(1 << 40);
        assert!(err(call(&mut rt, &defs, "make-vector", &[huge])).contains("too large"));
    }
}
