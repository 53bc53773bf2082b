//! Exit codes through QEMU's `isa-debug-exit` device (`-device
//! isa-debug-exit,iobase=0xf4,iosize=0x04`): writing `v` to port 0xf4 ends QEMU with
//! status `v * 2 + 1`. Without that device the write does nothing and the CPU halts.
//!
//! Unsafe: port I/O.

use core::fmt::Write;

use x86_64::instructions::port::Port;

/// Why the image stopped. QEMU's exit status is `2 * code + 1` (the documented numbers are
/// in the README of `unikernel/boot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    /// The server served its `max=N` connections (QEMU status 33).
    Done = 0x10,
    /// No certificate or key in fw_cfg (QEMU status 35).
    NoCertificate = 0x11,
    /// The CPU has neither RDRAND nor RDSEED (QEMU status 37).
    NoEntropy = 0x12,
    /// A panic (QEMU status 39). Tests check it never happens.
    Panic = 0x13,
    /// A bad command line, certificate, key or port (QEMU status 41).
    BadConfig = 0x14,
    /// No virtio-net device, or it would not start (QEMU status 43).
    NoNetwork = 0x15,
    /// Not booted by a multiboot loader, or no usable memory (QEMU status 45).
    BadBoot = 0x16,
    /// The heap is exhausted (QEMU status 47).
    OutOfMemory = 0x17,
}

/// QEMU's exit status for `code`.
pub const fn qemu_status(code: Code) -> u32 {
    (code as u32) * 2 + 1
}

/// Ends the machine with `code`; halts forever if QEMU has no `isa-debug-exit`.
pub fn exit(code: Code) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device or nothing; writing it has no other
    // effect on this machine.
    unsafe { Port::<u32>::new(0xf4).write(code as u32) };
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Prints `tlsflow-boot: MESSAGE (exit N)` on the serial console and exits.
pub fn fail(code: Code, message: &str) -> ! {
    let _ = writeln!(
        super::serial::Console,
        "tlsflow-boot: {message} (exit {})",
        qemu_status(code)
    );
    exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(super::serial::Console, "tlsflow-boot: PANIC: {info}");
    let _ = writeln!(
        super::serial::Console,
        "tlsflow-boot: panicked (exit {})",
        qemu_status(Code::Panic)
    );
    exit(Code::Panic)
}
