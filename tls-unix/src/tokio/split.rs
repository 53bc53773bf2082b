//! The full-duplex split: one engine, two halves, no waiting on each other.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::io::{self, IoSlice, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tls_core::{HandshakeInfo, Session};

use super::{read_into, shutdown, SyncIo, Timer};
use crate::pump::{self, Closing};
use crate::Timeout;

/// The reading half of a split [`TlsStream`](super::TlsStream): `AsyncRead`.
///
/// # Design
///
/// The halves share one `Arc<Mutex<..>>` holding the engine ([`Session`]) and the
/// transport's *writing* half `W`; the reader owns the transport's reading half `R`. The
/// lock (a std mutex) is held only for calls that never block and never await: engine
/// calls, and single `poll_read`/`poll_write` calls on the transport halves that read
/// straight into the engine's input buffer or write straight from its output queue. So a
/// reader waiting for input and a writer waiting for the transport never hold the lock
/// while they wait, and each half makes progress on its own.
///
/// * **The reader writes too.** Input can make the engine queue records that must go out
///   without waiting for the application to write: KeyUpdate replies, and the alert after
///   a fatal error. The reader writes pending output itself, before reading and after each
///   read (never waiting for write space to read), so they leave even while the writer
///   half is idle or dropped.
/// * **Wakers.** Both halves poll the one transport writer `W`, which keeps a single
///   waker. So `W` is always polled with a combined waker that wakes whichever halves are
///   waiting (each half records its task's waker before polling). A writer blocked on
///   backpressure is therefore woken when `W` can take more, even if the reader was the
///   last to poll it, and also when the reader has itself drained queued output.
/// * **Ordering.** Everything goes through the engine's one output queue, so records leave
///   in the order the engine made them, whichever half writes them.
///
/// `shutdown` on the [`WriteHalf`] sends close_notify and shuts `W` down; the reader goes
/// on until the peer's close_notify (`Ok(0)`). Dropping a half sends nothing.
#[derive(Debug)]
pub struct ReadHalf<R, W> {
    reader: R,
    shared: Arc<Mutex<State<W>>>,
    wakers: Arc<Wakers>,
    /// `wakers` as a `Waker`, made once.
    combined: Waker,
    timer: Timer,
}

/// The writing half of a split [`TlsStream`](super::TlsStream): `AsyncWrite`, with the
/// semantics of the whole stream's. See [`ReadHalf`] for the design.
#[derive(Debug)]
pub struct WriteHalf<W> {
    shared: Arc<Mutex<State<W>>>,
    wakers: Arc<Wakers>,
    combined: Waker,
    timer: Timer,
}

#[derive(Debug)]
struct State<W> {
    session: Session,
    writer: W,
    closing: Closing,
}

const READER: usize = 0;
const WRITER: usize = 1;

/// The wakers of the halves' tasks; as a `Waker`, it wakes them all.
#[derive(Debug, Default)]
struct Wakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

impl Wakers {
    fn set(&self, which: usize, waker: &Waker) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match &slots[which] {
            Some(old) if old.will_wake(waker) => {}
            _ => slots[which] = Some(waker.clone()),
        }
    }

    fn wake_one(&self, which: usize) {
        let waker = self.slots.lock().unwrap_or_else(PoisonError::into_inner)[which].take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let taken =
            core::mem::take(&mut *self.slots.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in taken.into_iter().flatten() {
            waker.wake();
        }
    }
}

pub(super) fn new<R, W>(
    reader: R,
    writer: W,
    session: Session,
    closing: Closing,
    read_timer: Timer,
    write_timer: Timer,
) -> (ReadHalf<R, W>, WriteHalf<W>) {
    let shared = Arc::new(Mutex::new(State {
        session,
        writer,
        closing,
    }));
    let wakers = Arc::new(Wakers::default());
    let combined = Waker::from(wakers.clone());
    let read = ReadHalf {
        reader,
        shared: shared.clone(),
        wakers: wakers.clone(),
        combined: combined.clone(),
        timer: read_timer,
    };
    let write = WriteHalf {
        shared,
        wakers,
        combined,
        timer: write_timer,
    };
    (read, write)
}

