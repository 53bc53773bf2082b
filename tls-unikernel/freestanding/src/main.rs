//! A freestanding proof that tls-unikernel needs no std.
//!
//! `#![no_std]`, `#![no_main]`, `panic = "abort"`, a global allocator over a static
//! array, and an unmangled `main` called by the C runtime (see [`platform`], the only
//! module with unsafe code). It runs two smoltcp interfaces over tls-netsim's in-memory
//! wire and bounded simulated-clock loop (the same no_std crate the tests use), a
//! TLS server and a TLS client from tls-unikernel, a full handshake, 1 MiB each way
//! (checked), and a close in both directions, then exits 0.
//!
//! Build and run: `cargo build --release && ./target/release/tls-unikernel-freestanding`
//! in this directory (its own workspace, so no std member of the main workspace can hide
//! a std dependency: any std in the graph fails the link with `duplicate lang item
//! 'panic_impl'`).
//!
//! Certificates come from `certs/` (DER, made ahead of time by `certs/make.sh`: nothing
//! can make them without std); the clock is fixed ([`FixedClock`]). Randomness: *ring*
//! calls `getrandom`, which on this Linux target is the `getrandom` system call; on bare
//! metal supply a source through `getrandom`'s `rdrand` or `custom` feature (see the
//! tls-unikernel crate docs, "Randomness").

#![no_std]
#![no_main]

extern crate alloc;

#[allow(
    unsafe_code,
    reason = "allocator, libc calls, entry point: see the module docs"
)]
mod platform;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};
use tls_netsim::{Net, Tick, Wire, A, B};
use tls_unikernel::tls_core::config;
use tls_unikernel::tls_core::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
};
use tls_unikernel::tls_core::rustls::time_provider::TimeProvider;
use tls_unikernel::tls_core::rustls::RootCertStore;
use tls_unikernel::{Error, Options, TlsSocket};

use crate::platform::Stdout;

const CA_DER: &[u8] = include_bytes!("../certs/ca.der");
const SERVER_DER: &[u8] = include_bytes!("../certs/server.der");
const SERVER_KEY_DER: &[u8] = include_bytes!("../certs/server.key.der");

/// Bytes each way.
const TRANSFER: usize = 1 << 20;

/// Certificate time: 2030-01-01T00:00:00Z, always.
#[derive(Debug)]
struct FixedClock;

impl TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs(
            1_893_456_000,
        )))
    }
}

/// The byte at position `i` of the stream `side` sends.
fn pattern(side: usize, i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9) ^ side.wrapping_mul(0x5a)) as u8
}

/// One end: the application's progress.
#[derive(Default)]
struct App {
    sent: usize,
    received: usize,
    mismatches: usize,
    finished: bool,
    closed: bool,
}

impl App {
    fn step(
        &mut self,
        side: usize,
        tls: &mut TlsSocket,
        sockets: &mut SocketSet<'_>,
    ) -> Result<bool, Error> {
        let mut progress = false;
        if tls.is_established() && self.sent < TRANSFER {
            let mut chunk = [0u8; 4096];
            let n = chunk.len().min(TRANSFER - self.sent);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(side, self.sent + k);
            }
            let taken = tls.send_slice(sockets, &chunk[..n])?;
            self.sent += taken;
            progress |= taken > 0;
        }
        if self.sent == TRANSFER && !self.closed {
            tls.close(sockets);
            self.closed = true;
            progress = true;
        }
        let mut buf = [0u8; 4096];
        while !self.finished {
            match tls.recv_slice(sockets, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for (k, &b) in buf[..n].iter().enumerate() {
                        if b != pattern(1 - side, self.received + k) {
                            self.mismatches += 1;
                        }
                    }
                    self.received += n;
                    progress = true;
                }
                Err(Error::Finished) => {
                    self.finished = true;
                    progress = true;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }
}

fn ring(size: usize) -> tcp::SocketBuffer<'static> {
    tcp::SocketBuffer::new(vec![0; size])
}

