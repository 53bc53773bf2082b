//! Broken input: flipped bits in every record, garbage instead of a ClientHello, an
//! unknown CA. Errors must be fatal, sticky, and come with an alert for the peer.

mod common;

use std::sync::Arc;

use tls_core::rustls::{self, AlertDescription, CertificateError, SupportedProtocolVersion};
use tls_core::{Error, Limits, Session};
use tls_test::certs::{KeyKind, Options, Pki, TLS12, TLS13};
use tls_test::pair::{Dir, FaultPlan, Pair, Side};
use tls_test::rng::Rng;

/// A side's first fatal error and whether an alert was queued right after it.
#[derive(Debug)]
struct Failure {
    side: Side,
    error: Error,
    alert_pending: bool,
}

/// Drives to idle like [`Pair::drive`], recording each side's first error as it happens.
fn drive_watching(pair: &mut Pair, seen: &mut Vec<Failure>) {
    for _ in 0..100_000 {
        if pair.is_idle() {
            return;
        }
        pair.step();
        for side in [Side::Client, Side::Server] {
            let ep = pair.endpoint(side);
            if let Some(error) = ep.error.clone() {
                if !seen.iter().any(|f| f.side == side) {
                    // A step sends output before it delivers input, so an alert made in
                    // this step is still pending.
                    let alert_pending = ep.session.has_output();
                    seen.push(Failure {
                        side,
                        error,
                        alert_pending,
                    });
                }
            }
        }
    }
    panic!("livelock: {pair:?}");
}

/// Every later call on a failed session returns the same error.
fn assert_sticky(session: &mut Session, error: &Error) {
    let e = error.clone();
    assert_eq!(session.read_tls(b"\x17\x03\x03\x00\x01x"), Err(e.clone()));
    assert_eq!(session.commit_tls_read(0), Err(e.clone()));
    assert_eq!(session.recv(&mut [0; 16]), Err(e.clone()));
    assert_eq!(session.send(b"more"), Err(e.clone()));
    assert_eq!(session.close(), Err(e.clone()));
    assert_eq!(session.refresh_keys(), Err(e.clone()));
    assert_eq!(session.error(), Some(error));
    assert!(session.tls_read_buffer().is_empty());
    assert!(!session.wants_input());
}

const CLIENT_MESSAGES: [&[u8]; 3] = [b"first request", b"second request", b"third request"];
const SERVER_MESSAGES: [&[u8]; 2] = [b"first answer", b"second answer"];

/// Three client messages, two server answers, then the server's close_notify: one record
/// each. Tolerates failures (the calls after one return errors).
///
/// Only one side closes: a corrupted close_notify that reaches a side which has closed
/// already trips a debug assertion inside rustls (see
/// `corrupted_record_after_own_close_notify`).
fn exchange(pair: &mut Pair, seen: &mut Vec<Failure>) {
    for msg in CLIENT_MESSAGES {
        let _ = pair.client.session.send(msg);
        drive_watching(pair, seen);
    }
    for msg in SERVER_MESSAGES {
        let _ = pair.server.session.send(msg);
        drive_watching(pair, seen);
    }
    let _ = pair.server.session.close();
    drive_watching(pair, seen);
}

