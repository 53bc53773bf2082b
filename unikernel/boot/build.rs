//! Links the image: no C runtime, no C library, static, not position-independent, laid
//! out by `link.ld` (the multiboot header first, one segment at 1 MiB).
//!
//! The `libc` crate (under getrandom and ring) asks for `-lc -lm -lrt -lpthread`; empty
//! archives of those names, found before the system's, keep glibc out of the image, so
//! a C symbol the image does not define (`arch::libc`) fails the link instead of
//! silently coming from glibc.

use std::path::PathBuf;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for lib in ["c", "m", "rt", "pthread", "dl", "util", "gcc_s"] {
        std::fs::write(out.join(format!("lib{lib}.a")), b"!<arch>\n").expect("write OUT_DIR");
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=0x1000",
        "-Wl,--gc-sections",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/link.ld");
}
