//! Throwaway PKIs for tlsflow: a CA, a server leaf and a client leaf made with rcgen, and
//! rustls configs that use them.
//!
//! `tlsflow demo`, `tlsflow serve` (without `--cert`) and the tests use these; nothing
//! here is meant to protect anything that matters. The certificates still follow the
//! rules a strict peer or scanner checks:
//!
//! * serial numbers are 126 random bits from the system's CSPRNG (ring's `SystemRandom`),
//!   positive and DER-minimal (RFC 5280 §4.1.2.2);
//! * EC and Ed25519 leaves assert only `digitalSignature` (RFC 5480 §3, RFC 8410 §5);
//!   RSA leaves add `keyEncipherment`;
//! * the CA and the leaves carry a Subject Key Identifier, the leaves an Authority Key
//!   Identifier equal to the CA's (RFC 5280 §4.2.1.1-2);
//! * names carry no process id: the CA is `tlsflow throwaway CA <random hex>`;
//! * [`Identity::chain`], the chain a peer sends, stops below the trust anchor.
//!
//! The crate reads no clock of its own except for the certificates' validity window
//! ([`clock`] hands the system clock to rustls).
//!
//! ```
//! use tlsflow_pki::{KeyKind, Options, Pki};
//!
//! let pki = Pki::new(KeyKind::EcdsaP256, &["example.test"]);
//! assert_eq!(pki.server.chain.len(), 1, "the leaf only, no trust anchor");
//! let server = pki.server_config(&Options::default());
//! let client = pki.client_config(&Options { resumption: true, ..Options::default() });
//! # let _ = (server, client);
//! ```

#![forbid(unsafe_code)]

mod config;
mod pki;

pub use config::{clock, Options, TLS12, TLS13};
pub use pki::{Identity, KeyKind, Pki};
