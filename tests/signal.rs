//! greenrt::signal: handlers run in greenlets, cancel restores the old
//! disposition, other signals are untouched.
//!
//! Signal dispositions are process-wide, so every test runs its body in a
//! child process (this test binary, re-run with only that test).

mod util;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenrt::signal;
use libc::c_int;

/// Runs `body` in a child process and checks that it passed there.
fn in_child(name: &str, body: impl FnOnce()) {
    if util::is_child() {
        body();
        return;
    }
    let out = util::run_child(name, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("1 passed"), "the child did not run the test:\n{stdout}");
}

/// Waits cooperatively (the hub runs meanwhile) until `cond` holds; false
/// after 5 s.
fn wait_for(cond: impl Fn() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        greenrt::sleep(Duration::from_millis(2));
    }
    true
}

fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() }
}

fn raise(sig: c_int) {
    // SAFETY: raising a signal that has a handler installed.
    assert_eq!(unsafe { libc::raise(sig) }, 0);
}

fn kill_self(sig: c_int) {
    // SAFETY: a process-directed signal to ourselves, with a handler installed.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

/// The current disposition of `sig`.
fn disposition(sig: c_int) -> Option<libc::sigaction> {
    // SAFETY: a query into a zeroed (valid) out-parameter.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(sig, std::ptr::null(), &mut sa) == 0).then_some(sa)
    }
}

/// Handler address, flags and the members of the mask.
type Summary = (usize, c_int, Vec<c_int>);

fn summary(sa: &libc::sigaction) -> Summary {
    // SAFETY: sigismember reads a valid sigset_t.
    let mask = (1..65)
        .filter(|&s| unsafe { libc::sigismember(&sa.sa_mask, s) } == 1)
        .collect();
    (sa.sa_sigaction, sa.sa_flags, mask)
}

fn all_dispositions() -> Vec<(c_int, Summary)> {
    (1..65)
        .filter_map(|s| disposition(s).map(|d| (s, summary(&d))))
        .collect()
}

#[test]
fn handler_runs_in_greenlet_on_signal() {
    in_child("handler_runs_in_greenlet_on_signal", || {
        // (greenlet id, is root, name, thread id)
        type Seen = Vec<(u64, bool, String, i32)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let s2 = seen.clone();
        let h = signal::handler(libc::SIGUSR1, move || {
            let g = greenrt::current();
            // A handler is a greenlet: it may block cooperatively.
            greenrt::sleep(Duration::from_millis(1));
            s2.lock().unwrap().push((g.id(), g.is_root(), g.name(), gettid()));
        })
        .unwrap();
        assert!(h.is_active());
        assert_eq!(h.signum(), libc::SIGUSR1);
        let me = greenrt::current();
        assert!(me.is_root());
        raise(libc::SIGUSR1);
        assert!(wait_for(|| seen.lock().unwrap().len() == 1), "the handler never ran");
        let (id, is_root, name, tid) = seen.lock().unwrap()[0].clone();
        assert!(!is_root, "ran in a root context");
        assert_ne!(id, me.id());
        assert!(name.starts_with("SIGUSR1 handler"), "{name}");
        assert!(name.contains("tests/signal.rs"), "{name}");
        // The main thread has no hub in a test binary: the installing
        // thread's hub is the signal hub.
        assert_eq!(tid, gettid());
        // A second delivery runs it again, in a new greenlet.
        kill_self(libc::SIGUSR1);
        assert!(
            wait_for(|| seen.lock().unwrap().len() == 2),
            "the second delivery was lost"
        );
        let ids: Vec<u64> = seen.lock().unwrap().iter().map(|s| s.0).collect();
        assert_ne!(ids[0], ids[1]);
        h.cancel();
        assert!(!h.is_active());
    });
}

