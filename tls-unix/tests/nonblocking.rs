//! The non-blocking (mio) flavour over TCP on 127.0.0.1 and over Unix-domain sockets:
//! what is its own (readiness, timeouts through `deadline`, many connections on one
//! thread). Everything runs on the test's one thread, driven by readiness. Handshake,
//! ALPN, half-close and truncation, the same on every flavour, are scenarios of
//! `tests/conformance` (run on all five backends).

#![cfg(feature = "mio")]

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use common::*;
use mio::event::Source;
use mio::{Events, Interest, Poll, Token};
use tls_unix::nonblocking::TlsStream;
use tls_unix::{HalfClose, Options, Timeout};

/// A mio socket the tests can use.
trait Sock: Read + Write + Source + HalfClose + std::fmt::Debug {}
impl<T: Read + Write + Source + HalfClose + std::fmt::Debug> Sock for T {}

/// A std socket made non-blocking and handed to mio.
trait IntoMio {
    type Mio: Sock;
    fn into_mio(self) -> Self::Mio;
}

impl IntoMio for std::net::TcpStream {
    type Mio = mio::net::TcpStream;
    fn into_mio(self) -> Self::Mio {
        self.set_nonblocking(true).unwrap();
        mio::net::TcpStream::from_std(self)
    }
}

impl IntoMio for std::os::unix::net::UnixStream {
    type Mio = mio::net::UnixStream;
    fn into_mio(self) -> Self::Mio {
        self.set_nonblocking(true).unwrap();
        mio::net::UnixStream::from_std(self)
    }
}

type MioOf<L> = <<L as Listen>::Stream as IntoMio>::Mio;

/// One mio `Poll` with an overall deadline: waiting past it fails the test.
struct Loop {
    poll: Poll,
    events: Events,
    deadline: Instant,
}

impl Loop {
    fn new() -> Self {
        Self {
            poll: Poll::new().unwrap(),
            events: Events::with_capacity(256),
            deadline: Instant::now() + Duration::from_secs(90),
        }
    }

    fn register<S: Sock>(&self, tls: &mut TlsStream<S>, token: usize) {
        let interest = tls.interest();
        self.poll
            .registry()
            .register(tls, Token(token), interest)
            .unwrap();
    }

    fn reregister<S: Sock>(&self, tls: &mut TlsStream<S>, token: usize) {
        let interest = tls.interest();
        self.poll
            .registry()
            .reregister(tls, Token(token), interest)
            .unwrap();
    }

    /// Re-registers `tls` (token `token`) and waits for readiness or its deadline; once
    /// the deadline has passed with nothing ready, the error `check_deadline` gives.
    fn wait_or_expire<S: Sock>(
        &mut self,
        tls: &mut TlsStream<S>,
        token: usize,
    ) -> Option<io::Error> {
        self.reregister(tls, token);
        if self.wait(tls.deadline()).is_empty() {
            tls.check_deadline(Instant::now()).err()
        } else {
            None
        }
    }

    /// Waits for readiness, or until `until` (never past the test's deadline). Returns the
    /// tokens that are ready (empty when `until` passed).
    fn wait(&mut self, until: Option<Instant>) -> Vec<usize> {
        let now = Instant::now();
        assert!(
            now < self.deadline,
            "the event loop made no progress in time"
        );
        let limit = until.map_or(self.deadline, |u| u.min(self.deadline));
        self.poll
            .poll(&mut self.events, Some(limit.saturating_duration_since(now)))
            .unwrap();
        self.events.iter().map(|e| e.token().0).collect()
    }
}

/// One side of a scripted exchange: sends a pattern (then shuts down) and reads to the
/// end with a digest, doing everything it can on each call until the socket would block.
struct Peer<S: Sock> {
    tls: TlsStream<S>,
    out: Pattern,
    chunk: Vec<u8>,
    at: usize,
    len: usize,
    digest: Option<Digest>,
    got: Option<(u64, Vec<u8>)>,
    /// Start sending only after the peer's close_notify (half-close ordering).
    wait_for_eof: bool,
    shut: bool,
}

impl<S: Sock> Peer<S> {
    fn new(tls: TlsStream<S>, seed: u64, len: u64, wait_for_eof: bool) -> Self {
        Self {
            tls,
            out: Pattern::new(seed, len),
            chunk: vec![0u8; 40_000],
            at: 0,
            len: 0,
            digest: Some(Digest::new()),
            got: None,
            wait_for_eof,
            shut: false,
        }
    }

