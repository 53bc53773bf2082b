//! tls-unix blocking: `blocking::TlsStream` over 127.0.0.1 TCP, one thread per side,
//! a [`TcpRelay`] in the middle. Every call blocks (with socket timeouts), so the
//! endpoint never returns `Pending`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::task::Poll;
use std::time::Duration;

use tls_core::rustls::pki_types::ServerName;
use tls_core::{Event, Limits, Session};
use tls_unix::blocking::TlsStream;

use crate::conformance::relay::{accept_within, Relayed, TcpRelay};
use crate::conformance::runner::{run_threads, Backend, Endpoint, MakeEndpoint};
use crate::conformance::scenarios::{Configs, Connection};
use crate::conformance::trace::{Fail, Handshake, Trace};

pub struct Blocking;

/// Socket timeouts: far above any scenario's needs, so only a hang reaches them.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

struct Side(TlsStream<TcpStream>);

fn io<T>(r: std::io::Result<T>) -> Poll<Result<T, Fail>> {
    Poll::Ready(r.map_err(|e| Fail::from_io(&e)))
}

impl Endpoint for Side {
    fn handshake(&mut self) -> Poll<Result<Handshake, Fail>> {
        if let Err(e) = self.0.handshake() {
            return io(Err(e));
        }
        let s = self.0.session();
        Poll::Ready(Ok(Handshake::new(
            s.handshake_info().expect("handshake done"),
            s.peer_certificates().is_some(),
        )))
    }
    fn write(&mut self, data: &[u8]) -> Poll<Result<usize, Fail>> {
        io(self.0.write(data))
    }
    fn flush(&mut self) -> Poll<Result<(), Fail>> {
        io(self.0.flush())
    }
    fn read(&mut self, buf: &mut [u8]) -> Poll<Result<usize, Fail>> {
        io(self.0.read(buf))
    }
    fn close(&mut self) -> Poll<Result<(), Fail>> {
        io(self.0.shutdown())
    }
    fn key_update(&mut self) -> Poll<Result<(), Fail>> {
        io(self.0.refresh_keys())
    }
    fn events(&mut self, out: &mut Vec<Event>) {
        while let Some(e) = self.0.session_mut().poll_event() {
            out.push(e);
        }
    }
}

/// A 127.0.0.1 TCP socket with the suite's timeouts.
pub fn timed(sock: TcpStream) -> TcpStream {
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    sock.set_nodelay(true).unwrap();
    sock
}

/// Runs `conn` with a server listening on 127.0.0.1, a relay, and endpoints made from
/// the two connected sockets (shared by the tls-unix adapters).
pub fn over_tcp(
    conn: &Connection,
    client: impl FnOnce(TcpStream) -> Result<Box<dyn Endpoint>, Fail> + Send,
    server: impl FnOnce(TcpStream) -> Result<Box<dyn Endpoint>, Fail> + Send,
) -> ([Trace; 2], Relayed) {
    let mut listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let relay = TcpRelay::start(listener.local_addr().unwrap(), conn.faults).unwrap();
    let relay_addr = relay.addr;
    let make_client: MakeEndpoint<'_> = Box::new(move || {
        let sock =
            TcpStream::connect_timeout(&relay_addr, IO_TIMEOUT).map_err(|e| Fail::from_io(&e))?;
        client(timed(sock))
    });
    let make_server: MakeEndpoint<'_> = Box::new(move || {
        let sock = accept_within(&mut listener, IO_TIMEOUT).map_err(|e| Fail::from_io(&e))?;
        server(timed(sock))
    });
    let traces = run_threads(conn, [make_client, make_server]);
    (traces, relay.finish())
}

impl Backend for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn run(&self, cfg: &Configs, conn: &Connection) -> ([Trace; 2], Relayed) {
        let name = ServerName::try_from(cfg.sni).unwrap().to_owned();
        let (c, s) = (cfg.client.clone(), cfg.server.clone());
        over_tcp(
            conn,
            move |sock| {
                let session = Session::client(c, name, Limits::default()).unwrap();
                Ok(Box::new(Side(TlsStream::new(session, sock))))
            },
            move |sock| {
                let session = Session::server(s, Limits::default()).unwrap();
                Ok(Box::new(Side(TlsStream::new(session, sock))))
            },
        )
    }
}
