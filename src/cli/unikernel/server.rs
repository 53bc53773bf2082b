//! `tlsflow serve --backend unikernel`: every connection served from one poll loop.
//!
//! A unikernel has one thread, so the server is an event loop: each round runs
//! `Interface::poll`, accepts what the [`TlsListener`] has (up to `--max-concurrent` open
//! connections), and steps every connection's state machine ([`Connection::step`]) as far
//! as its socket allows without waiting: read what has arrived, write what the TCP send
//! ring has room for. A connection that has nothing to do costs nothing, so a slow or
//! stalled client holds only its own slot. When no connection moved, the loop sleeps on
//! the TAP descriptor until a frame arrives or the earliest timer (the stack's, a
//! handshake deadline, a connection's idle deadline).
//!
//! # Memory
//!
//! Every connection, and every listening socket of the backlog, owns two TCP rings of
//! [`RING`] bytes (allocated when the socket starts listening). An open connection adds
//! its TLS state (a few KiB) and buffers that are all bounded: the engine's (inbound
//! ciphertext at most two records, unread plaintext at most 64 KiB, staging at most the
//! send ring; see tls-unikernel's "Memory per connection"), the request head being read
//! (at most [`MAX_HEAD`]) and response or echo bytes not yet in the ring (at most
//! [`CHUNK`]). The `/bytes/N` body is generated as the ring has room, never held whole.

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use smoltcp::iface::{PollResult, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Duration as SDuration;
use tls_core::HandshakeInfo;
use tls_unikernel::{ListenerOptions, Options, PollAt, TlsListener, TlsSocket};

use super::super::serve::{index_page, log_line, TRUNCATED};
use super::super::tls::ServerTlsArgs;
use super::{Net, TapArgs, HANDSHAKE_TIMEOUT, IO_TIMEOUT, MAX_SLEEP, RING};
use crate::cli::Error;
use tlsflow::http;

/// Largest request head accepted (as for the Unix backend).
const MAX_HEAD: usize = 16 * 1024;
/// Plaintext moved per call: one TLS record.
const CHUNK: usize = 16 * 1024;
/// How long a connection whose TLS part is over may take to finish its TCP close (the
/// socket's own linger, 10 s, normally ends it first).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

/// How many connections the unikernel server holds (`serve --backend unikernel`).
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct ServeLimits {
    /// With --backend unikernel: most connections served at once. Each holds two 64 KiB
    /// TCP rings and its TLS state and buffers (bounded: about 130 KiB idle, at most
    /// about 350 KiB while moving data); more wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrent: u16,
    /// With --backend unikernel: TCP sockets listening at once (smoltcp has no accept
    /// queue: each takes one connection and holds it, handshake answered, until a slot
    /// is free; each owns its two 64 KiB rings). Connection attempts beyond it are
    /// refused.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    backlog: u16,
}

/// `tlsflow serve --backend unikernel`.
pub(crate) fn serve(
    tap: &TapArgs,
    port: u16,
    tls: &ServerTlsArgs,
    echo: bool,
    max_connections: Option<u64>,
    limits: ServeLimits,
) -> Result<(), Error> {
    let (config, what) = super::super::tls::server_config(tls)?;
    let config = Arc::new(config);
    let mut net = Net::open(tap)?;
    let port = if port == 0 { net.next_port } else { port };
    let options = ListenerOptions {
        socket: Options {
            handshake_timeout: Some(SDuration::from_secs(HANDSHAKE_TIMEOUT.as_secs())),
            ..Options::default()
        },
        rx_ring: RING,
        tx_ring: RING,
        backlog: limits.backlog.into(),
    };
    let listener = TlsListener::new(&mut net.sockets, port, config, options)
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    let stop = net.stop.clone();
    ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    let tap_name = tap.tap.as_deref().unwrap_or("?");
    println!(
        "tlsflow: listening on {}:{port} ({}, {what}, unikernel stack on {tap_name}, \
         up to {} connections at once)",
        net.addr,
        if echo { "echo" } else { "https" },
        limits.max_concurrent
    );
    if !echo {
        let cacert = match tls.ca_out() {
            Some(path) => format!("--cacert {} ", path.display()),
            None => String::new(),
        };
        println!("tlsflow: try: curl {cacert}https://{}:{port}/", net.addr);
    }
    io::stdout().flush()?;
    let mut server = Server {
        listener: Some(listener),
        conns: Vec::new(),
        echo,
        accepted: 0,
        max_connections,
        max_concurrent: limits.max_concurrent.into(),
        scratch: vec![0; CHUNK],
    };
    let result = server.run(&mut net);
    server.shutdown(&mut net);
    println!("tlsflow: stopped");
    result
}

/// The loop's state: the listener (until `--max-connections` have been accepted) and
/// the open connections.
struct Server {
    listener: Option<TlsListener>,
    conns: Vec<Connection>,
    echo: bool,
    accepted: u64,
    max_connections: Option<u64>,
    max_concurrent: usize,
    /// One buffer for every connection's reads and generated body (one thread).
    scratch: Vec<u8>,
}

impl Server {
    /// Serves until Ctrl-C, or until `--max-connections` have been served.
    fn run(&mut self, net: &mut Net) -> Result<(), Error> {
        loop {
            let now = net.now();
            let clock = Instant::now();
            let mut busy = net.iface.poll(now, &mut net.device, &mut net.sockets)
                == PollResult::SocketStateChanged;
            if net.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            busy |= self.accept(net, clock);
            let mut wake = PollAt::Ingress;
            let mut deadline: Option<Instant> = None;
            for conn in &mut self.conns {
                let at = conn.tls.poll(now, &mut net.sockets);
                busy |= at == PollAt::Now;
                busy |= conn.step(&mut net.sockets, &mut self.scratch, self.echo, clock);
                wake = wake.min(at);
                deadline = Some(deadline.map_or(conn.deadline, |d| d.min(conn.deadline)));
            }
            self.retire(net);
            if self.listener.is_none() && self.conns.is_empty() {
                return Ok(());
            }
            if busy {
                continue;
            }
            let mut sleep = MAX_SLEEP;
            if let Some(d) = net.iface.poll_delay(now, &net.sockets) {
                sleep = sleep.min(Duration::from_micros(d.total_micros()));
            }
            if let PollAt::Time(t) = wake {
                sleep = sleep.min(Duration::from_micros((t - now).total_micros()));
            }
            if let Some(d) = deadline {
                sleep = sleep.min(d.saturating_duration_since(Instant::now()));
            }
            if !sleep.is_zero() {
                let wait = SDuration::from_micros(sleep.as_micros() as u64);
                if let Err(e) = smoltcp::phy::wait(net.fd, Some(wait)) {
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e.into());
                    }
                }
            }
        }
    }

    /// Takes the connections that have arrived, while there are free slots; stops
    /// listening once `--max-connections` have been taken.
    fn accept(&mut self, net: &mut Net, clock: Instant) -> bool {
        let Some(listener) = self.listener.as_mut() else {
            return false;
        };
        let mut any = false;
        while self.conns.len() < self.max_concurrent
            && self.max_connections.is_none_or(|max| self.accepted < max)
        {
            let Some(tls) = listener.accept(&mut net.sockets) else {
                break;
            };
            self.accepted += 1;
            self.conns.push(Connection::new(tls, &net.sockets, clock));
            any = true;
        }
        if self.max_connections.is_some_and(|max| self.accepted >= max) {
            if let Some(listener) = self.listener.take() {
                listener.close(&mut net.sockets);
            }
        }
        any
    }

    /// Logs and removes the connections that are over.
    fn retire(&mut self, net: &mut Net) {
        let mut out = io::stdout().lock();
        self.conns.retain_mut(|conn| {
            let Phase::Done(line) = &conn.phase else {
                return true;
            };
            let _ = writeln!(out, "{line}");
            net.sockets.remove(conn.tls.handle());
            false
        });
        let _ = out.flush();
    }

    /// After Ctrl-C: resets what is still open, logs it (a connection whose TLS part
    /// was over keeps its line), and lets the RSTs out before the sockets go.
    fn shutdown(&mut self, net: &mut Net) {
        for conn in &mut self.conns {
            let line = match &conn.phase {
                Phase::Done(_) | Phase::Aborted(_) => continue,
                Phase::Lingering(line) => line.clone(),
                _ => conn.line("error: stopped"),
            };
            conn.abort(&mut net.sockets, line);
        }
        let now = net.now();
        let _ = net.iface.poll(now, &mut net.device, &mut net.sockets);
        for conn in &mut self.conns {
            conn.mark_done();
        }
        self.retire(net);
        if let Some(listener) = self.listener.take() {
            listener.close(&mut net.sockets);
        }
    }
}

