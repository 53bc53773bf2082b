//! TLS over smoltcp (tls-unikernel) against plain TCP on the same stacks and against
//! tls-core alone, all in one process and in memory. See `benches/README.md`.
//!
//! Two smoltcp 0.14 interfaces are joined by `tls_netsim`'s wire (lossless, no delay)
//! and driven by its bounded simulated-clock loop. Each iteration moves 1 MiB client -> server over an
//! established connection, in 16 KiB writes, into a 64 KiB read buffer:
//!
//! * `unikernel/<mtu>/tls-smoltcp`: `TlsSocket::send_slice` / `recv_slice`, TLS 1.3
//!   AES-128-GCM, over smoltcp TCP.
//! * `unikernel/<mtu>/tcp-smoltcp`: the same transfer with `tcp::Socket` directly.
//! * `unikernel/tls-core`: two `tls_core::Session`s, ciphertext copied from one to the
//!   other (as `benches/core.rs`'s bulk path), no TCP at all.
//!
//! `<mtu>` is `mtu1500` or `mtu9000` with checksums computed and verified by both stacks
//! (the default wire), or `mtu1500-offload` / `mtu9000-offload` on a wire that declares
//! checksum offload (`Wire::without_checksums`, as a NIC with offload would).
//!
//! `PAIRED=1 cargo bench --bench unikernel` skips criterion and times the three
//! alternately, 1 MiB at a time, and prints the median of the per-slice ratios.
//! `PROFILE=<case>` runs one case alone for a profiler (see `run_profile`).

use core::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{Error as TlsError, Event, Limits, Session};
use tls_netsim::{Net as Pair, Tick, Wire, A, B};
use tls_test::certs::{KeyKind, Options, Pki, TLS13};
use tls_unikernel::smoltcp::iface::SocketHandle;
use tls_unikernel::smoltcp::socket::tcp;
use tls_unikernel::smoltcp::time::{Duration as NetDuration, Instant as NetInstant};
use tls_unikernel::smoltcp::wire::{IpAddress, IpCidr};
use tls_unikernel::{Options as NetOptions, TlsSocket};

/// Plaintext moved client to server per iteration.
const BYTES: usize = 1 << 20;
/// Size of one application write.
const WRITE: usize = 16 * 1024;
/// The receiver's application buffer.
const APP_BUF: usize = 64 * 1024;
/// TCP rings, each way.
const RING: usize = 256 * 1024;
/// Simulated time per poll round.
const ROUND: NetDuration = NetDuration::from_micros(10);
const SERVER_IP: IpAddress = IpAddress::v4(192, 0, 2, 2);
/// Wires measured: IP MTU (Ethernet, jumbo frames) and whether the device declares
/// checksum offload.
const WIRES: [(usize, bool); 4] = [(1500, false), (9000, false), (1500, true), (9000, true)];

/// The name of a wire configuration in the output.
fn wire_name((mtu, offload): (usize, bool)) -> String {
    if offload {
        format!("mtu{mtu}-offload")
    } else {
        format!("mtu{mtu}")
    }
}

fn configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let opts = Options {
        versions: TLS13.to_vec(),
        suites: vec![rustls::CipherSuite::TLS13_AES_128_GCM_SHA256],
        ..Options::default()
    };
    (
        Arc::new(pki.client_config(&opts)),
        Arc::new(pki.server_config(&opts)),
    )
}

/// What runs over the two stacks.
enum Endpoints {
    Tls {
        client: Box<TlsSocket>,
        server: Box<TlsSocket>,
    },
    Tcp {
        client: SocketHandle,
        server: SocketHandle,
    },
}

/// Two smoltcp interfaces on an in-memory wire with one connection between them.
struct Net {
    pair: Pair,
    ends: Endpoints,
    pattern: Vec<u8>,
    buf: Vec<u8>,
}

