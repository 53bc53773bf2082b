//! The HTTP application: `/` (the connection's page), `/bytes/N` (the deterministic
//! stream, generated as it is sent), and `POST`/`PUT` of any path (the body's SHA-256).

use core::pin::Pin;
use core::task::{Context, Poll};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use tlsflow_unikernel::http::{digest_body, digest_bytes, fill_pattern, route, Route};

/// Plaintext generated per `/bytes/N` body frame: a multiple of the record size, so the
/// stream fills whole records.
const CHUNK: usize = 64 * 1024;

/// What a connection's requests share with its task.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Requests received.
    pub(crate) requests: AtomicU64,
    /// `/bytes/N` bodies still producing data: while one is, a flush may keep the last
    /// partial record back (more data follows at once), so bulk leaves as full records.
    pub(crate) streaming: AtomicUsize,
    /// A body over the limit was refused with `413`.
    pub(crate) body_too_large: AtomicBool,
}

/// Everything a request needs from its connection.
#[derive(Clone, Debug)]
pub(crate) struct App {
    pub(crate) page: Arc<str>,
    pub(crate) max_body: u64,
    pub(crate) state: Arc<ConnState>,
}

/// A response body: a whole small body, or the deterministic stream.
#[derive(Debug)]
pub(crate) enum ResponseBody {
    /// A small body sent in one frame.
    Full(Option<Bytes>),
    /// `/bytes/N`, made [`CHUNK`] bytes at a time.
    Pattern(PatternBody),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(match self.get_mut() {
            ResponseBody::Full(data) => data.take().map(|d| Ok(Frame::data(d))),
            ResponseBody::Pattern(p) => p.next().map(|d| Ok(Frame::data(d))),
        })
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(data) => data.is_none(),
            ResponseBody::Pattern(p) => p.at == p.len,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            ResponseBody::Pattern(p) => SizeHint::with_exact(p.len - p.at),
        }
    }
}

/// The `/bytes/N` stream: never more than one chunk in memory.
#[derive(Debug)]
pub(crate) struct PatternBody {
    at: u64,
    len: u64,
    state: Option<Arc<ConnState>>,
}

impl PatternBody {
    fn new(len: u64, state: &Arc<ConnState>) -> Self {
        let state = (len > 0).then(|| {
            state.streaming.fetch_add(1, Ordering::SeqCst);
            state.clone()
        });
        Self { at: 0, len, state }
    }

    fn next(&mut self) -> Option<Bytes> {
        if self.at == self.len {
            return None;
        }
        let n = (self.len - self.at).min(CHUNK as u64) as usize;
        let chunk = if self.at == 0 {
            // The stream's first chunk is the same for every body: made once, shared.
            static FIRST: LazyLock<Bytes> = LazyLock::new(|| {
                let mut first = BytesMut::zeroed(CHUNK);
                fill_pattern(0, &mut first);
                first.freeze()
            });
            FIRST.slice(..n)
        } else {
            let mut chunk = BytesMut::zeroed(n);
            fill_pattern(self.at, &mut chunk);
            chunk.freeze()
        };
        self.at += n as u64;
        if self.at == self.len {
            self.done();
        }
        Some(chunk)
    }

    fn done(&mut self) {
        if let Some(state) = self.state.take() {
            state.streaming.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for PatternBody {
    fn drop(&mut self) {
        self.done();
    }
}

fn text(status: StatusCode, body: String) -> Response<ResponseBody> {
    let len = body.len();
    let mut response = Response::new(ResponseBody::Full(Some(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

fn too_large(app: &App) -> Response<ResponseBody> {
    app.state.body_too_large.store(true, Ordering::SeqCst);
    let mut response = text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over {} bytes\n", app.max_body),
    );
    // The rest of the body is not read: the connection cannot carry another request.
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Answers one request.
pub(crate) async fn handle(
    app: App,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    app.state.requests.fetch_add(1, Ordering::SeqCst);
    let method = request.method().clone();
    let response = match method {
        Method::GET | Method::HEAD => match route(request.uri().path()) {
            Route::Index => text(StatusCode::OK, app.page.to_string()),
            Route::Bytes(n) => {
                let mut response =
                    Response::new(ResponseBody::Pattern(PatternBody::new(n, &app.state)));
                let headers = response.headers_mut();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
                response
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        },
        Method::POST | Method::PUT => digest(&app, request).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    };
    Ok(response)
}

/// The SHA-256 of the request body (`HASH  LEN\n`), or `413` past `max_body`.
async fn digest(app: &App, request: Request<Incoming>) -> Response<ResponseBody> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body) {
        return too_large(app);
    }
    let mut body = request.into_body();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad body: {e}\n")),
        };
        if let Some(data) = frame.data_ref() {
            len += data.len() as u64;
            if len > app.max_body {
                return too_large(app);
            }
            ctx.update(data);
        }
    }
    text(StatusCode::OK, digest_body(&digest_bytes(ctx), len))
}
