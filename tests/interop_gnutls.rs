//! Interop with GnuTLS 3.7: `gnutls-cli` against `tlsflow serve --echo` (8 MiB, rekey with
//! `^rekey^`, resumption with `-r`, TLS 1.2 and 1.3), and our client (tls-unix blocking)
//! against `gnutls-serv --echo`, which binds every address and so runs in a private
//! network namespace of its own.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::netns::run_isolated;
use support::peer::{require, Peer, RawOutput};
use support::*;
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::rustls::pki_types::ServerName;
use tls_unix::rustls::version::{TLS12, TLS13};
use tls_unix::rustls::{ClientConfig, SupportedProtocolVersion};
use tls_unix::{blocking, Options};

/// GnuTLS priority strings for one version.
const ONLY_TLS12: &str = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
const ONLY_TLS13: &str = "NORMAL:-VERS-ALL:+VERS-TLS1.3";

// ---------------------------------------------------------------------------------------
// gnutls-cli against our server.
// ---------------------------------------------------------------------------------------

/// What gnutls-cli prints once it takes input; application data follows on its stdout.
const INPUT_MODE: &[u8] = b"- Simple Client Mode:\n\n";
/// What gnutls-cli prints after `^rekey^` has been carried out.
const REKEYED: &[u8] = b"- Rekey was completed\n";
/// What gnutls-cli prints when the server's close_notify arrives.
const PEER_CLOSED: &[u8] = b"- Peer has closed the GnuTLS connection\n";

/// gnutls-cli's stdout: its informational messages (line-buffered there, while its
/// `--logfile` is block-buffered and so useless for waiting on) and, after
/// [`INPUT_MODE`], the application data it receives.
struct GnutlsCli {
    peer: Peer,
    out: RawOutput,
    /// Where the application data starts in `out`.
    start: usize,
}

/// Starts gnutls-cli against `server` and waits until it takes input.
fn gnutls_cli(server: &OurServer, extra: &[&str]) -> GnutlsCli {
    let mut cmd = Command::new(require("gnutls-cli"));
    cmd.arg("--x509cafile")
        .arg(&server.ca)
        .args(["--inline-commands", "-p"])
        .arg(server.port().to_string())
        .args(extra)
        .arg("localhost");
    let (peer, out) = Peer::spawn_raw("gnutls-cli", &mut cmd);
    let start = out.wait_until("its input mode", LIMIT, |b| {
        let at = b.windows(INPUT_MODE.len()).position(|w| w == INPUT_MODE)?;
        Some(at + INPUT_MODE.len())
    });
    GnutlsCli { peer, out, start }
}

impl GnutlsCli {
    /// Its messages before the application data.
    fn preamble(&self) -> String {
        self.out
            .with(|b| String::from_utf8_lossy(&b[..self.start]).into_owned())
    }

    /// Waits until `pred` holds for the application data received so far.
    fn wait_data(&self, what: &str, pred: impl Fn(&[u8]) -> bool) {
        let start = self.start;
        self.out
            .wait_until(what, LIMIT, |b| pred(&b[start..]).then_some(()));
    }
}

