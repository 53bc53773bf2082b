//! The shared interpreter: runs one side's script against an [`Endpoint`] (the small set
//! of primitives an adapter provides) and records its [`Trace`].
//!
//! Two drivers: [`run_threaded`] (one thread per side; the endpoint blocks, or returns
//! `Pending` and then [`Endpoint::wait`]s for readiness) and [`run_stepped`] (both sides
//! and the transport in one thread, for backends that are polled: tls-core in memory,
//! smoltcp). Both give the same trace for the same behaviour.

use std::task::Poll;

use tls_core::Event;

use crate::conformance::relay::Relayed;
use crate::conformance::scenarios::{Configs, Connection};
use crate::conformance::trace::{Entry, Fail, Handshake, Recorder, Trace};

/// Client or server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Client, Side::Server];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// One step of a side's script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Complete the handshake → [`Entry::Handshake`].
    Handshake,
    /// Write the next `bytes` bytes of this side's data stream in write calls of at most
    /// `chunk` bytes, then flush → [`Entry::Wrote`].
    Write { bytes: usize, chunk: usize },
    /// Read exactly this many bytes → [`Entry::Read`] (coalesced).
    Read(usize),
    /// Read exactly `bytes` bytes in calls of at most `buf` bytes → [`Entry::Read`].
    ReadBy { bytes: usize, buf: usize },
    /// Read until the end of the stream → reads, then [`Entry::Eof`] or an error.
    ReadToEnd,
    /// Send close_notify and half-close the transport → [`Entry::Closed`].
    Close,
    /// Ask for a TLS 1.3 KeyUpdate → [`Entry::KeyUpdate`].
    KeyUpdate,
}

/// Shorthand: write `n` bytes in calls of up to 64 KiB.
pub const fn write(n: usize) -> Op {
    Op::Write {
        bytes: n,
        chunk: 64 * 1024,
    }
}

/// The primitives an adapter implements for one side of a connection.
///
/// Each call does what it can now: `Ready` with the outcome, or `Pending` when it has to
/// wait for the transport (a blocking endpoint never returns `Pending`). Errors are
/// normalised with the `Fail::from_*` constructors; a clean end of stream is `read`
/// returning `Ok(0)`.
pub trait Endpoint {
    /// Completes the handshake (a no-op once done).
    fn handshake(&mut self) -> Poll<Result<Handshake, Fail>>;
    /// Takes some of `data` (at least one byte when `Ready(Ok)`).
    fn write(&mut self, data: &[u8]) -> Poll<Result<usize, Fail>>;
    /// Pushes everything written so far onto the transport.
    fn flush(&mut self) -> Poll<Result<(), Fail>>;
    /// Reads plaintext; `Ok(0)` only at a clean end of stream.
    fn read(&mut self, buf: &mut [u8]) -> Poll<Result<usize, Fail>>;
    /// Sends close_notify and half-closes the transport; reading goes on.
    fn close(&mut self) -> Poll<Result<(), Fail>>;
    /// Starts a TLS 1.3 KeyUpdate.
    fn key_update(&mut self) -> Poll<Result<(), Fail>>;
    /// Moves the engine's pending events into `out`.
    fn events(&mut self, out: &mut Vec<Event>);
    /// Threaded driver only: blocks until a `Pending` call may make progress, or fails
    /// with a timeout.
    fn wait(&mut self) -> Result<(), Fail> {
        Err(Fail::Other("this endpoint never returns Pending".into()))
    }
}

/// The byte at offset `i` of `side`'s data stream: every write sends the next bytes of
/// it, so a reader can check what it got against the offset it has reached.
pub fn stream_byte(side: Side, i: usize) -> u8 {
    let salt = match side {
        Side::Client => 0x5a,
        Side::Server => 0xa5,
    };
    ((i % 251) as u8) ^ ((i / 251) as u8).wrapping_mul(31) ^ salt
}

/// `len` bytes of `side`'s data stream from `offset`.
pub fn stream_bytes(side: Side, offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| stream_byte(side, i))
        .collect()
}

/// Where one side is in its script.
pub struct SideRunner {
    side: Side,
    script: Vec<Op>,
    pc: usize,
    /// Progress inside the current op (bytes written or read).
    op_done: usize,
    /// Write op: all bytes accepted, flushing.
    flushing: bool,
    /// Offset reached in our data stream (what we have written).
    sent: usize,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    rec: Recorder,
    events: Vec<Event>,
    finished: bool,
}

/// What a call to [`SideRunner::advance`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advance {
    /// The script ended (all ops done, or one failed).
    Done,
    /// Some op made progress and the next call returned `Pending`.
    Progress,
    /// Nothing moved.
    Blocked,
}

