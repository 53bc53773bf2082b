//! tls-unix over TCP on 127.0.0.1 against its peers, every pair measured in the same run.
//!
//! A plain bench binary (`harness = false`, no criterion): each case runs our side and its
//! peer alternately, in slices (a batch of connections, or one bulk transfer), for several
//! rounds with the order swapped every round, and reports the median rate of each side and
//! the median of the per-round ratios `ours / peer` (above 1: we are faster). On a shared,
//! noisy machine the per-round ratio is much steadier than either rate. See
//! `benches/README.md`.
//!
//! * `conn-new/{blocking,tokio}`: new connections per second, TLS 1.3, ECDSA P-256,
//!   resumption off on both sides. Client and server in this process; each connection is a
//!   handshake, an 8-byte request, a 32-byte response and close_notify both ways. Blocking:
//!   tls-unix's blocking client and server against rustls' `StreamOwned` client and server.
//!   Tokio: tls-unix's `TlsConnector`/`TlsAcceptor` against tokio-rustls' (servers on one
//!   multi-threaded runtime with one worker, the client in `block_on`, for both).
//! * `conn-resumed/{blocking,tokio}`: the same with TLS 1.3 tickets on both sides; every
//!   timed connection must have resumed (checked on the client).
//! * `bulk/{blocking,tokio}`: one connection per round carrying `BULK_MIB` (default 1024)
//!   server to client in 64 KiB writes, read in 64 KiB reads.
//! * `conn-new/vs-s_server` and `bulk/vs-s_server`: servers compared. Our blocking server
//!   (one thread, one connection at a time, like s_server) against `openssl s_server -WWW`,
//!   both serving `GET /<file> HTTP/1.0` from the same directory to the same client (ours,
//!   blocking): a 32-byte file for connections per second, a `BULK_MIB` file for bulk.
//!   The `-cpu` rows divide by the server's own CPU time instead of the wall clock, and the
//!   `rustls-vs-s_server` rows (reference, no target) put rustls' `StreamOwned` server in
//!   ours' place.
//!
//! The client side runs on one CPU and every server on another (`PIN=0`: unpinned).
//!
//! Environment: `QUICK=1` (fewer rounds, 256 MiB bulk), `BULK_MIB=<n>`, `ROUNDS=<n>`,
//! `CONNS=<n>` (connections per slice). The first argument that is not a flag filters cases
//! by substring (`cargo bench --bench sockets -- bulk`). Results are printed and saved as
//! `target/criterion/sockets.json` (`benches/report.py` shows them).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use rustls::pki_types::ServerName;
use rustls::StreamOwned;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki, TLS13};
use tls_unix::{blocking, Options};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Size of every write (and read buffer) in the bulk cases.
const CHUNK: usize = 64 * 1024;
/// The response to a connection-rate request.
const SMALL: u64 = 32;

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("valid name")
}

/// The CPUs the client side (this bench's main thread) and every server run on: the first
/// two this process may use, unless `PIN=0`. Unpinned, the scheduler settles each server
/// thread either on the client's core or on the other one and keeps it there for seconds,
/// which doubles or halves a side's connection rate at random (seen here: 1,300 against
/// 3,000 connections/s for the same code, swapping between runs).
fn cpus() -> Option<(usize, usize)> {
    if std::env::var("PIN").is_ok_and(|v| v == "0") {
        return None;
    }
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut cpus = (0..CpuSet::count()).filter(|&i| allowed.is_set(i).unwrap_or(false));
    Some((cpus.next()?, cpus.next()?))
}

/// Pins `pid` (0: the calling thread) to `cpu`, if pinning is on.
fn pin(pid: i32, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = CpuSet::new();
        if set.set(cpu).is_ok() {
            let _ = sched_setaffinity(Pid::from_raw(pid), &set);
        }
    }
}

/// Pins the calling thread to the server CPU.
fn pin_server() {
    pin(0, cpus().map(|c| c.1));
}

/// tls-unix's options for every connection of ours: the defaults, except that
/// `OURS_UNREAD_KIB=<n>` sets `Limits::unread_plaintext` (an experiment knob: it bounds how
/// much receive buffer the engine offers, and zero-fills, per read).
fn our_options() -> Options {
    let mut options = Options::default();
    if let Some(kib) = env_num("OURS_UNREAD_KIB") {
        options.limits.unread_plaintext = kib as usize * 1024;
    }
    options
}

