//! A deterministic network for tlsflow's smoltcp code: two smoltcp interfaces in one
//! process on an in-memory [`Wire`], and one bounded driver on a simulated clock
//! ([`Net::drive_bounded`]) for the tests, the benchmarks and `tlsflow demo`.
//!
//! The crate is `#![no_std]` with `alloc` (the freestanding proof uses it too) and has no
//! unsafe code. It reads no clock and draws no randomness of its own: time is
//! [`Net::now`], moved a fixed [`Net::round`] per poll round and, when a round makes no
//! progress, straight to the next event (a packet's delivery, a TCP timer, a deadline the
//! step names), so timeouts cost no real time. A round limit or an idle network with
//! nothing scheduled ends the drive with a [`Stall`] instead of a hang.
//!
//! It is not part of tls-unikernel's API and the release binary's TLS never runs on it:
//! only `tlsflow demo` moves bytes over it, in memory.
//!
//! ```
//! use smoltcp::socket::tcp;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{IpAddress, IpCidr};
//! use tls_netsim::{Net, Tick, Wire, A, B};
//!
//! let addrs = [
//!     IpCidr::new(IpAddress::v4(192, 0, 2, 1), 24),
//!     IpCidr::new(IpAddress::v4(192, 0, 2, 2), 24),
//! ];
//! let mut net = Net::new(Wire::new(1500), addrs, Instant::ZERO, 1);
//! let ring = || tcp::SocketBuffer::new(vec![0; 4096]);
//! let server = net.nodes[B].sockets.add(tcp::Socket::new(ring(), ring()));
//! let client = net.nodes[A].sockets.add(tcp::Socket::new(ring(), ring()));
//! net.tcp(B, server).listen(80).unwrap();
//! let side = &mut net.nodes[A];
//! let cx = side.iface.context();
//! let socket = side.sockets.get_mut::<tcp::Socket>(client);
//! socket.connect(cx, (IpAddress::v4(192, 0, 2, 2), 80), 49152).unwrap();
//! let rounds = net
//!     .drive_bounded(1000, |net| Tick::done_if(net.tcp(A, client).may_send()))
//!     .unwrap();
//! assert!(rounds >= 2 && net.wire.packets() >= 2);
//! ```

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod wire;

use alloc::vec::Vec;
use core::fmt;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Device, FaultInjector};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpCidr};
use tls_unikernel::PollAt;

pub use wire::{Wire, WireEnd, WireRx, WireTx};

/// Index of the first side of a [`Net`] (the client, by convention).
pub const A: usize = 0;
/// Index of the second side of a [`Net`] (the server, by convention).
pub const B: usize = 1;

/// Faults for smoltcp's `FaultInjector` around one end of the wire (seeded, so runs
/// repeat). Each packet meets two injectors, the sender's and the receiver's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Chance, in percent, that this injector drops a packet.
    pub drop_pct: u8,
    /// Chance, in percent, that this injector corrupts a packet (keep checksums on).
    pub corrupt_pct: u8,
    /// Packets above this size are dropped (`None`: no limit).
    pub max_packet_size: Option<usize>,
    /// At most this many packets per interval, each way (`None`: no limit).
    pub rate: Option<(u64, Duration)>,
}

impl Faults {
    /// `inner` behind a fault injector seeded with `seed`.
    pub fn inject<D: Device>(&self, inner: D, seed: u32) -> FaultInjector<D> {
        let mut dev = FaultInjector::new(inner, seed);
        dev.set_drop_chance(self.drop_pct);
        dev.set_corrupt_chance(self.corrupt_pct);
        if let Some(size) = self.max_packet_size {
            dev.set_max_packet_size(size);
        }
        if let Some((packets, interval)) = self.rate {
            dev.set_max_tx_rate(packets);
            dev.set_max_rx_rate(packets);
            dev.set_bucket_interval(interval);
        }
        dev
    }
}

/// One side of a [`Net`]: an interface, its device and its sockets.
pub struct Node<D = WireEnd> {
    /// The interface.
    pub iface: Interface,
    /// Its device (an end of the wire, perhaps wrapped).
    pub device: D,
    /// Its sockets.
    pub sockets: SocketSet<'static>,
}

impl<D: Device> Node<D> {
    /// An interface with one address on `device`; `seed` seeds smoltcp's randomness
    /// (initial sequence numbers, ephemeral ports), so runs repeat exactly.
    pub fn new(mut device: D, addr: IpCidr, now: Instant, seed: u64) -> Self {
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut device, now);
        iface.update_ip_addrs(|a| {
            // A fresh interface has room for several addresses.
            let _ = a.push(addr);
        });
        Self {
            iface,
            device,
            // Room for eight sockets up front: adding one then allocates nothing, which
            // the memory tests count on.
            sockets: SocketSet::new(Vec::with_capacity(8)),
        }
    }
}

/// What one round's step found (see [`Net::drive_bounded`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Tick {
    /// The drive is over.
    pub done: bool,
    /// Something moved (bytes or state): the round was not idle.
    pub progress: bool,
    /// The earliest time something wants to run again, besides the interfaces' timers.
    pub deadline: Option<Instant>,
}

impl Tick {
    /// Done if `done`, else an idle round.
    pub fn done_if(done: bool) -> Self {
        Self {
            done,
            ..Self::default()
        }
    }

