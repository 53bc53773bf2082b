//! Non-blocking TLS streams for readiness loops (feature `mio`).
//!
//! [`TlsStream`] wraps a non-blocking socket (mio's `TcpStream` or `UnixStream`, or any
//! `Read + Write` that returns [`WouldBlock`](io::ErrorKind::WouldBlock)). Every call does
//! all it can and then passes `WouldBlock` through; [`TlsStream::interest`] says which
//! readiness to wait for next, and the stream is a [`mio::event::Source`] itself.
//!
//! The loop for each readiness event: call [`handshake`](TlsStream::handshake) while
//! [`is_handshaking`](TlsStream::is_handshaking); then `read` until `WouldBlock` (mio's
//! events are edge-triggered, so stop only there), `write`/`flush` what you have, and
//! `reregister` with [`interest`](TlsStream::interest). Time limits from [`Options`] are
//! checked on every call; give `poll` the timeout [`deadline`](TlsStream::deadline) asks for
//! and call [`check_deadline`](TlsStream::check_deadline) when it passes.
//!
//! # Example
//!
//! A client and a server on one thread, driven by one `mio::Poll`:
//!
//! ```
//! use std::io::{self, Read, Write};
//! use mio::{net::UnixStream, Events, Poll, Token};
//! use tls_unix::{nonblocking::TlsStream, rustls::pki_types::ServerName, Options};
//! # let pki = tls_test::certs::Pki::new(tls_test::certs::KeyKind::EcdsaP256, &[]);
//! # let server_config = std::sync::Arc::new(pki.server_config(&Default::default()));
//! # let client_config = std::sync::Arc::new(pki.client_config(&Default::default()));
//!
//! let mut poll = Poll::new()?;
//! let (a, b) = UnixStream::pair()?;
//! let name = ServerName::try_from("localhost").unwrap();
//! let mut client = TlsStream::client(client_config, name, a, Options::default())?;
//! let mut server = TlsStream::server(server_config, b, Options::default())?;
//! let interest = client.interest();
//! poll.registry().register(&mut client, Token(0), interest)?;
//! let interest = server.interest();
//! poll.registry().register(&mut server, Token(1), interest)?;
//!
//! let mut sent = false;
//! let mut received = Vec::new();
//! let mut events = Events::with_capacity(8);
//! while received != b"hello" {
//!     poll.poll(&mut events, Some(std::time::Duration::from_secs(10)))?;
//!     assert!(!events.is_empty(), "stuck");
//!     // Drive both sides on every wake-up (a real loop looks at each event's token).
//!     for tls in [&mut client, &mut server] {
//!         match tls.handshake() {
//!             Ok(()) => {}
//!             Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     if !sent && !client.is_handshaking() {
//!         assert_eq!(client.write(b"hello")?, 5);
//!         sent = true;
//!     }
//!     let mut buf = [0u8; 64];
//!     loop {
//!         match server.read(&mut buf) {
//!             Ok(n) => received.extend_from_slice(&buf[..n]),
//!             Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     for (tls, token) in [(&mut client, Token(0)), (&mut server, Token(1))] {
//!         let interest = tls.interest();
//!         poll.registry().reregister(tls, token, interest)?;
//!     }
//! }
//! # Ok::<(), io::Error>(())
//! ```

use core::time::Duration;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{HandshakeInfo, Session};

use crate::pump::{self, Closing};
use crate::{HalfClose, Options, Timeout};

/// A TLS connection over a non-blocking transport `S`; itself `Read + Write`.
///
/// Semantics, as in tokio-rustls:
/// * `read` returns plaintext, `WouldBlock` when none is available yet, `Ok(0)` only after
///   the peer's close_notify, and [`io::ErrorKind::UnexpectedEof`] carrying
///   [`tls_core::Error::Truncated`] when the transport ended before it.
/// * `write` returns as soon as the engine took some plaintext (`Ok(n)`, `n > 0`), even if
///   the socket could not take all the records yet: they stay queued (bounded by
///   [`Limits::outbound`](tls_core::Limits::outbound)) and go out on the next call. It
///   returns `WouldBlock` only when it took nothing.
/// * `flush` writes everything queued; `WouldBlock` until it could.
/// * [`shutdown`](Self::shutdown) queues close_notify, writes it and half-closes the
///   socket; `WouldBlock` until done, then a no-op.
///
/// Before the handshake completes, `read` and `write` run it first.
#[derive(Debug)]
pub struct TlsStream<S> {
    sock: S,
    session: Session,
    clock: Clock,
    closing: Closing,
}

