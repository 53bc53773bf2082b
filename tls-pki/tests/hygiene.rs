//! Each property the crate promises, read back from the generated certificates with
//! x509-parser, for every key kind.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tlsflow_pki::{KeyKind, Options, Pki};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

fn parse<'a>(der: &'a CertificateDer<'_>) -> X509Certificate<'a> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("parses");
    assert!(rest.is_empty(), "trailing bytes after the certificate");
    cert
}

/// The certificates of a PKI: CA, server leaf, client leaf.
fn all(pki: &Pki) -> [&CertificateDer<'static>; 3] {
    [&pki.ca, &pki.server.chain[0], &pki.client.chain[0]]
}

/// Bits in a DER INTEGER's content octets, which must be minimal and positive.
fn serial_bits(raw: &[u8]) -> usize {
    assert!(
        !raw.is_empty() && raw.len() <= 20,
        "RFC 5280: 1 to 20 octets"
    );
    assert!(raw[0] & 0x80 == 0, "positive: {raw:02x?}");
    if raw.len() > 1 {
        assert!(
            raw[0] != 0 || raw[1] & 0x80 != 0,
            "DER-minimal (no needless leading zero): {raw:02x?}"
        );
    }
    let first = raw
        .iter()
        .position(|&b| b != 0)
        .expect("serial is not zero");
    (raw.len() - first) * 8 - raw[first].leading_zeros() as usize
}

#[test]
fn serials_are_random_64_bits_or_more_and_differ() {
    for kind in KeyKind::ALL {
        let (a, b) = (Pki::new(kind, &[]), Pki::new(kind, &[]));
        let mut seen = Vec::new();
        for der in all(&a).into_iter().chain(all(&b)) {
            let cert = parse(der);
            let raw = cert.raw_serial().to_vec();
            assert!(serial_bits(&raw) >= 64, "{kind:?}: serial {raw:02x?}");
            assert!(!seen.contains(&raw), "{kind:?}: serial {raw:02x?} repeats");
            seen.push(raw);
        }
        // Not the process id plus a counter: two PKIs' serials share no long prefix.
        assert_ne!(seen[0][..4], seen[3][..4], "{kind:?}");
    }
}

#[test]
fn leaf_key_usage_is_digital_signature_only_for_ec_and_ed25519() {
    for kind in KeyKind::ALL {
        let pki = Pki::new(kind, &[]);
        for der in [&pki.server.chain[0], &pki.client.chain[0]] {
            let cert = parse(der);
            let ku = cert.key_usage().unwrap().expect("key usage").value;
            assert!(ku.digital_signature(), "{kind:?}: {ku}");
            let allowed = match kind {
                KeyKind::Rsa2048 => {
                    assert!(ku.key_encipherment(), "{kind:?}: {ku}");
                    0b101 // digitalSignature (bit 0) and keyEncipherment (bit 2)
                }
                _ => 0b1,
            };
            assert_eq!(ku.flags & !allowed, 0, "{kind:?}: {ku}");
            assert!(!cert.is_ca(), "{kind:?}: a leaf is no CA");
        }
        let ca = parse(&pki.ca);
        assert!(ca.is_ca(), "{kind:?}");
        let ku = ca.key_usage().unwrap().expect("CA key usage").value;
        assert!(ku.key_cert_sign(), "{kind:?}: {ku}");
    }
}

fn subject_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
}

fn authority_key_id(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0.to_vec())
            }
            _ => None,
        })
}

#[test]
fn key_identifiers_on_ca_and_leaves_and_aki_names_the_ca() {
    for kind in KeyKind::ALL {
        let pki = Pki::new(kind, &[]);
        let ca = parse(&pki.ca);
        let ca_ski = subject_key_id(&ca).expect("CA has a Subject Key Identifier");
        assert!(!ca_ski.is_empty());
        for der in [&pki.server.chain[0], &pki.client.chain[0]] {
            let leaf = parse(der);
            let ski = subject_key_id(&leaf).expect("leaf has a Subject Key Identifier");
            assert!(!ski.is_empty());
            if kind != KeyKind::Rsa2048 {
                // (Every RSA certificate shares the shipped key, so its SKI too.)
                assert_ne!(ski, ca_ski, "{kind:?}: the leaf's own key");
            }
            let aki = authority_key_id(&leaf).expect("leaf has an Authority Key Identifier");
            assert_eq!(aki, ca_ski, "{kind:?}: AKI is the CA's SKI");
            assert_eq!(leaf.issuer(), ca.subject(), "{kind:?}");
        }
    }
}

/// The random part of a CA name: the 16 hex digits after the fixed prefix.
fn ca_suffix(name: &str) -> &str {
    let suffix = name
        .strip_prefix("tlsflow throwaway CA ")
        .unwrap_or_else(|| panic!("unexpected CA name {name:?}"));
    assert!(
        suffix.len() == 16 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name:?}"
    );
    suffix
}

#[test]
fn no_process_id_in_any_name() {
    let pid = std::process::id();
    let forms = [pid.to_string(), format!("{pid:x}"), format!("{pid:X}")];
    let (a, b) = (
        Pki::new(KeyKind::EcdsaP256, &[]),
        Pki::new(KeyKind::EcdsaP256, &[]),
    );
    // Random per PKI, not the pid (the old names were the pid and a counter: the same
    // high half in every PKI of a process).
    let (sa, sb) = (ca_suffix(&a.ca_name), ca_suffix(&b.ca_name));
    assert_ne!(
        sa[..8],
        sb[..8],
        "each PKI's CA has a random name of its own"
    );
    for suffix in [sa, sb] {
        // 8 digits cannot match by chance in practice.
        assert!(!suffix.contains(&format!("{pid:08x}")), "pid in {suffix}");
    }
    for pki in [&a, &b] {
        let random = ca_suffix(&pki.ca_name);
        for der in all(pki) {
            let cert = parse(der);
            for name in [cert.subject().to_string(), cert.issuer().to_string()] {
                // Every name is fixed text, plus the CA's random suffix: the pid in any
                // form appears in none of the fixed text.
                let fixed = name.replace(random, "");
                for form in &forms {
                    assert!(!fixed.contains(form.as_str()), "pid {form} in {name:?}");
                }
            }
        }
    }
}

/// The chain the server config really sends, seen by a client in memory.
fn served_chain(pki: &Pki) -> Vec<CertificateDer<'static>> {
    let server_cfg = Arc::new(pki.server_config(&Options::default()));
    let client_cfg = Arc::new(pki.client_config(&Options::default()));
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = rustls::ClientConnection::new(client_cfg, name).unwrap();
    let mut server = rustls::ServerConnection::new(server_cfg).unwrap();
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        buf.clear();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets().unwrap();
    }
    assert!(!client.is_handshaking(), "handshake finished");
    client
        .peer_certificates()
        .expect("server sent certificates")
        .to_vec()
}

#[test]
fn served_chain_is_the_leaf_without_the_trust_anchor() {
    for kind in KeyKind::ALL {
        let pki = Pki::new(kind, &[]);
        assert_eq!(pki.server.chain.len(), 1, "{kind:?}");
        assert_eq!(pki.client.chain.len(), 1, "{kind:?}");
        let served = served_chain(&pki);
        assert_eq!(served, pki.server.chain, "{kind:?}");
        assert!(!served.contains(&pki.ca), "{kind:?}: the CA is not sent");
        assert!(served.iter().all(|c| !parse(c).is_ca()), "{kind:?}");
    }
}
