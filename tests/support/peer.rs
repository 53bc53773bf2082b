//! Real peer programs (openssl, gnutls, curl, nginx) as child processes.
//!
//! A [`Peer`] is started, waited on by a readiness line in its output (never by sleeping),
//! and killed by PID when dropped, also when the test fails.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The path of `program`, or a failure that says how to get it. Tests never pass silently
/// without their peer: `scripts/test` installs every peer on a fresh machine.
pub fn require(program: &str) -> PathBuf {
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
pub struct Peer {
    name: String,
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Peer {
    /// Starts `cmd` (stdin piped, stdout and stderr collected) and waits until a line of its
    /// output satisfies `ready`, returning that line. Fails after `timeout`, or if the
    /// process exits first, with everything it printed.
    pub fn start(
        name: &str,
        cmd: &mut Command,
        ready: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> (Peer, String) {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        let mut peer = Peer {
            name: name.to_string(),
            child,
            lines: rx,
            log,
        };
        let line = peer.wait_for(ready, timeout);
        (peer, line)
    }

    /// Waits for an output line satisfying `pred`.
    pub fn wait_for(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{} not ready after {timeout:?}; output:\n{}", self.name, self.output())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!("{} exited ({status:?}); output:\n{}", self.name, self.output())
                }
            }
        }
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The child's stdin, for interactive peers (`openssl s_client` commands).
    pub fn stdin(&mut self) -> &mut std::process::ChildStdin {
        self.child.stdin.as_mut().expect("stdin is piped")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!("{} did not exit within {timeout:?}; output:\n{}", self.name, self.output());
            }
            // Exit is only observable by polling the PID; the output channel closing is
            // the readiness signal we wait on between polls.
            let _ = self.lines.recv_timeout(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // End the process we started, by PID, whatever the test's outcome.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
