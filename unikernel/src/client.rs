//! A small HTTPS client: one `GET` over one [`TlsSocket`], the response parsed with
//! `httparse`, content-length, chunked and until-close bodies, the body's SHA-256.
//!
//! [`Fetch`] is a state machine: after every `Interface::poll` (and `TlsSocket::poll`),
//! [`Fetch::step`] moves it as far as the socket allows and says what happened
//! ([`FetchEvent`]); [`run_fetch`](crate::run_fetch) is that loop on a
//! [`Platform`](crate::Platform).

use alloc::vec::Vec;
use core::fmt;

use smoltcp::iface::SocketSet;
use smoltcp::time::{Duration, Instant};
use tls_core::HandshakeInfo;
use tls_unikernel::TlsSocket;

use crate::http::{self, BodyLength, ChunkedDecoder, Response, ResponseError};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Plaintext read per call: one record.
const CHUNK: usize = 16 * 1024;

/// What went wrong in a fetch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FetchError {
    /// The TLS socket failed (handshake, alert, reset, truncation before the body's end).
    Socket(tls_unikernel::Error),
    /// The response head could not be used.
    Response(ResponseError),
    /// The stream ended before the body did.
    BodyTruncated {
        /// Body bytes received.
        got: u64,
        /// The body's length, when the server gave one.
        want: Option<u64>,
    },
    /// Bytes followed the response body.
    TrailingData,
    /// Nothing moved for the I/O timeout (or the handshake took too long).
    TimedOut,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(e) => write!(f, "{e}"),
            Self::Response(e) => write!(f, "{e}"),
            Self::BodyTruncated { got, want: Some(n) } => {
                write!(f, "body truncated at {got} of {n} bytes")
            }
            Self::BodyTruncated { got, want: None } => write!(f, "body truncated at {got} bytes"),
            Self::TrailingData => f.write_str("data after the response body"),
            Self::TimedOut => f.write_str("timed out"),
        }
    }
}

impl core::error::Error for FetchError {}

impl From<tls_unikernel::Error> for FetchError {
    fn from(e: tls_unikernel::Error) -> Self {
        Self::Socket(e)
    }
}

/// A completed fetch.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// What the handshake negotiated.
    pub info: HandshakeInfo,
    /// The HTTP status.
    pub status: u16,
    /// Body length.
    pub len: u64,
    /// Body SHA-256.
    pub digest: [u8; 32],
    /// How the server ended the connection, if not with close_notify (only when the body
    /// was delimited, so it is complete anyway).
    pub unclean_close: Option<tls_unikernel::Error>,
}

/// What a [`Fetch::step`] came to.
#[derive(Debug)]
pub enum FetchEvent {
    /// Nothing new: poll and step again when the socket may have moved.
    Pending,
    /// The handshake completed (read [`Fetch::tls`] for the peer's certificates).
    Established,
    /// The response head arrived with this status.
    Status(u16),
    /// The body is complete, both close_notify sent and the TCP close done (or the
    /// server's unclean end noted): remove the socket.
    Done(Fetched),
}

enum Phase {
    Handshake,
    Request,
    Head,
    Body,
    Closing,
    Lingering,
    Finished,
}

/// One `GET` on one TLS socket (connected by the caller).
pub struct Fetch {
    tls: TlsSocket,
    phase: Phase,
    request: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    response: Option<Response>,
    chunked: ChunkedDecoder,
    digest: ring::digest::Context,
    got: u64,
    unclean: Option<tls_unikernel::Error>,
    timeout: Duration,
    since: Option<Instant>,
}

impl fmt::Debug for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetch")
            .field("got", &self.got)
            .finish_non_exhaustive()
    }
}

impl Fetch {
    /// A fetch of `path` from `host` on `tls` (already connecting). `timeout` bounds
    /// every wait for progress.
    pub fn new(tls: TlsSocket, host: &str, path: &str, timeout: Duration) -> Self {
        let mut request = Vec::new();
        http::write_get(&mut request, host, path);
        Self {
            tls,
            phase: Phase::Handshake,
            request,
            sent: 0,
            input: Vec::new(),
            response: None,
            chunked: ChunkedDecoder::default(),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            got: 0,
            unclean: None,
            timeout,
            since: None,
        }
    }

    /// The socket (for `poll`, the peer's certificates, `abort`, its handle).
    pub fn tls(&mut self) -> &mut TlsSocket {
        &mut self.tls
    }

    /// When the fetch times out unless something moves.
    pub fn deadline(&self) -> Option<Instant> {
        self.since.map(|t| t + self.timeout)
    }

