//! tls-core's [`Session`] against a minimal driver over rustls' own unbuffered API.
//!
//! Every case runs twice in the same process, `.../tls-core` and `.../raw`, with the same
//! configs, plaintext sizes and wire copies, so the result to read is the ratio between
//! the two (`benches/report.py` prints it). See `benches/README.md`.
//!
//! * `bulk/<suite>/<size>/{tls-core,raw}`: 1 MiB client to server per iteration, in
//!   `<size>` writes, both sides on one core. `bulk/aes128gcm/64B-coalesced/tls-core` is
//!   tls-core gathering 64-byte writes into full records, to compare with
//!   `bulk/aes128gcm/64B/raw`.
//! * `handshake/<version>_<full|resumed>_<key>/{tls-core,raw}`: one client and one server
//!   from creation to an established, drained pair.
//! * Idle memory (printed first, not timed): live heap bytes of an established pair.
//! * `kx/tls13_full_ecdsa/<x25519mlkem768|x25519>`: tls-core handshakes with the hybrid
//!   and with X25519 alone, and their ClientHello / ServerHello sizes ([`kx`]).
//!
//! `PAIRED=<filter> cargo bench --bench core` skips criterion and times each matching
//! case's two sides alternately instead (see `run_paired`), which holds up better on a
//! shared machine.

use core::hint::black_box;
use core::ops::{Deref, DerefMut};
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, SamplingMode, Throughput};
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, UnbufferedConnectionCommon, UnbufferedStatus,
};
use rustls::{CipherSuite, ClientConfig, CommonState, HandshakeKind, ServerConfig};
use tls_core::{Error, Limits, Session};
use tls_test::alloc_counter::{live_bytes, Counting};
use tls_test::certs::{KeyKind, Options, Pki, TLS12, TLS13};

#[path = "core/kx.rs"]
mod kx;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Plaintext moved client to server per bulk iteration.
const BULK_BYTES: usize = 1 << 20;
/// Plaintext written per batch before the ciphertext goes over the "wire": fits tls-core's
/// default outbound limit (64 KiB) whole, so both sides produce the same records.
const BATCH: usize = 32 * 1024;
/// The application's read buffer on the receiving side.
const APP_BUF: usize = 16 * 1024;

fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("valid name")
}

// ====================================================================== raw rustls driver

/// `process_tls_records` for either side (rustls has one inherent method per side).
trait Process: Deref<Target = CommonState> {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Process for UnbufferedConnectionCommon<ClientConnectionData> {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(incoming)
    }
}

impl Process for UnbufferedConnectionCommon<ServerConnectionData> {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(incoming)
    }
}

/// Where decrypted application data goes: copied into one buffer the application owns,
/// as tls-core's `recv` does (the buffer is "read" whenever the next record would not fit).
struct AppBuf {
    buf: Vec<u8>,
    at: usize,
    received: usize,
}

impl AppBuf {
    fn new() -> Self {
        Self {
            buf: vec![0; APP_BUF],
            at: 0,
            received: 0,
        }
    }

    fn take(&mut self, payload: &[u8]) {
        if self.at + payload.len() > self.buf.len() {
            self.at = 0;
        }
        self.buf[self.at..self.at + payload.len()].copy_from_slice(payload);
        self.at += payload.len();
        self.received += payload.len();
    }
}

/// A minimal, correct driver over one unbuffered connection: the incoming ciphertext is a
/// window over a reused buffer (advanced by `discard`, compacted only when the tail lacks
/// room), outgoing ciphertext accumulates in a reused buffer.
struct Raw<C> {
    conn: C,
    incoming: Vec<u8>,
    start: usize,
    end: usize,
    outgoing: Vec<u8>,
    out_len: usize,
    app: AppBuf,
}

/// Grows `buf` (initialised high-water mark) so that `len + need` bytes fit.
fn reserve(buf: &mut Vec<u8>, len: usize, need: usize) {
    if buf.len() < len + need {
        buf.resize(len + need, 0);
    }
}

