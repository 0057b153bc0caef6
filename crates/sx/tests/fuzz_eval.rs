//! Grammar-based fuzzing of the whole evaluator (reader → analyser → CEK machine → printer).
//!
//! The contract under test: bad input never panics, hangs or crashes — it gives an error.
//!
//! Properties (default case counts; `SX_FUZZ_SCALE` multiplies them):
//! * `generated_programs` (10 000): random programs from a grammar — literals of every kind,
//!   calls of ~270 primitives with random argument counts and types, every special form,
//!   continuations (reset/shift, call/cc escapes), coroutines, dynamic scope, records and ADTs
//!   with match, macros, reader macros, eval, the JIT API, mutation and cyclic data — printed as
//!   source and evaluated in a fresh `sx::Engine`.
//! * `generated_programs_under_gc` (600): the same with the heap brought to the edge of a
//!   collection first, so that the collector runs in the middle of the program.
//! * `control_combos` (2 500): control operations inside chains of capturing/unwinding contexts.
//! * `malformed_special_forms` (3 000): special-form heads with random, ill-shaped arguments.
//! * `primitive_edges` (3 000): every global called with extreme values (i64 and fixnum
//!   boundaries, NaN, infinities, edge rationals, odd strings, every object type).
//! * `mutated_programs` (4 000) and `random_text` (4 000): text mutations of generated programs
//!   and of conformance-suite snippets; token soup and arbitrary strings.
//! * `deep_data` (150): deeply nested data (to 20 000 levels) through the operations that walk it.
//! * `runaway_recursion`: unbounded recursion through every channel that calls back into SX.
//!
//! Each case: evaluate, `inspect`/`display` the value or `render_error` the error, collect
//! garbage, and check that the engine still evaluates a literal afterwards. A panic anywhere
//! fails the case; proptest shrinks it and a structural minimiser then reduces the source. A
//! watchdog thread interrupts a case (`Engine::interrupt_handle`) that runs longer than a quarter
//! of `SX_FUZZ_HANG_SECS` (default 20) seconds, which then fails as a hang; if it does not stop
//! by the full limit, the watchdog exits the process printing the offending source.
//!
//! Known bugs are kept out of the generators by comments starting `// EXCLUDED until fixed:`
//! (with the minimal reproducer); re-enable each after fixing.
//!
//! Environment knobs:
//! * `SX_FUZZ_SCALE=F`    multiply every property's case count by F (default 1).
//! * `SX_FUZZ_COLLECT=1`  do not stop at the first failure: collect every distinct failure
//!   (by panic message and location), minimise each and print them all at the end.
//! * `SX_FUZZ_TRACE=PATH` write each source to PATH before running it (to find the input that
//!   killed the process, e.g. by a Rust stack overflow or an allocation failure).
//! * `SX_FUZZ_STATS=1`    print the most common error messages and the slowest cases.
//! * `SX_FUZZ_DIFF=0`     do not also run each case on the CEK and on Cranelift (threshold 1)
//!   requiring the same value or error message (done by default when Cranelift is built in;
//!   cases using time, randomness or the JIT API aside).
//! * `SX_FUZZ_BACKEND=cranelift` run every case on the compiled tier (`SX_FUZZ_JIT_THRESHOLD=N`,
//!   default 1: everything compiled at its first call) instead of the CEK.
//!
//! Programs are kept away from unbounded loops by construction: a variable is never called (nor
//! passed where a function is expected) inside a lambda, loop, reset or call/cc body, `k` of
//! call/cc never escapes, the only loops are counter-bounded templates, and sizes given to
//! `range`, `make-vector` etc. are small. Engines use `max_depth` 100 000 (the default is 4M) so
//! that runaway recursion is cheap.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{NewTree, Union, ValueTree};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

// ───────────────────────────── the AST and its printer ─────────────────────────────

#[derive(Clone, Debug)]
enum Sx {
    /// An atom, already in source form (number, string, symbol, char, keyword, ...).
    A(String),
    /// `( ... )`
    L(Vec<Sx>),
    /// `[ ... ]`
    B(Vec<Sx>),
    /// `{ ... }`
    D(Vec<Sx>),
    /// A prefix: `'x`, `` `x ``, `,x`, `,@x`, `#;x`.
    P(&'static str, Box<Sx>),
}

impl fmt::Display for Sx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, open: &str, xs: &[Sx], close: &str) -> fmt::Result {
            f.write_str(open)?;
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str(close)
        }
        match self {
            Sx::A(s) => f.write_str(s),
            Sx::L(xs) => seq(f, "(", xs, ")"),
            Sx::B(xs) => seq(f, "[", xs, "]"),
            Sx::D(xs) => seq(f, "{", xs, "}"),
            Sx::P(p, x) => write!(f, "{p}{x}"),
        }
    }
}

/// A program: top-level forms, one per line.
#[derive(Clone, Debug)]
struct Program(Vec<Sx>);

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for x in &self.0 {
            writeln!(f, "{x}")?;
        }
        Ok(())
    }
}

fn a(s: &str) -> Sx {
    Sx::A(s.to_string())
}

fn l(xs: Vec<Sx>) -> Sx {
    Sx::L(xs)
}

// ───────────────────────────── strategy helpers ─────────────────────────────

type S = BoxedStrategy<Sx>;

/// A strategy built only when a value is drawn from it, so that recursive grammars do not
/// build their whole (exponential) strategy tree up front.
struct Lazy<T>(Rc<dyn Fn() -> BoxedStrategy<T>>);

impl<T> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lazy")
    }
}

impl<T: fmt::Debug + 'static> Strategy for Lazy<T> {
    type Tree = Box<dyn ValueTree<Value = T>>;
    type Value = T;
    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        (self.0)().new_tree(runner)
    }
}

fn lz(f: impl Fn() -> S + 'static) -> S {
    Lazy(Rc::new(f)).boxed()
}

/// Weighted choice; the first alternatives are what shrinking moves towards, so list the
/// simplest first.
fn one(v: Vec<(u32, S)>) -> S {
    Union::new_weighted(v).boxed()
}

fn atom(s: &'static str) -> S {
    Just(a(s)).boxed()
}

