//! The runtime context primitives work in: the heap, the interner and the
//! host services (output, randomness, gensym).

use crate::error::{type_error, Error, Result};
use crate::heap::{DictMap, Heap, ListObj, Obj, SxStr};
use crate::symbols::Interner;
use crate::value::Value;
use std::io::Write;
use std::rc::Rc;

pub struct Rt {
    pub heap: Heap,
    pub syms: Interner,
    /// Where `print`/`display` write.
    pub out: Box<dyn Write>,
    rng: u64,
    pub gensym_counter: u64,
    /// The buffer [`Rt::string_with`] writes into (kept between calls).
    scratch: String,
}

impl Default for Rt {
    fn default() -> Self {
        Rt::new()
    }
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            heap: Heap::new(),
            syms: Interner::default(),
            out: Box::new(std::io::stdout()),
            rng: 0x9E37_79B9_7F4A_7C15,
            gensym_counter: 0,
            scratch: String::new(),
        }
    }

    pub fn seed_random(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    /// xorshift64*: fast, deterministic per seed.
    pub fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    // ---- constructors ----

    pub fn int(&mut self, n: i64) -> Value {
        match Value::fixnum(n) {
            Some(v) => v,
            None => self.heap.alloc(Obj::Int(n)),
        }
    }

    pub fn float(&mut self, f: f64) -> Value {
        self.heap.alloc(Obj::Float(f))
    }

    pub fn str(&mut self, s: &str) -> Value {
        self.heap.alloc(Obj::Str(SxStr::new(Rc::from(s))))
    }

    pub fn string(&mut self, s: String) -> Value {
        self.heap.alloc(Obj::Str(SxStr::new(Rc::from(s))))
    }

    /// A new string of what `write` appends to the buffer it is given: the
    /// buffer is reused from call to call, so the string's own allocation is
    /// the only one.
    pub fn string_with(&mut self, write: impl FnOnce(&Rt, &mut String)) -> Value {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        write(self, &mut buf);
        let v = self.heap.alloc(Obj::Str(SxStr::new(Rc::from(buf.as_str()))));
        // A huge one is not kept.
        if buf.capacity() <= 1 << 16 {
            self.scratch = buf;
        }
        v
    }

    pub fn str_rc(&mut self, s: Rc<str>) -> Value {
        self.heap.alloc(Obj::Str(SxStr::new(s)))
    }

    pub fn list(&mut self, items: Vec<Value>) -> Value {
        self.heap.alloc(Obj::List(ListObj::from_vec(items)))
    }

    pub fn dict(&mut self, map: DictMap) -> Value {
        self.heap.alloc(Obj::Dict(Box::new(map)))
    }

    pub fn symbol(&mut self, name: &str) -> Value {
        Value::symbol(self.syms.intern(name))
    }

    pub fn keyword(&mut self, name: &str) -> Value {
        Value::keyword(self.syms.intern(name))
    }

    /// `(cons x list)`: O(1) when `list` owns the end of its buffer.
    pub fn cons(&mut self, x: Value, list: Value) -> Result<Value> {
        let lo = match self.heap.get(list) {
            Some(Obj::List(l)) => l.clone(),
            _ if list.is_nil() => return Ok(self.list(vec![x])),
            _ => {
                // Improper cons onto a non-list: SX has no dotted pairs.
                let t = self.type_of(list);
                return Err(type_error("cons", "list", &t));
            }
        };
        let shared = {
            let mut b = lo.buf.borrow_mut();
            if b.len() == lo.len as usize {
                b.push(x);
                true
            } else {
                false
            }
        };
        let obj = if shared {
            ListObj { buf: lo.buf.clone(), len: lo.len + 1 }
        } else {
            let b = lo.buf.borrow();
            let mut v: Vec<Value> = Vec::with_capacity(lo.len as usize + 4);
            v.extend_from_slice(&b[..lo.len as usize]);
            v.push(x);
            let len = v.len() as u32;
            ListObj { buf: Rc::new(std::cell::RefCell::new(v)), len }
        };
        Ok(self.heap.alloc(Obj::List(obj)))
    }

    // ---- accessors ----

    pub fn type_of(&self, v: Value) -> String {
        self.type_name(v).to_string()
    }

    pub fn type_name(&self, v: Value) -> &str {
        if v.is_fixnum() {
            return "number";
        }
        if v.is_nil() {
            return "nil";
        }
        if v == Value::TRUE || v == Value::FALSE {
            return "boolean";
        }
        if v.as_symbol().is_some() {
            return "symbol";
        }
        if v.as_keyword().is_some() {
            return "keyword";
        }
        if v.as_char().is_some() {
            return "char";
        }
        if v.as_prim().is_some() {
            return "primitive";
        }
        if v == Value::EOF {
            return "eof";
        }
        match self.heap.get(v) {
            Some(o) => o.type_name(),
            None => "nil",
        }
    }

    pub fn as_str(&self, v: Value) -> Option<&SxStr> {
        match self.heap.get(v) {
            Some(Obj::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self, v: Value) -> Option<&ListObj> {
        match self.heap.get(v) {
            Some(Obj::List(l)) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self, v: Value) -> Option<&DictMap> {
        match self.heap.get(v) {
            Some(Obj::Dict(d)) => Some(d),
            _ => None,
        }
    }

    pub fn as_dict_mut(&mut self, v: Value) -> Option<&mut DictMap> {
        match self.heap.get_mut(v) {
            Some(Obj::Dict(d)) => Some(d),
            _ => None,
        }
    }

    pub fn is_list(&self, v: Value) -> bool {
        self.as_list(v).is_some()
    }

    /// The elements of a list (nil reads as the empty list).
    pub fn list_items(&self, v: Value) -> Option<Vec<Value>> {
        if v.is_nil() {
            return Some(Vec::new());
        }
        self.as_list(v).map(|l| l.to_vec())
    }

    /// A string argument or a type error naming the primitive.
    pub fn expect_str(&self, prim: &str, v: Value) -> Result<Rc<str>> {
        match self.as_str(v) {
            Some(s) => Ok(s.s.clone()),
            None => Err(type_error(prim, "string", self.type_name(v))),
        }
    }

    pub fn expect_list(&self, prim: &str, v: Value) -> Result<Vec<Value>> {
        match self.list_items(v) {
            Some(items) => Ok(items),
            None => Err(type_error(prim, "list", self.type_name(v))),
        }
    }

    /// Text of a string, symbol or keyword (used for dict keys).
    pub fn key_of(&self, v: Value) -> Option<Rc<str>> {
        if let Some(s) = self.as_str(v) {
            return Some(s.s.clone());
        }
        if let Some(id) = v.as_keyword().or_else(|| v.as_symbol()) {
            return Some(self.syms.name_rc(id));
        }
        None
    }

    /// A dict key: strings, keywords and symbols by name; other values by
    /// their printed form.
    pub fn dict_key(&self, v: Value) -> Rc<str> {
        match self.key_of(v) {
            Some(k) => k,
            None => Rc::from(crate::print::display(self, v)),
        }
    }

    pub fn error_value(&mut self, e: &Error) -> Value {
        match e {
            Error::Msg(m) => self.str(m),
            Error::Raise(v) => *v,
        }
    }

    /// The message of a raised value: a string as is, anything else printed.
    pub fn error_message(&self, v: Value) -> String {
        match self.as_str(v) {
            Some(s) => s.s.to_string(),
            None => crate::print::inspect(self, v),
        }
    }
}
