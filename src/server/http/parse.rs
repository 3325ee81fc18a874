//! Request heads: httparse for the syntax, then the limits and the
//! message-framing rules of RFC 9112 (which body follows, whether the
//! connection stays open, `Expect`).

use std::mem::MaybeUninit;
use std::ops::Range;

/// Most headers a request may carry (more is `431`).
pub(crate) const MAX_HEADERS: usize = 100;

/// One parsed request head, kept as its raw bytes plus offsets so a
/// connection reuses one allocation for every request it serves.
#[derive(Default)]
pub(crate) struct Head {
    /// Request line and header lines, exactly as received.
    pub(crate) bytes: Vec<u8>,
    pub(crate) method: Range<usize>,
    pub(crate) target: Range<usize>,
    /// HTTP/1.`minor`.
    pub(crate) minor: u8,
    /// (name, value) offsets into `bytes`.
    pub(crate) headers: Vec<(Range<usize>, Range<usize>)>,
}

/// How the request body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes (never 0: that is `Empty`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the headers say about this exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) framing: Framing,
    /// The client wants the connection kept open after this exchange.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` (HTTP/1.1 only).
    pub(crate) expect_continue: bool,
    /// The method is `HEAD`: the response carries no body.
    pub(crate) head_method: bool,
}

/// Outcome of trying to parse a head from the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole head of this many bytes was parsed into the [`Head`].
    Complete(usize),
    /// More bytes are needed.
    Partial,
}

impl Head {
    fn str(&self, r: &Range<usize>) -> &str {
        // httparse hands method, target and header names out as `&str`:
        // these ranges are always valid UTF-8.
        std::str::from_utf8(&self.bytes[r.clone()]).unwrap_or("")
    }

    pub(crate) fn method(&self) -> &str {
        self.str(&self.method)
    }

    pub(crate) fn target(&self) -> &str {
        self.str(&self.target)
    }

    /// Header `i` as (name, value).
    pub(crate) fn header_at(&self, i: usize) -> (&str, &[u8]) {
        let (n, v) = &self.headers[i];
        (self.str(n), &self.bytes[v.clone()])
    }

    /// Every value of the headers called `name` (case-insensitive).
    pub(crate) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| self.bytes[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(move |(_, v)| &self.bytes[v.clone()])
    }

    /// The first value of header `name` (case-insensitive).
    pub(crate) fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| self.bytes[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.bytes[v.clone()])
    }

    /// Parses a head from the start of `buf`, enforcing `max_head` (the
    /// request line plus headers): `Err(status)` for input that must be
    /// refused — 400 malformed, 414 request line too long, 431 headers too
    /// large or too many.
    pub(crate) fn parse(&mut self, buf: &[u8], max_head: usize) -> Result<Parsed, u16> {
        let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(buf, &mut raw) {
            Ok(httparse::Status::Complete(n)) => {
                if n > max_head {
                    return Err(too_large(buf, max_head));
                }
                // Offsets are relative to `buf`, whose first `n` bytes we copy.
                let base = buf.as_ptr() as usize;
                let off = |s: &[u8]| {
                    let start = s.as_ptr() as usize - base;
                    start..start + s.len()
                };
                let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
                    return Err(400);
                };
                self.method = off(method.as_bytes());
                self.target = off(path.as_bytes());
                self.minor = minor;
                self.headers.clear();
                for h in req.headers.iter() {
                    self.headers.push((off(h.name.as_bytes()), off(h.value)));
                }
                self.bytes.clear();
                self.bytes.extend_from_slice(&buf[..n]);
                Ok(Parsed::Complete(n))
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() >= max_head {
                    Err(too_large(buf, max_head))
                } else {
                    Ok(Parsed::Partial)
                }
            }
            Err(httparse::Error::TooManyHeaders) => Err(431),
            Err(_) => Err(400),
        }
    }

    /// Applies the framing and connection rules to a parsed head.
    /// `Err(status)`: 400 for contradictory or invalid framing, 501 for a
    /// transfer coding other than chunked, 417 for an unknown expectation.
    pub(crate) fn meta(&self) -> Result<Meta, u16> {
        let http11 = self.minor == 1;
        let mut chunked = false;
        let mut has_te = false;
        for v in self.values("transfer-encoding") {
            has_te = true;
            for coding in tokens(v) {
                if chunked {
                    // chunked must be the final coding, applied once.
                    return Err(400);
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else if coding.is_empty() {
                    continue;
                } else {
                    return Err(501);
                }
            }
        }
        if has_te && (!chunked || !http11) {
            // RFC 9112 6.1: a request whose final coding is not chunked,
            // or an HTTP/1.0 request with Transfer-Encoding, is refused.
            return Err(400);
        }
        let mut length: Option<u64> = None;
        for v in self.values("content-length") {
            for part in v.split(|&b| b == b',') {
                let n = parse_length(trim(part)).ok_or(400u16)?;
                match length {
                    Some(m) if m != n => return Err(400),
                    _ => length = Some(n),
                }
            }
        }
        if chunked && length.is_some() {
            // Both framings at once is how requests are smuggled.
            return Err(400);
        }
        let framing = match (chunked, length) {
            (true, _) => Framing::Chunked,
            (false, Some(n)) if n > 0 => Framing::Length(n),
            _ => Framing::Empty,
        };
        let mut close = false;
        let mut keep = false;
        for v in self.values("connection") {
            for t in tokens(v) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    keep = true;
                }
            }
        }
        let keep_alive = !close && (http11 || keep);
        let mut expect_continue = false;
        if http11 {
            for v in self.values("expect") {
                if trim(v).eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    return Err(417);
                }
            }
        }
        Ok(Meta {
            framing,
            keep_alive,
            expect_continue,
            head_method: self.method() == "HEAD",
        })
    }
}

