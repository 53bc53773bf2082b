//! `tlsflow serve`: HTTPS (or an echo service) on a chosen backend.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use rustls::ServerConfig;
use tls_unix::{blocking, Options};

use super::tls::{server_config, ServerTlsArgs};
use super::unikernel::{self, Backend, TapArgs};
use super::Error;
use tlsflow::http;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed). With
    /// --backend unikernel only the port is used: the address is --ip's.
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// The network stack: the host's sockets, or tlsflow's own on a TAP device.
    #[arg(long, value_enum, default_value_t = Backend::Unix)]
    backend: Backend,
    #[command(flatten)]
    tap: TapArgs,
    /// Echo application data back instead of speaking HTTP (for conformance tools).
    #[arg(long)]
    echo: bool,
    /// Stop after this many connections (default: serve until Ctrl-C).
    #[arg(long)]
    max_connections: Option<u64>,
    #[command(flatten)]
    limits: unikernel::ServeLimits,
    #[command(flatten)]
    tls: ServerTlsArgs,
}

/// Stops a [`UnixServer`]: no more accepts, open connections shut down.
#[derive(Debug)]
pub(crate) struct Stopper {
    addr: SocketAddr,
    stop: AtomicBool,
    open: Mutex<Vec<(u64, TcpStream)>>,
}

impl Stopper {
    /// Stops accepting (waking the accept call with a connection of our own) and shuts
    /// down open connections, so the server ends promptly.
    pub(crate) fn trigger(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, stream) in self.open.lock().unwrap().iter() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.addr);
    }
}

/// An HTTPS (or echo) server on the Unix backend: an accept loop on its own thread and a
/// thread per connection, each logging one line through `log`.
pub(crate) struct UnixServer {
    stopper: Arc<Stopper>,
    thread: thread::JoinHandle<()>,
}

impl UnixServer {
    pub(crate) fn start(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        echo: bool,
        max_connections: Option<u64>,
        log: Arc<dyn Fn(String) + Send + Sync>,
    ) -> io::Result<Self> {
        let stopper = Arc::new(Stopper {
            addr: listener.local_addr()?,
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let s = stopper.clone();
        let thread =
            thread::spawn(move || accept_loop(&listener, &config, echo, max_connections, &s, &log));
        Ok(Self { stopper, thread })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.stopper.addr
    }

    pub(crate) fn stopper(&self) -> Arc<Stopper> {
        self.stopper.clone()
    }

    /// Waits for the accept loop (and every connection) to end.
    pub(crate) fn join(self) {
        let _ = self.thread.join();
    }

    /// Stops the server and waits for it.
    pub(crate) fn stop(self) {
        self.stopper.trigger();
        self.join();
    }
}

fn accept_loop(
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
    echo: bool,
    max_connections: Option<u64>,
    stopper: &Arc<Stopper>,
    log: &Arc<dyn Fn(String) + Send + Sync>,
) {
    let mut workers = Vec::new();
    for (id, stream) in (0u64..).zip(listener.incoming()) {
        if stopper.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log(format!("tlsflow: accept failed: {e}"));
                continue;
            }
        };
        if let Ok(clone) = stream.try_clone() {
            stopper.open.lock().unwrap().push((id, clone));
        }
        let (config, stopper, log) = (config.clone(), stopper.clone(), log.clone());
        workers.push(thread::spawn(move || {
            log(serve_one(stream, config, echo));
            stopper.open.lock().unwrap().retain(|(i, _)| *i != id);
        }));
        workers.retain(|w| !w.is_finished());
        if max_connections.is_some_and(|max| id + 1 >= max) {
            break;
        }
    }
    for w in workers {
        let _ = w.join();
    }
}

pub(crate) fn run(args: &ServeArgs) -> Result<(), Error> {
    if args.backend == Backend::Unikernel {
        return unikernel::serve(
            &args.tap,
            args.addr.port(),
            &args.tls,
            args.echo,
            args.max_connections,
            args.limits,
        );
    }
    let (config, what) = server_config(&args.tls)?;
    let listener =
        TcpListener::bind(args.addr).map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr()?;
    let log: Arc<dyn Fn(String) + Send + Sync> = Arc::new(|line| {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    let server = UnixServer::start(
        listener,
        Arc::new(config),
        args.echo,
        args.max_connections,
        log,
    )?;
    let stopper = server.stopper();
    ctrlc::set_handler(move || stopper.trigger())
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
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
    server.join();
    println!("tlsflow: stopped");
    Ok(())
}

/// How the log names a connection whose transport ended before the peer's close_notify.
pub(crate) const TRUNCATED: &str = "peer closed without close_notify (truncated)";

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
        // Wherever it happens (between keep-alive requests, too), a transport end before
        // close_notify is reported the same way.
        Err(e) if tls_unix::tls_error(&e) == Some(&tls_core::Error::Truncated) => {
            TRUNCATED.to_string()
        }
        Err(e) => format!("error: {e}"),
    };
    log_line(
        &peer,
        info.as_ref(),
        conn.read,
        conn.written,
        start.elapsed().as_millis(),
        &close,
    )
}

/// The one log line per connection both backends print.
pub(crate) fn log_line(
    peer: &str,
    info: Option<&tls_core::HandshakeInfo>,
    read: u64,
    written: u64,
    millis: u128,
    close: &str,
) -> String {
    let (version, suite, alpn, resumed) = match info {
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
        "{peer} {version} {suite} alpn={alpn} resumed={resumed} in={read} out={written} {millis} ms close={close}"
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

/// The `/` page: what the connection negotiated, on either backend.
pub(crate) fn index_page(
    backend: &str,
    info: Option<&tls_core::HandshakeInfo>,
    client_cert: bool,
) -> String {
    let Some(i) = info else {
        return "tlsflow\n".into();
    };
    let alpn = i
        .alpn
        .as_deref()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_else(|| "-".into());
    format!(
        "tlsflow ({backend} backend)\nversion: {:?}\ncipher suite: {:?}\nkey exchange: {}\nalpn: {alpn}\nsni: {}\nresumed: {}\nclient certificate: {}\n",
        i.version,
        i.cipher_suite,
        i.key_exchange.map(|g| format!("{g:?}")).unwrap_or_else(|| "-".into()),
        i.sni.as_deref().unwrap_or("-"),
        i.resumed,
        if client_cert { "yes" } else { "no" },
    )
}

fn http_loop<S>(
    conn: &mut Counted<tls_unix::blocking::TlsStream<S>>,
    info: Option<&tls_core::HandshakeInfo>,
    client_cert: bool,
) -> io::Result<()>
where
    S: Read + Write,
{
    let page = index_page("unix", info, client_cert);
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
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(TRUNCATED.into()),
            Err(e) => return Err(e),
        }
    }
}
