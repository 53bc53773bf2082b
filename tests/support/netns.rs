//! Private network namespaces, for peers that cannot be told to listen on loopback only
//! (`gnutls-serv` binds every address).
//!
//! [`run_isolated`] runs a closure on a new thread that has left the test process' network
//! namespace for a fresh one (`unshare(CLONE_NEWNET)`, then `ip link set lo up`). Sockets
//! that thread opens and processes it starts live in that namespace, which has nothing but
//! its own loopback interface and disappears when they are gone.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::process::Command;
use std::time::Duration;

use nix::sched::{unshare, CloneFlags};

use super::peer::require;
use super::{run, spawn_task};

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
