//! Plaintext out (sending, coalescing) and the commands (close, KeyUpdate).

use rustls::ProtocolVersion;

use super::{Encrypted, ReadState, Session, WriteState};
use crate::conn::{Goal, Stop};
use crate::event::{Event, Initiator};
use crate::Error;

impl Session {
    /// Encrypts application data into the outbound queue. Returns how many bytes were
    /// taken: only what fits under [`Limits::outbound`](crate::Limits::outbound) (while output is queued, only when
    /// a full record or all of `data` fits), so `Ok(0)` means "send pending output
    /// first". Before the handshake completes it takes nothing (`Ok(0)`).
    ///
    /// In coalescing mode (see [`set_coalescing`](Self::set_coalescing)) small writes are
    /// gathered and encrypted as one full record, or at [`flush`](Self::flush).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check_send()?;
        if self.conn.is_handshaking() || data.is_empty() {
            return Ok(0);
        }
        if self.coalesce {
            return self.send_coalesced(data);
        }
        let budget = self.limits.outbound.saturating_sub(self.outbound.len());
        let n = self.plaintext_fitting(budget).min(data.len());
        // While output is queued, wait for room for a full record (or all of `data`):
        // taking what trickles free as the transport drains a few bytes at a time would
        // cut the stream into tiny records (silly window syndrome).
        if n == 0 || (!self.outbound.is_empty() && n < data.len().min(self.fragment)) {
            return Ok(0);
        }
        self.encrypt_to_queue(&data[..n])?;
        Ok(n)
    }

    /// Encrypts application data straight into `out` (for example a TCP stack's send
    /// ring), taking as much plaintext as fits there whole: no copy beyond rustls' own.
    ///
    /// Records already queued in [`pending_tls`](Self::pending_tls) go first, so
    /// while any are queued this takes nothing (`consumed == 0`); gathered small writes
    /// (coalescing mode) are encrypted into `out` ahead of `data`.
    pub fn send_into(&mut self, data: &[u8], out: &mut [u8]) -> Result<Encrypted, Error> {
        self.check_send()?;
        let mut done = Encrypted::default();
        if self.conn.is_handshaking() || !self.outbound.is_empty() {
            return Ok(done);
        }
        if !self.gather.is_empty() {
            let need = self.gather.len() + self.overhead;
            if need > out.len() {
                return Ok(done);
            }
            let gather = core::mem::take(&mut self.gather);
            let written = self.encrypt_to_slice(&gather, out)?;
            self.gather = gather;
            if written == 0 {
                // A control record was queued first (see `encrypt_to_slice`).
                return Ok(done);
            }
            self.gather.clear();
            done.written = written;
        }
        let n = self
            .plaintext_fitting(out.len() - done.written)
            .min(data.len());
        if n > 0 {
            let written = self.encrypt_to_slice(&data[..n], &mut out[done.written..])?;
            if written > 0 {
                done.written += written;
                done.consumed = n;
            }
        }
        Ok(done)
    }

    /// Turns coalescing of small writes on or off. When on, [`send`](Self::send) copies
    /// plaintext into a gather buffer and encrypts only full records; call
    /// [`flush`](Self::flush) when a message is complete. Turning it off flushes.
    pub fn set_coalescing(&mut self, on: bool) -> Result<(), Error> {
        if !on {
            self.flush()?;
        }
        self.coalesce = on;
        Ok(())
    }

    /// Encrypts gathered small writes (coalescing mode) now, even if that goes past
    /// [`Limits::outbound`](crate::Limits::outbound) by one record. A no-op when nothing is gathered.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.gather.is_empty() {
            // An idle session keeps no gather buffer.
            self.gather = alloc::vec::Vec::new();
            return Ok(());
        }
        self.check()?;
        let gather = core::mem::take(&mut self.gather);
        let result = self.encrypt_to_queue(&gather);
        // An idle session keeps no gather buffer.
        drop(gather);
        result
    }

    // ---------------------------------------------------------------- commands

    /// Queues close_notify (after any gathered data): we send no more application data,
    /// but keep reading until the peer's close_notify (half-close). Called during the
    /// handshake, it takes effect when the handshake completes.
    pub fn close(&mut self) -> Result<(), Error> {
        self.check()?;
        if self.write == WriteState::CloseSent {
            return Ok(());
        }
        self.flush()?;
        self.write = WriteState::CloseRequested;
        if self.conn.is_handshaking() {
            return Ok(());
        }
        self.send_close_notify()
    }

    pub(super) fn send_close_notify(&mut self) -> Result<(), Error> {
        self.write_op(&mut |enc, out| {
            let spare = out.spare_mut(64);
            let n = enc.close_notify(spare)?;
            out.commit(n);
            Ok(())
        })?;
        self.write = WriteState::CloseSent;
        if self.read == ReadState::PeerClosed {
            self.events.push_back(Event::Closed);
        }
        Ok(())
    }

    /// Sends a TLS 1.3 KeyUpdate asking the peer to update its keys too.
    ///
    /// Use it sparingly (after some data, or on a timer): a rustls (or BoringSSL) peer
    /// fails the connection after more than [`MAX_KEY_UPDATES`](Self::MAX_KEY_UPDATES)
    /// KeyUpdates in a row with no application data between them, so the
    /// one after them is refused here with [`Error::TooManyKeyUpdates`] (not fatal; send
    /// data, then refresh again).
    pub fn refresh_keys(&mut self) -> Result<(), Error> {
        self.check()?;
        if self.conn.is_handshaking() {
            return Err(Error::Handshaking);
        }
        if self.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
            return Err(Error::KeyUpdateNeedsTls13);
        }
        if self.write == WriteState::CloseSent {
            return Err(Error::Closed);
        }
        if self.key_updates >= Self::MAX_KEY_UPDATES {
            return Err(Error::TooManyKeyUpdates);
        }
        self.write_op(&mut |enc, _| enc.refresh_keys())?;
        self.key_updates += 1;
        // The KeyUpdate record is produced by the next drive.
        self.pump()?;
        self.events.push_back(Event::KeysUpdated(Initiator::Local));
        Ok(())
    }

    // ---------------------------------------------------------------- internals

    pub(super) fn check_send(&self) -> Result<(), Error> {
        self.check()?;
        if self.write != WriteState::Open {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// How much plaintext fits, whole, in `space` bytes of ciphertext.
    pub(super) fn plaintext_fitting(&self, space: usize) -> usize {
        let per_record = self.fragment + self.overhead;
        let full = space / per_record;
        let rest = space % per_record;
        full * self.fragment + rest.saturating_sub(self.overhead)
    }

    /// Ciphertext size of `n` plaintext bytes.
    pub(super) fn ciphertext_len(&self, n: usize) -> usize {
        n + n.div_ceil(self.fragment).max(1) * self.overhead
    }

    pub(super) fn encrypt_to_queue(&mut self, plain: &[u8]) -> Result<(), Error> {
        let want = self.ciphertext_len(plain.len());
        let outcome = self.drive(Goal::Encrypt(plain, want));
        match outcome.stop {
            Ok(Stop::Written) => {
                // Application data after our KeyUpdates resets the peer's count.
                self.key_updates = 0;
                self.after_drive(outcome)
            }
            Err(_) => self.after_drive(outcome),
            Ok(_) => {
                self.after_drive(outcome)?;
                Err(Error::Closed)
            }
        }
    }

    /// Encrypts `plain` into `out`, or writes nothing (`Ok(0)`) when reaching the write
    /// state queued a control record (an answer to the peer's KeyUpdate): that record was
    /// encrypted first, so it must be sent before anything written into `out`.
    pub(super) fn encrypt_to_slice(
        &mut self,
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let mut written = 0;
        self.write_op(&mut |enc, queued| {
            if queued.is_empty() {
                written = enc.encrypt(plain, out)?;
            }
            Ok(())
        })?;
        if written > 0 {
            // Application data after our KeyUpdates resets the peer's count.
            self.key_updates = 0;
        }
        Ok(written)
    }

    pub(super) fn send_coalesced(&mut self, data: &[u8]) -> Result<usize, Error> {
        let mut taken = 0;
        while taken < data.len() {
            if self.gather.is_empty() && data.len() - taken >= self.fragment {
                // Whole records straight from `data`: gathering would only copy them.
                let budget = self.limits.outbound.saturating_sub(self.outbound.len());
                let fits = self.plaintext_fitting(budget) / self.fragment * self.fragment;
                let n = ((data.len() - taken) / self.fragment * self.fragment).min(fits);
                if n == 0 {
                    break;
                }
                self.encrypt_to_queue(&data[taken..taken + n])?;
                taken += n;
                continue;
            }
            if self.gather.len() == self.fragment {
                if self.outbound.len() >= self.limits.outbound {
                    break;
                }
                let gather = core::mem::take(&mut self.gather);
                let result = self.encrypt_to_queue(&gather);
                self.gather = gather;
                self.gather.clear();
                result?;
            }
            // The gather buffer grows with what it holds (a small response gathers a few
            // hundred bytes, not a record's worth of allocation), up to one record.
            let n = (self.fragment - self.gather.len()).min(data.len() - taken);
            self.gather.extend_from_slice(&data[taken..taken + n]);
            taken += n;
        }
        if self.gather.len() == self.fragment && self.outbound.len() < self.limits.outbound {
            let gather = core::mem::take(&mut self.gather);
            let result = self.encrypt_to_queue(&gather);
            self.gather = gather;
            self.gather.clear();
            result?;
        }
        Ok(taken)
    }
}