impl<S: Read + Write> TlsStream<S> {
    /// A client stream on a (possibly still connecting) non-blocking socket. The
    /// ClientHello goes out on the first call that can write.
    pub fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        sock: S,
        options: Options,
    ) -> io::Result<Self> {
        let session = Session::client(config, name, options.limits)?;
        Ok(Self::new(session, sock, options))
    }

    /// A server stream on an accepted non-blocking socket.
    pub fn server(config: Arc<ServerConfig>, sock: S, options: Options) -> io::Result<Self> {
        let session = Session::server(config, options.limits)?;
        Ok(Self::new(session, sock, options))
    }

    /// Wraps a session and its transport. The handshake deadline, if any, starts now.
    pub fn new(session: Session, sock: S, options: Options) -> Self {
        let now = options.handshake_timeout.map(|_| Instant::now());
        Self {
            sock,
            session,
            clock: Clock {
                handshake: options
                    .handshake_timeout
                    .zip(now)
                    .map(|(limit, now)| (now + limit, limit)),
                read_limit: options.read_timeout,
                write_limit: options.write_timeout,
                read_since: None,
                write_since: None,
            },
            closing: Closing::default(),
        }
    }

    /// Advances the handshake: `Ok` once it is complete (then a no-op), `WouldBlock` while
    /// it waits for the socket.
    pub fn handshake(&mut self) -> io::Result<()> {
        self.run(Wait::Handshake, |s, io| pump::handshake(s, io))
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
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

    /// Whether the stream wants to read from the socket (it is not at end of stream and
    /// holds less unread plaintext than [`Limits::unread_plaintext`](tls_core::Limits)).
    pub fn wants_read(&self) -> bool {
        self.session.wants_input()
    }

    /// Whether ciphertext is queued for the socket (a `flush` is due when it is writable).
    pub fn wants_write(&self) -> bool {
        self.session.has_output()
    }

    /// The readiness to wait for next: readable while [`wants_read`](Self::wants_read),
    /// writable while [`wants_write`](Self::wants_write); readable when neither (to notice
    /// the peer closing).
    pub fn interest(&self) -> Interest {
        match (self.wants_read(), self.wants_write()) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            _ => Interest::READABLE,
        }
    }

    /// The next instant at which a time limit from [`Options`] runs out, if one is running:
    /// the handshake deadline, or a read or write that has waited since some instant.
    /// Use it as `poll`'s timeout, then call [`check_deadline`](Self::check_deadline).
    pub fn deadline(&self) -> Option<Instant> {
        let handshake = self
            .clock
            .handshake
            .filter(|_| self.session.is_handshaking())
            .map(|(at, _)| at);
        let read = self
            .clock
            .read_since
            .zip(self.clock.read_limit)
            .map(|(s, l)| s + l);
        let write = self
            .clock
            .write_since
            .zip(self.clock.write_limit)
            .map(|(s, l)| s + l);
        [handshake, read, write].into_iter().flatten().min()
    }

    /// `Err` with [`io::ErrorKind::TimedOut`] carrying a [`Timeout`] if a time limit ran out
    /// by `now`. Every other call checks this itself before returning `WouldBlock`.
    pub fn check_deadline(&self, now: Instant) -> io::Result<()> {
        self.expired(now, None)
    }

    /// Checks the handshake deadline and the read or write timer (`None`: both).
    fn expired(&self, now: Instant, only: Option<Wait>) -> io::Result<()> {
        if let Some((at, limit)) = self.clock.handshake {
            if self.session.is_handshaking() && now >= at {
                return Err(Timeout::Handshake(limit).into());
            }
        }
        if only != Some(Wait::Read) {
            if let (Some(since), Some(limit)) = (self.clock.write_since, self.clock.write_limit) {
                if now >= since + limit {
                    return Err(Timeout::Write(limit).into());
                }
            }
        }
        if only != Some(Wait::Write) {
            if let (Some(since), Some(limit)) = (self.clock.read_since, self.clock.read_limit) {
                if now >= since + limit {
                    return Err(Timeout::Read(limit).into());
                }
            }
        }
        Ok(())
    }

    /// Queues close_notify after all data written so far and writes it, without
    /// half-closing the socket (see [`shutdown`](Self::shutdown)). `WouldBlock` until it is
    /// written; calling again resumes.
    pub fn close_notify(&mut self) -> io::Result<()> {
        // Finish a running handshake first; after a fatal error there is no
        // close_notify to send, and shutting down goes on to the transport.
        if self.session.error().is_none() {
            self.handshake()?;
        }
        let mut closing = self.closing;
        let result = self.run(Wait::Write, |s, io| pump::close(s, io, &mut closing));
        self.closing = closing;
        result
    }

    /// Queues a TLS 1.3 KeyUpdate (asking the peer to update its keys too) and tries to
    /// write it.
    pub fn refresh_keys(&mut self) -> io::Result<()> {
        self.handshake()?;
        self.session.refresh_keys()?;
        match self.flush_output() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Writes queued ciphertext without flushing coalesced plaintext. `WouldBlock` until
    /// all of it is written.
    pub fn flush_output(&mut self) -> io::Result<()> {
        let notified = self.closing.notified;
        self.run(Wait::Write, |s, io| pump::send_output(s, io, notified))
    }

    /// The engine, for its getters and events.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The engine, mutably (for example to poll events or turn on coalescing).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The socket.
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// The socket, mutably. Reading or writing it directly breaks the TLS stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.sock
    }

    /// The socket and the engine, taken apart.
    pub fn into_inner(self) -> (S, Session) {
        (self.sock, self.session)
    }

    /// Runs one pump operation and keeps the time limits' books: which waits started or
    /// made progress, and whether a `WouldBlock` is past a deadline.
    fn run<T>(
        &mut self,
        wait: Wait,
        op: impl FnOnce(&mut Session, &mut Counted<'_, S>) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut io = Counted {
            sock: &mut self.sock,
            read: false,
            wrote: false,
        };
        let result = op(&mut self.session, &mut io);
        let (read, wrote) = (io.read, io.wrote);
        if !self.clock.is_set() {
            return result;
        }
        let now = Instant::now();
        let blocked = matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        // A write waits while output is queued; each byte written restarts its clock.
        self.clock.write_since = match self.session.has_output() {
            false => None,
            true if wrote => Some(now),
            true => self.clock.write_since.or(Some(now)),
        };
        if wait == Wait::Read {
            self.clock.read_since = match blocked {
                false => None,
                true if read => Some(now),
                true => self.clock.read_since.or(Some(now)),
            };
        }
        if blocked {
            self.expired(now, Some(wait))?;
        }
        result
    }
}

