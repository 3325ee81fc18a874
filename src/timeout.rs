//! Timeout: gevent's `Timeout`, delivered by unwinding the greenlet that
//! started it.
//!
//! A firing Timeout interrupts its greenlet at the next switch point. In
//! Rust code that unwinds the stack (destructors run) up to the
//! [`with_timeout`] or [`Timeout::run`] that owns it; an inner Timeout
//! never catches an outer one's expiry (gevent's `if t is not timeout:
//! raise`). Calls that take their own `timeout` argument (`join_timeout`,
//! `Event::wait_timeout`, ...) return an error instead of unwinding.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::TimeoutUnwind;

use crate::hub;
use crate::hub::task::{Interrupt, Task};
use crate::hub::timer::{TimerAction, TimerHandle};

/// The operation did not finish before its Timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timeout elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// A pending timeout for the current greenlet; cancelled when dropped.
///
/// ```
/// use std::time::Duration;
/// let t = greenrt::Timeout::start(Duration::from_millis(10));
/// let r = t.run(|| greenrt::sleep(Duration::from_secs(5)));
/// assert_eq!(r, Err(greenrt::Elapsed));
/// ```
pub struct Timeout {
    id: u64,
    task: Rc<Task>,
    timer: Option<TimerHandle>,
}

impl Timeout {
    /// Starts a timeout for the current greenlet (gevent's
    /// `Timeout.start_new`).
    pub fn start(d: Duration) -> Timeout {
        let id = hub::next_id();
        let task = hub::current_task();
        let timer = hub::with(|h| {
            h.add_timer(
                Instant::now() + d,
                TimerAction::Interrupt(task.clone(), Interrupt::Timeout(id)),
            )
        });
        Timeout {
            id,
            task,
            timer: Some(timer),
        }
    }

    /// Cancels the timeout (gevent's `cancel`); a no-op once it fired.
    pub fn cancel(&mut self) {
        if let Some(t) = self.timer.take() {
            hub::with(|h| h.cancel_timer(&t));
            // Fired but not yet delivered: withdraw it.
            if self.task.pending.get() == Some(Interrupt::Timeout(self.id)) {
                self.task.pending.set(None);
            }
        }
    }

    /// True while the timeout is armed and has not fired.
    pub fn pending(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| !t.fired())
    }

    /// Runs `f`, returning `Err(Elapsed)` if this timeout fires during it.
    /// Other timeouts' expiries and panics pass through untouched.
    pub fn run<R>(mut self, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        self.cancel();
        match r {
            Ok(v) => Ok(v),
            Err(p) if p.downcast_ref::<TimeoutUnwind>().is_some_and(|u| u.id == self.id) => Err(Elapsed),
            Err(p) => panic::resume_unwind(p),
        }
    }

    /// True if `payload` (from `catch_unwind`) is this timeout's expiry.
    pub fn is_mine(&self, payload: &(dyn std::any::Any + Send)) -> bool {
        payload.downcast_ref::<TimeoutUnwind>().is_some_and(|u| u.id == self.id)
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if self.timer.is_some() {
            let _ = hub::try_with_existing(|_| ()).map(|_| self.cancel());
        }
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timeout {{ id: {}, pending: {} }}", self.id, self.pending())
    }
}

/// Runs `f` with a timeout (gevent's `with_timeout`): `Err(Elapsed)` if
/// `d` passes first, in which case `f`'s stack was unwound.
pub fn with_timeout<R>(d: Duration, f: impl FnOnce() -> R) -> Result<R, Elapsed> {
    Timeout::start(d).run(f)
}
