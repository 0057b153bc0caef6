//! The native primitives: functions of values that need no access to the
//! machine (the higher-order ones, `apply`, `eval` and friends live in the
//! evaluator because their callbacks run through it).

use crate::error::{arity_error, type_error, Error, Result};
use crate::heap::{DictMap, ListObj, Obj, Shape};
use crate::num::{self, Num};
use crate::print::{display, display_into, inspect};
use crate::rt::Rt;
use crate::value::Value;
use std::rc::Rc;

pub type PrimFn = fn(&mut Rt, &[Value]) -> Result<Value>;

/// A native primitive.
#[derive(Clone, Copy)]
pub struct PrimDef {
    pub name: &'static str,
    pub min: usize,
    /// `None`: variadic.
    pub max: Option<usize>,
    /// No side effects: may be evaluated speculatively and re-evaluated.
    pub pure: bool,
    pub f: PrimFn,
}

impl PrimDef {
    pub fn check_arity(&self, n: usize) -> Result<()> {
        if n < self.min || self.max.is_some_and(|m| n > m) {
            Err(arity_error(self.name, self.min, self.max, n))
        } else {
            Ok(())
        }
    }
}

macro_rules! prims {
    ($( $name:literal [$min:expr, $max:expr, $pure:expr] => $f:expr ;)*) => {
        /// Every native primitive, in declaration order.
        pub fn native_primitives() -> Vec<PrimDef> {
            vec![$( PrimDef { name: $name, min: $min, max: $max, pure: $pure, f: $f } ),*]
        }
    };
}

const V: Option<usize> = None;
const fn n(k: usize) -> Option<usize> {
    Some(k)
}

