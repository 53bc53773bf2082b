//! Handshakes with the X25519MLKEM768 hybrid: the default negotiates it, falls back
//! without a HelloRetryRequest, retries when the shares do not fit, and refuses a forged
//! server share. Certificate compression in handshakes is here too.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use rustls::crypto::ring::kx_group::{SECP256R1, X25519};
use rustls::crypto::SupportedKxGroup;
use rustls::{ClientConfig, NamedGroup, ServerConfig};
use tls_core::compress;
use tls_core::config::{self, PostQuantum};
use tls_core::kx::X25519MLKEM768;
use tls_core::{Error, Limits, Session};
use tls_test::certs::{clock, KeyKind, Pki, TLS12, TLS13};
use tls_test::pair::{Dir, FaultPlan, Pair, Side};

fn provider(groups: &[&'static dyn SupportedKxGroup]) -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = Arc::unwrap_or_clone(config::crypto_provider());
    p.kx_groups = groups.to_vec();
    Arc::new(p)
}

fn client_config(pki: &Pki, provider: Arc<rustls::crypto::CryptoProvider>) -> ClientConfig {
    config::client_builder_with(provider, clock(), config::ALL_VERSIONS)
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth()
}

fn server_config(pki: &Pki, provider: Arc<rustls::crypto::CryptoProvider>) -> ServerConfig {
    config::server_builder_with(provider, clock(), config::ALL_VERSIONS)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server.chain.clone(), pki.server.private_key())
        .unwrap()
}

/// Everything the client sent, recorded as it leaves.
fn record_client_bytes(pair: &mut Pair) -> Rc<RefCell<Vec<u8>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    pair.tamper(Dir::ClientToServer, move |_, piece| {
        sink.borrow_mut().extend_from_slice(piece)
    });
    seen
}

/// Plaintext handshake records (ClientHellos) the client sent: 2 after a HelloRetryRequest.
fn client_hellos(pair: &Pair) -> usize {
    pair.records(Dir::ClientToServer)
        .iter()
        .filter(|r| r.content_type == 22)
        .count()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// group 0x11ec, share length 1216; group 0x001d, share length 32.
const HYBRID_SHARE: [u8; 4] = [0x11, 0xec, 0x04, 0xc0];
const X25519_SHARE: [u8; 4] = [0x00, 0x1d, 0x00, 0x20];

fn connect(client: ClientConfig, server: ServerConfig) -> (Pair, Rc<RefCell<Vec<u8>>>) {
    let mut pair = Pair::connect(Arc::new(client), Arc::new(server), FaultPlan::CLEAN, 11);
    let seen = record_client_bytes(&mut pair);
    pair.handshake()
        .unwrap_or_else(|e| panic!("handshake failed: {e}"));
    (pair, seen)
}

fn group(pair: &mut Pair, side: Side) -> Option<NamedGroup> {
    pair.session(side).handshake_info().unwrap().key_exchange
}

#[test]
fn the_default_negotiates_the_hybrid_with_two_key_shares() {
    for kind in KeyKind::ALL {
        let pki = common::pki(kind);
        let (mut pair, seen) = connect(
            client_config(pki, config::crypto_provider()),
            server_config(pki, config::crypto_provider()),
        );
        for side in [Side::Client, Side::Server] {
            assert_eq!(
                group(&mut pair, side),
                Some(NamedGroup::X25519MLKEM768),
                "{kind:?}"
            );
        }
        assert_eq!(client_hellos(&pair), 1, "no HelloRetryRequest");
        let hello = seen.borrow();
        assert!(contains(&hello, &HYBRID_SHARE), "hybrid share offered");
        assert!(contains(&hello, &X25519_SHARE), "X25519 share offered too");
    }
}

#[test]
fn tls12_negotiates_x25519() {
    // The hybrid is TLS 1.3 only; TLS 1.2 takes the next group.
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS12, FaultPlan::CLEAN, 2);
    assert_eq!(group(&mut pair, Side::Client), Some(NamedGroup::X25519));
    assert_eq!(group(&mut pair, Side::Server), Some(NamedGroup::X25519));
}

