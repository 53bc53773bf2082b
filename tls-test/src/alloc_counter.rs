//! A global allocator wrapper that counts live heap bytes, to measure what a session holds.
//!
//! Install it in a test or bench binary:
//! `#[global_allocator] static ALLOC: tls_test::alloc_counter::Counting = tls_test::alloc_counter::Counting;`
//! then read [`live_bytes`] before and after building what you measure.

// `GlobalAlloc` is an unsafe trait: implementing it is the only way to observe heap use
// from inside the process. Each method forwards to the system allocator unchanged, with
// the caller's own safety contract, and only adds an atomic counter update.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Counts live heap bytes and forwards to [`System`].
pub struct Counting;

// SAFETY: every method delegates to `System` with the arguments it was given, so the
// `GlobalAlloc` contract holds exactly as for `System`; the counter has no effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract, see above.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract, see above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract, see above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract, see above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

/// Heap bytes currently allocated through [`Counting`] (process-wide, all threads).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}
