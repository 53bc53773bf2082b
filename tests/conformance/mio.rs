//! tls-unix non-blocking (mio): `nonblocking::TlsStream` over 127.0.0.1 TCP, one thread
//! and one `mio::Poll` per side; `Pending` on `WouldBlock`, then `wait` re-registers with
//! the stream's interest and polls (bounded).

use std::io::{self, Read, Write};
use std::task::Poll;
use std::time::Instant;

use mio::{Events, Token};
use tls_core::rustls::pki_types::ServerName;
use tls_core::Event;
use tls_unix::nonblocking::TlsStream;
use tls_unix::Options;

use crate::conformance::blocking::{over_tcp, IO_TIMEOUT};
use crate::conformance::relay::Relayed;
use crate::conformance::runner::{Backend, Endpoint};
use crate::conformance::scenarios::{Configs, Connection};
use crate::conformance::trace::{Fail, Handshake, Trace};

pub struct Mio;

struct Side {
    tls: TlsStream<mio::net::TcpStream>,
    poll: mio::Poll,
    events: Events,
}

fn io<T>(r: io::Result<T>) -> Poll<Result<T, Fail>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r.map_err(|e| Fail::from_io(&e))),
    }
}

impl Endpoint for Side {
    fn handshake(&mut self) -> Poll<Result<Handshake, Fail>> {
        if let Err(e) = std::task::ready!(io(self.tls.handshake())) {
            return Poll::Ready(Err(e));
        }
        let s = self.tls.session();
        Poll::Ready(Ok(Handshake::new(
            s.handshake_info().expect("handshake done"),
            s.peer_certificates().is_some(),
        )))
    }
    fn write(&mut self, data: &[u8]) -> Poll<Result<usize, Fail>> {
        io(self.tls.write(data))
    }
    fn flush(&mut self) -> Poll<Result<(), Fail>> {
        io(self.tls.flush())
    }
    fn read(&mut self, buf: &mut [u8]) -> Poll<Result<usize, Fail>> {
        io(self.tls.read(buf))
    }
    fn close(&mut self) -> Poll<Result<(), Fail>> {
        io(self.tls.shutdown())
    }
    fn key_update(&mut self) -> Poll<Result<(), Fail>> {
        io(self.tls.refresh_keys())
    }
    fn events(&mut self, out: &mut Vec<Event>) {
        while let Some(e) = self.tls.session_mut().poll_event() {
            out.push(e);
        }
    }
    fn wait(&mut self) -> Result<(), Fail> {
        let interest = self.tls.interest();
        self.poll
            .registry()
            .reregister(&mut self.tls, Token(0), interest)
            .map_err(|e| Fail::from_io(&e))?;
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Fail::Timeout(format!(
                    "mio: no readiness within {IO_TIMEOUT:?}"
                )));
            }
            match self.poll.poll(&mut self.events, Some(left)) {
                Ok(()) if !self.events.is_empty() => return Ok(()),
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fail::from_io(&e)),
            }
        }
    }
}

fn side(
    make: impl FnOnce(mio::net::TcpStream) -> io::Result<TlsStream<mio::net::TcpStream>>,
    sock: std::net::TcpStream,
) -> Result<Box<dyn Endpoint>, Fail> {
    let f = |e: io::Error| Fail::from_io(&e);
    sock.set_nonblocking(true).map_err(f)?;
    let mut tls = make(mio::net::TcpStream::from_std(sock)).map_err(f)?;
    let poll = mio::Poll::new().map_err(f)?;
    let interest = tls.interest();
    poll.registry()
        .register(&mut tls, Token(0), interest)
        .map_err(f)?;
    Ok(Box::new(Side {
        tls,
        poll,
        events: Events::with_capacity(4),
    }))
}

impl Backend for Mio {
    fn name(&self) -> &'static str {
        "mio"
    }

    fn run(&self, cfg: &Configs, conn: &Connection) -> ([Trace; 2], Relayed) {
        let name = ServerName::try_from(cfg.sni).unwrap().to_owned();
        let (c, s) = (cfg.client.clone(), cfg.server.clone());
        over_tcp(
            conn,
            move |sock| side(|m| TlsStream::client(c, name, m, Options::default()), sock),
            move |sock| side(|m| TlsStream::server(s, m, Options::default()), sock),
        )
    }
}
