//! Property tests: the reader never panics and always answers with data or a well-placed
//! diagnostic; printing and re-reading gives the same data.
//!
//! Case counts (120 000 reader inputs in total, plus 10 000 generated data for the round trip):
//! * `random_text_never_panics`: 60 000 random strings biased toward SX syntax;
//! * `mutated_programs_never_panic`: 60 000 valid programs with byte-level and snippet-level
//!   mutations;
//! * `printed_data_rereads_the_same`: 10 000 generated data.

mod common;

use common::{check_span, check_spans, same, same_all, show};
use proptest::prelude::*;
use sx_syntax::printer::print;
use sx_syntax::{parse, parse_one, Datum, DatumKind, Span};

/// Valid SX programs covering every syntax element; mutated by the fuzzing property.
const PROGRAMS: &[&str] = &[
    "(define (fact n)\n  (if (<= n 1) 1 (* n (fact (- n 1)))))\n(fact 20)",
    "; comment\n(let [x 1 y 2.5e-3] {:sum (+ x y) :ratio 1/3 \"k\" nil}) #;(ignored) true",
    "`(a ,b ,@(list 1 2) 'c #'d) [#\\a #\\space #\\x41 #\\( #\\newline]",
    "(str \"esc \\\" \\\\ \\n \\t \\r \\0 \\u00e9 \\uD83D\\uDE00\" #|raw \\ text| :kw)",
    "(map (fn (x) (* x x)) '(1 -2 3.0 -4/6 9223372036854775807 99999999999999999999))",
    "#inst \"2024-01-01\" #js{:a [1 2]} (λ café 日本 -> ... 1+ a/b set! <=>)",
    "(defmacro when (c & body) `(if ,c (do ,@body) nil))\n\n(when true (print \"yes\"))",
    "{:nested {:deeper {:deepest [1 [2 [3 [4]]]]}} :empty {} :list ()}",
    "(cond ((= x 0) 'zero) ((< x 0) 'neg) (else 'pos)) ; trailing\n#;#; a b c",
    "(+inf.0 -inf.0 +nan.0 .5 -.5 1. 1e3 1E-3 +7 -0 0/5 #\\rubout #\\nul)",
];

/// Snippets of SX syntax, valid and invalid, for the random-text generator.
const SNIPPETS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "`",
    ",",
    ",@",
    "#'",
    "#;",
    "#|",
    "|",
    "#\\",
    "#",
    ";",
    "\n",
    " ",
    "\t",
    ":",
    ":k",
    "1",
    "-",
    "+",
    ".",
    "/",
    "1/0",
    "1/2",
    "-3/6",
    "1e",
    "1e3",
    "2.5",
    ".5",
    "9223372036854775808",
    "nil",
    "true",
    "false",
    "foo",
    "λ",
    "\\",
    "\\u",
    "\\uD800",
    "\\u0041",
    "\\n",
    "\\q",
    "#\\space",
    "#\\x41",
    "#\\xD800",
    "#foo",
    "#inst",
    "+inf.0",
    "+nan.0",
    "\u{0}",
    "\u{7}",
    "\u{feff}",
    "\r\n",
    "日本",
    "😀",
];

fn sx_char() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(SNIPPETS).prop_map(str::to_string),
        3 => prop::sample::select(
            "()[]{}\"';`,#\\|:@ \n\t0123456789-+./eEabxyz".chars().collect::<Vec<_>>()
        )
        .prop_map(|c| c.to_string()),
        1 => any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn sx_text() -> impl Strategy<Value = String> {
    prop::collection::vec(sx_char(), 0..40).prop_map(|parts| parts.concat())
}

