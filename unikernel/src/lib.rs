//! tlsflow's HTTPS application for smoltcp targets: an HTTPS (or echo) server and a small
//! HTTPS client over [tls-unikernel](tls_unikernel)'s TLS sockets, `#![no_std]` + `alloc`.
//!
//! One application, several targets, in MirageOS's manner: the target implements
//! [`Platform`] (the network device, a monotonic clock, a way to sleep until a frame or a
//! deadline, a log sink) and runs [`run_server`] or [`run_fetch`]; the application never
//! knows whether it is a Linux process on a TAP device (`tlsflow serve --backend
//! unikernel`) or a bare-metal image on virtio-net.
//!
//! - [`Server`]: every connection a small state machine stepped from one loop, requests
//!   parsed with `httparse`, keep-alive and pipelining, bounded heads (`431`) and bodies
//!   (`413`), malformed requests answered `400` then close_notify, header-read and idle
//!   timeouts on the platform's clock, a response head and small body sealed into one
//!   TLS record and `/bytes/N` generated in full records as the TCP ring has room. One
//!   log line per connection ([`log`]).
//! - [`Fetch`]: one `GET` with content-length, chunked or until-close bodies and their
//!   SHA-256.
//! - [`http`] and [`log`] hold the pure pieces (routes, the `/bytes/N` pattern, the `/`
//!   page, heads, the log line, [`CloseReason`]) for any server of the project.
//! - [`Config`]: every limit in one place.
//!
//! What it does **not** do: no sockets of the host, no threads, no clock or randomness of
//! its own (time comes from [`Platform::now`]; entropy for the TLS provider and smoltcp's
//! seeds is `getrandom`'s business, configured by each target), no DNS, no DHCP, no
//! HTTP/2, no chunked request bodies (`501`), no files. It does not make the smoltcp
//! interface either: the target configures addresses and routes (or runs DHCP) and
//! passes the interface and socket set in.
//!
//! That nothing here needs std is checked by building the crate alone (no `std` feature
//! in its graph) and by `unikernel/freestanding/`, a `#![no_std] #![no_main]` program in
//! its own workspace that runs the server and the client over an in-memory wire.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use smoltcp::iface::{Interface, SocketSet};
//! # fn demo<P: tlsflow_unikernel::Platform>(platform: &mut P, iface: &mut Interface,
//! #     tls: Arc<rustls::ServerConfig>) {
//! let mut sockets = SocketSet::new(Vec::new());
//! let config = tlsflow_unikernel::Config::default();
//! let mut server = tlsflow_unikernel::Server::new(&mut sockets, 443, tls, config).unwrap();
//! tlsflow_unikernel::run_server(platform, iface, &mut sockets, &mut server);
//! # }
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod client;
pub mod config;
pub mod http;
pub mod log;
pub mod platform;
pub mod server;

#[cfg(test)]
mod tests;

pub use client::{Fetch, FetchError, FetchEvent, Fetched};
pub use config::Config;
pub use log::{Cause, CloseReason, TlsEnd};
pub use platform::{Platform, WallClock};
pub use server::{Poll, Server};

use smoltcp::iface::{Interface, PollResult, SocketSet};
use smoltcp::time::Instant;

/// How [`run_server`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `max_connections` were served.
    Served,
    /// [`Platform::stop_requested`]: open connections were reset and logged.
    Stopped,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The server's event loop: polls the interface and the server, and sleeps in
/// [`Platform::wait`] until a frame or the next timer when nothing moved. Returns when
/// the server is done or the platform asks to stop.
pub fn run_server<P: Platform>(
    platform: &mut P,
    iface: &mut Interface,
    sockets: &mut SocketSet<'_>,
    server: &mut Server,
) -> Ended {
    loop {
        let now = platform.now();
        let changed = iface.poll(now, platform.device(), sockets) == PollResult::SocketStateChanged;
        if platform.stop_requested() {
            server.shutdown(now, sockets);
            let _ = iface.poll(now, platform.device(), sockets);
            server.finish_shutdown(sockets, &mut |line| platform.log(line));
            return Ended::Stopped;
        }
        let poll = server.poll(now, sockets, &mut |line| platform.log(line));
        if server.is_done() {
            // Let the last FIN/ACKs out.
            let _ = iface.poll(now, platform.device(), sockets);
            return Ended::Served;
        }
        if changed || poll.busy {
            continue;
        }
        let deadline = earliest(iface.poll_at(now, sockets), poll.wake);
        platform.wait(deadline);
    }
}

/// Runs `fetch` to its end on the platform: `on_event` sees every event but
/// [`FetchEvent::Pending`] (the handshake, the status) and body bytes go to `sink`.
/// The socket stays in `sockets`; after a TLS error its alert and FIN go out first (the
/// socket resets by itself if the peer does not take them within its error linger), after
/// any other failure it is aborted (the RST sent) before returning. `Err(None)`: the platform asked to stop.
pub fn run_fetch<P: Platform>(
    platform: &mut P,
    iface: &mut Interface,
    sockets: &mut SocketSet<'_>,
    fetch: &mut Fetch,
    sink: &mut dyn FnMut(&[u8]),
    on_event: &mut dyn FnMut(&FetchEvent, &mut Fetch),
) -> Result<Fetched, Option<FetchError>> {
    let result = loop {
        let now = platform.now();
        let changed = iface.poll(now, platform.device(), sockets) == PollResult::SocketStateChanged;
        let at = fetch.tls().poll(now, sockets);
        match fetch.step(now, sockets, sink) {
            Ok(FetchEvent::Done(fetched)) => return Ok(fetched),
            Ok(FetchEvent::Pending) => {}
            Ok(event) => {
                on_event(&event, fetch);
                continue;
            }
            Err(e) => break Some(e),
        }
        if platform.stop_requested() {
            break None;
        }
        if changed || at == tls_unikernel::PollAt::Now {
            continue;
        }
        let tls_at = match at {
            tls_unikernel::PollAt::Time(t) => Some(t),
            _ => None,
        };
        let deadline = earliest(
            earliest(iface.poll_at(now, sockets), tls_at),
            fetch.deadline(),
        );
        platform.wait(deadline);
    };
    if result.is_some() && fetch.tls().error().is_some() {
        // A TLS failure: the socket sends its alert, then FIN, and resets by itself if
        // the peer does not take them within its error linger; pump until it is closed.
        while !fetch.tls().is_closed(sockets) && !platform.stop_requested() {
            let now = platform.now();
            let _ = iface.poll(now, platform.device(), sockets);
            let at = fetch.tls().poll(now, sockets);
            let tls_at = match at {
                tls_unikernel::PollAt::Now => continue,
                tls_unikernel::PollAt::Time(t) => Some(t),
                tls_unikernel::PollAt::Ingress => None,
            };
            platform.wait(earliest(iface.poll_at(now, sockets), tls_at));
        }
    }
    if !fetch.tls().is_closed(sockets) {
        fetch.tls().abort(sockets);
    }
    let now = platform.now();
    let _ = iface.poll(now, platform.device(), sockets);
    Err(result)
}
