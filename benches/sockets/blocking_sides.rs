//! Blocking sides: tlsflow's blocking stream and rustls' `StreamOwned` behind one `Stream`
//! trait, the servers, clients and slices of the blocking cases.

use super::*;

/// A blocking TLS stream as the bench drives it, for tls-unix and rustls' `StreamOwned`.
pub(super) trait Stream: Read + Write {
    /// close_notify after everything written, then half-close the socket.
    fn close(&mut self) -> io::Result<()>;
    /// Whether the handshake resumed a session.
    fn resumed(&self) -> bool;
}

impl Stream for blocking::TlsStream<TcpStream> {
    fn close(&mut self) -> io::Result<()> {
        self.shutdown()
    }
    fn resumed(&self) -> bool {
        self.handshake_info().is_some_and(|h| h.resumed)
    }
}

/// rustls' client and server streams alike.
impl<C, D> Stream for StreamOwned<C, TcpStream>
where
    C: DerefMut + Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    fn close(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown(Shutdown::Write)
    }
    fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(HandshakeKind::Resumed)
    }
}

/// Writes `n` bytes in `CHUNK` writes.
pub(super) fn write_n(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    let chunk = [0x5a; CHUNK];
    while n > 0 {
        let len = n.min(CHUNK as u64) as usize;
        w.write_all(&chunk[..len])?;
        n -= len as u64;
    }
    Ok(())
}

/// Reads until end of stream (the peer's close_notify) in `CHUNK` reads; the byte count.
pub(super) fn read_all(r: &mut impl Read) -> io::Result<u64> {
    let mut buf = vec![0; CHUNK];
    let mut total = 0;
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// The server's side of one exchange: an 8-byte request `n`, `n` bytes back, close_notify
/// both ways.
pub(super) fn serve(tls: &mut impl Stream) -> io::Result<()> {
    let mut request = [0; 8];
    tls.read_exact(&mut request)?;
    write_n(tls, u64::from_le_bytes(request))?;
    tls.close()?;
    read_all(tls)?;
    Ok(())
}

/// The client's side of one exchange; whether it resumed.
pub(super) fn exchange(tls: &mut impl Stream, n: u64) -> io::Result<bool> {
    tls.write_all(&n.to_le_bytes())?;
    let got = read_all(tls)?;
    if got != n {
        return Err(io::Error::other(format!("got {got} bytes, wanted {n}")));
    }
    tls.close()?;
    Ok(tls.resumed())
}

/// One implementation's blocking client and server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Impl {
    Ours,
    Rustls,
}

/// Starts a server thread accepting one connection at a time, forever.
pub(super) fn blocking_server(which: Impl, config: Arc<ServerConfig>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        pin_server();
        for sock in listener.incoming() {
            let result = sock.and_then(|sock| {
                sock.set_nodelay(true)?;
                match which {
                    Impl::Ours => {
                        serve(&mut blocking::accept(config.clone(), sock, our_options())?)
                    }
                    Impl::Rustls => serve(&mut StreamOwned::new(
                        ServerConnection::new(config.clone()).map_err(io::Error::other)?,
                        sock,
                    )),
                }
            });
            if let Err(e) = result {
                eprintln!("server error: {e}");
            }
        }
    });
    Ok(addr)
}

/// One blocking client connection fetching `n` bytes; whether it resumed.
pub(super) fn blocking_client(
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    n: u64,
) -> io::Result<bool> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    match which {
        Impl::Ours => exchange(
            &mut blocking::connect(config.clone(), server_name(), sock, our_options())?,
            n,
        ),
        Impl::Rustls => exchange(
            &mut StreamOwned::new(
                ClientConnection::new(config.clone(), server_name()).map_err(io::Error::other)?,
                sock,
            ),
            n,
        ),
    }
}

/// A slice of `count` sequential connections each fetching `n` bytes.
pub(super) fn blocking_slice(
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    count: usize,
    n: u64,
    must_resume: bool,
) -> io::Result<Slice> {
    let start = Instant::now();
    let mut resumed = 0;
    for _ in 0..count {
        resumed += usize::from(blocking_client(which, config, addr, n)?);
    }
    conn_slice(start, resumed, count, n, must_resume)
}

/// The slice of `count` connections of `n` bytes each, timed from `start` (now is the
/// end), once `resumed` of them resumed as `must_resume` says they should.
pub(super) fn conn_slice(
    start: Instant,
    resumed: usize,
    count: usize,
    n: u64,
    must_resume: bool,
) -> io::Result<Slice> {
    let elapsed = start.elapsed();
    if must_resume && resumed != count {
        return Err(io::Error::other(format!(
            "only {resumed} of {count} connections resumed"
        )));
    }
    if !must_resume && resumed != 0 {
        return Err(io::Error::other(format!(
            "{resumed} of {count} connections resumed with resumption off"
        )));
    }
    Ok(((count as u64 * n.max(1)) as f64, elapsed))
}
