//! greenrt::tls over greenrt::net: handshakes, transfers, failures with
//! clear messages, clean close, and many handshakes sharing one hub.
//! Certificates are generated here with rcgen; traffic stays on 127.0.0.1.

mod util;

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use greenrt::net::{TcpListener, TcpStream};
use greenrt::tls::rustls::{self, pki_types::CertificateDer, CertificateError, ProtocolVersion};
use greenrt::tls::{
    self, ClientConfig, HandshakeError, RootCertStore, TlsAcceptor, TlsReadHalf, TlsStream, TlsWriteHalf,
};
use greenrt::Greenlet;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A test CA and a leaf certificate it signed.
struct Pki {
    ca_der: CertificateDer<'static>,
    leaf_der: CertificateDer<'static>,
    chain_pem: String,
    key_pem: String,
}

impl Pki {
    fn new(names: &[&str]) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A distinct name per CA: a client that trusts another CA must not
        // even find an issuer by name (UnknownIssuer, not BadSignature).
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let ca_name = format!("greenrt test CA {}", SERIAL.fetch_add(1, Ordering::Relaxed));
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        Pki {
            ca_der: ca.der().clone(),
            leaf_der: leaf.der().clone(),
            chain_pem: leaf.pem() + &ca.pem(),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        roots
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        tls::client_config_with_roots(self.roots())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from_pem(self.chain_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }
}

/// Accepts one connection in a greenlet and hands the handshake's result
/// to `f`.
fn serve_one<T: 'static>(
    acceptor: TlsAcceptor,
    f: impl FnOnce(io::Result<TlsStream<TcpStream>>) -> T + 'static,
) -> (SocketAddr, Greenlet<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let g = greenrt::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        f(acceptor.accept(tcp))
    });
    (addr, g)
}

fn handshake_error(e: &io::Error) -> &HandshakeError {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<HandshakeError>())
        .unwrap_or_else(|| panic!("not a HandshakeError: {e:?}"))
}

/// Runs a test body under a deadline, so a lost wakeup fails instead of
/// hanging.
fn within<R>(secs: u64, f: impl FnOnce() -> R) -> R {
    greenrt::with_timeout(Duration::from_secs(secs), f).expect("test timed out")
}

#[test]
fn handshake_and_echo() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| {
            let mut tls = tls.unwrap();
            assert_eq!(tls.sni_hostname(), Some("localhost"));
            assert!(
                tls.peer_certificates().is_none(),
                "no client auth, no client certificate"
            );
            let mut buf = [0u8; 64];
            let n = tls.read(&mut buf).unwrap();
            let mut reply = b"echo: ".to_vec();
            reply.extend_from_slice(&buf[..n]);
            tls.write_all(&reply).unwrap();
            tls.flush().unwrap();
            tls.shutdown().unwrap();
            n
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = tls::connect("localhost", tcp, pki.client_config()).unwrap();
        assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        assert!(tls.cipher_suite().is_some());
        assert_eq!(tls.alpn_protocol(), None);
        let certs = tls.peer_certificates().expect("the server's chain");
        assert_eq!(certs[0], pki.leaf_der, "leaf first");
        assert_eq!(certs.len(), 2, "leaf and CA as configured");
        assert_eq!(tls.get_ref().peer_addr().unwrap(), addr);

        tls.write_all(b"hello over tls").unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"echo: hello over tls");
        assert_eq!(server.get().unwrap(), b"hello over tls".len());
    })
}

/// Deterministic bytes: a prime-length random block repeated, so a lost,
/// repeated or reordered chunk of any size shows as a mismatch.
struct Pattern(Vec<u8>);

impl Pattern {
    fn new(seed: u64) -> Pattern {
        let mut x = seed | 1;
        let block = (0..1_000_003)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Pattern(block)
    }

    /// The bytes at stream offset `at`.
    fn fill(&self, at: u64, out: &mut [u8]) {
        let len = self.0.len();
        let mut start = (at % len as u64) as usize;
        let mut done = 0;
        while done < out.len() {
            let n = (len - start).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.0[start..start + n]);
            done += n;
            start = 0;
        }
    }
}

