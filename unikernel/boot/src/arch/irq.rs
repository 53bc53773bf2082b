//! Sleeping without spinning: an IDT, the 8259 PICs remapped to vectors 0x20..0x2F, the
//! PIT's channel 0 as a one-shot timer, and the virtio-net card's PCI interrupt line, so
//! [`halt`] can `hlt` until a frame or a deadline. Interrupts are enabled only inside
//! `tlsflow_halt` (`sti; hlt; cli; ret`, an assembly function called like any other), so
//! no interrupt ever lands in Rust code: no red zone is clobbered and no Rust state is
//! shared with a handler beyond two atomics. Each IRQ handler masks its line and sends
//! EOI; [`halt`] unmasks the lines before halting (the card's line is level-triggered:
//! the driver reads its ISR first). CPU exceptions print on serial and exit with the
//! panic status (never a silent triple fault and reboot).
//!
//! Unsafe: the IDT and `lidt`, port I/O to the PICs and the PIT, and the assembly.

use alloc::boxed::Box;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU8, Ordering};

use x86_64::instructions::port::Port;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::exit::{exit, Code};

global_asm!(
    r#"
    .text
    .balign 16
tlsflow_exception_stubs:
    vector = 0
    .rept 32
    .balign 16
    push $vector
    jmp tlsflow_exception_common
    vector = vector + 1
    .endr
tlsflow_exception_common:
    pop %rdi
    mov %cr2, %rsi
    and $-16, %rsp
    call rust_exception
    ud2

    .balign 16
tlsflow_irq_stubs:
    irq = 0
    .rept 16
    .balign 16
    push $irq
    jmp tlsflow_irq_common
    irq = irq + 1
    .endr
tlsflow_irq_common:
    pop %rdi
    sub $8, %rsp
    call rust_irq
    add $8, %rsp
    iretq

    .global tlsflow_halt
tlsflow_halt:
    sti
    hlt
    cli
    ret
"#,
    options(att_syntax)
);

extern "C" {
    static tlsflow_exception_stubs: u8;
    static tlsflow_irq_stubs: u8;
    fn tlsflow_halt();
}

/// PIC mask bits of the lines [`halt`] waits on (bit n: IRQ n), besides the timer.
static NIC_IRQ: AtomicU8 = AtomicU8::new(0xFF);

fn outb(port: u16, value: u8) {
    // SAFETY: only the PIC (0x20, 0x21, 0xA0, 0xA1) and PIT (0x40, 0x43) ports are
    // written, with the values that program them as documented.
    unsafe { Port::<u8>::new(port).write(value) }
}

fn gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xFFFF) | (0x08 << 16) | (0x8E << 40) | (((handler >> 16) & 0xFFFF) << 48);
    [low, handler >> 32]
}

fn set_masks(master: u8, slave: u8) {
    outb(0x21, master);
    outb(0xA1, slave);
}

/// Installs the IDT and remaps the PICs (every line masked). `nic_irq`: the card's PCI
/// interrupt line, if it has one.
pub fn init(nic_irq: Option<u8>) {
    let exceptions = core::ptr::addr_of!(tlsflow_exception_stubs) as u64;
    let irqs = core::ptr::addr_of!(tlsflow_irq_stubs) as u64;
    let mut idt = Box::new([[0u64; 2]; 256]);
    for (v, entry) in idt.iter_mut().enumerate().take(32) {
        *entry = gate(exceptions + 16 * v as u64);
    }
    for i in 0..16 {
        idt[0x20 + i] = gate(irqs + 16 * i as u64);
    }
    let idt: &'static [[u64; 2]; 256] = Box::leak(idt);
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<[[u64; 2]; 256]>() - 1) as u16,
        base: VirtAddr::new(idt.as_ptr() as u64),
    };
    // SAFETY: the table is leaked ('static), its gates point at the stubs above in the
    // kernel code segment (0x08), and interrupts are off until `tlsflow_halt`.
    unsafe { lidt(&pointer) };
    // ICW1..4: cascade, vectors 0x20 and 0x28, slave on IRQ2, 8086 mode.
    for (port, value) in [
        (0x20, 0x11),
        (0xA0, 0x11),
        (0x21, 0x20),
        (0xA1, 0x28),
        (0x21, 0x04),
        (0xA1, 0x02),
        (0x21, 0x01),
        (0xA1, 0x01),
    ] {
        outb(port, value);
    }
    set_masks(0xFF, 0xFF);
    if let Some(irq) = nic_irq.filter(|&i| i < 16 && i != 0 && i != 2) {
        NIC_IRQ.store(irq, Ordering::Relaxed);
    }
}

/// Whether the card interrupts (else [`halt`] only sleeps until the timer).
pub fn nic_interrupts() -> bool {
    NIC_IRQ.load(Ordering::Relaxed) < 16
}

/// Halts until an interrupt: the card's, or the PIT after `micros` (at most ~54 ms).
pub fn halt(micros: u64) {
    let ticks = (micros * 1_193_182 / 1_000_000).clamp(1, 0xFFFF) as u16;
    // Channel 0, lobyte/hibyte, mode 0 (interrupt on terminal count).
    outb(0x43, 0b0011_0000);
    outb(0x40, ticks as u8);
    outb(0x40, (ticks >> 8) as u8);
    let mut master: u8 = !0x01;
    let mut slave: u8 = 0xFF;
    let nic = NIC_IRQ.load(Ordering::Relaxed);
    if nic < 8 {
        master &= !(1 << nic);
    } else if nic < 16 {
        master &= !0x04;
        slave &= !(1 << (nic - 8));
    }
    set_masks(master, slave);
    // SAFETY: `sti; hlt; cli; ret`; the handlers preserve what the C ABI wants preserved.
    unsafe { tlsflow_halt() };
    set_masks(0xFF, 0xFF);
}

#[no_mangle]
extern "C" fn rust_irq(irq: u64) {
    // Every line stays masked until the next `halt` (the card's line is level-triggered
    // and stays asserted until the driver reads its ISR); EOI to the slave for its lines.
    set_masks(0xFF, 0xFF);
    if irq >= 8 {
        outb(0xA0, 0x20);
    }
    outb(0x20, 0x20);
}

#[no_mangle]
extern "C" fn rust_exception(vector: u64, cr2: u64) -> ! {
    use core::fmt::Write;
    let _ = writeln!(
        super::serial::Console,
        "tlsflow-boot: PANIC: CPU exception {vector} (cr2 {cr2:#x}) (exit {})",
        super::exit::qemu_status(Code::Panic)
    );
    exit(Code::Panic)
}
