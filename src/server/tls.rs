//! TLS for [`StreamServer`] (gevent's `StreamServer(listener, handle,
//! ssl_context=...)`): each accepted connection does its handshake in its
//! own greenlet, so a slow or hostile client delays only itself, and the
//! handshake must finish within a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use super::StreamServer;
use crate::config::{self, LogLevel};
use crate::net::{TcpStream, ToSocketAddrs};
use crate::tls::{TlsAcceptor, TlsStream};

/// How long a client may take to complete the TLS handshake before its
/// connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the server side of the handshake on an accepted connection, at
/// most [`HANDSHAKE_TIMEOUT`]; `None` (logged at debug level) if it fails
/// or takes too long.
pub(crate) fn handshake(acceptor: &TlsAcceptor, stream: TcpStream, peer: SocketAddr) -> Option<TlsStream<TcpStream>> {
    match crate::with_timeout(HANDSHAKE_TIMEOUT, || acceptor.accept(stream)) {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            config::log(LogLevel::Debug, format_args!("TLS handshake with {peer} failed: {e}"));
            None
        }
        Err(_) => {
            config::log(
                LogLevel::Debug,
                format_args!("TLS handshake with {peer} took more than {HANDSHAKE_TIMEOUT:?}"),
            );
            None
        }
    }
}

/// Wraps a handler of TLS connections into a [`StreamServer`] handler:
/// the handshake runs first (in the connection's greenlet, at most
/// [`HANDSHAKE_TIMEOUT`]; a client that fails it is dropped), then
/// `handler(tls_stream, peer)`. Composes with pools and
/// [`workers`](StreamServer::workers) like any handler.
pub fn tls_handler(
    acceptor: TlsAcceptor,
    handler: impl Fn(TlsStream<TcpStream>, SocketAddr) + 'static,
) -> impl Fn(TcpStream, SocketAddr) + 'static {
    move |stream, peer| {
        if let Some(tls) = handshake(&acceptor, stream, peer) {
            handler(tls, peer);
        }
    }
}

impl StreamServer {
    /// Binds `addr` and serves TLS: every connection is handshaken with
    /// `acceptor`, then given to `handler` (gevent's `StreamServer(addr,
    /// handle, ssl_context=...)`). See [`tls_handler`].
    pub fn bind_tls<A: ToSocketAddrs>(
        addr: A,
        acceptor: TlsAcceptor,
        handler: impl Fn(TlsStream<TcpStream>, SocketAddr) + 'static,
    ) -> std::io::Result<StreamServer> {
        StreamServer::bind(addr, tls_handler(acceptor, handler))
    }
}
