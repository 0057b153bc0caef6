//! The compiled tier through the embedding API: a code generator of the
//! embedder's own, one that fails, and the Cranelift backend (feature
//! `cranelift`).

use std::sync::atomic::Ordering;
use std::time::Duration;
use sx::{Engine, EngineOptions};
use sx_jit::{Backend, CompileError, CompiledCode};

/// Declines every function.
struct Declines;
impl Backend for Declines {
    fn name(&self) -> &'static str {
        "declines"
    }
    fn compile(&mut self, _f: &sx_ir::IrFunction) -> Result<Box<dyn CompiledCode>, CompileError> {
        Err(CompileError::Unsupported("this backend compiles nothing".into()))
    }
}

/// Fails as a backend does when code memory cannot be allocated.
struct NoCodeMemory;
impl Backend for NoCodeMemory {
    fn name(&self) -> &'static str {
        "no-code-memory"
    }
    fn compile(&mut self, _f: &sx_ir::IrFunction) -> Result<Box<dyn CompiledCode>, CompileError> {
        Err(CompileError::Failed("mmap: cannot allocate memory".into()))
    }
}

fn stat(e: &mut Engine, key: &str) -> String {
    e.eval_to_string(&format!("(get (jit-stats) :{key})")).expect("jit-stats")
}

const FIB: &str = "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))";

#[test]
fn a_declining_backend_leaves_code_interpreted_and_is_not_asked_again() {
    let opts = EngineOptions { jit_threshold: Some(1), ..EngineOptions::default() };
    let mut e = Engine::with_code_generator(opts, Box::new(Declines));
    e.eval_str(FIB, "t.sx").expect("define");
    assert_eq!(e.eval_to_string("(fib 15)").expect("runs"), "610");
    assert_eq!(e.eval_to_string("(fib 15)").expect("runs again"), "610");
    assert_eq!(stat(&mut e, "backend"), "\"declines\"");
    assert_eq!(stat(&mut e, "compiled"), "0");
    // One decline per lambda code, not one per call.
    assert_eq!(stat(&mut e, "compile-failed"), "1");
}

#[test]
fn when_code_memory_cannot_be_allocated_the_interpreter_runs_the_program() {
    let opts = EngineOptions { jit_threshold: Some(1), ..EngineOptions::default() };
    let mut e = Engine::with_code_generator(opts, Box::new(NoCodeMemory));
    e.eval_str(FIB, "t.sx").expect("define");
    assert_eq!(e.eval_to_string("(fib 20)").expect("runs"), "6765");
    assert_eq!(stat(&mut e, "compiled"), "0");
    assert!(e.jit_report().contains("no-code-memory"));
}

#[cfg(feature = "cranelift")]
mod cranelift {
    use super::*;

    fn engine(threshold: u32) -> Engine {
        let opts = EngineOptions { backend: sx::Backend::Cranelift, jit_threshold: Some(threshold), ..EngineOptions::default() };
        Engine::with_options(opts).expect("cranelift is compiled in")
    }

    #[test]
    fn hot_code_is_compiled_and_computes_what_the_interpreter_does() {
        let mut e = engine(1);
        e.eval_str(FIB, "t.sx").expect("define");
        assert_eq!(e.eval_to_string("(fib 22)").expect("runs"), "17711");
        assert_eq!(e.eval_to_string("(jit-compiled? fib)").expect("asks"), "true");
        let (calls, compiled) = e.jit_call_coverage().expect("a tier is installed");
        assert!(calls > 10_000 && compiled * 100 >= calls * 99, "{compiled} of {calls}");
    }

    #[test]
    fn a_million_deep_recursion_runs_compiled() {
        let mut e = engine(1);
        e.eval_str("(define (depth n) (if (= n 0) 0 (+ 1 (depth (- n 1)))))", "t.sx").expect("define");
        assert_eq!(e.eval_to_string("(depth 1000000)").expect("deep"), "1000000");
    }

