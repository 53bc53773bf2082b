//! What a [`Session`](crate::Session) reports through
//! [`Session::poll_event`](crate::Session::poll_event).

use alloc::string::String;
use alloc::vec::Vec;

use rustls::{CipherSuite, NamedGroup, ProtocolVersion};

/// Something that happened to a session. Each event is reported once, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished; application data may flow both ways. The peer's
    /// certificate chain is available from
    /// [`Session::peer_certificates`](crate::Session::peer_certificates).
    HandshakeComplete(HandshakeInfo),
    /// Traffic keys changed (TLS 1.3 KeyUpdate).
    KeysUpdated(Initiator),
    /// The peer sent close_notify: every byte it sent has been received, and
    /// [`Session::recv`](crate::Session::recv) returns `Ok(0)` once the data before it is read.
    /// We may still send.
    PeerClosed,
    /// Both sides have sent close_notify. Nothing more will flow.
    Closed,
}

/// Which side started a KeyUpdate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// We did, through [`Session::refresh_keys`](crate::Session::refresh_keys) (or rustls
    /// did, because a key's usage limit was near).
    Local,
    /// The peer asked for new keys and we answered. (A peer KeyUpdate that does not ask for
    /// an answer changes only the peer's keys and is not visible through rustls 0.23.)
    Peer,
}

/// What the handshake negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// The protocol version.
    pub version: ProtocolVersion,
    /// The cipher suite.
    pub cipher_suite: CipherSuite,
    /// The key exchange group, when the handshake used one.
    pub key_exchange: Option<NamedGroup>,
    /// The ALPN protocol both sides agreed on, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name: on a client the name it asked for (if it was a DNS name), on a
    /// server the name the client sent in its SNI extension.
    pub sni: Option<String>,
    /// Whether the session resumed an earlier one instead of doing a full handshake.
    pub resumed: bool,
}
