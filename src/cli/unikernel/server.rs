//! `tlsflow serve --backend unikernel`: the application's server
//! ([`tlsflow_unikernel::Server`]) run by its event loop on the TAP platform.
//!
//! One thread serves every connection, as a unikernel would; see the application crate
//! for the state machine, the limits and the memory each connection holds.

use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::Args;
use smoltcp::time::Duration as SDuration;
use tlsflow_unikernel::{run_server, Config, Server};

use super::tap::Net;
use super::TapArgs;
use crate::cli::common::HttpLimits;
use crate::cli::tls::{server_config_for, ServerTlsArgs};
use crate::cli::Error;

/// How many connections the unikernel server holds, and its timeouts (`serve --backend
/// unikernel`).
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct ServeLimits {
    /// With --backend unikernel: most connections served at once. Each holds two TCP
    /// rings of about 64 KiB and its TLS state and buffers (bounded: about 130 KiB idle, at most
    /// about 350 KiB while moving data); more wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    max_concurrent: u16,
    /// With --backend unikernel: TCP sockets listening at once (smoltcp has no accept
    /// queue: each takes one connection and holds it, handshake answered, until a slot
    /// is free; each owns its two rings of about 64 KiB). Connection attempts beyond it are
    /// refused.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    backlog: u16,
}

/// `tlsflow serve --backend unikernel`.
pub(crate) fn serve(
    tap: &TapArgs,
    port: u16,
    tls: &ServerTlsArgs,
    echo: bool,
    max_connections: Option<u64>,
    limits: ServeLimits,
    http: HttpLimits,
) -> Result<(), Error> {
    // The application speaks HTTP/1.1 only: offering h2 would make curl pick it.
    let (config, what) = server_config_for(tls, &["http/1.1"])?;
    let mut net = Net::open(tap)?;
    let port = if port == 0 { net.take_port() } else { port };
    let app = Config {
        echo,
        max_concurrent: limits.max_concurrent.into(),
        backlog: limits.backlog.into(),
        max_connections,
        header_timeout: SDuration::from_micros(http.header_timeout.as_micros() as u64),
        idle_timeout: SDuration::from_micros(http.idle_timeout.as_micros() as u64),
        max_body: http.max_body,
        max_head: http.max_header_bytes,
        ..Config::default()
    };
    let mut server = Server::new(&mut net.sockets, port, Arc::new(config), app)
        .map_err(|e| format!("cannot listen on port {port}: {e}"))?;
    let stop = net.tap.stop.clone();
    ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    let tap_name = tap.tap.as_deref().unwrap_or("?");
    println!(
        "tlsflow: listening on {}:{port} ({}, {what}, unikernel stack on {tap_name}, \
         up to {} connections at once)",
        net.addr,
        if echo { "echo" } else { "https" },
        limits.max_concurrent
    );
    if !echo {
        let cacert = match tls.ca_out() {
            Some(path) => format!("--cacert {} ", path.display()),
            None => String::new(),
        };
        println!("tlsflow: try: curl {cacert}https://{}:{port}/", net.addr);
    }
    io::stdout().flush()?;
    run_server(&mut net.tap, &mut net.iface, &mut net.sockets, &mut server);
    println!("tlsflow: stopped");
    Ok(())
}
