//! tls-unikernel on a real wire: `tlsflow serve --backend unikernel` on a TAP device in a
//! network namespace, against the host kernel's TCP inside that namespace.
//!
//! * A corrupted record, passed on by a small TCP proxy in the namespace that flips a
//!   byte of the client's Finished: the server's `bad_record_mac` alert is the last
//!   record the proxy relays back, and a FIN follows it (no RST).
//! * The same for the client's first application-data record (TLS 1.2 and 1.3): the
//!   server fails it with an encrypted `bad_record_mac` alert, the last record relayed
//!   back, then a FIN (the application server lingers for the alert after the handshake).
//! * Every slot of `--max-concurrent 2` taken by hostile peers (one announces a 16 MiB
//!   ClientHello and then neither sends nor closes; one connects and sends nothing): the
//!   first gets a `decode_error` alert and a FIN at once, its slot is free again within
//!   the socket's error linger (2 s), and the next client is served then, long before
//!   the silent peer's handshake timeout (10 s) would have freed the other slot.
//!
//! Needs root (namespaces and TAP devices), as in CI; the namespace and its devices are
//! removed when the test ends, also when it fails.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use support::netns::{Netns, TAP_PORT, TAP_SERVER};
use support::peer::Peer;
use support::{spawn_task, Task, TempDir, LIMIT};
use tls_test::certs::{self, KeyKind, Options as CertOptions, Pki};
use tls_unix::blocking;

/// How a direction's source ended, as the proxy saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Fin,
    Reset,
}

/// One direction through the proxy: the TLS records it carried (content type and
/// length), and how it ended.
#[derive(Debug, Default)]
struct Direction {
    records: Vec<(u8, usize)>,
    end: Option<End>,
    /// Parser state: header bytes of the current record, body bytes still to come.
    header: Vec<u8>,
    body_left: usize,
}

impl Direction {
    /// Parses `bytes` as they pass; flips the last byte of record number `corrupt`.
    fn pass(&mut self, bytes: &mut [u8], corrupt: Option<usize>) {
        let mut i = 0;
        while i < bytes.len() {
            if self.body_left == 0 {
                self.header.push(bytes[i]);
                i += 1;
                if self.header.len() == 5 {
                    let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                    self.records.push((self.header[0], len));
                    self.header.clear();
                    self.body_left = len;
                }
                continue;
            }
            let n = self.body_left.min(bytes.len() - i);
            self.body_left -= n;
            i += n;
            if self.body_left == 0 && corrupt == Some(self.records.len() - 1) {
                bytes[i - 1] ^= 0x01;
            }
        }
    }
}

/// A TCP proxy in the namespace, for one connection: from a listener on 127.0.0.1 to
/// the unikernel server, flipping a byte of one client record.
struct Proxy {
    addr: SocketAddr,
    seen: Arc<Mutex<[Direction; 2]>>,
    task: Task<()>,
}

const C2S: usize = 0;
const S2C: usize = 1;

impl Proxy {
    fn start(ns: &Netns, corrupt_client_record: usize) -> Proxy {
        let listener = ns.listen(SocketAddr::from(([127, 0, 0, 1], 0)));
        let addr = listener.local_addr().unwrap();
        let server = ns.connect(server_addr());
        let seen = Arc::new(Mutex::new([Direction::default(), Direction::default()]));
        let shared = seen.clone();
        let task = spawn_task("proxy", move || {
            let (client, _) = listener.accept().expect("the client connects");
            let pumps = [
                (C2S, &client, &server, Some(corrupt_client_record)),
                (S2C, &server, &client, None),
            ]
            .map(|(dir, from, to, corrupt)| {
                let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                let seen = shared.clone();
                spawn_task("proxy direction", move || {
                    pump(dir, from, to, corrupt, &seen)
                })
            });
            for p in pumps {
                p.join(LIMIT);
            }
        });
        Proxy { addr, seen, task }
    }

    /// Waits for both directions to end; what each carried.
    fn finish(self) -> [Direction; 2] {
        self.task.join(LIMIT);
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn pump(
    dir: usize,
    mut from: TcpStream,
    mut to: TcpStream,
    corrupt: Option<usize>,
    seen: &Mutex<[Direction; 2]>,
) {
    from.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                seen.lock().unwrap()[dir].end = Some(End::Fin);
                break;
            }
            Ok(n) => {
                seen.lock().unwrap()[dir].pass(&mut buf[..n], corrupt);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{dir}: {e}");
                seen.lock().unwrap()[dir].end = Some(End::Reset);
                break;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn server_addr() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 2], TAP_PORT))
}

