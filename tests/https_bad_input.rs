//! Bad input to `tlsflow::server` (the Unix backend), in process: malformed heads get
//! `400`, oversized heads `431`, oversized bodies `413`, each followed by close_notify and
//! named in the log line; a dribbled head meets the header-read timeout; plain HTTP or
//! random bytes instead of a ClientHello get a TLS alert and leave the server serving;
//! 10,000 hostile connections leave no connection open and the heap where it was.

mod https;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use https::{expect_clean_eof, log_field, read_response, Running, LIMIT};
use tlsflow::server::Options;

#[global_allocator]
static ALLOC: tls_test::alloc_counter::Counting = tls_test::alloc_counter::Counting;

/// Sends `request` raw over TLS and expects `status`, then close_notify; returns the
/// connection's log line.
fn refused(server: &Running, request: &[u8], status: u16) -> String {
    let mut tls = server.connect();
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    let response = read_response(&mut tls).unwrap();
    assert_eq!(response.status, status, "{}", response.head);
    expect_clean_eof(&mut tls);
    tls.shutdown().unwrap();
    server.next_line()
}

#[test]
fn malformed_request_line_gets_400_then_close_notify() {
    let server = Running::start(Default::default());
    // No space before the version: the line the blocking server once dropped silently.
    let line = refused(&server, b"GET /HTTP/1.0\r\nhost: x\r\n\r\n", 400);
    assert_eq!(
        log_field(&line, "close"),
        "bad request (400); close_notify (both)"
    );
    assert_eq!(log_field(&line, "requests"), "0", "{line}");
}

#[test]
fn malformed_header_gets_400_then_close_notify() {
    let server = Running::start(Default::default());
    let line = refused(&server, b"GET / HTTP/1.1\r\nhost x\r\n\r\n", 400);
    assert!(
        log_field(&line, "close").starts_with("bad request (400); "),
        "{line}"
    );
}

#[test]
fn oversized_head_gets_431() {
    let server = Running::start(Options {
        max_header_bytes: 16 * 1024,
        ..Options::default()
    });
    let mut request = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 32 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let line = refused(&server, &request, 431);
    assert!(
        log_field(&line, "close").starts_with("request head too large (431); "),
        "{line}"
    );
}

#[test]
fn oversized_body_gets_413() {
    let server = Running::start(Options {
        max_body: 1024,
        ..Options::default()
    });
    // Declared too large: refused before the body is read.
    let line = refused(
        &server,
        b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 4096\r\n\r\n",
        413,
    );
    assert_eq!(
        log_field(&line, "close"),
        "request body too large (413); close_notify (both)"
    );
    // Chunked, no length: refused once the limit is passed.
    let mut request =
        b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        request.extend_from_slice(b"200\r\n");
        request.extend(std::iter::repeat_n(b'z', 0x200));
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let line = refused(&server, &request, 413);
    assert!(
        log_field(&line, "close").starts_with("request body too large (413); "),
        "{line}"
    );
    // Within the limit: the digest.
    let mut tls = server.connect();
    tls.write_all(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
        .unwrap();
    let response = read_response(&mut tls).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body.starts_with(b"ba7816bf"), "SHA-256 of abc");
}

#[test]
fn dribbled_head_meets_the_header_timeout() {
    let server = Running::start(Options {
        header_timeout: Duration::from_millis(500),
        ..Options::default()
    });
    let mut tls = server.connect();
    let start = Instant::now();
    let request =
        b"GET / HTTP/1.1\r\nhost: localhost\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for &b in request.iter() {
        // The pace of the attack (one byte every 100 ms), not a synchronisation. A write
        // fails once the server has closed.
        std::thread::sleep(Duration::from_millis(100));
        if tls.write_all(&[b]).and_then(|()| tls.flush()).is_err()
            || start.elapsed() > Duration::from_secs(2)
        {
            break;
        }
    }
    // Whatever the client managed to write, the server must have ended the connection
    // with close_notify and no response.
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest)
        .expect("close_notify after the header-read timeout, not a truncation");
    assert!(rest.is_empty(), "no response to a timed-out head: {rest:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let line = server.next_line();
    assert!(
        log_field(&line, "close").starts_with("header-read timeout; "),
        "{line}"
    );
    assert_eq!(server.live(), 0, "the connection is freed");
}

/// One hostile connection: `bytes` instead of a ClientHello. Returns what came back.
fn hostile(server: &Running, bytes: &[u8]) -> Vec<u8> {
    let mut sock = TcpStream::connect(server.addr).unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    sock.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    // The server answers (an alert) and closes; a reset after the alert is fine too.
    let _ = sock.read_to_end(&mut reply);
    reply
}

#[test]
fn plain_http_or_random_bytes_get_an_alert_and_the_server_keeps_serving() {
    let server = Running::start(Default::default());
    let reply = hostile(&server, b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n");
    assert_eq!(reply.first(), Some(&21), "a TLS alert record: {reply:?}");
    assert_eq!(reply.len(), 7, "one alert: {reply:?}");
    let line = server.next_line();
    assert!(line.contains(" handshake failed: "), "{line}");

    let mut noise = vec![0u8; 512];
    tls_test::rng::Rng::new(7).fill(&mut noise);
    noise[0] = 0x16; // looks like a handshake record, then garbage
    let reply = hostile(&server, &noise);
    assert!(
        reply.is_empty() || reply[0] == 21,
        "an alert or nothing: {reply:?}"
    );
    let line = server.next_line();
    assert!(line.contains(" handshake failed: "), "{line}");

    // Still serving.
    let mut tls = server.connect();
    tls.write_all(b"GET /bytes/10 HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut tls).unwrap().status, 200);
}

#[test]
fn ten_thousand_hostile_connections_leave_nothing_behind() {
    let server = Running::start(Default::default());
    let plain = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n".as_slice();
    let noise: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let round = |n: usize| {
        for i in 0..n {
            hostile(&server, if i % 2 == 0 { plain } else { &noise });
            let line = server.next_line();
            assert!(line.contains(" handshake failed: "), "{line}");
        }
    };
    // Warm up: the runtime's and allocator's lazily made state.
    round(200);
    assert_eq!(server.live(), 0);
    let idle = tls_test::alloc_counter::live_bytes();
    round(10_000);
    assert_eq!(server.live(), 0, "no connection left open");
    let after = tls_test::alloc_counter::live_bytes();
    assert!(
        after - idle < 64 * 1024,
        "heap grew by {} bytes over 10,000 hostile connections",
        after - idle
    );
}

#[test]
fn silent_connection_meets_the_idle_timeout() {
    let server = Running::start(Options {
        echo: true,
        idle_timeout: Duration::from_millis(300),
        ..Options::default()
    });
    let mut tls = server.connect_alpn(b"echo");
    tls.write_all(b"ping").unwrap();
    let mut pong = [0u8; 4];
    tls.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"ping");
    // Then silence: the server closes with close_notify.
    expect_clean_eof(&mut tls);
    let line = server.next_line();
    assert!(
        log_field(&line, "close").starts_with("idle timeout; "),
        "{line}"
    );
    assert_eq!(server.live(), 0);
}
