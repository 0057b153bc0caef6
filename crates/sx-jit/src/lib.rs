//! The seam of the SX compiled tier.
//!
//! * [`Backend`]: what a code generator implements (Cranelift, LLVM,
//!   WebAssembly): compile one [`sx_ir::IrFunction`] or decline with
//!   [`CompileError::Unsupported`].
//! * [`helpers`]: the runtime functions compiled code calls, listed once in
//!   [`foreach_helper!`] — backends declare them from that list, the runtime
//!   defines them against the same list, so the ABI cannot drift.
//! * [`JitTier`]: the machine's tier hook: counts calls through the
//!   [`sx_jit_cache::JitCache`], compiles hot lambdas with the backend, runs
//!   compiled code on the shadow stack, and turns compiled activations back
//!   into CEK frames when the interpreter needs them.
//!
//! ## The ABI
//! A compiled lambda is `extern "C" fn(ctx: *mut JitCtx, env: u64) -> u64`:
//! `env` is the environment the call bound (parameters in its slots), the
//! result a value word, [`Value::JIT_UNWIND`] (the computation continues in
//! the interpreter: the activation's frames were handed over) or
//! [`Value::JIT_TAIL`] (perform the tail call left in the context).
//! Its shadow frame is `ctx.sp .. ctx.sp + nslots` (see [`JitCtx`]).

pub mod helpers;
mod stack;
mod tier;

pub use tier::{JitTier, TierCounters};

use sx_core::Value;
use sx_ir::{FnMeta, IrFunction};

/// The entry point of a compiled lambda.
pub type EntryFn = unsafe extern "C" fn(*mut JitCtx, u64) -> u64;

/// The argument-vector entry of a flat function: `(ctx, captured_env,
/// argv)` with `argv` pointing to its `nparams` arguments.
pub type ArgvEntryFn = unsafe extern "C" fn(*mut JitCtx, u64, *const u64) -> u64;

/// The context compiled code and the helpers share. Compiled code reads and
/// writes the fields at the offsets of [`ctx_offsets`].
#[repr(C)]
pub struct JitCtx {
    /// The first free shadow-stack slot.
    pub sp: *mut u64,
    /// The global table (indexed by symbol id) and its length; refreshed by
    /// every helper before it returns.
    pub globals: *const u64,
    pub globals_len: u64,
    /// The machine running the compiled code.
    pub machine: *mut sx_cek::Machine,
    /// The tier (for helpers that call or compile).
    pub tier: *const JitTier,
    /// A direct call may start only while the native stack pointer is above
    /// this address ...
    pub stack_limit: u64,
    /// ... and `sp` is at most this (room for a flat frame).
    pub shadow_soft_end: *mut u64,
    /// Direct calls made by compiled code (counted inline).
    pub direct_calls: u64,
    /// Direct tail calls left before compiled code must go through the
    /// runtime (a safepoint: collection, interrupts); reset on every entry.
    pub tail_budget: u64,
    /// The runtime's current inline-cache epoch, refreshed by every helper
    /// that may collect or drop code.
    pub epoch: u64,
    /// The machine's assumptions epoch ([`sx_cek::Machine::assumptions_epoch`]),
    /// refreshed with `globals`; pure versions compare it with
    /// [`sx_ir::pure::Pure::valid_at`].
    pub assumptions_epoch: u64,
    /// Compiled activations on the native stack (pure versions aside): each
    /// one adds itself on entry and removes itself when it returns or makes
    /// a tail call. With the machine's own frames it is the depth the
    /// configured limit applies to.
    pub depth: u64,
    /// Set (1) by a pure version that gives up because one activation
    /// accumulated more sums than the depth limit allows frames; read and
    /// cleared by `sx_pure_bail`, which then raises the depth error.
    pub pure_too_deep: u64,
    /// A direct call may start only while `depth` is below this: the
    /// compiled activations the depth limit leaves room for above the
    /// machine's own frames (`max_depth - Machine::depth()` when compiled
    /// code was entered). At it, the call goes through the runtime, which
    /// raises the depth error past the limit.
    pub depth_limit: u64,
}