// ====================================================================== settings

struct Settings {
    /// Connections per slice in the connection-rate cases.
    conns: usize,
    /// Rounds per case (each round times both sides once).
    rounds: usize,
    /// Rounds for the bulk cases.
    bulk_rounds: usize,
    /// Bytes per bulk transfer.
    bulk: u64,
    filter: Option<String>,
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

impl Settings {
    fn from_env() -> Self {
        let quick = std::env::var_os("QUICK").is_some_and(|v| v != "0");
        let (conns, rounds, bulk_rounds, bulk_mib) = if quick {
            (100, 9, 3, 256)
        } else {
            (300, 15, 5, 1024)
        };
        let rounds = env_num("ROUNDS").map_or(rounds, |n| n as usize);
        Self {
            conns: env_num("CONNS").map_or(conns, |n| n as usize),
            rounds,
            bulk_rounds: env_num("ROUNDS").map_or(bulk_rounds, |n| n as usize),
            bulk: env_num("BULK_MIB").unwrap_or(bulk_mib) << 20,
            filter: std::env::args().skip(1).find(|a| !a.starts_with('-')),
        }
    }

    fn wants(&self, case: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| case.contains(f))
    }
}

// ====================================================================== measurement

/// What one slice measured: an amount (connections or bytes) over a time.
type Slice = (f64, Duration);

struct Row {
    case: String,
    peer: &'static str,
    unit: &'static str,
    ours: f64,
    theirs: f64,
    ratio: f64,
    min: f64,
    max: f64,
    target: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `ours` and `peer` alternately for `rounds` rounds, swapping the order every round,
/// after one untimed warm-up slice each.
#[allow(clippy::too_many_arguments)]
fn paired(
    case: &str,
    peer_name: &'static str,
    unit: &'static str,
    scale: f64,
    target: f64,
    rounds: usize,
    mut ours: impl FnMut() -> io::Result<Slice>,
    mut peer: impl FnMut() -> io::Result<Slice>,
) -> io::Result<Row> {
    // SIDE=ours|peer: run one side only (warm-up and every round), to profile it alone.
    if let Ok(side) = std::env::var("SIDE") {
        let run: &mut dyn FnMut() -> io::Result<Slice> =
            if side == "peer" { &mut peer } else { &mut ours };
        let mut rates = Vec::new();
        for _ in 0..=rounds {
            let (amount, elapsed) = run()?;
            rates.push(amount / elapsed.as_secs_f64() / scale);
        }
        println!(
            "{case:<31} | {side} only: median {:.0} {unit}",
            median(rates)
        );
        return Ok(Row {
            case: case.into(),
            peer: peer_name,
            unit,
            ours: f64::NAN,
            theirs: f64::NAN,
            ratio: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            target: 0.0,
        });
    }
    ours()?;
    peer()?;
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = ours()?;
            (x, peer()?)
        } else {
            let y = peer()?;
            (ours()?, y)
        };
        let (rx, ry) = (x.0 / x.1.as_secs_f64(), y.0 / y.1.as_secs_f64());
        a.push(rx / scale);
        b.push(ry / scale);
        ratios.push(rx / ry);
        if std::env::var_os("VERBOSE").is_some() {
            println!(
                "  {case} round {round}: ours {:.1} peer {:.1} ratio {:.3}",
                rx / scale,
                ry / scale,
                rx / ry
            );
        }
    }
    let row = Row {
        case: case.into(),
        peer: peer_name,
        unit,
        ours: median(a),
        theirs: median(b),
        min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        max: ratios.iter().copied().fold(0.0, f64::max),
        ratio: median(ratios),
        target,
    };
    print_row(&row);
    Ok(row)
}

fn print_header() {
    println!(
        "{:<31} | {:<18} | {:>17} | {:>17} | {:>6} | {:>11} | target",
        "case", "peer", "ours", "peer", "ratio", "range"
    );
    println!("{}", "-".repeat(123));
}

