//! The only module that names rustls connection types.
//!
//! rustls 0.23's unbuffered API is the one connection API that works without std, and it
//! is gone from rustls' main branch. Everything that touches it lives here, behind
//! [`Conn`], so a migration changes this file alone.
//!
//! [`Conn::drive`] runs `process_tls_records` in a loop until the session has nothing
//! more to do for the caller's [`Goal`]. It appends handshake records and alerts to the
//! outbound queue, hands decrypted application data to the caller's buffer (the
//! remainder of a record that does not fit goes to the staging queue), and reports what
//! happened in an [`Outcome`]. Discarded input is not memmoved: the caller advances its
//! window by [`Outcome::consumed`].

use alloc::sync::Arc;
use core::ops::Deref;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, ReadTraffic, UnbufferedConnectionCommon,
    UnbufferedStatus, WriteTraffic,
};
use rustls::{
    CipherSuite, ClientConfig, CommonState, HandshakeKind, NamedGroup, ProtocolVersion,
    ServerConfig, SupportedCipherSuite,
};

use crate::buffers::ByteQueue;
use crate::error::EngineError;
use crate::record::TLS13_OVERHEAD;
use crate::session::WriteState;
use crate::Error;

/// A client or server connection, with what the engine must remember of rustls between
/// two drives.
pub(crate) struct Conn {
    side: Side,
    /// The last drive stopped at decrypted application data still held by rustls.
    data_ready: bool,
    /// TLS 1.3 input other than one application-data record was consumed since the last
    /// check for a KeyUpdate request (see [`take_key_update_reply`]).
    key_update_probe: bool,
}