fn lock<W>(shared: &Mutex<State<W>>) -> MutexGuard<'_, State<W>> {
    // The state stays consistent across a panic in another half (engine calls are atomic
    // from the session's view), so a poisoned lock is taken as it is.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on the engine under the shared lock.
fn with_session<W, T>(shared: &Mutex<State<W>>, f: impl FnOnce(&mut Session) -> T) -> T {
    f(&mut lock(shared).session)
}

impl<R, W> ReadHalf<R, W> {
    /// What the handshake negotiated.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        with_session(&self.shared, |s| s.handshake_info().cloned())
    }

    /// Runs `f` on the engine (for its getters and events) under the shared lock. Keep it
    /// short: the writer half waits for the lock meanwhile.
    pub fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        with_session(&self.shared, f)
    }

    /// Whether `other` is the writing half split from the same stream.
    pub fn is_pair_of(&self, other: &WriteHalf<W>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<W> WriteHalf<W> {
    /// What the handshake negotiated.
    pub fn handshake_info(&self) -> Option<HandshakeInfo> {
        with_session(&self.shared, |s| s.handshake_info().cloned())
    }

    /// Runs `f` on the engine (for its getters and events) under the shared lock. Keep it
    /// short: the reader half waits for the lock meanwhile.
    pub fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        with_session(&self.shared, f)
    }

    /// Queues a TLS 1.3 KeyUpdate (asking the peer to update its keys too); it goes out with
    /// the next write or flush of this half, or the next read of the other.
    pub fn refresh_keys(&self) -> io::Result<()> {
        Ok(with_session(&self.shared, Session::refresh_keys)?)
    }
}

/// The reader's view of the transport: reads from its own half, writes to the shared one.
struct Duplex<A, B> {
    read: A,
    write: B,
    wrote: bool,
}

impl<A: Read, B> Read for Duplex<A, B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read.read(buf)
    }
}

impl<A, B: Write> Write for Duplex<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.write.write(buf)?;
        self.wrote |= n > 0;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write.flush()
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> AsyncRead for ReadHalf<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.wakers.set(READER, cx.waker());
        let mut wcx = Context::from_waker(&this.combined);
        let mut state = lock(&this.shared);
        let State {
            session,
            writer,
            closing,
        } = &mut *state;
        let mut io = Duplex {
            read: SyncIo::new(&mut this.reader, cx),
            write: SyncIo::new(writer, &mut wcx),
            wrote: false,
        };
        let result = read_into(session, &mut io, buf, closing.notified);
        let wrote = io.wrote;
        drop(state);
        if wrote {
            // The writer may be waiting for the room just made in the output queue.
            this.wakers.wake_one(WRITER);
        }
        this.timer.settle(cx, result, Timeout::Read)
    }
}

impl<W: AsyncWrite + Unpin> WriteHalf<W> {
    /// Runs a write-side pump operation under the lock, with the combined waker.
    fn run<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut Session, &mut SyncIo<'_, '_, W>, &mut Closing) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        self.wakers.set(WRITER, cx.waker());
        let mut wcx = Context::from_waker(&self.combined);
        let mut state = lock(&self.shared);
        let State {
            session,
            writer,
            closing,
        } = &mut *state;
        let mut io = SyncIo::new(writer, &mut wcx);
        let result = op(session, &mut io, closing);
        drop(state);
        self.timer.settle(cx, result, Timeout::Write)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WriteHalf<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().run(cx, |s, io, _| pump::write(s, io, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .run(cx, |s, io, _| pump::write_vectored(s, io, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().run(cx, |s, io, closing| {
            pump::flush(s, io, closing.notified).and_then(|()| io.flush())
        })
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .run(cx, |s, io, closing| shutdown(s, io, closing))
    }
}
