//! Reading plaintext: [`TlsSocket::recv_slice`] and [`TlsSocket::recv`].

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;

use super::{Conn, TlsSocket};
use crate::Error;
#[cfg(doc)]
use crate::Options;
#[cfg(doc)]
use tls_core::Session;

impl TlsSocket {
    /// Reads decrypted plaintext into `buf` and returns how many bytes were read:
    /// `Ok(0)` when none is available now (or the handshake is still running).
    ///
    /// Errors: [`Error::Finished`] after the peer's close_notify, once everything before
    /// it has been read; the socket's fatal error once the plaintext received intact
    /// before it has been read; [`Error::InvalidState`] before `connect`/a connection and
    /// after [`abort`](Self::abort).
    pub fn recv_slice(
        &mut self,
        sockets: &mut SocketSet<'_>,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        if matches!(self.conn, Conn::Aborted(_)) {
            return Err(Error::InvalidState);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(none) = self.no_reader() {
            return none.map(|()| 0);
        }
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        self.pull_input(tcp);
        let Conn::Active(session) = &mut self.conn else {
            return Ok(0);
        };
        let result = session.recv(buf);
        let read_ok = result.is_ok();
        let mut n = 0;
        let end = match result {
            Ok(0) => Some(Error::Finished),
            Ok(k) => {
                n = k;
                None
            }
            Err(tls_core::Error::WouldBlock) => None,
            Err(e) => {
                let e = Error::from(e);
                self.fail(e.clone());
                Some(e)
            }
        };
        if read_ok {
            // Reading made room: take in what waits in the TCP ring.
            self.pull_input(tcp);
        }
        self.push_output(tcp);
        // An error found by this read sends its alert and FIN now.
        self.finish(tcp);
        self.watch_tcp(tcp);
        if n > 0 {
            return Ok(n);
        }
        if let Some(e) = end {
            return Err(e);
        }
        // No plaintext waits (the read found none): the error, if any, is next.
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(0),
        }
    }

    /// What a read without a connection returns: `Ok` while listening (nothing to read
    /// yet), the socket's error or [`Error::InvalidState`] with none; `None` when there
    /// is a connection to read from.
    fn no_reader(&self) -> Option<Result<(), Error>> {
        match &self.conn {
            Conn::Active(_) => None,
            Conn::Listening(_) => Some(Ok(())),
            Conn::Aborted(_) => Some(Err(Error::InvalidState)),
            Conn::Idle => Some(Err(self.error.clone().unwrap_or(Error::InvalidState))),
        }
    }

    /// Reads plaintext through a closure, in the manner of smoltcp's
    /// `tcp::Socket::recv`: `f` gets the decrypted bytes waiting now, in place in the
    /// engine (one decrypted record, or what the engine staged from earlier ones; at most
    /// [`Options::read_chunk`]; empty when none: see [`Session::recv_with`]), and returns
    /// how many it consumed and a value to pass back. What it leaves is offered again by
    /// the next read. No copy is made of what `f` consumes.
    ///
    /// Errors as for [`recv_slice`](Self::recv_slice); `f` is not called then.
    ///
    /// # Panics
    /// If `f` says it consumed more bytes than it was given.
    pub fn recv<F, R>(&mut self, sockets: &mut SocketSet<'_>, f: F) -> Result<R, Error>
    where
        F: FnOnce(&[u8]) -> (usize, R),
    {
        if let Some(none) = self.no_reader() {
            none?;
            return Ok(f(&[]).1);
        }
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        self.pull_input(tcp);
        let Conn::Active(session) = &mut self.conn else {
            return Ok(f(&[]).1);
        };
        let chunk = self.options.read_chunk.max(1);
        let mut f = Some(f);
        let mut value = None;
        let result = session.recv_with(|data| {
            let data = &data[..data.len().min(chunk)];
            let f = f.take().expect("plaintext is lent once");
            let (n, r) = f(data);
            assert!(n <= data.len(), "consumed more than was offered");
            value = Some(r);
            n
        });
        let end = match result {
            Ok(_) if value.is_some() => None,
            Ok(_) => Some(Error::Finished),
            Err(tls_core::Error::WouldBlock) => None,
            Err(e) => {
                self.fail(e.into());
                self.error.clone()
            }
        };
        if value.is_some() {
            // Reading made room: take in what waits in the TCP ring.
            self.pull_input(tcp);
        }
        self.push_output(tcp);
        // An error found by this read sends its alert and FIN now.
        self.finish(tcp);
        self.watch_tcp(tcp);
        if let Some(r) = value {
            return Ok(r);
        }
        if let Some(e) = end.or_else(|| self.error.clone()) {
            return Err(e);
        }
        let f = f.take().expect("f was not called");
        Ok(f(&[]).1)
    }
}