    /// Moves the fetch as far as the socket allows; body bytes go to `sink` as they
    /// arrive.
    pub fn step(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<FetchEvent, FetchError> {
        let since = *self.since.get_or_insert(now);
        let before = (self.sent, self.got, self.input.len());
        let event = self.advance(sockets, sink)?;
        if !matches!(event, FetchEvent::Pending)
            || before != (self.sent, self.got, self.input.len())
        {
            self.since = Some(now);
        } else if now >= since + self.timeout {
            return Err(FetchError::TimedOut);
        }
        Ok(event)
    }

    fn advance(
        &mut self,
        sockets: &mut SocketSet<'_>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<FetchEvent, FetchError> {
        loop {
            match self.phase {
                Phase::Handshake => {
                    if let Some(e) = self.tls.error() {
                        return Err(e.clone().into());
                    }
                    if !self.tls.is_established() {
                        return Ok(FetchEvent::Pending);
                    }
                    self.phase = Phase::Request;
                    return Ok(FetchEvent::Established);
                }
                Phase::Request => {
                    let n = self.tls.send_slice(sockets, &self.request[self.sent..])?;
                    self.sent += n;
                    if self.sent < self.request.len() {
                        return Ok(FetchEvent::Pending);
                    }
                    self.phase = Phase::Head;
                }
                Phase::Head => {
                    if let Some((response, len)) =
                        http::parse_response(&self.input, MAX_HEAD).map_err(FetchError::Response)?
                    {
                        self.input.drain(..len);
                        self.response = Some(response);
                        self.phase = Phase::Body;
                        return Ok(FetchEvent::Status(response.status));
                    }
                    if !self.read(sockets)? {
                        return Ok(FetchEvent::Pending);
                    }
                }
                Phase::Body => {
                    let body = self.response.map_or(BodyLength::UntilClose, |r| r.body);
                    self.consume_input(body, sink)?;
                    if self.body_complete(body) {
                        if !self.input.is_empty() {
                            return Err(FetchError::TrailingData);
                        }
                        self.tls.close(sockets);
                        self.phase = Phase::Closing;
                        continue;
                    }
                    match self.read(sockets) {
                        Ok(true) => {}
                        Ok(false) => return Ok(FetchEvent::Pending),
                        Err(FetchError::Socket(tls_unikernel::Error::Finished))
                            if body == BodyLength::UntilClose =>
                        {
                            self.tls.close(sockets);
                            self.phase = Phase::Lingering;
                        }
                        Err(FetchError::Socket(
                            tls_unikernel::Error::Finished | tls_unikernel::Error::Truncated,
                        )) => {
                            return Err(FetchError::BodyTruncated {
                                got: self.got,
                                want: match body {
                                    BodyLength::Length(n) => Some(n),
                                    _ => None,
                                },
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                Phase::Closing => {
                    let mut probe = [0u8; 1];
                    match self.tls.recv_slice(sockets, &mut probe) {
                        Ok(0) => return Ok(FetchEvent::Pending),
                        Ok(_) => return Err(FetchError::TrailingData),
                        Err(tls_unikernel::Error::Finished) => {}
                        // The body was complete: an unclean end is only noted.
                        Err(e) => self.unclean = Some(e),
                    }
                    self.phase = Phase::Lingering;
                }
                Phase::Lingering => {
                    // Let the TCP close finish (bounded by the socket's linger), so the
                    // peer sees our FIN.
                    if !self.tls.is_closed(sockets) {
                        return Ok(FetchEvent::Pending);
                    }
                    self.phase = Phase::Finished;
                    let info = self
                        .tls
                        .handshake_info()
                        .cloned()
                        .ok_or(FetchError::Socket(tls_unikernel::Error::InvalidState))?;
                    let digest = core::mem::replace(
                        &mut self.digest,
                        ring::digest::Context::new(&ring::digest::SHA256),
                    );
                    return Ok(FetchEvent::Done(Fetched {
                        info,
                        status: self.response.map_or(0, |r| r.status),
                        len: self.got,
                        digest: http::digest_bytes(digest),
                        unclean_close: self.unclean.take(),
                    }));
                }
                Phase::Finished => {
                    return Err(FetchError::Socket(tls_unikernel::Error::InvalidState))
                }
            }
        }
    }

    /// Reads one chunk of plaintext into `input`; false when none was there.
    fn read(&mut self, sockets: &mut SocketSet<'_>) -> Result<bool, FetchError> {
        let old = self.input.len();
        self.input.resize(old + CHUNK, 0);
        let result = self.tls.recv_slice(sockets, &mut self.input[old..]);
        let n = *result.as_ref().unwrap_or(&0);
        self.input.truncate(old + n);
        Ok(result? > 0)
    }

    fn consume_input(
        &mut self,
        body: BodyLength,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), FetchError> {
        let already = self.got;
        let (digest, got) = (&mut self.digest, &mut self.got);
        let mut take = |data: &[u8]| {
            digest.update(data);
            *got += data.len() as u64;
            sink(data);
        };
        let used = match body {
            BodyLength::Length(n) => {
                let k = (n - already).min(self.input.len() as u64) as usize;
                take(&self.input[..k]);
                k
            }
            BodyLength::UntilClose => {
                take(&self.input);
                self.input.len()
            }
            BodyLength::Chunked => self
                .chunked
                .decode(&self.input, &mut take)
                .map_err(FetchError::Response)?,
        };
        self.input.drain(..used);
        Ok(())
    }

    fn body_complete(&self, body: BodyLength) -> bool {
        match body {
            BodyLength::Length(n) => self.got >= n,
            BodyLength::Chunked => self.chunked.is_done(),
            BodyLength::UntilClose => false,
        }
    }
}
