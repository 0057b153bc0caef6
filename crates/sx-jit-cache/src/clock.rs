//! Monotonic tick sources for the cache.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// A monotonic source of ticks.
///
/// The cache reads the clock only at rare events (an insert, a `clear_cold`), never on the
/// call path, so a clock may be as slow as a system call. Ticks must never go backwards.
pub trait Clock {
    /// The current tick.
    fn now(&self) -> u64;
}

/// Real time: nanoseconds since the clock was created (monotonic, from [`Instant`]).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose tick 0 is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to: for tests and deterministic embedders.
///
/// Share it with the cache through `&ManualClock` or `Rc<ManualClock>` (both are clocks) and
/// keep a handle to advance it.
#[derive(Debug, Default)]
pub struct ManualClock {
    tick: Cell<u64>,
}

impl ManualClock {
    /// A clock standing at `tick`.
    pub fn new(tick: u64) -> Self {
        ManualClock {
            tick: Cell::new(tick),
        }
    }

    /// Move forward by `ticks` (saturating).
    pub fn advance(&self, ticks: u64) {
        self.tick.set(self.tick.get().saturating_add(ticks));
    }

    /// Jump to `tick`; a tick earlier than the current one is ignored (the clock is monotonic).
    pub fn set(&self, tick: u64) {
        if tick > self.tick.get() {
            self.tick.set(tick);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.tick.get()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Rc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}
