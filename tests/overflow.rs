//! Stack overflow reports: each case runs in a child process (it dies).

mod util;

use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use greenrt::Builder;

/// No core files from the children that die on purpose.
fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 16]);
    if std::hint::black_box(n) == u64::MAX {
        return 0;
    }
    recurse(n + 1).wrapping_add(frame[3])
}

/// The current SIGSEGV handler address.
fn segv_handler() -> usize {
    // SAFETY: a query into a zeroed struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut sa);
        sa.sa_sigaction
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Spawns the greenlet "deep" with a 64 KiB stack that recurses forever.
fn overflow_deep_greenlet() {
    let g = Builder::new()
        .name("deep")
        .stack_size(64 * 1024)
        .spawn(|| recurse(0))
        .unwrap();
    let _ = g.join();
    println!("UNREACHABLE: the greenlet returned");
}

fn assert_overflow_report(out: &Output, line_of_spawn: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}: {err}",
        out.status
    );
    let reports: Vec<&str> = err.lines().filter(|l| l.contains("overflowed")).collect();
    assert_eq!(reports.len(), 1, "{err}");
    let r = reports[0];
    assert!(r.starts_with("greenrt: greenlet \"deep\" (id "), "{r}");
    assert!(r.contains(&format!(", spawned at {line_of_spawn}")), "{r}");
    assert!(r.contains(") overflowed its 64 KiB stack (fault at 0x"), "{r}");
    assert!(r.ends_with("its guard page); aborting"), "{r}");
    assert!(
        !err.contains("has overflowed its stack"),
        "std's thread report must not fire: {err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("UNREACHABLE"));
}

#[test]
fn overflow_message_names_greenlet() {
    if util::is_child() {
        no_core_dumps();
        overflow_deep_greenlet();
        return;
    }
    let out = util::run_child("overflow_message_names_greenlet", &[]);
    assert_overflow_report(&out, "tests/overflow.rs:");
}

#[test]
fn overflow_reported_on_foreign_thread_without_alt_stack() {
    if util::is_child() {
        no_core_dumps();
        extern "C" fn body(_: *mut libc::c_void) -> *mut libc::c_void {
            // SAFETY: querying this thread's alternate stack.
            let mut st: libc::stack_t = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            unsafe { libc::sigaltstack(std::ptr::null(), &mut st) };
            // glibc gives C threads none: greenrt must install one.
            println!("ALTSTACK_BEFORE_HUB={}", st.ss_flags & libc::SS_DISABLE == 0);
            overflow_deep_greenlet();
            std::ptr::null_mut()
        }
        // SAFETY: a plain pthread with default attributes, joined below.
        unsafe {
            let mut t: libc::pthread_t = std::mem::zeroed();
            assert_eq!(
                libc::pthread_create(&mut t, std::ptr::null(), body, std::ptr::null_mut()),
                0
            );
            libc::pthread_join(t, std::ptr::null_mut());
        }
        return;
    }
    let out = util::run_child("overflow_reported_on_foreign_thread_without_alt_stack", &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ALTSTACK_BEFORE_HUB=false"),
        "the C thread already had an alternate stack: the test proves nothing"
    );
    assert_overflow_report(&out, "tests/overflow.rs:");
}

#[test]
fn unnamed_greenlet_overflow_uses_default_name() {
    if util::is_child() {
        no_core_dumps();
        let g = Builder::new().stack_size(32 * 1024).spawn(|| recurse(0)).unwrap();
        println!("GREENLET_ID={}", g.id());
        let _ = g.join();
        return;
    }
    let out = util::run_child("unnamed_greenlet_overflow_uses_default_name", &[]);
    let err = stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .split("GREENLET_ID=")
        .nth(1)
        .and_then(|r| r.lines().next())
        .expect("child printed its id");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{err}");
    assert!(
        err.contains(&format!(
            "greenrt: greenlet \"Greenlet-{id}\" (id {id}, spawned at tests/overflow.rs:"
        )),
        "{err}"
    );
    assert!(err.contains("overflowed its 32 KiB stack"), "{err}");
}

#[test]
fn segfault_elsewhere_is_not_misreported() {
    if util::is_child() {
        no_core_dumps();
        let g = Builder::new()
            .name("wild")
            .spawn(|| {
                // SAFETY: deliberately not: address 8 is never mapped.
                unsafe { std::ptr::read_volatile(8 as *const u8) }
            })
            .unwrap();
        let _ = g.join();
        println!("UNREACHABLE");
        return;
    }
    let out = util::run_child("segfault_elsewhere_is_not_misreported", &[]);
    let err = stderr(&out);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "status {:?}: {err}",
        out.status
    );
    assert!(!err.contains("overflowed"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("UNREACHABLE"));
}

#[test]
fn thread_stack_overflow_still_reported_by_std() {
    if util::is_child() {
        no_core_dumps();
        let before = segv_handler();
        let t = std::thread::Builder::new()
            .name("plain".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                // A hub on this thread too, so greenrt's handler is the one
                // the kernel calls here.
                greenrt::spawn(|| ()).join().unwrap();
                println!("HANDLER_REPLACED={}", segv_handler() != before);
                recurse(0)
            })
            .unwrap();
        let _ = t.join();
        return;
    }
    let out = util::run_child("thread_stack_overflow_still_reported_by_std", &[]);
    let err = stderr(&out);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}: {err}",
        out.status
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("HANDLER_REPLACED=true"),
        "greenrt's handler was not in place, so this proves nothing about chaining"
    );
    // std's wording: "thread 'plain' (TID) has overflowed its stack".
    let line = err
        .lines()
        .find(|l| l.contains("has overflowed its stack"))
        .unwrap_or("");
    assert!(line.starts_with("thread 'plain'"), "{err}");
    assert!(!err.contains("greenrt: greenlet"), "{err}");
}
