//! An HTTP/1.1 server on [`StreamServer`] (gevent's
//! `gevent.pywsgi.WSGIServer`, with a Rust handler in place of a WSGI
//! application).
//!
//! ```no_run
//! use greenrt::server::http::{self, Response};
//! let server = http::bind("127.0.0.1:8080", |req| {
//!     Response::text(format!("hello from {}\n", req.path()))
//! }).unwrap();
//! server.serve_forever().unwrap();
//! ```
//!
//! A handler is `Fn(&mut Request) -> Response`, run in the connection's
//! greenlet; it may block cooperatively (sleep, sockets, locks). What the
//! server does around it:
//!
//! - **Keep-alive and pipelining**: HTTP/1.1 connections stay open unless
//!   either side says `Connection: close`; HTTP/1.0 ones close unless the
//!   client asks for `keep-alive`. Requests sent back to back are parsed
//!   from what is already buffered and answered in order; their responses
//!   are coalesced into one write when they are ready together.
//! - **Bodies**: the request body is read lazily through
//!   [`Request::body`], decoding `Content-Length` or chunked framing; the
//!   first read answers `Expect: 100-continue`. What the handler leaves
//!   unread is drained before the next request (or the connection closes,
//!   if that is more than 256 KiB). A [`Response`] is either whole (sent
//!   with `Content-Length`) or streamed ([`Response::stream`], sent
//!   chunked). HEAD responses carry the headers, never the body.
//! - **Limits** ([`HttpConfig`]): request line plus headers at most 8 KiB
//!   (`414 URI Too Long` if the request line alone does not fit, else
//!   `431`), at most 100 headers (`431`), bodies at most 16 MiB (`413`).
//!   Malformed requests get `400` and the connection closes.
//! - **Timeouts**: a request head must arrive within the header timeout
//!   (10 s) of its first byte (of the connection's start, for the first
//!   request), so a slowloris client that trickles a head holds its
//!   greenlet no longer than that (`408`, then close); an idle keep-alive
//!   connection closes after the idle timeout (60 s). Body reads and
//!   response writes give up after 60 s without progress.
//! - A handler that panics gets the client a `500` and the connection
//!   closes; the panic is reported on stderr (`GREENRT_LOG`). Responses
//!   carry `Server: greenrt` and a `Date`.
//!
//! HTTPS: [`bind_tls`] and [`tls_handler`] take a [`TlsAcceptor`]; the
//! handshake runs in the connection's greenlet, and the connection ends
//! with `close_notify`. Any other `Read + Write` stream (a Unix socket,
//! memory in tests) can be served with [`serve_connection`].

mod body;
mod conn;
mod parse;
mod response;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use body::Body;
pub use response::Response;

use super::StreamServer;
use crate::hub::GreenletExit;
use crate::hub::TimeoutUnwind;
use crate::net::{TcpStream, ToSocketAddrs};
use crate::tls::{TlsAcceptor, TlsStream};
use parse::Head;

// ===== configuration =====

/// The HTTP server's limits and timeouts. `HttpConfig::default()` gives
/// the values in the module docs; the setters change one each.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    max_head: usize,
    max_body: u64,
    header_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    body_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    date: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_head: 8 * 1024,
            max_body: 16 * 1024 * 1024,
            header_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(60)),
            body_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(60)),
            date: true,
        }
    }
}

impl HttpConfig {
    /// The defaults.
    pub fn new() -> HttpConfig {
        HttpConfig::default()
    }

    /// Largest request line plus headers, in bytes (default 8 KiB, at
    /// least 256). Longer request lines get `414`, larger heads `431`.
    pub fn max_head(mut self, bytes: usize) -> HttpConfig {
        self.max_head = bytes.max(256);
        self
    }

    /// Largest request body, in bytes (default 16 MiB); larger ones get
    /// `413` and the connection closes.
    pub fn max_body(mut self, bytes: u64) -> HttpConfig {
        self.max_body = bytes;
        self
    }

