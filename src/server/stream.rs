//! [`StreamServer`]: a TCP server that runs a handler in a new greenlet
//! for every connection (gevent's `gevent.server.StreamServer`), and
//! [`Workers`]: the same on several hubs and threads at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::lifecycle::Lifecycle;
use crate::config::{self, LogLevel};
use crate::greenlet;
use crate::hub::HubHandle;
use crate::net::{TcpListener, TcpStream, ToSocketAddrs};
use crate::pool::Pool;
use crate::stack::GuardedStack;

/// Accepts in a row before the accept loop lets other greenlets run.
pub const DEFAULT_MAX_ACCEPT: usize = 100;
/// First pause after accept fails for lack of resources (EMFILE, ENFILE,
/// ENOBUFS, ENOMEM, no stack); it doubles on every failure in a row.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between two accept attempts while resources lack.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

type Handler = Rc<dyn Fn(TcpStream, SocketAddr)>;

struct Inner {
    addr: SocketAddr,
    handler: Handler,
    /// The listener, until the server is closed.
    listener: RefCell<Option<Rc<TcpListener>>>,
    nodelay: Cell<bool>,
    max_accept: Cell<usize>,
    /// The accept loop, the handlers, closing and stopping.
    life: Lifecycle,
}

/// A TCP server that runs `handler(stream, peer)` in a new greenlet for
/// every connection it accepts (gevent's `StreamServer`).
///
/// ```
/// use std::io::{Read, Write};
/// use greenrt::server::StreamServer;
/// let server = StreamServer::bind("127.0.0.1:0", |mut conn: greenrt::net::TcpStream, _peer| {
///     let mut buf = [0; 1024];
///     while let Ok(n @ 1..) = conn.read(&mut buf) {
///         if conn.write_all(&buf[..n]).is_err() {
///             break;
///         }
///     }
/// })
/// .unwrap();
/// server.start().unwrap();
/// let mut c = greenrt::net::TcpStream::connect(server.local_addr()).unwrap();
/// c.write_all(b"ping").unwrap();
/// let mut back = [0; 4];
/// c.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"ping");
/// server.stop(std::time::Duration::from_secs(1));
/// ```
///
/// - The server belongs to the hub (thread) that made it, like its
///   greenlets; cloning the value gives another handle to it. For several
///   cores, see [`StreamServer::workers`].
/// - Accepting runs in its own greenlet ([`start`](Self::start)). Accepted
///   sockets get `TCP_NODELAY` unless [`nodelay(false)`](Self::nodelay)
///   (gevent's pywsgi leaves Nagle on and pays up to 40 ms per response).
/// - With a [`Pool`] ([`with_pool`](Self::with_pool), gevent's
///   `spawn=Pool(n)`) at most `n` handlers run at once; while the pool is
///   full the server stops accepting, and new connections wait in the
///   kernel's backlog.
/// - At most [`max_accept`](Self::max_accept) connections (default 100)
///   are accepted in a row before other greenlets get a turn, so a flood
///   of connections cannot starve the ones already being served (gevent's
///   `max_accept`).
/// - When accept fails for lack of resources (`EMFILE`, `ENFILE`,
///   `ENOBUFS`, `ENOMEM`) the server neither spins nor dies: it logs the
///   first failure of the episode (`GREENRT_LOG`), sleeps 10 ms, doubling
///   up to 1 s while the failures go on, and accepts again once the
///   process has descriptors to spare.
/// - [`stop`](Self::stop) is graceful: it closes the listener, waits for
///   the running handlers up to a timeout, then kills the stragglers.
pub struct StreamServer {
    inner: Rc<Inner>,
}

impl Clone for StreamServer {
    fn clone(&self) -> Self {
        StreamServer {
            inner: self.inner.clone(),
        }
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("addr", &self.inner.addr)
            .field("started", &self.started())
            .field("closed", &self.closed())
            .field("connections", &self.connections())
            .finish()
    }
}

fn is_resource_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Errors about one connection that accept(2) reports on Linux (the
/// connection is gone; the listener is fine).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EINTR
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::ETIMEDOUT
        )
    )
}

