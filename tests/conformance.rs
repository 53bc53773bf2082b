//! One conformance suite for every backend: the same scenarios, the same traces.
//!
//! The table of scenarios (`conformance/scenarios.rs`, by theme in `conformance/scenarios/`)
//! is written once: configurations (TLS 1.3/1.2, key kind, ALPN, client certificates,
//! resumption, SNI), a script of
//! operations per side (handshake, write N bytes, read N bytes or to the end, close,
//! KeyUpdate) and faults that a man in the middle applies to the TLS record stream
//! (corrupt a record, cut a direction with a clean FIN, make a handshake message announce
//! 16 MiB). Each backend runs every
//! scenario; the shared interpreter (`conformance/runner.rs`) records, per side, the
//! sequence of what the application saw (`conformance/trace.rs`: handshake results,
//! bytes written, coalesced reads with their SHA-256, clean EOF, normalised errors, and
//! the engine's events). The test then asserts, for each scenario:
//!
//! 1. each backend's traces meet the scenario's own expectation (so a bug every backend
//!    shares still fails), and
//! 2. each backend's traces equal the reference backend's (tls-core in memory, the first
//!    in [`backends`]); a difference is reported with the scenario, backend, side, the
//!    first differing index and both entries.
//! 3. for the scenarios that name one (`conformance/wire.rs`), what the relay saw
//!    at the end of a direction: the failing side's alert is its last record, and a FIN,
//!    never an RST, follows it. A backend may report problems on the wire itself too (the
//!    smoltcp one checks, in virtual time, that a first flight did not wait for a peer's
//!    delayed ACK).
//!
//! Backends: `core` (tls-core `Session`s in memory, one thread), `blocking`, `mio` and
//! `tokio` (tls-unix over 127.0.0.1 TCP with a relay thread in the middle), `unikernel`
//! (tls-unikernel `TlsSocket`s on smoltcp interfaces over in-memory `wire`s, with a
//! smoltcp TCP relay in the middle).
//!
//! # Adding a backend
//!
//! Write one adapter file in `conformance/`: implement
//! [`Endpoint`](conformance::runner::Endpoint) (handshake, write, flush, read, close,
//! key_update, events: each returns `Ready` or `Pending`) for one side, and
//! [`Backend::run`](conformance::runner::Backend::run), which connects a client and a
//! server through a relay built on [`Tap`](conformance::relay::Tap) (or
//! [`TcpRelay`](conformance::relay::TcpRelay) for TCP) and drives both scripts with
//! `runner::run_threads` (one thread per side) or `runner::run_stepped` (a polled
//! backend). Then add its module below and one line to [`backends`].
//!
//! Environment: `CONFORMANCE_SCENARIOS=a,b` and `CONFORMANCE_BACKENDS=core,mio` run a
//! subset (substring match); `CONFORMANCE_VERBOSE=1` prints every trace.

#[allow(
    unreachable_pub,
    reason = "the modules are the test's own; `pub` shares them between adapters"
)]
mod conformance {
    pub mod relay;
    pub mod runner;
    pub mod scenarios;
    pub mod trace;
    pub mod wire;

    pub mod blocking;
    pub mod core;
    pub mod mio;
    pub mod tokio;
    pub mod unikernel;
}

use std::fmt::Write as _;
use std::time::Instant;

use conformance::relay::Relayed;
use conformance::runner::{Backend, Side};
use conformance::scenarios::{self, Scenario};
use conformance::trace::{first_difference, listing, Entry, Trace};

/// Every backend; the first is the reference.
fn backends() -> Vec<Box<dyn Backend>> {
    vec![
        Box::new(conformance::core::Core),
        Box::new(conformance::blocking::Blocking),
        Box::new(conformance::mio::Mio),
        Box::new(conformance::tokio::Tokio),
        Box::new(conformance::unikernel::Unikernel),
    ]
}

/// Known failures, reported but not fixed yet: (scenario, backend or `"*"`, what). The
/// matrix shows them as `KNOWN`, with their traces printed. An entry for one backend is
/// deterministic: if its failure no longer occurs the suite fails, so the entry is
/// removed when the binding is fixed. A `"*"` entry depends on how bytes are cut (which
/// differs from run to run on the socket backends), so it may pass or fail anywhere.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

fn selected(var: &str, name: &str) -> bool {
    match std::env::var(var) {
        Ok(list) if !list.is_empty() => list.split(',').any(|s| name.contains(s.trim())),
        _ => true,
    }
}

/// One backend's run of a scenario: both sides' traces over all its connections.
struct Run {
    traces: [Trace; 2],
    relay: Vec<Relayed>,
    millis: u128,
}

