//! Run info: the greenlet tree of every hub, what each greenlet waits on,
//! busy hubs, and the GREENRT_RUN_INFO_SIGNAL report.

mod util;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use greenrt::sync::{Event, Queue};
use greenrt::{Builder, GreenletState, HubInfo, RunInfo};

/// The column where a tree line's `+--- ` starts.
fn indent(line: &str) -> usize {
    line.find("+--- ")
        .unwrap_or_else(|| panic!("not a tree line: {line:?}"))
}

/// The index of the one line of `text` that contains `needle`.
fn line_of(lines: &[&str], needle: &str) -> usize {
    let found: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(needle)).collect();
    assert_eq!(
        found.len(),
        1,
        "{needle:?} should be on exactly one line of:\n{}",
        lines.join("\n")
    );
    found[0]
}

/// The caller's own hub in `info`.
fn own(info: &RunInfo) -> &HubInfo {
    info.hubs
        .iter()
        .find(|h| h.is_caller)
        .expect("the calling thread's hub is missing")
}

#[test]
fn run_info_lists_known_tree() {
    let ev = Rc::new(Event::new());
    let e2 = ev.clone();
    let parent = Builder::new()
        .name("tree-parent")
        .spawn(move || {
            let e3 = e2.clone();
            let a = Builder::new()
                .name("tree-child-a")
                .spawn(move || e3.wait().unwrap())
                .unwrap();
            let b = Builder::new()
                .name("tree-child-b")
                .spawn(|| greenrt::sleep(Duration::from_secs(30)))
                .unwrap();
            a.join().unwrap();
            b.kill();
        })
        .unwrap();
    greenrt::sleep(Duration::from_millis(20));

    let info = greenrt::run_info();
    let text = info.to_string();
    // The data.
    let hub = own(&info);
    let p = hub.find("tree-parent").unwrap_or_else(|| panic!("{text}"));
    let a = hub.find("tree-child-a").unwrap();
    let b = hub.find("tree-child-b").unwrap();
    assert_eq!(hub.greenlets[0].id, hub.root_id);
    assert!(hub.greenlets[0].is_root);
    assert_eq!(hub.greenlets[0].state, GreenletState::Running);
    assert_eq!(hub.live, 3);
    assert_eq!(p.parent, hub.root_id);
    assert_eq!((a.parent, b.parent), (p.id, p.id));
    assert_eq!(p.id, parent.id());
    for g in [p, a, b] {
        assert_eq!(g.state, GreenletState::Parked, "{g:?}");
        assert!(
            g.spawn_site.as_deref().unwrap().starts_with("tests/run_info.rs:"),
            "{g:?}"
        );
        assert!(
            g.age >= Duration::from_millis(15) && g.age < Duration::from_secs(10),
            "{g:?}"
        );
    }
    assert_eq!(p.waiting_on, "join");
    assert_eq!(a.waiting_on, "Event.wait");
    assert_eq!(b.waiting_on, "sleep");

    // The tree.
    let lines: Vec<&str> = text.lines().collect();
    let header = line_of(&lines, "calling thread");
    assert!(lines[header].starts_with("hub on thread "), "{text}");
    let root = line_of(&lines, &format!("main (id {}, thread root) running", hub.root_id));
    let pl = line_of(&lines, "tree-parent (id");
    let al = line_of(&lines, "tree-child-a (id");
    let bl = line_of(&lines, "tree-child-b (id");
    assert!(header < root && root < pl && pl < al && al < bl, "{text}");
    assert_eq!(indent(lines[pl]), 0, "{text}");
    assert!(indent(lines[al]) > indent(lines[pl]), "{text}");
    assert_eq!(indent(lines[al]), indent(lines[bl]), "{text}");
    assert!(
        lines[pl].contains("parked on join, spawned at tests/run_info.rs:"),
        "{text}"
    );
    assert!(
        lines[al].contains("parked on Event.wait, spawned at tests/run_info.rs:"),
        "{text}"
    );
    assert!(
        lines[bl].contains("parked on sleep, spawned at tests/run_info.rs:"),
        "{text}"
    );

    ev.set();
    parent.join().unwrap();
    let after = greenrt::run_info();
    assert!(after.find("tree-parent").is_none(), "{after}");
    assert!(own(&after).find("tree-child-b").is_none(), "{after}");
    assert_eq!(own(&after).live, 0);
}

#[test]
fn orphan_hangs_under_root() {
    let parent = Builder::new()
        .name("orphan-parent")
        .spawn(|| {
            Builder::new()
                .name("orphan-child")
                .spawn(|| greenrt::sleep(Duration::from_secs(30)))
                .unwrap()
        })
        .unwrap();
    let child = parent.get().unwrap();
    greenrt::yield_now();
    let info = greenrt::run_info();
    let text = info.to_string();
    let c = own(&info).find("orphan-child").unwrap();
    assert_eq!(c.parent, parent.id());
    assert!(own(&info).find("orphan-parent").is_none());
    let lines: Vec<&str> = text.lines().collect();
    let cl = line_of(&lines, "orphan-child (id");
    assert_eq!(indent(lines[cl]), 0, "{text}");
    assert!(
        lines[cl].ends_with(&format!("(parent {} finished)", parent.id())),
        "{text}"
    );
    child.kill();
}