impl<C> Raw<C>
where
    C: DerefMut,
    C::Target: Process,
{
    fn new(conn: C) -> Self {
        Self {
            conn,
            incoming: Vec::new(),
            start: 0,
            end: 0,
            outgoing: Vec::new(),
            out_len: 0,
            app: AppBuf::new(),
        }
    }

    /// Ciphertext to send.
    fn output(&self) -> &[u8] {
        &self.outgoing[..self.out_len]
    }

    /// The one copy of received ciphertext into the incoming window.
    fn read_tls(&mut self, wire: &[u8]) {
        if self.incoming.len() - self.end < wire.len() && self.start > 0 {
            self.incoming.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        reserve(&mut self.incoming, self.end, wire.len());
        self.incoming[self.end..self.end + wire.len()].copy_from_slice(wire);
        self.end += wire.len();
    }

    /// Runs the state machine over the incoming window until it needs more input (or has
    /// reached the write state), then encrypts `write` if given.
    fn drive(&mut self, write: Option<&[u8]>) -> Result<(), rustls::Error> {
        let mut write = write;
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process(&mut self.incoming[self.start..self.end]);
            let mut extra = 0;
            let done = match state? {
                ConnectionState::EncodeTlsData(mut st) => {
                    let mut need = 1024;
                    loop {
                        reserve(&mut self.outgoing, self.out_len, need);
                        match st.encode(&mut self.outgoing[self.out_len..]) {
                            Ok(n) => {
                                self.out_len += n;
                                break;
                            }
                            Err(EncodeError::InsufficientSize(e)) => need = e.required_size,
                            Err(e) => panic!("encode: {e}"),
                        }
                    }
                    false
                }
                ConnectionState::TransmitTlsData(st) => {
                    st.done();
                    false
                }
                ConnectionState::ReadTraffic(mut rt) => {
                    while let Some(rec) = rt.next_record() {
                        let rec = rec?;
                        self.app.take(rec.payload);
                        extra += rec.discard;
                    }
                    false
                }
                ConnectionState::WriteTraffic(mut wt) => {
                    if let Some(plain) = write.take() {
                        loop {
                            let room = &mut self.outgoing[self.out_len..];
                            match wt.encrypt(plain, room) {
                                Ok(n) => {
                                    self.out_len += n;
                                    break;
                                }
                                Err(EncryptError::InsufficientSize(e)) => {
                                    reserve(&mut self.outgoing, self.out_len, e.required_size);
                                }
                                Err(e) => panic!("encrypt: {e}"),
                            }
                        }
                    }
                    true
                }
                ConnectionState::PeerClosed => false,
                ConnectionState::BlockedHandshake | ConnectionState::Closed => true,
                _ => panic!("unexpected state"),
            };
            self.start += discard + extra;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            if done {
                assert!(write.is_none(), "write before the handshake completed");
                return Ok(());
            }
        }
    }

    /// Encrypts one application write (one `process_tls_records` call per write, as an
    /// application-facing `send` would).
    fn write(&mut self, plain: &[u8]) {
        self.drive(Some(plain)).expect("raw write");
    }

    /// Drops the driver's buffers, leaving rustls' own state (what an idle connection
    /// must keep).
    fn release_buffers(&mut self) {
        assert!(self.start == self.end && self.out_len == 0);
        self.incoming = Vec::new();
        self.outgoing = Vec::new();
        self.app.buf = Vec::new();
    }
}

type RawClient = Raw<UnbufferedClientConnection>;
type RawServer = Raw<UnbufferedServerConnection>;

/// Moves `from`'s output into `to` and lets `to` process it. Returns whether bytes moved.
fn raw_wire<A, B>(from: &mut Raw<A>, to: &mut Raw<B>) -> bool
where
    A: DerefMut,
    A::Target: Process,
    B: DerefMut,
    B::Target: Process,
{
    if from.out_len == 0 {
        return false;
    }
    to.read_tls(from.output());
    from.out_len = 0;
    to.drive(None).expect("raw receive");
    true
}

