//! sx-ir → Cranelift IR.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, Block, BlockArg, Function, InstBuilder, MemFlagsData, SigRef, Signature, Value};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use std::collections::HashMap;
use sx_ir::{ic_offsets, BinOp, CallId, CallSite, Expr, IrFunction, Slot};
use sx_jit::helpers::{HelperId, HelperInfo};
use sx_jit::{ctx_offsets, prim_word, words, CompileError};

struct Gen<'a, 'b> {
    b: FunctionBuilder<'b>,
    /// The function's calls (`FnMeta::calls`).
    calls: &'a [CallSite],
    helpers: &'a [HelperInfo],
    sigs: HashMap<usize, SigRef>,
    /// Signatures of direct entries by argument count.
    direct_sigs: HashMap<u32, SigRef>,
    call_conv: CallConv,
    ctx: Value,
    fp: Value,
    meta: u64,
    /// The address of the metadata's first inline cache.
    ics_base: u64,
    /// The function is a flat function's direct entry (tail calling
    /// convention): it can tail-call other direct entries.
    direct: bool,
    /// Restores the shadow stack and returns its parameter.
    exit: Block,
    /// The value each slot holds, where known on the current path (slots
    /// change only by this function's own stores).
    cache: HashMap<Slot, Value>,
    /// Slots stored since each enclosing branch began.
    stored: Vec<Vec<Slot>>,
    /// Slot stores not yet written to memory.
    pending: Vec<(Slot, Value)>,
    /// `pending` at each enclosing fork.
    pending_stack: Vec<Vec<(Slot, Value)>>,
    /// Slots below this hold variables (written at once).
    first_temp: Slot,
}

/// The signature of a flat function's direct entry with `n` arguments.
pub(crate) fn direct_signature(n: u32) -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    for _ in 0..n + 2 {
        sig.params.push(AbiParam::new(I64));
    }
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// Build `func` (whose signature is already set) from `f`: the generic
/// entry `(ctx, env)` of a function that is not flat, or (`flat`) the
/// direct entry `(ctx, captured_env, args...)` of a flat one.
///
/// `pure`: the function's pure version (see `sx_ir::pure`), which the
/// direct entry tries first.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(func: &mut Function, fctx: &mut FunctionBuilderContext, f: &IrFunction, pure: Option<cranelift_codegen::ir::FuncRef>, helpers: &[HelperInfo], call_conv: CallConv, target: TargetFrontendConfig) -> Result<(), CompileError> {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let ctx = params[0];
    if let Some(p) = pure {
        crate::pure::emit_guard(&mut b, f, p, ctx, &params[2..], helpers, call_conv);
    }
    let flags = MemFlagsData::trusted();
    // Prologue: claim the shadow frame, store the environment (and a flat
    // function's arguments), clear the other slots.
    let fp = b.ins().load(I64, flags, ctx, ctx_offsets::SP);
    let nslots = i64::from(f.meta.nslots);
    let new_sp = b.ins().iadd_imm_s(fp, nslots * 8);
    b.ins().store(flags, new_sp, ctx, ctx_offsets::SP);
    // Count this activation (the depth limit covers compiled frames).
    let depth = b.ins().load(I64, flags, ctx, ctx_offsets::DEPTH);
    let depth = b.ins().iadd_imm_s(depth, 1);
    b.ins().store(flags, depth, ctx, ctx_offsets::DEPTH);
    // The other slots are written before any site or collection can read
    // them; a stale word left by an earlier activation is at worst marked
    // conservatively by the collector (marking a free slot is a no-op).
    let mut cache = HashMap::new();
    for (i, p) in params[1..].iter().enumerate() {
        cache.insert(i as Slot, *p);
    }
    let exit = b.create_block();
    b.append_block_param(exit, I64);
    let meta = &*f.meta as *const sx_ir::FnMeta as u64;
    let direct = f.meta.flat.is_some();
    let ics_base = f.meta.ics.as_ptr() as u64;
    let first_temp = match f.meta.flat {
        Some(fl) => sx_ir::FLAT_VARS + u32::from(fl.frame_size),
        None => 1,
    };
    let mut g = Gen { b, calls: &f.meta.calls, helpers, sigs: HashMap::new(), direct_sigs: HashMap::new(), call_conv, ctx, fp, meta, ics_base, direct, exit, cache: HashMap::new(), stored: Vec::new(), pending: Vec::new(), pending_stack: Vec::new(), first_temp };
    // The parameters stay in registers until the frame is needed.
    for (s, v) in cache {
        g.cache.insert(s, v);
        g.pending.push((s, v));
    }
    // A flat function's other variables (internal defines) start as nil,
    // as in an interpreter frame.
    if let Some(fl) = f.meta.flat {
        let nil = g.word(words::NIL);
        for i in fl.nparams..fl.frame_size {
            let s = sx_ir::FLAT_VARS + u32::from(i);
            g.cache.insert(s, nil);
            g.pending.push((s, nil));
        }
    }
    let v = g.expr(&f.body);
    g.b.ins().jump(exit, &[BlockArg::Value(v)]);
    g.b.switch_to_block(exit);
    g.b.seal_block(exit);
    let r = g.b.block_params(exit)[0];
    g.b.ins().store(flags, g.fp, g.ctx, ctx_offsets::SP);
    g.uncount_activation();
    g.b.ins().return_(&[r]);
    g.b.finalize(target);
    Ok(())
}

