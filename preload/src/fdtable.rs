//! What the hooks know about each file descriptor, process-wide (fds are).
//!
//! One entry per fd number below [`LIMIT`], in a static array of atomics:
//! no lock, no allocation, untouched pages cost nothing. An fd at or above
//! the limit has no entry; the hooks classify it afresh on every call
//! ([`classify`]) and read its flags and timeouts from the kernel.
//!
//! An entry holds
//! - the fd's **kind**, found lazily with `fstat` on first use (DESIGN rule
//!   15) or set by the hook that created the fd (socket, accept, pipe):
//!   sockets and pipes cooperate; regular files, directories and block
//!   devices pass straight through, and so does anything the poller
//!   refuses (marked [`Kind::Passthrough`] by the hook that saw `EPERM`);
//! - whether the **program** set `O_NONBLOCK` (rule 2): a call on such an
//!   fd passes through and returns `EAGAIN` as usual;
//! - the `SO_RCVTIMEO` / `SO_SNDTIMEO` the program set (rule 3);
//! - how many of our own calls have `O_NONBLOCK` set on it for their
//!   duration (connect, accept), so that `F_GETFL` can hide it;
//! - whether the entry may be **stale**: file status flags and socket
//!   options belong to the open file description, which the fd may share
//!   with a dup, with a parent process (inherited fds) or with a forked
//!   child. Such entries are marked shared (dup, inherited, any fd alive
//!   at a fork), and before a hook parks on one it re-reads the flag and
//!   the timeout from the kernel, so the view stays exact; fds the program
//!   created through our hooks and never shared skip those syscalls.
//!
//! Entries are reset when the fd is closed, replaced (dup2/dup3) or
//! created. An fd closed behind our back (glibc's internal `close`, e.g. in
//! `fclose`) keeps a stale entry until its number is reused by a hooked
//! call; the hooks tolerate that (a socket call that fails with `ENOTSOCK`
//! reclassifies, an fd the poller refuses becomes pass-through).

use std::ffi::c_int;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::real;

/// fds below this have an entry.
pub const LIMIT: usize = 65536;

/// What an fd is, as far as the hooks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Not classified yet (or `fstat` failed: the real call reports why).
    Unknown = 0,
    /// A socket: per-call `MSG_DONTWAIT`.
    Socket = 1,
    /// A pipe or FIFO.
    Pipe = 2,
    /// A character device (tty, ...).
    CharDev = 3,
    /// Anything else the poller may accept (eventfd, timerfd, inotify, ...).
    Other = 4,
    /// Regular files, directories, block devices, and fds the poller
    /// refuses: every call passes straight through.
    Passthrough = 5,
}

impl Kind {
    fn from_bits(b: u32) -> Kind {
        match b & KIND_MASK {
            1 => Kind::Socket,
            2 => Kind::Pipe,
            3 => Kind::CharDev,
            4 => Kind::Other,
            5 => Kind::Passthrough,
            _ => Kind::Unknown,
        }
    }

    /// Whether calls on this kind may take the cooperative path.
    pub fn cooperates(self) -> bool {
        matches!(self, Kind::Socket | Kind::Pipe | Kind::CharDev | Kind::Other)
    }
}

const KIND_MASK: u32 = 0x7;
const USER_NB: u32 = 1 << 3;
const SHARED: u32 = 1 << 4;
const NO_NOWAIT: u32 = 1 << 5;
/// A call of ours is setting `O_NONBLOCK` for the first temporary user,
/// or clearing it after the last: others wait for it to finish.
const TEMP_BUSY: u32 = 1 << 6;
/// The program's own `O_NONBLOCK` was set when the first temporary user
/// came in: the last one out leaves it set.
const TEMP_ORIG_NB: u32 = 1 << 7;
const TEMP_SHIFT: u32 = 8;
const TEMP_ONE: u32 = 1 << TEMP_SHIFT;
const TEMP_MASK: u32 = 0xff << TEMP_SHIFT;
const GEN_SHIFT: u32 = 16;

struct Entry {
    /// kind | flags | temp-nonblock count | fork generation (high 16 bits).
    state: AtomicU32,
    /// SO_RCVTIMEO in ns (0: none).
    rcvtimeo: AtomicU64,
    /// SO_SNDTIMEO in ns (0: none).
    sndtimeo: AtomicU64,
}

impl Entry {
    const fn new() -> Entry {
        Entry {
            state: AtomicU32::new(0),
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
        }
    }
}

