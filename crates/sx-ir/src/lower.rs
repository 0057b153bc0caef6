//! Lowering an analysed lambda (`sx_cek::code::Code`) to the IR.

use crate::{CallSite, Expr, Flat, FnMeta, IcCell, IrFunction, LowerError, Site, SiteFrame, SiteId, Slot, ENV_SLOT, FLAT_VARS};
use std::rc::Rc;
use sx_cek::code::{Code, Node, NodeId};
use sx_cek::Machine;
use sx_core::heap::Obj;
use sx_core::Value;

/// Deeper expression trees are left to the interpreter.
const MAX_DEPTH: usize = 200;
/// Larger lambdas are left to the interpreter.
const MAX_NODES: usize = 20_000;

struct Lowering<'a> {
    code: &'a Code,
    m: &'a Machine,
    /// Pending CEK frames at the point being lowered (outermost first).
    chain: Vec<SiteFrame>,
    sites: Vec<Site>,
    next_slot: Slot,
    max_slot: Slot,
    interpreted: u32,
    depth: usize,
    children: Vec<Rc<Code>>,
    /// Lowering a flat function: frame variables are slots.
    flat: bool,
    ics: u32,
    calls: Vec<CallSite>,
    body: Option<Expr>,
}

/// Lower the body of lambda `code`. `m` is consulted for what global call
/// heads are bound to now (a head that is a macro, or unbound, is left to
/// the interpreter, which expands macros defined after analysis).
pub fn lower(code: &Rc<Code>, m: &Machine) -> Result<IrFunction, LowerError> {
    if code.params.is_none() {
        return Err(LowerError::NotALambda);
    }
    if code.nodes.len() > MAX_NODES {
        return Err(LowerError::TooLarge(format!("{} nodes", code.nodes.len())));
    }
    if let Some(flat) = flat_shape(code) {
        let l = run(code, m, Some(flat))?;
        if l.interpreted == 0 && l.max_slot <= MAX_FLAT_SLOTS {
            return Ok(l.finish(code, Some(flat)));
        }
    }
    let l = run(code, m, None)?;
    if matches!(l.body, Some(Expr::Interp { .. })) {
        return Err(LowerError::AllInterpreted);
    }
    Ok(l.finish(code, None))
}

/// Flat functions have at most this many slots.
pub const MAX_FLAT_SLOTS: u32 = 64;

fn run<'a>(code: &'a Rc<Code>, m: &'a Machine, flat: Option<Flat>) -> Result<Lowering<'a>, LowerError> {
    let first = match flat {
        Some(f) => FLAT_VARS + u32::from(f.frame_size),
        None => ENV_SLOT + 1,
    };
    let mut l = Lowering { code, m, chain: Vec::new(), sites: Vec::new(), next_slot: first, max_slot: first, interpreted: 0, depth: 0, children: Vec::new(), flat: flat.is_some(), ics: 0, calls: Vec::new(), body: None };
    l.body = Some(l.node(code.root, ENV_SLOT, true)?);
    Ok(l)
}

/// The shape of `code` if it can be flat: fixed parameters and no node that
/// needs the environment as an object.
fn flat_shape(code: &Code) -> Option<Flat> {
    let p = code.params.as_ref()?;
    if p.rest || !p.keys.is_empty() || p.frame_size > 32 {
        return None;
    }
    let env_free = code.nodes.iter().all(|n| {
        matches!(
            n,
            Node::Const(_) | Node::Local { .. } | Node::Local0 { .. } | Node::Global { .. } | Node::SetLocal { .. } | Node::SetGlobal { .. } | Node::If { .. } | Node::Seq(_) | Node::And(_) | Node::Or(_) | Node::Call { .. } | Node::Case { .. }
        )
    });
    env_free.then_some(Flat { nparams: p.required, frame_size: p.frame_size.max(p.required) })
}