/// The argument-vector entry `(ctx, captured_env, argv)` of a flat
/// function: load the arguments and call the direct entry.
pub(crate) fn build_argv_wrapper(func: &mut Function, fctx: &mut FunctionBuilderContext, direct: cranelift_codegen::ir::FuncRef, nparams: u16, target: TargetFrontendConfig) {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let p = b.block_params(entry).to_vec();
    let mut args = vec![p[0], p[1]];
    for i in 0..nparams {
        args.push(b.ins().load(I64, MemFlagsData::trusted(), p[2], i32::from(i) * 8));
    }
    let call = b.ins().call(direct, &args);
    let r = b.inst_results(call)[0];
    b.ins().return_(&[r]);
    b.finalize(target);
}

/// The generic entry `(ctx, env)` of a flat function: unpack the bound
/// environment and call the direct entry `direct`.
pub(crate) fn build_wrapper(func: &mut Function, fctx: &mut FunctionBuilderContext, direct: cranelift_codegen::ir::FuncRef, nparams: u16, helpers: &[HelperInfo], call_conv: CallConv, target: TargetFrontendConfig) {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let ctx = b.block_params(entry)[0];
    let env = b.block_params(entry)[1];
    let mut sig2 = Signature::new(call_conv);
    let mut sig4 = Signature::new(call_conv);
    for _ in 0..2 {
        sig2.params.push(AbiParam::new(I64));
    }
    for _ in 0..4 {
        sig4.params.push(AbiParam::new(I64));
    }
    sig2.returns.push(AbiParam::new(I64));
    sig4.returns.push(AbiParam::new(I64));
    let sig2 = b.import_signature(sig2);
    let sig4 = b.import_signature(sig4);
    let parent_fn = helpers[HelperId::sx_env_parent as usize];
    let get_fn = helpers[HelperId::sx_env_get as usize];
    let addr = b.ins().iconst(I64, parent_fn.addr as i64);
    let call = b.ins().call_indirect(sig2, addr, &[ctx, env]);
    let parent = b.inst_results(call)[0];
    let mut args = vec![ctx, parent];
    let zero = b.ins().iconst(I64, 0);
    for i in 0..nparams {
        let addr = b.ins().iconst(I64, get_fn.addr as i64);
        let slot = b.ins().iconst(I64, i64::from(i));
        let call = b.ins().call_indirect(sig4, addr, &[ctx, env, zero, slot]);
        args.push(b.inst_results(call)[0]);
    }
    let call = b.ins().call(direct, &args);
    let r = b.inst_results(call)[0];
    b.ins().return_(&[r]);
    b.finalize(target);
}

/// The direct entry `(ctx, captured_env, args...)` of a function that is not
/// flat but takes `nparams` fixed parameters: its environment (`frame_size`
/// slots under the captured one, the arguments first) built as the
/// interpreter binds them, then the generic entry `entry`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_binding_entry(func: &mut Function, fctx: &mut FunctionBuilderContext, entry: cranelift_codegen::ir::FuncRef, nparams: u16, frame_size: u16, helpers: &[HelperInfo], call_conv: CallConv, target: TargetFrontendConfig) {
    let mut b = FunctionBuilder::new(func, fctx);
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    b.seal_block(block);
    let params = b.block_params(block).to_vec();
    let (ctx, parent, args) = (params[0], params[1], &params[2..]);
    let argv = if args.is_empty() {
        b.ins().iconst(I64, 0)
    } else {
        let slot = b.create_sized_stack_slot(cranelift_codegen::ir::StackSlotData::new(cranelift_codegen::ir::StackSlotKind::ExplicitSlot, 8 * u32::from(nparams), 3));
        for (i, a) in args.iter().enumerate() {
            b.ins().stack_store(I64, *a, slot, 8 * i as i32);
        }
        b.ins().stack_addr(I64, slot, 0)
    };
    let info = helpers[HelperId::sx_new_env as usize];
    let sig = b.import_signature(helper_signature(call_conv, info.params));
    let addr = b.ins().iconst(I64, info.addr as i64);
    let n = b.ins().iconst(I64, i64::from(nparams));
    let size = b.ins().iconst(I64, i64::from(frame_size));
    let call = b.ins().call_indirect(sig, addr, &[ctx, parent, argv, n, size]);
    let env = b.inst_results(call)[0];
    let call = b.ins().call(entry, &[ctx, env]);
    let r = b.inst_results(call)[0];
    b.ins().return_(&[r]);
    b.finalize(target);
}