fn pick(names: &[&'static str]) -> S {
    select(names.to_vec()).prop_map(a).boxed()
}


/// A list form from a sequence of parts.
fn form(parts: Vec<S>) -> S {
    parts.prop_map(Sx::L).boxed()
}

/// `(head parts...)`
fn call(head: &'static str, parts: Vec<S>) -> S {
    let mut v = vec![atom(head)];
    v.extend(parts);
    form(v)
}

/// `(head x...)` with `n` elements drawn from `s`.
fn call_n(head: &'static str, s: S, n: std::ops::Range<usize>) -> S {
    proptest::collection::vec(s, n)
        .prop_map(move |xs| {
            let mut v = vec![a(head)];
            v.extend(xs);
            Sx::L(v)
        })
        .boxed()
}

fn seq_of(s: S, n: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<Sx>> {
    proptest::collection::vec(s, n).boxed()
}

// ───────────────────────────── literals ─────────────────────────────

fn int_lit() -> S {
    cached("int_lit", int_lit_uncached)
}

fn int_lit_uncached() -> S {
    one(vec![
        (8, (-3i64..20).prop_map(|n| a(&n.to_string())).boxed()),
        (2, any::<i32>().prop_map(|n| a(&n.to_string())).boxed()),
        (
            2,
            pick(&[
                "9223372036854775807",
                "-9223372036854775808",
                "4611686018427387903",
                "4611686018427387904",
                "-4611686018427387904",
                "-4611686018427387905",
                "99999999999999999999999",
                "-0",
                "007",
                "1000000000000",
            ]),
        ),
        (1, any::<i64>().prop_map(|n| a(&n.to_string())).boxed()),
    ])
}

fn float_lit() -> S {
    cached("float_lit", float_lit_uncached)
}

fn float_lit_uncached() -> S {
    one(vec![
        (4, pick(&["0.0", "-0.0", "0.5", "2.5", "-1.5", "3.14159", "1e3", "1.5e-7", "1e308", "-1e308", "5e-324", "1.7976931348623157e308", "1e400", "123456789.123456789"])),
        (2, pick(&["(/ 0.0 0.0)", "(/ 1.0 0.0)", "(/ -1.0 0.0)", "(sqrt -1)", "(- (/ 1.0 0.0))"])),
        (2, any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| a(&format!("{x:?}"))).boxed()),
    ])
}

fn rational_lit() -> S {
    cached("rational_lit", rational_lit_uncached)
}

fn rational_lit_uncached() -> S {
    one(vec![
        (12, pick(&["1/3", "-7/2", "4/2", "2/4", "-1/3", "22/7", "0/5", "1/1"])),
        (2, pick(&["9223372036854775807/2", "1/9223372036854775807", "-9223372036854775808/3", "-9223372036854775808/-1", "3/-4"])),
        (1, pick(&["1/0", "0/0"])),
        (2, (-50i64..50, 1i64..30).prop_map(|(n, d)| a(&format!("{n}/{d}"))).boxed()),
    ])
}

fn number_lit() -> S {
    cached("number_lit", number_lit_uncached)
}

fn number_lit_uncached() -> S {
    one(vec![(6, int_lit()), (3, float_lit()), (2, rational_lit())])
}

/// A string literal with escapes and non-ASCII text.
fn string_lit() -> S {
    cached("string_lit", string_lit_uncached)
}

fn string_lit_uncached() -> S {
    let piece = one_s(vec![
        (6, "[a-z ]{0,6}".boxed()),
        (2, select(vec!["é", "λ", "中文", "😀", "e\u{301}", "\u{200d}", "\u{202e}", "ß", "Ω", "\u{fffd}", "𝕏", "<b>x</b>", "&amp;", "%Y-%m-%d", "42px", "-7", "1e5", "3.5", " \t ", "\u{7f}"]).prop_map(String::from).boxed()),
        (2, select(vec!["\\n", "\\t", "\\\\", "\\\"", "\\0", "\\r", "\\u00e9", "\\u03bb", "\\u0000", "\\uD83D\\uDE00"]).prop_map(String::from).boxed()),
        // reader errors (rare: they stop the whole program)
        (1, select(vec!["\\q", "\\u12", "\\u{41}", "\\x41;", "\\ud83d"]).prop_map(String::from).boxed()),
    ]);
    let good = proptest::collection::vec(piece.clone(), 0..4).prop_map(|ps| ps.concat()).prop_filter("no bad escape", |s| {
        !["\\q", "\\u12", "\\u{", "\\x", "\\ud83d"].iter().any(|b| s.contains(b))
    });
    let any = proptest::collection::vec(piece, 0..4).prop_map(|ps| ps.concat());
    one_s(vec![(30, good.boxed()), (1, any.boxed())]).prop_map(|s| Sx::A(format!("\"{s}\""))).boxed()
}

/// An SX string literal holding `s`.
fn sx_string(s: &str) -> Sx {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    Sx::A(out)
}

fn char_lit() -> S {
    cached("char_lit", char_lit_uncached)
}

fn char_lit_uncached() -> S {
    one(vec![
        (
            30,
            pick(&[
                "#\\a", "#\\Z", "#\\0", "#\\space", "#\\newline", "#\\tab", "#\\return", "#\\nul", "#\\null", "#\\escape", "#\\altmode",
                "#\\delete", "#\\rubout", "#\\backspace", "#\\λ", "#\\é", "#\\😀", "#\\(", "#\\)", "#\\\\", "#\\\"",
            ]),
        ),
        (1, pick(&["#\\x41", "#\\bogus"])),
    ])
}

fn keyword_lit() -> S {
    cached("keyword_lit", keyword_lit_uncached)
}

fn keyword_lit_uncached() -> S {
    pick(&[":a", ":b", ":k", ":foo-bar", ":else", ":value", ":ok", ":error", ":x", ":nm", ":日本"])
}

/// Context-free strategies are built once per thread.
fn cached(key: &'static str, build: fn() -> S) -> S {
    thread_local! {
        static CACHE: RefCell<HashMap<&'static str, S>> = RefCell::new(HashMap::new());
    }
    if let Some(s) = CACHE.with(|c| c.borrow().get(key).cloned()) {
        return s;
    }
    let s = build();
    CACHE.with(|c| c.borrow_mut().insert(key, s.clone()));
    s
}

fn simple_atom() -> S {
    cached("simple_atom", simple_atom_uncached)
}

fn simple_atom_uncached() -> S {
    one(vec![
        (4, number_lit()),
        (3, string_lit()),
        (1, char_lit()),
        (2, keyword_lit()),
        (2, pick(&["nil", "true", "false"])),
        (1, pick(&["'foo", "'a", "':k", "'()", "'nil", "'|x|", "#|raw \"str\"|"])),
    ])
}

/// Quoted data: atoms, symbols and nested lists.
fn datum(depth: u32) -> S {
    let leaf = one(vec![
        (4, simple_atom()),
        (3, pick(&["foo", "bar", "a", "b", "x", "_", "&rest", "&key", "else", ":else", "=>", ":value", "if", "fn", "list", "+", "...", "unquote", "quote", "k", "e", "nil"])),
    ]);
    if depth == 0 {
        return leaf;
    }
    one(vec![
        (5, leaf),
        (2, lz(move || seq_of(datum(depth - 1), 0..=4).prop_map(Sx::L).boxed())),
        (1, lz(move || seq_of(datum(depth - 1), 0..=4).prop_map(|mut xs| { if xs.len() % 2 == 1 { xs.pop(); } Sx::D(xs) }).boxed())),
        (1, lz(move || seq_of(datum(depth - 1), 0..=3).prop_map(Sx::B).boxed())),
    ])
}

// ───────────────────────────── generation context ─────────────────────────────

/// Global variables the prologue defines (readable and assignable by generated code).
const DATA_GLOBALS: &[&str] = &["n", "fl", "q", "s", "lst", "d", "v", "st", "ip", "op", "sb", "ch", "sym", "kw", "nl", "mb", "pt", "co", "m1", "m2", "m3"];

/// Names given to locals. A few shadow primitives and special forms on purpose.
const LOCAL_NAMES: &[&str] = &["a", "b", "c", "x", "y", "z", "e", "r", "acc", "item", "lst", "s"];
const SHADOW_NAMES: &[&str] = &["list", "if", "str", "match", "first"];

const PROLOGUE: &str = r#"
(define n 3) (define fl 2.5) (define q 1/3) (define s "héllo wörld") (define lst (list 1 2 3))
(define d {:a 1 :b "x"}) (define v (vector 1 "two" 3.0)) (define st (make-set (list 1 2)))
(define ip (open-input-string "ab\ncd")) (define op (open-output-string)) (define sb (make-string-buffer "x"))
(define ch #\a) (define sym 'foo) (define kw ':kw) (define nl nil)
(define-type Maybe (Just value) (Nothing))
(define-record-type <point> (make-point x y) point? (x point-x) (y point-y set-point-y!))
(define mb (Just 1)) (define pt (make-point 1 2))
(define co (make-coroutine (fn (a) (coroutine-yield a) (coroutine-yield 2) 3)))
(define id1 (fn (a) a)) (define add2 (fn (a b) (+ a b))) (define restf (fn (&rest r) r)) (define const0 (fn () 0))
(define m1 0) (define m2 "m") (define m3 (list))
(defmacro my-when (c &rest body) `(if ,c (do ,@body) nil))
(define-protocol Shape (area self))
(implement Shape <point> (area self (* (point-x self) (point-y self))))
"#;

/// Names are all static: locals come from fixed pools.
type Name = &'static str;

#[derive(Clone, Debug)]
struct Ctx {
    /// Readable and assignable variables.
    vars: Vec<Name>,
    /// Readable only (loop counters).
    ro: Vec<Name>,
    /// Names that may only be called in head position, never used as values: `k`.
    heads: Vec<Name>,
    /// May a variable be called, or passed where a function is expected? Only outside every
    /// lambda, loop, reset and call/cc body: no generated function can then reach itself.
    free: bool,
    /// Inside a `reset`: `shift` may be generated.
    in_reset: bool,
    /// Inside a coroutine body: `coroutine-yield` is likely.
    in_coroutine: bool,
    /// Remaining nesting depth.
    depth: u32,
}

type C = Rc<Ctx>;

impl Ctx {
    fn top(depth: u32) -> C {
        Rc::new(Ctx { vars: DATA_GLOBALS.to_vec(), ro: vec![], heads: vec![], free: true, in_reset: false, in_coroutine: false, depth })
    }
    fn sub(self: &C) -> C {
        let mut c = (**self).clone();
        c.depth = c.depth.saturating_sub(1);
        Rc::new(c)
    }
    fn with_vars(self: &C, names: &[Name]) -> C {
        let mut c = (**self).clone();
        for n in names {
            c.vars.retain(|v| v != n);
            c.ro.retain(|v| v != n);
            c.heads.retain(|v| v != n);
            c.vars.push(n);
        }
        Rc::new(c)
    }
    fn with_ro(self: &C, name: Name) -> C {
        let mut c = (**self).clone();
        c.vars.retain(|v| *v != name);
        c.heads.retain(|v| *v != name);
        c.ro.push(name);
        Rc::new(c)
    }
    fn with_head(self: &C, name: Name) -> C {
        let mut c = (**self).clone();
        c.vars.retain(|v| *v != name);
        c.ro.retain(|v| *v != name);
        c.heads.retain(|v| *v != name);
        c.heads.push(name);
        Rc::new(c)
    }
    /// The context of a lambda body: variables may no longer be called.
    fn body(self: &C) -> C {
        let mut c = (**self).clone();
        c.free = false;
        // the continuation of call/cc never escapes into a function
        c.heads.retain(|h| *h != "ret");
        c.depth = c.depth.saturating_sub(1);
        Rc::new(c)
    }
    fn readable(&self) -> Vec<Name> {
        let mut v = self.vars.clone();
        v.extend(self.ro.iter().copied());
        v
    }
}

fn var_ref(ctx: &C) -> S {
    pick(&ctx.readable())
}

fn local_name() -> BoxedStrategy<Name> {
    one_s(vec![(12, select(LOCAL_NAMES.to_vec()).boxed()), (1, select(SHADOW_NAMES.to_vec()).boxed())])
}

fn one_s<T: fmt::Debug + 'static>(v: Vec<(u32, BoxedStrategy<T>)>) -> BoxedStrategy<T> {
    Union::new_weighted(v).boxed()
}

// ───────────────────────────── typed arguments ─────────────────────────────

/// What a primitive's argument is meant to be. Arguments get the intended kind most of the
/// time and anything at all otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
enum K {
    Any,
    Num,
    Int,
    /// A small count or index (sizes of vectors, ranges, ...).
    Size,
    Str,
    Char,
    List,
    Dict,
    Vect,
    Set,
    IPort,
    OPort,
    Buf,
    Co,
    Key,
    Sym,
    Bool,
    /// A function taking this many arguments.
    Func(u8),
    /// A quoted form, for `eval`.
    Form,
    /// A collection of some kind (list, vector, string, dict, set).
    Coll,
}

fn kind_value(ctx: &C, k: K) -> S {
    let c = ctx.clone();
    match k {
        K::Any => expr(ctx),
        K::Num => one(vec![(6, number_lit()), (2, pick(&["n", "fl", "q"])), (2, lz(move || arith(&c.sub())))]),
        K::Int => one(vec![(6, int_lit()), (1, atom("n")), (1, lz(move || arith(&c.sub())))]),
        K::Size => one(vec![(10, (0i64..6).prop_map(|n| a(&n.to_string())).boxed()), (2, pick(&["-1", "-3", "0", "1.5", "2/3", "\"2\"", "nil"]))]),
        K::Str => one(vec![(6, string_lit()), (2, atom("s")), (1, atom("m2")), (1, lz(move || call_n("str", kind_value(&c.sub(), K::Any), 0..3)))]),
        K::Char => one(vec![(5, char_lit()), (1, atom("ch")), (1, lz(move || call("integer->char", vec![kind_value(&c.sub(), K::Int)])))]),
        K::List => one(vec![
            (3, atom("lst")),
            (1, atom("m3")),
            (4, lz(move || call_n("list", kind_value(&c.sub(), K::Any), 0..4))),
            (2, datum(2).prop_map(|x| Sx::P("'", Box::new(Sx::L(vec![x])))).boxed()),
            (1, pick(&["'()", "(range 0 3)", "(list 3 1 2)", "(list \"b\" \"a\")", "(list (list 1 2) (list 3))", "(list 1 nil 2)"])),
        ]),
        K::Dict => one(vec![
            (3, atom("d")),
            (3, lz(move || dict_lit(&c.sub()))),
            (1, pick(&["{}", "(dict)", "(dict \"a\" 1 \"b\" 2)", "{:a {:b {:c 1}}}", "(json-decode \"{\\\"a\\\": [1, 2.5, null]}\")"])),
        ]),
        K::Vect => one(vec![(3, atom("v")), (3, lz(move || call_n("vector", kind_value(&c.sub(), K::Any), 0..4))), (1, { let c = ctx.clone(); lz(move || call("make-vector", vec![kind_value(&c.sub(), K::Size), kind_value(&c.sub(), K::Any)])) })]),
        K::Set => one(vec![(3, atom("st")), (2, lz(move || call("make-set", vec![kind_value(&c.sub(), K::List)]))), (1, atom("(make-set)"))]),
        K::IPort => one(vec![(3, atom("ip")), (2, lz(move || call("open-input-string", vec![kind_value(&c.sub(), K::Str)])))]),
        K::OPort => one(vec![(3, atom("op")), (1, atom("(open-output-string)"))]),
        K::Buf => one(vec![(3, atom("sb")), (1, lz(move || call_n("make-string-buffer", kind_value(&c.sub(), K::Str), 0..2)))]),
        K::Co => one(vec![(3, atom("co")), (2, lz(move || coroutine_make(&c.sub())))]),
        K::Key => one(vec![(4, keyword_lit()), (2, string_lit()), (2, (-2i64..5).prop_map(|n| a(&n.to_string())).boxed()), (1, pick(&["':a", "'sym", "nil", "1.5"]))]),
        K::Sym => one(vec![(3, pick(&["'foo", "'a", "'if", "'+", "sym", "'|a b|"])), (1, lz(move || call("string->symbol", vec![kind_value(&c.sub(), K::Str)]))), (1, atom("(gensym)"))]),
        K::Bool => one(vec![(3, pick(&["true", "false", "nil"])), (2, lz(move || compare(&c.sub())))]),
        K::Func(n) => callable(ctx, n),
        K::Form => one(vec![
            (3, lz(move || expr(&Ctx::top(c.depth.saturating_sub(1)).body()).prop_map(|x| Sx::P("'", Box::new(x))).boxed())),
            (1, datum(2).prop_map(|x| Sx::P("'", Box::new(x))).boxed()),
            (1, { let c = ctx.clone(); lz(move || quasi(&c.sub())) }),
        ]),
        K::Coll => one(vec![
            (3, kind_value(ctx, K::List)),
            (1, kind_value(ctx, K::Vect)),
            (1, kind_value(ctx, K::Str)),
            (1, kind_value(ctx, K::Dict)),
            (1, kind_value(ctx, K::Set)),
        ]),
    }
}

/// An argument of kind `k`: usually of that kind, sometimes anything.
fn arg(ctx: &C, k: K) -> S {
    if k == K::Any {
        return expr(ctx);
    }
    if matches!(k, K::Func(_)) && !ctx.free {
        // never a variable where a function is expected, inside a body
        return one(vec![(8, kind_value(ctx, k)), (1, simple_atom())]);
    }
    let c = ctx.clone();
    one(vec![(8, kind_value(ctx, k)), (1, lz(simple_atom)), (1, lz(move || expr(&c)))])
}

fn dict_lit(ctx: &C) -> S {
    let c = ctx.clone();
    let entry = (keyword_or_str(), lz(move || expr(&c))).prop_map(|(k, v)| vec![k, v]).boxed();
    proptest::collection::vec(entry, 0..4).prop_map(|es| Sx::D(es.concat())).boxed()
}

fn keyword_or_str() -> S {
    one(vec![(5, keyword_lit()), (2, string_lit()), (1, int_lit())])
}

// ───────────────────────────── functions ─────────────────────────────

/// Parameter lists: `(a b)`, `(a &rest r)`, `(&rest r)`, sometimes ill-formed.
fn params() -> BoxedStrategy<(Sx, Vec<Name>)> {
    let names = proptest::collection::vec(local_name(), 0..4);
    one_s(vec![
        (10, names.clone().prop_map(|ns| { let mut ns2 = ns.clone(); ns2.dedup(); (Sx::L(ns2.iter().map(|n| a(n)).collect()), ns2) }).boxed()),
        (3, names.prop_map(|ns| {
            let mut ns2 = ns.clone();
            ns2.dedup();
            ns2.retain(|n| *n != "r");
            let mut v: Vec<Sx> = ns2.iter().map(|n| a(n)).collect();
            v.push(a("&rest"));
            v.push(a("r"));
            ns2.push("r");
            (Sx::L(v), ns2)
        }).boxed()),
        (1, select(vec!["(a a)", "(&rest)", "(1 2)", "(a &rest)", "a", "(a . b)", "(\"x\")", "(&key a b)", "(a &rest r s)"]).prop_map(|p| (a(p), vec!["a"])).boxed()),
    ])
}

/// `(fn (params) body...)`: the body may not call variables.
fn lambda(ctx: &C) -> S {
    let c = ctx.clone();
    (pick(&["fn", "fn", "lambda"]), params())
        .prop_flat_map(move |(head, (ps, names))| {
            let bc = c.body().with_vars(&names);
            (Just(head), Just(ps), seq_of(expr(&bc), 1..=2))
        })
        .prop_map(|(head, ps, body)| {
            let mut v = vec![head, ps];
            v.extend(body);
            Sx::L(v)
        })
        .boxed()
}

/// Something callable with about `n` arguments.
fn callable(ctx: &C, n: u8) -> S {
    let prims: &[&'static str] = match n {
        0 => &["const0", "list", "vector", "gensym", "restf", "open-output-string", "jit-stats", "Nothing", "make-set", "dict"],
        1 => &["id1", "inc", "not", "str", "list", "type-of", "Just", "first", "len", "inspect", "upper", "even?", "char-upcase", "abs", "json-encode", "vector", "restf", "nil?", "point-x", "area", "reverse", "sqrt"],
        2 => &["add2", "+", "-", "*", "/", "cons", "list", "str", "=", "<", "max", "min", "get", "append", "restf", "mod", "make-point", "concat", "eq?", "equal?", "nth"],
        _ => &["list", "+", "str", "restf", "max", "vector", "*"],
    };
    let c = ctx.clone();
    let c2 = ctx.clone();
    let mut alts = vec![
        (6, lz(move || lambda(&c))),
        (4, pick(prims)),
        (1, if ctx.free {
            pick(&["if", "define", "quote", "and", "shift", "macro-nope", "my-when", "error", "raise", "call/cc", "apply", "map", "eval", "try-call"])
        } else {
            pick(&["if", "define", "quote", "and", "shift", "macro-nope", "my-when", "error", "raise"])
        }),
        (1, lz(simple_atom)),
        (1, lz(move || {
            // a function from an expression: a continuation, a record accessor, a partial application
            let c3 = c2.sub();
            one(vec![
                (1, form(vec![atom("reset"), form(vec![atom("shift"), atom("k"), atom("k")])])),
                (1, pick(&["(fn (&rest r) (apply + r))", "(first (list id1))", "(get {:f add2} \"f\")", "(if true inc dec)"])),
                (1, call("Just", vec![expr(&c3)])),
            ])
        })),
    ];
    if ctx.free {
        alts.push((2, var_ref(ctx)));
    }
    one(alts)
}

// ───────────────────────────── primitives ─────────────────────────────

use K::*;

/// (name, fixed argument kinds, kind of further arguments if variadic)
const PRIMS: &[(&str, &[K], Option<K>)] = &[
    // arithmetic
    ("+", &[], Some(Num)),
    ("-", &[Num], Some(Num)),
    ("*", &[], Some(Num)),
    ("/", &[Num], Some(Num)),
    ("mod", &[Num, Num], None),
    ("modulo", &[Num, Num], None),
    ("remainder", &[Num, Num], None),
    ("quotient", &[Num, Num], None),
    ("abs", &[Num], None),
    ("inc", &[Num], None),
    ("dec", &[Num], None),
    ("min", &[Num], Some(Num)),
    ("max", &[Num], Some(Num)),
    ("clamp", &[Num, Num, Num], None),
    ("floor", &[Num], None),
    ("ceil", &[Num], None),
    ("ceiling", &[Num], None),
    ("round", &[Num], None),
    ("truncate", &[Num], None),
    ("pow", &[Num, Num], None),
    ("expt", &[Num, Num], None),
    ("sqrt", &[Num], None),
    ("odd?", &[Num], None),
    ("even?", &[Num], None),
    ("zero?", &[Num], None),
    ("positive?", &[Num], None),
    ("negative?", &[Num], None),
    ("exact?", &[Num], None),
    ("inexact?", &[Num], None),
    ("exact->inexact", &[Num], None),
    ("inexact->exact", &[Num], None),
    ("exact", &[Num], None),
    ("inexact", &[Num], None),
    ("numerator", &[Num], None),
    ("denominator", &[Num], None),
    ("random-int", &[Int, Int], None),
    // comparison and equality
    ("=", &[Any, Any], Some(Any)),
    ("!=", &[Any, Any], None),
    ("<", &[Num, Num], Some(Num)),
    (">", &[Num, Num], Some(Num)),
    ("<=", &[Num, Num], Some(Num)),
    (">=", &[Num, Num], Some(Num)),
    ("not", &[Any], None),
    ("eq?", &[Any, Any], None),
    ("eqv?", &[Any, Any], None),
    ("equal?", &[Any, Any], None),
    // types
    ("type-of", &[Any], None),
    ("nil?", &[Any], None),
    ("boolean?", &[Any], None),
    ("number?", &[Any], None),
    ("integer?", &[Any], None),
    ("float?", &[Any], None),
    ("rational?", &[Any], None),
    ("string?", &[Any], None),
    ("symbol?", &[Any], None),
    ("keyword?", &[Any], None),
    ("list?", &[Any], None),
    ("dict?", &[Any], None),
    ("lambda?", &[Any], None),
    ("macro?", &[Any], None),
    ("primitive?", &[Any], None),
    ("callable?", &[Any], None),
    ("continuation?", &[Any], None),
    ("procedure?", &[Any], None),
    ("record?", &[Any], None),
    ("empty?", &[Coll], None),
    // symbols
    ("symbol-name", &[Sym], None),
    ("keyword-name", &[Any], None),
    ("string->symbol", &[Str], None),
    ("symbol->string", &[Sym], None),
    ("string->keyword", &[Str], None),
    ("make-symbol", &[Str], None),
    ("gensym", &[], Some(Str)),
    // strings
    ("str", &[], Some(Any)),
    ("string-append", &[], Some(Str)),
    ("string-length", &[Str], None),
    ("upper", &[Str], None),
    ("lower", &[Str], None),
    ("upcase", &[Str], None),
    ("downcase", &[Str], None),
    ("trim", &[Str], None),
    ("slice", &[Coll, Int], Some(Int)),
    ("substring", &[Str, Int], Some(Int)),
    ("index-of", &[Coll, Any], None),
    ("string-contains?", &[Str, Str], None),
    ("starts-with?", &[Str, Str], None),
    ("ends-with?", &[Str, Str], None),
    ("split", &[Str, Str], None),
    ("join", &[Str, List], None),
    ("replace", &[Str, Str, Str], None),
    ("char-from-code", &[Int], None),
    ("char-code", &[Char], None),
    ("parse-int", &[Str], Some(Any)),
    ("parse-float", &[Str], None),
    ("number->string", &[Num], Some(Int)),
    ("string->number", &[Str], Some(Int)),
    ("format-decimal", &[Num], Some(Size)),
    ("pluralize", &[Int, Str], Some(Str)),
    ("escape", &[Any], None),
    ("strip-tags", &[Str], None),
    ("json-encode", &[Any], None),
    ("json-decode", &[Str], None),
    ("parse-datetime", &[Str], None),
    ("format-date", &[Any, Str], None),
    // lists
    ("list", &[], Some(Any)),
    ("cons", &[Any, List], None),
    ("first", &[Coll], None),
    ("last", &[Coll], None),
    ("rest", &[Coll], None),
    ("nth", &[Coll, Int], None),
    ("len", &[Coll], None),
    ("length", &[Coll], None),
    ("count", &[Coll], None),
    ("contains?", &[Coll, Any], None),
    ("concat", &[], Some(List)),
    ("append", &[List], Some(Any)),
    ("append!", &[List, Any], None),
    ("reverse", &[List], None),
    ("flatten", &[List], None),
    ("range", &[Size], Some(Size)),
    ("chunk-every", &[List, Size], None),
    ("zip-pairs", &[List], None),
    ("zip", &[List], Some(List)),
    ("sort", &[List], None),
    ("list-copy", &[List], None),
    ("into", &[Coll, Coll], None),
    // dicts
    ("dict", &[], Some(Any)),
    ("get", &[Coll, Key], Some(Any)),
    ("keys", &[Dict], None),
    ("vals", &[Dict], None),
    ("has-key?", &[Dict, Key], None),
    ("merge", &[], Some(Dict)),
    ("assoc", &[Dict, Key, Any], Some(Any)),
    ("dissoc", &[Dict], Some(Key)),
    ("dict-set!", &[Dict, Key, Any], None),
    ("dict-delete!", &[Dict, Key], None),
    // higher order
    ("apply", &[Func(2), List], None),
    ("map", &[Func(1), Coll], Some(List)),
    ("map-indexed", &[Func(2), Coll], None),
    ("filter", &[Func(1), Coll], None),
    ("reduce", &[Func(2), Any, Coll], None),
    ("some", &[Func(1), Coll], None),
    ("every?", &[Func(1), Coll], None),
    ("for-each", &[Func(1), Coll], None),
    // evaluation, errors, output
    ("eval", &[Form], None),
    ("sx-parse", &[Str], None),
    ("error", &[Str], Some(Any)),
    ("raise", &[Any], None),
    ("raise-continuable", &[Any], None),
    ("with-exception-handler", &[Func(1), Func(0)], None),
    ("try-call", &[Func(0)], None),
    ("assert", &[Bool], Some(Str)),
    ("inspect", &[Any], None),
    ("print", &[], Some(Any)),
    ("println", &[], Some(Any)),
    ("display", &[Any], None),
    ("write", &[Any], None),
    ("newline", &[], None),
    // chars
    ("char?", &[Any], None),
    ("char->integer", &[Char], None),
    ("integer->char", &[Int], None),
    ("char-upcase", &[Char], None),
    ("char-downcase", &[Char], None),
    ("char=?", &[Char], Some(Char)),
    ("char<?", &[Char], Some(Char)),
    ("char>?", &[Char], Some(Char)),
    ("char<=?", &[Char], Some(Char)),
    ("char>=?", &[Char], Some(Char)),
    ("char-ci=?", &[Char], Some(Char)),
    ("char-ci<?", &[Char], Some(Char)),
    ("char-ci>=?", &[Char], Some(Char)),
    ("char-alphabetic?", &[Char], None),
    ("char-numeric?", &[Char], None),
    ("char-whitespace?", &[Char], None),
    ("char-upper-case?", &[Char], None),
    ("char-lower-case?", &[Char], None),
    ("string->list", &[Str], None),
    ("list->string", &[List], None),
    // vectors
    ("make-vector", &[Size], Some(Any)),
    ("vector", &[], Some(Any)),
    ("vector?", &[Any], None),
    ("vector-ref", &[Vect, Int], None),
    ("vector-set!", &[Vect, Int, Any], None),
    ("vector-length", &[Vect], None),
    ("vector->list", &[Vect], Some(Int)),
    ("list->vector", &[List], None),
    ("vector-fill!", &[Vect, Any], Some(Int)),
    ("vector-copy", &[Vect], Some(Int)),
    ("vector-append", &[], Some(Vect)),
    // ports
    ("open-input-string", &[Str], None),
    ("open-output-string", &[], None),
    ("get-output-string", &[OPort], None),
    ("port?", &[Any], None),
    ("input-port?", &[Any], None),
    ("output-port?", &[Any], None),
    ("read-char", &[IPort], None),
    ("peek-char", &[IPort], None),
    ("read-line", &[IPort], None),
    ("read-string", &[Size, IPort], None),
    ("write-string", &[Str], Some(OPort)),
    ("write-char", &[Char], Some(OPort)),
    ("close-port", &[IPort], None),
    ("eof-object", &[], None),
    ("eof-object?", &[Any], None),
    // string buffers
    ("make-string-buffer", &[], Some(Str)),
    ("string-buffer?", &[Any], None),
    ("string-buffer-append!", &[Buf, Any], Some(Any)),
    ("string-buffer->string", &[Buf], None),
    ("string-buffer-length", &[Buf], None),
    ("string-buffer-clear!", &[Buf], None),
    // coroutines
    ("make-coroutine", &[Func(1)], None),
    ("coroutine-resume", &[Co], Some(Any)),
    ("coroutine-yield", &[], Some(Any)),
    ("coroutine-status", &[Co], None),
    ("coroutine?", &[Any], None),
    ("coroutine-alive?", &[Co], None),
    // sets
    ("make-set", &[], Some(List)),
    ("set?", &[Any], None),
    ("set-member?", &[Set, Any], None),
    ("set-add!", &[Set, Any], None),
    ("set-remove!", &[Set, Any], None),
    ("set-size", &[Set], None),
    ("set->list", &[Set], None),
    ("set-union", &[Set, Set], None),
    ("set-intersection", &[Set, Set], None),
    ("set-difference", &[Set, Set], None),
    // records, ADTs, protocols (from the prologue)
    ("Just", &[Any], None),
    ("Nothing", &[], None),
    ("Just?", &[Any], None),
    ("Just-value", &[Any], None),
    ("make-point", &[Any, Any], None),
    ("point?", &[Any], None),
    ("point-x", &[Any], None),
    ("set-point-y!", &[Any, Any], None),
    ("area", &[Any], None),
    ("satisfies?", &[Str, Any], None),
    ("id1", &[Any], None),
    ("add2", &[Num, Num], None),
    ("restf", &[], Some(Any)),
    ("error-message", &[Any], None),
    // JIT API
    ("jit-set-threshold!", &[Size], None),
    ("jit-stats", &[], None),
    ("jit-report", &[], None),
    ("jit-reset!", &[], None),
    ("jit-reset-counters!", &[], None),
    ("jit-clear-cold!", &[], None),
    ("jit-pin!", &[Func(1)], None),
    ("jit-unpin!", &[Func(1)], None),
    ("jit-set-budget!", &[Int], None),
    ("jit-exclude!", &[], Some(Str)),
];

/// A call of a primitive from the table: usually the declared arity, sometimes one more or
/// one fewer argument.
fn prim_call(ctx: &C) -> S {
    let c = ctx.clone();
    (0..PRIMS.len(), prop_oneof![8 => Just(0i32), 1 => Just(-1i32), 1 => Just(1i32), 1 => 2i32..4])
        .prop_flat_map(move |(i, delta)| {
            let (name, fixed, rest) = PRIMS[i];
            let mut kinds: Vec<K> = fixed.to_vec();
            if delta < 0 {
                kinds.pop();
            } else if let Some(r) = rest {
                // variadic: 0..3 extra arguments of the rest kind
                for _ in 0..delta {
                    kinds.push(r);
                }
            } else {
                for _ in 0..delta {
                    kinds.push(Any);
                }
            }
            let sub = c.sub();
            let mut parts = vec![atom(name)];
            parts.extend(kinds.into_iter().map(|k| arg(&sub, k)));
            form(parts)
        })
        .boxed()
}

/// Any global name called with random arguments.
fn any_global_call(ctx: &C) -> S {
    let c = ctx.clone();
    let mut names = global_names();
    if !ctx.free {
        // inside a body, no name that would call one of its (variable) arguments
        names.retain(|n| !CALLS_ARGUMENTS.contains(n));
    }
    (pick(&names), proptest::collection::vec(lz(move || expr(&c.sub())), 0..4))
        .prop_map(|(h, args)| {
            let mut v = vec![h];
            v.extend(args);
            Sx::L(v)
        })
        .boxed()
}

/// Heads never generated with random arguments (by `any_global_call` and `sf_malformed`),
/// because of known bugs.
const EXCLUDED_HEADS: &[&str] = &[
    // EXCLUDED until fixed: handler-bind hangs when a predicate raises (random clauses often
    // have a non-callable predicate), see sf_handlers.
    "handler-bind",
];

/// Globals that call (some of) their arguments.
const CALLS_ARGUMENTS: &[&str] = &[
    "apply", "map", "map-indexed", "filter", "reduce", "some", "every?", "for-each", "try-call", "call/cc", "call-with-current-continuation", "dynamic-wind",
    "with-exception-handler", "handler-bind", "make-coroutine", "coroutine-resume", "jit-pin!", "jit-unpin!", "sort", "->", "->>", "as->", "eval", "register-reader-macro!",
    "assert-error", "guard", "cond", "case", "implement", "with-fresh-jit", "with-jit-threshold", "reset", "shift", "scope", "provide", "let-match", "match",
];

fn global_names() -> Vec<Name> {
    thread_local! {
        static NAMES: Vec<Name> = {
            let e = sx::Engine::new();
            let mut g = e.global_names();
            // Loops of their own or file access are not what this test is about.
            g.retain(|n| !matches!(n.as_str(), "load" | "defsuite" | "deftest" | "read-file" | "write-file" | "sleep"));
            g.retain(|n| !EXCLUDED_HEADS.contains(&n.as_str()));
            g.sort();
            g.into_iter().map(|n| &*Box::leak(n.into_boxed_str())).collect()
        };
    }
    NAMES.with(|n| n.clone())
}

fn arith(ctx: &C) -> S {
    let c = ctx.clone();
    (pick(&["+", "-", "*", "/", "mod", "max", "min", "expt", "quotient", "abs", "round", "floor", "sqrt"]), proptest::collection::vec(lz(move || kind_value(&c.sub(), Num)), 1..3))
        .prop_map(|(h, args)| {
            let mut v = vec![h];
            v.extend(args);
            Sx::L(v)
        })
        .boxed()
}

fn compare(ctx: &C) -> S {
    let c = ctx.clone();
    (pick(&["=", "<", ">", "<=", "equal?", "eq?", "not", "nil?", "string?", "number?", "empty?"]), proptest::collection::vec(lz(move || expr(&c.sub())), 1..3))
        .prop_map(|(h, args)| {
            let mut v = vec![h];
            v.extend(args);
            Sx::L(v)
        })
        .boxed()
}

// ───────────────────────────── expressions ─────────────────────────────

type Gen = fn(&C) -> S;

fn leaf_atom(_: &C) -> S {
    simple_atom()
}

fn var_call(c: &C) -> S {
    let c2 = c.sub();
    (var_ref(c), proptest::collection::vec(expr(&c2), 0..3))
        .prop_map(|(h, args)| {
            let mut v = vec![h];
            v.extend(args);
            Sx::L(v)
        })
        .boxed()
}

fn head_call(c: &C) -> S {
    // k called with 0-1 arguments
    let c2 = c.sub();
    (pick(&c.heads), proptest::collection::vec(expr(&c2), 0..2))
        .prop_map(|(h, args)| {
            let mut v = vec![h];
            v.extend(args);
            Sx::L(v)
        })
        .boxed()
}

/// The grammar's alternatives for an expression, with weights (leaves first: shrinking moves
/// towards them).
const EXPR_ALTS: &[(u32, Gen)] = &[
    (8, leaf_atom),
    (6, var_ref),
    (22, prim_call),
    (3, |c| kind_value(c, List)),
    (2, |c| dict_lit(&c.sub())),
    (2, |c| kind_value(c, Vect)),
    (2, arith),
    (3, sf_if),
    (1, sf_when),
    (2, sf_cond),
    (1, sf_case),
    (2, sf_and_or),
    (4, sf_let),
    (3, sf_apply_lambda),
    (2, lambda),
    (2, sf_define),
    (2, sf_set),
    (1, sf_begin),
    (2, quasi),
    (3, sf_match),
    (2, sf_guard),
    (2, sf_try_call),
    (1, sf_dynamic_wind),
    (3, sf_reset),
    (2, sf_callcc),
    (1, sf_record),
    (1, sf_define_type),
    (1, sf_jit),
    (2, sf_scope),
    (2, sf_coroutine),
    (2, sf_eval),
    (2, sf_mutation),
    (1, sf_threading),
    (1, sf_handlers),
    (1, sf_loop),
    (1, sf_let_match),
    (1, sf_macro),
    (1, sf_reader_macro),
    (1, sf_malformed),
    (2, any_global_call),
    (1, |c| callable(c, 1)),
];

/// Choose one of weighted generators; only the chosen one is built.
fn choose(alts: Vec<(u32, Gen)>, ctx: &C) -> S {
    let total: u32 = alts.iter().map(|a| a.0).sum();
    let c = ctx.clone();
    (0..total)
        .prop_flat_map(move |mut r| {
            for (w, g) in &alts {
                if r < *w {
                    return g(&c);
                }
                r -= w;
            }
            unreachable!()
        })
        .boxed()
}

fn expr(ctx: &C) -> S {
    if ctx.depth == 0 {
        return choose(vec![(5, leaf_atom as Gen), (4, var_ref)], ctx);
    }
    let mut alts: Vec<(u32, Gen)> = EXPR_ALTS.to_vec();
    if ctx.free {
        // calling a variable (only where no generated function can reach itself)
        alts.push((1, var_call));
    }
    alts.push((if ctx.in_reset { 8 } else { 1 }, sf_shift));
    if ctx.in_coroutine {
        alts.push((6, |c| call_n("coroutine-yield", expr(&c.sub()), 0..2)));
    }
    if !ctx.heads.is_empty() {
        alts.push((6, head_call));
    }
    choose(alts, ctx)
}

fn body(ctx: &C) -> BoxedStrategy<Vec<Sx>> {
    seq_of(expr(ctx), 1..=2)
}

fn with_body(head: Vec<Sx>, body: Vec<Sx>) -> Sx {
    let mut v = head;
    v.extend(body);
    Sx::L(v)
}

fn sf_if(ctx: &C) -> S {
    let c = ctx.sub();
    one(vec![
        (4, call("if", vec![expr(&c), expr(&c), expr(&c)])),
        (2, call("if", vec![expr(&c), expr(&c)])),
        (1, call_n("if", expr(&c), 0..5)),
    ])
}

fn sf_when(ctx: &C) -> S {
    let c = ctx.sub();
    one(vec![(2, call_n("when", expr(&c), 1..4)), (2, call_n("unless", expr(&c), 1..4)), (1, call_n("my-when", expr(&c), 0..4))])
}

fn sf_cond(ctx: &C) -> S {
    let c = ctx.sub();
    let c2 = c.clone();
    let flat = (proptest::collection::vec((expr(&c), expr(&c)), 0..3), proptest::option::of((pick(&[":else", "else", "true"]), expr(&c))))
        .prop_map(|(pairs, els)| {
            let mut v = vec![a("cond")];
            for (t, e) in pairs {
                v.push(t);
                v.push(e);
            }
            if let Some((k, e)) = els {
                v.push(k);
                v.push(e);
            }
            Sx::L(v)
        })
        .boxed();
    let clause = one(vec![
        (4, (expr(&c), expr(&c)).prop_map(|(t, e)| l(vec![t, e])).boxed()),
        (1, (expr(&c), lz(move || callable(&c2, 1))).prop_map(|(t, f)| l(vec![t, a("=>"), f])).boxed()),
        (1, expr(&c).prop_map(|t| l(vec![t])).boxed()),
        (1, (pick(&["else", ":else"]), expr(&c)).prop_map(|(k, e)| l(vec![k, e])).boxed()),
    ]);
    let scheme = seq_of(clause, 0..=3).prop_map(|cs| with_body(vec![a("cond")], cs)).boxed();
    one(vec![(1, flat), (1, scheme)])
}

fn sf_case(ctx: &C) -> S {
    let c = ctx.sub();
    let clause = (one(vec![(3, datum(1).prop_map(|x| l(vec![x])).boxed()), (2, seq_of(datum(0), 0..=3).prop_map(Sx::L).boxed()), (1, datum(0)), (1, pick(&["else", ":else"]))]), body(&c))
        .prop_map(|(d, b)| with_body(vec![d], b))
        .boxed();
    (expr(&c), seq_of(clause, 0..=3)).prop_map(|(k, cs)| with_body(vec![a("case"), k], cs)).boxed()
}

fn sf_and_or(ctx: &C) -> S {
    let c = ctx.sub();
    (pick(&["and", "or"]), seq_of(expr(&c), 0..=4)).prop_map(|(h, xs)| with_body(vec![h], xs)).boxed()
}

fn sf_let(ctx: &C) -> S {
    let c = ctx.clone();
    (pick(&["let", "let", "let*", "letrec", "letrec*"]), proptest::collection::vec(local_name(), 0..4), any::<bool>())
        .prop_flat_map(move |(head, mut names, brackets)| {
            let h = match &head {
                Sx::A(s) => s.clone(),
                _ => unreachable!(),
            };
            if h.starts_with("letrec") {
                // letrec names are never primitive names (no self-call through a shadowed prim)
                names.retain(|n| !SHADOW_NAMES.contains(n));
            }
            let sub = c.sub();
            let inits: Vec<S> = names
                .iter()
                .map(|_| if h.starts_with("letrec") { one(vec![(1, expr(&sub.body())), (1, lambda(&sub))]) } else { expr(&sub) })
                .collect();
            let bc = sub.with_vars(&names);
            (Just(head), Just(names), inits, body(&bc), Just(brackets))
        })
        .prop_map(|(head, names, inits, body, brackets)| {
            let binds: Vec<Sx> = names
                .into_iter()
                .zip(inits)
                .map(|(n, i)| if brackets { Sx::B(vec![a(n), i]) } else { l(vec![a(n), i]) })
                .collect();
            with_body(vec![head, l(binds)], body)
        })
        .boxed()
}

/// `((fn (params) body) args...)` and `(apply (fn ...) (list ...))`.
fn sf_apply_lambda(ctx: &C) -> S {
    let c = ctx.sub();
    // mostly as many arguments as the lambda has parameters
    (lambda(ctx), prop_oneof![6 => Just(0i32), 1 => -1i32..2], any::<bool>())
        .prop_flat_map(move |(f, delta, via_apply)| {
            let n = match &f {
                Sx::L(v) => match v.get(1) {
                    Some(Sx::L(ps)) => ps.iter().filter(|p| !matches!(p, Sx::A(s) if s.starts_with('&'))).count(),
                    _ => 1,
                },
                _ => 1,
            };
            let n = (n as i32 + delta).max(0) as usize;
            (Just(f), seq_of(expr(&c), n..=n), Just(via_apply))
        })
        .prop_map(|(f, args, via_apply)| {
            if via_apply {
                l(vec![a("apply"), f, with_body(vec![a("list")], args)])
            } else {
                with_body(vec![f], args)
            }
        })
        .boxed()
}

/// Targets of define and set!: never the fixed functions.
fn target(ctx: &C) -> S {
    one(vec![(8, pick(&ctx.vars.clone())), (1, pick(&["zz-unbound", "nil", "1", "\"s\"", "if", "+"]))])
}

fn sf_define(ctx: &C) -> S {
    let c = ctx.sub();
    let c2 = ctx.clone();
    one(vec![
        (3, (target(ctx), expr(&c)).prop_map(|(t, e)| l(vec![a("define"), t, e])).boxed()),
        (
            2,
            (target(ctx), params())
                .prop_flat_map(move |(t, (ps, names))| {
                    let bc = c2.body().with_vars(&names);
                    (Just(t), Just(ps), body(&bc))
                })
                .prop_map(|(t, ps, b)| {
                    let sig = match ps {
                        Sx::L(mut xs) => {
                            xs.insert(0, t);
                            Sx::L(xs)
                        }
                        other => l(vec![t, other]),
                    };
                    with_body(vec![a("define"), sig], b)
                })
                .boxed(),
        ),
    ])
}

fn sf_set(ctx: &C) -> S {
    let c = ctx.sub();
    (target(ctx), expr(&c)).prop_map(|(t, e)| l(vec![a("set!"), t, e])).boxed()
}

fn sf_begin(ctx: &C) -> S {
    let c = ctx.sub();
    (pick(&["begin", "do"]), seq_of(expr(&c), 0..=3)).prop_map(|(h, xs)| with_body(vec![h], xs)).boxed()
}

/// Quasiquote templates with unquote and splicing, sometimes nested.
fn quasi(ctx: &C) -> S {
    let c = ctx.sub();
    fn template(c: &C, depth: u32) -> S {
        let c1 = c.clone();
        let c2 = c.clone();
        let mut alts = vec![
            (4, datum(0)),
            (3, lz(move || expr(&c1).prop_map(|x| Sx::P(",", Box::new(x))).boxed())),
            (2, lz(move || kind_value(&c2, List).prop_map(|x| Sx::P(",@", Box::new(x))).boxed())),
            (1, pick(&[",@5", ",@nil", ",@\"str\"", ",x-unbound", "(unquote)", "(splice-unquote lst)", "(unquote-splicing lst)", ",@(vector 1 2)"])),
        ];
        if depth > 0 {
            let c3 = c.clone();
            alts.push((2, lz(move || seq_of(template(&c3, depth - 1), 0..=4).prop_map(Sx::L).boxed())));
            let c4 = c.clone();
            alts.push((1, lz(move || seq_of(template(&c4, depth - 1), 0..=4).prop_map(|mut xs| { if xs.len() % 2 == 1 { xs.pop(); } Sx::D(xs) }).boxed())));
            let c5 = c.clone();
            alts.push((1, lz(move || template(&c5, depth - 1).prop_map(|x| Sx::P("`", Box::new(x))).boxed())));
        }
        one(alts)
    }
    one(vec![
        (5, seq_of(template(&c, 2), 0..=4).prop_map(|xs| Sx::P("`", Box::new(Sx::L(xs)))).boxed()),
        (1, template(&c, 1).prop_map(|x| Sx::P("`", Box::new(x))).boxed()),
        (1, seq_of(template(&c, 1), 0..=3).prop_map(|xs| l(vec![a("quasiquote"), Sx::L(xs)])).boxed()),
    ])
}