impl Net {
    fn new(
        (mtu, offload): (usize, bool),
        tls: Option<(&Arc<ClientConfig>, &Arc<ServerConfig>)>,
    ) -> Self {
        let now = NetInstant::from_secs(1);
        let addrs = [
            IpCidr::new(IpAddress::v4(192, 0, 2, 1), 24),
            IpCidr::new(SERVER_IP, 24),
        ];
        let wire = if offload {
            Wire::new(mtu).without_checksums()
        } else {
            Wire::new(mtu)
        };
        let mut pair = Pair::new(wire, addrs, now, 7);
        pair.round = ROUND;
        let mut add = |side: usize| {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; RING]),
                tcp::SocketBuffer::new(vec![0; RING]),
            );
            socket.set_ack_delay(None);
            socket.set_nagle_enabled(false);
            pair.nodes[side].sockets.add(socket)
        };
        let (client_tcp, server_tcp) = (add(A), add(B));
        let cx = pair.nodes[A].iface.context();
        let ends = match tls {
            Some((client_config, server_config)) => {
                let mut server =
                    TlsSocket::server(server_tcp, server_config.clone(), NetOptions::default());
                server
                    .listen(&mut pair.nodes[B].sockets, 443)
                    .expect("listen");
                let name = ServerName::try_from("localhost").expect("name");
                let mut client = TlsSocket::client(
                    client_tcp,
                    client_config.clone(),
                    name,
                    NetOptions::default(),
                );
                client
                    .connect(cx, &mut pair.nodes[A].sockets, (SERVER_IP, 443), 49152)
                    .expect("connect");
                Endpoints::Tls {
                    client: Box::new(client),
                    server: Box::new(server),
                }
            }
            None => {
                pair.nodes[B]
                    .sockets
                    .get_mut::<tcp::Socket>(server_tcp)
                    .listen(443)
                    .expect("listen");
                pair.nodes[A]
                    .sockets
                    .get_mut::<tcp::Socket>(client_tcp)
                    .connect(cx, (SERVER_IP, 443), 49152)
                    .expect("connect");
                Endpoints::Tcp {
                    client: client_tcp,
                    server: server_tcp,
                }
            }
        };
        let mut net = Self {
            pair,
            ends,
            pattern: (0..WRITE).map(|i| ((i * 31) ^ (i >> 7)) as u8).collect(),
            buf: vec![0; APP_BUF],
        };
        net.drive(|pair, ends, _, _| match ends {
            Endpoints::Tls { client, server } => {
                (client.is_established() && server.is_established(), false)
            }
            Endpoints::Tcp { client, server } => (
                pair.tcp(A, *client).may_send() && pair.tcp(B, *server).may_recv(),
                false,
            ),
        });
        net
    }

    /// Poll rounds until `step` (which returns done and whether it moved bytes) is done,
    /// on tls-netsim's bounded loop; a stall fails the bench.
    fn drive(
        &mut self,
        mut step: impl FnMut(&mut Pair, &mut Endpoints, &[u8], &mut [u8]) -> (bool, bool),
    ) {
        let Self {
            pair,
            ends,
            pattern,
            buf,
        } = self;
        pair.drive_bounded(u64::MAX, |pair| {
            let mut tick = Tick::default();
            if let Endpoints::Tls { client, server } = ends {
                tick.poll(client.poll(pair.now, &mut pair.nodes[A].sockets));
                tick.poll(server.poll(pair.now, &mut pair.nodes[B].sockets));
            }
            let (done, moved) = step(pair, ends, pattern, buf);
            tick.done = done;
            tick.progress |= moved;
            tick
        })
        .expect("stalled");
    }

    /// Moves `BYTES` client -> server.
    fn transfer(&mut self) {
        let (mut sent, mut got) = (0usize, 0usize);
        self.drive(|pair, ends, pattern, buf| {
            let [client, server] = &mut pair.nodes;
            let (client_set, server_set) = (&mut client.sockets, &mut server.sockets);
            let before = (sent, got);
            while sent < BYTES {
                let offset = sent % WRITE;
                let chunk = &pattern[offset..WRITE.min(offset + BYTES - sent)];
                let n = match ends {
                    Endpoints::Tls { client, .. } => client.send_slice(client_set, chunk),
                    Endpoints::Tcp { client, .. } => Ok(client_set
                        .get_mut::<tcp::Socket>(*client)
                        .send_slice(chunk)
                        .expect("tcp send")),
                }
                .expect("send");
                if n == 0 {
                    break;
                }
                sent += n;
            }
            loop {
                let n = match ends {
                    Endpoints::Tls { server, .. } => server.recv_slice(server_set, buf),
                    Endpoints::Tcp { server, .. } => Ok(server_set
                        .get_mut::<tcp::Socket>(*server)
                        .recv_slice(buf)
                        .expect("tcp recv")),
                }
                .expect("recv");
                if n == 0 {
                    break;
                }
                black_box(&buf[..n]);
                got += n;
            }
            (got >= BYTES, (sent, got) != before)
        });
    }
}

