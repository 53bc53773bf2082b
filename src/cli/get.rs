//! `tlsflow get URL`: a small HTTPS client in the manner of curl.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use rustls::pki_types::ServerName;
use tls_unix::{blocking, Options};

use super::tls::{client_config, ClientTlsArgs};
use super::unikernel::{Backend, Client, TapArgs};
use super::Error;
use tlsflow::http;

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
    /// The network stack: the host's sockets, or tlsflow's own on a TAP device (the URL's
    /// host must then be an IPv4 address).
    #[arg(long, value_enum, default_value_t = Backend::Unix)]
    backend: Backend,
    #[command(flatten)]
    tap: TapArgs,
    #[command(flatten)]
    tls: ClientTlsArgs,
}

/// The parts of an https URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

pub(crate) fn parse_url(url: &str) -> Result<Url, Error> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("only https:// URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 address in {url}"))?;
        let port = after.strip_prefix(':').unwrap_or("443");
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (authority, "443"),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {url}").into());
    }
    let port = port.parse().map_err(|_| format!("bad port in {url}"))?;
    Ok(Url {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// One fetched URL.
pub(crate) struct Fetched {
    /// What the handshake negotiated.
    pub(crate) info: tls_core::HandshakeInfo,
    /// The HTTP status.
    pub(crate) status: u16,
    /// Body length and SHA-256.
    pub(crate) len: u64,
    pub(crate) digest: [u8; 32],
    /// How the server ended the connection, if not with close_notify.
    pub(crate) unclean_close: Option<io::Error>,
}

/// Connects to `addr`, fetches `url` over TLS with `config` and writes the body to `sink`.
/// `verbose` prints the handshake and the status to stderr; `progress` a progress line
/// for long bodies.
pub(crate) fn fetch(
    config: &Arc<rustls::ClientConfig>,
    url: &Url,
    addr: SocketAddr,
    sink: &mut dyn Write,
    verbose: bool,
    progress: bool,
) -> Result<Fetched, Error> {
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| format!("not a valid server name: {}", url.host))?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let options = Options {
        handshake_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        write_timeout: Some(Duration::from_secs(60)),
        ..Options::default()
    };
    let mut tls = blocking::connect(config.clone(), name, tcp, options)
        .map_err(|e| format!("TLS handshake with {addr} failed: {e}"))?;
    let info = tls
        .handshake_info()
        .cloned()
        .ok_or("no handshake information")?;
    if verbose {
        describe(&info, tls.session().peer_certificates().unwrap_or(&[]));
    }
    http::write_get(&mut tls, &url.host, &url.path)?;
    let mut reader = BufReader::new(tls);
    let response = http::read_response(&mut reader)?;
    if verbose {
        eprintln!("< HTTP {}", response.status);
    }
    let (len, digest) = copy_body(&mut reader, sink, response.content_length, progress)?;
    sink.flush()?;
    let mut tls = reader.into_inner();
    // The request said `connection: close`: the server ends with close_notify, which we
    // answer. Without a content-length the body ends only there, so an unclean end is an
    // error; with one, the body is complete and the unclean end is reported.
    let unclean_close = match tls.shutdown().and_then(|()| tls.read(&mut [0u8; 1])) {
        Ok(0) => None,
        Ok(_) => return Err("data after the response body".into()),
        Err(e) if response.content_length.is_some() => Some(e),
        Err(e) => return Err(e.into()),
    };
    Ok(Fetched {
        info,
        status: response.status,
        len,
        digest,
        unclean_close,
    })
}

/// Resolves a URL's host and port.
pub(crate) fn resolve(url: &Url) -> Result<SocketAddr, Error> {
    Ok((url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("no address for {}", url.host))?)
}

pub(crate) fn run(args: &GetArgs) -> Result<(), Error> {
    let url = parse_url(&args.url)?;
    let config = Arc::new(client_config(&args.tls)?);
    let (addr, mut unikernel) = match args.backend {
        Backend::Unix => (Some(resolve(&url)?), None),
        Backend::Unikernel => (None, Some(Client::open(&args.tap)?)),
    };
    for attempt in 0..=args.resume {
        let mut sink: Box<dyn Write> = match (&args.output, args.sha256, attempt) {
            (_, _, a) if a > 0 => Box::new(io::sink()),
            (Some(path), _, _) => Box::new(
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            ),
            (None, true, _) => Box::new(io::sink()),
            (None, false, _) => Box::new(io::stdout().lock()),
        };
        // A progress line (on stderr) when stdout is a terminal not showing the body.
        let progress =
            attempt == 0 && io::stdout().is_terminal() && (args.output.is_some() || args.sha256);
        let verbose = args.verbose && attempt == 0;
        let fetched = match (&mut unikernel, addr) {
            (Some(client), _) => client.fetch(&config, &url, &mut sink, verbose, progress)?,
            (None, Some(addr)) => fetch(&config, &url, addr, &mut sink, verbose, progress)?,
            (None, None) => unreachable!("an address or a unikernel stack"),
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
            println!("{}  {}", http::hex(&fetched.digest), fetched.len);
        }
        if !(200..300).contains(&fetched.status) {
            return Err(format!("server answered HTTP {}", fetched.status).into());
        }
    }
    Ok(())
}

pub(crate) fn describe(
    info: &tls_core::HandshakeInfo,
    chain: &[rustls::pki_types::CertificateDer<'_>],
) {
    eprintln!("* version: {:?}", info.version);
    eprintln!("* cipher suite: {:?}", info.cipher_suite);
    if let Some(kx) = info.key_exchange {
        eprintln!("* key exchange: {kx:?}");
    }
    eprintln!(
        "* alpn: {}",
        info.alpn
            .as_deref()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_else(|| "-".into())
    );
    eprintln!("* resumed: {}", info.resumed);
    for (depth, cert) in chain.iter().enumerate() {
        match x509_parser::parse_x509_certificate(cert.as_ref()) {
            Ok((_, c)) => eprintln!(
                "* certificate {depth}: subject \"{}\", issuer \"{}\"",
                c.subject(),
                c.issuer()
            ),
            Err(_) => eprintln!("* certificate {depth}: (unparsable, {} bytes)", cert.len()),
        }
    }
}

/// Copies the body (by content-length, else to end of stream), with a progress line on
/// stderr for long bodies when `progress`. Returns its length and SHA-256.
pub(crate) fn copy_body<R: Read>(
    r: &mut R,
    w: &mut dyn Write,
    content_length: Option<u64>,
    progress: bool,
) -> Result<(u64, [u8; 32]), Error> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let progress = progress && content_length.is_none_or(|n| n > 8 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    let start = Instant::now();
    let mut shown = Instant::now();
    loop {
        let want = match content_length {
            Some(total) if got >= total => break,
            Some(total) => (total - got).min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        let n = match r.read(&mut buf[..want]) {
            Ok(0) if content_length.is_none() => break,
            Ok(0) => {
                return Err(format!(
                    "body truncated at {got} of {} bytes",
                    content_length.unwrap_or(0)
                )
                .into())
            }
            Ok(n) => n,
            Err(e) => return Err(format!("body failed after {got} bytes: {e}").into()),
        };
        ctx.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        got += n as u64;
        if progress && shown.elapsed() > Duration::from_millis(200) {
            shown = Instant::now();
            let rate = got as f64 / start.elapsed().as_secs_f64() / 1e6;
            match content_length {
                Some(total) => eprint!(
                    "\r{:>5.1}% {} MiB {rate:.0} MB/s",
                    got as f64 * 100.0 / total as f64,
                    got >> 20
                ),
                None => eprint!("\r{} MiB {rate:.0} MB/s", got >> 20),
            }
        }
    }
    if progress {
        eprintln!();
    }
    let digest = ctx
        .finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes");
    Ok((got, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("https://localhost:8443/bytes/10").unwrap();
        assert_eq!(
            u,
            Url {
                host: "localhost".into(),
                port: 8443,
                path: "/bytes/10".into()
            }
        );
        let u = parse_url("https://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(parse_url("https://example.org").unwrap().port, 443);
        assert!(parse_url("http://example.org").is_err());
        assert!(parse_url("https://h:notaport/").is_err());
        assert!(parse_url("https:///x").is_err());
    }
}
