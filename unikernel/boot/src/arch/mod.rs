//! Everything that touches the machine: the entry and long-mode trampoline ([`boot`]),
//! the multiboot information ([`multiboot`]), the CPU (TSC, RDRAND/RDSEED, port I/O),
//! the heap, the devices (serial, PIT, CMOS RTC, fw_cfg, PCI, virtio-net), the C symbols
//! the prebuilt libraries need, and the exit and panic paths.
//!
//! Why `unsafe` is allowed here and nowhere else: port I/O, reading physical memory the
//! boot loader describes, handing raw memory to the allocator and to the device (DMA),
//! the unmangled entry and C symbols, and inline assembly are all unsafe by nature. The
//! rest of the image (the application, the network set-up, the configuration) is safe
//! code over the small interfaces these modules export; each unsafe block says why it
//! holds.

pub mod boot;
pub mod cpu;
pub mod exit;
pub mod fwcfg;
pub mod heap;
pub mod irq;
pub mod libc;
pub mod multiboot;
pub mod offload;
pub mod pci;
pub mod serial;
pub mod time;
pub mod virtio;

/// Set up by the trampoline: serial first (so every failure can be reported), then the
/// heap over the memory map, then the rest in [`crate::main`].
fn start(magic: u32, info: u32) -> ! {
    serial::init();
    let tsc_entry = cpu::rdtsc();
    let boot = match multiboot::read(magic, info) {
        Ok(boot) => boot,
        Err(message) => exit::fail(exit::Code::BadBoot, message),
    };
    heap::init(&boot.memory);
    crate::main(boot.cmdline(), tsc_entry)
}
