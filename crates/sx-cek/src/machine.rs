//! The CEK machine. Control is a node of analysed code or a value being
//! returned; the environment is a heap `Env` chain; the continuation is the
//! frame stack (`entries`) plus the value stack (`vals`) holding evaluated
//! call arguments. Both live on the Rust heap, so recursion depth is bounded
//! only by memory and the configurable `max_depth`.

use crate::analyze::{special_form_table, Analyzer, Sf, SpanMap};
use crate::builtins::{machine_primitives, MOp};
use crate::code::{BinOp, Code, Leaf, MatchClause, Node, NodeId, Pat};
use crate::frames::{push_entry, ContinuationObj, Entry, Frame};
use hashbrown::HashMap;
use std::rc::Rc;
use sx_core::error::{arity_error, Error, Result};
use sx_core::heap::{DictMap, Obj, Roots, Tracer};
use sx_core::prims::{native_primitives, PrimFn};
use sx_core::{Rt, Value};
use sx_syntax::Span;

/// A function supplied by the embedder; it may carry state.
pub type HostFn = Rc<dyn Fn(&mut Rt, &[Value]) -> Result<Value>>;

pub enum PrimKind {
    Native(PrimFn),
    Machine(MOp),
    Host(HostFn),
}

pub struct Prim {
    pub name: &'static str,
    pub min: usize,
    pub max: Option<usize>,
    pub pure: bool,
    pub kind: PrimKind,
}

/// An error that reached the top of a run, with where it was raised.
#[derive(Debug, Clone)]
pub struct EvalError {
    pub message: String,
    pub value: Value,
    pub file: Option<Rc<str>>,
    pub span: Option<Span>,
    /// Active functions when the error was raised, innermost first.
    pub backtrace: Vec<TraceFrame>,
}

/// One line of an SX backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceFrame {
    /// The function's name, `<lambda>` or `<top level>`.
    pub name: String,
    pub file: Rc<str>,
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for TraceFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}:{}:{}", self.name, self.file, self.line, self.col)
    }
}

fn code_label(code: &Code) -> String {
    match (&code.name, &code.params) {
        (Some(n), _) => n.to_string(),
        (None, Some(_)) => "<lambda>".into(),
        (None, None) => "<top level>".into(),
    }
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, &self.span) {
            (Some(file), Some(sp)) if sp.line > 0 => write!(f, "{}:{}:{}: {}", file, sp.line, sp.col, self.message),
            _ => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for EvalError {}

pub(crate) enum Ctl {
    /// Evaluate node `n` (a `NodeId`, widened: see the size note below).
    Eval(u64),
    Ret(Value),
    /// Apply `vals[base]` to `vals[base+1..]`.
    Apply(usize),
    Raise(Value),
    /// `raise-continuable`.
    RaiseContinuable(Value),
    /// Switch to the code in `Machine::entering` and evaluate its root;
    /// whoever returns this has already set the environment (the run
    /// loop's `env`) to the new one.
    Enter,
    /// Switch to the code, environment and node in `Machine::resume_to`.
    Resume,
    /// This run must look past a `JitBarrier`: stop and hand the state to
    /// the compiled code that started it (see `Machine::jit_call`).
    Deopt,
    /// Perform the machine-level primitive in `Machine::pending_op`
    /// (resuming a deoptimised one).
    Op,
    /// No handler in this run takes the raised value: end the run with it.
    Uncaught(Value),
}

impl Ctl {
    #[inline(always)]
    pub(crate) fn eval(n: NodeId) -> Ctl {
        Ctl::Eval(n as u64)
    }

    fn raise(v: Value, continuable: bool) -> Ctl {
        if continuable {
            Ctl::RaiseContinuable(v)
        } else {
            Ctl::Raise(v)
        }
    }
}

// A tag and one 64-bit payload, the same primitive type in every variant:
// Rust then passes `Ctl` as a pair of scalars, in registers. (A larger
// `Ctl`, or payloads of different types, went through the stack on every
// step, and the wide load copying it stalled on the narrow stores that
// wrote it.) Whatever does not fit waits in a machine field.
const _: () = assert!(std::mem::size_of::<Ctl>() == 16);

/// Where a deoptimised computation resumes once its frames are rebuilt.
pub enum ResumePoint {
    /// Evaluate `node` of `code` in `env` (e.g. a `shift`).
    Eval { code: Rc<Code>, env: Value, node: NodeId },
    /// Apply `f` to `args` (e.g. `call/cc`, `context`, a continuation).
    Apply { f: Value, args: Vec<Value> },
    /// Raise `value` (an error, or `raise-continuable` when `continuable`).
    Raise { value: Value, continuable: bool },
    /// Perform a machine-level primitive again (`call/cc`, `context`, ...).
    MachineOp { op: MOp, args: Vec<Value> },
    /// Return `value` into the innermost rebuilt frame (compiled code hands
    /// the rest of an operation, e.g. a failing primitive call, to the CEK).
    Ret(Value),
}

/// One pending CEK frame of a compiled activation being deoptimised: node
/// `node` of `code` in `env`, waiting for its `i`-th sub-expression, with the
/// values it already evaluated.
pub struct PendingFrame {
    pub code: Rc<Code>,
    pub env: Value,
    pub node: NodeId,
    pub i: u32,
    pub vals: Vec<Value>,
}

/// One pending frame of a deoptimised activation (see [`PendingFrame`]).
struct DeoptFrame {
    code: Rc<Code>,
    env: Value,
    node: NodeId,
    i: u32,
    vals: (u32, u32),
}

/// Frames set aside while a deoptimisation passes down through runs and
/// compiled activations (with `vbase` relative to `vals`).
struct Segment {
    entries: Vec<Entry>,
    vals: Vec<Value>,
}

/// The state gathered while compiled activations unwind.
#[derive(Default)]
pub(crate) struct DeoptState {
    /// Frames set aside on the way down: of interrupted nested runs, and of
    /// the compiled activations between them when a raise passed through
    /// without stopping. Innermost first; rebuilt outermost first where
    /// the deoptimisation finishes, each frame moved once (moving them at
    /// every run on the way made a deep raise quadratic).
    nested: Vec<Segment>,
    /// Does a frame of `nested` stop a raise's search (see
    /// [`stops_raise`])?
    nested_stops_raise: bool,
    /// What the frames of `nested` alone decide for
    /// [`Machine::raise_skips_frames`] (the first deciding frame, topmost
    /// first), if one does.
    nested_skip_verdict: Option<bool>,
    resume: Option<ResumePoint>,
    /// Pending frames of the compiled activations: `frames[activations[k]..]`
    /// up to the next start belong to activation `k`; activations are added
    /// innermost first, each one's frames outermost first. Values of frame
    /// `f` are `frame_vals[f.vals.0 .. f.vals.0 + f.vals.1]`.
    frames: Vec<DeoptFrame>,
    frame_vals: Vec<Value>,
    activations: Vec<usize>,
    /// The run that asked for this deoptimisation must end first (see
    /// [`Machine::jit_leave_run`]).
    leave_run: bool,
    /// An error is on its way to a handler below the compiled frames, and
    /// nothing between needs them (see [`Machine::raise_skips_frames`]):
    /// they are dropped instead of rebuilt.
    discard: bool,
}

impl DeoptState {
    fn trace(&self, t: &mut Tracer) {
        for seg in &self.nested {
            for e in &seg.entries {
                e.frame.trace(t);
            }
            t.mark_all(&seg.vals);
        }
        for f in &self.frames {
            t.mark(f.env);
        }
        t.mark_all(&self.frame_vals);
        match &self.resume {
            Some(ResumePoint::Eval { env, .. }) => t.mark(*env),
            Some(ResumePoint::Apply { f, args }) => {
                t.mark(*f);
                t.mark_all(args);
            }
            Some(ResumePoint::Raise { value, .. }) => t.mark(*value),
            Some(ResumePoint::MachineOp { args, .. }) => t.mark_all(args),
            Some(ResumePoint::Ret(v)) => t.mark(*v),
            None => {}
        }
    }
}

/// The answer of compiled code (or of `Machine::jit_call`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitOutcome {
    /// The call returned this value.
    Value(Value),
    /// The computation must continue in the interpreter: the caller (compiled
    /// code) adds its own pending frames with `Machine::jit_push_frames` and
    /// returns `Unwind` too.
    Unwind,
}

/// A tier above the CEK (a compiling backend with its cache). Called on
/// every lambda entry when installed; `None` means "interpret this call".
pub trait Tier {
    fn enter(&self, m: &mut Machine, code: &Rc<Code>, env: Value) -> Option<JitOutcome>;
    /// Mark the values the tier holds (e.g. compiled activations' slots).
    fn trace(&self, _t: &mut Tracer) {}
}

/// Why a simple node could not produce a value directly.
#[derive(Clone, Copy, Debug)]
enum Simple {
    /// An error was raised; it is in `Machine::pending_err`.
    Err,
    /// A primitive guard failed: evaluate through the general path.
    Fallback,
}

pub struct Protocol {
    pub methods: Vec<Rc<str>>,
    pub impls: HashMap<Rc<str>, HashMap<Rc<str>, Value>>,
}

const CLOSURE_CACHE_SIZE: usize = 64;

/// One entry of the machine's closure cache: closure `f` runs `code` in `env`.
#[derive(Clone)]
struct ClosureEntry {
    f: Value,
    env: Value,
    code: Option<Rc<Code>>,
}

impl ClosureEntry {
    const EMPTY: ClosureEntry = ClosureEntry { f: Value::UNBOUND, env: Value::NIL, code: None };
}

/// The analysed code and environment of recently called closures, keyed by
/// the closure value. Finding them from the heap object costs a chain of
/// dependent loads on every call (the object, its code's vtable for the
/// `Rc`'s data offset, `Any`'s type id); a closure value names the same
/// object until the next collection (only a collection frees a slot), so
/// the cache is valid for the collection count `gc` it was filled under.
struct ClosureCache {
    gc: u64,
    entries: [ClosureEntry; CLOSURE_CACHE_SIZE],
}

impl ClosureCache {
    fn new() -> ClosureCache {
        ClosureCache { gc: 0, entries: std::array::from_fn(|_| ClosureEntry::EMPTY) }
    }

    #[inline(always)]
    fn slot(f: Value) -> usize {
        (f.0 >> 3) as usize % CLOSURE_CACHE_SIZE
    }
}

pub struct Machine {
    pub rt: Rt,
    pub(crate) globals: Vec<Value>,
    pub(crate) prims: Vec<Prim>,
    pub(crate) special_forms: HashMap<u32, Sf>,
    /// Values Rust code holds across a possible collection.
    pub(crate) analysis_roots: Vec<Value>,
    pub(crate) next_code_id: u64,
    pub(crate) list_prim_sym: u32,
    pub(crate) entries: Vec<Entry>,
    pub(crate) vals: Vec<Value>,
    /// Frames beyond this raise `Maximum recursion depth exceeded`.
    pub max_depth: usize,
    pub(crate) reader_macros: HashMap<String, Value>,
    pub(crate) wind_counter: u64,
    pub(crate) protocols: HashMap<Rc<str>, Protocol>,
    /// Where the last error was raised.
    pub(crate) err_span: Span,
    pub(crate) err_file: Option<Rc<str>>,
    /// Number of nested runs (macro expansion, wind thunks).
    pub(crate) run_depth: usize,
    /// The error behind a `Simple::Err`.
    pending_err: Option<Error>,
    /// `err_span` was set at the exact call that failed.
    err_span_precise: bool,
    /// Backtrace of the last error that reached a run's barrier.
    last_backtrace: Vec<TraceFrame>,
    /// The analysed code of recently called closures (see [`ClosureCache`]).
    closure_cache: ClosureCache,
    /// The payloads of `Ctl::Enter`, `Ctl::Resume` and `Ctl::Op`, set by
    /// whoever returns one and taken by the run loop at its next step.
    entering: Option<Rc<Code>>,
    resume_to: Option<(Rc<Code>, Value, NodeId)>,
    pending_op: Option<(MOp, Vec<Value>)>,
    /// The compiled tier, if any.
    pub tier: Option<Rc<dyn Tier>>,
    /// Shared with the compiled tier (see [`crate::code::TierQuiet`]).
    pub tier_signals: Rc<crate::code::TierSignals>,
    /// Set from another thread (e.g. a Ctrl-C handler) to interrupt the
    /// running program: the next lambda entry raises `Interrupted`.
    pub interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Deoptimisation in progress.
    pub(crate) deopt: Option<DeoptState>,
    /// Globals compiled code relies on (see [`Machine::watch_global`]).
    watched: std::cell::RefCell<Vec<bool>>,
    /// Bumped whenever a watched global is assigned.
    assumptions_epoch: u64,
    /// No global that held a primitive was ever assigned another value, so
    /// a call analysed as a call of a primitive still calls it (see
    /// [`Machine::prim_bound`]) without looking its global up.
    prims_intact: bool,
}

