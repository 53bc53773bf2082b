//! An in-memory wire between two smoltcp interfaces: what one end transmits, the other
//! receives, in order.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

#[derive(Default)]
struct Queues {
    /// Packets waiting for each end.
    to: [VecDeque<Vec<u8>>; 2],
    packets: u64,
}

/// The shared wire.
#[derive(Clone, Default)]
pub(crate) struct Wire(Rc<RefCell<Queues>>);

impl Wire {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// One end of the wire as a device (end 0 talks to end 1).
    pub(crate) fn end(&self, side: usize) -> WireEnd {
        WireEnd {
            wire: self.clone(),
            side,
        }
    }

    /// Packets sent so far.
    pub(crate) fn packets(&self) -> u64 {
        self.0.borrow().packets
    }
}

/// An IP-medium device, MTU 1500, checksums computed and verified.
pub(crate) struct WireEnd {
    wire: Wire,
    side: usize,
}

pub(crate) struct Rx(Vec<u8>);

impl phy::RxToken for Rx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

pub(crate) struct Tx {
    wire: Wire,
    to: usize,
}

impl phy::TxToken for Tx {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut packet = vec![0; len];
        let r = f(&mut packet);
        let mut queues = self.wire.0.borrow_mut();
        queues.to[self.to].push_back(packet);
        queues.packets += 1;
        r
    }
}

impl Device for WireEnd {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx)> {
        let packet = self.wire.0.borrow_mut().to[self.side].pop_front()?;
        let tx = Tx {
            wire: self.wire.clone(),
            to: 1 - self.side,
        };
        Some((Rx(packet), tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx> {
        Some(Tx {
            wire: self.wire.clone(),
            to: 1 - self.side,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}
