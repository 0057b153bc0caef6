//! The JIT's code cache: when to compile, what to keep, what to drop.
//!
//! This crate is generic: it knows nothing of SX values, lambdas or backends. The host calls
//! [`JitCache::on_call`] each time a lambda is entered, with the identity of the lambda's
//! *code* ([`CodeKey`], not the closure: every closure made from one `(fn ...)` shares the
//! key) and its name if it has one. The answer is a [`CallDecision`]:
//!
//! * [`CallDecision::Run`]: compiled code exists; run it (a *hit*).
//! * [`CallDecision::Compile`]: the key's call counter just reached the threshold. The host
//!   compiles, then reports the outcome with [`JitCache::insert`] (and runs the artifact it gets
//!   back) or [`JitCache::declined`] (and interprets). A declined key is never offered for
//!   compilation again until [`JitCache::reset`] (the negative cache).
//! * [`CallDecision::Interpret`]: interpret this call (below the threshold, threshold 0,
//!   excluded name, declined earlier, or compilation still pending).
//!
//! # Tiering
//! Each key has a call counter. With threshold `n` the `n`-th call answers `Compile` (`1`: the
//! first call; `0`: never, and every call is interpreted, compiled entries included — they stay
//! cached and run again once the threshold is non-zero). Counters live in a bounded LRU
//! ([`JitConfig::counter_capacity`], 8192 by default: a lambda that is not called again while 8192 other lambdas are is not hot, and more live counters only fragment the allocator): under endless fresh code (a REPL, `eval`
//! in a loop, generated lambdas) the counters of keys that never get hot are forgotten, and a
//! forgotten key simply starts counting again. The negative cache and the table of pending
//! compilations are bounded LRUs too, so the cache's memory is bounded whatever the input,
//! except for what the embedder asks for explicitly (pins and exclusion patterns).
//!
//! # The byte budget
//! Compiled entries are kept in least-recently-used order; a hit makes an entry the most
//! recent. Each entry is charged [`Artifact::code_bytes`] + [`Artifact::meta_bytes`] (read once,
//! at insert). After every insert, budget change and unpin, least-recently-used *unpinned*
//! entries are evicted until the total fits the budget. Pinned entries are never evicted, so
//! they alone can push the total over the budget; [`JitStats::code_bytes`] >
//! [`JitStats::budget_bytes`] then shows it, and the report says so. An unpinned artifact that
//! cannot fit even after evicting every other unpinned entry is not kept at all (it would flush
//! the whole cache): the caller still runs it once, it counts as an eviction, and its key is
//! put in the negative cache (as *oversized*) so that it is not recompiled over and over; a
//! budget change or an unpin forgets oversized keys, since they may fit now.
//!
//! # Lifetimes: running code is safe
//! Artifacts are handed out as `Rc<A>`. Eviction, [`JitCache::reset`], [`JitCache::remove`] and
//! exclusion only drop the *cache's* reference: code that is running holds its own `Rc` and
//! finishes safely; the artifact is freed when the last holder lets go.
//!
//! Keys must be unique for the lifetime of the cache: a key must never be reused for different
//! code (if keys are derived from addresses that can be recycled, call [`JitCache::remove`] when
//! the code dies).
//!
//! # Events
//! `tracing` events under the target `sx_jit_cache`: `debug` for a compile request, an insert,
//! a decline, an eviction; `trace` for a hit; `info` for a reset, a `clear_cold` and an artifact
//! too big for the budget.

mod clock;
mod exclude;
mod stats;

#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use exclude::Exclusions;
pub use stats::JitStats;

use std::fmt;
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::rc::Rc;

/// Code keys are small sequential integers: a multiplicative hash spreads
/// them well and costs one multiplication (the cache is consulted on every
/// call of compiled code made through the runtime).
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Build = std::hash::BuildHasherDefault<KeyHasher>;
type HashMap<K, V> = hashbrown::HashMap<K, V, Build>;
type HashSet<K> = hashbrown::HashSet<K, Build>;
type LruCache<K, V> = lru::LruCache<K, V, Build>;

fn lru_bounded<K: std::hash::Hash + Eq, V>(cap: std::num::NonZeroUsize) -> LruCache<K, V> {
    LruCache::with_hasher(cap, Build::default())
}

fn lru_unbounded<K: std::hash::Hash + Eq, V>() -> LruCache<K, V> {
    LruCache::unbounded_with_hasher(Build::default())
}
use stats::human_bytes;

/// What a backend produced for one lambda's code: the cache needs only its size.
pub trait Artifact {
    /// Bytes of executable code memory the artifact holds.
    fn code_bytes(&self) -> usize;
    /// Bytes of metadata (deoptimisation maps, relocations, constants…).
    fn meta_bytes(&self) -> usize;
}

