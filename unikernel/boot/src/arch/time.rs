//! Time: the TSC as the monotonic clock, its rate measured against the PIT (channel 2,
//! gated through port 0x61, 10 ms), and wall time from the CMOS RTC read once at boot
//! and advanced by the TSC.
//!
//! Unsafe: port I/O to the PIT and the RTC.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

use super::cpu::rdtsc;

/// The PIT's input clock.
const PIT_HZ: u64 = 1_193_182;
/// Calibration interval: 10 ms of PIT ticks (one tick of error is 0.01 %).
const CALIBRATION_TICKS: u16 = (PIT_HZ / 100) as u16;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_BOOT: AtomicU64 = AtomicU64::new(0);
static UNIX_BOOT: AtomicU64 = AtomicU64::new(0);

fn outb(port: u16, value: u8) {
    // SAFETY: only the PIT (0x42, 0x43, 0x61) and CMOS (0x70) ports are written, with
    // values that program them as intended; nothing else lives there.
    unsafe { Port::<u8>::new(port).write(value) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: reading the PIT gate (0x61) or CMOS data (0x71) has no side effects.
    unsafe { Port::<u8>::new(port).read() }
}

/// Measures the TSC rate against the PIT, and reads the RTC. Returns the TSC rate in Hz.
pub fn init() -> u64 {
    // Gate off, speaker off; channel 2, lobyte/hibyte, mode 0 (terminal count), binary.
    let gate = inb(0x61);
    outb(0x61, gate & !0x03);
    outb(0x43, 0b1011_0000);
    outb(0x42, CALIBRATION_TICKS as u8);
    outb(0x42, (CALIBRATION_TICKS >> 8) as u8);
    // Gate on: counting starts; OUT2 (bit 5 of 0x61) rises at terminal count.
    outb(0x61, (gate & !0x02) | 0x01);
    let start = rdtsc();
    while inb(0x61) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    let end = rdtsc();
    outb(0x61, gate);
    let hz = (end - start) * PIT_HZ / u64::from(CALIBRATION_TICKS);
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
    TSC_BOOT.store(rdtsc(), Ordering::Relaxed);
    UNIX_BOOT.store(read_rtc(), Ordering::Relaxed);
    hz
}

/// Microseconds since [`init`].
pub fn micros() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed).max(1);
    let ticks = rdtsc().saturating_sub(TSC_BOOT.load(Ordering::Relaxed));
    (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64
}

/// TSC ticks as microseconds.
pub fn ticks_to_micros(ticks: u64) -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed).max(1);
    (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64
}

/// Seconds since the UNIX epoch (`None` if the RTC gave nothing sensible).
pub fn unix_now() -> Option<u64> {
    let boot = UNIX_BOOT.load(Ordering::Relaxed);
    (boot > 0).then(|| boot + micros() / 1_000_000)
}

fn cmos(reg: u8) -> u8 {
    outb(0x70, reg | 0x80);
    inb(0x71)
}

fn rtc_fields() -> [u8; 7] {
    while cmos(0x0A) & 0x80 != 0 {
        core::hint::spin_loop();
    }
    [
        cmos(0x00),
        cmos(0x02),
        cmos(0x04),
        cmos(0x07),
        cmos(0x08),
        cmos(0x09),
        cmos(0x32),
    ]
}

/// The RTC as seconds since the epoch (0 if it reads as nonsense).
fn read_rtc() -> u64 {
    // Read until two reads agree (an update may fall between the fields).
    let mut fields = rtc_fields();
    loop {
        let again = rtc_fields();
        if again == fields {
            break;
        }
        fields = again;
    }
    let status_b = cmos(0x0B);
    let bcd = |v: u8| {
        if status_b & 0x04 == 0 {
            (v & 0x0F) + (v >> 4) * 10
        } else {
            v
        }
    };
    let [sec, min, hour_raw, day, month, year, century] = fields;
    let mut hour = bcd(hour_raw & 0x7F);
    if status_b & 0x02 == 0 && hour_raw & 0x80 != 0 {
        hour = (hour % 12) + 12;
    }
    let century = match bcd(century) {
        19..=21 => u64::from(bcd(century)),
        _ => 20,
    };
    let year = century * 100 + u64::from(bcd(year));
    let (month, day) = (u64::from(bcd(month)), u64::from(bcd(day)));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return 0;
    }
    days_from_civil(year, month, day) * 86_400
        + u64::from(hour) * 3600
        + u64::from(bcd(min)) * 60
        + u64::from(bcd(sec))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
