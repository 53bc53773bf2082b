//! A small HTTPS server on mio: every connection on one thread, driven by readiness.
//!
//! ```text
//! cargo run -p tls-unix --features mio --example mio_https_server -- [--port P] [--requests N]
//! ```
//!
//! It makes a throwaway CA and server certificate, writes the CA to a temporary file and
//! prints the `curl` line that reaches it. With `--requests N` it exits after serving N
//! responses (so it can be scripted); otherwise it serves until killed.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tls_test::certs::{KeyKind, Options as CertOptions, Pki};
use tls_unix::nonblocking::TlsStream;
use tls_unix::rustls::ServerConfig;
use tls_unix::Options;

const LISTENER: Token = Token(usize::MAX);

/// Where one connection is.
enum Phase {
    /// Handshake, then reading the request head.
    Request(Vec<u8>),
    /// Writing the response from this offset.
    Response(Vec<u8>, usize),
    /// Response and close_notify sent; reading until the client closes too, so that the
    /// kernel does not reset the connection under unread data.
    Closing,
}

struct Conn {
    tls: TlsStream<TcpStream>,
    phase: Phase,
}

impl Conn {
    /// Does all it can until the socket would block. `Ok(true)`: the connection is over.
    fn drive(&mut self) -> io::Result<bool> {
        if let Err(e) = self.tls.handshake() {
            return would_block(e).map(|()| false);
        }
        let mut buf = [0u8; 4096];
        loop {
            match &mut self.phase {
                Phase::Request(head) => match self.tls.read(&mut buf) {
                    Ok(0) => return Ok(true),
                    Ok(n) => {
                        head.extend_from_slice(&buf[..n]);
                        if head.windows(4).any(|w| w == b"\r\n\r\n") {
                            self.phase = Phase::Response(response(&self.tls, head), 0);
                        } else if head.len() > 16 * 1024 {
                            return Err(io::Error::new(
                                ErrorKind::InvalidData,
                                "request head too large",
                            ));
                        }
                    }
                    Err(e) => return would_block(e).map(|()| false),
                },
                Phase::Response(body, at) => {
                    if *at < body.len() {
                        match self.tls.write(&body[*at..]) {
                            Ok(n) => *at += n,
                            Err(e) => return would_block(e).map(|()| false),
                        }
                    } else {
                        // close_notify after the response, then FIN; WouldBlock resumes.
                        match self.tls.shutdown() {
                            Ok(()) => self.phase = Phase::Closing,
                            Err(e) => return would_block(e).map(|()| false),
                        }
                    }
                }
                Phase::Closing => match self.tls.read(&mut buf) {
                    Ok(0) => return Ok(true),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                    // A client that closes without close_notify after a complete response
                    // (curl does) is done too.
                    Err(_) => return Ok(true),
                },
            }
        }
    }
}

fn would_block(e: io::Error) -> io::Result<()> {
    if e.kind() == ErrorKind::WouldBlock {
        Ok(())
    } else {
        Err(e)
    }
}

fn response(tls: &TlsStream<TcpStream>, head: &[u8]) -> Vec<u8> {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let info = tls.handshake_info().expect("handshake complete");
    let body = format!(
        "hello from tlsflow over mio\nrequest: {}\nversion: {:?}\nsuite: {:?}\nalpn: {:?}\n",
        String::from_utf8_lossy(line),
        info.version,
        info.cipher_suite,
        info.alpn.as_deref().map(String::from_utf8_lossy),
    );
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn main() -> io::Result<()> {
    let mut port = 0u16;
    let mut requests: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (arg.as_str(), value) {
            ("--port", Some(p)) if p <= usize::from(u16::MAX) => port = p as u16,
            ("--requests", Some(n)) => requests = Some(n),
            _ => {
                eprintln!("usage: mio_https_server [--port P] [--requests N]");
                std::process::exit(2);
            }
        }
    }

    let pki = Pki::new(KeyKind::EcdsaP256, &[]);
    let config: Arc<ServerConfig> = Arc::new(pki.server_config(&CertOptions {
        alpn: vec![b"http/1.1".to_vec()],
        ..Default::default()
    }));
    let ca = std::env::temp_dir().join(format!("tlsflow-mio-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &pki.ca_pem)?;
    let options = Options {
        handshake_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(30)),
        write_timeout: Some(Duration::from_secs(30)),
        ..Options::default()
    };

    let mut poll = Poll::new()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on https://localhost:{}/", addr.port());
    println!(
        "try: curl --cacert {} https://localhost:{}/",
        ca.display(),
        addr.port()
    );

    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 0usize;
    let mut served = 0usize;
    let mut events = Events::with_capacity(1024);
    while requests.is_none_or(|n| served < n) {
        // Sleep no longer than the earliest handshake, read or write deadline.
        let now = Instant::now();
        let timeout = conns
            .values()
            .filter_map(|c| c.tls.deadline())
            .min()
            .map(|d| d.saturating_duration_since(now));
        poll.poll(&mut events, timeout)?;

        for event in events.iter() {
            let token = event.token();
            if token == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            let token = Token(next);
                            next = next.wrapping_add(1) % (usize::MAX - 1);
                            let mut tls = TlsStream::server(config.clone(), sock, options)?;
                            poll.registry()
                                .register(&mut tls, token, Interest::READABLE)?;
                            conns.insert(
                                token,
                                Conn {
                                    tls,
                                    phase: Phase::Request(Vec::new()),
                                },
                            );
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            match conn.drive() {
                Ok(false) => {
                    let interest = conn.tls.interest();
                    poll.registry().reregister(&mut conn.tls, token, interest)?;
                }
                Ok(true) => {
                    if matches!(conn.phase, Phase::Closing) {
                        served += 1;
                    }
                    let mut conn = conns.remove(&token).expect("present");
                    poll.registry().deregister(&mut conn.tls)?;
                }
                Err(e) => {
                    eprintln!("connection {}: {e}", token.0);
                    let mut conn = conns.remove(&token).expect("present");
                    poll.registry().deregister(&mut conn.tls)?;
                }
            }
        }

        // Drop connections whose time ran out.
        let now = Instant::now();
        conns.retain(|token, conn| match conn.tls.check_deadline(now) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("connection {}: {e}", token.0);
                let _ = poll.registry().deregister(&mut conn.tls);
                false
            }
        });
    }
    println!("served {served} responses");
    let _ = std::fs::remove_file(&ca);
    Ok(())
}
