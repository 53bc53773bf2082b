//! A `virtio-drivers` transport that also negotiates checksum offload.
//!
//! virtio-drivers 0.13's net driver asks only for MAC, STATUS, EVENT_IDX, INDIRECT_DESC
//! and VERSION_1. This wrapper adds `VIRTIO_NET_F_CSUM` (the device completes TCP
//! checksums we mark partial) and `VIRTIO_NET_F_GUEST_CSUM` (the device may hand us
//! packets whose checksum it verified, or left partial) when the device offers them, and
//! remembers what was agreed; [`super::virtio`] then writes and reads the virtio-net
//! header itself. QEMU offers both on a TAP backend with vnet headers, neither on its
//! user network.
//!
//! No unsafe code: plain delegation.

use alloc::rc::Rc;
use core::cell::Cell;

use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// `VIRTIO_NET_F_CSUM`.
const CSUM: u64 = 1 << 0;
/// `VIRTIO_NET_F_GUEST_CSUM`.
const GUEST_CSUM: u64 = 1 << 1;

/// What was agreed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloads {
    /// The device completes partial TCP checksums on transmit.
    pub tx: bool,
    /// Received packets may carry `DATA_VALID` or `NEEDS_CSUM`.
    pub rx: bool,
}

/// The transport `T`, asking for checksum offload too.
#[derive(Debug)]
pub struct Offload<T> {
    inner: T,
    offered: u64,
    /// Whether to ask at all.
    wanted: bool,
    /// Set once the driver features are written (shared: the driver keeps the transport).
    agreed: Rc<Cell<Offloads>>,
}

impl<T> Offload<T> {
    /// Wraps `inner` (asking for the offloads if `wanted`); what was agreed appears in
    /// `agreed`.
    pub fn new(inner: T, wanted: bool, agreed: Rc<Cell<Offloads>>) -> Self {
        Offload {
            inner,
            offered: 0,
            wanted,
            agreed,
        }
    }
}

impl<T: Transport> Transport for Offload<T> {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.offered = self.inner.read_device_features();
        self.offered
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        let extra = if self.wanted {
            self.offered & (CSUM | GUEST_CSUM)
        } else {
            0
        };
        self.agreed.set(Offloads {
            tx: extra & CSUM != 0,
            rx: extra & GUEST_CSUM != 0,
        });
        self.inner.write_driver_features(driver_features | extra);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.inner.notify(queue);
    }

    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status);
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size);
    }

    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.inner
            .queue_set(queue, size, descriptors, driver_area, device_area);
    }

    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue);
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }

    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.inner.read_config_space(offset)
    }

    fn write_config_space<V: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<()> {
        self.inner.write_config_space(offset, value)
    }
}
