//! `--backend unikernel` over a TAP device: tlsflow's own smoltcp stack on one side, the
//! host kernel (inside a network namespace the test makes) on the other.
//!
//! Each test makes a namespace `tlsflow-tap-<pid>-<label>` ([`Netns`]) with a TAP device
//! whose host side has the first address of a documentation subnet, starts tlsflow on the
//! device with the second address, and runs the peers inside the namespace: `curl`,
//! `openssl s_client` and `gnutls-cli` fetch 8 MiB from `tlsflow serve --backend
//! unikernel` (TLS 1.2 and 1.3, digest checked); many clients are served at once (one held
//! mid-response, one idle, one not TLS, one reset, six curls); `--gateway` reaches a peer
//! off the subnet; and `tlsflow get --backend unikernel` fetches 8 MiB from `openssl
//! s_server -WWW`. No traffic leaves the namespace; it is removed (with its devices) when
//! the test ends, also when it fails. Needs root, as in CI.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use support::netns::{Netns, TAP_PORT as PORT, TAP_SERVER as SERVER};
use support::peer::{require, Peer, RawOutput};
use support::{hex, run, sha256, write_pki, PkiFiles, TempDir, BULK, LIMIT};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::blocking::{self, TlsStream};

fn tlsflow() -> &'static str {
    env!("CARGO_BIN_EXE_tlsflow")
}

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
    let ns = Netns::with_tap("serve", "tap0", "192.0.2.1/24");
    let ca = dir.join("ca.pem");
    let want = hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64));

    let ca_arg = ca.to_str().expect("a UTF-8 temporary path");
    let mut server = ns.serve_unikernel("tap0", &["--name", SERVER, "--ca-out", ca_arg]);
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
    let ns = Netns::with_tap("get", "tap1", "198.51.100.1/24");
    let pki = Pki::new(KeyKind::EcdsaP256, &["198.51.100.1"]);
    let files = write_pki(&dir, &pki);
    let www = TempDir::new("tap-www");
    www.write("bulk.bin", support::pattern(BULK));
    let want = format!(
        "{}  {BULK}",
        hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64))
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

/// `--cert` and `--key` for the server's certificate from `files`.
fn cert_args(files: &PkiFiles) -> [String; 4] {
    [
        "--cert".into(),
        files.server_chain.display().to_string(),
        "--key".into(),
        files.server_key.display().to_string(),
    ]
}

/// Stops `server` with Ctrl-C (SIGINT, by PID) and waits for it to say so and exit
/// successfully.
fn interrupt(server: &mut Peer) {
    let pid = server.pid().to_string();
    run(
        "kill -INT",
        Command::new("kill").args(["-INT", &pid]),
        LIMIT,
    )
    .assert_success("kill");
    server.wait_for(|l| l == "tlsflow: stopped", LIMIT);
    let status = server.wait_exit(LIMIT);
    assert!(
        status.success(),
        "after Ctrl-C: {status}\n{}",
        server.output()
    );
}

/// The server's address, for connections the test makes itself.
fn server_addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 2], PORT))
}

/// A TLS connection of the test's own (tls-unix, blocking) to the server, from inside the
/// namespace, handshake done.
fn own_client(ns: &Netns, config: &Arc<rustls::ClientConfig>) -> (TlsStream<TcpStream>, u16) {
    let sock = ns.connect(server_addr());
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

/// Sends `GET /bytes/{len}` and reads the response head (200, content-length `len`).
fn get_bytes(tls: TlsStream<TcpStream>, len: usize) -> BufReader<TlsStream<TcpStream>> {
    let mut reader = BufReader::new(tls);
    support::http::write_get(reader.get_mut(), SERVER, &format!("/bytes/{len}")).unwrap();
    let response = support::http::read_response(&mut reader).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.content_length, Some(len as u64));
    reader
}

