//! Interop with curl (OpenSSL) and wget (GnuTLS) as clients of `tlsflow serve`: 8 MiB
//! downloads of `/bytes/N` and 8 MiB uploads (POST answers the body's digest), over TLS 1.3
//! and TLS 1.2, with how each client ends its connection taken from the server's log.

mod support;

use std::process::Command;

use support::peer::require;
use support::*;

fn pattern_hex() -> String {
    hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64))
}

/// `curl` with our CA, failing on HTTP errors, with `-v` (the TLS summary on stderr);
/// no `.curlrc` (`-q`) and no proxy.
fn curl(server: &OurServer, extra: &[&str]) -> Command {
    let mut cmd = Command::new(require("curl"));
    cmd.args([
        "-q",
        "--noproxy",
        "*",
        "-sS",
        "-v",
        "--fail",
        "--http1.1",
        "--cacert",
    ])
    .arg(&server.ca)
    .args(extra);
    cmd
}

/// Downloads and uploads 8 MiB with curl at one TLS version.
fn curl_both_ways(version_args: &[&str], curl_says: &str, version: &str) {
    let mut server = OurServer::start(&["--alpn", "http/1.1"], None);

    let mut cmd = curl(&server, version_args);
    cmd.arg(server.url(&format!("/bytes/{BULK}")));
    let done = run("curl", &mut cmd, LIMIT);
    done.assert_success("curl download");
    assert_eq!(done.stdout.len(), BULK, "download length");
    assert_eq!(hex(&sha256(&done.stdout)), pattern_hex(), "download digest");
    assert!(
        done.stderr
            .contains(&format!("SSL connection using {curl_says}")),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("ALPN: server accepted http/1.1"),
        "{}",
        done.stderr
    );
    let log = server.next_connection();
    // curl ends its connection with close_notify when it exits.
    assert_log(
        &log,
        version,
        "http/1.1",
        false,
        None,
        None,
        "close_notify (peer first)",
    );
    let out: usize = log_field(&log, "out").parse().unwrap();
    assert!(out > BULK, "{log}");

    let dir = TempDir::new("curl-upload");
    let body = hex_lines(BULK, 5);
    let file = dir.write("upload.txt", &body);
    let mut cmd = curl(&server, version_args);
    cmd.arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .args(["-H", "content-type: application/octet-stream"])
        .arg(server.url("/upload"));
    let done = run("curl", &mut cmd, LIMIT);
    done.assert_success("curl upload");
    assert_eq!(
        done.stdout_text(),
        format!("{}  {BULK}\n", hex(&sha256(&body))),
        "the server's digest of the upload"
    );
    let log = server.next_connection();
    assert_log(
        &log,
        version,
        "http/1.1",
        false,
        None,
        None,
        "close_notify (peer first)",
    );
    let bytes_in: usize = log_field(&log, "in").parse().unwrap();
    assert!(bytes_in > BULK, "{log}");
}

#[test]
fn curl_tls13_8mib_each_way() {
    curl_both_ways(&["--tlsv1.3"], "TLSv1.3", "TLSv1_3");
}

#[test]
fn curl_tls12_8mib_each_way() {
    curl_both_ways(&["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2", "TLSv1_2");
}

#[test]
fn curl_refuses_our_server_without_the_ca() {
    let mut server = OurServer::start(&[], None);
    let mut cmd = Command::new(require("curl"));
    cmd.args(["-q", "--noproxy", "*", "-sS", "--fail"])
        .arg(server.url("/"));
    // The system's CAs only: our throwaway CA is unknown.
    let done = run("curl", &mut cmd, LIMIT);
    assert_eq!(done.status.code(), Some(60), "curl: {}", done.stderr);
    let log = server.next_connection();
    assert!(log.contains(" handshake failed: "), "{log}");
}

/// wget with our CA, quiet, body to stdout; no `.wgetrc` and no proxy.
fn wget(server: &OurServer) -> Command {
    let mut cmd = Command::new(require("wget"));
    cmd.args([
        "--no-config",
        "--no-proxy",
        "-q",
        "-O",
        "-",
        "--tries=1",
        "--timeout=30",
    ])
    .arg(format!("--ca-certificate={}", server.ca.display()));
    cmd
}

#[test]
fn wget_8mib_each_way() {
    let mut server = OurServer::start(&[], None);

    let mut cmd = wget(&server);
    cmd.arg(server.url(&format!("/bytes/{BULK}")));
    let done = run("wget", &mut cmd, LIMIT);
    done.assert_success("wget download");
    assert_eq!(done.stdout.len(), BULK, "download length");
    assert_eq!(hex(&sha256(&done.stdout)), pattern_hex(), "download digest");
    let log = server.next_connection();
    // wget (GnuTLS) closes its socket without close_notify: we must say truncated.
    assert_wget_truncated(&log);

    let dir = TempDir::new("wget-upload");
    let body = hex_lines(BULK, 6);
    let file = dir.write("upload.txt", &body);
    let mut cmd = wget(&server);
    cmd.arg(format!("--post-file={}", file.display()))
        .arg(server.url("/upload"));
    let done = run("wget", &mut cmd, LIMIT);
    done.assert_success("wget upload");
    assert_eq!(
        done.stdout_text(),
        format!("{}  {BULK}\n", hex(&sha256(&body))),
        "the server's digest of the upload"
    );
    let log = server.next_connection();
    assert_wget_truncated(&log);
    let bytes_in: usize = log_field(&log, "in").parse().unwrap();
    assert!(bytes_in > BULK, "{log}");
}

/// wget's connections end without close_notify. `tlsflow serve` reports that as truncation
/// in one wording, whether it shows while closing or while waiting for the next keep-alive
/// request (which is where wget leaves).
fn assert_wget_truncated(log: &str) {
    let words: Vec<&str> = log.split_whitespace().collect();
    assert_eq!(words.get(1).copied(), Some("TLSv1_3"), "{log}");
    assert_eq!(log_field(log, "resumed"), "false", "{log}");
    assert_eq!(
        log_field(log, "close"),
        "peer closed without close_notify (truncated)",
        "wget's close should be reported as truncation: {log}"
    );
}
