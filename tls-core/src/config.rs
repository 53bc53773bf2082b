//! Building rustls configs that work without std.
//!
//! In no_std rustls offers only `builder_with_details(provider, time_provider)`, turns
//! resumption off, and has no ticketer. These helpers start builders on the *ring*
//! provider with the embedder's clock, and switch resumption on with tls-core's own
//! [`ClientSessionCache`], [`ServerSessionCache`] and [`Ticketer`].

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

/// The *ring* crypto provider with every suite and key exchange group it offers.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config builder on *ring* with time from `time`, for the given versions.
pub fn client_builder(
    time: Arc<dyn TimeProvider>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, Error> {
    ClientConfig::builder_with_details(crypto_provider(), time)
        .with_protocol_versions(versions)
        .map_err(Error::from)
}

/// A server config builder on *ring* with time from `time`, for the given versions.
pub fn server_builder(
    time: Arc<dyn TimeProvider>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, Error> {
    ServerConfig::builder_with_details(crypto_provider(), time)
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