fn print_row(r: &Row) {
    let verdict = if r.target == 0.0 {
        "(reference)".to_string()
    } else if r.ratio >= r.target {
        format!(">= {} ok", r.target)
    } else {
        format!(">= {} MISSED", r.target)
    };
    println!(
        "{:<31} | {:<18} | {:>8.0} {:<8} | {:>8.0} {:<8} | {:>6.3} | {:>5.2}-{:<5.2} | {verdict}",
        r.case, r.peer, r.ours, r.unit, r.theirs, r.unit, r.ratio, r.min, r.max
    );
}

// ====================================================================== blocking sides

/// A blocking TLS stream as the bench drives it, for tls-unix and rustls' `StreamOwned`.
trait Stream: Read + Write {
    /// close_notify after everything written, then half-close the socket.
    fn close(&mut self) -> io::Result<()>;
    /// Whether the handshake resumed a session.
    fn resumed(&self) -> bool;
}

impl Stream for blocking::TlsStream<TcpStream> {
    fn close(&mut self) -> io::Result<()> {
        self.shutdown()
    }
    fn resumed(&self) -> bool {
        self.handshake_info().is_some_and(|h| h.resumed)
    }
}

impl Stream for StreamOwned<ClientConnection, TcpStream> {
    fn close(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown(Shutdown::Write)
    }
    fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }
}

impl Stream for StreamOwned<ServerConnection, TcpStream> {
    fn close(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown(Shutdown::Write)
    }
    fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }
}

/// Writes `n` bytes in `CHUNK` writes.
fn write_n(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    let chunk = [0x5a; CHUNK];
    while n > 0 {
        let len = n.min(CHUNK as u64) as usize;
        w.write_all(&chunk[..len])?;
        n -= len as u64;
    }
    Ok(())
}

/// Reads until end of stream (the peer's close_notify) in `CHUNK` reads; the byte count.
fn read_all(r: &mut impl Read) -> io::Result<u64> {
    let mut buf = vec![0; CHUNK];
    let mut total = 0;
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// The server's side of one exchange: an 8-byte request `n`, `n` bytes back, close_notify
/// both ways.
fn serve(tls: &mut impl Stream) -> io::Result<()> {
    let mut request = [0; 8];
    tls.read_exact(&mut request)?;
    write_n(tls, u64::from_le_bytes(request))?;
    tls.close()?;
    read_all(tls)?;
    Ok(())
}

/// The client's side of one exchange; whether it resumed.
fn exchange(tls: &mut impl Stream, n: u64) -> io::Result<bool> {
    tls.write_all(&n.to_le_bytes())?;
    let got = read_all(tls)?;
    if got != n {
        return Err(io::Error::other(format!("got {got} bytes, wanted {n}")));
    }
    tls.close()?;
    Ok(tls.resumed())
}

/// One implementation's blocking client and server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    Ours,
    Rustls,
}

/// Starts a server thread accepting one connection at a time, forever.
fn blocking_server(which: Impl, config: Arc<ServerConfig>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        pin_server();
        for sock in listener.incoming() {
            let result = sock.and_then(|sock| {
                sock.set_nodelay(true)?;
                match which {
                    Impl::Ours => {
                        serve(&mut blocking::accept(config.clone(), sock, our_options())?)
                    }
                    Impl::Rustls => serve(&mut StreamOwned::new(
                        ServerConnection::new(config.clone()).map_err(io::Error::other)?,
                        sock,
                    )),
                }
            });
            if let Err(e) = result {
                eprintln!("server error: {e}");
            }
        }
    });
    Ok(addr)
}

/// One blocking client connection fetching `n` bytes; whether it resumed.
fn blocking_client(
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    n: u64,
) -> io::Result<bool> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    match which {
        Impl::Ours => exchange(
            &mut blocking::connect(config.clone(), server_name(), sock, our_options())?,
            n,
        ),
        Impl::Rustls => exchange(
            &mut StreamOwned::new(
                ClientConnection::new(config.clone(), server_name()).map_err(io::Error::other)?,
                sock,
            ),
            n,
        ),
    }
}

