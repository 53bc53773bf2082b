//! Behaviour of the TLS socket API over a clean simulated network: errors (RST, FIN
//! before close_notify, handshake timeout, refused connection, bad certificate), the
//! smoltcp-style calls, backpressure, several connections on one listener, half-close.

mod common;

use common::{
    server_name, tls, Net, NetConfig, Pair, PairConfig, Step, Tick, CLIENT, PORT, SERVER,
};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use tls_unikernel::tls_core::rustls::ProtocolVersion;
use tls_unikernel::tls_core::Event;
use tls_unikernel::{Error, ListenerOptions, Options, PollAt, TlsListener, TlsSocket};

const ROUNDS: u64 = 100_000;

fn pair() -> Pair {
    Pair::new(&NetConfig::default(), &PairConfig::default(), 1)
}

/// A network whose server side is a plain TCP socket listening on [`PORT`] (one that
/// speaks no TLS), and a TCP socket on the client side for a TLS client.
fn raw_server(seed: u64) -> (Net, SocketHandle, SocketHandle) {
    let mut net = Net::new(&NetConfig::default(), seed);
    let server = net.add_tcp(SERVER, 4096, 4096);
    net.tcp(SERVER, server).listen(PORT).unwrap();
    let client = net.add_tcp(CLIENT, 4096, 4096);
    (net, server, client)
}

/// Drives `net` polling only the client `tls` until `done` holds; `done` also sees what
/// the poll answered.
fn drive_client<F>(net: &mut Net, tls: &mut TlsSocket, mut done: F)
where
    F: FnMut(&mut Net, &TlsSocket, PollAt) -> bool,
{
    net.drive(ROUNDS, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        let at = tls.poll(now, &mut net.nodes[CLIENT].sockets);
        tick.poll(at);
        tick.done = done(net, tls, at);
        tick
    });
}

/// Sends what is left of `data` from `side`, `sent` bytes having gone already; true if
/// any more went.
fn send_rest(pair: &mut Pair, side: usize, data: &[u8], sent: &mut usize) -> bool {
    if *sent == data.len() {
        return false;
    }
    let (tls, sockets) = pair.side(side);
    let n = tls.send_slice(sockets, &data[*sent..]).unwrap();
    *sent += n;
    n > 0
}

