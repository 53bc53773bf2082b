//! The server over the in-memory wire: keep-alive, pipelining, bad input, timeouts,
//! bodies and the records responses leave in.

use std::format;
use std::vec::Vec;

use smoltcp::time::Duration;

use super::harness::{field, World};
use crate::http::{pattern_digest, Hex};
use crate::Config;

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: 192.0.2.2\r\n\r\n").into_bytes()
}

#[test]
fn keep_alive_serves_100_requests_on_one_connection() {
    let mut world = World::new(Config::default());
    let mut client = world.connect();
    for i in 0..100 {
        let path = format!("/bytes/{i}");
        let reply = world.exchange(&mut client, &get(&path), 1).remove(0);
        assert_eq!(reply.status, 200, "{}", reply.head);
        assert!(
            reply.head.contains("connection: keep-alive"),
            "{}",
            reply.head
        );
        let mut want = std::vec![0u8; i];
        crate::http::fill_pattern(0, &mut want);
        assert_eq!(reply.body, want);
    }
    client.close();
    let line = world.wait_log(Some(&mut client));
    assert_eq!(field(&line, "requests"), "100", "{line}");
    assert_eq!(field(&line, "close"), "close_notify (peer first)", "{line}");
    assert_eq!(world.server.open_connections(), 0);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut world = World::new(Config::default());
    let mut client = world.connect();
    let mut requests = get("/bytes/10");
    requests.extend(get("/"));
    requests.extend(b"GET /nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let replies = world.exchange(&mut client, &requests, 3);
    assert_eq!(replies[0].status, 200);
    assert_eq!(replies[0].body.len(), 10);
    assert!(core::str::from_utf8(&replies[1].body)
        .unwrap()
        .starts_with("tlsflow (unikernel backend)\nversion: TLSv1_3"));
    assert_eq!(replies[2].status, 404);
    assert!(replies[2].head.contains("connection: close"));
    // The server closes after the last: close_notify, then ours.
    world.run_until(Some(&mut client), |_, c| c.unwrap().close_notify);
    client.close();
    let line = world.wait_log(Some(&mut client));
    assert_eq!(field(&line, "requests"), "3", "{line}");
    assert_eq!(field(&line, "close"), "close_notify (both)", "{line}");
}

/// Sends `data`, expects one response with `status`, then the server's close_notify and
/// a log line closing with `reason`.
fn refused(config: Config, data: &[u8], status: u16, reason: &str) {
    let mut world = World::new(config);
    let mut client = world.connect();
    let reply = world.exchange(&mut client, data, 1).remove(0);
    assert_eq!(reply.status, status, "{}", reply.head);
    assert!(reply.head.contains("connection: close"), "{}", reply.head);
    world.run_until(Some(&mut client), |_, c| c.unwrap().close_notify);
    client.close();
    let line = world.wait_log(Some(&mut client));
    assert_eq!(field(&line, "close"), reason, "{line}");
    // The server still serves.
    let mut next = world.connect();
    assert_eq!(world.exchange(&mut next, &get("/"), 1)[0].status, 200);
}

#[test]
fn malformed_request_line_gets_400_then_close_notify() {
    refused(
        Config::default(),
        b"GET /HTTP/1.0\r\n\r\n",
        400,
        "bad request (400); close_notify (both)",
    );
    refused(
        Config::default(),
        b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
        400,
        "bad request (400); close_notify (both)",
    );
    let twice = b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n";
    refused(
        Config::default(),
        twice,
        400,
        "bad request (400); close_notify (both)",
    );
}

#[test]
fn oversized_head_gets_431() {
    let mut head = get("/");
    head.truncate(head.len() - 2);
    for i in 0..400 {
        head.extend(format!("x-filler-{i}: {}\r\n", "a".repeat(40)).bytes());
    }
    head.extend(b"\r\n");
    refused(
        Config::default(),
        &head,
        431,
        "request head too large (431); close_notify (both)",
    );
    // More header lines than the parser holds, in a small head.
    let mut many = get("/");
    many.truncate(many.len() - 2);
    for i in 0..100 {
        many.extend(format!("x{i}: y\r\n").bytes());
    }
    many.extend(b"\r\n");
    refused(
        Config::default(),
        &many,
        431,
        "request head too large (431); close_notify (both)",
    );
}

#[test]
fn oversized_body_gets_413() {
    let config = Config {
        max_body: 1000,
        ..Config::default()
    };
    let post = b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 1001\r\n\r\n";
    refused(
        config,
        post,
        413,
        "request body too large (413); close_notify (both)",
    );
}

#[test]
fn dribbled_head_times_out_with_408_and_close_notify() {
    let config = Config {
        header_timeout: Duration::from_secs(3),
        ..Config::default()
    };
    let mut world = World::new(config);
    let mut client = world.connect();
    let start = world.pair.now;
    // One byte a second: each byte is progress, but the head never completes in time.
    for &b in b"GET / HTTP/1.1\r\nhost: 19" {
        client.write(&[b]);
        let until = world.pair.now + Duration::from_secs(1);
        world.run_until(Some(&mut client), |w, c| {
            w.pair.now >= until || !c.unwrap().plain.is_empty()
        });
        if !client.plain.is_empty() {
            break;
        }
    }
    world.run_until(Some(&mut client), |_, c| c.unwrap().close_notify);
    let waited = world.pair.now - start;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(5),
        "{waited}"
    );
    assert!(client
        .plain
        .starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
    client.close();
    let line = world.wait_log(Some(&mut client));
    assert_eq!(
        field(&line, "close"),
        "header-read timeout (408); close_notify (both)",
        "{line}"
    );
    assert_eq!(world.server.open_connections(), 0);
}

#[test]
fn idle_connection_is_closed_after_the_idle_timeout() {
    let config = Config {
        idle_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let mut world = World::new(config);
    let mut client = world.connect();
    assert_eq!(world.exchange(&mut client, &get("/"), 1)[0].status, 200);
    let served = world.pair.now;
    world.run_until(Some(&mut client), |_, c| c.unwrap().close_notify);
    let idle = world.pair.now - served;
    assert!(
        idle >= Duration::from_secs(5) && idle < Duration::from_secs(6),
        "{idle}"
    );
    client.close();
    let line = world.wait_log(Some(&mut client));
    assert_eq!(
        field(&line, "close"),
        "idle timeout; close_notify (both)",
        "{line}"
    );
    assert_eq!(field(&line, "requests"), "1", "{line}");
}

#[test]
fn bytes_body_and_upload_digests() {
    let mut world = World::new(Config::default());
    let mut client = world.connect();
    let reply = world
        .exchange(&mut client, &get("/bytes/300000"), 1)
        .remove(0);
    let digest = ring::digest::digest(&ring::digest::SHA256, &reply.body);
    assert_eq!(digest.as_ref(), pattern_digest(300_000));
    let body: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
    let mut post = format!(
        "PUT /up HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    )
    .into_bytes();
    post.extend(&body);
    let replies = world.exchange(&mut client, &post, 1);
    let want = format!(
        "{}  50000\n",
        Hex(ring::digest::digest(&ring::digest::SHA256, &body).as_ref())
    );
    assert_eq!(replies[0].status, 200);
    assert_eq!(core::str::from_utf8(&replies[0].body).unwrap(), want);
}

/// Asks for `/bytes/{n}` and returns the plaintext size of every record of the response.
fn records_of(n: usize) -> (Vec<usize>, usize) {
    let mut world = World::new(Config::default());
    let mut client = world.connect();
    client.records.clear();
    let reply = world
        .exchange(&mut client, &get(&format!("/bytes/{n}")), 1)
        .remove(0);
    assert_eq!(reply.body.len(), n);
    (client.records.clone(), reply.head.len() + n)
}

#[test]
fn responses_leave_in_as_few_records_as_possible() {
    // 1 KiB, head and body: one record.
    let (records, total) = records_of(1024 - 110);
    assert!(total <= 1024, "{total}");
    assert_eq!(records, [total]);
    // A 16 KiB body: a full record (head and body start), then the rest.
    let (records, total) = records_of(16 * 1024);
    assert_eq!(records, [16 * 1024, total - 16 * 1024]);
    // 1 MiB: ceil(total / 16 KiB) records, all full but the last.
    let (records, total) = records_of(1 << 20);
    assert_eq!(records.len(), total.div_ceil(16 * 1024));
    assert!(
        records[..records.len() - 1].iter().all(|&r| r == 16 * 1024),
        "{records:?}"
    );
    assert_eq!(records.iter().sum::<usize>(), total);
}

#[test]
fn not_tls_gets_an_alert_and_the_server_keeps_serving() {
    let mut world = World::new(Config::default());
    let mut raw = world.connect_plain();
    world.send_plain(&raw, b"GET / HTTP/1.1\r\nhost: 192.0.2.2\r\n\r\n");
    world.run_until(None, |w, _| !w.log.is_empty());
    let alert = world.read_plain(&mut raw);
    assert_eq!(alert.first(), Some(&0x15), "an alert record: {alert:?}");
    assert!(
        world.log[0].contains(" handshake failed: "),
        "{}",
        world.log[0]
    );
    let mut client = world.connect();
    assert_eq!(world.exchange(&mut client, &get("/"), 1)[0].status, 200);
}

#[test]
fn echo_mode_sends_back_what_arrives() {
    let config = Config {
        echo: true,
        ..Config::default()
    };
    let mut world = World::new(config);
    let mut client = world.connect();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    client.write(&data);
    world.run_until(Some(&mut client), |_, c| {
        c.unwrap().plain.len() >= data.len()
    });
    assert_eq!(client.plain, data);
    client.close();
    let line = world.wait_log(Some(&mut client));
    assert_eq!(field(&line, "in"), "100000", "{line}");
    assert_eq!(field(&line, "out"), "100000", "{line}");
    assert_eq!(field(&line, "close"), "close_notify (peer first)", "{line}");
}
