//! [`TlsSocket`]: one TLS connection over one smoltcp TCP socket. This module is its
//! API (construction, plaintext calls, getters); `pump` moves the bytes, `read` reads,
//! `deadlines` bounds what a peer may hold.

use alloc::sync::Arc;

use smoltcp::iface::{Context, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};
use tls_core::rustls::pki_types::{CertificateDer, ServerName};
use tls_core::rustls::{ClientConfig, ServerConfig};
use tls_core::{Event, HandshakeInfo, Session};

use crate::{Error, Options};

mod deadlines;
mod pump;
mod read;

// The worst per-record overhead and the largest plaintext per record, from the engine.
use tls_core::record::{MAX_FRAGMENT, WORST_OVERHEAD};

/// When [`TlsSocket::poll`] wants to be called again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum PollAt {
    /// The call moved bytes or changed state: run `Interface::poll` (to transmit what was
    /// queued) and then `TlsSocket::poll` again, until neither makes progress.
    Now,
    /// Nothing to do until network activity, an application call, or this time (the
    /// handshake deadline, the write-stall deadline of [`Options::write_timeout`], or
    /// the end of [`Options::error_linger`]), whichever comes first.
    Time(Instant),
    /// Nothing to do until network activity (`Interface::poll` returned
    /// `PollResult::SocketStateChanged`) or an application call.
    Ingress,
}

impl PollAt {
    /// The earlier of two wake-ups (`Now` < `Time` < `Ingress`), to merge the answers of
    /// several sockets.
    pub fn min(self, other: Self) -> Self {
        match (self, other) {
            (Self::Now, _) | (_, Self::Now) => Self::Now,
            (Self::Time(a), Self::Time(b)) => Self::Time(a.min(b)),
            (Self::Time(t), Self::Ingress) | (Self::Ingress, Self::Time(t)) => Self::Time(t),
            (Self::Ingress, Self::Ingress) => Self::Ingress,
        }
    }
}

/// What the socket was made for: the config of its connections.
enum Role {
    Client {
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    },
    Server {
        config: Arc<ServerConfig>,
    },
}

/// Where the socket's connection is; the engine's own state (handshake, close_notify
/// both ways, fatal error) is the session's, asked for, never copied.
enum Conn {
    /// No connection: not yet connected or listening, or closed before one came.
    Idle,
    /// A server waiting for its connection, with the config to serve it.
    Listening(Arc<ServerConfig>),
    /// A connection, from `connect` or an arrived one, until the socket is reused.
    Active(Session),
    /// [`TlsSocket::abort`] was called; the session stays for its getters.
    Aborted(Option<Session>),
}