    /// How long a request head may take to arrive, from its first byte
    /// (from the connection's start for the first request). `None` waits
    /// forever (not recommended: slowloris).
    pub fn header_timeout(mut self, t: Option<Duration>) -> HttpConfig {
        self.header_timeout = t;
        self
    }

    /// How long a keep-alive connection may sit idle between requests
    /// (gevent's pywsgi has none).
    pub fn idle_timeout(mut self, t: Option<Duration>) -> HttpConfig {
        self.idle_timeout = t;
        self
    }

    /// Longest wait for more request body bytes.
    pub fn body_timeout(mut self, t: Option<Duration>) -> HttpConfig {
        self.body_timeout = t;
        self
    }

    /// Longest wait for the client to take more response bytes.
    pub fn write_timeout(mut self, t: Option<Duration>) -> HttpConfig {
        self.write_timeout = t;
        self
    }

    /// Whether responses get a `Date` header (default true).
    pub fn date_header(mut self, on: bool) -> HttpConfig {
        self.date = on;
        self
    }
}

// ===== requests =====

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the
    /// client asked for keep-alive.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// One request, as the handler sees it (gevent's WSGI `environ`): method,
/// target, version, headers, peer, and the body as a lazy reader.
pub struct Request<'a> {
    head: &'a Head,
    body: Body<'a>,
    peer: Option<SocketAddr>,
}

impl<'a> Request<'a> {
    /// The method, e.g. `GET` (`REQUEST_METHOD`).
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request target as sent, e.g. `/search?q=x` (`RAW_URI`).
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The target without its query (`PATH_INFO`, not percent-decoded).
    /// For an absolute-form target (`http://host/a?b`, as sent to
    /// proxies) it is the path after the authority (`/a`).
    pub fn path(&self) -> &str {
        let t = self.target();
        let t = t.split_once('?').map_or(t, |(p, _)| p);
        match t.split_once("://") {
            Some((scheme, rest)) if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) => {
                rest.find('/').map_or("/", |i| &rest[i..])
            }
            _ => t,
        }
    }

    /// What follows `?` in the target, if anything (`QUERY_STRING`).
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        if self.head.minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }

    /// The first value of header `name` (case-insensitive), if it is
    /// UTF-8; see [`header_bytes`](Self::header_bytes) for any value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of header `name` (case-insensitive), as sent.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.head.first(name)
    }

    /// Every header in the order received, names as the client spelled
    /// them.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        (0..self.head.headers.len()).map(|i| self.head.header_at(i))
    }

    /// The client's address (`REMOTE_ADDR`), when known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The body length the client declared, if it used Content-Length.
    pub fn content_length(&self) -> Option<u64> {
        self.head.meta().ok().and_then(|m| match m.framing {
            parse::Framing::Length(n) => Some(n),
            parse::Framing::Empty if self.head.first("content-length").is_some() => Some(0),
            _ => None,
        })
    }

    /// True if the body is sent chunked.
    pub fn is_chunked(&self) -> bool {
        self.head.meta().is_ok_and(|m| m.framing == parse::Framing::Chunked)
    }

    /// The body, as a reader of its decoded bytes (`wsgi.input`).
    pub fn body(&mut self) -> &mut Body<'a> {
        &mut self.body
    }

    /// Reads the whole body. Fails if it exceeds the size limit (the
    /// client then gets `413` whatever the handler returns), is malformed
    /// (`400`), or the client goes away.
    pub fn read_body(&mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.body.read_to_end(&mut v)?;
        Ok(v)
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Runs a handler, turning a panic into its message; a kill or a Timeout
/// keeps unwinding (they are not the handler's failures).
pub(crate) fn catch_handler_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(p) if p.is::<GreenletExit>() || p.is::<TimeoutUnwind>() => panic::resume_unwind(p),
        Err(p) => Err(crate::hub::payload_message(&*p)),
    }
}

// ===== transports =====

