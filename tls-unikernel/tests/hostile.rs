//! Hostile and broken peers on a simulated network: each ends with the right alert on
//! the wire before the TCP FIN (never an RST in its place), and the socket free within
//! the bound its [`Options`] set. Also: a first flight of several segments goes out at
//! once, without waiting for a peer that delays its ACKs (Nagle off).
//!
//! The peer is a plain smoltcp TCP socket that writes the bytes a test gives and records
//! everything it receives, and how the stream ended (FIN or RST).

mod common;

use common::{tls, Net, NetConfig, Pair, PairConfig, Tick, CLIENT, PORT, SERVER, SERVER_IP};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use std::sync::{Arc, OnceLock};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unikernel::tls_core::rustls::{ClientConfig, ServerConfig};
use tls_unikernel::{Error, Options, TlsSocket};

const ROUNDS: u64 = 200_000;
const ALERT: u8 = 21;
const FATAL: u8 = 2;

/// How the raw peer saw the stream end.
#[derive(Debug, Default)]
struct Seen {
    /// Every byte received, in order.
    bytes: Vec<u8>,
    /// How many bytes had arrived when the FIN came.
    fin_after: Option<usize>,
    /// The connection was reset (RST, or closed without our FIN exchange).
    reset: bool,
}

/// Short bounds so that the tests show them (simulated time, so they cost nothing).
fn bounded() -> Options {
    Options {
        handshake_timeout: Some(Duration::from_secs(3)),
        write_timeout: Some(Duration::from_secs(2)),
        error_linger: Some(Duration::from_secs(1)),
        ..Options::default()
    }
}

/// A TLS server with `options` and a raw TCP client connected to it.
fn server_and_raw_client(seed: u64, options: Options) -> (Net, TlsSocket, SocketHandle) {
    let mut net = Net::new(&NetConfig::default(), seed);
    let server_tcp = net.add_tcp(SERVER, 16 * 1024, 16 * 1024);
    let mut server = TlsSocket::server(server_tcp, tls().server.clone(), options);
    server.listen(&mut net.nodes[SERVER].sockets, PORT).unwrap();
    let raw = net.add_tcp(CLIENT, 4096, 4096);
    let node = &mut net.nodes[CLIENT];
    node.sockets
        .get_mut::<tcp::Socket>(raw)
        .connect(node.iface.context(), (SERVER_IP, PORT), 50100)
        .unwrap();
    (net, server, raw)
}

/// One round of the raw peer: sends what is left of `script`, reads everything, and
/// closes its side once it has seen the FIN (as a well-behaved peer does) unless
/// `hold_open`. True if anything moved.
fn raw_step(
    tcp: &mut tcp::Socket<'_>,
    script: &[u8],
    sent: &mut usize,
    seen: &mut Seen,
    hold_open: bool,
) -> bool {
    let mut moved = false;
    if tcp.may_send() && *sent < script.len() {
        let n = tcp.send_slice(&script[*sent..]).unwrap_or(0);
        *sent += n;
        moved |= n > 0;
    }
    loop {
        match tcp.recv(|b| (b.len(), b.to_vec())) {
            Ok(b) if b.is_empty() => break,
            Ok(b) => {
                seen.bytes.extend_from_slice(&b);
                moved = true;
            }
            Err(tcp::RecvError::Finished) => {
                if seen.fin_after.is_none() {
                    seen.fin_after = Some(seen.bytes.len());
                    if !hold_open {
                        tcp.close();
                    }
                    moved = true;
                }
                break;
            }
            Err(tcp::RecvError::InvalidState) => break,
        }
    }
    if tcp.state() == tcp::State::Closed && seen.fin_after.is_none() && !seen.reset {
        seen.reset = true;
        moved = true;
    }
    moved
}

/// Runs the server against a raw peer that sends `script`, until the server's TCP socket
/// has closed (or is in TIME-WAIT). Returns what the peer saw and the simulated time
/// from the start to the server's release.
fn run_against_raw_client(
    seed: u64,
    options: Options,
    script: &[u8],
    hold_open: bool,
) -> (Seen, TlsSocket, Duration) {
    let (mut net, mut server, raw) = server_and_raw_client(seed, options);
    let start = net.now;
    let (mut sent, mut seen) = (0, Seen::default());
    let mut released = None;
    net.drive(ROUNDS, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        tick.poll(server.poll(now, &mut net.nodes[SERVER].sockets));
        let tcp = net.nodes[CLIENT].sockets.get_mut::<tcp::Socket>(raw);
        tick.progress |= raw_step(tcp, script, &mut sent, &mut seen, hold_open);
        if released.is_none() && server.is_closed(&net.nodes[SERVER].sockets) {
            released = Some(now);
        }
        // Done once the server is free and the peer has seen how it ended.
        tick.done = released.is_some() && (seen.fin_after.is_some() || seen.reset);
        tick
    });
    (seen, server, released.unwrap() - start)
}

