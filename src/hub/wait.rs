//! The one way greenlets wait for each other: a FIFO queue of parked
//! greenlets. Every primitive in `sync` and `Greenlet::join` is built on it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use crate::hub;
use crate::hub::task::{Interrupt, WaitingOn, WakeHandle, WakeReason};

struct Waiter {
    handle: WakeHandle,
    notified: Cell<bool>,
}

/// How a wait on a [`WaitQueue`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitResult {
    /// `notify_one`/`notify_all` chose this waiter.
    Notified,
    /// The deadline passed first.
    TimedOut,
    /// Nothing could ever notify it (root greenlet only).
    LoopExit,
    /// A kill or Timeout arrived; `notified` says whether a notification was
    /// also consumed (the caller must pass it on or give back what it got).
    Interrupted { interrupt: Interrupt, notified: bool },
}

/// FIFO queue of parked greenlets.
pub(crate) struct WaitQueue {
    q: RefCell<VecDeque<Rc<Waiter>>>,
    label: &'static str,
}

impl Default for WaitQueue {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        WaitQueue::labeled("wait queue")
    }

    /// A queue whose waiters show as waiting on `label` in run info.
    pub(crate) const fn labeled(label: &'static str) -> Self {
        WaitQueue {
            q: RefCell::new(VecDeque::new()),
            label,
        }
    }

    /// Parks the current greenlet at the back of the queue until notified,
    /// `deadline` passes, or an interrupt arrives.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> WaitResult {
        self.wait_at(deadline, false)
    }

    /// Like `wait`, but at the front of the queue (for a waiter that was
    /// notified and lost its turn, so it keeps its place).
    pub(crate) fn wait_front(&self, deadline: Option<Instant>) -> WaitResult {
        self.wait_at(deadline, true)
    }

    fn wait_at(&self, deadline: Option<Instant>, front: bool) -> WaitResult {
        let w = Rc::new(Waiter {
            handle: hub::wake_handle(),
            notified: Cell::new(false),
        });
        {
            let mut q = self.q.borrow_mut();
            if front {
                q.push_front(w.clone());
            } else {
                q.push_back(w.clone());
            }
        }
        let p = hub::park_on(deadline, WaitingOn::Queue(self.label));
        let notified = w.notified.get();
        if !notified {
            self.q.borrow_mut().retain(|x| !Rc::ptr_eq(x, &w));
        }
        match (p.interrupt, p.reason) {
            (Some(interrupt), _) => WaitResult::Interrupted { interrupt, notified },
            (None, _) if notified => WaitResult::Notified,
            (None, WakeReason::LoopExit) => WaitResult::LoopExit,
            (None, _) => WaitResult::TimedOut,
        }
    }

    /// Wakes the longest-waiting greenlet; returns false if none waits.
    pub(crate) fn notify_one(&self) -> bool {
        loop {
            let Some(w) = self.q.borrow_mut().pop_front() else {
                return false;
            };
            if w.handle.wake(WakeReason::Notified) {
                w.notified.set(true);
                return true;
            }
        }
    }

    /// Wakes every waiting greenlet, in FIFO order; returns how many.
    pub(crate) fn notify_all(&self) -> usize {
        let mut n = 0;
        while self.notify_one() {
            n += 1;
        }
        n
    }

    /// True when no greenlet waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.q.borrow().iter().all(|w| w.handle.is_stale())
    }

    /// Number of greenlets waiting.
    pub(crate) fn len(&self) -> usize {
        self.q.borrow().iter().filter(|w| !w.handle.is_stale()).count()
    }
}
