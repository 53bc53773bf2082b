//! Every record size the engine and its bindings reckon with, in one place.
//!
//! A TLS record is a 5-byte header and a protected fragment of at most [`MAX_FRAGMENT`]
//! plaintext bytes. Protection adds a per-suite overhead ([`TLS13_OVERHEAD`],
//! [`TLS12_GCM_OVERHEAD`], [`TLS12_CHACHA_OVERHEAD`]); [`WORST_OVERHEAD`] is the largest
//! of them, which a binding uses to size a buffer before the handshake has chosen a
//! suite. [`Session::record_overhead`](crate::Session::record_overhead) gives the
//! negotiated one.

use rustls::{CipherSuite, ProtocolVersion};

/// Bytes of a record header: content type 1, legacy version 2, length 2.
pub const HEADER_LEN: usize = 5;

/// Largest plaintext fragment per record (TLS' limit; lower if the config sets
/// `max_fragment_size`).
pub const MAX_FRAGMENT: usize = 16_384;

/// Largest expansion of a protected fragment over its plaintext that a peer may send
/// (TLS 1.2's limit; rustls 0.23 accepts it in either version).
pub const MAX_EXPANSION: usize = 2_048;

/// The largest TLS record rustls 0.23 accepts: header, 16 KiB of plaintext and 2 KiB of
/// expansion.
pub const MAX_RECORD: usize = HEADER_LEN + MAX_FRAGMENT + MAX_EXPANSION;

/// Bytes of an AEAD tag, for every suite the engine supports.
pub const TAG_LEN: usize = 16;

/// What a TLS 1.3 record adds to its plaintext: header, inner content type 1, tag.
pub const TLS13_OVERHEAD: usize = HEADER_LEN + 1 + TAG_LEN;

/// What a TLS 1.2 AES-GCM record adds to its plaintext: header, explicit nonce 8, tag.
pub const TLS12_GCM_OVERHEAD: usize = HEADER_LEN + 8 + TAG_LEN;

/// What a TLS 1.2 ChaCha20-Poly1305 record adds to its plaintext: header, tag (the nonce
/// is implicit).
pub const TLS12_CHACHA_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The largest per-record overhead of any suite the engine supports (TLS 1.2 AES-GCM).
pub const WORST_OVERHEAD: usize = TLS12_GCM_OVERHEAD;

/// Ciphertext bytes one record adds to its plaintext for a negotiated suite.
pub(crate) fn overhead(version: ProtocolVersion, suite: Option<CipherSuite>) -> usize {
    use CipherSuite as S;
    match (version, suite) {
        (ProtocolVersion::TLSv1_3, _) => TLS13_OVERHEAD,
        (
            _,
            Some(
                S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
        ) => TLS12_CHACHA_OVERHEAD,
        _ => WORST_OVERHEAD,
    }
}

/// The length of the record whose header starts `data`, header included, once the header
/// is complete.
pub(crate) fn record_len(data: &[u8]) -> Option<usize> {
    match data {
        [_, _, _, hi, lo, ..] => Some(HEADER_LEN + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}
