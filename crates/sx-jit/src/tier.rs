//! The tier: counting, compiling, running compiled code, and handing
//! compiled activations back to the interpreter.

use crate::{words, Artifact, Backend, Cache, JitCtx};
use std::cell::{Cell, RefCell, UnsafeCell};
use std::rc::Rc;
use std::time::Instant;
use sx_cek::code::{Code, TierQuiet, TierSignals};
use sx_cek::frames::ContinuationObj;
use sx_cek::machine::{JitOutcome, Tier};
use sx_cek::Machine;
use sx_core::heap::{Obj, Tracer};
use sx_core::Value;
use sx_jit_cache::{CallDecision, CodeKey};

/// Shadow-stack slots (8 bytes each: 512 MiB of address space, allocated
/// zeroed, so pages are only committed when deep recursion touches them).
const SHADOW_SLOTS: usize = 64 << 20;
/// Native stack kept free for the interpreter and the runtime below the
/// deepest compiled frame. Past it, calls continue in the interpreter.
const STACK_MARGIN: usize = 1 << 20;
/// Entries of the tier's code → artifact link table (a power of two).
const LINKS: usize = 1024;
/// Every this many link lookups, go through the cache (LRU order, hits).
const LINK_TOUCH: u64 = 64;
/// Compile latencies kept for the report (the most recent ones).
const LATENCY_SAMPLES: usize = 4096;

/// What the tier has done, for reports and coverage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierCounters {
    /// Lambda calls the tier saw (entries from the interpreter and calls
    /// from compiled code).
    pub lambda_calls: u64,
    /// Of those, calls that ran compiled code.
    pub compiled_calls: u64,
    /// Of those, calls compiled code made straight to compiled code
    /// (through an inline cache, without the runtime).
    pub direct_calls: u64,
    /// Compiled activations handed back to the interpreter.
    pub deopts: u64,
    /// Calls that went to the interpreter because the native stack was low.
    pub stack_fallbacks: u64,
    /// Pure versions that gave up (their calls were run again by the
    /// ordinary compiled code; see `sx_ir::pure`).
    pub pure_bails: u64,
    /// Time spent lowering and compiling (declined attempts included), in
    /// microseconds.
    pub compile_us: u64,
}

/// The outcome of a call made on behalf of compiled code.
pub(crate) enum CallResult {
    Value(Value),
    /// The callee's continuation is being rebuilt: add the caller's frames.
    Unwind,
    /// The interpreter must redo the call (it raises the error with the
    /// call's location).
    Bail,
}

/// A link of the tier's table: a code id and its artifact (if still alive).
type Link = (u64, std::rc::Weak<Artifact>);

/// How compiled code is started.
enum Start<'a> {
    /// The generic entry with a bound environment.
    Env(Value),
    /// A flat function's argument-vector entry: captured environment and
    /// arguments (borrowed from the caller when it can).
    Args(Value, std::borrow::Cow<'a, [Value]>),
}

/// The compiled tier of one machine.
pub struct JitTier {
    cache: Rc<RefCell<Cache>>,
    backend: RefCell<Box<dyn Backend>>,
    ctx: Box<UnsafeCell<JitCtx>>,
    /// The shadow stack. Compiled code writes it through `ctx.sp`; Rust only
    /// reads it through raw pointers, between calls of compiled code.
    shadow: Box<[u64]>,
    /// The arguments of the pending tail call.
    tail: RefCell<Vec<Value>>,
    /// The callee of that tail call.
    tail_callee: Cell<Value>,
    /// An empty buffer for the next tail call's arguments.
    tail_spare: RefCell<Vec<Value>>,
    counters: Cell<TierCounters>,
    latencies_us: RefCell<Vec<u32>>,
    latency_next: Cell<usize>,
    /// After compiled recursion used every stack segment: the interpreter's
    /// depth at that point. Deeper than this, no new segment is taken (a
    /// runaway recursion then meets the depth limit in the interpreter soon
    /// instead of filling the native stack again and again).
    deep_floor: Cell<usize>,
    /// Code id → artifact links (see [`JitTier::compiled`]).
    links: RefCell<Vec<Option<Link>>>,
    link_uses: Cell<u64>,
}