/// The whole program; `Err` becomes exit status 1.
pub(crate) fn run() -> Result<(), &'static str> {
    let time: Arc<dyn TimeProvider> = Arc::new(FixedClock);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(SERVER_KEY_DER));
    let server_config = config::server_builder(time.clone(), config::ALL_VERSIONS)
        .map_err(|_| "server config")?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(SERVER_DER),
                CertificateDer::from(CA_DER),
            ],
            key,
        )
        .map_err(|_| "server certificate")?;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(CA_DER))
        .map_err(|_| "root certificate")?;
    let client_config = config::client_builder(time, config::ALL_VERSIONS)
        .map_err(|_| "client config")?
        .with_root_certificates(roots)
        .with_no_client_auth();

    let client_ip = IpAddress::v4(192, 0, 2, 1);
    let server_ip = IpAddress::v4(192, 0, 2, 2);
    let addrs = [IpCidr::new(client_ip, 24), IpCidr::new(server_ip, 24)];
    let mut net = Net::new(Wire::new(1500), addrs, Instant::ZERO, 1);
    net.round = Duration::from_micros(10);
    let server_tcp = net.nodes[B]
        .sockets
        .add(tcp::Socket::new(ring(16384), ring(16384)));
    let client_tcp = net.nodes[A]
        .sockets
        .add(tcp::Socket::new(ring(16384), ring(16384)));

    let mut server = TlsSocket::server(server_tcp, Arc::new(server_config), Options::default());
    server
        .listen(&mut net.nodes[B].sockets, 443)
        .map_err(|_| "listen")?;
    let name = ServerName::try_from("localhost").map_err(|_| "server name")?;
    let mut client = TlsSocket::client(
        client_tcp,
        Arc::new(client_config),
        name,
        Options::default(),
    );
    let cx = net.nodes[A].iface.context();
    client
        .connect(cx, &mut net.nodes[A].sockets, (server_ip, 443), 49152)
        .map_err(|_| "connect")?;

    let mut apps = [App::default(), App::default()];
    let mut failed = None;
    let rounds = net
        .drive_bounded(10_000_000, |net| {
            let mut tick = Tick::default();
            let [c, s] = &mut net.nodes;
            tick.poll(client.poll(net.now, &mut c.sockets));
            tick.poll(server.poll(net.now, &mut s.sockets));
            for (side, tls, sockets) in [
                (0, &mut client, &mut c.sockets),
                (1, &mut server, &mut s.sockets),
            ] {
                match apps[side].step(side, tls, sockets) {
                    Ok(moved) => tick.progress |= moved,
                    Err(_) => {
                        failed = Some(if side == 0 {
                            "client failed"
                        } else {
                            "server failed"
                        })
                    }
                }
            }
            tick.done = failed.is_some()
                || apps.iter().all(|a| a.finished && a.closed)
                    && client.is_closed(&c.sockets)
                    && server.is_closed(&s.sockets);
            tick
        })
        .map_err(|_| "the connection stalled or did not end in 10,000,000 rounds")?;
    if let Some(failure) = failed {
        return Err(failure);
    }
    for app in &apps {
        if app.received != TRANSFER || app.mismatches != 0 {
            return Err("data arrived damaged or incomplete");
        }
    }
    let info = client.handshake_info().ok_or("no handshake")?;
    // tls-core's default key exchange: the X25519MLKEM768 hybrid (ml-kem, no_std).
    if info.key_exchange != Some(tls_unikernel::tls_core::rustls::NamedGroup::X25519MLKEM768) {
        return Err("the handshake did not use X25519MLKEM768");
    }
    let _ = writeln!(
        Stdout,
        "freestanding: {:?} {:?} {:?}, {} bytes each way intact, closed both ways, {} rounds, \
         {} packets, {} ms simulated, heap high-water {} KiB",
        info.version,
        info.cipher_suite,
        info.key_exchange.unwrap(),
        TRANSFER,
        rounds,
        net.wire.packets(),
        net.now.total_millis(),
        platform::heap_high_water() / 1024
    );
    Ok(())
}
