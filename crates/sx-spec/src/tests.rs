use std::collections::HashSet;

use crate::{
    parse_primitives, parse_special_forms, primitives, special_forms, PrimitiveSpec, SpecError,
    SpecialFormSpec,
};

fn prims() -> Vec<PrimitiveSpec> {
    primitives().unwrap_or_else(|e| panic!("spec/primitives.sx does not parse: {e}"))
}

fn forms() -> Vec<SpecialFormSpec> {
    special_forms().unwrap_or_else(|e| panic!("spec/special-forms.sx does not parse: {e}"))
}

fn prim(name: &str) -> PrimitiveSpec {
    prims()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} is not declared"))
}

fn prim_err(src: &str) -> SpecError {
    match parse_primitives(src, "test.sx") {
        Ok(v) => panic!("expected an error, got {} declarations", v.len()),
        Err(e) => e,
    }
}

fn form_err(src: &str) -> SpecError {
    match parse_special_forms(src, "test.sx") {
        Ok(v) => panic!("expected an error, got {} declarations", v.len()),
        Err(e) => e,
    }
}

// ───────────── the real files ─────────────

#[test]
fn primitives_file_parses() {
    assert!(prims().len() > 100);
}

#[test]
fn special_forms_file_parses() {
    assert!(forms().len() > 40);
}

#[test]
fn primitive_names_are_unique() {
    let mut seen = HashSet::new();
    for p in prims() {
        assert!(seen.insert(p.name.clone()), "{} declared twice", p.name);
    }
}

#[test]
fn special_form_names_are_unique() {
    let mut seen = HashSet::new();
    for f in forms() {
        assert!(seen.insert(f.name.clone()), "{} declared twice", f.name);
    }
}

#[test]
fn no_name_is_both_a_primitive_and_a_special_form() {
    let prim_names: HashSet<String> = prims().into_iter().map(|p| p.name).collect();
    for f in forms() {
        assert!(
            !prim_names.contains(&f.name),
            "{} is declared in both files",
            f.name
        );
    }
}

#[test]
fn every_declaration_has_an_example() {
    for p in prims() {
        assert!(
            !p.examples.is_empty(),
            "primitive {} has no example",
            p.name
        );
    }
    for f in forms() {
        assert!(
            !f.examples.is_empty(),
            "special form {} has no example",
            f.name
        );
    }
}

#[test]
fn every_declaration_has_a_doc() {
    for p in prims() {
        assert!(!p.doc.trim().is_empty(), "primitive {} has no doc", p.name);
    }
    for f in forms() {
        assert!(
            !f.doc.trim().is_empty(),
            "special form {} has no doc",
            f.name
        );
    }
}

#[test]
fn examples_read_as_sx() {
    for (name, ex) in prims()
        .iter()
        .flat_map(|p| p.examples.iter().map(move |e| (p.name.clone(), e.clone())))
        .chain(
            forms()
                .iter()
                .flat_map(|f| f.examples.iter().map(move |e| (f.name.clone(), e.clone()))),
        )
    {
        let src = sx_syntax::parse(&ex.source);
        assert!(
            matches!(&src, Ok(v) if !v.is_empty()),
            "{name}: example at {} does not read",
            ex.location
        );
        let exp = sx_syntax::parse(&ex.expected);
        assert!(
            matches!(&exp, Ok(v) if v.len() == 1),
            "{name}: expected at {} is not one datum",
            ex.location
        );
    }
}

