//! `tlsflow demo`: the engine end to end on embedded defaults.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use ring::digest;
use rustls::pki_types::ServerName;
use tls_core::{Error as TlsError, Event, HandshakeInfo, Limits, Session};
use tlsflow_pki::{KeyKind, Options, Pki, TLS12, TLS13};

use tls_netsim::{Net as Pair, Tick, Wire, A, B};
use tls_unikernel::smoltcp::iface::SocketHandle;
use tls_unikernel::smoltcp::socket::tcp;
use tls_unikernel::smoltcp::time::{Duration as NetDuration, Instant as NetInstant};
use tls_unikernel::smoltcp::wire::{IpAddress, IpCidr};
use tls_unikernel::{Error as NetError, Options as NetOptions, TlsSocket};

use super::Error;

mod unix;

use unix::unix_backend;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Bytes to transfer in the throughput run (suffixes K, M, G are powers of 1024).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    bytes: u64,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("not a size: {s}"))?;
    n.checked_shl(shift)
        .ok_or_else(|| format!("size too large: {s}"))
}

pub(crate) fn run(args: &DemoArgs) -> Result<(), Error> {
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    println!(
        "throwaway PKI (rcgen, ECDSA P-256): CA -> leaf for localhost, 127.0.0.1, ::1 (90 days)"
    );
    println!();
    println!("in-memory backend (tls-core sessions, no sockets):");
    for (label, versions) in [("TLS 1.3", TLS13), ("TLS 1.2", TLS12)] {
        let (client_config, server_config) = configs(&pki, &http_options(versions));
        for attempt in ["full", "resume"] {
            let (client, server) = connect(&client_config, &server_config)?;
            let info = client
                .handshake_info()
                .ok_or("handshake did not complete")?;
            let sni = server
                .handshake_info()
                .and_then(|i| i.sni.clone())
                .unwrap_or_else(|| "-".into());
            println!(
                "  {label} {attempt:6} {}  server saw SNI {sni}",
                describe(info)
            );
            if attempt == "resume" && !info.resumed {
                return Err(format!("{label}: the second handshake did not resume").into());
            }
        }
    }
    let (client_config, server_config) = configs(&pki, &tls13_only());
    let (mut client, mut server) = connect(&client_config, &server_config)?;
    let suite = client
        .handshake_info()
        .map(|i| format!("{:?}", i.cipher_suite))
        .unwrap_or_default();
    let (elapsed, ok) = transfer(&mut client, &mut server, args.bytes)?;
    let mib = args.bytes as f64 / (1024.0 * 1024.0);
    println!(
        "  transfer {mib:.0} MiB client->server over {suite}: {:.2} s, {:.0} MB/s, SHA-256 {}",
        elapsed,
        args.bytes as f64 / elapsed / 1e6,
        if ok { "matches" } else { "MISMATCH" }
    );
    if !ok {
        return Err("received data does not match what was sent".into());
    }
    println!();
    unix_backend(&pki, args.bytes.min(64 << 20))?;
    println!();
    unikernel_backend(&pki, args.bytes.min(64 << 20))?;
    Ok(())
}

/// The demo's HTTP options: `versions`, ALPN http/1.1, resumption on.
fn http_options(versions: &[&'static rustls::SupportedProtocolVersion]) -> Options {
    Options {
        versions: versions.to_vec(),
        alpn: vec![b"http/1.1".to_vec()],
        resumption: true,
        ..Options::default()
    }
}

/// TLS 1.3 only, nothing else: the bulk transfers.
fn tls13_only() -> Options {
    Options {
        versions: TLS13.to_vec(),
        ..Options::default()
    }
}

/// A client and a server config from the demo's PKI.
fn configs(pki: &Pki, opts: &Options) -> (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>) {
    (
        Arc::new(pki.client_config(opts)),
        Arc::new(pki.server_config(opts)),
    )
}

/// One handshake on one line: version, suite, key exchange, ALPN, resumed or full.
fn describe(info: &HandshakeInfo) -> String {
    let alpn = info
        .alpn
        .as_deref()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "-".into());
    format!(
        "{:?} {:?} kx {} alpn {alpn} {}",
        info.version,
        info.cipher_suite,
        info.key_exchange
            .map(|g| format!("{g:?}"))
            .unwrap_or_else(|| "-".into()),
        if info.resumed {
            "resumed"
        } else {
            "full handshake"
        },
    )
}

