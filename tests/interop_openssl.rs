//! Interop with OpenSSL 3: `tlsflow serve` against `openssl s_client` (TLS 1.2 and 1.3,
//! ALPN, resumption, KeyUpdate, mutual TLS), and our client on every tls-unix flavour
//! (blocking, mio, tokio) against `openssl s_server -rev` (a line-reversing echo). Each
//! bulk test moves 8 MiB each way and checks SHA-256 digests; every test checks how the
//! connection ended: close_notify seen each way, or truncation reported as such.

mod support;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::peer::{require, Peer, RawOutput};
use support::*;
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::rustls::pki_types::ServerName;
use tls_unix::rustls::version::{TLS12, TLS13};
use tls_unix::rustls::{ClientConfig, ProtocolVersion, SupportedProtocolVersion};
use tls_unix::{blocking, Options};

// ---------------------------------------------------------------------------------------
// Our server against `openssl s_client`.
// ---------------------------------------------------------------------------------------

/// Starts `openssl s_client` against `server` with `extra` flags and waits for its
/// handshake (`-brief` prints the summary on stderr and only application data on stdout).
fn s_client(server: &OurServer, extra: &[&str]) -> (Peer, RawOutput) {
    let mut cmd = Command::new(require("openssl"));
    cmd.args([
        "s_client",
        "-brief",
        "-verify_return_error",
        "-servername",
        "localhost",
    ])
    .arg("-connect")
    .arg(server.addr.to_string())
    .arg("-CAfile")
    .arg(&server.ca)
    .args(extra);
    let (mut peer, out) = Peer::spawn_raw("openssl s_client", &mut cmd);
    peer.wait_for(|l| l == "CONNECTION ESTABLISHED", LIMIT);
    peer.wait_for(|l| l == "Verification: OK", LIMIT);
    (peer, out)
}

