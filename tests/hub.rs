//! The hub: fairness, LoopExit, cross-thread handles, fd waits, config.

mod util;

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use greenrt::{spawn, Error, HubHandle};

#[test]
fn waiting_on_nothing_is_loop_exit_not_hang() {
    // Two greenlets that join each other: nothing can ever wake either.
    let a: Rc<Cell<Option<greenrt::GreenletRef>>> = Rc::new(Cell::new(None));
    let a2 = a.clone();
    let waiter = spawn(move || {
        let other = a2.take().unwrap();
        other.join()
    });
    let blocked = spawn({
        let w = (*waiter).clone();
        move || w.join()
    });
    a.set(Some((*blocked).clone()));
    let start = Instant::now();
    assert_eq!(waiter.join(), Err(Error::WouldBlockForever));
    // Reported as soon as the hub saw it, not after some timeout.
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn sleep_zero_loop_does_not_starve_timers_or_io() {
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    let spinner = spawn(move || {
        let mut n = 0u64;
        while !s.get() {
            greenrt::yield_now();
            n += 1;
        }
        n
    });
    // Timer progress.
    let start = Instant::now();
    greenrt::sleep(Duration::from_millis(20));
    assert!(start.elapsed() < Duration::from_secs(1));
    // I/O progress.
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let reader = spawn(move || {
        greenrt::wait_readable(a.as_raw_fd(), None).unwrap();
        let mut buf = [0u8; 4];
        use std::io::Read;
        (&a).read(&mut buf).unwrap()
    });
    greenrt::yield_now();
    use std::io::Write;
    b.write_all(b"ping").unwrap();
    assert_eq!(reader.get(), Ok(4));
    stop.set(true);
    assert!(spinner.get().unwrap() > 0);
}

#[test]
fn fifo_scheduling_order() {
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let l = log.clone();
            spawn(move || {
                l.borrow_mut().push(i);
                greenrt::yield_now();
                l.borrow_mut().push(i + 10);
            })
        })
        .collect();
    greenrt::joinall(&gs, None).unwrap();
    assert_eq!(*log.borrow(), vec![0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
}

#[test]
fn handle_spawns_on_target_hub_from_another_thread() {
    let handle = HubHandle::current();
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let d = done.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        handle
            .spawn(move || {
                tx.send(std::thread::current().id()).unwrap();
                d.store(true, Ordering::SeqCst);
            })
            .unwrap();
    });
    // Main waits cooperatively; the handle keeps the hub from LoopExit.
    while !done.load(Ordering::SeqCst) {
        greenrt::sleep(Duration::from_millis(5));
    }
    assert_eq!(rx.recv().unwrap(), std::thread::current().id());
    t.join().unwrap();
}

#[test]
fn handle_to_exited_thread_reports_hub_gone() {
    let h = std::thread::spawn(HubHandle::current).join().unwrap();
    assert_eq!(h.spawn(|| ()), Err(greenrt::HubGone));
}

#[test]
fn each_thread_has_its_own_hub() {
    let ids: Vec<u64> = (0..4)
        .map(|_| std::thread::spawn(|| greenrt::current().id()))
        .map(|t| t.join().unwrap())
        .collect();
    let mut uniq = ids.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 4);
}

#[test]
fn wait_readable_times_out_and_cancel_wait_wakes_with_ebadf() {
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let e = greenrt::wait_readable(fd, Some(Duration::from_millis(20))).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    let waiter = spawn(move || greenrt::wait_readable(fd, None).map_err(|e| e.raw_os_error()));
    let writer = spawn(move || greenrt::wait_writable(fd, None).is_ok());
    greenrt::yield_now();
    assert!(writer.get().unwrap(), "a socket is writable at once");
    greenrt::cancel_wait(fd);
    assert_eq!(waiter.get().unwrap(), Err(Some(libc::EBADF)));
    drop(a);
}

#[test]
fn two_greenlets_wait_on_one_fd() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let gs: Vec<_> = (0..2)
        .map(|_| spawn(move || greenrt::wait_readable(fd, Some(Duration::from_secs(5))).is_ok()))
        .collect();
    greenrt::yield_now();
    use std::io::Write;
    b.write_all(b"x").unwrap();
    for g in &gs {
        assert_eq!(g.get(), Ok(true));
    }
}