/// Moves pending ciphertext from one session into the other; returns bytes moved.
fn shuttle(from: &mut Session, to: &mut Session) -> Result<usize, TlsError> {
    let n = to.read_tls(from.pending_tls())?;
    from.tls_written(n);
    Ok(n)
}

fn connect(
    client_config: &Arc<rustls::ClientConfig>,
    server_config: &Arc<rustls::ServerConfig>,
) -> Result<(Session, Session), Error> {
    let name = ServerName::try_from("localhost")?;
    let mut client = Session::client(client_config.clone(), name, Limits::default())?;
    let mut server = Session::server(server_config.clone(), Limits::default())?;
    // A handshake takes a handful of flights; a stall is a bug, not a reason to spin.
    for _ in 0..32 {
        let moved = shuttle(&mut client, &mut server)? + shuttle(&mut server, &mut client)?;
        if moved == 0 {
            break;
        }
    }
    for session in [&mut client, &mut server] {
        let mut completed = false;
        while let Some(event) = session.poll_event() {
            completed |= matches!(event, Event::HandshakeComplete(_));
        }
        if !completed || session.is_handshaking() {
            return Err("handshake stalled".into());
        }
    }
    Ok((client, server))
}

/// Sends `total` bytes client -> server in 16 KiB writes; returns seconds and whether the
/// SHA-256 of what arrived equals that of what was sent.
fn transfer(client: &mut Session, server: &mut Session, total: u64) -> Result<(f64, bool), Error> {
    let mut pattern = vec![0u8; 16 * 1024];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) ^ (i >> 7)) as u8;
    }
    let mut sent_digest = digest::Context::new(&digest::SHA256);
    let mut left = total;
    while left > 0 {
        let n = left.min(pattern.len() as u64) as usize;
        sent_digest.update(&pattern[..n]);
        left -= n as u64;
    }
    let sent_digest = sent_digest.finish();

    let mut received = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut sent, mut got) = (0u64, 0u64);
    let start = Instant::now();
    while got < total {
        while sent < total {
            let offset = (sent % pattern.len() as u64) as usize;
            let want = (total - sent).min((pattern.len() - offset) as u64) as usize;
            let n = client.send(&pattern[offset..offset + want])?;
            if n == 0 {
                break;
            }
            sent += n as u64;
        }
        shuttle(client, server)?;
        loop {
            match server.recv(&mut buf) {
                Ok(0) => return Err("server saw end of stream early".into()),
                Ok(n) => {
                    received.update(&buf[..n]);
                    got += n as u64;
                }
                Err(TlsError::WouldBlock) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((elapsed, received.finish().as_ref() == sent_digest.as_ref()))
}

// ---------------------------------------------------------------------------- unikernel

/// IP MTU of the in-process wire (an Ethernet-sized link).
const WIRE_MTU: usize = 1500;
/// TCP rings per socket: 256 KiB each way (smoltcp scales the window past 64 KiB).
const WIRE_RING: usize = 256 * 1024;
/// Simulated time one poll round takes.
const ROUND: NetDuration = NetDuration::from_micros(10);
const SERVER_IP: IpAddress = IpAddress::v4(192, 0, 2, 2);

/// A tls-unikernel client (side A) and server (side B) on two smoltcp interfaces joined
/// by an in-process wire, and a simulated clock (nothing here reads the real one).
struct Net {
    pair: Pair,
    client: TlsSocket,
    server: TlsSocket,
}

impl Net {
    fn new(
        client_config: &Arc<rustls::ClientConfig>,
        server_config: &Arc<rustls::ServerConfig>,
        seed: u64,
    ) -> Result<Self, Error> {
        let now = NetInstant::from_secs(1);
        let addrs = [
            IpCidr::new(IpAddress::v4(192, 0, 2, 1), 24),
            IpCidr::new(SERVER_IP, 24),
        ];
        let mut pair = Pair::new(Wire::new(WIRE_MTU), addrs, now, seed);
        pair.round = ROUND;
        let mut add = |side: usize| -> SocketHandle {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; WIRE_RING]),
                tcp::SocketBuffer::new(vec![0; WIRE_RING]),
            );
            // No delayed ACKs or Nagle: the wire has no latency to hide.
            socket.set_ack_delay(None);
            socket.set_nagle_enabled(false);
            pair.nodes[side].sockets.add(socket)
        };
        let (client_tcp, server_tcp) = (add(A), add(B));
        let mut server =
            TlsSocket::server(server_tcp, server_config.clone(), NetOptions::default());
        server.listen(&mut pair.nodes[B].sockets, 443)?;
        let name = ServerName::try_from("localhost")?;
        let mut client = TlsSocket::client(
            client_tcp,
            client_config.clone(),
            name,
            NetOptions::default(),
        );
        let cx = pair.nodes[A].iface.context();
        client.connect(cx, &mut pair.nodes[A].sockets, (SERVER_IP, 443), 49152)?;
        Ok(Self {
            pair,
            client,
            server,
        })
    }

    /// Runs poll rounds until `f` (called after the interfaces and both TLS sockets have
    /// been polled) says done, on tls-netsim's bounded loop. `f` returns (done,
    /// progress). A stall, or ten million rounds without an end, is an error.
    fn drive<F>(&mut self, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&mut Pair, &mut TlsSocket, &mut TlsSocket) -> Result<(bool, bool), Error>,
    {
        let Self {
            pair,
            client,
            server,
        } = self;
        let mut failed = None;
        let stall = pair.drive_bounded(10_000_000, |pair| {
            let mut tick = Tick::default();
            tick.poll(client.poll(pair.now, &mut pair.nodes[A].sockets));
            tick.poll(server.poll(pair.now, &mut pair.nodes[B].sockets));
            match f(pair, client, server) {
                Ok((done, moved)) => {
                    tick.done = done;
                    tick.progress |= moved;
                }
                Err(e) => {
                    failed = Some(e);
                    tick.done = true;
                }
            }
            tick
        });
        if let Some(e) = failed {
            return Err(e);
        }
        stall.map_err(|stall| format!("the unikernel connection: {stall}"))?;
        Ok(())
    }

    /// Drives the handshake to the end on both sides.
    fn handshake(&mut self) -> Result<(), Error> {
        self.drive(|_, client, server| {
            for socket in [&*client, &*server] {
                if let Some(e) = socket.error() {
                    return Err(format!("handshake failed: {e}").into());
                }
            }
            Ok((client.is_established() && server.is_established(), false))
        })
    }

    /// A clean close: the client sends close_notify, the server answers with its own
    /// once it has read everything (TLS 1.3 tickets reach the client on the way).
    fn close(&mut self) -> Result<(), Error> {
        self.client.close(&mut self.pair.nodes[A].sockets);
        let (mut server_done, mut client_done) = (false, false);
        let mut buf = [0u8; 4096];
        self.drive(|net, client, server| {
            let mut moved = false;
            if !server_done {
                match server.recv_slice(&mut net.nodes[B].sockets, &mut buf) {
                    Ok(n) => moved |= n > 0,
                    Err(NetError::Finished) => {
                        server.close(&mut net.nodes[B].sockets);
                        server_done = true;
                        moved = true;
                    }
                    Err(e) => return Err(format!("server: {e}").into()),
                }
            }
            if !client_done {
                match client.recv_slice(&mut net.nodes[A].sockets, &mut buf) {
                    Ok(n) => moved |= n > 0,
                    Err(NetError::Finished) => {
                        client_done = true;
                        moved = true;
                    }
                    Err(e) => return Err(format!("client: {e}").into()),
                }
            }
            Ok((server_done && client_done, moved))
        })
    }

    /// Sends `total` pattern bytes client -> server; returns whether the SHA-256 of what
    /// the server read equals that of what the client sent.
    fn transfer(&mut self, total: u64) -> Result<bool, Error> {
        let pattern = demo_pattern();
        let mut sent_digest = digest::Context::new(&digest::SHA256);
        let mut received = digest::Context::new(&digest::SHA256);
        let (mut sent, mut got) = (0u64, 0u64);
        let mut buf = vec![0u8; 64 * 1024];
        self.drive(|net, client, server| {
            let mut moved = false;
            while sent < total {
                let offset = (sent % pattern.len() as u64) as usize;
                let want = (total - sent).min((pattern.len() - offset) as u64) as usize;
                let n = client
                    .send_slice(&mut net.nodes[A].sockets, &pattern[offset..offset + want])?;
                if n == 0 {
                    break;
                }
                sent_digest.update(&pattern[offset..offset + n]);
                sent += n as u64;
                moved = true;
            }
            loop {
                let n = server.recv_slice(&mut net.nodes[B].sockets, &mut buf)?;
                if n == 0 {
                    break;
                }
                received.update(&buf[..n]);
                got += n as u64;
                moved = true;
            }
            Ok((got >= total, moved))
        })?;
        Ok(sent_digest.finish().as_ref() == received.finish().as_ref())
    }
}

