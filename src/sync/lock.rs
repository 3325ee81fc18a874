//! [`Lock`] and the re-entrant [`RLock`] (gevent's `gevent.lock`
//! `Semaphore(1)`-style lock and `RLock`).

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub;
use crate::sync::semaphore::{BoundedSemaphore, OverRelease, SemaphoreGuard};
use crate::sync::waiters::deadline_after;
use crate::LoopExit;

// ===== Lock =====

/// A mutual-exclusion lock for greenlets: a [`BoundedSemaphore`] of one
/// permit, like the lock gevent's monkey patching gives `threading.Lock`.
/// It has no owner: any greenlet may release it, as with
/// `threading.Lock`. Waiters get the lock in FIFO order.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Lock;
/// let lock = Rc::new(Lock::new());
/// let l2 = lock.clone();
/// let g = greenrt::spawn(move || {
///     let _held = l2.acquire_guard().unwrap();
///     greenrt::sleep(std::time::Duration::from_millis(5));
/// });
/// greenrt::yield_now();
/// assert!(lock.locked());
/// g.join().unwrap();
/// assert!(!lock.locked());
/// ```
pub struct Lock {
    sem: BoundedSemaphore,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl Lock {
    /// A new, unlocked lock.
    pub fn new() -> Lock {
        Lock {
            sem: BoundedSemaphore::new(1),
        }
    }

    /// True while some greenlet holds the lock (gevent's `locked`).
    pub fn locked(&self) -> bool {
        self.sem.locked()
    }

    /// Takes the lock if it is free, without blocking.
    pub fn try_acquire(&self) -> bool {
        self.sem.try_acquire()
    }

    /// Takes the lock, waiting for it. Kill and Timeout interrupt the wait;
    /// `Err(LoopExit)` if nothing could ever release it.
    pub fn acquire(&self) -> Result<(), LoopExit> {
        self.sem.acquire()
    }

    /// Takes the lock, waiting at most `timeout`; returns whether it got it.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.sem.acquire_timeout(timeout)
    }

    /// Releases the lock (to the longest waiter if any);
    /// `Err(OverRelease)` if it is not locked.
    pub fn release(&self) -> Result<(), OverRelease> {
        self.sem.release()
    }

    /// Like [`acquire`](Self::acquire), returning a guard that releases
    /// the lock when dropped (gevent's `with lock:`).
    pub fn acquire_guard(&self) -> Result<LockGuard<'_>, LoopExit> {
        Ok(LockGuard {
            _permit: self.sem.acquire_guard()?,
        })
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout), returning a guard.
    pub fn acquire_guard_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        Some(LockGuard {
            _permit: self.sem.acquire_guard_timeout(timeout)?,
        })
    }

    /// Like [`try_acquire`](Self::try_acquire), returning a guard.
    pub fn try_acquire_guard(&self) -> Option<LockGuard<'_>> {
        Some(LockGuard {
            _permit: self.sem.try_acquire_guard()?,
        })
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiters", &self.sem.waiters())
            .finish()
    }
}

/// A held [`Lock`], released when dropped (also when the greenlet unwinds
/// from a kill or Timeout).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    _permit: SemaphoreGuard<'a>,
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

// ===== RLock =====

/// [`RLock::release`] was called by a greenlet that does not hold the lock
/// (gevent's `RuntimeError: cannot release un-acquired lock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotOwner;

impl fmt::Display for NotOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot release un-acquired lock")
    }
}

impl std::error::Error for NotOwner {}

/// A re-entrant lock, like gevent's `RLock`: the greenlet that holds it may
/// acquire it again without blocking, and must release it as many times.
/// Ownership is per greenlet (by [`GreenletRef::id`](crate::GreenletRef::id);
/// the thread's main context counts as one greenlet). Waiters get the lock
/// in FIFO order.
pub struct RLock {
    sem: BoundedSemaphore,
    owner: Cell<Option<u64>>,
    count: Cell<usize>,
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

fn me() -> u64 {
    hub::with(|h| h.current_id())
}

impl RLock {
    /// A new, unlocked re-entrant lock.
    pub fn new() -> RLock {
        RLock {
            sem: BoundedSemaphore::new(1),
            owner: Cell::new(None),
            count: Cell::new(0),
        }
    }

