//! The poll(2) backend: the portable fallback, chosen with
//! `GREENRT_BACKEND=poll`. Level-triggered: only fds with a waiter are
//! passed to poll, with exactly the directions wanted.

use super::fds::RuntimeFdRef;
use super::{timeout_ms, Event, Interest, Poller, WAKER_TOKEN};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The interest table that each `wait` turns into a pollfd array.
pub(crate) struct Poll {
    interest: Vec<(RawFd, Interest)>,
    pollfds: Vec<libc::pollfd>,
    /// The hub's waker, polled first in every wait by its current number.
    waker: Option<RuntimeFdRef>,
}

impl Poll {
    pub(crate) fn new() -> Self {
        Poll {
            interest: Vec::new(),
            pollfds: Vec::new(),
            waker: None,
        }
    }
}

impl Poller for Poll {
    fn set_interest(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        match self.interest.iter().position(|(f, _)| *f == fd) {
            Some(i) if interest.is_empty() => {
                self.interest.swap_remove(i);
            }
            Some(i) => self.interest[i].1 = interest,
            None if interest.is_empty() => {}
            None => self.interest.push((fd, interest)),
        }
        Ok(())
    }

    fn forget(&mut self, fd: RawFd) {
        let _ = self.set_interest(fd, Interest::NONE);
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        self.pollfds.clear();
        let watched = self.waker.is_some() as usize;
        if watched == 1 {
            // The number is filled in below, while the waker is held.
            self.pollfds.push(libc::pollfd {
                fd: -1,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        for &(fd, i) in &self.interest {
            let ev = i.poll_events();
            self.pollfds.push(libc::pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        }
        let pollfds = &mut self.pollfds;
        let ms = timeout_ms(timeout);
        match self.waker {
            Some(w) => w.with(|wfd| {
                pollfds[0].fd = wfd;
                super::ppoll_raw(pollfds, ms)
            })?,
            None => super::ppoll_raw(pollfds, ms)?,
        };
        if watched == 1 && self.pollfds[0].revents & libc::POLLNVAL != 0 {
            // The waker was closed behind the hooks' back.
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let err = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
        for (i, p) in self.pollfds.iter().enumerate() {
            if p.revents != 0 {
                events.push(Event {
                    fd: if i < watched { WAKER_TOKEN } else { p.fd },
                    readable: p.revents & (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP | err) != 0,
                    writable: p.revents & (libc::POLLOUT | err) != 0,
                });
            }
        }
        Ok(())
    }

    fn watch_waker(&mut self, waker: RuntimeFdRef) -> io::Result<()> {
        self.waker = Some(waker);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "poll"
    }
}