#[test]
fn multiple_handlers_all_run() {
    in_child("multiple_handlers_all_run", || {
        let counts: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
        let order: Arc<Mutex<Vec<usize>>> = Arc::default();
        let handler = |sig, i: usize| {
            let (c, o) = (counts.clone(), order.clone());
            signal::handler(sig, move || {
                c[i].fetch_add(1, Ordering::SeqCst);
                o.lock().unwrap().push(i);
            })
            .unwrap()
        };
        let h0 = handler(libc::SIGUSR1, 0);
        let h1 = handler(libc::SIGUSR1, 1);
        // The handle is dropped at once: that does not cancel it.
        let _ = handler(libc::SIGUSR2, 2);
        let n = |i: usize| counts[i].load(Ordering::SeqCst);

        raise(libc::SIGUSR1);
        assert!(wait_for(|| n(0) == 1 && n(1) == 1));
        assert_eq!(*order.lock().unwrap(), [0, 1], "handlers run in install order");
        raise(libc::SIGUSR1);
        assert!(wait_for(|| n(0) == 2 && n(1) == 2));
        greenrt::sleep(Duration::from_millis(20));
        assert_eq!(n(2), 0, "the SIGUSR2 handler ran for SIGUSR1");

        kill_self(libc::SIGUSR2);
        assert!(wait_for(|| n(2) == 1));
        assert_eq!((n(0), n(1)), (2, 2));

        // Cancelling one leaves the other.
        h0.cancel();
        h0.cancel(); // idempotent
        raise(libc::SIGUSR1);
        assert!(wait_for(|| n(1) == 3));
        greenrt::sleep(Duration::from_millis(20));
        assert_eq!(n(0), 2, "a cancelled handler ran");

        raise(libc::SIGUSR2);
        assert!(wait_for(|| n(2) == 2), "dropping the handle removed the handler");
        h1.cancel();
    });
}

#[test]
fn handler_installed_from_another_thread_runs_on_signal_hub() {
    in_child("handler_installed_from_another_thread_runs_on_signal_hub", || {
        let tids: Arc<Mutex<Vec<(&'static str, i32)>>> = Arc::default();
        let t = tids.clone();
        let first = signal::handler(libc::SIGUSR1, move || t.lock().unwrap().push(("first", gettid()))).unwrap();
        let t = tids.clone();
        // A plain thread (no hub of its own) installs a second handler.
        let second = std::thread::spawn(move || {
            signal::handler(libc::SIGUSR2, move || t.lock().unwrap().push(("second", gettid()))).unwrap()
        })
        .join()
        .unwrap();
        raise(libc::SIGUSR2);
        raise(libc::SIGUSR1);
        assert!(wait_for(|| tids.lock().unwrap().len() == 2));
        let mut got = tids.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, [("first", gettid()), ("second", gettid())]);
        // The other thread's handle cancels from here.
        second.cancel();
        first.cancel();
        assert_eq!(summary(&disposition(libc::SIGUSR2).unwrap()).0, libc::SIG_DFL);
    });
}

extern "C" fn plain_handler(_: c_int) {}

