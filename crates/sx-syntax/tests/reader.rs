//! Unit tests of the reader: one `check` per syntax element, one `check_err` per diagnostic.

mod common;

use common::{check_spans, show};
use sx_syntax::{parse, parse_one, DatumKind, Span, MAX_DEPTH};

/// Reads `src` and compares the tagged rendering of all forms with `expected`.
#[track_caller]
fn check(src: &str, expected: &str) {
    match parse(src) {
        Ok(data) => {
            assert_eq!(show(&data), expected, "reading {src:?}");
            for d in &data {
                if let Err(e) = check_spans(src, d) {
                    panic!("bad span reading {src:?}: {e}");
                }
            }
        }
        Err(e) => panic!("reading {src:?} failed: {e}"),
    }
}

/// Reads `src`, expecting the diagnostic `line:col: message`.
#[track_caller]
fn check_err(src: &str, expected: &str) {
    match parse(src) {
        Ok(data) => panic!("reading {src:?} should fail, got {}", show(&data)),
        Err(e) => {
            assert_eq!(e.to_string(), expected, "reading {src:?}");
            if let Err(msg) = common::check_span(src, e.span) {
                panic!("bad diagnostic span for {src:?}: {msg}");
            }
        }
    }
}

fn span(start: u32, end: u32, line: u32, col: u32) -> Span {
    Span {
        start,
        end,
        line,
        col,
    }
}

// ----- atmosphere ------------------------------------------------------------------------

#[test]
fn empty_and_whitespace() {
    check("", "");
    check("  \n\t\r\n ", "");
    check("\u{feff}1", "int:1");
    check("\u{a0}1\u{2003}2", "int:1 int:2");
    assert_eq!(parse_one("   ; nothing\n").unwrap(), None);
}

#[test]
fn line_comments() {
    check("; a comment", "");
    check("1 ; one\n2;two\n;three", "int:1 int:2");
    check("(a ; inside\n b)", "(sym:a sym:b)");
    check("\"; not a comment\"", "str:\"; not a comment\"");
}

#[test]
fn datum_comments() {
    check("#;1 2", "int:2");
    check("#;(a (b c)) d", "sym:d");
    check("(a #;b c)", "(sym:a sym:c)");
    check("(a #;b)", "(sym:a)");
    check("#; #;1 2 3", "int:3");
    check("#;\n  x", "");
    check("'#;a b", "(sym:quote sym:b)");
    check("{:a #;:b 1}", "{kw:a int:1}");
    check("#;#;#;1 2 3 4", "int:4");
}

// ----- lists and dicts -------------------------------------------------------------------

#[test]
fn lists() {
    check("()", "()");
    check("(1 2 3)", "(int:1 int:2 int:3)");
    check("(a (b (c)) d)", "(sym:a (sym:b (sym:c)) sym:d)");
    check("[1 2]", "(int:1 int:2)");
    check("([a] (b))", "((sym:a) (sym:b))");
    check("(a)(b)", "(sym:a) (sym:b)");
    check("(\n  a\n  b\n)", "(sym:a sym:b)");
}

#[test]
fn dicts() {
    check("{}", "{}");
    check("{:a 1 :b \"x\"}", "{kw:a int:1 kw:b str:\"x\"}");
    check("{\"k\" (1) 2 [3]}", "{str:\"k\" (int:1) int:2 (int:3)}");
    check("{:a {:b nil}}", "{kw:a {kw:b nil}}");
    // Source order is kept, duplicates too (the evaluator decides).
    check("{:z 1 :a 2 :z 3}", "{kw:z int:1 kw:a int:2 kw:z int:3}");
}

// ----- atoms -----------------------------------------------------------------------------

#[test]
fn literals() {
    check("true false nil", "true false nil");
    check("truex nil? Nil", "sym:truex sym:nil? sym:Nil");
}

