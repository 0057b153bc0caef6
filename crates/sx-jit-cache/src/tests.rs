//! Unit and property tests, with a fake artifact and a manual clock.

use super::*;
use proptest::prelude::*;

#[derive(Debug, PartialEq, Eq)]
struct Fake {
    id: u64,
    code: usize,
    meta: usize,
}

impl Artifact for Fake {
    fn code_bytes(&self) -> usize {
        self.code
    }
    fn meta_bytes(&self) -> usize {
        self.meta
    }
}

fn fake(id: u64, code: usize, meta: usize) -> Fake {
    Fake { id, code, meta }
}

type Cache = JitCache<Fake, Rc<ManualClock>>;

fn cache(threshold: u32, budget: usize) -> (Cache, Rc<ManualClock>) {
    let clock = Rc::new(ManualClock::new(100));
    let config = JitConfig {
        threshold,
        budget_bytes: budget,
        ..JitConfig::default()
    };
    (
        JitCache::with_clock("fake", Rc::clone(&clock), config),
        clock,
    )
}

fn k(n: u64) -> CodeKey {
    CodeKey(n)
}

/// Calls `key` until the cache asks for compilation, then inserts an artifact of `code` + `meta`
/// bytes. Returns the number of calls it took.
fn compile(c: &mut Cache, key: u64, name: Option<&str>, code: usize, meta: usize) -> u32 {
    for calls in 1..=1000 {
        match c.on_call(k(key), name) {
            CallDecision::Compile => {
                c.insert(k(key), fake(key, code, meta));
                return calls;
            }
            CallDecision::Interpret => {}
            CallDecision::Run(_) => panic!("{key} already compiled"),
        }
    }
    panic!("{key} never asked for compilation")
}

