//! `sx-conformance`: run the SX conformance suite, or compare two reports.
//!
//! ```text
//! sx-conformance --sx target/release/sx [--tiers cek,cranelift] [--json out.json] ...
//! sx-conformance compare OLD.json NEW.json
//! ```
//! Exit status: 0 all passed / nothing broke, 1 failures / something broke, 2 usage or I/O error.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use sx_conformance::compare::{anything_broke, compare, render_compare};
use sx_conformance::discover::discover;
use sx_conformance::report::{render_failures, render_table, ReportJson};
use sx_conformance::runner::Tier;
use sx_conformance::{run_suite, ProgressMode, RunOptions};

#[derive(Parser, Debug)]
#[command(
    name = "sx-conformance",
    about = "Run the SX conformance suite in batched child processes, per tier",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the suite (the default when no subcommand is given).
    Run(RunArgs),
    /// Compare two JSON reports: fixed, broken, added, removed tests per tier.
    Compare {
        old: PathBuf,
        new: PathBuf,
        /// Show at most this many lines per list.
        #[arg(long, default_value_t = 200)]
        max_lines: usize,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Path of the `sx` binary.
    #[arg(long, value_name = "PATH")]
    sx: Option<PathBuf>,
    /// Directory holding `<topic>/**/*.sx`.
    #[arg(long, value_name = "DIR", default_value = "conformance")]
    root: PathBuf,
    /// Tiers to run, comma separated: `cek` (--backend none) or a backend name.
    #[arg(long, value_delimiter = ',', default_value = "cek")]
    tiers: Vec<String>,
    /// --jit-threshold passed to non-cek tiers.
    #[arg(long, value_name = "N", default_value_t = 1)]
    jit_threshold: u32,
    /// Maximum number of files per child process.
    #[arg(long, value_name = "N", default_value_t = 8)]
    batch_size: usize,
    /// Parallel child processes (default: available cores).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Deadline per batch, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    timeout: f64,
    /// Keep only files whose path contains this string.
    #[arg(long, value_name = "S")]
    filter: Option<String>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Fail when a compiling tier ran compiled code for less than this
    /// percentage of all lambda calls.
    #[arg(long, value_name = "PCT")]
    min_coverage: Option<f64>,
    /// Failed tests listed at the end (the rest are counted).
    #[arg(long, value_name = "N", default_value_t = 50)]
    max_failures: usize,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
    /// Succeed when no test file is found (default: that is an error).
    #[arg(long)]
    allow_empty: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Progress {
    Auto,
    Bar,
    Plain,
    Quiet,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Compare {
            old,
            new,
            max_lines,
        }) => run_compare(&old, &new, max_lines),
        Some(Command::Run(args)) => run(args),
        None => run(cli.run),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sx-conformance: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_compare(old: &std::path::Path, new: &std::path::Path, max_lines: usize) -> Result<bool> {
    let o = ReportJson::load(old)?;
    let n = ReportJson::load(new)?;
    let diffs = compare(&o, &n);
    print!("{}", render_compare(&diffs, max_lines));
    let broke = anything_broke(&diffs);
    if broke {
        let count: usize = diffs.iter().map(|d| d.broken.len()).sum();
        println!("compare: {count} test(s) broke");
    } else {
        println!("compare: nothing broke");
    }
    Ok(!broke)
}

fn run(args: RunArgs) -> Result<bool> {
    let Some(sx) = args.sx else {
        bail!("--sx PATH is required (the sx binary to test, e.g. target/release/sx)");
    };
    let sx = find_executable(&sx).with_context(|| {
        format!(
            "sx binary {} not found (build it with `cargo build --release -p sx-cli`)",
            sx.display()
        )
    })?;
    // Child processes may run with another cwd in the future; an absolute
    // path keeps `--sx target/release/sx` working regardless.
    let sx = std::fs::canonicalize(&sx).with_context(|| format!("resolving {}", sx.display()))?;
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    let mut tiers: Vec<Tier> = Vec::new();
    for name in args
        .tiers
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        if tiers.iter().any(|t| t.name == name) {
            continue;
        }
        tiers.push(Tier::from_name(name, args.jit_threshold));
    }
    if tiers.is_empty() {
        bail!("--tiers names no tier");
    }
    let files = discover(&args.root, args.filter.as_deref())?;
    if files.is_empty() {
        let what = match &args.filter {
            Some(f) => format!(
                "no .sx file under {} matches --filter {f:?}",
                args.root.display()
            ),
            None => format!("no .sx file under {}", args.root.display()),
        };
        if args.allow_empty {
            println!("{what}");
            println!("conformance: 0 passed, 0 failed");
            return Ok(true);
        }
        bail!("{what}");
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let progress = match args.progress {
        Progress::Auto => ProgressMode::auto(),
        Progress::Bar => ProgressMode::Bar,
        Progress::Plain => ProgressMode::Plain,
        Progress::Quiet => ProgressMode::Quiet,
    };
    let opts = RunOptions {
        sx,
        tiers,
        batch_size: args.batch_size,
        jobs,
        timeout: Duration::from_secs_f64(args.timeout),
        progress,
    };
    let names: Vec<&str> = opts.tiers.iter().map(|t| t.name.as_str()).collect();
    if progress != ProgressMode::Quiet {
        eprintln!(
        "sx-conformance: {} files × tiers [{}], batches of ≤{}, {} jobs, {}s deadline per batch",
        files.len(),
        names.join(", "),
        opts.batch_size,
        opts.jobs,
        args.timeout
        );
    }
    let started = Instant::now();
    let report = run_suite(&opts, &files);

    println!();
    print!("{}", render_table(&report.tiers));
    for t in &report.tiers {
        for p in &t.data.batch_problems {
            println!("[{}] {p}", t.name);
        }
    }
    let warnings: usize = report.tiers.iter().map(|t| t.data.warnings.len()).sum();
    if warnings > 0 {
        println!("{warnings} warning(s):");
        for t in &report.tiers {
            for w in t.data.warnings.iter().take(20) {
                println!("  [{}] {w}", t.name);
            }
        }
    }
    let mut coverage_ok = true;
    for t in report.tiers.iter().filter(|t| t.name != "cek") {
        if let Some(line) = jit_summary(&t.data) {
            println!("JIT [{}]: {line}", t.name);
        }
        if let Some((table, total)) = coverage_table(&t.data) {
            println!("\nCompiled-call coverage [{}] (lambda calls that ran compiled code):", t.name);
            print!("{table}");
            if let Some(min) = args.min_coverage {
                if total < min {
                    println!("coverage {total:.1}% is below the required {min:.1}%");
                    coverage_ok = false;
                }
            }
        } else if args.min_coverage.is_some() {
            println!("tier {} reported no call coverage", t.name);
            coverage_ok = false;
        }
    }
    let failures = render_failures(&report.tiers, args.max_failures);
    if !failures.is_empty() {
        println!();
        print!("{failures}");
    }
    if let Some(path) = &args.json {
        report.to_json().write(path)?;
        println!("JSON report written to {}", path.display());
    }
    if report.tiers.len() > 1 {
        let base = report.tiers[0].batch_seconds;
        let shown: Vec<String> = report
            .tiers
            .iter()
            .map(|t| {
                let ratio = if base > 0.0 { format!(" ({:.2}x)", t.batch_seconds / base) } else { String::new() };
                let compiling = match compile_seconds(&t.data) {
                    Some(s) => format!(" of which compiling {s:.2}s"),
                    None => String::new(),
                };
                format!("{} {:.1}s{ratio}{compiling}", t.name, t.batch_seconds)
            })
            .collect();
        println!("time per tier (sum of batch wall times): {}", shown.join(", "));
    }
    println!("finished in {:.1}s", started.elapsed().as_secs_f64());
    println!(
        "conformance: {} passed, {} failed",
        report.passed(),
        report.failed()
    );
    Ok(!report.has_failures() && coverage_ok)
}

/// `path` itself when it exists, else (for a bare name) the first match on PATH.
fn find_executable(path: &std::path::Path) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_path_buf());
    }
    if path.components().count() != 1 {
        return None;
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|d| d.join(path))
        .find(|p| p.is_file())
}

