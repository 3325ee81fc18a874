//! `libgreenrt_preload.so`: OS-level monkey patching for greenrt.
//!
//! Loaded with `LD_PRELOAD`, this library will intercept blocking libc calls
//! and reroute them through the calling thread's greenrt hub. The hooks are
//! the subject of their own issue; for now the library only links the
//! runtime so that the workspace layout, build and install paths are real.

pub use greenrt;