fn raw_pair(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (RawClient, RawServer) {
    let mut c = Raw::new(UnbufferedClientConnection::new(client.clone(), server_name()).unwrap());
    let mut s = Raw::new(UnbufferedServerConnection::new(server.clone()).unwrap());
    c.drive(None).expect("client hello");
    while raw_wire(&mut c, &mut s) | raw_wire(&mut s, &mut c) {}
    assert!(!c.conn.is_handshaking() && !s.conn.is_handshaking());
    (c, s)
}

/// One batch of `writes` writes of `size` bytes, then over the wire and read.
#[inline(never)] // a symbol for profilers
fn raw_batch(c: &mut RawClient, s: &mut RawServer, data: &[u8], writes: usize) {
    let before = s.app.received;
    for _ in 0..writes {
        c.write(data);
    }
    raw_wire(c, s);
    assert_eq!(s.app.received - before, writes * data.len());
}

// ====================================================================== tls-core

/// Moves `from`'s pending output into `to` (as much as it takes) and reads what it
/// decrypted into `app`. Returns (ciphertext bytes moved, plaintext bytes read).
fn core_wire(from: &mut Session, to: &mut Session, app: &mut [u8]) -> (usize, usize) {
    let mut moved = 0;
    let mut read = 0;
    loop {
        let out = from.pending_tls();
        if out.is_empty() {
            break;
        }
        let n = to.read_tls(out).expect("tls-core receive");
        from.tls_written(n);
        moved += n;
        let r = core_read(to, app);
        read += r;
        assert!(n > 0 || r > 0, "tls-core transfer stalled");
    }
    (moved, read)
}

/// Reads until `recv` says [`Error::WouldBlock`].
fn core_read(s: &mut Session, app: &mut [u8]) -> usize {
    let mut read = 0;
    loop {
        match s.recv(app) {
            Ok(0) => return read,
            Ok(n) => read += n,
            Err(Error::WouldBlock) => return read,
            Err(e) => panic!("tls-core recv: {e:?}"),
        }
    }
}

fn core_pair(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (Session, Session) {
    let mut c = Session::client(client.clone(), server_name(), Limits::default()).unwrap();
    let mut s = Session::server(server.clone(), Limits::default()).unwrap();
    let mut app = [0u8; 64];
    while core_wire(&mut c, &mut s, &mut app).0 + core_wire(&mut s, &mut c, &mut app).0 > 0 {}
    while c.poll_event().is_some() {}
    while s.poll_event().is_some() {}
    assert!(!c.is_handshaking() && !s.is_handshaking());
    (c, s)
}

/// One batch of `writes` writes, then over the wire and read.
#[inline(never)] // a symbol for profilers
fn core_batch(c: &mut Session, s: &mut Session, data: &[u8], writes: usize, app: &mut [u8]) {
    for _ in 0..writes {
        let n = c.send(data).expect("tls-core send");
        assert_eq!(n, data.len(), "batch exceeds the outbound limit");
    }
    c.flush().expect("tls-core flush");
    let (_, read) = core_wire(c, s, app);
    assert_eq!(read, writes * data.len());
}

// ====================================================================== configs

fn configs(kind: KeyKind, opts: &Options) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let pki = Pki::new(kind, &[]);
    (
        Arc::new(pki.client_config(opts)),
        Arc::new(pki.server_config(opts)),
    )
}

fn tls13_suite(suite: CipherSuite) -> Options {
    Options {
        versions: TLS13.to_vec(),
        suites: vec![suite],
        ..Options::default()
    }
}

// ====================================================================== cases

/// One iteration of one side of a case.
type Routine = Box<dyn FnMut()>;

/// A tls-core routine and its raw-rustls baseline, doing the same work.
struct Case {
    /// `group/case`; the benchmarks are `<name>/tls-core` and `<name>/raw`.
    name: String,
    throughput: Throughput,
    core: Routine,
    raw: Routine,
    /// False when `raw` repeats another case's baseline (not benchmarked again).
    bench_raw: bool,
}

fn bulk_cases() -> Vec<Case> {
    let suites = [
        ("aes128gcm", CipherSuite::TLS13_AES_128_GCM_SHA256),
        ("aes256gcm", CipherSuite::TLS13_AES_256_GCM_SHA384),
        (
            "chacha20poly1305",
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        ),
    ];
    let sizes = [(64, "64B"), (1024, "1KiB"), (16 * 1024, "16KiB")];
    let throughput = Throughput::Bytes(BULK_BYTES as u64);
    let batches = BULK_BYTES / BATCH;
    let mut cases = Vec::new();
    for (suite_name, suite) in suites {
        let (cc, sc) = configs(KeyKind::EcdsaP256, &tls13_suite(suite));
        for (size, size_name) in sizes {
            let writes = BATCH / size;
            let core = |coalesce: bool| -> Routine {
                let (mut client, mut server) = core_pair(&cc, &sc);
                assert_eq!(client.handshake_info().map(|i| i.cipher_suite), Some(suite));
                client.set_coalescing(coalesce).unwrap();
                let data = vec![0x5a; size];
                let mut app = vec![0u8; APP_BUF];
                Box::new(move || {
                    for _ in 0..batches {
                        core_batch(&mut client, &mut server, black_box(&data), writes, &mut app);
                    }
                })
            };
            let raw = || -> Routine {
                let (mut client, mut server) = raw_pair(&cc, &sc);
                let data = vec![0x5a; size];
                Box::new(move || {
                    for _ in 0..batches {
                        raw_batch(&mut client, &mut server, black_box(&data), writes);
                    }
                })
            };
            cases.push(Case {
                name: format!("bulk/{suite_name}/{size_name}"),
                throughput: throughput.clone(),
                core: core(false),
                raw: raw(),
                bench_raw: true,
            });
            if size == 64 && suite == CipherSuite::TLS13_AES_128_GCM_SHA256 {
                // Compared with raw's 64-byte writes, one record each.
                cases.push(Case {
                    name: format!("bulk/{suite_name}/64B-coalesced"),
                    throughput: throughput.clone(),
                    core: core(true),
                    raw: raw(),
                    bench_raw: false,
                });
            }
        }
    }
    cases
}

fn handshake_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (version_name, version) in [("tls13", TLS13), ("tls12", TLS12)] {
        for (key_name, kind) in [("ecdsa", KeyKind::EcdsaP256), ("rsa", KeyKind::Rsa2048)] {
            for resumption in [false, true] {
                let opts = Options {
                    versions: version.to_vec(),
                    resumption,
                    ..Options::default()
                };
                let (cc, sc) = configs(kind, &opts);
                let kind_name = if resumption { "resumed" } else { "full" };

                // Warm the client's session cache, and check what each side negotiates.
                let expect = if resumption {
                    HandshakeKind::Resumed
                } else {
                    HandshakeKind::Full
                };
                drop(core_pair(&cc, &sc));
                for _ in 0..2 {
                    let (client, _) = core_pair(&cc, &sc);
                    assert_eq!(client.handshake_info().unwrap().resumed, resumption);
                    let (client, _) = raw_pair(&cc, &sc);
                    assert_eq!(client.conn.handshake_kind(), Some(expect));
                }

                let (c1, s1) = (cc.clone(), sc.clone());
                cases.push(Case {
                    name: format!("handshake/{version_name}_{kind_name}_{key_name}"),
                    throughput: Throughput::Elements(1),
                    core: Box::new(move || drop(black_box(core_pair(&c1, &s1)))),
                    raw: Box::new(move || drop(black_box(raw_pair(&cc, &sc)))),
                    bench_raw: true,
                });
            }
        }
    }
    cases
}

