//! An in-memory client–server [`Pair`] with seeded fault injection, in the manner of
//! quinn-proto's test `Pair`.
//!
//! The pair owns a client and a server [`Session`] and two one-way wires between them. Each
//! [`step`](Pair::step) moves one piece of pending ciphertext from each session onto its wire
//! and one piece of ready wire bytes into the other session, then collects events and (by
//! default) reads the plaintext that arrived. A [`FaultPlan`] decides how bytes are cut into
//! pieces ([`Split`]) and whether pieces are held back for a few steps ([`Delay`]); bytes are
//! never reordered or lost within a direction, since TLS runs over an ordered stream. Tests
//! may also tamper with bytes in flight ([`Pair::tamper`], [`Pair::flip_bit`],
//! [`Pair::flip_in_record`]) and end a direction early ([`Pair::cut`]).
//!
//! Everything is deterministic for a given seed: the generator picks piece sizes, delays, and
//! whether a piece goes in through [`Session::read_tls`] (copy) or through
//! [`Session::tls_read_buffer`] + [`Session::commit_tls_read`] (zero copy), and whether it
//! comes out through [`Session::pending_tls`] + [`Session::tls_written`] or
//! [`Session::write_tls`].
//!
//! ```
//! use std::sync::Arc;
//! use tls_test::certs::{KeyKind, Options, Pki};
//! use tls_test::pair::{Dir, FaultPlan, Pair};
//!
//! let pki = Pki::new(KeyKind::EcdsaP256, &[]);
//! let opts = Options::default();
//! let mut pair = Pair::connect(
//!     Arc::new(pki.client_config(&opts)),
//!     Arc::new(pki.server_config(&opts)),
//!     FaultPlan::RANDOM,
//!     7,
//! );
//! pair.handshake().unwrap();
//! pair.transfer(b"hello", Dir::ClientToServer).unwrap();
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{Error, Event, Limits, Session};

use crate::rng::Rng;

/// How the harness cuts bytes into pieces, both when it takes ciphertext out of a session
/// and when it hands wire bytes to the other one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Everything available at once.
    Whole,
    /// One byte per piece: every record arrives in as many calls as it has bytes.
    OneByte,
    /// A random non-empty prefix of what is available (uniform in `1..=available`).
    RandomPrefix,
}

/// Holding pieces back on the wire for a few steps. A held piece also holds every piece
/// behind it, so bytes are never reordered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delay {
    /// Chance that a piece is held at all.
    pub chance: f64,
    /// Most steps a piece is held (at least one when it is held).
    pub max_steps: u64,
}

/// The faults a [`Pair`] injects, chosen per piece by its seeded generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultPlan {
    /// How ciphertext is cut into pieces.
    pub split: Split,
    /// Whether and how long pieces are held back.
    pub delay: Option<Delay>,
}

impl FaultPlan {
    /// Whole outputs, delivered at once: the fastest plan, for bulk transfers.
    pub const CLEAN: Self = Self {
        split: Split::Whole,
        delay: None,
    };
    /// One byte at a time each way, no delays.
    pub const ONE_BYTE: Self = Self {
        split: Split::OneByte,
        delay: None,
    };
    /// Random prefixes, with a third of the pieces held for up to four steps.
    pub const RANDOM: Self = Self {
        split: Split::RandomPrefix,
        delay: Some(Delay {
            chance: 0.3,
            max_steps: 4,
        }),
    };

    fn max_delay(&self) -> u64 {
        self.delay.map_or(0, |d| d.max_steps)
    }
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::CLEAN
    }
}

/// One end of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client session.
    Client,
    /// The server session.
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// One direction of a [`Pair`]'s wires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client output to server input.
    ClientToServer,
    /// Server output to client input.
    ServerToClient,
}

impl Dir {
    /// Both directions.
    pub const BOTH: [Dir; 2] = [Dir::ClientToServer, Dir::ServerToClient];

