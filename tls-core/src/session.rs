//! [`Session`]: one TLS connection as a sans-IO state machine.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};

use crate::buffers::ByteQueue;
use crate::conn::{Conn, Encrypt, Goal, Outcome, Stop};
use crate::event::{Event, HandshakeInfo, Initiator};
use crate::limits::{Limits, MAX_RECORD};
use crate::sni::SniCapture;
use crate::{Error, ReadStatus};

/// Largest plaintext fragment per record (TLS' limit; lower if the config sets
/// `max_fragment_size`).
const MAX_FRAGMENT: usize = 16_384;

/// The first size [`Session::tls_read_buffer`] offers from a fresh buffer.
const RECEIVE_STEP: usize = 4096;

/// Bytes a record adds to its plaintext, for the worst suite we support: TLS 1.2
/// AES-GCM (5 header + 8 explicit nonce + 16 tag). TLS 1.3 adds 22 (5 + 1 type + 16).
const WORST_OVERHEAD: usize = 29;

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
    error: Option<Error>,
    eof: bool,
    peer_closed: bool,
    close_requested: bool,
    close_sent: bool,
    closed_reported: bool,
    /// The last drive stopped at decrypted application data still held by rustls.
    data_ready: bool,
    /// Input that may hold a TLS 1.3 KeyUpdate request was consumed; check for a reply
    /// at the next write state.
    key_update_check: bool,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.conn.is_server())
            .field("handshaking", &self.conn.is_handshaking())
            .field("inbound", &self.inbound.len())
            .field("outbound", &self.outbound.len())
            .field("staged", &self.staged.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Ciphertext bytes one record adds to its plaintext for a negotiated suite.
fn record_overhead(version: ProtocolVersion, suite: Option<rustls::CipherSuite>) -> usize {
    use rustls::CipherSuite as S;
    match (version, suite) {
        // header 5 + inner content type 1 + tag 16
        (ProtocolVersion::TLSv1_3, _) => 22,
        // header 5 + tag 16 (the nonce is implicit)
        (
            _,
            Some(
                S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
        ) => 21,
        // header 5 + explicit nonce 8 + tag 16
        _ => WORST_OVERHEAD,
    }
}

impl Session {
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
        let mut fragment = MAX_FRAGMENT;
        if let Some(mfs) = config.max_fragment_size {
            fragment = fragment.min(mfs.saturating_sub(5));
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
        let mut fragment = MAX_FRAGMENT;
        if let Some(mfs) = config.max_fragment_size {
            fragment = fragment.min(mfs.saturating_sub(5));
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
            overhead: WORST_OVERHEAD,
            error: None,
            eof: false,
            peer_closed: false,
            close_requested: false,
            close_sent: false,
            closed_reported: false,
            data_ready: false,
            key_update_check: false,
        }
    }

    // ---------------------------------------------------------------- inputs

    /// Takes received ciphertext. Returns how many bytes were taken: fewer than offered
    /// when the inbound buffer is full or unread plaintext is above
    /// [`Limits::unread_plaintext`] (read with [`recv`](Self::recv), then offer the rest).
    /// An empty `data` means the transport had nothing: empty buffers are released (see
    /// [`release_buffers`](Self::release_buffers)).
    ///
    /// Processes what it can at once: handshake replies, alerts and KeyUpdate answers
    /// appear in [`pending_tls`](Self::pending_tls). A fatal error is returned here
    /// with its alert queued.
    pub fn read_tls(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check()?;
        if data.is_empty() {
            // The transport had nothing: the session is quiet.
            self.release_buffers();
            return Ok(0);
        }
        let n = data.len().min(self.input_room());
        if n == 0 {
            return Ok(0);
        }
        self.inbound.extend_from_slice(&data[..n]);
        self.pump()?;
        Ok(n)
    }

    /// The zero-copy form of [`read_tls`](Self::read_tls): a buffer the transport can read
    /// into directly, at most what the session can take now (empty when it can take
    /// nothing; during the handshake a fresh buffer starts at 4 KiB and doubles).
    /// Follow with [`commit_tls_read`](Self::commit_tls_read).
    pub fn tls_read_buffer(&mut self) -> &mut [u8] {
        let room = if self.error.is_some() {
            0
        } else {
            self.input_room()
        };
        // A fresh buffer must be zero-filled before it can be lent out. Handshake flights
        // and requests are a few KB, so it grows in doubling steps from 4 KiB (never less
        // than what completes the record in flight) instead of zero-filling the whole
        // room: a keep-alive connection whose buffers were released while it was quiet
        // zero-fills 4 KiB for its next small request, not 18 KiB; bulk transfers reach
        // the whole room after a few reads.
        let step = (self.inbound.capacity() * 2).max(RECEIVE_STEP);
        let offer = room.min(
            self.inbound
                .initialized_spare()
                .max(step)
                .max(self.record_completion()),
        );
        self.inbound.spare_mut(offer)
    }

    /// Tells the session that `n` bytes were written at the front of
    /// [`tls_read_buffer`](Self::tls_read_buffer), and processes them.
    ///
    /// # Panics
    /// If `n` is larger than the buffer last returned by `tls_read_buffer`.
    pub fn commit_tls_read(&mut self, n: usize) -> Result<(), Error> {
        self.check()?;
        if n == 0 {
            // The transport had nothing: the session is quiet.
            self.release_buffers();
            return Ok(());
        }
        self.inbound.commit(n);
        self.pump()
    }

    /// Tells the session its transport reached end of stream.
    ///
    /// After the peer's close_notify this is the clean end. Before it, the stream was
    /// truncated: [`recv`](Self::recv) returns what was received intact and then
    /// [`Error::Truncated`] (during the handshake, at once).
    pub fn read_tls_eof(&mut self) {
        self.eof = true;
        self.release_buffers();
        if self.error.is_none() && !self.peer_closed && self.conn.is_handshaking() {
            self.error = Some(Error::Truncated);
        }
    }

    // ---------------------------------------------------------------- outputs

    /// Ciphertext to send to the peer, oldest first. Send any prefix, then call
    /// [`tls_written`](Self::tls_written).
    #[must_use]
    pub fn pending_tls(&self) -> &[u8] {
        self.outbound.data()
    }

    /// Marks the first `n` bytes of [`pending_tls`](Self::pending_tls) as sent.
    ///
    /// # Panics
    /// If `n` is larger than `pending_tls().len()`.
    pub fn tls_written(&mut self, n: usize) {
        self.outbound.consume(n);
    }

    /// Copies pending ciphertext into `buf`, marks it sent and returns how much.
    pub fn write_tls(&mut self, buf: &mut [u8]) -> usize {
        self.outbound.read_into(buf)
    }

    // ---------------------------------------------------------------- plaintext

    /// Encrypts application data into the outbound queue. Returns how many bytes were
    /// taken: only what fits under [`Limits::outbound`] (while output is queued, only when
    /// a full record or all of `data` fits), so `Ok(0)` means "send pending output
    /// first". Before the handshake completes it takes nothing (`Ok(0)`).
    ///
    /// In coalescing mode (see [`set_coalescing`](Self::set_coalescing)) small writes are
    /// gathered and encrypted as one full record, or at [`flush`](Self::flush).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check_send()?;
        if self.conn.is_handshaking() || data.is_empty() {
            return Ok(0);
        }
        if self.coalesce {
            return self.send_coalesced(data);
        }
        let budget = self.limits.outbound.saturating_sub(self.outbound.len());
        let n = self.plaintext_fitting(budget).min(data.len());
        // While output is queued, wait for room for a full record (or all of `data`):
        // taking what trickles free as the transport drains a few bytes at a time would
        // cut the stream into tiny records (silly window syndrome).
        if n == 0 || (!self.outbound.is_empty() && n < data.len().min(self.fragment)) {
            return Ok(0);
        }
        self.encrypt_to_queue(&data[..n])?;
        Ok(n)
    }

    /// Encrypts application data straight into `out` (for example a TCP stack's send
    /// ring), taking as much plaintext as fits there whole: no copy beyond rustls' own.
    ///
    /// Records already queued in [`pending_tls`](Self::pending_tls) go first, so
    /// while any are queued this takes nothing (`consumed == 0`); gathered small writes
    /// (coalescing mode) are encrypted into `out` ahead of `data`.
    pub fn send_into(&mut self, data: &[u8], out: &mut [u8]) -> Result<Encrypted, Error> {
        self.check_send()?;
        let mut done = Encrypted::default();
        if self.conn.is_handshaking() || !self.outbound.is_empty() {
            return Ok(done);
        }
        if !self.gather.is_empty() {
            let need = self.gather.len() + self.overhead;
            if need > out.len() {
                return Ok(done);
            }
            let gather = core::mem::take(&mut self.gather);
            let written = self.encrypt_to_slice(&gather, out)?;
            self.gather = gather;
            if written == 0 {
                // A control record was queued first (see `encrypt_to_slice`).
                return Ok(done);
            }
            self.gather.clear();
            done.written = written;
        }
        let n = self
            .plaintext_fitting(out.len() - done.written)
            .min(data.len());
        if n > 0 {
            let written = self.encrypt_to_slice(&data[..n], &mut out[done.written..])?;
            if written > 0 {
                done.written += written;
                done.consumed = n;
            }
        }
        Ok(done)
    }

    /// Turns coalescing of small writes on or off. When on, [`send`](Self::send) copies
    /// plaintext into a gather buffer and encrypts only full records; call
    /// [`flush`](Self::flush) when a message is complete. Turning it off flushes.
    pub fn set_coalescing(&mut self, on: bool) -> Result<(), Error> {
        if !on {
            self.flush()?;
        }
        self.coalesce = on;
        Ok(())
    }

    /// Encrypts gathered small writes (coalescing mode) now, even if that goes past
    /// [`Limits::outbound`] by one record. A no-op when nothing is gathered.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.gather.is_empty() {
            // An idle session keeps no gather buffer.
            self.gather = alloc::vec::Vec::new();
            return Ok(());
        }
        self.check()?;
        let gather = core::mem::take(&mut self.gather);
        let result = self.encrypt_to_queue(&gather);
        // An idle session keeps no gather buffer.
        drop(gather);
        result
    }

    /// Reads decrypted application data into `buf`.
    ///
    /// Returns `Ok(n)` with `n > 0` for data, `Ok(0)` only after the peer's close_notify
    /// (clean end of stream; also for an empty `buf`), [`Error::WouldBlock`] when more
    /// input is needed, and [`Error::Truncated`] when the transport ended without
    /// close_notify.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = self.staged.read_into(buf);
        if n < buf.len() && self.staged.is_empty() && self.error.is_none() {
            let outcome = self.drive(Goal::Read(&mut buf[n..]));
            n += outcome.read;
            if let Err(e) = self.after_drive(outcome) {
                if n == 0 {
                    return Err(e);
                }
            }
        }
        if n > 0 {
            return Ok(n);
        }
        self.no_plaintext()
    }

    /// Reads decrypted application data in place, without copying it out: `f` gets the
    /// plaintext waiting now (never empty; at most one record's worth from rustls, or the
    /// data staged from earlier records) and returns how many bytes of it it consumed.
    /// What it leaves is offered again by the next read (it is staged: moved into the
    /// session's own queue if it was still in rustls). Returns what `f` consumed.
    ///
    /// When no plaintext is waiting, `f` is not called and the result is as for
    /// [`recv`](Self::recv): `Ok(0)` after the peer's close_notify (clean end of stream),
    /// [`Error::WouldBlock`] when more input is needed, [`Error::Truncated`] when the
    /// transport ended without close_notify, or the fatal error. So `Ok(0)` is the end
    /// of stream only if `f` was not called.
    ///
    /// # Panics
    /// If `f` returns more than the length of the slice it was given.
    pub fn recv_with<F>(&mut self, f: F) -> Result<usize, Error>
    where
        F: FnOnce(&[u8]) -> usize,
    {
        let mut f = Some(f);
        let mut lend = |data: &[u8]| {
            let f = f.take().expect("a read lends plaintext once");
            let n = f(data);
            assert!(n <= data.len(), "consumed more plaintext than was lent");
            n
        };
        if !self.staged.is_empty() {
            let n = lend(self.staged.data());
            self.staged.consume(n);
            return Ok(n);
        }
        if self.error.is_none() {
            let outcome = self.drive(Goal::Lend(&mut lend));
            let n = outcome.read;
            let result = self.after_drive(outcome);
            if f.is_none() {
                // `f` ran: its data was read intact, before any error that followed.
                return Ok(n);
            }
            result?;
        }
        self.no_plaintext()
    }

    /// What a read returns when no plaintext is waiting: the sticky error, `Ok(0)` after
    /// close_notify (clean end), `Truncated` at an EOF before it, or `WouldBlock`.
    fn no_plaintext(&mut self) -> Result<usize, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.peer_closed {
            return Ok(0);
        }
        if self.eof {
            self.error = Some(Error::Truncated);
            return Err(Error::Truncated);
        }
        Err(Error::WouldBlock)
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
        self.error.is_none() && self.input_room() > 0
    }

    /// Whether ciphertext waits in [`pending_tls`](Self::pending_tls).
    pub fn has_output(&self) -> bool {
        !self.outbound.is_empty()
    }

    /// Whether unread plaintext is waiting, so [`recv`](Self::recv) and
    /// [`recv_with`](Self::recv_with) return data now.
    ///
    /// Exact after every call: whenever the engine runs it deframes every complete
    /// record it holds until one carries application data (rustls yields its write and
    /// idle states only once no complete record is left), and a read that fills its
    /// buffer stops with the next record already decrypted. So a complete record is never
    /// left encrypted in the inbound buffer behind an answer of `false`.
    pub fn has_plaintext(&self) -> bool {
        !self.staged.is_empty() || self.data_ready
    }

    /// What a read would find now: plaintext, a need for input, the clean end, a
    /// truncation or a fatal error (see [`ReadStatus`]). Exact after every call, as
    /// [`has_plaintext`](Self::has_plaintext) is; plaintext received intact before an
    /// error or the end is [`ReadStatus::Ready`] until it has been read.
    pub fn read_status(&self) -> ReadStatus {
        if self.has_plaintext() {
            return ReadStatus::Ready;
        }
        match &self.error {
            Some(Error::Truncated) => ReadStatus::Truncated,
            Some(_) => ReadStatus::Failed,
            None if self.peer_closed => ReadStatus::Ended,
            None if self.eof => ReadStatus::Truncated,
            None => ReadStatus::NeedInput,
        }
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
        self.error.as_ref()
    }

    /// Whether the peer has sent close_notify.
    pub fn peer_has_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether application data can no longer be sent: [`close`](Self::close) was called
    /// (close_notify is queued, or will be once a running handshake completes).
    pub fn is_closed_for_send(&self) -> bool {
        self.close_sent || self.close_requested
    }

    /// Whether our close_notify is in the output queue (or already sent): nothing follows
    /// it on the wire.
    pub fn has_sent_close_notify(&self) -> bool {
        self.close_sent
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

    // ---------------------------------------------------------------- commands

    /// Queues close_notify (after any gathered data): we send no more application data,
    /// but keep reading until the peer's close_notify (half-close). Called during the
    /// handshake, it takes effect when the handshake completes.
    pub fn close(&mut self) -> Result<(), Error> {
        self.check()?;
        if self.close_sent {
            return Ok(());
        }
        self.flush()?;
        self.close_requested = true;
        if self.conn.is_handshaking() {
            return Ok(());
        }
        self.send_close_notify()
    }

    fn send_close_notify(&mut self) -> Result<(), Error> {
        self.write_op(&mut |enc, out| {
            let spare = out.spare_mut(64);
            let n = enc.close_notify(spare)?;
            out.commit(n);
            Ok(())
        })?;
        self.close_sent = true;
        self.report_closed();
        Ok(())
    }

    /// Sends a TLS 1.3 KeyUpdate asking the peer to update its keys too.
    ///
    /// Use it sparingly (after some data, or on a timer): a rustls peer fails the
    /// connection after more than 32 KeyUpdates in a row with no application data between
    /// them, and other stacks have similar limits.
    pub fn refresh_keys(&mut self) -> Result<(), Error> {
        self.check()?;
        if self.conn.is_handshaking() {
            return Err(Error::Handshaking);
        }
        if self.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
            return Err(Error::KeyUpdateNeedsTls13);
        }
        if self.close_sent {
            return Err(Error::Closed);
        }
        self.write_op(&mut |enc, _| enc.refresh_keys())?;
        // The KeyUpdate record is produced by the next drive.
        self.pump()?;
        self.events.push_back(Event::KeysUpdated(Initiator::Local));
        Ok(())
    }

    // ---------------------------------------------------------------- internals

    fn check(&self) -> Result<(), Error> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn check_send(&self) -> Result<(), Error> {
        self.check()?;
        if self.close_requested || self.close_sent {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Runs the engine toward `goal`. Once our close_notify is queued nothing may follow
    /// it, so whatever rustls still produces (a fatal alert) is dropped.
    fn drive(&mut self, goal: Goal<'_>) -> Outcome {
        let sealed_at = self.close_sent.then_some(self.outbound.len());
        let outcome = self.conn.drive(
            self.inbound.data_mut(),
            &mut self.outbound,
            &mut self.staged,
            goal,
            sealed_at.is_some(),
            &mut self.key_update_check,
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
        op: &mut dyn FnMut(&mut dyn Encrypt, &mut ByteQueue) -> Result<(), rustls::Error>,
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
            self.data_ready = false;
            return Ok(());
        }
        self.data_ready = matches!(outcome.stop, Ok(Stop::DataReady));
        self.inbound.consume(outcome.consumed);
        let just_completed = !self.conn.is_handshaking() && self.info.is_none();
        if just_completed {
            self.handshake_done();
        }
        if outcome.peer_key_update {
            self.events.push_back(Event::KeysUpdated(Initiator::Peer));
        }
        if outcome.peer_closed && !self.peer_closed {
            self.peer_closed = true;
            self.events.push_back(Event::PeerClosed);
            self.report_closed();
        }
        match outcome.stop {
            Err(e) => {
                let e = Error::from(e);
                self.error = Some(e.clone());
                Err(e)
            }
            Ok(_) => {
                if just_completed && self.close_requested && !self.close_sent {
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
        self.overhead = record_overhead(version, self.conn.cipher_suite_id());
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

    fn report_closed(&mut self) {
        if self.peer_closed && self.close_sent && !self.closed_reported {
            self.closed_reported = true;
            self.events.push_back(Event::Closed);
        }
    }

    /// How many input bytes the session takes now.
    fn input_room(&self) -> usize {
        if self.eof || self.peer_closed {
            return 0;
        }
        let held = self.inbound.len();
        let cap = if self.conn.is_handshaking() {
            self.limits.handshake_inbound()
        } else {
            self.limits.inbound
        };
        let hard = cap.saturating_sub(held);
        if self.staged.is_empty() && !self.data_ready {
            // Nothing for the application to read (the engine deframes every complete
            // record it holds until one carries data): what the buffer holds is an
            // incomplete record, or control traffic such as a handshake message arriving in
            // fragments. Refusing input here could only stall, whatever the plaintext
            // limit (even 0); the inbound cap still bounds it.
            return hard;
        }
        // Plaintext waits: backpressure. Still take the rest of a record already begun,
        // so the one being read can complete.
        let unread = held + self.staged.len();
        let soft = self
            .limits
            .unread_plaintext
            .saturating_sub(unread)
            .max(self.record_completion());
        hard.min(soft)
    }

    /// Bytes still missing from the last, incomplete record in the inbound buffer.
    fn record_completion(&self) -> usize {
        let data = self.inbound.data();
        let mut at = 0;
        while at < data.len() {
            if data.len() - at < 5 {
                return 5 - (data.len() - at);
            }
            let len = usize::from(u16::from_be_bytes([data[at + 3], data[at + 4]]));
            let end = at + 5 + len;
            if end > data.len() {
                return (end - data.len()).min(MAX_RECORD);
            }
            at = end;
        }
        0
    }

    /// How much plaintext fits, whole, in `space` bytes of ciphertext.
    fn plaintext_fitting(&self, space: usize) -> usize {
        let per_record = self.fragment + self.overhead;
        let full = space / per_record;
        let rest = space % per_record;
        full * self.fragment + rest.saturating_sub(self.overhead)
    }

    /// Ciphertext size of `n` plaintext bytes.
    fn ciphertext_len(&self, n: usize) -> usize {
        n + n.div_ceil(self.fragment).max(1) * self.overhead
    }

    fn encrypt_to_queue(&mut self, plain: &[u8]) -> Result<(), Error> {
        let want = self.ciphertext_len(plain.len());
        let outcome = self.drive(Goal::Encrypt(plain, want));
        match outcome.stop {
            Ok(Stop::Written) | Err(_) => self.after_drive(outcome),
            Ok(_) => {
                self.after_drive(outcome)?;
                Err(Error::Closed)
            }
        }
    }

    /// Encrypts `plain` into `out`, or writes nothing (`Ok(0)`) when reaching the write
    /// state queued a control record (an answer to the peer's KeyUpdate): that record was
    /// encrypted first, so it must be sent before anything written into `out`.
    fn encrypt_to_slice(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let mut written = 0;
        self.write_op(&mut |enc, queued| {
            if queued.is_empty() {
                written = enc.encrypt(plain, out)?;
            }
            Ok(())
        })?;
        Ok(written)
    }

    fn send_coalesced(&mut self, data: &[u8]) -> Result<usize, Error> {
        let mut taken = 0;
        while taken < data.len() {
            if self.gather.is_empty() && data.len() - taken >= self.fragment {
                // Whole records straight from `data`: gathering would only copy them.
                let budget = self.limits.outbound.saturating_sub(self.outbound.len());
                let fits = self.plaintext_fitting(budget) / self.fragment * self.fragment;
                let n = ((data.len() - taken) / self.fragment * self.fragment).min(fits);
                if n == 0 {
                    break;
                }
                self.encrypt_to_queue(&data[taken..taken + n])?;
                taken += n;
                continue;
            }
            if self.gather.len() == self.fragment {
                if self.outbound.len() >= self.limits.outbound {
                    break;
                }
                let gather = core::mem::take(&mut self.gather);
                let result = self.encrypt_to_queue(&gather);
                self.gather = gather;
                self.gather.clear();
                result?;
            }
            // The gather buffer grows with what it holds (a small response gathers a few
            // hundred bytes, not a record's worth of allocation), up to one record.
            let n = (self.fragment - self.gather.len()).min(data.len() - taken);
            self.gather.extend_from_slice(&data[taken..taken + n]);
            taken += n;
        }
        if self.gather.len() == self.fragment && self.outbound.len() < self.limits.outbound {
            let gather = core::mem::take(&mut self.gather);
            let result = self.encrypt_to_queue(&gather);
            self.gather = gather;
            self.gather.clear();
            result?;
        }
        Ok(taken)
    }
}
