//! The runtime's own fds (epoll fd, eventfd, signal pipe, the preload's
//! per-call pidfds and epoll fds): kept high and registered, so a program
//! under the preload never sees them, and moved out of its way when it
//! asks for their numbers.
//!
//! Programs assume the fd numbers they did not open are free: bash, for
//! one, closes fd numbers it used earlier, and a program may `dup2` onto
//! any number below its limit. So every runtime fd is moved to a high
//! number at creation (see [`high_base`]), the preload's `close`,
//! `close_range` and `closefrom` hooks leave registered fds alone (the
//! kernel's answer for a number the unhooked program never opened), and
//! when the program wants one of those numbers (`dup2`, `dup3`,
//! `F_DUPFD`), [`relocate`] moves a hub's fd elsewhere and gives the
//! number up.
//!
//! # Moving an fd that other threads use
//!
//! A movable fd ([`RuntimeFd`]) lives in a [`Slot`]: its current number,
//! and a count of the callers between loading that number and the return
//! of their system call ([`RuntimeFd::with`]), kept per generation.
//! [`relocate`] duplicates the fd to a new number, publishes it, flips the
//! generation, then waits until the old generation's callers are gone
//! before the program may take the old number: such a caller is either
//! not yet in the kernel (and still finds the runtime's file at the old
//! number, since nothing replaced it yet) or in it; later callers see the
//! new number. A hub blocked in its poller would stay in the old
//! generation for as long as it sleeps, so relocation first *nudges* it
//! through its waker (the slot's `nudge`), which makes the wait return. Slots are never freed (a slot
//! outlives every thread that might read it), only reused.
use std::io;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) use super::fd_gate::runtime_change;
use super::raw_syscall;

/// Fds below this are tracked in the bitmap; the runtime's fds are moved
/// below it too.
const TRACKED: usize = 65536;
static OWNED: [AtomicU64; TRACKED / 64] = [const { AtomicU64::new(0) }; TRACKED / 64];

/// The lowest number runtime fds are moved to: 1024 (above `select`'s
/// FD_SETSIZE, where programs rarely pick numbers by hand), or, when the
/// soft `RLIMIT_NOFILE` leaves no room there, the top 64 numbers below
/// the limit (the last ones an `open` would hand out).
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
        (cur - 64).max(cur / 2).max(3) as RawFd
    }
}

/// [`high_base`], computed once (and again when the limit has been
/// lowered under it).
static BASE: AtomicI32 = AtomicI32::new(0);

/// A close-on-exec duplicate of `fd` at the lowest free number from
/// [`high_base`] up.
fn dup_high(fd: RawFd) -> io::Result<RawFd> {
    let mut base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        base = high_base();
        BASE.store(base, Ordering::Relaxed);
    }
    match raw_syscall!(SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, base) {
        // EINVAL: the base is at or above a limit lowered since.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let base = high_base();
            BASE.store(base, Ordering::Relaxed);
            raw_syscall!(SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, base).map(|n| n as RawFd)
        }
        // Every number from the base up to the limit is taken.
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => dup_above_limit(fd),
        r => r.map(|n| n as RawFd),
    }
}

/// A close-on-exec duplicate of `fd` just above the soft `RLIMIT_NOFILE`,
/// out of the program's reach: for a program that uses every number up
/// to its limit. The soft limit is raised (within the hard one) for the
/// one `fcntl`, then put back.
fn dup_above_limit(fd: RawFd) -> io::Result<RawFd> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads the limit into a valid struct.
    raw_syscall!(
        SYS_prlimit64,
        0,
        libc::RLIMIT_NOFILE,
        ptr::null::<libc::rlimit64>(),
        &mut old
    )?;
    if old.rlim_cur >= old.rlim_max || old.rlim_cur >= TRACKED as u64 {
        return Err(io::Error::from_raw_os_error(libc::EMFILE));
    }
    let raised = libc::rlimit64 {
        rlim_cur: (old.rlim_cur + 64).min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    raw_syscall!(
        SYS_prlimit64,
        0,
        libc::RLIMIT_NOFILE,
        &raised,
        ptr::null_mut::<libc::rlimit64>()
    )?;
    let r = raw_syscall!(SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, old.rlim_cur as libc::c_long);
    let _ = raw_syscall!(
        SYS_prlimit64,
        0,
        libc::RLIMIT_NOFILE,
        &old,
        ptr::null_mut::<libc::rlimit64>()
    );
    r.map(|n| n as RawFd)
}

