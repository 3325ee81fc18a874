//! Responses: what a handler returns, and how it goes on the wire (status
//! line, `Server`/`Date`, framing by Content-Length or chunked encoding,
//! the `Connection` decision, no body for HEAD/204/304).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::conn::Wire;

type StreamFn = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()>>;

enum Payload {
    Bytes(Vec<u8>),
    Stream(StreamFn),
}

/// What a handler returns: a status, headers, and either a whole body or
/// a function that streams one.
///
/// A whole body is sent with `Content-Length`; a streamed one with
/// `Transfer-Encoding: chunked` (or, if the handler set `Content-Length`,
/// exactly that many bytes). The server owns the framing and connection
/// headers: `Content-Length`, `Transfer-Encoding` and `Connection` set by
/// the handler are replaced by the ones that match what is sent, except
/// that `Connection: close` is honoured (the connection closes after this
/// response) and a `Content-Length` is kept for a HEAD or 304 response and
/// for a streamed body. `Server: greenrt` and `Date` are added unless set.
///
/// ```
/// use greenrt::server::http::Response;
/// let r = Response::new(201).header("Location", "/items/7").body("created\n");
/// assert_eq!(r.status_code(), 201);
/// ```
pub struct Response {
    status: u16,
    headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    payload: Payload,
}