/// Reads everything available on one side; `Err` ends the read.
fn read_all(pair: &mut Pair, side: usize, into: &mut Vec<u8>) -> Result<bool, Error> {
    let (tls, sockets) = pair.side(side);
    let mut buf = [0u8; 2048];
    let mut any = false;
    loop {
        match tls.recv_slice(sockets, &mut buf) {
            Ok(0) => return Ok(any),
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                any = true;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads `side` until a read fails with `expected` (any other error fails the test);
/// returns what it read before.
fn read_until(pair: &mut Pair, side: usize, expected: &Error) -> Vec<u8> {
    let mut got = Vec::new();
    pair.drive(ROUNDS, |pair| match read_all(pair, side, &mut got) {
        Ok(_) => Step::Idle,
        Err(e) if e == *expected => Step::Done,
        Err(e) => panic!("expected {expected:?}, got {e:?}"),
    });
    got
}

#[test]
fn handshake_and_echo_tls13_and_tls12() {
    for (config, version) in [
        (tls().client_13.clone(), ProtocolVersion::TLSv1_3),
        (tls().client_12.clone(), ProtocolVersion::TLSv1_2),
    ] {
        let cfg = PairConfig {
            client_config: config,
            ..PairConfig::default()
        };
        let mut pair = Pair::new(&NetConfig::default(), &cfg, 2);
        assert!(pair.tls[CLIENT].is_handshaking());
        // Nothing to send before the handshake; reading gives nothing yet.
        let (tls, sockets) = pair.side(CLIENT);
        assert_eq!(tls.send_slice(sockets, b"early").unwrap(), 0);
        assert!(!tls.can_send(sockets));
        assert!(!tls.may_send(sockets));
        assert_eq!(tls.recv_slice(sockets, &mut [0; 8]).unwrap(), 0);
        pair.handshake(ROUNDS);
        for side in [CLIENT, SERVER] {
            let info = pair.tls[side].handshake_info().unwrap().clone();
            assert_eq!(info.version, version);
            assert!(matches!(
                pair.tls[side].poll_event(),
                Some(Event::HandshakeComplete(_))
            ));
        }
        assert_eq!(
            pair.tls[SERVER].handshake_info().unwrap().sni.as_deref(),
            Some("localhost")
        );
        assert!(pair.tls[CLIENT].peer_certificates().is_some());
        let (tls, sockets) = pair.side(CLIENT);
        assert!(tls.can_send(sockets) && tls.may_send(sockets) && tls.may_recv());
        assert_eq!(tls.send_slice(sockets, b"ping").unwrap(), 4);
        let mut got = Vec::new();
        pair.drive_until(ROUNDS, |pair| {
            read_all(pair, SERVER, &mut got).unwrap();
            got == b"ping"
        });
        // Idle and established: nothing to do until the network says so.
        let now = pair.net.now;
        let (tls, sockets) = pair.side(SERVER);
        assert_eq!(tls.poll(now, sockets), PollAt::Ingress);
    }
}

#[test]
fn poll_reports_the_handshake_deadline() {
    let mut pair = pair();
    let now = pair.net.now;
    let (tls, sockets) = pair.side(CLIENT);
    // First poll starts the clock; TCP is still connecting.
    let at = tls.poll(now, sockets);
    let at = if at == PollAt::Now {
        tls.poll(now, sockets)
    } else {
        at
    };
    let timeout = Options::default().handshake_timeout.unwrap();
    assert_eq!(timeout, Duration::from_secs(10));
    assert_eq!(at, PollAt::Time(now + timeout));
}

#[test]
fn rst_is_reset() {
    let mut pair = pair();
    pair.handshake(ROUNDS);
    let (tls, sockets) = pair.side(SERVER);
    tls.abort(sockets);
    assert_eq!(tls.send_slice(sockets, b"x"), Err(Error::InvalidState));
    // Nothing was sent before the reset.
    assert_eq!(read_until(&mut pair, CLIENT, &Error::Reset), b"");
    let (tls, sockets) = pair.side(CLIENT);
    assert_eq!(tls.send_slice(sockets, b"x"), Err(Error::Reset));
    assert!(tls.error().unwrap().is_fatal());
    assert!(!tls.may_recv() && !tls.may_send(sockets));
}

#[test]
fn fin_before_close_notify_is_truncated_after_the_data() {
    let mut pair = pair();
    pair.handshake(ROUNDS);
    let (tls, sockets) = pair.side(SERVER);
    assert_eq!(tls.send_slice(sockets, b"all of this").unwrap(), 11);
    // A bare FIN: what an attacker (or a crash in a peer's TLS layer) produces.
    let handle = tls.handle();
    pair.sockets(SERVER).get_mut::<tcp::Socket>(handle).close();
    let got = read_until(&mut pair, CLIENT, &Error::Truncated);
    assert_eq!(got, b"all of this");
    // Sticky, and sending is over too.
    let (tls, sockets) = pair.side(CLIENT);
    assert_eq!(tls.recv_slice(sockets, &mut [0; 4]), Err(Error::Truncated));
    assert_eq!(tls.send_slice(sockets, b"x"), Err(Error::Truncated));
}

#[test]
fn fin_during_the_handshake_is_truncated() {
    // A plain TCP server that accepts and closes at once.
    let (mut net, server, client) = raw_server(3);
    let mut tls = net.connect_client(client, tls().client_any.clone(), Options::default(), 50000);
    drive_client(&mut net, &mut tls, |net, tls, _| {
        let raw = net.tcp(SERVER, server);
        if raw.may_send() {
            raw.close();
        }
        tls.error() == Some(&Error::Truncated)
    });
    assert!(!tls.is_established());
}

#[test]
fn silent_server_hits_the_handshake_timeout() {
    // A plain TCP server that never answers the ClientHello.
    let (mut net, _, client) = raw_server(4);
    let options = Options {
        handshake_timeout: Some(Duration::from_secs(2)),
        ..Options::default()
    };
    let mut tls = net.connect_client(client, tls().client_any.clone(), options, 50001);
    let start = net.now;
    let mut saw_deadline = false;
    drive_client(&mut net, &mut tls, |_, tls, at| {
        // The deadline counts from the first poll, one round after `start`.
        let window = start + Duration::from_secs(2)..start + Duration::from_millis(2001);
        saw_deadline |= matches!(at, PollAt::Time(t) if window.contains(&t));
        tls.error().is_some()
    });
    assert!(saw_deadline, "poll must announce the deadline");
    assert_eq!(tls.error(), Some(&Error::HandshakeTimeout));
    let elapsed = net.now - start;
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2100));
    let sockets = &mut net.nodes[CLIENT].sockets;
    assert_eq!(
        tls.recv_slice(sockets, &mut [0; 4]),
        Err(Error::HandshakeTimeout)
    );
    assert_eq!(
        sockets.get::<tcp::Socket>(client).state(),
        tcp::State::Closed
    );
}

#[test]
fn refused_connection_is_reset() {
    let mut net = Net::new(&NetConfig::default(), 5);
    let client = net.add_tcp(CLIENT, 4096, 4096);
    let mut tls = net.connect_client(client, tls().client_any.clone(), Options::default(), 50002);
    drive_client(&mut net, &mut tls, |_, tls, _| tls.error().is_some());
    assert_eq!(tls.error(), Some(&Error::Reset));
}

#[test]
fn untrusted_certificate_fails_both_sides_with_alerts() {
    let cfg = PairConfig {
        client_config: tls().client_untrusting.clone(),
        ..PairConfig::default()
    };
    let mut pair = Pair::new(&NetConfig::default(), &cfg, 6);
    pair.drive_until(ROUNDS, |pair| {
        pair.tls[CLIENT].error().is_some() && pair.tls[SERVER].error().is_some()
    });
    let client = pair.tls[CLIENT].error().unwrap().clone();
    assert!(matches!(client, Error::Tls(_)), "{client:?}");
    let server = pair.tls[SERVER].error().unwrap().clone();
    assert!(
        matches!(
            server,
            Error::Tls(tls_unikernel::tls_core::Error::AlertReceived(_))
        ),
        "{server:?}"
    );
    // Both TCP connections close after the alert.
    pair.drive_until(ROUNDS, |pair| {
        let (c, cs) = pair.side(CLIENT);
        let done = c.is_closed(cs);
        let (s, ss) = pair.side(SERVER);
        done && s.is_closed(ss)
    });
}

#[test]
fn closure_recv_and_can_recv() {
    let mut pair = pair();
    pair.handshake(ROUNDS);
    let (tls, sockets) = pair.side(CLIENT);
    assert_eq!(tls.send_slice(sockets, b"hello world").unwrap(), 11);
    pair.drive_until(ROUNDS, |pair| pair.tls[SERVER].can_recv());
    let (tls, sockets) = pair.side(SERVER);
    // Take five bytes, leave the rest.
    let first = tls
        .recv(sockets, |data| {
            assert_eq!(data, b"hello world");
            (5, data[..5].to_vec())
        })
        .unwrap();
    assert_eq!(first, b"hello");
    assert!(tls.can_recv());
    let mut buf = [0u8; 32];
    assert_eq!(tls.recv_slice(sockets, &mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b" world");
    assert!(!tls.can_recv());
    // Nothing waiting: the closure sees an empty slice.
    let len = tls.recv(sockets, |data| (0, data.len())).unwrap();
    assert_eq!(len, 0);
}

/// Sends `data` client -> server and reads it with the closure form; returns the size of
/// every slice the closure was offered.
fn closure_transfer(pair: &mut Pair, data: &[u8]) -> Vec<usize> {
    let (mut sent, mut got, mut offered) = (0, Vec::new(), Vec::new());
    pair.drive(ROUNDS, |pair| {
        let mut progress = send_rest(pair, CLIENT, data, &mut sent);
        let (tls, sockets) = pair.side(SERVER);
        while tls.can_recv() {
            let n = tls
                .recv(sockets, |chunk| {
                    offered.push(chunk.len());
                    got.extend_from_slice(chunk);
                    (chunk.len(), chunk.len())
                })
                .unwrap();
            assert!(n > 0, "can_recv promised data");
            progress = true;
        }
        Step::of(got.len() == data.len(), progress)
    });
    assert!(got == data, "plaintext differs");
    offered
}

/// The closure form reads the engine's plaintext in place: with the default
/// `read_chunk` it sees a whole 16 KiB record at once (the socket has no read buffer of
/// its own to cut it into chunks), and a smaller `read_chunk` caps what it sees.
#[test]
fn closure_recv_lends_whole_records_in_place() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 11 % 251) as u8).collect();
    let cfg = PairConfig {
        client_tx: 64 * 1024,
        server_rx: 64 * 1024,
        ..PairConfig::default()
    };
    let mut pair = Pair::new(&NetConfig::default(), &cfg, 3);
    pair.handshake(ROUNDS);
    let offered = closure_transfer(&mut pair, &data);
    assert_eq!(offered.iter().max(), Some(&16_384), "{offered:?}");

    let mut cfg = cfg;
    cfg.server_options.read_chunk = 1000;
    let mut pair = Pair::new(&NetConfig::default(), &cfg, 4);
    pair.handshake(ROUNDS);
    let offered = closure_transfer(&mut pair, &data);
    assert_eq!(offered.iter().max(), Some(&1000), "{offered:?}");
}

