//! Application data: bulk transfers, every cipher suite, KeyUpdate, coalescing,
//! `send_into` and backpressure.

mod common;

use tls_core::rustls::CipherSuite;
use tls_core::{Encrypted, Error, Event, Initiator, Limits, Session, MAX_RECORD};
use tls_test::certs::{KeyKind, Options, TLS12, TLS13};
use tls_test::pair::{pattern, Dir, FaultPlan, Pair, PairError, Side};

/// TLS 1.3 ciphertext per record beyond its plaintext (header 5, type 1, tag 16).
const TLS13_OVERHEAD: usize = 22;
const FRAGMENT: usize = 16_384;

#[test]
fn sixteen_mib_each_way() {
    let mut pair = common::connected(KeyKind::EcdsaP256, &Options::default(), FaultPlan::CLEAN, 1);
    let data = pattern(0x16, 16 << 20);
    pair.transfer(&data, Dir::ClientToServer).unwrap();
    pair.transfer(&data, Dir::ServerToClient).unwrap();
    assert!(pair.bytes_sent(Dir::ClientToServer) > 16 << 20);
    assert!(pair.bytes_sent(Dir::ServerToClient) > 16 << 20);
    // Nothing left behind.
    pair.drive();
    assert!(!pair.client.session.has_plaintext());
    assert!(!pair.server.session.has_plaintext());
    // Buffers stay allocated while traffic flows (no free + zero-fill per record)...
    assert!(pair.server.session.buffered_bytes() > 0);
    // ...and go back once the transport reports it has nothing.
    for session in [&mut pair.client.session, &mut pair.server.session] {
        assert_eq!(session.read_tls(&[]), Ok(0));
        assert_eq!(session.buffered_bytes(), 0);
    }
}

#[test]
fn every_suite_carries_data_under_faults() {
    let cases = [
        (CipherSuite::TLS13_AES_128_GCM_SHA256, KeyKind::EcdsaP256),
        (CipherSuite::TLS13_AES_256_GCM_SHA384, KeyKind::Ed25519),
        (
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
            KeyKind::Rsa2048,
        ),
        (
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            KeyKind::EcdsaP256,
        ),
        (
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            KeyKind::EcdsaP256,
        ),
        (
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            KeyKind::Ed25519,
        ),
        (
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            KeyKind::Rsa2048,
        ),
        (
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            KeyKind::Rsa2048,
        ),
    ];
    let data = pattern(7, 300_000);
    for (i, (suite, kind)) in cases.into_iter().enumerate() {
        let opts = Options {
            suites: vec![suite],
            ..Options::default()
        };
        let plan = if i % 2 == 0 {
            FaultPlan::RANDOM
        } else {
            FaultPlan::CLEAN
        };
        let mut pair = common::connected(kind, &opts, plan, 100 + i as u64);
        for side in [Side::Client, Side::Server] {
            let info = pair.endpoint(side).session.handshake_info().unwrap();
            assert_eq!(info.cipher_suite, suite, "{side:?}");
        }
        pair.transfer(&data, Dir::ClientToServer)
            .unwrap_or_else(|e| panic!("{suite:?}: {e}"));
        pair.transfer(&data, Dir::ServerToClient)
            .unwrap_or_else(|e| panic!("{suite:?}: {e}"));
    }
}

#[test]
fn small_transfers_survive_one_byte_and_random_splits() {
    let data = pattern(9, 40_000);
    for (plan, seed) in [
        (FaultPlan::ONE_BYTE, 1),
        (FaultPlan::RANDOM, 2),
        (FaultPlan::RANDOM, 3),
    ] {
        for versions in [TLS13, TLS12] {
            let mut pair = common::connected_on(KeyKind::EcdsaP256, versions, plan, seed);
            pair.transfer(&data, Dir::ClientToServer).unwrap();
            pair.transfer(&data[..1000], Dir::ServerToClient).unwrap();
        }
    }
}

/// Sends up to 5000 more bytes of `data` on `session`, `sent` bytes having gone already.
fn send_next(session: &mut Session, data: &[u8], sent: &mut usize) {
    if *sent < data.len() {
        *sent += session
            .send(&data[*sent..(*sent + 5000).min(data.len())])
            .unwrap();
    }
}

