//! Sending responses: error answers, response heads, and records cut for the wire.

use alloc::vec::Vec;

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;

use super::{Connection, End, Phase, Step, RECORD};
use crate::config::Config;
use crate::http::{self, Route, Status};
use crate::log::Cause;

/// Bytes a TLS record adds to its plaintext at most (TLS 1.2 GCM; TLS 1.3 adds 22).
const RECORD_OVERHEAD: usize = 29;

impl Connection {
    /// Answers with an error status and closes after it. Like hyper on the Unix backend,
    /// a refused head is not a request (`requests=` counts what reached a route, or a
    /// body refused after its head was read).
    pub(super) fn reject(&mut self, status: Status, cause: Cause) {
        self.input.clear();
        let body = match status {
            Status::BadRequest => "bad request\n",
            Status::RequestTimeout => "request timeout\n",
            Status::ContentTooLarge => "request body too large\n",
            Status::HeadersTooLarge => "request header fields too large\n",
            _ => "not implemented\n",
        };
        http::write_text(&mut self.out, status, body, false);
        self.phase = Phase::Respond {
            at: 0,
            body: 0,
            keep_alive: false,
            end: Some(cause),
        };
    }

    /// Queues the response head (and a small body) in `out`; a `/bytes/N` body is made
    /// a record at a time as it is sent.
    pub(super) fn start_response(&mut self, route: Route, keep_alive: bool, config: &Config) {
        let mut body = 0;
        match route {
            Route::Index => {
                let page = http::index_page(config.backend, self.info.as_ref(), self.client_cert);
                http::write_text(&mut self.out, Status::Ok, &page, keep_alive);
            }
            Route::NotFound => {
                http::write_text(&mut self.out, Status::NotFound, "not found\n", keep_alive)
            }
            Route::Digest(digest, len) => {
                let text = http::digest_body(&digest, len);
                http::write_text(&mut self.out, Status::Ok, &text, keep_alive);
            }
            Route::Bytes(n) => {
                http::write_head(
                    &mut self.out,
                    Status::Ok,
                    "application/octet-stream",
                    n,
                    keep_alive,
                );
                body = n;
            }
        }
        self.phase = Phase::Respond {
            at: 0,
            body,
            keep_alive,
            end: None,
        };
    }

    /// Whether `len` bytes of plaintext go out as one record now: nothing staged in the
    /// engine, and the TCP ring's free space takes the record either where the socket
    /// encrypts straight into it (its contiguous part) or where it stages one record
    /// (the contiguous part is under half the free space). Otherwise the socket would
    /// cut the record at the ring's wrap point; waiting lets the ring drain.
    fn fits_one_record(&self, sockets: &mut SocketSet<'_>, len: usize) -> bool {
        if !self.tls.may_send(sockets) {
            // Let `send_slice` report why.
            return true;
        }
        if self.tls.session().is_some_and(|s| s.has_output()) {
            return false;
        }
        let tcp = sockets.get_mut::<tcp::Socket>(self.tls.handle());
        let free = tcp.send_capacity() - tcp.send_queue();
        let need = len + RECORD_OVERHEAD;
        if free < need {
            return false;
        }
        let contiguous = tcp.send(|buf| (0, buf.len())).unwrap_or(0);
        contiguous >= need || contiguous * 2 < free
    }

    /// Sends `out[out_at..]` as one record when it fits; true if anything went.
    pub(super) fn send_record(&mut self, sockets: &mut SocketSet<'_>) -> Result<bool, End> {
        let len = self.out.len() - self.out_at;
        if !self.fits_one_record(sockets, len) {
            return Ok(false);
        }
        let n = self.tls.send_slice(sockets, &self.out[self.out_at..])?;
        self.out_at += n;
        self.written += n as u64;
        if self.out_at == self.out.len() {
            self.out.clear();
            self.out_at = 0;
        }
        Ok(n > 0)
    }

    pub(super) fn respond(&mut self, sockets: &mut SocketSet<'_>) -> Step {
        let mut moved = false;
        loop {
            let Phase::Respond { at, body, .. } = &mut self.phase else {
                unreachable!("in the respond phase")
            };
            // Top the record up with the pattern (the first record after the head).
            if self.out_at == 0 && self.out.len() < RECORD && *at < *body {
                let k = (*body - *at).min((RECORD - self.out.len()) as u64) as usize;
                let old = self.out.len();
                self.out.resize(old + k, 0);
                http::fill_pattern(*at, &mut self.out[old..]);
                *at += k as u64;
            }
            if self.out.is_empty() {
                break;
            }
            if !self.send_record(sockets)? {
                if let Some(e) = self.tls.error() {
                    return Err(e.clone().into());
                }
                return Ok(moved);
            }
            moved = true;
        }
        let Phase::Respond {
            keep_alive, end, ..
        } = &mut self.phase
        else {
            unreachable!("in the respond phase")
        };
        if let Some(cause) = end.take() {
            return Err(End::Close(Some(cause)));
        }
        if *keep_alive {
            self.phase = Phase::Request;
            // Free the buffers while the connection idles.
            self.out = Vec::new();
            if self.input.is_empty() {
                self.input = Vec::new();
            }
            Ok(true)
        } else {
            Err(End::Close(None))
        }
    }
}
