//! greenrt::os: fork, cooperative waitpid, cooperative read/write on pipes.
//!
//! The fork tests re-run this binary with only that test (`util::run_child`)
//! and fork there, so that no other test thread exists at the fork.

mod util;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::os::{self, ForkResult};

/// Reads `fd` (blocking) until end of file.
fn read_to_end(fd: RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match os::read(fd, &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// A blocking pipe (plain `pipe2(O_CLOEXEC)`, like a program's own).
fn blocking_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two fds.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two new fds we own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Waits (cooperatively) at most 20 s for `pid`; kills it and fails the
/// test if it does not exit, so a hung child fails instead of hanging.
fn reap(pid: libc::pid_t) -> libc::c_int {
    match os::waitpid_timeout(pid, 0, Duration::from_secs(20)).unwrap() {
        Some((p, status)) => {
            assert_eq!(p, pid);
            status
        }
        None => {
            // SAFETY: pid is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = os::waitpid(pid, 0);
            panic!("child {pid} did not exit within 20 s");
        }
    }
}

fn exit_code(status: libc::c_int) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

/// Runs `name` alone in a fresh copy of this binary; it must pass and
/// print its marker (so a test that silently did nothing fails).
fn in_child_process(name: &str) {
    let out = util::run_child(name, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed in its own process: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("MARKER {name} done")),
        "{name} did not run to its end:\n{stdout}\n{stderr}"
    );
}

fn marker(name: &str) {
    println!("MARKER {name} done");
}

// The tests reap these pids with os::waitpid, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn spawn_std(args: &[&str]) -> libc::pid_t {
    let child = std::process::Command::new(args[0]).args(&args[1..]).spawn().unwrap();
    // std's Child does not reap when dropped: the pid is ours to wait for.
    child.id() as libc::pid_t
}

#[test]
fn fork_child_runs_own_hub_and_exits_cleanly() {
    if !util::is_child() {
        return in_child_process("fork_child_runs_own_hub_and_exits_cleanly");
    }
    // The parent uses its hub and default pool before the fork, so the
    // child inherits a hub with state and a pool with a live worker.
    let warm = greenrt::spawn(|| greenrt::sleep(Duration::from_millis(1)));
    warm.join().unwrap();
    assert_eq!(greenrt::threadpool::default_pool().apply(|| 1), Ok(1));
    let parent_pool = greenrt::threadpool::default_pool();

    let (r, w) = blocking_pipe();
    match os::fork().unwrap() {
        ForkResult::Child => {
            drop(r);
            let mut report = String::new();
            let switches = greenrt::hub::switch_count();
            let start = Instant::now();
            let gs: Vec<_> = (0..3)
                .map(|i| {
                    greenrt::spawn(move || {
                        greenrt::sleep(Duration::from_millis(30));
                        i * 10
                    })
                })
                .collect();
            let vals: Vec<i32> = gs.iter().map(|g| g.get().unwrap()).collect();
            let took = start.elapsed();
            report.push_str(&format!("vals={vals:?};"));
            report.push_str(&format!("together={};", took < Duration::from_millis(200)));
            report.push_str(&format!("switched={};", greenrt::hub::switch_count() > switches));
            // The inherited pool's worker does not exist here: a fresh pool.
            let pool = greenrt::threadpool::default_pool();
            report.push_str(&format!("fresh_pool={};", pool != parent_pool));
            let v = pool.spawn(|| 42).get_timeout(Duration::from_secs(5));
            report.push_str(&format!("pool={v:?};"));
            os::write_all(w.as_raw_fd(), report.as_bytes()).unwrap();
            std::process::exit(0);
        }
        ForkResult::Parent { child } => {
            drop(w);
            let report = String::from_utf8(read_to_end(r.as_raw_fd())).unwrap();
            let status = reap(child);
            assert_eq!(
                exit_code(status),
                Some(0),
                "child status {status:#x}, report {report:?}"
            );
            assert_eq!(
                report,
                "vals=[0, 10, 20];together=true;switched=true;fresh_pool=true;pool=Ok(42);"
            );
            // The parent's own pool still works.
            assert_eq!(greenrt::threadpool::default_pool().apply(|| 2), Ok(2));
        }
    }
    marker("fork_child_runs_own_hub_and_exits_cleanly");
}

