//! The connection's byte stream as hyper sees it: the TLS stream with plaintext counts,
//! record-sized flushes, an idle timeout, and a way back to the task after hyper is done.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tls_unix::tokio::TlsStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::service::ConnState;

/// The error a read returns when the connection stayed silent past the idle timeout.
#[derive(Debug)]
pub(crate) struct IdleTimeout(pub(crate) Duration);

impl core::fmt::Display for IdleTimeout {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "no traffic for {:?}", self.0)
    }
}

impl std::error::Error for IdleTimeout {}

/// Whether `e` is an [`IdleTimeout`].
pub(crate) fn is_idle_timeout(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<IdleTimeout>())
}

/// Closes a connection on which nothing moved, either way, for `limit`: a read that waits
/// fails once the last progress (a read or a write) is that old. A download in progress
/// is not idle, however long the client stays silent. The sleep is reset lazily, when it
/// fires early, so a busy connection costs no timer operation per request.
#[derive(Debug)]
pub(crate) struct Idle {
    limit: Duration,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Idle {
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            limit,
            last: Instant::now(),
            sleep: None,
        }
    }

    fn progress(&mut self) {
        self.last = Instant::now();
    }

    /// For a read that is pending: `Ready(Err)` once idle past the limit.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let deadline = self.last + self.limit;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    IdleTimeout(self.limit),
                ));
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

/// The TLS stream as hyper sees it: counts plaintext both ways, and keeps a partial record
/// back at a flush while a `/bytes/N` body is still producing (it follows at once), so
/// bulk leaves as full records and a small response as one.
pub(crate) struct Conn {
    pub(crate) tls: TlsStream<TcpStream>,
    pub(crate) read: u64,
    pub(crate) written: u64,
    pub(crate) truncated: bool,
    pub(crate) state: Arc<ConnState>,
    pub(crate) idle: Idle,
    /// HTTP/1.1 (not HTTP/2): a flush may keep the partial record back while a body is
    /// streaming. Never under HTTP/2, whose flow control could wait for the held bytes.
    pub(crate) hold_partial: bool,
}

impl Conn {
    fn note<T>(&mut self, poll: &Poll<io::Result<T>>) {
        if let Poll::Ready(Err(e)) = poll {
            if tls_unix::tls_error(e) == Some(&tls_core::Error::Truncated) {
                self.truncated = true;
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.tls).poll_read(cx, buf);
        match &poll {
            Poll::Pending => {
                if let Poll::Ready(e) = this.idle.poll_expired(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            Poll::Ready(_) => this.idle.progress(),
        }
        this.read += (buf.filled().len() - before) as u64;
        this.note(&poll);
        poll
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tls).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            this.written += n as u64;
            this.idle.progress();
        }
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tls).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = poll {
            this.written += n as u64;
            this.idle.progress();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.hold_partial && this.state.streaming.load(Ordering::SeqCst) > 0 {
            // Full records went out as they filled (the stream is in coalescing mode);
            // the partial one waits for the body's next chunk, which is ready now.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }
}

/// The connection lent to hyper, which needs to own its transport (`'static`): when
/// hyper drops it (the connection has ended: timeout, error, client close), it goes back
/// `home`, so the task can still send close_notify on it.
pub(crate) struct Lent {
    pub(crate) conn: Option<Box<Conn>>,
    pub(crate) home: Arc<Mutex<Option<Box<Conn>>>>,
}

impl Lent {
    fn conn(&mut self) -> Pin<&mut Conn> {
        // Present from construction until `drop`: nothing else takes it.
        Pin::new(self.conn.as_mut().expect("lent until dropped"))
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut home = self.home.lock().unwrap_or_else(PoisonError::into_inner);
        *home = self.conn.take();
    }
}

impl AsyncRead for Lent {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().conn().poll_read(cx, buf)
    }
}

impl AsyncWrite for Lent {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().conn().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().conn().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().conn().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().conn().poll_shutdown(cx)
    }
}
