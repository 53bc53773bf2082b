//! TLS sockets for the smoltcp TCP/IP stack: tlsflow's binding for unikernels and other
//! `no_std` systems.
//!
//! A [`TlsSocket`] owns a [`tls_core::Session`] (rustls 0.23 with *ring*, as a sans-IO
//! state machine) and the [`SocketHandle`](smoltcp::iface::SocketHandle) of a smoltcp
//! `tcp::Socket`. The embedder drives `Interface::poll` and then each TLS socket's
//! [`poll`](TlsSocket::poll), which moves bytes between the engine and the TCP socket and
//! says when it needs to be called again ([`PollAt`]). Clients [`connect`](TlsSocket::connect);
//! a server socket [`listen`](TlsSocket::listen)s for one connection, and a
//! [`TlsListener`] serves several at once. Plaintext goes through calls shaped like
//! smoltcp's own (`send_slice`, `recv_slice`, `recv` with a closure, `can_send`,
//! `can_recv`, `may_send`, `may_recv`, `close`, `abort`).
//!
//! The crate is `#![no_std]` with `alloc` and has no unsafe code. It does **not** read a
//! clock (time is the `now` argument of [`TlsSocket::poll`], used for its deadlines;
//! certificate validity uses the rustls `TimeProvider` in the configs), does
//! not own a device or an interface, and makes no randomness of its own: *ring* gets
//! random bytes through `getrandom` (see "Randomness" below).
//!
//! # Example
//!
//! A client and a server on one interface over smoltcp's loopback device:
//!
//! ```
//! use std::sync::Arc;
//! use smoltcp::iface::{Config, Interface, SocketSet};
//! use smoltcp::phy::{Loopback, Medium};
//! use smoltcp::socket::tcp;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
//! use tls_unikernel::tls_core::rustls::pki_types::ServerName;
//! use tls_unikernel::{Error, Options, TlsSocket};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Throwaway certificates (any rustls configs built on tls_core::config will do).
//! let pki = tls_test::certs::Pki::new(tls_test::certs::KeyKind::EcdsaP256, &[]);
//! let server_config = Arc::new(pki.server_config(&Default::default()));
//! let client_config = Arc::new(pki.client_config(&Default::default()));
//!
//! let mut device = Loopback::new(Medium::Ip);
//! let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
//! iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap());
//! let mut sockets = SocketSet::new(vec![]);
//! let ring = || tcp::SocketBuffer::new(vec![0; 4096]);
//! let server_tcp = sockets.add(tcp::Socket::new(ring(), ring()));
//! let client_tcp = sockets.add(tcp::Socket::new(ring(), ring()));
//!
//! let mut server = TlsSocket::server(server_tcp, server_config, Options::default());
//! server.listen(&mut sockets, 443)?;
//! let name = ServerName::try_from("localhost")?;
//! let mut client = TlsSocket::client(client_tcp, client_config, name, Options::default());
//! client.connect(iface.context(), &mut sockets, (IpAddress::v4(127, 0, 0, 1), 443), 49152)?;
//!
//! let (mut sent, mut received) = (false, Vec::new());
//! for ms in 0.. {
//!     assert!(ms < 10_000, "stalled");
//!     let now = Instant::from_millis(ms); // a real embedder reads its clock
//!     iface.poll(now, &mut device, &mut sockets);
//!     let _ = client.poll(now, &mut sockets);
//!     let _ = server.poll(now, &mut sockets);
//!     if !sent && client.can_send(&sockets) {
//!         assert_eq!(client.send_slice(&mut sockets, b"hello")?, 5);
//!         client.close(&mut sockets); // close_notify, then FIN; we could still read
//!         sent = true;
//!     }
//!     let mut buf = [0u8; 64];
//!     match server.recv_slice(&mut sockets, &mut buf) {
//!         Ok(n) => received.extend_from_slice(&buf[..n]),
//!         Err(Error::Finished) => break, // the client's close_notify: a clean end
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! assert_eq!(received, b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! # Polling
//!
//! After `Interface::poll`, call [`TlsSocket::poll`] on every TLS socket (and
//! [`TlsListener::accept`] on listeners), then let the application read and write. Repeat
//! while any call reports progress ([`PollAt::Now`], or `Interface::poll` returning
//! `SocketStateChanged`); then sleep until the earliest of `Interface::poll_at` and the
//! sockets' [`PollAt::Time`], or until a packet arrives. Each call does a bounded
//! amount of work and never waits.
//!
//! # On a real wire
//!
//! What the socket does so that a TCP peer on a real network (a Linux host over TAP or
//! virtio-net) gets what it expects, and so that no peer holds a socket for long:
//!
//! * **Alert, then close.** After any fatal error the socket queues the alert behind what
//!   was queued before it (session tickets, say), then the TCP FIN, and drops what the
//!   peer still sends; it resets the connection only if TCP has not closed
//!   [`Options::error_linger`] (default 2 s) later. An embedder never needs to
//!   [`abort`](TlsSocket::abort) on an error, and should not: an abort throws the alert
//!   away with an RST.
//! * **No stall on flights.** The socket turns Nagle's algorithm off on its TCP socket
//!   ([`Options::nagle`]): with it, the tail of a handshake flight larger than a segment
//!   (a certificate chain of a few KB) waits for the peer's delayed ACK of the first
//!   segment, about 40 ms on Linux. With smoltcp's congestion control (features
//!   `socket-tcp-reno`/`socket-tcp-cubic`) the initial window of the unpatched 0.14.0 is
//!   two 1024-byte segments, which stalls such a flight the same way; the patched copy
//!   (below) starts with RFC 6928's ten segments.
//! * **Hostile peers released.** A peer that sends nothing, or a handshake message too
//!   slowly, meets [`Options::handshake_timeout`] (10 s); one that stops reading (its
//!   window shut, our output unacknowledged) meets [`Options::write_timeout`] (10 s);
//!   malformed or oversized messages get their alert at once, and a peer that then keeps
//!   its side open meets `error_linger`. Each ends in a closed TCP socket, so a server's
//!   slot is free within that bound.
//!
//! # Memory per connection
//!
//! All of it is heap (`alloc`) and bounded; the engine's buffers are allocated only while
//! they hold bytes and released when empty (they are `Vec`s, so one may reach twice what
//! it holds while it grows).
//!
//! | part | bytes | note |
//! | --- | --- | --- |
//! | TCP receive ring | `rx` | chosen by the embedder (256 B – 64 KiB tested) |
//! | TCP send ring | `tx` | chosen by the embedder |
//! | rustls and engine state | about 3–6 KiB | keys, record layer, peer chain; measured idle |
//! | engine inbound ciphertext | ≤ [`Limits::inbound`](tls_core::Limits::inbound) | ≤ 18437 + 65535 while the handshake runs (a large certificate message) |
//! | engine staged plaintext | ≤ [`Limits::unread_plaintext`](tls_core::Limits::unread_plaintext) + one record | the backpressure point |
//! | engine outbound (staging) | the handshake flight, or ≤ `tx` | application data goes straight into the TCP ring; staging is used only at the ring's wrap point and never exceeds its free space |
//! | read buffer | none | `recv` lends the engine's plaintext to its closure in place ([`Session::recv_with`](tls_core::Session::recv_with)); `recv_slice` copies it straight into the caller's buffer |
//!
//! An idle established connection holds only the rings and a few KiB of TLS state. The
//! `memory` test measures with a counting allocator (8 KiB rings, `unread_plaintext`
//! 16 KiB, TLS 1.3), averaged over the client and the server: with Ed25519 certificates
//! 21.7 KB per connection idle (16 KiB of it rings, 5.3 KB TLS), 22.3 KB at the peak of
//! the handshake, 47.3 KB at the peak of a 1 MB transfer with backpressure, and nothing
//! left after the connection is dropped (with ECDSA P-256: 2.7 KB of TLS state idle,
//! 33 KB at the transfer peak). It fails if the idle TLS state passes 24 KiB or a peak
//! passes the sum in the table.
//!
//! # smoltcp 0.14.0 defects
//!
//! The network simulation found TCP-level hangs in smoltcp 0.14.0 itself; tlsflow builds
//! against a fixed copy (`third_party/smoltcp`, by `[patch.crates-io]`, which applies only
//! to the workspace that declares it). An embedder taking this crate from a registry has
//! the defects unless it patches smoltcp the same way: `tls-unikernel/SMOLTCP.md` lists
//! them and what to do on an unpatched stack ([`Options::linger`] and
//! [`Options::keep_alive`] bound two of them).
//!
//! # Randomness
//!
//! The engine has no RNG of its own: *ring* asks `getrandom` 0.2 for key shares, nonces
//! and ticket keys. On Linux targets that is the `getrandom` system call (this is what
//! the freestanding proof in `tls-unikernel/freestanding/` uses). A bare-metal embedder
//! must supply a source: on x86_64 enable `getrandom`'s `rdrand` feature (RDRAND), or
//! register a custom source with `getrandom::register_custom_getrandom!` (feature
//! `custom`) backed by a hardware RNG or a DRBG seeded from one. There is no fallback:
//! without a source the build fails to link rather than run with weak keys.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![deny(unused_must_use)]

extern crate alloc;

mod error;
mod listener;
mod options;
mod socket;

pub use error::Error;
pub use listener::TlsListener;
pub use options::{ListenerOptions, Options};
pub use socket::{PollAt, TlsSocket};

/// The smoltcp this crate is built on.
pub use smoltcp;
/// The engine this crate is built on, so embedders name the same types (and
/// `tls_core::rustls`).
pub use tls_core;
