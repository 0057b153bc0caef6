//! `compare OLD.json NEW.json`: what got fixed, what broke, per tier.

use crate::report::{ReportJson, TestRecord, TierJson};
use crate::runner::truncate;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Differences of one tier between two reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierDiff {
    pub tier: String,
    /// failed → passed
    pub fixed: Vec<String>,
    /// passed → failed, with the new message
    pub broken: Vec<(String, String)>,
    /// only in NEW, with whether it passes
    pub added: Vec<(String, bool)>,
    /// only in OLD, with whether it passed
    pub removed: Vec<(String, bool)>,
    /// failed in both, message changed (informational)
    pub still_failing: usize,
    pub old_passed: usize,
    pub old_total: usize,
    pub new_passed: usize,
    pub new_total: usize,
}

fn index(t: Option<&TierJson>) -> BTreeMap<&str, &TestRecord> {
    t.map(|t| t.tests.iter().map(|r| (r.id.as_str(), r)).collect())
        .unwrap_or_default()
}

/// Compare every tier present in either report.
pub fn compare(old: &ReportJson, new: &ReportJson) -> Vec<TierDiff> {
    let tiers: BTreeSet<&String> = old.tiers.keys().chain(new.tiers.keys()).collect();
    tiers
        .into_iter()
        .map(|tier| {
            let o = index(old.tiers.get(tier));
            let n = index(new.tiers.get(tier));
            let mut d = TierDiff {
                tier: tier.clone(),
                old_total: o.len(),
                old_passed: o.values().filter(|r| r.ok).count(),
                new_total: n.len(),
                new_passed: n.values().filter(|r| r.ok).count(),
                ..TierDiff::default()
            };
            for (id, nr) in &n {
                match o.get(id) {
                    None => d.added.push((id.to_string(), nr.ok)),
                    Some(or) => match (or.ok, nr.ok) {
                        (false, true) => d.fixed.push(id.to_string()),
                        (true, false) => d
                            .broken
                            .push((id.to_string(), nr.message.clone().unwrap_or_default())),
                        (false, false) => d.still_failing += 1,
                        (true, true) => {}
                    },
                }
            }
            for (id, or) in &o {
                if !n.contains_key(id) {
                    d.removed.push((id.to_string(), or.ok));
                }
            }
            d
        })
        .collect()
}

/// Whether any tier has a test that went from passing to failing.
pub fn anything_broke(diffs: &[TierDiff]) -> bool {
    diffs.iter().any(|d| !d.broken.is_empty())
}

fn pct(p: usize, t: usize) -> String {
    if t == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * p as f64 / t as f64)
    }
}

