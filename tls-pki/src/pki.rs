//! The certificates: a CA, a server leaf and a client leaf, all with keys of one kind.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, SignatureAlgorithm,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::RootCertStore;

/// An RSA-2048 key shipped with the crate: ring can sign with RSA but not generate keys,
/// so every RSA certificate of every [`Pki`] shares it. Only tests use [`KeyKind::Rsa2048`].
const RSA_2048_PEM: &str = include_str!("../data/rsa2048.pem");

/// The key type of every certificate in a [`Pki`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
    /// Ed25519.
    Ed25519,
    /// RSA-2048 (PKCS#1 v1.5 SHA-256 certificate signatures), with a key shipped in the
    /// crate: fine for tests, not a secret.
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

    /// Key usages of a leaf: a signature only, except that an RSA key may also encrypt
    /// a TLS 1.2 RSA key exchange (RFC 5480 §3 forbids keyEncipherment for EC keys).
    fn leaf_key_usages(self) -> Vec<KeyUsagePurpose> {
        match self {
            Self::Rsa2048 => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            Self::EcdsaP256 | Self::Ed25519 => vec![KeyUsagePurpose::DigitalSignature],
        }
    }
}

/// A certificate chain (leaf first) and its private key.
pub struct Identity {
    /// The chain to send to a peer: the leaf only (a [`Pki`] has no intermediates), never
    /// the trust anchor, which the peer must already have.
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
    /// The CA certificate (the trust anchor).
    pub ca: CertificateDer<'static>,
    /// The CA certificate as PEM.
    pub ca_pem: String,
    /// The CA's common name (unique per PKI: `tlsflow throwaway CA <random hex>`).
    pub ca_name: String,
    pub(crate) kind: KeyKind,
    /// The server's identity.
    pub server: Identity,
    /// A client identity for mutual TLS.
    pub client: Identity,
}

/// `n` bytes from the system's CSPRNG.
fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random number generator");
    bytes
}

/// A random serial number: 16 bytes whose first byte is `01xxxxxx`, so the INTEGER is
/// positive, needs no leading zero byte and has no leading zero to strip (DER-minimal,
/// 16 bytes, under RFC 5280's 20), with 126 random bits.
fn serial() -> SerialNumber {
    let mut bytes = random::<16>();
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(90);
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // rcgen writes the Subject Key Identifier of every CA (SHA-256 of its public key,
    // truncated), and the leaves' Authority Key Identifier from the same method.
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(serial());
    validity(&mut params);
    params
}

impl Pki {
    /// A fresh PKI whose keys are all of `kind`, with the server valid for `localhost`,
    /// `127.0.0.1`, `::1` and `extra_names`.
    pub fn new(kind: KeyKind, extra_names: &[&str]) -> Self {
        // A name of its own, so a client trusting another PKI reports an unknown issuer
        // rather than a bad signature from a CA of the same name.
        let ca_name = format!("tlsflow throwaway CA {}", hex(&random::<8>()));
        let ca_key = kind.key_pair();
        let params = ca_params(&ca_name);
        let ca_cert = params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(params, ca_key);

        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        names.extend(extra_names.iter().map(|s| s.to_string()));
        let server = leaf(
            kind,
            &issuer,
            names,
            "tlsflow throwaway server",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(
            kind,
            &issuer,
            vec!["client.tlsflow.test".into()],
            "tlsflow throwaway client",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            ca: ca_cert.der().clone(),
            ca_pem: ca_cert.pem(),
            ca_name,
            kind,
            server,
            client,
        }
    }

    /// A CA certificate with this PKI's CA name but a key of its own: an impostor whose
    /// signature on the leaves cannot verify.
    pub fn impostor_ca(&self) -> CertificateDer<'static> {
        let key = self.kind.key_pair();
        ca_params(&self.ca_name)
            .self_signed(&key)
            .expect("impostor CA certificate")
            .der()
            .clone()
    }

    /// A root store trusting this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("our own CA parses");
        roots
    }
}

fn leaf(
    kind: KeyKind,
    issuer: &Issuer<'_, KeyPair>,
    names: Vec<String>,
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
) -> Identity {
    let key = kind.key_pair();
    let mut params = CertificateParams::new(names).expect("valid subject alternative names");
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    // ExplicitNoCa makes rcgen write basicConstraints CA:FALSE and the Subject Key
    // Identifier; the Authority Key Identifier names the CA's key.
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = kind.leaf_key_usages();
    params.extended_key_usages = vec![usage];
    params.serial_number = Some(serial());
    validity(&mut params);
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    Identity {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
