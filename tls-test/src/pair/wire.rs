//! The two one-way wires: pieces in flight, record boundaries, cuts and tampering, and
//! how a [`Pair`](super::Pair) moves bytes between its sessions and the wires.

use std::collections::VecDeque;

use super::{Dir, Pair, Side, Split};

/// A TLS record header seen on a wire (before any tampering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Stream offset of the record's first header byte.
    pub offset: usize,
    /// The record's (outer) content type: 20 change_cipher_spec, 21 alert, 22 handshake,
    /// 23 application data (every TLS 1.3 record once encrypted).
    pub content_type: u8,
    /// Length of the record body (without the 5-byte header).
    pub len: usize,
}

impl RecordInfo {
    /// Offset one past the record's last byte.
    pub fn end(&self) -> usize {
        self.offset + 5 + self.len
    }
}

/// A hook that may change a piece in flight: gets the stream offset of the piece's first
/// byte and the piece.
pub(super) type Hook = Box<dyn FnMut(usize, &mut Vec<u8>)>;

/// Finds record boundaries in a byte stream fed in arbitrary pieces.
#[derive(Debug, Default)]
pub(super) struct RecordTracker {
    pub(super) header: [u8; 5],
    pub(super) have: usize,
    pub(super) remaining: usize,
    pub(super) start: usize,
}

impl RecordTracker {
    pub(super) fn feed(&mut self, offset: usize, bytes: &[u8], records: &mut Vec<RecordInfo>) {
        let mut i = 0;
        while i < bytes.len() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len() - i);
                self.remaining -= n;
                i += n;
                continue;
            }
            if self.have == 0 {
                self.start = offset + i;
            }
            self.header[self.have] = bytes[i];
            self.have += 1;
            i += 1;
            if self.have == 5 {
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                records.push(RecordInfo {
                    offset: self.start,
                    content_type: self.header[0],
                    len,
                });
                self.remaining = len;
                self.have = 0;
            }
        }
    }
}

/// A bit flip aimed at a record not seen yet.
#[derive(Debug)]
pub(super) struct RecordFlip {
    pub(super) record: usize,
    pub(super) at: usize,
    pub(super) mask: u8,
}

/// One direction: pieces in flight, faults, and bookkeeping.
#[derive(Default)]
pub(super) struct Wire {
    /// Pieces on the wire with the step at which each may be delivered.
    pub(super) chunks: VecDeque<(u64, Vec<u8>)>,
    /// Stream bytes taken from the sender (including any dropped after a cut).
    pub(super) sent: usize,
    /// Bytes handed to the receiver.
    pub(super) delivered: usize,
    /// Bytes dropped because the receiver could no longer take them.
    pub(super) dropped: usize,
    pub(super) cut: Option<usize>,
    pub(super) eof_delivered: bool,
    pub(super) tracker: RecordTracker,
    pub(super) records: Vec<RecordInfo>,
    pub(super) record_flips: Vec<RecordFlip>,
    /// Resolved flips: stream offset and XOR mask.
    pub(super) flips: Vec<(usize, u8)>,
    pub(super) hooks: Vec<Hook>,
}

impl Wire {
    pub(super) fn queued(&self) -> usize {
        self.chunks.iter().map(|(_, c)| c.len()).sum()
    }

    /// Whether the stream has reached the cut, so EOF follows the bytes on the wire.
    pub(super) fn cut_reached(&self) -> bool {
        self.cut.is_some_and(|c| self.sent >= c)
    }
}

impl Pair {
    pub(super) fn pick(&mut self, available: usize) -> usize {
        match self.plan.split {
            Split::Whole => available,
            Split::OneByte => available.min(1),
            Split::RandomPrefix => self.rng.range(1, available),
        }
    }

    pub(super) fn ready_at(&mut self) -> u64 {
        match self.plan.delay {
            Some(d) if d.max_steps > 0 && self.rng.chance(d.chance) => {
                self.now + self.rng.range(1, d.max_steps as usize) as u64
            }
            _ => self.now,
        }
    }

    /// Takes one piece of the sender's output and puts it on the wire.
    pub(super) fn transmit(&mut self, dir: Dir) -> bool {
        let available = self.endpoint(dir.sender()).session.pending_tls().len();
        if available == 0 {
            return false;
        }
        let n = self.pick(available);
        let piece = if self.rng.chance(0.5) {
            let session = self.session(dir.sender());
            let piece = session.pending_tls()[..n].to_vec();
            session.tls_written(n);
            piece
        } else {
            let mut piece = vec![0; n];
            let written = self.session(dir.sender()).write_tls(&mut piece);
            assert_eq!(written, n, "write_tls wrote less than pending_tls held");
            piece
        };
        let ready = self.ready_at();
        self.put_on_wire(dir, piece, ready);
        true
    }

