//! One HTTP/1.1 connection: buffered I/O with deadlines, and the loop that
//! reads a head, runs the handler, writes the response, and goes on with
//! the next request (keep-alive, pipelining) until one side closes.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::body::{Body, BodyError, BodyState};
use super::parse::{Framing, Head, Parsed};
use super::response::{error_response, Ctx};
use super::{catch_handler_panic, HttpConfig, Request, Response, Transport};
use crate::config::{self, LogLevel};

/// Output is flushed once this much is buffered; larger writes go
/// straight to the stream.
const WBUF_LIMIT: usize = 64 * 1024;
/// Unread body left by a handler that is drained to keep the connection;
/// beyond this the connection is closed instead.
const DRAIN_MAX: u64 = 256 * 1024;
/// After an error response, how long input is drained before closing (so
/// that unread input does not turn the close into a reset that destroys
/// the response in flight), and how much.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

/// The connection as the request, body and response code see it: a read
/// buffer that can be filled and consumed, and buffered output.
pub(crate) trait Wire {
    /// Input received and not yet consumed.
    fn buffered(&self) -> &[u8];
    /// Marks `n` buffered bytes as consumed.
    fn consume(&mut self, n: usize);
    /// Flushes pending output, then reads more input into the buffer,
    /// waiting at most until `deadline` (`ErrorKind::TimedOut`). `Ok(0)`
    /// at end of input.
    fn fill(&mut self, deadline: Option<Instant>) -> io::Result<usize>;
    /// Queues output (writing through when the buffer is large).
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// Sends queued output.
    fn flush(&mut self) -> io::Result<()>;
}

/// A stream with a read buffer sized for the largest head and a write
/// buffer that coalesces pipelined responses.
pub(crate) struct Conn<S> {
    stream: S,
    rbuf: Box<[u8]>,
    rpos: usize,
    rend: usize,
    wbuf: Vec<u8>,
    write_timeout: Option<Duration>,
}

impl<S: Transport> Conn<S> {
    pub(crate) fn new(stream: S, config: &HttpConfig) -> Conn<S> {
        Conn {
            stream,
            rbuf: vec![0; config.max_head.max(4096) + 4096].into_boxed_slice(),
            rpos: 0,
            rend: 0,
            wbuf: Vec::new(),
            write_timeout: config.write_timeout,
        }
    }

    pub(crate) fn into_stream(self) -> S {
        self.stream
    }

    fn write_through(&mut self, data: &[u8]) -> io::Result<()> {
        let deadline = self.write_timeout.map(|t| Instant::now() + t);
        self.stream.write_until(data, deadline)
    }

    /// Reads and discards input until end of input, `LINGER_TIME` or
    /// `LINGER_BYTES`, whichever comes first.
    fn linger(&mut self) {
        let deadline = Some(Instant::now() + LINGER_TIME);
        let mut seen = 0;
        while seen < LINGER_BYTES {
            self.rpos = 0;
            self.rend = 0;
            match self.fill(deadline) {
                Ok(n) if n > 0 => seen += n,
                _ => return,
            }
        }
    }
}

impl<S: Transport> Wire for Conn<S> {
    fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..self.rend]
    }

    fn consume(&mut self, n: usize) {
        self.rpos += n;
        debug_assert!(self.rpos <= self.rend);
    }

    fn fill(&mut self, deadline: Option<Instant>) -> io::Result<usize> {
        self.flush()?;
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        if self.rend == self.rbuf.len() {
            // The head limit keeps this from happening; never read 0 bytes
            // into a full buffer and mistake it for end of input.
            return Err(io::Error::other("HTTP read buffer full"));
        }
        let n = loop {
            match self.stream.read_until(&mut self.rbuf[self.rend..], deadline) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.rend += n;
        Ok(n)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.wbuf.len() + data.len() <= WBUF_LIMIT {
            self.wbuf.extend_from_slice(data);
            return Ok(());
        }
        self.flush()?;
        if data.len() >= WBUF_LIMIT / 2 {
            self.write_through(data)
        } else {
            self.wbuf.extend_from_slice(data);
            Ok(())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.wbuf);
        let r = self.write_through(&out);
        self.wbuf = out;
        self.wbuf.clear();
        r
    }
}

/// How the connection loop ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Closed in an orderly way (either side).
    Closed,
    /// The server refused a request (or left input unread) and closes.
    Refused,
}