#[test]
fn backend_follows_environment() {
    if util::is_child() {
        println!("BACKEND={}", greenrt::hub::backend());
        return;
    }
    for b in ["epoll", "poll"] {
        let out = util::run_child("backend_follows_environment", &[("GREENRT_BACKEND", b)]);
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("BACKEND={b}")));
    }
}

#[test]
fn bad_environment_values_are_clear_errors() {
    if util::is_child() {
        let _ = greenrt::spawn(|| ()).join();
        return;
    }
    let cases = [
        ("GREENRT_BACKEND", "kqueue", "accepted values: epoll, poll"),
        ("GREENRT_STACK_SIZE", "tiny", "accepted values: a size in bytes"),
        (
            "GREENRT_THREADPOOL_SIZE",
            "0",
            "accepted values: an integer from 1 to 1024",
        ),
        ("GREENRT_LOG", "loud", "accepted values: off, error, debug"),
    ];
    for (var, val, accepted) in cases {
        let out = util::run_child("bad_environment_values_are_clear_errors", &[(var, val)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={val}: {err}");
        assert!(err.contains(&format!("greenrt: invalid {var}=\"{val}\"")), "{err}");
        assert!(err.contains(accepted), "{err}");
    }
}

#[test]
fn map_count_limit_is_a_clear_spawn_error() {
    if util::is_child() {
        // Where vm.max_map_count was raised, use up all but ~40000 of the
        // mappings first, so the limit is reached quickly and surely.
        let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if max > 100_000 {
            let pages = max - 40_000;
            // SAFETY: a fresh anonymous mapping, then protection changes on
            // pages inside it; nothing reads or writes it.
            unsafe {
                let base = libc::mmap(
                    std::ptr::null_mut(),
                    pages * 4096,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                );
                assert_ne!(base, libc::MAP_FAILED);
                for i in (0..pages).step_by(2) {
                    libc::mprotect(base.cast::<u8>().add(i * 4096).cast(), 4096, libc::PROT_NONE);
                }
            }
        }
        // Keep greenlets alive until spawning fails.
        let mut gs = Vec::new();
        loop {
            match greenrt::Builder::new()
                .stack_size(16 * 1024)
                .spawn(|| greenrt::sleep(Duration::from_secs(60)))
            {
                Ok(g) => {
                    gs.push(g);
                    if gs.len() % 1000 == 0 {
                        greenrt::yield_now(); // start them: stacks get mapped
                    }
                }
                Err(e) => {
                    println!("SPAWN ERROR: {e}");
                    std::process::exit(0);
                }
            }
            if gs.len() > 5_000_000 {
                println!("no limit reached");
                std::process::exit(0);
            }
        }
    }
    let out = util::run_child("map_count_limit_is_a_clear_spawn_error", &[]);
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        so.contains("SPAWN ERROR: greenrt: cannot map a 16 KiB stack"),
        "{so} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(so.contains("vm.max_map_count"), "{so}");
}

#[test]
fn reused_fd_number_is_watched_after_close_without_cancel_wait() {
    // Wait on an fd, close it behind the hub's back, get the same number
    // for a new socket: waiting on the new one must still work.
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let _ = greenrt::wait_readable(fd, Some(Duration::from_millis(5)));
    drop(a);
    drop(_b);
    let (c, mut d) = UnixStream::pair().unwrap();
    assert!(
        c.as_raw_fd() == fd || d.as_raw_fd() == fd,
        "fd number not reused; test needs adjusting"
    );
    let (reader, mut writer) = if c.as_raw_fd() == fd {
        (c, d)
    } else {
        (std::mem::replace(&mut d, c), d)
    };
    let rfd = reader.as_raw_fd();
    let g = spawn(move || greenrt::wait_readable(rfd, Some(Duration::from_secs(5))).is_ok());
    greenrt::sleep(Duration::from_millis(10));
    use std::io::Write;
    writer.write_all(b"x").unwrap();
    assert_eq!(g.get(), Ok(true));
    drop(reader);
}
