//! A deterministic network simulation shared by the integration tests, on `tls_netsim`.
//!
//! Two smoltcp interfaces live in one process and talk over tls-netsim's [`Wire`]: every
//! packet gets a delivery time (latency plus seeded jitter, so a delay line reorders
//! them). Each interface's device is `FaultInjector<PcapWriter<WireEnd>>`: smoltcp's own
//! fault injector (seeded, so runs repeat exactly) drops, corrupts (checksums are on, so
//! TCP discards the damage), size-limits and rate-limits packets; the pcap writer records
//! the traffic when `TLSFLOW_PCAP=path` is set (the client's view goes to `path`, the
//! server's to `path.server`; combine with `TLSFLOW_SEED=n` to replay one failing seed).
//!
//! Time is simulated: each poll round takes [`ROUND_US`], and when a round makes no
//! progress the clock jumps to the next event
//! (a packet's delivery, a TCP timer, a TLS deadline), so retransmission timeouts cost
//! nothing. A round limit turns a stall into a failure instead of a hang
//! (`tls_netsim::drive_bounded`, the one loop).

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses its own part of this module"
)]

use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::phy::{FaultInjector, PcapMode, PcapSink, PcapWriter};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};
use tls_netsim::{Faults, Node, Stall, Wire, WireEnd};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_test::rng::Rng;
use tls_unikernel::tls_core::rustls::pki_types::ServerName;
use tls_unikernel::tls_core::rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use tls_unikernel::{Options, TlsSocket};

pub use tls_netsim::Tick;

pub const CLIENT_IP: IpAddress = IpAddress::v4(192, 0, 2, 1);
pub const SERVER_IP: IpAddress = IpAddress::v4(192, 0, 2, 2);
pub const PORT: u16 = 443;
pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

/// Simulated time one poll round takes.
pub const ROUND_US: u64 = 20;

/// IPv4 (20) + TCP (20) header bytes around each segment.
pub const HEADERS: usize = 40;

/// A pcap sink that writes to a file, or nowhere.
pub struct PcapFile(Option<std::io::BufWriter<std::fs::File>>);

impl PcapSink for PcapFile {
    fn write(&mut self, data: &[u8]) {
        if let Some(file) = &mut self.0 {
            file.write_all(data).expect("pcap write");
        }
    }

    fn flush(&mut self) {
        if let Some(file) = &mut self.0 {
            std::io::Write::flush(file).expect("pcap flush");
        }
    }
}

pub type Dev = FaultInjector<PcapWriter<WireEnd, PcapFile>>;

/// The simulated network of these tests: tls-netsim's, over [`Dev`]s.
pub type Sim = tls_netsim::Net<Dev>;

// ---------------------------------------------------------------------------- the network

/// Faults and sizes of one simulated network.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// TCP maximum segment size (the IP MTU is this plus 40).
    pub mss: usize,
    /// Per-packet loss, end to end, in percent (split over both fault injectors).
    pub loss_pct: u8,
    /// Per-packet corruption, end to end, in percent.
    pub corrupt_pct: u8,
    /// Rate limit: at most this many packets per `rate_interval_ms`, per direction.
    pub rate: Option<(u64, u64)>,
    /// One-way latency.
    pub latency_us: u64,
    /// Share of packets, in percent, that the delay line holds back (so that later
    /// packets overtake them).
    pub reorder_pct: u8,
    /// How long a held-back packet waits extra: between half this and this.
    pub reorder_delay_us: u64,
    /// Congestion control of every TCP socket (smoltcp's default: none).
    pub congestion: tcp::CongestionControl,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            mss: 1460,
            loss_pct: 0,
            corrupt_pct: 0,
            rate: None,
            latency_us: 1000,
            reorder_pct: 0,
            reorder_delay_us: 0,
            congestion: tcp::CongestionControl::None,
        }
    }
}

/// Two interfaces over one wire, and the simulated clock ([`Sim`], reached by deref),
/// with the congestion control its TCP sockets get.
pub struct Net {
    pub sim: Sim,
    pub congestion: tcp::CongestionControl,
}

impl Deref for Net {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.sim
    }
}

impl DerefMut for Net {
    fn deref_mut(&mut self) -> &mut Sim {
        &mut self.sim
    }
}

fn pcap_sink(side: usize) -> PcapFile {
    match std::env::var("TLSFLOW_PCAP") {
        Ok(path) if !path.is_empty() => {
            let path = if side == CLIENT {
                path
            } else {
                format!("{path}.server")
            };
            let file = std::fs::File::create(&path).expect("create pcap file");
            PcapFile(Some(std::io::BufWriter::new(file)))
        }
        _ => PcapFile(None),
    }
}

