//! Blocking HTTP/1.1 client helpers for the tests: a `GET` and a response head, over the
//! no_std application's own head writer and httparse-based parser
//! (`tlsflow_unikernel::http`), so no HTTP is parsed by hand here.

use std::io::{self, BufRead, Write};

use tlsflow_unikernel::http::{self, BodyLength};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The `content-length`, when given.
    pub(crate) content_length: Option<u64>,
}

/// Writes a `GET` for `path` on `host` (with `connection: close`) and flushes.
pub(crate) fn write_get<W: Write>(w: &mut W, host: &str, path: &str) -> io::Result<()> {
    let mut request = Vec::new();
    http::write_get(&mut request, host, path);
    w.write_all(&request)?;
    w.flush()
}

/// Reads a response head (after any `1xx` heads), leaving the body in `r`.
pub(crate) fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    let mut head = Vec::new();
    loop {
        // One line at a time, so nothing past the head is taken from `r`.
        let n = r.read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended inside an HTTP response head",
            ));
        }
        match http::parse_response(&head, MAX_HEAD) {
            Ok(Some((response, _))) => {
                let content_length = match response.body {
                    BodyLength::Length(n) => Some(n),
                    BodyLength::Chunked | BodyLength::UntilClose => None,
                };
                return Ok(Response {
                    status: response.status,
                    content_length,
                });
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }
}
