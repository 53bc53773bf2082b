//! The pump, [`TlsSocket::poll`], and its steps: moving ciphertext between the engine
//! and the TCP rings, and turning what TCP and the engine report into the socket's state.

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use tls_core::{ReadStatus, Session};

use super::{Conn, PollAt, TlsSocket, MAX_FRAGMENT, WORST_OVERHEAD};
use crate::Error;
#[cfg(doc)]
use crate::Options;

impl TlsSocket {
    /// Moves bytes between the engine and the TCP socket and watches the connection;
    /// call it after every `Interface::poll`. Returns when it wants to be called again.
    ///
    /// In order: starts the server engine when a connection has arrived; copies received
    /// ciphertext from the TCP receive ring into the engine (unless unread plaintext is
    /// above its limit); drains the engine's output into the TCP send ring; sends the TCP
    /// FIN once close_notify (or a fatal alert) is out; notices RST, FIN before
    /// close_notify and the deadlines ([`Options::handshake_timeout`],
    /// [`Options::write_timeout`], and [`Options::error_linger`] after a fatal error);
    /// turns a clean end or a truncation found in the received bytes into the socket's
    /// state, and a fatal error into its alert, then the FIN.
    pub fn poll(&mut self, now: Instant, sockets: &mut SocketSet<'_>) -> PollAt {
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        let mut progress = false;
        if let Conn::Listening(config) = &self.conn {
            match tcp.state() {
                tcp::State::Listen | tcp::State::SynReceived => return PollAt::Ingress,
                tcp::State::Closed | tcp::State::TimeWait => {
                    // The connection came and went between two polls.
                    self.conn = Conn::Idle;
                    self.fail(Error::Reset);
                    return PollAt::Now;
                }
                _ => {}
            }
            match Session::server(config.clone(), self.options.limits) {
                Ok(session) => self.conn = Conn::Active(session),
                Err(e) => {
                    self.conn = Conn::Idle;
                    self.fail(e.into());
                    return PollAt::Now;
                }
            }
            progress = true;
        }
        if !matches!(self.conn, Conn::Active(_)) {
            return PollAt::Ingress;
        }
        if self.started.is_none() {
            self.started = Some(now);
            if tcp.keep_alive().is_none() {
                tcp.set_keep_alive(self.options.keep_alive);
            }
        }
        progress |= self.pull_input(tcp);
        progress |= self.push_output(tcp);
        progress |= self.watch_tcp(tcp);
        if self.note_end() {
            progress = true;
            self.push_output(tcp);
        }
        // After note_end, so an error found in the input sends its alert and FIN now.
        progress |= self.finish(tcp);
        self.linger(tcp);
        progress |= self.discard_after_error(tcp);
        let wake = self.deadlines(now, tcp);
        if progress {
            PollAt::Now
        } else {
            wake
        }
    }

    /// Records the first fatal error; later ones are consequences of it.
    pub(super) fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Copies received ciphertext from the TCP receive ring into the engine.
    pub(super) fn pull_input(&mut self, tcp: &mut tcp::Socket<'_>) -> bool {
        let Conn::Active(session) = &mut self.conn else {
            return false;
        };
        let mut progress = false;
        let mut failed = None;
        while session.wants_input() {
            let taken = tcp.recv(|buf| {
                if buf.is_empty() {
                    return (0, Ok(0));
                }
                match session.read_tls(buf) {
                    Ok(n) => (n, Ok(n)),
                    Err(e) => (0, Err(e)),
                }
            });
            match taken {
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => progress = true,
                Ok(Err(e)) => {
                    failed = Some(Error::from(e));
                    break;
                }
                Err(tcp::RecvError::Finished) => {
                    if !self.peer_fin {
                        // `note_end` and reads report what the end means.
                        self.peer_fin = true;
                        session.read_tls_eof();
                        progress = true;
                    }
                    break;
                }
                Err(tcp::RecvError::InvalidState) => break,
            }
        }
        if let Some(e) = failed {
            self.fail(e);
            progress = true;
        }
        progress
    }

