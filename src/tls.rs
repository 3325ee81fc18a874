//! TLS over any byte stream (gevent's `gevent.ssl`), built on rustls 0.23
//! with the *ring* crypto provider passed explicitly (no process-wide
//! default provider is installed or consulted).
//!
//! [`TlsStream<S>`] wraps any `S: Read + Write`: a cooperative
//! `greenrt::net::TcpStream` (its reads and writes park the greenlet, so
//! many handshakes and transfers share one hub), or a blocking std stream
//! in a thread of its own.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use greenrt::net::TcpStream;
//! # fn main() -> std::io::Result<()> {
//! let tcp = TcpStream::connect("example.org:443")?;
//! let mut tls = greenrt::tls::connect("example.org", tcp, greenrt::tls::client_config()?)?;
//! tls.write_all(b"GET / HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")?;
//! let mut page = Vec::new();
//! tls.read_to_end(&mut page)?;
//! # Ok(()) }
//! ```
//!
//! Server side, a greenlet per connection (each handshake parks only its
//! own greenlet):
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use greenrt::net::TcpListener;
//! use greenrt::tls::TlsAcceptor;
//! # fn main() -> std::io::Result<()> {
//! let acceptor = TlsAcceptor::from_pem_files("cert.pem", "key.pem")?;
//! let listener = TcpListener::bind("127.0.0.1:8443")?;
//! loop {
//!     let (tcp, _) = listener.accept()?;
//!     let acceptor = acceptor.clone();
//!     greenrt::spawn(move || -> std::io::Result<()> {
//!         let mut tls = acceptor.accept(tcp)?;
//!         let mut line = [0; 1024];
//!         let n = tls.read(&mut line)?;
//!         tls.write_all(&line[..n])?;
//!         tls.shutdown()
//!     });
//! }
//! # }
//! ```
//!
//! # Semantics
//!
//! - [`connect`] and [`TlsAcceptor::accept`] return after the handshake
//!   has completed. A failed handshake is an `io::Error` whose message
//!   says who the peer was and why, e.g. `TLS handshake with example.test
//!   failed: invalid peer certificate: certificate not valid for name
//!   "example.test"; ...`; its inner error is a [`HandshakeError`], which
//!   gives the rustls error for matching.
//! - `write` encrypts and then sends the ciphertext completely before it
//!   returns; `flush` sends anything still queued.
//! - `read` returns `Ok(0)` only after the peer's `close_notify` (a clean
//!   TLS close). A peer that closes the transport without it gives an
//!   error of kind `UnexpectedEof`: the data may have been truncated.
//! - [`TlsStream::shutdown`] sends `close_notify` (gevent's
//!   `SSLSocket.unwrap` does the same explicitly). Dropping a `TlsStream`
//!   does **no** I/O: a drop can happen while a greenlet unwinds from a
//!   kill, where parking again is wrong, and on a blocking stream it
//!   could block forever. Call `shutdown()` for a clean close.
//! - The underlying stream's errors pass through unchanged, including
//!   `WouldBlock`/`TimedOut` from a read or write timeout or a
//!   non-blocking socket: no data is lost, the call may be repeated. A
//!   `write` that had already taken plaintext when the transport timed
//!   out returns `Ok(n)`; the rest of its ciphertext goes out with the
//!   next `write` or `flush`. The handshake itself needs the stream to
//!   block (cooperatively or not): a `WouldBlock` during it fails it.
//! - A `TlsStream` is one object, like gevent's `SSLSocket`: one greenlet
//!   uses it at a time. To read in one greenlet while another writes,
//!   [`split`](TlsStream::split) it (for streams where `&S` is
//!   `Read + Write`, such as greenrt's and std's sockets).

use std::cell::{Cell, RefCell};
use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, Connection, ProtocolVersion, ServerConnection, SupportedCipherSuite};

use crate::sync::Lock;

pub use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The rustls crate these types come from, for matching errors
/// (`rustls::Error`, `rustls::CertificateError`) and building configs
/// without depending on a second, possibly different, rustls version.
pub use rustls;

// ===== configuration =====

/// The crypto provider every config made here uses: rustls' *ring*
/// provider, handed to each config explicitly.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A client config that trusts the operating system's root certificates
/// (via rustls-native-certs; on Linux the distribution's CA bundle, or the
/// files named by `SSL_CERT_FILE` / `SSL_CERT_DIR` when set). The store is
/// loaded once per process; later calls return the same config.
///
/// Fails with a clear error when no usable root certificate can be
/// loaded; [`client_config_webpki_roots`] is the alternative that needs
/// nothing from the system.
pub fn client_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| system_roots().map(client_config_with_roots))
        .clone()
        .map_err(|msg| io::Error::new(io::ErrorKind::NotFound, msg))
}

/// Loads the system root store (what [`client_config`] uses), as a
/// message on failure.
fn system_roots() -> Result<RootCertStore, String> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if added > 0 {
        return Ok(roots);
    }
    let mut msg = String::from("no usable root certificates found in the system certificate store");
    if ignored > 0 {
        msg.push_str(&format!(" ({ignored} could not be parsed)"));
    }
    for e in &loaded.errors {
        msg.push_str(&format!("; {e}"));
    }
    msg.push_str(
        "; install the CA bundle (Debian: ca-certificates), point SSL_CERT_FILE/SSL_CERT_DIR at one, \
         or use greenrt::tls::client_config_webpki_roots()",
    );
    Err(msg)
}

