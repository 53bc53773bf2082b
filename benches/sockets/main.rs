//! tls-unix over TCP on 127.0.0.1 against its peers, every pair measured in the same run.
//!
//! A plain bench binary (`harness = false`, no criterion): each case runs our side and its
//! peer alternately, in slices (a batch of connections, or one bulk transfer), for several
//! rounds with the order swapped every round, and reports the median rate of each side and
//! the median of the per-round ratios `ours / peer` (above 1: we are faster). On a shared,
//! noisy machine the per-round ratio is much steadier than either rate. See
//! `benches/README.md`.
//!
//! * `conn-new/{blocking,tokio}`: new connections per second, TLS 1.3, ECDSA P-256,
//!   resumption off on both sides. Client and server in this process; each connection is a
//!   handshake, an 8-byte request, a 32-byte response and close_notify both ways. Blocking:
//!   tls-unix's blocking client and server against rustls' `StreamOwned` client and server.
//!   Tokio: tls-unix's `TlsConnector`/`TlsAcceptor` against tokio-rustls' (servers on one
//!   multi-threaded runtime with one worker, the client in `block_on`, for both).
//! * `conn-resumed/{blocking,tokio}`: the same with TLS 1.3 tickets on both sides; every
//!   timed connection must have resumed (checked on the client).
//! * `bulk/{blocking,tokio}`: one connection per round carrying `BULK_MIB` (default 1024)
//!   server to client in 64 KiB writes, read in 64 KiB reads.
//! * `conn-new/vs-s_server` and `bulk/vs-s_server`: servers compared. Our blocking server
//!   (one thread, one connection at a time, like s_server) against `openssl s_server -WWW`,
//!   both serving `GET /<file> HTTP/1.0` from the same directory to the same client (ours,
//!   blocking): a 32-byte file for connections per second, a `BULK_MIB` file for bulk.
//!   The `-cpu` rows divide by the server's own CPU time instead of the wall clock, and the
//!   `rustls-vs-s_server` rows (reference, no target) put rustls' `StreamOwned` server in
//!   ours' place.
//!
//! The client side runs on one CPU and every server on another (`PIN=0`: unpinned).
//!
//! Environment: `QUICK=1` (fewer rounds, 256 MiB bulk), `BULK_MIB=<n>`, `ROUNDS=<n>`,
//! `CONNS=<n>` (connections per slice). The first argument that is not a flag filters cases
//! by substring (`cargo bench --bench sockets -- bulk`). Results are printed and saved as
//! `target/criterion/sockets.json` (`benches/report.py` shows them).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use rustls::pki_types::ServerName;
use rustls::StreamOwned;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki, TLS13};
use tls_unix::{blocking, Options};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

mod blocking_sides;
mod measure;
mod s_server;
mod tokio_sides;

use blocking_sides::*;
use measure::*;
use s_server::*;
use tokio_sides::*;

/// Size of every write (and read buffer) in the bulk cases.
const CHUNK: usize = 64 * 1024;
/// The response to a connection-rate request.
const SMALL: u64 = 32;

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("valid name")
}

/// The CPUs the client side (this bench's main thread) and every server run on: the first
/// two this process may use, unless `PIN=0`. Unpinned, the scheduler settles each server
/// thread either on the client's core or on the other one and keeps it there for seconds,
/// which doubles or halves a side's connection rate at random (seen here: 1,300 against
/// 3,000 connections/s for the same code, swapping between runs).
fn cpus() -> Option<(usize, usize)> {
    if std::env::var("PIN").is_ok_and(|v| v == "0") {
        return None;
    }
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut cpus = (0..CpuSet::count()).filter(|&i| allowed.is_set(i).unwrap_or(false));
    Some((cpus.next()?, cpus.next()?))
}

/// Pins `pid` (0: the calling thread) to `cpu`, if pinning is on.
fn pin(pid: i32, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = CpuSet::new();
        if set.set(cpu).is_ok() {
            let _ = sched_setaffinity(Pid::from_raw(pid), &set);
        }
    }
}

/// Pins the calling thread to the server CPU.
fn pin_server() {
    pin(0, cpus().map(|c| c.1));
}

/// tls-unix's options for every connection of ours: the defaults, except that
/// `OURS_UNREAD_KIB=<n>` sets `Limits::unread_plaintext` (an experiment knob: it bounds how
/// much receive buffer the engine offers, and zero-fills, per read).
fn our_options() -> Options {
    let mut options = Options::default();
    if let Some(kib) = env_num("OURS_UNREAD_KIB") {
        options.limits.unread_plaintext = kib as usize * 1024;
    }
    options
}

/// A client and server config pair for one side (each side its own ticketer and cache).
fn configs(pki: &Pki, resumption: bool) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let opts = CertOptions {
        versions: TLS13.to_vec(),
        resumption,
        ..CertOptions::default()
    };
    (
        Arc::new(pki.client_config(&opts)),
        Arc::new(pki.server_config(&opts)),
    )
}

/// Where criterion writes its results (see benches/core/main.rs).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CRITERION_HOME") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.join("criterion"))
}

