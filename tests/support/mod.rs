//! Support shared by the interop tests: peer processes ([`peer`]), private network
//! namespaces ([`netns`]), a blocking HTTP/1.1 client ([`http`]), the `tlsflow` binary as
//! a server, temporary directories, test data with digests, certificates on disk and free
//! ports.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub(crate) mod http;
pub(crate) mod netns;
pub(crate) mod peer;

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tls_test::certs::Pki;

use peer::Peer;

/// 8 MiB: the bulk each direction moves.
pub(crate) const BULK: usize = 8 * 1024 * 1024;

/// The bound on any single wait in these tests.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    tlsflow_unikernel::http::Hex(bytes).to_string()
}

/// `len` bytes of deterministic text: lines of 63 lowercase hex digits and a newline (the
/// last line may be shorter). No line starts with a letter that `openssl s_client` or
/// `s_server` take as a command (`Q`, `R`, `K`, `k`, `q`, `r`), or `^` (gnutls-cli's
/// inline commands); `seed` makes different streams differ.
pub(crate) fn hex_lines(len: usize, seed: u64) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut raw = vec![0u8; len];
    tlsflow_unikernel::http::fill_pattern(seed.wrapping_mul(0x1000_0000_01b3), &mut raw);
    raw.iter()
        .enumerate()
        .map(|(i, b)| {
            if i % 64 == 63 {
                b'\n'
            } else {
                DIGITS[usize::from(b & 15)]
            }
        })
        .collect()
}

/// `len` bytes of the deterministic stream `tlsflow serve` answers at `/bytes/N`.
pub(crate) fn pattern(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    tlsflow_unikernel::http::fill_pattern(0, &mut data);
    data
}

/// A directory under the system temp dir, removed with everything in it when dropped.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty directory whose name contains `label`.
    pub(crate) fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "tlsflow-interop-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {path:?}: {e}"));
        TempDir { path }
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `data` to the file `name` inside the directory and returns its path.
    pub(crate) fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, data).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A [`Pki`]'s certificates and keys as PEM files.
pub(crate) struct PkiFiles {
    /// The CA certificate.
    pub(crate) ca: PathBuf,
    /// The server's leaf alone.
    pub(crate) server_cert: PathBuf,
    /// The chain the server sends: its leaf (no trust anchor, no intermediates).
    pub(crate) server_chain: PathBuf,
    /// The server's key.
    pub(crate) server_key: PathBuf,
    /// The chain the client sends: its leaf.
    pub(crate) client_chain: PathBuf,
    /// The client's key.
    pub(crate) client_key: PathBuf,
}

/// Writes `pki` into `dir`.
pub(crate) fn write_pki(dir: &TempDir, pki: &Pki) -> PkiFiles {
    PkiFiles {
        ca: dir.write("ca.pem", &pki.ca_pem),
        server_cert: dir.write("server-leaf.pem", &pki.server.cert_pem),
        // What a server sends: the leaf without the trust anchor.
        server_chain: dir.write("server.pem", &pki.server.cert_pem),
        server_key: dir.write("server.key", &pki.server.key_pem),
        client_chain: dir.write("client.pem", &pki.client.cert_pem),
        client_key: dir.write("client.key", &pki.client.key_pem),
    }
}

/// A `tlsflow serve` process on 127.0.0.1 with a port of its choosing.
pub(crate) struct OurServer {
    peer: Peer,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// The CA to trust (from `--ca-out`, or the one given to [`OurServer::start`]).
    pub(crate) ca: PathBuf,
    _dir: TempDir,
}

impl OurServer {
    /// Starts `tlsflow serve --addr 127.0.0.1:0` with `args`; with `ca` `None` it makes a
    /// throwaway certificate and writes its CA with `--ca-out`. Waits for the
    /// `listening on` line.
    pub(crate) fn start(args: &[&str], ca: Option<&Path>) -> OurServer {
        let dir = TempDir::new("serve");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlsflow"));
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(args);
        let ca = match ca {
            Some(ca) => ca.to_path_buf(),
            None => {
                let ca = dir.join("ca.pem");
                cmd.arg("--ca-out").arg(&ca);
                ca
            }
        };
        let (peer, line) = Peer::start(
            "tlsflow serve",
            &mut cmd,
            |l| l.starts_with("tlsflow: listening on "),
            LIMIT,
        );
        let addr = line["tlsflow: listening on ".len()..]
            .split_whitespace()
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        OurServer {
            peer,
            addr,
            ca,
            _dir: dir,
        }
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port())
    }

    /// Waits for the log line of the next connection that ends.
    pub(crate) fn next_connection(&mut self) -> String {
        self.peer.wait_for(|l| l.starts_with("127.0.0.1:"), LIMIT)
    }

    /// Everything the server printed.
    pub(crate) fn output(&self) -> String {
        self.peer.output()
    }

    /// The server process (to signal it).
    pub(crate) fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }
}

