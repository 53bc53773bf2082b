//! The bare-metal target's half of the application's platform seam: the virtio-net card,
//! the TSC clock, a wait that halts the CPU until the card's interrupt or the PIT's
//! one-shot at the deadline, and the serial console for the log, with a heap report every
//! `stats=N` connections and the time of the first connection attempt.

use core::fmt::Write;

use smoltcp::phy::{Device, DeviceCapabilities, RxToken};
use smoltcp::time::Instant;
use tlsflow_unikernel::Platform;

use crate::arch::serial::Console;
use crate::arch::virtio::{Nic, Rx, Tx};
use crate::arch::{cpu, heap, irq, time};

/// Longest single halt (the PIT's one-shot range is about 54 ms).
const MAX_SLEEP_MICROS: u64 = 50_000;
/// How long [`Boot::wait`] polls the card before it halts.
const SPIN_MICROS: u64 = 200;
use crate::say;

/// The card, watched for the first TCP SYN to the server's port.
pub struct Watched {
    nic: Nic,
    port: u16,
    tsc_entry: u64,
    seen_syn: bool,
}

impl Watched {
    /// The card's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.nic.mac
    }
}

/// Whether an Ethernet frame is an IPv4 TCP SYN (without ACK) to `port`.
fn is_syn_to(frame: &[u8], port: u16) -> bool {
    if frame.len() < 14 + 20 + 20 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 6 {
        return false;
    }
    let ihl = usize::from(frame[14] & 0x0F) * 4;
    let tcp = 14 + ihl;
    frame.len() >= tcp + 14
        && u16::from_be_bytes([frame[tcp + 2], frame[tcp + 3]]) == port
        && frame[tcp + 13] & 0x12 == 0x02
}

/// A received frame, looked at on its way to smoltcp.
pub struct WatchedRx<'a> {
    rx: Rx<'a>,
    watch: Option<(&'a mut bool, u16, u64)>,
}

impl RxToken for WatchedRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let watch = self.watch;
        self.rx.consume(|frame| {
            if let Some((seen, port, tsc_entry)) = watch {
                if is_syn_to(frame, port) {
                    *seen = true;
                    say!(
                        "first connection attempt {} us after entry",
                        time::ticks_to_micros(cpu::rdtsc() - tsc_entry)
                    );
                }
            }
            f(frame)
        })
    }
}

impl Device for Watched {
    type RxToken<'a> = WatchedRx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, now: Instant) -> Option<(WatchedRx<'_>, Tx<'_>)> {
        let (rx, tx) = self.nic.receive(now)?;
        let watch = (!self.seen_syn).then_some((&mut self.seen_syn, self.port, self.tsc_entry));
        Some((WatchedRx { rx, watch }, tx))
    }

    fn transmit(&mut self, now: Instant) -> Option<Tx<'_>> {
        self.nic.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.nic.capabilities()
    }
}

/// The platform.
pub struct Boot {
    device: Watched,
    stats_every: u64,
    connections: u64,
}

impl Boot {
    /// The platform over `nic`; the HTTPS server will listen on `port`.
    pub fn new(nic: Nic, port: u16, stats_every: u64, tsc_entry: u64) -> Boot {
        Boot {
            device: Watched {
                nic,
                port,
                tsc_entry,
                seen_syn: false,
            },
            stats_every,
            connections: 0,
        }
    }
}

impl Platform for Boot {
    type Device = Watched;

    fn device(&mut self) -> &mut Watched {
        &mut self.device
    }

    fn now(&self) -> Instant {
        Instant::from_micros(time::micros() as i64)
    }

    fn wait(&mut self, deadline: Option<Instant>) {
        // Clear the card's interrupt first, then look: a frame arriving after the look
        // raises the line again and ends the halt at once.
        self.device.nic.ack_interrupt();
        // Busy traffic: a frame usually follows within microseconds (an ACK, the next
        // segment), and a halt costs more than that under TCG; poll briefly first.
        let spin_until = self.now() + smoltcp::time::Duration::from_micros(SPIN_MICROS);
        loop {
            if self.device.nic.has_frame() {
                return;
            }
            let now = self.now();
            if deadline.is_some_and(|d| now >= d) {
                return;
            }
            if now >= spin_until {
                break;
            }
            core::hint::spin_loop();
        }
        let now = self.now();
        let mut sleep = MAX_SLEEP_MICROS;
        if let Some(d) = deadline {
            if d <= now {
                return;
            }
            sleep = sleep.min((d - now).total_micros());
        }
        if !irq::nic_interrupts() {
            // No interrupt line: poll the card at 1 kHz.
            sleep = sleep.min(1000);
        }
        irq::halt(sleep);
    }

    fn log(&mut self, line: &str) {
        let _ = writeln!(Console, "{line}");
        self.connections += 1;
        if self.connections.is_multiple_of(self.stats_every) {
            let h = heap::stats();
            say!(
                "heap after {} connections: in use {} bytes, high-water {} bytes (of {})",
                self.connections,
                h.in_use,
                h.peak,
                h.size
            );
        }
    }
}
