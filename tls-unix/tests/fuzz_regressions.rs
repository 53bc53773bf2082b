//! Regression tests for what the `unix_pump` fuzz target in `fuzz/` found (see
//! `fuzz/README.md`), as the binding's user sees it.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use tls_core::Limits;
use tls_unix::{blocking, Options};

use common::{client_config, localhost, server_config};

/// The tls-core stall in `tls-core/tests/fuzz_regressions.rs`
/// (`fragmented_handshake_messages_with_small_unread_limit`) through the blocking flavour:
/// a server that cuts its records to 64 bytes and a client whose `unread_plaintext` limit
/// is small. `connect` failed with "tls pump stalled" instead of completing the handshake.
#[test]
fn small_unread_limit_against_a_fragmenting_server() {
    let limit = Duration::from_secs(20);
    let (a, b) = UnixStream::pair().unwrap();
    let mut config = (*server_config(&[])).clone();
    config.max_fragment_size = Some(64);
    let config = Arc::new(config);
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let options = Options {
            handshake_timeout: Some(limit),
            write_timeout: Some(limit),
            ..Options::default()
        };
        let mut tls = blocking::accept(config, b, options)?;
        tls.write_all(&[7u8; 3000])?;
        tls.shutdown()
    });
    let options = Options {
        limits: Limits {
            unread_plaintext: 0,
            ..Limits::default()
        },
        handshake_timeout: Some(limit),
        read_timeout: Some(limit),
        ..Options::default()
    };
    let result =
        blocking::connect(client_config(&[]), localhost(), a, options).and_then(|mut tls| {
            let mut got = Vec::new();
            tls.read_to_end(&mut got)?;
            Ok(got)
        });
    let got = result.expect("client");
    server.join().unwrap().expect("server");
    assert_eq!(got, vec![7u8; 3000]);
}