/// Section 7's two lists, plus the functions the brief adds and the type predicates.
const REQUIRED_PRIMITIVES: &[&str] = &[
    // irreducible primitives
    "+",
    "-",
    "*",
    "/",
    "mod",
    "floor",
    "pow",
    "sqrt",
    "=",
    "<",
    ">",
    "type-of",
    "symbol-name",
    "keyword-name",
    "str",
    "slice",
    "index-of",
    "upper",
    "lower",
    "trim",
    "char-from-code",
    "list",
    "dict",
    "concat",
    "get",
    "len",
    "keys",
    "dict-set!",
    "append!",
    "random-int",
    "json-encode",
    "format-date",
    "parse-int",
    "format-decimal",
    "strip-tags",
    "sx-parse",
    "error",
    "apply",
    // standard library
    "not",
    "!=",
    "<=",
    ">=",
    "eq?",
    "eqv?",
    "equal?",
    "nil?",
    "boolean?",
    "number?",
    "string?",
    "list?",
    "dict?",
    "continuation?",
    "empty?",
    "odd?",
    "even?",
    "zero?",
    "contains?",
    "inc",
    "dec",
    "abs",
    "ceil",
    "round",
    "min",
    "max",
    "clamp",
    "first",
    "last",
    "rest",
    "nth",
    "cons",
    "append",
    "reverse",
    "flatten",
    "range",
    "chunk-every",
    "zip-pairs",
    "vals",
    "has-key?",
    "merge",
    "assoc",
    "dissoc",
    "into",
    "upcase",
    "downcase",
    "string-length",
    "substring",
    "string-contains?",
    "starts-with?",
    "ends-with?",
    "split",
    "join",
    "replace",
    "pluralize",
    "escape",
    "assert",
    "parse-datetime",
    // named by the brief
    "inspect",
    "print",
    "display",
    "newline",
    "gensym",
    "eval",
    "raise",
    "try-call",
    // further type predicates
    "symbol?",
    "keyword?",
    "integer?",
    "float?",
    "lambda?",
    "macro?",
    "primitive?",
    "callable?",
];

/// Section 6 minus define-type and defcomp (declared later).
const REQUIRED_SPECIAL_FORMS: &[&str] = &[
    "define",
    "set!",
    "fn",
    "lambda",
    "let",
    "let*",
    "letrec",
    "define-record-type",
    "if",
    "when",
    "unless",
    "cond",
    "case",
    "and",
    "or",
    "begin",
    "do",
    "->",
    "->>",
    "as->",
    "quote",
    "quasiquote",
    "unquote",
    "splice-unquote",
    "defmacro",
    "match",
    "let-match",
    "define-protocol",
    "implement",
    "satisfies?",
    "reset",
    "shift",
    "call/cc",
    "call-with-current-continuation",
    "dynamic-wind",
    "handler-bind",
    "guard",
    "scope",
    "provide",
    "context",
    "emit!",
    "emitted",
    "map",
    "map-indexed",
    "filter",
    "reduce",
    "some",
    "every?",
    "for-each",
];

#[test]
fn every_required_primitive_is_declared() {
    let names: HashSet<String> = prims().into_iter().map(|p| p.name).collect();
    let missing: Vec<&str> = REQUIRED_PRIMITIVES
        .iter()
        .copied()
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(missing.is_empty(), "undeclared primitives: {missing:?}");
}

#[test]
fn every_required_special_form_is_declared() {
    let names: HashSet<String> = forms().into_iter().map(|f| f.name).collect();
    let missing: Vec<&str> = REQUIRED_SPECIAL_FORMS
        .iter()
        .copied()
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(missing.is_empty(), "undeclared special forms: {missing:?}");
}

#[test]
fn harness_macros_and_jit_forms_are_not_special_forms() {
    let names: HashSet<String> = forms().into_iter().map(|f| f.name).collect();
    for later in [
        "defsuite",
        "deftest",
        "jit-stats",
        "with-jit-threshold",
    ] {
        assert!(!names.contains(later), "{later} is not a special form");
    }
}

fn has_example(p: &PrimitiveSpec, source: &str, expected: &str) -> bool {
    p.examples
        .iter()
        .any(|e| e.source == source && e.expected == expected)
}

