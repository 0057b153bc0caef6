//! The runtime functions compiled code calls.
//!
//! [`foreach_helper!`] is the one list: a backend expands it to declare the
//! imports (every parameter and the result are 64-bit words; the first
//! parameter is the `*mut JitCtx`), the runtime expands it to build
//! [`HELPERS`] from the functions below — a function whose signature does
//! not match its entry fails to compile.
//!
//! Parameters named `meta` are the address of the calling function's
//! [`FnMeta`], `fp` the address of its shadow frame, `site`/`bail` indices
//! of its sites. A helper that returns [`words::UNWIND`] has handed the
//! activation's pending frames to the machine; the compiled code returns
//! `UNWIND` at once.

use crate::tier::{refresh_globals, CallResult, JitTier};
use crate::{words, JitCtx};
use sx_cek::code::NodeId;
use sx_cek::machine::JitOutcome;
use sx_cek::Machine;
use sx_core::heap::{Closure, Obj};
use sx_core::Value;
use sx_ir::FnMeta;

/// Invoke `$m!` with the list of helpers: `name(ctx, params...);`.
#[macro_export]
macro_rules! foreach_helper {
    ($m:ident) => {
        $m! {
            /// A variable `depth` frames up from `env`.
            sx_env_get(ctx, env, depth, slot);
            /// Assign a variable; returns the value.
            sx_env_set(ctx, env, depth, slot, value);
            /// A closure (or macro) of `FnMeta::children[child]` over `env`.
            sx_closure(ctx, meta, child, env, is_macro);
            /// A new environment under `parent` initialised from `n` words at `argv`.
            sx_new_env(ctx, parent, argv, n, size);
            /// A global read found it unbound: the interpreter evaluates `node`.
            sx_unbound(ctx, meta, fp, site, node, env);
            /// Assign or define a global.
            sx_set_global(ctx, meta, fp, sym, value, define, bail);
            /// Perform call `call` of the metadata (`FnMeta::calls`): apply
            /// the primitive while the head still is it, else call the head
            /// (filling the inline cache); in tail position leave the call
            /// for the caller and return `TAIL`.
            sx_call(ctx, meta, fp, call);
            /// A direct call returned `UNWIND`: add this activation's frames.
            sx_unwound(ctx, meta, fp, site);
            /// A direct call returned `TAIL`: perform the pending tail call.
            sx_run_tail(ctx, meta, fp, site);
            /// The parent of environment `env`.
            sx_env_parent(ctx, env);
            /// Evaluate `node` in the interpreter.
            sx_interp(ctx, meta, fp, node, env, site);
            /// The clause of `case` node `node` matching `key` (the clause
            /// count when none does); a plain integer, not a value.
            sx_case(ctx, meta, node, key);
            /// A pure version's assumptions epoch is stale: check its
            /// assumptions again; 1 when they hold (it may run), else 0 (it
            /// is disabled).
            sx_pure_check(ctx, meta);
            /// A pure version gave up: disable it and return 0 (the call is
            /// run again by the ordinary version); or, when it gave up
            /// because the recursion is deeper than the depth limit
            /// (`JitCtx::pure_too_deep`), raise that error and return `UNWIND`.
            sx_pure_bail(ctx, meta);
            /// A pure version's periodic safepoint: 1 to go on, 0 when an
            /// interrupt is pending (it then gives up).
            sx_safepoint(ctx);
            /// The periodic safepoint of direct calls: 1 to make the call
            /// directly, 0 to leave it to the runtime, which raises a pending
            /// interrupt and collects when allocation since the last
            /// collection calls for it (compiled code calling compiled code
            /// directly never gets there otherwise, and garbage would pile
            /// up for as long as the recursion runs).
            sx_call_poll(ctx);
            /// The inline cache at `ic` holds another closure than `f`: 1
            /// when `f` is a closure of the same code (the cache now holds
            /// `f` and its environment), else 0.
            sx_ic_relink(ctx, ic, f);
        }
    };
}

/// One helper: its symbol, its number of parameters and its address.
#[derive(Clone, Copy, Debug)]
pub struct HelperInfo {
    pub name: &'static str,
    pub params: usize,
    pub addr: *const u8,
}

macro_rules! word {
    ($x:ident) => {
        u64
    };
}

