//! [`DatagramServer`]: a UDP server that runs a handler in a new greenlet
//! for every datagram (gevent's `gevent.server.DatagramServer`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::lifecycle::Lifecycle;
use crate::config::{self, LogLevel};
use crate::greenlet;
use crate::net::{ToSocketAddrs, UdpSocket};
use crate::pool::Pool;
use crate::stack::GuardedStack;

/// Largest datagram received whole (the UDP maximum); longer ones are
/// truncated by the kernel.
const MAX_DATAGRAM: usize = 65536;
/// Datagrams received in a row before the receive loop yields.
const MAX_IN_A_ROW: usize = 100;

type Handler = Rc<dyn Fn(&[u8], SocketAddr, &UdpSocket)>;

struct Inner {
    addr: SocketAddr,
    socket: Rc<UdpSocket>,
    handler: Handler,
    /// The receive loop, the handlers, closing and stopping.
    life: Lifecycle,
}

/// A UDP server that runs `handler(data, peer, socket)` in a new greenlet
/// for every datagram (gevent's `DatagramServer`, whose `handle(data,
/// address)` answers with `self.sendto`); the handler answers with
/// `socket.send_to(reply, peer)`.
///
/// ```
/// use greenrt::server::DatagramServer;
/// let server = DatagramServer::bind("127.0.0.1:0", |data, peer, sock| {
///     let _ = sock.send_to(data, peer);
/// })
/// .unwrap();
/// server.start().unwrap();
/// let client = greenrt::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.send_to(b"ping", server.local_addr()).unwrap();
/// let mut buf = [0; 16];
/// let (n, _) = client.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// server.stop(std::time::Duration::from_secs(1));
/// ```
///
/// Like [`StreamServer`](super::StreamServer) it belongs to the hub that
/// made it, takes an optional [`Pool`] (receiving pauses while it is
/// full), backs off instead of spinning when the system is out of
/// buffers, and stops gracefully.
pub struct DatagramServer {
    inner: Rc<Inner>,
}

impl Clone for DatagramServer {
    fn clone(&self) -> Self {
        DatagramServer {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("addr", &self.inner.addr)
            .field("started", &self.started())
            .field("closed", &self.closed())
            .finish()
    }
}

impl DatagramServer {
    /// Binds a UDP socket to `addr` and makes a server around it.
    pub fn bind<A: ToSocketAddrs>(
        addr: A,
        handler: impl Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    ) -> io::Result<DatagramServer> {
        DatagramServer::from_socket(UdpSocket::bind(addr)?, handler)
    }

    /// A server on a socket bound elsewhere.
    pub fn from_socket(
        socket: UdpSocket,
        handler: impl Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    ) -> io::Result<DatagramServer> {
        let addr = socket.local_addr()?;
        Ok(DatagramServer {
            inner: Rc::new(Inner {
                addr,
                socket: Rc::new(socket),
                handler: Rc::new(handler),
                life: Lifecycle::new(),
            }),
        })
    }

    /// Runs handlers in `pool`: at most `pool.size()` at once, and no
    /// receiving while it is full. Set it before [`start`](Self::start).
    pub fn with_pool(self, pool: Pool) -> DatagramServer {
        self.inner.life.set_pool(pool);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The server's socket, to send from outside a handler.
    pub fn socket(&self) -> &UdpSocket {
        &self.inner.socket
    }

    /// True while the receive loop runs.
    pub fn started(&self) -> bool {
        self.inner.life.started()
    }

    /// True once closed or stopped.
    pub fn closed(&self) -> bool {
        self.inner.life.closed()
    }

    /// Starts receiving in a new greenlet and returns (gevent's `start`).
    pub fn start(&self) -> io::Result<()> {
        if self.started() {
            return Ok(());
        }
        if self.closed() {
            return Err(Lifecycle::closed_error());
        }
        let inner = self.inner.clone();
        self.inner
            .life
            .spawn_loop(format!("DatagramServer {}", self.inner.addr), move || {
                receive_loop(&inner)
            })
    }

    /// Starts if needed and waits until the server stops (gevent's
    /// `serve_forever`).
    pub fn serve_forever(&self) -> io::Result<()> {
        self.start()?;
        self.inner.life.wait_done()
    }

    /// Stops receiving and closes the socket; running handlers go on,
    /// but their sends fail (gevent's `close`).
    pub fn close(&self) {
        if self.inner.life.mark_closed() {
            return;
        }
        self.inner.life.kill_loop();
    }

    /// Stops gracefully (gevent's `stop(timeout)`): stops receiving,
    /// waits up to `timeout` for running handlers, kills the rest, then
    /// closes the socket.
    pub fn stop(&self, timeout: Duration) {
        let life = &self.inner.life;
        life.mark_closed();
        life.kill_loop();
        life.drain(timeout);
        self.inner.socket.close();
        life.set_done();
    }
}

/// The receiver greenlet's body.
fn receive_loop(inner: &Rc<Inner>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut in_a_row = 0;
    let mut backoff: Option<Duration> = None;
    loop {
        if !inner.life.wait_for_slot() {
            continue;
        }
        match inner.socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                backoff = None;
                if GuardedStack::check_budget(config::get().stack_size).is_err() {
                    continue; // dropped, as a full socket buffer would
                }
                let data = buf[..n].to_vec();
                let (handler, socket) = (inner.handler.clone(), inner.socket.clone());
                let _ = inner.life.group().spawn(move || handler(&data, peer, &socket));
                in_a_row += 1;
                if in_a_row >= MAX_IN_A_ROW {
                    in_a_row = 0;
                    greenlet::yield_now();
                }
            }
            // An ICMP error for an earlier send_to, or a signal.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::EINTR)) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM)) => {
                let pause = backoff.map_or(Duration::from_millis(10), |d| (d * 2).min(Duration::from_secs(1)));
                if backoff.is_none() {
                    config::log(
                        LogLevel::Error,
                        format_args!("DatagramServer {}: cannot receive: {e}; retrying", inner.addr),
                    );
                }
                backoff = Some(pause);
                greenlet::sleep(pause);
            }
            Err(e) => {
                inner.life.fail(
                    e,
                    format_args!("DatagramServer {}: receive failed, stopping", inner.addr),
                );
                return;
            }
        }
    }
}
