//! Load test: many concurrent TLS connections on 127.0.0.1, tlsflow against its peer in the
//! same run (issue 5). Not a timed unit test; run it through `scripts/load`, which raises
//! `ulimit -n` first:
//!
//! ```text
//! scripts/load                                    # 10,000 tokio + 1,000 mio connections, 3 rounds
//! cargo run --release --example load -- compare --conns 2000 --mio-conns 500 --rounds 1
//! ```
//!
//! # What a run is
//!
//! `compare` (the coordinator) starts, for each run, two fresh processes of this same binary:
//! a **server** (`load server --impl I`) and a **client** (`load client --impl I ...`), so
//! each side's heap and RSS are measured alone and from a clean start. The client opens
//! `--conns` connections to the server, at most `--concurrency` in flight (connect →
//! handshake → request → response) at a time. Each connection does a TLS 1.3 handshake
//! (ECDSA P-256 certificates from `tls_test::certs::Pki`, ring provider, no resumption), sends
//! a 35-byte `GET / HTTP/1.1` request, reads a 43-byte response and then stays open, idle,
//! with a read pending on both sides. When every connection is idle the client measures
//! itself and prints one `result` line; the coordinator then asks the server (`wait N` on
//! its stdin) to wait until its N connections are idle and report `stats`, and ends both.
//!
//! * **Handshake latency** is client-measured: from before the TCP connect to the end of
//!   the TLS handshake, per connection; p50 and p99 over all connections of the run.
//! * **Handshakes/s**: connections that went idle ÷ the time from the first connect to the
//!   last connection going idle (each connection is one full handshake plus one request).
//! * **Heap per idle connection**: live heap bytes (counted by
//!   `tls_test::alloc_counter::Counting`, this binary's global allocator) once all N are
//!   idle, minus the same figure before the first connection, ÷ N. It includes everything
//!   a connection costs the process: the tokio task or mio slot, the socket registration
//!   and the TLS stream. **RSS per idle connection** is the same difference of `VmRSS`
//!   from `/proc/self/status`.
//! * **Server connection object**: the size of one connection's own object in the server,
//!   fixed at compile time: the spawned task's future (tokio; a task allocates its whole
//!   future, whose size is that of its largest state, handshake included) or the boxed
//!   connection (mio). It is part of the heap figure. The tokio server tasks are written as
//!   an application would (`acceptor.accept(sock).await`, then the exchange on `&mut` the
//!   stream); `--box-handshake` boxes the accept future in both (`Box::pin`), so the task
//!   keeps only a pointer to the handshake state. `load sizes` prints these sizes.
//!
//! A connection counts as idle only once its read has returned `Pending` (tokio) or
//! `WouldBlock` (mio), i.e. after the TLS stream has seen the socket empty (tlsflow gives its
//! buffers back there).
//!
//! Implementations (`--impl`): `tlsflow` (`tls_unix::tokio::{TlsAcceptor, TlsConnector}`),
//! `tokio-rustls` (`tokio_rustls`, same rustls version and provider), `tlsflow-mio`
//! (`tls_unix::nonblocking::TlsStream` on one thread driven by a `mio::Poll`, as
//! `tls-unix/examples/mio_https_server.rs`) and `rustls-mio` (rustls' own
//! `ServerConnection` over the same mio loop). The tokio servers and clients run on a
//! multi-threaded runtime with `--workers` worker threads (default 1), the same for both.
//! The client uses the server's library (`--client same`, the default: tlsflow's tokio
//! flavour for `tlsflow-mio`, tokio-rustls for `rustls-mio`), or a fixed one
//! (`--client tlsflow|tokio-rustls`).
//!
//! 10,000 connections from one address would run out of ephemeral ports across runs
//! (TIME_WAIT): the client binds each connection to its own source address in
//! `127.<run>.0.0/16`, and the server process exits first. Every listener (tokio and mio)
//! has a backlog of 4096, above the connections in flight.
//!
//! Each round runs both implementations, in the opposite order from the round before; the
//! table gives each figure's median over the rounds and the median of the per-round ratios
//! ours ÷ peer.

use std::fmt::Write as _;
use std::future::{poll_fn, Future};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
use mio::{Events, Interest, Token};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use tls_test::alloc_counter::{live_bytes, Counting};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki, TLS13};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;

#[global_allocator]
static ALLOC: Counting = Counting;

