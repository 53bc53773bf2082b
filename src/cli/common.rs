//! Pieces the commands share: https URLs, what one fetch returned, the handshake
//! description of `get -v`, copying a body to its sink (digest and progress bar), and the
//! HTTP limit flags both `serve` backends take.

use std::io::{self, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ring::digest;

use super::Error;

/// The parts of an https URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl Url {
    /// The authority as a `Host` header or an HTTP/2 `:authority` writes it: the port only
    /// when it is not 443, an IPv6 address in brackets.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            443 => host,
            port => format!("{host}:{port}"),
        }
    }
}

/// Parses `https://HOST[:PORT][/PATH]` (HOST may be `[IPv6]`).
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
        let port = match after {
            "" => "443",
            p => p
                .strip_prefix(':')
                .ok_or_else(|| format!("bad port in {url}"))?,
        };
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

/// Resolves a URL's host and port.
pub(crate) fn resolve(url: &Url) -> Result<SocketAddr, Error> {
    Ok((url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("no address for {}", url.host))?)
}

/// One fetched URL.
pub(crate) struct Fetched {
    /// What the handshake negotiated.
    pub(crate) info: tls_core::HandshakeInfo,
    /// The HTTP status.
    pub(crate) status: u16,
    /// Body length.
    pub(crate) len: u64,
    /// The body's SHA-256 (all zeros when [`Report::digest`] was off).
    pub(crate) digest: [u8; 32],
    /// How the server ended the connection, if not with close_notify, when the body was
    /// complete anyway.
    pub(crate) unclean_close: Option<io::Error>,
}

/// What a fetch reports besides the body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Report {
    /// The handshake and the status line on stderr.
    pub(crate) verbose: bool,
    /// A progress bar on stderr for a long body.
    pub(crate) progress: bool,
    /// The body's SHA-256 (a third of the client's CPU time on a fast download, so only
    /// when wanted).
    pub(crate) digest: bool,
}

/// Prints what a handshake negotiated and the peer's certificate subjects to stderr.
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

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `get` may draw a progress bar: on a terminal stderr, unless `-s`, and not over
/// a body that goes to the same terminal.
pub(crate) fn progress_wanted(silent: bool, body_to_stdout: bool) -> bool {
    !silent && io::stderr().is_terminal() && !(body_to_stdout && io::stdout().is_terminal())
}

/// Bodies from this size on (and those of unknown length) get a progress bar; smaller
/// ones stay quiet.
pub(crate) const LONG_BODY: u64 = 1 << 20;

/// Where a body goes: the sink, its SHA-256 and length, and a progress bar on stderr for
/// a long body.
pub(crate) struct BodySink<'a> {
    sink: &'a mut dyn Write,
    digest: Option<digest::Context>,
    got: u64,
    bar: Option<ProgressBar>,
}

impl<'a> BodySink<'a> {
    /// A body of `total` bytes (`None`: unknown) for `sink`; `progress` allows the bar,
    /// which a body of unknown length or of at least [`LONG_BODY`] bytes gets; `digest`
    /// computes its SHA-256.
    pub(crate) fn new(
        sink: &'a mut dyn Write,
        total: Option<u64>,
        progress: bool,
        digest: bool,
    ) -> Self {
        Self {
            sink,
            digest: digest.then(|| digest::Context::new(&digest::SHA256)),
            got: 0,
            bar: (progress && total.is_none_or(|n| n >= LONG_BODY))
                .then(|| progress_bar(total, ProgressDrawTarget::stderr())),
        }
    }

    /// Bytes so far.
    pub(crate) fn len(&self) -> u64 {
        self.got
    }

