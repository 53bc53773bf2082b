//! `handshake/<version>_<full|resumed>_<key>` cases: one client and one server from creation
//! to an established, drained pair. New handshake cases (key exchange groups, ...) go here.

use super::*;

pub(super) fn handshake_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (version_name, version) in [("tls13", TLS13), ("tls12", TLS12)] {
        for (key_name, kind) in [("ecdsa", KeyKind::EcdsaP256), ("rsa", KeyKind::Rsa2048)] {
            for resumption in [false, true] {
                let opts = Options {
                    versions: version.to_vec(),
                    resumption,
                    ..Options::default()
                };
                let (cc, sc) = configs(kind, &opts);
                let kind_name = if resumption { "resumed" } else { "full" };

                // Warm the client's session cache, and check what each side negotiates.
                let expect = if resumption {
                    HandshakeKind::Resumed
                } else {
                    HandshakeKind::Full
                };
                drop(core_pair(&cc, &sc));
                for _ in 0..2 {
                    let (client, _) = core_pair(&cc, &sc);
                    assert_eq!(client.handshake_info().unwrap().resumed, resumption);
                    let (client, _) = raw_pair(&cc, &sc);
                    assert_eq!(client.conn.handshake_kind(), Some(expect));
                }

                let (c1, s1) = (cc.clone(), sc.clone());
                cases.push(Case {
                    name: format!("handshake/{version_name}_{kind_name}_{key_name}"),
                    throughput: Throughput::Elements(1),
                    core: Box::new(move || drop(black_box(core_pair(&c1, &s1)))),
                    raw: Box::new(move || drop(black_box(raw_pair(&cc, &sc)))),
                    bench_raw: true,
                });
            }
        }
    }
    cases
}
