//! Unit tests of the printer.

mod common;

use sx_syntax::printer::{format_float, print};
use sx_syntax::{parse, parse_one, Datum, DatumKind, Span};

fn d(kind: DatumKind) -> Datum {
    Datum {
        kind,
        span: Span::default(),
    }
}

/// Reads `src` and prints each form, joined by spaces.
fn reprint(src: &str) -> String {
    parse(src)
        .unwrap()
        .iter()
        .map(print)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn atoms() {
    assert_eq!(
        reprint("nil true false 42 -7 1/3 -5/2 :kw sym"),
        "nil true false 42 -7 1/3 -5/2 :kw sym"
    );
    assert_eq!(reprint("+5 007 4/2"), "5 7 2");
}

#[test]
fn floats() {
    assert_eq!(
        reprint("1.5 2.0 0.1 -0.0 1e3 1e20 1.5e-7 .5"),
        "1.5 2.0 0.1 -0.0 1000.0 1e20 1.5e-7 0.5"
    );
    assert_eq!(
        reprint("+inf.0 -inf.0 +nan.0 1e999"),
        "+inf.0 -inf.0 +nan.0 +inf.0"
    );
    assert_eq!(format_float(f64::MAX), "1.7976931348623157e308");
    assert_eq!(format_float(5e-324), "5e-324");
    assert_eq!(format_float(123456789.0), "123456789.0");
}

#[test]
fn strings() {
    assert_eq!(
        reprint(r#""a\"b\\c\nd\te\rf\0g""#),
        r#""a\"b\\c\nd\te\rf\0g""#
    );
    assert_eq!(reprint("\"λ 😀\""), "\"λ 😀\"");
    assert_eq!(
        print(&d(DatumKind::Str("\u{1}\u{7f}\u{85}".into()))),
        r#""\u0001\u007F\u0085""#
    );
    assert_eq!(reprint("#|raw \\ \"q\"|"), r#""raw \\ \"q\"""#);
}

#[test]
fn chars() {
    assert_eq!(
        reprint("#\\a #\\( #\\λ #\\x #\\\\"),
        "#\\a #\\( #\\λ #\\x #\\\\"
    );
    assert_eq!(
        reprint("#\\space #\\newline #\\tab #\\return #\\null #\\altmode #\\rubout #\\backspace"),
        "#\\space #\\newline #\\tab #\\return #\\nul #\\escape #\\delete #\\backspace"
    );
    assert_eq!(print(&d(DatumKind::Char('\u{1}'))), "#\\x1");
    assert_eq!(print(&d(DatumKind::Char('\u{a0}'))), "#\\xa0");
    assert_eq!(print(&d(DatumKind::Char('\u{2028}'))), "#\\x2028");
}

#[test]
fn collections() {
    assert_eq!(reprint("(1 [2 3] ())"), "(1 (2 3) ())");
    assert_eq!(reprint("{:a 1 \"b\" {:c ()}}"), "{:a 1 \"b\" {:c ()}}");
    assert_eq!(reprint("{}"), "{}");
}

#[test]
fn quote_sugar_prints_in_longhand() {
    assert_eq!(
        reprint("'x `(a ,b ,@c) #'f"),
        "(quote x) (quasiquote (a (unquote b) (splice-unquote c))) (quote f)"
    );
}

#[test]
fn reader_macros() {
    assert_eq!(
        reprint("#inst\"2024\" #a #b(x) #a#b 1"),
        "#inst \"2024\" #a #b (x) #a#b 1"
    );
}

#[test]
fn printed_forms_reread_as_the_same_data() {
    let src =
        r#"(define (f x) {:a [1 2.5 -3/4 "s\n" #\space] :b 'x :c #m #\( :d 1e300 :e +nan.0})"#;
    let once = parse(src).unwrap();
    let text = once.iter().map(print).collect::<Vec<_>>().join("\n");
    let twice = parse(&text).unwrap();
    assert!(common::same_all(&once, &twice), "{text}");
}

#[test]
fn display_matches_print() {
    let x = parse_one("(a \"b\" 1.0)").unwrap().unwrap();
    assert_eq!(x.to_string(), print(&x));
}
