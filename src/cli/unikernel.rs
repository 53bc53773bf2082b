//! `--backend unikernel`: `serve` and `get` over tlsflow's own TCP/IP stack (smoltcp, with
//! tls-unikernel's [`TlsListener`](tls_unikernel::TlsListener) and [`TlsSocket`]) on a
//! TAP device.
//!
//! The host kernel is only the wire, as with Solo5's `spt`: Ethernet frames go through the
//! TAP device, and ARP, IP and TCP are smoltcp's. The stack runs on the calling thread;
//! between rounds of `Interface::poll` it sleeps in `select(2)` on the TAP descriptor
//! (`smoltcp::phy::wait`) until a frame arrives or the earliest timer of the stack and the
//! TLS sockets, never spinning. The server ([`server`]) serves every connection from that
//! one loop, as a unikernel would: no threads, each connection a small state machine.
//!
//! Peers off `--ip`'s subnet are reached through `--gateway` (the client refuses at once
//! without one). smoltcp answers ARP requests only from its own subnet: a gateway that
//! asks from another address (Linux does for packets it sends itself from an address on
//! another interface, unless `net.ipv4.conf.TAP.arp_announce=2`) gets no answer.

use std::io::{self, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rustls::pki_types::ServerName;
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration as SDuration, Instant as SInstant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Cidr};
use tls_unikernel::{Options, PollAt, TlsSocket};

use super::get::{Fetched, Url};
use super::serve::TRUNCATED;
use super::Error;
use tlsflow::http;

mod server;

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

/// Bound on one read, write or handshake, as for the Unix backend.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest single sleep, so a Ctrl-C is noticed.
const MAX_SLEEP: Duration = Duration::from_millis(500);
/// TCP rings per connection: room for several full-sized segments each way.
const RING: usize = 64 * 1024;

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

fn random_u64() -> Result<u64, Error> {
    let mut seed = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| "no randomness for the TCP/IP stack")?;
    Ok(u64::from_le_bytes(seed))
}

