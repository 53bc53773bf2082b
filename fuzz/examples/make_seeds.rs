//! Writes the committed seed corpus, `fuzz/seeds/<target>/<name>`: scripts in each
//! target's format (see `tlsflow_fuzz::session`, `framing` and `pump`), some carrying real
//! first flights captured from a handshake for the raw-mode scripts.
//!
//! Run from `fuzz/`: `cargo +nightly run --example make_seeds`. Flights hold random values
//! and a throwaway PKI, so a rerun writes different raw seeds; the other scripts are the same.
//! The `regress_*` seeds are not written here: they are inputs that crashed a target, kept
//! by hand so every run replays them.

use std::fs;
use std::path::Path;

use tlsflow_fuzz::session::op;
use tlsflow_fuzz::{client, configs, limits, server, transfer, Flavour};

fn u16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

/// A script building helper: an opcode with its arguments.
struct Script(Vec<u8>);

impl Script {
    fn new(header: &[u8]) -> Self {
        Self(header.to_vec())
    }
    fn op(mut self, code: u8, args: &[u8]) -> Self {
        self.0.push(code);
        self.0.extend_from_slice(args);
        self
    }
    fn op16(self, code: u8, v: u16) -> Self {
        self.op(code, &u16(v))
    }
    /// `INJECT` in chunks of at most 255 bytes.
    fn inject(mut self, bytes: &[u8]) -> Self {
        for chunk in bytes.chunks(255) {
            self.0.push(op::INJECT);
            self.0.push(chunk.len() as u8);
            self.0.extend_from_slice(chunk);
        }
        self
    }
}

