//! Stack overflow reports for greenlets.
//!
//! Every greenlet stack has a `PROT_NONE` guard page at its low end
//! (`stack.rs`). Running off the stack touches it and the kernel raises
//! `SIGSEGV`; without help that is a bare "Segmentation fault". At the first
//! hub creation greenrt installs (once per process) a `SIGSEGV` and `SIGBUS`
//! handler, with `SA_SIGINFO | SA_ONSTACK`, that checks the fault address
//! against the guard page of the greenlet running on the faulting thread.
//! On a hit it prints
//!
//! ```text
//! greenrt: greenlet "deep" (id 7, spawned at src/main.rs:12:5) overflowed its 64 KiB stack (fault at 0x7f..., its guard page); aborting
//! ```
//!
//! and calls `abort()`, like Rust's own "thread 'x' has overflowed its
//! stack" for thread stacks. Every other fault goes to the handler that was
//! there before (normally Rust's, which reports overflows of thread stacks
//! and otherwise restores the default action so that the fault recurs and
//! kills the process as usual; or the program's own; or the default action).
//!
//! The handler runs on an alternate signal stack, since the faulting stack
//! has no room left. Rust's runtime gives one to the main thread and to
//! threads spawned by `std::thread`; for a hub thread that has none (a
//! thread made by C's `pthread_create`, or any thread of a C program under
//! the preload) greenrt maps one (64 KiB plus a guard page) at hub creation
//! and frees it in the thread's exit destructors, unless someone else has
//! replaced it by then, in which case it is leaked deliberately (it might
//! still be in use).
//!
//! The handler is async-signal-safe: it reads the hub's thread-local
//! pointer (const-initialised, Drop-free, so no lazy init and no destructor
//! registration; the thread has already touched it when it created its hub,
//! so even in a dynamically loaded library the TLS block exists), formats
//! into a buffer on its own stack without allocating, writes it with
//! `write(2)` and aborts. It only trusts `si_addr` for faults the kernel
//! raised (`si_code > 0`), not for a `SIGSEGV` sent with `kill`.
//!
//! Only the greenlet running on the faulting thread is checked: a fault in
//! the guard page of a suspended greenlet's stack is a wild pointer, not an
//! overflow, and is passed on. A program that installs its own `SIGSEGV`
//! handler after the first hub creation replaces this one (and greenlet
//! overflows are then its to report).

use std::cell::Cell;
use std::cell::UnsafeCell;
use std::fmt::Write as _;
use std::sync::Once;

use crate::hub;
use crate::hub::task::Task;

/// The dispositions of SIGSEGV and SIGBUS before ours, in that order.
struct Previous(UnsafeCell<[libc::sigaction; 2]>);

// SAFETY: written once, under `INSTALL`, before our handler is installed;
// only read afterwards (by the handler).
unsafe impl Sync for Previous {}

// SAFETY: an all-zero sigaction is a valid value (SIG_DFL, empty mask).
static PREVIOUS: Previous = Previous(UnsafeCell::new(unsafe { std::mem::zeroed() }));

static INSTALL: Once = Once::new();

/// Size of the alternate signal stack given to hub threads that have none.
const ALT_STACK_SIZE: usize = 64 * 1024;

#[linkme::distributed_slice(crate::hub::HUB_STARTED)]
static ON_HUB_STARTED: fn() = on_hub_created;

/// Called by the hub at its creation: installs the handlers once per
/// process and makes sure this thread has an alternate signal stack.
fn on_hub_created() {
    INSTALL.call_once(install_handlers);
    ensure_alt_stack();
}

fn slot(sig: libc::c_int) -> usize {
    if sig == libc::SIGBUS {
        1
    } else {
        0
    }
}

fn install_handlers() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: `PREVIOUS` is not read before our handler is installed,
        // and this runs once; the sigaction structs are fully initialised
        // (zeroed, then the fields we set) and outlive the calls.
        unsafe {
            let prev = &mut (*PREVIOUS.0.get())[slot(sig)];
            if libc::sigaction(sig, std::ptr::null(), prev) != 0 {
                continue;
            }
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_fault as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(sig, &new, std::ptr::null_mut());
        }
    }
}

/// The alternate signal stack greenrt mapped for this thread, if any.
struct AltStack {
    /// Start of the mapping (its guard page), 0 if none.
    map: Cell<usize>,
    len: Cell<usize>,
}

thread_local! {
    static ALT_STACK: AltStack = const { AltStack { map: Cell::new(0), len: Cell::new(0) } };
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn ensure_alt_stack() {
    // SAFETY: querying the current alternate stack into a zeroed stack_t.
    let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut cur) } != 0 || cur.ss_flags & libc::SS_DISABLE == 0 {
        return; // has one (Rust's runtime gave it, or the program did)
    }
    let page = page_size();
    let len = page + ALT_STACK_SIZE;
    // SAFETY: an anonymous private mapping, checked before use.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return; // overflows on this thread stay bare segfaults
    }
    // SAFETY: the first page lies inside the mapping; the alternate stack
    // is the rest of it, which stays mapped while it is installed.
    unsafe {
        libc::mprotect(map, page, libc::PROT_NONE);
        let st = libc::stack_t {
            ss_sp: (map as usize + page) as *mut libc::c_void,
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        if libc::sigaltstack(&st, std::ptr::null_mut()) != 0 {
            libc::munmap(map, len);
            return;
        }
    }
    let recorded = ALT_STACK.try_with(|a| {
        a.map.set(map as usize);
        a.len.set(len);
    });
    if recorded.is_err() {
        // The thread is exiting: nothing would free it; leave it installed.
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let map = self.map.get();
        if map == 0 {
            return;
        }
        // SAFETY: queries, then disables, the alternate stack only if it is
        // still the one we installed and we are not running on it; only
        // then is the mapping unused and safe to unmap.
        unsafe {
            let mut cur: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(std::ptr::null(), &mut cur) != 0
                || cur.ss_sp as usize != map + page_size()
                || cur.ss_flags & libc::SS_ONSTACK != 0
            {
                return; // replaced by someone else: leak it
            }
            let off = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            if libc::sigaltstack(&off, std::ptr::null_mut()) == 0 {
                libc::munmap(map as *mut libc::c_void, self.len.get());
            }
        }
    }
}