/// Sends `data` through gnutls-cli to our echo server and checks that exactly `data` comes
/// back, in two halves each awaited in full, with `^rekey^` (alone on gnutls-cli's input)
/// between them when `rekey`. Then gnutls-cli's input ends: it sends close_notify, waits
/// for ours and exits. Returns its messages before the data.
fn echo_through_gnutls_cli(mut cli: GnutlsCli, data: &[u8], rekey: bool) -> String {
    let half = data[..data.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let mut stdin = cli.peer.take_stdin();
    let writer = write_in_background("gnutls-cli stdin", stdin, data[..half].to_vec());
    cli.wait_data("the first half", |d| d.len() >= half);
    stdin = writer.join(LIMIT);
    let mut extra = 0;
    if rekey {
        stdin.write_all(b"^rekey^\n").unwrap();
        stdin.flush().unwrap();
        cli.wait_data("the rekey", |d| d[half..].starts_with(REKEYED));
        extra = REKEYED.len();
    }
    let writer = write_in_background("gnutls-cli stdin", stdin, data[half..].to_vec());
    cli.wait_data("the second half", |d| d.len() >= data.len() + extra);
    drop(writer.join(LIMIT));
    cli.wait_data("our close_notify", |d| d.ends_with(PEER_CLOSED));
    let status = cli.peer.wait_exit(LIMIT);
    cli.out.wait_eof(LIMIT);
    assert!(
        status.success(),
        "gnutls-cli: {status}\n{}",
        cli.peer.output()
    );
    cli.out.with(|b| {
        let region = &b[cli.start..];
        let echoed = [
            &region[..half],
            &region[half + extra..region.len() - PEER_CLOSED.len()],
        ]
        .concat();
        assert_eq!(echoed.len(), data.len(), "echoed length");
        assert_eq!(hex(&sha256(&echoed)), hex(&sha256(data)), "echoed digest");
    });
    cli.preamble()
}

#[test]
fn gnutls_cli_tls13_echo_8mib_with_rekey() {
    let mut server = OurServer::start(&["--echo"], None);
    let cli = gnutls_cli(&server, &["--priority", ONLY_TLS13]);
    let data = hex_lines(BULK, 40);
    let messages = echo_through_gnutls_cli(cli, &data, true);
    assert!(
        messages.contains("- Description: (TLS1.3-X.509)"),
        "{messages}"
    );
    assert!(
        messages.contains("- Status: The certificate is trusted."),
        "{messages}"
    );
    let log = server.next_connection();
    assert_log(
        &log,
        "TLSv1_3",
        "-",
        false,
        Some(BULK),
        Some(BULK),
        "close_notify (peer first)",
    );
}

#[test]
fn gnutls_cli_tls12_echo_8mib() {
    let mut server = OurServer::start(&["--echo"], None);
    let cli = gnutls_cli(&server, &["--priority", ONLY_TLS12]);
    let data = hex_lines(BULK, 41);
    let messages = echo_through_gnutls_cli(cli, &data, false);
    assert!(
        messages.contains("- Description: (TLS1.2-X.509)"),
        "{messages}"
    );
    let log = server.next_connection();
    assert_log(
        &log,
        "TLSv1_2",
        "-",
        false,
        Some(BULK),
        Some(BULK),
        "close_notify (peer first)",
    );
}

/// gnutls-cli `-r`: a full handshake, a close, and a second connection that resumes.
fn gnutls_cli_resumes(priority: &str, version: &str) {
    let mut server = OurServer::start(&["--echo"], None);
    let cli = gnutls_cli(&server, &["-r", "--priority", priority]);
    let data = hex_lines(64 * 1024, 42);
    let messages = echo_through_gnutls_cli(cli, &data, false);
    assert!(
        messages.contains("*** This is a resumed session"),
        "{messages}"
    );
    let first = server.next_connection();
    assert_log(
        &first,
        version,
        "-",
        false,
        Some(0),
        Some(0),
        "close_notify (peer first)",
    );
    let second = server.next_connection();
    assert_log(
        &second,
        version,
        "-",
        true,
        Some(data.len()),
        Some(data.len()),
        "close_notify (peer first)",
    );
}

#[test]
fn gnutls_cli_tls13_resumes() {
    gnutls_cli_resumes(ONLY_TLS13, "TLSv1_3");
}

#[test]
fn gnutls_cli_tls12_resumes() {
    gnutls_cli_resumes(ONLY_TLS12, "TLSv1_2");
}

// ---------------------------------------------------------------------------------------
// Our client (tls-unix blocking) against gnutls-serv, in a private network namespace.
// ---------------------------------------------------------------------------------------

/// The port gnutls-serv listens on inside its namespace (nothing else is there).
const GNUTLS_SERV_PORT: u16 = 5556;

fn options() -> Options {
    Options {
        handshake_timeout: Some(Duration::from_secs(20)),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..Options::default()
    }
}

/// Connects to gnutls-serv and echoes `data` in lock-step (64 KiB out, its echo back),
/// with a KeyUpdate midway in TLS 1.3. Returns the stream, still open.
fn echo_with_gnutls_serv(
    config: &Arc<ClientConfig>,
    version: &'static SupportedProtocolVersion,
    data: &[u8],
) -> blocking::TlsStream<TcpStream> {
    let sock = TcpStream::connect(("127.0.0.1", GNUTLS_SERV_PORT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = blocking::connect(config.clone(), name, sock, options())
        .expect("handshake with gnutls-serv");
    assert_eq!(tls.handshake_info().unwrap().version, version.version);
    let mut echoed = Vec::with_capacity(data.len());
    let mut got = vec![0u8; 64 * 1024];
    let chunks = data.len().div_ceil(64 * 1024);
    for (i, chunk) in data.chunks(64 * 1024).enumerate() {
        if i == chunks / 2 && version == &TLS13 {
            tls.refresh_keys().unwrap();
        }
        tls.write_all(chunk).unwrap();
        tls.flush().unwrap();
        tls.read_exact(&mut got[..chunk.len()]).unwrap();
        echoed.extend_from_slice(&got[..chunk.len()]);
    }
    assert_eq!(hex(&sha256(&echoed)), hex(&sha256(data)), "echo digest");
    tls
}

/// In a private network namespace: gnutls-serv, then a full connection moving 8 MiB each
/// way and closed with close_notify both ways, then a connection that resumes its session
/// and sees gnutls-serv killed (truncation).
fn gnutls_serv(version: &'static SupportedProtocolVersion, priority: &'static str) {
    let dir = TempDir::new("gnutls-serv");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let config = Arc::new(pki.client_config(&CertOptions {
        versions: vec![version],
        resumption: true,
        ..CertOptions::default()
    }));
    run_isolated("gnutls-serv in its namespace", LIMIT * 2, move || {
        let mut cmd = Command::new(require("gnutls-serv"));
        cmd.args(["--echo", "--priority", priority, "-p"])
            .arg(GNUTLS_SERV_PORT.to_string())
            .arg("--x509certfile")
            .arg(&files.server_chain)
            .arg("--x509keyfile")
            .arg(&files.server_key);
        let (mut serv, _) = Peer::start(
            "gnutls-serv",
            &mut cmd,
            |l| l.starts_with("Echo Server listening on IPv4") && l.ends_with("done"),
            LIMIT,
        );

        let data = hex_lines(BULK, 43);
        let mut tls = echo_with_gnutls_serv(&config, version, &data);
        assert!(!tls.handshake_info().unwrap().resumed);
        tls.shutdown().unwrap();
        let mut buf = [0u8; 1024];
        assert_eq!(tls.read(&mut buf).unwrap(), 0, "gnutls-serv's close_notify");

        let mut tls = echo_with_gnutls_serv(&config, version, &data[..64 * 1024]);
        assert!(
            tls.handshake_info().unwrap().resumed,
            "second connection resumes"
        );
        serv.kill();
        let err = tls.read(&mut buf).expect_err("gnutls-serv was killed");
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
        assert_eq!(
            tls_unix::tls_error(&err),
            Some(&tls_core::Error::Truncated),
            "{err:?}"
        );
        drop(dir);
    });
}

#[test]
fn gnutls_serv_tls13_8mib_each_way_resumption_and_truncation() {
    gnutls_serv(&TLS13, ONLY_TLS13);
}

#[test]
fn gnutls_serv_tls12_8mib_each_way_resumption_and_truncation() {
    gnutls_serv(&TLS12, ONLY_TLS12);
}
