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

mod faults;
mod handshake;
mod streams;

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
/// The table, by theme.
pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    handshake::add(&mut v);
    streams::add(&mut v);
    faults::add(&mut v);
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