/// What every client sends once connected.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n";
/// What every server answers.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
/// A connection that has not reached idle within this time fails.
const CONN_LIMIT: Duration = Duration::from_secs(60);
/// How long the client and server wait for the next connection to go idle.
const PROGRESS_LIMIT: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(about = "TLS load test: tlsflow against tokio-rustls / rustls (see the file's docs)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the whole comparison and prints the table.
    Compare(CompareArgs),
    /// One server process (started by `compare`; commands on stdin).
    Server(ServerArgs),
    /// One client process (started by `compare`).
    Client(ClientArgs),
    /// Prints the in-memory sizes of the per-connection objects (diagnosis).
    Sizes,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Connections per tokio run.
    #[arg(long, default_value_t = 10_000)]
    conns: usize,
    /// Connections per mio run.
    #[arg(long, default_value_t = 1_000)]
    mio_conns: usize,
    /// Rounds (each runs both implementations, order alternating).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Connections in flight (connect to response) at a time, per client.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Worker threads of every tokio runtime (client and server).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The client library.
    #[arg(long, value_enum, default_value_t = ClientChoice::Same)]
    client: ClientChoice,
    /// Which comparisons to run.
    #[arg(long, value_enum, default_value_t = Only::All)]
    only: Only,
    /// Tokio servers (both): `Box::pin` the accept future, so a connection's task holds a
    /// pointer to it instead of the whole handshake state.
    #[arg(long)]
    box_handshake: bool,
}

#[derive(clap::Args)]
struct ServerArgs {
    #[arg(long = "impl", value_enum)]
    imp: Impl,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Box the accept future (tokio servers).
    #[arg(long)]
    box_handshake: bool,
}

#[derive(clap::Args)]
struct ClientArgs {
    #[arg(long = "impl", value_enum)]
    imp: ClientImpl,
    #[arg(long)]
    port: u16,
    /// The server's CA certificate (PEM).
    #[arg(long)]
    ca: PathBuf,
    #[arg(long)]
    conns: usize,
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Source addresses are 127.<net>.x.y (1..=254).
    #[arg(long, default_value_t = 1)]
    net: u8,
}

/// A server implementation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Impl {
    Tlsflow,
    TokioRustls,
    TlsflowMio,
    RustlsMio,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Self::Tlsflow => "tlsflow",
            Self::TokioRustls => "tokio-rustls",
            Self::TlsflowMio => "tlsflow-mio",
            Self::RustlsMio => "rustls-mio",
        }
    }

    /// The client library `--client same` means for this server.
    fn same_client(self) -> ClientImpl {
        match self {
            Self::Tlsflow | Self::TlsflowMio => ClientImpl::Tlsflow,
            Self::TokioRustls | Self::RustlsMio => ClientImpl::TokioRustls,
        }
    }
}

/// A client implementation (tokio).
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum ClientImpl {
    Tlsflow,
    TokioRustls,
}

