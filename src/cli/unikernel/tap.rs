//! The hosted target's platform: a TAP device, the host's monotonic clock, `select(2)` on
//! the TAP descriptor, stdout for the log; and the smoltcp interface configured from the
//! flags.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};
use tlsflow_unikernel::Platform;

use super::{parse_cidr, TapArgs};
use crate::cli::Error;

/// Longest single sleep, so a Ctrl-C is noticed.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// The platform of the hosted target.
pub(crate) struct Tap {
    device: TunTapInterface,
    fd: RawFd,
    epoch: std::time::Instant,
    /// Set by Ctrl-C.
    pub(crate) stop: Arc<AtomicBool>,
}

impl Platform for Tap {
    type Device = TunTapInterface;

    fn device(&mut self) -> &mut TunTapInterface {
        &mut self.device
    }

    fn now(&self) -> SInstant {
        SInstant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    fn wait(&mut self, deadline: Option<SInstant>) {
        let mut sleep = MAX_SLEEP;
        if let Some(d) = deadline {
            let now = self.now();
            if d <= now {
                return;
            }
            sleep = sleep.min(Duration::from_micros((d - now).total_micros()));
        }
        let wait = SDuration::from_micros(sleep.as_micros() as u64);
        if let Err(e) = smoltcp::phy::wait(self.fd, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                // Never spin on a broken descriptor: sleep instead.
                std::thread::sleep(sleep);
            }
        }
    }

    fn log(&mut self, line: &str) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The stack: the platform, a smoltcp interface on it, and the sockets.
pub(crate) struct Net {
    pub(crate) tap: Tap,
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) addr: Ipv4Addr,
    /// The subnet on the wire (reached directly; anything else goes through `gateway`).
    subnet: Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
    next_port: u16,
}

fn random_u64() -> Result<u64, Error> {
    let mut seed = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| "no randomness for the TCP/IP stack")?;
    Ok(u64::from_le_bytes(seed))
}

impl Net {
    /// Attaches to the TAP device and configures the interface from the flags.
    pub(crate) fn open(args: &TapArgs) -> Result<Net, Error> {
        let (Some(tap), Some(ip)) = (&args.tap, &args.ip) else {
            return Err("--backend unikernel needs --tap NAME and --ip ADDR/PREFIX".into());
        };
        let (addr, prefix) = parse_cidr(ip)?;
        let subnet = Ipv4Cidr::new(addr, prefix);
        if let Some(gw) = args.gateway {
            // smoltcp would ARP for an off-subnet gateway and wait for an answer that
            // never comes.
            if !subnet.contains_addr(&gw) || gw == addr {
                return Err(format!(
                    "--gateway {gw} must be another address on --ip's subnet {}",
                    subnet.network()
                )
                .into());
            }
        }
        // smoltcp would make a missing device (gone again when we exit), and writing to a
        // device that is down fails with EIO, on which smoltcp panics: check both first.
        let flags = std::fs::read_to_string(format!("/sys/class/net/{tap}/flags"))
            .map_err(|_| format!("no network device {tap:?} (make it with `ip tuntap add`)"))?;
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
            .map_err(|_| format!("cannot read the flags of {tap}"))?;
        if flags & 1 == 0 {
            return Err(format!("the TAP device {tap} is down (`ip link set {tap} up`)").into());
        }
        let mut device = TunTapInterface::new(tap, Medium::Ethernet)
            .map_err(|e| format!("cannot attach to the TAP device {tap}: {e}"))?;
        let fd = device.as_raw_fd();
        let seed = random_u64()?;
        // A locally administered unicast MAC address.
        let b = seed.to_le_bytes();
        let mac = EthernetAddress([0x02, b[0], b[1], b[2], b[3], b[4]]);
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed;
        let epoch = std::time::Instant::now();
        let mut iface = Interface::new(config, &mut device, SInstant::ZERO);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::Ipv4(subnet));
        });
        if let Some(gw) = args.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .map_err(|_| "cannot add the default route")?;
        }
        Ok(Net {
            tap: Tap {
                device,
                fd,
                epoch,
                stop: Arc::new(AtomicBool::new(false)),
            },
            iface,
            sockets: SocketSet::new(vec![]),
            addr,
            subnet,
            gateway: args.gateway,
            next_port: 49152 + (b[5] as u16 % 8192),
        })
    }

    /// Fails unless the stack can send to `ip`: on its subnet, or through the gateway.
    /// (smoltcp itself would hold the packets back without a word, and a connection
    /// would only time out.)
    pub(crate) fn check_route(&self, ip: Ipv4Addr) -> Result<(), String> {
        if self.subnet.contains_addr(&ip) || self.gateway.is_some() {
            return Ok(());
        }
        Err(format!(
            "no route to {ip}: it is not on {} and there is no --gateway",
            self.subnet.network()
        ))
    }

    /// A local port for the next connection (or the server's, for `--addr ...:0`).
    pub(crate) fn take_port(&mut self) -> u16 {
        let port = self.next_port;
        self.next_port = 49152 + (self.next_port - 49152 + 1) % 16384;
        port
    }
}