macro_rules! define_table {
    ($( $(#[$doc:meta])* $name:ident(ctx $(, $p:ident)*); )*) => {
        /// Helper identities, in list order.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum HelperId { $( $(#[$doc])* $name, )* }

        /// Every helper, indexed by `HelperId as usize`.
        pub fn helpers() -> Vec<HelperInfo> {
            vec![ $( HelperInfo {
                name: stringify!($name),
                params: 1 + <[&str]>::len(&[$(stringify!($p)),*]),
                addr: $name as unsafe extern "C" fn(*mut JitCtx $(, word!($p))*) -> u64 as *const u8,
            }, )* ]
        }
    };
}

foreach_helper!(define_table);

/// The machine and tier behind a context.
///
/// # Safety
/// `ctx` must be the context of a running tier (set by `JitTier::run_once`).
unsafe fn parts<'a>(ctx: *mut JitCtx) -> (&'a mut Machine, &'a JitTier) {
    // SAFETY: guaranteed by the caller; the machine is not otherwise
    // borrowed while compiled code runs.
    unsafe { (&mut *(*ctx).machine, &*(*ctx).tier) }
}

/// # Safety
/// `meta` must be the address of a live `FnMeta`.
unsafe fn meta_ref<'a>(meta: u64) -> &'a FnMeta {
    // SAFETY: guaranteed by the caller (compiled code embeds the address of
    // its artifact's metadata, which lives as long as the code).
    unsafe { &*(meta as *const FnMeta) }
}

/// # Safety
/// `fp` must point to a shadow frame with at least `i + 1` slots.
unsafe fn slot(fp: u64, i: u64) -> Value {
    // SAFETY: guaranteed by the caller.
    Value(unsafe { *(fp as *const u64).add(i as usize) })
}

/// The activation's environment as a heap object: slot 0, or for a flat
/// function a new environment built from its variable slots.
///
/// # Safety
/// `fp` must be the frame of the function whose metadata is `meta`.
unsafe fn frame_env(m: &mut Machine, meta: &FnMeta, fp: u64) -> Value {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match meta.flat {
            None => slot(fp, 0),
            Some(fl) => {
                let vars = std::slice::from_raw_parts((fp as *const Value).add(sx_ir::FLAT_VARS as usize), usize::from(fl.frame_size));
                m.rt.heap.alloc_env(slot(fp, 0), vars, usize::from(fl.frame_size))
            }
        }
    }
}

/// The `argc` operands after the callee in slot `base`.
///
/// # Safety
/// `fp` must point to a shadow frame with slots `base ..= base + argc`.
unsafe fn operands<'a>(fp: u64, base: u64, argc: u64) -> &'a [Value] {
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts((fp as *const Value).add(base as usize + 1), argc as usize) }
}

/// Hand the frames of `site` to the machine; returns the environment the
/// innermost frame uses.
///
/// # Safety
/// `fp` must be the frame of the function whose metadata is `meta`.
unsafe fn push_site(m: &mut Machine, tier: &JitTier, meta: &FnMeta, fp: u64, site: u64) -> Value {
    if m.jit_discarding() {
        // An error on its way to a handler that drops these frames.
        return Value::NIL;
    }
    tier.note_deopt();
    // SAFETY: guaranteed by the caller.
    let flat_env = if meta.flat.is_some() { Some(unsafe { frame_env(m, meta, fp) }) } else { None };
    // SAFETY: the site's slots are within the frame (guaranteed by the caller).
    let env_of = |slot_: u32| flat_env.unwrap_or_else(|| unsafe { slot(fp, u64::from(slot_)) });
    let Some(s) = meta.sites.get(site as usize) else { return env_of(0) };
    tracing::trace!(target: "sx_jit", event = "deopt", function = meta.code.name.as_deref().unwrap_or("<lambda>"), frames = s.frames.len());
    m.jit_begin_activation();
    let mut inner = env_of(0);
    for f in &s.frames {
        let env = env_of(f.env);
        // SAFETY: the site's slots are within the frame (guaranteed by the caller).
        let vals = unsafe { std::slice::from_raw_parts((fp as *const Value).add(f.vals as usize), f.nvals as usize) };
        m.jit_push_frame(meta.code.clone(), env, f.node, f.i, vals);
        inner = env;
    }
    inner
}

fn env_walk(m: &Machine, mut env: Value, depth: u64) -> Option<Value> {
    for _ in 0..depth {
        env = m.rt.heap.env_parent(env)?;
    }
    Some(env)
}

/// # Safety
/// Called by compiled code with its context.
pub unsafe extern "C" fn sx_env_get(ctx: *mut JitCtx, env: u64, depth: u64, slot_: u64) -> u64 {
    // SAFETY: see `parts`.
    let (m, _) = unsafe { parts(ctx) };
    env_walk(m, Value(env), depth).and_then(|e| m.rt.heap.env_get(e, slot_ as usize)).unwrap_or(Value::NIL).0
}

