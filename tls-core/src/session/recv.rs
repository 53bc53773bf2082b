//! Plaintext in: reads of both kinds and what a read would find.

use super::{ReadState, Session};
use crate::conn::Goal;
use crate::{Error, ReadStatus};

impl Session {
    /// Reads decrypted application data into `buf`.
    ///
    /// Returns `Ok(n)` with `n > 0` for data, `Ok(0)` only after the peer's close_notify
    /// (clean end of stream; also for an empty `buf`), [`Error::WouldBlock`] when more
    /// input is needed, and [`Error::Truncated`] when the transport ended without
    /// close_notify.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut n = self.staged.read_into(buf);
        if n < buf.len() && self.staged.is_empty() && self.error().is_none() {
            let outcome = self.drive(Goal::Read(&mut buf[n..]));
            n += outcome.read;
            if let Err(e) = self.after_drive(outcome) {
                if n == 0 {
                    return Err(e);
                }
            }
        }
        if n > 0 {
            return Ok(n);
        }
        self.no_plaintext()
    }

    /// Reads decrypted application data in place, without copying it out: `f` gets the
    /// plaintext waiting now (never empty; at most one record's worth from rustls, or the
    /// data staged from earlier records) and returns how many bytes of it it consumed.
    /// What it leaves is offered again by the next read (it is staged: moved into the
    /// session's own queue if it was still in rustls). Returns what `f` consumed.
    ///
    /// When no plaintext is waiting, `f` is not called and the result is as for
    /// [`recv`](Self::recv): `Ok(0)` after the peer's close_notify (clean end of stream),
    /// [`Error::WouldBlock`] when more input is needed, [`Error::Truncated`] when the
    /// transport ended without close_notify, or the fatal error. So `Ok(0)` is the end
    /// of stream only if `f` was not called.
    ///
    /// # Panics
    /// If `f` returns more than the length of the slice it was given.
    pub fn recv_with<F>(&mut self, f: F) -> Result<usize, Error>
    where
        F: FnOnce(&[u8]) -> usize,
    {
        let mut f = Some(f);
        let mut lend = |data: &[u8]| {
            let f = f.take().expect("a read lends plaintext once");
            let n = f(data);
            assert!(n <= data.len(), "consumed more plaintext than was lent");
            n
        };
        if !self.staged.is_empty() {
            let n = lend(self.staged.data());
            self.staged.consume(n);
            return Ok(n);
        }
        if self.error().is_none() {
            let outcome = self.drive(Goal::Lend(&mut lend));
            let n = outcome.read;
            let result = self.after_drive(outcome);
            if f.is_none() {
                // `f` ran: its data was read intact, before any error that followed.
                return Ok(n);
            }
            result?;
        }
        self.no_plaintext()
    }

    /// What a read returns when no plaintext is waiting: the sticky error, `Ok(0)` after
    /// close_notify (clean end), `Truncated` at an EOF before it, or `WouldBlock`.
    pub(super) fn no_plaintext(&mut self) -> Result<usize, Error> {
        match &self.read {
            ReadState::Failed { error, .. } => Err(error.clone()),
            ReadState::PeerClosed => Ok(0),
            ReadState::TransportEnded => {
                self.read = ReadState::failed(Error::Truncated, false);
                Err(Error::Truncated)
            }
            ReadState::Open => Err(Error::WouldBlock),
        }
    }

    /// Whether unread plaintext is waiting, so [`recv`](Self::recv) and
    /// [`recv_with`](Self::recv_with) return data now.
    ///
    /// Exact after every call: whenever the engine runs it deframes every complete
    /// record it holds until one carries application data (rustls yields its write and
    /// idle states only once no complete record is left), and a read that fills its
    /// buffer stops with the next record already decrypted. So a complete record is never
    /// left encrypted in the inbound buffer behind an answer of `false`.
    pub fn has_plaintext(&self) -> bool {
        !self.staged.is_empty() || self.conn.holds_plaintext()
    }

    /// What a read would find now: plaintext, a need for input, the clean end, a
    /// truncation or a fatal error (see [`ReadStatus`]). Exact after every call, as
    /// [`has_plaintext`](Self::has_plaintext) is; plaintext received intact before an
    /// error or the end is [`ReadStatus::Ready`] until it has been read.
    pub fn read_status(&self) -> ReadStatus {
        if self.has_plaintext() {
            return ReadStatus::Ready;
        }
        match &self.read {
            ReadState::Open => ReadStatus::NeedInput,
            ReadState::PeerClosed => ReadStatus::Ended,
            ReadState::TransportEnded
            | ReadState::Failed {
                error: Error::Truncated,
                ..
            } => ReadStatus::Truncated,
            ReadState::Failed { .. } => ReadStatus::Failed,
        }
    }
}