prims! {
    // arithmetic
    "+" [0, V, true] => p_add;
    "-" [1, V, true] => p_sub;
    "*" [0, V, true] => p_mul;
    "/" [1, V, true] => p_div;
    "mod" [2, n(2), true] => |rt, a| bin(rt, "mod", a, num::modulo);
    "modulo" [2, n(2), true] => |rt, a| bin(rt, "modulo", a, num::modulo);
    "remainder" [2, n(2), true] => |rt, a| bin(rt, "remainder", a, num::remainder);
    "quotient" [2, n(2), true] => |rt, a| bin(rt, "quotient", a, num::quotient);
    "pow" [2, n(2), true] => |rt, a| { let (x, y) = (rt.expect_num("pow", a[0])?, rt.expect_num("pow", a[1])?); Ok(rt.num_value(num::pow(x, y)?)) };
    "expt" [2, n(2), true] => |rt, a| { let (x, y) = (rt.expect_num("expt", a[0])?, rt.expect_num("expt", a[1])?); Ok(rt.num_value(num::pow(x, y)?)) };
    "sqrt" [1, n(1), true] => |rt, a| { let x = rt.expect_num("sqrt", a[0])?.to_f64(); Ok(rt.float(x.sqrt())) };
    "floor" [1, n(1), true] => |rt, a| rounding(rt, "floor", a[0], num::floor_num);
    "ceil" [1, n(1), true] => |rt, a| rounding(rt, "ceil", a[0], num::ceil_num);
    "ceiling" [1, n(1), true] => |rt, a| rounding(rt, "ceiling", a[0], num::ceil_num);
    "round" [1, n(1), true] => |rt, a| rounding(rt, "round", a[0], num::round_num);
    "truncate" [1, n(1), true] => |rt, a| rounding(rt, "truncate", a[0], num::trunc_num);
    "abs" [1, n(1), true] => |rt, a| match rt.expect_num("abs", a[0])? { Num::Int(i) => Ok(match i.checked_abs() { Some(r) => rt.int(r), None => rt.float((i as f64).abs()) }), Num::Rat(n, d) => Ok(rt.num_value(num::make_rat((n as i128).abs(), d as i128))), Num::Float(f) => Ok(rt.float(f.abs())) };
    "inc" [1, n(1), true] => |rt, a| { let x = rt.expect_num("inc", a[0])?; Ok(rt.num_value(num::add(x, Num::Int(1)))) };
    "dec" [1, n(1), true] => |rt, a| { let x = rt.expect_num("dec", a[0])?; Ok(rt.num_value(num::sub(x, Num::Int(1)))) };
    "min" [1, V, true] => |rt, a| extremum(rt, "min", a, std::cmp::Ordering::Less);
    "max" [1, V, true] => |rt, a| extremum(rt, "max", a, std::cmp::Ordering::Greater);
    "clamp" [3, n(3), true] => p_clamp;
    "exact->inexact" [1, n(1), true] => |rt, a| { let x = rt.expect_num("exact->inexact", a[0])?.to_f64(); Ok(rt.float(x)) };
    "inexact->exact" [1, n(1), true] => |rt, a| { let x = rt.expect_num("inexact->exact", a[0])?; Ok(rt.num_value(num::to_exact(x))) };
    "exact" [1, n(1), true] => |rt, a| { let x = rt.expect_num("exact", a[0])?; Ok(rt.num_value(num::to_exact(x))) };
    "inexact" [1, n(1), true] => |rt, a| { let x = rt.expect_num("inexact", a[0])?.to_f64(); Ok(rt.float(x)) };
    // comparison
    "=" [1, V, true] => |rt, a| Ok(Value::bool(a.windows(2).all(|w| values_equal(rt, w[0], w[1])))) ;
    "!=" [2, n(2), true] => |rt, a| Ok(Value::bool(!values_equal(rt, a[0], a[1])));
    "<" [1, V, true] => |rt, a| compare_chain(rt, "<", a, |o| o == std::cmp::Ordering::Less);
    ">" [1, V, true] => |rt, a| compare_chain(rt, ">", a, |o| o == std::cmp::Ordering::Greater);
    "<=" [1, V, true] => |rt, a| compare_chain(rt, "<=", a, |o| o != std::cmp::Ordering::Greater);
    ">=" [1, V, true] => |rt, a| compare_chain(rt, ">=", a, |o| o != std::cmp::Ordering::Less);
    "eq?" [2, n(2), true] => |rt, a| Ok(Value::bool(a[0] == a[1] || matches!((rt.num(a[0]), rt.num(a[1])), (Some(x), Some(y)) if x == y)));
    "eqv?" [2, n(2), true] => |rt, a| Ok(Value::bool(eqv(rt, a[0], a[1])));
    "equal?" [2, n(2), true] => |rt, a| Ok(Value::bool(values_equal(rt, a[0], a[1])));
    "not" [1, n(1), true] => |_rt, a| Ok(Value::bool(!a[0].truthy()));
    // predicates
    "nil?" [1, n(1), true] => |_rt, a| Ok(Value::bool(a[0].is_nil()));
    "boolean?" [1, n(1), true] => |_rt, a| Ok(Value::bool(a[0] == Value::TRUE || a[0] == Value::FALSE));
    "number?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.is_number(a[0])));
    // decided: integer? is exactness-aware: (integer? 5.0) → false.
    "integer?" [1, n(1), true] => |rt, a| Ok(Value::bool(matches!(rt.num(a[0]), Some(Num::Int(_)))));
    "float?" [1, n(1), true] => |rt, a| Ok(Value::bool(matches!(rt.num(a[0]), Some(Num::Float(_)))));
    "exact?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.expect_num("exact?", a[0])?.is_exact()));
    "inexact?" [1, n(1), true] => |rt, a| Ok(Value::bool(!rt.expect_num("inexact?", a[0])?.is_exact()));
    "rational?" [1, n(1), true] => |rt, a| Ok(Value::bool(matches!(rt.num(a[0]), Some(Num::Int(_)) | Some(Num::Rat(..)))));
    "numerator" [1, n(1), true] => |rt, a| match rt.expect_num("numerator", a[0])? { Num::Int(i) => Ok(rt.int(i)), Num::Rat(n, _) => Ok(rt.int(n)), Num::Float(f) => match num::float_to_exact(f) { Some(Num::Rat(n, _)) => Ok(rt.float(n as f64)), _ => Ok(rt.float(f)) } };
    "denominator" [1, n(1), true] => |rt, a| match rt.expect_num("denominator", a[0])? { Num::Int(_) => Ok(rt.int(1)), Num::Rat(_, d) => Ok(rt.int(d)), Num::Float(f) => match num::float_to_exact(f) { Some(Num::Rat(_, d)) => Ok(rt.float(d as f64)), _ => Ok(rt.float(1.0)) } };
    "string?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.as_str(a[0]).is_some()));
    "symbol?" [1, n(1), true] => |_rt, a| Ok(Value::bool(a[0].as_symbol().is_some()));
    "keyword?" [1, n(1), true] => |_rt, a| Ok(Value::bool(a[0].as_keyword().is_some()));
    "list?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.is_list(a[0])));
    "dict?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.as_dict(a[0]).is_some()));
    "odd?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.expect_int("odd?", a[0])? % 2 != 0));
    "even?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.expect_int("even?", a[0])? % 2 == 0));
    "zero?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.expect_num("zero?", a[0])?.to_f64() == 0.0));
    "positive?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.expect_num("positive?", a[0])?.to_f64() > 0.0));
    "negative?" [1, n(1), true] => |rt, a| Ok(Value::bool(rt.expect_num("negative?", a[0])?.to_f64() < 0.0));
    "empty?" [1, n(1), true] => p_empty;
    "type-of" [1, n(1), true] => |rt, a| { let t = rt.type_of(a[0]); Ok(rt.string(t)) };
    // symbols and keywords
    "symbol-name" [1, n(1), true] => |rt, a| match a[0].as_symbol() { Some(id) => { let s = rt.syms.name_rc(id); Ok(rt.str_rc(s)) } None => Err(type_error("symbol-name", "symbol", rt.type_name(a[0]))) };
    "keyword-name" [1, n(1), true] => |rt, a| match a[0].as_keyword() { Some(id) => { let s = rt.syms.name_rc(id); Ok(rt.str_rc(s)) } None => match rt.as_str(a[0]) { Some(s) => { let s = s.s.clone(); Ok(rt.str_rc(s)) } None => Err(type_error("keyword-name", "keyword", rt.type_name(a[0]))) } };
    "string->symbol" [1, n(1), true] => |rt, a| { let s = rt.expect_str("string->symbol", a[0])?; Ok(rt.symbol(&s)) };
    "symbol->string" [1, n(1), true] => |rt, a| match a[0].as_symbol() { Some(id) => { let s = rt.syms.name_rc(id); Ok(rt.str_rc(s)) } None => Err(type_error("symbol->string", "symbol", rt.type_name(a[0]))) };
    "string->keyword" [1, n(1), true] => |rt, a| { let s = rt.expect_str("string->keyword", a[0])?; Ok(rt.keyword(&s)) };
    "make-symbol" [1, n(1), true] => |rt, a| { let s = rt.expect_str("make-symbol", a[0])?; Ok(rt.symbol(&s)) };
    "gensym" [0, n(1), false] => |rt, a| { let prefix = if a.is_empty() { Rc::from("g") } else { rt.key_of(a[0]).unwrap_or_else(|| Rc::from("g")) }; rt.gensym_counter += 1; let name = format!("{prefix}{}", rt.gensym_counter); Ok(rt.symbol(&name)) };
    // strings
    "str" [0, V, true] => |rt, a| Ok(rt.string_with(|rt, s| a.iter().for_each(|v| display_into(rt, *v, s))));
    "string-append" [0, V, true] => |rt, a| Ok(rt.string_with(|rt, s| a.iter().for_each(|v| display_into(rt, *v, s))));
    "upper" [1, n(1), true] => |rt, a| { let s = rt.expect_str("upper", a[0])?; Ok(rt.string(s.to_uppercase())) };
    "upcase" [1, n(1), true] => |rt, a| { let s = rt.expect_str("upcase", a[0])?; Ok(rt.string(s.to_uppercase())) };
    "lower" [1, n(1), true] => |rt, a| { let s = rt.expect_str("lower", a[0])?; Ok(rt.string(s.to_lowercase())) };
    "downcase" [1, n(1), true] => |rt, a| { let s = rt.expect_str("downcase", a[0])?; Ok(rt.string(s.to_lowercase())) };
    "trim" [1, n(1), true] => |rt, a| { let s = rt.expect_str("trim", a[0])?; Ok(rt.str(s.trim())) };
    "string-length" [1, n(1), true] => |rt, a| { let s = rt.expect_str("string-length", a[0])?; Ok(rt.int(s.chars().count() as i64)) };
    "substring" [2, n(3), true] => |rt, a| p_slice_named(rt, "substring", a);
    "slice" [2, n(3), true] => |rt, a| p_slice_named(rt, "slice", a);
    "string-contains?" [2, n(2), true] => |rt, a| { let s = rt.expect_str("string-contains?", a[0])?; let t = rt.expect_str("string-contains?", a[1])?; Ok(Value::bool(s.contains(&*t))) };
    "starts-with?" [2, n(2), true] => |rt, a| { let s = rt.expect_str("starts-with?", a[0])?; let t = rt.expect_str("starts-with?", a[1])?; Ok(Value::bool(s.starts_with(&*t))) };
    "ends-with?" [2, n(2), true] => |rt, a| { let s = rt.expect_str("ends-with?", a[0])?; let t = rt.expect_str("ends-with?", a[1])?; Ok(Value::bool(s.ends_with(&*t))) };
    "split" [1, n(2), true] => p_split;
    "join" [1, n(2), true] => p_join;
    "replace" [3, n(3), true] => |rt, a| { let s = rt.expect_str("replace", a[0])?; let from = rt.key_of(a[1]).ok_or_else(|| type_error("replace", "string", rt.type_name(a[1])))?; let to = display(rt, a[2]); if from.is_empty() { return Ok(rt.str_rc(s)); } Ok(rt.string(s.replace(&*from, &to))) };
    "char-from-code" [1, n(1), true] => |rt, a| { let c = rt.expect_int("char-from-code", a[0])?; match u32::try_from(c).ok().and_then(char::from_u32) { Some(ch) => Ok(rt.string(ch.to_string())), None => Err(Error::msg(format!("char-from-code: invalid code point {c}"))) } };
    "char-code" [1, n(1), true] => |rt, a| { if let Some(c) = a[0].as_char() { return Ok(rt.int(c as i64)); } let s = rt.expect_str("char-code", a[0])?; match s.chars().next() { Some(c) => Ok(rt.int(c as i64)), None => Ok(Value::NIL) } };
    "index-of" [2, n(3), true] => p_index_of;
    "parse-int" [1, n(2), true] => p_parse_int;
    "parse-float" [1, n(1), true] => p_parse_float;
    "number->string" [1, n(2), true] => |rt, a| { let x = rt.expect_num("number->string", a[0])?; if let Some(r) = a.get(1) { let radix = rt.expect_int("number->string", *r)?; if !(2..=36).contains(&radix) { return Err(Error::Msg(format!("number->string: radix must be between 2 and 36, got {radix}"))); }
        if let Num::Int(i) = x { return Ok(rt.string(int_to_radix(i, radix as u32))); } } let s = display(rt, a[0]); Ok(rt.string(s)) };
    "string->number" [1, n(2), true] => p_string_to_number;
    "format-decimal" [1, n(2), true] => |rt, a| { let x = rt.expect_num("format-decimal", a[0])?.to_f64(); let places = match a.get(1) { Some(v) => rt.expect_int("format-decimal", *v)?.clamp(0, 20) as usize, None => 2 }; Ok(rt.string(format_decimal(x, places))) };
    "strip-tags" [1, n(1), true] => |rt, a| { let s = rt.expect_str("strip-tags", a[0])?; Ok(rt.string(strip_tags(&s))) };
    "escape" [1, n(1), true] => |rt, a| { let s = display(rt, a[0]); Ok(rt.string(html_escape(&s))) };
    "pluralize" [2, n(3), true] => p_pluralize;
    "inspect" [1, n(1), true] => |rt, a| { let s = inspect(rt, a[0]); Ok(rt.string(s)) };
    // lists
    "list" [0, V, true] => |rt, a| Ok(rt.list(a.to_vec()));
    "cons" [2, n(2), true] => |rt, a| rt.cons(a[0], a[1]);
    "first" [1, n(1), true] => |rt, a| seq_first(rt, "first", a[0]);
    "last" [1, n(1), true] => p_last;
    "rest" [1, n(1), true] => p_rest;
    "nth" [2, n(2), true] => p_nth;
    "len" [1, n(1), true] => |rt, a| length_of(rt, "len", a[0]);
    "length" [1, n(1), true] => |rt, a| length_of(rt, "length", a[0]);
    "count" [1, n(1), true] => |rt, a| length_of(rt, "count", a[0]);
    "concat" [0, V, true] => p_concat;
    "append" [0, V, true] => p_append;
    "reverse" [1, n(1), true] => |rt, a| { if let Some(s) = rt.as_str(a[0]) { let r: String = s.s.chars().rev().collect(); return Ok(rt.string(r)); } let mut v = rt.expect_list("reverse", a[0])?; v.reverse(); Ok(rt.list(v)) };
    "flatten" [1, n(1), true] => |rt, a| { let mut out = Vec::new(); let items = rt.expect_list("flatten", a[0])?; flatten_into(rt, &items, &mut out, &mut vec![a[0]]); Ok(rt.list(out)) };
    "range" [1, n(3), true] => p_range;
    "chunk-every" [2, n(2), true] => |rt, a| { let items = rt.expect_list("chunk-every", a[0])?; let n = rt.expect_int("chunk-every", a[1])?; if n <= 0 { return Err(Error::msg("chunk-every: size must be positive")); } let chunks: Vec<Vec<Value>> = items.chunks(n as usize).map(|c| c.to_vec()).collect(); let vs: Vec<Value> = chunks.into_iter().map(|c| rt.list(c)).collect(); Ok(rt.list(vs)) };
    "zip-pairs" [1, n(1), true] => |rt, a| { let items = rt.expect_list("zip-pairs", a[0])?; let pairs: Vec<Vec<Value>> = items.windows(2).map(|w| w.to_vec()).collect(); let vs: Vec<Value> = pairs.into_iter().map(|c| rt.list(c)).collect(); Ok(rt.list(vs)) };
    "zip" [1, V, true] => |rt, a| { let lists: Vec<Vec<Value>> = a.iter().map(|l| rt.expect_list("zip", *l)).collect::<Result<_>>()?; let n = lists.iter().map(|l| l.len()).min().unwrap_or(0); let rows: Vec<Vec<Value>> = (0..n).map(|i| lists.iter().map(|l| l[i]).collect()).collect(); let vs: Vec<Value> = rows.into_iter().map(|r| rt.list(r)).collect(); Ok(rt.list(vs)) };
    "contains?" [2, n(2), true] => p_contains;
    "append!" [2, n(2), false] => p_append_mut;
    "sort" [1, n(1), true] => p_sort;
    "list-copy" [1, n(1), true] => |rt, a| { let v = rt.expect_list("list-copy", a[0])?; Ok(rt.list(v)) };
    // dicts
    "dict" [0, V, true] => p_dict;
    "get" [2, n(3), true] => p_get;
    "keys" [1, n(1), true] => |rt, a| { let d = expect_dict(rt, "keys", a[0])?; let ks: Vec<Rc<str>> = d.keys().cloned().collect(); let vs: Vec<Value> = ks.into_iter().map(|k| rt.str_rc(k)).collect(); Ok(rt.list(vs)) };
    "vals" [1, n(1), true] => |rt, a| { let d = expect_dict(rt, "vals", a[0])?; let vs: Vec<Value> = d.values().copied().collect(); Ok(rt.list(vs)) };
    "has-key?" [2, n(2), true] => |rt, a| { let k = rt.dict_key(a[1]); let d = expect_dict(rt, "has-key?", a[0])?; Ok(Value::bool(d.contains_key(&k))) };
    "dict-set!" [3, n(3), false] => |rt, a| { let k = rt.dict_key(a[1]); match rt.as_dict_mut(a[0]) { Some(d) => { d.insert(k, a[2]); Ok(a[0]) } None => Err(type_error("dict-set!", "dict", rt.type_name(a[0]))) } };
    "dict-delete!" [2, n(2), false] => |rt, a| { let k = rt.dict_key(a[1]); match rt.as_dict_mut(a[0]) { Some(d) => { d.shift_remove(&k); Ok(Value::NIL) } None => Err(type_error("dict-delete!", "dict", rt.type_name(a[0]))) } };
    "assoc" [1, V, true] => p_assoc;
    "dissoc" [1, V, true] => |rt, a| { let mut d = expect_dict(rt, "dissoc", a[0])?.clone(); for k in &a[1..] { let k = rt.dict_key(*k); d.shift_remove(&k); } Ok(rt.dict(d)) };
    "merge" [0, V, true] => |rt, a| { let mut d = DictMap::default(); for v in a { if v.is_nil() { continue; } let src = expect_dict(rt, "merge", *v)?; for (k, x) in src.iter() { d.insert(k.clone(), *x); } } Ok(rt.dict(d)) };
    "into" [2, n(2), true] => p_into;
    // json, dates, randomness, output
    "json-encode" [1, n(1), true] => |rt, a| { let mut s = String::new(); json_encode(rt, a[0], &mut s, 0)?; Ok(rt.string(s)) };
    "random-int" [1, n(2), false] => p_random_int;
    "parse-datetime" [1, n(1), true] => crate::dates::p_parse_datetime;
    "format-date" [2, n(2), true] => crate::dates::p_format_date;
    "print" [0, V, false] => |rt, a| { let s: Vec<String> = a.iter().map(|v| display(rt, *v)).collect(); let line = s.join(" "); let _ = writeln!(rt.out, "{line}"); Ok(Value::NIL) };
    "println" [0, V, false] => |rt, a| { let s: Vec<String> = a.iter().map(|v| display(rt, *v)).collect(); let line = s.join(" "); let _ = writeln!(rt.out, "{line}"); Ok(Value::NIL) };
    "display" [1, n(2), false] => |rt, a| { let s = display(rt, a[0]); output(rt, "display", a.get(1), &s) };
    "write" [1, n(2), false] => |rt, a| { let s = inspect(rt, a[0]); output(rt, "write", a.get(1), &s) };
    "newline" [0, n(1), false] => |rt, a| output(rt, "newline", a.first(), "\n");
    // errors and assertions
    "error" [1, V, false] => |rt, a| { let mut msg = display(rt, a[0]); for v in &a[1..] { msg.push(' '); msg.push_str(&display(rt, *v)); } Err(Error::Msg(msg)) };
    "raise" [1, n(1), false] => |_rt, a| Err(Error::Raise(a[0]));
    "assert" [1, n(2), false] => |rt, a| { if a[0].truthy() { Ok(Value::TRUE) } else { Err(Error::Msg(match a.get(1) { Some(m) => display(rt, *m), None => "Assertion failed".into() })) } };
}

