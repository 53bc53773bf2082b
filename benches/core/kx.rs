//! The X25519MLKEM768 hybrid against X25519 alone: full TLS 1.3 ECDSA handshakes of
//! tls-core sessions, and the ClientHello / ServerHello sizes each sends.
//!
//! In paired mode (`PAIRED=kx`) the case `kx/tls13_full_ecdsa` puts the hybrid in the
//! `tls-core` slot and X25519 in the `raw` slot; the cost ratio printed is hybrid time /
//! X25519 time (the reciprocal of the generic paired ratio).

use std::sync::Arc;

use criterion::{Criterion, Throughput};
use rustls::crypto::ring::kx_group::X25519;
use rustls::{ClientConfig, NamedGroup, ServerConfig};
use tls_core::kx::X25519MLKEM768;
use tls_core::{config, Limits, Session};
use tls_test::certs::{clock, KeyKind, Pki, TLS13};

use super::{black_box, core_pair, paired, server_name, Case, Duration};

fn configs(pki: &Pki, hybrid: bool) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let mut provider = Arc::unwrap_or_clone(config::crypto_provider());
    provider.kx_groups = if hybrid {
        vec![X25519MLKEM768, X25519]
    } else {
        vec![X25519]
    };
    let provider = Arc::new(provider);
    let mut client = config::client_builder_with(provider.clone(), clock(), TLS13)
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    let mut server = config::server_builder_with(provider, clock(), TLS13)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server.chain.clone(), pki.server.private_key())
        .unwrap();
    server.send_tls13_tickets = 0;
    (Arc::new(client), Arc::new(server))
}

/// Length of the first record in `bytes` (header included).
fn first_record(bytes: &[u8]) -> usize {
    5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]]))
}

/// (ClientHello record, ServerHello record) sizes in bytes.
fn hello_sizes(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (usize, usize) {
    let c = Session::client(client.clone(), server_name(), Limits::default()).unwrap();
    let mut s = Session::server(server.clone(), Limits::default()).unwrap();
    let hello = c.pending_tls().to_vec();
    assert_eq!(first_record(&hello), hello.len(), "one ClientHello record");
    let n = s.read_tls(&hello).unwrap();
    assert_eq!(n, hello.len());
    (hello.len(), first_record(s.pending_tls()))
}

fn both() -> [(&'static str, Arc<ClientConfig>, Arc<ServerConfig>); 2] {
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let (hc, hs) = configs(&pki, true);
    let (xc, xs) = configs(&pki, false);
    [("x25519mlkem768", hc, hs), ("x25519", xc, xs)]
}

/// Median microseconds of `f` over 200 runs.
fn micros(mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..200)
        .map(|_| {
            let start = std::time::Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    super::median(&mut v)
}

/// Prints the key exchange operations alone: the client's start, the server's
/// start_and_complete, the client's complete (each group's own share layout).
fn print_kx_costs() {
    for (name, group) in [("x25519mlkem768", X25519MLKEM768), ("x25519", X25519)] {
        let share = group.start().unwrap().pub_key().to_vec();
        let answer = group.start_and_complete(&share).unwrap().pub_key;
        let start = micros(|| drop(black_box(group.start().unwrap())));
        let server = micros(|| drop(black_box(group.start_and_complete(&share).unwrap())));
        let complete = micros(|| {
            let kx = group.start().unwrap();
            drop(black_box(kx.complete(&answer)))
        });
        println!(
            "kx {name:<15} client start {start:>6.1} us, server {server:>6.1} us, \
             client start+complete {complete:>6.1} us"
        );
    }
}

/// Prints the hello sizes and checks each pair negotiates what it should.
pub(crate) fn print_sizes() {
    print_kx_costs();
    for (name, client, server) in both() {
        let (c, _) = core_pair(&client, &server);
        let group = c.handshake_info().unwrap().key_exchange;
        let want = if name == "x25519" {
            NamedGroup::X25519
        } else {
            NamedGroup::X25519MLKEM768
        };
        assert_eq!(group, Some(want));
        let (ch, sh) = hello_sizes(&client, &server);
        println!("kx {name:<15} ClientHello {ch:>5} B, ServerHello {sh:>5} B");
    }
}

/// Criterion: `kx/tls13_full_ecdsa/<x25519mlkem768|x25519>`.
pub(crate) fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("kx");
    group.throughput(Throughput::Elements(1));
    for (name, client, server) in both() {
        group.bench_function(format!("tls13_full_ecdsa/{name}"), |b| {
            b.iter(|| drop(black_box(core_pair(&client, &server))))
        });
    }
    group.finish();
}

/// Paired: the hybrid and X25519 timed alternately; prints the cost ratio.
pub(crate) fn run_paired(budget: Duration) {
    let [(_, hc, hs), (_, xc, xs)] = both();
    let mut case = Case {
        name: "kx/tls13_full_ecdsa".into(),
        throughput: Throughput::Elements(1),
        core: Box::new(move || drop(black_box(core_pair(&hc, &hs)))),
        raw: Box::new(move || drop(black_box(core_pair(&xc, &xs)))),
        bench_raw: true,
    };
    let (hybrid, x25519, ratio) = paired(&mut case, budget);
    println!(
        "kx/tls13_full_ecdsa: x25519mlkem768 {:.1} us, x25519 {:.1} us, cost ratio {:.3} \
         (median of per-slice ratios)",
        hybrid / 1e3,
        x25519 / 1e3,
        1.0 / ratio
    );
}
