//! sx-ir → Cranelift IR.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, Block, BlockArg, Function, InstBuilder, MemFlagsData, SigRef, Signature, Value};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use std::collections::HashMap;
use sx_ir::{BinOp, Expr, IrFunction, Slot};
use sx_jit::helpers::{HelperId, HelperInfo};
use sx_jit::{ctx_offsets, prim_word, words, CompileError};

struct Gen<'a, 'b> {
    b: FunctionBuilder<'b>,
    helpers: &'a [HelperInfo],
    sigs: HashMap<usize, SigRef>,
    call_conv: CallConv,
    ctx: Value,
    fp: Value,
    meta: u64,
    /// Restores the shadow stack and returns its parameter.
    exit: Block,
}

/// Build `func` (whose signature is already set) from `f`.
pub(crate) fn build(func: &mut Function, fctx: &mut FunctionBuilderContext, f: &IrFunction, helpers: &[HelperInfo], call_conv: CallConv, target: TargetFrontendConfig) -> Result<(), CompileError> {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let ctx = b.block_params(entry)[0];
    let env = b.block_params(entry)[1];
    let flags = MemFlagsData::trusted();
    // Prologue: claim the shadow frame, clear it, store the environment.
    let fp = b.ins().load(I64, flags, ctx, ctx_offsets::SP);
    let nslots = i64::from(f.meta.nslots);
    let new_sp = b.ins().iadd_imm_s(fp, nslots * 8);
    b.ins().store(flags, new_sp, ctx, ctx_offsets::SP);
    b.ins().store(flags, env, fp, 0);
    let zero = b.ins().iconst(I64, 0);
    for i in 1..nslots {
        b.ins().store(flags, zero, fp, (i * 8) as i32);
    }
    let exit = b.create_block();
    b.append_block_param(exit, I64);
    let meta = &*f.meta as *const sx_ir::FnMeta as u64;
    let mut g = Gen { b, helpers, sigs: HashMap::new(), call_conv, ctx, fp, meta, exit };
    let v = g.expr(&f.body);
    g.b.ins().jump(exit, &[BlockArg::Value(v)]);
    g.b.switch_to_block(exit);
    g.b.seal_block(exit);
    let r = g.b.block_params(exit)[0];
    g.b.ins().store(flags, g.fp, g.ctx, ctx_offsets::SP);
    g.b.ins().return_(&[r]);
    g.b.finalize(target);
    Ok(())
}

impl Gen<'_, '_> {
    fn flags(&self) -> MemFlagsData {
        MemFlagsData::trusted()
    }

    fn word(&mut self, w: u64) -> Value {
        self.b.ins().iconst(I64, w as i64)
    }

    fn load_slot(&mut self, s: Slot) -> Value {
        let fl = self.flags();
        self.b.ins().load(I64, fl, self.fp, (s * 8) as i32)
    }

    fn slot_addr(&mut self, s: Slot) -> Value {
        self.b.ins().iadd_imm_s(self.fp, i64::from(s) * 8)
    }