/// One edit of a program's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    Swap(usize, usize),
    InsertSnippet(usize, &'static str),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        3 => prop::sample::select(b"()[]{}\"';`,#\\|: \n0123456789-./e".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        3 => any::<usize>().prop_map(Mutation::Delete),
        3 => (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Replace(i, b)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        2 => (any::<usize>(), prop::sample::select(SNIPPETS)).prop_map(|(i, s)| Mutation::InsertSnippet(i, s)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(program: &str, mutations: &[Mutation]) -> String {
    let mut bytes = program.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Delete(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Mutation::Replace(i, b) if len > 0 => bytes[i % len] = b,
            Mutation::Swap(i, j) if len > 0 => bytes.swap(i % len, j % len),
            Mutation::InsertSnippet(i, s) => {
                let at = i % (len + 1);
                bytes.splice(at..at, s.bytes());
            }
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The reader's contract on one input: no panic (a panic fails the property), data with
/// consistent spans that print and re-read the same, or a diagnostic placed within the input.
/// `parse_one` agrees with `parse`.
fn check_input(src: &str) -> Result<(), TestCaseError> {
    let all = parse(src);
    let first = parse_one(src);
    match &all {
        Ok(data) => {
            for d in data {
                check_spans(src, d).map_err(TestCaseError::fail)?;
            }
            let printed = data.iter().map(print).collect::<Vec<_>>().join("\n");
            match parse(&printed) {
                Ok(again) => prop_assert!(
                    same_all(data, &again),
                    "round trip changed {} into {} via {printed:?}",
                    show(data),
                    show(&again)
                ),
                Err(e) => prop_assert!(false, "printed form {printed:?} does not re-read: {e}"),
            }
            match &first {
                Ok(Some(d)) => {
                    prop_assert!(data.first().is_some_and(|f| same(f, d) && f.span == d.span))
                }
                Ok(None) => prop_assert!(data.is_empty()),
                Err(e) => prop_assert!(false, "parse succeeded but parse_one failed: {e}"),
            }
        }
        Err(e) => {
            check_span(src, e.span).map_err(|m| TestCaseError::fail(format!("{m} in {e}")))?;
            prop_assert!(!e.message.is_empty());
            match &first {
                Ok(Some(d)) => prop_assert!(
                    e.span.start >= d.span.end,
                    "error {e} inside the first datum"
                ),
                Ok(None) => prop_assert!(false, "parse failed ({e}) but parse_one found nothing"),
                Err(e1) => prop_assert_eq!(e1, e),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60_000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(src in sx_text()) {
        check_input(&src)?;
    }

    #[test]
    fn mutated_programs_never_panic(
        program in prop::sample::select(PROGRAMS),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        check_input(&mutate(program, &mutations))?;
    }
}

// ----- round trip of generated data -------------------------------------------------------

fn datum(kind: DatumKind) -> Datum {
    Datum {
        kind,
        span: Span::default(),
    }
}

/// Text that the reader takes as exactly one token of the given kind.
fn token(pattern: &'static str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(pattern).unwrap_or_else(|e| panic!("bad test regex: {e}"))
}

fn symbol() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "+", "-", "...", "->", "1+", "1-", "a/b", "1/x", ".", "λ", "set!", "a#b"
        ])
        .prop_map(str::to_string),
        token("[a-zA-Z!?*<>=+&~%λ_.-][a-zA-Z0-9!?*/<>=+.&~%λ_:#@-]{0,8}"),
    ]
    .prop_filter(
        "must read back as a symbol",
        |s| matches!(parse(s).as_deref(), Ok([Datum { kind: DatumKind::Symbol(t), .. }]) if t == s),
    )
}

fn name() -> impl Strategy<Value = String> {
    token("[a-zA-Z0-9!?*/<>=+.&~%λ_:#@-]{1,8}")
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

fn rational() -> impl Strategy<Value = DatumKind> {
    (any::<i64>(), 2..=i64::MAX).prop_map(|(n, d)| {
        let g = gcd(i128::from(n), i128::from(d));
        let (n, d) = (i128::from(n) / g, i128::from(d) / g);
        let (n, d) = (i64::try_from(n).unwrap_or(0), i64::try_from(d).unwrap_or(1));
        if d == 1 {
            DatumKind::Int(n)
        } else {
            DatumKind::Rational(n, d)
        }
    })
}

fn leaf() -> impl Strategy<Value = Datum> {
    prop_oneof![
        Just(DatumKind::Nil),
        any::<bool>().prop_map(DatumKind::Bool),
        any::<i64>().prop_map(DatumKind::Int),
        prop::num::f64::ANY.prop_map(DatumKind::Float),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1e300,
            5e-324,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN
        ])
        .prop_map(DatumKind::Float),
        rational(),
        any::<String>().prop_map(DatumKind::Str),
        any::<char>().prop_map(DatumKind::Char),
        symbol().prop_map(DatumKind::Symbol),
        name().prop_map(DatumKind::Keyword),
    ]
    .prop_map(datum)
}

fn any_datum() -> impl Strategy<Value = Datum> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| datum(DatumKind::List(v))),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4)
                .prop_map(|v| datum(DatumKind::Dict(v))),
            (name(), inner).prop_map(|(n, d)| datum(DatumKind::ReaderMacro(n, Box::new(d)))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn printed_data_rereads_the_same(d in any_datum()) {
        let text = print(&d);
        match parse(&text) {
            Ok(again) => prop_assert!(
                again.len() == 1 && same(&d, &again[0]),
                "{} printed as {text:?} re-reads as {}", show(std::slice::from_ref(&d)), show(&again)
            ),
            Err(e) => prop_assert!(false, "{text:?} does not re-read: {e}"),
        }
    }
}
