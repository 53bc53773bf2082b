//! Blocking TLS streams: [`TlsStream`] over any `Read + Write`, and [`connect`] / [`accept`]
//! for sockets whose reads and writes can be given time limits (`TcpStream`, `UnixStream`).
//!
//! # Example
//!
//! An HTTPS-style exchange over TCP on 127.0.0.1:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//! use tls_unix::{blocking, rustls::pki_types::ServerName, Options};
//! # let pki = tls_test::certs::Pki::new(tls_test::certs::KeyKind::EcdsaP256, &[]);
//! # let server_config = std::sync::Arc::new(pki.server_config(&Default::default()));
//! # let client_config = std::sync::Arc::new(pki.client_config(&Default::default()));
//!
//! let options = Options {
//!     handshake_timeout: Some(Duration::from_secs(10)),
//!     read_timeout: Some(Duration::from_secs(10)),
//!     ..Options::default()
//! };
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (sock, _) = listener.accept()?;
//!     let mut tls = blocking::accept(server_config, sock, options)?;
//!     let mut request = [0u8; 64];
//!     let n = tls.read(&mut request)?;
//!     assert!(request[..n].starts_with(b"GET /"));
//!     tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi")?;
//!     tls.shutdown()
//! });
//!
//! let sock = TcpStream::connect(addr)?;
//! let name = ServerName::try_from("localhost").unwrap();
//! let mut tls = blocking::connect(client_config, name, sock, options)?;
//! tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")?;
//! let mut response = Vec::new();
//! tls.read_to_end(&mut response)?; // Ok(0) only after the server's close_notify
//! assert!(response.ends_with(b"hi"));
//! server.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use core::time::Duration;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{HandshakeInfo, Session};

use crate::error::is_not_now;
use crate::pump::{self, Closing};
use crate::{HalfClose, Options, SetTimeouts, Timeout};

/// Connects as a client over `sock`: runs the whole handshake (within
/// [`Options::handshake_timeout`]) and returns the stream, whose reads and writes then keep
/// to [`Options::read_timeout`] and [`Options::write_timeout`].
pub fn connect<S>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    sock: S,
    options: Options,
) -> io::Result<TlsStream<S>>
where
    S: Read + Write + SetTimeouts,
{
    let session = Session::client(config, name, options.limits)?;
    handshake_within(TlsStream::new(session, sock), options)
}

/// Accepts a client over `sock`: runs the whole handshake (within
/// [`Options::handshake_timeout`]) and returns the stream, whose reads and writes then keep
/// to [`Options::read_timeout`] and [`Options::write_timeout`].
pub fn accept<S>(config: Arc<ServerConfig>, sock: S, options: Options) -> io::Result<TlsStream<S>>
where
    S: Read + Write + SetTimeouts,
{
    let session = Session::server(config, options.limits)?;
    handshake_within(TlsStream::new(session, sock), options)
}

fn handshake_within<S>(mut tls: TlsStream<S>, options: Options) -> io::Result<TlsStream<S>>
where
    S: Read + Write + SetTimeouts,
{
    match options.handshake_timeout {
        Some(limit) => {
            let mut io = Deadline {
                sock: &mut tls.sock,
                deadline: Instant::now() + limit,
                limit,
            };
            pump::handshake(&mut tls.session, &mut io)?;
            // Replace the handshake's timeouts (a `None` here means "wait forever").
            tls.sock.set_read_timeout(options.read_timeout)?;
            tls.sock.set_write_timeout(options.write_timeout)?;
        }
        None => {
            tls.handshake()?;
            // Leave timeouts the caller set on the socket alone unless asked otherwise.
            if options.read_timeout.is_some() {
                tls.sock.set_read_timeout(options.read_timeout)?;
            }
            if options.write_timeout.is_some() {
                tls.sock.set_write_timeout(options.write_timeout)?;
            }
        }
    }
    tls.timeouts = (options.read_timeout, options.write_timeout);
    Ok(tls)
}

/// A TLS connection over a blocking transport `S`; itself `Read + Write`.
///
/// * `read` returns plaintext; `Ok(0)` only after the peer's close_notify. A transport that
///   ends before it gives [`io::ErrorKind::UnexpectedEof`] carrying
///   [`tls_core::Error::Truncated`].
/// * `write` encrypts and writes all of `buf` before returning (the engine takes at most
///   [`Limits::outbound`](tls_core::Limits::outbound) at a time, so memory stays bounded).
/// * `flush` writes data gathered in coalescing mode
///   ([`Session::set_coalescing`]) and flushes the transport.
/// * Each `write` call is sealed into records of its own, so many small writes (an HTTP
///   head written piece by piece) become many small records. To send a message as few
///   records, either wrap the stream in a [`std::io::BufWriter`] (up to its capacity per
///   `write`; give it 16 KiB) and `flush` at the end of the message, or turn on
///   [`Session::set_coalescing`] through [`session_mut`](Self::session_mut): small writes
///   are then gathered into full records and the rest goes out at `flush`.
/// * [`shutdown`](Self::shutdown) sends close_notify and half-closes the transport; reading
///   goes on (see the [crate docs](crate#shutdown)).
///
/// A stream made with [`new`](Self::new) runs the handshake on first use (or on
/// [`handshake`](Self::handshake)), without a deadline; [`connect`] and [`accept`] run it
/// at once, within [`Options::handshake_timeout`].
#[derive(Debug)]
pub struct TlsStream<S> {
    sock: S,
    session: Session,
    /// Read and write timeouts set on the socket, to name the error when one runs out.
    timeouts: (Option<Duration>, Option<Duration>),
    closing: Closing,
}