/// A slice of `count` sequential connections each fetching `n` bytes.
fn blocking_slice(
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    count: usize,
    n: u64,
    must_resume: bool,
) -> io::Result<Slice> {
    let start = Instant::now();
    let mut resumed = 0;
    for _ in 0..count {
        resumed += usize::from(blocking_client(which, config, addr, n)?);
    }
    let elapsed = start.elapsed();
    check_resumed(must_resume, resumed, count)?;
    Ok(((count as u64 * n.max(1)) as f64, elapsed))
}

fn check_resumed(must_resume: bool, resumed: usize, count: usize) -> io::Result<()> {
    if must_resume && resumed != count {
        return Err(io::Error::other(format!(
            "only {resumed} of {count} connections resumed"
        )));
    }
    if !must_resume && resumed != 0 {
        return Err(io::Error::other(format!(
            "{resumed} of {count} connections resumed with resumption off"
        )));
    }
    Ok(())
}

// ====================================================================== tokio sides

async fn serve_async<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S) -> io::Result<()> {
    let mut request = [0; 8];
    tls.read_exact(&mut request).await?;
    write_n_async(tls, u64::from_le_bytes(request)).await?;
    tls.shutdown().await?;
    read_all_async(tls).await?;
    Ok(())
}

async fn write_n_async<W: AsyncWrite + Unpin>(w: &mut W, mut n: u64) -> io::Result<()> {
    let chunk = [0x5a; CHUNK];
    while n > 0 {
        let len = n.min(CHUNK as u64) as usize;
        w.write_all(&chunk[..len]).await?;
        n -= len as u64;
    }
    Ok(())
}

async fn read_all_async<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<u64> {
    let mut buf = vec![0; CHUNK];
    let mut total = 0;
    loop {
        match r.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

async fn exchange_async<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S, n: u64) -> io::Result<()> {
    tls.write_all(&n.to_le_bytes()).await?;
    let got = read_all_async(tls).await?;
    if got != n {
        return Err(io::Error::other(format!("got {got} bytes, wanted {n}")));
    }
    tls.shutdown().await
}

/// Starts an accept loop on `rt` that serves every connection in a task of its own.
fn tokio_server(
    rt: &tokio::runtime::Runtime,
    which: Impl,
    config: Arc<ServerConfig>,
) -> io::Result<SocketAddr> {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    rt.spawn(async move {
        let ours = tls_unix::tokio::TlsAcceptor::new(config.clone()).with_options(our_options());
        let theirs = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let (ours, theirs) = (ours.clone(), theirs.clone());
            tokio::spawn(async move {
                let result = async {
                    sock.set_nodelay(true)?;
                    match which {
                        Impl::Ours => serve_async(&mut ours.accept(sock).await?).await,
                        Impl::Rustls => serve_async(&mut theirs.accept(sock).await?).await,
                    }
                }
                .await;
                if let Err(e) = result {
                    eprintln!("server error: {e}");
                }
            });
        }
    });
    Ok(addr)
}

async fn tokio_client(
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    n: u64,
) -> io::Result<bool> {
    let sock = tokio::net::TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    match which {
        Impl::Ours => {
            let connector =
                tls_unix::tokio::TlsConnector::new(config.clone()).with_options(our_options());
            let mut tls = connector.connect(server_name(), sock).await?;
            exchange_async(&mut tls, n).await?;
            Ok(tls.handshake_info().is_some_and(|h| h.resumed))
        }
        Impl::Rustls => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let mut tls = connector.connect(server_name(), sock).await?;
            exchange_async(&mut tls, n).await?;
            Ok(tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed))
        }
    }
}

fn tokio_slice(
    rt: &tokio::runtime::Runtime,
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    count: usize,
    n: u64,
    must_resume: bool,
) -> io::Result<Slice> {
    rt.block_on(async {
        let start = Instant::now();
        let mut resumed = 0;
        for _ in 0..count {
            resumed += usize::from(tokio_client(which, config, addr, n).await?);
        }
        let elapsed = start.elapsed();
        check_resumed(must_resume, resumed, count)?;
        Ok(((count as u64 * n.max(1)) as f64, elapsed))
    })
}

// ====================================================================== s_server

/// A temporary directory served by both HTTP-ish servers; removed on drop.
struct WebRoot(PathBuf);

