//! The tokio flavour over TCP on 127.0.0.1 and over Unix-domain sockets: what is its
//! own (timeouts, the full-duplex split, KeyUpdate across the split halves). Handshake,
//! ALPN, bulk, half-close and truncation, the same on every flavour, are scenarios of
//! `tests/conformance` (run on all five backends).

#![cfg(feature = "tokio")]

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::*;
use tls_unix::tls_core::{Event, Initiator, Session};
use tls_unix::tokio::{TlsAcceptor, TlsConnector, TlsStream};
use tls_unix::{Options, Timeout};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// A tokio socket the tests can use.
trait Sock: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug + 'static> Sock for T {}

/// A std socket made non-blocking and handed to tokio; its owned split.
trait IntoTokio {
    type Tokio: Sock;
    type Read: AsyncRead + Unpin + Send + std::fmt::Debug + 'static;
    type Write: AsyncWrite + Unpin + Send + std::fmt::Debug + 'static;
    fn into_tokio(self) -> Self::Tokio;
    fn owned_split(s: Self::Tokio) -> (Self::Read, Self::Write);
}

/// `IntoTokio` for the std stream `$std`: `tokio::net::$stream`, with its owned halves
/// from `tokio::net::$halves`.
macro_rules! into_tokio {
    ($std:ty => $stream:ident, $halves:ident) => {
        impl IntoTokio for $std {
            type Tokio = tokio::net::$stream;
            type Read = tokio::net::$halves::OwnedReadHalf;
            type Write = tokio::net::$halves::OwnedWriteHalf;
            fn into_tokio(self) -> Self::Tokio {
                self.set_nonblocking(true).unwrap();
                tokio::net::$stream::from_std(self).unwrap()
            }
            fn owned_split(s: Self::Tokio) -> (Self::Read, Self::Write) {
                s.into_split()
            }
        }
    };
}

into_tokio!(std::net::TcpStream => TcpStream, tcp);
into_tokio!(std::os::unix::net::UnixStream => UnixStream, unix);

type TokioOf<L> = <<L as Listen>::Stream as IntoTokio>::Tokio;
type Pair<L> = (TlsStream<TokioOf<L>>, TlsStream<TokioOf<L>>);

/// Two connected transports (std listener, then handed to tokio).
fn sockets<L: Listen>() -> (TokioOf<L>, TokioOf<L>)
where
    L::Stream: IntoTokio,
{
    let listener = L::bind();
    let client = listener.connect().into_tokio();
    let server = listener.accept().into_tokio();
    (client, server)
}

async fn connected<L: Listen>(client_alpn: &[&[u8]], server_alpn: &[&[u8]]) -> Pair<L>
where
    L::Stream: IntoTokio,
{
    let (client, server) = sockets::<L>();
    let acceptor = TlsAcceptor::new(server_config(server_alpn)).with_options(options());
    let connector = TlsConnector::new(client_config(client_alpn)).with_options(options());
    let server = tokio::spawn(async move { acceptor.accept(server).await });
    let client = connector
        .connect(localhost(), client)
        .await
        .expect("client handshake");
    let server = server.await.unwrap().expect("server handshake");
    (client, server)
}

/// A client with `client_options`, connected to a server task that completes its handshake,
/// then waits until released through the returned sender before handing its stream to
/// `then`.
async fn with_held_server<L: Listen, F>(
    client_options: Options,
    then: impl FnOnce(TlsStream<TokioOf<L>>) -> F + Send + 'static,
) -> (
    TlsStream<TokioOf<L>>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)
where
    L::Stream: IntoTokio,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (client, server) = sockets::<L>();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let tls = TlsAcceptor::new(server_config(&[]))
            .accept(server)
            .await
            .unwrap();
        rx.await.unwrap();
        then(tls).await;
    });
    let client = TlsConnector::new(client_config(&[]))
        .with_options(client_options)
        .connect(localhost(), client)
        .await
        .unwrap();
    (client, tx, server)
}

async fn send_pattern_async(w: &mut (impl AsyncWrite + Unpin), seed: u64, len: u64, chunk: usize) {
    let mut pattern = Pattern::new(seed, len);
    let mut buf = vec![0u8; chunk];
    loop {
        let n = pattern.fill(&mut buf);
        if n == 0 {
            return;
        }
        w.write_all(&buf[..n]).await.unwrap();
    }
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

async fn handshake_timeout<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let limit = Duration::from_millis(300);
    let quick = Options {
        handshake_timeout: Some(limit),
        ..Options::default()
    };
    let (ours, _silent) = sockets::<L>();
    let start = Instant::now();
    let e = TlsConnector::new(client_config(&[]))
        .with_options(quick)
        .connect(localhost(), ours)
        .await
        .unwrap_err();
    assert_timeout(&e, Timeout::Handshake(limit));
    assert!(start.elapsed() >= limit);
    let (_silent, ours) = sockets::<L>();
    let start = Instant::now();
    let e = TlsAcceptor::new(server_config(&[]))
        .with_options(quick)
        .accept(ours)
        .await
        .unwrap_err();
    assert_timeout(&e, Timeout::Handshake(limit));
    assert!(start.elapsed() >= limit);
}

