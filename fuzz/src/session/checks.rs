//! What a session script checks: a clean end, a fatal error, the invariants between any two
//! operations, and the end of the script.

use super::*;

impl Run {
    pub(super) fn on_clean_end(&mut self) {
        assert!(
            self.victim.peer_has_closed(),
            "recv gave Ok(0) without the peer's close_notify"
        );
        if self.victim.handshake_info().is_some() {
            // After the handshake a close_notify cannot be forged: it is the peer's, and
            // every byte the peer sent before it has been read.
            assert_eq!(
                self.peer_closed_at,
                Some(self.received),
                "Ok(0) after {} bytes; the peer closed after {:?}",
                self.received,
                self.peer_closed_at
            );
        }
        self.clean_end = true;
    }

    pub(super) fn on_error(&mut self, e: &Error, what: &str) {
        match e {
            Error::WouldBlock => {
                assert_eq!(what, "recv", "WouldBlock from {what}");
                assert!(
                    self.victim.error().is_none(),
                    "WouldBlock after a fatal error"
                );
            }
            e if e.is_fatal() => {
                assert_same_error(
                    self.victim.error(),
                    Some(e),
                    &format!("{what} returned a fatal error the session does not keep"),
                );
                if let Some(first) = &self.error {
                    assert_same_error(Some(first), Some(e), &format!("{what}: a second error"));
                }
                self.error = Some(e.clone());
            }
            Error::Closed | Error::Handshaking | Error::KeyUpdateNeedsTls13 => {
                assert!(
                    matches!(
                        what,
                        "send" | "close" | "refresh_keys" | "flush" | "set_coalescing"
                    ),
                    "{what} returned {e:?}"
                );
                assert!(
                    self.victim.error().is_none(),
                    "{what}: {e:?} hides a fatal error"
                );
            }
            other => panic!("{what} returned {other:?}"),
        }
    }

    /// The invariants that hold between any two operations.
    pub(super) fn check(&mut self) {
        match (&self.error, self.victim.error()) {
            (Some(first), now) => assert_same_error(now, Some(first), "the fatal error changed"),
            (None, Some(e)) => self.error = Some(e.clone()),
            (None, None) => {}
        }
        while let Some(event) = self.victim.poll_event() {
            match event {
                Event::HandshakeComplete(_) => {
                    assert!(!self.handshake_done, "HandshakeComplete twice");
                    assert!(!self.victim.is_handshaking());
                    assert!(self.victim.handshake_info().is_some());
                    self.handshake_done = true;
                }
                Event::PeerClosed => {
                    assert!(!self.peer_closed_event, "PeerClosed twice");
                    assert!(self.victim.peer_has_closed());
                    self.peer_closed_event = true;
                }
                Event::Closed => {
                    assert!(!self.closed_event, "Closed twice");
                    assert!(self.peer_closed_event, "Closed before PeerClosed");
                    assert!(self.victim.has_sent_close_notify());
                    self.closed_event = true;
                }
                Event::KeysUpdated(_) => {
                    assert!(self.handshake_done, "KeysUpdated during the handshake");
                }
                other => panic!("unknown event {other:?}"),
            }
        }
        let flight = 64 * 1024;
        let pending = self.victim.pending_tls().len();
        assert!(
            pending <= flight + self.limits.outbound + self.out_allowance,
            "{pending} bytes of output queued (allowance {})",
            self.out_allowance
        );
        let inbound = MAX_RECORD + MAX_HANDSHAKE_MESSAGE + self.limits.inbound;
        let bound = 2 * inbound
            + 2 * (flight + self.limits.outbound + self.out_allowance)
            + 2 * (self.limits.unread_plaintext + inbound)
            + 2 * 16_384;
        assert!(
            self.victim.buffered_bytes() <= bound,
            "{} bytes of buffers (bound {bound})",
            self.victim.buffered_bytes()
        );
    }

    pub(super) fn finish(mut self) {
        if self.peer.is_some() {
            if self.victim.error().is_none() {
                if let Err(e) = self.victim.flush() {
                    self.on_error(&e, "flush");
                }
            }
            assert!(!self.pump(1024), "livelock: still moving after 1024 rounds");
            let peer_ok = self.peer.as_ref().is_some_and(|p| p.error().is_none());
            if !self.tampered && !self.eof && self.victim.error().is_none() && peer_ok {
                assert!(
                    !self.victim.is_handshaking(),
                    "clean handshake did not finish"
                );
                assert_eq!(self.received, self.peer_sent, "data lost on the way in");
                assert_eq!(
                    self.peer_received, self.victim_sent,
                    "data lost on the way out"
                );
                if self.peer_closed_at.is_some() {
                    assert!(self.clean_end, "the peer's close_notify was not seen");
                }
            }
        } else {
            self.pump(64);
        }
        // Stickiness: every call after a fatal error returns it.
        if let Some(e) = self.victim.error().cloned() {
            let junk = b"\x17\x03\x03\x00\x01x";
            assert_fails(
                self.victim.read_tls(junk),
                &e,
                "receive after a fatal error",
            );
            assert!(self.victim.tls_read_buffer().is_empty());
            assert_fails(
                self.victim.commit_tls_read(0),
                &e,
                "commit after a fatal error",
            );
            for _ in 0..(MAX_RECORD + MAX_HANDSHAKE_MESSAGE) {
                // Plaintext decrypted before the error may still be read, then the error.
                match self.recv(MAX_CHUNK) {
                    Ok(1..) => {}
                    other => {
                        assert_fails(other, &e, "recv after a fatal error");
                        break;
                    }
                }
            }
            assert_fails(self.recv(1), &e, "recv after a fatal error");
            assert_fails(self.victim.send(b"x"), &e, "send after a fatal error");
            assert_fails(self.victim.close(), &e, "close after a fatal error");
            assert_fails(
                self.victim.refresh_keys(),
                &e,
                "refresh_keys after a fatal error",
            );
            assert_same_error(self.victim.error(), Some(&e), "error() after a fatal error");
        }
        self.check();
    }
}
