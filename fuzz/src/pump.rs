//! `unix_pump`: a `tls_unix` stream (blocking or non-blocking flavour) over an adversarial
//! in-memory transport, with an honest tls-core peer session on the other end.
//!
//! Script: two header bytes, a behaviour script, then operations.
//!
//! * Header 0: bit 0 the stream is the server (else the client); bit 1 the non-blocking
//!   flavour (else blocking); bits 2-6 the [`Flavour`]; bit 7 the peer ends with
//!   close_notify (else its transport just ends).
//! * Header 1: bits 0-1 the stream's [`limits`](crate::limits); bit 2 (non-blocking) a
//!   handshake timeout that never runs out, so the clock paths run.
//! * A `u8` length and that many behaviour bytes: each transport `read` or `write` takes the
//!   next one (then everything is normal): `b % 8` = 0 `WouldBlock`, 1 `Interrupted`, 2 a
//!   short read or write of `1 + (b >> 3) % 16` bytes, 3 `ConnectionReset`, 4 (writes)
//!   `Ok(0)`; else normal.
//! * Operations: the stream's handshake, read, write, flush, close_notify, shutdown and
//!   KeyUpdate; the peer's send, close and KeyUpdate; transport EOF; a corrupted byte; the
//!   transport cut (EOF anywhere); more behaviour bytes.
//!
//! Checked: every stream call returns, and its transport calls are bounded by the bytes it
//! moved plus the scripted misbehaviour (no spinning); plaintext read is a prefix of what the
//! peer sent; `Ok(0)` only after the peer's close_notify and every byte before it; transport
//! EOF without close_notify is `UnexpectedEof` carrying `tls_core::Error::Truncated`, never a
//! clean end; transport errors pass through only when the transport made them; TLS errors
//! are sticky; the pump never reports itself stalled, never surfaces `Interrupted`; without
//! tampering every byte arrives both ways.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::time::Duration;

use tls_core::{Limits, Session};
use tls_unix::{blocking, nonblocking, tls_error, HalfClose, Options};

mod transport;

pub use transport::Transport;

use crate::{
    assert_same_error, assert_stream, client, configs, limits, server, stream, Flavour, Input,
};

/// The stream under test, in either flavour.
enum Stream {
    Blocking(blocking::TlsStream<Transport>),
    Nonblocking(nonblocking::TlsStream<Transport>),
}

impl Stream {
    fn transport(&mut self) -> &mut Transport {
        match self {
            Self::Blocking(s) => s.get_mut(),
            Self::Nonblocking(s) => s.get_mut(),
        }
    }

    fn session(&self) -> &Session {
        match self {
            Self::Blocking(s) => s.session(),
            Self::Nonblocking(s) => s.session(),
        }
    }