/// A match pattern and the variables it binds.
fn pattern(depth: u32) -> BoxedStrategy<(Sx, Vec<Name>)> {
    let leaf = one_s(vec![
        (3, simple_atom().prop_map(|x| (x, vec![])).boxed()),
        (2, Just((a("_"), vec![])).boxed()),
        (4, local_name().prop_map(|n| (a(n), vec![n])).boxed()),
        (1, pick(&["'foo", "'(1 2)", "nil", "(Nothing)", "&rest", "(quote)", "[]", "{}"]).prop_map(|x| (x, vec![])).boxed()),
    ]);
    if depth == 0 {
        return leaf;
    }
    let join = |ps: Vec<(Sx, Vec<Name>)>| {
        let mut names = vec![];
        let mut xs = vec![];
        for (p, ns) in ps {
            xs.push(p);
            names.extend(ns);
        }
        (xs, names)
    };
    one_s(vec![
        (4, leaf),
        (3, proptest::collection::vec(pattern(depth - 1), 0..4).prop_map(move |ps| { let (xs, ns) = join(ps); (Sx::L(xs), ns) }).boxed()),
        (
            2,
            (proptest::collection::vec(pattern(depth - 1), 0..3), local_name())
                .prop_map(move |(ps, r)| {
                    let (mut xs, mut ns) = join(ps);
                    xs.push(a("&rest"));
                    xs.push(a(r));
                    ns.push(r);
                    (Sx::L(xs), ns)
                })
                .boxed(),
        ),
        (
            2,
            proptest::collection::vec((keyword_lit(), pattern(depth - 1)), 0..3)
                .prop_map(|kps| {
                    let mut xs = vec![];
                    let mut ns = vec![];
                    for (k, (p, n)) in kps {
                        xs.push(k);
                        xs.push(p);
                        ns.extend(n);
                    }
                    (Sx::D(xs), ns)
                })
                .boxed(),
        ),
        (
            2,
            (pick(&["Just", "Nothing", "make-point", "Left", "Unknown-ctor"]), proptest::collection::vec(pattern(depth - 1), 0..3))
                .prop_map(move |(c, ps)| {
                    let (mut xs, ns) = join(ps);
                    xs.insert(0, c);
                    (Sx::L(xs), ns)
                })
                .boxed(),
        ),
    ])
}