/// Fixnum operation `op` on the words `a` and `b`, inline: when either is
/// not a fixnum or the result overflows, branch to `fail`. A comparison
/// yields a machine condition (`as_cond`) or a boolean word.
///
/// `known`: which operands are already known to be fixnums (their tags are
/// not tested again).
pub(crate) fn fixnum_op(b: &mut FunctionBuilder, op: BinOp, x: Value, y: Value, known: (bool, bool), fail: Block, as_cond: bool) -> Value {
    let unknown = match known {
        (true, true) => None,
        (true, false) => Some(y),
        (false, true) => Some(x),
        (false, false) => Some(b.ins().bor(x, y)),
    };
    if let Some(tags) = unknown {
        let low = b.ins().band_imm_s(tags, 1);
        let fast = b.create_block();
        b.ins().brif(low, fail, &[], fast, &[]);
        b.switch_to_block(fast);
        b.seal_block(fast);
    }
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul => {
            let (r, of) = match op {
                BinOp::Add => b.ins().sadd_overflow(x, y),
                BinOp::Sub => b.ins().ssub_overflow(x, y),
                _ => {
                    let y1 = b.ins().sshr_imm_s(y, 1);
                    b.ins().smul_overflow(x, y1)
                }
            };
            let ok = b.create_block();
            b.ins().brif(of, fail, &[], ok, &[]);
            b.switch_to_block(ok);
            b.seal_block(ok);
            r
        }
        _ => {
            let cc = match op {
                BinOp::Lt => IntCC::SignedLessThan,
                BinOp::Gt => IntCC::SignedGreaterThan,
                BinOp::Le => IntCC::SignedLessThanOrEqual,
                BinOp::Ge => IntCC::SignedGreaterThanOrEqual,
                _ => IntCC::Equal,
            };
            let c = b.ins().icmp(cc, x, y);
            if as_cond {
                c
            } else {
                bool_word(b, c)
            }
        }
    }
}

/// The signature of a runtime helper taking `params` words (the context
/// included) and returning one.
pub(crate) fn helper_signature(call_conv: CallConv, params: usize) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..params {
        sig.params.push(AbiParam::new(I64));
    }
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// One operand of `and` (`is_and`) or `or` that is not the last: with
/// value `v` and truth `t`, either leave for merge block `m` with `v` or go
/// on in the returned block (switched to, not sealed).
pub(crate) fn short_circuit(b: &mut FunctionBuilder, is_and: bool, t: Value, v: Value, m: Block) -> Block {
    let next = b.create_block();
    if is_and {
        b.ins().brif(t, next, &[], m, &[BlockArg::Value(v)]);
    } else {
        b.ins().brif(t, m, &[BlockArg::Value(v)], next, &[]);
    }
    b.switch_to_block(next);
    next
}

/// The truth of word `v` (neither nil nor false) as a machine condition.
pub(crate) fn truthy(b: &mut FunctionBuilder, v: Value) -> Value {
    let a = b.ins().icmp_imm_s(IntCC::NotEqual, v, words::NIL as i64);
    let c = b.ins().icmp_imm_s(IntCC::NotEqual, v, words::FALSE as i64);
    b.ins().band(a, c)
}

/// The boolean word of machine condition `c`.
pub(crate) fn bool_word(b: &mut FunctionBuilder, c: Value) -> Value {
    let t = b.ins().iconst(I64, words::TRUE as i64);
    let f = b.ins().iconst(I64, words::FALSE as i64);
    b.ins().select(c, t, f)
}

/// Is `op` a comparison a condition can branch on directly?
pub(crate) fn is_comparison(op: BinOp) -> bool {
    !matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Not)
}

impl Gen<'_, '_> {
    fn flags(&self) -> MemFlagsData {
        MemFlagsData::trusted()
    }

    fn word(&mut self, w: u64) -> Value {
        self.b.ins().iconst(I64, w as i64)
    }

    fn load_slot(&mut self, s: Slot) -> Value {
        if let Some(v) = self.cache.get(&s) {
            return *v;
        }
        let fl = self.flags();
        self.b.ins().load(I64, fl, self.fp, (s * 8) as i32)
    }

    /// Give slot `s` the value `v`. A variable slot is written at once; a
    /// temporary (an operand, a `let` environment) is written only when
    /// something may read the frame — a helper or a call (the collector and
    /// deoptimisation read slots) — and not at all when it dies first.
    fn store_slot(&mut self, s: Slot, v: Value) {
        self.cache.insert(s, v);
        self.pending.retain(|(p, _)| *p != s);
        if s < self.first_temp {
            let fl = self.flags();
            self.b.ins().store(fl, v, self.fp, (s * 8) as i32);
        } else {
            self.pending.push((s, v));
        }
        if let Some(top) = self.stored.last_mut() {
            top.push(s);
        }
    }

