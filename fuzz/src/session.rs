//! `server_receive` and `client_receive`: a [`Session`] (the *victim*) fed bytes that an
//! input script controls, checked against the engine's contract after every operation.
//!
//! Script: one header byte, then operations until the input ends.
//!
//! * Header bits 0-4: the [`Flavour`] of both configs; bit 5: *raw* (no peer: only
//!   injected bytes reach the victim, from its first byte on); bits 6-7: the victim's
//!   [`limits`](crate::limits).
//! * Operations (opcode byte modulo [`op::COUNT`], then arguments): an honest peer session
//!   of the other role runs a real handshake with the victim ([`op::PUMP`]), sends data,
//!   closes or updates keys; everything it sends passes through a *wire* buffer that the
//!   script can mutate, cut, replay or inject into before it is delivered in splits the
//!   script chooses (`read_tls`, or `tls_read_buffer` + a partial `commit_tls_read`).
//!
//! Checked: a fatal error is sticky (every later call returns it, `error()` keeps it);
//! `recv` returns only a prefix of what the peer's `send` took, `Ok(0)` only after the
//! peer's close_notify (with every byte sent before it); a session that refuses input
//! has plaintext or an end to report (no stall); events come once each, in order; queued
//! output and buffer memory stay bounded; every loop ends; and when nothing was tampered
//! with, the handshake completes and every byte arrives on both sides.

use tls_core::{Error, Event, Limits, Session, MAX_HANDSHAKE_MESSAGE, MAX_RECORD};

mod checks;
mod transfer;

use crate::{
    assert_fails, assert_same_error, assert_stream, client, configs, drain_plaintext, limits,
    server, stream, Flavour, Input,
};

/// Which role the fuzzed session plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The victim is a client; the peer a server.
    Client,
    /// The victim is a server; the peer a client.
    Server,
}

/// Opcodes of the session scripts.
pub mod op {
    /// Honest exchange both ways until nothing moves; the victim's plaintext is read.
    pub const PUMP: u8 = 0;
    /// `u16` length: the peer sends that much data (as much as it takes).
    pub const PEER_SEND: u8 = 1;
    /// The peer queues close_notify.
    pub const PEER_CLOSE: u8 = 2;
    /// The peer sends a KeyUpdate.
    pub const PEER_KEY_UPDATE: u8 = 3;
    /// `u16` length: the victim sends that much data.
    pub const SEND: u8 = 4;
    /// The victim queues close_notify.
    pub const CLOSE: u8 = 5;
    /// The victim sends a KeyUpdate.
    pub const KEY_UPDATE: u8 = 6;
    /// `u8` length, then that many bytes: appended to the wire.
    pub const INJECT: u8 = 7;
    /// `u16` position, `u8` mask: XOR one wire byte (after moving the peer's output on).
    pub const MUTATE: u8 = 8;
    /// `u16` position, `u8` count: remove wire bytes (after moving the peer's output on).
    pub const DROP: u8 = 9;
    /// `u16` most, `u8` how: deliver wire bytes to the victim. `how` bit 0: through
    /// `tls_read_buffer`; bit 1: commit all that fits, else commit at most `how >> 2`.
    pub const DELIVER: u8 = 10;
    /// `u16` buffer size: one `recv`.
    pub const RECV: u8 = 11;
    /// The victim's transport ends (`read_tls_eof`).
    pub const EOF: u8 = 12;
    /// `release_buffers`.
    pub const RELEASE: u8 = 13;
    /// `u8` type, `u16` version, `u16` length field, `u8` payload length, payload, `u16`
    /// position: a record header of any length, inserted into the wire.
    pub const INJECT_RECORD: u8 = 14;
    /// `u8`: bit 0 coalescing on or off, bit 1 flush.
    pub const COALESCE: u8 = 15;
    /// One honest step without delivery: the peer's output onto the wire, the victim's
    /// output into the peer.
    pub const PEER_FLUSH: u8 = 16;
    /// `u16` start, `u16` length: append a copy of wire bytes (a replayed record).
    pub const REPLAY: u8 = 17;
    /// How many opcodes there are.
    pub const COUNT: u8 = 18;
}

