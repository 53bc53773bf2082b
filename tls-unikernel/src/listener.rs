//! [`TlsListener`]: a server that takes several connections at once.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use smoltcp::wire::IpListenEndpoint;
use tls_core::rustls::ServerConfig;

use crate::{Error, ListenerOptions, TlsSocket};

/// A TLS server on one port that serves several connections at once.
///
/// smoltcp has no accept queue: a listening `tcp::Socket` becomes the connection. The
/// listener therefore keeps [`ListenerOptions::backlog`] TCP sockets listening (it adds
/// them to the [`SocketSet`] itself, with rings of [`ListenerOptions::rx_ring`] and
/// [`ListenerOptions::tx_ring`] bytes), and [`accept`](Self::accept) hands out each one
/// whose connection has arrived, putting a fresh listening socket in its place.
///
/// An accepted [`TlsSocket`] has its TCP connection established; its TLS handshake runs
/// in its own [`poll`](TlsSocket::poll). Remove its TCP socket from the set
/// (`sockets.remove(tls.handle())`) when done with it.
pub struct TlsListener {
    config: Arc<ServerConfig>,
    endpoint: IpListenEndpoint,
    options: ListenerOptions,
    waiting: Vec<TlsSocket>,
}

impl core::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsListener")
            .field("endpoint", &self.endpoint)
            .field("options", &self.options)
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Starts listening on `endpoint` with [`ListenerOptions::backlog`] TCP sockets.
    pub fn new<T>(
        sockets: &mut SocketSet<'_>,
        endpoint: T,
        config: Arc<ServerConfig>,
        options: ListenerOptions,
    ) -> Result<Self, Error>
    where
        T: Into<IpListenEndpoint>,
    {
        options.socket.limits.validate()?;
        let mut listener = Self {
            config,
            endpoint: endpoint.into(),
            options,
            waiting: Vec::new(),
        };
        for _ in 0..options.backlog.max(1) {
            let socket = listener.listening_socket(sockets)?;
            listener.waiting.push(socket);
        }
        Ok(listener)
    }

    fn listening_socket(&self, sockets: &mut SocketSet<'_>) -> Result<TlsSocket, Error> {
        let tcp = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; self.options.rx_ring]),
            tcp::SocketBuffer::new(vec![0; self.options.tx_ring]),
        );
        let handle = sockets.add(tcp);
        let mut socket = TlsSocket::server(handle, self.config.clone(), self.options.socket);
        if let Err(e) = socket.listen(sockets, self.endpoint) {
            sockets.remove(handle);
            return Err(e);
        }
        Ok(socket)
    }

    /// The endpoint it listens on.
    pub fn endpoint(&self) -> IpListenEndpoint {
        self.endpoint
    }

    /// A connection that has arrived, if any (call after `Interface::poll`). Its place is
    /// taken by a new listening socket. Connections reset before they were accepted are
    /// dropped and their sockets listen again.
    pub fn accept(&mut self, sockets: &mut SocketSet<'_>) -> Option<TlsSocket> {
        for i in 0..self.waiting.len() {
            let handle = self.waiting[i].handle();
            let state = sockets.get::<tcp::Socket>(handle).state();
            match state {
                tcp::State::Listen | tcp::State::SynReceived => {}
                tcp::State::Closed | tcp::State::TimeWait => {
                    // Came and went before it was accepted.
                    let tcp = sockets.get_mut::<tcp::Socket>(handle);
                    tcp.abort();
                    if self.waiting[i].listen(sockets, self.endpoint).is_err() {
                        sockets.remove(handle);
                        self.waiting.swap_remove(i);
                        return None;
                    }
                }
                _ => {
                    let accepted = match self.listening_socket(sockets) {
                        Ok(fresh) => core::mem::replace(&mut self.waiting[i], fresh),
                        Err(_) => self.waiting.swap_remove(i),
                    };
                    return Some(accepted);
                }
            }
        }
        None
    }

    /// Stops listening: removes the listening TCP sockets from the set. Accepted
    /// connections are not affected.
    pub fn close(self, sockets: &mut SocketSet<'_>) {
        for socket in self.waiting {
            sockets.remove(socket.handle());
        }
    }
}
