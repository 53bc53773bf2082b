//! TLS for tokio (feature `tokio`): [`TlsConnector`], [`TlsAcceptor`] and a [`TlsStream`]
//! that is `AsyncRead + AsyncWrite`, plus a full-duplex split into [`ReadHalf`] and
//! [`WriteHalf`].
//!
//! The semantics are tokio-rustls': `poll_write` returns `Ready(Ok(n))` as soon as the engine
//! took some plaintext (the records go out on later calls), `Pending` only when it took none;
//! `poll_flush` writes everything queued and flushes the transport; `poll_shutdown` sends
//! close_notify once, writes it and shuts the transport's writing side down, while reading
//! goes on until the peer's close_notify (see the [crate docs](crate#shutdown)).
//! `poll_write_vectored` seals the slices it is given into as few records as they fill
//! (`is_write_vectored` is `true`), so hyper's head-plus-body writes leave as one record. A
//! transport that ends before close_notify makes `poll_read` fail with
//! [`io::ErrorKind::UnexpectedEof`] carrying [`tls_core::Error::Truncated`].
//!
//! Time limits from [`Options`] use tokio's timer (the runtime needs it enabled when one is
//! set): the handshake runs under `tokio::time::timeout`, and a read or write that waits
//! longer than its limit without progress fails with [`Timeout`].
//!
//! # Example
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//! use tls_unix::{rustls::pki_types::ServerName, tokio::{TlsAcceptor, TlsConnector}};
//! # let pki = tls_test::certs::Pki::new(tls_test::certs::KeyKind::EcdsaP256, &[]);
//! # let server_config = std::sync::Arc::new(pki.server_config(&Default::default()));
//! # let client_config = std::sync::Arc::new(pki.client_config(&Default::default()));
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let acceptor = TlsAcceptor::new(server_config);
//! let server = tokio::spawn(async move {
//!     let (sock, _) = listener.accept().await?;
//!     let mut tls = acceptor.accept(sock).await?;
//!     let mut request = Vec::new();
//!     tls.read_to_end(&mut request).await?; // until the client's close_notify
//!     tls.write_all(&request).await?;
//!     tls.shutdown().await
//! });
//!
//! let connector = TlsConnector::new(client_config);
//! let name = ServerName::try_from("localhost").unwrap();
//! let mut tls = connector.connect(name, TcpStream::connect(addr).await?).await?;
//! tls.write_all(b"echo").await?;
//! tls.shutdown().await?; // close_notify; reading goes on
//! let mut reply = Vec::new();
//! tls.read_to_end(&mut reply).await?;
//! assert_eq!(reply, b"echo");
//! server.await.unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! # })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::time::{Instant, Sleep};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{HandshakeInfo, Session};

use crate::pump::{self, Closing};
use crate::{Options, Timeout};

mod split;

pub use split::{ReadHalf, WriteHalf};

/// Makes client connections: runs the handshake on a transport and returns a [`TlsStream`].
#[derive(Clone, Debug)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    options: Options,
}

impl TlsConnector {
    /// A connector with default [`Options`] (no time limits).
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Self {
            config,
            options: Options::default(),
        }
    }

    /// Sets the limits and time limits of the streams it makes.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Runs a client handshake over `io` for the server `name`, within
    /// [`Options::handshake_timeout`].
    pub async fn connect<IO>(&self, name: ServerName<'static>, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let session = Session::client(self.config.clone(), name, self.options.limits)?;
        let mut stream = TlsStream::new(io, session, &self.options);
        handshake(&mut stream, &self.options).await?;
        Ok(stream)
    }
}

impl From<Arc<ClientConfig>> for TlsConnector {
    fn from(config: Arc<ClientConfig>) -> Self {
        Self::new(config)
    }
}

/// Accepts server connections: runs the handshake on a transport and returns a
/// [`TlsStream`].
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    options: Options,
}

impl TlsAcceptor {
    /// An acceptor with default [`Options`] (no time limits).
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            config,
            options: Options::default(),
        }
    }

    /// Sets the limits and time limits of the streams it makes.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Runs a server handshake over `io`, within [`Options::handshake_timeout`].
    pub async fn accept<IO>(&self, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let session = Session::server(self.config.clone(), self.options.limits)?;
        let mut stream = TlsStream::new(io, session, &self.options);
        handshake(&mut stream, &self.options).await?;
        Ok(stream)
    }
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> Self {
        Self::new(config)
    }
}

