//! Architecture invariants checked with `cargo tree`: the CEK machine and
//! everything below it depend on no JIT crate and no code generator.

use std::process::Command;

fn deps_of(krate: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const CODEGEN: [&str; 7] = ["cranelift", "inkwell", "llvm", "wasmtime", "sx-jit", "sx-ir", "wasm-encoder"];

#[test]
fn cek_depends_on_no_jit_or_code_generator() {
    let tree = deps_of("sx-cek");
    assert!(tree.contains("sx-core"), "sanity: sx-cek depends on sx-core\n{tree}");
    for bad in CODEGEN {
        assert!(!tree.lines().any(|l| l.starts_with(bad)), "sx-cek must not depend on {bad}:\n{tree}");
    }
}

#[test]
fn core_and_syntax_depend_on_no_evaluator_or_jit() {
    for krate in ["sx-core", "sx-syntax"] {
        let tree = deps_of(krate);
        for bad in CODEGEN.iter().chain(["sx-cek"].iter()) {
            assert!(!tree.lines().any(|l| l.starts_with(bad)), "{krate} must not depend on {bad}:\n{tree}");
        }
    }
}