/// The identity of a lambda's *code* (its source node), not of a closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeKey(pub u64);

impl fmt::Display for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:x}", self.0)
    }
}

/// The answer to [`JitCache::on_call`].
#[derive(Debug)]
pub enum CallDecision<A> {
    /// Compiled code exists: run it. The `Rc` keeps it alive while it runs.
    Run(Rc<A>),
    /// Compile now, then report with [`JitCache::insert`] or [`JitCache::declined`].
    Compile,
    /// Interpret this call.
    Interpret,
}

impl<A> Clone for CallDecision<A> {
    fn clone(&self) -> Self {
        match self {
            CallDecision::Run(a) => CallDecision::Run(Rc::clone(a)),
            CallDecision::Compile => CallDecision::Compile,
            CallDecision::Interpret => CallDecision::Interpret,
        }
    }
}

impl<A> PartialEq for CallDecision<A> {
    /// `Run`s are equal when they hold the same artifact (pointer equality).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CallDecision::Run(a), CallDecision::Run(b)) => Rc::ptr_eq(a, b),
            (CallDecision::Compile, CallDecision::Compile) => true,
            (CallDecision::Interpret, CallDecision::Interpret) => true,
            _ => false,
        }
    }
}

impl<A> CallDecision<A> {
    /// `Run`?
    pub fn is_run(&self) -> bool {
        matches!(self, CallDecision::Run(_))
    }
    /// `Compile`?
    pub fn is_compile(&self) -> bool {
        matches!(self, CallDecision::Compile)
    }
    /// `Interpret`?
    pub fn is_interpret(&self) -> bool {
        matches!(self, CallDecision::Interpret)
    }
}

/// Default threshold: compile on the 4th call (as in the language reference).
pub const DEFAULT_THRESHOLD: u32 = 4;
/// Default byte budget: 64 MiB of code and metadata.
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;
/// Default number of call counters kept for keys below the threshold.
pub const DEFAULT_COUNTER_CAPACITY: usize = 1 << 13;
/// Default number of keys remembered in the negative cache.
pub const DEFAULT_NEGATIVE_CAPACITY: usize = 1 << 13;
/// Default number of compile requests awaiting `insert`/`declined`.
pub const DEFAULT_PENDING_CAPACITY: usize = 1 << 10;

/// Settings of a new cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitConfig {
    /// See [`JitCache::set_threshold`].
    pub threshold: u32,
    /// See [`JitCache::set_budget`].
    pub budget_bytes: usize,
    /// How many call counters of not-yet-compiled keys are kept (at least 1).
    pub counter_capacity: usize,
    /// How many declined/oversized keys are remembered (at least 1); a key that falls out may
    /// be offered for compilation again.
    pub negative_capacity: usize,
    /// How many `Compile` answers may await their `insert`/`declined` (at least 1); a request
    /// that falls out is forgotten and its key starts counting again.
    pub pending_capacity: usize,
}

impl Default for JitConfig {
    fn default() -> Self {
        JitConfig {
            threshold: DEFAULT_THRESHOLD,
            budget_bytes: DEFAULT_BUDGET_BYTES,
            counter_capacity: DEFAULT_COUNTER_CAPACITY,
            negative_capacity: DEFAULT_NEGATIVE_CAPACITY,
            pending_capacity: DEFAULT_PENDING_CAPACITY,
        }
    }
}

/// One compiled entry, as shown by [`JitCache::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The code's key.
    pub key: CodeKey,
    /// The lambda's name, if it had one when compilation was requested.
    pub name: Option<String>,
    /// Code bytes charged.
    pub code_bytes: usize,
    /// Metadata bytes charged.
    pub meta_bytes: usize,
    /// Hits since the entry was compiled (or since `reset_counters`).
    pub hits: u64,
    /// Pinned?
    pub pinned: bool,
    /// Clock tick of the insert.
    pub compiled_at: u64,
    /// Used (hit or inserted) since the last `clear_cold`? If not, the next `clear_cold`
    /// evicts it (unless pinned).
    pub warm: bool,
}

struct Entry<A> {
    artifact: Rc<A>,
    name: Option<Rc<str>>,
    code: usize,
    meta: usize,
    hits: u64,
    /// The `clear_cold` generation of the last use.
    used_gen: u64,
    compiled_at: u64,
}

impl<A> Entry<A> {
    fn bytes(&self) -> usize {
        self.code.saturating_add(self.meta)
    }
}

enum Negative {
    /// The backend declined the code.
    Declined { reason: Box<str> },
    /// The artifact was larger than the room the budget leaves.
    Oversized,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    compiled: u64,
    compile_failed: u64,
    below_threshold: u64,
    hits: u64,
    evictions: u64,
}

