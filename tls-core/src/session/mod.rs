//! [`Session`]: one TLS connection as a sans-IO state machine.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};

use crate::buffers::ByteQueue;
use crate::conn::{Conn, Encrypt, Goal, Outcome, Stop};
use crate::event::{Event, HandshakeInfo, Initiator};
use crate::limits::Limits;
use crate::record;
use crate::sni::SniCapture;
use crate::Error;

mod input;
mod recv;
mod send;

/// How much plaintext and ciphertext an encryption into a caller's buffer moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Encrypted {
    /// Plaintext bytes taken from the caller.
    pub consumed: usize,
    /// Ciphertext bytes written into the caller's buffer.
    pub written: usize,
}

/// One TLS connection, client or server, with no I/O of its own.
///
/// The code is split by concern: construction, getters and the drive of the engine here,
/// ciphertext in and out in `input.rs`, plaintext out in `send.rs` (with the commands),
/// plaintext in and the read status in `recv.rs`.
///
/// The methods fall into groups, in the manner of quinn-proto's `Connection`:
///
/// * **Inputs**: [`read_tls`](Self::read_tls) (copy in) or [`tls_read_buffer`](Self::tls_read_buffer)
///   \+ [`commit_tls_read`](Self::commit_tls_read) (read straight into the engine), and
///   [`read_tls_eof`](Self::read_tls_eof) when the transport ends.
/// * **Outputs**: [`pending_tls`](Self::pending_tls) + [`tls_written`](Self::tls_written)
///   (any prefix), or [`write_tls`](Self::write_tls). Send these bytes, in order, after
///   every input and command.
/// * **Plaintext**: [`send`](Self::send), [`send_into`](Self::send_into),
///   [`flush`](Self::flush), [`recv`](Self::recv) (copy out) and
///   [`recv_with`](Self::recv_with) (read in place).
/// * **Events and getters**: [`poll_event`](Self::poll_event), [`is_handshaking`](Self::is_handshaking),
///   [`wants_input`](Self::wants_input), [`has_output`](Self::has_output),
///   [`has_plaintext`](Self::has_plaintext), [`read_status`](Self::read_status),
///   [`handshake_info`](Self::handshake_info), [`peer_certificates`](Self::peer_certificates).
/// * **Commands**: [`close`](Self::close) (half-close) and [`refresh_keys`](Self::refresh_keys).
///
/// A binding's loop: hand the session whatever the transport delivered, send whatever
/// [`pending_tls`](Self::pending_tls) holds, drain [`poll_event`](Self::poll_event), and
/// read plaintext with [`recv`](Self::recv) until it says [`Error::WouldBlock`]. No call blocks;
/// every call either makes progress or says what it waits for.
pub struct Session {
    conn: Conn,
    limits: Limits,
    /// Ciphertext not yet processed by rustls.
    inbound: ByteQueue,
    /// Ciphertext waiting to be sent, in order.
    outbound: ByteQueue,
    /// Decrypted plaintext the application has not read yet (the part of a record that did
    /// not fit its buffer, or records set aside so a write could proceed).
    staged: ByteQueue,
    /// Small writes gathered into one record (coalescing mode).
    gather: alloc::vec::Vec<u8>,
    coalesce: bool,
    events: VecDeque<Event>,
    info: Option<HandshakeInfo>,
    /// Client: the name asked for. Server: the capture slot filled by the cert resolver.
    client_sni: Option<String>,
    server_sni: Option<Arc<SniCapture>>,
    /// Plaintext per record and ciphertext overhead per record, once negotiated.
    fragment: usize,
    overhead: usize,
    /// The read side's lifecycle (and the sticky fatal error, which ends both sides).
    read: ReadState,
    /// The write side's lifecycle.
    write: WriteState,
    /// KeyUpdate requests sent since our last application data (see
    /// [`Session::MAX_KEY_UPDATES`]).
    key_updates: u8,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.conn.is_server())
            .field("handshaking", &self.conn.is_handshaking())
            .field("inbound", &self.inbound.len())
            .field("outbound", &self.outbound.len())
            .field("staged", &self.staged.len())
            .field("read", &self.read)
            .field("write", &self.write)
            .finish_non_exhaustive()
    }
}

/// Where the read side of a session is. One value, so no two flags can disagree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ReadState {
    /// Neither the peer's close_notify nor the transport's end has arrived.
    Open,
    /// The transport ended before close_notify: plaintext received intact is still read,
    /// then the read finding none turns this into `Failed` with `Truncated`.
    TransportEnded,
    /// The peer's close_notify arrived (the transport may have ended after it): reads
    /// return `Ok(0)` once the plaintext before it is read.
    PeerClosed,
    /// A fatal error ended the session; every call that touches the connection returns it.
    Failed {
        /// The sticky error.
        error: Error,
        /// The peer's close_notify had arrived before it.
        after_close_notify: bool,
    },
}

impl ReadState {
    fn failed(error: Error, after_close_notify: bool) -> Self {
        Self::Failed {
            error,
            after_close_notify,
        }
    }
}

