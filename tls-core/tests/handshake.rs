//! Handshakes: versions, key types, resumption, ALPN, SNI and client certificates, under
//! the harness' fault plans.

mod common;

use tls_core::rustls::{AlertDescription, CipherSuite, ProtocolVersion, SupportedProtocolVersion};
use tls_core::{Error, Event};
use tls_test::certs::{KeyKind, Options, TLS12, TLS13};
use tls_test::pair::{Dir, FaultPlan, Pair};

use common::handshake_event;

/// Plans and seeds every handshake runs under.
const PLANS: [(FaultPlan, u64); 4] = [
    (FaultPlan::CLEAN, 1),
    (FaultPlan::ONE_BYTE, 2),
    (FaultPlan::RANDOM, 3),
    (FaultPlan::RANDOM, 4),
];

/// A full handshake, then a resumed one with the same configs, for every key kind and
/// plan; checks what both sides report and that data flows afterwards.
fn full_then_resumed(versions: &[&'static SupportedProtocolVersion], expected: ProtocolVersion) {
    for kind in KeyKind::ALL {
        for (plan, seed) in PLANS {
            let opts = Options {
                versions: versions.to_vec(),
                resumption: true,
                ..Options::default()
            };
            // Fresh configs: a fresh client session cache and server ticketer.
            let (client, server) = common::configs(kind, &opts);
            for (round, resumed) in [(0u64, false), (1, true)] {
                let what = format!("{kind:?} {expected:?} {plan:?} seed {seed} round {round}");
                let mut pair =
                    Pair::connect(client.clone(), server.clone(), plan, seed * 10 + round);
                pair.handshake()
                    .unwrap_or_else(|e| panic!("{what}: handshake failed: {e}"));
                for (side, events) in [
                    ("client", &pair.client.events),
                    ("server", &pair.server.events),
                ] {
                    assert!(
                        matches!(events.first(), Some(Event::HandshakeComplete(_))),
                        "{what}: {side} events {events:?}"
                    );
                }
                let c = handshake_event(&pair.client.events);
                let s = handshake_event(&pair.server.events);
                assert_eq!(c.version, expected, "{what}");
                assert_eq!(s.version, expected, "{what}");
                assert_eq!(c.cipher_suite, s.cipher_suite, "{what}");
                assert!(
                    !matches!(c.cipher_suite, CipherSuite::Unknown(_)),
                    "{what}: suite {:?}",
                    c.cipher_suite
                );
                assert_eq!(c.resumed, resumed, "{what}: client resumed");
                assert_eq!(s.resumed, resumed, "{what}: server resumed");
                assert_eq!(pair.client.session.handshake_info(), Some(&c), "{what}");
                assert_eq!(pair.server.session.handshake_info(), Some(&s), "{what}");
                if !resumed {
                    assert_eq!(
                        pair.client.session.peer_certificates(),
                        Some(&common::pki(kind).server.chain[..]),
                        "{what}: client sees the server chain"
                    );
                }
                assert!(pair.server.session.peer_certificates().is_none(), "{what}");
                pair.transfer(b"request after handshake", Dir::ClientToServer)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                pair.transfer(b"response", Dir::ServerToClient)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            }
        }
    }
}

#[test]
fn tls13_full_and_resumed_every_key_kind_and_split() {
    full_then_resumed(TLS13, ProtocolVersion::TLSv1_3);
}

#[test]
fn tls12_full_and_resumed_every_key_kind_and_split() {
    full_then_resumed(TLS12, ProtocolVersion::TLSv1_2);
}

#[test]
fn default_versions_negotiate_tls13() {
    let pair = common::connected(
        KeyKind::EcdsaP256,
        &Options::default(),
        FaultPlan::RANDOM,
        5,
    );
    let info = pair.client.session.handshake_info().unwrap();
    assert_eq!(info.version, ProtocolVersion::TLSv1_3);
    assert!(!info.resumed);
    assert!(info.key_exchange.is_some());
}

/// A pair on `versions` whose client offers the ALPN protocols `client` and whose server
/// accepts `server`.
fn alpn_pair(
    versions: &[&'static SupportedProtocolVersion],
    client: &[&[u8]],
    server: &[&[u8]],
    seed: u64,
) -> Pair {
    let opts = |alpn: &[&[u8]]| Options {
        versions: versions.to_vec(),
        alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        ..Options::default()
    };
    common::pair_with(
        KeyKind::EcdsaP256,
        &opts(client),
        &opts(server),
        FaultPlan::RANDOM,
        seed,
    )
}

#[test]
fn alpn_match_reported_on_both_sides() {
    for (versions, seed) in [(TLS13, 11), (TLS12, 12)] {
        let mut pair = alpn_pair(versions, &[b"h2", b"http/1.1"], &[b"http/1.1"], seed);
        pair.handshake().unwrap();
        let c = handshake_event(&pair.client.events);
        let s = handshake_event(&pair.server.events);
        assert_eq!(c.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(s.alpn.as_deref(), Some(&b"http/1.1"[..]));
    }
}

#[test]
fn no_alpn_offered_reports_none() {
    let pair = common::connected(
        KeyKind::EcdsaP256,
        &Options::default(),
        FaultPlan::CLEAN,
        13,
    );
    assert_eq!(pair.client.session.handshake_info().unwrap().alpn, None);
    assert_eq!(pair.server.session.handshake_info().unwrap().alpn, None);
}

#[test]
fn alpn_mismatch_fails_with_no_application_protocol() {
    for (versions, seed) in [(TLS13, 21), (TLS12, 22)] {
        let mut pair = alpn_pair(versions, &[b"http/1.1"], &[b"h2"], seed);
        pair.drive();
        assert_eq!(
            pair.server.error,
            Some(Error::Tls(tls_core::rustls::Error::NoApplicationProtocol))
        );
        assert_eq!(
            pair.client.error,
            Some(Error::AlertReceived(
                AlertDescription::NoApplicationProtocol
            ))
        );
        assert!(pair.client.session.is_handshaking());
        assert!(pair.client.events.is_empty(), "{:?}", pair.client.events);
        assert!(pair.server.events.is_empty(), "{:?}", pair.server.events);
    }
}

#[test]
fn sni_reported_on_the_server() {
    let pki = tls_test::certs::Pki::new(KeyKind::EcdsaP256, &["api.tlsflow.test"]);
    let opts = Options::default();
    for (versions, seed) in [(TLS13, 31), (TLS12, 32)] {
        let opts = Options {
            versions: versions.to_vec(),
            ..opts.clone()
        };
        let mut pair = common::pair_named(&pki, "api.tlsflow.test", &opts, FaultPlan::RANDOM, seed);
        pair.handshake().unwrap();
        assert_eq!(
            handshake_event(&pair.server.events).sni.as_deref(),
            Some("api.tlsflow.test")
        );
        assert_eq!(
            pair.server.session.handshake_info().unwrap().sni.as_deref(),
            Some("api.tlsflow.test")
        );
        assert_eq!(
            pair.client.session.handshake_info().unwrap().sni.as_deref(),
            Some("api.tlsflow.test")
        );
    }
}

#[test]
fn sni_absent_for_an_ip_address() {
    let pki = common::pki(KeyKind::EcdsaP256);
    let mut pair = common::pair_named(pki, "127.0.0.1", &Options::default(), FaultPlan::CLEAN, 33);
    pair.handshake().unwrap();
    assert_eq!(pair.server.session.handshake_info().unwrap().sni, None);
    assert_eq!(pair.client.session.handshake_info().unwrap().sni, None);
}

#[test]
fn mtls_accepted_server_sees_client_chain() {
    for kind in KeyKind::ALL {
        for (versions, seed) in [(TLS13, 41), (TLS12, 42)] {
            let opts = Options {
                versions: versions.to_vec(),
                mtls: true,
                ..Options::default()
            };
            let pair = common::connected(kind, &opts, FaultPlan::RANDOM, seed);
            let pki = common::pki(kind);
            assert_eq!(
                pair.server.session.peer_certificates(),
                Some(&pki.client.chain[..]),
                "{kind:?}"
            );
            assert_eq!(
                pair.client.session.peer_certificates(),
                Some(&pki.server.chain[..]),
                "{kind:?}"
            );
        }
    }
}

#[test]
fn mtls_rejected_when_client_has_no_certificate() {
    for (versions, seed) in [(TLS13, 51), (TLS12, 52)] {
        let server_opts = Options {
            mtls: true,
            ..common::version(versions)
        };
        let client_opts = common::version(versions);
        let mut pair = common::pair_with(
            KeyKind::EcdsaP256,
            &client_opts,
            &server_opts,
            FaultPlan::RANDOM,
            seed,
        );
        pair.drive();
        assert_eq!(
            pair.server.error,
            Some(Error::Tls(tls_core::rustls::Error::NoCertificatesPresented)),
            "{versions:?}"
        );
        assert!(pair.server.session.is_handshaking());
        // The server's alert reached the client.
        let expected = AlertDescription::CertificateRequired;
        assert_eq!(
            pair.client.error,
            Some(Error::AlertReceived(expected)),
            "{versions:?}"
        );
        // Sticky on the client too.
        assert_eq!(
            pair.client.session.send(b"x"),
            Err(Error::AlertReceived(expected))
        );
        assert!(pair.server.session.peer_certificates().is_none());
    }
}
