//! Ciphertext in and out: what the transport delivered, what it must send.

use super::{ReadState, Session};
use crate::{record, Error};

/// The first size [`Session::tls_read_buffer`] offers from a fresh buffer.
const RECEIVE_STEP: usize = 4096;

impl Session {
    /// Takes received ciphertext. Returns how many bytes were taken: fewer than offered
    /// when the inbound buffer is full or unread plaintext is above
    /// [`Limits::unread_plaintext`](crate::Limits::unread_plaintext) (read with [`recv`](Self::recv), then offer the rest).
    /// An empty `data` means the transport had nothing: empty buffers are released (see
    /// [`release_buffers`](Self::release_buffers)).
    ///
    /// Processes what it can at once: handshake replies, alerts and KeyUpdate answers
    /// appear in [`pending_tls`](Self::pending_tls). A fatal error is returned here
    /// with its alert queued.
    pub fn read_tls(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.check()?;
        if data.is_empty() {
            // The transport had nothing: the session is quiet.
            self.release_buffers();
            return Ok(0);
        }
        let n = data.len().min(self.input_room());
        if n == 0 {
            return Ok(0);
        }
        self.inbound.extend_from_slice(&data[..n]);
        self.pump()?;
        Ok(n)
    }

    /// The zero-copy form of [`read_tls`](Self::read_tls): a buffer the transport can read
    /// into directly, at most what the session can take now (empty when it can take
    /// nothing; during the handshake a fresh buffer starts at 4 KiB and doubles).
    /// Follow with [`commit_tls_read`](Self::commit_tls_read).
    pub fn tls_read_buffer(&mut self) -> &mut [u8] {
        let room = if self.error().is_some() {
            0
        } else {
            self.input_room()
        };
        // A fresh buffer must be zero-filled before it can be lent out. Handshake flights
        // and requests are a few KB, so it grows in doubling steps from 4 KiB (never less
        // than what completes the record in flight) instead of zero-filling the whole
        // room: a keep-alive connection whose buffers were released while it was quiet
        // zero-fills 4 KiB for its next small request, not 18 KiB; bulk transfers reach
        // the whole room after a few reads.
        let step = (self.inbound.capacity() * 2).max(RECEIVE_STEP);
        let offer = room.min(
            self.inbound
                .initialized_spare()
                .max(step)
                .max(self.record_completion()),
        );
        self.inbound.spare_mut(offer)
    }

    /// Tells the session that `n` bytes were written at the front of
    /// [`tls_read_buffer`](Self::tls_read_buffer), and processes them.
    ///
    /// # Panics
    /// If `n` is larger than the buffer last returned by `tls_read_buffer`.
    pub fn commit_tls_read(&mut self, n: usize) -> Result<(), Error> {
        self.check()?;
        if n == 0 {
            // The transport had nothing: the session is quiet.
            self.release_buffers();
            return Ok(());
        }
        self.inbound.commit(n);
        self.pump()
    }

    /// Tells the session its transport reached end of stream.
    ///
    /// After the peer's close_notify this is the clean end. Before it, the stream was
    /// truncated: [`recv`](Self::recv) returns what was received intact and then
    /// [`Error::Truncated`] (during the handshake, at once).
    pub fn read_tls_eof(&mut self) {
        self.release_buffers();
        if self.read == ReadState::Open {
            self.read = if self.conn.is_handshaking() {
                ReadState::failed(Error::Truncated, false)
            } else {
                ReadState::TransportEnded
            };
        }
    }

    // ---------------------------------------------------------------- outputs

    /// Ciphertext to send to the peer, oldest first. Send any prefix, then call
    /// [`tls_written`](Self::tls_written).
    #[must_use]
    pub fn pending_tls(&self) -> &[u8] {
        self.outbound.data()
    }

    /// Marks the first `n` bytes of [`pending_tls`](Self::pending_tls) as sent.
    ///
    /// # Panics
    /// If `n` is larger than `pending_tls().len()`.
    pub fn tls_written(&mut self, n: usize) {
        self.outbound.consume(n);
    }

    /// Copies pending ciphertext into `buf`, marks it sent and returns how much.
    pub fn write_tls(&mut self, buf: &mut [u8]) -> usize {
        self.outbound.read_into(buf)
    }

    // ---------------------------------------------------------------- internals

    /// How many input bytes the session takes now.
    pub(super) fn input_room(&self) -> usize {
        if self.read != ReadState::Open {
            return 0;
        }
        let held = self.inbound.len();
        let cap = if self.conn.is_handshaking() {
            self.limits.handshake_inbound()
        } else {
            self.limits.inbound
        };
        let hard = cap.saturating_sub(held);
        if self.staged.is_empty() && !self.conn.holds_plaintext() {
            // Nothing for the application to read (the engine deframes every complete
            // record it holds until one carries data): what the buffer holds is an
            // incomplete record, or control traffic such as a handshake message arriving in
            // fragments. Refusing input here could only stall, whatever the plaintext
            // limit (even 0); the inbound cap still bounds it.
            return hard;
        }
        // Plaintext waits: backpressure. Still take the rest of a record already begun,
        // so the one being read can complete.
        let unread = held + self.staged.len();
        let soft = self
            .limits
            .unread_plaintext
            .saturating_sub(unread)
            .max(self.record_completion());
        hard.min(soft)
    }

    /// Bytes still missing from the last, incomplete record in the inbound buffer.
    pub(super) fn record_completion(&self) -> usize {
        let data = self.inbound.data();
        let mut at = 0;
        while at < data.len() {
            let Some(len) = record::record_len(&data[at..]) else {
                return record::HEADER_LEN - (data.len() - at);
            };
            let end = at + len;
            if end > data.len() {
                return (end - data.len()).min(record::MAX_RECORD);
            }
            at = end;
        }
        0
    }
}
