//! greenrt::process: cooperative children, exact capture, communicate,
//! timeouts, kill, and no zombies.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::process::{Command, Stdio};

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

/// A greenlet that counts 10 ms ticks until killed.
fn ticker() -> (greenrt::Greenlet<()>, Rc<Cell<u32>>) {
    let ticks = Rc::new(Cell::new(0u32));
    let t2 = ticks.clone();
    let g = greenrt::spawn(move || loop {
        greenrt::sleep(Duration::from_millis(10));
        t2.set(t2.get() + 1);
    });
    (g, ticks)
}

/// The state letter of /proc/<pid>/stat, or None once the pid is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[test]
fn hundred_children_sleeping_in_parallel_finish_together() {
    let start = Instant::now();
    let waiters: Vec<_> = (0..100)
        .map(|_| {
            let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
            greenrt::spawn(move || child.wait().unwrap())
        })
        .collect();
    for w in &waiters {
        assert!(w.get().unwrap().success());
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200),
        "finished before the children slept: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "waits did not overlap: {took:?}");
}

#[test]
fn output_captures_exact_stdout_stderr_and_exit_code() {
    let out = sh(r#"printf 'out\nline2'; printf 'err!' >&2; printf '\000tail'; exit 3"#)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"out\nline2\0tail");
    assert_eq!(out.stderr, b"err!");
    assert_eq!(out.status.code(), Some(3));
    assert!(!out.status.success());

    let ok = sh("exit 0").output().unwrap();
    assert!(ok.status.success());
    assert!(ok.stdout.is_empty() && ok.stderr.is_empty());
    // stdin defaults to /dev/null for output(): cat ends at once.
    let cat = Command::new("cat").output().unwrap();
    assert!(cat.status.success() && cat.stdout.is_empty());
}

#[test]
fn command_env_and_current_dir() {
    let out = sh(r#"printf '%s|%s|%s' "$GREENRT_A" "${HOME-unset}" "$PWD""#)
        .env_clear()
        .env("GREENRT_A", "one")
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "one|unset|/");
    let out = sh(r#"printf '%s' "${GREENRT_B-gone}""#)
        .env("GREENRT_B", "x")
        .env_remove("GREENRT_B")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"gone");
    let status = sh("exit 9").stdout(Stdio::null()).status().unwrap();
    assert_eq!(status.code(), Some(9));
    let e = Command::new("/nonexistent/greenrt-no-such-program")
        .spawn()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn communicate_16_mib_each_way_does_not_deadlock() {
    const N: usize = 16 << 20;
    let input: Vec<u8> = (0..N).map(|i| (i * 31 % 253) as u8).collect();
    // stdout echoes stdin while stderr streams 16 MiB at the same time:
    // all three pipes are full at once unless they are served together.
    let mut child = sh("head -c 16777216 /dev/zero >&2 & cat; wait")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let (out, err) = child.communicate(Some(&input), Some(Duration::from_secs(60))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(out.len(), N);
    assert!(out == input, "stdout differs from the input");
    assert_eq!(err.len(), N);
    assert!(err.iter().all(|&b| b == 0), "stderr is not all zeros");
    assert!(child.status().unwrap().success());
    // The pipes are used up and closed.
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
}

#[test]
fn communicate_timeout_keeps_child_and_partial_output() {
    let mut child = sh("printf partial; printf e >&2; exec sleep 30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let e = child.communicate(None, Some(Duration::from_millis(200))).unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The child keeps running (like Python's TimeoutExpired).
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    // A second call carries on and returns everything, including what the
    // first one read.
    let (out, err) = child.communicate(None, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(out, b"partial");
    assert_eq!(err, b"e");
    assert_eq!(child.status().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn wait_timeout_returns_none_then_status() {
    let mut child = sh("sleep 0.3; exit 4").spawn().unwrap();
    let start = Instant::now();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    let first = start.elapsed();
    assert!(
        first >= Duration::from_millis(50) && first < Duration::from_millis(300),
        "{first:?}"
    );
    let status = child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("child did not exit");
    assert_eq!(status.code(), Some(4));
    assert!(start.elapsed() >= Duration::from_millis(300));
    // Cached from now on, also for try_wait and wait.
    assert_eq!(child.try_wait().unwrap(), Some(status));
    assert_eq!(child.wait().unwrap(), status);
}

#[test]
fn kill_terminates_child() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    let start = Instant::now();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(start.elapsed() < Duration::from_secs(5));
    // Reaped: further signals are no-ops, never sent to a reused pid.
    child.kill().unwrap();

    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    child.terminate().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    // A child inherits an ignored SIGINT (under nohup, or `make test &`
    // from a script); this one gets the default action, so the signal it
    // is sent kills it wherever the test runs.
    let mut std_cmd = std::process::Command::new("sleep");
    std_cmd.arg("30");
    // SAFETY: the pre_exec closure only calls signal(2), which is
    // async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut std_cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = Command::from(std_cmd).spawn().unwrap();
    child.send_signal(libc::SIGINT).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGINT));
}

#[test]
fn kill_and_timeout_interrupt_a_wait() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let start = Instant::now();
    let r = greenrt::with_timeout(Duration::from_millis(50), || child.wait());
    assert!(r.is_err(), "the Timeout did not interrupt the wait");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(child.try_wait().unwrap(), None, "the child should still run");
    // A greenlet blocked in wait() is killed promptly.
    let pid = child.id();
    let waiter = greenrt::spawn(move || {
        let r = child.wait();
        (child, r)
    });
    greenrt::sleep(Duration::from_millis(20));
    let start = Instant::now();
    waiter.kill();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(waiter.get().is_err(), "the waiter finished instead of being killed");
    // The killed waiter dropped the Child: it must not stay a zombie.
    // SAFETY: the pid is our child or already gone.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc_state(pid).is_some() && Instant::now() < deadline {
        greenrt::sleep(Duration::from_millis(10));
    }
    assert_eq!(proc_state(pid), None);
}

#[test]
fn pipes_are_cooperative_streams() {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tick, ticks) = ticker();
    // The reader parks on the empty pipe while the ticker runs, until the
    // writer (after 100 ms) sends a line.
    let writer = greenrt::spawn(move || {
        greenrt::sleep(Duration::from_millis(100));
        stdin.write_all(b"line one\n").unwrap();
        stdin // dropped by the caller later: cat sees end of file then
    });
    let mut buf = [0u8; 64];
    let n = stdout.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"line one\n");
    assert!(
        ticks.get() >= 5,
        "ticker ran {} times while the read waited",
        ticks.get()
    );
    drop(writer.get().unwrap());
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    tick.kill();
    assert!(child.wait().unwrap().success());
}

