//! `tlsflow get` against a scripted TLS server on 127.0.0.1 (tls-unix blocking, our
//! throwaway PKI): a body cut short by a TCP close without close_notify is an error with
//! and without a content-length, a complete body with an unclean end is only a note, and a
//! non-2xx status fails the command; a long body gets a progress bar on a terminal
//! (`script` gives `get` one), and none with `-s`.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use support::peer::{require, Peer};
use support::*;
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::{blocking, Options};

/// How the scripted server ends after its response.
#[derive(Clone, Copy)]
enum End {
    /// close_notify, then waits for the client's.
    Clean,
    /// Closes TCP without close_notify.
    Truncate,
}

/// A scripted server for one connection and the files `get` needs to trust it.
struct Served {
    url: String,
    /// Ends with the request head the server saw.
    server: Task<String>,
    files: PkiFiles,
    _dir: TempDir,
}

/// Serves one connection: reads the request head, writes `response`, ends as `end`.
fn serve_once(response: Vec<u8>, end: End) -> Served {
    serve_gated(response, None, Vec::new(), end)
}

/// As [`serve_once`], writing `first`, then (once `gate` fires, or its sender is gone)
/// `rest`.
fn serve_gated(first: Vec<u8>, gate: Option<Receiver<()>>, rest: Vec<u8>, end: End) -> Served {
    let dir = TempDir::new("get-client");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let config = Arc::new(pki.server_config(&CertOptions {
        alpn: vec![b"http/1.1".to_vec()],
        ..CertOptions::default()
    }));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}/file",
        listener.local_addr().unwrap().port()
    );
    let task = spawn_task("scripted server", move || {
        let (sock, _) = listener.accept().unwrap();
        let options = Options {
            handshake_timeout: Some(LIMIT),
            read_timeout: Some(LIMIT),
            write_timeout: Some(LIMIT),
            ..Options::default()
        };
        let mut tls = blocking::accept(config, sock, options).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(tls.read(&mut byte).unwrap(), 1, "request head");
            head.push(byte[0]);
        }
        tls.write_all(&first).unwrap();
        tls.flush().unwrap();
        if let Some(gate) = gate {
            let _ = gate.recv();
        }
        tls.write_all(&rest).unwrap();
        tls.flush().unwrap();
        match end {
            End::Clean => {
                tls.shutdown().unwrap();
                // Until the client's close_notify (Ok(0)).
                let mut rest = Vec::new();
                tls.read_to_end(&mut rest).unwrap();
            }
            End::Truncate => {
                let (sock, _) = tls.into_inner();
                sock.shutdown(Shutdown::Both).unwrap();
            }
        }
        String::from_utf8(head).unwrap()
    });
    Served {
        url,
        server: task,
        files,
        _dir: dir,
    }
}

/// Runs `tlsflow get` with `extra` flags against `served`.
fn get(served: &Served, extra: &[&str]) -> Finished {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsflow"));
    cmd.arg("get")
        .args(extra)
        .arg("--cacert")
        .arg(&served.files.ca)
        .arg(&served.url);
    run("tlsflow get", &mut cmd, LIMIT)
}

const BODY: usize = 100_000;

#[test]
fn content_length_body_cut_short_is_an_error() {
    let mut response = format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY}\r\n\r\n").into_bytes();
    response.extend(pattern(BODY / 2));
    let served = serve_once(response, End::Truncate);
    let done = get(&served, &["--sha256"]);
    let head = served.server.join(LIMIT);
    assert!(head.starts_with("GET /file HTTP/1.1\r\n"), "{head}");
    assert!(!done.status.success(), "a truncated body must fail");
    assert!(done.stdout.is_empty(), "no digest of a partial body");
    assert!(
        done.stderr.contains("body failed after") && done.stderr.contains("truncat"),
        "{}",
        done.stderr
    );
}

#[test]
fn body_without_length_ended_by_tcp_close_is_an_error() {
    let mut response = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
    response.extend(pattern(BODY));
    let served = serve_once(response, End::Truncate);
    let done = get(&served, &["--sha256"]);
    served.server.join(LIMIT);
    assert!(
        !done.status.success(),
        "EOF without close_notify is truncation"
    );
    assert!(done.stderr.contains("truncat"), "{}", done.stderr);
}