/// Writes `total` bytes of `pattern` in chunks of varying size, then
/// sends close_notify.
fn send_pattern(w: &mut TlsWriteHalf<TcpStream>, pattern: &Pattern, total: u64) -> u64 {
    let mut buf = vec![0u8; 200 * 1024];
    let (mut sent, mut step) = (0u64, 0usize);
    while sent < total {
        step += 1;
        let n = ((step * 7919) % buf.len() + 1).min((total - sent) as usize);
        pattern.fill(sent, &mut buf[..n]);
        w.write_all(&buf[..n]).unwrap();
        sent += n as u64;
    }
    w.flush().unwrap();
    w.shutdown().unwrap();
    sent
}

/// Reads until the clean close, checking every byte against `pattern`.
fn recv_pattern(r: &mut TlsReadHalf<TcpStream>, pattern: &Pattern) -> u64 {
    let mut buf = vec![0u8; 50_000];
    let mut expect = vec![0u8; 50_000];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return got;
        }
        pattern.fill(got, &mut expect[..n]);
        assert!(buf[..n] == expect[..n], "bytes differ in the chunk at offset {got}");
        got += n as u64;
    }
}

/// Splits `tls`, sends `out` from one greenlet while this one receives
/// `expect_in`; returns (received, sent) and the rejoined stream.
fn both_ways(
    tls: TlsStream<TcpStream>,
    out: Rc<Pattern>,
    expect_in: &Pattern,
    total: u64,
) -> (u64, u64, TlsStream<TcpStream>) {
    let (mut r, mut w) = tls.split();
    let writer = greenrt::spawn(move || {
        let sent = send_pattern(&mut w, &out, total);
        (sent, w)
    });
    let got = recv_pattern(&mut r, expect_in);
    let (sent, w) = writer.get().unwrap();
    (got, sent, r.unsplit(w))
}

/// 32 MiB each way at the same time (64 MiB in all), byte-exact: far
/// more than the socket buffers hold, so this deadlocks unless each side
/// reads in one greenlet while it writes in another (TlsStream::split).
#[test]
fn large_transfer_both_ways() {
    const EACH_WAY: u64 = 32 << 20;
    within(120, || {
        let pki = Pki::new(&["localhost"]);
        let c2s = Rc::new(Pattern::new(0x1234_5678));
        let s2c = Rc::new(Pattern::new(0x9abc_def1));
        let (c2s2, s2c2) = (c2s.clone(), s2c.clone());
        let (addr, server) = serve_one(pki.acceptor(), move |tls| {
            let (got, sent, _) = both_ways(tls.unwrap(), s2c2, &c2s2, EACH_WAY);
            (got, sent)
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let tls = tls::connect("localhost", tcp, pki.client_config()).unwrap();
        let (got, sent, mut whole) = both_ways(tls, c2s, &s2c, EACH_WAY);
        assert_eq!(got, EACH_WAY, "server-to-client bytes received");
        assert_eq!(sent, EACH_WAY);
        assert_eq!(
            server.get().unwrap(),
            (EACH_WAY, EACH_WAY),
            "client-to-server bytes received"
        );
        // Rejoined, the stream is still at its clean EOF.
        assert_eq!(whole.read(&mut [0u8; 8]).unwrap(), 0);
        assert_eq!(whole.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    })
}

#[test]
fn wrong_hostname_fails_with_clear_error() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| tls.map(drop).unwrap_err());
        let tcp = TcpStream::connect(addr).unwrap();
        let err = tls::connect("wrong.test", tcp, pki.client_config()).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(msg.starts_with("TLS handshake with wrong.test failed: "), "{msg}");
        assert!(msg.contains("not valid for name \"wrong.test\""), "{msg}");
        assert!(
            msg.contains("localhost"),
            "says what the certificate is valid for: {msg}"
        );
        let h = handshake_error(&err);
        assert_eq!(h.peer(), "wrong.test");
        assert!(
            matches!(
                h.tls_error(),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{:?}",
            h.tls_error()
        );
        // The client told the server why.
        let server_err = server.get().unwrap().to_string();
        assert!(
            server_err.contains("TLS handshake with a client failed: received fatal alert: BadCertificate"),
            "{server_err}"
        );
    })
}