use std::io::Write as _;

/// Write to the optional port argument, else to the engine's output.
fn output(rt: &mut Rt, name: &str, port: Option<&Value>, text: &str) -> Result<Value> {
    match port {
        Some(p) => crate::ext::ports::write_to_port(rt, name, *p, text)?,
        None => {
            let _ = write!(rt.out, "{text}");
        }
    }
    Ok(Value::NIL)
}

fn bin(rt: &mut Rt, name: &str, a: &[Value], f: fn(Num, Num) -> Result<Num>) -> Result<Value> {
    let x = rt.expect_num(name, a[0])?;
    let y = rt.expect_num(name, a[1])?;
    let r = f(x, y)?;
    Ok(rt.num_value(r))
}

pub fn p_add(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let mut acc = Num::Int(0);
    for v in a {
        acc = num::add(acc, rt.expect_num("+", *v)?);
    }
    Ok(rt.num_value(acc))
}

pub fn p_sub(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let first = rt.expect_num("-", a[0])?;
    if a.len() == 1 {
        return Ok(rt.num_value(num::sub(Num::Int(0), first)));
    }
    let mut acc = first;
    for v in &a[1..] {
        acc = num::sub(acc, rt.expect_num("-", *v)?);
    }
    Ok(rt.num_value(acc))
}

