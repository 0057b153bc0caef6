//! Snapshot tests of rendered diagnostics: one snapshot per diagnostic the reader produces
//! (`tests/snapshots/diagnostics__<name>.snap`). Each snapshot shows the input, then the
//! diagnostic as `Diagnostic::render` prints it.

use sx_syntax::parse;

/// Reads `src`, which must fail, and renders the input plus the diagnostic.
fn render(src: &str) -> String {
    match parse(src) {
        Ok(data) => panic!("reading {src:?} should fail, got {} forms", data.len()),
        Err(e) => format!("input:\n{}\n---\n{}", shown(src), e.render("input.sx", src)),
    }
}

/// The input for the snapshot header: control characters other than newline and tab escaped,
/// long inputs cut.
fn shown(src: &str) -> String {
    let mut out = String::new();
    for (i, c) in src.chars().enumerate() {
        if i == 200 {
            out.push_str("...");
            break;
        }
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

macro_rules! snapshots {
    ($($name:ident: $src:expr;)*) => {
        $(
            #[test]
            fn $name() {
                insta::assert_snapshot!(stringify!($name), render($src));
            }
        )*
    };
}

snapshots! {
    unexpected_close_paren: "(+ 1 2))";
    unexpected_close_bracket_on_later_line: "(a)\n  ]";
    mismatched_close: "(let [x 1)\n  x)";
    unclosed_paren: "(define (f x)\n  (+ x 1)";
    unclosed_bracket: "[1 2";
    unclosed_brace: "{:a 1";
    dict_missing_value: "{:a 1\n :b}";
    unterminated_string: "(print\n  \"hello";
    unterminated_string_after_backslash: "\"abc\\";
    unterminated_raw_string: "#|raw\ntext";
    unknown_escape: "\"tab\\qhere\"";
    bad_unicode_escape: "\"\\u12x4\"";
    unpaired_surrogate: "\"\\uD83D!\"";
    rational_division_by_zero: "(* 2 3/0)";
    char_at_end_of_input: "(list #\\";
    unknown_char_name: "#\\spcae";
    invalid_char_code: "#\\xD800";
    quote_without_datum: "(a ')";
    quasiquote_at_end: "`";
    unquote_splicing_without_datum: "`(a ,@)";
    sharp_quote_without_datum: "(map #')";
    datum_comment_without_datum: "(a #;)";
    reader_macro_without_datum: "#inst";
    bad_dispatch: "#(1 2 3)";
    keyword_without_name: "(: x)";
    control_character: "(a b\u{7})";
    nesting_too_deep: &"(".repeat(1001);
    nesting_too_deep_with_newlines: &format!("(define x\n  {}", "[".repeat(1001));
    long_line_window: &format!("(list {} \"unterminated", "item ".repeat(60));
    tab_and_unicode_before_error: "\t\"λ\" (日本 ]";
}