    fn call(&mut self, h: HelperId, args: &[Value]) -> Value {
        let info = self.helpers[h as usize];
        debug_assert_eq!(info.params, args.len() + 1, "{}", info.name);
        let sig = match self.sigs.get(&info.params) {
            Some(s) => *s,
            None => {
                let mut sig = Signature::new(self.call_conv);
                for _ in 0..info.params {
                    sig.params.push(AbiParam::new(I64));
                }
                sig.returns.push(AbiParam::new(I64));
                let s = self.b.import_signature(sig);
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
        let a = self.b.ins().icmp_imm_s(IntCC::NotEqual, v, words::NIL as i64);
        let c = self.b.ins().icmp_imm_s(IntCC::NotEqual, v, words::FALSE as i64);
        self.b.ins().band(a, c)
    }

    fn bool_word(&mut self, c: Value) -> Value {
        let t = self.word(words::TRUE);
        let f = self.word(words::FALSE);
        self.b.ins().select(c, t, f)
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
                let fl = self.flags();
                self.b.ins().store(fl, v, self.fp, (*s * 8) as i32);
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
            Expr::Global { sym, node, env, site } => self.global(*sym, *node, *env, *site),
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
                let t = self.expr(test);
                let c = self.truthy(t);
                let tb = self.b.create_block();
                let eb = self.b.create_block();
                let m = self.merge_block();
                self.b.ins().brif(c, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                self.b.seal_block(tb);
                let a = self.expr(then);
                self.jump_to(m, a);
                self.b.switch_to_block(eb);
                self.b.seal_block(eb);
                let z = self.expr(els);
                self.jump_to(m, z);
                self.finish_merge(m)
            }
            Expr::And(items) | Expr::Or(items) => {
                let is_and = matches!(e, Expr::And(_));
                let m = self.merge_block();
                for (k, x) in items.iter().enumerate() {
                    let v = self.expr(x);
                    if k + 1 == items.len() {
                        self.jump_to(m, v);
                    } else {
                        let t = self.truthy(v);
                        let next = self.b.create_block();
                        if is_and {
                            self.b.ins().brif(t, next, &[], m, &[BlockArg::Value(v)]);
                        } else {
                            self.b.ins().brif(t, m, &[BlockArg::Value(v)], next, &[]);
                        }
                        self.b.switch_to_block(next);
                        self.b.seal_block(next);
                    }
                }
                if items.is_empty() {
                    let v = self.word(if is_and { words::TRUE } else { words::NIL });
                    self.jump_to(m, v);
                }
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
                let fl = self.flags();
                self.b.ins().store(fl, e, self.fp, (*dest * 8) as i32);
                e
            }
            Expr::Call { base, argc, tail, site, bail, .. } => self.generic_call(*base, *argc, *tail, *site, *bail),
            Expr::Prim { node, prim, op, base, argc, tail, site, bail } => self.prim(*node, *prim, *op, *base, *argc, *tail, *site, *bail),
            Expr::Case { node, key, arms, els } => {
                let k = self.expr(key);
                let c = self.consts(&[self.meta, u64::from(*node)]);
                let idx = self.call(HelperId::sx_case, &[c[0], c[1], k]);
                let m = self.merge_block();
                for (i, arm) in arms.iter().enumerate() {
                    let hit = self.b.ins().icmp_imm_s(IntCC::Equal, idx, i as i64);
                    let yes = self.b.create_block();
                    let no = self.b.create_block();
                    self.b.ins().brif(hit, yes, &[], no, &[]);
                    self.b.switch_to_block(yes);
                    self.b.seal_block(yes);
                    let v = self.expr(arm);
                    self.jump_to(m, v);
                    self.b.switch_to_block(no);
                    self.b.seal_block(no);
                }
                let v = self.expr(els);
                self.jump_to(m, v);
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

    fn global(&mut self, sym: u32, node: u32, env: Slot, site: u32) -> Value {
        let fl = self.flags();
        let len = self.b.ins().load(I64, fl, self.ctx, ctx_offsets::GLOBALS_LEN);
        let in_range = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, len, i64::from(sym));
        let load = self.b.create_block();
        let unbound = self.b.create_block();
        let m = self.merge_block();
        self.b.ins().brif(in_range, load, &[], unbound, &[]);
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

    fn generic_call(&mut self, base: Slot, argc: u32, tail: bool, site: u32, bail: u32) -> Value {
        let c = self.consts(&[u64::from(base), u64::from(argc)]);
        if tail {
            let r = self.call(HelperId::sx_tail, &[self.fp, c[0], c[1]]);
            self.b.ins().jump(self.exit, &[BlockArg::Value(r)]);
            return self.dead();
        }
        let c2 = self.consts(&[self.meta, u64::from(site), u64::from(bail)]);
        let r = self.call(HelperId::sx_call, &[c2[0], self.fp, c[0], c[1], c2[1], c2[2]]);
        self.check_unwind(r);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn prim(&mut self, node: u32, prim: u32, op: Option<BinOp>, base: Slot, argc: u32, tail: bool, site: u32, bail: u32) -> Value {
        let head = self.load_slot(base);
        let is_prim = self.b.ins().icmp_imm_s(IntCC::Equal, head, prim_word(prim) as i64);
        let direct = self.b.create_block();
        let generic = self.b.create_block();
        let m = self.merge_block();
        self.b.ins().brif(is_prim, direct, &[], generic, &[]);

        // Still the primitive: inline for fixnums, else the helper.
        self.b.switch_to_block(direct);
        self.b.seal_block(direct);
        let slow = self.b.create_block();
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
                let or = self.b.ins().bor(a, b);
                let low = self.b.ins().band_imm_s(or, 1);
                let fast = self.b.create_block();
                self.b.ins().brif(low, slow, &[], fast, &[]);
                self.b.switch_to_block(fast);
                self.b.seal_block(fast);
                let r = match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul => {
                        let (r, of) = match op {
                            BinOp::Add => self.b.ins().sadd_overflow(a, b),
                            BinOp::Sub => self.b.ins().ssub_overflow(a, b),
                            _ => {
                                let y = self.b.ins().sshr_imm_s(b, 1);
                                self.b.ins().smul_overflow(a, y)
                            }
                        };
                        let ok = self.b.create_block();
                        self.b.ins().brif(of, slow, &[], ok, &[]);
                        self.b.switch_to_block(ok);
                        self.b.seal_block(ok);
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
                        let c = self.b.ins().icmp(cc, a, b);
                        self.bool_word(c)
                    }
                };
                self.jump_to(m, r);
            }
            _ => {
                self.b.ins().jump(slow, &[]);
            }
        }
        self.b.switch_to_block(slow);
        self.b.seal_block(slow);
        let c = self.consts(&[self.meta, u64::from(prim), u64::from(base), u64::from(argc), u64::from(node), u64::from(site)]);
        let r = self.call(HelperId::sx_prim, &[c[0], self.fp, c[1], c[2], c[3], c[4], c[5]]);
        self.check_unwind(r);
        self.jump_to(m, r);

        // Rebound: an ordinary call.
        self.b.switch_to_block(generic);
        self.b.seal_block(generic);
        let r = self.generic_call(base, argc, tail, site, bail);
        self.jump_to(m, r);
        self.finish_merge(m)
    }
}