#[test]
fn cancel_restores_previous_disposition() {
    in_child("cancel_restores_previous_disposition", || {
        // A handler the program installed itself, with a mask and flags.
        // SAFETY: installs a valid extern "C" handler with a built mask.
        let original = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = plain_handler as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaddset(&mut sa.sa_mask, libc::SIGTERM);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
            summary(&disposition(libc::SIGUSR1).unwrap())
        };
        assert_eq!(original.0, plain_handler as *const () as usize);
        assert_eq!(original.2, [libc::SIGTERM]);

        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let a = signal::handler(libc::SIGUSR1, move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let b = signal::handler(libc::SIGUSR1, || ()).unwrap();
        let during = summary(&disposition(libc::SIGUSR1).unwrap());
        assert_ne!(during.0, original.0, "greenrt did not install its handler");
        assert_ne!(during.0, libc::SIG_DFL);
        raise(libc::SIGUSR1);
        assert!(wait_for(|| ran.load(Ordering::SeqCst) == 1));

        a.cancel();
        assert_eq!(
            summary(&disposition(libc::SIGUSR1).unwrap()),
            during,
            "one handler is left"
        );
        b.cancel();
        assert_eq!(summary(&disposition(libc::SIGUSR1).unwrap()), original);
        b.cancel();
        assert_eq!(summary(&disposition(libc::SIGUSR1).unwrap()), original);

        // SIG_IGN (Rust programs ignore SIGPIPE) and SIG_DFL come back too.
        assert_eq!(summary(&disposition(libc::SIGPIPE).unwrap()).0, libc::SIG_IGN);
        assert_eq!(summary(&disposition(libc::SIGCHLD).unwrap()).0, libc::SIG_DFL);
        let p = signal::handler(libc::SIGPIPE, || ()).unwrap();
        let c = signal::handler(libc::SIGCHLD, || ()).unwrap();
        assert_ne!(summary(&disposition(libc::SIGPIPE).unwrap()).0, libc::SIG_IGN);
        assert_ne!(summary(&disposition(libc::SIGCHLD).unwrap()).0, libc::SIG_DFL);
        p.cancel();
        c.cancel();
        assert_eq!(summary(&disposition(libc::SIGPIPE).unwrap()).0, libc::SIG_IGN);
        assert_eq!(summary(&disposition(libc::SIGCHLD).unwrap()).0, libc::SIG_DFL);
    });
}

#[test]
fn program_handler_installed_later_is_kept_on_cancel() {
    in_child("program_handler_installed_later_is_kept_on_cancel", || {
        let h = signal::handler(libc::SIGUSR2, || ()).unwrap();
        // The program takes the signal over while greenrt's handler is in.
        // SAFETY: installs a valid extern "C" handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = plain_handler as *const () as libc::sighandler_t;
            assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
        }
        h.cancel();
        assert_eq!(
            summary(&disposition(libc::SIGUSR2).unwrap()).0,
            plain_handler as *const () as usize
        );
    });
}

#[test]
fn watcher_exits_after_last_cancel() {
    in_child("watcher_exits_after_last_cancel", || {
        assert_eq!(greenrt::hub::live_greenlets(), 0);
        let h = signal::handler(libc::SIGUSR1, || ()).unwrap();
        greenrt::yield_now();
        // The watcher greenlet runs while a handler is installed.
        assert_eq!(greenrt::hub::live_greenlets(), 1);
        h.cancel();
        assert!(
            wait_for(|| greenrt::hub::live_greenlets() == 0),
            "the watcher did not exit"
        );
        // With no watcher, a wait nothing can end is LoopExit again.
        let start = Instant::now();
        assert_eq!(greenrt::sync::Event::new().wait(), Err(greenrt::LoopExit));
        assert!(start.elapsed() < Duration::from_secs(1));
        // And a new handler starts a new watcher.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let h = signal::handler(libc::SIGUSR1, move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        raise(libc::SIGUSR1);
        assert!(wait_for(|| ran.load(Ordering::SeqCst) == 1));
        h.cancel();
    });
}

#[test]
fn uncatchable_signal_is_error() {
    in_child("uncatchable_signal_is_error", || {
        greenrt::yield_now(); // the hub installs its own fault handlers when it is created
        let before = all_dispositions();
        for sig in [libc::SIGKILL, libc::SIGSTOP, 0, 65, -3] {
            let e = signal::handler(sig, || ()).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "signal {sig}: {e}");
        }
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
            let e = signal::handler(sig, || ()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "signal {sig}: {e}");
            assert!(e.to_string().contains("fault"), "{e}");
        }
        // Nothing was installed: no dispositions changed, no watcher.
        assert_eq!(all_dispositions(), before);
        assert_eq!(greenrt::hub::live_greenlets(), 0);
    });
}