/// Sends `a` from the client and `b` from the server at the same time, calling
/// `refresh_keys` on `initiators` once some data is in flight, and checks everything
/// arrives intact.
fn transfer_with_key_update(pair: &mut Pair, initiators: &[Side], a: &[u8], b: &[u8]) {
    let (mut sent_a, mut sent_b) = (0, 0);
    let mut refreshed = false;
    for step in 0..100_000 {
        send_next(&mut pair.client.session, a, &mut sent_a);
        send_next(&mut pair.server.session, b, &mut sent_b);
        if !refreshed && sent_a > a.len() / 3 && sent_b > b.len() / 3 {
            for side in initiators {
                pair.session(*side).refresh_keys().unwrap();
            }
            refreshed = true;
        }
        pair.step();
        pair.check_errors().unwrap();
        if pair.server.plaintext.len() == a.len() && pair.client.plaintext.len() == b.len() {
            break;
        }
        assert!(step < 99_999, "transfer stuck: {pair:?}");
    }
    pair.drive();
    assert!(refreshed);
    assert!(
        pair.server.plaintext == a,
        "client to server data corrupted"
    );
    assert!(
        pair.client.plaintext == b,
        "server to client data corrupted"
    );
    pair.take_plaintext(Side::Client);
    pair.take_plaintext(Side::Server);
}

fn key_events(events: &[Event]) -> Vec<Initiator> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::KeysUpdated(who) => Some(*who),
            _ => None,
        })
        .collect()
}

/// Takes both sides' events and checks who started the key updates among them.
fn assert_key_events(pair: &mut Pair, client: &[Initiator], server: &[Initiator]) {
    let events = key_events(&pair.take_events(Side::Client));
    assert_eq!(events, client, "client");
    let events = key_events(&pair.take_events(Side::Server));
    assert_eq!(events, server, "server");
}

#[test]
fn key_update_both_ways_mid_transfer() {
    let a = pattern(1, 150_000);
    let b = pattern(2, 120_000);
    for (plan, seed) in [(FaultPlan::CLEAN, 1), (FaultPlan::RANDOM, 2)] {
        let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS13, plan, seed);
        pair.take_events(Side::Client);
        pair.take_events(Side::Server);

        transfer_with_key_update(&mut pair, &[Side::Client], &a, &b);
        assert_key_events(&mut pair, &[Initiator::Local], &[Initiator::Peer]);

        transfer_with_key_update(&mut pair, &[Side::Server], &a, &b);
        assert_key_events(&mut pair, &[Initiator::Peer], &[Initiator::Local]);

        // Both at once: each side sees its own update. Whether it also answers the peer's
        // depends on timing (a request that crosses our own needs no answer).
        transfer_with_key_update(&mut pair, &[Side::Client, Side::Server], &a, &b);
        for side in [Side::Client, Side::Server] {
            let events = key_events(&pair.take_events(side));
            assert_eq!(
                events.first(),
                Some(&Initiator::Local),
                "{side:?}: {events:?}"
            );
        }
    }
}

#[test]
fn key_update_answered_by_a_side_that_only_reads() {
    let mut pair = common::connected_on(KeyKind::Ed25519, TLS13, FaultPlan::RANDOM, 3);
    pair.take_events(Side::Client);
    pair.take_events(Side::Server);
    pair.server.session.refresh_keys().unwrap();
    pair.drive();
    assert_key_events(&mut pair, &[Initiator::Peer], &[Initiator::Local]);
    // The answer went out without waiting for client data, and both directions still work.
    pair.transfer(b"after the update", Dir::ServerToClient)
        .unwrap();
    pair.transfer(b"and back", Dir::ClientToServer).unwrap();
}

/// A rustls peer fails the connection at the 33rd KeyUpdate request with no application
/// data between them: the 33rd is refused here (not fatal), and sending data resets the
/// count.
#[test]
fn key_update_limit_refuses_the_33rd_until_data_is_sent() {
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 6);
    assert_eq!(Session::MAX_KEY_UPDATES, 32);
    for round in 0..2 {
        for i in 0..Session::MAX_KEY_UPDATES {
            pair.client
                .session
                .refresh_keys()
                .unwrap_or_else(|e| panic!("round {round}, update {i}: {e}"));
            pair.drive();
        }
        assert_eq!(
            pair.client.session.refresh_keys(),
            Err(Error::TooManyKeyUpdates),
            "round {round}: the 33rd"
        );
        assert!(pair.server.session.error().is_none(), "round {round}");
        // The peer took all 32, and the connection works both ways.
        pair.transfer(b"after 32 updates", Dir::ClientToServer)
            .unwrap();
        pair.transfer(b"and back", Dir::ServerToClient).unwrap();
    }
    assert!(!Error::TooManyKeyUpdates.is_fatal());
}

