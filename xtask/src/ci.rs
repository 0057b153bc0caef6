//! `cargo xtask test`, `conformance` and `compare`.

use crate::util::{build_release, cargo, probe, release_exe, root, run};
use anyhow::Result;
use std::process::Command;

/// Build `sx` and the runner, then run the suite with the given runner arguments.
/// With `--sx PATH` among the arguments, that binary is tested and sx-cli is not built
/// (nor for `--help`).
pub fn conformance(args: &[String]) -> Result<bool> {
    let own_sx = args.iter().any(|a| a == "--sx" || a.starts_with("--sx="));
    let help = args.iter().any(|a| a == "--help" || a == "-h");
    if own_sx || help {
        build_release(&["sx-conformance"])?;
    } else {
        build_release(&["sx-cli", "sx-conformance"])?;
    }
    let mut cmd = Command::new(release_exe("sx-conformance"));
    cmd.current_dir(root());
    if !own_sx && !help {
        cmd.arg("--sx").arg(release_exe("sx"));
    }
    cmd.args(args);
    Ok(run(&mut cmd)?.success())
}

/// Build the runner and compare two reports.
pub fn compare(old: &str, new: &str, args: &[String]) -> Result<bool> {
    build_release(&["sx-conformance"])?;
    let mut cmd = Command::new(release_exe("sx-conformance"));
    cmd.current_dir(root())
        .arg("compare")
        .arg(old)
        .arg(new)
        .args(args);
    Ok(run(&mut cmd)?.success())
}

fn unit_tests() -> Result<bool> {
    match probe("cargo", &["nextest", "--version"]) {
        Ok(version) => {
            eprintln!("using {version}");
            Ok(run(cargo().args(["nextest", "run", "--workspace", "--no-fail-fast"]))?.success())
        }
        Err(why) => {
            eprintln!(
                "cargo-nextest is not available ({why}); falling back to `cargo test --workspace`"
            );
            Ok(run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?.success())
        }
    }
}

fn deny() -> Result<bool> {
    match probe("cargo", &["deny", "--version"]) {
        Ok(version) => eprintln!("using {version}"),
        Err(why) => {
            eprintln!("cargo-deny is not available ({why}).");
            eprintln!(
                "Installing it from crates.io with `cargo install --locked cargo-deny` \
                 (compiles from source; takes a few minutes, once per machine)."
            );
            let mut install = Command::new("cargo");
            install.args(["install", "--locked", "cargo-deny"]);
            if !run(&mut install)?.success() {
                eprintln!("installing cargo-deny failed");
                return Ok(false);
            }
        }
    }
    Ok(run(cargo().args(["deny", "check", "licenses", "sources", "bans"]))?.success())
}

/// Everything CI checks, in order; every step runs, any failure fails the whole.
pub fn test() -> Result<bool> {
    type Step = (&'static str, fn() -> Result<bool>);
    let steps: [Step; 3] = [
        ("unit tests", unit_tests),
        ("cargo deny check licenses sources bans", deny),
        ("conformance (tiers cek, cranelift at threshold 1)", || {
            let json = crate::util::target_dir()
                .join("conformance")
                .join("tiers.json");
            conformance(&[
                "--tiers".to_string(),
                "cek,cranelift".to_string(),
                "--jit-threshold".to_string(),
                "1".to_string(),
                "--min-coverage".to_string(),
                "90".to_string(),
                "--json".to_string(),
                json.to_string_lossy().into_owned(),
            ])
        }),
    ];
    let mut results = Vec::new();
    for (i, (name, step)) in steps.iter().enumerate() {
        eprintln!("\n==> [{}/{}] {name}", i + 1, steps.len());
        let ok = match step() {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("xtask: {name}: {e:#}");
                false
            }
        };
        results.push((*name, ok));
    }
    eprintln!("\n==> summary");
    for (name, ok) in &results {
        eprintln!("  {:<40} {}", name, if *ok { "ok" } else { "FAILED" });
    }
    Ok(results.iter().all(|(_, ok)| *ok))
}