/// Moves a freshly created runtime fd to a high number (close-on-exec) and
/// registers it; returns the new number. If no high number is free, the
/// fd stays where it is, registered.
/// Call it inside [`runtime_change`], together with the creation.
pub(crate) fn own_high(fd: RawFd) -> io::Result<RawFd> {
    runtime_change(|| {
        let moved = match dup_high(fd) {
            Ok(n) => {
                super::close_raw(fd);
                n
            }
            Err(_) => fd,
        };
        set(moved, true);
        Ok(moved)
    })
}

/// A close-on-exec duplicate of the program's `fd` at a high number,
/// registered as the runtime's, apart from the program's `dup2`/`dup3`.
pub(crate) fn dup_owned(fd: RawFd) -> io::Result<RawFd> {
    runtime_change(|| {
        let n = dup_high(fd)?;
        set(n, true);
        Ok(n)
    })
}

/// Creates a runtime fd with `create` and moves it high (see
/// [`own_high`]), apart from the program's `dup2`/`dup3` ([`runtime_change`]).
pub(crate) fn create_high(create: impl FnOnce() -> io::Result<RawFd>) -> io::Result<RawFd> {
    runtime_change(|| own_high(create()?))
}

/// Forgets a number that is no longer a runtime fd.
pub(crate) fn disown(fd: RawFd) {
    set(fd, false);
}

