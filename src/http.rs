//! A small HTTP/1.1 layer over any byte stream, for `tlsflow serve`/`get` and the tests.
//!
//! It knows exactly what the tool needs: `GET` requests, `Content-Length` bodies, keep-alive,
//! and two routes (`/` a page describing the connection, `/bytes/N` N bytes of deterministic
//! data whose digest a client can check). It is not a general HTTP implementation.

use std::io::{self, BufRead, Read, Write};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Byte `i` of the deterministic body served at `/bytes/N`.
pub fn pattern_byte(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (i as u8)
}

/// Fills `buf` with bytes `offset..offset + buf.len()` of the deterministic stream.
pub fn fill_pattern(offset: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + k as u64);
    }
}

/// SHA-256 of the first `len` bytes of the deterministic stream.
pub fn pattern_digest(len: u64) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(chunk.len() as u64) as usize;
        fill_pattern(at, &mut chunk[..n]);
        ctx.update(&chunk[..n]);
        at += n as u64;
    }
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/bytes/1024`.
    pub path: String,
    /// Whether the client asked to keep the connection open.
    pub keep_alive: bool,
    /// The `content-length` of the request body, when given.
    pub content_length: Option<u64>,
    /// Whether the client sent `expect: 100-continue` (curl does for large uploads).
    pub expect_continue: bool,
}

/// Reads one request head. `Ok(None)` at a clean end of stream before any byte.
pub fn read_request<R: BufRead>(r: &mut R) -> io::Result<Option<Request>> {
    let Some(head) = read_head(r)? else {
        return Ok(None);
    };
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    let mut keep_alive = version == "HTTP/1.1";
    let mut content_length = None;
    let mut expect_continue = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close")
                    && (keep_alive || value.eq_ignore_ascii_case("keep-alive"));
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse().map_err(|_| invalid("bad content-length"))?);
            } else if name.eq_ignore_ascii_case("expect") {
                expect_continue = value.eq_ignore_ascii_case("100-continue");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("chunked request bodies are not supported"));
            }
        }
    }
    Ok(Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        keep_alive,
        content_length,
        expect_continue,
    }))
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads up to and including the blank line that ends a head.
fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        let n = r
            .take((MAX_HEAD + 1 - head.len()) as u64)
            .read_until(b'\n', &mut head)?;
        if n == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended inside an HTTP head",
            ));
        }
        if head.len() > MAX_HEAD {
            return Err(invalid("HTTP head too large"));
        }
        let line = &head[start..];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    String::from_utf8(head)
        .map(Some)
        .map_err(|_| invalid("HTTP head is not UTF-8"))
}

/// What the server answers: status, content type and body source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: a small text page.
    Index,
    /// A `POST` or `PUT` of a body: the answer is its SHA-256 in hex and its length.
    Digest([u8; 32], u64),
    /// `/bytes/N`: N bytes of the deterministic stream.
    Bytes(u64),
    /// Anything else.
    NotFound,
}

/// Reads a request body of `len` bytes and returns its SHA-256 (what `POST`/`PUT` answer).
pub fn digest_body<R: Read>(r: &mut R, len: u64) -> io::Result<[u8; 32]> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended inside a request body",
            ));
        }
        ctx.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(ctx
        .finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes"))
}

/// Maps a request path to a [`Route`].
pub fn route(path: &str) -> Route {
    match path {
        "/" => Route::Index,
        p => match p.strip_prefix("/bytes/").map(str::parse::<u64>) {
            Some(Ok(n)) => Route::Bytes(n),
            _ => Route::NotFound,
        },
    }
}

/// Writes a complete response for `route`; `index` is the body of `/`. Returns body bytes.
pub fn write_response<W: Write>(
    w: &mut W,
    route: &Route,
    index: &str,
    keep_alive: bool,
) -> io::Result<u64> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    match route {
        Route::Index | Route::NotFound | Route::Digest(..) => {
            let (status, body) = match route {
                Route::Index => ("200 OK", index.to_string()),
                Route::Digest(digest, len) => ("200 OK", format!("{}  {len}\n", hex(digest))),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            write!(
                w,
                "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: {connection}\r\n\r\n{body}",
                body.len()
            )?;
            Ok(body.len() as u64)
        }
        Route::Bytes(n) => {
            write!(
                w,
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {n}\r\nconnection: {connection}\r\n\r\n"
            )?;
            let mut chunk = vec![0u8; 64 * 1024];
            let mut at = 0;
            while at < *n {
                let k = (n - at).min(chunk.len() as u64) as usize;
                fill_pattern(at, &mut chunk[..k]);
                w.write_all(&chunk[..k])?;
                at += k as u64;
            }
            Ok(*n)
        }
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `content-length`, when given.
    pub content_length: Option<u64>,
}

/// Writes a `GET` request.
pub fn write_get<W: Write>(w: &mut W, host: &str, path: &str) -> io::Result<()> {
    write!(
        w,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: tlsflow/{}\r\naccept: */*\r\nconnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )?;
    w.flush()
}

/// Reads a response head.
pub fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    let head = read_head(r)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no HTTP response"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("malformed status line"))?;
    let mut content_length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| invalid("bad content-length"))?,
                );
            }
        }
    }
    Ok(Response {
        status,
        content_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    #[test]
    fn request_round_trip_and_routes() {
        let mut out = Vec::new();
        write_get(&mut out, "localhost", "/bytes/10").unwrap();
        let req = read_request(&mut BufReader::new(Cursor::new(out)))
            .unwrap()
            .unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(route(&req.path), Route::Bytes(10));
        assert!(!req.keep_alive, "tlsflow get asks for connection: close");
        assert_eq!(route("/"), Route::Index);
        assert_eq!(route("/bytes/x"), Route::NotFound);
        assert!(read_request(&mut BufReader::new(Cursor::new(Vec::new())))
            .unwrap()
            .is_none());
        let truncated = b"GET / HTTP/1.1\r\nhost: x\r\n".to_vec();
        let err = read_request(&mut BufReader::new(Cursor::new(truncated))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn response_body_matches_digest() {
        let mut out = Vec::new();
        let n = write_response(&mut out, &Route::Bytes(100_000), "", false).unwrap();
        assert_eq!(n, 100_000);
        let mut r = BufReader::new(Cursor::new(out));
        let resp = read_response(&mut r).unwrap();
        assert_eq!(
            resp,
            Response {
                status: 200,
                content_length: Some(100_000)
            }
        );
        let mut body = Vec::new();
        r.read_to_end(&mut body).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        assert_eq!(digest.as_ref(), pattern_digest(100_000));
    }

    #[test]
    fn oversized_head_is_rejected() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let err = read_request(&mut BufReader::new(Cursor::new(req))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
