//! Characters (an immediate value, type "char"): predicates, comparisons,
//! case mapping, conversion to and from integers and strings.
//!
//! Decisions where the contract is silent:
//! * comparisons (`char=?` ...) take one or more chars (one → true) and
//!   compare code points; every argument must be a char.
//! * `char-upcase`/`char-downcase` use Unicode simple case mapping: a char
//!   whose mapping is several chars (`ß` → `SS`) is returned unchanged.
//! * `char-ci` comparisons compare the lower-case mappings.
//! * the classification predicates use Unicode properties (`char-numeric?`
//!   is true for any numeric character, e.g. `٣`).
//! * `integer->char` of a negative number, a surrogate or a value above
//!   #x10FFFF raises `integer->char: invalid code point N`.
//! * `list->string` takes a list of chars only (nil is the empty list).

use super::def;
use crate::error::{type_error, Error, Result};
use crate::prims::PrimDef;
use crate::rt::Rt;
use crate::value::Value;
use std::cmp::Ordering;

const V: Option<usize> = None;

pub fn primitives() -> Vec<PrimDef> {
    vec![
        def("char?", 1, Some(1), true, |_rt, a| {
            Ok(Value::bool(a[0].as_char().is_some()))
        }),
        def("char->integer", 1, Some(1), true, |rt, a| {
            let c = expect_char(rt, "char->integer", a[0])?;
            Ok(rt.int(c as i64))
        }),
        def("integer->char", 1, Some(1), true, p_integer_to_char),
        def("char-upcase", 1, Some(1), true, |rt, a| {
            Ok(Value::char(upcase(expect_char(rt, "char-upcase", a[0])?)))
        }),
        def("char-downcase", 1, Some(1), true, |rt, a| {
            Ok(Value::char(downcase(expect_char(
                rt,
                "char-downcase",
                a[0],
            )?)))
        }),
        def("char=?", 1, V, true, |rt, a| {
            compare(rt, "char=?", a, false, |o| o == Ordering::Equal)
        }),
        def("char<?", 1, V, true, |rt, a| {
            compare(rt, "char<?", a, false, |o| o == Ordering::Less)
        }),
        def("char>?", 1, V, true, |rt, a| {
            compare(rt, "char>?", a, false, |o| o == Ordering::Greater)
        }),
        def("char<=?", 1, V, true, |rt, a| {
            compare(rt, "char<=?", a, false, |o| o != Ordering::Greater)
        }),
        def("char>=?", 1, V, true, |rt, a| {
            compare(rt, "char>=?", a, false, |o| o != Ordering::Less)
        }),
        def("char-ci=?", 1, V, true, |rt, a| {
            compare(rt, "char-ci=?", a, true, |o| o == Ordering::Equal)
        }),
        def("char-ci<?", 1, V, true, |rt, a| {
            compare(rt, "char-ci<?", a, true, |o| o == Ordering::Less)
        }),
        def("char-ci>?", 1, V, true, |rt, a| {
            compare(rt, "char-ci>?", a, true, |o| o == Ordering::Greater)
        }),
        def("char-ci<=?", 1, V, true, |rt, a| {
            compare(rt, "char-ci<=?", a, true, |o| o != Ordering::Greater)
        }),
        def("char-ci>=?", 1, V, true, |rt, a| {
            compare(rt, "char-ci>=?", a, true, |o| o != Ordering::Less)
        }),
        def("char-alphabetic?", 1, Some(1), true, |rt, a| {
            classify(rt, "char-alphabetic?", a[0], char::is_alphabetic)
        }),
        def("char-numeric?", 1, Some(1), true, |rt, a| {
            classify(rt, "char-numeric?", a[0], char::is_numeric)
        }),
        def("char-whitespace?", 1, Some(1), true, |rt, a| {
            classify(rt, "char-whitespace?", a[0], char::is_whitespace)
        }),
        def("char-upper-case?", 1, Some(1), true, |rt, a| {
            classify(rt, "char-upper-case?", a[0], char::is_uppercase)
        }),
        def("char-lower-case?", 1, Some(1), true, |rt, a| {
            classify(rt, "char-lower-case?", a[0], char::is_lowercase)
        }),
        def("string->list", 1, Some(1), true, |rt, a| {
            let s = rt.expect_str("string->list", a[0])?;
            let items: Vec<Value> = s.chars().map(Value::char).collect();
            Ok(rt.list(items))
        }),
        def("list->string", 1, Some(1), true, p_list_to_string),
    ]
}

