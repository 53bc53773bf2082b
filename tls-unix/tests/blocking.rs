//! The blocking flavour over TCP on 127.0.0.1 and over Unix-domain sockets: what is its
//! own (timeouts, the lazy handshake of `TlsStream::new`). Handshake, ALPN, bulk,
//! half-close and truncation, the same on every flavour, are scenarios of
//! `tests/conformance` (run on all five backends).

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tls_unix::blocking::{self, TlsStream};
use tls_unix::{Options, Timeout};

/// A peer that accepts the connection and never speaks: both the client's and the
/// server's handshakes end with `Timeout::Handshake` after the limit.
fn handshake_timeout<L: Listen>() {
    let limit = Duration::from_millis(300);
    let quick = Options {
        handshake_timeout: Some(limit),
        ..Options::default()
    };
    let listener = L::bind();
    // Client side: the server accepts and never answers.
    let sock = listener.connect();
    let silent_server = listener.accept();
    let start = Instant::now();
    let e = blocking::connect(client_config(&[]), localhost(), sock, quick).unwrap_err();
    assert_timeout(&e, Timeout::Handshake(limit));
    assert!(start.elapsed() >= limit);
    drop(silent_server);
    // Server side: the client connects and never sends its ClientHello.
    let silent_client = listener.connect();
    let sock = listener.accept();
    let start = Instant::now();
    let e = blocking::accept(server_config(&[]), sock, quick).unwrap_err();
    assert_timeout(&e, Timeout::Handshake(limit));
    assert!(start.elapsed() >= limit);
    drop(silent_client);
}

/// A client with `client_options`, connected to a server thread that completes its
/// handshake, then waits until released through the returned sender before handing its
/// stream to `then`.
fn with_held_server<L: Listen>(
    client_options: Options,
    then: impl FnOnce(TlsStream<L::Stream>) + Send + 'static,
) -> (
    TlsStream<L::Stream>,
    mpsc::Sender<()>,
    thread::JoinHandle<()>,
) {
    let listener = L::bind();
    let client_sock = listener.connect();
    let server_sock = listener.accept();
    let (tx, rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let tls = blocking::accept(server_config(&[]), server_sock, options()).unwrap();
        rx.recv().unwrap();
        then(tls);
    });
    let client =
        blocking::connect(client_config(&[]), localhost(), client_sock, client_options).unwrap();
    (client, tx, server)
}

/// A read waits longer than the read timeout: `Timeout::Read`, and the stream is still
/// usable afterwards.
fn read_timeout<L: Listen>() {
    let limit = Duration::from_millis(200);
    let opts = Options {
        read_timeout: Some(limit),
        ..options()
    };
    let (mut client, tx, server) = with_held_server::<L>(opts, |mut tls| {
        tls.write_all(b"late").unwrap();
        tls.shutdown().unwrap();
    });
    let e = client.read(&mut [0u8; 16]).unwrap_err();
    assert_timeout(&e, Timeout::Read(limit));
    tx.send(()).unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"late");
    server.join().unwrap();
}

/// The peer stops reading: writes fill the transport's buffers, then `Timeout::Write`.
fn write_timeout<L: Listen>() {
    let limit = Duration::from_millis(200);
    let opts = Options {
        write_timeout: Some(limit),
        ..options()
    };
    let (mut client, tx, server) = with_held_server::<L>(opts, drop);
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    let e = loop {
        match client.write(&chunk) {
            Ok(n) => add_unread(&mut written, n),
            Err(e) => break e,
        }
    };
    assert_timeout(&e, Timeout::Write(limit));
    tx.send(()).unwrap();
    server.join().unwrap();
}

/// After a fatal error (the server's transport closed without close_notify: a
/// truncation), no close_notify is sent, but `shutdown` still half-closes the socket and
/// succeeds. (Truncation itself is a conformance scenario; this is the flavour's own.)
fn shutdown_after_fatal_error<L: Listen>() {
    let (mut client, tx, server) = with_held_server::<L>(options(), drop);
    tx.send(()).unwrap();
    server.join().unwrap();
    assert_truncated(&client.read(&mut [0u8; 16]).unwrap_err());
    client.shutdown().unwrap();
}

/// The hybrid key exchange by default, and the same exported keying material on both
/// ends (`TlsStream::export_keying_material`, a forward of the engine's).
fn hybrid_and_exporter<L: Listen>() {
    let listener = L::bind();
    let client_sock = listener.connect();
    let server_sock = listener.accept();
    let server = thread::spawn(move || {
        blocking::accept(server_config(&[]), server_sock, options()).expect("server handshake")
    });
    let client = blocking::connect(client_config(&[]), localhost(), client_sock, options())
        .expect("client handshake");
    let server = server.join().unwrap();
    assert_hybrid_and_same_export(
        client.handshake_info().unwrap().key_exchange,
        |out| client.export_keying_material(out, EXPORT_LABEL, Some(b"ctx")),
        |out| server.export_keying_material(out, EXPORT_LABEL, Some(b"ctx")),
    );
}

for_transports! {
    hybrid_and_exporter => super::hybrid_and_exporter::<L>();
    shutdown_after_fatal_error => super::shutdown_after_fatal_error::<L>();
    handshake_timeout => super::handshake_timeout::<L>();
    read_timeout => super::read_timeout::<L>();
    write_timeout => super::write_timeout::<L>();
}

/// `TlsStream::new` works over any `Read + Write` (here a `UnixStream` pair, without the
/// helpers), running the handshake on first use.
#[test]
fn any_read_write_lazy_handshake() {
    bounded(TEST_LIMIT, || {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let server = thread::spawn(move || {
            let session =
                tls_unix::tls_core::Session::server(server_config(&[]), Default::default())
                    .unwrap();
            let mut tls = TlsStream::new(session, b);
            let mut got = Vec::new();
            tls.read_to_end(&mut got).unwrap();
            tls.close_notify().unwrap();
            got
        });
        let session = tls_unix::tls_core::Session::client(
            client_config(&[]),
            localhost(),
            Default::default(),
        )
        .unwrap();
        let mut tls = TlsStream::new(session, a);
        tls.write_all(b"lazy").unwrap();
        tls.close_notify().unwrap();
        assert_eq!(tls.read(&mut [0u8; 4]).unwrap(), 0);
        assert_eq!(server.join().unwrap(), b"lazy");
    });
}
