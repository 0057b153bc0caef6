//! Small helpers: workspace paths, running commands visibly, timeouts.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the parent of xtask/).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// Cargo's target directory (CARGO_TARGET_DIR or <root>/target).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        }
        _ => root().join("target"),
    }
}

/// A release binary built by this workspace.
pub fn release_exe(name: &str) -> PathBuf {
    target_dir()
        .join("release")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// `cargo`, as the one running xtask when known.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

/// A command line for display.
pub fn display(cmd: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if s.is_empty() || s.contains([' ', '"', '\'']) {
            format!("'{s}'")
        } else {
            s.into_owned()
        }
    };
    let prog = Path::new(cmd.get_program())
        .file_name()
        .map(quote)
        .unwrap_or_default();
    let mut parts = vec![prog];
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

/// Run a command with inherited stdio, echoing it first.
pub fn run(cmd: &mut Command) -> Result<ExitStatus> {
    eprintln!("$ {}", display(cmd));
    cmd.status()
        .with_context(|| format!("cannot run `{}`", display(cmd)))
}

/// Run a command and fail unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Result<()> {
    let status = run(cmd)?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// `cargo build --release -p P...`.
pub fn build_release(packages: &[&str]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--release"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    run_ok(&mut cmd)
}

/// Run a command capturing stdout and stderr, killing it after `timeout`.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = display(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{shown}`"))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_t = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .with_context(|| format!("waiting for `{shown}`"))?
        {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{shown}` timed out after {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Whether `prog args` runs and exits successfully; the error text otherwise.
pub fn probe(prog: &str, args: &[&str]) -> std::result::Result<String, String> {
    let mut cmd = Command::new(prog);
    cmd.args(args).current_dir(root());
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            Err(format!(
                "`{}` exited with {}: {first}",
                display(&cmd),
                o.status
            ))
        }
        Err(e) => Err(format!("`{}` could not start: {e}", display(&cmd))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_spaces() {
        let mut c = Command::new("/usr/bin/cargo");
        c.args(["build", "a b", ""]);
        assert_eq!(display(&c), "cargo build 'a b' ''");
    }

    #[test]
    fn timeout_kills() -> Result<()> {
        let mut c = Command::new("sleep");
        c.arg("5");
        let start = Instant::now();
        let r = output_with_timeout(&mut c, Duration::from_millis(200));
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(4));
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2"]);
        let o = output_with_timeout(&mut c, Duration::from_secs(10))?;
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        Ok(())
    }
}