#[test]
fn integers() {
    check("0 42 -7 +5 007", "int:0 int:42 int:-7 int:5 int:7");
    check("9223372036854775807", "int:9223372036854775807");
    check("-9223372036854775808", "int:-9223372036854775808");
    check("-0", "int:0");
}

#[test]
fn integers_too_big_read_as_floats() {
    check("9223372036854775808", "float:9.223372036854776e18");
    check("-9223372036854775809", "float:-9.223372036854776e18");
    check(
        "123456789012345678901234567890",
        "float:1.2345678901234568e29",
    );
}

#[test]
fn floats() {
    check(
        "1.5 -2.25 0.0 -0.0",
        "float:1.5 float:-2.25 float:0.0 float:-0.0",
    );
    check(
        "1e3 1E3 -2.5e-3 1.5e+2",
        "float:1000.0 float:1000.0 float:-0.0025 float:150.0",
    );
    check(
        ".5 -.5 1. 1.e2",
        "float:0.5 float:-0.5 float:1.0 float:100.0",
    );
    check("1e400 -1e400 1e-400", "float:+inf.0 float:-inf.0 float:0.0");
    check("+inf.0 -inf.0", "float:+inf.0 float:-inf.0");
    match parse_one("+nan.0").unwrap().unwrap().kind {
        DatumKind::Float(f) => assert!(f.is_nan()),
        k => panic!("{k:?}"),
    }
    // Exactness of the conversion.
    match parse_one("0.1").unwrap().unwrap().kind {
        DatumKind::Float(f) => assert_eq!(f, 0.1),
        k => panic!("{k:?}"),
    }
}