async fn read_timeout<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let limit = Duration::from_millis(200);
    let opts = Options {
        read_timeout: Some(limit),
        ..options()
    };
    let (mut client, tx, server) = with_held_server::<L, _>(opts, |mut tls| async move {
        tls.write_all(b"late").await.unwrap();
        tls.shutdown().await.unwrap();
    })
    .await;
    let start = Instant::now();
    let e = client.read(&mut [0u8; 16]).await.unwrap_err();
    assert_timeout(&e, Timeout::Read(limit));
    assert!(start.elapsed() >= limit);
    tx.send(()).unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"late");
    server.await.unwrap();
}

/// Both sides split (the client with `into_split`, the server with the transport's owned
/// halves); on each side the writer sends 8 MiB while the reader receives 8 MiB, and each
/// writer asks for a KeyUpdate half way. SHA-256 both ways; each side answered the other's
/// KeyUpdate.
async fn split_full_duplex<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let (client, server) = connected::<L>(&[], &[]).await;
    let (mut client_r, mut client_w) = client.into_split();
    let (mut server_r, mut server_w) = server.split_with(<L::Stream as IntoTokio>::owned_split);
    assert!(client_r.is_pair_of(&client_w));
    // A side that has sent close_notify must not answer a KeyUpdate request any more, so
    // each writer shuts down only once its reader has all the peer's data (and with it
    // the peer's request, sent half way): then both sides answer, whatever the timing.
    async fn write_with_key_update<W: AsyncWrite + Unpin>(
        w: &mut tls_unix::tokio::WriteHalf<W>,
        seed: u64,
        peer_data_read: oneshot::Receiver<()>,
    ) {
        send_pattern_async(w, seed, BULK / 2, 100_000).await;
        w.refresh_keys().unwrap();
        send_pattern_async(w, seed + 100, BULK / 2, 100_000).await;
        peer_data_read.await.unwrap();
        w.shutdown().await.unwrap();
    }
    async fn read_all_then_signal(
        r: &mut (impl AsyncRead + Unpin),
        all_read: oneshot::Sender<()>,
    ) -> (u64, Vec<u8>) {
        let mut digest = Digest::new();
        let mut buf = vec![0u8; 50_000];
        let mut got = 0u64;
        let mut all_read = Some(all_read);
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                return digest.finish();
            }
            digest.update(&buf[..n]);
            got += n as u64;
            if got >= BULK {
                if let Some(tx) = all_read.take() {
                    let _ = tx.send(());
                }
            }
        }
    }
    let (client_read_tx, client_read_rx) = oneshot::channel();
    let (server_read_tx, server_read_rx) = oneshot::channel();
    let tasks = (
        tokio::spawn(async move {
            write_with_key_update(&mut client_w, 1, client_read_rx).await;
            client_w
        }),
        tokio::spawn(async move {
            write_with_key_update(&mut server_w, 2, server_read_rx).await;
            server_w
        }),
        tokio::spawn(async move {
            (
                read_all_then_signal(&mut client_r, client_read_tx).await,
                client_r,
            )
        }),
        tokio::spawn(async move {
            (
                read_all_then_signal(&mut server_r, server_read_tx).await,
                server_r,
            )
        }),
    );
    let client_w = tasks.0.await.unwrap();
    let server_w = tasks.1.await.unwrap();
    let (client_got, _client_r) = tasks.2.await.unwrap();
    let (server_got, _server_r) = tasks.3.await.unwrap();
    let halves = |seed: u64| {
        let mut d = Digest::new();
        for s in [seed, seed + 100] {
            let mut p = Pattern::new(s, BULK / 2);
            let mut buf = vec![0u8; 65536];
            loop {
                let n = p.fill(&mut buf);
                if n == 0 {
                    break;
                }
                d.update(&buf[..n]);
            }
        }
        d.finish()
    };
    assert_eq!(client_got, halves(2));
    assert_eq!(server_got, halves(1));
    for w in [
        &client_w.with_session(events),
        &server_w.with_session(events),
    ] {
        assert!(w.contains(&Event::KeysUpdated(Initiator::Local)), "{w:?}");
        assert!(w.contains(&Event::KeysUpdated(Initiator::Peer)), "{w:?}");
    }
}