#[test]
fn decided_edge_cases_are_examples() {
    let cases: &[(&str, &str, &str)] = &[
        ("first", "(first ())", "nil"),
        ("last", "(last ())", "nil"),
        ("nth", "(nth \"abc\" 1)", "\"b\""),
        ("nth", "(nth (list 1 2) 5)", "nil"),
        ("/", "(/ 7 2)", "3.5"),
        ("/", "(/ 6 2)", "3"),
        ("+", "(+)", "0"),
        ("*", "(*)", "1"),
        ("-", "(- 5)", "-5"),
        ("parse-int", "(parse-int \"42px\")", "42"),
        ("parse-int", "(parse-int \"abc\")", "nil"),
        ("index-of", "(index-of \"hello\" \"z\")", "-1"),
        ("get", "(get {:a 1} :b 0)", "0"),
        ("random-int", "(random-int 5 5)", "5"),
        (
            "format-date",
            "(format-date \"2024-01-15T10:30:00Z\" \"%Y-%m-%d\")",
            "\"2024-01-15\"",
        ),
    ];
    for (name, source, expected) in cases {
        assert!(
            has_example(&prim(name), source, expected),
            "{name}: missing example {source} => {expected}"
        );
    }
    let if_form = forms()
        .into_iter()
        .find(|f| f.name == "if")
        .unwrap_or_else(|| panic!("if is not declared"));
    assert!(if_form
        .examples
        .iter()
        .any(|e| e.source == "(if false 1)" && e.expected == "nil"));
    assert_eq!(if_form.tail, vec!["then".to_string(), "else".to_string()]);
}

#[test]
fn arities_follow_params() {
    let plus = prim("+");
    assert_eq!((plus.min_arity(), plus.max_arity()), (0, None));
    let minus = prim("-");
    assert_eq!((minus.min_arity(), minus.max_arity()), (1, None));
    assert!(!minus.accepts(0) && minus.accepts(1) && minus.accepts(5));
    let modp = prim("mod");
    assert_eq!((modp.min_arity(), modp.max_arity()), (2, Some(2)));
    let get = prim("get");
    assert_eq!(get.params, vec!["coll".to_string(), "key".to_string()]);
    assert_eq!(get.optional, vec!["default".to_string()]);
    assert_eq!((get.min_arity(), get.max_arity()), (2, Some(3)));
    assert!(get.accepts(2) && get.accepts(3) && !get.accepts(1) && !get.accepts(4));
    let newline = prim("newline");
    assert_eq!((newline.min_arity(), newline.max_arity()), (0, Some(0)));
    assert_eq!(prim("apply").rest.as_deref(), Some("more"));
}

#[test]
fn locations_point_into_the_file() {
    let p = prim("+");
    let line = crate::PRIMITIVES_SOURCE
        .lines()
        .nth(p.location.line as usize - 1)
        .unwrap_or_default();
    assert!(
        line.contains("(define-primitive \"+\""),
        "line {} is {line:?}",
        p.location.line
    );
    let ex = &p.examples[0];
    let ex_line = crate::PRIMITIVES_SOURCE
        .lines()
        .nth(ex.location.line as usize - 1)
        .unwrap_or_default();
    assert!(
        ex_line.contains(":example"),
        "line {} is {ex_line:?}",
        ex.location.line
    );
}

// ───────────── malformed declarations ─────────────

const GOOD: &str =
    r#"(define-primitive "f" :params (a) :returns "any" :doc "d" :example ("(f 1)" "1"))"#;

#[test]
fn a_good_declaration_parses() {
    let v = parse_primitives(GOOD, "test.sx").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].name, "f");
    assert_eq!(v[0].examples[0].source, "(f 1)");
    assert_eq!(v[0].examples[0].expected, "1");
    assert_eq!(v[0].location, crate::Location { line: 1, col: 1 });
}

#[test]
fn empty_file_is_empty() {
    assert_eq!(parse_primitives("; nothing\n", "test.sx"), Ok(vec![]));
    assert_eq!(parse_special_forms("", "test.sx"), Ok(vec![]));
}

