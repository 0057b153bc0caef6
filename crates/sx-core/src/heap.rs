//! The heap: a slot arena addressed by index, reclaimed by a mark-and-sweep
//! tracing collector.
//!
//! Architecture invariant: the collector runs only when its owner calls
//! [`Heap::collect`] with the complete root set, which the machine does at
//! safepoints (between steps). Rust code holding a [`Value`] between
//! safepoints is therefore always safe. Cycles are reclaimed like anything else.

use crate::value::Value;
use indexmap::IndexMap;
use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

/// Insertion-ordered, string-keyed map.
pub type DictMap = IndexMap<Rc<str>, Value, hashbrown::DefaultHashBuilder>;

/// An immutable string, with its length in code points cached.
#[derive(Clone, Debug)]
pub struct SxStr {
    pub s: Rc<str>,
    pub chars: u32,
}

impl SxStr {
    pub fn new(s: Rc<str>) -> SxStr {
        let chars = s.chars().count() as u32;
        SxStr { s, chars }
    }
    #[inline]
    pub fn is_ascii(&self) -> bool {
        self.chars as usize == self.s.len()
    }
}

/// A list. Elements are stored *reversed* in a buffer that lists may share,
/// so `cons`, `rest`, `first`, `nth` and `len` are O(1): the list is
/// `buf[0..len]` read backwards. `cons` pushes in place when this list owns
/// the end of the buffer, and copies otherwise.
#[derive(Clone, Debug)]
pub struct ListObj {
    pub buf: Rc<RefCell<Vec<Value>>>,
    pub len: u32,
}

impl ListObj {
    pub fn from_vec(mut items: Vec<Value>) -> ListObj {
        items.reverse();
        let len = items.len() as u32;
        ListObj { buf: Rc::new(RefCell::new(items)), len }
    }
    /// Element `i` (0 = first), if in range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Value> {
        if i < self.len as usize {
            self.buf.borrow().get(self.len as usize - 1 - i).copied()
        } else {
            None
        }
    }
    /// Append `x` at the end, in place (`append!`). Elements are stored
    /// reversed, so this builds a private copy of the buffer with `x` first.
    pub fn push_back(&mut self, x: Value) {
        let mut v: Vec<Value> = Vec::with_capacity(self.len as usize + 1);
        v.push(x);
        v.extend_from_slice(&self.buf.borrow()[..self.len as usize]);
        self.len += 1;
        self.buf = Rc::new(RefCell::new(v));
    }

    /// The elements in order.
    pub fn to_vec(&self) -> Vec<Value> {
        let b = self.buf.borrow();
        b[..self.len as usize].iter().rev().copied().collect()
    }
}

/// Code owned by an evaluator, opaque to the heap.
pub trait CodeObj: Any {
    /// The name the code was defined under, if any.
    fn name(&self) -> Option<Rc<str>>;
    /// A unique identity of the code (closures made from the same `(fn ...)`
    /// share it): the key of the JIT cache.
    fn id(&self) -> u64 {
        0
    }
    fn as_any(&self) -> &dyn Any;
    fn as_any_rc(self: Rc<Self>) -> Rc<dyn Any>;
}

impl CodeObj for () {
    fn name(&self) -> Option<Rc<str>> {
        None
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_rc(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }
}

/// A closure or macro: code plus the environment it closes over.
#[derive(Clone)]
pub struct Closure {
    pub code: Rc<dyn CodeObj>,
    /// The captured environment (an `Env` object or nil).
    pub env: Value,
}

/// A lexical environment frame.
#[derive(Debug)]
pub struct EnvObj {
    pub parent: Value,
    pub slots: Box<[Value]>,
}

/// The `as_any`/`as_any_mut` methods every [`ExternObj`] implements the same way.
#[macro_export]
macro_rules! extern_any {
    () => {
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
            self
        }
    };
}

/// Heap data defined outside this crate (continuations, records, ...).
pub trait ExternObj: Any {
    /// Report every value this object refers to.
    fn trace(&self, tracer: &mut Tracer);
    /// The `type-of` name.
    fn type_name(&self) -> &str;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// How the object prints and compares with `equal?`; `Opaque` prints `<type>`.
    fn shape(&self) -> Shape {
        Shape::Opaque
    }
    /// The number of elements, for `len` and `empty?` (sequences by default).
    fn length(&self) -> Option<usize> {
        match self.shape() {
            Shape::Seq { items, .. } => Some(items.len()),
            _ => None,
        }
    }
    /// The elements, for `map`, `for-each` and `json-encode` (sequences by default).
    fn elements(&self) -> Option<Vec<Value>> {
        match self.shape() {
            Shape::Seq { items, .. } => Some(items),
            _ => None,
        }
    }
}