fn match_clauses(ctx: &C, n: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<Sx>> {
    let c = ctx.clone();
    let clause = pattern(2)
        .prop_flat_map(move |(p, names)| {
            let bc = c.with_vars(&names);
            (Just(p), body(&bc))
        })
        .prop_map(|(p, b)| with_body(vec![p], b))
        .boxed();
    seq_of(clause, n)
}

fn sf_match(ctx: &C) -> S {
    let c = ctx.sub();
    let subject = one(vec![
        (3, expr(&c)),
        (2, pick(&["mb", "(Nothing)", "(list 1 2 3)", "{:a 1 :b (list 2)}", "pt", "'foo", "(Just (Just 2))"])),
    ]);
    (subject, match_clauses(&c, 0..=3)).prop_map(|(s, cs)| with_body(vec![a("match"), s], cs)).boxed()
}

fn sf_let_match(ctx: &C) -> S {
    let c = ctx.sub();
    let c2 = c.clone();
    (pattern(2), expr(&c))
        .prop_flat_map(move |((p, names), v)| (Just(p), Just(v), body(&c2.with_vars(&names))))
        .prop_map(|(p, v, b)| with_body(vec![a("let-match"), p, v], b))
        .boxed()
}

fn sf_guard(ctx: &C) -> S {
    let c = ctx.sub();
    let hc = c.with_vars(&["e"]);
    let clause = one(vec![
        (3, (compare(&hc), body(&hc)).prop_map(|(t, b)| with_body(vec![t], b)).boxed()),
        (2, body(&hc).prop_map(|b| with_body(vec![a("else")], b)).boxed()),
        (1, (expr(&hc), lz(|| pick(&["id1", "inc", "type-of"]))).prop_map(|(t, f)| l(vec![t, a("=>"), f])).boxed()),
        // (fixed in f854f31: a clause that is not a non-empty list panicked in the analyser)
        (1, datum(1)),
    ]);
    let raising = one(vec![
        (3, expr(&c)),
        (2, (pick(&["error", "raise", "raise-continuable"]), expr(&c)).prop_map(|(h, x)| l(vec![h, x])).boxed()),
        (1, pick(&["(car 1)", "(/ 1 0)", "(vector-ref v 99)", "(assert false)", "(match 1)", "(error \"a\" 1 \"b\" (list 2))"])),
    ]);
    (pick(&["e", "e", "err"]), seq_of(clause, 0..=3), seq_of(raising, 1..=2))
        .prop_map(|(var, cs, b)| {
            let mut spec = vec![var];
            spec.extend(cs);
            with_body(vec![a("guard"), Sx::L(spec)], b)
        })
        .boxed()
}

fn thunk(ctx: &C) -> S {
    let bc = ctx.body();
    body(&bc).prop_map(|b| with_body(vec![a("fn"), l(vec![])], b)).boxed()
}

fn sf_try_call(ctx: &C) -> S {
    let c = ctx.clone();
    one(vec![
        (4, call("try-call", vec![thunk(ctx)])),
        (1, lz(move || call("try-call", vec![callable(&c, 0)]))),
        (1, call("get", vec![call("try-call", vec![thunk(ctx)]), pick(&[":error", ":value", ":ok"])])),
    ])
}

fn sf_dynamic_wind(ctx: &C) -> S {
    call("dynamic-wind", vec![thunk(ctx), thunk(ctx), thunk(ctx)])
}

fn sf_reset(ctx: &C) -> S {
    let mut c = (*ctx.body()).clone();
    c.in_reset = true;
    let c = Rc::new(c);
    body(&c).prop_map(|b| with_body(vec![a("reset")], b)).boxed()
}

/// `(shift k body)`: k is head-only; it may be called 0-2 times, and stored in a lambda.
fn sf_shift(ctx: &C) -> S {
    let mut c = (*ctx.body()).clone();
    c.in_reset = false;
    let c = Rc::new(c).with_head("k");
    let c2 = c.clone();
    let kbody = one(vec![
        (3, expr(&c)),
        (1, lz(move || { let b = c2.body(); body(&b).prop_map(|b| with_body(vec![a("fn"), l(vec![a("x")])], b)).boxed() })),
        (1, pick(&["(k 1)", "(+ (k 1) (k 2))", "(list (k 0) (k 1))", "(k (k 1))", "(k)", "(k 1 2)"])),
    ]);
    (kbody, proptest::option::of(expr(&c)))
        .prop_map(|(b, extra)| {
            let mut v = vec![a("shift"), a("k"), b];
            v.extend(extra);
            Sx::L(v)
        })
        .boxed()
}

/// `(call/cc (fn (k) body))`: k only called directly, never escapes.
fn sf_callcc(ctx: &C) -> S {
    let c = ctx.body().with_head("ret");
    (pick(&["call/cc", "call/cc", "call-with-current-continuation"]), body(&c))
        .prop_map(|(h, b)| l(vec![h, with_body(vec![a("fn"), l(vec![a("ret")])], b)]))
        .boxed()
}

fn sf_record(ctx: &C) -> S {
    let c = ctx.sub();
    let fields = proptest::collection::vec(select(vec!["f1", "f2", "f3"]), 0..3);
    let shape = fields.prop_map(|fs| {
        let mut fs = fs;
        fs.dedup();
        let ctor = with_body(vec![a("make-rec")], fs.iter().map(|f| a(f)).collect());
        let mut v = vec![a("define-record-type"), a("<rec>"), ctor, a("rec?")];
        for f in &fs {
            v.push(l(vec![a(f), a(&format!("rec-{f}")), a(&format!("set-rec-{f}!"))]));
        }
        (Sx::L(v), fs.len())
    });
    let bad = pick(&[
        "(define-record-type <rec>)",
        "(define-record-type <rec> (make-rec f1) rec? (f2 rec-f2))",
        "(define-record-type <rec> make-rec rec?)",
        "(define-record-type 1 2 3 4)",
        "(define-record-type <rec> (make-rec f1 f1) rec? (f1 rec-f1))",
        "(define-record-type <rec> (make-rec) rec? (f1))",
        // (fixed in f854f31: exactly two arguments panicked in the analyser)
        "(define-record-type <rec> (make-rec))",
        "(define-record-type b l)",
    ]);
    let c2 = c.clone();
    one(vec![
        (
            4,
            shape
                .prop_flat_map(move |(def, nf)| (Just(def), proptest::collection::vec(expr(&c2), nf.saturating_sub(1)..nf + 2), expr(&c2)))
                .prop_map(|(def, args, other)| {
                    let mk = with_body(vec![a("make-rec")], args);
                    l(vec![
                        a("begin"),
                        def,
                        l(vec![a("define"), a("m1"), mk]),
                        l(vec![a("list"), l(vec![a("rec?"), a("m1")]), l(vec![a("rec?"), other.clone()]), l(vec![a("inspect"), a("m1")]), l(vec![a("type-of"), a("m1")])]),
                        l(vec![a("rec-f1"), a("m1")]),
                        l(vec![a("set-rec-f1!"), a("m1"), other.clone()]),
                        l(vec![a("rec-f1"), other]),
                        l(vec![a("equal?"), a("m1"), a("m1")]),
                    ])
                })
                .boxed(),
        ),
        (1, bad),
    ])
}

fn sf_define_type(ctx: &C) -> S {
    let c = ctx.sub();
    let variants = pick(&[
        "(define-type Shape2 (Circle r) (Rect w h) (Dot))",
        "(define-type T1 (A1 x) (B1))",
        "(define-type T2 (C2 a b c))",
        "(define-type T3)",
        "(define-type T4 A4)",
        "(define-type T5 (Just q))",
        "(define-type 5 (X))",
        "(define-type T6 (D6 x x))",
    ]);
    let values = pick(&["(Circle 2)", "(Rect 1 2)", "(Dot)", "(A1 5)", "(B1)", "(C2 1 2 3)", "(Circle)", "(Rect 1)", "(A4)", "mb", "pt", "1", "(Just 3)"]);
    let c2 = c.clone();
    (variants, values, match_clauses(&c, 1..=3), lz(move || expr(&c2)))
        .prop_map(|(def, val, clauses, e)| {
            l(vec![
                a("begin"),
                def,
                with_body(vec![a("match"), val.clone()], clauses),
                l(vec![a("list"), l(vec![a("type-of"), val.clone()]), l(vec![a("inspect"), val.clone()]), l(vec![a("Circle?"), e]), l(vec![a("Circle-r"), val])]),
            ])
        })
        .boxed()
}

fn sf_jit(ctx: &C) -> S {
    let c = ctx.sub();
    one(vec![
        (3, (kind_value(&c, Int), body(&c)).prop_map(|(n, b)| with_body(vec![a("with-jit-threshold"), n], b)).boxed()),
        (1, body(&c).prop_map(|b| with_body(vec![a("with-fresh-jit")], b)).boxed()),
        (
            2,
            (pick(&["1", "0", "2", "-1", "1.5", "\"x\""]), lambda(&c), seq_of(expr(&c), 0..=2)).prop_map(|(n, f, args)| {
                // a lambda called a few times under a low threshold, to cross into compiled code
                let callv = l(vec![a("apply"), a("m1"), with_body(vec![a("list")], args)]);
                l(vec![a("with-jit-threshold"), n, l(vec![a("set!"), a("m1"), f]), callv.clone(), callv.clone(), callv, l(vec![a("jit-stats")])])
            })
            .boxed(),
        ),
        (1, pick(&["(jit-report)", "(jit-reset!)", "(jit-clear-cold!)", "(jit-set-budget! 0)", "(jit-set-budget! -1)", "(jit-exclude! \"m*\" \"*\")", "(with-jit-threshold)", "(with-jit-threshold nil 1)"])),
    ])
}

fn with_body1(head: &'static str, parts: Vec<Sx>, b: Vec<Sx>) -> Sx {
    let mut v = vec![a(head)];
    v.extend(parts);
    v.extend(b);
    Sx::L(v)
}

fn sf_scope(ctx: &C) -> S {
    let c = ctx.sub();
    let name = || one(vec![(4, pick(&["\"nm\"", ":nm", "\"other\""])), (1, pick(&["nil", "1", "'sym", "s"]))]);
    one(vec![
        (3, (name(), expr(&c), body(&c)).prop_map(|(n, v, b)| with_body1("scope", vec![n, a(":value"), v], b)).boxed()),
        (2, (name(), body(&c)).prop_map(|(n, b)| with_body1("scope", vec![n], b)).boxed()),
        (3, (name(), expr(&c), body(&c)).prop_map(|(n, v, b)| with_body1("provide", vec![n, v], b)).boxed()),
        (2, (name(), proptest::option::of(expr(&c))).prop_map(|(n, d)| with_body1("context", vec![n], d.into_iter().collect())).boxed()),
        (2, (name(), expr(&c)).prop_map(|(n, v)| l(vec![a("emit!"), n, v])).boxed()),
        (2, name().prop_map(|n| l(vec![a("emitted"), n])).boxed()),
        (1, pick(&["(scope)", "(provide \"nm\")", "(context)", "(emit! \"nm\")", "(scope \"nm\" :value)"])),
    ])
}

fn coroutine_make(ctx: &C) -> S {
    let mut c = (*ctx.body()).clone();
    c.in_coroutine = true;
    let c = Rc::new(c);
    (params(), Just(c))
        .prop_flat_map(|((ps, names), c)| (Just(ps), body(&c.with_vars(&names))))
        .prop_map(|(ps, b)| l(vec![a("make-coroutine"), with_body(vec![a("fn"), ps], b)]))
        .boxed()
}

fn sf_coroutine(ctx: &C) -> S {
    let c = ctx.sub();
    let resume = move |c: &C| call_n("coroutine-resume", expr(c), 0..2).prop_map(|x| match x {
        Sx::L(mut v) => {
            v.insert(1, a("c"));
            Sx::L(v)
        }
        o => o,
    });
    let bc = c.with_vars(&["c"]);
    (coroutine_make(&c), proptest::collection::vec(one(vec![(4, resume(&bc).boxed()), (1, pick(&["(coroutine-status c)", "(coroutine-alive? c)", "(coroutine? c)", "(inspect c)"]))]), 1..5))
        .prop_map(|(mk, uses)| l(vec![a("let"), l(vec![l(vec![a("c"), mk])]), with_body(vec![a("list")], uses)]))
        .boxed()
}

fn sf_eval(ctx: &C) -> S {
    let c = ctx.sub();
    let c2 = c.clone();
    one(vec![
        (3, call("eval", vec![kind_value(&c, Form)])),
        (2, lz(move || {
            // eval of the text of a generated form
            expr(&Ctx::top(2).body()).prop_map(|x| l(vec![a("eval"), l(vec![a("first"), l(vec![a("sx-parse"), sx_string(&x.to_string())])])])).boxed()
        })),
        (1, string_lit().prop_map(|s| l(vec![a("sx-parse"), s])).boxed()),
        (1, pick(&["(eval 'zz)", "(eval '(define m1 5))", "(eval (list '+ 1 2))", "(eval (list 'quote (list 1 2)))", "(eval '(fn (x) x))", "(eval)", "(eval 1 2)", "(sx-parse \"(1 2\")", "(sx-parse \"#unknown 1\")"])),
        // code made of values that no reader produces
        (
            2,
            pick(&[
                "(eval (list id1 1))", "(eval (list + 1 2))", "(eval (list 'if (vector 1) 2 3))", "(eval (list 'quote v))", "(eval {:a (list '+ 1 2)})",
                "(eval (vector '+ 1 2))", "(eval (list 'fn (vector 'x) 'x))", "(eval (list 'define (string->symbol \"\") 1))",
                "(eval (list (string->symbol \"if\") 1 2 3))", "(eval (list 'let (list (list pt 1)) 2))", "(eval (list 'let (list (list 'x pt)) 'x))",
                "(eval (list (reset (shift k k)) 5))", "(eval (list 'match 1 (list pt 2)))", "(eval (list 'fn (list (gensym)) 1))",
                "(eval (list 'define (list 'm1 (make-symbol \"a b\")) 1))", "(eval (list ':k 1))", "(eval (list 'quasiquote (list 'unquote (list '+ 1 2))))",
                "(eval (list 'case 1 (list (vector 1) 2)))", "(eval (list 'cond (list (make-set) 1)))", "(eval (list 'let* (list (list 'a 1) (list 'a 'a)) 'a))",
                "(eval (list 'define-type 'T9 (list 'C9 (string->symbol \"\"))))", "(eval (list 'shift 'k (list 'k 1)))", "(eval (list 'coroutine-yield 1))",
                "(eval (list 'lambda (list '&rest) 1))", "(eval (list (string->symbol \"&rest\")))", "(eval (list 'set! (string->symbol \"m1\") co))",
                "(eval (list 'scope (make-set) 1))", "(eval (list 'with-jit-threshold (/ 0.0 0.0) 1))", "(eval (list 'emit! ip 1))",
            ]),
        ),
        // (fixed in f854f31: evaluating a cyclic form overflowed the Rust stack)
        (1, lz(move || call("eval", vec![quasi(&c2)]))),
    ])
}

/// Mutation, including of data reachable from itself (cycles).
fn sf_mutation(ctx: &C) -> S {
    let c = ctx.sub();
    let observe = pick(&[
        "(inspect lst)", "(str lst)", "(equal? lst (list-copy lst))", "(= lst lst)", "(len lst)", "(json-encode lst)", "(flatten lst)", "(reverse lst)",
        "(sort lst)", "(inspect d)", "(json-encode d)", "(equal? d (merge d))", "(str d)", "(keys d)", "(inspect v)", "(vector->list v)", "(equal? v v)",
        "(list->vector lst)", "(concat lst lst)", "(contains? lst lst)", "(index-of lst lst)", "(set-add! st lst)", "(make-set lst)", "(string-buffer-append! sb lst)",
        "(inspect (list lst d v))", "(escape lst)", "(display d)", "(apply + lst)", "(map id1 lst)", "(zip lst lst)", "(chunk-every lst 2)",
        "(sx-parse (inspect lst))", "(assoc d \"z\" d)", "(dict-set! d \"z\" lst)", "(append! lst d)", "(equal? lst d)", "(join \",\" lst)",
        "(eval lst)", "(eval d)", "(eval v)",
    ]);
    let mutate = one(vec![
        (2, (kind_value(&c, List), expr(&c)).prop_map(|(x, y)| l(vec![a("append!"), x, y])).boxed()),
        (2, (kind_value(&c, Dict), keyword_or_str(), expr(&c)).prop_map(|(x, k, y)| l(vec![a("dict-set!"), x, k, y])).boxed()),
        (2, (kind_value(&c, Vect), kind_value(&c, Int), expr(&c)).prop_map(|(x, i, y)| l(vec![a("vector-set!"), x, i, y])).boxed()),
        (3, pick(&["(append! lst lst)", "(dict-set! d \"self\" d)", "(vector-set! v 0 v)", "(append! lst d)", "(dict-set! d \"l\" lst)", "(vector-set! v 1 lst)", "(append! m3 m3)", "(set-add! st st)", "(set-point-y! pt pt)", "(append! lst v)"])),
    ]);
    (seq_of(mutate, 1..=2), seq_of(observe, 1..=2)).prop_map(|(ms, os)| {
        let mut v = vec![a("list")];
        v.extend(ms);
        v.extend(os);
        Sx::L(v)
    })
    .boxed()
}

fn sf_threading(ctx: &C) -> S {
    let c = ctx.sub();
    let fixed_steps = pick(&["inc", "str", "list", "first", "len", "reverse", "(+ 1)", "(str \"a\")", "(list 1 2)", "(get \"a\")", "(nth 0)", "(map inc)", "id1"]);
    // a step is called: an arbitrary expression only where variables may be called
    let step = if ctx.free { one(vec![(3, fixed_steps), (1, expr(&c))]) } else { fixed_steps };
    one(vec![
        (2, (pick(&["->", "->>"]), expr(&c), seq_of(step, 0..=3)).prop_map(|(h, x, ss)| with_body(vec![h, x], ss)).boxed()),
        (1, (expr(&c), seq_of(pick(&["(+ x 1)", "(list x x)", "(str x)", "x", "(inc x)"]), 0..=3)).prop_map(|(x, ss)| with_body(vec![a("as->"), x, a("x")], ss)).boxed()),
    ])
}

fn sf_handlers(ctx: &C) -> S {
    let c = ctx.sub();
    let handler = one(vec![
        (3, lambda(&c)),
        (1, pick(&["(fn (e) 10)", "(fn (e) (raise e))", "(fn (e) (error \"again\"))", "(fn (e) e)", "id1", "(fn () 1)"])),
    ]);
    // EXCLUDED until fixed: predicates that raise (or are not callable). A raise inside a
    // handler-bind predicate is handled by the same handler-bind again, which runs the same
    // predicate again: `(handler-bind (((fn (e) (raise 'x)) (fn (e) 1))) (raise 1))` and
    // `(handler-bind ((1 (fn (e) 1))) (raise 1))` hang, also inside try-call. Re-enable:
    // "1", "(fn (e) (raise 'p))", "(fn (e) (car e))"
    let pred = pick(&["(fn (e) true)", "(fn (e) 1)", "number?", "string?", "(fn (e) false)", "id1", "error-object?", "nil?"]);
    let raising = one(vec![
        (3, expr(&c)),
        (3, (pick(&["raise", "raise-continuable", "error"]), simple_atom()).prop_map(|(h, x)| l(vec![h, x])).boxed()),
        (1, (pick(&["raise", "raise-continuable"]), simple_atom()).prop_map(|(h, x)| l(vec![a("+"), a("1"), l(vec![h, x])])).boxed()),
    ]);
    one(vec![
        (2, (seq_of((pred, handler.clone()).prop_map(|(p, h)| l(vec![p, h])).boxed(), 0..=2), seq_of(raising.clone(), 1..=2)).prop_map(|(hs, b)| with_body(vec![a("handler-bind"), Sx::L(hs)], b)).boxed()),
        (2, (handler, raising).prop_map(|(h, b)| l(vec![a("with-exception-handler"), h, l(vec![a("fn"), l(vec![]), b])])).boxed()),
    ])
}

/// Counter-bounded loops: named let, `do`, and letrec recursion.
fn sf_loop(ctx: &C) -> S {
    let bc = ctx.body().with_ro("i").with_vars(&["acc"]);
    let c = ctx.sub();
    (0u32..3, 0i64..6, expr(&c), expr(&bc), any::<bool>())
        .prop_map(|(shape, bound, init, step, tail)| {
            let n = bound.to_string();
            match shape {
                0 => Sx::A(format!("(let lp ((i 0) (acc {init})) (if (< i {n}) (lp (+ i 1) {step}) acc))")),
                1 => Sx::A(format!("(do ((i 0 (+ i 1)) (acc {init} {step})) ((>= i {n}) acc))")),
                _ => {
                    if tail {
                        Sx::A(format!("(letrec ((lp (fn (i acc) (if (< i {n}) (lp (+ i 1) {step}) acc)))) (lp 0 {init}))"))
                    } else {
                        Sx::A(format!("(letrec ((lp (fn (i acc) (if (< i {n}) (cons {step} (lp (+ i 1) acc)) (list acc))))) (lp 0 {init}))"))
                    }
                }
            }
        })
        .boxed()
}

fn sf_macro(ctx: &C) -> S {
    let c = ctx.sub();
    let tmpl = pick(&[
        "`(list ,a ,@r)", "`(if ,a (begin ,@r) nil)", "`(+ ,a 1)", "(list 'quote a)", "a", "r", "`(,a)", "`(let ((tmp ,a)) (list tmp ,@r))", "`(,@r)",
        "(error \"in macro\")", "(car a)", "`(fn (x) ,a)", "`(define ,a 1)", "`(quote ,r)",
    ]);
    (tmpl, seq_of(expr(&c), 0..=3), any::<bool>())
        .prop_map(|(t, args, rest)| {
            let ps = if rest { "(a &rest r)" } else { "(a)" };
            l(vec![a("begin"), Sx::A(format!("(defmacro mac1 {ps} {t})")), with_body(vec![a("mac1")], args), a("(macro? mac1)")])
        })
        .boxed()
}

fn sf_reader_macro(ctx: &C) -> S {
    let c = ctx.sub();
    (pick(&[
        "(fn (x) (list '* 2 x))", "(fn (x) x)", "(fn (x) (error \"rm\"))", "(fn () 1)", "(fn (x) (list 'quote x))", "5", "(fn (x) (fn () x))",
        "(fn (x) {:a x})", "(fn (x) (vector x))", "(fn (x) (reset (shift k k)))", "(fn (x) (list (fn (y) y) x))", "(fn (x) (make-coroutine (fn () x)))",
        "(fn (x) (coroutine-yield x))", "(fn (x) (shift k (k x)))", "(fn (x) ip)",
        // EXCLUDED until fixed: a handler that parses text using its own macro recurses on the
        // Rust stack until it overflows (process abort), see runaway_recursion. Re-enable:
        // "(fn (x) (sx-parse \"#dbl 1\"))",
    ]), pick(&["\"#dbl 3\"", "\"#dbl\"", "\"#dbl #dbl (+ 1 2)\"", "\"(list #dbl 1 #other 2)\"", "\"#dbl )\""]), expr(&c))
        .prop_map(|(h, src, e)| l(vec![a("begin"), l(vec![a("register-reader-macro!"), a("\"dbl\""), h]), l(vec![a("sx-parse"), src.clone()]), l(vec![a("eval"), l(vec![a("first"), l(vec![a("sx-parse"), src.clone()])])]), e]))
        .boxed()
}

/// Special-form heads with random, usually ill-shaped arguments.
fn sf_malformed(_ctx: &C) -> S {
    let heads: &[&'static str] = &[
        "if", "when", "unless", "cond", "case", "and", "or", "let", "let*", "letrec", "letrec*", "fn", "lambda", "define", "set!", "begin", "do", "quote", "quasiquote",
        "unquote", "splice-unquote", "unquote-splicing", "match", "let-match", "guard", "handler-bind", "reset", "shift", "call/cc", "dynamic-wind", "scope", "provide",
        "context", "emit!", "emitted", "define-record-type", "define-type", "defmacro", "defcomp", "define-protocol", "implement", "satisfies?", "->", "->>", "as->",
        "with-jit-threshold", "with-fresh-jit", "try-call", "apply", "map", "reduce", "filter", "eval", "make-coroutine", "coroutine-resume",
    ];
    let heads: Vec<&'static str> = heads.iter().copied().filter(|h| !EXCLUDED_HEADS.contains(h)).collect();
    (pick(&heads), seq_of(datum(2), 0..=4)).prop_map(|(h, args)| with_body(vec![h], args)).boxed()
}

/// A top-level program of one to four forms.
fn program() -> BoxedStrategy<Program> {
    let top = one(vec![(6, expr(&Ctx::top(4))), (2, expr(&Ctx::top(2))), (1, lz(|| sf_malformed(&Ctx::top(1))))]);
    proptest::collection::vec(top, 1..5).prop_map(Program).boxed()
}

// ───────────────────────────── running a case ─────────────────────────────

struct Watch {
    started: Instant,
    source: String,
    /// The engine's interrupt flag, once it exists.
    interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Set when the watchdog had to interrupt the case.
    interrupted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

static WATCH: Mutex<Option<HashMap<std::thread::ThreadId, Watch>>> = Mutex::new(None);
static INIT: Once = Once::new();

thread_local! {
    static IN_CASE: RefCell<bool> = const { RefCell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn hang_limit() -> Duration {
    Duration::from_secs(std::env::var("SX_FUZZ_HANG_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20))
}

fn init() {
    INIT.call_once(|| {
        *WATCH.lock().unwrap() = Some(HashMap::new());
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(|c| *c.borrow()) {
                let loc = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
                let msg = panic_text(info.payload());
                let bt = std::backtrace::Backtrace::force_capture().to_string();
                let frames: Vec<&str> = bt
                    .lines()
                    .filter(|l| l.contains("sx_") && !l.contains("fuzz_eval"))
                    .map(|l| l.trim())
                    .take(8)
                    .collect();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}\n  at {loc}\n  frames: {}", frames.join(" <- "))));
            } else {
                default_hook(info);
            }
        }));
        let limit = hang_limit();
        // A case running longer than a quarter of the limit is interrupted (Engine's interrupt
        // flag, set again and again: it is one-shot); it then fails as a hang and is minimised
        // like a panic. A case that does not stop even so ends the process at the limit.
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let guard = WATCH.lock().unwrap();
            if let Some(map) = guard.as_ref() {
                for w in map.values() {
                    let t = w.started.elapsed();
                    if t > limit {
                        eprintln!("\n=== HANG: a case ran longer than {limit:?} and did not stop when interrupted; source:\n{}\n===", w.source);
                        std::process::exit(3);
                    }
                    if t > limit / 4 {
                        if let Some(flag) = &w.interrupt {
                            w.interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                            flag.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
            }
        });
    });
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".into()
    }
}

#[derive(Default)]
struct Stats {
    cases: usize,
    ok: usize,
    errors: HashMap<String, usize>,
    /// Cases during which the collector ran (with `gc_slack`).
    collections: usize,
    slowest: Vec<(Duration, String)>,
}

thread_local! {
    static STATS: RefCell<Stats> = RefCell::new(Stats::default());
}

fn error_shape(m: &str) -> String {
    let m: String = m.chars().take(60).map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    let mut parts = m.splitn(3, ':');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    format!("{a}:{}", b.chars().take(30).collect::<String>())
}

/// Evaluate `src` in a fresh engine, checking that nothing panics and the engine stays usable.
/// How a case is run: after the prologue or in a bare engine, and optionally with the heap
/// brought to within `gc_slack` allocations of a collection, so that the collector runs in the
/// middle of the case (the default interval is 100 000 allocations: small programs never reach
/// it on their own).
#[derive(Clone, Copy, Debug)]
struct Setup {
    prologue: bool,
    gc_slack: Option<u32>,
    /// Evaluate the top-level forms one `eval_str` at a time, going on after errors.
    repl: bool,
}

const PRO: Setup = Setup { prologue: true, gc_slack: None, repl: false };
const BARE: Setup = Setup { prologue: false, gc_slack: None, repl: false };

impl Setup {
    fn describe(self) -> String {
        let mut v = vec![];
        if self.prologue {
            v.push("after the prologue".to_string());
        }
        if self.repl {
            v.push("each top-level form in its own eval_str, going on after errors".to_string());
        }
        if let Some(n) = self.gc_slack {
            v.push(format!("with the heap about {n} allocations short of a collection (SX_FUZZ_GC_SLACK={n})"));
        }
        if v.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.join(", "))
        }
    }
}