/// A TLS connection over a smoltcp TCP socket, client or server.
///
/// The socket owns a [`tls_core::Session`] and the [`SocketHandle`] of a `tcp::Socket`
/// that lives in the embedder's [`SocketSet`]; every call that touches the network takes
/// that set. The embedder's loop is:
///
/// 1. `Interface::poll(now, device, sockets)`,
/// 2. [`poll(now, sockets)`](Self::poll) on every TLS socket, which copies received
///    ciphertext into the engine, drains the engine's output into the TCP send ring and
///    watches the TCP state;
/// 3. the application's [`send_slice`](Self::send_slice) / [`recv_slice`](Self::recv_slice);
/// 4. again from 1 while any of them made progress ([`PollAt::Now`]), else sleep until
///    the earliest of `Interface::poll_at` and the sockets' [`PollAt::Time`], or until a
///    packet arrives.
///
/// The plaintext calls follow smoltcp's `tcp::Socket`: [`send_slice`](Self::send_slice),
/// [`recv_slice`](Self::recv_slice), [`recv`](Self::recv) (read through a closure),
/// [`can_send`](Self::can_send) / [`can_recv`](Self::can_recv) (space or data now),
/// [`may_send`](Self::may_send) / [`may_recv`](Self::may_recv) (the state allows it),
/// [`close`](Self::close) (half-close: close_notify, then TCP FIN) and
/// [`abort`](Self::abort) (TCP RST).
///
/// # How bytes move (the rules that keep small rings from deadlocking)
///
/// * Received ciphertext is copied out of the TCP receive ring into the engine as it
///   arrives, in whatever pieces the ring holds; the engine reassembles records. A record
///   never has to fit the ring.
/// * The engine's own output (handshake, alerts, KeyUpdate, close_notify, and any
///   application data it had to stage) is drained into the send ring in partial pieces,
///   as far as the ring has room, always before new application data.
/// * Application data is encrypted straight into the send ring when nothing is staged,
///   sized to the ring's contiguous free space. When that contiguous part is a sliver in
///   front of the ring's wrap point, one record sized to the whole free space is staged
///   in the engine instead and drained at once in two pieces. Bytes are never reordered.
/// * While decrypted-but-unread plaintext is above [`tls_core::Limits::unread_plaintext`]
///   the socket stops reading from TCP, so the TCP window closes until the application
///   reads (backpressure).
///
/// # Errors and end of stream
///
/// The peer's close_notify ends the stream cleanly: reads return [`Error::Finished`]
/// once the data before it is read. A TCP FIN before close_notify is
/// [`Error::Truncated`], an RST (or a TCP timeout) is [`Error::Reset`], a handshake that
/// outlives [`Options::handshake_timeout`] is [`Error::HandshakeTimeout`], output the
/// peer leaves unacknowledged for [`Options::write_timeout`] is [`Error::WriteTimeout`].
/// These are sticky; reads still return the plaintext received intact before them.
///
/// After any fatal error the socket sends its alert, then the TCP FIN, by itself (see the
/// crate docs, "On a real wire"): do not [`abort`](Self::abort), which would throw the
/// alert away; wait for [`is_closed`](Self::is_closed) (bounded by
/// [`Options::error_linger`]), then remove the TCP socket.
pub struct TlsSocket {
    handle: SocketHandle,
    role: Role,
    options: Options,
    conn: Conn,
    /// When the handshake deadline started (first poll after connect, or the poll that
    /// saw a connection arrive).
    started: Option<Instant>,
    /// The first fatal error: the engine's, or the socket's own (RST, deadlines).
    error: Option<Error>,
    /// `close` was called (the engine holds a close during the handshake without saying).
    close_requested: bool,
    /// We called `tcp::Socket::close` (FIN queued).
    fin_sent: bool,
    /// The TCP receive half reached FIN and the engine was told.
    peer_fin: bool,
    /// The linger timeout has been handed to the TCP socket.
    lingering: bool,
    /// Write-stall watch: the send ring's length when last looked at, whether it has
    /// shrunk (bytes acknowledged) since `poll` last looked, and since when output has
    /// waited with nothing acknowledged.
    queue_mark: usize,
    acked: bool,
    stalled_since: Option<Instant>,
    /// When the TCP connection is reset if a fatal error has not closed it by then.
    error_deadline: Option<Instant>,
}

impl core::fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsSocket")
            .field("handle", &self.handle)
            .field("server", &matches!(self.role, Role::Server { .. }))
            .field("session", &self.session())
            .field("listening", &matches!(self.conn, Conn::Listening(_)))
            .field("aborted", &matches!(self.conn, Conn::Aborted(_)))
            .field("error", &self.error)
            .field("close_requested", &self.close_requested)
            .field("fin_sent", &self.fin_sent)
            .field("peer_fin", &self.peer_fin)
            .finish_non_exhaustive()
    }
}

impl TlsSocket {
    /// A client over the TCP socket `handle` (which the embedder added to its
    /// [`SocketSet`], with rings of its choosing). Call [`connect`](Self::connect) next.
    pub fn client(
        handle: SocketHandle,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        options: Options,
    ) -> Self {
        Self::new(
            handle,
            Role::Client {
                config,
                name: server_name,
            },
            options,
        )
    }

    /// A server over the TCP socket `handle`. Call [`listen`](Self::listen) next; it
    /// serves one connection (see [`TlsListener`](crate::TlsListener) for several).
    pub fn server(handle: SocketHandle, config: Arc<ServerConfig>, options: Options) -> Self {
        Self::new(handle, Role::Server { config }, options)
    }

    fn new(handle: SocketHandle, role: Role, options: Options) -> Self {
        Self {
            handle,
            role,
            options,
            conn: Conn::Idle,
            started: None,
            error: None,
            close_requested: false,
            fin_sent: false,
            peer_fin: false,
            lingering: false,
            queue_mark: 0,
            acked: false,
            stalled_since: None,
            error_deadline: None,
        }
    }

    /// Starts over in `conn`, forgetting the previous connection.
    fn reset(&mut self, conn: Conn) {
        self.conn = conn;
        self.started = None;
        self.error = None;
        self.close_requested = false;
        self.fin_sent = false;
        self.peer_fin = false;
        self.lingering = false;
        self.queue_mark = 0;
        self.acked = false;
        self.stalled_since = None;
        self.error_deadline = None;
    }

