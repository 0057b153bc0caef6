//! The Cranelift backend of the SX compiled tier.
//!
//! Each lambda gets its own `JITModule`, so its code memory is freed when
//! the JIT cache drops its artifact (eviction, reset). Code follows the
//! sx-ir tree: fixnum arithmetic and comparisons inline, global reads
//! inline, everything else through the helpers of `sx_jit::helpers`
//! (called indirectly by address, from the one helper table).

mod codegen;
mod pure;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::AbiParam;
use cranelift_module::{default_libcall_names, FuncId, Module};
use sx_ir::IrFunction;
use sx_jit::{ArgvEntryFn, Backend, CompileError, CompiledCode, EntryFn};

/// Bookkeeping a `JITModule` holds besides its code pages.
const MODULE_OVERHEAD_BYTES: usize = 1024;

/// The Cranelift code generator.
pub struct CraneliftBackend {
    isa: OwnedTargetIsa,
    helpers: Vec<sx_jit::helpers::HelperInfo>,
    ctx: cranelift_codegen::Context,
    fctx: cranelift_frontend::FunctionBuilderContext,
    /// `SX_JIT_DUMP` is set: print generated code.
    dump: bool,
}

/// A backend for this machine, or why there is none.
pub fn builder() -> Result<Box<dyn Backend>, String> {
    Ok(Box::new(CraneliftBackend::new()?))
}

impl CraneliftBackend {
    pub fn new() -> Result<CraneliftBackend, String> {
        let mut flags = settings::builder();
        // Cranelift's mid-end (e-graph) finds nothing in the code we emit:
        // measured (callgrind) fib, tak, closures, strings and dict run as
        // fast or faster without it, and compiling takes 15% fewer
        // instructions. `SX_JIT_OPT=speed` turns it back on.
        let opt = std::env::var("SX_JIT_OPT").unwrap_or_else(|_| "none".into());
        flags.set("opt_level", &opt).map_err(|e| format!("SX_JIT_OPT: {e}"))?;
        flags.set("use_colocated_libcalls", "false").map_err(|e| e.to_string())?;
        flags.set("is_pic", "false").map_err(|e| e.to_string())?;
        // Native tail calls between direct entries need frame pointers.
        flags.set("preserve_frame_pointers", "true").map_err(|e| e.to_string())?;
        // `SX_JIT_REGALLOC=single_pass` trades code quality for compile time.
        if let Ok(alg) = std::env::var("SX_JIT_REGALLOC") {
            flags.set("regalloc_algorithm", &alg).map_err(|e| format!("SX_JIT_REGALLOC: {e}"))?;
        }
        // The IR verifier costs compile time; keep it for debug builds.
        flags.set("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" }).map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("cranelift does not support this machine: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        Ok(CraneliftBackend { isa, helpers: sx_jit::helpers::helpers(), ctx: cranelift_codegen::Context::new(), fctx: cranelift_frontend::FunctionBuilderContext::new(), dump: std::env::var_os("SX_JIT_DUMP").is_some() })
    }
}

/// One compiled lambda: its module (owning the code pages) and entry.
struct CraneliftCode {
    module: Option<JITModule>,
    entry: EntryFn,
    direct: Option<u64>,
    argv: Option<ArgvEntryFn>,
    bytes: usize,
}

impl CompiledCode for CraneliftCode {
    fn entry(&self) -> EntryFn {
        self.entry
    }
    fn code_bytes(&self) -> usize {
        self.bytes
    }
    fn direct_entry(&self) -> Option<u64> {
        self.direct
    }
    fn argv_entry(&self) -> Option<ArgvEntryFn> {
        self.argv
    }
}

impl Drop for CraneliftCode {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the tier keeps an artifact alive (an `Rc`) for as long
            // as any activation of its code runs, so when the last owner
            // drops it no code of this module is executing or referenced.
            unsafe { m.free_memory() };
        }
    }
}

fn failed(e: impl std::fmt::Display) -> CompileError {
    CompileError::Failed(e.to_string())
}

impl Backend for CraneliftBackend {
    fn name(&self) -> &'static str {
        "cranelift"
    }

    fn compile(&mut self, f: &IrFunction) -> Result<Box<dyn CompiledCode>, CompileError> {
        let builder = JITBuilder::with_isa(self.isa.clone(), default_libcall_names());
        let mut module = JITModule::new(builder);
        let r = self.define(&mut module, f);
        self.ctx.clear();
        match r {
            Ok((entry_id, direct_id, argv_id, size)) => {
                if let Err(e) = module.finalize_definitions() {
                    // SAFETY: nothing of this module has run or been handed out.
                    unsafe { module.free_memory() };
                    return Err(failed(e));
                }
                let addr = module.get_finalized_function(entry_id);
                // SAFETY: the entry was built with the signature of `EntryFn`
                // (pointer, i64) -> i64 in the platform's C calling convention.
                let entry: EntryFn = unsafe { std::mem::transmute::<*const u8, EntryFn>(addr) };
                let direct = direct_id.map(|id| module.get_finalized_function(id) as u64);
                // SAFETY: built with the signature of `ArgvEntryFn` (pointer,
                // i64, pointer) -> i64 in the platform's C calling convention.
                let argv = argv_id.map(|id| unsafe { std::mem::transmute::<*const u8, ArgvEntryFn>(module.get_finalized_function(id)) });
                let page = 4096;
                let bytes = size.div_ceil(page).max(1) * page + MODULE_OVERHEAD_BYTES;
                Ok(Box::new(CraneliftCode { module: Some(module), entry, direct, argv, bytes }))
            }
            Err(e) => {
                // SAFETY: nothing of this module has run or been handed out.
                unsafe { module.free_memory() };
                Err(e)
            }
        }
    }
}

