//! The pure HTTP pieces, and the client against the server.

use std::vec::Vec;

use rustls::pki_types::ServerName;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use tls_netsim::{Tick, A, B};
use tls_unikernel::{Options, TlsSocket};

use super::harness::{World, PORT, SERVER_IP};
use crate::http::{self, BodyLength, ChunkedDecoder, Method, RequestError, Route};
use crate::{Config, Fetch, FetchEvent, Fetched};

#[test]
fn requests_parse_with_keep_alive_rules() {
    let (r, len) = http::parse_request(b"GET /bytes/7 HTTP/1.1\r\nhost: x\r\n\r\nrest", 1024)
        .unwrap()
        .unwrap();
    assert_eq!(len, 34);
    assert_eq!(
        (r.method, r.route, r.keep_alive),
        (Method::Get, Route::Bytes(7), true)
    );
    let (r, _) = http::parse_request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1024)
        .unwrap()
        .unwrap();
    assert!(r.keep_alive);
    let (r, _) = http::parse_request(
        b"PUT /x HTTP/1.1\r\nconnection: close\r\ncontent-length: 12\r\n\r\n",
        1024,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (r.method, r.content_length, r.keep_alive),
        (Method::Upload, 12, false)
    );
    assert_eq!(http::parse_request(b"GET / HTTP/1.1\r\nho", 1024), Ok(None));
    assert_eq!(
        http::parse_request(b"GET / HTTP/1.1\r\nho", 10),
        Err(RequestError::TooLarge)
    );
    assert_eq!(
        http::parse_request(b"GET /HTTP/1.0\r\n\r\n", 1024),
        Err(RequestError::Malformed)
    );
    let chunked = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";
    assert_eq!(
        http::parse_request(chunked, 1024),
        Err(RequestError::TransferCoding)
    );
    let signed = b"POST / HTTP/1.1\r\ncontent-length: +5\r\n\r\n";
    assert_eq!(
        http::parse_request(signed, 1024),
        Err(RequestError::Malformed)
    );
    assert_eq!(http::route("/bytes/x"), Route::NotFound);
}

#[test]
fn responses_and_chunked_bodies_parse() {
    let head =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    let (r, len) = http::parse_response(head, 1024).unwrap().unwrap();
    assert_eq!(
        (r.status, r.body, len),
        (200, BodyLength::Chunked, head.len())
    );
    let (r, _) = http::parse_response(b"HTTP/1.0 200 ok\r\n\r\n", 1024)
        .unwrap()
        .unwrap();
    assert_eq!(r.body, BodyLength::UntilClose);
    let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\ntrailer: x\r\n\r\n";
    // Fed in every split, the decoder gives the same bytes.
    for split in 0..body.len() {
        let mut dec = ChunkedDecoder::default();
        let mut out = Vec::new();
        let mut pending = body[..split].to_vec();
        let used = dec
            .decode(&pending, &mut |d| out.extend_from_slice(d))
            .unwrap();
        pending.drain(..used);
        pending.extend_from_slice(&body[split..]);
        let used = dec
            .decode(&pending, &mut |d| out.extend_from_slice(d))
            .unwrap();
        assert_eq!(used, pending.len(), "split {split}");
        assert!(dec.is_done());
        assert_eq!(out, b"hello, world");
    }
    let mut dec = ChunkedDecoder::default();
    assert!(dec.decode(b"zz\r\n", &mut |_| {}).is_err());
}

impl World {
    /// Fetches `path` with [`Fetch`] from the server.
    fn fetch(&mut self, path: &str) -> Fetched {
        let ring = || tcp::SocketBuffer::new(std::vec![0; 64 * 1024]);
        let handle = self.pair.nodes[A]
            .sockets
            .add(tcp::Socket::new(ring(), ring()));
        let name = ServerName::try_from("192.0.2.2").unwrap();
        let mut tls =
            TlsSocket::client(handle, self.client_config.clone(), name, Options::default());
        let cx = self.pair.nodes[A].iface.context();
        tls.connect(
            cx,
            &mut self.pair.nodes[A].sockets,
            (SERVER_IP, PORT),
            50000,
        )
        .unwrap();
        let mut fetch = Fetch::new(tls, "192.0.2.2", path, Duration::from_secs(10));
        let mut events = Vec::new();
        let mut fetched = None;
        let (server, log) = (&mut self.server, &mut self.log);
        let driven = self.pair.drive_bounded(1_000_000, |pair| {
            let now = pair.now;
            let _ = server.poll(now, &mut pair.nodes[B].sockets, &mut |l| log.push(l.into()));
            let _ = fetch.tls().poll(now, &mut pair.nodes[A].sockets);
            match fetch
                .step(now, &mut pair.nodes[A].sockets, &mut |_| {})
                .unwrap()
            {
                FetchEvent::Done(f) => fetched = Some(f),
                FetchEvent::Pending => {}
                FetchEvent::Established => events.push("established".into()),
                FetchEvent::Status(s) => events.push(std::format!("status {s}")),
            }
            // Every round counts as progress: the clock moves 100 µs a round, as before.
            Tick {
                done: fetched.is_some(),
                progress: true,
                deadline: None,
            }
        });
        if let (Ok(_), Some(f)) = (driven, fetched) {
            self.pair.nodes[A].sockets.remove(handle);
            assert_eq!(events, ["established", "status 200"]);
            return f;
        }
        panic!("the fetch did not finish; log {:?}", self.log);
    }
}

#[test]
fn client_fetches_and_digests_a_body() {
    let mut world = World::new(Config::default());
    let fetched = world.fetch("/bytes/200000");
    assert_eq!((fetched.status, fetched.len), (200, 200_000));
    assert_eq!(fetched.digest, http::pattern_digest(200_000));
    assert_eq!(fetched.unclean_close, None);
    world.run_until(None, |w, _| !w.log.is_empty());
    let line = &world.log[0];
    assert!(line.ends_with("close=close_notify (both)"), "{line}");
}
