//! Throwaway PKIs: the [`tlsflow_pki`] crate, re-exported so tests keep one import path.

pub use tlsflow_pki::*;
