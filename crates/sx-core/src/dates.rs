//! `parse-datetime` and `format-date` (strftime-style, English names, no
//! time-zone conversion).

use crate::error::{Error, Result};
use crate::heap::DictMap;
use crate::rt::Rt;
use crate::value::Value;
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(s: &[u8], i: &mut usize, n: usize) -> Option<u32> {
    let part = s.get(*i..*i + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    *i += n;
    part.iter().try_fold(0u32, |acc, d| acc.checked_mul(10)?.checked_add((d - b'0') as u32))
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS][.frac]][Z|±HH:MM]`.
pub fn parse(s: &str) -> Option<DateTime> {
    let b = s.trim().as_bytes();
    let mut i = 0;
    let year = digits(b, &mut i, 4)? as i64;
    if b.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let month = digits(b, &mut i, 2)?;
    if b.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let day = digits(b, &mut i, 2)?;
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if matches!(b.get(i), Some(b'T') | Some(b' ')) {
        i += 1;
        hour = digits(b, &mut i, 2)?;
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        minute = digits(b, &mut i, 2)?;
        if b.get(i) == Some(&b':') {
            i += 1;
            second = digits(b, &mut i, 2)?;
            if b.get(i) == Some(&b'.') {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
            }
        }
        match b.get(i) {
            Some(b'Z') => i += 1,
            Some(b'+') | Some(b'-') => {
                i += 1;
                digits(b, &mut i, 2)?;
                if b.get(i) == Some(&b':') {
                    i += 1;
                }
                digits(b, &mut i, 2)?;
            }
            _ => {}
        }
    }
    if i != b.len() || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(DateTime { year, month, day, hour, minute, second })
}

const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Day of week, 0 = Monday (Sakamoto's method).
fn weekday(d: &DateTime) -> usize {
    let t = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let mut y = d.year;
    if d.month < 3 {
        y -= 1;
    }
    let w = (y + y / 4 - y / 100 + y / 400 + t[(d.month - 1) as usize] + d.day as i64).rem_euclid(7);
    ((w + 6) % 7) as usize
}

fn day_of_year(d: &DateTime) -> u32 {
    (1..d.month).map(|m| days_in_month(d.year, m)).sum::<u32>() + d.day
}

pub fn format(d: &DateTime, fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(k) = chars.next() else {
            out.push('%');
            break;
        };
        let h12 = if d.hour.is_multiple_of(12) { 12 } else { d.hour % 12 };
        let m = MONTHS[(d.month as usize).saturating_sub(1).min(11)];
        let w = DAYS[weekday(d)];
        match k {
            'Y' => out.push_str(&format!("{:04}", d.year)),
            'y' => out.push_str(&format!("{:02}", d.year.rem_euclid(100))),
            'm' => out.push_str(&format!("{:02}", d.month)),
            'd' => out.push_str(&format!("{:02}", d.day)),
            'e' => out.push_str(&format!("{:>2}", d.day)),
            'H' => out.push_str(&format!("{:02}", d.hour)),
            'I' => out.push_str(&format!("{h12:02}")),
            'M' => out.push_str(&format!("{:02}", d.minute)),
            'S' => out.push_str(&format!("{:02}", d.second)),
            'p' => out.push_str(if d.hour < 12 { "AM" } else { "PM" }),
            'b' => out.push_str(&m[..3]),
            'B' => out.push_str(m),
            'a' => out.push_str(&w[..3]),
            'A' => out.push_str(w),
            'j' => out.push_str(&format!("{:03}", day_of_year(d))),
            '%' => out.push('%'),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

pub fn to_dict(rt: &mut Rt, d: &DateTime) -> Value {
    let mut m = DictMap::default();
    for (k, v) in [("year", d.year), ("month", d.month as i64), ("day", d.day as i64), ("hour", d.hour as i64), ("minute", d.minute as i64), ("second", d.second as i64)] {
        let v = rt.int(v);
        m.insert(Rc::from(k), v);
    }
    rt.dict(m)
}

fn from_value(rt: &Rt, v: Value) -> Option<DateTime> {
    if let Some(s) = rt.as_str(v) {
        return parse(&s.s);
    }
    let d = rt.as_dict(v)?;
    let get = |k: &str, def: i64| -> Option<i64> {
        match d.get(k) {
            Some(x) => match rt.num(*x)? {
                crate::num::Num::Int(i) => Some(i),
                crate::num::Num::Float(f) => Some(f as i64),
                crate::num::Num::Rat(..) => None,
            },
            None => Some(def),
        }
    };
    let dt = DateTime {
        year: get("year", -1)?,
        month: u32::try_from(get("month", 0)?).ok()?,
        day: u32::try_from(get("day", 0)?).ok()?,
        hour: u32::try_from(get("hour", 0)?).ok()?,
        minute: u32::try_from(get("minute", 0)?).ok()?,
        second: u32::try_from(get("second", 0)?).ok()?,
    };
    if dt.year < 0 || !(1..=12).contains(&dt.month) || dt.day == 0 || dt.day > days_in_month(dt.year, dt.month) {
        return None;
    }
    Some(dt)
}

pub fn p_parse_datetime(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let s = rt.expect_str("parse-datetime", a[0])?;
    match parse(&s) {
        Some(d) => Ok(to_dict(rt, &d)),
        None => Ok(Value::NIL),
    }
}

pub fn p_format_date(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let fmt = rt.expect_str("format-date", a[1])?;
    match from_value(rt, a[0]) {
        Some(d) => Ok(rt.string(format(&d, &fmt))),
        None => Err(Error::msg("format-date: invalid date")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let d = parse("2024-03-15T14:30:05Z").expect("valid");
        assert_eq!(format(&d, "%Y-%m-%d %H:%M:%S %a %b %j %I%p"), "2024-03-15 14:30:05 Fri Mar 075 02PM");
        assert!(parse("2023-02-29").is_none());
        assert!(parse("2024-02-29").is_some());
        assert!(parse("2024-01-15T10:30:45.123+02:00").is_some());
        assert!(parse("nope").is_none());
    }
}
