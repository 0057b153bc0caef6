//! End-to-end tests of the runner against a fake `sx` (a bash script) that
//! prints canned JSONL, crashes, exits non-zero, prints garbage or hangs,
//! as told by `;; ` directives inside each test file.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use sx_conformance::discover::discover;
use sx_conformance::report::{ReportJson, RunReport};
use sx_conformance::runner::Tier;
use sx_conformance::{run_suite, ProgressMode, RunOptions};

const FAKE_SX: &str = r#"#!/usr/bin/env bash
# Fake `sx test --jsonl`: each file's behaviour comes from its ';; KIND ...' lines.
all_args="$*"
if [ "$1" != "test" ] || [ "$2" != "--jsonl" ]; then
  echo "fake sx: unexpected arguments: $*" >&2; exit 64
fi
shift 2
backend=""
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2;;
    --jit-threshold) shift 2;;
    --*) echo "fake sx: unknown option $1" >&2; exit 64;;
    *) break;;
  esac
done
# Log the arguments when the first file's directory has an args.log.
log="$(dirname "$1")/args.log"
if [ -e "$log" ]; then echo "$all_args" >> "$log"; fi
for f in "$@"; do
  report_done=1
  jit=""
  while IFS= read -r line || [ -n "$line" ]; do
    read -r _semi kind a b rest <<< "$line"
    [ "$_semi" = ";;" ] || continue
    case "$kind" in
      pass) printf '{"event":"test","file":"%s","suite":"%s","name":"%s","ok":true}\n' "$f" "$a" "$b";;
      fail) printf '{"event":"test","file":"%s","suite":"%s","name":"%s","ok":false,"message":"%s"}\n' "$f" "$a" "$b" "$rest";;
      file-error) printf '{"event":"file-error","file":"%s","message":"%s"}\n' "$f" "$a";;
      crash) echo "thread 'main' panicked at fake.rs:1:1:" >&2; echo "fake crash in $f" >&2; ulimit -c 0; kill -SEGV $$;;
      exit) echo "fake sx: exiting with $a" >&2; exit "$a";;
      hang) exec sleep 30;;
      garbage) echo '{"event":"test",broken';;
      noise) echo 'printed by a test';;
      jit) jit=',"jit":{"compiled":2,"hits":3,"backend":"'"$backend"'"}';;
      no-done) report_done=0;;
    esac
  done < "$f"
  if [ "$report_done" = 1 ]; then printf '{"event":"file-done","file":"%s"%s}\n' "$f" "$jit"; fi
done
echo '{"event":"done"}'
"#;

/// The fake sx, written once per test process before any test spawns a
/// child (so no forked child can hold it open for writing: ETXTBSY).
fn fake_sx() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fake-sx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create fake sx dir");
        let path = dir.join("sx");
        std::fs::write(&path, FAKE_SX).expect("write fake sx");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("chmod fake sx");
        }
        path
    })
}

/// A conformance tree: (relative path, directives).
fn tree(files: &[(&str, &str)]) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (rel, body) in files {
        let p = dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, body)?;
    }
    Ok(dir)
}

fn opts(tiers: &[&str], batch_size: usize, timeout: Duration) -> RunOptions {
    RunOptions {
        sx: fake_sx().to_path_buf(),
        tiers: tiers.iter().map(|t| Tier::from_name(t, 1)).collect(),
        batch_size,
        jobs: 2,
        timeout,
        progress: ProgressMode::Quiet,
    }
}

fn run(dir: &Path, o: &RunOptions) -> Result<RunReport> {
    let files = discover(dir, None)?;
    Ok(run_suite(o, &files))
}

fn find<'a>(
    r: &'a RunReport,
    tier: &str,
    id: &str,
) -> Option<&'a sx_conformance::report::TestRecord> {
    r.tiers
        .iter()
        .find(|t| t.name == tier)?
        .data
        .tests
        .iter()
        .find(|t| t.id == id)
}

#[test]
fn passing_and_failing_tests_are_collected() -> Result<()> {
    let dir = tree(&[
        (
            "lists/a.sx",
            ";; pass basics cons\n;; pass basics first\n;; jit\n",
        ),
        ("lists/b.sx", ";; fail basics rest Expected 1, got 2\n"),
        ("strings/c.sx", ";; pass str join\n;; noise\n"),
        ("strings/d.sx", ";; file-error unterminated\n"),
        ("strings/e.sx", ";; pass str upper\n"),
    ])?;
    let r = run(dir.path(), &opts(&["cek"], 2, Duration::from_secs(60)))?;
    let cek = &r.tiers[0].data;
    assert_eq!(
        (cek.total, cek.passed, cek.failed),
        (6, 4, 2),
        "{:#?}",
        cek.tests
    );
    let failed = find(&r, "cek", "lists/b.sx::basics::rest").context("rest")?;
    assert!(!failed.ok);
    assert_eq!(failed.message.as_deref(), Some("Expected 1, got 2"));
    assert_eq!(failed.topic, "lists");
    let fe = find(&r, "cek", "strings/d.sx::::<file-error>").context("file-error")?;
    assert_eq!(fe.message.as_deref(), Some("unterminated"));
    assert!(cek.batch_problems.is_empty(), "{:?}", cek.batch_problems);
    assert!(
        cek.warnings.iter().any(|w| w.contains("stray stdout")),
        "{:?}",
        cek.warnings
    );
    // jit object of a.sx is kept per topic
    assert_eq!(cek.jit_by_topic["lists"]["files_reporting"], 1);
    assert_eq!(cek.jit_by_topic["lists"]["stats"]["compiled"], 2);
    // tests keep file order
    let files: Vec<&str> = cek.tests.iter().map(|t| t.file.as_str()).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    Ok(())
}

