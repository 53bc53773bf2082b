//! The HTTPS (or echo) server: one [`Server`] holds the listener and every open
//! connection, and [`Server::poll`] steps them all as far as their sockets allow, never
//! waiting. The embedder polls the interface, calls [`Server::poll`], and sleeps until a
//! frame or [`Poll::wake`] ([`run_server`](crate::run_server) is that loop).
//!
//! # Memory
//!
//! Each connection, and each listening socket of the backlog, owns two TCP rings
//! ([`Config::rx_ring`], [`Config::tx_ring`]: about 64 KiB each by default). An open connection adds its TLS state and bounded buffers:
//! the engine's (see tls-unikernel), the request head being read (at most
//! [`Config::max_head`] plus one read), and the record being sent (at most 16 KiB).
//! `/bytes/N` is generated a record at a time, never held whole.

mod conn;

use alloc::sync::Arc;
use alloc::vec::Vec;

use rustls::ServerConfig;
use smoltcp::iface::SocketSet;
use smoltcp::time::Instant;
use tls_unikernel::{ListenerOptions, Options, PollAt, TlsListener};

use crate::config::Config;
use conn::Connection;

/// Plaintext of one full TLS record.
pub(crate) const RECORD: usize = 16 * 1024;

/// What a [`Server::poll`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Poll {
    /// Something moved: poll the interface and the server again at once.
    pub busy: bool,
    /// The earliest time the server needs a poll even if no frame arrives.
    pub wake: Option<Instant>,
}

/// The server: a listener and its connections, stepped from one loop.
pub struct Server {
    listener: Option<TlsListener>,
    conns: Vec<Connection>,
    config: Config,
    accepted: u64,
    scratch: Vec<u8>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("listening", &self.listener.is_some())
            .field("open", &self.conns.len())
            .field("accepted", &self.accepted)
            .finish()
    }
}

impl Server {
    /// Listens on `port` with `config`'s backlog and rings.
    pub fn new(
        sockets: &mut SocketSet<'_>,
        port: u16,
        tls: Arc<ServerConfig>,
        config: Config,
    ) -> Result<Self, tls_unikernel::Error> {
        let options = ListenerOptions {
            socket: Options {
                handshake_timeout: Some(config.handshake_timeout),
                ..Options::default()
            },
            rx_ring: config.rx_ring,
            // Responses go out in whole records: the ring must hold one.
            tx_ring: config.tx_ring.max(RECORD + 64),
            backlog: config.backlog.max(1),
        };
        let listener = TlsListener::new(sockets, port, tls, options)?;
        Ok(Self {
            listener: Some(listener),
            conns: Vec::new(),
            config,
            accepted: 0,
            scratch: alloc::vec![0; RECORD],
        })
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Whether the server is over: `max_connections` were served and have ended.
    pub fn is_done(&self) -> bool {
        self.listener.is_none() && self.conns.is_empty()
    }

    /// Accepts what has arrived (while there are free slots), steps every connection,
    /// logs and removes those that ended. Call after every `Interface::poll`.
    pub fn poll(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        log: &mut dyn FnMut(&str),
    ) -> Poll {
        let mut busy = self.accept(now, sockets);
        let mut wake: Option<Instant> = None;
        let mut earliest = |t: Instant| wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
        for conn in &mut self.conns {
            match conn.tls.poll(now, sockets) {
                PollAt::Now => busy = true,
                PollAt::Time(t) => earliest(t),
                PollAt::Ingress => {}
            }
            busy |= conn.step(now, sockets, &mut self.scratch, &self.config);
            earliest(conn.deadline());
        }
        self.retire(sockets, log);
        Poll { busy, wake }
    }

    fn accept(&mut self, now: Instant, sockets: &mut SocketSet<'_>) -> bool {
        let Some(listener) = self.listener.as_mut() else {
            return false;
        };
        let mut any = false;
        while self.conns.len() < self.config.max_concurrent.max(1)
            && self
                .config
                .max_connections
                .is_none_or(|max| self.accepted < max)
        {
            let Some(tls) = listener.accept(sockets) else {
                break;
            };
            self.accepted += 1;
            self.conns
                .push(Connection::new(tls, sockets, now, &self.config));
            any = true;
        }
        if self
            .config
            .max_connections
            .is_some_and(|max| self.accepted >= max)
        {
            if let Some(listener) = self.listener.take() {
                listener.close(sockets);
            }
        }
        any
    }

    fn retire(&mut self, sockets: &mut SocketSet<'_>, log: &mut dyn FnMut(&str)) {
        self.conns.retain_mut(|conn| match conn.done_line() {
            Some(line) => {
                log(line);
                sockets.remove(conn.tls.handle());
                false
            }
            None => true,
        });
    }

    /// Stops: resets every open connection (logged `close=error: stopped`, unless its
    /// TLS part was over), stops listening. Poll the interface once afterwards so the
    /// RSTs go out, then call [`Server::finish_shutdown`].
    pub fn shutdown(&mut self, now: Instant, sockets: &mut SocketSet<'_>) {
        for conn in &mut self.conns {
            conn.stop(now, sockets);
        }
        if let Some(listener) = self.listener.take() {
            listener.close(sockets);
        }
    }

    /// After [`Server::shutdown`] and an interface poll: logs and removes every
    /// connection.
    pub fn finish_shutdown(&mut self, sockets: &mut SocketSet<'_>, log: &mut dyn FnMut(&str)) {
        for conn in &mut self.conns {
            conn.mark_done();
        }
        self.retire(sockets, log);
    }
}
