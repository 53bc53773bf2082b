//! The log line's `close=` wording: one definition for both servers.

use alloc::string::ToString;

use crate::log::{handshake_failed, Cause, CloseReason, ConnectionLog, TlsEnd, TRUNCATED};

#[test]
fn close_reasons_read_cause_then_tls_end() {
    let peer_ended = CloseReason::new(None, TlsEnd::PeerFirst);
    assert_eq!(peer_ended.to_string(), "close_notify (peer first)");
    let rejected = CloseReason::new(Some(Cause::BadRequest), TlsEnd::Both);
    assert_eq!(
        rejected.to_string(),
        "bad request (400); close_notify (both)"
    );
    // The two header-read timeouts differ because the behaviour does: hyper closes, the
    // smoltcp server answers 408.
    let closed = CloseReason::new(Some(Cause::HeaderTimeout), TlsEnd::Sent);
    assert_eq!(
        closed.to_string(),
        "header-read timeout; close_notify (sent, no reply)"
    );
    let answered = CloseReason::new(Some(Cause::RequestTimeout), TlsEnd::Both);
    assert_eq!(
        answered.to_string(),
        "header-read timeout (408); close_notify (both)"
    );
    // An error that ended the connection is named once, not followed by "no close_notify".
    assert_eq!(
        CloseReason::failed(Cause::Stopped).to_string(),
        "error: stopped"
    );
    assert_eq!(
        CloseReason::new(None, TlsEnd::Failed).to_string(),
        "no close_notify"
    );
    assert_eq!(
        CloseReason::new(None, TlsEnd::Truncated).to_string(),
        TRUNCATED
    );
}

#[test]
fn connection_line_puts_close_last_and_requests_only_for_http() {
    let close = CloseReason::new(Some(Cause::IdleTimeout), TlsEnd::Both);
    let mut log = ConnectionLog {
        peer: &"192.0.2.1:5",
        info: None,
        read: 1,
        written: 2,
        requests: Some(3),
        millis: 4,
        close: &close,
    };
    assert_eq!(
        log.to_string(),
        "192.0.2.1:5 ? ? alpn=- resumed=false in=1 out=2 4 ms requests=3 close=idle timeout; close_notify (both)"
    );
    log.requests = None;
    assert!(!log.to_string().contains("requests="));
    assert_eq!(
        handshake_failed(&"192.0.2.1:5", &"bad", 7),
        "192.0.2.1:5 handshake failed: bad (7 ms)"
    );
}