#[test]
fn tiers_pass_backend_arguments() -> Result<()> {
    let dir = tree(&[
        ("t/a.sx", ";; pass s one\n;; jit\n"),
        ("t/b.sx", ";; pass s two\n"),
    ])?;
    // the fake appends its arguments to args.log beside the first file
    let log = dir.path().join("t/args.log");
    std::fs::write(&log, "")?;
    let r = run(
        dir.path(),
        &opts(&["cek", "cranelift"], 8, Duration::from_secs(60)),
    )?;
    let text = std::fs::read_to_string(&log)?;
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("test --jsonl --backend cranelift --jit-threshold 1 "),
        "{text}"
    );
    assert!(
        lines[1].starts_with("test --jsonl --backend none "),
        "{text}"
    );
    assert!(
        lines[1].ends_with("t/a.sx") || lines[1].contains("t/a.sx "),
        "{text}"
    );
    assert_eq!(r.tiers.len(), 2);
    assert_eq!(r.tiers[0].name, "cek");
    assert_eq!(r.tiers[1].name, "cranelift");
    assert_eq!(r.tiers[1].data.passed, 2);
    assert_eq!(
        r.tiers[1].data.jit_by_topic["t"]["stats"]["backend"],
        "cranelift"
    );
    Ok(())
}

#[test]
fn a_crash_fails_the_rest_of_its_batch_only() -> Result<()> {
    let dir = tree(&[
        ("a/1.sx", ";; pass s one\n"),
        ("a/2.sx", ";; pass s two\n;; crash\n"),
        ("a/3.sx", ";; pass s three\n"),
        ("b/4.sx", ";; pass s four\n"),
        ("b/5.sx", ";; pass s five\n"),
        ("b/6.sx", ";; pass s six\n"),
    ])?;
    let r = run(dir.path(), &opts(&["cek"], 3, Duration::from_secs(60)))?;
    let cek = &r.tiers[0].data;
    // 1.sx ok; 2.sx: its test + a crash entry; 3.sx: crash entry; 4-6 ok
    assert!(find(&r, "cek", "a/1.sx::s::one").is_some_and(|t| t.ok));
    assert!(find(&r, "cek", "a/2.sx::s::two").is_some_and(|t| t.ok));
    let c2 = find(&r, "cek", "a/2.sx::::a/2.sx").context("crash entry for 2.sx")?;
    assert!(!c2.ok);
    let m2 = c2.message.as_deref().unwrap_or("");
    assert!(
        m2.starts_with("batch crashed: killed by signal 11 (SIGSEGV)"),
        "{m2}"
    );
    assert!(m2.contains("fake crash in"), "{m2}");
    assert!(m2.ends_with("(after 1 reported tests)"), "{m2}");
    let c3 = find(&r, "cek", "a/3.sx::::a/3.sx").context("crash entry for 3.sx")?;
    assert_eq!(c3.name, "a/3.sx");
    assert!(c3
        .message
        .as_deref()
        .unwrap_or("")
        .starts_with("batch crashed: killed by signal 11"));
    assert!(find(&r, "cek", "a/3.sx::s::three").is_none());
    for id in ["b/4.sx::s::four", "b/5.sx::s::five", "b/6.sx::s::six"] {
        assert!(find(&r, "cek", id).is_some_and(|t| t.ok), "{id}");
    }
    assert_eq!((cek.total, cek.passed, cek.failed), (7, 5, 2));
    assert_eq!(cek.batch_problems.len(), 1);
    Ok(())
}

#[test]
fn non_zero_exit_and_unparsable_output() -> Result<()> {
    let dir = tree(&[
        ("x/1.sx", ";; pass s one\n;; exit 3\n"),
        ("y/2.sx", ";; garbage\n;; no-done\n"),
        ("z/3.sx", ";; pass s ok\n"),
    ])?;
    let r = run(dir.path(), &opts(&["cek"], 1, Duration::from_secs(60)))?;
    let m1 = find(&r, "cek", "x/1.sx::::x/1.sx")
        .and_then(|t| t.message.clone())
        .context("exit entry")?;
    assert!(m1.starts_with("batch crashed: exit status 3"), "{m1}");
    assert!(m1.contains("fake sx: exiting with 3"), "{m1}");
    let m2 = find(&r, "cek", "y/2.sx::::y/2.sx")
        .and_then(|t| t.message.clone())
        .context("garbage entry")?;
    assert!(
        m2.starts_with("batch crashed: unparsable output: {\"event\":\"test\",broken"),
        "{m2}"
    );
    assert!(find(&r, "cek", "z/3.sx::s::ok").is_some_and(|t| t.ok));
    Ok(())
}

