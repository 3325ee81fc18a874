//! The `vfork` hook: every hook passes straight through in the child.
//!
//! A child made with `vfork` runs on the parent's memory, stack and
//! thread-locals until it execs or exits, while the parent's thread waits.
//! A hook that took its cooperative path there would park the child on
//! the *parent's* hub, run the parent's greenlets in the child, and leave
//! the hub's tables in whatever state the child left them (CPython's
//! subprocess writes to its error pipe from such a child). So `vfork`
//! sets the bypass flag (`hook::set_bypass`) for the child, which sees it
//! in the shared thread-locals, and the parent puts it back when the
//! kernel resumes it. The bookkeeping hooks and the signal hooks also
//! recognise the child by its pid (`handlers::in_vfork_child`), which
//! covers a `vfork` made by a raw system call.
//!
//! `vfork` returns twice on one stack, so it cannot be an ordinary
//! function: the child's return would pop the frame the parent returns
//! through. It is a naked function, like glibc's own: it takes its return
//! address off the stack into this thread's [`SAVED`] before the system
//! call and pushes it back after, keeping nothing on the stack across the
//! call; the helpers it calls run below the stack pointer, which the
//! parent does not need.

use std::cell::Cell;

use libc::pid_t;

use crate::errno::set_errno;
use crate::hook;

thread_local! {
    /// While this thread is in `vfork`: the caller's return address, the
    /// bypass flag to restore in the parent, and the call's result.
    static SAVED: Cell<(usize, bool, pid_t)> = const { Cell::new((0, false, 0)) };
}

/// Before the system call: saves the return address, bypasses every hook
/// (for the child).
extern "C" fn vfork_enter(return_address: usize) {
    let bypass = hook::set_bypass(true);
    SAVED.set((return_address, bypass, 0));
}

/// After the system call, in the child (`raw == 0`, which stays
/// bypassed) and in the parent (the child's pid or `-errno`): records the
/// result and returns the caller's return address.
extern "C" fn vfork_leave(raw: isize) -> usize {
    let (return_address, bypass, _) = SAVED.get();
    let result = match raw {
        0 => 0,
        e if (-4095..0).contains(&e) => {
            hook::set_bypass(bypass);
            set_errno(-e as i32);
            -1
        }
        pid => {
            hook::set_bypass(bypass);
            pid as pid_t
        }
    };
    SAVED.set((return_address, bypass, result));
    return_address
}

/// `vfork`'s return value (the last step, reached by a jump: it returns
/// to the caller).
extern "C" fn vfork_result() -> pid_t {
    SAVED.get().2
}

/// The `vfork` hook (see the module docs).
///
/// # Safety
/// The libc contract of `vfork`: the child may only exec or `_exit`.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn vfork() -> pid_t {
    // At entry rsp is 8 mod 16; after the pop it is 0, so each call below
    // enters its callee with the ABI's alignment, and the final jump
    // enters `vfork_result` as if called, with the caller's return
    // address on top.
    core::arch::naked_asm!(
        "pop rdi",
        "call {enter}",
        "mov eax, {sys_vfork}",
        "syscall",
        "mov rdi, rax",
        "call {leave}",
        "push rax",
        "jmp {result}",
        enter = sym vfork_enter,
        leave = sym vfork_leave,
        result = sym vfork_result,
        sys_vfork = const libc::SYS_vfork,
    )
}