fn bench(c: &mut Criterion, group_name: &str, cases: &mut [Case]) {
    let mut group = c.benchmark_group(group_name);
    // Bulk iterations take up to ~10 ms: equal-sized samples keep the run short.
    group.sampling_mode(SamplingMode::Flat);
    for case in cases {
        let name = case
            .name
            .strip_prefix(group_name)
            .unwrap()
            .trim_start_matches('/');
        group.throughput(case.throughput.clone());
        group.bench_function(format!("{name}/tls-core"), |b| b.iter(&mut case.core));
        if case.bench_raw {
            group.bench_function(format!("{name}/raw"), |b| b.iter(&mut case.raw));
        }
    }
    group.finish();
}

// ====================================================================== paired mode

/// Times `core` and `raw` alternately (order swapped every round) for about `budget`,
/// so both see the same machine load; returns the median time per iteration of each
/// and the median of the per-round ratios raw/core.
fn paired(case: &mut Case, budget: Duration) -> (f64, f64, f64) {
    let time = |f: &mut Routine, reps: u32| {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(reps)
    };
    time(&mut case.core, 2);
    time(&mut case.raw, 2);
    // Slices of a few milliseconds: long enough to time, short enough to interleave.
    let one = time(&mut case.core, 1);
    let reps = (3e6 / one).ceil().clamp(1.0, 10_000.0) as u32;
    let (mut core, mut raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while (start.elapsed() < budget || ratios.len() < 20) && ratios.len() < 2000 {
        let (c, r) = if ratios.len() % 2 == 0 {
            let c = time(&mut case.core, reps);
            (c, time(&mut case.raw, reps))
        } else {
            let r = time(&mut case.raw, reps);
            (time(&mut case.core, reps), r)
        };
        core.push(c);
        raw.push(r);
        ratios.push(r / c);
    }
    (median(&mut core), median(&mut raw), median(&mut ratios))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `PAIRED=<filter>`: the paired measurement of every case whose name contains the
/// filter, printed and saved as `paired.json` next to criterion's results.
fn run_paired(filter: &str, cases: &mut [Case]) {
    let budget = std::env::var("PAIRED_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs_f64);
    println!(
        "{:<32} {:>14} {:>14} {:>7}",
        "paired case", "tls-core", "raw", "ratio"
    );
    let mut json = Vec::new();
    for case in cases.iter_mut().filter(|c| c.name.contains(filter)) {
        let (core, raw, ratio) = paired(case, budget);
        println!(
            "{:<32} {:>11.1} us {:>11.1} us {ratio:>7.3}",
            case.name,
            core / 1e3,
            raw / 1e3
        );
        json.push(format!(
            "\"{}\":{{\"core_ns\":{core:.1},\"raw_ns\":{raw:.1},\"ratio\":{ratio:.4}}}",
            case.name
        ));
    }
    if let Some(dir) = criterion_dir() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("paired.json"), format!("{{{}}}", json.join(",")));
        }
    }
}