static TABLE: [Entry; LIMIT] = [const { Entry::new() }; LIMIT];

/// Bumped at every fork (in parent and child): entries made before it may
/// share their open file description with the other process.
static GENERATION: AtomicU32 = AtomicU32::new(0);

fn gen_bits() -> u32 {
    (GENERATION.load(Ordering::Relaxed) & 0xffff) << GEN_SHIFT
}

#[inline]
fn entry(fd: c_int) -> Option<&'static Entry> {
    if fd >= 0 && (fd as usize) < LIMIT {
        Some(&TABLE[fd as usize])
    } else {
        None
    }
}

/// A snapshot of one fd's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdState {
    /// The fd's kind.
    pub kind: Kind,
    /// The program set `O_NONBLOCK` (as last seen).
    pub user_nonblock: bool,
    /// The entry may be stale: re-read flags and timeouts before parking.
    pub shared: bool,
    /// `preadv2`/`pwritev2` with `RWF_NOWAIT` is not supported on it.
    pub no_nowait: bool,
    /// Our own calls have `O_NONBLOCK` set on it right now.
    pub temp_nonblock: bool,
}

impl FdState {
    fn from_bits(b: u32) -> FdState {
        FdState {
            kind: Kind::from_bits(b),
            user_nonblock: b & USER_NB != 0,
            shared: b & SHARED != 0 || (b & !((1 << GEN_SHIFT) - 1)) != gen_bits(),
            no_nowait: b & NO_NOWAIT != 0,
            temp_nonblock: b & TEMP_MASK != 0,
        }
    }
}

/// The major number of the memory character devices (`/dev/null`,
/// `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`, `/dev/mem`,
/// ...; devices.txt).
const MEM_MAJOR: u32 = 1;

/// The kind `fstat` reports for `fd`, and its `O_NONBLOCK` flag; `None` if
/// the fd is not open (or not inspectable).
pub fn classify(fd: c_int) -> Option<(Kind, bool)> {
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into `st` only.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFIFO => Kind::Pipe,
        // The memory devices (null, zero, full, random, urandom, ...) never
        // block: a read of them "without waiting" may come back short where
        // the blocking read fills the buffer, so they pass through.
        libc::S_IFCHR if libc::major(st.st_rdev) == MEM_MAJOR => Kind::Passthrough,
        libc::S_IFCHR => Kind::CharDev,
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK | libc::S_IFLNK => Kind::Passthrough,
        _ => Kind::Other,
    };
    // SAFETY: F_GETFL takes no argument.
    let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if fl < 0 {
        return None;
    }
    Some((kind, fl & libc::O_NONBLOCK != 0))
}

/// The state of `fd`, classifying it on first use. `None`: the fd is out
/// of the table's range or not open; the caller passes the call through
/// (or classifies it per call with [`classify`]).
#[inline]
pub fn get(fd: c_int) -> Option<FdState> {
    let Some(e) = entry(fd) else {
        return beyond_limit(fd);
    };
    let b = e.state.load(Ordering::Relaxed);
    if b & KIND_MASK != 0 {
        return Some(FdState::from_bits(b));
    }
    get_slow(fd, e)
}

/// An fd without an entry (at or above [`LIMIT`]): classified per call,
/// and always re-read from the kernel before a park.
#[cold]
fn beyond_limit(fd: c_int) -> Option<FdState> {
    if fd < 0 {
        return None;
    }
    let (kind, nb) = classify(fd)?;
    Some(FdState {
        kind,
        user_nonblock: nb,
        shared: true,
        no_nowait: false,
        temp_nonblock: false,
    })
}

/// The state of `fd` as recorded, without classifying it (`None`: no
/// entry, or not classified yet).
#[inline]
pub fn peek(fd: c_int) -> Option<FdState> {
    let b = entry(fd)?.state.load(Ordering::Relaxed);
    if b & KIND_MASK == 0 {
        None
    } else {
        Some(FdState::from_bits(b))
    }
}

#[cold]
fn get_slow(fd: c_int, e: &Entry) -> Option<FdState> {
    let (kind, nb) = classify(fd)?;
    // Inherited or created behind our back: its description may be shared,
    // and its timeouts were set where we could not see them.
    let b = kind as u32 | if nb { USER_NB } else { 0 } | SHARED | gen_bits();
    match e.state.compare_exchange(0, b, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => Some(FdState::from_bits(b)),
        Err(now) if now & KIND_MASK != 0 => Some(FdState::from_bits(now)),
        // Only the temp count was set (a call in flight): keep it.
        Err(now) => {
            e.state.fetch_or(b, Ordering::Relaxed);
            Some(FdState::from_bits(now | b))
        }
    }
}

