//! The heap: `talc` over the RAM of the multiboot memory map (above the image and the
//! loader's data, below 4 GiB, the identity-mapped part), with counters for the bytes in
//! use and their high-water mark, which the image reports over serial.
//!
//! Unsafe: `GlobalAlloc` is an unsafe trait, and claiming memory for the allocator
//! asserts nothing else uses it.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use talc::{ErrOnOom, Span, Talc, Talck};

use super::exit::{fail, Code};
use super::multiboot::Memory;

/// Talc with its counters (one CPU, no interrupts: no lock is needed).
struct Heap {
    talc: Talck<talc::locking::AssumeUnlockable, ErrOnOom>,
    in_use: AtomicUsize,
    peak: AtomicUsize,
    size: AtomicUsize,
}

#[global_allocator]
static HEAP: Heap = Heap {
    talc: Talck::new(Talc::new(ErrOnOom)),
    in_use: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
    size: AtomicUsize::new(0),
};

// SAFETY: every call goes to talc's `GlobalAlloc`, which upholds the contract; the
// counters only observe.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { self.talc.alloc(layout) };
        if p.is_null() {
            fail(Code::OutOfMemory, "out of memory");
        }
        let now = self.in_use.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        self.peak.fetch_max(now, Ordering::Relaxed);
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded: `ptr` came from `alloc` with this layout.
        unsafe { self.talc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's arguments.
        let p = unsafe { self.talc.realloc(ptr, layout, new_size) };
        if p.is_null() {
            fail(Code::OutOfMemory, "out of memory");
        }
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
        let now = self.in_use.fetch_add(new_size, Ordering::Relaxed) + new_size;
        self.peak.fetch_max(now, Ordering::Relaxed);
        p
    }
}

/// Identity-mapped memory ends here.
const MAPPED_END: u64 = 4 << 30;

/// Gives talc every usable range above the reserved part and below 4 GiB.
pub fn init(memory: &Memory) {
    let floor = memory.reserved_end.next_multiple_of(4096);
    let mut total = 0;
    for region in &memory.regions[..memory.count] {
        let start = region.start.max(floor);
        let end = region.end.min(MAPPED_END);
        if end <= start + 4096 {
            continue;
        }
        let span = Span::new(start as *mut u8, end as *mut u8);
        // SAFETY: the memory map says this RAM is usable, and it lies above the image,
        // its stack and the loader's data, identity-mapped: nothing else uses it.
        if unsafe { HEAP.talc.lock().claim(span) }.is_ok() {
            total += (end - start) as usize;
        }
    }
    if total == 0 {
        fail(Code::BadBoot, "no usable memory above the image");
    }
    HEAP.size.store(total, Ordering::Relaxed);
}

/// The heap's counters.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Bytes allocated now.
    pub in_use: usize,
    /// Most bytes ever allocated at once.
    pub peak: usize,
    /// Bytes of RAM given to the heap.
    pub size: usize,
}

/// The counters now.
pub fn stats() -> Stats {
    Stats {
        in_use: HEAP.in_use.load(Ordering::Relaxed),
        peak: HEAP.peak.load(Ordering::Relaxed),
        size: HEAP.size.load(Ordering::Relaxed),
    }
}