/// The printable, comparable structure of an [`ExternObj`].
pub enum Shape {
    /// `(Name field ...)` — records and ADT values; `equal?` compares name and fields.
    Ctor(String, Vec<Value>),
    /// A sequence printed between `open` and `close` (e.g. `#(` `)` for
    /// vectors); `equal?` compares elements.
    Seq { open: &'static str, close: &'static str, items: Vec<Value> },
    /// Printed as the given text; `equal?` compares by identity.
    Text(String),
    /// Printed as `<type-name>`; `equal?` compares by identity.
    Opaque,
}

/// A heap object.
#[repr(u8)]
pub enum Obj {
    Free(u32),
    Float(f64),
    /// An integer outside the fixnum range.
    Int(i64),
    /// An exact rational: reduced, denominator > 1.
    Rational(i64, i64),
    Str(SxStr),
    List(ListObj),
    Dict(Box<DictMap>),
    Lambda(Closure),
    Macro(Closure),
    Env(EnvObj),
    /// An environment frame of at most three slots, stored inline (no
    /// separate allocation: most calls bind one to three parameters). The
    /// parent is a heap index ([`NO_PARENT`] for nil), so that the object
    /// stays 32 bytes.
    Env3 { parent: u32, slots: [Value; 3] },
    Extern(Box<dyn ExternObj>),
}

impl Obj {
    pub fn type_name(&self) -> &str {
        match self {
            Obj::Free(_) => "free",
            Obj::Float(_) | Obj::Int(_) | Obj::Rational(..) => "number",
            Obj::Str(_) => "string",
            Obj::List(_) => "list",
            Obj::Dict(_) => "dict",
            Obj::Lambda(_) => "lambda",
            Obj::Macro(_) => "macro",
            Obj::Env(_) | Obj::Env3 { .. } => "env",
            Obj::Extern(e) => e.type_name(),
        }
    }
}

/// Collects the values reachable from roots during marking.
pub struct Tracer {
    stack: Vec<u32>,
    marks: Vec<u64>,
    /// For list buffers shared by several lists: how much of each buffer
    /// has been traced already, so a chain of `cons`es is traced in linear
    /// time rather than once per list.
    traced_bufs: hashbrown::HashMap<usize, usize>,
}

impl Tracer {
    #[inline]
    pub fn mark(&mut self, v: Value) {
        if let Some(i) = v.heap_index() {
            let (w, b) = ((i >> 6) as usize, i & 63);
            if let Some(word) = self.marks.get_mut(w) {
                if *word & (1 << b) == 0 {
                    *word |= 1 << b;
                    self.stack.push(i);
                }
            }
        }
    }
    pub fn mark_all(&mut self, vs: &[Value]) {
        for &v in vs {
            self.mark(v);
        }
    }
}

/// Something that can enumerate GC roots.
pub trait Roots {
    fn trace_roots(&self, tracer: &mut Tracer);
}

/// Values kept alive by Rust-side owners (analysed code's constants, embedder
/// handles). Dropping the [`RootHandle`] releases them at the next collection.
#[derive(Default)]
struct RootTable {
    sets: hashbrown::HashMap<u64, Vec<Value>>,
    next: u64,
    released: Rc<RefCell<Vec<u64>>>,
}

/// Keeps a set of values alive until dropped.
pub struct RootHandle {
    id: u64,
    released: Rc<RefCell<Vec<u64>>>,
}

impl Drop for RootHandle {
    fn drop(&mut self) {
        self.released.borrow_mut().push(self.id);
    }
}

impl std::fmt::Debug for RootHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootHandle({})", self.id)
    }
}

/// Statistics of the collector.
#[derive(Clone, Copy, Debug, Default)]
pub struct GcStats {
    pub collections: u64,
    pub live_after_last: usize,
    pub freed_total: u64,
}

/// Environment frames up to this many slots reuse their slot arrays.
const POOLED_ENV_MAX: usize = 8;
const POOL_CAP: usize = 1 << 17;

pub struct Heap {
    objs: Vec<Obj>,
    /// Freed slot arrays of environment frames, by length (avoids a
    /// malloc/free pair per call of a function with 3..=8 slots).
    env_pool: Vec<Vec<Box<[Value]>>>,
    free_head: u32,
    free_count: usize,
    allocated_since_gc: usize,
    next_gc: usize,
    roots: RootTable,
    pub stats: GcStats,
    /// The previous collection's tracer buffers, reused (a long-running
    /// process collects often; fresh large buffers each time fragment the
    /// allocator).
    spare: Option<Tracer>,
}