    /// True while some greenlet holds the lock.
    pub fn locked(&self) -> bool {
        self.owner.get().is_some()
    }

    /// True if the calling greenlet holds the lock (Python's `_is_owned`).
    pub fn is_owned(&self) -> bool {
        self.owner.get() == Some(me())
    }

    /// How many times the holder has acquired it (0 when unlocked).
    pub fn count(&self) -> usize {
        self.count.get()
    }

    /// Takes the lock, or one more level of it if the caller holds it,
    /// without blocking.
    pub fn try_acquire(&self) -> bool {
        let me = me();
        if self.reenter(me) {
            return true;
        }
        if self.sem.try_acquire() {
            self.take(me);
            true
        } else {
            false
        }
    }

    /// Takes the lock (one more level if the caller holds it), waiting
    /// while another greenlet holds it. Kill and Timeout interrupt the
    /// wait; `Err(LoopExit)` if nothing could ever release it.
    pub fn acquire(&self) -> Result<(), LoopExit> {
        self.acquire_until(None).map(|_| ()).ok_or(LoopExit)
    }

    /// Like [`acquire`](Self::acquire), waiting at most `timeout`; returns
    /// whether it got the lock.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(deadline_after(timeout)).unwrap_or(false)
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<bool> {
        let me = me();
        if self.reenter(me) {
            return Some(true);
        }
        let got = self.sem.acquire_until(deadline)?;
        if got {
            self.take(me);
        }
        Some(got)
    }

    fn reenter(&self, me: u64) -> bool {
        if self.owner.get() == Some(me) {
            self.count.set(self.count.get() + 1);
            true
        } else {
            false
        }
    }

    fn take(&self, me: u64) {
        self.owner.set(Some(me));
        self.count.set(1);
    }

    /// Releases one level; the lock is free (and goes to the longest
    /// waiter) when the holder has released as often as it acquired.
    /// `Err(NotOwner)` if the caller does not hold it.
    pub fn release(&self) -> Result<(), NotOwner> {
        self.release_for(me())
    }

    fn release_for(&self, who: u64) -> Result<(), NotOwner> {
        if self.owner.get() != Some(who) {
            return Err(NotOwner);
        }
        let n = self.count.get() - 1;
        self.count.set(n);
        if n == 0 {
            self.owner.set(None);
            // Cannot fail: the owner holds the one permit.
            let _ = self.sem.release();
        }
        Ok(())
    }

    /// Like [`acquire`](Self::acquire), returning a guard that releases
    /// one level when dropped.
    pub fn acquire_guard(&self) -> Result<RLockGuard<'_>, LoopExit> {
        self.acquire()?;
        Ok(self.guard())
    }

    /// Like [`acquire_timeout`](Self::acquire_timeout), returning a guard.
    pub fn acquire_guard_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_timeout(timeout).then(|| self.guard())
    }

    /// Like [`try_acquire`](Self::try_acquire), returning a guard.
    pub fn try_acquire_guard(&self) -> Option<RLockGuard<'_>> {
        self.try_acquire().then(|| self.guard())
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard {
            lock: self,
            owner: me(),
        }
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.owner.get())
            .field("count", &self.count.get())
            .field("waiters", &self.sem.waiters())
            .finish()
    }
}

/// One level of a held [`RLock`], released when dropped (also when the
/// greenlet unwinds from a kill or Timeout).
#[must_use = "the lock level is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    owner: u64,
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // Releases on behalf of the greenlet that acquired it, wherever the
        // guard is dropped; that greenlet holds the level, so this is Ok.
        let _ = self.lock.release_for(self.owner);
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}
