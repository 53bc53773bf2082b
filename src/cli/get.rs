//! `tlsflow get URL`: a small HTTPS client in the manner of curl, on hyper (HTTP/2 when
//! the server picks it, else HTTP/1.1) over tls-unix's tokio stream, or on the unikernel
//! stack with `--backend unikernel`.

use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::client;
use super::common::{hex, progress_wanted, resolve, Report};
use super::tls::{client_config, ClientTlsArgs};
use super::unikernel::{Backend, Client, TapArgs};
use super::Error;

// Where the unikernel client and the demo find them.
use super::common::{parse_url, Fetched, Url};

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The URL to fetch: https://HOST[:PORT][/PATH]
    url: String,
    /// Print the handshake (version, suite, ALPN, certificate chain) to stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Write the body to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Reconnect N more times, resuming the session, and say whether each resumed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    resume: u32,
    /// Print the body's SHA-256 and length instead of the body (or besides -o).
    #[arg(long)]
    sha256: bool,
    /// Silent: no progress bar (one is drawn on a terminal's stderr for a long body).
    #[arg(short, long)]
    silent: bool,
    /// The network stack: the host's sockets, or tlsflow's own on a TAP device (the URL's
    /// host must then be an IPv4 address).
    #[arg(long, value_enum, default_value_t = Backend::Unix)]
    backend: Backend,
    #[command(flatten)]
    tap: TapArgs,
    #[command(flatten)]
    tls: ClientTlsArgs,
}

/// A blocking [`client::get`] on a current-thread runtime of its own, with the body's
/// digest, for callers without a runtime (the demo).
pub(crate) fn fetch(
    config: &Arc<rustls::ClientConfig>,
    url: &Url,
    addr: SocketAddr,
    sink: &mut dyn Write,
    verbose: bool,
    progress: bool,
) -> Result<Fetched, Error> {
    let report = Report {
        verbose,
        progress,
        digest: true,
    };
    runtime()?.block_on(client::get(config, url, addr, sink, report))
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?)
}

/// Where `get` connects from.
enum Stack {
    /// The host's sockets, through hyper on a current-thread runtime.
    Unix(tokio::runtime::Runtime, SocketAddr),
    /// tlsflow's own TCP/IP stack on a TAP device.
    Unikernel(Box<Client>),
}

pub(crate) fn run(args: &GetArgs) -> Result<(), Error> {
    let url = parse_url(&args.url)?;
    let mut config = client_config(&args.tls)?;
    let mut stack = match args.backend {
        Backend::Unix => {
            // hyper speaks both: offer HTTP/2 first unless --alpn says otherwise.
            if config.alpn_protocols.is_empty() {
                config.alpn_protocols = client::DEFAULT_ALPN.map(<[u8]>::to_vec).to_vec();
            }
            Stack::Unix(runtime()?, resolve(&url)?)
        }
        Backend::Unikernel => Stack::Unikernel(Box::new(Client::open(&args.tap)?)),
    };
    let config = Arc::new(config);
    for attempt in 0..=args.resume {
        let mut sink: Box<dyn Write> = match (&args.output, args.sha256, attempt) {
            (_, _, a) if a > 0 => Box::new(io::sink()),
            (Some(path), _, _) => Box::new(
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            ),
            (None, true, _) => Box::new(io::sink()),
            (None, false, _) => Box::new(io::stdout().lock()),
        };
        let body_to_stdout = args.output.is_none() && !args.sha256;
        let progress = attempt == 0 && progress_wanted(args.silent, body_to_stdout);
        let verbose = args.verbose && attempt == 0;
        let fetched = match &mut stack {
            Stack::Unikernel(client) => {
                client.fetch(&config, &url, &mut sink, verbose, progress)?
            }
            Stack::Unix(rt, addr) => {
                let report = Report {
                    verbose,
                    progress,
                    digest: args.sha256 && attempt == 0,
                };
                rt.block_on(client::get(&config, &url, *addr, &mut sink, report))?
            }
        };
        if args.resume > 0 {
            eprintln!(
                "connection {}: {}",
                attempt + 1,
                if fetched.info.resumed {
                    "resumed"
                } else {
                    "full handshake"
                }
            );
        }
        if let (Some(e), true) = (&fetched.unclean_close, args.verbose) {
            eprintln!("note: body complete, but the server did not close cleanly: {e}");
        }
        if args.sha256 && attempt == 0 {
            println!("{}  {}", hex(&fetched.digest), fetched.len);
        }
        if !(200..300).contains(&fetched.status) {
            return Err(format!("server answered HTTP {}", fetched.status).into());
        }
    }
    Ok(())
}
