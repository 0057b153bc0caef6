//! `cargo xtask bench`: SX benchmarks per tier against the same algorithms in Python.
//!
//! Each `benches/NAME.sx` defines `(define (run) ...)` and is timed with
//! `sx bench [--backend B --jit-threshold N] --iterations N --warmup W FILE`
//! (tier `cek` = `--backend none`); `benches/python/NAME.py` is timed with
//! `python3 benches/python/harness.py NAME N W`. Both print
//! `{"times":[...],"result":"...",...}`. `closure-memory` takes an argument
//! and is also run at n = 100 000 and n = 1 000 000 to check that peak RSS
//! stays flat (ratio < 1.2).

use crate::util::{build_release, display, output_with_timeout, release_exe, root};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Benchmarks whose `run` takes an argument, with the argument used for timing.
const ARG_BENCHES: &[(&str, &str)] = &[("closure-memory", "100000")];
const MEMORY_BENCH: &str = "closure-memory";
/// Benchmarks with a native Rust version (`sx bench --native`).
const NATIVE_BENCHES: &[&str] = &["fib", "tak"];
const MEMORY_SMALL: &str = "100000";
const MEMORY_LARGE: &str = "1000000";
const MEMORY_MAX_RATIO: f64 = 1.2;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Only benchmarks whose name contains this string.
    #[arg(long)]
    pub filter: Option<String>,
    /// Timed iterations per benchmark (the median is reported; on a shared
    /// machine fewer than about ten leave ratios near 1 to chance).
    #[arg(long, default_value_t = 12)]
    pub iterations: u32,
    /// Untimed warm-up iterations (per process).
    #[arg(long, default_value_t = 3)]
    pub warmup: u32,
    /// Split the timed iterations over this many rounds; each round runs
    /// every implementation of a benchmark (tiers, Python, native) once in
    /// turn, so that a slow spell of a shared machine falls on all of them
    /// rather than on one. Each round is a new process with its own warm-up,
    /// and the first iterations of an SX process are slower (its heap is
    /// still growing), hence the default warm-up of 3.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Skip the Python comparison.
    #[arg(long)]
    pub no_python: bool,
    /// Tiers, comma separated: `cek` (--backend none) or a backend name.
    #[arg(long, value_delimiter = ',', default_value = "cek,cranelift")]
    pub tiers: Vec<String>,
    /// --jit-threshold for non-cek tiers.
    #[arg(long, default_value_t = 1)]
    pub jit_threshold: u32,
    /// Deadline for one benchmark process, in seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Use this sx binary instead of building target/release/sx.
    #[arg(long, value_name = "PATH")]
    pub sx: Option<PathBuf>,
    /// Items of the endless-fresh-code benchmark (`sx soak`) per compiling
    /// tier and variant; 0 skips it.
    #[arg(long, default_value_t = 200_000)]
    pub soak_items: usize,
    /// Where to write bench.md and bench.json.
    #[arg(long, default_value = "bench-results")]
    pub out_dir: PathBuf,
}

/// One measured run (one benchmark on one tier or on Python).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurement {
    pub times: Vec<f64>,
    pub result: Option<String>,
    pub peak_rss_kb: Option<u64>,
    /// Compile latency of each lambda the tier compiled (microseconds).
    pub compile_us: Vec<u64>,
}

impl Measurement {
    pub fn median(&self) -> Option<f64> {
        median(&self.times)
    }
}

pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Parse the JSON object printed by `sx bench` or the Python harness: the
/// last stdout line that is a JSON object with `times`.
pub fn parse_measurement(stdout: &str) -> Result<Measurement> {
    for line in stdout.lines().rev() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(times) = v.get("times").and_then(Value::as_array) else {
            continue;
        };
        let times = times
            .iter()
            .map(|t| t.as_f64().context("a time is not a number"))
            .collect::<Result<Vec<f64>>>()?;
        let result = match v.get("result") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let peak_rss_kb = v.get("peak_rss_kb").and_then(Value::as_u64);
        let compile_us = v
            .get("compile_us")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        return Ok(Measurement {
            times,
            result,
            peak_rss_kb,
            compile_us,
        });
    }
    bail!("no JSON object with \"times\" in the output")
}

