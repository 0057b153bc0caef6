//! The Cranelift backend of the SX compiled tier.
//!
//! Each lambda gets its own `JITModule`, so its code memory is freed when
//! the JIT cache drops its artifact (eviction, reset). Code follows the
//! sx-ir tree: fixnum arithmetic and comparisons inline, global reads
//! inline, everything else through the helpers of `sx_jit::helpers`
//! (called indirectly by address, from the one helper table).

mod codegen;

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};
use sx_ir::IrFunction;
use sx_jit::{Backend, CompileError, CompiledCode, EntryFn};

/// Bookkeeping a `JITModule` holds besides its code pages.
const MODULE_OVERHEAD_BYTES: usize = 1024;

/// The Cranelift code generator.
pub struct CraneliftBackend {
    isa: OwnedTargetIsa,
    helpers: Vec<sx_jit::helpers::HelperInfo>,
    ctx: cranelift_codegen::Context,
    fctx: cranelift_frontend::FunctionBuilderContext,
}

/// A backend for this machine, or why there is none.
pub fn builder() -> Result<Box<dyn Backend>, String> {
    Ok(Box::new(CraneliftBackend::new()?))
}

impl CraneliftBackend {
    pub fn new() -> Result<CraneliftBackend, String> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
        flags.set("use_colocated_libcalls", "false").map_err(|e| e.to_string())?;
        flags.set("is_pic", "false").map_err(|e| e.to_string())?;
        let isa = cranelift_native::builder()
            .map_err(|e| format!("cranelift does not support this machine: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| e.to_string())?;
        Ok(CraneliftBackend { isa, helpers: sx_jit::helpers::helpers(), ctx: cranelift_codegen::Context::new(), fctx: cranelift_frontend::FunctionBuilderContext::new() })
    }
}

/// One compiled lambda: its module (owning the code pages) and entry.
struct CraneliftCode {
    module: Option<JITModule>,
    entry: EntryFn,
    bytes: usize,
}

impl CompiledCode for CraneliftCode {
    fn entry(&self) -> EntryFn {
        self.entry
    }
    fn code_bytes(&self) -> usize {
        self.bytes
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
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        sig.params.push(cranelift_codegen::ir::AbiParam::new(ptr));
        sig.params.push(cranelift_codegen::ir::AbiParam::new(cranelift_codegen::ir::types::I64));
        sig.returns.push(cranelift_codegen::ir::AbiParam::new(cranelift_codegen::ir::types::I64));
        let id = module.declare_anonymous_function(&sig).map_err(failed)?;
        self.ctx.clear();
        self.ctx.func.signature = sig;
        codegen::build(&mut self.ctx.func, &mut self.fctx, f, &self.helpers, module.isa().default_call_conv(), module.target_config())?;
        let r = module.define_function(id, &mut self.ctx);
        if let Err(e) = r {
            self.ctx.clear();
            // SAFETY: nothing of this module has run or been handed out.
            unsafe { module.free_memory() };
            return Err(failed(e));
        }
        let size = self.ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
        self.ctx.clear();
        if let Err(e) = module.finalize_definitions() {
            // SAFETY: nothing of this module has run or been handed out.
            unsafe { module.free_memory() };
            return Err(failed(e));
        }
        let addr = module.get_finalized_function(id);
        // SAFETY: the function was built with the signature of `EntryFn`
        // (pointer, i64) -> i64 in the platform's C calling convention.
        let entry: EntryFn = unsafe { std::mem::transmute::<*const u8, EntryFn>(addr) };
        let page = 4096;
        let bytes = size.div_ceil(page).max(1) * page + MODULE_OVERHEAD_BYTES;
        Ok(Box::new(CraneliftCode { module: Some(module), entry, bytes }))
    }
}

#[cfg(test)]
mod tests;
