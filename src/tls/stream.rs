//! `TlsStream`: records over any cooperative stream, and its split into
//! a read half and a write half that two greenlets can use at once.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::rc::Rc;

use rustls::pki_types::CertificateDer;
use rustls::{Connection, ProtocolVersion, SupportedCipherSuite};

use super::handshake::{handshake_error, Cause};
use crate::sync::Lock;

/// What was negotiated; fixed once the handshake is done (rustls does not
/// renegotiate).
#[derive(Debug, Clone)]
struct Session {
    peer_certificates: Option<Vec<CertificateDer<'static>>>,
    alpn_protocol: Option<Vec<u8>>,
    protocol_version: Option<ProtocolVersion>,
    cipher_suite: Option<SupportedCipherSuite>,
    sni: Option<String>,
}

/// Ciphertext read from the transport and not yet handed to rustls. Only
/// the reading side touches it, so it can be filled while rustls' state
/// is free for a writer.
struct RxBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The transport returned end-of-file.
    eof: bool,
    /// rustls has been told about that end-of-file.
    eof_fed: bool,
}

/// Big enough for two full TLS records per transport read.
const RX_SIZE: usize = 34 * 1024;

impl RxBuf {
    fn new() -> RxBuf {
        RxBuf {
            buf: vec![0; RX_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            eof_fed: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// One read from the transport (which parks the greenlet on a
    /// cooperative stream). Errors pass through; nothing is lost.
    fn fill<R: Read + ?Sized>(&mut self, io: &mut R) -> io::Result<()> {
        debug_assert!(self.is_empty());
        self.start = 0;
        self.end = 0;
        loop {
            match io.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Ciphertext taken from rustls and not yet written to the transport.
#[derive(Default)]
struct TxBuf {
    buf: Vec<u8>,
    pos: usize,
}

/// The state both halves of a split stream share. No `RefCell` borrow is
/// ever held across a transport read or write, so one greenlet may park
/// in a read while another encrypts and writes.
struct Core<S> {
    state: State,
    stream: S,
}

/// Everything but the transport, so it can be borrowed beside it.
struct State {
    conn: RefCell<Connection>,
    /// Used only by whoever holds the right to write (the owner of an
    /// unsplit stream; the holder of the write lock of a split one).
    tx: RefCell<TxBuf>,
    /// `close_notify` was queued by `shutdown`.
    closed: Cell<bool>,
    session: Session,
}

/// What reading needs next.
enum Step {
    /// Plaintext (or 0 at a clean close).
    Data(usize),
    /// The transport must be read.
    Input,
    /// rustls queued records to send (e.g. a key update response).
    Flush,
    /// Progress was made; try again.
    Again,
    /// The peer violated the protocol; an alert is queued.
    Fatal(rustls::Error),
}

/// Hands buffered ciphertext to rustls and returns plaintext if any.
fn read_step(conn: &RefCell<Connection>, rx: &mut RxBuf, buf: &mut [u8]) -> io::Result<Step> {
    let mut c = conn.borrow_mut();
    match c.reader().read(buf) {
        Ok(n) => return Ok(Step::Data(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    if rx.is_empty() {
        if !rx.eof {
            return Ok(Step::Input);
        }
        if rx.eof_fed {
            // rustls knows and still reports no close state; never spin.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed connection without sending TLS close_notify",
            ));
        }
        rx.eof_fed = true;
        c.read_tls(&mut io::empty())?;
    } else {
        let n = c.read_tls(&mut &rx.buf[rx.start..rx.end])?;
        rx.start += n;
    }
    match c.process_new_packets() {
        Ok(_) if c.wants_write() => Ok(Step::Flush),
        Ok(_) => Ok(Step::Again),
        Err(e) => Ok(Step::Fatal(e)),
    }
}

/// Moves everything rustls has queued to the transport, completely.
/// Call only with the right to write (see [`Core::tx`]).
fn flush_tls<W: Write + ?Sized>(conn: &RefCell<Connection>, tx: &RefCell<TxBuf>, io: &mut W) -> io::Result<()> {
    let mut tx = tx.borrow_mut();
    loop {
        if tx.pos == tx.buf.len() {
            tx.buf.clear();
            tx.pos = 0;
            let mut c = conn.borrow_mut();
            while c.wants_write() {
                c.write_tls(&mut tx.buf)?;
            }
            drop(c);
            if tx.buf.is_empty() {
                return io.flush();
            }
        }
        let pos = tx.pos;
        match io.write(&tx.buf[pos..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the underlying stream accepted no bytes",
                ))
            }
            Ok(n) => tx.pos += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_retryable(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn fatal(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl State {
    /// `write` for whoever holds the right to write.
    fn write_with<W: Write + ?Sized>(&self, io: &mut W, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.closed.get() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write on a TLS stream after shutdown() sent close_notify",
            ));
        }
        // Ciphertext a timed-out earlier write left behind goes first.
        flush_tls(&self.conn, &self.tx, io)?;
        let n = self.conn.borrow_mut().writer().write(buf)?;
        match flush_tls(&self.conn, &self.tx, io) {
            Ok(()) => Ok(n),
            // The plaintext is taken and its ciphertext queued: report it
            // written; the next write or flush sends the rest.
            Err(e) if n > 0 && is_retryable(&e) => Ok(n),
            Err(e) => Err(e),
        }
    }

    fn refresh_keys_with<W: Write + ?Sized>(&self, io: &mut W) -> io::Result<()> {
        self.conn.borrow_mut().refresh_traffic_keys().map_err(fatal)?;
        flush_tls(&self.conn, &self.tx, io)
    }

    fn shutdown_with<W: Write + ?Sized>(&self, io: &mut W) -> io::Result<()> {
        if !self.closed.replace(true) {
            self.conn.borrow_mut().send_close_notify();
        }
        flush_tls(&self.conn, &self.tx, io)
    }
}

/// A TLS connection over a stream `S`: `Read` gives plaintext from the
/// peer, `Write` encrypts and sends. See the [module docs](self) for the
/// exact semantics of close, errors and sharing.
///
/// `Send` when `S` is, so a `TlsStream` over a std socket can move between
/// threads (greenrt's own sockets stay on their hub's thread).
pub struct TlsStream<S> {
    core: Core<S>,
    rx: RxBuf,
    peer: String,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.peer)
            .field("protocol_version", &self.core.state.session.protocol_version)
            .field("alpn_protocol", &self.core.state.session.alpn_protocol)
            .finish_non_exhaustive()
    }
}

impl<S: Read + Write> TlsStream<S> {
    pub(super) fn handshake(conn: Connection, stream: S, peer: String) -> io::Result<TlsStream<S>> {
        let mut tls = TlsStream {
            core: Core {
                state: State {
                    conn: RefCell::new(conn),
                    tx: RefCell::new(TxBuf::default()),
                    closed: Cell::new(false),
                    session: Session {
                        peer_certificates: None,
                        alpn_protocol: None,
                        protocol_version: None,
                        cipher_suite: None,
                        sni: None,
                    },
                },
                stream,
            },
            rx: RxBuf::new(),
            peer,
        };
        if let Err(cause) = tls.drive_handshake() {
            let kind = match &cause {
                Cause::Io(e) => e.kind(),
                Cause::Tls(_) => io::ErrorKind::InvalidData,
            };
            return Err(handshake_error(tls.peer, cause, kind));
        }
        let c = tls.core.state.conn.get_mut();
        tls.core.state.session = Session {
            peer_certificates: c.peer_certificates().map(|certs| certs.to_vec()),
            alpn_protocol: c.alpn_protocol().map(<[u8]>::to_vec),
            protocol_version: c.protocol_version(),
            cipher_suite: c.negotiated_cipher_suite(),
            sni: match c {
                Connection::Server(s) => s.server_name().map(str::to_owned),
                Connection::Client(_) => None,
            },
        };
        Ok(tls)
    }

    fn drive_handshake(&mut self) -> Result<(), Cause> {
        let core = &mut self.core;
        loop {
            // Our flight first (ClientHello, ..., Finished, tickets).
            flush_tls(&core.state.conn, &core.state.tx, &mut core.stream).map_err(Cause::Io)?;
            let c = core.state.conn.get_mut();
            if !c.is_handshaking() {
                return Ok(());
            }
            if self.rx.is_empty() {
                if self.rx.eof {
                    return Err(Cause::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                self.rx.fill(&mut core.stream).map_err(Cause::Io)?;
                continue;
            }
            let n = c
                .read_tls(&mut &self.rx.buf[self.rx.start..self.rx.end])
                .map_err(Cause::Io)?;
            self.rx.start += n;
            if let Err(e) = c.process_new_packets() {
                // Tell the peer why (the alert rustls queued); best effort.
                let _ = flush_tls(&core.state.conn, &core.state.tx, &mut core.stream);
                return Err(Cause::Tls(e));
            }
        }
    }

    /// Sends `close_notify` (a clean TLS close: the peer's reads return
    /// `Ok(0)` once it has read everything before it) and flushes. Later
    /// writes fail with `BrokenPipe`; reading on (until the peer's own
    /// `close_notify`) still works. Repeating it only flushes again. The
    /// transport stays open: to half-close it too, shut down the
    /// underlying socket through [`get_ref`](Self::get_ref) afterwards.
    pub fn shutdown(&mut self) -> io::Result<()> {
        let core = &mut self.core;
        core.state.shutdown_with(&mut core.stream)
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// Rolls this side's TLS 1.3 traffic keys now (a `key_update` asking
    /// the peer to roll its own too) and sends it. rustls already rolls
    /// keys when a cipher's limits require it; this is for connections
    /// about to sit idle for long. An error on TLS 1.2.
    pub fn refresh_traffic_keys(&mut self) -> io::Result<()> {
        let core = &mut self.core;
        core.state.refresh_keys_with(&mut core.stream)
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let core = &mut self.core;
        loop {
            match read_step(&core.state.conn, &mut self.rx, buf)? {
                Step::Data(n) => return Ok(n),
                Step::Input => self.rx.fill(&mut core.stream)?,
                Step::Flush => flush_tls(&core.state.conn, &core.state.tx, &mut core.stream)?,
                Step::Again => {}
                Step::Fatal(e) => {
                    let _ = flush_tls(&core.state.conn, &core.state.tx, &mut core.stream);
                    return Err(fatal(e));
                }
            }
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let core = &mut self.core;
        core.state.write_with(&mut core.stream, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let core = &mut self.core;
        flush_tls(&core.state.conn, &core.state.tx, &mut core.stream)
    }
}

impl<S> TlsStream<S> {
    /// The underlying stream, e.g. to set timeouts or read its addresses.
    /// Reading or writing it directly corrupts the TLS session.
    pub fn get_ref(&self) -> &S {
        &self.core.stream
    }

    /// The underlying stream, mutably; the same caution as
    /// [`get_ref`](Self::get_ref).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.core.stream
    }

    /// Gives back the underlying stream without sending anything (call
    /// [`shutdown`](Self::shutdown) first for a clean close). Ciphertext
    /// already read from it and not yet decrypted is lost.
    pub fn into_inner(self) -> S {
        self.core.stream
    }

    /// The peer's certificate chain, leaf first: the server's on the
    /// client side; `None` on the server side (no client authentication).
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.core.state.session.peer_certificates.as_deref()
    }

    /// The ALPN protocol both sides agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.core.state.session.alpn_protocol.as_deref()
    }

    /// The negotiated TLS version (`TLSv1_3` or `TLSv1_2`).
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.core.state.session.protocol_version
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.core.state.session.cipher_suite
    }

    /// On the server side, the name the client asked for (SNI), if it sent
    /// one; `None` on the client side.
    pub fn sni_hostname(&self) -> Option<&str> {
        self.core.state.session.sni.as_deref()
    }

    /// Runs `f` on the rustls connection, for anything not exposed here
    /// (e.g. `export_keying_material`).
    pub fn with_connection<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.core.state.conn.borrow())
    }
}

// ----- split -----

struct SplitShared<S> {
    core: Core<S>,
    /// The right to write to the transport: the write half holds it while
    /// writing; the read half takes it only when free, to send records
    /// rustls queued while reading.
    write_lock: Lock,
}

/// The reading half of a [split](TlsStream::split) [`TlsStream`].
pub struct TlsReadHalf<S> {
    shared: Rc<SplitShared<S>>,
    rx: RxBuf,
    peer: String,
}

/// The writing half of a [split](TlsStream::split) [`TlsStream`].
pub struct TlsWriteHalf<S> {
    shared: Rc<SplitShared<S>>,
}

impl<S> fmt::Debug for TlsReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReadHalf")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for TlsWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsWriteHalf").finish_non_exhaustive()
    }
}

impl<S> TlsStream<S>
where
    for<'a> &'a S: Read + Write,
{
    /// Splits the stream so one greenlet can read while another writes
    /// (gevent's SSLSocket cannot). Both halves stay on this thread's hub;
    /// [`TlsReadHalf::unsplit`] puts them back together.
    pub fn split(self) -> (TlsReadHalf<S>, TlsWriteHalf<S>) {
        let shared = Rc::new(SplitShared {
            core: self.core,
            write_lock: Lock::new(),
        });
        (
            TlsReadHalf {
                shared: shared.clone(),
                rx: self.rx,
                peer: self.peer,
            },
            TlsWriteHalf { shared },
        )
    }
}

fn lock_error(_: crate::LoopExit) -> io::Error {
    io::Error::other("TLS write lock: this operation would block forever")
}

impl<S> TlsReadHalf<S> {
    /// Joins the two halves of one stream again.
    ///
    /// # Panics
    ///
    /// If `write` came from a different stream.
    pub fn unsplit(self, write: TlsWriteHalf<S>) -> TlsStream<S> {
        assert!(
            Rc::ptr_eq(&self.shared, &write.shared),
            "TlsReadHalf::unsplit with the write half of another stream"
        );
        drop(write);
        let shared =
            Rc::try_unwrap(self.shared).unwrap_or_else(|_| unreachable!("only the two halves hold the shared state"));
        TlsStream {
            core: shared.core,
            rx: self.rx,
            peer: self.peer,
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.shared.core.stream
    }
}

impl<S> Read for TlsReadHalf<S>
where
    for<'a> &'a S: Read + Write,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let sh = &*self.shared;
        let core = &sh.core;
        loop {
            match read_step(&core.state.conn, &mut self.rx, buf)? {
                Step::Data(n) => return Ok(n),
                Step::Input => self.rx.fill(&mut &core.stream)?,
                Step::Flush => {
                    // If the writer holds the lock, it sends these records
                    // after its current ones: it drains rustls before it
                    // lets go.
                    if let Some(_held) = sh.write_lock.try_acquire_guard() {
                        flush_tls(&core.state.conn, &core.state.tx, &mut &core.stream)?;
                    }
                }
                Step::Again => {}
                Step::Fatal(e) => {
                    if let Some(_held) = sh.write_lock.try_acquire_guard() {
                        let _ = flush_tls(&core.state.conn, &core.state.tx, &mut &core.stream);
                    }
                    return Err(fatal(e));
                }
            }
        }
    }
}

