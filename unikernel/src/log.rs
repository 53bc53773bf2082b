//! The one log line per connection and the reasons a connection ends, with no I/O, for
//! any server of the project.
//!
//! ```text
//! 192.0.2.1:50000 TLSv1_3 TLS13_AES_256_GCM_SHA384 alpn=- resumed=false in=78 out=1180 3 ms requests=1 close=close_notify (both)
//! ```
//! `close=` is last (its value has spaces); a connection whose handshake failed logs
//! `PEER handshake failed: ERROR (N ms)` instead.

use alloc::string::String;
use core::fmt::{self, Write as _};

use tls_core::HandshakeInfo;

use crate::http::Alpn;

/// How the log names a connection whose transport ended before the peer's close_notify.
pub const TRUNCATED: &str = "peer closed without close_notify (truncated)";

/// Why a connection ended, as its log line's `close=` says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CloseReason {
    /// We sent close_notify first and the peer answered with its own.
    CloseNotify,
    /// The peer sent close_notify first and we answered.
    PeerCloseNotify,
    /// The transport ended before the peer's close_notify.
    Truncated,
    /// A malformed request was answered with `400`, then close_notify.
    BadRequest,
    /// A request head over the limit was answered with `431`, then close_notify.
    HeadTooLarge,
    /// A request body over the limit was answered with `413`, then close_notify.
    BodyTooLarge,
    /// A transfer-coded request body was answered with `501`, then close_notify.
    NotImplemented,
    /// The request head did not arrive within the header-read timeout: `408`, then
    /// close_notify.
    HeaderTimeout,
    /// No request came within the idle timeout: close_notify.
    IdleTimeout,
    /// Nothing moved for the I/O timeout while a request or response was under way:
    /// the connection was reset.
    TimedOut,
    /// The server was stopped (Ctrl-C) with the connection open: reset.
    Stopped,
    /// The TCP connection was reset (or smoltcp gave up retransmitting).
    Reset,
    /// A TLS error ended it (its alert was sent where one fits).
    Tls(tls_core::Error),
    /// The socket refused an operation in its state (a defect, logged rather than
    /// hidden).
    InvalidState,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CloseNotify => "close_notify (both)",
            Self::PeerCloseNotify => "close_notify (peer first)",
            Self::Truncated => TRUNCATED,
            Self::BadRequest => "bad request (400)",
            Self::HeadTooLarge => "request head too large (431)",
            Self::BodyTooLarge => "request body too large (413)",
            Self::NotImplemented => "transfer-coded request body (501)",
            Self::HeaderTimeout => "header-read timeout (408)",
            Self::IdleTimeout => "idle timeout",
            Self::TimedOut => "error: timed out",
            Self::Stopped => "error: stopped",
            Self::Reset => "error: tcp connection reset or timed out",
            Self::InvalidState => "error: invalid state for this operation",
            Self::Tls(e) => return write!(f, "error: {e}"),
        })
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
    /// Requests answered.
    pub requests: u64,
    /// How long the connection lasted.
    pub millis: u64,
    /// How it ended.
    pub close: &'a dyn fmt::Display,
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
            " in={} out={} {} ms requests={} close={}",
            self.read, self.written, self.millis, self.requests, self.close
        )
    }
}

/// The line of a connection whose handshake failed.
pub fn handshake_failed(peer: &dyn fmt::Display, error: &dyn fmt::Display, millis: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{peer} handshake failed: {error} ({millis} ms)");
    s
}
