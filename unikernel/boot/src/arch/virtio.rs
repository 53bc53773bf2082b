//! virtio-net over PCI with `virtio-drivers` (its raw driver, so this module writes and
//! reads the virtio-net header: checksum offload), as a smoltcp [`Device`].
//!
//! Checksums: where the device agreed to `VIRTIO_NET_F_CSUM` ([`super::offload`]),
//! smoltcp leaves TCP checksums out and each outgoing TCP segment carries only its
//! pseudo-header sum, marked `NEEDS_CSUM` for the device to complete. Where it agreed
//! to `GUEST_CSUM`, smoltcp does not verify TCP checksums; a received segment is then
//! accepted as it is when the device marks it `DATA_VALID` or `NEEDS_CSUM` (checksum
//! left partial by a local sender), and verified here otherwise (a bad one is dropped);
//! other protocols left partial are completed here before smoltcp sees them.
//!
//! Unsafe: `virtio_drivers::Hal` is an unsafe trait (it hands the device DMA memory;
//! physical and virtual addresses are the same, identity-mapped below 4 GiB, and there
//! is no IOMMU, so sharing a buffer is giving its address), and the raw driver's
//! begin/complete calls, whose buffers must stay put while the device owns them.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ptr::NonNull;

use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{checksum, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, TcpPacket};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::bus::{BarInfo, Command, ConfigurationAccess, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

use super::offload::{Offload, Offloads};
use super::pci::PortCam;

/// Receive and transmit queue size.
const QUEUE: usize = 64;
/// Receive buffer size (the virtio-net header and an Ethernet frame).
const RX_BUF: usize = 2048;
/// The virtio-net header of a VERSION_1 device (modern PCI transport).
const HDR: usize = 12;
/// Largest frame smoltcp may send (Ethernet header and 1500-byte IP packet).
const MTU: usize = 1514;
/// Memory above this is not mapped.
const MAPPED_END: u64 = 4 << 30;
/// Header flags.
const NEEDS_CSUM: u8 = 1;
const DATA_VALID: u8 = 2;
/// Ethernet header length, and where the IPv4 header starts.
const ETH: usize = 14;

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

type Raw = VirtIONetRaw<Dma, Offload<PciTransport>, QUEUE>;

struct Inner {
    raw: Raw,
    /// The receive buffers, by descriptor token (`None`: lent to smoltcp right now).
    rx: Vec<Option<Box<[u8]>>>,
    /// The one transmit buffer (sends complete before the next one starts).
    tx: Vec<u8>,
}

impl Inner {
    /// Gives `buf` back to the receive queue.
    fn recycle(&mut self, mut buf: Box<[u8]>) {
        // SAFETY: the buffer is owned by `self.rx` (a heap block that does not move)
        // until the device hands it back through `receive_complete`.
        if let Ok(token) = unsafe { self.raw.receive_begin(&mut buf) } {
            self.rx[usize::from(token)] = Some(buf);
        }
    }

    /// Sends `self.tx` (header and frame) and waits until the device has taken it.
    fn send(&mut self) {
        // SAFETY: `self.tx` is not touched until `transmit_complete` below.
        let Ok(token) = (unsafe { self.raw.transmit_begin(&self.tx) }) else {
            return; // A lost frame is TCP's to retransmit.
        };
        while self.raw.poll_transmit() != Some(token) {
            core::hint::spin_loop();
        }
        // SAFETY: the same buffer as `transmit_begin` got.
        let _ = unsafe { self.raw.transmit_complete(token, &self.tx) };
    }
}

/// The network card.
pub struct Nic {
    dev: RefCell<Inner>,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its PCI interrupt line (legacy INTx through the PIC), if it has one.
    pub irq: Option<u8>,
    /// The checksum offloads the device agreed to.
    pub offloads: Offloads,
}

impl Nic {
    /// The first virtio-net device on PCI bus 0, started (with checksum offload where
    /// it offers it, if `offload`).
    pub fn find(offload: bool) -> Result<Nic, &'static str> {
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
        let word = PortCam.read_word(df, 0x3C);
        let (line, pin) = (word as u8, (word >> 8) as u8);
        let irq = (pin != 0 && line < 16).then_some(line);
        root.set_command(
            df,
            Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER,
        );
        let pci =
            PciTransport::new::<Dma, _>(&mut root, df).map_err(|_| "not a modern virtio device")?;
        let agreed = Rc::new(Cell::new(Offloads::default()));
        let mut raw = Raw::new(Offload::new(pci, offload, agreed.clone()))
            .map_err(|_| "virtio-net would not start")?;
        raw.enable_interrupts();
        let mac = raw.mac_address();
        let mut inner = Inner {
            raw,
            rx: (0..QUEUE).map(|_| None).collect(),
            tx: Vec::with_capacity(HDR + MTU),
        };
        for _ in 0..QUEUE {
            inner.recycle(vec![0u8; RX_BUF].into_boxed_slice());
        }
        Ok(Nic {
            dev: RefCell::new(inner),
            mac,
            irq,
            offloads: agreed.get(),
        })
    }

    /// Reads (and so clears) the card's interrupt status: its INTx line drops.
    pub fn ack_interrupt(&self) {
        let _ = self.dev.borrow_mut().raw.ack_interrupt();
    }

    /// Whether a frame has arrived.
    pub fn has_frame(&self) -> bool {
        self.dev.borrow().raw.poll_receive().is_some()
    }
}

