//! One connection's state machine: handshake, request head, body, response, close.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use tls_core::HandshakeInfo;
use tls_unikernel::TlsSocket;

use super::RECORD;
use crate::config::Config;
use crate::http::{self, Method, Request, Route, Status};
use crate::log::{self, Cause, CloseReason, ConnectionLog, TlsEnd};

/// Where a connection is.
enum Phase {
    /// The TLS handshake is running.
    Handshake,
    /// Reading a request head (HTTP) or data to echo (`echo`).
    Request,
    /// Reading a request body of which `left` bytes are still to come.
    Body {
        digest: Box<ring::digest::Context>,
        len: u64,
        left: u64,
        keep_alive: bool,
    },
    /// Sending the response: `out`, then bytes `at..body` of the `/bytes/N` pattern;
    /// afterwards the next request, or close_notify (with `end` as the cause).
    Respond {
        at: u64,
        body: u64,
        keep_alive: bool,
        end: Option<Cause>,
    },
    /// close_notify sent; reading (and discarding) until the peer's. `truncated`: the
    /// peer's stream had already ended without its close_notify.
    Closing {
        peer_first: bool,
        cause: Option<Cause>,
        truncated: bool,
    },
    /// The TLS part is over; waiting for the TCP close. Holds the log line.
    Lingering(String),
    /// Reset; over once the interface has sent the RST. Holds the log line.
    Aborted(String),
    /// Over: log the line and remove the socket.
    Done(String),
}

/// Why a step stops serving the connection.
enum End {
    /// Close with close_notify, caused by the peer (`None`) or by this.
    Close(Option<Cause>),
    /// The peer's stream ended without close_notify: close with ours, logged as truncation.
    Truncated,
    /// Fail (alert where one fits, or reset), with this cause.
    Fail(Cause),
}

impl From<tls_unikernel::Error> for End {
    fn from(e: tls_unikernel::Error) -> Self {
        match e {
            tls_unikernel::Error::Finished => End::Close(None),
            tls_unikernel::Error::Truncated => End::Truncated,
            e => End::Fail(cause_of(e)),
        }
    }
}

/// The cause of a socket error (not `Finished` or `Truncated`: those are TLS ends).
fn cause_of(e: tls_unikernel::Error) -> Cause {
    match e {
        tls_unikernel::Error::Reset => Cause::Reset,
        tls_unikernel::Error::HandshakeTimeout => Cause::TimedOut,
        tls_unikernel::Error::Tls(e) => Cause::Tls(e),
        _ => Cause::InvalidState,
    }
}

type Step = Result<bool, End>;

mod respond;

/// One accepted connection and its HTTP (or echo) state.
pub(super) struct Connection {
    pub(super) tls: TlsSocket,
    peer: String,
    start: Instant,
    phase: Phase,
    info: Option<HandshakeInfo>,
    client_cert: bool,
    read: u64,
    written: u64,
    /// Requests answered; `None` in echo mode (no `requests=` in the log line).
    requests: Option<u64>,
    /// Received plaintext not yet used: a request head and what followed it.
    input: Vec<u8>,
    /// The record being sent: `out[out_at..]` is still to go.
    out: Vec<u8>,
    out_at: usize,
    /// The last progress (or the start of the phase), for the timeouts.
    since: Instant,
    /// When the first byte of the request head being read arrived.
    head_started: Option<Instant>,
    deadline: Instant,
}

impl Connection {
    pub(super) fn new(
        tls: TlsSocket,
        sockets: &SocketSet<'_>,
        now: Instant,
        config: &Config,
    ) -> Self {
        let peer = sockets
            .get::<tcp::Socket>(tls.handle())
            .remote_endpoint()
            .map_or_else(|| "?".to_string(), |e| e.to_string());
        let mut conn = Self {
            tls,
            peer,
            start: now,
            phase: Phase::Handshake,
            info: None,
            client_cert: false,
            read: 0,
            written: 0,
            requests: (!config.echo).then_some(0),
            input: Vec::new(),
            out: Vec::new(),
            out_at: 0,
            since: now,
            head_started: None,
            deadline: now,
        };
        conn.deadline = conn.compute_deadline(config);
        conn
    }

