//! [`Event`]: a flag greenlets can wait for (gevent's `gevent.event.Event`).

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::hub::deliver;
use crate::hub::wait::{WaitQueue, WaitResult};
use crate::sync::waiters::deadline_after;
use crate::LoopExit;

/// A flag that greenlets wait for, like gevent's `Event`: [`set`](Self::set)
/// wakes every waiter at once (in the order they started waiting), and
/// waits on a set event return at once until it is [`clear`](Self::clear)ed.
///
/// A waiter that was woken by `set` returns successfully even if the event
/// was cleared again before it ran (gevent does the same, to avoid the
/// race of Python's bpo-13502).
///
/// ```
/// use std::rc::Rc;
/// use greenrt::sync::Event;
/// let ev = Rc::new(Event::new());
/// let e2 = ev.clone();
/// let g = greenrt::spawn(move || e2.wait().is_ok());
/// greenrt::sleep(std::time::Duration::from_millis(5));
/// ev.set();
/// assert!(g.get().unwrap());
/// ```
pub struct Event {
    flag: Cell<bool>,
    waiters: WaitQueue,
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Event {
    /// A new, unset event.
    pub fn new() -> Event {
        Event {
            flag: Cell::new(false),
            waiters: WaitQueue::labeled("Event.wait"),
        }
    }

    /// True once [`set`](Self::set) was called and not undone by
    /// [`clear`](Self::clear) (gevent's `is_set`).
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Sets the flag and wakes every waiting greenlet, longest waiter
    /// first (gevent's `set`). The caller keeps running; the waiters run
    /// when it next blocks or yields.
    pub fn set(&self) {
        self.flag.set(true);
        self.waiters.notify_all();
    }

    /// Resets the flag; later waits block until the next
    /// [`set`](Self::set) (gevent's `clear`).
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Waits until the event is set (gevent's `wait()`). Returns at once if
    /// it is set. Kill and Timeout interrupt it; `Err(LoopExit)` if nothing
    /// could ever set it (only the thread's main context can see that).
    pub fn wait(&self) -> Result<(), LoopExit> {
        self.wait_until(None).map(|_| ()).ok_or(LoopExit)
    }

    /// Waits at most `timeout` for the event; returns whether it is set
    /// (gevent's `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(deadline_after(timeout)).unwrap_or(false)
    }

    /// `Some(set?)`, or `None` for LoopExit.
    fn wait_until(&self, deadline: Option<Instant>) -> Option<bool> {
        while !self.flag.get() {
            match self.waiters.wait(deadline) {
                WaitResult::Notified => return Some(true),
                WaitResult::TimedOut if deadline.is_some() => return Some(self.flag.get()),
                WaitResult::TimedOut => {}
                WaitResult::LoopExit => return None,
                // Every waiter is woken by `set`: nothing to pass on.
                WaitResult::Interrupted { interrupt, .. } => deliver(interrupt),
            }
        }
        Some(true)
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.flag.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}
