//! The numeric tower: integers (fixnum or boxed i64), exact rationals
//! (reduced, denominator > 1) and floats.
//!
//! int ∘ int → int; any float → float; int ∘ rational → rational;
//! rationals that reduce to a whole number are integers. Integer overflow
//! promotes to float; it never wraps.

use crate::error::{type_error, Error, Result};
use crate::heap::Obj;
use crate::rt::Rt;
use crate::value::Value;
use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    /// Numerator, denominator: reduced, denominator > 1.
    Rat(i64, i64),
    Float(f64),
}

impl Num {
    pub fn to_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Rat(n, d) => n as f64 / d as f64,
            Num::Float(f) => f,
        }
    }

    pub fn is_exact(self) -> bool {
        !matches!(self, Num::Float(_))
    }

    /// Numerator and denominator of an exact number.
    fn parts(self) -> Option<(i128, i128)> {
        match self {
            Num::Int(i) => Some((i as i128, 1)),
            Num::Rat(n, d) => Some((n as i128, d as i128)),
            Num::Float(_) => None,
        }
    }
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Normalise `n/d` (d ≠ 0): reduce, positive denominator, whole → Int;
/// too large for i64 → Float.
pub fn make_rat(n: i128, d: i128) -> Num {
    let g = gcd(n, d).max(1);
    let (mut n, mut d) = (n / g, d / g);
    if d < 0 {
        n = -n;
        d = -d;
    }
    match (i64::try_from(n), i64::try_from(d)) {
        (Ok(n), Ok(1)) => Num::Int(n),
        (Ok(n), Ok(d)) => Num::Rat(n, d),
        _ => Num::Float(n as f64 / d as f64),
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
            Some(Obj::Rational(n, d)) => Some(Num::Rat(*n, *d)),
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
            Num::Rat(n, d) => self.heap.alloc(Obj::Rational(n, d)),
            Num::Float(f) => self.float(f),
        }
    }

    pub fn is_number(&self, v: Value) -> bool {
        self.num(v).is_some()
    }
}

fn exact_op(a: Num, b: Num, f: impl Fn(i128, i128, i128, i128) -> Option<(i128, i128)>) -> Option<Num> {
    let (an, ad) = a.parts()?;
    let (bn, bd) = b.parts()?;
    let (n, d) = f(an, ad, bn, bd)?;
    Some(make_rat(n, d))
}

pub fn add(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => match x.checked_add(y) {
            Some(r) => Num::Int(r),
            None => Num::Float(x as f64 + y as f64),
        },
        (Num::Float(_), _) | (_, Num::Float(_)) => Num::Float(a.to_f64() + b.to_f64()),
        _ => exact_op(a, b, |an, ad, bn, bd| Some((an.checked_mul(bd)?.checked_add(bn.checked_mul(ad)?)?, ad.checked_mul(bd)?)))
            .unwrap_or(Num::Float(a.to_f64() + b.to_f64())),
    }
}

pub fn sub(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => match x.checked_sub(y) {
            Some(r) => Num::Int(r),
            None => Num::Float(x as f64 - y as f64),
        },
        (Num::Float(_), _) | (_, Num::Float(_)) => Num::Float(a.to_f64() - b.to_f64()),
        _ => exact_op(a, b, |an, ad, bn, bd| Some((an.checked_mul(bd)?.checked_sub(bn.checked_mul(ad)?)?, ad.checked_mul(bd)?)))
            .unwrap_or(Num::Float(a.to_f64() - b.to_f64())),
    }
}

pub fn mul(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => match x.checked_mul(y) {
            Some(r) => Num::Int(r),
            None => Num::Float(x as f64 * y as f64),
        },
        (Num::Float(_), _) | (_, Num::Float(_)) => Num::Float(a.to_f64() * b.to_f64()),
        _ => exact_op(a, b, |an, ad, bn, bd| Some((an.checked_mul(bn)?, ad.checked_mul(bd)?))).unwrap_or(Num::Float(a.to_f64() * b.to_f64())),
    }
}

fn is_exact_zero(n: Num) -> bool {
    matches!(n, Num::Int(0))
}

/// `/`: int ÷ int is an int when exact, else a float; with a rational
/// operand the result is exact. An exact zero divisor is an error.
pub fn div(a: Num, b: Num) -> Result<Num> {
    if is_exact_zero(b) {
        return Err(Error::msg("Division by zero"));
    }
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => {
            // `checked_rem`: i64::MIN % -1 overflows (the quotient does not fit).
            if x.checked_rem(y) == Some(0) {
                Ok(x.checked_div(y).map_or(Num::Float(x as f64 / y as f64), Num::Int))
            } else {
                Ok(Num::Float(x as f64 / y as f64))
            }
        }
        (Num::Float(_), _) | (_, Num::Float(_)) => Ok(Num::Float(a.to_f64() / b.to_f64())),
        _ => Ok(exact_op(a, b, |an, ad, bn, bd| Some((an.checked_mul(bd)?, ad.checked_mul(bn)?))).unwrap_or(Num::Float(a.to_f64() / b.to_f64()))),
    }
}