/// Classifies a head that did not fit in `max_head` bytes: 414 if the
/// request line alone does not fit, 431 otherwise.
fn too_large(buf: &[u8], max_head: usize) -> u16 {
    // Leading empty lines are not part of the request line.
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    let line_end = buf[start..].iter().position(|&b| b == b'\n').map(|p| start + p);
    match line_end {
        Some(end) if end < max_head => 431,
        _ => 414,
    }
}

/// A Content-Length value: 1*DIGIT, no sign, no overflow.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |p| p + 1);
    &v[start..end]
}

/// The comma-separated list elements of a header value, trimmed.
pub(crate) fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<(Head, Parsed), u16> {
        let mut h = Head::default();
        let p = h.parse(s.as_bytes(), 8192)?;
        Ok((h, p))
    }

    fn meta(s: &str) -> Result<Meta, u16> {
        let (h, p) = parse(s)?;
        assert!(matches!(p, Parsed::Complete(_)));
        h.meta()
    }

    #[test]
    fn parses_line_and_headers() {
        let (h, p) = parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Y:  z \r\n\r\nrest").unwrap();
        assert_eq!(p, Parsed::Complete(42));
        assert_eq!(h.method(), "GET");
        assert_eq!(h.target(), "/a?b=c");
        assert_eq!(h.minor, 1);
        assert_eq!(h.header_at(1), ("X-Y", &b"z"[..]));
        assert_eq!(h.values("x-y").collect::<Vec<_>>(), vec![&b"z"[..]]);
    }

    #[test]
    fn partial_until_blank_line() {
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().1, Parsed::Partial);
    }

    #[test]
    fn limits_give_414_and_431() {
        let mut h = Head::default();
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(h.parse(long_line.as_bytes(), 64), Err(414));
        assert_eq!(h.parse(&long_line.as_bytes()[..70], 64), Err(414));
        let big_headers = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert_eq!(h.parse(big_headers.as_bytes(), 64), Err(431));
        assert_eq!(h.parse(&big_headers.as_bytes()[..80], 64), Err(431));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(h.parse(many.as_bytes(), 8192), Err(431));
    }

    #[test]
    fn malformed_is_400() {
        for bad in [
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "G\0T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/9.9\r\n\r\n",
        ] {
            assert_eq!(parse(bad).err(), Some(400), "{bad:?}");
        }
    }

    #[test]
    fn framing_rules() {
        let m = meta("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(m.framing, Framing::Length(5));
        assert!(m.keep_alive);
        let m = meta("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(m.framing, Framing::Length(5));
        let m = meta("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(m.framing, Framing::Chunked);
        assert_eq!(
            meta("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap().framing,
            Framing::Empty
        );
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(meta(bad), Err(400), "{bad:?}");
        }
        assert_eq!(
            meta("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Err(501)
        );
        assert_eq!(meta("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n"), Err(417));
    }

    #[test]
    fn connection_rules() {
        assert!(!meta("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap().keep_alive);
        assert!(!meta("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            meta("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            !meta("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
                .unwrap()
                .expect_continue
        );
        let m = meta("HEAD / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n").unwrap();
        assert!(m.expect_continue && m.head_method);
    }
}
