//! rustls configs for a [`Pki`]: the system clock, version and suite choices, mutual TLS
//! and resumption.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::time_provider::{DefaultTimeProvider, TimeProvider};
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use tls_core::config;

use crate::Pki;

/// The system clock, for rustls's certificate checks (tls-core itself never reads a clock).
pub fn clock() -> Arc<dyn TimeProvider> {
    Arc::new(DefaultTimeProvider)
}
/// TLS 1.3 only.
pub static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// TLS 1.2 only.
pub static TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// What a config should enable.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Protocol versions; empty means TLS 1.3 and 1.2.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// ALPN protocols to offer (client) or accept (server).
    pub alpn: Vec<Vec<u8>>,
    /// Server: require a client certificate from this PKI's CA. Client: present one.
    pub mtls: bool,
    /// Enable resumption (tickets and session ids).
    pub resumption: bool,
    /// Restrict cipher suites to these (empty: all ring suites).
    pub suites: Vec<rustls::CipherSuite>,
}

fn provider(opts: &Options) -> Arc<rustls::crypto::CryptoProvider> {
    // tls-core's provider: *ring* with the X25519MLKEM768 hybrid first.
    let mut p = Arc::unwrap_or_clone(config::crypto_provider());
    if !opts.suites.is_empty() {
        p.cipher_suites.retain(|s| opts.suites.contains(&s.suite()));
    }
    Arc::new(p)
}

fn versions(opts: &Options) -> Vec<&'static SupportedProtocolVersion> {
    if opts.versions.is_empty() {
        config::ALL_VERSIONS.to_vec()
    } else {
        opts.versions.clone()
    }
}

impl Pki {
    /// A server config for this PKI.
    ///
    /// # Panics
    ///
    /// If `opts` leaves no cipher suite for its versions.
    pub fn server_config(&self, opts: &Options) -> ServerConfig {
        let builder = ServerConfig::builder_with_details(provider(opts), clock())
            .with_protocol_versions(&versions(opts))
            .expect("the options name versions that the suites support");
        let builder = if opts.mtls {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()), provider(opts))
                    .build()
                    .expect("a client verifier over our own CA");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut cfg = builder
            .with_single_cert(self.server.chain.clone(), self.server.private_key())
            .expect("our own leaf and key fit");
        cfg.alpn_protocols = opts.alpn.clone();
        if opts.resumption {
            config::enable_server_resumption(&mut cfg, clock(), 256, 3600)
                .expect("a ticketer from ring");
        } else {
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            cfg.send_tls13_tickets = 0;
        }
        cfg
    }

    /// A client config trusting this PKI's CA.
    ///
    /// # Panics
    ///
    /// If `opts` leaves no cipher suite for its versions.
    pub fn client_config(&self, opts: &Options) -> ClientConfig {
        let builder = ClientConfig::builder_with_details(provider(opts), clock())
            .with_protocol_versions(&versions(opts))
            .expect("the options name versions that the suites support")
            .with_root_certificates(self.roots());
        let mut cfg = if opts.mtls {
            builder
                .with_client_auth_cert(self.client.chain.clone(), self.client.private_key())
                .expect("our own client leaf and key fit")
        } else {
            builder.with_no_client_auth()
        };
        cfg.alpn_protocols = opts.alpn.clone();
        if opts.resumption {
            config::enable_client_resumption(&mut cfg, 32);
        } else {
            cfg.resumption = rustls::client::Resumption::disabled();
        }
        cfg
    }
}
