//! Heap held by an idle, established session, measured with a counting global allocator.
//! (Counted per thread: the test harness's own threads allocate at times of their own.)

mod common;

use std::sync::Arc;

use tls_core::rustls::pki_types::ServerName;
use tls_core::{Limits, Session};
use tls_test::alloc_counter::{thread_live_bytes as live_bytes, Counting};
use tls_test::certs::{KeyKind, TLS12, TLS13};
use tls_test::pair::{FaultPlan, Pair};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Target heap per idle established session, in bytes.
const TARGET_PER_SIDE: isize = 6 * 1024;

struct Measured {
    /// DER bytes of the server chain the client keeps for `peer_certificates`.
    peer_chain: usize,
    client: isize,
    server: isize,
    client_before_handshake: isize,
    server_before_handshake: isize,
}

/// Builds a pair from existing configs, handshakes, drains output and events, drops the
/// harness, and measures what each session keeps.
fn measure(
    client_config: &Arc<tls_core::rustls::ClientConfig>,
    server_config: &Arc<tls_core::rustls::ServerConfig>,
) -> Measured {
    let base = live_bytes();
    let client = Session::client(
        client_config.clone(),
        ServerName::try_from("localhost").unwrap(),
        Limits::default(),
    )
    .unwrap();
    let client_before_handshake = live_bytes() - base;
    let server = Session::server(server_config.clone(), Limits::default()).unwrap();
    let server_before_handshake = live_bytes() - base - client_before_handshake;

    let mut pair = Pair::new(client, server, FaultPlan::CLEAN, 1);
    pair.handshake().unwrap();
    pair.drive();
    pair.take_events(tls_test::pair::Side::Client);
    pair.take_events(tls_test::pair::Side::Server);
    let (mut client, mut server) = pair.into_sessions();
    // The transport has nothing more, as a non-blocking binding reports when a read
    // would block: the sessions give back their empty buffers.
    assert_eq!(client.read_tls(&[]), Ok(0));
    assert_eq!(server.read_tls(&[]), Ok(0));
    let peer_chain = client
        .peer_certificates()
        .map_or(0, |c| c.iter().map(|c| c.len()).sum());
    assert!(!client.has_output() && !server.has_output());
    assert_eq!(client.buffered_bytes(), 0, "client buffers");
    assert_eq!(server.buffered_bytes(), 0, "server buffers");

    let both = live_bytes() - base;
    drop(server);
    let client_only = live_bytes() - base;
    drop(client);
    let leftover = live_bytes() - base;
    assert!(
        leftover.abs() < 512,
        "{leftover} bytes outlived the sessions"
    );
    Measured {
        peer_chain,
        client: client_only,
        server: both - client_only,
        client_before_handshake,
        server_before_handshake,
    }
}

#[test]
fn idle_established_sessions_stay_small() {
    let mut report = String::new();
    let mut worst = (0, 0);
    for kind in KeyKind::ALL {
        for (versions, name) in [(TLS13, "TLS 1.3"), (TLS12, "TLS 1.2")] {
            let (client_config, server_config) = common::configs(kind, &common::version(versions));
            // Warm up once: one-time allocations (lazy statics, first-use tables).
            measure(&client_config, &server_config);
            let m = measure(&client_config, &server_config);
            report += &format!(
                "{kind:?} {name}: client {} B (new: {}; server chain DER {}), server {} B (new: {})\n",
                m.client,
                m.client_before_handshake,
                m.peer_chain,
                m.server,
                m.server_before_handshake
            );
            worst.0 = worst.0.max(m.client);
            worst.1 = worst.1.max(m.server);
        }
    }
    eprintln!(
        "idle established session heap (Session itself: {} B inline):\n{report}",
        std::mem::size_of::<Session>()
    );
    assert!(
        worst.0 <= TARGET_PER_SIDE && worst.1 <= TARGET_PER_SIDE,
        "idle sessions above {TARGET_PER_SIDE} B per side (worst client {}, server {}):\n{report}",
        worst.0,
        worst.1
    );
}