fn opts(versions: &[&'static SupportedProtocolVersion]) -> Options {
    common::version(versions)
}

#[test]
fn flipped_bit_in_each_application_record() {
    for versions in [TLS13, TLS12] {
        // A clean run: how many records the exchange makes each way.
        let mut pair = common::connected(KeyKind::Ed25519, &opts(versions), FaultPlan::CLEAN, 1);
        let base = Dir::BOTH.map(|d| pair.records(d).len());
        let mut seen = Vec::new();
        exchange(&mut pair, &mut seen);
        assert!(seen.is_empty(), "{seen:?}");
        assert_eq!(pair.server.plaintext, CLIENT_MESSAGES.concat());
        assert_eq!(pair.client.plaintext, SERVER_MESSAGES.concat());
        let counts = Dir::BOTH.map(|d| pair.records(d).len() - base[d as usize]);
        assert_eq!(counts, [CLIENT_MESSAGES.len(), SERVER_MESSAGES.len() + 1]);
        assert!(pair.client.clean_eof);

        for dir in Dir::BOTH {
            for record in 0..counts[dir as usize] {
                // First ciphertext byte (or explicit nonce) and last byte (the tag).
                for at in [5, usize::MAX] {
                    let what = format!("{versions:?} {dir:?} record {record} byte {at}");
                    let mut pair =
                        common::connected(KeyKind::Ed25519, &opts(versions), FaultPlan::CLEAN, 2);
                    let index = pair.records(dir).len() + record;
                    pair.flip_in_record(dir, index, at, 0x01);
                    let mut seen = Vec::new();
                    exchange(&mut pair, &mut seen);

                    let receiver = dir.receiver();
                    assert_eq!(seen.len(), 2, "{what}: {seen:?}");
                    let first = &seen[0];
                    assert_eq!(first.side, receiver, "{what}: {seen:?}");
                    assert_eq!(
                        first.error,
                        Error::Tls(rustls::Error::DecryptError),
                        "{what}"
                    );
                    assert!(first.alert_pending, "{what}: no alert queued");
                    assert_eq!(
                        seen[1].error,
                        Error::AlertReceived(AlertDescription::BadRecordMac),
                        "{what}"
                    );
                    assert_sticky(&mut pair.endpoint_mut(receiver).session, &first.error);
                    let sender = &mut pair.endpoint_mut(dir.sender()).session;
                    assert_sticky(
                        sender,
                        &Error::AlertReceived(AlertDescription::BadRecordMac),
                    );

                    // The receiver got exactly the records before the flipped one.
                    let sent: Vec<u8> = match dir {
                        Dir::ClientToServer => CLIENT_MESSAGES[..record.min(3)].concat(),
                        Dir::ServerToClient => SERVER_MESSAGES[..record.min(2)].concat(),
                    };
                    assert_eq!(pair.endpoint(receiver).plaintext, sent, "{what}");
                    assert!(!pair.endpoint(receiver).clean_eof, "{what}");
                }
            }
        }
    }
}

#[test]
fn flipped_bit_in_each_handshake_record() {
    let mut stalls = 0;
    let mut cases = 0;
    for versions in [TLS13, TLS12] {
        let clean = common::connected(KeyKind::Ed25519, &opts(versions), FaultPlan::CLEAN, 3);
        for dir in Dir::BOTH {
            let records = clean.records(dir).to_vec();
            assert!(records.len() >= 2, "{records:?}");
            for (index, info) in records.iter().enumerate() {
                for at in [5, 5 + info.len / 2, usize::MAX] {
                    let what =
                        format!("{versions:?} {dir:?} handshake record {index} {info:?} byte {at}");
                    let mut pair =
                        common::pair(KeyKind::Ed25519, &opts(versions), FaultPlan::CLEAN, 4);
                    pair.flip_in_record(dir, index, at, 0x10);
                    cases += 1;
                    let mut seen = Vec::new();
                    drive_watching(&mut pair, &mut seen);
                    if seen.is_empty() {
                        // A flipped length field can leave a side waiting for bytes that
                        // never come: neither side may have finished, and the transport
                        // ending reports truncation on both.
                        assert!(pair.client.session.is_handshaking(), "{what}");
                        assert!(pair.server.session.is_handshaking(), "{what}");
                        pair.close_transport(Dir::ClientToServer);
                        pair.close_transport(Dir::ServerToClient);
                        drive_watching(&mut pair, &mut seen);
                        assert_eq!(seen.len(), 2, "{what}: {seen:?}");
                        assert!(
                            seen.iter().all(|f| f.error == Error::Truncated),
                            "{what}: {seen:?}"
                        );
                        stalls += 1;
                        continue;
                    }

                    // The change is caught on one side, which queues an alert; the other
                    // side fails on that alert (or, when the tampering left the two sides
                    // with different keys, on the alert it cannot decrypt).
                    assert_eq!(seen.len(), 2, "{what}: {seen:?}");
                    let first = &seen[0];
                    assert!(matches!(first.error, Error::Tls(_)), "{what}: {seen:?}");
                    assert!(first.alert_pending, "{what}: no alert queued: {seen:?}");
                    let second = &seen[1];
                    assert!(
                        matches!(
                            second.error,
                            Error::AlertReceived(_) | Error::Tls(rustls::Error::DecryptError)
                        ),
                        "{what}: {seen:?}"
                    );
                    for failure in &seen {
                        assert_sticky(&mut pair.endpoint_mut(failure.side).session, &failure.error);
                    }
                }
            }
        }
    }
    eprintln!("{cases} flipped handshake records, {stalls} stalled on a length field");
    assert!(
        stalls * 10 < cases,
        "{stalls} of {cases} flips went unnoticed until EOF"
    );
}

/// A corrupted record that arrives after our own close_notify. rustls 0.23 marks a sent
/// close_notify as a sent fatal alert, then debug-asserts that no fatal alert was sent
/// before when it reports the bad record, so the workspace turns rustls' debug assertions
/// off (root Cargo.toml) and this runs in every profile.
#[test]
fn corrupted_record_after_own_close_notify() {
    let mut pair = common::connected(KeyKind::Ed25519, &opts(TLS13), FaultPlan::CLEAN, 9);
    pair.client.session.close().unwrap();
    pair.drive();
    let index = pair.records(Dir::ServerToClient).len();
    pair.flip_in_record(Dir::ServerToClient, index, 5, 0x01);
    pair.server
        .session
        .send(b"answer after the client closed")
        .unwrap();
    let mut seen = Vec::new();
    drive_watching(&mut pair, &mut seen);
    // The client fails; its write side is closed (close_notify was its last record), so
    // no alert follows, and the server, having read that close_notify, sees nothing more.
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].side, Side::Client);
    assert_eq!(seen[0].error, Error::Tls(rustls::Error::DecryptError));
    assert!(
        !seen[0].alert_pending,
        "nothing may follow our close_notify"
    );
    assert_eq!(pair.bytes_dropped(Dir::ClientToServer), 0);
    assert!(pair.server.session.peer_has_closed());
    assert_sticky(&mut pair.client.session, &seen[0].error);
}

