use super::*;
use crate::Expr;
use sx_cek::analyze::{datum_to_form, SpanMap};

fn lambda(m: &mut Machine, src: &str) -> Rc<Code> {
    let mut last = Value::NIL;
    for d in sx_syntax::parse(src).expect("read") {
        let mut spans = SpanMap::new();
        let form = datum_to_form(m, &d, &mut spans).expect("form");
        last = m.eval_toplevel(form, &Rc::from("t.sx"), &spans).expect("eval");
    }
    match m.rt.heap.get(last) {
        Some(Obj::Lambda(c)) => c.code.clone().as_any_rc().downcast::<Code>().expect("code"),
        _ => panic!("not a lambda"),
    }
}

fn count_interp(e: &Expr) -> usize {
    match e {
        Expr::Interp { .. } => 1,
        Expr::Store(_, x) | Expr::SetLocal { value: x, .. } | Expr::SetGlobal { value: x, .. } => count_interp(x),
        Expr::Seq(v) | Expr::And(v) | Expr::Or(v) => v.iter().map(count_interp).sum(),
        Expr::If { test, then, els } => count_interp(test) + count_interp(then) + count_interp(els),
        Expr::Case { key, arms, els, .. } => count_interp(key) + arms.iter().map(count_interp).sum::<usize>() + count_interp(els),
        _ => 0,
    }
}

#[test]
fn call_sites_record_the_pending_cek_frames() {
    let mut m = Machine::new();
    let code = lambda(&mut m, "(define (f n) (if (< n 2) n (+ (f (- n 1)) (f (- n 2))))) f");
    let ir = lower(&code, &m).expect("lowers");
    assert_eq!(count_interp(&ir.body), 0);
    // The recursive call in the second operand of `+` waits with `+` and
    // the first operand's value in its frame.
    // `(+ ...)` is in tail position of the `if`: no `if` frame is pending.
    let plus = ir.meta.sites.iter().filter(|s| s.frames.len() == 1 && s.frames[0].i == 2 && s.frames[0].nvals == 2).count();
    assert!(plus >= 1, "{:?}", ir.meta.sites);
    // The test of the `if` runs with the `if` pending.
    assert!(ir.meta.sites.iter().any(|s| s.frames.first().is_some_and(|f| f.i == 0 && f.nvals == 0) && s.frames.len() == 2));
    // fib is flat: captured env + `n` + `+` head and operands + `f` head
    // and operand + `-` head and operands.
    assert_eq!(ir.meta.flat, Some(crate::Flat { nparams: 1, frame_size: 1 }));
    assert_eq!(ir.meta.nslots, 1 + 1 + 3 + 2 + 3);
    assert_eq!(ir.meta.ics.len(), 2, "one inline cache per recursive call");
}

#[test]
fn tail_calls_are_marked_and_complex_forms_go_to_the_interpreter() {
    let mut m = Machine::new();
    let code = lambda(&mut m, "(define (g x) (+ 1 (guard (e (true 0)) (g x)))) g");
    let ir = lower(&code, &m).expect("lowers");
    assert_eq!(count_interp(&ir.body), 1);
    assert_eq!(ir.meta.interpreted_nodes, 1);
    // A body that is one interpreted form is not worth compiling.
    let code = lambda(&mut m, "(define (g2 x) (guard (e (true 0)) (g2 x))) g2");
    assert_eq!(lower(&code, &m).err(), Some(LowerError::AllInterpreted));
    let code = lambda(&mut m, "(define (h x) (h x)) h");
    let ir = lower(&code, &m).expect("lowers");
    let Expr::Seq(items) = &ir.body else { panic!("{:?}", ir.body) };
    let Some(Expr::Call(call)) = items.last() else { panic!("{:?}", ir.body) };
    let cs = ir.meta.calls[*call as usize];
    assert!(cs.tail && cs.argc == 1 && cs.ic.is_some(), "{cs:?}");
}