impl WebRoot {
    fn new(pki: &Pki, bulk: u64) -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("tlsflow-sockets-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let root = Self(dir);
        std::fs::write(root.0.join("cert.pem"), &pki.server.cert_pem)?;
        std::fs::write(root.0.join("key.pem"), &pki.server.key_pem)?;
        std::fs::write(root.0.join("ca.pem"), &pki.ca_pem)?;
        std::fs::write(root.0.join("small"), [b'x'; SMALL as usize])?;
        let mut file = io::BufWriter::new(std::fs::File::create(root.0.join("bulk"))?);
        write_n(&mut file, bulk)?;
        file.flush()?;
        Ok(root)
    }
}

impl Drop for WebRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `openssl s_server` as a child process; killed (by its PID) on drop.
struct SServer {
    child: Child,
    addr: SocketAddr,
}

impl SServer {
    /// Starts s_server in `root` and waits for its `ACCEPT 127.0.0.1:<port>` line.
    fn start(root: &Path) -> io::Result<Self> {
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-tls1_3", "-WWW"])
            // Our server sends no tickets with resumption off; neither does this one.
            .args(["-num_tickets", "0"])
            .args([
                "-cert",
                "cert.pem",
                "-key",
                "key.pem",
                "-cert_chain",
                "ca.pem",
            ])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        // s_server writes a line or two per connection to stderr: keep the pipe drained.
        std::thread::spawn(move || io::copy(&mut { stderr }, &mut io::sink()));
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other("s_server exited before ACCEPT"));
            }
            if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
                break addr.parse().map_err(io::Error::other)?;
            }
        };
        std::thread::spawn(move || io::copy(&mut lines, &mut io::sink()));
        pin(child.id() as i32, cpus().map(|c| c.1));
        Ok(Self { child, addr })
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking server doing what `s_server -WWW` does: one connection at a time, reads a
/// `GET /<file>` request, sends `HTTP/1.0 200 ok` and the file, close_notify, close (without
/// waiting for the client's close_notify). The header goes out with the file's first bytes,
/// as s_server's buffered BIO does. `Impl::Rustls` is the same over `StreamOwned`, for
/// reference.
///
/// Returns the address and the server thread's `schedstat` file (its CPU time).
fn www_server(
    which: Impl,
    config: Arc<ServerConfig>,
    root: PathBuf,
) -> io::Result<(SocketAddr, PathBuf)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pin_server();
        let _ = tid_tx.send(nix::unistd::gettid());
        for sock in listener.incoming() {
            let result = sock.and_then(|sock| match which {
                Impl::Ours => www_serve(
                    &mut blocking::accept(config.clone(), sock, our_options())?,
                    &root,
                ),
                Impl::Rustls => www_serve(
                    &mut StreamOwned::new(
                        ServerConnection::new(config.clone()).map_err(io::Error::other)?,
                        sock,
                    ),
                    &root,
                ),
            });
            if let Err(e) = result {
                eprintln!("www server error: {e}");
            }
        }
    });
    let tid = tid_rx.recv().map_err(io::Error::other)?;
    Ok((addr, format!("/proc/self/task/{tid}/schedstat").into()))
}

/// CPU time so far, from a `schedstat` file (its first field, in nanoseconds).
fn cpu_time(schedstat: &Path) -> io::Result<Duration> {
    let text = std::fs::read_to_string(schedstat)?;
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other("unreadable schedstat"))?;
    Ok(Duration::from_nanos(ns))
}

/// `slice`, but timed by the CPU time the server spent (from its `schedstat`) instead of
/// the wall clock: the server's own cost, without the client's.
fn server_cpu(schedstat: &Path, slice: impl FnOnce() -> io::Result<Slice>) -> io::Result<Slice> {
    let before = cpu_time(schedstat)?;
    let (amount, _) = slice()?;
    Ok((amount, cpu_time(schedstat)? - before))
}