const NO_FREE: u32 = u32::MAX;
/// The parent index of an [`Obj::Env3`] whose parent is nil.
pub const NO_PARENT: u32 = u32::MAX;

/// The parent of an [`Obj::Env3`] as a value.
#[inline(always)]
pub fn parent_value(parent: u32) -> Value {
    if parent == NO_PARENT {
        Value::NIL
    } else {
        Value::heap(parent)
    }
}

// Every object fits 32 bytes (an `Obj::Env3` with a 64-bit parent would not).
const _: () = assert!(std::mem::size_of::<Obj>() == 32);
const MIN_GC_INTERVAL: usize = 100_000;

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

impl Heap {
    pub fn new() -> Heap {
        Heap {
            objs: Vec::with_capacity(1024),
            env_pool: (0..=POOLED_ENV_MAX).map(|_| Vec::new()).collect(),
            free_head: NO_FREE,
            free_count: 0,
            allocated_since_gc: 0,
            next_gc: MIN_GC_INTERVAL,
            roots: RootTable::default(),
            stats: GcStats::default(),
            spare: None,
        }
    }

    /// Allocate an object. Never collects: collection happens only in [`Heap::collect`].
    pub fn alloc(&mut self, obj: Obj) -> Value {
        self.alloc_with(|| obj)
    }

    /// Allocate the object `make` builds, building it only once its slot is
    /// known, straight into the slot (a prebuilt object would sit in a
    /// temporary, copied with wide loads that stall on the narrow stores that
    /// built it).
    #[inline(always)]
    fn alloc_with(&mut self, make: impl FnOnce() -> Obj) -> Value {
        self.allocated_since_gc += 1;
        let i = self.free_head;
        if i != NO_FREE {
            if let Some(slot) = self.objs.get_mut(i as usize) {
                if let Obj::Free(next) = *slot {
                    self.free_head = next;
                    self.free_count -= 1;
                    // A free slot owns nothing: no drop glue on the hot path.
                    std::mem::forget(std::mem::replace(slot, make()));
                    return Value::heap(i);
                }
            }
        }
        self.alloc_at_end(make())
    }

    #[inline(never)]
    fn alloc_at_end(&mut self, obj: Obj) -> Value {
        let i = self.objs.len() as u32;
        self.objs.push(obj);
        Value::heap(i)
    }

    /// True when enough has been allocated that the owner should collect at
    /// its next safepoint.
    #[inline]
    pub fn wants_collection(&self) -> bool {
        self.allocated_since_gc >= self.next_gc
    }

    /// Number of live (non-free) slots.
    pub fn live_objects(&self) -> usize {
        self.objs.len() - self.free_count
    }

    #[inline]
    pub fn get(&self, v: Value) -> Option<&Obj> {
        let i = v.heap_index()?;
        match self.objs.get(i as usize) {
            Some(Obj::Free(_)) | None => None,
            Some(o) => Some(o),
        }
    }

    #[inline]
    pub fn get_mut(&mut self, v: Value) -> Option<&mut Obj> {
        let i = v.heap_index()?;
        match self.objs.get_mut(i as usize) {
            Some(Obj::Free(_)) | None => None,
            Some(o) => Some(o),
        }
    }

    /// A new environment frame of `size` slots whose first slots are `init`
    /// (the rest nil).
    #[inline(always)]
    pub fn alloc_env(&mut self, parent: Value, init: &[Value], size: usize) -> Value {
        if size <= 3 && init.len() <= 3 {
            let parent = match parent.heap_index() {
                Some(i) => i,
                None if parent == Value::NIL => NO_PARENT,
                None => return self.alloc_env_boxed(parent, init, size),
            };
            let slots = match *init {
                [] => [Value::NIL; 3],
                [a] => [a, Value::NIL, Value::NIL],
                [a, b] => [a, b, Value::NIL],
                [a, b, c, ..] => [a, b, c],
            };
            return self.alloc_with(|| Obj::Env3 { parent, slots });
        }
        self.alloc_env_boxed(parent, init, size)
    }