/// Everything [`JitCache::begin_fresh`] set aside, for [`JitCache::end_fresh`].
pub struct SavedJit<A> {
    lru: LruCache<CodeKey, Entry<A>>,
    pinned: HashMap<CodeKey, Entry<A>>,
    counters: LruCache<CodeKey, u32>,
    negative: LruCache<CodeKey, Negative>,
    pending: LruCache<CodeKey, Option<Rc<str>>>,
    counts: Counts,
}

impl<A> fmt::Debug for SavedJit<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedJit")
            .field("entries", &(self.lru.len() + self.pinned.len()))
            .field("counters", &self.counters.len())
            .finish_non_exhaustive()
    }
}

/// The cache. See the crate documentation.
pub struct JitCache<A, C: Clock = SystemClock> {
    backend: String,
    clock: C,
    threshold: u32,
    budget: usize,
    exclusions: Exclusions,
    /// Keys the embedder pinned, compiled or not.
    pins: HashSet<CodeKey>,
    /// Unpinned compiled entries, most recently used first (unbounded: the budget is in bytes).
    lru: LruCache<CodeKey, Entry<A>>,
    /// Pinned compiled entries: outside the LRU, never evicted.
    pinned: HashMap<CodeKey, Entry<A>>,
    /// Call counters of keys not compiled yet (bounded).
    counters: LruCache<CodeKey, u32>,
    /// Declined and oversized keys (bounded).
    negative: LruCache<CodeKey, Negative>,
    /// Keys answered `Compile` and not yet reported, with their names (bounded).
    pending: LruCache<CodeKey, Option<Rc<str>>>,
    code_bytes: usize,
    meta_bytes: usize,
    pinned_bytes: usize,
    counts: Counts,
    /// Bumped by every `clear_cold`.
    generation: u64,
    last_clear_at: Option<u64>,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

impl<A: Artifact> JitCache<A, SystemClock> {
    /// A cache with default settings and the system clock.
    pub fn new(backend: impl Into<String>) -> Self {
        Self::with_clock(backend, SystemClock::new(), JitConfig::default())
    }
}

impl<A: Artifact, C: Clock> JitCache<A, C> {
    /// A cache with the given clock and settings.
    pub fn with_clock(backend: impl Into<String>, clock: C, config: JitConfig) -> Self {
        JitCache {
            backend: backend.into(),
            clock,
            threshold: config.threshold,
            budget: config.budget_bytes,
            exclusions: Exclusions::new(),
            pins: HashSet::default(),
            lru: lru_unbounded(),
            pinned: HashMap::default(),
            counters: lru_bounded(cap(config.counter_capacity)),
            negative: lru_bounded(cap(config.negative_capacity)),
            pending: lru_bounded(cap(config.pending_capacity)),
            code_bytes: 0,
            meta_bytes: 0,
            pinned_bytes: 0,
            counts: Counts::default(),
            generation: 0,
            last_clear_at: None,
        }
    }

    // ----------------------------------------------------------------------------------------
    // The call path

    /// A lambda whose code is `key` is being called. See [`CallDecision`].
    #[inline]
    pub fn on_call(&mut self, key: CodeKey, name: Option<&str>) -> CallDecision<A> {
        self.on_call_after(key, name, 0)
    }

    /// [`JitCache::on_call`] after `unseen` earlier calls of `key` that were not reported
    /// (the caller skipped asking, as [`JitCache::quiet_calls`] allowed, and counted them in
    /// `below_threshold` itself): they count towards the threshold.
    #[inline]
    pub fn on_call_after(&mut self, key: CodeKey, name: Option<&str>, unseen: u32) -> CallDecision<A> {
        if self.threshold == 0 {
            self.counts.below_threshold += 1;
            return CallDecision::Interpret;
        }
        match self.hit(key) {
            Some(a) => CallDecision::Run(a),
            None => self.miss(key, name, unseen),
        }
    }

    /// After an `Interpret` answer for `key`: for how many further calls the answer stays
    /// `Interpret` whatever happens but the counting of those calls, and whether they would
    /// count as `below_threshold` calls. A caller may skip asking for that many calls (until
    /// the policy changes: threshold, exclusions, reset, a fresh scope) and report them with
    /// [`JitCache::on_call_after`]. `(u32::MAX, false)`: declined or excluded for good.
    pub fn quiet_calls(&self, key: CodeKey, name: Option<&str>) -> (u32, bool) {
        if self.threshold == 0 {
            return (u32::MAX, true);
        }
        if self.lru.contains(&key) || self.pinned.contains_key(&key) || self.pending.contains(&key) {
            return (0, false);
        }
        if self.negative.contains(&key) || name.is_some_and(|n| !self.exclusions.is_empty() && self.exclusions.matches(n)) {
            return (u32::MAX, false);
        }
        let count = self.counters.peek(&key).copied().unwrap_or(0);
        (self.threshold.saturating_sub(count.saturating_add(1)), true)
    }