/// Where a connection is.
enum Phase {
    /// The TLS handshake is running.
    Handshake,
    /// Reading a request head (HTTP) or data to echo back (`--echo`).
    Request,
    /// Reading a request body of which `left` bytes are still to come.
    Body {
        digest: Box<ring::digest::Context>,
        len: u64,
        left: u64,
        keep_alive: bool,
    },
    /// Sending the response: `out`, then `body` bytes of the `/bytes/N` pattern from
    /// offset `at`.
    Respond {
        at: u64,
        body: u64,
        keep_alive: bool,
    },
    /// close_notify sent; reading (and discarding) until the peer's. `reason` overrides
    /// how the close is named.
    Closing {
        peer_first: bool,
        reason: Option<&'static str>,
    },
    /// The TLS part is over; waiting for the TCP close. Holds the log line.
    Lingering(String),
    /// Reset; removed once the interface has sent the RST. Holds the log line.
    Aborted(String),
    /// Over: log the line and remove the socket.
    Done(String),
}

/// One accepted connection and its HTTP (or echo) state.
struct Connection {
    tls: TlsSocket,
    peer: String,
    start: Instant,
    phase: Phase,
    info: Option<HandshakeInfo>,
    client_cert: bool,
    /// Plaintext read and written, for the log line.
    read: u64,
    written: u64,
    /// Received plaintext not yet used: a request head (and what followed it).
    input: Vec<u8>,
    /// Bytes to send before anything else: a response head and small body, a
    /// `100 Continue`, or data to echo. `out[out_at..]` is still to go.
    out: Vec<u8>,
    out_at: usize,
    /// When the connection is dropped if nothing moves (pushed back by progress).
    deadline: Instant,
}