/// A client config that trusts the Mozilla root set compiled into the
/// program (webpki-roots): no dependence on the system's CA bundle, but it
/// changes only when the program is rebuilt.
pub fn client_config_webpki_roots() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            client_config_with_roots(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// A client config that trusts exactly `roots` (a private CA, a test
/// certificate), with rustls' safe default protocol versions and no
/// client certificate. To set ALPN or other options, clone the config:
/// `let mut c = (*config).clone(); c.alpn_protocols = ...`.
pub fn client_config_with_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Parses PEM certificates (e.g. a CA's certificate for a
/// [`RootCertStore`], or a server's chain).
pub fn certificates_from_pem(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_input(format!("TLS certificate PEM is malformed: {e}")))?;
    if certs.is_empty() {
        return Err(invalid_input(
            "no certificate found in the certificate PEM (expected \"-----BEGIN CERTIFICATE-----\" blocks)",
        ));
    }
    Ok(certs)
}

/// A server config from a PEM certificate chain (leaf first) and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1), with rustls' safe default
/// protocol versions and no client authentication. For ALPN or other
/// options, set fields on it and pass it to [`TlsAcceptor::new`].
pub fn server_config_from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<ServerConfig> {
    let certs = certificates_from_pem(cert_chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        invalid_input(format!(
            "no usable private key found in the key PEM (expected a PKCS#8, PKCS#1 or SEC1 private key block): {e}"
        ))
    })?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid_input(format!("TLS server config rejected: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid_input(format!("TLS certificate and key rejected: {e}")))
}

fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

// ===== handshakes =====

/// Connects as a TLS client over `stream`: the handshake completes (and
/// the server's certificate is verified for `server_name`, a DNS name or
/// an IP address) before this returns.
///
/// Errors name the server and the cause, e.g. `TLS handshake with
/// example.test failed: invalid peer certificate: UnknownIssuer (...)`;
/// the inner error is a [`HandshakeError`].
pub fn connect<S: Read + Write>(server_name: &str, stream: S, config: Arc<ClientConfig>) -> io::Result<TlsStream<S>> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| invalid_input(format!("invalid TLS server name {server_name:?}: {e}")))?;
    let conn = ClientConnection::new(config, name)
        .map_err(|e| handshake_error(server_name.to_owned(), Cause::Tls(e), io::ErrorKind::InvalidInput))?;
    TlsStream::handshake(Connection::Client(conn), stream, server_name.to_owned())
}

/// The server side: wraps accepted streams in TLS with one
/// [`ServerConfig`]. Cheap to clone (the config is shared).
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor with a ready-made config (see
    /// [`server_config_from_pem`] for a starting point).
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor { config }
    }

    /// An acceptor from a PEM certificate chain (leaf first) and a PEM
    /// private key. Errors say what was missing or rejected (no
    /// certificate, no key, a key that does not match the certificate).
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::new(Arc::new(server_config_from_pem(
            cert_chain_pem,
            key_pem,
        )?)))
    }

    /// Like [`from_pem`](Self::from_pem), reading the two files; errors
    /// name the file.
    pub fn from_pem_files(cert_chain_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> io::Result<TlsAcceptor> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display())))
        };
        let (cert_path, key_path) = (cert_chain_path.as_ref(), key_path.as_ref());
        let certs = read(cert_path)?;
        let key = read(key_path)?;
        TlsAcceptor::from_pem(&certs, &key).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{e} (certificate {}, key {})", cert_path.display(), key_path.display()),
            )
        })
    }

    /// The shared server config.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server side of the handshake over `stream`; returns once
    /// it has completed. Errors read `TLS handshake with a client failed:
    /// ...` and carry a [`HandshakeError`].
    pub fn accept<S: Read + Write>(&self, stream: S) -> io::Result<TlsStream<S>> {
        let conn = ServerConnection::new(self.config.clone())
            .map_err(|e| handshake_error("a client".into(), Cause::Tls(e), io::ErrorKind::InvalidInput))?;
        TlsStream::handshake(Connection::Server(conn), stream, "a client".into())
    }
}

/// Why a handshake failed: the inner error of the `io::Error` that
/// [`connect`] and [`TlsAcceptor::accept`] return.
///
/// ```no_run
/// # fn f(err: std::io::Error) {
/// use greenrt::tls::HandshakeError;
/// if let Some(h) = err.get_ref().and_then(|e| e.downcast_ref::<HandshakeError>()) {
///     eprintln!("peer {}: {:?}", h.peer(), h.tls_error());
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct HandshakeError {
    peer: String,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    /// The TLS protocol failed (certificate, alert, mismatch...).
    Tls(rustls::Error),
    /// The transport failed or closed.
    Io(io::Error),
}

impl HandshakeError {
    /// Who the handshake was with: the server name on the client side,
    /// `"a client"` on the server side.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The TLS-level cause (for matching on e.g.
    /// `rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)`),
    /// or `None` when the transport failed.
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        match &self.cause {
            Cause::Tls(e) => Some(e),
            Cause::Io(_) => None,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS handshake with {} failed: ", self.peer)?;
        match &self.cause {
            Cause::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                write!(f, "the peer closed the connection before the handshake completed")
            }
            Cause::Io(e) => write!(f, "{e}"),
            Cause::Tls(e) => {
                write!(f, "{e}")?;
                if let rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) = e {
                    write!(
                        f,
                        " (the certificate chain does not lead to a root certificate this client trusts)"
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl StdError for HandshakeError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.cause {
            Cause::Tls(e) => Some(e),
            Cause::Io(e) => Some(e),
        }
    }
}

fn handshake_error(peer: String, cause: Cause, kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, HandshakeError { peer, cause })
}

// ===== the stream =====

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
    fn handshake(conn: Connection, stream: S, peer: String) -> io::Result<TlsStream<S>> {
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

// ===== split =====

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
