//! Sets: mutable collections of distinct values. Type "set", printed
//! `#{1 2 3}`.
//!
//! Decisions where the contract is silent:
//! * membership is structural: two values are the same member when their
//!   `inspect` forms are equal (so `(list 1 2)` built twice is one member,
//!   and `1` and `1.0` are two members). The key is taken when the value is
//!   added: mutating a list after adding it does not move it.
//! * members are kept in a canonical order — numbers (ascending by value),
//!   then chars, strings, symbols, keywords (each by text), then everything
//!   else by its `inspect` form. `set->list` and printing use that order,
//!   so `equal?` on two sets compares their members regardless of the order
//!   they were added in.
//! * `make-set` takes an optional list (or vector) of initial members.
//! * `set-add!` and `set-remove!` return the set; removing a value that is
//!   not a member does nothing.
//! * `set-union`, `set-intersection`, `set-difference` return new sets.

use super::{def, ext_mut, ext_ref};
use crate::error::{type_error, Result};
use crate::heap::{ExternObj, Obj, Shape, Tracer};
use crate::prims::PrimDef;
use crate::print::inspect;
use crate::rt::Rt;
use crate::value::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A member's identity and position in the canonical order.
#[derive(Debug, Clone)]
pub struct SetKey {
    rank: u8,
    num: f64,
    text: String,
    /// The `inspect` form: the identity of the member (the fields before
    /// it are functions of the value that only fix the order).
    key: String,
}

impl SetKey {
    pub fn of(rt: &Rt, v: Value) -> SetKey {
        let key = inspect(rt, v);
        let (rank, num, text) = if let Some(n) = rt.num(v) {
            (0, n.to_f64(), String::new())
        } else if let Some(c) = v.as_char() {
            (1, c as u32 as f64, String::new())
        } else if let Some(s) = rt.as_str(v) {
            (2, 0.0, s.s.to_string())
        } else if let Some(id) = v.as_symbol() {
            (3, 0.0, rt.syms.name(id).to_string())
        } else if let Some(id) = v.as_keyword() {
            (4, 0.0, rt.syms.name(id).to_string())
        } else {
            (5, 0.0, String::new())
        };
        SetKey {
            rank,
            num,
            text,
            key,
        }
    }
}

impl PartialEq for SetKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SetKey {}
impl PartialOrd for SetKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SetKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank
            .cmp(&other.rank)
            .then(self.num.total_cmp(&other.num))
            .then_with(|| self.text.cmp(&other.text))
            .then_with(|| self.key.cmp(&other.key))
    }
}

/// A set's members, by key.
#[derive(Debug, Default, Clone)]
pub struct SetObj {
    pub members: BTreeMap<SetKey, Value>,
}

impl ExternObj for SetObj {
    fn trace(&self, t: &mut Tracer) {
        for v in self.members.values() {
            t.mark(*v);
        }
    }
    fn type_name(&self) -> &str {
        "set"
    }
    crate::extern_any!();
    fn shape(&self) -> Shape {
        Shape::Seq {
            open: "#{",
            close: "}",
            items: self.members.values().copied().collect(),
        }
    }
}

fn expect_set<'a>(rt: &'a Rt, name: &str, v: Value) -> Result<&'a SetObj> {
    ext_ref::<SetObj>(rt, v).ok_or_else(|| type_error(name, "set", rt.type_name(v)))
}

fn alloc(rt: &mut Rt, s: SetObj) -> Value {
    rt.heap.alloc(Obj::Extern(Box::new(s)))
}

