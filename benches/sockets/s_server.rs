//! The `www` cases' peer: `openssl s_server -WWW` over a throwaway web root, and our side
//! serving the same files.

use super::*;

/// A temporary directory served by both HTTP-ish servers; removed on drop.
pub(super) struct WebRoot(pub(super) PathBuf);

impl WebRoot {
    pub(super) fn new(pki: &Pki, bulk: u64) -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("tlsflow-sockets-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let root = Self(dir);
        std::fs::write(root.0.join("cert.pem"), &pki.server.cert_pem)?;
        std::fs::write(root.0.join("key.pem"), &pki.server.key_pem)?;
        std::fs::write(root.0.join("ca.pem"), &pki.ca_pem)?;
        std::fs::write(root.0.join("small"), [b'x'; SMALL as usize])?;
        let mut file = io::BufWriter::new(std::fs::File::create(root.0.join("bulk"))?);
        write_n(&mut file, bulk)?;
        file.flush()?;
        Ok(root)
    }
}

impl Drop for WebRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `openssl s_server` as a child process; killed (by its PID) on drop.
pub(super) struct SServer {
    pub(super) child: Child,
    pub(super) addr: SocketAddr,
}

impl SServer {
    /// Starts s_server in `root` and waits for its `ACCEPT 127.0.0.1:<port>` line.
    pub(super) fn start(root: &Path) -> io::Result<Self> {
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-tls1_3", "-WWW"])
            // Our server sends no tickets with resumption off; neither does this one.
            .args(["-num_tickets", "0"])
            .args([
                "-cert",
                "cert.pem",
                "-key",
                "key.pem",
                "-cert_chain",
                "ca.pem",
            ])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        // s_server writes a line or two per connection to stderr: keep the pipe drained.
        std::thread::spawn(move || io::copy(&mut { stderr }, &mut io::sink()));
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        let addr = loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::other("s_server exited before ACCEPT"));
            }
            if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
                break addr.parse().map_err(io::Error::other)?;
            }
        };
        std::thread::spawn(move || io::copy(&mut lines, &mut io::sink()));
        pin(child.id() as i32, cpus().map(|c| c.1));
        Ok(Self { child, addr })
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking server doing what `s_server -WWW` does: one connection at a time, reads a
/// `GET /<file>` request, sends `HTTP/1.0 200 ok` and the file, close_notify, close (without
/// waiting for the client's close_notify). The header goes out with the file's first bytes,
/// as s_server's buffered BIO does. `Impl::Rustls` is the same over `StreamOwned`, for
/// reference.
///
/// Returns the address and the server thread's `schedstat` file (its CPU time).
pub(super) fn www_server(
    which: Impl,
    config: Arc<ServerConfig>,
    root: PathBuf,
) -> io::Result<(SocketAddr, PathBuf)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pin_server();
        let _ = tid_tx.send(nix::unistd::gettid());
        for sock in listener.incoming() {
            let result = sock.and_then(|sock| match which {
                Impl::Ours => www_serve(
                    &mut blocking::accept(config.clone(), sock, our_options())?,
                    &root,
                ),
                Impl::Rustls => www_serve(
                    &mut StreamOwned::new(
                        ServerConnection::new(config.clone()).map_err(io::Error::other)?,
                        sock,
                    ),
                    &root,
                ),
            });
            if let Err(e) = result {
                eprintln!("www server error: {e}");
            }
        }
    });
    let tid = tid_rx.recv().map_err(io::Error::other)?;
    Ok((addr, format!("/proc/self/task/{tid}/schedstat").into()))
}

/// CPU time so far, from a `schedstat` file (its first field, in nanoseconds).
pub(super) fn cpu_time(schedstat: &Path) -> io::Result<Duration> {
    let text = std::fs::read_to_string(schedstat)?;
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other("unreadable schedstat"))?;
    Ok(Duration::from_nanos(ns))
}

/// `slice`, but timed by the CPU time the server spent (from its `schedstat`) instead of
/// the wall clock: the server's own cost, without the client's.
pub(super) fn server_cpu(
    schedstat: &Path,
    slice: impl FnOnce() -> io::Result<Slice>,
) -> io::Result<Slice> {
    let before = cpu_time(schedstat)?;
    let (amount, _) = slice()?;
    Ok((amount, cpu_time(schedstat)? - before))
}

pub(super) fn www_serve(tls: &mut impl Stream, root: &Path) -> io::Result<()> {
    let mut request = Vec::with_capacity(256);
    let mut buf = [0; 256];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => request.extend_from_slice(&buf[..n]),
        }
    }
    let path = request
        .strip_prefix(b"GET /")
        .and_then(|r| r.split(|&b| b == b' ').next())
        .ok_or_else(|| io::Error::other("bad request"))?;
    let path = std::str::from_utf8(path).map_err(io::Error::other)?;
    let mut file = std::fs::File::open(root.join(path))?;
    let mut out = vec![0; CHUNK];
    let header = b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n";
    out[..header.len()].copy_from_slice(header);
    let mut filled = header.len();
    loop {
        let n = file.read(&mut out[filled..])?;
        filled += n;
        if n == 0 || filled == CHUNK {
            tls.write_all(&out[..filled])?;
            if n == 0 {
                break;
            }
            filled = 0;
        }
    }
    tls.close()
}

/// Our blocking client fetching `/<file>` from an HTTP-ish server; the body's length.
pub(super) fn www_fetch(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    file: &str,
) -> io::Result<u64> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    let mut tls = blocking::connect(config.clone(), server_name(), sock, our_options())?;
    tls.write_all(format!("GET /{file} HTTP/1.0\r\n\r\n").as_bytes())?;
    // The header, then the body.
    let mut head = Vec::new();
    let mut buf = vec![0; CHUNK];
    let body_start = loop {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other("no HTTP header"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    if !head.starts_with(b"HTTP/1.0 200") {
        return Err(io::Error::other("not 200"));
    }
    let body = (head.len() - body_start) as u64 + read_all(&mut tls)?;
    // The server may be gone already: close_notify is a courtesy here.
    let _ = tls.shutdown();
    Ok(body)
}

pub(super) fn www_slice(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    count: usize,
    file: &str,
    size: u64,
) -> io::Result<Slice> {
    let start = Instant::now();
    for _ in 0..count {
        let got = www_fetch(config, addr, file)?;
        if got != size {
            return Err(io::Error::other(format!(
                "{file}: {got} bytes, wanted {size}"
            )));
        }
    }
    Ok(((count as u64 * size.max(1)) as f64, start.elapsed()))
}
