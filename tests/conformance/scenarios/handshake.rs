//! Handshakes: versions and key kinds, SNI, ALPN, client certificates, resumption.

use super::*;

pub(super) fn add(v: &mut Vec<Scenario>) {
    v.extend([
        handshake_scenario("handshake_tls13_ecdsa", V13, KeyKind::EcdsaP256),
        handshake_scenario("handshake_tls12_ecdsa", V12, KeyKind::EcdsaP256),
        handshake_scenario("handshake_tls13_rsa", V13, KeyKind::Rsa2048),
        handshake_scenario("handshake_tls12_rsa", V12, KeyKind::Rsa2048),
        handshake_scenario("handshake_tls13_ed25519", V13, KeyKind::Ed25519),
    ]);

    // SNI other than the default name.
    {
        let (c, expect) = exchange(V13, false);
        v.push(Scenario {
            name: "sni_other_name",
            setup: Setup {
                sni: EXTRA_NAME,
                ..Setup::default()
            },
            connections: vec![c],
            expect,
            expect_events: [vec![], vec![]],
        });
    }

    // A server name that is an IP address: no SNI is sent.
    {
        let (c, expect) = exchange(V13, false);
        v.push(Scenario {
            name: "sni_ip_address",
            setup: Setup {
                sni: "127.0.0.1",
                ..Setup::default()
            },
            connections: vec![c],
            expect,
            expect_events: [vec![], vec![]],
        });
    }

    // ALPN agreed: on the server's only protocol, and on the client's only one though
    // the server prefers another (moved from tls-unix's flavour tests).
    for (name, client_alpn, server_alpn) in [
        ("alpn_agreed", &["h2", "http/1.1"][..], &["http/1.1"][..]),
        (
            "alpn_agreed_client_offers_one",
            &["http/1.1"],
            &["h2", "http/1.1"],
        ),
    ] {
        let (c, mut expect) = exchange(V13, false);
        for (side, e) in expect.iter_mut().enumerate() {
            e[0] = E::Handshake {
                version: V13,
                alpn: Some("http/1.1"),
                resumed: false,
                peer_cert: side == 0,
            };
        }
        v.push(Scenario {
            name,
            setup: Setup {
                client_alpn,
                server_alpn,
                ..Setup::default()
            },
            connections: vec![c],
            expect,
            expect_events: [vec![], vec![]],
        });
    }

    // ALPN refused: the server has no protocol in common and says so.
    v.push(Scenario {
        name: "alpn_refused",
        setup: Setup {
            client_alpn: &["h2"],
            server_alpn: &["http/1.1"],
            ..Setup::default()
        },
        connections: vec![conn(vec![Handshake, ReadToEnd], vec![Handshake, ReadToEnd])],
        expect: [
            vec![E::Error(ExpectFail::Alert(
                AlertDescription::NoApplicationProtocol,
            ))],
            vec![E::Error(ExpectFail::Tls("NoApplicationProtocol"))],
        ],
        expect_events: [vec![], vec![]],
    });

    // mTLS accepted: the server sees the client's certificate.
    {
        let (c, expect) = exchange(V13, true);
        v.push(Scenario {
            name: "mtls_accepted",
            setup: Setup {
                client_auth: ClientAuth::Trusted,
                ..Setup::default()
            },
            connections: vec![c],
            expect,
            expect_events: [vec![], vec![]],
        });
    }
    {
        let (c, expect) = exchange(V12, true);
        v.push(Scenario {
            name: "mtls_accepted_tls12",
            setup: Setup {
                version: Some(V12),
                client_auth: ClientAuth::Trusted,
                ..Setup::default()
            },
            connections: vec![c],
            expect,
            expect_events: [vec![], vec![]],
        });
    }

    // mTLS rejected. In TLS 1.3 the client's handshake is over when it sends Finished;
    // the server's verdict arrives as an alert on the client's next read. The client
    // does not write (whether a write after the handshake still succeeds depends on
    // when the alert arrives: timing, not behaviour).
    v.push(Scenario {
        name: "mtls_rejected_untrusted_cert",
        setup: Setup {
            client_auth: ClientAuth::Untrusted,
            ..Setup::default()
        },
        connections: vec![conn(vec![Handshake, ReadToEnd], vec![Handshake, ReadToEnd])],
        expect: [
            vec![
                hs(V13, true),
                E::Error(ExpectFail::Alert(AlertDescription::UnknownCA)),
            ],
            vec![E::Error(ExpectFail::Tls(
                "InvalidCertificate(UnknownIssuer)",
            ))],
        ],
        expect_events: [vec![], vec![]],
    });
    // The same in TLS 1.2, where the client's handshake fails itself.
    v.push(Scenario {
        name: "mtls_rejected_untrusted_cert_tls12",
        setup: Setup {
            version: Some(V12),
            client_auth: ClientAuth::Untrusted,
            ..Setup::default()
        },
        connections: vec![conn(vec![Handshake, ReadToEnd], vec![Handshake, ReadToEnd])],
        expect: [
            vec![E::Error(ExpectFail::Alert(AlertDescription::UnknownCA))],
            vec![E::Error(ExpectFail::Tls(
                "InvalidCertificate(UnknownIssuer)",
            ))],
        ],
        expect_events: [vec![], vec![]],
    });
    // Peer alert: the client sends no certificate, the server requires one.
    v.push(Scenario {
        name: "peer_alert_certificate_required",
        setup: Setup {
            client_auth: ClientAuth::Missing,
            ..Setup::default()
        },
        connections: vec![conn(vec![Handshake, ReadToEnd], vec![Handshake, ReadToEnd])],
        expect: [
            vec![
                hs(V13, true),
                E::Error(ExpectFail::Alert(AlertDescription::CertificateRequired)),
            ],
            vec![E::Error(ExpectFail::Tls("NoCertificatesPresented"))],
        ],
        expect_events: [vec![], vec![]],
    });

    // Resumption: the second connection resumes the first's session.
    for (name, version) in [("resumption_tls13", V13), ("resumption_tls12", V12)] {
        let (c, one) = exchange(version, false);
        let mut expect = [vec![E::Connection(0)], vec![E::Connection(0)]];
        for (i, resumed) in [(0, false), (1, true)] {
            for side in 0..2 {
                if i == 1 {
                    expect[side].push(E::Connection(1));
                }
                let mut entries = one[side].clone();
                entries[0] = E::Handshake {
                    version,
                    alpn: None,
                    resumed,
                    // A resumed session still knows the peer's certificate.
                    peer_cert: side == 0,
                };
                expect[side].extend(entries);
            }
        }
        v.push(Scenario {
            name,
            setup: Setup {
                version: Some(version),
                resumption: true,
                ..Setup::default()
            },
            connections: vec![c.clone(), c],
            expect,
            expect_events: [vec![], vec![]],
        });
    }
}

fn handshake_scenario(name: &'static str, version: ProtocolVersion, key: KeyKind) -> Scenario {
    let (c, expect) = exchange(version, false);
    Scenario {
        name,
        setup: Setup {
            version: Some(version),
            key,
            ..Setup::default()
        },
        connections: vec![c],
        expect,
        expect_events: [vec![Ev::PeerClosed], vec![Ev::PeerClosed]],
    }
}
