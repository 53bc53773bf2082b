//! `record_framing`: tls-core's inbound buffering and record framing.
//!
//! The first byte picks the part:
//!
//! * even: **queue** — tls-core's `ByteQueue` (through its `cfg(fuzzing)` module) under arbitrary
//!   sequences of extend, consume, truncate, lend-and-commit, read and release, against a
//!   `VecDeque` model; its allocation must stay within twice the most it ever had to hold.
//! * odd: **stream** — after a real handshake, the peer sends records of sizes the script
//!   picks and they reach the session in splits the script picks, through `read_tls` or
//!   `tls_read_buffer` + partial `commit_tls_read` (junk in the uncommitted rest), with reads
//!   in chunks and `release_buffers` in between; the peer may cut its records to 64 bytes,
//!   so that handshake messages span records. Model: the plaintext stream. Nothing may
//!   fail, nothing may stall, every byte must arrive in order; `tls_read_buffer` never lends
//!   more than the inbound limit. The script may also insert one record header of any
//!   length field at any point, after which the session must fail with a typed error or
//!   keep delivering a prefix of the stream.

use std::collections::VecDeque;
use std::sync::Arc;

use tls_core::{Error, Limits, Session};

use crate::{assert_stream, client, configs, limits, server, stream, Flavour, Input};
use tls_core::fuzzing::ByteQueue;

/// Runs one script.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    if input.u8() & 1 == 0 {
        queue(&mut input);
    } else {
        session_stream(&mut input);
    }
}

fn queue(input: &mut Input<'_>) {
    let mut q = ByteQueue::new();
    let mut model: VecDeque<u8> = VecDeque::new();
    let mut next = 0u8;
    let mut peak = 0usize;
    let mut ops = 0;
    while !input.is_empty() && ops < 1024 {
        ops += 1;
        match input.u8() % 8 {
            0 => {
                let n = usize::from(input.u16()) % 5000;
                let src: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                next = next.wrapping_add(n as u8);
                peak = peak.max(model.len() + n);
                q.extend_from_slice(&src);
                model.extend(src);
            }
            1 => {
                let n = usize::from(input.u16()) % (model.len() + 1);
                q.consume(n);
                model.drain(..n);
            }
            2 => {
                let len = usize::from(input.u16());
                q.truncate(len);
                model.truncate(len);
            }
            3 => {
                // Lend `n`, write `k <= n`, commit `k`.
                let n = usize::from(input.u16()) % 5000;
                let k = usize::from(input.u16()) % (n + 1);
                peak = peak.max(model.len() + n);
                let spare = q.spare_mut(n);
                assert_eq!(spare.len(), n, "spare_mut lent the wrong size");
                for (i, b) in spare.iter_mut().enumerate() {
                    *b = if i < k {
                        next.wrapping_add(i as u8)
                    } else {
                        0xee
                    };
                }
                q.commit(k);
                model.extend((0..k).map(|i| next.wrapping_add(i as u8)));
                next = next.wrapping_add(k as u8);
            }
            4 => {
                let size = usize::from(input.u16()) % 5000;
                let mut dst = vec![0u8; size];
                let n = q.read_into(&mut dst);
                assert_eq!(n, size.min(model.len()), "read_into count");
                let expected: Vec<u8> = model.drain(..n).collect();
                assert_eq!(&dst[..n], &expected[..], "read_into bytes");
            }
            5 => {
                q.release_if_empty();
                if model.is_empty() {
                    assert_eq!(q.capacity(), 0, "an empty queue kept its allocation");
                    peak = 0;
                }
            }
            6 => {
                let (pos, mask) = (usize::from(input.u16()), input.u8());
                if !model.is_empty() {
                    let at = pos % model.len();
                    q.data_mut()[at] ^= mask;
                    model[at] ^= mask;
                }
            }
            _ => {
                let spare = q.initialized_spare();
                // Lending what is already initialised must not grow the allocation.
                let before = q.capacity();
                let _ = q.spare_mut(spare);
                assert_eq!(
                    q.capacity(),
                    before,
                    "initialized_spare needed a new allocation"
                );
                q.commit(0);
            }
        }
        assert_eq!(q.len(), model.len());
        assert_eq!(q.is_empty(), model.is_empty());
        assert!(
            q.data().iter().eq(model.iter()),
            "queue bytes differ from the model"
        );
        assert!(
            q.capacity() <= 2 * peak + 64,
            "capacity {} for at most {peak} bytes held",
            q.capacity()
        );
    }
}