/// Byte offsets of [`JitCtx`] fields, for code generators.
pub mod ctx_offsets {
    pub const SP: i32 = 0;
    pub const GLOBALS: i32 = 8;
    pub const GLOBALS_LEN: i32 = 16;
    pub const STACK_LIMIT: i32 = 40;
    pub const SHADOW_SOFT_END: i32 = 48;
    pub const DIRECT_CALLS: i32 = 56;
    pub const TAIL_BUDGET: i32 = 64;
    pub const EPOCH: i32 = 72;
    pub const ASSUMPTIONS_EPOCH: i32 = 80;
    pub const DEPTH: i32 = 88;
    pub const PURE_TOO_DEEP: i32 = 96;
    pub const DEPTH_LIMIT: i32 = 104;

    // The offsets are those of the struct.
    use super::JitCtx;
    use std::mem::offset_of;
    const _: () = assert!(offset_of!(JitCtx, sp) == SP as usize);
    const _: () = assert!(offset_of!(JitCtx, globals) == GLOBALS as usize);
    const _: () = assert!(offset_of!(JitCtx, globals_len) == GLOBALS_LEN as usize);
    const _: () = assert!(offset_of!(JitCtx, stack_limit) == STACK_LIMIT as usize);
    const _: () = assert!(offset_of!(JitCtx, shadow_soft_end) == SHADOW_SOFT_END as usize);
    const _: () = assert!(offset_of!(JitCtx, direct_calls) == DIRECT_CALLS as usize);
    const _: () = assert!(offset_of!(JitCtx, tail_budget) == TAIL_BUDGET as usize);
    const _: () = assert!(offset_of!(JitCtx, epoch) == EPOCH as usize);
    const _: () = assert!(offset_of!(JitCtx, assumptions_epoch) == ASSUMPTIONS_EPOCH as usize);
    const _: () = assert!(offset_of!(JitCtx, depth) == DEPTH as usize);
    const _: () = assert!(offset_of!(JitCtx, pure_too_deep) == PURE_TOO_DEEP as usize);
    const _: () = assert!(offset_of!(JitCtx, depth_limit) == DEPTH_LIMIT as usize);
}

/// Direct tail calls between two safepoints.
pub const TAIL_BUDGET: u64 = 10_000;

/// Compiled code makes a direct non-tail call through the runtime (a
/// safepoint) when the count of direct calls, `JitCtx::direct_calls`, has
/// these bits all zero: once every 16 384 calls, so that recursion that
/// never loops still notices an interrupt.
pub const SAFEPOINT_MASK: u64 = 0x3fff;

