//! What the program needs from its platform, and the only unsafe code in it.
//!
//! Why this module needs `unsafe`, item by item:
//!
//! * **The global allocator.** `GlobalAlloc` is an unsafe trait, and an allocator over a
//!   static array has to hand out raw pointers into that array and keep its free lists
//!   inside the freed blocks. Nothing else in the program touches raw memory.
//! * **libc calls.** Writing to stdout and exiting go through `write(2)` and `_exit(2)`
//!   from the C library the C runtime already brought in; calling `extern "C"` functions
//!   is unsafe.
//! * **The entry point.** The C runtime's `_start` calls an unmangled `main`;
//!   `#[no_mangle]` is unsafe because symbol names can collide.
//! * **Unwinding stubs.** The prebuilt `core` and `alloc` were compiled with unwinding,
//!   so the link needs `_Unwind_Resume` and `rust_eh_personality` even though this
//!   program aborts on panic (`panic = "abort"`): neither is ever called.
//!
//! A bare-metal build would replace the libc calls with its console and power-off, and
//! the C runtime with its own `_start`; the allocator stays as it is.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int};
use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

// ------------------------------------------------------------------ the allocator

/// Heap size: plenty for two TLS connections, two interfaces and packets in flight.
const HEAP_SIZE: usize = 32 << 20;
/// Smallest block: 16 bytes (holds a free-list link, aligned for anything common).
const MIN_SHIFT: usize = 4;
/// Block sizes 16 B ..= 8 MiB, one free list each.
const CLASSES: usize = 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

struct State {
    /// Bytes of the arena handed out so far (bump pointer).
    next: usize,
    /// Head of each size class's free list (a freed block stores the next link).
    free: [*mut u8; CLASSES],
}

/// A size-class allocator over a static array: each request is rounded up to a power of
/// two; freed blocks go on that size's free list and are reused; fresh blocks come from
/// a bump pointer, aligned to their size (up to a page), so any block of a class suits
/// any request of that class. Memory is bounded by the peak use of each class.
struct Allocator {
    arena: Arena,
    state: UnsafeCell<State>,
    lock: AtomicBool,
    high_water: AtomicUsize,
}

// SAFETY: all access to `state` and to the arena's bookkeeping happens with `lock` held,
// so the allocator is safe to share between threads (the program has only one).
unsafe impl Sync for Allocator {}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator {
    arena: Arena(UnsafeCell::new([0; HEAP_SIZE])),
    state: UnsafeCell::new(State {
        next: 0,
        free: [ptr::null_mut(); CLASSES],
    }),
    lock: AtomicBool::new(false),
    high_water: AtomicUsize::new(0),
};

/// The size class of a request, or `None` if it is too large or too aligned.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > 4096 {
        return None;
    }
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let class = size.next_power_of_two().trailing_zeros() as usize - MIN_SHIFT;
    (class < CLASSES).then_some(class)
}

impl Allocator {
    fn with_lock<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to the state.
        let result = f(unsafe { &mut *self.state.get() });
        self.lock.store(false, Ordering::Release);
        result
    }
}

// SAFETY: `alloc` returns either null or a block of at least `layout.size()` bytes,
// aligned to `layout.align()`, inside the arena and not handed out elsewhere (each block
// is either fresh from the bump pointer or popped from its class's free list); `dealloc`
// only puts back blocks that `alloc` returned for a layout of the same class.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return ptr::null_mut();
        };
        let block = 1usize << (class + MIN_SHIFT);
        let base = self.arena.0.get().cast::<u8>();
        self.with_lock(|state| {
            let head = state.free[class];
            if !head.is_null() {
                // SAFETY: a freed block of this class; its first word holds the next link.
                state.free[class] = unsafe { head.cast::<*mut u8>().read() };
                return head;
            }
            let align = block.min(4096);
            let start = state.next.next_multiple_of(align);
            if start + block > HEAP_SIZE {
                return ptr::null_mut();
            }
            state.next = start + block;
            self.high_water.fetch_max(state.next, Ordering::Relaxed);
            // SAFETY: `start + block <= HEAP_SIZE`, so the block lies inside the arena.
            unsafe { base.add(start) }
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return;
        };
        self.with_lock(|state| {
            // SAFETY: `ptr` is a block of this class (at least 16 bytes, 16-aligned) that
            // the caller gives back; we keep the free-list link in its first word.
            unsafe { ptr.cast::<*mut u8>().write(state.free[class]) };
            state.free[class] = ptr;
        });
    }
}

/// Bytes of the arena ever handed out (the heap's high-water mark).
pub fn heap_high_water() -> usize {
    ALLOCATOR.high_water.load(Ordering::Relaxed)
}

// ------------------------------------------------------------------ libc

#[link(name = "c")]
extern "C" {
    fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
    fn _exit(status: c_int) -> !;
}

/// Standard output, for `core::fmt::Write`.
pub struct Stdout;

impl fmt::Write for Stdout {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            // SAFETY: `rest` is a valid byte slice for the duration of the call.
            let n = unsafe { write(1, rest.as_ptr(), rest.len()) };
            if n <= 0 {
                return Err(fmt::Error);
            }
            rest = &rest[n as usize..];
        }
        Ok(())
    }
}

/// Ends the process at once.
pub fn exit(code: i32) -> ! {
    // SAFETY: `_exit` takes any status and does not return.
    unsafe { _exit(code) }
}

// ------------------------------------------------------------------ entry, panic, unwinding

/// Called by the C runtime's `_start`.
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    match crate::run() {
        Ok(()) => 0,
        Err(message) => {
            let _ = fmt::Write::write_fmt(&mut Stdout, format_args!("freestanding: {message}\n"));
            1
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = fmt::Write::write_fmt(&mut Stdout, format_args!("freestanding: {info}\n"));
    exit(101)
}

/// Never called (`panic = "abort"`); the prebuilt `alloc` refers to it.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    exit(134)
}

/// Never called (`panic = "abort"`); the prebuilt `core` refers to it.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