/// tls-core alone: a client and a server `Session`, ciphertext copied between them.
struct Core {
    client: Session,
    server: Session,
    pattern: Vec<u8>,
    buf: Vec<u8>,
}

fn shuttle(from: &mut Session, to: &mut Session) -> usize {
    let n = to.read_tls(from.pending_tls()).expect("receive");
    from.tls_written(n);
    n
}

impl Core {
    fn new(client_config: &Arc<ClientConfig>, server_config: &Arc<ServerConfig>) -> Self {
        let name = ServerName::try_from("localhost").expect("name");
        let mut client =
            Session::client(client_config.clone(), name, Limits::default()).expect("client");
        let mut server = Session::server(server_config.clone(), Limits::default()).expect("server");
        while shuttle(&mut client, &mut server) + shuttle(&mut server, &mut client) > 0 {}
        for s in [&mut client, &mut server] {
            while let Some(e) = s.poll_event() {
                black_box(matches!(e, Event::HandshakeComplete(_)));
            }
            assert!(!s.is_handshaking());
        }
        Self {
            client,
            server,
            pattern: (0..WRITE).map(|i| ((i * 31) ^ (i >> 7)) as u8).collect(),
            buf: vec![0; APP_BUF],
        }
    }

    fn transfer(&mut self) {
        let (mut sent, mut got) = (0usize, 0usize);
        while got < BYTES {
            while sent < BYTES {
                let offset = sent % WRITE;
                let chunk = &self.pattern[offset..WRITE.min(offset + BYTES - sent)];
                let n = self.client.send(chunk).expect("send");
                if n == 0 {
                    break;
                }
                sent += n;
            }
            shuttle(&mut self.client, &mut self.server);
            loop {
                match self.server.recv(&mut self.buf) {
                    Ok(0) => panic!("early end"),
                    Ok(n) => {
                        black_box(&self.buf[..n]);
                        got += n;
                    }
                    Err(TlsError::WouldBlock) => break,
                    Err(e) => panic!("recv: {e:?}"),
                }
            }
        }
    }
}