/// The log line of the connection from the namespace's `port`, and the lines of other
/// connections that ended before it.
fn log_of(server: &mut Peer, port: u16) -> String {
    let prefix = format!("192.0.2.1:{port} ");
    server.wait_for(|l| l.starts_with(&prefix), LIMIT)
}

/// Several clients at once, all served by the one poll loop: one holds its connection
/// open mid-response, one has connected and sent nothing, one is not TLS at all and one
/// resets mid-response, while six curl processes each fetch 8 MiB at the same time. The
/// held connection's response can only complete after the curls' (the test does not read
/// it until then), so the connections overlapped, and none held up another. Then Ctrl-C
/// ends the server cleanly with a connection still open.
#[test]
fn unikernel_server_on_tap_serves_many_connections_at_once() {
    const CURLS: usize = 6;
    /// What the held connection reads before it stops reading: with the rest of the 8 MiB
    /// its kernel buffers (at most 6 MiB here) and the server's ring cannot hold, the
    /// server cannot finish that response while the test holds it.
    const HELD_AT: usize = 256 * 1024;
    let dir = TempDir::new("tap-many");
    let ns = Netns::with_tap("many", "tap2", "192.0.2.1/24");
    let pki = Pki::new(KeyKind::EcdsaP256, &[SERVER]);
    let files = write_pki(&dir, &pki);
    let config = Arc::new(pki.client_config(&CertOptions::default()));
    let want = hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64));
    let cert = cert_args(&files);
    let mut server = ns.serve_unikernel("tap2", &cert.each_ref().map(String::as_str));
    let url = format!("https://{SERVER}:{PORT}/bytes/{BULK}");

    // A: asks for 8 MiB and stops reading after HELD_AT.
    let (held, held_port) = own_client(&ns, &config);
    let mut held = get_bytes(held, BULK);
    let mut body = vec![0u8; BULK];
    held.read_exact(&mut body[..HELD_AT]).unwrap();

    // B: openssl s_client, connected and verified, sends nothing yet.
    let mut cmd = ns.exec(require("openssl"));
    cmd.args(["s_client", "-brief", "-verify_return_error", "-connect"])
        .arg(format!("{SERVER}:{PORT}"))
        .args(["-verify_ip", SERVER, "-CAfile"])
        .arg(&files.ca);
    let (mut idle, idle_out) = Peer::spawn_raw("openssl s_client (idle)", &mut cmd);
    idle.wait_for(|l| l == "Verification: OK", LIMIT);

    // Not TLS: the server answers with an alert and closes; logged, nothing else hurt.
    let mut raw = ns.connect(server_addr());
    let raw_port = raw.local_addr().unwrap().port();
    raw.set_read_timeout(Some(LIMIT)).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nhost: 192.0.2.2\r\n\r\n")
        .unwrap();
    let mut alert = Vec::new();
    raw.read_to_end(&mut alert).unwrap();
    assert_eq!(alert.first(), Some(&0x15), "a TLS alert record: {alert:?}");
    drop(raw);
    let line = log_of(&mut server, raw_port);
    assert!(line.contains(" handshake failed: "), "{line}");

    // C: resets mid-response (closing a socket with unread data sends RST).
    let (reset, reset_port) = own_client(&ns, &config);
    let mut reset = get_bytes(reset, BULK);
    reset.read_exact(&mut [0u8; 64 * 1024]).unwrap();
    // Closing with bytes in the kernel's receive queue makes the close an RST (without
    // them, a FIN: a truncation, not a reset).
    reset.get_ref().get_ref().peek(&mut [0u8; 1]).unwrap();
    drop(reset);
    let line = log_of(&mut server, reset_port);
    assert_eq!(
        support::log_field(&line, "close"),
        "error: tcp connection reset or timed out",
        "{line}"
    );

    // Six curls at once, each 8 MiB, while A and B stay open.
    let curls: Vec<(Peer, RawOutput)> = (0..CURLS)
        .map(|i| {
            let mut cmd = ns.exec(require("curl"));
            cmd.args(["-sS", "--cacert"]).arg(&files.ca).arg(&url);
            Peer::spawn_raw(&format!("curl {i}"), &mut cmd)
        })
        .collect();
    for (i, (mut curl, out)) in curls.into_iter().enumerate() {
        curl.close_stdin();
        let status = curl.wait_exit(LIMIT);
        assert!(status.success(), "curl {i}: {status}\n{}", curl.output());
        out.wait_eof(LIMIT);
        let (len, digest) = out.with(|b| (b.len(), hex(&sha256(b))));
        assert_eq!(len, BULK, "curl {i} body length");
        assert_eq!(digest, want, "curl {i} body");
    }
    let mut curl_ports = Vec::new();
    for _ in 0..CURLS {
        let line = server.wait_for(|l| l.starts_with("192.0.2.1:"), LIMIT);
        let out: u64 = support::log_field(&line, "out").parse().unwrap();
        assert!(out > BULK as u64, "a curl's whole response in {line:?}");
        curl_ports.push(line.split_whitespace().next().unwrap().to_string());
    }
    assert!(
        !curl_ports.contains(&format!("192.0.2.1:{held_port}")),
        "the held connection ended before the curls: {curl_ports:?}"
    );

    // A reads the rest: its response was in flight all along.
    held.read_exact(&mut body[HELD_AT..]).unwrap();
    assert_eq!(hex(&sha256(&body)), want, "held connection's body");
    assert_eq!(
        held.read(&mut [0u8; 1]).unwrap(),
        0,
        "close_notify after the body"
    );
    held.get_mut().shutdown().unwrap();
    let line = log_of(&mut server, held_port);
    support::assert_log(
        &line,
        "TLSv1_3",
        "-",
        false,
        None,
        None,
        "close_notify (both)",
    );
    assert!(support::log_field(&line, "out").parse::<u64>().unwrap() > BULK as u64);

    // B finally sends its request and gets the whole answer.
    idle.stdin().write_all(&request()).unwrap();
    idle.stdin().flush().unwrap();
    assert_eq!(body_digest(&idle_out), want, "s_client body");
    check_log(&mut server, "TLSv1_3");

    // Ctrl-C with a connection open: it is reset and logged, and the server exits.
    let (mut open, open_port) = own_client(&ns, &config);
    support::http::write_get(&mut open, SERVER, "/").unwrap();
    let mut page = BufReader::new(&mut open);
    assert_eq!(support::http::read_response(&mut page).unwrap().status, 200);
    drop(page);
    interrupt(&mut server);
    let output = server.output();
    let line = output
        .lines()
        .find(|l| l.starts_with(&format!("192.0.2.1:{open_port} ")))
        .unwrap_or_else(|| panic!("no log line for the open connection:\n{output}"));
    assert_eq!(
        support::log_field(line, "close"),
        "error: stopped",
        "{line}"
    );
    drop(idle);
    drop(ns);
}