    /// Takes the next piece of the body.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(digest) = &mut self.digest {
            digest.update(data);
        }
        self.sink
            .write_all(data)
            .map_err(|e| format!("cannot write the body: {e}"))?;
        self.got += data.len() as u64;
        if let Some(bar) = &self.bar {
            bar.set_position(self.got);
        }
        Ok(())
    }

    /// The body is complete: flushes the sink, clears the bar, and returns the length and
    /// the SHA-256.
    pub(crate) fn finish(mut self) -> Result<(u64, [u8; 32]), Error> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.sink
            .flush()
            .map_err(|e| format!("cannot write the body: {e}"))?;
        let digest = match self.digest.take() {
            Some(digest) => digest
                .finish()
                .as_ref()
                .try_into()
                .expect("SHA-256 is 32 bytes"),
            None => [0; 32],
        };
        Ok((self.got, digest))
    }
}

impl Drop for BodySink<'_> {
    fn drop(&mut self) {
        // A failed body leaves the bar where it stopped, on a line of its own, above
        // the error message.
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

/// A bar with size, rate and ETA for a known length, else a spinner with size and rate.
fn progress_bar(total: Option<u64>, target: ProgressDrawTarget) -> ProgressBar {
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), target),
            "{bar:30} {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, target),
            "{spinner} {bytes} {binary_bytes_per_sec} {elapsed}",
        ),
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    // Redraws are rate-limited; without a tick, a body that stalls would leave the bar at
    // the last drawn position rather than at what has arrived.
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// HTTP limits, the same flags on both backends.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Seconds a request head may take to arrive (the clock starts when the server begins
    /// waiting for a head, so this is also how long an idle HTTP/1.1 keep-alive connection
    /// is kept on the Unix backend; the unikernel backend answers 408 when it runs out).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    pub(crate) header_timeout: Duration,
    /// Seconds a connection may go without traffic while the server waits to read (HTTP/2,
    /// echo, a kept-alive connection on the unikernel backend), and a write may wait for
    /// the peer.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = seconds)]
    pub(crate) idle_timeout: Duration,
    /// Largest request body in bytes (POST/PUT); larger gets 413.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub(crate) max_body: u64,
    /// Largest request head in bytes (HTTP/1.1, at least 8192); larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub(crate) max_header_bytes: usize,
}

fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
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
        assert_eq!(u.authority(), "localhost:8443");
        let u = parse_url("https://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(u.authority(), "[::1]:9");
        let u = parse_url("https://example.org").unwrap();
        assert_eq!((u.port, u.path.as_str()), (443, "/"));
        assert_eq!(u.authority(), "example.org");
        assert_eq!(parse_url("https://[::1]/x").unwrap().port, 443);
        assert!(parse_url("http://example.org").is_err());
        assert!(parse_url("https://h:notaport/").is_err());
        assert!(parse_url("https://[::1]junk/").is_err());
        assert!(parse_url("https:///x").is_err());
    }

    #[test]
    fn body_sink_counts_and_digests() {
        let data = b"hello, body".to_vec();
        let mut out = Vec::new();
        let mut body = BodySink::new(&mut out, Some(data.len() as u64), false, true);
        body.write(&data[..5]).unwrap();
        body.write(&data[5..]).unwrap();
        assert_eq!(body.len(), data.len() as u64);
        let (len, digest) = body.finish().unwrap();
        assert_eq!((len, out.as_slice()), (data.len() as u64, data.as_slice()));
        assert_eq!(
            digest,
            *ring::digest::digest(&digest::SHA256, &data).as_ref()
        );
        let mut out = Vec::new();
        let mut body = BodySink::new(&mut out, None, false, false);
        body.write(&data).unwrap();
        assert_eq!(
            body.finish().unwrap(),
            (data.len() as u64, [0; 32]),
            "no digest asked"
        );
    }

    #[test]
    fn progress_templates_parse_for_known_and_unknown_lengths() {
        let bar = progress_bar(Some(1 << 20), ProgressDrawTarget::hidden());
        bar.set_position(1 << 19);
        assert_eq!(bar.length(), Some(1 << 20));
        assert_eq!(bar.position(), 1 << 19);
        let spinner = progress_bar(None, ProgressDrawTarget::hidden());
        assert_eq!(spinner.length(), None);
    }
}