/// A stream the connection loop can bound in time.
pub(crate) trait Transport: Read + Write {
    /// One read, giving up with `ErrorKind::TimedOut` at `deadline`.
    fn read_until(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize>;
    /// `write_all` plus `flush`, giving up with `TimedOut` at `deadline`.
    fn write_until(&mut self, data: &[u8], deadline: Option<Instant>) -> io::Result<()>;
    /// Ends the write side after a refusal (so the client sees the end of
    /// the response while the server drains what it still sends).
    fn shutdown_write(&mut self) {}
}

fn remaining(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(d) => {
            let now = Instant::now();
            if d <= now {
                Err(io::ErrorKind::TimedOut.into())
            } else {
                Ok(Some(d - now))
            }
        }
    }
}

/// Any stream: deadlines are enforced with a greenrt `Timeout`.
struct AnyStream<S>(S);

impl<S: Read> Read for AnyStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for AnyStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: Read + Write> Transport for AnyStream<S> {
    fn read_until(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        let Some(t) = remaining(deadline)? else {
            return self.0.read(buf);
        };
        crate::with_timeout(t, || self.0.read(buf)).unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    fn write_until(&mut self, data: &[u8], deadline: Option<Instant>) -> io::Result<()> {
        let s = &mut self.0;
        let mut go = || {
            s.write_all(data)?;
            s.flush()
        };
        let Some(t) = remaining(deadline)? else { return go() };
        crate::with_timeout(t, go).unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }
}

/// A socket timeout (`EAGAIN`) as the loop's `TimedOut`.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::ErrorKind::TimedOut.into()
    } else {
        e
    }
}

/// greenrt's own TCP stream: deadlines become the socket's cooperative
/// timeouts, which cost a timer only when the call actually waits.
impl Transport for TcpStream {
    fn read_until(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        self.set_read_timeout(remaining(deadline)?)?;
        self.read(buf).map_err(timed_out)
    }

    fn write_until(&mut self, data: &[u8], deadline: Option<Instant>) -> io::Result<()> {
        self.set_write_timeout(remaining(deadline)?)?;
        self.write_all(data).map_err(timed_out)
    }

    fn shutdown_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// TLS over greenrt's TCP stream: deadlines become the TCP socket's
/// timeouts, and a refusal ends with `close_notify` and a half-close.
impl Transport for TlsStream<TcpStream> {
    fn read_until(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        self.get_ref().set_read_timeout(remaining(deadline)?)?;
        self.read(buf).map_err(timed_out)
    }

    fn write_until(&mut self, data: &[u8], deadline: Option<Instant>) -> io::Result<()> {
        self.get_ref().set_write_timeout(remaining(deadline)?)?;
        self.write_all(data).and_then(|()| self.flush()).map_err(timed_out)
    }