#[test]
fn parent_greenlets_do_not_run_in_child() {
    if !util::is_child() {
        return in_child_process("parent_greenlets_do_not_run_in_child");
    }
    let (r, w) = blocking_pipe();
    let wfd = w.as_raw_fd();
    let write_tag = move |tag: &str| {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        os::write_all(wfd, format!("{tag}{pid};").as_bytes()).unwrap();
    };
    // At the fork: one greenlet parked in a sleep, one parked on an fd,
    // and one spawned but not started yet. None of them may run in the
    // child. (`early` runs before the fork, in the parent.)
    let early = greenrt::spawn(move || write_tag("N"));
    let sleeper = greenrt::spawn(move || {
        greenrt::sleep(Duration::from_millis(50));
        write_tag("S");
    });
    let (er, ew) = os::pipe().unwrap();
    let erfd = er.as_raw_fd();
    let fd_waiter = greenrt::spawn(move || {
        let mut b = [0u8; 1];
        os::read(erfd, &mut b).unwrap();
        write_tag("F");
    });
    greenrt::yield_now(); // runs `early`; parks the sleeper and the fd waiter
    assert!(early.dead());
    let late = greenrt::spawn(move || write_tag("L"));

    // SAFETY: getpid has no preconditions.
    let parent_pid = unsafe { libc::getpid() };
    match os::fork().unwrap() {
        ForkResult::Child => {
            // Run the child's hub for a while: if the parent's greenlets had
            // come along, the sleeper's 50 ms and the late one would fire.
            let ticker = greenrt::spawn(|| {
                for _ in 0..10 {
                    greenrt::sleep(Duration::from_millis(10));
                }
            });
            ticker.join().unwrap();
            greenrt::sleep(Duration::from_millis(100));
            os::write_all(ew.as_raw_fd(), b"x").unwrap(); // would wake fd_waiter
            greenrt::sleep(Duration::from_millis(50));
            os::write_all(wfd, b"child-done;").unwrap();
            // SAFETY: _exit ends the child without running the parent's
            // test harness teardown.
            unsafe { libc::_exit(0) };
        }
        ForkResult::Parent { child } => {
            let status = reap(child);
            assert_eq!(exit_code(status), Some(0));
            greenrt::joinall(&[sleeper.clone(), late.clone()], None).unwrap();
            os::write_all(ew.as_raw_fd(), b"y").unwrap();
            fd_waiter.join().unwrap();
            drop(w);
            let report = String::from_utf8(read_to_end(r.as_raw_fd())).unwrap();
            let mut parts: Vec<&str> = report.split(';').filter(|s| !s.is_empty()).collect();
            parts.sort();
            let mut want = vec![
                format!("F{parent_pid}"),
                format!("L{parent_pid}"),
                format!("N{parent_pid}"),
                format!("S{parent_pid}"),
                "child-done".to_string(),
            ];
            want.sort();
            assert_eq!(parts, want, "report {report:?}");
        }
    }
    greenrt::cancel_wait(er.as_raw_fd());
    marker("parent_greenlets_do_not_run_in_child");
}