impl StreamServer {
    /// Binds `addr` (with `SO_REUSEADDR`) and makes a server that runs
    /// `handler` for each connection (gevent's `StreamServer(addr,
    /// handle)`). Call [`start`](Self::start) or
    /// [`serve_forever`](Self::serve_forever) to accept.
    pub fn bind<A: ToSocketAddrs>(
        addr: A,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        Ok(StreamServer::from_listener(TcpListener::bind(addr)?, handler))
    }

    /// A server on a listener made elsewhere (gevent's
    /// `StreamServer(listener, handle)`); a `std::net::TcpListener`
    /// converts with `.into()`.
    pub fn from_listener(listener: TcpListener, handler: impl Fn(TcpStream, SocketAddr) + 'static) -> StreamServer {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        StreamServer {
            inner: Rc::new(Inner {
                addr,
                handler: Rc::new(handler),
                listener: RefCell::new(Some(Rc::new(listener))),
                nodelay: Cell::new(true),
                max_accept: Cell::new(DEFAULT_MAX_ACCEPT),
                life: Lifecycle::new(),
            }),
        }
    }

    /// Runs handlers in `pool` (gevent's `spawn=pool`): at most
    /// `pool.size()` at once, and no accepting while it is full. Set it
    /// before [`start`](Self::start).
    pub fn with_pool(self, pool: Pool) -> StreamServer {
        self.inner.life.set_pool(pool);
        self
    }

    /// Whether accepted sockets get `TCP_NODELAY` (default: yes).
    pub fn nodelay(self, on: bool) -> StreamServer {
        self.inner.nodelay.set(on);
        self
    }

    /// Most connections accepted in a row before the accept loop yields
    /// to other greenlets (default 100; gevent's `max_accept`).
    pub fn max_accept(self, n: usize) -> StreamServer {
        self.inner.max_accept.set(n.max(1));
        self
    }

    /// The address the server listens on (with the real port when bound
    /// to port 0; gevent's `server.address`).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// True while the accept loop runs (gevent's `started`).
    pub fn started(&self) -> bool {
        self.inner.life.started()
    }

    /// True once the server was closed or stopped (gevent's `closed`).
    pub fn closed(&self) -> bool {
        self.inner.life.closed()
    }

    /// Handlers running now.
    pub fn connections(&self) -> usize {
        self.inner.life.group().len()
    }

    /// The handler greenlets running now.
    pub fn greenlets(&self) -> Vec<crate::GreenletRef> {
        self.inner.life.group().greenlets()
    }

    /// Starts accepting in a new greenlet and returns at once (gevent's
    /// `start`). Starting a started server does nothing; a closed one
    /// cannot start again.
    pub fn start(&self) -> io::Result<()> {
        if self.started() {
            return Ok(());
        }
        let listener = self.inner.listener.borrow().clone();
        let Some(listener) = listener.filter(|_| !self.closed()) else {
            return Err(Lifecycle::closed_error());
        };
        let inner = self.inner.clone();
        self.inner
            .life
            .spawn_loop(format!("StreamServer {}", self.inner.addr), move || {
                accept_loop(&inner, &listener)
            })
    }

    /// Starts if needed, then waits until the server stops (gevent's
    /// `serve_forever`): until [`stop`](Self::stop) has finished (called
    /// from a handler or another greenlet), or accepting fails for a
    /// reason other than lack of resources (returned as the error).
    pub fn serve_forever(&self) -> io::Result<()> {
        self.start()?;
        self.inner.life.wait_done()
    }

    /// Stops accepting and closes the listener at once; running handlers
    /// go on (gevent's `close`).
    pub fn close(&self) {
        self.inner.life.mark_closed();
        if let Some(l) = self.inner.listener.borrow_mut().take() {
            l.close();
        }
        self.inner.life.kill_loop();
    }

    /// Stops the server gracefully (gevent's `stop(timeout)`): closes the
    /// listener, waits up to `timeout` for the running handlers to finish,
    /// kills those still running, and returns once they are gone. A
    /// handler may call it: it is left out of the wait and goes on.
    pub fn stop(&self, timeout: Duration) {
        self.close();
        self.inner.life.drain(timeout);
        self.inner.life.set_done();
    }

    /// Runs on `n` hubs at once, one per OS thread, each accepting on its
    /// own `SO_REUSEPORT` listener bound to the same address; the kernel
    /// spreads connections among them. See [`WorkersBuilder`].
    pub fn workers(n: usize) -> WorkersBuilder {
        WorkersBuilder {
            n: n.max(1),
            pool_size: None,
            nodelay: true,
            max_accept: DEFAULT_MAX_ACCEPT,
        }
    }
}

