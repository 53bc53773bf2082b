//! Keying material exporters (RFC 8446 §7.5) without rustls' exporter API.
//!
//! rustls 0.23's unbuffered connections do not expose `export_keying_material` (only the
//! buffered `ConnectionCommon` does, and it needs std). What every connection does give
//! is its key log: a TLS 1.3 handshake logs its exporter master secret under
//! `EXPORTER_SECRET`. Each [`Session`](crate::Session) wraps its config's key log in an
//! [`ExporterCapture`] that keeps that one secret (and still forwards every line the
//! configured key log wants), and derives exports from it here, with *ring*'s HKDF:
//!
//! ```text
//! HKDF-Expand-Label(Derive-Secret(exporter_master_secret, label, ""),
//!                   "exporter", Hash(context), length)
//! ```
//!
//! TLS 1.2 (RFC 5705) would need the master secret *and* both hello randoms, which the
//! key log does not give, so a TLS 1.2 session answers
//! [`Error::ExporterUnavailable`]. The 0-RTT early exporter is not offered.

use alloc::sync::Arc;
use alloc::vec::Vec;

use ring::{digest, hkdf};
use rustls::KeyLog;
use zeroize::Zeroizing;

use crate::Error;

const LABEL: &str = "EXPORTER_SECRET";

/// A key log that keeps the session's exporter master secret and forwards to `inner`.
#[derive(Debug)]
pub(crate) struct ExporterCapture {
    inner: Arc<dyn KeyLog>,
    secret: spin::Mutex<Option<Zeroizing<Vec<u8>>>>,
}

impl ExporterCapture {
    pub(crate) fn new(inner: Arc<dyn KeyLog>) -> Self {
        Self {
            inner,
            secret: spin::Mutex::new(None),
        }
    }

    /// Fills `out` with keying material for `label` and `context` (RFC 8446 §7.5: an
    /// absent context is the same as an empty one).
    pub(crate) fn export(
        &self,
        out: &mut [u8],
        label: &[u8],
        context: Option<&[u8]>,
    ) -> Result<(), Error> {
        let guard = self.secret.lock();
        let secret = guard.as_ref().ok_or(Error::ExporterUnavailable(
            "no TLS 1.3 exporter secret (TLS 1.2 session)",
        ))?;
        let (hkdf_alg, hash_alg) = match secret.len() {
            32 => (hkdf::HKDF_SHA256, &digest::SHA256),
            48 => (hkdf::HKDF_SHA384, &digest::SHA384),
            _ => return Err(Error::ExporterUnavailable("unknown exporter hash")),
        };
        if out.is_empty() || out.len() > usize::from(u16::MAX) {
            return Err(Error::ExporterUnavailable("output length out of range"));
        }
        let empty = digest::digest(hash_alg, b"");
        let mut derived = Zeroizing::new([0u8; 48]);
        let derived = &mut derived[..secret.len()];
        let prk = hkdf::Prk::new_less_safe(hkdf_alg, secret);
        expand_label(&prk, label, empty.as_ref(), derived)?;

        let context = digest::digest(hash_alg, context.unwrap_or(&[]));
        let prk = hkdf::Prk::new_less_safe(hkdf_alg, derived);
        expand_label(&prk, b"exporter", context.as_ref(), out)
    }
}

impl KeyLog for ExporterCapture {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if label == LABEL {
            *self.secret.lock() = Some(Zeroizing::new(secret.to_vec()));
            if !self.inner.will_log(label) {
                return;
            }
        }
        self.inner.log(label, client_random, secret);
    }

    fn will_log(&self, label: &str) -> bool {
        label == LABEL || self.inner.will_log(label)
    }
}

/// An output length for *ring*'s HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// RFC 8446 §7.1 HKDF-Expand-Label into `out`.
fn expand_label(
    prk: &hkdf::Prk,
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    const PREFIX: &[u8] = b"tls13 ";
    let full_label = u8::try_from(PREFIX.len() + label.len())
        .map_err(|_| Error::ExporterUnavailable("label longer than 249 bytes"))?;
    let length = u16::try_from(out.len())
        .map_err(|_| Error::ExporterUnavailable("output length out of range"))?
        .to_be_bytes();
    // `context` is a digest (at most 48 bytes), so its length fits a u8.
    let context_len = [context.len() as u8];
    let info: [&[u8]; 6] = [&length, &[full_label], PREFIX, label, &context_len, context];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::ExporterUnavailable("output longer than HKDF allows"))
}
