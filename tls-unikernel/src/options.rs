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
    /// The most plaintext one [`TlsSocket::recv`](crate::TlsSocket::recv) (the closure
    /// form) hands its closure at once. No buffer is allocated for it: the closure reads
    /// the engine's decrypted plaintext in place (one record, at most 16 KiB, or what the
    /// engine staged from earlier records), and this only caps the slice it sees.
    /// Default 16 KiB; at least 1.
    pub read_chunk: usize,
    /// How long the TCP connection may stay silent while it closes, once the TLS
    /// connection is over (close_notify sent and received, or a fatal error): the socket
    /// then sets this as the `tcp::Socket` timeout (unless the embedder set one), so a
    /// peer that never finishes the TCP close cannot hold the socket forever. It also
    /// bounds a defect of an unpatched smoltcp 0.14.0 (fixed in the copy tlsflow builds
    /// with, see the crate docs): after a fast retransmit with only the FIN outstanding,
    /// smoltcp stops the retransmission timer and never resends the FIN.
    /// `None`: wait forever. Default 10 s.
    pub linger: Option<Duration>,
    /// TCP keep-alive interval set on the TCP socket when the connection starts (unless
    /// the embedder set one). Besides noticing dead peers (with a `tcp::Socket` timeout),
    /// it keeps a connection from hanging on a defect of an unpatched smoltcp 0.14.0
    /// (fixed in the copy tlsflow builds with, see the crate docs): after a retransmission
    /// timeout into a zero window smoltcp runs no persist timer, so a lost window update
    /// would stall it; the keep-alive probe makes the peer advertise its window again.
    /// `None`: leave keep-alive off. Default 5 s.
    pub keep_alive: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            handshake_timeout: Some(Duration::from_secs(30)),
            read_chunk: 16 * 1024,
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