#[test]
fn untrusted_certificate_fails_with_clear_error() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let other_ca = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| tls.map(drop).unwrap_err());
        let tcp = TcpStream::connect(addr).unwrap();
        let err = tls::connect("localhost", tcp, other_ca.client_config()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("TLS handshake with localhost failed: "), "{msg}");
        assert!(msg.contains("invalid peer certificate: UnknownIssuer"), "{msg}");
        assert!(msg.contains("root certificate this client trusts"), "{msg}");
        assert!(matches!(
            handshake_error(&err).tls_error(),
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
        ));
        let server_err = server.get().unwrap().to_string();
        assert!(server_err.contains("received fatal alert: UnknownCA"), "{server_err}");
    })
}

#[test]
fn peer_closing_during_handshake_is_a_clear_error() {
    within(30, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = greenrt::spawn(move || drop(listener.accept().unwrap()));
        let tcp = TcpStream::connect(addr).unwrap();
        let err = tls::connect("localhost", tcp, tls::client_config_with_roots(RootCertStore::empty())).unwrap_err();
        server.join().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            err.to_string(),
            "TLS handshake with localhost failed: the peer closed the connection before the handshake completed"
        );
        assert!(handshake_error(&err).tls_error().is_none());
    })
}

#[test]
fn close_notify_on_shutdown() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| {
            let mut tls = tls.unwrap();
            let mut got = Vec::new();
            // Ok(0) after "bye": read_to_end succeeds only on close_notify.
            let r = tls.read_to_end(&mut got);
            // The client only closed its sending side: reply, then close.
            tls.write_all(b"ack").unwrap();
            tls.shutdown().unwrap();
            tls.shutdown().unwrap(); // repeating it is harmless
            (r.map_err(|e| e.kind()), got)
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = tls::connect("localhost", tcp, pki.client_config()).unwrap();
        tls.write_all(b"bye").unwrap();
        tls.shutdown().unwrap();
        let err = tls.write(b"more").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let mut reply = Vec::new();
        assert_eq!(tls.read_to_end(&mut reply).unwrap(), 3);
        assert_eq!(reply, b"ack");
        assert_eq!(tls.read(&mut [0u8; 8]).unwrap(), 0, "stays at EOF");
        assert_eq!(server.get().unwrap(), (Ok(3), b"bye".to_vec()));
    })
}

#[test]
fn close_without_close_notify_is_unexpected_eof() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| {
            let mut tls = tls.unwrap();
            let mut got = Vec::new();
            let err = tls.read_to_end(&mut got).unwrap_err();
            (err.kind(), got)
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = tls::connect("localhost", tcp, pki.client_config()).unwrap();
        tls.write_all(b"truncated?").unwrap();
        // A TCP FIN with no close_notify before it. (Dropping alone could
        // send a RST instead when the server's session tickets are still
        // unread, which would make the test racy.)
        tls.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
        drop(tls); // no shutdown(): Drop does no I/O
        let (kind, got) = server.get().unwrap();
        assert_eq!(kind, io::ErrorKind::UnexpectedEof);
        assert_eq!(got, b"truncated?", "the data before the close still arrives");
    })
}

/// A transport timeout passes through as the transport's error; the
/// stream stays usable and no data is lost.
#[test]
fn transport_timeout_passes_through() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| {
            let mut tls = tls.unwrap();
            greenrt::sleep(Duration::from_millis(300));
            tls.write_all(b"late but whole").unwrap();
            tls.shutdown().unwrap();
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = tls::connect("localhost", tcp, pki.client_config()).unwrap();
        tls.get_ref().set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let err = tls.read(&mut [0u8; 16]).unwrap_err();
        assert!(
            matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            "{err:?}"
        );
        tls.get_ref().set_read_timeout(None).unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"late but whole");
        server.join().unwrap();
    })
}

#[test]
fn alpn_and_sni_are_negotiated() {
    within(30, || {
        let pki = Pki::new(&["localhost", "api.test"]);
        let mut server_config = tls::server_config_from_pem(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::new(Arc::new(server_config));
        let (addr, server) = serve_one(acceptor, |tls| {
            let tls = tls.unwrap();
            (
                tls.alpn_protocol().map(<[u8]>::to_vec),
                tls.sni_hostname().map(str::to_owned),
            )
        });
        let mut config = (*pki.client_config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).unwrap();
        let tls = tls::connect("api.test", tcp, Arc::new(config)).unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (alpn, sni) = server.get().unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(sni.as_deref(), Some("api.test"));
    })
}

/// TLS 1.2 (enabled beside 1.3) works the same way, clean close included.
#[test]
fn tls12_handshake_and_close() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| {
            let mut tls = tls.unwrap();
            let mut got = Vec::new();
            tls.read_to_end(&mut got).unwrap();
            tls.write_all(&got).unwrap();
            tls.shutdown().unwrap();
            tls.protocol_version()
        });
        let config = ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(pki.roots())
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = tls::connect("localhost", tcp, Arc::new(config)).unwrap();
        assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_2));
        tls.write_all(b"twelve").unwrap();
        tls.shutdown().unwrap();
        let mut back = Vec::new();
        tls.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"twelve");
        assert_eq!(server.get().unwrap(), Some(ProtocolVersion::TLSv1_2));
        // Key updates are TLS 1.3 only.
        assert!(tls.refresh_traffic_keys().is_err());
    })
}