/// One field `name=value` of a `tlsflow serve` connection log line.
pub(crate) fn log_field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=");
    if name == "close" {
        // The last field; its value has spaces.
        let at = line
            .find(" close=")
            .unwrap_or_else(|| panic!("no close= in {line:?}"));
        return &line[at + " close=".len()..];
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

/// Asserts the shape of a `tlsflow serve` log line: version, ALPN, resumption, bytes in
/// and out, and how the connection closed.
#[allow(clippy::too_many_arguments, reason = "one assertion per field")]
pub(crate) fn assert_log(
    line: &str,
    version: &str,
    alpn: &str,
    resumed: bool,
    bytes_in: Option<usize>,
    bytes_out: Option<usize>,
    close: &str,
) {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.get(1).copied(), Some(version), "version in {line:?}");
    assert_eq!(log_field(line, "alpn"), alpn, "alpn in {line:?}");
    assert_eq!(
        log_field(line, "resumed"),
        resumed.to_string(),
        "resumed in {line:?}"
    );
    if let Some(n) = bytes_in {
        assert_eq!(log_field(line, "in"), n.to_string(), "in= in {line:?}");
    }
    if let Some(n) = bytes_out {
        assert_eq!(log_field(line, "out"), n.to_string(), "out= in {line:?}");
    }
    assert_eq!(log_field(line, "close"), close, "close in {line:?}");
}

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), for
/// peers that cannot report the port they chose.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Readiness probe for a peer that prints nothing when it listens (nginx): connects to
/// `addr` until it accepts, within `timeout`. Between attempts it waits on the peer's
/// output (an early exit or an error line ends the wait at once), not on a clock.
pub(crate) fn wait_listening(peer: &mut Peer, addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => return,
            Err(e) if Instant::now() >= deadline => panic!(
                "{} does not accept on {addr} after {timeout:?} ({e}); output:\n{}",
                peer.name(),
                peer.output()
            ),
            Err(_) => peer.idle(Duration::from_millis(20)),
        }
    }
}

/// A finished command: exit status, stdout bytes and stderr text.
pub(crate) struct Finished {
    /// The exit status.
    pub(crate) status: ExitStatus,
    /// Everything on stdout.
    pub(crate) stdout: Vec<u8>,
    /// Everything on stderr.
    pub(crate) stderr: String,
}

impl Finished {
    /// stdout as text.
    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with everything the command printed unless it exited with status 0.
    pub(crate) fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}); stdout:\n{}\nstderr:\n{}",
            self.status,
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(4096)]),
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to completion (stdin closed at once) within `timeout`.
pub(crate) fn run(name: &str, cmd: &mut Command, timeout: Duration) -> Finished {
    let (mut peer, out) = Peer::spawn_raw(name, cmd);
    peer.close_stdin();
    let status = peer.wait_exit(timeout);
    out.wait_eof(timeout);
    let stdout = out.with(<[u8]>::to_vec);
    Finished {
        status,
        stdout,
        stderr: peer.wait_output_end(timeout),
    }
}

/// A thread whose result is awaited with a bound.
pub(crate) struct Task<T> {
    what: String,
    done: mpsc::Receiver<std::thread::Result<T>>,
}

/// Runs `f` on a new thread; [`Task::join`] waits for it with a bound.
pub(crate) fn spawn_task<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Task<T> {
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    Task {
        what: what.to_string(),
        done,
    }
}

impl<T> Task<T> {
    /// The thread's result, re-raising its panic. A thread cannot be killed: on timeout
    /// the test fails, and the test process' exit ends the thread.
    pub(crate) fn join(self, timeout: Duration) -> T {
        match self.done.recv_timeout(timeout) {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(e) => panic!("{}: not done after {timeout:?} ({e})", self.what),
        }
    }
}

/// Writes `data` to `w` on a new thread, which hands `w` back (still open) when done.
pub(crate) fn write_in_background<W: Write + Send + 'static>(
    what: &str,
    mut w: W,
    data: Vec<u8>,
) -> Task<W> {
    let name = what.to_string();
    spawn_task(what, move || {
        w.write_all(&data)
            .and_then(|()| w.flush())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        w
    })
}

/// The part of an s_server-style raw stdout after its first line that starts with
/// `marker` (the data region), if that line is complete.
pub(crate) fn after_line<'a>(bytes: &'a [u8], marker: &[u8]) -> Option<&'a [u8]> {
    let start = bytes.windows(marker.len()).position(|w| w == marker)?;
    let end = bytes[start..].iter().position(|&b| b == b'\n')? + start + 1;
    Some(&bytes[end..])
}