    #[test]
    fn runaway_recursion_is_a_catchable_error() {
        let mut e = engine(1);
        e.eval_str("(define (runaway n) (+ 1 (runaway (+ n 1))))", "t.sx").expect("define");
        let r = e.eval_to_string("(get (try-call (fn () (runaway 0))) :error)").expect("caught");
        assert_eq!(r, "\"Maximum recursion depth exceeded\"");
        assert_eq!(e.eval_to_string("(+ 1 2)").expect("still usable"), "3");
    }

    #[test]
    fn a_compiled_endless_loop_is_interrupted() {
        let mut e = engine(1);
        let flag = e.interrupt_handle();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, Ordering::Relaxed);
        });
        e.eval_str("(define (spin i) (spin (+ i 1)))", "t.sx").expect("define");
        let r = e.eval_str("(spin 0)", "t.sx");
        t.join().expect("timer");
        assert_eq!(r.expect_err("interrupted").message(), "Interrupted");
        assert_eq!(e.eval_to_string("(jit-compiled? spin)").expect("asks"), "true");
    }

    #[test]
    fn compiled_recursion_that_never_loops_is_interrupted() {
        // `fib` has a pure version; `fib2` (it calls `len`) has not: both
        // recurse by direct calls for far longer than the test waits.
        for (name, src) in [("fib", FIB), ("fib2", "(define (fib2 n) (if (< n (len \"ab\")) n (+ (fib2 (- n 1)) (fib2 (- n 2)))))")] {
            let mut e = engine(1);
            let flag = e.interrupt_handle();
            e.eval_str(src, "t.sx").expect("define");
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                flag.store(true, Ordering::Relaxed);
            });
            let r = e.eval_str(&format!("({name} 80)"), "t.sx");
            t.join().expect("timer");
            assert_eq!(r.expect_err("interrupted").message(), "Interrupted", "{name}");
            assert_eq!(e.eval_to_string(&format!("({name} 10)")).expect("still usable"), "55");
        }
    }

    #[test]
    fn deep_compiled_recursion_keeps_calling_directly() {
        // Not pure (it calls `len`): every call is a direct call of the
        // ordinary compiled code, tens of thousands of them in a row, past
        // every periodic safepoint.
        let mut e = engine(1);
        e.eval_str("(define (down n) (if (= n 0) (len \"\") (+ 1 (down (- n 1)))))", "t.sx").expect("define");
        for _ in 0..3 {
            assert_eq!(e.eval_to_string("(down 50000)").expect("runs"), "50000");
        }
        let c = e.jit_counters().expect("a tier is installed");
        assert!(c.direct_calls * 100 >= c.compiled_calls * 99, "{c:?}");
        assert_eq!(c.lambda_calls, c.compiled_calls, "{c:?}");
    }

    #[test]
    fn a_pure_version_gives_up_once_and_the_ordinary_code_redoes_the_call() {
        let mut e = engine(1);
        e.eval_str("(define (grow n acc) (if (= n 0) acc (grow (- n 1) (* acc 2))))", "t.sx").expect("define");
        assert_eq!(e.eval_to_string("(grow 10 1)").expect("runs"), "1024");
        assert!(e.jit_report().contains("; 0 pure versions gave up;"), "{}", e.jit_report());
        // Overflow: the pure version gives up, the ordinary one promotes.
        assert_eq!(e.eval_to_string("(grow 70 1)").expect("runs"), "1.1805916207174113e21");
        assert!(e.jit_report().contains("; 1 pure versions gave up;"), "{}", e.jit_report());
        // It is not tried again.
        assert_eq!(e.eval_to_string("(grow 70 1)").expect("runs"), "1.1805916207174113e21");
        assert!(e.jit_report().contains("; 1 pure versions gave up;"), "{}", e.jit_report());
        let (calls, compiled) = e.jit_call_coverage().expect("a tier is installed");
        assert_eq!(calls, compiled, "every call ran compiled code");
    }

    #[test]
    fn compiled_recursion_meets_the_configured_depth_limit() {
        // A small limit, far below what the native stack holds: the
        // ordinary compiled code (`count` of a list), a pure version's
        // native self calls (`down`: `-` does not accumulate) and its
        // accumulated sums (`count`, `pr`) all meet it as the interpreter
        // does. A pure version past the limit raises the interpreter's
        // error right away (the ordinary code could only recurse to the same
        // error) instead of giving up and recursing natively to the limit,
        // and it stays enabled.
        let limit = 10_000;
        let tiers = [sx::Backend::None, sx::Backend::Cranelift];
        let mut engines: Vec<Engine> = tiers
            .iter()
            .map(|b| Engine::with_options(EngineOptions { backend: *b, jit_threshold: Some(1), max_depth: limit, ..EngineOptions::default() }).expect("engine"))
            .collect();
        for e in &mut engines {
            e.eval_str(
                "(define (pr n) (+ 1 (pr n))) (define (count n) (if (= n 0) 0 (+ 1 (count (- n 1)))))
                 (define (down n) (if (= n 0) 0 (- (down (- n 1)) 1)))
                 (define (len-of xs) (if (empty? xs) 0 (+ 1 (len-of (rest xs)))))",
                "t.sx",
            )
            .expect("define");
        }
        for src in [
            "(get (try-call (fn () (pr 0))) :error)",
            "(count 5000)",
            "(get (try-call (fn () (count 20000))) :error)",
            "(count 9000)",
            "(down 5000)",
            "(get (try-call (fn () (down 20000))) :error)",
            "(len-of (range 5000))",
            "(get (try-call (fn () (len-of (range 20000)))) :error)",
        ] {
            let want = engines[0].eval_to_string(src).expect("cek");
            assert_eq!(engines[1].eval_to_string(src).expect("cranelift"), want, "{src}");
        }
        assert_eq!(engines[0].eval_to_string("(count 5000)").expect("cek"), "5000");
        assert_eq!(engines[0].eval_to_string("(get (try-call (fn () (down 20000))) :error)").expect("cek"), "\"Maximum recursion depth exceeded\"");
        assert_eq!(engines[0].eval_to_string("(get (try-call (fn () (len-of (range 20000)))) :error)").expect("cek"), "\"Maximum recursion depth exceeded\"");
        let jit = &engines[1];
        assert!(jit.jit_report().contains("; 0 pure versions gave up;"), "{}", jit.jit_report());
        // Uncaught, it is reported where the ordinary compiled code reports
        // the depth error: at the body of the call past the limit.
        let at = engines[1].eval_str("(pr 0)", "t.sx").expect_err("runaway").to_string();
        assert!(at.starts_with("t.sx:1:16: Maximum recursion depth exceeded"), "{at}");
    }

    #[test]
    fn compiled_recursion_reaches_the_depth_limit_exactly_where_the_interpreter_does() {
        // The deepest call that succeeds, found on the CEK, and the next
        // one that fails, for each kind of compiled recursion: the ordinary
        // code (it calls `len`), a pure version's own calls (with two levels
        // inlined: the limit can fall in a copy or in a native call), with
        // two call sites, and accumulated sums. (In each, a
        // nested activation stands for one interpreter frame: the pending
        // operation it returns to. A call nested in several pending
        // operations is one compiled activation but several interpreter
        // frames, and meets the limit later.)
        let limit = 1000;
        let defs = [
            ("ord", "(define (ord n) (if (= n 0) (len \"\") (+ 1 (ord (- n 1)))))"),
            ("down", "(define (down n) (if (= n 0) 0 (- (down (- n 1)) 1)))"),
            ("two", "(define (two n) (if (< n 1) 0 (- (two (- n 1)) (two (- n n)))))"),
            ("acc", "(define (acc n) (if (= n 0) 0 (+ 1 (acc (- n 1)))))"),
        ];
        let engines: Vec<Engine> = [sx::Backend::None, sx::Backend::Cranelift]
            .iter()
            .map(|b| Engine::with_options(EngineOptions { backend: *b, jit_threshold: Some(1), max_depth: limit, ..EngineOptions::default() }).expect("engine"))
            .collect();
        let mut engines = engines;
        for e in &mut engines {
            for (_, d) in defs {
                e.eval_str(d, "t.sx").expect("define");
            }
        }
        let outcome = |e: &mut Engine, name: &str, n: usize| e.eval_to_string(&format!("(let ((r (try-call (fn () ({name} {n}))))) (if (get r :ok) \"ok\" (get r :error)))")).expect("runs");
        for (name, _) in defs {
            // Largest n that succeeds on the CEK (binary search).
            let (mut lo, mut hi) = (0, 2 * limit);
            while lo + 1 < hi {
                let mid = (lo + hi) / 2;
                if outcome(&mut engines[0], name, mid) == "\"ok\"" {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            assert!(lo > limit / 2, "{name}: {lo}");
            for n in [lo - 2, lo - 1, lo, lo + 1, lo + 2] {
                let want = outcome(&mut engines[0], name, n);
                assert_eq!(outcome(&mut engines[1], name, n), want, "{name} {n}");
            }
            assert_eq!(engines[1].eval_to_string(&format!("(jit-compiled? {name})")).expect("asks"), "true", "{name}");
        }
        assert!(engines[1].jit_report().contains("; 0 pure versions gave up;"), "{}", engines[1].jit_report());
    }

    #[test]
    fn inlined_self_calls_compute_what_the_interpreter_does() {
        // Pure versions inline their own calls one or two levels deep:
        // results, a non-fixnum or an overflow met inside an inlined copy
        // (the ordinary code redoes the call), and every activation counted.
        let defs = "(define (tak x y z) (if (< y x) (tak (tak (- x 1) y z) (tak (- y 1) z x) (tak (- z 1) x y)) z))
                    (define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
                    (define (dbl n) (if (= n 0) 1 (* 2 (dbl (- n 1)))))
                    (define (half n) (if (< n 1) n (half (- n 2))))";
        let srcs = ["(tak 18 12 6)", "(tak 12 8 4)", "(fib 25)", "(dbl 40)", "(dbl 70)", "(fib 20)", "(half 9)", "(half 9.5)", "(fib 2.5)"];
        let mut cek = Engine::new();
        let mut jit = engine(1);
        cek.eval_str(defs, "t.sx").expect("define");
        jit.eval_str(defs, "t.sx").expect("define");
        for src in srcs {
            assert_eq!(jit.eval_to_string(src).expect("jit"), cek.eval_to_string(src).expect("cek"), "{src}");
        }
        assert_eq!(jit.eval_to_string("(tak 18 12 6)").expect("tak"), "7");
        assert_eq!(jit.eval_to_string("(dbl 70)").expect("dbl"), "1.1805916207174113e21");
        let (calls, compiled) = jit.jit_call_coverage().expect("a tier is installed");
        assert_eq!(calls, compiled, "every call ran compiled code");
        // Every activation of tak counts, inlined or not: as many calls as
        // the interpreter makes.
        let count = |mut e: Engine| {
            e.eval_str(defs, "t.sx").expect("define");
            e.eval_to_string("(tak 18 12 6)").expect("tak");
            e.jit_call_coverage().expect("a tier is installed")
        };
        let interpreted = count(Engine::with_code_generator(EngineOptions { jit_threshold: Some(1), ..EngineOptions::default() }, Box::new(Declines)));
        let compiled = count(engine(1));
        assert_eq!(interpreted.1, 0);
        assert_eq!(interpreted.0, 63_609);
        assert_eq!(compiled, (interpreted.0, interpreted.0));
    }

    #[test]
    fn loops_through_functions_that_build_their_environment_do_not_nest() {
        // `go` builds an environment (its `let`), so it is not flat; its
        // callers call it directly, but its tail calls of itself (and
        // tail calls of it from flat code) must go round the runtime's
        // trampoline, not nest: nesting would hold every turn's frame (and
        // its garbage) until the shadow stack ran out.
        let mut e = engine(1);
        e.eval_str(
            "(define (make-adder n) (fn (x) (+ x n)))
             (define (go i acc) (if (= i 1000000) acc (let ((f (make-adder i))) (go (+ i 1) (+ acc (f 1))))))
             (define (ping i) (if (= i 0) 0 (pong (- i 1))))
             (define (pong i) (let ((j i)) (ping j)))",
            "t.sx",
        )
        .expect("define");
        assert_eq!(e.eval_to_string("(go 0 0)").expect("loops"), "500000500000");
        assert_eq!(e.eval_to_string("(ping 1000000)").expect("loops"), "0");
        assert_eq!(e.eval_to_string("(jit-compiled? go)").expect("asks"), "true");
        let c = e.jit_counters().expect("a tier is installed");
        assert_eq!(c.stack_fallbacks, 0, "{c:?}");
        // make-adder and f are called directly; the two million tail calls
        // of go and pong go round the runtime's trampoline.
        assert!(c.direct_calls >= 2_000_000, "{c:?}");
        assert!(c.lambda_calls - c.direct_calls >= 2_000_000, "{c:?}");
    }

    #[test]
    fn compiled_recursion_collects_the_garbage_it_makes() {
        // Direct calls between compiled functions never pass through the
        // runtime; every so often one does when a collection is due, so
        // that garbage made deep in a long recursion is collected as it
        // goes (it used to pile up until the recursion returned). `k` is
        // flat and allocates through a primitive; `g` builds an environment
        // and a closure on every call.
        for src in [
            "(define (k n) (if (< n 2) (len (list n n n n)) (+ (k (- n 1)) (k (- n 2)))))",
            "(define (g n) (let ((h (fn () n))) (if (< n 2) (h) (+ (g (- n 1)) (g (- n 2))))))",
        ] {
            let mut e = engine(1);
            e.eval_str(src, "t.sx").expect("define");
            let name = if src.contains("(k ") { "k" } else { "g" };
            let before = e.collections();
            // ~320 000 calls, each allocating: several collections' worth.
            e.eval_to_string(&format!("({name} 27)")).expect("runs");
            assert!(e.collections() >= before + 2, "{name}: {} collections", e.collections() - before);
        }
    }

    #[test]
    fn errors_in_compiled_code_have_the_interpreters_location() {
        let src = "(define (f x)\n  (+ x 1))\n(f 1)\n(f \"one\")";
        let cek = Engine::new().eval_str(src, "loc.sx").expect_err("fails").to_string();
        let jit = engine(1).eval_str(src, "loc.sx").expect_err("fails").to_string();
        assert_eq!(jit, cek);
        assert!(cek.starts_with("loc.sx:2:3:"), "{cek}");
    }

    #[test]
    fn an_unknown_feature_backend_names_its_feature() {
        let opts = EngineOptions { backend: sx::Backend::Llvm, ..EngineOptions::default() };
        let err = Engine::with_options(opts).err().expect("llvm is not compiled in").to_string();
        assert!(err.contains("--features llvm"), "{err}");
    }
}

/// The interpreter skips asking the tier about cold code (quiet windows):
/// the statistics and the threshold still see every call.
#[cfg(feature = "cranelift")]
#[test]
fn cold_calls_skipped_by_the_interpreter_are_counted_exactly() {
    let opts = EngineOptions { backend: sx::Backend::Cranelift, jit_threshold: Some(10), ..EngineOptions::default() };
    let mut e = Engine::with_options(opts).expect("cranelift");
    e.eval_str("(define (sq x) (* x x)) (sq 1) (sq 2) (sq 3)", "t").expect("calls");
    assert_eq!(stat(&mut e, "below-threshold"), "3");
    // Lowering the threshold ends the window; the skipped calls count.
    assert_eq!(e.eval_to_string("(jit-set-threshold! 5) (sq 4) (jit-compiled? sq)").expect("4th"), "false");
    assert_eq!(e.eval_to_string("(sq 5) (jit-compiled? sq)").expect("5th"), "true");
    assert_eq!(stat(&mut e, "below-threshold"), "4");
    // After a reset the calls before it do not count.
    e.eval_str("(jit-reset!) (jit-set-threshold! 3) (define (cube x) (* x x x)) (cube 1) (cube 2)", "t").expect("reset");
    assert_eq!(e.eval_to_string("(jit-reset!) (cube 3) (cube 4) (jit-compiled? cube)").expect("after reset"), "false");
    assert_eq!(e.eval_to_string("(cube 5) (jit-compiled? cube)").expect("3rd after reset"), "true");
    assert_eq!(stat(&mut e, "below-threshold"), "2");
}
