//! `Session::recv_with` (plaintext read in place) and the exactness of
//! `has_plaintext`.

mod common;

use tls_core::{Error, Limits, ReadStatus, Session};
use tls_test::certs::{KeyKind, Options, TLS12, TLS13};
use tls_test::pair::pattern;
use tls_test::rng::Rng;

/// TLS 1.3 ciphertext per record beyond its plaintext (header 5, type 1, tag 16).
const TLS13_OVERHEAD: usize = 22;
const FRAGMENT: usize = 16_384;

/// A client and a server, handshake done, all output delivered, events drained.
fn sessions(opts: &Options) -> (Session, Session) {
    let (client_config, server_config) = common::configs(KeyKind::EcdsaP256, opts);
    let name = "localhost".try_into().unwrap();
    let mut client = Session::client(client_config, name, Limits::default()).unwrap();
    let mut server = Session::server(server_config, Limits::default()).unwrap();
    while shuttle(&mut client, &mut server, usize::MAX)
        + shuttle(&mut server, &mut client, usize::MAX)
        > 0
    {}
    for s in [&mut client, &mut server] {
        assert!(!s.is_handshaking());
        while s.poll_event().is_some() {}
    }
    (client, server)
}

/// Moves up to `max` bytes of `from`'s output into `to`; returns how many.
fn shuttle(from: &mut Session, to: &mut Session, max: usize) -> usize {
    let out = from.pending_tls();
    let out = &out[..out.len().min(max)];
    let n = to.read_tls(out).unwrap();
    from.tls_written(n);
    n
}

/// Sends all of `data` from `tx` (in `send` calls as large as it takes).
fn send_all(tx: &mut Session, rx: &mut Session, data: &[u8]) {
    let mut sent = 0;
    while sent < data.len() {
        sent += tx.send(&data[sent..]).unwrap();
        shuttle(tx, rx, usize::MAX);
    }
}

#[test]
fn lends_records_in_place_and_keeps_what_is_left() {
    let (mut client, mut server) = sessions(&Options::default());
    let data = pattern(7, 3 * FRAGMENT + 1000);
    send_all(&mut client, &mut server, &data);
    assert!(server.has_plaintext());

    let mut got = Vec::new();
    let mut lent_sizes = Vec::new();
    // Consume a different share of each lend: nothing, a little, all.
    let mut round = 0usize;
    loop {
        let mut offered = 0;
        let result = server.recv_with(|buf| {
            assert!(!buf.is_empty(), "f is called only with data");
            offered = buf.len();
            let take = match round % 3 {
                0 => 0,
                1 => buf.len().min(100),
                _ => buf.len(),
            };
            got.extend_from_slice(&buf[..take]);
            take
        });
        round += 1;
        match result {
            Ok(n) => {
                assert!(offered > 0, "Ok without a lend before close_notify");
                assert!(n <= offered);
                lent_sizes.push(offered);
            }
            Err(Error::WouldBlock) => {
                // The server's inbound buffer is bounded: deliver the rest.
                if shuttle(&mut client, &mut server, usize::MAX) == 0 {
                    break;
                }
            }
            Err(e) => panic!("{e:?}"),
        }
        assert!(round < 1000);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "plaintext differs");
    // Never more than one record's plaintext at once.
    assert!(lent_sizes.iter().all(|&n| n <= FRAGMENT), "{lent_sizes:?}");
    assert!(!server.has_plaintext());
}

#[test]
fn a_lend_that_consumes_nothing_changes_nothing() {
    let (mut client, mut server) = sessions(&Options::default());
    let data = pattern(9, 5000);
    send_all(&mut client, &mut server, &data);
    for _ in 0..3 {
        let mut seen = Vec::new();
        let n = server
            .recv_with(|buf| {
                seen = buf.to_vec();
                0
            })
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(seen, data);
        assert!(server.has_plaintext());
    }
    let mut buf = vec![0; 8000];
    assert_eq!(server.recv(&mut buf).unwrap(), 5000);
    assert_eq!(&buf[..5000], &data[..]);
}

