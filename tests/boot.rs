//! The bare-metal unikernel (unikernel/boot) booted under QEMU (TCG) by `scripts/boot`,
//! reached through QEMU's user network on 127.0.0.1.
//!
//! - Without a certificate the image says so on serial and exits with status 35.
//! - One guest with scripts/boot's own throwaway PKI: curl fetches 4 MiB over TLS 1.3 and
//!   over TLS 1.2 (SHA-256 checked), `openssl s_client` completes a handshake and then
//!   resumes it, `gnutls-cli` completes a handshake and fetches, 8 curls download at once,
//!   and one curl sends 100 requests on one kept-alive connection.
//! - One guest with a certificate the test makes (`--cert/--key`): 1,000 sequential TLS
//!   connections of the test's own, with the heap's high-water mark (reported over serial
//!   every 100 connections) flat after the first hundred; then bad input (not TLS at all,
//!   malformed HTTP, a reset mid-transfer, a peer that stops reading, whose buffers stay
//!   bounded while others are served) and the guest keeps serving.
//!
//! Every guest ends by SIGTERM to its PID (scripts/boot *is* QEMU by then); a panic would
//! print `PANIC` and exit with status 39, which every test checks never happened. One
//! guest runs at a time (TCG is CPU-bound). Needs `qemu-system-x86_64` (scripts/test
//! installs it) and fails without it.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use support::peer::{require, Peer};
use support::{free_port, hex, log_field, run, sha256, write_pki, TempDir, LIMIT};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::blocking::{self, TlsStream};

/// The bulk transfer size.
const BULK: usize = 4 * 1024 * 1024;
/// Booting, including building the image when scripts/test has not built it yet.
const BOOT_LIMIT: Duration = Duration::from_secs(300);
/// QEMU's exit status when the guest panics (`2 * 0x13 + 1`).
const PANIC_STATUS: i32 = 39;

/// One guest at a time.
static ONE_GUEST: Mutex<()> = Mutex::new(());

fn scripts_boot() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/boot")
}

/// A guest booted by scripts/boot.
struct Guest {
    peer: Peer,
    port: u16,
    ca: PathBuf,
    _dir: TempDir,
    _one: MutexGuard<'static, ()>,
}

