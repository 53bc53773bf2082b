//! tlsflow: one sans-IO TLS engine for a unikernel TCP stack and for Unix sockets.
//!
//! This umbrella crate re-exports the three parts:
//!
//! * [`core`] (`tls-core`): the engine, a state machine over rustls 0.23 with bytes in and
//!   bytes out, no sockets, no clock, `no_std` + `alloc`;
//! * [`unikernel`] (`tls-unikernel`): the engine on the smoltcp TCP stack, `no_std`;
//! * [`unix`] (`tls-unix`): the engine on std sockets;
//! * [`server`]: HTTPS on the Unix backend (hyper), sharing its routes and log line with
//!   the no_std application crate `tlsflow-unikernel`.
//!
//! The `tlsflow` binary (`tlsflow demo`) shows them at work.

#![forbid(unsafe_code)]

pub mod server;

pub use tls_core as core;
pub use tls_unikernel as unikernel;
pub use tls_unix as unix;

/// The README's example, compiled as a doctest so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
