//! The one table of scenarios, and what each must produce on every backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ring::digest;
use tls_core::rustls::{
    self, AlertDescription, ClientConfig, ProtocolVersion, ServerConfig, SupportedProtocolVersion,
};
use tls_core::Initiator;
use tls_test::certs::{self, KeyKind, Options, Pki};

use crate::conformance::relay::{Fault, C2S, S2C};
use crate::conformance::runner::{stream_bytes, write, Op, Side};
use crate::conformance::trace::{short_sha, Entry, Ev, Fail, Trace};

/// Which client certificate the client presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// The server asks for none.
    Off,
    /// The server requires one; the client presents one from the server's CA.
    Trusted,
    /// The server requires one; the client presents none.
    Missing,
    /// The server requires one; the client presents one from another CA.
    Untrusted,
}

/// Both sides' configuration.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The protocol versions both sides allow.
    pub version: Option<ProtocolVersion>,
    pub key: KeyKind,
    pub client_alpn: &'static [&'static str],
    pub server_alpn: &'static [&'static str],
    pub client_auth: ClientAuth,
    pub resumption: bool,
    /// The name the client asks for (SNI); the server certificate covers it.
    pub sni: &'static str,
    /// The server sends its CA after its leaf (a first flight over one segment with RSA).
    pub chain_with_ca: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            version: Some(ProtocolVersion::TLSv1_3),
            key: KeyKind::EcdsaP256,
            client_alpn: &[],
            server_alpn: &[],
            client_auth: ClientAuth::Off,
            resumption: false,
            sni: "localhost",
            chain_with_ca: false,
        }
    }
}

/// The extra name every test server certificate carries, used as SNI by one scenario.
pub const EXTRA_NAME: &str = "conformance.tlsflow.test";

/// One PKI per key kind (RSA is slow to sign with, and certificates are not the point).
/// With `chain_with_ca`, the server's chain ends with the CA (the throwaway PKI serves
/// its leaf alone), to make a first flight longer than one segment.
fn pki(kind: KeyKind, chain_with_ca: bool) -> Arc<Pki> {
    static PKIS: OnceLock<Mutex<HashMap<String, Arc<Pki>>>> = OnceLock::new();
    let map = PKIS.get_or_init(Default::default);
    let key = format!("{kind:?}-{chain_with_ca}");
    map.lock()
        .unwrap()
        .entry(key)
        .or_insert_with(|| {
            let mut pki = Pki::new(kind, &[EXTRA_NAME]);
            if chain_with_ca {
                pki.server.chain.push(pki.ca.clone());
            }
            Arc::new(pki)
        })
        .clone()
}

/// A PKI nobody trusts, for the untrusted client certificate.
fn stranger() -> Arc<Pki> {
    static P: OnceLock<Arc<Pki>> = OnceLock::new();
    P.get_or_init(|| Arc::new(Pki::new(KeyKind::EcdsaP256, &[])))
        .clone()
}

/// Fresh configs for one backend's run of a scenario (fresh session caches, so no
/// backend resumes another's session).
pub struct Configs {
    pub client: Arc<ClientConfig>,
    pub server: Arc<ServerConfig>,
    pub sni: &'static str,
}

impl Setup {
    /// The SNI both sides report: the name, or none for an IP address (which is not sent).
    pub fn expected_sni(&self) -> Option<&'static str> {
        match self.sni.parse::<std::net::IpAddr>() {
            Ok(_) => None,
            Err(_) => Some(self.sni),
        }
    }

    pub fn configs(&self) -> Configs {
        let pki = pki(self.key, self.chain_with_ca);
        let versions: Vec<&'static SupportedProtocolVersion> = match self.version {
            Some(ProtocolVersion::TLSv1_3) => certs::TLS13.to_vec(),
            Some(ProtocolVersion::TLSv1_2) => certs::TLS12.to_vec(),
            _ => Vec::new(),
        };
        let alpn = |l: &[&str]| l.iter().map(|a| a.as_bytes().to_vec()).collect();
        let server_opts = Options {
            versions: versions.clone(),
            alpn: alpn(self.server_alpn),
            mtls: self.client_auth != ClientAuth::Off,
            resumption: self.resumption,
            suites: Vec::new(),
        };
        let client_opts = Options {
            versions: versions.clone(),
            alpn: alpn(self.client_alpn),
            mtls: self.client_auth == ClientAuth::Trusted,
            resumption: self.resumption,
            suites: Vec::new(),
        };
        let server = pki.server_config(&server_opts);
        let client = if self.client_auth == ClientAuth::Untrusted {
            let other = stranger();
            let mut c = ClientConfig::builder_with_details(
                tls_core::config::crypto_provider(),
                certs::clock(),
            )
            .with_protocol_versions(&client_opts.versions)
            .unwrap()
            .with_root_certificates(pki.roots())
            .with_client_auth_cert(other.client.chain.clone(), other.client.private_key())
            .unwrap();
            c.alpn_protocols = client_opts.alpn.clone();
            c.resumption = rustls::client::Resumption::disabled();
            c
        } else {
            pki.client_config(&client_opts)
        };
        Configs {
            client: Arc::new(client),
            server: Arc::new(server),
            sni: self.sni,
        }
    }
}

