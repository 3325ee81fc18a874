//! Hand-off waiting: a FIFO of parked greenlets, each of which is woken
//! *with* something (a permit, an item, "shut down").
//!
//! A [`WaitQueue`] wakes the longest waiter but cannot tell the waker which
//! greenlet it woke, so a releaser could only leave a permit lying around
//! for whoever runs first, and a newly arriving greenlet could take it
//! ahead of the woken one. Here every waiter parks on a one-place
//! `WaitQueue` of its own inside a [`Slot`]; the releaser walks the slots
//! front to back, wakes the first greenlet that can still be woken, and
//! puts the grant into that greenlet's slot before anyone else runs.
//! Nobody can barge, and a waiter that is interrupted after it was granted
//! finds the grant in its slot and passes it on.
//!
//! A waiter may also leave a payload in its slot (a blocked `put`'s item)
//! for the releaser to take when it grants.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::task::Interrupt;
use crate::hub::wait::{WaitQueue, WaitResult};

/// The deadline `d` from now; `None` (no deadline) if it is too far away to
/// represent.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// One parked greenlet, its payload and its grant.
pub(crate) struct Slot<P, G> {
    wq: WaitQueue,
    payload: Cell<Option<P>>,
    grant: Cell<Option<G>>,
}

impl<P, G> Slot<P, G> {
    /// Takes the payload the waiter left (a blocked `put`'s item).
    pub(crate) fn take_payload(&self) -> Option<P> {
        self.payload.take()
    }

    /// Gives the woken waiter what it waited for.
    pub(crate) fn grant(&self, g: G) {
        self.grant.set(Some(g));
    }
}

/// How a [`Waiters::wait`] ended.
pub(crate) enum Woken<G> {
    /// A releaser woke this waiter and granted it `G`.
    Granted(G),
    /// The deadline passed first.
    TimedOut,
    /// Nothing could ever wake it (the root greenlet only).
    LoopExit,
    /// A kill or Timeout arrived; if a grant had already been made, it is
    /// here and the caller must pass it on before delivering the interrupt.
    Interrupted(Interrupt, Option<G>),
}

/// FIFO of greenlets waiting to be granted a `G`, each leaving an optional
/// payload `P`.
pub(crate) struct Waiters<P, G> {
    q: RefCell<VecDeque<Rc<Slot<P, G>>>>,
    label: &'static str,
}

impl<P, G> Waiters<P, G> {
    /// An empty line whose waiters show as waiting on `label` in run info.
    pub(crate) fn labeled(label: &'static str) -> Self {
        Waiters {
            q: RefCell::new(VecDeque::new()),
            label,
        }
    }

    /// Parks the current greenlet at the back of the line, leaving
    /// `payload`, until it is granted, `deadline` passes, or an interrupt
    /// arrives. Returns the outcome and the payload if nobody took it.
    pub(crate) fn wait(&self, payload: Option<P>, deadline: Option<Instant>) -> (Woken<G>, Option<P>) {
        let slot = Rc::new(Slot {
            wq: WaitQueue::labeled(self.label),
            payload: Cell::new(payload),
            grant: Cell::new(None),
        });
        self.q.borrow_mut().push_back(slot.clone());
        let r = slot.wq.wait(deadline);
        let grant = slot.grant.take();
        if grant.is_none() {
            // Not granted: leave the line (a releaser may already have
            // dropped the slot when it found the greenlet not wakeable).
            self.q.borrow_mut().retain(|s| !Rc::ptr_eq(s, &slot));
        }
        let woken = match (r, grant) {
            (WaitResult::Interrupted { interrupt, .. }, g) => Woken::Interrupted(interrupt, g),
            (_, Some(g)) => Woken::Granted(g),
            (WaitResult::LoopExit, None) => Woken::LoopExit,
            // Notified without a grant cannot happen (a grant is made as
            // soon as the wake succeeds, before the waiter runs); treat it,
            // like a deadline, as "nothing granted".
            (_, None) => Woken::TimedOut,
        };
        (woken, slot.payload.take())
    }

    /// Wakes the longest waiter that can still be woken and returns its
    /// slot; the caller must [`grant`](Slot::grant) it before anything else
    /// runs. `None` if nobody waits.
    pub(crate) fn wake_first(&self) -> Option<Rc<Slot<P, G>>> {
        loop {
            let slot = self.q.borrow_mut().pop_front()?;
            if slot.wq.notify_one() {
                return Some(slot);
            }
        }
    }

    /// Grants `g` to the longest waiter; gives it back if nobody waits.
    pub(crate) fn grant_first(&self, g: G) -> Result<(), G> {
        match self.wake_first() {
            Some(slot) => {
                slot.grant(g);
                Ok(())
            }
            None => Err(g),
        }
    }

    /// Number of greenlets waiting (not yet granted, timed out or
    /// interrupted).
    pub(crate) fn len(&self) -> usize {
        self.q.borrow().iter().filter(|s| !s.wq.is_empty()).count()
    }
}
