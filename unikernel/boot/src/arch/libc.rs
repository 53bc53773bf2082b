//! The C symbols the prebuilt libraries expect from a C library, which the image does not
//! link: `memcpy` and friends (core and *ring*'s C code call them), `syscall` for
//! `getrandom(2)` (getrandom 0.2's Linux backend, the one the linux-gnu target selects:
//! its `custom` backend is for targets without an OS; so the system call *is* the custom
//! backend, served from RDRAND/RDSEED), `__errno_location`, and the unwinding stubs the
//! prebuilt `core` and `alloc` refer to although `panic = "abort"` never calls them.
//!
//! Unsafe: unmangled C symbols, raw pointers, and `rep movsb`/`rep stosb`, which keep
//! the compiler from turning these very functions into calls to themselves.

use core::arch::asm;
use core::ffi::{c_int, c_long};
use core::sync::atomic::{AtomicI32, AtomicU8, Ordering};

use super::cpu::Entropy;

#[no_mangle]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller passes valid, non-overlapping ranges of `n` bytes (C's contract).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

#[no_mangle]
unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // Forward copy is safe: `dest` is below `src` or past its end.
        // SAFETY: valid ranges (C's contract), forward copy as decided above.
        unsafe { memcpy(dest, src, n) };
    } else {
        // SAFETY: valid ranges; copy backwards with the direction flag set, then clear it.
        unsafe {
            asm!("std", "rep movsb", "cld",
                inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _, options(nostack));
        }
    }
    dest
}

#[no_mangle]
unsafe extern "C" fn memset(dest: *mut u8, c: c_int, n: usize) -> *mut u8 {
    // SAFETY: the caller passes a valid range of `n` bytes.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") c as u8,
            options(nostack, preserves_flags));
    }
    dest
}

#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    let mut i = 0;
    while i < n {
        // SAFETY: the caller passes valid ranges of `n` bytes; volatile reads keep the
        // compiler from recognising this loop as a call to `memcmp` itself.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
        i += 1;
    }
    0
}

#[no_mangle]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    // SAFETY: the same contract as `memcmp`.
    unsafe { memcmp(a, b, n) }
}

#[no_mangle]
unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller passes a NUL-terminated string.
    while unsafe { s.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}

/// `errno`, for getrandom's error path (never set: the source either works or the image
/// refused to start).
static ERRNO: AtomicI32 = AtomicI32::new(0);

#[no_mangle]
extern "C" fn __errno_location() -> *mut c_int {
    ERRNO.as_ptr()
}

/// 0: not checked yet, 1: RDRAND, 2: RDSEED, 3: none.
static SOURCE: AtomicU8 = AtomicU8::new(0);

/// The entropy source, found once.
pub fn entropy() -> Option<Entropy> {
    match SOURCE.load(Ordering::Relaxed) {
        0 => {
            let e = Entropy::detect();
            let tag = match e {
                Some(Entropy::RdRand(_)) => 1,
                Some(Entropy::RdSeed) => 2,
                None => 3,
            };
            SOURCE.store(tag, Ordering::Relaxed);
            e
        }
        1 => Entropy::detect(),
        2 => Some(Entropy::RdSeed),
        _ => None,
    }
}

const SYS_GETRANDOM: c_long = 318;
const ENOSYS: c_int = 38;
const EIO: c_int = 5;

/// The only system call anything in the image makes: `getrandom(buf, len, flags)`. The C
/// function is variadic; on x86_64 a fixed-argument definition receives the same
/// registers.
#[no_mangle]
unsafe extern "C" fn syscall(number: c_long, buf: *mut u8, len: usize, _flags: u32) -> isize {
    if number != SYS_GETRANDOM {
        ERRNO.store(ENOSYS, Ordering::Relaxed);
        return -1;
    }
    // SAFETY: getrandom passes a valid writable buffer of `len` bytes.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    match entropy() {
        Some(source) if source.fill(out) => len as isize,
        _ => {
            ERRNO.store(EIO, Ordering::Relaxed);
            -1
        }
    }
}

/// Never called (`panic = "abort"`); the prebuilt `alloc` refers to it.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    super::exit::exit(super::exit::Code::Panic)
}

/// Never called (`panic = "abort"`); the prebuilt `core` refers to it.
#[no_mangle]
extern "C" fn rust_eh_personality() {}