impl Response {
    /// An empty response with this status code.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            payload: Payload::Bytes(Vec::new()),
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into())
    }

    /// `200 OK` whose body is written by `f` as it goes (sent chunked),
    /// like a WSGI application that yields its body in pieces. `f` runs
    /// after the head is sent; an error from it aborts the connection (the
    /// client sees a truncated body). Not called for HEAD requests.
    pub fn stream(f: impl FnOnce(&mut dyn Write) -> io::Result<()> + 'static) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            payload: Payload::Stream(Box::new(f)),
        }
    }

    /// Replaces the status code.
    pub fn status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Adds a header. Names must be HTTP tokens and values must not
    /// contain CR, LF or NUL; a response that breaks this is replaced by a
    /// `500` (never sent as is: that would split the response).
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body with these bytes (sent with `Content-Length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.payload = Payload::Bytes(body.into());
        self
    }

    /// The status code.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The headers set so far, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (&**n, &**v))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// Why this response cannot be sent as is, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if !(200..=999).contains(&self.status) {
            return Some(format!("status {} is not a final status (200..=999)", self.status));
        }
        for (n, v) in &self.headers {
            if n.is_empty() || !n.bytes().all(is_token) {
                return Some(format!("header name {n:?} is not an HTTP token"));
            }
            if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Some(format!("header {n} has CR, LF or NUL in its value"));
            }
            if n.eq_ignore_ascii_case("content-length") && parse_len(v).is_none() {
                return Some(format!("Content-Length {v:?} is not a number"));
            }
        }
        None
    }

    fn user_length(&self) -> Option<u64> {
        self.header_value("content-length").and_then(parse_len)
    }

    fn wants_close(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection") && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }

    /// Writes the response. Returns whether the connection may stay open
    /// (`keep_alive` as decided so far, lowered by `Connection: close`
    /// and by bodies delimited only by closing).
    pub(crate) fn write(self, wire: &mut dyn Wire, ctx: &Ctx) -> io::Result<bool> {
        let mut keep_alive = ctx.keep_alive && !self.wants_close();
        let bodiless_status = self.status == 204 || self.status == 304;
        let user_len = self.user_length();
        enum Framing {
            None,
            Length(u64),
            Chunked,
            UntilClose,
        }
        let (framing, send_body) = match &self.payload {
            Payload::Bytes(_) if self.status == 204 => (Framing::None, false),
            Payload::Bytes(b) if bodiless_status || (ctx.head_method && b.is_empty()) => {
                (user_len.map_or(Framing::None, Framing::Length), false)
            }
            Payload::Bytes(b) => (Framing::Length(b.len() as u64), !ctx.head_method),
            Payload::Stream(_) if self.status == 204 => (Framing::None, false),
            Payload::Stream(_) => {
                let f = match user_len {
                    Some(n) => Framing::Length(n),
                    None if ctx.http11 => Framing::Chunked,
                    None => Framing::UntilClose,
                };
                (f, !(ctx.head_method || bodiless_status))
            }
        };
        if matches!(framing, Framing::UntilClose) && send_body {
            keep_alive = false;
        }

        let mut h = Vec::with_capacity(256);
        h.extend_from_slice(b"HTTP/1.1 ");
        push_num(&mut h, u64::from(self.status));
        h.push(b' ');
        h.extend_from_slice(reason(self.status).as_bytes());
        h.extend_from_slice(b"\r\n");
        if self.header_value("server").is_none() {
            h.extend_from_slice(b"Server: greenrt\r\n");
        }
        if ctx.date && self.header_value("date").is_none() {
            h.extend_from_slice(b"Date: ");
            http_date(&mut h);
            h.extend_from_slice(b"\r\n");
        }
        for (n, v) in &self.headers {
            let framing_header = ["content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|f| n.eq_ignore_ascii_case(f));
            if !framing_header {
                h.extend_from_slice(n.as_bytes());
                h.extend_from_slice(b": ");
                h.extend_from_slice(v.as_bytes());
                h.extend_from_slice(b"\r\n");
            }
        }
        match framing {
            Framing::Length(n) => {
                h.extend_from_slice(b"Content-Length: ");
                push_num(&mut h, n);
                h.extend_from_slice(b"\r\n");
            }
            Framing::Chunked => h.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Framing::None | Framing::UntilClose => {}
        }
        if !keep_alive {
            h.extend_from_slice(b"Connection: close\r\n");
        } else if !ctx.http11 {
            h.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        h.extend_from_slice(b"\r\n");

        match self.payload {
            Payload::Bytes(b) => {
                if send_body && !b.is_empty() {
                    if h.len() + b.len() <= 16 * 1024 {
                        h.extend_from_slice(&b);
                        wire.write(&h)?;
                    } else {
                        wire.write(&h)?;
                        wire.write(&b)?;
                    }
                } else {
                    wire.write(&h)?;
                }
            }
            Payload::Stream(f) => {
                wire.write(&h)?;
                if send_body {
                    match framing {
                        Framing::Chunked => {
                            let mut w = ChunkedWriter { wire };
                            run_stream(f, &mut w)?;
                            w.wire.write(b"0\r\n\r\n")?;
                        }
                        Framing::Length(n) => {
                            let mut w = LengthWriter { wire, left: n };
                            run_stream(f, &mut w)?;
                            if w.left != 0 {
                                return Err(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    "streamed body shorter than its Content-Length",
                                ));
                            }
                        }
                        _ => {
                            let mut w = RawWriter { wire };
                            run_stream(f, &mut w)?;
                        }
                    }
                }
            }
        }
        Ok(keep_alive)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = match &self.payload {
            Payload::Bytes(b) => format!("{} bytes", b.len()),
            Payload::Stream(_) => "stream".to_string(),
        };
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .finish()
    }
}

/// What the connection knows when a response is written.
pub(crate) struct Ctx {
    pub(crate) head_method: bool,
    pub(crate) http11: bool,
    pub(crate) keep_alive: bool,
    pub(crate) date: bool,
}

/// Runs a streaming body function; a panic in it (other than a kill or a
/// Timeout, which keep unwinding) becomes an error that closes the
/// connection.
fn run_stream(f: StreamFn, w: &mut dyn Write) -> io::Result<()> {
    match super::catch_handler_panic(|| f(w)) {
        Ok(r) => r,
        Err(msg) => Err(io::Error::other(format!("streaming body panicked: {msg}"))),
    }
}

/// Writes each `write` as one chunk; `flush` pushes what is buffered to
/// the client now (for long-polling and event streams).
struct ChunkedWriter<'a> {
    wire: &'a mut dyn Wire,
}

impl Write for ChunkedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut size = Vec::with_capacity(20);
        push_hex(&mut size, buf.len());
        size.extend_from_slice(b"\r\n");
        self.wire.write(&size)?;
        self.wire.write(buf)?;
        self.wire.write(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wire.flush()
    }
}

/// Passes at most `left` bytes through.
struct LengthWriter<'a> {
    wire: &'a mut dyn Wire,
    left: u64,
}

impl Write for LengthWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "streamed body longer than its Content-Length",
            ));
        }
        self.wire.write(buf)?;
        self.left -= buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wire.flush()
    }
}

/// A body delimited by closing the connection (HTTP/1.0 clients).
struct RawWriter<'a> {
    wire: &'a mut dyn Wire,
}

impl Write for RawWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wire.write(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wire.flush()
    }
}

/// The head of a response the server makes itself (errors), with a short
/// text body unless `head_method`; it always closes the connection.
pub(crate) fn error_response(status: u16, head_method: bool, date: bool, wire: &mut dyn Wire) -> io::Result<()> {
    let text = format!("{status} {}\n", reason(status));
    let mut r = Response::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(text);
    if status == 405 || status == 501 {
        r = r.header("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
    }
    let ctx = Ctx {
        head_method,
        http11: true,
        keep_alive: false,
        date,
    };
    r.write(wire, &ctx).map(|_| ())
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_len(v: &str) -> Option<u64> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// The reason phrase for a status code ("" for codes without one).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

thread_local! {
    /// The Date value of the current second: formatted once per second.
    static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// Appends the current time as an IMF-fixdate (RFC 9110 5.6.7).
fn http_date(out: &mut Vec<u8>) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (at, text) = DATE.with(Cell::get);
    if at == secs {
        out.extend_from_slice(&text);
        return;
    }
    let text = format_date(secs);
    DATE.with(|d| d.set((secs, text)));
    out.extend_from_slice(&text);
}

/// Formats Unix time `secs` as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn format_date(secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86400;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let mut out = [b' '; 29];
    let n = s.len().min(29);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_imf_fixdate() {
        assert_eq!(&format_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn numbers() {
        let mut v = Vec::new();
        push_num(&mut v, 0);
        push_num(&mut v, 1234567890);
        push_hex(&mut v, 0x1f2e);
        assert_eq!(v, b"012345678901f2e");
    }

    #[test]
    fn problems_found() {
        assert!(Response::new(200).header("X", "a\r\nb").problem().is_some());
        assert!(Response::new(200).header("Bad Name", "v").problem().is_some());
        assert!(Response::new(100).problem().is_some());
        assert!(Response::new(200).header("Content-Length", "x").problem().is_some());
        assert!(Response::text("ok").header("X-Ok", "fine").problem().is_none());
    }
}
