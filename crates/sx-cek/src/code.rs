//! Analysed code: a flat arena of [`Node`]s per unit (one lambda body or one
//! top-level form), with lexical variables resolved to (depth, slot).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use sx_core::heap::{CodeObj, RootHandle};
use sx_core::Value;
use sx_syntax::Span;

pub type NodeId = u32;

/// One analysed unit.
pub struct Code {
    pub nodes: Vec<Node>,
    pub spans: Vec<Span>,
    pub root: NodeId,
    /// Present when this unit is a lambda body.
    pub params: Option<Params>,
    /// `params` read once for the interpreter's call fast path (see
    /// [`Code::fixed_frame`]).
    pub fixed: FixedArity,
    pub name: Option<Rc<str>>,
    pub file: Rc<str>,
    /// Keeps the constants embedded in `nodes` alive.
    pub consts: Option<RootHandle>,
    /// Unique id (for caches keyed by code).
    pub id: u64,
    /// Calls the interpreter entered so far.
    pub calls: Cell<u32>,
    /// Until which call the compiled tier need not be asked about this code
    /// (see [`TierQuiet`]).
    pub tier_quiet: Cell<TierQuiet>,
    /// Runtime macro expansions of call sites whose head became a macro
    /// after analysis.
    pub expansions: RefCell<hashbrown::HashMap<NodeId, Rc<Code>>>,
}

/// A lambda's arity when it takes fixed positional parameters only (no
/// `&rest`): `required | frame_size << 16`; [`FixedArity::NONE`] otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedArity(u32);

impl FixedArity {
    pub const NONE: FixedArity = FixedArity(u32::MAX);

    pub fn of(params: Option<&Params>) -> FixedArity {
        match params {
            Some(p) if !p.rest && p.required != u16::MAX => FixedArity(u32::from(p.required) | u32::from(p.frame_size) << 16),
            _ => FixedArity::NONE,
        }
    }
}

impl Code {
    /// The frame size of a call passing `argc` arguments to this lambda
    /// when they are exactly its positional parameters.
    #[inline(always)]
    pub fn fixed_frame(&self, argc: usize) -> Option<usize> {
        (self.fixed != FixedArity::NONE && (self.fixed.0 & 0xffff) as usize == argc).then_some((self.fixed.0 >> 16) as usize)
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<code {} #{}>", self.name.as_deref().unwrap_or("anonymous"), self.id)
    }
}

impl CodeObj for Code {
    fn name(&self) -> Option<Rc<str>> {
        self.name.clone()
    }
    fn id(&self) -> u64 {
        self.id
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_rc(self: Rc<Self>) -> Rc<dyn std::any::Any> {
        self
    }
}

/// A window of calls the interpreter enters without asking the compiled
/// tier, set by the tier when asking would change nothing but a count (below
/// the compile threshold, declined, excluded): cold code does not pay for
/// the JIT on every call. It holds while `version` equals
/// [`TierSignals::version`] and [`Code::calls`] is at most `until`. `from` is
/// the call at which it was set and `epoch` the [`TierSignals::epoch`] then:
/// the calls skipped since are added to the code's counter at the next
/// asking unless the counters were reset meanwhile. `counted`: the skipped
/// calls are below-threshold calls (counted in
/// [`TierSignals::skipped_below`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierQuiet {
    pub version: u32,
    pub epoch: u32,
    pub from: u32,
    pub until: u32,
    pub counted: bool,
}

/// What the interpreter and the compiled tier tell each other without a
/// call: shared by the machine, the tier and whoever changes the tier's
/// policy.
#[derive(Debug, Default)]
pub struct TierSignals {
    /// Bumped by every change of the tier's policy (threshold, exclusions,
    /// reset, a fresh cache): ends every [`TierQuiet`] window.
    pub version: Cell<u32>,
    /// Bumped when call counters are dropped (reset, a fresh cache).
    pub epoch: Cell<u32>,
    /// Below-threshold calls entered inside quiet windows.
    pub skipped_below: Cell<u64>,
    /// Lambda calls the interpreter entered.
    pub entries: Cell<u64>,
}

impl TierSignals {
    /// End every quiet window (the tier's policy changed).
    pub fn policy_changed(&self) {
        self.version.set(self.version.get().wrapping_add(1));
    }

    /// End every quiet window and forget the calls they skipped (the
    /// counters were dropped).
    pub fn counters_dropped(&self) {
        self.policy_changed();
        self.epoch.set(self.epoch.get().wrapping_add(1));
    }
}

/// The parameter shape of a lambda.
#[derive(Clone, Debug)]
pub struct Params {
    /// Positional parameters (slots 0..n).
    pub required: u16,
    /// `&rest r`: slot `required`.
    pub rest: bool,
    /// `&key a b`: slots after the rest slot.
    pub keys: Vec<Rc<str>>,
    /// Slots in the frame (params plus internal defines).
    pub frame_size: u16,
}

/// One clause of `match`: the body runs in a new frame of `size` slots
/// holding the pattern's variables.
#[derive(Debug)]
pub struct MatchClause {
    pub pat: Pat,
    pub body: NodeId,
    pub size: u16,
}

/// A pattern of `match`.
#[derive(Clone, Debug)]
pub enum Pat {
    Wild,
    Bind(u16),
    Lit(Value),
    List { items: Vec<Pat>, rest: Option<Box<Pat>> },
    Dict(Vec<(Rc<str>, Pat)>),
    /// A constructor pattern: `(Name p ...)` matching a record or ADT value.
    Ctor { name: Rc<str>, fields: Vec<Pat> },
}

/// Binary primitives evaluated inline when both operands are fixnums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    /// Unary `not` (one argument).
    Not,
}

