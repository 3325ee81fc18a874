//! The real libc functions behind the hooks (DESIGN rule 6).
//!
//! Every hooked symbol has a [`Slot`] here: the address of the next
//! definition after this library (`dlsym(RTLD_NEXT, name)`), looked up
//!
//! - **eagerly**, by [`resolve_all`] from the library's constructor, so the
//!   lookup (which takes the loader's lock) never happens inside a hook on
//!   a hot path or in a signal handler; and
//! - **lazily**, on first use, when a hook runs before our constructor did
//!   (another library's constructor may call `read` or `socket` first).
//!
//! The lookup allocates nothing: names are static NUL-terminated strings
//! and the address is kept in an atomic. Racing lookups store the same
//! address. A symbol that cannot be found (it does not exist in this libc)
//! makes the call fail with `ENOSYS` instead of jumping through null.
//!
//! # Using it from a hook family
//!
//! Every symbol in DESIGN.md's hook list is declared below, so a hook calls
//! `real::poll(fds, n, timeout)` and gets libc's `poll`. A family that
//! needs more symbols declares them with [`real_fns!`] in its own file:
//!
//! ```ignore
//! crate::real_fns! {
//!     /// libc's `epoll_pwait2`.
//!     fn epoll_pwait2(epfd: c_int, ev: *mut libc::epoll_event, n: c_int,
//!                     t: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
//! }
//! ```
//!
//! which defines `epoll_pwait2(...)` and a `resolve_all()` for those
//! symbols in that module; call that `resolve_all()` from `lib.rs`'s
//! `init()` next to [`resolve_all`] to make their lookup eager too.
//!
//! redhook's own `real!` lookup (a `Once` per hook) is used only on its
//! panic fallback path; the hooks call the functions here.

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{
    addrinfo, clockid_t, epoll_event, fd_set, hostent, iovec, mmsghdr, msghdr, nfds_t, pid_t, pollfd, rusage, sigset_t,
    size_t, sockaddr, socklen_t, ssize_t, timespec, timeval, useconds_t,
};

/// One real symbol: its NUL-terminated name and, once looked up, its
/// address (`0`: not looked up yet; `1`: looked up and absent).
pub struct Slot {
    name: &'static [u8],
    addr: AtomicUsize,
}

const ABSENT: usize = 1;

impl Slot {
    /// A slot for `name`, which must end with a NUL byte.
    pub const fn new(name: &'static [u8]) -> Slot {
        assert!(!name.is_empty() && name[name.len() - 1] == 0);
        Slot {
            name,
            addr: AtomicUsize::new(0),
        }
    }

    /// The symbol's name, without the NUL.
    pub fn name(&self) -> &'static str {
        std::str::from_utf8(&self.name[..self.name.len() - 1]).unwrap_or("?")
    }

    /// Looks the symbol up now (if not done yet); true if it exists.
    #[cold]
    pub fn resolve(&self) -> bool {
        // SAFETY: `name` is a static NUL-terminated string (checked in
        // `new`); dlsym(RTLD_NEXT) finds the definition after this object.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr() as *const c_char) } as usize;
        let v = if p == 0 { ABSENT } else { p };
        self.addr.store(v, Ordering::Relaxed);
        v != ABSENT
    }

    /// The real function's address, or `None` if this libc lacks it.
    #[inline(always)]
    pub fn get(&self) -> Option<usize> {
        let mut v = self.addr.load(Ordering::Relaxed);
        if v == 0 {
            self.resolve();
            v = self.addr.load(Ordering::Relaxed);
        }
        if v == ABSENT {
            None
        } else {
            Some(v)
        }
    }
}

