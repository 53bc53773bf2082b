//! `--backend unikernel` over a TAP device: tlsflow's own smoltcp stack on one side, the
//! host kernel (inside a network namespace the test makes) on the other.
//!
//! Each test makes a namespace `tlsflow-tap-<pid>-<label>` with a TAP device whose host
//! side has the first address of a documentation subnet, starts tlsflow on the device
//! with the second address, and runs the peers inside the namespace: `curl`,
//! `openssl s_client` and `gnutls-cli` fetch 8 MiB from `tlsflow serve --backend
//! unikernel` (TLS 1.2 and 1.3, digest checked), and `tlsflow get --backend unikernel`
//! fetches 8 MiB from `openssl s_server -WWW`. No traffic leaves the namespace; it is
//! removed (with its devices) when the test ends, also when it fails. Needs root, as in CI.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::peer::{require, Peer, RawOutput};
use support::{hex, run, sha256, write_pki, TempDir, BULK, LIMIT};
use tls_test::certs::{KeyKind, Pki};

/// A network namespace with a TAP device `tap` whose host side is `host_cidr`; deleted
/// (with the device) on drop. Declare it before the processes that run in it, so they are
/// killed first.
struct Netns {
    name: String,
    ip: PathBuf,
}

impl Netns {
    fn new(label: &str, tap: &str, host_cidr: &str) -> Netns {
        let ip = require("ip");
        let name = format!("tlsflow-tap-{}-{label}", std::process::id());
        let add = run(
            "ip netns add",
            Command::new(&ip).args(["netns", "add", &name]),
            LIMIT,
        );
        assert!(
            add.status.success(),
            "cannot make the network namespace {name}: {}\nthis test needs root \
             (CAP_SYS_ADMIN and CAP_NET_ADMIN), as in CI",
            add.stderr
        );
        let ns = Netns { name, ip };
        for args in [
            &["link", "set", "lo", "up"][..],
            &["tuntap", "add", "dev", tap, "mode", "tap"],
            &["addr", "add", host_cidr, "dev", tap],
            &["link", "set", tap, "up"],
        ] {
            let what = format!("ip {}", args.join(" "));
            run(&what, ns.exec("ip").args(args), LIMIT).assert_success(&what);
        }
        ns
    }

    /// `program` run inside the namespace (`ip netns exec` execs it: same PID).
    fn exec(&self, program: impl AsRef<Path>) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.name])
            .arg(program.as_ref());
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn tlsflow() -> &'static str {
    env!("CARGO_BIN_EXE_tlsflow")
}

const SERVER: &str = "192.0.2.2";
const PORT: u16 = 8443;

/// The request the command-line peers send.
fn request() -> Vec<u8> {
    format!("GET /bytes/{BULK} HTTP/1.1\r\nhost: {SERVER}\r\nconnection: close\r\n\r\n")
        .into_bytes()
}

/// Waits until `out` holds an HTTP 200 response head and `BULK` body bytes after it and
/// returns the body's SHA-256 in hex.
fn body_digest(out: &RawOutput) -> String {
    out.wait_until(
        "an HTTP 200 response with the whole body",
        LIMIT,
        |bytes: &[u8]| {
            let at = bytes
                .windows(17)
                .position(|w| w == b"HTTP/1.1 200 OK\r\n")?;
            let head = bytes[at..].windows(4).position(|w| w == b"\r\n\r\n")?;
            let body = &bytes[at + head + 4..];
            (body.len() >= BULK).then(|| hex(&sha256(&body[..BULK])))
        },
    )
}

/// Waits for the server's log line of the next connection and checks its version and
/// that the whole body went out.
fn check_log(server: &mut Peer, version: &str) -> String {
    let line = server.wait_for(|l| l.starts_with("192.0.2.1:"), LIMIT);
    assert_eq!(
        line.split_whitespace().nth(1),
        Some(version),
        "version in {line:?}"
    );
    let out: u64 = support::log_field(&line, "out").parse().unwrap();
    assert!(out > BULK as u64, "out= in {line:?}");
    line
}

