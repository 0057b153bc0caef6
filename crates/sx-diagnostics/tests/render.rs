//! Snapshots of rendered diagnostics: reader errors for every kind of bad
//! input, and runtime errors with backtraces.

use sx_diagnostics::{render, Report, TraceLine};

fn reader_error(src: &str) -> String {
    match sx_syntax::parse(src) {
        Ok(_) => panic!("expected a reader error for {src:?}"),
        Err(d) => render(&Report { message: &d.message, file: Some("input.sx"), span: Some(d.span), source: Some(src), backtrace: &[] }),
    }
}

macro_rules! reader_snapshots {
    ($($name:ident: $src:expr;)*) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(reader_error($src));
        }
    )*};
}

reader_snapshots! {
    unterminated_string: "(define s \"abc)\n";
    unexpected_close: "(+ 1 2))";
    unclosed_list: "(define (f x)\n  (+ x 1)\n";
    mismatched_bracket: "(list 1 2]";
    odd_dict: "{:a 1 :b}";
    bad_escape: "\"a\\qb\"";
    bad_char_name: "#\\bogus";
    rational_zero: "(+ 1/0 2)";
    unicode_before_error: "(str \"héllo\" ))";
    tab_before_error: "\t(x\t\"y)";
}

#[test]
fn runtime_error_with_backtrace() {
    let src = "(define (inner x)\n  (+ x \"a\"))\n(define (outer x)\n  (* 2 (inner x)))\n(outer 1)\n";
    let trace = vec![
        TraceLine { name: "inner".into(), file: "prog.sx".into(), line: 2, col: 3 },
        TraceLine { name: "outer".into(), file: "prog.sx".into(), line: 4, col: 3 },
        TraceLine { name: "<top level>".into(), file: "prog.sx".into(), line: 5, col: 1 },
    ];
    let span = sx_syntax::Span { start: 20, end: 29, line: 2, col: 3 };
    insta::assert_snapshot!(render(&Report {
        message: "+: expected number, got string",
        file: Some("prog.sx"),
        span: Some(span),
        source: Some(src),
        backtrace: &trace,
    }));
}

#[test]
fn long_backtraces_are_elided_in_the_middle() {
    let trace: Vec<TraceLine> = (0..40).map(|i| TraceLine { name: format!("f{i}"), file: "deep.sx".into(), line: i + 1, col: 1 }).collect();
    let out = render(&Report { message: "boom", file: Some("deep.sx"), span: None, source: None, backtrace: &trace });
    assert!(out.contains("... 23 more frames ..."), "{out}");
    assert!(out.contains("f0 at deep.sx:1:1") && out.contains("f39 at deep.sx:40:1") && !out.contains("f20 "), "{out}");
}

#[test]
fn without_source_only_the_first_line_and_trace() {
    let out = render(&Report { message: "Undefined symbol: x", file: Some("<eval>"), span: Some(sx_syntax::Span { start: 0, end: 1, line: 1, col: 1 }), source: None, backtrace: &[] });
    assert_eq!(out, "<eval>:1:1: Undefined symbol: x\n");
}