#[test]
fn key_update_needs_tls13_and_a_finished_handshake() {
    let mut pair = common::pair_on(KeyKind::EcdsaP256, TLS12, FaultPlan::CLEAN, 4);
    assert_eq!(pair.client.session.refresh_keys(), Err(Error::Handshaking));
    pair.handshake().unwrap();
    assert_eq!(
        pair.client.session.refresh_keys(),
        Err(Error::KeyUpdateNeedsTls13)
    );
    assert_eq!(
        pair.server.session.refresh_keys(),
        Err(Error::KeyUpdateNeedsTls13)
    );
    assert!(!Error::KeyUpdateNeedsTls13.is_fatal());
    // Not fatal: the session still works.
    pair.transfer(b"still fine", Dir::ClientToServer).unwrap();
    pair.transfer(b"still fine", Dir::ServerToClient).unwrap();
}

#[test]
fn coalescing_gathers_small_writes_into_full_records() {
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 5);
    let msg = pattern(11, 64 * 1000);
    let before = pair.records(Dir::ClientToServer).len();
    assert!(!pair.client.session.is_coalescing());
    assert_eq!(pair.client.session.max_fragment(), FRAGMENT);
    pair.client.session.set_coalescing(true).unwrap();
    assert!(pair.client.session.is_coalescing());
    for chunk in msg.chunks(64) {
        assert_eq!(pair.client.session.send(chunk), Ok(64));
    }
    pair.drive();
    let full = msg.len() / FRAGMENT;
    let records = &pair.records(Dir::ClientToServer)[before..];
    assert_eq!(records.len(), full, "only full records go out before flush");
    assert!(records
        .iter()
        .all(|r| r.len == FRAGMENT + TLS13_OVERHEAD - 5));
    assert_eq!(pair.server.plaintext, msg[..full * FRAGMENT]);

    pair.client.session.flush().unwrap();
    pair.drive();
    let records = &pair.records(Dir::ClientToServer)[before..];
    assert_eq!(records.len(), full + 1, "flush sends the partial record");
    assert_eq!(records[full].len, msg.len() % FRAGMENT + TLS13_OVERHEAD - 5);
    assert!(pair.server.plaintext == msg);
    pair.take_plaintext(Side::Server);

    // Without coalescing, every send is a record of its own.
    pair.client.session.set_coalescing(false).unwrap();
    let before = pair.records(Dir::ClientToServer).len();
    for chunk in msg[..64 * 10].chunks(64) {
        assert_eq!(pair.client.session.send(chunk), Ok(64));
    }
    pair.drive();
    assert_eq!(pair.records(Dir::ClientToServer).len() - before, 10);
    assert_eq!(pair.server.plaintext, msg[..640]);
}

#[test]
fn coalescing_seals_whole_records_of_a_large_write_directly() {
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 6);
    pair.client.session.set_coalescing(true).unwrap();
    let small = pattern(12, 100);
    let big = pattern(13, 40_000);
    let before = pair.records(Dir::ClientToServer).len();
    assert_eq!(pair.client.session.send(&small), Ok(100));
    assert_eq!(pair.client.session.send(&big), Ok(40_000));
    pair.client.session.flush().unwrap();
    pair.drive();
    let lens: Vec<usize> = pair.records(Dir::ClientToServer)[before..]
        .iter()
        .map(|r| r.len + 5 - TLS13_OVERHEAD)
        .collect();
    // The gathered 100 bytes fill their record from the large write; then one whole
    // record straight from it, and its tail gathered until the flush.
    assert_eq!(lens, vec![FRAGMENT, FRAGMENT, 40_100 - 2 * FRAGMENT]);
    assert!(pair.server.plaintext == [small, big].concat());
}

