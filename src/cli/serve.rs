//! `tlsflow serve`: HTTPS (or an echo service) on a chosen backend.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use rustls::ServerConfig;
use tls_unix::{blocking, Options};

use super::tls::{server_config, ServerTlsArgs};
use super::Error;
use tlsflow::http;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// Echo application data back instead of speaking HTTP (for conformance tools).
    #[arg(long)]
    echo: bool,
    /// Stop after this many connections (default: serve until Ctrl-C).
    #[arg(long)]
    max_connections: Option<u64>,
    #[command(flatten)]
    tls: ServerTlsArgs,
}

static STOP: AtomicBool = AtomicBool::new(false);

pub(crate) fn run(args: &ServeArgs) -> Result<(), Error> {
    let (config, what) = server_config(&args.tls)?;
    let config = Arc::new(config);
    let listener =
        TcpListener::bind(args.addr).map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    let open: Arc<Mutex<Vec<(u64, TcpStream)>>> = Arc::default();
    {
        // Ctrl-C: stop accepting (wake the accept call with a connection of our own) and
        // end open connections, so the process exits promptly and cleanly.
        let open = open.clone();
        ctrlc::set_handler(move || {
            STOP.store(true, Ordering::SeqCst);
            for (_, stream) in open.lock().unwrap().iter() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            let _ = TcpStream::connect(addr);
        })
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    }
    println!(
        "tlsflow: listening on {addr} ({}, {what})",
        if args.echo { "echo" } else { "https" }
    );
    if !args.echo {
        let host = if addr.ip().is_loopback() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        };
        let cacert = match &args.tls.ca_out() {
            Some(path) => format!("--cacert {} ", path.display()),
            None => String::new(),
        };
        println!("tlsflow: try: curl {cacert}https://{host}:{}/", addr.port());
    }
    io::stdout().flush()?;

    let next_id = AtomicU64::new(0);
    let mut workers = Vec::new();
    for stream in listener.incoming() {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("tlsflow: accept failed: {e}");
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            open.lock().unwrap().push((id, clone));
        }
        let config = config.clone();
        let open = open.clone();
        let echo = args.echo;
        workers.push(thread::spawn(move || {
            let line = serve_one(stream, config, echo);
            println!("{line}");
            let _ = io::stdout().flush();
            open.lock().unwrap().retain(|(i, _)| *i != id);
        }));
        workers.retain(|w| !w.is_finished());
        if args.max_connections.is_some_and(|max| id + 1 >= max) {
            break;
        }
    }
    for w in workers {
        let _ = w.join();
    }
    println!("tlsflow: stopped");
    Ok(())
}

fn options() -> Options {
    Options {
        handshake_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        write_timeout: Some(Duration::from_secs(60)),
        ..Options::default()
    }
}

/// Counts plaintext both ways.
struct Counted<S> {
    inner: S,
    read: u64,
    written: u64,
}

impl<S: Read> Read for Counted<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<S: Write> Write for Counted<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Serves one connection and returns its log line.
fn serve_one(stream: TcpStream, config: Arc<ServerConfig>, echo: bool) -> String {
    let start = Instant::now();
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let tls = match blocking::accept(config, stream, options()) {
        Ok(tls) => tls,
        Err(e) => {
            return format!(
                "{peer} handshake failed: {e} ({} ms)",
                start.elapsed().as_millis()
            )
        }
    };
    let info = tls.handshake_info().cloned();
    let client_cert = tls.session().peer_certificates().is_some();
    let mut conn = Counted {
        inner: tls,
        read: 0,
        written: 0,
    };
    let outcome = if echo {
        echo_loop(&mut conn)
    } else {
        http_loop(&mut conn, info.as_ref(), client_cert)
    };
    let close = match outcome.and_then(|()| finish(&mut conn.inner)) {
        Ok(reason) => reason,
        Err(e) => format!("error: {e}"),
    };
    let (version, suite, alpn, resumed) = match &info {
        Some(i) => (
            format!("{:?}", i.version),
            format!("{:?}", i.cipher_suite),
            i.alpn
                .as_deref()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .unwrap_or_else(|| "-".into()),
            i.resumed,
        ),
        None => ("?".into(), "?".into(), "-".into(), false),
    };
    format!(
        "{peer} {version} {suite} alpn={alpn} resumed={resumed} in={} out={} {} ms close={close}",
        conn.read,
        conn.written,
        start.elapsed().as_millis()
    )
}

/// Echoes until the peer's close_notify.
fn echo_loop<S: Read + Write>(conn: &mut S) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf)? {
            0 => return Ok(()),
            n => conn.write_all(&buf[..n])?,
        }
        conn.flush()?;
    }
}

fn index_page(info: Option<&tls_core::HandshakeInfo>, client_cert: bool) -> String {
    let Some(i) = info else {
        return "tlsflow\n".into();
    };
    let alpn = i
        .alpn
        .as_deref()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_else(|| "-".into());
    format!(
        "tlsflow (unix backend)\nversion: {:?}\ncipher suite: {:?}\nkey exchange: {}\nalpn: {alpn}\nsni: {}\nresumed: {}\nclient certificate: {}\n",
        i.version,
        i.cipher_suite,
        i.key_exchange.map(|g| format!("{g:?}")).unwrap_or_else(|| "-".into()),
        i.sni.as_deref().unwrap_or("-"),
        i.resumed,
        if client_cert { "yes" } else { "no" },
    )
}

fn http_loop<S: Read + Write>(
    conn: &mut Counted<tls_unix::blocking::TlsStream<S>>,
    info: Option<&tls_core::HandshakeInfo>,
    client_cert: bool,
) -> io::Result<()>
where
    S: Read + Write,
{
    let page = index_page(info, client_cert);
    // One reader for the whole connection, so pipelined requests are not lost.
    let mut reader = BufReader::new(conn);
    loop {
        let Some(request) = http::read_request(&mut reader)? else {
            return Ok(()); // the client's close_notify
        };
        let route = match (request.method.as_str(), request.content_length) {
            ("GET", _) => http::route(&request.path),
            ("POST" | "PUT", Some(len)) => {
                if request.expect_continue {
                    let conn = reader.get_mut();
                    conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                    conn.flush()?;
                }
                http::Route::Digest(http::digest_body(&mut reader, len)?, len)
            }
            _ => http::Route::NotFound,
        };
        let conn = reader.get_mut();
        http::write_response(&mut *conn, &route, &page, request.keep_alive)?;
        conn.flush()?;
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// Sends close_notify and reads until the peer's, naming how the connection ended.
fn finish<S: Read + Write + tls_unix::HalfClose>(
    tls: &mut tls_unix::blocking::TlsStream<S>,
) -> io::Result<String> {
    let peer_first = tls.session().peer_has_closed();
    tls.shutdown()?;
    let mut sink = [0u8; 4096];
    loop {
        match tls.read(&mut sink) {
            Ok(0) => {
                return Ok(if peer_first {
                    "close_notify (peer first)".into()
                } else {
                    "close_notify (both)".into()
                })
            }
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok("peer closed without close_notify (truncated)".into())
            }
            Err(e) => return Err(e),
        }
    }
}
