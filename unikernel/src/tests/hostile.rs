//! Many hostile connections in a row leave nothing behind: no open connection, and the
//! heap back at its level before them (counted by tls-test's counting allocator).

use tls_test::alloc_counter::{thread_live_bytes, Counting};

use super::harness::World;
use crate::Config;

#[global_allocator]
static ALLOC: Counting = Counting;

/// One hostile connection of kind `i % 4`: garbage instead of a ClientHello, a malformed
/// request, a reset mid-request, a head that never completes (header timeout). Waits for
/// the server's log line, then drops the test's socket.
fn hostile(world: &mut World, i: usize) {
    let lines = world.log.len();
    match i % 4 {
        0 => {
            let mut plain = world.connect_plain();
            let garbage: std::vec::Vec<u8> = (0..300).map(|k| (k * 7 + i) as u8).collect();
            world.send_plain(&plain, &garbage);
            world.run_until(None, |w, _| w.log.len() > lines);
            let _ = world.read_plain(&mut plain);
            world.drop_socket(plain.handle());
        }
        kind => {
            let mut client = world.connect();
            client.write(match kind {
                1 => b"GET /HTTP/1.0\r\n\r\n".as_slice(),
                2 => b"GET /bytes/1000000 HTTP/1.1\r\n\r\n".as_slice(),
                _ => b"GET / HT".as_slice(),
            });
            if kind == 2 {
                world.run_until(Some(&mut client), |_, c| c.unwrap().plain.len() > 100_000);
                world.drop_socket(client.handle());
                world.run_until(None, |w, _| w.log.len() > lines);
            } else {
                world.run_until(Some(&mut client), |_, c| c.unwrap().close_notify);
                client.close();
                world.run_until(Some(&mut client), |w, _| w.log.len() > lines);
                world.drop_socket(client.handle());
            }
        }
    }
}

#[test]
fn hostile_connections_leave_no_connection_and_no_heap_behind() {
    let config = Config {
        header_timeout: smoltcp::time::Duration::from_secs(1),
        ..Config::default()
    };
    let mut world = World::new(config);
    // Warm up: caches, the wire's packet buffers, the socket set's slots.
    for i in 0..40 {
        hostile(&mut world, i);
    }
    world.log.clear();
    world.log.shrink_to_fit();
    let before = thread_live_bytes();
    // The 10,000 in a release build (scripts/test runs it so); fewer in debug.
    const ROUNDS: usize = if cfg!(debug_assertions) { 400 } else { 10_000 };
    for i in 0..ROUNDS {
        hostile(&mut world, i);
        if world.log.len() > 16 {
            world.log.clear();
        }
    }
    world.log.clear();
    world.log.shrink_to_fit();
    assert_eq!(world.server.open_connections(), 0);
    let after = thread_live_bytes();
    // A ring or a session per leaked connection would be ~100 KiB each.
    assert!(
        (after - before).abs() < 64 * 1024,
        "heap {before} before {ROUNDS} hostile connections, {after} after"
    );
}