pub fn primitives() -> Vec<PrimDef> {
    vec![
        def("make-set", 0, Some(1), false, |rt, a| {
            let mut s = SetObj::default();
            if let Some(init) = a.first() {
                let items = match super::vectors::vector_items(rt, *init) {
                    Some(items) => items.to_vec(),
                    None => rt
                        .list_items(*init)
                        .ok_or_else(|| type_error("make-set", "list", rt.type_name(*init)))?,
                };
                for v in items {
                    s.members.entry(SetKey::of(rt, v)).or_insert(v);
                }
            }
            Ok(alloc(rt, s))
        }),
        def("set?", 1, Some(1), true, |rt, a| {
            Ok(Value::bool(ext_ref::<SetObj>(rt, a[0]).is_some()))
        }),
        def("set-member?", 2, Some(2), true, |rt, a| {
            let k = SetKey::of(rt, a[1]);
            Ok(Value::bool(
                expect_set(rt, "set-member?", a[0])?
                    .members
                    .contains_key(&k),
            ))
        }),
        def("set-add!", 2, Some(2), false, |rt, a| {
            expect_set(rt, "set-add!", a[0])?;
            let k = SetKey::of(rt, a[1]);
            if let Some(s) = ext_mut::<SetObj>(rt, a[0]) {
                s.members.entry(k).or_insert(a[1]);
            }
            Ok(a[0])
        }),
        def("set-remove!", 2, Some(2), false, |rt, a| {
            expect_set(rt, "set-remove!", a[0])?;
            let k = SetKey::of(rt, a[1]);
            if let Some(s) = ext_mut::<SetObj>(rt, a[0]) {
                s.members.remove(&k);
            }
            Ok(a[0])
        }),
        def("set-size", 1, Some(1), true, |rt, a| {
            let n = expect_set(rt, "set-size", a[0])?.members.len();
            Ok(rt.int(n as i64))
        }),
        def("set->list", 1, Some(1), true, |rt, a| {
            let items: Vec<Value> = expect_set(rt, "set->list", a[0])?
                .members
                .values()
                .copied()
                .collect();
            Ok(rt.list(items))
        }),
        def("set-union", 2, Some(2), false, |rt, a| {
            let mut s = expect_set(rt, "set-union", a[0])?.clone();
            for (k, v) in &expect_set(rt, "set-union", a[1])?.members {
                s.members.entry(k.clone()).or_insert(*v);
            }
            Ok(alloc(rt, s))
        }),
        def("set-intersection", 2, Some(2), false, |rt, a| {
            let x = expect_set(rt, "set-intersection", a[0])?;
            let y = expect_set(rt, "set-intersection", a[1])?;
            let members = x
                .members
                .iter()
                .filter(|(k, _)| y.members.contains_key(k))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            Ok(alloc(rt, SetObj { members }))
        }),
        def("set-difference", 2, Some(2), false, |rt, a| {
            let x = expect_set(rt, "set-difference", a[0])?;
            let y = expect_set(rt, "set-difference", a[1])?;
            let members = x
                .members
                .iter()
                .filter(|(k, _)| !y.members.contains_key(k))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            Ok(alloc(rt, SetObj { members }))
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::{call, err};

    #[test]
    fn canonical_order_and_structural_membership() {
        let mut rt = Rt::new();
        let defs = primitives();
        let s = call(&mut rt, &defs, "make-set", &[]).expect("set");
        let vals = [
            rt.int(10),
            rt.str("b"),
            rt.int(2),
            rt.str("a"),
            Value::char('z'),
            rt.float(2.5),
        ];
        for v in vals {
            call(&mut rt, &defs, "set-add!", &[s, v]).expect("add");
        }
        let one = rt.int(1);
        let two = rt.int(2);
        let l1 = rt.list(vec![one, two]);
        let l2 = rt.list(vec![one, two]);
        call(&mut rt, &defs, "set-add!", &[s, l1]).expect("add");
        call(&mut rt, &defs, "set-add!", &[s, l2]).expect("add");
        assert_eq!(inspect(&rt, s), "#{2 2.5 10 #\\z \"a\" \"b\" (1 2)}");
        let l3 = rt.list(vec![one, two]);
        assert_eq!(
            call(&mut rt, &defs, "set-member?", &[s, l3]).ok(),
            Some(Value::TRUE)
        );
        assert_eq!(
            err(call(&mut rt, &defs, "set-size", &[one])),
            "set-size: expected set, got number"
        );
    }

    #[test]
    fn int_and_float_are_distinct_members() {
        let mut rt = Rt::new();
        let a = SetKey::of(&rt, Value::fixnum(1).unwrap_or(Value::NIL));
        let f = rt.float(1.0);
        let b = SetKey::of(&rt, f);
        assert_ne!(a, b);
    }
}