impl SideRunner {
    pub fn new(side: Side, script: &[Op]) -> Self {
        Self {
            side,
            script: script.to_vec(),
            pc: 0,
            op_done: 0,
            flushing: false,
            sent: 0,
            buf: vec![0; 32 * 1024],
            chunk: Vec::new(),
            rec: Recorder::default(),
            events: Vec::new(),
            finished: false,
        }
    }

    /// Ends the script with an error that did not come from the endpoint (a timeout).
    pub fn fail(&mut self, f: Fail) {
        if !self.finished {
            self.rec.push(Entry::Error(f));
            self.finished = true;
        }
    }

    fn next_op(&mut self, entry: Option<Entry>) {
        if let Some(e) = entry {
            self.rec.push(e);
        }
        self.pc += 1;
        self.op_done = 0;
        self.flushing = false;
    }

    /// Runs ops until one returns `Pending` or the script ends.
    pub fn advance(&mut self, ep: &mut dyn Endpoint) -> Advance {
        if self.finished {
            // The application has let go of the connection: later events are not seen
            // (a threaded side has dropped its endpoint by now).
            return Advance::Done;
        }
        let mut progress = false;
        let result = loop {
            if self.finished {
                break Advance::Done;
            }
            let Some(&op) = self.script.get(self.pc) else {
                self.finished = true;
                break Advance::Done;
            };
            match self.step(ep, op) {
                Poll::Ready(Ok(moved)) => progress |= moved,
                Poll::Ready(Err(f)) => {
                    let f = match op {
                        Op::Read(_) | Op::ReadBy { .. } | Op::ReadToEnd => {
                            sticky(ep, f, &mut self.buf)
                        }
                        _ => f,
                    };
                    self.rec.push(Entry::Error(f));
                    self.finished = true;
                    progress = true;
                }
                Poll::Pending => {
                    break if progress {
                        Advance::Progress
                    } else {
                        Advance::Blocked
                    };
                }
            }
        };
        ep.events(&mut self.events);
        for e in self.events.drain(..) {
            self.rec.event(e);
        }
        result
    }

    /// One primitive call for `op`. `Ready(Ok(true))`: something moved.
    fn step(&mut self, ep: &mut dyn Endpoint, op: Op) -> Poll<Result<bool, Fail>> {
        match op {
            Op::Handshake => {
                let hs = ready!(ep.handshake())?;
                self.next_op(Some(Entry::Handshake(hs)));
            }
            Op::Write { bytes, chunk } => {
                if !self.flushing {
                    if self.chunk.is_empty() {
                        let len = (bytes - self.op_done).min(chunk);
                        self.chunk = stream_bytes(self.side, self.sent, len);
                    }
                    let n = ready!(ep.write(&self.chunk))?;
                    assert!(n > 0 && n <= self.chunk.len(), "write took {n}");
                    self.op_done += n;
                    self.sent += n;
                    self.chunk.drain(..n);
                    if self.op_done == bytes {
                        self.flushing = true;
                    }
                } else {
                    ready!(ep.flush())?;
                    self.next_op(Some(Entry::Wrote(bytes)));
                }
            }
            Op::Read(want) => return self.read_exact(ep, want, usize::MAX),
            Op::ReadBy { bytes, buf } => return self.read_exact(ep, bytes, buf),
            Op::ReadToEnd => {
                let n = ready!(ep.read(&mut self.buf))?;
                if n == 0 {
                    self.next_op(Some(Entry::Eof));
                } else {
                    self.rec.read(&self.buf[..n]);
                }
            }
            Op::Close => {
                ready!(ep.close())?;
                self.next_op(Some(Entry::Closed));
            }
            Op::KeyUpdate => {
                ready!(ep.key_update())?;
                self.next_op(Some(Entry::KeyUpdate));
            }
        }
        Poll::Ready(Ok(true))
    }

    /// One read toward `want` bytes, with at most `chunk` bytes per call.
    fn read_exact(
        &mut self,
        ep: &mut dyn Endpoint,
        want: usize,
        chunk: usize,
    ) -> Poll<Result<bool, Fail>> {
        let room = (want - self.op_done).min(self.buf.len()).min(chunk);
        let n = ready!(ep.read(&mut self.buf[..room]))?;
        if n == 0 {
            // The stream ended early: record it and stop.
            self.rec.push(Entry::Eof);
            self.finished = true;
            return Poll::Ready(Ok(true));
        }
        self.rec.read(&self.buf[..n]);
        self.op_done += n;
        if self.op_done == want {
            self.next_op(None);
        }
        Poll::Ready(Ok(true))
    }

    pub fn finish(self) -> Trace {
        self.rec.finish()
    }
}