    /// Write the delayed stores except those of `skip` (they stay pending:
    /// a path that merges with this one may not have written them; writing
    /// twice is harmless).
    fn emit_pending_except(&mut self, skip: Option<std::ops::RangeInclusive<Slot>>) {
        let fl = self.flags();
        for (s, v) in self.pending.clone() {
            if !skip.as_ref().is_some_and(|r| r.contains(&s)) {
                self.b.ins().store(fl, v, self.fp, (s * 8) as i32);
            }
        }
    }

    fn emit_pending(&mut self) {
        self.emit_pending_except(None);
    }

    /// The operands of a finished call are dead.
    fn forget(&mut self, slots: std::ops::RangeInclusive<Slot>) {
        self.pending.retain(|(s, _)| !slots.contains(s));
    }

    /// Before control flow forks: write delayed variable stores (the
    /// parameters), remember what is known and pending.
    fn fork_begin(&mut self) -> HashMap<Slot, Value> {
        let first_temp = self.first_temp;
        let vars: Vec<(Slot, Value)> = self.pending.iter().copied().filter(|(s, _)| *s < first_temp).collect();
        let fl = self.flags();
        for (s, v) in vars {
            self.b.ins().store(fl, v, self.fp, (s * 8) as i32);
        }
        self.pending.retain(|(s, _)| *s >= first_temp);
        self.pending_stack.push(self.pending.clone());
        self.cache.clone()
    }

    /// Start generating one of the paths: it sees only what was known
    /// before the fork.
    fn fork(&mut self, before: &HashMap<Slot, Value>) {
        self.cache = before.clone();
        self.pending = self.pending_stack.last().cloned().unwrap_or_default();
        self.stored.push(Vec::new());
    }

    /// End a path; returns the slots it stored. Its own temporaries are
    /// dead (their calls finished inside the path).
    fn unfork(&mut self) -> Vec<Slot> {
        self.stored.pop().unwrap_or_default()
    }

    /// One path of a fork: `e` in `block`, then on to `m`; the slots it
    /// stored are added to `stored`.
    fn path(&mut self, block: Block, before: &HashMap<Slot, Value>, e: &Expr, m: Block, stored: &mut Vec<Slot>) {
        self.b.switch_to_block(block);
        self.b.seal_block(block);
        self.fork(before);
        let v = self.expr(e);
        stored.extend(self.unfork());
        self.jump_to(m, v);
    }

    /// After the paths merged: keep what was known before the fork, minus
    /// any slot a path stored; the pending stores are those of before the
    /// fork (temporaries of enclosing calls, which no path touches).
    fn join(&mut self, before: HashMap<Slot, Value>, stored: Vec<Slot>) {
        self.cache = before;
        self.pending = self.pending_stack.pop().unwrap_or_default();
        for s in &stored {
            self.cache.remove(s);
            if let Some(top) = self.stored.last_mut() {
                top.push(*s);
            }
        }
    }

    fn slot_addr(&mut self, s: Slot) -> Value {
        self.b.ins().iadd_imm_s(self.fp, i64::from(s) * 8)
    }

