//! The one log line per connection and the reasons a connection ends, with no I/O, for
//! every server of the project: this crate's (the smoltcp targets) and `tlsflow::server`
//! (hyper on the Unix backend) print the same line, with the same words for the same event.
//!
//! ```text
//! 192.0.2.1:50000 TLSv1_3 TLS13_AES_256_GCM_SHA384 alpn=- resumed=false in=78 out=1180 3 ms requests=1 close=close_notify (both)
//! 192.0.2.1:50002 TLSv1_3 TLS13_AES_256_GCM_SHA384 alpn=- resumed=false in=9 out=180 2 ms requests=0 close=bad request (400); close_notify (both)
//! ```
//! `close=` is last (its value has spaces): the [`Cause`] when the server ended the
//! connection, then `; ` and how TLS ended ([`TlsEnd`]). A connection whose handshake
//! failed logs `PEER handshake failed: ERROR (N ms)` instead ([`handshake_failed`]).

use alloc::string::String;
use core::fmt::{self, Write as _};

use tls_core::HandshakeInfo;

use crate::http::Alpn;

/// How the log names a connection whose transport ended before the peer's close_notify.
pub const TRUNCATED: &str = "peer closed without close_notify (truncated)";

/// Why the server ended a connection (before the TLS close), when the peer did not.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Cause {
    /// A malformed request line or header was answered with `400`.
    BadRequest,
    /// A request head over the limit was answered with `431`.
    HeadTooLarge,
    /// A request body over the limit was answered with `413`.
    BodyTooLarge,
    /// A transfer-coded request body was answered with `501` (the smoltcp server; hyper
    /// reads chunked bodies).
    NotImplemented,
    /// The request head did not arrive within the header-read timeout; the connection was
    /// closed without an answer (hyper's behaviour, on the Unix backend).
    HeaderTimeout,
    /// The request head did not arrive within the header-read timeout and was answered
    /// with `408` (the smoltcp server).
    RequestTimeout,
    /// No request came within the idle (keep-alive) timeout.
    IdleTimeout,
    /// The server shut down gracefully: responses in flight finished first.
    Shutdown,
    /// The server was stopped at once with the connection open: reset.
    Stopped,
    /// Nothing moved for the I/O timeout while a handshake, request or response was under
    /// way: reset.
    TimedOut,
    /// The TCP connection was reset (or the stack gave up retransmitting).
    Reset,
    /// A TLS error ended it (its alert was sent where one fits).
    Tls(tls_core::Error),
    /// An HTTP or transport error, with its text.
    Error(String),
    /// The socket refused an operation in its state (a defect, logged rather than hidden).
    InvalidState,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadRequest => "bad request (400)",
            Self::HeadTooLarge => "request head too large (431)",
            Self::BodyTooLarge => "request body too large (413)",
            Self::NotImplemented => "transfer-coded request body (501)",
            Self::HeaderTimeout => "header-read timeout",
            Self::RequestTimeout => "header-read timeout (408)",
            Self::IdleTimeout => "idle timeout",
            Self::Shutdown => "server shutdown",
            Self::Stopped => "error: stopped",
            Self::TimedOut => "error: timed out",
            Self::Reset => "error: tcp connection reset or timed out",
            Self::InvalidState => "error: invalid state for this operation",
            Self::Tls(e) => return write!(f, "error: {e}"),
            Self::Error(e) => return write!(f, "error: {e}"),
        })
    }
}

/// How the TLS connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsEnd {
    /// The peer sent close_notify first; we answered with ours.
    PeerFirst,
    /// We sent close_notify, and the peer answered with its own.
    Both,
    /// We sent close_notify; the peer closed its transport without answering, or did not
    /// answer in time.
    Sent,
    /// The transport ended before the peer's close_notify.
    Truncated,
    /// The connection ended without a close_notify from us (an error, a reset, a stop).
    Failed,
}

impl fmt::Display for TlsEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PeerFirst => "close_notify (peer first)",
            Self::Both => "close_notify (both)",
            Self::Sent => "close_notify (sent, no reply)",
            Self::Truncated => TRUNCATED,
            Self::Failed => "no close_notify",
        })
    }
}

/// Why and how a connection closed: the `close=` field of the log line,
/// `CAUSE; TLS-END`, or `TLS-END` alone when the peer ended it.
#[derive(Clone, Debug, PartialEq)]
pub struct CloseReason {
    /// What made the server end the connection, if not the peer.
    pub cause: Option<Cause>,
    /// How the TLS layer ended.
    pub tls: TlsEnd,
}

impl CloseReason {
    /// A close the server caused, ending the TLS layer as `tls` says.
    pub fn new(cause: Option<Cause>, tls: TlsEnd) -> Self {
        Self { cause, tls }
    }

    /// A connection ended by an error, without a close_notify from us.
    pub fn failed(cause: Cause) -> Self {
        Self::new(Some(cause), TlsEnd::Failed)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An error that ended the connection says it all: "error: ...; no close_notify"
        // would repeat it.
        match &self.cause {
            Some(cause) if self.tls == TlsEnd::Failed => write!(f, "{cause}"),
            Some(cause) => write!(f, "{cause}; {}", self.tls),
            None => write!(f, "{}", self.tls),
        }
    }
}

/// What one connection's log line reports.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations, reason = "its fields are Display only")]
pub struct ConnectionLog<'a> {
    /// The peer's address and port.
    pub peer: &'a dyn fmt::Display,
    /// What the handshake negotiated (`None`: `?` fields).
    pub info: Option<&'a HandshakeInfo>,
    /// Plaintext bytes read.
    pub read: u64,
    /// Plaintext bytes written.
    pub written: u64,
    /// Requests answered (`None`: an echo connection, no `requests=` field).
    pub requests: Option<u64>,
    /// How long the connection lasted.
    pub millis: u64,
    /// How it ended.
    pub close: &'a CloseReason,
}

impl fmt::Display for ConnectionLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.peer)?;
        match self.info {
            Some(i) => write!(
                f,
                "{:?} {:?} alpn={} resumed={}",
                i.version,
                i.cipher_suite,
                Alpn(i.alpn.as_deref()),
                i.resumed
            )?,
            None => f.write_str("? ? alpn=- resumed=false")?,
        }
        write!(
            f,
            " in={} out={} {} ms",
            self.read, self.written, self.millis
        )?;
        if let Some(n) = self.requests {
            write!(f, " requests={n}")?;
        }
        write!(f, " close={}", self.close)
    }
}

/// The line of a connection whose handshake failed.
pub fn handshake_failed(peer: &dyn fmt::Display, error: &dyn fmt::Display, millis: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{peer} handshake failed: {error} ({millis} ms)");
    s
}