/// A hook created `fd` (socket, accept, pipe, ...): a fresh entry that the
/// hooks know everything about.
pub fn created(fd: c_int, kind: Kind, nonblock: bool) {
    if let Some(e) = entry(fd) {
        e.rcvtimeo.store(0, Ordering::Relaxed);
        e.sndtimeo.store(0, Ordering::Relaxed);
        e.state.store(
            kind as u32 | if nonblock { USER_NB } else { 0 } | gen_bits(),
            Ordering::Relaxed,
        );
    }
}

/// `fd` was closed or is about to be replaced: forget it.
pub fn forget(fd: c_int) {
    if let Some(e) = entry(fd) {
        e.state.store(0, Ordering::Relaxed);
        e.rcvtimeo.store(0, Ordering::Relaxed);
        e.sndtimeo.store(0, Ordering::Relaxed);
    }
}

/// `new` was made a duplicate of `old` (dup, dup2, dup3, F_DUPFD): it
/// shares `old`'s open file description, so both entries become shared.
pub fn duplicated(old: c_int, new: c_int) {
    let Some(ne) = entry(new) else { return };
    match entry(old) {
        Some(oe) => {
            let b = oe.state.fetch_or(SHARED, Ordering::Relaxed);
            let b = if b & KIND_MASK == 0 {
                0
            } else {
                (b & !(TEMP_MASK | TEMP_BUSY | TEMP_ORIG_NB)) | SHARED
            };
            ne.rcvtimeo
                .store(oe.rcvtimeo.load(Ordering::Relaxed), Ordering::Relaxed);
            ne.sndtimeo
                .store(oe.sndtimeo.load(Ordering::Relaxed), Ordering::Relaxed);
            ne.state.store(b, Ordering::Relaxed);
        }
        None => forget(new),
    }
}

/// Marks `fd` as one the poller refuses: calls pass straight through.
pub fn set_passthrough(fd: c_int) {
    if let Some(e) = entry(fd) {
        let _ = e.state.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
            Some((b & !KIND_MASK) | Kind::Passthrough as u32)
        });
    }
}

/// Marks `fd` as a socket (a socket call succeeded on an fd classified
/// otherwise) or reclassifies it (`None`: forget the kind, keep nothing).
pub fn reclassify(fd: c_int) {
    forget(fd);
    let _ = get(fd);
}

/// Marks `fd` as not supporting `RWF_NOWAIT`.
pub fn set_no_nowait(fd: c_int) {
    if let Some(e) = entry(fd) {
        e.state.fetch_or(NO_NOWAIT, Ordering::Relaxed);
    }
}

/// The program set or cleared `O_NONBLOCK` on `fd` (F_SETFL, FIONBIO).
pub fn set_user_nonblock(fd: c_int, nb: bool) {
    if let Some(e) = entry(fd) {
        if nb {
            e.state.fetch_or(USER_NB, Ordering::Relaxed);
        } else {
            e.state.fetch_and(!USER_NB, Ordering::Relaxed);
        }
    }
}

/// Which socket timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeo {
    /// `SO_RCVTIMEO`.
    Rcv,
    /// `SO_SNDTIMEO`.
    Snd,
}

/// The program set a socket timeout on `fd` (`ns == 0`: none).
pub fn set_timeout(fd: c_int, which: Timeo, ns: u64) {
    if let Some(e) = entry(fd) {
        match which {
            Timeo::Rcv => e.rcvtimeo.store(ns, Ordering::Relaxed),
            Timeo::Snd => e.sndtimeo.store(ns, Ordering::Relaxed),
        }
    }
}

/// Reads a socket timeout from the kernel, in ns (0: none or not a socket).
pub fn kernel_timeout(fd: c_int, which: Timeo) -> u64 {
    let name = match which {
        Timeo::Rcv => libc::SO_RCVTIMEO,
        Timeo::Snd => libc::SO_SNDTIMEO,
    };
    let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: a timeval out-buffer of the length we pass.
    let r = unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            &mut tv as *mut libc::timeval as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return 0;
    }
    timeval_ns(&tv)
}