    /// The compiled entry of `key`, counted as a hit (LRU order, hit counts);
    /// `None` when `key` is not compiled.
    #[inline]
    fn hit(&mut self, key: CodeKey) -> Option<Rc<A>> {
        let entry = match self.lru.get_mut(&key) {
            Some(e) => e,
            None if self.pinned.is_empty() => return None,
            None => self.pinned.get_mut(&key)?,
        };
        entry.hits += 1;
        entry.used_gen = self.generation;
        self.counts.hits += 1;
        tracing::trace!(%key, "jit hit");
        Some(Rc::clone(&entry.artifact))
    }

    fn miss(&mut self, key: CodeKey, name: Option<&str>, unseen: u32) -> CallDecision<A> {
        if self.negative.get(&key).is_some() {
            return CallDecision::Interpret;
        }
        if let Some(name) = name {
            if !self.exclusions.is_empty() && self.exclusions.matches(name) {
                return CallDecision::Interpret;
            }
        }
        if self.pending.contains(&key) {
            self.counts.below_threshold += 1;
            return CallDecision::Interpret;
        }
        let calls = unseen.saturating_add(1);
        let count = match self.counters.get_mut(&key) {
            Some(c) => {
                *c = c.saturating_add(calls);
                *c
            }
            None => {
                if self.threshold > calls {
                    self.counters.push(key, calls);
                }
                calls
            }
        };
        if count >= self.threshold {
            self.counters.pop(&key);
            self.pending.push(key, name.map(Rc::from));
            tracing::debug!(%key, name, calls = count, threshold = self.threshold, "jit compile requested");
            CallDecision::Compile
        } else {
            self.counts.below_threshold += 1;
            CallDecision::Interpret
        }
    }

    /// The backend compiled `key`: keep the artifact (budget permitting) and get it back to run.
    ///
    /// Usually follows a `Compile` answer, whose name the entry takes; an insert without one is
    /// allowed (eager compilation) and replaces any entry the key had. Counts in `compiled`.
    /// An artifact whose name was excluded after its compilation was requested is returned but
    /// not kept.
    pub fn insert(&mut self, key: CodeKey, artifact: A) -> Rc<A> {
        self.insert_rc(key, Rc::new(artifact))
    }

    /// [`JitCache::insert`] for an artifact already in an `Rc`.
    pub fn insert_rc(&mut self, key: CodeKey, artifact: Rc<A>) -> Rc<A> {
        let requested = self.pending.pop(&key);
        self.counters.pop(&key);
        self.negative.pop(&key);
        let old = self.take_entry(&key);
        let name = match requested {
            Some(name) => name,
            None => old.and_then(|e| e.name),
        };
        self.counts.compiled += 1;
        let code = artifact.code_bytes();
        let meta = artifact.meta_bytes();
        let bytes = code.saturating_add(meta);
        if let Some(n) = name.as_deref() {
            if self.exclusions.matches(n) {
                // Requested before `exclude` named it: run once, keep nothing.
                tracing::debug!(%key, name = n, "jit compiled an excluded name: not kept");
                return artifact;
            }
        }
        let pinned = self.pins.contains(&key);
        if !pinned && bytes > self.budget.saturating_sub(self.pinned_bytes) {
            self.counts.evictions += 1;
            self.negative.push(key, Negative::Oversized);
            tracing::info!(
                %key,
                name = name.as_deref(),
                bytes,
                budget = self.budget,
                pinned_bytes = self.pinned_bytes,
                "jit artifact too big for the budget: not kept"
            );
            return artifact;
        }
        let entry = Entry {
            artifact: Rc::clone(&artifact),
            name,
            code,
            meta,
            hits: 0,
            used_gen: self.generation,
            compiled_at: self.clock.now(),
        };
        tracing::debug!(%key, name = entry.name.as_deref(), code, meta, pinned, "jit compiled");
        self.code_bytes += code;
        self.meta_bytes += meta;
        if pinned {
            self.pinned_bytes += bytes;
            self.pinned.insert(key, entry);
        } else {
            self.lru.push(key, entry);
        }
        self.enforce_budget();
        artifact
    }

    /// The backend declined to compile `key` (unsupported form…): interpret it from now on,
    /// without asking again until [`JitCache::reset`]. Counts in `compile_failed`.
    pub fn declined(&mut self, key: CodeKey, reason: &str) {
        let name = self.pending.pop(&key).flatten();
        self.counters.pop(&key);
        self.counts.compile_failed += 1;
        tracing::debug!(%key, name = name.as_deref(), reason, "jit compile declined");
        self.negative.push(
            key,
            Negative::Declined {
                reason: reason.into(),
            },
        );
    }

