//! Helpers shared by the integration tests: one PKI per key kind per test binary, and
//! pairs built from it.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, ServerConfig};
use tls_core::{Event, HandshakeInfo};
use tls_test::certs::{KeyKind, Options, Pki};
use tls_test::pair::{FaultPlan, Pair};

/// A PKI per key kind, made once per test binary.
pub(crate) fn pki(kind: KeyKind) -> &'static Pki {
    static PKIS: [OnceLock<Pki>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let index = match kind {
        KeyKind::EcdsaP256 => 0,
        KeyKind::Ed25519 => 1,
        KeyKind::Rsa2048 => 2,
    };
    PKIS[index].get_or_init(|| Pki::new(kind, &[]))
}

/// Client and server configs for `kind` with the same options on both sides.
pub(crate) fn configs(kind: KeyKind, opts: &Options) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let pki = pki(kind);
    (
        Arc::new(pki.client_config(opts)),
        Arc::new(pki.server_config(opts)),
    )
}

/// A pair for `kind` with the same options on both sides.
pub(crate) fn pair(kind: KeyKind, opts: &Options, plan: FaultPlan, seed: u64) -> Pair {
    let (client, server) = configs(kind, opts);
    Pair::connect(client, server, plan, seed)
}

/// A pair for `kind` and `opts` whose handshake has completed.
pub(crate) fn connected(kind: KeyKind, opts: &Options, plan: FaultPlan, seed: u64) -> Pair {
    let mut pair = pair(kind, opts, plan, seed);
    pair.handshake()
        .unwrap_or_else(|e| panic!("handshake failed: {e}"));
    pair
}

/// Options for one protocol version and nothing else.
pub(crate) fn version(versions: &[&'static rustls::SupportedProtocolVersion]) -> Options {
    Options {
        versions: versions.to_vec(),
        ..Options::default()
    }
}

/// The `HandshakeComplete` info among `events`, checking it is there exactly once.
pub(crate) fn handshake_event(events: &[Event]) -> HandshakeInfo {
    let infos: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::HandshakeComplete(info) => Some(info.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        infos.len(),
        1,
        "one HandshakeComplete expected in {events:?}"
    );
    infos.into_iter().next().unwrap()
}
