//! [`Semaphore`] and [`BoundedSemaphore`] (gevent's `gevent.lock.Semaphore`
//! and `BoundedSemaphore`), with an RAII [`SemaphoreGuard`].

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::deliver;
use crate::sync::waiters::{deadline_after, Waiters, Woken};
use crate::LoopExit;

/// A counter of permits, like gevent's `Semaphore`: [`acquire`](Self::acquire)
/// takes a permit, blocking while there is none; [`release`](Self::release)
/// returns one.
///
/// Strictly FIFO: a permit released while greenlets wait is handed to the
/// longest waiter (it never goes back to the counter, so a greenlet that
/// arrives later cannot take it first). If that waiter is killed or timed
/// out after it was handed the permit, the permit goes on to the next
/// waiter.
///
/// `release` never fails: releasing more often than acquiring raises the
/// counter above its initial value, as in gevent. Use [`BoundedSemaphore`]
/// to catch that.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Semaphore;
/// let sem = Rc::new(Semaphore::new(2));
/// let gs: Vec<_> = (0..6).map(|_| {
///     let sem = sem.clone();
///     greenrt::spawn(move || {
///         let _permit = sem.acquire_guard().unwrap();
///         greenrt::sleep(std::time::Duration::from_millis(10));
///     })
/// }).collect();
/// greenrt::joinall(&gs, None).unwrap();
/// assert_eq!(sem.available(), 2);
/// ```
pub struct Semaphore {
    counter: Cell<usize>,
    waiters: Waiters<(), ()>,
}

impl Semaphore {
    /// A semaphore with `permits` permits available.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            counter: Cell::new(permits),
            waiters: Waiters::labeled("Semaphore.acquire"),
        }
    }

    /// Permits available now (gevent's `counter`).
    pub fn available(&self) -> usize {
        self.counter.get()
    }

    /// True when no permit is available, so `acquire` would block (gevent's
    /// `locked`).
    pub fn locked(&self) -> bool {
        self.counter.get() == 0
    }

    /// Greenlets blocked in `acquire`.
    pub fn waiters(&self) -> usize {
        self.waiters.len()
    }

    /// Takes a permit if one is available, without blocking (gevent's
    /// `acquire(blocking=False)`).
    pub fn try_acquire(&self) -> bool {
        let n = self.counter.get();
        if n > 0 {
            self.counter.set(n - 1);
            true
        } else {
            false
        }
    }

    /// Takes a permit, waiting for one (gevent's `acquire()`). Kill and
    /// Timeout interrupt the wait; `Err(LoopExit)` if nothing could ever
    /// release one.
    pub fn acquire(&self) -> Result<(), LoopExit> {
        self.acquire_until(None).map(|_| ()).ok_or(LoopExit)
    }

    /// Takes a permit, waiting at most `timeout`; returns whether it got
    /// one (gevent's `acquire(timeout=...)`).
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(deadline_after(timeout)).unwrap_or(false)
    }

    /// `Some(acquired?)`, or `None` for LoopExit.
    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> Option<bool> {
        if self.try_acquire() {
            return Some(true);
        }
        loop {
            match self.waiters.wait(None, deadline).0 {
                Woken::Granted(()) => return Some(true),
                Woken::TimedOut if deadline.is_some() => return Some(false),
                Woken::TimedOut => {}
                Woken::LoopExit => return None,
                Woken::Interrupted(i, granted) => {
                    if granted.is_some() {
                        self.release();
                    }
                    deliver(i)
                }
            }
            if self.try_acquire() {
                return Some(true);
            }
        }
    }

    /// Returns a permit: to the longest waiter if any, else to the counter
    /// (gevent's `release`).
    pub fn release(&self) {
        if self.waiters.grant_first(()).is_err() {
            self.counter.set(self.counter.get() + 1);
        }
    }

    /// Like [`acquire`](Self::acquire), returning a guard that releases the
    /// permit when dropped (gevent's `with semaphore:`).
    pub fn acquire_guard(&self) -> Result<SemaphoreGuard<'_>, LoopExit> {
        self.acquire()?;
        Ok(SemaphoreGuard { sem: self })
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout), returning a guard;
    /// `None` if no permit came in time.
    pub fn acquire_guard_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.acquire_timeout(timeout).then(|| SemaphoreGuard { sem: self })
    }

    /// Like [`try_acquire`](Self::try_acquire), returning a guard.
    pub fn try_acquire_guard(&self) -> Option<SemaphoreGuard<'_>> {
        self.try_acquire().then(|| SemaphoreGuard { sem: self })
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.counter.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// A permit of a [`Semaphore`] (or [`BoundedSemaphore`]), released when
/// dropped, also when the greenlet unwinds from a kill or Timeout.
#[must_use = "the permit is released as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

// ===== BoundedSemaphore =====

/// [`BoundedSemaphore::release`] was called with every permit already
/// released (gevent's `ValueError: Semaphore released too many times`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverRelease;

impl fmt::Display for OverRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released too many times")
    }
}

impl std::error::Error for OverRelease {}

/// A [`Semaphore`] that refuses to be released above its initial value,
/// like gevent's `BoundedSemaphore`: [`release`](Self::release) then
/// returns `Err(OverRelease)` and changes nothing. Everything else is
/// the same, including strict FIFO hand-off.
pub struct BoundedSemaphore {
    sem: Semaphore,
    initial: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` permits, which is also its bound.
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore::new(permits),
            initial: permits,
        }
    }

    /// The bound (the initial number of permits).
    pub fn bound(&self) -> usize {
        self.initial
    }

    /// See [`Semaphore::available`].
    pub fn available(&self) -> usize {
        self.sem.available()
    }

    /// See [`Semaphore::locked`].
    pub fn locked(&self) -> bool {
        self.sem.locked()
    }

    /// See [`Semaphore::waiters`].
    pub fn waiters(&self) -> usize {
        self.sem.waiters()
    }

    /// See [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> bool {
        self.sem.try_acquire()
    }

    /// See [`Semaphore::acquire`].
    pub fn acquire(&self) -> Result<(), LoopExit> {
        self.sem.acquire()
    }

    /// See [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.sem.acquire_timeout(timeout)
    }

    pub(crate) fn acquire_until(&self, deadline: Option<Instant>) -> Option<bool> {
        self.sem.acquire_until(deadline)
    }

    /// Returns a permit (to the longest waiter if any); `Err(OverRelease)`
    /// if none is held (gevent raises `ValueError`).
    pub fn release(&self) -> Result<(), OverRelease> {
        if self.sem.available() >= self.initial {
            return Err(OverRelease);
        }
        self.sem.release();
        Ok(())
    }

    /// See [`Semaphore::acquire_guard`].
    pub fn acquire_guard(&self) -> Result<SemaphoreGuard<'_>, LoopExit> {
        self.sem.acquire_guard()
    }

    /// See [`Semaphore::acquire_guard_timeout`].
    pub fn acquire_guard_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.sem.acquire_guard_timeout(timeout)
    }

    /// See [`Semaphore::try_acquire_guard`].
    pub fn try_acquire_guard(&self) -> Option<SemaphoreGuard<'_>> {
        self.sem.try_acquire_guard()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.sem.available())
            .field("bound", &self.initial)
            .field("waiters", &self.sem.waiters())
            .finish()
    }
}