/// Largest single send or receive buffer a script asks for.
const MAX_CHUNK: usize = 20_000;

struct Run {
    victim: Session,
    peer: Option<Session>,
    limits: Limits,
    /// Bytes on their way to the victim.
    wire: Vec<u8>,
    tampered: bool,
    eof: bool,
    /// Plaintext the peer's `send` took, and how much of it when the peer closed.
    peer_sent: usize,
    peer_closed_at: Option<usize>,
    /// Plaintext the victim's `recv` returned.
    received: usize,
    clean_end: bool,
    victim_sent: usize,
    peer_received: usize,
    /// The victim's fatal error, once seen.
    error: Option<Error>,
    /// KeyUpdate requests the peer sent since its last application data, and the victim's
    /// (each answered by one from the peer).
    peer_key_updates: usize,
    victim_key_updates: usize,
    handshake_done: bool,
    peer_closed_event: bool,
    closed_event: bool,
    /// Output the victim may hold beyond one flight and its outbound limit: grows with the
    /// input it took and the commands it ran since its output was last drained.
    out_allowance: usize,
}

/// Runs one script with the victim in `role`.
pub fn run(role: Role, data: &[u8]) {
    let mut input = Input::new(data);
    let header = input.u8();
    let flavour = Flavour::from_bits(header);
    let raw = header & 0x20 != 0;
    let victim_limits = limits(header >> 6);
    let (client_config, server_config) = configs(flavour);
    let (victim, peer) = match role {
        Role::Client => (
            client(client_config, victim_limits),
            server(server_config, Limits::default()),
        ),
        Role::Server => (
            server(server_config, victim_limits),
            client(client_config, Limits::default()),
        ),
    };
    let mut run = Run {
        victim,
        peer: (!raw).then_some(peer),
        limits: victim_limits,
        wire: Vec::new(),
        tampered: false,
        eof: false,
        peer_sent: 0,
        peer_closed_at: None,
        received: 0,
        clean_end: false,
        victim_sent: 0,
        peer_received: 0,
        error: None,
        peer_key_updates: 0,
        victim_key_updates: 0,
        handshake_done: false,
        peer_closed_event: false,
        closed_event: false,
        out_allowance: 0,
    };
    run.check();
    let mut ops = 0;
    while !input.is_empty() && ops < 256 {
        ops += 1;
        run.step(&mut input);
        run.check();
        if crate::trace() {
            eprintln!(
                "after op {ops}: wire {} sent {} received {} tampered {} victim {:?}",
                run.wire.len(),
                run.peer_sent,
                run.received,
                run.tampered,
                run.victim
            );
        }
    }
    run.finish();
}

