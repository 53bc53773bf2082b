//! Support shared by the flavours' tests: certificates and generous options, data with a
//! digest, temporary directories for Unix-domain sockets, a bound on each test's time, and
//! `for_transports!`, which declares each test once per transport.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use ring::digest;
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::rustls::pki_types::ServerName;
use tls_unix::rustls::{ClientConfig, ServerConfig};
use tls_unix::{HalfClose, Options, SetTimeouts};

/// 8 MiB, the bulk size each way.
pub(crate) const BULK: u64 = 8 * 1024 * 1024;

/// The longest any single test may run.
pub(crate) const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Generous limits so that no test can hang.
pub(crate) fn options() -> Options {
    Options {
        handshake_timeout: Some(Duration::from_secs(20)),
        read_timeout: Some(Duration::from_secs(60)),
        write_timeout: Some(Duration::from_secs(60)),
        ..Options::default()
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::new(KeyKind::EcdsaP256, &[]))
}

/// A server config offering `alpn`.
pub(crate) fn server_config(alpn: &[&[u8]]) -> Arc<ServerConfig> {
    Arc::new(pki().server_config(&CertOptions {
        alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        ..Default::default()
    }))
}

/// A client config offering `alpn`.
pub(crate) fn client_config(alpn: &[&[u8]]) -> Arc<ClientConfig> {
    Arc::new(pki().client_config(&CertOptions {
        alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        ..Default::default()
    }))
}

/// The name the test certificate is valid for.
pub(crate) fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// A deterministic byte stream (xorshift64*) of a given length.
pub(crate) struct Pattern {
    state: u64,
    left: u64,
}

impl Pattern {
    pub(crate) fn new(seed: u64, len: u64) -> Self {
        Self {
            state: seed | 1,
            left: len,
        }
    }

    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    /// Fills up to `buf.len()` bytes; returns how many (0 at the end).
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let word = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        self.left -= n as u64;
        n
    }
}

/// SHA-256 and a byte count of a stream.
pub(crate) struct Digest {
    ctx: digest::Context,
    pub(crate) count: u64,
}

impl Digest {
    pub(crate) fn new() -> Self {
        Self {
            ctx: digest::Context::new(&digest::SHA256),
            count: 0,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
        self.count += data.len() as u64;
    }

    pub(crate) fn finish(self) -> (u64, Vec<u8>) {
        (self.count, self.ctx.finish().as_ref().to_vec())
    }
}

/// Count and digest of the pattern `(seed, len)`.
pub(crate) fn expected(seed: u64, len: u64) -> (u64, Vec<u8>) {
    let mut pattern = Pattern::new(seed, len);
    let mut digest = Digest::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = pattern.fill(&mut buf);
        if n == 0 {
            return digest.finish();
        }
        digest.update(&buf[..n]);
    }
}

/// A directory for Unix-domain sockets, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tls-unix-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn socket(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `body` on its own thread and fails the test if it takes longer than `limit`.
pub(crate) fn bounded<T: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let result = body();
        let _ = tx.send(());
        result
    });
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().unwrap(),
        // The body panicked: re-raise its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {limit:?}"),
    }
}

/// A blocking listener: TCP on 127.0.0.1 (ephemeral port) or Unix-domain in a temp dir.
pub(crate) trait Listen: Send + 'static {
    type Stream: Read + Write + SetTimeouts + HalfClose + std::fmt::Debug + Send + 'static;
    /// Binds; the `TempDir` (if any) lives as long as the listener.
    fn bind() -> Self;
    fn connect(&self) -> Self::Stream;
    fn accept(&self) -> Self::Stream;
}

pub(crate) struct Tcp(TcpListener);

impl Listen for Tcp {
    type Stream = TcpStream;
    fn bind() -> Self {
        Self(TcpListener::bind("127.0.0.1:0").unwrap())
    }
    fn connect(&self) -> TcpStream {
        TcpStream::connect(self.0.local_addr().unwrap()).unwrap()
    }
    fn accept(&self) -> TcpStream {
        self.0.accept().unwrap().0
    }
}

