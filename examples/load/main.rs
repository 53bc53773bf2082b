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

#[macro_use]
mod server;
#[macro_use]
mod client;
mod cli;
mod compare;
mod mio_server;
mod sizes;

use cli::*;
use client::*;
use compare::*;
use mio_server::*;
use server::*;
use sizes::*;

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
