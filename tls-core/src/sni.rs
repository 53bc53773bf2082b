//! Learning the client's SNI on the server side.
//!
//! rustls 0.23's unbuffered server connection has no `server_name()`, but its certificate
//! resolver sees the ClientHello. Each server [`Session`](crate::Session) wraps the
//! configured resolver in a [`SniCapture`] of its own that records the name and delegates.

use alloc::string::String;
use alloc::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A certificate resolver that remembers the server name the client asked for.
#[derive(Debug)]
pub(crate) struct SniCapture {
    inner: Arc<dyn ResolvesServerCert>,
    name: spin::Mutex<Option<String>>,
}

impl SniCapture {
    pub(crate) fn new(inner: Arc<dyn ResolvesServerCert>) -> Self {
        Self {
            inner,
            name: spin::Mutex::new(None),
        }
    }

    pub(crate) fn take(&self) -> Option<String> {
        self.name.lock().take()
    }
}

impl ResolvesServerCert for SniCapture {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        *self.name.lock() = client_hello.server_name().map(String::from);
        self.inner.resolve(client_hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}