pub(crate) struct Unix(UnixListener, PathBuf, TempDir);

impl Listen for Unix {
    type Stream = UnixStream;
    fn bind() -> Self {
        let dir = TempDir::new();
        let path = dir.socket("sock");
        Self(UnixListener::bind(&path).unwrap(), path, dir)
    }
    fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.1).unwrap()
    }
    fn accept(&self) -> UnixStream {
        self.0.accept().unwrap().0
    }
}

/// Adds `n` to the bytes `written` to a peer that stopped reading, and fails the test if
/// the transport has taken so much (256 MiB) that it evidently never pushes back.
pub(crate) fn add_unread(written: &mut usize, n: usize) {
    *written += n;
    assert!(
        *written < 256 * 1024 * 1024,
        "the transport never pushed back"
    );
}

/// Asserts that `e` is a truncation: `UnexpectedEof` carrying `tls_core::Error::Truncated`.
pub(crate) fn assert_truncated(e: &std::io::Error) {
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    assert_eq!(
        tls_unix::tls_error(e),
        Some(&tls_unix::tls_core::Error::Truncated),
        "{e}"
    );
}

/// Asserts that `e` is the given timeout.
pub(crate) fn assert_timeout(e: &std::io::Error, expected: tls_unix::Timeout) {
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert_eq!(tls_unix::timeout(e), Some(expected), "{e}");
}

/// Declares each `name => body;` as a test twice, in modules `tcp` and `unix`, with `L` the
/// transport's [`Listen`] type there; each run is bounded by [`TEST_LIMIT`]. With `async`
/// first, the bodies are futures, run on a two-worker tokio runtime.
#[allow(
    unused_macros,
    reason = "fuzz_regressions declares its tests one by one"
)]
macro_rules! for_transports {
    (@tests $transport:ident $($name:ident => $body:expr;)*) => {
        $(#[test]
        fn $name() {
            bounded(TEST_LIMIT, || {
                type L = $transport;
                $body
            });
        })*
    };
    (@async_tests $transport:ident $($name:ident => $body:expr;)*) => {
        $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            type L = $transport;
            tokio::time::timeout(TEST_LIMIT, $body).await.expect("test timed out");
        })*
    };
    (async $($name:ident => $body:expr;)*) => {
        mod tcp {
            use super::*;
            $crate::common::for_transports!(@async_tests Tcp $($name => $body;)*);
        }
        mod unix {
            use super::*;
            $crate::common::for_transports!(@async_tests Unix $($name => $body;)*);
        }
    };
    ($($name:ident => $body:expr;)*) => {
        mod tcp {
            use super::*;
            $crate::common::for_transports!(@tests Tcp $($name => $body;)*);
        }
        mod unix {
            use super::*;
            $crate::common::for_transports!(@tests Unix $($name => $body;)*);
        }
    };
}
#[allow(
    unused_imports,
    reason = "fuzz_regressions declares its tests one by one"
)]
pub(crate) use for_transports;

/// Label and context of the exporter checks.
pub(crate) const EXPORT_LABEL: &[u8] = b"EXPERIMENTAL label";

/// Checks that a handshake negotiated the X25519MLKEM768 hybrid (tls-core's default) and
/// that both ends export the same keying material; `client` and `server` call each
/// stream's `export_keying_material` with [`EXPORT_LABEL`] into the buffer given.
pub(crate) fn assert_hybrid_and_same_export<E: std::fmt::Debug, F: std::fmt::Debug>(
    group: Option<tls_unix::rustls::NamedGroup>,
    client: impl FnOnce(&mut [u8]) -> Result<(), E>,
    server: impl FnOnce(&mut [u8]) -> Result<(), F>,
) {
    assert_eq!(group, Some(tls_unix::rustls::NamedGroup::X25519MLKEM768));
    let (mut ours, mut theirs) = ([0u8; 32], [0u8; 32]);
    client(&mut ours).unwrap();
    server(&mut theirs).unwrap();
    assert_eq!(ours, theirs);
}