impl ClientImpl {
    fn name(self) -> &'static str {
        match self {
            Self::Tlsflow => "tlsflow",
            Self::TokioRustls => "tokio-rustls",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum ClientChoice {
    Same,
    Tlsflow,
    TokioRustls,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Only {
    All,
    Tokio,
    Mio,
}

fn main() {
    let result = match Cli::parse().cmd {
        Cmd::Compare(args) => compare(&args),
        Cmd::Server(args) => server_main(&args),
        Cmd::Client(args) => client_main(&args),
        Cmd::Sizes => sizes(),
    };
    if let Err(e) = result {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

// ---------------------------------------------------------------------------------------
// Measurements

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`).
fn rss() -> io::Result<i64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| other("no VmRSS in /proc/self/status"))
}

/// Heap and RSS at one instant.
#[derive(Clone, Copy, Debug)]
struct Mem {
    heap: i64,
    rss: i64,
}

impl Mem {
    fn now() -> io::Result<Self> {
        Ok(Self {
            heap: live_bytes() as i64,
            rss: rss()?,
        })
    }
}

/// Fails early, with the fix, when this process may not open `need` descriptors.
fn check_fd_limit(need: usize) -> io::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < need + 64 => Err(other(format!(
            "open-file limit {soft} is too low for {need} connections: raise `ulimit -n` \
             (scripts/load does)"
        ))),
        _ => Ok(()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn tokio_runtime(workers: usize) -> io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
}

/// Polls `read` once per wake-up; calls `on_idle` every time it returns `Pending` (the
/// socket was empty and the stream is parked), and returns what the read finally gives.
async fn idle_read<S: AsyncRead + Unpin>(
    s: &mut S,
    mut on_idle: impl FnMut(),
) -> io::Result<usize> {
    let mut buf = [0u8; 16];
    poll_fn(|cx| {
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut *s).poll_read(cx, &mut rb) {
            Poll::Pending => {
                on_idle();
                Poll::Pending
            }
            Poll::Ready(r) => Poll::Ready(r.map(|()| rb.filled().len())),
        }
    })
    .await
}

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("valid name")
}

// ---------------------------------------------------------------------------------------
// Server process

/// Size in bytes of one connection's own object: the spawned task's future (tokio) or the
/// boxed connection (mio); reported in `stats`.
static CONN_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// A std listener on 127.0.0.1 with a backlog of 4096, like the tokio servers'. (mio's
/// and std's `bind` listen with 128, fewer than the connections in flight: the overflow
/// drops SYNs and adds 1 s retransmissions to the latency.)
fn backlogged_listener() -> io::Result<std::net::TcpListener> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let sock = TcpSocket::new_v4()?;
        sock.set_reuseaddr(true)?;
        sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = sock.listen(4096)?.into_std()?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })
}

/// What a server connection reports to the control loop.
enum Event {
    /// Handshake, request and response done; a read is pending.
    Idle,
    /// The connection failed before going idle.
    Failed(String),
}

/// `load server`: prints `ready <port> <ca.pem>`, then answers `wait <n>` with
/// `stats <idle> <failed> <heap0> <heap1> <rss0> <rss1> <conn_object_bytes>` and exits on `quit` (or EOF).
fn server_main(args: &ServerArgs) -> io::Result<()> {
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let config = Arc::new(pki.server_config(&CertOptions {
        versions: TLS13.to_vec(),
        ..Default::default()
    }));
    let ca = std::env::temp_dir().join(format!("tlsflow-load-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &pki.ca_pem)?;
    let (tx, rx) = mpsc::channel();

    // Keep the runtime (tokio) or the loop thread (mio) alive until exit.
    let (port, _runtime, before) = match args.imp {
        Impl::Tlsflow | Impl::TokioRustls => {
            let rt = tokio_runtime(args.workers)?;
            let listener = rt.block_on(async {
                let sock = TcpSocket::new_v4()?;
                sock.set_reuseaddr(true)?;
                sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
                sock.listen(4096)
            })?;
            let port = listener.local_addr()?.port();
            let before = Mem::now()?;
            rt.spawn(accept_loop(
                args.imp,
                args.box_handshake,
                listener,
                config,
                tx,
            ));
            (port, Some(rt), before)
        }
        Impl::TlsflowMio | Impl::RustlsMio => {
            let mut listener = MioListener::from_std(backlogged_listener()?);
            let port = listener.local_addr()?.port();
            let poll = mio::Poll::new()?;
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)?;
            let events = Events::with_capacity(1024);
            let (ready_tx, ready_rx) = mpsc::channel();
            let imp = args.imp;
            std::thread::spawn(move || {
                let result = match imp {
                    Impl::TlsflowMio => {
                        mio_loop::<TlsflowMio>(poll, events, listener, config, tx, ready_rx)
                    }
                    _ => mio_loop::<RustlsMio>(poll, events, listener, config, tx, ready_rx),
                };
                if let Err(e) = result {
                    eprintln!("load server: mio loop: {e}");
                    std::process::exit(1);
                }
            });
            let before = Mem::now()?;
            ready_tx.send(()).map_err(|_| other("mio thread gone"))?;
            (port, None, before)
        }
    };
    println!("ready {port} {}", ca.display());
    io::stdout().flush()?;

    let mut idle = 0usize;
    let mut failed = 0usize;
    let mut errors_shown = 0;
    let mut note = |e: &Event, idle: &mut usize, failed: &mut usize| match e {
        Event::Idle => *idle += 1,
        Event::Failed(msg) => {
            *failed += 1;
            if errors_shown < 5 {
                eprintln!("load server: connection failed: {msg}");
                errors_shown += 1;
            }
        }
    };
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|n| n.parse::<usize>().ok()),
        ) {
            (Some("wait"), Some(n)) => {
                let mut deadline = Instant::now() + PROGRESS_LIMIT;
                while idle < n {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(e) => {
                            note(&e, &mut idle, &mut failed);
                            deadline = Instant::now() + PROGRESS_LIMIT;
                        }
                        Err(_) => break,
                    }
                }
                while let Ok(e) = rx.try_recv() {
                    note(&e, &mut idle, &mut failed);
                }
                let after = Mem::now()?;
                println!(
                    "stats {idle} {failed} {} {} {} {} {}",
                    before.heap,
                    after.heap,
                    before.rss,
                    after.rss,
                    CONN_OBJECT.load(Ordering::Relaxed)
                );
                io::stdout().flush()?;
            }
            (Some("quit"), _) => break,
            _ => eprintln!("load server: unknown command {line:?}"),
        }
    }
    let _ = std::fs::remove_file(&ca);
    // Exit without dropping thousands of connections one by one.
    std::process::exit(0)
}

/// Spawns the task of one accepted connection, written the way an application would:
/// `accept(sock).await`, then the exchange on `&mut` the stream. With `boxed`, the accept
/// future is boxed (`Box::pin`), so the task keeps only a pointer to it.
/// `$with` gets the task's future (`spawn_conn`, or `task_size` for `load sizes`).
macro_rules! serve_task {
    ($with:ident, $acceptor:expr, $sock:expr, $tx:expr, $boxed:expr) => {{
        let (acceptor, sock, tx) = ($acceptor, $sock, $tx);
        if $boxed {
            $with(async move {
                match Box::pin(acceptor.accept(sock)).await {
                    Ok(mut tls) => serve(&mut tls, tx).await,
                    Err(e) => drop(tx.send(Event::Failed(e.to_string()))),
                }
            })
        } else {
            $with(async move {
                match acceptor.accept(sock).await {
                    Ok(mut tls) => serve(&mut tls, tx).await,
                    Err(e) => drop(tx.send(Event::Failed(e.to_string()))),
                }
            })
        }
    }};
}

async fn accept_loop(
    imp: Impl,
    boxed: bool,
    listener: TcpListener,
    config: Arc<ServerConfig>,
    tx: mpsc::Sender<Event>,
) {
    let ours = tls_unix::tokio::TlsAcceptor::new(config.clone());
    let peer = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                let _ = tx.send(Event::Failed(format!("accept: {e}")));
                // Back off (descriptor exhaustion would otherwise spin).
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Err(e) = sock.set_nodelay(true) {
            let _ = tx.send(Event::Failed(format!("nodelay: {e}")));
            continue;
        }
        let tx = tx.clone();
        if imp == Impl::Tlsflow {
            serve_task!(spawn_conn, ours.clone(), sock, tx, boxed);
        } else {
            serve_task!(spawn_conn, peer.clone(), sock, tx, boxed);
        }
    }
}

/// Spawns a connection's task, noting its size.
fn spawn_conn(task: impl Future<Output = ()> + Send + 'static) {
    CONN_OBJECT.store(std::mem::size_of_val(&task), Ordering::Relaxed);
    tokio::spawn(task);
}

/// The size of a (never polled) task future.
fn task_size<F: Future>(task: F) -> usize {
    std::mem::size_of_val(&task)
}

/// One server connection after its handshake: read the request head, answer, then idle
/// until the client goes away. (No time limit here: the client has one, and the
/// coordinator's `wait` reports connections that never went idle.)
async fn serve<S>(tls: &mut S, tx: mpsc::Sender<Event>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = request_response(tls).await {
        let _ = tx.send(Event::Failed(e.to_string()));
        return;
    }
    let mut tx = Some(tx);
    let end = idle_read(tls, || {
        if let Some(tx) = tx.take() {
            let _ = tx.send(Event::Idle);
        }
    })
    .await;
    if let Some(tx) = tx {
        let _ = tx.send(Event::Failed(format!("ended before going idle: {end:?}")));
    }
}

async fn request_response<S>(tls: &mut S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; 256];
    let mut len = 0;
    while !head[..len].ends_with(b"\r\n\r\n") {
        if len == head.len() {
            return Err(other("request head too large"));
        }
        match tls.read(&mut head[len..]).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => len += n,
        }
    }
    tls.write_all(RESPONSE).await?;
    tls.flush().await
}

// ---------------------------------------------------------------------------------------
// mio servers: one thread, one `Poll`, a slab of boxed connections.

const LISTENER: Token = Token(usize::MAX);

/// A non-blocking server TLS stream the mio loop can drive.
trait MioTls: Read + Write + mio::event::Source + Sized {
    fn accept(config: Arc<ServerConfig>, sock: MioStream) -> io::Result<Self>;
    /// `Ok` once the handshake is complete, `WouldBlock` while it waits.
    fn drive_handshake(&mut self) -> io::Result<()>;
    fn next_interest(&self) -> Interest;
}

type TlsflowMio = tls_unix::nonblocking::TlsStream<MioStream>;

impl MioTls for TlsflowMio {
    fn accept(config: Arc<ServerConfig>, sock: MioStream) -> io::Result<Self> {
        Self::server(config, sock, tls_unix::Options::default())
    }

    fn drive_handshake(&mut self) -> io::Result<()> {
        self.handshake()
    }

    fn next_interest(&self) -> Interest {
        self.interest()
    }
}

/// rustls' `ServerConnection` over a mio socket, with the same `Read`/`Write` semantics as
/// tlsflow's non-blocking stream (`WouldBlock` when nothing can move).
struct RustlsMio {
    conn: ServerConnection,
    sock: MioStream,
}

impl RustlsMio {
    /// Writes queued records until none is left or the socket would block.
    fn write_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock)?;
        }
        Ok(())
    }

    /// Reads once from the socket into rustls and processes what came.
    fn read_tls(&mut self) -> io::Result<()> {
        match self.conn.read_tls(&mut self.sock)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => match self.conn.process_new_packets() {
                Ok(_) => Ok(()),
                Err(e) => {
                    let _ = self.write_tls();
                    Err(io::Error::new(io::ErrorKind::InvalidData, e))
                }
            },
        }
    }
}

impl MioTls for RustlsMio {
    fn accept(config: Arc<ServerConfig>, sock: MioStream) -> io::Result<Self> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Self { conn, sock })
    }

    fn drive_handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.write_tls()?;
            if !self.conn.is_handshaking() {
                break;
            }
            self.read_tls()?;
        }
        self.write_tls()
    }

    fn next_interest(&self) -> Interest {
        if self.conn.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }
}

impl Read for RustlsMio {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.drive_handshake()?;
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return result,
            }
            match self.write_tls() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            self.read_tls()?;
        }
    }
}

impl Write for RustlsMio {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drive_handshake()?;
        let n = self.conn.writer().write(buf)?;
        match self.write_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_tls()
    }
}

impl mio::event::Source for RustlsMio {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}

/// Where a mio connection is.
enum Phase {
    /// Handshake, then reading the request head (what came so far).
    Request(Vec<u8>),
    /// Writing the response from this offset, then flushing.
    Response(usize),
    /// Answered; a read is pending. `reported`: the control loop was told.
    Idle { reported: bool },
}

struct MioConn<T> {
    tls: T,
    phase: Phase,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl<T: MioTls> MioConn<T> {
    /// Does all it can until the socket would block; `Err` ends the connection.
    fn drive(&mut self, tx: &mpsc::Sender<Event>) -> io::Result<()> {
        loop {
            match &mut self.phase {
                Phase::Request(head) => {
                    match self.tls.drive_handshake() {
                        Err(e) if would_block(&e) => return Ok(()),
                        other => other?,
                    }
                    let mut buf = [0u8; 256];
                    match self.tls.read(&mut buf) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => {
                            head.extend_from_slice(&buf[..n]);
                            if head.ends_with(b"\r\n\r\n") {
                                self.phase = Phase::Response(0);
                            } else if head.len() > 256 {
                                return Err(other("request head too large"));
                            }
                        }
                        Err(e) if would_block(&e) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Phase::Response(at) if *at < RESPONSE.len() => {
                    match self.tls.write(&RESPONSE[*at..]) {
                        Ok(n) => *at += n,
                        Err(e) if would_block(&e) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Phase::Response(_) => match self.tls.flush() {
                    Ok(()) => self.phase = Phase::Idle { reported: false },
                    Err(e) if would_block(&e) => return Ok(()),
                    Err(e) => return Err(e),
                },
                Phase::Idle { reported } => {
                    let mut buf = [0u8; 16];
                    return match self.tls.read(&mut buf) {
                        Err(e) if would_block(&e) => {
                            if !*reported {
                                *reported = true;
                                let _ = tx.send(Event::Idle);
                            }
                            Ok(())
                        }
                        Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => Err(other("unexpected data on an idle connection")),
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }
}

fn mio_loop<T: MioTls>(
    mut poll: mio::Poll,
    mut events: Events,
    listener: MioListener,
    config: Arc<ServerConfig>,
    tx: mpsc::Sender<Event>,
    ready: mpsc::Receiver<()>,
) -> io::Result<()> {
    // Start serving only after the control thread took its "before" figures.
    ready.recv().map_err(|_| other("control thread gone"))?;
    CONN_OBJECT.store(std::mem::size_of::<MioConn<T>>(), Ordering::Relaxed);
    let mut conns: Vec<Option<Box<MioConn<T>>>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    let sock = match listener.accept() {
                        Ok((sock, _)) => sock,
                        Err(e) if would_block(&e) => break,
                        Err(e) => {
                            let _ = tx.send(Event::Failed(format!("accept: {e}")));
                            break;
                        }
                    };
                    sock.set_nodelay(true)?;
                    let mut tls = T::accept(config.clone(), sock)?;
                    let slot = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    poll.registry()
                        .register(&mut tls, Token(slot), Interest::READABLE)?;
                    conns[slot] = Some(Box::new(MioConn {
                        tls,
                        phase: Phase::Request(Vec::new()),
                    }));
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            match conn.drive(&tx) {
                Ok(()) => {
                    let interest = conn.tls.next_interest();
                    poll.registry()
                        .reregister(&mut conn.tls, Token(slot), interest)?;
                }
                Err(e) => {
                    if !matches!(conn.phase, Phase::Idle { reported: true }) {
                        let _ = tx.send(Event::Failed(e.to_string()));
                    }
                    let mut conn = conns[slot].take().expect("present");
                    poll.registry().deregister(&mut conn.tls)?;
                    free.push(slot);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Client process

fn client_config(ca: &std::path::Path) -> io::Result<Arc<ClientConfig>> {
    let ca = CertificateDer::from_pem_file(ca).map_err(io::Error::other)?;
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13)
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

#[derive(Clone)]
enum Connector {
    Tlsflow(tls_unix::tokio::TlsConnector),
    TokioRustls(tokio_rustls::TlsConnector),
}

/// What a client connection reports: its handshake latency once idle, or why it failed.
type Outcome = Result<Duration, String>;

/// The source address of connection `i` in run `net`: 127.net.x.y, y in 1..=250.
fn source(net: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        net,
        (i / 250 % 256) as u8,
        (i % 250 + 1) as u8,
    ))
}

/// The task of one client connection with `$connector`: connect from `$src`, handshake
/// (timed from before the connect), request, response, then idle until the server goes
/// away.
macro_rules! client_conn {
    ($connector:expr, $server:expr, $src:expr, $tx:expr) => {{
        let (connector, server, src, tx) = ($connector, $server, $src, $tx);
        async move {
            let start = Instant::now();
            let setup = tokio::time::timeout(CONN_LIMIT, async {
                let tcp = tcp_connect(src, server).await?;
                let mut tls = connector.connect(server_name(), tcp).await?;
                let latency = start.elapsed();
                request(&mut tls).await?;
                Ok::<_, io::Error>((tls, latency))
            })
            .await;
            match setup {
                Ok(Ok((mut tls, latency))) => hold(&mut tls, latency, tx).await,
                Ok(Err(e)) => drop(tx.send(Err(e.to_string()))),
                Err(_) => drop(tx.send(Err("timed out before going idle".into()))),
            }
        }
    }};
}

/// `load client`: opens the connections, prints
/// `result <ok> <failed> <secs> <p50_us> <p99_us> <heap0> <heap1> <rss0> <rss1>` once all
/// are idle (or failed), then holds them until stdin closes.
fn client_main(args: &ClientArgs) -> io::Result<()> {
    check_fd_limit(args.conns)?;
    let config = client_config(&args.ca)?;
    let connector = match args.imp {
        ClientImpl::Tlsflow => Connector::Tlsflow(tls_unix::tokio::TlsConnector::new(config)),
        ClientImpl::TokioRustls => Connector::TokioRustls(tokio_rustls::TlsConnector::from(config)),
    };
    let rt = tokio_runtime(args.workers)?;
    let server = SocketAddr::from(([127, 0, 0, 1], args.port));
    let (tx, rx) = mpsc::channel::<Outcome>();
    let mut latencies = Vec::with_capacity(args.conns);
    let mut failed = 0usize;

    let before = Mem::now()?;
    let start = Instant::now();
    let launch = |i: usize| {
        let tx = tx.clone();
        let src = source(args.net, i);
        // One task type per library: a single `async fn` matching on the connector would
        // be as large as the larger library's future for both.
        match &connector {
            Connector::Tlsflow(k) => drop(rt.spawn(client_conn!(k.clone(), server, src, tx))),
            Connector::TokioRustls(k) => drop(rt.spawn(client_conn!(k.clone(), server, src, tx))),
        }
    };
    let mut launched = 0;
    while launched < args.conns.min(args.concurrency.max(1)) {
        launch(launched);
        launched += 1;
    }
    for _ in 0..args.conns {
        match rx.recv_timeout(PROGRESS_LIMIT) {
            Ok(Ok(latency)) => latencies.push(latency),
            Ok(Err(e)) => {
                if failed < 5 {
                    eprintln!("load client: connection failed: {e}");
                }
                failed += 1;
            }
            Err(_) => return Err(other("no connection finished for 60 s")),
        }
        if launched < args.conns {
            launch(launched);
            launched += 1;
        }
    }
    let elapsed = start.elapsed();
    let after = Mem::now()?;
    latencies.sort_unstable();
    println!(
        "result {} {failed} {:.6} {} {} {} {} {} {}",
        latencies.len(),
        elapsed.as_secs_f64(),
        percentile(&latencies, 50.0).as_micros(),
        percentile(&latencies, 99.0).as_micros(),
        before.heap,
        after.heap,
        before.rss,
        after.rss,
    );
    io::stdout().flush()?;
    // Hold the connections until the coordinator is done with the server.
    let _ = io::stdin().read_to_end(&mut Vec::new());
    rt.shutdown_background();
    Ok(())
}

async fn tcp_connect(src: IpAddr, server: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(src, 0))?;
    let tcp = sock.connect(server).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Sends the request and checks the response.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S) -> io::Result<()> {
    tls.write_all(REQUEST).await?;
    tls.flush().await?;
    let mut response = [0u8; RESPONSE.len()];
    tls.read_exact(&mut response).await?;
    if response != RESPONSE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected response",
        ));
    }
    Ok(())
}

/// Idles on a read; reports the latency once the read is pending.
async fn hold<S: AsyncRead + Unpin>(tls: &mut S, latency: Duration, tx: mpsc::Sender<Outcome>) {
    let mut tx = Some(tx);
    let end = idle_read(tls, || {
        if let Some(tx) = tx.take() {
            let _ = tx.send(Ok(latency));
        }
    })
    .await;
    if let Some(tx) = tx {
        let _ = tx.send(Err(format!("ended before going idle: {end:?}")));
    }
}

// ---------------------------------------------------------------------------------------
// Sizes

/// `load sizes`: how big each per-connection object is before it does anything (a future's
/// size is fixed by its largest state, and a spawned task allocates all of it).
fn sizes() -> io::Result<()> {
    use std::mem::{size_of, size_of_val};
    type Tcp = tokio::net::TcpStream;
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let config = Arc::new(pki.server_config(&CertOptions {
        versions: TLS13.to_vec(),
        ..Default::default()
    }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sock = || tokio::net::TcpStream::connect(addr);
        let ours = tls_unix::tokio::TlsAcceptor::new(config.clone());
        let peer = tokio_rustls::TlsAcceptor::from(config.clone());
        let (tx, _rx) = mpsc::channel();
        let (ctx, _crx) = mpsc::channel::<Outcome>();
        let client = Arc::new(pki.client_config(&CertOptions {
            versions: TLS13.to_vec(),
            ..Default::default()
        }));
        let rows: [(&str, usize); 14] = [
            ("tls_core::Session", size_of::<tls_core::Session>()),
            ("rustls::ServerConnection", size_of::<ServerConnection>()),
            (
                "tls_unix::tokio::TlsStream<TcpStream>",
                size_of::<tls_unix::tokio::TlsStream<Tcp>>(),
            ),
            (
                "tokio_rustls::server::TlsStream<TcpStream>",
                size_of::<tokio_rustls::server::TlsStream<Tcp>>(),
            ),
            (
                "tls_unix::tokio::TlsAcceptor::accept future",
                size_of_val(&ours.accept(sock().await?)),
            ),
            (
                "tokio_rustls::TlsAcceptor::accept future",
                size_of_val(&peer.accept(sock().await?)),
            ),
            (
                "load server task, tlsflow",
                serve_task!(task_size, ours.clone(), sock().await?, tx.clone(), false),
            ),
            (
                "load server task, tokio-rustls",
                serve_task!(task_size, peer.clone(), sock().await?, tx.clone(), false),
            ),
            (
                "load server task, tlsflow, accept boxed",
                serve_task!(task_size, ours.clone(), sock().await?, tx.clone(), true),
            ),
            (
                "load server task, tokio-rustls, accept boxed",
                serve_task!(task_size, peer.clone(), sock().await?, tx.clone(), true),
            ),
            (
                "load client task, tlsflow",
                task_size(client_conn!(
                    tls_unix::tokio::TlsConnector::new(client.clone()),
                    addr,
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ctx.clone()
                )),
            ),
            (
                "load client task, tokio-rustls",
                task_size(client_conn!(
                    tokio_rustls::TlsConnector::from(client.clone()),
                    addr,
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ctx.clone()
                )),
            ),
            (
                "tls_unix::nonblocking::TlsStream<mio TcpStream>",
                size_of::<TlsflowMio>(),
            ),
            (
                "load mio connection, rustls-mio",
                size_of::<MioConn<RustlsMio>>(),
            ),
        ];
        for (what, bytes) in rows {
            println!("{bytes:>8}  {what}");
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Coordinator

/// One run's figures (both processes).
#[derive(Clone, Debug)]
struct Run {
    ok: usize,
    failed: usize,
    server_idle: usize,
    server_failed: usize,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_heap: f64,
    server_rss: f64,
    /// Bytes of one connection's own object in the server (task future or mio box).
    server_object: f64,
    client_heap: f64,
    client_rss: f64,
}

/// A child process killed (by its own pid) if still running when dropped.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(args: &[String]) -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// The next line, split into words after checking its first word is `tag`.
    fn expect(&mut self, tag: &str) -> io::Result<Vec<String>> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        if words.first().map(String::as_str) != Some(tag) {
            return Err(other(format!(
                "expected `{tag} ...` from a child, got {line:?}"
            )));
        }
        Ok(words[1..].to_vec())
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| other("stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Closes stdin and waits for the exit.
    fn finish(mut self) -> io::Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait()?;
        if status.success() {
            Ok(())
        } else {
            Err(other(format!("child exited with {status}")))
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn num<T: std::str::FromStr>(words: &[String], i: usize) -> io::Result<T> {
    words
        .get(i)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| other(format!("bad field {i} in {words:?}")))
}

fn run_once(args: &CompareArgs, imp: Impl, conns: usize, net: u8) -> io::Result<Run> {
    let client = match args.client {
        ClientChoice::Same => imp.same_client(),
        ClientChoice::Tlsflow => ClientImpl::Tlsflow,
        ClientChoice::TokioRustls => ClientImpl::TokioRustls,
    };
    let mut server_args = vec![
        "server".into(),
        "--impl".into(),
        imp.name().into(),
        "--workers".into(),
        args.workers.to_string(),
    ];
    if args.box_handshake {
        server_args.push("--box-handshake".into());
    }
    let mut server = Proc::spawn(&server_args)?;
    let ready = server.expect("ready")?;
    let port: u16 = num(&ready, 0)?;
    let ca = ready.get(1).ok_or_else(|| other("no CA path"))?.clone();
    let mut client_proc = Proc::spawn(&[
        "client".into(),
        "--impl".into(),
        client.name().into(),
        "--port".into(),
        port.to_string(),
        "--ca".into(),
        ca,
        "--conns".into(),
        conns.to_string(),
        "--concurrency".into(),
        args.concurrency.to_string(),
        "--workers".into(),
        args.workers.to_string(),
        "--net".into(),
        net.to_string(),
    ])?;
    let r = client_proc.expect("result")?;
    let ok: usize = num(&r, 0)?;
    server.send(&format!("wait {ok}"))?;
    let s = server.expect("stats")?;
    server.send("quit")?;
    server.finish()?;
    client_proc.finish()?;

    let per = |before: i64, after: i64, n: usize| (after - before) as f64 / n.max(1) as f64;
    let server_idle: usize = num(&s, 0)?;
    let secs: f64 = num(&r, 2)?;
    Ok(Run {
        ok,
        failed: num(&r, 1)?,
        server_idle,
        server_failed: num(&s, 1)?,
        rate: ok as f64 / secs,
        p50_ms: num::<f64>(&r, 3)? / 1000.0,
        p99_ms: num::<f64>(&r, 4)? / 1000.0,
        server_heap: per(num(&s, 2)?, num(&s, 3)?, server_idle),
        server_rss: per(num(&s, 4)?, num(&s, 5)?, server_idle),
        server_object: num(&s, 6)?,
        client_heap: per(num(&r, 5)?, num(&r, 6)?, ok),
        client_rss: per(num(&r, 7)?, num(&r, 8)?, ok),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The figures of a table row, in column order.
fn figures(r: &Run) -> [f64; FIGURES] {
    [
        r.rate,
        r.p50_ms,
        r.p99_ms,
        r.server_heap,
        r.server_rss,
        r.server_object,
        r.client_heap,
        r.client_rss,
    ]
}

/// Columns after the counts.
const FIGURES: usize = 8;

const HEADER: &str = "impl             ok/failed (srv idle/failed)   hs/s   p50 ms   p99 ms  srv heap/conn  srv RSS/conn  srv conn obj  cli heap/conn  cli RSS/conn";

fn row(name: &str, counts: &str, f: &[f64; FIGURES]) -> String {
    format!(
        "{name:<16} {counts:<28} {:>6.0} {:>8.2} {:>8.2} {:>14.0} {:>13.0} {:>13.0} {:>14.0} {:>13.0}",
        f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
    )
}

fn compare_pair(
    args: &CompareArgs,
    label: &str,
    ours: Impl,
    peer: Impl,
    conns: usize,
    net: &mut u8,
) -> io::Result<String> {
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    println!(
        "\n{label}: {conns} connections per run, {} rounds",
        args.rounds
    );
    println!("{HEADER}");
    for round in 0..args.rounds.max(1) {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let imp = [ours, peer][side];
            let run = run_once(args, imp, conns, *net)?;
            *net = if *net >= 254 { 1 } else { *net + 1 };
            let counts = format!(
                "{}/{} ({}/{})",
                run.ok, run.failed, run.server_idle, run.server_failed
            );
            println!(
                "{}",
                row(&format!("{} r{round}", imp.name()), &counts, &figures(&run))
            );
            runs[side].push(run);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{label}: {conns} connections, medians of {} rounds",
        args.rounds.max(1)
    );
    let _ = writeln!(out, "{HEADER}");
    for (side, imp) in [ours, peer].into_iter().enumerate() {
        let rs = &runs[side];
        let sum = |f: fn(&Run) -> usize| rs.iter().map(f).sum::<usize>();
        let counts = format!(
            "{}/{} ({}/{})",
            sum(|r| r.ok),
            sum(|r| r.failed),
            sum(|r| r.server_idle),
            sum(|r| r.server_failed)
        );
        let med: Vec<f64> = (0..FIGURES)
            .map(|i| median(rs.iter().map(|r| figures(r)[i]).collect()))
            .collect();
        let _ = writeln!(
            out,
            "{}",
            row(imp.name(), &counts, &med.try_into().expect("all figures"))
        );
    }
    let ratio: Vec<f64> = (0..FIGURES)
        .map(|i| {
            median(
                runs[0]
                    .iter()
                    .zip(&runs[1])
                    .map(|(a, b)| figures(a)[i] / figures(b)[i])
                    .collect(),
            )
        })
        .collect();
    let widths = [6, 8, 8, 14, 13, 13, 14, 13];
    let mut line = format!(
        "{:<16} {:<28}",
        "ours ÷ peer", "(median of per-round ratios)"
    );
    for (r, w) in ratio.iter().zip(widths) {
        let _ = write!(line, " {r:>w$.3}");
    }
    let _ = writeln!(out, "{line}");
    Ok(out)
}

fn compare(args: &CompareArgs) -> io::Result<()> {
    let client = match args.client {
        ClientChoice::Same => "the server's library (tokio flavour)",
        ClientChoice::Tlsflow => "tlsflow (tokio) for every server",
        ClientChoice::TokioRustls => "tokio-rustls for every server",
    };
    println!(
        "load: TLS 1.3, ECDSA P-256, ring, no resumption; in flight ≤ {} per client; \
         tokio runtimes: multi-thread, {} worker(s); client: {client}",
        args.concurrency, args.workers
    );
    println!(
        "hs/s and latency (connect → handshake done) are client-measured; memory = (all idle − \
         before) ÷ connections, bytes"
    );
    let mut net = 1u8;
    let mut tables = String::new();
    if args.only != Only::Mio {
        tables += &compare_pair(
            args,
            "tokio",
            Impl::Tlsflow,
            Impl::TokioRustls,
            args.conns,
            &mut net,
        )?;
    }
    if args.only != Only::Tokio {
        tables += &compare_pair(
            args,
            "mio, one server thread",
            Impl::TlsflowMio,
            Impl::RustlsMio,
            args.mio_conns,
            &mut net,
        )?;
    }
    print!("{tables}");
    Ok(())
}