impl<S: Read + Write + HalfClose> TlsStream<S> {
    /// Sends close_notify after all data written so far and half-closes the socket.
    /// `WouldBlock` until everything is written; calling again resumes, and once done it is
    /// a no-op. Reading goes on until the peer's close_notify (`Ok(0)`).
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
        let notified = self.closing.notified;
        self.run(Wait::Read, |s, io| pump::read(s, io, buf, notified))
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.handshake()?;
        self.run(Wait::Write, |s, io| pump::write(s, io, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        let notified = self.closing.notified;
        self.run(Wait::Write, |s, io| pump::flush(s, io, notified))
    }
}

impl<S: Source> Source for TlsStream<S> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}

/// What an operation waits for, for the time limits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Handshake,
    Read,
    Write,
}

/// The time limits' state.
#[derive(Debug)]
struct Clock {
    /// Deadline and limit of the handshake.
    handshake: Option<(Instant, Duration)>,
    read_limit: Option<Duration>,
    write_limit: Option<Duration>,
    /// Since when a read has waited without receiving a byte.
    read_since: Option<Instant>,
    /// Since when queued output has waited without the socket taking a byte.
    write_since: Option<Instant>,
}

impl Clock {
    fn is_set(&self) -> bool {
        self.handshake.is_some() || self.read_limit.is_some() || self.write_limit.is_some()
    }
}

/// The socket, noting whether a call moved any byte.
struct Counted<'a, S> {
    sock: &'a mut S,
    read: bool,
    wrote: bool,
}

impl<S: Read> Read for Counted<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.read = true;
        Ok(n)
    }
}

impl<S: Write> Write for Counted<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.sock.write(buf)?;
        self.wrote |= n > 0;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}
