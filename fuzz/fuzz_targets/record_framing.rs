//! tls-core's inbound buffering and record framing: see `tlsflow_fuzz::framing`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tlsflow_fuzz::framing::run(data));
