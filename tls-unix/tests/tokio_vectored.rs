//! The tokio stream's `poll_write_vectored`: slices are sealed into as few records as they
//! fill, with `poll_write`'s partial-write semantics (the count is of plaintext taken from
//! the front of the slices).

#![cfg(feature = "tokio")]

mod common;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use common::*;
use tls_unix::tokio::{TlsAcceptor, TlsConnector, TlsStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// Body lengths of the records written, the header bytes of one in progress, and the
/// body bytes it still lacks.
type Records = Arc<Mutex<(Vec<usize>, Vec<u8>, usize)>>;

/// A transport that parses the record headers of everything written to it.
struct Recorder {
    inner: DuplexStream,
    records: Records,
}

impl Recorder {
    fn feed(&self, mut data: &[u8]) {
        let mut guard = self.records.lock().unwrap();
        let (records, header, left) = &mut *guard;
        while !data.is_empty() {
            if *left > 0 {
                let n = (*left).min(data.len());
                *left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - header.len()).min(data.len());
            header.extend_from_slice(&data[..n]);
            data = &data[n..];
            if header.len() == 5 {
                *left = usize::from(u16::from_be_bytes([header[3], header[4]]));
                records.push(*left);
                header.clear();
            }
        }
    }
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.feed(&buf[..n]);
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn pair() -> (TlsStream<Recorder>, TlsStream<DuplexStream>, Records) {
    let (a, b) = tokio::io::duplex(4 << 20);
    let records = Records::default();
    let rec = Recorder {
        inner: a,
        records: records.clone(),
    };
    let acceptor = TlsAcceptor::new(server_config(&[])).with_options(options());
    let connector = TlsConnector::new(client_config(&[])).with_options(options());
    let server = tokio::spawn(async move { acceptor.accept(rec).await });
    let client = connector.connect(localhost(), b).await.unwrap();
    (server.await.unwrap().unwrap(), client, records)
}

/// Body lengths (less the TLS 1.3 inner type and tag) of records written since `from`.
fn since(records: &Records, from: usize) -> Vec<usize> {
    records.lock().unwrap().0[from..]
        .iter()
        .map(|n| n - 17)
        .collect()
}

#[tokio::test]
async fn vectored_writes_fill_records() {
    let (mut server, mut client, records) = pair().await;
    assert!(server.is_write_vectored());
    let head = vec![b'h'; 100];
    let body = vec![b'b'; 1000];
    let start = records.lock().unwrap().0.len();

    // A head and a small body: one record.
    let n = server
        .write_vectored(&[IoSlice::new(&head), IoSlice::new(&body)])
        .await
        .unwrap();
    assert_eq!(n, 1100);
    server.flush().await.unwrap();
    assert_eq!(since(&records, start), vec![1100]);

    // Short slices past a record: one full record now, the rest on the next call.
    let a = vec![1u8; 16000];
    let at = records.lock().unwrap().0.len();
    let n = server
        .write_vectored(&[IoSlice::new(&a), IoSlice::new(&body)])
        .await
        .unwrap();
    assert_eq!(n, 16384, "gathered up to one full record");
    let n2 = server
        .write_vectored(&[IoSlice::new(&body[384..])])
        .await
        .unwrap();
    assert_eq!(n2, 616);
    server.flush().await.unwrap();
    assert_eq!(since(&records, at), vec![16384, 616]);

    // A big slice followed by more: whole records from it, its tail joins the next.
    let big = vec![2u8; 40000];
    let at = records.lock().unwrap().0.len();
    let n = server
        .write_vectored(&[IoSlice::new(&big), IoSlice::new(&head)])
        .await
        .unwrap();
    assert_eq!(n, 32768, "whole records only while more slices follow");
    let n2 = server
        .write_vectored(&[IoSlice::new(&big[n..]), IoSlice::new(&head)])
        .await
        .unwrap();
    assert_eq!(n2, 40000 - 32768 + 100);
    server.flush().await.unwrap();
    assert_eq!(since(&records, at), vec![16384, 16384, 7332]);

    // The bytes arrive in order.
    server.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    let mut want = [head.clone(), body.clone(), a, body.clone(), big, head].concat();
    want.truncate(got.len());
    assert_eq!(got.len(), 1100 + 17000 + 40100);
    assert!(got == want, "plaintext in order");
}