#[test]
fn half_close_client_first_then_server_keeps_sending() {
    let mut pair = pair();
    pair.handshake(ROUNDS);
    let (tls, sockets) = pair.side(CLIENT);
    assert_eq!(tls.send_slice(sockets, b"request").unwrap(), 7);
    tls.close(sockets);
    assert!(!tls.may_send(sockets));
    assert_eq!(
        tls.send_slice(sockets, b"more"),
        Err(Error::Tls(tls_unikernel::tls_core::Error::Closed))
    );
    assert!(tls.may_recv());
    let request = read_until(&mut pair, SERVER, &Error::Finished);
    assert_eq!(request, b"request");
    assert!(matches!(
        pair.tls[SERVER].poll_event(),
        Some(Event::HandshakeComplete(_))
    ));
    assert_eq!(pair.tls[SERVER].poll_event(), Some(Event::PeerClosed));
    // The server still sends, a lot, after the client's close.
    let response: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut finished = false;
    pair.drive(ROUNDS, |pair| {
        let mut progress = send_rest(pair, SERVER, &response, &mut sent);
        if progress && sent == response.len() {
            let (tls, sockets) = pair.side(SERVER);
            tls.close(sockets);
        }
        match read_all(pair, CLIENT, &mut got) {
            Ok(any) => progress |= any,
            Err(Error::Finished) => finished = true,
            Err(e) => panic!("{e:?}"),
        }
        let closed = (0..2).all(|side| {
            let (tls, sockets) = pair.side(side);
            tls.is_closed(sockets)
        });
        Step::of(finished && closed, progress)
    });
    assert_eq!(got, response);
    assert!(pair.tls[CLIENT].poll_event().is_some());
}