struct MachineRoots<'a> {
    tier: Option<&'a dyn Tier>,
    deopt: Option<&'a DeoptState>,
    globals: &'a [Value],
    entries: &'a [Entry],
    vals: &'a [Value],
    extra: &'a [Value],
    reader_macros: &'a HashMap<String, Value>,
    protocols: &'a HashMap<Rc<str>, Protocol>,
    regs: &'a [Value],
    /// The payloads of a `Ctl::Resume`/`Ctl::Op` on their way to the run loop.
    resume_to: Option<Value>,
    pending_op: &'a [Value],
}

impl Roots for MachineRoots<'_> {
    fn trace_roots(&self, t: &mut Tracer) {
        if let Some(tier) = self.tier {
            tier.trace(t);
        }
        if let Some(st) = self.deopt {
            st.trace(t);
        }
        t.mark_all(self.globals);
        for e in self.entries {
            e.frame.trace(t);
        }
        t.mark_all(self.vals);
        t.mark_all(self.extra);
        t.mark_all(self.regs);
        if let Some(env) = self.resume_to {
            t.mark(env);
        }
        t.mark_all(self.pending_op);
        for v in self.reader_macros.values() {
            t.mark(*v);
        }
        for p in self.protocols.values() {
            for imp in p.impls.values() {
                for v in imp.values() {
                    t.mark(*v);
                }
            }
        }
    }
}

/// Default continuation depth limit: enough for 1 000 000-deep non-tail
/// recursion, small enough that runaway recursion fails within a few
/// hundred MiB.
pub const DEFAULT_MAX_DEPTH: usize = 4_000_000;

