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
    ConnectionState, EncodeError, EncryptError, UnbufferedConnectionCommon, UnbufferedStatus,
    WriteTraffic,
};
use rustls::{
    CipherSuite, ClientConfig, CommonState, HandshakeKind, NamedGroup, ProtocolVersion,
    ServerConfig, SupportedCipherSuite,
};

use crate::buffers::ByteQueue;

/// A client or server connection.
pub(crate) enum Conn {
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
    Write(&'a mut dyn FnMut(&mut dyn Encrypt, &mut ByteQueue) -> Result<(), rustls::Error>),
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
    pub(crate) stop: Result<Stop, rustls::Error>,
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

impl From<EncryptFail> for rustls::Error {
    fn from(e: EncryptFail) -> Self {
        match e {
            EncryptFail::TooSmall => rustls::Error::General("encrypt buffer sizing".into()),
            EncryptFail::Exhausted => rustls::Error::EncryptError,
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
    fn refresh_keys(&mut self) -> Result<(), rustls::Error>;
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

    fn refresh_keys(&mut self) -> Result<(), rustls::Error> {
        match self.take() {
            Some(wt) => wt.refresh_traffic_keys(),
            None => Err(rustls::Error::HandshakeNotComplete),
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
    pub(crate) fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, rustls::Error> {
        UnbufferedClientConnection::new(config, name).map(Self::Client)
    }

    pub(crate) fn server(config: Arc<ServerConfig>) -> Result<Self, rustls::Error> {
        UnbufferedServerConnection::new(config).map(Self::Server)
    }

    fn common(&self) -> &CommonState {
        match self {
            Self::Client(c) => c,
            Self::Server(s) => s,
        }
    }

    pub(crate) fn is_server(&self) -> bool {
        matches!(self, Self::Server(_))
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

    /// Runs the state machine over `incoming` toward `goal`. `sealed`: our close_notify
    /// has been queued, so nothing may follow it (a peer's KeyUpdate request is not
    /// answered; the caller drops any record rustls still produces). `probe`: TLS 1.3
    /// input other than one application-data record was consumed since the last check for
    /// a KeyUpdate request (see [`take_key_update_reply`]); kept by the caller across drives.
    pub(crate) fn drive(
        &mut self,
        incoming: &mut [u8],
        outbound: &mut ByteQueue,
        staged: &mut ByteQueue,
        goal: Goal<'_>,
        sealed: bool,
        probe: &mut bool,
    ) -> Outcome {
        match self {
            Self::Client(c) => drive(&mut **c, incoming, outbound, staged, goal, sealed, probe),
            Self::Server(s) => drive(&mut **s, incoming, outbound, staged, goal, sealed, probe),
        }
    }
}

/// What a TLS 1.3 record adds to its plaintext: header 5, inner content type 1, tag 16.
const TLS13_RECORD_OVERHEAD: usize = 22;

/// Appends one encoded handshake/alert record to `outbound`, growing it as needed.
fn encode_into<D>(
    state: &mut rustls::unbuffered::EncodeTlsData<'_, D>,
    outbound: &mut ByteQueue,
) -> Result<(), rustls::Error> {
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
            Err(_) => return Err(rustls::Error::General("record encoding failed".into())),
        }
    }
}

fn drive<C: Process>(
    conn: &mut C,
    incoming: &mut [u8],
    outbound: &mut ByteQueue,
    staged: &mut ByteQueue,
    mut goal: Goal<'_>,
    sealed: bool,
    probe: &mut bool,
) -> Outcome {
    let mut out = Outcome {
        consumed: 0,
        read: 0,
        peer_closed: false,
        peer_key_update: false,
        stop: Ok(Stop::Idle),
    };
    loop {
        let tls13 = conn.protocol_version() == Some(ProtocolVersion::TLSv1_3);
        // Not `&& !conn.is_handshaking()`: that is evaluated before `process`, and the
        // record that ends the handshake can arrive with a KeyUpdate behind it in the same
        // input (a peer that refreshes keys right after its Finished). The probe then costs
        // one check at the first write after the handshake.
        let traffic = tls13;
        let UnbufferedStatus { discard, state } = conn.process(&mut incoming[out.consumed..]);
        let mut extra_discard = 0;
        let mut lent = false;
        // A KeyUpdate request can only hide in input that is not accounted for by the one
        // application-data record a call decrypts: check for a reply only then, not on
        // every write (the check costs as much as a small record's bookkeeping).
        if traffic && discard > 0 {
            let app_record = match &state {
                Ok(ConnectionState::ReadTraffic(rt)) => {
                    rt.peek_len().map_or(0, |n| n.get() + TLS13_RECORD_OVERHEAD)
                }
                _ => 0,
            };
            if discard > app_record {
                *probe = true;
            }
        }
        let step: Option<Result<Stop, rustls::Error>> = match state {
            Err(e) => Some(Err(e)),
            Ok(ConnectionState::EncodeTlsData(mut st)) => {
                encode_into(&mut st, outbound).err().map(Err)
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
            Ok(ConnectionState::ReadTraffic(mut rt)) => match &mut goal {
                Goal::Progress => Some(Ok(Stop::DataReady)),
                Goal::Read(buf) => {
                    let mut stop = None;
                    while rt.peek_len().is_some() {
                        if out.read == buf.len() {
                            stop = Some(Ok(Stop::DataReady));
                            break;
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
                                extra_discard += rec.discard;
                            }
                            Some(Err(e)) => {
                                stop = Some(Err(e));
                                break;
                            }
                            None => break,
                        }
                    }
                    stop
                }
                Goal::Lend(lend) => match rt.next_record() {
                    Some(Ok(rec)) => {
                        let n = lend(rec.payload);
                        if n < rec.payload.len() {
                            staged.extend_from_slice(&rec.payload[n..]);
                        }
                        out.read += n;
                        extra_discard += rec.discard;
                        lent = true;
                        None
                    }
                    Some(Err(e)) => Some(Err(e)),
                    None => None,
                },
                Goal::Write(_) | Goal::Encrypt(..) => {
                    // Writing must not wait for the application to read: set the
                    // decrypted records aside so the write state can be reached.
                    let mut stop = None;
                    while let Some(rec) = rt.next_record() {
                        match rec {
                            Ok(rec) => {
                                staged.extend_from_slice(rec.payload);
                                extra_discard += rec.discard;
                            }
                            Err(e) => {
                                stop = Some(Err(e));
                                break;
                            }
                        }
                    }
                    stop
                }
            },
            Ok(ConnectionState::WriteTraffic(mut wt)) => {
                if tls13 && !sealed && core::mem::take(probe) && take_key_update_reply(&mut wt) {
                    // The reply is in rustls' send queue now: the next round encodes it,
                    // ahead of anything the goal writes.
                    out.peer_key_update = true;
                    None
                } else {
                    match &mut goal {
                        Goal::Write(op) => {
                            let mut wt = Some(wt);
                            Some(op(&mut wt, outbound).map(|()| Stop::Written))
                        }
                        Goal::Encrypt(plain, want) => {
                            let mut want = *want;
                            Some(loop {
                                match wt.encrypt(plain, outbound.spare_mut(want)) {
                                    Ok(n) => {
                                        outbound.commit(n);
                                        break Ok(Stop::Written);
                                    }
                                    Err(EncryptError::InsufficientSize(s))
                                        if s.required_size > want =>
                                    {
                                        want = s.required_size;
                                    }
                                    Err(e) => break Err(EncryptFail::from(e).into()),
                                }
                            })
                        }
                        _ => Some(Ok(Stop::Idle)),
                    }
                }
            }
            Ok(ConnectionState::ReadEarlyData(_)) => Some(Err(rustls::Error::General(
                "0-RTT data is not supported".into(),
            ))),
            Ok(_) => Some(Err(rustls::Error::General(
                "unknown connection state".into(),
            ))),
        };
        out.consumed += discard + extra_discard;
        if lent {
            // One record per lend: look ahead as `Progress` does.
            goal = Goal::Progress;
        }
        match step {
            None => continue,
            Some(Err(e)) => {
                let queued = outbound.len();
                collect_alerts(conn, &mut incoming[out.consumed..], outbound, &mut out);
                if outbound.len() == queued && rustls_omits_alert(&e) {
                    outbound.extend_from_slice(&PLAINTEXT_DECODE_ERROR);
                }
                out.stop = Err(e);
                return out;
            }
            Some(Ok(stop)) => {
                out.stop = Ok(stop);
                return out;
            }
        }
    }
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
    const ONE_BYTE_RECORD: usize = 5 + 1 + 1 + 16;
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
fn rustls_omits_alert(e: &rustls::Error) -> bool {
    matches!(
        e,
        rustls::Error::InvalidMessage(rustls::InvalidMessage::HandshakePayloadTooLarge)
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
