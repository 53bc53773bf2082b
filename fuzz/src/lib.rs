//! Shared support for tlsflow's fuzz targets (see `fuzz/README.md`).
//!
//! Every target reads its input as a small byte script ([`Input`]): a header that picks
//! the configuration, then operations, each an opcode byte and its arguments. The format
//! is our own rather than `arbitrary`'s so that the committed seeds (`examples/make_seeds.rs`)
//! stay valid whatever `arbitrary`'s encoding does between versions.
//!
//! Handshakes use fresh randomness from *ring* on every run (key shares, nonces), so the
//! same input does not give the same ciphertext twice. The scripts are built so that this
//! does not matter for coverage: what an input decides (configuration, which record of a
//! flight is cut, mutated or replayed, where the splits fall, what the transport does) is
//! the same on every run; only the bytes inside encrypted records differ.

#![forbid(unsafe_code)]

extern crate alloc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{Limits, Session, MAX_RECORD, MIN_OUTBOUND};
use tls_test::certs::{KeyKind, Options, Pki, TLS12, TLS13};

pub mod framing;
pub mod pump;
pub mod session;

/// A cursor over fuzz input that never fails: past the end every read gives zeros.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` next bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }
}

/// The plaintext byte at position `i` of a stream one side sends: every stream is the same
/// function of position, so a reader checks "a prefix of what was sent" with a counter.
pub fn stream_byte(i: usize) -> u8 {
    ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ (i >> 16) as u8
}

/// `len` bytes of the stream starting at `from`.
pub fn stream(from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(stream_byte).collect()
}

/// Panics unless `data` is the stream's bytes at `from..`.
pub fn assert_stream(from: usize, data: &[u8], what: &str) {
    if let Some(i) = (0..data.len()).find(|&i| data[i] != stream_byte(from + i)) {
        panic!(
            "{what}: byte {} is {:#04x}, the peer sent {:#04x}",
            from + i,
            data[i],
            stream_byte(from + i)
        );
    }
}

/// Whether `FUZZ_TRACE` is set: the targets then describe each step on stderr (for
/// replaying a crash by hand).
pub fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// Whether two engine errors are the same. `tls_core::Error` is `PartialEq`, but an error
/// that carries a rustls `OtherError` (a certificate verifier's own error) never equals
/// anything, itself included, so the comparison goes through `Debug`.
pub fn same_error(a: &tls_core::Error, b: &tls_core::Error) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

/// Panics unless `got` and `want` are both absent or the [`same_error`].
pub fn assert_same_error(
    got: Option<&tls_core::Error>,
    want: Option<&tls_core::Error>,
    what: &str,
) {
    let same = match (got, want) {
        (Some(a), Some(b)) => same_error(a, b),
        (None, None) => true,
        _ => false,
    };
    assert!(same, "{what}: {got:?}, expected {want:?}");
}

/// Panics unless `r` is the error `want`.
pub fn assert_fails<T: std::fmt::Debug>(
    r: Result<T, tls_core::Error>,
    want: &tls_core::Error,
    what: &str,
) {
    match r {
        Ok(v) => panic!("{what}: Ok({v:?}), expected {want:?}"),
        Err(e) => assert_same_error(Some(&e), Some(want), what),
    }
}

/// One PKI per key kind for the whole process.
pub fn pki(kind: KeyKind) -> &'static Pki {
    static PKIS: [OnceLock<Pki>; 2] = [OnceLock::new(), OnceLock::new()];
    let index = usize::from(kind != KeyKind::EcdsaP256);
    PKIS[index].get_or_init(|| Pki::new(kind, &[]))
}

/// What a script's header byte selects for a pair of configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flavour {
    /// 0 or 3: TLS 1.3 and 1.2; 1: TLS 1.3 only; 2: TLS 1.2 only.
    pub versions: u8,
    /// Ed25519 keys instead of ECDSA P-256.
    pub ed25519: bool,
    /// Client certificates.
    pub mtls: bool,
    /// ALPN offered and accepted.
    pub alpn: bool,
}

impl Flavour {
    /// Decodes the low five bits of `b`.
    pub fn from_bits(b: u8) -> Self {
        Self {
            versions: b & 3,
            ed25519: b & 4 != 0,
            mtls: b & 8 != 0,
            alpn: b & 16 != 0,
        }
    }

    fn options(self) -> Options {
        Options {
            versions: match self.versions {
                1 => TLS13.to_vec(),
                2 => TLS12.to_vec(),
                _ => Vec::new(),
            },
            alpn: if self.alpn {
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            } else {
                Vec::new()
            },
            mtls: self.mtls,
            ..Options::default()
        }
    }
}

/// Client and server configs for `flavour`, made once per process.
pub fn configs(flavour: Flavour) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    type Cache = Mutex<HashMap<Flavour, (Arc<ClientConfig>, Arc<ServerConfig>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(flavour)
        .or_insert_with(|| {
            let pki = pki(if flavour.ed25519 {
                KeyKind::Ed25519
            } else {
                KeyKind::EcdsaP256
            });
            let opts = flavour.options();
            (
                Arc::new(pki.client_config(&opts)),
                Arc::new(pki.server_config(&opts)),
            )
        })
        .clone()
}

/// Limits picked by two bits: default; the smallest allowed (no room for unread
/// plaintext); small; default with room for one byte of unread plaintext.
pub fn limits(bits: u8) -> Limits {
    match bits & 3 {
        0 => Limits::default(),
        1 => Limits {
            inbound: MAX_RECORD,
            outbound: MIN_OUTBOUND,
            unread_plaintext: 0,
        },
        2 => Limits {
            inbound: MAX_RECORD,
            outbound: 4096,
            unread_plaintext: 1024,
        },
        _ => Limits {
            unread_plaintext: 1,
            ..Limits::default()
        },
    }
}

/// A client session for "localhost".
pub fn client(config: Arc<ClientConfig>, limits: Limits) -> Session {
    let name = ServerName::try_from("localhost").expect("valid name");
    Session::client(config, name, limits).expect("client session")
}

/// A server session.
pub fn server(config: Arc<ServerConfig>, limits: Limits) -> Session {
    Session::server(config, limits).expect("server session")
}

/// Moves `from`'s pending output into `to` (as much as `to` takes); returns the bytes moved.
pub fn transfer(from: &mut Session, to: &mut Session) -> usize {
    let out = from.pending_tls();
    if out.is_empty() || to.error().is_some() {
        return 0;
    }
    match to.read_tls(out) {
        Ok(n) => {
            from.tls_written(n);
            n
        }
        Err(_) => 0,
    }
}

/// Reads and discards every plaintext byte `s` has now; returns how many.
pub fn drain_plaintext(s: &mut Session, into: Option<&mut Vec<u8>>) -> usize {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    let mut sink = into;
    // Each turn returns data or stops: bounded by what the session holds.
    while let Ok(n @ 1..) = s.recv(&mut buf) {
        total += n;
        if let Some(v) = sink.as_deref_mut() {
            v.extend_from_slice(&buf[..n]);
        }
    }
    total
}