enum Side {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// What the caller wants from one [`Conn::drive`].
pub(crate) enum Goal<'a> {
    /// Advance the handshake and handle control messages; stop at application data.
    Progress,
    /// Move application data into this buffer.
    Read(&'a mut [u8]),
    /// Lend the next decrypted record to this function, which returns how many bytes it
    /// consumed (the rest is staged); then continue as [`Goal::Progress`], so the record
    /// after it is decrypted if it is complete.
    Lend(&'a mut dyn FnMut(&[u8]) -> usize),
    /// Reach the state where records may be written, then run this operation.
    Write(&'a mut dyn FnMut(&mut dyn Encrypt, &mut ByteQueue) -> Result<(), Error>),
    /// Reach the write state, then encrypt this application data into the outbound queue,
    /// reserving this many bytes first.
    Encrypt(&'a [u8], usize),
}

/// Why [`Conn::drive`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// More input is needed (handshake blocked, or traffic state with nothing queued).
    Idle,
    /// Decrypted application data waits in rustls (for [`Goal::Progress`]) or the read
    /// buffer is full.
    DataReady,
    /// The write operation ran.
    Written,
    /// Both sides have closed.
    Closed,
}

/// What one [`Conn::drive`] did.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Input bytes to discard from the front of the window.
    pub(crate) consumed: usize,
    /// Plaintext bytes written into a [`Goal::Read`] buffer, or consumed by a
    /// [`Goal::Lend`] function.
    pub(crate) read: usize,
    /// The peer's close_notify arrived during this drive.
    pub(crate) peer_closed: bool,
    /// A TLS 1.3 peer asked for a KeyUpdate and our reply was queued.
    pub(crate) peer_key_update: bool,
    /// Why it stopped, or the fatal error (whose alert, if any, is already queued).
    pub(crate) stop: Result<Stop, Error>,
}

/// Failure of an encryption into a caller's buffer.
#[derive(Debug)]
pub(crate) enum EncryptFail {
    /// The buffer needs at least this many bytes.
    TooSmall,
    /// The keys may encrypt no more records.
    Exhausted,
}

impl From<EncryptError> for EncryptFail {
    fn from(e: EncryptError) -> Self {
        match e {
            EncryptError::InsufficientSize(_) => Self::TooSmall,
            _ => Self::Exhausted,
        }
    }
}

impl From<EncryptFail> for Error {
    fn from(e: EncryptFail) -> Self {
        match e {
            EncryptFail::TooSmall => Error::Engine(EngineError::RecordRoom),
            EncryptFail::Exhausted => Error::Tls(rustls::Error::EncryptError),
        }
    }
}

/// The write side of a connection in its traffic state.
pub(crate) trait Encrypt {
    /// Encrypts `plain` (possibly as several records) into `out`; all or nothing.
    fn encrypt(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, EncryptFail>;
    /// Encrypts a close_notify alert into `out`.
    fn close_notify(&mut self, out: &mut [u8]) -> Result<usize, EncryptFail>;
    /// Schedules a KeyUpdate; the record is produced by the next drive.
    fn refresh_keys(&mut self) -> Result<(), Error>;
}

impl<D> Encrypt for Option<WriteTraffic<'_, D>> {
    fn encrypt(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, EncryptFail> {
        match self {
            Some(wt) => Ok(wt.encrypt(plain, out)?),
            None => Err(EncryptFail::Exhausted),
        }
    }

    fn close_notify(&mut self, out: &mut [u8]) -> Result<usize, EncryptFail> {
        match self {
            Some(wt) => Ok(wt.queue_close_notify(out)?),
            None => Err(EncryptFail::Exhausted),
        }
    }

    fn refresh_keys(&mut self) -> Result<(), Error> {
        match self.take() {
            Some(wt) => Ok(wt.refresh_traffic_keys()?),
            None => Err(Error::Handshaking),
        }
    }
}

/// `process_tls_records` for either side (they are separate inherent methods in rustls).
trait Process: Deref<Target = CommonState> {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Process for UnbufferedConnectionCommon<ClientConnectionData> {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(incoming)
    }
}

impl Process for UnbufferedConnectionCommon<ServerConnectionData> {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(incoming)
    }
}

impl Conn {
    fn new(side: Side) -> Self {
        Self {
            side,
            data_ready: false,
            key_update_probe: false,
        }
    }

    pub(crate) fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, rustls::Error> {
        UnbufferedClientConnection::new(config, name).map(|c| Self::new(Side::Client(c)))
    }

    pub(crate) fn server(config: Arc<ServerConfig>) -> Result<Self, rustls::Error> {
        UnbufferedServerConnection::new(config).map(|s| Self::new(Side::Server(s)))
    }

    fn common(&self) -> &CommonState {
        match &self.side {
            Side::Client(c) => c,
            Side::Server(s) => s,
        }
    }

    pub(crate) fn is_server(&self) -> bool {
        matches!(self.side, Side::Server(_))
    }

    /// Whether the last drive stopped at decrypted application data that rustls still
    /// holds (the next read gets it without more input).
    pub(crate) fn holds_plaintext(&self) -> bool {
        self.data_ready
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    pub(crate) fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.common().protocol_version()
    }

    pub(crate) fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.common().negotiated_cipher_suite()
    }

    pub(crate) fn cipher_suite_id(&self) -> Option<CipherSuite> {
        self.cipher_suite().map(|s| s.suite())
    }

    pub(crate) fn key_exchange(&self) -> Option<NamedGroup> {
        self.common()
            .negotiated_key_exchange_group()
            .map(|g| g.name())
    }

    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        self.common().alpn_protocol()
    }

