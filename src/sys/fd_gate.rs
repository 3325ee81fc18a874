//! The runtime's fd changes kept apart from the program's.
//!
//! The runtime changes the program's fd table in steps: creating a runtime
//! fd takes the lowest free number (`epoll_create1`, `eventfd`,
//! `pidfd_open`, ...), which [`super::fds`] then duplicates to a high
//! number before closing the low one; moving one out of the program's way
//! allocates a new number, then records it; closing one frees a number.
//! While a number is being allocated, a program thread's `dup2` onto it
//! fails with `EBUSY` (the kernel's answer for a slot reserved but not yet
//! filled); one that lands just after the allocation silently replaces the
//! runtime's brand-new fd; and a `close` or `dup2` of a number the runtime
//! is giving up sees it half-owned. Without the runtime no other thread
//! touches those numbers, so the program never sees any of it.
//!
//! The gate makes runtime changes (create, move, close) and program
//! changes (`dup2`/`dup3`, `close`/`dup` of a number the runtime owns,
//! `close_range`) exclusive: each side announces itself, then looks for
//! the other (Dekker's protocol on two counters, sequentially consistent,
//! so at least one of two racing sides sees the other). A program change
//! waits for the runtime changes in flight to end; a runtime change that
//! sees a program change in flight withdraws and waits for it, so the
//! program's calls go first.
//!
//! Every wait is bounded by [`PATIENCE`] (a thread descheduled inside a
//! change on a loaded machine is the longest legitimate case), and a
//! thread never waits for itself: a signal handler that changes an fd
//! while its own thread was inside a change (or the reverse) goes straight
//! on.
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runtime fd changes in flight, in every thread.
static RUNTIME_CHANGES: AtomicUsize = AtomicUsize::new(0);
/// Program fd changes in flight, in every thread.
static PROGRAM_CHANGES: AtomicUsize = AtomicUsize::new(0);

/// The longest a side waits for the other.
const PATIENCE: Duration = Duration::from_millis(200);

std::thread_local! {
    /// Runtime changes this thread is inside (they nest: creating an fd moves it).
    static RUNTIME_CHANGES_HERE: Cell<u32> = const { Cell::new(0) };
    /// Program changes this thread is inside.
    static PROGRAM_CHANGES_HERE: Cell<u32> = const { Cell::new(0) };
}

/// Spins (yielding the CPU) while `busy` says so, at most [`PATIENCE`].
fn wait_while(busy: impl Fn() -> bool) {
    let mut start = None;
    while busy() {
        let since = *start.get_or_insert_with(Instant::now);
        if since.elapsed() > PATIENCE {
            return;
        }
        std::thread::yield_now();
    }
}

/// Runs `change`, which allocates or frees runtime fd numbers (creates,
/// moves or closes a runtime fd), while no program change is in flight.
pub(crate) fn runtime_change<R>(change: impl FnOnce() -> R) -> R {
    let depth = RUNTIME_CHANGES_HERE.with(|d| d.replace(d.get() + 1));
    if depth == 0 {
        loop {
            RUNTIME_CHANGES.fetch_add(1, Ordering::SeqCst);
            if PROGRAM_CHANGES.load(Ordering::SeqCst) == 0 || PROGRAM_CHANGES_HERE.with(Cell::get) > 0 {
                break;
            }
            // Withdraw so the program change can go, then try again.
            RUNTIME_CHANGES.fetch_sub(1, Ordering::SeqCst);
            let started = Instant::now();
            wait_while(|| PROGRAM_CHANGES.load(Ordering::SeqCst) != 0);
            if started.elapsed() > PATIENCE {
                RUNTIME_CHANGES.fetch_add(1, Ordering::SeqCst);
                break;
            }
        }
    }
    let r = change();
    if depth == 0 {
        RUNTIME_CHANGES.fetch_sub(1, Ordering::SeqCst);
    }
    RUNTIME_CHANGES_HERE.with(|d| d.set(depth));
    r
}

/// Announces a program change of fd numbers the runtime may hold and
/// waits until no runtime change is in flight; pair with
/// [`end_program_change`].
pub fn begin_program_change() {
    PROGRAM_CHANGES_HERE.with(|d| d.set(d.get() + 1));
    PROGRAM_CHANGES.fetch_add(1, Ordering::SeqCst);
    if RUNTIME_CHANGES_HERE.with(Cell::get) == 0 {
        wait_while(|| RUNTIME_CHANGES.load(Ordering::SeqCst) != 0);
    }
}

/// Ends what [`begin_program_change`] began.
pub fn end_program_change() {
    PROGRAM_CHANGES.fetch_sub(1, Ordering::SeqCst);
    PROGRAM_CHANGES_HERE.with(|d| d.set(d.get().saturating_sub(1)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    /// The gate is process-wide: its tests must not see each other.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_program_change_waits_for_a_runtime_change_in_flight() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let inside = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (i, d) = (inside.clone(), done.clone());
        let creator = std::thread::spawn(move || {
            runtime_change(|| {
                i.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                d.store(true, Ordering::SeqCst);
            })
        });
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        begin_program_change();
        assert!(
            done.load(Ordering::SeqCst),
            "the program change ran inside the runtime change"
        );
        end_program_change();
        creator.join().unwrap();
    }

    #[test]
    fn a_runtime_change_waits_for_a_program_change_in_flight() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        begin_program_change();
        let ended = Arc::new(AtomicBool::new(false));
        let e = ended.clone();
        let creator = std::thread::spawn(move || runtime_change(|| e.load(Ordering::SeqCst)));
        std::thread::sleep(Duration::from_millis(50));
        ended.store(true, Ordering::SeqCst);
        end_program_change();
        assert!(
            creator.join().unwrap(),
            "the runtime change ran inside the program change"
        );
    }

    #[test]
    fn a_thread_never_waits_for_itself() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        runtime_change(|| {
            begin_program_change();
            end_program_change();
            runtime_change(|| ());
        });
        begin_program_change();
        runtime_change(|| ());
        end_program_change();
        assert!(started.elapsed() < PATIENCE);
    }
}
