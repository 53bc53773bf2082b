//! The server process (`load server`) on tokio: tlsflow's or tokio-rustls' acceptor, one task
//! per connection.

use super::*;

/// Size in bytes of one connection's own object: the spawned task's future (tokio) or the
/// boxed connection (mio); reported in `stats`.
pub(super) static CONN_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// A std listener on 127.0.0.1 with a backlog of 4096, like the tokio servers'. (mio's
/// and std's `bind` listen with 128, fewer than the connections in flight: the overflow
/// drops SYNs and adds 1 s retransmissions to the latency.)
pub(super) fn backlogged_listener() -> io::Result<std::net::TcpListener> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let sock = TcpSocket::new_v4()?;
        sock.set_reuseaddr(true)?;
        sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = sock.listen(4096)?.into_std()?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })
}

/// What a server connection reports to the control loop.
pub(super) enum Event {
    /// Handshake, request and response done; a read is pending.
    Idle,
    /// The connection failed before going idle.
    Failed(String),
}

/// `load server`: prints `ready <port> <ca.pem>`, then answers `wait <n>` with
/// `stats <idle> <failed> <heap0> <heap1> <rss0> <rss1> <conn_object_bytes>` and exits on `quit` (or EOF).
pub(super) fn server_main(args: &ServerArgs) -> io::Result<()> {
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let config = Arc::new(pki.server_config(&CertOptions {
        versions: TLS13.to_vec(),
        ..Default::default()
    }));
    let ca = std::env::temp_dir().join(format!("tlsflow-load-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &pki.ca_pem)?;
    let (tx, rx) = mpsc::channel();

    // Keep the runtime (tokio) or the loop thread (mio) alive until exit.
    let (port, _runtime, before) = match args.imp {
        Impl::Tlsflow | Impl::TokioRustls => {
            let rt = tokio_runtime(args.workers)?;
            let listener = rt.block_on(async {
                let sock = TcpSocket::new_v4()?;
                sock.set_reuseaddr(true)?;
                sock.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
                sock.listen(4096)
            })?;
            let port = listener.local_addr()?.port();
            let before = Mem::now()?;
            rt.spawn(accept_loop(
                args.imp,
                args.box_handshake,
                listener,
                config,
                tx,
            ));
            (port, Some(rt), before)
        }
        Impl::TlsflowMio | Impl::RustlsMio => {
            let mut listener = MioListener::from_std(backlogged_listener()?);
            let port = listener.local_addr()?.port();
            let poll = mio::Poll::new()?;
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)?;
            let events = Events::with_capacity(1024);
            let (ready_tx, ready_rx) = mpsc::channel();
            let imp = args.imp;
            std::thread::spawn(move || {
                let result = match imp {
                    Impl::TlsflowMio => {
                        mio_loop::<TlsflowMio>(poll, events, listener, config, tx, ready_rx)
                    }
                    _ => mio_loop::<RustlsMio>(poll, events, listener, config, tx, ready_rx),
                };
                if let Err(e) = result {
                    eprintln!("load server: mio loop: {e}");
                    std::process::exit(1);
                }
            });
            let before = Mem::now()?;
            ready_tx.send(()).map_err(|_| other("mio thread gone"))?;
            (port, None, before)
        }
    };
    println!("ready {port} {}", ca.display());
    io::stdout().flush()?;

    let mut idle = 0usize;
    let mut failed = 0usize;
    let mut errors_shown = 0;
    let mut note = |e: &Event, idle: &mut usize, failed: &mut usize| match e {
        Event::Idle => *idle += 1,
        Event::Failed(msg) => {
            *failed += 1;
            if errors_shown < 5 {
                eprintln!("load server: connection failed: {msg}");
                errors_shown += 1;
            }
        }
    };
    for line in io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|n| n.parse::<usize>().ok()),
        ) {
            (Some("wait"), Some(n)) => {
                let mut deadline = Instant::now() + PROGRESS_LIMIT;
                while idle < n {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(e) => {
                            note(&e, &mut idle, &mut failed);
                            deadline = Instant::now() + PROGRESS_LIMIT;
                        }
                        Err(_) => break,
                    }
                }
                while let Ok(e) = rx.try_recv() {
                    note(&e, &mut idle, &mut failed);
                }
                let after = Mem::now()?;
                println!(
                    "stats {idle} {failed} {} {} {} {} {}",
                    before.heap,
                    after.heap,
                    before.rss,
                    after.rss,
                    CONN_OBJECT.load(Ordering::Relaxed)
                );
                io::stdout().flush()?;
            }
            (Some("quit"), _) => break,
            _ => eprintln!("load server: unknown command {line:?}"),
        }
    }
    let _ = std::fs::remove_file(&ca);
    // Exit without dropping thousands of connections one by one.
    std::process::exit(0)
}