#[test]
fn unikernel_server_on_tap_serves_curl_openssl_and_gnutls() {
    let dir = TempDir::new("tap-serve");
    let ns = Netns::new("serve", "tap0", "192.0.2.1/24");
    let ca = dir.join("ca.pem");
    let want = hex(&tlsflow::http::pattern_digest(BULK as u64));

    let mut cmd = ns.exec(tlsflow());
    cmd.args([
        "serve",
        "--backend",
        "unikernel",
        "--tap",
        "tap0",
        "--ip",
        "192.0.2.2/24",
        "--name",
        SERVER,
        "--ca-out",
    ])
    .arg(&ca);
    let (mut server, line) = Peer::start(
        "tlsflow serve --backend unikernel",
        &mut cmd,
        |l| l.starts_with("tlsflow: listening on "),
        LIMIT,
    );
    assert!(
        line.starts_with(&format!("tlsflow: listening on {SERVER}:{PORT} (https, ")),
        "{line}"
    );
    let url = format!("https://{SERVER}:{PORT}/bytes/{BULK}");

    // curl, TLS 1.3 and 1.2.
    for (flags, version) in [
        (&["--tlsv1.3"][..], "TLSv1_3"),
        (&["--tlsv1.2", "--tls-max", "1.2"], "TLSv1_2"),
    ] {
        let mut cmd = ns.exec(require("curl"));
        cmd.args(["-sS", "--cacert"]).arg(&ca).args(flags).arg(&url);
        let done = run("curl", &mut cmd, LIMIT);
        done.assert_success("curl");
        assert_eq!(done.stdout.len(), BULK, "curl body length ({version})");
        assert_eq!(hex(&sha256(&done.stdout)), want, "curl body ({version})");
        check_log(&mut server, version);
    }

    // openssl s_client, TLS 1.3 and 1.2: the request on stdin, the response on stdout.
    for (flag, version) in [("-tls1_3", "TLSv1_3"), ("-tls1_2", "TLSv1_2")] {
        let mut cmd = ns.exec(require("openssl"));
        cmd.args(["s_client", "-brief", "-verify_return_error", "-connect"])
            .arg(format!("{SERVER}:{PORT}"))
            .args(["-verify_ip", SERVER, "-CAfile"])
            .arg(&ca)
            .arg(flag);
        let (mut peer, out) = Peer::spawn_raw("openssl s_client", &mut cmd);
        peer.wait_for(|l| l == "CONNECTION ESTABLISHED", LIMIT);
        peer.wait_for(|l| l == "Verification: OK", LIMIT);
        peer.stdin().write_all(&request()).unwrap();
        peer.stdin().flush().unwrap();
        assert_eq!(body_digest(&out), want, "s_client body ({version})");
        check_log(&mut server, version);
    }

    // gnutls-cli, TLS 1.3 and 1.2 (it checks the IP address against the certificate).
    for (priority, version) in [
        ("NORMAL:-VERS-ALL:+VERS-TLS1.3", "TLSv1_3"),
        ("NORMAL:-VERS-ALL:+VERS-TLS1.2", "TLSv1_2"),
    ] {
        let mut cmd = ns.exec(require("gnutls-cli"));
        cmd.arg("--x509cafile")
            .arg(&ca)
            .arg(format!("--priority={priority}"))
            .args(["-p", &PORT.to_string(), SERVER]);
        let (mut peer, out) = Peer::spawn_raw("gnutls-cli", &mut cmd);
        out.wait_until("gnutls-cli's input mode", LIMIT, |b: &[u8]| {
            b.windows(23)
                .any(|w| w == b"- Simple Client Mode:\n\n")
                .then_some(())
        });
        peer.stdin().write_all(&request()).unwrap();
        peer.stdin().flush().unwrap();
        assert_eq!(body_digest(&out), want, "gnutls-cli body ({version})");
        check_log(&mut server, version);
    }
    drop(server);
    drop(ns);
}

#[test]
fn unikernel_client_on_tap_fetches_from_openssl_s_server() {
    let dir = TempDir::new("tap-get");
    let ns = Netns::new("get", "tap1", "198.51.100.1/24");
    let pki = Pki::new(KeyKind::EcdsaP256, &["198.51.100.1"]);
    let files = write_pki(&dir, &pki);
    let www = TempDir::new("tap-www");
    www.write("bulk.bin", support::pattern(BULK));
    let want = format!(
        "{}  {BULK}",
        hex(&tlsflow::http::pattern_digest(BULK as u64))
    );

    for (flag, version) in [("--tls13", "TLSv1_3"), ("--tls12", "TLSv1_2")] {
        let mut cmd = ns.exec(require("openssl"));
        cmd.current_dir(www.path())
            .args([
                "s_server", "-WWW", "-naccept", "1", "-accept", "4433", "-cert",
            ])
            .arg(&files.server_cert)
            .arg("-key")
            .arg(&files.server_key);
        let (mut server, _) =
            Peer::start("openssl s_server -WWW", &mut cmd, |l| l == "ACCEPT", LIMIT);

        let mut cmd = ns.exec(tlsflow());
        cmd.args([
            "get",
            "--backend",
            "unikernel",
            "--tap",
            "tap1",
            "--ip",
            "198.51.100.2/24",
            "--sha256",
            "-v",
            flag,
            "--cacert",
        ])
        .arg(&files.ca)
        .arg("https://198.51.100.1:4433/bulk.bin");
        let done = run("tlsflow get --backend unikernel", &mut cmd, LIMIT);
        done.assert_success("tlsflow get --backend unikernel");
        assert_eq!(done.stdout_text().trim(), want, "digest ({version})");
        assert!(
            done.stderr.contains(&format!("* version: {version}")),
            "{}",
            done.stderr
        );
        let status = server.wait_exit(LIMIT);
        assert!(status.success(), "s_server: {status}\n{}", server.output());
    }
    drop(ns);
}