impl Inner {
    /// Runs the handler for one accepted connection in a new greenlet of
    /// the group. Returns false if no stack could be had for it.
    fn spawn_handler(&self, stream: TcpStream, peer: SocketAddr) -> bool {
        if GuardedStack::check_budget(config::get().stack_size).is_err() {
            return false;
        }
        if self.nodelay.get() {
            let _ = stream.set_nodelay(true);
        }
        let handler = self.handler.clone();
        // The slot was free before accepting, and nothing switched since.
        self.life.group().spawn(move || handler(stream, peer)).is_ok()
    }
}

/// The acceptor greenlet's body.
fn accept_loop(inner: &Rc<Inner>, listener: &TcpListener) {
    let mut backoff: Option<Duration> = None;
    let mut in_a_row = 0;
    loop {
        if !inner.life.wait_for_slot() {
            continue;
        }
        let failure = match listener.accept() {
            Ok((stream, peer)) => {
                if inner.spawn_handler(stream, peer) {
                    if let Some(d) = backoff.take() {
                        config::log(
                            LogLevel::Debug,
                            format_args!("StreamServer {}: accepting again (last pause {d:?})", inner.addr),
                        );
                    }
                    in_a_row += 1;
                    if in_a_row >= inner.max_accept.get() {
                        in_a_row = 0;
                        greenlet::yield_now();
                    }
                    continue;
                }
                io::Error::other("no stack for a new greenlet (vm.max_map_count)")
            }
            Err(e) if is_resource_error(&e) => e,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                inner.life.fail(
                    e,
                    format_args!("StreamServer {}: accept failed, no longer accepting", inner.addr),
                );
                return;
            }
        };
        // Out of descriptors or memory: the connection stays in the
        // backlog; retrying at once would spin. Pause, longer each time.
        let pause = match backoff {
            None => {
                config::log(
                    LogLevel::Error,
                    format_args!(
                        "StreamServer {}: cannot accept: {failure}; retrying every 10 ms to 1 s until it works",
                        inner.addr
                    ),
                );
                BACKOFF_MIN
            }
            Some(d) => (d * 2).min(BACKOFF_MAX),
        };
        backoff = Some(pause);
        in_a_row = 0;
        greenlet::sleep(pause);
    }
}

// ===== workers =====

static NEXT_WORKERS_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The worker servers running on this thread, by `Workers` id, so a
    /// stop posted to this hub can reach its (`!Send`) server.
    static WORKER_SERVERS: RefCell<HashMap<u64, StreamServer>> = RefCell::new(HashMap::new());
}

/// Configures [`Workers`]: made by [`StreamServer::workers`].
#[derive(Clone, Debug)]
pub struct WorkersBuilder {
    n: usize,
    pool_size: Option<usize>,
    nodelay: bool,
    max_accept: usize,
}

impl WorkersBuilder {
    /// Bounds each worker's concurrent handlers with a [`Pool`] of this
    /// size.
    pub fn pool_size(mut self, n: usize) -> WorkersBuilder {
        self.pool_size = Some(n.max(1));
        self
    }

    /// See [`StreamServer::nodelay`].
    pub fn nodelay(mut self, on: bool) -> WorkersBuilder {
        self.nodelay = on;
        self
    }

    /// See [`StreamServer::max_accept`].
    pub fn max_accept(mut self, n: usize) -> WorkersBuilder {
        self.max_accept = n.max(1);
        self
    }

