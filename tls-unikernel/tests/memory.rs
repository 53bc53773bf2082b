//! Memory per connection, measured with a counting global allocator and checked against
//! the figures declared in the crate docs ("Memory per connection").
//!
//! Counted per thread (the test harness's threads allocate at times of their own), one
//! test in its own binary. Everything the harness itself holds (interfaces, packets on
//! the wire, the test's data) is allocated before the baseline or subtracted.

#[global_allocator]
static ALLOC: tls_test::alloc_counter::Counting = tls_test::alloc_counter::Counting;

mod common;

use common::{tls, Net, NetConfig, Sim, Tick, CLIENT, PORT, SERVER};
use tls_test::alloc_counter::thread_live_bytes;
use tls_unikernel::tls_core::{Limits, MAX_HANDSHAKE_MESSAGE, MAX_RECORD};
use tls_unikernel::{Error, Options, TlsSocket};

/// The declared bound on rustls' own per-connection state (keys, transcript, record
/// layer, certificate chain), from the crate docs.
const RUSTLS_STATE: usize = 24 * 1024;

/// The declared bound for one connection's heap while data flows (crate docs): rings,
/// rustls, engine inbound (a full record even when the limit is lower), staged plaintext
/// (limit plus one record) and staging (at most the send ring's free space plus a
/// record); the socket has no read buffer of its own (`recv` lends plaintext in place).
/// The engine's buffers are `Vec`s that may grow to twice what they hold.
fn declared_peak(rx: usize, tx: usize, options: &Options) -> usize {
    let l = options.limits;
    rx + tx
        + RUSTLS_STATE
        + 2 * (l.inbound.max(MAX_RECORD + MAX_HANDSHAKE_MESSAGE))
        + 2 * (l.unread_plaintext + MAX_RECORD)
        + 2 * (tx + MAX_RECORD)
}

fn live() -> usize {
    thread_live_bytes() as usize
}

#[test]
fn memory_per_connection() {
    // Certificates, configs and the network exist before the baseline.
    let _ = tls();
    let mut net = Net::new(&NetConfig::default(), 42);
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 13 % 256) as u8).collect();
    let options = Options {
        limits: Limits {
            unread_plaintext: 16 * 1024,
            ..Limits::default()
        },
        ..Options::default()
    };
    const RX: usize = 8 * 1024;
    const TX: usize = 8 * 1024;

    let base = live();
    let server_tcp = net.add_tcp(SERVER, RX, TX);
    let client_tcp = net.add_tcp(CLIENT, RX, TX);
    let rings = live() - base;
    let mut server = TlsSocket::server(server_tcp, tls().server.clone(), options);
    server.listen(&mut net.nodes[SERVER].sockets, PORT).unwrap();
    let mut client = net.connect_client(client_tcp, tls().client_any.clone(), options, 50100);

    // Handshake, sampling the peak.
    let mut peak = 0;
    let sample = |net: &Sim, peak: &mut usize| {
        let held = live() - base - net.wire.heap_bytes();
        *peak = (*peak).max(held);
    };
    net.drive(100_000, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        tick.poll(client.poll(now, &mut net.nodes[CLIENT].sockets));
        tick.poll(server.poll(now, &mut net.nodes[SERVER].sockets));
        sample(net, &mut peak);
        tick.done = client.is_established() && server.is_established();
        tick
    });
    let handshake_peak = peak;
    // Drain events and let the last packets settle.
    while client.poll_event().is_some() || server.poll_event().is_some() {}
    net.drive(100_000, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        tick.poll(client.poll(now, &mut net.nodes[CLIENT].sockets));
        tick.poll(server.poll(now, &mut net.nodes[SERVER].sockets));
        tick.done = !tick.progress && net.wire.next_delivery().is_none();
        tick
    });
    let idle = live() - base - net.wire.heap_bytes();

    // 1 MB client → server; the server reads in bursts, so backpressure kicks in.
    let mut sent = 0;
    let mut received = 0;
    let mut sum = 0u64;
    let mut round = 0u64;
    peak = 0;
    net.drive(2_000_000, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        round += 1;
        let sockets = &mut net.nodes[CLIENT].sockets;
        tick.poll(client.poll(now, sockets));
        if sent < data.len() {
            let n = client.send_slice(sockets, &data[sent..]).unwrap();
            sent += n;
            tick.progress |= n > 0;
        }
        let sockets = &mut net.nodes[SERVER].sockets;
        tick.poll(server.poll(now, sockets));
        if round.is_multiple_of(8) {
            let mut buf = [0u8; 4096];
            loop {
                match server.recv_slice(sockets, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        sum = buf[..n]
                            .iter()
                            .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
                        received += n;
                        tick.progress = true;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
        } else {
            tick.progress |= server.can_recv();
        }
        sample(net, &mut peak);
        tick.done = received == data.len();
        tick
    });
    let expected = data
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    assert_eq!(sum, expected);
    let transfer_peak = peak;

    // Close both ways; then dropping the sockets returns everything.
    client.close(&mut net.nodes[CLIENT].sockets);
    server.close(&mut net.nodes[SERVER].sockets);
    net.drive(100_000, |net| {
        let mut tick = Tick::default();
        let now = net.now;
        for (tls, side) in [(&mut client, CLIENT), (&mut server, SERVER)] {
            let sockets = &mut net.nodes[side].sockets;
            tick.poll(tls.poll(now, sockets));
            let _ = tls.recv_slice(sockets, &mut [0; 64]);
        }
        let done =
            |tls: &TlsSocket, side: usize, net: &Sim| tls.is_closed(&net.nodes[side].sockets);
        tick.done = done(&client, CLIENT, net) && done(&server, SERVER, net);
        tick
    });
    assert_eq!(
        client.recv_slice(&mut net.nodes[CLIENT].sockets, &mut [0; 4]),
        Err(Error::Finished)
    );
    drop(client);
    drop(server);
    net.nodes[CLIENT].sockets.remove(client_tcp);
    net.nodes[SERVER].sockets.remove(server_tcp);
    let left = live() as isize - base as isize - net.wire.heap_bytes() as isize;

    let per_connection_idle = idle / 2;
    let tls_idle = per_connection_idle - rings / 2;
    eprintln!(
        "memory per connection ({RX} B rx + {TX} B tx rings): rings + sockets {} B, \
         handshake peak {} B, established idle {} B (TLS part {} B), transfer peak {} B \
         (declared bound {} B), left after close {} B",
        rings / 2,
        handshake_peak / 2,
        per_connection_idle,
        tls_idle,
        transfer_peak / 2,
        declared_peak(RX, TX, &options),
        left
    );
    // Idle established: the rings plus rustls' state, no engine buffers.
    assert!(tls_idle <= RUSTLS_STATE, "idle TLS state {tls_idle} B");
    assert!(handshake_peak <= 2 * declared_peak(RX, TX, &options));
    assert!(transfer_peak <= 2 * declared_peak(RX, TX, &options));
    // And nothing leaks.
    assert!(left <= 0, "{left} B left after the connection was dropped");
}