impl Lowering<'_> {
    fn finish(self, code: &Rc<Code>, flat: Option<Flat>) -> IrFunction {
        let ics: Box<[IcCell]> = (0..self.ics).map(|_| IcCell::default()).collect();
        let body = self.body.unwrap_or(Expr::Const(Value::NIL.0));
        let pure = flat.and_then(|_| crate::pure::analyse(&body, &self.calls));
        let meta = FnMeta { code: code.clone(), nslots: self.max_slot, sites: self.sites, children: self.children, interpreted_nodes: self.interpreted, flat, ics, calls: self.calls.into(), pure };
        IrFunction { meta: Box::new(meta), body }
    }

    /// A variable read: frame variables of a flat function are slots; its
    /// captured environment (slot 0) is one frame up.
    fn local(&self, env: Slot, depth: u16, slot: u16) -> Expr {
        if !self.flat {
            return Expr::Local { env, depth, slot };
        }
        if depth == 0 {
            Expr::Slot(FLAT_VARS + u32::from(slot))
        } else {
            Expr::Local { env, depth: depth - 1, slot }
        }
    }

    fn alloc(&mut self, n: u32) -> Slot {
        let s = self.next_slot;
        self.next_slot += n;
        self.max_slot = self.max_slot.max(self.next_slot);
        s
    }

    fn site(&mut self) -> SiteId {
        self.sites.push(Site { frames: self.chain.clone() });
        (self.sites.len() - 1) as SiteId
    }

    /// A site whose innermost frame is `extra`.
    fn site_with(&mut self, extra: SiteFrame) -> SiteId {
        let mut frames = self.chain.clone();
        frames.push(extra);
        self.sites.push(Site { frames });
        (self.sites.len() - 1) as SiteId
    }

    /// Lower `sub` while node `n` waits for it as sub-expression `i`.
    fn pending(&mut self, n: NodeId, i: u32, env: Slot, vals: Slot, nvals: u32, sub: NodeId) -> Result<Expr, LowerError> {
        self.chain.push(SiteFrame { node: n, i, env, vals, nvals });
        let r = self.node(sub, env, false);
        self.chain.pop();
        r
    }

    fn interp(&mut self, n: NodeId, env: Slot) -> Expr {
        self.interpreted += 1;
        let site = self.site();
        Expr::Interp { node: n, env, site }
    }

    /// Is the global call head `head` bound to something the compiled call
    /// may apply (not a macro, not unbound)?
    fn head_is_callable(&self, head: NodeId) -> bool {
        match self.code.nodes[head as usize] {
            Node::Global { sym } => {
                let v = self.m.global(sym);
                v != Value::UNBOUND && !matches!(self.m.rt.heap.get(v), Some(Obj::Macro(_)))
            }
            _ => true,
        }
    }

    /// Does global call head `head` hold a closure of the function being
    /// lowered, called with as many arguments as a flat function takes?
    fn is_self_call(&self, head: NodeId, argc: usize) -> bool {
        let Node::Global { sym } = self.code.nodes[head as usize] else { return false };
        let takes = self.code.params.as_ref().map(|p| usize::from(p.required));
        self.flat && takes == Some(argc) && crate::pure::global_is_closure_of(self.m, sym, self.code)
    }

    fn node(&mut self, n: NodeId, env: Slot, tail: bool) -> Result<Expr, LowerError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(LowerError::TooLarge(format!("expression deeper than {MAX_DEPTH}")));
        }
        let r = self.node_inner(n, env, tail);
        self.depth -= 1;
        r
    }

    fn node_inner(&mut self, n: NodeId, env: Slot, tail: bool) -> Result<Expr, LowerError> {
        let code = self.code;
        Ok(match &code.nodes[n as usize] {
            Node::Const(v) => Expr::Const(v.0),
            Node::Local0 { slot } => self.local(env, 0, *slot),
            Node::Local { depth, slot } => self.local(env, *depth, *slot),
            Node::Global { sym } => {
                let site = self.site();
                Expr::Global { sym: *sym, node: n, env, site, in_table: (*sym as usize) < self.m.globals_len(), bound: self.m.global(*sym) != Value::UNBOUND }
            }
            Node::SetLocal { depth, slot, value, .. } => {
                let v = self.pending(n, 0, env, 0, 0, *value)?;
                match (self.flat, *depth) {
                    (true, 0) => Expr::Store(FLAT_VARS + u32::from(*slot), Box::new(v)),
                    (true, d) => Expr::SetLocal { env, depth: d - 1, slot: *slot, value: Box::new(v) },
                    _ => Expr::SetLocal { env, depth: *depth, slot: *slot, value: Box::new(v) },
                }
            }
            Node::SetGlobal { sym, value, define } => {
                let v = self.pending(n, 0, env, 0, 0, *value)?;
                let bail = self.site_with(SiteFrame { node: n, i: 0, env, vals: 0, nvals: 0 });
                Expr::SetGlobal { sym: *sym, define: *define, value: Box::new(v), bail }
            }
            Node::If { test, then, els } => {
                let t = self.pending(n, 0, env, 0, 0, *test)?;
                let a = self.node(*then, env, tail)?;
                let b = self.node(*els, env, tail)?;
                Expr::If { test: Box::new(t), then: Box::new(a), els: Box::new(b) }
            }
            Node::Seq(items) | Node::And(items) | Node::Or(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (k, item) in items.iter().enumerate() {
                    if k + 1 < items.len() {
                        out.push(self.pending(n, k as u32, env, 0, 0, *item)?);
                    } else {
                        out.push(self.node(*item, env, tail)?);
                    }
                }
                match &code.nodes[n as usize] {
                    Node::Seq(_) => Expr::Seq(out),
                    Node::And(_) => Expr::And(out),
                    _ => Expr::Or(out),
                }
            }
            Node::Lambda(lc) | Node::Macro(lc) => {
                self.children.push(lc.clone());
                Expr::Closure { child: (self.children.len() - 1) as u32, env, is_macro: matches!(code.nodes[n as usize], Node::Macro(_)) }
            }
            Node::Call { head, args, prim, op, .. } => {
                if !self.head_is_callable(*head) {
                    return Ok(self.interp(n, env));
                }
                let saved = self.next_slot;
                let argc = args.len() as u32;
                let base = self.alloc(argc + 1);
                let mut seq = Vec::with_capacity(args.len() + 2);
                for k in 0..=argc {
                    let sub = if k == 0 { *head } else { args[k as usize - 1] };
                    let e = self.pending(n, k, env, base, k, sub)?;
                    seq.push(Expr::Store(base + k, Box::new(e)));
                }
                let site = self.site();
                let bail = self.site_with(SiteFrame { node: n, i: argc, env, vals: base, nvals: argc });
                let call = self.calls.len() as u32;
                let self_call = self.is_self_call(*head, args.len());
                let mut cs = CallSite { base, argc, tail, site, bail, ic: None, prim: None, self_call };
                seq.push(match prim {
                    Some((p, _)) if self.m.prim_native(*p).is_some() => {
                        cs.prim = Some(*p);
                        Expr::Prim { op: *op, call }
                    }
                    _ => {
                        cs.ic = Some(self.ics);
                        self.ics += 1;
                        Expr::Call(call)
                    }
                });
                self.calls.push(cs);
                self.next_slot = saved;
                Expr::Seq(seq)
            }
            Node::Let { inits, body, size, rec } => {
                let saved = self.next_slot;
                let mut seq = Vec::new();
                let dest;
                if *rec {
                    dest = self.alloc(1);
                    seq.push(Expr::NewEnv { parent: env, base: 0, n: 0, size: u32::from(*size), dest });
                    for (k, init) in inits.iter().enumerate() {
                        let v = self.pending(n, k as u32, dest, 0, 0, *init)?;
                        seq.push(Expr::SetLocal { env: dest, depth: 0, slot: k as u16, value: Box::new(v) });
                    }
                } else {
                    let base = self.alloc(inits.len() as u32);
                    for (k, init) in inits.iter().enumerate() {
                        let e = self.pending(n, k as u32, env, base, k as u32, *init)?;
                        seq.push(Expr::Store(base + k as u32, Box::new(e)));
                    }
                    dest = self.alloc(1);
                    seq.push(Expr::NewEnv { parent: env, base, n: inits.len() as u32, size: u32::from(*size), dest });
                }
                seq.push(self.node(*body, dest, tail)?);
                self.next_slot = saved;
                Expr::Seq(seq)
            }
            Node::Case { key, clauses, els } => {
                let k = self.pending(n, 0, env, 0, 0, *key)?;
                let mut arms = Vec::with_capacity(clauses.len());
                for (_, body) in clauses.iter() {
                    arms.push(self.node(*body, env, tail)?);
                }
                let els = match els {
                    Some(e) => self.node(*e, env, tail)?,
                    None => Expr::Const(Value::NIL.0),
                };
                Expr::Case { node: n, key: Box::new(k), arms, els: Box::new(els) }
            }
            // Left to the interpreter: data constructors, dispatch, control
            // delimiters and handlers. Their sub-expressions run in the CEK,
            // and the lambdas they call are compiled on their own.
            Node::Dict { .. }
            | Node::QList(_)
            | Node::Match { .. }
            | Node::Reset(_)
            | Node::Shift { .. }
            | Node::Guard { .. }
            | Node::HandlerBind { .. }
            | Node::Scope { .. }
            | Node::ReRaise => self.interp(n, env),
        })
    }
}

#[cfg(test)]
mod tests;
