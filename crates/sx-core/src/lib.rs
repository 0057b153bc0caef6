//! SX values, the heap and its collector, numbers, printing and the native
//! primitives.
//!
//! Architecture invariant: nothing here knows about evaluation order,
//! continuations or compiled code. A value is one machine word ([`Value`]);
//! heap references are indices, so every backend can hold them.

pub mod convert;
pub mod dates;
pub mod error;
pub mod ext;
pub mod heap;
pub mod num;
pub mod prims;
pub mod print;
pub mod rt;
pub mod symbols;
pub mod value;

pub use error::{Error, Result};
pub use heap::{Heap, Obj};
pub use rt::Rt;
pub use value::Value;
