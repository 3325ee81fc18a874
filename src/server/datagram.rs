//! [`DatagramServer`]: a UDP server that runs a handler in a new greenlet
//! for every datagram (gevent's `gevent.server.DatagramServer`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::config::{self, LogLevel};
use crate::greenlet::{self, Greenlet};
use crate::net::{ToSocketAddrs, UdpSocket};
use crate::pool::{Group, Pool};
use crate::stack::GuardedStack;
use crate::sync::Event;

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
    group: RefCell<Group>,
    pool: RefCell<Option<Pool>>,
    receiver: RefCell<Option<Greenlet<()>>>,
    closed: Cell<bool>,
    done: Event,
    failure: RefCell<Option<io::Error>>,
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
            .field("closed", &self.inner.closed.get())
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
                group: RefCell::new(Group::new()),
                pool: RefCell::new(None),
                receiver: RefCell::new(None),
                closed: Cell::new(false),
                done: Event::new(),
                failure: RefCell::new(None),
            }),
        })
    }

    /// Runs handlers in `pool`: at most `pool.size()` at once, and no
    /// receiving while it is full. Set it before [`start`](Self::start).
    pub fn with_pool(self, pool: Pool) -> DatagramServer {
        *self.inner.group.borrow_mut() = Group::clone(&pool);
        *self.inner.pool.borrow_mut() = Some(pool);
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
        self.inner.receiver.borrow().as_ref().is_some_and(|g| !g.dead())
    }

    /// True once closed or stopped.
    pub fn closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Starts receiving in a new greenlet and returns (gevent's `start`).
    pub fn start(&self) -> io::Result<()> {
        if self.started() {
            return Ok(());
        }
        if self.closed() {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "the server is closed"));
        }
        let inner = self.inner.clone();
        let g = greenlet::Builder::new()
            .name(format!("DatagramServer {}", self.inner.addr))
            .spawn(move || receive_loop(&inner))?;
        *self.inner.receiver.borrow_mut() = Some(g);
        Ok(())
    }

    /// Starts if needed and waits until the server stops (gevent's
    /// `serve_forever`).
    pub fn serve_forever(&self) -> io::Result<()> {
        self.start()?;
        self.inner
            .done
            .wait()
            .map_err(|_| io::Error::other("the server can never stop: nothing runs"))?;
        match self.inner.failure.borrow_mut().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops receiving and closes the socket; running handlers go on,
    /// but their sends fail (gevent's `close`).
    pub fn close(&self) {
        if self.inner.closed.replace(true) {
            return;
        }
        let receiver = self.inner.receiver.borrow().clone();
        if let Some(g) = receiver {
            if g.id() != greenlet::current().id() {
                g.kill();
            }
        }
    }

    /// Stops gracefully (gevent's `stop(timeout)`): stops receiving,
    /// waits up to `timeout` for running handlers, kills the rest, then
    /// closes the socket.
    pub fn stop(&self, timeout: Duration) {
        let receiver = self.inner.receiver.borrow().clone();
        self.inner.closed.set(true);
        if let Some(g) = receiver {
            if g.id() != greenlet::current().id() {
                g.kill();
            }
        }
        let group = self.inner.group.borrow().clone();
        group.discard(&greenlet::current());
        if group.join(Some(timeout)).is_err() {
            let _ = group.kill(None);
        }
        self.inner.socket.close();
        self.inner.done.set();
    }
}

/// The receiver greenlet's body.
fn receive_loop(inner: &Rc<Inner>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut in_a_row = 0;
    let mut backoff: Option<Duration> = None;
    loop {
        let pool = inner.pool.borrow().clone();
        if let Some(pool) = pool {
            if pool.full() && pool.wait_available(None).is_err() {
                greenlet::sleep(Duration::from_millis(10));
                continue;
            }
        }
        match inner.socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                backoff = None;
                if GuardedStack::check_budget(config::get().stack_size).is_err() {
                    continue; // dropped, as a full socket buffer would
                }
                let data = buf[..n].to_vec();
                let (handler, socket) = (inner.handler.clone(), inner.socket.clone());
                let group = inner.group.borrow().clone();
                let _ = group.spawn(move || handler(&data, peer, &socket));
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
                if !inner.closed.get() {
                    config::log(
                        LogLevel::Error,
                        format_args!("DatagramServer {}: receive failed, stopping: {e}", inner.addr),
                    );
                    *inner.failure.borrow_mut() = Some(e);
                    inner.done.set();
                }
                return;
            }
        }
    }
}