#[test]
fn error_display_has_file_line_col() {
    let e = prim_err("\n\n  (define-primitive \"f\" :params (a) :returns \"any\" :doc \"d\")");
    assert_eq!((e.line, e.col), (3, 3));
    assert!(e.to_string().starts_with("test.sx:3:3: "), "{e}");
    assert!(e.message.contains("missing at least one :example"), "{e}");
}

#[test]
fn reader_errors_are_reported_with_position() {
    let e = prim_err("(define-primitive \"f\"\n  :params (a");
    assert!(e.line >= 1 && e.col >= 1);
    assert_eq!(e.file, "test.sx");
}

#[test]
fn wrong_head_is_rejected() {
    let e = prim_err(
        r#"(define-special-form "f" :params () :returns "any" :doc "d" :example ("1" "1"))"#,
    );
    assert!(e.message.contains("define-primitive"), "{e}");
    let e = prim_err("42");
    assert!(e.message.contains("found a number"), "{e}");
    let e = prim_err("()");
    assert!(e.message.contains("empty form"), "{e}");
}

#[test]
fn name_must_be_a_nonempty_string() {
    let e =
        prim_err(r#"(define-primitive f :params () :returns "any" :doc "d" :example ("1" "1"))"#);
    assert!(e.message.contains("name as a string"), "{e}");
    assert_eq!((e.line, e.col), (1, 19));
    let e =
        prim_err(r#"(define-primitive "" :params () :returns "any" :doc "d" :example ("1" "1"))"#);
    assert!(e.message.contains("must not be empty"), "{e}");
}

#[test]
fn unknown_missing_and_repeated_keys_are_rejected() {
    let e = prim_err(
        r#"(define-primitive "f" :params () :returns "any" :doc "d" :colour "red" :example ("1" "1"))"#,
    );
    assert!(e.message.contains("unknown key :colour"), "{e}");
    let e = prim_err(r#"(define-primitive "f" :params () :doc "d" :example ("1" "1"))"#);
    assert!(e.message.contains("missing a :returns"), "{e}");
    let e = prim_err(
        r#"(define-primitive "f" :params () :returns "any" :doc "d" :doc "e" :example ("1" "1"))"#,
    );
    assert!(e.message.contains(":doc given more than once"), "{e}");
    let e = prim_err(r#"(define-primitive "f" :params () :returns "any" :doc "d" :example)"#);
    assert!(e.message.contains(":example without a value"), "{e}");
    let e =
        prim_err(r#"(define-primitive "f" params () :returns "any" :doc "d" :example ("1" "1"))"#);
    assert!(e.message.contains("expected a :key"), "{e}");
}

#[test]
fn bad_params_are_rejected() {
    let with = |params: &str| {
        prim_err(&format!(
            r#"(define-primitive "f" :params {params} :returns "any" :doc "d" :example ("1" "1"))"#
        ))
    };
    assert!(with("(a &rest)").message.contains("&rest must be followed"));
    assert!(with("(&rest a b)").message.contains("nothing may follow"));
    assert!(with("(a a)").message.contains("declared twice"));
    assert!(with("(a &key b)")
        .message
        .contains("unknown parameter marker"));
    assert!(with("(a \"b\")").message.contains("only symbols"));
    assert!(with("a").message.contains("list of symbols"));
    assert!(with("(&optional &rest r)")
        .message
        .contains("&optional must be followed"));
    let ok = parse_primitives(
        r#"(define-primitive "f" :params (a &optional b c &rest d) :returns "any" :doc "d" :example ("1" "1"))"#,
        "test.sx",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok[0].params, vec!["a"]);
    assert_eq!(ok[0].optional, vec!["b", "c"]);
    assert_eq!(ok[0].rest.as_deref(), Some("d"));
    assert_eq!((ok[0].min_arity(), ok[0].max_arity()), (1, None));
}

#[test]
fn bad_returns_are_rejected() {
    let e = prim_err(
        r#"(define-primitive "f" :params () :returns "strnig" :doc "d" :example ("1" "1"))"#,
    );
    assert!(e.message.contains("unknown return type \"strnig\""), "{e}");
    let ok = parse_primitives(
        r#"(define-primitive "f" :params () :returns "dict|nil" :doc "d" :example ("1" "1"))"#,
        "test.sx",
    );
    assert!(ok.is_ok());
}

#[test]
fn bad_examples_are_rejected() {
    let with = |ex: &str| {
        prim_err(&format!(
            r#"(define-primitive "f" :params () :returns "any" :doc "d" :example {ex})"#
        ))
    };
    assert!(with(r#"("1")"#).message.contains("two strings"));
    assert!(with(r#"("1" 1)"#).message.contains("must be a string"));
    assert!(with(r#"("" "1")"#).message.contains("must not be empty"));
    assert!(with(r#"("(f" "1")"#)
        .message
        .contains("source does not read"));
    assert!(with(r#"("; only a comment" "1")"#)
        .message
        .contains("holds no form"));
    assert!(with(r#"("(f)" "1 2")"#)
        .message
        .contains("exactly one datum"));
    assert!(with(r#"("(f)" "(1")"#)
        .message
        .contains("expected value does not read"));
    // reported at the offending string
    let e = with("\n  (\"(f\" \"1\")");
    assert_eq!((e.line, e.col), (2, 4));
    let e = with("\n  (\"(f)\" 1)");
    assert_eq!((e.line, e.col), (2, 10));
    // a pair of the wrong shape is reported at the pair
    let e = with("\n  (\"(f)\")");
    assert_eq!((e.line, e.col), (2, 3));
}

#[test]
fn duplicate_names_are_rejected() {
    let e = prim_err(&format!("{GOOD}\n{GOOD}"));
    assert!(e.message.contains("declared twice (first at 1:1)"), "{e}");
    assert_eq!((e.line, e.col), (2, 1));
}

#[test]
fn special_form_checks() {
    let ok = parse_special_forms(
        r#"(define-special-form "if" :syntax "(if test then [else])" :tail (then else) :doc "d" :example ("(if false 1)" "nil"))"#,
        "test.sx",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok[0].tail, vec!["then", "else"]);
    assert_eq!(ok[0].syntax, "(if test then [else])");
    let no_tail = parse_special_forms(
        r#"(define-special-form "quote" :syntax "(quote x)" :doc "d" :example ("'a" "a"))"#,
        "test.sx",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(no_tail[0].tail.is_empty());
    let e = form_err(
        r#"(define-special-form "if" :syntax "(if test then)" :tail (else) :doc "d" :example ("1" "1"))"#,
    );
    assert!(e.message.contains("tail part else does not occur"), "{e}");
    let e = form_err(
        r#"(define-special-form "if" :syntax "(if a)" :tail (a a) :doc "d" :example ("1" "1"))"#,
    );
    assert!(e.message.contains("listed twice"), "{e}");
    let e = form_err(
        r#"(define-special-form "if" :syntax "(if a)" :doc "d" :params () :example ("1" "1"))"#,
    );
    assert!(e.message.contains("unknown key :params"), "{e}");
    let e = form_err(r#"(define-special-form "if" :doc "d" :example ("1" "1"))"#);
    assert!(e.message.contains("missing a :syntax"), "{e}");
    let e = form_err(r#"(define-special-form "if" :syntax "(if a)" :doc "d")"#);
    assert!(e.message.contains("missing at least one :example"), "{e}");
}

#[test]
fn tail_parts_occur_in_syntax() {
    for f in forms() {
        for t in &f.tail {
            assert!(
                f.syntax.contains(t.as_str()),
                "{}: {t} not in {}",
                f.name,
                f.syntax
            );
        }
    }
}