pub fn p_mul(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let mut acc = Num::Int(1);
    for v in a {
        acc = num::mul(acc, rt.expect_num("*", *v)?);
    }
    Ok(rt.num_value(acc))
}

pub fn p_div(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let first = rt.expect_num("/", a[0])?;
    if a.len() == 1 {
        return Ok(rt.num_value(num::div(Num::Int(1), first)?));
    }
    let mut acc = first;
    for v in &a[1..] {
        acc = num::div(acc, rt.expect_num("/", *v)?)?;
    }
    Ok(rt.num_value(acc))
}

fn rounding(rt: &mut Rt, name: &str, v: Value, f: fn(Num) -> Num) -> Result<Value> {
    let x = rt.expect_num(name, v)?;
    Ok(rt.num_value(f(x)))
}

fn extremum(rt: &mut Rt, name: &str, a: &[Value], want: std::cmp::Ordering) -> Result<Value> {
    let mut best = a[0];
    let mut bn = rt.expect_num(name, a[0])?;
    for v in &a[1..] {
        let n = rt.expect_num(name, *v)?;
        if num::cmp(n, bn) == Some(want) {
            best = *v;
            bn = n;
        }
    }
    Ok(best)
}

fn p_clamp(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let x = rt.expect_num("clamp", a[0])?;
    let lo = rt.expect_num("clamp", a[1])?;
    let hi = rt.expect_num("clamp", a[2])?;
    if num::cmp(x, lo) == Some(std::cmp::Ordering::Less) {
        Ok(a[1])
    } else if num::cmp(x, hi) == Some(std::cmp::Ordering::Greater) {
        Ok(a[2])
    } else {
        Ok(a[0])
    }
}

fn compare_chain(rt: &mut Rt, name: &str, a: &[Value], ok: fn(std::cmp::Ordering) -> bool) -> Result<Value> {
    for w in a.windows(2) {
        let ord = if let (Some(x), Some(y)) = (rt.as_str(w[0]), rt.as_str(w[1])) {
            Some(x.s.cmp(&y.s))
        } else {
            let x = rt.expect_num(name, w[0])?;
            let y = rt.expect_num(name, w[1])?;
            num::cmp(x, y)
        };
        match ord {
            Some(o) if ok(o) => {}
            _ => return Ok(Value::FALSE),
        }
    }
    if a.len() == 1 {
        rt.expect_num(name, a[0])?;
    }
    Ok(Value::TRUE)
}

