//! The one pump between a [`Session`] and a transport, shared by every flavour.
//!
//! The transport is seen through `std::io::Read`/`Write`. A blocking socket blocks in them;
//! a non-blocking socket, or tokio's `poll_*` behind an adapter that turns `Pending` into
//! [`io::ErrorKind::WouldBlock`], says "not now" with `WouldBlock`, which the pump passes
//! up unchanged after doing everything it could. So the same code is the blocking loop and
//! one step of a readiness loop.
//!
//! Rules:
//! 1. Pending output is written first, before anything is read, so handshake flights,
//!    KeyUpdate replies and alerts leave as soon as they exist.
//! 2. Reading never waits for write space: when the transport takes no more output, the
//!    plaintext read goes on reading input (rule 1 of the engine's contract).
//! 3. Every loop turn moves at least one byte (a read, a write or the engine taking input),
//!    or returns: no loop spins. A state where nothing can move is reported as an error
//!    ([`stalled`]) instead.
//! 4. Bytes go straight between the socket and the engine's buffers:
//!    [`Session::tls_read_buffer`] is read into, [`Session::pending_tls`] is written from.
//! 5. After a fatal TLS error the alert the engine queued is written once (a "last gasp",
//!    errors ignored) before the error is returned.

use std::io::{self, IoSlice, Read, Write};

use tls_core::Session;

use crate::error::stalled;

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Turns an engine error into the `io::Error` to return, writing the alert first if the
/// error is fatal.
pub(crate) fn fail<W: Write + ?Sized>(
    s: &mut Session,
    io: &mut W,
    e: tls_core::Error,
) -> io::Error {
    if e.is_fatal() && s.has_output() {
        if let Ok(n) = io.write(s.pending_tls()) {
            s.tls_written(n);
            let _ = io.flush();
        }
    }
    e.into()
}

/// Writes pending output until none is left (then flushes the transport) or the transport
/// says not now (`WouldBlock`, with the rest still pending).
pub(crate) fn flush_output<W: Write + ?Sized>(s: &mut Session, io: &mut W) -> io::Result<()> {
    let mut wrote = false;
    while s.has_output() {
        match io.write(s.pending_tls()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                s.tls_written(n);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if wrote {
        io.flush()?;
    }
    Ok(())
}

/// How far our side of the connection has closed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Closing {
    /// Our close_notify, and everything queued before it, has been written.
    pub(crate) notified: bool,
    /// The transport's writing side has been shut down after it.
    pub(crate) shut: bool,
}

/// [`flush_output`], or, once our close_notify has been written (`notified`), drops what is
/// queued: nothing may follow close_notify. (The engine can queue a record after it: its
/// answer to a KeyUpdate the peer sent before it read our close_notify. Writing that would
/// break the protocol, and fail with `BrokenPipe` once the transport is half-closed.)
pub(crate) fn send_output<W: Write + ?Sized>(
    s: &mut Session,
    io: &mut W,
    notified: bool,
) -> io::Result<()> {
    if notified {
        let n = s.pending_tls().len();
        s.tls_written(n);
        return Ok(());
    }
    flush_output(s, io)
}

/// Reads once from the transport straight into the engine. Returns the bytes read; `0`
/// means end of stream, which the engine is told about.
fn read_input<T: Read + Write + ?Sized>(s: &mut Session, io: &mut T) -> io::Result<usize> {
    let buf = s.tls_read_buffer();
    if buf.is_empty() {
        return Err(match s.error() {
            Some(e) => e.clone().into(),
            None => stalled("the engine takes no input and has nothing to return"),
        });
    }
    let n = loop {
        match io.read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if would_block(&e) {
                    // Nothing to read: the connection is quiet, so the engine gives back
                    // its empty buffers (an idle connection holds only rustls' state).
                    s.release_buffers();
                }
                return Err(e);
            }
        }
    };
    if n == 0 {
        s.read_tls_eof();
    } else if let Err(e) = s.commit_tls_read(n) {
        return Err(fail(s, io, e));
    }
    Ok(n)
}

/// Runs the handshake to completion (`Ok`, with its last flight written) or until the
/// transport says not now (`WouldBlock`; call again when it is ready).
///
/// Once the handshake is complete this is a no-op that touches neither the transport nor
/// output still queued (the read and write paths send that), so that a read never waits
/// for write space on its way.
pub(crate) fn handshake<T: Read + Write + ?Sized>(s: &mut Session, io: &mut T) -> io::Result<()> {
    if let Some(e) = s.error() {
        return Err(e.clone().into());
    }
    if !s.is_handshaking() {
        return Ok(());
    }
    loop {
        flush_output(s, io)?;
        if let Some(e) = s.error() {
            // A fatal error: truncated by the peer during the handshake, or earlier.
            return Err(e.clone().into());
        }
        if !s.is_handshaking() {
            return Ok(());
        }
        read_input(s, io)?;
    }
}

/// Reads plaintext into `buf` (the session's handshake must be complete, or this reads
/// only what follows it). `Ok(0)` only for an empty `buf` or after the peer's close_notify.
///
/// `notified`: our close_notify has been written (see [`send_output`]).
pub(crate) fn read<T: Read + Write + ?Sized>(
    s: &mut Session,
    io: &mut T,
    buf: &mut [u8],
    notified: bool,
) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    read_by(s, io, notified, |s| s.recv(buf))
}

