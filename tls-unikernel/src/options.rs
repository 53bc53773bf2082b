//! Per-connection settings.

use smoltcp::time::Duration;
use tls_core::Limits;

/// Settings of one [`TlsSocket`](crate::TlsSocket).
///
/// ```
/// use smoltcp::time::Duration;
/// let options = tls_unikernel::Options {
///     handshake_timeout: Some(Duration::from_secs(5)),
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The engine's memory limits. [`Limits::unread_plaintext`] is the backpressure
    /// point: above it the socket stops reading from TCP, the TCP receive ring fills and
    /// the window closes until the application reads.
    pub limits: Limits,
    /// How long the handshake may take, measured on the embedder's clock (the `now`
    /// given to [`TlsSocket::poll`](crate::TlsSocket::poll)) from the first poll that
    /// sees the TCP connection open. `None`: no limit. Default 30 s.
    pub handshake_timeout: Option<Duration>,
    /// Size of the buffer that holds decrypted plaintext for
    /// [`TlsSocket::recv`](crate::TlsSocket::recv) (the closure form) and
    /// [`TlsSocket::can_recv`](crate::TlsSocket::can_recv). Allocated only while it
    /// holds data. Default 4 KiB; at least 1.
    pub read_chunk: usize,
    /// How long the TCP connection may stay silent while it closes, once the TLS
    /// connection is over (close_notify sent and received, or a fatal error): the socket
    /// then sets this as the `tcp::Socket` timeout (unless the embedder set one), so a
    /// peer that never finishes the TCP close cannot hold the socket forever. It also
    /// covers a smoltcp 0.14 defect: after a fast retransmit with only the FIN
    /// outstanding, smoltcp stops the retransmission timer and never resends the FIN.
    /// `None`: wait forever. Default 10 s.
    pub linger: Option<Duration>,
    /// TCP keep-alive interval set on the TCP socket when the connection starts (unless
    /// the embedder set one). Besides noticing dead peers (with a `tcp::Socket` timeout),
    /// it keeps a connection from hanging on a smoltcp 0.14 defect: when the peer's window
    /// update is lost while its window is zero and nothing is in flight, smoltcp runs no
    /// persist timer; the keep-alive probe makes the peer advertise its window again.
    /// `None`: leave keep-alive off. Default 5 s.
    pub keep_alive: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            handshake_timeout: Some(Duration::from_secs(30)),
            read_chunk: 4096,
            linger: Some(Duration::from_secs(10)),
            keep_alive: Some(Duration::from_secs(5)),
        }
    }
}

/// Settings of a [`TlsListener`](crate::TlsListener): the TCP sockets it makes and how
/// many of them wait for connections at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Settings of every accepted connection.
    pub socket: Options,
    /// TCP receive ring of each connection, in bytes. Default 16 KiB.
    pub rx_ring: usize,
    /// TCP send ring of each connection, in bytes. Default 16 KiB.
    pub tx_ring: usize,
    /// How many TCP sockets listen at once (smoltcp has no accept queue: each listening
    /// socket takes one connection). Default 2; at least 1.
    pub backlog: usize,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            socket: Options::default(),
            rx_ring: 16 * 1024,
            tx_ring: 16 * 1024,
            backlog: 2,
        }
    }
}
