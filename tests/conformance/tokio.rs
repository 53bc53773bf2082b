//! tls-unix tokio: `TlsConnector`/`TlsAcceptor` and `TlsStream` over 127.0.0.1 TCP. Each
//! side's thread has its own current-thread runtime and runs every primitive to
//! completion with `block_on` under a timeout, so the endpoint never returns `Pending`.

use std::future::Future;
use std::io;
use std::net::TcpStream as StdTcpStream;
use std::task::Poll;

use tls_core::rustls::pki_types::ServerName;
use tls_core::Event;
use tls_unix::tokio::{TlsAcceptor, TlsConnector, TlsStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use crate::conformance::blocking::{over_tcp, IO_TIMEOUT};
use crate::conformance::relay::Relayed;
use crate::conformance::runner::{Backend, Endpoint};
use crate::conformance::scenarios::{Configs, Connection};
use crate::conformance::trace::{Fail, Handshake, Trace};

pub struct Tokio;

enum Role {
    Client(TlsConnector, ServerName<'static>),
    Server(TlsAcceptor),
}

struct Side {
    rt: Runtime,
    /// Before the handshake: the socket and what to do with it.
    start: Option<(Role, StdTcpStream)>,
    tls: Option<TlsStream<TcpStream>>,
}

impl Side {
    fn block<T>(&self, f: impl Future<Output = io::Result<T>>) -> Poll<Result<T, Fail>> {
        let r = self
            .rt
            .block_on(async { tokio::time::timeout(IO_TIMEOUT, f).await });
        Poll::Ready(match r {
            Ok(r) => r.map_err(|e| Fail::from_io(&e)),
            Err(_) => Err(Fail::Timeout(format!(
                "tokio: no progress within {IO_TIMEOUT:?}"
            ))),
        })
    }

    fn tls(&mut self) -> &mut TlsStream<TcpStream> {
        self.tls.as_mut().expect("handshake first")
    }
}

impl Endpoint for Side {
    fn handshake(&mut self) -> Poll<Result<Handshake, Fail>> {
        if self.tls.is_none() {
            let (role, sock) = self.start.take().expect("one handshake");
            let made = self.block(async move {
                sock.set_nonblocking(true)?;
                let sock = TcpStream::from_std(sock)?;
                match role {
                    Role::Client(c, name) => c.connect(name, sock).await,
                    Role::Server(a) => a.accept(sock).await,
                }
            });
            match made {
                Poll::Ready(Ok(tls)) => self.tls = Some(tls),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => unreachable!(),
            }
        }
        let s = self.tls().session();
        Poll::Ready(Ok(Handshake::new(
            s.handshake_info().expect("handshake done"),
            s.peer_certificates().is_some(),
        )))
    }
    fn write(&mut self, data: &[u8]) -> Poll<Result<usize, Fail>> {
        let mut tls = self.tls.take().unwrap();
        let r = self.block(tls.write(data));
        self.tls = Some(tls);
        r
    }
    fn flush(&mut self) -> Poll<Result<(), Fail>> {
        let mut tls = self.tls.take().unwrap();
        let r = self.block(tls.flush());
        self.tls = Some(tls);
        r
    }
    fn read(&mut self, buf: &mut [u8]) -> Poll<Result<usize, Fail>> {
        let mut tls = self.tls.take().unwrap();
        let r = self.block(tls.read(buf));
        self.tls = Some(tls);
        r
    }
    fn close(&mut self) -> Poll<Result<(), Fail>> {
        let mut tls = self.tls.take().unwrap();
        let r = self.block(tls.shutdown());
        self.tls = Some(tls);
        r
    }
    fn key_update(&mut self) -> Poll<Result<(), Fail>> {
        Poll::Ready(self.tls().refresh_keys().map_err(|e| Fail::from_io(&e)))
    }
    fn events(&mut self, out: &mut Vec<Event>) {
        if let Some(tls) = &mut self.tls {
            while let Some(e) = tls.session_mut().poll_event() {
                out.push(e);
            }
        }
    }
}

fn side(role: Role, sock: StdTcpStream) -> Result<Box<dyn Endpoint>, Fail> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::from_io(&e))?;
    Ok(Box::new(Side {
        rt,
        start: Some((role, sock)),
        tls: None,
    }))
}

impl Backend for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn run(&self, cfg: &Configs, conn: &Connection) -> ([Trace; 2], Relayed) {
        let name = ServerName::try_from(cfg.sni).unwrap().to_owned();
        let connector = TlsConnector::new(cfg.client.clone());
        let acceptor = TlsAcceptor::new(cfg.server.clone());
        over_tcp(
            conn,
            move |sock| side(Role::Client(connector, name), sock),
            move |sock| side(Role::Server(acceptor), sock),
        )
    }
}