/// `--gateway`: the stack reaches a peer off its subnet (198.51.100.1, on the
/// namespace's `lo`) only through the gateway (the TAP's host side). Without it the
/// server cannot answer such a client and the client refuses at once; with it both
/// fetch 8 MiB.
#[test]
fn unikernel_stack_on_tap_reaches_off_subnet_peers_through_gateway() {
    const FAR: &str = "198.51.100.1";
    let dir = TempDir::new("tap-gateway");
    let ns = Netns::with_tap("gateway", "tap3", "192.0.2.1/24");
    ns.ip(&["addr", "add", &format!("{FAR}/32"), "dev", "lo"]);
    // smoltcp answers ARP requests only from its own subnet. For a packet from FAR the
    // kernel would ask from FAR; a router forwarding others' packets asks from its own
    // address on the subnet, and `arp_announce=2` makes this kernel do so too.
    let sysctl = "net.ipv4.conf.tap3.arp_announce=2";
    run(
        "sysctl",
        ns.exec(require("sysctl")).args(["-w", sysctl]),
        LIMIT,
    )
    .assert_success(sysctl);
    let pki = Pki::new(KeyKind::EcdsaP256, &[SERVER, FAR]);
    let files = write_pki(&dir, &pki);
    let want = hex(&tlsflow_unikernel::http::pattern_digest(BULK as u64));
    let cert = cert_args(&files);
    let cert = cert.each_ref().map(String::as_str);
    let curl = |from: &str, path: &str, timeout: &str| {
        let mut cmd = ns.exec(require("curl"));
        cmd.args(["-sS", "--connect-timeout", timeout, "--interface", from])
            .arg("--cacert")
            .arg(&files.ca)
            .arg(format!("https://{SERVER}:{PORT}{path}"));
        run("curl", &mut cmd, LIMIT)
    };

    // Without --gateway: a client on the subnet is served, one off it gets no answer.
    let mut server = ns.serve_unikernel("tap3", &cert);
    let near = curl("192.0.2.1", "/", "10");
    near.assert_success("curl from the subnet");
    assert!(near
        .stdout_text()
        .starts_with("tlsflow (unikernel backend)"));
    let far = curl(FAR, "/", "1");
    assert_eq!(
        far.status.code(),
        Some(28),
        "curl from {FAR} without a gateway should time out connecting: {}",
        far.stderr
    );
    interrupt(&mut server);

    // With --gateway: the off-subnet client is served.
    let mut args = cert.to_vec();
    args.extend(["--gateway", "192.0.2.1"]);
    let mut server = ns.serve_unikernel("tap3", &args);
    let far = curl(FAR, &format!("/bytes/{BULK}"), "10");
    far.assert_success("curl from off the subnet, through the gateway");
    assert_eq!(far.stdout.len(), BULK);
    assert_eq!(hex(&sha256(&far.stdout)), want);
    let line = server.wait_for(|l| l.starts_with(&format!("{FAR}:")), LIMIT);
    assert!(support::log_field(&line, "out").parse::<u64>().unwrap() > BULK as u64);
    interrupt(&mut server);

    // The client: refuses at once without a route, fetches through the gateway.
    let www = TempDir::new("tap-gateway-www");
    www.write("bulk.bin", support::pattern(BULK));
    let get = |extra: &[&str]| {
        let mut cmd = ns.exec(tlsflow());
        cmd.args([
            "get",
            "--backend",
            "unikernel",
            "--tap",
            "tap3",
            "--ip",
            "192.0.2.2/24",
            "--sha256",
            "--cacert",
        ])
        .arg(&files.ca)
        .args(extra)
        .arg(format!("https://{FAR}:4433/bulk.bin"));
        run("tlsflow get --backend unikernel", &mut cmd, LIMIT)
    };
    let refused = get(&[]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains(
            "no route to 198.51.100.1: it is not on 192.0.2.0/24 and there is no --gateway"
        ),
        "{}",
        refused.stderr
    );
    let bad = get(&["--gateway", "10.0.0.1"]);
    assert!(!bad.status.success());
    assert!(
        bad.stderr
            .contains("--gateway 10.0.0.1 must be another address on --ip's subnet 192.0.2.0/24"),
        "{}",
        bad.stderr
    );
    let mut cmd = ns.exec(require("openssl"));
    cmd.current_dir(www.path())
        .args(["s_server", "-WWW", "-naccept", "1", "-accept"])
        .arg(format!("{FAR}:4433"))
        .arg("-cert")
        .arg(&files.server_cert)
        .arg("-key")
        .arg(&files.server_key);
    let (mut s_server, _) =
        Peer::start("openssl s_server -WWW", &mut cmd, |l| l == "ACCEPT", LIMIT);
    let done = get(&["--gateway", "192.0.2.1"]);
    done.assert_success("tlsflow get through the gateway");
    assert_eq!(done.stdout_text().trim(), format!("{want}  {BULK}"));
    let status = s_server.wait_exit(LIMIT);
    assert!(
        status.success(),
        "s_server: {status}\n{}",
        s_server.output()
    );
    drop(ns);
}