#[test]
fn fork_inside_greenlet() {
    if !util::is_child() {
        return in_child_process("fork_inside_greenlet");
    }
    // SAFETY: getpid has no preconditions.
    let parent_pid = unsafe { libc::getpid() };
    let (r, w) = blocking_pipe();
    let wfd = w.as_raw_fd();
    let forker = greenrt::spawn(move || match os::fork().unwrap() {
        ForkResult::Child => {
            // Carries on as the child's main context, with its own hub.
            let helper = greenrt::spawn(move || {
                greenrt::sleep(Duration::from_millis(20));
                os::write_all(wfd, b"C1;").unwrap();
                7
            });
            let v = helper.get().unwrap();
            greenrt::sleep(Duration::from_millis(10));
            os::write_all(wfd, format!("C2={v};").as_bytes()).unwrap();
            0 // the child process exits (status 0) when this returns
        }
        ForkResult::Parent { child } => child,
    });
    let child = forker.get().unwrap();
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != parent_pid {
        // The child must never get here (into the parent's flow).
        os::write_all(wfd, b"LEAKED;").unwrap();
        // SAFETY: ends the stray child at once.
        unsafe { libc::_exit(7) };
    }
    assert!(child > 0);
    let status = reap(child);
    drop(w);
    let report = String::from_utf8(read_to_end(r.as_raw_fd())).unwrap();
    assert_eq!(report, "C1;C2=7;");
    assert_eq!(exit_code(status), Some(0), "status {status:#x}");
    marker("fork_inside_greenlet");
}

#[test]
fn waitpid_cooperative() {
    let pid = spawn_std(&["sleep", "0.3"]);
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = greenrt::spawn(move || loop {
        greenrt::sleep(Duration::from_millis(10));
        t2.set(t2.get() + 1);
    });
    let switches = greenrt::hub::switch_count();
    let start = Instant::now();
    let (p, status) = os::waitpid(pid, 0).unwrap();
    let took = start.elapsed();
    ticker.kill();
    assert_eq!(p, pid);
    assert_eq!(exit_code(status), Some(0));
    assert!(took >= Duration::from_millis(250), "returned early: {took:?}");
    assert!(
        ticks.get() >= 10,
        "the ticker ran only {} times while waitpid waited",
        ticks.get()
    );
    assert!(greenrt::hub::switch_count() - switches >= 10);
}

#[test]
fn waitpid_wnohang_and_timeout() {
    let pid = spawn_std(&["sleep", "5"]);
    assert_eq!(os::waitpid(pid, libc::WNOHANG).unwrap(), (0, 0));
    let start = Instant::now();
    assert_eq!(os::waitpid_timeout(pid, 0, Duration::from_millis(50)).unwrap(), None);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(50) && took < Duration::from_secs(1),
        "{took:?}"
    );
    // SAFETY: pid is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let (p, status) = os::waitpid_timeout(pid, 0, Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(p, pid);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    // Reaped: nothing left to wait for.
    let e = os::waitpid(pid, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECHILD));
}

#[test]
fn waitpid_interrupted_by_timeout_leaves_child_waitable() {
    let pid = spawn_std(&["sleep", "0.2"]);
    let r = greenrt::with_timeout(Duration::from_millis(30), || os::waitpid(pid, 0));
    assert_eq!(r.map(|_| ()), Err(greenrt::Elapsed));
    let (p, status) = os::waitpid(pid, 0).unwrap();
    assert_eq!((p, exit_code(status)), (pid, Some(0)));
}

#[test]
fn waitpid_does_not_steal_other_status() {
    let quick = spawn_std(&["sh", "-c", "exit 5"]);
    let slow = spawn_std(&["sleep", "0.2"]);
    // Make sure `quick` has exited (a zombie) before we wait for `slow`,
    // without reaping it (WNOWAIT).
    // SAFETY: an all-zero siginfo_t is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our child, with a live siginfo_t.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            quick as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(r, 0);
    let (p, status) = os::waitpid(slow, 0).unwrap();
    assert_eq!((p, exit_code(status)), (slow, Some(0)));
    // `quick`'s status is still there for whoever asks for it.
    let mut st = 0;
    // SAFETY: plain waitpid on our child.
    let r = unsafe { libc::waitpid(quick, &mut st, libc::WNOHANG) };
    assert_eq!(r, quick, "the other child's status was taken");
    assert_eq!(exit_code(st), Some(5));
}