    /// The TCP socket's handle. Remove it from the [`SocketSet`] when done with the
    /// connection (after it has closed, or after [`abort`](Self::abort)).
    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// Opens the TCP connection (smoltcp's `tcp::Socket::connect`, with
    /// `cx = iface.context()`) and starts the TLS client; the ClientHello is sent as soon
    /// as TCP is established. A socket whose previous connection has ended may connect
    /// again.
    pub fn connect<T, U>(
        &mut self,
        cx: &mut Context,
        sockets: &mut SocketSet<'_>,
        remote: T,
        local: U,
    ) -> Result<(), Error>
    where
        T: Into<IpEndpoint>,
        U: Into<IpListenEndpoint>,
    {
        let Role::Client { config, name } = &self.role else {
            return Err(Error::InvalidState);
        };
        let session = Session::client(config.clone(), name.clone(), self.options.limits)?;
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        tcp.connect(cx, remote, local)?;
        if !self.options.nagle {
            tcp.set_nagle_enabled(false);
        }
        self.reset(Conn::Active(session));
        Ok(())
    }

    /// Listens for one connection on `endpoint`; the TLS server starts when it arrives.
    /// A socket whose previous connection has ended may listen again.
    pub fn listen<T>(&mut self, sockets: &mut SocketSet<'_>, endpoint: T) -> Result<(), Error>
    where
        T: Into<IpListenEndpoint>,
    {
        let Role::Server { config } = &self.role else {
            return Err(Error::InvalidState);
        };
        let config = config.clone();
        self.options.limits.validate()?;
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        tcp.listen(endpoint)?;
        if !self.options.nagle {
            tcp.set_nagle_enabled(false);
        }
        self.reset(Conn::Listening(config));
        Ok(())
    }

    // ------------------------------------------------------------------ plaintext

    /// Encrypts as much of `data` as the TCP send ring has room for and returns how many
    /// plaintext bytes were taken (`Ok(0)`: no room now, or the handshake is still
    /// running; call again after `poll`).
    ///
    /// Errors: [`Error::InvalidState`] before `connect`/a connection and after
    /// [`abort`](Self::abort); `Error::Tls(tls_core::Error::Closed)` after
    /// [`close`](Self::close), as tls-core gives; the socket's fatal error if it has one.
    pub fn send_slice(&mut self, sockets: &mut SocketSet<'_>, data: &[u8]) -> Result<usize, Error> {
        self.check_send()?;
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        self.watch_tcp(tcp);
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some(session) = self.session() else {
            return Err(Error::InvalidState);
        };
        if session.is_handshaking() || data.is_empty() {
            return Ok(0);
        }
        self.push_output(tcp);
        let mut taken = 0;
        let result = self.encrypt_into_ring(tcp, data, &mut taken);
        match result {
            Ok(()) => Ok(taken),
            Err(e) => {
                self.fail(e.clone());
                self.push_output(tcp);
                self.finish(tcp);
                if taken > 0 {
                    Ok(taken)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn check_send(&self) -> Result<(), Error> {
        if matches!(self.conn, Conn::Aborted(_)) {
            return Err(Error::InvalidState);
        }
        // The same error tls-core and every tls-unix flavour give for a write after close.
        if self.close_requested {
            return Err(Error::Tls(tls_core::Error::Closed));
        }
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Whether [`send_slice`](Self::send_slice) would take some data now: the handshake
    /// is done, sending is open, and the TCP send ring has room for a record beyond the
    /// engine's staged output.
    pub fn can_send(&self, sockets: &SocketSet<'_>) -> bool {
        if !self.may_send(sockets) {
            return false;
        }
        let tcp = sockets.get::<tcp::Socket>(self.handle);
        let staged = self.session().map_or(0, |s| s.pending_tls().len());
        let free = tcp.send_capacity() - tcp.send_queue();
        free > staged + WORST_OVERHEAD
    }

    /// Whether decrypted plaintext is waiting, so a read returns data now. Exact (the
    /// engine decrypts records as they arrive: see [`Session::has_plaintext`]); records
    /// still in the TCP receive ring are taken in by the next [`poll`](Self::poll) or read.
    pub fn can_recv(&self) -> bool {
        self.active().is_some_and(Session::has_plaintext)
    }

    /// Whether sending is open: the handshake is done, [`close`](Self::close) has not
    /// been called, there is no fatal error, and TCP's send half is open.
    pub fn may_send(&self, sockets: &SocketSet<'_>) -> bool {
        if self.close_requested || self.error.is_some() {
            return false;
        }
        let Some(session) = self.active() else {
            return false;
        };
        !session.is_handshaking()
            && !session.is_closed_for_send()
            && sockets.get::<tcp::Socket>(self.handle).may_send()
    }

    /// Whether more plaintext may arrive or is waiting: true until the peer's
    /// close_notify (or a fatal error) and everything before it has been read.
    pub fn may_recv(&self) -> bool {
        if self.can_recv() {
            return true;
        }
        if self.error.is_some() {
            return false;
        }
        match &self.conn {
            Conn::Active(session) => !session.peer_has_closed(),
            Conn::Listening(_) => true,
            Conn::Idle | Conn::Aborted(_) => false,
        }
    }

    /// Closes the sending half: queues close_notify after all data already sent, then the
    /// TCP FIN once it is in the send ring. Reading continues until the peer closes too
    /// (half-close). Called during the handshake, it takes effect when the handshake
    /// completes; on a socket that is not connected, it closes the TCP socket.
    pub fn close(&mut self, sockets: &mut SocketSet<'_>) {
        if matches!(self.conn, Conn::Aborted(_)) || self.close_requested {
            return;
        }
        self.close_requested = true;
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        match &mut self.conn {
            Conn::Active(session) => {
                if let Err(e) = session.close() {
                    self.fail(e.into());
                }
                self.push_output(tcp);
                self.finish(tcp);
            }
            _ => {
                self.conn = Conn::Idle;
                tcp.close();
                self.fin_sent = true;
            }
        }
    }

    /// Resets the connection at once (TCP RST), without close_notify, dropping whatever
    /// the TCP send ring still holds. Later calls return [`Error::InvalidState`].
    ///
    /// Not needed after a fatal [`error`](Self::error): the socket then sends its alert
    /// and closes by itself (see "Errors and end of stream" above), and an abort would
    /// throw that alert away.
    pub fn abort(&mut self, sockets: &mut SocketSet<'_>) {
        sockets.get_mut::<tcp::Socket>(self.handle).abort();
        self.conn = match core::mem::replace(&mut self.conn, Conn::Idle) {
            Conn::Active(session) => Conn::Aborted(Some(session)),
            _ => Conn::Aborted(None),
        };
    }

    /// Sends a TLS 1.3 KeyUpdate asking the peer to update its keys too.
    pub fn refresh_keys(&mut self, sockets: &mut SocketSet<'_>) -> Result<(), Error> {
        self.check_send()?;
        let Conn::Active(session) = &mut self.conn else {
            return Err(Error::InvalidState);
        };
        let result = session.refresh_keys();
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        self.push_output(tcp);
        result.map_err(Error::from)
    }

    // ------------------------------------------------------------------ events and getters

    /// The next engine event (handshake complete, peer closed, closed, keys updated),
    /// oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        match &mut self.conn {
            Conn::Active(session) => session.poll_event(),
            _ => None,
        }
    }

    /// Whether a connection is being made: TCP connecting or the TLS handshake running.
    pub fn is_handshaking(&self) -> bool {
        self.error.is_none() && self.active().is_some_and(Session::is_handshaking)
    }

    /// Whether the handshake has completed (it stays true after the connection ends).
    pub fn is_established(&self) -> bool {
        self.handshake_info().is_some()
    }

    /// Whether the connection is over in both directions: close_notify sent and received
    /// (or a fatal error, or an abort) and the TCP socket closed or in TIME-WAIT.
    pub fn is_closed(&self, sockets: &SocketSet<'_>) -> bool {
        let tcp = sockets.get::<tcp::Socket>(self.handle);
        let tcp_done = matches!(tcp.state(), tcp::State::Closed | tcp::State::TimeWait);
        if matches!(self.conn, Conn::Aborted(_)) || self.error.is_some() {
            return tcp_done;
        }
        let tls_done = self
            .session()
            .is_some_and(|s| s.peer_has_closed() && s.is_closed_for_send() && !s.has_output());
        tls_done && tcp_done
    }

    /// What the handshake negotiated, once it is complete.
    pub fn handshake_info(&self) -> Option<&HandshakeInfo> {
        self.session()?.handshake_info()
    }

    /// Keying material exported from the session (RFC 8446 §7.5; TLS 1.3 only): see
    /// [`Session::export_keying_material`].
    pub fn export_keying_material(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        let session = self.session().ok_or(Error::InvalidState)?;
        Ok(session.export_keying_material(out, label, context)?)
    }

    /// The peer's certificate chain, leaf first, once the handshake has verified it.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.session()?.peer_certificates()
    }

    /// The socket's fatal error, if it has one.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The engine, for reading its state (`None` before a connection).
    pub fn session(&self) -> Option<&Session> {
        match &self.conn {
            Conn::Active(session) | Conn::Aborted(Some(session)) => Some(session),
            _ => None,
        }
    }

    /// The session of a connection that runs (not aborted).
    pub(super) fn active(&self) -> Option<&Session> {
        match &self.conn {
            Conn::Active(session) => Some(session),
            _ => None,
        }
    }

    /// Heap bytes this socket holds now for buffers: the engine's (see
    /// [`Session::buffered_bytes`]); the socket has none of its own. Not counting rustls'
    /// own state or the TCP rings (see the crate docs for the full figure).
    pub fn buffered_bytes(&self) -> usize {
        self.session().map_or(0, Session::buffered_bytes)
    }
}