    /// [`Heap::alloc_env`] of a frame with more than three slots.
    fn alloc_env_boxed(&mut self, parent: Value, init: &[Value], size: usize) -> Value {
        let len = size.max(init.len());
        if let Some(mut b) = self.env_pool.get_mut(len).and_then(|p| p.pop()) {
            // At most POOLED_ENV_MAX slots: a loop beats a call to memmove.
            for (k, slot) in b.iter_mut().enumerate() {
                *slot = init.get(k).copied().unwrap_or(Value::NIL);
            }
            return self.alloc_with(|| Obj::Env(EnvObj { parent, slots: b }));
        }
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(init);
        v.resize(len, Value::NIL);
        self.alloc(Obj::Env(EnvObj { parent, slots: v.into_boxed_slice() }))
    }

    /// The parent of an environment frame.
    #[inline]
    pub fn env_parent(&self, env: Value) -> Option<Value> {
        match self.get(env)? {
            Obj::Env3 { parent, .. } => Some(parent_value(*parent)),
            Obj::Env(e) => Some(e.parent),
            _ => None,
        }
    }

    /// Slot `i` of an environment frame.
    #[inline(always)]
    pub fn env_get(&self, env: Value, i: usize) -> Option<Value> {
        match self.get(env)? {
            Obj::Env3 { slots, .. } => slots.get(i).copied(),
            Obj::Env(e) => e.slots.get(i).copied(),
            _ => None,
        }
    }

    #[inline]
    pub fn env_set(&mut self, env: Value, i: usize, x: Value) {
        match self.get_mut(env) {
            Some(Obj::Env3 { slots, .. }) => {
                if let Some(s) = slots.get_mut(i) {
                    *s = x;
                }
            }
            Some(Obj::Env(e)) => {
                if let Some(s) = e.slots.get_mut(i) {
                    *s = x;
                }
            }
            _ => {}
        }
    }

    /// Keep `values` alive until the returned handle is dropped.
    pub fn root(&mut self, values: Vec<Value>) -> RootHandle {
        let id = self.roots.next;
        self.roots.next += 1;
        self.roots.sets.insert(id, values);
        RootHandle { id, released: self.roots.released.clone() }
    }

    /// Mark from `roots` (plus rooted sets) and free everything unreachable.
    pub fn collect(&mut self, roots: &dyn Roots) {
        let released: Vec<u64> = std::mem::take(&mut *self.roots.released.borrow_mut());
        for id in released {
            self.roots.sets.remove(&id);
        }
        let mut tracer = match self.spare.take() {
            Some(mut t) => {
                t.stack.clear();
                t.traced_bufs.clear();
                t.marks.clear();
                t.marks.resize(self.objs.len().div_ceil(64), 0);
                t
            }
            None => Tracer { stack: Vec::new(), marks: vec![0; self.objs.len().div_ceil(64)], traced_bufs: hashbrown::HashMap::new() },
        };
        roots.trace_roots(&mut tracer);
        for set in self.roots.sets.values() {
            tracer.mark_all(set);
        }
        while let Some(i) = tracer.stack.pop() {
            // Roots may hold stale words (e.g. unused slots of compiled
            // frames): an index past the end is simply not an object.
            if let Some(o) = self.objs.get(i as usize) {
                trace_obj(o, &mut tracer);
            }
        }
        let freed = self.sweep(&tracer);
        self.spare = Some(tracer);
        let live = self.live_objects();
        self.stats.collections += 1;
        self.stats.freed_total += freed;
        self.stats.live_after_last = live;
        self.allocated_since_gc = 0;
        self.next_gc = live.max(MIN_GC_INTERVAL);
    }