impl CraneliftBackend {
    /// Define `f`'s functions in `module`: the generic entry, and for a flat
    /// function its direct entry (which the generic one calls). Returns their
    /// ids and the code size.
    #[allow(clippy::type_complexity)]
    fn define(&mut self, module: &mut JITModule, f: &IrFunction) -> Result<(FuncId, Option<FuncId>, Option<FuncId>, usize), CompileError> {
        let ptr = module.target_config().pointer_type();
        let conv = module.isa().default_call_conv();
        let mut entry_sig = module.make_signature();
        entry_sig.params.push(AbiParam::new(ptr));
        entry_sig.params.push(AbiParam::new(I64));
        entry_sig.returns.push(AbiParam::new(I64));
        let entry_id = module.declare_anonymous_function(&entry_sig).map_err(failed)?;
        let mut size = 0;
        let mut argv_id = None;
        let direct_id = match f.meta.flat {
            Some(flat) => {
                // The pure version first: the direct entry calls it.
                let pure_id = match &f.meta.pure {
                    Some(_) => {
                        let sig = pure::signature(flat.nparams, conv);
                        let id = module.declare_anonymous_function(&sig).map_err(failed)?;
                        self.ctx.clear();
                        self.ctx.func.signature = sig;
                        let me = module.declare_func_in_func(id, &mut self.ctx.func);
                        pure::build(&mut self.ctx.func, &mut self.fctx, f, me, &self.helpers, conv, module.target_config());
                        self.ctx.set_disasm(self.dump);
                        module.define_function(id, &mut self.ctx).map_err(failed)?;
                        size += self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
                        self.dump_code(f);
                        Some(id)
                    }
                    None => None,
                };
                let sig = codegen::direct_signature(u32::from(flat.nparams));
                let id = module.declare_anonymous_function(&sig).map_err(failed)?;
                self.ctx.clear();
                self.ctx.func.signature = sig;
                let pure_ref = pure_id.map(|p| module.declare_func_in_func(p, &mut self.ctx.func));
                codegen::build(&mut self.ctx.func, &mut self.fctx, f, pure_ref, &self.helpers, conv, module.target_config())?;
                self.ctx.set_disasm(self.dump);
                module.define_function(id, &mut self.ctx).map_err(failed)?;
                size += self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
                self.dump_code(f);
                // The argument-vector entry.
                let mut argv_sig = module.make_signature();
                argv_sig.params.push(AbiParam::new(ptr));
                argv_sig.params.push(AbiParam::new(I64));
                argv_sig.params.push(AbiParam::new(ptr));
                argv_sig.returns.push(AbiParam::new(I64));
                let aid = module.declare_anonymous_function(&argv_sig).map_err(failed)?;
                self.ctx.clear();
                self.ctx.func.signature = argv_sig;
                let direct = module.declare_func_in_func(id, &mut self.ctx.func);
                codegen::build_argv_wrapper(&mut self.ctx.func, &mut self.fctx, direct, flat.nparams, module.target_config());
                module.define_function(aid, &mut self.ctx).map_err(failed)?;
                size += self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
                argv_id = Some(aid);
                self.ctx.clear();
                self.ctx.func.signature = entry_sig;
                let direct = module.declare_func_in_func(id, &mut self.ctx.func);
                codegen::build_wrapper(&mut self.ctx.func, &mut self.fctx, direct, flat.nparams, &self.helpers, conv, module.target_config());
                Some(id)
            }
            None => {
                self.ctx.clear();
                self.ctx.func.signature = entry_sig;
                codegen::build(&mut self.ctx.func, &mut self.fctx, f, None, &self.helpers, conv, module.target_config())?;
                None
            }
        };
        self.ctx.set_disasm(self.dump);
        module.define_function(entry_id, &mut self.ctx).map_err(failed)?;
        size += self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
        self.dump_code(f);
        // Not flat, with fixed parameters: a direct entry that binds them
        // (so that inline caches call it without the runtime).
        let direct_id = match (direct_id, &f.meta.code.params) {
            (None, Some(p)) if f.meta.code.fixed_frame(usize::from(p.required)).is_some() => {
                let sig = codegen::direct_signature(u32::from(p.required));
                let id = module.declare_anonymous_function(&sig).map_err(failed)?;
                self.ctx.clear();
                self.ctx.func.signature = sig;
                let entry = module.declare_func_in_func(entry_id, &mut self.ctx.func);
                codegen::build_binding_entry(&mut self.ctx.func, &mut self.fctx, entry, p.required, p.frame_size, &self.helpers, conv, module.target_config());
                module.define_function(id, &mut self.ctx).map_err(failed)?;
                size += self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
                Some(id)
            }
            (d, _) => d,
        };
        Ok((entry_id, direct_id, argv_id, size))
    }

    /// With `SX_JIT_DUMP` set, print each function's machine code to stderr.
    fn dump_code(&self, f: &IrFunction) {
        if !self.dump {
            return;
        }
        let name = f.meta.code.name.as_deref().unwrap_or("<lambda>");
        if let Some(v) = self.ctx.compiled_code().and_then(|c| c.vcode.as_ref()) {
            eprintln!("=== {name} ({} bytes)\n{v}", self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len()));
        }
    }
}

#[cfg(test)]
mod tests;
