//! The CPU: the time-stamp counter and the hardware random number generators.
//!
//! Unsafe: `rdtsc` and `rdseed` are instructions (inline assembly or intrinsics);
//! RDRAND goes through the `x86_64` crate's safe wrapper.

use core::arch::x86_64::{__cpuid, __cpuid_count, _rdtsc};

use x86_64::instructions::random::RdRand;

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86_64 CPU and has no side effects.
    unsafe { _rdtsc() }
}

/// Whether the CPU has RDSEED (CPUID leaf 7, EBX bit 18).
fn has_rdseed() -> bool {
    let max = __cpuid(0).eax;
    max >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0
}

fn rdseed64() -> Option<u64> {
    let value: u64;
    let ok: u8;
    // SAFETY: only called when CPUID says RDSEED exists; it writes a register and CF.
    unsafe {
        core::arch::asm!(
            "rdseed {v}",
            "setc {ok}",
            v = out(reg) value,
            ok = out(reg_byte) ok,
            options(nomem, nostack)
        );
    }
    (ok == 1).then_some(value)
}

/// The hardware entropy source: RDRAND where present, else RDSEED.
#[derive(Debug, Clone, Copy)]
pub enum Entropy {
    /// RDRAND (the DRBG; retried as Intel recommends).
    RdRand(RdRand),
    /// RDSEED only.
    RdSeed,
}

impl Entropy {
    /// The source this CPU has, if any.
    pub fn detect() -> Option<Entropy> {
        if let Some(r) = RdRand::new() {
            return Some(Entropy::RdRand(r));
        }
        has_rdseed().then_some(Entropy::RdSeed)
    }

    /// One 64-bit random word; `None` if the source failed many times in a row.
    pub fn next_u64(self) -> Option<u64> {
        for _ in 0..128 {
            let word = match self {
                Entropy::RdRand(r) => r.get_u64(),
                Entropy::RdSeed => rdseed64(),
            };
            if word.is_some() {
                return word;
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Fills `buf`; `false` if the source failed.
    pub fn fill(self, buf: &mut [u8]) -> bool {
        for chunk in buf.chunks_mut(8) {
            let Some(word) = self.next_u64() else {
                return false;
            };
            chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        }
        true
    }
}
