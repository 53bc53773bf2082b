//! Helpers shared by the integration tests: one PKI per key kind per test binary, and
//! pairs built from it.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tls_core::{Event, HandshakeInfo, Limits, Session};
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
    pair_with(kind, opts, opts, plan, seed)
}

/// A pair for `kind` with `client` options on the client and `server` options on the
/// server.
pub(crate) fn pair_with(
    kind: KeyKind,
    client: &Options,
    server: &Options,
    plan: FaultPlan,
    seed: u64,
) -> Pair {
    let pki = pki(kind);
    Pair::connect(
        Arc::new(pki.client_config(client)),
        Arc::new(pki.server_config(server)),
        plan,
        seed,
    )
}

/// Protocol versions to offer, as `tls_test::certs::TLS13` and `TLS12` give them.
pub(crate) type Versions<'a> = &'a [&'static rustls::SupportedProtocolVersion];

/// A pair for `kind` on `versions` only (same options on both sides).
pub(crate) fn pair_on(kind: KeyKind, versions: Versions<'_>, plan: FaultPlan, seed: u64) -> Pair {
    pair(kind, &version(versions), plan, seed)
}

/// [`pair_on`] with its handshake completed.
pub(crate) fn connected_on(
    kind: KeyKind,
    versions: Versions<'_>,
    plan: FaultPlan,
    seed: u64,
) -> Pair {
    connected(kind, &version(versions), plan, seed)
}

/// Joins a client that asks for the server name `name` and a server, both from `pki`
/// with `opts` and default limits.
pub(crate) fn pair_named(
    pki: &Pki,
    name: &str,
    opts: &Options,
    plan: FaultPlan,
    seed: u64,
) -> Pair {
    let name = ServerName::try_from(name.to_owned()).expect("valid server name");
    let client = Session::client(pki.client_config(opts).into(), name, Limits::default())
        .expect("client session");
    let server =
        Session::server(pki.server_config(opts).into(), Limits::default()).expect("server session");
    Pair::new(client, server, plan, seed)
}

/// A pair for `kind` and `opts` whose handshake has completed.
pub(crate) fn connected(kind: KeyKind, opts: &Options, plan: FaultPlan, seed: u64) -> Pair {
    let mut pair = pair(kind, opts, plan, seed);
    pair.handshake()
        .unwrap_or_else(|e| panic!("handshake failed: {e}"));
    pair
}

/// Options for one protocol version and nothing else.
pub(crate) fn version(versions: Versions<'_>) -> Options {
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
