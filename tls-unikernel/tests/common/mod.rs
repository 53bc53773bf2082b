//! A deterministic network simulation shared by the integration tests.
//!
//! Two smoltcp interfaces live in one process and talk over an in-memory [`Wire`]: every
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
//! nothing. A round limit turns a stall into a failure instead of a hang.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses its own part of this module"
)]

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{
    self, ChecksumCapabilities, Device, DeviceCapabilities, FaultInjector, Medium, PcapMode,
    PcapSink, PcapWriter,
};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_test::rng::Rng;
use tls_unikernel::tls_core::rustls::pki_types::ServerName;
use tls_unikernel::tls_core::rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use tls_unikernel::{Options, PollAt, TlsSocket};

pub const CLIENT_IP: IpAddress = IpAddress::v4(192, 0, 2, 1);
pub const SERVER_IP: IpAddress = IpAddress::v4(192, 0, 2, 2);
pub const PORT: u16 = 443;
pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

/// Simulated time one poll round takes.
pub const ROUND_US: u64 = 20;

/// IPv4 (20) + TCP (20) header bytes around each segment.
pub const HEADERS: usize = 40;

// ---------------------------------------------------------------------------- the wire

type Queue = BinaryHeap<(Reverse<(i64, u64)>, Vec<u8>)>;

/// Packets in flight, one queue per destination side, ordered by delivery time.
pub struct Wire {
    queues: [Queue; 2],
    rng: Rng,
    latency: Duration,
    reorder_pct: u8,
    reorder_delay_us: u64,
    seq: u64,
    /// Packets put on the wire so far (after the sender's faults).
    pub packets: u64,
    /// Bytes of packet buffers in flight (for the memory test).
    pub in_flight: usize,
}

impl Wire {
    fn push(&mut self, to: usize, now: Instant, data: Vec<u8>) {
        // The delay line: a few packets are held back, so later ones overtake them.
        let delay = if self.reorder_pct > 0 && self.rng.below(100) < usize::from(self.reorder_pct) {
            self.rng.range(
                self.reorder_delay_us as usize / 2,
                self.reorder_delay_us as usize,
            ) as u64
        } else {
            0
        };
        let at = now + self.latency + Duration::from_micros(delay);
        self.seq += 1;
        self.packets += 1;
        self.in_flight += data.capacity();
        self.queues[to].push((Reverse((at.total_micros(), self.seq)), data));
    }

    /// Heap bytes the wire holds now: packet buffers and the queues' own storage.
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(Reverse<(i64, u64)>, Vec<u8>)>();
        self.in_flight
            + self
                .queues
                .iter()
                .map(|q| q.capacity() * entry)
                .sum::<usize>()
    }

    /// The earliest delivery time of any packet in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|q| {
                q.peek()
                    .map(|(Reverse((at, _)), _)| Instant::from_micros(*at))
            })
            .min()
    }
}

/// One end of the [`Wire`]: an IP-medium device with checksums computed and verified.
pub struct WireEnd {
    wire: Rc<RefCell<Wire>>,
    side: usize,
    mtu: usize,
}

pub struct WireRx(Vec<u8>);

impl phy::RxToken for WireRx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

pub struct WireTx {
    wire: Rc<RefCell<Wire>>,
    to: usize,
    now: Instant,
}

impl phy::TxToken for WireTx {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.wire.borrow_mut().push(self.to, self.now, buf);
        r
    }
}

impl Device for WireEnd {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx;

    fn receive(&mut self, now: Instant) -> Option<(WireRx, WireTx)> {
        let mut wire = self.wire.borrow_mut();
        let queue = &mut wire.queues[self.side];
        let (Reverse((at, _)), _) = queue.peek()?;
        if *at > now.total_micros() {
            return None;
        }
        let (_, data) = queue.pop()?;
        wire.in_flight -= data.capacity();
        drop(wire);
        let tx = WireTx {
            wire: self.wire.clone(),
            to: 1 - self.side,
            now,
        };
        Some((WireRx(data), tx))
    }