/// A `timeval` as ns, saturating; negative values count as 0.
pub fn timeval_ns(tv: &libc::timeval) -> u64 {
    if tv.tv_sec < 0 || tv.tv_usec < 0 {
        return 0;
    }
    (tv.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(tv.tv_usec as u64 * 1000)
}

/// The socket timeout that bounds a blocking call on `fd` now, in ns (0:
/// none): the table's value, or the kernel's when the entry may be stale.
pub fn timeout(fd: c_int, st: &FdState, which: Timeo) -> u64 {
    match entry(fd) {
        Some(e) if !st.shared => match which {
            Timeo::Rcv => e.rcvtimeo.load(Ordering::Relaxed),
            Timeo::Snd => e.sndtimeo.load(Ordering::Relaxed),
        },
        _ => {
            let ns = kernel_timeout(fd, which);
            set_timeout(fd, which, ns);
            ns
        }
    }
}

/// Marks `fd`'s entry as possibly shared with another process (its open
/// file description was passed with `SCM_RIGHTS`): its timeouts are then
/// read from the kernel before each park.
pub fn mark_shared(fd: c_int) {
    if let Some(e) = entry(fd) {
        e.state.fetch_or(SHARED, Ordering::Relaxed);
    }
}

/// Whether the program's `O_NONBLOCK` is set on `fd` now, asked of the
/// kernel (`F_GETFL`, one syscall, only on the path that is about to park):
/// the flag lives on the open file description, which another process or
/// a glibc-internal call may have changed, and the number may name a file
/// the table has not seen (closed and reused behind the hooks' back).
/// While a call of ours has the flag set temporarily, the table's view.
pub fn user_nonblock_now(fd: c_int, st: &FdState) -> bool {
    let temp = entry(fd).is_some_and(|e| e.state.load(Ordering::Relaxed) & TEMP_MASK != 0);
    if temp {
        return st.user_nonblock;
    }
    // SAFETY: F_GETFL takes no argument.
    let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if fl < 0 {
        return st.user_nonblock;
    }
    let nb = fl & libc::O_NONBLOCK != 0;
    set_user_nonblock(fd, nb);
    nb
}

/// The `F_GETFL` result the program sees: the kernel's flags with
/// `O_NONBLOCK` as the program set it while a call of ours has it set.
pub fn visible_flags(fd: c_int, kernel: c_int) -> c_int {
    match entry(fd) {
        Some(e) => {
            let b = e.state.load(Ordering::Relaxed);
            if b & TEMP_MASK == 0 {
                kernel
            } else if b & USER_NB != 0 {
                kernel | libc::O_NONBLOCK
            } else {
                kernel & !libc::O_NONBLOCK
            }
        }
        None => kernel,
    }
}

/// Sets `O_NONBLOCK` on `fd` for the duration of one call of ours; the
/// guard restores the program's flag when dropped. Returns `None` if the
/// flags could not be changed (the caller makes the real blocking call).
///
/// Several threads may be inside such a call on one open file at once (a
/// pool of threads blocked in `accept` on one listener). The flag must
/// end exactly as the program left it, so the callers are counted in the
/// fd's entry: the **first** one in reads the flags, remembers whether the
/// program's `O_NONBLOCK` was set, and sets it; the **last** one out
/// restores it from that memory (never from what `F_GETFL` says then,
/// which includes our own flag). While the first one sets up or the last
/// one restores (`TEMP_BUSY`, two syscalls), others wait by yielding; a
/// caller that waits too long (the busy one is the code it interrupted,
/// as in a signal handler) gives up and makes the real call.
pub fn temp_nonblock(fd: c_int) -> Option<TempNonblock> {
    let Some(e) = entry(fd) else {
        return temp_nonblock_untracked(fd);
    };
    for _ in 0..TEMP_SPINS {
        let s = e.state.load(Ordering::Acquire);
        if s & TEMP_BUSY != 0 {
            std::thread::yield_now();
            continue;
        }
        let count = s & TEMP_MASK;
        if count == TEMP_MASK {
            return None; // 255 calls in flight on one fd
        }
        if count != 0 {
            // Set up already: join.
            if e.state
                .compare_exchange_weak(s, s + TEMP_ONE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some(TempNonblock {
                    fd,
                    tracked: true,
                    flags: 0,
                });
            }
            continue;
        }
        if e.state
            .compare_exchange_weak(s, (s + TEMP_ONE) | TEMP_BUSY, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        // SAFETY: F_GETFL takes no argument.
        let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
        if fl < 0 {
            update(e, |s| (s & !TEMP_BUSY) - TEMP_ONE);
            return None;
        }
        let orig_nb = fl & libc::O_NONBLOCK != 0;
        if !orig_nb {
            // SAFETY: F_SETFL with an int argument.
            unsafe { real::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as libc::c_long) };
        }
        update(e, |s| {
            (s & !(TEMP_BUSY | TEMP_ORIG_NB)) | if orig_nb { TEMP_ORIG_NB } else { 0 }
        });
        return Some(TempNonblock {
            fd,
            tracked: true,
            flags: 0,
        });
    }
    None
}

/// How many times a temporary user yields to a busy one before it gives
/// up (see [`temp_nonblock`]).
const TEMP_SPINS: u32 = 10_000;

/// Applies `f` to an entry's state atomically.
fn update(e: &Entry, f: impl Fn(u32) -> u32) {
    let _ = e
        .state
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some(f(s)));
}

