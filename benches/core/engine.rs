//! tls-core's side: moving a `Session` pair's ciphertext and reading its plaintext.

use super::*;

/// Moves `from`'s pending output into `to` (as much as it takes) and reads what it
/// decrypted into `app`. Returns (ciphertext bytes moved, plaintext bytes read).
pub(super) fn core_wire(from: &mut Session, to: &mut Session, app: &mut [u8]) -> (usize, usize) {
    let mut moved = 0;
    let mut read = 0;
    loop {
        let out = from.pending_tls();
        if out.is_empty() {
            break;
        }
        let n = to.read_tls(out).expect("tls-core receive");
        from.tls_written(n);
        moved += n;
        let r = core_read(to, app);
        read += r;
        assert!(n > 0 || r > 0, "tls-core transfer stalled");
    }
    (moved, read)
}

/// Reads until `recv` says [`Error::WouldBlock`].
pub(super) fn core_read(s: &mut Session, app: &mut [u8]) -> usize {
    let mut read = 0;
    loop {
        match s.recv(app) {
            Ok(0) => return read,
            Ok(n) => read += n,
            Err(Error::WouldBlock) => return read,
            Err(e) => panic!("tls-core recv: {e:?}"),
        }
    }
}

pub(super) fn core_pair(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> (Session, Session) {
    let mut c = Session::client(client.clone(), server_name(), Limits::default()).unwrap();
    let mut s = Session::server(server.clone(), Limits::default()).unwrap();
    let mut app = [0u8; 64];
    while core_wire(&mut c, &mut s, &mut app).0 + core_wire(&mut s, &mut c, &mut app).0 > 0 {}
    while c.poll_event().is_some() {}
    while s.poll_event().is_some() {}
    assert!(!c.is_handshaking() && !s.is_handshaking());
    (c, s)
}

/// One batch of `writes` writes, then over the wire and read.
#[inline(never)] // a symbol for profilers
pub(super) fn core_batch(
    c: &mut Session,
    s: &mut Session,
    data: &[u8],
    writes: usize,
    app: &mut [u8],
) {
    for _ in 0..writes {
        let n = c.send(data).expect("tls-core send");
        assert_eq!(n, data.len(), "batch exceeds the outbound limit");
    }
    c.flush().expect("tls-core flush");
    let (_, read) = core_wire(c, s, app);
    assert_eq!(read, writes * data.len());
}
