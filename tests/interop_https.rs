//! `tlsflow serve` (hyper on the Unix backend) against real clients: curl keep-alive with
//! 100 requests on one connection, curl over HTTP/2, `openssl s_client` and `gnutls-cli`
//! speaking HTTP/1.1 by hand; and Ctrl-C (SIGINT) during an 8 MiB download, which
//! completes with close_notify before the process exits 0.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;

use support::peer::{require, Peer};
use support::*;
use tls_test::certs::{KeyKind, Pki};

fn curl(server: &OurServer, extra: &[&str]) -> Command {
    let mut cmd = Command::new(require("curl"));
    cmd.args(["-q", "--noproxy", "*", "-sS", "-v", "--fail", "--cacert"])
        .arg(&server.ca)
        .args(extra);
    cmd
}

#[test]
fn curl_keep_alive_100_requests_on_one_connection() {
    let mut server = OurServer::start(&[], None);
    let mut cmd = curl(&server, &["--http1.1"]);
    for i in 0..100 {
        cmd.arg(server.url(&format!("/bytes/{}", 1000 + i)));
    }
    let done = run("curl", &mut cmd, LIMIT);
    done.assert_success("curl keep-alive");
    let want: usize = (0..100).map(|i| 1000 + i).sum();
    assert_eq!(done.stdout.len(), want, "100 bodies");
    assert!(
        done.stderr.contains("Re-using existing") || done.stderr.contains("Reusing existing"),
        "curl reused its connection: {}",
        &done.stderr[..done.stderr.len().min(4000)]
    );
    let log = server.next_connection();
    assert_eq!(log_field(&log, "requests"), "100", "one connection: {log}");
    assert_eq!(log_field(&log, "alpn"), "http/1.1", "{log}");
    assert_eq!(
        log_field(&log, "close"),
        "close_notify (peer first)",
        "{log}"
    );
}

#[test]
fn curl_http2() {
    let mut server = OurServer::start(&[], None);
    let mut cmd = curl(&server, &["--http2"]);
    cmd.arg(server.url(&format!("/bytes/{BULK}")));
    let done = run("curl", &mut cmd, LIMIT);
    done.assert_success("curl --http2");
    assert_eq!(done.stdout.len(), BULK);
    assert_eq!(
        hex(&sha256(&done.stdout)),
        hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64))
    );
    assert!(
        done.stderr.contains("ALPN: server accepted h2"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("HTTP/2 200"), "{}", done.stderr);
    let log = server.next_connection();
    assert_eq!(log_field(&log, "alpn"), "h2", "{log}");
    assert_eq!(log_field(&log, "requests"), "1", "{log}");
}

const GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";

#[test]
fn openssl_s_client_http_get() {
    let mut server = OurServer::start(&[], None);
    let mut cmd = Command::new(require("openssl"));
    cmd.args(["s_client", "-quiet", "-verify_return_error", "-ign_eof"])
        .args(["-servername", "localhost", "-alpn", "http/1.1", "-connect"])
        .arg(server.addr.to_string())
        .arg("-CAfile")
        .arg(&server.ca);
    let (mut peer, out) = Peer::spawn_raw("openssl s_client", &mut cmd);
    peer.stdin().write_all(GET_CLOSE).unwrap();
    peer.close_stdin();
    let status = peer.wait_exit(LIMIT);
    out.wait_eof(LIMIT);
    let text = out.with(|b| String::from_utf8_lossy(b).into_owned());
    assert!(status.success(), "s_client: {status}; {text}");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("tlsflow (unix backend)"), "{text}");
    let log = server.next_connection();
    assert_eq!(log_field(&log, "requests"), "1", "{log}");
    assert!(
        log_field(&log, "close").starts_with("close_notify"),
        "{log}"
    );
}

#[test]
fn gnutls_cli_http_get() {
    let mut server = OurServer::start(&[], None);
    let mut cmd = Command::new(require("gnutls-cli"));
    cmd.arg("--x509cafile")
        .arg(&server.ca)
        .args(["--alpn", "http/1.1", "-p"])
        .arg(server.port().to_string())
        .arg("localhost");
    let (mut peer, out) = Peer::spawn_raw("gnutls-cli", &mut cmd);
    peer.stdin().write_all(GET_CLOSE).unwrap();
    let status = peer.wait_exit(LIMIT);
    out.wait_eof(LIMIT);
    let text = out.with(|b| String::from_utf8_lossy(b).into_owned());
    let stderr = peer.wait_output_end(LIMIT);
    assert!(text.contains("HTTP/1.1 200 OK\r\n"), "{text}\n{stderr}");
    assert!(text.contains("tlsflow (unix backend)"), "{text}");
    assert!(status.success(), "gnutls-cli: {status}; {stderr}");
    let log = server.next_connection();
    assert_eq!(log_field(&log, "alpn"), "http/1.1", "{log}");
    assert!(
        log_field(&log, "close").starts_with("close_notify"),
        "{log}"
    );
}

#[test]
fn sigint_during_an_8mib_download_finishes_it_with_close_notify() {
    let dir = TempDir::new("sigint");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let cert = files.server_cert.to_str().unwrap().to_string();
    let key = files.server_key.to_str().unwrap().to_string();
    let mut server = OurServer::start(&["--cert", &cert, "--key", &key], Some(&files.ca));
    let opts = tls_test::certs::Options {
        alpn: vec![b"http/1.1".to_vec()],
        ..Default::default()
    };
    let options = tls_unix::Options {
        handshake_timeout: Some(LIMIT),
        read_timeout: Some(LIMIT),
        write_timeout: Some(LIMIT),
        ..Default::default()
    };
    let mut tls = tls_unix::blocking::connect(
        Arc::new(pki.client_config(&opts)),
        "localhost".try_into().unwrap(),
        TcpStream::connect(server.addr).unwrap(),
        options,
    )
    .unwrap();
    write!(tls, "GET /bytes/{BULK} HTTP/1.1\r\nhost: localhost\r\n\r\n").unwrap();
    tls.flush().unwrap();
    // The download has begun: its first bytes are here.
    let mut first = vec![0u8; 64 * 1024];
    tls.read_exact(&mut first).unwrap();
    let pid = server.peer().pid().to_string();
    run(
        "kill",
        Command::new(require("kill")).args(["-INT", &pid]),
        LIMIT,
    )
    .assert_success("kill -INT");
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest)
        .expect("the download ends with close_notify, not truncated");
    first.extend_from_slice(&rest);
    let head_end = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(first.len() - head_end, BULK, "the whole body");
    assert_eq!(
        sha256(&first[head_end..]),
        tlsflow_unikernel::http::pattern_digest(BULK as u64)
    );
    tls.shutdown().unwrap();
    let log = server.next_connection();
    assert!(
        log_field(&log, "close").starts_with("server shutdown; close_notify"),
        "{log}"
    );
    let status = server.peer().wait_exit(LIMIT);
    assert!(
        status.success(),
        "tlsflow serve exits 0 after Ctrl-C: {status}"
    );
}
