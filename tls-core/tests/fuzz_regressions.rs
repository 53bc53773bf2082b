//! Regression tests for what the fuzz targets in `fuzz/` found (see `fuzz/README.md`), each
//! replaying the minimised case as a plain test.

mod common;

use tls_core::{Error, Limits, Session};
use tls_test::certs::{KeyKind, Options};

use common::configs;

/// Moves ciphertext both ways and reads the server's plaintext until nothing moves, at most
/// `rounds` rounds. Returns the plaintext; panics on a stall (the server refuses input and
/// has nothing to read).
fn exchange(client: &mut Session, server: &mut Session, rounds: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..rounds {
        let mut moved = 0;
        let out = client.pending_tls().len();
        if out > 0 {
            let n = server.read_tls(client.pending_tls()).unwrap();
            client.tls_written(n);
            moved += n;
            if n == 0 {
                assert_ne!(
                    server
                        .recv(&mut buf)
                        .map(|k| got.extend_from_slice(&buf[..k])),
                    Err(Error::WouldBlock),
                    "stall: the receiver took no input and has nothing to return"
                );
            }
        }
        let n = client.read_tls(server.pending_tls()).unwrap();
        server.tls_written(n);
        moved += n;
        while let Ok(k @ 1..) = server.recv(&mut buf) {
            got.extend_from_slice(&buf[..k]);
            moved += k;
        }
        if moved == 0 {
            break;
        }
    }
    got
}

/// Found by `server_receive`, `record_framing` and `unix_pump` with
/// `Limits::unread_plaintext == 0`, which `Limits::validate` accepts: the session took no
/// input at all, not even the ClientHello, and had nothing to report (`recv` said
/// `WouldBlock`); the tls-unix pump reported "tls pump stalled". An empty inbound buffer
/// still needs the next record, so the session must take input. (Fixed in
/// `Session::input_room`: a session holding nothing unread takes at least a record header.)
#[test]
fn zero_unread_plaintext_limit_still_takes_input() {
    let limits = Limits {
        unread_plaintext: 0,
        ..Limits::default()
    };
    assert!(limits.validate().is_ok());
    let (client_config, server_config) = configs(KeyKind::EcdsaP256, &Options::default());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = Session::client(client_config, name, Limits::default()).unwrap();
    let mut server = Session::server(server_config, limits).unwrap();
    let data = tls_test::pair::pattern(1, 40_000);
    handshake_then_send(&mut client, &mut server, &data, 100);
}

/// Completes the handshake, then sends `data` from `from` and checks that all of it
/// arrives at `to` (the side that reads, as in [`exchange`]), in `rounds` rounds a call.
fn handshake_then_send(from: &mut Session, to: &mut Session, data: &[u8], rounds: usize) {
    exchange(from, to, rounds);
    assert!(!to.is_handshaking(), "handshake stalled: {to:?}");
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..100 {
        sent += from.send(&data[sent..]).unwrap();
        got.extend(exchange(from, to, rounds));
        if got.len() == data.len() {
            break;
        }
    }
    assert_eq!(got, data);
}

/// Runs a handshake and a transfer from a server whose config cuts records to
/// `max_fragment_size` bytes to a client with `client_limits`, checking nothing stalls.
fn fragmented_peer(client_limits: Limits, max_fragment_size: usize) {
    let (client_config, server_config) = configs(KeyKind::EcdsaP256, &Options::default());
    let mut server_config = (*server_config).clone();
    server_config.max_fragment_size = Some(max_fragment_size);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut client = Session::client(client_config, name, client_limits).unwrap();
    let mut server =
        Session::server(std::sync::Arc::new(server_config), Limits::default()).unwrap();
    let data = tls_test::pair::pattern(2, 5_000);
    // `exchange` reads on the server side; here the client is the one with the small limit.
    handshake_then_send(&mut server, &mut client, &data, 200);
}

/// Found by `server_receive` (a ClientHello whose handshake message ran past its record):
/// during the handshake, `Limits::unread_plaintext` counted handshake ciphertext held in the
/// inbound buffer as unread plaintext. A peer that fragments a handshake message over several
/// records (a small `max_fragment_size`, which rustls allows down to 32 bytes) fills the
/// buffer with complete records while the message is still incomplete; the session then
/// refused all input while `recv` said `WouldBlock`: a stall, on an honest peer.
#[test]
fn fragmented_handshake_messages_with_small_unread_limit() {
    for unread_plaintext in [0, 1, 100] {
        let limits = Limits {
            unread_plaintext,
            ..Limits::default()
        };
        fragmented_peer(limits, 64);
    }
}
