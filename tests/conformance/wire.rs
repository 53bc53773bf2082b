//! The conformance rows about the wire itself (issue 15): what the peer receives when a
//! side fails (its alert, then a FIN, never an RST) and that a first flight larger than
//! one segment does not wait for a delayed ACK; and the relay-side check of the former.

use tls_core::rustls::{AlertDescription, ProtocolVersion};
use tls_test::certs::KeyKind;

use crate::conformance::relay::{Ending, Fault, How, C2S};
use crate::conformance::runner::{write, Op};
use crate::conformance::scenarios::{
    conn, exchange, hs, Expect as E, ExpectFail, Scenario, Setup, V12, V13,
};
use crate::conformance::trace::Ev;
use Op::{Handshake, Read, ReadToEnd};

/// Appends the wire rows to the table.
pub fn scenarios(v: &mut Vec<Scenario>) {
    // The case: TLS 1.2 with session tickets, the client's first data record
    // corrupted. The server's bad_record_mac alert reaches the client before the TCP
    // FIN (the relay checks that the alert is the last record and a FIN, not an RST,
    // follows it). TLS 1.2 client flight: ClientHello, ClientKeyExchange,
    // ChangeCipherSpec, Finished.
    {
        let mut c = conn(
            vec![Handshake, Read(100), write(1000), ReadToEnd],
            vec![Handshake, write(100), ReadToEnd],
        );
        c.faults[C2S] = Some(Fault::Corrupt { record: 4 });
        v.push(Scenario {
            name: "corrupted_record_alert_fin_tls12",
            setup: Setup {
                version: Some(ProtocolVersion::TLSv1_2),
                resumption: true,
                ..Setup::default()
            },
            connections: vec![c],
            expect: [
                vec![
                    hs(V12, true),
                    E::Read(100),
                    E::Wrote(1000),
                    E::Error(ExpectFail::Alert(AlertDescription::BadRecordMac)),
                ],
                vec![
                    hs(V12, false),
                    E::Wrote(100),
                    E::Error(ExpectFail::Tls("DecryptError")),
                ],
            ],
            expect_events: [vec![], vec![]],
        });
    }

    // An oversized handshake message: the relay makes the ClientHello announce 16 MiB.
    // The server refuses it with a decode_error alert (which the client receives) and
    // closes; neither side waits for the 16 MiB.
    {
        let mut c = conn(vec![Handshake, ReadToEnd], vec![Handshake, ReadToEnd]);
        c.faults[C2S] = Some(Fault::Oversize { record: 0 });
        v.push(Scenario {
            name: "oversized_handshake_message",
            setup: Setup::default(),
            connections: vec![c],
            expect: [
                vec![E::Error(ExpectFail::Alert(AlertDescription::DecodeError))],
                vec![E::Error(ExpectFail::Tls(
                    "InvalidMessage(HandshakePayloadTooLarge)",
                ))],
            ],
            expect_events: [vec![], vec![]],
        });
    }

    // A first flight larger than one segment (RSA-2048 leaf and CA: about 2.2 KB, more
    // than a 1460-byte segment) to a peer that delays its ACKs: the flight goes out
    // whole, without waiting for the ACK of its first segment (Nagle off; smoltcp's
    // initial window is ten segments).
    for (name, version) in [
        ("flight_over_a_segment_no_ack_wait", V13),
        ("flight_over_a_segment_no_ack_wait_12", V12),
    ] {
        let (mut c, expect) = exchange(version, false);
        c.delayed_ack = Some(std::time::Duration::from_millis(200));
        v.push(Scenario {
            name,
            setup: Setup {
                version: Some(version),
                key: KeyKind::Rsa2048,
                chain_with_ca: true,
                ..Setup::default()
            },
            connections: vec![c],
            expect,
            expect_events: [vec![Ev::PeerClosed], vec![Ev::PeerClosed]],
        });
    }
}

/// An alert record as the relay sees it: in plaintext (type 21, 2 bytes); TLS 1.3
/// encrypted (type 23: 2 bytes, the inner content type and a 16-byte tag); TLS 1.2
/// AES-GCM (type 21: 2 bytes, an 8-byte explicit nonce and a 16-byte tag).
const PLAIN_ALERT: (u8, usize) = (21, 2);
const TLS13_ALERT: (u8, usize) = (23, 2 + 1 + 16);
const TLS12_GCM_ALERT: (u8, usize) = (21, 2 + 8 + 16);

/// What the relay must see at the end of each direction (indexed by [`C2S`] and [`S2C`]),
/// for the scenarios that check the wire: `Some(ending)` must match exactly. The
/// failing side's alert is the last record of its direction, and a FIN (never an RST)
/// follows it.
pub fn wire_expectation(sc: &Scenario) -> [Option<Ending>; 2] {
    let alert_then_fin = |record| {
        Some(Ending {
            last_record: Some(record),
            how: Some(How::Fin),
        })
    };
    match sc.name {
        // The client fails and alerts the server.
        "corrupted_record" | "corrupted_handshake_record" => [alert_then_fin(TLS13_ALERT), None],
        // The server fails and alerts the client.
        "corrupted_record_client_to_server" => [None, alert_then_fin(TLS13_ALERT)],
        "corrupted_record_alert_fin_tls12" => [None, alert_then_fin(TLS12_GCM_ALERT)],
        "oversized_handshake_message" => [None, alert_then_fin(PLAIN_ALERT)],
        _ => [None, None],
    }
}

/// Checks the relay's view against [`wire_expectation`].
pub fn check_wire(sc: &Scenario, ends: &[Ending; 2]) -> Result<(), String> {
    for (dir, want) in wire_expectation(sc).iter().enumerate() {
        if let Some(want) = want {
            if *want != ends[dir] {
                let name = if dir == C2S { "c2s" } else { "s2c" };
                return Err(format!("{name} ended {:?}, expected {want:?}", ends[dir]));
            }
        }
    }
    Ok(())
}