/// Runs the handshake on `stream` in place. It borrows the stream rather than moving it
/// through the future, so an accept or connect future holds one stream, not two (a tokio
/// task keeps its future's full size for its whole life).
async fn handshake<IO>(stream: &mut TlsStream<IO>, options: &Options) -> io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let run = poll_fn(|cx| {
        let mut io = SyncIo::new(&mut stream.io, cx);
        pending_on_would_block(pump::handshake(&mut stream.session, &mut io))
    });
    match options.handshake_timeout {
        Some(limit) => ::tokio::time::timeout(limit, run)
            .await
            .map_err(|_| io::Error::from(Timeout::Handshake(limit)))??,
        None => run.await?,
    }
    Ok(())
}

/// A TLS connection over a tokio transport, after its handshake; `AsyncRead + AsyncWrite`.
///
/// Made by [`TlsConnector::connect`] and [`TlsAcceptor::accept`]. [`into_split`](Self::into_split)
/// and [`split_with`](Self::split_with) turn it into halves that run concurrently.
#[derive(Debug)]
pub struct TlsStream<IO> {
    io: IO,
    /// Boxed: `Session` is about 1.5 KB, and a task that holds the stream across an await
    /// point would otherwise carry it inline in every state of its future.
    session: Box<Session>,
    read_timer: Timer,
    write_timer: Timer,
    closing: Closing,
}

impl<IO> TlsStream<IO> {
    fn new(io: IO, session: Session, options: &Options) -> Self {
        Self {
            io,
            session: Box::new(session),
            read_timer: Timer::new(options.read_timeout),
            write_timer: Timer::new(options.write_timeout),
            closing: Closing::default(),
        }
    }

    /// What the handshake negotiated.
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

    /// Queues a TLS 1.3 KeyUpdate (asking the peer to update its keys too); it goes out with
    /// the next write, flush or read.
    pub fn refresh_keys(&mut self) -> io::Result<()> {
        Ok(self.session.refresh_keys()?)
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
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The transport, mutably. Reading or writing it directly breaks the TLS stream.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// The transport and the engine, taken apart.
    pub fn into_inner(self) -> (IO, Session) {
        (self.io, *self.session)
    }

    /// Splits the stream into a reader and a writer that work concurrently (full duplex),
    /// splitting the transport with `tokio::io::split`. See [`split_with`](Self::split_with).
    #[allow(
        clippy::type_complexity,
        reason = "the halves name both transport halves"
    )]
    pub fn into_split(
        self,
    ) -> (
        ReadHalf<::tokio::io::ReadHalf<IO>, ::tokio::io::WriteHalf<IO>>,
        WriteHalf<::tokio::io::WriteHalf<IO>>,
    )
    where
        IO: AsyncRead + AsyncWrite,
    {
        self.split_with(::tokio::io::split)
    }

    /// Splits the stream into a reader and a writer that work concurrently (full duplex),
    /// splitting the transport with `split` (for example `TcpStream::into_split`, whose
    /// owned halves need no lock of their own).
    ///
    /// Neither half waits for the other: each holds the engine's lock only for short calls
    /// that never block or await. The reader writes the control records its input produces
    /// (KeyUpdate replies, alerts) itself, so they go out even while the writer is idle; a
    /// writer waiting for the transport is woken both when the transport can take more and
    /// when the reader has written queued output. See [`ReadHalf`] for the design.
    pub fn split_with<R, W>(
        self,
        split: impl FnOnce(IO) -> (R, W),
    ) -> (ReadHalf<R, W>, WriteHalf<W>) {
        let (r, w) = split(self.io);
        split::new(
            r,
            w,
            *self.session,
            self.closing,
            self.read_timer,
            self.write_timer,
        )
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut io = SyncIo::new(&mut this.io, cx);
        let result = read_into(&mut this.session, &mut io, buf, this.closing.notified);
        this.read_timer.settle(cx, result, Timeout::Read)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut io = SyncIo::new(&mut this.io, cx);
        let result = pump::write(&mut this.session, &mut io, buf);
        this.write_timer.settle(cx, result, Timeout::Write)
    }

    /// Seals the slices into as few records as they fill (see
    /// [`is_write_vectored`](Self::is_write_vectored)); `Ready(Ok(n))` as soon as some
    /// plaintext was taken, like [`poll_write`](Self::poll_write).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut io = SyncIo::new(&mut this.io, cx);
        let result = pump::write_vectored(&mut this.session, &mut io, bufs);
        this.write_timer.settle(cx, result, Timeout::Write)
    }

    /// `true`: a response head and a small body written together (as hyper does) leave as
    /// one record. Slices shorter than a record are gathered (a copy of plaintext, up to
    /// one record) unless the engine is in coalescing mode, which gathers them itself.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut io = SyncIo::new(&mut this.io, cx);
        let result = pump::flush(&mut this.session, &mut io, this.closing.notified)
            .and_then(|()| io.flush());
        this.write_timer.settle(cx, result, Timeout::Write)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut io = SyncIo::new(&mut this.io, cx);
        let result = shutdown(&mut this.session, &mut io, &mut this.closing);
        this.write_timer.settle(cx, result, Timeout::Write)
    }
}

