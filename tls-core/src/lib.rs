//! A sans-IO TLS engine: bytes in, bytes out.
//!
//! tls-core turns rustls 0.23 (with the *ring* provider) into a state machine that a
//! transport drives. It contains **no networking code, reads no clock and starts no
//! thread**: the embedder hands it the ciphertext that arrived, sends the ciphertext it
//! produces, and supplies certificate time through a
//! [`TimeProvider`](rustls::time_provider::TimeProvider). The same engine therefore runs
//! inside a unikernel's TCP stack (`tls-unikernel`) and over Unix sockets (`tls-unix`).
//! It is `#![no_std]` (with `alloc`); the `std` feature adds `std::error::Error` and
//! `io::Error` conversions and the `SSLKEYLOGFILE` key log.
//!
//! # Example
//!
//! A client and a server in memory: whatever one side outputs, the other receives.
//!
//! ```
//! use std::sync::Arc;
//! use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
//! use rustls::time_provider::DefaultTimeProvider;
//! use tls_core::{config, Event, Limits, Session};
//!
//! // A throwaway certificate for "localhost".
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
//! let der = CertificateDer::from(cert.cert.der().to_vec());
//! let key = PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
//!
//! let time = Arc::new(DefaultTimeProvider);
//! let server_config = config::server_builder(time.clone(), config::ALL_VERSIONS).unwrap()
//!     .with_no_client_auth()
//!     .with_single_cert(vec![der.clone()], key).unwrap();
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(der).unwrap();
//! let client_config = config::client_builder(time, config::ALL_VERSIONS).unwrap()
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//!
//! let name = ServerName::try_from("localhost").unwrap();
//! let mut client = Session::client(Arc::new(client_config), name, Limits::default()).unwrap();
//! let mut server = Session::server(Arc::new(server_config), Limits::default()).unwrap();
//!
//! // Move ciphertext both ways until neither side has anything to send.
//! fn transfer(from: &mut Session, to: &mut Session) -> bool {
//!     let n = to.read_tls(from.pending_tls()).unwrap();
//!     from.tls_written(n);
//!     n > 0
//! }
//! while transfer(&mut client, &mut server) | transfer(&mut server, &mut client) {}
//!
//! assert!(matches!(client.poll_event(), Some(Event::HandshakeComplete(_))));
//! let info = server.handshake_info().unwrap();
//! assert_eq!(info.sni.as_deref(), Some("localhost"));
//!
//! assert_eq!(client.send(b"hello").unwrap(), 5);
//! client.close().unwrap(); // close_notify, after the data
//! transfer(&mut client, &mut server);
//! let mut buf = [0u8; 16];
//! assert_eq!(server.recv(&mut buf).unwrap(), 5);
//! assert_eq!(&buf[..5], b"hello");
//! assert_eq!(server.recv(&mut buf).unwrap(), 0); // clean end of stream
//! ```
//!
//! # Two sides, told apart by name
//!
//! Every call that moves **ciphertext** (the transport's side) has `tls` in its name, as
//! rustls's `read_tls`/`write_tls` do: in, [`Session::read_tls`] (copy) or
//! [`Session::tls_read_buffer`] + [`Session::commit_tls_read`] (zero copy) and
//! [`Session::read_tls_eof`]; out, [`Session::pending_tls`] + [`Session::tls_written`]
//! (any prefix) or [`Session::write_tls`]. **Plaintext** (the application's side) goes
//! through [`Session::send`] / [`Session::send_into`] and [`Session::recv`] /
//! [`Session::recv_with`], the names smoltcp and std sockets use.
//!
//! # The contract
//!
//! * Calls never block or spin; each makes progress or says why not
//!   ([`Error::WouldBlock`], `Ok(0)` from [`Session::send`], an empty
//!   [`Session::tls_read_buffer`]). Reading never waits for write space: handshake
//!   messages, alerts and KeyUpdate replies are always queued.
//! * Memory is bounded by [`Limits`]; empty buffers are released when the session goes
//!   quiet (the transport had nothing to read, EOF, or [`Session::release_buffers`]), so
//!   an idle session holds only rustls' own state.
//! * A fatal error is sticky, and the alert for it is still in
//!   [`Session::pending_tls`].
//! * End of stream is explicit: close_notify gives `Ok(0)`; transport EOF before it gives
//!   [`Error::Truncated`]. [`Session::read_status`] tells which (or that plaintext is
//!   ready, input is needed, or the session failed) without reading.
//! * Record sizes (header, largest fragment, per-suite overheads) are in [`record`], for
//!   bindings that size buffers.
//!
//! rustls 0.23 in no_std has no clock, no ticketer and no session caches of its own that
//! build the same with and without std; [`config`] supplies them.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![deny(unused_must_use)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod buffers;
pub mod config;
mod conn;
mod error;
mod event;
pub mod keylog;
mod limits;
pub mod record;
mod session;
mod sni;
mod status;
mod store;
mod ticketer;

pub use error::{EngineError, Error};
pub use event::{Event, HandshakeInfo, Initiator};
pub use limits::{Limits, MAX_HANDSHAKE_MESSAGE, MAX_RECORD, MIN_OUTBOUND};
pub use session::{Encrypted, Session};
pub use status::ReadStatus;
pub use store::{ClientSessionCache, ServerSessionCache};
pub use ticketer::Ticketer;

/// The rustls this crate is built on, so embedders name the same types.
pub use rustls;
