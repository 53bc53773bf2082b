//! The engine's one error type.

use core::fmt;

use rustls::AlertDescription;

/// Everything a [`Session`](crate::Session) call can fail with.
///
/// Errors marked *fatal* are sticky: once one is returned, every later call that touches
/// the connection returns the same error, and [`Session::pending_tls`](crate::Session::pending_tls)
/// still holds the alert that tells the peer (send it, then close the transport).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Fatal. The transport ended (see [`Session::read_tls_eof`](crate::Session::read_tls_eof))
    /// before the peer's close_notify: the data may have been cut short by an attacker or
    /// a crash, so it is not a clean end of stream.
    Truncated,
    /// Fatal. The peer sent a fatal alert.
    AlertReceived(AlertDescription),
    /// Fatal. The peer broke the protocol, or a certificate was not accepted. The alert the
    /// protocol calls for has been queued for sending.
    Tls(rustls::Error),
    /// Not fatal. No plaintext is available now: give the session more input.
    WouldBlock,
    /// Not fatal. Application data cannot be sent after [`Session::close`](crate::Session::close).
    Closed,
    /// Not fatal. The operation needs a finished handshake.
    Handshaking,
    /// Not fatal. KeyUpdate exists only in TLS 1.3; this session negotiated TLS 1.2.
    KeyUpdateNeedsTls13,
    /// Not fatal. [`Session::refresh_keys`](crate::Session::refresh_keys) was called
    /// [`MAX_KEY_UPDATES`](crate::Session::MAX_KEY_UPDATES) times with no application data
    /// sent since: one more KeyUpdate would make a rustls (or BoringSSL) peer fail the
    /// connection. Send data first.
    TooManyKeyUpdates,
    /// Fatal. rustls did something the engine does not handle (see [`EngineError`]); the
    /// session cannot go on.
    Engine(EngineError),
    /// The configuration asks for something the engine does not do (for example 0-RTT
    /// early data on a server), so no session was made.
    UnsupportedConfig(&'static str),
    /// The [`Limits`](crate::Limits) cannot let a session make progress.
    InvalidLimits(&'static str),
}

/// Our own failures at the rustls boundary, each its own variant rather than a
/// `rustls::Error::General` string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// A record did not fit the room the engine reserved for it (an engine bug).
    RecordRoom,
    /// rustls refused to encode a handshake or alert record (an engine bug).
    Encoding,
    /// rustls offered 0-RTT early data, which the engine does not accept.
    EarlyData,
    /// rustls yielded a connection state this engine does not know (a newer rustls).
    UnknownState,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RecordRoom => "record larger than the room reserved for it",
            Self::Encoding => "record encoding failed",
            Self::EarlyData => "0-rtt early data is not supported",
            Self::UnknownState => "unknown rustls connection state",
        })
    }
}

impl Error {
    /// Whether the error ends the connection (and is returned by every later call).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Truncated | Self::AlertReceived(_) | Self::Tls(_) | Self::Engine(_)
        )
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        match e {
            rustls::Error::AlertReceived(alert) => Self::AlertReceived(alert),
            other => Self::Tls(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => {
                f.write_str("connection truncated: transport ended before close_notify")
            }
            Self::AlertReceived(alert) => write!(f, "peer sent fatal alert: {alert:?}"),
            Self::Tls(e) => write!(f, "tls error: {e}"),
            Self::WouldBlock => f.write_str("no plaintext available yet"),
            Self::Closed => f.write_str("session closed for sending"),
            Self::Handshaking => f.write_str("handshake not complete"),
            Self::KeyUpdateNeedsTls13 => f.write_str("key update requires tls 1.3"),
            Self::TooManyKeyUpdates => {
                f.write_str("too many key updates without application data between them")
            }
            Self::Engine(e) => write!(f, "tls engine error: {e}"),
            Self::UnsupportedConfig(what) => write!(f, "unsupported configuration: {what}"),
            Self::InvalidLimits(what) => write!(f, "invalid limits: {what}"),
        }
    }
}

impl core::error::Error for Error {
    #[cfg(feature = "std")]
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Tls(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    /// Maps each variant to the `io::ErrorKind` a socket user expects, keeping the typed
    /// error inside (`io::Error::get_ref()` + `downcast_ref::<tls_core::Error>()`).
    fn from(e: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match &e {
            Error::Truncated => ErrorKind::UnexpectedEof,
            Error::AlertReceived(_) | Error::Tls(_) => ErrorKind::InvalidData,
            Error::WouldBlock => ErrorKind::WouldBlock,
            Error::Closed => ErrorKind::BrokenPipe,
            Error::Handshaking => ErrorKind::NotConnected,
            Error::KeyUpdateNeedsTls13 => ErrorKind::Unsupported,
            Error::TooManyKeyUpdates | Error::Engine(_) => ErrorKind::Other,
            Error::UnsupportedConfig(_) | Error::InvalidLimits(_) => ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, e)
    }
}
