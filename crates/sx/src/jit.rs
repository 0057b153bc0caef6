//! The SX-level JIT API of section 8 (`jit-stats`, `jit-reset!`, ...),
//! backed by the tiering cache of `sx-jit-cache`.
//!
//! With backend `none` nothing is ever compiled, but every form works and
//! reports truthfully (compiled 0); with a code generator the same cache is
//! the one the tier (`sx_jit::JitTier`) compiles into.

use crate::{Engine, Value};
use std::cell::RefCell;
use std::rc::Rc;
use sx_core::error::{type_error, Error};
use sx_core::heap::{DictMap, Obj};
use sx_core::Rt;
use sx_jit::{Artifact, Cache, JitTier};
use sx_cek::code::TierSignals;
use sx_jit_cache::{CodeKey, JitStats, SavedJit};

/// The engine's JIT state: the cache (shared with the tier), the tier, and
/// the `with-fresh-jit` stack.
pub struct JitState {
    pub cache: Rc<RefCell<Cache>>,
    pub tier: Option<Rc<JitTier>>,
    /// Shared with the machine: policy changes end the interpreter's quiet
    /// windows; calls skipped in them are flushed into the cache's counts.
    pub signals: Rc<TierSignals>,
    /// `with-fresh-jit` scopes: the cache contents and the settings to restore.
    fresh: Vec<(SavedJit<Artifact>, Settings)>,
}

/// The settings `with-fresh-jit` restores on exit.
struct Settings {
    threshold: u32,
    budget: usize,
    exclusions: Vec<String>,
}

pub type SharedJit = Rc<RefCell<JitState>>;

pub(crate) fn new_state(backend: &str, signals: Rc<TierSignals>) -> SharedJit {
    Rc::new(RefCell::new(JitState { cache: Rc::new(RefCell::new(Cache::new(backend))), tier: None, signals, fresh: Vec::new() }))
}

impl JitState {
    /// Bring the cache's counts up to date with the calls the interpreter
    /// entered in quiet windows.
    pub fn flush(&self) {
        let n = self.signals.skipped_below.replace(0);
        if n > 0 {
            self.cache.borrow_mut().note_below_threshold(n);
        }
    }

    /// The cache's statistics, up to date.
    pub fn stats(&self) -> JitStats {
        self.flush();
        self.cache.borrow().stats()
    }

    /// Set the compile threshold.
    pub fn set_threshold(&self, n: u32) {
        self.cache.borrow_mut().set_threshold(n);
        self.signals.policy_changed();
    }
}

/// `jit-report`: the cache's summary, then what the tier did.
pub(crate) fn report(st: &JitState) -> String {
    st.flush();
    let mut r = st.cache.borrow().report();
    if let Some(t) = &st.tier {
        let c = t.counters_with(&st.signals);
        let pct = if c.lambda_calls == 0 { 0.0 } else { 100.0 * c.compiled_calls as f64 / c.lambda_calls as f64 };
        let mut lat = t.compile_latencies_us();
        lat.sort_unstable();
        let q = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
        if !r.ends_with('\n') {
            r.push('\n');
        }
        r.push_str(&format!(
            "tier {}: {} of {} lambda calls ran compiled code ({pct:.1}%); {} deoptimisations; {} pure versions gave up; {} calls left to the interpreter for stack room; compile latency median {} us, p99 {} us\n",
            t.backend_name(),
            c.compiled_calls,
            c.lambda_calls,
            c.deopts,
            c.pure_bails,
            c.stack_fallbacks,
            q(0.5),
            q(0.99)
        ));
    }
    r
}

fn stats_dict(rt: &mut Rt, s: &JitStats) -> Value {
    // Keys in the order of section 8.
    let mut d = DictMap::default();
    for k in JitStats::KEYS {
        let v = match s.get(k) {
            Some(n) => rt.int(i64::try_from(n).unwrap_or(i64::MAX)),
            None => rt.str(&s.backend),
        };
        d.insert(Rc::from(k), v);
    }
    rt.dict(d)
}

/// The code identity of a lambda value.
fn code_key(rt: &Rt, name: &str, f: Value) -> Result<CodeKey, Error> {
    match rt.heap.get(f) {
        Some(Obj::Lambda(c)) => Ok(CodeKey(c.code.id())),
        _ => Err(type_error(name, "lambda", rt.type_name(f))),
    }
}

fn non_negative(rt: &Rt, name: &str, v: Value) -> Result<u64, Error> {
    let n = rt.expect_int(name, v)?;
    u64::try_from(n).map_err(|_| Error::Msg(format!("{name}: expected a non-negative integer, got {n}")))
}

/// Define `name`: a function of one lambda that asks or tells the cache
/// something about the lambda's code.
fn define_key_op(e: &mut Engine, jit: &SharedJit, name: &'static str, op: fn(&mut Cache, CodeKey) -> bool) {
    let j = jit.clone();
    e.define_fn(name, 1, Some(1), move |rt, a| {
        let k = code_key(rt, name, a[0])?;
        Ok(Value::bool(op(&mut j.borrow().cache.borrow_mut(), k)))
    });
}

