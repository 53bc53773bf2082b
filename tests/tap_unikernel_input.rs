//! `--backend unikernel` on a TAP device against bad input and a long keep-alive: the
//! unikernel halves of the HTTPS application's bad-input list, with the host kernel in a
//! network namespace the test makes (as tests/tap_unikernel.rs does).
//!
//! Malformed request → `400` then close_notify; oversized head → `431`; oversized body →
//! `413`; a head dribbled a byte a second → `408` after the header-read timeout, then
//! close_notify; random bytes instead of a ClientHello → a TLS alert; the log line of
//! each says why, and the server keeps serving. And curl fetches 100 URLs over one
//! kept-alive connection (the server logs one connection with `requests=100`).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use support::netns::Netns;
use support::peer::{require, Peer};
use support::{log_field, run, write_pki, TempDir, LIMIT};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::blocking::{self, TlsStream};

const SERVER: &str = "192.0.2.2";
const PORT: u16 = 8443;

fn start_server(ns: &Netns, tap: &str, args: &[&str]) -> Peer {
    let mut cmd = ns.exec(env!("CARGO_BIN_EXE_tlsflow"));
    cmd.args(["serve", "--backend", "unikernel", "--tap", tap])
        .args(["--ip", "192.0.2.2/24"])
        .args(args);
    let (server, _) = Peer::start(
        "tlsflow serve --backend unikernel",
        &mut cmd,
        |l| l.starts_with("tlsflow: listening on "),
        LIMIT,
    );
    server
}

fn own_client(ns: &Netns, config: &Arc<rustls::ClientConfig>) -> (TlsStream<TcpStream>, u16) {
    let sock = ns.connect(SocketAddr::from(([192, 0, 2, 2], PORT)));
    let port = sock.local_addr().unwrap().port();
    let options = tls_unix::Options {
        handshake_timeout: Some(LIMIT),
        read_timeout: Some(LIMIT),
        write_timeout: Some(LIMIT),
        ..Default::default()
    };
    let name = ServerName::try_from(SERVER).unwrap();
    let tls = blocking::connect(config.clone(), name, sock, options).expect("TLS handshake");
    (tls, port)
}

/// Reads one response (head and content-length body) and then expects the server's
/// close_notify (a clean end of stream); returns the status line.
fn response_then_close_notify(tls: &mut TlsStream<TcpStream>) -> String {
    let mut reader = BufReader::new(tls);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .expect("close_notify, not a truncation");
    assert!(rest.is_empty(), "nothing after the response: {rest:?}");
    status.trim_end().to_string()
}

/// The log line of the connection from the namespace's `port`.
fn log_of(server: &mut Peer, port: u16) -> String {
    let prefix = format!("192.0.2.1:{port} ");
    server.wait_for(|l| l.starts_with(&prefix), LIMIT)
}

