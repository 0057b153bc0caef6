//! Extended types of section 7, each an [`crate::heap::ExternObj`] with its
//! primitives: vectors, string ports, string buffers, sets, chars, JSON
//! decoding.
//!
//! Each family lives in its own module with its own `primitives()`; the
//! decisions taken where the contract is silent are written in the module
//! docs and in the `:doc` of each declaration in `spec/primitives.sx`.

use crate::error::{Error, Result};
use crate::heap::Obj;
use crate::prims::{PrimDef, PrimFn};
use crate::rt::Rt;
use crate::value::Value;

pub mod buffers;
pub mod chars;
pub mod json_decode;
pub mod ports;
pub mod sets;
pub mod vectors;

/// Every primitive of the extended types.
pub fn primitives() -> Vec<PrimDef> {
    let mut all = chars::primitives();
    all.extend(vectors::primitives());
    all.extend(ports::primitives());
    all.extend(buffers::primitives());
    all.extend(sets::primitives());
    all.extend(json_decode::primitives());
    all
}

/// Shorthand for a primitive definition; `max == None` is variadic.
pub(crate) const fn def(
    name: &'static str,
    min: usize,
    max: Option<usize>,
    pure: bool,
    f: PrimFn,
) -> PrimDef {
    PrimDef {
        name,
        min,
        max,
        pure,
        f,
    }
}

/// The extern object of type `T` behind `v`, if it is one.
pub(crate) fn ext_ref<T: 'static>(rt: &Rt, v: Value) -> Option<&T> {
    match rt.heap.get(v) {
        Some(Obj::Extern(e)) => e.as_any().downcast_ref::<T>(),
        _ => None,
    }
}

/// The extern object of type `T` behind `v`, mutably, if it is one.
pub(crate) fn ext_mut<T: 'static>(rt: &mut Rt, v: Value) -> Option<&mut T> {
    match rt.heap.get_mut(v) {
        Some(Obj::Extern(e)) => e.as_any_mut().downcast_mut::<T>(),
        _ => None,
    }
}

/// An optional `[start, end)` range argument pair over a sequence of `len`
/// items (R7RS style: `0 <= start <= end <= len`, errors otherwise).
pub(crate) fn range_args(
    rt: &Rt,
    name: &str,
    len: usize,
    start: Option<Value>,
    end: Option<Value>,
) -> Result<(usize, usize)> {
    let idx = |v: Option<Value>, default: usize| -> Result<usize> {
        match v {
            None => Ok(default),
            Some(v) => {
                let i = rt.expect_int(name, v)?;
                if i < 0 || i as u64 > len as u64 {
                    Err(Error::Msg(format!(
                        "{name}: index {i} out of range for length {len}"
                    )))
                } else {
                    Ok(i as usize)
                }
            }
        }
    };
    let s = idx(start, 0)?;
    let e = idx(end, len)?;
    if s > e {
        return Err(Error::Msg(format!(
            "{name}: start {s} is greater than end {e}"
        )));
    }
    Ok((s, e))
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::error::Result;
    use crate::prims::PrimDef;
    use crate::rt::Rt;
    use crate::value::Value;

    /// Call the primitive `name` from `defs` with arity checking.
    pub fn call(rt: &mut Rt, defs: &[PrimDef], name: &str, args: &[Value]) -> Result<Value> {
        let p = defs
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no primitive {name}"));
        p.check_arity(args.len())?;
        (p.f)(rt, args)
    }

    pub fn err(r: Result<Value>) -> String {
        match r {
            Err(crate::Error::Msg(m)) => m,
            Err(crate::Error::Raise(_)) => "<raise>".into(),
            Ok(_) => "<ok>".into(),
        }
    }
}