#[test]
fn backpressure_closes_the_tcp_window_until_the_application_reads() {
    let mut cfg = PairConfig::default();
    cfg.server_options.limits.unread_plaintext = 8 * 1024;
    cfg.server_options.read_chunk = 1024;
    cfg.server_rx = 4096;
    let mut pair = Pair::new(&NetConfig::default(), &cfg, 7);
    pair.handshake(ROUNDS);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut sent = 0;
    // Phase 1: the server application does not read.
    let mut stuck_rounds = 0;
    pair.drive(ROUNDS, |pair| {
        let (tls, sockets) = pair.side(CLIENT);
        let n = tls.send_slice(sockets, &data[sent..]).unwrap();
        sent += n;
        if n == 0 {
            stuck_rounds += 1;
        }
        Step::of(stuck_rounds > 50, n > 0)
    });
    assert!(sent < data.len(), "the sender must be held back");
    let server_buffers = pair.tls[SERVER].buffered_bytes();
    let server_tcp = pair.tls[SERVER].handle();
    let queued = pair.net.tcp(SERVER, server_tcp).recv_queue();
    // The engine holds at most the limit plus one record in flight (and its buffers'
    // slack); the TCP receive ring is full (window closed).
    assert!(
        server_buffers < 8 * 1024 + 2 * 18_437 + 1024,
        "{server_buffers}"
    );
    assert_eq!(queued, 4096, "the TCP receive ring should be full");
    // Phase 2: read everything.
    let mut got = Vec::new();
    pair.drive(ROUNDS, |pair| {
        let sent_more = send_rest(pair, CLIENT, &data, &mut sent);
        let read_more = read_all(pair, SERVER, &mut got).unwrap();
        Step::of(got.len() == data.len(), sent_more || read_more)
    });
    assert_eq!(got, data);
}

