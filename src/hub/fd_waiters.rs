//! The per-fd waiter table: which parked tasks wait for which fd, one
//! poller registration per fd with the merged interest (DESIGN rule 13).

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use super::scheduler::*;
use super::task::{Interrupt, WaitingOn, WakeHandle, WakeReason};
use crate::sys::{Event, Interest};

#[derive(Default)]
pub(super) struct FdWaiters {
    pub(super) readers: Vec<WakeHandle>,
    pub(super) writers: Vec<WakeHandle>,
}

impl FdWaiters {
    pub(super) fn interest(&self) -> Interest {
        Interest {
            readable: !self.readers.is_empty(),
            writable: !self.writers.is_empty(),
        }
    }
}

/// How a wait on an fd ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FdWait {
    /// The fd is (probably) ready: retry the operation.
    Ready,
    /// The deadline passed.
    TimedOut,
    /// Another greenlet closed the fd (or cancelled the wait).
    Closed,
    /// A kill or Timeout arrived.
    Interrupted(Interrupt),
    /// A signal handler interrupted the hub's wait (only for a task that
    /// is `signal_interruptible`).
    Signal,
}

impl Hub {
    pub(super) fn dispatch_fd(&self, ev: Event) {
        let mut woken = Vec::new();
        {
            let mut fds = self.fds.borrow_mut();
            let Some(w) = fds.get_mut(&ev.fd) else { return };
            if ev.readable {
                woken.append(&mut w.readers);
            }
            if ev.writable {
                woken.append(&mut w.writers);
            }
            let interest = w.interest();
            if interest.is_empty() {
                fds.remove(&ev.fd);
            }
            let _ = self.poller.borrow_mut().set_interest(ev.fd, interest);
        }
        for h in woken {
            h.wake(WakeReason::Io);
        }
    }

    /// Parks the current greenlet until `fd` is ready for `interest`.
    pub(crate) fn wait_fd(&self, fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<FdWait> {
        self.run_deferred_forgets();
        let h = {
            let task = self.current_task();
            let seq = task.seq.get();
            WakeHandle { task, seq }
        };
        {
            let mut fds = self.fds.borrow_mut();
            let w = fds.entry(fd).or_default();
            w.readers.retain(|x| !x.is_stale());
            w.writers.retain(|x| !x.is_stale());
            if interest.readable {
                w.readers.push(h.clone());
            }
            if interest.writable {
                w.writers.push(h.clone());
            }
            let want = w.interest();
            if let Err(e) = self.poller.borrow_mut().set_interest(fd, want) {
                w.readers.retain(|x| !Rc::ptr_eq(&x.task, &h.task));
                w.writers.retain(|x| !Rc::ptr_eq(&x.task, &h.task));
                if w.interest().is_empty() {
                    fds.remove(&fd);
                }
                return Err(e);
            }
        }
        self.io_waiters.set(self.io_waiters.get() + 1);
        let p = self.park(deadline, WaitingOn::Fd(fd, interest));
        self.io_waiters.set(self.io_waiters.get() - 1);
        if !matches!(p.reason, WakeReason::Io | WakeReason::Closed) {
            let mut fds = self.fds.borrow_mut();
            if let Some(w) = fds.get_mut(&fd) {
                w.readers.retain(|x| !(Rc::ptr_eq(&x.task, &h.task) && x.seq == h.seq));
                w.writers.retain(|x| !(Rc::ptr_eq(&x.task, &h.task) && x.seq == h.seq));
                let want = w.interest();
                if want.is_empty() {
                    fds.remove(&fd);
                }
                let _ = self.poller.borrow_mut().set_interest(fd, want);
            }
        }
        Ok(match (p.interrupt, p.reason) {
            (Some(i), _) => FdWait::Interrupted(i),
            (None, WakeReason::Io) => FdWait::Ready,
            (None, WakeReason::Closed) => FdWait::Closed,
            (None, WakeReason::Signal) => FdWait::Signal,
            _ => FdWait::TimedOut,
        })
    }

    /// Makes the next wait on `fd` re-register it with the poller (see
    /// `Poller::revalidate`).
    pub(crate) fn revalidate_fd(&self, fd: RawFd) {
        self.poller.borrow_mut().revalidate(fd);
    }

    /// Wakes every greenlet waiting on `fd` with "closed" and drops the fd
    /// from the poller; call before closing it.
    ///
    /// Reached from a signal handler that interrupted the hub while its
    /// tables were in use (a program closing files in its handler while it
    /// waits, as rsync does: the poller is in use for the whole wait),
    /// nothing is borrowed and nothing allocated: the fd is noted in a
    /// fixed list and forgotten at the hub's next safe point
    /// ([`run_deferred_forgets`](Self::run_deferred_forgets)).
    pub(crate) fn forget_fd(&self, fd: RawFd) {
        let free = self.fds.try_borrow_mut().is_ok()
            && self.poller.try_borrow_mut().is_ok()
            && self.ready.try_borrow_mut().is_ok();
        if !free {
            self.deferred_forgets.push(fd);
            return;
        }
        let w = self.fds.borrow_mut().remove(&fd);
        self.poller.borrow_mut().forget(fd);
        if let Some(w) = w {
            for h in w.readers.into_iter().chain(w.writers) {
                h.wake(WakeReason::Closed);
            }
        }
    }

    /// Forgets the fds whose [`forget_fd`](Self::forget_fd) had to wait;
    /// called where none of the hub's tables is borrowed, and early: before
    /// the scheduler resumes any greenlet and before any new fd wait, so
    /// that a number closed in a handler and reused afterwards is never
    /// mistaken for the old fd.
    pub(super) fn run_deferred_forgets(&self) {
        if self.deferred_forgets.len.get() == 0 {
            return;
        }
        while let Some(fd) = self.deferred_forgets.pop() {
            let w = self.fds.borrow_mut().remove(&fd);
            self.poller.borrow_mut().forget(fd);
            if let Some(w) = w {
                for h in w.readers.into_iter().chain(w.writers) {
                    h.wake(WakeReason::Closed);
                }
            }
        }
    }
}

/// The fds [`Hub::forget_fd`] noted instead of forgetting them at once: a
/// fixed array, so noting one never allocates (it may run in a signal
/// handler). Beyond its size an fd is not noted: its registration is
/// repaired when the number is next waited on (`revalidate_fd`), and its
/// waiters, if any, go on waiting, as a thread blocked on a closed fd
/// does.
pub(super) struct DeferredForgets {
    fds: [std::cell::Cell<RawFd>; DEFERRED_FORGETS],
    len: std::cell::Cell<usize>,
}

const DEFERRED_FORGETS: usize = 64;

impl DeferredForgets {
    pub(super) fn new() -> DeferredForgets {
        DeferredForgets {
            fds: [const { std::cell::Cell::new(-1) }; DEFERRED_FORGETS],
            len: std::cell::Cell::new(0),
        }
    }

    fn push(&self, fd: RawFd) {
        let n = self.len.get();
        if n < DEFERRED_FORGETS {
            self.fds[n].set(fd);
            self.len.set(n + 1);
        }
    }

    fn pop(&self) -> Option<RawFd> {
        let n = self.len.get();
        if n == 0 {
            return None;
        }
        self.len.set(n - 1);
        Some(self.fds[n - 1].get())
    }
}
