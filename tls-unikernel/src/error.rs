//! The binding's one error type.

use core::fmt;

use smoltcp::socket::tcp;

/// Everything a [`TlsSocket`](crate::TlsSocket) call can fail with.
///
/// Errors marked *fatal* are sticky: once the socket has one, every later call that
/// touches the connection returns it (after any plaintext that was received intact, for
/// the reading calls). The socket has then already sent the TLS alert it could and closed
/// or reset its TCP connection; the embedder only has to remove the TCP socket from its
/// `SocketSet` when it is done with it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Not fatal. The peer sent close_notify and every byte before it has been read: the
    /// clean end of the stream (reading calls only). Sending may still work (half-close).
    Finished,
    /// Not fatal. The call is not possible in the socket's state: not connected or
    /// listening, or aborted. (Sending after [`close`](crate::TlsSocket::close) is
    /// `Tls(tls_core::Error::Closed)`, as in tls-core.)
    InvalidState,
    /// Fatal. The peer's TCP FIN arrived before its close_notify: the data may have been
    /// cut short by an attacker or a crash, so it is not a clean end of stream.
    Truncated,
    /// Fatal. The TCP connection was reset: an RST arrived (also "connection refused"
    /// while connecting), or smoltcp gave up retransmitting (`tcp::Socket::set_timeout`).
    Reset,
    /// Fatal. The handshake did not finish within
    /// [`Options::handshake_timeout`](crate::Options::handshake_timeout); the TCP
    /// connection has been reset.
    HandshakeTimeout,
    /// Fatal. The peer acknowledged none of our output for
    /// [`Options::write_timeout`](crate::Options::write_timeout) (it stopped reading);
    /// the TCP connection has been reset.
    WriteTimeout,
    /// A TLS error from the engine. Fatal (see [`tls_core::Error::is_fatal`]) for an alert
    /// from the peer, a protocol violation or a rejected certificate, whose alert has been
    /// sent; not fatal for a refused command (for example
    /// [`TlsSocket::refresh_keys`](crate::TlsSocket::refresh_keys) on TLS 1.2).
    Tls(tls_core::Error),
    /// `connect` failed in smoltcp (the socket is open already, or the endpoints are
    /// unusable).
    Connect(tcp::ConnectError),
    /// `listen` failed in smoltcp.
    Listen(tcp::ListenError),
}

impl Error {
    /// Whether the error ends the connection (and is returned by every later call).
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Truncated | Self::Reset | Self::HandshakeTimeout | Self::WriteTimeout => true,
            Self::Tls(e) => e.is_fatal(),
            _ => false,
        }
    }
}

impl From<tls_core::Error> for Error {
    fn from(e: tls_core::Error) -> Self {
        match e {
            tls_core::Error::Truncated => Self::Truncated,
            other => Self::Tls(other),
        }
    }
}

impl From<tcp::ConnectError> for Error {
    fn from(e: tcp::ConnectError) -> Self {
        Self::Connect(e)
    }
}

impl From<tcp::ListenError> for Error {
    fn from(e: tcp::ListenError) -> Self {
        Self::Listen(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Finished => f.write_str("peer closed the stream (close_notify)"),
            Self::InvalidState => f.write_str("invalid state for this operation"),
            Self::Truncated => {
                f.write_str("connection truncated: tcp fin arrived before close_notify")
            }
            Self::Reset => f.write_str("tcp connection reset or timed out"),
            Self::HandshakeTimeout => f.write_str("tls handshake timed out"),
            Self::WriteTimeout => f.write_str("peer stopped reading: write timed out"),
            Self::Tls(e) => write!(f, "{e}"),
            Self::Connect(e) => write!(f, "tcp connect failed: {e}"),
            Self::Listen(e) => write!(f, "tcp listen failed: {e}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Tls(e) => Some(e),
            Self::Connect(e) => Some(e),
            Self::Listen(e) => Some(e),
            _ => None,
        }
    }
}
