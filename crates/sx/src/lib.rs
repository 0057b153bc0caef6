//! The façade an embedder depends on: [`Engine`] reads, evaluates and prints
//! SX, and installs the standard prelude and the test-harness hooks.
//!
//! ```
//! let mut engine = sx::Engine::new();
//! assert_eq!(engine.eval_to_string("(+ 1 2)").unwrap(), "3");
//! ```

use std::path::Path;
use std::rc::Rc;
use sx_cek::analyze::{datum_to_form, SpanMap};
use sx_cek::Machine;
pub use sx_cek::EvalError;
pub use sx_core::Value;
pub use sx_syntax::{Diagnostic, Span};

mod harness;
pub mod jit;
pub use harness::TestOutcome;

/// An error from [`Engine`] APIs: unreadable source, an uncaught SX error,
/// or an I/O failure.
#[derive(Debug, Clone)]
pub enum SxError {
    /// The reader rejected the source.
    Parse { file: Rc<str>, diagnostic: Diagnostic },
    /// An SX error nobody caught.
    Eval(EvalError),
    Io(String),
    /// A bad engine configuration (e.g. a backend not compiled in).
    Config(String),
}

impl std::fmt::Display for SxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SxError::Parse { file, diagnostic } => {
                write!(f, "{}:{}:{}: {}", file, diagnostic.span.line, diagnostic.span.col, diagnostic.message)
            }
            SxError::Eval(e) => write!(f, "{e}"),
            SxError::Io(m) | SxError::Config(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for SxError {}

impl SxError {
    /// The message without location.
    pub fn message(&self) -> String {
        match self {
            SxError::Parse { diagnostic, .. } => diagnostic.message.clone(),
            SxError::Eval(e) => e.message.clone(),
            SxError::Io(m) | SxError::Config(m) => m.clone(),
        }
    }
}

/// An execution tier above the CEK interpreter. The enum always lists every
/// backend; one whose cargo feature is off is refused with a message naming
/// the feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The CEK interpreter only.
    None,
    /// Native code through Cranelift (cargo feature `cranelift`).
    Cranelift,
    /// Native code through LLVM (cargo feature `llvm`).
    Llvm,
    /// WebAssembly through wasmtime (cargo feature `wasm`).
    Wasm,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::None => "none",
            Backend::Cranelift => "cranelift",
            Backend::Llvm => "llvm",
            Backend::Wasm => "wasm",
        }
    }

    /// Every backend, compiled in or not.
    pub const ALL: [Backend; 4] = [Backend::None, Backend::Cranelift, Backend::Llvm, Backend::Wasm];

    /// Whether this build contains the backend.
    pub fn available(self) -> bool {
        match self {
            Backend::None => true,
            Backend::Cranelift => cfg!(feature = "cranelift"),
            Backend::Llvm | Backend::Wasm => false,
        }
    }

    /// A code generator for this backend (`None` for the interpreter).
    fn code_generator(self) -> Result<Option<Box<dyn sx_jit::Backend>>, String> {
        match self {
            #[cfg(feature = "cranelift")]
            Backend::Cranelift => sx_jit_cranelift::builder().map(Some),
            _ => Ok(None),
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "none" | "cek" => Ok(Backend::None),
            "cranelift" => Ok(Backend::Cranelift),
            "llvm" => Ok(Backend::Llvm),
            "wasm" | "wasmtime" => Ok(Backend::Wasm),
            other => Err(format!("unknown backend '{other}' (expected one of: none, cranelift, llvm, wasm)")),
        }
    }
}

/// Options for a new [`Engine`].
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Continuation frames allowed before `Maximum recursion depth exceeded`.
    pub max_depth: usize,
    /// Install `defsuite`, `deftest` and the assertion helpers.
    pub test_harness: bool,
    /// The compiling tier.
    pub backend: Backend,
    /// Compile a lambda after this many calls (0 = never); `None`: the default.
    pub jit_threshold: Option<u32>,
    /// Byte budget of compiled code; `None`: the default.
    pub jit_budget: Option<usize>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { max_depth: sx_cek::machine::DEFAULT_MAX_DEPTH, test_harness: true, backend: Backend::None, jit_threshold: None, jit_budget: None }
    }
}

