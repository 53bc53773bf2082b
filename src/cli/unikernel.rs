//! `--backend unikernel`: the hosted target of the no_std HTTPS application
//! ([`tlsflow_unikernel`]): `serve` and `get` over tlsflow's own TCP/IP stack (smoltcp,
//! with tls-unikernel's TLS sockets) on a TAP device.
//!
//! The host kernel is only the wire, as with Solo5's `spt`: Ethernet frames go through the
//! TAP device, and ARP, IP and TCP are smoltcp's. This module is the target's half of the
//! application's platform seam ([`tap::Tap`]: the TAP device, the host's monotonic clock,
//! `select(2)` on the TAP descriptor until a frame or the next timer, stdout for the log)
//! and the flags; the event loop, the HTTP server and client are the application's, the
//! same code a bare-metal image runs.
//!
//! Peers off `--ip`'s subnet are reached through `--gateway` (the client refuses at once
//! without one). smoltcp answers ARP requests only from its own subnet: a gateway that
//! asks from another address (Linux does for packets it sends itself from an address on
//! another interface, unless `net.ipv4.conf.TAP.arp_announce=2`) gets no answer.

use std::net::Ipv4Addr;

use clap::{Args, ValueEnum};

use super::Error;

mod client;
mod server;
mod tap;

pub(crate) use client::Client;
pub(crate) use server::{serve, ServeLimits};

/// Which network stack carries the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Backend {
    /// The host's sockets (tls-unix).
    Unix,
    /// tlsflow's own smoltcp stack on a TAP device (tls-unikernel): needs --tap and --ip.
    Unikernel,
}

/// Where the unikernel backend's stack lives.
#[derive(Debug, Args, Clone)]
pub(crate) struct TapArgs {
    /// With --backend unikernel: the TAP device the stack sends its frames through (it
    /// must exist; root or the device's owner may attach to it).
    #[arg(long, value_name = "NAME")]
    tap: Option<String>,
    /// With --backend unikernel: the stack's own IPv4 address and prefix length.
    #[arg(long, value_name = "ADDR/PREFIX")]
    ip: Option<String>,
    /// With --backend unikernel: the default gateway (on --ip's subnet), for peers off
    /// that subnet. Without it the stack reaches only its own subnet.
    #[arg(long, value_name = "ADDR")]
    gateway: Option<Ipv4Addr>,
}

fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), Error> {
    let bad = || format!("--ip wants an IPv4 ADDR/PREFIX such as 192.0.2.2/24, not {text:?}");
    let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad().into());
    }
    Ok((addr, prefix))
}
