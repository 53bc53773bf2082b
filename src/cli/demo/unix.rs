//! The demo's Unix backend: `tlsflow::server` on 127.0.0.1, fetched by the tlsflow
//! client and by curl and `openssl s_client` when they are installed.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use tlsflow_pki::{Options, Pki};
use tlsflow_unikernel::http;

use super::describe;
use crate::cli::common::Url;
use crate::cli::get::fetch;
use crate::cli::Error;

/// A real server on 127.0.0.1 (`tlsflow::server`), fetched by the tlsflow client and by
/// curl and `openssl s_client` when they are installed.
pub(super) fn unix_backend(pki: &Pki, bytes: u64) -> Result<(), Error> {
    println!("unix backend (tlsflow::server: hyper on tls-unix's tokio flavour, 127.0.0.1):");
    let opts = Options {
        alpn: vec![b"http/1.1".to_vec()],
        resumption: true,
        ..Options::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let (log_tx, log_rx) = mpsc::channel::<String>();
    let log_tx = Mutex::new(log_tx);
    let log: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |line| {
        let _ = log_tx.lock().unwrap().send(line);
    });
    let server = tlsflow::server::Server::start(
        listener,
        Arc::new(pki.server_config(&opts)),
        tlsflow::server::Options::default(),
        log,
    )?;
    let addr = server.addr();
    println!("  server listening on {addr}");
    let result = fetch_all(pki, &opts, addr, bytes);
    server.stop();
    for line in log_rx.try_iter() {
        println!("  server log: {line}");
    }
    result
}

fn fetch_all(pki: &Pki, opts: &Options, addr: SocketAddr, bytes: u64) -> Result<(), Error> {
    let config = Arc::new(pki.client_config(opts));
    let url = |path: String| Url {
        host: "localhost".into(),
        port: addr.port(),
        path,
    };
    for attempt in ["full", "resume"] {
        let f = fetch(
            &config,
            &url("/".into()),
            addr,
            &mut io::sink(),
            false,
            false,
        )?;
        println!("  tlsflow client {attempt:6} {}", describe(&f.info));
    }
    let start = Instant::now();
    let f = fetch(
        &config,
        &url(format!("/bytes/{bytes}")),
        addr,
        &mut io::sink(),
        false,
        false,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let ok = f.len == bytes && f.digest == http::pattern_digest(bytes);
    println!(
        "  tlsflow client fetched {} MiB in {secs:.2} s ({:.0} MB/s), SHA-256 {}",
        bytes >> 20,
        bytes as f64 / secs / 1e6,
        if ok { "matches" } else { "MISMATCH" }
    );
    if !ok {
        return Err("the fetched body does not match what the server sent".into());
    }
    let ca = std::env::temp_dir().join(format!("tlsflow-demo-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &pki.ca_pem)?;
    let peers = peer_fetches(&ca, addr);
    let _ = std::fs::remove_file(&ca);
    peers
}

/// Runs curl and `openssl s_client` against the server, if installed, and prints what
/// they negotiated (from their own verbose output).
fn peer_fetches(ca: &std::path::Path, addr: SocketAddr) -> Result<(), Error> {
    let url = format!("https://localhost:{}/bytes/1048576", addr.port());
    match Command::new("curl")
        .args(["-sS", "-v", "-o", "/dev/null", "--cacert"])
        .arg(ca)
        .arg(&url)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tls = err
                .lines()
                .find_map(|l| l.split("SSL connection using ").nth(1))
                .unwrap_or("?");
            let alpn = err
                .lines()
                .find_map(|l| l.split("ALPN: server accepted ").nth(1))
                .or_else(|| {
                    err.lines()
                        .find_map(|l| l.split("ALPN, server accepted to use ").nth(1))
                })
                .unwrap_or("-");
            if out.status.success() {
                println!("  curl           {tls}, alpn {alpn}, 1 MiB fetched");
            } else {
                return Err(format!("curl failed: {}", err.lines().last().unwrap_or("")).into());
            }
        }
        Err(_) => println!("  curl           not installed, skipped"),
    }
    let child = Command::new("openssl")
        .args([
            "s_client",
            "-brief",
            "-servername",
            "localhost",
            "-alpn",
            "http/1.1",
        ])
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    match child {
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin
                    .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
            }
            let out = child.wait_with_output()?;
            let err = String::from_utf8_lossy(&out.stderr);
            let field = |name: &str| {
                err.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or("?")
                    .to_string()
            };
            println!(
                "  openssl s_client {} {}, verification {}",
                field("Protocol version:"),
                field("Ciphersuite:"),
                field("Verification:")
            );
        }
        Err(_) => println!("  openssl        not installed, skipped"),
    }
    Ok(())
}
