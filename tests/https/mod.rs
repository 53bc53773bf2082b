//! An in-process `tlsflow::server` and a raw client that sees the records the server sends,
//! for the HTTPS server tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tls_test::certs::{KeyKind, Pki};
use tls_unix::blocking::{self, TlsStream};
use tlsflow::server::{Options, Server};

/// The bound on any single wait in these tests.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// A server on 127.0.0.1 with its log lines on a channel.
pub(crate) struct Running {
    pub(crate) server: Option<Server>,
    pub(crate) pki: Arc<Pki>,
    pub(crate) addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts a server with `options` and ALPN `h2, http/1.1`, no tickets.
    pub(crate) fn start(options: Options) -> Running {
        let pki = Arc::new(Pki::new(KeyKind::EcdsaP256, &[]));
        let opts = tls_test::certs::Options {
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec(), b"echo".to_vec()],
            ..Default::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tx, lines) = mpsc::channel();
        let tx = Mutex::new(tx);
        let log: tlsflow::server::Log = Arc::new(move |line| {
            let _ = tx.lock().unwrap().send(line);
        });
        let server =
            Server::start(listener, Arc::new(pki.server_config(&opts)), options, log).unwrap();
        Running {
            addr: server.addr(),
            server: Some(server),
            pki,
            lines,
        }
    }

    /// The log line of the next connection that ends.
    pub(crate) fn next_line(&self) -> String {
        self.lines
            .recv_timeout(LIMIT)
            .expect("a connection log line within the limit")
    }

    /// Live connections now.
    pub(crate) fn live(&self) -> usize {
        self.server.as_ref().unwrap().live_connections()
    }

    /// A TLS client (HTTP/1.1 by ALPN) whose transport records what arrives.
    pub(crate) fn connect(&self) -> TlsStream<Recording> {
        self.connect_alpn(b"http/1.1")
    }

    /// A TLS client offering `alpn`.
    pub(crate) fn connect_alpn(&self, alpn: &[u8]) -> TlsStream<Recording> {
        let opts = tls_test::certs::Options {
            alpn: vec![alpn.to_vec()],
            ..Default::default()
        };
        let sock = TcpStream::connect(self.addr).unwrap();
        let rec = Recording {
            sock,
            records: Arc::new(Mutex::new(RecordLog::default())),
        };
        let options = tls_unix::Options {
            handshake_timeout: Some(LIMIT),
            read_timeout: Some(LIMIT),
            write_timeout: Some(LIMIT),
            ..Default::default()
        };
        blocking::connect(
            Arc::new(self.pki.client_config(&opts)),
            "localhost".try_into().unwrap(),
            rec,
            options,
        )
        .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

/// Record headers parsed from the bytes a transport received.
#[derive(Debug, Default)]
pub(crate) struct RecordLog {
    header: Vec<u8>,
    body_left: usize,
    /// (content type, body length) of every record seen whole or begun.
    pub(crate) records: Vec<(u8, usize)>,
}

impl RecordLog {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.header.len() == 5 {
                let len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.records.push((self.header[0], len));
                self.body_left = len;
                self.header.clear();
            }
        }
    }
}

/// A TCP stream that parses the TLS record headers of everything it reads.
pub(crate) struct Recording {
    pub(crate) sock: TcpStream,
    pub(crate) records: Arc<Mutex<RecordLog>>,
}

impl Recording {
    /// The records received so far.
    pub(crate) fn seen(&self) -> Vec<(u8, usize)> {
        self.records.lock().unwrap().records.clone()
    }
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.records.lock().unwrap().feed(&buf[..n]);
        Ok(n)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl tls_unix::SetTimeouts for Recording {
    fn set_read_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(limit)
    }
    fn set_write_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(limit)
    }
}

impl tls_unix::HalfClose for Recording {
    fn shutdown_write(&self) -> io::Result<()> {
        self.sock.shutdown(std::net::Shutdown::Write)
    }
}

/// A response read from a stream: status, head length, body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) head_len: usize,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

/// Reads one HTTP/1.1 response with a `content-length` body.
pub(crate) fn read_response<R: Read>(r: &mut R) -> io::Result<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let len: usize = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Response {
        status,
        head_len: head.len(),
        head: text,
        body,
    })
}

/// Reads until the peer's close_notify (`Ok(0)`); an error (truncation) fails the test.
pub(crate) fn expect_clean_eof<R: Read>(r: &mut R) {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)
        .expect("a clean end (close_notify), not a truncation");
}

/// One field `name=value` of a log line (`close=` is last and has spaces).
pub(crate) fn log_field<'a>(line: &'a str, name: &str) -> &'a str {
    if name == "close" {
        let at = line
            .find(" close=")
            .unwrap_or_else(|| panic!("no close= in {line:?}"));
        return &line[at + " close=".len()..];
    }
    let key = format!("{name}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}
