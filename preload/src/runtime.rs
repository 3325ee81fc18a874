//! Which copy of the runtime serves the hooks.
//!
//! The preload links its own copy of greenrt. If the program links greenrt
//! too, that copy registers itself here at its first hub creation (see
//! `greenrt::abi`), and from then on the hooks and the C API use it, so the
//! program's greenlets and the hooks' waits share one hub per thread.

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
    if !rt.is_null() && unsafe { (*rt).version } == 1 {
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
