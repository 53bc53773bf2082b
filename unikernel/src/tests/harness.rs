//! The in-memory world of the unit tests: the server on side B of an in-memory wire, and
//! test clients on side A that see the raw TLS records (a tls-core session over a plain
//! TCP socket), with simulated time that jumps to the next timer when nothing moves.

use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use rustls::pki_types::ServerName;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};
use tls_core::{Limits, Session};
use tls_netsim::{Net, Wire, A, B};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};

use crate::{Config, Server};

pub(crate) const SERVER_IP: IpAddress = IpAddress::v4(192, 0, 2, 2);
pub(crate) const PORT: u16 = 443;
/// Rounds a test may take before it counts as hung.
const ROUND_LIMIT: u64 = 2_000_000;

/// The wire, the server and its log.
pub(crate) struct World {
    pub(crate) pair: Net,
    pub(crate) server: Server,
    pub(crate) log: Vec<String>,
    pub(crate) client_config: Arc<rustls::ClientConfig>,
    next_port: u16,
    wake: Option<Instant>,
}

impl World {
    pub(crate) fn new(config: Config) -> Self {
        let pki = Pki::new(KeyKind::EcdsaP256, &["192.0.2.2"]);
        let server_config = Arc::new(pki.server_config(&CertOptions::default()));
        let client_config = Arc::new(pki.client_config(&CertOptions::default()));
        let addrs = [
            IpCidr::new(IpAddress::v4(192, 0, 2, 1), 24),
            IpCidr::new(SERVER_IP, 24),
        ];
        let mut pair = Net::new(Wire::new(1500), addrs, Instant::ZERO, 7);
        pair.round = Duration::from_micros(100);
        let server = Server::new(&mut pair.nodes[B].sockets, PORT, server_config, config).unwrap();
        Self {
            pair,
            server,
            log: Vec::new(),
            client_config,
            next_port: 49152,
            wake: None,
        }
    }

    /// One round: both interfaces, the server, the client. True if anything moved.
    fn round(&mut self, client: Option<&mut RawClient>) -> bool {
        let mut moved = self.pair.poll_ifaces();
        let log = &mut self.log;
        let poll = self
            .server
            .poll(self.pair.now, &mut self.pair.nodes[B].sockets, &mut |l| {
                log.push(l.into())
            });
        moved |= poll.busy;
        self.wake = poll.wake;
        if let Some(c) = client {
            moved |= c.pump(&mut self.pair.nodes[A].sockets);
        }
        moved
    }

    /// Runs rounds until `done` holds; simulated time moves 100 µs a round, or to the
    /// next timer when a round moved nothing.
    pub(crate) fn run_until(
        &mut self,
        mut client: Option<&mut RawClient>,
        mut done: impl FnMut(&World, Option<&RawClient>) -> bool,
    ) {
        for _ in 0..ROUND_LIMIT {
            if done(self, client.as_deref()) {
                return;
            }
            // Not `Net::drive_bounded`: `done` looks at the whole world, server included.
            let moved = self.round(client.as_deref_mut());
            if moved {
                self.pair.now += self.pair.round;
            } else if !self.pair.advance(self.wake) {
                self.pair.now += Duration::from_millis(1);
            }
        }
        panic!(
            "no progress after {ROUND_LIMIT} rounds; log: {:?}",
            self.log
        );
    }

    /// A client connected to the server, handshake done.
    pub(crate) fn connect(&mut self) -> RawClient {
        let ring = || tcp::SocketBuffer::new(std::vec![0; 64 * 1024]);
        let handle = self.pair.nodes[A]
            .sockets
            .add(tcp::Socket::new(ring(), ring()));
        let cx = self.pair.nodes[A].iface.context();
        self.pair.nodes[A]
            .sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(cx, (SERVER_IP, PORT), self.next_port)
            .unwrap();
        self.next_port += 1;
        let name = ServerName::try_from("192.0.2.2").unwrap();
        let session = Session::client(self.client_config.clone(), name, Limits::default()).unwrap();
        let mut client = RawClient::new(handle, session);
        self.run_until(Some(&mut client), |_, c| {
            !c.unwrap().session.is_handshaking()
        });
        client
    }