/// [`temp_nonblock`] for an fd beyond the table: no count to share, so
/// the flag is restored when this call's own view says it was clear.
fn temp_nonblock_untracked(fd: c_int) -> Option<TempNonblock> {
    // SAFETY: F_GETFL takes no argument.
    let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if fl < 0 {
        return None;
    }
    if fl & libc::O_NONBLOCK == 0 {
        // SAFETY: F_SETFL with an int argument.
        unsafe { real::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as libc::c_long) };
    }
    Some(TempNonblock {
        fd,
        tracked: false,
        flags: fl,
    })
}

/// Restores the program's `O_NONBLOCK` when dropped (see
/// [`temp_nonblock`]).
pub struct TempNonblock {
    fd: c_int,
    /// Counted in the fd's entry (else `flags` says what to restore).
    tracked: bool,
    flags: c_int,
}

/// Clears `O_NONBLOCK` on `fd` (errno kept).
fn clear_nonblock(fd: c_int) {
    let saved = crate::errno::errno();
    // SAFETY: F_GETFL/F_SETFL on the fd we changed; errno restored.
    unsafe {
        let now = real::fcntl(fd, libc::F_GETFL, 0);
        if now >= 0 && now & libc::O_NONBLOCK != 0 {
            real::fcntl(fd, libc::F_SETFL, (now & !libc::O_NONBLOCK) as libc::c_long);
        }
    }
    crate::errno::set_errno(saved);
}