    /// Free every unmarked object and rebuild the free list (lowest index
    /// first). Slots above the highest marked one are cut off, so the arena
    /// shrinks after a burst. Returns the number of objects freed.
    fn sweep(&mut self, tracer: &Tracer) -> u64 {
        let len = self.objs.len();
        let words = len.div_ceil(64).min(tracer.marks.len());
        let end = match (0..words).rev().find(|&w| tracer.marks[w] != 0) {
            Some(w) => (w * 64 + 64 - tracer.marks[w].leading_zeros() as usize).min(len),
            None => 0,
        };
        // Slots past the last live object are kept for reuse, as many as the
        // allocations until the next collection will likely want (they then
        // take slots off the free list, inline, instead of growing the
        // arena; environment frames' slot arrays go back to the pool).
        let limit = len.min(end + end.max(MIN_GC_INTERVAL));
        let mut freed = self.objs[limit..].iter().filter(|o| !matches!(o, Obj::Free(_))).count() as u64;
        self.objs.truncate(limit);
        let mut head = NO_FREE;
        let mut free = 0usize;
        for w in (0..limit.div_ceil(64)).rev() {
            let marks = tracer.marks.get(w).copied().unwrap_or(0);
            for i in (w * 64..(w * 64 + 64).min(limit)).rev() {
                let slot = &mut self.objs[i];
                if marks & (1 << (i & 63)) != 0 {
                    // A stale root may have marked a free slot: it stays free.
                    if let Obj::Free(next) = slot {
                        *next = head;
                        head = i as u32;
                        free += 1;
                    }
                    continue;
                }
                match slot {
                    Obj::Free(next) => *next = head,
                    // Plain data: nothing to release.
                    Obj::Env3 { .. } | Obj::Float(_) | Obj::Int(_) | Obj::Rational(..) => {
                        std::mem::forget(std::mem::replace(slot, Obj::Free(head)));
                        freed += 1;
                    }
                    _ => {
                        match std::mem::replace(slot, Obj::Free(head)) {
                            Obj::Env(e) if e.slots.len() <= POOLED_ENV_MAX => {
                                if let Some(pool) = self.env_pool.get_mut(e.slots.len()) {
                                    if pool.len() < POOL_CAP {
                                        pool.push(e.slots);
                                    }
                                }
                            }
                            other => drop(other),
                        }
                        freed += 1;
                    }
                }
                head = i as u32;
                free += 1;
            }
        }
        self.free_head = head;
        self.free_count = free;
        if self.objs.capacity() > 4 * limit.max(1024) {
            self.objs.shrink_to(2 * limit.max(1024));
        }
        freed
    }
}

fn trace_obj(obj: &Obj, t: &mut Tracer) {
    match obj {
        Obj::Free(_) | Obj::Float(_) | Obj::Int(_) | Obj::Rational(..) | Obj::Str(_) => {}
        Obj::List(l) => {
            let b = l.buf.borrow();
            let len = (l.len as usize).min(b.len());
            if Rc::strong_count(&l.buf) == 1 {
                t.mark_all(&b[..len]);
            } else {
                let key = Rc::as_ptr(&l.buf) as usize;
                let done = t.traced_bufs.get(&key).copied().unwrap_or(0);
                if len > done {
                    t.mark_all(&b[done..len]);
                    t.traced_bufs.insert(key, len);
                }
            }
        }
        Obj::Dict(d) => {
            for v in d.values() {
                t.mark(*v);
            }
        }
        Obj::Lambda(c) | Obj::Macro(c) => t.mark(c.env),
        Obj::Env(e) => {
            t.mark(e.parent);
            t.mark_all(&e.slots);
        }
        Obj::Env3 { parent, slots } => {
            t.mark(parent_value(*parent));
            t.mark_all(slots);
        }
        Obj::Extern(e) => e.trace(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoRoots(Vec<Value>);
    impl Roots for NoRoots {
        fn trace_roots(&self, t: &mut Tracer) {
            t.mark_all(&self.0);
        }
    }

    #[test]
    fn cycles_are_reclaimed() {
        let mut h = Heap::new();
        for _ in 0..1000 {
            // env -> closure -> env cycle
            let env = h.alloc(Obj::Env(EnvObj { parent: Value::NIL, slots: vec![Value::NIL].into() }));
            let code: Rc<dyn CodeObj> = Rc::new(());
            let clo = h.alloc(Obj::Lambda(Closure { code, env }));
            if let Some(Obj::Env(e)) = h.get_mut(env) {
                e.slots[0] = clo;
            }
        }
        let keep = h.alloc(Obj::Float(1.5));
        h.collect(&NoRoots(vec![keep]));
        assert_eq!(h.live_objects(), 1);
        assert!(matches!(h.get(keep), Some(Obj::Float(f)) if *f == 1.5));
    }

    #[test]
    fn rooted_sets_live_until_handle_dropped() {
        let mut h = Heap::new();
        let v = h.alloc(Obj::Float(2.0));
        let handle = h.root(vec![v]);
        h.collect(&NoRoots(vec![]));
        assert!(h.get(v).is_some());
        drop(handle);
        h.collect(&NoRoots(vec![]));
        assert!(h.get(v).is_none());
    }

    #[test]
    fn shared_list_buffers_trace_only_their_prefix() {
        let mut h = Heap::new();
        let a = h.alloc(Obj::Float(1.0));
        let b = h.alloc(Obj::Float(2.0));
        let l = ListObj::from_vec(vec![a, b]);
        let short = ListObj { buf: l.buf.clone(), len: 1 }; // (rest l) = (b)
        let lv = h.alloc(Obj::List(short));
        h.collect(&NoRoots(vec![lv]));
        assert!(h.get(b).is_some());
        assert!(h.get(a).is_none());
    }
}