#[test]
fn unikernel_server_on_tap_answers_bad_input_and_keeps_serving() {
    let dir = TempDir::new("tap-bad-input");
    let ns = Netns::with_tap("badin", "tap4", "192.0.2.1/24");
    let pki = Pki::new(KeyKind::EcdsaP256, &[SERVER]);
    let files = write_pki(&dir, &pki);
    let config = Arc::new(pki.client_config(&CertOptions::default()));
    let (chain, key) = (files.server_chain.display(), files.server_key.display());
    let (chain, key) = (chain.to_string(), key.to_string());
    let mut server = start_server(
        &ns,
        "tap4",
        &[
            "--cert",
            &chain,
            "--key",
            &key,
            "--header-timeout",
            "2",
            "--max-header-bytes",
            "16384",
        ],
    );

    // Over --max-header-bytes (16 KiB here; the default is 64 KiB).
    let oversized_head = format!(
        "GET / HTTP/1.1\r\nhost: {SERVER}\r\nx-filler: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let cases: [(&[u8], &str, &str); 3] = [
        (
            b"GET /HTTP/1.0\r\n\r\n",
            "HTTP/1.1 400 Bad Request",
            "bad request (400); close_notify (both)",
        ),
        (
            oversized_head.as_bytes(),
            "HTTP/1.1 431 Request Header Fields Too Large",
            "request head too large (431); close_notify (both)",
        ),
        (
            b"POST /up HTTP/1.1\r\nhost: 192.0.2.2\r\ncontent-length: 1000000000\r\n\r\n",
            "HTTP/1.1 413 Content Too Large",
            "request body too large (413); close_notify (both)",
        ),
    ];
    for (request, status, reason) in cases {
        // Like hyper on the Unix backend: a refused head is no request; a body refused
        // after its head was read is one.
        let requests = if status.contains("413") { "1" } else { "0" };
        let (mut tls, port) = own_client(&ns, &config);
        tls.write_all(request).unwrap();
        tls.flush().unwrap();
        assert_eq!(response_then_close_notify(&mut tls), status);
        tls.shutdown().unwrap();
        let line = log_of(&mut server, port);
        assert_eq!(log_field(&line, "close"), reason, "{line}");
        assert_eq!(log_field(&line, "requests"), requests, "{line}");
    }

    // A head dribbled a byte a second (the pace of the attack, not a synchronisation):
    // after the 2 s header-read timeout, 408 and close_notify.
    let (mut tls, port) = own_client(&ns, &config);
    for &b in b"GET" {
        tls.write_all(&[b]).unwrap();
        tls.flush().unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(
        response_then_close_notify(&mut tls),
        "HTTP/1.1 408 Request Timeout"
    );
    tls.shutdown().unwrap();
    let line = log_of(&mut server, port);
    assert_eq!(
        log_field(&line, "close"),
        "header-read timeout (408); close_notify (both)",
        "{line}"
    );

    // Random bytes instead of a ClientHello: an alert record, then the close.
    let mut raw = ns.connect(SocketAddr::from(([192, 0, 2, 2], PORT)));
    let raw_port = raw.local_addr().unwrap().port();
    raw.set_read_timeout(Some(LIMIT)).unwrap();
    let mut garbage = vec![0u8; 512];
    tlsflow_unikernel::http::fill_pattern(99, &mut garbage);
    garbage[0] = 0x16; // looks like a handshake record, but is not one
    raw.write_all(&garbage).unwrap();
    let mut alert = Vec::new();
    raw.read_to_end(&mut alert).unwrap();
    assert_eq!(alert.first(), Some(&0x15), "a TLS alert record: {alert:?}");
    // Our FIN lets the server finish the TCP close (it logs the connection then).
    drop(raw);
    let line = log_of(&mut server, raw_port);
    assert!(line.contains(" handshake failed: "), "{line}");

    // The server still serves.
    let mut cmd = ns.exec(require("curl"));
    cmd.args(["-sS", "--cacert"])
        .arg(&files.ca)
        .arg(format!("https://{SERVER}:{PORT}/"));
    let done = run("curl", &mut cmd, LIMIT);
    done.assert_success("curl after the bad input");
    assert!(done
        .stdout_text()
        .starts_with("tlsflow (unikernel backend)"));
    drop(server);
    drop(ns);
}

#[test]
fn curl_keeps_one_unikernel_connection_alive_for_100_requests() {
    let dir = TempDir::new("tap-keepalive");
    let ns = Netns::with_tap("keepalive", "tap5", "192.0.2.1/24");
    let pki = Pki::new(KeyKind::EcdsaP256, &[SERVER]);
    let files = write_pki(&dir, &pki);
    let (chain, key) = (files.server_chain.display(), files.server_key.display());
    let (chain, key) = (chain.to_string(), key.to_string());
    let mut server = start_server(&ns, "tap5", &["--cert", &chain, "--key", &key]);
    let mut cmd = ns.exec(require("curl"));
    cmd.args(["-sS", "--http1.1", "--cacert"]).arg(&files.ca);
    for i in 0..100 {
        cmd.arg(format!("https://{SERVER}:{PORT}/bytes/{}", 1000 + i));
    }
    let done = run("curl (100 URLs)", &mut cmd, LIMIT);
    done.assert_success("curl (100 URLs)");
    let want: usize = (0..100).map(|i| 1000 + i).sum();
    assert_eq!(done.stdout.len(), want, "every body");
    let line = server.wait_for(|l| l.starts_with("192.0.2.1:"), LIMIT);
    assert_eq!(
        log_field(&line, "requests"),
        "100",
        "one connection: {line}"
    );
    assert!(
        log_field(&line, "close").starts_with("close_notify"),
        "{line}"
    );
    drop(server);
    drop(ns);
}
