//! One side of a [`Pair`](super::Pair): its session and what the harness saw of it.

use tls_core::{Error, Event, Session};

/// A session and what the harness observed of it.
#[derive(Debug)]
pub struct Endpoint {
    /// The session under test.
    pub session: Session,
    /// Events polled so far, oldest first (the harness polls after every step).
    pub events: Vec<Event>,
    /// Plaintext read so far (by [`Pair::read_available`](super::Pair::read_available), which steps call when
    /// [`Pair::auto_read`](super::Pair::auto_read) is on).
    pub plaintext: Vec<u8>,
    /// Whether [`Session::recv`] has returned `Ok(0)`: the peer's close_notify arrived and
    /// every byte before it was read.
    pub clean_eof: bool,
    /// The first fatal error the harness saw from this session (from `read_tls`,
    /// `commit_tls_read` or `recv`).
    pub error: Option<Error>,
}

impl Endpoint {
    pub(super) fn new(session: Session) -> Self {
        Self {
            session,
            events: Vec::new(),
            plaintext: Vec::new(),
            clean_eof: false,
            error: None,
        }
    }

    pub(super) fn note_error(&mut self, e: &Error) {
        if e.is_fatal() && self.error.is_none() {
            self.error = Some(e.clone());
        }
    }

    /// Whether the session can no longer take input: it failed, the peer closed, or the
    /// transport ended.
    pub(super) fn is_dead(&self) -> bool {
        self.error.is_some() || self.session.error().is_some() || self.session.peer_has_closed()
    }
}
