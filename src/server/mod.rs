//! Servers (gevent's `gevent.server` and `gevent.pywsgi`): accept loops
//! that run a handler in a new greenlet per connection or datagram.
//!
//! | type | gevent |
//! |---|---|
//! | [`StreamServer`] | `gevent.server.StreamServer` |
//! | [`Workers`] (from [`StreamServer::workers`]) | several `StreamServer`s in forked processes |
//! | [`DatagramServer`] | `gevent.server.DatagramServer` |
//! | [`http`] | `gevent.pywsgi.WSGIServer` |
//! | [`tls_handler`], [`StreamServer::bind_tls`] | `StreamServer(..., ssl_context=...)` |

mod datagram;
pub mod http;
mod lifecycle;
mod stream;
mod tls;

pub use datagram::DatagramServer;
pub use stream::{StreamServer, Workers, WorkersBuilder, DEFAULT_MAX_ACCEPT};
pub use tls::{tls_handler, HANDSHAKE_TIMEOUT};
