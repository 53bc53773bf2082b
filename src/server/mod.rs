//! An HTTPS server on the Unix backend: tokio, hyper (HTTP/1.1 and HTTP/2, chosen by
//! ALPN) and tls-unix's tokio flavour. `tlsflow serve` is a thin command line over it.
//!
//! * Endpoints: `/` (what the connection negotiated), `/bytes/N` (N bytes of the
//!   deterministic stream of [`tlsflow_unikernel::http::fill_pattern`], generated as it is sent),
//!   `POST`/`PUT` of any path (the body's SHA-256 and length); with [`Options::echo`] raw
//!   echo instead of HTTP.
//! * Records: the TLS stream gathers writes into full records (coalescing mode) and sends
//!   the rest at hyper's flush, so a response head and a small body leave as one record
//!   and bulk as full 16 KiB records.
//! * Limits: a header-read timeout, an idle timeout, a bound on open connections (more
//!   wait in the listen backlog), a request-body limit (`413`); hyper answers `400` to a
//!   malformed head and `431` to an oversized one. Every connection ends with close_notify
//!   where TLS allows one, and logs one line (the
//!   [`tlsflow_unikernel::log`] line the smoltcp server prints too).
//! * Shutdown: [`Handle::shutdown`] stops accepting and shuts each connection down
//!   gracefully (hyper's graceful shutdown: the response in flight finishes), then
//!   close_notify goes out; [`Server::join`] returns when every connection has ended.
//!
//! ```no_run
//! # fn run(config: std::sync::Arc<rustls::ServerConfig>) -> std::io::Result<()> {
//! use std::sync::Arc;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let log = Arc::new(|line: String| println!("{line}"));
//! let server = tlsflow::server::Server::start(listener, config, Default::default(), log)?;
//! println!("listening on {}", server.addr());
//! server.handle().shutdown();
//! server.join();
//! # Ok(()) }
//! ```

mod conn;
mod service;
mod stream;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use tls_unix::tokio::TlsAcceptor;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How the server behaves; [`Default`] gives the `tlsflow serve` defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// Echo application data instead of speaking HTTP.
    pub echo: bool,
    /// Worker threads of the tokio runtime (`None`: one per core).
    pub threads: Option<usize>,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for a request head to arrive (HTTP/1.1). hyper starts the clock when
    /// it begins waiting for a head, so this also bounds an idle keep-alive connection.
    pub header_timeout: Duration,
    /// A connection on which nothing moves either way for this long while the server
    /// waits to read is closed (HTTP/2 and echo; HTTP/1.1 keep-alive connections waiting
    /// for their next request meet `header_timeout` first, which hyper starts when it
    /// begins waiting for a request head).
    pub idle_timeout: Duration,
    /// Time allowed for a write to make progress.
    pub write_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections_open: usize,
    /// Largest request head (HTTP/1.1; at least 8192): larger gets `431`.
    pub max_header_bytes: usize,
    /// Largest request body: larger gets `413`.
    pub max_body: u64,
    /// Stop accepting after this many connections (then finish them and end).
    pub max_connections: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            echo: false,
            threads: None,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            max_connections_open: 4096,
            max_header_bytes: 64 * 1024,
            max_body: 64 * 1024 * 1024,
            max_connections: None,
        }
    }
}

/// Where the server's log lines go (one per connection, plus accept errors).
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

#[derive(Debug)]
struct Shared {
    stop: watch::Sender<bool>,
    live: AtomicUsize,
}

/// Stops a [`Server`] and reads its counters; cheap to clone, usable from any thread
/// (a Ctrl-C handler, a test).
#[derive(Clone, Debug)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Starts a graceful shutdown: no more accepts; each connection finishes the response
    /// in flight, sends close_notify and ends.
    pub fn shutdown(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Connections accepted and not yet ended (handshaking, serving or closing).
    pub fn live_connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }
}

