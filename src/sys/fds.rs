//! The runtime's own long-lived fds (epoll fd, eventfd, signal pipe):
//! kept high and registered, so a program under the preload never sees
//! them.
//!
//! Programs assume the fd numbers they did not open are free: bash, for
//! one, closes fd numbers it used earlier. An epoll fd created at the
//! lowest free number (3) would be closed under the hub's feet. So every
//! such fd is moved to a high number at creation, and the preload's close,
//! dup2 and dup3 hooks refuse to touch registered fds, exactly as the
//! kernel would treat a number that is not open in the unhooked program.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use super::raw_syscall;

/// Fds below this are tracked in the bitmap; the runtime's fds are moved
/// below it too.
const TRACKED: usize = 65536;
static OWNED: [AtomicU64; TRACKED / 64] = [const { AtomicU64::new(0) }; TRACKED / 64];

/// The lowest number runtime fds are moved to: 1024 (above `select`'s
/// FD_SETSIZE, where programs rarely pick numbers by hand), or lower when
/// the soft `RLIMIT_NOFILE` leaves no room there.
fn high_base() -> RawFd {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid struct.
    let cur = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(TRACKED as u64) as i64
    } else {
        1024
    };
    if cur >= 1024 + 64 {
        1024
    } else {
        (cur / 2).max(3) as RawFd
    }
}

/// Moves a freshly created runtime fd to a high number (close-on-exec) and
/// registers it; returns the new number. If no high number is free, the
/// fd stays where it is, registered.
pub(crate) fn own_high(fd: RawFd) -> io::Result<RawFd> {
    let moved = match raw_syscall!(SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, high_base()) {
        Ok(n) => {
            super::close_raw(fd);
            n as RawFd
        }
        Err(_) => fd,
    };
    set(moved, true);
    Ok(moved)
}

/// Forgets a runtime fd before it is closed.
pub(crate) fn disown(fd: RawFd) {
    set(fd, false);
}

/// True if `fd` is one of the runtime's own.
pub fn owns(fd: RawFd) -> bool {
    let i = fd as usize;
    i < TRACKED && OWNED[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) != 0
}

fn set(fd: RawFd, on: bool) {
    let i = fd as usize;
    if fd < 0 || i >= TRACKED {
        return;
    }
    let bit = 1u64 << (i % 64);
    if on {
        OWNED[i / 64].fetch_or(bit, Ordering::Relaxed);
    } else {
        OWNED[i / 64].fetch_and(!bit, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_fds_move_high_and_are_registered() {
        let fd = crate::sys::syscall!(eventfd(0, libc::EFD_CLOEXEC)).unwrap();
        let high = own_high(fd).unwrap();
        assert!(high >= 3 && high != fd || high == fd && fd >= high_base());
        assert!(owns(high));
        disown(high);
        assert!(!owns(high));
        crate::sys::close_raw(high);
    }
}