/// `pump::read` into the unfilled part of a `ReadBuf`, copying plaintext straight from
/// the engine (`recv_with`), so the buffer needs no zero-filling first: hyper hands a
/// fresh uninitialised `ReadBuf` of 8 KiB or more to every read.
fn read_into<T: Read + Write>(
    s: &mut Session,
    io: &mut T,
    buf: &mut ReadBuf<'_>,
    notified: bool,
) -> io::Result<()> {
    if buf.remaining() == 0 {
        return Ok(());
    }
    pump::read_by(s, io, notified, |s| {
        s.recv_with(|data| {
            let n = data.len().min(buf.remaining());
            buf.put_slice(&data[..n]);
            n
        })
    })?;
    Ok(())
}

/// close_notify, then the transport's own shutdown (once).
fn shutdown<W: Write + AsyncShutdown>(
    s: &mut Session,
    io: &mut W,
    closing: &mut Closing,
) -> io::Result<()> {
    pump::close(s, io, closing)?;
    if !closing.shut {
        io.shutdown()?;
        closing.shut = true;
    }
    Ok(())
}

fn pending_on_would_block<T>(result: io::Result<T>) -> Poll<io::Result<T>> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

/// A tokio transport seen as `std::io::Read`/`Write` for the pump: `Pending` becomes
/// `WouldBlock` (with the task's waker registered by the transport).
struct SyncIo<'a, 'b, IO> {
    io: &'a mut IO,
    cx: &'a mut Context<'b>,
}

impl<'a, 'b, IO> SyncIo<'a, 'b, IO> {
    fn new(io: &'a mut IO, cx: &'a mut Context<'b>) -> Self {
        Self { io, cx }
    }
}

fn would_block<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl<IO: AsyncRead + Unpin> Read for SyncIo<'_, '_, IO> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        would_block(Pin::new(&mut *self.io).poll_read(self.cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl<IO: AsyncWrite + Unpin> Write for SyncIo<'_, '_, IO> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        would_block(Pin::new(&mut *self.io).poll_write(self.cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        would_block(Pin::new(&mut *self.io).poll_flush(self.cx))
    }
}

/// `AsyncWrite::poll_shutdown` through the same adapter.
trait AsyncShutdown {
    fn shutdown(&mut self) -> io::Result<()>;
}

impl<IO: AsyncWrite + Unpin> AsyncShutdown for SyncIo<'_, '_, IO> {
    fn shutdown(&mut self) -> io::Result<()> {
        would_block(Pin::new(&mut *self.io).poll_shutdown(self.cx))
    }
}

/// A read or write time limit: armed when an operation first returns `Pending`, disarmed
/// when one makes progress.
#[derive(Debug)]
struct Timer {
    limit: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Timer {
    fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            sleep: None,
            armed: false,
        }
    }

    /// Turns a pump result into a poll result: `WouldBlock` becomes `Pending`, unless the
    /// limit ran out, which becomes the error `timeout(limit)`.
    fn settle<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: io::Result<T>,
        timeout: fn(Duration) -> Timeout,
    ) -> Poll<io::Result<T>> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let Some(limit) = self.limit else {
                    return Poll::Pending;
                };
                if !self.armed {
                    let deadline = Instant::now() + limit;
                    match &mut self.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => self.sleep = Some(Box::pin(::tokio::time::sleep_until(deadline))),
                    }
                    self.armed = true;
                }
                match self.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => {
                        self.armed = false;
                        Poll::Ready(Err(timeout(limit).into()))
                    }
                    _ => Poll::Pending,
                }
            }
            other => {
                self.armed = false;
                Poll::Ready(other)
            }
        }
    }
}