#[test]
fn body_without_length_ended_by_close_notify_is_complete() {
    let mut response = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
    response.extend(pattern(BODY));
    let served = serve_once(response, End::Clean);
    let done = get(&served, &["--sha256", "-v"]);
    let head = served.server.join(LIMIT);
    assert!(
        head.to_ascii_lowercase().contains("connection: close\r\n"),
        "{head}"
    );
    done.assert_success("tlsflow get");
    assert_eq!(
        done.stdout_text(),
        format!("{}  {BODY}\n", hex(&sha256(&pattern(BODY)))),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.lines().any(|l| l == "< HTTP/1.1 200"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains("did not close cleanly"),
        "{}",
        done.stderr
    );
}

#[test]
fn complete_body_then_tcp_close_is_only_a_note() {
    let mut response = format!("HTTP/1.1 200 OK\r\ncontent-length: {BODY}\r\n\r\n").into_bytes();
    response.extend(pattern(BODY));
    let served = serve_once(response, End::Truncate);
    let done = get(&served, &["--sha256", "-v"]);
    served.server.join(LIMIT);
    done.assert_success("tlsflow get");
    assert_eq!(
        done.stdout_text(),
        format!("{}  {BODY}\n", hex(&sha256(&pattern(BODY))))
    );
    assert!(
        done.stderr
            .contains("body complete, but the server did not close cleanly"),
        "{}",
        done.stderr
    );
}

#[test]
fn non_2xx_status_fails_after_the_body() {
    let response = b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found".to_vec();
    let served = serve_once(response, End::Clean);
    let out = TempDir::new("get-client-out");
    let path = out.join("body");
    let done = get(&served, &["-s", "-o", path.to_str().unwrap()]);
    served.server.join(LIMIT);
    assert!(!done.status.success());
    assert!(
        done.stderr.contains("server answered HTTP 404"),
        "{}",
        done.stderr
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"not found",
        "-o has the body"
    );
}

#[test]
fn help_lists_every_flag() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsflow"));
    cmd.args(["get", "--help"]);
    let done = run("tlsflow get --help", &mut cmd, Duration::from_secs(20));
    done.assert_success("tlsflow get --help");
    let help = done.stdout_text();
    for flag in [
        "--verbose",
        "--output",
        "--resume",
        "--sha256",
        "--silent",
        "--backend",
        "--cacert",
        "--alpn",
        "--tls12",
        "--tls13",
    ] {
        assert!(help.contains(flag), "no {flag} in:\n{help}");
    }
}

/// `tlsflow get -o /dev/null` under `script` (a pseudo-terminal): while the server holds
/// back the second half of a 4 MiB body, the terminal shows the bar with its size; with
/// `-s` nothing but the session itself reaches the terminal.
#[test]
fn progress_bar_on_a_terminal_for_a_long_body_and_none_with_silent() {
    const LONG: usize = 4 << 20;
    let script = require("script");
    for silent in [false, true] {
        let (go, gate) = mpsc::channel();
        let body = pattern(LONG);
        let mut first = format!("HTTP/1.1 200 OK\r\ncontent-length: {LONG}\r\n\r\n").into_bytes();
        first.extend_from_slice(&body[..LONG / 2]);
        let served = serve_gated(first, Some(gate), body[LONG / 2..].to_vec(), End::Clean);
        let command = format!(
            "'{}' get {} --cacert '{}' -o /dev/null '{}'",
            env!("CARGO_BIN_EXE_tlsflow"),
            if silent { "-s" } else { "" },
            served.files.ca.display(),
            served.url
        );
        let mut cmd = Command::new(&script);
        cmd.args(["-qfec", &command, "/dev/null"]);
        let (mut peer, out) = Peer::spawn_raw("script -c 'tlsflow get'", &mut cmd);
        let bar = |b: &[u8]| {
            let text = String::from_utf8_lossy(b);
            (text.contains("% ") && text.contains(" MiB/4.00 MiB")).then_some(())
        };
        if !silent {
            out.wait_until("a progress bar", LIMIT, bar);
        }
        go.send(()).unwrap();
        let status = peer.wait_exit(LIMIT);
        out.wait_eof(LIMIT);
        served.server.join(LIMIT);
        let terminal = out.with(|b| String::from_utf8_lossy(b).into_owned());
        assert!(status.success(), "{status}:\n{terminal}\n{}", peer.output());
        if silent {
            assert!(bar(terminal.as_bytes()).is_none(), "-s drew:\n{terminal}");
            assert!(!terminal.contains('%'), "-s drew:\n{terminal}");
        }
    }
}
