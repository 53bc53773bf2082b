//! tls-unikernel: `TlsSocket`s on smoltcp interfaces over `tls_netsim`'s wire, in one
//! thread, with a TCP relay made of smoltcp sockets in the middle:
//!
//! ```text
//! client 10.0.1.1 ──wire 1── 10.0.1.2 relay 10.0.2.1 ──wire 2── 10.0.2.2 server
//! ```
//!
//! The relay terminates both TCP connections and copies the byte streams through the
//! same [`Tap`] as every other backend, so faults act on TLS records, not on packets:
//! TCP checksums stay on (computed and verified on both wires), and a corrupted record
//! travels in a valid segment, as it would behind a real middlebox. The wire needs no
//! hook. Time is virtual: it stands still while anything moves and jumps to the next
//! smoltcp timer when nothing does. The conformance runner owns the loop (it calls
//! [`World::drive`] once per step, for two wires at once), so this uses `tls_netsim::Net`'s
//! poll and next-event calls rather than its `drive_bounded`.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Poll;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpCidr};
use tls_core::rustls::pki_types::ServerName;
use tls_core::Event;
use tls_netsim::{Net as Pair, Wire, A, B};
use tls_unikernel::{Error, Options, PollAt, TlsSocket};

use crate::conformance::relay::{How, Relayed, Tap, C2S, S2C};
use crate::conformance::runner::{self, Backend, Endpoint};
use crate::conformance::scenarios::{Configs, Connection};
use crate::conformance::trace::{Fail, Handshake, Trace};

pub struct Unikernel;

/// IP MTU of both wires.
const MTU: usize = 1500;
/// TCP rings of every socket.
const RING: usize = 64 * 1024;
const PORT: u16 = 443;
/// Virtual time after which a run counts as stalled.
const VIRTUAL_LIMIT: Duration = Duration::from_secs(120);

fn ip(a: u8, b: u8) -> IpAddress {
    IpAddress::v4(10, 0, a, b)
}

fn tcp_socket() -> tcp::Socket<'static> {
    let ring = || tcp::SocketBuffer::new(vec![0; RING]);
    tcp::Socket::new(ring(), ring())
}

struct World {
    /// Wire 1: client (A) and the relay's client-facing side (B).
    net1: Pair,
    /// Wire 2: the relay's server-facing side (A) and the server (B).
    net2: Pair,
    tls: [TlsSocket; 2],
    /// Relay sockets: `relay[C2S]` faces the client (its input is the client's bytes),
    /// `relay[S2C]` faces the server.
    relay: [SocketHandle; 2],
    taps: [Tap; 2],
    /// Bytes that passed a tap and wait for room in the outgoing relay socket.
    pending: [Vec<u8>; 2],
    /// The direction's source has ended (FIN) or was cut; FIN is sent once `pending` is out.
    ended: [bool; 2],
    fin_sent: [bool; 2],
    /// The side's script ended without closing: its TCP socket was closed ("dropped").
    dropped: [bool; 2],
    now: Instant,
    /// When both handshakes were first seen complete (virtual time).
    handshakes_done: Option<Instant>,
}

impl World {
    fn sockets(&mut self, side: usize) -> (&mut TlsSocket, &mut SocketSet<'static>) {
        match side {
            0 => (&mut self.tls[0], &mut self.net1.nodes[A].sockets),
            _ => (&mut self.tls[1], &mut self.net2.nodes[B].sockets),
        }
    }

    /// Copies one direction through its tap; true if anything moved.
    fn relay(&mut self, dir: usize) -> bool {
        let mut moved = false;
        let mut taps = std::mem::take(&mut self.taps);
        let mut pending = std::mem::take(&mut self.pending[dir]);
        let (ended, fin_sent) = (&mut self.ended[dir], &mut self.fin_sent[dir]);
        let (from, to) = {
            let from_client = self.net1.nodes[B]
                .sockets
                .get_mut::<tcp::Socket>(self.relay[C2S]);
            let to_server = self.net2.nodes[A]
                .sockets
                .get_mut::<tcp::Socket>(self.relay[S2C]);
            if dir == C2S {
                (from_client, to_server)
            } else {
                (to_server, from_client)
            }
        };
        while from.can_recv() {
            let cut = taps[dir].is_cut();
            let got = from
                .recv(|buf| {
                    if !cut {
                        taps[dir].feed(buf, &mut pending);
                    }
                    (buf.len(), buf.len())
                })
                .unwrap_or(0);
            if got == 0 {
                break;
            }
            moved = true;
        }
        if taps[dir].is_cut() {
            *ended = true;
        }
        // The source is done: FIN received (or the connection is gone).
        if !from.may_recv()
            && from.recv_queue() == 0
            && from.state() != tcp::State::Listen
            && from.state() != tcp::State::SynSent
            && from.state() != tcp::State::SynReceived
            && !*ended
        {
            // FIN, or RST: `recv` tells them apart once the receive half is over.
            let how = match from.recv(|_| (0, ())) {
                Err(tcp::RecvError::Finished) => How::Fin,
                _ => How::Reset,
            };
            taps[dir].ended(how);
            *ended = true;
            moved = true;
        }
        if !pending.is_empty() && to.may_send() {
            if let Ok(n) = to.send_slice(&pending) {
                if n > 0 {
                    pending.drain(..n);
                    moved = true;
                }
            }
        } else if !pending.is_empty() && !to.is_open() {
            pending.clear();
        }
        if pending.is_empty() && *ended && !*fin_sent {
            to.close();
            *fin_sent = true;
            moved = true;
        }
        self.taps = taps;
        self.pending[dir] = pending;
        moved
    }

