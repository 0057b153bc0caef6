//! The backend-neutral IR of the SX compiled tier.
//!
//! One [`IrFunction`] per lambda body. The IR is a structured expression
//! tree (structured control flow, so every backend — native or WebAssembly —
//! can lower it directly) over one kind of value: the 64-bit words of
//! [`sx_core::Value`].
//!
//! Every compiled activation owns a frame of *slots* on a shadow stack that
//! the runtime can see: slot 0 holds the activation's environment, and every
//! value that must survive a call (an evaluated call operand, a `let`
//! environment) is stored in a slot. The collector marks the slots, and
//! deoptimisation reads them: each point where compiled code may hand over
//! to the interpreter names a [`Site`], the chain of CEK frames the
//! activation stands for there, whose environments and pending values are
//! slots. Lowering follows the CEK's node tree, so every such point has its
//! CEK equivalent by construction.

pub mod lower;
pub mod pure;

pub use lower::lower;

use std::cell::Cell;
use std::rc::Rc;
use sx_cek::code::{Code, NodeId};
pub use sx_cek::code::BinOp;

/// A slot of an activation's shadow frame.
pub type Slot = u32;
/// An index into [`FnMeta::sites`].
pub type SiteId = u32;

/// The slot holding the activation's own environment.
pub const ENV_SLOT: Slot = 0;

/// One pending CEK frame of a compiled activation: node `node` waiting for
/// its sub-expression `i`, in the environment held by slot `env`, with the
/// values already evaluated in slots `vals .. vals + nvals`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteFrame {
    pub node: NodeId,
    pub i: u32,
    pub env: Slot,
    pub vals: Slot,
    pub nvals: u32,
}

/// The CEK frames an activation stands for at one point (outermost first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Site {
    pub frames: Vec<SiteFrame>,
}

/// What the runtime needs about a compiled function while it runs: the
/// analysed code it stands for, its frame size and its sites. Backends embed
/// the address of this record in the code they generate; it must outlive it.
#[derive(Debug)]
pub struct FnMeta {
    pub code: Rc<Code>,
    pub nslots: u32,
    pub sites: Vec<Site>,
    /// The lambdas created in the body ([`Expr::Closure`]).
    pub children: Vec<Rc<Code>>,
    /// Nodes left to the interpreter (constructs the lowering does not
    /// compile), for reports.
    pub interpreted_nodes: u32,
    /// Set when the function keeps its frame in slots (see [`Flat`]).
    pub flat: Option<Flat>,
    /// One inline cache per [`Expr::Call`] (its `ic`).
    pub ics: Box<[IcCell]>,
    /// Every call of the body ([`Expr::Call`], [`Expr::Prim`]): what the
    /// runtime needs to perform one that compiled code does not do inline
    /// (backends pass the index to the `sx_call` helper).
    pub calls: Box<[CallSite]>,
    /// Set when a flat function also has a *pure version* (see [`pure`]).
    pub pure: Option<pure::Pure>,
}

/// An index into [`FnMeta::calls`].
pub type CallId = u32;

/// One call of a compiled body: the value in slot `base` applied to the
/// next `argc` slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSite {
    pub base: Slot,
    pub argc: u32,
    /// In tail position the activation ends and its caller performs the
    /// call (the runtime returns `TAIL`).
    pub tail: bool,
    /// The frames pending during the call.
    pub site: SiteId,
    /// `site` plus the call itself waiting for its last operand (the
    /// interpreter redoes a call compiled code cannot: not callable, wrong
    /// arity, a primitive's error).
    pub bail: SiteId,
    /// The inline cache of a call whose callee may be a flat function.
    pub ic: Option<u32>,
    /// The head was primitive `prim` at analysis: while slot `base` still
    /// holds it, it is applied directly.
    pub prim: Option<u32>,
    /// The head is a global that held a closure of the function itself
    /// when it was compiled, and the call passes as many arguments as it
    /// takes (a pure version calls itself directly; see [`pure`]).
    pub self_call: bool,
}

/// A *flat* function never needs its environment as a heap object (no
/// closures, no `let` frames, nothing left to the interpreter): slot 0 holds
/// the closure's captured environment and slots `1 ..= frame_size` the
/// frame's variables (parameters first). It has a direct entry taking the
/// captured environment and the arguments; on deoptimisation the runtime
/// builds the environment from the slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flat {
    pub nparams: u16,
    pub frame_size: u16,
}

/// The first slot of a flat function's variables.
pub const FLAT_VARS: Slot = 1;

/// An inline cache of one call site: when the callee is `closure` and the
/// runtime's epoch is still `epoch` (it changes on every collection and
/// every dropped artifact), call `entry` (a flat function's direct entry)
/// with `env`. Filled by the runtime; read by compiled code at the offsets
/// of [`ic_offsets`].
#[repr(C)]
#[derive(Debug, Default)]
pub struct IcCell {
    pub closure: Cell<u64>,
    pub epoch: Cell<u64>,
    pub entry: Cell<u64>,
    pub env: Cell<u64>,
    /// The address of the analysed code `entry` was compiled from: another
    /// closure of the same code can take the cache over (see the runtime's
    /// `sx_ic_relink`).
    pub code: Cell<u64>,
    /// 1 when `entry` is a flat function's (only those may be tail called
    /// directly: a tail call into a function that builds its environment
    /// would nest instead of replacing the caller), else 0.
    pub flat: Cell<u64>,
}

