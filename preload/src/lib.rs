//! `libgreenrt_preload.so`: OS-level monkey patching for greenrt, the way
//! gevent's `monkey.patch_all()` patches Python's standard library.
//!
//! Loaded with `LD_PRELOAD`, the library intercepts blocking libc calls and,
//! where another greenlet could run (DESIGN rule 1), parks only the calling
//! greenlet on its thread's hub instead of blocking the thread. Everywhere
//! else a call passes straight to libc, so an unmodified program behaves
//! exactly as without the library.
//!
//! Layout: one file per hook family (`io`, `net`, `poll`, `time`, `dns`,
//! `process`), the fd table (`fdtable`), how real libc symbols are found
//! (`real`), the hook guard (`hook`), which runtime copy serves the hooks
//! (`runtime`), the configuration (`config`), and the C API of
//! `include/greenrt.h` (`c_api`).

pub mod c_api;
pub mod config;
pub mod dns;
pub mod fdtable;
pub mod hook;
pub mod io;
pub mod net;
pub mod poll;
pub mod process;
pub mod real;
pub mod runtime;
pub mod time;

pub use greenrt;

/// Runs before `main` (and before most other libraries' constructors): marks
/// this copy of greenrt as the preload's, reads the configuration, and
/// looks up the real libc functions behind the hooks.
extern "C" fn init() {
    greenrt::capi::mark_preload_copy();
    config::init();
    real::resolve_all();
    fdtable::init();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