/// One connection of a scenario: both scripts and the relay's faults.
#[derive(Clone, Debug)]
pub struct Connection {
    pub client: Vec<Op>,
    pub server: Vec<Op>,
    /// Indexed by [`C2S`] and [`S2C`].
    pub faults: [Option<Fault>; 2],
    /// The server's TCP peer delays its ACKs by this much, and the server's first flight
    /// must not wait for that ACK. On smoltcp the relay's server-facing socket delays
    /// its ACKs and the backend checks, in virtual time, that both handshakes end
    /// before the delay; on sockets the real stack's own delayed ACK applies.
    pub delayed_ack: Option<std::time::Duration>,
}

/// A failure as a scenario expects it.
#[derive(Clone, Debug)]
pub enum ExpectFail {
    Truncated,
    Alert(AlertDescription),
    /// A rustls error whose `Debug` form starts with this.
    Tls(&'static str),
    /// A refused call (not a TLS failure) whose description contains this.
    Refused(&'static str),
}

/// One expected trace entry (a scenario's own assertion, independent of the reference).
#[derive(Clone, Debug)]
pub enum Expect {
    Connection(usize),
    Handshake {
        version: ProtocolVersion,
        alpn: Option<&'static str>,
        resumed: bool,
        peer_cert: bool,
    },
    Wrote(usize),
    /// This many bytes of the peer's data stream, continuing where the last read
    /// stopped (the hash is checked).
    Read(usize),
    Eof,
    Closed,
    KeyUpdate,
    Error(ExpectFail),
}

/// A scenario: configuration, connections, and what each side must see.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub setup: Setup,
    pub connections: Vec<Connection>,
    /// The expected trace entries of each side (indexed by `Side::index`).
    pub expect: [Vec<Expect>; 2],
    /// Events each side must report, in this order (other events may come between).
    pub expect_events: [Vec<Ev>; 2],
}

/// Records in the server's handshake flight, for the configuration used by
/// record-counting faults (TLS 1.3, ECDSA, no client auth, no tickets): ServerHello,
/// ChangeCipherSpec (middlebox compatibility), and one encrypted record holding
/// EncryptedExtensions, Certificate, CertificateVerify and Finished. The relay reports
/// the records it saw when a scenario fails, and the scenarios' own expectations fail if
/// this is wrong.
const SERVER_HANDSHAKE_RECORDS_13: usize = 3;
/// The same for the client: ClientHello, ChangeCipherSpec, Finished.
const CLIENT_HANDSHAKE_RECORDS_13: usize = 3;

pub fn conn(client: Vec<Op>, server: Vec<Op>) -> Connection {
    Connection {
        client,
        server,
        faults: [None, None],
        delayed_ack: None,
    }
}

pub fn hs(version: ProtocolVersion, peer_cert: bool) -> Expect {
    Expect::Handshake {
        version,
        alpn: None,
        resumed: false,
        peer_cert,
    }
}

use Expect as E;
use Op::{Close, Handshake, KeyUpdate, Read, ReadToEnd};
pub const V13: ProtocolVersion = ProtocolVersion::TLSv1_3;
pub const V12: ProtocolVersion = ProtocolVersion::TLSv1_2;

/// Request/response, then the client closes first: the basic exchange.
pub fn exchange(
    version: ProtocolVersion,
    server_sees_cert: bool,
) -> (Connection, [Vec<Expect>; 2]) {
    let c = conn(
        vec![Handshake, write(1000), Read(2000), Close, ReadToEnd],
        vec![Handshake, Read(1000), write(2000), ReadToEnd, Close],
    );
    let expect = [
        vec![
            hs(version, true),
            E::Wrote(1000),
            E::Read(2000),
            E::Closed,
            E::Eof,
        ],
        vec![
            hs(version, server_sees_cert),
            E::Read(1000),
            E::Wrote(2000),
            E::Eof,
            E::Closed,
        ],
    ];
    (c, expect)
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

/// The table.
pub fn all() -> Vec<Scenario> {
    let mut v = vec![
        handshake_scenario("handshake_tls13_ecdsa", V13, KeyKind::EcdsaP256),
        handshake_scenario("handshake_tls12_ecdsa", V12, KeyKind::EcdsaP256),
        handshake_scenario("handshake_tls13_rsa", V13, KeyKind::Rsa2048),
        handshake_scenario("handshake_tls12_rsa", V12, KeyKind::Rsa2048),
        handshake_scenario("handshake_tls13_ed25519", V13, KeyKind::Ed25519),
    ];

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

    // ALPN agreed.
    {
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
            name: "alpn_agreed",
            setup: Setup {
                client_alpn: &["h2", "http/1.1"],
                server_alpn: &["http/1.1"],
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

    // Half-close in both orders: one side closes, the other keeps sending.
    for (name, first) in [
        ("half_close_client_first", Side::Client),
        ("half_close_server_first", Side::Server),
    ] {
        let closer = vec![Handshake, write(10_000), Close, ReadToEnd];
        let other = vec![Handshake, ReadToEnd, write(20_000), Close];
        let closer_expect = |cert| {
            vec![
                hs(V13, cert),
                E::Wrote(10_000),
                E::Closed,
                E::Read(20_000),
                E::Eof,
            ]
        };
        let other_expect = |cert| {
            vec![
                hs(V13, cert),
                E::Read(10_000),
                E::Eof,
                E::Wrote(20_000),
                E::Closed,
            ]
        };
        let (c, expect) = match first {
            Side::Client => (
                conn(closer, other),
                [closer_expect(true), other_expect(false)],
            ),
            Side::Server => (
                conn(other, closer),
                [other_expect(true), closer_expect(false)],
            ),
        };
        v.push(Scenario {
            name,
            setup: Setup::default(),
            connections: vec![c],
            expect,
            expect_events: [vec![Ev::PeerClosed], vec![Ev::PeerClosed]],
        });
    }

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
    super::wire::scenarios(&mut v);
    v
}

fn matches_fail(want: &ExpectFail, got: &Fail) -> bool {
    match (want, got) {
        (ExpectFail::Truncated, Fail::Truncated) => true,
        (ExpectFail::Alert(a), Fail::AlertReceived(b)) => a == b,
        (ExpectFail::Tls(prefix), Fail::Tls(s)) => s.starts_with(prefix),
        (ExpectFail::Refused(what), Fail::Other(s)) => s.contains(what),
        _ => false,
    }
}

/// Checks one side's trace against the scenario's own expectation; `Err` names the first
/// entry that differs.
pub fn check(sc: &Scenario, side: Side, trace: &Trace) -> Result<(), String> {
    let want = &sc.expect[side.index()];
    let got = &trace.entries;
    let mut read_offset = 0;
    for (i, w) in want.iter().enumerate() {
        let Some(g) = got.get(i) else {
            return Err(format!("entry {i}: expected {w:?}, trace ended"));
        };
        let ok = match (w, g) {
            (E::Connection(a), Entry::Connection(b)) => {
                read_offset = 0;
                a == b
            }
            (
                E::Handshake {
                    version,
                    alpn,
                    resumed,
                    peer_cert,
                },
                Entry::Handshake(h),
            ) => {
                h.version == *version
                    && h.alpn.as_deref() == *alpn
                    && h.resumed == *resumed
                    && h.peer_cert == *peer_cert
                    && h.sni.as_deref() == sc.setup.expected_sni()
            }
            (E::Wrote(a), Entry::Wrote(b)) => a == b,
            (E::Read(n), Entry::Read { bytes, sha256 }) => {
                let data = stream_bytes(side.peer(), read_offset, *n);
                read_offset += n;
                bytes == n && *sha256 == short_sha(digest::digest(&digest::SHA256, &data))
            }
            (E::Eof, Entry::Eof)
            | (E::Closed, Entry::Closed)
            | (E::KeyUpdate, Entry::KeyUpdate) => true,
            (E::Error(w), Entry::Error(f)) => matches_fail(w, f),
            _ => false,
        };
        if !ok {
            return Err(format!("entry {i}: expected {w:?}, got {g:?}"));
        }
    }
    if got.len() > want.len() {
        return Err(format!(
            "entry {}: expected the end, got {:?}",
            want.len(),
            got[want.len()]
        ));
    }
    // Expected events, in order, as a subsequence.
    let mut it = trace.events.iter();
    for ev in &sc.expect_events[side.index()] {
        if !it.any(|e| e == ev) {
            return Err(format!(
                "event {ev:?} missing (in order) from {:?}",
                trace.events
            ));
        }
    }
    Ok(())
}
