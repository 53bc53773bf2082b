//! The only module that names rustls connection types.
//!
//! rustls 0.23's unbuffered API is the one connection API that works without std, and it
//! is gone from rustls' main branch. Everything that touches it lives here, behind
//! [`Conn`], so a migration changes this module alone (the drive loop and its steps are
//! in `drive.rs`).
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
    EncryptError, UnbufferedConnectionCommon, UnbufferedStatus, WriteTraffic,
};
use rustls::{
    CipherSuite, ClientConfig, CommonState, HandshakeKind, NamedGroup, ProtocolVersion,
    ServerConfig, SupportedCipherSuite,
};

use crate::buffers::ByteQueue;
use crate::error::EngineError;
use crate::session::WriteState;
use crate::Error;

mod drive;
use drive::Io;

/// A client or server connection.
pub(crate) struct Conn {
    side: Side,
}

/// What the engine must remember of rustls between two drives. Kept by the caller next
/// to its other small fields (in `Conn` it would add a word of padding to every session).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Memo {
    /// The last drive stopped at decrypted application data still held by rustls.
    data_ready: bool,
    /// TLS 1.3 input other than one application-data record was consumed since the last
    /// check for a KeyUpdate request (see `drive::take_key_update_reply`).
    key_update_probe: bool,
}

impl Memo {
    /// Whether the last drive stopped at decrypted application data that rustls still
    /// holds (the next read gets it without more input).
    pub(crate) fn holds_plaintext(&self) -> bool {
        self.data_ready
    }
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
        Self { side }
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
        memo: &mut Memo,
    ) -> Outcome {
        let mut io = Io {
            incoming,
            outbound,
            staged,
            sealed: write == WriteState::CloseSent,
            probe: &mut memo.key_update_probe,
        };
        let outcome = match &mut self.side {
            Side::Client(c) => drive::run(&mut **c, &mut io, goal),
            Side::Server(s) => drive::run(&mut **s, &mut io, goal),
        };
        memo.data_ready = matches!(outcome.stop, Ok(Stop::DataReady));
        outcome
    }
}