/// Where the write side of a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteState {
    /// Application data may be sent.
    Open,
    /// [`Session::close`] was called during the handshake: no data is taken, and
    /// close_notify is queued when the handshake completes.
    CloseRequested,
    /// Our close_notify is queued: nothing may follow it on the wire.
    CloseSent,
}

impl Session {
    /// KeyUpdates a peer accepts in a row with no application data between them (rustls
    /// and BoringSSL allow 32); [`refresh_keys`](Self::refresh_keys) refuses the next one.
    pub const MAX_KEY_UPDATES: u8 = 32;

    /// Starts a client session; the ClientHello is ready in [`pending_tls`](Self::pending_tls).
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        limits: Limits,
    ) -> Result<Self, Error> {
        limits.validate()?;
        let client_sni = match &server_name {
            ServerName::DnsName(name) => Some(String::from(name.as_ref())),
            _ => None,
        };
        let mut fragment = record::MAX_FRAGMENT;
        if let Some(mfs) = config.max_fragment_size {
            fragment = fragment.min(mfs.saturating_sub(record::HEADER_LEN));
        }
        let conn = Conn::client(config, server_name)?;
        let mut session = Self::new(conn, limits, fragment);
        session.client_sni = client_sni;
        session.pump()?;
        Ok(session)
    }

    /// Starts a server session, waiting for a ClientHello.
    ///
    /// The session wraps the config's certificate resolver to learn the name the client
    /// asked for (rustls 0.23's unbuffered server does not report SNI). 0-RTT early data
    /// is not supported: a config with `max_early_data_size > 0` is refused.
    pub fn server(config: Arc<ServerConfig>, limits: Limits) -> Result<Self, Error> {
        limits.validate()?;
        if config.max_early_data_size > 0 {
            return Err(Error::UnsupportedConfig("0-RTT early data"));
        }
        let mut fragment = record::MAX_FRAGMENT;
        if let Some(mfs) = config.max_fragment_size {
            fragment = fragment.min(mfs.saturating_sub(record::HEADER_LEN));
        }
        let capture = Arc::new(SniCapture::new(config.cert_resolver.clone()));
        let mut own = (*config).clone();
        own.cert_resolver = capture.clone();
        let conn = Conn::server(Arc::new(own))?;
        let mut session = Self::new(conn, limits, fragment);
        session.server_sni = Some(capture);
        Ok(session)
    }

    fn new(conn: Conn, limits: Limits, fragment: usize) -> Self {
        Self {
            conn,
            limits,
            inbound: ByteQueue::new(),
            outbound: ByteQueue::new(),
            staged: ByteQueue::new(),
            gather: alloc::vec::Vec::new(),
            coalesce: false,
            events: VecDeque::new(),
            info: None,
            client_sni: None,
            server_sni: None,
            fragment,
            overhead: record::WORST_OVERHEAD,
            read: ReadState::Open,
            write: WriteState::Open,
            key_updates: 0,
        }
    }

    // ---------------------------------------------------------------- events and getters

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if self.events.is_empty() {
            // An idle session keeps no event queue.
            self.events = VecDeque::new();
        }
        event
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the session can take input now (see [`Limits::unread_plaintext`]). False
    /// once the peer has closed, the transport has ended or a fatal error happened.
    pub fn wants_input(&self) -> bool {
        self.read == ReadState::Open && self.input_room() > 0
    }

    /// Whether ciphertext waits in [`pending_tls`](Self::pending_tls).
    pub fn has_output(&self) -> bool {
        !self.outbound.is_empty()
    }

    /// What the handshake negotiated, once it is complete.
    pub fn handshake_info(&self) -> Option<&HandshakeInfo> {
        self.info.as_ref()
    }

    /// The peer's certificate chain, leaf first, once the handshake has verified it.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The fatal error that ended this session, if any.
    pub fn error(&self) -> Option<&Error> {
        match &self.read {
            ReadState::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the peer has sent close_notify (even if a fatal error followed it).
    pub fn peer_has_closed(&self) -> bool {
        matches!(
            self.read,
            ReadState::PeerClosed
                | ReadState::Failed {
                    after_close_notify: true,
                    ..
                }
        )
    }

    /// Whether our close_notify is queued, so no application data can follow it. False
    /// while a [`close`](Self::close) called during the handshake waits for the handshake
    /// to complete (it takes effect then; [`send`](Self::send) already refuses with
    /// [`Error::Closed`]), so a binding must not end its transport yet.
    pub fn is_closed_for_send(&self) -> bool {
        self.write == WriteState::CloseSent
    }

    /// Whether our close_notify is in the output queue (or already sent): nothing follows
    /// it on the wire. The same as [`is_closed_for_send`](Self::is_closed_for_send).
    pub fn has_sent_close_notify(&self) -> bool {
        self.write == WriteState::CloseSent
    }

    /// Ciphertext bytes each record adds to its plaintext for the negotiated suite (22 for
    /// TLS 1.3; 29 for TLS 1.2 AES-GCM, 21 for ChaCha20); before the handshake completes,
    /// the worst case (29). Useful to size a buffer for [`send_into`](Self::send_into).
    pub fn record_overhead(&self) -> usize {
        self.overhead
    }

    /// Plaintext bytes a full record carries (16384, or less under the config's
    /// `max_fragment_size`). Writers that gather small pieces gather up to this much.
    pub fn max_fragment(&self) -> usize {
        self.fragment
    }

    /// Whether coalescing mode is on (see [`set_coalescing`](Self::set_coalescing)).
    pub fn is_coalescing(&self) -> bool {
        self.coalesce
    }

    /// Bytes of buffer memory the session holds now (inbound, outbound, staged plaintext,
    /// gather buffer), not counting rustls' own state.
    pub fn buffered_bytes(&self) -> usize {
        self.inbound.capacity()
            + self.outbound.capacity()
            + self.staged.capacity()
            + self.gather.capacity()
    }

    /// Frees every buffer that holds nothing now, so an idle session keeps only rustls'
    /// own state.
    ///
    /// Buffers stay allocated while traffic flows (freeing and zero-filling them for every
    /// record would cost bulk transfers several percent) and are released when the
    /// session goes quiet: when the transport reports it had nothing
    /// ([`read_tls`](Self::read_tls) with an empty slice, [`commit_tls_read`](Self::commit_tls_read)
    /// with 0, as a non-blocking binding does when a read would block), at
    /// [`read_tls_eof`](Self::read_tls_eof), or when this is called.
    pub fn release_buffers(&mut self) {
        self.inbound.release_if_empty();
        self.outbound.release_if_empty();
        self.staged.release_if_empty();
        if self.gather.is_empty() {
            self.gather = alloc::vec::Vec::new();
        }
    }

    // ---------------------------------------------------------------- the engine

    fn check(&self) -> Result<(), Error> {
        match self.error() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Runs the engine toward `goal`. Once our close_notify is queued nothing may follow
    /// it, so whatever rustls still produces (a fatal alert) is dropped.
    fn drive(&mut self, goal: Goal<'_>) -> Outcome {
        let sealed_at = (self.write == WriteState::CloseSent).then_some(self.outbound.len());
        let outcome = self.conn.drive(
            self.inbound.data_mut(),
            &mut self.outbound,
            &mut self.staged,
            goal,
            self.write,
        );
        if let Some(len) = sealed_at {
            self.outbound.truncate(len);
        }
        outcome
    }

    /// Advances the handshake and control traffic without reading application data.
    fn pump(&mut self) -> Result<(), Error> {
        let outcome = self.drive(Goal::Progress);
        self.after_drive(outcome)
    }

    /// Runs `op` in the write state (reaching it first).
    fn write_op(
        &mut self,
        op: &mut dyn FnMut(&mut dyn Encrypt, &mut ByteQueue) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let outcome = self.drive(Goal::Write(op));
        match outcome.stop {
            Ok(Stop::Written) | Err(_) => self.after_drive(outcome),
            Ok(_) => {
                self.after_drive(outcome)?;
                Err(Error::Closed)
            }
        }
    }

    fn after_drive(&mut self, outcome: Outcome) -> Result<(), Error> {
        // The common case in the traffic state: nothing consumed, nothing to report.
        if outcome.consumed == 0
            && !outcome.peer_key_update
            && !outcome.peer_closed
            && self.info.is_some()
            && matches!(outcome.stop, Ok(Stop::Written | Stop::Idle))
        {
            return Ok(());
        }
        self.inbound.consume(outcome.consumed);
        let just_completed = !self.conn.is_handshaking() && self.info.is_none();
        if just_completed {
            self.handshake_done();
        }
        if outcome.peer_key_update {
            self.events.push_back(Event::KeysUpdated(Initiator::Peer));
        }
        if outcome.peer_closed && matches!(self.read, ReadState::Open | ReadState::TransportEnded) {
            self.read = ReadState::PeerClosed;
            self.events.push_back(Event::PeerClosed);
            if self.write == WriteState::CloseSent {
                self.events.push_back(Event::Closed);
            }
        }
        match outcome.stop {
            Err(e) => {
                let after_close_notify = self.read == ReadState::PeerClosed;
                self.read = ReadState::failed(e.clone(), after_close_notify);
                Err(e)
            }
            Ok(_) => {
                if just_completed && self.write == WriteState::CloseRequested {
                    // close() was called during the handshake.
                    self.send_close_notify()?;
                }
                Ok(())
            }
        }
    }

    fn handshake_done(&mut self) {
        let version = self
            .conn
            .protocol_version()
            .unwrap_or(ProtocolVersion::Unknown(0));
        self.overhead = record::overhead(version, self.conn.cipher_suite_id());
        let sni = match &self.server_sni {
            Some(capture) => capture.take(),
            None => self.client_sni.take(),
        };
        let info = HandshakeInfo {
            version,
            cipher_suite: self
                .conn
                .cipher_suite_id()
                .unwrap_or(rustls::CipherSuite::Unknown(0)),
            key_exchange: self.conn.key_exchange(),
            alpn: self.conn.alpn().map(<[u8]>::to_vec),
            sni,
            resumed: self.conn.resumed(),
        };
        self.server_sni = None;
        self.info = Some(info.clone());
        self.events.push_back(Event::HandshakeComplete(info));
    }
}