#[test]
fn the_switch_turns_the_hybrid_off_and_a_classical_peer_needs_no_retry() {
    let pki = common::pki(KeyKind::EcdsaP256);
    let off = || config::crypto_provider_with(PostQuantum::Off);
    assert!(!off()
        .kx_groups
        .iter()
        .any(|g| g.name() == NamedGroup::X25519MLKEM768));
    assert_eq!(
        config::crypto_provider().kx_groups[0].name(),
        NamedGroup::X25519MLKEM768
    );

    // Classical client, hybrid server: X25519, one ClientHello without the hybrid.
    let (mut pair, seen) = connect(
        client_config(pki, off()),
        server_config(pki, config::crypto_provider()),
    );
    assert_eq!(group(&mut pair, Side::Server), Some(NamedGroup::X25519));
    assert_eq!(client_hellos(&pair), 1);
    assert!(!contains(&seen.borrow(), &HYBRID_SHARE));

    // Hybrid client, classical server: the X25519 component share answers at once.
    let (mut pair, _) = connect(
        client_config(pki, config::crypto_provider()),
        server_config(pki, off()),
    );
    assert_eq!(group(&mut pair, Side::Client), Some(NamedGroup::X25519));
    assert_eq!(client_hellos(&pair), 1, "no HelloRetryRequest");
}

#[test]
fn hello_retry_request_when_the_client_sent_only_x25519() {
    // A client that lists the hybrid but sends only an X25519 share (X25519 first), and
    // a server that has only the hybrid: the server asks again, the client obliges.
    let pki = common::pki(KeyKind::EcdsaP256);
    let (mut pair, seen) = connect(
        client_config(pki, provider(&[X25519, X25519MLKEM768])),
        server_config(pki, provider(&[X25519MLKEM768])),
    );
    assert_eq!(client_hellos(&pair), 2, "one HelloRetryRequest");
    for side in [Side::Client, Side::Server] {
        assert_eq!(group(&mut pair, side), Some(NamedGroup::X25519MLKEM768));
    }
    assert!(
        contains(&seen.borrow(), &HYBRID_SHARE),
        "second hello has the hybrid"
    );
}

#[test]
fn hello_retry_request_when_the_client_sent_only_the_hybrid() {
    // A client whose only share is the hybrid (X25519 not in its groups, so no component
    // share) and a server without the hybrid: retry with P-256.
    let pki = common::pki(KeyKind::EcdsaP256);
    let (mut pair, seen) = connect(
        client_config(pki, provider(&[X25519MLKEM768, SECP256R1])),
        server_config(pki, config::crypto_provider_with(PostQuantum::Off)),
    );
    assert_eq!(client_hellos(&pair), 2, "one HelloRetryRequest");
    assert!(!contains(&seen.borrow(), &X25519_SHARE));
    for side in [Side::Client, Side::Server] {
        assert_eq!(group(&mut pair, side), Some(NamedGroup::secp256r1));
    }
}

#[test]
fn a_forged_server_share_fails_the_handshake_with_an_alert() {
    let pki = common::pki(KeyKind::EcdsaP256);
    let client = Session::client(
        Arc::new(client_config(pki, config::crypto_provider())),
        "localhost".try_into().unwrap(),
        Limits::default(),
    )
    .unwrap();
    let server = Session::server(
        Arc::new(server_config(pki, config::crypto_provider())),
        Limits::default(),
    )
    .unwrap();
    let mut pair = Pair::new(client, server, FaultPlan::CLEAN, 3);
    // Flip a bit inside the ML-KEM ciphertext of the ServerHello's key share: record
    // header 5 + handshake header 4 + version 2 + random 32 + session id 33 + suite 2 +
    // compression 1 + extensions length 2, then the extensions; 200 bytes in is inside
    // the 1088-byte ciphertext whatever the extension order.
    pair.flip_in_record(Dir::ServerToClient, 0, 200, 0x01);
    assert!(pair.handshake().is_err());
    // Implicit rejection: the client derives other handshake keys and cannot decrypt
    // the server's flight; it sends its alert (under those keys), so the server fails too.
    let error = pair.session(Side::Client).error().cloned();
    assert_eq!(error, Some(Error::Tls(rustls::Error::DecryptError)));
    assert!(pair.session(Side::Server).error().is_some());
}