/// The reader half writes the KeyUpdate reply itself: the server's writer half is never
/// used, yet after reading the client's data the server has nothing left to send, and the
/// client reads the server's later data under the new keys.
async fn split_reader_answers_key_update<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let (mut client, server) = connected::<L>(&[], &[]).await;
    let (mut server_r, mut server_w) = server.into_split();
    client.write_all(b"before").await.unwrap();
    client.refresh_keys().unwrap();
    client.write_all(b" after").await.unwrap();
    client.flush().await.unwrap();
    let mut buf = [0u8; 12];
    server_r.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"before after");
    let (pending, seen) = server_r.with_session(|s| (s.has_output(), events(s)));
    assert!(!pending, "the reader left the KeyUpdate reply queued");
    assert!(
        seen.contains(&Event::KeysUpdated(Initiator::Peer)),
        "{seen:?}"
    );
    // Now the idle writer speaks (under its updated keys) and closes.
    server_w.write_all(b"bye").await.unwrap();
    server_w.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
    client.shutdown().await.unwrap();
    assert_eq!(server_r.read(&mut buf).await.unwrap(), 0);
}

/// The peer asks for a KeyUpdate after we shut down: the answer can no longer be sent (and
/// must not follow our close_notify), and reading to the end still works.
async fn key_update_after_our_shutdown<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let (mut client, mut server) = connected::<L>(&[], &[]).await;
    server.shutdown().await.unwrap();
    assert_eq!(client.read(&mut [0u8; 4]).await.unwrap(), 0);
    client.refresh_keys().unwrap();
    client.write_all(b"after close_notify").await.unwrap();
    client.flush().await.unwrap();
    // The server reads the KeyUpdate and the data before the client's close_notify.
    let mut buf = [0u8; 18];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"after close_notify");
    assert!(!server.session().has_output());
    client.shutdown().await.unwrap();
    assert_eq!(server.read(&mut buf).await.unwrap(), 0);
}

/// The peer stops reading: writes fill the transport's buffers, then `Timeout::Write`.
async fn write_timeout<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let limit = Duration::from_millis(200);
    let opts = Options {
        write_timeout: Some(limit),
        ..options()
    };
    let (mut client, tx, server) =
        with_held_server::<L, _>(opts, |tls| async move { drop(tls) }).await;
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    let e = loop {
        match client.write(&chunk).await {
            Ok(n) => add_unread(&mut written, n),
            Err(e) => break e,
        }
    };
    assert_timeout(&e, Timeout::Write(limit));
    tx.send(()).unwrap();
    server.await.unwrap();
}

/// A fatal error found by the reader half sends its alert through the shared writer: the
/// peer learns why (`AlertReceived(BadRecordMac)`), not just that the connection ended.
async fn split_reader_sends_alert<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let (mut client, server) = connected::<L>(&[], &[]).await;
    let (mut server_r, _server_w) = server.into_split();
    // A well-formed application-data record that does not decrypt.
    let mut bogus = vec![23u8, 3, 3, 0, 40];
    bogus.extend_from_slice(&[0x5a; 40]);
    client.get_mut().write_all(&bogus).await.unwrap();
    let e = server_r.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    let e = client.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert_eq!(
        tls_unix::tls_error(&e),
        Some(&tls_unix::tls_core::Error::AlertReceived(
            tls_unix::rustls::AlertDescription::BadRecordMac
        )),
        "{e}"
    );
}

/// After a fatal error (the server's transport closed without close_notify: a
/// truncation), no close_notify is sent, but `shutdown` still half-closes the socket and
/// succeeds. (Truncation itself is a conformance scenario; this is the flavour's own.)
async fn shutdown_after_fatal_error<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let (mut client, tx, server) =
        with_held_server::<L, _>(options(), |tls| async move { drop(tls) }).await;
    tx.send(()).unwrap();
    server.await.unwrap();
    assert_truncated(&client.read(&mut [0u8; 16]).await.unwrap_err());
    client.shutdown().await.unwrap();
}

/// The hybrid key exchange by default, and the same exported keying material on both
/// ends (`TlsStream::export_keying_material`, a forward of the engine's).
async fn hybrid_and_exporter<L: Listen>()
where
    L::Stream: IntoTokio,
{
    let (client, server) = connected::<L>(&[], &[]).await;
    assert_hybrid_and_same_export(
        client.handshake_info().unwrap().key_exchange,
        |out| client.export_keying_material(out, EXPORT_LABEL, Some(b"ctx")),
        |out| server.export_keying_material(out, EXPORT_LABEL, Some(b"ctx")),
    );
}

for_transports! {
    async
    hybrid_and_exporter => super::hybrid_and_exporter::<L>();
    shutdown_after_fatal_error => super::shutdown_after_fatal_error::<L>();
    handshake_timeout => super::handshake_timeout::<L>();
    read_timeout => super::read_timeout::<L>();
    split_full_duplex_8mib_each_way_with_key_update => super::split_full_duplex::<L>();
    split_reader_answers_key_update => super::split_reader_answers_key_update::<L>();
    key_update_after_our_shutdown => super::key_update_after_our_shutdown::<L>();
    write_timeout => super::write_timeout::<L>();
    split_reader_sends_alert => super::split_reader_sends_alert::<L>();
}
