//! The tls-unix pump over an adversarial transport: see `tlsflow_fuzz::pump`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tlsflow_fuzz::pump::run(data));
