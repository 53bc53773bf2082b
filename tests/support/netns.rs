//! Network namespaces for tests: private ones for peers that cannot be told to listen on
//! loopback only ([`run_isolated`]: `gnutls-serv` binds every address), and named ones
//! with a TAP device for `--backend unikernel` ([`Netns`]).
//!
//! [`run_isolated`] runs a closure on a new thread that has left the test process' network
//! namespace for a fresh one (`unshare(CLONE_NEWNET)`, then `ip link set lo up`). Sockets
//! that thread opens and processes it starts live in that namespace, which has nothing but
//! its own loopback interface and disappears when they are gone.
//!
//! A [`Netns`] is made with `ip netns add`, so processes can be started in it (`ip netns
//! exec`) and the test's own threads can open sockets in it ([`Netns::connect`]); it is
//! deleted, with its devices, when dropped (also when the test fails).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sched::{setns, unshare, CloneFlags};

use super::peer::{require, Peer};
use super::{run, spawn_task, LIMIT};

/// The address `tlsflow serve --backend unikernel` takes on a namespace's TAP device
/// (the host side is 192.0.2.1/24), and its port.
pub(crate) const TAP_SERVER: &str = "192.0.2.2";
pub(crate) const TAP_PORT: u16 = 8443;

/// Runs `f` inside a new, private network namespace with `lo` up, on its own thread, and
/// returns its result (re-raising its panic). Fails (never skips) when the namespace
/// cannot be made: that needs root (CAP_SYS_ADMIN), which CI has.
pub(crate) fn run_isolated<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let ip = require("ip");
    spawn_task(what, move || {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            panic!(
                "cannot make a private network namespace (unshare(CLONE_NEWNET): {e}); \
                 this test runs gnutls-serv, which binds every address, inside one and \
                 needs root (CAP_SYS_ADMIN), as in CI"
            );
        }
        run(
            "ip link set lo up",
            Command::new(&ip).args(["link", "set", "lo", "up"]),
            Duration::from_secs(20),
        )
        .assert_success("ip link set lo up (in the private namespace)");
        f()
    })
    .join(timeout)
}

/// A named network namespace `tlsflow-tap-<pid>-<label>` with `lo` up and a TAP device
/// whose host side has an address; deleted (with the device) on drop. Declare it before
/// the processes that run in it, so they are killed first.
pub(crate) struct Netns {
    name: String,
    ip: PathBuf,
}

impl Netns {
    /// Makes the namespace and, in it, the TAP device `tap` (up) with `host_cidr` on the
    /// host side.
    pub(crate) fn with_tap(label: &str, tap: &str, host_cidr: &str) -> Netns {
        let ip = require("ip");
        let name = format!("tlsflow-tap-{}-{label}", std::process::id());
        let add = run(
            "ip netns add",
            Command::new(&ip).args(["netns", "add", &name]),
            LIMIT,
        );
        assert!(
            add.status.success(),
            "cannot make the network namespace {name}: {}\nthis test needs root \
             (CAP_SYS_ADMIN and CAP_NET_ADMIN), as in CI",
            add.stderr
        );
        let ns = Netns { name, ip };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["tuntap", "add", "dev", tap, "mode", "tap"]);
        ns.ip(&["addr", "add", host_cidr, "dev", tap]);
        ns.ip(&["link", "set", tap, "up"]);
        ns
    }

    /// Runs `ip ARGS...` inside the namespace and asserts it succeeded.
    pub(crate) fn ip(&self, args: &[&str]) {
        let what = format!("ip {}", args.join(" "));
        run(&what, self.exec("ip").args(args), LIMIT).assert_success(&what);
    }

    /// `program` run inside the namespace (`ip netns exec` execs it: same PID).
    pub(crate) fn exec(&self, program: impl AsRef<Path>) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.name])
            .arg(program.as_ref());
        cmd
    }

    /// A TCP connection to `addr` made from inside the namespace (by a thread that
    /// joins it with `setns`; the socket stays in the namespace and may be used from any
    /// thread).
    pub(crate) fn connect(&self, addr: SocketAddr) -> TcpStream {
        let path = format!("/run/netns/{}", self.name);
        spawn_task("connect in the namespace", move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns({path}): {e} (needs root, as in CI)"));
            TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connect to {addr} in {path}: {e}"))
        })
        .join(LIMIT)
    }
}

impl Netns {
    /// A TCP listener on `addr` inside the namespace (bound by a thread that joins it
    /// with `setns`; the socket stays in the namespace).
    pub(crate) fn listen(&self, addr: SocketAddr) -> TcpListener {
        let path = format!("/run/netns/{}", self.name);
        spawn_task("listen in the namespace", move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns({path}): {e} (needs root, as in CI)"));
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr} in {path}: {e}"))
        })
        .join(LIMIT)
    }

    /// Starts `tlsflow serve --backend unikernel` on the namespace's device `tap` with
    /// [`TAP_SERVER`]/24 (port [`TAP_PORT`]) and `args`, and waits until it listens.
    pub(crate) fn serve_unikernel(&self, tap: &str, args: &[&str]) -> Peer {
        let mut cmd = self.exec(env!("CARGO_BIN_EXE_tlsflow"));
        cmd.args(["serve", "--backend", "unikernel", "--tap", tap, "--ip"])
            .arg(format!("{TAP_SERVER}/24"))
            .args(args);
        let (server, line) = Peer::start(
            "tlsflow serve --backend unikernel",
            &mut cmd,
            |l| l.starts_with("tlsflow: listening on "),
            LIMIT,
        );
        assert!(
            line.starts_with(&format!(
                "tlsflow: listening on {TAP_SERVER}:{TAP_PORT} (https, "
            )),
            "{line}"
        );
        server
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.name])
            .status();
    }
}