/// Serves requests on `conn` until either side closes. After a refusal
/// the write side is shut down and input drained for a moment, so the
/// client reads the error response rather than a reset.
pub(crate) fn run<S: Transport>(
    conn: &mut Conn<S>,
    peer: Option<SocketAddr>,
    config: &HttpConfig,
    handler: &dyn Fn(&mut Request<'_>) -> Response,
) -> io::Result<()> {
    let end = serve(conn, peer, config, handler)?;
    conn.flush()?;
    if end == End::Refused {
        conn.stream.shutdown_write();
        conn.linger();
    }
    Ok(())
}

fn refuse<S: Transport>(conn: &mut Conn<S>, status: u16, head_method: bool, config: &HttpConfig) -> io::Result<End> {
    error_response(status, head_method, config.date, conn)?;
    Ok(End::Refused)
}

fn serve<S: Transport>(
    conn: &mut Conn<S>,
    peer: Option<SocketAddr>,
    config: &HttpConfig,
    handler: &dyn Fn(&mut Request<'_>) -> Response,
) -> io::Result<End> {
    let after = |t: Option<Duration>| t.map(|t| Instant::now() + t);
    let mut head = Head::default();
    // The first request must arrive within the header timeout of the
    // connection's start; later ones within the idle timeout of the
    // previous response, then the header timeout of their first byte.
    let mut idle = false;
    let mut deadline = after(config.header_timeout);
    loop {
        // ----- the head
        loop {
            if !conn.buffered().is_empty() {
                if idle {
                    idle = false;
                    deadline = after(config.header_timeout);
                }
                match head.parse(conn.buffered(), config.max_head) {
                    Ok(Parsed::Complete(n)) => {
                        conn.consume(n);
                        break;
                    }
                    Ok(Parsed::Partial) => {}
                    Err(status) => return refuse(conn, status, false, config),
                }
            }
            match conn.fill(deadline) {
                Ok(0) => return Ok(End::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    if conn.buffered().is_empty() {
                        return Ok(End::Closed);
                    }
                    // A client that started a request and stalled
                    // (slowloris): tell it, and free the greenlet.
                    return refuse(conn, 408, false, config);
                }
                Err(e) => return Err(e),
            }
        }

        // ----- framing and limits
        let meta = match head.meta() {
            Ok(m) => m,
            Err(status) => return refuse(conn, status, head.method() == "HEAD", config),
        };
        if let Framing::Length(n) = meta.framing {
            if n > config.max_body {
                return refuse(conn, 413, meta.head_method, config);
            }
        }

        // ----- the handler
        let mut body = BodyState::new(&meta, config.max_body, config.body_timeout);
        let outcome = {
            let mut req = Request {
                head: &head,
                body: Body {
                    wire: conn,
                    state: &mut body,
                },
                peer,
            };
            catch_handler_panic(|| handler(&mut req))
        };
        let response = match outcome {
            Ok(r) => r,
            Err(msg) => {
                config::log(LogLevel::Error, format_args!("HTTP handler panicked: {msg}"));
                return refuse(conn, 500, meta.head_method, config);
            }
        };
        match body.error {
            Some(BodyError::TooLarge) => return refuse(conn, 413, meta.head_method, config),
            Some(BodyError::Malformed) => return refuse(conn, 400, meta.head_method, config),
            Some(BodyError::Io(_)) => return Ok(End::Closed),
            None => {}
        }
        if let Some(problem) = response.problem() {
            config::log(
                LogLevel::Error,
                format_args!("HTTP handler returned a bad response: {problem}"),
            );
            return refuse(conn, 500, meta.head_method, config);
        }

        // ----- the response
        let mut keep_alive = meta.keep_alive;
        if !body.is_done() {
            // Unread body: a client still waiting for `100 Continue` may or
            // may not send it now, and a long one is not worth draining.
            let too_long = body.remaining_length().is_some_and(|n| n > DRAIN_MAX);
            if body.continue_pending || too_long {
                keep_alive = false;
            }
        }
        let ctx = Ctx {
            head_method: meta.head_method,
            http11: head.minor == 1,
            keep_alive,
            date: config.date,
        };
        let unread = !body.is_done();
        keep_alive = response.write(conn, &ctx)?;
        if keep_alive && unread && !body.drain(conn, DRAIN_MAX) {
            return Ok(End::Refused);
        }
        if !keep_alive {
            return Ok(if unread { End::Refused } else { End::Closed });
        }

        // ----- the next request: pipelined bytes are parsed at once; the
        // response waits in the buffer until input runs dry (`fill`).
        idle = conn.buffered().is_empty();
        deadline = if idle {
            after(config.idle_timeout)
        } else {
            after(config.header_timeout)
        };
    }
}
