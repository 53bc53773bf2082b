//! A global allocator wrapper that counts live heap bytes, to measure what a session holds.
//!
//! Install it in a test or bench binary:
//! `#[global_allocator] static ALLOC: tls_test::alloc_counter::Counting = tls_test::alloc_counter::Counting;`
//! then read [`live_bytes`] (process-wide) or [`thread_live_bytes`] (this thread only)
//! before and after building what you measure. A test binary should use the per-thread
//! figure: the test harness's own threads allocate at times of their own.

// `GlobalAlloc` is an unsafe trait: implementing it is the only way to observe heap use
// from inside the process. Each method forwards to the system allocator unchanged, with
// the caller's own safety contract, and only adds an atomic counter update.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // Net bytes allocated minus freed by this thread. A `const` Cell with no destructor:
    // using it from inside the allocator never allocates.
    static THREAD_LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    LIVE.fetch_add(delta, Ordering::Relaxed);
    // `try_with`: a thread's last frees can run after its locals are gone.
    let _ = THREAD_LIVE.try_with(|c| c.set(c.get() + delta));
}

/// Counts live heap bytes and forwards to [`System`].
pub struct Counting;

// SAFETY: every method delegates to `System` with the arguments it was given, so the
// `GlobalAlloc` contract holds exactly as for `System`; the counter has no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract, see above.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract, see above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract, see above.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract, see above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Heap bytes currently allocated through [`Counting`] (process-wide, all threads).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Heap bytes allocated minus freed through [`Counting`] by the calling thread: what this
/// thread's work holds, unaffected by other threads (such as the test harness's).
pub fn thread_live_bytes() -> isize {
    THREAD_LIVE.with(Cell::get)
}
