//! tls-core's [`Session`] against a minimal driver over rustls' own unbuffered API.
//!
//! Every case runs twice in the same process, `.../tls-core` and `.../raw`, with the same
//! configs, plaintext sizes and wire copies, so the result to read is the ratio between
//! the two (`benches/report.py` prints it). See `benches/README.md`.
//!
//! * `bulk/<suite>/<size>/{tls-core,raw}`: 1 MiB client to server per iteration, in
//!   `<size>` writes, both sides on one core. `bulk/aes128gcm/64B-coalesced/tls-core` is
//!   tls-core gathering 64-byte writes into full records, to compare with
//!   `bulk/aes128gcm/64B/raw`.
//! * `handshake/<version>_<full|resumed>_<key>/{tls-core,raw}`: one client and one server
//!   from creation to an established, drained pair.
//! * Idle memory (printed first, not timed): live heap bytes of an established pair.
//! * `kx/tls13_full_ecdsa/<x25519mlkem768|x25519>`: tls-core handshakes with the hybrid
//!   and with X25519 alone, and their ClientHello / ServerHello sizes ([`kx`]).
//!
//! `PAIRED=<filter> cargo bench --bench core` skips criterion and times each matching
//! case's two sides alternately instead (see `run_paired`), which holds up better on a
//! shared machine.

use core::hint::black_box;
use core::ops::{Deref, DerefMut};
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, SamplingMode, Throughput};
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, UnbufferedConnectionCommon, UnbufferedStatus,
};
use rustls::{CipherSuite, ClientConfig, CommonState, HandshakeKind, ServerConfig};
use tls_core::{Error, Limits, Session};
use tls_test::alloc_counter::{live_bytes, Counting};
use tls_test::certs::{KeyKind, Options, Pki, TLS12, TLS13};

mod bulk;
mod engine;
mod handshake;
mod idle;
mod kx;
mod paired;
mod raw;

use bulk::*;
use engine::*;
use handshake::*;
use idle::*;
use paired::*;
use raw::*;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Plaintext moved client to server per bulk iteration.
const BULK_BYTES: usize = 1 << 20;
/// Plaintext written per batch before the ciphertext goes over the "wire": fits tls-core's
/// default outbound limit (64 KiB) whole, so both sides produce the same records.
const BATCH: usize = 32 * 1024;
/// The application's read buffer on the receiving side.
const APP_BUF: usize = 16 * 1024;

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("valid name")
}

fn configs(kind: KeyKind, opts: &Options) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let pki = Pki::new(kind, &[]);
    (
        Arc::new(pki.client_config(opts)),
        Arc::new(pki.server_config(opts)),
    )
}

fn tls13_suite(suite: CipherSuite) -> Options {
    Options {
        versions: TLS13.to_vec(),
        suites: vec![suite],
        ..Options::default()
    }
}

/// One iteration of one side of a case.
type Routine = Box<dyn FnMut()>;

/// A tls-core routine and its raw-rustls baseline, doing the same work.
struct Case {
    /// `group/case`; the benchmarks are `<name>/tls-core` and `<name>/raw`.
    name: String,
    throughput: Throughput,
    core: Routine,
    raw: Routine,
    /// False when `raw` repeats another case's baseline (not benchmarked again).
    bench_raw: bool,
}

fn bench(c: &mut Criterion, group_name: &str, cases: &mut [Case]) {
    let mut group = c.benchmark_group(group_name);
    // Bulk iterations take up to ~10 ms: equal-sized samples keep the run short.
    group.sampling_mode(SamplingMode::Flat);
    for case in cases {
        let name = case
            .name
            .strip_prefix(group_name)
            .unwrap()
            .trim_start_matches('/');
        group.throughput(case.throughput.clone());
        group.bench_function(format!("{name}/tls-core"), |b| b.iter(&mut case.core));
        if case.bench_raw {
            group.bench_function(format!("{name}/raw"), |b| b.iter(&mut case.raw));
        }
    }
    group.finish();
}

/// Where criterion writes its results: `$CARGO_TARGET_DIR/criterion`, else the target
/// directory this binary was built in (`target/<profile>/deps/core-*`).
fn criterion_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("CRITERION_HOME") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(std::path::PathBuf::from(dir).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.join("criterion"))
}

fn main() {
    let paired_filter = std::env::var("PAIRED").ok();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    if paired_filter.is_none() {
        criterion = criterion.configure_from_args();
    }
    if !std::env::args().any(|a| a == "--list") {
        idle_memory();
        kx::print_sizes();
    }
    let mut bulk = bulk_cases();
    let mut handshakes = handshake_cases();
    if let Some(filter) = paired_filter {
        bulk.append(&mut handshakes);
        run_paired(&filter, &mut bulk);
        if "kx/tls13_full_ecdsa".contains(filter.as_str()) {
            let budget = std::env::var("PAIRED_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(Duration::from_secs(2), Duration::from_secs_f64);
            kx::run_paired(budget);
        }
        return;
    }
    bench(&mut criterion, "bulk", &mut bulk);
    bench(&mut criterion, "handshake", &mut handshakes);
    kx::bench(&mut criterion);
    criterion.final_summary();
}
