//! `sx`: run SX files, evaluate forms, a REPL, the conformance-test
//! protocol and the benchmark protocol.

use clap::{Parser, Subcommand};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use sx::{Engine, EngineOptions, SxError};

mod native;
mod repl;

/// The compiled tier when this build has it, else the interpreter.
#[cfg(feature = "cranelift")]
const DEFAULT_BACKEND: &str = "cranelift";
#[cfg(not(feature = "cranelift"))]
const DEFAULT_BACKEND: &str = "none";

#[derive(Parser)]
#[command(name = "sx", version, about = "The SX language (Rust host)", args_conflicts_with_subcommands = true)]
struct Cli {
    /// Evaluate FORMS and print the value of the last one.
    #[arg(short = 'e', long = "eval", value_name = "FORMS")]
    eval: Option<String>,
    /// Execution backend: none (the CEK interpreter), cranelift, llvm or wasm
    /// (each needs its cargo feature). Default: cranelift when built in.
    #[arg(long, global = true, default_value = DEFAULT_BACKEND)]
    backend: String,
    /// Compile a lambda after N calls (0 = never).
    #[arg(long, global = true, value_name = "N")]
    jit_threshold: Option<u32>,
    /// Byte budget of compiled code and its metadata.
    #[arg(long, global = true, value_name = "BYTES")]
    jit_budget: Option<usize>,
    /// Print the JIT report to stderr at exit.
    #[arg(long, global = true)]
    stats: bool,
    /// Continuation frames allowed before `Maximum recursion depth exceeded`.
    #[arg(long, global = true)]
    max_depth: Option<usize>,
    /// A file to run.
    file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Interactive read-eval-print loop.
    Repl,
    /// Run test files and report each test (used by the conformance runner).
    Test {
        /// Print one JSON object per line.
        #[arg(long)]
        jsonl: bool,
        files: Vec<PathBuf>,
    },
    /// Time `(run)` from a benchmark file.
    Bench {
        #[arg(long, default_value_t = 5)]
        iterations: usize,
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// Argument passed to `(run X)`, read as SX.
        #[arg(long)]
        arg: Option<String>,
        /// Time the native Rust version of the benchmark named by FILE's
        /// stem instead (fib, tak).
        #[arg(long)]
        native: bool,
        file: PathBuf,
    },
    /// Evaluate endless fresh code in this one process: ITEMS distinct
    /// source strings, each defining a lambda and calling it CALLS times;
    /// prints JSON with the mean time per item over the first and the last
    /// 10%, peak RSS and the JIT statistics.
    Soak {
        #[arg(long, default_value_t = 200_000)]
        items: usize,
        #[arg(long, default_value_t = 5)]
        calls: usize,
    },
}

fn engine(cli: &Cli) -> Result<Engine, String> {
    let backend: sx::Backend = cli.backend.parse()?;
    let mut opts = EngineOptions { backend, jit_threshold: cli.jit_threshold, jit_budget: cli.jit_budget, ..EngineOptions::default() };
    if let Some(d) = cli.max_depth {
        opts.max_depth = d;
    }
    Engine::with_options(opts).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `SX_LOG=sx_jit=debug` (any tracing filter) logs compiles, declines,
    // evictions, resets and deoptimisations to stderr.
    if let Ok(filter) = std::env::var("SX_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mut eng = match engine(&cli) {
        Ok(e) => e,
        Err(m) => {
            eprintln!("sx: {m}");
            return ExitCode::from(2);
        }
    };
    let code = run(&cli, &mut eng);
    if cli.stats {
        let _ = std::io::stdout().flush();
        eprint!("{}", eng.jit_report());
    }
    code
}