    /// The next log line (waits for it).
    pub(crate) fn wait_log(&mut self, client: Option<&mut RawClient>) -> String {
        let n = self.log.len();
        self.run_until(client, |w, _| w.log.len() > n);
        self.log[n].clone()
    }

    /// Sends `data` on `client` and waits for `want` complete responses after it.
    pub(crate) fn exchange(
        &mut self,
        client: &mut RawClient,
        data: &[u8],
        want: usize,
    ) -> Vec<Reply> {
        client.write(data);
        let mut replies = Vec::new();
        self.run_until(Some(client), |_, c| c.unwrap().replies_ready(want));
        for _ in 0..want {
            replies.push(client.take_reply().unwrap());
        }
        replies
    }
}

/// One response as the client read it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

/// A TLS client over a plain TCP socket that sees every record the server sends.
pub(crate) struct RawClient {
    handle: SocketHandle,
    pub(crate) session: Session,
    /// Received TCP bytes not yet fed to the session (at most a partial record).
    stream: Vec<u8>,
    /// Plaintext length of every record that carried plaintext, in order.
    pub(crate) records: Vec<usize>,
    /// Plaintext received and not yet taken as a reply.
    pub(crate) plain: Vec<u8>,
    /// Plaintext still to send.
    outgoing: Vec<u8>,
    /// The server's close_notify arrived.
    pub(crate) close_notify: bool,
    /// The TCP stream ended.
    pub(crate) eof: bool,
}