/// The server with a throwaway ECDSA certificate for [`TAP_SERVER`], and a client
/// config that trusts it and allows only `versions`.
fn server_and_client(
    ns: &Netns,
    dir: &TempDir,
    args: &[&str],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Peer, Arc<rustls::ClientConfig>) {
    let pki = Pki::new(KeyKind::EcdsaP256, &[TAP_SERVER]);
    let files = support::write_pki(dir, &pki);
    let chain = files.server_chain.display().to_string();
    let key = files.server_key.display().to_string();
    let mut all = vec!["--cert", &chain, "--key", &key];
    all.extend_from_slice(args);
    let server = ns.serve_unikernel("tap0", &all);
    let client = pki.client_config(&CertOptions {
        versions: versions.to_vec(),
        ..CertOptions::default()
    });
    (server, Arc::new(client))
}

fn tls_options() -> tls_unix::Options {
    tls_unix::Options {
        handshake_timeout: Some(LIMIT),
        read_timeout: Some(LIMIT),
        write_timeout: Some(LIMIT),
        ..Default::default()
    }
}

/// The server's alert for a bad client Finished as it appears on the wire: TLS 1.3
/// encrypts it (with the handshake keys) as application data: 2 bytes, the inner
/// content type and a 16-byte tag. In TLS 1.2 the server has not sent its own
/// ChangeCipherSpec yet, so the alert goes in plaintext: 2 bytes.
fn is_alert(record: (u8, usize), tls13: bool) -> bool {
    if tls13 {
        record == (23, 2 + 1 + 16)
    } else {
        record == (21, 2)
    }
}

#[test]
fn corrupted_record_gets_the_alert_on_the_wire_before_the_fin() {
    let ns = Netns::with_tap("wire-alert", "tap0", "192.0.2.1/24");
    let dir = TempDir::new("tap-wire-alert");
    // The client's Finished: TLS 1.3 ClientHello, ChangeCipherSpec, Finished; TLS 1.2
    // ClientHello, ClientKeyExchange, ChangeCipherSpec, Finished.
    for (versions, finished, tls13) in [(certs::TLS13, 2, true), (certs::TLS12, 3, false)] {
        let (mut server, client_config) = server_and_client(&ns, &dir, &[], versions);
        let proxy = Proxy::start(&ns, finished);
        let sock = ns.connect(proxy.addr);
        let name = ServerName::try_from(TAP_SERVER).unwrap();
        let result =
            blocking::connect(client_config, name, sock, tls_options()).and_then(|mut tls| {
                // TLS 1.3: the client's handshake is over once it has sent its Finished;
                // the server's answer comes to the first read.
                let mut buf = [0u8; 64];
                tls.read(&mut buf)
            });
        let err = result.expect_err("the corrupted Finished fails the connection");
        let text = format!("{err:?}");
        assert!(text.contains("BadRecordMac"), "the client saw {text}");
        let [c2s, s2c] = proxy.finish();
        assert!(c2s.records.len() > finished, "c2s {c2s:?}");
        let last = *s2c.records.last().expect("server records");
        assert!(
            is_alert(last, tls13),
            "the last server record is {last:?}, not an alert: {s2c:?}"
        );
        assert_eq!(s2c.end, Some(End::Fin), "the server's stream ended {s2c:?}");
        let line = server.wait_for(|l| l.starts_with("192.0.2.1:"), LIMIT);
        assert!(line.contains("handshake failed"), "{line}");
        drop(server);
    }
    drop(ns);
}

/// The server's alert for a corrupted application-data record, as it appears on the
/// wire: encrypted with the traffic keys. TLS 1.3: application data of 2 bytes, the inner
/// content type and a 16-byte tag; TLS 1.2: an alert record of 2 bytes and a 16-byte tag,
/// after an 8-byte explicit nonce with AES-GCM.
fn is_app_alert(record: (u8, usize), tls13: bool) -> bool {
    if tls13 {
        record == (23, 2 + 1 + 16)
    } else {
        record == (21, 8 + 2 + 16) || record == (21, 2 + 16)
    }
}

