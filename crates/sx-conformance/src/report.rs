//! Aggregating batch outcomes into per-tier reports; the JSON format; the
//! pass-rate table and the list of failures.

use crate::runner::{truncate, BatchOutcome};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// One test in the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    /// `file::suite::name`, unique within a tier (a repeated name gets ` #2`, ` #3`...).
    pub id: String,
    #[serde(default)]
    pub topic: String,
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub suite: String,
    #[serde(default)]
    pub name: String,
    pub ok: bool,
    #[serde(default)]
    pub message: Option<String>,
}

/// Passed/total of one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub passed: usize,
    pub total: usize,
}

impl Count {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        if ok {
            self.passed += 1;
        }
    }
}

/// One tier of the JSON report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TierJson {
    #[serde(default)]
    pub total: usize,
    #[serde(default)]
    pub passed: usize,
    #[serde(default)]
    pub failed: usize,
    #[serde(default)]
    pub tests: Vec<TestRecord>,
    /// Per topic: `{files, files_reporting, files_with_compiled, files_with_hits,
    /// stats: {numeric jit-stats fields summed, other fields from the first file}}`.
    #[serde(default)]
    pub jit_by_topic: BTreeMap<String, Value>,
    #[serde(default)]
    pub topics: BTreeMap<String, Count>,
    /// Crash/timeout reasons of batches (each also failed its files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_problems: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The whole JSON report: `{"tiers":{"cek":{...}}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportJson {
    pub tiers: BTreeMap<String, TierJson>,
}

impl ReportJson {
    pub fn load(path: &Path) -> Result<ReportJson> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("serialising report")?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// A tier's report, in run order.
#[derive(Debug, Clone, PartialEq)]
pub struct TierReport {
    pub name: String,
    pub data: TierJson,
    /// Sum of the wall-clock times of the tier's batches, in seconds.
    pub batch_seconds: f64,
}

/// All tiers of a run, in the order given on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    pub tiers: Vec<TierReport>,
}

impl RunReport {
    pub fn to_json(&self) -> ReportJson {
        ReportJson {
            tiers: self
                .tiers
                .iter()
                .map(|t| (t.name.clone(), t.data.clone()))
                .collect(),
        }
    }

    pub fn passed(&self) -> usize {
        self.tiers.iter().map(|t| t.data.passed).sum()
    }

    pub fn failed(&self) -> usize {
        self.tiers.iter().map(|t| t.data.failed).sum()
    }

    pub fn has_failures(&self) -> bool {
        self.failed() > 0
    }
}

/// Builds a [`TierJson`] from batch outcomes (fed in a deterministic order).
#[derive(Debug, Default)]
pub struct TierBuilder {
    data: TierJson,
    seen_ids: HashMap<String, usize>,
}

impl TierBuilder {
    pub fn new() -> TierBuilder {
        TierBuilder::default()
    }

    fn push(
        &mut self,
        topic: &str,
        file: &str,
        suite: &str,
        name: &str,
        ok: bool,
        msg: Option<String>,
    ) {
        let base = format!("{file}::{suite}::{name}");
        let n = self.seen_ids.entry(base.clone()).or_insert(0);
        *n += 1;
        let id = if *n == 1 {
            base
        } else {
            format!("{base} #{n}")
        };
        self.data
            .topics
            .entry(topic.to_string())
            .or_default()
            .add(ok);
        self.data.total += 1;
        if ok {
            self.data.passed += 1;
        } else {
            self.data.failed += 1;
        }
        self.data.tests.push(TestRecord {
            id,
            topic: topic.to_string(),
            file: file.to_string(),
            suite: suite.to_string(),
            name: name.to_string(),
            ok,
            message: if ok {
                None
            } else {
                Some(msg.unwrap_or_default())
            },
        });
    }