/// `=` and `equal?`: numbers by value across int/float, structural on
/// strings, lists and dicts; keywords equal the string of their name.
pub fn values_equal(rt: &Rt, a: Value, b: Value) -> bool {
    // Iterative, so deeply nested data cannot overflow the Rust stack; pairs
    // of containers already compared (or being compared) count as equal,
    // which makes cyclic structures terminate.
    let mut todo: Vec<(Value, Value)> = vec![(a, b)];
    let mut seen: hashbrown::HashSet<(Value, Value)> = hashbrown::HashSet::new();
    while let Some((a, b)) = todo.pop() {
        if !atom_or_push(rt, a, b, &mut todo, &mut seen) {
            return false;
        }
    }
    true
}

/// Compare `a` and `b` if they are atoms; for containers queue their
/// children. False when they certainly differ.
fn atom_or_push(rt: &Rt, a: Value, b: Value, todo: &mut Vec<(Value, Value)>, seen: &mut hashbrown::HashSet<(Value, Value)>) -> bool {
    if a == b {
        // The same boxed NaN is still not equal to itself.
        return !matches!(rt.heap.get(a), Some(Obj::Float(f)) if f.is_nan());
    }
    if let (Some(x), Some(y)) = (rt.num(a), rt.num(b)) {
        return num::num_eq(x, y);
    }
    let (oa, ob) = (rt.heap.get(a), rt.heap.get(b));
    let container = matches!(oa, Some(Obj::List(_)) | Some(Obj::Dict(_)) | Some(Obj::Extern(_)));
    if container && !seen.insert((a, b)) {
        return true;
    }
    match (oa, ob) {
        (Some(Obj::Str(x)), Some(Obj::Str(y))) => x.s == y.s,
        (Some(Obj::List(x)), Some(Obj::List(y))) => {
            if x.len != y.len {
                return false;
            }
            todo.extend(x.to_vec().into_iter().zip(y.to_vec()));
            true
        }
        (Some(Obj::Dict(x)), Some(Obj::Dict(y))) => {
            if x.len() != y.len() {
                return false;
            }
            for (k, v) in x.iter() {
                match y.get(k) {
                    Some(w) => todo.push((*v, *w)),
                    None => return false,
                }
            }
            true
        }
        (Some(Obj::Str(x)), None) => b.as_keyword().is_some_and(|k| *x.s == *rt.syms.name(k)),
        (None, Some(Obj::Str(y))) => a.as_keyword().is_some_and(|k| *y.s == *rt.syms.name(k)),
        (Some(Obj::Extern(x)), Some(Obj::Extern(y))) => {
            if x.type_name() != y.type_name() {
                return false;
            }
            let mut same = |f1: Vec<Value>, f2: Vec<Value>| {
                if f1.len() != f2.len() {
                    return false;
                }
                todo.extend(f1.into_iter().zip(f2));
                true
            };
            match (x.shape(), y.shape()) {
                (Shape::Ctor(n1, f1), Shape::Ctor(n2, f2)) => n1 == n2 && same(f1, f2),
                (Shape::Seq { items: i1, .. }, Shape::Seq { items: i2, .. }) => same(i1, i2),
                _ => false,
            }
        }
        _ => false,
    }
}

/// `eqv?`: atoms by value (numbers also by exactness, strings by content),
/// compound values by identity.
pub fn eqv(rt: &Rt, a: Value, b: Value) -> bool {
    if a == b {
        return true;
    }
    match (rt.num(a), rt.num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => return x == y,
        (Some(Num::Float(x)), Some(Num::Float(y))) => return x == y,
        (Some(Num::Rat(a1, b1)), Some(Num::Rat(a2, b2))) => return a1 == a2 && b1 == b2,
        (Some(_), Some(_)) => return false,
        _ => {}
    }
    matches!((rt.as_str(a), rt.as_str(b)), (Some(x), Some(y)) if x.s == y.s)
}

fn p_empty(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let v = a[0];
    if v.is_nil() {
        return Ok(Value::TRUE);
    }
    Ok(Value::bool(match rt.heap.get(v) {
        Some(Obj::List(l)) => l.len == 0,
        Some(Obj::Str(s)) => s.s.is_empty(),
        Some(Obj::Dict(d)) => d.is_empty(),
        Some(Obj::Extern(e)) if e.length().is_some() => e.length() == Some(0),
        _ => return Err(type_error("empty?", "collection", rt.type_name(v))),
    }))
}

fn expect_dict<'a>(rt: &'a Rt, name: &str, v: Value) -> Result<&'a DictMap> {
    match rt.as_dict(v) {
        Some(d) => Ok(d),
        None => Err(type_error(name, "dict", rt.type_name(v))),
    }
}

fn seq_first(rt: &mut Rt, name: &str, v: Value) -> Result<Value> {
    if v.is_nil() {
        return Ok(Value::NIL);
    }
    if let Some(l) = rt.as_list(v) {
        return Ok(l.get(0).unwrap_or(Value::NIL));
    }
    if let Some(s) = rt.as_str(v) {
        return match s.s.chars().next() {
            Some(c) => Ok(rt.string(c.to_string())),
            None => Ok(Value::NIL),
        };
    }
    Err(type_error(name, "list", rt.type_name(v)))
}

fn p_last(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let v = a[0];
    if v.is_nil() {
        return Ok(Value::NIL);
    }
    if let Some(l) = rt.as_list(v) {
        return Ok(if l.len == 0 { Value::NIL } else { l.get(l.len as usize - 1).unwrap_or(Value::NIL) });
    }
    if let Some(s) = rt.as_str(v) {
        return match s.s.chars().last() {
            Some(c) => Ok(rt.string(c.to_string())),
            None => Ok(Value::NIL),
        };
    }
    Err(type_error("last", "list", rt.type_name(v)))
}

fn p_rest(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let v = a[0];
    if v.is_nil() {
        return Ok(rt.list(vec![]));
    }
    if let Some(l) = rt.as_list(v) {
        let obj = if l.len == 0 { ListObj::from_vec(vec![]) } else { ListObj { buf: l.buf.clone(), len: l.len - 1 } };
        return Ok(rt.heap.alloc(Obj::List(obj)));
    }
    if let Some(s) = rt.as_str(v) {
        let r: String = s.s.chars().skip(1).collect();
        return Ok(rt.string(r));
    }
    Err(type_error("rest", "list", rt.type_name(v)))
}

fn p_nth(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let i = rt.expect_int("nth", a[1])?;
    if i < 0 {
        return Ok(Value::NIL);
    }
    let v = a[0];
    if v.is_nil() {
        return Ok(Value::NIL);
    }
    if let Some(l) = rt.as_list(v) {
        return Ok(l.get(i as usize).unwrap_or(Value::NIL));
    }
    if let Some(s) = rt.as_str(v) {
        return match s.s.chars().nth(i as usize) {
            Some(c) => Ok(rt.string(c.to_string())),
            None => Ok(Value::NIL),
        };
    }
    Err(type_error("nth", "list", rt.type_name(v)))
}

