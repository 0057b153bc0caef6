//! Pure versions of flat functions (see `sx_ir::pure`): the function
//! itself, and the guard at the top of the ordinary direct entry that runs
//! it.

use crate::codegen::{fixnum_op, helper_signature, is_comparison, short_circuit, truthy};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, Block, BlockArg, FuncRef, Function, InstBuilder, MemFlagsData, SigRef, Signature, Value};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use std::collections::{HashMap, HashSet};
use sx_ir::pure::PURE_DISABLED;
use sx_ir::{BinOp, CallSite, Expr, IrFunction, Slot, FLAT_VARS};
use sx_jit::helpers::{HelperId, HelperInfo};
use sx_jit::{ctx_offsets, words};

/// The signature of a pure version with `n` arguments: `(ctx, args...,
/// left)`, where `left` is how many more activations nested in this one the
/// depth limit allows (see `PureGen::left`).
pub(crate) fn signature(n: u16, call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..=n + 1 {
        sig.params.push(AbiParam::new(I64));
    }
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// Import helper `h` into the function being built: its signature and
/// address.
fn helper(b: &mut FunctionBuilder, helpers: &[HelperInfo], h: HelperId, call_conv: CallConv) -> (SigRef, Value) {
    let info = helpers[h as usize];
    let sig = b.import_signature(helper_signature(call_conv, info.params));
    let addr = b.ins().iconst(I64, info.addr as i64);
    (sig, addr)
}

/// At the top of a flat function's direct entry (`args` its arguments):
/// when the pure version `pure` may run (its assumptions checked at the
/// runtime's current epoch) and every argument is a fixnum, return what it
/// returns; when it gives up, disable it and go on. Leaves the builder in
/// the block where the ordinary function begins.
pub(crate) fn emit_guard(b: &mut FunctionBuilder, f: &IrFunction, pure: FuncRef, ctx: Value, args: &[Value], helpers: &[HelperInfo], call_conv: CallConv) {
    let Some(p) = &f.meta.pure else { return };
    let fl = MemFlagsData::trusted();
    let meta = &*f.meta as *const sx_ir::FnMeta as i64;
    let cell = b.ins().iconst(I64, p.valid_at.as_ptr() as i64);
    let at = b.ins().load(I64, fl, cell, 0);
    let now = b.ins().load(I64, fl, ctx, ctx_offsets::ASSUMPTIONS_EPOCH);
    let attempt = b.create_block();
    let stale = b.create_block();
    let recheck = b.create_block();
    let bailed = b.create_block();
    let done = b.create_block();
    let ordinary = b.create_block();
    let fixnums = match args.split_first() {
        Some((first, rest)) => {
            let tags = rest.iter().fold(*first, |acc, a| b.ins().bor(acc, *a));
            let low = b.ins().band_imm_s(tags, 1);
            b.ins().icmp_imm_s(IntCC::Equal, low, 0)
        }
        None => b.ins().iconst(cranelift_codegen::ir::types::I8, 1),
    };
    let same = b.ins().icmp(IntCC::Equal, at, now);
    let go = b.ins().band(same, fixnums);
    b.ins().brif(go, attempt, &[], stale, &[]);

    // Not now: arguments of another type, or assumptions to check again.
    b.set_cold_block(stale);
    b.switch_to_block(stale);
    b.seal_block(stale);
    let enabled = b.ins().icmp_imm_s(IntCC::NotEqual, at, PURE_DISABLED as i64);
    let worth = b.ins().band(enabled, fixnums);
    b.ins().brif(worth, recheck, &[], ordinary, &[]);
    b.set_cold_block(recheck);
    b.switch_to_block(recheck);
    b.seal_block(recheck);
    let (sig, addr) = helper(b, helpers, HelperId::sx_pure_check, call_conv);
    let m = b.ins().iconst(I64, meta);
    let call = b.ins().call_indirect(sig, addr, &[ctx, m]);
    let ok = b.inst_results(call)[0];
    b.ins().brif(ok, attempt, &[], ordinary, &[]);

    // The attempt.
    b.switch_to_block(attempt);
    b.seal_block(attempt);
    // This activation is within the limit (its caller checked). A call
    // nested in it is a frame of this activation's continuation, as in the
    // interpreter: the limit allows one while the activations on the native
    // stack, this one included, number at most `depth_limit` (the runtime's
    // check in `JitTier::call`); so `depth_limit - depth` of them.
    let depth = b.ins().load(I64, fl, ctx, ctx_offsets::DEPTH);
    let depth_limit = b.ins().load(I64, fl, ctx, ctx_offsets::DEPTH_LIMIT);
    let room = b.ins().icmp(IntCC::UnsignedGreaterThan, depth_limit, depth);
    let rest = b.ins().isub(depth_limit, depth);
    let zero = b.ins().iconst(I64, 0);
    let left = b.ins().select(room, rest, zero);
    // This call was counted by whoever made it; the pure version counts
    // each of its activations, the first one too.
    let calls = b.ins().load(I64, fl, ctx, ctx_offsets::DIRECT_CALLS);
    let calls = b.ins().iadd_imm_s(calls, -1);
    b.ins().store(fl, calls, ctx, ctx_offsets::DIRECT_CALLS);
    let mut all = vec![ctx];
    all.extend_from_slice(args);
    all.push(left);
    let call = b.ins().call(pure, &all);
    let r = b.inst_results(call)[0];
    let gave_up = b.ins().icmp_imm_s(IntCC::Equal, r, words::PURE_BAIL as i64);
    b.ins().brif(gave_up, bailed, &[], done, &[]);
    b.switch_to_block(done);
    b.seal_block(done);
    b.ins().return_(&[r]);

    // It gave up: never again; the ordinary code runs the call.
    b.set_cold_block(bailed);
    b.switch_to_block(bailed);
    b.seal_block(bailed);
    let (sig, addr) = helper(b, helpers, HelperId::sx_pure_bail, call_conv);
    let m = b.ins().iconst(I64, meta);
    let call = b.ins().call_indirect(sig, addr, &[ctx, m]);
    // `UNWIND` when it raised the depth error instead.
    let raised = b.inst_results(call)[0];
    let unwind = b.create_block();
    b.ins().brif(raised, unwind, &[], ordinary, &[]);
    b.set_cold_block(unwind);
    b.switch_to_block(unwind);
    b.seal_block(unwind);
    b.ins().return_(&[raised]);

    b.switch_to_block(ordinary);
    b.seal_block(ordinary);
}

struct PureGen<'a, 'b> {
    b: FunctionBuilder<'b>,
    calls: &'a [CallSite],
    vars: HashMap<Slot, Variable>,
    ctx: Value,
    /// This function (for calls of itself).
    me: FuncRef,
    /// The loop head: a tail call of itself jumps here with its arguments.
    header: Block,
    /// Returns `PURE_BAIL`.
    bail: Block,
    /// Parameters the body never assigns: always fixnums (the guard checks
    /// the first call's arguments, every self call checks the ones it
    /// passes unless they are known fixnums).
    fixnum_params: HashSet<Slot>,
    /// Does every call of this function return a fixnum?
    returns_fixnum: bool,
    /// Lower bounds (as integers) of fixnum parameters that hold where code
    /// is being generated: what the tests of the enclosing `if`s imply.
    floors: Vec<(Slot, i64)>,
    /// The accumulator of a function with accumulating sums (the fixnum sum
    /// of what they left to add) and the number of sums in it (each one a
    /// frame the order written would have had).
    acc: Option<(Variable, Variable)>,
    /// How many activations the depth limit allows nested in this one (a
    /// parameter: each self call passes one less). A self call with none
    /// left, or more sums than that, is past the limit: the pure version
    /// gives up saying so (`JitCtx::pure_too_deep`), and the runtime raises
    /// the depth error the ordinary code would meet.
    left: Value,
    /// How many activations of those `left` counts the inlined ones
    /// enclosing the code being generated have used (the inlining depth, at
    /// most [`PureGen::inline_levels`]).
    left_used: i64,
    /// The function's body, parameter count and frame size (for inlining
    /// calls of itself).
    body: &'a Expr,
    nparams: u16,
    frame_size: u16,
    /// How many levels of self calls are inlined (see
    /// `PureGen::inline_self`): in the body, and in the copies down to this
    /// depth ([`PureGen::left_used`] is the depth of the code being
    /// generated).
    inline_levels: i64,
    helpers: &'a [HelperInfo],
    call_conv: CallConv,
}

/// The most nodes the inlined copies of a pure function's body may add up to
/// (see [`inline_levels`]).
const INLINE_BUDGET: usize = 1500;

/// How many levels of self calls to inline in a pure version of `f`: as
/// many as fit [`INLINE_BUDGET`] (level `d` adds `sites^d` copies of the
/// body), at most 2.
fn inline_levels(f: &IrFunction) -> i64 {
    let size = nodes(&f.body);
    let sites = f.meta.calls.iter().filter(|c| c.self_call).count();
    let mut total = 0;
    let mut copies = 1;
    let mut levels = 0;
    while levels < 2 {
        copies *= sites;
        total += copies * size;
        if total > INLINE_BUDGET {
            break;
        }
        levels += 1;
    }
    levels
}

/// The number of nodes of `e` (a measure of the code an inlined copy adds).
fn nodes(e: &Expr) -> usize {
    1 + match e {
        Expr::Store(_, x) => nodes(x),
        Expr::If { test, then, els } => nodes(test) + nodes(then) + nodes(els),
        Expr::And(items) | Expr::Or(items) | Expr::Seq(items) => items.iter().map(nodes).sum(),
        _ => 0,
    }
}

/// The smallest fixnum.
const FIXNUM_MIN: i64 = i64::MIN >> 1;

/// Build the pure version of `f` into `func` (signature [`signature`]);
/// `me` refers to `func` itself.
pub(crate) fn build(func: &mut Function, fctx: &mut FunctionBuilderContext, f: &IrFunction, me: FuncRef, helpers: &[HelperInfo], call_conv: CallConv, target: TargetFrontendConfig) {
    let flat = f.meta.flat.unwrap_or(sx_ir::Flat { nparams: 0, frame_size: 0 });
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let mut params = b.block_params(entry).to_vec();
    let left = params.pop().expect("the signature ends with `left`");
    let ctx = params[0];
    let fl = MemFlagsData::trusted();
    let header = b.create_block();
    let bail = b.create_block();
    // A loop head with the arguments as block parameters, when a self tail
    // call or an accumulating sum (see `PureGen::accumulate`) jumps back to
    // it; the accumulator comes last.
    let accumulates = has_accumulation(&f.body, &f.meta.calls);
    let looping = accumulates || has_tail_self_call(&f.body, &f.meta.calls);
    if looping {
        for _ in 0..flat.nparams {
            b.append_block_param(header, I64);
        }
        if accumulates {
            // The accumulator and the number of sums it holds.
            b.append_block_param(header, I64);
            b.append_block_param(header, I64);
        }
    }
    // Native stack: give up while there is still room for the runtime (the
    // ordinary version continues deep recursion on other stack segments).
    let sp = b.ins().get_stack_pointer(I64);
    let limit = b.ins().load(I64, fl, ctx, ctx_offsets::STACK_LIMIT);
    let room = b.ins().icmp(IntCC::UnsignedGreaterThan, sp, limit);
    let mut args: Vec<BlockArg> = if looping { params[1..].iter().map(|v| BlockArg::Value(*v)).collect() } else { Vec::new() };
    if accumulates {
        // Nothing accumulated yet: the fixnum 0, after 0 sums.
        let zero = b.ins().iconst(I64, 0);
        args.push(BlockArg::Value(zero));
        args.push(BlockArg::Value(zero));
    }
    b.ins().brif(room, header, &args, bail, &[]);
    b.set_cold_block(bail);

    let mut stored = HashSet::new();
    stored_slots(&f.body, &mut stored);
    let fixnum_params = (0..flat.nparams).map(|i| FLAT_VARS + Slot::from(i)).filter(|s| !stored.contains(s)).collect();
    let inline_levels = inline_levels(f);
    let mut g = PureGen { b, calls: &f.meta.calls, vars: HashMap::new(), ctx, me, header, bail, fixnum_params, returns_fixnum: true, floors: Vec::new(), acc: None, left, left_used: 0, body: &f.body, nparams: flat.nparams, frame_size: flat.frame_size, inline_levels, helpers, call_conv };
    // Assuming its own calls return fixnums, does every result? (If so the
    // assumption holds: a call returns only what some result position gives.)
    g.returns_fixnum = g.result_fixnum(&f.body);
    g.b.switch_to_block(header);
    let hp = if looping { g.b.block_params(header).to_vec() } else { params[1..].to_vec() };
    for (i, v) in hp.iter().take(usize::from(flat.nparams)).enumerate() {
        let var = g.var(FLAT_VARS + i as Slot);
        g.b.def_var(var, *v);
    }
    if accumulates {
        let acc = g.b.declare_var(I64);
        g.b.def_var(acc, hp[usize::from(flat.nparams)]);
        let sums = g.b.declare_var(I64);
        g.b.def_var(sums, hp[usize::from(flat.nparams) + 1]);
        g.acc = Some((acc, sums));
    }
    g.start_activation();
    let v = g.expr(&f.body);
    let v = g.finish_sum(v);
    g.b.ins().return_(&[v]);

    g.b.switch_to_block(bail);
    let w = g.b.ins().iconst(I64, words::PURE_BAIL as i64);
    g.b.ins().return_(&[w]);
    g.b.seal_all_blocks();
    g.b.finalize(target);
}

/// The slots `e` assigns.
fn stored_slots(e: &Expr, out: &mut HashSet<Slot>) {
    match e {
        Expr::Store(s, x) => {
            out.insert(*s);
            stored_slots(x, out);
        }
        Expr::If { test, then, els } => {
            for x in [test, then, els] {
                stored_slots(x, out);
            }
        }
        Expr::And(items) | Expr::Or(items) | Expr::Seq(items) => items.iter().for_each(|x| stored_slots(x, out)),
        _ => {}
    }
}

/// The expression a call operand slot is stored from.
fn store_value(e: &Expr) -> &Expr {
    match e {
        Expr::Store(_, x) => x,
        other => other,
    }
}

/// Of a `+` in tail position whose operands are stored by `items[1]` and
/// `items[2]`: the operand (1 or 2) that is a call of the function itself,
/// preferring the second (the first is evaluated first).
fn accumulation_operand(items: &[Expr], call: u32, calls: &[CallSite]) -> Option<usize> {
    let cs = &calls[call as usize];
    if !(cs.tail && cs.argc == 2 && items.len() == 4 && matches!(items[3], Expr::Prim { op: Some(BinOp::Add), .. })) {
        return None;
    }
    let self_call = |e: &Expr| matches!(store_value(e), Expr::Seq(sub) if matches!(sub.last(), Some(Expr::Call(c)) if calls[*c as usize].self_call));
    [2, 1].into_iter().find(|k| self_call(&items[*k]))
}

/// Does `body` have a `+` of a call of itself in tail position?
fn has_accumulation(e: &Expr, calls: &[CallSite]) -> bool {
    match e {
        Expr::Store(_, x) => has_accumulation(x, calls),
        Expr::If { then, els, .. } => has_accumulation(then, calls) || has_accumulation(els, calls),
        Expr::And(items) | Expr::Or(items) => items.last().is_some_and(|x| has_accumulation(x, calls)),
        Expr::Seq(items) => match items.last() {
            Some(Expr::Prim { call, .. }) => accumulation_operand(items, *call, calls).is_some(),
            Some(x) => has_accumulation(x, calls),
            None => false,
        },
        _ => false,
    }
}

/// Does `body` contain a call of itself in tail position?
fn has_tail_self_call(e: &Expr, calls: &[CallSite]) -> bool {
    match e {
        Expr::Store(_, x) => has_tail_self_call(x, calls),
        Expr::If { test, then, els } => [test, then, els].iter().any(|x| has_tail_self_call(x, calls)),
        Expr::And(items) | Expr::Or(items) => items.iter().any(|x| has_tail_self_call(x, calls)),
        Expr::Seq(items) => match items.last() {
            Some(Expr::Call(c)) if calls[*c as usize].tail => true,
            _ => items.iter().any(|x| has_tail_self_call(x, calls)),
        },
        _ => false,
    }
}

impl PureGen<'_, '_> {
    /// The start of an activation, its parameters defined: internal defines
    /// start as nil, as in an interpreter frame; the activation counts as a
    /// compiled call; and every so often (and so in loops as well as in
    /// recursion that never loops) comes a safepoint, which gives up when an
    /// interrupt is pending.
    fn start_activation(&mut self) {
        let nil = self.word(words::NIL);
        for i in self.nparams..self.frame_size {
            let var = self.var(FLAT_VARS + Slot::from(i));
            self.b.def_var(var, nil);
        }
        let fl = MemFlagsData::trusted();
        let calls = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::DIRECT_CALLS);
        let calls = self.b.ins().iadd_imm_s(calls, 1);
        self.b.ins().store(fl, calls, self.ctx, ctx_offsets::DIRECT_CALLS);
        if self.left_used > 0 {
            // The activation it is inlined in polls (one add to memory).
            return;
        }
        let poll = self.b.ins().band_imm_s(calls, sx_jit::SAFEPOINT_MASK as i64);
        let body = self.b.create_block();
        let safepoint = self.b.create_block();
        self.b.ins().brif(poll, body, &[], safepoint, &[]);
        self.b.set_cold_block(safepoint);
        self.b.switch_to_block(safepoint);
        let (sig, addr) = helper(&mut self.b, self.helpers, HelperId::sx_safepoint, self.call_conv);
        let c = self.b.ins().call_indirect(sig, addr, &[self.ctx]);
        let go_on = self.b.inst_results(c)[0];
        self.b.ins().brif(go_on, body, &[], self.bail, &[]);
        self.b.switch_to_block(body);
    }

    /// A non-tail call of itself with `args` (fixnums) as one more
    /// activation of the body generated in place: what a call costs (the
    /// frame, the saved registers, the entry checks) goes, most of all for
    /// the calls that end the recursion. Self calls in the copy are calls (tail ones too: the copy
    /// has no loop head), so the code grows by one body per call site.
    fn inline_self(&mut self, args: &[Value]) -> Value {
        // The copy's slots are its own: a fresh set of variables, and none
        // of the bounds the enclosing tests established for the caller's.
        let vars = std::mem::take(&mut self.vars);
        let floors = std::mem::take(&mut self.floors);
        let acc = self.acc.take();
        self.left_used += 1;
        for (i, a) in args.iter().enumerate() {
            let var = self.var(FLAT_VARS + i as Slot);
            self.b.def_var(var, *a);
        }
        self.start_activation();
        let body = self.body;
        let v = self.expr(body);
        self.left_used -= 1;
        self.acc = acc;
        self.floors = floors;
        self.vars = vars;
        v
    }

    /// A fixnum parameter or fixnum constant operand: `Ok(slot)` or
    /// `Err(value)`.
    fn operand(&self, e: &Expr) -> Option<Result<Slot, i64>> {
        match e {
            Expr::Slot(s) if self.fixnum_params.contains(s) => Some(Ok(*s)),
            Expr::Const(w) if w & 1 == 0 => Some(Err((*w as i64) >> 1)),
            _ => None,
        }
    }

    /// The lower bounds a comparison test implies when it is true
    /// (`holds`) or false, for fixnum parameters compared with each other or
    /// with constants. `not` swaps.
    fn floors_of(&self, test: &Expr, holds: bool) -> Vec<(Slot, i64)> {
        let Expr::Seq(items) = test else { return Vec::new() };
        let Some(Expr::Prim { op: Some(op), call }) = items.last() else { return Vec::new() };
        let argc = self.calls[*call as usize].argc as usize;
        let arg = |k: usize| match &items[1 + k] {
            Expr::Store(_, x) => Some(&**x),
            _ => None,
        };
        if *op == BinOp::Not && argc == 1 {
            return arg(0).map_or(Vec::new(), |x| self.floors_of(x, !holds));
        }
        if argc != 2 {
            return Vec::new();
        }
        let (Some(a), Some(b)) = (arg(0).and_then(|x| self.operand(x)), arg(1).and_then(|x| self.operand(x))) else { return Vec::new() };
        // Normalise to `big > small` (strict) or `big >= small`.
        let (big, small, strict) = match (op, holds) {
            (BinOp::Lt, true) | (BinOp::Ge, false) => (b, a, true),
            (BinOp::Gt, true) | (BinOp::Le, false) => (a, b, true),
            (BinOp::Le, true) | (BinOp::Gt, false) => (b, a, false),
            (BinOp::Ge, true) | (BinOp::Lt, false) => (a, b, false),
            _ => return Vec::new(),
        };
        let Ok(slot) = big else { return Vec::new() };
        let floor = match small {
            Err(c) => c,
            Ok(_) => FIXNUM_MIN,
        };
        vec![(slot, if strict { floor.saturating_add(1) } else { floor })]
    }

    /// The best known lower bound of fixnum parameter `s`.
    fn floor(&self, s: Slot) -> i64 {
        self.floors.iter().filter(|(x, _)| *x == s).map(|(_, f)| *f).max().unwrap_or(FIXNUM_MIN)
    }

    /// Can `(- x k)` (operand expressions) not overflow? When `x` is a
    /// fixnum parameter whose lower bound leaves room for the constant `k`.
    fn sub_fits(&self, x: &Expr, k: &Expr) -> bool {
        match (self.operand(x), self.operand(k)) {
            (Some(Ok(s)), Some(Err(k))) if k >= 0 => self.floor(s).checked_sub(k).is_some_and(|v| v >= FIXNUM_MIN),
            _ => false,
        }
    }

    /// Is the value of `e` certainly a fixnum (when `e` completes without
    /// giving up)?
    fn is_fixnum(&self, e: &Expr) -> bool {
        match e {
            Expr::Const(w) => w & 1 == 0,
            Expr::Slot(s) => self.fixnum_params.contains(s),
            Expr::Store(_, x) => self.is_fixnum(x),
            Expr::If { then, els, .. } => self.is_fixnum(then) && self.is_fixnum(els),
            Expr::Seq(items) => match items.last() {
                Some(Expr::Prim { op: Some(BinOp::Add | BinOp::Sub | BinOp::Mul), call }) => self.calls[*call as usize].argc == 2,
                Some(Expr::Call(_)) => self.returns_fixnum,
                Some(Expr::Prim { .. }) => false,
                Some(x) => self.is_fixnum(x),
                None => false,
            },
            _ => false,
        }
    }

    /// [`PureGen::is_fixnum`] of the body, with self calls assumed to
    /// return fixnums.
    fn result_fixnum(&self, body: &Expr) -> bool {
        self.is_fixnum(body)
    }

    fn var(&mut self, s: Slot) -> Variable {
        if let Some(v) = self.vars.get(&s) {
            return *v;
        }
        let v = self.b.declare_var(I64);
        self.vars.insert(s, v);
        v
    }

    fn word(&mut self, w: u64) -> Value {
        self.b.ins().iconst(I64, w as i64)
    }

    /// Continue in a fresh block (after an unconditional transfer).
    fn dead(&mut self) -> Value {
        let blk = self.b.create_block();
        self.b.switch_to_block(blk);
        self.word(words::NIL)
    }

    fn expr(&mut self, e: &Expr) -> Value {
        match e {
            Expr::Const(w) => self.word(*w),
            Expr::Slot(s) => {
                let v = self.var(*s);
                self.b.use_var(v)
            }
            Expr::Store(s, x) => {
                let v = self.expr(x);
                let var = self.var(*s);
                self.b.def_var(var, v);
                v
            }
            Expr::Seq(items) => match items.last() {
                Some(Expr::Call(c) | Expr::Prim { call: c, .. }) => self.call(items, *c, false),
                _ => {
                    let mut last = None;
                    for x in items {
                        last = Some(self.expr(x));
                    }
                    last.unwrap_or_else(|| self.word(words::NIL))
                }
            },
            Expr::If { test, then, els } => {
                let c = self.cond(test);
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                let m = self.b.create_block();
                self.b.append_block_param(m, I64);
                self.b.ins().brif(c, tb, &[], eb, &[]);
                for (blk, x, holds) in [(tb, then, true), (eb, els, false)] {
                    self.b.switch_to_block(blk);
                    let facts = self.floors_of(test, holds);
                    let n = self.floors.len();
                    self.floors.extend(facts);
                    let v = self.expr(x);
                    self.floors.truncate(n);
                    self.b.ins().jump(m, &[BlockArg::Value(v)]);
                }
                self.b.switch_to_block(m);
                self.b.block_params(m)[0]
            }
            Expr::And(items) | Expr::Or(items) => {
                let is_and = matches!(e, Expr::And(_));
                let m = self.b.create_block();
                self.b.append_block_param(m, I64);
                for (k, x) in items.iter().enumerate() {
                    let v = self.expr(x);
                    if k + 1 == items.len() {
                        self.b.ins().jump(m, &[BlockArg::Value(v)]);
                    } else {
                        let t = truthy(&mut self.b, v);
                        short_circuit(&mut self.b, is_and, t, v, m);
                    }
                }
                if items.is_empty() {
                    let v = self.word(if is_and { words::TRUE } else { words::NIL });
                    self.b.ins().jump(m, &[BlockArg::Value(v)]);
                }
                self.b.switch_to_block(m);
                self.b.block_params(m)[0]
            }
            // A call head (checked on entry, not needed here).
            Expr::Global { .. } => self.word(words::NIL),
            // `sx_ir::pure::analyse` admits nothing else; give up if it did.
            _ => {
                self.b.ins().jump(self.bail, &[]);
                self.dead()
            }
        }
    }

    /// The truth of `e` as a machine condition (a fixnum comparison
    /// branches on itself).
    fn cond(&mut self, e: &Expr) -> Value {
        if let Expr::Seq(items) = e {
            if let Some(Expr::Prim { op: Some(op), call }) = items.last() {
                if self.calls[*call as usize].argc == 2 && is_comparison(*op) {
                    return self.call(items, *call, true);
                }
            }
        }
        let v = self.expr(e);
        truthy(&mut self.b, v)
    }

    /// A call as lowered (`items`: head, operands, then the call).
    fn call(&mut self, items: &[Expr], call: u32, as_cond: bool) -> Value {
        if self.acc.is_some() {
            if let Some(k) = accumulation_operand(items, call, self.calls) {
                return self.accumulate(items, k);
            }
        }
        let CallSite { argc, tail, .. } = self.calls[call as usize];
        let (args, known) = self.operands(items, call);
        match items.last() {
            Some(Expr::Prim { op: Some(BinOp::Not), .. }) if argc == 1 => {
                let t = truthy(&mut self.b, args[0]);
                let f = self.word(words::FALSE);
                let tr = self.word(words::TRUE);
                self.b.ins().select(t, f, tr)
            }
            Some(Expr::Prim { op: Some(BinOp::Sub), .. }) if argc == 2 && known[0] && known[1] && self.sub_fits(store_value(&items[1]), store_value(&items[2])) => {
                // Within the bounds the enclosing tests established.
                self.b.ins().isub(args[0], args[1])
            }
            Some(Expr::Prim { op: Some(op), .. }) if argc == 2 => fixnum_op(&mut self.b, *op, args[0], args[1], (known[0], known[1]), self.bail, as_cond),
            Some(Expr::Call(_)) if tail && self.left_used == 0 => {
                self.check_fixnums(&args, &known);
                let acc = self.acc.map(|(a, n)| (self.b.use_var(a), self.b.use_var(n)));
                self.loop_turn(&args, acc)
            }
            Some(Expr::Call(_)) => {
                self.check_fixnums(&args, &known);
                // This activation may have one more nested in it if `left`
                // allows more than those already used.
                let none_left = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, self.left, self.left_used);
                self.too_deep_if(none_left);
                if self.left_used < self.inline_levels {
                    return self.inline_self(&args);
                }
                let fewer = self.b.ins().iadd_imm_s(self.left, -1 - self.left_used);
                let mut all = vec![self.ctx];
                all.extend_from_slice(&args);
                all.push(fewer);
                let c = self.b.ins().call(self.me, &all);
                let r = self.b.inst_results(c)[0];
                let gave_up = self.b.ins().icmp_imm_s(IntCC::Equal, r, words::PURE_BAIL as i64);
                self.give_up_if(gave_up);
                r
            }
            _ => {
                self.b.ins().jump(self.bail, &[]);
                self.dead()
            }
        }
    }

    /// `(+ a (f x))` in tail position (or `(+ (f x) a)`): add `a` to the
    /// accumulator and loop with `x`, as `(f x)` would have returned to
    /// this `+` — what a compiler does to the second call of a doubly
    /// recursive sum. The sum is the same in any order as long as no
    /// partial sum overflows; so every term must be a fixnum at least zero
    /// (then no partial sum of the original order exceeds the total, which
    /// fits), else the pure version gives up and the ordinary code redoes
    /// the call in the order written.
    fn accumulate(&mut self, items: &[Expr], k: usize) -> Value {
        let other = 3 - k;
        let (Expr::Prim { call, .. }, Expr::Seq(sub)) = (&items[3], store_value(&items[k])) else {
            unreachable!("accumulation_operand checked the shape")
        };
        let Some(Expr::Call(c)) = sub.last() else { unreachable!("accumulation_operand checked the shape") };
        self.expr(&items[other]);
        let term_var = self.var(self.calls[*call as usize].base + other as Slot);
        let term = self.b.use_var(term_var);
        let term_known = self.is_fixnum(store_value(&items[other]));
        let (args, known) = self.operands(sub, *c);
        self.check_fixnums(&args, &known);
        let sum = self.add_term(term, term_known);
        let Some((_, sumsv)) = self.acc else { unreachable!("accumulate runs only with an accumulator") };
        let sums = self.b.use_var(sumsv);
        let sums = self.b.ins().iadd_imm_s(sums, 1);
        let too_many = self.b.ins().icmp(IntCC::UnsignedGreaterThan, sums, self.left);
        self.too_deep_if(too_many);
        self.loop_turn(&args, Some((sum, sums)))
    }

    /// The operands of call `call` as lowered (`items`: head, operands, then
    /// the call), evaluated into its slots, and which are known fixnums.
    fn operands(&mut self, items: &[Expr], call: u32) -> (Vec<Value>, Vec<bool>) {
        let CallSite { base, argc, .. } = self.calls[call as usize];
        let stores = &items[1..items.len() - 1];
        for x in stores {
            self.expr(x);
        }
        let known = stores.iter().map(|x| self.is_fixnum(x)).collect();
        let args = (0..argc)
            .map(|k| {
                let v = self.var(base + 1 + k);
                self.b.use_var(v)
            })
            .collect();
        (args, known)
    }

    /// Go round the loop again with `args` (a self tail call; the loop head
    /// polls for interrupts), and with `acc` as the accumulator and its
    /// count when the function has one.
    fn loop_turn(&mut self, args: &[Value], acc: Option<(Value, Value)>) -> Value {
        let mut jargs: Vec<BlockArg> = args.iter().map(|v| BlockArg::Value(*v)).collect();
        if let Some((sum, sums)) = acc {
            jargs.push(BlockArg::Value(sum));
            jargs.push(BlockArg::Value(sums));
        }
        self.b.ins().jump(self.header, &jargs);
        self.dead()
    }

    /// The accumulator plus `term` (giving up unless `term` is a fixnum at
    /// least zero and the sum fits).
    fn add_term(&mut self, term: Value, known: bool) -> Value {
        let Some((accv, _)) = self.acc else { return term };
        self.check_fixnums(&[term], &[known]);
        let negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, term, 0);
        self.give_up_if(negative);
        let acc = self.b.use_var(accv);
        let (sum, overflow) = self.b.ins().sadd_overflow(acc, term);
        self.give_up_if(overflow);
        sum
    }

    /// The value to return for body value `v`: `v` plus what accumulating
    /// sums left to add, if any.
    fn finish_sum(&mut self, v: Value) -> Value {
        let Some((_, sumsv)) = self.acc else { return v };
        let sums = self.b.use_var(sumsv);
        let add = self.b.create_block();
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        self.b.ins().brif(sums, add, &[], done, &[BlockArg::Value(v)]);
        self.b.switch_to_block(add);
        let known = self.returns_fixnum;
        let sum = self.add_term(v, known);
        self.b.ins().jump(done, &[BlockArg::Value(sum)]);
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    /// Give up when `cond` holds, saying the recursion is past the depth
    /// limit (see `JitCtx::pure_too_deep`).
    fn too_deep_if(&mut self, cond: Value) {
        let too_deep = self.b.create_block();
        let ok = self.b.create_block();
        self.b.ins().brif(cond, too_deep, &[], ok, &[]);
        self.b.set_cold_block(too_deep);
        self.b.switch_to_block(too_deep);
        self.b.seal_block(too_deep);
        let one = self.b.ins().iconst(I64, 1);
        self.b.ins().store(MemFlagsData::trusted(), one, self.ctx, ctx_offsets::PURE_TOO_DEEP);
        self.b.ins().jump(self.bail, &[]);
        self.b.switch_to_block(ok);
    }

    /// Continue only if `cond` is false; else give up.
    fn give_up_if(&mut self, cond: Value) {
        let ok = self.b.create_block();
        self.b.ins().brif(cond, self.bail, &[], ok, &[]);
        self.b.switch_to_block(ok);
    }

    /// Give up unless the arguments of a self call not known to be fixnums
    /// are (its parameters are fixnums on entry).
    fn check_fixnums(&mut self, args: &[Value], known: &[bool]) {
        let unknown: Vec<Value> = args.iter().zip(known).filter(|(_, k)| !**k).map(|(v, _)| *v).collect();
        let Some((first, rest)) = unknown.split_first() else { return };
        let tags = rest.iter().fold(*first, |acc, v| self.b.ins().bor(acc, *v));
        let low = self.b.ins().band_imm_s(tags, 1);
        self.give_up_if(low);
    }
}