/// The TLS records in `bytes`: (content type, body).
fn records(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        assert!(bytes.len() >= 5 + len, "a cut record: {bytes:02x?}");
        out.push((bytes[0], bytes[5..5 + len].to_vec()));
        bytes = &bytes[5 + len..];
    }
    assert!(
        bytes.is_empty(),
        "bytes after the last record: {bytes:02x?}"
    );
    out
}

/// Checks that the peer got exactly one plaintext fatal alert `description`, then the
/// FIN, and no RST.
fn assert_alert_then_fin(seen: &Seen, description: u8) {
    assert!(!seen.reset, "the connection was reset: {seen:?}");
    assert_eq!(
        seen.fin_after,
        Some(seen.bytes.len()),
        "no FIN after the bytes"
    );
    let recs = records(&seen.bytes);
    assert_eq!(
        recs,
        vec![(ALERT, vec![FATAL, description])],
        "expected one fatal alert {description}"
    );
}

/// A ClientHello record announcing a 16 MB message.
const HUGE_HANDSHAKE: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff];

#[test]
fn oversized_handshake_message_gets_an_alert_then_fin_and_release() {
    let (seen, server, took) = run_against_raw_client(1, bounded(), HUGE_HANDSHAKE, false);
    // rustls refuses a handshake message over its 64 KiB limit as undecodable.
    const DECODE_ERROR: u8 = 50;
    assert_alert_then_fin(&seen, DECODE_ERROR);
    assert!(matches!(server.error(), Some(Error::Tls(_))), "{server:?}");
    assert!(took < Duration::from_millis(100), "released after {took}");
}

#[test]
fn record_over_the_size_limit_gets_record_overflow() {
    // 18433 bytes: one more than a TLS 1.2 ciphertext may have (16384 + 2048).
    let mut script = vec![0x16, 0x03, 0x03, 0x48, 0x01];
    script.extend_from_slice(&[0; 64]);
    let (seen, server, took) = run_against_raw_client(2, bounded(), &script, false);
    // rustls reports a record over the limit as undecodable.
    const DECODE_ERROR: u8 = 50;
    assert_alert_then_fin(&seen, DECODE_ERROR);
    assert!(matches!(server.error(), Some(Error::Tls(_))), "{server:?}");
    assert!(took < Duration::from_millis(100), "released after {took}");
}

#[test]
fn peer_that_keeps_its_side_open_is_reset_after_the_error_linger() {
    // The alert and the FIN are taken, but the peer never sends its FIN: the socket is
    // released by an RST once `error_linger` has passed.
    let (seen, _, took) = run_against_raw_client(3, bounded(), HUGE_HANDSHAKE, true);
    assert_eq!(records(&seen.bytes).len(), 1, "{seen:?}");
    assert_eq!(seen.fin_after, Some(seen.bytes.len()));
    let linger = bounded().error_linger.unwrap();
    assert!(
        took >= linger && took < linger + Duration::from_millis(100),
        "took {took}"
    );
}

#[test]
fn silent_peer_is_released_by_the_handshake_timeout() {
    let (seen, server, took) = run_against_raw_client(4, bounded(), &[], false);
    assert_eq!(server.error(), Some(&Error::HandshakeTimeout));
    assert!(seen.reset && seen.bytes.is_empty(), "{seen:?}");
    let bound = bounded().handshake_timeout.unwrap();
    assert!(
        took >= bound && took < bound + Duration::from_millis(100),
        "took {took}"
    );
}