#[test]
fn other_signals_untouched() {
    in_child("other_signals_untouched", || {
        greenrt::yield_now(); // the hub installs its own fault handlers when it is created
        let before = all_dispositions();
        assert!(before.len() > 40, "could not read dispositions: {}", before.len());
        let a = signal::handler(libc::SIGUSR1, || ()).unwrap();
        let b = signal::handler(libc::SIGTERM, || ()).unwrap();
        let during = all_dispositions();
        assert_eq!(before.len(), during.len());
        for ((sig, was), (_, now)) in before.iter().zip(&during) {
            if *sig == libc::SIGUSR1 || *sig == libc::SIGTERM {
                assert_ne!(was, now, "signal {sig} was not installed");
            } else {
                assert_eq!(was, now, "signal {sig} changed");
            }
        }
        a.cancel();
        b.cancel();
        assert_eq!(all_dispositions(), before);
    });
}

#[test]
fn names_round_trip() {
    assert_eq!(signal::from_name("SIGUSR2"), Some(libc::SIGUSR2));
    assert_eq!(signal::from_name("usr2"), Some(libc::SIGUSR2));
    assert_eq!(signal::from_name("2"), Some(libc::SIGINT));
    assert_eq!(signal::from_name("SIGNOPE"), None);
    assert_eq!(signal::name(libc::SIGTERM), Some("SIGTERM"));
    assert_eq!(signal::name(40), None);
}

/// In the child of a fork, the forking thread is the main thread: the
/// handlers carry over, first to a worker thread's hub (the main thread
/// has none yet), then to the main thread's hub once it exists.
#[test]
fn handlers_move_to_main_hub_and_survive_fork() {
    in_child("handlers_move_to_main_hub_and_survive_fork", || {
        let tids: Arc<Mutex<Vec<i32>>> = Arc::default();
        let t = tids.clone();
        let h = signal::handler(libc::SIGUSR1, move || t.lock().unwrap().push(gettid())).unwrap();
        raise(libc::SIGUSR1);
        assert!(wait_for(|| tids.lock().unwrap().len() == 1));

        // SAFETY: the child only runs the closure below and then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| in_forked_child(&tids)));
            // SAFETY: ends the forked child without running the test harness on.
            unsafe { libc::_exit(if r.is_ok() { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "forked child failed: {status:#x}"
        );

        // The parent's handler still works here, and saw none of the
        // child's signals.
        greenrt::sleep(Duration::from_millis(20));
        assert_eq!(tids.lock().unwrap().len(), 1);
        raise(libc::SIGUSR1);
        assert!(wait_for(|| tids.lock().unwrap().len() == 2));
        assert_eq!(*tids.lock().unwrap(), [gettid(), gettid()]);
        h.cancel();
    });
}

fn in_forked_child(tids: &Arc<Mutex<Vec<i32>>>) {
    // SAFETY: no preconditions.
    let pid = unsafe { libc::getpid() };
    assert_eq!(gettid(), pid, "the forking thread is the child's main thread");
    tids.lock().unwrap().clear();
    // A worker thread creates the first hub of the child: it serves.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        greenrt::yield_now(); // creates this thread's hub
        ready_tx.send((gettid(), greenrt::hub::live_greenlets())).unwrap();
        while stop_rx.try_recv().is_err() {
            greenrt::sleep(Duration::from_millis(2));
        }
        greenrt::hub::live_greenlets()
    });
    let (worker_tid, worker_live) = ready_rx.recv().unwrap();
    assert_eq!(worker_live, 1, "the watcher did not start on the worker's hub");
    raise(libc::SIGUSR1);
    let end = Instant::now() + Duration::from_secs(5);
    while tids.lock().unwrap().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(2)); // no hub on this thread yet
    }
    assert_eq!(*tids.lock().unwrap(), [worker_tid]);
    // The main thread's hub appears: the handlers move there.
    greenrt::yield_now();
    assert_eq!(greenrt::hub::live_greenlets(), 1, "no watcher on the main hub");
    raise(libc::SIGUSR1);
    assert!(wait_for(|| tids.lock().unwrap().len() == 2));
    assert_eq!(*tids.lock().unwrap(), [worker_tid, pid]);
    stop_tx.send(()).unwrap();
    assert_eq!(worker.join().unwrap(), 0, "the retired watcher did not exit");
}