    pub(crate) fn resumed(&self) -> bool {
        self.common().handshake_kind() == Some(HandshakeKind::Resumed)
    }

    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.common().peer_certificates()
    }

    /// Runs the state machine over `incoming` toward `goal`. Once `write` is
    /// [`WriteState::CloseSent`] nothing may follow our close_notify: a peer's KeyUpdate
    /// request is not answered (and the caller drops any record rustls still produces).
    pub(crate) fn drive(
        &mut self,
        incoming: &mut [u8],
        outbound: &mut ByteQueue,
        staged: &mut ByteQueue,
        goal: Goal<'_>,
        write: WriteState,
    ) -> Outcome {
        let mut io = Io {
            incoming,
            outbound,
            staged,
            sealed: write == WriteState::CloseSent,
            probe: &mut self.key_update_probe,
        };
        let outcome = match &mut self.side {
            Side::Client(c) => drive(&mut **c, &mut io, goal),
            Side::Server(s) => drive(&mut **s, &mut io, goal),
        };
        self.data_ready = matches!(outcome.stop, Ok(Stop::DataReady));
        outcome
    }
}

/// The buffers and remembered state one drive works on.
struct Io<'a> {
    incoming: &'a mut [u8],
    outbound: &'a mut ByteQueue,
    staged: &'a mut ByteQueue,
    /// Our close_notify is queued: answer no KeyUpdate request.
    sealed: bool,
    probe: &'a mut bool,
}

