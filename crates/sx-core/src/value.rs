//! The one-word value representation.
//!
//! A [`Value`] is a `u64` with a tag in its low bits, so compiled code can test
//! and add small integers inline:
//!
//! | low bits | meaning                                              |
//! |----------|------------------------------------------------------|
//! | `xx0`    | fixnum: a 63-bit signed integer, `n << 1`            |
//! | `001`    | heap reference: slot index `<< 3` (not a pointer)    |
//! | `011`    | immediate: nil, booleans, chars, primitives, ...     |
//! | `101`    | symbol: interned id `<< 3`                           |
//! | `111`    | keyword: interned id `<< 3`                          |
//!
//! Heap references are indices into the [`crate::Heap`], never Rust pointers,
//! so a WebAssembly backend can hold them as plain integers.

/// One SX value. Copyable; heap objects it refers to are kept alive by the
/// collector only while the value is reachable from a root.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Value(pub u64);

pub const TAG_MASK: u64 = 0b111;
pub const TAG_HEAP: u64 = 0b001;
pub const TAG_IMM: u64 = 0b011;
pub const TAG_SYM: u64 = 0b101;
pub const TAG_KW: u64 = 0b111;

// Immediate sub-tags (bits 3..8).
const IMM_NIL: u64 = 0;
const IMM_TRUE: u64 = 1;
const IMM_FALSE: u64 = 2;
const IMM_UNBOUND: u64 = 3;
const IMM_EOF: u64 = 4;
const IMM_CHAR: u64 = 5;
const IMM_PRIM: u64 = 6;
const IMM_JIT: u64 = 31;

const fn imm(sub: u64, payload: u64) -> Value {
    Value((payload << 8) | (sub << 3) | TAG_IMM)
}

/// Largest integer stored inline.
pub const FIXNUM_MAX: i64 = (1 << 62) - 1;
/// Smallest integer stored inline.
pub const FIXNUM_MIN: i64 = -(1 << 62);

impl Value {
    pub const NIL: Value = imm(IMM_NIL, 0);
    pub const TRUE: Value = imm(IMM_TRUE, 0);
    pub const FALSE: Value = imm(IMM_FALSE, 0);
    /// Marks an unbound global slot; never visible to SX code.
    pub const UNBOUND: Value = imm(IMM_UNBOUND, 0);
    pub const EOF: Value = imm(IMM_EOF, 0);
    /// Returned by compiled code and its helpers: the computation continues
    /// in the interpreter (see `sx-jit`). Never visible to SX code.
    pub const JIT_UNWIND: Value = imm(IMM_JIT, 0);
    /// Returned by compiled code: perform the tail call left in the JIT
    /// context. Never visible to SX code.
    pub const JIT_TAIL: Value = imm(IMM_JIT, 1);

    #[inline]
    pub fn bool(b: bool) -> Value {
        if b {
            Value::TRUE
        } else {
            Value::FALSE
        }
    }

    /// A fixnum, if `n` fits in 63 bits.
    #[inline]
    pub fn fixnum(n: i64) -> Option<Value> {
        if (FIXNUM_MIN..=FIXNUM_MAX).contains(&n) {
            Some(Value((n << 1) as u64))
        } else {
            None
        }
    }

    #[inline]
    pub fn is_fixnum(self) -> bool {
        self.0 & 1 == 0
    }

    #[inline]
    pub fn as_fixnum(self) -> Option<i64> {
        if self.is_fixnum() {
            Some((self.0 as i64) >> 1)
        } else {
            None
        }
    }

    #[inline]
    pub fn heap(index: u32) -> Value {
        Value(((index as u64) << 3) | TAG_HEAP)
    }

    #[inline]
    pub fn is_heap(self) -> bool {
        self.0 & TAG_MASK == TAG_HEAP
    }

    #[inline]
    pub fn heap_index(self) -> Option<u32> {
        if self.is_heap() {
            Some((self.0 >> 3) as u32)
        } else {
            None
        }
    }

