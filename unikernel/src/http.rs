//! The HTTP/1.1 pieces of the application, with no I/O: request and response heads
//! (parsed with `httparse`, written into a caller's buffer), the routes, the `/bytes/N`
//! pattern and the `/` page. Nothing here knows about sockets or clocks, so any server
//! (this crate's, or one on hyper) can use it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use tls_core::HandshakeInfo;

/// Most header lines a request or response head may have (more is `431`).
pub const MAX_HEADERS: usize = 64;

/// Byte `i` of the deterministic body served at `/bytes/N`.
pub fn pattern_byte(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 56) as u8 ^ (i as u8)
}

/// Fills `buf` with bytes `offset..offset + buf.len()` of the `/bytes/N` stream.
pub fn fill_pattern(offset: u64, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + k as u64);
    }
}

/// SHA-256 of the first `len` bytes of the `/bytes/N` stream.
pub fn pattern_digest(len: u64) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut chunk = [0u8; 4096];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(chunk.len() as u64) as usize;
        fill_pattern(at, &mut chunk[..n]);
        ctx.update(&chunk[..n]);
        at += n as u64;
    }
    digest_bytes(ctx)
}

/// The 32 bytes of a finished SHA-256.
pub fn digest_bytes(ctx: ring::digest::Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Lowercase hex of some bytes, as a `Display`.
#[derive(Clone, Copy, Debug)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// What the server answers a request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/`: a small text page describing the connection.
    Index,
    /// `POST`/`PUT` of a body: the answer is its SHA-256 in hex and its length.
    Digest([u8; 32], u64),
    /// `/bytes/N`: N bytes of the deterministic pattern.
    Bytes(u64),
    /// Anything else: `404`.
    NotFound,
}

/// Maps a `GET` request target to a [`Route`].
pub fn route(path: &str) -> Route {
    match path {
        "/" => Route::Index,
        p => match p.strip_prefix("/bytes/").map(str::parse::<u64>) {
            Some(Ok(n)) => Route::Bytes(n),
            _ => Route::NotFound,
        },
    }
}

/// The response statuses the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 100 Continue (before a body the client waits to send).
    Continue,
    /// 200 OK.
    Ok,
    /// 400 Bad Request: a malformed request line or header.
    BadRequest,
    /// 404 Not Found.
    NotFound,
    /// 408 Request Timeout: the head did not arrive in time.
    RequestTimeout,
    /// 413 Content Too Large: the request body is over the limit.
    ContentTooLarge,
    /// 431 Request Header Fields Too Large.
    HeadersTooLarge,
    /// 501 Not Implemented (a request body with a transfer-coding).
    NotImplemented,
}

impl Status {
    /// The status line's code and reason phrase.
    pub fn line(self) -> &'static str {
        match self {
            Self::Continue => "100 Continue",
            Self::Ok => "200 OK",
            Self::BadRequest => "400 Bad Request",
            Self::NotFound => "404 Not Found",
            Self::RequestTimeout => "408 Request Timeout",
            Self::ContentTooLarge => "413 Content Too Large",
            Self::HeadersTooLarge => "431 Request Header Fields Too Large",
            Self::NotImplemented => "501 Not Implemented",
        }
    }
}

/// Appends a response head to `out`: status line, `content-type`, `content-length`,
/// `connection`, blank line.
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    content_type: &str,
    content_length: u64,
    keep_alive: bool,
) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut w = VecWriter(out);
    let _ = write!(
        w,
        "HTTP/1.1 {}\r\ncontent-type: {content_type}\r\ncontent-length: {content_length}\r\nconnection: {connection}\r\n\r\n",
        status.line()
    );
}

/// Appends a whole small text response (head and body) to `out`.
pub fn write_text(out: &mut Vec<u8>, status: Status, body: &str, keep_alive: bool) {
    write_head(out, status, "text/plain", body.len() as u64, keep_alive);
    out.extend_from_slice(body.as_bytes());
}

/// The body of a `POST`/`PUT` answer: `HEX  LEN\n`.
pub fn digest_body(digest: &[u8; 32], len: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}  {len}", Hex(digest));
    s
}

/// `fmt::Write` into a byte vector.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The `/` page: what the connection negotiated.
pub fn index_page(backend: &str, info: Option<&HandshakeInfo>, client_cert: bool) -> String {
    let Some(i) = info else {
        return "tlsflow\n".into();
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "tlsflow ({backend} backend)\nversion: {:?}\ncipher suite: {:?}\nkey exchange: ",
        i.version, i.cipher_suite
    );
    let _ = match i.key_exchange {
        Some(g) => write!(s, "{g:?}"),
        None => write!(s, "-"),
    };
    let _ = write!(
        s,
        "\nalpn: {}\nsni: {}\nresumed: {}\nclient certificate: {}\n",
        Alpn(i.alpn.as_deref()),
        i.sni.as_deref().unwrap_or("-"),
        i.resumed,
        if client_cert { "yes" } else { "no" },
    );
    s
}

/// An ALPN protocol for humans: its bytes as text, `-` when none.
#[derive(Clone, Copy, Debug)]
pub struct Alpn<'a>(pub Option<&'a [u8]>);

impl fmt::Display for Alpn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(p) => p.iter().try_for_each(|&b| {
                f.write_char(if b.is_ascii_graphic() { b as char } else { '?' })
            }),
        }
    }
}

/// Methods the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` or `PUT`: the body's digest is the answer.
    Upload,
    /// Anything else: `404`.
    Other,
}

/// A parsed request head, reduced to what the server acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The route of a `GET` (or [`Route::NotFound`]).
    pub route: Route,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The body's length (`content-length`; 0 when absent, as RFC 9112 §6.3 says).
    pub content_length: u64,
    /// Whether the client sent `expect: 100-continue`.
    pub expect_continue: bool,
}

