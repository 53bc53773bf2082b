//! The one log line per connection, its close reason, and the `/` page.

use core::fmt;

use tls_core::HandshakeInfo;

/// How the log names a connection whose transport ended before the peer's close_notify.
pub const TRUNCATED: &str = "peer closed without close_notify (truncated)";

/// Why the server ended a connection early (before the TLS close), if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cause {
    /// A malformed request line or header: hyper answered `400 Bad Request`.
    BadRequest,
    /// The request head was over the limit: hyper answered `431`.
    HeadersTooLarge,
    /// The request body was over `max_body`: we answered `413`.
    BodyTooLarge,
    /// The request head did not arrive within the header-read timeout.
    HeaderTimeout,
    /// No request (or no byte) within the idle keep-alive timeout.
    IdleTimeout,
    /// The server is shutting down (graceful: in-flight responses finished).
    Shutdown,
    /// An HTTP or transport error, with its text.
    Error(String),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::BadRequest => f.write_str("bad request (400)"),
            Cause::HeadersTooLarge => f.write_str("request head too large (431)"),
            Cause::BodyTooLarge => f.write_str("request body too large (413)"),
            Cause::HeaderTimeout => f.write_str("header-read timeout"),
            Cause::IdleTimeout => f.write_str("idle timeout"),
            Cause::Shutdown => f.write_str("server shutdown"),
            Cause::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// How the TLS connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsEnd {
    /// The peer sent close_notify first; we answered with ours.
    PeerFirst,
    /// We sent close_notify, and the peer answered with its own.
    Both,
    /// We sent close_notify; the peer closed its transport without answering, or did not
    /// answer in time.
    Sent,
    /// The transport ended before the peer's close_notify.
    Truncated,
    /// The connection failed before any close_notify could be sent.
    Failed,
}

impl fmt::Display for TlsEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsEnd::PeerFirst => "close_notify (peer first)",
            TlsEnd::Both => "close_notify (both)",
            TlsEnd::Sent => "close_notify (sent, no reply)",
            TlsEnd::Truncated => TRUNCATED,
            TlsEnd::Failed => "no close_notify",
        })
    }
}

/// Why and how a connection closed: the `close=` field of the log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    /// What made the server end the connection, if not the peer.
    pub cause: Option<Cause>,
    /// How the TLS layer ended.
    pub tls: TlsEnd,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Some(cause) => write!(f, "{cause}; {}", self.tls),
            None => write!(f, "{}", self.tls),
        }
    }
}

fn alpn(info: &HandshakeInfo) -> String {
    info.alpn
        .as_deref()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_else(|| "-".into())
}

/// The one log line per connection every backend prints:
/// `PEER VERSION SUITE alpn=A resumed=R in=N out=N MS ms [requests=N] close=REASON`
/// (`close=` last: its value has spaces; `in`/`out` count plaintext bytes).
pub fn log_line(
    peer: &str,
    info: Option<&HandshakeInfo>,
    read: u64,
    written: u64,
    millis: u128,
    requests: Option<u64>,
    close: &dyn fmt::Display,
) -> String {
    let (version, suite, alpn, resumed) = match info {
        Some(i) => (
            format!("{:?}", i.version),
            format!("{:?}", i.cipher_suite),
            alpn(i),
            i.resumed,
        ),
        None => ("?".into(), "?".into(), "-".into(), false),
    };
    let requests = match requests {
        Some(n) => format!(" requests={n}"),
        None => String::new(),
    };
    format!(
        "{peer} {version} {suite} alpn={alpn} resumed={resumed} in={read} out={written} {millis} ms{requests} close={close}"
    )
}

/// The `/` page: what the connection negotiated, on either backend.
pub fn index_page(backend: &str, info: Option<&HandshakeInfo>, client_cert: bool) -> String {
    let Some(i) = info else {
        return "tlsflow\n".into();
    };
    format!(
        "tlsflow ({backend} backend)\nversion: {:?}\ncipher suite: {:?}\nkey exchange: {}\nalpn: {}\nsni: {}\nresumed: {}\nclient certificate: {}\n",
        i.version,
        i.cipher_suite,
        i.key_exchange.map(|g| format!("{g:?}")).unwrap_or_else(|| "-".into()),
        alpn(i),
        i.sni.as_deref().unwrap_or("-"),
        i.resumed,
        if client_cert { "yes" } else { "no" },
    )
}
