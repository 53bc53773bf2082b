//! Memory limits of a [`Session`](crate::Session).

pub use crate::record::MAX_RECORD;

/// The largest handshake message rustls 0.23 accepts (its length field is 16 bits wide
/// in practice). rustls joins a fragmented handshake message in place in the inbound
/// buffer, so while the handshake runs the buffer may need this much on top of one record.
pub const MAX_HANDSHAKE_MESSAGE: usize = 0xffff;

/// The smallest outbound limit: room for a record with a little plaintext (TLS 1.2 GCM
/// adds 29 bytes to each record).
pub const MIN_OUTBOUND: usize = 64;

/// Every bound on the memory a [`Session`](crate::Session) uses for its buffers.
///
/// Buffers grow to these limits only as needed, and empty ones are released when the
/// session goes quiet (see [`Session::release_buffers`](crate::Session::release_buffers)).
///
/// ```
/// let limits = tls_core::Limits { outbound: 32 * 1024, ..Default::default() };
/// assert!(limits.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most ciphertext held before rustls has processed it, once the handshake is done.
    /// At least [`MAX_RECORD`], so one record can always be completed. During the
    /// handshake the bound is raised to `MAX_RECORD + MAX_HANDSHAKE_MESSAGE` so a large
    /// certificate chain cannot deadlock the session.
    pub inbound: usize,
    /// Soft limit on queued outbound ciphertext: [`Session::send`](crate::Session::send)
    /// accepts plaintext only while the queue is below it. Handshake messages, alerts and
    /// KeyUpdate replies are always queued (they are small and bounded by the protocol),
    /// so control traffic never waits for application data to drain.
    pub outbound: usize,
    /// Most application data held unread (decrypted and not yet taken by
    /// [`Session::recv`](crate::Session::recv), plus ciphertext waiting behind it). Above
    /// it, [`Session::read_tls`](crate::Session::read_tls) takes only what completes the
    /// record in flight and [`Session::wants_input`](crate::Session::wants_input) is
    /// false: the binding should stop reading from its transport.
    pub unread_plaintext: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            inbound: 2 * MAX_RECORD,
            outbound: 64 * 1024,
            unread_plaintext: 64 * 1024,
        }
    }
}

impl Limits {
    /// Checks that the limits allow a session to make progress.
    pub fn validate(&self) -> Result<(), crate::Error> {
        if self.inbound < MAX_RECORD {
            return Err(crate::Error::InvalidLimits(
                "inbound limit must hold one maximal record (18437 bytes)",
            ));
        }
        if self.outbound < MIN_OUTBOUND {
            return Err(crate::Error::InvalidLimits(
                "outbound limit must hold a small record (64 bytes)",
            ));
        }
        Ok(())
    }

    /// The inbound bound in force while the handshake runs.
    pub(crate) fn handshake_inbound(&self) -> usize {
        self.inbound.max(MAX_RECORD + MAX_HANDSHAKE_MESSAGE)
    }
}
