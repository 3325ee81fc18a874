//! Request bodies: the lazy reader the handler sees, decoding
//! `Content-Length` and chunked framing as it is read, sending
//! `100 Continue` on the first read, and enforcing the body size limit.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::conn::Wire;
use super::parse::{Framing, Meta};

/// Longest chunk-size line accepted (size plus extensions).
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 8192;

/// The interim response sent before reading an `Expect: 100-continue` body.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Why a body could not be read; the connection answers accordingly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Larger than the configured limit: 413, then close.
    TooLarge,
    /// Broken chunked framing: 400, then close.
    Malformed,
    /// The peer went away, timed out or the socket failed: close.
    Io(io::ErrorKind),
}

impl BodyError {
    fn to_io(self) -> io::Error {
        match self {
            BodyError::TooLarge => io::Error::new(io::ErrorKind::InvalidData, "request body exceeds the size limit"),
            BodyError::Malformed => io::Error::new(io::ErrorKind::InvalidData, "malformed chunked request body"),
            BodyError::Io(k) => io::Error::new(k, "reading the request body failed"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The whole body has been read.
    Done,
    /// Content-Length framing: bytes still to read.
    Length(u64),
    /// Chunked: expecting a chunk-size line.
    ChunkSize,
    /// Chunked: bytes of the current chunk still to read.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data.
    ChunkEnd,
    /// Chunked: trailer lines after the last chunk (bytes seen so far).
    Trailers(usize),
}

/// The decoding state of one request's body, owned by the connection so
/// it can drain what the handler left unread.
pub(crate) struct BodyState {
    phase: Phase,
    limit: u64,
    /// Decoded body bytes delivered so far.
    total: u64,
    /// `100 Continue` is owed before the first read.
    pub(crate) continue_pending: bool,
    /// Longest wait for more body bytes.
    timeout: Option<Duration>,
    pub(crate) error: Option<BodyError>,
}

impl BodyState {
    pub(crate) fn new(meta: &Meta, limit: u64, timeout: Option<Duration>) -> BodyState {
        let phase = match meta.framing {
            Framing::Empty => Phase::Done,
            Framing::Length(n) => Phase::Length(n),
            Framing::Chunked => Phase::ChunkSize,
        };
        BodyState {
            phase,
            limit,
            total: 0,
            continue_pending: meta.expect_continue && phase != Phase::Done,
            timeout,
            error: None,
        }
    }

    /// True once the body has been read to its end.
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Bytes still to come under Content-Length framing (`None` when
    /// chunked, where it is unknown).
    pub(crate) fn remaining_length(&self) -> Option<u64> {
        match self.phase {
            Phase::Done => Some(0),
            Phase::Length(n) => Some(n),
            _ => None,
        }
    }

    fn fail(&mut self, e: BodyError) -> io::Error {
        self.error = Some(e);
        e.to_io()
    }

    /// Reads more bytes into the connection buffer; EOF before the end of
    /// the body is an error.
    fn fill(&mut self, wire: &mut dyn Wire) -> io::Result<()> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        match wire.fill(deadline) {
            Ok(0) => Err(self.fail(BodyError::Io(io::ErrorKind::UnexpectedEof))),
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(BodyError::Io(e.kind()))),
        }
    }

    /// Copies up to `out.len()` buffered bytes of the current run of body
    /// data (at most `left`), filling the buffer first if it is empty.
    fn copy_data(&mut self, wire: &mut dyn Wire, out: &mut [u8], left: u64) -> io::Result<usize> {
        if wire.buffered().is_empty() {
            self.fill(wire)?;
        }
        let b = wire.buffered();
        let n = b.len().min(out.len()).min(usize::try_from(left).unwrap_or(usize::MAX));
        out[..n].copy_from_slice(&b[..n]);
        wire.consume(n);
        self.total += n as u64;
        Ok(n)
    }

    /// Reads decoded body bytes into `out`; `Ok(0)` at the end of the body.
    pub(crate) fn read(&mut self, wire: &mut dyn Wire, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.error {
            return Err(e.to_io());
        }
        if out.is_empty() || self.phase == Phase::Done {
            return Ok(0);
        }
        if self.continue_pending {
            self.continue_pending = false;
            // Queued; the fill below flushes it before waiting for the body.
            if let Err(e) = wire.write(CONTINUE) {
                return Err(self.fail(BodyError::Io(e.kind())));
            }
        }
        loop {
            match self.phase {
                Phase::Done => return Ok(0),
                Phase::Length(left) => {
                    let n = self.copy_data(wire, out, left)?;
                    self.phase = if left == n as u64 {
                        Phase::Done
                    } else {
                        Phase::Length(left - n as u64)
                    };
                    return Ok(n);
                }
                Phase::ChunkData(left) => {
                    let n = self.copy_data(wire, out, left)?;
                    self.phase = if left == n as u64 {
                        Phase::ChunkEnd
                    } else {
                        Phase::ChunkData(left - n as u64)
                    };
                    return Ok(n);
                }
                Phase::ChunkSize => {
                    let b = wire.buffered();
                    if !b.is_empty() && !b[0].is_ascii_hexdigit() {
                        // httparse would read an empty size as 0.
                        return Err(self.fail(BodyError::Malformed));
                    }
                    match httparse::parse_chunk_size(b) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            wire.consume(used);
                            if size == 0 {
                                self.phase = Phase::Trailers(0);
                            } else if self.total.saturating_add(size) > self.limit {
                                return Err(self.fail(BodyError::TooLarge));
                            } else {
                                self.phase = Phase::ChunkData(size);
                            }
                        }
                        Ok(httparse::Status::Partial) if b.len() < MAX_CHUNK_LINE => self.fill(wire)?,
                        _ => return Err(self.fail(BodyError::Malformed)),
                    }
                }
                Phase::ChunkEnd => {
                    let b = wire.buffered();
                    if b.len() < 2 && (b.is_empty() || b[0] == b'\r') {
                        self.fill(wire)?;
                    } else if b.starts_with(b"\r\n") {
                        wire.consume(2);
                        self.phase = Phase::ChunkSize;
                    } else {
                        return Err(self.fail(BodyError::Malformed));
                    }
                }
                Phase::Trailers(seen) => {
                    let b = wire.buffered();
                    match b.iter().position(|&c| c == b'\n') {
                        Some(p) => {
                            let line = &b[..p];
                            let empty = line.is_empty() || line == b"\r";
                            wire.consume(p + 1);
                            if seen + p + 1 > MAX_TRAILERS {
                                return Err(self.fail(BodyError::Malformed));
                            }
                            self.phase = if empty {
                                Phase::Done
                            } else {
                                Phase::Trailers(seen + p + 1)
                            };
                        }
                        None if seen + b.len() < MAX_TRAILERS => self.fill(wire)?,
                        None => return Err(self.fail(BodyError::Malformed)),
                    }
                }
            }
        }
    }

    /// Reads and discards the rest of the body, at most `max` bytes of
    /// it; true if the body ended within that.
    pub(crate) fn drain(&mut self, wire: &mut dyn Wire, max: u64) -> bool {
        if self.continue_pending {
            // The client waits for our go-ahead and may never send it.
            return false;
        }
        let mut scratch = [0u8; 4096];
        let start = self.total;
        while self.phase != Phase::Done {
            if self.total - start > max {
                return false;
            }
            if self.read(wire, &mut scratch).is_err() {
                return false;
            }
        }
        true
    }
}

/// A request's body, read lazily: `Read` yields the decoded bytes
/// (Content-Length or chunked), then `Ok(0)`. The first read of a request
/// that sent `Expect: 100-continue` sends `100 Continue` (gevent's pywsgi
/// does the same on the first `wsgi.input` read). Whatever the handler
/// leaves unread is drained before the next request on the connection.
pub struct Body<'a> {
    pub(crate) wire: &'a mut dyn Wire,
    pub(crate) state: &'a mut BodyState,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state.read(self.wire, buf)
    }
}

impl std::fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("done", &self.state.is_done())
            .field("read", &self.state.total)
            .finish()
    }
}
