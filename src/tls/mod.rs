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

mod config;
mod handshake;
mod stream;

pub use config::{
    certificates_from_pem, client_config, client_config_webpki_roots, client_config_with_roots, provider,
    server_config_from_pem,
};
pub use handshake::{connect, HandshakeError, TlsAcceptor};
pub use rustls::{ClientConfig, RootCertStore, ServerConfig};
pub use stream::{TlsReadHalf, TlsStream, TlsWriteHalf};

/// The rustls crate these types come from, for matching errors
/// (`rustls::Error`, `rustls::CertificateError`) and building configs
/// without depending on a second, possibly different, rustls version.
pub use rustls;
