//! greenrt::net Unix sockets: streams and datagrams over paths, abstract
//! names and pairs; close while waiting; full datagram queues; no SIGPIPE.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenrt::net::{UnixDatagram, UnixListener, UnixStream};
use greenrt::spawn;

/// A fresh directory for socket paths, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "greenrt-net-unix-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unix_stream_and_datagram_roundtrip() {
    let dir = TempDir::new();
    // Stream: an echo server on a path, several concurrent clients.
    let sock = dir.path("echo.sock");
    let l = UnixListener::bind(&sock).unwrap();
    assert_eq!(l.local_addr().unwrap().as_pathname(), Some(sock.as_path()));
    let server = spawn(move || {
        let mut hs = Vec::new();
        for s in l.incoming().take(10) {
            let mut s = s.unwrap();
            hs.push(spawn(move || {
                let mut buf = [0; 4096];
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => break,
                        n => s.write_all(&buf[..n]).unwrap(),
                    }
                }
            }));
        }
        greenrt::joinall(&hs, None).unwrap();
    });
    let clients: Vec<_> = (0..10)
        .map(|i| {
            let sock = sock.clone();
            spawn(move || {
                let mut c = UnixStream::connect(&sock).unwrap();
                assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(sock.as_path()));
                assert!(c.local_addr().unwrap().is_unnamed());
                let msg: Vec<u8> = (0..100_000).map(|j| (i * 7 + j) as u8).collect();
                let (r, w) = (Rc::new(c.try_clone().unwrap()), msg.clone());
                let writer = spawn(move || (&*r).write_all(&w).unwrap());
                let mut back = vec![0; msg.len()];
                c.read_exact(&mut back).unwrap();
                writer.get().unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                assert_eq!(c.read(&mut [0; 1]).unwrap(), 0);
                back == msg
            })
        })
        .collect();
    assert!(clients.iter().all(|c| c.get().unwrap()));
    server.get().unwrap();

    // Datagrams between two bound paths: exact contents and sender address.
    let (pa, pb) = (dir.path("a.dgram"), dir.path("b.dgram"));
    let a = UnixDatagram::bind(&pa).unwrap();
    let b = UnixDatagram::bind(&pb).unwrap();
    let receiver = spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0; 2048];
        for _ in 0..20 {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            out.push((buf[..n].to_vec(), from.as_pathname().map(Path::to_path_buf)));
        }
        out
    });
    for i in 0..20usize {
        let m = vec![i as u8; i * 50 + 1];
        assert_eq!(a.send_to(&m, &pb).unwrap(), m.len());
    }
    for (i, (m, from)) in receiver.get().unwrap().into_iter().enumerate() {
        assert_eq!(m, vec![i as u8; i * 50 + 1]);
        assert_eq!(from.as_deref(), Some(pa.as_path()));
    }

    // A connected datagram socket and an unbound sender.
    let c = UnixDatagram::unbound().unwrap();
    c.connect(&pa).unwrap();
    c.send(b"connected").unwrap();
    let mut buf = [0; 16];
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"connected");
    assert!(from.is_unnamed());
}

