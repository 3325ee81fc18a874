//! The epoll backend (the default on Linux).
//!
//! Each fd is registered once, edge-triggered, for both directions; later
//! changes of interest cost no syscall. Readiness that arrives while nobody
//! waits is dropped, which is safe because waiters always try the operation
//! before they park and any new data after an `EAGAIN` produces a new edge.

use super::fd_epochs;
use super::fds::{RuntimeFd, RuntimeFdRef};
use super::{raw_syscall, syscall, timeout_ms, Event, Interest, Poller, WAKER_TOKEN};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// An epoll instance plus the set of fds registered in it.
pub(crate) struct Epoll {
    epfd: RuntimeFd,
    /// Per fd number: 0, or 1 + the close epoch its registration was made
    /// in (see `fd_epochs`): valid only while that epoch lasts.
    registered: Vec<u64>,
    buf: Vec<libc::epoll_event>,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        let epfd = RuntimeFd::create(|| syscall!(epoll_create1(libc::EPOLL_CLOEXEC)))?;
        Ok(Epoll {
            epfd,
            registered: Vec::new(),
            buf: Vec::with_capacity(256),
        })
    }

    fn is_registered(&self, fd: RawFd) -> bool {
        let Some(epoch) = fd_epochs::current(fd) else {
            return false;
        };
        self.registered.get(fd as usize).copied() == Some(epoch as u64 + 1)
    }

    fn mark(&mut self, fd: RawFd, on: bool) {
        let i = fd as usize;
        if i >= self.registered.len() {
            self.registered.resize(i + 1, 0);
        }
        self.registered[i] = match fd_epochs::current(fd) {
            Some(epoch) if on => epoch as u64 + 1,
            _ => 0,
        };
    }
}

impl Poller for Epoll {
    fn set_interest(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        if interest.is_empty() || self.is_registered(fd) {
            return Ok(());
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd as u64,
        };
        self.epfd.with(
            |epfd| match syscall!(epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev)) {
                Ok(_) => Ok(()),
                // Registered through a dup'ed fd number that was reused: refresh.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    syscall!(epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, &mut ev)).map(drop)
                }
                Err(e) => Err(e),
            },
        )?;
        self.mark(fd, true);
        Ok(())
    }

    fn revalidate(&mut self, fd: RawFd) {
        // The next set_interest does ADD (or MOD on EEXIST): one syscall.
        self.mark(fd, false);
    }

    fn forget(&mut self, fd: RawFd) {
        // Registered in any epoch: the number is about to be closed (its
        // epoch may have ended already), and still names the file it had.
        if self.registered.get(fd as usize).is_some_and(|&r| r != 0) {
            // An fd that is already closed is already gone from the set.
            let _ = self
                .epfd
                .with(|epfd| syscall!(epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut())));
            self.mark(fd, false);
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        self.buf.clear();
        let cap = self.buf.capacity() as libc::c_int;
        let buf = self.buf.as_mut_ptr();
        let n = match self.epfd.with(|epfd| {
            raw_syscall!(
                SYS_epoll_pwait,
                epfd,
                buf,
                cap,
                timeout_ms(timeout),
                std::ptr::null::<libc::sigset_t>(),
                0usize
            )
        }) {
            Ok(n) => n as usize,
            Err(e) => return Err(e),
        };
        // SAFETY: epoll_wait initialised the first `n` entries.
        unsafe { self.buf.set_len(n) };
        let err = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        for ev in &self.buf {
            let bits = ev.events;
            events.push(Event {
                fd: ev.u64 as RawFd,
                readable: bits & ((libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32 | err) != 0,
                writable: bits & (libc::EPOLLOUT as u32 | err) != 0,
            });
        }
        Ok(())
    }

    fn watch_waker(&mut self, waker: RuntimeFdRef) -> io::Result<()> {
        // Keyed by a token, not the number: the registration belongs to
        // the open file and outlives a relocation of either fd.
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: WAKER_TOKEN as u64,
        };
        self.epfd
            .with(|epfd| waker.with(|w| syscall!(epoll_ctl(epfd, libc::EPOLL_CTL_ADD, w, &mut ev))))?;
        self.epfd.nudge_through(waker);
        Ok(())
    }

    fn abandon(&mut self) {
        self.epfd.abandon();
    }

    fn name(&self) -> &'static str {
        "epoll"
    }
}