fn length_of(rt: &mut Rt, name: &str, v: Value) -> Result<Value> {
    if v.is_nil() {
        return Ok(Value::fixnum(0).unwrap_or(Value::NIL));
    }
    let n = match rt.heap.get(v) {
        Some(Obj::List(l)) => l.len as i64,
        Some(Obj::Str(s)) => s.chars as i64,
        Some(Obj::Dict(d)) => d.len() as i64,
        Some(Obj::Extern(e)) if e.length().is_some() => e.length().unwrap_or(0) as i64,
        _ => return Err(type_error(name, "collection", rt.type_name(v))),
    };
    Ok(rt.int(n))
}

fn p_concat(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    if a.iter().all(|v| rt.as_str(*v).is_some()) && !a.is_empty() {
        let mut s = String::new();
        for v in a {
            s.push_str(&display(rt, *v));
        }
        return Ok(rt.string(s));
    }
    let mut out = Vec::new();
    for v in a {
        out.extend(rt.expect_list("concat", *v)?);
    }
    Ok(rt.list(out))
}

fn p_append(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let mut out = Vec::new();
    for v in a {
        match rt.list_items(*v) {
            Some(items) => out.extend(items),
            None => out.push(*v),
        }
    }
    Ok(rt.list(out))
}

fn p_append_mut(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let x = a[1];
    match rt.heap.get_mut(a[0]) {
        Some(Obj::List(l)) => {
            l.push_back(x);
            Ok(a[0])
        }
        _ => Err(type_error("append!", "list", rt.type_name(a[0]))),
    }
}

/// Deep flatten; a list that contains itself is kept as an element.
fn flatten_into(rt: &Rt, items: &[Value], out: &mut Vec<Value>, path: &mut Vec<Value>) {
    for v in items {
        match rt.as_list(*v) {
            Some(l) if path.len() < 2_000 && !path.contains(v) => {
                let inner = l.to_vec();
                path.push(*v);
                flatten_into(rt, &inner, out, path);
                path.pop();
            }
            _ => out.push(*v),
        }
    }
}

fn p_range(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let nums: Vec<Num> = a.iter().map(|v| rt.expect_num("range", *v)).collect::<Result<_>>()?;
    let (start, end, step) = match nums.len() {
        1 => (Num::Int(0), nums[0], Num::Int(1)),
        2 => (nums[0], nums[1], Num::Int(1)),
        _ => (nums[0], nums[1], nums[2]),
    };
    if step.to_f64() == 0.0 {
        return Err(Error::msg("range: step must not be zero"));
    }
    let mut out = Vec::new();
    let mut x = start;
    let up = step.to_f64() > 0.0;
    while if up { x.to_f64() < end.to_f64() } else { x.to_f64() > end.to_f64() } {
        if out.len() > 100_000_000 {
            return Err(Error::msg("range: too many elements"));
        }
        out.push(rt.num_value(x));
        x = num::add(x, step);
    }
    Ok(rt.list(out))
}

fn p_contains(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let (c, x) = (a[0], a[1]);
    if c.is_nil() {
        return Ok(Value::FALSE);
    }
    match rt.heap.get(c) {
        Some(Obj::List(l)) => {
            let items = l.to_vec();
            Ok(Value::bool(items.iter().any(|v| values_equal(rt, *v, x))))
        }
        Some(Obj::Str(s)) => {
            let s = s.s.clone();
            let t = rt.key_of(x).map(|k| k.to_string()).unwrap_or_else(|| display(rt, x));
            Ok(Value::bool(s.contains(&*t)))
        }
        Some(Obj::Dict(_)) => {
            let k = rt.dict_key(x);
            Ok(Value::bool(rt.as_dict(c).is_some_and(|d| d.contains_key(&k))))
        }
        _ => Err(type_error("contains?", "collection", rt.type_name(c))),
    }
}

fn p_sort(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let mut items = rt.expect_list("sort", a[0])?;
    let mut err = None;
    items.sort_by(|x, y| {
        if let (Some(p), Some(q)) = (rt.num(*x), rt.num(*y)) {
            return num::cmp(p, q).unwrap_or(std::cmp::Ordering::Equal);
        }
        if let (Some(p), Some(q)) = (rt.as_str(*x), rt.as_str(*y)) {
            return p.s.cmp(&q.s);
        }
        err = Some(Error::msg("sort: elements must all be numbers or all strings"));
        std::cmp::Ordering::Equal
    });
    if let Some(e) = err {
        return Err(e);
    }
    Ok(rt.list(items))
}

fn p_dict(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    if !a.len().is_multiple_of(2) {
        return Err(Error::Msg(format!("dict: expected an even number of arguments, got {}", a.len())));
    }
    let mut d = DictMap::default();
    for kv in a.chunks(2) {
        let k = rt.dict_key(kv[0]);
        d.insert(k, kv[1]);
    }
    Ok(rt.dict(d))
}

fn p_get(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let default = a.get(2).copied().unwrap_or(Value::NIL);
    let (c, k) = (a[0], a[1]);
    if c.is_nil() {
        return Ok(default);
    }
    match rt.heap.get(c) {
        Some(Obj::Dict(d)) => {
            // A string key is looked up as it is (no reference to count).
            if let Some(s) = rt.as_str(k) {
                return Ok(d.get(&*s.s).copied().unwrap_or(default));
            }
            let key = match rt.key_of(k) {
                Some(key) => key,
                None => Rc::from(display(rt, k)),
            };
            Ok(d.get(&key).copied().unwrap_or(default))
        }
        Some(Obj::List(l)) => match rt.num(k) {
            Some(Num::Int(i)) if i >= 0 => Ok(l.get(i as usize).unwrap_or(default)),
            _ => Ok(default),
        },
        Some(Obj::Str(s)) => match rt.num(k) {
            Some(Num::Int(i)) if i >= 0 => match s.s.chars().nth(i as usize) {
                Some(ch) => Ok(rt.string(ch.to_string())),
                None => Ok(default),
            },
            _ => Ok(default),
        },
        _ => Ok(default),
    }
}

fn p_assoc(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let mut d = if a[0].is_nil() { DictMap::default() } else { expect_dict(rt, "assoc", a[0])?.clone() };
    if !(a.len() - 1).is_multiple_of(2) {
        return Err(Error::msg("assoc: expected key/value pairs"));
    }
    for kv in a[1..].chunks(2) {
        let k = rt.dict_key(kv[0]);
        d.insert(k, kv[1]);
    }
    Ok(rt.dict(d))
}

