//! tls-core in memory: two `Session`s, the relay's taps between them, one thread. The
//! reference backend. A side's transport "FIN" is modelled: after `close` (once its
//! output is out) or when its script ends, the peer gets `read_tls_eof` after the last
//! byte; a cut direction ends the same way.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Poll;

use tls_core::rustls::pki_types::ServerName;
use tls_core::{Error, Event, Limits, Session};

use crate::conformance::relay::{How, Relayed, Tap};
use crate::conformance::runner::{self, Backend, Endpoint};
use crate::conformance::scenarios::{Configs, Connection};
use crate::conformance::trace::{Fail, Handshake, Trace};

pub struct Core;

struct World {
    sessions: [Session; 2],
    /// Per direction (= sender's index): the relay's tap, and bytes on the wire.
    taps: [Tap; 2],
    wires: [Vec<u8>; 2],
    /// The side has ended its sending half (close done, or script over).
    fin: [bool; 2],
    /// The receiver of this direction has been told EOF.
    eof_told: [bool; 2],
}

impl World {
    /// Moves one direction once; true if anything moved.
    fn carry(&mut self, dir: usize) -> bool {
        let (s, r) = (dir, 1 - dir);
        let mut moved = false;
        let out = self.sessions[s].pending_tls();
        if !out.is_empty() {
            let n = out.len();
            if !self.taps[dir].is_cut() {
                self.taps[dir].feed(out, &mut self.wires[dir]);
            }
            self.sessions[s].tls_written(n);
            moved = true;
        }
        if !self.wires[dir].is_empty() {
            if self.sessions[r].error().is_some() {
                // A dead endpoint: the bytes go nowhere.
                self.wires[dir].clear();
                moved = true;
            } else {
                match self.sessions[r].read_tls(&self.wires[dir]) {
                    Ok(0) => {}
                    Ok(n) => {
                        self.wires[dir].drain(..n);
                        moved = true;
                    }
                    // Sticky in the session; the application sees it on its next call.
                    Err(_) => moved = true,
                }
            }
        }
        let ended = self.taps[dir].is_cut() || (self.fin[s] && !self.sessions[s].has_output());
        if ended && self.wires[dir].is_empty() && !self.eof_told[dir] {
            self.taps[dir].ended(How::Fin);
            self.sessions[r].read_tls_eof();
            self.eof_told[dir] = true;
            moved = true;
        }
        moved
    }
}

struct Side {
    world: Rc<RefCell<World>>,
    side: usize,
    closing: bool,
}

fn fail(e: &Error) -> Fail {
    Fail::from_core(e)
}

fn result<T>(r: Result<T, Error>) -> Poll<Result<T, Fail>> {
    match r {
        Err(Error::WouldBlock) => Poll::Pending,
        Err(e) => Poll::Ready(Err(fail(&e))),
        Ok(v) => Poll::Ready(Ok(v)),
    }
}

impl Endpoint for Side {
    fn handshake(&mut self) -> Poll<Result<Handshake, Fail>> {
        let w = self.world.borrow();
        let s = &w.sessions[self.side];
        if let Some(e) = s.error() {
            return Poll::Ready(Err(fail(e)));
        }
        match s.handshake_info() {
            Some(info) => Poll::Ready(Ok(Handshake::new(info, s.peer_certificates().is_some()))),
            None => Poll::Pending,
        }
    }

    fn write(&mut self, data: &[u8]) -> Poll<Result<usize, Fail>> {
        match self.world.borrow_mut().sessions[self.side].send(data) {
            Ok(0) => Poll::Pending,
            other => result(other),
        }
    }

    fn flush(&mut self) -> Poll<Result<(), Fail>> {
        // Done once the bytes have left the engine (an error the peer's answer causes
        // afterwards belongs to the next call, as on a socket).
        let w = self.world.borrow();
        let s = &w.sessions[self.side];
        if !s.has_output() {
            return Poll::Ready(Ok(()));
        }
        match s.error() {
            Some(e) => Poll::Ready(Err(fail(e))),
            None => Poll::Pending,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Poll<Result<usize, Fail>> {
        result(self.world.borrow_mut().sessions[self.side].recv(buf))
    }

    fn close(&mut self) -> Poll<Result<(), Fail>> {
        let mut w = self.world.borrow_mut();
        if !self.closing {
            if let Err(e) = w.sessions[self.side].close() {
                return Poll::Ready(Err(fail(&e)));
            }
            self.closing = true;
        }
        if w.sessions[self.side].has_output() {
            return Poll::Pending;
        }
        w.fin[self.side] = true;
        Poll::Ready(Ok(()))
    }

    fn key_update(&mut self) -> Poll<Result<(), Fail>> {
        result(self.world.borrow_mut().sessions[self.side].refresh_keys())
    }

    fn events(&mut self, out: &mut Vec<Event>) {
        let mut w = self.world.borrow_mut();
        while let Some(e) = w.sessions[self.side].poll_event() {
            out.push(e);
        }
    }
}

impl Backend for Core {
    fn name(&self) -> &'static str {
        "core"
    }

    fn run(&self, cfg: &Configs, conn: &Connection) -> ([Trace; 2], Relayed) {
        let name = ServerName::try_from(cfg.sni).unwrap().to_owned();
        let client = Session::client(cfg.client.clone(), name, Limits::default()).unwrap();
        let server = Session::server(cfg.server.clone(), Limits::default()).unwrap();
        let world = Rc::new(RefCell::new(World {
            sessions: [client, server],
            taps: conn.faults.map(Tap::new),
            wires: [Vec::new(), Vec::new()],
            fin: [false; 2],
            eof_told: [false; 2],
        }));
        let mut eps = [0, 1].map(|side| Side {
            world: world.clone(),
            side,
            closing: false,
        });
        let mut runners = runner::runners(conn);
        let [c, s] = &mut eps;
        runner::run_stepped(&mut runners, [c, s], &mut |done| {
            let mut w = world.borrow_mut();
            for (fin, done) in w.fin.iter_mut().zip(done) {
                // A finished script drops its connection: its sending half ends.
                *fin |= done;
            }
            let a = w.carry(0);
            let b = w.carry(1);
            a | b
        });
        let mut w = world.borrow_mut();
        // Both scripts are over, so both connections are dropped: in memory a direction
        // ends (there is no TCP to reset) once everything its sender queued has passed
        // the tap.
        for dir in [0, 1] {
            if !w.sessions[dir].has_output() {
                w.taps[dir].ended(How::Fin);
            }
        }
        let relay = Relayed::from_taps(&w.taps, "");
        (runners.map(|r| r.finish()), relay)
    }
}