impl Net {
    pub fn new(cfg: &NetConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let wire = Wire::new(cfg.mss + HEADERS)
            .with_latency(Duration::from_micros(cfg.latency_us))
            .with_reordering(
                cfg.reorder_pct,
                Duration::from_micros(cfg.reorder_delay_us),
                rng.next_u64(),
            );
        let mtu = cfg.mss + HEADERS;
        let now = Instant::from_millis(1000);
        let faults = Faults {
            // Each packet meets two injectors (the sender's tx, the receiver's rx).
            drop_pct: cfg.loss_pct.div_ceil(2),
            corrupt_pct: cfg.corrupt_pct.div_ceil(2),
            // Size limit: anything above the MTU is dropped, so the stack must respect it.
            max_packet_size: Some(mtu),
            rate: cfg
                .rate
                .map(|(packets, ms)| (packets, Duration::from_millis(ms))),
        };
        let mut make = |side: usize, ip: IpAddress| {
            let pcap = PcapWriter::new(wire.end(side), pcap_sink(side), PcapMode::Both);
            let dev = faults.inject(pcap, rng.next_u64() as u32 | 1);
            Node::new(dev, IpCidr::new(ip, 24), now, rng.next_u64())
        };
        let nodes = [make(CLIENT, CLIENT_IP), make(SERVER, SERVER_IP)];
        let mut sim = Sim::from_nodes(wire, nodes, now);
        sim.round = Duration::from_micros(ROUND_US);
        Self {
            sim,
            congestion: cfg.congestion,
        }
    }

    /// Adds a TCP socket with the given rings on one side.
    pub fn add_tcp(&mut self, side: usize, rx: usize, tx: usize) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx]),
            tcp::SocketBuffer::new(vec![0; tx]),
        );
        socket.set_congestion_control(self.congestion);
        self.nodes[side].sockets.add(socket)
    }

    /// Runs rounds of a custom scenario: each round polls both interfaces, then `f`
    /// (which polls its own sockets and says whether it is done, made progress, or waits
    /// for a deadline). Fails the test on a stall or after `max_rounds`.
    pub fn drive<F>(&mut self, max_rounds: u64, f: F) -> u64
    where
        F: FnMut(&mut Net) -> Tick,
    {
        tls_netsim::drive_bounded(self, max_rounds, |net| &mut net.sim, f)
            .unwrap_or_else(|stall| panic!("{stall}"))
    }

    /// Makes a TLS client (for [`server_name`]) on the client's TCP socket `handle` and
    /// connects it from `local_port` to the server's [`PORT`].
    pub fn connect_client(
        &mut self,
        handle: SocketHandle,
        config: Arc<ClientConfig>,
        options: Options,
        local_port: u16,
    ) -> TlsSocket {
        let mut client = TlsSocket::client(handle, config, server_name(), options);
        let node = &mut self.nodes[CLIENT];
        client
            .connect(
                node.iface.context(),
                &mut node.sockets,
                (SERVER_IP, PORT),
                local_port,
            )
            .expect("connect");
        client
    }
}

// ---------------------------------------------------------------------------- certificates

pub struct Tls {
    pub server: Arc<ServerConfig>,
    pub client_any: Arc<ClientConfig>,
    pub client_13: Arc<ClientConfig>,
    pub client_12: Arc<ClientConfig>,
    /// A client that trusts another CA (the handshake must fail).
    pub client_untrusting: Arc<ClientConfig>,
}

/// Certificates and configs, made once per test process.
pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        // Ed25519: its signatures are deterministic and of fixed size, so every handshake
        // has the same length and a seed replays its run exactly (an ECDSA signature's
        // length varies by a byte or two, which shifts segment boundaries).
        let pki = Pki::new(KeyKind::Ed25519, &[]);
        let other = Pki::new(KeyKind::Ed25519, &[]);
        let with = |versions: &[&'static SupportedProtocolVersion]| CertOptions {
            versions: versions.to_vec(),
            ..Default::default()
        };
        Tls {
            server: Arc::new(pki.server_config(&CertOptions::default())),
            client_any: Arc::new(pki.client_config(&CertOptions::default())),
            client_13: Arc::new(pki.client_config(&with(tls_test::certs::TLS13))),
            client_12: Arc::new(pki.client_config(&with(tls_test::certs::TLS12))),
            client_untrusting: Arc::new(other.client_config(&CertOptions::default())),
        }
    })
}

pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

// ---------------------------------------------------------------------------- a client and a server

/// Rings and TLS settings of one [`Pair`].
#[derive(Clone, Debug)]
pub struct PairConfig {
    pub client_rx: usize,
    pub client_tx: usize,
    pub server_rx: usize,
    pub server_tx: usize,
    pub client_options: Options,
    pub server_options: Options,
    pub client_config: Arc<ClientConfig>,
    /// `None`: [`tls`]`().server`.
    pub server_config: Option<Arc<ServerConfig>>,
}

impl Default for PairConfig {
    fn default() -> Self {
        Self {
            client_rx: 16 * 1024,
            client_tx: 16 * 1024,
            server_rx: 16 * 1024,
            server_tx: 16 * 1024,
            client_options: Options::default(),
            server_options: Options::default(),
            client_config: tls().client_any.clone(),
            server_config: None,
        }
    }
}

/// A TLS client and a TLS server on a simulated network.
pub struct Pair {
    pub seed: u64,
    pub net: Net,
    pub tls: [TlsSocket; 2],
}

impl Pair {
    /// Builds the network, listens on the server and connects the client.
    pub fn new(net: &NetConfig, cfg: &PairConfig, seed: u64) -> Self {
        let mut net = Net::new(net, seed);
        let server_tcp = net.add_tcp(SERVER, cfg.server_rx, cfg.server_tx);
        let client_tcp = net.add_tcp(CLIENT, cfg.client_rx, cfg.client_tx);
        let server_config = cfg.server_config.clone().unwrap_or(tls().server.clone());
        let mut server = TlsSocket::server(server_tcp, server_config, cfg.server_options);
        server
            .listen(&mut net.nodes[SERVER].sockets, PORT)
            .expect("listen");
        let port = 49152 + (seed % 10_000) as u16;
        let client = net.connect_client(
            client_tcp,
            cfg.client_config.clone(),
            cfg.client_options,
            port,
        );
        Self {
            seed,
            net,
            tls: [client, server],
        }
    }