#[test]
fn coalesced_writes_flush_on_close_and_when_turned_off() {
    let mut pair = common::connected(
        KeyKind::EcdsaP256,
        &Options::default(),
        FaultPlan::RANDOM,
        6,
    );
    pair.client.session.set_coalescing(true).unwrap();
    assert_eq!(pair.client.session.send(b"gathered"), Ok(8));
    pair.drive();
    assert!(
        pair.server.plaintext.is_empty(),
        "gathered bytes wait for a flush"
    );
    pair.client.session.set_coalescing(false).unwrap();
    pair.drive();
    assert_eq!(pair.server.plaintext, b"gathered");
    pair.client.session.set_coalescing(true).unwrap();
    assert_eq!(pair.client.session.send(b" and closed"), Ok(11));
    pair.client.session.close().unwrap();
    pair.drive();
    assert_eq!(pair.server.plaintext, b"gathered and closed");
    assert!(pair.server.clean_eof);
}

/// The plaintext `send_into` can fit in a TLS 1.3 record buffer of `size` bytes.
fn fits(size: usize) -> usize {
    let per = FRAGMENT + TLS13_OVERHEAD;
    size / per * FRAGMENT + (size % per).saturating_sub(TLS13_OVERHEAD)
}

#[test]
fn send_into_caller_buffers_of_every_size() {
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::RANDOM, 7);
    let data = pattern(12, 200_000);
    let mut expected = Vec::new();
    let mut buf = vec![0u8; 3 * (FRAGMENT + TLS13_OVERHEAD) + 100];
    let mut at = 0;

    // Too small for a record with any plaintext: nothing taken, nothing written.
    for size in [0, 1, 5, TLS13_OVERHEAD] {
        let done = pair
            .client
            .session
            .send_into(&data, &mut buf[..size])
            .unwrap();
        assert_eq!(done, Encrypted::default(), "size {size}");
    }

    for size in [
        TLS13_OVERHEAD + 1,
        64,
        1000,
        FRAGMENT + TLS13_OVERHEAD,
        FRAGMENT + TLS13_OVERHEAD + 1,
        FRAGMENT + 2 * TLS13_OVERHEAD + 1,
        buf.len(),
    ] {
        let done = pair
            .client
            .session
            .send_into(&data[at..], &mut buf[..size])
            .unwrap();
        assert_eq!(done.consumed, fits(size), "size {size}");
        let records = done.consumed.div_ceil(FRAGMENT);
        assert_eq!(
            done.written,
            done.consumed + records * TLS13_OVERHEAD,
            "size {size}"
        );
        pair.push_wire(Dir::ClientToServer, &buf[..done.written]);
        expected.extend_from_slice(&data[at..at + done.consumed]);
        at += done.consumed;

        // Queued output goes first: while any is pending, send_into takes nothing.
        assert_eq!(pair.client.session.send(b"<queued>"), Ok(8));
        expected.extend_from_slice(b"<queued>");
        let done = pair
            .client
            .session
            .send_into(&data[at..], &mut buf)
            .unwrap();
        assert_eq!(done, Encrypted::default(), "pending output must go first");
        pair.drive();
    }
    assert!(pair.server.plaintext == expected);
    pair.take_plaintext(Side::Server);

    // Gathered writes (coalescing) are encrypted into the buffer ahead of the new data.
    pair.client.session.set_coalescing(true).unwrap();
    assert_eq!(pair.client.session.send(b"gathered,"), Ok(9));
    let done = pair.client.session.send_into(b"direct", &mut buf).unwrap();
    assert_eq!(done.consumed, 6);
    assert_eq!(done.written, 9 + 6 + 2 * TLS13_OVERHEAD);
    pair.push_wire(Dir::ClientToServer, &buf[..done.written]);
    pair.drive();
    assert_eq!(pair.server.plaintext, b"gathered,direct");
}

#[test]
fn send_into_after_a_key_update_request_keeps_order() {
    let mut pair = common::connected_on(KeyKind::EcdsaP256, TLS13, FaultPlan::CLEAN, 8);
    let data = pattern(13, 50_000);
    let mut buf = vec![0u8; FRAGMENT + TLS13_OVERHEAD];
    // The server asks for new keys; the client's answer must precede its next record.
    pair.server.session.refresh_keys().unwrap();
    pair.step();
    pair.step();
    let mut at = 0;
    for _ in 0..100 {
        if at == data.len() {
            break;
        }
        let size = fits(buf.len()).min(data.len() - at) + TLS13_OVERHEAD;
        let done = pair
            .client
            .session
            .send_into(&data[at..], &mut buf[..size])
            .unwrap();
        pair.push_wire(Dir::ClientToServer, &buf[..done.written]);
        at += done.consumed;
        pair.drive();
        pair.check_errors().unwrap();
    }
    assert_eq!(at, data.len());
    assert!(pair.server.plaintext == data);
}