#[test]
fn unix_pairs_and_abstract_names() {
    let (a, b) = UnixStream::pair().unwrap();
    let g = spawn(move || {
        let mut s = String::new();
        (&b).read_to_string(&mut s).unwrap();
        s
    });
    (&a).write_all(b"over a pair").unwrap();
    drop(a);
    assert_eq!(g.get().unwrap(), "over a pair");

    let (x, y) = UnixDatagram::pair().unwrap();
    x.send(b"dgram pair").unwrap();
    let mut buf = [0; 32];
    assert_eq!(y.peek(&mut buf).unwrap(), 10);
    assert_eq!(y.recv(&mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], b"dgram pair");

    let name = format!("greenrt-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = UnixListener::bind_addr(&addr).unwrap();
    assert_eq!(l.local_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
    let c = UnixStream::connect_addr(&addr).unwrap();
    let (s, _) = l.accept().unwrap();
    (&c).write_all(b"abstract").unwrap();
    let mut buf = [0; 8];
    (&s).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abstract");

    let d_addr = SocketAddr::from_abstract_name(format!("{name}-d").as_bytes()).unwrap();
    let d = UnixDatagram::bind_addr(&d_addr).unwrap();
    let e = UnixDatagram::unbound().unwrap();
    e.send_to_addr(b"to abstract", &d_addr).unwrap();
    let mut buf = [0; 16];
    assert_eq!(d.recv(&mut buf).unwrap(), 11);
}

#[test]
fn unix_close_wakes_waiting_reader_and_read_timeout() {
    let (a, b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let a2 = a.clone();
    let g = spawn(move || (&*a2).read(&mut [0; 4]).unwrap_err().raw_os_error());
    greenrt::sleep(Duration::from_millis(20));
    a.close();
    assert_eq!(g.get().unwrap(), Some(libc::EBADF));
    assert_eq!((&b).read(&mut [0; 4]).unwrap(), 0, "the peer sees end of file");

    let (x, _y) = UnixDatagram::pair().unwrap();
    let t = Duration::from_millis(80);
    x.set_read_timeout(Some(t)).unwrap();
    let start = Instant::now();
    assert_eq!(x.recv(&mut [0; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() >= t);
}

#[test]
fn unix_datagram_send_to_full_receiver_waits_for_room() {
    // An unconnected sender gets EAGAIN from a full receiver queue and no
    // readiness event when it drains: the send must still complete once
    // the receiver reads, without blocking the hub.
    let dir = TempDir::new();
    let p = dir.path("slow.dgram");
    let r = UnixDatagram::bind(&p).unwrap();
    let s = UnixDatagram::unbound().unwrap();
    const N: usize = 300;
    let sender = spawn(move || {
        for i in 0..N {
            s.send_to(&(i as u32).to_le_bytes(), &p).unwrap();
        }
    });
    greenrt::sleep(Duration::from_millis(50));
    assert!(!sender.dead(), "the receiver queue should have filled");
    let mut buf = [0; 4];
    for i in 0..N {
        assert_eq!(r.recv(&mut buf).unwrap(), 4);
        assert_eq!(u32::from_le_bytes(buf), i as u32);
    }
    sender.get().unwrap();
}

#[test]
fn unix_write_to_closed_peer_is_epipe_not_sigpipe() {
    if util::is_child() {
        // SAFETY: plain signal-disposition change in a single-purpose child.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let e = (&a).write(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
        let e = (&a).write_vectored(&[std::io::IoSlice::new(b"y")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
        println!("CHILD-SURVIVED");
        return;
    }
    util::assert_child_prints("unix_write_to_closed_peer_is_epipe_not_sigpipe", &[], "CHILD-SURVIVED");
}

#[test]
fn unix_bind_errors_match_std() {
    let dir = TempDir::new();
    let p = dir.path("taken.sock");
    let _l = UnixListener::bind(&p).unwrap();
    assert_eq!(UnixListener::bind(&p).unwrap_err().kind(), ErrorKind::AddrInUse);
    assert_eq!(
        UnixStream::connect(dir.path("missing.sock")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let long = dir.path(&"x".repeat(200));
    assert_eq!(UnixListener::bind(long).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(UnixStream::connect("a\0b").unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn unix_std_conversions() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = UnixStream::from(a);
    let g = spawn(move || {
        let mut s = [0; 5];
        (&a).read_exact(&mut s).unwrap();
        a.into_std().unwrap()
    });
    greenrt::sleep(Duration::from_millis(10));
    (&b).write_all(b"hello").unwrap();
    let mut std_a = g.get().unwrap();
    std_a.write_all(b"back").unwrap();
    let mut buf = [0; 4];
    (&b).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"back");
}