/// A running server: its own tokio runtime on a thread of its own.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    handle: Handle,
    thread: thread::JoinHandle<()>,
}

impl Server {
    /// Serves on `listener` until [`Handle::shutdown`] (or [`Options::max_connections`]).
    pub fn start(
        listener: std::net::TcpListener,
        config: Arc<ServerConfig>,
        options: Options,
        log: Log,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        // One worker: a current-thread runtime on the server's thread (no work stealing,
        // no cross-thread wake-ups). More: a multi-thread runtime with that many workers.
        let mut runtime = match options.threads {
            Some(1) => tokio::runtime::Builder::new_current_thread(),
            Some(n) => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(n.max(1));
                b
            }
            None => tokio::runtime::Builder::new_multi_thread(),
        };
        let runtime = runtime.enable_all().build()?;
        let handle = Handle {
            shared: Arc::new(Shared {
                stop: watch::channel(false).0,
                live: AtomicUsize::new(0),
            }),
        };
        let shared = handle.shared.clone();
        let thread = thread::Builder::new()
            .name("tlsflow-server".into())
            .spawn(move || {
                // The accept loop is a task like the connections, so on a multi-thread
                // runtime it runs on the workers too.
                let _ = runtime.block_on(runtime.spawn(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, config, options, shared, log).await,
                        Err(e) => log(format!("tlsflow: cannot listen: {e}")),
                    }
                }));
            })?;
        Ok(Server {
            addr,
            handle,
            thread,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to stop it and read its counters.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Connections accepted and not yet ended.
    pub fn live_connections(&self) -> usize {
        self.handle.live_connections()
    }

    /// Waits until the server has stopped and every connection has ended.
    pub fn join(self) {
        let _ = self.thread.join();
    }

    /// Shuts down gracefully and waits for it.
    pub fn stop(self) {
        self.handle.shutdown();
        self.join();
    }
}

/// Decrements the live count when a connection task ends, however it ends.
struct Live(Arc<Shared>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    config: Arc<ServerConfig>,
    options: Options,
    shared: Arc<Shared>,
    log: Log,
) {
    let acceptor = TlsAcceptor::new(config).with_options(tls_unix::Options {
        handshake_timeout: Some(options.handshake_timeout),
        // Reads wait as long as the connection is not idle (`stream::Idle`, which counts
        // writes as activity too: a long download is not idle).
        write_timeout: Some(options.write_timeout),
        ..tls_unix::Options::default()
    });
    let permits = Arc::new(Semaphore::new(options.max_connections_open.max(1)));
    let options = Arc::new(options);
    let mut stop = shared.stop.subscribe();
    let mut tasks = JoinSet::new();
    let graceful = GracefulShutdown::new();
    let mut accepted = 0u64;
    while options.max_connections.is_none_or(|max| accepted < max) {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.wait_for(|s| *s) => break,
        };
        let sock = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        while tasks.try_join_next().is_some() {}
        let sock = match sock {
            Ok((sock, _)) => sock,
            Err(e) => {
                log(format!("tlsflow: accept failed: {e}"));
                // Out of file descriptors and the like: give connections time to end.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        accepted += 1;
        shared.live.fetch_add(1, Ordering::SeqCst);
        let live = Live(shared.clone());
        let watcher = graceful.watcher();
        let (acceptor, options, stop, log) = (
            acceptor.clone(),
            options.clone(),
            shared.stop.subscribe(),
            log.clone(),
        );
        tasks.spawn(async move {
            let line = conn::serve(sock, acceptor, options, stop, watcher).await;
            // Counted out before the line is logged: a reader of the log sees the count
            // without this connection.
            drop(permit);
            drop(live);
            log(line);
        });
    }
    drop(listener);
    if *stop.borrow() {
        // Every connection's response in flight finishes (bounded by the write timeout
        // of each write), then each task sends close_notify.
        graceful.shutdown().await;
    }
    while tasks.join_next().await.is_some() {}
}