/// Runs nested inside runs (each uses some Rust stack).
const MAX_NESTED_RUNS: usize = 64;

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl Machine {
    pub fn new() -> Machine {
        let mut m = Machine {
            rt: Rt::new(),
            globals: Vec::new(),
            prims: Vec::new(),
            special_forms: HashMap::new(),
            analysis_roots: Vec::new(),
            next_code_id: 0,
            list_prim_sym: 0,
            entries: Vec::new(),
            vals: Vec::new(),
            max_depth: DEFAULT_MAX_DEPTH,
            reader_macros: HashMap::new(),
            wind_counter: 0,
            protocols: HashMap::new(),
            err_span: Span::default(),
            err_file: None,
            run_depth: 0,
            pending_err: None,
            err_span_precise: false,
            last_backtrace: Vec::new(),
            closure_cache: ClosureCache::new(),
            entering: None,
            resume_to: None,
            pending_op: None,
            tier: None,
            tier_signals: Rc::new(crate::code::TierSignals::default()),
            deopt: None,
            interrupt: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            watched: std::cell::RefCell::new(Vec::new()),
            assumptions_epoch: 1,
            prims_intact: true,
        };
        for (name, sf) in special_form_table() {
            let id = m.rt.syms.intern(name);
            m.special_forms.insert(id, sf);
        }
        for p in native_primitives().into_iter().chain(sx_core::ext::primitives()).chain(crate::builtins::native_extras()) {
            m.add_prim(Prim { name: p.name, min: p.min, max: p.max, pure: p.pure, kind: PrimKind::Native(p.f) });
        }
        for (name, min, max, op) in machine_primitives() {
            m.add_prim(Prim { name, min, max, pure: false, kind: PrimKind::Machine(op) });
        }
        m.list_prim_sym = m.rt.syms.intern("%list");
        if let Some(id) = m.rt.syms.lookup("list") {
            let v = m.global(id);
            m.set_global(m.list_prim_sym, v);
        }
        m
    }

    fn add_prim(&mut self, p: Prim) {
        let id = self.prims.len() as u32;
        let sym = self.rt.syms.intern(p.name);
        self.prims.push(p);
        self.set_global(sym, Value::prim(id));
    }

    /// Define (or replace) a global function implemented in Rust by the
    /// embedder. `max = None` accepts any number of arguments above `min`.
    pub fn define_host_fn(&mut self, name: &'static str, min: usize, max: Option<usize>, f: HostFn) {
        self.add_prim(Prim { name, min, max, pure: false, kind: PrimKind::Host(f) });
    }

    /// Names of every primitive, native and machine-level.
    pub fn primitive_names(&self) -> Vec<&'static str> {
        self.prims.iter().map(|p| p.name).collect()
    }

    /// Names of every bound global.
    pub fn global_names(&self) -> Vec<String> {
        self.globals
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != Value::UNBOUND)
            .map(|(i, _)| self.rt.syms.name(i as u32).to_string())
            .collect()
    }

    /// Names of every special form (including internal aliases).
    pub fn special_form_names(&self) -> Vec<String> {
        self.special_forms.keys().map(|id| self.rt.syms.name(*id).to_string()).collect()
    }

    pub fn prim_name(&self, id: u32) -> &'static str {
        self.prims.get(id as usize).map_or("?", |p| p.name)
    }

    pub(crate) fn prim_is_native(&self, id: u32) -> bool {
        matches!(self.prims.get(id as usize), Some(Prim { kind: PrimKind::Native(_), .. }))
    }

    pub(crate) fn prim_is_pure(&self, id: u32) -> bool {
        self.prims.get(id as usize).is_some_and(|p| p.pure)
    }

    #[inline]
    pub fn global(&self, sym: u32) -> Value {
        self.globals.get(sym as usize).copied().unwrap_or(Value::UNBOUND)
    }

    /// Global `sym` still holds primitive `p`, as it did when a call of
    /// `sym` was analysed as a call of `p`.
    #[inline(always)]
    fn prim_bound(&self, sym: u32, p: u32) -> bool {
        self.prims_intact || self.global(sym) == Value::prim(p)
    }

    pub fn set_global(&mut self, sym: u32, v: Value) {
        let i = sym as usize;
        if i >= self.globals.len() {
            self.globals.resize(i + 1, Value::UNBOUND);
        }
        let old = std::mem::replace(&mut self.globals[i], v);
        if old != v && old.as_prim().is_some() {
            self.prims_intact = false;
        }
        if self.watched.get_mut().get(i).copied().unwrap_or(false) {
            self.assumptions_epoch += 1;
        }
    }

    /// Ask to be told when global `sym` is assigned: compiled code that
    /// assumed its value (a primitive, a function calling itself by name)
    /// compares [`Machine::assumptions_epoch`] with the epoch it checked
    /// its assumptions at.
    pub fn watch_global(&self, sym: u32) {
        let mut w = self.watched.borrow_mut();
        let i = sym as usize;
        if i >= w.len() {
            w.resize(i + 1, false);
        }
        w[i] = true;
    }

    /// Changes whenever a watched global is assigned (never `u64::MAX`).
    pub fn assumptions_epoch(&self) -> u64 {
        self.assumptions_epoch
    }

    pub fn define(&mut self, name: &str, v: Value) {
        let id = self.rt.syms.intern(name);
        self.set_global(id, v);
    }

    pub fn lookup_global(&self, name: &str) -> Option<Value> {
        let id = self.rt.syms.lookup(name)?;
        let v = self.global(id);
        (v != Value::UNBOUND).then_some(v)
    }

    pub(crate) fn reader_macro(&self, name: &str) -> Option<Value> {
        self.reader_macros.get(name).copied()
    }

    pub fn register_reader_macro(&mut self, name: &str, handler: Value) {
        self.reader_macros.insert(name.to_string(), handler);
    }

    // ---- garbage collection ----

    fn collect(&mut self, regs: &[Value]) {
        // The cache keeps code (and the constants it roots) alive, and its
        // keys name objects only until this collection: let go.
        self.closure_cache = ClosureCache::new();
        let roots = MachineRoots {
            tier: self.tier.as_deref(),
            deopt: self.deopt.as_ref(),
            globals: &self.globals,
            entries: &self.entries,
            vals: &self.vals,
            extra: &self.analysis_roots,
            reader_macros: &self.reader_macros,
            protocols: &self.protocols,
            regs,
            resume_to: self.resume_to.as_ref().map(|r| r.1),
            pending_op: self.pending_op.as_ref().map_or(&[], |p| &p.1[..]),
        };
        self.rt.heap.collect(&roots);
        self.closure_cache.gc = self.rt.heap.stats.collections;
    }

    /// Collect now if allocation since the last collection warrants it.
    /// Only call where every live value is reachable from the machine or `regs`.
    pub fn maybe_collect(&mut self, regs: &[Value]) {
        if self.rt.heap.wants_collection() {
            self.collect(regs);
        }
    }

    /// Force a full collection (all values not reachable from globals or
    /// frames are freed).
    pub fn collect_now(&mut self) {
        self.collect(&[]);
    }

    // ---- evaluation entry points ----

    /// Analyse one form in the global scope.
    pub fn analyze_toplevel(&mut self, form: Value, file: Rc<str>, spans: &SpanMap) -> Result<Rc<Code>> {
        Analyzer::new(self, file, spans, None).unit(form, false)
    }

    /// Evaluate a top-level form: macros are expanded and `begin` is split
    /// so that each sub-form is analysed after the previous one ran.
    pub fn eval_toplevel(&mut self, form: Value, file: &Rc<str>, spans: &SpanMap) -> std::result::Result<Value, EvalError> {
        self.analysis_roots.push(form);
        let base = self.analysis_roots.len();
        let r = self.eval_toplevel_inner(form, file, spans, 0);
        self.analysis_roots.truncate(base - 1);
        r
    }

    fn eval_toplevel_inner(&mut self, form: Value, file: &Rc<str>, spans: &SpanMap, depth: usize) -> std::result::Result<Value, EvalError> {
        if let Some(items) = self.rt.as_list(form).map(|l| l.to_vec()) {
            if let Some(head) = items.first().and_then(|h| h.as_symbol()) {
                if depth < 1000 {
                    if matches!(self.special_forms.get(&head), Some(Sf::Begin)) {
                        let mut last = Value::NIL;
                        for f in &items[1..] {
                            last = self.eval_toplevel_inner(*f, file, spans, depth + 1)?;
                            self.analysis_roots.push(last);
                        }
                        return Ok(last);
                    }
                    let g = self.global(head);
                    if let Some(Obj::Macro(_)) = self.rt.heap.get(g) {
                        let expanded = self.expand_macro(g, &items[1..]).map_err(|e| self.to_eval_error(e, Some(file.clone()), spans.get(&form.heap_index().unwrap_or(u32::MAX)).copied()))?;
                        self.analysis_roots.push(expanded);
                        return self.eval_toplevel_inner(expanded, file, spans, depth + 1);
                    }
                }
            }
        }
        let code = match self.analyze_toplevel(form, file.clone(), spans) {
            Ok(c) => c,
            Err(e) => {
                let sp = form.heap_index().and_then(|i| spans.get(&i)).copied();
                return Err(self.to_eval_error(e, Some(file.clone()), sp));
            }
        };
        self.run_code(code, Value::NIL)
    }

    pub(crate) fn to_eval_error(&self, e: Error, file: Option<Rc<str>>, span: Option<Span>) -> EvalError {
        let (message, value) = match e {
            Error::Msg(m) => (m, Value::NIL),
            Error::Raise(v) => (self.rt.error_message(v), v),
        };
        EvalError { message, value, file, span, backtrace: Vec::new() }
    }

    /// The functions active at an uncaught error: the code where it was
    /// raised, then each pending frame of this run (one per activation).
    fn build_backtrace(&self, code: &Code) -> Vec<TraceFrame> {
        let mut out = Vec::new();
        let file = self.err_file.clone().unwrap_or_else(|| code.file.clone());
        out.push(TraceFrame { name: code_label(code), file, line: self.err_span.line, col: self.err_span.col });
        let mut last: Option<(u64, Value)> = None;
        for e in self.entries.iter().rev() {
            match &e.frame {
                Frame::Barrier => break,
                Frame::Node { code: c, env, node, .. } => {
                    let key = (c.id, *env);
                    if last == Some(key) {
                        continue;
                    }
                    last = Some(key);
                    let sp = c.spans.get(*node as usize).copied().unwrap_or_default();
                    out.push(TraceFrame { name: code_label(c), file: c.file.clone(), line: sp.line, col: sp.col });
                }
                _ => {}
            }
        }
        out
    }

    /// Run analysed code in `env` to completion.
    pub fn run_code(&mut self, code: Rc<Code>, env: Value) -> std::result::Result<Value, EvalError> {
        let root = code.root;
        let top = (code.file.clone(), code.spans.get(root as usize).copied().unwrap_or_default(), code.params.is_none());
        let base_entries = self.entries.len();
        let base_vals = self.vals.len();
        self.err_span = Span::default();
        self.err_file = None;
        self.err_span_precise = false;
        self.push_frame(Frame::Barrier);
        self.run_depth += 1;
        let r = self.run(code, env, Ctl::eval(root));
        self.run_depth -= 1;
        match r {
            Ok(v) => Ok(v),
            Err(v) => {
                self.entries.truncate(base_entries);
                self.vals.truncate(base_vals);
                let message = self.rt.error_message(v);
                let mut backtrace = std::mem::take(&mut self.last_backtrace);
                // The top-level form itself, when its frame was a tail call.
                let (file, sp, toplevel) = top;
                if toplevel && sp.line > 0 && !backtrace.iter().any(|t| t.name == "<top level>") {
                    backtrace.push(TraceFrame { name: "<top level>".into(), file, line: sp.line, col: sp.col });
                }
                Err(EvalError { message, value: v, file: self.err_file.clone(), span: Some(self.err_span), backtrace })
            }
        }
    }

    /// Apply `f` to `args` in a run of its own on top of the current
    /// continuation, based on `barrier`. Returns the run's end and the
    /// stack heights to restore.
    fn nested_run(&mut self, barrier: Frame, f: Value, args: &[Value]) -> (std::result::Result<Value, Value>, usize, usize) {
        let base_entries = self.entries.len();
        let base_vals = self.vals.len();
        if self.run_depth >= MAX_NESTED_RUNS {
            // Nested runs use the Rust stack (macro expanders, wind thunks,
            // reader macros calling themselves): bound them.
            let e = self.rt.str("Maximum recursion depth exceeded");
            return (Err(e), base_entries, base_vals);
        }
        self.push_frame(barrier);
        let base = self.vals.len();
        self.vals.push(f);
        self.vals.extend_from_slice(args);
        let dummy = self.dummy_code();
        self.run_depth += 1;
        let r = self.run(dummy, Value::NIL, Ctl::Apply(base));
        self.run_depth -= 1;
        (r, base_entries, base_vals)
    }

    /// Call an SX function from Rust (a nested run).
    pub fn call_value(&mut self, f: Value, args: &[Value]) -> Result<Value> {
        let (r, base_entries, base_vals) = self.nested_run(Frame::Barrier, f, args);
        match r {
            Ok(v) => Ok(v),
            Err(v) => {
                self.entries.truncate(base_entries);
                self.vals.truncate(base_vals);
                Err(Error::Raise(v))
            }
        }
    }

    fn dummy_code(&mut self) -> Rc<Code> {
        thread_local! {
            static EMPTY: Rc<Code> = Rc::new(Code {
                nodes: vec![Node::Const(Value::NIL)],
                spans: vec![Span::default()],
                root: 0,
                params: None,
                fixed: crate::code::FixedArity::NONE,
                name: None,
                file: Rc::from(""),
                consts: None,
                id: 0,
                calls: std::cell::Cell::new(0),
                tier_quiet: std::cell::Cell::new(crate::code::TierQuiet::default()),
                expansions: std::cell::RefCell::new(HashMap::new()),
            });
        }
        EMPTY.with(|c| c.clone())
    }

    /// Expand call site `n` of `code`, whose head is now the macro `mac`,
    /// and analyse the expansion in the call site's scope (cached).
    fn expand_at_runtime(&mut self, code: &Rc<Code>, n: NodeId, mac: Value) -> Result<Rc<Code>> {
        if let Some(frag) = code.expansions.borrow().get(&n) {
            return Ok(frag.clone());
        }
        let (form, scope) = match &code.nodes[n as usize] {
            Node::Call { form, scope, .. } => (*form, scope.clone()),
            _ => return Err(Error::msg("internal: not a call")),
        };
        let items = self.rt.as_list(form).map(|l| l.to_vec()).unwrap_or_default();
        if items.is_empty() {
            return Err(Error::msg("internal: macro call without source"));
        }
        let expanded = self.expand_macro(mac, &items[1..])?;
        self.analysis_roots.push(expanded);
        let spans = SpanMap::new();
        let r = Analyzer::new(self, code.file.clone(), &spans, scope).unit(expanded, true);
        self.analysis_roots.pop();
        let frag = r?;
        code.expansions.borrow_mut().insert(n, frag.clone());
        Ok(frag)
    }

    /// Call a macro's expander on unevaluated argument forms.
    pub(crate) fn expand_macro(&mut self, mac: Value, args: &[Value]) -> Result<Value> {
        let clo = match self.rt.heap.get(mac) {
            Some(Obj::Macro(c)) => c.clone(),
            _ => return Err(Error::msg("not a macro")),
        };
        let as_lambda = self.rt.heap.alloc(Obj::Lambda(clo));
        self.analysis_roots.push(as_lambda);
        let r = self.call_value(as_lambda, args);
        self.analysis_roots.pop();
        r
    }

    #[inline]
    pub(crate) fn push_frame(&mut self, frame: Frame) {
        push_entry(&mut self.entries, || Entry { frame, vbase: self.vals.len() as u32 });
    }

    // ---- the machine loop ----

    #[inline]
    fn lookup_local(&self, mut env: Value, depth: u16, slot: u16) -> Value {
        for _ in 0..depth {
            env = match self.rt.heap.env_parent(env) {
                Some(p) => p,
                None => return Value::NIL,
            };
        }
        self.rt.heap.env_get(env, slot as usize).unwrap_or(Value::NIL)
    }

    fn set_local(&mut self, mut env: Value, depth: u16, slot: u16, v: Value) {
        for _ in 0..depth {
            env = match self.rt.heap.env_parent(env) {
                Some(p) => p,
                None => return,
            };
        }
        self.rt.heap.env_set(env, slot as usize, v);
    }

    fn undefined(&self, sym: u32) -> Error {
        Error::Msg(format!("Undefined symbol: {}", self.rt.syms.name(sym)))
    }

    #[cold]
    fn fail(&mut self, e: Error) -> Simple {
        self.pending_err = Some(e);
        self.err_span_precise = true;
        Simple::Err
    }

    fn take_err(&mut self) -> Error {
        self.pending_err.take().unwrap_or_else(|| Error::msg("internal: missing error"))
    }

    /// Evaluate a simple node (constant, variable, pure primitive call)
    /// without touching the continuation.
    #[inline(always)]
    fn eval_simple(&mut self, code: &Code, env: Value, n: NodeId) -> std::result::Result<Value, Simple> {
        match &code.nodes[n as usize] {
            Node::Const(v) => Ok(*v),
            Node::Local0 { slot } => Ok(self.rt.heap.env_get(env, *slot as usize).unwrap_or(Value::NIL)),
            Node::Local { depth, slot } => Ok(self.lookup_local(env, *depth, *slot)),
            Node::Global { sym } => {
                let v = self.global(*sym);
                if v == Value::UNBOUND {
                    self.err_span = code.spans[n as usize];
                    let e = self.undefined(*sym);
                    Err(self.fail(e))
                } else {
                    Ok(v)
                }
            }
            Node::Call { prim: Some((p, sym)), op: Some(op), leaves, .. } => match self.binop_leaves(env, *p, *sym, *op, *leaves) {
                Some(v) => Ok(v),
                None => self.eval_simple_call(code, env, n),
            },
            Node::Call { prim: Some(_), .. } => self.eval_simple_call(code, env, n),
            _ => Err(Simple::Fallback),
        }
    }

    /// A fixnum leaf operand's value (see [`Leaf`]).
    #[inline(always)]
    fn leaf_fixnum(&self, env: Value, l: Leaf) -> Option<i64> {
        match l.slot() {
            Some(slot) => self.rt.heap.env_get(env, slot)?.as_fixnum(),
            None => l.constant(),
        }
    }

    /// The commonest simple call, inline: a binary fixnum primitive (still
    /// bound to its global) of two leaves whose result is a fixnum.
    #[inline(always)]
    fn binop_leaves(&self, env: Value, p: u32, sym: u32, op: BinOp, [x, y]: [Leaf; 2]) -> Option<Value> {
        if op == BinOp::Not || !self.prim_bound(sym, p) {
            return None;
        }
        let a = self.leaf_fixnum(env, x)?;
        let b = self.leaf_fixnum(env, y)?;
        op.fixnum(a, b)
    }

    /// [`Machine::eval_simple`] of a call's sub-expression `k` (`sub`), unless
    /// the call's `inline` mask says it always needs a frame.
    #[inline(always)]
    fn eval_operand(&mut self, code: &Code, env: Value, sub: NodeId, inline: u64, k: usize) -> std::result::Result<Value, Simple> {
        if k < 64 && inline & (1 << k) == 0 {
            return Err(Simple::Fallback);
        }
        self.eval_simple(code, env, sub)
    }

    #[inline(never)]
    fn eval_simple_call(&mut self, code: &Code, env: Value, n: NodeId) -> std::result::Result<Value, Simple> {
        let Node::Call { args, prim: Some((p, sym)), op, .. } = &code.nodes[n as usize] else {
            return Err(Simple::Fallback);
        };
        if !self.prim_bound(*sym, *p) {
            return Err(Simple::Fallback);
        }
        if let Some(op) = op {
            let a = self.eval_simple(code, env, args[0])?;
            if *op == BinOp::Not {
                return Ok(Value::bool(!a.truthy()));
            }
            let b = self.eval_simple(code, env, args[1])?;
            if let (Some(x), Some(y)) = (a.as_fixnum(), b.as_fixnum()) {
                if let Some(r) = op.fixnum(x, y) {
                    return Ok(r);
                }
            }
            let base = self.vals.len();
            self.vals.push(a);
            self.vals.push(b);
            let r = self.call_native(*p, base);
            self.vals.truncate(base);
            return match r {
                Ok(v) => Ok(v),
                Err(e) => {
                    self.err_span = code.spans[n as usize];
                    Err(self.fail(e))
                }
            };
        }
        if let [a] = **args {
            // One argument (`first`, `rest`, `empty?`, ...): no value stack.
            let a = self.eval_simple(code, env, a)?;
            return match self.call_native_with(*p, std::slice::from_ref(&a)) {
                Ok(v) => Ok(v),
                Err(e) => {
                    self.err_span = code.spans[n as usize];
                    Err(self.fail(e))
                }
            };
        }
        let base = self.vals.len();
        for a in args.iter() {
            match self.eval_simple(code, env, *a) {
                Ok(v) => self.vals.push(v),
                Err(e) => {
                    self.vals.truncate(base);
                    return Err(e);
                }
            }
        }
        let r = self.call_native(*p, base);
        self.vals.truncate(base);
        match r {
            Ok(v) => Ok(v),
            Err(e) => {
                self.err_span = code.spans[n as usize];
                Err(self.fail(e))
            }
        }
    }

    /// A call whose arguments are all simple and whose head is a lambda of
    /// at most eight fixed parameters: bind the arguments straight into a
    /// new frame, without the value stack or `apply`.
    #[inline]
    fn enter_small_lambda(&mut self, c: &Rc<Code>, env_ref: &mut Value, n: NodeId, head: NodeId, args: &[NodeId]) -> Option<Ctl> {
        let env = *env_ref;
        const MAX: usize = 8;
        if args.len() > MAX {
            return None;
        }
        let f = match self.eval_simple(c, env, head) {
            Ok(f) => f,
            Err(Simple::Err) => return Some(self.fail_ctl(c, n)),
            Err(Simple::Fallback) => return None,
        };
        // A call of the running code itself (recursion) keeps it: no
        // reference count to bump now and drop at the switch.
        let (callee, parent, size) = {
            let (lc, parent) = self.closure_ref(f)?;
            let size = lc.fixed_frame(args.len())?;
            (if Rc::ptr_eq(lc, c) { None } else { Some(lc.clone()) }, parent, size)
        };
        let mut slots = [Value::NIL; MAX];
        for (i, a) in args.iter().enumerate() {
            slots[i] = match self.eval_simple(c, env, *a) {
                Ok(v) => v,
                Err(Simple::Err) => return Some(self.fail_ctl(c, n)),
                // Arguments are pure: the general path may evaluate them again.
                Err(Simple::Fallback) => return None,
            };
        }
        if self.entries.len() > self.max_depth {
            return Some(self.error_ctl(c, n, Error::msg("Maximum recursion depth exceeded")));
        }
        if let Err(e) = self.check_interrupt() {
            return Some(self.error_ctl(c, n, e));
        }
        let new_env = self.rt.heap.alloc_env(parent, &slots[..args.len()], size);
        Some(self.enter_frame(c, env_ref, callee, new_env))
    }

    /// Enter the body of the lambda `callee` (`None`: the running code `c`
    /// itself) in its new frame `new_env`: what a call does once its
    /// arguments are bound.
    #[inline(always)]
    fn enter_frame(&mut self, c: &Rc<Code>, env_ref: &mut Value, callee: Option<Rc<Code>>, new_env: Value) -> Ctl {
        let lc = callee.as_ref().unwrap_or(c);
        if self.count_entry(lc) {
            if let Some(ctl) = self.tier_enter(lc, new_env) {
                return ctl;
            }
        }
        if self.rt.heap.wants_collection() {
            self.collect(&[new_env]);
        }
        *env_ref = new_env;
        match callee {
            None => Ctl::eval(c.root),
            Some(lc) => {
                self.entering = Some(lc);
                Ctl::Enter
            }
        }
    }

    /// A call of node `n` whose head and arguments wait on the value stack
    /// from `base`: a closure taking exactly these arguments as its fixed
    /// parameters is entered here; anything else goes to [`Machine::apply`].
    #[inline(always)]
    fn finish_call(&mut self, c: &Rc<Code>, env_ref: &mut Value, n: NodeId, base: usize) -> Ctl {
        let argc = self.vals.len() - base - 1;
        let f = self.vals[base];
        if self.entries.len() <= self.max_depth && self.check_interrupt().is_ok() {
            if let Some((lc, parent)) = self.closure_ref(f) {
                if let Some(size) = lc.fixed_frame(argc) {
                    let callee = if Rc::ptr_eq(lc, c) { None } else { Some(lc.clone()) };
                    let new_env = self.rt.heap.alloc_env(parent, &self.vals[base + 1..], size);
                    self.vals.truncate(base);
                    return self.enter_frame(c, env_ref, callee, new_env);
                }
            }
        }
        self.err_span = c.spans[n as usize];
        Ctl::Apply(base)
    }

    /// Native primitive `p` applied to `args` (not on the value stack).
    #[inline]
    fn call_native_with(&mut self, p: u32, args: &[Value]) -> Result<Value> {
        apply_native(&self.prims[p as usize], &mut self.rt, args)
    }

    /// Native primitive `p` applied to the values from `base` up.
    #[inline]
    fn call_native(&mut self, p: u32, base: usize) -> Result<Value> {
        apply_native(&self.prims[p as usize], &mut self.rt, &self.vals[base..])
    }

    /// The main loop. Returns when the Barrier pushed by the caller is
    /// reached (value) or an error is not handled above it.
    pub(crate) fn run(&mut self, mut code: Rc<Code>, mut env: Value, mut ctl: Ctl) -> std::result::Result<Value, Value> {
        loop {
            match ctl {
                Ctl::Eval(n) => ctl = self.eval_fast(&mut code, &mut env, n as NodeId),
                Ctl::Ret(v) => {
                    let Some(top) = self.entries.pop() else {
                        return Ok(v);
                    };
                    ctl = match top.frame {
                        Frame::Barrier | Frame::JitBarrier => return Ok(v),
                        Frame::Node { code: c, env: e, node, i } => {
                            code = c;
                            env = e;
                            self.resume(&code, &mut env, node, i, v)
                        }
                        Frame::Reset | Frame::Guard { .. } | Frame::Handlers { .. } | Frame::Scope { .. } => Ctl::Ret(v),
                        Frame::HandlerActive { continuable, .. } => {
                            if continuable {
                                Ctl::Ret(v)
                            } else {
                                // Keep the handler marked active so the new
                                // error is not handled by the same handler.
                                self.entries.push(top);
                                Ctl::Raise(self.rt.str("handler returned from non-continuable raise"))
                            }
                        }
                        Frame::HandlerSearch { value, continuable, mark, clause } => self.handler_search_step(value, continuable, mark, clause, v.truthy()),
                        Frame::TryCall => {
                            let mut d = DictMap::default();
                            d.insert(Rc::from("ok"), Value::TRUE);
                            d.insert(Rc::from("value"), v);
                            Ctl::Ret(self.rt.dict(d))
                        }
                        Frame::Wind { after, .. } => {
                            self.analysis_roots.push(v);
                            let r = self.call_value(after, &[]);
                            self.analysis_roots.pop();
                            match r {
                                Ok(_) => Ctl::Ret(v),
                                Err(e) => {
                                    let ev = self.rt.error_value(&e);
                                    Ctl::Raise(ev)
                                }
                            }
                        }
                        Frame::Ho { op, f, lists, i, n, acc, multi } => self.ho_step(op, f, lists, i, n, acc, multi, v),
                        Frame::Coroutine { co } => {
                            crate::builtins::set_coroutine_dead(&mut self.rt, co);
                            Ctl::Ret(v)
                        }
                    };
                }
                Ctl::Apply(base) => {
                    ctl = match self.apply(&mut code, &mut env, base) {
                        Ok(c) => c,
                        Err(e) => {
                            self.err_file = Some(code.file.clone());
                            self.vals.truncate(base);
                            let v = self.rt.error_value(&e);
                            Ctl::Raise(v)
                        }
                    }
                }
                Ctl::Enter => match self.entering.take() {
                    Some(c) => {
                        ctl = Ctl::eval(c.root);
                        code = c;
                    }
                    None => ctl = Ctl::Raise(self.rt.str("internal: entering no code")),
                },
                Ctl::Resume => match self.resume_to.take() {
                    Some((c, e, node)) => {
                        code = c;
                        env = e;
                        ctl = Ctl::eval(node);
                    }
                    None => ctl = Ctl::Raise(self.rt.str("internal: resuming nowhere")),
                },
                Ctl::Deopt => return Err(Value::UNBOUND),
                Ctl::Op => {
                    let Some((op, args)) = self.pending_op.take() else {
                        ctl = Ctl::Raise(self.rt.str("internal: no pending operation"));
                        continue;
                    };
                    ctl = match self.machine_op(op, args, &mut code, &mut env) {
                        Ok(c) => c,
                        Err(e) => {
                            let v = self.rt.error_value(&e);
                            Ctl::Raise(v)
                        }
                    }
                }
                Ctl::Raise(v) => {
                    ctl = match self.raise(v, false) {
                        Ok(c) => c,
                        Err(v) => Ctl::Uncaught(v),
                    }
                }
                Ctl::RaiseContinuable(v) => {
                    ctl = match self.raise(v, true) {
                        Ok(c) => c,
                        Err(v) => Ctl::Uncaught(v),
                    }
                }
                Ctl::Uncaught(v) => {
                    self.last_backtrace = self.build_backtrace(&code);
                    return Err(v);
                }
            }
        }
    }

    /// `Ctl::Eval` without going round the main loop while evaluation goes
    /// on with another node (an `if` branch, a sequence's first form) or a
    /// lambda body (a call entered without frames).
    #[inline(always)]
    fn eval_fast(&mut self, code: &mut Rc<Code>, env: &mut Value, mut n: NodeId) -> Ctl {
        loop {
            match self.eval_node(code, env, n) {
                Ctl::Eval(next) => n = next as NodeId,
                Ctl::Enter => match self.entering.take() {
                    Some(c) => {
                        n = c.root;
                        *code = c;
                    }
                    None => return Ctl::Enter,
                },
                c => return c,
            }
        }
    }

    /// The pending error of a failed simple evaluation, raised at node `n`.
    #[cold]
    fn fail_ctl(&mut self, code: &Code, n: NodeId) -> Ctl {
        let e = self.take_err();
        self.error_ctl(code, n, e)
    }

    /// An error raised while evaluating node `n`.
    #[cold]
    fn error_ctl(&mut self, code: &Code, n: NodeId, e: Error) -> Ctl {
        self.note_error(code, n);
        let v = self.rt.error_value(&e);
        Ctl::Raise(v)
    }

    fn note_error(&mut self, code: &Code, n: NodeId) {
        self.err_file = Some(code.file.clone());
        if std::mem::take(&mut self.err_span_precise) {
            return;
        }
        if let Some(sp) = code.spans.get(n as usize) {
            self.err_span = *sp;
        }
    }

    #[inline(always)]
    fn eval_node(&mut self, c: &Rc<Code>, env: &mut Value, n: NodeId) -> Ctl {
        match &c.nodes[n as usize] {
            Node::Const(v) => Ctl::Ret(*v),
            Node::Local { depth, slot } => Ctl::Ret(self.lookup_local(*env, *depth, *slot)),
            Node::Local0 { slot } => Ctl::Ret(self.rt.heap.env_get(*env, *slot as usize).unwrap_or(Value::NIL)),
            Node::Global { sym } => {
                let v = self.global(*sym);
                if v == Value::UNBOUND {
                    let e = self.undefined(*sym);
                    self.error_ctl(c, n, e)
                } else {
                    Ctl::Ret(v)
                }
            }
            Node::Call { head, args, prim, direct, simple_args, inline, .. } => {
                if *simple_args && !*direct {
                    if let Some(ctl) = self.enter_small_lambda(c, env, n, *head, args) {
                        return ctl;
                    }
                }
                if *direct {
                    if let Some((p, sym)) = prim {
                        if self.prim_bound(*sym, *p) {
                            match self.eval_simple(c, *env, n) {
                                Ok(v) => return Ctl::Ret(v),
                                Err(Simple::Err) => return self.fail_ctl(c, n),
                                Err(Simple::Fallback) => {}
                            }
                        }
                    }
                }
                // A head that became a macro after analysis: expand now.
                if let Node::Global { sym } = c.nodes[*head as usize] {
                    let hv = self.global(sym);
                    if let Some(Obj::Macro(_)) = self.rt.heap.get(hv) {
                        let frag = match self.expand_at_runtime(c, n, hv) {
                            Ok(f) => f,
                            Err(e) => return self.error_ctl(c, n, e),
                        };
                        self.entering = Some(frag);
                        return Ctl::Enter;
                    }
                }
                // General path: evaluate head and arguments left to right.
                let base = self.vals.len();
                let total = 1 + args.len();
                let mut i = 0;
                while i < total {
                    let sub = if i == 0 { *head } else { args[i - 1] };
                    match self.eval_operand(c, *env, sub, *inline, i) {
                        Ok(v) => self.vals.push(v),
                        Err(Simple::Err) => {
                            self.vals.truncate(base);
                            return self.fail_ctl(c, n);
                        }
                        Err(Simple::Fallback) => {
                            push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: i as u32 }, vbase: base as u32 });
                            return Ctl::eval(sub);
                        }
                    }
                    i += 1;
                }
                self.finish_call(c, env, n, base)
            }
            Node::If { test, then, els } => {
                // The commonest test, a fixnum comparison of leaves, without
                // dispatching on the test node's kind (a jump shared by every
                // simple evaluation, which mispredicts often).
                if let Node::Call { prim: Some((p, sym)), op: Some(op), leaves, .. } = &c.nodes[*test as usize] {
                    if let Some(v) = self.binop_leaves(*env, *p, *sym, *op, *leaves) {
                        return Ctl::eval(if v.truthy() { *then } else { *els });
                    }
                }
                self.eval_if(c, env, n, *test, *then, *els)
            }
            Node::Seq(items) => {
                if items.len() > 1 {
                    self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                }
                Ctl::eval(items[0])
            }
            Node::And(items) | Node::Or(items) => {
                if items.len() > 1 {
                    self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                }
                Ctl::eval(items[0])
            }
            Node::SetLocal { value, .. } | Node::SetGlobal { value, .. } => {
                self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                Ctl::eval(*value)
            }
            Node::Lambda(lc) => {
                let clo = sx_core::heap::Closure { code: lc.clone(), env: *env };
                Ctl::Ret(self.rt.heap.alloc(Obj::Lambda(clo)))
            }
            Node::Macro(lc) => {
                let clo = sx_core::heap::Closure { code: lc.clone(), env: *env };
                Ctl::Ret(self.rt.heap.alloc(Obj::Macro(clo)))
            }
            Node::Let { inits, body, size, rec } => {
                if *rec {
                    let new_env = self.new_env(*env, *size as usize);
                    if inits.is_empty() {
                        *env = new_env;
                        return Ctl::eval(*body);
                    }
                    self.push_frame(Frame::Node { code: c.clone(), env: new_env, node: n, i: 0 });
                    *env = new_env;
                    return Ctl::eval(inits[0]);
                }
                let base = self.vals.len();
                for (i, init) in inits.iter().enumerate() {
                    match self.eval_simple(c, *env, *init) {
                        Ok(v) => self.vals.push(v),
                        Err(Simple::Err) => {
                            self.vals.truncate(base);
                            return self.fail_ctl(c, n);
                        }
                        Err(Simple::Fallback) => {
                            push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: i as u32 }, vbase: base as u32 });
                            return Ctl::eval(*init);
                        }
                    }
                }
                *env = self.env_from_vals(*env, base, *size as usize);
                Ctl::eval(*body)
            }
            Node::Dict { vals, .. } if vals.is_empty() => {
                let d = DictMap::default();
                Ctl::Ret(self.rt.dict(d))
            }
            Node::Dict { vals, .. } => {
                self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                Ctl::eval(vals[0])
            }
            Node::QList(parts) => {
                if parts.is_empty() {
                    return Ctl::Ret(self.rt.list(vec![]));
                }
                self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                Ctl::eval(parts[0].0)
            }
            Node::Case { key, .. } | Node::Match { subject: key, .. } => {
                self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                Ctl::eval(*key)
            }
            Node::Reset(body) => {
                self.push_frame(Frame::Reset);
                Ctl::eval(*body)
            }
            Node::Shift { body } => {
                if self.jit_barrier_before(|f| matches!(f, Frame::Reset)) {
                    return self.request_deopt(ResumePoint::Eval { code: c.clone(), env: *env, node: n });
                }
                let k = match self.capture(true) {
                    Ok(k) => k,
                    Err(e) => return self.error_ctl(c, n, e),
                };
                *env = self.new_env(*env, 1);
                self.set_local(*env, 0, 0, k);
                Ctl::eval(*body)
            }
            Node::Guard { body, .. } => {
                self.push_frame(Frame::Guard { code: c.clone(), env: *env, node: n });
                Ctl::eval(*body)
            }
            Node::HandlerBind { clauses, body } => {
                if clauses.is_empty() {
                    return Ctl::eval(*body);
                }
                self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                Ctl::eval(clauses[0].0)
            }
            Node::Scope { name, .. } => {
                self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                Ctl::eval(*name)
            }
            Node::ReRaise => Ctl::Raise(self.lookup_local(*env, 0, 0)),
        }
    }

    /// An `if` whose test is not a fixnum comparison of leaves.
    #[inline(always)]
    fn eval_if(&mut self, c: &Rc<Code>, env: &Value, n: NodeId, test: NodeId, then: NodeId, els: NodeId) -> Ctl {
        match self.eval_simple(c, *env, test) {
            Ok(v) => Ctl::eval(if v.truthy() { then } else { els }),
            Err(Simple::Err) => self.fail_ctl(c, n),
            Err(Simple::Fallback) => {
                self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: 0 });
                Ctl::eval(test)
            }
        }
    }

    /// Continue node `n` after its `i`-th sub-expression produced `v`.
    fn resume(&mut self, c: &Rc<Code>, env: &mut Value, n: NodeId, i: u32, v: Value) -> Ctl {
        match &c.nodes[n as usize] {
            Node::If { then, els, .. } => Ctl::eval(if v.truthy() { *then } else { *els }),
            Node::Seq(items) => {
                let next = i as usize + 1;
                if next + 1 < items.len() {
                    self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: next as u32 });
                }
                Ctl::eval(items[next])
            }
            Node::And(items) | Node::Or(items) => {
                let is_and = matches!(&c.nodes[n as usize], Node::And(_));
                if v.truthy() != is_and {
                    return Ctl::Ret(v);
                }
                let next = i as usize + 1;
                if next + 1 < items.len() {
                    self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: next as u32 });
                }
                Ctl::eval(items[next])
            }
            Node::SetLocal { depth, slot, define, .. } => {
                let _ = define;
                self.set_local(*env, *depth, *slot, v);
                Ctl::Ret(v)
            }
            Node::SetGlobal { sym, define, .. } => {
                if !*define && self.global(*sym) == Value::UNBOUND {
                    let e = self.undefined(*sym);
                    return self.error_ctl(c, n, e);
                }
                self.set_global(*sym, v);
                Ctl::Ret(v)
            }
            Node::Call { head, args, prim, op, inline, .. } => {
                // Last argument of a binary primitive: fixnum fast path.
                if let (Some(op), Some((p, sym))) = (op, prim) {
                    if i as usize == args.len() && args.len() == 2 {
                        let base = self.vals.len() - i as usize;
                        if self.vals[base] == Value::prim(*p) && self.prim_bound(*sym, *p) {
                            if let (Some(x), Some(y)) = (self.vals[base + 1].as_fixnum(), v.as_fixnum()) {
                                if let Some(r) = op.fixnum(x, y) {
                                    self.vals.truncate(base);
                                    return Ctl::Ret(r);
                                }
                            }
                        }
                    }
                }
                self.vals.push(v);
                let base = self.vals.len() - i as usize - 1;
                let total = 1 + args.len();
                let mut k = i as usize + 1;
                while k < total {
                    let sub = if k == 0 { *head } else { args[k - 1] };
                    match self.eval_operand(c, *env, sub, *inline, k) {
                        Ok(v) => self.vals.push(v),
                        Err(Simple::Err) => {
                            self.vals.truncate(base);
                            return self.fail_ctl(c, n);
                        }
                        Err(Simple::Fallback) => {
                            push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: k as u32 }, vbase: base as u32 });
                            return Ctl::eval(sub);
                        }
                    }
                    k += 1;
                }
                self.finish_call(c, env, n, base)
            }
            Node::Let { inits, body, size, rec } => {
                if *rec {
                    self.set_local(*env, 0, i as u16, v);
                    let next = i as usize + 1;
                    if next < inits.len() {
                        self.push_frame(Frame::Node { code: c.clone(), env: *env, node: n, i: next as u32 });
                        return Ctl::eval(inits[next]);
                    }
                    return Ctl::eval(*body);
                }
                self.vals.push(v);
                let base = self.vals.len() - i as usize - 1;
                let mut k = i as usize + 1;
                while k < inits.len() {
                    match self.eval_simple(c, *env, inits[k]) {
                        Ok(v) => self.vals.push(v),
                        Err(Simple::Err) => {
                            self.vals.truncate(base);
                            return self.fail_ctl(c, n);
                        }
                        Err(Simple::Fallback) => {
                            push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: k as u32 }, vbase: base as u32 });
                            return Ctl::eval(inits[k]);
                        }
                    }
                    k += 1;
                }
                *env = self.env_from_vals(*env, base, *size as usize);
                Ctl::eval(*body)
            }
            Node::Dict { keys, vals } => {
                self.vals.push(v);
                let next = i as usize + 1;
                if next < vals.len() {
                    let base = self.vals.len() - next;
                    push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: next as u32 }, vbase: base as u32 });
                    return Ctl::eval(vals[next]);
                }
                let base = self.vals.len() - vals.len();
                let mut d = DictMap::default();
                for (k, val) in keys.iter().zip(self.vals[base..].iter()) {
                    d.insert(k.clone(), *val);
                }
                self.vals.truncate(base);
                Ctl::Ret(self.rt.dict(d))
            }
            Node::QList(parts) => {
                self.vals.push(v);
                let next = i as usize + 1;
                if next < parts.len() {
                    let base = self.vals.len() - next;
                    push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: next as u32 }, vbase: base as u32 });
                    return Ctl::eval(parts[next].0);
                }
                let base = self.vals.len() - parts.len();
                let mut out = Vec::new();
                for (k, (_, splice)) in parts.iter().enumerate() {
                    let x = self.vals[base + k];
                    if *splice {
                        match self.rt.list_items(x) {
                            Some(items) => out.extend(items),
                            None => {
                                self.vals.truncate(base);
                                let e = Error::msg(format!("splice-unquote: expected a list, got {}", self.rt.type_name(x)));
                                return self.error_ctl(c, n, e);
                            }
                        }
                    } else {
                        out.push(x);
                    }
                }
                self.vals.truncate(base);
                Ctl::Ret(self.rt.list(out))
            }
            Node::Case { clauses, els, .. } => {
                for (datums, body) in clauses.iter() {
                    if datums.iter().any(|d| sx_core::prims::values_equal(&self.rt, *d, v)) {
                        return Ctl::eval(*body);
                    }
                }
                match els {
                    Some(e) => Ctl::eval(*e),
                    None => Ctl::Ret(Value::NIL),
                }
            }
            Node::Match { clauses, .. } => {
                for MatchClause { pat, body, size } in clauses.iter() {
                    let mut binds: Vec<Value> = vec![Value::NIL; *size as usize];
                    self.analysis_roots.push(v);
                    let ok = self.match_pat(pat, v, &mut binds);
                    self.analysis_roots.pop();
                    if ok {
                        let e = self.rt.heap.alloc_env(*env, &binds, binds.len());
                        *env = e;
                        return Ctl::eval(*body);
                    }
                }
                let e = Error::Msg(format!("match: no clause matched {}", sx_core::print::inspect(&self.rt, v)));
                self.error_ctl(c, n, e)
            }
            Node::HandlerBind { clauses, body } => {
                self.vals.push(v);
                let next = i as usize + 1;
                let total = clauses.len() * 2;
                if next < total {
                    let base = self.vals.len() - next;
                    push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: next as u32 }, vbase: base as u32 });
                    let (p, h) = clauses[next / 2];
                    return Ctl::eval(if next.is_multiple_of(2) { p } else { h });
                }
                let base = self.vals.len() - total;
                let mut preds = Vec::new();
                let mut hs = Vec::new();
                for k in 0..clauses.len() {
                    preds.push(self.vals[base + 2 * k]);
                    hs.push(self.vals[base + 2 * k + 1]);
                }
                self.vals.truncate(base);
                let preds = self.rt.list(preds);
                let handlers = self.rt.list(hs);
                self.push_frame(Frame::Handlers { preds, handlers });
                Ctl::eval(*body)
            }
            Node::Scope { value, body, .. } => {
                if i == 0 {
                    if let Some(val) = value {
                        self.vals.push(v);
                        let base = self.vals.len() - 1;
                        push_entry(&mut self.entries, || Entry { frame: Frame::Node { code: c.clone(), env: *env, node: n, i: 1 }, vbase: base as u32 });
                        return Ctl::eval(*val);
                    }
                    let emitted = self.rt.list(vec![]);
                    self.push_frame(Frame::Scope { name: v, value: Value::NIL, emitted });
                    return Ctl::eval(*body);
                }
                let name = self.vals.pop().unwrap_or(Value::NIL);
                let emitted = self.rt.list(vec![]);
                self.push_frame(Frame::Scope { name, value: v, emitted });
                Ctl::eval(*body)
            }
            _ => self.error_ctl(c, n, Error::msg("internal: bad continuation frame")),
        }
    }

    fn new_env(&mut self, parent: Value, size: usize) -> Value {
        self.rt.heap.alloc_env(parent, &[], size)
    }

    fn env_from_vals(&mut self, parent: Value, base: usize, size: usize) -> Value {
        let e = self.rt.heap.alloc_env(parent, &self.vals[base..], size);
        self.vals.truncate(base);
        e
    }

    fn match_pat(&mut self, pat: &Pat, v: Value, binds: &mut [Value]) -> bool {
        match pat {
            Pat::Wild => true,
            Pat::Bind(i) => {
                if let Some(s) = binds.get_mut(*i as usize) {
                    *s = v;
                }
                true
            }
            Pat::Lit(l) => sx_core::prims::values_equal(&self.rt, *l, v),
            Pat::List { items, rest } => {
                let Some(xs) = self.rt.as_list(v).map(|l| l.to_vec()) else { return false };
                if xs.len() < items.len() || (rest.is_none() && xs.len() != items.len()) {
                    return false;
                }
                for (p, x) in items.iter().zip(xs.iter()) {
                    if !self.match_pat(p, *x, binds) {
                        return false;
                    }
                }
                if let Some(r) = rest {
                    let tail = self.rt.list(xs[items.len()..].to_vec());
                    return self.match_pat(r, tail, binds);
                }
                true
            }
            Pat::Dict(entries) => {
                if self.rt.as_dict(v).is_none() {
                    return false;
                }
                for (k, p) in entries {
                    let x = match self.rt.as_dict(v) {
                        Some(d) => d.get(k).copied(),
                        None => return false,
                    };
                    match x {
                        Some(x) => {
                            if !self.match_pat(p, x, binds) {
                                return false;
                            }
                        }
                        None => return false,
                    }
                }
                true
            }
            Pat::Ctor { name, fields } => match crate::builtins::record_parts(&self.rt, v) {
                Some((ctor, vals)) => {
                    let tname = self.rt.type_of(v);
                    let name_ok = *ctor == **name || tname.eq_ignore_ascii_case(name) || ctor.strip_prefix("make-").is_some_and(|c| c.eq_ignore_ascii_case(name));
                    name_ok && vals.len() == fields.len() && fields.iter().zip(vals.iter()).all(|(p, x)| self.match_pat(p, *x, binds))
                }
                None => false,
            },
        }
    }

    fn apply(&mut self, code: &mut Rc<Code>, env: &mut Value, base: usize) -> Result<Ctl> {
        let f = self.vals[base];
        if let Some(p) = f.as_prim() {
            let prim = &self.prims[p as usize];
            let argc = self.vals.len() - base - 1;
            if argc < prim.min || prim.max.is_some_and(|m| argc > m) {
                return Err(arity_error(prim.name, prim.min, prim.max, argc));
            }
            return match prim.kind {
                PrimKind::Native(nf) => {
                    let r = nf(&mut self.rt, &self.vals[base + 1..]);
                    self.vals.truncate(base);
                    r.map(Ctl::Ret)
                }
                PrimKind::Host(ref f) => {
                    let f = f.clone();
                    let args: Vec<Value> = self.vals[base + 1..].to_vec();
                    self.vals.truncate(base);
                    f(&mut self.rt, &args).map(Ctl::Ret)
                }
                PrimKind::Machine(op) => {
                    let args: Vec<Value> = self.vals[base + 1..].to_vec();
                    self.vals.truncate(base);
                    self.machine_op(op, args, code, env)
                }
            };
        }
        if let Some((lc, parent)) = self.closure_of(f) {
            let new_env = bind_args(&mut self.rt, &lc, parent, &self.vals[base + 1..])?;
            self.vals.truncate(base);
            if self.entries.len() > self.max_depth {
                return Err(Error::msg("Maximum recursion depth exceeded"));
            }
            self.check_interrupt()?;
            if self.count_entry(&lc) {
                if let Some(ctl) = self.tier_enter(&lc, new_env) {
                    return Ok(ctl);
                }
            }
            *env = new_env;
            let root = lc.root;
            *code = lc;
            if self.rt.heap.wants_collection() {
                self.collect(&[new_env]);
            }
            return Ok(Ctl::eval(root));
        }
        match self.rt.heap.get(f) {
            Some(Obj::Lambda(_)) => Err(Error::msg("internal: foreign code object")),
            Some(Obj::Extern(e)) if e.as_any().is::<ContinuationObj>() => {
                let argc = self.vals.len() - base - 1;
                let v = if argc == 0 { Value::NIL } else { self.vals[base + 1] };
                self.vals.truncate(base);
                self.invoke_continuation(f, v)
            }
            Some(Obj::Macro(_)) => Err(Error::Msg(format!("Not callable: {} (a macro cannot be applied)", sx_core::print::inspect(&self.rt, f)))),
            _ => Err(Error::Msg(format!("Not callable: {}", sx_core::print::inspect(&self.rt, f)))),
        }
    }

    // ---- the compiled tier: calls from compiled code and deoptimisation ----

    /// Is there a `JitBarrier` above the nearest ordinary barrier, i.e. are
    /// we in a run started by compiled code whose callers are native frames?
    /// `stop` ends the search early (the frame being looked for).
    pub(crate) fn jit_barrier_before(&self, stop: impl Fn(&Frame) -> bool) -> bool {
        for e in self.entries.iter().rev() {
            match e.frame {
                Frame::JitBarrier => return true,
                Frame::Barrier => return false,
                ref f if stop(f) => return false,
                _ => {}
            }
        }
        false
    }

    /// Stop the current (JIT-started) run: the frames below its barrier are
    /// needed. Returns the control that ends the run.
    pub(crate) fn request_deopt(&mut self, resume: ResumePoint) -> Ctl {
        let st = self.deopt.get_or_insert_with(DeoptState::default);
        st.resume = Some(resume);
        Ctl::Deopt
    }

    /// Call `f` with `args` on behalf of compiled code. Returns the value, or
    /// `Unwind` when the callee needs frames the compiled callers hold on the
    /// native stack (a capture, a handler search, an escape, an error): the
    /// compiled caller must then add its pending frames with
    /// [`Machine::jit_push_frames`] and return `Unwind` itself.
    pub fn jit_call(&mut self, f: Value, args: &[Value]) -> JitOutcome {
        let base_entries = self.entries.len();
        let base_vals = self.vals.len();
        self.push_frame(Frame::JitBarrier);
        let base = self.vals.len();
        self.vals.push(f);
        self.vals.extend_from_slice(args);
        let dummy = self.dummy_code();
        let r = self.run(dummy, Value::NIL, Ctl::Apply(base));
        self.finish_jit_run(r, base_entries, base_vals)
    }

    fn finish_jit_run(&mut self, r: std::result::Result<Value, Value>, base_entries: usize, base_vals: usize) -> JitOutcome {
        match r {
            Ok(v) => JitOutcome::Value(v),
            Err(v) if v == Value::UNBOUND && self.jit_discarding() => {
                // The error's handler drops the interrupted run's frames.
                self.entries.truncate(base_entries);
                self.vals.truncate(base_vals);
                JitOutcome::Unwind
            }
            Err(v) if v == Value::UNBOUND && self.deopt.is_some() => {
                // Keep the interrupted run's frames (above the barrier).
                let start = base_entries + 1;
                let vstart = self.entries.get(start).map_or(self.vals.len(), |e| e.vbase as usize).max(base_vals);
                let mut nested: Vec<Entry> = self.entries.drain(start..).collect();
                for e in &mut nested {
                    e.vbase = e.vbase.saturating_sub(vstart as u32);
                }
                let nested_vals: Vec<Value> = self.vals.drain(vstart..).collect();
                self.entries.truncate(base_entries);
                self.vals.truncate(base_vals);
                if let Some(mut st) = self.deopt.take() {
                    // Frames an inner boundary set aside sit above ours.
                    self.set_aside(&mut st, Segment { entries: nested, vals: nested_vals });
                    self.deopt = Some(st);
                }
                JitOutcome::Unwind
            }
            Err(v) => {
                // An error nobody above the barrier handled: the handlers
                // (if any) are below the compiled frames.
                self.entries.truncate(base_entries);
                self.vals.truncate(base_vals);
                self.jit_raise(v, false)
            }
        }
    }

    /// Evaluate node `node` of `code` in `env` on behalf of compiled code (a
    /// construct compiled code leaves to the interpreter). Same contract as
    /// [`Machine::jit_call`].
    pub fn jit_eval(&mut self, code: Rc<Code>, env: Value, node: NodeId) -> JitOutcome {
        let base_entries = self.entries.len();
        let base_vals = self.vals.len();
        self.push_frame(Frame::JitBarrier);
        let r = self.run(code, env, Ctl::eval(node));
        self.finish_jit_run(r, base_entries, base_vals)
    }

    /// The tier cannot run compiled code here for lack of native stack, and
    /// this run was started by compiled code (which holds the stack below
    /// it): end this run and the compiled activations under it, and enter
    /// `code` with `env` (already bound) in the run below them. `None` when
    /// the current run was not started by compiled code.
    pub fn jit_leave_run(&mut self, code: Rc<Code>, env: Value) -> Option<JitOutcome> {
        if !self.jit_barrier_before(|_| false) {
            return None;
        }
        let node = code.root;
        let st = self.deopt.get_or_insert_with(DeoptState::default);
        st.resume = Some(ResumePoint::Eval { code, env, node });
        st.leave_run = true;
        Some(JitOutcome::Unwind)
    }

    /// Compiled code cannot go deeper on the native stack: continue the
    /// call of `f` with `args` in the interpreter, below the compiled frames.
    pub fn jit_defer_call(&mut self, f: Value, args: &[Value]) -> JitOutcome {
        let st = self.deopt.get_or_insert_with(DeoptState::default);
        st.resume = Some(ResumePoint::Apply { f, args: args.to_vec() });
        JitOutcome::Unwind
    }

    /// Compiled code hands the rest of its work to the interpreter: after
    /// the pending frames are rebuilt, evaluate `node` of `code` in `env`
    /// (`Some`) or return `value` into the innermost frame (`None`).
    pub fn jit_bail(&mut self, code: Rc<Code>, env: Value, node: Option<NodeId>, value: Value) -> JitOutcome {
        let st = self.deopt.get_or_insert_with(DeoptState::default);
        st.resume = Some(match node {
            Some(node) => ResumePoint::Eval { code, env, node },
            None => ResumePoint::Ret(value),
        });
        JitOutcome::Unwind
    }

    /// Bind `args` to the parameters of lambda `lc` in a new frame under
    /// `parent` (what a call does before entering the body).
    pub fn bind_lambda_args(&mut self, lc: &Code, parent: Value, args: &[Value]) -> Result<Value> {
        bind_args(&mut self.rt, lc, parent, args)
    }

    /// The analysed code and captured environment of closure `f`.
    #[inline(always)]
    pub fn closure_of(&mut self, f: Value) -> Option<(Rc<Code>, Value)> {
        self.closure_ref(f).map(|(c, env)| (c.clone(), env))
    }

    /// [`Machine::closure_of`], the code borrowed from the closure cache.
    #[inline(always)]
    fn closure_ref(&mut self, f: Value) -> Option<(&Rc<Code>, Value)> {
        let k = ClosureCache::slot(f);
        let e = &self.closure_cache.entries[k];
        if !(e.f == f && self.closure_cache.gc == self.rt.heap.stats.collections && e.code.is_some()) {
            self.closure_of_slow(f)?;
        }
        let e = &self.closure_cache.entries[k];
        Some((e.code.as_ref()?, e.env))
    }

    #[inline(never)]
    fn closure_of_slow(&mut self, f: Value) -> Option<(Rc<Code>, Value)> {
        let Some(Obj::Lambda(clo)) = self.rt.heap.get(f) else { return None };
        let env = clo.env;
        let any: Rc<dyn std::any::Any> = clo.code.clone().as_any_rc();
        let code = any.downcast::<Code>().ok()?;
        let gc = self.rt.heap.stats.collections;
        if self.closure_cache.gc != gc {
            // Someone collected without the machine (an embedder calling the
            // heap directly): every key may be stale.
            self.closure_cache = ClosureCache::new();
            self.closure_cache.gc = gc;
        }
        self.closure_cache.entries[ClosureCache::slot(f)] = ClosureEntry { f, env, code: Some(code.clone()) };
        Some((code, env))
    }

    /// The native function of primitive `p`, when it is an ordinary
    /// primitive, with its arity and purity.
    pub fn prim_native(&self, p: u32) -> Option<(PrimFn, usize, Option<usize>, bool)> {
        let prim = self.prims.get(p as usize)?;
        match prim.kind {
            PrimKind::Native(f) => Some((f, prim.min, prim.max, prim.pure)),
            _ => None,
        }
    }

    /// The address of the global table (indexed by symbol id); valid until
    /// the next new global symbol is interned.
    pub fn globals_ptr(&self) -> *const Value {
        self.globals.as_ptr()
    }

    /// The number of slots in the global table.
    pub fn globals_len(&self) -> usize {
        self.globals.len()
    }

    /// Frames in the continuation (what `max_depth` limits).
    pub fn depth(&self) -> usize {
        self.entries.len()
    }

    /// Compiled code failed at node `node` of `code` with `e`: raise it there
    /// (its location is the node's) once the pending frames are rebuilt.
    pub fn jit_fail(&mut self, code: &Code, node: NodeId, e: Error) -> JitOutcome {
        self.err_file = Some(code.file.clone());
        if let Some(sp) = code.spans.get(node as usize) {
            self.err_span = *sp;
        }
        let v = self.rt.error_value(&e);
        self.jit_raise(v, false)
    }

    /// Compiled code raises `value`: deoptimise so that handlers below the
    /// compiled frames see it at the right place.
    pub fn jit_raise(&mut self, value: Value, continuable: bool) -> JitOutcome {
        self.deopt_for_raise(value, continuable, true);
        JitOutcome::Unwind
    }

    /// Called by a compiled activation that is unwinding: the CEK frames it
    /// stands for, outermost first.
    pub fn jit_push_frames(&mut self, frames: Vec<PendingFrame>) {
        self.jit_begin_activation();
        for f in frames {
            self.jit_push_frame(f.code, f.env, f.node, f.i, &f.vals);
        }
    }

    /// Start the frames of one more (outer) compiled activation; then call
    /// [`Machine::jit_push_frame`] for each, outermost first. (The same as
    /// [`Machine::jit_push_frames`] without building vectors.)
    pub fn jit_begin_activation(&mut self) {
        let st = self.deopt.get_or_insert_with(DeoptState::default);
        if !st.discard {
            st.activations.push(st.frames.len());
        }
    }

    /// One pending CEK frame of the activation begun last.
    pub fn jit_push_frame(&mut self, code: Rc<Code>, env: Value, node: NodeId, i: u32, vals: &[Value]) {
        let st = self.deopt.get_or_insert_with(DeoptState::default);
        if st.discard {
            return;
        }
        let start = st.frame_vals.len() as u32;
        st.frame_vals.extend_from_slice(vals);
        st.frames.push(DeoptFrame { code, env, node, i, vals: (start, vals.len() as u32) });
    }


    /// At the CEK entry point of compiled code: rebuild the continuation the
    /// compiled activations stood for, then the interrupted run's frames,
    /// and continue where it stopped.
    pub(crate) fn finish_deopt(&mut self) -> Ctl {
        let Some(mut st) = self.deopt.take() else {
            return Ctl::Raise(self.rt.str("internal: deoptimisation without state"));
        };
        if let Some(ResumePoint::Raise { .. }) = st.resume {
            if !st.nested_stops_raise && self.jit_barrier_before(stops_raise) {
                // With the frames rebuilt on top, the raise would only pass
                // through this run to the compiled code below it (see
                // `Machine::raise`): set the compiled frames aside too and go
                // on down, rebuilding nothing here.
                let mut seg = Segment { entries: Vec::new(), vals: Vec::new() };
                rebuild_activations(&st, &mut seg.entries, &mut seg.vals);
                st.frames.clear();
                st.frame_vals.clear();
                st.activations.clear();
                self.set_aside(&mut st, seg);
                // What `deopt_for_raise` decides with those frames on top.
                st.discard = match st.nested_skip_verdict {
                    Some(v) => v,
                    None => self.raise_skips_frames(false),
                };
                if st.discard {
                    st.nested.clear();
                    st.nested_stops_raise = false;
                    st.nested_skip_verdict = None;
                }
                self.deopt = Some(st);
                return Ctl::Deopt;
            }
        }
        rebuild_activations(&st, &mut self.entries, &mut self.vals);
        for seg in st.nested.into_iter().rev() {
            self.reinstate(seg.entries, &seg.vals);
        }
        match st.resume {
            Some(ResumePoint::Eval { code, env, node }) => {
                self.resume_to = Some((code, env, node));
                Ctl::Resume
            }
            Some(ResumePoint::Apply { f, args }) => {
                let base = self.vals.len();
                self.vals.push(f);
                self.vals.extend(args);
                Ctl::Apply(base)
            }
            Some(ResumePoint::Raise { value, continuable }) => Ctl::raise(value, continuable),
            Some(ResumePoint::MachineOp { op, args }) => {
                self.pending_op = Some((op, args));
                Ctl::Op
            }
            Some(ResumePoint::Ret(v)) => Ctl::Ret(v),
            None => Ctl::Raise(self.rt.str("internal: deoptimisation without a resume point")),
        }
    }

    /// Raise `Interrupted` once if an interrupt was requested.
    #[inline(always)]
    fn check_interrupt(&self) -> Result<()> {
        if self.interrupt.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(self.interrupted());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn interrupted(&self) -> Error {
        self.interrupt.store(false, std::sync::atomic::Ordering::Relaxed);
        Error::msg("Interrupted")
    }

    /// Count an entry of lambda `lc`; true when the compiled tier must be
    /// asked about it (there is one, and `lc` is outside its quiet window).
    /// Without a compiled tier nothing is counted: the counts are the
    /// tier's (its call counters and coverage), and the interpreter alone
    /// does not pay for them.
    #[inline(always)]
    fn count_entry(&mut self, lc: &Code) -> bool {
        if self.tier.is_none() {
            return false;
        }
        let n = lc.calls.get().wrapping_add(1);
        lc.calls.set(n);
        let sig = &*self.tier_signals;
        sig.entries.set(sig.entries.get() + 1);
        let q = lc.tier_quiet.get();
        if q.version == sig.version.get() && n <= q.until {
            if q.counted {
                sig.skipped_below.set(sig.skipped_below.get() + 1);
            }
            return false;
        }
        true
    }

    /// Offer a lambda entry to the compiled tier.
    #[inline]
    fn tier_enter(&mut self, code: &Rc<Code>, env: Value) -> Option<Ctl> {
        let tier = self.tier.clone()?;
        match tier.enter(self, code, env)? {
            JitOutcome::Value(v) => Some(Ctl::Ret(v)),
            JitOutcome::Unwind => {
                if let Some(st) = self.deopt.as_mut().filter(|st| st.leave_run) {
                    st.leave_run = false;
                    return Some(Ctl::Deopt);
                }
                Some(self.finish_deopt())
            }
        }
    }

    // ---- continuations ----

    /// Capture frames above the nearest Reset (delimited) or Barrier (full).
    pub(crate) fn capture(&mut self, delimited: bool) -> Result<Value> {
        let mut idx = self.entries.len();
        while idx > 0 {
            match self.entries[idx - 1].frame {
                Frame::Reset if delimited => break,
                Frame::Barrier => break,
                _ => idx -= 1,
            }
        }
        let start = idx;
        let vstart = self.entries.get(start).map_or(self.vals.len(), |e| e.vbase as usize);
        let mut entries: Vec<Entry> = self.entries[start..].to_vec();
        for e in &mut entries {
            e.vbase -= vstart as u32;
        }
        let vals = self.vals[vstart..].to_vec();
        let afters: Vec<Value> = if delimited {
            entries.iter().rev().filter_map(|e| if let Frame::Wind { after, .. } = e.frame { Some(after) } else { None }).collect()
        } else {
            vec![]
        };
        if delimited {
            self.entries.truncate(start);
            self.vals.truncate(vstart);
        }
        let k = ContinuationObj { entries, vals, delimited };
        let kv = self.rt.heap.alloc(Obj::Extern(Box::new(k)));
        if !afters.is_empty() {
            // `shift` leaves the dynamic extent of winds it captured.
            self.analysis_roots.push(kv);
            for a in afters {
                if let Err(e) = self.call_value(a, &[]) {
                    self.analysis_roots.pop();
                    return Err(e);
                }
            }
            self.analysis_roots.pop();
        }
        Ok(kv)
    }

    fn invoke_continuation(&mut self, k: Value, v: Value) -> Result<Ctl> {
        let (entries, vals, delimited) = match self.rt.heap.get(k) {
            Some(Obj::Extern(e)) => match e.as_any().downcast_ref::<ContinuationObj>() {
                Some(c) => (c.entries.clone(), c.vals.clone(), c.delimited),
                None => return Err(Error::msg("internal: not a continuation")),
            },
            _ => return Err(Error::msg("internal: not a continuation")),
        };
        if !delimited && self.jit_barrier_before(|_| false) {
            // Escaping past compiled frames: rebuild them first.
            return Ok(self.request_deopt(ResumePoint::Apply { f: k, args: vec![v] }));
        }
        if delimited {
            let befores: Vec<Value> = entries.iter().filter_map(|e| if let Frame::Wind { before, .. } = e.frame { Some(before) } else { None }).collect();
            if !befores.is_empty() {
                self.analysis_roots.push(k);
                self.analysis_roots.push(v);
                let mut r = Ok(Value::NIL);
                for b in befores {
                    r = self.call_value(b, &[]);
                    if r.is_err() {
                        break;
                    }
                }
                self.analysis_roots.pop();
                self.analysis_roots.pop();
                r?;
            }
            self.push_frame(Frame::Reset);
        } else {
            // Escape: unwind to the barrier of this run, running `after`
            // thunks of winds the target does not share.
            let target_winds: Vec<u64> = entries.iter().filter_map(|e| if let Frame::Wind { id, .. } = e.frame { Some(id) } else { None }).collect();
            let mut barrier = self.entries.len();
            while barrier > 0 && !matches!(self.entries[barrier - 1].frame, Frame::Barrier) {
                barrier -= 1;
            }
            let current_winds: Vec<u64> = self.entries[barrier..].iter().filter_map(|e| if let Frame::Wind { id, .. } = e.frame { Some(id) } else { None }).collect();
            self.analysis_roots.push(k);
            self.analysis_roots.push(v);
            while self.entries.len() > barrier {
                let Some(top) = self.entries.pop() else { break };
                if let Frame::Wind { id, after, .. } = top.frame {
                    if !target_winds.contains(&id) {
                        self.call_value(after, &[])?;
                    }
                }
            }
            self.vals.truncate(self.entries.last().map_or(0, |_| self.vals.len()));
            // Run `before` thunks of winds we re-enter.
            for e in &entries {
                if let Frame::Wind { id, before, .. } = e.frame {
                    if !current_winds.contains(&id) {
                        self.call_value(before, &[])?;
                    }
                }
            }
            self.analysis_roots.pop();
            self.analysis_roots.pop();
            let vbase_now = self.entries.last().map_or(0, |e| e.vbase as usize);
            let _ = vbase_now;
        }
        self.reinstate(entries, &vals);
        Ok(Ctl::Ret(v))
    }

    /// Push captured frames (and their value-stack segment) on top of the
    /// current continuation.
    pub(crate) fn reinstate(&mut self, entries: Vec<Entry>, vals: &[Value]) {
        let shift = self.vals.len() as u32;
        self.vals.extend_from_slice(vals);
        for mut e in entries {
            e.vbase += shift;
            self.entries.push(e);
        }
    }

    /// Capture the frames above index `idx` as a delimited continuation and
    /// remove them together with frame `idx`.
    pub(crate) fn capture_above(&mut self, idx: usize) -> Value {
        let start = idx + 1;
        let vstart = self.entries.get(start).map_or(self.vals.len(), |e| e.vbase as usize);
        let mut entries: Vec<Entry> = self.entries[start..].to_vec();
        for e in &mut entries {
            e.vbase -= vstart as u32;
        }
        let vals = self.vals[vstart..].to_vec();
        let mark_vbase = self.entries[idx].vbase as usize;
        self.entries.truncate(idx);
        self.vals.truncate(mark_vbase.min(vstart));
        let k = ContinuationObj { entries, vals, delimited: true };
        self.rt.heap.alloc(Obj::Extern(Box::new(k)))
    }

    // ---- errors ----

    fn raise(&mut self, v: Value, continuable: bool) -> std::result::Result<Ctl, Value> {
        if self.jit_barrier_before(stops_raise) {
            // The handlers are below compiled frames: rebuild them first
            // (or drop them, when the handler will drop them anyway).
            self.deopt_for_raise(v, continuable, false);
            return Ok(Ctl::Deopt);
        }
        self.search_handlers(v, continuable, self.entries.len())
    }

    /// Look for a handler for `v` below frame index `from`.
    fn search_handlers(&mut self, v: Value, continuable: bool, from: usize) -> std::result::Result<Ctl, Value> {
        let mut idx = from;
        while idx > 0 {
            idx -= 1;
            match &self.entries[idx].frame {
                Frame::Barrier => return Err(v),
                Frame::JitBarrier => {
                    self.deopt_for_raise(v, continuable, false);
                    return Ok(Ctl::Deopt);
                }
                // A handler or a handler's predicate is running: it sees
                // only the handlers outside its own handler-bind.
                Frame::HandlerActive { skip, .. } | Frame::HandlerSearch { mark: skip, .. } => {
                    idx = *skip as usize;
                }
                Frame::Handlers { preds, .. } => {
                    let preds = *preds;
                    let n = self.rt.as_list(preds).map_or(0, |l| l.len);
                    if n > 0 {
                        return Ok(self.try_handler_clause(v, continuable, idx as u32, 0));
                    }
                }
                Frame::Guard { .. } | Frame::TryCall => {
                    return Ok(self.unwind_to_handler(idx, v));
                }
                _ => {}
            }
        }
        Err(v)
    }

    fn try_handler_clause(&mut self, v: Value, continuable: bool, mark: u32, clause: u32) -> Ctl {
        let preds = match &self.entries[mark as usize].frame {
            Frame::Handlers { preds, .. } => *preds,
            _ => Value::NIL,
        };
        let pred = self.rt.as_list(preds).and_then(|l| l.get(clause as usize));
        match pred {
            Some(p) => {
                self.push_frame(Frame::HandlerSearch { value: v, continuable, mark, clause });
                let base = self.vals.len();
                self.vals.push(p);
                self.vals.push(v);
                Ctl::Apply(base)
            }
            None => match self.search_handlers(v, continuable, mark as usize) {
                Ok(c) => c,
                Err(v) => Ctl::Uncaught(v),
            },
        }
    }

    fn handler_search_step(&mut self, v: Value, continuable: bool, mark: u32, clause: u32, matched: bool) -> Ctl {
        if !matched {
            return self.try_handler_clause(v, continuable, mark, clause + 1);
        }
        let handlers = match &self.entries.get(mark as usize).map(|e| &e.frame) {
            Some(Frame::Handlers { handlers, .. }) => *handlers,
            _ => Value::NIL,
        };
        let h = self.rt.as_list(handlers).and_then(|l| l.get(clause as usize)).unwrap_or(Value::NIL);
        self.push_frame(Frame::HandlerActive { skip: mark, continuable });
        let base = self.vals.len();
        self.vals.push(h);
        self.vals.push(v);
        Ctl::Apply(base)
    }

    /// Does a raise from the top of the continuation end in a `guard` or
    /// `try-call` with nothing on the way that could observe the frames
    /// compiled code holds? Then they need not be rebuilt: the handler drops
    /// them unseen. What this deoptimisation drops is the current run (up to
    /// the nearest `JitBarrier`) and the compiled activations under it; the
    /// run below handles its own frames as usual once it sees the raise.
    /// So the current run must hold no `dynamic-wind` frame and no
    /// coroutine, and on the way to the handler there must be no
    /// `handler-bind` handler, running handler or Rust caller (they see the
    /// continuation of the raise, or would report its backtrace). When
    /// compiled code raises (`from_compiled`), only compiled activations are
    /// dropped: the current run keeps its frames and handles the raise next.
    fn raise_skips_frames(&self, from_compiled: bool) -> bool {
        let mut below_barrier = from_compiled;
        for e in self.entries.iter().rev() {
            if let Frame::JitBarrier = e.frame {
                below_barrier = true;
            } else if let Some(v) = self.skip_verdict(&e.frame, below_barrier) {
                return v;
            }
        }
        false
    }

    /// Does frame `f` decide [`Machine::raise_skips_frames`], and how?
    fn skip_verdict(&self, f: &Frame, below_barrier: bool) -> Option<bool> {
        match f {
            Frame::Guard { .. } | Frame::TryCall => Some(true),
            Frame::Wind { .. } | Frame::Coroutine { .. } if !below_barrier => Some(false),
            Frame::Handlers { preds, .. } if self.rt.as_list(*preds).is_some_and(|l| l.len > 0) => Some(false),
            Frame::Barrier | Frame::HandlerActive { .. } | Frame::HandlerSearch { .. } => Some(false),
            _ => None,
        }
    }

    /// Set `seg` aside in `st`, below the frames already there, keeping
    /// the summaries of what they hold up to date (each frame looked at
    /// once).
    fn set_aside(&self, st: &mut DeoptState, seg: Segment) {
        st.nested_stops_raise |= seg.entries.iter().any(|e| stops_raise(&e.frame));
        if st.nested_skip_verdict.is_none() {
            // The frames set aside come from above every barrier.
            st.nested_skip_verdict = seg.entries.iter().rev().find_map(|e| self.skip_verdict(&e.frame, false));
        }
        st.nested.push(seg);
    }

    /// Deoptimise to raise `value` below the compiled frames: rebuild them,
    /// or drop them when [`Machine::raise_skips_frames`] allows (decided
    /// only before any frame was added).
    fn deopt_for_raise(&mut self, value: Value, continuable: bool, from_compiled: bool) {
        let discard = self.raise_skips_frames(from_compiled);
        let st = self.deopt.get_or_insert_with(DeoptState::default);
        st.resume = Some(ResumePoint::Raise { value, continuable });
        if st.activations.is_empty() && st.nested.is_empty() {
            st.discard = discard;
        }
    }

    /// Is the current deoptimisation dropping compiled frames instead of
    /// rebuilding them? (Compiled code then skips building them.)
    pub fn jit_discarding(&self) -> bool {
        self.deopt.as_ref().is_some_and(|st| st.discard)
    }

    /// Unwind to the Guard/TryCall frame at `idx`, running `after` thunks.
    fn unwind_to_handler(&mut self, idx: usize, v: Value) -> Ctl {
        self.analysis_roots.push(v);
        while self.entries.len() > idx + 1 {
            let Some(top) = self.entries.pop() else { break };
            if let Frame::Coroutine { co } = top.frame {
                crate::builtins::set_coroutine_dead(&mut self.rt, co);
            }
            if let Frame::Wind { after, .. } = top.frame {
                if let Err(e) = self.call_value(after, &[]) {
                    self.analysis_roots.pop();
                    let ev = self.rt.error_value(&e);
                    return Ctl::Raise(ev);
                }
            }
        }
        self.analysis_roots.pop();
        let Some(target) = self.entries.pop() else { return Ctl::Ret(v) };
        self.vals.truncate(target.vbase as usize);
        match target.frame {
            Frame::TryCall => {
                let msg = self.rt.error_message(v);
                let mut d = DictMap::default();
                d.insert(Rc::from("ok"), Value::FALSE);
                let m = self.rt.string(msg);
                d.insert(Rc::from("error"), m);
                Ctl::Ret(self.rt.dict(d))
            }
            Frame::Guard { code, env, node } => {
                let handler = match &code.nodes[node as usize] {
                    Node::Guard { handler, .. } => *handler,
                    _ => return Ctl::Raise(v),
                };
                let e = self.rt.heap.alloc_env(env, &[v], 1);
                self.resume_to = Some((code, e, handler));
                Ctl::Resume
            }
            _ => Ctl::Raise(v),
        }
    }
}

