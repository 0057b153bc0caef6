//! Name patterns that keep lambdas interpreted (`jit-exclude!`).

use hashbrown::HashSet;

/// A set of exclusion patterns: exact names, and `prefix-*` globs.
///
/// A pattern that ends in `*` matches every name that starts with the text before the `*`
/// (so `"*"` alone matches every *named* lambda); any other pattern matches exactly that name
/// (a `*` elsewhere is an ordinary character). Anonymous lambdas have no name and are never
/// matched. The empty pattern matches nothing.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    exact: HashSet<Box<str>>,
    prefixes: Vec<Box<str>>,
}

impl Exclusions {
    /// No patterns.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one pattern; adding a pattern twice changes nothing.
    pub fn add(&mut self, pattern: &str) {
        if pattern.is_empty() {
            return;
        }
        match pattern.strip_suffix('*') {
            Some(prefix) => {
                if !self.prefixes.iter().any(|p| &**p == prefix) {
                    self.prefixes.push(prefix.into());
                }
            }
            None => {
                self.exact.insert(pattern.into());
            }
        }
    }

    /// Does `name` match any pattern?
    pub fn matches(&self, name: &str) -> bool {
        self.exact.contains(name) || self.prefixes.iter().any(|p| name.starts_with(&**p))
    }

    /// No pattern at all?
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Removes every pattern.
    pub fn clear(&mut self) {
        self.exact.clear();
        self.prefixes.clear();
    }

    /// The patterns as they were given, sorted (prefix globs carry their trailing `*`).
    pub fn patterns(&self) -> Vec<String> {
        let mut out: Vec<String> = self.exact.iter().map(|s| s.to_string()).collect();
        out.extend(self.prefixes.iter().map(|p| format!("{p}*")));
        out.sort();
        out
    }
}
