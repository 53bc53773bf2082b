//! Real peer programs (openssl, gnutls, curl, nginx) as child processes.
//!
//! A [`Peer`] is started, waited on by a readiness line in its output (never by sleeping),
//! and killed by PID when dropped, also when the test fails. Peers that print bulk data
//! on stdout (`openssl s_client`, `openssl s_server`, `gnutls-cli`) are started with
//! [`Peer::spawn_raw`]: their stdout is collected as bytes in a [`RawOutput`], their stderr
//! as lines.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

/// How much of a peer's line output is kept for failure messages (bulk data is not).
const LOG_LIMIT: usize = 256 * 1024;

/// The path of `program`, or a failure that says how to get it. Tests never pass silently
/// without their peer: `scripts/test` installs every peer on a fresh machine.
pub(crate) fn require(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{program} is not installed: run scripts/test, which installs the interop peers");
}

/// A running child process with its output collected.
pub(crate) struct Peer {
    name: String,
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    /// Fires once the process has exited (it is not reaped until [`Peer::wait_exit`] or
    /// drop, so its PID cannot be reused while we may still signal it).
    exited: Receiver<()>,
}

impl Peer {
    /// Starts `cmd` (stdin piped, stdout and stderr collected as lines) and waits until a
    /// line of its output satisfies `ready`, returning that line. Fails after `timeout`, or
    /// if the process exits first, with everything it printed.
    pub(crate) fn start(
        name: &str,
        cmd: &mut Command,
        ready: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> (Peer, String) {
        let mut peer = Self::spawn(name, cmd);
        let line = peer.wait_for(ready, timeout);
        (peer, line)
    }

    /// Starts `cmd` (stdin piped, stdout and stderr collected as lines) without waiting.
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Peer {
        let (peer, stdout, tx) = Self::spawn_inner(name, cmd);
        collect_lines(Box::new(stdout), &peer.log, tx);
        peer
    }

    /// Starts `cmd` with its stdout collected as raw bytes (for peers that print bulk
    /// data there) and its stderr as lines, without waiting.
    pub(crate) fn spawn_raw(name: &str, cmd: &mut Command) -> (Peer, RawOutput) {
        let (peer, stdout, _tx) = Self::spawn_inner(name, cmd);
        (peer, RawOutput::collect(name, stdout))
    }

    /// Spawns `cmd` with its stderr collected as lines; returns its stdout and the line
    /// sender (the channel disconnects once every sender is gone: both streams ended).
    fn spawn_inner(name: &str, cmd: &mut Command) -> (Peer, ChildStdout, mpsc::Sender<String>) {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        collect_lines(Box::new(child.stderr.take().unwrap()), &log, tx.clone());
        let (exit_tx, exited) = mpsc::channel();
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"));
        thread::spawn(move || {
            // WNOWAIT: notice the exit but leave the zombie for `Child::wait` to reap.
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            let _ = waitid(Id::Pid(pid), flags);
            let _ = exit_tx.send(());
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let peer = Peer {
            name: name.to_string(),
            child,
            lines: rx,
            log,
            exited,
        };
        (peer, stdout, tx)
    }

    /// Waits for an output line satisfying `pred`.
    pub(crate) fn wait_for(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no awaited line after {timeout:?}; output:\n{}",
                        self.name,
                        self.output()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(10));
                    panic!(
                        "{} ended its output ({status}) before the awaited line; output:\n{}",
                        self.name,
                        self.output()
                    )
                }
            }
        }
    }

    /// Waits up to `limit` for the next output line (discarding it; it stays in the log).
    /// A pause for readiness probes that also ends when the peer prints something, and
    /// fails at once if the peer has ended its output (it exited).
    pub(crate) fn idle(&mut self, limit: Duration) {
        if let Err(RecvTimeoutError::Disconnected) = self.lines.recv_timeout(limit) {
            let status = self.wait_exit(Duration::from_secs(10));
            panic!(
                "{} exited ({status}); output:\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// Waits until the peer has closed its output streams (usually: it exited) and
    /// returns everything it printed as lines.
    pub(crate) fn wait_output_end(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return self.output(),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: output still open after {timeout:?}; output:\n{}",
                    self.name,
                    self.output()
                ),
            }
        }
    }

    /// Everything the process printed so far as lines (bulk data on a raw stdout is not
    /// included, and very long logs are cut).
    pub(crate) fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The child's stdin, for interactive peers (`openssl s_client` commands).
    pub(crate) fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().expect("stdin is piped")
    }

    /// Takes the child's stdin (for a writer thread; dropping it closes the pipe).
    pub(crate) fn take_stdin(&mut self) -> ChildStdin {
        self.child
            .stdin
            .take()
            .expect("stdin is piped and not taken yet")
    }

    /// Closes the child's stdin (end of input for the peer).
    pub(crate) fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Kills the process (by PID, SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The peer's name, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the process to exit by itself within `timeout`, and reaps it.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            return status;
        }
        match self.exited.recv_timeout(timeout) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => self.child.wait().expect("wait"),
            Err(RecvTimeoutError::Timeout) => panic!(
                "{} did not exit within {timeout:?}; output:\n{}",
                self.name,
                self.output()
            ),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // End the process we started, by PID, whatever the test's outcome. It is not reaped
        // before this point, so the PID is still ours.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` line by line into `log` (up to [`LOG_LIMIT`]) and `tx`.
