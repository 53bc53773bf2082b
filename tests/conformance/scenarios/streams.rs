//! Streams: KeyUpdate, half-close, writes after close, reads after the end, tiny and bulk
//! transfers.

use super::*;

pub(super) fn add(v: &mut Vec<Scenario>) {
    // KeyUpdate mid-transfer, started by each side.
    for (name, by) in [
        ("key_update_by_client", Side::Client),
        ("key_update_by_server", Side::Server),
    ] {
        let updater = vec![
            Handshake,
            write(64 * 1024),
            KeyUpdate,
            write(64 * 1024),
            Close,
            ReadToEnd,
        ];
        let other = vec![Handshake, ReadToEnd, Close];
        let updater_expect = vec![
            hs(V13, by == Side::Client),
            E::Wrote(64 * 1024),
            E::KeyUpdate,
            E::Wrote(64 * 1024),
            E::Closed,
            E::Eof,
        ];
        let other_expect = vec![
            hs(V13, by == Side::Server),
            E::Read(128 * 1024),
            E::Eof,
            E::Closed,
        ];
        let (c, expect, events) = match by {
            Side::Client => (
                conn(updater, other),
                [updater_expect, other_expect],
                [
                    vec![Ev::KeysUpdated(Initiator::Local)],
                    vec![Ev::KeysUpdated(Initiator::Peer)],
                ],
            ),
            Side::Server => (
                conn(other, updater),
                [other_expect, updater_expect],
                [
                    vec![Ev::KeysUpdated(Initiator::Peer)],
                    vec![Ev::KeysUpdated(Initiator::Local)],
                ],
            ),
        };
        v.push(Scenario {
            name,
            setup: Setup::default(),
            connections: vec![c],
            expect,
            expect_events: events,
        });
    }

    // A KeyUpdate right after the handshake, then close_notify: the client's Finished,
    // its KeyUpdate and its close_notify may reach the server in one piece. The server
    // answers (its reply is on the wire on every backend) and must report
    // KeysUpdated(Peer) however the bytes were cut. Known engine issue: see
    // KNOWN_DIFFERENCES in conformance.rs.
    v.push(Scenario {
        name: "key_update_right_after_handshake",
        setup: Setup::default(),
        connections: vec![conn(
            vec![Handshake, KeyUpdate, Close, ReadToEnd],
            vec![Handshake, ReadToEnd, write(100), Close],
        )],
        expect: [
            vec![hs(V13, true), E::KeyUpdate, E::Closed, E::Read(100), E::Eof],
            vec![hs(V13, false), E::Eof, E::Wrote(100), E::Closed],
        ],
        expect_events: [
            vec![Ev::KeysUpdated(Initiator::Local)],
            vec![Ev::KeysUpdated(Initiator::Peer)],
        ],
    });

    // Half-close in both orders: one side closes, the other keeps sending. The
    // `_then_ends` pair (moved from tls-unix's flavour tests) adds the ends of both
    // directions: the closer's second close is a no-op, the other side still writes
    // after the peer's close_notify, reading past either end gives the end again, and
    // the closer's write after its close is refused.
    let plain = (
        vec![Handshake, write(10_000), Close, ReadToEnd],
        vec![E::Wrote(10_000), E::Closed, E::Read(20_000), E::Eof],
        vec![Handshake, ReadToEnd, write(20_000), Close],
        vec![E::Read(10_000), E::Eof, E::Wrote(20_000), E::Closed],
    );
    let then_ends = (
        vec![Handshake, write(24), Close, Close, ReadToEnd, write(4)],
        vec![
            E::Wrote(24),
            E::Closed,
            E::Closed,
            E::Read(14),
            E::Eof,
            E::Error(ExpectFail::Refused("Closed")),
        ],
        vec![Handshake, ReadToEnd, write(14), Close, ReadToEnd],
        vec![E::Read(24), E::Eof, E::Wrote(14), E::Closed, E::Eof],
    );
    for (name, first, (closer, closer_expect, other, other_expect)) in [
        ("half_close_client_first", Side::Client, plain.clone()),
        ("half_close_server_first", Side::Server, plain),
        (
            "half_close_then_ends_client_first",
            Side::Client,
            then_ends.clone(),
        ),
        ("half_close_then_ends_server_first", Side::Server, then_ends),
    ] {
        let (c, expect) = by_side(first, (closer, closer_expect), (other, other_expect));
        v.push(Scenario {
            name,
            setup: Setup::default(),
            connections: vec![c],
            expect,
            expect_events: [vec![Ev::PeerClosed], vec![Ev::PeerClosed]],
        });
    }

    // Writing after our own close is refused (the engine's `Error::Closed`); the peer
    // still gets a clean end of stream.
    v.push(Scenario {
        name: "write_after_close",
        setup: Setup::default(),
        connections: vec![conn(
            vec![Handshake, Close, write(10)],
            vec![Handshake, ReadToEnd, Close],
        )],
        expect: [
            vec![
                hs(V13, true),
                E::Closed,
                E::Error(ExpectFail::Refused("Closed")),
            ],
            vec![hs(V13, false), E::Eof, E::Closed],
        ],
        expect_events: [vec![], vec![]],
    });

    // Reading again after the end of stream gives the end of stream again.
    v.push(Scenario {
        name: "read_after_eof",
        setup: Setup::default(),
        connections: vec![conn(
            vec![Handshake, write(10), Close, ReadToEnd, ReadToEnd],
            vec![Handshake, ReadToEnd, ReadToEnd, write(10), Close],
        )],
        expect: [
            vec![
                hs(V13, true),
                E::Wrote(10),
                E::Closed,
                E::Read(10),
                E::Eof,
                E::Eof,
            ],
            vec![
                hs(V13, false),
                E::Read(10),
                E::Eof,
                E::Eof,
                E::Wrote(10),
                E::Closed,
            ],
        ],
        expect_events: [vec![], vec![]],
    });

    // KeyUpdate on TLS 1.2 is refused (not fatal; the script stops there and the
    // connection is dropped without close_notify, so the server sees a truncation).
    v.push(Scenario {
        name: "key_update_tls12_refused",
        setup: Setup {
            version: Some(V12),
            ..Setup::default()
        },
        connections: vec![conn(vec![Handshake, KeyUpdate], vec![Handshake, ReadToEnd])],
        expect: [
            vec![
                hs(V12, true),
                E::Error(ExpectFail::Refused("KeyUpdateNeedsTls13")),
            ],
            vec![hs(V12, false), E::Error(ExpectFail::Truncated)],
        ],
        expect_events: [vec![], vec![]],
    });

    // Tiny writes: 1000 writes of one byte each way.
    {
        let tiny = Op::Write {
            bytes: 1000,
            chunk: 1,
        };
        v.push(Scenario {
            name: "tiny_writes",
            setup: Setup::default(),
            connections: vec![conn(
                vec![Handshake, tiny, Read(1000), Close, ReadToEnd],
                vec![Handshake, Read(1000), tiny, ReadToEnd, Close],
            )],
            expect: [
                vec![
                    hs(V13, true),
                    E::Wrote(1000),
                    E::Read(1000),
                    E::Closed,
                    E::Eof,
                ],
                vec![
                    hs(V13, false),
                    E::Read(1000),
                    E::Wrote(1000),
                    E::Eof,
                    E::Closed,
                ],
            ],
            expect_events: [vec![], vec![]],
        });
    }

    // Tiny reads: 5000 bytes each way, read one byte per call (records are larger than
    // the reader's buffer: what is left of each must wait for the next call).
    {
        let tiny = Op::ReadBy {
            bytes: 5000,
            buf: 1,
        };
        v.push(Scenario {
            name: "tiny_reads",
            setup: Setup::default(),
            connections: vec![conn(
                vec![Handshake, write(5000), tiny, Close, ReadToEnd],
                vec![Handshake, tiny, write(5000), ReadToEnd, Close],
            )],
            expect: [
                vec![
                    hs(V13, true),
                    E::Wrote(5000),
                    E::Read(5000),
                    E::Closed,
                    E::Eof,
                ],
                vec![
                    hs(V13, false),
                    E::Read(5000),
                    E::Wrote(5000),
                    E::Eof,
                    E::Closed,
                ],
            ],
            expect_events: [vec![], vec![]],
        });
    }

    // 8 MiB from the client, which then closes, then 8 MiB back, in write calls of
    // sizes that are not a record multiple (moved from tls-unix's flavour tests).
    {
        const N: usize = 8 << 20;
        let client_write = Op::Write {
            bytes: N,
            chunk: 100_000,
        };
        let server_write = Op::Write {
            bytes: N,
            chunk: 70_000,
        };
        v.push(Scenario {
            name: "bulk_8mib_after_half_close",
            setup: Setup::default(),
            connections: vec![conn(
                vec![Handshake, client_write, Close, ReadToEnd],
                vec![Handshake, ReadToEnd, server_write, Close],
            )],
            expect: [
                vec![hs(V13, true), E::Wrote(N), E::Closed, E::Read(N), E::Eof],
                vec![hs(V13, false), E::Read(N), E::Eof, E::Wrote(N), E::Closed],
            ],
            expect_events: [vec![Ev::PeerClosed], vec![Ev::PeerClosed]],
        });
    }

    // 16 MiB each way.
    {
        const N: usize = 16 << 20;
        v.push(Scenario {
            name: "bulk_16mib",
            setup: Setup::default(),
            connections: vec![conn(
                vec![Handshake, write(N), Read(N), Close, ReadToEnd],
                vec![Handshake, Read(N), write(N), ReadToEnd, Close],
            )],
            expect: [
                vec![hs(V13, true), E::Wrote(N), E::Read(N), E::Closed, E::Eof],
                vec![hs(V13, false), E::Read(N), E::Wrote(N), E::Eof, E::Closed],
            ],
            expect_events: [vec![], vec![]],
        });
    }
}

/// One connection where `first` runs `leader`'s script and the other side `follower`'s,
/// each with its expectations after the handshake (TLS 1.3; only the client sees a peer
/// certificate).
fn by_side(
    first: Side,
    leader: (Vec<Op>, Vec<Expect>),
    follower: (Vec<Op>, Vec<Expect>),
) -> (Connection, [Vec<Expect>; 2]) {
    let (client, server) = match first {
        Side::Client => (leader, follower),
        Side::Server => (follower, leader),
    };
    let with_hs = |cert, rest: Vec<Expect>| [vec![hs(V13, cert)], rest].concat();
    (
        conn(client.0, server.0),
        [with_hs(true, client.1), with_hs(false, server.1)],
    )
}