fn session_stream(input: &mut Input<'_>) {
    let header = input.u8();
    let flavour = Flavour::from_bits(header & 0x17);
    let victim_limits = limits(header >> 6);
    let server_victim = header & 0x20 != 0;
    let (mut cc, mut sc) = configs(flavour);
    if header & 0x08 != 0 {
        // The peer cuts its records to 64 bytes: handshake messages span many records.
        if server_victim {
            let mut config = (*cc).clone();
            config.max_fragment_size = Some(64);
            cc = Arc::new(config);
        } else {
            let mut config = (*sc).clone();
            config.max_fragment_size = Some(64);
            sc = Arc::new(config);
        }
    }
    let (mut victim, mut peer) = if server_victim {
        (server(sc, victim_limits), client(cc, Limits::default()))
    } else {
        (client(cc, victim_limits), server(sc, Limits::default()))
    };
    // The handshake, honestly.
    for _ in 0..256 {
        let a = crate::transfer(&mut victim, &mut peer);
        let b = crate::transfer(&mut peer, &mut victim);
        if a + b == 0 {
            break;
        }
    }
    assert!(
        !victim.is_handshaking() && !peer.is_handshaking(),
        "an honest handshake did not complete: {victim:?}, peer {peer:?}"
    );
    while victim.poll_event().is_some() {}
    let mut wire: Vec<u8> = Vec::new();
    let (mut sent, mut received) = (0usize, 0usize);
    let mut broken = false;
    let mut ops = 0;
    let limit = victim_limits.inbound;
    while !input.is_empty() && ops < 512 {
        ops += 1;
        match input.u8() % 6 {
            0 => {
                // The peer sends one chunk: one or more records.
                let len = usize::from(input.u16()) % 20_000 + 1;
                if let Ok(n) = peer.send(&stream(sent, len)) {
                    sent += n;
                }
                wire.extend_from_slice(peer.pending_tls());
                let n = peer.pending_tls().len();
                peer.tls_written(n);
            }
            op @ (1 | 2) => {
                let most = usize::from(input.u16());
                let n = most.min(wire.len());
                let taken = if op == 1 {
                    match victim.read_tls(&wire[..n]) {
                        Ok(k) => k,
                        Err(e) => fail(&victim, &e, broken),
                    }
                } else {
                    let partial = usize::from(input.u16());
                    let buf = victim.tls_read_buffer();
                    assert!(
                        buf.len() <= limit,
                        "tls_read_buffer lent {} bytes over an inbound limit of {limit}",
                        buf.len()
                    );
                    let k = n.min(buf.len()).min(partial);
                    buf[..k].copy_from_slice(&wire[..k]);
                    buf[k..].fill(0xa5);
                    match victim.commit_tls_read(k) {
                        Ok(()) => k,
                        Err(e) => fail(&victim, &e, broken),
                    }
                };
                wire.drain(..taken.min(wire.len()));
                if n > 0 && taken == 0 && victim.error().is_none() && !victim.wants_input() {
                    // Refused: the plaintext must be readable now.
                    let mut buf = vec![0u8; 20_000];
                    match victim.recv(&mut buf) {
                        Ok(k) => {
                            assert_stream(received, &buf[..k], "recv");
                            received += k;
                        }
                        Err(Error::WouldBlock) => panic!("stall: input refused, no plaintext"),
                        Err(e) => {
                            fail(&victim, &e, broken);
                        }
                    }
                }
            }
            3 => {
                let size = usize::from(input.u16()) % 20_000 + 1;
                let mut buf = vec![0u8; size];
                match victim.recv(&mut buf) {
                    Ok(0) => panic!("Ok(0) without close_notify"),
                    Ok(k) => {
                        assert_stream(received, &buf[..k], "recv");
                        received += k;
                    }
                    Err(Error::WouldBlock) => {}
                    Err(e) => {
                        fail(&victim, &e, broken);
                    }
                }
            }
            4 => victim.release_buffers(),
            _ => {
                // A record header with any length field, anywhere.
                let header = [input.u8(), 3, 3, input.u8(), input.u8()];
                let pos = usize::from(input.u16()) % (wire.len() + 1);
                wire.splice(pos..pos, header);
                broken = true;
            }
        }
        assert!(received <= sent);
    }
    if broken {
        return;
    }
    // Everything left arrives, whole.
    let mut buf = vec![0u8; 20_000];
    for _ in 0..10_000 {
        if !wire.is_empty() {
            let k = victim.read_tls(&wire).expect("receive");
            wire.drain(..k);
        }
        match victim.recv(&mut buf) {
            Ok(k) => {
                assert!(k > 0, "Ok(0) without close_notify");
                assert_stream(received, &buf[..k], "recv");
                received += k;
            }
            Err(Error::WouldBlock) => {
                if wire.is_empty() {
                    break;
                }
            }
            Err(e) => panic!("clean stream failed: {e:?}"),
        }
    }
    assert_eq!(received, sent, "bytes lost");
}

/// An error during the stream part: allowed only after a header was inserted.
fn fail(victim: &Session, e: &Error, broken: bool) -> usize {
    assert!(broken, "clean stream failed: {e:?}");
    assert!(e.is_fatal(), "non-fatal {e:?} from the receive path");
    crate::assert_same_error(victim.error(), Some(e), "error not kept");
    0
}
