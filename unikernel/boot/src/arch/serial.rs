//! The serial console: COM1 (port 0x3f8), a 16550 driven by `uart_16550`.
//!
//! Unsafe: `SerialPort::new` trusts that a UART is at that port (QEMU's `-serial` puts
//! one there on every PC machine).

use core::cell::RefCell;
use core::fmt;

use uart_16550::SerialPort;

/// The one console (one CPU, no interrupts: a `RefCell` is enough).
struct Port(RefCell<Option<SerialPort>>);

// SAFETY: the image runs on one CPU and takes no interrupts, so nothing can reach the
// cell from two places at once.
unsafe impl Sync for Port {}

static COM1: Port = Port(RefCell::new(None));

/// Initialises COM1.
pub fn init() {
    // SAFETY: QEMU's PC machines have a 16550 at 0x3f8.
    let mut port = unsafe { SerialPort::new(0x3f8) };
    port.init();
    *COM1.0.borrow_mut() = Some(port);
}

/// Writes to COM1 (`core::fmt::Write`); nothing before [`init`].
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Ok(mut port) = COM1.0.try_borrow_mut() {
            if let Some(port) = port.as_mut() {
                // Raw bytes: lines end in `\n` alone, as on a Unix terminal.
                for b in s.bytes() {
                    port.send_raw(b);
                }
            }
        }
        Ok(())
    }
}