/// Floor of an exact quotient n/d (d > 0).
fn floor_div(n: i128, d: i128) -> i128 {
    let q = n / d;
    if (n % d != 0) && ((n < 0) != (d < 0)) {
        q - 1
    } else {
        q
    }
}

/// `mod`: the result takes the sign of the divisor (floored).
pub fn modulo(a: Num, b: Num) -> Result<Num> {
    if is_exact_zero(b) {
        return Err(Error::msg("Division by zero"));
    }
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Ok(Num::Int(x.checked_rem_euclid(y).map_or(0, |r| if r != 0 && y < 0 { r + y } else { r }))),
        (Num::Float(_), _) | (_, Num::Float(_)) => {
            let (x, y) = (a.to_f64(), b.to_f64());
            let r = x % y;
            Ok(Num::Float(if r != 0.0 && (r < 0.0) != (y < 0.0) { r + y } else { r }))
        }
        _ => {
            // x - y * floor(x / y)
            let q = div(a, b)?;
            let fl = floor_num(q);
            Ok(sub(a, mul(b, fl)))
        }
    }
}

/// Truncated remainder (sign of the dividend).
pub fn remainder(a: Num, b: Num) -> Result<Num> {
    if is_exact_zero(b) {
        return Err(Error::msg("Division by zero"));
    }
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Ok(Num::Int(x.checked_rem(y).unwrap_or(0))),
        (Num::Float(_), _) | (_, Num::Float(_)) => Ok(Num::Float(a.to_f64() % b.to_f64())),
        _ => {
            let q = div(a, b)?;
            Ok(sub(a, mul(b, trunc_num(q))))
        }
    }
}

pub fn quotient(a: Num, b: Num) -> Result<Num> {
    if is_exact_zero(b) {
        return Err(Error::msg("Division by zero"));
    }
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Ok(x.checked_div(y).map_or(Num::Float(x as f64 / y as f64), Num::Int)),
        (Num::Float(_), _) | (_, Num::Float(_)) => Ok(Num::Float((a.to_f64() / b.to_f64()).trunc())),
        _ => Ok(trunc_num(div(a, b)?)),
    }
}

pub fn cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Float(f), e) => match float_to_exact(f) {
            Some(x) => cmp(x, e),
            None => f.partial_cmp(&e.to_f64()),
        },
        (e, Num::Float(f)) => match float_to_exact(f) {
            Some(x) => cmp(e, x),
            None => e.to_f64().partial_cmp(&f),
        },
        _ => {
            let (an, ad) = a.parts()?;
            let (bn, bd) = b.parts()?;
            Some((an * bd).cmp(&(bn * ad)))
        }
    }
}

