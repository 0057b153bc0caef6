//! The test harness of section 9: `defsuite`, `deftest`, assertions, and the
//! host hooks (`try-call`, `report-pass`, `report-fail`, `push-suite`,
//! `pop-suite`) so that test files written for other SX hosts run unchanged.

use crate::{Engine, SxError};

/// The outcome of one `deftest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    /// Enclosing suites joined with ` > `.
    pub suite: String,
    pub name: String,
    /// `None` when the test passed, else the failure message.
    pub failure: Option<String>,
}

pub(crate) const HARNESS: &str = include_str!("harness.sx");

pub(crate) fn run_tests(engine: &mut Engine, src: &str, file: &str) -> (Vec<TestOutcome>, Option<SxError>) {
    let _ = engine.eval_str("(set! %test-results (list)) (set! %suite-stack (list))", "<harness>");
    let err = engine.eval_str(src, file).err();
    let mut out = Vec::new();
    if let Some(results) = engine.m.lookup_global("%test-results") {
        let items = engine.m.rt.list_items(results).unwrap_or_default();
        for r in items {
            let parts = engine.m.rt.list_items(r).unwrap_or_default();
            if parts.len() < 4 {
                continue;
            }
            let suite = engine.display(parts[0]);
            let name = engine.display(parts[1]);
            let failure = if parts[2].truthy() { None } else { Some(engine.display(parts[3])) };
            out.push(TestOutcome { suite, name, failure });
        }
    }
    (out, err)
}
