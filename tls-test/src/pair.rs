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

mod digest;
mod endpoint;
mod error;
mod plan;
mod wire;

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{Error, Event, Limits, Session};

use crate::rng::Rng;
use wire::{RecordFlip, Wire};

pub use digest::{fnv1a64, pattern, Fnv64};
pub use endpoint::Endpoint;
pub use error::PairError;
pub use plan::{Delay, Dir, FaultPlan, Side, Split};
pub use wire::RecordInfo;

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
}
