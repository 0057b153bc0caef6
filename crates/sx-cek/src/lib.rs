//! The SX CEK machine: the reference semantics of the language.
//!
//! Architecture invariant: this crate depends on no JIT crate and no code
//! generator. Forms are analysed into [`code::Code`] (lexical addressing,
//! macro expansion, desugaring) and run by [`Machine`], whose continuation is
//! a heap-allocated frame stack.

pub mod analyze;
pub mod builtins;
pub mod code;
pub mod frames;
pub mod machine;

pub use machine::{EvalError, Machine, TraceFrame};
