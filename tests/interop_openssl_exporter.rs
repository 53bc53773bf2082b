//! OpenSSL 3.0 against our tls-unix blocking server (hybrid preferred): `s_client
//! -keymatexport LABEL -keymatexportlen 32` prints the same keying material as our
//! exporter, and a client limited to `-groups X25519` (OpenSSL 3.0 has no ML-KEM, so that
//! is its only way in besides P-256) connects by the X25519 fallback.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::peer::require;
use support::*;
use tls_core::rustls::NamedGroup;
use tls_test::certs::{KeyKind, Options as CertOptions, Pki, TLS13};
use tls_unix::{blocking, Options};

const LABEL: &str = "EXPERIMENTAL-tlsflow";

fn options() -> Options {
    Options {
        handshake_timeout: Some(Duration::from_secs(20)),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..Options::default()
    }
}

/// Runs s_client with `extra` flags against our server; returns (our group, our export,
/// s_client's stdout).
fn s_client_against_us(extra: &[&str]) -> (NamedGroup, String, String) {
    let dir = TempDir::new("s_client-exporter");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Arc::new(pki.server_config(&CertOptions {
        versions: TLS13.to_vec(),
        ..CertOptions::default()
    }));
    let server = spawn_task("our server", move || {
        let (sock, _) = listener.accept().unwrap();
        let mut tls = blocking::accept(config, sock, options()).expect("handshake");
        let group = tls.handshake_info().unwrap().key_exchange.unwrap();
        let mut out = [0u8; 32];
        tls.export_keying_material(&mut out, LABEL.as_bytes(), None)
            .unwrap();
        // s_client sends close_notify when its stdin ends.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).expect("s_client's close_notify");
        tls.shutdown().unwrap();
        (group, hex(&out))
    });

    let mut cmd = Command::new(require("openssl"));
    cmd.args(["s_client", "-tls1_3", "-servername", "localhost"])
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(&files.ca)
        .args([
            "-verify_return_error",
            "-keymatexport",
            LABEL,
            "-keymatexportlen",
            "32",
        ])
        .args(extra);
    let done = run("openssl s_client", &mut cmd, LIMIT);
    done.assert_success("openssl s_client");
    let (group, export) = server.join(LIMIT);
    (group, export, done.stdout_text())
}

/// The hex after "Keying material: " in s_client's session report.
fn keying_material(stdout: &str) -> String {
    let at = stdout
        .find("Keying material: ")
        .unwrap_or_else(|| panic!("no keying material in s_client's output:\n{stdout}"));
    stdout[at + "Keying material: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_ascii_lowercase()
}

#[test]
fn s_client_keymatexport_matches_our_exporter() {
    let (group, export, stdout) = s_client_against_us(&[]);
    // OpenSSL 3.0 offers X25519 first and has no hybrid: our server takes X25519.
    assert_eq!(group, NamedGroup::X25519);
    assert!(stdout.contains(&format!("Label: '{LABEL}'")), "{stdout}");
    assert_eq!(keying_material(&stdout), export);
}

#[test]
fn s_client_limited_to_x25519_connects_by_the_fallback() {
    let (group, export, stdout) = s_client_against_us(&["-groups", "X25519"]);
    assert_eq!(group, NamedGroup::X25519);
    assert!(stdout.contains("Server Temp Key: X25519"), "{stdout}");
    assert_eq!(keying_material(&stdout), export);
}

#[test]
fn s_client_limited_to_p256_connects() {
    // Our server prefers the hybrid but follows the client's groups: P-256 it is.
    let (group, export, stdout) = s_client_against_us(&["-groups", "P-256"]);
    assert_eq!(group, NamedGroup::secp256r1);
    assert_eq!(keying_material(&stdout), export);
}