fn tier_args(tier: &str, jit_threshold: u32) -> Vec<String> {
    if tier == "cek" {
        vec!["--backend".into(), "none".into()]
    } else {
        vec![
            "--backend".into(),
            tier.into(),
            "--jit-threshold".into(),
            jit_threshold.to_string(),
        ]
    }
}

fn measure(mut cmd: Command, timeout: Duration) -> Result<Measurement> {
    let shown = display(&cmd);
    eprintln!("$ {shown}");
    let out = output_with_timeout(&mut cmd, timeout)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("`{shown}` failed ({}): {}", out.status, tail.join(" | "));
    }
    parse_measurement(&stdout).with_context(|| format!("reading the output of `{shown}`"))
}

fn sx_bench(
    sx: &Path,
    file: &Path,
    tier: &str,
    args: &BenchArgs,
    iterations: u32,
    warmup: u32,
    arg: Option<&str>,
) -> Result<Measurement> {
    let mut cmd = Command::new(sx);
    cmd.current_dir(root())
        .arg("bench")
        .args(tier_args(tier, args.jit_threshold))
        .arg("--iterations")
        .arg(iterations.to_string())
        .arg("--warmup")
        .arg(warmup.to_string());
    if let Some(a) = arg {
        cmd.arg("--arg").arg(a);
    }
    cmd.arg(file);
    measure(cmd, Duration::from_secs(args.timeout))
}

fn python_bench(
    python: &str,
    name: &str,
    args: &BenchArgs,
    arg: Option<&str>,
) -> Result<Measurement> {
    let mut cmd = Command::new(python);
    cmd.current_dir(root())
        .arg(Path::new("benches").join("python").join("harness.py"))
        .arg(name)
        .arg(args.iterations.to_string())
        .arg(args.warmup.to_string());
    if let Some(a) = arg {
        cmd.arg(a);
    }
    measure(cmd, Duration::from_secs(args.timeout))
}

/// Add one round's measurement to what the earlier rounds measured (the
/// first error sticks).
fn add_round(acc: &mut Outcome, round: Result<Measurement>) {
    let Ok(a) = acc else { return };
    match round {
        Ok(m) => {
            a.times.extend(m.times);
            a.compile_us.extend(m.compile_us);
            a.peak_rss_kb = a.peak_rss_kb.max(m.peak_rss_kb);
            if m.result.is_some() {
                a.result = m.result;
            }
        }
        Err(e) => *acc = Err(format!("{e:#}")),
    }
}

fn fmt_secs(s: f64) -> String {
    if s < 0.001 {
        format!("{s:.6}")
    } else if s < 10.0 {
        format!("{s:.4}")
    } else {
        format!("{s:.2}")
    }
}

/// A measurement or why there is none.
pub type Outcome = Result<Measurement, String>;
/// Peak RSS in KB at the small and the large n, or why there is none.
pub type RssPair = Result<(u64, u64), String>;
/// One benchmark: name, one outcome per tier, the Python outcome.
pub type BenchRow = (String, Vec<Outcome>, Option<Outcome>);

/// The result of all measurements, ready for rendering.
#[derive(Debug, Default)]
pub struct BenchReport {
    pub tiers: Vec<String>,
    pub python: bool,
    /// (benchmark, per tier, python)
    pub rows: Vec<BenchRow>,
    /// per tier: (rss small, rss large) or an error
    pub memory: Vec<(String, RssPair)>,
    pub notes: Vec<String>,
    pub iterations: u32,
    pub warmup: u32,
    /// Interleaved rounds the iterations were split over.
    pub rounds: u32,
    /// Native Rust versions, by benchmark.
    pub native: Vec<(String, Measurement)>,
    /// `sx soak` results: (tier, calls per lambda, the JSON it printed or why not).
    pub soak: Vec<(String, u32, Result<Value, String>)>,
}

