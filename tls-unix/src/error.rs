//! How errors are layered: transport `io::Error`s pass through, TLS errors and timeouts are
//! `io::Error`s that carry a typed error inside.

use core::fmt;
use core::time::Duration;
use std::io;

/// A time limit from [`Options`](crate::Options) that ran out. Carried inside an
/// `io::Error` of kind [`TimedOut`](io::ErrorKind::TimedOut); see [`timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The handshake did not complete within this limit.
    Handshake(Duration),
    /// No byte arrived within this limit while a read waited.
    Read(Duration),
    /// The transport accepted no byte within this limit while a write, flush or shutdown
    /// waited.
    Write(Duration),
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(d) => write!(f, "tls handshake did not complete within {d:?}"),
            Self::Read(d) => write!(f, "tls read timed out: nothing received for {d:?}"),
            Self::Write(d) => write!(f, "tls write timed out: nothing sent for {d:?}"),
        }
    }
}

impl core::error::Error for Timeout {}

impl From<Timeout> for io::Error {
    fn from(t: Timeout) -> Self {
        io::Error::new(io::ErrorKind::TimedOut, t)
    }
}

/// The TLS error inside an `io::Error` returned by this crate, if it is one.
///
/// ```
/// use std::io;
/// let e = io::Error::from(tls_core::Error::Truncated);
/// assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
/// assert_eq!(tls_unix::tls_error(&e), Some(&tls_core::Error::Truncated));
/// ```
pub fn tls_error(e: &io::Error) -> Option<&tls_core::Error> {
    e.get_ref()?.downcast_ref()
}

/// The [`Timeout`] inside an `io::Error` returned by this crate, if it is one.
pub fn timeout(e: &io::Error) -> Option<Timeout> {
    e.get_ref()?.downcast_ref().copied()
}

/// Whether a transport error means "not now" (a non-blocking socket, or a blocking socket
/// whose `SO_RCVTIMEO`/`SO_SNDTIMEO` ran out: `EAGAIN` on Unix, `TimedOut` elsewhere).
pub(crate) fn is_not_now(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) && e.get_ref().is_none()
}

/// The pump found that neither the engine nor the transport can move: a bug, reported
/// instead of spinning.
pub(crate) fn stalled(what: &'static str) -> io::Error {
    io::Error::other(format!("tls pump stalled: {what}"))
}