    fn drive(&mut self, done: [bool; 2]) -> bool {
        let mut moved = false;
        for (side, done) in done.into_iter().enumerate() {
            if done && !self.dropped[side] {
                // The script is over: drop the connection as a process would (a FIN,
                // without close_notify if it never closed).
                self.dropped[side] = true;
                let (tls, sockets) = self.sockets(side);
                let handle = tls.handle();
                let tcp = sockets.get_mut::<tcp::Socket>(handle);
                if tcp.is_open() && tcp.state() != tcp::State::Closed {
                    tcp.close();
                }
                moved = true;
            }
        }
        let now = self.now;
        (self.net1.now, self.net2.now) = (now, now);
        moved |= self.net1.poll_ifaces();
        moved |= self.net2.poll_ifaces();
        for side in 0..2 {
            if self.dropped[side] {
                continue;
            }
            let (tls, sockets) = self.sockets(side);
            moved |= tls.poll(now, sockets) == PollAt::Now;
        }
        moved |= self.relay(C2S);
        moved |= self.relay(S2C);
        if self.handshakes_done.is_none() && self.tls.iter().all(TlsSocket::is_established) {
            self.handshakes_done = Some(self.now);
        }
        if !moved {
            // Idle: jump to the next timer.
            let next = [self.net1.poll_at(), self.net2.poll_at()]
                .into_iter()
                .flatten()
                .min();
            self.now = match next {
                Some(t) if t > now => t,
                _ => now + Duration::from_millis(1),
            };
        }
        moved && self.now < Instant::ZERO + VIRTUAL_LIMIT
    }
}

struct Side {
    world: Rc<RefCell<World>>,
    side: usize,
    closing: bool,
}

fn fail(e: &Error) -> Fail {
    Fail::from_unikernel(e)
}

impl Endpoint for Side {
    fn handshake(&mut self) -> Poll<Result<Handshake, Fail>> {
        let mut w = self.world.borrow_mut();
        let (tls, _) = w.sockets(self.side);
        if let Some(e) = tls.error() {
            return Poll::Ready(Err(fail(e)));
        }
        match tls.handshake_info() {
            Some(info) => Poll::Ready(Ok(Handshake::new(info, tls.peer_certificates().is_some()))),
            None => Poll::Pending,
        }
    }

