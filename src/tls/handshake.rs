//! The handshakes: `connect` (client) and `TlsAcceptor` (server), and
//! the error that says which side failed and why.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection};

use super::config::{invalid_input, server_config_from_pem};
use super::stream::TlsStream;
use rustls::{ClientConfig, ServerConfig};

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
pub(super) enum Cause {
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

pub(super) fn handshake_error(peer: String, cause: Cause, kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, HandshakeError { peer, cause })
}