#[test]
fn a_head_that_is_not_callable_now_is_left_to_the_interpreter() {
    let mut m = Machine::new();
    let code = lambda(&mut m, "(define (k x) (+ 1 (later-macro x))) k");
    let ir = lower(&code, &m).expect("lowers");
    assert_eq!(count_interp(&ir.body), 1);
}

#[test]
fn top_level_code_is_not_a_lambda() {
    let mut m = Machine::new();
    let mut spans = SpanMap::new();
    let d = sx_syntax::parse("(+ 1 2)").expect("read").remove(0);
    let form = datum_to_form(&mut m, &d, &mut spans).expect("form");
    let code = m.analyze_toplevel(form, Rc::from("t.sx"), &spans).expect("analyse");
    assert_eq!(lower(&code, &m).err(), Some(LowerError::NotALambda));
}

#[test]
fn functions_that_need_their_environment_are_not_flat() {
    let mut m = Machine::new();
    for src in ["(define (a x) (fn () x)) a", "(define (b x) (let ((y 1)) (+ x y))) b", "(define (c &rest xs) xs) c", "(define (d x) (+ 1 (guard (e (true 0)) x))) d"] {
        let code = lambda(&mut m, src);
        let ir = lower(&code, &m).expect("lowers");
        assert_eq!(ir.meta.flat, None, "{src}");
    }
    let code = lambda(&mut m, "(define (e x) (set! x (+ x 1)) (define y x) (* y 2)) e");
    assert!(lower(&code, &m).expect("lowers").meta.flat.is_some());
}

#[test]
fn self_recursive_fixnum_functions_get_a_pure_version() {
    use crate::pure::{PureDep, PURE_DISABLED};
    let mut m = Machine::new();
    let code = lambda(&mut m, "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2))))) fib");
    let ir = lower(&code, &m).expect("lowers");
    let p = ir.meta.pure.as_ref().expect("fib is pure");
    let sym = |name: &str| m.rt.syms.lookup(name).expect("interned");
    assert!(p.deps.contains(&PureDep::SelfCall { sym: sym("fib") }), "{:?}", p.deps);
    for op in ["<", "+", "-"] {
        assert!(p.deps.iter().any(|d| matches!(d, PureDep::Prim { sym: s, .. } if *s == sym(op))), "{op}: {:?}", p.deps);
    }
    assert_eq!(p.deps.len(), 4, "each global once");
    // The runtime enables it once it watches the globals.
    assert_eq!(p.valid_at.get(), PURE_DISABLED);
    assert_eq!(ir.meta.calls.iter().filter(|c| c.self_call).count(), 2);
}

#[test]
fn anything_beyond_fixnums_and_self_calls_has_no_pure_version() {
    let mut m = Machine::new();
    for src in [
        // Not recursive: nothing to gain.
        "(define (sq x) (* x x)) sq",
        // Calls another function.
        "(define (other n) n) (define (calls n) (if (= n 0) 0 (other (calls (- n 1))))) calls",
        // A primitive that is not compiled inline.
        "(define (q n) (if (= n 0) 0 (q (quotient n 2)))) q",
        // Reads a global as a value.
        "(define limit 3) (define (lim n) (if (< n limit) n (lim (- n 1)))) lim",
        // Assigns a global.
        "(define hits 0) (define (h n) (set! hits n) (if (= n 0) 0 (h (- n 1)))) h",
        // Calls itself with the wrong number of arguments.
        "(define (w n) (if (= n 0) 0 (w n n))) w",
        // Not flat.
        "(define (cl n) (if (= n 0) (fn () n) (cl (- n 1)))) cl",
    ] {
        let code = lambda(&mut m, src);
        let ir = lower(&code, &m).expect("lowers");
        assert!(ir.meta.pure.is_none(), "{src}");
    }
    // A self call through a name bound to another function is not a self call.
    let code = lambda(&mut m, "(define (x1 n) (if (= n 0) 0 (x1 (- n 1)))) (define (x2 n) 0) (define keep x1) (set! x1 x2) keep");
    assert!(lower(&code, &m).expect("lowers").meta.pure.is_none());
}