    fn shutdown_write(&mut self) {
        if self.shutdown().is_ok() {
            let _ = self.get_ref().shutdown(Shutdown::Write);
        }
    }
}

// ===== serving =====

/// Serves HTTP/1.1 on one connection until either side closes it: any
/// `Read + Write` stream (a TLS stream, a Unix socket, memory), with
/// timeouts enforced by greenrt `Timeout`s. `peer` is what
/// [`Request::peer_addr`] reports. Errors are the stream's I/O errors;
/// protocol errors are answered (4xx) and end the call with `Ok`.
pub fn serve_connection<S: Read + Write>(
    stream: S,
    peer: Option<SocketAddr>,
    config: &HttpConfig,
    handler: &dyn Fn(&mut Request<'_>) -> Response,
) -> io::Result<()> {
    let mut conn = conn::Conn::new(AnyStream(stream), config);
    conn::run(&mut conn, peer, config, handler)
}

/// Turns an HTTP handler into a [`StreamServer`] connection handler (what
/// gevent's `WSGIServer` adds to `StreamServer`). Use it to serve HTTP
/// with a pool or on several workers:
///
/// ```no_run
/// use greenrt::server::{http, StreamServer};
/// let cfg = http::HttpConfig::new().max_body(1 << 20);
/// let workers = StreamServer::workers(2)
///     .bind("127.0.0.1:8080", move || {
///         http::handler(cfg.clone(), |_req| http::Response::text("hi\n"))
///     })
///     .unwrap();
/// workers.join().unwrap();
/// ```
pub fn handler(
    config: HttpConfig,
    handler: impl Fn(&mut Request<'_>) -> Response + 'static,
) -> impl Fn(TcpStream, SocketAddr) + 'static {
    let config = Rc::new(config);
    move |stream, peer| {
        let mut conn = conn::Conn::new(stream, &config);
        // Errors here are the client's connection failing: nothing to do.
        let _ = conn::run(&mut conn, Some(peer), &config, &handler);
    }
}

/// Like [`handler`], for HTTPS: each connection does its TLS handshake
/// with `acceptor` first (see [`tls_handler`](super::tls_handler)).
pub fn tls_handler(
    config: HttpConfig,
    acceptor: TlsAcceptor,
    handler: impl Fn(&mut Request<'_>) -> Response + 'static,
) -> impl Fn(TcpStream, SocketAddr) + 'static {
    let config = Rc::new(config);
    move |stream, peer| {
        let Some(tls) = super::tls::handshake(&acceptor, stream, peer) else {
            return;
        };
        let mut conn = conn::Conn::new(tls, &config);
        if conn::run(&mut conn, Some(peer), &config, &handler).is_ok() {
            // A clean TLS close, so the client knows nothing was cut off.
            let _ = conn.into_stream().shutdown();
        }
    }
}

/// Binds `addr` and returns a [`StreamServer`] that serves HTTP with
/// `handler` and the default [`HttpConfig`] (gevent's
/// `WSGIServer(addr, app)`); call `start` or `serve_forever` on it.
pub fn bind<A: ToSocketAddrs>(
    addr: A,
    handler: impl Fn(&mut Request<'_>) -> Response + 'static,
) -> io::Result<StreamServer> {
    StreamServer::bind(addr, self::handler(HttpConfig::default(), handler))
}

/// Like [`bind`], for HTTPS with `acceptor` (gevent's `WSGIServer(addr,
/// app, ssl_context=...)`).
pub fn bind_tls<A: ToSocketAddrs>(
    addr: A,
    acceptor: TlsAcceptor,
    handler: impl Fn(&mut Request<'_>) -> Response + 'static,
) -> io::Result<StreamServer> {
    StreamServer::bind(addr, tls_handler(HttpConfig::default(), acceptor, handler))
}

// ===== fuzzing =====

/// An in-memory connection: reads come from `input` in pieces of at most
/// `piece` bytes (so heads arrive split), writes are collected.
struct Memory<'a> {
    input: &'a [u8],
    piece: usize,
    output: Vec<u8>,
}

impl Read for Memory<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.piece).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Memory<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The handler the fuzz entry serves with: it exercises every kind of
/// response. `/stream` streams the body back chunked, `/skip` leaves the
/// body unread, `/close` answers with `Connection: close`, anything else
/// echoes the body with `Content-Length`.
fn fuzz_handler(req: &mut Request<'_>) -> Response {
    match req.path() {
        "/skip" => Response::new(204),
        "/stream" => {
            let body = req.read_body().unwrap_or_default();
            Response::stream(move |w| {
                for piece in body.chunks(7) {
                    w.write_all(piece)?;
                }
                Ok(())
            })
        }
        path => {
            let close = path == "/close";
            let body = req.read_body().unwrap_or_default();
            let r = Response::new(200).body(body);
            if close {
                r.header("Connection", "close")
            } else {
                r
            }
        }
    }
}

/// Runs the request path over an in-memory connection fed `data` and
/// returns every byte the server wrote (for fuzzers: it must never panic,
/// and the output is empty or starts with a status line). The first byte
/// of `data` picks how finely the input is split into reads.
#[doc(hidden)]
pub fn fuzz_http_request_bytes(data: &[u8]) -> Vec<u8> {
    let piece = data.first().map_or(1, |b| usize::from(b % 64) + 1);
    let config = HttpConfig::default().max_body(64 * 1024).date_header(false);
    let memory = Memory {
        input: data,
        piece,
        output: Vec::new(),
    };
    let mut conn = conn::Conn::new(AnyStream(memory), &config);
    let _ = conn::run(&mut conn, None, &config, &fuzz_handler);
    conn.into_stream().0.output
}
