//! Builds and runs the freestanding no_std proof in `tls-unikernel/freestanding/` (its own
//! workspace: a `#![no_std] #![no_main]` binary with `panic = "abort"` that links this
//! crate, does a handshake and 1 MiB each way between two smoltcp interfaces, and exits
//! 0). Ignored in the normal run because a cold release build of that workspace takes
//! about a minute: `cargo test -p tls-unikernel --test freestanding -- --ignored`.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "builds a separate workspace in release mode (about a minute when cold)"]
fn freestanding_binary_links_without_std_and_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("freestanding");
    let target = dir.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target-dir"])
        .arg(&target)
        .current_dir(&dir)
        .status()
        .expect("run cargo");
    assert!(status.success(), "the freestanding build failed");
    let out = Command::new(target.join("release/tls-unikernel-freestanding"))
        .output()
        .expect("run the freestanding binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "exit status {:?}: {stdout}",
        out.status
    );
    assert!(stdout.contains("intact, closed both ways"), "{stdout}");
}