#[test]
fn piping_one_child_into_another() {
    let mut first = sh("printf 'b\\na\\nc\\n'").stdout(Stdio::piped()).spawn().unwrap();
    let out = Command::new("cat")
        .stdin(first.stdout.take().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"b\na\nc\n");
    assert!(first.wait().unwrap().success());
}

#[test]
fn no_zombie_after_child_dropped() {
    let child = Command::new("sleep").arg("0.1").spawn().unwrap();
    let pid = child.id();
    assert!(matches!(proc_state(pid), Some(c) if c != 'Z'));
    drop(child);
    // Once it exits it is reaped in the background: /proc/<pid> goes away
    // instead of staying a zombie ('Z').
    let deadline = Instant::now() + Duration::from_secs(10);
    while proc_state(pid).is_some() && Instant::now() < deadline {
        greenrt::sleep(Duration::from_millis(10));
    }
    assert_eq!(proc_state(pid), None, "dropped child {pid} was not reaped");
    let mut st = 0;
    // SAFETY: waitpid on a pid that was our child.
    let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut st, libc::WNOHANG) };
    assert_eq!(r, -1);
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ECHILD));

    // Many dropped at once, still running when dropped.
    let pids: Vec<u32> = (0..20)
        .map(|_| Command::new("sleep").arg("0.05").spawn().unwrap().id())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| proc_state(p).is_some()) && Instant::now() < deadline {
        greenrt::sleep(Duration::from_millis(10));
    }
    let left: Vec<_> = pids.iter().filter(|&&p| proc_state(p).is_some()).collect();
    assert!(left.is_empty(), "not reaped: {left:?}");
}

#[test]
fn wait_with_output_collects_everything() {
    let child = sh("printf abc; printf def >&2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"abc"[..], &b"def"[..])
    );
    assert!(out.status.success());
}

#[test]
fn types_are_send_like_std() {
    fn send<T: Send>() {}
    send::<Command>();
    send::<greenrt::process::Child>();
    send::<greenrt::process::ChildStdin>();
    send::<greenrt::process::ChildStdout>();
    send::<greenrt::process::ChildStderr>();
}