    fn transmit(&mut self, now: Instant) -> Option<WireTx> {
        Some(WireTx {
            wire: self.wire.clone(),
            to: 1 - self.side,
            now,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

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

pub struct Node {
    pub iface: Interface,
    pub dev: Dev,
    pub sockets: SocketSet<'static>,
}

/// Two interfaces over one wire, and the simulated clock.
pub struct Net {
    pub now: Instant,
    pub wire: Rc<RefCell<Wire>>,
    pub nodes: [Node; 2],
    pub rounds: u64,
    pub congestion: tcp::CongestionControl,
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
        let wire = Rc::new(RefCell::new(Wire {
            queues: [BinaryHeap::new(), BinaryHeap::new()],
            rng: Rng::new(rng.next_u64()),
            latency: Duration::from_micros(cfg.latency_us),
            reorder_pct: cfg.reorder_pct,
            reorder_delay_us: cfg.reorder_delay_us,
            seq: 0,
            packets: 0,
            in_flight: 0,
        }));
        let mtu = cfg.mss + HEADERS;
        let now = Instant::from_millis(1000);
        let mut make = |side: usize, ip: IpAddress| {
            let end = WireEnd {
                wire: wire.clone(),
                side,
                mtu,
            };
            let pcap = PcapWriter::new(end, pcap_sink(side), PcapMode::Both);
            let mut dev = FaultInjector::new(pcap, rng.next_u64() as u32 | 1);
            // Each packet meets two injectors (the sender's tx, the receiver's rx).
            dev.set_drop_chance(cfg.loss_pct.div_ceil(2));
            dev.set_corrupt_chance(cfg.corrupt_pct.div_ceil(2));
            // Size limit: anything above the MTU is dropped, so the stack must respect it.
            dev.set_max_packet_size(mtu);
            if let Some((packets, interval_ms)) = cfg.rate {
                dev.set_max_tx_rate(packets);
                dev.set_max_rx_rate(packets);
                dev.set_bucket_interval(Duration::from_millis(interval_ms));
            }
            let mut config = Config::new(HardwareAddress::Ip);
            config.random_seed = rng.next_u64();
            let mut iface = Interface::new(config, &mut dev, now);
            iface.update_ip_addrs(|addrs| addrs.push(IpCidr::new(ip, 24)).unwrap());
            Node {
                iface,
                dev,
                sockets: SocketSet::new(Vec::with_capacity(8)),
            }
        };
        let client = make(CLIENT, CLIENT_IP);
        let server = make(SERVER, SERVER_IP);
        Self {
            now,
            wire,
            nodes: [client, server],
            rounds: 0,
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

    /// Polls both interfaces once; true if anything happened.
    pub fn poll_ifaces(&mut self) -> bool {
        let before = self.wire.borrow().packets;
        let mut changed = false;
        for node in &mut self.nodes {
            changed |= node.iface.poll(self.now, &mut node.dev, &mut node.sockets)
                == PollResult::SocketStateChanged;
        }
        changed || self.wire.borrow().packets != before
    }

    /// Moves the clock to the next event: the earliest of the wire's next delivery, the
    /// interfaces' timers and `extra`. False when there is none (a stall).
    pub fn advance(&mut self, extra: Option<Instant>) -> bool {
        let mut next = self.wire.borrow().next_delivery();
        for node in &mut self.nodes {
            if let Some(at) = node.iface.poll_at(self.now, &node.sockets) {
                next = Some(next.map_or(at, |n: Instant| n.min(at)));
            }
        }
        if let Some(at) = extra {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        match next {
            Some(at) => {
                // Never stand still: a timer due "now" that did nothing gets a millisecond.
                self.now = if at > self.now {
                    at
                } else {
                    self.now + Duration::from_millis(1)
                };
                true
            }
            None => false,
        }
    }

    /// Runs rounds of a custom scenario: each round polls both interfaces, then `f`
    /// (which polls its own sockets and says whether it is done, made progress, or waits
    /// for a deadline). Fails the test on a stall or after `max_rounds`.
    pub fn drive<F>(&mut self, max_rounds: u64, mut f: F) -> u64
    where
        F: FnMut(&mut Net) -> Tick,
    {
        let start = self.rounds;
        loop {
            let used = self.rounds - start;
            assert!(used < max_rounds, "no end after {used} poll rounds");
            self.rounds += 1;
            self.now += Duration::from_micros(ROUND_US);
            let mut progress = self.poll_ifaces();
            let tick = f(self);
            if tick.done {
                return used + 1;
            }
            progress |= tick.progress;
            if !progress {
                assert!(
                    self.advance(tick.deadline),
                    "stalled after {used} poll rounds"
                );
            }
        }
    }

    pub fn tcp(&mut self, side: usize, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.nodes[side].sockets.get_mut::<tcp::Socket>(handle)
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

/// Folds a socket's [`PollAt`] into "progress" and "next deadline".
pub fn fold_poll(at: PollAt, progress: &mut bool, deadline: &mut Option<Instant>) {
    match at {
        PollAt::Now => *progress = true,
        PollAt::Time(t) => *deadline = Some(deadline.map_or(t, |d: Instant| d.min(t))),
        PollAt::Ingress => {}
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

    /// Polls the network and both TLS sockets once. Returns progress and the earliest
    /// TLS deadline.
    pub fn poll(&mut self) -> (bool, Option<Instant>) {
        let mut progress = self.net.poll_ifaces();
        let mut deadline = None;
        for side in [CLIENT, SERVER] {
            let now = self.net.now;
            let at = self.tls[side].poll(now, &mut self.net.nodes[side].sockets);
            fold_poll(at, &mut progress, &mut deadline);
        }
        (progress, deadline)
    }

    /// Runs rounds until `done` (checked after each round, with the application's own
    /// step folded in) holds. Fails the test after `max_rounds` rounds or when nothing is
    /// left to happen. Returns the rounds used.
    pub fn drive<F>(&mut self, max_rounds: u64, mut step: F) -> u64
    where
        F: FnMut(&mut Pair) -> Step,
    {
        let start = self.net.rounds;
        loop {
            let used = self.net.rounds - start;
            if used >= max_rounds {
                if let Some(wedge) = self.smoltcp_wedge() {
                    panic!(
                        "{wedge}: no end after {used} poll rounds\n{}",
                        self.describe()
                    );
                }
                panic!(
                    "no end after {used} poll rounds (simulated time {} ms):\n{}",
                    self.net.now.total_millis(),
                    self.describe()
                );
            }
            self.net.rounds += 1;
            // Time flows while the loop runs, as on a real machine (so nothing can
            // ping-pong forever at one instant); when nothing happens it jumps ahead.
            self.net.now += Duration::from_micros(ROUND_US);
            let (mut progress, deadline) = self.poll();
            match step(self) {
                Step::Done => return self.net.rounds - start,
                Step::Progress => progress = true,
                Step::Idle => {}
            }
            if !progress {
                assert!(
                    self.net.advance(deadline),
                    "stalled: nothing left to happen after {used} rounds:\n{}",
                    self.describe()
                );
            }
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

/// What one round of [`Net::drive`] found.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tick {
    pub done: bool,
    pub progress: bool,
    pub deadline: Option<Instant>,
}

impl Tick {
    /// Folds one socket's [`PollAt`] in.
    pub fn poll(&mut self, at: PollAt) {
        fold_poll(at, &mut self.progress, &mut self.deadline);
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
