//! tokio sides: tlsflow's tokio flavour and tokio-rustls, the servers, clients and slices of
//! the tokio cases.

use super::*;

pub(super) async fn serve_async<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S) -> io::Result<()> {
    let mut request = [0; 8];
    tls.read_exact(&mut request).await?;
    write_n_async(tls, u64::from_le_bytes(request)).await?;
    tls.shutdown().await?;
    read_all_async(tls).await?;
    Ok(())
}

pub(super) async fn write_n_async<W: AsyncWrite + Unpin>(w: &mut W, mut n: u64) -> io::Result<()> {
    let chunk = [0x5a; CHUNK];
    while n > 0 {
        let len = n.min(CHUNK as u64) as usize;
        w.write_all(&chunk[..len]).await?;
        n -= len as u64;
    }
    Ok(())
}

pub(super) async fn read_all_async<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<u64> {
    let mut buf = vec![0; CHUNK];
    let mut total = 0;
    loop {
        match r.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

pub(super) async fn exchange_async<S: AsyncRead + AsyncWrite + Unpin>(
    tls: &mut S,
    n: u64,
) -> io::Result<()> {
    tls.write_all(&n.to_le_bytes()).await?;
    let got = read_all_async(tls).await?;
    if got != n {
        return Err(io::Error::other(format!("got {got} bytes, wanted {n}")));
    }
    tls.shutdown().await
}

/// Starts an accept loop on `rt` that serves every connection in a task of its own.
pub(super) fn tokio_server(
    rt: &tokio::runtime::Runtime,
    which: Impl,
    config: Arc<ServerConfig>,
) -> io::Result<SocketAddr> {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    rt.spawn(async move {
        let ours = tls_unix::tokio::TlsAcceptor::new(config.clone()).with_options(our_options());
        let theirs = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let (ours, theirs) = (ours.clone(), theirs.clone());
            tokio::spawn(async move {
                let result = async {
                    sock.set_nodelay(true)?;
                    match which {
                        Impl::Ours => serve_async(&mut ours.accept(sock).await?).await,
                        Impl::Rustls => serve_async(&mut theirs.accept(sock).await?).await,
                    }
                }
                .await;
                if let Err(e) = result {
                    eprintln!("server error: {e}");
                }
            });
        }
    });
    Ok(addr)
}

pub(super) async fn tokio_client(
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    n: u64,
) -> io::Result<bool> {
    let sock = tokio::net::TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    match which {
        Impl::Ours => {
            let connector =
                tls_unix::tokio::TlsConnector::new(config.clone()).with_options(our_options());
            let mut tls = connector.connect(server_name(), sock).await?;
            exchange_async(&mut tls, n).await?;
            Ok(tls.handshake_info().is_some_and(|h| h.resumed))
        }
        Impl::Rustls => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let mut tls = connector.connect(server_name(), sock).await?;
            exchange_async(&mut tls, n).await?;
            Ok(tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed))
        }
    }
}

pub(super) fn tokio_slice(
    rt: &tokio::runtime::Runtime,
    which: Impl,
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    count: usize,
    n: u64,
    must_resume: bool,
) -> io::Result<Slice> {
    rt.block_on(async {
        let start = Instant::now();
        let mut resumed = 0;
        for _ in 0..count {
            resumed += usize::from(tokio_client(which, config, addr, n).await?);
        }
        conn_slice(start, resumed, count, n, must_resume)
    })
}
