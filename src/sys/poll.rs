//! The poll(2) backend: the portable fallback, chosen with
//! `GREENRT_BACKEND=poll`. Level-triggered: only fds with a waiter are
//! passed to poll, with exactly the directions wanted.

use super::{timeout_ms, Event, Interest, Poller};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The interest table that each `wait` turns into a pollfd array.
pub(crate) struct Poll {
    interest: Vec<(RawFd, Interest)>,
    pollfds: Vec<libc::pollfd>,
}

impl Poll {
    pub(crate) fn new() -> Self {
        Poll {
            interest: Vec::new(),
            pollfds: Vec::new(),
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
        for &(fd, i) in &self.interest {
            let ev = i.poll_events();
            self.pollfds.push(libc::pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        }
        match super::ppoll_raw(&mut self.pollfds, timeout_ms(timeout)) {
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        let err = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
        for p in &self.pollfds {
            if p.revents != 0 {
                events.push(Event {
                    fd: p.fd,
                    readable: p.revents & (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP | err) != 0,
                    writable: p.revents & (libc::POLLOUT | err) != 0,
                });
            }
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "poll"
    }
}
