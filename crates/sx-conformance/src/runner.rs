//! Running batches of test files in child `sx test --jsonl` processes.
//!
//! A batch is one child process. Its stdout is read line by line on a thread
//! and fed to the batch state as it arrives (so progress is live); the main
//! loop of the batch waits for lines up to the batch deadline, kills the child
//! when the deadline passes, and afterwards gives every file whose
//! `file-done` never came a failure outcome naming what went wrong.

use crate::discover::TestFile;
use crate::protocol::{parse_line, Event, Line};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Name of the failure outcome recorded for a `file-error` event.
pub const FILE_ERROR_NAME: &str = "<file-error>";

/// A tier: one full run of the suite with one backend configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    /// Extra arguments for `sx test` (`--backend ...`).
    pub args: Vec<String>,
}

impl Tier {
    /// `cek` → `--backend none`; any other name T → `--backend T --jit-threshold N`.
    pub fn from_name(name: &str, jit_threshold: u32) -> Tier {
        let args = if name == "cek" {
            vec!["--backend".to_string(), "none".to_string()]
        } else {
            vec![
                "--backend".to_string(),
                name.to_string(),
                "--jit-threshold".to_string(),
                jit_threshold.to_string(),
            ]
        };
        Tier {
            name: name.to_string(),
            args,
        }
    }
}

/// One test's result as reported by `sx`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    pub suite: String,
    pub name: String,
    pub ok: bool,
    pub message: Option<String>,
}

/// Everything learnt about one file in one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutcome {
    pub file: TestFile,
    pub tests: Vec<TestOutcome>,
    /// The `jit` object of the `file-done` event, if any.
    pub jit: Option<Value>,
    /// Whether `file-done` arrived.
    pub completed: bool,
    /// Why the file did not complete (set for every file with `completed == false`).
    pub failure: Option<String>,
}

/// Result of one batch.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    pub files: Vec<FileOutcome>,
    /// Crash/timeout reason, when some file did not complete.
    pub problem: Option<String>,
    /// Things worth reporting that failed no file (stray output, odd exit).
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

impl BatchOutcome {
    /// Number of failed tests, counting an uncompleted file as one failure.
    pub fn failed_count(&self) -> usize {
        self.files
            .iter()
            .map(|f| f.tests.iter().filter(|t| !t.ok).count() + usize::from(!f.completed))
            .sum()
    }
}

/// Format a duration the way reasons show it: `120s`, `1.5s`.
pub fn format_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

const STDERR_TAIL_BYTES: usize = 16 * 1024;

/// Run one batch: `sx test --jsonl <tier args> files...` with a deadline.
/// `on_file_done` is called as each file's `file-done` arrives.
pub fn run_batch(
    sx: &Path,
    tier: &Tier,
    files: &[TestFile],
    timeout: Duration,
    on_file_done: &mut dyn FnMut(&FileOutcome),
) -> BatchOutcome {
    let start = Instant::now();
    let mut state = BatchState::new(files);
    let mut cmd = Command::new(sx);
    cmd.arg("test")
        .arg("--jsonl")
        .args(&tier.args)
        .args(files.iter().map(|f| f.path.as_os_str()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("batch crashed: cannot start {}: {e}", sx.display());
            return state.finish(Some(reason), Vec::new(), start.elapsed());
        }
    };

    // stdout: one message per line, None at end of stream.
    let (line_tx, line_rx) = mpsc::channel::<Option<String>>();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if line_tx.send(Some(line)).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = line_tx.send(None);
        });
    } else {
        let _ = line_tx.send(None);
    }
    // stderr: keep the tail, delivered once at end of stream.
    let (err_tx, err_rx) = mpsc::channel::<Vec<u8>>();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut tail = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                match stderr.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&chunk[..n]);
                        if tail.len() > STDERR_TAIL_BYTES * 2 {
                            let cut = tail.len() - STDERR_TAIL_BYTES;
                            tail.drain(..cut);
                        }
                    }
                }
            }
            let _ = err_tx.send(tail);
        });
    }

    let deadline = start + timeout;
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        match line_rx.recv_timeout(deadline - now) {
            Ok(Some(line)) => state.handle_line(&line, on_file_done),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
        }
    }

    let mut wait_error = None;
    let status = if timed_out {
        kill(&mut child);
        None
    } else {
        // stdout is closed; the process should exit promptly.
        loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {
                    if Instant::now() >= deadline {
                        timed_out = true;
                        kill(&mut child);
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    wait_error = Some(e.to_string());
                    kill(&mut child);
                    break None;
                }
            }
        }
    };
    if timed_out {
        // Lines written before the kill are still valid results.
        let grace = Instant::now() + Duration::from_secs(1);
        loop {
            let left = grace.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(left) {
                Ok(Some(line)) => state.handle_line(&line, on_file_done),
                _ => break,
            }
        }
    }
    let stderr_tail = err_rx
        .recv_timeout(Duration::from_secs(1))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let excerpt = stderr_excerpt(&stderr_tail);
    let with_stderr = |mut reason: String| {
        if let Some(ex) = &excerpt {
            reason.push_str("; stderr: ");
            reason.push_str(ex);
        }
        reason
    };

    let mut warnings = Vec::new();
    let problem = if timed_out {
        Some(format!("batch timed out after {}", format_secs(timeout)))
    } else if let Some(e) = wait_error {
        Some(format!("batch crashed: cannot wait for sx: {e}"))
    } else {
        match status {
            Some(s) if !s.success() => Some(with_stderr(format!(
                "batch crashed: {}",
                describe_status(&s)
            ))),
            _ => {
                if let Some(bad) = state.invalid.first() {
                    Some(with_stderr(format!(
                        "batch crashed: unparsable output: {bad}"
                    )))
                } else {
                    Some(with_stderr(
                        "batch crashed: sx exited before reporting file-done".to_string(),
                    ))
                }
            }
        }
    };
    let all_done = state.files.iter().all(|f| f.completed);
    if all_done {
        if timed_out {
            warnings.push(format!(
                "sx did not exit within {} after reporting every file (killed)",
                format_secs(timeout)
            ));
        }
        if let Some(s) = status.filter(|s| !s.success()) {
            warnings.push(with_stderr(format!(
                "sx {} after reporting every file",
                describe_status(&s)
            )));
        }
        if let Some(bad) = state.invalid.first() {
            warnings.push(format!("unparsable output line: {bad}"));
        }
    }
    if !state.noise.is_empty() {
        warnings.push(format!(
            "{} stray stdout line(s), first: {}",
            state.noise_count,
            truncate(&state.noise[0], 120)
        ));
    }
    let problem = if all_done { None } else { problem };
    state.finish(problem, warnings, start.elapsed())
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn describe_status(s: &ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            let name = match sig {
                2 => " (SIGINT)",
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                8 => " (SIGFPE)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("killed by signal {sig}{name}");
        }
    }
    match s.code() {
        Some(c) => format!("exit status {c}"),
        None => "abnormal exit".to_string(),
    }
}