thread_local! {
    /// A test's own choice of tier, over `SX_FUZZ_BACKEND`.
    static BACKEND: std::cell::Cell<Option<sx::Backend>> = const { std::cell::Cell::new(None) };
}

/// The tier the engines run on: `SX_FUZZ_BACKEND=cranelift` (with `SX_FUZZ_JIT_THRESHOLD`,
/// default 1) or the CEK.
fn fuzz_options() -> sx::EngineOptions {
    let backend = BACKEND.with(|b| b.get()).unwrap_or_else(|| match std::env::var("SX_FUZZ_BACKEND").as_deref() {
        Ok("cranelift") => sx::Backend::Cranelift,
        Ok("none") | Err(_) => sx::Backend::None,
        Ok(other) => panic!("SX_FUZZ_BACKEND={other}: expected cranelift or none"),
    });
    let jit_threshold = match backend {
        sx::Backend::None => None,
        _ => Some(std::env::var("SX_FUZZ_JIT_THRESHOLD").ok().and_then(|s| s.parse().ok()).unwrap_or(1)),
    };
    sx::EngineOptions { max_depth: 100_000, backend, jit_threshold, ..Default::default() }
}

fn new_engine() -> sx::Engine {
    let mut e = sx::Engine::with_options(fuzz_options()).expect("engine");
    e.set_output(Box::new(std::io::sink()));
    e
}