#[test]
fn rationals() {
    check("1/3 -2/4 +6/8", "rat:1/3 rat:-1/2 rat:3/4");
    check("4/2 -9/3 0/5 -0/7", "int:2 int:-3 int:0 int:0");
    check("10/100", "rat:1/10");
    check("9223372036854775807/2", "rat:9223372036854775807/2");
    check("-9223372036854775808/3", "rat:-9223372036854775808/3");
    // Reduced parts beyond i64 read as floats.
    check("9223372036854775808/3", "float:3.0744573456182584e18");
    check("1/9223372036854775808", "float:1.0842021724855044e-19");
    check(
        "100000000000000000000000000000000000000000/3",
        "float:3.3333333333333335e40",
    );
    check(
        "1/100000000000000000000000000000000000000000",
        "float:1e-41",
    );
    check("0/100000000000000000000000000000000000000000", "float:0.0");
    // Beyond f64 range on both sides: approximated from the leading digits.
    let huge = format!("-{}/{}", "7".repeat(400), "3".repeat(401));
    match parse_one(&huge).unwrap().unwrap().kind {
        DatumKind::Float(f) => assert!((f + 7.0 / 30.0).abs() < 1e-15, "{f}"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn number_like_symbols() {
    check(
        "+ - ... -> 1+ 1- . -. +.",
        "sym:+ sym:- sym:... sym:-> sym:1+ sym:1- sym:. sym:-. sym:+.",
    );
    check(
        "1/x a/b / 1/2/3 1/-2 -1/",
        "sym:1/x sym:a/b sym:/ sym:1/2/3 sym:1/-2 sym:-1/",
    );
    check(
        "1e 1e+ 1.2.3 0x10 1_000 inf nan",
        "sym:1e sym:1e+ sym:1.2.3 sym:0x10 sym:1_000 sym:inf sym:nan",
    );
    check("+inf.1 inf.0", "sym:+inf.1 sym:inf.0");
}

#[test]
fn symbols() {
    check(
        "foo bar-baz? set! *x* <=> a.b &rest ~x %1",
        "sym:foo sym:bar-baz? sym:set! sym:*x* sym:<=> sym:a.b sym:&rest sym:~x sym:%1",
    );
    check(
        "λ café 日本 x'y",
        "sym:λ sym:café sym:日本 sym:x (sym:quote sym:y)",
    );
}

#[test]
fn symbols_with_other_characters() {
    check(
        "a:b a#b @x |p| a\\b x_y $",
        "sym:a:b sym:a#b sym:@x sym:|p| sym:a\\b sym:x_y sym:$",
    );
    // Delimiters end a token.
    check("a\"s\"b", "sym:a str:\"s\" sym:b");
    check("a(b)c", "sym:a (sym:b) sym:c");
    check("a;c\nb", "sym:a sym:b");
}

#[test]
fn keywords() {
    check(
        ":a :foo-bar :1 ::x :a/b :ü",
        "kw:a kw:foo-bar kw:1 kw::x kw:a/b kw:ü",
    );
    check("(:k)", "(kw:k)");
}

#[test]
fn strings() {
    check("\"\"", "str:\"\"");
    check("\"hello world\"", "str:\"hello world\"");
    check(
        r#""a\"b\\c\nd\te\rf\0g""#,
        "str:\"a\\\"b\\\\c\\nd\\te\\rf\\0g\"",
    );
    check(r#""\u0041\u00e9\u03BB""#, "str:\"Aéλ\"");
    check(r#""\uD83D\uDE00""#, "str:\"😀\"");
    check("\"multi\nline\"", "str:\"multi\\nline\"");
    check("\"日本語 😀\"", "str:\"日本語 😀\"");
    check("\"(not a list)\"", "str:\"(not a list)\"");
}

#[test]
fn raw_strings() {
    check("#|raw \\n \"text\"|", "str:\"raw \\\\n \\\"text\\\"\"");
    check("#||", "str:\"\"");
    check("#|a\nb|", "str:\"a\\nb\"");
    check("(#|x|)", "(str:\"x\")");
}

#[test]
fn chars() {
    check(
        "#\\a #\\Z #\\1 #\\λ #\\😀",
        "char:'a' char:'Z' char:'1' char:'λ' char:'😀'",
    );
    check(
        "#\\( #\\) #\\[ #\\; #\\\" #\\' #\\#",
        "char:'(' char:')' char:'[' char:';' char:'\"' char:'\\'' char:'#'",
    );
    check("(#\\a)", "(char:'a')");
    check("#\\ ", "char:' '");
    check("#\\\\", "char:'\\\\'");
    check(
        "#\\x #\\x41 #\\x3bb #\\x1F600 #\\x0",
        "char:'x' char:'A' char:'λ' char:'😀' char:'\\0'",
    );
}

#[test]
fn named_chars() {
    check(
        "#\\space #\\newline #\\tab #\\return #\\nul #\\null",
        "char:' ' char:'\\n' char:'\\t' char:'\\r' char:'\\0' char:'\\0'",
    );
    check(
        "#\\escape #\\altmode #\\delete #\\rubout #\\backspace",
        "char:'\\u{1b}' char:'\\u{1b}' char:'\\u{7f}' char:'\\u{7f}' char:'\\u{8}'",
    );
}

#[test]
fn quote_sugar() {
    check("'x", "(sym:quote sym:x)");
    check("`x", "(sym:quasiquote sym:x)");
    check(",x", "(sym:unquote sym:x)");
    check(",@x", "(sym:splice-unquote sym:x)");
    check("#'x", "(sym:quote sym:x)");
    check("'(1 2)", "(sym:quote (int:1 int:2))");
    check("''x", "(sym:quote (sym:quote sym:x))");
    check(
        "`(a ,b ,@c)",
        "(sym:quasiquote (sym:a (sym:unquote sym:b) (sym:splice-unquote sym:c)))",
    );
    check("' x", "(sym:quote sym:x)");
    check("(a'b)", "(sym:a (sym:quote sym:b))");
    check(", @x", "(sym:unquote sym:@x)");
}

#[test]
fn reader_macros() {
    check("#foo 1", "#foo(int:1)");
    check("#inst\"2024\"", "#inst(str:\"2024\")");
    check("#js{:a 1}", "#js({kw:a int:1})");
    check("#a #b x", "#a(#b(sym:x))");
}

#[test]
fn spans() {
    let data = parse("(a \"b\")\n  :k").unwrap();
    assert_eq!(data[0].span, span(0, 7, 1, 1));
    let DatumKind::List(items) = &data[0].kind else {
        panic!()
    };
    assert_eq!(items[0].span, span(1, 2, 1, 2));
    assert_eq!(items[1].span, span(3, 6, 1, 4));
    assert_eq!(data[1].span, span(10, 12, 2, 3));
}

#[test]
fn spans_count_code_points() {
    let data = parse("\"λλ\" x\n日本 y").unwrap();
    assert_eq!(data[1].span, span(7, 8, 1, 6));
    assert_eq!(data[2].span, span(9, 15, 2, 1));
    assert_eq!(data[3].span, span(16, 17, 2, 4));
}

#[test]
fn quote_sugar_spans() {
    let d = parse_one("  ,@foo").unwrap().unwrap();
    assert_eq!(d.span, span(2, 7, 1, 3));
    let DatumKind::List(items) = &d.kind else {
        panic!()
    };
    assert_eq!(items[0].span, span(2, 4, 1, 3));
    assert_eq!(items[1].span, span(4, 7, 1, 5));
    let d = parse_one("#foo (x)").unwrap().unwrap();
    assert_eq!(d.span, span(0, 8, 1, 1));
}

#[test]
fn parse_one_reads_only_the_first_form() {
    let d = parse_one(" (a) (b").unwrap().unwrap();
    assert_eq!(show(std::slice::from_ref(&d)), "(sym:a)");
    assert_eq!(d.span.end, 4);
    assert_eq!(
        parse_one("1 )").unwrap().map(|d| d.kind),
        Some(DatumKind::Int(1))
    );
    assert_eq!(parse_one("#;1").unwrap(), None);
    assert_eq!(
        parse_one("#;").unwrap_err().message,
        "expected a datum after '#;' at 1:1, found end of input"
    );
    assert_eq!(
        parse_one("#;1 2").unwrap().map(|d| d.kind),
        Some(DatumKind::Int(2))
    );
}

#[test]
fn deep_nesting_within_the_limit() {
    let n = MAX_DEPTH;
    let src = format!("{}x{}", "(".repeat(n), ")".repeat(n));
    let d = parse_one(&src).unwrap().unwrap();
    let mut depth = 0;
    let mut cur = &d;
    while let DatumKind::List(items) = &cur.kind {
        depth += 1;
        cur = &items[0];
    }
    assert_eq!(depth, n);
    // Consumers that recurse (printer, span checks, Drop) cope with the maximum depth.
    let printed = sx_syntax::printer::print(&d);
    assert_eq!(printed, src);
    check_spans(&src, &d).unwrap();
    let mixed = format!(
        "{}x{}",
        "[{'(".repeat(n / 4),
        ")}]".repeat(n / 4).replace('}', " 1}")
    );
    let d = parse_one(&mixed).unwrap().unwrap();
    assert!(common::same(
        &d,
        &parse_one(&sx_syntax::printer::print(&d)).unwrap().unwrap()
    ));
    let quotes = format!("{}x", "'".repeat(n));
    assert!(parse(&quotes).is_ok());
}

#[test]
fn display_of_datum_uses_the_printer() {
    let d = parse_one("[1 2.5 \"s\" #\\a :k]").unwrap().unwrap();
    assert_eq!(d.to_string(), "(1 2.5 \"s\" #\\a :k)");
}

// ----- diagnostics -----------------------------------------------------------------------

#[test]
fn err_unexpected_close() {
    check_err(")", "1:1: unexpected ')'");
    check_err("(a))", "1:4: unexpected ')'");
    check_err("a\n  ]", "2:3: unexpected ']'");
    check_err("}", "1:1: unexpected '}'");
}

#[test]
fn err_mismatched_close() {
    check_err(
        "(a]",
        "1:3: mismatched ']': expected ')' to close '(' opened at 1:1",
    );
    check_err(
        "[a)",
        "1:3: mismatched ')': expected ']' to close '[' opened at 1:1",
    );
    check_err(
        "(a {b)",
        "1:6: mismatched ')': expected '}' to close '{' opened at 1:4",
    );
}

#[test]
fn err_unclosed() {
    check_err("(", "1:1: unclosed '(' opened at 1:1");
    check_err("(a (b)", "1:1: unclosed '(' opened at 1:1");
    check_err("x\n (a [b", "2:5: unclosed '[' opened at 2:5");
    check_err("{:a 1", "1:1: unclosed '{' opened at 1:1");
    let e = parse("  (a").unwrap_err();
    assert_eq!(e.span, span(2, 3, 1, 3));
}

#[test]
fn err_dict_missing_value() {
    check_err(
        "{:a}",
        "1:2: missing value for key in dict literal opened at 1:1",
    );
    check_err(
        "{:a 1 :b}",
        "1:7: missing value for key in dict literal opened at 1:1",
    );
    check_err(
        "(x\n {:a 1\n  \"k\"})",
        "3:3: missing value for key in dict literal opened at 2:2",
    );
}

#[test]
fn err_unterminated_string() {
    check_err("\"abc", "1:1: unterminated string starting at 1:1");
    check_err("(a\n  b \"x\ny", "2:5: unterminated string starting at 2:5");
    check_err("\"abc\\", "1:1: unterminated string starting at 1:1");
    check_err("\"abc\\u12", "1:1: unterminated string starting at 1:1");
    let e = parse("x \"abc").unwrap_err();
    assert_eq!(e.span, span(2, 6, 1, 3));
}

#[test]
fn err_unterminated_raw_string() {
    check_err("#|abc", "1:1: unterminated raw string starting at 1:1");
    check_err("(a #|x\n", "1:4: unterminated raw string starting at 1:4");
}

#[test]
fn err_string_escapes() {
    check_err(
        r#""a\qb""#,
        r#"1:3: unknown escape '\q' in string (known: \" \\ \n \t \r \0 \uXXXX)"#,
    );
    check_err(
        "\"a\\\nb\"",
        r#"1:3: unknown escape '\\n' in string (known: \" \\ \n \t \r \0 \uXXXX)"#,
    );
    check_err(
        r#""\u12G4""#,
        r#"1:2: invalid unicode escape: expected 4 hex digits after '\u'"#,
    );
    check_err(
        r#""\u{41}""#,
        r#"1:2: invalid unicode escape: expected 4 hex digits after '\u'"#,
    );
    check_err(
        r#""\uD800""#,
        r#"1:2: invalid unicode escape: unpaired surrogate \uD800"#,
    );
    check_err(
        r#""\uDC00\uD800""#,
        r#"1:2: invalid unicode escape: unpaired surrogate \uDC00"#,
    );
    check_err(
        r#""\uD800\u0041""#,
        r#"1:2: invalid unicode escape: unpaired surrogate \uD800"#,
    );
    check_err(
        r#""\uD800\uZZZZ""#,
        r#"1:8: invalid unicode escape: expected 4 hex digits after '\u'"#,
    );
}

#[test]
fn err_rational_division_by_zero() {
    check_err("1/0", "1:1: division by zero in rational literal");
    check_err("(+ -5/000)", "1:4: division by zero in rational literal");
    check_err("0/0", "1:1: division by zero in rational literal");
}

#[test]
fn err_chars() {
    check_err("#\\", "1:1: expected a character after '#\\'");
    check_err("#\\foo", "1:1: unknown character name '#\\foo'");
    check_err("#\\Space", "1:1: unknown character name '#\\Space'");
    check_err("#\\xZZ", "1:1: unknown character name '#\\xZZ'");
    check_err("#\\x1234567", "1:1: unknown character name '#\\x1234567'");
    check_err(
        "#\\xD800",
        "1:1: invalid character code '#\\xD800' (not a Unicode scalar value)",
    );
    check_err(
        "#\\x110000",
        "1:1: invalid character code '#\\x110000' (not a Unicode scalar value)",
    );
}

#[test]
fn err_missing_datum_after_prefix() {
    check_err(
        "'",
        "1:1: expected a datum after ''' at 1:1, found end of input",
    );
    check_err("(a ')", "1:5: expected a datum after ''' at 1:4, found ')'");
    check_err(
        "`",
        "1:1: expected a datum after '`' at 1:1, found end of input",
    );
    check_err("(,)", "1:3: expected a datum after ',' at 1:2, found ')'");
    check_err(
        ",@",
        "1:1: expected a datum after ',@' at 1:1, found end of input",
    );
    check_err(
        "#'",
        "1:1: expected a datum after '#'' at 1:1, found end of input",
    );
    check_err("(#;)", "1:4: expected a datum after '#;' at 1:2, found ')'");
    check_err(
        "x #;",
        "1:3: expected a datum after '#;' at 1:3, found end of input",
    );
    check_err(
        "#foo",
        "1:1: expected a datum after reader macro '#foo' at 1:1, found end of input",
    );
    check_err(
        "[#foo]",
        "1:6: expected a datum after reader macro '#foo' at 1:2, found ']'",
    );
    check_err(
        "(#t)",
        "1:4: expected a datum after reader macro '#t' at 1:2, found ')'",
    );
}

#[test]
fn err_bad_dispatch() {
    let msg = "expected a reader macro name, '\\', '|', ';' or ''' after '#'";
    check_err("#", &format!("1:1: {msg}"));
    check_err("# x", &format!("1:1: {msg}"));
    check_err("#(1 2)", &format!("1:1: {msg}"));
    check_err("(a #\"s\")", &format!("1:4: {msg}"));
}

#[test]
fn err_keyword_without_name() {
    check_err(":", "1:1: expected a keyword name after ':'");
    check_err("(: a)", "1:2: expected a keyword name after ':'");
}

#[test]
fn err_control_character() {
    check_err("ab\u{7}c", "1:3: unexpected control character U+0007");
    check_err("(\u{0})", "1:2: unexpected control character U+0000");
    check_err("#foo\u{1b}", "1:5: unexpected control character U+001B");
}

#[test]
fn err_nesting_too_deep() {
    let msg = format!("nesting too deep (more than {MAX_DEPTH} levels)");
    let src = "(".repeat(MAX_DEPTH + 1);
    check_err(&src, &format!("1:{}: {msg}", MAX_DEPTH + 1));
    // 100 000 open parens: a diagnostic, not a stack overflow.
    let src = "(".repeat(100_000);
    check_err(&src, &format!("1:{}: {msg}", MAX_DEPTH + 1));
    let src = format!("{}x", "'".repeat(100_000));
    check_err(&src, &format!("1:{}: {msg}", MAX_DEPTH + 1));
    let src = format!("{}x", "#;".repeat(100_000));
    check_err(&src, &format!("1:{}: {msg}", 2 * MAX_DEPTH + 1));
    let src = "[{(".repeat(40_000);
    check_err(&src, &format!("1:{}: {msg}", MAX_DEPTH + 1));
}

#[test]
fn many_closes_and_long_flat_lists() {
    check_err(&")".repeat(100_000), "1:1: unexpected ')'");
    let src = format!("({})", "1 ".repeat(100_000));
    let d = parse_one(&src).unwrap().unwrap();
    let DatumKind::List(items) = d.kind else {
        panic!()
    };
    assert_eq!(items.len(), 100_000);
}

#[test]
fn errors_report_the_first_problem() {
    check_err(
        "(a] \"unterminated",
        "1:3: mismatched ']': expected ')' to close '(' opened at 1:1",
    );
    check_err("1 2 ) (", "1:5: unexpected ')'");
}