    pub(super) fn put_on_wire(&mut self, dir: Dir, mut piece: Vec<u8>, ready: u64) {
        let wire = &mut self.wires[dir.index()];
        let offset = wire.sent;
        let before = wire.records.len();
        wire.tracker.feed(offset, &piece, &mut wire.records);
        for index in before..wire.records.len() {
            let info = wire.records[index];
            wire.record_flips.retain(|f| {
                if f.record == index {
                    wire.flips
                        .push((info.offset + f.at.min(4 + info.len), f.mask));
                    false
                } else {
                    true
                }
            });
        }
        for &(at, mask) in &wire.flips {
            if at >= offset && at < offset + piece.len() {
                piece[at - offset] ^= mask;
            }
        }
        for hook in &mut wire.hooks {
            hook(offset, &mut piece);
        }
        wire.sent += piece.len();
        if let Some(cut) = wire.cut {
            let keep = cut.saturating_sub(offset).min(piece.len());
            wire.dropped += piece.len() - keep;
            piece.truncate(keep);
        }
        if !piece.is_empty() {
            wire.chunks.push_back((ready, piece));
        }
    }

    /// Hands one piece of ready wire bytes to the receiver, then EOF if the cut is reached.
    pub(super) fn deliver(&mut self, dir: Dir) -> bool {
        let now = self.now;
        let receiver = dir.receiver();
        let wire = &self.wires[dir.index()];
        if self.endpoint(receiver).is_dead() || wire.eof_delivered {
            let wire = &mut self.wires[dir.index()];
            let n = wire.queued();
            wire.dropped += n;
            wire.chunks.clear();
            return n > 0;
        }
        let available: usize = wire
            .chunks
            .iter()
            .take_while(|(ready, _)| *ready <= now)
            .map(|(_, c)| c.len())
            .sum();
        let mut progress = false;
        if available > 0 {
            let n = self.pick(available);
            let mut piece = Vec::with_capacity(n);
            for (_, chunk) in &self.wires[dir.index()].chunks {
                let take = (n - piece.len()).min(chunk.len());
                piece.extend_from_slice(&chunk[..take]);
                if piece.len() == n {
                    break;
                }
            }
            let zero_copy = self.rng.chance(0.5);
            let ep = self.endpoint_mut(receiver);
            let taken = if zero_copy {
                let buf = ep.session.tls_read_buffer();
                let m = buf.len().min(n);
                buf[..m].copy_from_slice(&piece[..m]);
                match ep.session.commit_tls_read(m) {
                    Ok(()) => m,
                    Err(e) => {
                        ep.note_error(&e);
                        m
                    }
                }
            } else {
                match ep.session.read_tls(&piece) {
                    Ok(m) => m,
                    Err(e) => {
                        ep.note_error(&e);
                        n
                    }
                }
            };
            let wire = &mut self.wires[dir.index()];
            wire.delivered += taken;
            let mut left = taken;
            while left > 0 {
                let front = &mut wire.chunks.front_mut().expect("taken bytes were queued").1;
                if front.len() <= left {
                    left -= front.len();
                    wire.chunks.pop_front();
                } else {
                    front.drain(..left);
                    left = 0;
                }
            }
            progress = taken > 0;
        }
        let wire = &mut self.wires[dir.index()];
        if wire.chunks.is_empty() && wire.cut_reached() && !wire.eof_delivered {
            wire.eof_delivered = true;
            self.session(receiver).read_tls_eof();
            progress = true;
        }
        progress
    }

    pub(super) fn describe(&self) -> String {
        let mut s = format!("step {}", self.now);
        for side in [Side::Client, Side::Server] {
            let ep = self.endpoint(side);
            s += &format!(
                "; {side:?}: handshaking={} pending_tls={} wants_input={} \
                 has_plaintext={} error={:?} events={}",
                ep.session.is_handshaking(),
                ep.session.pending_tls().len(),
                ep.session.wants_input(),
                ep.session.has_plaintext(),
                ep.error.as_ref().or(ep.session.error()),
                ep.events.len(),
            );
        }
        for dir in Dir::BOTH {
            let wire = &self.wires[dir.index()];
            s += &format!(
                "; {dir:?}: sent={} delivered={} in_flight={} cut={:?} eof={}",
                wire.sent,
                wire.delivered,
                wire.queued(),
                wire.cut,
                wire.eof_delivered
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_tracker_finds_headers_across_pieces() {
        let mut stream = vec![22, 3, 1, 0, 2, 0xaa, 0xbb];
        stream.extend_from_slice(&[23, 3, 3, 0, 0]);
        stream.extend_from_slice(&[21, 3, 3, 0, 1, 0xcc]);
        let whole = {
            let mut t = RecordTracker::default();
            let mut records = Vec::new();
            t.feed(0, &stream, &mut records);
            records
        };
        assert_eq!(
            whole,
            [
                RecordInfo {
                    offset: 0,
                    content_type: 22,
                    len: 2
                },
                RecordInfo {
                    offset: 7,
                    content_type: 23,
                    len: 0
                },
                RecordInfo {
                    offset: 12,
                    content_type: 21,
                    len: 1
                },
            ]
        );
        let mut t = RecordTracker::default();
        let mut records = Vec::new();
        for (i, b) in stream.iter().enumerate() {
            t.feed(i, std::slice::from_ref(b), &mut records);
        }
        assert_eq!(records, whole);
    }
}