/// The last few meaningful lines of stderr, joined, for a crash reason.
fn stderr_excerpt(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    if lines.is_empty() {
        return None;
    }
    let tail = &lines[lines.len().saturating_sub(3)..];
    Some(truncate(&tail.join(" | "), 300))
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// Per-batch bookkeeping of events.
struct BatchState {
    files: Vec<FileOutcome>,
    /// Event `file` strings already resolved to an index.
    index: HashMap<String, usize>,
    canonical: Vec<Option<PathBuf>>,
    /// Stray output: how many lines, and the first few.
    noise_count: usize,
    noise: Vec<String>,
    invalid: Vec<String>,
}

const KEEP_LINES: usize = 5;

impl BatchState {
    fn new(files: &[TestFile]) -> BatchState {
        let mut index = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            index
                .entry(f.path.to_string_lossy().into_owned())
                .or_insert(i);
            index.entry(f.rel.clone()).or_insert(i);
        }
        BatchState {
            files: files
                .iter()
                .map(|f| FileOutcome {
                    file: f.clone(),
                    tests: Vec::new(),
                    jit: None,
                    completed: false,
                    failure: None,
                })
                .collect(),
            index,
            canonical: files.iter().map(|f| f.path.canonicalize().ok()).collect(),
            noise_count: 0,
            noise: Vec::new(),
            invalid: Vec::new(),
        }
    }

    /// Which file of the batch an event's `file` names. `sx` may print the
    /// path as given, canonicalised, or relative to somewhere else; as a last
    /// resort the event belongs to the first file not yet done (files run in order).
    fn resolve(&mut self, file: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(file) {
            return Some(i);
        }
        let found = Path::new(file)
            .canonicalize()
            .ok()
            .and_then(|c| self.canonical.iter().position(|x| x.as_ref() == Some(&c)))
            .or_else(|| {
                self.files.iter().position(|f| {
                    let p = f.file.path.to_string_lossy();
                    file.ends_with(&format!("/{}", f.file.rel)) || p.ends_with(file)
                })
            });
        if let Some(i) = found {
            self.index.insert(file.to_string(), i);
            return Some(i);
        }
        self.files.iter().position(|f| !f.completed)
    }

    fn handle_line(&mut self, line: &str, on_file_done: &mut dyn FnMut(&FileOutcome)) {
        match parse_line(line) {
            Line::Blank | Line::Unknown(_) => {}
            Line::Noise(text) => self.add_noise(text),
            Line::Invalid { line, error } => {
                if self.invalid.len() < KEEP_LINES {
                    self.invalid
                        .push(format!("{} ({error})", truncate(&line, 160)));
                }
            }
            Line::Event { event, noise } => {
                if let Some(n) = noise {
                    self.add_noise(n);
                }
                self.handle_event(event, on_file_done);
            }
        }
    }

    fn add_noise(&mut self, text: String) {
        self.noise_count += 1;
        if self.noise.len() < KEEP_LINES {
            self.noise.push(text);
        }
    }

    fn handle_event(&mut self, event: Event, on_file_done: &mut dyn FnMut(&FileOutcome)) {
        match event {
            Event::Test {
                file,
                suite,
                name,
                ok,
                message,
            } => {
                if let Some(i) = self.resolve(&file) {
                    self.files[i].tests.push(TestOutcome {
                        suite,
                        name,
                        ok,
                        message,
                    });
                }
            }
            Event::FileError { file, message } => {
                if let Some(i) = self.resolve(&file) {
                    self.files[i].tests.push(TestOutcome {
                        suite: String::new(),
                        name: FILE_ERROR_NAME.to_string(),
                        ok: false,
                        message: Some(message),
                    });
                }
            }
            Event::FileDone { file, jit } => {
                if let Some(i) = self.resolve(&file) {
                    let f = &mut self.files[i];
                    if !f.completed {
                        f.completed = true;
                        f.jit = jit;
                        on_file_done(f);
                    }
                }
            }
            Event::Done => {}
        }
    }

    fn finish(
        mut self,
        problem: Option<String>,
        warnings: Vec<String>,
        elapsed: Duration,
    ) -> BatchOutcome {
        if let Some(reason) = &problem {
            for f in self.files.iter_mut().filter(|f| !f.completed) {
                f.failure = Some(if f.tests.is_empty() {
                    reason.clone()
                } else {
                    format!("{reason} (after {} reported tests)", f.tests.len())
                });
            }
        }
        BatchOutcome {
            files: self.files,
            problem,
            warnings,
            elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(rels: &[&str]) -> Vec<TestFile> {
        rels.iter()
            .map(|r| TestFile::new(Path::new("conformance"), r))
            .collect()
    }

    #[test]
    fn tier_arguments() {
        assert_eq!(Tier::from_name("cek", 1).args, vec!["--backend", "none"]);
        assert_eq!(
            Tier::from_name("cranelift", 3).args,
            vec!["--backend", "cranelift", "--jit-threshold", "3"]
        );
    }

    #[test]
    fn events_resolve_by_path_rel_suffix_and_order() {
        let fs = files(&["a/one.sx", "a/two.sx", "b/three.sx"]);
        let mut st = BatchState::new(&fs);
        let mut done = Vec::new();
        let mut cb = |f: &FileOutcome| done.push(f.file.rel.clone());
        st.handle_line(
            r#"{"event":"test","file":"conformance/a/one.sx","suite":"s","name":"x","ok":true}"#,
            &mut cb,
        );
        st.handle_line(r#"{"event":"file-done","file":"a/one.sx"}"#, &mut cb);
        st.handle_line(
            r#"{"event":"test","file":"/somewhere/else/conformance/a/two.sx","suite":"s","name":"y","ok":false,"message":"m"}"#,
            &mut cb,
        );
        st.handle_line(
            r#"{"event":"file-done","file":"/somewhere/else/conformance/a/two.sx","jit":{"compiled":1}}"#,
            &mut cb,
        );
        // unknown name → first file not done yet
        st.handle_line(
            r#"{"event":"file-error","file":"???","message":"parse"}"#,
            &mut cb,
        );
        st.handle_line("some printed text", &mut cb);
        st.handle_line(r#"{"event":"test","#, &mut cb);
        assert_eq!(done, vec!["a/one.sx", "a/two.sx"]);
        assert_eq!(st.files[0].tests.len(), 1);
        assert_eq!(st.files[1].tests[0].message.as_deref(), Some("m"));
        assert!(st.files[1].jit.is_some());
        assert_eq!(st.files[2].tests[0].name, FILE_ERROR_NAME);
        assert_eq!(st.noise.len(), 1);
        assert_eq!(st.invalid.len(), 1);

        let out = st.finish(Some("batch crashed: x".into()), vec![], Duration::ZERO);
        assert_eq!(out.files[0].failure, None);
        assert_eq!(
            out.files[2].failure.as_deref(),
            Some("batch crashed: x (after 1 reported tests)")
        );
        // 1 failed test in two.sx, file-error + unfinished in three.sx
        assert_eq!(out.failed_count(), 3);
    }

    #[test]
    fn stderr_excerpt_skips_backtrace_note() {
        let s = "thread 'main' panicked at src/x.rs:1:1:\noops\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            stderr_excerpt(s).as_deref(),
            Some("thread 'main' panicked at src/x.rs:1:1: | oops")
        );
        assert_eq!(stderr_excerpt("\n\n"), None);
    }

    #[test]
    fn secs_format() {
        assert_eq!(format_secs(Duration::from_secs(120)), "120s");
        assert_eq!(format_secs(Duration::from_millis(1500)), "1.5s");
    }
}
