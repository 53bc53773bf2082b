//! tlsflow's HTTPS application ([`tlsflow_unikernel`]) booted on bare-metal x86_64: a
//! multiboot image that QEMU starts with `-kernel`, on a virtio-net card, serving HTTPS
//! with the very server the hosted TAP target runs (`tlsflow serve --backend unikernel`).
//!
//! Built with the stable toolchain for the x86_64-unknown-linux-gnu target (no other
//! target, no `-Z build-std`): a freestanding static ELF linked by `link.ld`, entered in
//! 32-bit protected mode by the multiboot loader ([`arch::boot`]). All unsafe code is in
//! [`arch`]; this file and [`config`], [`net`] and [`platform`] are safe.
//!
//! Configuration comes from QEMU at boot, never from the image: the certificate chain
//! and key (PEM) as fw_cfg files `opt/tlsflow/cert` and `opt/tlsflow/key`, and options
//! on the command line (`-append`), see [`config`]. Exit codes (through
//! `isa-debug-exit`) are [`arch::exit::Code`]; the README lists them.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

#[allow(
    unsafe_code,
    reason = "entry, port I/O, DMA, allocator, C symbols: see the module docs"
)]
mod arch;
mod config;
mod net;
mod platform;

use alloc::sync::Arc;
use alloc::vec::Vec;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::time_provider::TimeProvider;
use smoltcp::iface::SocketSet;
use tlsflow_unikernel::{run_server, Config, Server, WallClock};

use crate::arch::exit::{fail, Code};
use crate::config::Options;

/// Prints one line on the serial console.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(
            &mut $crate::arch::serial::Console,
            format_args!("tlsflow-boot: {}\n", format_args!($($arg)*)),
        );
    }};
}
pub(crate) use say;

/// The TLS configuration from the PEM files QEMU passed in.
fn tls_config(cert: &[u8], key: &[u8]) -> Result<rustls::ServerConfig, &'static str> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|_| "opt/tlsflow/cert is not PEM certificates")?;
    if chain.is_empty() {
        return Err("opt/tlsflow/cert holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| "opt/tlsflow/key is not a PEM key")?;
    let time: Arc<dyn TimeProvider> = Arc::new(WallClock(arch::time::unix_now));
    let mut cfg = tls_core::config::server_builder(time.clone(), tls_core::config::ALL_VERSIONS)
        .map_err(|_| "no TLS provider")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|_| "the certificate and key do not fit together")?;
    tls_core::config::enable_server_resumption(&mut cfg, time, 1024, 6 * 3600)
        .map_err(|_| "no ticket keys (entropy)")?;
    Ok(cfg)
}

/// Everything after the heap: called once by [`arch`] with the command line and the TSC
/// at entry.
fn main(cmdline: &str, tsc_entry: u64) -> ! {
    say!("booted (cmdline {cmdline:?})");
    if arch::libc::entropy().is_none() {
        fail(
            Code::NoEntropy,
            "the CPU has neither RDRAND nor RDSEED: no entropy for TLS (QEMU: -cpu max)",
        );
    }
    let hz = arch::time::init();
    say!(
        "TSC {} MHz, wall clock {} s since the epoch",
        hz / 1_000_000,
        arch::time::unix_now().unwrap_or(0)
    );
    let options = match Options::parse(cmdline) {
        Ok(o) => o,
        Err(message) => fail(Code::BadConfig, &message),
    };
    let (Some(cert), Some(key)) = (
        arch::fwcfg::file("opt/tlsflow/cert"),
        arch::fwcfg::file("opt/tlsflow/key"),
    ) else {
        fail(
            Code::NoCertificate,
            "no certificate: pass -fw_cfg name=opt/tlsflow/cert,file=CHAIN.pem \
             -fw_cfg name=opt/tlsflow/key,file=KEY.pem",
        )
    };
    let tls = match tls_config(&cert, &key) {
        Ok(c) => Arc::new(c),
        Err(message) => fail(Code::BadConfig, message),
    };
    drop((cert, key));
    let nic = match arch::virtio::Nic::find(options.offload) {
        Ok(nic) => nic,
        Err(message) => fail(Code::NoNetwork, message),
    };
    say!(
        "virtio-net: IRQ {:?}, checksum offload: transmit {}, receive {}",
        nic.irq,
        nic.offloads.tx,
        nic.offloads.rx
    );
    arch::irq::init(nic.irq);
    let mut platform = platform::Boot::new(nic, options.port, options.stats_every, tsc_entry);
    let mut sockets = SocketSet::new(Vec::new());
    let (mut iface, addr) = match net::configure(&mut platform, &mut sockets, &options) {
        Ok(v) => v,
        Err(message) => fail(Code::NoNetwork, message),
    };
    let app = Config {
        backend: "boot",
        max_connections: options.max_connections,
        ..Config::default()
    };
    let mut server = match Server::new(&mut sockets, options.port, tls, app) {
        Ok(s) => s,
        Err(_) => fail(Code::BadConfig, "cannot listen on the port"),
    };
    say!(
        "listening on {addr}:{} (https, {} ms after entry)",
        options.port,
        arch::time::ticks_to_micros(arch::cpu::rdtsc() - tsc_entry) / 1000
    );
    run_server(&mut platform, &mut iface, &mut sockets, &mut server);
    let heap = arch::heap::stats();
    say!(
        "served {:?} connections; heap peak {} bytes",
        options.max_connections,
        heap.peak
    );
    arch::exit::exit(Code::Done)
}