thread_local! {
    /// Real calls made on this thread (wrapping), see [`calls_made`].
    static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Counts one real call (every function declared with [`real_fns!`]).
#[inline(always)]
pub fn count_call() {
    let _ = CALLS.try_with(|c| c.set(c.get().wrapping_add(1)));
}

/// How many real calls this thread has made (wrapping): compared before
/// and after a hook, it tells whether a panic came before the hook's real
/// call or after it had its effect.
pub fn calls_made() -> u32 {
    CALLS.try_with(|c| c.get()).unwrap_or(0)
}

/// What a call to an absent real function returns (errno is `ENOSYS`).
pub trait Missing {
    /// The failure value of the call's return type.
    fn missing() -> Self;
}

macro_rules! missing_minus_one {
    ($($t:ty),*) => {$(
        impl Missing for $t {
            fn missing() -> Self {
                crate::errno::set_errno(libc::ENOSYS);
                -1
            }
        }
    )*};
}
missing_minus_one!(i32, i64, isize);

impl Missing for u32 {
    fn missing() -> Self {
        crate::errno::set_errno(libc::ENOSYS);
        0
    }
}

/// `sighandler_t`: `SIG_ERR`.
impl Missing for usize {
    fn missing() -> Self {
        crate::errno::set_errno(libc::ENOSYS);
        libc::SIG_ERR
    }
}

impl<T> Missing for *mut T {
    fn missing() -> Self {
        crate::errno::set_errno(libc::ENOSYS);
        std::ptr::null_mut()
    }
}

impl Missing for () {
    fn missing() -> Self {
        crate::errno::set_errno(libc::ENOSYS);
    }
}

/// Declares real functions: for each `fn name(args) -> ret;` a function
/// `name` calling the next definition of `name` after this library, plus
/// one `resolve_all()` that looks every one of them up (see the module
/// docs). Use once per module.
#[macro_export]
macro_rules! real_fns {
    ($( $(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),* $(,)?) -> $r:ty; )*) => {
        /// The lookup slots of the real functions declared here.
        #[allow(non_upper_case_globals)]
        pub mod slots {
            $(
                #[doc = concat!("The real `", stringify!($name), "`.")]
                pub static $name: $crate::real::Slot =
                    $crate::real::Slot::new(concat!(stringify!($name), "\0").as_bytes());
            )*
        }

        /// Looks up every real function declared here.
        #[allow(dead_code)]
        pub fn resolve_all() {
            $( slots::$name.resolve(); )*
        }

        $(
            $(#[$m])*
            ///
            /// # Safety
            /// The same contract as the libc function of that name.
            #[inline(always)]
            pub unsafe fn $name($($a: $t),*) -> $r {
                match slots::$name.get() {
                    Some(p) => {
                        // SAFETY: `p` is the address dlsym returned for
                        // this name, a function with this C signature.
                        let f: unsafe extern "C" fn($($t),*) -> $r = unsafe { std::mem::transmute(p) };
                        $crate::real::count_call();
                        // SAFETY: the caller keeps the libc contract.
                        unsafe { f($($a),*) }
                    }
                    None => <$r as $crate::real::Missing>::missing(),
                }
            }
        )*
    };
}

mod table {
    use super::*;

    crate::real_fns! {
        // ----- hooks/io.rs, hooks/net.rs -----
        /// libc's `socket`.
        fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
        /// libc's `socketpair`.
        fn socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int;
        /// libc's `pipe`.
        fn pipe(fds: *mut c_int) -> c_int;
        /// libc's `pipe2`.
        fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
        /// libc's `accept`.
        fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
        /// libc's `accept4`.
        fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
        /// libc's `connect`.
        fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
        /// libc's `read`.
        fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
        /// libc's `write`.
        fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
        /// libc's `readv`.
        fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
        /// libc's `writev`.
        fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
        /// libc's `preadv2` (RWF_NOWAIT reads of pipes).
        fn preadv2(fd: c_int, iov: *const iovec, n: c_int, off: libc::off_t, flags: c_int) -> ssize_t;
        /// libc's `pwritev2` (RWF_NOWAIT writes to pipes).
        fn pwritev2(fd: c_int, iov: *const iovec, n: c_int, off: libc::off_t, flags: c_int) -> ssize_t;
        /// libc's `recv`.
        fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
        /// libc's `recvfrom`.
        fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
        /// libc's `recvmsg`.
        fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
        /// libc's `recvmmsg`.
        fn recvmmsg(fd: c_int, v: *mut mmsghdr, n: c_uint, flags: c_int, t: *mut timespec) -> c_int;
        /// libc's `send`.
        fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
        /// libc's `sendto`.
        fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
        /// libc's `sendmsg`.
        fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
        /// libc's `sendmmsg`.
        fn sendmmsg(fd: c_int, v: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int;
        /// libc's `close`.
        fn close(fd: c_int) -> c_int;
        /// libc's `dup`.
        fn dup(fd: c_int) -> c_int;
        /// libc's `dup2`.
        fn dup2(old: c_int, new: c_int) -> c_int;
        /// libc's `dup3`.
        fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
        /// libc's `close_range`.
        fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
        /// libc's `setsockopt`.
        fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
        /// libc's `getsockopt`.
        fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int;
        /// libc's `__read_chk`.
        fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t;
        /// libc's `__recv_chk`.
        fn __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t;
        /// libc's `__recvfrom_chk`.
        fn __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;

        // ----- hooks/poll.rs -----
        /// libc's `poll`.
        fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
        /// libc's `__poll`.
        fn __poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
        /// libc's `ppoll`.
        fn ppoll(fds: *mut pollfd, n: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int;
        /// libc's `__poll_chk`.
        fn __poll_chk(fds: *mut pollfd, n: nfds_t, timeout: c_int, fdslen: size_t) -> c_int;
        /// libc's `__ppoll_chk`.
        fn __ppoll_chk(fds: *mut pollfd, n: nfds_t, t: *const timespec, mask: *const sigset_t, fdslen: size_t) -> c_int;
        /// libc's `select`.
        fn select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *mut timeval) -> c_int;
        /// libc's `pselect`.
        fn pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, t: *const timespec, mask: *const sigset_t) -> c_int;
        /// libc's `epoll_wait`.
        fn epoll_wait(epfd: c_int, ev: *mut epoll_event, n: c_int, timeout: c_int) -> c_int;
        /// libc's `epoll_pwait`.
        fn epoll_pwait(epfd: c_int, ev: *mut epoll_event, n: c_int, timeout: c_int, mask: *const sigset_t) -> c_int;

        // ----- hooks/time.rs -----
        /// libc's `sleep`.
        fn sleep(secs: c_uint) -> c_uint;
        /// libc's `usleep`.
        fn usleep(us: useconds_t) -> c_int;
        /// libc's `nanosleep`.
        fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
        /// libc's `clock_nanosleep`.
        fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;

        // ----- hooks/dns.rs -----
        /// libc's `getaddrinfo`.
        fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int;
        /// libc's `gethostbyname`.
        fn gethostbyname(name: *const c_char) -> *mut hostent;
        /// libc's `gethostbyname_r`.
        fn gethostbyname_r(name: *const c_char, ret: *mut hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut hostent, h_errnop: *mut c_int) -> c_int;

        // ----- hooks/process.rs -----
        /// libc's `waitpid`.
        fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t;
        /// libc's `wait`.
        fn wait(status: *mut c_int) -> pid_t;
        /// libc's `wait4`.
        fn wait4(pid: pid_t, status: *mut c_int, options: c_int, ru: *mut rusage) -> pid_t;
        /// libc's `fork`.
        fn fork() -> pid_t;

        // ----- hooks/signal.rs -----
        /// libc's `sigaction`.
        fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
        /// libc's `signal`.
        fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        /// libc's `bsd_signal`.
        fn bsd_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        /// libc's `sysv_signal`.
        fn sysv_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        /// libc's `__sysv_signal`.
        fn __sysv_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
        /// libc's `sigset`.
        fn sigset(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t;
    }
}

pub use table::*;

// ----- variadic functions (the C shim's hooks call these) -----

/// The real `fcntl`, `fcntl64` and `ioctl` slots (variadic, so declared by
/// hand rather than with [`real_fns!`]).
#[allow(non_upper_case_globals)]
pub mod variadic_slots {
    use super::Slot;
    /// The real `fcntl`.
    pub static fcntl: Slot = Slot::new(b"fcntl\0");
    /// The real `fcntl64` (what `_FILE_OFFSET_BITS=64` programs call).
    pub static fcntl64: Slot = Slot::new(b"fcntl64\0");
    /// The real `ioctl`.
    pub static ioctl: Slot = Slot::new(b"ioctl\0");
}

type FcntlFn = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;

#[inline(always)]
unsafe fn call_fcntl(slot: &Slot, fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    match slot.get() {
        Some(p) => {
            // SAFETY: dlsym's address for fcntl/fcntl64, which has this
            // variadic C signature.
            let f: FcntlFn = unsafe { std::mem::transmute(p) };
            // SAFETY: the caller keeps the libc contract.
            unsafe { f(fd, cmd, arg) }
        }
        None => c_int::missing(),
    }
}

/// The real `fcntl(fd, cmd, arg)`; every command's third argument fits in a
/// `long` (an int or a pointer), and passing one to a command that takes
/// none is harmless.
///
/// # Safety
/// The libc contract of `fcntl` for `cmd`.
#[inline(always)]
pub unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { call_fcntl(&variadic_slots::fcntl, fd, cmd, arg) }
}

/// The real `fcntl64(fd, cmd, arg)` (differs from `fcntl` only in the
/// lock structures of 32-bit targets).
///
/// # Safety
/// The libc contract of `fcntl64` for `cmd`.
#[inline(always)]
pub unsafe fn fcntl64(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { call_fcntl(&variadic_slots::fcntl64, fd, cmd, arg) }
}

/// The real `ioctl(fd, request, arg)`.
///
/// # Safety
/// The libc contract of `ioctl` for `request`.
#[inline(always)]
pub unsafe fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    match variadic_slots::ioctl.get() {
        Some(p) => {
            // SAFETY: dlsym's address for ioctl, which has this variadic C
            // signature.
            let f: IoctlFn = unsafe { std::mem::transmute(p) };
            // SAFETY: the caller keeps the libc contract.
            unsafe { f(fd, request, arg) }
        }
        None => c_int::missing(),
    }
}

