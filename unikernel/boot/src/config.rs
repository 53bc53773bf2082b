//! Options from the kernel command line (`-append "ip=10.0.2.15/24 gw=10.0.2.2 port=443"`).
//!
//! - `ip=ADDR/PREFIX`: a static address (default: DHCP).
//! - `gw=ADDR`: the default gateway with `ip=` (DHCP brings its own).
//! - `port=N`: the HTTPS port (default 443).
//! - `max=N`: exit (code 33) after N connections (default: serve forever).
//! - `stats=N`: report the heap over serial every N connections (default 100).
//! - `offload=off`: no checksum offload even where the card offers it (for comparison).

use alloc::format;
use alloc::string::String;

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Static address, or `None` for DHCP.
    pub ip: Option<Ipv4Cidr>,
    /// Default gateway with a static address.
    pub gateway: Option<Ipv4Address>,
    /// HTTPS port.
    pub port: u16,
    /// Connections to serve before exiting.
    pub max_connections: Option<u64>,
    /// Heap report interval, in connections.
    pub stats_every: u64,
    /// Ask the card for checksum offload.
    pub offload: bool,
}

fn number<T: core::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("bad command line: {key}={value:?} is not a number"))
}

impl Options {
    /// Parses `key=value` words; unknown words are an error (a typo should not be ignored).
    pub fn parse(cmdline: &str) -> Result<Options, String> {
        let mut o = Options {
            ip: None,
            gateway: None,
            port: 443,
            max_connections: None,
            stats_every: 100,
            offload: true,
        };
        // Multiboot loaders (QEMU, GRUB) put the kernel's file name first.
        for word in cmdline.split_ascii_whitespace().skip(1) {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!("bad command line word {word:?} (want key=value)"));
            };
            match key {
                "ip" => {
                    let (a, p) = value.split_once('/').ok_or_else(|| {
                        format!("bad command line: ip={value:?} wants ADDR/PREFIX")
                    })?;
                    let a: Ipv4Address = a
                        .parse()
                        .map_err(|_| format!("bad command line: ip={value:?}"))?;
                    let p: u8 = number(key, p)?;
                    if p > 32 {
                        return Err(format!("bad command line: ip={value:?}"));
                    }
                    o.ip = Some(Ipv4Cidr::new(a, p));
                }
                "gw" => {
                    o.gateway = Some(
                        value
                            .parse()
                            .map_err(|_| format!("bad command line: gw={value:?}"))?,
                    )
                }
                "port" => o.port = number(key, value)?,
                "max" => o.max_connections = Some(number(key, value)?),
                "stats" => o.stats_every = number::<u64>(key, value)?.max(1),
                "offload" => {
                    o.offload = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("bad command line: offload={value:?} (on|off)")),
                    }
                }
                _ => return Err(format!("bad command line: unknown option {key:?}")),
            }
        }
        if o.port == 0 {
            return Err(String::from("bad command line: port=0"));
        }
        Ok(o)
    }
}
