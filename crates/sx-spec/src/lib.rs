//! The SX language declared as data.
//!
//! `spec/primitives.sx` declares every function of the language (name, parameters, return type,
//! documentation, examples) and `spec/special-forms.sx` every special form. This crate embeds
//! both files and parses them with [`sx_syntax::parse`] into [`PrimitiveSpec`]s and
//! [`SpecialFormSpec`]s, so that the implementation can be checked against the declarations:
//! every declared primitive exists, every implemented one is declared, and every example
//! evaluates to its expected result.
//!
//! Architecture invariant: this crate depends on `sx-syntax` only, knows nothing about the
//! runtime, and never panics on malformed declarations: each problem is a [`SpecError`] with the
//! file, line and column of the offending datum.
//!
//! ```
//! let prims = sx_spec::primitives().expect("spec/primitives.sx is well-formed");
//! let plus = prims.iter().find(|p| p.name == "+").expect("+ is declared");
//! assert_eq!(plus.min_arity(), 0);
//! assert_eq!(plus.max_arity(), None);
//! assert!(!plus.examples.is_empty());
//! ```

mod decl;

use std::fmt;

/// Path (relative to the workspace root) of the primitive declarations, as used in errors.
pub const PRIMITIVES_FILE: &str = "spec/primitives.sx";
/// Path (relative to the workspace root) of the special-form declarations, as used in errors.
pub const SPECIAL_FORMS_FILE: &str = "spec/special-forms.sx";

/// The text of `spec/primitives.sx`, embedded at build time.
pub const PRIMITIVES_SOURCE: &str = include_str!("../../../spec/primitives.sx");
/// The text of `spec/special-forms.sx`, embedded at build time.
pub const SPECIAL_FORMS_SOURCE: &str = include_str!("../../../spec/special-forms.sx");

/// A place in a spec file: 1-based line and column (columns count code points).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Location {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One `:example (source expected)` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// SX source: one or more forms, evaluated in order in a fresh engine.
    pub source: String,
    /// The readable (`inspect`) form of the value of the last form of `source`.
    pub expected: String,
    /// Where the example is written in the spec file.
    pub location: Location,
}

/// A declared function (`define-primitive`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimitiveSpec {
    pub name: String,
    /// Required parameters, in order.
    pub params: Vec<String>,
    /// Parameters after `&optional`: the caller may omit them (from the right).
    pub optional: Vec<String>,
    /// The parameter after `&rest`, which collects any further arguments.
    pub rest: Option<String>,
    /// Return type: a `type-of` name, `integer`, `float`, `any`, `never`, or several joined by `|`.
    pub returns: String,
    pub doc: String,
    /// At least one.
    pub examples: Vec<Example>,
    /// Where the declaration starts.
    pub location: Location,
}

impl PrimitiveSpec {
    /// The smallest number of arguments a call may pass.
    pub fn min_arity(&self) -> usize {
        self.params.len()
    }

    /// The largest number of arguments a call may pass; `None` when there is a `&rest`.
    pub fn max_arity(&self) -> Option<usize> {
        match self.rest {
            Some(_) => None,
            None => Some(self.params.len() + self.optional.len()),
        }
    }

    /// Whether a call with `n` arguments has an acceptable argument count.
    pub fn accepts(&self, n: usize) -> bool {
        n >= self.min_arity() && self.max_arity().is_none_or(|max| n <= max)
    }
}

/// A declared special form (`define-special-form`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecialFormSpec {
    pub name: String,
    /// The shape of a use, e.g. `(if test then [else])`.
    pub syntax: String,
    /// The parts of `syntax` evaluated in tail position (each occurs as a word in `syntax`).
    pub tail: Vec<String>,
    pub doc: String,
    /// At least one.
    pub examples: Vec<Example>,
    /// Where the declaration starts.
    pub location: Location,
}

/// A malformed spec file or declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file name given to the parser (e.g. [`PRIMITIVES_FILE`]).
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for SpecError {}

/// The declared primitives of `spec/primitives.sx`, in file order.
pub fn primitives() -> Result<Vec<PrimitiveSpec>, SpecError> {
    parse_primitives(PRIMITIVES_SOURCE, PRIMITIVES_FILE)
}

/// The declared special forms of `spec/special-forms.sx`, in file order.
pub fn special_forms() -> Result<Vec<SpecialFormSpec>, SpecError> {
    parse_special_forms(SPECIAL_FORMS_SOURCE, SPECIAL_FORMS_FILE)
}

/// Parses `define-primitive` declarations from `src`; `file` only names the source in errors.
///
/// Checks: every top-level form is `(define-primitive "name" :key value ...)`; keys are
/// `:params` (a list of symbols with optional `&optional` names and an optional final
/// `&rest name`), `:returns` (a known type name or `|`-joined names), `:doc` (non-empty) — each
/// exactly once — and `:example` (one or more pairs of strings whose source reads as at least one
/// datum and whose expected text reads as exactly one); names are unique.
pub fn parse_primitives(src: &str, file: &str) -> Result<Vec<PrimitiveSpec>, SpecError> {
    decl::parse_primitives(src, file)
}

/// Parses `define-special-form` declarations from `src`; `file` only names the source in errors.
///
/// Checks: every top-level form is `(define-special-form "name" :key value ...)`; keys are
/// `:syntax` (non-empty string) and `:doc` (non-empty string), each exactly once, `:tail` (a list
/// of symbols, each occurring as a word of `:syntax`) at most once, and `:example` one or more
/// times (as for primitives); names are unique.
pub fn parse_special_forms(src: &str, file: &str) -> Result<Vec<SpecialFormSpec>, SpecError> {
    decl::parse_special_forms(src, file)
}

#[cfg(test)]
mod tests;
