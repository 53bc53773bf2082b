//! A freestanding proof that tlsflow-unikernel (the HTTPS application) needs no std.
//!
//! `#![no_std]`, `#![no_main]`, `panic = "abort"`, and the platform of tls-unikernel's
//! own freestanding proof (its allocator over a static array, libc `write`/`_exit`, the
//! entry point: reused from `tls-unikernel/freestanding/src/`, not copied). It runs the
//! application's [`Server`] on one smoltcp interface and its [`Fetch`] client on another
//! over tls-netsim's in-memory wire (the one the tests use): `GET /bytes/1048576`, the body's SHA-256 checked against the
//! pattern's, both closes done, the server's log line printed; then exits 0.
//!
//! Build and run: `cargo build --release && ./target/release/tlsflow-unikernel-freestanding`
//! in this directory (its own workspace, so no std member of the main workspace can hide
//! a std dependency).

#![no_std]
#![no_main]

extern crate alloc;

#[allow(
    unsafe_code,
    reason = "allocator, libc calls, entry point: see the module docs"
)]
#[path = "../../../tls-unikernel/freestanding/src/platform.rs"]
mod platform;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use tls_unikernel::tls_core::config;
use tls_unikernel::tls_core::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tls_unikernel::tls_core::rustls::time_provider::TimeProvider;
use tls_unikernel::tls_core::rustls::RootCertStore;
use tls_unikernel::{Options, TlsSocket};
use tlsflow_unikernel::{http, Config, Fetch, FetchEvent, Server, WallClock};

use crate::platform::Stdout;
use tls_netsim::{Wire, WireEnd};

const CA_DER: &[u8] = include_bytes!("../../../tls-unikernel/freestanding/certs/ca.der");
const SERVER_DER: &[u8] = include_bytes!("../../../tls-unikernel/freestanding/certs/server.der");
const SERVER_KEY_DER: &[u8] =
    include_bytes!("../../../tls-unikernel/freestanding/certs/server.key.der");

/// Body bytes fetched.
const BODY: u64 = 1 << 20;

/// Certificate time: 2030-01-01T00:00:00Z, always (the certificates, from
/// `tls-unikernel/freestanding/certs/`, are valid then).
fn fixed_time() -> Option<u64> {
    Some(1_893_456_000)
}

fn interface(device: &mut WireEnd, ip: IpAddress, seed: u64) -> Interface {
    let mut config = IfaceConfig::new(HardwareAddress::Ip);
    config.random_seed = seed;
    let mut iface = Interface::new(config, device, Instant::ZERO);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(ip, 24));
    });
    iface
}

/// The whole program; `Err` becomes exit status 1.
pub(crate) fn run() -> Result<(), &'static str> {
    let time: Arc<dyn TimeProvider> = Arc::new(WallClock(fixed_time));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(SERVER_KEY_DER));
    let server_config = config::server_builder(time.clone(), config::ALL_VERSIONS)
        .map_err(|_| "server config")?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(SERVER_DER)], key)
        .map_err(|_| "server certificate")?;
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(CA_DER))
        .map_err(|_| "root certificate")?;
    let client_config = config::client_builder(time, config::ALL_VERSIONS)
        .map_err(|_| "client config")?
        .with_root_certificates(roots)
        .with_no_client_auth();

    let wire = Wire::new(1500);
    let mut client_dev = wire.end(0);
    let mut server_dev = wire.end(1);
    let server_ip = IpAddress::v4(192, 0, 2, 2);
    let mut client_iface = interface(&mut client_dev, IpAddress::v4(192, 0, 2, 1), 1);
    let mut server_iface = interface(&mut server_dev, server_ip, 2);
    let mut client_sockets = SocketSet::new(Vec::new());
    let mut server_sockets = SocketSet::new(Vec::new());

    let app = Config {
        max_connections: Some(1),
        ..Config::default()
    };
    let mut server = Server::new(&mut server_sockets, 443, Arc::new(server_config), app)
        .map_err(|_| "listen")?;
    let ring = || tcp::SocketBuffer::new(vec![0; 64 * 1024]);
    let handle = client_sockets.add(tcp::Socket::new(ring(), ring()));
    let name = ServerName::try_from("localhost").map_err(|_| "server name")?;
    let mut tls = TlsSocket::client(handle, Arc::new(client_config), name, Options::default());
    tls.connect(
        client_iface.context(),
        &mut client_sockets,
        (server_ip, 443),
        49152,
    )
    .map_err(|_| "connect")?;
    let path = "/bytes/1048576";
    let mut fetch = Fetch::new(tls, "localhost", path, Duration::from_secs(10));

    // The embedder's clock: this loop's own, a millisecond per idle round.
    let mut now = Instant::ZERO;
    let mut log = String::new();
    let mut fetched = None;
    let mut rounds = 0u64;
    while fetched.is_none() || !server.is_done() {
        rounds += 1;
        if rounds > 10_000_000 {
            return Err("no end after 10,000,000 rounds");
        }
        let before = wire.packets();
        client_iface.poll(now, &mut client_dev, &mut client_sockets);
        server_iface.poll(now, &mut server_dev, &mut server_sockets);
        let mut progress = wire.packets() != before;
        let poll = server.poll(now, &mut server_sockets, &mut |line| {
            log.push_str(line);
        });
        progress |= poll.busy;
        if fetched.is_none() {
            let _ = fetch.tls().poll(now, &mut client_sockets);
            match fetch.step(now, &mut client_sockets, &mut |_| {}) {
                Ok(FetchEvent::Done(f)) => fetched = Some(f),
                Ok(FetchEvent::Pending) => {}
                Ok(_) => progress = true,
                Err(_) => return Err("the fetch failed"),
            }
        }
        now += if progress {
            Duration::from_micros(10)
        } else {
            Duration::from_millis(1)
        };
    }
    let fetched = fetched.ok_or("no response")?;
    if fetched.status != 200 || fetched.len != BODY || fetched.digest != http::pattern_digest(BODY)
    {
        return Err("the body arrived damaged or incomplete");
    }
    if !log.ends_with("close=close_notify (both)") {
        return Err("the server did not log a clean close");
    }
    let _ = writeln!(
        Stdout,
        "freestanding: GET {path}: {} {} bytes, SHA-256 {} (checked), {:?} {:?}, \
         {} rounds, heap high-water {} KiB\nfreestanding: server log: {log}",
        fetched.status,
        fetched.len,
        http::Hex(&fetched.digest),
        fetched.info.version,
        fetched.info.cipher_suite,
        rounds,
        platform::heap_high_water() / 1024
    );
    Ok(())
}