fn server_config() -> Arc<rustls::ServerConfig> {
    Arc::new(common::pki(KeyKind::EcdsaP256).server_config(&Options::default()))
}

#[test]
fn garbage_instead_of_client_hello() {
    let cases: [&[u8]; 6] = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        // A handshake record whose body is not a ClientHello.
        b"\x16\x03\x01\x00\x08\x01\x00\x00\x04garb",
        // A record longer than TLS allows.
        b"\x16\x03\x01\xff\xff",
        // Application data before any handshake.
        b"\x17\x03\x03\x00\x05hello",
        // A ChangeCipherSpec first.
        b"\x14\x03\x03\x00\x01\x01",
        // SSLv2-style hello.
        b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10",
    ];
    for garbage in cases {
        let mut server = Session::server(server_config(), Limits::default()).unwrap();
        let result = server.read_tls(garbage);
        let error = match result {
            Err(e @ Error::Tls(_)) => e,
            other => panic!("{garbage:?}: {other:?}"),
        };
        assert!(error.is_fatal());
        let alert = server.pending_tls();
        // A plaintext fatal alert record: type 21, level 2.
        assert_eq!(alert.len(), 7, "{garbage:?}: {alert:?}");
        assert_eq!(alert[0], 21, "{garbage:?}: {alert:?}");
        assert_eq!(alert[5], 2, "{garbage:?}: {alert:?}");
        assert_sticky(&mut server, &error);
    }

    // Delivered to a real client, the server's alert ends the client too.
    let pki = common::pki(KeyKind::EcdsaP256);
    let mut pair = Pair::connect(
        Arc::new(pki.client_config(&Options::default())),
        server_config(),
        FaultPlan::RANDOM,
        5,
    );
    pair.tamper(Dir::ClientToServer, |_, bytes| {
        for b in bytes.iter_mut() {
            *b = b'G';
        }
    });
    let mut seen = Vec::new();
    drive_watching(&mut pair, &mut seen);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].side, Side::Server);
    assert!(matches!(seen[0].error, Error::Tls(_)), "{seen:?}");
    assert!(seen[0].alert_pending);
    assert!(matches!(seen[1].error, Error::AlertReceived(_)), "{seen:?}");
}