/// Closes a runtime fd, then forgets its number, apart from the program's
/// `dup2`/`dup3` ([`runtime_change`]): until both are done the number is the
/// runtime's, so a program call onto it waits instead of finding it half
/// closed (replacing the fd just before the runtime's close, which would
/// then close the program's file, or refused as a runtime fd that is in
/// fact gone).
pub(crate) fn close_owned(fd: RawFd) {
    runtime_change(|| {
        super::close_raw(fd);
        disown(fd);
    })
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

/// The lowest runtime fd at or above `from` (registered in this copy of
/// the runtime), for the preload's `close_range`, which closes around them.
pub fn next_owned(from: RawFd) -> Option<RawFd> {
    let mut i = from.max(0) as usize;
    while i < TRACKED {
        let word = OWNED[i / 64].load(Ordering::Relaxed) & (!0u64 << (i % 64));
        if word != 0 {
            return Some((i / 64 * 64 + word.trailing_zeros() as usize) as RawFd);
        }
        i = (i / 64 + 1) * 64;
    }
    None
}

/// A runtime fd for one job (a pidfd): moved high at creation so that the
/// program never sees its number, registered (a `dup2` onto it answers
/// `EBUSY`: it does not move), closed past every hook on drop.
pub(crate) struct PrivateFd(RawFd);

impl PrivateFd {
    /// Creates the fd with `create` and moves it high ([`create_high`]).
    pub(crate) fn create(create: impl FnOnce() -> io::Result<RawFd>) -> io::Result<PrivateFd> {
        create_high(create).map(PrivateFd)
    }
}

impl std::os::fd::AsRawFd for PrivateFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Drop for PrivateFd {
    fn drop(&mut self) {
        close_owned(self.0);
    }
}

// ===== movable runtime fds =====

/// Where one movable runtime fd lives (see the module docs).
struct Slot {
    /// Held by one `RuntimeFd` (else free for the next one).
    claimed: AtomicBool,
    /// Serialises a relocation with the owner's close.
    moving: AtomicBool,
    /// The current number; -1 once closed.
    fd: AtomicI32,
    /// Callers between loading `fd` and the return of their system call,
    /// counted by the generation they started in (`gen`): a relocation
    /// flips the generation and waits only for the old one's callers.
    users: [AtomicU32; 2],
    /// Which `users` counter new callers use (0 or 1).
    gen: AtomicU32,
    /// The waker to write to so that a wait holding `users` returns.
    nudge: AtomicPtr<Slot>,
    /// The next slot ever made (immutable once pushed).
    next: *const Slot,
}

// SAFETY: every field is atomic except `next`, written once before the
// slot is published and only read afterwards.
unsafe impl Sync for Slot {}

/// Every slot ever made: a push-only list, walked without locks (a
/// relocation may run in a signal handler).
static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(ptr::null_mut());

impl Slot {
    /// A free slot, reused or newly made (and leaked: slots are never freed).
    fn claim() -> &'static Slot {
        let mut p = SLOTS.load(Ordering::Acquire) as *const Slot;
        while !p.is_null() {
            // SAFETY: slots are leaked, so every pointer in the list stays valid.
            let s = unsafe { &*p };
            if s.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return s;
            }
            p = s.next;
        }
        let s: *mut Slot = Box::leak(Box::new(Slot {
            claimed: AtomicBool::new(true),
            moving: AtomicBool::new(false),
            fd: AtomicI32::new(-1),
            users: [AtomicU32::new(0), AtomicU32::new(0)],
            gen: AtomicU32::new(0),
            nudge: AtomicPtr::new(ptr::null_mut()),
            next: ptr::null(),
        }));
        let mut head = SLOTS.load(Ordering::Acquire);
        loop {
            // SAFETY: `s` is ours alone until the exchange below publishes it.
            unsafe { (*s).next = head };
            match SLOTS.compare_exchange(head, s, Ordering::AcqRel, Ordering::Acquire) {
                // SAFETY: leaked, so valid for the rest of the process.
                Ok(_) => return unsafe { &*s },
                Err(h) => head = h,
            }
        }
    }

    /// The claimed slot now holding `fd`.
    fn holding(fd: RawFd) -> Option<&'static Slot> {
        let mut p = SLOTS.load(Ordering::Acquire) as *const Slot;
        while !p.is_null() {
            // SAFETY: as in `claim`.
            let s = unsafe { &*p };
            if s.claimed.load(Ordering::Acquire) && s.fd.load(Ordering::SeqCst) == fd {
                return Some(s);
            }
            p = s.next;
        }
        None
    }

    fn with<R>(&self, f: impl FnOnce(RawFd) -> R) -> R {
        // A caller that sees the generation a relocation flipped to also
        // sees the number it published before the flip (SeqCst order).
        let g = self.gen.load(Ordering::SeqCst) as usize & 1;
        self.users[g].fetch_add(1, Ordering::SeqCst);
        let r = f(self.fd.load(Ordering::SeqCst));
        self.users[g].fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Takes the `moving` flag, trying for at most `patience`.
    fn lock(&self, patience: Duration) -> bool {
        let start = Instant::now();
        while self
            .moving
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if start.elapsed() > patience {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    fn unlock(&self) {
        self.moving.store(false, Ordering::Release);
    }
}

/// A runtime fd that [`relocate`] may move to another number while it is
/// in use (a hub's epoll fd and eventfd). Closed on drop.
pub(crate) struct RuntimeFd {
    slot: &'static Slot,
}

/// A non-owning reference to a [`RuntimeFd`], for a user that the owner
/// outlives (the poll backend reading its hub's waker).
#[derive(Clone, Copy)]
pub(crate) struct RuntimeFdRef {
    slot: &'static Slot,
}

impl RuntimeFd {
    /// Creates the fd with `create`, moves it high ([`create_high`]) and
    /// makes it movable.
    pub(crate) fn create(create: impl FnOnce() -> io::Result<RawFd>) -> io::Result<RuntimeFd> {
        runtime_change(|| RuntimeFd::adopt(create()?))
    }

    /// Two fds made by one call (`pipe2`), as [`create`](Self::create).
    pub(crate) fn create_pair(create: impl FnOnce() -> io::Result<[RawFd; 2]>) -> io::Result<[RuntimeFd; 2]> {
        runtime_change(|| {
            let [a, b] = create()?;
            let (a, b) = (RuntimeFd::adopt(a), RuntimeFd::adopt(b));
            Ok([a?, b?])
        })
    }

    /// Moves a freshly created fd high and makes it movable; inside
    /// [`runtime_change`], with the creation.
    fn adopt(fd: RawFd) -> io::Result<RuntimeFd> {
        let fd = own_high(fd)?;
        let slot = Slot::claim();
        slot.nudge.store(ptr::null_mut(), Ordering::Relaxed);
        slot.users.iter().for_each(|u| u.store(0, Ordering::Relaxed));
        slot.fd.store(fd, Ordering::SeqCst);
        Ok(RuntimeFd { slot })
    }

    /// Runs `f` with the fd's current number, which stays this fd's until
    /// `f` returns (a relocation waits for it).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(RawFd) -> R) -> R {
        self.slot.with(f)
    }

    /// A reference for a user that this fd outlives.
    pub(crate) fn by_ref(&self) -> RuntimeFdRef {
        RuntimeFdRef { slot: self.slot }
    }

    /// Makes a relocation of this fd write to `waker` (an eventfd) first,
    /// so that a wait on this fd returns.
    pub(crate) fn nudge_through(&self, waker: RuntimeFdRef) {
        self.slot
            .nudge
            .store(waker.slot as *const Slot as *mut Slot, Ordering::Release);
    }

    /// Closes the fd now (the child's copy after a fork); the value stays
    /// as a closed slot until dropped.
    pub(crate) fn close_now(&self) {
        runtime_change(|| {
            if let Some(fd) = self.take(-1) {
                close_owned(fd);
            }
        })
    }

    /// Puts `fresh` (a new fd, moved high here) in place of a number the
    /// program closed behind the hooks' back: the old number is forgotten,
    /// never closed (it may be the program's file now).
    pub(crate) fn replace_lost(&self, create: impl FnOnce() -> io::Result<RawFd>) -> io::Result<()> {
        let fresh = create_high(create)?;
        if let Some(old) = self.take(fresh) {
            disown(old);
        }
        Ok(())
    }

    /// Forgets the number without closing it (see `replace_lost`); the
    /// value stays as a closed slot until dropped.
    pub(crate) fn abandon(&self) {
        if let Some(old) = self.take(-1) {
            disown(old);
        }
    }

    /// Publishes `next` and returns the number it replaces, still
    /// registered.
    fn take(&self, next: RawFd) -> Option<RawFd> {
        self.slot.lock(Duration::MAX);
        let fd = self.slot.fd.swap(next, Ordering::SeqCst);
        self.slot.unlock();
        (fd >= 0).then_some(fd)
    }
}

impl RuntimeFdRef {
    /// As [`RuntimeFd::with`].
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(RawFd) -> R) -> R {
        self.slot.with(f)
    }

    /// The fd's number now, to wait on in a hub (a wait that a move ends
    /// is made again with the new number).
    pub(crate) fn number(&self) -> RawFd {
        self.slot.with(|fd| fd)
    }

    /// The reference as a pointer, for an atomic a signal handler reads.
    pub(crate) fn into_raw(self) -> *mut () {
        self.slot as *const Slot as *mut ()
    }

    /// The reference back from [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `p` came from `into_raw` (slots are never freed, so it stays valid).
    pub(crate) unsafe fn from_raw(p: *mut ()) -> RuntimeFdRef {
        // SAFETY: see above.
        let slot = unsafe { &*(p as *const Slot) };
        RuntimeFdRef { slot }
    }
}

