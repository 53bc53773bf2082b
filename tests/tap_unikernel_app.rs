//! `--backend unikernel` on a TAP device, the rest of the application: the client
//! against a content-length server (tlsflow's Unix backend on the namespace's side) with
//! a resumed second connection on the same stack, and the server's `--echo` mode under
//! `openssl s_client`. As in tests/tap_unikernel.rs, everything runs in a network
//! namespace the test makes and removes.

mod support;

use support::netns::Netns;
use support::peer::{require, Peer};
use support::{hex, log_field, run, write_pki, TempDir, LIMIT};
use tls_test::certs::{KeyKind, Pki};

fn tlsflow() -> &'static str {
    env!("CARGO_BIN_EXE_tlsflow")
}

#[test]
fn unikernel_client_on_tap_fetches_content_length_bodies_and_resumes() {
    const LEN: u64 = 3 * 1024 * 1024 + 17;
    let dir = TempDir::new("tap-client-cl");
    let ns = Netns::with_tap("clientcl", "tap6", "192.0.2.1/24");
    let pki = Pki::new(KeyKind::EcdsaP256, &["192.0.2.1"]);
    let files = write_pki(&dir, &pki);
    // The Unix backend on the namespace's side of the TAP device: content-length bodies.
    let mut cmd = ns.exec(tlsflow());
    cmd.args(["serve", "--addr", "192.0.2.1:8443", "--cert"])
        .arg(&files.server_chain)
        .arg("--key")
        .arg(&files.server_key);
    let (mut server, _) = Peer::start(
        "tlsflow serve (unix)",
        &mut cmd,
        |l| l.starts_with("tlsflow: listening on "),
        LIMIT,
    );
    let mut cmd = ns.exec(tlsflow());
    cmd.args(["get", "--backend", "unikernel", "--tap", "tap6"])
        .args(["--ip", "192.0.2.2/24", "--sha256", "--resume", "1", "-v"])
        .arg("--cacert")
        .arg(&files.ca)
        .arg(format!("https://192.0.2.1:8443/bytes/{LEN}"));
    let done = run(
        "tlsflow get --backend unikernel --resume 1",
        &mut cmd,
        LIMIT,
    );
    done.assert_success("tlsflow get --backend unikernel --resume 1");
    let want = format!(
        "{}  {LEN}",
        hex(&tlsflow_unikernel::http::pattern_digest(LEN))
    );
    assert_eq!(done.stdout_text().trim(), want);
    assert!(done.stderr.contains("< HTTP 200"), "{}", done.stderr);
    assert!(
        done.stderr.contains("connection 1: full handshake"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("connection 2: resumed"),
        "{}",
        done.stderr
    );
    for _ in 0..2 {
        let line = server.wait_for(|l| l.starts_with("192.0.2.2:"), LIMIT);
        assert!(
            log_field(&line, "close").starts_with("close_notify"),
            "{line}"
        );
    }
    drop(server);
    drop(ns);
}

#[test]
fn unikernel_server_on_tap_echoes_for_openssl_s_client() {
    let dir = TempDir::new("tap-echo");
    let ns = Netns::with_tap("echo", "tap7", "192.0.2.1/24");
    let pki = Pki::new(KeyKind::EcdsaP256, &["192.0.2.2"]);
    let files = write_pki(&dir, &pki);
    let mut cmd = ns.exec(tlsflow());
    cmd.args(["serve", "--backend", "unikernel", "--tap", "tap7"])
        .args(["--ip", "192.0.2.2/24", "--echo", "--cert"])
        .arg(&files.server_chain)
        .arg("--key")
        .arg(&files.server_key);
    let (mut server, line) = Peer::start(
        "tlsflow serve --backend unikernel --echo",
        &mut cmd,
        |l| l.starts_with("tlsflow: listening on "),
        LIMIT,
    );
    assert!(line.contains("(echo, "), "{line}");
    let mut cmd = ns.exec(require("openssl"));
    cmd.args(["s_client", "-brief", "-verify_return_error"])
        .args([
            "-connect",
            "192.0.2.2:8443",
            "-verify_ip",
            "192.0.2.2",
            "-CAfile",
        ])
        .arg(&files.ca);
    let (mut client, out) = Peer::spawn_raw("openssl s_client", &mut cmd);
    client.wait_for(|l| l == "Verification: OK", LIMIT);
    let line = b"hello from the namespace\n";
    std::io::Write::write_all(client.stdin(), line).unwrap();
    std::io::Write::flush(client.stdin()).unwrap();
    out.wait_until("the echo", LIMIT, |b: &[u8]| {
        b.windows(line.len()).any(|w| w == line).then_some(())
    });
    // End of input: s_client sends close_notify and exits.
    client.close_stdin();
    let status = client.wait_exit(LIMIT);
    assert!(status.success(), "s_client: {status}\n{}", client.output());
    let log = server.wait_for(|l| l.starts_with("192.0.2.1:"), LIMIT);
    let n = line.len().to_string();
    assert_eq!(log_field(&log, "in"), n, "{log}");
    assert_eq!(log_field(&log, "out"), n, "{log}");
    assert_eq!(
        log_field(&log, "close"),
        "close_notify (peer first)",
        "{log}"
    );
    drop(server);
    drop(ns);
}