/// The soak limits of the JIT issue.
const SOAK_BUDGET: &str = "16777216";
const SOAK_MAX_RSS_KB: u64 = 256 * 1024;
const SOAK_MAX_TAIL_OVER_HEAD: f64 = 1.2;

/// Does one soak result meet the limits? (`calls` 1: nothing may compile.)
fn soak_ok(calls: u32, v: &Value) -> bool {
    let rss = v["peak_rss_kb"].as_u64().unwrap_or(u64::MAX);
    let ratio = v["tail_over_head"].as_f64().unwrap_or(f64::INFINITY);
    let compiled = v["jit"]["compiled"].as_u64().unwrap_or(u64::MAX);
    rss < SOAK_MAX_RSS_KB && ratio <= SOAK_MAX_TAIL_OVER_HEAD && (calls != 1 || compiled == 0)
}

impl BenchReport {
    fn memory_ok(&self) -> bool {
        self.memory.iter().all(|(_, r)| match r {
            Ok((small, large)) => ratio(*small, *large).is_some_and(|r| r < MEMORY_MAX_RATIO),
            Err(_) => false,
        })
    }

    fn soak_ok(&self) -> bool {
        self.soak.iter().all(|(_, calls, r)| r.as_ref().is_ok_and(|v| soak_ok(*calls, v)))
    }

    fn all_ran(&self) -> bool {
        self.rows
            .iter()
            .all(|(_, tiers, _)| tiers.iter().all(Result::is_ok))
    }
}

fn ratio(small: u64, large: u64) -> Option<f64> {
    (small > 0).then(|| large as f64 / small as f64)
}