/// Per topic: lambda calls and the share that ran compiled code; then the
/// total percentage.
fn coverage_table(t: &sx_conformance::report::TierJson) -> Option<(String, f64)> {
    let get = |v: &serde_json::Value, k: &str| v.get("stats").and_then(|s| s.get(k)).and_then(serde_json::Value::as_u64);
    let mut out = String::new();
    let (mut calls, mut compiled) = (0u64, 0u64);
    for (topic, v) in &t.jit_by_topic {
        let (Some(c), Some(k)) = (get(v, "lambda-calls"), get(v, "compiled-calls")) else { continue };
        calls += c;
        compiled += k;
        let pct = if c == 0 { 100.0 } else { 100.0 * k as f64 / c as f64 };
        out.push_str(&format!("  {topic:<16} {k:>10} of {c:>10}  {pct:5.1}%\n"));
    }
    if out.is_empty() {
        return None;
    }
    let total = if calls == 0 { 100.0 } else { 100.0 * compiled as f64 / calls as f64 };
    out.push_str(&format!("  {:<16} {compiled:>10} of {calls:>10}  {total:5.1}%\n", "TOTAL"));
    Some((out, total))
}

/// Coverage of compiled code in a tier, from the `jit` objects of `file-done`.
/// Seconds a tier's children spent compiling (their `compile-us`), if they
/// reported it.
fn compile_seconds(t: &sx_conformance::report::TierJson) -> Option<f64> {
    let us: Vec<u64> = t.jit_by_topic.values().filter_map(|v| v.get("stats")?.get("compile-us")?.as_u64()).collect();
    (!us.is_empty()).then(|| us.iter().sum::<u64>() as f64 / 1e6)
}

fn jit_summary(t: &sx_conformance::report::TierJson) -> Option<String> {
    let sum = |key: &str| -> u64 {
        t.jit_by_topic
            .values()
            .filter_map(|v| v.get(key).and_then(serde_json::Value::as_u64))
            .sum()
    };
    let files = sum("files");
    if files == 0 {
        return None;
    }
    Some(format!(
        "{} of {files} completed files reported jit-stats; compiled code in {}, compiled code hit in {}",
        sum("files_reporting"),
        sum("files_with_compiled"),
        sum("files_with_hits")
    ))
}