/// Byte offsets of [`IcCell`] fields.
pub mod ic_offsets {
    pub const CLOSURE: i32 = 0;
    pub const EPOCH: i32 = 8;
    pub const ENTRY: i32 = 16;
    pub const ENV: i32 = 24;
    pub const CODE: i32 = 32;
    pub const FLAT: i32 = 40;
    pub const SIZE: i32 = 48;
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(IcCell, closure) == ic_offsets::CLOSURE as usize);
    assert!(offset_of!(IcCell, epoch) == ic_offsets::EPOCH as usize);
    assert!(offset_of!(IcCell, entry) == ic_offsets::ENTRY as usize);
    assert!(offset_of!(IcCell, env) == ic_offsets::ENV as usize);
    assert!(offset_of!(IcCell, code) == ic_offsets::CODE as usize);
    assert!(offset_of!(IcCell, flat) == ic_offsets::FLAT as usize);
    assert!(size_of::<IcCell>() == ic_offsets::SIZE as usize);
};

impl FnMeta {
    /// Bytes this record holds (what the JIT cache's budget counts as
    /// metadata).
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<FnMeta>()
            + self.ics.len() * std::mem::size_of::<IcCell>()
            + self.calls.len() * std::mem::size_of::<CallSite>()
            + self.sites.iter().map(|s| std::mem::size_of::<Site>() + s.frames.len() * std::mem::size_of::<SiteFrame>()).sum::<usize>()
            + self.pure.as_ref().map_or(0, |p| p.deps.len() * std::mem::size_of::<pure::PureDep>())
    }
}

/// A lowered lambda.
#[derive(Debug)]
pub struct IrFunction {
    pub meta: Box<FnMeta>,
    pub body: Expr,
}

/// An IR expression: evaluating it yields one value word, or abandons the
/// activation (the runtime helpers report `Value::JIT_UNWIND`, and compiled
/// code returns it at once after restoring the shadow stack).
#[derive(Debug)]
pub enum Expr {
    /// A constant word.
    Const(u64),
    /// The value in a slot.
    Slot(Slot),
    /// Evaluate `value`, store it in `slot`, yield it.
    Store(Slot, Box<Expr>),
    /// Evaluate in order, yield the last.
    Seq(Vec<Expr>),
    /// A variable: environment in slot `env`, `depth` frames up, `slot`.
    Local { env: Slot, depth: u16, slot: u16 },
    /// Assign a variable; yields the value.
    SetLocal { env: Slot, depth: u16, slot: u16, value: Box<Expr> },
    /// A global. Unbound: hand node `node` to the interpreter at `site`
    /// (which raises the error with its location). `in_table`: the global
    /// table already has a slot for `sym` (it only grows), so no bounds check
    /// is needed.
    /// `bound`: bound when the function was compiled (globals never become
    /// unbound again), so no check is needed.
    Global { sym: u32, node: NodeId, env: Slot, site: SiteId, in_table: bool, bound: bool },
    /// Assign (`define`: create) a global; an unbound `set!` target hands
    /// the value to the interpreter at `bail` (whose innermost frame is the
    /// assignment).
    SetGlobal { sym: u32, define: bool, value: Box<Expr>, bail: SiteId },
    If { test: Box<Expr>, then: Box<Expr>, els: Box<Expr> },
    /// Short-circuit `and`/`or` (yield the deciding value).
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// A new closure (or macro) of `FnMeta::children[child]` over the
    /// environment in slot `env`.
    Closure { child: u32, env: Slot, is_macro: bool },
    /// A new environment of `size` slots under the one in slot `parent`,
    /// initialised from slots `base .. base + n`, stored in slot `dest`.
    NewEnv { parent: Slot, base: Slot, n: u32, size: u32, dest: Slot },
    /// Call [`FnMeta::calls`]`[call]`; a flat callee found in its inline
    /// cache is called directly. In tail position the activation ends and
    /// the caller performs the call.
    Call(CallId),
    /// A call whose head was a primitive at analysis ([`CallSite::prim`]):
    /// while the head is still that primitive it is applied directly (`op`:
    /// inline for fixnums); otherwise as [`Expr::Call`].
    Prim { op: Option<BinOp>, call: CallId },
    /// `case`: the index of the clause of node `node` whose datums contain
    /// the key (helper `sx_case`) selects an arm; no match runs `els`.
    Case { node: NodeId, key: Box<Expr>, arms: Vec<Expr>, els: Box<Expr> },
    /// Evaluate node `node` in the interpreter, in the environment in slot
    /// `env` (constructs compiled code leaves to the CEK).
    Interp { node: NodeId, env: Slot, site: SiteId },
}

/// Why a lambda cannot be lowered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LowerError {
    /// Not a lambda body.
    NotALambda,
    /// Too large or too deep to compile.
    TooLarge(String),
    /// The whole body is left to the interpreter: compiled code would only
    /// call it.
    AllInterpreted,
}

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LowerError::NotALambda => write!(f, "not a lambda body"),
            LowerError::TooLarge(why) => write!(f, "too large to compile: {why}"),
            LowerError::AllInterpreted => write!(f, "nothing to compile: the whole body is left to the interpreter"),
        }
    }
}
