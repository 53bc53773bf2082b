//! One `GET` with hyper's client over tls-unix's tokio stream: HTTP/2 when the server
//! picks `h2` by ALPN, else HTTP/1.1.

use std::error::Error as StdError;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::{header, Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tls_unix::tokio::{TlsConnector, TlsStream};
use tls_unix::Options;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::common::{describe, BodySink, Fetched, Report, Url};
use super::Error;

/// What `get` offers by ALPN unless `--alpn` says otherwise.
pub(crate) const DEFAULT_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Tls = TlsStream<TcpStream>;

/// An error and its causes on one line: hyper's own messages are terse ("error reading a
/// body from connection"), the cause says why (for example that the peer truncated).
fn with_causes(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Connects to `addr`, fetches `url` over TLS with `config` and writes the body to `sink`,
/// reporting what `report` asks for (`verbose`: the handshake and the status line with
/// the HTTP version).
pub(crate) async fn get(
    config: &Arc<rustls::ClientConfig>,
    url: &Url,
    addr: SocketAddr,
    sink: &mut dyn Write,
    report: Report,
) -> Result<Fetched, Error> {
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| format!("not a valid server name: {}", url.host))?;
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(format!("cannot connect to {addr}: {e}").into()),
        Err(_) => return Err(format!("cannot connect to {addr}: timed out").into()),
    };
    tcp.set_nodelay(true)?;
    let options = Options {
        handshake_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        write_timeout: Some(Duration::from_secs(60)),
        ..Options::default()
    };
    let tls = TlsConnector::new(config.clone())
        .with_options(options)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr} failed: {}", with_causes(&e)))?;
    let info = tls
        .handshake_info()
        .cloned()
        .ok_or("no handshake information")?;
    if report.verbose {
        describe(&info, tls.session().peer_certificates().unwrap_or(&[]));
    }
    let h2 = info.alpn.as_deref() == Some(b"h2");
    let (status, len, digest, unclean_close) = if h2 {
        get_h2(tls, url, sink, report).await?
    } else {
        get_http1(tls, url, sink, report).await?
    };
    Ok(Fetched {
        info,
        status,
        len,
        digest,
        unclean_close,
    })
}

type Got = (u16, u64, [u8; 32], Option<io::Error>);

/// HTTP/1.1 with `connection: close`. hyper hands the stream back after the response, so
/// we send close_notify and wait for the server's: without a content-length the body
/// ends only there, so an unclean end is an error; with one, the body is complete and the
/// unclean end is reported.
async fn get_http1(
    tls: Tls,
    url: &Url,
    sink: &mut dyn Write,
    report: Report,
) -> Result<Got, Error> {
    let (mut sender, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| with_causes(&e))?;
    let conn = tokio::spawn(conn.without_shutdown());
    let request = Request::get(url.path.as_str())
        .header(header::HOST, url.authority())
        .header(
            header::USER_AGENT,
            concat!("tlsflow/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {}", with_causes(&e)))?;
    let (status, content_length) = head(&response, report.verbose);
    let (len, digest) = body(response, sink, content_length, report).await?;
    drop(sender);
    let parts = conn
        .await
        .map_err(|e| format!("HTTP/1.1 connection task: {e}"))?
        .map_err(|e| format!("HTTP/1.1 connection: {}", with_causes(&e)))?;
    if !parts.read_buf.is_empty() {
        return Err("data after the response body".into());
    }
    let mut tls = parts.io.into_inner();
    let end = async {
        tls.shutdown().await?;
        tls.read(&mut [0u8; 1]).await
    };
    let unclean_close = match end.await {
        Ok(0) => None,
        Ok(_) => return Err("data after the response body".into()),
        Err(e) if content_length.is_some() => Some(e),
        Err(e) => return Err(format!("body failed after {len} bytes: {e}").into()),
    };
    Ok((status, len, digest, unclean_close))
}

/// HTTP/2: frames delimit the body; when we drop our side hyper sends GOAWAY and then
/// close_notify. A connection that fails after a complete body is reported as unclean.
async fn get_h2(tls: Tls, url: &Url, sink: &mut dyn Write, report: Report) -> Result<Got, Error> {
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP/2 handshake failed: {}", with_causes(&e)))?;
    let conn = tokio::spawn(conn);
    // HTTP/2 carries scheme and authority as pseudo-headers, taken from the URI.
    let uri = format!("https://{}{}", url.authority(), url.path);
    let request = Request::get(uri.as_str())
        .version(Version::HTTP_2)
        .header(
            header::USER_AGENT,
            concat!("tlsflow/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {}", with_causes(&e)))?;
    let (status, content_length) = head(&response, report.verbose);
    let (len, digest) = body(response, sink, content_length, report).await?;
    drop(sender);
    let unclean_close = match conn.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(io::Error::other(with_causes(&e))),
        Err(e) => Some(io::Error::other(e)),
    };
    Ok((status, len, digest, unclean_close))
}

/// The status and content-length of a response, printed with `verbose` as curl does
/// (`< HTTP/2 200`).
fn head(response: &Response<Incoming>, verbose: bool) -> (u16, Option<u64>) {
    let status = response.status().as_u16();
    if verbose {
        let version = match response.version() {
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        eprintln!("< {version} {status}");
    }
    let content_length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, content_length)
}

/// Copies the body into `sink`; hyper ends it by length, chunking, HTTP/2 frames or (a
/// body without a length) the peer's close_notify, and fails it on a truncated stream.
async fn body(
    response: Response<Incoming>,
    sink: &mut dyn Write,
    content_length: Option<u64>,
    report: Report,
) -> Result<(u64, [u8; 32]), Error> {
    let mut incoming = response.into_body();
    let mut out = BodySink::new(sink, content_length, report.progress, report.digest);
    while let Some(frame) = incoming.frame().await {
        let frame = frame
            .map_err(|e| format!("body failed after {} bytes: {}", out.len(), with_causes(&e)))?;
        if let Ok(data) = frame.into_data() {
            out.write(&data)?;
        }
    }
    if let Some(total) = content_length {
        if out.len() != total {
            return Err(format!("body truncated at {} of {total} bytes", out.len()).into());
        }
    }
    out.finish()
}