fn save(rows: &[Row], settings: &Settings) {
    let entries: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "\"{}\":{{\"peer\":\"{}\",\"unit\":\"{}\",\"ours\":{:.1},\"peer_rate\":{:.1},\
                 \"ratio\":{:.4},\"min\":{:.4},\"max\":{:.4},\"target\":{}}}",
                r.case, r.peer, r.unit, r.ours, r.theirs, r.ratio, r.min, r.max, r.target
            )
        })
        .collect();
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let json = format!(
        "{{\"settings\":{{\"conns\":{},\"rounds\":{},\"bulk_rounds\":{},\"bulk_bytes\":{},\
         \"glibc_tunables\":\"{tunables}\"}},\"cases\":{{{}}}}}",
        settings.conns,
        settings.rounds,
        settings.bulk_rounds,
        settings.bulk,
        entries.join(",")
    );
    if let Some(dir) = criterion_dir() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("sockets.json"), json);
        }
    }
}

fn main() -> io::Result<()> {
    let s = Settings::from_env();
    let pinned = cpus();
    pin(0, pinned.map(|c| c.0));
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let mb = 1e6;
    println!(
        "sockets over 127.0.0.1: {} connections per slice, {} rounds; bulk {} MiB x {} rounds; \
         GLIBC_TUNABLES={:?}; client on CPU {}, servers on CPU {}",
        s.conns,
        s.rounds,
        s.bulk >> 20,
        s.bulk_rounds,
        std::env::var("GLIBC_TUNABLES").unwrap_or_default(),
        pinned.map_or("any".into(), |c| c.0.to_string()),
        pinned.map_or("any".into(), |c| c.1.to_string()),
    );
    println!("ratio = ours / peer (median of per-round ratios; range = min-max over rounds)");
    print_header();
    let mut rows = Vec::new();

    // Blocking: tls-unix against rustls' StreamOwned, both sides in this process.
    for (case, resumption) in [
        ("conn-new/blocking", false),
        ("conn-resumed/blocking", true),
    ] {
        if !s.wants(case) {
            continue;
        }
        let (oc, os) = configs(&pki, resumption);
        let (rc, rs) = configs(&pki, resumption);
        let (oa, ra) = (
            blocking_server(Impl::Ours, os)?,
            blocking_server(Impl::Rustls, rs)?,
        );
        if resumption {
            // A first full handshake fills each client's ticket cache.
            blocking_client(Impl::Ours, &oc, oa, SMALL)?;
            blocking_client(Impl::Rustls, &rc, ra, SMALL)?;
        }
        rows.push(paired(
            case,
            "rustls StreamOwned",
            "/s",
            1.0,
            1.0,
            s.rounds,
            || blocking_slice(Impl::Ours, &oc, oa, s.conns, SMALL, resumption).map(per_conn),
            || blocking_slice(Impl::Rustls, &rc, ra, s.conns, SMALL, resumption).map(per_conn),
        )?);
    }
    if s.wants("bulk/blocking") {
        let (oc, os) = configs(&pki, false);
        let (rc, rs) = configs(&pki, false);
        let (oa, ra) = (
            blocking_server(Impl::Ours, os)?,
            blocking_server(Impl::Rustls, rs)?,
        );
        rows.push(paired(
            "bulk/blocking",
            "rustls StreamOwned",
            "MB/s",
            mb,
            1.0,
            s.bulk_rounds,
            || blocking_slice(Impl::Ours, &oc, oa, 1, s.bulk, false),
            || blocking_slice(Impl::Rustls, &rc, ra, 1, s.bulk, false),
        )?);
    }

    // Tokio: tls-unix's tokio flavour against tokio-rustls on one runtime.
    let tokio_cases = ["conn-new/tokio", "conn-resumed/tokio", "bulk/tokio"];
    if tokio_cases.iter().any(|c| s.wants(c)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(pin_server)
            .enable_all()
            .build()?;
        for (case, resumption) in [("conn-new/tokio", false), ("conn-resumed/tokio", true)] {
            if !s.wants(case) {
                continue;
            }
            let (oc, os) = configs(&pki, resumption);
            let (rc, rs) = configs(&pki, resumption);
            let (oa, ra) = (
                tokio_server(&rt, Impl::Ours, os)?,
                tokio_server(&rt, Impl::Rustls, rs)?,
            );
            if resumption {
                rt.block_on(tokio_client(Impl::Ours, &oc, oa, SMALL))?;
                rt.block_on(tokio_client(Impl::Rustls, &rc, ra, SMALL))?;
            }
            rows.push(paired(
                case,
                "tokio-rustls",
                "/s",
                1.0,
                1.0,
                s.rounds,
                || tokio_slice(&rt, Impl::Ours, &oc, oa, s.conns, SMALL, resumption).map(per_conn),
                || {
                    tokio_slice(&rt, Impl::Rustls, &rc, ra, s.conns, SMALL, resumption)
                        .map(per_conn)
                },
            )?);
        }
        if s.wants("bulk/tokio") {
            let (oc, os) = configs(&pki, false);
            let (rc, rs) = configs(&pki, false);
            let (oa, ra) = (
                tokio_server(&rt, Impl::Ours, os)?,
                tokio_server(&rt, Impl::Rustls, rs)?,
            );
            rows.push(paired(
                "bulk/tokio",
                "tokio-rustls",
                "MB/s",
                mb,
                1.0,
                s.bulk_rounds,
                || tokio_slice(&rt, Impl::Ours, &oc, oa, 1, s.bulk, false),
                || tokio_slice(&rt, Impl::Rustls, &rc, ra, 1, s.bulk, false),
            )?);
        }
        rt.shutdown_background();
    }

    // Servers: our blocking server against openssl s_server, fetched by the same client.
    let sserver_cases = [
        "conn-new/vs-s_server",
        "conn-new/rustls-vs-s_server",
        "conn-new/vs-s_server-cpu",
        "conn-new/rustls-vs-s_server-cpu",
        "bulk/vs-s_server",
        "bulk/rustls-vs-s_server",
        "bulk/vs-s_server-cpu",
        "bulk/rustls-vs-s_server-cpu",
    ];
    if sserver_cases.iter().any(|c| s.wants(c)) {
        let bulk = if sserver_cases
            .iter()
            .any(|c| c.starts_with("bulk") && s.wants(c))
        {
            s.bulk
        } else {
            0
        };
        let root = WebRoot::new(&pki, bulk)?;
        match SServer::start(&root.0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                for case in sserver_cases.iter().filter(|c| s.wants(c)) {
                    println!("{case:<31} | skipped: openssl not installed");
                }
            }
            Err(e) => return Err(e),
            Ok(sserver) => {
                let (client, server) = configs(&pki, false);
                let (ours, ours_cpu) = www_server(Impl::Ours, server.clone(), root.0.clone())?;
                let (raw, raw_cpu) = www_server(Impl::Rustls, server, root.0.clone())?;
                let theirs = sserver.addr;
                let theirs_cpu = PathBuf::from(format!("/proc/{}/schedstat", sserver.child.id()));
                // Ours against s_server, then raw rustls' StreamOwned server against s_server
                // for reference (what the binding could reach at parity with rustls).
                for (addr, case, target) in [
                    (ours, "conn-new/vs-s_server", 2.0),
                    (raw, "conn-new/rustls-vs-s_server", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "/s",
                            1.0,
                            target,
                            s.rounds,
                            || www_slice(&client, addr, s.conns, "small", SMALL).map(per_conn),
                            || www_slice(&client, theirs, s.conns, "small", SMALL).map(per_conn),
                        )?);
                    }
                }
                // The same, per second of the server's own CPU time.
                for (addr, cpu, case, target) in [
                    (ours, &ours_cpu, "conn-new/vs-s_server-cpu", 2.0),
                    (raw, &raw_cpu, "conn-new/rustls-vs-s_server-cpu", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "/cpu-s",
                            1.0,
                            target,
                            s.rounds,
                            || {
                                server_cpu(cpu, || {
                                    www_slice(&client, addr, s.conns, "small", SMALL).map(per_conn)
                                })
                            },
                            || {
                                server_cpu(&theirs_cpu, || {
                                    www_slice(&client, theirs, s.conns, "small", SMALL)
                                        .map(per_conn)
                                })
                            },
                        )?);
                    }
                }
                for (addr, case, target) in [
                    (ours, "bulk/vs-s_server", 1.4),
                    (raw, "bulk/rustls-vs-s_server", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "MB/s",
                            mb,
                            target,
                            s.bulk_rounds,
                            || www_slice(&client, addr, 1, "bulk", bulk),
                            || www_slice(&client, theirs, 1, "bulk", bulk),
                        )?);
                    }
                }
                for (addr, cpu, case, target) in [
                    (ours, &ours_cpu, "bulk/vs-s_server-cpu", 1.4),
                    (raw, &raw_cpu, "bulk/rustls-vs-s_server-cpu", 0.0),
                ] {
                    if s.wants(case) {
                        rows.push(paired(
                            case,
                            "openssl s_server",
                            "MB/cpu-s",
                            mb,
                            target,
                            s.bulk_rounds,
                            || server_cpu(cpu, || www_slice(&client, addr, 1, "bulk", bulk)),
                            || {
                                server_cpu(&theirs_cpu, || {
                                    www_slice(&client, theirs, 1, "bulk", bulk)
                                })
                            },
                        )?);
                    }
                }
                drop(sserver);
            }
        }
    }

    save(&rows, &s);
    let missed = rows.iter().filter(|r| r.ratio < r.target).count();
    if rows.iter().any(|r| r.target == 0.0) {
        println!("(reference: raw rustls' own server against s_server, no target)");
    }
    println!(
        "{}",
        if missed == 0 {
            "every case meets its target".to_string()
        } else {
            format!("{missed} case(s) below target")
        }
    );
    Ok(())
}

/// A connection slice's amount was bytes (`SMALL` per connection): count connections.
fn per_conn((amount, elapsed): Slice) -> Slice {
    (amount / SMALL as f64, elapsed)
}