impl Guest {
    /// Boots a guest (`extra`: more scripts/boot arguments) and waits until it listens and
    /// scripts/boot has written the CA (its own throwaway one, or `ca`).
    fn boot(label: &str, extra: &[&str], ca: Option<PathBuf>) -> Guest {
        require("qemu-system-x86_64");
        let one = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new(label);
        let port = free_port();
        let ca_out = dir.join("ca-out.pem");
        let mut cmd = Command::new(scripts_boot());
        cmd.args(["--port", &port.to_string(), "--ca-out"])
            .arg(&ca_out)
            .args(extra);
        let (peer, line) = Peer::start(
            "scripts/boot",
            &mut cmd,
            |l| l.starts_with("scripts/boot: guest listening"),
            BOOT_LIMIT,
        );
        assert!(line.contains(&format!("localhost:{port}")), "{line}");
        let ca = match ca {
            Some(ca) => ca,
            None => {
                assert!(ca_out.is_file(), "scripts/boot wrote no CA to --ca-out");
                ca_out
            }
        };
        Guest {
            peer,
            port,
            ca,
            _dir: dir,
            _one: one,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// curl with the guest's CA.
    fn curl(&self) -> Command {
        let mut cmd = Command::new(require("curl"));
        cmd.args(["-sS", "--fail", "--max-time", "60", "--cacert"])
            .arg(&self.ca);
        cmd
    }

    /// The log line of the next connection that ends.
    fn next_connection(&mut self) -> String {
        self.peer.wait_for(|l| l.starts_with("10.0.2.2:"), LIMIT)
    }

    /// The next serial line starting with `prefix`.
    fn line(&mut self, prefix: &str) -> String {
        self.peer.wait_for(|l| l.starts_with(prefix), LIMIT)
    }

    /// SIGTERM to QEMU; checks the guest never panicked.
    fn stop(mut self) {
        let output = self.peer.output();
        assert!(
            !output.contains("PANIC") && !output.contains("panicked"),
            "the guest panicked:\n{output}"
        );
        let status = Command::new("kill")
            .args(["-TERM", &self.peer.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = self.peer.wait_exit(LIMIT);
        assert_ne!(status.code(), Some(PANIC_STATUS), "{}", self.peer.output());
        assert!(
            !self.peer.output().contains("PANIC"),
            "{}",
            self.peer.output()
        );
    }
}

fn pattern_hex(len: usize) -> String {
    hex(&sha256(&support::pattern(len)))
}

/// Runs `cmd` to the end and returns its stdout, failing on a non-zero status.
fn output_of(name: &str, cmd: &mut Command) -> Vec<u8> {
    let done = run(name, cmd, LIMIT);
    done.assert_success(name);
    done.stdout
}

#[test]
fn boot_without_certificate_says_so_and_exits_35() {
    let qemu = require("qemu-system-x86_64");
    let _one = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
    // Building the image (when scripts/test has not) may take a while.
    let done = run(
        "scripts/boot --image",
        Command::new(scripts_boot()).arg("--image"),
        BOOT_LIMIT,
    );
    done.assert_success("scripts/boot --image");
    let image = done.stdout;
    let image = String::from_utf8(image).unwrap().trim().to_string();
    let done = run(
        "qemu",
        Command::new(qemu)
            .args(["-accel", "tcg", "-cpu", "max", "-m", "128M", "-nodefaults"])
            .args(["-display", "none", "-no-reboot", "-serial", "stdio"])
            .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
            .args(["-kernel", &image]),
        LIMIT,
    );
    let serial = done.stdout_text();
    assert!(
        serial.contains("tlsflow-boot: no certificate: pass -fw_cfg name=opt/tlsflow/cert"),
        "{serial}"
    );
    assert_eq!(done.status.code(), Some(35), "{serial}\n{}", done.stderr);
}

#[test]
fn booted_guest_serves_curl_openssl_and_gnutls() {
    let mut guest = Guest::boot("boot-peers", &[], None);
    let digest = pattern_hex(BULK);
    let bulk = guest.url(&format!("/bytes/{BULK}"));

    // curl, TLS 1.3 and TLS 1.2, 4 MiB each, digest checked.
    for (flags, version) in [
        (["--tlsv1.3", "--tls-max", "1.3"], "TLSv1_3"),
        (["--tlsv1.2", "--tls-max", "1.2"], "TLSv1_2"),
    ] {
        let body = output_of("curl", guest.curl().args(flags).arg(&bulk));
        assert_eq!(body.len(), BULK);
        assert_eq!(hex(&sha256(&body)), digest, "{version}");
        let line = guest.next_connection();
        assert_eq!(line.split_whitespace().nth(1), Some(version), "{line}");
        assert!(
            log_field(&line, "out").parse::<usize>().unwrap() > BULK,
            "{line}"
        );
    }

    // openssl s_client: a verified handshake, then a resumed one from its saved session.
    let dir = TempDir::new("boot-openssl");
    let session = dir.join("session.pem");
    let request = "GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
    let connect = format!("127.0.0.1:{}", guest.port);
    for resume in [false, true] {
        let mut cmd = Command::new(require("openssl"));
        cmd.args(["s_client", "-connect", &connect, "-servername", "localhost"])
            .args(["-verify_return_error", "-ign_eof", "-CAfile"])
            .arg(&guest.ca)
            .arg(if resume { "-sess_in" } else { "-sess_out" })
            .arg(&session);
        let (mut peer, out) = Peer::spawn_raw("openssl s_client", &mut cmd);
        peer.stdin().write_all(request.as_bytes()).unwrap();
        peer.close_stdin();
        let status = peer.wait_exit(LIMIT);
        out.wait_eof(LIMIT);
        let text = out.with(|b| String::from_utf8_lossy(b).into_owned());
        assert!(status.success(), "{text}\n{}", peer.output());
        assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
        let reused = if resume { "Reused, " } else { "New, " };
        assert!(text.contains(reused), "resume={resume}: {text}");
        let line = guest.next_connection();
        assert_eq!(log_field(&line, "resumed"), resume.to_string(), "{line}");
    }

    // gnutls-cli: a verified handshake and a 4 MiB fetch, digest checked.
    let mut cmd = Command::new(require("gnutls-cli"));
    cmd.args(["--x509cafile"]).arg(&guest.ca).args([
        "--port",
        &guest.port.to_string(),
        "localhost",
    ]);
    let (mut peer, out) = Peer::spawn_raw("gnutls-cli", &mut cmd);
    let get = format!("GET /bytes/{BULK} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    peer.stdin().write_all(get.as_bytes()).unwrap();
    let got = out.wait_until("the whole response", LIMIT, |bytes: &[u8]| {
        let at = bytes
            .windows(17)
            .position(|w| w == b"HTTP/1.1 200 OK\r\n")?;
        let head = bytes[at..].windows(4).position(|w| w == b"\r\n\r\n")?;
        let body = &bytes[at + head + 4..];
        (body.len() >= BULK).then(|| hex(&sha256(&body[..BULK])))
    });
    assert_eq!(got, digest);
    peer.close_stdin();
    let _ = peer.wait_exit(LIMIT);
    let head = out.with(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned());
    assert!(head.contains("Handshake was completed"), "{head}");
    let line = guest.next_connection();
    assert!(line.contains(" TLSv1_3 "), "{line}");

    // 8 downloads at once (1 MiB each), every digest checked.
    const EACH: usize = 1 << 20;
    let each = guest.url(&format!("/bytes/{EACH}"));
    let children: Vec<(Child, PathBuf)> = (0..8)
        .map(|i| {
            let file = dir.join(&format!("download-{i}"));
            let child = guest
                .curl()
                .arg("-o")
                .arg(&file)
                .arg(&each)
                .stdin(Stdio::null())
                .spawn()
                .expect("curl");
            (child, file)
        })
        .collect();
    let want = pattern_hex(EACH);
    let started = Instant::now();
    for (mut child, file) in children {
        // curl's own --max-time bounds each one.
        let status = child.wait().expect("curl");
        assert!(status.success(), "a concurrent curl failed");
        let body = std::fs::read(&file).unwrap();
        assert_eq!(hex(&sha256(&body)), want);
    }
    assert!(started.elapsed() < LIMIT);
    let mut peers = std::collections::HashSet::new();
    for _ in 0..8 {
        let line = guest.next_connection();
        assert!(
            log_field(&line, "out").parse::<usize>().unwrap() > EACH,
            "{line}"
        );
        peers.insert(line.split_whitespace().next().unwrap().to_string());
    }
    assert_eq!(peers.len(), 8, "eight connections");

    // 100 requests on one kept-alive connection.
    let index = guest.url("/");
    let mut cmd = guest.curl();
    for _ in 0..100 {
        cmd.arg(&index);
    }
    let body = String::from_utf8(output_of("curl x100", &mut cmd)).unwrap();
    assert_eq!(body.matches("tlsflow (boot backend)").count(), 100);
    let line = guest.next_connection();
    assert_eq!(log_field(&line, "requests"), "100", "{line}");

    guest.stop();
}

/// A TLS connection of the test's own to the guest, handshake done.
fn connect(port: u16, config: &Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let options = tls_unix::Options {
        handshake_timeout: Some(LIMIT),
        read_timeout: Some(LIMIT),
        write_timeout: Some(LIMIT),
        ..Default::default()
    };
    let name = ServerName::try_from("localhost").unwrap();
    blocking::connect(config.clone(), name, sock, options).expect("TLS handshake")
}

/// `GET path` on a fresh connection; returns the status and the body.
fn get(port: u16, config: &Arc<rustls::ClientConfig>, path: &str) -> (u16, Vec<u8>) {
    let mut reader = BufReader::new(connect(port, config));
    support::http::write_get(reader.get_mut(), "localhost", path).unwrap();
    let response = support::http::read_response(&mut reader).unwrap();
    let mut body = Vec::new();
    reader
        .read_to_end(&mut body)
        .expect("body until close_notify");
    (response.status, body)
}

/// `(in use, high-water)` from a serial line `heap after N connections: ...`.
fn heap_numbers(line: &str) -> (usize, usize) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |key: &str| -> usize {
        let at = words.iter().position(|w| *w == key).expect(line);
        words[at + 1].parse().expect(line)
    };
    (after("use"), after("high-water"))
}

#[test]
fn booted_guest_stays_flat_over_1000_connections_and_survives_bad_input() {
    let dir = TempDir::new("boot-heap");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let chain = files.server_chain.to_str().unwrap().to_string();
    let key = files.server_key.to_str().unwrap().to_string();
    let mut guest = Guest::boot(
        "boot-heap",
        &["--cert", &chain, "--key", &key],
        Some(files.ca.clone()),
    );
    let config = Arc::new(pki.client_config(&CertOptions::default()));
    let port = guest.port;

    // 1,000 sequential connections, each a full handshake and one request.
    let mut heap = Vec::new();
    for i in 1..=1000 {
        let (status, body) = get(port, &config, "/");
        assert_eq!(status, 200, "connection {i}");
        assert!(String::from_utf8_lossy(&body).contains("tlsflow (boot backend)"));
        if i % 100 == 0 {
            let line = guest.line("tlsflow-boot: heap after ");
            assert!(line.contains(&format!("after {i} connections")), "{line}");
            heap.push(heap_numbers(&line));
        }
    }
    let (in_use_100, peak_100) = heap[0];
    let (in_use_1000, peak_1000) = heap[9];
    assert_eq!(
        peak_1000, peak_100,
        "high-water grew after the first hundred: {heap:?}"
    );
    assert!(
        in_use_1000 <= in_use_100 + 4096,
        "heap in use grew: {heap:?}"
    );

    // Not TLS at all: the guest answers with an alert and closes.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(LIMIT)).unwrap();
    raw.write_all(&[0x47u8; 600]).unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert record: {answer:?}"
    );
    guest.next_connection();

    // Malformed HTTP: 400, then close_notify.
    let mut tls = BufReader::new(connect(port, &config));
    tls.get_mut().write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    let response = support::http::read_response(&mut tls).unwrap();
    assert_eq!(response.status, 400);
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest)
        .expect("close_notify after the 400");
    guest.next_connection();

    // Reset mid-transfer: closing with unread bytes in the receive queue sends RST.
    let mut reset = BufReader::new(connect(port, &config));
    support::http::write_get(reset.get_mut(), "localhost", "/bytes/67108864").unwrap();
    assert_eq!(
        support::http::read_response(&mut reset).unwrap().status,
        200
    );
    reset.read_exact(&mut [0u8; 128 * 1024]).unwrap();
    reset.get_ref().get_ref().peek(&mut [0u8; 1]).unwrap();
    drop(reset);
    guest.next_connection();

    // A peer that stops reading a 64 MiB response: the guest goes on serving 100 more
    // connections meanwhile, its heap bounded (at most 1 MiB over the earlier peak).
    let mut stalled = BufReader::new(connect(port, &config));
    support::http::write_get(stalled.get_mut(), "localhost", "/bytes/67108864").unwrap();
    assert_eq!(
        support::http::read_response(&mut stalled).unwrap().status,
        200
    );
    stalled.read_exact(&mut [0u8; 16 * 1024]).unwrap();
    // 96 connections since the last report, and 4 more make the next one.
    for _ in 0..100 {
        assert_eq!(get(port, &config, "/").0, 200);
    }
    let line = guest.line("tlsflow-boot: heap after ");
    let (in_use, peak) = heap_numbers(&line);
    assert!(
        in_use < peak_1000 + (1 << 20),
        "{line} (earlier peak {peak_1000})"
    );
    assert!(
        peak < peak_1000 + (1 << 20),
        "{line} (earlier peak {peak_1000})"
    );
    stalled
        .get_ref()
        .get_ref()
        .shutdown(Shutdown::Both)
        .unwrap();
    drop(stalled);

    // Still serving, a 4 MiB transfer intact.
    let (status, body) = get(port, &config, &format!("/bytes/{BULK}"));
    assert_eq!(status, 200);
    assert_eq!(hex(&sha256(&body)), pattern_hex(BULK));
    guest.stop();
}
