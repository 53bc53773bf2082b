//! The in-memory wire: two packet queues, one per direction, with a delivery time per
//! packet (latency, plus a seeded delay line that reorders a share of them).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::{Duration, Instant};

/// Most packet buffers a wire keeps for reuse per direction: enough for a full window of
/// segments in flight (256 KiB rings at MTU 1500 are about 180), so a bulk transfer
/// allocates no packet buffer once it runs; buffers beyond it are freed.
const SPARE_BUFFERS: usize = 256;

/// xorshift64* with the seed mixing of `tls_test::rng::Rng`, so a seed draws the same
/// delays here as it did there.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[derive(Debug)]
struct Link {
    /// `queues[side]`: packets waiting for `side`, by delivery time (µs), FIFO on ties.
    queues: [VecDeque<(i64, Vec<u8>)>; 2],
    /// `spare[side]`: buffers of packets `side` has received, for the next packets sent
    /// to `side` (as a NIC reuses its descriptor rings).
    spare: [Vec<Vec<u8>>; 2],
    mtu: usize,
    checksums: bool,
    latency: Duration,
    /// Share of packets, in percent, the delay line holds back, and the longest extra wait.
    reorder: (u8, Duration),
    rng: Rng,
    packets: u64,
    bytes: u64,
    /// Capacity of the buffers of packets in flight.
    in_flight_bytes: usize,
}

/// Two packet queues, one per direction; cheap to clone (the clones share the queues).
///
/// By default lossless, in order and without delay: a packet one side transmits is
/// received by the other side's next poll. [`with_latency`](Self::with_latency) and
/// [`with_reordering`](Self::with_reordering) delay packets; loss, corruption and rate
/// limits come from smoltcp's `FaultInjector` around an end (see [`crate::Faults`]).
/// Packet buffers are reused (without zero-filling: smoltcp writes every byte of a packet
/// it emits).
#[derive(Clone, Debug)]
pub struct Wire(Rc<RefCell<Link>>);

impl Wire {
    /// A wire whose devices report this IP MTU (at most 65535), with checksums computed
    /// and verified by both stacks, as on a link without offload.
    pub fn new(mtu: usize) -> Self {
        Self(Rc::new(RefCell::new(Link {
            queues: [VecDeque::new(), VecDeque::new()],
            spare: [Vec::new(), Vec::new()],
            mtu: mtu.min(65535),
            checksums: true,
            latency: Duration::ZERO,
            reorder: (0, Duration::ZERO),
            rng: Rng::new(0),
            packets: 0,
            bytes: 0,
            in_flight_bytes: 0,
        })))
    }

    /// The same wire with its devices declaring checksum offload (as virtio-net with
    /// `VIRTIO_NET_F_CSUM` does): neither stack computes or verifies checksums. Only for
    /// a wire that corrupts nothing; a `FaultInjector` that corrupts needs checksums on.
    pub fn without_checksums(self) -> Self {
        self.0.borrow_mut().checksums = false;
        self
    }

    /// Every packet arrives `latency` after it was sent.
    pub fn with_latency(self, latency: Duration) -> Self {
        self.0.borrow_mut().latency = latency;
        self
    }

    /// The delay line: `pct` percent of packets (drawn from `seed`) wait between half of
    /// `max_delay` and `max_delay` more, so later packets overtake them.
    pub fn with_reordering(self, pct: u8, max_delay: Duration, seed: u64) -> Self {
        {
            let mut link = self.0.borrow_mut();
            link.reorder = (pct, max_delay);
            link.rng = Rng::new(seed);
        }
        self
    }

    /// The IP MTU the devices report.
    pub fn mtu(&self) -> usize {
        self.0.borrow().mtu
    }

    /// The device of `side` (0 or 1), to pass to `Interface::poll`. Configure the wire
    /// first: an end keeps the capabilities (MTU, checksums) it was made with.
    pub fn end(&self, side: usize) -> WireEnd {
        assert!(side < 2, "a wire has two sides");
        let link = self.0.borrow();
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = link.mtu;
        caps.checksum = if link.checksums {
            ChecksumCapabilities::default()
        } else {
            ChecksumCapabilities::ignored()
        };
        WireEnd {
            wire: self.clone(),
            side,
            caps,
        }
    }

