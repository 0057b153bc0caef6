//! Errors raised while running SX code.

use crate::value::Value;

/// What a primitive or the machine raises.
#[derive(Debug, Clone)]
pub enum Error {
    /// A runtime error with a message (raised as an SX string).
    Msg(String),
    /// `(raise v)`: any value.
    Raise(Value),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn msg(s: impl Into<String>) -> Error {
        Error::Msg(s.into())
    }
}

/// `NAME: expected TYPE, got TYPE-OF`.
pub fn type_error(prim: &str, expected: &str, got: &str) -> Error {
    Error::Msg(format!("{prim}: expected {expected}, got {got}"))
}

/// `NAME: expected N arguments, got M` (or `at least N`).
pub fn arity_error(name: &str, min: usize, max: Option<usize>, got: usize) -> Error {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    match max {
        Some(m) if m == min => Error::Msg(format!("{name}: expected {min} {}, got {got}", plural(min))),
        Some(m) => Error::Msg(format!("{name}: expected {min} to {m} arguments, got {got}")),
        None => Error::Msg(format!("{name}: expected at least {min} {}, got {got}", plural(min))),
    }
}