/// Human-readable report; each list is capped at `cap` lines.
pub fn render_compare(diffs: &[TierDiff], cap: usize) -> String {
    let mut out = String::new();
    for d in diffs {
        let delta = d.new_passed as i64 - d.old_passed as i64;
        let _ = writeln!(
            out,
            "== tier {}: {}/{} ({}) -> {}/{} ({}), passed {:+}",
            d.tier,
            d.old_passed,
            d.old_total,
            pct(d.old_passed, d.old_total),
            d.new_passed,
            d.new_total,
            pct(d.new_passed, d.new_total),
            delta
        );
        let _ = writeln!(
            out,
            "   fixed {}, broken {}, added {}, removed {}, still failing {}",
            d.fixed.len(),
            d.broken.len(),
            d.added.len(),
            d.removed.len(),
            d.still_failing
        );
        let mut section = |title: &str, lines: Vec<String>| {
            if lines.is_empty() {
                return;
            }
            let _ = writeln!(out, "   {title}:");
            for l in lines.iter().take(cap) {
                let _ = writeln!(out, "     {l}");
            }
            if lines.len() > cap {
                let _ = writeln!(out, "     ... and {} more", lines.len() - cap);
            }
        };
        section(
            "BROKEN (passed -> failed)",
            d.broken
                .iter()
                .map(|(id, m)| format!("{id}: {}", truncate(m.lines().next().unwrap_or(""), 160)))
                .collect(),
        );
        section("fixed (failed -> passed)", d.fixed.clone());
        section(
            "added",
            d.added
                .iter()
                .map(|(id, ok)| format!("{id} [{}]", if *ok { "pass" } else { "FAIL" }))
                .collect(),
        );
        section(
            "removed",
            d.removed
                .iter()
                .map(|(id, ok)| format!("{id} [was {}]", if *ok { "pass" } else { "fail" }))
                .collect(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, ok: bool) -> TestRecord {
        TestRecord {
            id: id.into(),
            topic: "t".into(),
            file: "t/f.sx".into(),
            suite: "s".into(),
            name: id.into(),
            ok,
            message: if ok {
                None
            } else {
                Some(format!("{id} failed"))
            },
        }
    }

    fn report(tiers: &[(&str, &[(&str, bool)])]) -> ReportJson {
        ReportJson {
            tiers: tiers
                .iter()
                .map(|(name, tests)| {
                    let tests: Vec<TestRecord> = tests.iter().map(|(i, ok)| rec(i, *ok)).collect();
                    let passed = tests.iter().filter(|t| t.ok).count();
                    (
                        name.to_string(),
                        TierJson {
                            total: tests.len(),
                            passed,
                            failed: tests.len() - passed,
                            tests,
                            ..TierJson::default()
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn fixed_broken_added_removed() {
        let old = report(&[
            (
                "cek",
                &[
                    ("a", true),
                    ("b", false),
                    ("c", true),
                    ("d", false),
                    ("gone", true),
                ],
            ),
            ("oldtier", &[("x", true)]),
        ]);
        let new = report(&[
            (
                "cek",
                &[
                    ("a", true),
                    ("b", true),
                    ("c", false),
                    ("d", false),
                    ("new", false),
                ],
            ),
            ("cranelift", &[("a", true)]),
        ]);
        let diffs = compare(&old, &new);
        let names: Vec<&str> = diffs.iter().map(|d| d.tier.as_str()).collect();
        assert_eq!(names, vec!["cek", "cranelift", "oldtier"]);
        let cek = &diffs[0];
        assert_eq!(cek.fixed, vec!["b"]);
        assert_eq!(cek.broken, vec![("c".to_string(), "c failed".to_string())]);
        assert_eq!(cek.added, vec![("new".to_string(), false)]);
        assert_eq!(cek.removed, vec![("gone".to_string(), true)]);
        assert_eq!(cek.still_failing, 1);
        assert_eq!(
            (cek.old_passed, cek.old_total, cek.new_passed, cek.new_total),
            (3, 5, 2, 5)
        );
        assert_eq!(diffs[1].added, vec![("a".to_string(), true)]);
        assert_eq!(diffs[2].removed, vec![("x".to_string(), true)]);
        assert!(anything_broke(&diffs));

        let text = render_compare(&diffs, 10);
        assert!(text.contains("== tier cek: 3/5 (60.0%) -> 2/5 (40.0%), passed -1"));
        assert!(text.contains("BROKEN (passed -> failed):\n     c: c failed"));
        assert!(text.contains("fixed (failed -> passed):\n     b"));
        assert!(text.contains("new [FAIL]"));
        assert!(text.contains("gone [was pass]"));
    }

    #[test]
    fn identical_reports_have_no_changes() {
        let r = report(&[("cek", &[("a", true), ("b", false)])]);
        let diffs = compare(&r, &r);
        assert!(!anything_broke(&diffs));
        assert!(
            diffs[0].fixed.is_empty() && diffs[0].added.is_empty() && diffs[0].removed.is_empty()
        );
    }

    #[test]
    fn lists_are_capped() {
        let old = report(&[("cek", &[])]);
        let tests: Vec<(String, bool)> = (0..30).map(|i| (format!("t{i:02}"), true)).collect();
        let refs: Vec<(&str, bool)> = tests.iter().map(|(s, b)| (s.as_str(), *b)).collect();
        let new = report(&[("cek", &refs)]);
        let text = render_compare(&compare(&old, &new), 5);
        assert!(text.contains("... and 25 more"));
    }
}