fn p_into(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let (target, src) = (a[0], a[1]);
    let src_items: Vec<Value> = if let Some(d) = rt.as_dict(src) {
        let pairs: Vec<(Rc<str>, Value)> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
        pairs
            .into_iter()
            .map(|(k, v)| {
                let kv = rt.str_rc(k);
                rt.list(vec![kv, v])
            })
            .collect()
    } else {
        rt.expect_list("into", src)?
    };
    if let Some(d) = rt.as_dict(target) {
        let mut d = d.clone();
        for p in src_items {
            let pair = rt.expect_list("into", p)?;
            if pair.len() != 2 {
                return Err(Error::msg("into: dict entries must be (key value) pairs"));
            }
            let k = rt.dict_key(pair[0]);
            d.insert(k, pair[1]);
        }
        return Ok(rt.dict(d));
    }
    let mut items = rt.expect_list("into", target)?;
    items.extend(src_items);
    Ok(rt.list(items))
}

/// JS `slice` semantics on strings (code points) and lists.
fn slice_bounds(len: i64, start: i64, end: Option<i64>) -> (usize, usize) {
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let s = norm(start);
    let e = end.map_or(len, norm);
    (s as usize, e.max(s) as usize)
}

fn p_slice_named(rt: &mut Rt, name: &str, a: &[Value]) -> Result<Value> {
    let start = rt.expect_int(name, a[1])?;
    let end = match a.get(2) {
        Some(v) if !v.is_nil() => Some(rt.expect_int(name, *v)?),
        _ => None,
    };
    if let Some(s) = rt.as_str(a[0]) {
        let (len, ascii) = (s.chars as i64, s.is_ascii());
        let (b, e) = slice_bounds(len, start, end);
        let out: String = if ascii { s.s[b..e].to_string() } else { s.s.chars().skip(b).take(e - b).collect() };
        return Ok(rt.string(out));
    }
    if a[0].is_nil() {
        return Ok(rt.list(vec![]));
    }
    let items = rt.expect_list(name, a[0]).map_err(|_| type_error(name, "string or list", rt.type_name(a[0])))?;
    let (b, e) = slice_bounds(items.len() as i64, start, end);
    Ok(rt.list(items[b..e].to_vec()))
}

fn p_split(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let s = rt.expect_str("split", a[0])?;
    let sep: Rc<str> = match a.get(1) {
        Some(v) => rt.expect_str("split", *v)?,
        None => Rc::from(" "),
    };
    let parts: Vec<String> = if sep.is_empty() {
        s.chars().map(|c| c.to_string()).collect()
    } else {
        s.split(&*sep).map(|p| p.to_string()).collect()
    };
    let vs: Vec<Value> = parts.into_iter().map(|p| rt.string(p)).collect();
    Ok(rt.list(vs))
}

fn p_join(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let (sep, list) = match a.len() {
        1 => (Rc::from(""), a[0]),
        _ if rt.as_str(a[0]).is_some() && rt.as_str(a[1]).is_none() => (rt.expect_str("join", a[0])?, a[1]),
        _ => (rt.expect_str("join", a[1])?, a[0]),
    };
    let items = rt.expect_list("join", list)?;
    Ok(rt.string_with(|rt, s| {
        for (i, v) in items.iter().enumerate() {
            if i > 0 {
                s.push_str(&sep);
            }
            display_into(rt, *v, s);
        }
    }))
}

fn p_index_of(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let from = match a.get(2) {
        Some(v) => rt.expect_int("index-of", *v)?.max(0) as usize,
        None => 0,
    };
    if let Some(s) = rt.as_str(a[0]) {
        let s = s.s.clone();
        let t = match rt.key_of(a[1]) {
            Some(t) => t,
            None => return Err(type_error("index-of", "string", rt.type_name(a[1]))),
        };
        let start_byte = s.char_indices().nth(from).map(|(i, _)| i).unwrap_or(s.len());
        return Ok(match s[start_byte..].find(&*t) {
            Some(b) => {
                let idx = s[..start_byte + b].chars().count();
                rt.int(idx as i64)
            }
            None => rt.int(-1),
        });
    }
    let items = rt.expect_list("index-of", a[0])?;
    let idx = items.iter().skip(from).position(|v| values_equal(rt, *v, a[1])).map_or(-1, |p| (p + from) as i64);
    Ok(rt.int(idx))
}

/// JS `parseInt`: leading whitespace, optional sign, digits of the radix
/// (0x prefix for 16 when no radix given); no digits → nil.
fn p_parse_int(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let default = a.get(1).copied().unwrap_or(Value::NIL);
    if a[0].is_nil() {
        return Ok(default);
    }
    let r = parse_int_js(rt, a[0])?;
    Ok(if r.is_nil() { default } else { r })
}

