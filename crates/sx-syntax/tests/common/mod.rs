//! Helpers shared by the test binaries.
#![allow(dead_code)]

use sx_syntax::{Datum, DatumKind, Span};

/// A compact, type-tagged rendering of data for assertions:
/// `int:1 float:1.5 rat:1/2 str:"a" char:'a' sym:foo kw:foo nil true (..) {k v ..} #name(..)`.
pub fn show(data: &[Datum]) -> String {
    data.iter().map(show1).collect::<Vec<_>>().join(" ")
}

pub fn show1(d: &Datum) -> String {
    match &d.kind {
        DatumKind::Nil => "nil".into(),
        DatumKind::Bool(b) => b.to_string(),
        DatumKind::Int(n) => format!("int:{n}"),
        DatumKind::Float(f) => format!("float:{}", sx_syntax::printer::format_float(*f)),
        DatumKind::Rational(n, d) => format!("rat:{n}/{d}"),
        DatumKind::Str(s) => format!("str:{s:?}"),
        DatumKind::Char(c) => format!("char:{c:?}"),
        DatumKind::Symbol(s) => format!("sym:{s}"),
        DatumKind::Keyword(k) => format!("kw:{k}"),
        DatumKind::List(items) => format!("({})", show(items)),
        DatumKind::Dict(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{} {}", show1(k), show1(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        DatumKind::ReaderMacro(name, inner) => format!("#{name}({})", show1(inner)),
    }
}

/// Structural equality ignoring spans; NaN equals NaN, floats compare by bits otherwise
/// (so `-0.0` and `0.0` are told apart).
pub fn same(a: &Datum, b: &Datum) -> bool {
    use DatumKind::*;
    match (&a.kind, &b.kind) {
        (Float(x), Float(y)) => (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits(),
        (List(xs), List(ys)) => xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y)),
        (Dict(xs), Dict(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        (ReaderMacro(n1, x), ReaderMacro(n2, y)) => n1 == n2 && same(x, y),
        (x, y) => x == y,
    }
}

pub fn same_all(a: &[Datum], b: &[Datum]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

/// The 1-based line and code-point column of byte offset `offset` in `src`, or `None` if the
/// offset is not a character boundary within `src`.
pub fn line_col(src: &str, offset: usize) -> Option<(u32, u32)> {
    let before = src.get(..offset)?;
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..)?.chars().count() as u32 + 1;
    Some((line, col))
}

/// Checks that a span lies within `src`, starts and ends on character boundaries, and that
/// its line/column agree with its start offset. Returns a description of the problem.
pub fn check_span(src: &str, span: Span) -> Result<(), String> {
    if span.line < 1 || span.col < 1 {
        return Err(format!("line/col below 1: {span:?}"));
    }
    let (s, e) = (span.start as usize, span.end as usize);
    if s > e || e > src.len() {
        return Err(format!(
            "span outside input of {} bytes: {span:?}",
            src.len()
        ));
    }
    if !src.is_char_boundary(e) {
        return Err(format!("span end not on a char boundary: {span:?}"));
    }
    match line_col(src, s) {
        None => Err(format!("span start not on a char boundary: {span:?}")),
        Some(lc) if lc != (span.line, span.col) => Err(format!(
            "span {span:?} says {}:{} but its start is at {}:{}",
            span.line, span.col, lc.0, lc.1
        )),
        Some(_) => Ok(()),
    }
}

/// [`check_span`] on a datum and everything inside it; children must lie within the parent.
pub fn check_spans(src: &str, d: &Datum) -> Result<(), String> {
    check_span(src, d.span)?;
    let children: Vec<&Datum> = match &d.kind {
        DatumKind::List(items) => items.iter().collect(),
        DatumKind::Dict(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        DatumKind::ReaderMacro(_, inner) => vec![&**inner],
        _ => vec![],
    };
    for c in children {
        if c.span.start < d.span.start || c.span.end > d.span.end {
            return Err(format!(
                "child span {:?} outside parent {:?}",
                c.span, d.span
            ));
        }
        check_spans(src, c)?;
    }
    Ok(())
}
