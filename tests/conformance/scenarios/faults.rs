//! Faults on the wire: truncation and corrupted records, in the handshake and after it.

use super::*;

pub(super) fn add(v: &mut Vec<Scenario>) {
    // Truncation: the relay forwards the handshake, two 1000-byte records and 10 bytes
    // of the third, then ends the stream with a FIN. The client reads the 2000 bytes,
    // then Truncated; it ends without close_notify, so the server (waiting to read) is
    // truncated too.
    {
        let mut c = conn(
            vec![Handshake, ReadToEnd],
            vec![
                Handshake,
                write(1000),
                write(1000),
                write(1000),
                Close,
                ReadToEnd,
            ],
        );
        c.faults[S2C] = Some(Fault::Cut {
            after_records: SERVER_HANDSHAKE_RECORDS_13 + 2,
            extra: 10,
        });
        v.push(Scenario {
            name: "truncation",
            setup: Setup::default(),
            connections: vec![c],
            expect: [
                vec![
                    hs(V13, true),
                    E::Read(2000),
                    E::Error(ExpectFail::Truncated),
                ],
                vec![
                    hs(V13, false),
                    E::Wrote(1000),
                    E::Wrote(1000),
                    E::Wrote(1000),
                    E::Closed,
                    E::Error(ExpectFail::Truncated),
                ],
            ],
            expect_events: [vec![], vec![]],
        });
    }

    // The server's application lets go of the connection after a write, without
    // close_notify, so its transport closes: the client reads the data, then Truncated,
    // never a clean end (moved from tls-unix's flavour tests).
    v.push(Scenario {
        name: "truncation_peer_drops",
        setup: Setup::default(),
        connections: vec![conn(vec![Handshake, ReadToEnd], vec![Handshake, write(7)])],
        expect: [
            vec![hs(V13, true), E::Read(7), E::Error(ExpectFail::Truncated)],
            vec![hs(V13, false), E::Wrote(7)],
        ],
        expect_events: [vec![], vec![]],
    });

    // A corrupted record: the relay flips a bit in the server's first application data
    // record. The client fails to decrypt it and sends bad_record_mac, which the server
    // (reading) receives.
    {
        let mut c = conn(
            vec![Handshake, ReadToEnd],
            vec![Handshake, write(1000), ReadToEnd],
        );
        c.faults[S2C] = Some(Fault::Corrupt {
            record: SERVER_HANDSHAKE_RECORDS_13,
        });
        v.push(Scenario {
            name: "corrupted_record",
            setup: Setup::default(),
            connections: vec![c],
            expect: [
                vec![hs(V13, true), E::Error(ExpectFail::Tls("DecryptError"))],
                vec![
                    hs(V13, false),
                    E::Wrote(1000),
                    E::Error(ExpectFail::Alert(AlertDescription::BadRecordMac)),
                ],
            ],
            expect_events: [vec![], vec![]],
        });
    }
    // The same from client to server. The client writes only after the server's first
    // data has arrived, so the server's handshake is over when the bad record comes
    // (otherwise whether its handshake call returns before it depends on timing).
    {
        let mut c = conn(
            vec![Handshake, Read(100), write(1000), ReadToEnd],
            vec![Handshake, write(100), ReadToEnd],
        );
        c.faults[C2S] = Some(Fault::Corrupt {
            record: CLIENT_HANDSHAKE_RECORDS_13,
        });
        v.push(Scenario {
            name: "corrupted_record_client_to_server",
            setup: Setup::default(),
            connections: vec![c],
            expect: [
                vec![
                    hs(V13, true),
                    E::Read(100),
                    E::Wrote(1000),
                    E::Error(ExpectFail::Alert(AlertDescription::BadRecordMac)),
                ],
                vec![
                    hs(V13, false),
                    E::Wrote(100),
                    E::Error(ExpectFail::Tls("DecryptError")),
                ],
            ],
            expect_events: [vec![], vec![]],
        });
    }

    // Truncation during the handshake: only the ServerHello gets through.
    {
        let mut c = conn(vec![Handshake, ReadToEnd], vec![Handshake, ReadToEnd]);
        c.faults[S2C] = Some(Fault::Cut {
            after_records: 1,
            extra: 0,
        });
        v.push(Scenario {
            name: "truncation_in_handshake",
            setup: Setup::default(),
            connections: vec![c],
            expect: [
                vec![E::Error(ExpectFail::Truncated)],
                vec![E::Error(ExpectFail::Truncated)],
            ],
            expect_events: [vec![], vec![]],
        });
    }

    // A corrupted handshake record: the server's encrypted flight.
    {
        let mut c = conn(vec![Handshake, ReadToEnd], vec![Handshake, ReadToEnd]);
        c.faults[S2C] = Some(Fault::Corrupt {
            record: SERVER_HANDSHAKE_RECORDS_13 - 1,
        });
        v.push(Scenario {
            name: "corrupted_handshake_record",
            setup: Setup::default(),
            connections: vec![c],
            expect: [
                vec![E::Error(ExpectFail::Tls("DecryptError"))],
                vec![E::Error(ExpectFail::Alert(AlertDescription::BadRecordMac))],
            ],
            expect_events: [vec![], vec![]],
        });
    }
}
