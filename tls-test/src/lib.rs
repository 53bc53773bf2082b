//! Test support shared by tlsflow's crates: throwaway PKIs ([`certs`]), an in-memory
//! client–server [`pair::Pair`] with seeded fault injection, and a counting allocator
//! ([`alloc_counter`]).

#![deny(unsafe_code)]

pub mod alloc_counter;
pub mod certs;
pub mod pair;
pub mod rng;
