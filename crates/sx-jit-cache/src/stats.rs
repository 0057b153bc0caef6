//! The statistics behind `jit-stats` and `jit-report`.

use std::fmt::Write as _;

/// A snapshot of the cache, one field per key of `(jit-stats)`.
///
/// Event counts (`compiled`, `compile_failed`, `below_threshold`, `hits`, `evictions`) count since
/// the last `reset`/`reset_counters`; the others (`threshold`, `pinned`, `entries`, `code_bytes`,
/// `budget_bytes`, `backend`) describe the cache as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JitStats {
    /// Calls before a lambda's code is compiled (0 = never compile).
    pub threshold: u64,
    /// Artifacts handed to the cache by `insert` (successful compilations).
    pub compiled: u64,
    /// Compilations the backend declined (`declined`): each such key is then interpreted.
    pub compile_failed: u64,
    /// Calls answered `Interpret` because the key's code was not compiled (yet): its call counter
    /// was below the threshold, the threshold is 0, or its compilation was still pending.
    /// Calls of excluded names and of declined keys are not counted here.
    pub below_threshold: u64,
    /// Calls answered `Run`: a compiled entry was found.
    pub hits: u64,
    /// Compiled entries dropped by the cache's policy: the byte budget (on insert, on
    /// `set_budget`, on `unpin`), `clear_cold`, and artifacts too big to be kept at all.
    /// `reset`, `remove` and exclusion are not evictions.
    pub evictions: u64,
    /// Compiled entries that are pinned now.
    pub pinned: u64,
    /// Compiled entries now in the cache (pinned included).
    pub entries: u64,
    /// Bytes the entries now hold, code and metadata together: what the budget limits. Only
    /// pinned entries can make it exceed `budget_bytes`.
    pub code_bytes: u64,
    /// The byte budget (`jit-set-budget!`).
    pub budget_bytes: u64,
    /// The name of the backend that compiles for this cache.
    pub backend: String,
}

impl JitStats {
    /// The keys of `(jit-stats)`, in the order of the language reference.
    pub const KEYS: [&'static str; 11] = [
        "threshold",
        "compiled",
        "compile-failed",
        "below-threshold",
        "hits",
        "evictions",
        "pinned",
        "entries",
        "code-bytes",
        "budget-bytes",
        "backend",
    ];

    /// Every numeric field with its `jit-stats` key, in [`JitStats::KEYS`] order (all keys but
    /// `backend`, which is [`JitStats::backend`]).
    pub fn numeric_fields(&self) -> [(&'static str, u64); 10] {
        [
            ("threshold", self.threshold),
            ("compiled", self.compiled),
            ("compile-failed", self.compile_failed),
            ("below-threshold", self.below_threshold),
            ("hits", self.hits),
            ("evictions", self.evictions),
            ("pinned", self.pinned),
            ("entries", self.entries),
            ("code-bytes", self.code_bytes),
            ("budget-bytes", self.budget_bytes),
        ]
    }

    /// The value of a numeric `jit-stats` key (`None` for `backend` and unknown keys).
    pub fn get(&self, key: &str) -> Option<u64> {
        self.numeric_fields()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Does the cache hold more bytes than its budget (possible only through pinned entries)?
    pub fn over_budget(&self) -> bool {
        self.code_bytes > self.budget_bytes
    }
}

/// `1536` → `"1.5 KiB"`; exact bytes below 1 KiB.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let mut s = String::new();
    let _ = write!(s, "{value:.1} {}", UNITS[unit]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
    }
}