    pub fn add_batch(&mut self, batch: &BatchOutcome) {
        if let Some(p) = &batch.problem {
            let names: Vec<&str> = batch
                .files
                .iter()
                .filter(|f| !f.completed)
                .map(|f| f.file.rel.as_str())
                .collect();
            self.data
                .batch_problems
                .push(format!("{p} [{}]", names.join(", ")));
        }
        for w in &batch.warnings {
            let names: Vec<&str> = batch.files.iter().map(|f| f.file.rel.as_str()).collect();
            self.data
                .warnings
                .push(format!("{w} [batch: {}]", names.join(", ")));
        }
        for f in &batch.files {
            let topic = f.file.topic.as_str();
            let rel = f.file.rel.as_str();
            self.data.topics.entry(topic.to_string()).or_default();
            for t in &f.tests {
                self.push(topic, rel, &t.suite, &t.name, t.ok, t.message.clone());
            }
            if !f.completed {
                let reason = f
                    .failure
                    .clone()
                    .unwrap_or_else(|| "batch crashed: no file-done event".to_string());
                self.push(topic, rel, "", rel, false, Some(reason));
            } else if f.tests.is_empty() {
                self.data.warnings.push(format!("{rel}: reported no tests"));
            }
            if f.completed {
                add_jit(
                    self.data
                        .jit_by_topic
                        .entry(topic.to_string())
                        .or_insert_with(empty_jit_agg),
                    f.jit.as_ref(),
                );
            }
        }
    }

    pub fn finish(self) -> TierJson {
        self.data
    }
}

fn empty_jit_agg() -> Value {
    let mut m = Map::new();
    m.insert("files".into(), Value::from(0u64));
    m.insert("files_reporting".into(), Value::from(0u64));
    m.insert("files_with_compiled".into(), Value::from(0u64));
    m.insert("files_with_hits".into(), Value::from(0u64));
    m.insert("stats".into(), Value::Object(Map::new()));
    Value::Object(m)
}

fn bump(m: &mut Map<String, Value>, key: &str) {
    let n = m.get(key).and_then(Value::as_u64).unwrap_or(0);
    m.insert(key.to_string(), Value::from(n + 1));
}

fn positive(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64).is_some_and(|x| x > 0.0)
}

/// Fold one file's `jit` object into a topic aggregate.
fn add_jit(agg: &mut Value, jit: Option<&Value>) {
    let Value::Object(m) = agg else { return };
    bump(m, "files");
    let Some(Value::Object(j)) = jit else { return };
    bump(m, "files_reporting");
    if positive(j.get("compiled")) {
        bump(m, "files_with_compiled");
    }
    if positive(j.get("hits")) {
        bump(m, "files_with_hits");
    }
    let stats = m
        .entry("stats")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(stats) = stats else { return };
    for (k, v) in j {
        match (stats.get(k), v) {
            (Some(Value::Number(a)), Value::Number(b)) => {
                stats.insert(k.clone(), add_numbers(a, b));
            }
            (None, v) => {
                stats.insert(k.clone(), v.clone());
            }
            _ => {} // non-numeric: keep the first value seen
        }
    }
}

fn add_numbers(a: &Number, b: &Number) -> Value {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(s) = x.checked_add(y) {
            return Value::from(s);
        }
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        if let Some(s) = x.checked_add(y) {
            return Value::from(s);
        }
    }
    let s = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    Number::from_f64(s)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn cell(c: Option<&Count>) -> String {
    match c {
        None => "-".to_string(),
        Some(c) if c.total == 0 => "0/0".to_string(),
        Some(c) => format!(
            "{}/{} {:5.1}%",
            c.passed,
            c.total,
            100.0 * c.passed as f64 / c.total as f64
        ),
    }
}

/// The pass-rate table: one row per topic, one column per tier, and a TOTAL row.
pub fn render_table(tiers: &[TierReport]) -> String {
    let topics: BTreeSet<&str> = tiers
        .iter()
        .flat_map(|t| t.data.topics.keys().map(String::as_str))
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["topic".to_string()];
    header.extend(tiers.iter().map(|t| t.name.clone()));
    for topic in &topics {
        let mut row = vec![topic.to_string()];
        row.extend(tiers.iter().map(|t| cell(t.data.topics.get(*topic))));
        rows.push(row);
    }
    let mut total = vec!["TOTAL".to_string()];
    total.extend(tiers.iter().map(|t| {
        cell(Some(&Count {
            passed: t.data.passed,
            total: t.data.total,
        }))
    }));

    let ncols = header.len();
    let mut widths = vec![0usize; ncols];
    for r in std::iter::once(&header)
        .chain(rows.iter())
        .chain(std::iter::once(&total))
    {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let fmt_row = |r: &[String]| -> String {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let sep = {
        let parts: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    "-".repeat(*w + 2)
                } else {
                    format!("{}:", "-".repeat(*w + 1))
                }
            })
            .collect();
        format!("|{}|", parts.join("|"))
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", fmt_row(&header));
    let _ = writeln!(out, "{sep}");
    for r in &rows {
        let _ = writeln!(out, "{}", fmt_row(r));
    }
    let _ = writeln!(out, "{}", fmt_row(&total));
    out
}