fn parse_int_js(rt: &mut Rt, v: Value) -> Result<Value> {
    let a = [v];
    if let Some(Num::Int(i)) = rt.num(a[0]) {
        return Ok(rt.int(i));
    }
    if let Some(Num::Float(f)) = rt.num(a[0]) {
        return Ok(rt.num_value(num::float_to_int(f.trunc())));
    }
    let s = rt.expect_str("parse-int", a[0])?;
    let mut radix = 10;
    let t = s.trim_start();
    let (neg, mut t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if t.starts_with("0x") || t.starts_with("0X") {
        t = &t[2..];
        radix = 16;
    }
    if !(2..=36).contains(&radix) {
        return Ok(Value::NIL);
    }
    let digits: String = t.chars().take_while(|c| c.is_digit(radix)).collect();
    if digits.is_empty() {
        return Ok(Value::NIL);
    }
    match i64::from_str_radix(&digits, radix) {
        Ok(n) => Ok(rt.int(if neg { -n } else { n })),
        Err(_) => {
            let f = digits.chars().fold(0f64, |acc, c| acc * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64);
            Ok(rt.float(if neg { -f } else { f }))
        }
    }
}

/// JS `parseFloat`: the longest prefix (after whitespace) that reads as a
/// decimal number, with an optional signed exponent; none → nil.
fn p_parse_float(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    if rt.num(a[0]).is_some() {
        return Ok(a[0]);
    }
    let s = rt.expect_str("parse-float", a[0])?;
    let t = s.trim_start().as_bytes();
    let mut i = 0;
    if matches!(t.first(), Some(b'+') | Some(b'-')) {
        i += 1;
    }
    let digits_start = i;
    while t.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut any = i > digits_start;
    if t.get(i) == Some(&b'.') {
        let j = i + 1;
        let mut k = j;
        while t.get(k).is_some_and(u8::is_ascii_digit) {
            k += 1;
        }
        if k > j || any {
            any = any || k > j;
            i = k;
        }
    }
    if !any {
        return Ok(Value::NIL);
    }
    if matches!(t.get(i), Some(b'e') | Some(b'E')) {
        let mut k = i + 1;
        if matches!(t.get(k), Some(b'+') | Some(b'-')) {
            k += 1;
        }
        let exp_start = k;
        while t.get(k).is_some_and(u8::is_ascii_digit) {
            k += 1;
        }
        if k > exp_start {
            i = k;
        }
    }
    let text = std::str::from_utf8(&t[..i]).unwrap_or("");
    match text.parse::<f64>() {
        Ok(f) => Ok(rt.float(f)),
        Err(_) => Ok(Value::NIL),
    }
}

fn p_string_to_number(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let s = rt.expect_str("string->number", a[0])?;
    let t = s.trim();
    if let Some(v) = a.get(1) {
        let radix = rt.expect_int("string->number", *v)?;
        if !(2..=36).contains(&radix) {
            return Err(Error::Msg(format!("string->number: radix must be between 2 and 36, got {radix}")));
        }
        if radix == 10 {
            return p_string_to_number(rt, &a[..1]);
        }
        return Ok(match i64::from_str_radix(t, radix as u32) {
            Ok(n) => rt.int(n),
            Err(_) => Value::FALSE,
        });
    }
    if let Ok(n) = t.parse::<i64>() {
        return Ok(rt.int(n));
    }
    if let Ok(Some(d)) = sx_syntax::parse_one(t) {
        if d.span.end as usize == t.len() {
            match d.kind {
                sx_syntax::DatumKind::Rational(n, den) => return Ok(rt.num_value(num::make_rat(n as i128, den as i128))),
                sx_syntax::DatumKind::Int(n) if t.contains('/') => return Ok(rt.int(n)),
                _ => {}
            }
        }
    }
    let lower = t.to_ascii_lowercase();
    let special = lower.contains("inf") || lower.contains("nan");
    match t.parse::<f64>() {
        Ok(f) if !t.is_empty() && !special => Ok(rt.float(f)),
        _ => Ok(Value::FALSE),
    }
}

fn int_to_radix(mut n: i64, radix: u32) -> String {
    if !(2..=36).contains(&radix) {
        return n.to_string();
    }
    if n == 0 {
        return "0".into();
    }
    let neg = n < 0;
    let mut digits = Vec::new();
    while n != 0 {
        let d = (n % radix as i64).unsigned_abs() as u32;
        digits.push(std::char::from_digit(d, radix).unwrap_or('?'));
        n /= radix as i64;
    }
    if neg {
        digits.push('-');
    }
    digits.iter().rev().collect()
}

/// Remove every `<...>`; a `<` with no later `>` is kept as text.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        match rest[open..].find('>') {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// Fixed decimals, rounding half away from zero on the exact binary value;
/// never `-0.00`.
pub fn format_decimal(x: f64, places: usize) -> String {
    if !x.is_finite() {
        return crate::print::format_float(x);
    }
    // Exact decimal expansion (a double has at most 1074 fractional digits).
    let exact = format!("{:.1100}", x.abs());
    let (int_part, frac) = exact.split_once('.').unwrap_or((&exact, ""));
    let mut digits: Vec<u8> = int_part.bytes().chain(frac.bytes().take(places)).map(|b| b - b'0').collect();
    let next = frac.as_bytes().get(places).map_or(0, |b| b - b'0');
    if next >= 5 {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let int_len = digits.len() - places;
    let mut out = String::new();
    let is_zero = digits.iter().all(|d| *d == 0);
    if x < 0.0 && !is_zero {
        out.push('-');
    }
    for d in &digits[..int_len] {
        out.push((b'0' + d) as char);
    }
    if places > 0 {
        out.push('.');
        for d in &digits[int_len..] {
            out.push((b'0' + d) as char);
        }
    }
    out
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn p_pluralize(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let n = rt.expect_num("pluralize", a[0])?;
    let word = rt.expect_str("pluralize", a[1])?;
    let one = num::num_eq(n, Num::Int(1));
    if one {
        return Ok(rt.str_rc(word));
    }
    match a.get(2) {
        Some(p) => {
            let p = rt.expect_str("pluralize", *p)?;
            Ok(rt.str_rc(p))
        }
        None => Ok(rt.string(format!("{word}s"))),
    }
}

fn p_random_int(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let (lo, hi) = if a.len() == 1 {
        let n = rt.expect_int("random-int", a[0])?;
        if n <= 0 {
            return Err(Error::msg("random-int: bound must be positive"));
        }
        (0, n - 1)
    } else {
        (rt.expect_int("random-int", a[0])?, rt.expect_int("random-int", a[1])?)
    };
    if hi < lo {
        return Err(Error::msg("random-int: empty range"));
    }
    let span = (hi as i128 - lo as i128 + 1) as u128;
    let r = (rt.next_random() as u128 % span) as i128 + lo as i128;
    Ok(rt.int(r as i64))
}

pub fn json_encode(rt: &Rt, v: Value, out: &mut String, depth: usize) -> Result<()> {
    json_encode_path(rt, v, out, depth, &mut Vec::new())
}

fn json_encode_path(rt: &Rt, v: Value, out: &mut String, depth: usize, path: &mut Vec<Value>) -> Result<()> {
    if depth > 1000 {
        return Err(Error::msg("json-encode: nesting too deep"));
    }
    if v.is_heap() && path.contains(&v) {
        return Err(Error::msg("json-encode: cyclic structure"));
    }
    if v.is_nil() {
        out.push_str("null");
        return Ok(());
    }
    if v == Value::TRUE || v == Value::FALSE {
        out.push_str(if v == Value::TRUE { "true" } else { "false" });
        return Ok(());
    }
    if let Some(n) = rt.num(v) {
        match n {
            Num::Int(i) => out.push_str(&i.to_string()),
            Num::Rat(..) => out.push_str(&crate::print::format_float(n.to_f64())),
            Num::Float(f) if f.is_finite() => out.push_str(&crate::print::format_float(f)),
            Num::Float(_) => out.push_str("null"),
        }
        return Ok(());
    }
    if let Some(k) = rt.key_of(v) {
        json_string(&k, out);
        return Ok(());
    }
    if let Some(c) = v.as_char() {
        json_string(&c.to_string(), out);
        return Ok(());
    }
    match rt.heap.get(v) {
        Some(Obj::List(l)) => json_array(rt, v, &l.to_vec(), out, depth, path),
        Some(Obj::Dict(d)) => {
            out.push('{');
            for (i, (k, x)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                path.push(v);
                json_encode_path(rt, *x, out, depth + 1, path)?;
                path.pop();
            }
            out.push('}');
            Ok(())
        }
        Some(Obj::Extern(e)) if e.elements().is_some() => json_array(rt, v, &e.elements().unwrap_or_default(), out, depth, path),
        _ => Err(Error::msg(format!("json-encode: cannot encode {}", rt.type_name(v)))),
    }
}

/// A JSON array of `items`, the elements of container `v`.
fn json_array(rt: &Rt, v: Value, items: &[Value], out: &mut String, depth: usize, path: &mut Vec<Value>) -> Result<()> {
    out.push('[');
    path.push(v);
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_encode_path(rt, *x, out, depth + 1, path)?;
    }
    path.pop();
    out.push(']');
    Ok(())
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