pub fn num_eq(a: Num, b: Num) -> bool {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x == y,
        (Num::Float(f), Num::Float(g)) => f == g,
        (Num::Float(f), e) | (e, Num::Float(f)) => {
            // Compare exactly when the float is finite: 2.5 = 5/2.
            match float_to_exact(f) {
                Some(x) => cmp(x, e) == Some(Ordering::Equal),
                None => false,
            }
        }
        _ => cmp(a, b) == Some(Ordering::Equal),
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

fn round_exact(n: i128, d: i128, mode: fn(i128, i128) -> i128) -> Num {
    let r = mode(n, d);
    match i64::try_from(r) {
        Ok(i) => Num::Int(i),
        Err(_) => Num::Float(r as f64),
    }
}

pub fn floor_num(x: Num) -> Num {
    match x {
        Num::Int(_) => x,
        Num::Rat(n, d) => round_exact(n as i128, d as i128, floor_div),
        Num::Float(f) => float_to_int(f.floor()),
    }
}

pub fn ceil_num(x: Num) -> Num {
    match x {
        Num::Int(_) => x,
        Num::Rat(n, d) => round_exact(n as i128, d as i128, |n, d| -floor_div(-n, d)),
        Num::Float(f) => float_to_int(f.ceil()),
    }
}

pub fn trunc_num(x: Num) -> Num {
    match x {
        Num::Int(_) => x,
        Num::Rat(n, d) => round_exact(n as i128, d as i128, |n, d| n / d),
        Num::Float(f) => float_to_int(f.trunc()),
    }
}

/// Round half away from zero.
pub fn round_num(x: Num) -> Num {
    match x {
        Num::Int(_) => x,
        Num::Rat(n, d) => round_exact(n as i128, d as i128, |n, d| {
            let twice = 2 * n.abs() + d;
            let q = twice / (2 * d);
            if n < 0 {
                -q
            } else {
                q
            }
        }),
        Num::Float(f) => float_to_int(f.round()),
    }
}

/// The exact value of a finite float (a rational when it fits i64 parts).
pub fn float_to_exact(f: f64) -> Option<Num> {
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 {
        return if f.abs() < 9.2e18 { Some(Num::Int(f as i64)) } else { None };
    }
    let bits = f.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let mant = if exp == 0 { (bits & 0xf_ffff_ffff_ffff) << 1 } else { (bits & 0xf_ffff_ffff_ffff) | 0x10_0000_0000_0000 };
    let e = exp - 1075;
    let sign: i128 = if f < 0.0 { -1 } else { 1 };
    if e >= 0 {
        return None;
    }
    let shift = (-e) as u32;
    if shift > 126 {
        return None;
    }
    let n = sign * mant as i128;
    let d = 1i128 << shift;
    match make_rat(n, d) {
        Num::Float(_) => None,
        r => Some(r),
    }
}

/// `inexact->exact`: the exact value when representable, else the closest
/// rational with an i64 denominator.
pub fn to_exact(x: Num) -> Num {
    match x {
        Num::Float(f) => float_to_exact(f).unwrap_or_else(|| if f.is_finite() { approx_rational(f) } else { Num::Float(f) }),
        e => e,
    }
}

fn approx_rational(f: f64) -> Num {
    // Continued fractions, stopping before the parts overflow.
    let (mut h0, mut h1, mut k0, mut k1) = (0i128, 1i128, 1i128, 0i128);
    let mut x = f;
    for _ in 0..64 {
        let a = x.floor();
        if a.abs() > 1e18 {
            break;
        }
        let ai = a as i128;
        let (h2, k2) = (ai * h1 + h0, ai * k1 + k0);
        if h2.abs() > i64::MAX as i128 || k2.abs() > i64::MAX as i128 {
            break;
        }
        h0 = h1;
        h1 = h2;
        k0 = k1;
        k1 = k2;
        let frac = x - a;
        if frac.abs() < 1e-300 || (h1 as f64 / k1 as f64) == f {
            break;
        }
        x = 1.0 / frac;
    }
    if k1 == 0 {
        return Num::Float(f);
    }
    make_rat(h1, k1)
}

/// `expt`/`pow`: exact for an exact base and integer exponent (a negative
/// exponent gives the exact reciprocal; 0 to a negative power is a
/// division by zero); float otherwise or on overflow.
pub fn pow(a: Num, b: Num) -> Result<Num> {
    let (Some((bn, bd)), Num::Int(y)) = (a.parts(), b) else {
        return Ok(Num::Float(a.to_f64().powf(b.to_f64())));
    };
    let (mut bn, mut bd) = (bn, bd);
    if y < 0 {
        if bn == 0 {
            return Err(Error::msg("Division by zero"));
        }
        std::mem::swap(&mut bn, &mut bd);
        if bd < 0 {
            bn = -bn;
            bd = -bd;
        }
    }
    let e = y.unsigned_abs();
    // Bases whose powers never grow.
    if bd == 1 && (bn == 0 || bn == 1) {
        return Ok(Num::Int(if e == 0 { 1 } else { bn as i64 }));
    }
    if bd == 1 && bn == -1 {
        return Ok(Num::Int(if e % 2 == 0 { 1 } else { -1 }));
    }
    let float = || Num::Float(a.to_f64().powf(b.to_f64()));
    if e > 128 {
        return Ok(float());
    }
    let (mut rn, mut rd): (i128, i128) = (1, 1);
    for _ in 0..e {
        match (rn.checked_mul(bn), rd.checked_mul(bd)) {
            (Some(n), Some(d)) if n >= i64::MIN as i128 && n <= i64::MAX as i128 && d <= i64::MAX as i128 => {
                rn = n;
                rd = d;
            }
            _ => return Ok(float()),
        }
    }
    Ok(make_rat(rn, rd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationals_reduce_and_mix() {
        assert_eq!(make_rat(2, 4), Num::Rat(1, 2));
        assert_eq!(make_rat(4, 2), Num::Int(2));
        assert_eq!(make_rat(1, -3), Num::Rat(-1, 3));
        assert_eq!(add(Num::Rat(1, 2), Num::Rat(1, 2)), Num::Int(1));
        assert_eq!(div(Num::Rat(1, 2), Num::Int(2)).ok(), Some(Num::Rat(1, 4)));
        assert_eq!(div(Num::Int(7), Num::Int(2)).ok(), Some(Num::Float(3.5)));
        assert!(num_eq(Num::Float(2.5), Num::Rat(5, 2)));
        assert_eq!(round_num(Num::Rat(5, 2)), Num::Int(3));
        assert_eq!(round_num(Num::Rat(-5, 2)), Num::Int(-3));
        assert_eq!(floor_num(Num::Rat(-7, 2)), Num::Int(-4));
        assert_eq!(to_exact(Num::Float(0.5)), Num::Rat(1, 2));
        assert_eq!(pow(Num::Rat(2, 3), Num::Int(2)).ok(), Some(Num::Rat(4, 9)));
        assert_eq!(pow(Num::Int(2), Num::Int(-2)).ok(), Some(Num::Rat(1, 4)));
        assert_eq!(pow(Num::Int(-2), Num::Int(63)).ok(), Some(Num::Int(i64::MIN)));
        assert!(pow(Num::Int(0), Num::Int(-1)).is_err());
        assert!(matches!(pow(Num::Int(2), Num::Int(i64::MIN)).ok(), Some(Num::Float(_))));
        assert_eq!(modulo(Num::Rat(7, 2), Num::Int(1)).ok(), Some(Num::Rat(1, 2)));
    }
}