#[test]
fn recv_and_recv_with_interleave_in_order() {
    let (mut client, mut server) = sessions(&Options::default());
    let data = pattern(11, 4 * FRAGMENT);
    send_all(&mut client, &mut server, &data);
    let mut got = Vec::new();
    let mut buf = [0u8; 5000];
    for i in 0.. {
        let n = if i % 2 == 0 {
            server.recv_with(|b| {
                let n = b.len().min(3000);
                got.extend_from_slice(&b[..n]);
                n
            })
        } else {
            server
                .recv(&mut buf)
                .inspect(|&n| got.extend_from_slice(&buf[..n]))
        };
        match n {
            Ok(_) => {}
            Err(Error::WouldBlock) => {
                if shuttle(&mut client, &mut server, usize::MAX) == 0 {
                    break;
                }
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "plaintext differs");
}

#[test]
fn end_of_stream_and_truncation_do_not_call_f() {
    // Clean end: data, then close_notify.
    let (mut client, mut server) = sessions(&Options::default());
    send_all(&mut client, &mut server, b"last words");
    client.close().unwrap();
    shuttle(&mut client, &mut server, usize::MAX);
    let n = server
        .recv_with(|buf| {
            assert_eq!(buf, b"last words");
            buf.len()
        })
        .unwrap();
    assert_eq!(n, 10);
    let mut called = false;
    assert_eq!(
        server.recv_with(|_| {
            called = true;
            0
        }),
        Ok(0)
    );
    assert!(!called);
    assert!(server.peer_has_closed());

    // Truncation: data, then the transport ends without close_notify.
    let (mut client, mut server) = sessions(&Options::default());
    send_all(&mut client, &mut server, b"cut");
    server.read_tls_eof();
    assert_eq!(server.recv_with(|buf| buf.len()), Ok(3));
    let mut called = false;
    let result = server.recv_with(|_| {
        called = true;
        0
    });
    assert_eq!(result, Err(Error::Truncated));
    assert!(!called);
    assert_eq!(server.error(), Some(&Error::Truncated));

    // Nothing yet: WouldBlock, f not called.
    let (_client, mut server) = sessions(&Options::default());
    let result = server.recv_with(|_| panic!("no data was sent"));
    assert_eq!(result, Err(Error::WouldBlock));
}

#[test]
fn data_before_a_corrupt_record_is_lent_then_the_error() {
    let (mut client, mut server) = sessions(&Options::default());
    assert_eq!(client.send(b"intact").unwrap(), 6);
    assert_eq!(client.send(b"corrupt").unwrap(), 7);
    let mut wire = client.pending_tls().to_vec();
    client.tls_written(wire.len());
    // The second record starts after the first (6 bytes of plaintext).
    let second = 6 + TLS13_OVERHEAD;
    wire[second + 7] ^= 0x40;
    server.read_tls(&wire).unwrap();
    assert_eq!(
        server.recv_with(|buf| {
            assert_eq!(buf, b"intact");
            buf.len()
        }),
        Ok(6)
    );
    let result = server.recv_with(|_| panic!("the corrupt record must not be lent"));
    assert!(matches!(result, Err(Error::Tls(_))), "{result:?}");
    assert!(server.has_output(), "the alert is queued");
}

#[test]
#[should_panic(expected = "consumed more plaintext than was lent")]
fn consuming_more_than_lent_panics() {
    let (mut client, mut server) = sessions(&Options::default());
    send_all(&mut client, &mut server, b"abc");
    let _ = server.recv_with(|buf| buf.len() + 1);
}

/// Whether a read finds plaintext now, found by reading: `recv_with` lending nothing back
/// (what it is lent stays for the next read).
fn read_finds_plaintext(session: &mut Session) -> bool {
    let mut lent = false;
    match session.recv_with(|_| {
        lent = true;
        0
    }) {
        Ok(_) | Err(Error::WouldBlock) => lent,
        Err(e) => panic!("{e:?}"),
    }
}

/// `has_plaintext` (no side effects) agrees with what a read finds after every call of a
/// random mix of sends, receives split at random points, reads of both kinds, and writes
/// from the reader (which set decrypted records aside), in TLS 1.3 and 1.2.
#[test]
fn has_plaintext_is_exact_after_every_call() {
    for (seed, versions) in [(1u64, TLS13), (2, TLS12), (3, TLS13), (4, TLS12)] {
        let opts = Options {
            versions: versions.to_vec(),
            ..Options::default()
        };
        let (mut client, mut server) = sessions(&opts);
        let mut rng = Rng::new(seed);
        let data = pattern(seed, 400_000);
        let (mut sent, mut got) = (0usize, Vec::new());
        let mut buf = vec![0u8; 3 * FRAGMENT];
        let mut steps = 0;
        while got.len() < data.len() {
            steps += 1;
            assert!(steps < 200_000, "stalled");
            match rng.below(7) {
                0 | 1 if sent < data.len() => {
                    let n = rng.range(1, 3 * FRAGMENT);
                    let end = data.len().min(sent + n);
                    sent += client.send(&data[sent..end]).unwrap();
                }
                2 | 3 => {
                    let max = rng.range(1, 2 * (FRAGMENT + TLS13_OVERHEAD));
                    shuttle(&mut client, &mut server, max);
                }
                4 => {
                    let n = rng.range(1, buf.len());
                    match server.recv(&mut buf[..n]) {
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                        Err(Error::WouldBlock) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
                5 => {
                    let share = rng.below(3);
                    match server.recv_with(|b| {
                        let k = match share {
                            0 => 0,
                            1 => b.len() / 2,
                            _ => b.len(),
                        };
                        got.extend_from_slice(&b[..k]);
                        k
                    }) {
                        Ok(_) | Err(Error::WouldBlock) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
                _ => {
                    // A write from the server reaches the write state past the
                    // client's records, setting decrypted ones aside.
                    let _ = server.send(b"x").unwrap();
                    let out = server.pending_tls().len();
                    server.tls_written(out);
                }
            }
            let quick = server.has_plaintext();
            assert_eq!(
                server.read_status() == ReadStatus::Ready,
                quick,
                "seed {seed}, step {steps}"
            );
            assert_eq!(
                quick,
                read_finds_plaintext(&mut server),
                "seed {seed}, step {steps}"
            );
        }
        assert!(got == data, "seed {seed}: plaintext differs");
    }
}
