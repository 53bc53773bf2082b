//! Building rustls configs that work without std.
//!
//! In no_std rustls offers only `builder_with_details(provider, time_provider)`, turns
//! resumption off, and has no ticketer. These helpers start builders on the *ring*
//! provider with the embedder's clock, and switch resumption on with tls-core's own
//! [`ClientSessionCache`], [`ServerSessionCache`] and [`Ticketer`].
//!
//! # Key exchange
//!
//! The builders offer the post-quantum hybrid [`X25519MLKEM768`](crate::kx::X25519MLKEM768)
//! first, then X25519, P-256 and P-384. A client sends two key shares, the hybrid and
//! X25519 (as browsers do), so a server without the hybrid needs no HelloRetryRequest; a
//! server takes the hybrid whenever the client offers it first. TLS 1.2 never uses it.
//!
//! The one switch: [`PostQuantum::Off`] leaves the hybrid out (the *ring* provider's own
//! groups, X25519 first):
//!
//! ```
//! # use std::sync::Arc;
//! use tls_core::config::{self, PostQuantum};
//! let time = Arc::new(rustls::time_provider::DefaultTimeProvider);
//! let provider = config::crypto_provider_with(PostQuantum::Off);
//! let builder = config::client_builder_with(provider, time, config::ALL_VERSIONS).unwrap();
//! ```
//!
//! # Certificate compression
//!
//! zlib certificate compression (RFC 8879), without std, is switched on per config by
//! [`compress::enable_client`](crate::compress::enable_client) and
//! [`compress::enable_server`](crate::compress::enable_server).

use alloc::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, ConfigBuilder, ServerConfig, SupportedProtocolVersion, WantsVerifier};

use crate::store::{ClientSessionCache, ServerSessionCache};
use crate::ticketer::Ticketer;
use crate::Error;

/// TLS 1.3 and TLS 1.2, the versions tls-core supports.
pub static ALL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Whether a provider offers the post-quantum hybrid key exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PostQuantum {
    /// X25519MLKEM768 first, then the *ring* provider's groups (the default).
    #[default]
    Preferred,
    /// Only the *ring* provider's classical groups: X25519, P-256, P-384.
    Off,
}

/// The *ring* crypto provider with every suite it offers and the key exchange groups
/// X25519MLKEM768, X25519, P-256 and P-384, in that order of preference.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    crypto_provider_with(PostQuantum::Preferred)
}

/// The *ring* crypto provider with every suite it offers, with or without the hybrid.
pub fn crypto_provider_with(post_quantum: PostQuantum) -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    if post_quantum == PostQuantum::Preferred {
        provider.kx_groups.insert(0, crate::kx::X25519MLKEM768);
    }
    Arc::new(provider)
}

/// A client config builder on *ring* with time from `time`, for the given versions.
pub fn client_builder(
    time: Arc<dyn TimeProvider>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, Error> {
    client_builder_with(crypto_provider(), time, versions)
}

/// A client config builder on `provider` (e.g. [`crypto_provider_with`]) with time from
/// `time`, for the given versions.
pub fn client_builder_with(
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, Error> {
    ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(versions)
        .map_err(Error::from)
}

/// A server config builder on *ring* with time from `time`, for the given versions.
pub fn server_builder(
    time: Arc<dyn TimeProvider>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, Error> {
    server_builder_with(crypto_provider(), time, versions)
}

/// A server config builder on `provider` (e.g. [`crypto_provider_with`]) with time from
/// `time`, for the given versions.
pub fn server_builder_with(
    provider: Arc<CryptoProvider>,
    time: Arc<dyn TimeProvider>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, Error> {
    ServerConfig::builder_with_details(provider, time)
        .with_protocol_versions(versions)
        .map_err(Error::from)
}

/// Lets a client resume: TLS 1.3 tickets and TLS 1.2 session ids or tickets, for up to
/// `servers` server names.
pub fn enable_client_resumption(config: &mut ClientConfig, servers: usize) {
    config.resumption = Resumption::store(Arc::new(ClientSessionCache::new(servers)));
}

/// Lets a server resume sessions: stateless tickets (TLS 1.3, and TLS 1.2 for clients
/// that ask) from a [`Ticketer`] whose keys rotate every `ticket_lifetime` seconds of
/// `time`, and a cache of `sessions` entries for TLS 1.2 session ids.
pub fn enable_server_resumption(
    config: &mut ServerConfig,
    time: Arc<dyn TimeProvider>,
    sessions: usize,
    ticket_lifetime: u32,
) -> Result<(), Error> {
    config.session_storage = Arc::new(ServerSessionCache::new(sessions));
    config.ticketer = Arc::new(Ticketer::new(ticket_lifetime, time)?);
    Ok(())
}