#[test]
fn backpressure_on_send_and_on_unread_plaintext() {
    let limits = Limits {
        outbound: 20_000,
        unread_plaintext: 20_000,
        ..Limits::default()
    };
    let (client, server) = common::configs(KeyKind::EcdsaP256, &common::version(TLS13));
    let mut pair = Pair::connect_with_limits(client, server, limits, FaultPlan::CLEAN, 9);
    pair.handshake().unwrap();
    pair.auto_read = false;
    let data = pattern(14, 300_000);

    // Outbound: send takes plaintext only while the queue is under the limit.
    let mut sent = 0;
    loop {
        let n = pair.server.session.send(&data[sent..]).unwrap();
        if n == 0 {
            break;
        }
        sent += n;
    }
    assert!(sent > 0 && sent < data.len());
    assert!(pair.server.session.pending_tls().len() <= limits.outbound);
    assert!(pair.server.session.pending_tls().len() + 2 * FRAGMENT > limits.outbound);
    assert_eq!(pair.server.session.send(&data[sent..]), Ok(0));

    // Inbound: the client takes input only while unread plaintext is under its limit.
    let mut offered = 0;
    let mut taken = 0;
    for _ in 0..100 {
        let pending = pair.server.session.pending_tls().to_vec();
        offered = pending.len();
        taken = pair.client.session.read_tls(&pending).unwrap();
        pair.server.session.tls_written(taken);
        if taken < offered {
            break;
        }
        sent += pair.server.session.send(&data[sent..]).unwrap();
    }
    assert!(taken < offered, "receive took {taken} of {offered}");
    assert!(!pair.client.session.wants_input());
    assert!(pair.client.session.tls_read_buffer().is_empty());
    let rest = pair.server.session.pending_tls().to_vec();
    assert_eq!(pair.client.session.read_tls(&rest), Ok(0));
    assert!(pair.client.session.has_plaintext());
    assert!(
        pair.client.session.buffered_bytes() <= limits.unread_plaintext + 2 * MAX_RECORD,
        "{}",
        pair.client.session.buffered_bytes()
    );

    // Nothing moves until the client reads.
    for _ in 0..5 {
        let _ = pair.server.session.send(&data[sent..]).map(|n| sent += n);
        pair.step();
    }
    assert!(
        !pair.step(),
        "pair moved bytes the client has no room for: {pair:?}"
    );
    // The harness calls this a livelock rather than spinning.
    assert!(matches!(
        pair.drive_bounded(1000),
        Err(PairError::Livelock { .. })
    ));
    assert!(!pair.client.session.wants_input());
    assert!(pair.bytes_in_flight(Dir::ServerToClient) > 0 || pair.server.session.has_output());

    // Reading drains it, and the rest follows.
    let read = pair.read_available(Side::Client).unwrap();
    assert!(read > 0);
    assert!(pair.client.session.wants_input());
    pair.auto_read = true;
    for _ in 0..10_000 {
        if sent == data.len() {
            break;
        }
        sent += pair.server.session.send(&data[sent..]).unwrap();
        pair.step();
    }
    pair.drive();
    assert_eq!(pair.client.plaintext.len(), data.len());
    assert!(pair.client.plaintext == data);
}

/// The per-record overhead getter matches what a record really adds on the wire.
#[test]
fn record_overhead_matches_the_wire() {
    for (versions, suite, expected) in [
        (TLS13, CipherSuite::TLS13_AES_128_GCM_SHA256, 22),
        (
            TLS12,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            29,
        ),
        (
            TLS12,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            21,
        ),
    ] {
        let opts = Options {
            versions: versions.to_vec(),
            suites: vec![suite],
            ..Options::default()
        };
        let mut pair = common::connected(KeyKind::EcdsaP256, &opts, FaultPlan::CLEAN, 4);
        let client = pair.session(Side::Client);
        assert_eq!(client.record_overhead(), expected, "{suite:?}");
        assert_eq!(client.send(&[7u8; 1000]).unwrap(), 1000);
        assert_eq!(client.pending_tls().len(), 1000 + expected, "{suite:?}");
    }
}