/// An SX interpreter instance. Not thread-safe (`!Send`): create one per thread.
pub struct Engine {
    m: Machine,
    jit: jit::SharedJit,
    /// Recently evaluated sources, for showing the offending line of an error.
    sources: std::collections::VecDeque<(Rc<str>, Rc<str>)>,
}

const KEPT_SOURCES: usize = 32;

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

const PRELUDE: &str = include_str!("prelude.sx");

impl Engine {
    pub fn new() -> Engine {
        Engine::build(EngineOptions::default(), None)
    }

    /// An engine with the given options; fails when the requested backend
    /// is not compiled into this build.
    pub fn with_options(opts: EngineOptions) -> Result<Engine, SxError> {
        if !opts.backend.available() {
            let b = opts.backend.name();
            return Err(SxError::Config(format!(
                "backend '{b}' is not compiled in: rebuild with `--features {b}` (available: {})",
                Backend::ALL.iter().filter(|b| b.available()).map(|b| b.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        let generator = opts.backend.code_generator().map_err(SxError::Config)?;
        Ok(Engine::build(opts, generator))
    }

    /// An engine whose compiled tier uses `generator`, a code generator of
    /// the embedder's own (any [`sx_jit::Backend`]); `opts.backend` only
    /// names it in reports.
    pub fn with_code_generator(opts: EngineOptions, generator: Box<dyn sx_jit::Backend>) -> Engine {
        Engine::build(opts, Some(generator))
    }

    fn build(opts: EngineOptions, generator: Option<Box<dyn sx_jit::Backend>>) -> Engine {
        let mut m = Machine::new();
        m.max_depth = opts.max_depth;
        let backend_name = generator.as_ref().map_or(opts.backend.name(), |g| g.name());
        let signals = m.tier_signals.clone();
        let mut e = Engine { m, jit: jit::new_state(backend_name, signals), sources: std::collections::VecDeque::new() };
        let shared = e.jit.clone();
        jit::install(&mut e, &shared);
        if let Some(generator) = generator {
            let cache = e.jit.borrow().cache.clone();
            let tier = sx_jit::JitTier::new(generator, cache);
            e.jit.borrow_mut().tier = Some(tier.clone());
            e.m.tier = Some(tier);
        }
        if let Some(t) = opts.jit_threshold {
            e.set_jit_threshold(t);
        }
        if let Some(b) = opts.jit_budget {
            e.jit.borrow().cache.borrow_mut().set_budget(b);
        }
        for (src, name) in [(PRELUDE, "<prelude>"), (jit::JIT_PRELUDE, "<prelude-jit>")] {
            if let Err(err) = e.eval_str(src, name) {
                // The prelude is part of the build; failing here is a bug.
                panic!("SX prelude failed: {err}");
            }
        }
        if opts.test_harness {
            if let Err(err) = e.eval_str(harness::HARNESS, "<harness>") {
                panic!("SX test harness failed: {err}");
            }
        }
        e
    }

    /// The underlying machine, for advanced embedding.
    pub fn machine(&mut self) -> &mut Machine {
        &mut self.m
    }

    /// Evaluate every form of `src` in order; returns the last value.
    pub fn eval_str(&mut self, src: &str, file: &str) -> Result<Value, SxError> {
        let file: Rc<str> = Rc::from(file);
        self.remember_source(&file, src);
        let forms = sx_syntax::parse(src).map_err(|d| SxError::Parse { file: file.clone(), diagnostic: d })?;
        let mut last = Value::NIL;
        for d in &forms {
            let mut spans = SpanMap::new();
            let form = datum_to_form(&mut self.m, d, &mut spans).map_err(|e| {
                SxError::Eval(EvalError {
                    message: match e {
                        sx_core::Error::Msg(m) => m,
                        sx_core::Error::Raise(v) => self.m.rt.error_message(v),
                    },
                    value: Value::NIL,
                    file: Some(file.clone()),
                    span: Some(d.span),
                    backtrace: Vec::new(),
                })
            })?;
            last = self.m.eval_toplevel(form, &file, &spans).map_err(|mut e| {
                if e.span.is_none_or(|s| s.line == 0) {
                    e.span = Some(d.span);
                    e.file = Some(file.clone());
                }
                if e.file.is_none() {
                    e.file = Some(file.clone());
                }
                SxError::Eval(e)
            })?;
            self.m.maybe_collect(&[last]);
        }
        Ok(last)
    }

    fn remember_source(&mut self, file: &Rc<str>, src: &str) {
        if file.starts_with("<prelude") || file.starts_with("<harness") {
            return;
        }
        self.sources.retain(|(f, _)| f != file);
        if self.sources.len() >= KEPT_SOURCES {
            self.sources.pop_front();
        }
        self.sources.push_back((file.clone(), Rc::from(src)));
    }

    /// Render an error for a person: `file:line:col: message`, the source
    /// line with a caret under the span, and the SX backtrace.
    pub fn render_error(&self, err: &SxError) -> String {
        let source_of = |f: &str| self.sources.iter().rev().find(|(n, _)| &**n == f).map(|(_, s)| s.clone());
        match err {
            SxError::Parse { file, diagnostic } => {
                let src = source_of(file);
                sx_diagnostics::render(&sx_diagnostics::Report {
                    message: &diagnostic.message,
                    file: Some(file),
                    span: Some(diagnostic.span),
                    source: src.as_deref(),
                    backtrace: &[],
                })
            }
            SxError::Eval(e) => {
                let file = e.file.as_deref();
                let src = file.and_then(source_of);
                let trace: Vec<sx_diagnostics::TraceLine> = e
                    .backtrace
                    .iter()
                    .map(|t| sx_diagnostics::TraceLine { name: t.name.clone(), file: t.file.to_string(), line: t.line, col: t.col })
                    .collect();
                sx_diagnostics::render(&sx_diagnostics::Report { message: &e.message, file, span: e.span, source: src.as_deref(), backtrace: &trace })
            }
            SxError::Io(m) | SxError::Config(m) => format!("{m}\n"),
        }
    }

    /// Evaluate and print the last value readably (section 4).
    pub fn eval_to_string(&mut self, src: &str) -> Result<String, SxError> {
        let v = self.eval_str(src, "<eval>")?;
        Ok(self.inspect(v))
    }

    /// Run a file.
    pub fn run_file(&mut self, path: &Path) -> Result<Value, SxError> {
        let src = std::fs::read_to_string(path).map_err(|e| SxError::Io(format!("{}: {e}", path.display())))?;
        self.eval_str(&src, &path.display().to_string())
    }

    /// The readable form of a value.
    pub fn inspect(&self, v: Value) -> String {
        sx_core::print::inspect(&self.m.rt, v)
    }

    /// The display form of a value (what `str` uses).
    pub fn display(&self, v: Value) -> String {
        sx_core::print::display(&self.m.rt, v)
    }

    /// Call a global function by name.
    pub fn call(&mut self, name: &str, args: &[Value]) -> Result<Value, SxError> {
        let f = self.m.lookup_global(name).ok_or_else(|| {
            SxError::Eval(EvalError { message: format!("Undefined symbol: {name}"), value: Value::NIL, file: None, span: None, backtrace: Vec::new() })
        })?;
        self.m.call_value(f, args).map_err(|e| {
            let (message, value) = match e {
                sx_core::Error::Msg(m) => (m, Value::NIL),
                sx_core::Error::Raise(v) => (self.m.rt.error_message(v), v),
            };
            SxError::Eval(EvalError { message, value, file: None, span: None, backtrace: Vec::new() })
        })
    }

    /// A flag that interrupts the running program when set (from any thread,
    /// e.g. a Ctrl-C handler): the program raises `Interrupted`, which it can
    /// catch like any error.
    pub fn interrupt_handle(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.m.interrupt.clone()
    }

    /// Redirect `print`/`display` output.
    pub fn set_output(&mut self, out: Box<dyn std::io::Write>) {
        self.m.rt.out = out;
    }

    /// Run a test file (`defsuite`/`deftest`) and return each test's outcome.
    pub fn run_tests(&mut self, src: &str, file: &str) -> (Vec<TestOutcome>, Option<SxError>) {
        harness::run_tests(self, src, file)
    }

    /// The JIT cache's human-readable summary (what `jit-report` returns).
    pub fn jit_report(&self) -> String {
        jit::report(&self.jit.borrow())
    }

    /// Lambda calls the compiled tier saw and how many of them ran compiled
    /// code (`None` without a compiling backend).
    pub fn jit_call_coverage(&self) -> Option<(u64, u64)> {
        let st = self.jit.borrow();
        let c = st.tier.as_ref()?.counters_with(&st.signals);
        Some((c.lambda_calls, c.compiled_calls))
    }

    /// Everything the compiled tier counted (`None` without a compiling
    /// backend); `lambda_calls` includes the calls the interpreter entered.
    pub fn jit_counters(&self) -> Option<sx_jit::TierCounters> {
        let st = self.jit.borrow();
        Some(st.tier.as_ref()?.counters_with(&st.signals))
    }

    /// Time the compiled tier spent lowering and compiling, in microseconds
    /// (`None` without a compiling backend).
    pub fn jit_compile_micros(&self) -> Option<u64> {
        let st = self.jit.borrow();
        Some(st.tier.as_ref()?.counters().compile_us)
    }

    /// Compile latencies (microseconds) of the most recent compilations
    /// (`None` without a compiling backend).
    pub fn jit_compile_latencies_us(&self) -> Option<Vec<u32>> {
        let st = self.jit.borrow();
        Some(st.tier.as_ref()?.compile_latencies_us())
    }

    /// The numeric fields of `jit-stats`, in section 8 order.
    pub fn jit_stats_fields(&self) -> Vec<(&'static str, u64)> {
        self.jit.borrow().stats().numeric_fields().to_vec()
    }

    /// Set the call count at which lambdas are compiled (0 = never).
    pub fn set_jit_threshold(&mut self, n: u32) {
        self.jit.borrow().set_threshold(n);
    }

    /// Names of every built-in primitive (native and machine-level),
    /// excluding internal `%`-prefixed helpers.
    pub fn primitive_names(&self) -> Vec<&'static str> {
        self.m.primitive_names().into_iter().filter(|n| !n.starts_with('%')).collect()
    }

    /// Names of every special form, excluding internal `%`-prefixed aliases.
    pub fn special_form_names(&self) -> Vec<String> {
        self.m.special_form_names().into_iter().filter(|n| !n.starts_with('%')).collect()
    }

    /// Define a global SX function implemented in Rust. The closure gets the
    /// runtime (to allocate and inspect values) and the arguments; arity is
    /// checked before it runs (`max = None`: variadic).
    ///
    /// ```
    /// let mut e = sx::Engine::new();
    /// e.define_fn("twice", 1, Some(1), |rt, args| {
    ///     let n = rt.expect_int("twice", args[0])?;
    ///     Ok(rt.int(n * 2))
    /// });
    /// assert_eq!(e.eval_to_string("(twice 21)").unwrap(), "42");
    /// ```
    pub fn define_fn<F>(&mut self, name: &str, min: usize, max: Option<usize>, f: F)
    where
        F: Fn(&mut sx_core::Rt, &[Value]) -> sx_core::Result<Value> + 'static,
    {
        // Names live as long as the engine's primitive table.
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        self.m.define_host_fn(name, min, max, Rc::new(f));
    }

    /// Every globally bound name (for completion), sorted.
    pub fn global_names(&self) -> Vec<String> {
        let mut v = self.m.global_names();
        v.retain(|n| !n.starts_with('%'));
        v.extend(self.special_form_names());
        v.sort();
        v.dedup();
        v
    }

    /// True when `name` is bound globally (primitive, prelude or user definition).
    pub fn is_defined(&self, name: &str) -> bool {
        self.m.lookup_global(name).is_some()
    }

    /// Live heap objects (for memory diagnostics).
    pub fn live_objects(&self) -> usize {
        self.m.rt.heap.live_objects()
    }

    /// Garbage collections so far (for memory diagnostics).
    pub fn collections(&self) -> u64 {
        self.m.rt.heap.stats.collections
    }

    /// Run a full garbage collection now.
    pub fn collect_garbage(&mut self) {
        self.m.collect_now();
    }
}
