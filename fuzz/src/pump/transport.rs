//! The in-memory transport under the pumped stream: what the peer sent, what the stream
//! wrote, and the misbehaviour the script asks for.

use super::*;

/// The in-memory transport: bytes from the peer wait in `to_victim`; bytes the stream
/// writes go to the peer when the stream next reads.
#[derive(Debug)]
pub struct Transport {
    pub(super) peer: Session,
    pub(super) to_victim: VecDeque<u8>,
    pub(super) from_victim: Vec<u8>,
    pub(super) script: VecDeque<u8>,
    /// End of stream once `to_victim` is drained.
    pub(super) eof: bool,
    pub(super) shut: Cell<bool>,
    /// Per stream call: transport calls, bytes moved, scripted misbehaviours.
    pub(super) calls: usize,
    pub(super) moved: usize,
    pub(super) scripted: usize,
    /// Per stream call: errors the transport made up.
    pub(super) reset: bool,
    pub(super) write_zero: bool,
    pub(super) peer_sent: usize,
    pub(super) peer_closed_at: Option<usize>,
    pub(super) peer_received: usize,
    /// Peer output was dropped because the transport had ended.
    pub(super) dropped: bool,
    /// The peer's close_notify is on the wire (a close during the handshake waits for it).
    pub(super) close_on_wire: bool,
    /// KeyUpdate requests the peer sent since its last application data, and ours (each
    /// answered by one from the peer).
    pub(super) key_updates: usize,
    pub(super) our_key_updates: usize,
}

impl Transport {
    pub(super) fn behaviour(&mut self) -> u8 {
        match self.script.pop_front() {
            Some(b) => {
                if !matches!(b % 8, 5..=7) {
                    self.scripted += 1;
                }
                b
            }
            None => 0xff,
        }
    }

    /// The peer takes what the stream wrote, reads its plaintext, and puts its output on
    /// the wire (or drops it after EOF).
    pub(super) fn peer_step(&mut self) {
        if self.peer.error().is_none() && !self.from_victim.is_empty() {
            match self.peer.read_tls(&self.from_victim) {
                Ok(n) => {
                    self.from_victim.drain(..n);
                }
                Err(_) => self.from_victim.clear(),
            }
        }
        let mut got = Vec::new();
        crate::drain_plaintext(&mut self.peer, Some(&mut got));
        assert_stream(
            self.peer_received,
            &got,
            "the peer received from the stream",
        );
        self.peer_received += got.len();
        let out = self.peer.pending_tls();
        let n = out.len();
        if self.eof {
            self.dropped |= n > 0;
        } else {
            self.to_victim.extend(out);
            self.close_on_wire |= self.peer.has_sent_close_notify();
        }
        self.peer.tls_written(n);
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let b = self.behaviour();
        let cap = match b % 8 {
            0 => return Err(ErrorKind::WouldBlock.into()),
            1 => return Err(ErrorKind::Interrupted.into()),
            2 => 1 + usize::from(b >> 3) % 16,
            3 => {
                self.reset = true;
                return Err(ErrorKind::ConnectionReset.into());
            }
            _ => usize::MAX,
        };
        if self.to_victim.is_empty() {
            self.peer_step();
        }
        if self.to_victim.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(cap).min(self.to_victim.len());
        for (dst, src) in buf[..n].iter_mut().zip(self.to_victim.drain(..n)) {
            *dst = src;
        }
        self.moved += n;
        Ok(n)
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.shut.get() {
            return Err(ErrorKind::BrokenPipe.into());
        }
        let b = self.behaviour();
        let n = match b % 8 {
            0 => return Err(ErrorKind::WouldBlock.into()),
            1 => return Err(ErrorKind::Interrupted.into()),
            2 => buf.len().min(1 + usize::from(b >> 3) % 16),
            3 => {
                self.reset = true;
                return Err(ErrorKind::ConnectionReset.into());
            }
            4 => {
                self.write_zero = true;
                return Ok(0);
            }
            _ => buf.len(),
        };
        self.from_victim.extend_from_slice(&buf[..n]);
        self.moved += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl HalfClose for Transport {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shut.set(true);
        Ok(())
    }
}
