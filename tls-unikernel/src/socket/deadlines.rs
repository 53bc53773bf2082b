//! The socket's own deadlines: the handshake timeout, the write-stall timeout and the
//! bounded close after a fatal error. Each resets the TCP connection when it passes, so
//! no peer holds a socket longer than the embedder allowed.

use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use super::{PollAt, TlsSocket};
use crate::Error;

impl TlsSocket {
    /// Notes whether the peer acknowledged output since the send ring was last looked at
    /// (its length shrank). Called around every write into the ring.
    pub(super) fn track_acks(&mut self, tcp: &tcp::Socket<'_>) {
        let queued = tcp.send_queue();
        if queued < self.queue_mark {
            self.acked = true;
        }
        self.queue_mark = queued;
    }

    /// Checks the deadlines at `now`: resets the TCP connection (and records the error)
    /// for one that has passed, else says when to be called again.
    pub(super) fn deadlines(&mut self, now: Instant, tcp: &mut tcp::Socket<'_>) -> PollAt {
        let Some((handshaking, has_output)) =
            self.active().map(|s| (s.is_handshaking(), s.has_output()))
        else {
            return PollAt::Ingress;
        };
        let tcp_done = matches!(tcp.state(), tcp::State::Closed | tcp::State::TimeWait);
        if self.error.is_some() {
            // A fatal error: the alert and the FIN are queued; bound how long the peer
            // may take them (and close its side).
            let Some(linger) = self.options.error_linger else {
                return PollAt::Ingress;
            };
            let deadline = *self.error_deadline.get_or_insert(now + linger);
            if tcp_done {
                return PollAt::Ingress;
            }
            if now >= deadline {
                tcp.abort();
                return PollAt::Now;
            }
            return PollAt::Time(deadline);
        }
        let mut wake = PollAt::Ingress;
        if handshaking {
            if let (Some(timeout), Some(started)) = (self.options.handshake_timeout, self.started) {
                let deadline = started + timeout;
                if now >= deadline {
                    tcp.abort();
                    self.fail(Error::HandshakeTimeout);
                    return PollAt::Now;
                }
                wake = PollAt::Time(deadline);
            }
        }
        // Output waiting with nothing acknowledged: the peer stopped reading.
        self.track_acks(tcp);
        let waiting = tcp.send_queue() > 0 || has_output;
        if !waiting || tcp_done {
            self.stalled_since = None;
        } else if self.acked || self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
        self.acked = false;
        if let (Some(timeout), Some(since)) = (self.options.write_timeout, self.stalled_since) {
            let deadline = since + timeout;
            if now >= deadline {
                tcp.abort();
                self.fail(Error::WriteTimeout);
                return PollAt::Now;
            }
            wake = wake.min(PollAt::Time(deadline));
        }
        wake
    }

    /// After a fatal error: takes what the peer still sends out of the TCP receive ring
    /// and drops it, so the peer is not stalled on a shut window before it reads our
    /// alert and FIN. True if anything was dropped.
    pub(super) fn discard_after_error(&mut self, tcp: &mut tcp::Socket<'_>) -> bool {
        if self.error.is_none() {
            return false;
        }
        let mut dropped = false;
        while let Ok(n) = tcp.recv(|buf| (buf.len(), buf.len())) {
            if n == 0 {
                break;
            }
            dropped = true;
        }
        dropped
    }
}