impl JitTier {
    pub fn new(backend: Box<dyn Backend>, cache: Rc<RefCell<Cache>>) -> Rc<JitTier> {
        let mut shadow: Box<[u64]> = vec![0u64; SHADOW_SLOTS].into_boxed_slice();
        let base = shadow.as_mut_ptr();
        // SAFETY: the soft end stays inside the allocation.
        let soft_end = unsafe { base.add(SHADOW_SLOTS - sx_ir::lower::MAX_FLAT_SLOTS as usize - 1) };
        let ctx = JitCtx {
            sp: base,
            globals: std::ptr::null(),
            globals_len: 0,
            machine: std::ptr::null_mut(),
            tier: std::ptr::null(),
            stack_limit: u64::MAX,
            shadow_soft_end: soft_end,
            direct_calls: 0,
            tail_budget: crate::TAIL_BUDGET,
            epoch: crate::epoch(),
            assumptions_epoch: 0,
            depth: 0,
            pure_too_deep: 0,
            depth_limit: u64::MAX,
        };
        Rc::new(JitTier {
            cache,
            backend: RefCell::new(backend),
            ctx: Box::new(UnsafeCell::new(ctx)),
            shadow,
            tail: RefCell::new(Vec::new()),
            tail_callee: Cell::new(Value::NIL),
            tail_spare: RefCell::new(Vec::new()),
            counters: Cell::new(TierCounters::default()),
            latencies_us: RefCell::new(Vec::new()),
            latency_next: Cell::new(0),
            deep_floor: Cell::new(usize::MAX),
            links: RefCell::new(vec![None; LINKS]),
            link_uses: Cell::new(0),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.borrow().name()
    }

    /// The tier's counters; `lambda_calls` counts the calls made by
    /// compiled code (see [`JitTier::counters_with`] for all of them).
    pub fn counters(&self) -> TierCounters {
        let mut c = self.counters.get();
        // SAFETY: read between runs of compiled code, on this thread.
        let direct = unsafe { (*self.ctx.get()).direct_calls };
        c.lambda_calls += direct;
        c.compiled_calls += direct;
        c.direct_calls = direct;
        c
    }

    /// The tier's counters, with the lambda calls the interpreter entered
    /// (counted in `signals`, the machine's) in `lambda_calls`.
    pub fn counters_with(&self, signals: &TierSignals) -> TierCounters {
        let mut c = self.counters();
        c.lambda_calls += signals.entries.get();
        c
    }

    /// Compile latencies (microseconds) of the most recent compilations.
    pub fn compile_latencies_us(&self) -> Vec<u32> {
        self.latencies_us.borrow().clone()
    }

    fn count(&self, f: impl FnOnce(&mut TierCounters)) {
        let mut c = self.counters.get();
        f(&mut c);
        self.counters.set(c);
    }

    pub(crate) fn note_deopt(&self) {
        self.count(|c| c.deopts += 1);
    }

    pub(crate) fn note_pure_bail(&self) {
        self.count(|c| c.pure_bails += 1);
    }

    fn shadow_base(&self) -> *const u64 {
        self.shadow.as_ptr()
    }

    /// Slots in use on the shadow stack.
    fn shadow_used(&self) -> usize {
        // SAFETY: `ctx` is only written by compiled code and the tier on
        // this thread; reading a field by copy is fine between calls.
        let sp = unsafe { (*self.ctx.get()).sp };
        (sp as usize - self.shadow_base() as usize) / 8
    }

    /// Is there room to run a function with `nslots` slots, on both stacks?
    pub(crate) fn room(&self, nslots: u32) -> bool {
        self.shadow_room(nslots) && stack_ok()
    }

    fn shadow_room(&self, nslots: u32) -> bool {
        self.shadow_used() + (nslots as usize) < SHADOW_SLOTS
    }

    /// Run `f` on a new native stack segment (`crate::stack`: 16 MiB each,
    /// up to 64, more than the default depth limit of small functions needs;
    /// the limit is checked whenever a segment is full), if one more can be
    /// had; beyond, calls continue in the interpreter.
    fn on_new_segment<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        tracing::trace!(target: "sx_jit", event = "stack-segment", segments = crate::stack::in_use() + 1);
        crate::stack::on_segment(f)
    }

    /// Count an entry of `code` the interpreter asks about and return its
    /// compiled artifact, compiling it now if it just became hot. An
    /// `Interpret` answer opens a quiet window ([`TierQuiet`]): the calls the
    /// cache would answer the same way are entered without asking.
    fn decide(&self, m: &Machine, code: &Rc<Code>) -> Option<Rc<Artifact>> {
        // Compiled code the interpreter enters (a callback of `map`, say):
        // the table of links answers as it does for calls from compiled code.
        if let Some(a) = self.linked_untouched(code) {
            return Some(a);
        }
        let key = CodeKey(code.id);
        let sig = &*m.tier_signals;
        let n = code.calls.get();
        let q = code.tier_quiet.get();
        // Calls skipped since the last asking count towards the threshold,
        // unless the counters were dropped meanwhile.
        let unseen = if q.counted && q.epoch == sig.epoch.get() { n.wrapping_sub(q.from).saturating_sub(1) } else { 0 };
        let d = self.cache.borrow_mut().on_call_after(key, code.name.as_deref(), unseen);
        match d {
            CallDecision::Run(a) => {
                self.link(code, &a);
                Some(a)
            }
            CallDecision::Interpret => {
                let (calls, counted) = self.cache.borrow().quiet_calls(key, code.name.as_deref());
                code.tier_quiet.set(TierQuiet { version: sig.version.get(), epoch: sig.epoch.get(), from: n, until: n.saturating_add(calls), counted });
                None
            }
            CallDecision::Compile => self.compile(m, code),
        }
    }

    /// The compiled artifact of `code` if it has one; `None` leaves counting
    /// to the interpreter's entry. A small direct-mapped table of weak links
    /// answers most calls without the cache; every `LINK_TOUCH`-th answer
    /// still goes through the cache, which keeps its LRU order and hit count
    /// (like direct calls of compiled code, the others are not counted there).
    fn compiled(&self, code: &Code) -> Option<Rc<Artifact>> {
        if let Some(a) = self.linked_untouched(code) {
            return Some(a);
        }
        let a = self.cache.borrow_mut().call_compiled(CodeKey(code.id))?;
        self.link(code, &a);
        Some(a)
    }

    /// [`JitTier::linked`], except on every `LINK_TOUCH`-th use, when the
    /// caller must ask the cache instead.
    fn linked_untouched(&self, code: &Code) -> Option<Rc<Artifact>> {
        let n = self.link_uses.get().wrapping_add(1);
        self.link_uses.set(n);
        if n.is_multiple_of(LINK_TOUCH) {
            return None;
        }
        self.linked(code)
    }

    fn link(&self, code: &Code, a: &Rc<Artifact>) {
        self.links.borrow_mut()[(code.id as usize) & (LINKS - 1)] = Some((code.id, Rc::downgrade(a)));
    }

    /// The compiled artifact of `code` if the table of links has it (without
    /// counting anything).
    fn linked(&self, code: &Code) -> Option<Rc<Artifact>> {
        let links = self.links.borrow();
        match &links[(code.id as usize) & (LINKS - 1)] {
            Some((id, weak)) if *id == code.id && self.cache.borrow().threshold() != 0 => weak.upgrade(),
            _ => None,
        }
    }

    /// Enough native stack for a compiled call, while compiled code runs
    /// (cheaper than [`stack_ok`]: compares with the limit of this run).
    fn stack_ok_running(&self) -> bool {
        let here = 0u8;
        // SAFETY: a plain read of a field between calls of compiled code.
        let limit = unsafe { (*self.ctx.get()).stack_limit };
        (std::ptr::addr_of!(here) as u64) > limit
    }

    fn compile(&self, m: &Machine, code: &Rc<Code>) -> Option<Rc<Artifact>> {
        let key = CodeKey(code.id);
        let name = code.name.as_deref().unwrap_or("<lambda>");
        let t0 = Instant::now();
        let ir = match sx_ir::lower(code, m) {
            Ok(ir) => ir,
            Err(e) => {
                tracing::debug!(target: "sx_jit", event = "decline", function = name, reason = %e);
                self.cache.borrow_mut().declined(key, &e.to_string());
                return None;
            }
        };
        // A backend bug must not take the program down: the function stays
        // interpreted. (Only where panics unwind: the workspace's release
        // profile aborts instead, for the interpreter's speed; see Cargo.toml.)
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.backend.borrow_mut().compile(&ir)))
            .unwrap_or_else(|_| Err(crate::CompileError::Failed("the code generator panicked".into())));
        let spent = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.count(|c| c.compile_us = c.compile_us.saturating_add(spent));
        match r {
            Ok(c) => {
                let us = u32::try_from(spent).unwrap_or(u32::MAX);
                self.record_latency(us);
                let bytes = c.code_bytes();
                tracing::debug!(target: "sx_jit", event = "compile", function = name, latency_us = us, code_bytes = bytes, slots = ir.meta.nslots, interpreted_nodes = ir.meta.interpreted_nodes);
                if let Some(p) = &ir.meta.pure {
                    // What the pure version assumed held when it was lowered.
                    for d in p.deps.iter() {
                        let (sx_ir::pure::PureDep::Prim { sym, .. } | sx_ir::pure::PureDep::SelfCall { sym }) = *d;
                        m.watch_global(sym);
                    }
                    p.valid_at.set(m.assumptions_epoch());
                }
                let a = Artifact::new(c, ir.meta);
                Some(self.cache.borrow_mut().insert(key, a))
            }
            Err(e) => {
                tracing::debug!(target: "sx_jit", event = "decline", function = name, reason = %e);
                self.cache.borrow_mut().declined(key, &e.to_string());
                None
            }
        }
    }

    fn record_latency(&self, us: u32) {
        let mut l = self.latencies_us.borrow_mut();
        if l.len() < LATENCY_SAMPLES {
            l.push(us);
        } else {
            let i = self.latency_next.get() % LATENCY_SAMPLES;
            l[i] = us;
            self.latency_next.set(i + 1);
        }
    }

    /// Run compiled code once.
    fn run_once(&self, m: &mut Machine, a: &Artifact, start: &Start) -> u64 {
        match start {
            Start::Env(env) => m.maybe_collect(&[*env]),
            Start::Args(parent, args) => {
                if m.rt.heap.wants_collection() {
                    let mut roots = args.to_vec();
                    roots.push(*parent);
                    m.maybe_collect(&roots);
                }
            }
        }
        let ctx = self.ctx.get();
        // SAFETY: `ctx` is this tier's context; compiled code and helpers use
        // it only during this call, on this thread. The machine pointer is
        // derived from the `&mut Machine` we hold and do not use until the
        // call returns; the tier outlives the call (the machine holds it and
        // the caller holds an `Rc`). The artifact (code and the metadata it
        // embeds) is borrowed for the whole call.
        unsafe {
            (*ctx).machine = m as *mut Machine;
            (*ctx).tier = self as *const JitTier;
            // This call may run on another stack segment than its caller.
            let saved_limit = (*ctx).stack_limit;
            let saved_depth = (*ctx).depth;
            let saved_depth_limit = (*ctx).depth_limit;
            (*ctx).stack_limit = stack_limit();
            (*ctx).depth_limit = (m.max_depth as u64).saturating_sub(m.depth() as u64);
            (*ctx).tail_budget = crate::TAIL_BUDGET;
            refresh_globals(ctx, m);
            let r = match (start, a.argv_entry()) {
                (Start::Args(parent, args), Some(f)) => f(ctx, parent.0, args.as_ptr() as *const u64),
                (Start::Env(env), _) => (a.entry())(ctx, env.0),
                // `start_for` only builds `Args` for code with the entry.
                (Start::Args(..), None) => words::UNWIND,
            };
            (*ctx).stack_limit = saved_limit;
            (*ctx).depth = saved_depth;
            (*ctx).depth_limit = saved_depth_limit;
            r
        }
    }

    /// How to start compiled code `a` for a call of closure `f` (code `lc`,
    /// captured `parent`) with `args`: the argument vector for a flat
    /// function of that arity, else a bound environment.
    fn start_for<'a>(&self, m: &mut Machine, a: &Artifact, lc: &Code, parent: Value, args: &'a [Value]) -> Result<Start<'a>, ()> {
        if a.runs_on_argv(args.len()) {
            return Ok(Start::Args(parent, std::borrow::Cow::Borrowed(args)));
        }
        m.bind_lambda_args(lc, parent, args).map(Start::Env).map_err(|_| ())
    }

    /// Run `a` with `env`, performing the tail calls it returns. From the
    /// interpreter (`nested == false`) a tail call to interpreted code is
    /// handed to the interpreter; from compiled code it runs nested.
    fn run(&self, m: &mut Machine, a: Rc<Artifact>, start: Start<'_>, nested: bool) -> JitOutcome {
        let mut a = a;
        let mut start = start;
        let out = loop {
            self.count(|c| c.compiled_calls += 1);
            let r = self.run_once(m, &a, &start);
            if r == words::UNWIND {
                break JitOutcome::Unwind;
            }
            if r != words::TAIL {
                break JitOutcome::Value(Value(r));
            }
            // The tail call's arguments move into a buffer of this loop (the
            // previous start's, or the spare one) and the tail buffer keeps
            // the emptied one: no allocation per tail call.
            let mut args = match &mut start {
                Start::Args(_, std::borrow::Cow::Owned(v)) => std::mem::take(v),
                _ => std::mem::take(&mut *self.tail_spare.borrow_mut()),
            };
            args.clear();
            std::mem::swap(&mut args, &mut *self.tail.borrow_mut());
            let f = self.tail_callee.get();
            if let Some((lc, parent)) = m.closure_of(f) {
                if let Some(next) = self.compiled(&lc) {
                    if !m.interrupt.load(std::sync::atomic::Ordering::Relaxed) && self.room(next.meta().nslots) {
                        if next.runs_on_argv(args.len()) {
                            self.count(|c| c.lambda_calls += 1);
                            a = next;
                            start = Start::Args(parent, std::borrow::Cow::Owned(args));
                            continue;
                        }
                        if let Ok(env) = m.bind_lambda_args(&lc, parent, &args) {
                            self.count(|c| c.lambda_calls += 1);
                            a = next;
                            self.spare_args(args);
                            start = Start::Env(env);
                            continue;
                        }
                    }
                }
                // Otherwise the interpreter's entry counts the call.
            }
            let out = if nested && stack_ok() { m.jit_call(f, &args) } else { m.jit_defer_call(f, &args) };
            self.spare_args(args);
            break out;
        };
        if let Start::Args(_, std::borrow::Cow::Owned(v)) = start {
            self.spare_args(v);
        }
        out
    }

    /// Keep `v` as the spare argument buffer of tail calls if it is the
    /// largest at hand.
    fn spare_args(&self, mut v: Vec<Value>) {
        let mut spare = self.tail_spare.borrow_mut();
        if v.capacity() > spare.capacity() {
            v.clear();
            *spare = v;
        }
    }

    /// Perform the tail call a direct callee left (for compiled code).
    pub(crate) fn run_pending_tail(&self, m: &mut Machine) -> JitOutcome {
        let mut args = std::mem::take(&mut *self.tail.borrow_mut());
        let f = self.tail_callee.get();
        let out = match self.call(m, f, &args, None) {
            CallResult::Value(v) => JitOutcome::Value(v),
            CallResult::Unwind => JitOutcome::Unwind,
            // The interpreter redoes it (and raises its error).
            CallResult::Bail => m.jit_defer_call(f, &args),
        };
        // Hand the buffer back for the next tail call.
        let mut t = self.tail.borrow_mut();
        if t.capacity() == 0 {
            args.clear();
            *t = args;
        }
        out
    }

    /// A call made by compiled code; `ic`: the call site's inline cache.
    pub(crate) fn call(&self, m: &mut Machine, f: Value, args: &[Value], ic: Option<&sx_ir::IcCell>) -> CallResult {
        if let Some(p) = f.as_prim() {
            if let Some((nf, min, max, _)) = m.prim_native(p) {
                if args.len() < min || max.is_some_and(|x| args.len() > x) {
                    return CallResult::Bail;
                }
                return match nf(&mut m.rt, args) {
                    Ok(v) => CallResult::Value(v),
                    Err(_) => CallResult::Bail,
                };
            }
        } else if let Some((lc, parent)) = m.closure_of(f) {
            self.count(|c| c.lambda_calls += 1);
            if let Some(a) = self.compiled(&lc) {
                if m.interrupt.load(std::sync::atomic::Ordering::Relaxed) || !self.shadow_room(a.meta().nslots) {
                    self.count(|c| c.stack_fallbacks += 1);
                    return self.outcome(m.jit_defer_call(f, args));
                }
                let start = match self.start_for(m, &a, &lc, parent, args) {
                    Ok(s) => s,
                    Err(()) => return CallResult::Bail,
                };
                // Past the depth limit, counting the compiled frames on the
                // native stack: the same error as in the interpreter.
                // SAFETY: a plain read of a field between calls of compiled code.
                let compiled = unsafe { (*self.ctx.get()).depth } as usize;
                if m.depth().saturating_add(compiled) > m.max_depth {
                    return self.outcome(m.jit_fail(&lc, lc.root, sx_core::Error::msg("Maximum recursion depth exceeded")));
                }
                if !self.stack_ok_running() {
                    // Deep recursion: continue on a new stack segment, unless
                    // this recursion already used them all (then continue in
                    // the interpreter, which reaches the depth limit sooner).
                    if m.depth() > self.deep_floor.get() {
                        self.count(|c| c.stack_fallbacks += 1);
                        return self.outcome(m.jit_defer_call(f, args));
                    }
                    return match self.on_new_segment(|| self.run(m, a, start, true)) {
                        Some(o) => self.outcome(o),
                        None => {
                            self.count(|c| c.stack_fallbacks += 1);
                            self.deep_floor.set(self.deep_floor.get().min(m.depth()));
                            self.outcome(m.jit_defer_call(f, args))
                        }
                    };
                }
                if let Some(ic) = ic {
                    point_ic(ic, &a, f, parent, args.len());
                }
                return self.outcome(self.run(m, a, start, true));
            }
            // Counted by the interpreter's entry.
            self.count(|c| c.lambda_calls -= 1);
        } else if !is_continuation(m, f) {
            return CallResult::Bail;
        }
        if !stack_ok() {
            self.count(|c| c.stack_fallbacks += 1);
            return self.outcome(m.jit_defer_call(f, args));
        }
        self.outcome(m.jit_call(f, args))
    }

    fn outcome(&self, o: JitOutcome) -> CallResult {
        match o {
            JitOutcome::Value(v) => CallResult::Value(v),
            JitOutcome::Unwind => CallResult::Unwind,
        }
    }

    /// Fill inline cache `ic` for calls of `f` with `argc` arguments when `f`
    /// is a compiled flat function (without counting a call).
    pub(crate) fn fill_ic(&self, m: &mut Machine, f: Value, argc: usize, ic: &sx_ir::IcCell) {
        if ic.closure.get() == f.0 && ic.epoch.get() == crate::epoch() {
            return; // Already pointing at `f` (a loop's tail call, every turn).
        }
        let Some((lc, parent)) = m.closure_of(f) else { return };
        let Some(a) = self.linked(&lc).or_else(|| self.cache.borrow().get(CodeKey(lc.id))) else { return };
        point_ic(ic, &a, f, parent, argc);
    }

    /// Leave a tail call for the code that called the running activation.
    pub(crate) fn set_tail(&self, f: Value, args: &[Value]) {
        let mut t = self.tail.borrow_mut();
        t.clear();
        t.extend_from_slice(args);
        self.tail_callee.set(f);
    }
}