/// Native primitive `prim` applied to `args`, arity checked.
#[inline]
fn apply_native(prim: &Prim, rt: &mut Rt, args: &[Value]) -> Result<Value> {
    let argc = args.len();
    if argc < prim.min || prim.max.is_some_and(|m| argc > m) {
        return Err(arity_error(prim.name, prim.min, prim.max, argc));
    }
    match &prim.kind {
        PrimKind::Native(f) => f(rt, args),
        PrimKind::Host(f) => f(rt, args),
        PrimKind::Machine(_) => Err(Error::msg("internal: machine primitive called natively")),
    }
}

/// Does a raise that meets frame `f` look for a handler in it (see
/// [`Machine::raise`])?
fn stops_raise(f: &Frame) -> bool {
    matches!(f, Frame::Handlers { .. } | Frame::Guard { .. } | Frame::TryCall)
}

/// Push the CEK frames of the deoptimised activations of `st` onto
/// `entries` (their values onto `vals`): outermost activation first, each
/// one's frames stored outermost first.
fn rebuild_activations(st: &DeoptState, entries: &mut Vec<Entry>, vals: &mut Vec<Value>) {
    for (k, &start) in st.activations.iter().enumerate().rev() {
        let end = st.activations.get(k + 1).copied().unwrap_or(st.frames.len());
        for f in &st.frames[start..end] {
            let vbase = vals.len() as u32;
            let (a, n) = (f.vals.0 as usize, f.vals.1 as usize);
            vals.extend_from_slice(&st.frame_vals[a..a + n]);
            push_entry(entries, || Entry { frame: Frame::Node { code: f.code.clone(), env: f.env, node: f.node, i: f.i }, vbase });
        }
    }
}

