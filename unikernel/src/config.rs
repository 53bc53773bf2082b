//! Every limit of the application, in one struct.

use smoltcp::time::Duration;

/// The server's limits and modes. Memory per connection is bounded by these plus the
/// TLS engine's limits (see tls-unikernel's "Memory per connection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Echo application data back instead of speaking HTTP.
    pub echo: bool,
    /// The backend name the `/` page shows.
    pub backend: &'static str,
    /// Connections served at once; more wait in the backlog.
    pub max_concurrent: usize,
    /// TCP sockets listening at once (smoltcp has no accept queue).
    pub backlog: usize,
    /// Stop listening after this many connections (`None`: never).
    pub max_connections: Option<u64>,
    /// TCP receive ring of each connection, in bytes.
    pub rx_ring: usize,
    /// TCP send ring of each connection, in bytes. The default holds four full TLS
    /// records with their overhead (a little over 64 KiB): the server sends only whole
    /// records, so a ring of exactly 64 KiB would keep three in flight, not four. At
    /// least one record (16 KiB and a little) is used whatever is set.
    pub tx_ring: usize,
    /// Largest request head, in bytes (over it: `431`).
    pub max_head: usize,
    /// Largest request body, in bytes (over it: `413`).
    pub max_body: u64,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long a request head may take from its first byte (then `408`).
    pub header_timeout: Duration,
    /// How long a connection may wait for its next request (then close_notify).
    pub idle_timeout: Duration,
    /// How long a request body or a response may stall (then reset).
    pub io_timeout: Duration,
    /// How long the close may take once our close_notify is out (then reset).
    pub close_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            echo: false,
            backend: "unikernel",
            max_concurrent: 16,
            backlog: 8,
            max_connections: None,
            rx_ring: 64 * 1024,
            tx_ring: 4 * (16 * 1024 + 29) + 1024,
            max_head: 16 * 1024,
            max_body: 64 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(15),
        }
    }
}