/// A char argument or `NAME: expected char, got TYPE`.
pub fn expect_char(rt: &Rt, name: &str, v: Value) -> Result<char> {
    v.as_char()
        .ok_or_else(|| type_error(name, "char", rt.type_name(v)))
}

/// Simple upper-case mapping (unchanged when it is not a single char).
pub fn upcase(c: char) -> char {
    single(c.to_uppercase()).unwrap_or(c)
}

/// Simple lower-case mapping (unchanged when it is not a single char).
pub fn downcase(c: char) -> char {
    single(c.to_lowercase()).unwrap_or(c)
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let c = it.next()?;
    match it.next() {
        None => Some(c),
        Some(_) => None,
    }
}

fn p_integer_to_char(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let n = rt.expect_int("integer->char", a[0])?;
    match u32::try_from(n).ok().and_then(char::from_u32) {
        Some(c) => Ok(Value::char(c)),
        None => Err(Error::Msg(format!("integer->char: invalid code point {n}"))),
    }
}

fn compare(
    rt: &mut Rt,
    name: &str,
    a: &[Value],
    ci: bool,
    ok: fn(Ordering) -> bool,
) -> Result<Value> {
    let mut cs = Vec::with_capacity(a.len());
    for v in a {
        let c = expect_char(rt, name, *v)?;
        cs.push(if ci { downcase(c) } else { c });
    }
    Ok(Value::bool(cs.windows(2).all(|w| ok(w[0].cmp(&w[1])))))
}

fn classify(rt: &mut Rt, name: &str, v: Value, f: fn(char) -> bool) -> Result<Value> {
    Ok(Value::bool(f(expect_char(rt, name, v)?)))
}

fn p_list_to_string(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let items = rt.expect_list("list->string", a[0])?;
    let mut s = String::with_capacity(items.len());
    for v in items {
        s.push(expect_char(rt, "list->string", v)?);
    }
    Ok(rt.string(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext::testutil::{call, err};

    #[test]
    fn case_mapping_keeps_multi_char_mappings_unchanged() {
        assert_eq!(upcase('a'), 'A');
        assert_eq!(upcase('ß'), 'ß');
        assert_eq!(downcase('Σ'), 'σ');
        assert_eq!(downcase('İ'), 'İ');
    }

    #[test]
    fn integer_to_char_rejects_surrogates_and_out_of_range() {
        let mut rt = Rt::new();
        let defs = primitives();
        let sur = rt.int(0xD800);
        assert_eq!(
            err(call(&mut rt, &defs, "integer->char", &[sur])),
            "integer->char: invalid code point 55296"
        );
        let big = rt.int(0x110000);
        assert_eq!(
            err(call(&mut rt, &defs, "integer->char", &[big])),
            "integer->char: invalid code point 1114112"
        );
        let ok = rt.int(0x41);
        assert_eq!(
            call(&mut rt, &defs, "integer->char", &[ok]).ok(),
            Some(Value::char('A'))
        );
    }

    #[test]
    fn comparisons_type_check_every_argument() {
        let mut rt = Rt::new();
        let defs = primitives();
        let one = rt.int(1);
        let r = call(
            &mut rt,
            &defs,
            "char<?",
            &[Value::char('b'), Value::char('a'), one],
        );
        assert_eq!(err(r), "char<?: expected char, got number");
    }
}
