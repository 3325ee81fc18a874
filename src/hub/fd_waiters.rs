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
    pub(crate) fn forget_fd(&self, fd: RawFd) {
        let w = self.fds.borrow_mut().remove(&fd);
        self.poller.borrow_mut().forget(fd);
        if let Some(w) = w {
            for h in w.readers.into_iter().chain(w.writers) {
                h.wake(WakeReason::Closed);
            }
        }
    }
}