fn www_serve(tls: &mut impl Stream, root: &Path) -> io::Result<()> {
    let mut request = Vec::with_capacity(256);
    let mut buf = [0; 256];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => request.extend_from_slice(&buf[..n]),
        }
    }
    let path = request
        .strip_prefix(b"GET /")
        .and_then(|r| r.split(|&b| b == b' ').next())
        .ok_or_else(|| io::Error::other("bad request"))?;
    let path = std::str::from_utf8(path).map_err(io::Error::other)?;
    let mut file = std::fs::File::open(root.join(path))?;
    let mut out = vec![0; CHUNK];
    let header = b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n";
    out[..header.len()].copy_from_slice(header);
    let mut filled = header.len();
    loop {
        let n = file.read(&mut out[filled..])?;
        filled += n;
        if n == 0 || filled == CHUNK {
            tls.write_all(&out[..filled])?;
            if n == 0 {
                break;
            }
            filled = 0;
        }
    }
    tls.close()
}

/// Our blocking client fetching `/<file>` from an HTTP-ish server; the body's length.
fn www_fetch(config: &Arc<ClientConfig>, addr: SocketAddr, file: &str) -> io::Result<u64> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    let mut tls = blocking::connect(config.clone(), server_name(), sock, our_options())?;
    tls.write_all(format!("GET /{file} HTTP/1.0\r\n\r\n").as_bytes())?;
    // The header, then the body.
    let mut head = Vec::new();
    let mut buf = vec![0; CHUNK];
    let body_start = loop {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other("no HTTP header"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    if !head.starts_with(b"HTTP/1.0 200") {
        return Err(io::Error::other("not 200"));
    }
    let body = (head.len() - body_start) as u64 + read_all(&mut tls)?;
    // The server may be gone already: close_notify is a courtesy here.
    let _ = tls.shutdown();
    Ok(body)
}

fn www_slice(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    count: usize,
    file: &str,
    size: u64,
) -> io::Result<Slice> {
    let start = Instant::now();
    for _ in 0..count {
        let got = www_fetch(config, addr, file)?;
        if got != size {
            return Err(io::Error::other(format!(
                "{file}: {got} bytes, wanted {size}"
            )));
        }
    }
    Ok(((count as u64 * size.max(1)) as f64, start.elapsed()))
}

// ====================================================================== main

/// A client and server config pair for one side (each side its own ticketer and cache).
fn configs(pki: &Pki, resumption: bool) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let opts = CertOptions {
        versions: TLS13.to_vec(),
        resumption,
        ..CertOptions::default()
    };
    (
        Arc::new(pki.client_config(&opts)),
        Arc::new(pki.server_config(&opts)),
    )
}

/// Where criterion writes its results (see benches/core.rs).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CRITERION_HOME") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.join("criterion"))
}

fn save(rows: &[Row], settings: &Settings) {
    let entries: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "\"{}\":{{\"peer\":\"{}\",\"unit\":\"{}\",\"ours\":{:.1},\"peer_rate\":{:.1},\
                 \"ratio\":{:.4},\"min\":{:.4},\"max\":{:.4},\"target\":{}}}",
                r.case, r.peer, r.unit, r.ours, r.theirs, r.ratio, r.min, r.max, r.target
            )
        })
        .collect();
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let json = format!(
        "{{\"settings\":{{\"conns\":{},\"rounds\":{},\"bulk_rounds\":{},\"bulk_bytes\":{},\
         \"glibc_tunables\":\"{tunables}\"}},\"cases\":{{{}}}}}",
        settings.conns,
        settings.rounds,
        settings.bulk_rounds,
        settings.bulk,
        entries.join(",")
    );
    if let Some(dir) = criterion_dir() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("sockets.json"), json);
        }
    }
}

