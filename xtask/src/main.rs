//! Project automation, run as `cargo xtask <command>` (alias in .cargo/config.toml).
//!
//! * `cargo xtask test` — unit tests (nextest, else cargo test), cargo-deny
//!   (licenses, sources, bans), then the conformance suite on the CEK and
//!   Cranelift tiers (threshold 1, at least 90% of lambda calls compiled).
//! * `cargo xtask conformance [ARGS...]` — build `sx` and the runner in
//!   release mode and run `sx-conformance --sx target/release/sx ARGS...`.
//! * `cargo xtask compare OLD.json NEW.json` — diff two conformance reports.
//! * `cargo xtask bench [--filter S] [--iterations N] [--no-python] [--tiers ...]`
//!   — SX benchmarks per tier against the Python versions.

mod bench;
mod ci;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "xtask", about = "SX project automation (cargo xtask ...)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Unit tests, cargo-deny, then the conformance suite (tiers cek and cranelift at threshold 1, with the compiled-call coverage check); what CI runs.
    Test,
    /// Build sx and sx-conformance (release) and run the suite; other arguments go to sx-conformance
    /// (e.g. --tiers cek,cranelift --json out.json --filter lists).
    #[command(disable_help_flag = true)]
    Conformance {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compare two conformance JSON reports (fixed / broken / added / removed).
    Compare {
        old: String,
        new: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run benches/*.sx on each tier and benches/python/*.py; write bench-results/.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<bool> = match cli.command {
        Cmd::Test => ci::test(),
        Cmd::Conformance { args } => ci::conformance(&args),
        Cmd::Compare { old, new, args } => ci::compare(&old, &new, &args),
        Cmd::Bench(args) => bench::bench(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