    fn done(&self) -> bool {
        self.shut && self.got.is_some()
    }

    fn step(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let mut progress = false;
            match self.tls.handshake() {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
            if self.got.is_none() {
                match self.tls.read(&mut buf) {
                    Ok(0) => {
                        self.got = self.digest.take().map(Digest::finish);
                        progress = true;
                    }
                    Ok(n) => {
                        self.digest.as_mut().unwrap().update(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if !self.shut && (!self.wait_for_eof || self.got.is_some()) {
                if self.at == self.len {
                    self.len = self.out.fill(&mut self.chunk);
                    self.at = 0;
                }
                let result = if self.len > self.at {
                    self.tls
                        .write(&self.chunk[self.at..self.len])
                        .map(|n| self.at += n)
                } else {
                    self.tls.shutdown().map(|()| self.shut = true)
                };
                match result {
                    Ok(()) => progress = true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }
}

/// Drives peers (token = index) until all are done.
fn run<S: Sock>(lp: &mut Loop, peers: &mut [Peer<S>]) {
    for (i, p) in peers.iter_mut().enumerate() {
        lp.register(&mut p.tls, i);
    }
    let mut ready: Vec<usize> = (0..peers.len()).collect();
    while !peers.iter().all(Peer::done) {
        for &i in &ready {
            peers[i].step().unwrap();
            lp.reregister(&mut peers[i].tls, i);
        }
        let until = peers.iter().filter_map(|p| p.tls.deadline()).min();
        ready = lp.wait(until);
        for p in peers.iter() {
            p.tls.check_deadline(Instant::now()).unwrap();
        }
    }
}

/// Runs both handshakes on `lp` (tokens 0 and 1).
fn handshake_both<S: Sock>(lp: &mut Loop, a: &mut TlsStream<S>, b: &mut TlsStream<S>) {
    lp.register(a, 0);
    lp.register(b, 1);
    loop {
        let mut pending = false;
        for (tls, token) in [(&mut *a, 0), (&mut *b, 1)] {
            match tls.handshake() {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => pending = true,
                Err(e) => panic!("handshake: {e}"),
            }
            lp.reregister(tls, token);
        }
        if !pending && !a.wants_write() && !b.wants_write() {
            return;
        }
        lp.wait(None);
    }
}

fn connected<L: Listen>(
    client_alpn: &[&[u8]],
    server_alpn: &[&[u8]],
) -> (TlsStream<MioOf<L>>, TlsStream<MioOf<L>>)
where
    L::Stream: IntoMio,
{
    connected_with::<L>(client_alpn, server_alpn, options())
}

/// A client (with `client_options`) and a server (with `options()`), not yet handshaken.
fn connected_with<L: Listen>(
    client_alpn: &[&[u8]],
    server_alpn: &[&[u8]],
    client_options: Options,
) -> (TlsStream<MioOf<L>>, TlsStream<MioOf<L>>)
where
    L::Stream: IntoMio,
{
    let listener = L::bind();
    let client = listener.connect().into_mio();
    let server = listener.accept().into_mio();
    let client = TlsStream::client(
        client_config(client_alpn),
        localhost(),
        client,
        client_options,
    )
    .unwrap();
    let server = TlsStream::server(server_config(server_alpn), server, options()).unwrap();
    (client, server)
}

/// A client with `client_options` and a server (with `options()`), both handshaken on the
/// returned loop (tokens 0 and 1).
fn handshaken<L: Listen>(
    client_options: Options,
) -> (Loop, TlsStream<MioOf<L>>, TlsStream<MioOf<L>>)
where
    L::Stream: IntoMio,
{
    let (mut client, mut server) = connected_with::<L>(&[], &[], client_options);
    let mut lp = Loop::new();
    handshake_both(&mut lp, &mut client, &mut server);
    (lp, client, server)
}

/// Once both handshakes are done and nothing is left to send, a stream waits only to
/// read.
fn readable_after_handshake<L: Listen>()
where
    L::Stream: IntoMio,
{
    let (mut client, mut server) = connected::<L>(&[], &[]);
    let mut lp = Loop::new();
    handshake_both(&mut lp, &mut client, &mut server);
    assert_eq!(client.interest(), Interest::READABLE);
    assert_hybrid_and_same_export(
        client.handshake_info().unwrap().key_exchange,
        |out| client.export_keying_material(out, EXPORT_LABEL, Some(b"ctx")),
        |out| server.export_keying_material(out, EXPORT_LABEL, Some(b"ctx")),
    );
}

/// 8 MiB each way at the same time, each side then shutting down; SHA-256 both ways.
/// Readiness, not shared behaviour: both directions move in one event loop (the
/// conformance scripts, one operation at a time per side, cannot interleave them).
fn bulk<L: Listen>()
where
    L::Stream: IntoMio,
{
    let (client, server) = connected::<L>(&[], &[]);
    let mut lp = Loop::new();
    let mut peers = [
        Peer::new(client, 1, BULK, false),
        Peer::new(server, 2, BULK, false),
    ];
    run(&mut lp, &mut peers);
    assert_eq!(peers[0].got, Some(expected(2, BULK)));
    assert_eq!(peers[1].got, Some(expected(1, BULK)));
}

/// After a fatal error (the server's socket closed without close_notify: a truncation),
/// no close_notify is sent, but `shutdown` still half-closes the socket and succeeds.
/// (Truncation itself is a conformance scenario; this is the flavour's own.)
fn shutdown_after_fatal_error<L: Listen>()
where
    L::Stream: IntoMio,
{
    let (mut lp, mut client, mut server) = handshaken::<L>(options());
    lp.poll.registry().deregister(&mut server).unwrap();
    drop(server);
    let e = loop {
        match client.read(&mut [0u8; 64]) {
            Ok(n) => panic!("read {n} bytes (0: a clean end) from a peer that sent none"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                lp.reregister(&mut client, 0);
                lp.wait(None);
            }
            Err(e) => break e,
        }
    };
    assert_truncated(&e);
    client.shutdown().unwrap();
}

/// A peer that accepts and never speaks: `Timeout::Handshake` once `deadline()` passes,
/// for a client and for a server.
fn handshake_timeout<L: Listen>()
where
    L::Stream: IntoMio,
{
    let limit = Duration::from_millis(300);
    let quick = Options {
        handshake_timeout: Some(limit),
        ..Options::default()
    };
    let listener = L::bind();
    let mut lp = Loop::new();
    for client_side in [true, false] {
        let connected = listener.connect();
        let accepted = listener.accept();
        let (ours, _silent) = if client_side {
            (connected, accepted)
        } else {
            (accepted, connected)
        };
        let start = Instant::now();
        let mut tls = if client_side {
            TlsStream::client(client_config(&[]), localhost(), ours.into_mio(), quick).unwrap()
        } else {
            TlsStream::server(server_config(&[]), ours.into_mio(), quick).unwrap()
        };
        lp.register(&mut tls, 7);
        let e = loop {
            match tls.handshake() {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => break e,
                Ok(()) => panic!("handshake with a silent peer"),
            }
            let deadline = tls.deadline().expect("a handshake deadline");
            assert!(deadline <= start + limit + Duration::from_millis(50));
            if let Some(e) = lp.wait_or_expire(&mut tls, 7) {
                break e;
            }
        };
        assert_timeout(&e, Timeout::Handshake(limit));
        assert!(start.elapsed() >= limit);
        lp.poll.registry().deregister(&mut tls).unwrap();
    }
}

/// A read that waits past the read timeout: `Timeout::Read`.
fn read_timeout<L: Listen>()
where
    L::Stream: IntoMio,
{
    let limit = Duration::from_millis(200);
    let opts = Options {
        read_timeout: Some(limit),
        ..options()
    };
    let (mut lp, mut client, _server) = handshaken::<L>(opts);
    let start = Instant::now();
    let e = loop {
        match client.read(&mut [0u8; 16]) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => break e,
            Ok(n) => panic!("read {n} bytes from a silent peer"),
        }
        if let Some(e) = lp.wait_or_expire(&mut client, 0) {
            break e;
        }
    };
    assert_timeout(&e, Timeout::Read(limit));
    assert!(start.elapsed() >= limit);
}

/// The peer stops reading: once the socket takes nothing for the write timeout,
/// `Timeout::Write`.
fn write_timeout<L: Listen>()
where
    L::Stream: IntoMio,
{
    let limit = Duration::from_millis(200);
    let opts = Options {
        write_timeout: Some(limit),
        ..options()
    };
    let (mut lp, mut client, _server) = handshaken::<L>(opts);
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    let e = loop {
        match client.write(&chunk) {
            Ok(n) => {
                add_unread(&mut written, n);
                continue;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => break e,
        }
        if let Some(e) = lp.wait_or_expire(&mut client, 0) {
            break e;
        }
    };
    assert_timeout(&e, Timeout::Write(limit));
}

for_transports! {
    readable_after_handshake => super::readable_after_handshake::<L>();
    bulk_8mib_each_way_concurrently => super::bulk::<L>();
    shutdown_after_fatal_error => super::shutdown_after_fatal_error::<L>();
    handshake_timeout => super::handshake_timeout::<L>();
    read_timeout => super::read_timeout::<L>();
    write_timeout => super::write_timeout::<L>();
}

/// Many connections on one thread: a mio listener accepts `CONNS` clients made on the same
/// `Poll`, and every pair moves 256 KiB each way at once.
fn many_connections<Lst, S>(
    mut listener: Lst,
    connect: impl Fn() -> S,
    accept: impl Fn(&mut Lst) -> io::Result<S>,
) where
    Lst: Source,
    S: Sock,
{
    const CONNS: usize = 24;
    const LEN: u64 = 256 * 1024;
    const LISTENER: usize = usize::MAX;
    let mut lp = Loop::new();
    lp.poll
        .registry()
        .register(&mut listener, Token(LISTENER), Interest::READABLE)
        .unwrap();
    let mut peers = Vec::new();
    for i in 0..CONNS {
        let tls = TlsStream::client(client_config(&[]), localhost(), connect(), options()).unwrap();
        peers.push(Peer::new(tls, 100 + i as u64, LEN, false));
        lp.register(&mut peers[i].tls, i);
    }
    let mut accepted = 0;
    let mut ready: Vec<usize> = (0..CONNS).collect();
    while accepted < CONNS || !peers.iter().all(Peer::done) {
        for &token in &ready {
            if token == LISTENER {
                loop {
                    match accept(&mut listener) {
                        Ok(sock) => {
                            let tls =
                                TlsStream::server(server_config(&[]), sock, options()).unwrap();
                            let i = peers.len();
                            peers.push(Peer::new(tls, 1000 + accepted as u64, LEN, false));
                            accepted += 1;
                            lp.register(&mut peers[i].tls, i);
                            peers[i].step().unwrap();
                            lp.reregister(&mut peers[i].tls, i);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            } else {
                peers[token].step().unwrap();
                lp.reregister(&mut peers[token].tls, token);
            }
        }
        ready = lp.wait(None);
    }
    let mut from_servers: Vec<_> = peers[..CONNS]
        .iter()
        .map(|p| p.got.clone().unwrap())
        .collect();
    let mut from_clients: Vec<_> = peers[CONNS..]
        .iter()
        .map(|p| p.got.clone().unwrap())
        .collect();
    let mut want_servers: Vec<_> = (0..CONNS as u64).map(|j| expected(1000 + j, LEN)).collect();
    let mut want_clients: Vec<_> = (0..CONNS as u64).map(|i| expected(100 + i, LEN)).collect();
    for v in [
        &mut from_servers,
        &mut from_clients,
        &mut want_servers,
        &mut want_clients,
    ] {
        v.sort();
    }
    assert_eq!(from_servers, want_servers);
    assert_eq!(from_clients, want_clients);
}

#[test]
fn many_connections_one_thread_tcp() {
    bounded(TEST_LIMIT, || {
        let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        many_connections(
            listener,
            || mio::net::TcpStream::connect(addr).unwrap(),
            |l| l.accept().map(|(s, _)| s),
        );
    });
}

#[test]
fn many_connections_one_thread_unix() {
    bounded(TEST_LIMIT, || {
        let dir = TempDir::new();
        let path = dir.socket("many");
        let listener = mio::net::UnixListener::bind(&path).unwrap();
        many_connections(
            listener,
            || mio::net::UnixStream::connect(&path).unwrap(),
            |l| l.accept().map(|(s, _)| s),
        );
        drop(dir);
    });
}