/// # Safety
/// Called by compiled code with its context.
pub unsafe extern "C" fn sx_env_set(ctx: *mut JitCtx, env: u64, depth: u64, slot_: u64, value: u64) -> u64 {
    // SAFETY: see `parts`.
    let (m, _) = unsafe { parts(ctx) };
    if let Some(e) = env_walk(m, Value(env), depth) {
        m.rt.heap.env_set(e, slot_ as usize, Value(value));
    }
    value
}

/// # Safety
/// Called by compiled code with its context and metadata.
pub unsafe extern "C" fn sx_closure(ctx: *mut JitCtx, meta: u64, child: u64, env: u64, is_macro: u64) -> u64 {
    // SAFETY: see `parts` and `meta_ref`.
    let (m, meta) = unsafe { (parts(ctx).0, meta_ref(meta)) };
    let Some(code) = meta.children.get(child as usize) else { return Value::NIL.0 };
    let clo = Closure { code: code.clone(), env: Value(env) };
    let obj = if is_macro != 0 { Obj::Macro(clo) } else { Obj::Lambda(clo) };
    m.rt.heap.alloc(obj).0
}

/// # Safety
/// Called by compiled code; `argv` points to `n` words.
pub unsafe extern "C" fn sx_new_env(ctx: *mut JitCtx, parent: u64, argv: u64, n: u64, size: u64) -> u64 {
    // SAFETY: see `parts`; `argv` is guaranteed by the caller.
    let (m, _) = unsafe { parts(ctx) };
    let init: &[Value] = if n == 0 { &[] } else { unsafe { std::slice::from_raw_parts(argv as *const Value, n as usize) } };
    m.rt.heap.alloc_env(Value(parent), init, size as usize).0
}

/// # Safety
/// Called by compiled code with its context, metadata and frame.
pub unsafe extern "C" fn sx_unbound(ctx: *mut JitCtx, meta: u64, fp: u64, site: u64, node: u64, env: u64) -> u64 {
    // SAFETY: see `parts`, `meta_ref`, `push_site`.
    unsafe {
        let (m, tier) = parts(ctx);
        let meta = meta_ref(meta);
        let frame_env = push_site(m, tier, meta, fp, site);
        // A flat function's variables live in slots: its environment is the
        // one just built from them.
        let env = if meta.flat.is_some() { frame_env } else { Value(env) };
        m.jit_bail(meta.code.clone(), env, Some(node as NodeId), Value::NIL);
    }
    words::UNWIND
}

/// # Safety
/// Called by compiled code with its context, metadata and frame.
pub unsafe extern "C" fn sx_set_global(ctx: *mut JitCtx, meta: u64, fp: u64, sym: u64, value: u64, define: u64, bail: u64) -> u64 {
    // SAFETY: see `parts`, `meta_ref`, `push_site`.
    unsafe {
        let (m, tier) = parts(ctx);
        if define == 0 && m.global(sym as u32) == Value::UNBOUND {
            let meta = meta_ref(meta);
            push_site(m, tier, meta, fp, bail);
            m.jit_bail(meta.code.clone(), Value::NIL, None, Value(value));
            return words::UNWIND;
        }
        m.set_global(sym as u32, Value(value));
        refresh_globals(ctx, m);
    }
    value
}

/// # Safety
/// Called by compiled code with its context, metadata and frame; `call`
/// indexes the metadata's calls and its slots are in the frame.
pub unsafe extern "C" fn sx_call(ctx: *mut JitCtx, meta: u64, fp: u64, call: u64) -> u64 {
    // SAFETY: see `parts`, `meta_ref`, `push_site`; the call's slots are in the frame.
    unsafe {
        let (m, tier) = parts(ctx);
        let meta = meta_ref(meta);
        let Some(cs) = meta.calls.get(call as usize).copied() else { return words::UNWIND };
        let f = slot(fp, u64::from(cs.base));
        let args = operands(fp, u64::from(cs.base), u64::from(cs.argc));
        let ic = cs.ic.and_then(|ic| meta.ics.get(ic as usize));
        // A primitive still bound to its name is applied here at once, even
        // in tail position (nothing to gain from leaving it to the caller).
        if let Some(p) = cs.prim.filter(|p| f == Value::prim(*p)) {
            if let Some((nf, min, max, _)) = m.prim_native(p) {
                let r = if args.len() < min || max.is_some_and(|x| args.len() > x) {
                    CallResult::Bail
                } else {
                    match nf(&mut m.rt, args) {
                        Ok(v) => return v.0,
                        // The interpreter redoes the call and raises its error.
                        Err(_) => CallResult::Bail,
                    }
                };
                return finish_call(m, tier, meta, fp, r, u64::from(cs.base + cs.argc), u64::from(cs.site), u64::from(cs.bail));
            }
        }
        if cs.tail && !cs.prim.is_some_and(|p| f == Value::prim(p)) {
            if let Some(cell) = ic {
                tier.fill_ic(m, f, args.len(), cell);
            }
            tier.set_tail(f, args);
            return words::TAIL;
        }
        let r = tier.call(m, f, args, ic);
        let out = finish_call(m, tier, meta, fp, r, u64::from(cs.base + cs.argc), u64::from(cs.site), u64::from(cs.bail));
        refresh_globals(ctx, m);
        out
    }
}