fn demo_pattern() -> Vec<u8> {
    let mut pattern = vec![0u8; 16 * 1024];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) ^ (i >> 7)) as u8;
    }
    pattern
}

/// tls-unikernel (no_std TLS sockets on smoltcp) on two interfaces in this process.
fn unikernel_backend(pki: &Pki, bytes: u64) -> Result<(), Error> {
    println!(
        "unikernel backend (tls-unikernel on smoltcp 0.14 with tlsflow's TCP fixes, two \
         interfaces on an in-process wire, MTU {WIRE_MTU}, simulated clock):"
    );
    let mut seed = 1;
    for (label, versions) in [("TLS 1.3", TLS13), ("TLS 1.2", TLS12)] {
        let (client_config, server_config) = configs(pki, &http_options(versions));
        for attempt in ["full", "resume"] {
            seed += 1;
            let mut net = Net::new(&client_config, &server_config, seed)?;
            net.handshake()?;
            let info = net
                .client
                .handshake_info()
                .ok_or("handshake did not complete")?
                .clone();
            let sni = net
                .server
                .handshake_info()
                .and_then(|i| i.sni.clone())
                .unwrap_or_else(|| "-".into());
            net.close()?;
            println!(
                "  {label} {attempt:6} {}  server saw SNI {sni}",
                describe(&info)
            );
            if attempt == "resume" && !info.resumed {
                return Err(format!("{label}: the second handshake did not resume").into());
            }
        }
    }
    let (client_config, server_config) = configs(pki, &tls13_only());
    let mut net = Net::new(&client_config, &server_config, seed + 1)?;
    net.handshake()?;
    let suite = net
        .client
        .handshake_info()
        .map(|i| format!("{:?}", i.cipher_suite))
        .unwrap_or_default();
    let (packets, wire_bytes) = (net.pair.wire.packets(), net.pair.wire.bytes());
    let start = Instant::now();
    let ok = net.transfer(bytes)?;
    let secs = start.elapsed().as_secs_f64();
    net.close()?;
    println!(
        "  transfer {} MiB client->server over {suite}: {secs:.2} s, {:.0} MB/s, \
         {} packets, {} MB on the wire, SHA-256 {}",
        bytes >> 20,
        bytes as f64 / secs / 1e6,
        net.pair.wire.packets() - packets,
        (net.pair.wire.bytes() - wire_bytes) / 1_000_000,
        if ok { "matches" } else { "MISMATCH" }
    );
    if !ok {
        return Err("received data does not match what was sent".into());
    }
    Ok(())
}
