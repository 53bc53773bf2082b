//! Throwaway PKIs made with rcgen: a CA, a server leaf, a client leaf, and rustls configs.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::time_provider::{DefaultTimeProvider, TimeProvider};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use tls_core::config;

/// An RSA-2048 key shipped with the crate: ring can sign with RSA but not generate keys.
const RSA_2048_PEM: &str = include_str!("../data/rsa2048.pem");

/// The key type of every certificate in a [`Pki`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
    /// Ed25519.
    Ed25519,
    /// RSA-2048 (PKCS#1 v1.5 SHA-256 certificate signatures).
    Rsa2048,
}

impl KeyKind {
    /// Every kind.
    pub const ALL: [KeyKind; 3] = [KeyKind::EcdsaP256, KeyKind::Ed25519, KeyKind::Rsa2048];

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
            Self::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    fn key_pair(self) -> KeyPair {
        match self {
            Self::Rsa2048 => KeyPair::from_pem(RSA_2048_PEM).expect("shipped RSA key"),
            other => KeyPair::generate_for(other.algorithm()).expect("key generation"),
        }
    }
}

/// A certificate chain (leaf first) and its private key.
pub struct Identity {
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 DER private key.
    pub key: PrivatePkcs8KeyDer<'static>,
    /// The leaf as PEM.
    pub cert_pem: String,
    /// The key as PEM.
    pub key_pem: String,
}

impl Identity {
    /// A copy of the key for rustls.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// A CA with a server leaf (for `localhost`, `127.0.0.1`, `::1` and any extra names) and
/// a client leaf.
pub struct Pki {
    /// The CA certificate.
    pub ca: CertificateDer<'static>,
    /// The CA certificate as PEM.
    pub ca_pem: String,
    /// The CA's common name (unique per PKI).
    pub ca_name: String,
    kind: KeyKind,
    /// The server's identity.
    pub server: Identity,
    /// A client identity for mutual TLS.
    pub client: Identity,
}

fn serial() -> SerialNumber {
    // Positive (top bit clear), 16 random-looking bytes from a fresh key's public bytes
    // would be overkill: a counter mixed with the process id is unique enough here.
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) ^ (u64::from(std::process::id()) << 32);
    let mut bytes = n.to_be_bytes().to_vec();
    bytes.insert(0, 0x01);
    SerialNumber::from_slice(&bytes)
}

fn validity(params: &mut CertificateParams) {
    let now = time_now();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(90);
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl Pki {
    /// A fresh PKI whose keys are all of `kind`, with the server valid for `localhost`,
    /// `127.0.0.1`, `::1` and `extra_names`.
    pub fn new(kind: KeyKind, extra_names: &[&str]) -> Self {
        let ca_key = kind.key_pair();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name = DistinguishedName::new();
        // A name of its own, so a client trusting another test PKI reports an unknown
        // issuer rather than a bad signature from a CA of the same name.
        let ca_serial = serial();
        let ca_name = format!("tlsflow test CA {}", hex(ca_serial.as_ref()));
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name.clone());
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.serial_number = Some(ca_serial);
        validity(&mut ca_params);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        names.extend(extra_names.iter().map(|s| s.to_string()));
        let server = leaf(
            kind,
            &issuer,
            names,
            "tlsflow test server",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(
            kind,
            &issuer,
            vec!["client.tlsflow.test".into()],
            "tlsflow test client",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let ca = ca_cert.der().clone();
        let ca_pem = ca_cert.pem();
        Self {
            server: with_ca(server, &ca),
            client: with_ca(client, &ca),
            ca,
            ca_pem,
            ca_name,
            kind,
        }
    }

    /// A CA certificate with this PKI's CA name but a key of its own: an impostor whose
    /// signature on the leaves cannot verify.
    pub fn impostor_ca(&self) -> CertificateDer<'static> {
        let key = self.kind.key_pair();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.ca_name.clone());
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(serial());
        validity(&mut params);
        params.self_signed(&key).unwrap().der().clone()
    }

    /// A root store trusting this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        roots
    }
}

fn with_ca(mut id: Identity, ca: &CertificateDer<'static>) -> Identity {
    id.chain.push(ca.clone());
    id
}

fn leaf(
    kind: KeyKind,
    issuer: &Issuer<'_, KeyPair>,
    names: Vec<String>,
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
) -> Identity {
    let key = kind.key_pair();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.serial_number = Some(serial());
    validity(&mut params);
    let cert = params.signed_by(&key, issuer).unwrap();
    Identity {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The system clock, for tests (tls-core itself never reads a clock).
pub fn clock() -> Arc<dyn TimeProvider> {
    Arc::new(DefaultTimeProvider)
}

/// TLS 1.3 only.
pub static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// TLS 1.2 only.
pub static TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// What a test config should enable.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Protocol versions; empty means TLS 1.3 and 1.2.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// ALPN protocols to offer (client) or accept (server).
    pub alpn: Vec<Vec<u8>>,
    /// Server: require a client certificate from this PKI's CA. Client: present one.
    pub mtls: bool,
    /// Enable resumption (tickets and session ids).
    pub resumption: bool,
    /// Restrict cipher suites to these (empty: all ring suites).
    pub suites: Vec<rustls::CipherSuite>,
}

fn provider(opts: &Options) -> Arc<rustls::crypto::CryptoProvider> {
    // tls-core's provider: *ring* with the X25519MLKEM768 hybrid first.
    let mut p = Arc::unwrap_or_clone(config::crypto_provider());
    if !opts.suites.is_empty() {
        p.cipher_suites.retain(|s| opts.suites.contains(&s.suite()));
    }
    Arc::new(p)
}

fn versions(opts: &Options) -> Vec<&'static SupportedProtocolVersion> {
    if opts.versions.is_empty() {
        config::ALL_VERSIONS.to_vec()
    } else {
        opts.versions.clone()
    }
}

impl Pki {
    /// A server config for this PKI.
    pub fn server_config(&self, opts: &Options) -> ServerConfig {
        let builder = ServerConfig::builder_with_details(provider(opts), clock())
            .with_protocol_versions(&versions(opts))
            .unwrap();
        let builder = if opts.mtls {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()), provider(opts))
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut cfg = builder
            .with_single_cert(self.server.chain.clone(), self.server.private_key())
            .unwrap();
        cfg.alpn_protocols = opts.alpn.clone();
        if opts.resumption {
            config::enable_server_resumption(&mut cfg, clock(), 256, 3600).unwrap();
        } else {
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            cfg.send_tls13_tickets = 0;
        }
        cfg
    }

    /// A client config trusting this PKI's CA.
    pub fn client_config(&self, opts: &Options) -> ClientConfig {
        let builder = ClientConfig::builder_with_details(provider(opts), clock())
            .with_protocol_versions(&versions(opts))
            .unwrap()
            .with_root_certificates(self.roots());
        let mut cfg = if opts.mtls {
            builder
                .with_client_auth_cert(self.client.chain.clone(), self.client.private_key())
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        cfg.alpn_protocols = opts.alpn.clone();
        if opts.resumption {
            config::enable_client_resumption(&mut cfg, 32);
        } else {
            cfg.resumption = rustls::client::Resumption::disabled();
        }
        cfg
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