    /// The direction in which `side` sends.
    pub fn from(side: Side) -> Self {
        match side {
            Side::Client => Self::ClientToServer,
            Side::Server => Self::ServerToClient,
        }
    }

    /// The side that writes into this direction.
    pub fn sender(self) -> Side {
        match self {
            Self::ClientToServer => Side::Client,
            Self::ServerToClient => Side::Server,
        }
    }

    /// The side that reads from this direction.
    pub fn receiver(self) -> Side {
        self.sender().peer()
    }

    /// The opposite direction.
    pub fn reverse(self) -> Self {
        Self::from(self.receiver())
    }

    fn index(self) -> usize {
        match self {
            Self::ClientToServer => 0,
            Self::ServerToClient => 1,
        }
    }
}

/// A session and what the harness observed of it.
#[derive(Debug)]
pub struct Endpoint {
    /// The session under test.
    pub session: Session,
    /// Events polled so far, oldest first (the harness polls after every step).
    pub events: Vec<Event>,
    /// Plaintext read so far (by [`Pair::read_available`], which steps call when
    /// [`Pair::auto_read`] is on).
    pub plaintext: Vec<u8>,
    /// Whether [`Session::recv`] has returned `Ok(0)`: the peer's close_notify arrived and
    /// every byte before it was read.
    pub clean_eof: bool,
    /// The first fatal error the harness saw from this session (from `read_tls`,
    /// `commit_tls_read` or `recv`).
    pub error: Option<Error>,
}

impl Endpoint {
    fn new(session: Session) -> Self {
        Self {
            session,
            events: Vec::new(),
            plaintext: Vec::new(),
            clean_eof: false,
            error: None,
        }
    }

    fn note_error(&mut self, e: &Error) {
        if e.is_fatal() && self.error.is_none() {
            self.error = Some(e.clone());
        }
    }

    /// Whether the session can no longer take input: it failed, the peer closed, or the
    /// transport ended.
    fn is_dead(&self) -> bool {
        self.error.is_some() || self.session.error().is_some() || self.session.peer_has_closed()
    }
}

/// A TLS record header seen on a wire (before any tampering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Stream offset of the record's first header byte.
    pub offset: usize,
    /// The record's (outer) content type: 20 change_cipher_spec, 21 alert, 22 handshake,
    /// 23 application data (every TLS 1.3 record once encrypted).
    pub content_type: u8,
    /// Length of the record body (without the 5-byte header).
    pub len: usize,
}

impl RecordInfo {
    /// Offset one past the record's last byte.
    pub fn end(&self) -> usize {
        self.offset + 5 + self.len
    }
}

/// A hook that may change a piece in flight: gets the stream offset of the piece's first
/// byte and the piece.
type Hook = Box<dyn FnMut(usize, &mut Vec<u8>)>;

/// Finds record boundaries in a byte stream fed in arbitrary pieces.
#[derive(Debug, Default)]
struct RecordTracker {
    header: [u8; 5],
    have: usize,
    remaining: usize,
    start: usize,
}

impl RecordTracker {
    fn feed(&mut self, offset: usize, bytes: &[u8], records: &mut Vec<RecordInfo>) {
        let mut i = 0;
        while i < bytes.len() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len() - i);
                self.remaining -= n;
                i += n;
                continue;
            }
            if self.have == 0 {
                self.start = offset + i;
            }
            self.header[self.have] = bytes[i];
            self.have += 1;
            i += 1;
            if self.have == 5 {
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                records.push(RecordInfo {
                    offset: self.start,
                    content_type: self.header[0],
                    len,
                });
                self.remaining = len;
                self.have = 0;
            }
        }
    }
}

/// A bit flip aimed at a record not seen yet.
#[derive(Debug)]
struct RecordFlip {
    record: usize,
    at: usize,
    mask: u8,
}