    /// Folds one TLS socket's [`PollAt`] in: `Now` is progress, `Time` a deadline.
    pub fn poll(&mut self, at: PollAt) {
        match at {
            PollAt::Now => self.progress = true,
            PollAt::Time(t) => self.wake_at(t),
            PollAt::Ingress => {}
        }
    }

    /// Folds a deadline in.
    pub fn wake_at(&mut self, at: Instant) {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }
}

/// Why [`Net::drive_bounded`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// `max_rounds` rounds ran without an end.
    RoundLimit {
        /// Rounds run.
        rounds: u64,
    },
    /// A round made no progress and nothing is scheduled: nothing can ever happen again.
    Idle {
        /// Rounds run before the idle one.
        rounds: u64,
    },
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RoundLimit { rounds } => write!(f, "no end after {rounds} poll rounds"),
            Self::Idle { rounds } => {
                write!(f, "stalled: nothing left to happen after {rounds} rounds")
            }
        }
    }
}

impl core::error::Error for Stall {}

/// Two interfaces over one [`Wire`], and the simulated clock.
pub struct Net<D = WireEnd> {
    /// The wire between the interfaces.
    pub wire: Wire,
    /// The sides, indexed by [`A`] and [`B`].
    pub nodes: [Node<D>; 2],
    /// Simulated time.
    pub now: Instant,
    /// Simulated time one poll round takes (default 20 µs).
    pub round: Duration,
    /// Poll rounds run so far.
    pub rounds: u64,
}

impl Net<WireEnd> {
    /// Two interfaces on the bare ends of `wire`, with the addresses `addrs[A]` and
    /// `addrs[B]` (one subnet: there is no router), smoltcp seeded from `seed`.
    pub fn new(wire: Wire, addrs: [IpCidr; 2], now: Instant, seed: u64) -> Self {
        let node = |side: usize| {
            let seed = seed.wrapping_mul(2).wrapping_add(side as u64);
            Node::new(wire.end(side), addrs[side], now, seed)
        };
        let nodes = [node(A), node(B)];
        Self::from_nodes(wire, nodes, now)
    }
}

impl<D: Device> Net<D> {
    /// Two nodes built by the caller (for wrapped devices) on `wire`.
    pub fn from_nodes(wire: Wire, nodes: [Node<D>; 2], now: Instant) -> Self {
        Self {
            wire,
            nodes,
            now,
            round: Duration::from_micros(20),
            rounds: 0,
        }
    }

    /// The TCP socket `handle` of `side`.
    pub fn tcp(&mut self, side: usize, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.nodes[side].sockets.get_mut::<tcp::Socket>(handle)
    }

    /// Polls both interfaces once at [`now`](Self::now) (side A first); true if a
    /// socket's state changed or a packet was sent.
    pub fn poll_ifaces(&mut self) -> bool {
        let before = self.wire.packets();
        let mut changed = false;
        for node in &mut self.nodes {
            changed |= node
                .iface
                .poll(self.now, &mut node.device, &mut node.sockets)
                == PollResult::SocketStateChanged;
        }
        changed || self.wire.packets() != before
    }

    /// The next event: the earliest of a packet's delivery and the interfaces' timers.
    pub fn poll_at(&mut self) -> Option<Instant> {
        let mut next = self.wire.next_delivery();
        for node in &mut self.nodes {
            if let Some(at) = node.iface.poll_at(self.now, &node.sockets) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    /// Moves the clock to the next event or `deadline`, whichever is first; an event due
    /// now that did nothing gets a millisecond, so the clock never stands still. False
    /// when nothing is scheduled.
    pub fn advance(&mut self, deadline: Option<Instant>) -> bool {
        let next = match (self.poll_at(), deadline) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(at) => at,
                None => return false,
            },
        };
        self.now = if next > self.now {
            next
        } else {
            self.now + Duration::from_millis(1)
        };
        true
    }

    /// The one simulated-clock loop, over this net alone: [`drive_bounded`] with `step`
    /// given the net.
    pub fn drive_bounded<F>(&mut self, max_rounds: u64, step: F) -> Result<u64, Stall>
    where
        F: FnMut(&mut Self) -> Tick,
    {
        drive_bounded(self, max_rounds, |net| net, step)
    }
}

/// The one simulated-clock loop. `world` holds a [`Net`] (reached through `net`) and
/// whatever the application needs. Each round moves the net's clock by
/// [`Net::round`], polls both interfaces, then runs `step` (the application: it polls
/// its own sockets and says whether it is done, moved something, or waits for a
/// deadline). A round in which nothing moved jumps the clock to the next event
/// ([`Net::advance`]). Returns the rounds used, or a [`Stall`] after `max_rounds` rounds
/// or when nothing is left to happen.
pub fn drive_bounded<W, D, N, F>(
    world: &mut W,
    max_rounds: u64,
    net: N,
    mut step: F,
) -> Result<u64, Stall>
where
    D: Device,
    N: Fn(&mut W) -> &mut Net<D>,
    F: FnMut(&mut W) -> Tick,
{
    for used in 0..max_rounds {
        let sim = net(world);
        sim.rounds += 1;
        sim.now += sim.round;
        let mut progress = sim.poll_ifaces();
        let tick = step(world);
        if tick.done {
            return Ok(used + 1);
        }
        progress |= tick.progress;
        if !progress && !net(world).advance(tick.deadline) {
            return Err(Stall::Idle { rounds: used });
        }
    }
    Err(Stall::RoundLimit { rounds: max_rounds })
}