fn run(cli: &Cli, eng: &mut Engine) -> ExitCode {
    if let Some(src) = &cli.eval {
        return match eng.eval_str(src, "<eval>") {
            Ok(v) => {
                let s = eng.inspect(v);
                let _ = std::io::stdout().flush();
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => report(eng, &e),
        };
    }
    match &cli.cmd {
        Some(Cmd::Repl) => repl::run(eng, &cli.backend),
        Some(Cmd::Test { jsonl, files, .. }) => run_tests(cli, files, *jsonl),
        Some(Cmd::Bench { iterations, warmup, native: true, file, .. }) => {
            let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            match native::measure(&name, *iterations, *warmup) {
                Some((times, result)) => {
                    println!("{}", json!({"times": times, "result": result}));
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("sx bench: no native version of '{name}' (there are: fib, tak)");
                    ExitCode::from(2)
                }
            }
        }
        Some(Cmd::Bench { iterations, warmup, arg, file, .. }) => bench(eng, file, *iterations, *warmup, arg.as_deref()),
        Some(Cmd::Soak { items, calls }) => soak(eng, *items, *calls),
        None => match &cli.file {
            Some(f) => match eng.run_file(f) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => report(eng, &e),
            },
            None => repl::run(eng, &cli.backend),
        },
    }
}

fn report(eng: &Engine, e: &SxError) -> ExitCode {
    let _ = std::io::stdout().flush();
    eprint!("{}", eng.render_error(e));
    ExitCode::from(1)
}

fn run_tests(cli: &Cli, files: &[PathBuf], jsonl: bool) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in files {
        let file = f.display().to_string();
        let mut eng = match engine(cli) {
            Ok(e) => e,
            Err(m) => {
                eprintln!("sx: {m}");
                return ExitCode::from(2);
            }
        };
        eng.set_output(Box::new(std::io::sink()));
        let src = match std::fs::read_to_string(f) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(out, "{}", json!({"event":"file-error","file":file,"message":format!("cannot read: {e}")}));
                failed += 1;
                continue;
            }
        };
        let (outcomes, err) = eng.run_tests(&src, &file);
        for t in &outcomes {
            if t.failure.is_none() {
                passed += 1;
            } else {
                failed += 1;
            }
            if jsonl {
                let mut o = json!({"event":"test","file":file,"suite":t.suite,"name":t.name,"ok":t.failure.is_none()});
                if let Some(m) = &t.failure {
                    o["message"] = json!(m);
                }
                let _ = writeln!(out, "{o}");
            } else if let Some(m) = &t.failure {
                let _ = writeln!(out, "FAIL {file} :: {} :: {}: {m}", t.suite, t.name);
            }
        }
        if let Some(e) = err {
            failed += 1;
            if jsonl {
                let _ = writeln!(out, "{}", json!({"event":"file-error","file":file,"message":e.to_string()}));
            } else {
                let _ = writeln!(out, "ERROR {file}: {e}");
            }
        }
        if jsonl {
            let mut jit = serde_json::Map::new();
            for (k, v) in eng.jit_stats_fields() {
                jit.insert(k.to_string(), json!(v));
            }
            jit.insert("backend".into(), json!(cli.backend));
            if let Some((calls, compiled)) = eng.jit_call_coverage() {
                jit.insert("lambda-calls".into(), json!(calls));
                jit.insert("compiled-calls".into(), json!(compiled));
            }
            if let Some(us) = eng.jit_compile_micros() {
                jit.insert("compile-us".into(), json!(us));
            }
            let _ = writeln!(out, "{}", json!({"event":"file-done","file":file,"jit":jit}));
        }
        let _ = out.flush();
    }
    if jsonl {
        let _ = writeln!(out, "{}", json!({"event":"done"}));
    } else {
        let _ = writeln!(out, "{passed} passed, {failed} failed");
    }
    ExitCode::SUCCESS
}