/// Spawns the task of one accepted connection, written the way an application would:
/// `accept(sock).await`, then the exchange on `&mut` the stream. With `boxed`, the accept
/// future is boxed (`Box::pin`), so the task keeps only a pointer to it.
/// `$with` gets the task's future (`spawn_conn`, or `task_size` for `load sizes`).
macro_rules! serve_task {
    ($with:ident, $acceptor:expr, $sock:expr, $tx:expr, $boxed:expr) => {{
        let (acceptor, sock, tx) = ($acceptor, $sock, $tx);
        if $boxed {
            $with(async move {
                match Box::pin(acceptor.accept(sock)).await {
                    Ok(mut tls) => serve(&mut tls, tx).await,
                    Err(e) => drop(tx.send(Event::Failed(e.to_string()))),
                }
            })
        } else {
            $with(async move {
                match acceptor.accept(sock).await {
                    Ok(mut tls) => serve(&mut tls, tx).await,
                    Err(e) => drop(tx.send(Event::Failed(e.to_string()))),
                }
            })
        }
    }};
}

pub(super) async fn accept_loop(
    imp: Impl,
    boxed: bool,
    listener: TcpListener,
    config: Arc<ServerConfig>,
    tx: mpsc::Sender<Event>,
) {
    let ours = tls_unix::tokio::TlsAcceptor::new(config.clone());
    let peer = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                let _ = tx.send(Event::Failed(format!("accept: {e}")));
                // Back off (descriptor exhaustion would otherwise spin).
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Err(e) = sock.set_nodelay(true) {
            let _ = tx.send(Event::Failed(format!("nodelay: {e}")));
            continue;
        }
        let tx = tx.clone();
        if imp == Impl::Tlsflow {
            serve_task!(spawn_conn, ours.clone(), sock, tx, boxed);
        } else {
            serve_task!(spawn_conn, peer.clone(), sock, tx, boxed);
        }
    }
}

/// Spawns a connection's task, noting its size.
pub(super) fn spawn_conn(task: impl Future<Output = ()> + Send + 'static) {
    CONN_OBJECT.store(std::mem::size_of_val(&task), Ordering::Relaxed);
    tokio::spawn(task);
}

/// The size of a (never polled) task future.
pub(super) fn task_size<F: Future>(task: F) -> usize {
    std::mem::size_of_val(&task)
}

/// One server connection after its handshake: read the request head, answer, then idle
/// until the client goes away. (No time limit here: the client has one, and the
/// coordinator's `wait` reports connections that never went idle.)
pub(super) async fn serve<S>(tls: &mut S, tx: mpsc::Sender<Event>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = request_response(tls).await {
        let _ = tx.send(Event::Failed(e.to_string()));
        return;
    }
    let mut tx = Some(tx);
    let end = idle_read(tls, || {
        if let Some(tx) = tx.take() {
            let _ = tx.send(Event::Idle);
        }
    })
    .await;
    if let Some(tx) = tx {
        let _ = tx.send(Event::Failed(format!("ended before going idle: {end:?}")));
    }
}

pub(super) async fn request_response<S>(tls: &mut S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; 256];
    let mut len = 0;
    while !head[..len].ends_with(b"\r\n\r\n") {
        if len == head.len() {
            return Err(other("request head too large"));
        }
        match tls.read(&mut head[len..]).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => len += n,
        }
    }
    tls.write_all(RESPONSE).await?;
    tls.flush().await
}