/// One direction: pieces in flight, faults, and bookkeeping.
#[derive(Default)]
struct Wire {
    /// Pieces on the wire with the step at which each may be delivered.
    chunks: VecDeque<(u64, Vec<u8>)>,
    /// Stream bytes taken from the sender (including any dropped after a cut).
    sent: usize,
    /// Bytes handed to the receiver.
    delivered: usize,
    /// Bytes dropped because the receiver could no longer take them.
    dropped: usize,
    cut: Option<usize>,
    eof_delivered: bool,
    tracker: RecordTracker,
    records: Vec<RecordInfo>,
    record_flips: Vec<RecordFlip>,
    /// Resolved flips: stream offset and XOR mask.
    flips: Vec<(usize, u8)>,
    hooks: Vec<Hook>,
}

impl Wire {
    fn queued(&self) -> usize {
        self.chunks.iter().map(|(_, c)| c.len()).sum()
    }

    /// Whether the stream has reached the cut, so EOF follows the bytes on the wire.
    fn cut_reached(&self) -> bool {
        self.cut.is_some_and(|c| self.sent >= c)
    }
}

/// Why a [`Pair`] operation failed.
#[derive(Debug)]
pub enum PairError {
    /// Nothing moved for longer than any delay can explain, or the step bound was reached
    /// before the pair went idle.
    Livelock {
        /// Steps taken by the failing call.
        steps: usize,
        /// What each side and wire held when it gave up.
        state: String,
    },
    /// A session failed with a fatal error.
    Failed {
        /// The failing side.
        side: Side,
        /// Its error.
        error: Error,
    },
    /// A transfer delivered different bytes from those sent.
    Corrupted {
        /// The direction of the transfer.
        dir: Dir,
        /// Bytes sent.
        sent_len: usize,
        /// Bytes received.
        received_len: usize,
        /// FNV-1a 64 of the bytes sent.
        sent_sum: u64,
        /// FNV-1a 64 of the bytes received.
        received_sum: u64,
    },
}

impl fmt::Display for PairError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Livelock { steps, state } => {
                write!(
                    f,
                    "pair livelocked: no progress after {steps} steps; {state}"
                )
            }
            Self::Failed { side, error } => write!(f, "{side:?} failed: {error}"),
            Self::Corrupted {
                dir,
                sent_len,
                received_len,
                sent_sum,
                received_sum,
            } => write!(
                f,
                "{dir:?} transfer corrupted: sent {sent_len} bytes (fnv {sent_sum:#018x}), \
                 received {received_len} bytes (fnv {received_sum:#018x})"
            ),
        }
    }
}

impl std::error::Error for PairError {}

/// The step bound of [`Pair::drive`].
pub const DEFAULT_MAX_STEPS: usize = 1_000_000;

/// Steps without progress (beyond the longest delay) after which a pair counts as stuck.
const STALL_STEPS: u64 = 8;