/// Allocations that make the heap collect (`Heap` has no knob for it): each float is one
/// allocation.
fn gc_filler(n: usize) -> String {
    format!("(begin (map exact->inexact (range 0 {n})) 0)")
}

/// The largest filler, run after the prologue, that does not yet trigger a collection; found
/// once per thread by bisection (a collection frees the filler's garbage).
fn gc_filler_max() -> usize {
    thread_local! {
        static MAX: usize = {
            let no_gc = |n: usize| {
                let mut e = new_engine();
                e.eval_str(PROLOGUE, "prologue.sx").expect("prologue");
                let before = e.live_objects();
                e.eval_str(&gc_filler(n), "filler.sx").expect("filler");
                e.live_objects() > before + n / 2
            };
            let (mut lo, mut hi) = (0usize, 200_000usize);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if no_gc(mid) {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            lo
        };
    }
    MAX.with(|m| *m)
}

/// What a case evaluates, one `eval_str` each. REPL style: each top-level form in its own,
/// going on after errors (the state an error leaves behind is used by the next form); else the
/// whole text at once.
fn chunks_of(src: &str, setup: Setup) -> Vec<String> {
    match (setup.repl, read_sx(src)) {
        (true, Some(forms)) if !forms.is_empty() => forms.iter().map(|f| f.to_string()).collect(),
        _ => vec![src.to_string()],
    }
}

fn run_source(src: &str, setup: Setup) -> Result<(), TestCaseError> {
    let with_prologue = setup.prologue;
    if setup.gc_slack.is_some() {
        gc_filler_max();
    }
    init();
    if let Ok(path) = std::env::var("SX_FUZZ_TRACE") {
        let _ = std::fs::write(path, src);
    }
    let tid = std::thread::current().id();
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    WATCH.lock().unwrap().as_mut().unwrap().insert(tid, Watch { started: Instant::now(), source: src.to_string(), interrupt: None, interrupted: interrupted.clone() });
    IN_CASE.with(|c| *c.borrow_mut() = true);
    LAST_PANIC.with(|p| *p.borrow_mut() = None);
    let t0 = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Option<String>, String> {
        let mut e = new_engine();
        if let Some(w) = WATCH.lock().unwrap().as_mut().unwrap().get_mut(&tid) {
            w.interrupt = Some(e.interrupt_handle());
        }
        if with_prologue {
            if let Err(err) = e.eval_str(PROLOGUE, "prologue.sx") {
                return Err(format!("prologue failed: {}", e.render_error(&err)));
            }
        }
        if let Some(slack) = setup.gc_slack {
            let n = gc_filler_max().saturating_sub(slack as usize);
            e.eval_str(&gc_filler(n), "filler.sx").map_err(|err| format!("filler failed: {}", e.render_error(&err)))?;
        }
        let chunks = chunks_of(src, setup);
        let mut res = Ok(sx::Value::NIL);
        for (i, chunk) in chunks.iter().enumerate() {
            res = e.eval_str(chunk, "fuzz.sx");
            if i + 1 < chunks.len() {
                match &res {
                    Ok(v) => {
                        let _ = e.inspect(*v);
                    }
                    Err(err) => {
                        let _ = e.render_error(err);
                    }
                }
            }
        }
        if let Some(slack) = setup.gc_slack {
            // the filler's garbage is gone once a collection has run
            if e.live_objects() < gc_filler_max().saturating_sub(slack as usize) / 2 {
                STATS.with(|s| s.borrow_mut().collections += 1);
            }
        }
        let err_msg = match res {
            Ok(v) => {
                let _ = e.inspect(v);
                let _ = e.display(v);
                None
            }
            Err(err) => {
                let rendered = e.render_error(&err);
                if rendered.trim().is_empty() {
                    return Err("render_error gave an empty text".to_string());
                }
                // (an empty *message* is fine: `(error "")` asks for one)
                Some(err.message())
            }
        };
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            // stop the watchdog before the probe below, which it could otherwise interrupt
            if let Some(w) = WATCH.lock().unwrap().as_mut().unwrap().get_mut(&tid) {
                w.interrupt = None;
            }
            e.interrupt_handle().store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(format!("HANG: still running after {:?}; stopped by Engine::interrupt_handle", hang_limit() / 4));
        }
        e.collect_garbage();
        // the engine stays usable (a literal: the case may have redefined any global)
        match e.eval_str("\"probe\"", "after.sx") {
            Ok(v) if e.inspect(v) == "\"probe\"" => {}
            Ok(v) => return Err(format!("engine broken after the case: \"probe\" gave {}", e.inspect(v))),
            Err(err) => return Err(format!("engine broken after the case: \"probe\" raised {}", e.render_error(&err))),
        }
        Ok(err_msg)
    }));
    let took = t0.elapsed();
    IN_CASE.with(|c| *c.borrow_mut() = false);
    WATCH.lock().unwrap().as_mut().unwrap().remove(&tid);
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.cases += 1;
        if let Ok(Ok(m)) = &outcome {
            match m {
                None => s.ok += 1,
                Some(m) => *s.errors.entry(error_shape(m)).or_default() += 1,
            }
        }
        if s.slowest.len() < 5 || took > s.slowest.last().unwrap().0 {
            s.slowest.push((took, src.to_string()));
            s.slowest.sort_by_key(|b| std::cmp::Reverse(b.0));
            s.slowest.truncate(5);
        }
    });
    // (Not for runaway recursion: the depth limit counts interpreter frames and compiled
    // activations, which differ where a call is nested in several pending operations.)
    let runaway = matches!(&outcome, Ok(Ok(Some(m))) if m.contains("Maximum recursion depth"));
    if matches!(outcome, Ok(Ok(_))) && !runaway && cfg!(feature = "cranelift") && std::env::var("SX_FUZZ_DIFF").as_deref() != Ok("0") {
        differential(src, setup)?;
    }
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(m)) => Err(TestCaseError::fail(format!("{m}\n--- source ---\n{src}"))),
        Err(payload) => {
            let detail = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| panic_text(&*payload));
            Err(TestCaseError::fail(format!("PANIC: {detail}\n--- source ---\n{src}")))
        }
    }
}

/// Names whose results legitimately differ between tiers or runs.
const NOT_DIFFERENTIAL: &[&str] = &["jit-", "assert-compiled", "random", "gensym", "time", "clock", "now", "with-fresh-jit", "with-jit-threshold", "<lambda", "#<"];

/// Unless `SX_FUZZ_DIFF=0`: the case gives the same value (or error message) on the CEK and on
/// Cranelift with everything compiled at its first call.
fn differential(src: &str, setup: Setup) -> Result<(), TestCaseError> {
    if NOT_DIFFERENTIAL.iter().any(|n| src.contains(n)) || setup.gc_slack.is_some() {
        return Ok(());
    }
    let run = |backend: sx::Backend| {
        let opts = sx::EngineOptions { max_depth: 100_000, backend, jit_threshold: Some(1), ..Default::default() };
        let mut e = sx::Engine::with_options(opts).expect("engine");
        e.set_output(Box::new(std::io::sink()));
        if setup.prologue {
            e.eval_str(PROLOGUE, "prologue.sx").expect("prologue");
        }
        let chunks = chunks_of(src, setup);
        let mut out = String::new();
        for chunk in chunks {
            out = match e.eval_str(&chunk, "fuzz.sx") {
                Ok(v) => format!("value {}", e.inspect(v)),
                Err(err) => format!("error {}", err.message()),
            };
        }
        out
    };
    let cek = run(sx::Backend::None);
    let jit = run(sx::Backend::Cranelift);
    if cek != jit && !(cek.contains("#<") || jit.contains("#<")) {
        return Err(TestCaseError::fail(format!("DIFFERENT on cranelift:\n  cek:       {cek}\n  cranelift: {jit}\n--- source ---\n{src}")));
    }
    Ok(())
}

fn report_stats(name: &str) {
    if std::env::var("SX_FUZZ_STATS").is_err() {
        return;
    }
    STATS.with(|s| {
        let s = s.borrow();
        let mut errs: Vec<_> = s.errors.iter().collect();
        errs.sort_by(|a, b| b.1.cmp(a.1));
        let mut out = format!("[{name}] {} cases, {} evaluated without error, {} collected during the case\n", s.cases, s.ok, s.collections);
        for (m, c) in errs.iter().take(40) {
            out += &format!("  {c:6}  {m}\n");
        }
        for (t, src) in &s.slowest {
            out += &format!("  slow {t:?}: {}\n", src.replace('\n', " ").chars().take(300).collect::<String>());
        }
        eprintln!("{out}");
    });
}

