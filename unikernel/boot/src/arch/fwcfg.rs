//! QEMU's firmware configuration device over port I/O (selector 0x510, data 0x511): the
//! files QEMU's `-fw_cfg name=opt/tlsflow/...,file=...` hands to the guest.
//!
//! Unsafe: port I/O.

use alloc::vec::Vec;

use x86_64::instructions::port::Port;

const SELECTOR: u16 = 0x510;
const DATA: u16 = 0x511;
const SIGNATURE: u16 = 0x0000;
const FILE_DIR: u16 = 0x0019;

fn select(key: u16) {
    // SAFETY: the fw_cfg selector; selecting an item has no other effect.
    unsafe { Port::<u16>::new(SELECTOR).write(key) }
}

fn read(buf: &mut [u8]) {
    let mut port = Port::<u8>::new(DATA);
    for b in buf {
        // SAFETY: reading fw_cfg's data port advances within the selected item only.
        *b = unsafe { port.read() };
    }
}

fn read_be32() -> u32 {
    let mut b = [0; 4];
    read(&mut b);
    u32::from_be_bytes(b)
}

/// Whether QEMU's fw_cfg is there.
pub fn present() -> bool {
    select(SIGNATURE);
    let mut sig = [0; 4];
    read(&mut sig);
    &sig == b"QEMU"
}

/// The contents of the file called `name`, if QEMU was given one.
pub fn file(name: &str) -> Option<Vec<u8>> {
    if !present() {
        return None;
    }
    select(FILE_DIR);
    let count = read_be32();
    let mut found = None;
    for _ in 0..count {
        let size = read_be32();
        let mut sel = [0; 2];
        read(&mut sel);
        let mut reserved = [0; 2];
        read(&mut reserved);
        let mut entry_name = [0u8; 56];
        read(&mut entry_name);
        let len = entry_name.iter().position(|&b| b == 0).unwrap_or(56);
        if found.is_none() && &entry_name[..len] == name.as_bytes() {
            found = Some((u16::from_be_bytes(sel), size as usize));
        }
    }
    let (key, size) = found?;
    select(key);
    let mut data = alloc::vec![0; size];
    read(&mut data);
    Some(data)
}
