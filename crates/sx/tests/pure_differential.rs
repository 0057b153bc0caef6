//! Differential testing of the compiled tier's pure versions (feature `cranelift`): random
//! self-recursive fixnum functions — arithmetic that may overflow, comparisons, `if`, self calls
//! in every position (tail, non-tail, accumulating sums, calls in the arguments of calls) —
//! evaluated on the CEK and, compiled at the first call, on Cranelift. Both must give the same
//! result. (Pure versions inline their own calls, give up on overflow, accumulate sums in another
//! order and loop on tail calls: each is a chance to compute something else.)
//!
//! `SX_FUZZ_SCALE=F` multiplies the case count (default 150).
#![cfg(feature = "cranelift")]

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use std::fmt;
use sx::{Engine, EngineOptions};

/// The largest fixnum: sums and products near it overflow into bignums.
const FIX_MAX: i64 = (1 << 61) - 1;

#[derive(Clone, Debug)]
enum E {
    A,
    B,
    Int(i64),
    Op(&'static str, Box<E>, Box<E>),
    If(&'static str, Box<E>, Box<E>, Box<E>, Box<E>),
    /// `(f (- a k) e)`: a self call whose first argument decreases.
    Call(u8, Box<E>),
}

impl fmt::Display for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            E::A => write!(f, "a"),
            E::B => write!(f, "b"),
            E::Int(n) => write!(f, "{n}"),
            E::Op(op, x, y) => write!(f, "({op} {x} {y})"),
            E::If(cmp, x, y, t, e) => write!(f, "(if ({cmp} {x} {y}) {t} {e})"),
            E::Call(k, x) => write!(f, "(f (- a {k}) {x})"),
        }
    }
}

fn leaf() -> BoxedStrategy<E> {
    prop_oneof![
        3 => Just(E::A),
        3 => Just(E::B),
        4 => (-3i64..10).prop_map(E::Int),
        1 => select(vec![FIX_MAX, -FIX_MAX - 1, FIX_MAX / 2, 1 << 40]).prop_map(E::Int),
    ]
    .boxed()
}

/// Expressions; with `calls`, self calls among them.
fn expr(calls: bool) -> BoxedStrategy<E> {
    leaf()
        .prop_recursive(4, 24, 4, move |inner| {
            let op = (select(vec!["+", "-", "*"]), inner.clone(), inner.clone()).prop_map(|(o, x, y)| E::Op(o, Box::new(x), Box::new(y)));
            let cond = (select(vec!["<", ">", "=", "<=", ">="]), inner.clone(), inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, x, y, t, e)| E::If(c, Box::new(x), Box::new(y), Box::new(t), Box::new(e)));
            if calls {
                let call = (1u8..3, inner.clone()).prop_map(|(k, x)| E::Call(k, Box::new(x)));
                prop_oneof![3 => op, 2 => cond, 3 => call].boxed()
            } else {
                prop_oneof![op, cond].boxed()
            }
        })
        .boxed()
}

/// How many self calls `e` makes per activation, at most.
fn call_sites(e: &E) -> usize {
    match e {
        E::A | E::B | E::Int(_) => 0,
        E::Op(_, x, y) => call_sites(x) + call_sites(y),
        E::If(_, x, y, t, e) => call_sites(x) + call_sites(y) + call_sites(t).max(call_sites(e)),
        E::Call(_, x) => 1 + call_sites(x),
    }
}

fn eval(e: &mut Engine, src: &str) -> String {
    match e.eval_str(src, "t.sx") {
        Ok(v) => e.inspect(v),
        Err(err) => format!("error: {}", err.message()),
    }
}

#[test]
fn pure_versions_compute_what_the_interpreter_does() {
    let scale: f64 = std::env::var("SX_FUZZ_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let cases = ((150.0 * scale) as u32).max(1);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (expr(false), expr(true), 0i64..6, prop_oneof![(-5i64..20), Just(FIX_MAX), Just(-FIX_MAX - 1)])
        // At most 6 calls per activation and 5 levels: at most 6^5 calls.
        .prop_filter("bounded work", |(_, rec, _, _)| call_sites(rec) <= 6);
    runner
        .run(&strategy, |(base, rec, a, b)| {
            let def = format!("(define (f a b) (if (< a 1) {base} {rec}))");
            let call = format!("(f {a} {b})");
            let mut cek = Engine::new();
            let mut jit = Engine::with_options(EngineOptions { backend: sx::Backend::Cranelift, jit_threshold: Some(1), ..EngineOptions::default() }).expect("cranelift");
            eval(&mut cek, &def);
            eval(&mut jit, &def);
            let want = eval(&mut cek, &call);
            let got = eval(&mut jit, &call);
            prop_assert_eq!(&got, &want, "{}\n{}", def, call);
            // Once more: the pure version may have given up (and stays off).
            prop_assert_eq!(eval(&mut jit, &call), want, "again: {}\n{}", def, call);
            prop_assert_eq!(eval(&mut jit, "(jit-compiled? f)"), "true");
            Ok(())
        })
        .unwrap();
}
