//! `Session::read_status`: exact after every call, through clean ends, truncations and
//! failures, in TLS 1.3 and 1.2.

mod common;

use tls_core::{Error, Limits, ReadStatus, Session};
use tls_test::certs::{KeyKind, TLS12, TLS13};
use tls_test::pair::pattern;
use tls_test::rng::Rng;

const FRAGMENT: usize = 16_384;

/// A client and a server, handshake done, all output delivered.
fn sessions(versions: common::Versions<'_>) -> (Session, Session) {
    let (client_config, server_config) =
        common::configs(KeyKind::EcdsaP256, &common::version(versions));
    let name = "localhost".try_into().unwrap();
    let mut client = Session::client(client_config, name, Limits::default()).unwrap();
    let mut server = Session::server(server_config, Limits::default()).unwrap();
    while shuttle(&mut client, &mut server, usize::MAX, false)
        + shuttle(&mut server, &mut client, usize::MAX, false)
        > 0
    {}
    assert!(!client.is_handshaking() && !server.is_handshaking());
    (client, server)
}

/// Moves up to `max` bytes of `from`'s output into `to` (with one bit of its last
/// byte flipped if `corrupt`); returns how many. Errors of `to` are left for `read_status` to report.
fn shuttle(from: &mut Session, to: &mut Session, max: usize, corrupt: bool) -> usize {
    let pending = from.pending_tls();
    let mut out = pending[..pending.len().min(max)].to_vec();
    // Only the last byte of all pending output: a copy flipped again each time until
    // the receiver has taken it.
    if corrupt && !out.is_empty() && out.len() == pending.len() {
        let at = out.len() - 1;
        out[at] ^= 0x40;
    }
    let n = to.read_tls(&out).unwrap_or(out.len());
    from.tls_written(n);
    n
}

/// Checks `read_status` against what a read finds (`recv_with` lending nothing back, so
/// what it is lent stays for the next read), and that the read did not change it.
fn check(session: &mut Session, context: &str) -> ReadStatus {
    let status = session.read_status();
    let mut lent = false;
    let found = session.recv_with(|_| {
        lent = true;
        0
    });
    match status {
        ReadStatus::Ready => assert!(lent, "{context}: Ready, but a read found {found:?}"),
        ReadStatus::NeedInput => assert_eq!(found, Err(Error::WouldBlock), "{context}"),
        ReadStatus::Ended => assert_eq!(found, Ok(0), "{context}"),
        ReadStatus::Truncated => assert_eq!(found, Err(Error::Truncated), "{context}"),
        ReadStatus::Failed => {
            let e = found.expect_err(context);
            assert!(e.is_fatal() && e != Error::Truncated, "{context}: {e:?}");
            assert_eq!(session.error(), Some(&e), "{context}");
        }
        other => panic!("{context}: unknown status {other:?}"),
    }
    if status != ReadStatus::Ready {
        assert!(!lent, "{context}: {status:?}, but plaintext was lent");
    }
    assert_eq!(
        session.read_status(),
        status,
        "{context}: a read changed it"
    );
    status
}

/// How a run ends once the client has sent everything.
#[derive(Clone, Copy, Debug)]
enum End {
    /// The client sends close_notify.
    Close,
    /// The server's transport ends, at a random point, without close_notify.
    Eof,
    /// A bit of the client's ciphertext is flipped on its way, at a random point.
    Corrupt,
}

/// Random sends, partial deliveries and reads of both kinds, then `end`; the status is
/// checked after every call until it is final.
fn run(seed: u64, versions: common::Versions<'_>, end: End) {
    let (mut client, mut server) = sessions(versions);
    let mut rng = Rng::new(seed);
    let data = pattern(seed, 200_000);
    let (mut sent, mut got, mut ended) = (0usize, Vec::new(), false);
    let mut buf = vec![0u8; 3 * FRAGMENT];
    for step in 0.. {
        assert!(step < 200_000, "seed {seed}: stalled");
        let context = format!("seed {seed} {end:?}, step {step}");
        match rng.below(6) {
            0 if sent < data.len() => {
                let n = rng.range(1, 3 * FRAGMENT);
                let stop = data.len().min(sent + n);
                sent += client.send(&data[sent..stop]).unwrap();
            }
            0 if !ended => {
                ended = true;
                match end {
                    End::Close => client.close().unwrap(),
                    End::Eof => server.read_tls_eof(),
                    End::Corrupt => {
                        if !client.has_output() {
                            // A record to corrupt (its byte never arrives).
                            assert_eq!(client.send(b"!"), Ok(1));
                        }
                        shuttle(&mut client, &mut server, usize::MAX, true);
                    }
                }
            }
            1 | 2 if !(ended && matches!(end, End::Eof)) => {
                let max = rng.range(1, 2 * FRAGMENT);
                let corrupt = ended && matches!(end, End::Corrupt);
                shuttle(&mut client, &mut server, max, corrupt);
            }
            3 => {
                let n = rng.range(1, buf.len());
                if let Ok(k) = server.recv(&mut buf[..n]) {
                    got.extend_from_slice(&buf[..k]);
                }
            }
            4 => {
                let share = rng.below(3);
                let _ = server.recv_with(|b| {
                    let k = [0, b.len() / 2, b.len()][share];
                    got.extend_from_slice(&b[..k]);
                    k
                });
            }
            _ => {}
        }
        let status = check(&mut server, &context);
        if !matches!(status, ReadStatus::Ready | ReadStatus::NeedInput) {
            let expected = match end {
                End::Close => ReadStatus::Ended,
                End::Eof => ReadStatus::Truncated,
                End::Corrupt => ReadStatus::Failed,
            };
            assert_eq!(status, expected, "{context}");
            assert!(data.starts_with(&got), "{context}: plaintext differs");
            if matches!(end, End::Close) {
                assert_eq!(got.len(), data.len(), "{context}: not all read");
            }
            return;
        }
    }
}

#[test]
fn read_status_is_exact_through_a_clean_end() {
    for (seed, versions) in [(1u64, TLS13), (2, TLS12), (3, TLS13)] {
        run(seed, versions, End::Close);
    }
}

#[test]
fn read_status_is_exact_through_a_truncation() {
    for (seed, versions) in [(4u64, TLS13), (5, TLS12), (6, TLS13)] {
        run(seed, versions, End::Eof);
    }
}

#[test]
fn read_status_is_exact_through_a_failure() {
    for (seed, versions) in [(7u64, TLS13), (8, TLS12), (9, TLS13)] {
        run(seed, versions, End::Corrupt);
    }
}

#[test]
fn read_status_during_the_handshake() {
    let (client_config, server_config) =
        common::configs(KeyKind::EcdsaP256, &common::version(TLS13));
    let name = "localhost".try_into().unwrap();
    let client = Session::client(client_config, name, Limits::default()).unwrap();
    let mut server = Session::server(server_config, Limits::default()).unwrap();
    assert_eq!(client.read_status(), ReadStatus::NeedInput);
    assert_eq!(server.read_status(), ReadStatus::NeedInput);
    server.read_tls_eof();
    assert_eq!(server.read_status(), ReadStatus::Truncated);
    assert_eq!(server.error(), Some(&Error::Truncated));
}
