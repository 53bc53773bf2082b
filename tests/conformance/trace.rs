//! What the application sees, normalised across backends, and the comparison that names
//! the first difference.
//!
//! A [`Trace`] is one side's observations in order ([`Entry`]) plus the engine events it
//! reported ([`Ev`], kept apart: when a backend happens to poll an event relative to a read
//! depends on how its bytes arrived, which must not matter). Reads are coalesced: two
//! backends that deliver the same bytes in different chunks give the same trace.

use std::fmt;

use ring::digest;
use tls_core::rustls::{AlertDescription, CipherSuite, ProtocolVersion};
use tls_core::{Event, HandshakeInfo, Initiator};

/// What the handshake negotiated, as far as the application can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub version: ProtocolVersion,
    pub suite: CipherSuite,
    pub alpn: Option<String>,
    pub resumed: bool,
    /// Whether the peer presented a certificate chain that was verified.
    pub peer_cert: bool,
    /// The server name (client: asked for; server: received).
    pub sni: Option<String>,
}

impl Handshake {
    pub fn new(info: &HandshakeInfo, peer_cert: bool) -> Self {
        Self {
            version: info.version,
            suite: info.cipher_suite,
            alpn: info
                .alpn
                .as_ref()
                .map(|a| String::from_utf8_lossy(a).into_owned()),
            resumed: info.resumed,
            peer_cert,
            sni: info.sni.clone(),
        }
    }
}

/// A failure, normalised from the typed error each backend returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fail {
    /// EOF before close_notify.
    Truncated,
    /// The peer sent this fatal alert.
    AlertReceived(AlertDescription),
    /// The engine rejected what the peer sent (the rustls error, `Debug`-formatted: it is
    /// the same value whichever backend carried it).
    Tls(String),
    /// A time limit ran out (a socket/task timeout, or a stepped backend that stalled).
    Timeout(String),
    /// The transport was reset (RST), without a TLS-level reason.
    Reset,
    /// Anything else: a backend-specific error that has no normalised form.
    Other(String),
}

impl Fail {
    /// From the engine's error (every backend carries one of these for TLS failures).
    pub fn from_core(e: &tls_core::Error) -> Self {
        match e {
            tls_core::Error::Truncated => Self::Truncated,
            tls_core::Error::AlertReceived(a) => Self::AlertReceived(*a),
            tls_core::Error::Tls(e) => Self::Tls(format!("{e:?}")),
            other => Self::Other(format!("tls_core::Error::{other:?}")),
        }
    }

    /// From a tls-unix `io::Error`: the typed error inside, else the kind.
    pub fn from_io(e: &std::io::Error) -> Self {
        if let Some(tls) = tls_unix::tls_error(e) {
            // A write after our own close is `BrokenPipe` on every tls-unix flavour
            // (moved from tls-unix's flavour tests).
            if matches!(tls, tls_core::Error::Closed) && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Self::Other(format!("Closed as io {:?}, not BrokenPipe", e.kind()));
            }
            return Self::from_core(tls);
        }
        if let Some(t) = tls_unix::timeout(e) {
            return Self::Timeout(format!("{t}"));
        }
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Self::Reset,
            K::TimedOut | K::WouldBlock => Self::Timeout(format!("io: {e}")),
            kind => Self::Other(format!("io {kind:?}: {e}")),
        }
    }

    /// From tls-unikernel's error.
    pub fn from_unikernel(e: &tls_unikernel::Error) -> Self {
        use tls_unikernel::Error as E;
        match e {
            E::Truncated => Self::Truncated,
            E::Tls(e) => Self::from_core(e),
            E::Reset => Self::Reset,
            E::HandshakeTimeout => Self::Timeout("unikernel handshake timeout".into()),
            other => Self::Other(format!("tls_unikernel::Error::{other:?}")),
        }
    }
}