/// Appends one encoded handshake/alert record to `outbound`, growing it as needed.
fn encode_into<D>(
    state: &mut rustls::unbuffered::EncodeTlsData<'_, D>,
    outbound: &mut ByteQueue,
) -> Result<(), Error> {
    // Most control records are small; retry once with the exact size when not.
    let mut want = 1024;
    loop {
        match state.encode(outbound.spare_mut(want)) {
            Ok(n) => {
                outbound.commit(n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(s)) if s.required_size > want => {
                want = s.required_size;
            }
            Err(_) => return Err(Error::Engine(EngineError::Encoding)),
        }
    }
}

/// The loop of [`Conn::drive`]: one `process_tls_records` per round, each state handled
/// by a named step, until a step says why to stop.
fn drive<C: Process>(conn: &mut C, io: &mut Io<'_>, mut goal: Goal<'_>) -> Outcome {
    let mut out = Outcome {
        consumed: 0,
        read: 0,
        peer_closed: false,
        peer_key_update: false,
        stop: Ok(Stop::Idle),
    };
    loop {
        let tls13 = conn.protocol_version() == Some(ProtocolVersion::TLSv1_3);
        let UnbufferedStatus { discard, state } = conn.process(&mut io.incoming[out.consumed..]);
        if tls13 && discard > 0 && may_hide_key_update(discard, &state) {
            *io.probe = true;
        }
        let mut round = Round::default();
        let step = match state {
            Err(e) => Some(Err(Error::from(e))),
            Ok(ConnectionState::EncodeTlsData(mut st)) => {
                encode_into(&mut st, io.outbound).err().map(Err)
            }
            Ok(ConnectionState::TransmitTlsData(st)) => {
                // Everything encoded so far is in our queue, in order.
                st.done();
                None
            }
            Ok(ConnectionState::BlockedHandshake) => Some(Ok(Stop::Idle)),
            Ok(ConnectionState::PeerClosed) => {
                out.peer_closed = true;
                None
            }
            Ok(ConnectionState::Closed) => Some(Ok(Stop::Closed)),
            Ok(ConnectionState::ReadTraffic(mut rt)) => {
                read_traffic(&mut rt, &mut goal, io.staged, &mut out, &mut round)
            }
            Ok(ConnectionState::WriteTraffic(mut wt)) => {
                if tls13
                    && !io.sealed
                    && core::mem::take(io.probe)
                    && take_key_update_reply(&mut wt)
                {
                    // The reply is in rustls' send queue now: the next round encodes it,
                    // ahead of anything the goal writes.
                    out.peer_key_update = true;
                    None
                } else {
                    Some(write_traffic(wt, &mut goal, io.outbound))
                }
            }
            Ok(ConnectionState::ReadEarlyData(_)) => {
                Some(Err(Error::Engine(EngineError::EarlyData)))
            }
            Ok(_) => Some(Err(Error::Engine(EngineError::UnknownState))),
        };
        out.consumed += discard + round.discard;
        if round.lent {
            // One record per lend: look ahead as `Progress` does.
            goal = Goal::Progress;
        }
        match step {
            None => continue,
            Some(Err(e)) => {
                fail(conn, io, &mut out, e);
                return out;
            }
            Some(Ok(stop)) => {
                out.stop = Ok(stop);
                return out;
            }
        }
    }
}

/// What one round's read step adds to the input consumed, and whether it lent a record.
#[derive(Default)]
struct Round {
    discard: usize,
    lent: bool,
}

/// Whether input consumed this round may hold a TLS 1.3 KeyUpdate request: input that
/// is not accounted for by the one application-data record a round decrypts. Checking
/// for a reply only then, not on every write, saves as much as a small record's
/// bookkeeping. (Not `&& !conn.is_handshaking()`: the record that ends the handshake can
/// arrive with a KeyUpdate behind it in the same input, from a peer that refreshes keys
/// right after its Finished; the probe then costs one check at the first write.)
fn may_hide_key_update<D>(
    discard: usize,
    state: &Result<ConnectionState<'_, '_, D>, rustls::Error>,
) -> bool {
    let app_record = match state {
        Ok(ConnectionState::ReadTraffic(rt)) => {
            rt.peek_len().map_or(0, |n| n.get() + TLS13_OVERHEAD)
        }
        _ => 0,
    };
    discard > app_record
}

/// The read-traffic step: decrypted application data goes where the goal wants it.
fn read_traffic<D>(
    rt: &mut ReadTraffic<'_, '_, D>,
    goal: &mut Goal<'_>,
    staged: &mut ByteQueue,
    out: &mut Outcome,
    round: &mut Round,
) -> Option<Result<Stop, Error>> {
    match goal {
        Goal::Progress => Some(Ok(Stop::DataReady)),
        Goal::Read(buf) => {
            while rt.peek_len().is_some() {
                if out.read == buf.len() {
                    return Some(Ok(Stop::DataReady));
                }
                match rt.next_record() {
                    Some(Ok(rec)) => {
                        let room = &mut buf[out.read..];
                        let n = room.len().min(rec.payload.len());
                        room[..n].copy_from_slice(&rec.payload[..n]);
                        if n < rec.payload.len() {
                            staged.extend_from_slice(&rec.payload[n..]);
                        }
                        out.read += n;
                        round.discard += rec.discard;
                    }
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => break,
                }
            }
            None
        }
        Goal::Lend(lend) => match rt.next_record() {
            Some(Ok(rec)) => {
                let n = lend(rec.payload);
                if n < rec.payload.len() {
                    staged.extend_from_slice(&rec.payload[n..]);
                }
                out.read += n;
                round.discard += rec.discard;
                round.lent = true;
                None
            }
            Some(Err(e)) => Some(Err(e.into())),
            None => None,
        },
        Goal::Write(_) | Goal::Encrypt(..) => {
            // Writing must not wait for the application to read: set the decrypted
            // records aside so the write state can be reached.
            while let Some(rec) = rt.next_record() {
                match rec {
                    Ok(rec) => {
                        staged.extend_from_slice(rec.payload);
                        round.discard += rec.discard;
                    }
                    Err(e) => return Some(Err(e.into())),
                }
            }
            None
        }
    }
}

/// The write-traffic step: run the goal's write, or stop idle if it has none.
fn write_traffic<D>(
    mut wt: WriteTraffic<'_, D>,
    goal: &mut Goal<'_>,
    outbound: &mut ByteQueue,
) -> Result<Stop, Error> {
    match goal {
        Goal::Write(op) => {
            let mut wt = Some(wt);
            op(&mut wt, outbound).map(|()| Stop::Written)
        }
        Goal::Encrypt(plain, want) => {
            let mut want = *want;
            loop {
                match wt.encrypt(plain, outbound.spare_mut(want)) {
                    Ok(n) => {
                        outbound.commit(n);
                        return Ok(Stop::Written);
                    }
                    Err(EncryptError::InsufficientSize(s)) if s.required_size > want => {
                        want = s.required_size;
                    }
                    Err(e) => return Err(EncryptFail::from(e).into()),
                }
            }
        }
        _ => Ok(Stop::Idle),
    }
}

/// The fatal step: queue the alert rustls holds for `e` (or ours, where rustls omits
/// it) and stop with the error.
fn fail<C: Process>(conn: &mut C, io: &mut Io<'_>, out: &mut Outcome, e: Error) {
    let queued = io.outbound.len();
    collect_alerts(conn, &mut io.incoming[out.consumed..], io.outbound, out);
    if io.outbound.len() == queued && rustls_omits_alert(&e) {
        io.outbound.extend_from_slice(&PLAINTEXT_DECODE_ERROR);
    }
    out.stop = Err(e);
}

/// Whether rustls holds an answer to the peer's KeyUpdate request; if so, moves it to
/// rustls' send queue, from which the next `process_tls_records` yields it as
/// `EncodeTlsData`.
///
/// rustls 0.23 encrypts that answer when the request arrives but keeps it outside the
/// records `process_tls_records` yields, writing it only in front of the next encrypted
/// record. So a session that only reads would never answer nor learn of the update, and
/// an encryption sized for its own plaintext would fail for want of room. A one-byte
/// encryption into an empty buffer moves the answer to the send queue (rustls does that
/// before checking the size) and fails with the room needed: more than one one-byte TLS
/// 1.3 record means the answer is there. Nothing is encrypted. (The same size shows when
/// rustls starts a KeyUpdate of its own because the keys near their usage limit, after
/// millions of records; that rare update is reported as the peer's.)
fn take_key_update_reply<D>(wt: &mut WriteTraffic<'_, D>) -> bool {
    // Header 5 + one byte + inner content type 1 + tag 16, for every TLS 1.3 suite.
    const ONE_BYTE_RECORD: usize = TLS13_OVERHEAD + 1;
    matches!(
        wt.encrypt(&[0], &mut []),
        Err(EncryptError::InsufficientSize(s)) if s.required_size > ONE_BYTE_RECORD
    )
}

/// A fatal `decode_error` alert record in plaintext (TLS 1.2 record version).
const PLAINTEXT_DECODE_ERROR: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 50];

