//! A parked call keeps its open file when another thread closes or
//! replaces its fd number, as a blocked system call does.
//!
//! Natively, a thread blocked in `read` on a pipe holds its own reference
//! to the open file: another thread's `close` (or `dup2` over the number)
//! frees the number, not the file, and the reader gets the next byte
//! written. A cooperative call parked in its hub holds no reference, so
//! the close would free the file (the writer would get `EPIPE`) and the
//! reader would wait forever. So:
//!
//! - every park on a program fd is counted in that number's [`PARKS`]
//!   word (an epoch, bumped by each close, and the count of parks that
//!   began in it);
//! - the `close`, `dup2`/`dup3` and `close_range` hooks call [`give_away`]
//!   first: if calls are parked on the number, it makes one private
//!   duplicate of the open file (above the program's range, see
//!   `greenrt::abi::private_dup`) and publishes it for them in a
//!   [`Record`], with one reference per parked call;
//! - a parked call that wakes in a later epoch ([`Park::leave`]) takes its
//!   reference ([`Claim`]) and goes on with the private fd: it retries and
//!   parks on it, and the hub's registration of the file (which lives on
//!   with the duplicate) keeps waking it. The last claim closes the
//!   duplicate.
//!
//! A greenlet of the closing thread itself is woken with `EBADF` instead
//! (the README's "close wakes waiters", which the program asked for with
//! the runtime's API); it still releases its reference. Everything here is
//! lock-free and allocation-free: `close` runs in signal handlers.

use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::fdtable::{self, LIMIT};
use crate::runtime::rt;

/// Per fd number: epoch (high 32 bits) | parks begun in it (low 32).
static PARKS: [AtomicU64; LIMIT] = [const { AtomicU64::new(0) }; LIMIT];

/// Records in use: lets a waking call skip the search (one load).
static PENDING: AtomicUsize = AtomicUsize::new(0);

const FREE: u32 = 0;
/// Claimed by a closing thread that has not published the duplicate yet.
const FILLING: u32 = 1;
const READY: u32 = 2;

/// One handed-over open file: the number and epoch it was parked on, the
/// private duplicate, and the references the parked calls still hold.
struct Record {
    state: AtomicU32,
    fd: AtomicI32,
    epoch: AtomicU32,
    private: AtomicI32,
    refs: AtomicU32,
}

/// At most this many numbers closed under parked calls at once; beyond,
/// a closed number's parked calls fail as before (`EBADF` on retry).
const RECORDS: usize = 64;

static TABLE: [Record; RECORDS] = [const {
    Record {
        state: AtomicU32::new(FREE),
        fd: AtomicI32::new(-1),
        epoch: AtomicU32::new(0),
        private: AtomicI32::new(-1),
        refs: AtomicU32::new(0),
    }
}; RECORDS];

fn word(fd: c_int) -> Option<&'static AtomicU64> {
    usize::try_from(fd).ok().filter(|&i| i < LIMIT).map(|i| &PARKS[i])
}

/// One park on a program fd, counted in its number's epoch.
pub struct Park {
    fd: c_int,
    epoch: u32,
}

/// Counts a park on `fd` (call before parking; `None` for numbers out of
/// range, which are never handed over).
pub fn enter(fd: c_int) -> Option<Park> {
    let w = word(fd)?;
    let old = w.fetch_add(1, Ordering::SeqCst);
    Some(Park {
        fd,
        epoch: (old >> 32) as u32,
    })
}

impl Park {
    /// Ends the park: `None` if the number was not closed meanwhile, else
    /// the call's reference to the private duplicate (`None` too if there
    /// was no room to make one).
    pub fn leave(self) -> Option<Claim> {
        let w = word(self.fd)?;
        let mut cur = w.load(Ordering::SeqCst);
        while (cur >> 32) as u32 == self.epoch {
            match w.compare_exchange(cur, cur - 1, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return None,
                Err(now) => cur = now,
            }
        }
        // Closed meanwhile: the closer counted this park in a record.
        find(self.fd, self.epoch).map(|record| Claim { record })
    }
}

/// The record for parks on `fd` in `epoch`, waiting out a closer that is
/// still filling one in for `fd`.
fn find(fd: c_int, epoch: u32) -> Option<&'static Record> {
    if PENDING.load(Ordering::SeqCst) == 0 {
        return None;
    }
    loop {
        let mut filling = false;
        for r in &TABLE {
            if r.fd.load(Ordering::SeqCst) != fd {
                continue;
            }
            match r.state.load(Ordering::SeqCst) {
                READY if r.epoch.load(Ordering::SeqCst) == epoch => return Some(r),
                FILLING => filling = true,
                _ => {}
            }
        }
        if !filling {
            return None;
        }
        std::thread::yield_now();
    }
}

/// A parked call's reference to the private duplicate of its open file.
/// Dropping the last one closes the duplicate.
pub struct Claim {
    record: &'static Record,
}

impl Claim {
    /// The private duplicate: the call's fd from now on.
    pub fn fd(&self) -> c_int {
        self.record.private.load(Ordering::SeqCst)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let r = self.record;
        let fd = self.fd();
        // Out of this thread's poller before the number can be reused.
        // SAFETY: a runtime entry point; no pointers.
        unsafe { (rt().cancel_wait)(fd) };
        if r.refs.fetch_sub(1, Ordering::SeqCst) == 1 {
            fdtable::forget(fd);
            greenrt::abi::release_private_fd(fd);
            r.fd.store(-1, Ordering::SeqCst);
            r.state.store(FREE, Ordering::SeqCst);
            PENDING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Before `fd` is closed or replaced: ends its epoch and, if calls are
/// parked on it, hands them a private duplicate of its open file.
pub fn give_away(fd: c_int) {
    let Some(w) = word(fd) else { return };
    if w.load(Ordering::SeqCst) as u32 == 0 {
        return;
    }
    // Claim a record before ending the epoch, so that a parked call that
    // sees the new epoch also sees the record being filled in.
    let record = TABLE.iter().find(|r| {
        r.state
            .compare_exchange(FREE, FILLING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    });
    if let Some(r) = record {
        PENDING.fetch_add(1, Ordering::SeqCst);
        r.fd.store(fd, Ordering::SeqCst);
    }
    // The next epoch starts with no parks: those of this one are the
    // record's (or, without one, fail on their retry as before).
    let old = w
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| Some(((cur >> 32) + 1) << 32))
        .unwrap_or(0);
    let Some(r) = record else { return };
    let parked = old as u32;
    let private = if parked == 0 { -1 } else { greenrt::abi::private_dup(fd) };
    if private < 0 {
        r.fd.store(-1, Ordering::SeqCst);
        r.state.store(FREE, Ordering::SeqCst);
        PENDING.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    fdtable::duplicated(fd, private);
    r.private.store(private, Ordering::SeqCst);
    r.epoch.store((old >> 32) as u32, Ordering::SeqCst);
    r.refs.store(parked, Ordering::SeqCst);
    r.state.store(READY, Ordering::SeqCst);
}
