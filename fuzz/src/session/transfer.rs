//! How bytes move in a session script: the peer's output onto the wire, the victim's into
//! the peer, wire bytes into the victim, `recv`, and the honest pump.

use super::*;

impl Run {
    /// Room for what a command of ours may queue (a record, a KeyUpdate, close_notify).
    pub(super) fn allow_command(&mut self) {
        self.out_allowance += self.limits.outbound + MAX_RECORD;
    }

    /// Moves the peer's pending output onto the wire.
    pub(super) fn peer_to_wire(&mut self) -> usize {
        let Some(peer) = &mut self.peer else {
            return 0;
        };
        let out = peer.pending_tls();
        let n = out.len();
        if !self.eof {
            self.wire.extend_from_slice(out);
        }
        peer.tls_written(n);
        n
    }

    /// Moves the victim's pending output into the peer (or drops it without one) and reads
    /// what the peer received, checking it against what the victim sent.
    pub(super) fn victim_to_peer(&mut self) -> usize {
        let moved = match &mut self.peer {
            Some(peer) if peer.error().is_none() => {
                let moved = crate::transfer(&mut self.victim, peer);
                let mut got = Vec::new();
                drain_plaintext(peer, Some(&mut got));
                assert_stream(
                    self.peer_received,
                    &got,
                    "the peer received from the victim",
                );
                self.peer_received += got.len();
                moved
            }
            _ => {
                let n = self.victim.pending_tls().len();
                self.victim.tls_written(n);
                n
            }
        };
        if !self.victim.has_output() {
            self.out_allowance = 0;
        }
        moved
    }

    /// Delivers up to `most` wire bytes to the victim; returns how many it took (or, when
    /// it took none, how many plaintext bytes it then read).
    pub(super) fn deliver(&mut self, most: usize, how: u8) -> usize {
        let n = most.min(self.wire.len());
        if n == 0 {
            return 0;
        }
        let had_error = self.victim.error().is_some();
        let (taken, refused) = if how & 1 == 0 {
            match self.victim.read_tls(&self.wire[..n]) {
                Ok(k) => {
                    assert!(k <= n, "receive took {k} of {n} bytes");
                    (k, k == 0)
                }
                Err(e) => {
                    self.on_error(&e, "receive");
                    (n, false)
                }
            }
        } else {
            let buf = self.victim.tls_read_buffer();
            let room = buf.len();
            if had_error {
                assert_eq!(room, 0, "tls_read_buffer lends room after a fatal error");
            }
            let fits = n.min(room);
            let commit = if how & 2 != 0 {
                fits
            } else {
                fits.min(usize::from(how >> 2))
            };
            buf[..commit].copy_from_slice(&self.wire[..commit]);
            // Bytes lent but not committed must be ignored: fill them with junk.
            buf[commit..].fill(0x5a);
            match self.victim.commit_tls_read(commit) {
                Ok(()) => {}
                Err(e) => self.on_error(&e, "commit_tls_read"),
            }
            (commit, room == 0)
        };
        self.wire.drain(..taken);
        self.out_allowance += taken + 1024;
        if refused && !had_error && self.victim.error().is_none() {
            // A session that takes no input must have plaintext or an end to report.
            assert!(!self.victim.wants_input(), "refused input but wants input");
            match self.recv(MAX_CHUNK) {
                Err(Error::WouldBlock) => panic!(
                    "stall: the session takes no input and has no plaintext ({:?})",
                    self.victim
                ),
                // What was read is progress too.
                Ok(n) => return n,
                Err(_) => {}
            }
        }
        taken
    }

    /// One `recv` of `size` bytes, checked.
    pub(super) fn recv(&mut self, size: usize) -> Result<usize, Error> {
        let mut buf = vec![0u8; size];
        let result = self.victim.recv(&mut buf);
        match &result {
            Ok(0) => {
                if size > 0 {
                    self.on_clean_end();
                }
            }
            Ok(n) => {
                assert!(*n <= size, "recv returned {n} into {size} bytes");
                assert!(!self.clean_end, "recv returned data after Ok(0)");
                assert_stream(self.received, &buf[..*n], "the victim received");
                self.received += n;
                assert!(
                    self.received <= self.peer_sent,
                    "received {} bytes, the peer sent {}",
                    self.received,
                    self.peer_sent
                );
            }
            Err(e) => self.on_error(e, "recv"),
        }
        result
    }

    /// Honest exchange until nothing moves, at most `rounds` rounds; returns whether it
    /// was still moving.
    pub(super) fn pump(&mut self, rounds: usize) -> bool {
        for _ in 0..rounds {
            let mut moved = self.peer_to_wire();
            moved += self.victim_to_peer();
            moved += self.deliver(usize::MAX, 0);
            let mut last;
            loop {
                last = self.recv(MAX_CHUNK);
                match last {
                    Ok(n @ 1..) => moved += n,
                    _ => break,
                }
            }
            if crate::trace() {
                eprintln!(
                    "pump round: moved {moved}, last recv {last:?}, wire {}, received {}, {:?}, has_plaintext {}, wants_input {}",
                    self.wire.len(),
                    self.received,
                    self.victim,
                    self.victim.has_plaintext(),
                    self.victim.wants_input()
                );
            }
            self.check();
            if moved == 0 {
                return false;
            }
        }
        true
    }
}
