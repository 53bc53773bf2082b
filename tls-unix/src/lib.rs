//! TLS over std sockets (TCP and Unix-domain), on the [`tls_core`] engine.
//!
//! Three flavours share one pump (flush pending output first, then read input, never loop
//! without progress):
//!
//! * [`blocking`]: [`blocking::TlsStream`] over any `Read + Write`, itself `Read + Write`,
//!   with [`blocking::connect`] and [`blocking::accept`] for `TcpStream` and `UnixStream`.
//! * `nonblocking` (feature `mio`): the same stream for non-blocking sockets. It passes
//!   `WouldBlock` through, says which readiness it needs next and registers with mio.
//! * `tokio` (feature `tokio`): `TlsConnector`, `TlsAcceptor` and a `TlsStream` that is
//!   `AsyncRead + AsyncWrite` with tokio-rustls' semantics, plus a full-duplex split whose
//!   reader and writer halves never wait for each other.
//!
//! # Example
//!
//! A blocking client and server over a Unix-domain socket pair:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//! use std::sync::Arc;
//! use tls_unix::{blocking, Options};
//! # use tls_unix::rustls::pki_types::ServerName;
//! # let pki = tls_test::certs::Pki::new(tls_test::certs::KeyKind::EcdsaP256, &[]);
//! # let server_config = Arc::new(pki.server_config(&Default::default()));
//! # let client_config = Arc::new(pki.client_config(&Default::default()));
//! // server_config: Arc<rustls::ServerConfig>, client_config: Arc<rustls::ClientConfig>
//! let (a, b) = UnixStream::pair()?;
//! let server = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
//!     let mut tls = blocking::accept(server_config, b, Options::default())?;
//!     let mut request = Vec::new();
//!     tls.read_to_end(&mut request)?; // until the client's close_notify
//!     tls.write_all(b"pong")?;
//!     tls.shutdown()?;
//!     Ok(request)
//! });
//! let name = ServerName::try_from("localhost").unwrap();
//! let mut tls = blocking::connect(client_config, name, a, Options::default())?;
//! tls.write_all(b"ping")?;
//! tls.shutdown()?; // close_notify + half-close: we can still read
//! let mut reply = Vec::new();
//! tls.read_to_end(&mut reply)?;
//! assert_eq!(reply, b"pong");
//! assert_eq!(server.join().unwrap()?, b"ping");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Shutdown
//!
//! `shutdown` (blocking and non-blocking [`shutdown`](blocking::TlsStream::shutdown),
//! tokio's `AsyncWriteExt::shutdown`) queues close_notify after any data already written,
//! writes everything still pending to the transport, and then half-closes the transport
//! (TCP FIN, `shutdown(Write)`). It **waits for** the transport to accept those bytes; it
//! **does not wait for** the peer to read them, for the peer's close_notify or for the
//! peer to close: reading goes on after it, and returns `Ok(0)` once the peer's close_notify
//! arrives. To close both ways, shut down and then read until `Ok(0)`. Dropping a stream
//! sends nothing, so the peer sees its stream truncated. After a fatal TLS error there is no
//! close_notify to send (the alert went out when the error happened): shutdown then only
//! half-closes the transport.
//!
//! # End of stream and errors
//!
//! Every error is an [`std::io::Error`]. Transport errors are passed through unchanged. TLS
//! errors carry the typed [`tls_core::Error`] inside ([`tls_error`] gets it back): a peer
//! that closes its transport without close_notify gives [`ErrorKind::UnexpectedEof`]
//! carrying [`tls_core::Error::Truncated`], never a clean `Ok(0)`. Timeouts give
//! [`ErrorKind::TimedOut`] carrying a [`Timeout`] ([`timeout`] gets it back).
//!
//! [`ErrorKind::UnexpectedEof`]: std::io::ErrorKind::UnexpectedEof
//! [`ErrorKind::TimedOut`]: std::io::ErrorKind::TimedOut
//!
//! # Design
//!
//! Every flavour is a thin shell around one pump (`src/pump.rs`) that sees the transport as
//! `std::io::Read + Write`: a blocking socket blocks there, a non-blocking one (or tokio's
//! `poll_*` behind an adapter that turns `Pending` into `WouldBlock`) says "not now", and the
//! pump passes that up after doing all it could. The pump writes pending output before it
//! reads, never waits for write space to read, reads straight into the engine's input buffer
//! and writes straight from its output queue, moves at least one byte on every loop turn
//! (a state where nothing can move is reported as an error, never spun on), and after a
//! fatal TLS error writes the alert once before returning the error. Nothing is sent after
//! our close_notify. The tokio split is described at `tokio::ReadHalf`
//! (feature `tokio`).
//!
//! The engine's events ([`Session::poll_event`](tls_core::Session::poll_event)) are left
//! for the application: every flavour gives access to the session.
//!
//! # Time
//!
//! tls-core has no clock; deadlines are this crate's job. [`Options`] sets a handshake
//! deadline and read and write timeouts. The blocking flavour enforces them with the
//! socket's own timeouts, tokio with its timer, and the mio flavour reports the next
//! deadline for the event loop's `poll` timeout and checks it on every call.

