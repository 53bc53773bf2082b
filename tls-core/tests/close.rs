//! End of stream: half-close in both orders, truncation at every offset, EOF during the
//! handshake.

mod common;

use tls_core::{Error, Event};
use tls_test::certs::{KeyKind, Options, TLS12, TLS13};
use tls_test::pair::{pattern, Dir, FaultPlan, Side};

fn close_events(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| matches!(e, Event::PeerClosed | Event::Closed))
        .cloned()
        .collect()
}

/// `first` closes while the other side keeps sending; `first` reads everything, then the
/// other side closes too.
fn half_close(
    first: Side,
    plan: FaultPlan,
    seed: u64,
    versions: &[&'static rustls::SupportedProtocolVersion],
) {
    let second = first.peer();
    let mut pair = common::connected_on(KeyKind::EcdsaP256, versions, plan, seed);
    pair.take_events(Side::Client);
    pair.take_events(Side::Server);
    pair.transfer(b"last words before closing", Dir::from(first))
        .unwrap();

    pair.session(first).close().unwrap();
    assert!(pair.session(first).is_closed_for_send());
    assert_eq!(pair.session(first).send(b"too late"), Err(Error::Closed));
    let refused = if versions == TLS13 {
        Error::Closed
    } else {
        Error::KeyUpdateNeedsTls13
    };
    assert_eq!(pair.session(first).refresh_keys(), Err(refused));
    pair.drive();
    // The other side saw a clean end of the stream from `first`.
    assert_eq!(close_events(&pair.take_events(second)), [Event::PeerClosed]);
    assert!(pair.endpoint(second).clean_eof);
    assert!(pair.session(second).peer_has_closed());
    assert_eq!(pair.session(second).recv(&mut [0; 8]), Ok(0));
    assert!(
        pair.endpoint(first).events.is_empty(),
        "{:?}",
        pair.endpoint(first).events
    );

    // `first` still reads: everything the other side sends arrives, and no clean EOF yet.
    let tail = pattern(
        seed,
        if plan == FaultPlan::ONE_BYTE {
            30_000
        } else {
            200_000
        },
    );
    pair.transfer(&tail, Dir::from(second)).unwrap();
    assert!(!pair.endpoint(first).clean_eof);
    assert_eq!(
        pair.session(first).recv(&mut [0; 8]),
        Err(Error::WouldBlock)
    );

    pair.session(second).close().unwrap();
    pair.drive();
    assert_eq!(
        close_events(&pair.take_events(first)),
        [Event::PeerClosed, Event::Closed]
    );
    assert_eq!(close_events(&pair.take_events(second)), [Event::Closed]);
    assert!(pair.endpoint(first).clean_eof);
    for side in [Side::Client, Side::Server] {
        assert_eq!(pair.session(side).recv(&mut [0; 8]), Ok(0), "{side:?}");
        assert_eq!(
            pair.session(side).recv(&mut [0; 8]),
            Ok(0),
            "{side:?} again"
        );
        assert!(!pair.session(side).has_output(), "{side:?}");
        assert_eq!(pair.session(side).error(), None, "{side:?}");
    }
    assert!(pair.is_idle());
}

#[test]
fn half_close_client_first() {
    half_close(Side::Client, FaultPlan::RANDOM, 1, TLS13);
    half_close(Side::Client, FaultPlan::ONE_BYTE, 2, TLS12);
}

#[test]
fn half_close_server_first() {
    half_close(Side::Server, FaultPlan::RANDOM, 3, TLS13);
    half_close(Side::Server, FaultPlan::CLEAN, 4, TLS12);
}

#[test]
fn close_during_handshake_takes_effect_after_it() {
    let mut pair = common::pair(
        KeyKind::EcdsaP256,
        &Options::default(),
        FaultPlan::RANDOM,
        5,
    );
    pair.client.session.close().unwrap();
    assert_eq!(pair.client.session.send(b"x"), Err(Error::Closed));
    pair.drive();
    assert!(!pair.client.session.is_handshaking());
    assert!(pair.server.clean_eof);
    assert_eq!(close_events(&pair.server.events), [Event::PeerClosed]);
}

/// What the client saw of one run cut at `cut`.
struct CutRun {
    /// Bytes the server produced in all (its whole transcript).
    total: usize,
    plaintext: Vec<u8>,
    end: Result<usize, Error>,
}

const MESSAGE: &[u8] = b"a small message that the server sends before close_notify";

/// Handshake, a small message and close_notify from the server, with the server-to-client
/// stream cut at `cut` (`None`: not cut); then EOF to the client, and its `recv` drained.
fn cut_run(versions: &[&'static rustls::SupportedProtocolVersion], cut: Option<usize>) -> CutRun {
    let mut pair = common::pair_on(KeyKind::Ed25519, versions, FaultPlan::CLEAN, 6);
    pair.auto_read = false;
    if let Some(cut) = cut {
        pair.cut(Dir::ServerToClient, cut);
    }
    pair.drive();
    if !pair.server.session.is_handshaking() && pair.server.session.error().is_none() {
        assert_eq!(pair.server.session.send(MESSAGE), Ok(MESSAGE.len()));
        pair.server.session.close().unwrap();
        pair.drive();
    }
    let total = pair.bytes_sent(Dir::ServerToClient);
    let client = &mut pair.client.session;
    client.read_tls_eof();
    let mut plaintext = Vec::new();
    let mut buf = [0u8; 7];
    let end = loop {
        match client.recv(&mut buf) {
            Ok(0) => break Ok(0),
            Ok(n) => plaintext.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    // Whatever ended the stream stays: the same answer again.
    let again = client.recv(&mut buf);
    assert_eq!(again, end, "cut {cut:?}: recv changed its mind");
    CutRun {
        total,
        plaintext,
        end,
    }
}

fn truncation_at_every_offset(versions: &[&'static rustls::SupportedProtocolVersion]) {
    let whole = cut_run(versions, None);
    assert_eq!(whole.end, Ok(0));
    assert_eq!(whole.plaintext, MESSAGE);
    let mut truncated = 0;
    for cut in 0..=whole.total {
        let run = cut_run(versions, Some(cut));
        assert!(
            MESSAGE.starts_with(&run.plaintext),
            "cut {cut}: client read bytes that were not sent: {:?}",
            run.plaintext
        );
        if cut >= run.total {
            assert_eq!(
                run.end,
                Ok(0),
                "cut {cut} of {}: whole stream delivered",
                run.total
            );
            assert_eq!(run.plaintext, MESSAGE);
        } else {
            assert_eq!(
                run.end,
                Err(Error::Truncated),
                "cut {cut} of {}: the client must not see a clean end",
                run.total
            );
            truncated += 1;
        }
    }
    assert_eq!(truncated, whole.total, "layout changed between runs");
    // Handshake flight with a certificate chain, the message and close_notify.
    assert!(whole.total > 700, "transcript of {} bytes", whole.total);
    eprintln!("{versions:?}: cut at each of {} offsets", whole.total + 1);
}

#[test]
fn truncation_at_every_offset_tls13() {
    truncation_at_every_offset(TLS13);
}

#[test]
fn truncation_at_every_offset_tls12() {
    truncation_at_every_offset(TLS12);
}

#[test]
fn eof_during_handshake_is_truncated_at_once() {
    // Client: right after the ClientHello.
    let mut pair = common::pair(KeyKind::EcdsaP256, &Options::default(), FaultPlan::CLEAN, 7);
    pair.client.session.read_tls_eof();
    assert_eq!(pair.client.session.error(), Some(&Error::Truncated));
    assert_eq!(pair.client.session.recv(&mut [0; 8]), Err(Error::Truncated));
    assert_eq!(
        pair.client.session.read_tls(b"\x16\x03\x03"),
        Err(Error::Truncated)
    );
    assert_eq!(pair.client.session.send(b"x"), Err(Error::Truncated));
    assert!(!pair.client.session.wants_input());

    // Server: half-way through the client's first flight.
    let mut pair = common::pair(KeyKind::EcdsaP256, &Options::default(), FaultPlan::CLEAN, 8);
    let hello = pair.client.session.pending_tls().to_vec();
    assert_eq!(
        pair.server.session.read_tls(&hello[..hello.len() / 2]),
        Ok(hello.len() / 2)
    );
    pair.server.session.read_tls_eof();
    assert_eq!(pair.server.session.recv(&mut [0; 8]), Err(Error::Truncated));
    assert_eq!(pair.server.session.close(), Err(Error::Truncated));

    // Server: after its own flight, waiting for the client's Finished.
    let mut pair = common::pair(KeyKind::EcdsaP256, &Options::default(), FaultPlan::CLEAN, 9);
    pair.step();
    assert!(pair.server.session.is_handshaking());
    pair.close_transport(Dir::ClientToServer);
    pair.drive();
    assert_eq!(pair.server.error, Some(Error::Truncated));
    assert!(pair.server.session.is_handshaking());
}

#[test]
fn eof_after_data_without_close_notify_is_truncated() {
    let mut pair = common::connected(
        KeyKind::EcdsaP256,
        &Options::default(),
        FaultPlan::RANDOM,
        10,
    );
    assert_eq!(pair.client.session.send(b"complete message"), Ok(16));
    pair.drive();
    assert_eq!(pair.client.session.send(b"cut off"), Ok(7));
    pair.close_transport(Dir::ClientToServer);
    pair.drive();
    // Everything sent before the cut was taken from the client, and is read intact.
    assert_eq!(pair.server.plaintext, b"complete message");
    assert_eq!(pair.server.error, Some(Error::Truncated));
    assert!(!pair.server.clean_eof);
}

/// Regression (found by tls-unix's split tests): after our close_notify, a peer's KeyUpdate
/// request must not be answered — nothing may follow close_notify on the wire — while the
/// data the peer sends with it still arrives.
#[test]
fn no_key_update_reply_after_our_close_notify() {
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 21);
    pair.take_events(Side::Server);
    pair.session(Side::Server).close().unwrap();
    pair.drive();
    assert!(pair.session(Side::Client).peer_has_closed());

    let server_bytes_before = pair.records(Dir::ServerToClient).len();
    pair.session(Side::Client).refresh_keys().unwrap();
    // `transfer` checks that the data arrives intact (after the KeyUpdate record).
    pair.transfer(b"after your close", Dir::ClientToServer)
        .unwrap();
    pair.drive();
    assert!(
        !pair.session(Side::Server).has_output(),
        "the server queued a record after its close_notify"
    );
    assert_eq!(
        pair.records(Dir::ServerToClient).len(),
        server_bytes_before,
        "nothing crossed the wire after the server's close_notify"
    );
    assert!(
        !pair
            .take_events(Side::Server)
            .iter()
            .any(|e| matches!(e, Event::KeysUpdated(_))),
        "no KeyUpdate was answered"
    );
}

/// A close requested during the handshake refuses data at once but queues close_notify
/// only when the handshake completes: until then the session is not closed for send
/// (a binding must not end its transport yet).
#[test]
fn close_requested_during_handshake_is_not_yet_sent() {
    let mut pair = common::pair_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 3);
    pair.session(Side::Client).close().unwrap();
    assert!(!pair.session(Side::Client).is_closed_for_send());
    assert!(!pair.session(Side::Client).has_sent_close_notify());
    assert_eq!(pair.session(Side::Client).send(b"x"), Err(Error::Closed));
    pair.drive();
    assert!(pair.session(Side::Client).is_closed_for_send());
    assert!(pair.session(Side::Client).has_sent_close_notify());
    assert!(pair.session(Side::Server).peer_has_closed());
}
