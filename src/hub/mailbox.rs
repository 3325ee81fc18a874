//! A hub's mailbox: the queue other threads post to, the rule that wakes
//! the hub, and closing it; and [`OnceSend`], a message that is posted
//! exactly once, by `send` or else by its drop (the remote waker's core).
//!
//! The protocol, which `loom-tests/` model-checks (this very file, built
//! against loom's primitives under `cfg(loom)`):
//!
//! - `post` pushes under the lock and wakes the owner only when the queue
//!   was empty: one wake per batch, and a message is never left in a
//!   queue nobody was woken for;
//! - the owner clears the wake's readiness **before** it calls `take`
//!   (the other order loses a wake: a post between `take` and the clear
//!   finds the queue empty and wakes, and that wake is cleared while its
//!   message stays queued);
//! - `close` refuses further posts under the same lock, so a post either
//!   lands before the close (and `close` hands the message back to drop)
//!   or fails with the message returned to the sender.
//!
//! The file uses nothing of the crate, so the model tests include it
//! as it is.

#[cfg(loom)]
use loom::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex, MutexGuard,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex, MutexGuard,
};

/// What a mailbox pokes when its first message arrives (the hub's
/// eventfd; a condition variable in the model tests).
pub(crate) trait Wake {
    /// Makes the owner look at the mailbox. Callable from any thread.
    fn wake(&self);
}

/// A multi-producer queue with one consumer, its owner.
pub(crate) struct Mailbox<M, W> {
    queue: Mutex<Vec<M>>,
    closed: AtomicBool,
    waker: W,
}

impl<M, W: Wake> Mailbox<M, W> {
    /// An open, empty mailbox that pokes `waker`.
    pub(crate) fn new(waker: W) -> Mailbox<M, W> {
        Mailbox {
            queue: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            waker,
        }
    }

    /// The waker, for the owner to register and clear.
    pub(crate) fn waker(&self) -> &W {
        &self.waker
    }

    fn lock(&self) -> MutexGuard<'_, Vec<M>> {
        #[cfg(not(loom))]
        return self.queue.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(loom)]
        return self.queue.lock().unwrap();
    }

    /// Queues `m`, waking the owner if it is the first message since the
    /// last [`take`](Self::take). `Err(m)` once the mailbox is closed.
    pub(crate) fn post(&self, m: M) -> Result<(), M> {
        let mut q = self.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(m);
        }
        let was_empty = q.is_empty();
        q.push(m);
        drop(q);
        if was_empty {
            self.waker.wake();
        }
        Ok(())
    }

    /// Every message posted so far, oldest first. The owner calls it
    /// after clearing the waker's readiness (see the module docs).
    pub(crate) fn take(&self) -> Vec<M> {
        std::mem::take(&mut *self.lock())
    }

    /// True while no message waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Refuses every later post and hands back what was queued, for the
    /// owner to drop.
    pub(crate) fn close(&self) -> Vec<M> {
        let mut q = self.lock();
        self.closed.store(true, Ordering::Release);
        std::mem::take(&mut *q)
    }

    /// [`close`](Self::close) in the child of a fork, without the lock: a
    /// thread of the parent may have held it, and that thread does not
    /// exist here. The queued messages are the parent's; they are leaked.
    pub(crate) fn close_after_fork(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// True once closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A message posted to a mailbox exactly once: by [`send`](Self::send),
/// or, if that never happens, when it is dropped (so a worker thread that
/// panics still releases the greenlet waiting for it).
pub(crate) struct OnceSend<M, W: Wake> {
    to: Option<(Arc<Mailbox<M, W>>, M)>,
}

impl<M, W: Wake> OnceSend<M, W> {
    /// `m`, to be posted to `mailbox`.
    pub(crate) fn new(mailbox: Arc<Mailbox<M, W>>, m: M) -> OnceSend<M, W> {
        OnceSend { to: Some((mailbox, m)) }
    }

    /// Posts the message now (dropped if the mailbox has closed).
    pub(crate) fn send(mut self) {
        self.fire();
    }

    fn fire(&mut self) {
        if let Some((mailbox, m)) = self.to.take() {
            let _ = mailbox.post(m);
        }
    }
}

impl<M, W: Wake> Drop for OnceSend<M, W> {
    fn drop(&mut self) {
        self.fire();
    }
}