#[test]
fn random_bytes_never_panic_either_side() {
    let pki = common::pki(KeyKind::EcdsaP256);
    let client_config = Arc::new(pki.client_config(&Options::default()));
    let mut rng = Rng::new(6);
    let mut no_alert = std::collections::BTreeSet::new();
    for round in 0..300 {
        let mut bytes = vec![0; rng.range(1, 3000)];
        rng.fill(&mut bytes);
        // Half of the rounds start with a plausible record header.
        if round % 2 == 0 && bytes.len() >= 5 {
            bytes[0] = [20, 21, 22, 23][rng.below(4)];
            bytes[1] = 3;
            bytes[2] = rng.below(5) as u8;
        }
        let mut server = Session::server(server_config(), Limits::default()).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = Session::client(client_config.clone(), name, Limits::default()).unwrap();
        for session in [&mut server, &mut client] {
            match session.read_tls(&bytes) {
                Ok(_) => {}
                Err(e) => {
                    assert!(e.is_fatal(), "round {round}: {e:?}");
                    assert_eq!(session.error(), Some(&e));
                    if matches!(e, Error::Tls(_)) && !session.has_output() {
                        // rustls sends no alert for a few errors (for example a handshake
                        // message longer than it accepts).
                        no_alert.insert(format!("{e:?}"));
                    }
                }
            }
            let _ = session.recv(&mut [0; 64]);
            session.read_tls_eof();
            assert!(session.recv(&mut [0; 64]).is_err(), "round {round}");
        }
    }
    eprintln!("errors without an alert: {no_alert:?}");
}

/// A client whose only trust anchor is `anchor`.
fn client_trusting(
    anchor: &rustls::pki_types::CertificateDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(anchor.clone()).unwrap();
    Arc::new(
        tls_core::config::client_builder(tls_test::certs::clock(), versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Runs a handshake the client must refuse; checks its error, its alert, and the
/// server's error on receiving that alert.
fn refused(
    client: Arc<rustls::ClientConfig>,
    versions: &[&'static SupportedProtocolVersion],
    seed: u64,
) -> (Error, Error) {
    let pki = common::pki(KeyKind::EcdsaP256);
    let mut pair = Pair::connect(
        client,
        Arc::new(pki.server_config(&opts(versions))),
        FaultPlan::RANDOM,
        seed,
    );
    let mut seen = Vec::new();
    drive_watching(&mut pair, &mut seen);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].side, Side::Client);
    assert!(seen[0].alert_pending, "{seen:?}");
    assert_eq!(seen[1].side, Side::Server);
    assert!(pair.client.session.is_handshaking());
    assert!(pair.client.session.peer_certificates().is_none());
    assert!(pair.client.events.is_empty());
    assert_sticky(&mut pair.client.session, &seen[0].error);
    (seen[0].error.clone(), seen[1].error.clone())
}

#[test]
fn unknown_ca_is_a_certificate_error_with_an_alert() {
    // The client trusts only another PKI's CA: no anchor names the server's issuer.
    let other = Pki::new(KeyKind::Ed25519, &[]);
    for (versions, seed) in [(TLS13, 7), (TLS12, 8)] {
        let (client, server) = refused(client_trusting(&other.ca, versions), versions, seed);
        assert_eq!(
            client,
            Error::Tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        );
        assert_eq!(server, Error::AlertReceived(AlertDescription::UnknownCA));
    }
}

#[test]
fn ca_with_the_same_name_but_another_key_is_refused() {
    // An anchor with the issuer's name but another key: found by name, the signature
    // check fails.
    for (versions, seed) in [(TLS13, 10), (TLS12, 11)] {
        let impostor = common::pki(KeyKind::EcdsaP256).impostor_ca();
        let (client, server) = refused(client_trusting(&impostor, versions), versions, seed);
        assert_eq!(
            client,
            Error::Tls(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature
            ))
        );
        assert_eq!(server, Error::AlertReceived(AlertDescription::DecryptError));
    }
}