impl Drop for RuntimeFd {
    fn drop(&mut self) {
        self.close_now();
        self.slot.nudge.store(ptr::null_mut(), Ordering::Relaxed);
        self.slot.claimed.store(false, Ordering::Release);
    }
}

/// Why [`relocate`] could not give a number up.
#[derive(Debug, PartialEq, Eq)]
pub enum RelocateError {
    /// No runtime fd is at that number (it is free, or the program's).
    NotOwned,
    /// A runtime fd is there that cannot move now: a per-call fd, the
    /// signal pipe, or a user that did not let go in time. The program's
    /// call should fail with `EBUSY`, the kernel's answer for a number
    /// that is being allocated.
    Busy,
}

/// How long a relocation waits for a slot's users (a nudged hub returns
/// from its wait within microseconds; a thread in a signal handler that
/// interrupted its own use of the fd never would).
const RELOCATE_PATIENCE: Duration = Duration::from_millis(500);

/// Moves the runtime fd at `fd` to another high number, so that the
/// caller may put the program's file there (with `dup2`/`dup3`, which
/// replace it atomically; if that fails the caller closes `fd` with a raw
/// close). `fd` stays open, no longer registered, until then.
pub fn relocate(fd: RawFd) -> Result<(), RelocateError> {
    if !owns(fd) {
        return Err(RelocateError::NotOwned);
    }
    let Some(slot) = Slot::holding(fd) else {
        return Err(RelocateError::Busy);
    };
    if !slot.lock(RELOCATE_PATIENCE) {
        return Err(RelocateError::Busy);
    }
    let r = move_locked(slot, fd);
    slot.unlock();
    r
}

