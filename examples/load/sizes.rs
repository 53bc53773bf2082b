//! `load sizes`: the size of each per-connection object.

use super::*;

/// `load sizes`: how big each per-connection object is before it does anything (a future's
/// size is fixed by its largest state, and a spawned task allocates all of it).
pub(super) fn sizes() -> io::Result<()> {
    use std::mem::{size_of, size_of_val};
    type Tcp = tokio::net::TcpStream;
    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let config = Arc::new(pki.server_config(&CertOptions {
        versions: TLS13.to_vec(),
        ..Default::default()
    }));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sock = || tokio::net::TcpStream::connect(addr);
        let ours = tls_unix::tokio::TlsAcceptor::new(config.clone());
        let peer = tokio_rustls::TlsAcceptor::from(config.clone());
        let (tx, _rx) = mpsc::channel();
        let (ctx, _crx) = mpsc::channel::<Outcome>();
        let client = Arc::new(pki.client_config(&CertOptions {
            versions: TLS13.to_vec(),
            ..Default::default()
        }));
        let rows: [(&str, usize); 14] = [
            ("tls_core::Session", size_of::<tls_core::Session>()),
            ("rustls::ServerConnection", size_of::<ServerConnection>()),
            (
                "tls_unix::tokio::TlsStream<TcpStream>",
                size_of::<tls_unix::tokio::TlsStream<Tcp>>(),
            ),
            (
                "tokio_rustls::server::TlsStream<TcpStream>",
                size_of::<tokio_rustls::server::TlsStream<Tcp>>(),
            ),
            (
                "tls_unix::tokio::TlsAcceptor::accept future",
                size_of_val(&ours.accept(sock().await?)),
            ),
            (
                "tokio_rustls::TlsAcceptor::accept future",
                size_of_val(&peer.accept(sock().await?)),
            ),
            (
                "load server task, tlsflow",
                serve_task!(task_size, ours.clone(), sock().await?, tx.clone(), false),
            ),
            (
                "load server task, tokio-rustls",
                serve_task!(task_size, peer.clone(), sock().await?, tx.clone(), false),
            ),
            (
                "load server task, tlsflow, accept boxed",
                serve_task!(task_size, ours.clone(), sock().await?, tx.clone(), true),
            ),
            (
                "load server task, tokio-rustls, accept boxed",
                serve_task!(task_size, peer.clone(), sock().await?, tx.clone(), true),
            ),
            (
                "load client task, tlsflow",
                task_size(client_conn!(
                    tls_unix::tokio::TlsConnector::new(client.clone()),
                    addr,
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ctx.clone()
                )),
            ),
            (
                "load client task, tokio-rustls",
                task_size(client_conn!(
                    tokio_rustls::TlsConnector::from(client.clone()),
                    addr,
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    ctx.clone()
                )),
            ),
            (
                "tls_unix::nonblocking::TlsStream<mio TcpStream>",
                size_of::<TlsflowMio>(),
            ),
            (
                "load mio connection, rustls-mio",
                size_of::<MioConn<RustlsMio>>(),
            ),
        ];
        for (what, bytes) in rows {
            println!("{bytes:>8}  {what}");
        }
        Ok(())
    })
}