/// Why a request head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Malformed request line or header (`400`).
    Malformed,
    /// More header lines than [`MAX_HEADERS`], or a head over the size limit (`431`).
    TooLarge,
    /// A transfer-coded body (`501`).
    TransferCoding,
}

impl RequestError {
    /// The status that answers it.
    pub fn status(self) -> Status {
        match self {
            Self::Malformed => Status::BadRequest,
            Self::TooLarge => Status::HeadersTooLarge,
            Self::TransferCoding => Status::NotImplemented,
        }
    }
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete,
/// else the request and the head's length. A head longer than `max_head` is
/// [`RequestError::TooLarge`] whether or not it is complete.
pub fn parse_request(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(Request, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Complete(_)) => return Err(RequestError::TooLarge),
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err(RequestError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge),
        Err(_) => return Err(RequestError::Malformed),
    };
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(RequestError::Malformed);
    };
    let mut keep_alive = version == 1;
    let mut content_length: Option<u64> = None;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = core::str::from_utf8(h.value).map_err(|_| RequestError::Malformed)?;
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == 0 {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(value).ok_or(RequestError::Malformed)?;
            if content_length.is_some_and(|m| m != n) {
                return Err(RequestError::Malformed);
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(RequestError::TransferCoding);
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let method = match method {
        "GET" => Method::Get,
        "POST" | "PUT" => Method::Upload,
        _ => Method::Other,
    };
    let route = match method {
        Method::Get => route(path),
        _ => Route::NotFound,
    };
    let request = Request {
        method,
        route,
        keep_alive,
        content_length: content_length.unwrap_or(0),
        expect_continue,
    };
    Ok(Some((request, len)))
}

/// A decimal `content-length` (digits only, no sign, no overflow).
fn parse_length(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Appends a `GET` request for `path` on `host` asking to close after the response.
pub fn write_get(out: &mut Vec<u8>, host: &str, path: &str) {
    let mut w = VecWriter(out);
    let _ = write!(
        w,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: tlsflow/{}\r\naccept: */*\r\nconnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// `content-length: N`.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Neither: the body ends with the stream (close_notify).
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// How the body ends.
    pub body: BodyLength,
}

/// Why a response head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Not an HTTP/1.x response head, or a bad `content-length`.
    Malformed,
    /// Over the size limit.
    TooLarge,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed HTTP response head",
            Self::TooLarge => "HTTP response head too large",
        })
    }
}

/// Parses the response head at the start of `buf` (skipping `1xx` heads, whose length
/// is included): `Ok(None)` while incomplete, else the response and the bytes used.
pub fn parse_response(
    buf: &[u8],
    max_head: usize,
) -> Result<Option<(Response, usize)>, ResponseError> {
    let mut at = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&buf[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() > max_head => {
                return Err(ResponseError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooLarge),
            Err(_) => return Err(ResponseError::Malformed),
        };
        let status = resp.code.ok_or(ResponseError::Malformed)?;
        if (100..200).contains(&status) {
            at += len;
            continue;
        }
        let mut body = BodyLength::UntilClose;
        for h in resp.headers.iter() {
            let value = core::str::from_utf8(h.value).map_err(|_| ResponseError::Malformed)?;
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if value.trim().eq_ignore_ascii_case("chunked") {
                    body = BodyLength::Chunked;
                } else {
                    return Err(ResponseError::Malformed);
                }
            } else if h.name.eq_ignore_ascii_case("content-length") && body != BodyLength::Chunked {
                let n = parse_length(value.trim()).ok_or(ResponseError::Malformed)?;
                body = BodyLength::Length(n);
            }
        }
        return Ok(Some((Response { status, body }, at + len)));
    }
}

/// Where a chunked body decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes a `transfer-encoding: chunked` body incrementally.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: Chunk,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self { state: Chunk::Size }
    }
}

impl ChunkedDecoder {
    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decodes from `input`: hands body data to `data` and returns how many input bytes
    /// were used (the rest waits for more input). A line longer than 4 KiB or a bad
    /// chunk size is [`ResponseError::Malformed`].
    pub fn decode(
        &mut self,
        input: &[u8],
        data: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, ResponseError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                Chunk::Done => return Ok(at),
                Chunk::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, 0))) => {
                        at += n;
                        self.state = Chunk::Trailers;
                    }
                    Ok(httparse::Status::Complete((n, size))) => {
                        at += n;
                        self.state = Chunk::Data(size);
                    }
                    Ok(httparse::Status::Partial) if rest.len() > 4096 => {
                        return Err(ResponseError::Malformed)
                    }
                    Ok(httparse::Status::Partial) => return Ok(at),
                    Err(_) => return Err(ResponseError::Malformed),
                },
                Chunk::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let n = left.min(rest.len() as u64) as usize;
                    data(&rest[..n]);
                    at += n;
                    self.state = match left - n as u64 {
                        0 => Chunk::DataEnd,
                        more => Chunk::Data(more),
                    };
                }
                Chunk::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ResponseError::Malformed);
                    }
                    at += 2;
                    self.state = Chunk::Size;
                }
                Chunk::Trailers => match rest.iter().position(|&b| b == b'\n') {
                    None if rest.len() > 4096 => return Err(ResponseError::Malformed),
                    None => return Ok(at),
                    Some(i) => {
                        let line = &rest[..i];
                        at += i + 1;
                        if line.is_empty() || line == b"\r" {
                            self.state = Chunk::Done;
                        }
                    }
                },
            }
        }
    }
}
