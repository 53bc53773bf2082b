//! rustls configs from command-line flags, for `serve` and `get`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use tls_core::config;
use tlsflow_pki::{clock, KeyKind, Pki};

use super::Error;

/// Which TLS versions to allow.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct VersionArgs {
    /// Allow only TLS 1.2.
    #[arg(long, conflicts_with = "tls13")]
    tls12: bool,
    /// Allow only TLS 1.3.
    #[arg(long)]
    tls13: bool,
}

impl VersionArgs {
    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
        static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
        match (self.tls12, self.tls13) {
            (true, _) => TLS12,
            (_, true) => TLS13,
            _ => config::ALL_VERSIONS,
        }
    }
}

/// Server-side TLS flags.
#[derive(Debug, Args, Clone)]
pub(crate) struct ServerTlsArgs {
    /// Certificate chain (PEM, leaf first). Without --cert/--key a throwaway CA and leaf
    /// are made.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1; RSA, ECDSA or Ed25519).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// With a throwaway certificate: write its CA certificate (PEM) here for clients.
    #[arg(long, conflicts_with = "cert")]
    ca_out: Option<PathBuf>,
    /// Extra DNS names for the throwaway certificate (besides localhost, 127.0.0.1, ::1).
    #[arg(long = "name", conflicts_with = "cert")]
    names: Vec<String>,
    /// ALPN protocols to accept, most preferred first (repeat or comma-separate)
    /// [default: h2,http/1.1].
    #[arg(long, value_delimiter = ',')]
    alpn: Vec<String>,
    /// Require client certificates issued by this CA (PEM).
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// Disable session tickets and the session cache.
    #[arg(long)]
    no_tickets: bool,
    #[command(flatten)]
    versions: VersionArgs,
}

/// Client-side TLS flags.
#[derive(Debug, Args, Clone)]
pub(crate) struct ClientTlsArgs {
    /// Trust these CA certificates (PEM) instead of the webpki roots.
    #[arg(long)]
    pub(crate) cacert: Option<PathBuf>,
    /// ALPN protocols to offer (repeat or comma-separate) [default with the Unix backend:
    /// h2,http/1.1].
    #[arg(long, value_delimiter = ',')]
    alpn: Vec<String>,
    /// Present this client certificate chain (PEM).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    #[command(flatten)]
    versions: VersionArgs,
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()).into());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a private key from {}: {e}", path.display()).into())
}

fn roots_from(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// What `serve` accepts by ALPN without `--alpn`, most preferred first: its HTTP server
/// (hyper's auto connection) speaks both.
pub(crate) const DEFAULT_SERVER_ALPN: [&str; 2] = ["h2", "http/1.1"];

fn alpn(list: &[String]) -> Vec<Vec<u8>> {
    list.iter().map(|p| p.as_bytes().to_vec()).collect()
}

impl ServerTlsArgs {
    /// Where the throwaway CA certificate is written, if anywhere.
    pub(crate) fn ca_out(&self) -> Option<&Path> {
        self.ca_out.as_deref()
    }
}

/// A server config from the flags, and a one-line description of the certificate used;
/// without `--alpn` it accepts [`DEFAULT_SERVER_ALPN`].
pub(crate) fn server_config(args: &ServerTlsArgs) -> Result<(ServerConfig, String), Error> {
    server_config_for(args, &DEFAULT_SERVER_ALPN)
}

/// As [`server_config`] for an application that speaks only `speaks` (most preferred
/// first): without `--alpn` it accepts those, e.g. `&["http/1.1"]` for an HTTP/1.1-only
/// server, so that a client offering `h2` too is not led into a protocol the server
/// cannot speak.
pub(crate) fn server_config_for(
    args: &ServerTlsArgs,
    speaks: &[&str],
) -> Result<(ServerConfig, String), Error> {
    let time = clock();
    let builder = config::server_builder(time.clone(), args.versions.versions())?;
    let builder = match &args.client_ca {
        Some(path) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots_from(path)?),
                config::crypto_provider(),
            )
            .build()
            .map_err(|e| format!("client CA {}: {e}", path.display()))?,
        ),
        None => builder.with_no_client_auth(),
    };
    let (chain, key, what) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => (
            read_certs(cert)?,
            read_key(key)?,
            format!("certificate {}", cert.display()),
        ),
        _ => {
            let names: Vec<&str> = args.names.iter().map(String::as_str).collect();
            let pki = Pki::new(KeyKind::EcdsaP256, &names);
            let what = match &args.ca_out {
                Some(path) => {
                    std::fs::write(path, &pki.ca_pem)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    format!("throwaway certificate, CA written to {}", path.display())
                }
                None => "throwaway certificate (pass --ca-out FILE to trust it)".to_string(),
            };
            (pki.server.chain.clone(), pki.server.private_key(), what)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not fit together: {e}"))?;
    cfg.alpn_protocols = match args.alpn.as_slice() {
        [] => speaks.iter().map(|p| p.as_bytes().to_vec()).collect(),
        list => alpn(list),
    };
    if args.no_tickets {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    } else {
        config::enable_server_resumption(&mut cfg, time, 1024, 6 * 3600)?;
    }
    Ok((cfg, what))
}

/// A client config from the flags, with resumption on.
pub(crate) fn client_config(args: &ClientTlsArgs) -> Result<ClientConfig, Error> {
    let roots = match &args.cacert {
        Some(path) => roots_from(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder =
        config::client_builder(clock(), args.versions.versions())?.with_root_certificates(roots);
    let mut cfg = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| format!("client certificate and key do not fit together: {e}"))?,
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn(&args.alpn);
    config::enable_client_resumption(&mut cfg, 64);
    if let Ok(path) = std::env::var("SSLKEYLOGFILE") {
        if !path.is_empty() {
            cfg.key_log = Arc::new(tls_core::keylog::KeyLogFile::from_env());
        }
    }
    Ok(cfg)
}