fn main() -> io::Result<()> {
    let s = Settings::from_env();
    let pinned = cpus();
    pin(0, pinned.map(|c| c.0));
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let mb = 1e6;
    println!(
        "sockets over 127.0.0.1: {} connections per slice, {} rounds; bulk {} MiB x {} rounds; \
         GLIBC_TUNABLES={:?}; client on CPU {}, servers on CPU {}",
        s.conns,
        s.rounds,
        s.bulk >> 20,
        s.bulk_rounds,
        std::env::var("GLIBC_TUNABLES").unwrap_or_default(),
        pinned.map_or("any".into(), |c| c.0.to_string()),
        pinned.map_or("any".into(), |c| c.1.to_string()),
    );
    println!("ratio = ours / peer (median of per-round ratios; range = min-max over rounds)");
    print_header();
    let mut rows = Vec::new();

    // Blocking: tls-unix against rustls' StreamOwned, both sides in this process.
    for (case, resumption) in [
        ("conn-new/blocking", false),
        ("conn-resumed/blocking", true),
    ] {
        if !s.wants(case) {
            continue;
        }
        let (oc, os) = configs(&pki, resumption);
        let (rc, rs) = configs(&pki, resumption);
        let (oa, ra) = (
            blocking_server(Impl::Ours, os)?,
            blocking_server(Impl::Rustls, rs)?,
        );
        if resumption {
            // A first full handshake fills each client's ticket cache.
            blocking_client(Impl::Ours, &oc, oa, SMALL)?;
            blocking_client(Impl::Rustls, &rc, ra, SMALL)?;
        }
        rows.push(paired(
            case,
            "rustls StreamOwned",
            "/s",
            1.0,
            1.0,
            s.rounds,
            || blocking_slice(Impl::Ours, &oc, oa, s.conns, SMALL, resumption).map(per_conn),
            || blocking_slice(Impl::Rustls, &rc, ra, s.conns, SMALL, resumption).map(per_conn),
        )?);
    }
    if s.wants("bulk/blocking") {
        let (oc, os) = configs(&pki, false);
        let (rc, rs) = configs(&pki, false);
        let (oa, ra) = (
            blocking_server(Impl::Ours, os)?,
            blocking_server(Impl::Rustls, rs)?,
        );
        rows.push(paired(
            "bulk/blocking",
            "rustls StreamOwned",
            "MB/s",
            mb,
            1.0,
            s.bulk_rounds,
            || blocking_slice(Impl::Ours, &oc, oa, 1, s.bulk, false),
            || blocking_slice(Impl::Rustls, &rc, ra, 1, s.bulk, false),
        )?);
    }

    // Tokio: tls-unix's tokio flavour against tokio-rustls on one runtime.
    let tokio_cases = ["conn-new/tokio", "conn-resumed/tokio", "bulk/tokio"];
    if tokio_cases.iter().any(|c| s.wants(c)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(pin_server)
            .enable_all()
            .build()?;
        for (case, resumption) in [("conn-new/tokio", false), ("conn-resumed/tokio", true)] {
            if !s.wants(case) {
                continue;
            }
            let (oc, os) = configs(&pki, resumption);
            let (rc, rs) = configs(&pki, resumption);
            let (oa, ra) = (
                tokio_server(&rt, Impl::Ours, os)?,
                tokio_server(&rt, Impl::Rustls, rs)?,
            );
            if resumption {
                rt.block_on(tokio_client(Impl::Ours, &oc, oa, SMALL))?;
                rt.block_on(tokio_client(Impl::Rustls, &rc, ra, SMALL))?;
            }
            rows.push(paired(
                case,
                "tokio-rustls",
                "/s",
                1.0,
                1.0,
                s.rounds,
                || tokio_slice(&rt, Impl::Ours, &oc, oa, s.conns, SMALL, resumption).map(per_conn),
                || {
                    tokio_slice(&rt, Impl::Rustls, &rc, ra, s.conns, SMALL, resumption)
                        .map(per_conn)
                },
            )?);
        }
        if s.wants("bulk/tokio") {
            let (oc, os) = configs(&pki, false);
            let (rc, rs) = configs(&pki, false);
            let (oa, ra) = (
                tokio_server(&rt, Impl::Ours, os)?,
                tokio_server(&rt, Impl::Rustls, rs)?,
            );
            rows.push(paired(
                "bulk/tokio",
                "tokio-rustls",
                "MB/s",
                mb,
                1.0,
                s.bulk_rounds,
                || tokio_slice(&rt, Impl::Ours, &oc, oa, 1, s.bulk, false),
                || tokio_slice(&rt, Impl::Rustls, &rc, ra, 1, s.bulk, false),
            )?);
        }
        rt.shutdown_background();
    }

    // Servers: our blocking server against openssl s_server, fetched by the same client.
    let sserver_cases = [
        "conn-new/vs-s_server",
        "conn-new/rustls-vs-s_server",
        "conn-new/vs-s_server-cpu",
        "conn-new/rustls-vs-s_server-cpu",
        "bulk/vs-s_server",
        "bulk/rustls-vs-s_server",
        "bulk/vs-s_server-cpu",
        "bulk/rustls-vs-s_server-cpu",
    ];
    if sserver_cases.iter().any(|c| s.wants(c)) {
        let bulk = if sserver_cases
            .iter()
            .any(|c| c.starts_with("bulk") && s.wants(c))
        {
            s.bulk
        } else {
            0
        };
        let root = WebRoot::new(&pki, bulk)?;
        match SServer::start(&root.0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                for case in sserver_cases.iter().filter(|c| s.wants(c)) {
                    println!("{case:<31} | skipped: openssl not installed");
                }
            }
            Err(e) => return Err(e),
            Ok(sserver) => {
                let (client, server) = configs(&pki, false);
                let (ours, ours_cpu) = www_server(Impl::Ours, server.clone(), root.0.clone())?;
                let (raw, raw_cpu) = www_server(Impl::Rustls, server, root.0.clone())?;
                let theirs = sserver.addr;
                let theirs_cpu = PathBuf::from(format!("/proc/{}/schedstat", sserver.child.id()));
                // Ours against s_server, then raw rustls' StreamOwned server against s_server
                // for reference (what the binding could reach at parity with rustls).
                for (addr, case, target) in [
                    (ours, "conn-new/vs-s_server", 2.0),
                    (raw, "conn-new/rustls-vs-s_server", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "/s",
                            1.0,
                            target,
                            s.rounds,
                            || www_slice(&client, addr, s.conns, "small", SMALL).map(per_conn),
                            || www_slice(&client, theirs, s.conns, "small", SMALL).map(per_conn),
                        )?);
                    }
                }
                // The same, per second of the server's own CPU time.
                for (addr, cpu, case, target) in [
                    (ours, &ours_cpu, "conn-new/vs-s_server-cpu", 2.0),
                    (raw, &raw_cpu, "conn-new/rustls-vs-s_server-cpu", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "/cpu-s",
                            1.0,
                            target,
                            s.rounds,
                            || {
                                server_cpu(cpu, || {
                                    www_slice(&client, addr, s.conns, "small", SMALL).map(per_conn)
                                })
                            },
                            || {
                                server_cpu(&theirs_cpu, || {
                                    www_slice(&client, theirs, s.conns, "small", SMALL)
                                        .map(per_conn)
                                })
                            },
                        )?);
                    }
                }
                for (addr, case, target) in [
                    (ours, "bulk/vs-s_server", 1.4),
                    (raw, "bulk/rustls-vs-s_server", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "MB/s",
                            mb,
                            target,
                            s.bulk_rounds,
                            || www_slice(&client, addr, 1, "bulk", bulk),
                            || www_slice(&client, theirs, 1, "bulk", bulk),
                        )?);
                    }
                }
                for (addr, cpu, case, target) in [
                    (ours, &ours_cpu, "bulk/vs-s_server-cpu", 1.4),
                    (raw, &raw_cpu, "bulk/rustls-vs-s_server-cpu", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "MB/cpu-s",
                            mb,
                            target,
                            s.bulk_rounds,
                            || server_cpu(cpu, || www_slice(&client, addr, 1, "bulk", bulk)),
                            || {
                                server_cpu(&theirs_cpu, || {
                                    www_slice(&client, theirs, 1, "bulk", bulk)
                                })
                            },
                        )?);
                    }
                }
                drop(sserver);
            }
        }
    }

    save(&rows, &s);
    let missed = rows.iter().filter(|r| r.ratio < r.target).count();
    if rows.iter().any(|r| r.target == 0.0) {
        println!("(reference: raw rustls' own server against s_server, no target)");
    }
    println!(
        "{}",
        if missed == 0 {
            "every case meets its target".to_string()
        } else {
            format!("{missed} case(s) below target")
        }
    );
    Ok(())
}

/// A connection slice's amount was bytes (`SMALL` per connection): count connections.
fn per_conn((amount, elapsed): Slice) -> Slice {
    (amount / SMALL as f64, elapsed)
}
