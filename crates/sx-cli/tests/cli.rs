//! The `sx` command end to end: output, exit status, error locations, REPL.

use std::io::Write;
use std::process::{Command, Stdio};

fn sx(args: &[&str], stdin: &str) -> (String, String, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sx"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sx starts");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("sx finishes");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// A file `name` holding `content` in a fresh directory under the temp dir
/// (removed when the returned guard is dropped).
fn temp_file(name: &str, content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix("sx-cli-test-").tempdir().expect("temp dir");
    let p = dir.path().join(name);
    std::fs::write(&p, content).expect("write temp file");
    (dir, p)
}

#[test]
fn eval_prints_the_readable_value_of_the_last_form_only() {
    assert_eq!(sx(&["-e", "(/ 7 2)"], ""), ("3.5\n".into(), String::new(), 0));
    assert_eq!(sx(&["-e", "(define x 20) (+ x 22)"], "").0, "42\n");
    assert_eq!(sx(&["-e", r#"{:x 1 :y "a"}"#], "").0, "{:x 1 :y \"a\"}\n");
    assert_eq!(sx(&["-e", r#"(str "a" nil 1.0)"#], "").0, "\"a1.0\"\n");
}

#[test]
fn print_output_comes_before_the_value() {
    let (out, _, code) = sx(&["-e", r#"(print "hi") 5"#], "");
    assert_eq!((out.as_str(), code), ("hi\n5\n", 0));
}

#[test]
fn uncaught_error_reports_file_line_col_and_exits_1() {
    let (_dir, f) = temp_file("err.sx", "(define (f x)\n  (+ x \"a\"))\n\n(f 1)\n");
    let (out, err, code) = sx(&[f.to_str().expect("utf8 path")], "");
    assert_eq!(out, "");
    assert_eq!(code, 1);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.ends_with("err.sx:2:3: +: expected number, got string"), "{err}");
    // The offending line with a caret, then the SX backtrace.
    assert!(err.contains("2 |   (+ x \"a\"))\n  |   ^^^^^^^^^"), "{err}");
    assert!(err.contains("backtrace (most recent call first):\n  f at "), "{err}");
    assert!(err.contains("<top level> at "), "{err}");
}

#[test]
fn eval_errors_have_locations_too() {
    let (_, err, code) = sx(&["-e", "(list 1\n (undefined-thing))"], "");
    assert_eq!(code, 1);
    assert!(err.starts_with("<eval>:2:2: Undefined symbol: undefined-thing\n"), "{err}");
    assert!(err.contains(" (undefined-thing))"), "{err}");
}

#[test]
fn reader_errors_report_the_location() {
    let (_, err, code) = sx(&["-e", "(list 1 \"abc"], "");
    assert_eq!(code, 1);
    assert!(err.starts_with("<eval>:1:9: unterminated string starting at 1:9\n"), "{err}");
    assert!(err.contains("1 | (list 1 \"abc\n  |         ^^^^"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error_not_a_panic() {
    let (_, err, code) = sx(&["/nonexistent/dir/x.sx"], "");
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/dir/x.sx") && !err.contains("panicked"), "{err}");
}

#[test]
fn unknown_backend_is_refused_with_exit_2() {
    let (_, err, code) = sx(&["--backend", "warp", "-e", "1"], "");
    assert_eq!(code, 2);
    assert!(err.contains("unknown backend 'warp'"), "{err}");
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    let (_, err, code) = sx(&["--max-depth", "10000", "-e", "(define (f n) (+ 1 (f n))) (f 1)"], "");
    assert_eq!(code, 1);
    assert!(err.contains("Maximum recursion depth exceeded"), "{err}");
}

#[test]
fn repl_keeps_going_after_errors_and_reads_multi_line_input() {
    let (out, err, code) = sx(&["repl"], "(+ 1\n   2)\nundefined-name\n(* 2 3)\n");
    assert_eq!(code, 0);
    assert_eq!(out, "3\n6\n");
    assert!(err.contains("Undefined symbol: undefined-name"), "{err}");
}

#[test]
fn test_subcommand_speaks_the_jsonl_protocol() {
    let (_dir, f) = temp_file(
        "suite.sx",
        "(defsuite \"s\" (deftest \"ok\" (assert-equal 2 (+ 1 1))) (deftest \"bad\" (assert-equal 1 2)))\n",
    );
    let (out, _, code) = sx(&["test", "--jsonl", f.to_str().expect("utf8 path")], "");
    assert_eq!(code, 0);
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(events.len(), 4, "{out}");
    assert_eq!(events[0]["event"], "test");
    assert_eq!(events[0]["ok"], true);
    assert_eq!(events[0]["suite"], "s");
    assert_eq!(events[1]["name"], "bad");
    assert_eq!(events[1]["ok"], false);
    assert_eq!(events[1]["message"], "Expected 1, got 2");
    assert_eq!(events[2]["event"], "file-done");
    assert_eq!(events[3]["event"], "done");
}