/// A client and a server session joined by two in-memory wires (see the module docs).
pub struct Pair {
    /// The client side.
    pub client: Endpoint,
    /// The server side.
    pub server: Endpoint,
    /// Whether each step reads all available plaintext on both sides into
    /// [`Endpoint::plaintext`] (on by default; turn off to test backpressure or `recv`
    /// itself).
    pub auto_read: bool,
    plan: FaultPlan,
    rng: Rng,
    now: u64,
    wires: [Wire; 2],
    scratch: Vec<u8>,
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Pair {
    /// Joins `client` and `server`, with faults from `plan` chosen by a generator seeded
    /// with `seed`.
    pub fn new(client: Session, server: Session, plan: FaultPlan, seed: u64) -> Self {
        Self {
            client: Endpoint::new(client),
            server: Endpoint::new(server),
            auto_read: true,
            plan,
            rng: Rng::new(seed),
            now: 0,
            wires: [Wire::default(), Wire::default()],
            scratch: Vec::new(),
        }
    }

    /// Makes a client (asking for `localhost`) and a server from these configs with
    /// default [`Limits`], and joins them.
    pub fn connect(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        plan: FaultPlan,
        seed: u64,
    ) -> Self {
        Self::connect_with_limits(client, server, Limits::default(), plan, seed)
    }

    /// Like [`connect`](Self::connect), with `limits` for both sessions.
    pub fn connect_with_limits(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        limits: Limits,
        plan: FaultPlan,
        seed: u64,
    ) -> Self {
        let name = ServerName::try_from("localhost").expect("valid name");
        let client = Session::client(client, name, limits).expect("client session");
        let server = Session::server(server, limits).expect("server session");
        Self::new(client, server, plan, seed)
    }

    /// Gives the sessions back (client, server), dropping the harness.
    pub fn into_sessions(self) -> (Session, Session) {
        (self.client.session, self.server.session)
    }

    /// One side.
    pub fn endpoint(&self, side: Side) -> &Endpoint {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// One side, mutably.
    pub fn endpoint_mut(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// One side's session.
    pub fn session(&mut self, side: Side) -> &mut Session {
        &mut self.endpoint_mut(side).session
    }

    /// Steps taken so far.
    pub fn now(&self) -> u64 {
        self.now
    }

    // ------------------------------------------------------------ faults

    /// Calls `hook` on every piece that leaves the sender in `dir` from now on, with the
    /// stream offset of its first byte; the hook may change the bytes (and even their
    /// number: offsets keep counting what the sender produced).
    pub fn tamper(&mut self, dir: Dir, hook: impl FnMut(usize, &mut Vec<u8>) + 'static) {
        self.wires[dir.index()].hooks.push(Box::new(hook));
    }

    /// XORs `mask` into the byte at stream `offset` in `dir` when it passes.
    pub fn flip_bit(&mut self, dir: Dir, offset: usize, mask: u8) {
        self.wires[dir.index()].flips.push((offset, mask));
    }

    /// XORs `mask` into byte `at` of record number `record` (counting from 0, header
    /// included, so `at >= 5` lands in the body; clamped to the record's last byte) in `dir`.
    pub fn flip_in_record(&mut self, dir: Dir, record: usize, at: usize, mask: u8) {
        let wire = &mut self.wires[dir.index()];
        if let Some(info) = wire.records.get(record) {
            let offset = info.offset + at.min(4 + info.len);
            wire.flips.push((offset, mask));
        } else {
            wire.record_flips.push(RecordFlip { record, at, mask });
        }
    }

    /// Ends `dir` after stream offset `at`: bytes from `at` on are dropped, and once the
    /// first `at` bytes are delivered the receiver gets [`Session::read_tls_eof`]. A stream
    /// shorter than `at` is not cut.
    pub fn cut(&mut self, dir: Dir, at: usize) {
        self.wires[dir.index()].cut = Some(at);
    }

    /// Ends `dir` after the bytes taken from the sender so far (a transport close).
    pub fn close_transport(&mut self, dir: Dir) {
        let wire = &mut self.wires[dir.index()];
        wire.cut = Some(wire.sent);
    }

    /// Puts `bytes` on the wire in `dir` after everything already sent, as if the sender
    /// had written them to its transport itself (for [`Session::send_into`]).
    pub fn push_wire(&mut self, dir: Dir, bytes: &[u8]) {
        let ready = self.ready_at();
        self.put_on_wire(dir, bytes.to_vec(), ready);
    }

    /// Record headers seen in `dir` so far, in order (before tampering).
    pub fn records(&self, dir: Dir) -> &[RecordInfo] {
        &self.wires[dir.index()].records
    }

    /// Stream bytes taken from the sender in `dir` so far.
    pub fn bytes_sent(&self, dir: Dir) -> usize {
        self.wires[dir.index()].sent
    }

    /// Bytes handed to the receiver in `dir` so far.
    pub fn bytes_delivered(&self, dir: Dir) -> usize {
        self.wires[dir.index()].delivered
    }

    /// Bytes waiting on the wire in `dir`.
    pub fn bytes_in_flight(&self, dir: Dir) -> usize {
        self.wires[dir.index()].queued()
    }

    /// Bytes dropped in `dir` because the receiver could take no more (it failed, the
    /// peer closed, or the stream was cut).
    pub fn bytes_dropped(&self, dir: Dir) -> usize {
        self.wires[dir.index()].dropped
    }

    // ------------------------------------------------------------ stepping

    /// Moves one piece of output each way and one piece of wire bytes into each receiver,
    /// then polls events and (with [`auto_read`](Self::auto_read)) reads plaintext on both
    /// sides. Returns whether anything moved.
    pub fn step(&mut self) -> bool {
        self.now += 1;
        let mut progress = false;
        for dir in Dir::BOTH {
            progress |= self.transmit(dir);
        }
        for dir in Dir::BOTH {
            progress |= self.deliver(dir);
        }
        for side in [Side::Client, Side::Server] {
            progress |= self.collect_events(side) > 0;
            if self.auto_read {
                progress |= matches!(self.read_available(side), Ok(n) if n > 0);
            }
        }
        progress
    }

    /// Whether nothing is left to move: no pending output, no bytes in flight to a
    /// receiver that can take them, no EOF waiting to be delivered.
    pub fn is_idle(&self) -> bool {
        Dir::BOTH.into_iter().all(|dir| {
            let wire = &self.wires[dir.index()];
            let sender = self.endpoint(dir.sender());
            let receiver = self.endpoint(dir.receiver());
            let dead = receiver.is_dead() || wire.eof_delivered;
            !sender.session.has_output()
                && (dead || (wire.chunks.is_empty() && !wire.cut_reached()))
        })
    }

    /// Steps until the pair is idle, failing with [`PairError::Livelock`] when nothing
    /// moves for longer than the plan's longest delay, or after `max_steps` steps.
    /// Returns the steps taken.
    pub fn drive_bounded(&mut self, max_steps: usize) -> Result<usize, PairError> {
        let mut steps = 0;
        let mut stalled = 0;
        while !self.is_idle() {
            if steps >= max_steps || stalled > self.plan.max_delay() + STALL_STEPS {
                return Err(PairError::Livelock {
                    steps,
                    state: self.describe(),
                });
            }
            if self.step() {
                stalled = 0;
            } else {
                stalled += 1;
            }
            steps += 1;
        }
        Ok(steps)
    }

    /// [`drive_bounded`](Self::drive_bounded) with [`DEFAULT_MAX_STEPS`].
    ///
    /// # Panics
    /// On livelock, with the state of both sides and wires in the message.
    pub fn drive(&mut self) -> usize {
        match self.drive_bounded(DEFAULT_MAX_STEPS) {
            Ok(steps) => steps,
            Err(e) => panic!("{e}"),
        }
    }

    /// Drives until both handshakes are complete and the pair is idle (so post-handshake
    /// messages such as TLS 1.3 tickets have arrived). Fails if either side fails.
    pub fn handshake(&mut self) -> Result<(), PairError> {
        self.drive_bounded(DEFAULT_MAX_STEPS)?;
        self.check_errors()?;
        for side in [Side::Client, Side::Server] {
            if self.endpoint(side).session.is_handshaking() {
                return Err(PairError::Livelock {
                    steps: 0,
                    state: format!("{side:?} still handshaking at idle; {}", self.describe()),
                });
            }
        }
        Ok(())
    }

    /// The first error either side has seen (client first), as a [`PairError::Failed`].
    pub fn check_errors(&self) -> Result<(), PairError> {
        for side in [Side::Client, Side::Server] {
            let ep = self.endpoint(side);
            if let Some(error) = ep.error.clone().or_else(|| ep.session.error().cloned()) {
                return Err(PairError::Failed { side, error });
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ events and plaintext

    /// Polls every pending event of `side` into [`Endpoint::events`]; returns how many.
    pub fn collect_events(&mut self, side: Side) -> usize {
        let ep = self.endpoint_mut(side);
        let mut n = 0;
        while let Some(event) = ep.session.poll_event() {
            ep.events.push(event);
            n += 1;
        }
        n
    }

    /// Takes the events collected for `side` so far.
    pub fn take_events(&mut self, side: Side) -> Vec<Event> {
        self.collect_events(side);
        std::mem::take(&mut self.endpoint_mut(side).events)
    }

    /// Calls [`Session::recv`] on `side` until it says [`Error::WouldBlock`], appending to
    /// [`Endpoint::plaintext`]. Returns the bytes read; `Ok(0)` from `recv` sets
    /// [`Endpoint::clean_eof`]; a fatal error is recorded in [`Endpoint::error`] and returned.
    pub fn read_available(&mut self, side: Side) -> Result<usize, Error> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(64 * 1024, 0);
        let ep = self.endpoint_mut(side);
        let mut total = 0;
        let result = loop {
            match ep.session.recv(&mut buf) {
                Ok(0) => {
                    ep.clean_eof = true;
                    break Ok(total);
                }
                Ok(n) => {
                    ep.plaintext.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(Error::WouldBlock) => break Ok(total),
                Err(e) => {
                    ep.note_error(&e);
                    break Err(e);
                }
            }
        };
        self.scratch = buf;
        result
    }

    /// Takes the plaintext read for `side` so far.
    pub fn take_plaintext(&mut self, side: Side) -> Vec<u8> {
        std::mem::take(&mut self.endpoint_mut(side).plaintext)
    }

    /// Sends `data` from the sender of `dir` and reads it on the receiver, stepping as
    /// needed, and checks length and FNV-1a 64 checksum. Plaintext the receiver already
    /// held is left in [`Endpoint::plaintext`]; the transferred bytes are consumed.
    /// Flushes gathered writes (coalescing mode) once everything is taken.
    pub fn transfer(&mut self, data: &[u8], dir: Dir) -> Result<(), PairError> {
        let sender = dir.sender();
        let receiver = dir.receiver();
        let start = self.endpoint(receiver).plaintext.len();
        let mut sent = 0;
        let mut flushed = false;
        let mut received = 0;
        let mut sum = Fnv64::new();
        let mut steps = 0;
        let mut stalled = 0;
        while received < data.len() || !flushed {
            let mut progress = false;
            if sent < data.len() {
                let n = self.session(sender).send(&data[sent..]).map_err(|error| {
                    PairError::Failed {
                        side: sender,
                        error,
                    }
                })?;
                sent += n;
                progress |= n > 0;
            }
            if sent == data.len() && !flushed {
                self.session(sender)
                    .flush()
                    .map_err(|error| PairError::Failed {
                        side: sender,
                        error,
                    })?;
                flushed = true;
            }
            progress |= self.step();
            steps += 1;
            if let Err(error) = self.read_available(receiver) {
                return Err(PairError::Failed {
                    side: receiver,
                    error,
                });
            }
            self.check_errors()?;
            let plaintext = &mut self.endpoint_mut(receiver).plaintext;
            let new = &plaintext[start..];
            if !new.is_empty() {
                sum.update(new);
                received += new.len();
                plaintext.truncate(start);
                progress = true;
            }
            if received > data.len() {
                break;
            }
            if progress {
                stalled = 0;
            } else {
                stalled += 1;
                if stalled > self.plan.max_delay() + STALL_STEPS {
                    return Err(PairError::Livelock {
                        steps,
                        state: format!(
                            "transfer {dir:?}: {sent}/{} sent, {received} received; {}",
                            data.len(),
                            self.describe()
                        ),
                    });
                }
            }
        }
        let sent_sum = fnv1a64(data);
        let received_sum = sum.finish();
        if received != data.len() || received_sum != sent_sum {
            return Err(PairError::Corrupted {
                dir,
                sent_len: data.len(),
                received_len: received,
                sent_sum,
                received_sum,
            });
        }
        Ok(())
    }

    // ------------------------------------------------------------ internals

    fn pick(&mut self, available: usize) -> usize {
        match self.plan.split {
            Split::Whole => available,
            Split::OneByte => available.min(1),
            Split::RandomPrefix => self.rng.range(1, available),
        }
    }

    fn ready_at(&mut self) -> u64 {
        match self.plan.delay {
            Some(d) if d.max_steps > 0 && self.rng.chance(d.chance) => {
                self.now + self.rng.range(1, d.max_steps as usize) as u64
            }
            _ => self.now,
        }
    }

    /// Takes one piece of the sender's output and puts it on the wire.
    fn transmit(&mut self, dir: Dir) -> bool {
        let available = self.endpoint(dir.sender()).session.pending_tls().len();
        if available == 0 {
            return false;
        }
        let n = self.pick(available);
        let piece = if self.rng.chance(0.5) {
            let session = self.session(dir.sender());
            let piece = session.pending_tls()[..n].to_vec();
            session.tls_written(n);
            piece
        } else {
            let mut piece = vec![0; n];
            let written = self.session(dir.sender()).write_tls(&mut piece);
            assert_eq!(written, n, "write_tls wrote less than pending_tls held");
            piece
        };
        let ready = self.ready_at();
        self.put_on_wire(dir, piece, ready);
        true
    }

    fn put_on_wire(&mut self, dir: Dir, mut piece: Vec<u8>, ready: u64) {
        let wire = &mut self.wires[dir.index()];
        let offset = wire.sent;
        let before = wire.records.len();
        wire.tracker.feed(offset, &piece, &mut wire.records);
        for index in before..wire.records.len() {
            let info = wire.records[index];
            wire.record_flips.retain(|f| {
                if f.record == index {
                    wire.flips
                        .push((info.offset + f.at.min(4 + info.len), f.mask));
                    false
                } else {
                    true
                }
            });
        }
        for &(at, mask) in &wire.flips {
            if at >= offset && at < offset + piece.len() {
                piece[at - offset] ^= mask;
            }
        }
        for hook in &mut wire.hooks {
            hook(offset, &mut piece);
        }
        wire.sent += piece.len();
        if let Some(cut) = wire.cut {
            let keep = cut.saturating_sub(offset).min(piece.len());
            wire.dropped += piece.len() - keep;
            piece.truncate(keep);
        }
        if !piece.is_empty() {
            wire.chunks.push_back((ready, piece));
        }
    }

    /// Hands one piece of ready wire bytes to the receiver, then EOF if the cut is reached.
    fn deliver(&mut self, dir: Dir) -> bool {
        let now = self.now;
        let receiver = dir.receiver();
        let wire = &self.wires[dir.index()];
        if self.endpoint(receiver).is_dead() || wire.eof_delivered {
            let wire = &mut self.wires[dir.index()];
            let n = wire.queued();
            wire.dropped += n;
            wire.chunks.clear();
            return n > 0;
        }
        let available: usize = wire
            .chunks
            .iter()
            .take_while(|(ready, _)| *ready <= now)
            .map(|(_, c)| c.len())
            .sum();
        let mut progress = false;
        if available > 0 {
            let n = self.pick(available);
            let mut piece = Vec::with_capacity(n);
            for (_, chunk) in &self.wires[dir.index()].chunks {
                let take = (n - piece.len()).min(chunk.len());
                piece.extend_from_slice(&chunk[..take]);
                if piece.len() == n {
                    break;
                }
            }
            let zero_copy = self.rng.chance(0.5);
            let ep = self.endpoint_mut(receiver);
            let taken = if zero_copy {
                let buf = ep.session.tls_read_buffer();
                let m = buf.len().min(n);
                buf[..m].copy_from_slice(&piece[..m]);
                match ep.session.commit_tls_read(m) {
                    Ok(()) => m,
                    Err(e) => {
                        ep.note_error(&e);
                        m
                    }
                }
            } else {
                match ep.session.read_tls(&piece) {
                    Ok(m) => m,
                    Err(e) => {
                        ep.note_error(&e);
                        n
                    }
                }
            };
            let wire = &mut self.wires[dir.index()];
            wire.delivered += taken;
            let mut left = taken;
            while left > 0 {
                let front = &mut wire.chunks.front_mut().expect("taken bytes were queued").1;
                if front.len() <= left {
                    left -= front.len();
                    wire.chunks.pop_front();
                } else {
                    front.drain(..left);
                    left = 0;
                }
            }
            progress = taken > 0;
        }
        let wire = &mut self.wires[dir.index()];
        if wire.chunks.is_empty() && wire.cut_reached() && !wire.eof_delivered {
            wire.eof_delivered = true;
            self.session(receiver).read_tls_eof();
            progress = true;
        }
        progress
    }

    fn describe(&self) -> String {
        let mut s = format!("step {}", self.now);
        for side in [Side::Client, Side::Server] {
            let ep = self.endpoint(side);
            s += &format!(
                "; {side:?}: handshaking={} pending_tls={} wants_input={} \
                 has_plaintext={} error={:?} events={}",
                ep.session.is_handshaking(),
                ep.session.pending_tls().len(),
                ep.session.wants_input(),
                ep.session.has_plaintext(),
                ep.error.as_ref().or(ep.session.error()),
                ep.events.len(),
            );
        }
        for dir in Dir::BOTH {
            let wire = &self.wires[dir.index()];
            s += &format!(
                "; {dir:?}: sent={} delivered={} in_flight={} cut={:?} eof={}",
                wire.sent,
                wire.delivered,
                wire.queued(),
                wire.cut,
                wire.eof_delivered
            );
        }
        s
    }
}

/// Streaming FNV-1a, 64 bits: a cheap checksum for transfers.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Fnv64 {
    /// The empty checksum.
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The checksum of everything added.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut sum = Fnv64::new();
    sum.update(bytes);
    sum.finish()
}

/// `len` seeded pseudo-random bytes (the same for the same seed).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    Rng::new(seed).fill(&mut data);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_tracker_finds_headers_across_pieces() {
        let mut stream = vec![22, 3, 1, 0, 2, 0xaa, 0xbb];
        stream.extend_from_slice(&[23, 3, 3, 0, 0]);
        stream.extend_from_slice(&[21, 3, 3, 0, 1, 0xcc]);
        let whole = {
            let mut t = RecordTracker::default();
            let mut records = Vec::new();
            t.feed(0, &stream, &mut records);
            records
        };
        assert_eq!(
            whole,
            [
                RecordInfo {
                    offset: 0,
                    content_type: 22,
                    len: 2
                },
                RecordInfo {
                    offset: 7,
                    content_type: 23,
                    len: 0
                },
                RecordInfo {
                    offset: 12,
                    content_type: 21,
                    len: 1
                },
            ]
        );
        let mut t = RecordTracker::default();
        let mut records = Vec::new();
        for (i, b) in stream.iter().enumerate() {
            t.feed(i, std::slice::from_ref(b), &mut records);
        }
        assert_eq!(records, whole);
    }

    #[test]
    fn fnv_matches_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut sum = Fnv64::new();
        sum.update(b"foo");
        sum.update(b"bar");
        assert_eq!(sum.finish(), fnv1a64(b"foobar"));
        assert_eq!(pattern(3, 100), pattern(3, 100));
        assert_ne!(pattern(3, 100), pattern(4, 100));
    }
}