    /// Drains the engine's pending output into the TCP send ring, as far as it has room.
    pub(super) fn push_output(&mut self, tcp: &mut tcp::Socket<'_>) -> bool {
        self.track_acks(tcp);
        let Conn::Active(session) = &mut self.conn else {
            return false;
        };
        let mut progress = false;
        loop {
            let out = session.pending_tls();
            if out.is_empty() {
                break;
            }
            match tcp.send_slice(out) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    session.tls_written(n);
                    progress = true;
                }
            }
        }
        self.track_acks(tcp);
        progress
    }

    /// Turns a TCP connection that closed without both FINs (RST, TCP timeout) into
    /// [`Error::Reset`]. (A FIN before close_notify reaches the engine, whose `recv`
    /// reports it as truncation once the data before it has been read.)
    pub(super) fn watch_tcp(&mut self, tcp: &mut tcp::Socket<'_>) -> bool {
        if self.error.is_some() {
            return false;
        }
        let Some(session) = self.active() else {
            return false;
        };
        match tcp.state() {
            tcp::State::Closed => {
                // Clean only if both sides closed and everything we sent was acknowledged
                // (an RST or a timeout leaves unacknowledged bytes in the send ring).
                let clean = self.fin_sent
                    && (session.peer_has_closed() || self.peer_fin)
                    && tcp.send_queue() == 0;
                if !clean {
                    self.fail(Error::Reset);
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// Sends the TCP FIN once nothing more will be sent: after close_notify, or after
    /// the alert of a fatal error, has been queued in the send ring.
    pub(super) fn finish(&mut self, tcp: &mut tcp::Socket<'_>) -> bool {
        if self.fin_sent {
            return false;
        }
        let Some(session) = self.active() else {
            return false;
        };
        let done_sending = match &self.error {
            Some(_) => true,
            None => self.close_requested && !session.is_handshaking(),
        };
        if done_sending && !session.has_output() {
            tcp.close();
            self.fin_sent = true;
            return true;
        }
        false
    }

    /// Bounds the TCP close once the TLS connection is over (see [`Options::linger`](crate::Options::linger)).
    pub(super) fn linger(&mut self, tcp: &mut tcp::Socket<'_>) {
        if self.lingering || !self.fin_sent {
            return;
        }
        let Some(session) = self.active() else {
            return;
        };
        // Only once everything we sent has been acknowledged: a peer that is merely slow
        // must not lose data to the timeout.
        let over = self.error.is_some()
            || (session.peer_has_closed() && !session.has_output() && tcp.send_queue() == 0);
        if over {
            self.lingering = true;
            if tcp.timeout().is_none() {
                tcp.set_timeout(self.options.linger);
            }
        }
    }

    /// Records the end of the stream the engine reports as the socket's error once the
    /// plaintext before it has been read: a truncation, or the engine's fatal error. True
    /// if that is news.
    pub(super) fn note_end(&mut self) -> bool {
        let Some(session) = self.active() else {
            return false;
        };
        let end = match session.read_status() {
            ReadStatus::Truncated => tls_core::Error::Truncated,
            ReadStatus::Failed => match session.error() {
                Some(e) => e.clone(),
                None => return false,
            },
            _ => return false,
        };
        if self.error.is_some() {
            return false;
        }
        self.fail(end.into());
        true
    }

    pub(super) fn encrypt_into_ring(
        &mut self,
        tcp: &mut tcp::Socket<'_>,
        data: &[u8],
        taken: &mut usize,
    ) -> Result<(), Error> {
        self.track_acks(tcp);
        while *taken < data.len() {
            let Conn::Active(session) = &mut self.conn else {
                break;
            };
            if session.has_output() {
                break;
            }
            let free = tcp.send_capacity() - tcp.send_queue();
            if free <= WORST_OVERHEAD {
                break;
            }
            let rest = &data[*taken..];
            let direct = tcp.send(|buf| {
                // Straight into the ring when its contiguous part is a fair share of the
                // free space, or holds all of `rest`.
                let whole = rest.len() <= MAX_FRAGMENT && buf.len() >= rest.len() + WORST_OVERHEAD;
                if buf.len() * 2 < free && !whole {
                    return (0, Ok(None));
                }
                match session.send_into(rest, buf) {
                    Ok(done) => (done.written, Ok(Some(done.consumed))),
                    Err(e) => (0, Err(e)),
                }
            });
            match direct {
                Err(_) => break,
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(Some(0))) => break,
                Ok(Ok(Some(n))) => *taken += n,
                Ok(Ok(None)) => {
                    // The contiguous part is a sliver before the wrap point: stage one
                    // record that fits the whole free space; it drains at once.
                    let want = rest.len().min(MAX_FRAGMENT).min(free - WORST_OVERHEAD);
                    let n = session.send(&rest[..want])?;
                    *taken += n;
                    self.push_output(tcp);
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        self.track_acks(tcp);
        Ok(())
    }
}