/// Point inline cache `ic` at `a` for calls of closure `f` (captured
/// environment `parent`) with `argc` arguments, when `a` has a direct entry
/// for that arity.
fn point_ic(ic: &sx_ir::IcCell, a: &Artifact, f: Value, parent: Value, argc: usize) {
    if let Some(entry) = a.direct_entry_for(argc) {
        ic.closure.set(f.0);
        ic.epoch.set(crate::epoch());
        ic.entry.set(entry);
        ic.env.set(parent.0);
        ic.code.set(Rc::as_ptr(&a.meta().code) as usize as u64);
        ic.flat.set(u64::from(a.meta().flat.is_some()));
    }
}

/// Enough native stack for another compiled activation?
pub(crate) fn stack_ok() -> bool {
    crate::stack::remaining().is_none_or(|r| r > STACK_MARGIN)
}

/// The native stack address below which compiled code must not start a
/// direct call (the margin stays free for the runtime).
fn stack_limit() -> u64 {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as u64;
    match crate::stack::remaining() {
        Some(r) => sp.saturating_sub(r as u64).saturating_add(STACK_MARGIN as u64),
        None => u64::MAX,
    }
}

/// Point the context at the machine's global table.
///
/// # Safety
/// `ctx` must be valid for writes.
pub(crate) unsafe fn refresh_globals(ctx: *mut JitCtx, m: &Machine) {
    // SAFETY: the caller guarantees `ctx` is valid.
    unsafe {
        (*ctx).globals = m.globals_ptr() as *const u64;
        (*ctx).globals_len = m.globals_len() as u64;
        (*ctx).epoch = crate::epoch();
        (*ctx).assumptions_epoch = m.assumptions_epoch();
    }
}

