//! [`AsyncResult`]: an [`Event`](super::Event) that carries a value or an
//! error (gevent's `gevent.event.AsyncResult`).

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::deliver;
use crate::hub::wait::{WaitQueue, WaitResult};
use crate::sync::waiters::deadline_after;
use crate::LoopExit;

/// Why [`AsyncResult::get`] returned no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AsyncError<E> {
    /// The result was set with [`AsyncResult::set_error`] (gevent re-raises
    /// the stored exception).
    Failed(E),
    /// The call's `timeout` passed before a result was set (gevent's
    /// `Timeout`).
    TimedOut,
    /// Nothing could ever set the result (gevent's `LoopExit`).
    LoopExit,
}

impl<E: fmt::Display> fmt::Display for AsyncError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncError::Failed(e) => write!(f, "the async result failed: {e}"),
            AsyncError::TimedOut => f.write_str("timed out waiting for the async result"),
            AsyncError::LoopExit => fmt::Display::fmt(&LoopExit, f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for AsyncError<E> {}

/// A one-to-many result slot, like gevent's `AsyncResult`: one greenlet
/// stores a value ([`set`](Self::set)) or an error
/// ([`set_error`](Self::set_error)) and every greenlet blocked in
/// [`get`](Self::get) or [`wait`](Self::wait) wakes, in the order they
/// started waiting.
///
/// Because any number of greenlets may `get` the same result (as in
/// gevent), `get` hands out clones: it requires `T: Clone` and
/// `E: Clone`. Wrap a value that is expensive or impossible to clone in an
/// `Rc`. As in gevent, setting again replaces the stored result.
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::{AsyncError, AsyncResult};
/// let r: Rc<AsyncResult<u32, String>> = Rc::new(AsyncResult::new());
/// let r2 = r.clone();
/// greenrt::spawn(move || r2.set(7));
/// assert_eq!(r.get(), Ok(7));
/// r.set_error("boom".to_string());
/// assert_eq!(r.get(), Err(AsyncError::Failed("boom".to_string())));
/// ```
pub struct AsyncResult<T, E> {
    result: RefCell<Option<Result<T, E>>>,
    waiters: WaitQueue,
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult {
            result: RefCell::new(None),
            waiters: WaitQueue::labeled("AsyncResult"),
        }
    }
}

impl<T, E> AsyncResult<T, E> {
    /// A new, empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` and wakes every waiter (gevent's `set`).
    pub fn set(&self, value: T) {
        self.store(Ok(value));
    }

    /// Stores `error` and wakes every waiter; their `get` returns
    /// [`AsyncError::Failed`] (gevent's `set_exception`).
    pub fn set_error(&self, error: E) {
        self.store(Err(error));
    }

    fn store(&self, r: Result<T, E>) {
        *self.result.borrow_mut() = Some(r);
        self.waiters.notify_all();
    }

    /// True once a value or an error is stored (gevent's `ready`).
    pub fn ready(&self) -> bool {
        self.result.borrow().is_some()
    }

    /// True if a value (not an error) is stored (gevent's `successful`).
    pub fn successful(&self) -> bool {
        matches!(*self.result.borrow(), Some(Ok(_)))
    }

    /// Waits until a result is stored, without taking it (gevent's
    /// `wait()`). Kill and Timeout interrupt it; `Err(LoopExit)` if nothing
    /// could ever set it.
    pub fn wait(&self) -> Result<(), LoopExit> {
        self.wait_until(None).map(|_| ()).ok_or(LoopExit)
    }

    /// Waits at most `timeout`; returns whether a result is stored
    /// (gevent's `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline_after(timeout)).unwrap_or(false)
    }

    /// `Some(ready?)`, or `None` for LoopExit.
    fn wait_until(&self, deadline: Option<Instant>) -> Option<bool> {
        while !self.ready() {
            match self.waiters.wait(deadline) {
                WaitResult::Notified => {}
                WaitResult::TimedOut if deadline.is_some() => return Some(self.ready()),
                WaitResult::TimedOut => {}
                WaitResult::LoopExit => return None,
                // Every waiter is woken by a set: nothing to pass on.
                WaitResult::Interrupted { interrupt, .. } => deliver(interrupt),
            }
        }
        Some(true)
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Waits for the result and returns a clone of it (gevent's `get()`):
    /// the value, or [`AsyncError::Failed`] with the stored error. Kill and
    /// Timeout interrupt it; [`AsyncError::LoopExit`] if nothing could ever
    /// set it.
    pub fn get(&self) -> Result<T, AsyncError<E>> {
        match self.wait_until(None) {
            Some(_) => self.stored(),
            None => Err(AsyncError::LoopExit),
        }
    }

    /// Like [`get`](Self::get), waiting at most `timeout`
    /// ([`AsyncError::TimedOut`] then; gevent's `get(timeout=...)`).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, AsyncError<E>> {
        match self.wait_until(deadline_after(timeout)) {
            Some(true) => self.stored(),
            Some(false) => Err(AsyncError::TimedOut),
            None => Err(AsyncError::LoopExit),
        }
    }

    fn stored(&self) -> Result<T, AsyncError<E>> {
        match &*self.result.borrow() {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(AsyncError::Failed(e.clone())),
            None => Err(AsyncError::TimedOut),
        }
    }
}

impl<T: Clone, E> AsyncResult<T, E> {
    /// A clone of the stored value, without waiting (gevent's `value`).
    pub fn value(&self) -> Option<T> {
        match &*self.result.borrow() {
            Some(Ok(v)) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T, E: Clone> AsyncResult<T, E> {
    /// A clone of the stored error, without waiting (gevent's `exception`).
    pub fn error(&self) -> Option<E> {
        match &*self.result.borrow() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.result.borrow() {
            None => "pending",
            Some(Ok(_)) => "value",
            Some(Err(_)) => "error",
        };
        f.debug_struct("AsyncResult")
            .field("state", &state)
            .field("waiters", &self.waiters.len())
            .finish()
    }
}
