//! virtio-net over PCI with `virtio-drivers`, as a smoltcp [`Device`].
//!
//! Unsafe: `virtio_drivers::Hal` is an unsafe trait (it hands the device DMA memory; here
//! physical and virtual addresses are the same, identity-mapped below 4 GiB, and there
//! is no IOMMU, so sharing a buffer is giving its address).

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::cell::RefCell;
use core::ptr::NonNull;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use virtio_drivers::device::net::{RxBuffer, VirtIONet};
use virtio_drivers::transport::pci::bus::{BarInfo, Command, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use super::pci::PortCam;

/// Receive and transmit queue size.
const QUEUE: usize = 64;
/// Receive buffer size (an Ethernet frame and the virtio header).
const RX_BUF: usize = 2048;
/// Largest frame smoltcp may send (Ethernet header and 1500-byte IP packet).
const MTU: usize = 1514;
/// Memory above this is not mapped.
const MAPPED_END: u64 = 4 << 30;

/// The DMA glue.
#[derive(Debug)]
pub struct Dma;

fn layout(pages: usize) -> Layout {
    Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("page layout")
}

// SAFETY: `dma_alloc` returns zeroed, page-aligned, exclusively owned heap memory whose
// physical address is its address (identity mapping); `mmio_phys_to_virt` is the
// identity on the mapped 4 GiB; `share` gives the buffer's own address, which the device
// may use because there is no IOMMU and no encryption.
unsafe impl Hal for Dma {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // SAFETY: a non-zero-sized layout.
        let p = unsafe { alloc_zeroed(layout(pages)) };
        let p = NonNull::new(p).expect("the heap never returns null (it exits instead)");
        (p.as_ptr() as PhysAddr, p)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: allocated by `dma_alloc` with this many pages.
        unsafe { dealloc(vaddr.as_ptr(), layout(pages)) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        assert!(
            paddr + size as u64 <= MAPPED_END,
            "BAR above the mapped 4 GiB"
        );
        NonNull::new(paddr as *mut u8).expect("BAR at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The network card.
pub struct Nic {
    dev: RefCell<VirtIONet<Dma, PciTransport, QUEUE>>,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its PCI interrupt line (legacy INTx through the PIC), if it has one.
    pub irq: Option<u8>,
}

impl Nic {
    /// The first virtio-net device on PCI bus 0, started.
    pub fn find() -> Result<Nic, &'static str> {
        let mut root = PciRoot::new(PortCam);
        let mut found = None;
        for (df, info) in root.enumerate_bus(0) {
            if virtio_device_type(&info) == Some(DeviceType::Network) {
                found = Some(df);
                break;
            }
        }
        let df = found.ok_or("no virtio-net device on PCI bus 0")?;
        let bars = root.bars(df).map_err(|_| "cannot read the BARs")?;
        for bar in bars.iter().flatten() {
            if let BarInfo::Memory { address, size, .. } = bar {
                if address + size > MAPPED_END || *address == 0 {
                    return Err("the virtio-net BARs are not in the first 4 GiB");
                }
            }
        }
        use virtio_drivers::transport::pci::bus::ConfigurationAccess;
        let word = PortCam.read_word(df, 0x3C);
        let (line, pin) = (word as u8, (word >> 8) as u8);
        let irq = (pin != 0 && line < 16).then_some(line);
        root.set_command(
            df,
            Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER,
        );
        let transport =
            PciTransport::new::<Dma, _>(&mut root, df).map_err(|_| "not a modern virtio device")?;
        let mut dev =
            VirtIONet::new(transport, RX_BUF).map_err(|_| "virtio-net would not start")?;
        dev.enable_interrupts();
        let mac = dev.mac_address();
        Ok(Nic {
            dev: RefCell::new(dev),
            mac,
            irq,
        })
    }

    /// Reads (and so clears) the card's interrupt status: its INTx line drops.
    pub fn ack_interrupt(&self) {
        let _ = self.dev.borrow_mut().ack_interrupt();
    }

    /// Whether a frame has arrived.
    pub fn has_frame(&self) -> bool {
        self.dev.borrow().can_recv()
    }
}

/// A received frame.
pub struct Rx<'a> {
    dev: &'a RefCell<VirtIONet<Dma, PciTransport, QUEUE>>,
    buf: RxBuffer,
}

/// Room for one frame to send.
pub struct Tx<'a> {
    dev: &'a RefCell<VirtIONet<Dma, PciTransport, QUEUE>>,
}

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(self.buf.packet());
        // The buffer goes back to the queue; failing that, the queue is one shorter.
        let _ = self.dev.borrow_mut().recycle_rx_buffer(self.buf);
        r
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut dev = self.dev.borrow_mut();
        let mut buf = dev.new_tx_buffer(len);
        let r = f(buf.packet_mut());
        // A lost frame is TCP's to retransmit.
        let _ = dev.send(buf);
        r
    }
}

impl Device for Nic {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let buf = self.dev.get_mut().receive().ok()?;
        Some((
            Rx {
                dev: &self.dev,
                buf,
            },
            Tx { dev: &self.dev },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        self.dev
            .get_mut()
            .can_send()
            .then_some(Tx { dev: &self.dev })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}