fn bench(eng: &mut Engine, file: &std::path::Path, iterations: usize, warmup: usize, arg: Option<&str>) -> ExitCode {
    if let Err(e) = eng.run_file(file) {
        return report(eng, &e);
    }
    let call = match arg {
        Some(a) => format!("(run {a})"),
        None => "(run)".to_string(),
    };
    let mut last = String::new();
    for _ in 0..warmup {
        if let Err(e) = eng.eval_str(&call, "<bench>") {
            return report(eng, &e);
        }
    }
    let mut times = Vec::new();
    for _ in 0..iterations {
        let t = Instant::now();
        match eng.eval_str(&call, "<bench>") {
            Ok(v) => {
                times.push(t.elapsed().as_secs_f64());
                last = eng.inspect(v);
            }
            Err(e) => return report(eng, &e),
        }
    }
    let mut out = json!({"times": times, "result": last, "peak_rss_kb": peak_rss_kb()});
    if let Some(lat) = eng.jit_compile_latencies_us() {
        out["compile_us"] = json!(lat);
    }
    println!("{out}");
    ExitCode::SUCCESS
}

/// `sx soak`: see [`Cmd::Soak`].
fn soak(eng: &mut Engine, items: usize, calls: usize) -> ExitCode {
    if items < 10 {
        eprintln!("sx soak: --items must be at least 10");
        return ExitCode::from(2);
    }
    let mut times = Vec::with_capacity(items);
    let mut checksum: i64 = 0;
    let tenth = items / 10;
    // CPU time of the process at each decile boundary: wall-clock time on a
    // shared machine also counts time the host gave to others.
    let mut cpu_marks = vec![process_cpu_seconds()];
    for i in 0..items {
        if i > 0 && i % tenth == 0 && cpu_marks.len() < 10 {
            cpu_marks.push(process_cpu_seconds());
        }
        // Distinct source text and distinct code every time; the lambda is
        // anonymous in a `let`, then named, so both kinds are exercised.
        let mut src = format!(
            "(define soak-f (let ((k {i})) (fn (x) (let ((y (* x 3))) (if (> y {lim}) (+ y k) (- (* y 2) k {j}))))))",
            lim = i % 17,
            j = i % 5
        );
        for c in 0..calls {
            src.push_str(&format!("(soak-f {c})"));
        }
        let t = Instant::now();
        match eng.eval_str(&src, "<soak>") {
            Ok(v) => {
                times.push(t.elapsed().as_secs_f64());
                checksum = checksum.wrapping_add(eng.inspect(v).parse::<i64>().unwrap_or(0));
            }
            Err(e) => return report(eng, &e),
        }
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    cpu_marks.push(process_cpu_seconds());
    let cpu_deciles: Vec<f64> = cpu_marks.windows(2).map(|w| (w[1] - w[0]) / tenth as f64 * 1e6).collect();
    let cpu_ratio = match (cpu_deciles.first(), cpu_deciles.last()) {
        (Some(h), Some(t)) if *h > 0.0 => Some(t / h),
        _ => None,
    };
    let head = mean(&times[..tenth]);
    let tail = mean(&times[items - tenth..]);
    let deciles: Vec<f64> = times.chunks(tenth).take(10).map(|c| mean(c) * 1e6).collect();
    let mut jit = serde_json::Map::new();
    for (k, v) in eng.jit_stats_fields() {
        jit.insert(k.to_string(), json!(v));
    }
    let out = json!({
        "items": items,
        "calls": calls,
        "head_mean_us": head * 1e6,
        "tail_mean_us": tail * 1e6,
        "tail_over_head": tail / head,
        "decile_mean_us": deciles,
        "cpu_decile_mean_us": cpu_deciles,
        "cpu_tail_over_head": cpu_ratio,
        "total_s": times.iter().sum::<f64>(),
        "peak_rss_kb": peak_rss_kb(),
        "checksum": checksum,
        "jit": jit,
    });
    println!("{out}");
    ExitCode::SUCCESS
}

/// User plus system CPU time of this process so far (Linux `/proc/self/stat`,
/// clock ticks of 10 ms), in seconds; 0 where unavailable.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which ends with ')'): state is field 3,
    // utime 14 and stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:").and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok()))
}