fn io_error(e: tls_unikernel::Error) -> io::Error {
    let kind = match e {
        tls_unikernel::Error::Truncated => io::ErrorKind::UnexpectedEof,
        tls_unikernel::Error::Reset => io::ErrorKind::ConnectionReset,
        tls_unikernel::Error::HandshakeTimeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// The stack: a TAP device, a smoltcp interface on it, and the sockets.
pub(crate) struct Net {
    device: TunTapInterface,
    fd: RawFd,
    iface: Interface,
    sockets: SocketSet<'static>,
    epoch: Instant,
    addr: Ipv4Addr,
    /// The subnet on the wire (reached directly; anything else goes through `gateway`).
    subnet: Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
    /// Set by Ctrl-C: waits end with `Interrupted`.
    stop: Arc<AtomicBool>,
    next_port: u16,
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
        let epoch = Instant::now();
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
            device,
            fd,
            iface,
            sockets: SocketSet::new(vec![]),
            epoch,
            addr,
            subnet,
            gateway: args.gateway,
            stop: Arc::new(AtomicBool::new(false)),
            next_port: 49152 + (b[5] as u16 % 8192),
        })
    }

    /// Fails unless the stack can send to `ip`: on its subnet, or through the gateway.
    /// (smoltcp itself would hold the packets back without a word, and a connection
    /// would only time out.)
    fn check_route(&self, ip: Ipv4Addr) -> Result<(), String> {
        if self.subnet.contains_addr(&ip) || self.gateway.is_some() {
            return Ok(());
        }
        Err(format!(
            "no route to {ip}: it is not on {} and there is no --gateway",
            self.subnet.network()
        ))
    }

    fn now(&self) -> SInstant {
        SInstant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    /// Runs the stack (and `tls`, if given) until `op` returns a value, an error, or
    /// `timeout` passes. `op` is tried after every round; between rounds that made no
    /// progress the thread sleeps on the TAP descriptor until the next timer.
    fn pump<T>(
        &mut self,
        mut tls: Option<&mut TlsSocket>,
        timeout: Duration,
        mut op: impl FnMut(
            Option<&mut TlsSocket>,
            &mut SocketSet<'static>,
        ) -> Result<Option<T>, tls_unikernel::Error>,
    ) -> io::Result<T> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let now = self.now();
            let changed = self.iface.poll(now, &mut self.device, &mut self.sockets)
                == PollResult::SocketStateChanged;
            let at = match tls.as_deref_mut() {
                Some(t) => t.poll(now, &mut self.sockets),
                None => PollAt::Ingress,
            };
            if let Some(v) = op(tls.as_deref_mut(), &mut self.sockets).map_err(io_error)? {
                return Ok(v);
            }
            if changed || at == PollAt::Now {
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
            }
            let left = deadline.map_or(MAX_SLEEP, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            let mut sleep = left.min(MAX_SLEEP);
            if let Some(d) = self.iface.poll_delay(now, &self.sockets) {
                sleep = sleep.min(Duration::from_micros(d.total_micros()));
            }
            if let PollAt::Time(t) = at {
                sleep = sleep.min(Duration::from_micros((t - now).total_micros()));
            }
            if !sleep.is_zero() {
                let wait = SDuration::from_micros(sleep.as_micros() as u64);
                if let Err(e) = smoltcp::phy::wait(self.fd, Some(wait)) {
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Waits for `tls`'s handshake to complete.
    fn handshake(&mut self, tls: &mut TlsSocket) -> io::Result<()> {
        self.pump(Some(tls), HANDSHAKE_TIMEOUT, |t, _| {
            let t = t.expect("a socket");
            match t.error() {
                Some(e) => Err(e.clone()),
                None if t.is_established() => Ok(Some(())),
                None => Ok(None),
            }
        })
    }

    /// Sends close_notify, reads until the peer's (discarding data) and waits for the TCP
    /// close; names how the connection ended.
    fn finish(&mut self, tls: &mut TlsSocket) -> String {
        let peer_first = tls.session().is_some_and(|s| s.peer_has_closed());
        tls.close(&mut self.sockets);
        let mut sink = [0u8; 4096];
        let reason = self.pump(Some(tls), IO_TIMEOUT, |t, s| {
            match t.expect("a socket").recv_slice(s, &mut sink) {
                Ok(_) => Ok(None),
                Err(tls_unikernel::Error::Finished) => Ok(Some(if peer_first {
                    "close_notify (peer first)".to_string()
                } else {
                    "close_notify (both)".to_string()
                })),
                Err(tls_unikernel::Error::Truncated) => Ok(Some(TRUNCATED.to_string())),
                Err(e) => Ok(Some(format!("error: {e}"))),
            }
        });
        let reason = reason.unwrap_or_else(|e| format!("error: {e}"));
        // Let the TCP close finish (bounded by the socket's linger), so the peer sees FIN.
        let _ = self.pump(Some(tls), IO_TIMEOUT, |t, s| {
            Ok(t.expect("a socket").is_closed(s).then_some(()))
        });
        self.sockets.remove(tls.handle());
        reason
    }
}

/// A blocking byte stream over one [`TlsSocket`] of a [`Net`], counting plaintext.
struct Conn<'a> {
    net: &'a mut Net,
    tls: &'a mut TlsSocket,
    read: u64,
    written: u64,
}

impl Read for Conn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.net.pump(Some(self.tls), IO_TIMEOUT, |t, s| {
            match t.expect("a socket").recv_slice(s, buf) {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n)),
                Err(tls_unikernel::Error::Finished) => Ok(Some(0)),
                Err(e) => Err(e),
            }
        })?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Write for Conn<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.net.pump(Some(self.tls), IO_TIMEOUT, |t, s| {
            match t.expect("a socket").send_slice(s, buf)? {
                0 => Ok(None),
                n => Ok(Some(n)),
            }
        })?;
        self.written += n as u64;
        Ok(n)
    }

    /// Data is in the TCP send ring once written; the next round transmits it.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client on the unikernel stack, for `tlsflow get --backend unikernel`.