fn run(backend: &dyn Backend, sc: &Scenario) -> Run {
    let start = Instant::now();
    let configs = sc.setup.configs();
    let mut traces = [Trace::default(), Trace::default()];
    let mut relay = Vec::new();
    let several = sc.connections.len() > 1;
    for (i, conn) in sc.connections.iter().enumerate() {
        let (got, seen) = backend.run(&configs, conn);
        for (t, g) in traces.iter_mut().zip(got) {
            if several {
                t.entries.push(Entry::Connection(i));
            }
            t.entries.extend(g.entries);
            t.events.extend(g.events);
        }
        relay.push(seen);
    }
    Run {
        traces,
        relay,
        millis: start.elapsed().as_millis(),
    }
}

#[test]
fn every_backend_gives_the_same_traces() {
    let backends: Vec<_> = backends()
        .into_iter()
        .enumerate()
        .filter(|(i, b)| *i == 0 || selected("CONFORMANCE_BACKENDS", b.name()))
        .map(|(_, b)| b)
        .collect();
    let verbose = std::env::var_os("CONFORMANCE_VERBOSE").is_some();
    let scenarios: Vec<_> = scenarios::all()
        .into_iter()
        .filter(|s| selected("CONFORMANCE_SCENARIOS", s.name))
        .collect();
    assert!(!scenarios.is_empty(), "no scenario selected");

    let mut failures = Vec::new();
    let mut matrix = format!("{:36}", "scenario");
    for b in &backends {
        write!(matrix, " {:>12}", b.name()).unwrap();
    }
    matrix.push('\n');

    for sc in &scenarios {
        write!(matrix, "{:36}", sc.name).unwrap();
        let mut reference: Option<Run> = None;
        for b in &backends {
            let r = run(&**b, sc);
            let mut problems = Vec::new();
            for (i, seen) in r.relay.iter().enumerate() {
                if let Err(e) = conformance::wire::check_wire(sc, &seen.ends) {
                    problems.push(format!("the wire, connection {i}: {e}"));
                }
                for p in &seen.problems {
                    problems.push(format!("the wire, connection {i}: {p}"));
                }
            }
            for side in Side::BOTH {
                let t = &r.traces[side.index()];
                if let Err(e) = scenarios::check(sc, side, t) {
                    problems.push(format!("{side:?} does not meet the expectation: {e}"));
                }
                if let Some(rf) = &reference {
                    if let Some(d) = first_difference(&rf.traces[side.index()], t) {
                        problems.push(format!("{side:?} differs from {}: {d}", backends[0].name()));
                    }
                }
            }
            let known = KNOWN_DIFFERENCES
                .iter()
                .find(|(s, be, _)| *s == sc.name && (*be == b.name() || *be == "*"));
            let strict = known.is_some_and(|(_, be, _)| *be != "*");
            let cell = match (problems.is_empty(), known) {
                (true, None) => format!("ok {}ms", r.millis),
                (true, Some(_)) if !strict => format!("ok {}ms", r.millis),
                (true, Some(_)) => "FIXED?".to_string(),
                (false, Some(_)) => "KNOWN".to_string(),
                (false, None) => "FAIL".to_string(),
            };
            write!(matrix, " {cell:>12}").unwrap();
            if let (true, true, Some((_, _, what))) = (problems.is_empty(), strict, known) {
                failures.push(format!(
                    "{} on {}: the known difference ({what}) no longer occurs: remove it from \
                     KNOWN_DIFFERENCES",
                    sc.name,
                    b.name()
                ));
            }
            if !problems.is_empty() || verbose {
                let mut msg = format!("{} on {}:\n", sc.name, b.name());
                if let Some((_, _, what)) = known {
                    msg += &format!("  KNOWN DIFFERENCE: {what}\n");
                }
                for p in &problems {
                    msg += &format!("  {p}\n");
                }
                for side in Side::BOTH {
                    msg += &format!("  {side:?} trace:\n{}", listing(&r.traces[side.index()]));
                    if let Some(rf) = reference.as_ref().filter(|_| !problems.is_empty()) {
                        msg += &format!(
                            "  {side:?} reference trace:\n{}",
                            listing(&rf.traces[side.index()])
                        );
                    }
                }
                for (i, seen) in r.relay.iter().enumerate() {
                    msg += &format!("  relay, connection {i}:\n    {}\n", seen.text);
                }
                if problems.is_empty() || known.is_some() {
                    println!("{msg}");
                } else {
                    failures.push(msg);
                }
            }
            if reference.is_none() {
                reference = Some(r);
            }
        }
        matrix.push('\n');
    }
    println!("{matrix}");
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}\n{matrix}",
        failures.len(),
        failures.join("\n")
    );
}