    /// Count `n` calls answered `Interpret` below the threshold without asking (see
    /// [`JitCache::quiet_calls`]).
    pub fn note_below_threshold(&mut self, n: u64) {
        self.counts.below_threshold += n;
    }

    // ----------------------------------------------------------------------------------------
    // Policy

    /// Compile a lambda's code on its `n`-th call (`1`: first call; `0`: never, and interpret
    /// every call). Counters already running keep their counts: a key whose count has reached
    /// a lowered threshold is compiled on its next call.
    pub fn set_threshold(&mut self, n: u32) {
        self.threshold = n;
    }

    /// The threshold.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Set the byte budget for code and metadata; shrinking it evicts at once. Oversized keys
    /// are forgotten (they may fit now).
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
        self.forget_oversized();
        self.enforce_budget();
    }

    /// The byte budget.
    pub fn budget_bytes(&self) -> usize {
        self.budget
    }

    /// Keep `key`'s compiled code out of eviction. A key not compiled yet is pinned when it gets
    /// compiled (it is not compiled any sooner). Returns whether a compiled entry is pinned now.
    pub fn pin(&mut self, key: CodeKey) -> bool {
        self.pins.insert(key);
        if let Some(Negative::Oversized) = self.negative.peek(&key) {
            self.negative.pop(&key);
        }
        if let Some(entry) = self.lru.pop(&key) {
            self.pinned_bytes += entry.bytes();
            self.pinned.insert(key, entry);
        }
        self.pinned.contains_key(&key)
    }

    /// Make `key` evictable again: its entry becomes the most recently used one, and the budget
    /// is enforced at once (which may evict other entries). Returns whether it was pinned.
    pub fn unpin(&mut self, key: CodeKey) -> bool {
        let was = self.pins.remove(&key);
        if let Some(mut entry) = self.pinned.remove(&key) {
            self.pinned_bytes -= entry.bytes();
            entry.used_gen = self.generation;
            self.lru.push(key, entry);
            self.forget_oversized();
            self.enforce_budget();
        }
        was
    }

    /// Is `key` pinned (compiled or not)?
    pub fn is_pinned(&self, key: CodeKey) -> bool {
        self.pins.contains(&key)
    }

