//! `tlsflow serve`: HTTPS (or an echo service) on a chosen backend. The Unix backend is
//! [`tlsflow::server`]; this is its command line.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use clap::Args;
use tlsflow::server::{Options, Server};

use super::common::HttpLimits;
use super::tls::{server_config, ServerTlsArgs};
use super::unikernel::{self, Backend, TapArgs};
use super::Error;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed). With
    /// --backend unikernel only the port is used: the address is --ip's.
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// The network stack: the host's sockets, or tlsflow's own on a TAP device.
    #[arg(long, value_enum, default_value_t = Backend::Unix)]
    backend: Backend,
    #[command(flatten)]
    tap: TapArgs,
    /// Echo application data back instead of speaking HTTP (for conformance tools).
    #[arg(long)]
    echo: bool,
    /// Stop after this many connections (default: serve until Ctrl-C).
    #[arg(long)]
    max_connections: Option<u64>,
    #[command(flatten)]
    unix: UnixArgs,
    #[command(flatten)]
    http: HttpLimits,
    #[command(flatten)]
    limits: unikernel::ServeLimits,
    #[command(flatten)]
    tls: ServerTlsArgs,
}

/// Flags of the Unix backend (tokio and hyper).
#[derive(Debug, Args)]
struct UnixArgs {
    /// With the Unix backend: worker threads (default: one per core; 1: a single worker).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// With the Unix backend: most connections served at once; more wait in the listen
    /// backlog.
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_open: u32,
}

pub(crate) fn run(args: &ServeArgs) -> Result<(), Error> {
    if args.backend == Backend::Unikernel {
        return unikernel::serve(
            &args.tap,
            args.addr.port(),
            &args.tls,
            args.echo,
            args.max_connections,
            args.limits,
            args.http,
        );
    }
    let (mut config, what) = server_config(&args.tls)?;
    if config.alpn_protocols.is_empty() && !args.echo {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    let listener =
        TcpListener::bind(args.addr).map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    let log: tlsflow::server::Log = Arc::new(|line| {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    let u = &args.unix;
    let h = &args.http;
    let options = Options {
        echo: args.echo,
        threads: u.threads.map(usize::from),
        header_timeout: h.header_timeout,
        idle_timeout: h.idle_timeout,
        write_timeout: h.idle_timeout,
        max_connections_open: u.max_connections_open as usize,
        max_header_bytes: h.max_header_bytes,
        max_body: h.max_body,
        max_connections: args.max_connections,
        ..Options::default()
    };
    let server = Server::start(listener, Arc::new(config), options, log)?;
    let handle = server.handle();
    ctrlc::set_handler(move || handle.shutdown())
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    println!(
        "tlsflow: listening on {addr} ({}, {what})",
        if args.echo { "echo" } else { "https" }
    );
    if !args.echo {
        let host = if addr.ip().is_loopback() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        };
        let cacert = match &args.tls.ca_out() {
            Some(path) => format!("--cacert {} ", path.display()),
            None => String::new(),
        };
        println!("tlsflow: try: curl {cacert}https://{host}:{}/", addr.port());
    }
    io::stdout().flush()?;
    server.join();
    println!("tlsflow: stopped");
    Ok(())
}