/// # Safety
/// Called by compiled code with its context, metadata and frame.
pub unsafe extern "C" fn sx_unwound(ctx: *mut JitCtx, meta: u64, fp: u64, site: u64) -> u64 {
    // SAFETY: see `parts`, `meta_ref`, `push_site`.
    unsafe {
        let (m, tier) = parts(ctx);
        push_site(m, tier, meta_ref(meta), fp, site);
    }
    words::UNWIND
}

/// # Safety
/// Called by compiled code with its context, metadata and frame.
pub unsafe extern "C" fn sx_run_tail(ctx: *mut JitCtx, meta: u64, fp: u64, site: u64) -> u64 {
    // SAFETY: see `parts`, `meta_ref`, `push_site`.
    unsafe {
        let (m, tier) = parts(ctx);
        let out = match tier.run_pending_tail(m) {
            JitOutcome::Value(v) => v.0,
            JitOutcome::Unwind => {
                push_site(m, tier, meta_ref(meta), fp, site);
                words::UNWIND
            }
        };
        refresh_globals(ctx, m);
        out
    }
}

/// # Safety
/// Called by compiled code with its context.
pub unsafe extern "C" fn sx_env_parent(ctx: *mut JitCtx, env: u64) -> u64 {
    // SAFETY: see `parts`.
    let (m, _) = unsafe { parts(ctx) };
    m.rt.heap.env_parent(Value(env)).unwrap_or(Value::NIL).0
}

/// # Safety
/// `fp` and `meta` as for the helpers.
#[allow(clippy::too_many_arguments)]
unsafe fn finish_call(m: &mut Machine, tier: &JitTier, meta: &FnMeta, fp: u64, r: CallResult, last: u64, site: u64, bail: u64) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match r {
            CallResult::Value(v) => v.0,
            CallResult::Unwind => {
                push_site(m, tier, meta, fp, site);
                words::UNWIND
            }
            CallResult::Bail => {
                push_site(m, tier, meta, fp, bail);
                m.jit_bail(meta.code.clone(), Value::NIL, None, slot(fp, last));
                words::UNWIND
            }
        }
    }
}

/// # Safety
/// Called by compiled code with its context, metadata and frame.
pub unsafe extern "C" fn sx_interp(ctx: *mut JitCtx, meta: u64, fp: u64, node: u64, env: u64, site: u64) -> u64 {
    // SAFETY: see `parts`, `meta_ref`, `push_site`.
    unsafe {
        let (m, tier) = parts(ctx);
        let meta = meta_ref(meta);
        let out = if crate::tier::stack_ok() {
            match m.jit_eval(meta.code.clone(), Value(env), node as NodeId) {
                JitOutcome::Value(v) => v.0,
                JitOutcome::Unwind => {
                    push_site(m, tier, meta, fp, site);
                    words::UNWIND
                }
            }
        } else {
            push_site(m, tier, meta, fp, site);
            m.jit_bail(meta.code.clone(), Value(env), Some(node as NodeId), Value::NIL);
            words::UNWIND
        };
        refresh_globals(ctx, m);
        out
    }
}

/// # Safety
/// Called by compiled code with its context and metadata.
pub unsafe extern "C" fn sx_case(ctx: *mut JitCtx, meta: u64, node: u64, key: u64) -> u64 {
    // SAFETY: see `parts` and `meta_ref`.
    let (m, meta) = unsafe { (parts(ctx).0, meta_ref(meta)) };
    match meta.code.nodes.get(node as usize) {
        Some(sx_cek::code::Node::Case { clauses, .. }) => clauses
            .iter()
            .position(|(datums, _)| datums.iter().any(|d| sx_core::prims::values_equal(&m.rt, *d, Value(key))))
            .unwrap_or(clauses.len()) as u64,
        _ => u64::MAX,
    }
}