fn criterion_benches(c: &mut Criterion) {
    let (client_config, server_config) = configs();
    let mut group = c.benchmark_group("unikernel");
    group.throughput(Throughput::Bytes(BYTES as u64));
    for wire in WIRES {
        let name = wire_name(wire);
        let mut tls = Net::new(wire, Some((&client_config, &server_config)));
        group.bench_function(format!("{name}/tls-smoltcp"), |b| b.iter(|| tls.transfer()));
        let mut tcp = Net::new(wire, None);
        group.bench_function(format!("{name}/tcp-smoltcp"), |b| b.iter(|| tcp.transfer()));
    }
    let mut core = Core::new(&client_config, &server_config);
    group.bench_function("tls-core", |b| b.iter(|| core.transfer()));
    group.finish();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times tls-core, TLS over smoltcp and plain TCP over smoltcp alternately, one 1 MiB
/// transfer each per slice, for `PAIRED_SECS` (default 3) per MTU; prints per-slice
/// medians and the median of the per-slice ratios.
fn run_paired() {
    let budget = std::env::var("PAIRED_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(3), Duration::from_secs_f64);
    let (client_config, server_config) = configs();
    let mut core = Core::new(&client_config, &server_config);
    println!(
        "{:<16} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "paired", "tls-core", "tls-smoltcp", "tcp-smoltcp", "tls-smol/core", "tls-smol/tcp"
    );
    for wire in WIRES {
        let mut tls = Net::new(wire, Some((&client_config, &server_config)));
        let mut tcp = Net::new(wire, None);
        let time = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        };
        // Warm-up.
        for _ in 0..3 {
            core.transfer();
            tls.transfer();
            tcp.transfer();
        }
        let (mut tc, mut ts, mut pt, mut r_core, mut r_tcp) =
            (vec![], vec![], vec![], vec![], vec![]);
        let start = Instant::now();
        while start.elapsed() < budget {
            let c = time(&mut || core.transfer());
            let s = time(&mut || tls.transfer());
            let p = time(&mut || tcp.transfer());
            tc.push(c);
            ts.push(s);
            pt.push(p);
            // Throughput ratios: (a) / (c) and (a) / (b).
            r_core.push(c / s);
            r_tcp.push(p / s);
        }
        let mbs = |secs: f64| BYTES as f64 / secs / 1e6;
        println!(
            "{:<16} {:>7.0} MB/s {:>7.0} MB/s {:>7.0} MB/s {:>14.3} {:>14.3}   ({} slices)",
            wire_name(wire),
            mbs(median(&mut tc)),
            mbs(median(&mut ts)),
            mbs(median(&mut pt)),
            median(&mut r_core),
            median(&mut r_tcp),
            tc.len()
        );
    }
}

/// Runs one case alone, `PROFILE_ITERS` (default 200) transfers of 1 MiB, for a profiler
/// (`perf record`, `valgrind --tool=callgrind`): `PROFILE=tls-smoltcp|tcp-smoltcp|tls-core`,
/// `MTU` (default 1500), `OFFLOAD=1` for the wire with checksum offload. Prints the rate
/// and the packets the wire carried per MiB.
fn run_profile(case: &str) {
    let iters: usize = std::env::var("PROFILE_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mtu: usize = std::env::var("MTU")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let offload = std::env::var_os("OFFLOAD").is_some_and(|v| v != "0");
    let (client_config, server_config) = configs();
    let wire = std::rc::Rc::new(std::cell::Cell::new((0u64, 0u64, 0u64)));
    let counts = wire.clone();
    let mut run: Box<dyn FnMut()> = match case {
        "tls-smoltcp" | "tcp-smoltcp" => {
            let tls = (case == "tls-smoltcp").then_some((&client_config, &server_config));
            let mut net = Net::new((mtu, offload), tls);
            let start = (
                net.pair.wire.packets(),
                net.pair.wire.bytes(),
                net.pair.rounds,
            );
            Box::new(move || {
                net.transfer();
                let w = &net.pair.wire;
                counts.set((
                    w.packets() - start.0,
                    w.bytes() - start.1,
                    net.pair.rounds - start.2,
                ));
            })
        }
        "tls-core" => {
            let mut core = Core::new(&client_config, &server_config);
            Box::new(move || core.transfer())
        }
        other => panic!("PROFILE={other}: expected tls-smoltcp, tcp-smoltcp or tls-core"),
    };
    let t = Instant::now();
    for _ in 0..iters {
        run();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{case} {}: {iters} x 1 MiB in {secs:.3} s ({:.0} MB/s)",
        wire_name((mtu, offload)),
        (iters * BYTES) as f64 / secs / 1e6
    );
    let (packets, bytes, rounds) = wire.get();
    if packets > 0 {
        println!(
            "wire: {:.0} packets and {:.0} IP bytes per 1 MiB ({:.0} bytes per packet), \
             {:.0} poll rounds per 1 MiB",
            packets as f64 / iters as f64,
            bytes as f64 / iters as f64,
            bytes as f64 / packets as f64,
            rounds as f64 / iters as f64
        );
    }
}

fn main() {
    if let Ok(case) = std::env::var("PROFILE") {
        run_profile(&case);
        return;
    }
    if std::env::var_os("PAIRED").is_some() {
        run_paired();
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