impl Drop for TempNonblock {
    fn drop(&mut self) {
        let e = match entry(self.fd) {
            Some(e) if self.tracked => e,
            _ => {
                if self.flags & libc::O_NONBLOCK == 0 {
                    clear_nonblock(self.fd);
                }
                return;
            }
        };
        loop {
            let s = e.state.load(Ordering::Acquire);
            if s & TEMP_BUSY != 0 {
                std::thread::yield_now();
                continue;
            }
            if s & TEMP_MASK > TEMP_ONE {
                if e.state
                    .compare_exchange_weak(s, s - TEMP_ONE, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            // The last one out: restore while still counted (newcomers wait).
            if e.state
                .compare_exchange_weak(s, s | TEMP_BUSY, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            if s & TEMP_ORIG_NB == 0 {
                clear_nonblock(self.fd);
            }
            update(e, |s| (s & !(TEMP_BUSY | TEMP_ORIG_NB)) - TEMP_ONE);
            return;
        }
    }
}

/// Called in parent and child after a fork: every entry alive now may share
/// its open file description with the other process.
pub fn after_fork() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn atfork_handler() {
    after_fork();
}

/// Registers [`after_fork`] with `pthread_atfork` (from the constructor).
pub fn init() {
    // SAFETY: registering plain extern "C" handlers that only touch an
    // atomic; the library is never unloaded while the process forks.
    unsafe { libc::pthread_atfork(None, Some(atfork_handler), Some(atfork_handler)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The table is process-wide: tests that assert on shared state and
    /// the fork generation run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn pipe() -> [c_int; 2] {
        let mut p = [0; 2];
        // SAFETY: a two-int array.
        assert_eq!(unsafe { real::pipe(p.as_mut_ptr()) }, 0);
        p
    }

    fn close(fd: c_int) {
        forget(fd);
        // SAFETY: closing an fd this test owns.
        unsafe { real::close(fd) };
    }

    #[test]
    fn lazy_classification() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = pipe();
        forget(p[0]);
        let s = get(p[0]).unwrap();
        assert_eq!(s.kind, Kind::Pipe);
        assert!(s.shared && !s.user_nonblock);
        // A regular file passes through.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        use std::os::fd::AsRawFd;
        forget(f.as_raw_fd());
        assert_eq!(get(f.as_raw_fd()).unwrap().kind, Kind::Passthrough);
        assert!(!Kind::Passthrough.cooperates());
        // Out of range and closed fds have no state.
        assert_eq!(get(-1), None);
        assert_eq!(get(LIMIT as c_int + 5), None);
        close(p[0]);
        close(p[1]);
    }

    #[test]
    fn created_dup_and_nonblock() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = pipe();
        created(p[0], Kind::Pipe, false);
        let s = get(p[0]).unwrap();
        assert!(!s.shared && !s.user_nonblock && !s.temp_nonblock);
        set_user_nonblock(p[0], true);
        assert!(get(p[0]).unwrap().user_nonblock);
        set_user_nonblock(p[0], false);
        // A dup shares the description: both become shared and re-read.
        // SAFETY: dup of an fd this test owns.
        let d = unsafe { real::dup(p[0]) };
        duplicated(p[0], d);
        let sd = get(d).unwrap();
        assert!(sd.shared && get(p[0]).unwrap().shared);
        // The kernel says blocking; set it behind the table's back.
        // SAFETY: F_SETFL on our fd.
        unsafe { real::fcntl(d, libc::F_SETFL, libc::O_NONBLOCK as libc::c_long) };
        assert!(user_nonblock_now(p[0], &get(p[0]).unwrap()));
        close(d);
        close(p[0]);
        close(p[1]);
    }

    #[test]
    fn overlapping_temp_nonblock_ends_as_the_program_left_it() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = pipe();
        created(p[0], Kind::Pipe, false);
        let flags = || {
            // SAFETY: F_GETFL.
            (unsafe { real::fcntl(p[0], libc::F_GETFL, 0) }) & libc::O_NONBLOCK
        };
        // Two overlapping users, the first out first: the flag stays until
        // the second is out, then it is clear again.
        let a = temp_nonblock(p[0]).unwrap();
        let b = temp_nonblock(p[0]).unwrap();
        drop(a);
        assert_ne!(flags(), 0);
        drop(b);
        assert_eq!(flags(), 0);
        // The program's own O_NONBLOCK survives overlapping users.
        // SAFETY: F_SETFL with an int argument.
        unsafe { real::fcntl(p[0], libc::F_SETFL, libc::O_NONBLOCK as libc::c_long) };
        let a = temp_nonblock(p[0]).unwrap();
        let b = temp_nonblock(p[0]).unwrap();
        drop(b);
        drop(a);
        assert_ne!(flags(), 0);
        // And a later user after it was cleared sets it up afresh.
        // SAFETY: F_SETFL with an int argument.
        unsafe { real::fcntl(p[0], libc::F_SETFL, 0 as libc::c_long) };
        let c = temp_nonblock(p[0]).unwrap();
        assert_ne!(flags(), 0);
        drop(c);
        assert_eq!(flags(), 0);
        close(p[0]);
        close(p[1]);
    }

    #[test]
    fn temp_nonblock_is_hidden_and_restored() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = pipe();
        created(p[0], Kind::Pipe, false);
        {
            let _g = temp_nonblock(p[0]).unwrap();
            // SAFETY: F_GETFL.
            let k = unsafe { real::fcntl(p[0], libc::F_GETFL, 0) };
            assert_ne!(k & libc::O_NONBLOCK, 0);
            assert_eq!(visible_flags(p[0], k) & libc::O_NONBLOCK, 0);
            assert!(get(p[0]).unwrap().temp_nonblock);
        }
        // SAFETY: F_GETFL.
        let k = unsafe { real::fcntl(p[0], libc::F_GETFL, 0) };
        assert_eq!(k & libc::O_NONBLOCK, 0);
        assert!(!get(p[0]).unwrap().temp_nonblock);
        close(p[0]);
        close(p[1]);
    }

    #[test]
    fn timeouts_and_fork_generation() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = pipe();
        created(p[0], Kind::Socket, false);
        set_timeout(p[0], Timeo::Rcv, 5);
        let s = get(p[0]).unwrap();
        assert_eq!(timeout(p[0], &s, Timeo::Rcv), 5);
        assert_eq!(timeout(p[0], &s, Timeo::Snd), 0);
        after_fork();
        assert!(get(p[0]).unwrap().shared);
        assert_eq!(timeval_ns(&libc::timeval { tv_sec: 1, tv_usec: 5 }), 1_000_005_000);
        close(p[0]);
        close(p[1]);
    }
}