#![forbid(unsafe_code)]

use std::io;
use std::time::Duration;

pub use tls_core;
pub use tls_core::rustls;
use tls_core::Limits;

pub mod blocking;
mod error;
#[cfg(feature = "mio")]
pub mod nonblocking;
mod pump;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use error::{timeout, tls_error, Timeout};

/// Settings shared by every flavour: the engine's memory [`Limits`] and the time limits.
///
/// Every timeout is off by default (`None`). A server should set at least
/// [`handshake_timeout`](Self::handshake_timeout), so a peer that opens a connection and
/// never speaks cannot hold it forever.
///
/// ```
/// use std::time::Duration;
/// let options = tls_unix::Options {
///     handshake_timeout: Some(Duration::from_secs(10)),
///     read_timeout: Some(Duration::from_secs(60)),
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The engine's buffer limits.
    pub limits: Limits,
    /// The longest the whole handshake may take, from the first handshake call (or, for the
    /// mio flavour, from the stream's creation). Past it: [`Timeout::Handshake`].
    pub handshake_timeout: Option<Duration>,
    /// The longest a read may wait without receiving a byte. Past it: [`Timeout::Read`].
    pub read_timeout: Option<Duration>,
    /// The longest a write, flush or shutdown may wait without the transport accepting a
    /// byte. Past it: [`Timeout::Write`].
    pub write_timeout: Option<Duration>,
}

/// Half-closing a socket's sending direction (`shutdown(Shutdown::Write)`), used by
/// `shutdown` after close_notify. Implemented for std's and (feature `mio`) mio's
/// `TcpStream` and `UnixStream`.
pub trait HalfClose {
    /// Shuts down the sending direction; the receiving direction stays open.
    fn shutdown_write(&self) -> io::Result<()>;
}

/// Half-closes `sock` after close_notify went out. A socket the peer has already reset
/// (`NotConnected`) has nothing left to close: the peer closed first, which is not an error
/// of ours to report (the next read says what happened).
pub(crate) fn half_close<S: HalfClose + ?Sized>(sock: &S) -> io::Result<()> {
    match sock.shutdown_write() {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

/// Time limits on a blocking socket's reads and writes, used by [`blocking::connect`] and
/// [`blocking::accept`] to enforce [`Options`]. Implemented for std's `TcpStream` and
/// `UnixStream`.
pub trait SetTimeouts {
    /// Like `TcpStream::set_read_timeout` (`None`: wait forever).
    fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()>;
    /// Like `TcpStream::set_write_timeout` (`None`: wait forever).
    fn set_write_timeout(&self, limit: Option<Duration>) -> io::Result<()>;
}

macro_rules! std_socket {
    ($($ty:ty),*) => {$(
        impl HalfClose for $ty {
            fn shutdown_write(&self) -> io::Result<()> {
                self.shutdown(std::net::Shutdown::Write)
            }
        }

        impl SetTimeouts for $ty {
            fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
                <$ty>::set_read_timeout(self, limit)
            }
            fn set_write_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
                <$ty>::set_write_timeout(self, limit)
            }
        }
    )*};
}

std_socket!(std::net::TcpStream);
#[cfg(unix)]
std_socket!(std::os::unix::net::UnixStream);

#[cfg(feature = "mio")]
impl HalfClose for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(all(feature = "mio", unix))]
impl HalfClose for mio::net::UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}
