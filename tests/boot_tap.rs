//! The booted unikernel on a TAP device (`scripts/boot --tap`), inside a network
//! namespace the test makes: there QEMU offers virtio-net checksum offload (vnet
//! headers), the guest takes it, and a 4 MiB download and a 3 MB upload over TLS still
//! arrive intact (SHA-256 checked on both sides), with TCP checksums completed by the
//! device on the way out and left to it on the way in. Needs root and
//! `qemu-system-x86_64`, as in CI; fails without them.

mod support;

use std::process::Command;
use std::time::Duration;

use support::netns::Netns;
use support::peer::{require, Peer};
use support::{hex, run, sha256, TempDir, LIMIT};

const BULK: usize = 4 * 1024 * 1024;
const UPLOAD: usize = 3_000_000;

#[test]
fn booted_guest_on_tap_offloads_checksums_and_moves_data_intact() {
    require("qemu-system-x86_64");
    let dir = TempDir::new("boot-tap");
    let ca = dir.join("ca.pem");
    // Declared before the guest: dropped (deleted) after the guest is killed.
    let ns = Netns::with_tap("boot", "tap0", "192.0.2.1/24");
    let boot = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/boot");
    let mut cmd = ns.exec(&boot);
    cmd.args(["--tap", "tap0", "--ip", "192.0.2.2/24", "--ca-out"])
        .arg(&ca);
    let (mut guest, _) = Peer::start(
        "scripts/boot --tap",
        &mut cmd,
        |l| l.starts_with("scripts/boot: guest listening"),
        Duration::from_secs(300),
    );
    assert!(
        guest
            .output()
            .contains("checksum offload: transmit true, receive true"),
        "{}",
        guest.output()
    );
    let curl = |args: &[&str]| {
        let mut cmd = ns.exec(require("curl"));
        cmd.args(["-sS", "--fail", "--max-time", "60", "--cacert"])
            .arg(&ca)
            .args(["--connect-to", "localhost:443:192.0.2.2:443"])
            .args(args);
        let done = run("curl", &mut cmd, LIMIT);
        done.assert_success("curl");
        done.stdout
    };

    // Out of the guest: every segment's checksum completed by the device.
    let body = curl(&[&format!("https://localhost/bytes/{BULK}")]);
    assert_eq!(body.len(), BULK);
    assert_eq!(hex(&sha256(&body)), hex(&sha256(&support::pattern(BULK))));

    // Into the guest: its own digest of what it received.
    let upload = support::hex_lines(UPLOAD, 7);
    let file = dir.write("upload.bin", &upload);
    let data = format!("@{}", file.display());
    let answer = curl(&["--data-binary", &data, "https://localhost/sha256"]);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with(&hex(&sha256(&upload))),
        "the guest's digest {answer:?}"
    );
    let line = guest.wait_for(|l| l.starts_with("192.0.2.1:") && l.contains("in=3"), LIMIT);
    assert!(line.contains("close=close_notify"), "{line}");

    let status = Command::new("kill")
        .args(["-TERM", &guest.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    guest.wait_exit(LIMIT);
    assert!(!guest.output().contains("PANIC"), "{}", guest.output());
}