/// Looks up every real function of the central table (and the variadic
/// ones); called from the library's constructor.
pub fn resolve_all() {
    table::resolve_all();
    variadic_slots::fcntl.resolve();
    variadic_slots::fcntl64.resolve();
    variadic_slots::ioctl.resolve();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_libc_functions() {
        resolve_all();
        assert!(table::slots::read.get().is_some());
        assert!(table::slots::getaddrinfo.get().is_some());
        assert_eq!(table::slots::recvmmsg.name(), "recvmmsg");
        // A real call through the table.
        let mut fds = [0; 2];
        // SAFETY: a two-int array for pipe.
        assert_eq!(unsafe { pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: valid fds and buffers.
        unsafe {
            assert_eq!(write(fds[1], b"x".as_ptr() as *const c_void, 1), 1);
            let mut b = [0u8; 1];
            assert_eq!(read(fds[0], b.as_mut_ptr() as *mut c_void, 1), 1);
            assert_eq!(fcntl(fds[0], libc::F_GETFL, 0) & libc::O_NONBLOCK, 0);
            close(fds[0]);
            close(fds[1]);
        }
    }

    #[test]
    fn absent_symbol_is_enosys() {
        crate::real_fns! {
            /// Not in any libc.
            fn greenrt_no_such_function(x: c_int) -> c_int;
        }
        // SAFETY: absent, so never called.
        assert_eq!(unsafe { greenrt_no_such_function(1) }, -1);
        assert_eq!(crate::errno::errno(), libc::ENOSYS);
    }
}