/// Whether rustls 0.23 fails with `e` without queuing an alert: a handshake message
/// announcing more than its 64 KiB limit is refused when the deframer coalesces it, on a
/// path that returns the error without `send_fatal_alert` (every other deframing error
/// gets `decode_error`). tls-core then sends `decode_error` itself, in plaintext (it has
/// no record keys during the handshake; a peer that expected an encrypted record still
/// sees the connection end with an alert instead of silence).
fn rustls_omits_alert(e: &Error) -> bool {
    matches!(
        e,
        Error::Tls(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::HandshakePayloadTooLarge
        ))
    )
}

/// After a fatal error rustls yields the alert on the next call (rule 3 of the design).
fn collect_alerts<C: Process>(
    conn: &mut C,
    incoming: &mut [u8],
    outbound: &mut ByteQueue,
    out: &mut Outcome,
) {
    let mut offset = 0;
    // Each call pops one queued record before it looks at input. Stop when none is
    // queued: one more call would read the offending input again, and after a deframing
    // or decryption error rustls would raise it again and queue a second fatal alert
    // (a debug assertion in rustls).
    while conn.wants_write() {
        let UnbufferedStatus { discard, state } = conn.process(&mut incoming[offset..]);
        offset += discard;
        match state {
            Ok(ConnectionState::EncodeTlsData(mut st)) => {
                if encode_into(&mut st, outbound).is_err() {
                    break;
                }
            }
            _ => break,
        }
    }
    out.consumed += offset;
}