/// A failed read's error, checked to be sticky: a TLS failure (truncation, an alert, a
/// rejected record) is fatal, so reading again must fail the same way at once, never
/// give data, a clean end or `Pending`. A transport error or timeout is returned as is.
fn sticky(ep: &mut dyn Endpoint, f: Fail, buf: &mut [u8]) -> Fail {
    if !matches!(f, Fail::Truncated | Fail::AlertReceived(_) | Fail::Tls(_)) {
        return f;
    }
    match ep.read(buf) {
        Poll::Ready(Err(again)) if again == f => f,
        again => Fail::Other(format!(
            "{f:?} was not sticky: the next read gave {again:?}"
        )),
    }
}

/// `?` for `Poll<Result<T, Fail>>`: returns `Pending` or the error.
macro_rules! ready {
    ($e:expr) => {
        match $e {
            Poll::Ready(r) => r,
            Poll::Pending => return Poll::Pending,
        }
    };
}
use ready;

/// Runs `runner` on its own thread's endpoint until the script ends.
pub fn run_threaded(runner: &mut SideRunner, ep: &mut dyn Endpoint) {
    loop {
        match runner.advance(ep) {
            Advance::Done => return,
            Advance::Progress | Advance::Blocked => {
                if let Err(f) = ep.wait() {
                    runner.fail(f);
                    return;
                }
            }
        }
    }
}

/// How many rounds in a row may pass without progress before a stepped run is declared
/// stalled (each idle round lets the transport's clock jump to its next timer).
pub const STALL_ROUNDS: usize = 2_000;
/// The longest a stepped connection may take in real time.
pub const WALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
/// The most rounds a stepped connection may take.
pub const MAX_ROUNDS: usize = 20_000_000;

/// Runs both sides and the transport in this thread: each round advances the client's
/// script, the server's script, then calls `drive` (which moves bytes and returns whether
/// anything moved). Scripts still running when the run stalls end with a timeout.
pub fn run_stepped(
    runners: &mut [SideRunner; 2],
    endpoints: [&mut dyn Endpoint; 2],
    drive: &mut dyn FnMut([bool; 2]) -> bool,
) {
    let [client, server] = endpoints;
    let mut idle = 0;
    let deadline = std::time::Instant::now() + WALL_LIMIT;
    for round in 0..MAX_ROUNDS {
        if round % 1024 == 0 && std::time::Instant::now() > deadline {
            break;
        }
        let a = runners[0].advance(&mut *client);
        let b = runners[1].advance(&mut *server);
        if a == Advance::Done && b == Advance::Done {
            return;
        }
        let moved = drive([a == Advance::Done, b == Advance::Done]);
        let progress = moved || a == Advance::Progress || b == Advance::Progress;
        idle = if progress { 0 } else { idle + 1 };
        if idle > STALL_ROUNDS {
            break;
        }
    }
    for r in runners.iter_mut() {
        r.fail(Fail::Timeout("stepped run stalled".into()));
    }
}

/// A backend under test: one small adapter.
pub trait Backend: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &'static str;
    /// Runs one connection: makes a client and a server with `configs`, joins them through
    /// a relay applying `conn.faults`, runs `conn.client` and `conn.server` (with
    /// [`SideRunner`], through [`run_threaded`] or [`run_stepped`]) and returns both
    /// traces (client first) and what the relay saw ([`Relayed::from_taps`]).
    fn run(&self, configs: &Configs, conn: &Connection) -> ([Trace; 2], Relayed);
}

/// Both scripts' runners for a connection.
pub fn runners(conn: &Connection) -> [SideRunner; 2] {
    [
        SideRunner::new(Side::Client, &conn.client),
        SideRunner::new(Side::Server, &conn.server),
    ]
}

/// Makes an endpoint on the side's own thread (it may block to connect or accept).
pub type MakeEndpoint<'a> = Box<dyn FnOnce() -> Result<Box<dyn Endpoint>, Fail> + Send + 'a>;

/// The threaded driver for a whole connection: each side on its own thread makes its
/// endpoint, runs its script, then drops the endpoint (closing its transport).
pub fn run_threads(conn: &Connection, make: [MakeEndpoint<'_>; 2]) -> [Trace; 2] {
    fn side_thread(side: Side, make: MakeEndpoint<'_>, script: &[Op]) -> Trace {
        let mut runner = SideRunner::new(side, script);
        match make() {
            Ok(mut ep) => {
                run_threaded(&mut runner, &mut *ep);
                drop(ep);
            }
            Err(f) => runner.fail(f),
        }
        runner.finish()
    }
    let [make_client, make_server] = make;
    std::thread::scope(|s| {
        let c = s.spawn(|| side_thread(Side::Client, make_client, &conn.client));
        let sv = s.spawn(|| side_thread(Side::Server, make_server, &conn.server));
        [
            c.join().expect("client thread"),
            sv.join().expect("server thread"),
        ]
    })
}
