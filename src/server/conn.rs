//! One connection: the TLS handshake, HTTP (hyper, HTTP/1.1 or HTTP/2 by ALPN) or echo,
//! then close_notify and the log line.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tls_unix::tokio::TlsAcceptor;
use tlsflow_unikernel::http::index_page;
use tlsflow_unikernel::log::{handshake_failed, Cause, CloseReason, ConnectionLog, TlsEnd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::service::{self, App, ConnState};
use super::stream::{is_idle_timeout, Conn, Idle, IdleTimeout, Lent};
use super::Options;

/// How long closing may take: writing our close_notify, then waiting for the peer's.
const LINGER: Duration = Duration::from_secs(2);

/// Serves one accepted TCP connection and returns its log line.
pub(crate) async fn serve(
    sock: TcpStream,
    acceptor: TlsAcceptor,
    options: Arc<Options>,
    mut stop: watch::Receiver<bool>,
    watcher: Watcher,
) -> String {
    let start = Instant::now();
    let peer = sock
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = sock.set_nodelay(true);
    let handshake = tokio::select! {
        tls = acceptor.accept(sock) => tls,
        _ = stop.wait_for(|s| *s) => Err(io::Error::other("server shutdown")),
    };
    let mut tls = match handshake {
        Ok(tls) => tls,
        Err(e) => {
            return handshake_failed(&peer, &e, millis(start));
        }
    };
    let info = tls.handshake_info().cloned();
    let client_cert = tls.session().peer_certificates().is_some();
    // Gather small writes into full records; a flush sends the rest (one record for a
    // head and a small body).
    let _ = tls.session_mut().set_coalescing(true);
    let state = Arc::new(ConnState::default());
    let mut conn = Box::new(Conn {
        tls,
        read: 0,
        written: 0,
        truncated: false,
        state: state.clone(),
        idle: Idle::new(options.idle_timeout),
        // RFC 9113 §3.2: HTTP/2 over TLS is chosen by ALPN, so no ALPN means HTTP/1.1.
        hold_partial: info.as_ref().and_then(|i| i.alpn.as_deref()) != Some(b"h2".as_slice()),
    });
    let (cause, requests) = if options.echo {
        (echo(&mut conn, &mut stop).await, None)
    } else {
        let app = App {
            page: index_page("unix", info.as_ref(), client_cert).into(),
            max_body: options.max_body,
            state: state.clone(),
        };
        let cause;
        (conn, cause) = http(conn, app, &options, watcher, &stop).await;
        (cause, Some(state.requests.load(Ordering::SeqCst)))
    };
    let tls_end = finish(&mut conn).await;
    ConnectionLog {
        peer: &peer,
        info: info.as_ref(),
        read: conn.read,
        written: conn.written,
        requests,
        millis: millis(start),
        close: &CloseReason::new(cause, tls_end),
    }
    .to_string()
}

/// Milliseconds since `start`, for the log line.
fn millis(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs hyper on the connection until it ends, under the server's graceful-shutdown
/// watcher; returns the connection and why it ended, when the server ended it.
async fn http(
    conn: Box<Conn>,
    app: App,
    options: &Options,
    watcher: Watcher,
    stop: &watch::Receiver<bool>,
) -> (Box<Conn>, Option<Cause>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true)
        .max_buf_size(options.max_header_bytes.max(8192));
    builder.http2().timer(TokioTimer::new());
    let state = app.state.clone();
    let service = service_fn(move |request| service::handle(app.clone(), request));
    let home = Arc::new(Mutex::new(None));
    let lent = Lent {
        conn: Some(conn),
        home: home.clone(),
    };
    // The future (and the connection in it) is dropped at the end of this statement,
    // which sends the stream home.
    let result = watcher
        .watch(builder.serve_connection(TokioIo::new(lent), service))
        .await;
    let conn = home
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .expect("hyper dropped the connection, which sent the stream home");
    let cause = match result {
        Ok(()) => None,
        Err(e) if answered_then_closed(&*e, &conn) => None,
        Err(e) => classify(&*e, conn.truncated),
    };
    if state.body_too_large.load(Ordering::SeqCst) {
        return (conn, Some(Cause::BodyTooLarge));
    }
    let cause = match cause {
        None if *stop.borrow() => Some(Cause::Shutdown),
        other => other,
    };
    (conn, cause)
}

/// hyper calls it an incomplete message when the peer's close_notify arrives while its
/// last flush is still pending on our side, though every byte of the response was already
/// handed to the TLS stream and has left: the client read it all, then closed (curl does,
/// at once). Not an error when our side holds nothing more.
fn answered_then_closed(e: &(dyn std::error::Error + 'static), conn: &Conn) -> bool {
    let incomplete = core::iter::successors(Some(e), |e| e.source())
        .filter_map(|e| e.downcast_ref::<hyper::Error>())
        .any(hyper::Error::is_incomplete_message);
    let session = conn.tls.session();
    incomplete
        && session.peer_has_closed()
        && !session.has_output()
        && conn.state.streaming.load(Ordering::SeqCst) == 0
}

/// Names a connection error; `None` for the peer's truncation (the TLS end says it).
fn classify(e: &(dyn std::error::Error + 'static), truncated: bool) -> Option<Cause> {
    if truncated {
        return None;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return Some(Cause::HeaderTimeout);
            }
            if h.is_parse_too_large() {
                return Some(Cause::HeadTooLarge);
            }
            if h.is_parse() {
                return Some(Cause::BadRequest);
            }
        }
        if err.is::<IdleTimeout>() {
            return Some(Cause::IdleTimeout);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if is_idle_timeout(io) {
                return Some(Cause::IdleTimeout);
            }
        }
        source = err.source();
    }
    Some(Cause::Error(e.to_string()))
}

/// Echoes application data until the peer's close_notify (or shutdown).
async fn echo(conn: &mut Conn, stop: &mut watch::Receiver<bool>) -> Option<Cause> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            n = conn.read(&mut buf) => n,
            _ = stop.wait_for(|s| *s) => return Some(Cause::Shutdown),
        };
        let n = match n {
            Ok(0) => return None,
            Ok(n) => n,
            Err(_) if conn.truncated => return None,
            Err(e) => return classify(&e, false),
        };
        if let Err(e) = async {
            conn.write_all(&buf[..n]).await?;
            conn.flush().await
        }
        .await
        {
            return classify(&e, conn.truncated);
        }
    }
}

/// Sends close_notify (after everything queued) and waits a short while for the peer's,
/// naming how the TLS connection ended.
async fn finish(conn: &mut Conn) -> TlsEnd {
    if conn.truncated {
        return TlsEnd::Truncated;
    }
    let peer_first = conn.tls.session().peer_has_closed();
    if conn.tls.session().error().is_some() {
        return TlsEnd::Failed;
    }
    match tokio::time::timeout(LINGER, conn.tls.shutdown()).await {
        Ok(Ok(())) => {}
        _ => return TlsEnd::Failed,
    }
    if peer_first {
        return TlsEnd::PeerFirst;
    }
    let mut sink = [0u8; 4096];
    let drain = async {
        loop {
            match conn.tls.read(&mut sink).await {
                Ok(0) => return TlsEnd::Both,
                Ok(_) => {}
                // Our close_notify is out: a peer that then closes its transport without
                // its own lost nothing we sent (gnutls-cli does this).
                Err(_) => return TlsEnd::Sent,
            }
        }
    };
    tokio::time::timeout(LINGER, drain)
        .await
        .unwrap_or(TlsEnd::Sent)
}