/// Bind `args` to the parameters of lambda `lc` in a new frame under
/// `parent` (what a call does before entering the body).
fn bind_args(rt: &mut Rt, lc: &Code, parent: Value, args: &[Value]) -> Result<Value> {
    let Some(p) = &lc.params else {
        return Err(Error::msg("internal: code is not a lambda"));
    };
    let argc = args.len();
    let req = p.required as usize;
    if argc < req || (!p.rest && argc > req) {
        let name = lc.name.as_deref().unwrap_or("lambda");
        return Err(arity_error(name, req, if p.rest { None } else { Some(req) }, argc));
    }
    if !p.rest {
        return Ok(rt.heap.alloc_env(parent, args, p.frame_size as usize));
    }
    let mut slots = Vec::with_capacity(p.frame_size as usize);
    slots.extend_from_slice(&args[..req]);
    let extra = &args[req..];
    if p.keys.is_empty() {
        let l = rt.list(extra.to_vec());
        slots.push(l);
    } else {
        // &key: `:key value` pairs (keywords only; unknown keys are
        // ignored); everything else goes to the rest list in order.
        let mut kv = vec![Value::NIL; p.keys.len()];
        let mut rest = Vec::new();
        let mut i = 0;
        while i < extra.len() {
            match extra[i].as_keyword() {
                Some(kid) if i + 1 < extra.len() => {
                    let k = rt.syms.name(kid);
                    if let Some(pos) = p.keys.iter().position(|x| **x == *k) {
                        kv[pos] = extra[i + 1];
                    }
                    i += 2;
                }
                _ => {
                    rest.push(extra[i]);
                    i += 1;
                }
            }
        }
        let l = rt.list(rest);
        slots.push(l);
        slots.extend(kv);
    }
    let size = (p.frame_size as usize).max(slots.len());
    Ok(rt.heap.alloc_env(parent, &slots, size))
}
