//! The engine's receive path as a server: see `tlsflow_fuzz::session`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsflow_fuzz::session::{run, Role};

fuzz_target!(|data: &[u8]| run(Role::Server, data));