    /// This activation leaves the native stack: take it off the depth.
    fn uncount_activation(&mut self) {
        let fl = MemFlagsData::trusted();
        let depth = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::DEPTH);
        let depth = self.b.ins().iadd_imm_s(depth, -1);
        self.b.ins().store(fl, depth, self.ctx, ctx_offsets::DEPTH);
    }

    fn call(&mut self, h: HelperId, args: &[Value]) -> Value {
        self.emit_pending();
        self.call_keeping_frame(h, args)
    }

    /// Call helper `h` without writing the frame to memory first (for
    /// helpers that neither read the frame nor collect).
    fn call_keeping_frame(&mut self, h: HelperId, args: &[Value]) -> Value {
        let info = self.helpers[h as usize];
        debug_assert_eq!(info.params, args.len() + 1, "{}", info.name);
        let sig = match self.sigs.get(&info.params) {
            Some(s) => *s,
            None => {
                let s = self.b.import_signature(helper_signature(self.call_conv, info.params));
                self.sigs.insert(info.params, s);
                s
            }
        };
        let addr = self.word(info.addr as u64);
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(self.ctx);
        all.extend_from_slice(args);
        let inst = self.b.ins().call_indirect(sig, addr, &all);
        self.b.inst_results(inst)[0]
    }

    fn consts(&mut self, xs: &[u64]) -> Vec<Value> {
        xs.iter().map(|x| self.word(*x)).collect()
    }

    /// Leave the function with `v` when it is `UNWIND`.
    fn check_unwind(&mut self, v: Value) {
        let is = self.b.ins().icmp_imm_s(IntCC::Equal, v, words::UNWIND as i64);
        let cont = self.b.create_block();
        self.b.ins().brif(is, self.exit, &[BlockArg::Value(v)], cont, &[]);
        self.b.switch_to_block(cont);
        self.b.seal_block(cont);
    }

    /// After an unconditional exit: continue in an unreachable block.
    fn dead(&mut self) -> Value {
        let b = self.b.create_block();
        self.b.switch_to_block(b);
        self.b.seal_block(b);
        self.word(words::NIL)
    }

    fn truthy(&mut self, v: Value) -> Value {
        truthy(&mut self.b, v)
    }

    fn merge_block(&mut self) -> Block {
        let m = self.b.create_block();
        self.b.append_block_param(m, I64);
        m
    }

    fn jump_to(&mut self, m: Block, v: Value) {
        self.b.ins().jump(m, &[BlockArg::Value(v)]);
    }

    fn finish_merge(&mut self, m: Block) -> Value {
        self.b.switch_to_block(m);
        self.b.seal_block(m);
        self.b.block_params(m)[0]
    }

    fn expr(&mut self, e: &Expr) -> Value {
        match e {
            Expr::Const(w) => self.word(*w),
            Expr::Slot(s) => self.load_slot(*s),
            Expr::Store(s, x) => {
                let v = self.expr(x);
                self.store_slot(*s, v);
                v
            }
            Expr::Seq(items) => {
                let mut last = None;
                for x in items {
                    last = Some(self.expr(x));
                }
                match last {
                    Some(v) => v,
                    None => self.word(words::NIL),
                }
            }
            Expr::Local { env, depth, slot } => {
                let e = self.load_slot(*env);
                let c = self.consts(&[u64::from(*depth), u64::from(*slot)]);
                self.call(HelperId::sx_env_get, &[e, c[0], c[1]])
            }
            Expr::SetLocal { env, depth, slot, value } => {
                let v = self.expr(value);
                let e = self.load_slot(*env);
                let c = self.consts(&[u64::from(*depth), u64::from(*slot)]);
                self.call(HelperId::sx_env_set, &[e, c[0], c[1], v])
            }
            Expr::Global { sym, node, env, site, in_table, bound } => {
                if *in_table && *bound {
                    let fl = self.flags();
                    let table = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::GLOBALS);
                    self.b.ins().load(I64, fl, table, (*sym as i32) * 8)
                } else {
                    self.global(*sym, *node, *env, *site, *in_table)
                }
            }
            Expr::SetGlobal { sym, define, value, bail } => {
                let v = self.expr(value);
                let c = self.consts(&[self.meta, u64::from(*sym)]);
                let d = self.word(u64::from(*define));
                let bl = self.word(u64::from(*bail));
                let r = self.call(HelperId::sx_set_global, &[c[0], self.fp, c[1], v, d, bl]);
                self.check_unwind(r);
                r
            }
            Expr::If { test, then, els } => {
                let c = self.cond(test);
                let before = self.fork_begin();
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                let m = self.merge_block();
                self.b.ins().brif(c, tb, &[], eb, &[]);
                let mut stored = Vec::new();
                self.path(tb, &before, then, m, &mut stored);
                self.path(eb, &before, els, m, &mut stored);
                self.join(before, stored);
                self.finish_merge(m)
            }
            Expr::And(items) | Expr::Or(items) => {
                let is_and = matches!(e, Expr::And(_));
                let m = self.merge_block();
                let before = self.fork_begin();
                self.stored.push(Vec::new());
                for (k, x) in items.iter().enumerate() {
                    let v = self.expr(x);
                    if k + 1 == items.len() {
                        self.jump_to(m, v);
                    } else {
                        let t = self.truthy(v);
                        let next = short_circuit(&mut self.b, is_and, t, v, m);
                        self.b.seal_block(next);
                    }
                }
                if items.is_empty() {
                    let v = self.word(if is_and { words::TRUE } else { words::NIL });
                    self.jump_to(m, v);
                }
                let stored = self.unfork();
                self.join(before, stored);
                self.finish_merge(m)
            }
            Expr::Closure { child, env, is_macro } => {
                let e = self.load_slot(*env);
                let c = self.consts(&[self.meta, u64::from(*child), u64::from(*is_macro)]);
                self.call(HelperId::sx_closure, &[c[0], c[1], e, c[2]])
            }
            Expr::NewEnv { parent, base, n, size, dest } => {
                let p = self.load_slot(*parent);
                let argv = self.slot_addr(*base);
                let c = self.consts(&[u64::from(*n), u64::from(*size)]);
                let e = self.call(HelperId::sx_new_env, &[p, argv, c[0], c[1]]);
                self.store_slot(*dest, e);
                e
            }
            Expr::Call(call) => self.cached_call(*call),
            Expr::Prim { op, call } => self.prim(*op, *call, false),
            Expr::Case { node, key, arms, els } => {
                let k = self.expr(key);
                let c = self.consts(&[self.meta, u64::from(*node)]);
                let idx = self.call(HelperId::sx_case, &[c[0], c[1], k]);
                let m = self.merge_block();
                let before = self.fork_begin();
                let mut stored = Vec::new();
                for (i, arm) in arms.iter().enumerate() {
                    let hit = self.b.ins().icmp_imm_s(IntCC::Equal, idx, i as i64);
                    let yes = self.b.create_block();
                    let no = self.b.create_block();
                    self.b.ins().brif(hit, yes, &[], no, &[]);
                    self.path(yes, &before, arm, m, &mut stored);
                    self.b.switch_to_block(no);
                    self.b.seal_block(no);
                }
                let eb = self.b.create_block();
                self.b.ins().jump(eb, &[]);
                self.path(eb, &before, els, m, &mut stored);
                self.join(before, stored);
                self.finish_merge(m)
            }
            Expr::Interp { node, env, site } => {
                let e = self.load_slot(*env);
                let c = self.consts(&[self.meta, u64::from(*node), u64::from(*site)]);
                let r = self.call(HelperId::sx_interp, &[c[0], self.fp, c[1], e, c[2]]);
                self.check_unwind(r);
                r
            }
        }
    }

    fn global(&mut self, sym: u32, node: u32, env: Slot, site: u32, in_table: bool) -> Value {
        let fl = self.flags();
        let load = self.b.create_block();
        let unbound = self.b.create_block();
        let m = self.merge_block();
        if in_table {
            self.b.ins().jump(load, &[]);
        } else {
            let len = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::GLOBALS_LEN);
            let in_range = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, len, i64::from(sym));
            self.b.ins().brif(in_range, load, &[], unbound, &[]);
        }
        self.b.switch_to_block(load);
        self.b.seal_block(load);
        let table = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::GLOBALS);
        let v = self.b.ins().load(I64, fl, table, (sym as i32) * 8);
        let is_unbound = self.b.ins().icmp_imm_s(IntCC::Equal, v, words::UNBOUND as i64);
        self.b.ins().brif(is_unbound, unbound, &[], m, &[BlockArg::Value(v)]);
        self.b.switch_to_block(unbound);
        self.b.seal_block(unbound);
        let e = self.load_slot(env);
        let c = self.consts(&[self.meta, u64::from(site), u64::from(node)]);
        let r = self.call(HelperId::sx_unbound, &[c[0], self.fp, c[1], c[2], e]);
        self.b.ins().jump(self.exit, &[BlockArg::Value(r)]);
        self.finish_merge(m)
    }

    fn direct_sig(&mut self, argc: u32) -> SigRef {
        if let Some(s) = self.direct_sigs.get(&argc) {
            return *s;
        }
        let s = self.b.import_signature(direct_signature(argc));
        self.direct_sigs.insert(argc, s);
        s
    }

    /// A call through inline cache `ic`: when it holds the callee (a flat
    /// function) and the epoch is current, call its direct entry (a tail
    /// call from a direct entry becomes a native tail call); otherwise the
    /// runtime performs the call and fills the cache.
    fn cached_call(&mut self, call: CallId) -> Value {
        let CallSite { base, argc, tail, site, ic, .. } = self.calls[call as usize];
        let Some(ic) = ic else { return self.slow_call(call) };
        let fl = self.flags();
        let ic_addr = self.meta_ic_addr(ic);
        let f = self.load_slot(base);
        let cached = self.b.ins().load(I64, fl, ic_addr, ic_offsets::CLOSURE);
        let same = self.b.ins().icmp(IntCC::Equal, f, cached);
        let check = self.b.create_block();
        let relink = self.b.create_block();
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let m = self.merge_block();
        self.b.ins().brif(same, check, &[], relink, &[]);
        self.b.set_cold_block(slow);
        // Another closure of the same code (a closure made anew each time
        // round, say) takes the cache over.
        self.b.switch_to_block(relink);
        self.b.seal_block(relink);
        let relinked = self.call_keeping_frame(HelperId::sx_ic_relink, &[ic_addr, f]);
        self.b.ins().brif(relinked, check, &[], slow, &[]);
        self.b.switch_to_block(check);
        self.b.seal_block(check);
        let ic_epoch = self.b.ins().load(I64, fl, ic_addr, ic_offsets::EPOCH);
        let epoch = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::EPOCH);
        let ok = self.b.ins().icmp(IntCC::Equal, ic_epoch, epoch);
        // A tail call goes direct only to a flat function (which can
        // itself tail call natively); a tail call of one that builds its
        // environment is left to the runtime's trampoline, so that loops
        // through it do not nest.
        let ok = if tail {
            let flat = self.b.ins().load(I64, fl, ic_addr, ic_offsets::FLAT);
            let flat = self.b.ins().icmp_imm_s(IntCC::NotEqual, flat, 0);
            self.b.ins().band(ok, flat)
        } else {
            ok
        };
        let ok = if tail && self.direct {
            // A native tail call: bounded by the budget (safepoints).
            let budget = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::TAIL_BUDGET);
            let left = self.b.ins().icmp_imm_s(IntCC::NotEqual, budget, 0);
            self.b.ins().band(ok, left)
        } else {
            let sp = self.b.ins().get_stack_pointer(I64);
            let limit = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::STACK_LIMIT);
            let deep_ok = self.b.ins().icmp(IntCC::UnsignedGreaterThan, sp, limit);
            let shadow = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::SP);
            let soft = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::SHADOW_SOFT_END);
            let room = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, shadow, soft);
            // Below the depth limit (at it, the runtime decides).
            let depth = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::DEPTH);
            let depth_limit = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::DEPTH_LIMIT);
            let shallow = self.b.ins().icmp(IntCC::UnsignedLessThan, depth, depth_limit);
            let a = self.b.ins().band(ok, deep_ok);
            let a = self.b.ins().band(a, shallow);
            self.b.ins().band(a, room)
        };
        self.b.ins().brif(ok, fast, &[], slow, &[]);

        // Fast: the direct entry.
        self.b.switch_to_block(fast);
        self.b.seal_block(fast);
        let entry = self.b.ins().load(I64, fl, ic_addr, ic_offsets::ENTRY);
        let env = self.b.ins().load(I64, fl, ic_addr, ic_offsets::ENV);
        let mut args = vec![self.ctx, env];
        for k in 0..argc {
            args.push(self.load_slot(base + 1 + k));
        }
        let calls = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::DIRECT_CALLS);
        let calls = self.b.ins().iadd_imm_s(calls, 1);
        self.b.ins().store(fl, calls, self.ctx, ctx_offsets::DIRECT_CALLS);
        if !(tail && self.direct) {
            // Now and then a safepoint, so that recursion that never loops
            // still notices an interrupt and collects garbage (then the
            // runtime makes the call, and raises it or collects).
            let poll = self.b.ins().band_imm_s(calls, sx_jit::SAFEPOINT_MASK as i64);
            let go = self.b.create_block();
            let polled = self.b.create_block();
            let interrupted = self.b.create_block();
            self.b.ins().brif(poll, go, &[], polled, &[]);
            self.b.set_cold_block(polled);
            self.b.switch_to_block(polled);
            self.b.seal_block(polled);
            let go_on = self.call_keeping_frame(HelperId::sx_call_poll, &[]);
            self.b.ins().brif(go_on, go, &[], interrupted, &[]);
            self.b.set_cold_block(interrupted);
            self.b.switch_to_block(interrupted);
            self.b.seal_block(interrupted);
            // The runtime counts the call it makes.
            let uncount = self.b.ins().iadd_imm_s(calls, -1);
            self.b.ins().store(fl, uncount, self.ctx, ctx_offsets::DIRECT_CALLS);
            self.b.ins().jump(slow, &[]);
            self.b.switch_to_block(go);
            self.b.seal_block(go);
        }
        let sig = self.direct_sig(argc);
        if tail && self.direct {
            let budget = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::TAIL_BUDGET);
            let budget = self.b.ins().iadd_imm_s(budget, -1);
            self.b.ins().store(fl, budget, self.ctx, ctx_offsets::TAIL_BUDGET);
            // Pop this activation's shadow frame: the callee's takes its place.
            self.b.ins().store(fl, self.fp, self.ctx, ctx_offsets::SP);
            self.uncount_activation();
            self.b.ins().return_call_indirect(sig, entry, &args);
        } else {
            // The callee may collect or deoptimise: the frame must be in
            // memory (but not this call's operands: the callee has them).
            self.emit_pending_except(Some(base..=base + argc));
            let inst = self.b.ins().call_indirect(sig, entry, &args);
            let r = self.b.inst_results(inst)[0];
            // One test for both sentinels on the common path.
            let low = self.b.ins().band_imm_s(r, 0xff);
            let special = self.b.ins().icmp_imm_s(IntCC::Equal, low, words::SENTINEL_LOW_BYTE as i64);
            let rare = self.b.create_block();
            let ordinary = self.b.create_block();
            self.b.ins().brif(special, rare, &[], ordinary, &[]);
            self.b.set_cold_block(rare);
            self.b.switch_to_block(rare);
            self.b.seal_block(rare);
            let unwound = self.b.create_block();
            let not_unwound = self.b.create_block();
            let is_unwind = self.b.ins().icmp_imm_s(IntCC::Equal, r, words::UNWIND as i64);
            self.b.ins().brif(is_unwind, unwound, &[], not_unwound, &[]);
            self.b.switch_to_block(unwound);
            self.b.seal_block(unwound);
            let c = self.consts(&[self.meta, u64::from(site)]);
            let u = self.call(HelperId::sx_unwound, &[c[0], self.fp, c[1]]);
            self.b.ins().jump(self.exit, &[BlockArg::Value(u)]);
            self.b.switch_to_block(not_unwound);
            self.b.seal_block(not_unwound);
            if tail {
                // Our caller performs a tail call the callee left.
                self.jump_to(m, r);
            } else {
                // `TAIL` (the only other sentinel): perform it.
                let c = self.consts(&[self.meta, u64::from(site)]);
                let t = self.call(HelperId::sx_run_tail, &[c[0], self.fp, c[1]]);
                self.check_unwind(t);
                self.jump_to(m, t);
            }
            self.b.switch_to_block(ordinary);
            self.b.seal_block(ordinary);
            self.jump_to(m, r);
        }

        // Slow: the runtime.
        self.b.switch_to_block(slow);
        self.b.seal_block(slow);
        let r = self.slow_call(call);
        self.jump_to(m, r);
        let v = self.finish_merge(m);
        self.forget(base..=base + argc);
        if tail {
            // In tail position the value leaves the function as it is (a
            // `TAIL` from the fast path included).
            self.b.ins().jump(self.exit, &[BlockArg::Value(v)]);
            return self.dead();
        }
        v
    }

    /// The address of inline cache `ic` (in the metadata, which lives as
    /// long as the code).
    fn meta_ic_addr(&mut self, ic: u32) -> Value {
        let addr = self.ics_base + u64::from(ic) * ic_offsets::SIZE as u64;
        self.word(addr)
    }

    /// Call `call` through the runtime (helper `sx_call`). In tail
    /// position the activation ends with what it returns (a value, or the
    /// `TAIL` it leaves for the caller).
    fn slow_call(&mut self, call: CallId) -> Value {
        let c = self.consts(&[self.meta, u64::from(call)]);
        let r = self.call(HelperId::sx_call, &[c[0], self.fp, c[1]]);
        if self.calls[call as usize].tail {
            self.b.ins().jump(self.exit, &[BlockArg::Value(r)]);
            return self.dead();
        }
        self.check_unwind(r);
        r
    }

    /// The truth of `e` as a machine condition: a comparison of fixnums
    /// branches on the comparison itself, without making a boolean word.
    fn cond(&mut self, e: &Expr) -> Value {
        if let Expr::Seq(items) = e {
            if let Some((Expr::Prim { op: Some(op), call }, init)) = items.split_last() {
                if self.calls[*call as usize].argc == 2 && is_comparison(*op) {
                    for x in init {
                        self.expr(x);
                    }
                    return self.prim(Some(*op), *call, true);
                }
            }
        }
        let v = self.expr(e);
        self.truthy(v)
    }

    /// A primitive call; with `as_cond` its truth as a machine condition.
    fn prim(&mut self, op: Option<BinOp>, call: CallId, as_cond: bool) -> Value {
        let CallSite { base, argc, prim, .. } = self.calls[call as usize];
        let prim = prim.unwrap_or(u32::MAX);
        let head = self.load_slot(base);
        let is_prim = self.b.ins().icmp_imm_s(IntCC::Equal, head, prim_word(prim) as i64);
        let direct = self.b.create_block();
        let slow = self.b.create_block();
        let m = self.b.create_block();
        self.b.append_block_param(m, if as_cond { cranelift_codegen::ir::types::I8 } else { I64 });
        self.b.ins().brif(is_prim, direct, &[], slow, &[]);
        self.b.set_cold_block(slow);

        // Still the primitive: inline for fixnums.
        self.b.switch_to_block(direct);
        self.b.seal_block(direct);
        match op {
            Some(BinOp::Not) if argc == 1 => {
                let a = self.load_slot(base + 1);
                let t = self.truthy(a);
                let f = self.word(words::FALSE);
                let tr = self.word(words::TRUE);
                let r = self.b.ins().select(t, f, tr);
                self.jump_to(m, r);
            }
            Some(op) if op != BinOp::Not && argc == 2 => {
                let a = self.load_slot(base + 1);
                let b = self.load_slot(base + 2);
                let r = fixnum_op(&mut self.b, op, a, b, (false, false), slow, as_cond);
                self.jump_to(m, r);
            }
            _ => {
                self.b.ins().jump(slow, &[]);
            }
        }
        // Anything else (another head, other operands, overflow): the
        // runtime, out of line.
        self.b.switch_to_block(slow);
        self.b.seal_block(slow);
        let r = self.slow_call(call);
        let r = if as_cond { self.truthy(r) } else { r };
        self.jump_to(m, r);
        let v = self.finish_merge(m);
        self.forget(base..=base + argc);
        v
    }
}
