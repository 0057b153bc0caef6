//! Pure versions of flat functions.
//!
//! A flat function whose body uses nothing but its own variables,
//! constants, `if`/`and`/`or`, the fixnum primitives compiled inline
//! (`+ - * < > <= >= = not`) and calls of itself by name gets a second
//! compiled version besides its ordinary one: the *pure version*. It keeps
//! every value in registers and calls itself directly on the native stack,
//! with no shadow frame, no inline cache and no call into the runtime —
//! close to what a compiler of a statically typed language would emit.
//!
//! It may run only while what it assumed holds: the globals it calls
//! (its own name, the primitives) still hold what they held when it was
//! compiled (the runtime watches them: [`Pure::valid_at`] is compared with
//! the runtime's assumptions epoch on entry), its arguments are fixnums,
//! and every operation stays on fixnums without overflow. Whenever
//! something else happens — an operand that is not a fixnum, an overflow,
//! the native stack running low, an interrupt — the pure version gives up
//! ("bails") and the same call is run again from its start by the ordinary
//! version, with the full semantics of the language. Re-running is exact
//! because the pure version has no effect: it allocates nothing, assigns
//! nothing, calls no code but itself, so abandoning it leaves no trace. A
//! bail disables the pure version of that compiled function, so no call is
//! ever attempted twice (a bail deep in a recursion would otherwise be
//! redone at every level).

use crate::{CallSite, Expr};
use std::cell::Cell;
use sx_cek::code::{BinOp, Code};
use sx_cek::Machine;
use sx_core::heap::Obj;

/// Does global `sym` hold a closure of `code`? (What a self call, and the
/// pure version built on it, assumes.)
pub fn global_is_closure_of(m: &Machine, sym: u32, code: &Code) -> bool {
    match m.rt.heap.get(m.global(sym)) {
        Some(Obj::Lambda(clo)) => std::ptr::addr_eq(std::rc::Rc::as_ptr(&clo.code), code as *const Code),
        _ => false,
    }
}

/// [`Pure::valid_at`] of a pure version that must not run any more.
pub const PURE_DISABLED: u64 = u64::MAX;

/// A global a pure version assumed the value of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PureDep {
    /// Global `sym` holds primitive `prim`.
    Prim { sym: u32, prim: u32 },
    /// Global `sym` holds a closure of this function.
    SelfCall { sym: u32 },
}

/// What a flat function's pure version relies on.
#[derive(Debug)]
pub struct Pure {
    pub deps: Box<[PureDep]>,
    /// The runtime's assumptions epoch at which `deps` were last found
    /// true, or [`PURE_DISABLED`]. Compiled code reads it on entry.
    pub valid_at: Cell<u64>,
}

/// The pure version of a flat function with body `body`, if it can have
/// one. `valid_at` starts disabled: the runtime sets it once it has
/// checked the dependencies and watches them.
pub fn analyse(body: &Expr, calls: &[CallSite]) -> Option<Pure> {
    let mut deps = Vec::new();
    if !pure_expr(body, calls, &mut deps) {
        return None;
    }
    // A function that never calls itself gains little from a second
    // version but pays its compile time.
    if !deps.iter().any(|d| matches!(d, PureDep::SelfCall { .. })) {
        return None;
    }
    deps.sort_by_key(|d| match d {
        PureDep::Prim { sym, .. } | PureDep::SelfCall { sym } => *sym,
    });
    deps.dedup();
    Some(Pure { deps: deps.into(), valid_at: Cell::new(PURE_DISABLED) })
}

/// Is `op` with `argc` operands one the pure version compiles inline?
pub fn inline_op(op: BinOp, argc: u32) -> bool {
    match op {
        BinOp::Not => argc == 1,
        _ => argc == 2,
    }
}

fn pure_expr(e: &Expr, calls: &[CallSite], deps: &mut Vec<PureDep>) -> bool {
    match e {
        Expr::Const(_) | Expr::Slot(_) => true,
        Expr::Store(_, x) => pure_expr(x, calls, deps),
        Expr::If { test, then, els } => pure_expr(test, calls, deps) && pure_expr(then, calls, deps) && pure_expr(els, calls, deps),
        Expr::And(items) | Expr::Or(items) => items.iter().all(|x| pure_expr(x, calls, deps)),
        Expr::Seq(items) => match items.last() {
            Some(Expr::Call(c) | Expr::Prim { call: c, .. }) => pure_call(items, &calls[*c as usize], calls, deps),
            _ => items.iter().all(|x| pure_expr(x, calls, deps)),
        },
        _ => false,
    }
}

/// A call as lowered: the head and the operands stored in the call's slots,
/// then the call itself.
fn pure_call(items: &[Expr], cs: &CallSite, calls: &[CallSite], deps: &mut Vec<PureDep>) -> bool {
    let n = cs.argc as usize + 2;
    if items.len() != n {
        return false;
    }
    let sym = match &items[0] {
        Expr::Store(s, head) if *s == cs.base => match **head {
            Expr::Global { sym, bound: true, in_table: true, .. } => sym,
            _ => return false,
        },
        _ => return false,
    };
    let dep = match (&items[n - 1], cs.prim) {
        (Expr::Prim { op: Some(op), .. }, Some(prim)) if inline_op(*op, cs.argc) => PureDep::Prim { sym, prim },
        (Expr::Call(_), _) if cs.self_call => PureDep::SelfCall { sym },
        _ => return false,
    };
    deps.push(dep);
    items[1..n - 1].iter().enumerate().all(|(k, x)| matches!(x, Expr::Store(s, a) if *s == cs.base + 1 + k as u32 && pure_expr(a, calls, deps)))
}