    #[inline]
    pub fn symbol(id: u32) -> Value {
        Value(((id as u64) << 3) | TAG_SYM)
    }

    #[inline]
    pub fn as_symbol(self) -> Option<u32> {
        if self.0 & TAG_MASK == TAG_SYM {
            Some((self.0 >> 3) as u32)
        } else {
            None
        }
    }

    #[inline]
    pub fn keyword(id: u32) -> Value {
        Value(((id as u64) << 3) | TAG_KW)
    }

    #[inline]
    pub fn as_keyword(self) -> Option<u32> {
        if self.0 & TAG_MASK == TAG_KW {
            Some((self.0 >> 3) as u32)
        } else {
            None
        }
    }

    #[inline]
    pub fn char(c: char) -> Value {
        imm(IMM_CHAR, c as u64)
    }

    #[inline]
    pub fn as_char(self) -> Option<char> {
        if self.0 & 0xff == (IMM_CHAR << 3) | TAG_IMM {
            char::from_u32((self.0 >> 8) as u32)
        } else {
            None
        }
    }

    #[inline]
    pub fn prim(id: u32) -> Value {
        imm(IMM_PRIM, id as u64)
    }

    #[inline]
    pub fn as_prim(self) -> Option<u32> {
        if self.0 & 0xff == (IMM_PRIM << 3) | TAG_IMM {
            Some((self.0 >> 8) as u32)
        } else {
            None
        }
    }

    /// Only `false` and `nil` are falsy.
    #[inline]
    pub fn truthy(self) -> bool {
        self != Value::FALSE && self != Value::NIL
    }

    #[inline]
    pub fn is_nil(self) -> bool {
        self == Value::NIL
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(n) = self.as_fixnum() {
            write!(f, "Fix({n})")
        } else if let Some(i) = self.heap_index() {
            write!(f, "Heap({i})")
        } else if let Some(s) = self.as_symbol() {
            write!(f, "Sym({s})")
        } else if let Some(k) = self.as_keyword() {
            write!(f, "Kw({k})")
        } else if let Some(c) = self.as_char() {
            write!(f, "Char({c:?})")
        } else if let Some(p) = self.as_prim() {
            write!(f, "Prim({p})")
        } else if *self == Value::NIL {
            write!(f, "Nil")
        } else if *self == Value::TRUE {
            write!(f, "True")
        } else if *self == Value::FALSE {
            write!(f, "False")
        } else if *self == Value::UNBOUND {
            write!(f, "Unbound")
        } else if *self == Value::EOF {
            write!(f, "Eof")
        } else {
            write!(f, "Value({:#x})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixnums_round_trip_and_add_inline() {
        for n in [0i64, 1, -1, 42, FIXNUM_MAX, FIXNUM_MIN] {
            let v = Value::fixnum(n).expect("fits");
            assert_eq!(v.as_fixnum(), Some(n));
        }
        assert!(Value::fixnum(FIXNUM_MAX + 1).is_none());
        let a = Value::fixnum(20).expect("fits");
        let b = Value::fixnum(22).expect("fits");
        // Tagged addition needs no untagging.
        assert_eq!(Value(a.0.wrapping_add(b.0)).as_fixnum(), Some(42));
    }

    #[test]
    fn tags_are_disjoint() {
        let vals = [
            Value::NIL,
            Value::TRUE,
            Value::FALSE,
            Value::UNBOUND,
            Value::EOF,
            Value::char('x'),
            Value::prim(3),
            Value::symbol(3),
            Value::keyword(3),
            Value::heap(3),
            Value::fixnum(3).expect("fits"),
        ];
        for (i, a) in vals.iter().enumerate() {
            for (j, b) in vals.iter().enumerate() {
                assert_eq!(i == j, a == b, "{a:?} vs {b:?}");
            }
        }
        assert!(!Value::NIL.truthy());
        assert!(!Value::FALSE.truthy());
        assert!(Value::fixnum(0).expect("fits").truthy());
    }
}
