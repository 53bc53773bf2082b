//! PCI configuration space through the legacy port mechanism (0xCF8 address, 0xCFC data),
//! as `virtio-drivers`' `ConfigurationAccess`.
//!
//! Unsafe: port I/O, and the trait's `unsafe_clone`.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::port::Port;

/// Configuration mechanism #1.
#[derive(Debug)]
pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (u32::from(df.bus) << 16)
        | (u32::from(df.device) << 11)
        | (u32::from(df.function) << 8)
        | u32::from(offset & 0xFC)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        // SAFETY: 0xCF8/0xCFC are the PCI configuration ports of every PC; selecting an
        // address and reading a dword has no side effect on the devices.
        unsafe {
            Port::<u32>::new(0xCF8).write(address(df, offset));
            Port::<u32>::new(0xCFC).read()
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        // SAFETY: as above; the caller (virtio-drivers) writes registers it owns.
        unsafe {
            Port::<u32>::new(0xCF8).write(address(df, offset));
            Port::<u32>::new(0xCFC).write(data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}