/// The failed tests, at most `cap` lines plus a count of the rest.
pub fn render_failures(tiers: &[TierReport], cap: usize) -> String {
    let failures: Vec<(&str, &TestRecord)> = tiers
        .iter()
        .flat_map(|t| {
            t.data
                .tests
                .iter()
                .filter(|r| !r.ok)
                .map(move |r| (t.name.as_str(), r))
        })
        .collect();
    let mut out = String::new();
    if failures.is_empty() {
        return out;
    }
    let _ = writeln!(out, "Failed tests ({}):", failures.len());
    for (tier, r) in failures.iter().take(cap) {
        let msg = r.message.as_deref().unwrap_or("");
        let first_line = msg.lines().next().unwrap_or("");
        let suite = if r.suite.is_empty() { "-" } else { &r.suite };
        let _ = writeln!(
            out,
            "  [{tier}] {} :: {suite} :: {}: {}",
            r.file,
            r.name,
            truncate(first_line, 200)
        );
    }
    if failures.len() > cap {
        let _ = writeln!(
            out,
            "  ... and {} more failed tests (use --json FILE for the full list)",
            failures.len() - cap
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::TestFile;
    use crate::runner::{FileOutcome, TestOutcome};
    use serde_json::json;
    use std::time::Duration;

    fn outcome(
        rel: &str,
        tests: &[(&str, &str, bool)],
        completed: bool,
        jit: Option<Value>,
    ) -> FileOutcome {
        FileOutcome {
            file: TestFile::new(Path::new("conformance"), rel),
            tests: tests
                .iter()
                .map(|(s, n, ok)| TestOutcome {
                    suite: s.to_string(),
                    name: n.to_string(),
                    ok: *ok,
                    message: if *ok {
                        None
                    } else {
                        Some("Expected 1, got 2".into())
                    },
                })
                .collect(),
            jit,
            completed,
            failure: if completed {
                None
            } else {
                Some("batch crashed: exit status 101".into())
            },
        }
    }

    fn sample() -> Vec<TierReport> {
        let batch = BatchOutcome {
            files: vec![
                outcome(
                    "lists/a.sx",
                    &[("s", "one", true), ("s", "two", false), ("s", "one", true)],
                    true,
                    Some(json!({"compiled": 2, "hits": 5, "backend": "cranelift"})),
                ),
                outcome(
                    "lists/b.sx",
                    &[],
                    true,
                    Some(json!({"compiled": 0, "hits": 0, "backend": "cranelift"})),
                ),
                outcome("strings/c.sx", &[("t", "x", true)], false, None),
            ],
            problem: Some("batch crashed: exit status 101".into()),
            warnings: vec![],
            elapsed: Duration::ZERO,
        };
        let mut b = TierBuilder::new();
        b.add_batch(&batch);
        let cek = b.finish();
        let mut b = TierBuilder::new();
        b.add_batch(&BatchOutcome {
            files: vec![outcome("lists/a.sx", &[("s", "one", true)], true, None)],
            problem: None,
            warnings: vec![],
            elapsed: Duration::ZERO,
        });
        let jit = b.finish();
        vec![
            TierReport {
                name: "cek".into(),
                data: cek,
                batch_seconds: 0.0,
            },
            TierReport {
                name: "cranelift".into(),
                data: jit,
                batch_seconds: 0.0,
            },
        ]
    }

    #[test]
    fn aggregation_counts_ids_and_crash_entries() {
        let tiers = sample();
        let cek = &tiers[0].data;
        // 3 tests in a.sx, 1 in c.sx + 1 crash entry for c.sx
        assert_eq!((cek.total, cek.passed, cek.failed), (5, 3, 2));
        let ids: Vec<&str> = cek.tests.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "lists/a.sx::s::one",
                "lists/a.sx::s::two",
                "lists/a.sx::s::one #2",
                "strings/c.sx::t::x",
                "strings/c.sx::::strings/c.sx"
            ]
        );
        let crash = &cek.tests[4];
        assert!(!crash.ok);
        assert_eq!(crash.name, "strings/c.sx");
        assert_eq!(
            crash.message.as_deref(),
            Some("batch crashed: exit status 101")
        );
        assert_eq!(
            cek.topics["lists"],
            Count {
                passed: 2,
                total: 3
            }
        );
        assert_eq!(
            cek.topics["strings"],
            Count {
                passed: 1,
                total: 2
            }
        );
        assert_eq!(cek.batch_problems.len(), 1);
        assert!(cek.batch_problems[0].contains("[strings/c.sx]"));
        assert!(cek
            .warnings
            .iter()
            .any(|w| w.contains("lists/b.sx: reported no tests")));

        let jit = &cek.jit_by_topic["lists"];
        assert_eq!(jit["files"], 2);
        assert_eq!(jit["files_reporting"], 2);
        assert_eq!(jit["files_with_compiled"], 1);
        assert_eq!(jit["files_with_hits"], 1);
        assert_eq!(jit["stats"]["compiled"], 2);
        assert_eq!(jit["stats"]["hits"], 5);
        assert_eq!(jit["stats"]["backend"], "cranelift");
        // crashed file contributes no jit entry
        assert!(!cek.jit_by_topic.contains_key("strings"));
    }

    #[test]
    fn json_round_trip_and_shape() -> Result<()> {
        let report = RunReport { tiers: sample() };
        let json = report.to_json();
        let text = serde_json::to_string(&json)?;
        let v: Value = serde_json::from_str(&text)?;
        assert_eq!(v["tiers"]["cek"]["total"], 5);
        assert_eq!(v["tiers"]["cek"]["passed"], 3);
        assert_eq!(v["tiers"]["cek"]["failed"], 2);
        let t0 = &v["tiers"]["cek"]["tests"][1];
        assert_eq!(t0["id"], "lists/a.sx::s::two");
        assert_eq!(t0["topic"], "lists");
        assert_eq!(t0["file"], "lists/a.sx");
        assert_eq!(t0["suite"], "s");
        assert_eq!(t0["name"], "two");
        assert_eq!(t0["ok"], false);
        assert_eq!(t0["message"], "Expected 1, got 2");
        assert!(v["tiers"]["cek"]["jit_by_topic"]["lists"].is_object());
        let back: ReportJson = serde_json::from_str(&text)?;
        assert_eq!(back, json);

        // a minimal file from another producer still loads
        let minimal: ReportJson =
            serde_json::from_str(r#"{"tiers":{"cek":{"tests":[{"id":"a::b::c","ok":true}]}}}"#)?;
        assert_eq!(minimal.tiers["cek"].tests.len(), 1);

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/report.json");
        json.write(&path)?;
        assert_eq!(ReportJson::load(&path)?, json);
        assert!(ReportJson::load(&dir.path().join("missing.json")).is_err());
        Ok(())
    }

    #[test]
    fn table_rendering() {
        let table = render_table(&sample());
        let expected = "\
| topic   |        cek |  cranelift |
|---------|-----------:|-----------:|
| lists   | 2/3  66.7% | 1/1 100.0% |
| strings | 1/2  50.0% |          - |
| TOTAL   | 3/5  60.0% | 1/1 100.0% |
";
        assert_eq!(table, expected);
        // all lines have the same width
        let widths: BTreeSet<usize> = table.lines().map(|l| l.chars().count()).collect();
        assert_eq!(widths.len(), 1, "{table}");
    }

    #[test]
    fn failure_list_is_capped() {
        let tiers = sample();
        let all = render_failures(&tiers, 50);
        assert!(all.starts_with("Failed tests (2):"));
        assert!(all.contains("[cek] lists/a.sx :: s :: two: Expected 1, got 2"));
        assert!(
            all.contains("[cek] strings/c.sx :: - :: strings/c.sx: batch crashed: exit status 101")
        );
        let capped = render_failures(&tiers, 1);
        assert_eq!(capped.lines().count(), 3);
        assert!(capped.contains("... and 1 more failed tests"));
        assert_eq!(render_failures(&tiers[1..], 50), "");
    }
}