/// The IPv4 header's offset of an IPv4 TCP segment in `frame`, or `None`.
fn ipv4_tcp(frame: &[u8]) -> Option<Ipv4Packet<&[u8]>> {
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = Ipv4Packet::new_checked(&frame[ETH..]).ok()?;
    (ip.next_header() == IpProtocol::Tcp).then_some(ip)
}

/// Whether a received frame without `DATA_VALID`/`NEEDS_CSUM` passes, when smoltcp does
/// not check TCP checksums: non-TCP frames are smoltcp's to check.
fn tcp_checksum_ok(frame: &[u8]) -> bool {
    let Some(ip) = ipv4_tcp(frame) else {
        return true;
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    TcpPacket::new_checked(ip.payload())
        .is_ok_and(|tcp| tcp.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst)))
}

/// Completes a checksum the sender left partial (`csum_start`, `csum_offset`).
fn complete_checksum(frame: &mut [u8], start: usize, offset: usize) {
    let at = start + offset;
    if at + 2 > frame.len() {
        return;
    }
    let sum = !checksum::data(&frame[start..]);
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// Marks an outgoing IPv4 TCP segment for the device to checksum: the field gets the
/// pseudo-header sum, the header `NEEDS_CSUM` with where the segment starts.
fn offload_tcp(buf: &mut [u8]) {
    let frame = &buf[HDR..];
    let Some(ip) = ipv4_tcp(frame) else {
        return;
    };
    let ihl = usize::from(ip.header_len());
    let len = usize::from(ip.total_len()).saturating_sub(ihl);
    let (src, dst): (Ipv4Address, Ipv4Address) = (ip.src_addr(), ip.dst_addr());
    let pseudo = checksum::pseudo_header_v4(&src, &dst, IpProtocol::Tcp, len as u32);
    let start = ETH + ihl;
    let field = HDR + start + 16;
    if field + 2 > buf.len() {
        return;
    }
    buf[field..field + 2].copy_from_slice(&pseudo.to_be_bytes());
    buf[0] = NEEDS_CSUM;
    buf[6..8].copy_from_slice(&(start as u16).to_le_bytes());
    buf[8..10].copy_from_slice(&16u16.to_le_bytes());
}

/// A received frame (its buffer, lent out of the receive queue; back in it when the
/// token is consumed or dropped).
pub struct Rx<'a> {
    dev: &'a RefCell<Inner>,
    buf: Option<Box<[u8]>>,
    len: usize,
    rx_offload: bool,
}

impl Drop for Rx<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.dev.borrow_mut().recycle(buf);
        }
    }
}

/// Room for one frame to send.
pub struct Tx<'a> {
    dev: &'a RefCell<Inner>,
    tx_offload: bool,
}

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
        let mut buf = self.buf.take().expect("a token is consumed once");
        let flags = buf[0];
        let start = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
        let offset = usize::from(u16::from_le_bytes([buf[8], buf[9]]));
        let frame = &mut buf[HDR..HDR + self.len];
        let mut pass = true;
        if self.rx_offload {
            if flags & NEEDS_CSUM != 0 {
                if ipv4_tcp(frame).is_none() {
                    complete_checksum(frame, start, offset);
                }
            } else if flags & DATA_VALID == 0 {
                pass = tcp_checksum_ok(frame);
            }
        }
        // A frame that fails its check reaches smoltcp empty, which drops it.
        let r = f(if pass { frame } else { &[] });
        self.dev.borrow_mut().recycle(buf);
        r
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut dev = self.dev.borrow_mut();
        let mut buf = core::mem::take(&mut dev.tx);
        buf.clear();
        buf.resize(HDR + len, 0);
        let r = f(&mut buf[HDR..]);
        if self.tx_offload {
            offload_tcp(&mut buf);
        }
        dev.tx = buf;
        dev.send();
        r
    }
}

impl Device for Nic {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let inner = self.dev.get_mut();
        let token = inner.raw.poll_receive()?;
        let mut buf = inner.rx[usize::from(token)].take()?;
        // SAFETY: `buf` is the buffer given to `receive_begin` for this token.
        let (hdr, len) = unsafe { inner.raw.receive_complete(token, &mut buf) }.ok()?;
        debug_assert_eq!(hdr, HDR);
        let rx = Rx {
            dev: &self.dev,
            buf: Some(buf),
            len,
            rx_offload: self.offloads.rx,
        };
        let tx = Tx {
            dev: &self.dev,
            tx_offload: self.offloads.tx,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        self.dev.get_mut().raw.can_send().then_some(Tx {
            dev: &self.dev,
            tx_offload: self.offloads.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.checksum.tcp = match (self.offloads.tx, self.offloads.rx) {
            (true, true) => Checksum::None,
            (true, false) => Checksum::Rx,
            (false, true) => Checksum::Tx,
            (false, false) => Checksum::Both,
        };
        caps
    }
}