#[test]
fn key_update_mid_stream() {
    let cfg = PairConfig {
        client_config: tls().client_13.clone(),
        ..PairConfig::default()
    };
    let mut pair = Pair::new(&NetConfig::default(), &cfg, 8);
    pair.handshake(ROUNDS);
    let (tls, sockets) = pair.side(CLIENT);
    assert_eq!(tls.send_slice(sockets, b"before").unwrap(), 6);
    tls.refresh_keys(sockets).unwrap();
    assert_eq!(tls.send_slice(sockets, b" after").unwrap(), 6);
    let mut got = Vec::new();
    pair.drive_until(ROUNDS, |pair| {
        read_all(pair, SERVER, &mut got).unwrap();
        got.len() == 12
    });
    assert_eq!(got, b"before after");
    let events: Vec<_> = std::iter::from_fn(|| pair.tls[SERVER].poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::KeysUpdated(_))),
        "{events:?}"
    );
}

#[test]
fn close_during_the_handshake_takes_effect_after_it() {
    let mut pair = pair();
    let (tls, sockets) = pair.side(CLIENT);
    tls.close(sockets);
    let got = read_until(&mut pair, SERVER, &Error::Finished);
    assert!(got.is_empty(), "unexpected {} bytes", got.len());
    assert!(pair.tls[CLIENT].is_established());
}

