//! The numeric tower: integers (fixnum or boxed i64) and floats.
//! Integer overflow promotes to float; it never wraps.

use crate::error::{type_error, Error, Result};
use crate::heap::Obj;
use crate::rt::Rt;
use crate::value::Value;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn to_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

impl Rt {
    #[inline]
    pub fn num(&self, v: Value) -> Option<Num> {
        if let Some(n) = v.as_fixnum() {
            return Some(Num::Int(n));
        }
        match self.heap.get(v) {
            Some(Obj::Float(f)) => Some(Num::Float(*f)),
            Some(Obj::Int(i)) => Some(Num::Int(*i)),
            _ => None,
        }
    }

    pub fn expect_num(&self, prim: &str, v: Value) -> Result<Num> {
        self.num(v).ok_or_else(|| type_error(prim, "number", self.type_name(v)))
    }

    pub fn expect_int(&self, prim: &str, v: Value) -> Result<i64> {
        match self.num(v) {
            Some(Num::Int(i)) => Ok(i),
            Some(Num::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            _ => Err(type_error(prim, "integer", self.type_name(v))),
        }
    }

    pub fn num_value(&mut self, n: Num) -> Value {
        match n {
            Num::Int(i) => self.int(i),
            Num::Float(f) => self.float(f),
        }
    }

    pub fn is_number(&self, v: Value) -> bool {
        self.num(v).is_some()
    }
}

pub fn add(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => match x.checked_add(y) {
            Some(r) => Num::Int(r),
            None => Num::Float(x as f64 + y as f64),
        },
        _ => Num::Float(a.to_f64() + b.to_f64()),
    }
}

pub fn sub(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => match x.checked_sub(y) {
            Some(r) => Num::Int(r),
            None => Num::Float(x as f64 - y as f64),
        },
        _ => Num::Float(a.to_f64() - b.to_f64()),
    }
}

pub fn mul(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => match x.checked_mul(y) {
            Some(r) => Num::Int(r),
            None => Num::Float(x as f64 * y as f64),
        },
        _ => Num::Float(a.to_f64() * b.to_f64()),
    }
}

/// `/`: exact when int ÷ int divides evenly, else float. Exact zero divisor is an error.
pub fn div(a: Num, b: Num) -> Result<Num> {
    match (a, b) {
        (_, Num::Int(0)) => Err(Error::msg("Division by zero")),
        (Num::Int(x), Num::Int(y)) => {
            if x % y == 0 {
                match x.checked_div(y) {
                    Some(r) => Ok(Num::Int(r)),
                    None => Ok(Num::Float(x as f64 / y as f64)),
                }
            } else {
                Ok(Num::Float(x as f64 / y as f64))
            }
        }
        _ => Ok(Num::Float(a.to_f64() / b.to_f64())),
    }
}

/// `mod`: the result takes the sign of the divisor (floored).
pub fn modulo(a: Num, b: Num) -> Result<Num> {
    match (a, b) {
        (_, Num::Int(0)) => Err(Error::msg("Division by zero")),
        (Num::Int(x), Num::Int(y)) => Ok(Num::Int(x.checked_rem_euclid(y).map_or(0, |r| {
            if r != 0 && y < 0 {
                r + y
            } else {
                r
            }
        }))),
        _ => {
            let (x, y) = (a.to_f64(), b.to_f64());
            let r = x % y;
            Ok(Num::Float(if r != 0.0 && (r < 0.0) != (y < 0.0) { r + y } else { r }))
        }
    }
}

/// Truncated remainder (sign of the dividend).
pub fn remainder(a: Num, b: Num) -> Result<Num> {
    match (a, b) {
        (_, Num::Int(0)) => Err(Error::msg("Division by zero")),
        (Num::Int(x), Num::Int(y)) => Ok(Num::Int(x.checked_rem(y).unwrap_or(0))),
        _ => Ok(Num::Float(a.to_f64() % b.to_f64())),
    }
}

pub fn quotient(a: Num, b: Num) -> Result<Num> {
    match (a, b) {
        (_, Num::Int(0)) => Err(Error::msg("Division by zero")),
        (Num::Int(x), Num::Int(y)) => Ok(x.checked_div(y).map_or(Num::Float(x as f64 / y as f64), Num::Int)),
        _ => Ok(Num::Float((a.to_f64() / b.to_f64()).trunc())),
    }
}

pub fn cmp(a: Num, b: Num) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => a.to_f64().partial_cmp(&b.to_f64()),
    }
}

pub fn num_eq(a: Num, b: Num) -> bool {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x == y,
        _ => a.to_f64() == b.to_f64(),
    }
}

/// Float to integer for floor/ceil/round/truncate; huge values stay float.
pub fn float_to_int(f: f64) -> Num {
    if f.is_finite() && f.abs() < 9.2e18 {
        Num::Int(f as i64)
    } else {
        Num::Float(f)
    }
}

pub fn pow(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) if y >= 0 => {
            let mut acc: i64 = 1;
            let mut overflow = false;
            for _ in 0..y.min(64) {
                match acc.checked_mul(x) {
                    Some(r) => acc = r,
                    None => {
                        overflow = true;
                        break;
                    }
                }
            }
            if y > 64 && !(x == 0 || x == 1 || x == -1) {
                overflow = true;
            }
            if x == -1 && y > 64 {
                return Num::Int(if y % 2 == 0 { 1 } else { -1 });
            }
            if x == 0 || x == 1 {
                return Num::Int(if y == 0 { 1 } else { x });
            }
            if overflow {
                Num::Float((x as f64).powf(y as f64))
            } else {
                Num::Int(acc)
            }
        }
        _ => Num::Float(a.to_f64().powf(b.to_f64())),
    }
}