/// What a step of a connection's state machine came to.
type Step = Result<bool, End>;

/// Why a connection stops being served.
enum End {
    /// The peer's close_notify arrived where a request may end: close cleanly.
    Clean,
    /// The stream ended where it may not (`TRUNCATED`); close our side.
    Truncated,
    /// Reset the connection with this message (`error: ...`).
    Fail(String),
}

impl From<tls_unikernel::Error> for End {
    fn from(e: tls_unikernel::Error) -> Self {
        match e {
            tls_unikernel::Error::Finished => End::Clean,
            tls_unikernel::Error::Truncated => End::Truncated,
            e => End::Fail(e.to_string()),
        }
    }
}

impl Connection {
    fn new(tls: TlsSocket, sockets: &SocketSet<'_>, clock: Instant) -> Connection {
        let peer = sockets
            .get::<tcp::Socket>(tls.handle())
            .remote_endpoint()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "?".into());
        Connection {
            tls,
            peer,
            start: clock,
            phase: Phase::Handshake,
            info: None,
            client_cert: false,
            read: 0,
            written: 0,
            input: Vec::new(),
            out: Vec::new(),
            out_at: 0,
            deadline: clock + HANDSHAKE_TIMEOUT + IO_TIMEOUT,
        }
    }

    /// The connection's log line, ending with `close`.
    fn line(&self, close: &str) -> String {
        log_line(
            &self.peer,
            self.info.as_ref(),
            self.read,
            self.written,
            self.start.elapsed().as_millis(),
            close,
        )
    }

    /// From `Lingering` or `Aborted` to `Done` (the log line is kept).
    fn mark_done(&mut self) {
        let line = match std::mem::replace(&mut self.phase, Phase::Handshake) {
            Phase::Lingering(line) | Phase::Aborted(line) | Phase::Done(line) => line,
            _ => unreachable!("only a connection that has ended is done"),
        };
        self.phase = Phase::Done(line);
    }

    fn abort(&mut self, sockets: &mut SocketSet<'_>, line: String) {
        self.tls.abort(sockets);
        self.phase = Phase::Aborted(line);
    }

    /// Runs the state machine as far as the socket allows now; returns whether anything
    /// moved. Never waits.
    fn step(
        &mut self,
        sockets: &mut SocketSet<'_>,
        scratch: &mut [u8],
        echo: bool,
        clock: Instant,
    ) -> bool {
        let mut moved = false;
        loop {
            let result = match self.phase {
                Phase::Handshake => self.handshake(),
                Phase::Request if echo => self.echo(sockets, scratch),
                Phase::Request => self.request(sockets, scratch),
                Phase::Body { .. } => self.body(sockets, scratch),
                Phase::Respond { .. } => self.respond(sockets, scratch),
                Phase::Closing { .. } => self.closing(sockets, scratch),
                Phase::Lingering(_) if self.tls.is_closed(sockets) => {
                    self.mark_done();
                    return true;
                }
                Phase::Lingering(_) => Ok(false),
                // The interface has run since the abort: the RST is out.
                Phase::Aborted(_) => {
                    self.mark_done();
                    return true;
                }
                Phase::Done(_) => return moved,
            };
            match result {
                Ok(true) => {
                    moved = true;
                    if !matches!(self.phase, Phase::Lingering(_)) {
                        self.deadline = clock + IO_TIMEOUT;
                    }
                }
                Ok(false) => break,
                Err(End::Clean) => {
                    self.begin_close(sockets, None, clock);
                    moved = true;
                }
                Err(End::Truncated) => {
                    self.begin_close(sockets, Some(TRUNCATED), clock);
                    moved = true;
                }
                Err(End::Fail(e)) => {
                    let line = self.line(&format!("error: {e}"));
                    self.abort(sockets, line);
                    return true;
                }
            }
        }
        if clock >= self.deadline {
            let line = match &self.phase {
                Phase::Lingering(line) => line.clone(),
                _ => self.line("error: timed out"),
            };
            self.abort(sockets, line);
            return true;
        }
        moved
    }

    fn handshake(&mut self) -> Step {
        if let Some(e) = self.tls.error() {
            // The socket has sent its alert and closed TCP: let that finish.
            let line = format!(
                "{} handshake failed: {e} ({} ms)",
                self.peer,
                self.start.elapsed().as_millis()
            );
            self.phase = Phase::Lingering(line);
            return Ok(true);
        }
        if !self.tls.is_established() {
            return Ok(false);
        }
        self.info = self.tls.handshake_info().cloned();
        self.client_cert = self.tls.peer_certificates().is_some();
        self.phase = Phase::Request;
        Ok(true)
    }

    /// Reads plaintext into `buf`, counting it.
    fn recv(&mut self, sockets: &mut SocketSet<'_>, buf: &mut [u8]) -> Result<usize, End> {
        let n = self.tls.recv_slice(sockets, buf)?;
        self.read += n as u64;
        Ok(n)
    }

    /// Sends what waits in `out`; true when all of it has gone.
    fn flush_out(&mut self, sockets: &mut SocketSet<'_>, moved: &mut bool) -> Result<bool, End> {
        while self.out_at < self.out.len() {
            let n = self.tls.send_slice(sockets, &self.out[self.out_at..])?;
            if n == 0 {
                return Ok(false);
            }
            self.out_at += n;
            self.written += n as u64;
            *moved = true;
        }
        self.out.clear();
        self.out_at = 0;
        Ok(true)
    }

    fn echo(&mut self, sockets: &mut SocketSet<'_>, scratch: &mut [u8]) -> Step {
        let mut moved = false;
        if !self.flush_out(sockets, &mut moved)? {
            return Ok(moved);
        }
        let n = self.recv(sockets, &mut scratch[..CHUNK])?;
        self.out.extend_from_slice(&scratch[..n]);
        Ok(moved || n > 0)
    }

    /// Reads until a whole request head is in `input`, then starts on the request.
    fn request(&mut self, sockets: &mut SocketSet<'_>, scratch: &mut [u8]) -> Step {
        if let Some(end) = head_end(&self.input) {
            let request = match http::read_request(&mut &self.input[..end]) {
                Ok(Some(r)) => r,
                Ok(None) => return Err(End::Fail("empty request".into())),
                Err(e) => return Err(End::Fail(e.to_string())),
            };
            self.input.drain(..end);
            self.start_request(&request);
            return Ok(true);
        }
        if self.input.len() > MAX_HEAD {
            return Err(End::Fail("HTTP head too large".into()));
        }
        let want = (MAX_HEAD + 1 - self.input.len()).min(CHUNK);
        match self.recv(sockets, &mut scratch[..want]) {
            Ok(n) => {
                self.input.extend_from_slice(&scratch[..n]);
                Ok(n > 0)
            }
            // The client's close_notify between requests is the clean end; inside a
            // head it is a cut-off request.
            Err(End::Clean) if !self.input.is_empty() => Err(End::Truncated),
            Err(e) => Err(e),
        }
    }

    fn start_request(&mut self, request: &http::Request) {
        match (request.method.as_str(), request.content_length) {
            ("GET", _) => self.start_response(&http::route(&request.path), request.keep_alive),
            ("POST" | "PUT", Some(len)) => {
                if request.expect_continue {
                    self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                self.phase = Phase::Body {
                    digest: Box::new(ring::digest::Context::new(&ring::digest::SHA256)),
                    len,
                    left: len,
                    keep_alive: request.keep_alive,
                };
            }
            _ => self.start_response(&http::Route::NotFound, request.keep_alive),
        }
    }

    /// Queues the response head (and a small body) in `out`; a `/bytes/N` body is made
    /// as it is sent.
    fn start_response(&mut self, route: &http::Route, keep_alive: bool) {
        let body = match route {
            http::Route::Bytes(n) => {
                // `write_response` writes the head, then the body; `HeadOnly` keeps the
                // head and refuses the body.
                let mut head = HeadOnly(Vec::new());
                let _ = http::write_response(&mut head, route, "", keep_alive);
                self.out.extend_from_slice(&head.0);
                *n
            }
            _ => {
                let page = index_page("unikernel", self.info.as_ref(), self.client_cert);
                http::write_response(&mut self.out, route, &page, keep_alive)
                    .expect("writing to a Vec cannot fail");
                0
            }
        };
        self.phase = Phase::Respond {
            at: 0,
            body,
            keep_alive,
        };
    }

    fn body(&mut self, sockets: &mut SocketSet<'_>, scratch: &mut [u8]) -> Step {
        let mut moved = false;
        self.flush_out(sockets, &mut moved)?;
        let Phase::Body { digest, left, .. } = &mut self.phase else {
            unreachable!("in the body phase")
        };
        // First what came with the head, then from the socket.
        let from_input = (*left).min(self.input.len() as u64) as usize;
        if from_input > 0 {
            digest.update(&self.input[..from_input]);
            self.input.drain(..from_input);
            *left -= from_input as u64;
            moved = true;
        }
        if *left > 0 {
            let want = (*left).min(CHUNK as u64) as usize;
            let n = match self.tls.recv_slice(sockets, &mut scratch[..want]) {
                Ok(n) => n,
                // The stream ended inside the body.
                Err(tls_unikernel::Error::Finished) => return Err(End::Truncated),
                Err(e) => return Err(e.into()),
            };
            self.read += n as u64;
            let Phase::Body { digest, left, .. } = &mut self.phase else {
                unreachable!("in the body phase")
            };
            digest.update(&scratch[..n]);
            *left -= n as u64;
            moved |= n > 0;
        }
        let Phase::Body {
            digest,
            len,
            left: 0,
            keep_alive,
        } = &self.phase
        else {
            return Ok(moved);
        };
        let digest: [u8; 32] = digest
            .clone()
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        let route = http::Route::Digest(digest, *len);
        let keep_alive = *keep_alive;
        self.start_response(&route, keep_alive);
        Ok(true)
    }

    fn respond(&mut self, sockets: &mut SocketSet<'_>, scratch: &mut [u8]) -> Step {
        let mut moved = false;
        if !self.flush_out(sockets, &mut moved)? {
            return Ok(moved);
        }
        let Phase::Respond {
            at,
            body,
            keep_alive,
        } = &mut self.phase
        else {
            unreachable!("in the respond phase")
        };
        while *at < *body && self.tls.can_send(sockets) {
            let k = (*body - *at).min(CHUNK as u64) as usize;
            http::fill_pattern(*at, &mut scratch[..k]);
            let n = self.tls.send_slice(sockets, &scratch[..k])?;
            if n == 0 {
                break;
            }
            *at += n as u64;
            self.written += n as u64;
            moved = true;
        }
        if *at < *body {
            // No room; or a fatal error, which `can_send` hides.
            if let Some(e) = self.tls.error() {
                return Err(e.clone().into());
            }
            return Ok(moved);
        }
        if *keep_alive {
            self.phase = Phase::Request;
            Ok(true)
        } else {
            Err(End::Clean)
        }
    }

    /// Sends close_notify (after everything queued) and starts reading until the
    /// peer's; `reason` names the end instead of the close_notify exchange.
    fn begin_close(
        &mut self,
        sockets: &mut SocketSet<'_>,
        reason: Option<&'static str>,
        clock: Instant,
    ) {
        let peer_first = self.tls.session().is_some_and(|s| s.peer_has_closed());
        self.tls.close(sockets);
        self.phase = Phase::Closing { peer_first, reason };
        self.deadline = clock + IO_TIMEOUT;
    }

    fn closing(&mut self, sockets: &mut SocketSet<'_>, scratch: &mut [u8]) -> Step {
        let Phase::Closing { peer_first, reason } = self.phase else {
            unreachable!("in the closing phase")
        };
        let close = match self.tls.recv_slice(sockets, scratch) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(tls_unikernel::Error::Finished) if peer_first => "close_notify (peer first)",
            Err(tls_unikernel::Error::Finished) => "close_notify (both)",
            Err(tls_unikernel::Error::Truncated) => TRUNCATED,
            Err(e) => {
                let close = reason.map_or_else(|| format!("error: {e}"), str::to_string);
                let line = self.line(&close);
                self.enter_lingering(line);
                return Ok(true);
            }
        };
        let line = self.line(reason.unwrap_or(close));
        self.enter_lingering(line);
        Ok(true)
    }

    fn enter_lingering(&mut self, line: String) {
        self.phase = Phase::Lingering(line);
        self.deadline = Instant::now() + CLOSE_TIMEOUT;
    }
}

/// The length of the request head at the start of `buf` (through its blank line), if
/// it is all there. Lines end with `\n` (or `\r\n`), as `http::read_request` reads them.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[line_start..=i];
            if line == b"\r\n" || line == b"\n" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// A writer that keeps a response head and refuses what follows it (the body), so
/// [`http::write_response`] makes the head of a response whose body is generated as it
/// is sent.
struct HeadOnly(Vec<u8>);

impl Write for HeadOnly {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.ends_with(b"\r\n\r\n") {
            return Err(io::Error::other("the body is sent as the ring has room"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
