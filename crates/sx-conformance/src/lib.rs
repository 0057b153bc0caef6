//! The SX conformance runner (modelled on boa's test262 runner).
//!
//! * [`discover`] finds `conformance/<topic>/**/*.sx` and splits files into batches;
//! * [`runner`] runs one batch as a child `sx test --jsonl ...` with a deadline,
//!   turning crashes, timeouts and garbage output into per-file failures;
//! * [`run_suite`] runs every batch of every tier on a pool of threads with a
//!   progress bar and folds the outcomes into a [`report::RunReport`];
//! * [`report`] has the JSON format, the pass-rate table and the failure list;
//! * [`compare`] diffs two JSON reports.

pub mod compare;
pub mod discover;
pub mod protocol;
pub mod report;
pub mod runner;

use discover::{make_batches, TestFile};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use report::{RunReport, TierBuilder, TierReport};
use runner::{run_batch, BatchOutcome, Tier};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar (for terminals).
    Bar,
    /// One plain line per finished batch (for logs / CI).
    Plain,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// `Bar` when stderr is a terminal, else `Plain`.
    pub fn auto() -> ProgressMode {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Plain
        }
    }
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub sx: PathBuf,
    pub tiers: Vec<Tier>,
    pub batch_size: usize,
    pub jobs: usize,
    pub timeout: Duration,
    pub progress: ProgressMode,
}

struct Job<'a> {
    tier: usize,
    files: &'a [TestFile],
}

/// Run every file on every tier and build the report.
pub fn run_suite(opts: &RunOptions, files: &[TestFile]) -> RunReport {
    let batches: Vec<Vec<TestFile>> = make_batches(files, opts.batch_size);
    // Batch-major order: each batch runs on every tier before the next one
    // starts, so the tiers share the machine's conditions and the time per
    // tier compares like with like (a slow phase of a shared machine does
    // not land on one tier only).
    let jobs: Vec<Job> = batches
        .iter()
        .flat_map(|b| (0..opts.tiers.len()).map(move |tier| Job { tier, files: b }))
        .collect();
    let total_files = (files.len() * opts.tiers.len()) as u64;

    let bar = match opts.progress {
        ProgressMode::Bar => {
            let pb = ProgressBar::with_draw_target(Some(total_files), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40.cyan/blue}] {pos}/{len} files ({eta} left) {msg}",
            ) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb
        }
        _ => ProgressBar::hidden(),
    };
    let failed_so_far = AtomicUsize::new(0);
    let batches_done = AtomicUsize::new(0);
    let next_job = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, BatchOutcome)>();
    let workers = opts.jobs.max(1).min(jobs.len().max(1));

    let mut outcomes: Vec<Option<BatchOutcome>> = Vec::new();
    outcomes.resize_with(jobs.len(), || None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (jobs, bar, next_job, failed_so_far, batches_done) =
                (&jobs, &bar, &next_job, &failed_so_far, &batches_done);
            scope.spawn(move || loop {
                let i = next_job.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(i) else { break };
                let tier = &opts.tiers[job.tier];
                let mut on_done = |_: &runner::FileOutcome| bar.inc(1);
                let out = run_batch(&opts.sx, tier, job.files, opts.timeout, &mut on_done);
                let unfinished = out.files.iter().filter(|f| !f.completed).count() as u64;
                bar.inc(unfinished);
                let failed = out.failed_count();
                let total_failed = failed_so_far.fetch_add(failed, Ordering::SeqCst) + failed;
                let n_done = batches_done.fetch_add(1, Ordering::SeqCst) + 1;
                if total_failed > 0 {
                    bar.set_message(format!("{total_failed} failed"));
                }
                match opts.progress {
                    ProgressMode::Plain => {
                        let problem = out
                            .problem
                            .as_deref()
                            .map(|p| format!(" — {p}"))
                            .unwrap_or_default();
                        eprintln!(
                            "[{n_done}/{}] tier {}: {} files, {failed} failed, {:.1}s{problem}",
                            jobs.len(),
                            tier.name,
                            job.files.len(),
                            out.elapsed.as_secs_f64()
                        );
                    }
                    ProgressMode::Bar => {
                        if let Some(p) = &out.problem {
                            bar.println(format!("tier {}: {p}", tier.name));
                        }
                    }
                    ProgressMode::Quiet => {}
                }
                if tx.send((i, out)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (i, out) in rx {
            outcomes[i] = Some(out);
        }
    });
    bar.finish_and_clear();

    let mut builders: Vec<TierBuilder> = opts.tiers.iter().map(|_| TierBuilder::new()).collect();
    let mut seconds: Vec<f64> = vec![0.0; opts.tiers.len()];
    for (job, out) in jobs.iter().zip(outcomes) {
        // Every job sends exactly one outcome (a worker panic would have
        // propagated out of the scope above); this is only defensive.
        let out = out.unwrap_or_else(|| BatchOutcome {
            files: job
                .files
                .iter()
                .map(|f| runner::FileOutcome {
                    file: f.clone(),
                    tests: Vec::new(),
                    jit: None,
                    completed: false,
                    failure: Some("batch crashed: runner worker panicked".into()),
                })
                .collect(),
            problem: Some("batch crashed: runner worker panicked".into()),
            warnings: Vec::new(),
            elapsed: Duration::ZERO,
        });
        seconds[job.tier] += out.elapsed.as_secs_f64();
        builders[job.tier].add_batch(&out);
    }
    RunReport {
        tiers: opts
            .tiers
            .iter()
            .zip(builders)
            .zip(seconds)
            .map(|((t, b), secs)| TierReport {
                name: t.name.clone(),
                data: b.finish(),
                batch_seconds: secs,
            })
            .collect(),
    }
}