fn cases(n: u32) -> u32 {
    let scale: f64 = std::env::var("SX_FUZZ_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((n as f64) * scale).max(1.0) as u32
}

fn config(n: u32) -> Config {
    Config { cases: cases(n), max_shrink_iters: 1024, failure_persistence: None, ..Config::default() }
}

/// What identifies a failure: the panic message (digits blanked) and its location, or the first
/// line of any other failure.
fn failure_key(reason: &str) -> String {
    let mut lines = reason.lines();
    let first = lines.next().unwrap_or("");
    let first: String = first.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    match lines.next() {
        Some(at) if at.trim_start().starts_with("at ") => format!("{first} {}", at.trim()),
        _ => first,
    }
}

/// Does `src` still fail the same way?
fn fails_same(src: &str, setup: Setup, key: &str) -> bool {
    match run_source(src, setup) {
        Err(e) => failure_key(&reason_text(&e)) == key,
        Ok(()) => false,
    }
}

fn reason_text(e: &TestCaseError) -> String {
    match e {
        TestCaseError::Fail(r) | TestCaseError::Reject(r) => r.message().to_string(),
    }
}

/// Read source text back into `Sx` trees (for minimising); `None` if it does not read.
fn read_sx(src: &str) -> Option<Vec<Sx>> {
    fn delim(c: char) -> bool {
        c.is_whitespace() || "()[]{}\";".contains(c)
    }
    fn item(cs: &[char], i: &mut usize) -> Option<Option<Sx>> {
        // skip blanks and comments
        loop {
            while *i < cs.len() && cs[*i].is_whitespace() {
                *i += 1;
            }
            if *i < cs.len() && cs[*i] == ';' {
                while *i < cs.len() && cs[*i] != '\n' {
                    *i += 1;
                }
            } else {
                break;
            }
        }
        if *i >= cs.len() {
            return Some(None);
        }
        let c = cs[*i];
        let rest: String = cs[*i..(*i + 2).min(cs.len())].iter().collect();
        let prefix: Option<(&'static str, usize)> = if rest == ",@" {
            Some((",@", 2))
        } else if rest == "#;" {
            Some(("#;", 2))
        } else if c == '\'' {
            Some(("'", 1))
        } else if c == '`' {
            Some(("`", 1))
        } else if c == ',' {
            Some((",", 1))
        } else {
            None
        };
        if let Some((p, n)) = prefix {
            *i += n;
            let x = item(cs, i)??;
            return Some(Some(Sx::P(p, Box::new(x))));
        }
        let close = match c {
            '(' => Some(')'),
            '[' => Some(']'),
            '{' => Some('}'),
            _ => None,
        };
        if let Some(close) = close {
            *i += 1;
            let mut xs = vec![];
            loop {
                while *i < cs.len() && cs[*i].is_whitespace() {
                    *i += 1;
                }
                if *i < cs.len() && cs[*i] == close {
                    *i += 1;
                    break;
                }
                xs.push(item(cs, i)??);
            }
            return Some(Some(match c {
                '(' => Sx::L(xs),
                '[' => Sx::B(xs),
                _ => Sx::D(xs),
            }));
        }
        if matches!(c, ')' | ']' | '}') {
            return None;
        }
        let start = *i;
        if c == '"' {
            *i += 1;
            while *i < cs.len() && cs[*i] != '"' {
                if cs[*i] == '\\' {
                    *i += 1;
                }
                *i += 1;
            }
            if *i >= cs.len() {
                return None;
            }
            *i += 1;
        } else if rest == "#|" {
            *i += 2;
            while *i < cs.len() && cs[*i] != '|' {
                *i += 1;
            }
            if *i >= cs.len() {
                return None;
            }
            *i += 1;
        } else {
            if rest == "#\\" {
                *i = (*i + 3).min(cs.len());
            }
            while *i < cs.len() && !delim(cs[*i]) {
                *i += 1;
            }
            if *i == start {
                return None;
            }
        }
        Some(Some(Sx::A(cs[start..*i].iter().collect())))
    }
    let cs: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = vec![];
    while let Some(x) = item(&cs, &mut i)? {
        out.push(x);
    }
    Some(out)
}

fn render_forms(forms: &[Sx]) -> String {
    forms.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n")
}

/// The children of a node, and a rebuild of it with new children.
fn children(x: &Sx) -> Vec<Sx> {
    match x {
        Sx::L(v) | Sx::B(v) | Sx::D(v) => v.clone(),
        Sx::P(_, b) => vec![(**b).clone()],
        Sx::A(_) => vec![],
    }
}

fn node_at<'a>(forms: &'a mut [Sx], path: &[usize]) -> &'a mut Sx {
    let mut x = &mut forms[path[0]];
    for &i in &path[1..] {
        x = match x {
            Sx::L(v) | Sx::B(v) | Sx::D(v) => &mut v[i],
            Sx::P(_, b) => b,
            Sx::A(_) => unreachable!(),
        };
    }
    x
}

fn paths(forms: &[Sx]) -> Vec<Vec<usize>> {
    fn walk(x: &Sx, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(path.clone());
        for (i, c) in children(x).iter().enumerate() {
            path.push(i);
            walk(c, path, out);
            path.pop();
        }
    }
    let mut out = vec![];
    for (i, f) in forms.iter().enumerate() {
        walk(f, &mut vec![i], &mut out);
    }
    out
}