/// The SIGSEGV / SIGBUS handler.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno_location is always valid for the calling thread.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // si_addr is only meaningful for kernel-generated faults (si_code > 0),
    // not for a SIGSEGV sent with kill().
    if code > 0 {
        if let Some(task) = hub::current_task_for_signal() {
            // SAFETY: the hub's current task is alive while it runs (the hub
            // holds an Rc to it for the whole resume).
            let task = unsafe { &*task };
            let (low, high) = task.guard.get();
            if low != 0 && (low..high).contains(&addr) {
                report_and_abort(task, addr);
            }
        }
    }
    // SAFETY: `PREVIOUS` was filled before this handler was installed.
    unsafe { chain(sig, info, ctx) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Hands the signal to the disposition that was there before ours.
///
/// # Safety
/// Only from `on_fault`, with its arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = &(*PREVIOUS.0.get())[slot(sig)];
    let handler = prev.sa_sigaction;
    let from_kernel = (*info).si_code > 0;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        if !from_kernel && handler == libc::SIG_IGN {
            return; // a sent signal that was ignored before us
        }
        // Put the old disposition back. A fault recurs when we return and
        // gets it (the kernel forces the default action on an ignored
        // fault); a sent signal is re-raised, pending until we return.
        libc::sigaction(sig, prev, std::ptr::null_mut());
        if !from_kernel {
            libc::raise(sig);
        }
        return;
    }
    if prev.sa_flags & libc::SA_RESETHAND != 0 {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
    }
    let mut old_mask: libc::sigset_t = std::mem::zeroed();
    libc::pthread_sigmask(libc::SIG_BLOCK, &prev.sa_mask, &mut old_mask);
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(handler);
        f(sig, info, ctx);
    } else {
        let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
        f(sig);
    }
    libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
}

/// A fixed buffer that `write!` fills without allocating; output beyond
/// its end is dropped.
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[inline(never)]
#[cold]
fn report_and_abort(task: &Task, addr: usize) -> ! {
    let mut buf = Buf {
        bytes: [0; 512],
        len: 0,
    };
    let (low, high) = task.guard.get();
    let page = high - low;
    let kib = task.stack_size.div_ceil(page) * page / 1024;
    let _ = buf.write_str("greenrt: greenlet ");
    // SAFETY: no reference into the name is held: we read it without the
    // borrow counter (which a signal handler must not touch) and refuse if
    // it is being changed right now. The program aborts right after, so the
    // name cannot change under us afterwards.
    match unsafe { task.name.try_borrow_unguarded() } {
        Ok(Some(name)) => {
            let _ = write!(buf, "{:?}", name.as_str());
        }
        _ => {
            let _ = write!(buf, "\"Greenlet-{}\"", task.id);
        }
    }
    let _ = writeln!(
        buf,
        " (id {}, spawned at {}) overflowed its {kib} KiB stack (fault at {addr:#x}, its guard page); aborting",
        task.id, task.spawn_site
    );
    if buf.len == buf.bytes.len() {
        // Truncated (a very long name): at least end the line.
        buf.bytes[buf.len - 1] = b'\n';
    }
    let mut out = &buf.bytes[..buf.len];
    while !out.is_empty() {
        // SAFETY: writes initialised bytes from our buffer to stderr.
        let n = unsafe { libc::write(2, out.as_ptr().cast(), out.len()) };
        if n <= 0 {
            break;
        }
        out = &out[n as usize..];
    }
    // SAFETY: abort is async-signal-safe and does not return.
    unsafe { libc::abort() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_installed_and_alt_stack_present_after_hub_creation() {
        crate::hub::with(|_| ());
        // SAFETY: queries only, into zeroed structs.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut sa);
            assert_eq!(sa.sa_sigaction, on_fault as *const () as usize);
            assert_ne!(sa.sa_flags & libc::SA_ONSTACK, 0);
            libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut sa);
            assert_eq!(sa.sa_sigaction, on_fault as *const () as usize);
            let mut st: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(std::ptr::null(), &mut st);
            assert_eq!(st.ss_flags & libc::SS_DISABLE, 0);
        }
    }

    #[test]
    fn buffer_truncates_without_overrunning() {
        let mut b = Buf {
            bytes: [0; 512],
            len: 0,
        };
        for _ in 0..100 {
            let _ = b.write_str("0123456789");
        }
        assert_eq!(b.len, 512);
    }
}
