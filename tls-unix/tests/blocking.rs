//! The blocking flavour over TCP on 127.0.0.1 and over Unix-domain sockets.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use tls_unix::blocking::{self, TlsStream};
use tls_unix::rustls::ProtocolVersion;
use tls_unix::{Options, Timeout};

type Pair<L> = (
    TlsStream<<L as Listen>::Stream>,
    TlsStream<<L as Listen>::Stream>,
);

/// A connected client and server, offering these ALPN protocols.
fn connected<L: Listen>(client_alpn: &[&[u8]], server_alpn: &[&[u8]]) -> Pair<L> {
    let listener = L::bind();
    let client_sock = listener.connect();
    let server_sock = listener.accept();
    let server_config = server_config(server_alpn);
    let server = thread::spawn(move || blocking::accept(server_config, server_sock, options()));
    let client = blocking::connect(
        client_config(client_alpn),
        localhost(),
        client_sock,
        options(),
    )
    .expect("client handshake");
    let server = server.join().unwrap().expect("server handshake");
    (client, server)
}

fn handshake<L: Listen>() {
    let (mut client, mut server) = connected::<L>(&[], &[]);
    let info = client.handshake_info().expect("client info");
    assert_eq!(info.version, ProtocolVersion::TLSv1_3);
    assert_eq!(info.alpn, None);
    assert!(is_test_server(client.session().peer_certificates()));
    let info = server.handshake_info().expect("server info");
    assert_eq!(info.sni.as_deref(), Some("localhost"));
    // The hybrid by default, and the same exported keying material on both ends.
    assert_eq!(
        client.handshake_info().unwrap().key_exchange,
        Some(tls_core::rustls::NamedGroup::X25519MLKEM768)
    );
    let (mut ours, mut theirs) = ([0u8; 32], [0u8; 32]);
    client
        .export_keying_material(&mut ours, b"EXPERIMENTAL label", Some(b"ctx"))
        .unwrap();
    server
        .export_keying_material(&mut theirs, b"EXPERIMENTAL label", Some(b"ctx"))
        .unwrap();
    assert_eq!(ours, theirs);
    // One record each way.
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}

fn alpn<L: Listen>() {
    let (client, server) = connected::<L>(&[b"http/1.1"], &[b"h2", b"http/1.1"]);
    assert_eq!(
        client.handshake_info().unwrap().alpn.as_deref(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(
        server.handshake_info().unwrap().alpn.as_deref(),
        Some(&b"http/1.1"[..])
    );
}

/// 8 MiB from the client, then 8 MiB from the server, each checked with SHA-256; the client
/// half-closes first.
fn bulk<L: Listen>() {
    let (mut client, mut server) = connected::<L>(&[], &[]);
    let server = thread::spawn(move || {
        let got = digest_to_end(&mut server).unwrap();
        send_pattern(&mut server, 2, BULK, 70_000).unwrap();
        server.shutdown().unwrap();
        got
    });
    send_pattern(&mut client, 1, BULK, 100_000).unwrap();
    client.shutdown().unwrap();
    let got = digest_to_end(&mut client).unwrap();
    assert_eq!(got, expected(2, BULK));
    assert_eq!(server.join().unwrap(), expected(1, BULK));
}

/// One side shuts down first; the other reads to the end, answers and shuts down.
fn half_close<L: Listen>(client_first: bool) {
    let (client, server) = connected::<L>(&[], &[]);
    let (mut first, mut second) = if client_first {
        (client, server)
    } else {
        (server, client)
    };
    let second = thread::spawn(move || {
        let mut got = Vec::new();
        second.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"first, then close_notify");
        // Still writable after the peer's close_notify.
        second.write_all(b"second answers").unwrap();
        second.shutdown().unwrap();
        // Reading after both closed stays at the clean end.
        assert_eq!(second.read(&mut [0u8; 8]).unwrap(), 0);
    });
    first.write_all(b"first, then close_notify").unwrap();
    first.shutdown().unwrap();
    first.shutdown().unwrap(); // a no-op the second time
    let e = first.write(b"late").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    first.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"second answers");
    second.join().unwrap();
}

/// The server's transport closes without close_notify: the client gets the data, then
/// `UnexpectedEof` carrying `Truncated` (never a clean `Ok(0)`).
fn truncation<L: Listen>() {
    let (mut client, mut server) = connected::<L>(&[], &[]);
    server.write_all(b"partial").unwrap();
    drop(server);
    let mut buf = [0u8; 7];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"partial");
    let e = client.read(&mut buf).unwrap_err();
    assert_truncated(&e);
    // Sticky.
    assert_truncated(&client.read(&mut buf).unwrap_err());
    let mut rest = Vec::new();
    assert_truncated(&client.read_to_end(&mut rest).unwrap_err());
    // No close_notify after a fatal error; shutting down still half-closes the socket.
    client.shutdown().unwrap();
}

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

for_transports! {
    handshake => super::handshake::<L>();
    alpn => super::alpn::<L>();
    bulk_8mib_each_way => super::bulk::<L>();
    half_close_client_first => super::half_close::<L>(true);
    half_close_server_first => super::half_close::<L>(false);
    truncation_is_unexpected_eof => super::truncation::<L>();
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