#[test]
fn waiting_on_labels() {
    let (r, _w) = UnixStream::pair().unwrap();
    let fd = r.as_raw_fd();
    let q: Rc<Queue<i32>> = Rc::new(Queue::new());
    let q2 = q.clone();
    let mut gs = vec![
        Builder::new()
            .name("w-fd")
            .spawn(move || {
                let _ = greenrt::wait_readable(fd, None);
            })
            .unwrap(),
        Builder::new()
            .name("w-queue")
            .spawn(move || {
                let _ = q2.get();
            })
            .unwrap(),
        Builder::new()
            .name("w-thread")
            .spawn(|| {
                let _ = greenrt::threadpool::default_pool().apply(|| std::thread::sleep(Duration::from_millis(300)));
            })
            .unwrap(),
        Builder::new()
            .name("w-sleep")
            .spawn(|| greenrt::sleep(Duration::from_secs(30)))
            .unwrap(),
    ];
    let sleeper = gs[3].clone();
    gs.push(
        Builder::new()
            .name("w-join")
            .spawn(move || {
                let _ = sleeper.join();
            })
            .unwrap(),
    );
    greenrt::sleep(Duration::from_millis(30));
    let info = greenrt::run_info();
    let hub = own(&info);
    let label = |n: &str| {
        hub.find(n)
            .unwrap_or_else(|| panic!("{n} missing:\n{info}"))
            .waiting_on
            .clone()
    };
    assert_eq!(label("w-fd"), format!("fd {fd} (read)"));
    assert_eq!(label("w-queue"), "Queue.get");
    assert_eq!(label("w-thread"), "another thread");
    assert_eq!(label("w-sleep"), "sleep");
    assert_eq!(label("w-join"), "join");
    assert_eq!(hub.greenlets[0].waiting_on, "-", "the caller runs");
    greenrt::killall(&gs, None).unwrap();
}

#[test]
fn run_info_covers_other_threads() {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let s = stop.clone();
    let t = std::thread::Builder::new()
        .name("ri-worker".into())
        .spawn(move || {
            let g = Builder::new()
                .name("ri-remote-sleeper")
                .spawn(|| greenrt::sleep(Duration::from_secs(30)))
                .unwrap();
            greenrt::sleep(Duration::from_millis(5));
            ready_tx.send(()).unwrap();
            while !s.load(Ordering::SeqCst) {
                greenrt::sleep(Duration::from_millis(5));
            }
            g.kill();
        })
        .unwrap();
    ready_rx.recv().unwrap();

    let info = greenrt::run_info();
    let text = info.to_string();
    let (hub, g) = info.find("ri-remote-sleeper").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(hub.thread_name, "ri-worker");
    assert!(!hub.is_caller && !hub.is_main_thread);
    assert!(hub.busy.is_none(), "{text}");
    assert_eq!(hub.live, 1, "the snapshot greenlet must not be listed:\n{text}");
    assert_eq!(g.state, GreenletState::Parked);
    assert_eq!(g.waiting_on, "sleep");
    assert_eq!(g.parent, hub.root_id);
    let lines: Vec<&str> = text.lines().collect();
    let hl = line_of(&lines, "hub on thread \"ri-worker\"");
    let gl = line_of(&lines, "ri-remote-sleeper (id");
    assert!(hl < gl, "{text}");

    // From a thread without a hub: the same, and no hub is created there.
    let from_plain = std::thread::spawn(greenrt::run_info).join().unwrap();
    assert!(from_plain.hubs.iter().all(|h| !h.is_caller), "{from_plain}");
    assert!(from_plain.find("ri-remote-sleeper").is_some(), "{from_plain}");

    stop.store(true, Ordering::SeqCst);
    t.join().unwrap();
}

/// Starts a thread whose hub has a named sleeping greenlet and then stops
/// switching for `busy`: its root spins, or a greenlet named `hog` does.
fn busy_thread(name: &str, in_greenlet: bool, busy: Duration) -> std::thread::JoinHandle<()> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let t = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let sleeper = Builder::new()
                .name("busy-sleeper")
                .spawn(|| greenrt::sleep(Duration::from_secs(30)))
                .unwrap();
            greenrt::sleep(Duration::from_millis(5));
            let spin = move || {
                let end = Instant::now() + busy;
                while Instant::now() < end {
                    std::hint::spin_loop();
                }
            };
            if in_greenlet {
                let hog = Builder::new().name("hog").spawn(spin).unwrap();
                ready_tx.send(()).unwrap();
                hog.join().unwrap();
            } else {
                ready_tx.send(()).unwrap();
                spin();
            }
            sleeper.kill();
        })
        .unwrap();
    ready_rx.recv().unwrap();
    t
}