impl RawClient {
    fn new(handle: SocketHandle, session: Session) -> Self {
        Self {
            handle,
            session,
            stream: Vec::new(),
            records: Vec::new(),
            plain: Vec::new(),
            outgoing: Vec::new(),
            close_notify: false,
            eof: false,
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) {
        self.outgoing.extend_from_slice(data);
    }

    /// Sends close_notify.
    pub(crate) fn close(&mut self) {
        self.session.close().unwrap();
    }

    fn pump(&mut self, sockets: &mut smoltcp::iface::SocketSet<'_>) -> bool {
        let tcp = sockets.get_mut::<tcp::Socket>(self.handle);
        let mut moved = false;
        if !self.outgoing.is_empty() && !self.session.is_handshaking() {
            let n = self.session.send(&self.outgoing).unwrap();
            self.outgoing.drain(..n);
            moved |= n > 0;
        }
        if tcp.may_send() && self.session.has_output() {
            let n = tcp.send_slice(self.session.pending_tls()).unwrap_or(0);
            self.session.tls_written(n);
            moved |= n > 0;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = tcp.recv_slice(&mut buf) {
            if n == 0 {
                break;
            }
            self.stream.extend_from_slice(&buf[..n]);
            moved = true;
        }
        if !self.eof && tcp.state() != tcp::State::SynSent && !tcp.may_recv() {
            self.eof = true;
            moved = true;
        }
        // Feed whole records one at a time, so each one's plaintext is seen apart.
        while self.stream.len() >= 5 {
            let len = 5 + usize::from(u16::from_be_bytes([self.stream[3], self.stream[4]]));
            if self.stream.len() < len {
                break;
            }
            let taken = self.session.read_tls(&self.stream[..len]).unwrap();
            assert_eq!(taken, len, "the session takes a whole record");
            self.stream.drain(..len);
            let mut got = 0;
            let mut plain = [0u8; 4096];
            loop {
                match self.session.recv(&mut plain) {
                    Ok(0) => {
                        self.close_notify = true;
                        break;
                    }
                    Ok(n) => {
                        got += n;
                        self.plain.extend_from_slice(&plain[..n]);
                    }
                    Err(tls_core::Error::WouldBlock) => break,
                    Err(e) => panic!("client session: {e}"),
                }
            }
            if got > 0 {
                self.records.push(got);
            }
            moved = true;
        }
        moved
    }

    /// Whether `want` complete responses are in `plain`.
    fn replies_ready(&self, want: usize) -> bool {
        let mut at = 0;
        for _ in 0..want {
            match crate::http::parse_response(&self.plain[at..], 1 << 20) {
                Ok(Some((r, len))) => {
                    let crate::http::BodyLength::Length(n) = r.body else {
                        panic!("the server always sends content-length");
                    };
                    if self.plain.len() - at - len < n as usize {
                        return false;
                    }
                    at += len + n as usize;
                }
                Ok(None) => return false,
                Err(e) => panic!("bad response: {e}"),
            }
        }
        true
    }

    fn take_reply(&mut self) -> Option<Reply> {
        let (r, len) = crate::http::parse_response(&self.plain, 1 << 20).ok()??;
        let crate::http::BodyLength::Length(n) = r.body else {
            return None;
        };
        let head = String::from_utf8(self.plain[..len].to_vec()).unwrap();
        let body = self.plain[len..len + n as usize].to_vec();
        self.plain.drain(..len + n as usize);
        Some(Reply {
            status: r.status,
            head,
            body,
        })
    }
}

/// The value of `name=` in a log line (`close` is the rest of the line).
pub(crate) fn field<'a>(line: &'a str, name: &str) -> &'a str {
    if name == "close" {
        return &line[line.find(" close=").unwrap() + 7..];
    }
    let key = std::format!("{name}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key.as_str()))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// A plain TCP connection to the server (no TLS).
pub(crate) struct Plain {
    handle: SocketHandle,
}

impl World {
    /// A plain TCP connection, established; what is written to it goes out at once.
    pub(crate) fn connect_plain(&mut self) -> Plain {
        let ring = || tcp::SocketBuffer::new(std::vec![0; 64 * 1024]);
        let handle = self.pair.nodes[A]
            .sockets
            .add(tcp::Socket::new(ring(), ring()));
        let cx = self.pair.nodes[A].iface.context();
        self.pair.nodes[A]
            .sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(cx, (SERVER_IP, PORT), self.next_port)
            .unwrap();
        self.next_port += 1;
        self.run_until(None, |w, _| {
            w.pair.nodes[A]
                .sockets
                .get::<tcp::Socket>(handle)
                .may_send()
        });
        Plain { handle }
    }

    /// Sends `data` on `plain`.
    pub(crate) fn send_plain(&mut self, plain: &Plain, data: &[u8]) {
        let n = self.pair.nodes[A]
            .sockets
            .get_mut::<tcp::Socket>(plain.handle)
            .send_slice(data)
            .unwrap();
        assert_eq!(n, data.len());
    }

    /// What has arrived on `plain`.
    pub(crate) fn read_plain(&mut self, plain: &mut Plain) -> Vec<u8> {
        let mut out = std::vec![0u8; 64 * 1024];
        let n = self.pair.nodes[A]
            .sockets
            .get_mut::<tcp::Socket>(plain.handle)
            .recv_slice(&mut out)
            .unwrap_or(0);
        out.truncate(n);
        out
    }
}

impl World {
    /// Resets a test connection's TCP socket and removes it once the RST is out.
    pub(crate) fn drop_socket(&mut self, handle: SocketHandle) {
        self.pair.nodes[A]
            .sockets
            .get_mut::<tcp::Socket>(handle)
            .abort();
        self.round(None);
        self.pair.nodes[A].sockets.remove(handle);
    }
}

impl Plain {
    /// The TCP socket.
    pub(crate) fn handle(&self) -> SocketHandle {
        self.handle
    }
}

impl RawClient {
    /// The TCP socket.
    pub(crate) fn handle(&self) -> SocketHandle {
        self.handle
    }
}