fn keys_mru_first(c: &Cache) -> Vec<u64> {
    c.entries()
        .iter()
        .filter(|e| !e.pinned)
        .map(|e| e.key.0)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tiering

#[test]
fn threshold_zero_never_compiles() {
    let (mut c, _) = cache(0, 1 << 20);
    for _ in 0..100 {
        assert!(c.on_call(k(1), Some("f")).is_interpret());
    }
    assert_eq!(c.counters_len(), 0, "threshold 0 keeps no counters");
    let s = c.stats();
    assert_eq!(
        (s.threshold, s.compiled, s.below_threshold, s.hits),
        (0, 0, 100, 0)
    );
    c.check_invariants();
}

#[test]
fn threshold_zero_interprets_already_compiled_code_until_raised() {
    let (mut c, _) = cache(1, 1 << 20);
    compile(&mut c, 1, None, 10, 0);
    c.set_threshold(0);
    assert!(c.on_call(k(1), None).is_interpret());
    assert!(c.is_compiled(k(1)), "the entry stays cached");
    c.set_threshold(4);
    assert!(c.on_call(k(1), None).is_run());
}

#[test]
fn threshold_one_compiles_on_first_call() {
    let (mut c, _) = cache(1, 1 << 20);
    assert_eq!(c.on_call(k(7), Some("f")), CallDecision::Compile);
    assert_eq!(c.counters_len(), 0, "no counter needed at threshold 1");
    let a = c.insert(k(7), fake(7, 100, 20));
    match c.on_call(k(7), Some("f")) {
        CallDecision::Run(b) => assert!(Rc::ptr_eq(&a, &b)),
        d => panic!("expected Run, got {d:?}"),
    }
    let s = c.stats();
    assert_eq!(
        (s.compiled, s.hits, s.below_threshold, s.entries),
        (1, 1, 0, 1)
    );
}

#[test]
fn threshold_four_compiles_on_fourth_call() {
    let (mut c, _) = cache(4, 1 << 20);
    for i in 1..=3 {
        assert!(c.on_call(k(1), Some("f")).is_interpret(), "call {i}");
        assert_eq!(c.call_count(k(1)), i);
    }
    assert!(c.on_call(k(1), Some("f")).is_compile());
    assert_eq!(
        c.call_count(k(1)),
        0,
        "the counter is dropped once compilation is requested"
    );
    c.insert(k(1), fake(1, 10, 0));
    for _ in 0..5 {
        assert!(c.on_call(k(1), Some("f")).is_run());
    }
    let s = c.stats();
    assert_eq!((s.compiled, s.below_threshold, s.hits), (1, 3, 5));
    assert_eq!(
        c.entries()[0].name.as_deref(),
        Some("f"),
        "the name of the Compile request is kept"
    );
    c.check_invariants();
}

#[test]
fn counters_are_per_key() {
    let (mut c, _) = cache(3, 1 << 20);
    assert!(c.on_call(k(1), None).is_interpret());
    assert!(c.on_call(k(2), None).is_interpret());
    assert!(c.on_call(k(1), None).is_interpret());
    assert!(c.on_call(k(2), None).is_interpret());
    assert!(c.on_call(k(1), None).is_compile());
    assert!(c.on_call(k(2), None).is_compile());
}

#[test]
fn lowering_the_threshold_applies_to_running_counters() {
    let (mut c, _) = cache(10, 1 << 20);
    for _ in 0..5 {
        assert!(c.on_call(k(1), None).is_interpret());
    }
    c.set_threshold(3);
    assert!(c.on_call(k(1), None).is_compile(), "count 6 >= 3");
    assert!(c.on_call(k(2), None).is_interpret());
}

#[test]
fn pending_compile_interprets_and_does_not_ask_twice() {
    let (mut c, _) = cache(1, 1 << 20);
    assert!(c.on_call(k(1), None).is_compile());
    assert!(c.on_call(k(1), None).is_interpret(), "already requested");
    assert_eq!(c.pending_len(), 1);
    c.insert(k(1), fake(1, 1, 1));
    assert_eq!(c.pending_len(), 0);
    assert!(c.on_call(k(1), None).is_run());
    assert_eq!(c.stats().below_threshold, 1);
}

#[test]
fn hits_return_the_same_artifact_and_count() {
    let (mut c, _) = cache(2, 1 << 20);
    compile(&mut c, 5, Some("g"), 64, 16);
    let first = c.get(k(5)).unwrap();
    for _ in 0..10 {
        match c.on_call(k(5), Some("g")) {
            CallDecision::Run(a) => assert!(Rc::ptr_eq(&a, &first)),
            d => panic!("{d:?}"),
        }
    }
    assert_eq!(c.stats().hits, 10);
    assert_eq!(c.entries()[0].hits, 10);
}

#[test]
fn declined_key_is_not_retried_until_reset() {
    let (mut c, _) = cache(2, 1 << 20);
    assert!(c.on_call(k(9), Some("h")).is_interpret());
    assert!(c.on_call(k(9), Some("h")).is_compile());
    c.declined(k(9), "call/cc is not supported");
    assert!(c.is_declined(k(9)));
    assert_eq!(c.decline_reason(k(9)), Some("call/cc is not supported"));
    for _ in 0..100 {
        assert!(c.on_call(k(9), Some("h")).is_interpret());
    }
    let s = c.stats();
    assert_eq!((s.compile_failed, s.compiled, s.below_threshold), (1, 0, 1));
    assert_eq!(c.counters_len(), 0, "declined keys keep no counter");
    c.reset();
    assert!(!c.is_declined(k(9)));
    assert!(c.on_call(k(9), Some("h")).is_interpret());
    assert!(
        c.on_call(k(9), Some("h")).is_compile(),
        "retried after reset"
    );
}

#[test]
fn insert_replaces_an_existing_entry() {
    let (mut c, _) = cache(1, 1 << 20);
    compile(&mut c, 1, Some("f"), 100, 0);
    let old = c.get(k(1)).unwrap();
    let new = c.insert(k(1), fake(2, 30, 3));
    assert!(!Rc::ptr_eq(&old, &new));
    assert_eq!(c.len(), 1);
    assert_eq!(c.resident_bytes(), 33);
    assert_eq!(
        c.entries()[0].name.as_deref(),
        Some("f"),
        "the name survives a replacement"
    );
    assert_eq!(Rc::strong_count(&old), 1, "only our handle is left");
    c.check_invariants();
}

// ---------------------------------------------------------------------------------------------
// LRU and bytes

#[test]
fn lru_evicts_least_recently_used_with_byte_accounting() {
    let (mut c, _) = cache(1, 1000);
    compile(&mut c, 1, None, 300, 0);
    compile(&mut c, 2, None, 200, 100);
    compile(&mut c, 3, None, 250, 50);
    assert_eq!(c.resident_bytes(), 900);
    assert_eq!(
        (c.resident_code_bytes(), c.resident_meta_bytes()),
        (750, 150)
    );
    assert_eq!(keys_mru_first(&c), vec![3, 2, 1]);
    // A hit refreshes 1: 2 is now the least recently used.
    assert!(c.on_call(k(1), None).is_run());
    assert_eq!(keys_mru_first(&c), vec![1, 3, 2]);
    // 200 more bytes: 1100 > 1000, so 2 (300 bytes) goes.
    compile(&mut c, 4, None, 150, 50);
    assert_eq!(keys_mru_first(&c), vec![4, 1, 3]);
    assert_eq!(c.resident_bytes(), 800);
    assert_eq!(c.stats().evictions, 1);
    // 550 more: 1350 > 1000, so 3 (300) then 1 (300) go.
    compile(&mut c, 5, None, 500, 50);
    assert_eq!(keys_mru_first(&c), vec![5, 4]);
    assert_eq!(c.resident_bytes(), 750);
    let s = c.stats();
    assert_eq!(
        (s.evictions, s.entries, s.code_bytes, s.budget_bytes),
        (3, 2, 750, 1000)
    );
    // Evicted keys count again from the start.
    assert!(c.on_call(k(2), None).is_compile());
    c.check_invariants();
}

#[test]
fn exact_fit_is_not_evicted() {
    let (mut c, _) = cache(1, 100);
    compile(&mut c, 1, None, 60, 0);
    compile(&mut c, 2, None, 40, 0);
    assert_eq!(c.len(), 2);
    assert_eq!(c.stats().evictions, 0);
}

#[test]
fn oversized_artifact_runs_once_is_not_kept_and_not_recompiled() {
    let (mut c, _) = cache(1, 100);
    compile(&mut c, 1, None, 50, 0);
    assert!(c.on_call(k(2), None).is_compile());
    let big = c.insert(k(2), fake(2, 150, 0));
    assert_eq!(big.id, 2, "the caller still gets the artifact to run");
    assert!(!c.is_compiled(k(2)));
    assert!(
        c.is_compiled(k(1)),
        "the rest of the cache is not flushed for it"
    );
    assert_eq!(Rc::strong_count(&big), 1, "the cache holds no reference");
    let s = c.stats();
    assert_eq!((s.compiled, s.evictions, s.entries), (2, 1, 1));
    for _ in 0..10 {
        assert!(
            c.on_call(k(2), None).is_interpret(),
            "no recompilation loop"
        );
    }
    c.set_budget(200);
    assert!(
        c.on_call(k(2), None).is_compile(),
        "a bigger budget forgets oversized keys"
    );
    c.insert(k(2), fake(2, 150, 0));
    assert!(c.is_compiled(k(2)));
    c.check_invariants();
}

#[test]
fn budget_shrink_evicts_immediately() {
    let (mut c, _) = cache(1, 1000);
    for key in 1..=5 {
        compile(&mut c, key, None, 100, 0);
    }
    assert!(c.on_call(k(1), None).is_run()); // order now 1,5,4,3,2
    c.set_budget(250);
    assert_eq!(keys_mru_first(&c), vec![1, 5]);
    assert_eq!(c.resident_bytes(), 200);
    assert_eq!(c.stats().evictions, 3);
    assert_eq!(c.stats().budget_bytes, 250);
    c.set_budget(0);
    assert!(c.is_empty());
    assert_eq!(c.stats().evictions, 5);
    c.check_invariants();
}

// ---------------------------------------------------------------------------------------------
// Pins

#[test]
fn pinned_entries_are_never_evicted_even_over_budget() {
    let (mut c, _) = cache(1, 300);
    compile(&mut c, 1, Some("hot"), 200, 0);
    assert!(c.pin(k(1)));
    compile(&mut c, 2, None, 100, 0);
    compile(&mut c, 3, None, 100, 0); // 400 > 300: 2 goes, never 1
    assert!(c.is_compiled(k(1)));
    assert!(!c.is_compiled(k(2)));
    assert_eq!(c.stats().pinned, 1);
    c.set_budget(50);
    assert!(c.is_compiled(k(1)), "budget shrink spares pinned entries");
    assert!(!c.is_compiled(k(3)));
    let s = c.stats();
    assert_eq!(
        (s.entries, s.pinned, s.code_bytes, s.budget_bytes),
        (1, 1, 200, 50)
    );
    assert!(s.over_budget());
    assert!(
        c.report()
            .contains("over budget by 150 B: pinned entries are never evicted"),
        "{}",
        c.report()
    );
    // Hits on pinned entries work.
    assert!(c.on_call(k(1), Some("hot")).is_run());
    // clear_cold spares them too.
    c.clear_cold();
    c.clear_cold();
    assert!(c.is_compiled(k(1)));
    c.check_invariants();
}

#[test]
fn pinning_a_key_before_compilation_pins_it_when_compiled() {
    let (mut c, _) = cache(2, 100);
    assert!(!c.pin(k(1)), "nothing compiled yet");
    assert!(c.is_pinned(k(1)));
    assert!(
        c.on_call(k(1), None).is_interpret(),
        "pinning does not compile sooner"
    );
    compile(&mut c, 1, None, 80, 0);
    assert_eq!(c.stats().pinned, 1);
    compile(&mut c, 2, None, 80, 0);
    assert!(c.is_compiled(k(1)));
    assert!(
        !c.is_compiled(k(2)),
        "80 + 80 > 100 and 1 is pinned: 2 is not kept"
    );
    c.check_invariants();
}

#[test]
fn pinned_artifact_larger_than_budget_is_kept() {
    let (mut c, _) = cache(1, 100);
    c.pin(k(1));
    compile(&mut c, 1, None, 500, 0);
    assert!(c.is_compiled(k(1)));
    assert_eq!(c.stats().code_bytes, 500);
    c.check_invariants();
}

#[test]
fn unpin_makes_an_entry_evictable_and_enforces_the_budget() {
    let (mut c, _) = cache(1, 300);
    compile(&mut c, 1, None, 200, 0);
    c.pin(k(1));
    compile(&mut c, 2, None, 100, 0);
    c.set_budget(250); // 300 > 250: 2 goes
    assert_eq!(c.len(), 1);
    compile(&mut c, 3, None, 40, 0); // 240
    assert!(c.unpin(k(1)));
    assert!(!c.is_pinned(k(1)));
    assert_eq!(c.stats().pinned, 0);
    assert_eq!(
        keys_mru_first(&c),
        vec![1, 3],
        "unpinned entry becomes most recent"
    );
    c.set_budget(200);
    assert_eq!(keys_mru_first(&c), vec![1]);
    c.set_budget(100);
    assert!(c.is_empty(), "no longer protected");
    assert!(!c.unpin(k(1)), "was not pinned");
    c.check_invariants();
}

// ---------------------------------------------------------------------------------------------
// clear_cold and the clock

#[test]
fn clear_cold_evicts_entries_not_used_since_the_previous_clear() {
    let (mut c, clock) = cache(1, 1 << 20);
    compile(&mut c, 1, None, 10, 0);
    assert_eq!(c.entries()[0].compiled_at, 100, "insert reads the clock");
    clock.advance(50);
    compile(&mut c, 2, None, 10, 0);
    assert_eq!(c.get(k(2)).map(|a| a.id), Some(2));
    assert_eq!(
        c.entries()
            .iter()
            .find(|e| e.key == k(2))
            .unwrap()
            .compiled_at,
        150
    );
    assert_eq!(c.last_clear_cold_at(), None);
    // First clear: everything was used since the cache was made.
    clock.advance(50);
    assert_eq!(c.clear_cold(), 0);
    assert_eq!(c.last_clear_cold_at(), Some(200));
    assert!(
        c.entries().iter().all(|e| !e.warm),
        "nothing used since this clear"
    );
    // Use 1 only; compile 3 (an insert is a use).
    clock.advance(10);
    assert!(c.on_call(k(1), None).is_run());
    compile(&mut c, 3, None, 10, 0);
    clock.advance(10);
    assert_eq!(c.clear_cold(), 1, "2 was not used since the last clear");
    assert_eq!(c.last_clear_cold_at(), Some(220));
    assert!(!c.is_compiled(k(2)));
    assert!(c.is_compiled(k(1)) && c.is_compiled(k(3)));
    assert_eq!(c.stats().evictions, 1);
    // The next clear with no use in between empties the cache.
    assert_eq!(c.clear_cold(), 2);
    assert!(c.is_empty());
    assert_eq!(c.stats().evictions, 3);
    c.check_invariants();
}

#[test]
fn clear_cold_is_exact_when_the_clock_stands_still() {
    let (mut c, _clock) = cache(1, 1 << 20);
    compile(&mut c, 1, None, 10, 0);
    compile(&mut c, 2, None, 10, 0);
    c.clear_cold();
    assert!(c.on_call(k(2), None).is_run()); // same tick as the clear
    assert_eq!(c.clear_cold(), 1);
    assert!(c.is_compiled(k(2)));
}

// ---------------------------------------------------------------------------------------------
// Reset

#[test]
fn reset_keeps_running_artifacts_alive() {
    let (mut c, _) = cache(1, 1 << 20);
    assert!(c.on_call(k(1), None).is_compile());
    c.insert(k(1), fake(1, 10, 5));
    let running = match c.on_call(k(1), None) {
        CallDecision::Run(a) => a,
        d => panic!("{d:?}"),
    };
    assert_eq!(
        Rc::strong_count(&running),
        2,
        "the cache and the running call"
    );
    c.reset();
    assert_eq!(
        Rc::strong_count(&running),
        1,
        "reset drops only the cache's reference"
    );
    assert_eq!(*running, fake(1, 10, 5), "still valid");
    assert!(c.is_empty());
    let weak = Rc::downgrade(&running);
    drop(running);
    assert!(
        weak.upgrade().is_none(),
        "freed once the last holder lets go"
    );
}

#[test]
fn eviction_keeps_running_artifacts_alive() {
    let (mut c, _) = cache(1, 100);
    compile(&mut c, 1, None, 100, 0);
    let running = c.get(k(1)).unwrap();
    compile(&mut c, 2, None, 100, 0);
    assert!(!c.is_compiled(k(1)));
    assert_eq!(Rc::strong_count(&running), 1);
    assert_eq!(running.id, 1);
}

#[test]
fn reset_drops_entries_counters_and_statistics_but_keeps_settings() {
    let (mut c, _) = cache(3, 5000);
    c.exclude(["skip-*"]);
    c.pin(k(1));
    c.set_threshold(1);
    compile(&mut c, 1, Some("f"), 10, 0);
    compile(&mut c, 2, Some("g"), 10, 0);
    c.set_threshold(3);
    c.on_call(k(3), None);
    c.on_call(k(1), None);
    c.on_call(k(4), None);
    assert!(c.on_call(k(4), None).is_interpret());
    assert!(c.on_call(k(4), None).is_compile());
    c.declined(k(4), "no");
    c.reset();
    let s = c.stats();
    assert_eq!(
        (
            s.compiled,
            s.compile_failed,
            s.below_threshold,
            s.hits,
            s.evictions,
            s.pinned,
            s.entries,
            s.code_bytes
        ),
        (0, 0, 0, 0, 0, 0, 0, 0)
    );
    assert_eq!(
        (s.threshold, s.budget_bytes, s.backend.as_str()),
        (3, 5000, "fake")
    );
    assert_eq!(
        (c.counters_len(), c.negative_len(), c.pending_len()),
        (0, 0, 0)
    );
    assert_eq!(c.exclusions(), vec!["skip-*".to_string()]);
    assert!(c.is_pinned(k(1)), "pins are settings: they survive");
    compile(&mut c, 1, Some("f"), 10, 0);
    assert_eq!(c.stats().pinned, 1, "re-pinned when recompiled");
    c.check_invariants();
}

#[test]
fn reset_counters_zeroes_statistics_only() {
    let (mut c, _) = cache(2, 1 << 20);
    compile(&mut c, 1, None, 10, 0);
    c.on_call(k(1), None);
    c.on_call(k(2), None);
    let before = c.stats();
    assert_eq!(
        (before.compiled, before.hits, before.below_threshold),
        (1, 1, 2)
    );
    c.reset_counters();
    let s = c.stats();
    assert_eq!(
        (
            s.compiled,
            s.compile_failed,
            s.below_threshold,
            s.hits,
            s.evictions
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!((s.entries, s.code_bytes), (1, 10), "entries stay");
    assert_eq!(c.entries()[0].hits, 0);
    assert_eq!(c.call_count(k(2)), 1, "call counters stay");
    assert!(c.on_call(k(2), None).is_compile());
}

#[test]
fn fresh_scope_sets_the_cache_aside_and_restores_it() {
    let (mut c, _) = cache(1, 1000);
    compile(&mut c, 1, Some("outer"), 100, 0);
    compile(&mut c, 2, Some("outer2"), 100, 0);
    c.on_call(k(1), None);
    let outer_stats = c.stats();
    let saved = c.begin_fresh();
    assert!(c.is_empty());
    assert_eq!(c.stats().hits, 0);
    assert!(c.on_call(k(1), None).is_compile(), "empty cache inside");
    c.insert(k(1), fake(10, 50, 0));
    compile(&mut c, 3, None, 50, 0);
    c.end_fresh(saved);
    assert_eq!(c.stats(), outer_stats);
    assert_eq!(keys_mru_first(&c), vec![1, 2], "order restored");
    assert_eq!(c.get(k(1)).unwrap().id, 1, "the outer artifact is back");
    assert!(!c.is_compiled(k(3)));
    c.check_invariants();
}

#[test]
fn remove_forgets_a_key() {
    let (mut c, _) = cache(1, 1000);
    compile(&mut c, 1, None, 100, 0);
    c.pin(k(1));
    let a = c.remove(k(1)).unwrap();
    assert_eq!(a.id, 1);
    assert!(!c.is_pinned(k(1)));
    assert_eq!(c.resident_bytes(), 0);
    assert_eq!(c.stats().evictions, 0);
    c.check_invariants();
}

// ---------------------------------------------------------------------------------------------
// Exclusion

#[test]
fn exclusion_by_exact_name_and_prefix() {
    let (mut c, _) = cache(1, 1 << 20);
    c.exclude(["main", "test-*"]);
    assert!(c.is_excluded("main"));
    assert!(!c.is_excluded("main2"));
    assert!(c.is_excluded("test-"));
    assert!(c.is_excluded("test-foo"));
    assert!(!c.is_excluded("tes"));
    assert!(!c.is_excluded("my-test-foo"));
    for _ in 0..10 {
        assert!(c.on_call(k(1), Some("main")).is_interpret());
        assert!(c.on_call(k(2), Some("test-add")).is_interpret());
    }
    assert!(c.on_call(k(3), Some("maintain")).is_compile());
    assert!(
        c.on_call(k(4), None).is_compile(),
        "anonymous lambdas are never excluded"
    );
    let s = c.stats();
    assert_eq!(
        s.below_threshold, 0,
        "excluded calls are not below-threshold calls"
    );
    assert_eq!(
        c.exclusions(),
        vec!["main".to_string(), "test-*".to_string()]
    );
}

#[test]
fn excluded_names_keep_no_counter() {
    let (mut c, _) = cache(4, 1 << 20);
    c.exclude(["gen-*"]);
    for i in 0..1000 {
        assert!(c.on_call(k(i), Some("gen-lambda")).is_interpret());
    }
    assert_eq!(c.counters_len(), 0);
}

#[test]
fn star_alone_excludes_every_named_lambda() {
    let (mut c, _) = cache(1, 1 << 20);
    c.exclude(["*"]);
    assert!(c.on_call(k(1), Some("anything")).is_interpret());
    assert!(c.on_call(k(2), None).is_compile());
    c.clear_exclusions();
    assert!(c.on_call(k(1), Some("anything")).is_compile());
}

#[test]
fn excluding_drops_matching_compiled_entries() {
    let (mut c, _) = cache(1, 1 << 20);
    compile(&mut c, 1, Some("parse-expr"), 10, 0);
    compile(&mut c, 2, Some("parse-stmt"), 10, 0);
    compile(&mut c, 3, Some("eval"), 10, 0);
    c.pin(k(2));
    assert_eq!(c.exclude(["parse-*"]), 2, "pinned ones too");
    assert_eq!(keys_mru_first(&c), vec![3]);
    assert_eq!(c.stats().evictions, 0, "exclusion is not eviction");
    assert!(c.on_call(k(1), Some("parse-expr")).is_interpret());
    c.check_invariants();
}

#[test]
fn compile_requested_before_exclusion_is_not_kept() {
    let (mut c, _) = cache(1, 1 << 20);
    assert!(c.on_call(k(1), Some("late")).is_compile());
    c.exclude(["late"]);
    let a = c.insert(k(1), fake(1, 10, 0));
    assert_eq!(a.id, 1);
    assert!(!c.is_compiled(k(1)));
    assert!(c.on_call(k(1), Some("late")).is_interpret());
    c.check_invariants();
}

// ---------------------------------------------------------------------------------------------
// Stats and report

#[test]
fn stats_fields_follow_the_language_reference() {
    let (mut c, _) = cache(2, 1000);
    c.on_call(k(1), Some("f")); // below
    compile(&mut c, 1, Some("f"), 100, 20); // 1 more call: compile
    c.on_call(k(1), Some("f")); // hit
    c.on_call(k(1), Some("f")); // hit
    c.on_call(k(2), None); // below
    c.on_call(k(2), None); // compile
    c.declined(k(2), "unsupported");
    c.pin(k(1));
    let s = c.stats();
    let expected = JitStats {
        threshold: 2,
        compiled: 1,
        compile_failed: 1,
        below_threshold: 2,
        hits: 2,
        evictions: 0,
        pinned: 1,
        entries: 1,
        code_bytes: 120,
        budget_bytes: 1000,
        backend: "fake".to_string(),
    };
    assert_eq!(s, expected);
    assert_eq!(JitStats::KEYS.len(), 11);
    let keys: Vec<&str> = s.numeric_fields().iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, JitStats::KEYS[..10].to_vec());
    assert_eq!(JitStats::KEYS[10], "backend");
    assert_eq!(s.get("code-bytes"), Some(120));
    assert_eq!(s.get("below-threshold"), Some(2));
    assert_eq!(s.get("backend"), None);
    assert!(!s.over_budget());
}

#[test]
fn report_is_a_readable_summary() {
    let (mut c, _) = cache(4, 64 << 20);
    c.set_threshold(1);
    compile(&mut c, 1, Some("fib"), 2048, 512);
    compile(&mut c, 0xab, None, 100, 0);
    for _ in 0..3 {
        c.on_call(k(1), Some("fib"));
    }
    c.on_call(k(0xab), None);
    c.exclude(["test-*"]);
    let r = c.report();
    for needle in [
        "JIT cache (backend: fake)",
        "threshold:  1 (compile on the first call)",
        "entries:    2 (0 pinned), 2.6 KiB of 64.0 MiB budget",
        "code 2.1 KiB, metadata 512 B",
        "4 hits (compiled), 0 below threshold (interpreted)",
        "2 compiled, 0 compile-failed, 0 evictions",
        "excluded:   test-*",
        "hottest:    fib (3 hits), <lambda #ab> (1 hits)",
    ] {
        assert!(r.contains(needle), "missing {needle:?} in:\n{r}");
    }
    assert!(!r.contains("over budget"));
    c.set_threshold(0);
    assert!(c.report().contains("0 (never compile)"));
}

#[test]
fn backend_name_is_reported() {
    let mut c: JitCache<Fake> = JitCache::new("cranelift");
    assert_eq!(c.stats().backend, "cranelift");
    assert_eq!(c.stats().threshold, u64::from(DEFAULT_THRESHOLD));
    assert_eq!(c.stats().budget_bytes, DEFAULT_BUDGET_BYTES as u64);
    c.set_backend("llvm");
    assert_eq!(c.backend(), "llvm");
}

// ---------------------------------------------------------------------------------------------
// Bounded memory

#[test]
fn counter_memory_stays_bounded_after_a_million_fresh_keys() {
    let (mut c, _) = cache(4, 1 << 20);
    for i in 0..1_000_000u64 {
        assert!(c.on_call(k(i), None).is_interpret());
    }
    assert_eq!(c.counters_len(), DEFAULT_COUNTER_CAPACITY);
    assert_eq!(c.stats().below_threshold, 1_000_000);
    // The most recent keys still count; the oldest start again.
    assert_eq!(c.call_count(k(999_999)), 1);
    assert_eq!(c.call_count(k(0)), 0);
}

#[test]
fn negative_cache_and_pending_requests_stay_bounded() {
    let (mut c, _) = cache(1, 1 << 20);
    for i in 0..200_000u64 {
        assert!(c.on_call(k(i), None).is_compile());
        c.declined(k(i), "no");
    }
    assert_eq!(c.negative_len(), DEFAULT_NEGATIVE_CAPACITY);
    for i in 1_000_000..1_200_000u64 {
        assert!(c.on_call(k(i), None).is_compile()); // never answered
    }
    assert_eq!(c.pending_len(), DEFAULT_PENDING_CAPACITY);
    assert_eq!(c.counters_len(), 0);
}

#[test]
fn forgotten_pending_request_counts_again() {
    let clock = ManualClock::new(0);
    let config = JitConfig {
        threshold: 2,
        pending_capacity: 1,
        ..JitConfig::default()
    };
    let mut c: JitCache<Fake, &ManualClock> = JitCache::with_clock("fake", &clock, config);
    c.on_call(k(1), None);
    assert!(c.on_call(k(1), None).is_compile());
    c.on_call(k(2), None);
    assert!(c.on_call(k(2), None).is_compile()); // pushes 1's request out
    assert!(c.on_call(k(1), None).is_interpret());
    assert!(c.on_call(k(1), None).is_compile());
}

#[test]
fn memory_stays_bounded_when_everything_compiles() {
    let (mut c, _) = cache(1, 10_000);
    for i in 0..100_000u64 {
        assert!(c.on_call(k(i), None).is_compile());
        c.insert(k(i), fake(i, 90, 10));
    }
    assert_eq!(c.len(), 100);
    assert_eq!(c.resident_bytes(), 10_000);
    assert_eq!(c.stats().evictions, 100_000 - 100);
    assert_eq!(
        (c.counters_len(), c.pending_len(), c.negative_len()),
        (0, 0, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Clocks and patterns

#[test]
fn system_clock_is_monotonic() {
    let clock = SystemClock::new();
    let a = clock.now();
    let b = clock.now();
    assert!(b >= a);
}

#[test]
fn manual_clock_never_goes_back() {
    let clock = ManualClock::new(10);
    clock.set(5);
    assert_eq!(clock.now(), 10);
    clock.advance(5);
    clock.set(20);
    fn read<C: Clock>(c: C) -> u64 {
        c.now()
    }
    assert_eq!(read(&clock), 20);
    assert_eq!(read(Rc::new(ManualClock::new(3))), 3);
}

#[test]
fn exclusion_patterns_dedupe() {
    let mut e = Exclusions::new();
    assert!(e.is_empty());
    e.add("a-*");
    e.add("a-*");
    e.add("x");
    e.add("x");
    e.add("");
    assert_eq!(e.patterns(), vec!["a-*".to_string(), "x".to_string()]);
    assert!(!e.matches(""));
    assert!(e.matches("a-"));
    assert!(!e.matches("a"));
    assert!(e.matches("x"));
}

// ---------------------------------------------------------------------------------------------
// Property test: random operations against a simple model

#[derive(Debug, Clone)]
enum Op {
    Call(u64),
    Resolve {
        key: u64,
        decline: bool,
        size: usize,
    },
    Pin(u64),
    Unpin(u64),
    Budget(usize),
    Threshold(u32),
    ClearCold,
    Reset,
    ResetCounters,
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u64..12).prop_map(Op::Call),
        3 => (0u64..12, any::<bool>(), 1usize..400).prop_map(|(key, decline, size)| Op::Resolve { key, decline, size }),
        1 => (0u64..12).prop_map(Op::Pin),
        1 => (0u64..12).prop_map(Op::Unpin),
        1 => (0usize..1500).prop_map(Op::Budget),
        1 => (0u32..5).prop_map(Op::Threshold),
        1 => Just(Op::ClearCold),
        1 => Just(Op::Reset),
        1 => Just(Op::ResetCounters),
        1 => (0u64..5).prop_map(Op::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_random_operations(ops in prop::collection::vec(op(), 1..200)) {
        let (mut c, clock) = cache(2, 800);
        // Keys answered Compile and not yet resolved.
        let mut asked: Vec<u64> = Vec::new();
        // Pinned keys that are compiled: they must stay compiled until reset or unpin.
        let mut held: Vec<Rc<Fake>> = Vec::new();
        for op in ops {
            let before = c.stats();
            let pinned_before: Vec<CodeKey> = c.entries().iter().filter(|e| e.pinned).map(|e| e.key).collect();
            match op {
                Op::Call(key) => {
                    let compiled = c.is_compiled(k(key));
                    let d = c.on_call(k(key), Some(if key % 5 == 0 { "skip-me" } else { "f" }));
                    let s = c.stats();
                    match &d {
                        CallDecision::Run(a) => {
                            prop_assert!(compiled && c.threshold() > 0);
                            prop_assert_eq!(a.id, key);
                            prop_assert_eq!(s.hits, before.hits + 1);
                            held.push(Rc::clone(a));
                        }
                        CallDecision::Compile => {
                            prop_assert!(!compiled);
                            asked.push(key);
                        }
                        CallDecision::Interpret => prop_assert_eq!(s.hits, before.hits),
                    }
                }
                Op::Resolve { key, decline, size } => {
                    if let Some(i) = asked.iter().position(|&a| a == key) {
                        asked.swap_remove(i);
                        if decline {
                            c.declined(k(key), "no");
                            prop_assert!(c.on_call(k(key), None).is_interpret());
                        } else {
                            let a = c.insert(k(key), fake(key, size, size / 4));
                            prop_assert_eq!(a.id, key);
                            held.push(a);
                        }
                    }
                }
                Op::Pin(key) => { c.pin(k(key)); }
                Op::Unpin(key) => { c.unpin(k(key)); }
                Op::Budget(b) => c.set_budget(b),
                Op::Threshold(t) => c.set_threshold(t),
                Op::ClearCold => { c.clear_cold(); }
                Op::Reset => { c.reset(); asked.clear(); }
                Op::ResetCounters => c.reset_counters(),
                Op::Tick(t) => clock.advance(t),
            }
            c.check_invariants();
            // Pinned entries survive everything but reset and unpin.
            if !matches!(op, Op::Reset | Op::Unpin(_)) {
                for key in pinned_before {
                    prop_assert!(c.is_compiled(key), "pinned {} was dropped by {:?}", key, op);
                }
            }
            // Event counts never go down except on reset/reset_counters.
            if !matches!(op, Op::Reset | Op::ResetCounters) {
                let s = c.stats();
                prop_assert!(s.hits >= before.hits && s.compiled >= before.compiled && s.evictions >= before.evictions);
            }
            // Every artifact handed out is still valid, whatever happened to the cache.
            for a in &held {
                prop_assert!(a.code > 0);
            }
        }
        drop(c);
        for a in &held {
            prop_assert_eq!(Rc::strong_count(a), held.iter().filter(|b| Rc::ptr_eq(a, b)).count());
        }
    }
}

#[test]
fn call_compiled_counts_a_hit_only_for_compiled_keys() {
    let (mut c, _clock) = cache(2, 1 << 20);
    assert!(c.call_compiled(k(1)).is_none());
    assert_eq!(c.stats().below_threshold, 0, "a miss is not counted");
    assert_eq!(c.call_count(k(1)), 0);
    compile(&mut c, 1, Some("f"), 100, 10);
    let before = c.stats().hits;
    assert_eq!(c.call_compiled(k(1)).map(|a| a.id), Some(1));
    assert_eq!(c.stats().hits, before + 1);
    c.set_threshold(0);
    assert!(c.call_compiled(k(1)).is_none(), "threshold 0 runs nothing compiled");
}

#[test]
fn the_key_hasher_spreads_sequential_keys() {
    use std::hash::BuildHasher;
    let build = std::hash::BuildHasherDefault::<KeyHasher>::default();
    let hashes: std::collections::HashSet<u64> = (0..10_000u64).map(|i| build.hash_one(CodeKey(i)) >> 57).collect();
    assert_eq!(hashes.len(), 128, "the top 7 bits (hashbrown's control bytes) all occur");
}

#[test]
fn quiet_calls_cover_the_calls_below_the_threshold_and_count_when_reported() {
    let (mut c, _) = cache(5, 1 << 20);
    assert!(c.on_call(k(1), Some("f")).is_interpret());
    // Calls 2, 3 and 4 would be answered `Interpret` too.
    assert_eq!(c.quiet_calls(k(1), Some("f")), (3, true));
    // Reported at the 5th call: it compiles.
    assert!(c.on_call_after(k(1), Some("f"), 3).is_compile());
    assert_eq!(c.quiet_calls(k(1), Some("f")), (0, false), "pending: ask again");
    c.insert(k(1), fake(1, 10, 10));
    assert_eq!(c.quiet_calls(k(1), Some("f")), (0, false), "compiled: ask every time");
    // The skipped calls are the caller's to count in `below_threshold`.
    assert_eq!(c.stats().below_threshold, 1);
    c.note_below_threshold(3);
    assert_eq!(c.stats().below_threshold, 4);
}

#[test]
fn declined_excluded_and_never_compiled_code_is_quiet_for_good() {
    let (mut c, _) = cache(1, 1 << 20);
    assert!(c.on_call(k(2), Some("g")).is_compile());
    c.declined(k(2), "no");
    assert_eq!(c.quiet_calls(k(2), Some("g")), (u32::MAX, false));
    c.exclude(["h"]);
    assert_eq!(c.quiet_calls(k(3), Some("h")), (u32::MAX, false));
    c.set_threshold(0);
    assert_eq!(c.quiet_calls(k(4), Some("i")), (u32::MAX, true));
}