#[test]
fn busy_hub_reported_not_hung() {
    let t = busy_thread("ri-busy-root", false, Duration::from_secs(1));
    let start = Instant::now();
    let info = greenrt::run_info();
    let took = start.elapsed();
    let text = info.to_string();
    assert!(took < Duration::from_millis(500), "run_info took {took:?}");
    assert!(
        took >= Duration::from_millis(150),
        "it did not wait for the busy hub: {took:?}"
    );
    let hub = info
        .hubs
        .iter()
        .find(|h| h.thread_name == "ri-busy-root")
        .unwrap_or_else(|| panic!("{text}"));
    let busy = hub
        .busy
        .as_ref()
        .unwrap_or_else(|| panic!("not reported busy:\n{text}"));
    assert_eq!(busy.running, hub.root_id);
    assert_eq!(busy.running_site, None);
    assert!(busy.named.iter().any(|(_, n)| n == "busy-sleeper"), "{busy:?}");
    assert_eq!(hub.live, 1);
    assert!(hub.greenlets.is_empty());
    assert!(
        text.contains("hub on thread \"ri-busy-root\"") && text.contains("is busy: no snapshot"),
        "{text}"
    );
    assert!(text.contains("running: the thread's root"), "{text}");
    t.join().unwrap();
}

#[test]
fn busy_greenlet_is_named() {
    let t = busy_thread("ri-busy-greenlet", true, Duration::from_secs(1));
    greenrt::sleep(Duration::from_millis(20)); // let the hog start
    let info = greenrt::run_info();
    let text = info.to_string();
    let hub = info
        .hubs
        .iter()
        .find(|h| h.thread_name == "ri-busy-greenlet")
        .unwrap_or_else(|| panic!("{text}"));
    let busy = hub
        .busy
        .as_ref()
        .unwrap_or_else(|| panic!("not reported busy:\n{text}"));
    assert_eq!(busy.running_name.as_deref(), Some("hog"));
    assert_ne!(busy.running, hub.root_id);
    assert!(
        busy.running_site.as_deref().unwrap().starts_with("tests/run_info.rs:"),
        "{busy:?}"
    );
    assert!(text.contains("running: greenlet hog (id"), "{text}");
    t.join().unwrap();
}

#[test]
fn run_info_signal_prints_tree() {
    if util::is_child() {
        let g = Builder::new()
            .name("sig-tree-sleeper")
            .spawn(|| greenrt::sleep(Duration::from_secs(30)))
            .unwrap();
        greenrt::sleep(Duration::from_millis(10));
        // SAFETY: greenrt installed a handler for SIGUSR2 at hub creation.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
        greenrt::sleep(Duration::from_millis(300));
        g.kill();
        return;
    }
    let out = util::run_child("run_info_signal_prints_tree", &[("GREENRT_RUN_INFO_SIGNAL", "SIGUSR2")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert_eq!(stderr.matches("greenrt run info (pid").count(), 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let sl = line_of(&lines, "sig-tree-sleeper (id");
    assert!(
        lines[sl].contains("parked on sleep, spawned at tests/run_info.rs:"),
        "{stderr}"
    );
    let wl = line_of(&lines, "greenrt-signal-watcher (id");
    assert!(lines[wl].contains("parked on fd "), "{stderr}");
    assert!(stderr.contains("SIGUSR2 handler (installed at"), "{stderr}");
}

#[test]
fn run_info_signal_is_off_by_default() {
    if util::is_child() {
        let watcher = std::env::var("EXPECT_WATCHER").unwrap() == "1";
        greenrt::yield_now(); // creates the hub
        assert_eq!(greenrt::hub::live_greenlets(), usize::from(watcher));
        // SAFETY: a query into a zeroed out-parameter.
        let sa = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGUSR2, std::ptr::null(), &mut sa), 0);
            sa
        };
        assert_eq!(sa.sa_sigaction == libc::SIG_DFL, !watcher);
        return;
    }
    for (env, watcher) in [(None, "0"), (Some("off"), "0"), (Some("USR2"), "1")] {
        let mut vars = vec![("EXPECT_WATCHER", watcher)];
        if let Some(v) = env {
            vars.push(("GREENRT_RUN_INFO_SIGNAL", v));
        }
        let out = util::run_child("run_info_signal_is_off_by_default", &vars);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{env:?}: {stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
}

#[test]
fn bad_run_info_signal_value_is_error() {
    if util::is_child() {
        greenrt::yield_now(); // the first use reads the configuration
        return;
    }
    for bad in ["SIGFOO", "SIGKILL", "0"] {
        let out = util::run_child(
            "bad_run_info_signal_value_is_error",
            &[("GREENRT_RUN_INFO_SIGNAL", bad)],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "greenrt: invalid GREENRT_RUN_INFO_SIGNAL=\"{bad}\"; accepted values:"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("SIGUSR2"), "{stderr}");
    }
}
