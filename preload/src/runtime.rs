//! Which copy of the runtime serves the hooks.
//!
//! The preload links its own copy of greenrt. If the program links greenrt
//! too, that copy registers itself here at its first hub creation (see
//! `greenrt::abi`), and from then on the hooks and the C API use it, so the
//! program's greenlets and the hooks' waits share one hub per thread.

use std::ffi::c_int;
use std::sync::atomic::{AtomicPtr, Ordering};

use greenrt::abi::RuntimeV1;

static EXTERNAL: AtomicPtr<RuntimeV1> = AtomicPtr::new(std::ptr::null_mut());

/// Called by a program's own copy of greenrt to take over the hooks.
///
/// # Safety
/// `rt` must point at a `RuntimeV1` that lives for the rest of the process.
#[no_mangle]
pub unsafe extern "C" fn greenrt_preload_register_runtime(rt: *const RuntimeV1) {
    // SAFETY: the caller passes a valid, 'static table.
    if !rt.is_null() && unsafe { (*rt).version } == greenrt::abi::RUNTIME_LAYOUT {
        EXTERNAL.store(rt as *mut RuntimeV1, Ordering::Release);
    }
}

/// The runtime serving the hooks now.
#[inline]
pub fn rt() -> &'static RuntimeV1 {
    let p = EXTERNAL.load(Ordering::Acquire);
    if p.is_null() {
        &greenrt::abi::RUNTIME_V1
    } else {
        // SAFETY: registered tables live for the process (see above).
        unsafe { &*p }
    }
}

/// True unless another copy of this library was loaded first and serves
/// the process (the library both preloaded and linked by the program from
/// a different path: two files, two copies). The first copy in the global
/// lookup scope owns every hooked symbol, and its `dlsym(RTLD_NEXT)` finds
/// the second copy's definitions: that copy must then pass every call
/// straight to libc (`GREENRT_HOOKS=off` for it), or each call would be
/// hooked twice, by two runtimes.
pub fn is_primary_copy() -> bool {
    // SAFETY: dlsym with a NUL-terminated name.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"greenrt_preload_register_runtime".as_ptr()) };
    found.is_null() || std::ptr::eq(found as *const (), greenrt_preload_register_runtime as *const ())
}

// ===== the runtime's own fds, in this copy and the serving one =====

/// True if `fd` is one of the runtime's own fds (in this copy or the
/// serving one): the program never opened it.
pub fn owns_fd(fd: c_int) -> bool {
    // SAFETY: a runtime table entry point; no preconditions.
    fd >= 0 && (greenrt::abi::owns_fd_here(fd) || unsafe { (rt().owns_fd)(fd) } != 0)
}

/// Gives the number `fd` up to the program if a runtime fd holds it: the
/// runtime moves its fd elsewhere, and `fd` stays open (unregistered)
/// until the caller's `dup2`/`dup3` replaces it (if that fails, the
/// caller closes it with [`close_given_up`]). `Ok(true)`: given up;
/// `Ok(false)`: not a runtime fd; `Err(EBUSY)`: one that cannot move now.
pub fn give_up_fd(fd: c_int) -> Result<bool, c_int> {
    if !owns_fd(fd) {
        return Ok(false);
    }
    // SAFETY: a runtime table entry point; no preconditions.
    let serving = unsafe { (rt().relocate_fd)(fd) };
    let r = if serving == -libc::ENOENT {
        greenrt::abi::relocate_fd_here(fd)
    } else {
        serving
    };
    match r {
        0 => Ok(true),
        _ => Err(libc::EBUSY),
    }
}

/// Runs the program's `dup2`/`dup3` (`call`) while no runtime fd is being
/// created, in this copy or the serving one: the two would race for fd
/// numbers (the program's call failing with `EBUSY`, or replacing a
/// runtime fd just made; see `greenrt::sys::fd_gate`).
pub fn program_change<R>(call: impl FnOnce() -> R) -> R {
    let serving = rt();
    let other = !std::ptr::eq(serving, &greenrt::abi::RUNTIME_V1);
    greenrt::abi::begin_program_change_here();
    if other {
        // SAFETY: a runtime table entry point; no preconditions.
        unsafe { (serving.begin_program_change)() };
    }
    let r = call();
    if other {
        // SAFETY: as above; pairs with the begin.
        unsafe { (serving.end_program_change)() };
    }
    greenrt::abi::end_program_change_here();
    r
}

/// Closes `fd` with a raw system call, past every hook: a number given up
/// by [`give_up_fd`] that the program's call did not take after all.
pub fn close_given_up(fd: c_int) {
    // SAFETY: plain syscall; no pointers.
    unsafe { libc::syscall(libc::SYS_close, fd as libc::c_long) };
}

/// The lowest runtime fd at or above `from` in either copy.
pub fn lowest_runtime_fd(from: c_int) -> Option<c_int> {
    let here = greenrt::abi::next_owned_fd_here(from);
    // SAFETY: a runtime table entry point; no preconditions.
    let serving = unsafe { (rt().next_owned_fd)(from) };
    [here, serving].into_iter().filter(|&f| f >= 0).min()
}

/// After a call that returned `got`, the lowest free number at or above
/// `from` as the kernel sees it (`dup`, `F_DUPFD`): if a runtime fd holds
/// a lower one, which the program would have got without the runtime,
/// moves the new fd there (close-on-exec if `cloexec`) and returns that
/// number; else `got`.
pub fn lowest_for_program(from: c_int, got: c_int, cloexec: bool) -> c_int {
    let Some(lower) = lowest_runtime_fd(from).filter(|&l| l < got) else {
        return got;
    };
    if give_up_fd(lower) != Ok(true) {
        return got;
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: both numbers are open: `got` the program's, `lower` ours.
    if unsafe { crate::real::dup3(got, lower, flags) } < 0 {
        close_given_up(lower);
        return got;
    }
    // `got` is the program's new duplicate, now at `lower` too.
    close_given_up(got);
    lower
}