impl BinOp {
    pub fn from_name(name: &str) -> Option<BinOp> {
        Some(match name {
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "*" => BinOp::Mul,
            "<" => BinOp::Lt,
            ">" => BinOp::Gt,
            "<=" => BinOp::Le,
            ">=" => BinOp::Ge,
            "=" => BinOp::Eq,
            "not" => BinOp::Not,
            _ => return None,
        })
    }

    /// The result for two fixnums, or `None` when it does not fit a fixnum.
    #[inline(always)]
    pub fn fixnum(self, a: i64, b: i64) -> Option<Value> {
        match self {
            BinOp::Add => Value::fixnum(a.checked_add(b)?),
            BinOp::Sub => Value::fixnum(a.checked_sub(b)?),
            BinOp::Mul => Value::fixnum(a.checked_mul(b)?),
            BinOp::Lt => Some(Value::bool(a < b)),
            BinOp::Gt => Some(Value::bool(a > b)),
            BinOp::Le => Some(Value::bool(a <= b)),
            BinOp::Ge => Some(Value::bool(a >= b)),
            BinOp::Eq => Some(Value::bool(a == b)),
            BinOp::Not => None,
        }
    }
}

/// An operand of a binary primitive call, encoded for the interpreter's
/// fixnum fast path so that it need not dispatch on the operand's own node:
/// a fixnum constant is its own value (low bit 0), a variable of the
/// innermost frame is `slot << 3 | 1`, anything else is [`Leaf::NONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf(u64);

impl Leaf {
    pub const NONE: Leaf = Leaf(u64::MAX);

    /// The encoding of operand node `node`.
    pub fn of(node: &Node) -> Leaf {
        match node {
            Node::Const(v) if v.is_fixnum() => Leaf(v.0),
            Node::Local0 { slot } => Leaf(((*slot as u64) << 3) | 1),
            _ => Leaf::NONE,
        }
    }

    /// A fixnum constant's value.
    #[inline(always)]
    pub fn constant(self) -> Option<i64> {
        Value(self.0).as_fixnum()
    }

    /// A frame variable's slot.
    #[inline(always)]
    pub fn slot(self) -> Option<usize> {
        (self.0 & 0b111 == 1).then_some((self.0 >> 3) as usize)
    }
}

// A plain tag byte at offset 0: every dispatch on a node reads and jumps on
// it (a niche-encoded tag costs a subtract, a compare and a conditional move
// more per dispatch).
#[derive(Debug)]
#[repr(u8)]
pub enum Node {
    Const(Value),
    Local { depth: u16, slot: u16 },
    /// A variable of the innermost frame.
    Local0 { slot: u16 },
    Global { sym: u32 },
    SetLocal { depth: u16, slot: u16, value: NodeId, define: bool },
    SetGlobal { sym: u32, value: NodeId, define: bool },
    If { test: NodeId, then: NodeId, els: NodeId },
    Seq(Box<[NodeId]>),
    And(Box<[NodeId]>),
    Or(Box<[NodeId]>),
    Lambda(Rc<Code>),
    Macro(Rc<Code>),
    /// A call. `prim` is set when the head is a global that named a
    /// primitive at analysis time: if it still does at run time and
    /// `direct` holds, the primitive is applied without a frame.
    Call {
        head: NodeId,
        args: Box<[NodeId]>,
        prim: Option<(u32, u32)>,
        /// `prim` is set and all arguments are simple: the primitive can be
        /// applied without frames.
        direct: bool,
        /// Every argument is simple (constants, variables, pure primitive
        /// calls): a lambda head can be entered without frames.
        simple_args: bool,
        /// `direct` and the primitive is pure: usable inside other simple nodes.
        pure: bool,
        /// A binary arithmetic/comparison primitive with a fixnum fast path.
        op: Option<BinOp>,
        /// With `op`: its two operands when they are leaves (else `Leaf::NONE`).
        leaves: [Leaf; 2],
        /// Bit k clear: sub-expression k (0 = the head, then the arguments)
        /// always needs a frame, so the interpreter does not try to
        /// evaluate it without one (bits from 64 on count as set).
        inline: u64,
        /// The source form, for expanding a macro defined after analysis.
        form: Value,
        scope: Option<Rc<crate::analyze::Scope>>,
    },
    /// A new frame of `size` slots; `inits` evaluated in the outer
    /// environment (`rec`: in the new one) into slots 0..n.
    Let { inits: Box<[NodeId]>, body: NodeId, size: u16, rec: bool },
    /// `{k v ...}` literal.
    Dict { keys: Box<[Rc<str>]>, vals: Box<[NodeId]> },
    /// Quasiquote template: each part is an element or a spliced list.
    QList(Box<[(NodeId, bool)]>),
    /// `(case key (datums body) ... (else body))`.
    Case { key: NodeId, clauses: Box<[(Vec<Value>, NodeId)]>, els: Option<NodeId> },
    /// `match`: each clause binds pattern variables in a new frame.
    Match { subject: NodeId, clauses: Box<[MatchClause]> },
    Reset(NodeId),
    /// `(shift k body)`: body runs in a new one-slot frame holding k.
    Shift { body: NodeId },
    /// `(guard (e clause...) body...)`: `handler` runs in a new one-slot
    /// frame holding the raised value and returns `reraise` sentinel when
    /// no clause matched.
    Guard { body: NodeId, handler: NodeId },
    /// `(handler-bind ((pred handler) ...) body...)`.
    HandlerBind { clauses: Box<[(NodeId, NodeId)]>, body: NodeId },
    /// `(scope name [:value v] body...)` and `provide`.
    Scope { name: NodeId, value: Option<NodeId>, body: NodeId },
    /// A fragment analysed later (runtime macro expansion) runs here.
    ReRaise,
}
