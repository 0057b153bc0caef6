//! Continuation frames. The continuation is a `Vec` of these on the Rust
//! heap (never the Rust stack); capturing it copies a segment.

use crate::code::{Code, NodeId};
use std::rc::Rc;
use sx_core::heap::Tracer;
use sx_core::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoOp {
    Map,
    MapIndexed,
    Filter,
    Reduce,
    Some,
    Every,
    ForEach,
}

#[derive(Clone)]
pub enum Frame {
    /// Waiting for the value of node `node`'s `i`-th sub-expression.
    Node { code: Rc<Code>, env: Value, node: NodeId, i: u32 },
    /// Bottom of one `run`; returning into it ends the run.
    Barrier,
    /// Bottom of a run started by compiled code (`Machine::jit_call`). The
    /// frames below it are incomplete (compiled activations live on the
    /// native stack), so anything that must look past it deoptimises.
    JitBarrier,
    Reset,
    Guard { code: Rc<Code>, env: Value, node: NodeId },
    TryCall,
    /// Active `handler-bind`: parallel lists of predicates and handlers.
    Handlers { preds: Value, handlers: Value },
    /// A handler is running for a raise; searches skip frames down to `skip`.
    HandlerActive { skip: u32, continuable: bool },
    /// Testing handler predicates for a raised value.
    HandlerSearch { value: Value, continuable: bool, mark: u32, clause: u32 },
    Scope { name: Value, value: Value, emitted: Value },
    Wind { id: u64, before: Value, after: Value },
    Ho { op: HoOp, f: Value, lists: Value, i: u32, n: u32, acc: Value, multi: bool },
    /// The bottom of a running coroutine; `coroutine-yield` captures up to here.
    Coroutine { co: Value },
}

impl Frame {
    pub fn trace(&self, t: &mut Tracer) {
        match self {
            Frame::Node { env, .. } | Frame::Guard { env, .. } => t.mark(*env),
            Frame::Barrier | Frame::JitBarrier | Frame::Reset | Frame::TryCall | Frame::HandlerActive { .. } => {}
            Frame::Handlers { preds, handlers } => {
                t.mark(*preds);
                t.mark(*handlers);
            }
            Frame::HandlerSearch { value, .. } => t.mark(*value),
            Frame::Scope { name, value, emitted } => {
                t.mark(*name);
                t.mark(*value);
                t.mark(*emitted);
            }
            Frame::Wind { before, after, .. } => {
                t.mark(*before);
                t.mark(*after);
            }
            Frame::Coroutine { co } => t.mark(*co),
            Frame::Ho { f, lists, acc, .. } => {
                t.mark(*f);
                t.mark(*lists);
                t.mark(*acc);
            }
        }
    }
}

/// A frame with the height of the value stack when it was pushed.
#[derive(Clone)]
pub struct Entry {
    pub frame: Frame,
    pub vbase: u32,
}

/// Push the entry `make` builds onto the continuation, making room first and
/// building the entry only then, straight into the stack's memory.
/// (`Vec::push(entry)` builds the entry in a temporary that must survive the
/// possible reallocation, then copies it with wide loads that wait on the
/// narrow stores just made: a store-forwarding stall on every frame pushed.)
#[inline(always)]
pub fn push_entry(entries: &mut Vec<Entry>, make: impl FnOnce() -> Entry) {
    if entries.len() == entries.capacity() {
        entries.reserve(1);
    }
    let len = entries.len();
    let entry = make();
    // SAFETY: the check above leaves room for at least one more element, so
    // `len` is in bounds of the allocation; the slot is uninitialised and is
    // written exactly once before `set_len` makes it part of the vector.
    unsafe {
        entries.as_mut_ptr().add(len).write(entry);
        entries.set_len(len + 1);
    }
}

/// A captured continuation.
pub struct ContinuationObj {
    pub entries: Vec<Entry>,
    pub vals: Vec<Value>,
    /// Delimited (from `shift`) or full (from `call/cc`).
    pub delimited: bool,
}

impl sx_core::heap::ExternObj for ContinuationObj {
    fn trace(&self, t: &mut Tracer) {
        for e in &self.entries {
            e.frame.trace(t);
        }
        t.mark_all(&self.vals);
    }
    fn type_name(&self) -> &str {
        "continuation"
    }
    sx_core::extern_any!();
}