/// Key updates from both sides mid-stream, one of them on a split
/// stream: data keeps flowing both ways.
#[test]
fn key_update_mid_stream() {
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| {
            let (mut r, mut w) = tls.unwrap().split();
            let mut line = [0u8; 5];
            for round in 0..3u8 {
                r.read_exact(&mut line).unwrap();
                if round == 1 {
                    w.refresh_traffic_keys().unwrap();
                }
                w.write_all(&line).unwrap();
            }
            w.shutdown().unwrap();
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).unwrap();
            rest.is_empty()
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = tls::connect("localhost", tcp, pki.client_config()).unwrap();
        for round in 0..3u8 {
            if round == 1 {
                tls.refresh_traffic_keys().unwrap();
            }
            let msg = [b'a' + round; 5];
            tls.write_all(&msg).unwrap();
            let mut back = [0u8; 5];
            tls.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
        tls.shutdown().unwrap();
        assert_eq!(tls.read(&mut [0u8; 4]).unwrap(), 0);
        assert!(server.get().unwrap());
    })
}

/// An IP address as the server name: verified against the certificate's
/// IP SAN, and sent without SNI.
#[test]
fn ip_address_server_name() {
    within(30, || {
        let pki = Pki::new(&["127.0.0.1"]);
        let (addr, server) = serve_one(pki.acceptor(), |tls| tls.unwrap().sni_hostname().map(str::to_owned));
        let tcp = TcpStream::connect(addr).unwrap();
        tls::connect("127.0.0.1", tcp, pki.client_config()).unwrap();
        assert_eq!(server.get().unwrap(), None);
        // A bad name fails before any I/O.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let err = tls::connect("not a name!", tcp, pki.client_config()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("invalid TLS server name \"not a name!\""),
            "{err}"
        );
    })
}

/// 100 clients and a server greenlet per connection, all on this thread's
/// hub: the handshakes overlap (each parks on the socket while the others
/// run) and all succeed.
#[test]
fn hundred_concurrent_handshakes_on_one_hub() {
    const N: usize = 100;
    within(120, || {
        let pki = Pki::new(&["localhost"]);
        let acceptor = pki.acceptor();
        let config = pki.client_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::current().id();
        let switches_before = greenrt::hub::switch_count();

        let server = greenrt::spawn(move || {
            let handlers: Vec<_> = (0..N)
                .map(|_| {
                    let (tcp, _) = listener.accept().unwrap();
                    let acceptor = acceptor.clone();
                    greenrt::spawn(move || {
                        let mut tls = acceptor.accept(tcp).unwrap();
                        let mut line = [0u8; 32];
                        let n = tls.read(&mut line).unwrap();
                        let mut reply = line[..n].to_vec();
                        reply.reverse();
                        tls.write_all(&reply).unwrap();
                        tls.shutdown().unwrap();
                    })
                })
                .collect();
            greenrt::joinall(&handlers, None).unwrap();
            handlers.iter().filter(|h| h.successful()).count()
        });

        let in_flight = Rc::new(Cell::new(0usize));
        let max_in_flight = Rc::new(Cell::new(0usize));
        let clients: Vec<_> = (0..N)
            .map(|i| {
                let (config, in_flight, max_in_flight) = (config.clone(), in_flight.clone(), max_in_flight.clone());
                greenrt::spawn(move || {
                    assert_eq!(std::thread::current().id(), thread);
                    in_flight.set(in_flight.get() + 1);
                    max_in_flight.set(max_in_flight.get().max(in_flight.get()));
                    let tcp = TcpStream::connect(addr).unwrap();
                    let mut tls = tls::connect("localhost", tcp, config).unwrap();
                    in_flight.set(in_flight.get() - 1);
                    let msg = format!("client {i:03}");
                    tls.write_all(msg.as_bytes()).unwrap();
                    let mut reply = String::new();
                    tls.read_to_string(&mut reply).unwrap();
                    assert_eq!(reply, msg.chars().rev().collect::<String>());
                    i
                })
            })
            .collect();
        let done: Vec<usize> = clients.iter().map(|c| c.get().unwrap()).collect();
        assert_eq!(done, (0..N).collect::<Vec<_>>());
        assert_eq!(server.get().unwrap(), N, "every server-side handshake succeeded");
        assert!(
            max_in_flight.get() >= N / 2,
            "handshakes did not overlap: at most {} at once",
            max_in_flight.get()
        );
        let switches = greenrt::hub::switch_count() - switches_before;
        assert!(switches >= 2 * N as u64, "only {switches} switches for {N} handshakes");
    })
}

