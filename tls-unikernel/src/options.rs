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
    /// sees the TCP connection open; when it passes, the TCP connection is reset. This
    /// also bounds a peer that sends nothing, or a handshake message in pieces too slowly.
    /// `None`: no limit. Default 10 s.
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
    /// How long a fatal error may take to end the TCP connection. After a fatal error
    /// the socket queues the TLS alert (behind anything queued before it, such as
    /// session tickets) in the TCP send ring, then the TCP FIN, and discards what the
    /// peer still sends. If the TCP connection has not closed (both FINs, or TIME-WAIT)
    /// this long after the error, because the peer does not take the bytes or never
    /// closes its side, the socket resets it (RST). `None`: wait as long as TCP does.
    /// Default 2 s.
    pub error_linger: Option<Duration>,
    /// How long the peer may leave our output unacknowledged: while ciphertext waits in
    /// the TCP send ring (or in the engine) and no byte of it is acknowledged for this
    /// long (a peer that stopped reading, with its window shut), the connection fails
    /// with [`Error::WriteTimeout`](crate::Error::WriteTimeout) and is reset, freeing
    /// the socket. The clock restarts with every acknowledgement, so a slow reader that
    /// takes data keeps its connection. `None`: wait forever. Default 10 s.
    pub write_timeout: Option<Duration>,
    /// Whether Nagle's algorithm stays on. `false` (the default): the socket turns it off
    /// (`tcp::Socket::set_nagle_enabled(false)`, `TCP_NODELAY` in socket terms) in
    /// [`connect`](crate::TlsSocket::connect) and [`listen`](crate::TlsSocket::listen).
    /// TLS writes whole flights and records, so Nagle only delays them: a handshake
    /// flight larger than one segment would have its tail held until the peer's delayed
    /// ACK of the first segment (about 40 ms on Linux). `true` leaves the TCP socket's
    /// setting as the embedder made it.
    pub nagle: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            handshake_timeout: Some(Duration::from_secs(10)),
            read_chunk: 16 * 1024,
            linger: Some(Duration::from_secs(10)),
            keep_alive: Some(Duration::from_secs(5)),
            error_linger: Some(Duration::from_secs(2)),
            write_timeout: Some(Duration::from_secs(10)),
            nagle: false,
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
