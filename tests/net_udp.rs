//! greenrt::net UDP: exact datagrams, cooperative receive, timeouts,
//! connected sockets, refused ports, close while waiting.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenrt::net::UdpSocket;
use greenrt::spawn;

fn bound() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

#[test]
fn udp_send_recv_exact() {
    let (a, a_addr) = bound();
    let (b, b_addr) = bound();
    // The receiver parks first; the sender runs while it waits.
    let receiver = spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        for _ in 0..64 {
            let (n, from) = b.recv_from(&mut buf).unwrap();
            got.push((buf[..n].to_vec(), from));
        }
        got
    });
    greenrt::sleep(Duration::from_millis(10));
    assert!(!receiver.dead());
    let msgs: Vec<Vec<u8>> = (0..64usize)
        .map(|i| (0..(i * 997) % 60_000).map(|j| (i ^ j) as u8).collect())
        .collect();
    for m in &msgs {
        assert_eq!(a.send_to(m, b_addr).unwrap(), m.len());
        // Keep the receiver's buffer from overflowing: loopback UDP drops
        // datagrams that find it full.
        greenrt::sleep(Duration::from_millis(1));
    }
    let got = receiver.get().unwrap();
    assert_eq!(got.len(), msgs.len());
    for ((g, from), m) in got.iter().zip(&msgs) {
        assert_eq!(g, m);
        assert_eq!(*from, a_addr);
    }
}

#[test]
fn udp_truncates_to_buffer_and_peeks() {
    let (a, _) = bound();
    let (b, b_addr) = bound();
    a.send_to(b"0123456789", b_addr).unwrap();
    let mut small = [0u8; 4];
    let (n, _) = b.peek_from(&mut small).unwrap();
    assert_eq!((n, &small), (4, b"0123"));
    let mut full = [0u8; 16];
    assert_eq!(b.peek_from(&mut full).unwrap().0, 10);
    let (n, _) = b.recv_from(&mut small).unwrap();
    assert_eq!((n, &small), (4, b"0123"));
    // The rest of a truncated datagram is gone.
    b.set_nonblocking(true).unwrap();
    assert_eq!(b.recv_from(&mut full).unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn udp_read_timeout_returns_would_block() {
    let (s, _) = bound();
    let t = Duration::from_millis(100);
    s.set_read_timeout(Some(t)).unwrap();
    let start = Instant::now();
    let e = s.recv_from(&mut [0; 8]).unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(elapsed >= t && elapsed < t + Duration::from_millis(500), "{elapsed:?}");
}

#[test]
fn udp_connected_send_recv_and_refused_port() {
    let (a, a_addr) = bound();
    let (b, b_addr) = bound();
    a.connect(b_addr).unwrap();
    b.connect(a_addr).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b_addr);
    a.send(b"hello").unwrap();
    let mut buf = [0; 8];
    assert_eq!(b.peek(&mut buf).unwrap(), 5);
    assert_eq!(b.recv(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");

    // Nobody listens on a closed port: the ICMP error comes back as
    // ConnectionRefused on a connected socket.
    let (gone, gone_addr) = bound();
    drop(gone);
    let (c, _) = bound();
    c.connect(gone_addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    c.send(b"anyone?").unwrap();
    assert_eq!(c.recv(&mut buf).unwrap_err().kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn udp_close_wakes_waiting_receiver() {
    let (s, _) = bound();
    let s = Rc::new(s);
    let s2 = s.clone();
    let g = spawn(move || s2.recv_from(&mut [0; 8]).unwrap_err().raw_os_error());
    greenrt::sleep(Duration::from_millis(20));
    s.close();
    assert_eq!(g.get().unwrap(), Some(libc::EBADF));
}

#[test]
fn udp_options_and_conversions() {
    let (s, a) = bound();
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    s.set_ttl(17).unwrap();
    assert_eq!(s.ttl().unwrap(), 17);
    s.set_multicast_ttl_v4(3).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 3);
    s.set_multicast_loop_v4(false).unwrap();
    assert!(!s.multicast_loop_v4().unwrap());
    assert!(s.take_error().unwrap().is_none());
    assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    let c = s.try_clone().unwrap();
    assert_eq!(c.local_addr().unwrap(), a);
    let std_s = s.into_std().unwrap();
    assert_eq!(std_s.local_addr().unwrap(), a);
    let back = UdpSocket::from(std_s);
    assert_eq!(back.local_addr().unwrap(), a);
    // Binding by name resolves without blocking the hub.
    let named = UdpSocket::bind("localhost:0").unwrap();
    assert!(named.local_addr().unwrap().ip().is_loopback());
    assert!(format!("{named:?}").contains("UdpSocket"));
}

#[test]
fn udp_ipv6_loopback() {
    let Ok(a) = UdpSocket::bind("[::1]:0") else {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    };
    let b = UdpSocket::bind("[::1]:0").unwrap();
    a.send_to(b"six", b.local_addr().unwrap()).unwrap();
    let mut buf = [0; 8];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"six"[..], a.local_addr().unwrap()));
}