#[test]
fn corrupted_application_data_gets_the_alert_on_the_wire_before_the_fin() {
    let ns = Netns::with_tap("wire-appdata", "tap0", "192.0.2.1/24");
    let dir = TempDir::new("tap-wire-appdata");
    // The client's first application-data record: TLS 1.3 after ClientHello,
    // ChangeCipherSpec and Finished; TLS 1.2 after ClientHello, ClientKeyExchange,
    // ChangeCipherSpec and Finished. The server lingers after the handshake now, so the
    // alert for a record it cannot open must reach the client, then a FIN.
    for (versions, request, tls13) in [(certs::TLS13, 3, true), (certs::TLS12, 4, false)] {
        let (mut server, client_config) = server_and_client(&ns, &dir, &[], versions);
        let proxy = Proxy::start(&ns, request);
        let sock = ns.connect(proxy.addr);
        let name = ServerName::try_from(TAP_SERVER).unwrap();
        let mut tls = blocking::connect(client_config, name, sock, tls_options())
            .expect("the handshake is not corrupted");
        support::http::write_get(&mut tls, TAP_SERVER, "/").unwrap();
        let mut got = Vec::new();
        let err = tls
            .read_to_end(&mut got)
            .expect_err("the corrupted request fails the connection");
        let text = format!("{err:?}");
        assert!(text.contains("BadRecordMac"), "the client saw {text}");
        assert!(
            got.is_empty(),
            "no response to a corrupted request: {got:?}"
        );
        drop(tls);
        let [c2s, s2c] = proxy.finish();
        assert_eq!(
            c2s.records.get(request).map(|r| r.0),
            Some(23),
            "c2s {c2s:?}"
        );
        let last = *s2c.records.last().expect("server records");
        assert!(
            is_app_alert(last, tls13),
            "the last server record is {last:?}, not an alert: {s2c:?}"
        );
        assert_eq!(s2c.end, Some(End::Fin), "the server's stream ended {s2c:?}");
        let line = server.wait_for(|l| l.starts_with("192.0.2.1:"), LIMIT);
        let close = support::log_field(&line, "close");
        assert!(close.starts_with("error: "), "{line}");
        assert_eq!(support::log_field(&line, "requests"), "0", "{line}");
        drop(server);
    }
    drop(ns);
}

/// A ClientHello record announcing a 16 MiB message.
const HUGE_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff];
/// The plaintext `decode_error` alert the server answers it with.
const DECODE_ERROR_ALERT: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 50];

#[test]
fn hostile_peers_on_every_slot_are_released_within_the_bound() {
    let ns = Netns::with_tap("wire-slots", "tap0", "192.0.2.1/24");
    let dir = TempDir::new("tap-wire-slots");
    let args = ["--max-concurrent", "2", "--backlog", "2"];
    let (mut server, client_config) = server_and_client(&ns, &dir, &args, certs::TLS13);

    // Slot 1: a peer that connects and sends nothing (held until the handshake timeout).
    let silent = ns.connect(server_addr());
    // Slot 2: a peer that announces a 16 MiB ClientHello, then never closes.
    let mut huge = ns.connect(server_addr());
    huge.write_all(HUGE_HELLO).unwrap();
    huge.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = Vec::new();
    huge.read_to_end(&mut got)
        .expect("the alert, then a FIN (no RST)");
    assert_eq!(got, DECODE_ERROR_ALERT, "the server's answer");
    let alerted = Instant::now();

    // The next client waits in the backlog until a slot is free.
    let sock = ns.connect(server_addr());
    let name = ServerName::try_from(TAP_SERVER).unwrap();
    let tls = blocking::connect(client_config, name, sock, tls_options()).expect("handshake");
    let mut reader = std::io::BufReader::new(tls);
    support::http::write_get(reader.get_mut(), TAP_SERVER, "/").unwrap();
    let response = support::http::read_response(&mut reader).unwrap();
    assert_eq!(response.status, 200);
    let served = alerted.elapsed();

    // The hostile peer's slot came free after the error linger (2 s by default); the
    // silent one's would only after the 10 s handshake timeout.
    let line = server.wait_for(|l| l.starts_with("192.0.2.1:"), LIMIT);
    assert!(line.contains("handshake failed"), "first to end: {line}");
    assert!(
        served < Duration::from_secs(8),
        "the next client was served {served:?} after the hostile peer's alert"
    );
    drop(reader);
    drop(huge);
    drop(silent);
    drop(server);
    drop(ns);
}