/// # Safety
/// Called by compiled code with its context and metadata.
pub unsafe extern "C" fn sx_pure_check(ctx: *mut JitCtx, meta: u64) -> u64 {
    // SAFETY: see `parts` and `meta_ref`.
    let (m, meta) = unsafe { (parts(ctx).0, meta_ref(meta)) };
    let Some(p) = &meta.pure else { return 0 };
    if p.valid_at.get() == sx_ir::pure::PURE_DISABLED {
        return 0;
    }
    let holds = p.deps.iter().all(|d| match *d {
        sx_ir::pure::PureDep::Prim { sym, prim } => m.global(sym) == Value::prim(prim),
        sx_ir::pure::PureDep::SelfCall { sym } => sx_ir::pure::global_is_closure_of(m, sym, &meta.code),
    });
    if holds {
        p.valid_at.set(m.assumptions_epoch());
        1
    } else {
        tracing::debug!(target: "sx_jit", event = "pure-disabled", function = meta.code.name.as_deref().unwrap_or("<lambda>"), reason = "a global it calls was rebound");
        p.valid_at.set(sx_ir::pure::PURE_DISABLED);
        0
    }
}

/// # Safety
/// Called by compiled code with its context and metadata.
pub unsafe extern "C" fn sx_pure_bail(ctx: *mut JitCtx, meta: u64) -> u64 {
    // SAFETY: see `parts` and `meta_ref`; `ctx` is valid for this call.
    let (m, tier, meta, too_deep) = unsafe {
        let too_deep = std::mem::replace(&mut (*ctx).pure_too_deep, 0) != 0;
        let (m, tier) = parts(ctx);
        (m, tier, meta_ref(meta), too_deep)
    };
    if too_deep {
        // The pure version's recursion went past the depth limit (counting
        // accumulated sums as the frames they stand for): the ordinary
        // version, recursing in the order written, would meet the limit at
        // the same call and raise the depth error, and nothing else (a pure
        // version has no effect). Raise it now instead of recursing to the
        // limit first. (At the callee's body, as the ordinary version's own
        // depth check does.)
        tracing::debug!(target: "sx_jit", event = "pure-too-deep", function = meta.code.name.as_deref().unwrap_or("<lambda>"));
        let e = sx_core::Error::msg("Maximum recursion depth exceeded");
        return match m.jit_fail(&meta.code, meta.code.root, e) {
            JitOutcome::Unwind => words::UNWIND,
            // `jit_fail` always unwinds; were it not to, the ordinary
            // version would still run the call.
            JitOutcome::Value(_) => 0,
        };
    }
    tracing::debug!(target: "sx_jit", event = "pure-disabled", function = meta.code.name.as_deref().unwrap_or("<lambda>"), reason = "it gave up (not a fixnum, overflow, deep recursion or an interrupt)");
    tier.note_pure_bail();
    if let Some(p) = &meta.pure {
        p.valid_at.set(sx_ir::pure::PURE_DISABLED);
    }
    0
}

/// # Safety
/// Called by compiled code with its context.
pub unsafe extern "C" fn sx_safepoint(ctx: *mut JitCtx) -> u64 {
    // SAFETY: see `parts`.
    let (m, _) = unsafe { parts(ctx) };
    u64::from(!m.interrupt.load(std::sync::atomic::Ordering::Relaxed))
}

/// # Safety
/// Called by compiled code with its context.
pub unsafe extern "C" fn sx_call_poll(ctx: *mut JitCtx) -> u64 {
    // SAFETY: see `parts`.
    let (m, _) = unsafe { parts(ctx) };
    u64::from(!m.interrupt.load(std::sync::atomic::Ordering::Relaxed) && !m.rt.heap.wants_collection())
}

/// # Safety
/// Called by compiled code with its context and the address of one of its
/// inline caches (in its metadata, alive as long as the code).
pub unsafe extern "C" fn sx_ic_relink(ctx: *mut JitCtx, ic: u64, f: u64) -> u64 {
    // SAFETY: see `parts`; `ic` is guaranteed by the caller.
    let (m, ic) = unsafe { (parts(ctx).0, &*(ic as *const sx_ir::IcCell)) };
    // A current epoch means the artifact behind `entry` is alive, and with it
    // the code at `ic.code` (its metadata holds it): an equal address is the
    // same code.
    if ic.code.get() == 0 || ic.epoch.get() != crate::epoch() {
        return 0;
    }
    match m.rt.heap.get(Value(f)) {
        Some(Obj::Lambda(clo)) if std::rc::Rc::as_ptr(&clo.code) as *const () as usize as u64 == ic.code.get() => {
            ic.closure.set(f);
            ic.env.set(clo.env.0);
            1
        }
        _ => 0,
    }
}
