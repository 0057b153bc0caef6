//! Read data ([`sx_syntax::Datum`]) to heap values.

use crate::error::{Error, Result};
use crate::heap::DictMap;
use crate::rt::Rt;
use crate::value::Value;
use sx_syntax::{Datum, DatumKind};

/// Convert a datum to a value. Dict literal keys that are keywords become
/// strings here only when `quoted`; unquoted dict literals are evaluated by
/// the machine from their list form instead.
pub fn datum_to_value(rt: &mut Rt, d: &Datum) -> Result<Value> {
    Ok(match &d.kind {
        DatumKind::Nil => Value::NIL,
        DatumKind::Bool(b) => Value::bool(*b),
        DatumKind::Int(i) => rt.int(*i),
        DatumKind::Float(f) => rt.float(*f),
        DatumKind::Rational(n, den) => {
            let r = crate::num::make_rat(*n as i128, *den as i128);
            rt.num_value(r)
        }
        DatumKind::Str(s) => rt.str(s),
        DatumKind::Char(c) => Value::char(*c),
        DatumKind::Symbol(s) => rt.symbol(s),
        DatumKind::Keyword(k) => rt.keyword(k),
        DatumKind::List(items) => {
            let mut vs = Vec::with_capacity(items.len());
            for it in items {
                vs.push(datum_to_value(rt, it)?);
            }
            rt.list(vs)
        }
        DatumKind::Dict(pairs) => {
            let mut map = DictMap::default();
            for (k, v) in pairs {
                let kv = datum_to_value(rt, k)?;
                let key = rt.dict_key(kv);
                let vv = datum_to_value(rt, v)?;
                map.insert(key, vv);
            }
            rt.dict(map)
        }
        DatumKind::ReaderMacro(name, _) => {
            return Err(Error::msg(format!(
                "unknown reader macro #{name} at {}:{}",
                d.span.line, d.span.col
            )))
        }
    })
}
