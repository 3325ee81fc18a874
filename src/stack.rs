//! Greenlet stacks: guarded mmap regions, reused through a per-thread pool.
//!
//! Each stack is one mapping with a `PROT_NONE` guard page at its low end,
//! which the kernel counts as two entries against `vm.max_map_count`
//! (65530 by default). Before mapping a new stack we check the process's
//! mapping count, and when the limit is near we fail with an error that
//! says what to change instead of letting mmap fail deep inside a switch.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use corosensei::stack::{Stack, StackPointer};

/// A stack with a guard page below it.
pub(crate) struct GuardedStack {
    /// Lowest address of the mapping (the guard page).
    low: usize,
    /// Length of the mapping, guard page included.
    len: usize,
}

/// Stacks currently mapped by greenrt in this process (all threads).
static MAPPED_STACKS: AtomicUsize = AtomicUsize::new(0);
/// Stacks kept for reuse by each thread.
const POOL_LIMIT: usize = 1024;
/// Mappings left free for the program itself when we check the limit.
const MAP_HEADROOM: usize = 1024;

thread_local! {
    static POOL: RefCell<Vec<GuardedStack>> = const { RefCell::new(Vec::new()) };
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize)
}

fn max_map_count() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65530)
    })
}

/// Mappings the process had before greenrt mapped any stack, measured once.
fn baseline_maps() -> usize {
    static BASE: OnceLock<usize> = OnceLock::new();
    *BASE.get_or_init(|| {
        std::fs::read("/proc/self/maps")
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    })
}

fn near_map_limit() -> bool {
    let stacks = MAPPED_STACKS.load(Ordering::Relaxed);
    baseline_maps() + 2 * (stacks + 1) + MAP_HEADROOM > max_map_count()
}

fn map_limit_error(size: usize, cause: Option<io::Error>) -> io::Error {
    let max = max_map_count();
    let stacks = MAPPED_STACKS.load(Ordering::Relaxed);
    let why = cause.map(|e| format!(" ({e})")).unwrap_or_default();
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "greenrt: cannot map a {} KiB stack for a new greenlet{why}: {stacks} greenlet stacks \
             are mapped and each costs 2 of the vm.max_map_count={max} memory mappings; raise the \
             limit (sysctl -w vm.max_map_count={}) or keep fewer greenlets alive at once",
            size / 1024,
            (stacks + 1) * 2 * 2 + baseline_maps() + MAP_HEADROOM,
        ),
    )
}

impl GuardedStack {
    /// Takes a stack of exactly `size` usable bytes from the pool or maps one.
    pub(crate) fn get(size: usize) -> io::Result<GuardedStack> {
        let page = page_size();
        let usable = size.div_ceil(page) * page;
        if let Some(s) = POOL.with(|p| {
            let mut p = p.borrow_mut();
            let i = p.iter().rposition(|s| s.len == usable + page)?;
            Some(p.swap_remove(i))
        }) {
            return Ok(s);
        }
        Self::map(usable)
    }

    /// Fails early (at spawn time) when no stack could be had now: the
    /// pool is empty and the mapping limit is reached.
    pub(crate) fn check_budget(size: usize) -> io::Result<()> {
        let pooled = POOL.try_with(|p| !p.borrow().is_empty()).unwrap_or(false);
        if pooled || !near_map_limit() {
            return Ok(());
        }
        Err(map_limit_error(size, None))
    }

    fn map(usable: usize) -> io::Result<GuardedStack> {
        let page = page_size();
        if near_map_limit() {
            return Err(map_limit_error(usable, None));
        }
        let len = usable + page;
        // SAFETY: an anonymous private mapping with no address hint; the
        // result is checked before use.
        let low = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if low == libc::MAP_FAILED {
            return Err(map_limit_error(usable, Some(io::Error::last_os_error())));
        }
        // SAFETY: the first page lies inside the mapping just created.
        if unsafe { libc::mprotect(low, page, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping exactly the region mapped above.
            unsafe { libc::munmap(low, len) };
            return Err(map_limit_error(usable, Some(e)));
        }
        MAPPED_STACKS.fetch_add(1, Ordering::Relaxed);
        Ok(GuardedStack { low: low as usize, len })
    }

    /// Returns the stack to this thread's pool, or unmaps it when the pool is
    /// full.
    pub(crate) fn release(self) {
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_LIMIT {
                p.push(self);
            }
        });
        // If the pool was full, or the thread is exiting, `self` was not
        // moved and is dropped (unmapped) here.
    }

    /// Address range of the guard page, for overflow reports.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.low, self.low + page_size())
    }
}

impl Drop for GuardedStack {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region this stack owns.
        unsafe { libc::munmap(self.low as *mut libc::c_void, self.len) };
        MAPPED_STACKS.fetch_sub(1, Ordering::Relaxed);
    }
}

// SAFETY: the mapping has a guard page at `low` and at least 16 KiB (the
// configured minimum) of usable memory above it; base and limit are page
// aligned and therefore aligned to STACK_ALIGNMENT.
unsafe impl Stack for GuardedStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.low + self.len).expect("stack base is non-null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.low).expect("stack limit is non-null")
    }
}

/// How many greenlet stacks are mapped in the process right now.
pub fn mapped_stacks() -> usize {
    MAPPED_STACKS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_released_stack() {
        let s = GuardedStack::get(64 * 1024).unwrap();
        let low = s.low;
        s.release();
        let t = GuardedStack::get(64 * 1024).unwrap();
        assert_eq!(t.low, low);
        assert_eq!(t.len, 64 * 1024 + page_size());
    }
}