#[test]
fn system_roots_config_loads() {
    let config = tls::client_config().expect("this machine has a CA bundle (ca-certificates)");
    // Loaded once: the same config again.
    assert!(Arc::ptr_eq(&config, &tls::client_config().unwrap()));
    // A real verifier: our private CA is in neither root set.
    within(30, || {
        let pki = Pki::new(&["localhost"]);
        for config in [config, tls::client_config_webpki_roots()] {
            let (addr, server) = serve_one(pki.acceptor(), |tls| tls.is_err());
            let tcp = TcpStream::connect(addr).unwrap();
            let err = tls::connect("localhost", tcp, config).unwrap_err();
            assert!(err.to_string().contains("UnknownIssuer"), "{err}");
            assert!(server.get().unwrap());
        }
    })
}

#[test]
fn empty_system_store_is_a_clear_error() {
    if util::is_child() {
        let err = tls::client_config().unwrap_err();
        println!("ERROR={err}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("greenrt-tls-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    let out = util::run_child(
        "empty_system_store_is_a_clear_error",
        &[
            ("SSL_CERT_FILE", empty.to_str().unwrap()),
            ("SSL_CERT_DIR", dir.to_str().unwrap()),
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ERROR=no usable root certificates found in the system certificate store"),
        "{stdout}"
    );
    assert!(
        stdout.contains("client_config_webpki_roots"),
        "names the alternative: {stdout}"
    );
}

#[test]
fn bad_pem_is_a_clear_error() {
    let pki = Pki::new(&["localhost"]);
    let other = Pki::new(&["localhost"]);
    let err = TlsAcceptor::from_pem(b"not pem", pki.key_pem.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("no certificate found"), "{err}");
    let err = TlsAcceptor::from_pem(pki.chain_pem.as_bytes(), b"").unwrap_err();
    assert!(err.to_string().contains("no usable private key"), "{err}");
    let err = TlsAcceptor::from_pem(pki.chain_pem.as_bytes(), other.key_pem.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("certificate and key rejected"), "{err}");
    let err = TlsAcceptor::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");

    let dir = std::env::temp_dir().join(format!("greenrt-tls-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &pki.chain_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &pki.key_pem).unwrap();
    let ok = TlsAcceptor::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::remove_dir_all(&dir).unwrap();
    ok.unwrap();
}

/// The same API over blocking std sockets in plain threads: `TlsStream`
/// is `Send` when its stream is.
#[test]
fn std_streams_in_threads() {
    let pki = Pki::new(&["localhost"]);
    let acceptor = pki.acceptor();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        // Plain threads have no greenlet Timeout: bound the waits instead.
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut tls = acceptor.accept(tcp).unwrap();
        let mut data = Vec::new();
        tls.read_to_end(&mut data).unwrap();
        tls.write_all(&data).unwrap();
        tls.shutdown().unwrap();
    });
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let tls = tls::connect("localhost", tcp, pki.client_config()).unwrap();
    // Move the connected stream to another thread and finish there.
    let client = std::thread::spawn(move || {
        let mut tls = tls;
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        tls.write_all(&data).unwrap();
        tls.shutdown().unwrap();
        let mut back = Vec::new();
        tls.read_to_end(&mut back).unwrap();
        back == data
    });
    assert!(client.join().unwrap(), "echo over std sockets differs");
    server.join().unwrap();
}