impl Run {
    fn step(&mut self, input: &mut Input<'_>) {
        match input.u8() % op::COUNT {
            op::PUMP => {
                self.pump(64);
            }
            op::PEER_SEND => {
                let len = usize::from(input.u16()) % MAX_CHUNK;
                if let Some(peer) = &mut self.peer {
                    if let Ok(n) = peer.send(&stream(self.peer_sent, len)) {
                        self.peer_sent += n;
                        if n > 0 {
                            self.peer_key_updates = 0;
                        }
                    }
                }
            }
            op::PEER_CLOSE => {
                if let Some(peer) = &mut self.peer {
                    if peer.close().is_ok() && self.peer_closed_at.is_none() {
                        self.peer_closed_at = Some(self.peer_sent);
                    }
                }
            }
            op::PEER_KEY_UPDATE => {
                // An honest peer: rustls (like BoringSSL) fails a connection after 32
                // KeyUpdates with no application data between them (see KEY_UPDATE).
                if let Some(peer) = &mut self.peer {
                    if self.peer_key_updates < 16 && peer.refresh_keys().is_ok() {
                        self.peer_key_updates += 1;
                    }
                }
            }
            op::SEND => {
                let len = usize::from(input.u16()) % MAX_CHUNK;
                self.allow_command();
                match self.victim.send(&stream(self.victim_sent, len)) {
                    Ok(n) => {
                        assert!(n <= len, "send took {n} of {len} bytes");
                        self.victim_sent += n;
                    }
                    Err(e) => self.on_error(&e, "send"),
                }
            }
            op::CLOSE => {
                self.allow_command();
                if let Err(e) = self.victim.close() {
                    self.on_error(&e, "close");
                }
            }
            op::KEY_UPDATE => {
                // The peer answers with a KeyUpdate, which rustls counts against the 32,
                // whenever it reads ours (maybe after its next data): at most 16 in all, so
                // 16 of the peer's own fit.
                if self.victim_key_updates >= 16 {
                    return;
                }
                self.victim_key_updates += 1;
                self.allow_command();
                if let Err(e) = self.victim.refresh_keys() {
                    self.on_error(&e, "refresh_keys");
                }
            }
            op::INJECT => {
                let len = usize::from(input.u8());
                let bytes = input.bytes(len);
                self.tampered |= !bytes.is_empty();
                self.wire.extend_from_slice(bytes);
            }
            op::MUTATE => {
                let (pos, mask) = (usize::from(input.u16()), input.u8());
                self.peer_to_wire();
                if !self.wire.is_empty() && mask != 0 {
                    let at = pos % self.wire.len();
                    self.wire[at] ^= mask;
                    self.tampered = true;
                }
            }
            op::DROP => {
                let (pos, count) = (usize::from(input.u16()), usize::from(input.u8()));
                self.peer_to_wire();
                if !self.wire.is_empty() && count > 0 {
                    let at = pos % self.wire.len();
                    let end = (at + count).min(self.wire.len());
                    self.wire.drain(at..end);
                    self.tampered = true;
                }
            }
            op::DELIVER => {
                let (most, how) = (usize::from(input.u16()), input.u8());
                self.deliver(most, how);
            }
            op::RECV => {
                let size = usize::from(input.u16()) % MAX_CHUNK;
                let _ = self.recv(size);
            }
            op::EOF => {
                self.eof = true;
                self.victim.read_tls_eof();
            }
            op::RELEASE => self.victim.release_buffers(),
            op::INJECT_RECORD => {
                let content_type = input.u8();
                let version = input.u16().to_be_bytes();
                let len = input.u16().to_be_bytes();
                let payload_len = usize::from(input.u8());
                let payload = input.bytes(payload_len);
                let pos = usize::from(input.u16()) % (self.wire.len() + 1);
                let mut record = vec![content_type, version[0], version[1], len[0], len[1]];
                record.extend_from_slice(payload);
                self.wire.splice(pos..pos, record);
                self.tampered = true;
            }
            op::COALESCE => {
                let how = input.u8();
                self.allow_command();
                if let Err(e) = self.victim.set_coalescing(how & 1 != 0) {
                    self.on_error(&e, "set_coalescing");
                }
                if how & 2 != 0 {
                    if let Err(e) = self.victim.flush() {
                        self.on_error(&e, "flush");
                    }
                }
            }
            op::PEER_FLUSH => {
                self.peer_to_wire();
                self.victim_to_peer();
            }
            op::REPLAY => {
                let (start, len) = (usize::from(input.u16()), usize::from(input.u16()));
                self.peer_to_wire();
                if !self.wire.is_empty() && len > 0 {
                    let start = start % self.wire.len();
                    let end = (start + len).min(self.wire.len());
                    let copy = self.wire[start..end].to_vec();
                    self.wire.extend_from_slice(&copy);
                    self.tampered = true;
                }
            }
            _ => unreachable!("opcode modulo COUNT"),
        }
    }
}