    /// Packets put on the wire so far, both directions.
    pub fn packets(&self) -> u64 {
        self.0.borrow().packets
    }

    /// IP bytes (headers included) put on the wire so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.0.borrow().bytes
    }

    /// Packets waiting for either side to receive them.
    pub fn in_flight(&self) -> usize {
        let link = self.0.borrow();
        link.queues[0].len() + link.queues[1].len()
    }

    /// Heap bytes the wire holds now: packet buffers (in flight and spare) and the
    /// queues' own storage.
    pub fn heap_bytes(&self) -> usize {
        let link = self.0.borrow();
        let entry = core::mem::size_of::<(i64, Vec<u8>)>();
        let queues: usize = link.queues.iter().map(|q| q.capacity() * entry).sum();
        let spare: usize = link
            .spare
            .iter()
            .map(|s| s.capacity() * core::mem::size_of::<Vec<u8>>())
            .chain(link.spare.iter().flatten().map(Vec::capacity))
            .sum();
        link.in_flight_bytes + queues + spare
    }

    /// The earliest delivery time of any packet in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        let link = self.0.borrow();
        link.queues
            .iter()
            .filter_map(|q| q.front().map(|(at, _)| Instant::from_micros(*at)))
            .min()
    }
}

impl Link {
    fn push(&mut self, to: usize, now: Instant, packet: Vec<u8>) {
        let (pct, max) = self.reorder;
        let mut at = now + self.latency;
        if pct > 0 && self.rng.below(100) < u64::from(pct) {
            let (lo, hi) = (max.total_micros() / 2, max.total_micros());
            at += Duration::from_micros(lo + self.rng.below(hi - lo + 1));
        }
        let at = at.total_micros();
        self.packets += 1;
        self.bytes += packet.len() as u64;
        self.in_flight_bytes += packet.capacity();
        let queue = &mut self.queues[to];
        if queue.back().is_none_or(|(last, _)| *last <= at) {
            queue.push_back((at, packet));
        } else {
            let i = queue.partition_point(|(t, _)| *t <= at);
            queue.insert(i, (at, packet));
        }
    }
}

/// One side of a [`Wire`] as a smoltcp [`Device`] (IP medium).
#[derive(Debug)]
pub struct WireEnd {
    wire: Wire,
    side: usize,
    /// Asked for on every poll and packet: kept here, not behind the wire's `RefCell`.
    caps: DeviceCapabilities,
}

/// A received packet; its buffer goes back to the wire once consumed.
#[derive(Debug)]
pub struct WireRx {
    packet: Vec<u8>,
    wire: Wire,
    side: usize,
}

impl phy::RxToken for WireRx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let r = f(&self.packet);
        let spare = &mut self.wire.0.borrow_mut().spare[self.side];
        if spare.len() < SPARE_BUFFERS {
            spare.push(self.packet);
        }
        r
    }
}

/// Room for one packet to the other side.
#[derive(Debug)]
pub struct WireTx {
    wire: Wire,
    to: usize,
    now: Instant,
}

impl phy::TxToken for WireTx {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = self.wire.0.borrow_mut().spare[self.to]
            .pop()
            .unwrap_or_default();
        // A reused buffer is not zeroed where it has bytes: `f` writes the whole packet.
        buf.resize(len, 0);
        let r = f(&mut buf);
        self.wire.0.borrow_mut().push(self.to, self.now, buf);
        r
    }
}

impl Device for WireEnd {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx;

    fn receive(&mut self, now: Instant) -> Option<(WireRx, WireTx)> {
        let packet = {
            let mut link = self.wire.0.borrow_mut();
            let queue = &mut link.queues[self.side];
            if queue.front()?.0 > now.total_micros() {
                return None;
            }
            let (_, packet) = queue.pop_front()?;
            link.in_flight_bytes -= packet.capacity();
            packet
        };
        let rx = WireRx {
            packet,
            wire: self.wire.clone(),
            side: self.side,
        };
        Some((rx, self.transmit(now)?))
    }

    fn transmit(&mut self, now: Instant) -> Option<WireTx> {
        Some(WireTx {
            wire: self.wire.clone(),
            to: 1 - self.side,
            now,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}
