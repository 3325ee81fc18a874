//! The epoll backend (the default on Linux).
//!
//! Each fd is registered once, edge-triggered, for both directions; later
//! changes of interest cost no syscall. Readiness that arrives while nobody
//! waits is dropped, which is safe because waiters always try the operation
//! before they park and any new data after an `EAGAIN` produces a new edge.

use super::{raw_syscall, syscall, timeout_ms, Event, Interest, Poller};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// An epoll instance plus the set of fds registered in it.
pub(crate) struct Epoll {
    epfd: RawFd,
    registered: Vec<bool>,
    buf: Vec<libc::epoll_event>,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        let epfd = super::fds::own_high(syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?)?;
        Ok(Epoll {
            epfd,
            registered: Vec::new(),
            buf: Vec::with_capacity(256),
        })
    }

    fn is_registered(&self, fd: RawFd) -> bool {
        self.registered.get(fd as usize).copied().unwrap_or(false)
    }

    fn mark(&mut self, fd: RawFd, on: bool) {
        let i = fd as usize;
        if i >= self.registered.len() {
            self.registered.resize(i + 1, false);
        }
        self.registered[i] = on;
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
        match syscall!(epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev)) {
            Ok(_) => {}
            // Registered through a dup'ed fd number that was reused: refresh.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                syscall!(epoll_ctl(self.epfd, libc::EPOLL_CTL_MOD, fd, &mut ev))?;
            }
            Err(e) => return Err(e),
        }
        self.mark(fd, true);
        Ok(())
    }

    fn revalidate(&mut self, fd: RawFd) {
        // The next set_interest does ADD (or MOD on EEXIST): one syscall.
        self.mark(fd, false);
    }

    fn forget(&mut self, fd: RawFd) {
        if self.is_registered(fd) {
            // An fd that is already closed is already gone from the set.
            let _ = syscall!(epoll_ctl(self.epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()));
            self.mark(fd, false);
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        self.buf.clear();
        let cap = self.buf.capacity() as libc::c_int;
        let n = match raw_syscall!(
            SYS_epoll_pwait,
            self.epfd,
            self.buf.as_mut_ptr(),
            cap,
            timeout_ms(timeout),
            std::ptr::null::<libc::sigset_t>(),
            0usize
        ) {
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

    fn name(&self) -> &'static str {
        "epoll"
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        super::fds::disown(self.epfd);
        super::close_raw(self.epfd);
    }
}
