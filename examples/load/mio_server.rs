//! mio servers: one thread, one `Poll`, a slab of boxed connections (tlsflow's non-blocking
//! stream or rustls' `ServerConnection`).

use super::*;

pub(super) const LISTENER: Token = Token(usize::MAX);

/// A non-blocking server TLS stream the mio loop can drive.
pub(super) trait MioTls: Read + Write + mio::event::Source + Sized {
    fn accept(config: Arc<ServerConfig>, sock: MioStream) -> io::Result<Self>;
    /// `Ok` once the handshake is complete, `WouldBlock` while it waits.
    fn drive_handshake(&mut self) -> io::Result<()>;
    fn next_interest(&self) -> Interest;
}

pub(super) type TlsflowMio = tls_unix::nonblocking::TlsStream<MioStream>;

impl MioTls for TlsflowMio {
    fn accept(config: Arc<ServerConfig>, sock: MioStream) -> io::Result<Self> {
        Self::server(config, sock, tls_unix::Options::default())
    }

    fn drive_handshake(&mut self) -> io::Result<()> {
        self.handshake()
    }

    fn next_interest(&self) -> Interest {
        self.interest()
    }
}

/// rustls' `ServerConnection` over a mio socket, with the same `Read`/`Write` semantics as
/// tlsflow's non-blocking stream (`WouldBlock` when nothing can move).
pub(super) struct RustlsMio {
    pub(super) conn: ServerConnection,
    pub(super) sock: MioStream,
}

impl RustlsMio {
    /// Writes queued records until none is left or the socket would block.
    pub(super) fn write_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock)?;
        }
        Ok(())
    }

    /// Reads once from the socket into rustls and processes what came.
    pub(super) fn read_tls(&mut self) -> io::Result<()> {
        match self.conn.read_tls(&mut self.sock)? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => match self.conn.process_new_packets() {
                Ok(_) => Ok(()),
                Err(e) => {
                    let _ = self.write_tls();
                    Err(io::Error::new(io::ErrorKind::InvalidData, e))
                }
            },
        }
    }
}

impl MioTls for RustlsMio {
    fn accept(config: Arc<ServerConfig>, sock: MioStream) -> io::Result<Self> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Self { conn, sock })
    }

    fn drive_handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.write_tls()?;
            if !self.conn.is_handshaking() {
                break;
            }
            self.read_tls()?;
        }
        self.write_tls()
    }

    fn next_interest(&self) -> Interest {
        if self.conn.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }
}

impl Read for RustlsMio {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.drive_handshake()?;
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return result,
            }
            match self.write_tls() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            self.read_tls()?;
        }
    }
}

impl Write for RustlsMio {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drive_handshake()?;
        let n = self.conn.writer().write(buf)?;
        match self.write_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_tls()
    }
}

impl mio::event::Source for RustlsMio {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}

/// Where a mio connection is.
pub(super) enum Phase {
    /// Handshake, then reading the request head (what came so far).
    Request(Vec<u8>),
    /// Writing the response from this offset, then flushing.
    Response(usize),
    /// Answered; a read is pending. `reported`: the control loop was told.
    Idle { reported: bool },
}

pub(super) struct MioConn<T> {
    pub(super) tls: T,
    pub(super) phase: Phase,
}

pub(super) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl<T: MioTls> MioConn<T> {
    /// Does all it can until the socket would block; `Err` ends the connection.
    pub(super) fn drive(&mut self, tx: &mpsc::Sender<Event>) -> io::Result<()> {
        loop {
            match &mut self.phase {
                Phase::Request(head) => {
                    match self.tls.drive_handshake() {
                        Err(e) if would_block(&e) => return Ok(()),
                        other => other?,
                    }
                    let mut buf = [0u8; 256];
                    match self.tls.read(&mut buf) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => {
                            head.extend_from_slice(&buf[..n]);
                            if head.ends_with(b"\r\n\r\n") {
                                self.phase = Phase::Response(0);
                            } else if head.len() > 256 {
                                return Err(other("request head too large"));
                            }
                        }
                        Err(e) if would_block(&e) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Phase::Response(at) if *at < RESPONSE.len() => {
                    match self.tls.write(&RESPONSE[*at..]) {
                        Ok(n) => *at += n,
                        Err(e) if would_block(&e) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Phase::Response(_) => match self.tls.flush() {
                    Ok(()) => self.phase = Phase::Idle { reported: false },
                    Err(e) if would_block(&e) => return Ok(()),
                    Err(e) => return Err(e),
                },
                Phase::Idle { reported } => {
                    let mut buf = [0u8; 16];
                    return match self.tls.read(&mut buf) {
                        Err(e) if would_block(&e) => {
                            if !*reported {
                                *reported = true;
                                let _ = tx.send(Event::Idle);
                            }
                            Ok(())
                        }
                        Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => Err(other("unexpected data on an idle connection")),
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }
}

pub(super) fn mio_loop<T: MioTls>(
    mut poll: mio::Poll,
    mut events: Events,
    listener: MioListener,
    config: Arc<ServerConfig>,
    tx: mpsc::Sender<Event>,
    ready: mpsc::Receiver<()>,
) -> io::Result<()> {
    // Start serving only after the control thread took its "before" figures.
    ready.recv().map_err(|_| other("control thread gone"))?;
    CONN_OBJECT.store(std::mem::size_of::<MioConn<T>>(), Ordering::Relaxed);
    let mut conns: Vec<Option<Box<MioConn<T>>>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    let sock = match listener.accept() {
                        Ok((sock, _)) => sock,
                        Err(e) if would_block(&e) => break,
                        Err(e) => {
                            let _ = tx.send(Event::Failed(format!("accept: {e}")));
                            break;
                        }
                    };
                    sock.set_nodelay(true)?;
                    let mut tls = T::accept(config.clone(), sock)?;
                    let slot = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    poll.registry()
                        .register(&mut tls, Token(slot), Interest::READABLE)?;
                    conns[slot] = Some(Box::new(MioConn {
                        tls,
                        phase: Phase::Request(Vec::new()),
                    }));
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            match conn.drive(&tx) {
                Ok(()) => {
                    let interest = conn.tls.next_interest();
                    poll.registry()
                        .reregister(&mut conn.tls, Token(slot), interest)?;
                }
                Err(e) => {
                    if !matches!(conn.phase, Phase::Idle { reported: true }) {
                        let _ = tx.send(Event::Failed(e.to_string()));
                    }
                    let mut conn = conns[slot].take().expect("present");
                    poll.registry().deregister(&mut conn.tls)?;
                    free.push(slot);
                }
            }
        }
    }
}