/// Greedy structural minimisation, then deletion of text chunks.
fn minimise(src: &str, prologue: Setup, key: &str) -> String {
    let budget = Instant::now();
    let over = || budget.elapsed() > Duration::from_secs(20);
    let mut best = src.to_string();
    if let Some(mut forms) = read_sx(src) {
        if fails_same(&render_forms(&forms), prologue, key) {
            'outer: loop {
                if over() {
                    break;
                }
                // drop a top-level form
                for i in 0..forms.len() {
                    let mut f2 = forms.clone();
                    f2.remove(i);
                    if !f2.is_empty() && fails_same(&render_forms(&f2), prologue, key) {
                        forms = f2;
                        continue 'outer;
                    }
                }
                for path in paths(&forms) {
                    let node = node_at(&mut forms, &path).clone();
                    let kids = children(&node);
                    let mut cands: Vec<Sx> = vec![];
                    // remove one element of a list
                    if let Sx::L(_) | Sx::B(_) | Sx::D(_) = node {
                        for i in 0..kids.len() {
                            let mut k2 = kids.clone();
                            k2.remove(i);
                            cands.push(match &node {
                                Sx::L(_) => Sx::L(k2),
                                Sx::B(_) => Sx::B(k2),
                                _ => Sx::D(k2),
                            });
                        }
                    }
                    // hoist a child, or replace by a small atom
                    cands.extend(kids.iter().cloned());
                    if !matches!(&node, Sx::A(s) if s == "nil" || s.len() <= 1) {
                        cands.push(a("nil"));
                        cands.push(a("1"));
                    }
                    for cand in cands {
                        let mut f2 = forms.clone();
                        *node_at(&mut f2, &path) = cand;
                        if fails_same(&render_forms(&f2), prologue, key) {
                            forms = f2;
                            continue 'outer;
                        }
                    }
                }
                break;
            }
            best = render_forms(&forms);
        }
    }
    // delete chunks of characters
    let mut cs: Vec<char> = best.chars().collect();
    let mut chunk = (cs.len() / 2).max(1);
    while chunk >= 1 && !over() {
        let mut i = 0;
        let mut changed = false;
        while i < cs.len() {
            let mut c2 = cs.clone();
            c2.drain(i..(i + chunk).min(cs.len()));
            let t: String = c2.iter().collect();
            if fails_same(&t, prologue, key) {
                cs = c2;
                changed = true;
            } else {
                i += chunk;
            }
        }
        if !changed {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    cs.into_iter().collect()
}

/// Failures seen in collect mode (`SX_FUZZ_COLLECT=1`): key → (reason, source, prologue).
type Collected = std::collections::BTreeMap<String, (String, String, Setup, usize)>;

fn run_property<T: fmt::Debug>(name: &str, n: u32, strategy: impl Strategy<Value = T>, render: impl Fn(&T) -> (String, Setup)) {
    run_property_skipping(name, n, strategy, render, |_| false)
}

/// `run_property`, skipping the sources `skip` says would hit a known hang.
fn run_property_skipping<T: fmt::Debug>(name: &str, n: u32, strategy: impl Strategy<Value = T>, render: impl Fn(&T) -> (String, Setup), skip: fn(&str) -> bool) {
    run_property_with(name, n, strategy, render, skip, false)
}

/// As [`run_property_skipping`]; `hang_ok`: programs that run until interrupted pass.
fn run_property_with<T: fmt::Debug>(name: &str, n: u32, strategy: impl Strategy<Value = T>, render: impl Fn(&T) -> (String, Setup), skip: fn(&str) -> bool, hang_ok: bool) {
    let collect = std::env::var("SX_FUZZ_COLLECT").is_ok();
    let found: RefCell<Collected> = RefCell::new(Collected::new());
    let mut runner = TestRunner::new(config(n));
    let result = runner.run(&strategy, |x| {
        let (src, prologue) = render(&x);
        if skip(&src) {
            return Ok(());
        }
        let r = run_source(&src, prologue);
        if let Err(e) = &r {
            let reason = reason_text(e);
            if known_panic(&reason) {
                return Ok(());
            }
            // A mutation can turn a terminating loop into an endless one (e.g. by
            // deleting the increment): a program that stopped when interrupted is
            // not an evaluator hang. (One that ignores the interrupt still ends the
            // process at the hang limit.)
            if hang_ok && reason.starts_with("HANG: still running") {
                return Ok(());
            }
        }
        match r {
            Err(e) if collect => {
                let reason = reason_text(&e);
                let key = failure_key(&reason);
                let mut f = found.borrow_mut();
                let entry = f.entry(key).or_insert_with(|| (reason.clone(), src.clone(), prologue, 0));
                entry.3 += 1;
                if src.len() < entry.1.len() {
                    entry.1 = src;
                    entry.0 = reason;
                }
                Ok(())
            }
            r => r,
        }
    });
    report_stats(name);
    if collect {
        let f = found.into_inner();
        let mut out = format!("[{name}] {} distinct failures\n", f.len());
        for (key, (reason, src, prologue, count)) in f {
            // Said first: minimising runs variants, which may not end.
            eprintln!("[{name}] failure before minimising: {reason}");
            let min = minimise(&src, prologue, &key);
            let first = reason.split("\n--- source ---").next().unwrap_or("");
            out += &format!("=== {count} x {first}\n--- minimal source{} ---\n{min}\n", prologue.describe());
            if std::env::var("SX_FUZZ_SHOW_ORIGINAL").is_ok() {
                out += &format!("--- original ---\n{src}\n");
            }
            out += "\n";
        }
        eprintln!("{out}");
    }
    match result {
        Ok(()) => {}
        Err(proptest::test_runner::TestError::Fail(reason, value)) => {
            let (src, prologue) = render(&value);
            let reason = reason.message().to_string();
            let min = minimise(&src, prologue, &failure_key(&reason));
            let first = reason.split("\n--- source ---").next().unwrap_or("");
            panic!("{name}: failing case{}:\n{first}\n--- shrunk source ---\n{src}\n--- minimised source ---\n{min}\n", prologue.describe());
        }
        Err(e) => panic!("{name}: {e}"),
    }
}

// ───────────────────────────── properties ─────────────────────────────

#[test]
fn generated_programs() {
    // Programs may hold a malformed `do` whose test is a constant false datum, e.g.
    // `(do () (false))`: an endless loop by the language, which passes when it stops on interrupt.
    run_property_with("generated_programs", 10_000, (program(), any::<bool>()), |(p, repl)| (p.to_string(), Setup { repl: *repl, ..PRO }), |_| false, true);
}

/// Generated programs run while the collector is about to run: a collection happens part-way
/// through most cases (missing roots show up as panics or wrong values).
#[test]
fn generated_programs_under_gc() {
    let s = (program(), prop_oneof![4 => 0u32..8, 3 => 8u32..40, 1 => 40u32..300]);
    run_property_with("generated_programs_under_gc", 600, s, |(p, slack)| (p.to_string(), Setup { gc_slack: Some(*slack), ..PRO }), |_| false, true);
}

#[test]
fn malformed_special_forms() {
    let s = proptest::collection::vec(sf_malformed(&Ctx::top(1)), 1..3).prop_map(Program);
    // `(do () (false))` is an endless loop by the language: stopping on interrupt passes.
    run_property_with("malformed_special_forms", 3_000, s, |p| (p.to_string(), PRO), |_| false, true);
}

/// Known panics (message, and a frame of the backtrace) that the text properties (which cannot
/// avoid a construct in their input) let pass.
const KNOWN_PANICS: &[(&str, &str)] = &[
    // (none at the moment; entries look like this one, whose bug was fixed in f854f31)
    // ("index out of bounds", "Analyzer::guard"),
];

fn known_panic(reason: &str) -> bool {
    let head = reason.split("\n--- source ---").next().unwrap_or("");
    head.starts_with("PANIC") && KNOWN_PANICS.iter().any(|(m, f)| head.contains(m) && head.contains(f))
}

/// Text that would hit a known hang (which cannot be caught); such inputs are skipped by every
/// property.
fn excluded_text(src: &str) -> bool {
    // EXCLUDED until fixed: handler-bind hangs when a predicate raises (see sf_handlers)
    src.contains("handler-bind")
}

/// Deeply nested data (built by a loop) given to the operations that walk data.
#[test]
fn deep_data() {
    let build = select(vec![
        ("(list x)", "(list y)"),
        ("(vector x)", "(vector y)"),
        ("{:a x}", "{:a y}"),
        ("(Just x)", "(Just y)"),
        ("(make-point x 1)", "(make-point y 1)"),
        ("(cons x nil)", "(cons y nil)"),
        ("(list 'list x)", "(list 'list y)"),
    ]);
    let op = select(vec![
        "(len (inspect x))", "(len (str x))", "(display x)", "(len (escape x))", "(json-encode x)", "(flatten x)", "(list-copy x)", "(reverse (list x))",
        "(apply list (list x))", "(sort (list x y))", "(make-set (list x))", "(set-member? (make-set (list x)) x)", "(match x ((a) 1) (_ 2))",
        "(sx-parse (inspect x))", "(eq? x y)", "(eqv? x y)", "(equal? x x)", "(type-of x)", "(vector->list (vector x))", "(list->vector (list x))",
        "(str (make-set (list x)))", "(inspect (make-set (list x)))", "(try-call (fn () (raise x)))", "(guard (e (true (len (inspect e)))) (raise x))",
        "(error x)", "(string-buffer-append! sb x)", "(write-string (inspect x) op)",
        // (fixed in f854f31: these overflowed the Rust stack at ~10 000 levels)
        "(equal? x y)", "(= x y)", "(contains? (list y) x)", "(index-of (list y) x)", "(set-member? (make-set (list x)) y)", "(eval x)",
    ]);
    let depth = prop_oneof![Just(10u32), Just(500u32), Just(20_000u32)];
    run_property("deep_data", 150, (build, op, depth), |((bx, by), op, depth)| {
        let src = format!("(define x 1) (define y 1) (do ((i 0 (+ i 1))) ((>= i {depth})) (set! x {bx}) (set! y {by})) {op}");
        (src, PRO)
    });
}

/// Runaway recursion through every channel that calls back into SX: each must end with
/// "Maximum recursion depth exceeded" (or another error), never a crash or a hang.
#[test]
fn runaway_recursion() {
    let cases = [
        "(define (f) (+ 1 (f))) (f)",
        "(define (h) (dynamic-wind (fn () 1) h (fn () 2))) (h)",
        "(define (f) (+ 1 (eval (quote (f))))) (f)",
        "(define (f) (+ 1 (eval (list f)))) (f)",
        "(define (c) (coroutine-resume (make-coroutine c))) (c)",
        "(define (f) (map (fn (x) (+ 1 (f))) (list 1))) (f)",
        "(define (f) (reduce (fn (a b) (+ 1 (f))) 0 (list 1 2))) (f)",
        "(define (f) (+ 1 (reset (f)))) (f)",
        "(define (f) (reset (+ 1 (shift k (k (f)))))) (f)",
        "(define (f) (+ 1 (apply f (list)))) (f)",
        "(define (f) (guard (e (false 1)) (+ 1 (f)))) (f)",
        "(define (f) (+ 1 (with-exception-handler (fn (e) 1) f))) (f)",
        "(define (w) (with-exception-handler (fn (e) (w)) (fn () (raise 1)))) (w)",
        "(define-protocol P (pm self)) (implement P \"number\" (pm self (+ 1 (pm self)))) (pm 1)",
        "(define (f) (with-jit-threshold 1 (+ 1 (f)))) (f)",
        "(define (f) (scope \"a\" (+ 1 (f)))) (f)",
        "(define (f) (provide \"a\" 1 (+ 1 (f)))) (f)",
        "(define (f) (+ 1 (first (list (f))))) (f)",
        "(define (f) (+ 1 (try-call f))) (f)",
        "(define (f) (sort (list (f) 1))) (f)",
        "(define (f) (+ 1 (let-match (a) (list (f)) a))) (f)",
        "(define (f) (+ 1 (match (f) (x x)))) (f)",
        "(define-record-type <r> (mk-r a) r? (a r-a)) (define (f) (mk-r (f))) (f)",
        "(define (f) (list (f))) (try-call f)",
        "(define (f) (+ 1 (f))) (list (try-call f) (try-call f) (f))",
        // (fixed in f854f31: expansion forever overflowed the Rust stack)
        "(defmacro m (x) (list (quote m) x)) (m 1)",
        // EXCLUDED until fixed: each of these overflows the Rust stack (process abort) instead
        // of raising "Maximum recursion depth exceeded":
        // the after (or before) thunk of dynamic-wind recursing (wind thunks run in a nested
        // run on the Rust stack):
        // "(define (h) (dynamic-wind (fn () 1) (fn () 2) h)) (h)",
        // "(define (h) (dynamic-wind h (fn () 1) (fn () 2))) (h)",
        // a macro that calls itself while expanding (nested expansion runs on the Rust stack):
        // "(defmacro m2 (x) (m2 x)) (m2 1)",
        // a reader macro whose handler parses text that uses it:
        // "(register-reader-macro! \"dbl\" (fn (x) (sx-parse \"#dbl 1\"))) (sx-parse \"#dbl 2\")",
        // EXCLUDED until fixed (too slow to finish): non-tail recursion through call/cc is
        // quadratic (each capture copies the whole stack: depth 8 000 takes 1.5 s at opt-level
        // 1), so reaching the depth limit takes minutes:
        // "(define (f) (+ 1 (call/cc (fn (k) (f))))) (f)",
        // EXCLUDED until fixed (hangs): a raise inside a handler-bind predicate (see sf_handlers):
        // "(define (f) (handler-bind (((fn (e) (f)) (fn (e) 1))) (raise 1))) (f)",
    ];
    // On every tier: compiled code must not make the way down to the
    // depth error (or back up from it) slower than the interpreter's.
    let mut tiers = vec![sx::Backend::None];
    if cfg!(feature = "cranelift") {
        tiers.push(sx::Backend::Cranelift);
    }
    for tier in tiers {
        BACKEND.with(|b| b.set(Some(tier)));
        for src in cases {
            if let Err(e) = run_source(src, PRO) {
                panic!("runaway_recursion on {tier:?}: {}", reason_text(&e));
            }
        }
    }
    BACKEND.with(|b| b.set(None));
    report_stats("runaway_recursion");
}

/// Contexts for `control_combos`: `@` is where the inner expression goes.
const WRAPPERS: &[&str] = &[
    "(map (fn (x) @) (list 1 2))",
    "(filter (fn (x) @) (list 1 2 3))",
    "(reduce (fn (a b) @) 0 (list 1 2))",
    "(for-each (fn (x) @) (list 1 2))",
    "(some (fn (x) @) (list 1 2))",
    "(map-indexed (fn (i x) @) (list 1 2))",
    "(dynamic-wind (fn () (emit! \"nm\" 'in)) (fn () @) (fn () (emit! \"nm\" 'out)))",
    "(dynamic-wind (fn () nil) (fn () @) (fn () (raise 'after)))",
    "(guard (e (true (list 'caught e))) @)",
    "(guard (e ((string? e) e)) @)",
    "(try-call (fn () @))",
    "(reset @)",
    "(reset (+ 1 @))",
    "(scope \"nm\" :value 1 @ (emitted \"nm\"))",
    "(provide \"nm\" 2 (list @ (context \"nm\")))",
    "(let ((c (make-coroutine (fn (a) @)))) (list (coroutine-resume c 1) (coroutine-resume c 2) (coroutine-resume c 3) (coroutine-status c)))",
    "(let ((c (make-coroutine (fn () (list @ (coroutine-yield 'mid)))))) (list (coroutine-resume c) (coroutine-resume c 5) (coroutine-resume c)))",
    "(call/cc (fn (ret) @))",
    "(call/cc (fn (ret) (list 1 @ (ret 'escaped))))",
    "(with-exception-handler (fn (e) 42) (fn () @))",
    "(with-exception-handler (fn (e) (raise (list 'again e))) (fn () @))",
    "(handler-bind (((fn (e) true) (fn (e) 7))) @)",
    "(+ 1 @)",
    "(list @ @)",
    "(with-jit-threshold 1 (list ((fn (x) @) 1) ((fn (x) @) 2)))",
    "((fn (x) @) 1)",
    "(apply (fn (x) @) (list 1))",
    "(match (list 1 @) ((a b) b) (_ 'other))",
    "(begin (dict-set! d \"k\" @) d)",
    "(let ((v0 @)) (list v0 v0))",
    "(if @ 'yes 'no)",
    "(and 1 @ 2)",
    "(str \"<\" @ \">\")",
    "(sort (list @ 1))",
    "(->> @ (list 1) reverse)",
    "(case @ ((1) 'one) (else 'other))",
    "(do ((i 0 (+ i 1))) ((>= i 2) 'done) @)",
    "(let lp ((i 0)) (if (< i 2) (begin @ (lp (+ i 1))) 'looped))",
    "(jit-pin! (fn (x) @))",
    "(json-encode (list @))",
    "(inspect @)",
];

/// Control operations at the centre of `control_combos`.
const CORES: &[&str] = &[
    "1", "(shift k (k 1))", "(shift k (list (k 1) (k 2)))", "(shift k 5)", "(shift k (begin (set! m1 k) 0))", "(shift k (fn () (k 3)))",
    "(shift k (k (k 1)))", "(ret 5)", "(coroutine-yield 9)", "(coroutine-yield (coroutine-yield 1))", "(raise 'boom)", "(error \"boom\" 1)",
    "(raise-continuable 3)", "(context \"nm\" 0)", "(emit! \"nm\" 3)", "(emitted \"nm\")", "(apply m1 (list 10))", "(m1 4)", "(m1)",
    "(if (continuation? m1) (m1 6) m1)", "(call/cc (fn (k2) (k2 8)))", "(reset (shift k (k 2)))", "(/ 1 0)", "(vector-ref v 10)",
    "(jit-reset!)", "(with-fresh-jit 1)", "(coroutine-resume co 1)", "(make-coroutine (fn () (coroutine-yield 1)))", "(gensym)",
];

/// Control operations (shift with k called 0-2 times or stored, call/cc escapes, coroutine
/// yields, raises, dynamic scope) inside chains of contexts that capture, unwind or resume
/// them: callbacks of map and friends, dynamic-wind, guard, try-call, reset, coroutines,
/// exception handlers, JIT scopes, loops.
#[test]
fn control_combos() {
    let chain = (proptest::collection::vec(select(WRAPPERS.to_vec()), 1..6), select(CORES.to_vec())).prop_map(|(ws, core)| {
        // A continuation called twice re-runs every later shift twice: the work doubles per
        // shift executed, so keep such cores out of heavily iterating contexts. `(k (k 1))`
        // also feeds what the rest of the form returned back into it, so the *value* grows
        // with every later shift (around `json-encode`, which escapes it again each time, four
        // copies reached gigabytes: a program no hang detector can judge): at most two copies.
        let runs: usize = ws
            .iter()
            .map(|w| if w.contains("(list 1 2 3)") { 3 } else if w.contains("(list 1 2)") || w.contains("@ @") || w.contains("with-jit-threshold") || w.contains("(< i 2)") || w.contains(">= i 2") { 2 } else { 1 })
            .product();
        let too_many = if core.contains("(k (k") { runs > 2 } else { runs > 6 && core.contains("(k 2)") };
        let core = if too_many { "(shift k (k 1))" } else { core };
        let mut e = core.to_string();
        for w in ws {
            e = w.replace('@', &e);
        }
        e
    });
    let s = (proptest::collection::vec(chain, 1..4), any::<bool>(), prop_oneof![5 => Just(None), 1 => (0u32..20).prop_map(Some)]);
    run_property("control_combos", 2_500, s, |(forms, repl, gc_slack)| {
        let mut src = forms.join("\n");
        // use what the forms left behind: a stored continuation, emitted values
        src.push_str("\n(list (if (continuation? m1) (list (m1 1) (m1 2)) m1) d)");
        (src, Setup { repl: *repl, gc_slack: *gc_slack, ..PRO })
    });
}

/// Extreme and odd argument values for `primitive_edges`.
const EDGE_VALUES: &[&str] = &[
    "0", "1", "-1", "2", "7", "63", "64", "-64", "4611686018427387903", "4611686018427387904", "-4611686018427387904", "-4611686018427387905",
    "9223372036854775807", "-9223372036854775808", "2147483648", "1000000007", "0.0", "-0.0", "0.5", "-2.5", "1e308", "-1e308", "5e-324",
    "(/ 0.0 0.0)", "(/ 1.0 0.0)", "(/ -1.0 0.0)", "9.3e18", "-9.3e18", "4.611686018427388e18", "1e19", "123.456", "1/3", "-1/3",
    "9223372036854775807/2", "1/9223372036854775807", "-9223372036854775807/4611686018427387904", "4611686018427387903/4611686018427387904",
    "\"\"", "\"abc\"", "\"é😀\"", "\"  x \"", "\"12\"", "\"-0\"", "\"1e999\"", "\"0x1F\"", "\"%Y-%m-%d %H:%M:%S %j %%\"", "\"%\"",
    "\"<a href=x>t</a>\"", "\"a,b,,c\"", "\",\"", "\"\\u0000\"", "\"e\u{301}\"", "\"2024-02-30T25:61:61Z\"", "\"9999999999-01-01\"",
    "\"{\\\"a\\\":[1,{\\\"b\\\":null}]}\"", "\"[1e999, -0, 1.5e-400]\"", "\"(1 2\"", "#\\a", "#\\nul", "#\\😀", "#\\space",
    "nil", "true", "false", "':k", "'sym", "'()", "lst", "(list 1 2 3)", "(list \"b\" \"a\")", "(list 3.5 1 1/2)", "(list (/ 0.0 0.0) 1)",
    "d", "{}", "v", "(vector)", "st", "ip", "op", "sb", "co", "mb", "pt", "id1", "+", "(reset (shift k k))", "(make-coroutine (fn () 1))",
    "(eof-object)", "(gensym)", "(Nothing)", "(list lst lst)", "{:a {:b 1}}", "(make-set (list 1 1.0 \"1\"))",
];

/// Every global (primitives, library and harness functions, special-form names) called with
/// 0-4 extreme values: integer and fixnum boundaries, NaN and infinities, rationals at the edge
/// of i64, odd strings and every kind of object. Overflow checks are on in the test profile, so
/// arithmetic overflow inside a primitive shows up as a panic here.
#[test]
fn primitive_edges() {
    let mut names = global_names();
    // sizes: these would allocate up to their 100M-element limit (seconds and gigabytes)
    names.retain(|n| !matches!(*n, "range" | "make-vector"));
    let edge = || select(EDGE_VALUES.to_vec());
    // either a primitive of the table with its own arity, or any global with 0-4 arguments
    let from_table = (0..PRIMS.len(), 0usize..2).prop_flat_map(move |(i, extra)| {
        let (name, fixed, rest) = PRIMS[i];
        let n = fixed.len() + if rest.is_some() { extra } else { 0 };
        (Just(name), proptest::collection::vec(edge(), n..=n))
    });
    let any_global = (select(names), proptest::collection::vec(edge(), 0..5));
    let s = prop_oneof![
        from_table.prop_filter("sizes", |(n, _)| !matches!(*n, "range" | "make-vector")),
        any_global,
    ];
    run_property("primitive_edges", 3_000, s, |(h, args)| {
        let mut src = format!("({h}");
        for x in args {
            src.push(' ');
            src.push_str(x);
        }
        src.push(')');
        (src, PRO)
    });
}

/// Text mutations of a valid program.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Duplicate(usize, usize),
    Swap(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens: Vec<&'static str> = vec![
        "(", ")", "[", "]", "{", "}", "\"", "'", "`", ",", ",@", "#", "#;", "#|", "|", "\\", "#\\", ";", "\n", " ", ":", "&rest", "1/0", "-", ".", "#t", "nil",
        "(shift k (k 1))", "(reset ", "(call/cc (fn (k) ", "(coroutine-yield 1)", "(k)", "0.0", "9223372036854775807", "\\u", "#dbl", "(fn (", "(quote)",
    ];
    prop_oneof![
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), select(tokens)).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply_mutations(src: &str, ms: &[Mutation]) -> String {
    let mut cs: Vec<char> = src.chars().collect();
    for m in ms {
        let len = cs.len();
        match *m {
            Mutation::Delete(i, n) if len > 0 => {
                let i = i % len;
                let j = (i + n).min(len);
                cs.drain(i..j);
            }
            Mutation::Insert(i, t) => {
                let i = if len == 0 { 0 } else { i % (len + 1) };
                cs.splice(i..i, t.chars());
            }
            Mutation::Duplicate(i, n) if len > 0 => {
                let i = i % len;
                let j = (i + n).min(len);
                let piece: Vec<char> = cs[i..j].to_vec();
                cs.splice(j..j, piece);
            }
            Mutation::Swap(i, j) if len > 0 => cs.swap(i % len, j % len),
            Mutation::Truncate(i) if len > 0 => cs.truncate(i % len),
            _ => {}
        }
    }
    cs.into_iter().collect()
}

/// Small snippets of the conformance suite (deftest forms without loops or definitions, whose
/// mutations could turn into unbounded loops).
fn conformance_snippets() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance");
    let mut out = vec![];
    let Ok(dirs) = std::fs::read_dir(&root) else { return out };
    let mut files: Vec<_> = dirs.flatten().flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten()).map(|f| f.path()).collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let mut rest = text.as_str();
        while let Some(i) = rest.find("(deftest ") {
            rest = &rest[i..];
            // the form's extent by bracket counting (strings and comments make this approximate,
            // which is fine for mutation seeds)
            let mut depth = 0i32;
            let mut end = rest.len();
            for (j, ch) in rest.char_indices() {
                match ch {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let snippet = &rest[..end];
            rest = &rest[end..];
            let risky = ["define", "letrec", "(do (", "(let loop", "(let lp", "(let iter", "(let go", "set!", "call/cc", "call-with-current", "load", "range", "make-vector", "while", "repeat", "loop", "coroutine"];
            if snippet.len() < 400 && !risky.iter().any(|r| snippet.contains(r)) && !snippet.chars().collect::<Vec<_>>().windows(4).any(|w| w.iter().all(|c| c.is_ascii_digit())) {
                out.push(snippet.to_string());
            }
        }
    }
    out
}

#[test]
fn mutated_programs() {
    let snippets = conformance_snippets();
    let seed: BoxedStrategy<(String, Setup)> = if snippets.is_empty() {
        program().prop_map(|p| (p.to_string(), PRO)).boxed()
    } else {
        prop_oneof![
            2 => program().prop_map(|p| (p.to_string(), PRO)),
            1 => select(snippets).prop_map(|s| (s, BARE)),
        ]
        .boxed()
    };
    let s = (seed, proptest::collection::vec(mutation(), 1..4));
    run_property_with("mutated_programs", 4_000, s, |((src, prologue), ms)| (apply_mutations(src, ms), *prologue), excluded_text, true);
}

#[test]
fn random_text() {
    let token = prop_oneof![
        4 => select(vec![
            "(", ")", "(", ")", "[", "]", "{", "}", "\"", "'", "`", ",", ",@", "#", "#;", "#|", "|#", "|", "\\", "#\\", "#\\space", ";", "\n", " ", " ", ":", ":a",
            "&rest", "1", "-1", "1/3", "1/0", "0.5", "1e999", ".", "..", "nil", "true", "x", "if", "let", "fn", "define", "match", "quote", "shift", "reset",
            "call/cc", "+", "list", "#dbl", "\\u", "\\u12", "\"\\", "9223372036854775808", "-9223372036854775809", "λ", "😀", "\u{0}", "\r",
        ]).prop_map(String::from),
        1 => any::<String>().prop_map(|s| s.chars().take(8).collect::<String>()),
        1 => "[ -~]{0,6}",
    ];
    let s = prop_oneof![
        3 => proptest::collection::vec(token, 0..40).prop_map(|ts| ts.concat()),
        1 => any::<String>(),
        1 => "[()\\[\\]{}\"'`,@#;|\\\\ a1:.-]{0,60}",
    ];
    run_property_skipping("random_text", 4_000, s, |t| (t.clone(), BARE), excluded_text);
}

