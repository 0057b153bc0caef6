//! The declared language (`spec/*.sx`) and the implementation agree:
//! every declared primitive and special form exists, every implemented one
//! is declared, and every declared example evaluates to its result.

use sx::Engine;

fn eval_example(source: &str) -> String {
    let mut e = Engine::new();
    match e.eval_str(source, "<example>") {
        Ok(v) => e.inspect(v),
        Err(err) => format!("<error: {}>", err.message()),
    }
}

#[test]
fn every_declared_primitive_is_implemented() {
    let specs = sx_spec::primitives().expect("spec/primitives.sx parses");
    let e = Engine::new();
    let missing: Vec<_> = specs.iter().filter(|p| !e.is_defined(&p.name)).map(|p| p.name.clone()).collect();
    assert!(missing.is_empty(), "declared but not implemented: {missing:?}");
}

#[test]
fn every_implemented_primitive_is_declared() {
    let prims = sx_spec::primitives().expect("spec/primitives.sx parses");
    let forms = sx_spec::special_forms().expect("spec/special-forms.sx parses");
    let e = Engine::new();
    let declared: Vec<&str> = prims.iter().map(|p| p.name.as_str()).chain(forms.iter().map(|f| f.name.as_str())).collect();
    let undeclared: Vec<_> = e.primitive_names().into_iter().filter(|n| !declared.contains(n)).collect();
    assert!(undeclared.is_empty(), "implemented but not declared in spec/: {undeclared:?}");
}

#[test]
fn every_special_form_is_declared_and_implemented() {
    let forms = sx_spec::special_forms().expect("spec/special-forms.sx parses");
    let e = Engine::new();
    let implemented = e.special_form_names();
    let declared: Vec<&str> = forms.iter().map(|f| f.name.as_str()).collect();
    let undeclared: Vec<_> = implemented.iter().filter(|n| !declared.contains(&n.as_str())).cloned().collect();
    assert!(undeclared.is_empty(), "special forms not declared: {undeclared:?}");
    let missing: Vec<_> = declared
        .iter()
        .filter(|n| !implemented.iter().any(|i| i == *n) && !e.is_defined(n))
        .map(|n| n.to_string())
        .collect();
    assert!(missing.is_empty(), "declared special forms not implemented: {missing:?}");
}

#[test]
fn every_primitive_example_evaluates_to_its_result() {
    let specs = sx_spec::primitives().expect("spec/primitives.sx parses");
    let mut failures = Vec::new();
    for p in &specs {
        for ex in &p.examples {
            let got = eval_example(&ex.source);
            if got != ex.expected {
                failures.push(format!("{} ({}): {} => {} (expected {})", p.name, ex.location, ex.source, got, ex.expected));
            }
        }
    }
    assert!(failures.is_empty(), "{} failing examples:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_special_form_example_evaluates_to_its_result() {
    let specs = sx_spec::special_forms().expect("spec/special-forms.sx parses");
    let mut failures = Vec::new();
    for f in &specs {
        for ex in &f.examples {
            let got = eval_example(&ex.source);
            if got != ex.expected {
                failures.push(format!("{} ({}): {} => {} (expected {})", f.name, ex.location, ex.source, got, ex.expected));
            }
        }
    }
    assert!(failures.is_empty(), "{} failing examples:\n{}", failures.len(), failures.join("\n"));
}