/// Markdown rendering of the report.
pub fn render_markdown(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# SX benchmarks\n");
    let _ = writeln!(
        out,
        "Median wall-clock seconds of {} timed iterations, run in {} interleaved round(s) (each \
         round runs every implementation in turn, each process after {} warm-up iteration(s)); \
         ratio = tier median / Python median (lower is better); `cek/T` = how many times faster \
         tier T is than the CEK interpreter; `T/native` = tier T median / the same algorithm in Rust \
         (`sx bench --native`: `crates/sx-cli/src/native.rs`, timed by the same loop).\n",
        r.iterations, r.rounds, r.warmup
    );
    let compiled: Vec<&String> = r.tiers.iter().filter(|t| *t != "cek").collect();
    let cek_index = r.tiers.iter().position(|t| t == "cek");
    let has_native = !r.native.is_empty();
    let mut header = vec!["benchmark".to_string()];
    header.extend(r.tiers.iter().cloned());
    if r.python {
        header.push("python".into());
        header.extend(r.tiers.iter().map(|t| format!("{t}/python")));
    }
    if cek_index.is_some() {
        header.extend(compiled.iter().map(|t| format!("cek/{t}")));
    }
    if has_native {
        header.push("native".into());
        header.extend(compiled.iter().map(|t| format!("{t}/native")));
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let aligns: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", aligns.join("|"));
    for (name, tiers, py) in &r.rows {
        let mut row = vec![name.clone()];
        let cell = |m: &Result<Measurement, String>| match m {
            Ok(m) => m.median().map(fmt_secs).unwrap_or_else(|| "-".into()),
            Err(_) => "error".into(),
        };
        row.extend(tiers.iter().map(cell));
        if r.python {
            let py_median = match py {
                Some(Ok(m)) => m.median(),
                _ => None,
            };
            row.push(match py {
                Some(m) => cell(m),
                None => "-".into(),
            });
            for t in tiers {
                let tier_median = t.as_ref().ok().and_then(Measurement::median);
                row.push(match (tier_median, py_median) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                    _ => "-".into(),
                });
            }
        }
        let med = |i: usize| tiers.get(i).and_then(|t| t.as_ref().ok()).and_then(Measurement::median);
        let ratio_cell = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        };
        if let Some(ci) = cek_index {
            for t in &compiled {
                let ti = r.tiers.iter().position(|x| x == *t).unwrap_or(0);
                row.push(ratio_cell(med(ci), med(ti)));
            }
        }
        if has_native {
            let native = r.native.iter().find(|(n, _)| n == name).and_then(|(_, m)| m.median());
            row.push(native.map(fmt_secs).unwrap_or_else(|| "-".into()));
            for t in &compiled {
                let ti = r.tiers.iter().position(|x| x == *t).unwrap_or(0);
                row.push(ratio_cell(med(ti), native));
            }
        }
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    for t in &compiled {
        let ti = r.tiers.iter().position(|x| x == *t).unwrap_or(0);
        let mut all: Vec<u64> = r
            .rows
            .iter()
            .filter_map(|(_, tiers, _)| tiers.get(ti).and_then(|m| m.as_ref().ok()))
            .flat_map(|m| m.compile_us.iter().copied())
            .collect();
        all.sort_unstable();
        if !all.is_empty() {
            let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
            let _ = writeln!(
                out,
                "\nCompile latency per lambda [{t}] over {} compilations in these benchmarks: median {} us, p99 {} us, max {} us.",
                all.len(),
                q(0.5),
                q(0.99),
                all[all.len() - 1]
            );
        }
    }
    if !r.memory.is_empty() {
        let _ = writeln!(out, "\n## {MEMORY_BENCH}: peak RSS\n");
        let _ = writeln!(
            out,
            "`sx bench --iterations 1 --warmup 0 --arg N benches/{MEMORY_BENCH}.sx`; \
             the ratio must stay below {MEMORY_MAX_RATIO} (memory must not grow with the number of dead closures).\n"
        );
        let _ = writeln!(
            out,
            "| tier | peak RSS n={MEMORY_SMALL} (KB) | peak RSS n={MEMORY_LARGE} (KB) | ratio | ok |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---|");
        for (tier, m) in &r.memory {
            match m {
                Ok((small, large)) => {
                    let rt = ratio(*small, *large);
                    let ok = rt.is_some_and(|x| x < MEMORY_MAX_RATIO);
                    let _ = writeln!(
                        out,
                        "| {tier} | {small} | {large} | {} | {} |",
                        rt.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into()),
                        if ok { "yes" } else { "**NO**" }
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "| {tier} | error | error | - | **NO** ({e}) |");
                }
            }
        }
    }
    if !r.soak.is_empty() {
        let _ = writeln!(out, "\n## Endless fresh code: `sx soak`\n");
        let _ = writeln!(
            out,
            "One process evaluates N distinct source strings, each defining a lambda and calling it \
             `calls` times (default threshold 4: one call compiles nothing, five compile every lambda \
             and the LRU churns), JIT budget {SOAK_BUDGET} bytes. Limits: peak RSS under {} MiB, mean time \
             per item over the last 10% at most {SOAK_MAX_TAIL_OVER_HEAD}x the first 10%.\n",
            SOAK_MAX_RSS_KB / 1024
        );
        let _ = writeln!(out, "| tier | calls | items | compiled | evictions | first 10% (us/item) | last 10% (us/item) | last/first | peak RSS (MiB) | ok |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for (tier, calls, res) in &r.soak {
            match res {
                Ok(v) => {
                    let _ = writeln!(
                        out,
                        "| {tier} | {calls} | {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {} |",
                        v["items"],
                        v["jit"]["compiled"],
                        v["jit"]["evictions"],
                        v["head_mean_us"].as_f64().unwrap_or(0.0),
                        v["tail_mean_us"].as_f64().unwrap_or(0.0),
                        v["tail_over_head"].as_f64().unwrap_or(0.0),
                        v["peak_rss_kb"].as_u64().unwrap_or(0) as f64 / 1024.0,
                        if soak_ok(*calls, v) { "yes" } else { "**NO**" }
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "| {tier} | {calls} | error | - | - | - | - | - | - | **NO** ({e}) |");
                }
            }
        }
    }
    let errors: Vec<String> = r
        .rows
        .iter()
        .flat_map(|(name, tiers, py)| {
            let mut v: Vec<String> = r
                .tiers
                .iter()
                .zip(tiers)
                .filter_map(|(t, m)| m.as_ref().err().map(|e| format!("{name} [{t}]: {e}")))
                .collect();
            if let Some(Err(e)) = py {
                v.push(format!("{name} [python]: {e}"));
            }
            v
        })
        .collect();
    if !r.notes.is_empty() || !errors.is_empty() {
        let _ = writeln!(out, "\n## Notes\n");
        for n in r.notes.iter().chain(errors.iter()) {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

fn measurement_json(m: &Result<Measurement, String>) -> Value {
    match m {
        Ok(m) => {
            let mut o = Map::new();
            o.insert("median_s".into(), json!(m.median()));
            o.insert("times".into(), json!(m.times));
            o.insert("result".into(), json!(m.result));
            if let Some(rss) = m.peak_rss_kb {
                o.insert("peak_rss_kb".into(), json!(rss));
            }
            if !m.compile_us.is_empty() {
                o.insert("compile_us".into(), json!(m.compile_us));
            }
            Value::Object(o)
        }
        Err(e) => json!({ "error": e }),
    }
}

/// JSON rendering: `{"benchmarks":{"fib":{"cek":{"median_s":..},"python":{"median_s":..}}}, ...}`.
pub fn render_json(r: &BenchReport) -> Value {
    let mut benches = Map::new();
    for (name, tiers, py) in &r.rows {
        let mut b = Map::new();
        for (t, m) in r.tiers.iter().zip(tiers) {
            b.insert(t.clone(), measurement_json(m));
        }
        if let Some(m) = py {
            b.insert("python".into(), measurement_json(m));
        }
        if let Some((_, m)) = r.native.iter().find(|(n, _)| n == name) {
            b.insert("native".into(), measurement_json(&Ok(m.clone())));
        }
        benches.insert(name.clone(), Value::Object(b));
    }
    let mut memory = Map::new();
    for (tier, m) in &r.memory {
        memory.insert(
            tier.clone(),
            match m {
                Ok((small, large)) => {
                    let rt = ratio(*small, *large);
                    json!({
                        "peak_rss_kb": { MEMORY_SMALL: small, MEMORY_LARGE: large },
                        "ratio": rt,
                        "max_ratio": MEMORY_MAX_RATIO,
                        "ok": rt.is_some_and(|x| x < MEMORY_MAX_RATIO),
                    })
                }
                Err(e) => json!({ "error": e, "ok": false }),
            },
        );
    }
    json!({
        "iterations": r.iterations,
        "rounds": r.rounds,
        "warmup": r.warmup,
        "tiers": r.tiers,
        "python": r.python,
        "benchmarks": benches,
        "closure_memory": memory,
        "soak": r.soak.iter().map(|(t, calls, res)| match res {
            Ok(v) => json!({"tier": t, "calls": calls, "result": v, "ok": soak_ok(*calls, v)}),
            Err(e) => json!({"tier": t, "calls": calls, "error": e, "ok": false}),
        }).collect::<Vec<_>>(),
        "notes": r.notes,
    })
}

/// Names of `benches/*.sx`, sorted, filtered.
fn list_benches(dir: &Path, filter: Option<&str>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".sx") {
            if filter.is_none_or(|f| stem.contains(f)) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

fn python_available() -> Result<String, String> {
    match Command::new("python3").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!("python3 --version exited with {}", o.status)),
        Err(e) => Err(format!("python3 not found: {e}")),
    }
}

pub fn bench(args: &BenchArgs) -> Result<bool> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let tiers: Vec<String> = args
        .tiers
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tiers.is_empty() {
        bail!("--tiers names no tier");
    }
    let dir = root().join("benches");
    let names = list_benches(&dir, args.filter.as_deref())?;
    if names.is_empty() {
        bail!("no benchmark in {} matches", dir.display());
    }
    let sx = match &args.sx {
        Some(p) => {
            std::fs::canonicalize(p).with_context(|| format!("sx binary {}", p.display()))?
        }
        None => {
            build_release(&["sx-cli"])?;
            release_exe("sx")
        }
    };

    let mut report = BenchReport {
        tiers: tiers.clone(),
        iterations: args.iterations,
        warmup: args.warmup,
        ..BenchReport::default()
    };
    let python = if args.no_python {
        report
            .notes
            .push("Python comparison skipped (--no-python).".into());
        None
    } else {
        match python_available() {
            Ok(v) => {
                report.notes.push(format!("Python: {v}."));
                Some("python3")
            }
            Err(why) => {
                eprintln!("note: {why}; Python columns skipped");
                report.notes.push(format!("Python columns skipped: {why}."));
                None
            }
        }
    };
    report.python = python.is_some();

    let rounds = args.rounds.clamp(1, args.iterations);
    let per_round = args.iterations.div_ceil(rounds);
    report.iterations = per_round * rounds;
    report.rounds = rounds;
    for name in &names {
        let file = Path::new("benches").join(format!("{name}.sx"));
        let arg = ARG_BENCHES.iter().find(|(n, _)| n == name).map(|(_, a)| *a);
        let script = dir.join("python").join(format!("{name}.py"));
        let py_runs = python.filter(|_| script.exists());
        if python.is_some() && py_runs.is_none() {
            report
                .notes
                .push(format!("{name}: no benches/python/{name}.py"));
        }
        let native = NATIVE_BENCHES.contains(&name.as_str());
        // Interleaved rounds: every implementation once per round.
        let mut per_tier: Vec<Outcome> = tiers.iter().map(|_| Ok(Measurement::default())).collect();
        let mut py: Option<Outcome> = py_runs.map(|_| Ok(Measurement::default()));
        let mut native_m: Outcome = Ok(Measurement::default());
        for _ in 0..rounds {
            for (t, acc) in tiers.iter().zip(per_tier.iter_mut()) {
                add_round(acc, sx_bench(&sx, &file, t, args, per_round, args.warmup, arg));
            }
            if let (Some(p), Some(acc)) = (py_runs, py.as_mut()) {
                let mut a = args.clone();
                a.iterations = per_round;
                add_round(acc, python_bench(p, name, &a, arg));
            }
            if native {
                let mut cmd = Command::new(&sx);
                cmd.current_dir(root())
                    .args(["bench", "--native", "--iterations", &per_round.to_string(), "--warmup", &args.warmup.to_string()])
                    .arg(&file);
                add_round(&mut native_m, measure(cmd, Duration::from_secs(args.timeout)));
            }
        }
        // All implementations must compute the same thing.
        let mut results: Vec<(String, String)> = tiers
            .iter()
            .zip(&per_tier)
            .filter_map(|(t, m)| {
                m.as_ref()
                    .ok()
                    .and_then(|m| m.result.clone())
                    .map(|r| (t.clone(), r))
            })
            .collect();
        if let Some(Ok(Measurement {
            result: Some(r), ..
        })) = &py
        {
            results.push(("python".into(), r.clone()));
        }
        if results.windows(2).any(|w| w[0].1 != w[1].1) {
            let shown: Vec<String> = results.iter().map(|(t, r)| format!("{t}={r}")).collect();
            report
                .notes
                .push(format!("{name}: results differ: {}", shown.join(", ")));
        }
        report.rows.push((name.clone(), per_tier, py));
        if native {
            match native_m {
                Ok(m) => report.native.push((name.clone(), m)),
                Err(e) => report.notes.push(format!("{name} [native]: {e}")),
            }
        }

        if name == MEMORY_BENCH {
            for t in &tiers {
                let run = |n: &str| -> Result<u64> {
                    let m = sx_bench(&sx, &file, t, args, 1, 0, Some(n))?;
                    m.peak_rss_kb.context("sx bench printed no peak_rss_kb")
                };
                let r = run(MEMORY_SMALL)
                    .and_then(|small| run(MEMORY_LARGE).map(|large| (small, large)))
                    .map_err(|e| format!("{e:#}"));
                report.memory.push((t.clone(), r));
            }
        }
    }

    if args.soak_items > 0 {
        for t in tiers.iter().filter(|t| *t != "cek") {
            for calls in [1u32, 5] {
                let mut cmd = Command::new(&sx);
                cmd.current_dir(root())
                    .args(["soak", "--backend", t, "--jit-budget", SOAK_BUDGET, "--items"])
                    .arg(args.soak_items.to_string())
                    .arg("--calls")
                    .arg(calls.to_string());
                let shown = display(&cmd);
                eprintln!("$ {shown}");
                let r = output_with_timeout(&mut cmd, Duration::from_secs(args.timeout))
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|out| {
                        let text = String::from_utf8_lossy(&out.stdout);
                        if !out.status.success() {
                            return Err(format!("`{shown}` failed ({})", out.status));
                        }
                        text.lines()
                            .rev()
                            .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
                            .ok_or_else(|| format!("`{shown}` printed no JSON"))
                    });
                report.soak.push((t.clone(), calls, r));
            }
        }
    }

    let md = render_markdown(&report);
    println!("\n{md}");
    let out_dir = if args.out_dir.is_absolute() {
        args.out_dir.clone()
    } else {
        root().join(&args.out_dir)
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    std::fs::write(out_dir.join("bench.md"), &md)
        .with_context(|| format!("writing {}", out_dir.join("bench.md").display()))?;
    let json_text = serde_json::to_string_pretty(&render_json(&report))?;
    std::fs::write(out_dir.join("bench.json"), json_text + "\n")
        .with_context(|| format!("writing {}", out_dir.join("bench.json").display()))?;
    eprintln!("wrote {}/bench.md and bench.json", out_dir.display());

    let mut ok = true;
    if !report.all_ran() {
        eprintln!("bench: some SX benchmarks failed (see Notes)");
        ok = false;
    }
    if !report.soak_ok() {
        eprintln!("bench: the soak benchmark exceeded its limits (see the table)");
        ok = false;
    }
    if !report.memory_ok() {
        eprintln!("bench: {MEMORY_BENCH} peak RSS grew by {MEMORY_MAX_RATIO}x or more (or could not be measured)");
        ok = false;
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(times: &[f64], result: &str) -> Measurement {
        Measurement {
            times: times.to_vec(),
            result: Some(result.into()),
            peak_rss_kb: None,
            compile_us: Vec::new(),
        }
    }

    #[test]
    fn rounds_add_up_and_the_first_error_sticks() {
        let one = |t: f64, rss: u64| Measurement { times: vec![t], result: Some("7".into()), peak_rss_kb: Some(rss), compile_us: vec![5] };
        let mut acc: Outcome = Ok(Measurement::default());
        add_round(&mut acc, Ok(one(2.0, 10)));
        add_round(&mut acc, Ok(one(1.0, 30)));
        let m = acc.clone().expect("two good rounds");
        assert_eq!(m.times, vec![2.0, 1.0]);
        assert_eq!(m.compile_us, vec![5, 5]);
        assert_eq!(m.peak_rss_kb, Some(30));
        assert_eq!(m.result.as_deref(), Some("7"));
        add_round(&mut acc, Err(anyhow::anyhow!("crashed")));
        add_round(&mut acc, Ok(one(3.0, 40)));
        assert_eq!(acc, Err("crashed".to_string()));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn parses_bench_output() -> Result<()> {
        let out =
            "loading...\n{\"times\":[0.5,0.25,1],\"result\":\"832040\",\"peak_rss_kb\":12345}\n";
        let m = parse_measurement(out)?;
        assert_eq!(m.times, vec![0.5, 0.25, 1.0]);
        assert_eq!(m.result.as_deref(), Some("832040"));
        assert_eq!(m.peak_rss_kb, Some(12345));
        assert_eq!(m.median(), Some(0.5));
        // python harness: result may be a number
        let m = parse_measurement("{\"times\":[1.0],\"result\":92}")?;
        assert_eq!(m.result.as_deref(), Some("92"));
        assert!(parse_measurement("nothing here").is_err());
        assert!(parse_measurement("{\"times\":[\"x\"]}").is_err());
        Ok(())
    }

    #[test]
    fn renders_tables() {
        let report = BenchReport {
            tiers: vec!["cek".into(), "cranelift".into()],
            python: true,
            rows: vec![
                (
                    "fib".into(),
                    vec![Ok(m(&[2.0, 4.0, 3.0], "832040")), Ok(m(&[0.5], "832040"))],
                    Some(Ok(m(&[1.0], "832040"))),
                ),
                (
                    "tak".into(),
                    vec![Ok(m(&[1.0], "7")), Err("boom".into())],
                    None,
                ),
            ],
            memory: vec![
                ("cek".into(), Ok((1000, 1100))),
                ("cranelift".into(), Ok((1000, 2000))),
            ],
            notes: vec!["a note".into()],
            iterations: 3,
            rounds: 1,
            warmup: 1,
            native: vec![("fib".into(), m(&[0.25], "832040"))],
            soak: vec![
                ("cranelift".into(), 1, Ok(json!({"items": 100, "head_mean_us": 10.0, "tail_mean_us": 11.0, "tail_over_head": 1.1, "peak_rss_kb": 1000, "jit": {"compiled": 0, "evictions": 0}}))),
                ("cranelift".into(), 5, Ok(json!({"items": 100, "head_mean_us": 10.0, "tail_mean_us": 13.0, "tail_over_head": 1.3, "peak_rss_kb": 1000, "jit": {"compiled": 100, "evictions": 90}}))),
            ],
        };
        let md = render_markdown(&report);
        assert!(md.contains(
            "| benchmark | cek | cranelift | python | cek/python | cranelift/python | cek/cranelift | native | cranelift/native |"
        ));
        assert!(md.contains("| fib | 3.0000 | 0.5000 | 1.0000 | 3.00x | 0.50x | 6.00x | 0.2500 | 2.00x |"));
        assert!(md.contains("| tak | 1.0000 | error | - | - | - | - | - | - |"));
        assert!(md.contains("| cek | 1000 | 1100 | 1.100 | yes |"));
        assert!(md.contains("| cranelift | 1000 | 2000 | 2.000 | **NO** |"));
        assert!(md.contains("- tak [cranelift]: boom"));
        assert!(!report.memory_ok());
        assert!(!report.all_ran());

        let j = render_json(&report);
        assert_eq!(j["benchmarks"]["fib"]["cek"]["median_s"], 3.0);
        assert_eq!(j["benchmarks"]["fib"]["python"]["median_s"], 1.0);
        assert_eq!(j["benchmarks"]["tak"]["cranelift"]["error"], "boom");
        assert_eq!(j["closure_memory"]["cek"]["ok"], true);
        assert_eq!(j["closure_memory"]["cranelift"]["ok"], false);
        assert_eq!(j["closure_memory"]["cek"]["peak_rss_kb"]["1000000"], 1100);
        assert_eq!(j["benchmarks"]["fib"]["native"]["median_s"], 0.25);
        assert!(md.contains("| cranelift | 1 | 100 | 0 | 0 | 10.0 | 11.0 | 1.10 | 1.0 | yes |"), "{md}");
        assert!(md.contains("| cranelift | 5 | 100 | 100 | 90 | 10.0 | 13.0 | 1.30 | 1.0 | **NO** |"));
        assert!(!report.soak_ok());
        assert_eq!(j["soak"][0]["ok"], true);
    }

    #[test]
    fn tier_arguments() {
        assert_eq!(tier_args("cek", 1), vec!["--backend", "none"]);
        assert_eq!(
            tier_args("llvm", 2),
            vec!["--backend", "llvm", "--jit-threshold", "2"]
        );
    }

    #[test]
    fn every_bench_has_a_python_twin() -> Result<()> {
        let dir = root().join("benches");
        let names = list_benches(&dir, None)?;
        assert!(names.len() >= 8, "{names:?}");
        for n in &names {
            assert!(
                dir.join("python").join(format!("{n}.py")).exists(),
                "{n}.py missing"
            );
        }
        Ok(())
    }
}