/// Changes whenever an inline cache may have gone stale: after every
/// collection (a closure's slot may be reused) and whenever compiled code is
/// dropped. Copied into [`JitCtx::epoch`], which compiled code compares with
/// [`sx_ir::IcCell::epoch`].
static EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The current epoch.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn bump_epoch() {
    EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Value words compiled code needs as constants.
pub mod words {
    /// `UNWIND` and `TAIL` share their low byte (an immediate sub-tag no
    /// value uses): one test tells an ordinary result from both.
    pub const SENTINEL_LOW_BYTE: u64 = super::Value::JIT_UNWIND.0 & 0xff;
    use sx_core::Value;
    pub const NIL: u64 = Value::NIL.0;
    pub const TRUE: u64 = Value::TRUE.0;
    pub const FALSE: u64 = Value::FALSE.0;
    pub const UNBOUND: u64 = Value::UNBOUND.0;
    pub const UNWIND: u64 = Value::JIT_UNWIND.0;
    pub const TAIL: u64 = Value::JIT_TAIL.0;
    /// What a pure version returns when it gives up (see [`sx_ir::pure`]);
    /// it never leaves compiled code.
    pub const PURE_BAIL: u64 = Value::JIT_UNWIND.0;
}

/// The word of primitive `p` (what a global bound to it holds).
pub fn prim_word(p: u32) -> u64 {
    Value::prim(p).0
}

/// Why a backend produced no code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// The backend declines this function (it stays interpreted; the cache
    /// does not ask again).
    Unsupported(String),
    /// Code generation or code memory failed (the function stays
    /// interpreted).
    Failed(String),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::Unsupported(w) => write!(f, "unsupported: {w}"),
            CompileError::Failed(w) => write!(f, "failed: {w}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// Native code for one lambda. Dropping it frees its code memory.
pub trait CompiledCode {
    fn entry(&self) -> EntryFn;
    /// The direct entry inline caches call: `fn(ctx, captured_env, arg0,
    /// ..., argN-1) -> u64` in the backend's own convention. A flat
    /// function's (see [`sx_ir::Flat`]), or, for a function with fixed
    /// parameters that is not flat, one that builds its environment from
    /// the arguments and runs the generic entry (see
    /// [`Artifact::direct_entry_for`]).
    fn direct_entry(&self) -> Option<u64> {
        None
    }
    /// A flat function's argument-vector entry (for calls from the runtime:
    /// no environment is built).
    fn argv_entry(&self) -> Option<ArgvEntryFn> {
        None
    }
    /// Bytes of code memory this function holds (whole pages when the
    /// backend allocates per function).
    fn code_bytes(&self) -> usize;
}

/// A code generator.
pub trait Backend {
    /// The name `--backend` and `jit-stats` use.
    fn name(&self) -> &'static str;
    /// Compile `f`. The code may embed the address of `f.meta`, which the
    /// tier keeps alive as long as the code.
    fn compile(&mut self, f: &IrFunction) -> Result<Box<dyn CompiledCode>, CompileError>;
}

/// What the JIT cache holds for one lambda: its code and the metadata the
/// code refers to.
pub struct Artifact {
    code: Box<dyn CompiledCode>,
    meta: Box<FnMeta>,
}

impl Artifact {
    pub fn new(code: Box<dyn CompiledCode>, meta: Box<FnMeta>) -> Artifact {
        Artifact { code, meta }
    }
    pub fn meta(&self) -> &FnMeta {
        &self.meta
    }
    pub fn entry(&self) -> EntryFn {
        self.code.entry()
    }
    pub fn direct_entry(&self) -> Option<u64> {
        self.code.direct_entry()
    }
    pub fn argv_entry(&self) -> Option<ArgvEntryFn> {
        self.code.argv_entry()
    }
    /// The direct entry an inline cache may call with `argc` arguments: a
    /// flat function's of that arity, or that of one that builds its
    /// environment from exactly `argc` arguments, as the interpreter binds
    /// fixed parameters.
    pub fn direct_entry_for(&self, argc: usize) -> Option<u64> {
        let fits = match self.meta.flat {
            Some(fl) => usize::from(fl.nparams) == argc,
            None => self.meta.code.fixed_frame(argc).is_some(),
        };
        self.direct_entry().filter(|_| fits)
    }
    /// Is this a flat function taking exactly `argc` arguments?
    pub fn is_flat_with_arity(&self, argc: usize) -> bool {
        self.meta.flat.is_some_and(|fl| usize::from(fl.nparams) == argc)
    }
    /// Can a call with `argc` arguments start it on its argument-vector
    /// entry (no environment bound)?
    pub fn runs_on_argv(&self, argc: usize) -> bool {
        self.argv_entry().is_some() && self.is_flat_with_arity(argc)
    }
}

impl Drop for Artifact {
    fn drop(&mut self) {
        // Inline caches may point at this code.
        bump_epoch();
    }
}

impl sx_jit_cache::Artifact for Artifact {
    fn code_bytes(&self) -> usize {
        self.code.code_bytes()
    }
    fn meta_bytes(&self) -> usize {
        self.meta.size_bytes()
    }
}

/// The cache type the tier and the SX JIT API share.
pub type Cache = sx_jit_cache::JitCache<Artifact>;