    fn write(&mut self, data: &[u8]) -> Poll<Result<usize, Fail>> {
        let mut w = self.world.borrow_mut();
        let (tls, sockets) = w.sockets(self.side);
        match tls.send_slice(sockets, data) {
            Ok(0) => Poll::Pending,
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(fail(&e))),
        }
    }

    fn flush(&mut self) -> Poll<Result<(), Fail>> {
        // Done once the bytes have left the engine for the TCP ring (an error the peer's
        // answer causes afterwards belongs to the next call, as on a socket).
        let mut w = self.world.borrow_mut();
        let (tls, _) = w.sockets(self.side);
        if !tls.session().is_some_and(|s| s.has_output()) {
            return Poll::Ready(Ok(()));
        }
        match tls.error() {
            Some(e) => Poll::Ready(Err(fail(e))),
            None => Poll::Pending,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Poll<Result<usize, Fail>> {
        let mut w = self.world.borrow_mut();
        let (tls, sockets) = w.sockets(self.side);
        match tls.recv_slice(sockets, buf) {
            Ok(0) => Poll::Pending,
            Ok(n) => Poll::Ready(Ok(n)),
            Err(Error::Finished) => Poll::Ready(Ok(0)),
            Err(e) => Poll::Ready(Err(fail(&e))),
        }
    }

    fn close(&mut self) -> Poll<Result<(), Fail>> {
        let mut w = self.world.borrow_mut();
        let (tls, sockets) = w.sockets(self.side);
        if let Some(e) = tls.error() {
            return Poll::Ready(Err(fail(e)));
        }
        if !self.closing {
            tls.close(sockets);
            self.closing = true;
        }
        if let Some(e) = tls.error() {
            return Poll::Ready(Err(fail(e)));
        }
        // Done once close_notify has left the engine for the TCP ring.
        match tls.session() {
            Some(s) if s.has_output() => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }

    fn key_update(&mut self) -> Poll<Result<(), Fail>> {
        let mut w = self.world.borrow_mut();
        let (tls, sockets) = w.sockets(self.side);
        Poll::Ready(tls.refresh_keys(sockets).map_err(|e| fail(&e)))
    }

    fn events(&mut self, out: &mut Vec<Event>) {
        let mut w = self.world.borrow_mut();
        let (tls, _) = w.sockets(self.side);
        while let Some(e) = tls.poll_event() {
            out.push(e);
        }
    }
}

impl Backend for Unikernel {
    fn name(&self) -> &'static str {
        "unikernel"
    }

    fn run(&self, cfg: &Configs, conn: &Connection) -> ([Trace; 2], Relayed) {
        let mut net1 = Pair::new(
            Wire::new(MTU),
            [IpCidr::new(ip(1, 1), 24), IpCidr::new(ip(1, 2), 24)],
            Instant::ZERO,
            1,
        );
        let mut net2 = Pair::new(
            Wire::new(MTU),
            [IpCidr::new(ip(2, 1), 24), IpCidr::new(ip(2, 2), 24)],
            Instant::ZERO,
            2,
        );
        let options = Options::default();
        let client_tcp = net1.nodes[A].sockets.add(tcp_socket());
        let relay_in = net1.nodes[B].sockets.add(tcp_socket());
        let relay_out = net2.nodes[A].sockets.add(tcp_socket());
        let server_tcp = net2.nodes[B].sockets.add(tcp_socket());

        let name = ServerName::try_from(cfg.sni).unwrap().to_owned();
        let mut client = TlsSocket::client(client_tcp, cfg.client.clone(), name, options);
        let mut server = TlsSocket::server(server_tcp, cfg.server.clone(), options);
        server.listen(&mut net2.nodes[B].sockets, PORT).unwrap();
        net1.nodes[B]
            .sockets
            .get_mut::<tcp::Socket>(relay_in)
            .listen(PORT)
            .unwrap();
        // The relay forwards at once, as a middlebox with TCP_NODELAY does.
        for (sockets, handle) in [
            (&mut net1.nodes[B].sockets, relay_in),
            (&mut net2.nodes[A].sockets, relay_out),
        ] {
            sockets
                .get_mut::<tcp::Socket>(handle)
                .set_nagle_enabled(false);
        }
        if let Some(delay) = conn.delayed_ack {
            // The server's peer delays its ACKs.
            let delay = Duration::from_micros(delay.as_micros() as u64);
            net2.nodes[A]
                .sockets
                .get_mut::<tcp::Socket>(relay_out)
                .set_ack_delay(Some(delay));
        }
        let cx = net2.nodes[A].iface.context();
        net2.nodes[A]
            .sockets
            .get_mut::<tcp::Socket>(relay_out)
            .connect(cx, (ip(2, 2), PORT), 49153)
            .unwrap();
        let cx = net1.nodes[A].iface.context();
        client
            .connect(cx, &mut net1.nodes[A].sockets, (ip(1, 2), PORT), 49152)
            .unwrap();

        let world = Rc::new(RefCell::new(World {
            net1,
            net2,
            tls: [client, server],
            relay: [relay_in, relay_out],
            taps: conn.faults.map(Tap::new),
            pending: [Vec::new(), Vec::new()],
            ended: [false; 2],
            fin_sent: [false; 2],
            dropped: [false; 2],
            now: Instant::ZERO,
            handshakes_done: None,
        }));
        let mut eps = [0, 1].map(|side| Side {
            world: world.clone(),
            side,
            closing: false,
        });
        let mut runners = runner::runners(conn);
        let [c, s] = &mut eps;
        runner::run_stepped(&mut runners, [c, s], &mut |done| {
            world.borrow_mut().drive(done)
        });
        let w = world.borrow();
        let mut relay = Relayed::from_taps(&w.taps, &format!("\n    virtual time {}", w.now));
        if let Some(delay) = conn.delayed_ack {
            let delay = Duration::from_micros(delay.as_micros() as u64);
            match w.handshakes_done {
                Some(t) if t - Instant::ZERO < delay => {}
                t => relay.problems.push(format!(
                    "handshakes done at {t:?} (virtual), not before the peer's delayed ACK \
                     ({delay}): a flight waited for it"
                )),
            }
        }
        (runners.map(|r| r.finish()), relay)
    }
}