    /// One more request answered (HTTP mode).
    fn count_request(&mut self) {
        if let Some(n) = &mut self.requests {
            *n += 1;
        }
    }

    /// When the connection's current timeout fires.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    fn compute_deadline(&self, config: &Config) -> Instant {
        match &self.phase {
            // The socket's own handshake timeout normally fires first.
            Phase::Handshake => self.since + config.handshake_timeout + config.io_timeout,
            Phase::Request => match self.head_started {
                Some(t) if !config.echo => t + config.header_timeout,
                _ => self.since + config.idle_timeout,
            },
            Phase::Body { .. } | Phase::Respond { .. } => self.since + config.io_timeout,
            Phase::Closing { .. } | Phase::Lingering(_) => self.since + config.close_timeout,
            Phase::Aborted(_) | Phase::Done(_) => self.since,
        }
    }

    /// The line of a finished connection, once it is over.
    pub(super) fn done_line(&self) -> Option<&str> {
        match &self.phase {
            Phase::Done(line) => Some(line),
            _ => None,
        }
    }

    fn line(&self, now: Instant, close: &CloseReason) -> String {
        ConnectionLog {
            peer: &self.peer,
            info: self.info.as_ref(),
            read: self.read,
            written: self.written,
            requests: self.requests,
            millis: (now - self.start).total_millis(),
            close,
        }
        .to_string()
    }

    /// From `Lingering` or `Aborted` to `Done`.
    pub(super) fn mark_done(&mut self) {
        let line = match core::mem::replace(&mut self.phase, Phase::Handshake) {
            Phase::Lingering(line) | Phase::Aborted(line) | Phase::Done(line) => line,
            other => {
                self.phase = other;
                return;
            }
        };
        self.phase = Phase::Done(line);
    }

    fn abort(&mut self, sockets: &mut SocketSet<'_>, line: String) {
        self.tls.abort(sockets);
        self.phase = Phase::Aborted(line);
    }

    /// Resets an open connection because the server stops.
    pub(super) fn stop(&mut self, now: Instant, sockets: &mut SocketSet<'_>) {
        let line = match &self.phase {
            Phase::Done(_) | Phase::Aborted(_) => return,
            Phase::Lingering(line) => line.clone(),
            _ => self.line(now, &CloseReason::failed(Cause::Stopped)),
        };
        self.abort(sockets, line);
    }

    /// Runs the state machine as far as the socket allows now; returns whether anything
    /// moved. Never waits.
    pub(super) fn step(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        scratch: &mut [u8],
        config: &Config,
    ) -> bool {
        let moved = self.run(now, sockets, scratch, config);
        let moved = moved || self.check_deadline(now, sockets, config);
        self.deadline = self.compute_deadline(config);
        moved
    }

    fn run(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        scratch: &mut [u8],
        config: &Config,
    ) -> bool {
        let mut moved = false;
        loop {
            let result = match self.phase {
                Phase::Handshake => self.handshake(now),
                Phase::Request if config.echo => self.echo(sockets, scratch),
                Phase::Request => self.request(now, sockets, scratch, config),
                Phase::Body { .. } => self.body(sockets, scratch, config),
                Phase::Respond { .. } => self.respond(sockets),
                Phase::Closing { .. } => self.closing(now, sockets, scratch),
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
                    if !matches!(self.phase, Phase::Closing { .. } | Phase::Lingering(_)) {
                        self.since = now;
                    }
                }
                Ok(false) => return moved,
                Err(End::Close(cause)) => {
                    self.begin_close(now, sockets, cause, false);
                    moved = true;
                }
                Err(End::Truncated) => {
                    self.begin_close(now, sockets, None, true);
                    moved = true;
                }
                Err(End::Fail(cause)) => {
                    let line = self.line(now, &CloseReason::failed(cause));
                    if self.tls.error().is_some() {
                        // A TLS failure: the socket sends its alert (after anything queued
                        // ahead of it), then FIN, and resets only if the peer does not take
                        // them within its error linger. Let that finish.
                        self.phase = Phase::Lingering(line);
                        self.since = now;
                    } else {
                        self.abort(sockets, line);
                    }
                    return true;
                }
            }
        }
    }

    fn check_deadline(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        config: &Config,
    ) -> bool {
        if now < self.compute_deadline(config) {
            return false;
        }
        match &self.phase {
            Phase::Request if self.head_started.is_some() && !config.echo => {
                self.head_started = None;
                self.reject(Status::RequestTimeout, Cause::RequestTimeout);
                self.since = now;
            }
            Phase::Request => self.begin_close(now, sockets, Some(Cause::IdleTimeout), false),
            Phase::Closing {
                cause, truncated, ..
            } => {
                let tls = if *truncated {
                    TlsEnd::Truncated
                } else {
                    TlsEnd::Sent
                };
                let line = self.line(now, &CloseReason::new(cause.clone(), tls));
                self.abort(sockets, line);
            }
            Phase::Lingering(line) => {
                let line = line.clone();
                self.abort(sockets, line);
            }
            Phase::Aborted(_) | Phase::Done(_) => return false,
            _ => {
                let line = self.line(now, &CloseReason::failed(Cause::TimedOut));
                self.abort(sockets, line);
            }
        }
        true
    }

    fn handshake(&mut self, now: Instant) -> Step {
        if let Some(e) = self.tls.error() {
            // The socket has sent its alert and closed TCP: let that finish.
            let line = match self.tls.handshake_info() {
                // The handshake completed, and a record after it (read in the same poll,
                // e.g. the first request right behind the client's Finished) failed: an
                // established connection's line, not a failed handshake's.
                Some(info) => {
                    self.info = Some(info.clone());
                    self.line(now, &CloseReason::failed(cause_of(e.clone())))
                }
                None => log::handshake_failed(&self.peer, e, (now - self.start).total_millis()),
            };
            self.phase = Phase::Lingering(line);
            self.since = now;
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

    fn recv(
        &mut self,
        sockets: &mut SocketSet<'_>,
        buf: &mut [u8],
    ) -> Result<usize, tls_unikernel::Error> {
        let n = self.tls.recv_slice(sockets, buf)?;
        self.read += n as u64;
        Ok(n)
    }

    fn echo(&mut self, sockets: &mut SocketSet<'_>, scratch: &mut [u8]) -> Step {
        let mut moved = false;
        while self.out_at < self.out.len() {
            let n = self.tls.send_slice(sockets, &self.out[self.out_at..])?;
            if n == 0 {
                return Ok(moved);
            }
            self.out_at += n;
            self.written += n as u64;
            moved = true;
        }
        self.out.clear();
        self.out_at = 0;
        let n = self.recv(sockets, &mut scratch[..RECORD])?;
        self.out.extend_from_slice(&scratch[..n]);
        Ok(moved || n > 0)
    }

    /// Reads until a whole request head is in `input`, then starts on the request.
    fn request(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        scratch: &mut [u8],
        config: &Config,
    ) -> Step {
        if !self.input.is_empty() {
            if self.head_started.is_none() {
                self.head_started = Some(now);
            }
            match http::parse_request(&self.input, config.max_head) {
                Ok(Some((request, len))) => {
                    self.input.drain(..len);
                    self.head_started = None;
                    self.start_request(&request, config);
                    return Ok(true);
                }
                Ok(None) => {}
                Err(e) => {
                    let reason = match e {
                        http::RequestError::Malformed => Cause::BadRequest,
                        http::RequestError::TooLarge => Cause::HeadTooLarge,
                        http::RequestError::TransferCoding => Cause::NotImplemented,
                    };
                    self.reject(e.status(), reason);
                    return Ok(true);
                }
            }
        }
        let want = (config.max_head + 1 - self.input.len().min(config.max_head)).min(RECORD);
        match self.recv(sockets, &mut scratch[..want]) {
            Ok(n) => {
                self.input.extend_from_slice(&scratch[..n]);
                Ok(n > 0)
            }
            // The client's close_notify between requests is the clean end; inside a
            // head it cuts the request off.
            Err(tls_unikernel::Error::Finished) if !self.input.is_empty() => Err(End::Truncated),
            Err(e) => Err(e.into()),
        }
    }

    fn start_request(&mut self, request: &Request, config: &Config) {
        match request.method {
            Method::Upload if request.content_length > config.max_body => {
                self.count_request();
                self.reject(Status::ContentTooLarge, Cause::BodyTooLarge);
            }
            Method::Upload => {
                if request.expect_continue {
                    self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                self.phase = Phase::Body {
                    digest: Box::new(ring::digest::Context::new(&ring::digest::SHA256)),
                    len: request.content_length,
                    left: request.content_length,
                    keep_alive: request.keep_alive,
                };
            }
            Method::Get | Method::Other => {
                self.count_request();
                self.start_response(request.route, request.keep_alive, config);
            }
        }
    }

    fn body(&mut self, sockets: &mut SocketSet<'_>, scratch: &mut [u8], config: &Config) -> Step {
        let mut moved = false;
        if self.out_at < self.out.len() {
            moved |= self.send_record(sockets)?;
        }
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
            let want = (*left).min(RECORD as u64) as usize;
            let n = match self.recv(sockets, &mut scratch[..want]) {
                Ok(n) => n,
                // The stream ended inside the body.
                Err(tls_unikernel::Error::Finished) => return Err(End::Truncated),
                Err(e) => return Err(e.into()),
            };
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
        let digest = http::digest_bytes((**digest).clone());
        let (len, keep_alive) = (*len, *keep_alive);
        self.count_request();
        self.start_response(Route::Digest(digest, len), keep_alive, config);
        Ok(true)
    }

    /// Sends close_notify (after everything queued) and reads until the peer's.
    fn begin_close(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        cause: Option<Cause>,
        truncated: bool,
    ) {
        let peer_first = self.tls.session().is_some_and(|s| s.peer_has_closed());
        self.tls.close(sockets);
        self.phase = Phase::Closing {
            peer_first,
            cause,
            truncated,
        };
        self.since = now;
    }

    fn closing(&mut self, now: Instant, sockets: &mut SocketSet<'_>, scratch: &mut [u8]) -> Step {
        let Phase::Closing {
            peer_first,
            cause,
            truncated,
        } = &mut self.phase
        else {
            unreachable!("in the closing phase")
        };
        let (peer_first, mut cause, truncated) = (*peer_first, cause.take(), *truncated);
        let tls = match self.tls.recv_slice(sockets, scratch) {
            Ok(n) => {
                self.phase = Phase::Closing {
                    peer_first,
                    cause,
                    truncated,
                };
                return Ok(n > 0);
            }
            _ if truncated => TlsEnd::Truncated,
            Err(tls_unikernel::Error::Finished) if peer_first => TlsEnd::PeerFirst,
            Err(tls_unikernel::Error::Finished) => TlsEnd::Both,
            Err(tls_unikernel::Error::Truncated) => TlsEnd::Truncated,
            // Our close_notify was queued, but the error (a reset, say) ended the
            // connection: it is what the line names.
            Err(e) => {
                cause = Some(cause_of(e));
                TlsEnd::Failed
            }
        };
        let line = self.line(now, &CloseReason::new(cause, tls));
        self.phase = Phase::Lingering(line);
        self.since = now;
        Ok(true)
    }
}