/// [`read`] with the engine call that takes plaintext given by the caller: `take` is
/// [`Session::recv`] or [`Session::recv_with`] (which copies into memory that need not be
/// initialised first, such as tokio's `ReadBuf`). `take` must have room for at least one
/// byte, so `Ok(0)` from it means the peer's close_notify.
pub(crate) fn read_by<T: Read + Write + ?Sized>(
    s: &mut Session,
    io: &mut T,
    notified: bool,
    mut take: impl FnMut(&mut Session) -> Result<usize, tls_core::Error>,
) -> io::Result<usize> {
    loop {
        // Control records (KeyUpdate replies, alerts) and anything left by an earlier
        // write go out first, but reading never waits for write space.
        match send_output(s, io, notified) {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e),
        }
        match take(s) {
            Ok(n) => {
                if n > 0 && s.has_output() {
                    // What this input produced (a KeyUpdate reply); errors will show again.
                    let _ = send_output(s, io, notified);
                }
                return Ok(n);
            }
            Err(tls_core::Error::WouldBlock) => {}
            Err(e) => return Err(fail(s, io, e)),
        }
        read_input(s, io)?;
    }
}

/// Encrypts plaintext from `buf` and writes it, with tokio-rustls' semantics: returns as
/// soon as the transport takes no more output, with the count of plaintext bytes the
/// engine took (encrypted and queued: they will be written by later calls), or the
/// transport's error (`WouldBlock` included) if it took none. The handshake must be
/// complete.
pub(crate) fn write<W: Write + ?Sized>(
    s: &mut Session,
    io: &mut W,
    buf: &[u8],
) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    if s.is_handshaking() {
        return Err(tls_core::Error::Handshaking.into());
    }
    let mut taken = 0;
    loop {
        // The engine may take nothing while output is queued (it waits for room for a
        // full record); the flush below then makes the progress.
        let had_output = s.has_output();
        let n = match s.send(&buf[taken..]) {
            Ok(n) => n,
            Err(e) => return Err(fail(s, io, e)),
        };
        taken += n;
        match flush_output(s, io) {
            Ok(()) => {}
            // The engine has taken these bytes and will send them: report them, so the
            // caller does not write them twice. The transport's error (or WouldBlock)
            // shows again on the next call, which finds the output still queued.
            Err(_) if taken > 0 => return Ok(taken),
            Err(e) => return Err(e),
        }
        if taken == buf.len() {
            return Ok(taken);
        }
        if n == 0 && !had_output {
            return Err(stalled("the engine takes no plaintext and has no output"));
        }
    }
}

/// [`write`] for several slices, sealing their bytes (in order) into as few records as
/// they fill, with the same partial-write semantics: the count is of plaintext taken from
/// the front of the concatenation.
///
/// In coalescing mode the engine gathers the slices itself. Otherwise a slice of a
/// record's worth or more is encrypted straight from the caller's memory (whole records
/// only while more slices follow, so its tail joins them), and shorter slices are copied,
/// up to one record of plaintext, into a gather buffer first: a copy of plaintext, never
/// of a record.
pub(crate) fn write_vectored<W: Write + ?Sized>(
    s: &mut Session,
    io: &mut W,
    bufs: &[IoSlice<'_>],
) -> io::Result<usize> {
    let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
        return Ok(0);
    };
    let bufs = &bufs[first..];
    if s.is_coalescing() {
        let mut taken = 0;
        for buf in bufs {
            match write(s, io, buf) {
                Ok(n) => {
                    taken += n;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(_) if taken > 0 => break,
                Err(e) => return Err(e),
            }
        }
        return Ok(taken);
    }
    let record = s.max_fragment().max(1);
    let head = &bufs[0];
    let more = bufs[1..].iter().any(|b| !b.is_empty());
    if head.len() >= record {
        let whole = if more {
            head.len() - head.len() % record
        } else {
            head.len()
        };
        return write(s, io, &head[..whole]);
    }
    if !more {
        return write(s, io, head);
    }
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let mut gather = Vec::with_capacity(total.min(record));
    for buf in bufs {
        let n = (record - gather.len()).min(buf.len());
        gather.extend_from_slice(&buf[..n]);
        if gather.len() == record {
            break;
        }
    }
    write(s, io, &gather)
}

/// Encrypts data gathered in coalescing mode and writes all pending output (then flushes
/// the transport).
pub(crate) fn flush<W: Write + ?Sized>(
    s: &mut Session,
    io: &mut W,
    notified: bool,
) -> io::Result<()> {
    if let Err(e) = s.flush() {
        return Err(fail(s, io, e));
    }
    send_output(s, io, notified)
}

/// Queues close_notify (once; not after a fatal error, when there is none to send) and
/// writes all pending output, then notes that it was written. Does not touch the
/// transport's own shutdown.
pub(crate) fn close<W: Write + ?Sized>(
    s: &mut Session,
    io: &mut W,
    closing: &mut Closing,
) -> io::Result<()> {
    if s.error().is_none() {
        if let Err(e) = s.close() {
            return Err(fail(s, io, e));
        }
    }
    send_output(s, io, closing.notified)?;
    closing.notified = true;
    Ok(())
}