    /// The socket set of one side.
    pub fn sockets(&mut self, side: usize) -> &mut SocketSet<'static> {
        &mut self.net.nodes[side].sockets
    }

    /// One socket and its set, borrowed together.
    pub fn side(&mut self, side: usize) -> (&mut TlsSocket, &mut SocketSet<'static>) {
        (&mut self.tls[side], &mut self.net.nodes[side].sockets)
    }

    /// Polls both TLS sockets once at the network's time: progress and the earliest TLS
    /// deadline.
    pub fn poll_tls(&mut self) -> Tick {
        let mut tick = Tick::default();
        for side in [CLIENT, SERVER] {
            let now = self.net.now;
            tick.poll(self.tls[side].poll(now, &mut self.net.nodes[side].sockets));
        }
        tick
    }

    /// Runs rounds until `done` (checked after each round, with the application's own
    /// step folded in) holds. Fails the test after `max_rounds` rounds or when nothing is
    /// left to happen. Returns the rounds used.
    pub fn drive<F>(&mut self, max_rounds: u64, mut step: F) -> u64
    where
        F: FnMut(&mut Pair) -> Step,
    {
        // Time flows while the loop runs, as on a real machine (so nothing can ping-pong
        // forever at one instant); when nothing happens it jumps ahead.
        let driven = tls_netsim::drive_bounded(
            self,
            max_rounds,
            |pair| &mut pair.net.sim,
            |pair| {
                let mut tick = pair.poll_tls();
                match step(pair) {
                    Step::Done => tick.done = true,
                    Step::Progress => tick.progress = true,
                    Step::Idle => {}
                }
                tick
            },
        );
        match driven {
            Ok(rounds) => rounds,
            Err(stall @ Stall::RoundLimit { .. }) => {
                if let Some(wedge) = self.smoltcp_wedge() {
                    panic!("{wedge}: {stall}\n{}", self.describe());
                }
                panic!(
                    "{stall} (simulated time {} ms):\n{}",
                    self.net.now.total_millis(),
                    self.describe()
                );
            }
            Err(stall) => panic!("{stall}:\n{}", self.describe()),
        }
    }

    /// [`Pair::drive`] with an application that does nothing but wait for `done` to hold.
    pub fn drive_until<F>(&mut self, max_rounds: u64, mut done: F) -> u64
    where
        F: FnMut(&mut Pair) -> bool,
    {
        self.drive(
            max_rounds,
            |pair| {
                if done(pair) {
                    Step::Done
                } else {
                    Step::Idle
                }
            },
        )
    }

    /// Both sides' TLS and TCP state, for failure messages.
    pub fn describe(&mut self) -> String {
        let mut out = format!("seed {}\n", self.seed);
        for side in [CLIENT, SERVER] {
            let handle = self.tls[side].handle();
            let tcp = self.net.tcp(side, handle);
            out += &format!(
                "{}: tcp {} (send queue {}/{}, recv queue {}/{})\n  {:?}\n",
                if side == CLIENT { "client" } else { "server" },
                tcp.state(),
                tcp.send_queue(),
                tcp.send_capacity(),
                tcp.recv_queue(),
                tcp.recv_capacity(),
                self.tls[side]
            );
            if std::env::var("TLSFLOW_DEBUG").is_ok() {
                out += &format!("  {:?}\n", self.net.tcp(side, handle));
            }
        }
        out
    }

    /// The signature of the mutual-ACK-discard wedge that an unpatched smoltcp 0.14.0 ran
    /// into (`third_party/smoltcp/PATCHES.md`, change 1), if both TCP sockets show it: each
    /// has data unacknowledged, and the sequence number its pure ACKs carry falls outside
    /// the window the peer accepts, so each end discards every ACK of the other and
    /// neither can learn anything again (whatever timer it runs: retransmission,
    /// zero-window probe or keep-alive). Unpatched, ACKs carried `remote_last_seq`, which
    /// a timeout rewinds; patched, they carry `remote_max_seq`, the highest sequence
    /// number sent, and this must never happen. A stall fails either way; this only names
    /// it. Read from smoltcp's `Debug` output, the only place these fields show.
    pub fn smoltcp_wedge(&mut self) -> Option<String> {
        fn seq(debug: &str, name: &str) -> Option<u32> {
            let start = debug.find(name)? + name.len();
            let rest = &debug[start..];
            let end = rest.find(')')?;
            Some(rest[..end].parse::<i32>().ok()? as u32)
        }
        fn num(debug: &str, name: &str) -> Option<u32> {
            let start = debug.find(name)? + name.len();
            let rest = &debug[start..];
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            rest[..end].parse().ok()
        }
        struct View {
            last_seq: u32,
            window_start: u32,
            window_end: u32,
            unacked: bool,
        }
        let mut views = Vec::new();
        for side in [CLIENT, SERVER] {
            let handle = self.tls[side].handle();
            let tcp = self.net.tcp(side, handle);
            let debug = format!("{tcp:?}");
            let rcv_nxt = seq(&debug, "remote_seq_no: SeqNumber(")?;
            let last_ack = seq(&debug, "remote_last_ack: Some(SeqNumber(")?;
            let last_win = num(&debug, "remote_last_win: ")?;
            let shift = num(&debug, "remote_win_shift: ")?;
            // The patched stack's ACK sequence number; an unpatched one's.
            let ack_seq = seq(&debug, "remote_max_seq: SeqNumber(")
                .or_else(|| seq(&debug, "remote_last_seq: SeqNumber("))?;
            views.push(View {
                last_seq: ack_seq,
                window_start: rcv_nxt.wrapping_add(tcp.recv_queue() as u32),
                window_end: last_ack.wrapping_add(last_win << shift),

                unacked: tcp.send_queue() > 0,
            });
        }
        let outside = |seq: u32, peer: &View| {
            let from_start = seq.wrapping_sub(peer.window_start) as i32;
            let to_end = peer.window_end.wrapping_sub(seq) as i32;
            from_start < 0 || to_end < 0
        };
        let wedged = (0..2).all(|i| {
            let (me, peer) = (&views[i], &views[1 - i]);
            me.unacked && outside(me.last_seq, peer)
        });
        wedged.then(|| format!("smoltcp wedge (seed {})", self.seed))
    }

    /// Drives until both handshakes are complete.
    pub fn handshake(&mut self, max_rounds: u64) -> u64 {
        self.drive_until(max_rounds, |pair| {
            pair.tls[CLIENT].is_established() && pair.tls[SERVER].is_established()
        })
    }
}

/// What the application did in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The scenario is over.
    Done,
    /// The application moved bytes or changed state.
    Progress,
    /// Nothing.
    Idle,
}

impl Step {
    /// [`Step::Done`] if `done`, else [`Step::Progress`] if `progress`, else [`Step::Idle`].
    pub fn of(done: bool, progress: bool) -> Self {
        if done {
            Self::Done
        } else if progress {
            Self::Progress
        } else {
            Self::Idle
        }
    }
}
