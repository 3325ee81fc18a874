//! Reaps dropped children in the background: one thread for the whole
//! process, started when there is something to reap and gone when there
//! is not.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::hub;
use crate::os;
use crate::sys::fds::PrivateFd;
use crate::sys::waker::Waker;

/// Poll at least this often for children without a pidfd.
const NO_PIDFD_POLL_MS: libc::c_int = 50;

struct Reaper {
    /// The fork generation this reaper belongs to: a child of a fork
    /// starts its own (the parent's thread does not exist there, and
    /// the parent's children are not the child's to reap).
    generation: u64,
    /// Wakes the thread when a child is added.
    wake: Waker,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    children: Vec<(libc::pid_t, Option<PrivateFd>)>,
    running: bool,
}

static REAPER: AtomicPtr<Reaper> = AtomicPtr::new(std::ptr::null_mut());

fn lock(r: &Reaper) -> MutexGuard<'_, State> {
    r.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn get() -> io::Result<&'static Reaper> {
    let generation = hub::fork_generation();
    let p = REAPER.load(Ordering::Acquire);
    // SAFETY: a non-null REAPER points at a leaked, never freed Reaper.
    if let Some(r) = unsafe { p.as_ref() } {
        if r.generation == generation {
            return Ok(r);
        }
    }
    let new = Box::into_raw(Box::new(Reaper {
        generation,
        wake: Waker::new()?,
        state: Mutex::new(State::default()),
    }));
    match REAPER.compare_exchange(p, new, Ordering::AcqRel, Ordering::Acquire) {
        // The previous one (from before a fork) is leaked: its lock may
        // be held by a thread that does not exist here.
        // SAFETY: `new` is now published and never freed.
        Ok(_) => Ok(unsafe { &*new }),
        Err(winner) => {
            // SAFETY: `new` was never published; `winner` is a leaked
            // Reaper published by another thread.
            unsafe {
                drop(Box::from_raw(new));
                Ok(&*winner)
            }
        }
    }
}

/// Takes over reaping `pid`, which is our child and still running.
pub(super) fn adopt(pid: libc::pid_t) {
    let r = match get() {
        Ok(r) => r,
        Err(e) => {
            crate::config::log(
                crate::config::LogLevel::Error,
                format_args!("cannot reap dropped child {pid} (it stays a zombie once it exits): {e}"),
            );
            return;
        }
    };
    // Never in a hub's poller: the reaper thread polls it itself.
    let pidfd = os::pidfd_open(pid).ok().flatten();
    let mut st = lock(r);
    st.children.push((pid, pidfd));
    if st.running {
        drop(st);
        r.wake.wake();
        return;
    }
    let started = hub::spawn_internal_thread("greenrt-reaper", move || run(r));
    match started {
        Ok(_) => st.running = true,
        Err(e) => crate::config::log(
            crate::config::LogLevel::Error,
            format_args!("cannot start the child reaper thread (dropped children stay zombies): {e}"),
        ),
    }
}

fn run(r: &'static Reaper) {
    let mut pollfds: Vec<libc::pollfd> = Vec::new();
    loop {
        let mut timeout = -1;
        {
            let mut st = lock(r);
            // Reap whatever has exited; forget what is not ours (ECHILD).
            st.children
                .retain(|(pid, _)| matches!(os::try_waitpid(*pid, 0), Ok(None)));
            if st.children.is_empty() {
                st.running = false;
                return;
            }
            pollfds.clear();
            // The waker's number is filled in while it is held, below.
            pollfds.push(libc::pollfd {
                fd: -1,
                events: libc::POLLIN,
                revents: 0,
            });
            for (_, fd) in &st.children {
                match fd {
                    Some(fd) => pollfds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }),
                    None => timeout = NO_PIDFD_POLL_MS,
                }
            }
        }
        // The runtime's own poll, never a hooked one. The pidfds stay open
        // while we poll: only this thread removes children (and so closes
        // their fds).
        let _ = r.wake.fd().with(|wake| {
            pollfds[0].fd = wake;
            crate::sys::ppoll_raw(&mut pollfds, timeout)
        });
        r.wake.drain();
    }
}