#[test]
fn certificate_compression_shrinks_the_server_flight() {
    // RSA: the largest chain. Same PKI, compression on vs off on both sides.
    let pki = common::pki(KeyKind::Rsa2048);
    let tls13 = || {
        let mut p = Arc::unwrap_or_clone(config::crypto_provider());
        p.kx_groups = vec![X25519];
        Arc::new(p)
    };
    let build = |compress_client: bool, compress_server: bool| {
        let mut c = config::client_builder_with(tls13(), clock(), TLS13)
            .unwrap()
            .with_root_certificates(pki.roots())
            .with_no_client_auth();
        let mut s = config::server_builder_with(tls13(), clock(), TLS13)
            .unwrap()
            .with_no_client_auth()
            // Leaf and CA (the throwaway PKI serves its leaf alone): names and keys
            // repeated across the chain are what zlib finds to compress.
            .with_single_cert(
                vec![pki.server.chain[0].clone(), pki.ca.clone()],
                pki.server.private_key(),
            )
            .unwrap();
        c.cert_decompressors.clear();
        c.cert_compressors.clear();
        s.cert_compressors.clear();
        s.cert_decompressors.clear();
        s.send_tls13_tickets = 0;
        if compress_client {
            compress::enable_client(&mut c);
        }
        if compress_server {
            compress::enable_server(&mut s);
        }
        let (pair, seen) = connect(c, s);
        (pair.bytes_sent(Dir::ServerToClient), seen)
    };
    let (plain, _) = build(false, false);
    let (compressed, seen) = build(true, true);
    // The client offers zlib: extension 27 (compress_certificate), 1 algorithm (zlib = 1).
    assert!(contains(
        &seen.borrow(),
        &[0x00, 0x1b, 0x00, 0x03, 0x02, 0x00, 0x01]
    ));
    assert!(
        compressed + 200 < plain,
        "compressed flight {compressed} B, plain {plain} B"
    );
    // Either side alone: a plain certificate, and the handshake still works.
    assert_eq!(build(true, false).0, plain);
    assert_eq!(build(false, true).0, plain);
}

#[test]
fn the_zlib_decompressor_accepts_exactly_one_stream_of_the_declared_size() {
    use rustls::compress::CompressionLevel;
    let input: Vec<u8> = (0..3000u32)
        .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
        .collect();
    for level in [CompressionLevel::Interactive, CompressionLevel::Amortized] {
        let packed = compress::ZLIB_COMPRESSOR
            .compress(input.clone(), level)
            .unwrap();
        assert!(packed.len() < input.len());
        let mut out = vec![0u8; input.len()];
        compress::ZLIB_DECOMPRESSOR
            .decompress(&packed, &mut out)
            .unwrap();
        assert_eq!(out, input);
        // Declared size too small or too large, trailing bytes, truncation, corruption.
        let mut short = vec![0u8; input.len() - 1];
        assert!(compress::ZLIB_DECOMPRESSOR
            .decompress(&packed, &mut short)
            .is_err());
        let mut long = vec![0u8; input.len() + 1];
        assert!(compress::ZLIB_DECOMPRESSOR
            .decompress(&packed, &mut long)
            .is_err());
        let trailing = [packed.as_slice(), &[0]].concat();
        assert!(compress::ZLIB_DECOMPRESSOR
            .decompress(&trailing, &mut out)
            .is_err());
        assert!(compress::ZLIB_DECOMPRESSOR
            .decompress(&packed[..packed.len() - 1], &mut out)
            .is_err());
        let mut corrupt = packed.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff; // the adler32 checksum
        assert!(compress::ZLIB_DECOMPRESSOR
            .decompress(&corrupt, &mut out)
            .is_err());
        assert!(compress::ZLIB_DECOMPRESSOR
            .decompress(&[], &mut out)
            .is_err());
    }
}
