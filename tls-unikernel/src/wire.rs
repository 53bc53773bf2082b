//! An in-memory wire between two smoltcp interfaces in one process, for demos,
//! benchmarks and examples that need a network but no privileges (no TAP, no TUN).
//!
//! A [`Wire`] holds two lossless FIFO queues of IP packets, one per direction. Each side
//! borrows its end as a smoltcp [`Device`] with [`Wire::end`] for the duration of one
//! `Interface::poll`; a packet one side transmits is received by the other side's next
//! poll, in order, with no delay. There is no clock, no loss and no reordering: the wire
//! is as fast and as deterministic as the two stacks on it. [`Pair`] puts two interfaces
//! and their socket sets on one wire.
//!
//! The medium is IP (feature `medium-ip`), so packets are plain IPv4/IPv6 datagrams.
//!
//! ```
//! use smoltcp::socket::tcp;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{IpAddress, IpCidr};
//! use tls_unikernel::wire::{Pair, Wire, A, B};
//!
//! let addrs = [
//!     IpCidr::new(IpAddress::v4(192, 0, 2, 1), 24),
//!     IpCidr::new(IpAddress::v4(192, 0, 2, 2), 24),
//! ];
//! let mut pair = Pair::new(Wire::new(1500), addrs, Instant::ZERO, 1);
//! let ring = || tcp::SocketBuffer::new(vec![0; 4096]);
//! let server = pair.sockets[B].add(tcp::Socket::new(ring(), ring()));
//! let client = pair.sockets[A].add(tcp::Socket::new(ring(), ring()));
//! pair.sockets[B].get_mut::<tcp::Socket>(server).listen(80).unwrap();
//! let cx = pair.ifaces[A].context();
//! pair.sockets[A]
//!     .get_mut::<tcp::Socket>(client)
//!     .connect(cx, (IpAddress::v4(192, 0, 2, 2), 80), 49152)
//!     .unwrap();
//! let mut now = Instant::ZERO;
//! while !pair.sockets[A].get::<tcp::Socket>(client).may_send() {
//!     now += smoltcp::time::Duration::from_millis(1);
//!     pair.poll(now);
//! }
//! assert!(pair.sockets[B].get::<tcp::Socket>(server).is_active());
//! assert!(pair.wire.packets() >= 2);
//! ```

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpCidr};

/// Index of the first side of a [`Wire`] or [`Pair`].
pub const A: usize = 0;
/// Index of the second side of a [`Wire`] or [`Pair`].
pub const B: usize = 1;

/// Most packet buffers a wire keeps for reuse per direction: enough for a full window of
/// segments in flight (256 KiB rings at MTU 1500 are about 180), so a bulk transfer
/// allocates no packet buffer once it runs; buffers beyond it are freed.
const SPARE_BUFFERS: usize = 256;

/// Two lossless packet queues, one per direction (see the [module docs](self)).
///
/// Packet buffers are reused, as a NIC reuses its descriptor rings: a buffer whose packet
/// has been received goes back to the wire, and the next packet sent in that direction
/// is written into it (without zero-filling: smoltcp writes every byte of a packet it
/// emits, padding included). Up to 256 buffers per direction are kept.
#[derive(Debug)]
pub struct Wire {
    /// `queues[side]`: packets waiting for `side` to receive them.
    queues: [VecDeque<Vec<u8>>; 2],
    /// `spare[side]`: buffers of packets `side` has received, for the next packets sent
    /// to `side`.
    spare: [Vec<Vec<u8>>; 2],
    mtu: usize,
    checksums: bool,
    packets: u64,
    bytes: u64,
}

impl Wire {
    /// A wire whose devices report this IP MTU (at most 65535; TCP's MSS is the MTU less
    /// 40 bytes of IPv4 and TCP headers). Checksums are computed and verified by both
    /// stacks, as on a real link without offload (see
    /// [`without_checksums`](Self::without_checksums)).
    pub fn new(mtu: usize) -> Self {
        Self {
            queues: [VecDeque::new(), VecDeque::new()],
            spare: [Vec::new(), Vec::new()],
            mtu: mtu.min(65535),
            checksums: true,
            packets: 0,
            bytes: 0,
        }
    }

    /// The same wire with its devices declaring checksum offload, as a NIC that computes
    /// and verifies checksums itself does (virtio-net with `VIRTIO_NET_F_CSUM` and
    /// `VIRTIO_NET_F_GUEST_CSUM`, for example): smoltcp then neither computes the IPv4,
    /// TCP and UDP checksums of what it sends nor verifies those of what it receives,
    /// which saves both stacks a pass over every byte. The wire computes none either: it
    /// never corrupts a packet, so there is nothing for a checksum to catch.
    ///
    /// Only for a link that cannot corrupt packets (like this one) or whose hardware
    /// really checks them; a simulation that corrupts packets must keep checksums on (the
    /// default of [`Wire::new`]).
    pub fn without_checksums(mut self) -> Self {
        self.checksums = false;
        self
    }