    fn handshake(&mut self) -> io::Result<()> {
        match self {
            Self::Blocking(s) => s.handshake(),
            Self::Nonblocking(s) => s.handshake(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Blocking(s) => s.read(buf),
            Self::Nonblocking(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Blocking(s) => s.write(buf),
            Self::Nonblocking(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Blocking(s) => s.flush(),
            Self::Nonblocking(s) => s.flush(),
        }
    }

    fn close_notify(&mut self) -> io::Result<()> {
        match self {
            Self::Blocking(s) => s.close_notify(),
            Self::Nonblocking(s) => s.close_notify(),
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Blocking(s) => s.shutdown(),
            Self::Nonblocking(s) => s.shutdown(),
        }
    }

    fn refresh_keys(&mut self) -> io::Result<()> {
        match self {
            Self::Blocking(s) => s.refresh_keys(),
            Self::Nonblocking(s) => s.refresh_keys(),
        }
    }
}

struct Run {
    stream: Stream,
    tampered: bool,
    cut: bool,
    received: usize,
    written: usize,
    clean_end: bool,
    /// The first fatal TLS error a call returned.
    fatal: Option<tls_core::Error>,
}

/// Runs one script.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let h0 = input.u8();
    let h1 = input.u8();
    let script_len = usize::from(input.u8());
    let script: VecDeque<u8> = input.bytes(script_len).iter().copied().collect();
    let stream_is_server = h0 & 1 != 0;
    let flavour = Flavour::from_bits(h0 >> 2);
    let (cc, sc) = configs(flavour);
    let options = Options {
        limits: limits(h1),
        handshake_timeout: (h1 & 4 != 0).then_some(Duration::from_secs(3600)),
        ..Options::default()
    };
    let (victim, peer) = if stream_is_server {
        (server(sc, options.limits), client(cc, Limits::default()))
    } else {
        (client(cc, options.limits), server(sc, Limits::default()))
    };
    let transport = Transport {
        peer,
        to_victim: VecDeque::new(),
        from_victim: Vec::new(),
        script,
        eof: false,
        shut: Cell::new(false),
        calls: 0,
        moved: 0,
        scripted: 0,
        reset: false,
        write_zero: false,
        peer_sent: 0,
        peer_closed_at: None,
        peer_received: 0,
        dropped: false,
        close_on_wire: false,
        key_updates: 0,
        our_key_updates: 0,
    };
    let stream = if h0 & 2 != 0 {
        Stream::Nonblocking(nonblocking::TlsStream::new(victim, transport, options))
    } else {
        Stream::Blocking(blocking::TlsStream::new(victim, transport))
    };
    let mut run = Run {
        stream,
        tampered: false,
        cut: false,
        received: 0,
        written: 0,
        clean_end: false,
        fatal: None,
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 256 {
        ops += 1;
        run.step(&mut input);
        if crate::trace() {
            let t = run.stream.transport();
            eprintln!(
                "after op {ops}: to_victim {} from_victim {} eof {} dropped {} peer_sent {} \
                 closed_at {:?} received {} written {} peer_received {} cut {} tampered {}",
                t.to_victim.len(),
                t.from_victim.len(),
                t.eof,
                t.dropped,
                t.peer_sent,
                t.peer_closed_at,
                run.received,
                run.written,
                t.peer_received,
                run.cut,
                run.tampered
            );
        }
    }
    run.finish(h0 & 0x80 != 0);
}

impl Run {
    fn step(&mut self, input: &mut Input<'_>) {
        match input.u8() % 14 {
            0 => {
                let r = self.call(|s| s.handshake().map(|()| 0));
                self.check(&r, "handshake");
            }
            1 => {
                let size = usize::from(input.u16()) % 20_000;
                let _ = self.read(size);
            }
            2 => {
                let len = usize::from(input.u16()) % 20_000;
                let data = stream(self.written, len);
                let r = self.call(|s| s.write(&data));
                if let Ok(n) = &r {
                    assert!(*n <= len, "write took {n} of {len}");
                    self.written += n;
                }
                self.check(&r, "write");
            }
            3 => {
                let r = self.call(|s| s.flush().map(|()| 0));
                self.check(&r, "flush");
            }
            4 => {
                let r = self.call(|s| s.close_notify().map(|()| 0));
                self.check(&r, "close_notify");
            }
            5 => {
                let r = self.call(|s| s.shutdown().map(|()| 0));
                self.check(&r, "shutdown");
            }
            6 => {
                // Our KeyUpdate request makes the peer answer with a KeyUpdate of its own,
                // which rustls counts against the 32 too, whenever the peer reads it (maybe
                // after its next data): at most 16 in all, so 16 of the peer's own fit.
                let t = self.stream.transport();
                if t.our_key_updates < 16 {
                    t.our_key_updates += 1;
                    let r = self.call(|s| s.refresh_keys().map(|()| 0));
                    self.check(&r, "refresh_keys");
                }
            }
            7 => {
                let len = usize::from(input.u16()) % 20_000;
                let t = self.stream.transport();
                if let Ok(n) = t.peer.send(&stream(t.peer_sent, len)) {
                    t.peer_sent += n;
                    if n > 0 {
                        t.key_updates = 0;
                    }
                }
            }
            8 => {
                let t = self.stream.transport();
                if t.peer.close().is_ok() && t.peer_closed_at.is_none() {
                    t.peer_closed_at = Some(t.peer_sent);
                }
            }
            9 => {
                // An honest peer: rustls (like BoringSSL) fails a connection after 32
                // KeyUpdates with no application data between them (see op 6).
                let t = self.stream.transport();
                if t.key_updates < 16 && t.peer.refresh_keys().is_ok() {
                    t.key_updates += 1;
                }
            }
            10 => {
                let t = self.stream.transport();
                t.peer_step();
                t.eof = true;
            }
            11 => {
                let (pos, mask) = (usize::from(input.u16()), input.u8());
                let t = self.stream.transport();
                t.peer_step();
                if !t.to_victim.is_empty() && mask != 0 {
                    let at = pos % t.to_victim.len();
                    t.to_victim[at] ^= mask;
                    self.tampered = true;
                }
            }
            12 => {
                let keep = usize::from(input.u16());
                let t = self.stream.transport();
                t.peer_step();
                let keep = keep % (t.to_victim.len() + 1);
                t.to_victim.truncate(keep);
                t.eof = true;
                self.cut = true;
            }
            _ => {
                let len = usize::from(input.u8());
                let more = input.bytes(len);
                self.stream.transport().script.extend(more.iter().copied());
            }
        }
    }

    /// Runs one stream call with the transport's counters reset, and checks it did not
    /// spin: every transport call moved bytes, ended the call, or was scripted.
    fn call(&mut self, op: impl FnOnce(&mut Stream) -> io::Result<usize>) -> io::Result<usize> {
        let t = self.stream.transport();
        t.calls = 0;
        t.moved = 0;
        t.scripted = 0;
        t.reset = false;
        t.write_zero = false;
        let r = op(&mut self.stream);
        if crate::trace() {
            eprintln!("  call -> {r:?}");
        }
        let t = self.stream.transport();
        assert!(
            t.calls <= t.moved + t.scripted + 16,
            "{} transport calls moved {} bytes with {} scripted: spinning",
            t.calls,
            t.moved,
            t.scripted
        );
        r
    }

    fn read(&mut self, size: usize) -> io::Result<usize> {
        let mut buf = vec![0u8; size];
        let r = self.call(|s| s.read(&mut buf));
        match &r {
            Ok(0) if size > 0 => {
                let t = self.stream.transport();
                assert_eq!(
                    t.peer_closed_at,
                    Some(self.received),
                    "Ok(0) after {} bytes; the peer closed after {:?}",
                    self.received,
                    t.peer_closed_at
                );
                self.clean_end = true;
            }
            Ok(n) => {
                assert!(*n <= size);
                assert!(*n == 0 || !self.clean_end, "data after Ok(0)");
                assert_stream(self.received, &buf[..*n], "the stream read");
                self.received += n;
            }
            Err(_) => {}
        }
        self.check(&r, "read");
        r
    }

    fn check(&mut self, r: &io::Result<usize>, what: &str) {
        let Err(e) = r else {
            if let (Some(first), Some(now)) = (&self.fatal, self.stream.session().error()) {
                assert_same_error(Some(first), Some(now), "the fatal error changed");
            }
            return;
        };
        let t = self.stream.transport();
        let (reset, write_zero, shut, eof) = (t.reset, t.write_zero, t.shut.get(), t.eof);
        if let Some(te) = tls_error(e) {
            if te.is_fatal() {
                if let Some(first) = &self.fatal {
                    assert_same_error(Some(first), Some(te), &format!("{what}: a second error"));
                }
                self.fatal = Some(te.clone());
                assert_same_error(self.stream.session().error(), Some(te), what);
            }
            match te {
                tls_core::Error::Truncated => {
                    assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{what}: {e}");
                    assert!(eof, "{what}: Truncated without the transport ending");
                }
                tls_core::Error::Tls(_) | tls_core::Error::AlertReceived(_) => {
                    assert!(self.tampered, "{what}: {e} on an untampered stream");
                }
                _ => {}
            }
            return;
        }
        let msg = e.to_string();
        assert!(!msg.contains("stalled"), "{what}: {msg}");
        match e.kind() {
            ErrorKind::WouldBlock => {}
            ErrorKind::ConnectionReset => assert!(reset, "{what}: reset nobody made"),
            ErrorKind::BrokenPipe => assert!(shut || reset, "{what}: {e}"),
            ErrorKind::WriteZero => assert!(write_zero, "{what}: {e}"),
            _ => panic!("{what}: unexpected error {e:?}"),
        }
    }

    fn finish(mut self, peer_closes: bool) {
        // A fatal error (truncation included) ends the stream both ways: what the engine
        // had queued for the peer stays unsent.
        let failed_early = self.fatal.is_some();
        // The transport behaves from now on; finish the handshake and move what waits.
        self.stream.transport().script.clear();
        if !self.stream.transport().eof {
            let mut idle = 0;
            for _ in 0..10_000 {
                match self.read(20_000) {
                    Ok(1..) => idle = 0,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        idle += 1;
                        if idle == 2 {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            let t = self.stream.transport();
            t.peer_step();
            if peer_closes && t.peer.close().is_ok() && t.peer_closed_at.is_none() {
                t.peer_closed_at = Some(t.peer_sent);
            }
            t.peer_step();
            t.eof = true;
        }
        // What the peer queued after the transport ended is lost (and counts as a cut);
        // output the peer makes from here on (KeyUpdate replies) is dropped silently.
        self.stream.transport().peer_step();
        let cut = self.cut || self.stream.transport().dropped;
        let mut last = None;
        for _ in 0..10_000 {
            match self.read(20_000) {
                Ok(1..) => {}
                other => {
                    last = Some(other);
                    break;
                }
            }
        }
        let last = last.expect("reading ended");
        if let Err(e) = &last {
            assert_ne!(e.kind(), ErrorKind::WouldBlock, "WouldBlock after EOF");
        }
        // Pending output written by the last reads reaches the peer.
        for _ in 0..1000 {
            let t = self.stream.transport();
            let before = t.from_victim.len();
            t.peer_step();
            if t.from_victim.is_empty() || t.from_victim.len() == before {
                break;
            }
        }
        let t = self.stream.transport();
        let peer_closed = t.close_on_wire;
        if self.tampered || self.failed_before_end() {
            return;
        }
        if peer_closed && !cut {
            assert!(matches!(last, Ok(0)), "clean close ended with {last:?}");
        }
        if !peer_closed {
            let e = last
                .as_ref()
                .expect_err("EOF without close_notify gave Ok(0)");
            assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
            assert_eq!(tls_error(e), Some(&tls_core::Error::Truncated), "{e}");
        }
        let handshaking = self.stream.session().is_handshaking();
        let t = self.stream.transport();
        if !cut {
            assert_eq!(self.received, t.peer_sent, "data lost on the way in");
            if !failed_early && t.peer.error().is_none() && !handshaking {
                assert_eq!(t.peer_received, self.written, "data lost on the way out");
            }
        }
    }

    /// Whether a fatal error other than truncation ended the stream.
    fn failed_before_end(&self) -> bool {
        matches!(&self.fatal, Some(e) if !matches!(e, tls_core::Error::Truncated))
    }
}