pub(crate) struct Client {
    net: Net,
}

impl Client {
    /// Attaches to the TAP device.
    pub(crate) fn open(tap: &TapArgs) -> Result<Client, Error> {
        Ok(Client {
            net: Net::open(tap)?,
        })
    }

    /// As [`super::get::fetch`], over the unikernel stack. The URL's host must be an
    /// IPv4 address (the stack has no resolver).
    pub(crate) fn fetch(
        &mut self,
        config: &Arc<rustls::ClientConfig>,
        url: &Url,
        sink: &mut dyn Write,
        verbose: bool,
        progress: bool,
    ) -> Result<Fetched, Error> {
        let ip: Ipv4Addr = url.host.parse().map_err(|_| {
            format!(
                "--backend unikernel needs an IPv4 address in the URL (no DNS), not {}",
                url.host
            )
        })?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|_| format!("not a valid server name: {}", url.host))?;
        let net = &mut self.net;
        net.check_route(ip)?;
        let handle = net.sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; RING]),
            tcp::SocketBuffer::new(vec![0; RING]),
        ));
        let options = Options {
            handshake_timeout: Some(SDuration::from_secs(HANDSHAKE_TIMEOUT.as_secs())),
            ..Options::default()
        };
        let mut tls = TlsSocket::client(handle, config.clone(), name, options);
        let local_port = net.next_port;
        net.next_port = 49152 + (net.next_port - 49152 + 1) % 16384;
        if let Err(e) = tls.connect(
            net.iface.context(),
            &mut net.sockets,
            (IpAddress::Ipv4(ip), url.port),
            local_port,
        ) {
            net.sockets.remove(handle);
            return Err(format!("cannot connect to {ip}:{}: {e}", url.port).into());
        }
        let result = fetch_on(net, &mut tls, url, sink, verbose, progress);
        if result.is_err() {
            tls.abort(&mut net.sockets);
            // Let the RST out before the socket goes.
            let now = net.now();
            let _ = net.iface.poll(now, &mut net.device, &mut net.sockets);
            net.sockets.remove(handle);
        }
        result
    }
}

fn fetch_on(
    net: &mut Net,
    tls: &mut TlsSocket,
    url: &Url,
    sink: &mut dyn Write,
    verbose: bool,
    progress: bool,
) -> Result<Fetched, Error> {
    net.handshake(tls)
        .map_err(|e| format!("TLS handshake with {}:{} failed: {e}", url.host, url.port))?;
    let info = tls
        .handshake_info()
        .cloned()
        .ok_or("no handshake information")?;
    if verbose {
        super::get::describe(&info, tls.peer_certificates().unwrap_or(&[]));
    }
    let mut conn = Conn {
        net,
        tls,
        read: 0,
        written: 0,
    };
    http::write_get(&mut conn, &url.host, &url.path)?;
    let mut reader = BufReader::new(conn);
    let response = http::read_response(&mut reader)?;
    if verbose {
        eprintln!("< HTTP {}", response.status);
    }
    let (len, digest) =
        super::get::copy_body(&mut reader, sink, response.content_length, progress)?;
    sink.flush()?;
    if !reader.buffer().is_empty() {
        return Err("data after the response body".into());
    }
    let conn = reader.into_inner();
    let (net, tls) = (conn.net, conn.tls);
    // As for the Unix backend: with a content-length the body is complete, and an unclean
    // end is only reported.
    let close = net.finish(tls);
    let unclean_close = match close.as_str() {
        "close_notify (both)" | "close_notify (peer first)" => None,
        other if response.content_length.is_some() => Some(io::Error::other(other.to_string())),
        other => return Err(other.to_string().into()),
    };
    Ok(Fetched {
        info,
        status: response.status,
        len,
        digest,
        unclean_close,
    })
}