    /// Binds one `SO_REUSEPORT` listener per worker to `addr` (port 0
    /// picks one port for all), starts the worker threads and returns.
    ///
    /// Greenlets cannot move between threads, so each worker builds its
    /// own handler by calling `factory` once on its thread: the handler
    /// itself may hold `Rc`s, caches, and other per-hub state. A handler
    /// that is `Send + Sync + Clone` is served with `move || h.clone()`.
    pub fn bind<A, F, H>(self, addr: A, factory: F) -> io::Result<Workers>
    where
        A: ToSocketAddrs,
        F: Fn() -> H + Send + Sync + 'static,
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        let first = TcpListener::bind_reuse_port(addr)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..self.n {
            listeners.push(TcpListener::bind_reuse_port(addr)?);
        }
        let id = NEXT_WORKERS_ID.fetch_add(1, Ordering::Relaxed);
        let factory = Arc::new(factory);
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let (factory, tx, cfg) = (factory.clone(), tx.clone(), self.clone());
            let t = thread::Builder::new()
                .name(format!("greenrt-worker-{i}"))
                .spawn(move || -> io::Result<()> {
                    let mut server = StreamServer::from_listener(listener, factory())
                        .nodelay(cfg.nodelay)
                        .max_accept(cfg.max_accept);
                    if let Some(n) = cfg.pool_size {
                        server = server.with_pool(Pool::new(n));
                    }
                    let started = server.start();
                    let ok = started.is_ok();
                    let _ = tx.send(started.map(|()| HubHandle::current()));
                    if !ok {
                        return Ok(());
                    }
                    WORKER_SERVERS.with(|m| m.borrow_mut().insert(id, server.clone()));
                    let r = server.serve_forever();
                    WORKER_SERVERS.with(|m| m.borrow_mut().remove(&id));
                    r
                })?;
            threads.push(t);
        }
        drop(tx);
        let mut hubs = Vec::new();
        let mut error = None;
        for _ in 0..threads.len() {
            match rx.recv() {
                Ok(Ok(h)) => hubs.push(h),
                Ok(Err(e)) => error = Some(e),
                Err(_) => error = Some(io::Error::other("a worker thread died while starting")),
            }
        }
        let workers = Workers {
            id,
            addr,
            hubs,
            threads: Mutex::new(threads),
        };
        if let Some(e) = error {
            let _ = workers.stop(Duration::ZERO);
            return Err(e);
        }
        Ok(workers)
    }
}

/// Several [`StreamServer`]s, one per OS thread and hub, sharing one
/// address through `SO_REUSEPORT` (what gevent users do by forking
/// processes). `Send + Sync`: any thread may stop or join them. Dropping
/// it leaves the workers serving.
pub struct Workers {
    id: u64,
    addr: SocketAddr,
    hubs: Vec<HubHandle>,
    threads: Mutex<Vec<JoinHandle<io::Result<()>>>>,
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("addr", &self.addr)
            .field("workers", &self.hubs.len())
            .finish()
    }
}

impl Workers {
    /// The address every worker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.hubs.len()
    }

    /// True if there are no workers (never, once bound).
    pub fn is_empty(&self) -> bool {
        self.hubs.is_empty()
    }

    /// Stops every worker as [`StreamServer::stop`] does (each on its own
    /// hub, reached through its [`HubHandle`]), then waits for their
    /// threads. Blocks the calling thread: call it from a thread that is
    /// not serving greenlets (or from a greenlet whose hub may pause).
    pub fn stop(&self, timeout: Duration) -> io::Result<()> {
        for hub in &self.hubs {
            let id = self.id;
            let _ = hub.spawn(move || {
                let server = WORKER_SERVERS.with(|m| m.borrow().get(&id).cloned());
                if let Some(s) = server {
                    s.stop(timeout);
                }
            });
        }
        self.join()
    }

    /// Waits until every worker has stopped (after [`stop`](Self::stop),
    /// or a fatal accept error), blocking the calling thread; returns the
    /// first worker's error.
    pub fn join(&self) -> io::Result<()> {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let mut result = Ok(());
        for t in threads.drain(..) {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}