fn move_locked(slot: &Slot, fd: RawFd) -> Result<(), RelocateError> {
    if slot.fd.load(Ordering::SeqCst) != fd {
        return Err(RelocateError::Busy);
    }
    let moved = runtime_change(|| {
        let moved = dup_high(fd).ok()?;
        set(moved, true);
        Some(moved)
    });
    let Some(moved) = moved else {
        return Err(RelocateError::Busy);
    };
    slot.fd.store(moved, Ordering::SeqCst);
    let old_gen = slot.gen.fetch_xor(1, Ordering::SeqCst) as usize & 1;
    let nudge = slot.nudge.load(Ordering::Acquire);
    let start = Instant::now();
    let mut nudged = false;
    while slot.users[old_gen].load(Ordering::SeqCst) != 0 {
        if !nudged && !nudge.is_null() {
            // SAFETY: slots are never freed.
            let waker = unsafe { &*nudge };
            let one: u64 = 1;
            // Writes 8 bytes from a valid u64 to the hub's eventfd.
            waker
                .with(|w| raw_syscall!(SYS_write, w, &one as *const u64, 8usize))
                .ok();
            nudged = true;
        }
        if start.elapsed() > RELOCATE_PATIENCE {
            // The old number stays the runtime's (registered, open): a
            // user may still hold it. The fd itself lives on at `moved`.
            return Err(RelocateError::Busy);
        }
        std::thread::yield_now();
    }
    disown(fd);
    Ok(())
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

    fn fresh() -> RuntimeFd {
        RuntimeFd::create(|| crate::sys::syscall!(eventfd(0, libc::EFD_CLOEXEC))).unwrap()
    }

    #[test]
    fn relocation_moves_the_fd_and_gives_the_number_up() {
        let rfd = fresh();
        let old = rfd.with(|fd| fd);
        assert_eq!(next_owned(old), Some(old));
        assert_eq!(relocate(old), Ok(()));
        let new = rfd.with(|fd| fd);
        assert_ne!(new, old);
        assert!(owns(new) && !owns(old));
        // The old number is still open (the caller's dup2 replaces it)...
        assert!(raw_syscall!(SYS_fcntl, old, libc::F_GETFD).is_ok());
        crate::sys::close_raw(old);
        // ... and the fd lives on at the new one.
        let one: u64 = 1;
        assert!(rfd
            .with(|fd| raw_syscall!(SYS_write, fd, &one as *const u64, 8usize))
            .is_ok());
        assert_eq!(relocate(old), Err(RelocateError::NotOwned));
        drop(rfd);
        assert!(!owns(new));
        assert!(raw_syscall!(SYS_fcntl, new, libc::F_GETFD).is_err());
    }

    #[test]
    fn relocation_waits_for_a_user_of_the_old_number_and_nudges_it() {
        let waker = fresh();
        let busy = std::sync::Arc::new(fresh());
        busy.nudge_through(waker.by_ref());
        let old = busy.with(|fd| fd);
        let w = waker.by_ref();
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let user = {
            let busy = busy.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                // Holds the old number until the waker is written to.
                busy.with(|fd| {
                    let mut p = [libc::pollfd {
                        fd: 0,
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    w.with(|wfd| p[0].fd = wfd);
                    crate::sys::ppoll_raw(&mut p, 10_000).unwrap();
                    done.store(true, Ordering::SeqCst);
                    fd
                })
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        assert!(!done.load(Ordering::SeqCst));
        assert_eq!(relocate(old), Ok(()));
        assert!(
            done.load(Ordering::SeqCst),
            "relocate returned while the old number was in use"
        );
        assert!(start.elapsed() < RELOCATE_PATIENCE);
        assert_eq!(user.join().unwrap(), old, "the user kept its number until it let go");
        assert_ne!(busy.with(|fd| fd), old);
        crate::sys::close_raw(old);
    }
}