#[test]
fn waitpid_any_child_polls_without_blocking_the_hub() {
    if !util::is_child() {
        // Waiting for "any child" must not run beside other tests' children.
        return in_child_process("waitpid_any_child_polls_without_blocking_the_hub");
    }
    let pid = spawn_std(&["sleep", "0.2"]);
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = greenrt::spawn(move || loop {
        greenrt::sleep(Duration::from_millis(10));
        t2.set(t2.get() + 1);
    });
    let (p, status) = os::waitpid(-1, 0).unwrap();
    ticker.kill();
    assert_eq!((p, exit_code(status)), (pid, Some(0)));
    assert!(ticks.get() >= 10, "ticker ran {} times", ticks.get());
    let e = os::waitpid(-1, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECHILD));
    marker("waitpid_any_child_polls_without_blocking_the_hub");
}

#[test]
fn pipe_read_write_cooperative() {
    const N: usize = 1 << 20;
    let (r, w) = os::pipe().unwrap();
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    let data: Vec<u8> = (0..N).map(|i| (i * 7 % 251) as u8).collect();
    let expect = data.clone();
    let switches = greenrt::hub::switch_count();
    // 1 MiB through a 64 KiB pipe: writer and reader must take turns.
    let writer = greenrt::spawn(move || {
        os::write_all(wfd, &data).unwrap();
        greenrt::cancel_wait(wfd);
        drop(w);
    });
    let reader = greenrt::spawn(move || read_to_end(rfd));
    writer.join().unwrap();
    let got = reader.get().unwrap();
    greenrt::cancel_wait(rfd);
    assert_eq!(got.len(), N);
    assert!(got == expect, "content differs");
    assert!(greenrt::hub::switch_count() - switches >= 16, "no interleaving");
}

#[test]
fn blocking_pipe_read_parks_only_the_greenlet() {
    let (r, w) = blocking_pipe();
    let rfd = r.as_raw_fd();
    // Another *thread* writes after 150 ms: were the read to block the
    // thread, it would still return, but the ticker could not have run.
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        // SAFETY: writes 5 bytes from a static buffer to our pipe.
        assert_eq!(unsafe { libc::write(w.as_raw_fd(), b"hello".as_ptr().cast(), 5) }, 5);
        w
    });
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = greenrt::spawn(move || loop {
        greenrt::sleep(Duration::from_millis(10));
        t2.set(t2.get() + 1);
    });
    let mut buf = [0u8; 16];
    let n = os::read(rfd, &mut buf).unwrap();
    ticker.kill();
    assert_eq!(&buf[..n], b"hello");
    assert!(ticks.get() >= 8, "ticker ran {} times during the read", ticks.get());
    // The fd's flags are what the program set: still blocking.
    // SAFETY: F_GETFL on an fd we own.
    let fl = unsafe { libc::fcntl(rfd, libc::F_GETFL) };
    assert_eq!(fl & libc::O_NONBLOCK, 0);
    let w = writer.join().unwrap();
    greenrt::cancel_wait(rfd);
    drop((r, w));
}

#[test]
fn regular_files_pass_through() {
    let path = std::env::temp_dir().join(format!("greenrt-os-test-{}", std::process::id()));
    std::fs::write(&path, b"file contents").unwrap();
    let f = std::fs::File::open(&path).unwrap();
    let mut buf = [0u8; 64];
    let n = os::read(f.as_raw_fd(), &mut buf).unwrap();
    assert_eq!(&buf[..n], b"file contents");
    assert_eq!(os::read(f.as_raw_fd(), &mut buf).unwrap(), 0);
    let out = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    os::write_all(out.as_raw_fd(), &vec![b'z'; 10000]).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 13 + 10000);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn make_nonblocking_reports_previous_mode() {
    let (r, _w) = blocking_pipe();
    assert!(os::make_nonblocking(r.as_raw_fd()).unwrap());
    assert!(!os::make_nonblocking(r.as_raw_fd()).unwrap());
    // An empty non-blocking pipe, with a Timeout: interrupted, not hung.
    let mut b = [0u8; 1];
    let res = greenrt::with_timeout(Duration::from_millis(20), || os::read(r.as_raw_fd(), &mut b));
    assert!(res.is_err());
    greenrt::cancel_wait(r.as_raw_fd());
    let e: io::Error = os::read(-1, &mut b).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
}