#[test]
fn listener_serves_several_connections_at_once() {
    const CLIENTS: usize = 6;
    let mut net = Net::new(&NetConfig::default(), 9);
    let options = ListenerOptions {
        rx_ring: 2048,
        tx_ring: 2048,
        backlog: 2,
        ..ListenerOptions::default()
    };
    let mut listener = TlsListener::new(
        &mut net.nodes[SERVER].sockets,
        PORT,
        tls().server.clone(),
        options,
    )
    .unwrap();
    let mut clients: Vec<TlsSocket> = Vec::new();
    let messages: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|i| format!("client {i} says hello").repeat(100).into_bytes())
        .collect();
    let mut sent = [0usize; CLIENTS];
    let mut echoed: Vec<Vec<u8>> = vec![Vec::new(); CLIENTS];
    let mut served: Vec<(TlsSocket, Vec<u8>, bool)> = Vec::new();
    net.drive(ROUNDS, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        // Clients connect one after another (smoltcp resets a SYN that finds no listening
        // socket, and the listener keeps only `backlog` of them), and stay connected.
        if clients.len() < CLIENTS && clients.last().is_none_or(TlsSocket::is_established) {
            let handle = net.add_tcp(CLIENT, 4096, 4096);
            let port = 51000 + clients.len() as u16;
            clients.push(net.connect_client(
                handle,
                tls().client_any.clone(),
                Options::default(),
                port,
            ));
            tick.progress = true;
        }
        let all_connected =
            clients.len() == CLIENTS && clients.iter().all(TlsSocket::is_established);
        // Server side: accept, echo upper-cased, close after the client's close.
        while let Some(conn) = listener.accept(&mut net.nodes[SERVER].sockets) {
            served.push((conn, Vec::new(), false));
            tick.progress = true;
        }
        let sockets = &mut net.nodes[SERVER].sockets;
        for (conn, pending, closed) in &mut served {
            tick.poll(conn.poll(now, sockets));
            let mut buf = [0u8; 1024];
            loop {
                match conn.recv_slice(sockets, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        pending.extend(buf[..n].iter().map(u8::to_ascii_uppercase));
                        tick.progress = true;
                    }
                    Err(Error::Finished) => {
                        if pending.is_empty() && !*closed {
                            conn.close(sockets);
                            *closed = true;
                        }
                        break;
                    }
                    Err(e) => panic!("server: {e:?}"),
                }
            }
            if !pending.is_empty() {
                let n = conn.send_slice(sockets, pending).unwrap_or(0);
                pending.drain(..n);
                tick.progress |= n > 0;
            }
        }
        // Clients: send, close, read the echo until the server closes.
        let sockets = &mut net.nodes[CLIENT].sockets;
        let mut done = 0;
        for (i, tls) in clients.iter_mut().enumerate() {
            tick.poll(tls.poll(now, sockets));
            // Everyone talks only once all are connected: six connections at once.
            if all_connected && sent[i] < messages[i].len() {
                let n = tls.send_slice(sockets, &messages[i][sent[i]..]).unwrap();
                sent[i] += n;
                tick.progress |= n > 0;
                if sent[i] == messages[i].len() {
                    tls.close(sockets);
                }
            }
            let mut buf = [0u8; 1024];
            loop {
                match tls.recv_slice(sockets, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        echoed[i].extend_from_slice(&buf[..n]);
                        tick.progress = true;
                    }
                    Err(Error::Finished) => {
                        done += 1;
                        break;
                    }
                    Err(e) => panic!("client {i}: {e:?}"),
                }
            }
        }
        tick.done = done == CLIENTS;
        tick
    });
    assert_eq!(served.len(), CLIENTS);
    assert!(served
        .iter()
        .all(|(conn, _, closed)| *closed && conn.is_established()));
    for i in 0..CLIENTS {
        assert_eq!(echoed[i], messages[i].to_ascii_uppercase());
    }
    listener.close(&mut net.nodes[SERVER].sockets);
}

#[test]
fn calls_before_a_connection() {
    let mut net = Net::new(&NetConfig::default(), 10);
    let handle = net.add_tcp(CLIENT, 1024, 1024);
    let mut tls = TlsSocket::client(
        handle,
        tls().client_any.clone(),
        server_name(),
        Options::default(),
    );
    let now = net.now;
    let sockets = &mut net.nodes[CLIENT].sockets;
    assert_eq!(tls.send_slice(sockets, b"x"), Err(Error::InvalidState));
    assert_eq!(
        tls.recv_slice(sockets, &mut [0; 4]),
        Err(Error::InvalidState)
    );
    assert_eq!(tls.listen(sockets, PORT), Err(Error::InvalidState));
    assert_eq!(tls.poll(now, sockets), PollAt::Ingress);
    assert!(!tls.can_send(sockets) && !tls.can_recv() && !tls.may_recv());
}
