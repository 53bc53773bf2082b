//! The multiboot v1 information the loader leaves in memory: the memory map and the
//! command line (`-append` in QEMU), copied out before the heap may cover them.
//!
//! Unsafe: reading physical memory at addresses the loader hands over.

/// Multiboot's magic in EAX at entry.
const LOADER_MAGIC: u32 = 0x2BAD_B002;
const MAX_REGIONS: usize = 32;
const MAX_CMDLINE: usize = 1024;

/// A range of usable RAM.
#[derive(Debug, Clone, Copy, Default)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Usable RAM, minus the image and the loader's information.
#[derive(Debug)]
pub struct Memory {
    /// The usable ranges (the first `count`).
    pub regions: [Region; MAX_REGIONS],
    /// How many of `regions` are used.
    pub count: usize,
    /// Everything below this is the image or the loader's data.
    pub reserved_end: u64,
}

/// What the loader said.
#[derive(Debug)]
pub struct Boot {
    /// Usable memory.
    pub memory: Memory,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
}

impl Boot {
    /// The command line (lossy: bytes after invalid UTF-8 are dropped).
    pub fn cmdline(&self) -> &str {
        let bytes = &self.cmdline[..self.cmdline_len];
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

extern "C" {
    static __bss_end: u8;
}

fn read_u32(addr: u64) -> u32 {
    // SAFETY: only called on addresses inside the multiboot structures the loader wrote
    // in identity-mapped low memory; unaligned reads are allowed.
    unsafe { (addr as *const u32).read_unaligned() }
}

fn read_u64(addr: u64) -> u64 {
    // SAFETY: as `read_u32`.
    unsafe { (addr as *const u64).read_unaligned() }
}

/// Reads the information at `info` (physical address) after checking `magic`.
pub fn read(magic: u32, info: u32) -> Result<Boot, &'static str> {
    if magic != LOADER_MAGIC {
        return Err("not started by a multiboot loader");
    }
    let info = u64::from(info);
    let flags = read_u32(info);
    // A linker-script symbol: only its address is used.
    let image_end = core::ptr::addr_of!(__bss_end) as u64;
    let mut reserved_end = image_end.max(info + 120);
    let mut boot = Boot {
        memory: Memory {
            regions: [Region::default(); MAX_REGIONS],
            count: 0,
            reserved_end: 0,
        },
        cmdline: [0; MAX_CMDLINE],
        cmdline_len: 0,
    };
    if flags & (1 << 2) != 0 {
        let addr = u64::from(read_u32(info + 16));
        let mut n = 0;
        while n < MAX_CMDLINE {
            // SAFETY: the NUL-terminated command line the loader wrote.
            let b = unsafe { ((addr + n as u64) as *const u8).read() };
            if b == 0 {
                break;
            }
            boot.cmdline[n] = b;
            n += 1;
        }
        boot.cmdline_len = n;
        reserved_end = reserved_end.max(addr + n as u64 + 1);
    }
    if flags & (1 << 3) != 0 {
        let count = u64::from(read_u32(info + 20));
        let addr = u64::from(read_u32(info + 24));
        reserved_end = reserved_end.max(addr + 16 * count);
        for i in 0..count {
            reserved_end = reserved_end.max(u64::from(read_u32(addr + 16 * i + 4)));
        }
    }
    if flags & (1 << 6) == 0 {
        return Err("the loader gave no memory map");
    }
    let length = u64::from(read_u32(info + 44));
    let addr = u64::from(read_u32(info + 48));
    reserved_end = reserved_end.max(addr + length);
    let mut entry = addr;
    while entry < addr + length {
        let size = u64::from(read_u32(entry));
        let base = read_u64(entry + 4);
        let len = read_u64(entry + 12);
        let kind = read_u32(entry + 20);
        if kind == 1 && boot.memory.count < MAX_REGIONS {
            boot.memory.regions[boot.memory.count] = Region {
                start: base,
                end: base + len,
            };
            boot.memory.count += 1;
        }
        entry += size + 4;
    }
    boot.memory.reserved_end = reserved_end;
    Ok(boot)
}
