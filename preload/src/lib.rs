//! `libgreenrt_preload.so`: OS-level monkey patching for greenrt, the way
//! gevent's `monkey.patch_all()` patches Python's standard library.
//!
//! Loaded with `LD_PRELOAD`, the library intercepts blocking libc calls and,
//! where another greenlet could run (DESIGN rule 1), parks only the calling
//! greenlet on its thread's hub instead of blocking the thread. Everywhere
//! else a call passes straight to libc, so an unmodified program behaves
//! exactly as without the library.
//!
//! Layout, bottom to top (each file imports only those above it in this
//! list):
//!
//! - [`errno`]: errno and raw stderr writes;
//! - [`real`]: the real libc functions behind the hooks (symbol slots);
//! - [`user_mem`]: the program's memory, read and written with the
//!   kernel's EFAULT rule;
//! - [`config`]: `GREENRT_HOOKS` and friends;
//! - [`fdtable`]: what the hooks know about each fd;
//! - [`handlers`]: the program's signal handlers behind a trampoline that
//!   records which ran (for signal(7)'s restart rules);
//! - [`runtime`]: which runtime copy serves the hooks;
//! - [`hook`]: the guard, the router and the one macro that defines a hook;
//! - [`coop`]: the cooperative fd machinery (park, transfer, Cursor);
//! - [`wait`]: interruptible timed waits on the hub;
//! - [`hooks`]: one file per hook family, each on the machinery only;
//! - [`c_api`]: the C API of `include/greenrt.h`.

pub mod c_api;
pub mod config;
pub mod coop;
pub mod errno;
pub mod fdtable;
pub mod handlers;
pub mod handover;
pub mod hook;
pub mod hooks;
pub mod real;
pub mod runtime;
pub mod user_mem;
pub mod wait;

pub use greenrt;

/// Runs before `main` (and before most other libraries' constructors): marks
/// this copy of greenrt as the preload's, reads the configuration, and
/// looks up the real libc functions behind the hooks.
extern "C" fn init() {
    greenrt::abi::mark_preload_copy();
    config::init();
    real::resolve_all();
    fdtable::init();
    handlers::init();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