    /// The IP MTU the devices report.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The device of `side` ([`A`] or [`B`]), to pass to `Interface::poll` (or
    /// `Interface::new`). Panics if `side` is neither.
    pub fn end(&mut self, side: usize) -> WireEnd<'_> {
        assert!(side < 2, "a wire has two sides");
        WireEnd { wire: self, side }
    }

    /// Packets put on the wire so far, both directions.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// IP bytes (headers included) put on the wire so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets waiting for either side to receive them.
    pub fn in_flight(&self) -> usize {
        self.queues[A].len() + self.queues[B].len()
    }
}

/// One side of a [`Wire`], borrowed as a smoltcp [`Device`].
#[derive(Debug)]
pub struct WireEnd<'w> {
    wire: &'w mut Wire,
    side: usize,
}

/// A received packet ([`Device::RxToken`] of [`WireEnd`]); its buffer goes back to the
/// wire for reuse once consumed.
#[derive(Debug)]
pub struct WireRx<'a> {
    packet: Vec<u8>,
    spare: &'a mut Vec<Vec<u8>>,
}

impl phy::RxToken for WireRx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let r = f(&self.packet);
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(self.packet);
        }
        r
    }
}

/// Room for one packet to the other side ([`Device::TxToken`] of [`WireEnd`]).
#[derive(Debug)]
pub struct WireTx<'a> {
    queue: &'a mut VecDeque<Vec<u8>>,
    spare: &'a mut Vec<Vec<u8>>,
    packets: &'a mut u64,
    bytes: &'a mut u64,
}

impl phy::TxToken for WireTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = self.spare.pop().unwrap_or_default();
        // A reused buffer is not zeroed where it already has bytes: `f` writes the
        // whole packet.
        buf.resize(len, 0);
        let r = f(&mut buf);
        *self.packets += 1;
        *self.bytes += len as u64;
        self.queue.push_back(buf);
        r
    }
}

impl Device for WireEnd<'_> {
    type RxToken<'a>
        = WireRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = WireTx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(WireRx<'_>, WireTx<'_>)> {
        let side = self.side;
        let Wire {
            queues,
            spare,
            packets,
            bytes,
            ..
        } = &mut *self.wire;
        let [queue_a, queue_b] = queues;
        let [spare_a, spare_b] = spare;
        // Receive from our queue; transmit into the other side's.
        let ((rx_queue, rx_spare), (tx_queue, tx_spare)) = if side == A {
            ((queue_a, spare_a), (queue_b, spare_b))
        } else {
            ((queue_b, spare_b), (queue_a, spare_a))
        };
        let packet = rx_queue.pop_front()?;
        let rx = WireRx {
            packet,
            spare: rx_spare,
        };
        let tx = WireTx {
            queue: tx_queue,
            spare: tx_spare,
            packets,
            bytes,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<WireTx<'_>> {
        let other = 1 - self.side;
        let Wire {
            queues,
            spare,
            packets,
            bytes,
            ..
        } = &mut *self.wire;
        Some(WireTx {
            queue: &mut queues[other],
            spare: &mut spare[other],
            packets,
            bytes,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.wire.mtu;
        caps.checksum = if self.wire.checksums {
            ChecksumCapabilities::default()
        } else {
            ChecksumCapabilities::ignored()
        };
        caps
    }
}

/// Two smoltcp interfaces on one [`Wire`], each with its own socket set: side [`A`] and
/// side [`B`].
pub struct Pair {
    /// The wire between the interfaces.
    pub wire: Wire,
    /// The interfaces, indexed by [`A`] and [`B`].
    pub ifaces: [Interface; 2],
    /// The socket sets, indexed by [`A`] and [`B`].
    pub sockets: [SocketSet<'static>; 2],
}

impl Pair {
    /// Two interfaces on `wire`, with the addresses `addrs[A]` and `addrs[B]` (put them on
    /// one subnet: there is no router). `seed` seeds smoltcp's randomness (initial
    /// sequence numbers, ephemeral ports), so runs repeat exactly.
    pub fn new(mut wire: Wire, addrs: [IpCidr; 2], now: Instant, seed: u64) -> Self {
        let mut iface = |side: usize| {
            let mut config = Config::new(HardwareAddress::Ip);
            config.random_seed = seed.wrapping_mul(2).wrapping_add(side as u64);
            let mut iface = Interface::new(config, &mut wire.end(side), now);
            iface.update_ip_addrs(|a| {
                // A fresh interface has room for several addresses.
                let _ = a.push(addrs[side]);
            });
            iface
        };
        let ifaces = [iface(A), iface(B)];
        Self {
            wire,
            ifaces,
            sockets: [SocketSet::new(Vec::new()), SocketSet::new(Vec::new())],
        }
    }

    /// Polls both interfaces once (side A first); true if a socket's state changed or a
    /// packet was sent.
    pub fn poll(&mut self, now: Instant) -> bool {
        let before = self.wire.packets;
        let mut changed = false;
        for side in [A, B] {
            changed |=
                self.ifaces[side].poll(now, &mut self.wire.end(side), &mut self.sockets[side])
                    == PollResult::SocketStateChanged;
        }
        changed || self.wire.packets != before
    }

    /// The earliest time either interface wants to be polled again (`None`: only when a
    /// packet arrives or a socket is used).
    pub fn poll_at(&mut self, now: Instant) -> Option<Instant> {
        let a = self.ifaces[A].poll_at(now, &self.sockets[A]);
        let b = self.ifaces[B].poll_at(now, &self.sockets[B]);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
