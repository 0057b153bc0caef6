//! Deoptimisation through "compiled" frames, with a fake tier standing in
//! for a backend: `f` = `(fn (x) (+ 1 (g x)))` runs as Rust code that calls
//! `g` through `Machine::jit_call` and, when asked to unwind, rebuilds the
//! CEK frame it stands for. Every program must give exactly what the
//! interpreter alone gives.

use std::rc::Rc;
use sx_cek::analyze::{datum_to_form, SpanMap};
use sx_cek::code::Code;
use sx_cek::machine::{JitOutcome, PendingFrame, Tier};
use sx_cek::Machine;
use sx_core::Value;

struct FakeCompiledF;

impl Tier for FakeCompiledF {
    fn enter(&self, m: &mut Machine, code: &Rc<Code>, env: Value) -> Option<JitOutcome> {
        if code.name.as_deref() != Some("f") {
            return None;
        }
        let x = m.rt.heap.env_get(env, 0)?;
        let g = m.lookup_global("g")?;
        match m.jit_call(g, &[x]) {
            JitOutcome::Value(v) => {
                let n = v.as_fixnum()?;
                Some(JitOutcome::Value(m.rt.int(n + 1)))
            }
            JitOutcome::Unwind => {
                // Pending: the call (+ 1 _) waiting for its second argument,
                // with the head and the first argument already evaluated.
                let plus = m.lookup_global("+")?;
                let one = m.rt.int(1);
                m.jit_push_frames(vec![PendingFrame { code: code.clone(), env, node: code.root, i: 2, vals: vec![plus, one] }]);
                Some(JitOutcome::Unwind)
            }
        }
    }
}

fn eval_all(m: &mut Machine, src: &str) -> String {
    let forms = sx_syntax::parse(src).expect("test source reads");
    let file: Rc<str> = Rc::from("test.sx");
    let mut last = Value::NIL;
    for d in &forms {
        let mut spans = SpanMap::new();
        let form = datum_to_form(m, d, &mut spans).expect("converts");
        match m.eval_toplevel(form, &file, &spans) {
            Ok(v) => last = v,
            Err(e) => return format!("error: {}", e.message),
        }
    }
    sx_core::print::inspect(&m.rt, last)
}

/// The result with and without the fake compiled `f`, which must agree.
fn both(src: &str) -> (String, String) {
    let prelude = "(define (f x) (+ 1 (g x)))";
    let mut plain = Machine::new();
    eval_all(&mut plain, prelude);
    let interpreted = eval_all(&mut plain, src);
    let mut jit = Machine::new();
    eval_all(&mut jit, prelude);
    jit.tier = Some(Rc::new(FakeCompiledF));
    let compiled = eval_all(&mut jit, src);
    (interpreted, compiled)
}

fn check(src: &str, expected: &str) {
    let (i, c) = both(src);
    assert_eq!(i, expected, "interpreter: {src}");
    assert_eq!(c, expected, "through compiled f: {src}");
}

#[test]
fn plain_calls_return_through_compiled_code() {
    check("(define (g y) (* y 2)) (f 5)", "11");
}

#[test]
fn shift_captures_through_a_compiled_frame_and_resumes_twice() {
    check("(define (g y) (shift k (k (k y)))) (reset (+ 10 (f 5)))", "27");
}

#[test]
fn a_stored_continuation_through_compiled_frames_is_multi_shot() {
    check(
        "(define saved nil) (define (g y) (shift k (begin (set! saved k) y))) (reset (* 2 (f 1))) (list (saved 10) (saved 20))",
        "(22 42)",
    );
}

#[test]
fn errors_in_callees_reach_guards_below_compiled_frames() {
    check("(define (g y) (error \"boom\" y)) (guard (e (true (str \"caught \" e))) (f 5))", "\"caught boom 5\"");
}

#[test]
fn uncaught_errors_keep_their_message() {
    check("(define (g y) (+ y \"a\")) (f 5)", "error: +: expected number, got string");
}

#[test]
fn call_cc_escapes_past_compiled_frames() {
    check("(define (g k) (k 42)) (call/cc (fn (k) (+ 100 (f k))))", "42");
}

#[test]
fn handler_bind_handlers_run_at_the_raise_point() {
    check("(define (g s) (raise-continuable s)) (handler-bind ((string? (fn (e) 100))) (f \"x\"))", "101");
}

#[test]
fn dynamic_scope_is_visible_through_compiled_frames() {
    check("(define (g _) (context \"p\")) (provide \"p\" 7 (f 0))", "8");
}

#[test]
fn dynamic_wind_after_runs_when_escaping_through_compiled_frames() {
    check(
        "(define log (list)) (define (g k) (k 1)) (list (call/cc (fn (k) (dynamic-wind (fn () (append! log :in)) (fn () (f k)) (fn () (append! log :out))))) log)",
        "(1 (\"in\" \"out\"))",
    );
}

#[test]
fn nested_compiled_activations_unwind_in_order() {
    // g calls f again: two compiled activations on the native stack.
    check("(define (g y) (if (= y 0) (shift k (k (k 100))) (f (- y 1)))) (reset (f 2))", "106");
}