fn collect_lines(stream: Box<dyn Read + Send>, log: &Arc<Mutex<String>>, tx: mpsc::Sender<String>) {
    let log = log.clone();
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']).to_string();
            {
                let mut log = log.lock().unwrap();
                if log.len() < LOG_LIMIT {
                    log.push_str(&line);
                    log.push('\n');
                    if log.len() >= LOG_LIMIT {
                        log.push_str("[... further output not kept ...]\n");
                    }
                }
            }
            let _ = tx.send(line);
        }
    });
}

/// A child's stdout collected as bytes by a background thread, with bounded waits on it.
pub(crate) struct RawOutput {
    name: String,
    shared: Arc<(Mutex<RawState>, Condvar)>,
}

#[derive(Default)]
struct RawState {
    bytes: Vec<u8>,
    eof: bool,
}

impl RawOutput {
    fn collect(name: &str, mut stream: impl Read + Send + 'static) -> RawOutput {
        let shared = Arc::new((Mutex::new(RawState::default()), Condvar::new()));
        let writer = shared.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                let (state, changed) = &*writer;
                let mut state = state.lock().unwrap();
                if n == 0 {
                    state.eof = true;
                    changed.notify_all();
                    break;
                }
                state.bytes.extend_from_slice(&buf[..n]);
                changed.notify_all();
            }
        });
        RawOutput {
            name: name.to_string(),
            shared,
        }
    }

    /// Waits until `pred` holds for the bytes collected so far and returns its value.
    /// Fails after `timeout`, or when the stream ends without `pred` holding.
    pub(crate) fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let (state, changed) = &*self.shared;
        let mut state = state.lock().unwrap();
        loop {
            if let Some(v) = pred(&state.bytes) {
                return v;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.eof || left.is_zero() {
                let why = if state.eof {
                    "its stdout ended".to_string()
                } else {
                    format!("{timeout:?} passed")
                };
                let tail = &state.bytes[state.bytes.len().saturating_sub(2048)..];
                panic!(
                    "{}: waiting for {what}, but {why}; {} bytes of stdout, ending with:\n{}",
                    self.name,
                    state.bytes.len(),
                    String::from_utf8_lossy(tail)
                );
            }
            state = changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Waits until at least `n` bytes were collected.
    pub(crate) fn wait_len(&self, n: usize, timeout: Duration) {
        self.wait_until(&format!("{n} bytes"), timeout, |b| {
            (b.len() >= n).then_some(())
        });
    }

    /// Waits for the end of the stream (the peer closed its stdout, usually by exiting).
    pub(crate) fn wait_eof(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (state, changed) = &*self.shared;
        let mut state = state.lock().unwrap();
        while !state.eof {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: stdout still open after {timeout:?}",
                self.name
            );
            state = changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Runs `f` on the bytes collected so far.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(&self.shared.0.lock().unwrap().bytes)
    }

    /// How many bytes were collected so far.
    pub(crate) fn len(&self) -> usize {
        self.with(<[u8]>::len)
    }
}
