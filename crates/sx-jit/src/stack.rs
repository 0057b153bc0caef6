//! Native stack segments for deep recursion of compiled code.
//!
//! Compiled code recurses on the native stack. When the thread's stack runs
//! low, the tier continues on a segment of its own ([`on_segment`]); a
//! segment is kept after use, so a program that recurses deeply again (a
//! test suite's runaway recursions, a server's deep requests) does not pay
//! the kernel again for fresh pages. What is kept is bounded by the segments
//! the deepest recursion used (at most `MAX` of them), as the interpreter
//! keeps the capacity of its own frame stack.

use std::cell::{Cell, RefCell};

/// Usable bytes of a segment.
pub(crate) const SEGMENT: usize = 16 << 20;
/// An inaccessible region below each segment: an overflow faults instead of
/// writing into other memory.
const GUARD: usize = 64 << 10;
/// Segments kept for reuse per thread (1 GiB of address space at most).
const MAX: usize = 64;

struct Segment {
    mem: region::Allocation,
}

impl Segment {
    fn new() -> Option<Segment> {
        let mut mem = region::alloc(GUARD + SEGMENT, region::Protection::READ_WRITE).ok()?;
        let low = mem.as_mut_ptr::<u8>();
        // SAFETY: the first GUARD bytes are inside the allocation just made,
        // which nothing else uses yet.
        unsafe { region::protect(low, GUARD, region::Protection::NONE) }.ok()?;
        Some(Segment { mem })
    }

    /// The lowest usable address.
    fn base(&mut self) -> *mut u8 {
        // SAFETY: GUARD is within the allocation (GUARD + SEGMENT bytes).
        unsafe { self.mem.as_mut_ptr::<u8>().add(GUARD) }
    }
}

thread_local! {
    static POOL: RefCell<Vec<Segment>> = const { RefCell::new(Vec::new()) };
    /// The lowest usable address of the segment this thread runs on, or 0
    /// on the thread's own stack.
    static LIMIT: Cell<usize> = const { Cell::new(0) };
    static IN_USE: Cell<usize> = const { Cell::new(0) };
    /// The lowest usable address of the thread's own stack, once known (its
    /// bounds do not change; asking the system each time is slow).
    static THREAD_LOW: Cell<usize> = const { Cell::new(0) };
}

/// Segments this thread runs on now.
pub(crate) fn in_use() -> usize {
    IN_USE.with(Cell::get)
}

/// Native stack left below the current stack pointer, when known.
pub(crate) fn remaining() -> Option<usize> {
    let mut limit = LIMIT.with(Cell::get);
    if limit == 0 {
        limit = THREAD_LOW.with(Cell::get);
        if limit == 0 {
            let here = 0u8;
            let left = stacker::remaining_stack()?;
            limit = (std::ptr::addr_of!(here) as usize).saturating_sub(left).max(1);
            THREAD_LOW.with(|l| l.set(limit));
        }
    }
    let here = 0u8;
    Some((std::ptr::addr_of!(here) as usize).saturating_sub(limit))
}

/// Run `f` on a native stack segment; `None` when none could be had (all
/// `MAX` in use or no memory).
pub(crate) fn on_segment<R>(f: impl FnOnce() -> R) -> Option<R> {
    if in_use() >= MAX {
        return None;
    }
    let mut seg = match POOL.with(|p| p.borrow_mut().pop()) {
        Some(s) => s,
        None => Segment::new()?,
    };
    let base = seg.base();
    let prev = LIMIT.with(|l| l.replace(base as usize));
    IN_USE.with(|n| n.set(n.get() + 1));
    let mut out = None;
    let mut panic = None;
    // SAFETY: `base .. base + SEGMENT` is mapped read-write, owned by `seg`
    // (alive until after the call) and used by nothing else meanwhile; a
    // panic is caught on the segment and resumed after switching back.
    unsafe {
        psm::on_stack(base, SEGMENT, || match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => out = Some(r),
            Err(p) => panic = Some(p),
        });
    }
    IN_USE.with(|n| n.set(n.get() - 1));
    LIMIT.with(|l| l.set(prev));
    POOL.with(|p| p.borrow_mut().push(seg));
    if let Some(p) = panic {
        std::panic::resume_unwind(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(n: u64) -> u64 {
        // Enough frame to use real stack; black_box keeps the recursion.
        let pad = std::hint::black_box([n; 16]);
        if n == 0 {
            0
        } else {
            1 + depth(std::hint::black_box(n - 1)) + pad[0] - pad[15]
        }
    }

    #[test]
    fn code_runs_on_a_segment_with_its_own_limit_and_the_segment_is_reused() {
        let r = on_segment(|| {
            let left = remaining().expect("known on a segment");
            assert!(left > SEGMENT - (64 << 10) && left <= SEGMENT, "{left}");
            depth(10_000)
        });
        assert_eq!(r, Some(10_000));
        assert_eq!(POOL.with(|p| p.borrow().len()), 1);
        assert_eq!(on_segment(|| 7), Some(7));
        assert_eq!(POOL.with(|p| p.borrow().len()), 1, "reused, not a second one");
        assert_eq!(LIMIT.with(Cell::get), 0, "back on the thread's stack");
    }

    #[test]
    fn a_panic_on_a_segment_reaches_the_caller() {
        let r = std::panic::catch_unwind(|| on_segment(|| panic!("on the segment")));
        assert!(r.is_err());
        assert_eq!(LIMIT.with(Cell::get), 0);
        assert_eq!(IN_USE.with(Cell::get), 0);
    }
}
