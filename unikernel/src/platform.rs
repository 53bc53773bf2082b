//! The seam between the application and its target.
//!
//! A target (a Linux process on a TAP device, a bare-metal image on virtio-net) supplies
//! the network device, a monotonic clock, a way to sleep until a frame arrives or a
//! deadline passes, and a log sink; [`run_server`](crate::run_server) and
//! [`run_fetch`](crate::run_fetch) are then the same event loop on every target. Wall
//! time for certificate checks and tickets goes into the rustls configurations through
//! [`WallClock`]. Entropy is not here: the *ring* provider and smoltcp's seeds come from
//! `getrandom`, which each target configures (a custom backend on bare metal).

use core::fmt;

use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;
use smoltcp::phy::Device;
use smoltcp::time::Instant;

/// What a target provides.
pub trait Platform {
    /// The network device smoltcp's interface polls.
    type Device: Device;

    /// The device, for one `Interface::poll`.
    fn device(&mut self) -> &mut Self::Device;

    /// Monotonic time (never goes back; any epoch).
    fn now(&self) -> Instant;

    /// Sleeps until a frame may have arrived on the device or `deadline` has passed
    /// (`None`: until a frame). May return early (a signal, a spurious wake-up).
    fn wait(&mut self, deadline: Option<Instant>);

    /// Writes one log line (without its newline).
    fn log(&mut self, line: &str);

    /// Whether the embedder asks the loop to stop (Ctrl-C); checked every round.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// A rustls [`TimeProvider`] over a function returning seconds since the UNIX epoch
/// (`None`: the time is unknown, and certificate checks fail).
#[derive(Clone, Copy)]
pub struct WallClock(pub fn() -> Option<u64>);

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WallClock")
    }
}

impl TimeProvider for WallClock {
    fn current_time(&self) -> Option<UnixTime> {
        (self.0)().map(|s| UnixTime::since_unix_epoch(core::time::Duration::from_secs(s)))
    }
}