impl<S> TlsWriteHalf<S>
where
    for<'a> &'a S: Read + Write,
{
    /// [`TlsStream::shutdown`] for a split stream: sends `close_notify`.
    pub fn shutdown(&mut self) -> io::Result<()> {
        let sh = &*self.shared;
        let _held = sh.write_lock.acquire_guard().map_err(lock_error)?;
        sh.core.state.shutdown_with(&mut &sh.core.stream)
    }

    /// [`TlsStream::refresh_traffic_keys`] for a split stream.
    pub fn refresh_traffic_keys(&mut self) -> io::Result<()> {
        let sh = &*self.shared;
        let _held = sh.write_lock.acquire_guard().map_err(lock_error)?;
        sh.core.state.refresh_keys_with(&mut &sh.core.stream)
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.shared.core.stream
    }
}

impl<S> Write for TlsWriteHalf<S>
where
    for<'a> &'a S: Read + Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let sh = &*self.shared;
        let _held = sh.write_lock.acquire_guard().map_err(lock_error)?;
        sh.core.state.write_with(&mut &sh.core.stream, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let sh = &*self.shared;
        let _held = sh.write_lock.acquire_guard().map_err(lock_error)?;
        flush_tls(&sh.core.state.conn, &sh.core.state.tx, &mut &sh.core.stream)
    }
}