#[test]
fn a_hanging_batch_is_killed_at_the_deadline() -> Result<()> {
    let dir = tree(&[
        ("h/1.sx", ";; pass s before\n"),
        ("h/2.sx", ";; pass s partial\n;; hang\n"),
        ("h/3.sx", ";; pass s never\n"),
        ("ok/4.sx", ";; pass s fine\n"),
        ("ok/5.sx", ";; pass s fine\n"),
    ])?;
    // batches: [h/1, h/2, h/3] and [ok/4, ok/5]
    let started = Instant::now();
    let r = run(dir.path(), &opts(&["cek"], 3, Duration::from_secs(1)))?;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(find(&r, "cek", "h/1.sx::s::before").is_some_and(|t| t.ok));
    assert!(find(&r, "cek", "h/2.sx::s::partial").is_some_and(|t| t.ok));
    let m2 = find(&r, "cek", "h/2.sx::::h/2.sx")
        .and_then(|t| t.message.clone())
        .context("timeout entry 2")?;
    assert_eq!(m2, "batch timed out after 1s (after 1 reported tests)");
    let m3 = find(&r, "cek", "h/3.sx::::h/3.sx")
        .and_then(|t| t.message.clone())
        .context("timeout entry 3")?;
    assert_eq!(m3, "batch timed out after 1s");
    assert!(find(&r, "cek", "ok/4.sx::s::fine").is_some_and(|t| t.ok));
    Ok(())
}

#[test]
fn a_missing_binary_fails_every_file() -> Result<()> {
    fake_sx();
    let dir = tree(&[("a/1.sx", ";; pass s one\n"), ("a/2.sx", ";; pass s two\n")])?;
    let mut o = opts(&["cek"], 8, Duration::from_secs(10));
    o.sx = dir.path().join("no-such-sx");
    let r = run(dir.path(), &o)?;
    let cek = &r.tiers[0].data;
    assert_eq!((cek.total, cek.failed), (2, 2));
    assert!(cek.tests[0]
        .message
        .as_deref()
        .unwrap_or("")
        .starts_with("batch crashed: cannot start"));
    Ok(())
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sx-conformance"))
}

#[test]
fn binary_end_to_end_with_json_and_compare() -> Result<()> {
    let sx = fake_sx();
    let dir = tree(&[
        ("conformance/lists/a.sx", ";; pass s one\n;; pass s two\n"),
        ("conformance/strings/b.sx", ";; pass s three\n"),
    ])?;
    let root = dir.path().join("conformance");
    let old_json = dir.path().join("old.json");
    let out = bin()
        .arg("--sx")
        .arg(sx)
        .arg("--root")
        .arg(&root)
        .arg("--json")
        .arg(&old_json)
        .args(["--progress", "plain", "--tiers", "cek"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| TOTAL "), "{stdout}");
    assert!(stdout.contains("3/3 100.0%"), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("conformance: 3 passed, 0 failed"),
        "{stdout}"
    );
    let old = ReportJson::load(&old_json)?;
    assert_eq!(old.tiers["cek"].total, 3);

    // break one test, fix nothing, add one
    std::fs::write(
        root.join("lists/a.sx"),
        ";; pass s one\n;; fail s two boom\n;; pass s new\n",
    )?;
    let new_json = dir.path().join("new.json");
    let out = bin()
        .arg("--sx")
        .arg(sx)
        .arg("--root")
        .arg(&root)
        .arg("--json")
        .arg(&new_json)
        .args(["--progress", "quiet"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[cek] lists/a.sx :: s :: two: boom"),
        "{stdout}"
    );
    assert!(
        stdout.contains("conformance: 3 passed, 1 failed"),
        "{stdout}"
    );

    let out = bin()
        .arg("compare")
        .arg(&old_json)
        .arg(&new_json)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("lists/a.sx::s::two: boom"), "{stdout}");
    assert!(stdout.contains("lists/a.sx::s::new [pass]"), "{stdout}");

    let out = bin()
        .arg("compare")
        .arg(&new_json)
        .arg(&old_json)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("fixed (failed -> passed):\n     lists/a.sx::s::two"),
        "{stdout}"
    );

    // usage errors exit 2
    let out = bin().arg("--root").arg(&root).output()?;
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .arg("--sx")
        .arg(sx)
        .arg("--root")
        .arg(&root)
        .args(["--filter", "nothing-matches"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches --filter"));
    Ok(())
}
