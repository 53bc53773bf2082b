//! The smoltcp interface on the card: Ethernet with the card's MAC address, and an IPv4
//! address from DHCP (smoltcp's DHCPv4 socket) or from `ip=`/`gw=`.
//!
//! The DHCP lease is taken once at boot and not renewed (QEMU's user network leases for a
//! day and never takes an address back).

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};
use tlsflow_unikernel::Platform;

use crate::config::Options;
use crate::platform::Boot;
use crate::say;

/// How long DHCP may take.
const DHCP_TIMEOUT: Duration = Duration::from_secs(20);

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // The image refused to start without a source, so this fills.
    let _ = crate::arch::libc::entropy().map(|e| e.fill(&mut b));
    u64::from_le_bytes(b)
}

/// Makes the interface and gives it its address; returns it and the address.
pub fn configure(
    platform: &mut Boot,
    sockets: &mut SocketSet<'static>,
    options: &Options,
) -> Result<(Interface, Ipv4Address), &'static str> {
    let mac = EthernetAddress(platform.device().mac());
    let mut config = Config::new(HardwareAddress::Ethernet(mac));
    config.random_seed = seed();
    let now = platform.now();
    let mut iface = Interface::new(config, platform.device(), now);
    if let Some(cidr) = options.ip {
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::Ipv4(cidr));
        });
        if let Some(gw) = options.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .map_err(|_| "cannot add the default route")?;
        }
        say!("address {cidr} (static), MAC {mac}");
        return Ok((iface, cidr.address()));
    }
    let handle = sockets.add(dhcpv4::Socket::new());
    let start = platform.now();
    let result = loop {
        let now: Instant = platform.now();
        if now - start > DHCP_TIMEOUT {
            break Err("no DHCP answer in 20 s (pass ip=ADDR/PREFIX gw=ADDR for a static address)");
        }
        let _ = iface.poll(now, platform.device(), sockets);
        if let Some(dhcpv4::Event::Configured(c)) = sockets.get_mut::<dhcpv4::Socket>(handle).poll()
        {
            iface.update_ip_addrs(|a| {
                a.clear();
                let _ = a.push(IpCidr::Ipv4(c.address));
            });
            if let Some(router) = c.router {
                iface
                    .routes_mut()
                    .add_default_ipv4_route(router)
                    .map_err(|_| "cannot add the default route")?;
            }
            say!(
                "address {} by DHCP, router {:?}, MAC {mac}",
                c.address,
                c.router
            );
            break Ok((iface, c.address.address()));
        }
        let deadline = iface.poll_at(now, sockets);
        platform.wait(deadline.or(Some(now + Duration::from_millis(100))));
    };
    sockets.remove(handle);
    result
}
