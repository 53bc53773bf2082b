//! The client process (`load client`): opens the connections, times the handshakes, holds
//! them idle.

use super::*;

pub(super) fn client_config(ca: &std::path::Path) -> io::Result<Arc<ClientConfig>> {
    let ca = CertificateDer::from_pem_file(ca).map_err(io::Error::other)?;
    let mut roots = RootCertStore::empty();
    roots.add(ca).map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13)
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

#[derive(Clone)]
pub(super) enum Connector {
    Tlsflow(tls_unix::tokio::TlsConnector),
    TokioRustls(tokio_rustls::TlsConnector),
}

/// What a client connection reports: its handshake latency once idle, or why it failed.
pub(super) type Outcome = Result<Duration, String>;

/// The source address of connection `i` in run `net`: 127.net.x.y, y in 1..=250.
pub(super) fn source(net: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        net,
        (i / 250 % 256) as u8,
        (i % 250 + 1) as u8,
    ))
}

/// The task of one client connection with `$connector`: connect from `$src`, handshake
/// (timed from before the connect), request, response, then idle until the server goes
/// away.
macro_rules! client_conn {
    ($connector:expr, $server:expr, $src:expr, $tx:expr) => {{
        let (connector, server, src, tx) = ($connector, $server, $src, $tx);
        async move {
            let start = Instant::now();
            let setup = tokio::time::timeout(CONN_LIMIT, async {
                let tcp = tcp_connect(src, server).await?;
                let mut tls = connector.connect(server_name(), tcp).await?;
                let latency = start.elapsed();
                request(&mut tls).await?;
                Ok::<_, io::Error>((tls, latency))
            })
            .await;
            match setup {
                Ok(Ok((mut tls, latency))) => hold(&mut tls, latency, tx).await,
                Ok(Err(e)) => drop(tx.send(Err(e.to_string()))),
                Err(_) => drop(tx.send(Err("timed out before going idle".into()))),
            }
        }
    }};
}

/// `load client`: opens the connections, prints
/// `result <ok> <failed> <secs> <p50_us> <p99_us> <heap0> <heap1> <rss0> <rss1>` once all
/// are idle (or failed), then holds them until stdin closes.
pub(super) fn client_main(args: &ClientArgs) -> io::Result<()> {
    check_fd_limit(args.conns)?;
    let config = client_config(&args.ca)?;
    let connector = match args.imp {
        ClientImpl::Tlsflow => Connector::Tlsflow(tls_unix::tokio::TlsConnector::new(config)),
        ClientImpl::TokioRustls => Connector::TokioRustls(tokio_rustls::TlsConnector::from(config)),
    };
    let rt = tokio_runtime(args.workers)?;
    let server = SocketAddr::from(([127, 0, 0, 1], args.port));
    let (tx, rx) = mpsc::channel::<Outcome>();
    let mut latencies = Vec::with_capacity(args.conns);
    let mut failed = 0usize;

    let before = Mem::now()?;
    let start = Instant::now();
    let launch = |i: usize| {
        let tx = tx.clone();
        let src = source(args.net, i);
        // One task type per library: a single `async fn` matching on the connector would
        // be as large as the larger library's future for both.
        match &connector {
            Connector::Tlsflow(k) => drop(rt.spawn(client_conn!(k.clone(), server, src, tx))),
            Connector::TokioRustls(k) => drop(rt.spawn(client_conn!(k.clone(), server, src, tx))),
        }
    };
    let mut launched = 0;
    while launched < args.conns.min(args.concurrency.max(1)) {
        launch(launched);
        launched += 1;
    }
    for _ in 0..args.conns {
        match rx.recv_timeout(PROGRESS_LIMIT) {
            Ok(Ok(latency)) => latencies.push(latency),
            Ok(Err(e)) => {
                if failed < 5 {
                    eprintln!("load client: connection failed: {e}");
                }
                failed += 1;
            }
            Err(_) => return Err(other("no connection finished for 60 s")),
        }
        if launched < args.conns {
            launch(launched);
            launched += 1;
        }
    }
    let elapsed = start.elapsed();
    let after = Mem::now()?;
    latencies.sort_unstable();
    println!(
        "result {} {failed} {:.6} {} {} {} {} {} {}",
        latencies.len(),
        elapsed.as_secs_f64(),
        percentile(&latencies, 50.0).as_micros(),
        percentile(&latencies, 99.0).as_micros(),
        before.heap,
        after.heap,
        before.rss,
        after.rss,
    );
    io::stdout().flush()?;
    // Hold the connections until the coordinator is done with the server.
    let _ = io::stdin().read_to_end(&mut Vec::new());
    rt.shutdown_background();
    Ok(())
}

pub(super) async fn tcp_connect(
    src: IpAddr,
    server: SocketAddr,
) -> io::Result<tokio::net::TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(src, 0))?;
    let tcp = sock.connect(server).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Sends the request and checks the response.
pub(super) async fn request<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S) -> io::Result<()> {
    tls.write_all(REQUEST).await?;
    tls.flush().await?;
    let mut response = [0u8; RESPONSE.len()];
    tls.read_exact(&mut response).await?;
    if response != RESPONSE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected response",
        ));
    }
    Ok(())
}

/// Idles on a read; reports the latency once the read is pending.
pub(super) async fn hold<S: AsyncRead + Unpin>(
    tls: &mut S,
    latency: Duration,
    tx: mpsc::Sender<Outcome>,
) {
    let mut tx = Some(tx);
    let end = idle_read(tls, || {
        if let Some(tx) = tx.take() {
            let _ = tx.send(Ok(latency));
        }
    })
    .await;
    if let Some(tx) = tx {
        let _ = tx.send(Err(format!("ended before going idle: {end:?}")));
    }
}