/// One observation of the application, in order.
#[derive(Clone, PartialEq, Eq)]
pub enum Entry {
    /// A new connection starts (resumption scenarios run several).
    Connection(usize),
    Handshake(Handshake),
    /// A write operation completed: this many bytes were accepted and flushed.
    Wrote(usize),
    /// Consecutive reads, coalesced: how many bytes and the SHA-256 of them (hex prefix).
    Read {
        bytes: usize,
        sha256: String,
    },
    /// A clean end of stream (the peer's close_notify, after all its data).
    Eof,
    /// Our close_notify went out (and the transport's sending half was shut).
    Closed,
    /// We asked for a KeyUpdate.
    KeyUpdate,
    /// An operation failed; the side's script stops here.
    Error(Fail),
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connection(n) => write!(f, "Connection({n})"),
            Self::Handshake(h) => write!(
                f,
                "Handshake({:?}, {:?}, alpn={:?}, resumed={}, peer_cert={}, sni={:?})",
                h.version, h.suite, h.alpn, h.resumed, h.peer_cert, h.sni
            ),
            Self::Wrote(n) => write!(f, "Wrote({n})"),
            Self::Read { bytes, sha256 } => write!(f, "Read({bytes} bytes, sha256 {sha256})"),
            Self::Eof => f.write_str("Eof"),
            Self::Closed => f.write_str("Closed"),
            Self::KeyUpdate => f.write_str("KeyUpdate"),
            Self::Error(e) => write!(f, "Error({e:?})"),
        }
    }
}

/// Engine events worth comparing (the handshake is already an [`Entry`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    KeysUpdated(Initiator),
    PeerClosed,
    Closed,
}

impl Ev {
    pub fn from_event(e: Event) -> Option<Self> {
        match e {
            Event::KeysUpdated(who) => Some(Self::KeysUpdated(who)),
            Event::PeerClosed => Some(Self::PeerClosed),
            Event::Closed => Some(Self::Closed),
            _ => None,
        }
    }
}

/// One side's trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub entries: Vec<Entry>,
    pub events: Vec<Ev>,
}

/// Builds a [`Trace`], hashing coalesced reads as they come.
#[derive(Default)]
pub struct Recorder {
    trace: Trace,
    /// The read being coalesced: bytes so far and their running hash.
    reading: Option<(usize, digest::Context)>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 hex prefix used in [`Entry::Read`].
pub fn short_sha(d: digest::Digest) -> String {
    hex(&d.as_ref()[..8])
}

impl Recorder {
    fn end_read(&mut self) {
        if let Some((bytes, ctx)) = self.reading.take() {
            self.trace.entries.push(Entry::Read {
                bytes,
                sha256: short_sha(ctx.finish()),
            });
        }
    }

    pub fn push(&mut self, e: Entry) {
        self.end_read();
        self.trace.entries.push(e);
    }

    pub fn read(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let (n, ctx) = self
            .reading
            .get_or_insert_with(|| (0, digest::Context::new(&digest::SHA256)));
        *n += data.len();
        ctx.update(data);
    }

    pub fn event(&mut self, e: Event) {
        if let Some(ev) = Ev::from_event(e) {
            self.trace.events.push(ev);
        }
    }

    pub fn finish(mut self) -> Trace {
        self.end_read();
        self.trace
    }
}

/// The first difference between two traces, described; `None` when they are equal.
pub fn first_difference(reference: &Trace, other: &Trace) -> Option<String> {
    fn diff<T: fmt::Debug + PartialEq>(what: &str, a: &[T], b: &[T]) -> Option<String> {
        let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        if i == a.len() && i == b.len() {
            return None;
        }
        let show = |v: &[T]| match v.get(i) {
            Some(e) => format!("{e:?}"),
            None => "(end)".into(),
        };
        Some(format!(
            "{what}[{i}]: reference {} / this backend {}",
            show(a),
            show(b)
        ))
    }
    diff("entry", &reference.entries, &other.entries)
        .or_else(|| diff("event", &reference.events, &other.events))
}

/// A multi-line listing of a trace, for failure messages.
pub fn listing(t: &Trace) -> String {
    let mut s = String::new();
    for (i, e) in t.entries.iter().enumerate() {
        s += &format!("      {i:2} {e:?}\n");
    }
    s += &format!("      events {:?}\n", t.events);
    s
}