impl<S: Read + Write> TlsStream<S> {
    /// Wraps a session and its transport. Nothing is sent until the first call.
    pub fn new(session: Session, sock: S) -> Self {
        Self {
            sock,
            session,
            timeouts: (None, None),
            closing: Closing::default(),
        }
    }

    /// Runs the handshake to completion (a no-op once it is complete).
    pub fn handshake(&mut self) -> io::Result<()> {
        let (session, mut io, _) = self.parts();
        pump::handshake(session, &mut io)
    }

    /// What the handshake negotiated, once it is complete.
    pub fn handshake_info(&self) -> Option<&HandshakeInfo> {
        self.session.handshake_info()
    }

    /// Keying material exported from the session (RFC 8446 §7.5; TLS 1.3 only): see
    /// [`Session::export_keying_material`].
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> io::Result<()> {
        Ok(self.session.export_keying_material(out, label, context)?)
    }

    /// Sends close_notify after all data written so far, without half-closing the
    /// transport (for transports that cannot; see [`shutdown`](Self::shutdown)). Reading
    /// goes on until the peer's close_notify.
    pub fn close_notify(&mut self) -> io::Result<()> {
        // Finish a running handshake first; after a fatal error there is no
        // close_notify to send, and shutting down goes on to the transport.
        if self.session.error().is_none() {
            self.handshake()?;
        }
        let (session, mut io, closing) = self.parts();
        pump::close(session, &mut io, closing)
    }

    /// Sends a TLS 1.3 KeyUpdate (asking the peer to update its keys too) at once.
    pub fn refresh_keys(&mut self) -> io::Result<()> {
        self.handshake()?;
        self.session.refresh_keys()?;
        let (session, mut io, closing) = self.parts();
        let notified = closing.notified;
        pump::send_output(session, &mut io, notified)
    }

    /// The engine, for its getters and events.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The engine, mutably (for example to poll events or turn on coalescing).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// The transport, mutably. Reading or writing it directly breaks the TLS stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// The transport and the engine, taken apart.
    pub fn into_inner(self) -> (S, Session) {
        (self.sock, self.session)
    }

    /// The engine, the socket as the pump sees it, and how far we have closed.
    fn parts(&mut self) -> (&mut Session, Timed<'_, S>, &mut Closing) {
        let io = Timed {
            sock: &mut self.sock,
            read: self.timeouts.0,
            write: self.timeouts.1,
        };
        (&mut self.session, io, &mut self.closing)
    }
}

impl<S: Read + Write + HalfClose> TlsStream<S> {
    /// Sends close_notify after all data written so far, writes everything pending, and
    /// half-closes the transport. Reading goes on until the peer's close_notify (`Ok(0)`).
    /// Calling it again is a no-op.
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.close_notify()?;
        if !self.closing.shut {
            crate::half_close(&self.sock)?;
            self.closing.shut = true;
        }
        Ok(())
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.handshake()?;
        let (session, mut io, closing) = self.parts();
        let notified = closing.notified;
        pump::read(session, &mut io, buf, notified)
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.handshake()?;
        let (session, mut io, _) = self.parts();
        pump::write(session, &mut io, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        let (session, mut io, closing) = self.parts();
        let notified = closing.notified;
        pump::flush(session, &mut io, notified)
    }
}

/// The socket during traffic: names a socket timeout when one runs out.
struct Timed<'a, S> {
    sock: &'a mut S,
    read: Option<Duration>,
    write: Option<Duration>,
}

impl<S: Read> Read for Timed<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf).map_err(|e| match self.read {
            Some(limit) if is_not_now(&e) => Timeout::Read(limit).into(),
            _ => e,
        })
    }
}

impl<S: Write> Write for Timed<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf).map_err(|e| match self.write {
            Some(limit) if is_not_now(&e) => Timeout::Write(limit).into(),
            _ => e,
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// The socket during a handshake with a deadline: before each read or write the socket's
/// timeout is set to the time left.
struct Deadline<'a, S> {
    sock: &'a mut S,
    deadline: Instant,
    limit: Duration,
}

impl<S> Deadline<'_, S> {
    fn time_left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Timeout::Handshake(self.limit).into());
        }
        Ok(left)
    }

    fn name(&self, e: io::Error) -> io::Error {
        if is_not_now(&e) {
            Timeout::Handshake(self.limit).into()
        } else {
            e
        }
    }
}

impl<S: Read + SetTimeouts> Read for Deadline<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.time_left()?;
        self.sock.set_read_timeout(Some(left))?;
        self.sock.read(buf).map_err(|e| self.name(e))
    }
}

impl<S: Write + SetTimeouts> Write for Deadline<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.time_left()?;
        self.sock.set_write_timeout(Some(left))?;
        self.sock.write(buf).map_err(|e| self.name(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}
