//! The entry: a multiboot v1 header with the a.out-kludge fields (QEMU's `-kernel` loads a
//! 64-bit ELF only that way), a 32-bit trampoline that identity-maps the first 4 GiB with
//! 2 MiB pages, enables SSE (and AVX state where the CPU has it, for *ring*), enters long
//! mode, and calls [`rust_start`] on a 1 MiB stack.
//!
//! Unsafe because it is the entry: assembly runs before any Rust invariant holds, and
//! `rust_start` is an unmangled symbol the assembly calls.

use core::arch::global_asm;

/// Stack size of the one thread.
pub const STACK_SIZE: usize = 1 << 20;

global_asm!(
    r#"
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00010003
    .section .multiboot, "a"
    .balign 4
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long 0x100000000 - (MB_MAGIC + MB_FLAGS)
    .long multiboot_header
    .long __load_start
    .long __load_end
    .long __bss_end
    .long _start32

    .section .boot.text, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    mov %eax, %edi
    mov %ebx, %esi
    mov $boot_stack_top, %esp

    mov $boot_pdpt, %eax
    or $3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $3, %eax
    mov %eax, boot_pdpt
    add $0x1000, %eax
    mov %eax, boot_pdpt + 8
    add $0x1000, %eax
    mov %eax, boot_pdpt + 16
    add $0x1000, %eax
    mov %eax, boot_pdpt + 24
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(,%ecx,8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, boot_pd + 4(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jb 1b

    mov %cr4, %eax
    or $0x620, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    and $0xFFFFFFFB, %eax
    or $0x80000002, %eax
    mov %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $start64

    .code64
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov %edi, %r12d
    mov %esi, %r13d
    mov $1, %eax
    cpuid
    bt $26, %ecx
    jnc 2f
    mov %ecx, %r8d
    mov %cr4, %rax
    or $0x40000, %rax
    mov %rax, %cr4
    mov $3, %eax
    bt $28, %r8d
    jnc 3f
    or $4, %eax
3:
    xor %edx, %edx
    xor %ecx, %ecx
    xsetbv
2:
    mov %r12d, %edi
    mov %r13d, %esi
    xor %ebp, %ebp
    call rust_start
4:
    hlt
    jmp 4b

    .section .rodata
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .bss
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4
boot_stack:
    .skip {stack}
boot_stack_top:
    .code64
    .text
"#,
    stack = const STACK_SIZE,
    options(att_syntax)
);

/// Called by the trampoline in long mode with the multiboot magic and the physical
/// address of the multiboot information.
#[no_mangle]
extern "C" fn rust_start(magic: u32, info: u32) -> ! {
    super::start(magic, info)
}