/// Sends `data` through s_client to our echo server and checks that exactly `data` comes
/// back: in two halves, each awaited in full before the next input, so that a `K` line
/// (a KeyUpdate, when `key_update`) is read by s_client on its own. Then `Q` (close_notify)
/// and s_client exits. Returns s_client's stderr.
fn echo_through_s_client(mut peer: Peer, out: RawOutput, data: &[u8], key_update: bool) -> String {
    let half = data[..data.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let mut stdin = peer.take_stdin();
    for (i, part) in [&data[..half], &data[half..]].into_iter().enumerate() {
        let writer = write_in_background("s_client stdin", stdin, part.to_vec());
        let want = if i == 0 { half } else { data.len() };
        out.wait_len(want, LIMIT);
        stdin = writer.join(LIMIT);
        if i == 0 && key_update {
            stdin.write_all(b"K\n").unwrap();
            stdin.flush().unwrap();
            peer.wait_for(|l| l == "KEYUPDATE", LIMIT);
        }
    }
    stdin.write_all(b"Q\n").unwrap();
    stdin.flush().unwrap();
    peer.wait_for(|l| l == "DONE", LIMIT);
    let status = peer.wait_exit(LIMIT);
    assert!(status.success(), "s_client: {status}\n{}", peer.output());
    out.wait_eof(LIMIT);
    out.with(|echoed| {
        assert_eq!(echoed.len(), data.len(), "echoed length");
        assert_eq!(hex(&sha256(echoed)), hex(&sha256(data)), "echoed digest");
    });
    peer.output()
}

#[test]
fn s_client_tls13_echo_8mib_with_key_update_and_alpn() {
    let mut server = OurServer::start(&["--echo", "--alpn", "h2,http/1.1"], None);
    let (peer, out) = s_client(&server, &["-tls1_3", "-alpn", "http/1.1"]);
    let data = hex_lines(BULK, 1);
    let stderr = echo_through_s_client(peer, out, &data, true);
    assert!(stderr.contains("Protocol version: TLSv1.3"), "{stderr}");
    let log = server.next_connection();
    assert_log(
        &log,
        "TLSv1_3",
        "http/1.1",
        false,
        Some(BULK),
        Some(BULK),
        "close_notify (peer first)",
    );
}

#[test]
fn s_client_tls12_echo_8mib_with_alpn() {
    let mut server = OurServer::start(&["--echo", "--alpn", "h2,http/1.1"], None);
    let (peer, out) = s_client(&server, &["-tls1_2", "-alpn", "h2"]);
    let data = hex_lines(BULK, 2);
    let stderr = echo_through_s_client(peer, out, &data, false);
    assert!(stderr.contains("Protocol version: TLSv1.2"), "{stderr}");
    assert!(stderr.contains("Ciphersuite: ECDHE-"), "{stderr}");
    let log = server.next_connection();
    assert_log(
        &log,
        "TLSv1_2",
        "h2",
        false,
        Some(BULK),
        Some(BULK),
        "close_notify (peer first)",
    );
}

#[test]
fn s_client_without_a_common_alpn_protocol_is_refused() {
    let mut server = OurServer::start(&["--echo", "--alpn", "h2"], None);
    let mut cmd = Command::new(require("openssl"));
    cmd.args([
        "s_client",
        "-brief",
        "-servername",
        "localhost",
        "-alpn",
        "spdy/1",
    ])
    .arg("-connect")
    .arg(server.addr.to_string())
    .arg("-CAfile")
    .arg(&server.ca);
    let done = run("openssl s_client", &mut cmd, LIMIT);
    assert!(!done.status.success(), "s_client: {}", done.stderr);
    assert!(
        done.stderr.contains("no application protocol"),
        "s_client should get the no_application_protocol alert:\n{}",
        done.stderr
    );
    let log = server.next_connection();
    assert!(log.contains(" handshake failed: "), "{log}");
}

/// Without `--alpn`, `serve` accepts `h2` first, then `http/1.1` (its HTTP server speaks
/// both), whatever order the client offers them in.
#[test]
fn serve_accepts_h2_then_http11_by_default() {
    let mut server = OurServer::start(&["--echo"], None);
    for (offer, picked) in [("http/1.1,h2", "h2"), ("http/1.1", "http/1.1")] {
        let (peer, out) = s_client(&server, &["-tls1_3", "-alpn", offer]);
        let data = hex_lines(1024, 5);
        echo_through_s_client(peer, out, &data, false);
        let log = server.next_connection();
        assert_log(
            &log,
            "TLSv1_3",
            picked,
            false,
            Some(data.len()),
            Some(data.len()),
            "close_notify (peer first)",
        );
    }
}

/// Two s_client runs, the second resuming the first's session from a file.
fn s_client_resumes(version_flag: &str, version: &str) {
    let mut server = OurServer::start(&["--echo"], None);
    let dir = TempDir::new("s_client-session");
    let session = dir.join("session.pem");
    let data = hex_lines(64 * 1024, 3);
    for (i, flag) in ["-sess_out", "-sess_in"].into_iter().enumerate() {
        let (peer, out) = s_client(&server, &[version_flag, flag, session.to_str().unwrap()]);
        let stderr = echo_through_s_client(peer, out, &data, false);
        // A resumed handshake has no certificate signature to report.
        assert_eq!(stderr.contains("Signature type:"), i == 0, "{stderr}");
        let log = server.next_connection();
        assert_log(
            &log,
            version,
            "-",
            i == 1,
            Some(data.len()),
            Some(data.len()),
            "close_notify (peer first)",
        );
        assert!(
            std::fs::metadata(&session).is_ok_and(|m| m.len() > 0),
            "s_client wrote no session"
        );
    }
}

#[test]
fn s_client_tls13_resumes_with_a_ticket() {
    s_client_resumes("-tls1_3", "TLSv1_3");
}

#[test]
fn s_client_tls12_resumes() {
    s_client_resumes("-tls1_2", "TLSv1_2");
}

#[test]
fn s_client_mutual_tls() {
    let dir = TempDir::new("mtls");
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let files = write_pki(&dir, &pki);
    let mut server = OurServer::start(
        &[
            "--echo",
            "--cert",
            files.server_chain.to_str().unwrap(),
            "--key",
            files.server_key.to_str().unwrap(),
            "--client-ca",
            files.ca.to_str().unwrap(),
        ],
        Some(&files.ca),
    );
    // With a client certificate: accepted.
    let cert = files.client_chain.to_str().unwrap();
    let key = files.client_key.to_str().unwrap();
    for version in ["-tls1_3", "-tls1_2"] {
        let (peer, out) = s_client(&server, &[version, "-cert", cert, "-key", key]);
        let data = hex_lines(256 * 1024, 4);
        echo_through_s_client(peer, out, &data, false);
        let log = server.next_connection();
        assert!(
            log.ends_with("close=close_notify (peer first)") && log.contains(" in=262144 "),
            "{log}"
        );
    }
    // Without one: refused by our server, and s_client says so.
    for version in ["-tls1_3", "-tls1_2"] {
        let mut cmd = Command::new(require("openssl"));
        cmd.args(["s_client", "-brief", "-servername", "localhost", version])
            .arg("-connect")
            .arg(server.addr.to_string())
            .arg("-CAfile")
            .arg(&files.ca);
        let (mut peer, out) = Peer::spawn_raw("openssl s_client", &mut cmd);
        // In TLS 1.3 the client finishes its handshake before the server has judged its
        // (missing) certificate: the refusal arrives as an alert on its next read. Its
        // stdin stays open, so it does not close first; the alert makes it exit.
        peer.stdin().write_all(b"hello\n").unwrap();
        let status = peer.wait_exit(LIMIT);
        out.wait_eof(LIMIT);
        let stderr = peer.wait_output_end(LIMIT);
        let log = server.next_connection();
        assert!(
            log.contains(" handshake failed: "),
            "{version}: server log {log:?}"
        );
        // rustls sends certificate_required (116) in TLS 1.2 as well.
        assert!(
            !status.success() && stderr.contains("alert certificate required") && out.len() == 0,
            "{version}: s_client ({status}) should report the server's alert:\n{stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Our client (tls-unix: blocking, mio, tokio) against `openssl s_server -rev`.
// ---------------------------------------------------------------------------------------

/// `openssl s_server -rev` for one connection: it sends back each line it receives,
/// reversed, ends the connection on a line `CLOSE`, and prints only status lines (its
/// default mode would mix them into the data it prints).
struct SServer {
    peer: Peer,
    addr: SocketAddr,
    client_config: Arc<ClientConfig>,
    _out: RawOutput,
    _dir: TempDir,
}

impl SServer {
    fn start(version: &'static SupportedProtocolVersion) -> SServer {
        let dir = TempDir::new("s_server");
        let pki = Pki::new(KeyKind::EcdsaP256, &[]);
        let files = write_pki(&dir, &pki);
        let flag = if version == &TLS13 {
            "-tls1_3"
        } else {
            "-tls1_2"
        };
        let mut cmd = Command::new(require("openssl"));
        cmd.args([
            "s_server",
            "-rev",
            "-accept",
            "127.0.0.1:0",
            "-naccept",
            "1",
            flag,
        ])
        .arg("-cert")
        .arg(&files.server_cert)
        .arg("-key")
        .arg(&files.server_key)
        .current_dir(dir.path());
        let (peer, out) = Peer::spawn_raw("openssl s_server", &mut cmd);
        let port: u16 = out.wait_until("the ACCEPT line", LIMIT, |b| {
            let at = b.windows(17).position(|w| w == b"ACCEPT 127.0.0.1:")? + 17;
            let end = b[at..].iter().position(|&c| c == b'\n')? + at;
            std::str::from_utf8(&b[at..end]).ok()?.parse().ok()
        });
        let client_config = Arc::new(pki.client_config(&CertOptions {
            versions: vec![version],
            ..CertOptions::default()
        }));
        SServer {
            peer,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            client_config,
            _out: out,
            _dir: dir,
        }
    }

    /// s_server's own account of the end of the connection (`-naccept 1`: it exits).
    fn finished(&mut self) -> String {
        let status = self.peer.wait_exit(LIMIT);
        let output = self.peer.wait_output_end(LIMIT);
        assert!(status.success(), "s_server: {status}\n{output}");
        output
    }
}

/// What `s_server -rev` answers to `data`: each line reversed.
fn reversed_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        out.extend(body.iter().rev());
        out.push(b'\n');
    }
    out
}

fn options() -> Options {
    Options {
        handshake_timeout: Some(Duration::from_secs(20)),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..Options::default()
    }
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// How a test ends the connection, and what it must then see.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    /// We send close_notify first (and half-close).
    OurCloseNotify,
    /// We send the line `CLOSE`: s_server ends the connection first.
    PeerCloses,
    /// s_server is killed (by PID): its TCP connection ends without close_notify, which
    /// we must report as truncation, never as a clean end of stream.
    PeerKilled,
}

fn assert_truncated(result: io::Result<usize>) {
    match result {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
            assert_eq!(
                tls_unix::tls_error(&e),
                Some(&tls_core::Error::Truncated),
                "{e:?}"
            );
        }
        Ok(n) => panic!("read gave Ok({n}) after the peer closed without close_notify"),
    }
}

/// Checks the end of a connection from our read after `end`'s action, and s_server's.
fn check_end(srv: &mut SServer, end: End, last_read: io::Result<usize>) {
    match end {
        End::OurCloseNotify => {
            assert_eq!(last_read.unwrap(), 0, "s_server's close_notify");
            let out = srv.finished();
            assert!(out.contains("CONNECTION CLOSED"), "{out}");
        }
        End::PeerCloses => {
            assert_eq!(last_read.unwrap(), 0, "s_server's close_notify");
            srv.finished();
        }
        End::PeerKilled => assert_truncated(last_read),
    }
}

/// The blocking flavour, in lock-step: 64 KiB out, its echo back, and so on (one thread
/// cannot write and read a blocking stream at once), with a KeyUpdate midway in TLS 1.3.
fn s_server_blocking(version: &'static SupportedProtocolVersion, end: End) {
    let mut srv = SServer::start(version);
    let sock = TcpStream::connect(srv.addr).unwrap();
    let mut tls = blocking::connect(srv.client_config.clone(), localhost(), sock, options())
        .expect("handshake with s_server");
    assert_eq!(tls.handshake_info().unwrap().version, version.version);

    let data = hex_lines(BULK, 10);
    let mut echoed = Vec::with_capacity(BULK);
    let mut got = vec![0u8; 64 * 1024];
    for (i, chunk) in data.chunks(64 * 1024).enumerate() {
        if i == 64 && version == &TLS13 {
            tls.refresh_keys().unwrap();
        }
        tls.write_all(chunk).unwrap();
        tls.flush().unwrap();
        tls.read_exact(&mut got[..chunk.len()]).unwrap();
        echoed.extend_from_slice(&got[..chunk.len()]);
    }
    assert_eq!(
        hex(&sha256(&echoed)),
        hex(&sha256(&reversed_lines(&data))),
        "echo digest"
    );

    let mut buf = [0u8; 1024];
    let last = match end {
        End::OurCloseNotify => {
            tls.shutdown().unwrap();
            tls.read(&mut buf)
        }
        End::PeerCloses => {
            tls.write_all(b"CLOSE\n").unwrap();
            tls.flush().unwrap();
            let last = tls.read(&mut buf);
            tls.shutdown().unwrap();
            last
        }
        End::PeerKilled => {
            srv.peer.kill();
            tls.read(&mut buf)
        }
    };
    check_end(&mut srv, end, last);
}

#[test]
fn s_server_blocking_tls13_8mib_each_way_our_close_notify() {
    s_server_blocking(&TLS13, End::OurCloseNotify);
}

#[test]
fn s_server_blocking_tls12_8mib_each_way_peer_closes() {
    s_server_blocking(&TLS12, End::PeerCloses);
}

#[test]
fn s_server_blocking_tls13_peer_killed_is_truncation() {
    s_server_blocking(&TLS13, End::PeerKilled);
}

/// The mio flavour: one readiness loop writes all the data and reads the echo at once,
/// with a KeyUpdate midway.
fn s_server_mio(end: End) {
    use mio::{Events, Interest, Poll, Token};
    use tls_unix::nonblocking::TlsStream;
    const T: Token = Token(0);

    let mut srv = SServer::start(&TLS13);
    let data = hex_lines(BULK, 20);
    let mut poll = Poll::new().unwrap();
    let sock = mio::net::TcpStream::connect(srv.addr).unwrap();
    let mut tls =
        TlsStream::client(srv.client_config.clone(), localhost(), sock, options()).unwrap();
    poll.registry()
        .register(&mut tls, T, Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + LIMIT;
    let would_block = |e: &io::Error| e.kind() == ErrorKind::WouldBlock;

    // Waits for the readiness the stream asks for, within its own time limits and ours.
    // `phase` names what the loop waits for, in failure messages.
    let mut wait = |tls: &mut TlsStream<mio::net::TcpStream>, phase: &dyn Fn() -> String| {
        let interest = tls.interest();
        poll.registry().reregister(tls, T, interest).unwrap();
        let now = Instant::now();
        assert!(
            now < deadline,
            "mio: not done after {LIMIT:?} ({})",
            phase()
        );
        let until = tls.deadline().map_or(deadline, |d| d.min(deadline));
        poll.poll(&mut events, Some(until - now)).unwrap();
        if let Err(e) = tls.check_deadline(Instant::now()) {
            panic!(
                "mio: {e} while waiting with interest {interest:?} ({}; wants_read {}, \
                 wants_write {}, peer closed {})",
                phase(),
                tls.wants_read(),
                tls.wants_write(),
                tls.session().peer_has_closed(),
            );
        }
    };

    let (mut sent, mut flushed, mut updated) = (0, false, false);
    let mut echoed = Vec::with_capacity(BULK);
    let mut buf = vec![0u8; 64 * 1024];
    while !(flushed && echoed.len() == BULK) {
        match tls.handshake() {
            Ok(()) => {}
            Err(e) if would_block(&e) => {
                wait(&mut tls, &|| "the handshake".to_string());
                continue;
            }
            Err(e) => panic!("handshake: {e}"),
        }
        // Read first: a read also writes queued output, which would leave the stream
        // wanting no write readiness while we still have data for it. Writing last, until
        // the stream refuses, makes the interest below cover what we still have to send.
        loop {
            match tls.read(&mut buf) {
                Ok(0) => panic!("s_server closed after {} bytes", echoed.len()),
                Ok(n) => echoed.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => break,
                Err(e) => panic!("read after {} bytes: {e}", echoed.len()),
            }
        }
        assert!(echoed.len() <= sent, "more came back than was sent");
        while sent < BULK {
            // The KeyUpdate goes between two lines: s_server -rev reads lines, and a
            // record that is not data in the middle of one makes it answer the part it has.
            if sent == BULK / 2 && !updated {
                tls.refresh_keys().unwrap();
                updated = true;
            }
            let stop = if updated { BULK } else { BULK / 2 };
            let upto = (sent + 64 * 1024).min(stop);
            match tls.write(&data[sent..upto]) {
                Ok(n) => sent += n,
                Err(e) if would_block(&e) => break,
                Err(e) => panic!("write after {sent} bytes: {e}"),
            }
        }
        if sent == BULK && !flushed {
            match tls.flush() {
                Ok(()) => flushed = true,
                Err(e) if would_block(&e) => {}
                Err(e) => panic!("flush: {e}"),
            }
        }
        if !(flushed && echoed.len() == BULK) {
            let (n, m) = (sent, echoed.len());
            wait(&mut tls, &|| {
                format!("the transfer: {n} sent (flushed: {flushed}), {m} echoed")
            });
        }
    }
    assert!(updated && flushed);
    assert_eq!(
        tls.handshake_info().unwrap().version,
        ProtocolVersion::TLSv1_3
    );
    assert_eq!(
        hex(&sha256(&echoed)),
        hex(&sha256(&reversed_lines(&data))),
        "echo digest"
    );

    match end {
        End::OurCloseNotify => loop {
            match tls.shutdown() {
                Ok(()) => break,
                Err(e) if would_block(&e) => wait(&mut tls, &|| "our shutdown".to_string()),
                Err(e) => panic!("shutdown: {e}"),
            }
        },
        End::PeerCloses => {
            assert_eq!(tls.write(b"CLOSE\n").unwrap(), 6);
            loop {
                match tls.flush() {
                    Ok(()) => break,
                    Err(e) if would_block(&e) => wait(&mut tls, &|| "CLOSE".to_string()),
                    Err(e) => panic!("flush: {e}"),
                }
            }
        }
        End::PeerKilled => srv.peer.kill(),
    }
    let last = loop {
        match tls.read(&mut buf) {
            Err(e) if would_block(&e) => wait(&mut tls, &|| format!("the end ({end:?})")),
            other => break other,
        }
    };
    if end == End::PeerCloses {
        // s_server waits for our close_notify in turn before it exits.
        loop {
            match tls.shutdown() {
                Ok(()) => break,
                Err(e) if would_block(&e) => wait(&mut tls, &|| "our shutdown".to_string()),
                Err(e) => panic!("shutdown: {e}"),
            }
        }
    }
    check_end(&mut srv, end, last);
}

#[test]
fn s_server_mio_8mib_each_way_our_close_notify() {
    s_server_mio(End::OurCloseNotify);
}

#[test]
fn s_server_mio_peer_closes() {
    s_server_mio(End::PeerCloses);
}

#[test]
fn s_server_mio_peer_killed_is_truncation() {
    s_server_mio(End::PeerKilled);
}

/// The tokio flavour: the stream split into halves; one task writes all the data (with a
/// KeyUpdate midway) while another reads the echo.
fn s_server_tokio(end: End) {
    use tls_unix::tokio::TlsConnector;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut srv = SServer::start(&TLS13);
    let data = hex_lines(BULK, 30);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connector = TlsConnector::new(srv.client_config.clone()).with_options(options());
    let (addr, up) = (srv.addr, data.clone());
    let (mut reader, mut writer, echoed) = within(&rt, "the transfer", async move {
        let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(localhost(), sock).await.unwrap();
        assert_eq!(
            tls.handshake_info().unwrap().version,
            ProtocolVersion::TLSv1_3
        );
        let (mut r, mut w) = tls.split_with(tokio::net::TcpStream::into_split);
        let writing = tokio::spawn(async move {
            let (first, second) = up.split_at(BULK / 2);
            w.write_all(first).await.unwrap();
            w.refresh_keys().unwrap();
            w.write_all(second).await.unwrap();
            w.flush().await.unwrap();
            w
        });
        let reading = tokio::spawn(async move {
            let mut got = vec![0u8; BULK];
            r.read_exact(&mut got).await.unwrap();
            (r, got)
        });
        let w = writing.await.unwrap();
        let (r, got) = reading.await.unwrap();
        (r, w, got)
    });
    assert_eq!(
        hex(&sha256(&echoed)),
        hex(&sha256(&reversed_lines(&data))),
        "echo digest"
    );

    match end {
        End::OurCloseNotify => {
            within(&rt, "shutdown", writer.shutdown()).unwrap();
        }
        End::PeerCloses => {
            within(&rt, "CLOSE", async {
                writer.write_all(b"CLOSE\n").await?;
                writer.flush().await
            })
            .unwrap();
        }
        End::PeerKilled => srv.peer.kill(),
    }
    let last = within(&rt, "the last read", async {
        let mut buf = [0u8; 1024];
        reader.read(&mut buf).await
    });
    if end == End::PeerCloses {
        // s_server waits for our close_notify in turn before it exits.
        within(&rt, "shutdown", writer.shutdown()).unwrap();
    }
    check_end(&mut srv, end, last);
}

#[test]
fn s_server_tokio_8mib_each_way_our_close_notify() {
    s_server_tokio(End::OurCloseNotify);
}

#[test]
fn s_server_tokio_peer_closes() {
    s_server_tokio(End::PeerCloses);
}

#[test]
fn s_server_tokio_peer_killed_is_truncation() {
    s_server_tokio(End::PeerKilled);
}

/// Runs `fut` on `rt` within [`LIMIT`].
fn within<T>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    rt.block_on(async { tokio::time::timeout(LIMIT, fut).await })
        .unwrap_or_else(|_| panic!("tokio: {what} not done after {LIMIT:?}"))
}