/// The client's first flight and the server's answer to it, for `flavour`.
fn flights(flavour: Flavour) -> (Vec<u8>, Vec<u8>) {
    let (cc, sc) = configs(flavour);
    let mut c = client(cc, limits(0));
    let mut s = server(sc, limits(0));
    let hello = c.pending_tls().to_vec();
    transfer(&mut c, &mut s);
    (hello, s.pending_tls().to_vec())
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    fs::create_dir_all(&dir).expect("seed dir");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn session_seeds(dir: &Path, target: &str, captured: &[(u8, Vec<u8>)]) {
    let full = |header: u8| {
        Script::new(&[header])
            .op(op::PUMP, &[])
            .op16(op::PEER_SEND, 1000)
            .op16(op::SEND, 500)
            .op(op::PUMP, &[])
            .op(op::PEER_KEY_UPDATE, &[])
            .op(op::PUMP, &[])
            .op16(op::PEER_SEND, 17_000)
            .op(op::PEER_CLOSE, &[])
            .op(op::PUMP, &[])
            .op(op::CLOSE, &[])
            .op(op::PUMP, &[])
    };
    write(
        dir,
        target,
        "handshake",
        &Script::new(&[0]).op(op::PUMP, &[]).0,
    );
    write(dir, target, "tls13_full", &full(0x01).0);
    write(dir, target, "tls12_full", &full(0x02).0);
    write(dir, target, "mtls_alpn_ed25519", &full(0x1d).0);
    write(dir, target, "small_limits", &full(0x41).0);
    // Splits: the peer's data in small pieces through both inputs, reads in small chunks.
    let mut split = Script::new(&[0x81])
        .op(op::PUMP, &[])
        .op16(op::PEER_SEND, 5000)
        .op(op::PEER_FLUSH, &[]);
    for i in 0..12u8 {
        split = split
            .op(
                op::DELIVER,
                &[0, 7 + i, if i % 2 == 0 { 0 } else { 1 | (i << 2) }],
            )
            .op16(op::RECV, 100);
    }
    let split = split
        .op(op::DELIVER, &[0xff, 0xff, 3])
        .op16(op::RECV, 9000)
        .op(op::EOF, &[])
        .op16(op::RECV, 10);
    write(dir, target, "splits_then_eof", &split.0);
    // A mutated byte in the peer's first flight, and in a data record.
    let mutate_hello = Script::new(&[0x01])
        .op(op::MUTATE, &[0, 50, 0x01])
        .op(op::PUMP, &[]);
    write(dir, target, "mutate_first_flight", &mutate_hello.0);
    let mutate_data = Script::new(&[0x02])
        .op(op::PUMP, &[])
        .op16(op::PEER_SEND, 300)
        .op(op::MUTATE, &[0, 20, 0x80])
        .op(op::PUMP, &[]);
    write(dir, target, "mutate_data_record", &mutate_data.0);
    let replay = Script::new(&[0x01])
        .op(op::PUMP, &[])
        .op16(op::PEER_SEND, 100)
        .op(op::REPLAY, &[0, 0, 0, 122])
        .op(op::PUMP, &[]);
    write(dir, target, "replay_record", &replay.0);
    let drop = Script::new(&[0x01])
        .op(op::PUMP, &[])
        .op16(op::PEER_SEND, 100)
        .op(op::DROP, &[0, 3, 2])
        .op(op::PUMP, &[]);
    write(dir, target, "drop_bytes", &drop.0);
    // Record headers of odd lengths after the handshake.
    for (name, ctype, len) in [
        ("record_max_len", 0x17u8, 0xffffu16),
        ("record_empty_alert", 0x15, 0),
        ("record_ccs", 0x14, 1),
    ] {
        // INJECT_RECORD's arguments: type, version, length field, payload length, payload,
        // position in the wire.
        let mut args = vec![ctype, 3, 3];
        args.extend_from_slice(&u16(len));
        args.extend_from_slice(&[3, 1, 0, 0, 0, 0]);
        let bytes = Script::new(&[0x01])
            .op(op::PUMP, &[])
            .op(op::INJECT_RECORD, &args)
            .op(op::PUMP, &[])
            .0;
        write(dir, target, name, &bytes);
    }
    for (header, flight) in captured {
        let s = Script::new(&[0x20 | header])
            .inject(flight)
            .op(op::DELIVER, &[0xff, 0xff, 0])
            .op16(op::RECV, 100);
        write(dir, target, &format!("raw_flight_{header}"), &s.0);
    }
}

fn main() {
    // Files are overwritten, never removed: `regress_*` seeds are crash inputs kept by hand.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");

    // Raw seeds: what a real peer sends first, for TLS 1.3 and TLS 1.2.
    let mut hellos = Vec::new();
    let mut answers = Vec::new();
    for header in [1u8, 2] {
        let (hello, answer) = flights(Flavour::from_bits(header));
        hellos.push((header, hello));
        answers.push((header, answer));
    }
    session_seeds(&dir, "server_receive", &hellos);
    session_seeds(&dir, "client_receive", &answers);

    // record_framing, queue part.
    let mut q = vec![0u8];
    for i in 0..40u8 {
        let v = u16(u16::from(i) * 97 + 3);
        q.push(i % 8);
        q.extend_from_slice(&v);
        q.extend_from_slice(&v);
    }
    write(&dir, "record_framing", "queue_mix", &q);
    write(
        &dir,
        "record_framing",
        "queue_compact",
        &[
            0, 0, 0x10, 0, 1, 0x0f, 0xff, 3, 0x10, 0, 0x08, 0, 4, 0x03, 0, 5, 7,
        ],
    );
    // record_framing, stream part: several sizes, split deliveries, reads.
    for (name, header) in [
        ("stream_tls13", 0x01u8),
        ("stream_tls12_small", 0x42),
        ("stream_server", 0x61),
        ("stream_fragmented_peer", 0x09),
        ("stream_fragmented_peer_small_limits", 0x69),
    ] {
        let mut s = vec![1, header];
        for size in [1u16, 16_384, 16_385, 40_000, 300] {
            s.push(0);
            s.extend_from_slice(&u16(size));
            s.extend_from_slice(&[1, 0, 200, 2, 0x10, 0, 0x00, 0x33, 3, 0x01, 0x00, 4]);
        }
        s.extend_from_slice(&[2, 0xff, 0xff, 0xff, 0xff, 3, 0x4e, 0x20]);
        write(&dir, "record_framing", name, &s);
    }
    write(
        &dir,
        "record_framing",
        "stream_bad_header",
        &[
            1, 0x01, 0, 0, 100, 5, 0x17, 0xff, 0xff, 0, 0, 1, 0xff, 0xff, 3, 1, 0,
        ],
    );

    // unix_pump: both flavours and roles, clean and adversarial transports.
    let ops_clean: &[u8] = &[
        0, 2, 0x03, 0xe8, 7, 0x07, 0xd0, 1, 0x10, 0, 9, 6, 1, 0x10, 0, 8, 1, 0x10, 0, 5,
    ];
    for (name, h0, h1) in [
        ("blocking_client", 0x80u8, 0u8),
        ("blocking_server_tls12", 0x89, 0),
        ("nonblocking_client_tls13", 0x86, 4),
        ("nonblocking_server_small", 0x83, 1),
    ] {
        let mut s = vec![h0, h1, 0];
        s.extend_from_slice(ops_clean);
        write(&dir, "unix_pump", name, &s);
        // The same with a misbehaving transport: WouldBlock, Interrupted, short reads and
        // writes, a reset, a zero write.
        let mut s = vec![h0, h1, 24];
        s.extend_from_slice(&[
            0, 1, 2, 10, 0x7a, 5, 0, 2, 1, 0x22, 3, 4, 0, 0x12, 0x32, 1, 0x72, 2, 0, 0, 1, 2, 0x0a,
            4,
        ]);
        s.extend_from_slice(ops_clean);
        write(&dir, "unix_pump", &format!("{name}_adversarial"), &s);
    }
    // EOF without close_notify in the middle of data, and a cut inside a record.
    write(
        &dir,
        "unix_pump",
        "eof_mid_stream",
        &[
            0x06, 0, 0, 0, 7, 0x10, 0, 1, 0x01, 0, 10, 1, 0x40, 0, 1, 0x40, 0,
        ],
    );
    write(
        &dir,
        "unix_pump",
        "cut_in_record",
        &[0x82, 0, 0, 0, 7, 0x10, 0, 12, 0x00, 0x99, 1, 0x40, 0],
    );
    write(
        &dir,
        "unix_pump",
        "corrupt_record",
        &[0x86, 0, 0, 0, 7, 0x01, 0, 11, 0, 9, 0x40, 1, 0x40, 0],
    );
}