// ====================================================================== idle memory

/// Live heap bytes of (client, server) built by `make`, measured by dropping the server
/// and then the client. `make` runs once before measuring to warm lazy statics.
fn measure<C, S>(mut make: impl FnMut() -> (C, S)) -> (isize, isize) {
    drop(make());
    let before = live_bytes();
    let (client, server) = make();
    let with_both = live_bytes();
    drop(server);
    let with_client = live_bytes();
    drop(client);
    (with_client - before, with_both - with_client)
}

fn idle_memory() {
    let session = size_of::<Session>() as isize;
    let raw_client = size_of::<UnbufferedClientConnection>() as isize;
    let raw_server = size_of::<UnbufferedServerConnection>() as isize;
    println!(
        "idle established session (ECDSA P-256, resumption off): bytes = live heap + the \
         struct itself (Session {session} B; raw UnbufferedClientConnection {raw_client} B, \
         UnbufferedServerConnection {raw_server} B)"
    );
    println!(
        "{:<40} {:>16} {:>16} {:>7}",
        "case", "client", "server", "pair"
    );
    let mut rows = Vec::new();
    for (version_name, version) in [("tls13", TLS13), ("tls12", TLS12)] {
        let opts = Options {
            versions: version.to_vec(),
            ..Options::default()
        };
        let (cc, sc) = configs(KeyKind::EcdsaP256, &opts);
        let data = vec![0x5a; 16 * 1024];
        let core = (session, session);
        let raw = (raw_client, raw_server);

        // Idle = the transport has nothing to read: the session gives back its empty
        // buffers (`release_buffers`, which a binding's "read would block" triggers).
        let heap = measure(|| {
            let (mut c, mut s) = core_pair(&cc, &sc);
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((
            format!("{version_name}/after-handshake/tls-core"),
            heap,
            core,
        ));
        let heap = measure(|| {
            let (mut c, mut s) = raw_pair(&cc, &sc);
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((format!("{version_name}/after-handshake/raw"), heap, raw));
        // After 64 KiB each way in 16 KiB writes: are transfer buffers given back?
        let heap = measure(|| {
            let (mut c, mut s) = core_pair(&cc, &sc);
            let mut app = vec![0u8; APP_BUF];
            for _ in 0..2 {
                core_batch(&mut c, &mut s, &data, 2, &mut app);
                core_batch(&mut s, &mut c, &data, 2, &mut app);
            }
            drop(app);
            while c.poll_event().is_some() {}
            while s.poll_event().is_some() {}
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((
            format!("{version_name}/after-64KiB-each-way/tls-core"),
            heap,
            core,
        ));
        let heap = measure(|| {
            let (mut c, mut s) = raw_pair(&cc, &sc);
            for _ in 0..4 {
                c.write(&data);
                raw_wire(&mut c, &mut s);
                s.write(&data);
                raw_wire(&mut s, &mut c);
            }
            c.release_buffers();
            s.release_buffers();
            (c, s)
        });
        rows.push((
            format!("{version_name}/after-64KiB-each-way/raw"),
            heap,
            raw,
        ));
    }
    let mut json = String::from("{");
    for (i, (name, (hc, hs), (ic, is))) in rows.iter().enumerate() {
        let (client, server) = (hc + ic, hs + is);
        println!(
            "{name:<40} {:>16} {:>16} {:>7}",
            format!("{hc}+{ic}={client}"),
            format!("{hs}+{is}={server}"),
            client + server
        );
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "\"{name}\":{{\"client_heap\":{hc},\"client\":{client},\
             \"server_heap\":{hs},\"server\":{server}}}"
        ));
    }
    json.push('}');
    println!("(raw: the rustls connections alone, its driver's buffers dropped)");
    // Saved next to criterion's results for benches/report.py.
    if let Some(dir) = criterion_dir() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("idle-memory.json"), json);
        }
    }
}

/// Where criterion writes its results: `$CARGO_TARGET_DIR/criterion`, else the target
/// directory this binary was built in (`target/<profile>/deps/core-*`).
fn criterion_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("CRITERION_HOME") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(std::path::PathBuf::from(dir).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.parent()?.join("criterion"))
}

fn main() {
    let paired_filter = std::env::var("PAIRED").ok();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    if paired_filter.is_none() {
        criterion = criterion.configure_from_args();
    }
    if !std::env::args().any(|a| a == "--list") {
        idle_memory();
        kx::print_sizes();
    }
    let mut bulk = bulk_cases();
    let mut handshakes = handshake_cases();
    if let Some(filter) = paired_filter {
        bulk.append(&mut handshakes);
        run_paired(&filter, &mut bulk);
        if "kx/tls13_full_ecdsa".contains(filter.as_str()) {
            let budget = std::env::var("PAIRED_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(Duration::from_secs(2), Duration::from_secs_f64);
            kx::run_paired(budget);
        }
        return;
    }
    bench(&mut criterion, "bulk", &mut bulk);
    bench(&mut criterion, "handshake", &mut handshakes);
    kx::bench(&mut criterion);
    criterion.final_summary();
}