    /// Keep lambdas whose names match `patterns` interpreted: exact names and `prefix-*` globs
    /// (see [`Exclusions`]); patterns accumulate. Compiled entries whose names match are dropped
    /// at once (pinned ones too: exclusion wins over pinning); that is not counted as an
    /// eviction. Calls of an excluded name keep no counter and are not counted in
    /// `below_threshold`. Returns the number of entries dropped.
    pub fn exclude<I, S>(&mut self, patterns: I) -> usize
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for p in patterns {
            self.exclusions.add(p.as_ref());
        }
        let matches =
            |e: &Entry<A>, ex: &Exclusions| e.name.as_deref().is_some_and(|n| ex.matches(n));
        let mut doomed: Vec<CodeKey> = self
            .lru
            .iter()
            .filter(|(_, e)| matches(e, &self.exclusions))
            .map(|(k, _)| *k)
            .collect();
        doomed.extend(
            self.pinned
                .iter()
                .filter(|(_, e)| matches(e, &self.exclusions))
                .map(|(k, _)| *k),
        );
        for key in &doomed {
            if let Some(entry) = self.take_entry(key) {
                tracing::debug!(%key, name = entry.name.as_deref(), "jit entry dropped: name excluded");
            }
        }
        doomed.len()
    }

    /// Remove every exclusion pattern.
    pub fn clear_exclusions(&mut self) {
        self.exclusions.clear();
    }

    /// Is `name` excluded?
    pub fn is_excluded(&self, name: &str) -> bool {
        self.exclusions.matches(name)
    }

    /// The exclusion patterns, sorted.
    pub fn exclusions(&self) -> Vec<String> {
        self.exclusions.patterns()
    }

    /// The backend's name, as reported in the stats.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Rename the backend (the façade may switch backends at run time).
    pub fn set_backend(&mut self, name: impl Into<String>) {
        self.backend = name.into();
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    // ----------------------------------------------------------------------------------------
    // Reset

    /// `jit-reset!`: drop every compiled entry (pinned ones too), every call counter, the
    /// negative cache, pending compile requests and the statistics. Settings survive: the
    /// threshold, the budget, the exclusions, the backend's name, and the set of pinned keys
    /// (a pinned lambda is pinned again when it is recompiled; `unpin` to forget a pin).
    /// Running code holds its own `Rc` and finishes safely.
    pub fn reset(&mut self) {
        let entries = self.lru.len() + self.pinned.len();
        let bytes = self.resident_bytes();
        self.lru.clear();
        self.pinned.clear();
        self.counters.clear();
        self.negative.clear();
        self.pending.clear();
        self.code_bytes = 0;
        self.meta_bytes = 0;
        self.pinned_bytes = 0;
        self.counts = Counts::default();
        tracing::info!(entries, bytes, backend = %self.backend, "jit cache reset");
    }

    /// `jit-reset-counters!`: zero the statistics only (the event counts of [`JitStats`] and the
    /// per-entry hit counts); entries, call counters and the negative cache stay.
    pub fn reset_counters(&mut self) {
        self.counts = Counts::default();
        for (_, e) in self.lru.iter_mut() {
            e.hits = 0;
        }
        for e in self.pinned.values_mut() {
            e.hits = 0;
        }
    }

    /// `jit-clear-cold!`: evict the unpinned entries not used (hit or inserted) since the
    /// previous `clear_cold` (or, the first time, since the cache was made). Uses a generation
    /// number bumped by each call, so it is exact whatever the clock's resolution; the clock
    /// records when the clear happened ([`JitCache::last_clear_cold_at`]). Returns the number
    /// of entries evicted (counted in `evictions`).
    pub fn clear_cold(&mut self) -> usize {
        let generation = self.generation;
        let cold: Vec<CodeKey> = self
            .lru
            .iter()
            .filter(|(_, e)| e.used_gen < generation)
            .map(|(k, _)| *k)
            .collect();
        for key in &cold {
            if let Some(entry) = self.take_entry(key) {
                self.counts.evictions += 1;
                tracing::debug!(%key, name = entry.name.as_deref(), bytes = entry.bytes(), "jit evict (cold)");
            }
        }
        self.generation += 1;
        let now = self.clock.now();
        self.last_clear_at = Some(now);
        tracing::info!(evicted = cold.len(), tick = now, "jit clear-cold");
        cold.len()
    }

    /// Clock tick of the last `clear_cold`, if any.
    pub fn last_clear_cold_at(&self) -> Option<u64> {
        self.last_clear_at
    }

    /// Forget everything about `key`: its entry, counter, negative-cache record, pending request
    /// and pin (for code that died). Returns the cache's reference to the artifact, if any.
    pub fn remove(&mut self, key: CodeKey) -> Option<Rc<A>> {
        self.counters.pop(&key);
        self.negative.pop(&key);
        self.pending.pop(&key);
        self.pins.remove(&key);
        self.take_entry(&key).map(|e| e.artifact)
    }

    /// Put a saved entry back, pinned or in the LRU, counting its bytes.
    fn readmit(&mut self, key: CodeKey, entry: Entry<A>) {
        self.code_bytes += entry.code;
        self.meta_bytes += entry.meta;
        if self.pins.contains(&key) {
            self.pinned_bytes += entry.bytes();
            self.pinned.insert(key, entry);
        } else {
            self.lru.push(key, entry);
        }
    }

    /// `with-fresh-jit`, part 1: set the whole state aside (entries, counters, negative cache,
    /// pending requests, statistics) and continue with an empty cache under the same settings.
    pub fn begin_fresh(&mut self) -> SavedJit<A> {
        let (counter_cap, negative_cap, pending_cap) =
            (self.counters.cap(), self.negative.cap(), self.pending.cap());
        let saved = SavedJit {
            lru: std::mem::replace(&mut self.lru, lru_unbounded()),
            pinned: std::mem::take(&mut self.pinned),
            counters: std::mem::replace(&mut self.counters, lru_bounded(counter_cap)),
            negative: std::mem::replace(&mut self.negative, lru_bounded(negative_cap)),
            pending: std::mem::replace(&mut self.pending, lru_bounded(pending_cap)),
            counts: std::mem::take(&mut self.counts),
        };
        self.code_bytes = 0;
        self.meta_bytes = 0;
        self.pinned_bytes = 0;
        tracing::info!(
            entries = saved.lru.len() + saved.pinned.len(),
            "jit fresh scope begins"
        );
        saved
    }

    /// `with-fresh-jit`, part 2: drop the fresh state and bring back what `begin_fresh` set
    /// aside (statistics included). Settings changed in between stay in force: pins are
    /// re-applied and the budget is enforced.
    pub fn end_fresh(&mut self, saved: SavedJit<A>) {
        let fresh_entries = self.lru.len() + self.pinned.len();
        let SavedJit {
            mut lru,
            pinned,
            counters,
            negative,
            pending,
            counts,
        } = saved;
        self.counters = counters;
        self.negative = negative;
        self.pending = pending;
        self.counts = counts;
        self.lru = lru_unbounded();
        self.pinned = HashMap::default();
        self.code_bytes = 0;
        self.meta_bytes = 0;
        self.pinned_bytes = 0;
        for (key, entry) in pinned {
            self.readmit(key, entry);
        }
        // Least recently used first, so that the restored LRU keeps its order.
        while let Some((key, entry)) = lru.pop_lru() {
            self.readmit(key, entry);
        }
        self.enforce_budget();
        tracing::info!(fresh_entries, entries = self.len(), "jit fresh scope ends");
    }

    // ----------------------------------------------------------------------------------------
    // Looking in

    /// The compiled artifact of `key`, without counting a hit or touching the LRU order.
    pub fn get(&self, key: CodeKey) -> Option<Rc<A>> {
        self.lru
            .peek(&key)
            .or_else(|| self.pinned.get(&key))
            .map(|e| Rc::clone(&e.artifact))
    }

    /// A call of `key` when it is compiled: counted as a hit (as `on_call`
    /// would) and returned; `None` (nothing counted) when it is not.
    pub fn call_compiled(&mut self, key: CodeKey) -> Option<Rc<A>> {
        if self.threshold == 0 {
            return None;
        }
        self.hit(key)
    }

    /// Is `key` compiled (in the cache)?
    pub fn is_compiled(&self, key: CodeKey) -> bool {
        self.lru.contains(&key) || self.pinned.contains_key(&key)
    }

    /// Was `key` declined (and not forgotten since)?
    pub fn is_declined(&self, key: CodeKey) -> bool {
        matches!(self.negative.peek(&key), Some(Negative::Declined { .. }))
    }

    /// Why `key` was declined, if it was.
    pub fn decline_reason(&self, key: CodeKey) -> Option<&str> {
        match self.negative.peek(&key) {
            Some(Negative::Declined { reason }) => Some(reason),
            _ => None,
        }
    }

    /// The call count of a key not compiled yet (0 if it has no counter).
    pub fn call_count(&self, key: CodeKey) -> u32 {
        self.counters.peek(&key).copied().unwrap_or(0)
    }

    /// Number of compiled entries.
    pub fn len(&self) -> usize {
        self.lru.len() + self.pinned.len()
    }

    /// No compiled entry?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of call counters kept (bounded by [`JitConfig::counter_capacity`]).
    pub fn counters_len(&self) -> usize {
        self.counters.len()
    }

    /// Number of keys in the negative cache (bounded by [`JitConfig::negative_capacity`]).
    pub fn negative_len(&self) -> usize {
        self.negative.len()
    }

    /// Number of compile requests awaiting `insert`/`declined` (bounded by
    /// [`JitConfig::pending_capacity`]).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes charged against the budget (code + metadata of every entry).
    pub fn resident_bytes(&self) -> usize {
        self.code_bytes.saturating_add(self.meta_bytes)
    }

    /// Code bytes of every entry.
    pub fn resident_code_bytes(&self) -> usize {
        self.code_bytes
    }

    /// Metadata bytes of every entry.
    pub fn resident_meta_bytes(&self) -> usize {
        self.meta_bytes
    }

    /// The compiled entries: unpinned ones from most to least recently used, then pinned ones
    /// (by key).
    pub fn entries(&self) -> Vec<EntryInfo> {
        let info = |key: CodeKey, e: &Entry<A>, pinned: bool| EntryInfo {
            key,
            name: e.name.as_deref().map(str::to_string),
            code_bytes: e.code,
            meta_bytes: e.meta,
            hits: e.hits,
            pinned,
            compiled_at: e.compiled_at,
            warm: e.used_gen >= self.generation,
        };
        let mut out: Vec<EntryInfo> = self.lru.iter().map(|(k, e)| info(*k, e, false)).collect();
        let mut pinned: Vec<EntryInfo> =
            self.pinned.iter().map(|(k, e)| info(*k, e, true)).collect();
        pinned.sort_by_key(|e| e.key);
        out.extend(pinned);
        out
    }

    /// `jit-stats`.
    pub fn stats(&self) -> JitStats {
        JitStats {
            threshold: u64::from(self.threshold),
            compiled: self.counts.compiled,
            compile_failed: self.counts.compile_failed,
            below_threshold: self.counts.below_threshold,
            hits: self.counts.hits,
            evictions: self.counts.evictions,
            pinned: self.pinned.len() as u64,
            entries: self.len() as u64,
            code_bytes: self.resident_bytes() as u64,
            budget_bytes: self.budget as u64,
            backend: self.backend.clone(),
        }
    }

    /// `jit-report`: the stats as a few lines for people.
    pub fn report(&self) -> String {
        let s = self.stats();
        let mut out = String::new();
        let _ = writeln!(out, "JIT cache (backend: {})", s.backend);
        let threshold = match s.threshold {
            0 => "0 (never compile)".to_string(),
            1 => "1 (compile on the first call)".to_string(),
            n => format!("{n} (compile on call {n})"),
        };
        let _ = writeln!(out, "  threshold:  {threshold}");
        let pct = if s.budget_bytes == 0 {
            String::new()
        } else {
            format!(
                ", {:.1}%",
                s.code_bytes as f64 * 100.0 / s.budget_bytes as f64
            )
        };
        let _ = writeln!(
            out,
            "  entries:    {} ({} pinned), {} of {} budget{pct} (code {}, metadata {})",
            s.entries,
            s.pinned,
            human_bytes(s.code_bytes),
            human_bytes(s.budget_bytes),
            human_bytes(self.code_bytes as u64),
            human_bytes(self.meta_bytes as u64),
        );
        if s.over_budget() {
            let _ = writeln!(
                out,
                "  over budget by {}: pinned entries are never evicted",
                human_bytes(s.code_bytes - s.budget_bytes)
            );
        }
        let _ = writeln!(
            out,
            "  calls:      {} hits (compiled), {} below threshold (interpreted)",
            s.hits, s.below_threshold
        );
        let _ = writeln!(
            out,
            "  compiles:   {} compiled, {} compile-failed, {} evictions",
            s.compiled, s.compile_failed, s.evictions
        );
        let exclusions = self.exclusions.patterns();
        if !exclusions.is_empty() {
            let _ = writeln!(out, "  excluded:   {}", exclusions.join(" "));
        }
        let mut hot = self.entries();
        hot.retain(|e| e.hits > 0);
        hot.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.key.cmp(&b.key)));
        if !hot.is_empty() {
            let list: Vec<String> = hot
                .iter()
                .take(5)
                .map(|e| {
                    let name = e
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("<lambda {}>", e.key));
                    format!("{name} ({} hits)", e.hits)
                })
                .collect();
            let _ = writeln!(out, "  hottest:    {}", list.join(", "));
        }
        out
    }

    // ----------------------------------------------------------------------------------------
    // Internals

    /// Removes `key`'s entry wherever it is, with its bytes (not counted as an eviction).
    fn take_entry(&mut self, key: &CodeKey) -> Option<Entry<A>> {
        let entry = match self.lru.pop(key) {
            Some(e) => e,
            None => {
                let e = self.pinned.remove(key)?;
                self.pinned_bytes -= e.bytes();
                e
            }
        };
        self.code_bytes -= entry.code;
        self.meta_bytes -= entry.meta;
        Some(entry)
    }

    /// Evicts least-recently-used unpinned entries until the total fits the budget.
    fn enforce_budget(&mut self) {
        while self.resident_bytes() > self.budget {
            let Some((key, entry)) = self.lru.pop_lru() else {
                break;
            };
            self.code_bytes -= entry.code;
            self.meta_bytes -= entry.meta;
            self.counts.evictions += 1;
            tracing::debug!(%key, name = entry.name.as_deref(), bytes = entry.bytes(), budget = self.budget, "jit evict (budget)");
        }
    }

    fn forget_oversized(&mut self) {
        if self
            .negative
            .iter()
            .any(|(_, n)| matches!(n, Negative::Oversized))
        {
            self.negative
                .retain(|_, n| !matches!(n, Negative::Oversized));
        }
    }

    #[cfg(test)]
    fn check_invariants(&self) {
        let code: usize = self
            .lru
            .iter()
            .map(|(_, e)| e.code)
            .chain(self.pinned.values().map(|e| e.code))
            .sum();
        let meta: usize = self
            .lru
            .iter()
            .map(|(_, e)| e.meta)
            .chain(self.pinned.values().map(|e| e.meta))
            .sum();
        let pinned: usize = self.pinned.values().map(Entry::bytes).sum();
        assert_eq!(code, self.code_bytes, "code bytes");
        assert_eq!(meta, self.meta_bytes, "meta bytes");
        assert_eq!(pinned, self.pinned_bytes, "pinned bytes");
        for key in self.pinned.keys() {
            assert!(self.pins.contains(key), "pinned entry {key} without a pin");
        }
        for (key, _) in self.lru.iter() {
            assert!(!self.pins.contains(key), "pinned key {key} in the LRU");
            assert!(!self.pinned.contains_key(key), "{key} in both maps");
            assert!(!self.counters.contains(key), "{key} compiled and counting");
        }
        if !self.lru.is_empty() {
            assert!(
                self.resident_bytes() <= self.budget,
                "unpinned entries over budget"
            );
        }
        assert!(self.counters.len() <= self.counters.cap().get());
        assert!(self.negative.len() <= self.negative.cap().get());
        assert!(self.pending.len() <= self.pending.cap().get());
    }
}

impl<A, C: Clock> fmt::Debug for JitCache<A, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JitCache")
            .field("backend", &self.backend)
            .field("threshold", &self.threshold)
            .field("budget", &self.budget)
            .field("entries", &(self.lru.len() + self.pinned.len()))
            .field("bytes", &(self.code_bytes + self.meta_bytes))
            .field("counters", &self.counters.len())
            .finish_non_exhaustive()
    }
}
