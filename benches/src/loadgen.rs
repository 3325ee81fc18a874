//! The echo rows' load generator, run in its own process (pinned by the
//! driver to another core than the server):
//!
//!     greenrt-bench loadgen echo ADDR CONNS SECS [SERVER_PID]
//!
//! Opens CONNS connections to ADDR, then keeps one 512-byte message in
//! flight on each: send it, wait for all 512 bytes back, count a round
//! trip, send the next. One thread, one level-triggered epoll loop, one
//! `read` and one `write` per round trip, no allocation: as lean as the C
//! echo server, so that it is not what limits the figure. After a 1 s
//! warm-up it counts for SECS seconds and prints one JSON line:
//! `{"name":"loadgen","value":ROUND_TRIPS_PER_S,...}` with its own CPU use
//! and, given SERVER_PID, the server's (both as a share of one core over
//! the measured window, from getrusage and /proc/PID/stat): a load
//! generator near 100% beside a server well under it means the load
//! generator was the limit.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::common::ECHO_MSG;

const WARMUP: Duration = Duration::from_secs(1);

pub fn main(args: &[String]) {
    let usage = || -> ! {
        eprintln!("usage: greenrt-bench loadgen echo ADDR CONNS SECS [SERVER_PID]");
        std::process::exit(2)
    };
    let (addr, conns, secs, pid) = match args {
        [kind, addr, conns, secs, rest @ ..] if kind == "echo" && rest.len() <= 1 => {
            let addr: SocketAddr = addr.parse().unwrap_or_else(|_| usage());
            let conns: usize = conns.parse().unwrap_or_else(|_| usage());
            let secs: f64 = secs.parse().unwrap_or_else(|_| usage());
            let pid: Option<u32> = rest.first().map(|p| p.parse().unwrap_or_else(|_| usage()));
            (addr, conns, secs, pid)
        }
        _ => usage(),
    };
    if let Err(e) = echo(addr, conns, Duration::from_secs_f64(secs), pid) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

struct Conn {
    stream: TcpStream,
    /// Bytes of the current reply received so far.
    got: usize,
    open: bool,
}

/// CPU seconds (user + system) of process `pid`, all threads.
fn proc_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// CPU seconds (user + system) of this process.
fn self_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Sends one whole message; the socket's send buffer is empty (one
/// message in flight), so a short write never happens in practice, and
/// is retried if it does.
fn send_msg(fd: RawFd, msg: &[u8]) -> io::Result<()> {
    let mut off = 0;
    while off < msg.len() {
        // SAFETY: the pointer and length describe `msg[off..]`.
        let w = unsafe { libc::write(fd, msg[off..].as_ptr().cast(), msg.len() - off) };
        if w > 0 {
            off += w as usize;
        } else {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => std::thread::yield_now(),
                _ => return Err(e),
            }
        }
    }
    Ok(())
}

fn echo(addr: SocketAddr, n: usize, secs: Duration, pid: Option<u32>) -> io::Result<()> {
    let msg = [b'x'; ECHO_MSG];
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        conns.push(Conn {
            stream,
            got: 0,
            open: true,
        });
    }
    // SAFETY: plain syscalls on fds this function owns.
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    for (i, c) in conns.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: `ep` is our epoll fd, `ev` a valid event, the stream open.
        check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c.stream.as_raw_fd(), &mut ev) })?;
    }
    for c in &conns {
        send_msg(c.stream.as_raw_fd(), &msg)?;
    }

    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = [0u8; ECHO_MSG];
    let mut trips: u64 = 0;
    let mut errors = 0usize;
    let mut open = n;
    let mut batches: u64 = 0;
    let start = Instant::now();
    let mut measuring = false;
    let (mut t0, mut cpu0, mut srv0) = (start, 0.0, None);
    let end_warmup = start + WARMUP;
    let end = end_warmup + secs;
    while open > 0 {
        let now = Instant::now();
        if !measuring && now >= end_warmup {
            measuring = true;
            trips = 0;
            batches = 0;
            t0 = now;
            cpu0 = self_cpu();
            srv0 = pid.and_then(proc_cpu);
        }
        if now >= end {
            break;
        }
        // SAFETY: `events` has room for `events.len()` entries.
        let k = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 100) };
        if k < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        batches += 1;
        for ev in &events[..k as usize] {
            let i = ev.u64 as usize;
            let c = &mut conns[i];
            if !c.open {
                continue;
            }
            let fd = c.stream.as_raw_fd();
            // SAFETY: reads into the unfilled tail of `buf`.
            let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), ECHO_MSG - c.got) };
            if r > 0 {
                c.got += r as usize;
                if c.got == ECHO_MSG {
                    c.got = 0;
                    trips += 1;
                    if send_msg(fd, &msg).is_err() {
                        c.open = false;
                    }
                }
            } else if r == 0 {
                c.open = false;
            } else {
                let e = io::Error::last_os_error();
                if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
                    c.open = false;
                }
            }
            if !c.open {
                errors += 1;
                open -= 1;
                // SAFETY: removes an fd of ours from our epoll fd.
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (self_cpu() - cpu0) / wall;
    let srv = match (srv0, pid.and_then(proc_cpu)) {
        (Some(a), Some(b)) => format!("{:.3}", (b - a) / wall),
        _ => "null".into(),
    };

    // SAFETY: closes our own epoll fd, used no more.
    unsafe { libc::close(ep) };
    if !measuring || wall <= 0.0 {
        return Err(io::Error::other(format!(
            "every connection failed during the warm-up ({errors} closed)"
        )));
    }
    let rate = trips as f64 / wall;
    let per_wait = if batches > 0 {
        trips as f64 / batches as f64
    } else {
        0.0
    };
    println!(
        "{{\"name\":\"loadgen\",\"value\":{rate:.1},\"round_trips\":{trips},\"secs\":{wall:.3},\
         \"conns\":{n},\"closed\":{errors},\"loadgen_cpu\":{cpu:.3},\"server_cpu\":{srv},\
         \"per_wait\":{per_wait:.1}}}"
    );
    Ok(())
}