/// Install the JIT API on an engine.
pub(crate) fn install(e: &mut Engine, jit: &SharedJit) {
    let j = jit.clone();
    e.define_fn("jit-set-threshold!", 1, Some(1), move |rt, a| {
        let n = non_negative(rt, "jit-set-threshold!", a[0])?;
        j.borrow().set_threshold(u32::try_from(n).unwrap_or(u32::MAX));
        Ok(a[0])
    });
    let j = jit.clone();
    e.define_fn("%jit-threshold", 0, Some(0), move |rt, _a| Ok(rt.int(i64::from(j.borrow().cache.borrow().threshold()))));
    let j = jit.clone();
    e.define_fn("jit-stats", 0, Some(0), move |rt, _a| {
        let s = j.borrow().stats();
        Ok(stats_dict(rt, &s))
    });
    let j = jit.clone();
    e.define_fn("jit-report", 0, Some(0), move |rt, _a| {
        let r = report(&j.borrow());
        Ok(rt.string(r))
    });
    let j = jit.clone();
    e.define_fn("jit-reset!", 0, Some(0), move |_rt, _a| {
        let st = j.borrow();
        st.cache.borrow_mut().reset();
        st.signals.skipped_below.set(0);
        st.signals.counters_dropped();
        Ok(Value::NIL)
    });
    let j = jit.clone();
    e.define_fn("jit-reset-counters!", 0, Some(0), move |_rt, _a| {
        let st = j.borrow();
        st.signals.skipped_below.set(0);
        st.cache.borrow_mut().reset_counters();
        Ok(Value::NIL)
    });
    let j = jit.clone();
    e.define_fn("jit-clear-cold!", 0, Some(0), move |rt, _a| {
        let n = j.borrow().cache.borrow_mut().clear_cold();
        Ok(rt.int(n as i64))
    });
    define_key_op(e, jit, "jit-pin!", |c, k| c.pin(k));
    define_key_op(e, jit, "jit-unpin!", |c, k| c.unpin(k));
    define_key_op(e, jit, "jit-compiled?", |c, k| c.is_compiled(k));
    let j = jit.clone();
    e.define_fn("jit-set-budget!", 1, Some(1), move |rt, a| {
        let n = non_negative(rt, "jit-set-budget!", a[0])?;
        let st = j.borrow();
        st.cache.borrow_mut().set_budget(usize::try_from(n).unwrap_or(usize::MAX));
        // Oversized code is forgotten: it may be compiled now.
        st.signals.policy_changed();
        Ok(a[0])
    });
    let j = jit.clone();
    e.define_fn("jit-exclude!", 0, None, move |rt, a| {
        let mut names = Vec::with_capacity(a.len());
        for v in a {
            match rt.key_of(*v) {
                Some(k) => names.push(k.to_string()),
                None => return Err(type_error("jit-exclude!", "string", rt.type_name(*v))),
            }
        }
        let st = j.borrow();
        let n = st.cache.borrow_mut().exclude(names);
        st.signals.policy_changed();
        Ok(rt.int(n as i64))
    });
    let j = jit.clone();
    e.define_fn("%jit-begin-fresh", 0, Some(0), move |_rt, _a| {
        let mut st = j.borrow_mut();
        st.flush();
        let saved;
        let settings;
        {
            let mut c = st.cache.borrow_mut();
            settings = Settings { threshold: c.threshold(), budget: c.budget_bytes(), exclusions: c.exclusions() };
            saved = c.begin_fresh();
        }
        st.fresh.push((saved, settings));
        st.signals.counters_dropped();
        Ok(Value::NIL)
    });
    let j = jit.clone();
    e.define_fn("%jit-end-fresh", 0, Some(0), move |_rt, _a| {
        let mut st = j.borrow_mut();
        // Calls skipped inside the scope belong to the state it drops.
        st.flush();
        st.signals.counters_dropped();
        if let Some((saved, settings)) = st.fresh.pop() {
            let mut c = st.cache.borrow_mut();
            c.end_fresh(saved);
            c.set_threshold(settings.threshold);
            c.set_budget(settings.budget);
            c.clear_exclusions();
            c.exclude(settings.exclusions);
        }
        Ok(Value::NIL)
    });
}

/// The SX half of the API: the scoped forms.
pub(crate) const JIT_PRELUDE: &str = r#"
(defmacro with-jit-threshold (n &rest body)
  (let ((new (gensym "jit-threshold")) (old (gensym "jit-threshold-old")))
    `(let ((,new ,n) (,old nil))
       (dynamic-wind
         (fn () (set! ,old (%jit-threshold)) (jit-set-threshold! ,new))
         (fn () ,@body)
         (fn () (jit-set-threshold! ,old))))))

(defmacro with-fresh-jit (&rest body)
  `(dynamic-wind
     (fn () (%jit-begin-fresh))
     (fn () ,@body)
     (fn () (%jit-end-fresh))))
"#;