#[test]
fn client_sends_its_alert_before_the_fin_too() {
    // A raw server answers the ClientHello with an oversized record.
    let mut net = Net::new(&NetConfig::default(), 5);
    let raw = net.add_tcp(SERVER, 4096, 4096);
    net.tcp(SERVER, raw).listen(PORT).unwrap();
    let client_tcp = net.add_tcp(CLIENT, 4096, 4096);
    let mut client = net.connect_client(client_tcp, tls().client_any.clone(), bounded(), 50101);
    let mut script = vec![0x16, 0x03, 0x03, 0x48, 0x01];
    script.extend_from_slice(&[0; 64]);
    let (mut sent, mut seen) = (0, Seen::default());
    let mut hello = 0;
    net.drive(ROUNDS, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        tick.poll(client.poll(now, &mut net.nodes[CLIENT].sockets));
        let tcp = net.nodes[SERVER].sockets.get_mut::<tcp::Socket>(raw);
        // Answer only once the ClientHello is in.
        let script: &[u8] = if hello > 0 { &script } else { &[] };
        tick.progress |= raw_step(tcp, script, &mut sent, &mut seen, false);
        if hello == 0 && !seen.bytes.is_empty() {
            hello = seen.bytes.len();
        }
        tick.done = client.is_closed(&net.nodes[CLIENT].sockets) && seen.fin_after.is_some();
        tick
    });
    assert!(!seen.reset, "{seen:?}");
    let recs = records(&seen.bytes);
    assert_eq!(
        recs.first().map(|r| r.0),
        Some(0x16),
        "the ClientHello first"
    );
    assert_eq!(
        recs.last(),
        Some(&(ALERT, vec![FATAL, 50])),
        "then decode_error"
    );
    assert!(matches!(client.error(), Some(Error::Tls(_))));
}

#[test]
fn peer_that_stops_reading_is_released_by_the_write_timeout() {
    let options = bounded();
    let cfg = PairConfig {
        client_rx: 2048,
        server_options: options,
        ..PairConfig::default()
    };
    let mut pair = Pair::new(&NetConfig::default(), &cfg, 6);
    pair.handshake(ROUNDS);
    // From here the client application never reads: its ring fills, its window shuts.
    let start = pair.net.now;
    let data = vec![7u8; 256 * 1024];
    let mut sent = 0;
    let mut stopped = None;
    let tls = &mut pair.tls[SERVER];
    pair.net.drive(ROUNDS, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        let sockets = &mut net.nodes[SERVER].sockets;
        tick.poll(tls.poll(now, sockets));
        if sent < data.len() {
            match tls.send_slice(sockets, &data[sent..]) {
                Ok(n) => {
                    sent += n;
                    tick.progress |= n > 0;
                }
                Err(e) => {
                    assert_eq!(e, Error::WriteTimeout);
                    stopped = Some(now);
                }
            }
        }
        tick.done = stopped.is_some() && tls.is_closed(sockets);
        tick
    });
    let took = stopped.unwrap() - start;
    assert!(sent < data.len());
    let bound = options.write_timeout.unwrap();
    assert!(
        took >= bound && took < bound + Duration::from_millis(200),
        "took {took}"
    );
    assert_eq!(pair.tls[SERVER].error(), Some(&Error::WriteTimeout));
}

/// Simulated time for a TLS 1.2 handshake with an RSA-2048 certificate and its CA (a
/// first server flight of about 2.2 KB: one full segment and a partial one) whose client
/// delays its ACKs by `ack_delay`.
fn handshake_time(server_options: Options, ack_delay: Duration) -> Duration {
    static RSA: OnceLock<(Arc<ServerConfig>, Arc<ClientConfig>)> = OnceLock::new();
    let (server_config, client_config) = RSA.get_or_init(|| {
        let mut pki = Pki::new(KeyKind::Rsa2048, &[]);
        // The throwaway PKI serves its leaf alone; with the CA after it the flight is
        // one full segment and a partial one.
        pki.server.chain.push(pki.ca.clone());
        let tls12 = CertOptions {
            versions: tls_test::certs::TLS12.to_vec(),
            ..CertOptions::default()
        };
        (
            Arc::new(pki.server_config(&CertOptions::default())),
            Arc::new(pki.client_config(&tls12)),
        )
    });
    let cfg = PairConfig {
        server_options,
        server_config: Some(server_config.clone()),
        client_config: client_config.clone(),
        ..PairConfig::default()
    };
    let mut pair = Pair::new(&NetConfig::default(), &cfg, 7);
    let client_tcp = pair.tls[CLIENT].handle();
    pair.net
        .tcp(CLIENT, client_tcp)
        .set_ack_delay(Some(ack_delay));
    let start: Instant = pair.net.now;
    pair.handshake(ROUNDS);
    pair.net.now - start
}

#[test]
fn first_flight_of_several_segments_does_not_wait_for_a_delayed_ack() {
    let delay = Duration::from_millis(200);
    // Latency is 1 ms each way: TCP's handshake and TLS 1.2's take three round trips.
    let fast = handshake_time(Options::default(), delay);
    assert!(fast < Duration::from_millis(20), "handshake took {fast}");
    // With Nagle on (smoltcp's default), the partial segment at the end of the server's
    // flight waits for the ACK of the full one before it, which the client delays.
    let slow = handshake_time(
        Options {
            nagle: true,
            ..Options::default()
        },
        delay,
    );
    assert!(slow >= delay, "with Nagle the handshake took only {slow}");
}