fn is_continuation(m: &Machine, f: Value) -> bool {
    matches!(m.rt.heap.get(f), Some(Obj::Extern(e)) if e.as_any().is::<ContinuationObj>())
}

impl Tier for JitTier {
    fn enter(&self, m: &mut Machine, code: &Rc<Code>, env: Value) -> Option<JitOutcome> {
        let floor = self.deep_floor.get();
        if floor != usize::MAX && m.depth() <= floor {
            // Back above the recursion that exhausted the native stack.
            self.deep_floor.set(usize::MAX);
        }
        let a = self.decide(m, code)?;
        if !self.room(a.meta().nslots) {
            // Out of native stack: continue below the compiled frames that
            // hold it (when they started this run), else interpret here.
            self.count(|c| c.stack_fallbacks += 1);
            return m.jit_leave_run(code.clone(), env);
        }
        Some(self.run(m, a, Start::Env(env), false))
    }

    fn trace(&self, t: &mut Tracer) {
        // Freed slots may be reused for new closures: inline caches keyed by
        // closure must not match them.
        crate::bump_epoch();
        let used = self.shadow_used().min(SHADOW_SLOTS);
        let base = self.shadow_base();
        for i in 0..used {
            // SAFETY: `i` is below the slots in use, inside the allocation; no
            // compiled code runs while the collector marks (it is called from
            // a safepoint in Rust), so nothing writes the slots meanwhile.
            t.mark(Value(unsafe { base.add(i).read() }));
        }
        t.mark_all(&self.tail.borrow());
        t.mark(self.tail_callee.get());
    }
}
